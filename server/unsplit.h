/* item.unsplit: merging a split back (PROTOCOL.md "item.unsplit"). A split
 * leaves on its parent a record (backlog.h struct item_split: the split's
 * seq, the parent's status before it, the children's ids); the merge is
 * allowed while the split is untouched: every child still there, none changed
 * since the split (its seq is the split's), no poker round open on one and
 * no Kano survey of one. It removes the children and gives the parent its
 * status back, as one event `item.unsplit`. */
#ifndef REFINE_UNSPLIT_H
#define REFINE_UNSPLIT_H

#include <stddef.h>
#include <stdint.h>

struct item;
struct req;

int unsplit_handle(struct req *q);

/* Merges the split of `parent` back, or refuses (conflict, with a sentence
 * naming what changed) leaving the room as it was. `undo`: 0 for an
 * item.unsplit, else the seq of the split being undone (the event carries
 * `undo: seq`). Answers q and returns 0, or returns an error code. */
int unsplit_merge(struct req *q, struct item *parent, uint64_t undo);

/* Into why (n bytes): who changed `it` since, from its version (struct
 * item's by): "Ana changed 'Title'", "You changed 'Title'" (q's sender). */
void unsplit_who_changed(const struct req *q, const struct item *it, char *why, size_t n);

#endif
