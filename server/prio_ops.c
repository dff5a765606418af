#include "prio_ops.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "clock.h"
#include "codec.h"
#include "errors.h"
#include "event.h"
#include "log.h"
#include "prio.h"
#include "req.h"
#include "room.h"

int prio_ops_propose(struct req *q)
{
    const struct backlog *b = &q->room->backlog;
    int m = prio_method_parse(codec_get(q->msg, "method"));
    struct prio_order o;
    char base[PRIO_BASE_LEN + 1];
    if (m < 0) /* the op table's choices refuse it first */
        return req_fail(q, RF_EBAD_REQUEST, "A method is value_effort, wsjf or moscow_value.");
    if (prio_propose(b, (enum prio_method)m, &o))
        return RF_ENOMEM;
    prio_base(b, base);
    struct codec_buf buf;
    msgpack_packer pk;
    req_ok_begin(q, &buf, &pk, 2 + PRIO_PACK_FIELDS);
    codec_pack_kv_str(&pk, "method", prio_method_name((enum prio_method)m));
    codec_pack_kv_str(&pk, "base", base);
    prio_pack(b, &o, &pk);
    req_ok_end(q, &buf);
    prio_order_free(&o);
    return 0;
}

/* What order.apply works on, all allocated before anything changes. */
struct apply {
    struct item **now;          /* the open items in their current order */
    struct item **to;           /* ... in the new one */
    size_t n;                   /* how many open items */
    size_t *slot;               /* backlog index -> its place among the open items, or SIZE_MAX */
    struct item **full;         /* the whole backlog in its new order */
    char (*rank)[RANK_MAX + 1]; /* full[i]'s new rank */
    bool *moved;                /* whether full[i]'s rank changes */
};

static void apply_free(struct apply *a)
{
    free(a->now);
    free(a->to);
    free(a->slot);
    free(a->full);
    free(a->rank);
    free(a->moved);
}

static int apply_alloc(const struct backlog *b, struct apply *a)
{
    size_t n = b->n ? b->n : 1;
    memset(a, 0, sizeof *a);
    a->now = calloc(n, sizeof *a->now);
    a->to = calloc(n, sizeof *a->to);
    a->slot = calloc(n, sizeof *a->slot);
    a->full = calloc(n, sizeof *a->full);
    a->rank = calloc(n, sizeof *a->rank);
    a->moved = calloc(n, sizeof *a->moved);
    if (!a->now || !a->to || !a->slot || !a->full || !a->rank || !a->moved) {
        apply_free(a);
        return RF_ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        a->slot[i] = SIZE_MAX;
        if (prio_is_open(b->v[i])) {
            a->slot[i] = a->n;
            a->now[a->n++] = b->v[i];
        }
    }
    return 0;
}

/* a->to from the client's list of ids: every open item once, nothing else. */
static int order_from_list(struct req *q, const msgpack_object *list, struct apply *a)
{
    const struct backlog *b = &q->room->backlog;
    uint32_t n = list->via.array.size;
    bool *seen = calloc(a->n ? a->n : 1, sizeof *seen);
    int rc = seen ? 0 : RF_ENOMEM;
    for (uint32_t i = 0; i < n && !rc; i++) {
        const msgpack_object *id = &list->via.array.ptr[i];
        struct item *it = backlog_get(b, id->via.str.ptr, id->via.str.size);
        if (!it) {
            rc = req_fail(q, RF_ENOT_FOUND, "There is no item '%.*s' in this room (order[%u]).",
                          (int)id->via.str.size, id->via.str.ptr, i);
            break;
        }
        size_t k = a->slot[backlog_index_of(b, it)];
        if (k == SIZE_MAX)
            rc = req_fail(q, RF_EBAD_REQUEST,
                          "Item %s is %s: split and done items keep their place; leave it out "
                          "of the order.",
                          it->id, it->f[ITEM_F_STATUS].u.s);
        else if (seen[k])
            rc = req_fail(q, RF_EBAD_REQUEST, "Item %s is in the order twice.", it->id);
        else if (i >= a->n) /* cannot happen: more distinct open items than there are */
            rc = RF_EINTERNAL;
        else
            a->to[i] = it;
        if (!rc)
            seen[k] = true;
    }
    for (size_t k = 0; k < a->n && !rc; k++)
        if (!seen[k])
            rc = req_fail(q, RF_EBAD_REQUEST,
                          "The order names %u of the %zu open items; item %s is missing. Give "
                          "every open item once.",
                          n, a->n, a->now[k]->id);
    free(seen);
    return rc;
}

/* a->to from the proposal of a method. */
static int order_from_method(struct req *q, const msgpack_object *method, struct apply *a)
{
    struct prio_order o;
    int m = prio_method_parse(method);
    if (m < 0)
        return req_fail(q, RF_EBAD_REQUEST, "A method is value_effort, wsjf or moscow_value.");
    if (prio_propose(&q->room->backlog, (enum prio_method)m, &o))
        return RF_ENOMEM;
    for (size_t i = 0; i < o.n; i++)
        a->to[i] = o.v[i].it;
    prio_order_free(&o);
    return 0;
}

/* a->full and a->rank: the open items take the ranks the open items have now,
 * in the new order (split and done items keep theirs); when those ranks are
 * not strictly increasing (a database from before unique ranks), every item
 * gets a fresh, evenly spaced key. */
static int plan_ranks(const struct backlog *b, struct apply *a)
{
    bool strict = true;
    for (size_t k = 1; k < a->n && strict; k++)
        strict = strcmp(a->now[k - 1]->rank, a->now[k]->rank) < 0;
    for (size_t i = 0; i < b->n; i++) {
        size_t k = a->slot[i];
        a->full[i] = k == SIZE_MAX ? b->v[i] : a->to[k];
        strcpy(a->rank[i], b->v[i]->rank); /* the place's rank */
    }
    return strict ? 0 : rank_spread(b->n, a->rank) ? RF_ENOMEM : 0;
}

int prio_ops_apply(struct req *q)
{
    struct room *r = q->room;
    struct backlog *b = &r->backlog;
    const msgpack_object *base = codec_get(q->msg, "base");
    const msgpack_object *method = codec_get(q->msg, "method");
    const msgpack_object *list = codec_get(q->msg, "order");
    char now[PRIO_BASE_LEN + 1];
    struct apply a;
    int rc;
    if (!method == !list)
        return req_fail(q, RF_EBAD_REQUEST,
                        "Give the order to apply as 'method' (the proposal of that method) or as "
                        "'order' (every open item's id), one of the two.");
    prio_base(b, now);
    if (!codec_str_eq(base, now))
        return req_fail(q, RF_ECONFLICT,
                        "The backlog has changed since this order was proposed (base %.*s, now "
                        "%s); propose it again.",
                        (int)base->via.str.size, base->via.str.ptr, now);
    if ((rc = apply_alloc(b, &a)))
        return rc;
    rc = list ? order_from_list(q, list, &a) : order_from_method(q, method, &a);
    if (!rc && (rc = plan_ranks(b, &a)) == 0 && memcmp(a.to, a.now, a.n * sizeof *a.to) == 0) {
        req_ok_unchanged(q); /* the order it has */
        apply_free(&a);
        return 0;
    }
    if (rc) {
        apply_free(&a);
        return rc;
    }
    size_t changed = 0;
    for (size_t i = 0; i < b->n; i++)
        changed += a.moved[i] = strcmp(a.full[i]->rank, a.rank[i]) != 0;
    /* Nothing can fail from here on but the store (which evicts the room). */
    backlog_reorder(b, a.full, (const char(*)[RANK_MAX + 1]) a.rank);
    int64_t at = clock_now_ms();
    for (size_t i = 0; i < b->n; i++) {
        struct item *it = a.full[i];
        if (a.moved[i]) /* a new rank is a change to the item (undo, unsplit) */
            backlog_touch(it, r->seq + 1, q->who ? q->who->pid : NULL, at);
        if (a.moved[i] && backlog_save_item(q->app->store, r->id, it)) {
            apply_free(&a);
            room_evict(q->app, r->id);
            return RF_ENOMEM;
        }
    }
    log_info("room %s: order applied (%s), %zu of %zu items moved", r->id,
             method ? "a method's proposal" : "a given order", changed, b->n);
    struct event ev;
    event_begin(&ev, r, "order.applied", q->who, 2);
    codec_pack_str(&ev.pk, "method");
    if (method)
        codec_pack_obj(&ev.pk, method);
    else
        msgpack_pack_nil(&ev.pk);
    codec_pack_str(&ev.pk, "ranks");
    msgpack_pack_map(&ev.pk, changed);
    for (size_t i = 0; i < b->n; i++)
        if (a.moved[i])
            codec_pack_kv_str(&ev.pk, b->v[i]->id, b->v[i]->rank);
    apply_free(&a);
    event_reply(q, &ev);
    return 0;
}
