/* A server without sockets for unit tests (test_outbox, test_conn): the app,
 * a libuv loop, a real store on a SQLite file in a temporary directory with
 * the hooks main.c gives it (outbox_on_commit, outbox_on_store_fail), and
 * in-process clients (a conn with wsi NULL whose frames go to a sink). Not
 * a module: included once, by one test file. Built on inproc.h. */
#ifndef REFINE_TEST_FIXTURE_H
#define REFINE_TEST_FIXTURE_H

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app.h"
#include "check.h"
#include "conn.h"
#include "frame.h"
#include "inproc.h"
#include "log.h"
#include "outbox.h"
#include "room.h"
#include "store.h"

static struct app app;
static uv_loop_t loop;
static char fixture_dir[64], dbpath[128];

struct client {
    struct conn *c;
    struct frame *msgs[64]; /* what the sink got, each with a reference */
    size_t n;
};

static void client_sink(struct conn *c, struct frame *f)
{
    struct client *cl = c->sink_arg;
    if (cl->n < sizeof cl->msgs / sizeof cl->msgs[0])
        cl->msgs[cl->n++] = frame_ref(f);
}

/* A new connection (on app.conns, one reference: the socket's) and its sink. */
static struct client *client_new(void)
{
    struct client *cl = calloc(1, sizeof *cl);
    cl->c = conn_new(&app, NULL);
    cl->c->sink = client_sink;
    cl->c->sink_arg = cl;
    return cl;
}

/* Drops what the sink got. */
static void client_clear(struct client *cl)
{
    for (size_t i = 0; i < cl->n; i++)
        frame_unref(cl->msgs[i]);
    cl->n = 0;
}

/* Frees the client, not its conn (conn_on_closed does that). */
static void client_drop(struct client *cl)
{
    client_clear(cl);
    free(cl);
}

static void fixture_remove_db(void)
{
    const char *suffixes[] = {"", "-wal", "-shm", ".high-water", ".high-water.tmp"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s%s", dbpath, suffixes[i]);
        unlink(path);
    }
}

/* The app as main.c sets it up, on a new database capped at max_mb (0: no
 * cap). Returns 0, or -1 when the temporary directory cannot be made. */
static int fixture_start(size_t max_mb)
{
    if (!fixture_dir[0]) {
        snprintf(fixture_dir, sizeof fixture_dir, "/tmp/refine-test-XXXXXX");
        if (!mkdtemp(fixture_dir)) {
            perror("mkdtemp");
            return -1;
        }
        snprintf(dbpath, sizeof dbpath, "%s/test.db", fixture_dir);
        log_set_level(LOG_ERROR);
    }
    fixture_remove_db();
    memset(&app, 0, sizeof app);
    char *argv[] = {"test", NULL};
    config_parse(&app.cfg, 1, argv, stdout, stderr);
    app.cfg.log_level = 0;
    CHECK(inproc_start_with(&app, &loop, dbpath, &(struct store_options){.max_mb = max_mb}) == 0);
    return 0;
}

/* Closes the store (writing what is pending), frees the rooms and the
 * outbox and closes the loop. */
static void fixture_stop(void)
{
    CHECK(inproc_stop(&app) == 0);
}

/* Removes the database and the temporary directory. */
static void fixture_done(void)
{
    fixture_remove_db();
    rmdir(fixture_dir);
}

#endif
