/* The application: the one struct that holds everything the server owns.
 * Reached from lws' context user pointer and from libuv handles' data. */
#ifndef REFINE_APP_H
#define REFINE_APP_H

#include <libwebsockets.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "list.h"
#include "map.h"

struct loader;
struct store;
struct outbox;
struct conn;

#define APP_WBUF (64 * 1024) /* bytes one write to a connection carries at most */

struct app {
    struct config cfg;
    char instance[17]; /* --instance, or the database's own name */
    uv_loop_t *loop;
    struct lws_context *lws;
    struct lws_vhost *vhost;
    struct store *store;
    struct loader *loader; /* reads and builds rooms not in memory off the loop */
    struct outbox *outbox;
    struct map rooms;            /* room id -> struct room *, rooms loaded in memory */
    struct map peers;            /* client address -> struct peer *, open WebSockets per address */
    char *web_root;              /* --web DIR, resolved; NULL: the web client built in (web.h) */
    struct lws_http_mount mount; /* net.c: "/", every HTTP request to its callback */
    uint64_t room_count;         /* rooms in the database */
    struct list conns;           /* every open WebSocket connection (conn.all_link) */
    uint64_t join_serial;        /* stamps joins and outgoing broadcasts (see outbox.h) */
    uv_prepare_t turn_end;       /* end of each loop turn: group commit, release output */
    uv_signal_t sigint, sigterm;
    uv_timer_t tick; /* room timers, every 100 ms */
    uint64_t ticks;
    uv_timer_t shutdown_timer;
    int stopping;
    uint64_t stop_deadline; /* uv_now() by which shutdown stops waiting */
    int exit_code;
    struct list dirty; /* connections with frames queued this turn (conn_flush; conn.dirty_link) */
    /* conn.c: the frames of one burst, framed and coalesced for one write */
    unsigned char wbuf[LWS_PRE + APP_WBUF];
};

#endif
