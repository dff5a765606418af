/* What a room looks like from outside: the snapshot a joiner is sent (its
 * settings, participants, the current round, then the items and rounds,
 * encoded once per room state and shared by every joiner of that moment)
 * and the export (export.h). */
#ifndef REFINE_SNAPSHOT_H
#define REFINE_SNAPSHOT_H

#include <msgpack.h>

struct app;
struct conn;
struct frame;
struct room;

/* Queues the room's snapshot to c as the answer to its join. A large backlog
 * (or a long history of rounds) goes as two fragments of one message: c's own
 * head, then the items and rounds frame shared by every joiner of the same
 * moment (kept in r->snap_items). A connection without a socket (in-process)
 * gets one whole frame. Returns 0 or RF_ENOMEM. */
int snapshot_send(struct app *app, struct room *r, struct conn *c);

/* Every participant; in a crowd room only the actors (no observer): then
 * O(actors), however many observers the room has. */
void snapshot_pack_participants(const struct room *r, msgpack_packer *pk);
/* The observer counts {online, total}. */
void snapshot_pack_observers(const struct room *r, msgpack_packer *pk);

/* Packs what an export holds: settings, participants (no secrets), items,
 * rounds (as round_pack: no unrevealed card). */
void snapshot_pack_export(const struct room *r, msgpack_packer *pk);
/* The same in two parts: the head (a map of 7 whose last value, the items,
 * is not packed), then the bytes of snapshot_export_items(), which end it. */
void snapshot_pack_export_head(const struct room *r, msgpack_packer *pk);
/* The items and rounds as the snapshot shares them (r->snap_items, made now
 * if it is not there or stale): a new reference, or NULL on out of memory.
 * Its data is the `items` array, then "rounds" and its array. */
struct frame *snapshot_export_items(struct room *r);

/* Encodes r->snap_items now (the loader does it on its thread, so that the
 * first joiner of a room just loaded does not pay it on the loop). Touches
 * only r. Returns 0 or RF_ENOMEM. */
int snapshot_prepare(struct room *r);

#endif
