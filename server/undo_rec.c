#include "undo_rec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

_Static_assert(ITEM_F__COUNT <= 32, "undo_rec.mask holds a bit per item field");

struct undo_rec *undo_rec_new(enum op_id op, const struct item *it, const struct backlog *b,
                              const msgpack_object *set)
{
    struct undo_rec *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->op = op;
    snprintf(u->item, sizeof u->item, "%s", it->id);
    snprintf(u->rank, sizeof u->rank, "%s", it->rank);
    size_t at = backlog_index_of(b, it);
    if (at > 0 && at < b->n)
        snprintf(u->prev, sizeof u->prev, "%s", b->v[at - 1]->id);
    if (!set)
        return u;
    if (!(u->image = backlog_item_new(it->id)))
        goto fail;
    for (uint32_t i = 0; i < set->via.map.size; i++) {
        const msgpack_object *k = &set->via.map.ptr[i].key;
        for (int f = 0; f < ITEM_F__COUNT; f++) {
            if (k->type != MSGPACK_OBJECT_STR || !codec_str_eq(k, ops_item_fields[f].name) ||
                (u->mask & (1u << f)))
                continue;
            backlog_ival_free(&u->image->f[f]);
            if (backlog_ival_copy(&u->image->f[f], &it->f[f]))
                goto fail;
            u->mask |= 1u << f;
        }
    }
    return u;
fail:
    undo_rec_free(u);
    return NULL;
}

void undo_rec_free(struct undo_rec *u)
{
    if (!u)
        return;
    backlog_item_free(u->image);
    free(u);
}

void undo_rec_keep(struct undo_rec *u, struct item *removed)
{
    backlog_item_free(u->image);
    u->image = removed;
}

void undo_rec_set(struct undo_rec **slot, struct undo_rec *u, uint64_t seq)
{
    undo_rec_free(*slot);
    if (u)
        u->seq = seq;
    *slot = u;
}
