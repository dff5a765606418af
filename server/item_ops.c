#include "item_ops.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "backlog.h"
#include "clock.h"
#include "errors.h"
#include "event.h"
#include "hint.h"
#include "log.h"
#include "ops.h"
#include "product_ops.h"
#include "req.h"
#include "room.h"
#include "round.h"
#include "store.h"
#include "undo_rec.h"

/* Refuses (too_large, with a sentence) a change that takes the room's item
 * state from `now` to `after` bytes past --max-room-bytes. */
static int check_budget(struct req *q, size_t now, size_t after)
{
    size_t max = q->app->cfg.max_room_bytes;
    if (after <= max || after <= now)
        return 0;
    return req_fail(q, RF_ETOO_LARGE,
                    "The room's backlog would pass %zu bytes, the most a room holds "
                    "(it has %zu; this change adds %zu). Shorten or remove items first.",
                    max, now, after - now);
}

/* Gives every item a fresh, evenly spaced key and announces it. */
static int rebalance(struct req *q)
{
    struct room *r = q->room;
    struct backlog *b = &r->backlog;
    char(*keys)[RANK_MAX + 1] = malloc((b->n ? b->n : 1) * sizeof *keys);
    if (!keys || rank_spread(b->n, keys)) {
        free(keys);
        return RF_ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        strcpy(b->v[i]->rank, keys[i]);
        if (backlog_save_item(q->app->store, r->id, b->v[i])) {
            free(keys);
            room_evict(q->app, r->id);
            return RF_ENOMEM;
        }
    }
    free(keys);
    log_info("room %s: rank keys rebalanced over %zu items", r->id, b->n);
    struct event ev;
    event_begin(&ev, r, "items.reranked", q->who, 1);
    codec_pack_str(&ev.pk, "ranks");
    msgpack_pack_map(&ev.pk, b->n);
    for (size_t i = 0; i < b->n; i++)
        codec_pack_kv_str(&ev.pk, b->v[i]->id, b->v[i]->rank);
    return event_commit(q->app, &ev, NULL);
}

/* Computes a rank for a new position: right after `prev` (NULL: at the top),
 * before the item that follows it (skipping `skip`). Rebalances first when
 * the key would grow too long. */
static int rank_for(struct req *q, const struct item *prev, const struct item *skip,
                    char out[RANK_MAX + 1])
{
    struct backlog *b = &q->room->backlog;
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t next = prev ? backlog_index_of(b, prev) + 1 : 0;
        if (next < b->n && b->v[next] == skip)
            next++;
        const char *lo = prev ? prev->rank : NULL;
        const char *hi = next < b->n ? b->v[next]->rank : NULL;
        if (rank_between(lo, hi, out, RANK_MAX + 1) == 0 && strlen(out) <= RANK_REBALANCE)
            return 0;
        if (attempt == 0) {
            int rc = rebalance(q);
            if (rc)
                return rc;
        }
    }
    log_error("room %s: no rank key even after rebalancing", q->room->id);
    return RF_EINTERNAL;
}

/* Resolves `after` of item.add / item.move: *prev is the item to go below,
 * NULL for the top; absent (for item.add) means the bottom. */
static int resolve_after(struct req *q, const struct item *moving, const struct item **prev)
{
    struct backlog *b = &q->room->backlog;
    const msgpack_object *after = codec_get(q->msg, "after");
    if (!after) {
        *prev = b->n ? b->v[b->n - 1] : NULL;
        return 0;
    }
    if (after->type == MSGPACK_OBJECT_NIL) {
        *prev = NULL;
        return 0;
    }
    *prev = backlog_get(b, after->via.str.ptr, after->via.str.size);
    if (!*prev)
        return req_fail(q, RF_ENOT_FOUND, "There is no item '%.*s' to place it after.",
                        (int)after->via.str.size, after->via.str.ptr);
    if (*prev == moving)
        return req_fail(q, RF_EBAD_REQUEST, "An item cannot be placed after itself.");
    return 0;
}

static struct item *get_item(struct req *q, const char *field)
{
    const msgpack_object *id = codec_get(q->msg, field);
    struct item *it = backlog_get(&q->room->backlog, id->via.str.ptr, id->via.str.size);
    if (!it)
        req_fail(q, RF_ENOT_FOUND, "There is no item '%.*s' in this room.", (int)id->via.str.size,
                 id->via.str.ptr);
    return it;
}

/* Marks it as changed by the event q is about to make (backlog_touch). */
static void touch(struct req *q, struct item *it)
{
    backlog_touch(it, q->room->seq + 1, q->who ? q->who->pid : NULL, clock_now_ms());
}

/* The `undo: seq` of an event that undoes a change (undo.h); nothing for an
 * ordinary one (undo 0). */
static void pack_undo(struct event *ev, uint64_t undo)
{
    if (undo)
        codec_pack_kv_u64(&ev->pk, "undo", undo);
}

/* Makes u (taken) the sender's undoable change, made by the event seq. */
static void undo_note(struct req *q, struct undo_rec *u, uint64_t seq)
{
    if (q->who)
        undo_rec_set(&q->who->undo, u, seq);
    else
        undo_rec_free(u);
}

/* Validates an item map: its fields, then the persona and outcomes it names. */
static int check_item_map(struct req *q, const msgpack_object *map, bool partial)
{
    int rc = ops_validate_fields(ops_item_fields, map, partial, true, q->why, sizeof q->why);
    return rc ? rc : product_check_item(q->room, map, q->why, sizeof q->why);
}

/* A new item from a client's map (validated here); not yet in the backlog. */
static struct item *new_item_from(struct req *q, const msgpack_object *map, int *rc)
{
    struct room *r = q->room;
    *rc = check_item_map(q, map, false);
    if (*rc)
        return NULL;
    char id[ITEM_ID_MAX];
    snprintf(id, sizeof id, "i%llu", (unsigned long long)r->next_item);
    struct item *it = backlog_item_new(id);
    if (!it || backlog_item_apply(it, map)) {
        backlog_item_free(it);
        *rc = RF_ENOMEM;
        return NULL;
    }
    it->updated_at = clock_now_ms();
    it->bytes = backlog_item_bytes(it);
    r->next_item++;
    return it;
}

int item_ops_add(struct req *q)
{
    struct room *r = q->room;
    const struct item *prev;
    int rc;
    if (r->backlog.n >= BACKLOG_MAX_ITEMS)
        return req_fail(q, RF_ETOO_LARGE, "The backlog has %d items, the most a room holds.",
                        BACKLOG_MAX_ITEMS);
    if ((rc = resolve_after(q, NULL, &prev)))
        return rc;
    struct item *it = new_item_from(q, codec_get(q->msg, "item"), &rc);
    if (!it)
        return rc;
    if ((rc = check_budget(q, r->backlog.bytes, r->backlog.bytes + it->bytes)) ||
        (rc = rank_for(q, prev, NULL, it->rank)) || (rc = backlog_insert(&r->backlog, it))) {
        backlog_item_free(it);
        r->next_item--; /* its id was not used */
        return rc;
    }
    r->backlog.bytes += it->bytes;
    touch(q, it);
    if (backlog_save_item(q->app->store, r->id, it) || room_save_meta(q->app, r)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct undo_rec *u = undo_rec_new(OP_ITEM_ADD, it, &r->backlog, NULL);
    struct event ev;
    event_begin(&ev, r, "item.added", q->who, 1);
    undo_note(q, u, ev.seq);
    codec_pack_str(&ev.pk, "item");
    backlog_item_pack(it, &ev.pk);
    uint64_t seq;
    if (event_commit(q->app, &ev, &seq) == 0)
        req_ok_seq_str(q, seq, "item", it->id);
    return 0;
}

int item_ops_restore(struct req *q, struct item *it, const struct item *prev, uint64_t undo)
{
    struct room *r = q->room;
    int rc;
    if (r->backlog.n >= BACKLOG_MAX_ITEMS)
        return req_fail(q, RF_ETOO_LARGE, "The backlog has %d items, the most a room holds.",
                        BACKLOG_MAX_ITEMS);
    if ((rc = check_budget(q, r->backlog.bytes, r->backlog.bytes + it->bytes)) ||
        (rc = rank_for(q, prev, NULL, it->rank)) || (rc = backlog_insert(&r->backlog, it)))
        return rc;
    r->backlog.bytes += it->bytes;
    touch(q, it);
    if (backlog_save_item(q->app->store, r->id, it)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "item.added", q->who, 1 + (undo != 0));
    codec_pack_str(&ev.pk, "item");
    backlog_item_pack(it, &ev.pk);
    pack_undo(&ev, undo);
    event_reply(q, &ev);
    return 0;
}

int item_ops_set_estimate(struct app *app, struct room *r, struct item *it, const char *estimate,
                          const struct participant *by, uint64_t *seq)
{
    struct ival *v = &it->f[ITEM_F_ESTIMATE];
    char *e = strdup(estimate);
    if (!e) { /* the caller's round.accepted is recorded already: drop both */
        room_evict(app, r->id);
        return RF_ENOMEM;
    }
    backlog_ival_free(v);
    v->type = IV_STR;
    v->u.s = e;
    backlog_account(&r->backlog, it);
    backlog_touch(it, r->seq + 1, by ? by->pid : NULL, clock_now_ms());
    if (backlog_save_item(app->store, r->id, it)) {
        room_evict(app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "item.updated", by, 2);
    codec_pack_kv_str(&ev.pk, "item", it->id);
    codec_pack_str(&ev.pk, "set");
    msgpack_pack_map(&ev.pk, 1);
    codec_pack_kv_str(&ev.pk, "estimate", e);
    return event_commit(app, &ev, seq);
}

int item_ops_update(struct req *q)
{
    struct item *it = get_item(q, "item");
    if (!it)
        return RF_ENOT_FOUND;
    const msgpack_object *set = codec_get(q->msg, "set");
    if (set->via.map.size == 0)
        return req_fail(q, RF_EBAD_REQUEST, "Field 'set' must hold at least one item field.");
    int rc = check_item_map(q, set, true);
    if (rc)
        return rc;
    return item_ops_set(q, it, set, 0);
}

int item_ops_set(struct req *q, struct item *it, const msgpack_object *set, uint64_t undo)
{
    struct room *r = q->room;
    int rc;
    if (backlog_item_has(it, set)) { /* the values it has: nothing changes */
        req_ok_unchanged(q);
        return 0;
    }
    size_t after;
    if ((rc = backlog_item_bytes_with(it, set, &after)) ||
        (rc = check_budget(q, r->backlog.bytes, r->backlog.bytes - it->bytes + after)))
        return rc;
    struct undo_rec *u = undo ? NULL : undo_rec_new(OP_ITEM_UPDATE, it, &r->backlog, set);
    if ((rc = backlog_item_apply(it, set))) {
        undo_rec_free(u);
        return rc;
    }
    backlog_account(&r->backlog, it);
    touch(q, it);
    if (backlog_save_item(q->app->store, r->id, it)) {
        undo_rec_free(u);
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "item.updated", q->who, 2 + (undo != 0));
    if (!undo)
        undo_note(q, u, ev.seq);
    codec_pack_kv_str(&ev.pk, "item", it->id);
    codec_pack_str(&ev.pk, "set");
    codec_pack_obj(&ev.pk, set);
    pack_undo(&ev, undo);
    event_reply(q, &ev);
    return 0;
}

int item_ops_move(struct req *q)
{
    struct item *it = get_item(q, "item");
    const struct item *prev;
    int rc;
    if (!it)
        return RF_ENOT_FOUND;
    if ((rc = resolve_after(q, it, &prev)))
        return rc;
    return item_ops_place(q, it, prev, 0);
}

int item_ops_place(struct req *q, struct item *it, const struct item *prev, uint64_t undo)
{
    struct room *r = q->room;
    char rank[RANK_MAX + 1];
    int rc;
    size_t at = backlog_index_of(&r->backlog, it);
    if (prev == (at ? r->backlog.v[at - 1] : NULL)) { /* already there */
        req_ok_unchanged(q);
        return 0;
    }
    if ((rc = rank_for(q, prev, it, rank)))
        return rc;
    struct undo_rec *u = undo ? NULL : undo_rec_new(OP_ITEM_MOVE, it, &r->backlog, NULL);
    backlog_move(&r->backlog, it, rank);
    touch(q, it);
    if (backlog_save_item(q->app->store, r->id, it)) {
        undo_rec_free(u);
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "item.moved", q->who, 3 + (undo != 0));
    if (!undo)
        undo_note(q, u, ev.seq);
    codec_pack_kv_str(&ev.pk, "item", it->id);
    codec_pack_kv_str(&ev.pk, "after", prev ? prev->id : NULL);
    codec_pack_kv_str(&ev.pk, "rank", it->rank);
    pack_undo(&ev, undo);
    event_reply(q, &ev);
    return 0;
}

int item_ops_remove(struct req *q)
{
    struct item *it = get_item(q, "item");
    if (!it)
        return RF_ENOT_FOUND;
    return item_ops_take(q, it, 0);
}

int item_ops_take(struct req *q, struct item *it, uint64_t undo)
{
    struct room *r = q->room;
    if (store_del_item(q->app->store, r->id, it->id))
        return RF_ENOMEM;
    /* Its own removal keeps it for an undo (undo.h): the record takes it. */
    struct undo_rec *u = undo ? NULL : undo_rec_new(OP_ITEM_REMOVE, it, &r->backlog, NULL);
    backlog_remove_at(&r->backlog, backlog_index_of(&r->backlog, it));
    r->backlog.bytes -= it->bytes;
    if (r->focus && strcmp(r->focus, it->id) == 0) {
        free(r->focus);
        r->focus = NULL;
        if (room_save_meta(q->app, r)) {
            undo_rec_free(u);
            backlog_item_free(it);
            room_evict(q->app, r->id);
            return RF_ENOMEM;
        }
    }
    hint_drop_item(r, it->id);
    struct event ev;
    event_begin(&ev, r, "item.removed", q->who, 1 + (undo != 0));
    codec_pack_kv_str(&ev.pk, "item", it->id);
    pack_undo(&ev, undo);
    if (u)
        undo_rec_keep(u, it);
    else
        backlog_item_free(it);
    if (!undo)
        undo_note(q, u, ev.seq);
    event_reply(q, &ev);
    return 0;
}

/* A child of a split takes the parent's persona (its text and its
 * reference), acceptance criteria, notes, outcomes and story-map cell (step
 * and slice, which a child's map cannot give) unless its own map (m) gives
 * them. */
static int inherit(struct item *kid, const struct item *parent, const msgpack_object *m)
{
    static const enum item_field INHERITED[] = {ITEM_F_PERSONA,    ITEM_F_ACCEPTANCE, ITEM_F_NOTES,
                                                ITEM_F_PERSONA_ID, ITEM_F_OUTCOMES,   ITEM_F_STEP,
                                                ITEM_F_SLICE};
    for (size_t i = 0; i < sizeof INHERITED / sizeof *INHERITED; i++) {
        enum item_field f = INHERITED[i];
        if (codec_get(m, ops_item_fields[f].name))
            continue;
        backlog_ival_free(&kid->f[f]);
        if (backlog_ival_copy(&kid->f[f], &parent->f[f]))
            return RF_ENOMEM;
    }
    kid->bytes = backlog_item_bytes(kid);
    return 0;
}

int item_ops_split(struct req *q)
{
    struct room *r = q->room;
    struct item *parent = get_item(q, "item");
    const msgpack_object *children = codec_get(q->msg, "children");
    const msgpack_object *pattern = codec_get(q->msg, "pattern");
    uint32_t n = children->via.array.size;
    int rc = 0;
    if (!parent)
        return RF_ENOT_FOUND;
    if (parent->f[ITEM_F_STATUS].type == IV_STR &&
        strcmp(parent->f[ITEM_F_STATUS].u.s, "split") == 0)
        return req_fail(q, RF_ECONFLICT, "This item has been split already; split its children.");
    if (r->backlog.n + n > BACKLOG_MAX_ITEMS)
        return req_fail(q, RF_ETOO_LARGE, "The backlog would pass %d items, the most a room holds.",
                        BACKLOG_MAX_ITEMS);
    /* Validate every child before changing anything: all or nothing. */
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = check_item_map(q, &children->via.array.ptr[i], false))) {
            size_t len = strlen(q->why);
            snprintf(q->why + len, sizeof q->why - len, " (child %u)", i + 1);
            return rc;
        }
    }
    struct item **kids = calloc(n, sizeof *kids);
    if (!kids)
        return RF_ENOMEM;
    uint64_t first_id = r->next_item;
    for (uint32_t i = 0; i < n && !rc; i++) {
        kids[i] = new_item_from(q, &children->via.array.ptr[i], &rc);
        if (kids[i] && !(kids[i]->parent = strdup(parent->id)))
            rc = RF_ENOMEM;
        if (kids[i] && !rc)
            rc = inherit(kids[i], parent, &children->via.array.ptr[i]);
    }
    /* The focus on the parent moves to the first child; an open round on the
     * parent is closed by the split (cancelled, named in the event). */
    struct round *closed = room_current_round(r);
    if (closed && strcmp(closed->item, parent->id) != 0)
        closed = NULL;
    bool refocus = r->focus && strcmp(r->focus, parent->id) == 0;
    char *focus = NULL;
    if (!rc && refocus && !(focus = strdup(kids[0]->id)))
        rc = RF_ENOMEM;
    /* What item.unsplit will need: the status before, the children's ids. */
    const struct ival *was = &parent->f[ITEM_F_STATUS];
    struct item_split *sp = rc ? NULL : calloc(1, sizeof *sp);
    if (!rc && (!sp || !(sp->kids = calloc(n, sizeof *sp->kids)) ||
                !(sp->was = strdup(was->type == IV_STR ? was->u.s : "draft"))))
        rc = RF_ENOMEM;
    /* The children, and the parent's status becoming "split". */
    size_t grow = 0;
    char word[] = "split";
    const struct ival split = {IV_STR, {.s = word}};
    for (uint32_t i = 0; i < n && !rc; i++)
        grow += kids[i]->bytes;
    if (!rc)
        rc = check_budget(q, r->backlog.bytes,
                          r->backlog.bytes + grow + backlog_ival_bytes(&split) -
                              backlog_ival_bytes(&parent->f[ITEM_F_STATUS]));
    /* Ranks: between the parent and the item after it, in the given order. */
    const struct item *prev = parent;
    for (uint32_t i = 0; i < n && !rc; i++) {
        if (!(rc = rank_for(q, prev, NULL, kids[i]->rank)))
            rc = backlog_insert(&r->backlog, kids[i]);
        if (!rc)
            prev = kids[i];
        else
            break;
    }
    if (rc) {
        for (uint32_t i = 0; i < n; i++) {
            if (kids[i] && backlog_get(&r->backlog, kids[i]->id, strlen(kids[i]->id)))
                backlog_remove_at(&r->backlog, backlog_index_of(&r->backlog, kids[i]));
            backlog_item_free(kids[i]);
        }
        free(kids);
        free(focus);
        backlog_split_free(sp);
        r->next_item = first_id;
        return rc;
    }
    struct undo_rec *u = undo_rec_new(OP_ITEM_SPLIT, parent, &r->backlog, NULL);
    if (refocus) {
        free(r->focus);
        r->focus = focus;
    }
    if (closed)
        closed->state = ROUND_CANCELLED;
    sp->seq = r->seq + 1;
    sp->n = n;
    for (uint32_t i = 0; i < n; i++)
        strcpy(sp->kids[i], kids[i]->id);
    backlog_split_free(parent->split);
    parent->split = sp;
    struct ival *status = &parent->f[ITEM_F_STATUS];
    backlog_ival_free(status);
    status->type = IV_STR;
    status->u.s = strdup("split");
    if (status->u.s)
        backlog_account(&r->backlog, parent);
    r->backlog.bytes += grow;
    touch(q, parent);
    for (uint32_t i = 0; i < n; i++)
        touch(q, kids[i]);
    int bad = !status->u.s || backlog_save_item(q->app->store, r->id, parent) ||
              room_save_meta(q->app, r);
    for (uint32_t i = 0; i < n && !bad; i++)
        bad = backlog_save_item(q->app->store, r->id, kids[i]);
    if (!bad && closed)
        bad = round_save(q->app->store, r->id, closed);
    if (bad) {
        undo_rec_free(u);
        free(kids);
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    hint_drop_item(r, parent->id);
    struct event ev;
    event_begin(&ev, r, "item.split", q->who, 5);
    undo_note(q, u, ev.seq);
    codec_pack_kv_str(&ev.pk, "item", parent->id);
    codec_pack_str(&ev.pk, "children");
    msgpack_pack_array(&ev.pk, n);
    for (uint32_t i = 0; i < n; i++)
        backlog_item_pack(kids[i], &ev.pk);
    codec_pack_str(&ev.pk, "pattern");
    if (pattern)
        codec_pack_obj(&ev.pk, pattern);
    else
        msgpack_pack_nil(&ev.pk);
    codec_pack_str(&ev.pk, "round");
    if (closed)
        codec_pack_str(&ev.pk, closed->id);
    else
        msgpack_pack_nil(&ev.pk);
    codec_pack_str(&ev.pk, "focus");
    if (r->focus)
        codec_pack_str(&ev.pk, r->focus);
    else
        msgpack_pack_nil(&ev.pk);
    free(kids);
    event_reply(q, &ev);
    return 0;
}

int item_ops_focus(struct req *q)
{
    struct room *r = q->room;
    const msgpack_object *id = codec_get(q->msg, "item");
    char *focus = NULL;
    if (id->type == MSGPACK_OBJECT_STR) {
        struct item *it = get_item(q, "item");
        if (!it)
            return RF_ENOT_FOUND;
        if (r->focus && strcmp(r->focus, it->id) == 0) { /* already focused */
            req_ok_unchanged(q);
            return 0;
        }
        if (!(focus = strdup(it->id)))
            return RF_ENOMEM;
    } else if (!r->focus) {
        req_ok_unchanged(q);
        return 0;
    }
    free(r->focus);
    r->focus = focus;
    if (room_save_meta(q->app, r)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "focus", q->who, 1);
    codec_pack_kv_str(&ev.pk, "item", focus);
    event_reply(q, &ev);
    return 0;
}
