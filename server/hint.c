#include "hint.h"

#include <string.h>

#include "app.h"
#include "backlog.h"
#include "clock.h"
#include "conn.h"
#include "errors.h"
#include "event.h"
#include "req.h"
#include "room.h"

_Static_assert(CONN_HINT_ITEM == ITEM_ID_MAX, "a hint holds an item id");

static const char *const WHAT_NAMES[] = {[HINT_EDITING] = "editing", [HINT_DRAGGING] = "dragging"};

static const char *what_name(int what)
{
    return what == HINT_EDITING || what == HINT_DRAGGING ? WHAT_NAMES[what] : NULL;
}

/* The op table has checked the value: nil or one of the names. */
static int what_parse(const msgpack_object *o)
{
    if (codec_str_eq(o, "editing"))
        return HINT_EDITING;
    if (codec_str_eq(o, "dragging"))
        return HINT_DRAGGING;
    return HINT_NONE;
}

/* Takes one hint from the connection's allowance: false when it has sent
 * HINT_RATE in the last second's worth of draining. */
static bool take(struct conn *c)
{
    struct conn_hint *h = &c->hint;
    uint64_t now = c->app->loop ? uv_now(c->app->loop) : 0;
    h->spent -= (double)(now - h->spent_at) * HINT_RATE / 1000.0;
    if (h->spent < 0)
        h->spent = 0;
    h->spent_at = now;
    if (h->spent + 1.0 > HINT_RATE)
        return false;
    h->spent += 1.0;
    return true;
}

static void unlink_hint(struct conn *c)
{
    struct conn_hint *h = &c->hint;
    if (h->what == HINT_NONE)
        return;
    list_remove(&h->link);
    h->what = HINT_NONE;
    h->item[0] = '\0';
}

/* Sets c's hint (what HINT_NONE: clears it). */
static void set_hint(struct room *r, struct conn *c, const char *item, int what)
{
    unlink_hint(c);
    if (what == HINT_NONE)
        return;
    struct conn_hint *h = &c->hint;
    snprintf(h->item, sizeof h->item, "%s", item);
    h->what = (uint8_t)what;
    list_push(&r->hinting, &h->link);
}

/* The notice {t: "hint", at, pid, item, what} about c's hint, to the room's
 * other connections (in a crowd room, those of non-observers only). */
static void notify(struct app *app, struct room *r, struct conn *c)
{
    struct codec_buf b;
    msgpack_packer pk;
    event_notice_begin(&b, &pk, "hint", clock_now_ms(), 3);
    codec_pack_kv_str(&pk, "pid", c->part->pid);
    codec_pack_kv_str(&pk, "item", c->hint.what ? c->hint.item : NULL);
    codec_pack_kv_str(&pk, "what", what_name(c->hint.what));
    event_notice_end(app, r, c, &b, room_crowded(r));
}

int hint_handle(struct req *q)
{
    struct conn *c = q->conn;
    struct room *r = q->room;
    const msgpack_object *item = codec_get(q->msg, "item"), *what = codec_get(q->msg, "what");
    if (!take(c))
        return req_fail(q, RF_ERATE_LIMITED,
                        "Too many hints: at most %d a second; send only the latest.", HINT_RATE);
    int w = what_parse(what);
    const struct item *it = NULL;
    if (item->type == MSGPACK_OBJECT_STR && w != HINT_NONE) {
        it = backlog_get(&r->backlog, item->via.str.ptr, item->via.str.size);
        if (!it)
            return req_fail(q, RF_ENOT_FOUND, "There is no item '%.*s' in this room.",
                            (int)item->via.str.size, item->via.str.ptr);
    }
    if (!it)
        w = HINT_NONE; /* item nil or what nil: a clear, which never fails */
    bool same = c->hint.what == w && (w == HINT_NONE || strcmp(c->hint.item, it->id) == 0);
    if (!same) {
        set_hint(r, c, it ? it->id : NULL, w);
        notify(q->app, r, c);
    }
    req_ok_unchanged(q); /* a hint is never sequenced: the same bare ok */
    return 0;
}

void hint_pack_room(const struct room *r, const struct conn *to, msgpack_packer *pk)
{
    size_t n = 0;
    bool none = room_crowded(r) && to->part && to->part->role == ROLE_OBSERVER;
    if (!none)
        list_each(l, &r->hinting) n += conn_of_hint(l) != to;
    msgpack_pack_array(pk, n);
    if (none)
        return;
    list_each(l, &r->hinting)
    {
        const struct conn *c = conn_of_hint(l);
        if (c == to)
            continue;
        msgpack_pack_map(pk, 3);
        codec_pack_kv_str(pk, "pid", c->part->pid);
        codec_pack_kv_str(pk, "item", c->hint.item);
        codec_pack_kv_str(pk, "what", what_name(c->hint.what));
    }
}

void hint_leave(struct conn *c, bool quiet)
{
    if (c->hint.what == HINT_NONE)
        return;
    unlink_hint(c);
    if (!quiet)
        notify(c->app, c->room, c);
}

void hint_drop_participant(struct app *app, struct room *r, const struct participant *p)
{
    list_each_safe(l, nx, &r->hinting)
    {
        struct conn *c = conn_of_hint(l);
        if (c->part == p) {
            unlink_hint(c);
            notify(app, r, c);
        }
    }
}

void hint_drop_item(struct room *r, const char *id)
{
    list_each_safe(l, nx, &r->hinting)
    {
        struct conn *c = conn_of_hint(l);
        if (strcmp(c->hint.item, id) == 0)
            unlink_hint(c);
    }
}
