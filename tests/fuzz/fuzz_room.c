/* libFuzzer target: the room state machine, through the real dispatcher,
 * handlers and SQLite store, with in-process connections (conn.h's sink).
 *
 * Each input is one meeting. A fixed prelude creates a room (the input's
 * first byte picks its deck; its high bit, an allocation to fail: see the
 * end of the file) and joins a monitor (an observer that never
 * sends) and four participants: facilitator, owner, member and observer; a
 * fifth slot starts unconnected (a stranger). Then up to MAX_STEPS steps,
 * each three bytes and a parameter block:
 *
 *     who (% NSLOTS)  op (% (OP__COUNT + P__COUNT))  len  params[len]
 *
 * An op below OP__COUNT sends that operation of protocol/ops.c's table,
 * its fields drawn from params (valid item, round, participant ids and
 * cards of the live room, or nil, wrong types, empty, oversized, invalid
 * UTF-8, duplicate keys, ...: see pack_field). The others are pseudo-ops:
 * the room's timer runs out, a participant's socket closes, a participant
 * rejoins with pid + secret + since, the whole room is dropped from memory
 * (by the idle sweep, or evicted) and loaded back from SQLite, raw bytes as
 * a binary frame, a text frame. Missing bytes read as 0, so `who op 0` is the op with
 * default, valid fields.
 *
 * After every step the store is pumped until everything is committed and
 * delivered, and these invariants are checked (abort() on violation):
 *   (a) every event a connection receives has seq exactly one more than
 *       the previous (from its join: the ok's seq, or `since` on replay);
 *       a snapshot has the join ok's seq; an `ok` carrying seq comes after
 *       the event with that seq; every request gets exactly one reply, with
 *       its id; nobody else gets replies; every frame passes codec_check;
 *   (b) the room's backlog is strictly ordered by rank, with valid rank keys
 *       and unique ids, and equals what the monitor rebuilt from events;
 *   (c) no card of a round still voting reaches anyone: a `card` key with a
 *       value never appears, and `votes` or `stats` with a value appear
 *       only for a round whose round.revealed event (seq S) the stream has
 *       passed (seq >= S), never in an anonymous round's votes; the
 *       revealed votes are exactly the votes acknowledged with `ok`; no
 *       message holds a Kano answer (`functional`, `dysfunctional`,
 *       `answers`), before or after the survey's reveal;
 *   (d) no `ok` for an op the sender's role may not send (ops_allows), for
 *       a room op before joining, for a second join on one connection, for
 *       a join with a rotated-away token, or with another role than the
 *       token's;
 *   (e) a room loaded back from the store equals the one dropped (settings,
 *       participants, items, rounds, seq, counters, focus, timer, tokens),
 *       and every delivery of an event (live, replayed from memory or from
 *       the store) carries the same bytes;
 *   (f) hints (the `hint` op, an ephemeral notice): a notice is
 *       {t, at, pid, item, what} without seq, never sent to the connection
 *       whose hint it reports, naming an item the room has (or clearing);
 *       the room's list of hinting connections is exactly its connections
 *       that hold one, none an observer, each on an item of the backlog;
 *   (g) a request with a NUL byte in any string is never `ok`: it is
 *       answered `bad_request` with a sentence about the NUL (strings never
 *       contain NUL);
 *   (h) every persona and outcome an item names (persona_id, outcomes) is
 *       one the room has (product_ops.h); (e) compares the product too;
 *   (i) the backlog's health, kept incrementally, equals a recomputation
 *       from scratch (health_check) after every step, and the room loaded
 *       back has the same health (its settings are in the export's room). */
#include <dirent.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "backlog.h"
#include "clock.h"
#include "codec.h"
#include "config.h"
#include "conn.h"
#include "dispatch.h"
#include "errors.h"
#include "frame.h"
#include "health.h"
#include "hint.h"
#include "loader.h"
#include "log.h"
#include "ops.h"
#include "outbox.h"
#include "poker_ops.h"
#include "presence.h"
#include "prio.h"
#include "rank.h"
#include "room.h"
#include "room_load.h"
#include "round.h"
#include "snapshot.h"
#include "store.h"
#include "storymap.h"
#include "token.h"
#include "../alloc_fail.h"
#include "../inproc.h"

#define NSLOTS        5 /* facilitator, owner, member, observer, stranger */
#define MON           NSLOTS
#define NCLIENTS      (NSLOTS + 1)
#define MAX_STEPS     64
#define RECYCLE_EVERY 2000 /* inputs between fresh database files */
#define SEQ_MAX       9007199254740991ull

enum pseudo { P_TICK, P_LEAVE, P_REJOIN, P_RELOAD, P_RAW, P_TEXT, P__COUNT };

#define VIOLATION(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "fuzz_room: invariant violated: ");                                        \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        abort();                                                                                   \
    } while (0)

/* ---- input -------------------------------------------------------------- */

struct rd {
    const uint8_t *p;
    size_t n;
};

static uint8_t u8(struct rd *r)
{
    if (!r->n)
        return 0;
    r->n--;
    return *r->p++;
}

/* ---- the server, in process ---------------------------------------------- */

static struct app app;
static uv_loop_t loop;
static bool trace;        /* FUZZ_ROOM_TRACE=1: print every message, for reading a reproducer */
static char dbdir[4096];  /* private: mkdtemp under $TMPDIR or /tmp */
static char dbpath[4200]; /* dbdir/room.db, and whatever side files the store makes */
static unsigned long inputs;

/* Allocation failure (tests/alloc_fail.h): the input may fail the Nth
 * allocation the server makes after the prelude (see the end of the file).
 * The harness's own work is paused; server_call() opens the server's. */
static long oom_at;    /* N, or 0 */
static bool oom_armed; /* after the prelude of an input with N */
static bool oom_done;  /* it failed: the step is checked, and the input ends */
static void server_call(bool begin);
static void oom_arm(void);
static void oom_save(int who);
static void oom_disarm(void);

/* The allocation failed (in the step going on). */
static bool oom_fired(void)
{
    return oom_armed && alloc_fail_fired();
}

/* Removes every file of dbdir: the database and its side files. */
static void unlink_db(void)
{
    DIR *d = opendir(dbdir);
    struct dirent *e;
    char p[8400];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof p, "%s/%s", dbdir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
}

static void open_store(void)
{
    struct store_hooks hooks = {&app, outbox_on_commit, outbox_on_store_fail};
    unlink_db();
    if (store_open(&app.store, dbpath, &(struct store_options){.full_sync = false}, &loop,
                   &hooks)) {
        fprintf(stderr, "fuzz_room: cannot open the store at %s\n", dbpath);
        abort();
    }
    struct loader_hooks lh;
    room_load_hooks(&app, &lh);
    if (loader_open(&app.loader, &loop, app.store, &lh)) {
        fprintf(stderr, "fuzz_room: cannot start the loader\n");
        abort();
    }
}

static void close_store(void)
{
    loader_close(app.loader);
    app.loader = NULL;
    store_close(app.store);
    app.store = NULL;
    uv_run(&loop, UV_RUN_DEFAULT); /* closes the store's async handle */
    unlink_db();
}

static void at_exit(void)
{
    if (app.store)
        close_store();
    rmdir(dbdir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char *args[] = {"fuzz_room", "--replay-events", "32", NULL};
    if (config_parse(&app.cfg, 3, args, stdout, stderr) != 0)
        abort();
    app.cfg.rate = 1000000000;    /* no rate limit */
    app.cfg.max_rooms = SIZE_MAX; /* a room per input */
    log_set_level(LOG_ERROR);
    trace = getenv("FUZZ_ROOM_TRACE") && *getenv("FUZZ_ROOM_TRACE") == '1';
    if (!dispatch_table_complete())
        VIOLATION("an op of the table has no handler");
    /* A directory of its own under $TMPDIR or /tmp, emptied at exit. */
    const char *tmp = getenv("TMPDIR");
    snprintf(dbdir, sizeof dbdir, "%s/refine-fuzz-room-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(dbdir)) {
        perror(dbdir);
        abort();
    }
    snprintf(dbpath, sizeof dbpath, "%s/room.db", dbdir);
    uv_loop_init(&loop);
    app.loop = &loop;
    conn_lists_init(&app);
    if (outbox_new(&app.outbox))
        abort();
    open_store();
    atexit(at_exit);
    return 0;
}

/* Loop turns until everything appended is committed and released. */
static void pump(void)
{
    server_call(true);
    bool caught_up = inproc_pump(&app);
    server_call(false);
    if (!caught_up)
        VIOLATION("the store never caught up");
}

/* ---- clients ------------------------------------------------------------- */

struct pending {
    uint8_t *data; /* the request as sent */
    size_t len;
    bool binary;
    msgpack_zone zone;
    msgpack_object msg;
    bool decoded;
    const struct op_spec *op;
    bool has_id;
    uint64_t id;
    int role;    /* the sender's role when sent, -1 before joining */
    bool joined; /* the connection had joined a room */
    char pid[TOKEN_LEN + 1];
    int replies;
    bool nul; /* a string of the request holds a NUL byte */
};

struct client {
    struct conn *c;
    struct frame **msgs;
    size_t n, cap, done;
    /* the stream */
    bool joined;
    bool want_snapshot;
    uint64_t snapshot_seq;
    uint64_t next_seq;
    uint64_t last_seq;
    char room[65];
    char epoch[80];
    /* credentials of the participant this slot plays */
    char pid[65], secret[65];
    char name[128];
    struct pending *req;
};

static struct client cl[NCLIENTS];

struct token_set {
    char room[65];
    char tok[ROLE__COUNT][65];
};
static struct token_set main_room, other_room;
static char revoked[16][65];
static size_t nrevoked;
static uint64_t next_id;

static void sink(struct conn *c, struct frame *f)
{
    struct client *k = c->sink_arg;
    server_call(false);
    if (k->n == k->cap) {
        size_t cap = k->cap ? k->cap * 2 : 64;
        struct frame **v = realloc(k->msgs, cap * sizeof *v);
        if (!v)
            abort();
        k->msgs = v;
        k->cap = cap;
    }
    k->msgs[k->n++] = frame_ref(f);
    server_call(true);
}

static void connect_slot(int s)
{
    if (cl[s].c)
        return;
    cl[s].c = conn_new(&app, NULL);
    if (!cl[s].c)
        abort();
    cl[s].c->sink = sink;
    cl[s].c->sink_arg = &cl[s];
    cl[s].joined = false;
    cl[s].want_snapshot = false;
}

static void process(void);

/* The slot's socket closes (between steps: no request is waiting). */
static void disconnect_slot(int s)
{
    struct conn *c = cl[s].c;
    if (!c)
        return;
    if (!oom_done && !oom_fired())
        process();  /* what it received, while it was still joined */
    c->sink = NULL; /* whatever is still held for it goes nowhere */
    server_call(true);
    if (c->room)
        presence_leave(c); /* as net.c does when a socket closes */
    conn_on_closed(c);
    server_call(false);
    cl[s].c = NULL;
    cl[s].joined = false;
    cl[s].want_snapshot = false;
}

static struct room *main_r(void)
{
    return main_room.room[0] ? map_get(&app.rooms, main_room.room, strlen(main_room.room)) : NULL;
}

static void copy_str(char *dst, size_t dstsz, const msgpack_object *o)
{
    if (o && o->type == MSGPACK_OBJECT_STR)
        snprintf(dst, dstsz, "%.*s", (int)o->via.str.size, o->via.str.ptr);
    else
        dst[0] = '\0';
}

static bool is_nil(const msgpack_object *o)
{
    return !o || o->type == MSGPACK_OBJECT_NIL;
}

static void trace_msg(int s, const char *dir, const void *data, size_t len, bool binary)
{
    if (!trace)
        return;
    msgpack_zone z;
    msgpack_object o;
    const char *why;
    msgpack_zone_init(&z, 4096);
    fprintf(stderr, "%s %d %s ", s == MON ? "monitor" : "slot", s == MON ? 0 : s, dir);
    size_t off = 0;
    if (binary && codec_check_structure(data, len, &why) == 0 &&
        msgpack_unpack(data, len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS) {
        struct codec_buf b;
        codec_buf_init(&b, 0);
        codec_to_json(&b, &o);
        fprintf(stderr, "%.*s\n", (int)b.len, b.data);
        codec_buf_free(&b);
    } else {
        fprintf(stderr, "(%s, %zu bytes)\n", binary ? "not a valid map" : "text", len);
    }
    msgpack_zone_destroy(&z);
}

/* ---- registries: reveals and votes ------------------------------------- */

struct reveal {
    char room[65], round[16];
    uint64_t seq;   /* of round.revealed, 0 while unknown */
    bool anonymous; /* from round.started */
    bool started;   /* round.started seen */
    char pids[80][TOKEN_LEN + 1];
    char cards[80][DECK_CARD_MAX + 1];
    size_t nvotes; /* votes acknowledged with ok, main room */
};

static struct reveal reveals[256];
static size_t nreveals;

static struct reveal *reveal_get(const char *room, const char *round, bool create)
{
    for (size_t i = 0; i < nreveals; i++)
        if (strcmp(reveals[i].room, room) == 0 && strcmp(reveals[i].round, round) == 0)
            return &reveals[i];
    if (!create || nreveals == sizeof reveals / sizeof reveals[0])
        return NULL;
    struct reveal *rv = &reveals[nreveals++];
    memset(rv, 0, sizeof *rv);
    snprintf(rv->room, sizeof rv->room, "%s", room);
    snprintf(rv->round, sizeof rv->round, "%s", round);
    return rv;
}

static void vote_apply(struct reveal *rv, const char *pid, const msgpack_object *card)
{
    size_t i = 0;
    while (i < rv->nvotes && strcmp(rv->pids[i], pid) != 0)
        i++;
    if (is_nil(card)) {
        if (i < rv->nvotes) {
            rv->nvotes--;
            memcpy(rv->pids[i], rv->pids[rv->nvotes], sizeof rv->pids[i]);
            memcpy(rv->cards[i], rv->cards[rv->nvotes], sizeof rv->cards[i]);
        }
        return;
    }
    if (i == rv->nvotes) {
        if (rv->nvotes == sizeof rv->pids / sizeof rv->pids[0])
            return;
        rv->nvotes++;
        snprintf(rv->pids[i], sizeof rv->pids[i], "%s", pid);
    }
    copy_str(rv->cards[i], sizeof rv->cards[i], card);
}

/* ---- every event of the main room, as first delivered ----------------------- */

#define MAX_EVENTS 4096
struct seen_event {
    uint64_t hash; /* FNV-1a of the frame */
    uint32_t len;
    bool set;
};
static struct seen_event events[MAX_EVENTS];
static uint64_t max_event;

/* A replay (from the ring, or from the store after a reload) must deliver
 * the very bytes of the live event. */
static void check_event_bytes(uint64_t seq, const struct frame *f)
{
    if (seq >= MAX_EVENTS)
        return;
    uint64_t h = 1469598103934665603ull;
    for (uint32_t i = 0; i < f->len; i++)
        h = (h ^ f->data[i]) * 1099511628211ull;
    struct seen_event *e = &events[seq];
    if (!e->set) {
        *e = (struct seen_event){h, f->len, true};
        if (seq > max_event)
            max_event = seq;
    } else if (e->hash != h || e->len != f->len) {
        VIOLATION("event seq %llu was delivered with other bytes than before (%u / %u bytes)",
                  (unsigned long long)seq, f->len, e->len);
    }
}

/* ---- the monitor's model of the backlog ---------------------------------- */

struct mitem {
    char id[ITEM_ID_MAX];
    char rank[RANK_MAX + 1];
    char step[SMAP_ID_MAX], slice[SMAP_ID_MAX]; /* its place on the story map ("": none) */
};
static struct mitem *model;
static size_t nmodel, capmodel;

static struct mitem *model_find(const char *id)
{
    for (size_t i = 0; i < nmodel; i++)
        if (strcmp(model[i].id, id) == 0)
            return &model[i];
    return NULL;
}

static void model_put(const msgpack_object *item)
{
    char id[64], rank[128];
    copy_str(id, sizeof id, codec_get(item, "id"));
    copy_str(rank, sizeof rank, codec_get(item, "rank"));
    if (!id[0] || strlen(id) >= ITEM_ID_MAX || strlen(rank) > RANK_MAX)
        VIOLATION("an item event holds the bad id '%s' or rank '%s'", id, rank);
    if (model_find(id))
        VIOLATION("item %s was announced twice", id);
    if (nmodel == capmodel) {
        capmodel = capmodel ? capmodel * 2 : 64;
        model = realloc(model, capmodel * sizeof *model);
        if (!model)
            abort();
    }
    snprintf(model[nmodel].id, sizeof model[nmodel].id, "%s", id);
    snprintf(model[nmodel].rank, sizeof model[nmodel].rank, "%s", rank);
    copy_str(model[nmodel].step, sizeof model[nmodel].step, codec_get(item, "step"));
    copy_str(model[nmodel].slice, sizeof model[nmodel].slice, codec_get(item, "slice"));
    nmodel++;
}

static int mitem_cmp(const void *a, const void *b)
{
    return strcmp(((const struct mitem *)a)->rank, ((const struct mitem *)b)->rank);
}

static void model_apply(const char *t, const msgpack_object *m)
{
    char id[64];
    if (strcmp(t, "snapshot") == 0) {
        nmodel = 0;
        const msgpack_object *items = codec_get(m, "items");
        if (!items || items->type != MSGPACK_OBJECT_ARRAY)
            VIOLATION("a snapshot without items");
        for (uint32_t i = 0; i < items->via.array.size; i++)
            model_put(&items->via.array.ptr[i]);
    } else if (strcmp(t, "item.added") == 0) {
        model_put(codec_get(m, "item"));
    } else if (strcmp(t, "item.split") == 0) {
        const msgpack_object *ch = codec_get(m, "children");
        if (!ch || ch->type != MSGPACK_OBJECT_ARRAY || ch->via.array.size == 0)
            VIOLATION("item.split without children");
        for (uint32_t i = 0; i < ch->via.array.size; i++)
            model_put(&ch->via.array.ptr[i]);
    } else if (strcmp(t, "item.moved") == 0) {
        copy_str(id, sizeof id, codec_get(m, "item"));
        struct mitem *it = model_find(id);
        if (!it)
            VIOLATION("item.moved names the unknown item '%s'", id);
        copy_str(it->rank, sizeof it->rank, codec_get(m, "rank"));
    } else if (strcmp(t, "item.removed") == 0) {
        copy_str(id, sizeof id, codec_get(m, "item"));
        struct mitem *it = model_find(id);
        if (!it)
            VIOLATION("item.removed names the unknown item '%s'", id);
        *it = model[--nmodel];
    } else if (strcmp(t, "order.applied") == 0) {
        const msgpack_object *ranks = codec_get(m, "ranks");
        if (!ranks || ranks->type != MSGPACK_OBJECT_MAP || ranks->via.map.size == 0)
            VIOLATION("order.applied without ranks");
        for (uint32_t i = 0; i < ranks->via.map.size; i++) {
            copy_str(id, sizeof id, &ranks->via.map.ptr[i].key);
            struct mitem *it = model_find(id);
            if (!it)
                VIOLATION("order.applied names the unknown item '%s'", id);
            copy_str(it->rank, sizeof it->rank, &ranks->via.map.ptr[i].val);
        }
    } else if (strcmp(t, "item.unsplit") == 0) {
        const msgpack_object *ch = codec_get(m, "children");
        if (!ch || ch->type != MSGPACK_OBJECT_ARRAY || ch->via.array.size == 0)
            VIOLATION("item.unsplit without children");
        for (uint32_t i = 0; i < ch->via.array.size; i++) {
            copy_str(id, sizeof id, &ch->via.array.ptr[i]);
            struct mitem *it = model_find(id);
            if (!it)
                VIOLATION("item.unsplit names the unknown child '%s'", id);
            *it = model[--nmodel];
        }
    } else if (strcmp(t, "map.placed") == 0) {
        copy_str(id, sizeof id, codec_get(m, "item"));
        struct mitem *it = model_find(id);
        if (!it)
            VIOLATION("map.placed names the unknown item '%s'", id);
        copy_str(it->step, sizeof it->step, codec_get(m, "step"));
        copy_str(it->slice, sizeof it->slice, codec_get(m, "slice"));
    } else if (strcmp(t, "map.removed") == 0) {
        const msgpack_object *un = codec_get(m, "unplaced");
        if (!un || un->type != MSGPACK_OBJECT_ARRAY)
            VIOLATION("map.removed without unplaced");
        for (uint32_t i = 0; i < un->via.array.size; i++) {
            copy_str(id, sizeof id, &un->via.array.ptr[i]);
            struct mitem *it = model_find(id);
            if (!it)
                VIOLATION("map.removed unplaces the unknown item '%s'", id);
            it->step[0] = it->slice[0] = '\0';
        }
    } else if (strcmp(t, "items.reranked") == 0) {
        const msgpack_object *ranks = codec_get(m, "ranks");
        if (!ranks || ranks->type != MSGPACK_OBJECT_MAP)
            VIOLATION("items.reranked without ranks");
        /* It may name children of the split that follows: those come with
         * their ranks in item.split. */
        for (uint32_t i = 0; i < ranks->via.map.size; i++) {
            copy_str(id, sizeof id, &ranks->via.map.ptr[i].key);
            struct mitem *it = model_find(id);
            if (it)
                copy_str(it->rank, sizeof it->rank, &ranks->via.map.ptr[i].val);
        }
        for (size_t i = 0; i < nmodel; i++) {
            int named = 0;
            for (uint32_t k = 0; k < ranks->via.map.size && !named; k++)
                named = codec_str_eq(&ranks->via.map.ptr[k].key, model[i].id);
            if (!named)
                VIOLATION("items.reranked leaves item %s out", model[i].id);
        }
    }
}

/* ---- checks on what a connection receives --------------------------------- */

/* Secrecy (c): walks a received message. pos is the stream's seq at it. */
static void scan_secrets(const msgpack_object *o, const char *room, uint64_t pos, int depth)
{
    if (depth > 40)
        return;
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++)
            scan_secrets(&o->via.array.ptr[i], room, pos, depth + 1);
        return;
    }
    if (o->type != MSGPACK_OBJECT_MAP)
        return;
    const msgpack_object *card = codec_get(o, "card");
    if (card && !is_nil(card))
        VIOLATION("a message holds a card: '%.*s'",
                  card->type == MSGPACK_OBJECT_STR ? (int)card->via.str.size : 1,
                  card->type == MSGPACK_OBJECT_STR ? card->via.str.ptr : "?");
    if (codec_get(o, "functional") || codec_get(o, "dysfunctional") || codec_get(o, "answers"))
        VIOLATION("a message holds someone's Kano answer");
    const msgpack_object *votes = codec_get(o, "votes"), *stats = codec_get(o, "stats");
    if (!is_nil(votes) || !is_nil(stats)) {
        char round[64];
        if (codec_str_eq(codec_get(o, "t"), "round.revealed"))
            copy_str(round, sizeof round, codec_get(o, "round"));
        else if (codec_get(o, "state"))
            copy_str(round, sizeof round, codec_get(o, "id"));
        else
            VIOLATION("votes or stats outside a round");
        struct reveal *rv = reveal_get(room, round, false);
        if (!rv || !rv->seq)
            VIOLATION("votes or stats of round %s, which was never revealed", round);
        if (pos < rv->seq)
            VIOLATION("votes or stats of round %s at seq %llu, before its reveal at seq %llu",
                      round, (unsigned long long)pos, (unsigned long long)rv->seq);
        if (rv->anonymous && !is_nil(votes))
            VIOLATION("the votes of anonymous round %s were shown", round);
    }
    for (uint32_t i = 0; i < o->via.map.size; i++)
        scan_secrets(&o->via.map.ptr[i].val, room, pos, depth + 1);
}

/* The votes of a round.revealed event (main room) against the acknowledged ones. */
static void check_reveal_votes(const msgpack_object *m)
{
    char round[64];
    copy_str(round, sizeof round, codec_get(m, "round"));
    struct reveal *rv = reveal_get(main_room.room, round, false);
    if (!rv || !rv->started)
        return; /* started before the monitor was there (cannot happen) */
    const msgpack_object *votes = codec_get(m, "votes"), *stats = codec_get(m, "stats");
    uint64_t count = 0;
    if (!codec_get_uint(stats, "count", &count) || count != rv->nvotes)
        VIOLATION("round %s revealed with count %llu, %zu votes were acknowledged", round,
                  (unsigned long long)count, rv->nvotes);
    if (rv->anonymous)
        return;
    if (!votes || votes->type != MSGPACK_OBJECT_MAP || votes->via.map.size != rv->nvotes)
        VIOLATION("round %s revealed %u votes, %zu were acknowledged", round,
                  votes && votes->type == MSGPACK_OBJECT_MAP ? votes->via.map.size : 0, rv->nvotes);
    for (size_t i = 0; i < rv->nvotes; i++) {
        const msgpack_object *c = codec_get(votes, rv->pids[i]);
        if (!codec_str_eq(c, rv->cards[i]))
            VIOLATION("round %s revealed another card for %s than the acknowledged '%s'", round,
                      rv->pids[i], rv->cards[i]);
    }
}

static void pending_free(struct pending *p)
{
    if (!p)
        return;
    if (p->decoded)
        msgpack_zone_destroy(&p->zone);
    free(p->data);
    free(p);
}

/* A join's `ok` (its request is p): the stream starts. */
static void on_join_ok(int s, struct pending *p, const msgpack_object *m)
{
    struct client *k = &cl[s];
    uint64_t seq = 0, since = 0;
    const msgpack_object *mode = codec_get(m, "mode");
    if (k->joined)
        VIOLATION("a second join on one connection was accepted");
    if (!codec_get_uint(m, "seq", &seq))
        VIOLATION("a join ok without seq");
    bool has_since = codec_get_uint(&p->msg, "since", &since);
    if (codec_str_eq(mode, "replay")) {
        if (!has_since || since > seq)
            VIOLATION("replay mode for a join with since %llu (seq %llu)",
                      (unsigned long long)since, (unsigned long long)seq);
        k->next_seq = since + 1;
        k->want_snapshot = false;
    } else if (codec_str_eq(mode, "snapshot")) {
        k->want_snapshot = true;
        k->snapshot_seq = seq;
        k->next_seq = seq + 1;
    } else {
        VIOLATION("a join ok without a mode");
    }
    k->last_seq = k->next_seq - 1;
    k->joined = true;
    copy_str(k->room, sizeof k->room, codec_get(&p->msg, "room"));
    copy_str(k->epoch, sizeof k->epoch, codec_get(m, "epoch"));
    copy_str(k->pid, sizeof k->pid, codec_get(m, "pid"));
    copy_str(k->secret, sizeof k->secret, codec_get(m, "secret"));
    copy_str(k->name, sizeof k->name, codec_get(m, "name"));

    /* Joined with a token (not pid + secret): a new participant of the
     * token's role, and never with a rotated-away token. */
    const msgpack_object *tok = codec_get(&p->msg, "token");
    if (tok && !codec_get(&p->msg, "pid")) {
        char t[65];
        copy_str(t, sizeof t, tok);
        for (size_t i = 0; i < nrevoked; i++)
            if (strcmp(revoked[i], t) == 0)
                VIOLATION("a join with a rotated-away token was accepted");
        const struct token_set *ts = strcmp(k->room, main_room.room) == 0    ? &main_room
                                     : strcmp(k->room, other_room.room) == 0 ? &other_room
                                                                             : NULL;
        int role = -1;
        for (int i = 0; ts && i < ROLE__COUNT; i++)
            if (strcmp(ts->tok[i], t) == 0)
                role = i;
        if (role < 0)
            VIOLATION("a join with an unknown token was accepted");
        if (!codec_str_eq(codec_get(m, "role"), role_name(role)))
            VIOLATION("a join with the %s token gave another role", role_name(role));
    }
}

/* The reply to slot s's request p. */
static void on_reply(int s, struct pending *p, const msgpack_object *m, bool ok)
{
    struct client *k = &cl[s];
    if (!p)
        VIOLATION("slot %d got a reply to a request it did not send", s);
    p->replies++;
    if (p->replies > 1)
        VIOLATION("slot %d got %d replies to one request", s, p->replies);
    const msgpack_object *id = codec_get(m, "id");
    if (!id)
        VIOLATION("a reply without id");
    if (p->has_id && !(id->type == MSGPACK_OBJECT_POSITIVE_INTEGER && id->via.u64 == p->id))
        VIOLATION("the reply to request %llu has another id", (unsigned long long)p->id);
    if (!ok) {
        const msgpack_object *code = codec_get(m, "code"), *msg = codec_get(m, "msg");
        if (!code || code->type != MSGPACK_OBJECT_STR || !msg || msg->type != MSGPACK_OBJECT_STR ||
            msg->via.str.size == 0)
            VIOLATION("an err without code or msg");
        /* (g) */
        char text[300];
        copy_str(text, sizeof text, msg);
        if (p->nul && (!codec_str_eq(code, "bad_request") || !strstr(text, "NUL byte")))
            VIOLATION("a request with a NUL in a string got '%.*s', not bad_request naming it",
                      (int)code->via.str.size, code->via.str.ptr);
        return;
    }
    if (p->nul)
        VIOLATION("ok to a request with a NUL byte in a string");
    /* (d) rights. */
    if (!p->op)
        VIOLATION("ok to a request that names no operation");
    if (!p->has_id)
        VIOLATION("ok to a request without a valid id");
    if (!(p->op->flags & OPF_NO_JOIN)) {
        if (!p->joined)
            VIOLATION("ok to '%s' before joining", p->op->name);
        if (!ops_allows(p->op, p->role))
            VIOLATION("ok to '%s' from the %s role", p->op->name, role_name(p->role));
    }
    uint64_t seq;
    switch (p->op->id) {
    case OP_JOIN:
        on_join_ok(s, p, m);
        return;
    case OP_ROOM_CREATE: {
        struct token_set *ts = main_room.room[0] ? &other_room : &main_room;
        const msgpack_object *toks = codec_get(m, "tokens");
        copy_str(ts->room, sizeof ts->room, codec_get(m, "room"));
        for (int i = 0; i < ROLE__COUNT; i++)
            copy_str(ts->tok[i], sizeof ts->tok[i], codec_get(toks, role_name(i)));
        if (!ts->room[0] || !ts->tok[0][0])
            VIOLATION("room.create's ok without room or tokens");
        return;
    }
    case OP_TOKEN_ROTATE: {
        char role[16], tok[65];
        copy_str(role, sizeof role, codec_get(&p->msg, "role"));
        copy_str(tok, sizeof tok, codec_get(m, "token"));
        int r = role_parse(role, strlen(role));
        struct token_set *ts = strcmp(k->room, main_room.room) == 0    ? &main_room
                               : strcmp(k->room, other_room.room) == 0 ? &other_room
                                                                       : NULL;
        if (r < 0 || !tok[0])
            VIOLATION("token.rotate's ok without a token");
        if (ts) {
            if (nrevoked < sizeof revoked / sizeof revoked[0])
                snprintf(revoked[nrevoked++], sizeof revoked[0], "%s", ts->tok[r]);
            snprintf(ts->tok[r], sizeof ts->tok[r], "%s", tok);
        }
        break;
    }
    case OP_VOTE:
        if (strcmp(k->room, main_room.room) == 0) {
            char round[64];
            copy_str(round, sizeof round, codec_get(&p->msg, "round"));
            struct reveal *rv = reveal_get(main_room.room, round, true);
            if (rv)
                vote_apply(rv, p->pid, codec_get(&p->msg, "card"));
        }
        break;
    default:
        break;
    }
    /* A change that changes nothing is answered ok without seq (and no event,
     * which (a) checks); only these ops can be one. */
    /* clang-format off */
    static const char *const may_change_nothing[] = {
        "vote",
        "role.set",
        "room.update",
        "item.update",
        "item.move",
        "focus",
        "kano.answer",
        "order.apply",
        "undo", /* of a move back to where the item is again */
        "vision.set",
        "persona.update",
        "outcome.update",
        "map.update",
        "map.move",
        "map.place",
    };
    /* clang-format on */
    bool nothing = false;
    for (size_t i = 0; i < sizeof may_change_nothing / sizeof may_change_nothing[0]; i++)
        nothing |= strcmp(p->op->name, may_change_nothing[i]) == 0 && !codec_get(m, "seq");
    if ((p->op->flags & OPF_CHANGES) && !nothing) {
        if (!codec_get_uint(m, "seq", &seq))
            VIOLATION("ok to '%s' without seq", p->op->name);
        if (seq != k->last_seq)
            VIOLATION("ok to '%s' with seq %llu, but the last event this connection got is %llu",
                      p->op->name, (unsigned long long)seq, (unsigned long long)k->last_seq);
    }
}

/* (i) A health notice: {t, at, health: {scores (five), top, per_rule, changed: [{item, rules}]}},
 * no seq. */
static void check_health_notice(const msgpack_object *m)
{
    const msgpack_object *at = codec_get(m, "at"), *h = codec_get(m, "health");
    const msgpack_object *scores =
        h && h->type == MSGPACK_OBJECT_MAP ? codec_get(h, "scores") : NULL;
    const msgpack_object *changed = scores ? codec_get(h, "changed") : NULL;
    if (codec_get(m, "seq") || !at || at->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !scores ||
        scores->type != MSGPACK_OBJECT_MAP || scores->via.map.size != 5 || !changed ||
        changed->type != MSGPACK_OBJECT_ARRAY || !codec_get(h, "top") || !codec_get(h, "per_rule"))
        VIOLATION("a malformed health notice");
    for (uint32_t i = 0; i < changed->via.array.size; i++) {
        const msgpack_object *f = &changed->via.array.ptr[i];
        const msgpack_object *item = f->type == MSGPACK_OBJECT_MAP ? codec_get(f, "item") : NULL;
        const msgpack_object *rules = item ? codec_get(f, "rules") : NULL;
        if (!item || item->type != MSGPACK_OBJECT_STR || !rules ||
            rules->type != MSGPACK_OBJECT_ARRAY || rules->via.array.size > HR__COUNT)
            VIOLATION("a malformed finding in a health notice");
    }
}

/* (f) A hint notice: {t, at, pid, item, what} without seq, item and what
 * both nil (a clear) or an item of the room and editing or dragging; never
 * to the connection whose hint it reports (one op per step: the slot that
 * sent `hint` in this step gets no hint notice). */
static void check_hint_notice(int s, const msgpack_object *m)
{
    const msgpack_object *item = codec_get(m, "item"), *what = codec_get(m, "what");
    const struct pending *p = cl[s].req;
    if (codec_get(m, "seq") || codec_get(m, "by") || !codec_get(m, "at") || !item || !what ||
        m->via.map.size != 5)
        VIOLATION("a hint notice that is not {t, at, pid, item, what}");
    if (p && p->op && p->op->id == OP_HINT)
        VIOLATION("slot %d got the notice of its own hint", s);
    if ((item->type == MSGPACK_OBJECT_NIL) != (what->type == MSGPACK_OBJECT_NIL))
        VIOLATION("a hint notice with one of item and what nil");
    if (what->type != MSGPACK_OBJECT_NIL && !codec_str_eq(what, "editing") &&
        !codec_str_eq(what, "dragging"))
        VIOLATION("a hint notice with an unknown what");
    struct room *r = main_r();
    if (item->type == MSGPACK_OBJECT_STR && r && strcmp(cl[s].room, main_room.room) == 0 &&
        !backlog_get(&r->backlog, item->via.str.ptr, item->via.str.size))
        VIOLATION("a hint notice names the item '%.*s', which the room does not have",
                  (int)item->via.str.size, item->via.str.ptr);
    scan_secrets(m, cl[s].room, 0, 0);
}

/* Every new frame of every client: first the reveals (from anyone), then
 * each stream in order; the monitor last, so that votes acknowledged in
 * this step are known when it checks a reveal. */
static void process(void)
{
    for (int s = 0; s < NCLIENTS; s++) {
        /* The room of the stream at each frame: a join's ok switches it. */
        char room[65];
        snprintf(room, sizeof room, "%s", cl[s].joined ? cl[s].room : "");
        for (size_t i = cl[s].done; i < cl[s].n; i++) {
            struct frame *f = cl[s].msgs[i];
            const char *why;
            trace_msg(s, "<-", f->data, f->len, true);
            if (codec_check(f->data, f->len, &why))
                VIOLATION("the server sent slot %d a frame its own codec refuses: %s", s, why);
            msgpack_zone z;
            msgpack_object m;
            msgpack_zone_init(&z, 4096);
            memset(&m, 0, sizeof m);
            size_t off = 0;
            msgpack_unpack((const char *)f->data, f->len, &off, &z, &m);
            uint64_t seq;
            const msgpack_object *t = codec_get(&m, "t");
            const struct pending *p = cl[s].req;
            if (codec_str_eq(t, "ok") && p && p->op && p->op->id == OP_JOIN)
                copy_str(room, sizeof room, codec_get(&p->msg, "room"));
            if (!room[0]) {
                msgpack_zone_destroy(&z);
                continue;
            }
            if (codec_get_uint(&m, "seq", &seq) && codec_str_eq(t, "round.started")) {
                char round[64];
                copy_str(round, sizeof round, codec_get(&m, "round"));
                struct reveal *rv = reveal_get(room, round, true);
                const msgpack_object *anon = codec_get(&m, "anonymous");
                if (rv) {
                    rv->started = true;
                    rv->anonymous =
                        anon && anon->type == MSGPACK_OBJECT_BOOLEAN && anon->via.boolean;
                }
            }
            if (codec_get_uint(&m, "seq", &seq) && codec_str_eq(t, "round.revealed")) {
                char round[64];
                copy_str(round, sizeof round, codec_get(&m, "round"));
                struct reveal *rv = reveal_get(room, round, true);
                if (rv && rv->seq && rv->seq != seq)
                    VIOLATION("round %s revealed at seq %llu and at seq %llu", round,
                              (unsigned long long)rv->seq, (unsigned long long)seq);
                if (rv)
                    rv->seq = seq;
            }
            msgpack_zone_destroy(&z);
        }
    }
    for (int pass = 0; pass < 2; pass++) {
        for (int s = 0; s < NCLIENTS; s++) {
            if ((s == MON) != (pass == 1))
                continue;
            struct client *k = &cl[s];
            for (; k->done < k->n; k->done++) {
                struct frame *f = k->msgs[k->done];
                msgpack_zone z;
                msgpack_object m;
                const char *why;
                msgpack_zone_init(&z, 4096);
                size_t off = 0;
                if (codec_check_structure(f->data, f->len, &why) ||
                    msgpack_unpack((const char *)f->data, f->len, &off, &z, &m) !=
                        MSGPACK_UNPACK_SUCCESS)
                    VIOLATION("undecodable frame");
                char t[64];
                copy_str(t, sizeof t, codec_get(&m, "t"));
                uint64_t seq = 0;
                bool has_seq = codec_get_uint(&m, "seq", &seq);
                if (!t[0])
                    VIOLATION("a message without t");
                if (strcmp(t, "ok") == 0 || strcmp(t, "err") == 0) {
                    scan_secrets(&m, k->room, 0, 0); /* a reply never shows votes */
                    on_reply(s, k->req, &m, strcmp(t, "ok") == 0);
                } else if (!k->joined) {
                    VIOLATION("slot %d got '%s' without having joined", s, t);
                } else if (strcmp(t, "snapshot") == 0) {
                    if (!k->want_snapshot || !has_seq || seq != k->snapshot_seq)
                        VIOLATION("an unexpected snapshot (seq %llu, join said %llu)",
                                  (unsigned long long)seq, (unsigned long long)k->snapshot_seq);
                    k->want_snapshot = false;
                    k->last_seq = seq;
                    scan_secrets(&m, k->room, seq, 0);
                    if (s == MON)
                        model_apply(t, &m);
                } else if (has_seq) {
                    if (k->want_snapshot)
                        VIOLATION("event '%s' before the snapshot", t);
                    if (seq != k->next_seq)
                        VIOLATION("slot %d got event '%s' with seq %llu, expected %llu", s, t,
                                  (unsigned long long)seq, (unsigned long long)k->next_seq);
                    k->next_seq++;
                    k->last_seq = seq;
                    if (strcmp(k->room, main_room.room) == 0)
                        check_event_bytes(seq, f);
                    scan_secrets(&m, k->room, seq, 0);
                    if (s == MON) {
                        model_apply(t, &m);
                        if (strcmp(t, "round.revealed") == 0)
                            check_reveal_votes(&m);
                    }
                } else if (strcmp(t, "hint") == 0) {
                    check_hint_notice(s, &m);
                } else if (strcmp(t, "health") == 0) {
                    check_health_notice(&m);
                    scan_secrets(&m, k->room, 0, 0);
                } else if (strcmp(t, "participant.joined") == 0 ||
                           strcmp(t, "participant.left") == 0) {
                    if (!codec_get(&m, "pid") || !codec_get(&m, "at"))
                        VIOLATION("a presence notice without pid or at");
                    scan_secrets(&m, k->room, 0, 0);
                } else {
                    VIOLATION("an unknown message '%s'", t);
                }
                msgpack_zone_destroy(&z);
            }
        }
    }
    for (int s = 0; s < NCLIENTS; s++) {
        struct pending *p = cl[s].req;
        if (p && p->replies != 1)
            VIOLATION("slot %d got %d replies to its request", s, p->replies);
        pending_free(p);
        cl[s].req = NULL;
    }
}

/* (b), and the monitor's model against the room. */
/* The item's step or slice, "" when nil. */
static const char *item_place(const struct item *it, enum item_field f)
{
    return it->f[f].type == IV_STR ? it->f[f].u.s : "";
}

/* (h) The story map: within its limits, ids unique, every step under an
 * activity of the map; every item placed on both a step and a slice of the
 * map, or on neither. */
static void check_map(const struct room *r)
{
    struct storymap *m = r->smap;
    enum smap_kind k;
    size_t ix;
    for (int kind = 0; m && kind < SMAP__NKIND; kind++) {
        if (m->n[kind] > storymap_max(kind))
            VIOLATION("the map holds %zu %ss", m->n[kind], storymap_kind_name(kind));
        for (size_t i = 0; i < m->n[kind]; i++) {
            const struct smap_node *n = &storymap_nodes(m, kind)[i];
            if (storymap_find(m, n->id, strlen(n->id), &k, &ix) != n)
                VIOLATION("map node %s is not the one found under its id", n->id);
            if (kind == SMAP_STEP &&
                (!storymap_find(m, n->activity, strlen(n->activity), &k, &ix) ||
                 k != SMAP_ACTIVITY))
                VIOLATION("step %s is under '%s', not an activity of the map", n->id, n->activity);
        }
    }
    for (size_t i = 0; i < r->backlog.n; i++) {
        const struct item *it = r->backlog.v[i];
        const char *step = item_place(it, ITEM_F_STEP), *slice = item_place(it, ITEM_F_SLICE);
        if (!*step != !*slice)
            VIOLATION("item %s is on step '%s' and slice '%s'", it->id, step, slice);
        if (*step && (!storymap_find(m, step, strlen(step), &k, &ix) || k != SMAP_STEP))
            VIOLATION("item %s is on '%s', not a step of the map", it->id, step);
        if (*slice && (!storymap_find(m, slice, strlen(slice), &k, &ix) || k != SMAP_SLICE))
            VIOLATION("item %s is on '%s', not a slice of the map", it->id, slice);
    }
}

static void check_room(void)
{
    struct room *r = main_r();
    if (!r)
        return;
    const struct backlog *b = &r->backlog;
    if (b->n > BACKLOG_MAX_ITEMS)
        VIOLATION("the backlog holds %zu items", b->n);
    for (size_t i = 0; i < b->n; i++) {
        const struct item *it = b->v[i];
        if (!rank_valid(it->rank))
            VIOLATION("item %s has the invalid rank '%s'", it->id, it->rank);
        if (i && strcmp(b->v[i - 1]->rank, it->rank) >= 0)
            VIOLATION("items %s '%s' and %s '%s' are out of rank order", b->v[i - 1]->id,
                      b->v[i - 1]->rank, it->id, it->rank);
        if (backlog_get(b, it->id, strlen(it->id)) != it)
            VIOLATION("item %s is not the one found under its id", it->id);
    }
    if (b->by_id.count != b->n)
        VIOLATION("the backlog holds %zu items under %zu ids", b->n, b->by_id.count);
    /* (h) Every persona and outcome an item names is the room's. */
    for (size_t i = 0; i < b->n; i++) {
        const struct ival *pv = &b->v[i]->f[ITEM_F_PERSONA_ID], *ov = &b->v[i]->f[ITEM_F_OUTCOMES];
        bool found = pv->type == IV_NIL;
        for (size_t k = 0; !found && k < r->product.npersonas; k++)
            found = strcmp(r->product.personas[k].id, pv->u.s) == 0;
        if (!found)
            VIOLATION("item %s names a persona the room does not have", b->v[i]->id);
        for (uint32_t j = 0; ov->type == IV_LIST && j < ov->u.l.n; j++) {
            found = false;
            for (size_t k = 0; !found && k < r->product.noutcomes; k++)
                found = strcmp(r->product.outcomes[k].id, ov->u.l.v[j]) == 0;
            if (!found)
                VIOLATION("item %s names the outcome %s the room does not have", b->v[i]->id,
                          ov->u.l.v[j]);
        }
    }
    check_map(r);
    /* (i) */
    if (health_check(&r->health))
        VIOLATION("the room's health differs from a recomputation (logged above)");
    for (size_t i = 0; b->n < 512 && i < b->n; i++)
        for (size_t k = i + 1; k < b->n; k++)
            if (strcmp(b->v[i]->id, b->v[k]->id) == 0)
                VIOLATION("two items have the id %s", b->v[i]->id);

    /* (f) The connections holding a hint are the room's, not observers',
     * each on an item the room has (a removed or split item drops them). */
    size_t hinting = 0, hinted = 0;
    list_each(l, &r->hinting)
    {
        const struct conn *c = conn_of_hint(l);
        hinting++;
        if (c->room != r || !c->part || c->part->role == ROLE_OBSERVER)
            VIOLATION("a hint held by a connection that may not hint");
        if ((c->hint.what != HINT_EDITING && c->hint.what != HINT_DRAGGING) ||
            !backlog_get(b, c->hint.item, strlen(c->hint.item)))
            VIOLATION("a hint on '%s', which the room does not have", c->hint.item);
        if (l->next->prev != l)
            VIOLATION("the room's list of hints is broken");
    }
    list_each(l, &r->conns) hinted += conn_of_room(l)->hint.what != HINT_NONE;
    if (hinted != hinting)
        VIOLATION("%zu connections hold a hint, %zu are on the room's list", hinted, hinting);

    struct client *mon = &cl[MON];
    if (!mon->joined || mon->want_snapshot || strcmp(mon->room, main_room.room) != 0)
        return;
    if (mon->last_seq != r->seq)
        VIOLATION("the monitor is at seq %llu, the room at %llu", (unsigned long long)mon->last_seq,
                  (unsigned long long)r->seq);
    if (nmodel != b->n)
        VIOLATION("the events describe %zu items, the room holds %zu", nmodel, b->n);
    if (nmodel > 1)
        qsort(model, nmodel, sizeof *model, mitem_cmp);
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(model[i].id, b->v[i]->id) != 0 || strcmp(model[i].rank, b->v[i]->rank) != 0)
            VIOLATION("position %zu: the events say %s '%s', the room has %s '%s'", i, model[i].id,
                      model[i].rank, b->v[i]->id, b->v[i]->rank);
    for (size_t i = 0; i < b->n; i++) {
        const char *step = item_place(b->v[i], ITEM_F_STEP),
                   *slice = item_place(b->v[i], ITEM_F_SLICE);
        if (strcmp(model[i].step, step) != 0 || strcmp(model[i].slice, slice) != 0)
            VIOLATION("item %s: the events place it on (%s, %s), the room on (%s, %s)", model[i].id,
                      model[i].step, model[i].slice, step, slice);
    }
}

/* ---- requests ------------------------------------------------------------ */

struct gen {
    struct rd *in;
    int slot;
    const struct op_spec *op;
    bool rejoin;   /* a join with the slot's pid + secret + since */
    int cred_slot; /* whose pid the join's pid field named */
    const struct token_set *room;
    int map_kind; /* the kind of node a map.add or map.move names (for its `after`) */
};

static void pack_rep(msgpack_packer *pk, const char *unit, size_t count)
{
    size_t u = strlen(unit);
    msgpack_pack_str(pk, u * count);
    for (size_t i = 0; i < count; i++)
        msgpack_pack_str_body(pk, unit, u);
}

static void pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    codec_pack_strn(pk, s, n);
}

static const char *const CARD_POOL[] = {
    "1", "2",  "3", "5",   "8", "?",   "coffee", "½", "S", "M",
    "L", "XL", "0", "100", "x", "1.5", "-3",     "A", "",  "abcdefghijklmnop"};

static void pack_deck(msgpack_packer *pk, struct gen *g, uint8_t sub)
{
    static const char *const names[] = {"fibonacci", "modified", "tshirt", "powers"};
    switch (sub % 6) {
    case 4: {
        size_t n = 1 + u8(g->in) % 6;
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            codec_pack_str(pk, CARD_POOL[u8(g->in) % (sizeof CARD_POOL / sizeof CARD_POOL[0])]);
        return;
    }
    case 5:
        codec_pack_str(pk, sub & 0x40 ? "Fibonacci" : "nope");
        return;
    default:
        codec_pack_str(pk, names[sub % 6 % 4]);
    }
}

/* An item id of the room, counted from the top or the bottom (or a junk one). */
static void pack_item_id(msgpack_packer *pk, uint8_t sub, bool from_end)
{
    static const char *const junk[] = {"i0", "i999999", "r1", "x", "I1", "i1 ", "\xc3\xaf\x31"};
    struct room *r = main_r();
    char id[32];
    if (r && r->backlog.n && sub < 224) {
        /* 200..223 count from the other end */
        if (sub >= 200) {
            from_end = !from_end;
            sub -= 200;
        }
        size_t i = sub % r->backlog.n;
        codec_pack_str(pk, r->backlog.v[from_end ? r->backlog.n - 1 - i : i]->id);
    } else if (r && (sub & 7) == 7) {
        snprintf(id, sizeof id, "i%llu", (unsigned long long)r->next_item);
        codec_pack_str(pk, id); /* the next one: not yet there */
    } else {
        codec_pack_str(pk, junk[sub % (sizeof junk / sizeof junk[0])]);
    }
}

/* A node id of the story map: of kind `kind` (-1: any) mostly, or a junk one.
 * Returns the kind it drew from. */
static int pack_map_id(msgpack_packer *pk, uint8_t sub, int kind)
{
    static const char *const junk[] = {"a999", "s0", "i1", "r1 ", "", "A1"};
    struct room *r = main_r();
    struct storymap *m = r ? r->smap : NULL;
    int k = kind >= 0 && sub % 8 != 7 ? kind : (int)((sub >> 3) % SMAP__NKIND);
    if (m && m->n[k] && sub < 232)
        codec_pack_str(pk, storymap_nodes(m, k)[sub % m->n[k]].id);
    else
        codec_pack_str(pk, junk[sub % (sizeof junk / sizeof junk[0])]);
    return k;
}

static const struct round *last_round(void)
{
    struct room *r = main_r();
    return r && r->nrounds ? r->rounds[r->nrounds - 1] : NULL;
}

static void pack_round_id(msgpack_packer *pk, uint8_t sub)
{
    struct room *r = main_r();
    if (r && r->nrounds && sub < 240)
        codec_pack_str(pk, sub % 4 == 3 ? r->rounds[sub % r->nrounds]->id
                                        : r->rounds[r->nrounds - 1]->id);
    else
        codec_pack_str(pk, sub & 1 ? "r999" : "r0");
}

static void pack_card(msgpack_packer *pk, uint8_t sub)
{
    const struct round *rd = last_round();
    if (rd && rd->ncards && sub < 232)
        codec_pack_str(pk, rd->cards[sub % rd->ncards]);
    else
        codec_pack_str(pk, CARD_POOL[sub % (sizeof CARD_POOL / sizeof CARD_POOL[0])]);
}

/* One value of item field f. kind 0..4 valid (4: nil where allowed), 5 nil,
 * 6 another type, 7 too long; a string or list with sub 28..31 holds a NUL. */
/* A persona (persona) or outcome id of the room, or a junk one. */
static void pack_product_id(msgpack_packer *pk, bool persona, uint8_t sub)
{
    static const char *const junk[] = {"p0", "o0", "p99", "o99", "P1", "x"};
    struct room *r = main_r();
    const struct product_rec *v = r ? (persona ? r->product.personas : r->product.outcomes) : NULL;
    size_t n = r ? (persona ? r->product.npersonas : r->product.noutcomes) : 0;
    if (n && sub < 224)
        codec_pack_str(pk, v[sub % n].id);
    else
        codec_pack_str(pk, junk[sub % (sizeof junk / sizeof junk[0])]);
}

static void pack_item_value(msgpack_packer *pk, const struct field_spec *f, uint8_t vb)
{
    unsigned kind = vb & 7, sub = vb >> 3;
    if (kind < 3 && strcmp(f->name, "persona_id") == 0) {
        pack_product_id(pk, true, (uint8_t)(sub * 9));
        return;
    }
    if (kind < 3 && strcmp(f->name, "outcomes") == 0) {
        size_t n = sub % 3;
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            pack_product_id(pk, false, (uint8_t)(sub * 7 + i * 3));
        return;
    }
    if (kind < 5 && sub >= 28 && (f->type == FT_STR || f->type == FT_STR_LIST)) {
        static const struct {
            const char *s;
            size_t n;
        } nul[] = {{"\0", 1}, {"5\0", 2}, {"As a\0user", 10}, {"must\0x", 6}};
        if (f->type == FT_STR_LIST) {
            msgpack_pack_array(pk, 2);
            codec_pack_str(pk, "crit");
        }
        pack_strn(pk, nul[sub - 28].s, nul[sub - 28].n);
        return;
    }
    if (kind == 4 && (f->flags & FF_NIL_OK))
        kind = 5;
    else if (kind == 4)
        kind = 0;
    if (kind == 5) {
        msgpack_pack_nil(pk);
        return;
    }
    if (kind == 6) {
        if (f->type == FT_STR)
            msgpack_pack_uint32(pk, 42);
        else if (sub & 1)
            msgpack_pack_map(pk, 0);
        else
            codec_pack_str(pk, "AAAAAAAABBBBBBBBCCCCCCCCDDDDDDDD");
        return;
    }
    switch (f->type) {
    case FT_STR:
        if (kind == 7) {
            pack_rep(pk, "x", f->max + 1);
        } else if (f->choices) {
            size_t n = 0;
            while (f->choices[n])
                n++;
            codec_pack_str(pk, f->choices[sub % n]);
        } else if (sub % 4 == 1) {
            pack_rep(pk, "y", f->max);
        } else if (sub % 4 == 2) {
            codec_pack_str(pk, "Zo\xc3\xab \xf0\x9f\x9a\x80");
        } else if (sub % 4 == 3 && (f->flags & FF_EMPTY_OK)) {
            codec_pack_str(pk, "");
        } else {
            codec_pack_str(pk, strcmp(f->name, "estimate") == 0 ? "5" : "As a user");
        }
        return;
    case FT_UINT:
        msgpack_pack_uint64(pk, kind == 7 ? f->max + 1 : (sub * 7u) % (f->max + 1));
        return;
    case FT_STR_LIST: {
        size_t n = kind == 7 ? f->max + 1 : sub % 3;
        msgpack_pack_array(pk, n);
        for (size_t i = 0; i < n; i++)
            codec_pack_str(pk, i % 2 ? "Given a card, when I pay, then it works" : "crit");
        return;
    }
    case FT_NUM:
        if (kind == 7)
            msgpack_pack_double(pk, sub & 1 ? 1e16 : NAN);
        else if (sub % 3 == 0)
            msgpack_pack_int64(pk, -(int64_t)sub * 1000);
        else if (sub % 3 == 1)
            msgpack_pack_double(pk, sub / 4.0);
        else
            msgpack_pack_uint64(pk, sub);
        return;
    default:
        msgpack_pack_nil(pk);
    }
}

/* The field table of an op's map field for the product's ops, or NULL. */
static const struct field_spec *product_fields(enum op_id id)
{
    switch (id) {
    case OP_VISION_SET:
        return ops_vision_fields;
    case OP_PERSONA_ADD:
    case OP_PERSONA_UPDATE:
        return ops_persona_fields;
    case OP_OUTCOME_ADD:
    case OP_OUTCOME_UPDATE:
        return ops_outcome_fields;
    default:
        return NULL;
    }
}

/* A vision, persona or outcome map: its name first (unless the header says
 * not; a persona's often the free text items say, for adopt), then up to
 * three more pairs, any field of the table, or an unknown key. */
static void pack_product_map(msgpack_packer *pk, struct gen *g, const struct field_spec *fields,
                             bool partial)
{
    size_t nf = 0;
    while (fields[nf].name)
        nf++;
    uint8_t hdr = u8(g->in);
    size_t extra = hdr % 4;
    bool name =
        strcmp(fields[0].name, "name") == 0 && (partial ? (hdr & 0x80) != 0 : (hdr & 0x80) == 0);
    struct codec_buf body;
    msgpack_packer bpk;
    codec_buf_init(&body, 0);
    codec_packer_init(&bpk, &body);
    uint32_t n = 0;
    if (name) {
        codec_pack_kv_str(&bpk, "name", hdr & 0x40 ? "As a user" : "Shopper");
        n++;
    }
    for (size_t i = 0; i < extra; i++, n++) {
        size_t idx = u8(g->in) % (nf + 1);
        uint8_t vb = u8(g->in);
        if (idx < nf) {
            codec_pack_str(&bpk, fields[idx].name);
            pack_item_value(&bpk, &fields[idx], vb);
        } else {
            codec_pack_kv_str(&bpk, vb & 1 ? "id" : "age", "p1");
        }
    }
    msgpack_pack_map(pk, n);
    if (body.len)
        pk->callback(pk->data, body.data, body.len);
    codec_buf_free(&body);
}

/* An item map: title first (unless the header says not), then up to four
 * more pairs, any field, possibly repeated, or a key a client may not send. */
static void pack_item_map(msgpack_packer *pk, struct gen *g, bool partial)
{
    size_t nf = 0;
    while (ops_item_fields[nf].name)
        nf++;
    uint8_t hdr = u8(g->in);
    size_t extra = hdr % 5;
    bool title = partial ? (hdr & 0x80) != 0 : (hdr & 0x80) == 0;
    struct codec_buf body;
    msgpack_packer bpk;
    codec_buf_init(&body, 0);
    codec_packer_init(&bpk, &body);
    uint32_t n = 0;
    if (title) {
        codec_pack_str(&bpk, "title");
        switch ((hdr >> 3) & 3) {
        case 1:
            pack_rep(&bpk, "t", 200);
            break;
        case 2:
            codec_pack_str(&bpk, "\xc3\x9c"
                                 "n\xc3\xaf"
                                 "code \xf0\x9f\x9a\x80 story");
            break;
        default:
            codec_pack_str(&bpk, "Checkout with a saved card");
        }
        n++;
    }
    for (size_t i = 0; i < extra; i++) {
        size_t idx = u8(g->in) % (nf + 3);
        uint8_t vb = u8(g->in);
        if (idx < nf) {
            codec_pack_str(&bpk, ops_item_fields[idx].name);
            pack_item_value(&bpk, &ops_item_fields[idx], vb);
        } else if (idx == nf) {
            codec_pack_kv_str(&bpk, vb & 1 ? "rank" : "id", "a0");
        } else if (idx == nf + 1) {
            codec_pack_kv_str(&bpk, "status", "split");
        } else {
            /* An unknown, long, multibyte key; with an odd prefix, a sentence
             * quoting it is cut in the middle of a character. */
            msgpack_pack_str(&bpk, 300 + (vb & 1));
            if (vb & 1)
                msgpack_pack_str_body(&bpk, "x", 1);
            for (int c = 0; c < 150; c++)
                msgpack_pack_str_body(&bpk, "\xc3\xa9", 2);
            msgpack_pack_true(&bpk);
        }
        n++;
    }
    msgpack_pack_map(pk, n);
    if (body.len)
        pk->callback(pk->data, body.data, body.len);
    codec_buf_free(&body);
}

/* order.apply's base: the main room's now (mostly), or a stale one. */
static void pack_base(msgpack_packer *pk, uint8_t sub)
{
    char base[PRIO_BASE_LEN + 1] = "0000000000000000";
    struct room *r = main_r();
    if (r && sub < 240)
        prio_base(&r->backlog, base);
    codec_pack_str(pk, base);
}

/* order.apply's order: the main room's open items rotated by sub (valid),
 * or (sub >= 224) with the last left out, the first twice, or a split or
 * done item added. */
static void pack_order(msgpack_packer *pk, uint8_t sub)
{
    struct room *r = main_r();
    size_t n = 0, total = r ? r->backlog.n : 0;
    const struct item **v = calloc(total + 2, sizeof *v), *fixed = NULL;
    if (!v)
        abort();
    for (size_t i = 0; i < total; i++) {
        const struct item *it = r->backlog.v[i];
        if (prio_is_open(it))
            v[n++] = it;
        else if (!fixed)
            fixed = it;
    }
    size_t len = n;
    unsigned bad = sub >= 224 ? sub % 3 + 1 : 0;
    if (bad == 1 && len)
        len--;
    else if (bad == 2 && n)
        v[len++] = v[0];
    else if (bad == 3 && fixed)
        v[len++] = fixed;
    msgpack_pack_array(pk, len);
    for (size_t i = 0; i < len; i++)
        codec_pack_str(pk, v[i < n && n ? (i + sub) % n : i]->id);
    free(v);
}

/* Whether optional field f is present by default (mode 0). */
static bool default_present(const struct gen *g, const struct field_spec *f)
{
    if (g->op->id == OP_ORDER_APPLY) /* by default a method's proposal */
        return strcmp(f->name, "method") == 0;
    if (g->op->id == OP_JOIN) {
        if (g->rejoin)
            return strcmp(f->name, "token") != 0;
        return strcmp(f->name, "token") == 0;
    }
    return false;
}

static void pack_valid(msgpack_packer *pk, struct gen *g, const struct field_spec *f, uint8_t sub)
{
    const char *n = f->name;
    struct client *k = &cl[g->slot];
    char buf[64];
    if (strcmp(n, "deck") == 0) {
        pack_deck(pk, g, sub);
    } else if (strcmp(n, "name") == 0) {
        switch (sub % 4) {
        case 1:
            pack_rep(pk, "n", f->max);
            break;
        case 2:
            codec_pack_str(pk, "Zo\xc3\xab \xf0\x9f\x9a\x80");
            break;
        case 3:
            codec_pack_str(pk, g->slot == 0 ? "Fay" : "Ann");
            break;
        default:
            if (g->op->id == OP_ROOM_CREATE)
                codec_pack_str(pk, "Sprint 14 refinement");
            else if (g->rejoin && k->name[0])
                codec_pack_str(pk, k->name); /* the same name: no rename */
            else
                codec_pack_str(pk, "Dev");
        }
    } else if (strcmp(n, "room") == 0) {
        if (sub % 8 == 6 && other_room.room[0])
            g->room = &other_room;
        if (sub % 8 == 7)
            codec_pack_str(pk, "AAAAAAAAAAAAAAAAAAAAAA");
        else
            codec_pack_str(pk, g->room->room);
    } else if (strcmp(n, "token") == 0) {
        int def = g->slot < ROLE__COUNT ? g->slot : ROLE_MEMBER;
        if (sub % 8 == 0)
            codec_pack_str(pk, g->room->tok[def]);
        else if (sub % 8 <= 4)
            codec_pack_str(pk, g->room->tok[sub % 4]);
        else if (sub % 8 == 5 && nrevoked)
            codec_pack_str(pk, revoked[sub % nrevoked]);
        else if (sub % 8 == 6)
            codec_pack_str(pk, g->room->room);
        else
            codec_pack_str(pk, "AAAAAAAAAAAAAAAAAAAAAA");
    } else if (strcmp(n, "since") == 0) {
        uint64_t last = cl[g->cred_slot].last_seq;
        uint64_t v[] = {last, last, last, 0, last + 1, last ? last - 1 : 0, SEQ_MAX};
        msgpack_pack_uint64(pk, v[sub % 7]);
    } else if (strcmp(n, "epoch") == 0) {
        codec_pack_str(pk, sub % 4 == 3 || !cl[g->cred_slot].epoch[0] ? "nope"
                                                                      : cl[g->cred_slot].epoch);
    } else if (strcmp(n, "pid") == 0 && g->op->id == OP_JOIN) {
        g->cred_slot = sub % 8 < 6 ? g->slot : (sub >> 3) % NCLIENTS;
        if (!cl[g->cred_slot].pid[0])
            for (int s = 0; s < NCLIENTS; s++)
                if (cl[s].pid[0])
                    g->cred_slot = s;
        codec_pack_str(pk, sub % 8 == 7 ? "AAAAAAAAAAAAAAAAAAAAAA" : cl[g->cred_slot].pid);
    } else if (strcmp(n, "secret") == 0) {
        codec_pack_str(pk, sub % 6 == 5 ? "AAAAAAAAAAAAAAAAAAAAAA" : cl[g->cred_slot].secret);
    } else if (strcmp(n, "pid") == 0) {
        struct room *r = main_r();
        if (r && r->nparts && sub < 248)
            codec_pack_str(pk, r->parts[sub % r->nparts]->pid);
        else
            codec_pack_str(pk, k->pid[0] ? "AAAAAAAAAAAAAAAAAAAAAA" : "x");
    } else if (strcmp(n, "role") == 0) {
        codec_pack_str(pk, role_name(sub % ROLE__COUNT));
    } else if (strcmp(n, "facilitator_grace") == 0) {
        static const uint64_t v[] = {0, 120, 1, 3600};
        msgpack_pack_uint64(pk, v[sub % 4]);
    } else if (strcmp(n, "capacity") == 0 || strcmp(n, "size_limit") == 0 ||
               strcmp(n, "stale_days") == 0) {
        static const uint64_t v[] = {1, 3, 8, 40, 0, 13, 2, 10000};
        msgpack_pack_uint64(pk, v[sub % 8]);
    } else if (strcmp(n, "seconds") == 0) {
        static const uint64_t v[] = {60, 1, 3600, 0};
        msgpack_pack_uint64(pk, v[sub % 4]);
    } else if (strcmp(n, "deadline") == 0) {
        int64_t now = clock_now_ms();
        uint64_t v[] = {(uint64_t)now + 600000, (uint64_t)now + 3, 1, SEQ_MAX};
        msgpack_pack_uint64(pk, v[sub % 4]);
    } else if (f->type == FT_BOOL) {
        if (sub & 1)
            msgpack_pack_false(pk);
        else
            msgpack_pack_true(pk);
    } else if (f->type == FT_MAP && product_fields(g->op->id)) {
        pack_product_map(pk, g, product_fields(g->op->id),
                         g->op->id != OP_PERSONA_ADD && g->op->id != OP_OUTCOME_ADD);
    } else if (f->type == FT_MAP) {
        pack_item_map(pk, g, g->op->id == OP_ITEM_UPDATE);
    } else if (f->type == FT_MAP_LIST) {
        size_t count = sub >= 250 ? f->max + 1 : 1 + sub % f->max; /* 1..20, or 21 */
        msgpack_pack_array(pk, count);
        for (size_t i = 0; i < count; i++)
            pack_item_map(pk, g, false);
    } else if (strcmp(n, "base") == 0) {
        pack_base(pk, sub);
    } else if (strcmp(n, "order") == 0) {
        pack_order(pk, sub);
    } else if (strcmp(n, "persona") == 0 || strcmp(n, "outcome") == 0) {
        pack_product_id(pk, n[0] == 'p', sub);
    } else if (strcmp(n, "item") == 0) {
        pack_item_id(pk, sub, false);
    } else if (strcmp(n, "seq") == 0) { /* undo's: the sender's last change, or near it */
        msgpack_pack_uint64(pk, k->last_seq > sub % 4 ? k->last_seq - sub % 4 : 0);
    } else if (strcmp(n, "node") == 0) {
        g->map_kind = pack_map_id(pk, sub, -1);
    } else if (strcmp(n, "kind") == 0) {
        g->map_kind = sub % SMAP__NKIND;
        codec_pack_str(pk, storymap_kind_name(g->map_kind));
    } else if (strcmp(n, "activity") == 0) {
        pack_map_id(pk, sub, SMAP_ACTIVITY);
    } else if (strcmp(n, "step") == 0) {
        pack_map_id(pk, sub, SMAP_STEP);
    } else if (strcmp(n, "slice") == 0) {
        pack_map_id(pk, sub, SMAP_SLICE);
    } else if (strcmp(n, "after") == 0 && (g->op->id == OP_MAP_ADD || g->op->id == OP_MAP_MOVE)) {
        pack_map_id(pk, sub, g->map_kind);
    } else if (strcmp(n, "after") == 0) {
        pack_item_id(pk, sub, true); /* by default the last item */
    } else if (strcmp(n, "round") == 0) {
        pack_round_id(pk, sub);
    } else if (strcmp(n, "card") == 0 || strcmp(n, "estimate") == 0) {
        pack_card(pk, sub);
    } else if (f->choices) {
        size_t c = 0;
        while (f->choices[c])
            c++;
        codec_pack_str(pk, f->choices[sub % c]);
    } else if (f->type == FT_STR) {
        snprintf(buf, sizeof buf, "%s", strcmp(n, "pattern") == 0 ? "workflow" : "x");
        codec_pack_str(pk, buf);
    } else if (f->type == FT_UINT) {
        msgpack_pack_uint64(pk, sub % (f->max + 1));
    } else if (f->type == FT_STR_LIST) {
        msgpack_pack_array(pk, 1);
        codec_pack_str(pk, "a");
    } else if (f->type == FT_DECK) {
        pack_deck(pk, g, sub);
    } else {
        msgpack_pack_nil(pk);
    }
}

/* Packs o again with a NUL byte put into every string it holds (map keys
 * aside), at offset sub of each (or at its end). */
static void pack_with_nul(msgpack_packer *pk, const msgpack_object *o, uint8_t sub)
{
    switch (o->type) {
    case MSGPACK_OBJECT_STR: {
        size_t n = o->via.str.size, at = sub % (n + 1);
        msgpack_pack_str(pk, n + 1);
        if (n == 0) { /* an empty string's ptr may be NULL: no arithmetic on it */
            msgpack_pack_str_body(pk, "", 1);
            return;
        }
        msgpack_pack_str_body(pk, o->via.str.ptr, at);
        msgpack_pack_str_body(pk, "", 1);
        msgpack_pack_str_body(pk, o->via.str.ptr + at, n - at);
        return;
    }
    case MSGPACK_OBJECT_ARRAY:
        msgpack_pack_array(pk, o->via.array.size);
        for (uint32_t i = 0; i < o->via.array.size; i++)
            pack_with_nul(pk, &o->via.array.ptr[i], sub);
        return;
    case MSGPACK_OBJECT_MAP:
        msgpack_pack_map(pk, o->via.map.size);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            msgpack_pack_object(pk, o->via.map.ptr[i].key);
            pack_with_nul(pk, &o->via.map.ptr[i].val, sub);
        }
        return;
    default:
        msgpack_pack_object(pk, *o);
    }
}

/* A valid value of f with a NUL byte inside its strings (mode 7). */
static void pack_valid_nul(msgpack_packer *pk, struct gen *g, const struct field_spec *f,
                           uint8_t sub)
{
    struct codec_buf b;
    msgpack_packer bpk;
    codec_buf_init(&b, 0);
    codec_packer_init(&bpk, &b);
    pack_valid(&bpk, g, f, sub);
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    msgpack_zone_init(&z, 1024);
    if (!b.oom && msgpack_unpack(b.data, b.len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS)
        pack_with_nul(pk, &o, sub);
    else
        msgpack_pack_nil(pk);
    msgpack_zone_destroy(&z);
    codec_buf_free(&b);
}

/* Packs field f as the parameters say; returns the number of pairs written. */
static uint32_t pack_field(msgpack_packer *pk, struct gen *g, const struct field_spec *f)
{
    uint8_t m = u8(g->in), sub = u8(g->in);
    unsigned kind = m & 15;
    if (kind == 0) {
        if (!(f->flags & FF_REQUIRED) && !default_present(g, f))
            return 0;
        kind = 1;
    }
    if (kind == 8)
        return 0;
    codec_pack_str(pk, f->name);
    switch (kind) {
    case 9:
        msgpack_pack_nil(pk);
        return 1;
    case 10:
        msgpack_pack_uint64(pk, sub);
        return 1;
    case 11:
        if (sub % 3 == 0)
            msgpack_pack_int64(pk, -1 - (int64_t)sub);
        else if (sub % 3 == 1)
            msgpack_pack_double(pk, NAN);
        else
            msgpack_pack_float(pk, 1.5f);
        return 1;
    case 7:
        pack_valid_nul(pk, g, f, sub);
        return 1;
    case 12:
        pack_strn(pk, "", 0);
        return 1;
    case 13:
        if (f->type == FT_UINT) {
            msgpack_pack_uint64(pk, f->max + 1);
        } else if (f->type == FT_STR_LIST || f->type == FT_MAP_LIST || f->type == FT_DECK) {
            msgpack_pack_array(pk, (uint32_t)(f->max + 1));
            for (uint64_t i = 0; i <= f->max; i++)
                codec_pack_str(pk, CARD_POOL[i % 5]);
        } else {
            pack_rep(pk, "x", (size_t)(f->max < 20000 ? f->max + 1 : 20001));
        }
        return 1;
    case 14:
        if (sub & 1)
            pack_strn(pk, "\xc3\x28\xed\xa0\x80", 5); /* not UTF-8 */
        else
            pack_rep(pk, "\xc3\xa9", 150); /* 300 bytes of é */
        return 1;
    case 15:
        /* A valid value, then the same key again with another type. */
        pack_valid(pk, g, f, sub);
        codec_pack_str(pk, f->name);
        if (f->type == FT_STR || f->type == FT_DECK)
            msgpack_pack_array(pk, 0);
        else
            codec_pack_str(pk, "dup");
        return 2;
    default:
        pack_valid(pk, g, f, sub);
        return 1;
    }
}

/* A request {t, id, ...fields} for op, from the parameters. */
static uint8_t *build_request(struct gen *g, size_t *len)
{
    uint8_t env = u8(g->in);
    struct codec_buf body, out;
    msgpack_packer bpk, pk;
    codec_buf_init(&body, 0);
    codec_packer_init(&bpk, &body);
    uint32_t n = 2;
    codec_pack_kv_str(&bpk, "t", g->op->name);
    if (env & 0x01) {
        n--; /* no id */
    } else if (env & 0x02) {
        codec_pack_kv_u64(&bpk, "id", SEQ_MAX + 1);
    } else {
        codec_pack_kv_u64(&bpk, "id", next_id++);
    }
    for (const struct field_spec *f = g->op->fields; f->name; f++)
        n += pack_field(&bpk, g, f);
    if (env & 0x04) {
        codec_pack_kv_str(&bpk, "unknown", "ignored");
        n++;
    }
    if (env & 0x08) {
        msgpack_pack_uint8(&bpk, 7); /* a key that is not a string */
        msgpack_pack_nil(&bpk);
        n++;
    }
    codec_buf_init(&out, 0);
    codec_packer_init(&pk, &out);
    msgpack_pack_map(&pk, n);
    codec_buf_append(&out, body.data, body.len);
    codec_buf_free(&body);
    char *data = codec_buf_take(&out, len);
    if (!data)
        abort();
    return (uint8_t *)data;
}

/* Sends data (taken) from slot s, connecting it first if needed. */
static void send_frame(int s, uint8_t *data, size_t len, bool binary)
{
    connect_slot(s);
    struct conn *c = cl[s].c;
    struct pending *p = calloc(1, sizeof *p);
    if (!p)
        abort();
    p->data = data;
    p->len = len;
    p->binary = binary;
    p->joined = c->room != NULL;
    p->role = c->part ? c->part->role : -1;
    if (c->part)
        snprintf(p->pid, sizeof p->pid, "%s", c->part->pid);
    msgpack_zone_init(&p->zone, 2048);
    p->decoded = true;
    const char *why;
    p->nul = binary && codec_check(data, len, &why) && strcmp(why, CODEC_NUL_SENTENCE) == 0;
    if (binary && codec_decode(data, len, &p->zone, &p->msg, &why) == 0) {
        const msgpack_object *t = codec_get(&p->msg, "t");
        p->has_id = codec_get_uint(&p->msg, "id", &p->id) && p->id <= SEQ_MAX;
        if (t && t->type == MSGPACK_OBJECT_STR)
            p->op = ops_find(t->via.str.ptr, t->via.str.size);
    } else {
        memset(&p->msg, 0, sizeof p->msg);
    }
    pending_free(cl[s].req);
    cl[s].req = p;
    trace_msg(s, "->", data, len, binary);
    server_call(true);
    inproc_dispatch(&app, c, data, len, binary); /* a cold join: answered before the next */
    server_call(false);
}

static void send_op(int s, const struct op_spec *op, struct rd *params, bool rejoin)
{
    struct gen g = {params, s, op, rejoin, s, &main_room, 0};
    size_t len;
    uint8_t *data = build_request(&g, &len);
    send_frame(s, data, len, true);
}

/* ---- restart: the room dropped from memory and loaded back ----------------- */

struct saved {
    uint8_t *export;
    size_t len;
    uint64_t seq, next_item, next_round;
    char focus[64];
    int64_t timer;
    uint8_t tokens[ROLE__COUNT][TOKEN_HASH];
    bool auto_reveal, reveal_on_timer;
    uint32_t grace;
    size_t item_bytes; /* backlog.bytes: kept as items change, summed again at load */
    uint64_t versions; /* a hash of the items' stored versions and split records (undo) */
    uint8_t *health;   /* health_pack's bytes */
    size_t health_len;
};

static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ ((const uint8_t *)p)[i]) * 1099511628211ull;
    return h;
}

/* The items' seq, by and split record, which only the store keeps. */
static uint64_t item_versions(const struct room *r)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < r->backlog.n; i++) {
        const struct item *it = r->backlog.v[i];
        h = fnv(h, it->id, strlen(it->id) + 1);
        h = fnv(h, &it->seq, sizeof it->seq);
        h = fnv(h, it->by, strlen(it->by) + 1);
        if (it->split) {
            h = fnv(h, &it->split->seq, sizeof it->split->seq);
            h = fnv(h, it->split->was, strlen(it->split->was) + 1);
            h = fnv(h, it->split->kids, it->split->n * sizeof *it->split->kids);
        }
    }
    return h;
}

static void save_room(const struct room *r, struct saved *sv)
{
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    snapshot_pack_export(r, &pk);
    sv->export = (uint8_t *)codec_buf_take(&b, &sv->len);
    if (!sv->export)
        abort();
    sv->seq = r->seq;
    sv->next_item = r->next_item;
    sv->next_round = r->next_round;
    snprintf(sv->focus, sizeof sv->focus, "%s", r->focus ? r->focus : "");
    sv->timer = r->timer_ends_at;
    memcpy(sv->tokens, r->token_hash, sizeof sv->tokens);
    sv->auto_reveal = r->auto_reveal;
    sv->reveal_on_timer = r->reveal_on_timer;
    sv->grace = r->facilitator_grace;
    sv->item_bytes = r->backlog.bytes;
    sv->versions = item_versions(r);
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    health_pack(&r->health, &pk);
    sv->health = (uint8_t *)codec_buf_take(&b, &sv->health_len);
    if (!sv->health)
        abort();
}

static bool obj_eq(const msgpack_object *a, const msgpack_object *b)
{
    struct codec_buf x, y;
    msgpack_packer px, py;
    codec_buf_init(&x, 0);
    codec_buf_init(&y, 0);
    codec_packer_init(&px, &x);
    codec_packer_init(&py, &y);
    codec_pack_obj(&px, a);
    codec_pack_obj(&py, b);
    bool eq = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    codec_buf_free(&x);
    codec_buf_free(&y);
    return eq;
}

static int part_cmp(const void *a, const void *b)
{
    const msgpack_object *x = codec_get(a, "pid"), *y = codec_get(b, "pid");
    size_t n = x->via.str.size < y->via.str.size ? x->via.str.size : y->via.str.size;
    int c = memcmp(x->via.str.ptr, y->via.str.ptr, n);
    return c ? c : (int)x->via.str.size - (int)y->via.str.size;
}

static void compare_room(const struct saved *sv, const struct room *r)
{
    struct saved now;
    save_room(r, &now);
    if (now.seq != sv->seq || now.next_item != sv->next_item || now.next_round != sv->next_round ||
        strcmp(now.focus, sv->focus) != 0 || now.timer != sv->timer ||
        memcmp(now.tokens, sv->tokens, sizeof now.tokens) != 0 ||
        now.auto_reveal != sv->auto_reveal || now.reveal_on_timer != sv->reveal_on_timer ||
        now.grace != sv->grace)
        VIOLATION("the room loaded back differs: seq %llu/%llu next_item %llu/%llu next_round "
                  "%llu/%llu focus '%s'/'%s' timer %lld/%lld",
                  (unsigned long long)now.seq, (unsigned long long)sv->seq,
                  (unsigned long long)now.next_item, (unsigned long long)sv->next_item,
                  (unsigned long long)now.next_round, (unsigned long long)sv->next_round, now.focus,
                  sv->focus, (long long)now.timer, (long long)sv->timer);
    if (now.item_bytes != sv->item_bytes)
        VIOLATION("the room's item bytes (--max-room-bytes) were %zu as kept, %zu summed at load",
                  sv->item_bytes, now.item_bytes);
    if (now.versions != sv->versions)
        VIOLATION("the items loaded back have other versions (seq, by) or split records");
    if (now.health_len != sv->health_len || memcmp(now.health, sv->health, now.health_len) != 0)
        VIOLATION("the room loaded back has another health");
    free(now.health);
    msgpack_zone z;
    msgpack_object a, b;
    const char *why;
    msgpack_zone_init(&z, 8192);
    if (codec_decode(sv->export, sv->len, &z, &a, &why) ||
        codec_decode(now.export, now.len, &z, &b, &why))
        VIOLATION("an export does not decode: %s", why);
    static const char *const keys[] = {"seq", "room", "items", "rounds", "product"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const msgpack_object *x = codec_get(&a, keys[i]), *y = codec_get(&b, keys[i]);
        if (!x || !y || !obj_eq(x, y))
            VIOLATION("the room loaded back has other %s", keys[i]);
    }
    const msgpack_object *pa = codec_get(&a, "participants"), *pb = codec_get(&b, "participants");
    if (!pa || !pb || pa->via.array.size != pb->via.array.size)
        VIOLATION("the room loaded back has another number of participants");
    qsort(pa->via.array.ptr, pa->via.array.size, sizeof *pa->via.array.ptr, part_cmp);
    qsort(pb->via.array.ptr, pb->via.array.size, sizeof *pb->via.array.ptr, part_cmp);
    if (!obj_eq(pa, pb))
        VIOLATION("the room loaded back has other participants");
    msgpack_zone_destroy(&z);
    free(now.export);
}

/* Every connection closes, the room is dropped from memory (by the idle
 * sweep, as 30 s later, or as after a storage failure), the monitor rejoins
 * (loading it from the store), the room is compared, and every slot that
 * was connected rejoins with since. */
static void reload(bool sweep)
{
    struct room *r = main_r();
    if (!r)
        return;
    bool was[NCLIENTS];
    for (int s = 0; s < NCLIENTS; s++) {
        was[s] = cl[s].c && cl[s].joined && strcmp(cl[s].room, main_room.room) == 0;
        if (cl[s].c && cl[s].c->room == r)
            disconnect_slot(s);
    }
    pump();
    r = main_r();
    if (!r)
        return;
    struct saved sv;
    save_room(r, &sv);
    server_call(true);
    if (sweep)
        room_sweep(&app, clock_now_ms() + ROOM_UNLOAD_MS + 1000);
    else
        room_evict(&app, main_room.room);
    server_call(false);
    if (oom_fired()) { /* the step's check follows (oom_check) */
        free(sv.export);
        free(sv.health);
        return;
    }
    if (sweep) {
        if (main_r() && !r->timer_ends_at)
            VIOLATION("a committed room without connections or timer was not unloaded");
    } else {
        if (main_r())
            VIOLATION("the room is still in memory after room_evict");
    }
    bool unloaded = !main_r();
    pump();
    for (int pass = 0; pass < 2; pass++) {
        for (int s = 0; s < NCLIENTS; s++) {
            if (!was[s] || (s == MON) != (pass == 0))
                continue;
            uint8_t zero[16] = {0};
            struct rd none = {zero, sizeof zero};
            send_op(s, ops_get(OP_JOIN), &none, true);
            if (s == MON) {
                pump();
                if (oom_fired())
                    break;
                process();
                if (!main_r())
                    VIOLATION("the room could not be loaded back");
                if (unloaded)
                    compare_room(&sv, main_r());
            }
        }
    }
    free(sv.export);
    free(sv.health);
}

/* ---- one input ------------------------------------------------------------ */

static void reset(void)
{
    for (int s = 0; s < NCLIENTS; s++) {
        memset(&cl[s], 0, sizeof cl[s]);
    }
    memset(&main_room, 0, sizeof main_room);
    memset(&other_room, 0, sizeof other_room);
    nrevoked = 0;
    nreveals = 0;
    memset(events, 0, (max_event + 1) * sizeof events[0]);
    max_event = 0;
    nmodel = 0;
    next_id = 1;
}

struct room_ids {
    char (*ids)[ROOM_ID_MAX + 1];
    size_t n, cap;
};

static void collect_room(struct room *r, void *arg)
{
    struct room_ids *c = arg;
    if (c->n < c->cap)
        snprintf(c->ids[c->n++], sizeof c->ids[0], "%s", r->id);
}

static void teardown(void)
{
    for (int s = 0; s < NCLIENTS; s++)
        disconnect_slot(s);
    pump();
    struct room_ids c = {NULL, 0, app.rooms.count};
    c.ids = calloc(c.cap ? c.cap : 1, sizeof *c.ids);
    if (!c.ids)
        abort();
    room_each(&app, collect_room, &c);
    for (size_t i = 0; i < c.n; i++)
        room_evict(&app, c.ids[i]);
    free(c.ids);
    pump();
    if (app.rooms.count)
        VIOLATION("%zu rooms still in memory", app.rooms.count);
    if (!list_empty(&app.conns))
        VIOLATION("a connection is still open after every socket closed");
    for (int s = 0; s < NCLIENTS; s++) {
        for (size_t i = 0; i < cl[s].n; i++)
            frame_unref(cl[s].msgs[i]);
        free(cl[s].msgs);
        pending_free(cl[s].req);
    }
    free(model);
    model = NULL;
    capmodel = 0;
}

static void oom_check(void);

/* Returns true when an allocation failed in the step: checked, the input ends. */
static bool step_done(void)
{
    pump();
    if (oom_fired()) {
        oom_check();
        return true;
    }
    process();
    check_room();
    return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rd in = {data, size};
    reset();

    /* Prelude: the monitor creates the room (the first byte picks the deck)
     * and joins as observer; the four roles join. */
    /* Parameters of room.create: envelope, name (valid), deck (valid, the
     * variant the first byte picks; a custom deck takes 7 more bytes). */
    uint8_t first = u8(&in);
    uint8_t create[16] = {0, 1, 0, 1, (uint8_t)((first & 0x7f) % 5)};
    oom_at = 0;
    if (first & 0x80) { /* then two bytes: allocation 1 + N fails */
        oom_at = 1 + u8(&in) * 256L;
        oom_at += u8(&in);
    }
    if (create[4] == 4)
        for (size_t i = 5; i < 12; i++)
            create[i] = u8(&in);
    for (int attempt = 0; attempt < 2 && !main_room.room[0]; attempt++) {
        struct rd cr = {create, sizeof create};
        send_op(MON, ops_get(OP_ROOM_CREATE), &cr, false);
        step_done();
        create[4] = 0; /* a custom deck may be invalid: then fibonacci */
    }
    if (!main_room.room[0])
        VIOLATION("room.create failed in the prelude");
    static const int join_order[] = {MON, 0, 1, 2, 3};
    for (size_t i = 0; i < sizeof join_order / sizeof join_order[0]; i++) {
        int s = join_order[i];
        /* envelope; room (valid); token: the slot's role's (observer's for
         * the monitor); name (default) */
        uint8_t p[16] = {0, 1, 0, 1, (uint8_t)(s == MON ? 3 : 0), 1, 0};
        struct rd pr = {p, sizeof p};
        send_op(s, ops_get(OP_JOIN), &pr, false);
        step_done();
        if (!cl[s].joined)
            VIOLATION("slot %d could not join in the prelude", s);
    }
    oom_arm();

    for (int steps = 0; steps < MAX_STEPS && in.n && !oom_done; steps++) {
        int who = u8(&in) % NSLOTS;
        oom_save(who);
        unsigned op = u8(&in) % (OP__COUNT + P__COUNT);
        size_t plen = u8(&in);
        if (plen > in.n)
            plen = in.n;
        struct rd params = {in.p, plen};
        in.p += plen;
        in.n -= plen;
        if (trace && op >= OP__COUNT)
            fprintf(stderr, "step %d: slot %d: %s\n", steps, who,
                    (const char *[]){"tick", "leave", "rejoin", "reload", "raw",
                                     "text"}[op - OP__COUNT]);
        if (op < OP__COUNT) {
            send_op(who, ops_get((enum op_id)op), &params, false);
        } else {
            struct room *r = main_r();
            switch (op - OP__COUNT) {
            case P_TICK:
                server_call(true);
                if (r) {
                    int64_t later = clock_now_ms() + 3601 * 1000;
                    presence_tick(&app, r, later);
                    poker_ops_on_tick(&app, r, later);
                }
                server_call(false);
                break;
            case P_LEAVE:
                disconnect_slot(who);
                break;
            case P_REJOIN:
                if (!cl[who].pid[0])
                    break;
                disconnect_slot(who);
                pump();
                if (oom_fired())
                    break;
                process();
                send_op(who, ops_get(OP_JOIN), &params, true);
                break;
            case P_RELOAD:
                reload(u8(&params) & 1);
                break;
            case P_RAW:
            case P_TEXT: {
                uint8_t *copy = malloc(plen ? plen : 1);
                if (!copy)
                    abort();
                memcpy(copy, params.p, plen);
                send_frame(who, copy, plen, op - OP__COUNT == P_RAW);
                break;
            }
            }
        }
        oom_done = step_done();
    }

    oom_disarm();
    teardown();
    if (++inputs % RECYCLE_EVERY == 0) {
        close_store();
        open_store();
    }
    return 0;
}

/* ---- allocation failure ------------------------------------------------------ */

/* An input whose first byte has its high bit set (the deck is the low
 * seven bits' choice) gives N in the next two bytes: the server's allocation
 * 1 + N after the prelude fails (tests/alloc_fail.h; the harness's own are
 * never counted). After the step in which it failed, that step is checked
 * and the input ends: the main room, if in memory, equals a fresh load of it
 * from the store; if the step's request was answered with an error, equals
 * the room before the step; if evicted, it loads back, equal to the room
 * before the step unless the store has a newer seq. No crash or leak
 * throughout (the sanitizers). */

static struct saved oom_before;
static bool oom_have_before;
static int oom_who; /* the slot whose step it is */

static void server_call(bool begin)
{
    if (!oom_armed)
        return;
    if (begin)
        alloc_fail_resume();
    else
        alloc_fail_pause();
}

static void oom_arm(void)
{
    oom_done = false;
    if (!oom_at)
        return;
    oom_armed = true;
    alloc_fail_arm(oom_at, false);
    alloc_fail_pause(); /* the harness's work, until a server_call() */
}

static void oom_save(int who)
{
    if (!oom_armed)
        return;
    if (oom_have_before) {
        free(oom_before.export);
        free(oom_before.health);
    }
    struct room *r = main_r();
    oom_have_before = r != NULL;
    if (r)
        save_room(r, &oom_before);
    oom_who = who;
}

static void oom_disarm(void)
{
    if (oom_armed) {
        alloc_fail_resume();
        alloc_fail_disarm();
    }
    oom_armed = false;
    if (oom_have_before) {
        free(oom_before.export);
        free(oom_before.health);
    }
    oom_have_before = false;
}

/* Whether the step's request (slot oom_who's last) was answered `err`. */
static bool oom_step_failed(void)
{
    const struct client *k = &cl[oom_who];
    if (!k->req || !k->req->has_id)
        return false;
    bool failed = false;
    for (size_t i = k->done; i < k->n && !failed; i++) {
        msgpack_zone z;
        msgpack_object o;
        const char *why;
        uint64_t id;
        msgpack_zone_init(&z, 1024);
        failed = codec_decode(k->msgs[i]->data, k->msgs[i]->len, &z, &o, &why) == 0 &&
                 codec_str_eq(codec_get(&o, "t"), "err") && codec_get_uint(&o, "id", &id) &&
                 id == k->req->id;
        msgpack_zone_destroy(&z);
    }
    return failed;
}

static void oom_check(void)
{
    if (trace)
        fprintf(stderr, "allocation %ld failed: checking the room\n", oom_at);
    struct room *live = main_r();
    if (live) {
        struct saved now;
        save_room(live, &now);
        map_del(&app.rooms, live->id);
        int err = 0;
        struct room *copy = inproc_load_copy(&app, main_room.room, &err);
        if (!copy)
            VIOLATION("after allocation %ld failed, the room in memory cannot be loaded (%d)",
                      oom_at, err);
        compare_room(&now, copy); /* memory == store */
        room_unref(copy);
        if (map_put(&app.rooms, live->id, live))
            abort();
        free(now.export);
        free(now.health);
        if (oom_have_before && oom_step_failed())
            compare_room(&oom_before, live); /* a failed request changed nothing */
        return;
    }
    int err = 0;
    struct room *copy = inproc_load_copy(&app, main_room.room, &err);
    if (!copy)
        VIOLATION("after allocation %ld failed, the evicted room does not load back (%d)", oom_at,
                  err);
    if (oom_have_before && copy->seq == oom_before.seq)
        compare_room(&oom_before, copy); /* nothing new was recorded: as before the step */
    room_unref(copy);
}
