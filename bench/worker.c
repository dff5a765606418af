/* The worker: rooms of clients that speak the Refine protocol through the
 * protocol library (codec.h), and the measurements.
 *
 * Fan-out latency: every change is sent with a request id; its send time
 * (CLOCK_MONOTONIC, taken when the change is made) is kept per (client,
 * id). The author's ok carries the seq of the event the change produced; each
 * room keeps a ring of seq slots that count how many of its reading members
 * have received that event and when the last one did. A change's latency is
 * the time from its send to the moment the last reading member of the room
 * has its event: known once both the ok and every member's copy are in. */
#include "worker.h"

#include <errno.h>
#include <stdarg.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "codec.h"
#include "hist.h"
#include "wsclient.h"

enum kind {
    K_NONE,
    K_CREATE,       /* room.create of a room we join */
    K_CREATE_EXTRA, /* cold: a stored room nobody joins */
    K_JOIN,
    K_ADD,
    K_START,  /* round.start */
    K_CHANGE, /* a measured change: move, edit or vote */
    K_VOTE,   /* big-room vote */
    K_REVEAL, /* big-room reveal */
    K_FILL,   /* cold: an edit that fills the history */
};

#define JOIN_WINDOW 64

enum role { R_FACILITATOR, R_OWNER, R_MEMBER, R_OBSERVER };
static const char *const ROLE_KEYS[] = {"facilitator", "owner", "member", "observer"};

static const char *const CARDS[] = {"0", "1", "2", "3", "5", "8", "13", "21", "34", "55", "89"};
#define NCARDS (sizeof CARDS / sizeof CARDS[0])

static const char *const ERR_CODES[] = {"bad_request",  "unknown_op", "not_joined", "auth_failed",
                                        "forbidden",    "not_found",  "conflict",   "too_large",
                                        "rate_limited", "room_full",  "internal",   "other"};
#define NERR (sizeof ERR_CODES / sizeof ERR_CODES[0])

struct pend {
    uint64_t id;
    uint64_t t_sent;
    uint8_t kind;
    uint8_t measured;
    uint8_t used;
};

struct slot {
    uint64_t seq, t_sent, t_last;
    uint32_t count;
    uint8_t kind, measured, acked, done;
};

struct worker;
struct room;

struct client {
    struct worker *w;
    struct room *room;
    struct wsc *ws;
    size_t idx;
    int role;
    int open, have_snapshot, slow, closed, expect_close, probe;
    int cold_probe; /* meetings-cold: joins a cold room, times it, leaves */
    uint64_t next_id, last_seq;
    struct pend *pend;
    size_t pcap, inflight;
    uv_timer_t timer;
    uint64_t t_join; /* probe: when its join was sent */
};

enum room_state { RS_NEW, RS_CREATING, RS_JOINING, RS_ITEMS, RS_ROUND, RS_MEMBERS, RS_READY };

struct room {
    struct worker *w;
    size_t index;
    enum room_state state;
    char id[48];
    char tok[4][40];
    struct client **m;
    size_t n, joined, reading, next_member;
    size_t lost; /* members whose connection closed during setup */
    char (*items)[16];
    size_t nitems, items_wanted, items_sent;
    char round[24];
    int want_round;
    uint64_t seq; /* the highest seq the facilitator has seen */
    int cold;     /* meetings-cold: a big room built to be joined cold */
    struct slot *ring;
    uint64_t mask;
};

struct worker {
    struct bench_cfg cfg;
    int index, nworkers;
    uv_loop_t loop;
    struct wsc_ctx *ws;
    msgpack_zone zone;
    uv_pipe_t cmd;
    int cmd_open;
    char cmdbuf[512];
    size_t cmdlen;
    int out_fd;
    uint64_t rng;

    struct room *rooms;
    size_t nrooms, ready_rooms;
    struct client **clients;
    size_t nclients, ncap;
    uint64_t t_setup;
    int setting_up, failed, quitting;
    uint64_t setup_disconnects;
    uint64_t last_rx;

    /* the current step */
    int measuring, running;
    double rate;
    uint64_t t_step;
    double step_secs;
    uv_timer_t step_timer, drain_timer;
    int timers_init;
    uint64_t drain_deadline;
    uint64_t changes, deliveries, notices, err_replies, err_by[NERR], disconnects, seq_gaps,
        incomplete, slow_closed, skipped, overrun, inflight_total, pending_lat;
    struct hist lat, ack, aux;

    /* big-room */
    size_t br_repeats, br_done, br_votes_left;
    uint64_t t_built;
    /* cold */
    uint64_t fill_target, extra_left, extra_inflight;
    size_t fillers;
    struct client *probe;
    double cold_ms, warm_ms;
    size_t snapshot_bytes;
    int probe_round;
    /* meetings-cold */
    struct room *cold;
    size_t ncold, cold_ready, cold_next;
    uv_timer_t cold_timer;
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t rnd(struct worker *w)
{
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return w->rng = x;
}

static void out_line(struct worker *w, const char *s, size_t n)
{
    while (n) {
        ssize_t k = write(w->out_fd, s, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return;
        s += k;
        n -= (size_t)k;
    }
}

static void fail(struct worker *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(struct worker *w, const char *fmt, ...)
{
    char msg[300], line[400];
    va_list ap;
    if (w->failed)
        return;
    w->failed = 1;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20)
            *p = '\'';
    int n = snprintf(line, sizeof line, "{\"ev\":\"fail\",\"worker\":%d,\"msg\":\"%s\"}\n",
                     w->index, msg);
    out_line(w, line, (size_t)n);
}

static size_t next_pow2(size_t v)
{
    size_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

static int str_to(const msgpack_object *o, char *dst, size_t cap)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || o->via.str.size >= cap)
        return -1;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = 0;
    return 0;
}

/* ---- sending ------------------------------------------------------------ */

struct msg {
    struct codec_buf b;
    msgpack_packer pk;
    uint64_t id;
};

/* Starts {t, id, + nfields more}. */
static void msg_begin(struct client *c, struct msg *m, const char *t, size_t nfields)
{
    codec_buf_init(&m->b, WSC_HEAD);
    codec_packer_init(&m->pk, &m->b);
    m->id = ++c->next_id;
    msgpack_pack_map(&m->pk, (uint32_t)(nfields + 2));
    codec_pack_kv_str(&m->pk, "t", t);
    codec_pack_kv_u64(&m->pk, "id", m->id);
}

/* Registers the request and queues it. 0, or -1 (not sent). */
static int msg_send(struct client *c, struct msg *m, enum kind kind, int measured, uint64_t t)
{
    struct worker *w = c->w;
    struct pend *p = &c->pend[m->id & (c->pcap - 1)];
    if (p->used || !c->ws || !c->open) {
        codec_buf_free(&m->b);
        return -1;
    }
    size_t len;
    char *buf = codec_buf_take(&m->b, &len);
    if (!buf || wsc_send(c->ws, buf, len - WSC_HEAD))
        return -1;
    p->id = m->id;
    p->t_sent = t;
    p->kind = (uint8_t)kind;
    p->measured = (uint8_t)measured;
    p->used = 1;
    c->inflight++;
    w->inflight_total++;
    if (measured)
        w->pending_lat++;
    return 0;
}

static int can_send(const struct client *c)
{
    return c->ws && c->open && c->inflight + 1 < c->pcap &&
           !c->pend[(c->next_id + 1) & (c->pcap - 1)].used;
}

/* ---- rooms: setup ------------------------------------------------------- */

static void room_progress(struct room *r);
static void bigroom_next(struct worker *w);
static void cold_progress(struct worker *w);
static void cold_rooms_progress(struct worker *w);
static void report_ready(struct worker *w);

static void send_create(struct client *c, enum kind kind)
{
    struct msg m;
    char name[48];
    snprintf(name, sizeof name, "bench room %d.%zu", c->w->index, c->room ? c->room->index : 0);
    msg_begin(c, &m, "room.create", 1);
    codec_pack_kv_str(&m.pk, "name", name);
    msg_send(c, &m, kind, 0, now_us());
}

static void send_join(struct client *c)
{
    struct room *r = c->room;
    struct msg m;
    char name[48];
    snprintf(name, sizeof name, "p%d.%zu.%zu", c->w->index, r->index, c->idx);
    msg_begin(c, &m, "join", 3);
    codec_pack_kv_str(&m.pk, "room", r->id);
    codec_pack_kv_str(&m.pk, "token", r->tok[c->role]);
    codec_pack_kv_str(&m.pk, "name", name);
    c->t_join = now_us();
    msg_send(c, &m, K_JOIN, 0, c->t_join);
}

static void send_add(struct client *c)
{
    struct room *r = c->room;
    struct msg m;
    char title[96];
    snprintf(title, sizeof title, "Story %zu: as a buyer I want to pay with a saved card",
             r->items_sent + 1);
    msg_begin(c, &m, "item.add", 1);
    codec_pack_str(&m.pk, "item");
    msgpack_pack_map(&m.pk, 3);
    codec_pack_kv_str(&m.pk, "title", title);
    codec_pack_kv_str(&m.pk, "persona", "returning buyer");
    codec_pack_kv_str(&m.pk, "goal", "pay with my saved card");
    if (msg_send(c, &m, K_ADD, 0, now_us()) == 0)
        r->items_sent++;
}

static void send_round_start(struct client *c, enum kind kind, int measured)
{
    struct msg m;
    msg_begin(c, &m, "round.start", 1);
    codec_pack_kv_str(&m.pk, "item", c->room->items[0]);
    msg_send(c, &m, kind, measured, now_us());
}

/* A room known by its id is opened on its own URL (/r/<id>/ws, so --target may
 * be a balancer); the facilitator who is to create it opens /ws and joins on
 * the same connection. */
static void client_connect(struct client *c)
{
    c->ws = wsc_connect(c->w->ws, c, c->room ? c->room->id : NULL);
    if (!c->ws)
        fail(c->w, "out of memory opening a connection");
}

/* Moves a room's setup along: create, join, items, round, members. */
static void room_progress(struct room *r)
{
    struct worker *w = r->w;
    struct client *f = r->m[0];
    if (w->failed)
        return;
    switch (r->state) {
    case RS_NEW:
        r->state = RS_CREATING;
        client_connect(f);
        return;
    case RS_CREATING: /* the facilitator's connection opened */
        send_create(f, K_CREATE);
        return;
    case RS_JOINING: /* tokens in hand */
        send_join(f);
        r->state = RS_ITEMS;
        return;
    case RS_ITEMS:
        if (!f->have_snapshot)
            return;
        while (r->items_sent < r->items_wanted && can_send(f) && f->inflight < 64)
            send_add(f);
        if (r->nitems < r->items_wanted)
            return;
        r->state = RS_ROUND;
        if (r->want_round) {
            send_round_start(f, K_START, 0);
            return;
        }
        /* fall through */
    case RS_ROUND:
        if (r->want_round && !r->round[0])
            return;
        r->state = RS_MEMBERS;
        r->next_member = 1;
        /* fall through */
    case RS_MEMBERS:
        /* At most JOIN_WINDOW members joining at once: each join sends a
         * notice to every member already in, so a big room's joins are
         * paced by how fast everyone takes them in. */
        while (r->next_member < r->n && r->next_member - r->joined - r->lost < JOIN_WINDOW)
            client_connect(r->m[r->next_member++]);
        if (r->joined + r->lost < r->n)
            return;
        r->state = RS_READY;
        if (r->cold) {
            w->cold_ready++;
            cold_rooms_progress(w);
            return;
        }
        w->ready_rooms++;
        if (w->cfg.scenario == SC_COLD)
            cold_progress(w);
        else if (w->ready_rooms == w->nrooms)
            report_ready(w);
        return;
    case RS_READY:
        return;
    }
}

/* ---- latency tracking --------------------------------------------------- */

static struct slot *slot_for(struct room *r, uint64_t seq)
{
    struct slot *s = &r->ring[seq & r->mask];
    if (s->seq != seq) {
        if (s->seq && s->acked && !s->done && s->seq < seq)
            r->w->overrun++;
        memset(s, 0, sizeof *s);
        s->seq = seq;
    }
    return s;
}

static void complete(struct room *r, struct slot *s)
{
    struct worker *w = r->w;
    uint64_t lat = s->t_last > s->t_sent ? s->t_last - s->t_sent : 0;
    s->done = 1;
    if (s->measured) {
        w->pending_lat--;
        if (s->kind == K_START || s->kind == K_VOTE)
            hist_record(&w->aux, lat);
        else
            hist_record(&w->lat, lat);
    }
    if (w->cfg.scenario == SC_BIG_ROOM && w->running) {
        if (s->kind == K_START) {
            /* Everyone has the round: the voters vote. */
            w->br_votes_left = 0;
            for (size_t i = 0; i < r->n; i++) {
                struct client *c = r->m[i];
                if (c->role == R_OBSERVER || c->closed)
                    continue;
                struct msg m;
                msg_begin(c, &m, "vote", 2);
                codec_pack_kv_str(&m.pk, "round", r->round);
                codec_pack_kv_str(&m.pk, "card", CARDS[rnd(w) % NCARDS]);
                if (msg_send(c, &m, K_VOTE, 1, now_us()) == 0)
                    w->br_votes_left++;
            }
        } else if (s->kind == K_VOTE) {
            if (w->br_votes_left && --w->br_votes_left == 0) {
                struct msg m;
                struct client *f = r->m[0];
                msg_begin(f, &m, "round.reveal", 1);
                codec_pack_kv_str(&m.pk, "round", r->round);
                msg_send(f, &m, K_REVEAL, 1, now_us());
            }
        } else if (s->kind == K_REVEAL) {
            w->br_done++;
            bigroom_next(w);
        }
    }
}

static void track_event(struct room *r, uint64_t seq, uint64_t now)
{
    struct slot *s = slot_for(r, seq);
    s->count++;
    s->t_last = now;
    if (s->acked && !s->done && s->count >= r->reading)
        complete(r, s);
}

static void track_ack(struct room *r, uint64_t seq, const struct pend *p)
{
    struct slot *s = slot_for(r, seq);
    s->acked = 1;
    s->t_sent = p->t_sent;
    s->kind = p->kind;
    s->measured = p->measured;
    if (s->count >= r->reading)
        complete(r, s);
}

/* ---- the changes of a meeting ------------------------------------------- */

#define SOAK_NOTES 1800

/* One change: a move, an edit or a vote, at random among what the client's
 * role may do (a member does not move). */
static void send_change(struct client *c, int measured)
{
    struct worker *w = c->w;
    struct room *r = c->room;
    struct msg m;
    if (!can_send(c)) {
        if (measured)
            w->skipped++;
        return;
    }
    uint64_t t = now_us();
    size_t a = (size_t)(rnd(w) % r->nitems);
    int kind = w->cfg.scenario == SC_PERSIST || w->cfg.scenario == SC_SOAK ? 1 : (int)(rnd(w) % 3);
    if (kind == 0 && (c->role == R_MEMBER || r->nitems < 2))
        kind = 1;
    if (kind == 2 && !r->round[0])
        kind = 1;
    if (kind == 0) {
        size_t b = (size_t)(rnd(w) % (r->nitems + 1)); /* nitems: to the top */
        if (b == a)
            b = r->nitems;
        msg_begin(c, &m, "item.move", 2);
        codec_pack_kv_str(&m.pk, "item", r->items[a]);
        if (b == r->nitems)
            codec_pack_kv_nil(&m.pk, "after");
        else
            codec_pack_kv_str(&m.pk, "after", r->items[b]);
    } else if (kind == 1) {
        char notes[SOAK_NOTES + 1];
        int n = snprintf(notes, sizeof notes, "edited by %zu, change %llu", c->idx,
                         (unsigned long long)c->next_id + 1);
        if (w->cfg.scenario == SC_SOAK && n > 0) { /* a note of SOAK_NOTES bytes */
            memset(notes + n, '.', SOAK_NOTES - (size_t)n);
            notes[SOAK_NOTES] = '\0';
        }
        msg_begin(c, &m, "item.update", 2);
        codec_pack_kv_str(&m.pk, "item", r->items[a]);
        codec_pack_str(&m.pk, "set");
        msgpack_pack_map(&m.pk, 1);
        codec_pack_kv_str(&m.pk, "notes", notes);
    } else {
        msg_begin(c, &m, "vote", 2);
        codec_pack_kv_str(&m.pk, "round", r->round);
        codec_pack_kv_str(&m.pk, "card", CARDS[rnd(w) % NCARDS]);
    }
    msg_send(c, &m, K_CHANGE, measured, t);
}

static void on_client_timer(uv_timer_t *t)
{
    struct client *c = t->data;
    if (c->w->running && !c->slow && !c->closed)
        send_change(c, c->w->measuring);
}

/* ---- receiving ---------------------------------------------------------- */

static int err_index(const msgpack_object *code)
{
    for (size_t i = 0; i + 1 < NERR; i++)
        if (codec_str_eq(code, ERR_CODES[i]))
            return (int)i;
    return (int)NERR - 1;
}

static void on_ok(struct client *c, const msgpack_object *o, struct pend *p, uint64_t now)
{
    struct worker *w = c->w;
    struct room *r = c->room;
    uint64_t seq = 0;
    int has_seq = codec_get_uint(o, "seq", &seq);
    if (p->measured)
        hist_record(&w->ack, now - p->t_sent);
    switch ((enum kind)p->kind) {
    case K_CREATE:
        if (str_to(codec_get(o, "room"), r->id, sizeof r->id)) {
            fail(w, "room.create's ok has no room id");
            return;
        }
        for (int i = 0; i < 4; i++)
            if (str_to(codec_get(codec_get(o, "tokens"), ROLE_KEYS[i]), r->tok[i],
                       sizeof r->tok[i])) {
                fail(w, "room.create's ok lacks the %s token", ROLE_KEYS[i]);
                return;
            }
        r->state = RS_JOINING;
        room_progress(r);
        return;
    case K_CREATE_EXTRA:
        w->extra_inflight--;
        cold_progress(w);
        return;
    case K_JOIN:
        return;
    case K_ADD:
        if (str_to(codec_get(o, "item"), r->items[r->nitems], sizeof r->items[0])) {
            fail(w, "item.add's ok has no item id");
            return;
        }
        r->nitems++;
        if (w->cfg.scenario == SC_COLD && r->state == RS_READY)
            cold_progress(w);
        else
            room_progress(r);
        return;
    case K_START:
        if (r->state == RS_ROUND)
            room_progress(r);
        if (p->measured && has_seq)
            track_ack(r, seq, p);
        return;
    case K_CHANGE:
        if (p->measured)
            w->changes++;
        /* fall through */
    case K_VOTE:
    case K_REVEAL:
        if (has_seq)
            track_ack(r, seq, p);
        else if (p->measured)
            w->pending_lat--;
        if (w->cfg.scenario == SC_PERSIST && w->running && !c->slow)
            send_change(c, w->measuring);
        return;
    case K_FILL:
        cold_progress(w);
        return;
    case K_NONE:
        return;
    }
}

static void on_message(struct wsc *ws, void *user, const uint8_t *data, size_t len)
{
    struct client *c = user;
    struct worker *w = c->w;
    msgpack_object o;
    const char *why;
    uint64_t now = now_us();
    (void)ws;
    w->last_rx = now;
    if (codec_decode(data, len, &w->zone, &o, &why)) {
        fail(w, "undecodable message from the server: %s", why);
        goto done;
    }
    const msgpack_object *t = codec_get(&o, "t");
    if (!t || t->type != MSGPACK_OBJECT_STR) {
        fail(w, "a message without t");
        goto done;
    }
    uint64_t id = 0, seq = 0;
    if (codec_str_eq(t, "ok") || codec_str_eq(t, "err")) {
        if (!codec_get_uint(&o, "id", &id)) {
            fail(w, "a reply without id");
            goto done;
        }
        struct pend *p = &c->pend[id & (c->pcap - 1)];
        if (!p->used || p->id != id) {
            fail(w, "a reply to an unknown request id %llu", (unsigned long long)id);
            goto done;
        }
        struct pend copy = *p;
        p->used = 0;
        c->inflight--;
        w->inflight_total--;
        if (codec_str_eq(t, "ok")) {
            on_ok(c, &o, &copy, now);
        } else {
            const msgpack_object *code = codec_get(&o, "code"), *msg = codec_get(&o, "msg");
            w->err_replies++;
            w->err_by[err_index(code)]++;
            if (copy.measured)
                w->pending_lat--;
            if (copy.kind != K_CHANGE || w->cfg.verbose)
                fprintf(stderr, "refine-bench: worker %d: err %.*s: %.*s\n", w->index,
                        code && code->type == MSGPACK_OBJECT_STR ? (int)code->via.str.size : 1,
                        code && code->type == MSGPACK_OBJECT_STR ? code->via.str.ptr : "?",
                        msg && msg->type == MSGPACK_OBJECT_STR ? (int)msg->via.str.size : 0,
                        msg && msg->type == MSGPACK_OBJECT_STR ? msg->via.str.ptr : "");
            if (copy.kind != K_CHANGE && copy.kind != K_VOTE && copy.kind != K_FILL)
                fail(w, "the server refused a setup request");
            else if (w->cfg.scenario == SC_PERSIST && w->running && !c->slow)
                send_change(c, w->measuring);
        }
        goto done;
    }
    if (codec_str_eq(t, "snapshot")) {
        if (!codec_get_uint(&o, "seq", &seq)) {
            fail(w, "a snapshot without seq");
            goto done;
        }
        c->last_seq = seq;
        if (c->cold_probe) {
            hist_record(&w->aux, now - c->t_join);
            c->expect_close = 1;
            wsc_close(c->ws);
            goto done;
        }
        if (c->probe) {
            double ms = (double)(now - c->t_join) / 1000.0;
            if (w->probe_round == 0)
                w->cold_ms = ms;
            else
                w->warm_ms = ms;
            w->snapshot_bytes = len;
            c->expect_close = 1;
            wsc_close(c->ws);
            goto done;
        }
        if (!c->have_snapshot) {
            c->have_snapshot = 1;
            c->room->joined++;
            if (!c->slow)
                c->room->reading++;
            if (c->idx == 0)
                c->room->seq = seq;
            room_progress(c->room);
        }
        goto done;
    }
    if (codec_get_uint(&o, "seq", &seq)) {
        /* An event. */
        if (c->probe || c->cold_probe || c->slow)
            goto done;
        if (c->last_seq && seq != c->last_seq + 1)
            w->seq_gaps++;
        c->last_seq = seq;
        if (w->measuring)
            w->deliveries++;
        struct room *r = c->room;
        if (c->idx == 0) {
            r->seq = seq;
            if (codec_str_eq(t, "round.started"))
                str_to(codec_get(&o, "round"), r->round, sizeof r->round);
        }
        track_event(r, seq, now);
        goto done;
    }
    if (w->measuring && !c->cold_probe)
        w->notices++;
done:
    msgpack_zone_clear(&w->zone);
}

static void on_open(struct wsc *ws, void *user)
{
    struct client *c = user;
    (void)ws;
    c->open = 1;
    if (c->probe) {
        send_join(c);
        return;
    }
    if (c->idx == 0 && c->room->state == RS_CREATING)
        room_progress(c->room);
    else
        send_join(c);
}

static void on_close(struct wsc *ws, void *user, int code)
{
    struct client *c = user;
    struct worker *w = c->w;
    (void)ws;
    int was_open = c->open;
    c->ws = NULL;
    c->open = 0;
    c->closed = 1;
    for (size_t i = 0; i < c->pcap; i++) {
        struct pend *p = &c->pend[i];
        if (!p->used)
            continue;
        p->used = 0;
        w->inflight_total--;
        if (p->measured) {
            w->pending_lat--;
            w->incomplete++;
        }
    }
    c->inflight = 0;
    if (c->have_snapshot && c->room && !c->probe) {
        c->room->joined--;
        if (!c->slow)
            c->room->reading--;
    }
    if (w->quitting || c->expect_close) {
        if (c->probe)
            cold_progress(w);
        return;
    }
    if (c->slow && code == 4001) {
        w->slow_closed++;
        return;
    }
    w->disconnects++;
    fprintf(stderr, "refine-bench: worker %d: a connection %s (status %d)\n", w->index,
            was_open ? "was closed" : "could not be opened", code);
    if (!w->setting_up && was_open)
        return;
    /* During setup: a member lost is counted (setup_disconnects) and the
     * room goes on without it; a facilitator lost is the end. */
    w->setup_disconnects++;
    struct room *r = c->room;
    if (!r || c->probe || c->idx == 0 || r->state != RS_MEMBERS) {
        fail(w, "a connection %s during setup (status %d)", was_open ? "closed" : "failed", code);
        return;
    }
    r->lost++;
    room_progress(r);
}

static const struct wsc_handlers HANDLERS = {on_open, on_message, on_close};

/* ---- building the population -------------------------------------------- */

static struct client *new_client(struct worker *w, struct room *r, size_t idx, int role,
                                 size_t pcap)
{
    struct client *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->w = w;
    c->room = r;
    c->idx = idx;
    c->role = role;
    c->pcap = next_pow2(pcap < 8 ? 8 : pcap);
    c->pend = calloc(c->pcap, sizeof *c->pend);
    if (!c->pend) {
        free(c);
        return NULL;
    }
    uv_timer_init(&w->loop, &c->timer);
    c->timer.data = c;
    if (w->nclients == w->ncap) {
        size_t cap = w->ncap ? w->ncap * 2 : 64;
        struct client **v = realloc(w->clients, cap * sizeof *v);
        if (!v) {
            free(c->pend);
            free(c);
            return NULL;
        }
        w->clients = v;
        w->ncap = cap;
    }
    w->clients[w->nclients++] = c;
    return c;
}

static int build_room(struct worker *w, struct room *r, size_t index, size_t n, size_t items,
                      int want_round, size_t ring, size_t pcap)
{
    r->w = w;
    r->index = index;
    r->n = n;
    r->items_wanted = items;
    r->want_round = want_round;
    r->m = calloc(n, sizeof *r->m);
    r->items = calloc(items ? items : 1, sizeof *r->items);
    r->mask = next_pow2(ring) - 1;
    r->ring = calloc(r->mask + 1, sizeof *r->ring);
    if (!r->m || !r->items || !r->ring)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int role = R_OWNER;
        if (i == 0)
            role = R_FACILITATOR;
        else if (w->cfg.scenario == SC_BIG_ROOM)
            role = i <= w->cfg.voters ? R_MEMBER : R_OBSERVER;
        else if (w->cfg.scenario == SC_COLD)
            role = R_MEMBER;
        r->m[i] = new_client(w, r, i, role, pcap);
        if (!r->m[i])
            return -1;
    }
    return 0;
}

/* Ready once the server has been quiet for a second: the presence notices
 * of the joins (one per member per join: quadratic in a big room) are not
 * part of what is measured. */
static void on_settle(uv_timer_t *t)
{
    struct worker *w = t->data;
    uint64_t now = now_us();
    if (now - w->last_rx < 1000000u && now < w->drain_deadline)
        return;
    uv_timer_stop(t);
    char line[256];
    w->setting_up = 0;
    int n =
        snprintf(line, sizeof line,
                 "{\"ev\":\"ready\",\"worker\":%d,\"rooms\":%zu,\"clients\":%zu,"
                 "\"setup_s\":%.3f,\"setup_disconnects\":%llu}\n",
                 w->index, w->nrooms, w->nclients - w->ncold, (double)(now_us() - w->t_setup) / 1e6,
                 (unsigned long long)w->setup_disconnects);
    out_line(w, line, (size_t)n);
}

static void report_ready(struct worker *w)
{
    w->drain_deadline = now_us() + 600000000u;
    uv_timer_start(&w->drain_timer, on_settle, 0, 50);
}

static void cmd_setup(struct worker *w)
{
    const struct bench_cfg *cfg = &w->cfg;
    size_t per_room = cfg->per_room, items = cfg->items, ring = 1024, pcap = 64;
    int round = 1;
    size_t total = cfg->rooms;
    w->t_setup = now_us();
    w->setting_up = 1;
    switch (cfg->scenario) {
    case SC_IDLE:
        items = 0;
        round = 0;
        total = (cfg->clients + per_room - 1) / per_room;
        break;
    case SC_BIG_ROOM:
        total = 1;
        per_room = cfg->clients;
        items = 1;
        round = 0;
        break;
    case SC_PERSIST:
        round = 0;
        pcap = cfg->window * 2;
        ring = per_room * cfg->window * 4;
        break;
    case SC_COLD:
        /* The big room is built on "build"; nothing to set up yet. */
        report_ready(w);
        return;
    default:
        break;
    }
    if (ring < 1024)
        ring = 1024;
    for (size_t i = 0; i < total; i++)
        if (i % (size_t)w->nworkers == (size_t)w->index)
            w->nrooms++;
    w->rooms = calloc(w->nrooms ? w->nrooms : 1, sizeof *w->rooms);
    if (!w->rooms) {
        fail(w, "out of memory");
        return;
    }
    size_t k = 0;
    for (size_t i = 0; i < total; i++) {
        if (i % (size_t)w->nworkers != (size_t)w->index)
            continue;
        size_t n = per_room;
        if (cfg->scenario == SC_IDLE && i == total - 1 && cfg->clients % per_room)
            n = cfg->clients % per_room;
        if (build_room(w, &w->rooms[k], i, n, items, round, ring, pcap)) {
            fail(w, "out of memory");
            return;
        }
        k++;
    }
    if (!w->nrooms) {
        report_ready(w);
        return;
    }
    for (size_t i = 0; i < w->nrooms; i++)
        room_progress(&w->rooms[i]);
}

/* ---- steps -------------------------------------------------------------- */

static void report_step(struct worker *w, const char *ev)
{
    size_t cap = 3 * 65536;
    char *line = malloc(cap);
    if (!line)
        return;
    size_t n = 0;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(line + n, n < cap ? cap - n : 0, __VA_ARGS__);                           \
        n += k_ > 0 ? (size_t)k_ : 0;                                                              \
    } while (0)
    PUT("{\"ev\":\"%s\",\"worker\":%d,\"secs\":%.6f,\"changes\":%llu,\"deliveries\":%llu,"
        "\"notices\":%llu,\"err_replies\":%llu,\"disconnects\":%llu,\"seq_gaps\":%llu,"
        "\"incomplete\":%llu,\"slow_closed\":%llu,\"skipped\":%llu,\"overrun\":%llu,"
        "\"repeats\":%zu,\"lat_max\":%llu,\"ack_max\":%llu,\"aux_max\":%llu,\"err_by\":[",
        ev, w->index, w->step_secs, (unsigned long long)w->changes,
        (unsigned long long)w->deliveries, (unsigned long long)w->notices,
        (unsigned long long)w->err_replies, (unsigned long long)w->disconnects,
        (unsigned long long)w->seq_gaps, (unsigned long long)w->incomplete,
        (unsigned long long)w->slow_closed, (unsigned long long)w->skipped,
        (unsigned long long)w->overrun, w->br_done, (unsigned long long)w->lat.max,
        (unsigned long long)w->ack.max, (unsigned long long)w->aux.max);
    for (size_t i = 0; i < NERR; i++)
        PUT("%s%llu", i ? "," : "", (unsigned long long)w->err_by[i]);
    PUT("],\"lat\":");
    if (n < cap)
        n += hist_to_json(&w->lat, line + n, cap - n);
    PUT(",\"ack\":");
    if (n < cap)
        n += hist_to_json(&w->ack, line + n, cap - n);
    PUT(",\"aux\":");
    if (n < cap)
        n += hist_to_json(&w->aux, line + n, cap - n);
    PUT("}\n");
#undef PUT
    if (n >= cap)
        fail(w, "report too long");
    else
        out_line(w, line, n);
    free(line);
}

static void reset_stats(struct worker *w)
{
    w->changes = w->deliveries = w->notices = w->err_replies = w->disconnects = w->seq_gaps = 0;
    w->incomplete = w->slow_closed = w->skipped = w->overrun = 0;
    memset(w->err_by, 0, sizeof w->err_by);
    hist_reset(&w->lat);
    hist_reset(&w->ack);
    hist_reset(&w->aux);
    w->br_done = 0;
}

static void on_drain(uv_timer_t *t)
{
    struct worker *w = t->data;
    if ((w->inflight_total || w->pending_lat) && now_us() < w->drain_deadline)
        return;
    uv_timer_stop(t);
    w->incomplete += w->pending_lat;
    w->pending_lat = 0;
    report_step(w, "step");
}

static void on_step_end(uv_timer_t *t)
{
    struct worker *w = t->data;
    w->measuring = 0;
    w->running = 0;
    w->step_secs = (double)(now_us() - w->t_step) / 1e6;
    for (size_t i = 0; i < w->nclients; i++)
        uv_timer_stop(&w->clients[i]->timer);
    uv_timer_stop(&w->cold_timer);
    w->drain_deadline = now_us() + 10000000u;
    uv_timer_start(&w->drain_timer, on_drain, 0, 5);
}

/* meetings-cold: a new connection joins the next cold room (once each). */
static void on_cold_timer(uv_timer_t *t)
{
    struct worker *w = t->data;
    if (w->cold_next >= w->ncold || w->failed)
        return;
    struct room *r = &w->cold[w->cold_next++];
    struct client *c = new_client(w, r, 1, R_OWNER, 8);
    if (!c) {
        fail(w, "out of memory");
        return;
    }
    c->cold_probe = 1;
    client_connect(c);
}

static void cmd_step(struct worker *w, double rate, double secs)
{
    reset_stats(w);
    w->rate = rate;
    w->measuring = 1;
    w->running = 1;
    w->t_step = now_us();
    if (w->cfg.scenario == SC_PERSIST) {
        for (size_t i = 0; i < w->nclients; i++) {
            struct client *c = w->clients[i];
            for (size_t k = 0; k < w->cfg.window && !c->closed && !c->slow; k++)
                send_change(c, 1);
        }
    } else if (rate > 0) {
        double period = 1000.0 / rate;
        uint64_t rep = period < 1 ? 1 : (uint64_t)(period + 0.5);
        for (size_t i = 0; i < w->nclients; i++) {
            struct client *c = w->clients[i];
            if (c->closed || c->slow)
                continue;
            uv_timer_start(&c->timer, on_client_timer, rnd(w) % rep, rep);
        }
    }
    if (w->ncold) {
        uint64_t every = (uint64_t)(w->cfg.cold_every * 1000.0);
        uv_timer_start(&w->cold_timer, on_cold_timer, every, every);
    }
    uv_timer_start(&w->step_timer, on_step_end, (uint64_t)(secs * 1000.0), 0);
}

static void cmd_slow(struct worker *w)
{
    double pct = w->cfg.slow_pct;
    size_t every = pct > 0 ? (size_t)(100.0 / pct + 0.5) : 0, n = 0;
    if (every < 2)
        every = 2;
    /* Every `every`-th client, never a facilitator, at least one. */
    struct client *last = NULL;
    for (size_t i = 0; i < w->nclients; i++) {
        struct client *c = w->clients[i];
        if (c->idx == 0 || c->closed || !c->ws)
            continue;
        last = c;
        if ((i + 1) % every)
            continue;
        c->slow = 1;
        c->room->reading--;
        wsc_set_reading(c->ws, 0);
        n++;
    }
    if (!n && last) {
        last->slow = 1;
        last->room->reading--;
        wsc_set_reading(last->ws, 0);
        n++;
    }
    char line[128];
    int k =
        snprintf(line, sizeof line, "{\"ev\":\"slow\",\"worker\":%d,\"slow\":%zu}\n", w->index, n);
    out_line(w, line, (size_t)k);
}

/* ---- big-room ----------------------------------------------------------- */

static void bigroom_next(struct worker *w)
{
    struct room *r = &w->rooms[0];
    if (w->br_done >= w->br_repeats) {
        w->running = 0;
        w->measuring = 0;
        w->step_secs = (double)(now_us() - w->t_step) / 1e6;
        report_step(w, "bigroom");
        return;
    }
    r->round[0] = 0;
    send_round_start(r->m[0], K_START, 1);
}

static void cmd_bigroom(struct worker *w, size_t repeats)
{
    reset_stats(w);
    if (!w->nrooms) {
        report_step(w, "bigroom");
        return;
    }
    w->br_repeats = repeats;
    w->running = 1;
    w->measuring = 1;
    w->t_step = now_us();
    bigroom_next(w);
}

/* ---- cold --------------------------------------------------------------- */

static void free_handle_data(uv_handle_t *h)
{
    free(h->data);
}

static void send_fill(struct client *c)
{
    struct room *r = c->room;
    struct worker *w = c->w;
    char notes[80];
    struct msg m;
    snprintf(notes, sizeof notes, "history filler %llu", (unsigned long long)rnd(w) % 1000000);
    msg_begin(c, &m, "item.update", 2);
    codec_pack_kv_str(&m.pk, "item", r->items[rnd(w) % r->nitems]);
    codec_pack_str(&m.pk, "set");
    msgpack_pack_map(&m.pk, 1);
    codec_pack_kv_str(&m.pk, "notes", notes);
    msg_send(c, &m, K_FILL, 0, now_us());
}

/* The build: items (facilitator, 64 in flight), then history (every
 * member, 32 in flight each, until the room's seq reaches the target),
 * then the other stored rooms (64 room.create in flight), then close all. */
static void cold_progress(struct worker *w)
{
    struct room *r = &w->rooms[0];
    struct client *f = r->m[0];
    if (w->failed || !w->nrooms || r->state != RS_READY)
        return;
    if (w->probe) {
        if (!w->probe->closed)
            return;
        free(w->probe->pend);
        w->probe->timer.data = w->probe;
        uv_close((uv_handle_t *)&w->probe->timer, free_handle_data);
        w->probe = NULL;
        w->probe_round++;
        if (w->probe_round < 2) {
            struct client *p = calloc(1, sizeof *p);
            if (!p)
                return;
            p->w = w;
            p->room = r;
            p->probe = 1;
            p->pcap = 8;
            p->pend = calloc(p->pcap, sizeof *p->pend);
            uv_timer_init(&w->loop, &p->timer);
            w->probe = p;
            client_connect(p);
            return;
        }
        char line[256];
        int n = snprintf(line, sizeof line,
                         "{\"ev\":\"coldjoin\",\"worker\":%d,\"cold_ms\":%.3f,\"warm_ms\":%.3f,"
                         "\"snapshot_bytes\":%zu}\n",
                         w->index, w->cold_ms, w->warm_ms, w->snapshot_bytes);
        out_line(w, line, (size_t)n);
        return;
    }
    if (w->t_built)
        return;
    if (r->nitems < w->cfg.items) {
        r->items_wanted = w->cfg.items;
        while (r->items_sent < r->items_wanted && f->inflight < 64)
            send_add(f);
        return;
    }
    if (r->seq + w->inflight_total < w->fill_target) {
        for (size_t i = 1; i < r->n; i++) {
            struct client *c = r->m[i];
            while (c->inflight < 32 && r->seq + w->inflight_total < w->fill_target)
                send_fill(c);
        }
        return;
    }
    if (w->inflight_total > w->extra_inflight)
        return; /* the last fills */
    while (w->extra_left && w->extra_inflight < 64) {
        w->extra_left--;
        w->extra_inflight++;
        send_create(f, K_CREATE_EXTRA);
    }
    if (w->extra_left || w->extra_inflight)
        return;
    /* Built: everything is acknowledged, hence committed. */
    w->t_built = now_us();
    for (size_t i = 0; i < r->n; i++) {
        r->m[i]->expect_close = 1;
        if (r->m[i]->ws)
            wsc_close(r->m[i]->ws);
    }
    char line[256];
    int n = snprintf(line, sizeof line,
                     "{\"ev\":\"built\",\"worker\":%d,\"seq\":%llu,\"items\":%zu,\"rooms\":%zu,"
                     "\"build_s\":%.3f}\n",
                     w->index, (unsigned long long)r->seq, r->nitems, w->cfg.rooms,
                     (double)(w->t_built - w->t_setup) / 1e6);
    out_line(w, line, (size_t)n);
}

static void cmd_build(struct worker *w)
{
    const struct bench_cfg *cfg = &w->cfg;
    w->t_setup = now_us();
    w->nrooms = 1;
    w->rooms = calloc(1, sizeof *w->rooms);
    w->fill_target = cfg->events;
    w->extra_left = cfg->rooms > 1 ? cfg->rooms - 1 : 0;
    /* The facilitator plus 8 members who write the history. */
    if (!w->rooms || build_room(w, &w->rooms[0], 0, 9, cfg->items, 0, 1024, 128)) {
        fail(w, "out of memory");
        return;
    }
    w->rooms[0].items_wanted = 0; /* members join first; items come in cold_progress */
    room_progress(&w->rooms[0]);
}

static void cmd_coldjoin(struct worker *w, int port)
{
    struct room *r = &w->rooms[0];
    r->items_wanted = r->nitems;
    wsc_ctx_set_port(w->ws, port);
    struct client *p = calloc(1, sizeof *p);
    if (!p) {
        fail(w, "out of memory");
        return;
    }
    p->w = w;
    p->room = r;
    p->probe = 1;
    p->pcap = 8;
    p->pend = calloc(p->pcap, sizeof *p->pend);
    uv_timer_init(&w->loop, &p->timer);
    w->probe = p;
    w->probe_round = 0;
    client_connect(p);
}

/* ---- meetings-cold ------------------------------------------------------ */

/* Every cold room built (each by its facilitator, 64 item.add in flight):
 * close their connections and answer. */
static void cold_rooms_progress(struct worker *w)
{
    if (w->cold_ready < w->ncold)
        return;
    for (size_t i = 0; i < w->ncold; i++) {
        struct client *f = w->cold[i].m[0];
        f->expect_close = 1;
        if (f->ws)
            wsc_close(f->ws);
    }
    char line[256];
    int n = snprintf(line, sizeof line,
                     "{\"ev\":\"coldrooms\",\"worker\":%d,\"rooms\":%zu,\"build_s\":%.3f}\n",
                     w->index, w->ncold, (double)(now_us() - w->t_setup) / 1e6);
    out_line(w, line, (size_t)n);
}

/* Enough rooms for one cold join every cold_every seconds of the step, and
 * one more; built by worker 0 only. */
static void cmd_coldrooms(struct worker *w)
{
    const struct bench_cfg *cfg = &w->cfg;
    w->t_setup = now_us();
    w->setting_up = 1; /* a facilitator lost while building is the end */
    w->ncold = w->index == 0 ? (size_t)(cfg->duration / cfg->cold_every) + 1 : 0;
    w->cold = calloc(w->ncold ? w->ncold : 1, sizeof *w->cold);
    if (!w->cold) {
        fail(w, "out of memory");
        return;
    }
    for (size_t i = 0; i < w->ncold; i++) {
        struct room *r = &w->cold[i];
        if (build_room(w, r, 1000000 + i, 1, cfg->cold_items, 0, 1024, 128)) {
            fail(w, "out of memory");
            return;
        }
        r->cold = 1;
    }
    for (size_t i = 0; i < w->ncold; i++)
        room_progress(&w->cold[i]);
    cold_rooms_progress(w);
}

/* ---- commands ----------------------------------------------------------- */

static void quit(struct worker *w)
{
    if (w->quitting)
        return;
    w->quitting = 1;
    w->running = 0;
    if (w->cmd_open) {
        uv_close((uv_handle_t *)&w->cmd, NULL);
        w->cmd_open = 0;
    }
    uv_close((uv_handle_t *)&w->step_timer, NULL);
    uv_close((uv_handle_t *)&w->drain_timer, NULL);
    uv_close((uv_handle_t *)&w->cold_timer, NULL);
    for (size_t i = 0; i < w->nclients; i++)
        uv_close((uv_handle_t *)&w->clients[i]->timer, NULL);
    if (w->probe)
        uv_close((uv_handle_t *)&w->probe->timer, NULL);
    uv_stop(&w->loop);
}

static void command(struct worker *w, char *line)
{
    double a = 0, b = 0;
    char word[32] = "";
    sscanf(line, "%31s %lf %lf", word, &a, &b);
    if (strcmp(word, "setup") == 0)
        cmd_setup(w);
    else if (strcmp(word, "step") == 0)
        cmd_step(w, a, b);
    else if (strcmp(word, "slow") == 0)
        cmd_slow(w);
    else if (strcmp(word, "bigroom") == 0)
        cmd_bigroom(w, (size_t)a);
    else if (strcmp(word, "build") == 0)
        cmd_build(w);
    else if (strcmp(word, "coldjoin") == 0)
        cmd_coldjoin(w, (int)a);
    else if (strcmp(word, "coldrooms") == 0)
        cmd_coldrooms(w);
    else if (strcmp(word, "quit") == 0)
        quit(w);
    else
        fail(w, "unknown command %s", word);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct worker *w = h->data;
    (void)suggested;
    buf->base = w->cmdbuf + w->cmdlen;
    buf->len = sizeof w->cmdbuf - 1 - w->cmdlen;
}

static void on_cmd(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct worker *w = s->data;
    (void)buf;
    if (n < 0) {
        quit(w); /* the parent went away */
        return;
    }
    w->cmdlen += (size_t)n;
    w->cmdbuf[w->cmdlen] = 0;
    char *nl;
    while (!w->quitting && (nl = strchr(w->cmdbuf, '\n'))) {
        *nl = 0;
        char line[512];
        snprintf(line, sizeof line, "%s", w->cmdbuf);
        size_t used = (size_t)(nl + 1 - w->cmdbuf);
        memmove(w->cmdbuf, nl + 1, w->cmdlen - used + 1);
        w->cmdlen -= used;
        command(w, line);
    }
    if (w->cmdlen >= sizeof w->cmdbuf - 1)
        w->cmdlen = 0;
}

static void free_all(struct worker *w)
{
    for (size_t i = 0; i < w->nclients; i++) {
        free(w->clients[i]->pend);
        free(w->clients[i]);
    }
    free(w->clients);
    for (size_t i = 0; i < w->nrooms; i++) {
        free(w->rooms[i].m);
        free(w->rooms[i].items);
        free(w->rooms[i].ring);
    }
    free(w->rooms);
    for (size_t i = 0; i < w->ncold; i++) {
        free(w->cold[i].m);
        free(w->cold[i].items);
        free(w->cold[i].ring);
    }
    free(w->cold);
    if (w->probe) {
        free(w->probe->pend);
        free(w->probe);
    }
}

int worker_main(const struct bench_cfg *cfg, int index, int nworkers, int cmd_fd, int out_fd)
{
    static struct worker wk;
    struct worker *w = &wk;
    w->cfg = *cfg;
    w->index = index;
    w->nworkers = nworkers;
    w->out_fd = out_fd;
    w->rng = 0x9e3779b97f4a7c15ull ^ ((uint64_t)cfg->seed << 16) ^ (uint64_t)(index + 1);
    if (uv_loop_init(&w->loop))
        return 1;
    if (!msgpack_zone_init(&w->zone, 65536))
        return 1;
    if (wsc_ctx_new(&w->ws, &w->loop, &HANDLERS, cfg->host, cfg->port, 256)) {
        fail(w, "cannot start libwebsockets on the libuv loop");
        return 1;
    }
    uv_timer_init(&w->loop, &w->step_timer);
    uv_timer_init(&w->loop, &w->drain_timer);
    uv_timer_init(&w->loop, &w->cold_timer);
    w->step_timer.data = w->drain_timer.data = w->cold_timer.data = w;
    uv_pipe_init(&w->loop, &w->cmd, 0);
    uv_pipe_open(&w->cmd, cmd_fd);
    w->cmd.data = w;
    w->cmd_open = 1;
    uv_read_start((uv_stream_t *)&w->cmd, on_alloc, on_cmd);

    while (!w->quitting)
        uv_run(&w->loop, UV_RUN_DEFAULT);
    wsc_ctx_destroy(w->ws); /* runs the loop until every handle is closed */
    msgpack_zone_destroy(&w->zone);
    int rc = uv_loop_close(&w->loop);
    if (rc)
        fprintf(stderr, "refine-bench: worker %d: the loop closed with handles open\n", index);
    free_all(w);
    return w->failed ? 1 : 0;
}
