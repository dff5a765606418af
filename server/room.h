/* A room: its settings, participants, presence, the replay ring of recent
 * events, and the connections joined to it. The backlog (backlog.h) lives in
 * the room. Rooms are loaded from the store's state tables on first join.
 *
 * Events: event_begin() starts an event map {t, seq, at, by, ...} with
 * the room's next seq; event_commit() persists it (with the state
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
#include "config.h"
#include "health.h"
#include "list.h"
#include "map.h"
#include "ops.h"
#include "product.h"
#include "token.h"

struct app;
struct conn;
struct frame;
struct kano_survey;
struct undo_rec;
struct storymap;

/* A room id: "<instance>.<token>" (at most 16 + 1 + 22 bytes), or a bare
 * token (rooms made by older versions). */
#define ROOM_ID_MAX 39

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
 * rounds shared (snapshot.h). */
#define ROOM_SNAPSHOT_SHARE        (64 * 1024)
#define ROOM_SNAPSHOT_SHARE_ROUNDS 64

/* Room ids. A room made here is "<instance>.<token>": this instance's name
 * (its home), a dot and TOKEN_LEN characters, ROOM_ID_MAX bytes at most
 * (buffers ROOM_ID_MAX + 1). An id without a dot, made by older versions, is
 * a bare token: it names no home and is served wherever it exists. */
#define ROOM_ID_MAX 39
_Static_assert(ROOM_ID_MAX == INSTANCE_NAME_MAX + 1 + TOKEN_LEN, "<instance>.<token>");

/* The home of room id (NUL-terminated, borrowed): the instance name before
 * its first '.', into out. False (out "") when it has none: no dot, or what
 * comes before it is no instance name. */
bool room_home(const char *id, char out[INSTANCE_NAME_MAX + 1]);
/* Whether room id[0..n) names a home other than this instance (app->instance),
 * which is then in home: the room does not live here. */
bool room_elsewhere(const struct app *app, const char *id, size_t n,
                    char home[INSTANCE_NAME_MAX + 1]);

struct participant {
    char pid[TOKEN_LEN + 1];
    uint8_t secret_hash[TOKEN_HASH];
    char *name;
    int role;
    int online;            /* open connections */
    size_t ix;             /* its index in room.parts */
    struct undo_rec *undo; /* their last undoable change (undo.h), or NULL */
};

struct room {
    char id[ROOM_ID_MAX + 1];
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
    struct kano_survey **kano; /* every Kano survey (kano.h), oldest first */
    size_t nkano, capkano;
    struct map kano_by_item;    /* item id -> its survey */
    struct product product;     /* vision, personas, outcomes (product.h) */
    struct storymap *smap;      /* the story map (storymap.h), NULL until its first node */
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
    struct health health; /* DEEP health of the backlog (health.h), its watcher */
    char *focus;
    struct frame **ring; /* the last ring_count events, oldest at ring_head */
    size_t ring_cap;     /* most events kept (--replay-events) */
    size_t ring_alloc;   /* slots allocated: grows up to ring_cap as events come */
    size_t ring_count, ring_head;
    uint64_t records_upto; /* store_added() after the room's last change */
    int64_t idle_since;    /* when its last connection left (0: in use) */
    /* The `items` and `rounds` of the snapshot at seq snap_seq, encoded once
     * and shared by every joiner of that moment (room_ops_join); dropped at
     * the next change, or once no connection holds it any more (presence_tick). */
    struct frame *snap_items;
    uint64_t snap_seq;
    struct list conns;   /* the connections joined to it (conn.room_link; each holds a reference to
                            the room) */
    struct list hinting; /* the connections holding a hint (hint.h; conn.hint.link) */
    uint32_t refs;
    bool dead; /* dropped from memory after a storage failure */

    /* Being moved to another instance (move.h): every change refused. */
    bool moving;
};

/* A new room with one reference and nothing in it yet (room_ops_create and
 * room_load fill it), or NULL when out of memory. */
struct room *room_new(struct app *app);
struct room *room_ref(struct room *r);
/* Drops one reference; frees the room (participants, rounds, backlog, ring)
 * on the last. NULL is a no-op. */
void room_unref(struct room *r);

/* Sets r->epoch from r->epoch_base and the store's number of restores. */
void room_set_epoch(struct app *app, struct room *r);
/* Sets the deck from a validated FT_DECK object (NULL: the default deck).
 * Returns 0 or RF_ENOMEM (the room then keeps its deck). */
int room_set_deck(struct room *r, const msgpack_object *o);
/* Packs the room's deck (name or list of cards). */
void room_pack_deck(const struct room *r, msgpack_packer *pk);
/* Appends the room's settings row to the store's batch. */
int room_save_meta(struct app *app, struct room *r);
/* Appends p's row to the store's batch. */
int room_save_participant(struct app *app, struct room *r, const struct participant *p);
/* The role a token opens in r, or -1. Compared in constant time. */
int room_token_role(const struct room *r, const char *token, size_t n);

/* ---- participants and the crowd rule --------------------------------- */

/* The participant pid[0..n), or NULL (borrowed from the room). */
struct participant *room_participant(const struct room *r, const char *pid, size_t n);
/* A new, empty participant at the end of parts (the caller sets it up, puts
 * it in by_pid, then room_track_participant()), or NULL when out of memory. */
struct participant *room_add_participant(struct room *r);
/* Undoes room_add_participant() for p, the last one, before
 * room_track_participant(). */
void room_drop_new_participant(struct room *r, struct participant *p);
/* Counts p (fully set up, last in parts, with no connection yet) as an actor
 * or an observer. Cannot fail. */
void room_track_participant(struct room *r, struct participant *p);
/* Changes p's role, keeping the actors and the observer counts right. */
void room_set_role(struct room *r, struct participant *p, int role);
/* p's first connection opened (up), or its last one closed. */
void room_observer_presence(struct room *r, const struct participant *p, bool up);
/* In a crowd room, the next tick sends an `observers` notice even if the
 * counts are back to what the last one said (presence_tick). */
void room_observers_force(struct room *r);
/* Number of participants of role `role` with an open connection: a counter
 * for observers, a walk of the actors for the other roles. */
size_t room_online(const struct room *r, int role);
/* Whether the crowd rule applies to r (it knows more than ROOM_CROWD participants). */
bool room_crowded(const struct room *r);

/* ---- rounds and the replay ring ---------------------------------------- */

/* The round clients see as the current one (voting or revealed), or NULL. */
struct round *room_current_round(const struct room *r);
/* Appends rd to the room's rounds (takes it). Returns 0 or RF_ENOMEM. */
int room_add_round(struct room *r, struct round *rd);
/* Keeps f (taken) as the newest event; the ring grows up to ring_cap, then
 * drops the oldest. */
void room_ring_push(struct room *r, struct frame *f);

/* ---- the rooms in memory ------------------------------------------------ */

/* Drops room id from memory after a storage failure, closing its connections. */
void room_evict(struct app *app, const char *id);
/* Unloads rooms nobody has been connected to for ROOM_UNLOAD_MS, once all
 * their changes are committed and no timer runs (their memory freed on a
 * libuv worker: run the loop before closing it): they load again from the
 * store on the next join. */
#define ROOM_UNLOAD_MS 30000
void room_sweep(struct app *app, int64_t now);
/* Frees every room (shutdown). */
void room_free_all(struct app *app);
/* Calls fn for every loaded room (the timer tick). fn may evict the room it
 * is given (room_evict), and no other. */
void room_each(struct app *app, void (*fn)(struct room *r, void *arg), void *arg);

#endif
