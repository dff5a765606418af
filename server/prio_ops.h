/* Prioritization, what clients do (PROTOCOL.md "Prioritization"):
 * order.propose answers with the order a method gives the backlog, changing
 * nothing; order.apply (facilitator, owner) gives the open items that order
 * in one event, `order.applied`. The model is in prio.h. */
#ifndef REFINE_PRIO_OPS_H
#define REFINE_PRIO_OPS_H

struct req;

int prio_ops_propose(struct req *q);
int prio_ops_apply(struct req *q);

#endif
