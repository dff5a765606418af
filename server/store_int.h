/* The store's private header, shared by its files (store.h is the public
 * one): the batch and its records, struct store with which thread owns each
 * field, and the internal functions one store file calls in another.
 *
 *   store.c         open/close, schema and migration, restore detection (the
 *                   high-water file), the SQLite helpers the others share
 *   store_batch.c   the batch of the current loop turn: its arena, the record
 *                   appenders, store_flush (loop thread)
 *   store_writer.c  the writer thread (group commit) and the checkpointer
 *                   thread; the loop thread's side of a written batch
 *   store_read.c    reading a room: on the loop thread, or through a
 *                   store_reader on another thread
 *   store_log.c     the log: a batch's records appended to the table `log`
 *                   (writer thread), and materialized behind into the state
 *                   tables in cycles sorted by room (writer thread; at open,
 *                   the opening thread); the wait of a reader for it */
#ifndef REFINE_STORE_INT_H
#define REFINE_STORE_INT_H

#include <pthread.h>
#include <sqlite3.h>
#include <stdint.h>
#include <time.h>

#include "map.h"
#include "store.h"

enum rec_kind {
    REC_ROOM,
    REC_PART,
    REC_ITEM,
    REC_DEL_ITEM,
    REC_EVENT,
    REC_ROUND,
    REC_KANO,
    REC_MOVED,
    REC__COUNT,
    REC_SKIP
};

/* A record's strings and blob live in its batch's arena (offsets, since
 * the arena may move as it grows; NONE for a NULL string). */
#define NONE SIZE_MAX
struct rec {
    enum rec_kind kind;
    size_t room, a, b, blob;
    int64_t i1, i2;
    size_t len;
};

/* A record in the log, as the writer keeps it to sort a cycle by room
 * without reading the log: the hash of its room (a collision only puts two
 * rooms' records in one group, in log order), the hash of the row it sets
 * (its table and key within the room; 0 for an event, which is never
 * replaced), its id, and where its copy is (rec: its index in the
 * writer's batch of pending records, pend_b or cycle_b). */
struct log_ref {
    uint64_t room;
    uint64_t row;
    int64_t id;
    size_t rec;
};

/* The records of one or more loop turns. Batches are recycled (one spare),
 * so in a steady state appending a record allocates nothing. */
struct batch {
    struct rec *v;
    size_t n, cap;
    char *mem; /* the arena */
    size_t used, memcap;
    int ok;
    struct store_batch_info info; /* the writer's figures of it (store_last_batch) */
};

static inline const char *rec_str(const struct batch *b, size_t off)
{
    return off == NONE ? NULL : b->mem + off;
}

struct store {
    sqlite3 *wdb; /* writer thread only */
    sqlite3 *rdb; /* loop thread only: /healthz's ping (rooms are read by store_reader_*) */
    sqlite3 *cdb; /* checkpointer thread only */
    pthread_t ckpt_thread;
    pthread_cond_t ckpt_cv; /* under mu: wakes the checkpointer (ckpt_wanted, ckpt_quit) */
    int ckpt_wanted;        /* under mu: the WAL passed WAL_CKPT_PAGES */
    int ckpt_quit;          /* under mu: stops the checkpointer (before the writer) */
    int wal_pages;          /* writer thread: pages in the WAL after its last commit */
    uint64_t ckpt_pages;    /* under mu: pages checkpoints copied, not yet in a batch's info */
    sqlite3_stmt *w[REC__COUNT];
    sqlite3_stmt *r_ping;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, done_cv;
    struct batch *accum; /* loop thread */
    struct batch *spare; /* loop thread: a written batch, kept for reuse */
    msgpack_packer pk;   /* loop thread: store_packer(), into accum's arena */
    size_t pack_start;   /* where the blob being packed starts in accum's arena */
    int pack_open, pack_oom;
    struct batch *inflight; /* handed to the writer (loop thread's view) */
    int work_ready;         /* under mu: inflight waits for the writer */
    struct batch *done;     /* under mu: the writer finished this one */
    int quit;               /* under mu: stops the writer */
    uint64_t added, durable;
    struct store_batch_info last; /* loop thread: the batch the hooks report */
    uint64_t restores, rooms;
    int64_t events;           /* writer thread: committed events (server_state) */
    int64_t events_committed; /* under mu: the same, for the checkpointer */
    /* The high-water file and these two belong to one thread at a time: the
     * opening thread, then the checkpointer, then (once the checkpointer
     * has been joined) the writer at close. */
    int64_t high_water_written; /* the count in the side file */
    time_t high_water_at;
    char high_water_path[4200];
    sqlite3_stmt *w_events; /* adds a cycle's events to server_state (store_log.c) */
    uv_async_t async;
    uv_timer_t group_timer; /* loop thread: hands the batch over once group_ms has passed */
    uint64_t group_ms;      /* loop thread: store_options.group_ms */
    uint64_t submitted_at;  /* loop thread: uv_now() when the last batch was handed over */
    int open_handles;       /* loop thread: async and timer not closed yet (the last frees) */
    struct store_hooks hooks;
    uint64_t failures; /* loop thread: transactions that failed (store_failures) */
    struct map moved;  /* loop thread: room id -> struct store_moved (store_moved.c) */
    /* The log (store_log.c). Ids are given in order and never reused: the
     * mark (server_state 'log_mark') is the last id applied to the tables,
     * and the log holds the rows after it. */
    sqlite3_stmt *w_log; /* writer: appends a batch's row */
    uint8_t *row;        /* writer: the row being packed (store_log.c) */
    size_t row_len, row_cap;
    sqlite3_stmt *w_mark;    /* writer: sets the mark */
    sqlite3_stmt *w_trim;    /* writer: deletes the log up to the mark */
    sqlite3_stmt *w_pending; /* writer, at open: the ids after the mark */
    int64_t log_id;          /* writer: the last id given (committed, between batches) */
    int64_t log_mark;        /* writer: the mark, committed */
    int64_t log_trimmed;     /* writer: the log holds no id up to this (<= log_mark) */
    struct log_ref *pend;    /* writer: the records in the log not in the running cycle */
    size_t pend_n, pend_cap;
    int pend_stale;        /* writer: pend must be read again from the log */
    struct log_ref *cycle; /* writer: the running cycle's records, sorted by room */
    size_t cycle_n, cycle_cap;
    size_t cycle_next;     /* writer: the first of them not applied yet */
    int cycle_on;          /* writer: a cycle runs */
    struct batch *pend_b;  /* writer: copies of the records of pend (pend[i].rec) */
    struct batch *cycle_b; /* writer: copies of the records of cycle */
    uint64_t log_frames;   /* writer: pages the cycles and trims wrote, not yet in a batch's info */
    int64_t max_pages;     /* writer: the size cap (--max-db-size) in pages, or 0 */
    int full_sync;         /* writer: synchronous=FULL (lifted during a cycle) */
    int64_t cycle_upto;    /* writer: the mark once the cycle is applied */
    int64_t cycle_events;  /* writer: the events among its records */
    struct timespec cycle_at; /* writer: when the last cycle ended (or failed) */
    int cycle_failed;         /* writer: the last one failed (retried after a second) */
    double cycle_s; /* store_options.cycle_ms, in seconds (set before the threads start) */
    struct timespec next_step; /* writer: when the next step may run (store__log_pace) */
    pthread_cond_t mat_cv;     /* under mu: a cycle ended (mat_done) or failed */
    int64_t log_committed;     /* under mu: log_id, once committed */
    int64_t mat_done;          /* under mu: log_mark */
    int64_t mat_want;          /* under mu: a reader waits until the mark reaches this */
    uint64_t mat_failures;     /* under mu: cycles that failed */
    uint64_t rollbacks;        /* under mu: batches that failed (their ids given again) */
    /* under mu: the rooms with records in the log, by the hash of their id
     * (0: a free slot), with the last id of each: set before the batch's
     * commit, dropped once a cycle has applied it (store__log_check). */
    uint64_t *in_log_key;
    int64_t *in_log_id;
    size_t in_log_cap, in_log_n;
};

/* The page caches (--cache-mb): the writer's holds the pages every room's
 * writes land on; the reader (joins of rooms not in memory) and the
 * checkpointer (which copies WAL frames without its cache) keep 2 MiB. */
#define SIDE_CACHE_KIB 2048

/* The statements that read a room (READ_SQL, store_read.c). */
#define NREADS 7

/* store.c: SQLite helpers (any thread, on its own connection) */
int store__exec(sqlite3 *db, const char *sql);
int store__bind_text(sqlite3_stmt *st, int i, const char *s);
/* Steps a statement that writes, then resets it and clears its bindings;
 * 0, or RF_EINTERNAL with SQLite's message logged. */
int store__step_write(sqlite3 *db, sqlite3_stmt *st);
int store__open_db(const char *path, sqlite3 **db);
int store__set_cache(sqlite3 *db, int64_t kib);
int store__prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st);
/* store.c: the high-water file (struct store says which thread owns it) */
void store__write_high_water(struct store *s, int64_t events, int force);

/* store_batch.c (loop thread; store__batch_append on any thread, with a
 * batch of its own) */
void store__batch_free(struct batch *b);
int store__batch_append(struct batch *bt, enum rec_kind kind, const char *room, const char *a,
                        const char *b, int64_t i1, int64_t i2, const void *blob, size_t len,
                        size_t packed);
void store__submit(struct store *s);

/* store_writer.c: the threads' bodies (arg: the store), the writer's close
 * (writer thread; at a failed open, the opening thread), its WAL hook
 * (writer thread), and the loop thread's side of a written batch. */
void *store__writer_main(void *arg);
void *store__ckpt_main(void *arg);
void store__close_writer(struct store *s);
int store__on_wal(void *arg, sqlite3 *db, const char *name, int pages);
void store__finish(struct store *s, struct batch *b, int notify);
void store__on_async(uv_async_t *h);

/* store_moved.c (loop thread): the table `moved` into s->moved, at open
 * (0 or RF_EINTERNAL / RF_ENOMEM); and its memory freed, at close. */
int store__load_moved(struct store *s);
void store__free_moved(struct store *s);

/* store_writer.c: one record into its state table (the materializer) */
int store__apply_rec(struct store *s, const struct batch *bt, const struct rec *rec);

/* store_log.c. prepare: the log's statements, and the writer's figures read
 * (the opening thread). append: a batch's record into the log (writer, in
 * its transaction; 0 or RF_EINTERNAL); publish: the rooms of the batch's
 * records from pend[from] on, for readers, before its commit (writer; 0 or
 * RF_ENOMEM); rollback: the log's id and the writer's list of its records
 * back to before a batch that failed. check (a reader's thread, in a read
 * transaction that saw `mark` in server_state): 0 when the tables it sees
 * hold all of room's records, -1 when a cycle has ended since (read
 * again), else the log id to wait for (store__log_wait). due: a step of a
 * cycle or a trim should run now (writer, under mu); pace: the seconds until
 * the next may run (0: now; writer, under mu). step: one transaction of a cycle, starting one if
 * none runs (writer, or the opening thread before the threads start); returns 1 when nothing is
 * left to apply, 0 when more is, or RF_EINTERNAL when it failed (nothing of that transaction kept;
 * the cycle starts again later). drain: steps until the tables hold every committed record (0 or
 * RF_EINTERNAL). wait: a reader's thread waits until the mark reaches id (0, or RF_EINTERNAL when a
 * cycle failed meanwhile). */
int store__log_prepare(struct store *s);
int store__log_append(struct store *s, const struct batch *bt);
void store__log_rollback(struct store *s, int64_t log_id, size_t pend_n, size_t pend_used);
int store__log_publish(struct store *s, size_t from);
int64_t store__log_check(struct store *s, const char *room, int64_t mark);
int store__log_due(struct store *s);
double store__log_pace(struct store *s);
int store__log_step(struct store *s);
int store__log_drain(struct store *s);
int store__log_wait(struct store *s, int64_t id);
void store__log_finalize(struct store *s);

/* store_read.c (loop thread: the store's read connection) */
int store__prepare_reads(sqlite3 *db, sqlite3_stmt **st[NREADS]);
void store__close_reader(struct store *s);

#endif
