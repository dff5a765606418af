/* Undo: a participant undoes their own last undoable change, if nothing has
 * changed on top of it since (PROTOCOL.md "Undo").
 *
 * Each participant has at most one undo record (participant.undo): the last
 * change of theirs that can be undone, with what it touched, the version
 * (seq) it gave it, and the before-image needed to invert it. The record is
 * noted by the op's handler as it makes its event, replacing the one before;
 * `undo` checks that every object it touched still has that version (struct
 * item's seq: any later change to it, by anyone, changes it) and applies the
 * inverse with the ordinary events of the backlog, each marked `undo: seq`.
 * Records live in memory only: they do not survive a restart or the room
 * being unloaded.
 *
 * Adding an undoable op: note a record in its handler (undo_rec_new() before
 * the change, undo_rec_set() with the event's seq (undo_rec.h)), and give its op id a row in
 * undo.c's KINDS table (a name for messages and the inverse builder). */
#ifndef REFINE_UNDO_H
#define REFINE_UNDO_H

struct req;

/* The `undo {seq?}` op. */
int undo_handle(struct req *q);

#endif
