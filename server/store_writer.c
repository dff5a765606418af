/* The store's threads: the writer (write_batch, one transaction per batch:
 * group commit; it also closes the database last) and the checkpointer
 * (copies the WAL back into the database). finish and on_async run on the
 * loop thread: they take a written batch back from the writer and run the
 * hooks. */
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "log.h"
#include "store.h"
#include "store_int.h"

/* The WAL is copied back into the database by the checkpointer thread as
 * soon as it holds WAL_CKPT_PAGES pages after a commit, and once a second;
 * the writer starts it over when a checkpoint has copied all of it. Only if
 * the checkpointer falls behind a stream of commits and the WAL reaches
 * WAL_FORCE_PAGES does the writer checkpoint itself (after reporting its
 * commit, so no reply waits for it), which keeps the file bounded. */
#define WAL_CKPT_PAGES  1000
#define WAL_FORCE_PAGES 8192

/* A record into its state table: an upsert or a delete, so applying the
 * log again from the mark after a crash gives the same tables. */
int store__apply_rec(struct store *s, const struct batch *bt, const struct rec *rec)
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
    store__bind_text(st, 1, r->room);
    switch (r->kind) {
    case REC_ROOM:
        sqlite3_bind_int64(st, 2, r->i1);
        sqlite3_bind_blob(st, 3, r->blob, n, SQLITE_STATIC);
        break;
    case REC_PART:
        store__bind_text(st, 2, r->a);
        sqlite3_bind_blob(st, 3, r->blob, n, SQLITE_STATIC);
        break;
    case REC_ITEM:
        store__bind_text(st, 2, r->a);
        store__bind_text(st, 3, r->b);
        sqlite3_bind_blob(st, 4, r->blob, n, SQLITE_STATIC);
        break;
    case REC_DEL_ITEM:
        store__bind_text(st, 2, r->a);
        break;
    case REC_ROUND:
    case REC_KANO:
        store__bind_text(st, 2, r->a);
        sqlite3_bind_int64(st, 3, r->i1);
        sqlite3_bind_blob(st, 4, r->blob, n, SQLITE_STATIC);
        break;
    case REC_MOVED:
        store__bind_text(st, 2, r->a);
        sqlite3_bind_int64(st, 3, r->i1);
        break;
    case REC_EVENT:
        sqlite3_bind_int64(st, 2, r->i1);
        sqlite3_bind_int64(st, 3, r->i2);
        store__bind_text(st, 4, r->a);
        store__bind_text(st, 5, r->b);
        sqlite3_bind_blob(st, 6, r->blob, n, SQLITE_STATIC);
        break;
    default:
        break;
    }
    return store__step_write(s->wdb, st);
}

/* Writer thread: one transaction per batch, its records appended to the
 * log (the tables catch up behind: store_log.c). */
static int write_batch(struct store *s, struct batch *b)
{
    int64_t events = 0, log_id = s->log_id;
    size_t pend_n = s->pend_n, pend_used = s->pend_b ? s->pend_b->used : 0;
    b->info.records = b->info.events = 0;
    if (store__exec(s->wdb, "BEGIN IMMEDIATE"))
        return 0;
    if (store__log_append(s, b))
        goto fail;
    for (size_t i = 0; i < b->n; i++) {
        events += b->v[i].kind == REC_EVENT;
        b->info.records += b->v[i].kind != REC_SKIP;
    }
    /* The events are added to server_state's count when the log is applied
     * (store_log.c): a page less in every transaction. */
    if (store__log_publish(s, pend_n) || store__exec(s->wdb, "COMMIT"))
        goto fail;
    s->events += events;
    b->info.events = (uint64_t)events;
    return 1;
fail:
    store__exec(s->wdb, "ROLLBACK");
    store__log_rollback(s, log_id, pend_n, pend_used); /* the ids it gave are not in the log */
    return 0;
}

void store__close_writer(struct store *s)
{
    if (s->wdb && s->high_water_path[0])
        store__write_high_water(s, s->events, 1);
    sqlite3_finalize(s->w_events);
    s->w_events = NULL;
    store__log_finalize(s);
    for (int i = 0; i < REC__COUNT; i++) {
        sqlite3_finalize(s->w[i]);
        s->w[i] = NULL;
    }
    sqlite3_close(s->wdb);
    s->wdb = NULL;
}

/* The page size of db's database (0: unknown). */
static int page_size(sqlite3 *db)
{
    sqlite3_stmt *st = NULL;
    int n = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* The bytes this thread has handed to write(2) and its kin so far (the
 * kernel's count: wchar in /proc/thread-self/io); -1 if it cannot be read. */
static int64_t thread_wchar(void)
{
    char line[128];
    long long v = -1;
    FILE *f = fopen("/proc/thread-self/io", "re");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "wchar: %lld", &v) == 1)
            break;
    if (f)
        fclose(f);
    return v;
}

/* A PASSIVE checkpoint through db, whose pages are `page` bytes: SQLite's
 * code, and in *pages the pages it wrote into the database file. SQLite
 * counts the WAL frames it backfilled, but copies a page written several
 * times since the last checkpoint once: every write of a checkpoint being
 * one page of the database file, the pages are the bytes this thread wrote
 * during it over the page size (0 where the kernel does not count them). */
static int checkpoint(sqlite3 *db, int page, uint64_t *pages)
{
    int log = 0, done = 0;
    int64_t w0 = thread_wchar();
    int rc = sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    int64_t w1 = thread_wchar();
    *pages = w0 >= 0 && w1 > w0 && page > 0 ? (uint64_t)((w1 - w0) / page) : 0;
    return rc;
}

/* The checkpointer: copies the WAL back into the database when the writer
 * reports WAL_CKPT_PAGES, and once a second (PASSIVE: never waits for the
 * writer or readers). Checkpoints and their fsyncs run here, so neither the
 * loop nor group commit waits for them. */
void *store__ckpt_main(void *arg)
{
    struct store *s = arg;
    int page = page_size(s->cdb);
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
            store__write_high_water(s, events, 0);
        uint64_t pages;
        int rc = checkpoint(s->cdb, page, &pages);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("WAL checkpoint failed: %s", sqlite3_errmsg(s->cdb));
        pthread_mutex_lock(&s->mu);
        s->ckpt_pages += pages;
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

/* Writer thread, under mu: no batch waits; until one does (or quit, or a
 * cycle of the log is due), waits: at most until the log's next cycle is
 * due by time, and after IDLE_RELEASE_S gives its memory back. */
static void writer_wait(struct store *s, int *wrote)
{
    while (!s->work_ready && !s->quit && !store__log_due(s)) {
        int pending = s->log_committed > s->mat_done;
        /* A cycle or a trim under way, paced: its next step's time. */
        double pace = s->cycle_on || s->log_trimmed < s->log_mark ? store__log_pace(s) : 0;
        if (!*wrote && !pending && pace == 0) {
            pthread_cond_wait(&s->work_cv, &s->mu);
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        if (pace > 0) {
            long ns = until.tv_nsec + (long)(pace * 1e9);
            until.tv_sec += ns / 1000000000;
            until.tv_nsec = ns % 1000000000;
        } else {
            until.tv_sec += pending ? 1 : IDLE_RELEASE_S;
        }
        if (pthread_cond_timedwait(&s->work_cv, &s->mu, &until) == ETIMEDOUT && !pending &&
            pace == 0 && !s->work_ready && !s->quit) {
            /* Idle: give the page cache back, and the heap it leaves free. */
            pthread_mutex_unlock(&s->mu);
            sqlite3_db_release_memory(s->wdb);
            malloc_trim(0);
            *wrote = 0;
            pthread_mutex_lock(&s->mu);
        }
    }
}

/* Writer thread, mu not held: one transaction of the log's cycle; waiters
 * learn when it ended or failed. */
static void writer_step(struct store *s)
{
    int rc = store__log_step(s);
    int frames = 0, high = 0; /* the step's pages (the batches' are read after each) */
    sqlite3_db_status(s->wdb, SQLITE_DBSTATUS_CACHE_WRITE, &frames, &high, 1);
    s->log_frames += (uint64_t)frames;
    pthread_mutex_lock(&s->mu);
    s->mat_done = s->log_mark;
    if (rc < 0)
        s->mat_failures++;
    pthread_cond_broadcast(&s->mat_cv);
    pthread_mutex_unlock(&s->mu);
}

void *store__writer_main(void *arg)
{
    struct store *s = arg;
    int wrote = 0; /* a batch since the last release */
    int page = page_size(s->wdb), frames = 0, high = 0;
    /* SQLite's count of the pages this connection wrote (into the WAL),
     * from here on: read and reset after each batch. */
    sqlite3_db_status(s->wdb, SQLITE_DBSTATUS_CACHE_WRITE, &frames, &high, 1);
    pthread_mutex_lock(&s->mu);
    for (;;) {
        writer_wait(s, &wrote);
        if (!s->work_ready && s->quit) {
            /* The tables catch up with the log (what is left, if that
             * fails, is applied at the next open); closing the last
             * connection checkpoints the WAL: here, on the writer thread,
             * never on the loop thread. */
            pthread_mutex_unlock(&s->mu);
            store__log_drain(s);
            pthread_mutex_lock(&s->mu);
            s->mat_done = s->log_mark;
            pthread_cond_broadcast(&s->mat_cv);
            store__close_writer(s);
            break;
        }
        if (!s->work_ready) { /* a cycle of the log is due */
            pthread_mutex_unlock(&s->mu);
            writer_step(s);
            pthread_mutex_lock(&s->mu);
            continue;
        }
        struct batch *b = s->inflight;
        s->work_ready = 0;
        pthread_mutex_unlock(&s->mu);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        b->ok = write_batch(s, b);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        b->info.seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        b->info.ok = b->ok;
        sqlite3_db_status(s->wdb, SQLITE_DBSTATUS_CACHE_WRITE, &frames, &high, 1);
        b->info.wal_frames = (uint64_t)frames + s->log_frames;
        b->info.log_frames = s->log_frames;
        s->log_frames = 0;
        wrote = 1;
        pthread_mutex_lock(&s->mu);
        b->info.ckpt_pages = s->ckpt_pages;
        s->ckpt_pages = 0;
        s->events_committed = s->events;
        s->log_committed = s->log_id;
        s->done = b;
        pthread_cond_signal(&s->done_cv);
        uv_async_send(&s->async);
        if (s->wal_pages >= WAL_CKPT_PAGES && !s->ckpt_wanted) {
            s->ckpt_wanted = 1;
            pthread_cond_signal(&s->ckpt_cv);
        }
        if (s->wal_pages >= WAL_FORCE_PAGES) {
            pthread_mutex_unlock(&s->mu);
            uint64_t pages;
            checkpoint(s->wdb, page, &pages);
            s->wal_pages = 0; /* measured again at the next commit */
            pthread_mutex_lock(&s->mu);
            s->ckpt_pages += pages;
        }
        /* A cycle in progress goes on between batches: one of its
         * transactions after each batch. */
        if (store__log_due(s)) {
            pthread_mutex_unlock(&s->mu);
            writer_step(s);
            pthread_mutex_lock(&s->mu);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* On the loop thread: the writer finished the batch in flight. */
void store__finish(struct store *s, struct batch *b, int notify)
{
    s->inflight = NULL;
    s->last = b->info;
    if (!b->ok) {
        s->failures++;
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
        store__batch_free(b);
    }
    if (notify && s->hooks.on_commit)
        s->hooks.on_commit(s->hooks.arg);
}

void store__on_async(uv_async_t *h)
{
    struct store *s = h->data;
    pthread_mutex_lock(&s->mu);
    struct batch *b = s->done;
    s->done = NULL;
    pthread_mutex_unlock(&s->mu);
    if (!b)
        return;
    store__finish(s, b, 1);
    store_flush(s);
}

/* Writer thread, after each commit: how many pages the WAL holds. */
int store__on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    ((struct store *)arg)->wal_pages = pages;
    return SQLITE_OK;
}

const struct store_batch_info *store_last_batch(const struct store *s)
{
    return &s->last;
}
