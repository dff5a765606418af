/* DEEP health, what clients get (PROTOCOL.md "Backlog health"): the
 * `health` notice after an operation or a tick that changed it, and
 * room.update's health settings; the model is in health.h. */
#ifndef REFINE_HEALTH_OPS_H
#define REFINE_HEALTH_OPS_H

#include <msgpack.h>
#include <stdint.h>

struct app;
struct req;
struct room;

/* Sends the notice `health {at, health}` to the room's connections when its
 * health changed since the last one (scores, top or findings), with the
 * findings that changed: at most one a handled message, one a tick. */
void health_ops_flush(struct app *app, struct room *r);
/* The timer tick: items grown stale, then the notice if it changed. */
void health_ops_tick(struct app *app, struct room *r, int64_t now);

/* room.update: checks its health settings (capacity, size_limit,
 * stale_days: each at least 1). 0, or req_fail's code. */
int health_ops_check(struct req *q);
/* The health settings of q that differ from the room's, as a mask (bit i:
 * the i-th of capacity, size_limit, stale_days). */
unsigned health_ops_diff(struct req *q);
/* Sets them (mask from health_ops_diff) and re-evaluates the health. */
void health_ops_set(struct req *q, unsigned mask);

#endif
