#include "outbox.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "conn.h"
#include "frame.h"
#include "log.h"
#include "room.h"
#include "store.h"

struct entry {
    uint64_t need;   /* store_added() when made */
    uint64_t serial; /* app->join_serial when made (room entries) */
    struct frame *frame;
    struct conn *conn; /* one recipient, or the one excluded from a room entry */
    struct room *room; /* NULL for a one-connection entry */
    uint64_t req_id;
    bool ack;         /* the ok of request req_id */
    struct room *dep; /* the room an ack's change is about (NULL: any) */
};

struct outbox {
    struct entry *v; /* ring buffer */
    size_t cap, head, count;
};

int outbox_new(struct outbox **out)
{
    *out = calloc(1, sizeof **out);
    return *out ? 0 : -1;
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
    for (size_t i = 0; i < ob->count; i++)
        entry_drop(&ob->v[(ob->head + i) % ob->cap]);
    free(ob->v);
    free(ob);
}

static void deliver(struct app *app, struct entry *e)
{
    if (!e->room) {
        conn_send(e->conn, e->frame);
        return;
    }
    for (struct conn *c = room_conns(e->room); c; c = c->room_next)
        if (c != e->conn && c->join_serial < e->serial)
            conn_send(c, e->frame);
    (void)app;
}

/* err internal for a change that could not be committed. */
static void send_error(struct conn *c, uint64_t req_id)
{
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, FRAME_HEAD);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 4);
    codec_pack_kv_str(&pk, "t", "err");
    codec_pack_kv_u64(&pk, "id", req_id);
    codec_pack_kv_str(&pk, "code", "internal");
    codec_pack_kv_str(&pk, "msg",
                      "The change could not be saved (the server's storage failed); nothing "
                      "was changed. Rejoin with since and try again.");
    struct frame *f = frame_from_buf(&b);
    if (f)
        conn_send(c, f);
    frame_unref(f);
}

static void push(struct app *app, struct entry e)
{
    struct outbox *ob = app->outbox;
    if (ob->count == 0 && e.need <= store_durable(app->store)) {
        deliver(app, &e); /* nothing earlier is waiting: no need to hold it */
        entry_drop(&e);
        return;
    }
    if (ob->count == ob->cap) {
        size_t cap = ob->cap ? ob->cap * 2 : 64;
        struct entry *v = malloc(cap * sizeof *v);
        if (!v) {
            log_error("out of memory holding output; dropping a message");
            entry_drop(&e);
            return;
        }
        for (size_t i = 0; i < ob->count; i++)
            v[i] = ob->v[(ob->head + i) % ob->cap];
        free(ob->v);
        ob->v = v;
        ob->cap = cap;
        ob->head = 0;
    }
    ob->v[(ob->head + ob->count) % ob->cap] = e;
    ob->count++;
}

void outbox_to_conn(struct app *app, struct conn *c, struct frame *f)
{
    struct entry e = {store_added(app->store), 0, frame_ref(f), conn_ref(c), NULL, 0, false, NULL};
    push(app, e);
}

void outbox_ack(struct app *app, struct conn *c, struct frame *f, uint64_t req_id, struct room *dep)
{
    struct entry e = {store_added(app->store),   0, frame_ref(f), conn_ref(c), NULL, req_id, true,
                      dep ? room_ref(dep) : NULL};
    push(app, e);
}

void outbox_to_room(struct app *app, struct room *r, struct frame *f, struct conn *except)
{
    struct entry e = {store_added(app->store),
                      ++app->join_serial,
                      frame_ref(f),
                      except ? conn_ref(except) : NULL,
                      room_ref(r),
                      0,
                      false,
                      NULL};
    push(app, e);
}

static bool in_rooms(const struct room *r, const char *const *rooms, size_t n)
{
    for (size_t i = 0; r && i < n; i++)
        if (strcmp(r->id, rooms[i]) == 0)
            return true;
    return false;
}

void outbox_fail(struct app *app, uint64_t upto, const char *const *rooms, size_t n)
{
    struct outbox *ob = app->outbox;
    while (ob->count && ob->v[ob->head].need <= upto) {
        struct entry e = ob->v[ob->head];
        ob->head = (ob->head + 1) % ob->cap;
        ob->count--;
        /* An entry about a failed room never leaves: an ack becomes an
         * error, the rest (events, a snapshot built from what failed) is
         * dropped. Anything else was not part of the failure. */
        bool failed =
            e.ack ? !e.dep || in_rooms(e.dep, rooms, n)
                  : in_rooms(e.room, rooms, n) || (e.conn && in_rooms(e.conn->room, rooms, n));
        if (failed && e.ack)
            send_error(e.conn, e.req_id);
        else if (!failed)
            deliver(app, &e);
        entry_drop(&e);
    }
}

void outbox_release(struct app *app)
{
    struct outbox *ob = app->outbox;
    uint64_t durable = store_durable(app->store);
    while (ob->count && ob->v[ob->head].need <= durable) {
        struct entry e = ob->v[ob->head];
        ob->head = (ob->head + 1) % ob->cap;
        ob->count--;
        deliver(app, &e);
        entry_drop(&e);
    }
}
