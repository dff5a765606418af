#include "undo.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "item_ops.h"
#include "req.h"
#include "room.h"
#include "storymap_ops.h"
#include "undo_rec.h"
#include "unsplit.h"

/* ---- the inverses ------------------------------------------------------ */

/* Where u's item was: below u->prev when that item is still there (not
 * `self`), at the top when it was at the top, else where its rank sorts. */
static const struct item *place_of(const struct req *q, const struct undo_rec *u,
                                   const struct item *self)
{
    const struct backlog *b = &q->room->backlog;
    if (!u->prev[0])
        return NULL;
    const struct item *prev = backlog_get(b, u->prev, strlen(u->prev));
    if (prev && prev != self)
        return prev;
    size_t lo = 0, hi = b->n; /* the first item ranked at or after u->rank */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(b->v[mid]->rank, u->rank) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    while (lo > 0 && b->v[lo - 1] == self)
        lo--;
    return lo ? b->v[lo - 1] : NULL;
}

static int undo_add(struct req *q, struct undo_rec *u, struct item *it)
{
    return item_ops_take(q, it, u->seq);
}

/* Sets the fields back to the values of u's image. */
static int undo_update(struct req *q, struct undo_rec *u, struct item *it)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_zone z;
    msgpack_object set;
    size_t off = 0;
    uint32_t n = 0;
    for (int f = 0; f < ITEM_F__COUNT; f++)
        n += (u->mask >> f) & 1u;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_zone_init(&z, 1024);
    msgpack_pack_map(&pk, n);
    for (int f = 0; f < ITEM_F__COUNT; f++) {
        if (!(u->mask & (1u << f)))
            continue;
        codec_pack_str(&pk, ops_item_fields[f].name);
        backlog_ival_pack(&u->image->f[f], &pk);
    }
    int rc = RF_ENOMEM;
    if (sb.data && msgpack_unpack(sb.data, sb.size, &off, &z, &set) == MSGPACK_UNPACK_SUCCESS)
        rc = item_ops_set(q, it, &set, u->seq);
    msgpack_zone_destroy(&z);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static int undo_move(struct req *q, struct undo_rec *u, struct item *it)
{
    return item_ops_place(q, it, place_of(q, u, it), u->seq);
}

static int undo_remove(struct req *q, struct undo_rec *u, struct item *it)
{
    (void)it; /* gone: the image is the item */
    int rc = item_ops_restore(q, u->image, place_of(q, u, NULL), u->seq);
    if (rc == 0)
        u->image = NULL; /* taken by the backlog */
    return rc;
}

static int undo_place(struct req *q, struct undo_rec *u, struct item *it)
{
    return storymap_ops_place_back(q, it, u->image, u->seq);
}

static int undo_split(struct req *q, struct undo_rec *u, struct item *it)
{
    return unsplit_merge(q, it, u->seq);
}

/* The undoable ops: what to call the change in a sentence, and its inverse
 * (given the record and the item, which still has the record's version; NULL
 * for a removal). An inverse answers q and returns 0, or fails leaving the
 * room, and the record, as they were. */
struct undo_kind {
    const char *change;
    int (*apply)(struct req *q, struct undo_rec *u, struct item *it);
};
static const struct undo_kind KINDS[OP__COUNT] = {
    [OP_ITEM_ADD] = {"addition", undo_add},  [OP_ITEM_UPDATE] = {"edit", undo_update},
    [OP_ITEM_MOVE] = {"move", undo_move},    [OP_ITEM_REMOVE] = {"removal", undo_remove},
    [OP_ITEM_SPLIT] = {"split", undo_split}, [OP_MAP_PLACE] = {"placement", undo_place},
};

int undo_handle(struct req *q)
{
    struct participant *p = q->who;
    struct undo_rec *u = p->undo;
    uint64_t want = 0;
    bool has_seq = codec_get_uint(q->msg, "seq", &want);
    if (!u || !KINDS[u->op].apply)
        return req_fail(q, RF_ECONFLICT,
                        "You have nothing to undo: no change of yours to the backlog since you "
                        "joined, or your last one was undone already.");
    const struct undo_kind *k = &KINDS[u->op];
    if (has_seq && want != u->seq)
        return req_fail(q, RF_ECONFLICT,
                        "Your last change that can be undone is #%llu, not #%llu; nothing was "
                        "undone.",
                        (unsigned long long)u->seq, (unsigned long long)want);
    if (!ops_allows(ops_get(u->op), p->role))
        return req_fail(q, RF_EFORBIDDEN, "As %s you may no longer undo your %s.",
                        role_name(p->role), k->change);
    struct item *it = backlog_get(&q->room->backlog, u->item, strlen(u->item));
    if (u->op != OP_ITEM_REMOVE) {
        if (!it)
            return req_fail(q, RF_ECONFLICT,
                            "The item of your %s has been removed since, so it cannot be undone.",
                            k->change);
        if (it->seq != u->seq) {
            char who[160];
            unsplit_who_changed(q, it, who, sizeof who);
            return req_fail(q, RF_ECONFLICT, "%s after your %s, so it cannot be undone.", who,
                            k->change);
        }
    }
    int rc = k->apply(q, u, it);
    if (rc)
        return rc;
    /* Undone: nothing left to undo (an undo is not undone; there is no redo). */
    if (p->undo == u) {
        p->undo = NULL;
        undo_rec_free(u);
    }
    return 0;
}
