/* The outbox holds every outgoing message until the changes it depends on
 * are committed, then hands it to its connection(s), in creation order.
 *
 * An entry records the store record number its room's last change reached
 * (room.records_upto, in store_added numbering); it is released when
 * store_durable reaches that number. So an event, and the `ok` of the change
 * that made it, leave the server only after the change is in the database,
 * a connection receives its messages in the order they were produced, and a
 * write stalled in one room does not hold up another room's replies.
 *
 * Room-wide entries (events, presence) are stamped with app->join_serial and
 * delivered to the connections of the room that had joined before the entry
 * was made (later joiners got the state in their snapshot or replay). */
#ifndef REFINE_OUTBOX_H
#define REFINE_OUTBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct app;
struct outbox;
struct conn;
struct room;
struct frame;

/* A new, empty outbox into *out. Returns 0 or RF_ENOMEM. */
int outbox_new(struct outbox **out);
void outbox_free(struct outbox *ob);

/* Queues f (borrowed) for one connection. */
void outbox_to_conn(struct app *app, struct conn *c, struct frame *f);
/* As outbox_to_conn(), for what the connection asked for (its join's
 * snapshot or replay): delivered with conn_send_answer(), not counted as lag. */
void outbox_answer(struct app *app, struct conn *c, struct frame *f);
/* Queues the `ok` f (borrowed) of request req_id, which changed room dep
 * (may be NULL: any room): if that room's changes fail to commit, the
 * connection gets `err internal` for req_id instead. */
void outbox_ack(struct app *app, struct conn *c, struct frame *f, uint64_t req_id,
                struct room *dep);
/* Queues f (borrowed) for every connection of room that joined before now,
 * except `except` (may be NULL); with actors_only, only for those whose
 * participant is not an observer when it is delivered. */
void outbox_to_room(struct app *app, struct room *r, struct frame *f, struct conn *except,
                    bool actors_only);

/* A transaction touching rooms[0..n) failed: every entry waiting for
 * records up to `upto` is resolved now. Those about a failed room are not
 * sent (acks become `err internal`); the others are delivered. */
void outbox_fail(struct app *app, uint64_t upto, const char *const *rooms, size_t n);

/* Delivers every entry whose records are durable. Called at the end of each
 * loop turn and whenever the store reports a commit. */
void outbox_release(struct app *app);

/* The store's hooks (store_hooks, with the app as arg): a commit releases
 * what waited for it; a failed transaction answers what waited for it
 * (outbox_fail), then drops the rooms it touched from memory (they reload
 * from what is committed). */
void outbox_on_commit(void *app);
void outbox_on_store_fail(void *app, uint64_t upto, const char *const *rooms, size_t n);

#endif
