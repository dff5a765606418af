/* The store's opening and closing: the schema and its migrations, restore
 * detection (the high-water file), the SQLite helpers the store files share,
 * and the small public accessors. store_open and store_close run on the loop
 * thread (store_open before the writer and checkpointer threads exist,
 * store_close until they have stopped); write_high_water runs on the thread
 * that owns the high-water file at the time (struct store).
 * The batch is in store_batch.c, the threads in store_writer.c, reading in
 * store_read.c; store_int.h is what they share. */
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"
#include "log.h"
#include "store.h"
#include "store_int.h"

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
    /* 4: Kano surveys, one per item, answers included */
    ("CREATE TABLE kano(room TEXT NOT NULL, item TEXT NOT NULL, seqno INTEGER NOT NULL,"
     " data BLOB NOT NULL, PRIMARY KEY(room, item)) WITHOUT ROWID;"),
    /* 5: the instance's name (names.key 'instance'); rooms moved away (moved) */
    "CREATE TABLE names(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE moved(room TEXT PRIMARY KEY, to_room TEXT NOT NULL, at INTEGER NOT NULL) WITHOUT "
    "ROWID;",
    /* 6: the log, the tables written behind it (store_log.c): a row per
     * transaction, its n records packed in data (ids id .. id + n - 1); a
     * schema-5 database has every record in its tables already: its mark is 0 */
    "CREATE TABLE log(id INTEGER PRIMARY KEY, n INTEGER NOT NULL, data BLOB NOT NULL);",
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
    [REC_KANO] = "INSERT INTO kano(room, item, seqno, data) VALUES(?1, ?2, ?3, ?4)"
                 " ON CONFLICT(room, item) DO UPDATE SET data = excluded.data",
    [REC_EVENT] = "INSERT INTO events(room, seq, at, author, type, payload)"
                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(room, seq) DO UPDATE SET"
                  " at = excluded.at, author = excluded.author, type = excluded.type,"
                  " payload = excluded.payload",
    [REC_MOVED] = "INSERT INTO moved(room, to_room, at) VALUES(?1, ?2, ?3)"
                  " ON CONFLICT(room) DO UPDATE SET to_room = excluded.to_room, at = excluded.at",
};

int store__exec(sqlite3 *db, const char *sql)
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
        if (store__exec(db, "BEGIN IMMEDIATE") || store__exec(db, MIGRATIONS[v]) ||
            store__exec(db, pragma) || store__exec(db, "COMMIT")) {
            store__exec(db, "ROLLBACK");
            return RF_EINTERNAL;
        }
        log_info("database migrated to schema version %d", v + 1);
    }
    return 0;
}

int store__bind_text(sqlite3_stmt *st, int i, const char *s)
{
    return s ? sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC) : sqlite3_bind_null(st, i);
}

int store__step_write(sqlite3 *db, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_DONE) {
        log_error("sqlite write failed: %s", sqlite3_errmsg(db));
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
void store__write_high_water(struct store *s, int64_t events, int force)
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

static void close_dbs(struct store *s)
{
    store__close_reader(s);
    sqlite3_close(s->cdb);
    s->cdb = NULL;
    store__close_writer(s);
}

int store__open_db(const char *path, sqlite3 **db)
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

int store__set_cache(sqlite3 *db, int64_t kib)
{
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA cache_size = -%lld", (long long)kib);
    return store__exec(db, sql);
}

int store__prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        log_error("sqlite prepare failed: %s", sqlite3_errmsg(db));
        return RF_EINTERNAL;
    }
    return 0;
}

static void free_store(uv_handle_t *h)
{
    struct store *s = h->data;
    if (--s->open_handles == 0)
        free(s);
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
    if (store__exec(s->wdb, sql))
        return RF_EINTERNAL;
    s->events = s->events_committed = events;
    s->high_water_written = -1;
    store__write_high_water(s, events, 1);
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
    /* First: the log's recovery at open takes mu (store_log.c). */
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->work_cv, NULL);
    pthread_cond_init(&s->done_cv, NULL);
    pthread_cond_init(&s->ckpt_cv, NULL);
    pthread_cond_init(&s->mat_cv, NULL);
    s->cycle_s = (double)(opts->cycle_ms ? opts->cycle_ms : 5000) / 1000;
    s->accum = calloc(1, sizeof *s->accum);
    if (!s->accum)
        goto fail;
    if (store__open_db(path, &s->wdb))
        goto fail;
    if (store__exec(s->wdb, "PRAGMA journal_mode = WAL") ||
        /* No checkpoint inside a commit (see WAL_CKPT_PAGES), and a page
         * cache that holds the pages every room's writes land on. */
        store__exec(s->wdb, "PRAGMA wal_autocheckpoint = 0") ||
        store__set_cache(s->wdb, opts->cache_mb ? (int64_t)opts->cache_mb * 1024 : 65536) ||
        store__exec(s->wdb, opts->full_sync ? "PRAGMA synchronous = FULL"
                                            : "PRAGMA synchronous = NORMAL") ||
        (s->full_sync = opts->full_sync, 0) || store__exec(s->wdb, "PRAGMA foreign_keys = ON") ||
        migrate(s->wdb))
        goto fail;
    for (int i = 0; i < REC__COUNT; i++)
        if (store__prepare(s->wdb, WRITE_SQL[i], &s->w[i]))
            goto fail;
    if (store__prepare(s->wdb, "UPDATE server_state SET value = value + ?1 WHERE key = 'events'",
                       &s->w_events))
        goto fail;
    /* Recovery: the log after the mark into the tables, before anything
     * reads them (and before the size cap, which a full database would
     * otherwise keep it from). */
    if (store__log_prepare(s) || store__log_drain(s) || check_restore(s, path) ||
        store__load_moved(s))
        goto fail;
    if (opts->max_mb) {
        char sql[96];
        int64_t page = query_int(s->wdb, "PRAGMA page_size", 4096);
        s->max_pages = (int64_t)opts->max_mb * 1048576 / page;
        snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld", (long long)s->max_pages);
        if (store__exec(s->wdb, sql))
            goto fail;
    }
    sqlite3_wal_hook(s->wdb, store__on_wal, s);
    /* The loop's connection (the ping) must never wait long for a lock. */
    if (store__open_db(path, &s->rdb) || sqlite3_busy_timeout(s->rdb, 100) ||
        store__exec(s->rdb, "PRAGMA wal_autocheckpoint = 0") ||
        store__set_cache(s->rdb, SIDE_CACHE_KIB) || store__prepare(s->rdb, "SELECT 1", &s->r_ping))
        goto fail;
    /* A connection learns the database is in WAL mode only when it reads
     * it; until then a checkpoint through it does nothing (log = -1). */
    if (store__open_db(path, &s->cdb) || store__exec(s->cdb, "PRAGMA wal_autocheckpoint = 0") ||
        store__set_cache(s->cdb, SIDE_CACHE_KIB) ||
        store__exec(s->cdb, "PRAGMA journal_mode = WAL"))
        goto fail;
    if (uv_async_init(loop, &s->async, store__on_async))
        goto fail;
    s->async.data = s;
    if (pthread_create(&s->thread, NULL, store__writer_main, s)) {
        uv_close((uv_handle_t *)&s->async, NULL);
        goto fail;
    }
    if (pthread_create(&s->ckpt_thread, NULL, store__ckpt_main, s)) {
        pthread_mutex_lock(&s->mu);
        s->quit = 1;
        pthread_cond_signal(&s->work_cv);
        pthread_mutex_unlock(&s->mu);
        pthread_join(s->thread, NULL);
        uv_close((uv_handle_t *)&s->async, NULL);
        goto fail;
    }
    uv_timer_init(loop, &s->group_timer);
    s->group_timer.data = s;
    s->group_ms = opts->group_ms;
    s->open_handles = 2;
    *out = s;
    return 0;
fail:
    close_dbs(s);
    store__batch_free(s->accum);
    store__free_moved(s);
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
            store__submit(s);
        }
        pthread_mutex_lock(&s->mu);
        while (!s->done)
            pthread_cond_wait(&s->done_cv, &s->mu);
        struct batch *b = s->done;
        s->done = NULL;
        pthread_mutex_unlock(&s->mu);
        store__finish(s, b, 0);
    }
    /* The reader goes first, so that the writer's connection is the last
     * and its close (and checkpoint) runs on the writer thread. */
    store__close_reader(s);
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
    store__batch_free(s->accum);
    store__batch_free(s->spare);
    store__free_moved(s);
    pthread_cond_destroy(&s->ckpt_cv);
    pthread_cond_destroy(&s->mat_cv);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->work_cv);
    pthread_cond_destroy(&s->done_cv);
    uv_close((uv_handle_t *)&s->group_timer, free_store);
    uv_close((uv_handle_t *)&s->async, free_store);
}

int store_name_get(struct store *s, const char *key, char *out, size_t n)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->rdb, "SELECT value FROM names WHERE key = ?1", -1, &st, NULL) !=
        SQLITE_OK) {
        log_error("sqlite prepare failed: %s", sqlite3_errmsg(s->rdb));
        return RF_EINTERNAL;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st), err = RF_ENOT_FOUND;
    if (rc == SQLITE_ROW) {
        const char *v = (const char *)sqlite3_column_text(st, 0);
        err = v && (size_t)snprintf(out, n, "%s", v) < n ? 0 : RF_EINTERNAL;
    } else if (rc != SQLITE_DONE) {
        log_error("sqlite: %s (reading names)", sqlite3_errmsg(s->rdb));
        err = RF_EINTERNAL;
    }
    sqlite3_finalize(st);
    return err;
}

int store_name_put(struct store *s, const char *key, const char *value)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(s->rdb,
                           "INSERT INTO names(key, value) VALUES(?1, ?2)"
                           " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                           -1, &st, NULL) != SQLITE_OK) {
        log_error("sqlite prepare failed: %s", sqlite3_errmsg(s->rdb));
        return RF_EINTERNAL;
    }
    sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        log_error("sqlite: %s (writing names)", sqlite3_errmsg(s->rdb));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : RF_EINTERNAL;
}

uint64_t store_added(const struct store *s)
{
    return s->added;
}

int store_materialize(struct store *s)
{
    pthread_mutex_lock(&s->mu);
    int64_t id = s->log_committed;
    pthread_mutex_unlock(&s->mu);
    return store__log_wait(s, id);
}

uint64_t store_durable(const struct store *s)
{
    return s->durable;
}
