/* Presence: connections joining and leaving a room, as the others see it
 * (participant.joined / participant.left notices, the crowd rule's
 * coalesced `observers` notice), and what poker and facilitation do about it.
 * Nothing here is stored or sequenced. */
#ifndef REFINE_PRESENCE_H
#define REFINE_PRESENCE_H

#include <stdint.h>

struct app;
struct conn;
struct room;
struct participant;

/* Facilitation watch, then poker (poker_ops_on_presence): called when a
 * participant who is not an observer came, went or changed role. */
void presence_changed(struct app *app, struct room *r);

/* The notice `type` (participant.joined / participant.left) about p to the
 * room's connections but `except` (may be NULL). */
void presence_notice(struct app *app, struct room *r, struct conn *except, const char *type,
                     const struct participant *p);

/* Called every tick (100 ms): drops a shared snapshot nobody holds any more
 * and, in a crowd room whose observer counts changed, sends the `observers`
 * notice to the room's connections, at most once every ROOM_OBSERVERS_MS. */
void presence_tick(struct app *app, struct room *r, int64_t now);

/* c's socket closed (net.c calls it before conn_on_closed): its hint goes,
 * it leaves its room's connections, and the others are told. Drops the
 * connection's reference to the room. */
void presence_leave(struct conn *c);

#endif
