/* The operations clients send on a room's backlog (item.add, item.update,
 * item.move, item.remove, item.split, focus), on the model of backlog.h.
 * dispatch.c calls the handlers through the operation table (req.h). */
#ifndef REFINE_ITEM_OPS_H
#define REFINE_ITEM_OPS_H

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

/* Sets the item's estimate (an accepted poker round) and broadcasts
 * item.updated, its seq into *seq. Returns 0, or RF_ENOMEM when it could not
 * be recorded (the room is then evicted). estimate is borrowed. */
int item_ops_set_estimate(struct app *app, struct room *r, struct item *it, const char *estimate,
                          const struct participant *by, uint64_t *seq);

#endif
