/* Hints: who is editing or dragging which item, for the others to see.
 *
 * A hint belongs to one connection (a participant open in two tabs has two).
 * It is ephemeral presence: never persisted, never sequenced, never in the
 * replay ring or the store. `hint {item, what}` sets or clears it and the
 * room's other connections get the notice `hint {at, pid, item, what}`; in a
 * crowd room only the connections of non-observers do (an observer cannot
 * hint, and thousands of watchers each getting up to HINT_RATE notices a
 * second per editor would cost more than the meeting itself). A newcomer
 * gets the current hints in its join `ok`. A connection that leaves with a
 * hint, or whose participant becomes an observer, clears it with a notice;
 * a hint on an item that is removed or split is dropped silently (clients
 * clear it from those events). The connections that hold a hint are linked
 * on their room's list (room.hinting), so nothing here walks every
 * connection of a room. A connection's hint is held in it (struct conn_hint,
 * conn.h). */
#ifndef REFINE_HINT_H
#define REFINE_HINT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

struct app;
struct conn;
struct req;
struct room;
struct participant;

#define HINT_RATE 10 /* hints one connection may send per second (a burst of as many) */

enum hint_what {
    HINT_NONE = 0,
    HINT_EDITING,
    HINT_DRAGGING,
};

/* The `hint` operation (dispatch.c calls it through the operation table). */
int hint_handle(struct req *q);

/* Packs the hints of r's connections other than `to`, as the array
 * [{pid, item, what}] of a join `ok` (empty for an observer of a crowd
 * room, which gets no hint notices to keep such a list true). */
void hint_pack_room(const struct room *r, const struct conn *to, msgpack_packer *pk);

/* c is leaving its room (its socket closed): its hint, if any, goes, and
 * the others are told (unless `quiet`: the room is dead or the server is
 * stopping). */
void hint_leave(struct conn *c, bool quiet);

/* p became an observer: the hints of its connections are cleared, with a notice. */
void hint_drop_participant(struct app *app, struct room *r, const struct participant *p);

/* Item `id` was removed or split: hints on it are dropped without a notice. */
void hint_drop_item(struct room *r, const char *id);

#endif
