/* Story map, what clients do (PROTOCOL.md "Story map"): add, update (name,
 * capacity), move and remove activities, steps and release slices, and place
 * items on a (step, slice) cell; the model is in storymap.h. Each change is
 * one event; a failed handler leaves the room as it was. */
#ifndef REFINE_STORYMAP_OPS_H
#define REFINE_STORYMAP_OPS_H

#include <stdint.h>

struct item;
struct req;

int storymap_ops_add(struct req *q);
int storymap_ops_update(struct req *q);
int storymap_ops_move(struct req *q);
int storymap_ops_remove(struct req *q);
int storymap_ops_place(struct req *q);
/* The undo of a map.place (undo.c): puts it back where image (its step and
 * slice) says, as a `map.placed` with `undo: undo`; conflict when that step
 * or slice is gone. Answers q. */
int storymap_ops_place_back(struct req *q, struct item *it, const struct item *image,
                            uint64_t undo);

#endif
