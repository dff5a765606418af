/* The store: SQLite in WAL mode, written by one writer thread with group
 * commit, read on the loop thread.
 *
 * Changes are appended as records to the batch of the current loop turn
 * (store_put_*, store_add_event); they are counted by store_added(). At the
 * end of the turn store_flush() hands the batch to the writer thread, which
 * runs it in one transaction (while one batch is being written, the next
 * one keeps growing, so several turns may share a transaction; one turn is
 * never split). When the transaction commits, store_durable() catches up and
 * the on_commit callback runs on the loop thread. No fsync or checkpoint ever
 * runs on the loop thread.
 *
 * If a transaction fails, nothing of it is in the database: on_fail is
 * called with the room ids the batch touched before store_durable() moves
 * past it, and the records of those rooms still waiting in the next batch
 * are discarded. The owner must drop those rooms' in-memory state.
 *
 * Schema (versioned with PRAGMA user_version, migrated at open):
 *   rooms(id, created_at, meta)           meta: MessagePack room settings
 *   participants(room, pid, data)         data: MessagePack
 *   items(room, id, rank, data)           data: MessagePack item
 *   rounds(room, id, data)                data: MessagePack round, votes included
 *   kano(room, item, seqno, data)         data: MessagePack Kano survey, answers included
 *   events(room, seq, at, author, type, payload)  each room's history
 *   names(key, value)                     the instance's name (key 'instance')
 *   moved(room, to_room, at)              rooms moved to another instance
 *   log(id, kind, room, a, b, i1, i2, data)  records committed and not yet
 *                                         applied to the tables above
 * A transaction appends its records to `log`; the tables are brought up to
 * date behind it (store_log.c), and a room is read once they hold all of
 * its records, so readers see every committed record as before. */
#ifndef REFINE_STORE_H
#define REFINE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <msgpack.h>
#include <stdint.h>
#include <uv.h>

struct store;

struct store_hooks {
    void *arg;
    void (*on_commit)(void *arg);
    /* A transaction failed: the records up to number `upto` (store_added
     * numbering) are resolved, none of them in the database; rooms[0..n)
     * are the rooms it touched (borrowed for the call). */
    void (*on_fail)(void *arg, uint64_t upto, const char *const *rooms, size_t n);
};

struct store_options {
    bool full_sync;  /* synchronous=FULL: survive power loss */
    size_t max_mb;   /* cap on the database size in MiB (0: none) */
    size_t cache_mb; /* the writer's SQLite page cache in MiB (0: 64) */
    /* A batch is handed to the writer at most every group_ms ms (0: as
     * soon as the one before is written): more changes to a transaction,
     * whose pages (the log's last one) are then shared by more of them. */
    size_t group_ms;
    /* The log is applied to the tables at least every cycle_ms ms (0:
     * 5,000), and every 50,000 records (store_log.c). */
    size_t cycle_ms;
};

/* Opens (creating and migrating) the database at path and starts the writer
 * thread. Returns 0 or a negative code with a message logged.
 *
 * Restores: the database counts its committed events, and the writer copies
 * that count into the file "<path>.high-water" (at most once a second, and
 * at close). A database that starts with fewer events than the file says
 * were committed was restored from a backup (or lost its last changes), so
 * rooms' histories may have been rewound: store_restores() then counts one
 * more restore, which changes every room's epoch (room.h). */
int store_open(struct store **out, const char *path, const struct store_options *opts,
               uv_loop_t *loop, const struct store_hooks *hooks);

/* How many restores from a backup this database has been through. */
uint64_t store_restores(const struct store *s);
/* Rooms in the database (read at start-up). */
uint64_t store_room_count(const struct store *s);
/* Writes everything pending, stops the writer and closes the database.
 * Blocks; call only at shutdown. NULL is a no-op. */
void store_close(struct store *s);

uint64_t store_added(const struct store *s);
uint64_t store_durable(const struct store *s);

/* The batch whose commit (or failure) the hooks are reporting: the writer
 * thread's time for its transaction, its records and, when it committed,
 * its events; the pages its transaction appended to the WAL (SQLite's
 * count of the pages its writer connection wrote), and the pages the
 * checkpoints copied into the database file since the batch before (the
 * checkpointer's, handed over with the next batch). Valid on the loop
 * thread during on_fail and on_commit. */
struct store_batch_info {
    double seconds;
    uint64_t records, events;
    uint64_t wal_frames, ckpt_pages;
    uint64_t log_frames; /* of wal_frames: the log's cycles and trims since the batch before */
    bool ok;
};
const struct store_batch_info *store_last_batch(const struct store *s);

/* Records committed to the log and not yet applied to the tables behind it
 * (store_log.c; any thread). */
uint64_t store_log_pending(struct store *s);

/* Record appenders. Every pointer argument is borrowed (copied). Each returns
 * 0 or RF_ENOMEM (then nothing was appended).
 *
 * A state row's blob is packed straight into the batch: take the packer
 * from store_packer(), pack the row's one MessagePack value, then call the
 * store_put_* of that row (which takes what was packed; a packer taken
 * again before that discards it). The packer is the store's: borrow it only
 * until the put. */
msgpack_packer *store_packer(struct store *s);
int store_put_room(struct store *s, const char *room, int64_t created_at);
int store_put_participant(struct store *s, const char *room, const char *pid);
int store_put_item(struct store *s, const char *room, const char *id, const char *rank);
int store_put_round(struct store *s, const char *room, const char *id);
int store_put_kano(struct store *s, const char *room, const char *item, uint64_t created);
int store_del_item(struct store *s, const char *room, const char *id);
int store_add_event(struct store *s, const char *room, uint64_t seq, int64_t at, const char *by,
                    const char *type, const void *payload, size_t len);

/* Records that room moved to the room `to` at time `at` (ms): the table
 * `moved`. Once committed, add it with store_moved_add(). */
int store_put_moved(struct store *s, const char *room, const char *to, int64_t at);
/* Transactions that failed since the store was opened: a caller that waits
 * for its records to be durable compares it before and after. */
uint64_t store_failures(const struct store *s);
/* The id room[0..n) moved to (borrowed from the store), or NULL: the rooms
 * moved away from here, held in memory (read from the table at open). */
const char *store_moved_to(const struct store *s, const char *room, size_t n);
/* room moved to `to` (committed): store_moved_to() answers it from now on.
 * Returns 0 or RF_ENOMEM. */
int store_moved_add(struct store *s, const char *room, const char *to);

/* Drops the records of room appended since the last store_flush() (they
 * are skipped when the batch is written): the room is being evicted, its
 * memory ahead of what could be recorded, so it reloads as last committed. */
void store_skip_pending(struct store *s, const char *room);
/* End of a loop turn: starts writing the current batch unless one is being
 * written. */
void store_flush(struct store *s);

/* Reading a room, through a reader of its own (below). Each callback borrows
 * its arguments for the duration of the call and returns 0 to go on or a
 * negative code to stop (which store_reader_load_room returns). Events are
 * the last `max_events` of the room, oldest first. Returns RF_ENOT_FOUND when
 * the room does not exist. */
struct store_room_reader {
    void *arg;
    int (*room)(void *arg, int64_t created_at, uint64_t seq, const void *meta, size_t len);
    int (*participant)(void *arg, const char *pid, const void *data, size_t len);
    int (*item)(void *arg, const char *id, const char *rank, const void *data, size_t len);
    int (*round)(void *arg, const char *id, const void *data, size_t len); /* oldest first */
    int (*event)(void *arg, uint64_t seq, const void *payload, size_t len);
    /* Kano surveys, oldest first (NULL: not read) */
    int (*kano)(void *arg, const char *item, const void *data, size_t len);
};

/* A reader of its own (its own SQLite connection), for a thread other than
 * the loop's: store_reader_open() on the loop thread; then the reader may be
 * used by one thread at a time, and closed by the thread that last used it
 * (or by any thread once that one is done), before store_close().
 * store_reader_load_room() reads one room (one read transaction). Open
 * returns 0 or a negative code; close of NULL is a no-op. */
struct store_reader;
int store_reader_open(struct store *s, struct store_reader **out);
int store_reader_load_room(struct store_reader *q, const char *room, size_t max_events,
                           const struct store_room_reader *r);
void store_reader_close(struct store_reader *q);

/* The `names` rows (key -> text: the instance's name under "instance"),
 * read and written on the loop thread's own connection at start-up, before
 * serving. store_name_get: the value of key into out (n bytes); returns 0,
 * RF_ENOT_FOUND when there is none, or RF_EINTERNAL (also for a value
 * longer than n - 1). store_name_put: sets key to value (both borrowed),
 * committed when it returns; 0 or RF_EINTERNAL. */
int store_name_get(struct store *s, const char *key, char *out, size_t n);
int store_name_put(struct store *s, const char *key, const char *value);

/* Blocks until the tables hold every record committed so far (the log's
 * rows applied: store_log.c). 0, or RF_EINTERNAL when that failed. For
 * tests and tools; it blocks the calling thread for a cycle of the log. */
int store_materialize(struct store *s);

/* 1 when the database answers a trivial query. */
int store_healthy(struct store *s);

#endif
