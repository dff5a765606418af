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
 *                   store_reader on another thread */
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
    sqlite3_stmt *w_events; /* adds a batch's events to server_state */
    uv_async_t async;
    struct store_hooks hooks;
    uint64_t failures; /* loop thread: transactions that failed (store_failures) */
    struct map moved;  /* loop thread: room id -> struct store_moved (store_moved.c) */
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
int store__open_db(const char *path, sqlite3 **db);
int store__set_cache(sqlite3 *db, int64_t kib);
int store__prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st);
/* store.c: the high-water file (struct store says which thread owns it) */
void store__write_high_water(struct store *s, int64_t events, int force);

/* store_batch.c (loop thread) */
void store__batch_free(struct batch *b);
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

/* store_read.c (loop thread: the store's read connection) */
int store__prepare_reads(sqlite3 *db, sqlite3_stmt **st[NREADS]);
void store__close_reader(struct store *s);

#endif
