/* Unit tests of the loader (loader.h) against a real SQLite store on a
 * temporary file: a load runs on the loader's thread and completes on the
 * loop thread; requests for one room share one load and are answered in
 * order; a missing room is RF_ENOT_FOUND; a withdrawn request is not
 * answered; shutdown with a load in flight leaks nothing (run it under
 * -DREFINE_SANITIZE=ON).
 *
 * The rooms are built by this file's build hook (the server's room loading
 * lives in room.c): it reads every row through the loader's store reader and
 * loads the items into a real backlog, on the loader's thread. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "errors.h"
#include "loader.h"
#include "map.h"
#include "room.h"
#include "store.h"

static uv_loop_t loop;
static struct store *store;
static char dbpath[64];
static pthread_t loop_thread;

/* ---- the rooms in the store --------------------------------------------- */

static void on_commit(void *arg)
{
    (void)arg;
}

static void on_fail(void *arg, uint64_t upto, const char *const *rooms, size_t n)
{
    (void)arg;
    (void)upto;
    (void)rooms;
    (void)n;
}

static void put_room(const char *id, size_t items, uint64_t events)
{
    msgpack_packer *pk = store_packer(store);
    msgpack_pack_map(pk, 1);
    codec_pack_kv_str(pk, "name", id);
    CHECK(store_put_room(store, id, 1700000000000) == 0);
    for (size_t i = 0; i < items; i++) {
        char iid[24], rank[24], title[48];
        snprintf(iid, sizeof iid, "i%zu", i + 1);
        snprintf(rank, sizeof rank, "a%06zu", items - i); /* stored out of rank order */
        snprintf(title, sizeof title, "Story %zu", i + 1);
        pk = store_packer(store);
        msgpack_pack_map(pk, 1);
        codec_pack_kv_str(pk, "title", title);
        CHECK(store_put_item(store, id, iid, rank) == 0);
    }
    for (uint64_t seq = 1; seq <= events; seq++)
        CHECK(store_add_event(store, id, seq, 1700000000000, NULL, "item.added", "\x80", 1) == 0);
}

/* Runs loop turns until everything appended is committed. */
static void commit_all(void)
{
    for (int i = 0; i < 10000 && store_durable(store) != store_added(store); i++) {
        store_flush(store);
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK(store_durable(store) == store_added(store));
}

/* ---- hooks -------------------------------------------------------------- */

static atomic_int builds, builds_done, build_off_loop, build_started;
static int published, discarded;
static struct map visible = MAP_INIT; /* what publish made visible */

static int row_room(void *arg, int64_t created_at, uint64_t seq, const void *meta, size_t len)
{
    struct room *r = arg;
    (void)meta;
    (void)len;
    r->created_at = created_at;
    r->seq = seq;
    return 0;
}

static int row_item(void *arg, const char *id, const char *rank, const void *data, size_t len)
{
    struct room *r = arg;
    return backlog_load_item(&r->backlog, id, rank, data, len);
}

static int row_event(void *arg, uint64_t seq, const void *payload, size_t len)
{
    struct room *r = arg;
    (void)payload;
    (void)len;
    r->next_round = seq; /* the newest event read: proves the events were read */
    return 0;
}

static int row_none(void *arg, const char *id, const void *data, size_t len)
{
    (void)arg;
    (void)id;
    (void)data;
    (void)len;
    return 0;
}

static void room_discard(void *arg, struct room *r)
{
    (void)arg;
    backlog_free(&r->backlog);
    free(r);
    discarded++;
}

static int build(void *arg, struct store_reader *q, const char *id, struct room **out)
{
    (void)arg;
    atomic_fetch_add(&builds, 1);
    atomic_store(&build_started, 1);
    if (!pthread_equal(pthread_self(), loop_thread))
        atomic_fetch_add(&build_off_loop, 1);
    struct room *r = calloc(1, sizeof *r);
    if (!r)
        return RF_ENOMEM;
    snprintf(r->id, sizeof r->id, "%s", id);
    const struct store_room_reader rd = {r,        row_room,  row_none, row_item,
                                         row_none, row_event, NULL};
    int rc = store_reader_load_room(q, id, 16, &rd);
    backlog_load_done(&r->backlog);
    if (rc) {
        backlog_free(&r->backlog);
        free(r);
    } else {
        *out = r;
    }
    atomic_fetch_add(&builds_done, 1);
    return rc;
}

static struct room *publish(void *arg, struct room *r, int *err)
{
    (void)arg;
    CHECK(pthread_equal(pthread_self(), loop_thread));
    CHECK(map_get(&visible, r->id, strlen(r->id)) == NULL);
    if ((*err = map_put(&visible, r->id, r))) {
        room_discard(NULL, r);
        return NULL;
    }
    published++;
    return r;
}

static const struct loader_hooks HOOKS = {NULL, build, publish, room_discard};

/* ---- requests ----------------------------------------------------------- */

struct answer {
    int called, order, err;
    struct room *room;
    struct loader *reload; /* ask again for the same room from the callback */
};

static int answers;

static void done(void *arg, struct room *r, int err)
{
    struct answer *a = arg;
    CHECK(pthread_equal(pthread_self(), loop_thread));
    a->called++;
    a->order = ++answers;
    a->room = r;
    a->err = err;
    if (a->reload && r) {
        /* As if the room had been unloaded at once: ask for it again. */
        char id[sizeof r->id];
        snprintf(id, sizeof id, "%s", r->id);
        map_del(&visible, id);
        room_discard(NULL, r);
        a->room = NULL;
        CHECK(!loader_busy(a->reload, id)); /* this load has left the table */
        CHECK(loader_load(a->reload, id, done, a + 1) == 0);
        CHECK(loader_busy(a->reload, id));
        a->reload = NULL;
    }
}

/* Runs the loop until n answers more have come (or a few seconds). */
static void wait_answers(int n)
{
    int target = answers + n;
    for (int i = 0; i < 5000 && answers < target; i++) {
        uv_run(&loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    CHECK(answers == target);
}

static void drop_visible(void *value, void *arg)
{
    (void)arg;
    room_discard(NULL, value);
}

/* ---- tests -------------------------------------------------------------- */

static void test_completes_on_loop(struct loader *l)
{
    struct answer a = {0};
    CHECK(loader_load(l, "big", done, &a) == 0);
    CHECK(loader_busy(l, "big"));
    CHECK(a.called == 0); /* never from within loader_load */
    wait_answers(1);
    CHECK(a.called == 1 && a.err == 0 && a.room);
    CHECK(atomic_load(&build_off_loop) == atomic_load(&builds));
    CHECK(!loader_busy(l, "big"));
    CHECK(published == 1 && map_get(&visible, "big", 3) == a.room);
    if (a.room) {
        CHECK(strcmp(a.room->id, "big") == 0);
        CHECK(a.room->backlog.n == 3000);
        CHECK(a.room->seq == 40 && a.room->next_round == 40);
        CHECK(a.room->created_at == 1700000000000);
        /* in rank order: the last item stored has the smallest rank */
        CHECK(a.room->backlog.n && strcmp(a.room->backlog.v[0]->id, "i3000") == 0);
    }
}

static void test_coalesced_in_order(struct loader *l)
{
    struct answer a[3] = {{0}}, other = {0};
    int before = atomic_load(&builds);
    CHECK(loader_load(l, "small", done, &a[0]) == 0);
    CHECK(loader_load(l, "other", done, &other) == 0);
    CHECK(loader_load(l, "small", done, &a[1]) == 0);
    CHECK(loader_load(l, "small", done, &a[2]) == 0);
    wait_answers(4);
    CHECK(atomic_load(&builds) == before + 2); /* one load per room */
    CHECK(a[0].room && a[0].room == a[1].room && a[1].room == a[2].room);
    CHECK(a[0].order < a[1].order && a[1].order < a[2].order);
    CHECK(other.err == 0 && other.room && other.room != a[0].room);
    CHECK(published == 3);
}

static void test_missing(struct loader *l)
{
    struct answer a = {0}, b = {0};
    CHECK(loader_load(l, "nosuchroom", done, &a) == 0);
    CHECK(loader_load(l, "nosuchroom", done, &b) == 0);
    wait_answers(2);
    CHECK(a.called == 1 && a.room == NULL && a.err == RF_ENOT_FOUND);
    CHECK(b.called == 1 && b.room == NULL && b.err == RF_ENOT_FOUND);
    CHECK(published == 3 && !loader_busy(l, "nosuchroom"));
}

static void test_cancel_and_reload(struct loader *l)
{
    /* Withdrawn requests are not answered; the load still publishes. */
    struct answer a = {0}, b = {0}, c[2] = {{0}};
    CHECK(loader_load(l, "third", done, &a) == 0);
    CHECK(loader_load(l, "third", done, &b) == 0);
    loader_cancel(l, &a);
    wait_answers(1);
    CHECK(a.called == 0 && b.called == 1 && b.room);
    CHECK(published == 4);
    /* A request made from a done callback starts a new load. */
    int before = atomic_load(&builds);
    c[0].reload = l;
    CHECK(loader_load(l, "fourth", done, &c[0]) == 0);
    wait_answers(2);
    CHECK(c[0].called == 1 && c[0].err == 0);
    CHECK(c[1].called == 1 && c[1].err == 0 && c[1].room);
    CHECK(atomic_load(&builds) == before + 2); /* built again */
    CHECK(published == 6 && map_get(&visible, "fourth", 6) == c[1].room);
}

static void test_close_in_flight(void)
{
    /* A loader of its own, closed while it builds a room, with another
     * queued behind: nothing is answered, what was built is discarded. */
    struct loader *l;
    CHECK(loader_open(&l, &loop, store, &HOOKS) == 0);
    struct answer a = {0}, b = {0};
    int d0 = discarded, b0 = atomic_load(&builds_done);
    atomic_store(&build_started, 0);
    CHECK(loader_load(l, "fifth", done, &a) == 0);
    CHECK(loader_load(l, "big", done, &b) == 0);
    for (int i = 0; i < 5000 && !atomic_load(&build_started); i++)
        usleep(200);
    loader_close(l);
    CHECK(discarded - d0 == atomic_load(&builds_done) - b0);
    for (int i = 0; i < 3; i++)
        uv_run(&loop, UV_RUN_NOWAIT); /* the async handle's close frees the loader */
    CHECK(a.called == 0 && b.called == 0);
}

int main(void)
{
    snprintf(dbpath, sizeof dbpath, "/tmp/refine-test-loader-%d.db", (int)getpid());
    unlink(dbpath);
    loop_thread = pthread_self();
    uv_loop_init(&loop);
    struct store_hooks sh = {NULL, on_commit, on_fail};
    CHECK(store_open(&store, dbpath, &(struct store_options){.full_sync = false}, &loop, &sh) == 0);
    put_room("big", 3000, 40);
    put_room("small", 5, 2);
    put_room("other", 7, 0);
    put_room("third", 1, 1);
    put_room("fourth", 2, 1);
    put_room("fifth", 10000, 10);
    commit_all();

    struct loader *l;
    CHECK(loader_open(&l, &loop, store, &HOOKS) == 0);
    test_completes_on_loop(l);
    test_coalesced_in_order(l);
    test_missing(l);
    test_cancel_and_reload(l);
    loader_close(l);
    loader_close(NULL);
    test_close_in_flight();

    map_each(&visible, drop_visible, NULL);
    map_free(&visible);
    store_close(store);
    uv_run(&loop, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop) == 0);
    char side[96];
    unlink(dbpath);
    snprintf(side, sizeof side, "%s-wal", dbpath);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", dbpath);
    unlink(side);
    snprintf(side, sizeof side, "%s.high-water", dbpath);
    unlink(side);
    return check_summary("test_loader");
}
