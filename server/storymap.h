/* The story map of a room, the model (PROTOCOL.md "Story map"): the backbone
 * of activities (ordered), the steps under each activity (ordered), and the
 * release slices (ordered, each with a name and a capacity in points). What
 * clients do with it is in storymap_ops.h.
 *
 * The structure is small and bounded (SMAP_MAX_*), so it lives in fixed
 * arrays and is stored in the room's meta row (room_save_meta, key "map").
 * An item's place on the map is two of its own fields, `step` and `slice`
 * (both set or both nil: unplaced), so a move rewrites one item row. Steps
 * are kept in one array: the order of an activity's steps is their order
 * in it. Cards in a cell are in backlog (rank) order: the product owner's
 * order is the importance the map shows top-down.
 *
 * A room without a map has r->smap NULL; the map is made on its first node. */
#ifndef REFINE_STORYMAP_H
#define REFINE_STORYMAP_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct backlog;

#define SMAP_MAX_ACTIVITIES 20
#define SMAP_MAX_STEPS      100 /* in the whole map */
#define SMAP_MAX_SLICES     10
#define SMAP_NAME_MAX       100 /* bytes */
#define SMAP_CAPACITY_MAX   10000
#define SMAP_ID_MAX         16

enum smap_kind { SMAP_ACTIVITY, SMAP_STEP, SMAP_SLICE, SMAP__NKIND };

struct smap_node {
    char id[SMAP_ID_MAX];
    char *name;
    char activity[SMAP_ID_MAX]; /* a step's activity */
    int64_t capacity;           /* a slice's capacity in points; -1: none set */
};

struct storymap {
    struct smap_node act[SMAP_MAX_ACTIVITIES], step[SMAP_MAX_STEPS], slice[SMAP_MAX_SLICES];
    size_t n[SMAP__NKIND];
    uint64_t next_id; /* ids are "a<n>", "s<n>", "r<n>" with n from this counter */
};

/* "activity", "step", "slice". */
const char *storymap_kind_name(enum smap_kind k);
/* The kind named s[0..n), or -1. */
int storymap_kind_parse(const char *s, size_t n);
/* The nodes of kind k (m->n[k] of them). */
struct smap_node *storymap_nodes(struct storymap *m, enum smap_kind k);
/* The most nodes of kind k a map holds. */
size_t storymap_max(enum smap_kind k);
/* The node id[0..n) (any kind: into *kind and *ix), or NULL. m may be NULL. */
struct smap_node *storymap_find(struct storymap *m, const char *id, size_t n, enum smap_kind *kind,
                                size_t *ix);
/* Where a node of kind k goes: `after` (a node of that kind, or NULL for the
 * first place) for steps among those of `activity`. The index to insert at. */
size_t storymap_slot(struct storymap *m, enum smap_kind k, const char *activity,
                     const struct smap_node *after);
/* The node just before m's nodes of kind k at ix among its siblings, or NULL. */
const struct smap_node *storymap_prev(struct storymap *m, enum smap_kind k, size_t ix);
/* Inserts *node (taken: its name too) at ix; the caller checked there is room. */
void storymap_insert(struct storymap *m, enum smap_kind k, size_t ix, const struct smap_node *node);
/* Takes the node at ix out (its name is the caller's) into *out. */
void storymap_take(struct storymap *m, enum smap_kind k, size_t ix, struct smap_node *out);
/* NULL is a no-op. */
void storymap_free(struct storymap *m);

/* Packs one node as clients see it: {id, name} plus `activity` for a step,
 * `capacity` (nil: none) for a slice. */
void storymap_pack_node(const struct smap_node *n, enum smap_kind k, msgpack_packer *pk);
/* Packs map m (NULL: none) of a room with backlog b for the snapshot and the
 * export: {activities, steps,
 * slices}, each slice with its `points` (the sum of its items' numeric
 * estimates) and `unestimated` (its items without one, ids in rank order),
 * from one walk of the backlog; an item with status `split` counts in no
 * slice (its children stand for it). */
void storymap_pack(const struct storymap *m, const struct backlog *b, msgpack_packer *pk);
/* Packs the map as stored in the room's meta row (nil without a map). */
void storymap_pack_meta(const struct storymap *m, msgpack_packer *pk);
/* The map stored as o (NULL or nil: none) into *out (NULL when none).
 * Returns 0 or RF_EINTERNAL (malformed) / RF_ENOMEM. */
int storymap_load(const msgpack_object *o, struct storymap **out);

#endif
