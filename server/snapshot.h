/* What a room looks like from outside: the snapshot a joiner is sent (its
 * settings, participants, the current round, then the items and rounds,
 * encoded once per room state and shared by every joiner of that moment)
 * and the export (export.h). */
#ifndef REFINE_SNAPSHOT_H
#define REFINE_SNAPSHOT_H

#include <msgpack.h>

struct app;
struct conn;
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

#endif
