/* WebSocket clients on a libuv loop, through libwebsockets' client API.
 *
 * One context per process drives any number of connections on the caller's
 * loop (lws runs on it as a foreign loop, as in the server). Connections are
 * opened at most `max_connecting` at a time; the rest wait their turn, so
 * thousands can be asked for at once without overrunning the server's
 * listen backlog. Every message sent is one binary frame; every message
 * received is handed over whole (fragments and lws' rx chunks reassembled).
 *
 * Lifetime: wsc_connect() returns a connection that stays valid until its
 * on_close handler has returned (on_close is called exactly once, also when
 * the connection never opened); then the module frees it. */
#ifndef REFINE_BENCH_WSCLIENT_H
#define REFINE_BENCH_WSCLIENT_H

#include <libwebsockets.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Headroom a send buffer must have in front of the message. */
#define WSC_HEAD LWS_PRE

struct wsc_ctx;
struct wsc;

struct wsc_handlers {
    void (*on_open)(struct wsc *c, void *user);
    /* data is borrowed for the call. */
    void (*on_message)(struct wsc *c, void *user, const uint8_t *data, size_t len);
    /* code: the close status the server sent (1001, 4001, ...), 1006 when the
     * connection dropped without one, -1 when it never opened. */
    void (*on_close)(struct wsc *c, void *user, int code);
};

/* Creates the context on loop. 0 or -1. */
int wsc_ctx_new(struct wsc_ctx **out, uv_loop_t *loop, const struct wsc_handlers *h,
                const char *host, int port, size_t max_connecting);
/* Points new connections at another port (after a server restart). */
void wsc_ctx_set_port(struct wsc_ctx *ctx, int port);
/* Closes every connection and the context; runs the loop until lws has let
 * go of it. The caller closes its own handles first. */
void wsc_ctx_destroy(struct wsc_ctx *ctx);
/* Connections opened but not yet closed. */
size_t wsc_ctx_live(const struct wsc_ctx *ctx);

/* Asks for a connection with subprotocol refine.v1: to ws://host:port/r/<room>/ws
 * for a known room (a balancer routes it to the room's home), to
 * ws://host:port/ws when room is NULL or empty (to create one). NULL only on
 * out of memory. */
struct wsc *wsc_connect(struct wsc_ctx *ctx, void *user, const char *room);
/* Queues one binary message: takes buf (malloc'ed, WSC_HEAD bytes of
 * headroom, then len bytes of message). Returns 0, or -1 when the
 * connection is not open (buf is freed). */
int wsc_send(struct wsc *c, char *buf, size_t len);
/* Bytes queued and not yet handed to the socket. */
size_t wsc_queued(const struct wsc *c);
/* Stops (0) or resumes (1) reading from the socket. */
void wsc_set_reading(struct wsc *c, int on);
/* Closes with status 1000 once the queue is written. */
void wsc_close(struct wsc *c);

#endif
