#include "store.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"

enum rec_kind {
    REC_ROOM,
    REC_PART,
    REC_ITEM,
    REC_DEL_ITEM,
    REC_EVENT,
    REC_ROUND,
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
};

static const char *rec_str(const struct batch *b, size_t off)
{
    return off == NONE ? NULL : b->mem + off;
}

struct store {
    sqlite3 *wdb; /* writer thread only */
    sqlite3 *rdb; /* loop thread only */
    sqlite3 *cdb; /* checkpointer thread only */
    pthread_t ckpt_thread;
    pthread_cond_t ckpt_cv; /* under mu: wakes the checkpointer (ckpt_wanted, ckpt_quit) */
    int ckpt_wanted;        /* under mu: the WAL passed WAL_CKPT_PAGES */
    int ckpt_quit;          /* under mu: stops the checkpointer (before the writer) */
    int wal_pages;          /* writer thread: pages in the WAL after its last commit */
    sqlite3_stmt *w[REC__COUNT];
    sqlite3_stmt *r_room, *r_seq, *r_parts, *r_items, *r_rounds, *r_events, *r_ping;
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
};

/* The WAL is copied back into the database by the checkpointer thread as
 * soon as it holds WAL_CKPT_PAGES pages after a commit, and once a second;
 * the writer starts it over when a checkpoint has copied all of it. Only if
 * the checkpointer falls behind a stream of commits and the WAL reaches
 * WAL_FORCE_PAGES does the writer checkpoint itself (after reporting its
 * commit, so no reply waits for it), which keeps the file bounded. */
#define WAL_CKPT_PAGES  1000
#define WAL_FORCE_PAGES 8192

static const char *const MIGRATIONS[] = {
    /* 1: the first schema */
    "CREATE TABLE rooms(id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, meta BLOB NOT NULL)"
    " WITHOUT ROWID;"
    "CREATE TABLE participants(room TEXT NOT NULL, pid TEXT NOT NULL, data BLOB NOT NULL,"
    " PRIMARY KEY(room, pid)) WITHOUT ROWID;"
    "CREATE TABLE items(room TEXT NOT NULL, id TEXT NOT NULL, rank TEXT NOT NULL,"
    " data BLOB NOT NULL, PRIMARY KEY(room, id)) WITHOUT ROWID;"
    "CREATE INDEX items_rank ON items(room, rank);"
    "CREATE TABLE events(room TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,"
    " author TEXT, type TEXT NOT NULL, payload BLOB NOT NULL, PRIMARY KEY(room, seq))"
    " WITHOUT ROWID;",
    /* 2: planning-poker rounds */
    "CREATE TABLE rounds(room TEXT NOT NULL, id TEXT NOT NULL, seqno INTEGER NOT NULL,"
    " data BLOB NOT NULL, PRIMARY KEY(room, id)) WITHOUT ROWID;"
    "CREATE INDEX rounds_order ON rounds(room, seqno);",
    /* 3: counters (committed events, restores), to detect a restore from a backup */
    "CREATE TABLE server_state(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
};

static const char *const WRITE_SQL[REC__COUNT] = {
    [REC_ROOM] = "INSERT INTO rooms(id, created_at, meta) VALUES(?1, ?2, ?3)"
                 " ON CONFLICT(id) DO UPDATE SET meta = excluded.meta",
    [REC_PART] = "INSERT INTO participants(room, pid, data) VALUES(?1, ?2, ?3)"
                 " ON CONFLICT(room, pid) DO UPDATE SET data = excluded.data",
    [REC_ITEM] = "INSERT INTO items(room, id, rank, data) VALUES(?1, ?2, ?3, ?4)"
                 " ON CONFLICT(room, id) DO UPDATE SET rank = excluded.rank, data = excluded.data",
    [REC_DEL_ITEM] = "DELETE FROM items WHERE room = ?1 AND id = ?2",
    [REC_ROUND] = "INSERT INTO rounds(room, id, seqno, data) VALUES(?1, ?2, ?3, ?4)"
                  " ON CONFLICT(room, id) DO UPDATE SET data = excluded.data",
    [REC_EVENT] = "INSERT INTO events(room, seq, at, author, type, payload)"
                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
};

static void batch_free(struct batch *b)
{
    if (!b)
        return;
    free(b->v);
    free(b->mem);
    free(b);
}

static int exec(sqlite3 *db, const char *sql)
{
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        log_error("sqlite: %s (in: %.60s)", err ? err : sqlite3_errstr(rc), sql);
        sqlite3_free(err);
        return RF_EINTERNAL;
    }
    return 0;
}

static int migrate(sqlite3 *db)
{
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return RF_EINTERNAL;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    int latest = (int)(sizeof MIGRATIONS / sizeof MIGRATIONS[0]);
    if (version > latest) {
        log_error("the database has schema version %d, newer than this server's %d", version,
                  latest);
        return RF_EINTERNAL;
    }
    for (int v = version; v < latest; v++) {
        char pragma[64];
        snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", v + 1);
        if (exec(db, "BEGIN IMMEDIATE") || exec(db, MIGRATIONS[v]) || exec(db, pragma) ||
            exec(db, "COMMIT")) {
            exec(db, "ROLLBACK");
            return RF_EINTERNAL;
        }
        log_info("database migrated to schema version %d", v + 1);
    }
    return 0;
}

static int bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

static int write_rec(struct store *s, const struct batch *bt, const struct rec *rec)
{
    if (rec->kind == REC_SKIP)
        return 0;
    sqlite3_stmt *st = s->w[rec->kind];
    int n = (int)rec->len;
    /* The record with its strings and blob resolved in the arena. */
    const struct {
        enum rec_kind kind;
        const char *room, *a, *b;
        const void *blob;
        int64_t i1, i2;
    } rr = {rec->kind,
            rec_str(bt, rec->room),
            rec_str(bt, rec->a),
            rec_str(bt, rec->b),
            rec_str(bt, rec->blob),
            rec->i1,
            rec->i2},
      *r = &rr;
    bind_text(st, 1, r->room);
    switch (r->kind) {
    case REC_ROOM:
        sqlite3_bind_int64(st, 2, r->i1);
        sqlite3_bind_blob(st, 3, r->blob, n, SQLITE_STATIC);
        break;
    case REC_PART:
        bind_text(st, 2, r->a);
        sqlite3_bind_blob(st, 3, r->blob, n, SQLITE_STATIC);
        break;
    case REC_ITEM:
        bind_text(st, 2, r->a);
        bind_text(st, 3, r->b);
        sqlite3_bind_blob(st, 4, r->blob, n, SQLITE_STATIC);
        break;
    case REC_DEL_ITEM:
        bind_text(st, 2, r->a);
        break;
    case REC_ROUND:
        bind_text(st, 2, r->a);
        sqlite3_bind_int64(st, 3, r->i1);
        sqlite3_bind_blob(st, 4, r->blob, n, SQLITE_STATIC);
        break;
    case REC_EVENT:
        sqlite3_bind_int64(st, 2, r->i1);
        sqlite3_bind_int64(st, 3, r->i2);
        bind_text(st, 4, r->a);
        bind_text(st, 5, r->b);
        sqlite3_bind_blob(st, 6, r->blob, n, SQLITE_STATIC);
        break;
    default:
        break;
    }
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        log_error("sqlite write failed: %s", sqlite3_errmsg(s->wdb));
        return RF_EINTERNAL;
    }
    return 0;
}

/* Writes v to path atomically: a temporary file, fsync, rename. */
static int write_counter_file(const char *path, int64_t v)
{
    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return -1;
    FILE *f = fopen(tmp, "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%lld\n", (long long)v) > 0 && fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

/* Records `events`, a committed event count, beside the database (with an
 * fsync, so never on the writer's path: the checkpointer does it at most
 * once a second; the writer at close, after the checkpointer has stopped,
 * and store_open before either runs). */
static void write_high_water(struct store *s, int64_t events, int force)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (!force && now.tv_sec == s->high_water_at)
        return;
    s->high_water_at = now.tv_sec;
    if (s->high_water_written != events && write_counter_file(s->high_water_path, events))
        log_warn("cannot write %s: a restore from a backup may go unnoticed", s->high_water_path);
    else
        s->high_water_written = events;
}

/* Writer thread: one transaction per batch. */
static int write_batch(struct store *s, struct batch *b)
{
    int64_t events = 0;
    if (exec(s->wdb, "BEGIN IMMEDIATE"))
        return 0;
    for (size_t i = 0; i < b->n; i++) {
        if (write_rec(s, b, &b->v[i]))
            goto fail;
        events += b->v[i].kind == REC_EVENT;
    }
    if (events) {
        sqlite3_bind_int64(s->w_events, 1, events);
        int rc = sqlite3_step(s->w_events);
        sqlite3_reset(s->w_events);
        if (rc != SQLITE_DONE)
            goto fail;
    }
    if (exec(s->wdb, "COMMIT"))
        goto fail;
    s->events += events;
    return 1;
fail:
    exec(s->wdb, "ROLLBACK");
    return 0;
}

static void close_reader(struct store *s)
{
    sqlite3_stmt **st[] = {&s->r_room,   &s->r_seq,    &s->r_parts, &s->r_items,
                           &s->r_rounds, &s->r_events, &s->r_ping};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        sqlite3_finalize(*st[i]);
        *st[i] = NULL;
    }
    sqlite3_close(s->rdb);
    s->rdb = NULL;
}

static void close_writer(struct store *s)
{
    if (s->wdb && s->high_water_path[0])
        write_high_water(s, s->events, 1);
    sqlite3_finalize(s->w_events);
    s->w_events = NULL;
    for (int i = 0; i < REC__COUNT; i++) {
        sqlite3_finalize(s->w[i]);
        s->w[i] = NULL;
    }
    sqlite3_close(s->wdb);
    s->wdb = NULL;
}

static void close_dbs(struct store *s)
{
    close_reader(s);
    sqlite3_close(s->cdb);
    s->cdb = NULL;
    close_writer(s);
}

/* The checkpointer: copies the WAL back into the database when the writer
 * reports WAL_CKPT_PAGES, and once a second (PASSIVE: never waits for the
 * writer or readers). Checkpoints and their fsyncs run here, so neither the
 * loop nor group commit waits for them. */
static void *ckpt_main(void *arg)
{
    struct store *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->ckpt_quit) {
        if (!s->ckpt_wanted) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += 1;
            pthread_cond_timedwait(&s->ckpt_cv, &s->mu, &until);
        }
        if (s->ckpt_quit)
            break;
        s->ckpt_wanted = 0;
        int64_t events = s->events_committed;
        pthread_mutex_unlock(&s->mu);
        if (s->high_water_path[0])
            write_high_water(s, events, 0);
        int log = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(s->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("WAL checkpoint failed: %s", sqlite3_errmsg(s->cdb));
        pthread_mutex_lock(&s->mu);
    }
    pthread_mutex_unlock(&s->mu);
    sqlite3_close(s->cdb);
    s->cdb = NULL;
    return NULL;
}

/* The writer returns its page cache (SQLite's unused pages, then the free
 * heap: malloc_trim) after this long without a batch: a server whose load
 * stopped shrinks back, and one under load keeps its cache. */
#define IDLE_RELEASE_S 10

static void *writer_main(void *arg)
{
    struct store *s = arg;
    int wrote = 0; /* a batch since the last release */
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->work_ready && !s->quit) {
            if (!wrote) {
                pthread_cond_wait(&s->work_cv, &s->mu);
                continue;
            }
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_sec += IDLE_RELEASE_S;
            if (pthread_cond_timedwait(&s->work_cv, &s->mu, &until) == ETIMEDOUT &&
                !s->work_ready && !s->quit) {
                /* Idle: give the page cache back, and the heap it leaves free. */
                pthread_mutex_unlock(&s->mu);
                sqlite3_db_release_memory(s->wdb);
                malloc_trim(0);
                wrote = 0;
                pthread_mutex_lock(&s->mu);
            }
        }
        if (!s->work_ready) {
            /* Closing the last connection checkpoints the WAL: it happens
             * here, on the writer thread, never on the loop thread. */
            close_writer(s);
            break;
        }
        struct batch *b = s->inflight;
        s->work_ready = 0;
        pthread_mutex_unlock(&s->mu);
        b->ok = write_batch(s, b);
        wrote = 1;
        pthread_mutex_lock(&s->mu);
        s->events_committed = s->events;
        s->done = b;
        pthread_cond_signal(&s->done_cv);
        uv_async_send(&s->async);
        if (s->wal_pages >= WAL_CKPT_PAGES && !s->ckpt_wanted) {
            s->ckpt_wanted = 1;
            pthread_cond_signal(&s->ckpt_cv);
        }
        if (s->wal_pages >= WAL_FORCE_PAGES) {
            pthread_mutex_unlock(&s->mu);
            int log = 0, done = 0;
            sqlite3_wal_checkpoint_v2(s->wdb, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
            s->wal_pages = 0; /* measured again at the next commit */
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

static void submit(struct store *s)
{
    struct batch *next = s->spare ? s->spare : calloc(1, sizeof *next);
    s->spare = NULL;
    if (!next)
        return; /* try again at the next turn */
    pthread_mutex_lock(&s->mu);
    s->inflight = s->accum;
    s->accum = next;
    s->pack_open = 0; /* a blob packed and never put stays behind, unused */
    s->work_ready = 1;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
}

void store_flush(struct store *s)
{
    if (!s->inflight && s->accum->n > 0)
        submit(s);
}

void store_skip_pending(struct store *s, const char *room)
{
    for (size_t j = 0; j < s->accum->n; j++)
        if (s->accum->v[j].kind != REC_SKIP &&
            strcmp(rec_str(s->accum, s->accum->v[j].room), room) == 0)
            s->accum->v[j].kind = REC_SKIP;
}

/* On the loop thread: the writer finished the batch in flight. */
static void finish(struct store *s, struct batch *b, int notify)
{
    s->inflight = NULL;
    if (!b->ok) {
        const char **rooms = malloc((b->n ? b->n : 1) * sizeof *rooms);
        size_t nrooms = 0;
        for (size_t i = 0; i < b->n && rooms; i++) {
            const char *room = rec_str(b, b->v[i].room);
            size_t k = 0;
            while (k < nrooms && strcmp(rooms[k], room) != 0)
                k++;
            if (k < nrooms)
                continue;
            rooms[nrooms++] = room;
            log_error("a transaction failed: nothing of it was committed; room %s reloads from "
                      "the database",
                      room);
            /* What the next batch holds for that room builds on what failed. */
            store_skip_pending(s, room);
        }
        if (notify && s->hooks.on_fail && rooms)
            s->hooks.on_fail(s->hooks.arg, s->durable + b->n, rooms, nrooms);
        free(rooms);
    }
    s->durable += b->n;
    if (!s->spare && b->cap <= 4096 && b->memcap <= 1048576) { /* keep it for a later turn */
        b->n = b->used = 0;
        b->ok = 0;
        s->spare = b;
    } else {
        batch_free(b);
    }
    if (notify && s->hooks.on_commit)
        s->hooks.on_commit(s->hooks.arg);
}

static void on_async(uv_async_t *h)
{
    struct store *s = h->data;
    pthread_mutex_lock(&s->mu);
    struct batch *b = s->done;
    s->done = NULL;
    pthread_mutex_unlock(&s->mu);
    if (!b)
        return;
    finish(s, b, 1);
    store_flush(s);
}

/* Writer thread, after each commit: how many pages the WAL holds. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    ((struct store *)arg)->wal_pages = pages;
    return SQLITE_OK;
}

static int open_db(const char *path, sqlite3 **db)
{
    int rc = sqlite3_open_v2(
        path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        log_error("cannot open database %s: %s", path,
                  *db ? sqlite3_errmsg(*db) : sqlite3_errstr(rc));
        return RF_EINTERNAL;
    }
    sqlite3_busy_timeout(*db, 2000); /* writer thread: another process may hold a lock */
    return 0;
}

/* The page caches (--cache-mb): the writer's holds the pages every room's
 * writes land on; the reader (joins of rooms not in memory) and the
 * checkpointer (which copies WAL frames without its cache) keep 2 MiB. */
#define SIDE_CACHE_KIB 2048
static int set_cache(sqlite3 *db, int64_t kib)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%lld", (long long)kib);
    return exec(db, sql);
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        log_error("sqlite prepare failed: %s", sqlite3_errmsg(db));
        return RF_EINTERNAL;
    }
    return 0;
}

/* The statements that read a room (store_load_room), in struct
 * store_reader's order. */
static const char *const READ_SQL[] = {
    "SELECT coalesce(max(seq), 0) FROM events WHERE room = ?1",
    "SELECT created_at, meta FROM rooms WHERE id = ?1",
    "SELECT pid, data FROM participants WHERE room = ?1",
    /* In key order (a scan): the backlog sorts them by rank, which is
     * twice as fast as walking the rank index for 10,000 items. */
    "SELECT id, rank, data FROM items WHERE room = ?1",
    "SELECT id, data FROM rounds WHERE room = ?1 ORDER BY seqno",
    "SELECT seq, payload FROM (SELECT seq, payload FROM events WHERE room = ?1"
    " ORDER BY seq DESC LIMIT ?2) ORDER BY seq",
};
#define NREADS (sizeof READ_SQL / sizeof READ_SQL[0])

static int prepare_reads(sqlite3 *db, sqlite3_stmt **st[NREADS])
{
    for (size_t i = 0; i < NREADS; i++)
        if (prepare(db, READ_SQL[i], st[i]))
            return RF_EINTERNAL;
    return 0;
}

static void free_store(uv_handle_t *h)
{
    free(h->data);
}

static int64_t query_int(sqlite3 *db, const char *sql, int64_t dflt)
{
    sqlite3_stmt *st;
    int64_t v = dflt;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return dflt;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* Start-up: a database holding fewer committed events than the count last
 * written beside it was restored from a backup (store.h). */
static int check_restore(struct store *s, const char *path)
{
    if (snprintf(s->high_water_path, sizeof s->high_water_path, "%s.high-water", path) >=
        (int)sizeof s->high_water_path)
        return RF_EINTERNAL;
    int64_t events = query_int(s->wdb, "SELECT value FROM server_state WHERE key = 'events'", -1);
    if (events < 0)
        events = query_int(s->wdb, "SELECT count(*) FROM events", 0);
    int64_t restores =
        query_int(s->wdb, "SELECT value FROM server_state WHERE key = 'restores'", 0);
    long long seen = 0;
    FILE *f = fopen(s->high_water_path, "r");
    if (f) {
        if (fscanf(f, "%lld", &seen) != 1)
            seen = 0;
        fclose(f);
    }
    if (seen > events) {
        restores++;
        log_warn("the database holds %lld committed events but %lld were committed before: it "
                 "was restored from a backup (or lost its last changes); every room gets a new "
                 "epoch, so clients reload their state",
                 (long long)events, seen);
    }
    char sql[256];
    snprintf(sql, sizeof sql,
             "INSERT INTO server_state(key, value) VALUES('events', %lld), ('restores', %lld)"
             " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
             (long long)events, (long long)restores);
    if (exec(s->wdb, sql))
        return RF_EINTERNAL;
    s->events = s->events_committed = events;
    s->high_water_written = -1;
    write_high_water(s, events, 1);
    s->restores = (uint64_t)restores;
    s->rooms = (uint64_t)query_int(s->wdb, "SELECT count(*) FROM rooms", 0);
    return 0;
}

uint64_t store_restores(const struct store *s)
{
    return s->restores;
}

uint64_t store_room_count(const struct store *s)
{
    return s->rooms;
}

int store_open(struct store **out, const char *path, const struct store_options *opts,
               uv_loop_t *loop, const struct store_hooks *hooks)
{
    struct store *s = calloc(1, sizeof *s);
    if (!s)
        return RF_ENOMEM;
    s->hooks = *hooks;
    s->accum = calloc(1, sizeof *s->accum);
    if (!s->accum)
        goto fail;
    if (open_db(path, &s->wdb))
        goto fail;
    if (exec(s->wdb, "PRAGMA journal_mode = WAL") ||
        /* No checkpoint inside a commit (see WAL_CKPT_PAGES), and a page
         * cache that holds the pages every room's writes land on. */
        exec(s->wdb, "PRAGMA wal_autocheckpoint = 0") ||
        set_cache(s->wdb, opts->cache_mb ? (int64_t)opts->cache_mb * 1024 : 65536) ||
        exec(s->wdb,
             opts->full_sync ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL") ||
        exec(s->wdb, "PRAGMA foreign_keys = ON") || migrate(s->wdb) || check_restore(s, path))
        goto fail;
    if (opts->max_mb) {
        char sql[96];
        int64_t page = query_int(s->wdb, "PRAGMA page_size", 4096);
        snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
                 (long long)((int64_t)opts->max_mb * 1048576 / page));
        if (exec(s->wdb, sql))
            goto fail;
    }
    sqlite3_wal_hook(s->wdb, on_wal, s);
    for (int i = 0; i < REC__COUNT; i++)
        if (prepare(s->wdb, WRITE_SQL[i], &s->w[i]))
            goto fail;
    if (prepare(s->wdb, "UPDATE server_state SET value = value + ?1 WHERE key = 'events'",
                &s->w_events))
        goto fail;
    /* The reader works on the loop thread: it must never wait long for a lock. */
    if (open_db(path, &s->rdb) || sqlite3_busy_timeout(s->rdb, 100) ||
        exec(s->rdb, "PRAGMA wal_autocheckpoint = 0") || set_cache(s->rdb, SIDE_CACHE_KIB) ||
        prepare_reads(s->rdb, (sqlite3_stmt * *[]){&s->r_seq, &s->r_room, &s->r_parts, &s->r_items,
                                                   &s->r_rounds, &s->r_events}) ||
        prepare(s->rdb, "SELECT 1", &s->r_ping))
        goto fail;
    /* A connection learns the database is in WAL mode only when it reads
     * it; until then a checkpoint through it does nothing (log = -1). */
    if (open_db(path, &s->cdb) || exec(s->cdb, "PRAGMA wal_autocheckpoint = 0") ||
        set_cache(s->cdb, SIDE_CACHE_KIB) || exec(s->cdb, "PRAGMA journal_mode = WAL"))
        goto fail;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    pthread_cond_init(&s->ckpt_cv, NULL);
    if (uv_async_init(loop, &s->async, on_async))
        goto fail;
    s->async.data = s;
    if (pthread_create(&s->thread, NULL, writer_main, s)) {
        uv_close((uv_handle_t *)&s->async, NULL);
        goto fail;
    }
    if (pthread_create(&s->ckpt_thread, NULL, ckpt_main, s)) {
        pthread_mutex_lock(&s->mu);
        s->quit = 1;
        pthread_cond_signal(&s->work_cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        uv_close((uv_handle_t *)&s->async, NULL);
        goto fail;
    }
    *out = s;
    return 0;
fail:
    close_dbs(s);
    batch_free(s->accum);
    free(s);
    return RF_EINTERNAL;
}

void store_close(struct store *s)
{
    if (!s)
        return;
    /* Drain: write what is in flight and what is still accumulating. */
    for (;;) {
        if (!s->inflight) {
            if (s->accum->n == 0)
                break;
            submit(s);
        }
        pthread_mutex_lock(&s->mu);
        while (!s->done)
            pthread_cond_wait(&s->done_cv, &s->mu);
        struct batch *b = s->done;
        s->done = NULL;
        pthread_mutex_unlock(&s->mu);
        finish(s, b, 0);
    }
    /* The reader goes first, so that the writer's connection is the last
     * and its close (and checkpoint) runs on the writer thread. */
    close_reader(s);
    /* The checkpointer stops first: it may be writing the high-water file,
     * which the writer writes last when it closes (issue #11: woken
     * together, both wrote it at once). */
    pthread_mutex_lock(&s->mu);
    s->ckpt_quit = 1;
    pthread_cond_signal(&s->ckpt_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->ckpt_thread, NULL);
    pthread_mutex_lock(&s->mu);
    s->quit = 1;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL); /* the writer closes last: the final checkpoint is its */
    batch_free(s->accum);
    batch_free(s->spare);
    pthread_cond_destroy(&s->ckpt_cv);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    uv_close((uv_handle_t *)&s->async, free_store);
}

uint64_t store_added(const struct store *s)
{
    return s->added;
}

uint64_t store_durable(const struct store *s)
{
    return s->durable;
}

/* Copies len bytes (a string with its NUL when len is NONE) into bt's
 * arena; returns the offset, or NONE for NULL data. *oom on failure. */
static size_t arena_add(struct batch *bt, const void *data, size_t len, int *oom)
{
    if (!data)
        return NONE;
    if (len == NONE)
        len = strlen(data) + 1;
    if (bt->used + len > bt->memcap) {
        size_t cap = bt->memcap ? bt->memcap : 4096;
        while (cap < bt->used + len)
            cap *= 2;
        char *mem = realloc(bt->mem, cap);
        if (!mem) {
            *oom = 1;
            return NONE;
        }
        bt->mem = mem;
        bt->memcap = cap;
    }
    size_t off = bt->used;
    memcpy(bt->mem + off, data, len);
    bt->used += len;
    return off;
}

static int arena_write(void *data, const char *buf, size_t len)
{
    struct store *s = data;
    int oom = 0;
    if (len && !s->pack_oom)
        arena_add(s->accum, buf, len, &oom);
    s->pack_oom |= oom;
    return oom ? -1 : 0;
}

msgpack_packer *store_packer(struct store *s)
{
    if (s->pack_open)
        s->accum->used = s->pack_start; /* one that was never put */
    s->pack_start = s->accum->used;
    s->pack_open = 1;
    s->pack_oom = 0;
    msgpack_packer_init(&s->pk, s, arena_write);
    return &s->pk;
}

/* Appends a record. Its blob: blob[0..len), or with PACKED, what was
 * packed since store_packer(). */
static const char PACKED[1];

static int append(struct store *s, enum rec_kind kind, const char *room, const char *a,
                  const char *b, int64_t i1, int64_t i2, const void *blob, size_t len)
{
    struct batch *bt = s->accum;
    size_t packed = NONE;
    if (blob == PACKED) {
        if (!s->pack_open)
            return RF_EINTERNAL; /* defensive: a put without store_packer() */
        s->pack_open = 0;
        if (s->pack_oom) {
            bt->used = s->pack_start;
            return RF_ENOMEM;
        }
        packed = s->pack_start;
        len = bt->used - packed;
    }
    if (bt->n == bt->cap) {
        size_t cap = bt->cap ? bt->cap * 2 : 64;
        struct rec *v = realloc(bt->v, cap * sizeof *v);
        if (!v) {
            if (packed != NONE)
                bt->used = packed;
            return RF_ENOMEM;
        }
        bt->v = v;
        bt->cap = cap;
    }
    int oom = 0;
    size_t used = packed != NONE ? packed : bt->used;
    struct rec r = {kind,
                    arena_add(bt, room, NONE, &oom),
                    arena_add(bt, a, NONE, &oom),
                    arena_add(bt, b, NONE, &oom),
                    NONE,
                    i1,
                    i2,
                    len};
    if (packed != NONE)
        r.blob = len ? packed : NONE;
    else
        r.blob = blob && len ? arena_add(bt, blob, len, &oom) : NONE;
    if (oom) {
        bt->used = used;
        return RF_ENOMEM;
    }
    bt->v[bt->n++] = r;
    s->added++;
    return 0;
}

int store_put_room(struct store *s, const char *room, int64_t created_at)
{
    return append(s, REC_ROOM, room, NULL, NULL, created_at, 0, PACKED, 0);
}

int store_put_participant(struct store *s, const char *room, const char *pid)
{
    return append(s, REC_PART, room, pid, NULL, 0, 0, PACKED, 0);
}

int store_put_item(struct store *s, const char *room, const char *id, const char *rank)
{
    return append(s, REC_ITEM, room, id, rank, 0, 0, PACKED, 0);
}

int store_del_item(struct store *s, const char *room, const char *id)
{
    return append(s, REC_DEL_ITEM, room, id, NULL, 0, 0, NULL, 0);
}

int store_put_round(struct store *s, const char *room, const char *id)
{
    /* Round ids are "r<number>": the number orders them. */
    return append(s, REC_ROUND, room, id, NULL, strtoll(id + 1, NULL, 10), 0, PACKED, 0);
}

int store_add_event(struct store *s, const char *room, uint64_t seq, int64_t at, const char *by,
                    const char *type, const void *payload, size_t len)
{
    return append(s, REC_EVENT, room, by, type, (int64_t)seq, at, payload, len);
}

static int read_rows(sqlite3_stmt *st, const char *room, int (*row)(void *, sqlite3_stmt *),
                     void *arg)
{
    int rc = 0, step;
    bind_text(st, 1, room);
    while ((step = sqlite3_step(st)) == SQLITE_ROW)
        if ((rc = row(arg, st)))
            break;
    if (!rc && step != SQLITE_DONE && step != SQLITE_ROW) {
        log_error("sqlite read failed: %s", sqlite3_errstr(step));
        rc = RF_EINTERNAL;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

struct load_ctx {
    const struct store_room_reader *r;
    int found;
    uint64_t seq;
};

static int row_seq(void *arg, sqlite3_stmt *st)
{
    ((struct load_ctx *)arg)->seq = (uint64_t)sqlite3_column_int64(st, 0);
    return 0;
}

static int row_room(void *arg, sqlite3_stmt *st)
{
    struct load_ctx *c = arg;
    c->found = 1;
    return c->r->room(c->r->arg, sqlite3_column_int64(st, 0), c->seq, sqlite3_column_blob(st, 1),
                      (size_t)sqlite3_column_bytes(st, 1));
}

static int row_part(void *arg, sqlite3_stmt *st)
{
    struct load_ctx *c = arg;
    return c->r->participant(c->r->arg, (const char *)sqlite3_column_text(st, 0),
                             sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
}

static int row_item(void *arg, sqlite3_stmt *st)
{
    struct load_ctx *c = arg;
    return c->r->item(c->r->arg, (const char *)sqlite3_column_text(st, 0),
                      (const char *)sqlite3_column_text(st, 1), sqlite3_column_blob(st, 2),
                      (size_t)sqlite3_column_bytes(st, 2));
}

static int row_round(void *arg, sqlite3_stmt *st)
{
    struct load_ctx *c = arg;
    return c->r->round(c->r->arg, (const char *)sqlite3_column_text(st, 0),
                       sqlite3_column_blob(st, 1), (size_t)sqlite3_column_bytes(st, 1));
}

static int row_event(void *arg, sqlite3_stmt *st)
{
    struct load_ctx *c = arg;
    return c->r->event(c->r->arg, (uint64_t)sqlite3_column_int64(st, 0), sqlite3_column_blob(st, 1),
                       (size_t)sqlite3_column_bytes(st, 1));
}

/* The statements that read a room, on one connection. */
struct store_reader {
    sqlite3 *db;
    sqlite3_stmt *seq, *room, *parts, *items, *rounds, *events;
};

static int reader_load(const struct store_reader *q, const char *room, size_t max_events,
                       const struct store_room_reader *r)
{
    struct load_ctx c = {r, 0, 0};
    int rc;
    /* One read transaction, so the parts agree with each other. */
    if (exec(q->db, "BEGIN"))
        return RF_EINTERNAL;
    if ((rc = read_rows(q->seq, room, row_seq, &c)) ||
        (rc = read_rows(q->room, room, row_room, &c)))
        goto out;
    if (!c.found) {
        rc = RF_ENOT_FOUND;
        goto out;
    }
    if ((rc = read_rows(q->parts, room, row_part, &c)) ||
        (rc = read_rows(q->items, room, row_item, &c)) ||
        (rc = read_rows(q->rounds, room, row_round, &c)))
        goto out;
    sqlite3_bind_int64(q->events, 2, (sqlite3_int64)max_events);
    rc = read_rows(q->events, room, row_event, &c);
out:
    exec(q->db, "COMMIT");
    return rc;
}

int store_load_room(struct store *s, const char *room, size_t max_events,
                    const struct store_room_reader *r)
{
    const struct store_reader q = {.db = s->rdb,
                                   .seq = s->r_seq,
                                   .room = s->r_room,
                                   .parts = s->r_parts,
                                   .items = s->r_items,
                                   .rounds = s->r_rounds,
                                   .events = s->r_events};
    return reader_load(&q, room, max_events, r);
}

int store_healthy(struct store *s)
{
    int ok = sqlite3_step(s->r_ping) == SQLITE_ROW;
    sqlite3_reset(s->r_ping);
    return ok;
}

/* ---- readers for other threads ------------------------------------------ */

int store_reader_open(struct store *s, struct store_reader **out)
{
    struct store_reader *q = calloc(1, sizeof *q);
    if (!q)
        return RF_ENOMEM;
    const char *path = sqlite3_db_filename(s->rdb, "main");
    if (!path || !*path || open_db(path, &q->db) || exec(q->db, "PRAGMA wal_autocheckpoint = 0") ||
        set_cache(q->db, SIDE_CACHE_KIB) ||
        prepare_reads(q->db, (sqlite3_stmt * *[]){&q->seq, &q->room, &q->parts, &q->items,
                                                  &q->rounds, &q->events})) {
        store_reader_close(q);
        return RF_EINTERNAL;
    }
    *out = q;
    return 0;
}

int store_reader_load_room(struct store_reader *q, const char *room, size_t max_events,
                           const struct store_room_reader *r)
{
    return reader_load(q, room, max_events, r);
}

void store_reader_close(struct store_reader *q)
{
    if (!q)
        return;
    sqlite3_stmt *st[] = {q->seq, q->room, q->parts, q->items, q->rounds, q->events};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        sqlite3_finalize(st[i]);
    sqlite3_close(q->db);
    free(q);
}
