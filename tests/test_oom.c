/* Allocation failure injection (issue 11, item 5), SQLite-style: a scripted
 * meeting through the real dispatcher, handlers and SQLite store, with
 * in-process connections, run once to count the allocations it makes, then
 * once for every N from 1 to that count with allocation N failing
 * (alloc_fail.h). After the step in which it failed:
 *
 *   - nothing crashed (and, under -DREFINE_SANITIZE=ON, nothing leaked or
 *     was used after free);
 *   - the room, if still in memory, equals what a fresh load of it from the
 *     store holds (no change in memory that is not stored, none stored that
 *     memory lost), and its participant bookkeeping adds up;
 *   - a request answered with an error left the room exactly as it was
 *     (canonical encodings before and after compared); a request not
 *     answered at all had its connection closed;
 *   - a room evicted from memory loads back cleanly from the store, with at
 *     least every seq a client was told about, and exactly the state of
 *     before the step when no new seq reached the store.
 *
 * The run stops after that step. The counting run checks every step: every
 * request is answered ok, and memory equals the store. */
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "alloc_fail.h"
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
#define LEAK_CHECK() __lsan_do_recoverable_leak_check()
#else
#define LEAK_CHECK() 0
#endif
#define LEAK_EVERY 16
#include "app.h"
#include "check.h"
#include "clock.h"
#include "conn.h"
#include "dispatch.h"
#include "errors.h"
#include "frame.h"
#include "import.h"
#include "inproc.h"
#include "health.h"
#include "health_ops.h"
#include "kano.h"
#include "prio.h"
#include "log.h"
#include "outbox.h"
#include "poker_ops.h"
#include "presence.h"
#include "room.h"
#include "room_load.h"
#include "snapshot.h"
#include "store.h"
#include "storymap.h"

static struct app app;
static uv_loop_t loop;
static char dbpath[64];

/* ---- the server, in process ------------------------------------------------ */

static void start(void)
{
    char *argv[] = {"test_oom", "--replay-events", "16", NULL};
    config_parse(&app.cfg, 3, argv, stdout, stderr);
    app.cfg.rate = 1000000;
    app.cfg.max_rooms = SIZE_MAX;
    log_set_level(LOG_ERROR); /* each failure logs one line */
    CHECK(inproc_start(&app, &loop, dbpath) == 0);
}

static void pump(void)
{
    CHECK(inproc_pump(&app));
}

/* ---- clients ------------------------------------------------------------------- */

enum { FAC, OWN, DEV, OBS, NCLIENTS };

struct client {
    struct conn *c;
    struct frame **msgs;
    size_t n, cap;
    uint64_t next_id;
    char pid[TOKEN_LEN + 1];
    bool closed;       /* the server asked to close the connection (conn_close) */
    size_t n_at_close; /* what it had received then: a closing socket sends no more */
};

static struct client cl[NCLIENTS];
static char room_id[ROOM_ID_MAX + 1];
static char tokens[ROLE__COUNT][TOKEN_LEN + 1];

static void sink(struct conn *c, struct frame *f)
{
    struct client *k = c->sink_arg;
    alloc_fail_pause();
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 64;
        k->msgs = realloc(k->msgs, k->cap * sizeof *k->msgs);
        if (!k->msgs)
            abort();
    }
    k->msgs[k->n++] = frame_ref(f);
    alloc_fail_resume();
}

/* An in-process connection has no socket to close, and conn_close() does
 * nothing for it: the test links with -Wl,--wrap=conn_close to see the
 * server ask (calls from other objects than conn.c's come here). */
void __real_conn_close(struct conn *c, int code);
void __wrap_conn_close(struct conn *c, int code);

void __wrap_conn_close(struct conn *c, int code)
{
    struct client *k = c->sink == sink ? c->sink_arg : NULL;
    if (k && !k->closed) {
        k->closed = true;
        k->n_at_close = k->n;
    }
    __real_conn_close(c, code);
}

static void client_open(struct client *k)
{
    alloc_fail_pause(); /* the socket's own allocations are not the server's handling */
    memset(k, 0, sizeof *k);
    k->c = conn_new(&app, NULL);
    if (!k->c)
        abort();
    k->c->sink = sink;
    k->c->sink_arg = k;
    k->next_id = 1;
    alloc_fail_resume();
}

/* The socket closes: the room sees the participant leave. */
static void client_close(struct client *k)
{
    if (!k->c)
        return;
    if (k->c->room)
        presence_leave(k->c);
    conn_on_closed(k->c);
    k->c = NULL;
}

static void client_free(struct client *k)
{
    client_close(k);
    for (size_t i = 0; i < k->n; i++)
        frame_unref(k->msgs[i]);
    free(k->msgs);
    memset(k, 0, sizeof *k);
}

static bool decode(const struct frame *f, msgpack_zone *z, msgpack_object *o)
{
    const char *why;
    return codec_decode(f->data, f->len, z, o, &why) == 0;
}

enum reply { REPLY_NONE, REPLY_OK, REPLY_ERR };

/* The reply k got to request id. */
static enum reply reply_of(const struct client *k, uint64_t id)
{
    enum reply rep = REPLY_NONE;
    for (size_t i = 0; i < k->n && rep == REPLY_NONE; i++) {
        msgpack_zone z;
        msgpack_object o;
        uint64_t rid;
        msgpack_zone_init(&z, 1024);
        if (decode(k->msgs[i], &z, &o) && codec_get_uint(&o, "id", &rid) && rid == id) {
            if (codec_str_eq(codec_get(&o, "t"), "ok"))
                rep = REPLY_OK;
            else if (codec_str_eq(codec_get(&o, "t"), "err"))
                rep = REPLY_ERR;
        }
        msgpack_zone_destroy(&z);
    }
    return rep;
}

/* The highest seq any client has been told about (events, oks, snapshots)
 * before its connection was closed. */
static uint64_t told_seq(void)
{
    uint64_t max = 0;
    for (int s = 0; s < NCLIENTS; s++)
        for (size_t i = 0; i < (cl[s].closed ? cl[s].n_at_close : cl[s].n); i++) {
            msgpack_zone z;
            msgpack_object o;
            uint64_t seq;
            msgpack_zone_init(&z, 1024);
            if (decode(cl[s].msgs[i], &z, &o) && codec_get_uint(&o, "seq", &seq) && seq > max)
                max = seq;
            msgpack_zone_destroy(&z);
        }
    return max;
}

/* ---- requests: a little JSON, packed as MessagePack ------------------------------ */

static void skip_ws(const char **p)
{
    while (**p == ' ')
        (*p)++;
}

static void skip_value(const char **p);

/* Number of values (of pairs, for an object) in the container at *p. */
static size_t count_members(const char *p)
{
    char close = *p == '{' ? '}' : ']';
    size_t n = 0;
    p++;
    skip_ws(&p);
    while (*p != close) {
        skip_value(&p);
        if (close == '}') {
            skip_ws(&p);
            p++; /* ':' */
            skip_value(&p);
        }
        n++;
        skip_ws(&p);
        if (*p == ',')
            p++;
        skip_ws(&p);
    }
    return n;
}

static void skip_value(const char **p)
{
    skip_ws(p);
    if (**p == '"') {
        *p = strchr(*p + 1, '"') + 1;
    } else if (**p == '{' || **p == '[') {
        int depth = 0;
        do {
            if (**p == '"')
                *p = strchr(*p + 1, '"');
            else if (**p == '{' || **p == '[')
                depth++;
            else if (**p == '}' || **p == ']')
                depth--;
            (*p)++;
        } while (depth);
    } else {
        while (**p && !strchr(",}] ", **p))
            (*p)++;
    }
}

/* Packs the JSON value at *p (strings without escapes, whole numbers, true,
 * false, null, arrays, objects) and moves past it. */
static void pack_json(msgpack_packer *pk, const char **p)
{
    skip_ws(p);
    if (**p == '"') {
        const char *end = strchr(*p + 1, '"');
        codec_pack_strn(pk, *p + 1, (size_t)(end - *p - 1));
        *p = end + 1;
    } else if (**p == '{' || **p == '[') {
        bool obj = **p == '{';
        size_t n = count_members(*p);
        if (obj)
            msgpack_pack_map(pk, n);
        else
            msgpack_pack_array(pk, n);
        (*p)++;
        for (size_t i = 0; i < n; i++) {
            pack_json(pk, p);
            if (obj) {
                skip_ws(p);
                (*p)++; /* ':' */
                pack_json(pk, p);
            }
            skip_ws(p);
            if (**p == ',')
                (*p)++;
        }
        skip_ws(p);
        (*p)++;
    } else if (strncmp(*p, "true", 4) == 0 || strncmp(*p, "false", 5) == 0) {
        bool t = **p == 't';
        t ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        *p += t ? 4 : 5;
    } else if (strncmp(*p, "null", 4) == 0) {
        msgpack_pack_nil(pk);
        *p += 4;
    } else {
        char *end;
        msgpack_pack_uint64(pk, strtoull(*p, &end, 10));
        *p = end;
    }
}

static struct room *loaded(void);

/* Copies template into out with $R (the room), $T0..$T3 (its tokens by
 * role), $P2 (the member's pid) and $B (the backlog's order.propose base)
 * replaced. */
static void expand(const char *tmpl, char *out, size_t outsz)
{
    size_t o = 0;
    char base[PRIO_BASE_LEN + 1] = "";
    if (loaded())
        prio_base(&loaded()->backlog, base);
    for (const char *p = tmpl; *p && o + 1 < outsz; p++) {
        const char *sub = NULL;
        if (p[0] == '$' && p[1] == 'R')
            sub = room_id;
        else if (p[0] == '$' && p[1] == 'T')
            sub = tokens[p[2] - '0'];
        else if (p[0] == '$' && p[1] == 'P')
            sub = cl[p[2] - '0'].pid;
        else if (p[0] == '$' && p[1] == 'B')
            sub = base;
        if (!sub) {
            out[o++] = *p;
            continue;
        }
        o += (size_t)snprintf(out + o, outsz - o, "%s", sub);
        p += p[1] == 'R' || p[1] == 'B' ? 1 : 2;
    }
    out[o < outsz ? o : outsz - 1] = '\0';
}

/* Sends {t: op, id, ...fields of the JSON object args} from k; returns its id. */
static uint64_t send_request(struct client *k, const char *op, const char *args)
{
    char json[1024];
    struct codec_buf b;
    msgpack_packer pk;
    alloc_fail_pause();
    expand(args, json, sizeof json);
    uint64_t id = k->next_id++;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 2 + count_members(json));
    codec_pack_kv_str(&pk, "t", op);
    codec_pack_kv_u64(&pk, "id", id);
    const char *p = json + 1;
    while (*p && *p != '}') {
        pack_json(&pk, &p); /* key */
        skip_ws(&p);
        p++;
        pack_json(&pk, &p); /* value */
        skip_ws(&p);
        if (*p == ',')
            p++;
        skip_ws(&p);
    }
    size_t len;
    char *data = codec_buf_take(&b, &len);
    if (!data)
        abort();
    alloc_fail_resume();
    inproc_dispatch(&app, k->c, data, len, true);
    alloc_fail_pause();
    free(data);
    alloc_fail_resume();
    return id;
}

/* ---- the room as a canonical encoding ---------------------------------------- */

static int part_cmp(const void *a, const void *b)
{
    const msgpack_object *x = codec_get(a, "pid"), *y = codec_get(b, "pid");
    return strncmp(x->via.str.ptr, y->via.str.ptr, TOKEN_LEN);
}

/* Everything of r that a client or a reload could tell apart, as bytes: the
 * export (participants in pid order, not exported_at), the counters, focus,
 * timer, token hashes, and the votes of the open round (the export hides
 * their cards). Returns a malloc'd buffer; *len its length. */
static char *canon(const struct room *r, size_t *len)
{
    struct codec_buf e, b;
    msgpack_packer pe, pk;
    msgpack_zone z;
    msgpack_object o;
    const char *why;
    alloc_fail_pause();
    codec_buf_init(&e, 0);
    codec_packer_init(&pe, &e);
    snapshot_pack_export(r, &pe);
    msgpack_zone_init(&z, 8192);
    CHECK(codec_decode((const uint8_t *)e.data, e.len, &z, &o, &why) == 0);
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 19);
    codec_pack_str(&pk, "health"); /* derived, but a failed handler leaves it as it was too */
    health_pack(&r->health, &pk);
    static const char *const keys[] = {"seq", "room", "items", "rounds", "kano", "product", "map"};
    for (size_t i = 0; i < 7; i++) {
        codec_pack_str(&pk, keys[i]);
        codec_pack_obj(&pk, codec_get(&o, keys[i]));
    }
    const msgpack_object *parts = codec_get(&o, "participants");
    qsort(parts->via.array.ptr, parts->via.array.size, sizeof *parts->via.array.ptr, part_cmp);
    codec_pack_str(&pk, "participants");
    codec_pack_obj(&pk, parts);
    codec_pack_kv_u64(&pk, "next_item", r->next_item);
    codec_pack_kv_u64(&pk, "next_round", r->next_round);
    codec_pack_kv_str(&pk, "focus", r->focus);
    codec_pack_kv_i64(&pk, "timer_ends_at", r->timer_ends_at);
    codec_pack_kv_u64(&pk, "item_bytes", r->backlog.bytes);
    codec_pack_kv_u64(&pk, "observers", r->observers);
    codec_pack_kv_u64(&pk, "map_next", r->smap ? r->smap->next_id : 0);
    codec_pack_str(&pk, "tokens");
    msgpack_pack_bin(&pk, sizeof r->token_hash);
    msgpack_pack_bin_body(&pk, r->token_hash, sizeof r->token_hash);
    const struct round *rd = room_current_round(r);
    codec_pack_str(&pk, "votes");
    msgpack_pack_array(&pk, rd ? rd->nvotes : 0);
    for (size_t i = 0; rd && i < rd->nvotes; i++) {
        msgpack_pack_array(&pk, 3);
        codec_pack_str(&pk, rd->votes[i].pid);
        codec_pack_str(&pk, rd->votes[i].card);
        msgpack_pack_int(&pk, rd->votes[i].confidence);
    }
    codec_pack_str(&pk, "kano_answers"); /* the export hides them too */
    msgpack_pack_array(&pk, r->nkano);
    for (size_t i = 0; i < r->nkano; i++) {
        const struct kano_survey *ks = r->kano[i];
        msgpack_pack_array(&pk, 2 * ks->n + 1);
        codec_pack_str(&pk, ks->item);
        for (size_t k = 0; k < ks->n; k++) {
            codec_pack_str(&pk, ks->v[k].pid);
            msgpack_pack_int(&pk, ks->v[k].functional * 5 + ks->v[k].dysfunctional);
        }
    }
    msgpack_zone_destroy(&z);
    codec_buf_free(&e);
    char *out = codec_buf_take(&b, len);
    alloc_fail_resume();
    return out;
}

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
    return a && b && alen == blen && memcmp(a, b, alen) == 0;
}

/* The participant bookkeeping of r adds up (room.h). */
static bool counts_hold(const struct room *r)
{
    size_t observers = 0, online = 0, actors = 0;
    for (size_t i = 0; i < r->nparts; i++) {
        const struct participant *p = r->parts[i];
        observers += p->role == ROLE_OBSERVER;
        online += p->role == ROLE_OBSERVER && p->online > 0;
        if (p->role != ROLE_OBSERVER)
            actors += actors < r->nactors && r->actors[actors] == p;
        if (p->ix != i)
            return false;
    }
    return observers == r->observers && online == r->observers_online && actors == r->nactors &&
           r->nparts - observers == r->nactors && r->by_pid.count == r->nparts;
}

/* The canonical encoding of the room as the store holds it (a second copy,
 * loaded beside the one in memory, if any); NULL when it does not load. */
static char *canon_stored(size_t *len)
{
    alloc_fail_pause();
    struct room *live = map_del(&app.rooms, room_id);
    int err = 0;
    char *out = NULL;
    struct room *copy = inproc_load_copy(&app, room_id, &err);
    if (copy) {
        CHECK(counts_hold(copy));
        out = canon(copy, len);
        room_unref(copy);
    }
    if (live)
        map_put(&app.rooms, live->id, live);
    alloc_fail_resume();
    return out;
}

static struct room *loaded(void)
{
    return room_id[0] ? map_get(&app.rooms, room_id, strlen(room_id)) : NULL;
}

/* ---- the meeting ---------------------------------------------------------------- */

enum kind { REQ, TICK, LEAVE, IMPORT };

struct step {
    enum kind kind;
    int who;
    const char *op, *args;
};

/* Every kind of change a meeting makes: a room, four roles joining, items
 * added, updated, moved, removed and split (then each undone, and a split
 * merged back), the room's settings and deck
 * changed, a poker round voted, revealed and accepted, a second one revealed
 * by its timer on the tick, a role change, the focus, a token rotated, the
 * vision, personas and outcomes (adopted, referred to, removed with force),
 * participants leaving (which checks for an auto-reveal), a story map built,
 * items placed on it, and a slice and a step that holds an item removed, and
 * an import. */
static const struct step SCRIPT[] = {
    {REQ, FAC, "room.create", "{\"name\": \"OOM room\", \"deck\": \"modified\"}"},
    {REQ, FAC, "join", "{\"room\": \"$R\", \"token\": \"$T0\", \"name\": \"Fay\"}"},
    {REQ, OWN, "join", "{\"room\": \"$R\", \"token\": \"$T1\", \"name\": \"Olu\"}"},
    {REQ, DEV, "join", "{\"room\": \"$R\", \"token\": \"$T2\", \"name\": \"Dev\"}"},
    {REQ, OBS, "join", "{\"room\": \"$R\", \"token\": \"$T3\", \"name\": \"Obi\"}"},
    {REQ, FAC, "item.add",
     "{\"item\": {\"title\": \"Login\", \"labels\": [\"auth\"], \"acceptance\": [\"works\"]}}"},
    {REQ, OWN, "item.add", "{\"item\": {\"title\": \"Logout\"}, \"after\": null}"},
    {REQ, DEV, "item.add", "{\"item\": {\"title\": \"Reset\", \"notes\": \"by mail\"}}"},
    {REQ, DEV, "item.update",
     "{\"item\": \"i1\", \"set\": {\"notes\": \"SSO too\", \"labels\": [\"a\", \"b\"], "
     "\"value\": 8}}"},
    {REQ, OWN, "item.move", "{\"item\": \"i3\", \"after\": null}"},
    {REQ, FAC, "item.remove", "{\"item\": \"i2\"}"},
    {REQ, FAC, "room.update",
     "{\"name\": \"Renamed\", \"deck\": [\"1\", \"2\", \"3\", \"5\", \"8\"], "
     "\"reveal_on_timer\": true}"},
    {REQ, FAC, "round.start", "{\"item\": \"i1\"}"},
    {REQ, DEV, "vote", "{\"round\": \"r1\", \"card\": \"3\"}"},
    {REQ, OWN, "vote", "{\"round\": \"r1\", \"card\": \"5\", \"confidence\": \"high\"}"},
    {REQ, FAC, "round.reveal", "{\"round\": \"r1\"}"},
    {REQ, FAC, "round.accept", "{\"round\": \"r1\", \"estimate\": \"5\"}"},
    {REQ, FAC, "focus", "{\"item\": \"i3\"}"},
    {REQ, FAC, "room.update", "{\"capacity\": 8, \"size_limit\": 3, \"stale_days\": 30}"},
    {REQ, DEV, "item.update", "{\"item\": \"i3\", \"set\": {\"moscow\": \"wont\"}}"},
    {REQ, DEV, "item.update", "{\"item\": \"i1\", \"set\": {\"moscow\": \"must\"}}"},
    {REQ, OBS, "kano.answer",
     "{\"item\": \"i1\", \"functional\": \"like\", "
     "\"dysfunctional\": \"dislike\"}"},
    {REQ, DEV, "kano.answer",
     "{\"item\": \"i1\", \"functional\": \"expect\", "
     "\"dysfunctional\": \"dislike\"}"},
    {REQ, DEV, "kano.answer",
     "{\"item\": \"i1\", \"functional\": \"like\", "
     "\"dysfunctional\": \"neutral\"}"},
    {REQ, FAC, "kano.reveal", "{\"item\": \"i1\"}"},
    {REQ, FAC, "kano.reset", "{\"item\": \"i1\"}"},
    {REQ, OWN, "kano.answer",
     "{\"item\": \"i3\", \"functional\": \"neutral\", "
     "\"dysfunctional\": \"neutral\"}"},
    {REQ, OWN, "vision.set", "{\"vision\": {\"target\": \"teams\", \"product\": \"Refine\"}}"},
    {REQ, DEV, "item.update", "{\"item\": \"i3\", \"set\": {\"persona\": \"Shopper\"}}"},
    {REQ, OWN, "persona.add", "{\"persona\": {\"name\": \"shopper\"}, \"adopt\": true}"},
    {REQ, FAC, "persona.add", "{\"persona\": {\"name\": \"Clerk\", \"goals\": [\"g\"]}}"},
    {REQ, FAC, "persona.update", "{\"persona\": \"p2\", \"set\": {\"description\": \"d\"}}"},
    {REQ, FAC, "outcome.add",
     "{\"outcome\": {\"name\": \"Carts\", \"current\": 34, \"target\": 20}}"},
    {REQ, FAC, "outcome.add", "{\"outcome\": {\"name\": \"Speed\"}}"},
    {REQ, DEV, "item.update", "{\"item\": \"i1\", \"set\": {\"outcomes\": [\"o1\", \"o2\"]}}"},
    {REQ, DEV, "item.update", "{\"item\": \"i3\", \"set\": {\"outcomes\": [\"o2\"]}}"},
    {REQ, OWN, "outcome.update", "{\"outcome\": \"o1\", \"set\": {\"unit\": \"%\"}}"},
    {REQ, OWN, "outcome.remove", "{\"outcome\": \"o1\", \"force\": true}"},
    {REQ, OWN, "persona.remove", "{\"persona\": \"p2\"}"},
    {REQ, OWN, "map.add", "{\"kind\": \"activity\", \"name\": \"Account\"}"},
    {REQ, FAC, "map.add", "{\"kind\": \"step\", \"name\": \"Sign in\", \"activity\": \"a1\"}"},
    {REQ, FAC, "map.add",
     "{\"kind\": \"step\", \"name\": \"Recover\", \"activity\": \"a1\", \"after\": null}"},
    {REQ, OWN, "map.add", "{\"kind\": \"slice\", \"name\": \"MVP\", \"capacity\": 8}"},
    {REQ, OWN, "map.add", "{\"kind\": \"slice\", \"name\": \"Later\", \"after\": null}"},
    {REQ, DEV, "map.place", "{\"item\": \"i1\", \"step\": \"s2\", \"slice\": \"r4\"}"},
    {REQ, DEV, "map.place", "{\"item\": \"i3\", \"step\": \"s3\", \"slice\": \"r4\"}"},
    {REQ, OWN, "map.update", "{\"node\": \"r4\", \"name\": \"Skeleton\", \"capacity\": 13}"},
    {REQ, OWN, "map.move", "{\"node\": \"s2\", \"after\": null}"},
    {REQ, FAC, "map.remove", "{\"node\": \"r5\"}"},
    {REQ, FAC, "map.remove", "{\"node\": \"s3\", \"force\": true}"},
    {REQ, DEV, "map.place", "{\"item\": \"i3\", \"step\": \"s2\", \"slice\": \"r4\"}"},
    {REQ, FAC, "round.start", "{\"item\": \"i3\", \"anonymous\": true}"},
    {REQ, FAC, "timer.start", "{\"seconds\": 60}"},
    {REQ, DEV, "vote", "{\"round\": \"r2\", \"card\": \"8\"}"},
    {TICK, 0, NULL, NULL},
    {REQ, DEV, "item.split",
     "{\"item\": \"i3\", \"children\": [{\"title\": \"Reset form\"}, {\"title\": \"Reset "
     "mail\", \"labels\": [\"mail\"]}], \"pattern\": \"workflow\"}"},
    {REQ, OWN, "order.propose", "{\"method\": \"wsjf\"}"},
    {REQ, OWN, "order.apply", "{\"base\": \"$B\", \"method\": \"value_effort\"}"},
    {REQ, FAC, "order.apply", "{\"base\": \"$B\", \"order\": [\"i5\", \"i4\", \"i1\"]}"},
    {REQ, FAC, "role.set", "{\"pid\": \"$P2\", \"role\": \"owner\"}"},
    {REQ, FAC, "room.update", "{\"deck\": \"tshirt\", \"auto_reveal\": true}"},
    {REQ, FAC, "round.start", "{\"item\": \"i4\"}"},
    {REQ, FAC, "vote", "{\"round\": \"r3\", \"card\": \"M\"}"},
    {REQ, DEV, "vote", "{\"round\": \"r3\", \"card\": \"L\"}"},
    {LEAVE, OWN, NULL, NULL}, /* the last voter online goes: auto-reveal */
    {REQ, FAC, "token.rotate", "{\"role\": \"member\"}"},
    {LEAVE, DEV, NULL, NULL},
    /* Undo after each kind of undoable change, and an unsplit. */
    {REQ, FAC, "item.add", "{\"item\": {\"title\": \"Tmp\"}, \"after\": \"i1\"}"},
    {REQ, FAC, "undo", "{}"},
    {REQ, FAC, "item.update", "{\"item\": \"i1\", \"set\": {\"notes\": \"n\", \"value\": 3}}"},
    {REQ, FAC, "undo", "{}"},
    {REQ, FAC, "item.move", "{\"item\": \"i1\", \"after\": null}"},
    {REQ, FAC, "undo", "{}"},
    {REQ, FAC, "item.remove", "{\"item\": \"i1\"}"},
    {REQ, FAC, "undo", "{}"},
    {REQ, FAC, "item.split", "{\"item\": \"i1\", \"children\": [{\"title\": \"A\"}]}"},
    {REQ, FAC, "undo", "{}"},
    {REQ, FAC, "item.split", "{\"item\": \"i1\", \"children\": [{\"title\": \"B\"}]}"},
    {REQ, FAC, "item.unsplit", "{\"item\": \"i1\"}"},
    /* POST /api/rooms/{room}/import of a Jira CSV (the worker's part, then the loop's) */
    {IMPORT, FAC, "import",
     "Issue Id,Parent,Summary,Labels,Acceptance Criteria\r\n1,,Epic,a b,x; y\r\n2,1,Kid,,\r\n"
     "3,,Other,c,\r\n"},
};
#define NSTEPS (sizeof SCRIPT / sizeof SCRIPT[0])

struct tick {
    int64_t now;
};

static void tick_room(struct room *r, void *arg)
{
    struct tick *t = arg;
    presence_tick(&app, r, t->now); /* as main.c's tick_room */
    poker_ops_on_tick(&app, r, t->now);
    health_ops_tick(&app, r, t->now);
}

/* What the room.create and join replies hand out: the room, its tokens, pids. */
static void remember(const struct step *st, struct client *k, uint64_t id)
{
    for (size_t i = 0; i < k->n; i++) {
        msgpack_zone z;
        msgpack_object o;
        uint64_t rid;
        msgpack_zone_init(&z, 1024);
        if (decode(k->msgs[i], &z, &o) && codec_get_uint(&o, "id", &rid) && rid == id &&
            codec_str_eq(codec_get(&o, "t"), "ok")) {
            const msgpack_object *v;
            if (strcmp(st->op, "room.create") == 0) {
                v = codec_get(&o, "room");
                snprintf(room_id, sizeof room_id, "%.*s", (int)v->via.str.size, v->via.str.ptr);
                for (int role = 0; role < ROLE__COUNT; role++) {
                    v = codec_get(codec_get(&o, "tokens"), role_name(role));
                    snprintf(tokens[role], sizeof tokens[role], "%.*s", (int)v->via.str.size,
                             v->via.str.ptr);
                }
            } else if ((v = codec_get(&o, "pid"))) {
                snprintf(k->pid, sizeof k->pid, "%.*s", (int)v->via.str.size, v->via.str.ptr);
            }
        }
        msgpack_zone_destroy(&z);
    }
}

static size_t failures;   /* checks failed in the current run, to name the N */
static size_t fired_step; /* the step in which the allocation failed */

#define EXPECT(cond, ...)                                                                          \
    do {                                                                                           \
        CHECK(cond);                                                                               \
        if (!(cond)) {                                                                             \
            failures++;                                                                            \
            fprintf(stderr, "  step %zu (%s), allocation %ld failing: ", i,                        \
                    st->op             ? st->op                                                    \
                    : st->kind == TICK ? "tick"                                                    \
                                       : "leave",                                                  \
                    fail_at);                                                                      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fprintf(stderr, "\n");                                                                 \
        }                                                                                          \
    } while (0)

/* Runs the meeting with allocation fail_at failing (0: none), with
 * persistent every one after it too; returns the number of allocations it
 * made (up to the end of the step where the first failed). */
static long meeting(long fail_at, bool persistent)
{
    size_t i = 0;
    const struct step *st = SCRIPT;
    room_id[0] = '\0';
    for (int s = 0; s < NCLIENTS; s++)
        client_open(&cl[s]);
    alloc_fail_arm(fail_at, persistent);
    for (i = 0; i < NSTEPS; i++) {
        st = &SCRIPT[i];
        struct room *r = loaded();
        size_t len0 = 0, len1 = 0, len2 = 0;
        char *before = r ? canon(r, &len0) : NULL;
        uint64_t id = 0;
        enum reply import_rep = REPLY_NONE;
        if (st->kind == REQ) {
            id = send_request(&cl[st->who], st->op, st->args);
        } else if (st->kind == IMPORT) {
            char *body = strdup(st->args), *out = NULL, why[512];
            size_t outlen = 0;
            struct import *im = NULL;
            int rc = body ? import_parse(body, strlen(st->args), true, &im) : RF_ENOMEM;
            if (!rc)
                rc = r ? import_apply(im, &app, r, false, &out, &outlen, why, sizeof why)
                       : RF_ENOT_FOUND;
            import_free(im);
            free(out);
            import_rep = rc ? REPLY_ERR : REPLY_OK;
        } else if (st->kind == TICK) {
            struct tick t = {clock_now_ms() + 3601 * 1000}; /* as main.c's on_tick */
            room_each(&app, tick_room, &t);
        } else {
            client_close(&cl[st->who]);
        }
        pump();
        alloc_fail_pause();
        enum reply rep = st->kind == REQ      ? reply_of(&cl[st->who], id)
                         : st->kind == IMPORT ? import_rep
                                              : REPLY_OK;
        if (rep == REPLY_OK && st->kind == REQ)
            remember(st, &cl[st->who], id);
        bool fired = alloc_fail_fired();
        r = loaded();
        char *now = r ? canon(r, &len1) : NULL;
        char *stored = room_id[0] ? canon_stored(&len2) : NULL;
        if (!fired) {
            EXPECT(rep == REPLY_OK, "the request was not answered ok");
            EXPECT(r && same(now, len1, stored, len2), "memory and store differ");
        } else if (room_id[0] && !r) { /* evicted: it loads back as acknowledged */
            EXPECT(stored != NULL, "the evicted room does not load back");
            for (int s = 0; s < NCLIENTS; s++)
                EXPECT(!cl[s].c || !cl[s].c->room || cl[s].closed,
                       "client %d is still open in the evicted room", s);
            if (stored && before) {
                msgpack_zone z;
                msgpack_object o;
                uint64_t seq = 0, seq0 = 0;
                msgpack_zone_init(&z, 8192);
                const char *why;
                if (codec_decode((const uint8_t *)stored, len2, &z, &o, &why) == 0)
                    codec_get_uint(&o, "seq", &seq);
                if (codec_decode((const uint8_t *)before, len0, &z, &o, &why) == 0)
                    codec_get_uint(&o, "seq", &seq0);
                msgpack_zone_destroy(&z);
                EXPECT(seq >= told_seq(), "the store has seq %llu, a client was told %llu",
                       (unsigned long long)seq, (unsigned long long)told_seq());
                EXPECT(seq != seq0 || same(stored, len2, before, len0),
                       "the evicted room loads back changed, with no new seq");
            }
        } else if (r) { /* still in memory: as stored, and unchanged on an error */
            EXPECT(counts_hold(r), "the participant counts do not add up");
            EXPECT(same(now, len1, stored, len2), "memory and store differ");
            EXPECT(rep != REPLY_ERR || !before || same(now, len1, before, len0),
                   "the request failed but the room changed");
            EXPECT(rep != REPLY_NONE || cl[st->who].closed,
                   "the request was not answered, and its connection is open");
            const struct round *cur = room_current_round(r);
            EXPECT(st->kind != TICK || r->timer_ends_at || !cur || cur->state != ROUND_VOTING,
                   "the timer ran out, and its round (reveal_on_timer) is still voting");
        } else { /* room.create failed */
            EXPECT(rep == REPLY_ERR || cl[st->who].closed,
                   "room.create neither answered an error nor closed the connection");
        }
        free(before);
        free(now);
        free(stored);
        alloc_fail_resume();
        if (fired) {
            fired_step = i;
            break;
        }
    }
    long n = alloc_fail_count();
    alloc_fail_disarm();
    if (!fail_at) { /* the script did what it says: the timer's tick revealed r2, the split of
                       its item closed it, and a leave revealed r3 */
        struct room *r = loaded();
        CHECK(r && r->nrounds == 3 && r->rounds[0]->state == ROUND_ACCEPTED &&
              r->rounds[1]->state == ROUND_CANCELLED && r->rounds[2]->state == ROUND_REVEALED);
        CHECK(r && r->backlog.n == 4 + 3 && r->nparts == 4 && r->parts[2]->role == ROLE_OWNER);
        /* the orders applied: i3 (split) keeps the top, the open items as given */
        CHECK(r && strcmp(r->backlog.v[0]->id, "i3") == 0 &&
              strcmp(r->backlog.v[1]->id, "i5") == 0 && strcmp(r->backlog.v[3]->id, "i1") == 0);
    }
    for (int s = 0; s < NCLIENTS; s++)
        client_free(&cl[s]);
    if (room_id[0])
        room_evict(&app, room_id);
    pump();
    return n;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

int main(void)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/refine-test-oom-%d.db", (int)getpid());
    unlink(dbpath);
    CHECK(dispatch_table_complete());
    start();

    /* OOM_FAIL=N runs allocation N only (OOM_PERSISTENT=1: and all after it),
     * for reading a failure. */
    const char *only = getenv("OOM_FAIL"), *pers = getenv("OOM_PERSISTENT");
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    meeting(0, false); /* the first room grows the server's own tables */
    long total = meeting(0, false);
    CHECK(total > 0 && total == meeting(0, false)); /* the count is the same every run */
    long first = only ? atol(only) : 1, last = only ? atol(only) : total;
    bool leaked = LEAK_CHECK();
    CHECK(!leaked);
    for (int mode = 0; mode < 2; mode++) {
        bool persistent = mode == 1;
        if (only && persistent != (pers && *pers == '1'))
            continue;
        for (long n = first; n <= last; n++) {
            failures = 0;
            long made = meeting(n, persistent);
            CHECK(made >= n); /* allocation n was reached */
            /* A leak check scans the heap: one every LEAK_EVERY runs (and the
             * last), naming the runs since the one before. After a leak, none:
             * they would report the same blocks again. */
            if (!leaked && ((n - first + 1) % LEAK_EVERY == 0 || n == last) && LEAK_CHECK()) {
                leaked = true;
                failures++;
                fprintf(stderr,
                        "test_oom: the leak above is from a run failing allocation %ld..%ld%s "
                        "(OOM_FAIL=N runs one)\n",
                        n - (n - first) % LEAK_EVERY, n, persistent ? " and after" : "");
            }
            if (failures)
                fprintf(stderr, "test_oom: OOM_FAIL=%ld%s reproduces the failure above\n", n,
                        persistent ? " OOM_PERSISTENT=1" : "");
        }
    }
    printf("test_oom: a meeting of %zu steps makes %ld allocations; each failed in turn, then "
           "each and every one after it, in %.1f s\n",
           NSTEPS, total, seconds_since(&t0));

    CHECK(inproc_stop(&app) == 0);
    char side[80];
    unlink(dbpath);
    snprintf(side, sizeof side, "%s-wal", dbpath);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", dbpath);
    unlink(side);
    return check_summary("test_oom");
}
