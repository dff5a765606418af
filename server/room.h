/* A room: its settings, participants, presence, the replay ring of recent
 * events, and the connections joined to it. The backlog (backlog.h) lives in
 * the room. Rooms are loaded from the store's state tables on first join.
 *
 * Events: room_event_begin() starts an event map {t, seq, at, by, ...} with
 * the room's next seq; room_event_commit() persists it (with the state
 * records the handler appended to the store in the same turn), keeps it in
 * the replay ring and queues it to the room's connections. */
#ifndef REFINE_ROOM_H
#define REFINE_ROOM_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "backlog.h"
#include "round.h"
#include "codec.h"
#include "map.h"
#include "ops.h"
#include "token.h"

struct app;
struct conn;
struct req;
struct frame;

/* The crowd rule. A room that knows more than ROOM_CROWD participants (all
 * of them, online or not: nparts, which never shrinks, so a room once crowded
 * stays crowded, also when it is loaded again) aggregates its observers'
 * presence: no participant.joined / participant.left for an observer, but a
 * coalesced notice `observers {online, total, at}` at most once every
 * ROOM_OBSERVERS_MS when the counts changed; its snapshots and replay-mode
 * join replies list only the participants who are not observers. Every
 * snapshot and replay reply carries the counts, whatever the room's size. */
#define ROOM_CROWD        100
#define ROOM_OBSERVERS_MS 1000

/* A backlog of at least this many bytes (backlog.bytes), or a room with this
 * many rounds, goes to joiners as a snapshot in two fragments, its items and
 * rounds shared (room.c, send_snapshot). */
#define ROOM_SNAPSHOT_SHARE        (64 * 1024)
#define ROOM_SNAPSHOT_SHARE_ROUNDS 64

struct participant {
    char pid[TOKEN_LEN + 1];
    uint8_t secret_hash[TOKEN_HASH];
    char *name;
    int role;
    int online; /* open connections */
    size_t ix;  /* its index in room.parts */
};

struct room {
    char id[TOKEN_LEN + 1];
    char epoch_base[TOKEN_LEN + 1]; /* random, from the room's creation */
    char epoch[TOKEN_LEN + 24];     /* epoch_base, plus the number of restores if any: it
                                       changes when the room's history may have been lost */
    char *name;
    char *deck_name; /* built-in deck, or NULL for the custom cards */
    char **cards;
    size_t ncards;
    bool auto_reveal;
    bool reveal_on_timer;
    uint32_t facilitator_grace;   /* seconds before others may claim facilitation */
    int64_t timer_ends_at;        /* 0: no timer running */
    int64_t no_facilitator_since; /* 0: a facilitator is online */
    int64_t created_at;
    uint8_t token_hash[ROLE__COUNT][TOKEN_HASH];
    uint64_t seq;
    uint64_t next_item;
    uint64_t next_round;
    struct round **rounds; /* every round, oldest first */
    size_t nrounds, caprounds;
    struct participant **parts; /* every participant: in join order, or the store's when loaded */
    size_t nparts, capparts;
    /* The participants who are not observers (those who may vote), in the
     * order of parts: what a crowd room lists, and who poker looks at. Its
     * allocation always holds capparts pointers, so adding to it never fails. */
    struct participant **actors;
    size_t nactors;
    struct map by_pid;            /* pid -> participant */
    size_t observers;             /* participants whose role is observer */
    size_t observers_online;      /* ... and who have an open connection */
    bool observers_dirty;         /* crowd room: the counts may have changed since the notice */
    int64_t observers_sent_at;    /* when the last `observers` notice was made */
    size_t observers_sent_online; /* the counts it held (SIZE_MAX: one is due whatever */
    size_t observers_sent_total;  /* the counts, when the room has just become crowded) */
    struct backlog backlog;
    char *focus;
    struct frame **ring; /* the last ring_count events, oldest at ring_head */
    size_t ring_cap;     /* most events kept (--replay-events) */
    size_t ring_alloc;   /* slots allocated: grows up to ring_cap as events come */
    size_t ring_count, ring_head;
    uint64_t records_upto; /* store_added() after the room's last change */
    int64_t idle_since;    /* when its last connection left (0: in use) */
    /* The `items` and `rounds` of the snapshot at seq snap_seq, encoded once
     * and shared by every joiner of that moment (room_handle_join); dropped at
     * the next change, or once no connection holds it any more (room_tick). */
    struct frame *snap_items;
    uint64_t snap_seq;
    struct conn *conns;
    struct conn *hinting; /* the connections holding a hint (hint.h) */
    uint32_t refs;
    bool dead; /* dropped from memory after a storage failure */
};

struct event {
    struct codec_buf buf;
    msgpack_packer pk;
    struct room *room;
    const char *type;
    const char *by;
    uint64_t seq;
    int64_t at;
};

/* Starts event `type` by participant `by` (NULL: the server) with nfields
 * more key/value pairs for the caller to pack into ev->pk. */
void room_event_begin(struct event *ev, struct room *r, const char *type,
                      const struct participant *by, size_t nfields);
/* Finishes, persists and broadcasts the event; returns its seq, or 0 when out
 * of memory (the server then closes the room's connections). */
uint64_t room_event_commit(struct app *app, struct event *ev);

/* room_event_commit(), then the request's `ok {seq}`. Returns 0 (a failure
 * to record the event closes the room's connections). */
int room_event_reply(struct req *q, struct event *ev);

/* A notice (no seq, never stored): room_notice_begin() starts {t, at} with
 * nfields more pairs for the caller to pack into pk; room_notice_end() sends
 * it to the room's connections but `except` (may be NULL), with actors_only
 * only to those of participants who are not observers. */
void room_notice_begin(struct codec_buf *b, msgpack_packer *pk, const char *type, int64_t at,
                       size_t nfields);
void room_notice_end(struct app *app, struct room *r, struct conn *except, struct codec_buf *b,
                     bool actors_only);

struct room *room_ref(struct room *r);
/* NULL is a no-op. */
void room_unref(struct room *r);
struct conn *room_conns(struct room *r);

/* Persists the room's settings row. */
int room_save_meta(struct app *app, struct room *r);
/* Packs the room's deck (name or list of cards). */
void room_pack_deck(const struct room *r, msgpack_packer *pk);

/* The connection's socket closed: presence and bookkeeping. */
void room_leave(struct conn *c);
/* Drops room id from memory after a storage failure, closing its connections. */
void room_evict(struct app *app, const char *id);
/* Unloads rooms nobody has been connected to for ROOM_UNLOAD_MS, once all
 * their changes are committed and no timer runs: they load again from the
 * store on the next join. */
#define ROOM_UNLOAD_MS 30000
void room_sweep(struct app *app, int64_t now);
/* Frees every room (shutdown). */
void room_free_all(struct app *app);

/* The round clients see as the current one (voting or revealed), or NULL. */
struct round *room_current_round(const struct room *r);
/* Appends rd to the room's rounds (takes it). Returns 0 or RF_ENOMEM. */
int room_add_round(struct room *r, struct round *rd);
/* Number of participants of role `role` with an open connection: a counter
 * for observers, a walk of the actors for the other roles. */
size_t room_online(const struct room *r, int role);
/* Whether the crowd rule applies to r (it knows more than ROOM_CROWD participants). */
bool room_crowded(const struct room *r);
/* Called every tick (100 ms, through round_on_tick): in a crowd room whose
 * observer counts changed, sends the `observers` notice to the room's
 * connections, at most once every ROOM_OBSERVERS_MS. */
void room_tick(struct app *app, struct room *r, int64_t now);
/* Calls fn for every loaded room (the timer tick). */
void room_each(struct app *app, void (*fn)(struct room *r, void *arg), void *arg);

/* The room with id[0..n), from memory or else loaded from the store; NULL
 * with *err set (RF_ENOT_FOUND, ...) otherwise. */
struct room *room_find(struct app *app, const char *id, size_t n, int *err);
/* The role a token opens in r, or -1. Compared in constant time. */
int room_token_role(const struct room *r, const char *token, size_t n);
/* Packs what an export holds: settings, participants (no secrets), items,
 * rounds (as round_pack: no unrevealed card). */
void room_pack_export(const struct room *r, msgpack_packer *pk);

/* Handlers (dispatch.c calls them through the operation table). */
int room_handle_create(struct req *r);
int room_handle_join(struct req *r);
int room_handle_role_set(struct req *r);
int room_handle_update(struct req *r);
int room_handle_claim(struct req *r);
int room_handle_token_rotate(struct req *r);

#endif
