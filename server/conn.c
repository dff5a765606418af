#include "conn.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "errors.h"
#include "frame.h"
#include "log.h"
#include "metrics.h"

/* The reason text of each close code (at most 62 bytes: a close frame's
 * payload is 125 bytes, and conn_on_writeable's buffer 64). */
static const struct {
    int code;
    const char *reason;
} CLOSE_REASONS[] = {
    {CONN_CLOSE_GOING_AWAY, "server shutting down"},
    {CONN_CLOSE_POLICY, "too many messages"},
    {CONN_CLOSE_TOO_BIG, "message too big"},
    {CONN_CLOSE_INTERNAL, "server error: rejoin"},
    {CONN_CLOSE_SLOW, "too slow: rejoin"},
    {CONN_CLOSE_IDLE, "no sign of life: rejoin"},
    {CONN_CLOSE_MOVED, "moved"},
};

const char *conn_close_reason(int code)
{
    for (size_t i = 0; i < sizeof CLOSE_REASONS / sizeof CLOSE_REASONS[0]; i++)
        if (CLOSE_REASONS[i].code == code)
            return CLOSE_REASONS[i].reason;
    return "";
}

void conn_lists_init(struct app *app)
{
    list_init(&app->conns);
    list_init(&app->dirty);
}

struct conn *conn_new(struct app *app, struct lws *wsi)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->app = app;
    c->wsi = wsi;
    c->refs = 1;
    c->tokens = 2.0 * (double)app->cfg.rate;
    c->tokens_at = app->loop ? uv_now(app->loop) : 0;
    c->alive_at = c->tokens_at;
    list_init(&c->dirty_link);
    list_init(&c->room_link);
    list_init(&c->hint.link);
    msgq_init(&c->held);
    list_push(&app->conns, &c->all_link);
    app->metrics.connections++;
    return c;
}

struct conn *conn_ref(struct conn *c)
{
    c->refs++;
    return c;
}

/* Drops the queued frames. A frame partly written to a live socket stays,
 * so that what follows it on the wire (a close frame) is not read as its
 * payload. */
static void queue_clear(struct conn *c)
{
    uint32_t keep = c->wsi && !c->write_failed && c->qoff && c->qlen ? 1 : 0;
    for (uint32_t i = keep; i < c->qlen; i++)
        frame_unref(c->q[(c->qhead + i) % c->qcap].f);
    c->qlen = keep;
    c->app->metrics.queued_bytes -= c->qbytes;
    c->qbytes = keep && !c->q[c->qhead].answer ? c->q[c->qhead].f->len : 0;
    c->app->metrics.queued_bytes += c->qbytes;
    if (!keep)
        c->qhead = c->qoff = 0;
}

/* Room for one more frame in the ring (no allocation while it has room). */
static int queue_reserve(struct conn *c)
{
    if (c->qlen < c->qcap)
        return 0;
    uint32_t cap = c->qcap ? c->qcap * 2 : 8;
    struct conn_qent *q = malloc(cap * sizeof *q);
    if (!q)
        return RF_ENOMEM;
    for (uint32_t i = 0; i < c->qlen; i++)
        q[i] = c->q[(c->qhead + i) % c->qcap];
    free(c->q);
    c->q = q;
    c->qcap = cap;
    c->qhead = 0;
    return 0;
}

void conn_unref(struct conn *c)
{
    if (!c || --c->refs > 0)
        return;
    c->wsi = NULL;
    queue_clear(c);
    free(c->q);
    free(c->join_msg);
    msgq_clear(&c->held);
    free(c->rx);
    free(c->peer);
    free(c);
}

int conn_take_token(struct conn *c)
{
    double rate = (double)c->app->cfg.rate, burst = 2 * rate;
    uint64_t now = uv_now(c->app->loop);
    c->tokens += (double)(now - c->tokens_at) * rate / 1000.0;
    if (c->tokens > burst)
        c->tokens = burst;
    c->tokens_at = now;
    if (c->tokens >= 1.0) {
        c->tokens -= 1.0;
        return 0;
    }
    /* More than a second's worth refused within a second: a flood. */
    if (now - c->refused_at > 1000) {
        c->refused_at = now;
        c->refused = 0;
    }
    if (++c->refused > c->app->cfg.rate) {
        log_info("closing a connection that keeps flooding (%u messages refused within a second)",
                 c->refused);
        conn_close(c, CONN_CLOSE_POLICY);
    }
    return RF_ERATE_LIMITED;
}

/* Appends f to the queue (taking a reference) and flags the connection for
 * conn_flush; a failure to grow the queue closes it. */
static void queue_push(struct conn *c, struct frame *f, bool answer)
{
    if (queue_reserve(c)) {
        conn_close(c, CONN_CLOSE_INTERNAL);
        return;
    }
    c->q[(c->qhead + c->qlen++) % c->qcap] = (struct conn_qent){frame_ref(f), answer};
    if (!answer)
        c->qbytes += f->len;
    c->app->metrics.queued_bytes += answer ? 0 : f->len;
    if (list_empty(&c->dirty_link)) /* written at the end of the turn (conn_flush) */
        list_push(&c->app->dirty, &conn_ref(c)->dirty_link);
}

void conn_send(struct conn *c, struct frame *f)
{
    if (!c->wsi && c->sink && !c->close_code) {
        c->sink(c, f);
        return;
    }
    if (!c->wsi || c->close_code)
        return;
    /* A reader that stays behind: over the cap for QUEUE_GRACE_MS, or four
     * times over it at once. A burst that a healthy reader drains at once is
     * not closed. */
    size_t cap = c->app->cfg.max_queue, after = c->qbytes + f->len;
    if (after > cap) {
        uint64_t now = uv_now(c->app->loop);
        c->app->metrics.slow_readers += !c->over_since; /* over from now on */
        if (!c->over_since)
            c->over_since = now;
        if (after > 4 * cap || now - c->over_since > QUEUE_GRACE_MS) {
            log_info("closing a connection whose outgoing queue stayed over %zu bytes", cap);
            c->app->metrics.slow_drops++;
            queue_clear(c);
            conn_close(c, CONN_CLOSE_SLOW);
            return;
        }
    }
    queue_push(c, f, false);
}

void conn_send_answer(struct conn *c, struct frame *f)
{
    if (!c->wsi && c->sink && !c->close_code) {
        c->sink(c, f);
        return;
    }
    if (!c->wsi || c->close_code)
        return;
    queue_push(c, f, true);
}

static void queue_pop(struct conn *c)
{
    struct conn_qent e = c->q[c->qhead];
    c->qhead = (c->qhead + 1) % c->qcap;
    c->qlen--;
    c->qoff = 0;
    if (!e.answer)
        c->qbytes -= e.f->len;
    c->app->metrics.queued_bytes -= e.answer ? 0 : e.f->len;
    if (c->qbytes <= c->app->cfg.max_queue) {
        c->app->metrics.slow_readers -= c->over_since != 0; /* under again */
        c->over_since = 0;
    }
    frame_unref(e.f);
}

/* One write of the queued frames: the next APP_WBUF bytes of the queue (whole
 * frames, each already carrying its header, then the start of the next one)
 * copied into app->wbuf; a frame larger than that goes out a slice per
 * write. So lws, which keeps what the socket does not take (and asks for
 * WRITEABLE itself), never holds more than one slice of a connection's
 * output: a large frame shared by many connections stays in one copy. When
 * frames remain and lws holds nothing, a WRITEABLE is requested for them.
 * Returns 0, or RF_EINTERNAL when lws_write fails (the socket is gone). */
static int write_burst(struct conn *c)
{
    unsigned char *buf = c->app->wbuf + LWS_PRE;
    size_t n = 0;
    while (c->qlen && n < APP_WBUF) {
        const struct frame *f = c->q[c->qhead].f;
        size_t wire = f->hlen + f->len, k = wire - c->qoff;
        if (k > APP_WBUF - n)
            k = APP_WBUF - n;
        memcpy(buf + n, frame_wire(f) + c->qoff, k);
        n += k;
        c->qoff += k;
        if (c->qoff == wire)
            queue_pop(c);
    }
    if (n && lws_write(c->wsi, buf, n, LWS_WRITE_RAW) < 0)
        return RF_EINTERNAL;
    if ((c->qlen || c->close_code) && !lws_partial_buffered(c->wsi))
        lws_callback_on_writable(c->wsi);
    return 0;
}

void conn_flush(struct app *app)
{
    while (!list_empty(&app->dirty)) {
        struct conn *c = list_entry(app->dirty.next, struct conn, dirty_link);
        list_remove(&c->dirty_link);
        /* With lws still holding unsent bytes, WRITEABLE continues. */
        if (c->wsi && c->qlen && !c->close_sent && !c->write_failed &&
            !lws_partial_buffered(c->wsi) && write_burst(c)) {
            /* Not inside an lws callback: let WRITEABLE report it. */
            c->write_failed = true;
            queue_clear(c);
            lws_callback_on_writable(c->wsi);
        }
        conn_unref(c);
    }
}

void conn_close(struct conn *c, int code)
{
    if (!c->wsi || c->close_code)
        return;
    c->close_code = code;
    c->app->metrics.slow_readers -= c->over_since != 0; /* closing: no longer counted */
    c->over_since = 0;
    if (code == CONN_CLOSE_TOO_BIG || code == CONN_CLOSE_SLOW)
        queue_clear(c);
    /* If the peer does not read, the close frame cannot go out either: lws
     * drops the socket after this long whatever happens. */
    lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_SEND, code == CONN_CLOSE_GOING_AWAY ? 5 : 3);
    lws_callback_on_writable(c->wsi);
}

void conn_on_alive(struct conn *c)
{
    c->alive_at = uv_now(c->app->loop);
    c->ping_sent = false;
}

void conn_check_idle(struct conn *c, uint64_t now)
{
    if (!c->wsi || c->close_code)
        return;
    if (now - c->alive_at >= IDLE_DROP_MS) {
        log_info("dropping a connection silent for %llu s",
                 (unsigned long long)((now - c->alive_at) / 1000));
        conn_close(c, CONN_CLOSE_IDLE); /* and lws drops it 3 s later if it cannot be sent */
    } else if (now - c->alive_at >= IDLE_PING_MS && !c->ping_sent) {
        c->ping_due = true;
        lws_callback_on_writable(c->wsi);
    }
}

int conn_on_writeable(struct conn *c)
{
    if (c->write_failed)
        return RF_EINTERNAL;
    if (c->close_sent)
        return 0;
    /* A ping goes between frames, never inside one written in slices. */
    if (c->ping_due && !c->close_code && !c->qoff) {
        /* With a payload: lws 4.1.6 gives no RECEIVE_PONG for an empty pong. */
        unsigned char ping[LWS_PRE + 4] = {[LWS_PRE] = 'r', 'f', 'n', 'p'};
        c->ping_due = false;
        c->ping_sent = true;
        if (lws_write(c->wsi, ping + LWS_PRE, 4, LWS_WRITE_PING) < 0)
            return RF_EINTERNAL;
        if (c->qlen)
            lws_callback_on_writable(c->wsi);
        return 0;
    }
    if (!c->qlen) {
        if (c->close_code) {
            /* lws 4.1.6 on libuv drops the socket without a close frame
             * when WRITEABLE returns -1 after lws_close_reason() (RECEIVE
             * is fine), so the close frame is written here: opcode 4 is
             * lws' internal LWS_WRITE_CLOSE, the one lws_close_reason()
             * uses. lws completes the handshake when the peer answers; the
             * timeout drops a peer that does not. */
            unsigned char buf[LWS_PRE + 64];
            const char *reason = conn_close_reason(c->close_code);
            size_t n = strlen(reason);
            buf[LWS_PRE] = (unsigned char)(c->close_code >> 8);
            buf[LWS_PRE + 1] = (unsigned char)(c->close_code & 0xff);
            memcpy(buf + LWS_PRE + 2, reason, n);
            log_debug("closing a connection with status %d", c->close_code);
            c->close_sent = true;
            if (lws_write(c->wsi, buf + LWS_PRE, n + 2, (enum lws_write_protocol)4) < 0)
                return RF_EINTERNAL;
            lws_set_timeout(c->wsi, PENDING_TIMEOUT_CLOSE_ACK, 3);
            return 0;
        }
        return 0;
    }
    return write_burst(c);
}

int conn_on_receive(struct conn *c, const void *in, size_t len, struct conn_msg *msg)
{
    struct lws *wsi = c->wsi;
    conn_on_alive(c);
    int first = lws_is_first_fragment(wsi);
    int last = lws_is_final_fragment(wsi) && lws_remaining_packet_payload(wsi) == 0;
    bool binary = lws_frame_is_binary(wsi);
    size_t max = c->app->cfg.max_message;

    *msg = (struct conn_msg){NULL, 0, binary};
    if (first && c->rxlen == 0 && last) {
        if (len > max)
            goto too_big;
        msg->data = in;
        msg->len = len;
        return 0;
    }
    /* The rest of a message too large is refused before it is buffered,
     * and so is what is announced: lws_remaining_packet_payload counts the
     * bytes of this frame still to come. */
    if (c->rxlen + len + lws_remaining_packet_payload(wsi) > max)
        goto too_big;
    if (c->rxlen + len > c->rxcap) {
        size_t cap = c->rxcap ? c->rxcap : 4096;
        while (cap < c->rxlen + len)
            cap *= 2;
        unsigned char *rx = realloc(c->rx, cap);
        if (!rx)
            goto too_big;
        c->rx = rx;
        c->rxcap = cap;
    }
    memcpy(c->rx + c->rxlen, in, len);
    c->rxlen += len;
    if (last) {
        msg->data = c->rx;
        msg->len = c->rxlen;
        c->rxlen = 0;
    }
    return 0;

too_big:
    log_info("closing a connection that sent a message over %zu bytes", max);
    c->rxlen = 0;
    queue_clear(c);
    c->close_code = CONN_CLOSE_TOO_BIG;
    lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE,
                     (unsigned char *)conn_close_reason(CONN_CLOSE_TOO_BIG),
                     strlen(conn_close_reason(CONN_CLOSE_TOO_BIG)));
    return RF_ETOO_LARGE;
}

void conn_rx_done(struct conn *c)
{
    if (c->rxcap > 65536) { /* do not keep a large buffer for an idle connection */
        free(c->rx);
        c->rx = NULL;
        c->rxcap = 0;
    }
}

void conn_on_closed(struct conn *c)
{
    c->wsi = NULL;
    queue_clear(c);
    list_remove(&c->all_link);
    c->app->metrics.connections--;
    c->app->metrics.slow_readers -= c->over_since != 0; /* gone: no longer a reader */
    c->over_since = 0;
    conn_unref(c);
}
