/* Unit tests of the connection (conn.h) without a socket: in-process
 * connections (wsi NULL) hand their frames to a sink, with the real outbox
 * and a real store on a temporary SQLite file.
 * - Reference counting: held output keeps the conn alive after
 *   conn_on_closed, which takes it off app->conns; the last reference frees.
 * - The token bucket: a burst of 2 x --rate, refilled at --rate a second,
 *   never above the burst; refusals counted per second. Time is the loop's
 *   cached uv_now(), which only moves when the loop updates it: the tests
 *   backdate the bucket's own stamps (tokens_at, refused_at) by exact
 *   amounts, and one check lets real time pass (a timer, uv_run).
 * - The sink path bypasses the queue: nothing is queued or counted against
 *   --max-queue, nothing is flagged for conn_flush, and a conn without socket
 *   or sink drops what it is given. The queue's accounting, the slow-reader
 *   cap (4001) and the flood close (1008) act only on a connection with a
 *   socket (conn_send and conn_close return early without one), and so does
 *   reassembly (conn_on_receive asks lws about the frame it is reading):
 *   those are covered by the integration tests; only conn_rx_done's release
 *   of a large buffer is tested here.
 * - The close reasons table. */
#include "errors.h"
#include "fixture.h"

static int on_list(const struct list *h, const struct list *n)
{
    list_each(l, h) if (l == n) return 1;
    return 0;
}

/* Held output keeps the conn alive after its socket's reference is gone. */
static void test_refs(void)
{
    struct client *cl = client_new();
    struct conn *c = cl->c;
    CHECK(c->refs == 1 && on_list(&app.conns, &c->all_link));
    CHECK(conn_ref(c) == c && c->refs == 2);
    conn_unref(c);
    CHECK(c->refs == 1);
    conn_unref(NULL); /* a no-op */

    /* A message held for a change not yet committed holds a reference. */
    struct room *r = room_new(&app);
    snprintf(r->id, sizeof r->id, "R");
    CHECK(store_add_event(app.store, r->id, 1, 1000, "p1", "note", "\xa0", 1) == 0);
    r->records_upto = store_added(app.store);
    struct frame *f = frame_copy("held", 4);
    outbox_ack(&app, c, f, 1, r);
    CHECK(c->refs == 2 && f->refs == 2);
    conn_on_closed(c); /* the socket is gone: its reference too */
    CHECK(c->refs == 1 && !on_list(&app.conns, &c->all_link) && c->wsi == NULL);
    CHECK(cl->n == 0);
    /* The commit delivers it (to the sink: in-process) and drops the last
     * reference: ASan reports any use of c after this. */
    for (int i = 0; i < 100000 && store_durable(app.store) < r->records_upto; i++) {
        store_flush(app.store);
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK(cl->n == 1 && cl->msgs[0] == f && f->refs == 2);
    client_clear(cl);
    CHECK(f->refs == 1);
    frame_unref(f);
    room_unref(r);
    client_drop(cl);
}

static void timer_done(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* A bucket of 2 x rate, refilled at rate a second. */
static void test_tokens(void)
{
    app.cfg.rate = 10;
    uv_update_time(&loop);
    struct client *cl = client_new();
    struct conn *c = cl->c;
    uint64_t now = uv_now(&loop);
    CHECK(c->tokens_at == now);
    int taken = 0;
    while (taken < 100 && conn_take_token(c) == 0)
        taken++;
    CHECK(taken == 20); /* the burst: 2 x rate */
    CHECK(conn_take_token(c) == RF_ERATE_LIMITED);

    /* 300 ms later: 3 more. */
    c->tokens_at = now - 300;
    for (int i = 0; i < 3; i++)
        CHECK(conn_take_token(c) == 0);
    CHECK(conn_take_token(c) == RF_ERATE_LIMITED);
    /* A long silence refills the burst, not more. */
    c->tokens_at = now - 60000;
    taken = 0;
    while (taken < 1000 && conn_take_token(c) == 0)
        taken++;
    CHECK(taken == 20);

    /* Refusals are counted within a second, then start again. Without a
     * socket, conn_close is a no-op: the flood close (1008) needs one. */
    c->refused = 0;
    c->refused_at = now;
    for (int i = 0; i < 15; i++)
        CHECK(conn_take_token(c) == RF_ERATE_LIMITED);
    CHECK(c->refused == 15 && c->close_code == 0);
    c->refused_at = now - 1001;
    c->tokens_at = now; /* no refill */
    CHECK(conn_take_token(c) == RF_ERATE_LIMITED);
    CHECK(c->refused == 1 && c->refused_at == now);

    /* Real time: a 150 ms timer, then the loop's clock has moved and the
     * bucket has 1 to 2 tokens back (one per 100 ms at rate 10). */
    uv_timer_t t;
    int fired = 0;
    t.data = &fired;
    uv_timer_init(&loop, &t);
    uv_timer_start(&t, timer_done, 150, 0);
    while (!fired) /* the store's handle keeps the loop alive: one turn at a time */
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    CHECK(uv_now(&loop) >= now + 150);
    taken = 0;
    while (taken < 100 && conn_take_token(c) == 0)
        taken++;
    uint64_t waited = uv_now(&loop) - now;
    CHECK(taken >= 1 && (uint64_t)taken <= waited / 100 && taken <= 20);
    conn_on_closed(c);
    client_drop(cl);
}

/* Without a socket, frames go to the sink and never to the queue. */
static void test_sink_path(void)
{
    app.cfg.max_queue = 1000;
    struct client *cl = client_new();
    struct conn *c = cl->c;
    char big[800];
    memset(big, 'q', sizeof big);
    struct frame *f = frame_copy(big, sizeof big);
    for (int i = 0; i < 10; i++) /* 8 x --max-queue */
        conn_send(c, f);
    conn_send_answer(c, f);
    CHECK(cl->n == 11 && f->refs == 12);
    CHECK(c->qlen == 0 && c->qbytes == 0 && c->over_since == 0 && c->close_code == 0);
    CHECK(list_empty(&app.dirty) && list_empty(&c->dirty_link));
    conn_flush(&app); /* nothing to write */
    CHECK(c->refs == 1);
    /* conn_close and conn_check_idle need a socket: no-ops. */
    conn_close(c, CONN_CLOSE_SLOW);
    conn_check_idle(c, uv_now(&loop) + IDLE_DROP_MS + 1);
    CHECK(c->close_code == 0 && !c->ping_due);
    client_clear(cl);

    /* No socket and no sink: a closed connection drops what it is given,
     * keeping no reference. */
    c->sink = NULL;
    conn_send(c, f);
    conn_send_answer(c, f);
    CHECK(cl->n == 0 && f->refs == 1 && c->qlen == 0 && list_empty(&app.dirty));
    frame_unref(f);
    conn_on_closed(c);
    client_drop(cl);
}

/* conn_rx_done does not keep a large reassembly buffer. */
static void test_rx_done(void)
{
    struct client *cl = client_new();
    struct conn *c = cl->c;
    c->rx = malloc(4096);
    c->rxcap = 4096;
    conn_rx_done(c);
    CHECK(c->rx != NULL && c->rxcap == 4096);
    free(c->rx);
    c->rx = malloc(65537);
    c->rxcap = 65537;
    conn_rx_done(c);
    CHECK(c->rx == NULL && c->rxcap == 0);
    c->rx = malloc(100); /* conn_unref frees what it holds */
    c->rxcap = 100;
    conn_on_closed(c);
    client_drop(cl);
}

static void test_close_reasons(void)
{
    static const struct {
        int code;
        const char *reason;
    } want[] = {
        {CONN_CLOSE_GOING_AWAY, "server shutting down"},
        {CONN_CLOSE_POLICY, "too many messages"},
        {CONN_CLOSE_TOO_BIG, "message too big"},
        {CONN_CLOSE_INTERNAL, "server error: rejoin"},
        {CONN_CLOSE_SLOW, "too slow: rejoin"},
        {CONN_CLOSE_IDLE, "no sign of life: rejoin"},
        {CONN_CLOSE_MOVED, "moved"},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *r = conn_close_reason(want[i].code);
        CHECK(strcmp(r, want[i].reason) == 0);
        CHECK(strlen(r) <= 62); /* conn_on_writeable's buffer: 64 bytes with the code */
    }
    CHECK(CONN_CLOSE_GOING_AWAY == 1001 && CONN_CLOSE_POLICY == 1008 &&
          CONN_CLOSE_TOO_BIG == 1009 && CONN_CLOSE_INTERNAL == 1011 && CONN_CLOSE_SLOW == 4001 &&
          CONN_CLOSE_IDLE == 4002 && CONN_CLOSE_MOVED == 4000);
    CHECK(strcmp(conn_close_reason(1000), "") == 0);
    CHECK(strcmp(conn_close_reason(0), "") == 0);
    CHECK(strcmp(conn_close_reason(4003), "") == 0);
}

int main(void)
{
    if (fixture_start(0))
        return 1;
    test_refs();
    test_tokens();
    test_sink_path();
    test_rx_done();
    test_close_reasons();
    CHECK(list_empty(&app.conns));
    fixture_stop();
    fixture_done();
    return check_summary("test_conn");
}
