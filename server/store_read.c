/* Reading: a room, on another thread (the loader's) through a store_reader
 * of its own connection (store_reader_*); and /healthz's ping on the loop
 * thread through the store's own read connection (store_healthy). */
#include <sqlite3.h>
#include <stdlib.h>

#include "errors.h"
#include "log.h"
#include "store.h"
#include "store_int.h"

void store__close_reader(struct store *s)
{
    sqlite3_finalize(s->r_ping);
    s->r_ping = NULL;
    sqlite3_close(s->rdb);
    s->rdb = NULL;
}

/* The statements that read a room (store_reader_load_room), in struct
 * store_reader's order. */
static const char *const READ_SQL[] = {
    "SELECT coalesce(max(seq), 0) FROM events WHERE room = ?1",
    "SELECT created_at, meta FROM rooms WHERE id = ?1",
    "SELECT pid, data FROM participants WHERE room = ?1",
    /* In key order (a scan): the backlog sorts them by rank, which is
     * twice as fast as walking the rank index for 10,000 items. */
    "SELECT id, rank, data FROM items WHERE room = ?1",
    "SELECT id, data FROM rounds WHERE room = ?1 ORDER BY seqno",
    /* In parentheses: one statement in two literals (clang's -Wextra
     * -Wstring-concatenation takes it for a missing comma). */
    ("SELECT seq, payload FROM (SELECT seq, payload FROM events WHERE room = ?1"
     " ORDER BY seq DESC LIMIT ?2) ORDER BY seq"),
    "SELECT item, data FROM kano WHERE room = ?1 ORDER BY seqno",
};
_Static_assert(sizeof READ_SQL / sizeof READ_SQL[0] == NREADS, "NREADS (store_int.h)");

int store__prepare_reads(sqlite3 *db, sqlite3_stmt **st[NREADS])
{
    for (size_t i = 0; i < NREADS; i++)
        if (store__prepare(db, READ_SQL[i], st[i]))
            return RF_EINTERNAL;
    return 0;
}

static int read_rows(sqlite3_stmt *st, const char *room, int (*row)(void *, sqlite3_stmt *),
                     void *arg)
{
    int rc = 0, step;
    store__bind_text(st, 1, room);
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

static int row_kano(void *arg, sqlite3_stmt *st)
{
    struct load_ctx *c = arg;
    return c->r->kano(c->r->arg, (const char *)sqlite3_column_text(st, 0),
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
    struct store *s;
    sqlite3 *db;
    sqlite3_stmt *seq, *room, *parts, *items, *rounds, *events, *kano;
    sqlite3_stmt *mark; /* the log's mark (store_log.c) */
};

static int row_mark(void *arg, sqlite3_stmt *st)
{
    *(int64_t *)arg = sqlite3_column_int64(st, 0);
    return 0;
}

static int reader_load(const struct store_reader *q, const char *room, size_t max_events,
                       const struct store_room_reader *r)
{
    struct load_ctx c = {r, 0, 0};
    int rc;
    /* One read transaction, so the parts agree with each other; and the
     * tables hold all of the room's records once the mark it sees is past
     * the room's last record in the log (store_log.c): until then, the
     * writer applies them. */
    for (int64_t wait = 1; wait;) {
        int64_t mark = 0;
        if (store__exec(q->db, "BEGIN"))
            return RF_EINTERNAL;
        if ((rc = read_rows(q->mark, NULL, row_mark, &mark)))
            goto out;
        if (!(wait = store__log_check(q->s, room, mark)))
            break;
        store__exec(q->db, "COMMIT");
        if (wait > 0 && store__log_wait(q->s, wait))
            return RF_EINTERNAL;
    }
    if ((rc = read_rows(q->seq, room, row_seq, &c)) ||
        (rc = read_rows(q->room, room, row_room, &c)))
        goto out;
    if (!c.found) {
        rc = RF_ENOT_FOUND;
        goto out;
    }
    if ((rc = read_rows(q->parts, room, row_part, &c)) ||
        (rc = read_rows(q->items, room, row_item, &c)) ||
        (rc = read_rows(q->rounds, room, row_round, &c)) ||
        (r->kano && (rc = read_rows(q->kano, room, row_kano, &c))))
        goto out;
    sqlite3_bind_int64(q->events, 2, (sqlite3_int64)max_events);
    rc = read_rows(q->events, room, row_event, &c);
out:
    store__exec(q->db, "COMMIT");
    return rc;
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
    q->s = s;
    const char *path = sqlite3_db_filename(s->rdb, "main");
    if (!path || !*path || store__open_db(path, &q->db) ||
        store__exec(q->db, "PRAGMA wal_autocheckpoint = 0") ||
        store__set_cache(q->db, SIDE_CACHE_KIB) ||
        store__prepare(q->db, "SELECT value FROM server_state WHERE key = 'log_mark'", &q->mark) ||
        store__prepare_reads(q->db, (sqlite3_stmt * *[]){&q->seq, &q->room, &q->parts, &q->items,
                                                         &q->rounds, &q->events, &q->kano})) {
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
    sqlite3_stmt *st[] = {q->seq,    q->room,   q->parts, q->items,
                          q->rounds, q->events, q->kano,  q->mark};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++)
        sqlite3_finalize(st[i]);
    sqlite3_close(q->db);
    free(q);
}
