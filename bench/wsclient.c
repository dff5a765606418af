#include "wsclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SUBPROTOCOL "refine.v1"

struct wnode {
    struct wnode *next;
    char *buf; /* WSC_HEAD + len bytes */
    size_t len;
};

enum wsc_state { WSC_WAITING, WSC_CONNECTING, WSC_OPEN, WSC_CLOSED };

struct wsc {
    struct wsc_ctx *ctx;
    struct lws *wsi;
    void *user;
    enum wsc_state state;
    int close_code;
    int want_close;
    int write_failed; /* a direct write (wsc_send) failed: WRITEABLE closes */
    struct wnode *qhead, *qtail;
    size_t qbytes;
    uint8_t *rx;
    size_t rxlen, rxcap;
    struct wsc *next; /* waiting list, then dead list */
    char path[64];    /* the handshake's path: /ws or /r/<room>/ws */
};

struct wsc_ctx {
    uv_loop_t *loop;
    struct lws_context *lws;
    struct wsc_handlers h;
    char host[64];
    int port;
    size_t max_connecting, connecting, live;
    struct wsc *wait_head, *wait_tail; /* to connect */
    struct wsc *dead;                  /* closed, to free */
    uv_timer_t pump;
    int destroying;
};

static void on_pump(uv_timer_t *t);

static void schedule_pump(struct wsc_ctx *ctx)
{
    if (!ctx->destroying && !uv_is_active((uv_handle_t *)&ctx->pump))
        uv_timer_start(&ctx->pump, on_pump, 0, 0);
}

static void free_conn(struct wsc *c)
{
    struct wnode *q = c->qhead;
    while (q) {
        struct wnode *next = q->next;
        free(q->buf);
        free(q);
        q = next;
    }
    free(c->rx);
    free(c);
}

/* The connection is over: tell the user once, free it on the next pump. */
static void finish(struct wsc *c, int code)
{
    struct wsc_ctx *ctx = c->ctx;
    if (c->state == WSC_CLOSED)
        return;
    if (c->state == WSC_CONNECTING)
        ctx->connecting--;
    if (c->state == WSC_OPEN)
        ctx->live--;
    c->state = WSC_CLOSED;
    if (c->wsi)
        lws_set_opaque_user_data(c->wsi, NULL);
    c->wsi = NULL;
    if (ctx->h.on_close)
        ctx->h.on_close(c, c->user, code);
    c->next = ctx->dead;
    ctx->dead = c;
    schedule_pump(ctx);
}

static const lws_retry_bo_t NO_IDLE_POLICY = {NULL, 0, 0, 0, 0, 0};

static void start_connect(struct wsc *c)
{
    struct wsc_ctx *ctx = c->ctx;
    struct lws_client_connect_info i;
    memset(&i, 0, sizeof i);
    i.context = ctx->lws;
    i.address = ctx->host;
    i.port = ctx->port;
    i.path = c->path;
    i.host = ctx->host;
    i.protocol = SUBPROTOCOL;
    i.local_protocol_name = SUBPROTOCOL;
    i.ietf_version_or_minus_one = -1;
    i.opaque_user_data = c;
    /* No validity (idle ping) timer on our side: lws 4.1.6 keeps those in
     * one sorted list and re-inserts a connection's timer, walking the list,
     * on every frame it receives, which costs O(connections) per message. */
    i.retry_and_idle_policy = &NO_IDLE_POLICY;
    c->state = WSC_CONNECTING;
    ctx->connecting++;
    struct lws *wsi = lws_client_connect_via_info(&i);
    if (c->state != WSC_CONNECTING)
        return; /* failed inside, and finish() ran */
    if (!wsi) {
        finish(c, -1);
        return;
    }
    c->wsi = wsi;
}

static void on_pump(uv_timer_t *t)
{
    struct wsc_ctx *ctx = t->data;
    while (ctx->dead) {
        struct wsc *c = ctx->dead;
        ctx->dead = c->next;
        free_conn(c);
    }
    while (ctx->wait_head && ctx->connecting < ctx->max_connecting && !ctx->destroying) {
        struct wsc *c = ctx->wait_head;
        ctx->wait_head = c->next;
        if (!ctx->wait_head)
            ctx->wait_tail = NULL;
        c->next = NULL;
        start_connect(c);
    }
}

static void receive(struct wsc *c, struct lws *wsi, const uint8_t *in, size_t len)
{
    int last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    if (c->rxlen == 0 && last) {
        c->ctx->h.on_message(c, c->user, in, len);
        return;
    }
    if (c->rxlen + len > c->rxcap) {
        size_t cap = c->rxcap ? c->rxcap : 16384;
        while (cap < c->rxlen + len)
            cap *= 2;
        uint8_t *rx = realloc(c->rx, cap);
        if (!rx) {
            c->rxlen = 0;
            wsc_close(c);
            return;
        }
        c->rx = rx;
        c->rxcap = cap;
    }
    memcpy(c->rx + c->rxlen, in, len);
    c->rxlen += len;
    if (last) {
        size_t n = c->rxlen;
        c->rxlen = 0;
        c->ctx->h.on_message(c, c->user, c->rx, n);
        if (c->state != WSC_CLOSED && c->rxcap > 262144) {
            free(c->rx);
            c->rx = NULL;
            c->rxcap = 0;
        }
    }
}

static int writeable(struct wsc *c, struct lws *wsi)
{
    struct wnode *q = c->qhead;
    if (!q) {
        if (c->want_close) {
            lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
            return -1;
        }
        return 0;
    }
    c->qhead = q->next;
    if (!c->qhead)
        c->qtail = NULL;
    c->qbytes -= q->len;
    int n = lws_write(wsi, (unsigned char *)q->buf + WSC_HEAD, q->len, LWS_WRITE_BINARY);
    free(q->buf);
    free(q);
    if (n < 0)
        return -1;
    if (c->qhead || c->want_close)
        lws_callback_on_writable(wsi);
    return 0;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                    size_t len)
{
    struct wsc *c = lws_get_opaque_user_data(wsi);
    (void)user;
    switch (reason) {
    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        if (c)
            finish(c, -1);
        return 0;
    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        if (!c)
            return -1;
        c->wsi = wsi;
        c->ctx->connecting--;
        c->ctx->live++;
        c->state = WSC_OPEN;
        schedule_pump(c->ctx);
        if (c->ctx->h.on_open)
            c->ctx->h.on_open(c, c->user);
        if (c->qhead || c->want_close)
            lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (!c || c->state != WSC_OPEN)
            return 0;
        receive(c, wsi, in, len);
        return 0;
    case LWS_CALLBACK_CLIENT_WRITEABLE:
        if (!c || c->state != WSC_OPEN)
            return 0;
        if (c->write_failed)
            return -1;
        return writeable(c, wsi);
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (c && len >= 2) {
            const uint8_t *p = in;
            c->close_code = (p[0] << 8) | p[1];
        }
        return 0;
    case LWS_CALLBACK_CLIENT_CLOSED:
    case LWS_CALLBACK_WSI_DESTROY:
        if (c)
            finish(c, c->state == WSC_CONNECTING ? -1 : c->close_code ? c->close_code : 1006);
        return 0;
    default:
        return 0;
    }
}

static const struct lws_protocols PROTOCOLS[] = {
    {SUBPROTOCOL, callback, 0, 8192, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

int wsc_ctx_new(struct wsc_ctx **out, uv_loop_t *loop, const struct wsc_handlers *h,
                const char *host, int port, size_t max_connecting)
{
    struct wsc_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return -1;
    void *foreign_loops[1] = {loop};
    struct lws_context_creation_info info;
    ctx->loop = loop;
    ctx->h = *h;
    snprintf(ctx->host, sizeof ctx->host, "%s", host);
    ctx->port = port;
    ctx->max_connecting = max_connecting ? max_connecting : 1;
    lws_set_log_level(LLL_ERR, NULL);
    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_LIBUV;
    info.foreign_loops = foreign_loops;
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = PROTOCOLS;
    info.timeout_secs = 30;
    ctx->lws = lws_create_context(&info);
    if (!ctx->lws) {
        free(ctx);
        return -1;
    }
    uv_timer_init(loop, &ctx->pump);
    ctx->pump.data = ctx;
    *out = ctx;
    return 0;
}

void wsc_ctx_set_port(struct wsc_ctx *ctx, int port)
{
    ctx->port = port;
}

size_t wsc_ctx_live(const struct wsc_ctx *ctx)
{
    return ctx->live;
}

void wsc_ctx_destroy(struct wsc_ctx *ctx)
{
    if (!ctx)
        return;
    ctx->destroying = 1;
    while (ctx->wait_head) {
        struct wsc *c = ctx->wait_head;
        ctx->wait_head = c->next;
        finish(c, -1);
    }
    uv_timer_stop(&ctx->pump);
    uv_close((uv_handle_t *)&ctx->pump, NULL);
    lws_context_destroy(ctx->lws);
    uv_run(ctx->loop, UV_RUN_DEFAULT);
    lws_context_destroy(ctx->lws);
    while (ctx->dead) {
        struct wsc *c = ctx->dead;
        ctx->dead = c->next;
        free_conn(c);
    }
    free(ctx);
}

struct wsc *wsc_connect(struct wsc_ctx *ctx, void *user, const char *room)
{
    struct wsc *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (room && *room)
        snprintf(c->path, sizeof c->path, "/r/%s/ws", room);
    else
        snprintf(c->path, sizeof c->path, "/ws");
    c->ctx = ctx;
    c->user = user;
    c->state = WSC_WAITING;
    if (ctx->wait_tail)
        ctx->wait_tail->next = c;
    else
        ctx->wait_head = c;
    ctx->wait_tail = c;
    schedule_pump(ctx);
    return c;
}

int wsc_send(struct wsc *c, char *buf, size_t len)
{
    if (!buf)
        return -1;
    if (c->state != WSC_OPEN || c->want_close) {
        free(buf);
        return -1;
    }
    struct wnode *q = malloc(sizeof *q);
    if (!q) {
        free(buf);
        return -1;
    }
    q->next = NULL;
    q->buf = buf;
    q->len = len;
    if (c->qtail)
        c->qtail->next = q;
    else
        c->qhead = q;
    c->qtail = q;
    c->qbytes += len;
    /* Nothing ahead of it and nothing unsent in lws: written now, without a
     * writable request (each is two epoll_ctl calls, as in the server). */
    if (c->qhead == q && !lws_partial_buffered(c->wsi)) {
        if (writeable(c, c->wsi) < 0) {
            c->write_failed = 1;
            lws_callback_on_writable(c->wsi);
        }
        return 0;
    }
    lws_callback_on_writable(c->wsi);
    return 0;
}

size_t wsc_queued(const struct wsc *c)
{
    return c->qbytes;
}

void wsc_set_reading(struct wsc *c, int on)
{
    if (c->state == WSC_OPEN && c->wsi)
        lws_rx_flow_control(c->wsi, on);
}

void wsc_close(struct wsc *c)
{
    if (c->state == WSC_CLOSED || c->want_close)
        return;
    c->want_close = 1;
    if (c->state == WSC_OPEN)
        lws_callback_on_writable(c->wsi);
}
