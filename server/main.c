/* refine-server: start-up, the loop, and shutdown.
 *
 * One libuv loop owns everything: libwebsockets runs on it as a foreign
 * loop, rooms live on it, the store's writer thread reports back to it, and
 * so does the loader's thread, which reads rooms not in memory (loader.h).
 * SIGINT/SIGTERM: stop accepting, let committed output drain and close every
 * WebSocket with 1001, write what is pending, and exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "app.h"
#include "backlog.h"
#include "clock.h"
#include "conn.h"
#include "dispatch.h"
#include "errors.h"
#include "health_ops.h"
#include "loader.h"
#include "log.h"
#include "net.h"
#include "outbox.h"
#include "poker_ops.h"
#include "presence.h"
#include "room.h"
#include "room_load.h"
#include "store.h"

#define SHUTDOWN_GRACE_MS 2000

static void on_turn_end(uv_prepare_t *h)
{
    struct app *app = h->data;
    store_flush(app->store);
    outbox_release(app);
    conn_flush(app);
}

struct tick {
    struct app *app;
    int64_t now;
};

static void tick_room(struct room *r, void *arg)
{
    struct tick *t = arg;
    presence_tick(t->app, r, t->now); /* the crowd rule's `observers` notice */
    poker_ops_on_tick(t->app, r, t->now);
    health_ops_tick(t->app, r, t->now); /* items grown stale */
}

/* Every 100 ms: room timers. */
static void on_tick(uv_timer_t *h)
{
    struct tick t = {h->data, clock_now_ms()};
    if (t.app->stopping)
        return;
    room_each(t.app, tick_room, &t);
    if (++t.app->ticks % 10 == 0) { /* once a second */
        room_sweep(t.app, t.now);
        uint64_t now = uv_now(t.app->loop);
        list_each(l, &t.app->conns) conn_check_idle(conn_of_all(l), now);
    }
}

static void finish_shutdown(struct app *app)
{
    uv_timer_stop(&app->shutdown_timer);
    uv_close((uv_handle_t *)&app->shutdown_timer, NULL);
    uv_close((uv_handle_t *)&app->tick, NULL);
    uv_close((uv_handle_t *)&app->turn_end, NULL);
    uv_close((uv_handle_t *)&app->sigint, NULL);
    uv_close((uv_handle_t *)&app->sigterm, NULL);
    net_stop(
        app); /* closes the remaining sockets (withdrawing their loads); rooms see them leave */
    loader_close(app->loader); /* its reader closes before the writer's last checkpoint */
    app->loader = NULL;
    store_close(app->store);
    app->store = NULL;
}

static void on_shutdown_tick(uv_timer_t *t)
{
    struct app *app = t->data;
    if (list_empty(&app->conns) || uv_now(app->loop) >= app->stop_deadline)
        finish_shutdown(app);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct app *app = h->data;
    if (app->stopping)
        return;
    app->stopping = 1;
    log_info("received %s: closing connections and writing what is pending",
             signum == SIGINT ? "SIGINT" : "SIGTERM");
    /* Write what is pending now, so its output can still be sent. */
    store_flush(app->store);
    list_each(l, &app->conns) conn_close(conn_of_all(l), CONN_CLOSE_GOING_AWAY);
    app->stop_deadline = uv_now(app->loop) + SHUTDOWN_GRACE_MS;
    uv_timer_start(&app->shutdown_timer, on_shutdown_tick, 20, 20);
}

/* The instance's name (app->instance): the database's own, which must be
 * --instance's when it is given; a database without one takes --instance's,
 * or a generated one ("i" and 5 of [a-z0-9]), and keeps it. Returns 0,
 * RF_ECONFLICT (the database belongs to another instance; logged), or
 * RF_EINTERNAL. */
static int claim_instance(struct app *app)
{
    static const char alnum[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    char stored[INSTANCE_NAME_MAX + 1];
    int rc = store_name_get(app->store, "instance", stored, sizeof stored);
    if (rc == 0 && !config_instance_valid(stored, strlen(stored)))
        rc = RF_EINTERNAL;
    if (rc == 0 && app->cfg.instance && strcmp(stored, app->cfg.instance) != 0) {
        log_error("this database belongs to instance '%s' (its rooms' ids start with '%s.'); "
                  "start with --instance %s",
                  stored, stored, stored);
        return RF_ECONFLICT;
    }
    if (rc == RF_ENOT_FOUND) {
        if (app->cfg.instance) {
            snprintf(stored, sizeof stored, "%s", app->cfg.instance);
        } else {
            unsigned char raw[5];
            if (getrandom(raw, sizeof raw, 0) != (ssize_t)sizeof raw)
                return RF_EINTERNAL;
            stored[0] = 'i';
            for (size_t i = 0; i < sizeof raw; i++)
                stored[1 + i] = alnum[raw[i] % (sizeof alnum - 1)];
            stored[1 + sizeof raw] = '\0';
        }
        rc = store_name_put(app->store, "instance", stored);
    }
    if (rc) {
        log_error("cannot read or store the instance's name in the database %s", app->cfg.db);
        return RF_EINTERNAL;
    }
    snprintf(app->instance, sizeof app->instance, "%s", stored);
    log_info("instance name: %s", app->instance);
    return 0;
}

int main(int argc, char **argv)
{
    static struct app app;
    uv_loop_t loop;
    int rc = config_parse(&app.cfg, argc, argv, stdout, stderr);
    if (rc)
        return rc > 0 ? 0 : 2;
    log_set_level(app.cfg.log_level);
    if (!dispatch_table_complete()) {
        log_error("an operation of the table has no handler (server/dispatch.c)");
        return 1;
    }
    if (backlog_check_fields())
        return 1; /* the item table and enum item_field drifted apart (logged) */
    signal(SIGPIPE, SIG_IGN);

    if (uv_loop_init(&loop)) {
        log_error("cannot create the event loop");
        return 1;
    }
    app.loop = &loop;
    conn_lists_init(&app);
    struct store_hooks hooks = {&app, outbox_on_commit, outbox_on_store_fail};
    if (outbox_new(&app.outbox) ||
        store_open(&app.store, app.cfg.db,
                   &(struct store_options){strcmp(app.cfg.durability, "full") == 0,
                                           app.cfg.max_db_mb, app.cfg.cache_mb,
                                           app.cfg.group_commit_ms, app.cfg.log_cycle_ms},
                   &loop, &hooks)) {
        log_error("cannot open the database %s", app.cfg.db);
        outbox_free(app.outbox);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    if ((rc = claim_instance(&app))) {
        store_close(app.store);
        outbox_free(app.outbox);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return rc == RF_ECONFLICT ? 2 : 1;
    }
    app.room_count = store_room_count(app.store);
    struct loader_hooks lh;
    room_load_hooks(&app, &lh);
    if (loader_open(&app.loader, &loop, app.store, &lh) || net_start(&app)) {
        loader_close(app.loader);
        store_close(app.store);
        net_stop(&app);
        uv_run(&loop, UV_RUN_DEFAULT);
        net_destroy(&app);
        outbox_free(app.outbox);
        uv_loop_close(&loop);
        return 1;
    }
    uv_prepare_init(&loop, &app.turn_end);
    app.turn_end.data = &app;
    uv_prepare_start(&app.turn_end, on_turn_end);
    uv_timer_init(&loop, &app.tick);
    app.tick.data = &app;
    uv_timer_start(&app.tick, on_tick, 100, 100);
    uv_timer_init(&loop, &app.shutdown_timer);
    app.shutdown_timer.data = &app;
    uv_signal_init(&loop, &app.sigint);
    uv_signal_init(&loop, &app.sigterm);
    app.sigint.data = app.sigterm.data = &app;
    uv_signal_start(&app.sigint, on_signal, SIGINT);
    uv_signal_start(&app.sigterm, on_signal, SIGTERM);

    log_info("refine-server listening on port %d (database %s, %s durability, web client %s)",
             app.cfg.port, app.cfg.db, app.cfg.durability,
             app.web_root ? app.web_root : "built in");
    uv_run(&loop, UV_RUN_DEFAULT);

    net_destroy(&app);
    conn_flush(&app); /* drops what the last turn left flagged */
    room_free_all(&app);
    outbox_free(app.outbox);
    rc = uv_loop_close(&loop);
    if (rc)
        log_error("the event loop closed with handles still open");
    log_info("refine-server stopped");
    return rc ? 1 : app.exit_code;
}
