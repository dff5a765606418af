/* The network: libwebsockets on our libuv loop (foreign loop), one vhost on
 * --port serving the WebSocket endpoint /ws (subprotocol refine.v1), the web
 * client's static files and GET /healthz. */
#ifndef REFINE_NET_H
#define REFINE_NET_H

struct app;

/* Creates the lws context and the listening vhost. Returns 0, or a negative
 * code with the reason logged (e.g. the port is in use). */
int net_start(struct app *app);

/* First stage of shutdown: closes every connection and the listener. The
 * loop must then run until lws has closed its handles; net_destroy() ends. */
void net_stop(struct app *app);
void net_destroy(struct app *app);

#endif
