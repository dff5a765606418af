/* A WebSocket connection: its outgoing queue, its incoming reassembly
 * buffer, and which room and participant it is joined as.
 *
 * The outgoing queue holds references to shared frames. A connection that
 * gets frames during a loop turn is flagged, and at the end of the turn
 * (conn_flush) its queued frames are framed into one buffer and written with
 * one send, without waiting for a WRITEABLE callback; what the socket does not
 * take lws keeps and sends when it can, and the rest of the queue follows from
 * WRITEABLE. So a broadcast never waits on a slow reader, and a burst of
 * frames to one connection costs one system call. A connection whose queue stays over --max-queue
 * bytes for QUEUE_GRACE_MS, or passes four times that, is closed (status
 * 4001: rejoin with `since`) instead of growing. What a connection asked for
 * (the snapshot or the replay of its join: conn_send_answer) is not lag and
 * is not counted against that cap.
 *
 * Frames are written in slices of at most APP_WBUF bytes, each slice once
 * the socket has taken the one before: a large frame shared by many
 * connections (a snapshot) is never copied whole into lws' buffer of any of
 * them, so its memory is paid once however many receive it.
 *
 * A conn is reference-counted: held output (outbox.h) keeps a reference, so
 * the struct outlives its socket until the last reference is dropped. */
#ifndef REFINE_CONN_H
#define REFINE_CONN_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"
#include "msgq.h"

struct app;
struct room;
struct participant;
struct frame;

/* Why the server closes a WebSocket: the status code of its close frame.
 * Each has its reason text in conn.c's table (conn_close_reason). */
enum conn_close {
    CONN_CLOSE_GOING_AWAY = 1001, /* the server is shutting down */
    CONN_CLOSE_POLICY = 1008,     /* a flood of messages */
    CONN_CLOSE_TOO_BIG = 1009,    /* a message over --max-message */
    CONN_CLOSE_INTERNAL = 1011,   /* the server failed it (out of memory, storage): rejoin */
    CONN_CLOSE_SLOW = 4001,       /* its queue stayed over --max-queue: rejoin with since */
    CONN_CLOSE_IDLE = 4002,       /* no sign of life */
    CONN_CLOSE_MOVED = 4000,      /* the room moved to another instance (room.moved) */
};

/* The reason text of close code `code` ("" for a code of no table entry). */
const char *conn_close_reason(int code);

#define QUEUE_GRACE_MS 2000  /* how long a queue may stay over --max-queue */
#define IDLE_PING_MS   10000 /* a connection silent this long is pinged */
#define IDLE_DROP_MS   22000 /* and closed (4002) when silent this long; gone 3 s later */

/* What the connection is editing or dragging, for hint.h (zeroed: no hint,
 * a full allowance). CONN_HINT_ITEM is ITEM_ID_MAX (backlog.h; checked in hint.c). */
#define CONN_HINT_ITEM 16
struct conn_hint {
    char item[CONN_HINT_ITEM];
    uint8_t what;      /* enum hint_what; HINT_NONE: no hint, not on the list */
    double spent;      /* rate limit: hints sent, draining at HINT_RATE a second */
    uint64_t spent_at; /* uv_now() of the last drain */
    struct list link;  /* on room.hinting while what != HINT_NONE */
};

struct conn_qent {
    struct frame *f;
    bool answer; /* queued by conn_send_answer(): not counted against --max-queue */
};

struct conn {
    struct app *app;
    struct lws *wsi; /* NULL once the socket has closed */
    uint32_t refs;
    bool close_sent;   /* the close frame has been written */
    int close_code;    /* nonzero: close with this code at the next WRITEABLE */
    struct room *room; /* joined room, or NULL */
    struct participant *part;
    uint64_t join_serial; /* app->join_serial when it joined */
    uint64_t last_need;   /* what its last held message waited for (outbox.c) */
    struct conn_qent *q;  /* outgoing frames: a ring of qcap slots, qlen from qhead */
    uint32_t qcap, qhead, qlen;
    size_t qbytes;       /* bytes queued that count against --max-queue (answers do not) */
    size_t qoff;         /* wire bytes of the head frame already written */
    uint64_t over_since; /* uv_now() since qbytes went over --max-queue (0: under) */
    uint64_t alive_at;   /* uv_now() of the last message or pong from the peer */
    bool ping_due;       /* a ping goes out at the next WRITEABLE */
    bool ping_sent;      /* since alive_at */
    bool write_failed;   /* a direct write failed: WRITEABLE closes */
    struct list
        dirty_link;    /* on app->dirty while frames were queued this turn (holds a reference) */
    unsigned char *rx; /* reassembly of a fragmented message */
    size_t rxlen, rxcap;
    struct list room_link; /* on room.conns while joined */
    struct list all_link;  /* on app->conns while its socket is open */
    double tokens;         /* rate limit: token bucket of --rate per second */
    uint64_t tokens_at;    /* uv_now() of the last refill */
    uint32_t refused;      /* messages refused since refused_at */
    uint64_t refused_at;   /* uv_now() when that count started */
    char *peer;            /* client address, counted against --max-conns-per-ip */
    struct conn_hint hint; /* what it is editing or dragging (hint.h) */
    /* A join whose room is being loaded (dispatch.c): the join's message,
     * and what the connection sent since, handled in order once it is done. */
    struct msgq_entry *join_msg; /* non-NULL while the join waits */
    struct msgq held;
    /* Opened on /r/<room>/ws: that room, the only one it may join ("": opened
     * on /ws). ROOM_ID_MAX + 1 bytes (room.h; checked in net.c). */
    char bound_room[40];
    /* A connection without a socket (wsi NULL) hands its frames to sink
     * instead: in-process clients such as the unit tests. */
    void (*sink)(struct conn *c, struct frame *f);
    void *sink_arg;
};

/* Readies app's lists of connections (conns, dirty): once, before the first
 * conn_new(). */
void conn_lists_init(struct app *app);

/* The connection that list node `l` of app->conns is. */
#define conn_of_all(l) list_entry(l, struct conn, all_link)
/* The connection that list node `l` of room.conns is. */
#define conn_of_room(l) list_entry(l, struct conn, room_link)
/* The connection that list node `l` of room.hinting is. */
#define conn_of_hint(l) list_entry(l, struct conn, hint.link)

/* A new connection for wsi with one reference (the socket's), on app->conns. */
struct conn *conn_new(struct app *app, struct lws *wsi);
struct conn *conn_ref(struct conn *c);
/* Drops one reference; frees the conn (and its queue) on the last. NULL is a no-op. */
void conn_unref(struct conn *c);

/* Takes one message from the connection's token bucket: 0 when it may be
 * handled, RF_ERATE_LIMITED when it must be refused (and the connection is
 * being closed with 1008 when it keeps flooding). */
int conn_take_token(struct conn *c);

/* Queues f (borrowed: the queue takes its own reference) for sending. A
 * closed or closing connection drops it. */
void conn_send(struct conn *c, struct frame *f);
/* As conn_send(), for what the connection asked for (its join's snapshot or
 * replay): not lag, so never counted against --max-queue. */
void conn_send_answer(struct conn *c, struct frame *f);

/* End of a loop turn: writes what each connection given frames this turn
 * has queued (one send each, when lws holds nothing unsent for it). Also
 * called once at shutdown to drop the references the list holds. */
void conn_flush(struct app *app);

/* Asks lws to close the connection with a WebSocket status code once what is
 * already queued before it has been written (at once for CONN_CLOSE_TOO_BIG and CONN_CLOSE_SLOW).
 */
void conn_close(struct conn *c, int code);

/* The peer showed it is alive (a message or a pong). */
void conn_on_alive(struct conn *c);
/* Liveness, once a second for every connection: pings a connection silent
 * for IDLE_PING_MS and drops one silent for IDLE_DROP_MS. */
void conn_check_idle(struct conn *c, uint64_t now);

/* A complete message received: borrowed from lws or from the connection's
 * reassembly buffer until conn_rx_done(). */
struct conn_msg {
    const void *data; /* NULL: no complete message yet */
    size_t len;
    bool binary;
};

/* lws callbacks, called by net.c. */
/* RECEIVE: in[0..len) is reassembled; when it completes a message, msg holds
 * it (net.c hands it to dispatch_message(), then calls conn_rx_done()).
 * Returns 0, or RF_ETOO_LARGE for a message over --max-message: lws was given
 * the close frame (1009) and the callback must return -1. */
int conn_on_receive(struct conn *c, const void *in, size_t len, struct conn_msg *msg);
/* The message of conn_on_receive() has been handled: a large reassembly
 * buffer is not kept. */
void conn_rx_done(struct conn *c);
/* WRITEABLE: writes the next burst, a ping or the close frame. Returns 0, or
 * RF_EINTERNAL when the connection must close (a write failed). */
int conn_on_writeable(struct conn *c);
/* The socket is gone (net.c has taken it out of its room: presence_leave):
 * drops the queue and the socket's reference. */
void conn_on_closed(struct conn *c);

#endif
