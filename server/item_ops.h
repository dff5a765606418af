/* The operations clients send on a room's backlog (item.add, item.update,
 * item.move, item.remove, item.split, focus), on the model of backlog.h.
 * dispatch.c calls the handlers through the operation table (req.h). */
#ifndef REFINE_ITEM_OPS_H
#define REFINE_ITEM_OPS_H

#include <msgpack.h>
#include <stdint.h>

struct app;
struct item;
struct participant;
struct req;
struct room;

int item_ops_add(struct req *q);
int item_ops_update(struct req *q);
int item_ops_move(struct req *q);
int item_ops_remove(struct req *q);
int item_ops_split(struct req *q);
int item_ops_focus(struct req *q);

/* The changes of item.update, item.move, item.remove on an item already
 * found, with their input validated, shared with undo (undo.h): `undo` is 0
 * for the sender's own change (its undo is noted), else the seq of the change
 * being undone (the event then carries `undo: seq`). Each answers q (ok, or
 * ok without seq when nothing changes) and returns 0, or fails with the room
 * as it was. */
int item_ops_set(struct req *q, struct item *it, const msgpack_object *set, uint64_t undo);
int item_ops_place(struct req *q, struct item *it, const struct item *prev, uint64_t undo);
int item_ops_take(struct req *q, struct item *it, uint64_t undo);
/* Puts back `it` (taken on success; not in the backlog, its id unused since)
 * below prev (NULL: at the top) as an undo of its removal: item.added. */
int item_ops_restore(struct req *q, struct item *it, const struct item *prev, uint64_t undo);

/* Sets the item's estimate (an accepted poker round) and broadcasts
 * item.updated, its seq into *seq. Returns 0, or RF_ENOMEM when it could not
 * be recorded (the room is then evicted). estimate is borrowed. */
int item_ops_set_estimate(struct app *app, struct room *r, struct item *it, const char *estimate,
                          const struct participant *by, uint64_t *seq);

#endif
