/* The undo record of a participant's last undoable change (undo.h has the
 * mechanism and the `undo` op): what the change touched, the version (seq)
 * it gave it, and the before-image to invert it. Made by the handlers of the
 * undoable ops; a participant owns theirs (participant.undo). */
#ifndef REFINE_UNDO_REC_H
#define REFINE_UNDO_REC_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "backlog.h"
#include "ops.h"

struct undo_rec {
    uint64_t seq;            /* the change's seq: the version it gave the item */
    enum op_id op;           /* the op that made it */
    char item[ITEM_ID_MAX];  /* the item it changed (a split: the parent) */
    char prev[ITEM_ID_MAX];  /* move, remove: the item it was below ("": the top) */
    char rank[RANK_MAX + 1]; /* ... and its rank then (when prev is gone since) */
    struct item *image;      /* update: the values before of the fields set (mask);
                                remove: the item removed */
    uint32_t mask;           /* update: the item fields it set, 1 << enum item_field */
};

/* A record of the change op is about to make to `it` (in b), with its
 * before-image (update: the values of the fields of `set`), or NULL when out
 * of memory (the change then is not undoable). */
struct undo_rec *undo_rec_new(enum op_id op, const struct item *it, const struct backlog *b,
                              const msgpack_object *set);
/* NULL is a no-op. */
void undo_rec_free(struct undo_rec *u);
/* A removal's record takes the removed item (its image). */
void undo_rec_keep(struct undo_rec *u, struct item *removed);
/* Makes u (taken; NULL: none, e.g. out of memory) the record in *slot (a
 * participant's), made by the event `seq`; frees the one before. */
void undo_rec_set(struct undo_rec **slot, struct undo_rec *u, uint64_t seq);

#endif
