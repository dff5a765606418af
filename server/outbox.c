#include "outbox.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "conn.h"
#include "errors.h"
#include "frame.h"
#include "log.h"
#include "metrics.h"
#include "reply.h"
#include "room.h"
#include "store.h"

struct entry {
    uint64_t need;   /* store_added() numbering: released when store_durable() reaches it */
    uint64_t serial; /* app->join_serial when made (room entries) */
    struct frame *frame;
    struct conn *conn; /* one recipient, or the one excluded from a room entry */
    struct room *room; /* NULL for a one-connection entry */
    uint64_t req_id;
    bool ack;         /* the ok of request req_id */
    struct room *dep; /* the room an ack's change is about (NULL: any) */
    bool actors_only; /* a room entry for non-observers only */
    bool answer;      /* what the connection asked for (conn_send_answer) */
};

/* Entries in creation order; those released leave, the others keep their
 * order. An entry waits only for the records of its own room (a room's
 * records_upto), so a stalled write in one room does not hold up replies in
 * another; entries for one connection have non-decreasing `need` (each
 * connection keeps its last one), so they still leave in order. */
struct outbox {
    struct entry *v;
    size_t n, cap;
};

int outbox_new(struct outbox **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : RF_ENOMEM;
}

static void entry_drop(struct entry *e)
{
    frame_unref(e->frame);
    conn_unref(e->conn);
    room_unref(e->room);
    room_unref(e->dep);
}

void outbox_free(struct outbox *ob)
{
    if (!ob)
        return;
    for (size_t i = 0; i < ob->n; i++)
        entry_drop(&ob->v[i]);
    free(ob->v);
    free(ob);
}

static void deliver(struct app *app, struct entry *e)
{
    if (!e->room) {
        if (e->answer)
            conn_send_answer(e->conn, e->frame);
        else
            conn_send(e->conn, e->frame);
        return;
    }
    list_each(l, &e->room->conns)
    {
        struct conn *c = conn_of_room(l);
        if (c != e->conn && c->join_serial < e->serial &&
            !(e->actors_only && c->part->role == ROLE_OBSERVER)) {
            conn_send(c, e->frame);
            app->metrics.deliveries += !c->close_code && (c->wsi || c->sink); /* queued */
        }
    }
}

/* err internal for a change that could not be committed (sent at once: the
 * outbox is resolving the entry it replaces). */
static void send_error(struct conn *c, uint64_t req_id)
{
    struct frame *f = reply_error_frame(true, req_id, RF_EINTERNAL,
                                        "The change could not be saved (the server's storage "
                                        "failed); nothing was changed. Rejoin with since and "
                                        "try again.");
    if (f)
        conn_send(c, f);
    frame_unref(f);
}

static void push(struct app *app, struct entry e)
{
    struct outbox *ob = app->outbox;
    if (e.need <= store_durable(app->store)) {
        deliver(app, &e); /* what it reports is committed: no need to hold it */
        entry_drop(&e);
        return;
    }
    if (ob->n == ob->cap) {
        size_t cap = ob->cap ? ob->cap * 2 : 64;
        struct entry *v = realloc(ob->v, cap * sizeof *v);
        if (!v) {
            log_error("out of memory holding output; dropping a message");
            entry_drop(&e);
            return;
        }
        ob->v = v;
        ob->cap = cap;
    }
    ob->v[ob->n++] = e;
}

/* What a message to c must wait for: the records of its room, and whatever
 * c's previous message waited for. */
static uint64_t conn_need(struct conn *c, struct room *r)
{
    uint64_t need = r ? r->records_upto : 0;
    if (c->room && c->room->records_upto > need)
        need = c->room->records_upto;
    if (c->last_need > need)
        need = c->last_need;
    c->last_need = need;
    return need;
}

void outbox_to_conn(struct app *app, struct conn *c, struct frame *f)
{
    struct entry e = {
        conn_need(c, NULL), 0, frame_ref(f), conn_ref(c), NULL, 0, false, NULL, false, false};
    push(app, e);
}

void outbox_answer(struct app *app, struct conn *c, struct frame *f)
{
    struct entry e = {
        conn_need(c, NULL), 0, frame_ref(f), conn_ref(c), NULL, 0, false, NULL, false, true};
    push(app, e);
}

void outbox_ack(struct app *app, struct conn *c, struct frame *f, uint64_t req_id, struct room *dep)
{
    struct entry e = {
        conn_need(c, dep),          0,     frame_ref(f), conn_ref(c), NULL, req_id, true,
        dep ? room_ref(dep) : NULL, false, false};
    push(app, e);
}

void outbox_to_room(struct app *app, struct room *r, struct frame *f, struct conn *except,
                    bool actors_only)
{
    struct entry e = {r->records_upto, ++app->join_serial,
                      frame_ref(f),    except ? conn_ref(except) : NULL,
                      room_ref(r),     0,
                      false,           NULL,
                      actors_only,     false};
    push(app, e);
}

static bool in_rooms(const struct room *r, const char *const *rooms, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        if (strcmp(r->id, rooms[i]) == 0)
            return true;
    return false;
}

/* Resolves every entry waiting for records up to `upto`, in order; the
 * others keep their order. With `failure`, the transaction of rooms[0..n)
 * failed: an entry about a failed room never leaves (an ack becomes an
 * error; the rest, events or a snapshot built from what failed, is
 * dropped), and anything else was not part of the failure. */
static void resolve(struct app *app, uint64_t upto, bool failure, const char *const *rooms,
                    size_t n)
{
    struct outbox *ob = app->outbox;
    size_t keep = 0;
    for (size_t i = 0; i < ob->n; i++) {
        struct entry e = ob->v[i];
        if (e.need > upto) {
            ob->v[keep++] = e;
            continue;
        }
        bool failed = failure && (e.ack ? !e.dep || in_rooms(e.dep, rooms, n)
                                        : in_rooms(e.room, rooms, n) ||
                                              (e.conn && in_rooms(e.conn->room, rooms, n)));
        if (failed && e.ack)
            send_error(e.conn, e.req_id);
        else if (!failed)
            deliver(app, &e);
        entry_drop(&e);
    }
    ob->n = keep;
}

void outbox_fail(struct app *app, uint64_t upto, const char *const *rooms, size_t n)
{
    resolve(app, upto, true, rooms, n);
}

void outbox_release(struct app *app)
{
    resolve(app, store_durable(app->store), false, NULL, 0);
}

void outbox_on_commit(void *app)
{
    struct app *a = app;
    const struct store_batch_info *b = store_last_batch(a->store);
    metrics_on_commit(&a->metrics, b->seconds, b->records, b->events, b->ok);
    metrics_on_pages(&a->metrics, b->wal_frames, b->ckpt_pages, b->log_frames);
    outbox_release(app);
}

void outbox_on_store_fail(void *app, uint64_t upto, const char *const *rooms, size_t n)
{
    outbox_fail(app, upto, rooms, n);
    for (size_t i = 0; i < n; i++)
        room_evict(app, rooms[i]);
}
