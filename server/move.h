/* Moving a room to another instance (issue #13; PROTOCOL.md "Moving a
 * room"), the room's side; the HTTP side is net_move.c.
 *
 * 1. The old home freezes the room (room.moving: every change is refused
 *    with `unavailable`, dispatch.c) and, once everything it wrote is
 *    committed, writes its archive: the room's JSON export, for people, and
 *    its stored state (the rows of its settings, participants, items,
 *    rounds and Kano surveys, as MessagePack blobs in base64: token hashes
 *    and secret hashes included), read through a store reader on a worker.
 * 2. The new home parses the archive on a worker and appends the rows under
 *    the new id to one batch (one transaction), with one event at the old
 *    room's seq (`room.moved_in`), so that the new room goes on numbering
 *    where the old one stopped and loads exactly as the old one was.
 * 3. The old home records the move (table `moved`, committed), tells the
 *    room's connections (`room.moved`), closes them (4000) and unloads the
 *    room; joins of it are answered `moved` from then on. */
#ifndef REFINE_MOVE_H
#define REFINE_MOVE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct app;
struct req;
struct room;
struct move_archive;
struct move_make;

#define MOVE_FORMAT "refine.move.v1" /* the archive's "format" */

/* ---- 1. the archive (old home) ------------------------------------------ */

/* The archive's answer, on the loop thread: 0 with the JSON text (taken:
 * free it), or a negative code and NULL. */
typedef void (*move_archive_fn)(void *arg, int rc, char *json, size_t len);

/* Starts writing r's archive (r frozen, everything it wrote committed):
 * done(arg, ...) is called later on the loop thread, never from within this
 * call. Returns 0 with *out set until then, or RF_ENOMEM / RF_EINTERNAL
 * (done will not be called). */
int move_archive_start(struct app *app, struct room *r, move_archive_fn done, void *arg,
                       struct move_archive **out);
/* The requester has gone: done will not be called. NULL is a no-op. */
void move_archive_abandon(struct move_archive *j);

/* ---- 2. the new room (new home) ------------------------------------------- */

/* The parse's answer, on the loop thread: 0 (then move_make_apply, or
 * move_make_free) or a negative code with a sentence in why (then
 * move_make_free). */
typedef void (*move_parsed_fn)(void *arg, struct move_make *m, int rc, const char *why);

/* Parses archive body[0..len) (taken) on a worker. Returns 0 (done is
 * called later) or RF_ENOMEM (body freed, done not called). */
int move_make_parse(uv_loop_t *loop, char *body, size_t len, move_parsed_fn done, void *arg,
                    struct move_make **out);
/* The requester has gone: done will not be called; the parse frees itself
 * when the worker is done. NULL is a no-op. */
void move_make_abandon(struct move_make *m);
/* Appends the archive's rows under room id (borrowed), not in memory and
 * not in the database, to the store's batch: 0, or RF_ENOMEM with nothing
 * appended. The room is the store's once committed: load it then. */
int move_make_apply(struct app *app, const struct move_make *m, const char *id);
void move_make_free(struct move_make *m);

/* ---- 3. the end (old home) ------------------------------------------------- */

/* r moved to room `to` (its move committed): its connections get
 * `room.moved {room, home}` and are closed with 4000, and it leaves memory. */
void move_finish(struct app *app, struct room *r, const char *to);

/* The freeze (before the handler of request q): RF_EUNAVAILABLE, with the
 * sentence set, for a change to a room being moved (an op that makes an
 * event) and for a join that would add a participant to one (it would not
 * be in the archive: the client retries, and joins the new room); else 0.
 * Rejoins (pid and secret) and everything that changes nothing go on. */
int move_frozen(struct req *q);

/* A join of a room that moved away from here: RF_EMOVED, with the reply's
 * fields `room` (its new id) and `home` set (req_fail); 0 for any other room. */
int move_refuse_join(struct req *q, const msgpack_object *rid);

#endif
