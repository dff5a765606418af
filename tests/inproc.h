/* The server in process, for the unit tests and fuzz_room: an app on its
 * own loop with a real SQLite store and the loader (rooms not in memory are
 * read on its thread, as in the server), driven turn by turn, its clients
 * connections without sockets (conn.h's sink). */
#ifndef REFINE_TEST_INPROC_H
#define REFINE_TEST_INPROC_H

#include <stdbool.h>

#include "app.h"
#include "conn.h"
#include "dispatch.h"
#include "loader.h"
#include "outbox.h"
#include "room.h"
#include "room_load.h"
#include "store.h"

/* Starts app (its cfg set) on loop with the store at path opened with opts,
 * its hooks those main.c gives it. Returns 0 or nonzero when the outbox or
 * the store cannot be made. */
static inline int inproc_start_with(struct app *app, uv_loop_t *loop, const char *path,
                                    const struct store_options *opts)
{
    uv_loop_init(loop);
    app->loop = loop;
    conn_lists_init(app);
    struct store_hooks hooks = {app, outbox_on_commit, outbox_on_store_fail};
    if (outbox_new(&app->outbox))
        return -1;
    int rc = store_open(&app->store, path, opts, loop, &hooks);
    if (rc)
        return rc;
    if (!app->instance[0]) /* main.c takes the database's; its rooms are "t.<token>" */
        snprintf(app->instance, sizeof app->instance, "t");
    struct loader_hooks lh;
    room_load_hooks(app, &lh);
    return loader_open(&app->loader, loop, app->store, &lh);
}

/* inproc_start_with() with the default store options. */
static inline int inproc_start(struct app *app, uv_loop_t *loop, const char *path)
{
    return inproc_start_with(app, loop, path, &(struct store_options){.full_sync = false});
}

/* Closes the store, frees every room and the outbox; returns what
 * uv_loop_close() returns (0: nothing left open). */
static inline int inproc_stop(struct app *app)
{
    loader_close(app->loader);
    app->loader = NULL;
    store_close(app->store);
    app->store = NULL;
    uv_run(app->loop, UV_RUN_DEFAULT);
    room_free_all(app);
    outbox_free(app->outbox);
    app->outbox = NULL;
    return uv_loop_close(app->loop);
}

/* Runs loop turns until everything appended is committed and released;
 * returns whether the store caught up. */
static inline bool inproc_pump(struct app *app)
{
    for (int i = 0; i < 100000; i++) {
        store_flush(app->store);
        outbox_release(app);
        if (store_durable(app->store) == store_added(app->store))
            break;
        uv_run(app->loop, UV_RUN_ONCE);
    }
    outbox_release(app);
    return store_durable(app->store) == store_added(app->store);
}

/* Hands c's message data[0..len) to the dispatcher, as net.c does; a join
 * of a room that is not in memory waits for the loader, so the answer is
 * queued when this returns. */
static inline void inproc_dispatch(struct app *app, struct conn *c, const void *data, size_t len,
                                   bool binary)
{
    dispatch_message(c, data, len, binary);
    while (c->join_msg)
        uv_run(app->loop, UV_RUN_ONCE);
}

/* A second copy of room id as the store holds it, built as the loader
 * builds it (on this thread) and not put in app->rooms; NULL with *err set
 * when it does not load. The caller owns the copy (room_unref). */
static inline struct room *inproc_load_copy(struct app *app, const char *id, int *err)
{
    struct loader_hooks h;
    struct store_reader *q;
    struct room *r = NULL;
    room_load_hooks(app, &h);
    if ((*err = store_reader_open(app->store, &q)))
        return NULL;
    *err = h.build(h.arg, q, id, &r);
    store_reader_close(q);
    return *err ? NULL : r;
}

#endif
