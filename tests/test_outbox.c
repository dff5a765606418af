/* Unit tests of the outbox (outbox.h) with a real store on a temporary SQLite
 * file, its real writer thread and the store's hooks as the server sets them
 * (outbox_on_commit, outbox_on_store_fail), and in-process connections (wsi
 * NULL, frames handed to a sink). Rooms are bare (room_new) and their changes
 * are events appended to the store by hand, so each test decides exactly
 * which records a message waits for:
 * - an `ok` and its event are held until the store reports them durable, and
 *   leave in creation order, also across batches and across rooms;
 * - room-wide entries go only to the connections that joined before them
 *   (not the excluded one, not observers when for actors only);
 * - a failed transaction (the database size cap) turns the held acks of the
 *   failed room into `err internal` and drops its other entries, while
 *   entries not about it leave in order, and the next batch's still wait;
 * - outbox_free with entries pending gives back every reference. */
#include "fixture.h"

/* Loop turns until everything appended is resolved. Only the store's hooks
 * release output here (no outbox_release of our own). */
static void pump(void)
{
    for (int i = 0; i < 100000 && store_durable(app.store) != store_added(app.store); i++) {
        store_flush(app.store);
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK(store_durable(app.store) == store_added(app.store));
}

/* Loop turns until the batch in flight is resolved: the next one (submitted
 * by the store only after the hooks ran) needs another turn to come back. */
static void pump_until(uint64_t upto)
{
    for (int i = 0; i < 100000 && store_durable(app.store) < upto; i++)
        uv_run(&loop, UV_RUN_ONCE);
    CHECK(store_durable(app.store) == upto);
}

/* As room_ops_join does it: the room's reference, the join stamp. */
static void join(struct client *cl, struct room *r, struct participant *p)
{
    cl->c->room = room_ref(r);
    cl->c->part = p;
    list_push(&r->conns, &cl->c->room_link);
    cl->c->join_serial = ++app.join_serial;
}

static void client_free(struct client *cl)
{
    if (cl->c->room) {
        list_remove(&cl->c->room_link);
        room_unref(cl->c->room);
        cl->c->room = NULL;
        cl->c->part = NULL;
    }
    conn_on_closed(cl->c);
    client_drop(cl);
}

/* A loaded room: in app.rooms, which holds its reference. */
static struct room *room_make(const char *id)
{
    struct room *r = room_new(&app);
    snprintf(r->id, sizeof r->id, "%s", id);
    CHECK(map_put(&app.rooms, r->id, r) == 0);
    return r;
}

/* A change to r: one event of `size` payload bytes appended to the batch,
 * as event_commit does it (records_upto after the record). */
static void change(struct room *r, size_t size)
{
    char *payload = malloc(size + 1);
    memset(payload, 'x', size + 1);
    payload[0] = (char)0xa0; /* an empty MessagePack string, then filler */
    CHECK(store_add_event(app.store, r->id, ++r->seq, 1000, "p1", "note", payload, size + 1) == 0);
    free(payload);
    r->records_upto = store_added(app.store);
}

static struct frame *text(const char *s)
{
    return frame_copy(s, strlen(s));
}

/* Queue the text s (each drops our reference to its frame). */
static void send_conn(struct client *cl, const char *s)
{
    struct frame *f = text(s);
    outbox_to_conn(&app, cl->c, f);
    frame_unref(f);
}

static void send_ack(struct client *cl, const char *s, uint64_t id, struct room *dep)
{
    struct frame *f = text(s);
    outbox_ack(&app, cl->c, f, id, dep);
    frame_unref(f);
}

static void send_answer(struct client *cl, const char *s)
{
    struct frame *f = text(s);
    outbox_answer(&app, cl->c, f);
    frame_unref(f);
}

static void send_room(struct room *r, const char *s, struct client *except, bool actors_only)
{
    struct frame *f = text(s);
    outbox_to_room(&app, r, f, except ? except->c : NULL, actors_only);
    frame_unref(f);
}

/* Whether the i-th message cl received is the text s. */
static int got(const struct client *cl, size_t i, const char *s)
{
    return i < cl->n && cl->msgs[i]->len == strlen(s) &&
           memcmp(cl->msgs[i]->data, s, strlen(s)) == 0;
}

/* Whether the i-th message cl received is {t: err, id, code: internal}. */
static int got_internal(const struct client *cl, size_t i, uint64_t id)
{
    if (i >= cl->n)
        return 0;
    msgpack_zone z;
    msgpack_object o;
    const char *why;
    uint64_t rid = 0;
    msgpack_zone_init(&z, 1024);
    int ok = codec_decode(cl->msgs[i]->data, cl->msgs[i]->len, &z, &o, &why) == 0 &&
             codec_str_eq(codec_get(&o, "t"), "err") && codec_get_uint(&o, "id", &rid) &&
             rid == id && codec_str_eq(codec_get(&o, "code"), "internal");
    msgpack_zone_destroy(&z);
    return ok;
}

/* An `ok` and its event wait for the commit of their change and leave in
 * creation order, per connection, across batches. */
static void test_held_until_durable(void)
{
    CHECK(fixture_start(0) == 0);
    struct participant member = {.role = ROLE_MEMBER};
    struct room *a = room_make("A");
    struct client *x = client_new(), *y = client_new(), *z = client_new();
    join(x, a, &member);
    join(y, a, &member);

    change(a, 10);
    send_ack(x, "ok1", 1, a);
    send_room(a, "ev1", x, false);
    send_conn(x, "after-ok1"); /* no record of its own: waits behind ok1 */
    /* z has joined no room: its ack about A holds what follows it. */
    send_ack(z, "z-ok", 2, a);
    send_conn(z, "z-next");
    CHECK(x->n == 0 && y->n == 0 && z->n == 0);
    CHECK(store_durable(app.store) < a->records_upto);

    /* Written, maybe committed by the writer: nothing leaves before the
     * loop has run the commit hook. */
    store_flush(app.store);
    usleep(20000);
    CHECK(x->n == 0 && y->n == 0 && z->n == 0);

    pump();
    CHECK(x->n == 2 && got(x, 0, "ok1") && got(x, 1, "after-ok1"));
    CHECK(y->n == 1 && got(y, 0, "ev1"));
    CHECK(z->n == 2 && got(z, 0, "z-ok") && got(z, 1, "z-next"));

    /* Two batches: the first commit releases its own entries only. */
    change(a, 10);
    send_ack(x, "ok2", 3, a);
    send_room(a, "ev2", x, false);
    uint64_t first = a->records_upto;
    store_flush(app.store); /* in flight */
    change(a, 10);
    send_ack(x, "ok3", 4, a);
    send_room(a, "ev3", x, false);
    send_conn(x, "after-ok3");
    CHECK(x->n == 2 && y->n == 1);
    pump_until(first);
    CHECK(x->n == 3 && got(x, 2, "ok2"));
    CHECK(y->n == 2 && got(y, 1, "ev2"));
    pump();
    CHECK(x->n == 5 && got(x, 3, "ok3") && got(x, 4, "after-ok3"));
    CHECK(y->n == 3 && got(y, 2, "ev3"));

    /* Nothing pending: a message leaves at once. */
    send_conn(x, "now");
    send_room(a, "ev-now", NULL, false);
    CHECK(x->n == 7 && got(x, 5, "now") && got(x, 6, "ev-now"));
    CHECK(y->n == 4 && got(y, 3, "ev-now"));

    client_free(x);
    client_free(y);
    client_free(z);
    fixture_stop();
}

/* Room-wide entries go to the connections that joined before they were
 * made, except the excluded one, and not to observers when for actors only. */
static void test_room_entries(void)
{
    CHECK(fixture_start(0) == 0);
    struct participant member = {.role = ROLE_MEMBER}, observer = {.role = ROLE_OBSERVER};
    struct room *b = room_make("B"), *other = room_make("other");
    struct client *p = client_new(), *o = client_new(), *late = client_new(), *out = client_new();
    join(p, b, &member);
    join(o, b, &observer);
    join(out, other, &member);

    change(b, 10);
    send_room(b, "ev1", NULL, false);
    send_room(b, "actors", NULL, true);
    send_room(b, "not-p", p, false);
    join(late, b, &member); /* after those three, before their commit */
    send_room(b, "ev2", NULL, false);
    CHECK(p->n == 0 && o->n == 0 && late->n == 0);
    pump();
    CHECK(p->n == 3 && got(p, 0, "ev1") && got(p, 1, "actors") && got(p, 2, "ev2"));
    CHECK(o->n == 3 && got(o, 0, "ev1") && got(o, 1, "not-p") && got(o, 2, "ev2"));
    CHECK(late->n == 1 && got(late, 0, "ev2"));
    CHECK(out->n == 0);

    client_free(p);
    client_free(o);
    client_free(late);
    client_free(out);
    fixture_stop();
}

/* A transaction over the size cap fails: the held acks about the failed
 * room become `err internal`, its events and the messages to its
 * connections are dropped; what is not about it leaves, in order; another
 * room's entries waiting for the next batch leave when that one commits. */
static void test_failed_commit(void)
{
    CHECK(fixture_start(1) == 0); /* --max-db-size 1 (MiB) */
    struct participant member = {.role = ROLE_MEMBER};
    struct room *f = room_make("F"), *g = room_make("G");
    struct client *f1 = client_new(), *f2 = client_new(), *g1 = client_new(), *g2 = client_new(),
                  *z = client_new();
    join(f1, f, &member);
    join(f2, f, &member);
    join(g1, g, &member);
    join(g2, g, &member);
    change(f, 10);
    change(g, 10);
    pump();

    /* The failing batch: F's change, 3 MiB over the cap. */
    change(f, 3 * 1024 * 1024);
    uint64_t failing = store_added(app.store);
    send_ack(f1, "okF", 10, f);
    send_room(f, "evF", f1, false);
    send_conn(f1, "toF1");
    send_ack(z, "okZ", 20, f); /* z made the change without joining F (room.create) */
    send_answer(z, "ansZ");    /* not about F: leaves, after z's error */
    send_conn(z, "toZ");
    store_flush(app.store); /* in flight */

    /* The next batch: G's changes, accumulating meanwhile. */
    change(g, 10);
    send_ack(g1, "okG1", 30, g);
    send_room(g, "evG1", g1, false);
    change(g, 10);
    send_ack(g1, "okG2", 31, g);
    send_room(g, "evG2", g1, false);
    CHECK(f1->n == 0 && f2->n == 0 && g1->n == 0 && g2->n == 0 && z->n == 0);

    pump_until(failing);
    CHECK(f1->n == 1 && got_internal(f1, 0, 10));
    CHECK(f2->n == 0);
    CHECK(z->n == 3 && got_internal(z, 0, 20) && got(z, 1, "ansZ") && got(z, 2, "toZ"));
    CHECK(g1->n == 0 && g2->n == 0);                       /* G's batch has not committed yet */
    CHECK(map_get(&app.rooms, "F", 1) == NULL && f->dead); /* evicted */
    CHECK(map_get(&app.rooms, "G", 1) == g && !g->dead);

    pump();
    CHECK(g1->n == 2 && got(g1, 0, "okG1") && got(g1, 1, "okG2"));
    CHECK(g2->n == 2 && got(g2, 0, "evG1") && got(g2, 1, "evG2"));
    CHECK(f1->n == 1 && f2->n == 0 && z->n == 3);

    client_free(f1);
    client_free(f2);
    client_free(g1);
    client_free(g2);
    client_free(z);
    fixture_stop();
}

/* outbox_free with entries pending drops every reference they hold. */
static void test_free_pending(void)
{
    CHECK(fixture_start(0) == 0);
    struct participant member = {.role = ROLE_MEMBER};
    struct room *r = room_make("R");
    struct client *a = client_new(), *b = client_new();
    join(a, r, &member);
    join(b, r, &member);
    uint32_t conn_refs = a->c->refs, room_refs = r->refs;
    struct frame *shared = text("shared");

    change(r, 10);
    outbox_to_conn(&app, a->c, shared);
    outbox_answer(&app, a->c, shared);
    outbox_ack(&app, a->c, shared, 1, r);
    outbox_to_room(&app, r, shared, a->c, false);
    CHECK(shared->refs == 5);
    CHECK(a->c->refs == conn_refs + 4 && r->refs == room_refs + 2);
    outbox_free(app.outbox);
    CHECK(shared->refs == 1);
    CHECK(a->c->refs == conn_refs && r->refs == room_refs);
    CHECK(a->n == 0 && b->n == 0);
    frame_unref(shared);

    CHECK(outbox_new(&app.outbox) == 0); /* for the hooks of what is pending */
    pump();
    client_free(a);
    client_free(b);
    fixture_stop();
}

int main(void)
{
    test_held_until_durable();
    test_room_entries();
    test_failed_commit();
    test_free_pending();
    fixture_done();
    return check_summary("test_outbox");
}
