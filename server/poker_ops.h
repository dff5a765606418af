/* Planning poker, what clients and the clock do: start a round, vote,
 * reveal (by hand, on the timer, or automatically once everyone online has
 * voted), accept an estimate, cancel, and the countdown timer. The model
 * (struct round) is round.h. */
#ifndef REFINE_POKER_OPS_H
#define REFINE_POKER_OPS_H

#include <stdint.h>

struct app;
struct req;
struct room;

int poker_ops_start(struct req *q);
int poker_ops_vote(struct req *q);
int poker_ops_reveal(struct req *q);
int poker_ops_accept(struct req *q);
int poker_ops_cancel(struct req *q);
int poker_ops_timer_start(struct req *q);
int poker_ops_timer_stop(struct req *q);

/* Every tick (100 ms): the room's timer ran out (reveal on timer). */
void poker_ops_on_tick(struct app *app, struct room *r, int64_t now);
/* A participant who may vote came, went or changed role: auto-reveal. */
void poker_ops_on_presence(struct app *app, struct room *r);

#endif
