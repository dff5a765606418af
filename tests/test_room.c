/* Unit tests of room and backlog state, through the real handlers and a real
 * SQLite store, with in-process connections (no sockets): ordering by rank
 * keys, long runs of inserts at one spot, atomic splits, seq and the replay
 * ring, and loading a room back from its state tables. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "backlog.h"
#include "check.h"
#include "clock.h"
#include "conn.h"
#include "dispatch.h"
#include "frame.h"
#include "inproc.h"
#include "outbox.h"
#include "presence.h"
#include "room.h"
#include "store.h"

static struct app app;
static uv_loop_t loop;
static char dbpath[64];

struct client {
    struct conn *c;
    struct frame *msgs[4096];
    size_t n;
    uint64_t next_id;
};

static void sink(struct conn *c, struct frame *f)
{
    struct client *cl = c->sink_arg;
    if (cl->n < sizeof cl->msgs / sizeof cl->msgs[0])
        cl->msgs[cl->n++] = frame_ref(f);
}

static void start(void)
{
    char *argv[] = {"test", "--replay-events", "16", NULL};
    config_parse(&app.cfg, 3, argv, stdout, stderr);
    app.cfg.log_level = 0;
    app.cfg.rate = 1000000; /* the test sends hundreds of requests in one go */
    CHECK(inproc_start(&app, &loop, dbpath) == 0);
}

static void stop(void)
{
    CHECK(inproc_stop(&app) == 0);
}

static void pump(void)
{
    CHECK(inproc_pump(&app));
}

static struct client *client_new(void)
{
    struct client *cl = calloc(1, sizeof *cl);
    cl->c = conn_new(&app, NULL);
    cl->c->sink = sink;
    cl->c->sink_arg = cl;
    cl->next_id = 1;
    return cl;
}

static void client_free(struct client *cl)
{
    if (cl->c->room)
        presence_leave(cl->c);
    conn_on_closed(cl->c);
    for (size_t i = 0; i < cl->n; i++)
        frame_unref(cl->msgs[i]);
    free(cl);
}

/* The i-th message received, decoded into zone. */
static msgpack_object msg_at(struct client *cl, size_t i, msgpack_zone *z)
{
    msgpack_object o;
    const char *why;
    memset(&o, 0, sizeof o);
    CHECK(codec_decode(cl->msgs[i]->data, cl->msgs[i]->len, z, &o, &why) == 0);
    return o;
}

/* The reply to request id: 1 for ok, 0 for err (its code into code). */
static int reply_of(struct client *cl, uint64_t id, char *code, size_t codesz, char *field,
                    const char *key, size_t fieldsz)
{
    for (size_t i = cl->n; i-- > 0;) {
        msgpack_zone z;
        msgpack_zone_init(&z, 1024);
        msgpack_object o = msg_at(cl, i, &z);
        uint64_t rid;
        int found = codec_get_uint(&o, "id", &rid) && rid == id;
        int ok = codec_str_eq(codec_get(&o, "t"), "ok");
        if (found && code) {
            const msgpack_object *c = codec_get(&o, "code");
            snprintf(code, codesz, "%.*s", c ? (int)c->via.str.size : 0, c ? c->via.str.ptr : "");
        }
        if (found && field && key) {
            const msgpack_object *f = codec_get(&o, key);
            snprintf(field, fieldsz, "%.*s",
                     f && f->type == MSGPACK_OBJECT_STR ? (int)f->via.str.size : 0,
                     f && f->type == MSGPACK_OBJECT_STR ? f->via.str.ptr : "");
        }
        msgpack_zone_destroy(&z);
        if (found)
            return ok;
    }
    return -1;
}

/* Packs a request {t: op, id, ...} whose extra pairs the callback packs. */
typedef void (*pack_fn)(msgpack_packer *pk, const void *arg);

static uint64_t request(struct client *cl, const char *op, size_t nfields, pack_fn fn,
                        const void *arg)
{
    struct codec_buf b;
    msgpack_packer pk;
    uint64_t id = cl->next_id++;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 2 + nfields);
    codec_pack_kv_str(&pk, "t", op);
    codec_pack_kv_u64(&pk, "id", id);
    if (fn)
        fn(&pk, arg);
    size_t len;
    char *data = codec_buf_take(&b, &len);
    inproc_dispatch(&app, cl->c, data, len, true);
    free(data);
    pump();
    return id;
}

static void pack_create(msgpack_packer *pk, const void *arg)
{
    codec_pack_kv_str(pk, "name", arg);
}

struct join_args {
    const char *room, *token, *name;
};

static void pack_join(msgpack_packer *pk, const void *arg)
{
    const struct join_args *a = arg;
    codec_pack_kv_str(pk, "room", a->room);
    codec_pack_kv_str(pk, "token", a->token);
    codec_pack_kv_str(pk, "name", a->name);
}

struct add_args {
    const char *title;
    const char *after; /* NULL: bottom (absent) */
};

static void pack_add(msgpack_packer *pk, const void *arg)
{
    const struct add_args *a = arg;
    codec_pack_str(pk, "item");
    msgpack_pack_map(pk, 1);
    codec_pack_kv_str(pk, "title", a->title);
    if (a->after)
        codec_pack_kv_str(pk, "after", strcmp(a->after, "top") ? a->after : NULL);
}

static void pack_move(msgpack_packer *pk, const void *arg)
{
    const char *const *a = arg;
    codec_pack_kv_str(pk, "item", a[0]);
    codec_pack_kv_str(pk, "after", a[1]);
}

static void pack_bad_split(msgpack_packer *pk, const void *arg)
{
    codec_pack_kv_str(pk, "item", arg);
    codec_pack_str(pk, "children");
    msgpack_pack_array(pk, 2);
    msgpack_pack_map(pk, 1);
    codec_pack_kv_str(pk, "title", "fine child");
    msgpack_pack_map(pk, 1);
    codec_pack_kv_str(pk, "title", ""); /* empty title: invalid */
}

static int ordered(const struct backlog *b)
{
    for (size_t i = 1; i < b->n; i++)
        if (strcmp(b->v[i - 1]->rank, b->v[i]->rank) >= 0)
            return 0;
    return 1;
}

static size_t count_type(struct client *cl, const char *t)
{
    size_t n = 0;
    for (size_t i = 0; i < cl->n; i++) {
        msgpack_zone z;
        msgpack_zone_init(&z, 1024);
        msgpack_object o = msg_at(cl, i, &z);
        n += codec_str_eq(codec_get(&o, "t"), t);
        msgpack_zone_destroy(&z);
    }
    return n;
}

/* Room ids and their homes (room.h): "<instance>.<token>", or a bare token
 * made by older versions, which names no home. */
static void test_room_ids(void)
{
    char home[INSTANCE_NAME_MAX + 1];
    CHECK(room_home("a.kq3VxPAbCdEfGhIjKlMnOp", home) && strcmp(home, "a") == 0);
    CHECK(room_home("abcdefghij123456.x", home) && strcmp(home, "abcdefghij123456") == 0);
    CHECK(room_home("b.x.y", home) && strcmp(home, "b") == 0);            /* the first dot */
    CHECK(!room_home("kq3VxPAbCdEfGhIjKlMnOp", home) && home[0] == '\0'); /* legacy */
    CHECK(!room_home(".x", home) && !room_home("A.x", home) && !room_home("1a.x", home));
    CHECK(!room_home("abcdefghij1234567.x", home) && !room_home("a-b.x", home));
    static struct app here = {.instance = "a"}; /* large: not on the stack */
    CHECK(!room_elsewhere(&here, "a.xyz", 5, home));
    CHECK(room_elsewhere(&here, "b.xyz", 5, home) && strcmp(home, "b") == 0);
    CHECK(!room_elsewhere(&here, "b.xyz", 1, home)); /* "b": no dot, no home */
    CHECK(!room_elsewhere(&here, "kq3VxPAbCdEfGhIjKlMnOp", 22, home));
    CHECK(config_instance_valid("a", 1) && !config_instance_valid("", 0));
}

int main(void)
{
    char room_id[64], token[64], code[64], item[64];
    snprintf(dbpath, sizeof dbpath, "/tmp/refine-test-room-%d.db", (int)getpid());
    unlink(dbpath);
    CHECK(dispatch_table_complete());
    CHECK(backlog_check_fields() == 0);
    test_room_ids();
    start();

    /* A room, and its facilitator joined. */
    struct client *fac = client_new();
    uint64_t id = request(fac, "room.create", 1, pack_create, "Unit room");
    CHECK(reply_of(fac, id, NULL, 0, room_id, "room", sizeof room_id) == 1);
    CHECK(strncmp(room_id, "t.", 2) == 0 && strlen(room_id) == 2 + TOKEN_LEN); /* inproc.h: "t" */
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object created = msg_at(fac, 0, &z);
    const msgpack_object *tokens = codec_get(&created, "tokens");
    const msgpack_object *ft = codec_get(tokens, "facilitator");
    snprintf(token, sizeof token, "%.*s", (int)ft->via.str.size, ft->via.str.ptr);
    msgpack_zone_destroy(&z);
    struct join_args ja = {room_id, token, "Fay"};
    id = request(fac, "join", 3, pack_join, &ja);
    CHECK(reply_of(fac, id, NULL, 0, NULL, NULL, 0) == 1);
    CHECK(count_type(fac, "snapshot") == 1);
    struct room *r = fac->c->room;
    CHECK(r != NULL && r->seq == 0);

    /* Five items at the bottom: i1..i5 in order. */
    char titles[5][8];
    for (int i = 0; i < 5; i++) {
        snprintf(titles[i], sizeof titles[i], "t%d", i + 1);
        struct add_args aa = {titles[i], NULL};
        id = request(fac, "item.add", aa.after ? 2 : 1, pack_add, &aa);
        CHECK(reply_of(fac, id, code, sizeof code, item, "item", sizeof item) == 1);
    }
    CHECK(r->backlog.n == 5 && ordered(&r->backlog));
    CHECK(strcmp(r->backlog.v[0]->id, "i1") == 0 && strcmp(r->backlog.v[4]->id, "i5") == 0);
    CHECK(r->seq == 5 && r->ring_count == 5);

    /* Move i5 to the top, i1 below i3. */
    const char *mv1[] = {"i5", NULL}, *mv2[] = {"i1", "i3"};
    request(fac, "item.move", 2, pack_move, mv1);
    request(fac, "item.move", 2, pack_move, mv2);
    const char *want[] = {"i5", "i2", "i3", "i1", "i4"};
    for (int i = 0; i < 5; i++)
        CHECK(strcmp(r->backlog.v[i]->id, want[i]) == 0);
    CHECK(ordered(&r->backlog));
    /* Moving after itself is refused and changes nothing. */
    const char *mv3[] = {"i2", "i2"};
    id = request(fac, "item.move", 2, pack_move, mv3);
    CHECK(reply_of(fac, id, code, sizeof code, NULL, NULL, 0) == 0 &&
          strcmp(code, "bad_request") == 0);
    CHECK(r->seq == 7);

    /* 300 inserts at one spot (always right below i5): order holds, keys stay
     * short, the server rebalances. */
    size_t max_len = 0;
    for (int i = 0; i < 300; i++) {
        struct add_args aa = {"same spot", "i5"};
        request(fac, "item.add", aa.after ? 2 : 1, pack_add, &aa);
        CHECK(strcmp(r->backlog.v[0]->id, "i5") == 0);
        for (size_t k = 0; k < r->backlog.n; k++)
            if (strlen(r->backlog.v[k]->rank) > max_len)
                max_len = strlen(r->backlog.v[k]->rank);
    }
    CHECK(r->backlog.n == 305 && ordered(&r->backlog));
    CHECK(max_len <= RANK_REBALANCE);
    CHECK(count_type(fac, "items.reranked") >= 1);
    /* The newest insert sits right below i5, the first one at the end of the run. */
    CHECK(strcmp(r->backlog.v[1]->id, "i305") == 0 && strcmp(r->backlog.v[300]->id, "i6") == 0);
    printf("300 inserts at one spot: longest key %zu characters, %zu rebalances\n", max_len,
           count_type(fac, "items.reranked"));

    /* A split with one invalid child changes nothing. */
    uint64_t seq_before = r->seq, next_before = r->next_item;
    id = request(fac, "item.split", 2, pack_bad_split, "i2");
    CHECK(reply_of(fac, id, code, sizeof code, NULL, NULL, 0) == 0 &&
          strcmp(code, "bad_request") == 0);
    CHECK(r->backlog.n == 305 && r->seq == seq_before && r->next_item == next_before);

    /* A second participant sees the first's changes in the same seq order. */
    struct client *dev = client_new();
    ja.name = "Dev";
    request(dev, "join", 3, pack_join, &ja);
    CHECK(count_type(fac, "participant.joined") == 1);
    struct add_args aa = {"seen by both", "top"};
    request(fac, "item.add", aa.after ? 2 : 1, pack_add, &aa);
    CHECK(count_type(dev, "item.added") == 1);
    uint64_t last_seq = r->seq;
    char first_id[ITEM_ID_MAX];
    snprintf(first_id, sizeof first_id, "%s", r->backlog.v[0]->id);
    client_free(dev);
    client_free(fac);

    /* Nobody connected, everything committed: the sweep unloads the room
     * after ROOM_UNLOAD_MS, not before. */
    pump();
    CHECK(map_get(&app.rooms, room_id, strlen(room_id)) == r);
    room_sweep(&app, clock_now_ms());
    CHECK(map_get(&app.rooms, room_id, strlen(room_id)) == r);
    room_sweep(&app, clock_now_ms() + ROOM_UNLOAD_MS + 1);
    CHECK(map_get(&app.rooms, room_id, strlen(room_id)) == NULL);

    /* Restart: the room comes back from its state tables. */
    stop();
    start();
    struct client *again = client_new();
    ja.name = "Fay";
    id = request(again, "join", 3, pack_join, &ja);
    CHECK(reply_of(again, id, NULL, 0, NULL, NULL, 0) == 1);
    r = again->c->room;
    CHECK(r && r->seq == last_seq && r->backlog.n == 306 && ordered(&r->backlog));
    CHECK(r && strcmp(r->backlog.v[0]->id, first_id) == 0);
    CHECK(r && r->ring_count == 16);
    struct add_args ab = {"after restart", NULL};
    request(again, "item.add", 1, pack_add, &ab);
    CHECK(r && r->seq == last_seq + 1);
    client_free(again);
    stop();
    unlink(dbpath);
    char side[80];
    snprintf(side, sizeof side, "%s-wal", dbpath);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", dbpath);
    unlink(side);
    return check_summary("test_room");
}
