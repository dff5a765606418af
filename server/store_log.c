/* The log (schema 6): every committed record is first appended to the table
 * `log` in the batch's transaction, the batch's records packed in one row
 * (row_pack), so a change costs a share of the log's last page instead of a
 * page of each table it touches. The state tables (rooms,
 * items, events, ...) are brought up to date behind, in cycles. The writer
 * keeps a copy of each record after the mark in memory (pend_b, with its
 * id and hashes in struct log_ref; at open, and after a failed cycle, it
 * reads them from the log), so a cycle never reads the log. A cycle sorts
 * its records by room, then by the row each sets, then in log order: of a
 * row's records only the last is applied (an item changed twenty times in
 * the cycle is written once), every event is. It applies them as upserts
 * and deletes in transactions of at most MAT_CHUNK records or MAT_STEP_S,
 * one between two of the writer's batches, so a batch never waits long
 * behind one; the last one also moves the mark (server_state 'log_mark')
 * and adds the cycle's events to the committed events' count (server_state
 * 'events', restore detection: store.h), so a batch's transaction writes
 * nothing but the log. The applied rows then leave the log TRIM_CHUNK ids
 * per transaction. A room's pages are so written once per cycle however
 * many changes it had.
 *
 * Applying a record again gives the same row, so a cycle cut short (a
 * crash, a failed transaction) is simply run again from the mark: at open
 * the whole log after the mark is applied before anything reads.
 *
 * A room is read from the tables once they hold all of its records
 * (store_read.c): the writer keeps, under mu, the rooms with records in the
 * log and the last id of each (set before the batch's commit, dropped after
 * the cycle that applied it); a reader's transaction reads the mark it
 * sees, and the room's last id above it makes the reader wait for that
 * cycle (store__log_wait), which the writer starts at once. The mark it
 * sees behind the writer's (a cycle ended meanwhile, its rooms dropped)
 * makes it read again. No scan of the log on a reader's path. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "log.h"
#include "store.h"
#include "store_int.h"

/* A cycle starts when the log holds MAT_RECORDS records, or cycle_s
 * (--log-cycle-ms) after the last one ended, or at once when a reader waits. Its
 * transactions are small (MAT_CHUNK records or MAT_STEP_S seconds) so that
 * a batch waiting behind one is not held up long: a room's pages are
 * written once per cycle however many transactions the cycle takes. The
 * trim's transactions delete TRIM_CHUNK ids each. */
#define MAT_RECORDS 50000
#define MAT_CHUNK   500
#define MAT_STEP_S  0.001
#define TRIM_CHUNK  5000

#define FNV_BASIS 14695981039346656037u

/* FNV-1a of h followed by the bytes of s (NULL: none). */
static uint64_t fnv(uint64_t h, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
        h = (h ^ *p) * 1099511628211u;
    return h;
}

static uint64_t hash_room(const char *room)
{
    return fnv(FNV_BASIS, room);
}

/* The key of the row a state record sets within its room's rows of its
 * table: `a` (a participant's, an item's, a round's id), none for the
 * room's own row and for its move (keyed by the room alone). */
static const char *row_key(const struct batch *bt, const struct rec *r)
{
    return r->kind == REC_ROOM || r->kind == REC_MOVED ? NULL : rec_str(bt, r->a);
}

/* The row a state record sets, as a hash: its table (items and their
 * deletes share one) and its key within the room. Events are never
 * replaced: 0. A collision only keeps two rows' records apart (each is
 * applied, in log order), see replaced(). */
static uint64_t row_hash(const struct batch *bt, const struct rec *r)
{
    if (r->kind == REC_EVENT)
        return 0;
    uint64_t h =
        (FNV_BASIS ^ (uint64_t)(r->kind == REC_DEL_ITEM ? REC_ITEM : r->kind)) * 1099511628211u;
    h = fnv(h, row_key(bt, r));
    return h ? h : 1;
}

/* Record bt->v[k] (given log id `id`) joins pend: its copy into pend_b,
 * its reference into pend. 0 or RF_ENOMEM (then neither changed). */
static int pend_add(struct store *s, int64_t id, const struct batch *bt, const struct rec *r)
{
    if (s->pend_n == s->pend_cap) {
        size_t cap = s->pend_cap ? s->pend_cap * 2 : 1024;
        struct log_ref *v = realloc(s->pend, cap * sizeof *v);
        if (!v)
            return RF_ENOMEM;
        s->pend = v;
        s->pend_cap = cap;
    }
    struct batch *pb = s->pend_b;
    if (store__batch_append(pb, r->kind, rec_str(bt, r->room), rec_str(bt, r->a), rec_str(bt, r->b),
                            r->i1, r->i2, rec_str(bt, r->blob), r->len, NONE))
        return RF_ENOMEM;
    const struct rec *c = &pb->v[pb->n - 1];
    s->pend[s->pend_n++] =
        (struct log_ref){hash_room(rec_str(pb, c->room)), row_hash(pb, c), id, pb->n - 1};
    return 0;
}

/* pend read from the log: every record after the mark (at open, and after
 * a cycle failed). 0 or RF_EINTERNAL (then pend_stale stays set). */
static int row_unpack(struct store *s, int64_t id, int64_t n, const uint8_t *p, size_t size);

static int pend_read(struct store *s)
{
    sqlite3_stmt *st = s->w_pending;
    int rc, bad = 0;
    s->pend_n = 0;
    s->pend_b->n = s->pend_b->used = 0;
    s->pend_stale = 1;
    sqlite3_bind_int64(st, 1, s->log_mark);
    while (!bad && (rc = sqlite3_step(st)) == SQLITE_ROW)
        bad = row_unpack(s, sqlite3_column_int64(st, 0), sqlite3_column_int64(st, 1),
                         sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
    sqlite3_reset(st);
    if (bad || rc != SQLITE_DONE) {
        log_error("the log could not be read (it is read again before the next cycle)");
        return RF_EINTERNAL;
    }
    s->pend_stale = 0;
    return 0;
}

int store__log_prepare(struct store *s)
{
    if (store__prepare(s->wdb, "INSERT INTO log(id, n, data) VALUES(?1, ?2, ?3)", &s->w_log) ||
        store__prepare(s->wdb,
                       "INSERT INTO server_state(key, value) VALUES('log_mark', ?1)"
                       " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                       &s->w_mark) ||
        store__prepare(s->wdb, "DELETE FROM log WHERE id > ?1 AND id <= ?2", &s->w_trim) ||
        store__prepare(s->wdb, "SELECT id, n, data FROM log WHERE id > ?1 ORDER BY id",
                       &s->w_pending))
        return RF_EINTERNAL;
    if ((!s->pend_b && !(s->pend_b = calloc(1, sizeof *s->pend_b))) ||
        (!s->cycle_b && !(s->cycle_b = calloc(1, sizeof *s->cycle_b))))
        return RF_ENOMEM;
    sqlite3_stmt *st;
    if (store__prepare(s->wdb,
                       "SELECT (SELECT value FROM server_state WHERE key = 'log_mark'),"
                       " (SELECT max(id + n - 1) FROM log), (SELECT min(id) FROM log)",
                       &st))
        return RF_EINTERNAL;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        s->log_mark = sqlite3_column_int64(st, 0);
        int64_t last = sqlite3_column_int64(st, 1);
        s->log_id = last > s->log_mark ? last : s->log_mark;
        int64_t first = sqlite3_column_int64(st, 2); /* 0: the log is empty */
        s->log_trimmed = first && first - 1 < s->log_mark ? first - 1 : s->log_mark;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW)
        return RF_EINTERNAL;
    s->log_committed = s->log_id;
    s->mat_done = s->log_mark;
    clock_gettime(CLOCK_MONOTONIC, &s->cycle_at);
    return pend_read(s); /* what a crash left in the log */
}

void store__log_finalize(struct store *s)
{
    sqlite3_stmt **st[] = {&s->w_log, &s->w_mark, &s->w_trim, &s->w_pending};
    for (size_t i = 0; i < sizeof st / sizeof st[0]; i++) {
        sqlite3_finalize(*st[i]);
        *st[i] = NULL;
    }
    free(s->cycle);
    free(s->pend);
    free(s->in_log_key);
    free(s->in_log_id);
    s->in_log_key = NULL;
    s->in_log_id = NULL;
    s->in_log_cap = s->in_log_n = 0;
    s->cycle = s->pend = NULL;
    s->cycle_n = s->cycle_cap = s->pend_n = s->pend_cap = 0;
    s->cycle_on = 0;
    free(s->row);
    s->row = NULL;
    s->row_len = s->row_cap = 0;
    store__batch_free(s->pend_b);
    store__batch_free(s->cycle_b);
    s->pend_b = s->cycle_b = NULL;
}

/* ---- a transaction's records in one row of the log -------------------- */

/* A row of the log holds a batch's records (n of them, ids id .. id + n -
 * 1), each packed as its kind (1 byte), i1 and i2 (8 bytes each), the
 * lengths of room, a, b and blob (4 bytes each, NIL for a NULL string or no
 * blob), then their bytes; integers little-endian. One row per transaction:
 * one insert, however many records. */
#define NIL      0xffffffffu
#define REC_HEAD (1 + 8 + 8 + 4 * 4)

static void put_le(uint8_t *p, uint64_t v, int bytes)
{
    for (int i = 0; i < bytes; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Room for `more` bytes in the row being packed. 0 or RF_ENOMEM. */
static int row_reserve(struct store *s, size_t more)
{
    if (s->row_len + more <= s->row_cap)
        return 0;
    size_t cap = s->row_cap ? s->row_cap : 4096;
    while (cap < s->row_len + more)
        cap *= 2;
    uint8_t *p = realloc(s->row, cap);
    if (!p)
        return RF_ENOMEM;
    s->row = p;
    s->row_cap = cap;
    return 0;
}

static int row_pack(struct store *s, const struct batch *bt, const struct rec *r)
{
    const char *str[3] = {rec_str(bt, r->room), rec_str(bt, r->a), rec_str(bt, r->b)};
    size_t len[4], total = REC_HEAD;
    for (int i = 0; i < 3; i++)
        total += len[i] = str[i] ? strlen(str[i]) : 0;
    const void *blob = rec_str(bt, r->blob);
    total += len[3] = blob ? r->len : 0;
    if (row_reserve(s, total))
        return RF_ENOMEM;
    uint8_t *p = s->row + s->row_len;
    p[0] = (uint8_t)r->kind;
    put_le(p + 1, (uint64_t)r->i1, 8);
    put_le(p + 9, (uint64_t)r->i2, 8);
    for (int i = 0; i < 4; i++) {
        int null = i < 3 ? !str[i] : !blob;
        put_le(p + 17 + 4 * i, null ? NIL : (uint32_t)len[i], 4);
    }
    p += REC_HEAD;
    for (int i = 0; i < 4; i++) {
        const void *src = i < 3 ? (const void *)str[i] : blob;
        if (len[i])
            memcpy(p, src, len[i]);
        p += len[i];
    }
    s->row_len += total;
    return 0;
}

/* A row read back from the log (id, n, data) into pend. 0, or RF_EINTERNAL
 * (malformed: logged) or RF_ENOMEM. */
static int row_unpack(struct store *s, int64_t id, int64_t n, const uint8_t *p, size_t size)
{
    struct batch *one = s->cycle_b; /* free between cycles: holds each record once */
    size_t at = 0;
    for (int64_t k = 0; k < n; k++) {
        if (size - at < REC_HEAD || p[at] >= REC__COUNT)
            goto bad;
        const uint8_t *h = p + at;
        char *str[3] = {NULL, NULL, NULL};
        const void *blob = NULL;
        size_t blob_len = 0;
        at += REC_HEAD;
        int rc = 0;
        for (int i = 0; i < 4 && !rc; i++) {
            uint32_t len = (uint32_t)get_le(h + 17 + 4 * i, 4);
            if (len == NIL)
                continue;
            if (len > size - at) {
                rc = RF_EINTERNAL;
                break;
            }
            if (i == 3) {
                blob = p + at;
                blob_len = len;
            } else if (!(str[i] = strndup((const char *)p + at, len))) {
                rc = RF_ENOMEM;
            }
            at += len;
        }
        one->n = one->used = 0;
        if (!rc)
            rc = str[0] ? 0 : RF_EINTERNAL; /* every record has its room */
        if (!rc)
            rc = store__batch_append(one, (enum rec_kind)h[0], str[0], str[1], str[2],
                                     (int64_t)get_le(h + 1, 8), (int64_t)get_le(h + 9, 8), blob,
                                     blob_len, NONE);
        if (!rc)
            rc = pend_add(s, id + k, one, &one->v[0]);
        for (int i = 0; i < 3; i++)
            free(str[i]);
        one->n = one->used = 0;
        if (rc == RF_EINTERNAL)
            goto bad;
        if (rc)
            return rc;
    }
    if (at == size)
        return 0;
bad:
    log_error("the log's row %lld is malformed", (long long)id);
    return RF_EINTERNAL;
}

int store__log_append(struct store *s, const struct batch *bt)
{
    int64_t n = 0;
    s->row_len = 0;
    for (size_t i = 0; i < bt->n; i++) {
        if (bt->v[i].kind == REC_SKIP)
            continue;
        if (row_pack(s, bt, &bt->v[i]))
            return RF_ENOMEM;
        n++;
    }
    if (!n)
        return 0;
    sqlite3_stmt *st = s->w_log;
    sqlite3_bind_int64(st, 1, s->log_id + 1);
    sqlite3_bind_int64(st, 2, n);
    sqlite3_bind_blob(st, 3, s->row, (int)s->row_len, SQLITE_STATIC);
    if (store__step_write(s->wdb, st))
        return RF_EINTERNAL;
    if (s->row_cap > (1u << 20)) { /* a large batch's (an import): given back */
        free(s->row);
        s->row = NULL;
        s->row_cap = 0;
    }
    for (size_t i = 0; i < bt->n; i++) {
        if (bt->v[i].kind == REC_SKIP)
            continue;
        if (pend_add(s, s->log_id + 1, bt, &bt->v[i]))
            return RF_ENOMEM;
        s->log_id++;
    }
    return 0;
}

/* ---- the rooms with records in the log (under mu) ---------------------- */

static size_t in_log_slot(const uint64_t *keys, size_t cap, uint64_t key)
{
    size_t i = (size_t)key & (cap - 1);
    while (keys[i] && keys[i] != key)
        i = (i + 1) & (cap - 1);
    return i;
}

/* Room `key` has records up to id (the larger id kept). */
static void in_log_put(uint64_t *keys, int64_t *ids, size_t cap, size_t *n, uint64_t key,
                       int64_t id)
{
    size_t i = in_log_slot(keys, cap, key);
    if (!keys[i]) {
        keys[i] = key;
        ids[i] = id;
        ++*n;
    } else if (ids[i] < id) {
        ids[i] = id;
    }
}

/* The table again with room for `cap` (a power of two), keeping the rooms
 * whose last id is above `drop`. RF_ENOMEM leaves it as it was. */
static int in_log_rebuild(struct store *s, size_t cap, int64_t drop)
{
    uint64_t *keys = calloc(cap, sizeof *keys);
    int64_t *ids = malloc(cap * sizeof *ids);
    if (!keys || !ids) {
        free(keys);
        free(ids);
        return RF_ENOMEM;
    }
    size_t n = 0;
    for (size_t i = 0; i < s->in_log_cap; i++)
        if (s->in_log_key[i] && s->in_log_id[i] > drop)
            in_log_put(keys, ids, cap, &n, s->in_log_key[i], s->in_log_id[i]);
    free(s->in_log_key);
    free(s->in_log_id);
    s->in_log_key = keys;
    s->in_log_id = ids;
    s->in_log_cap = cap;
    s->in_log_n = n;
    return 0;
}

static uint64_t in_log_key(uint64_t room_hash)
{
    return room_hash ? room_hash : 1; /* 0 marks a free slot */
}

int store__log_publish(struct store *s, size_t from)
{
    int rc = 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = from; i < s->pend_n && !rc; i++) {
        if (2 * (s->in_log_n + 1) > s->in_log_cap)
            rc = in_log_rebuild(s, s->in_log_cap ? 2 * s->in_log_cap : 1024, 0);
        if (!rc)
            in_log_put(s->in_log_key, s->in_log_id, s->in_log_cap, &s->in_log_n,
                       in_log_key(s->pend[i].room), s->pend[i].id);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

int64_t store__log_check(struct store *s, const char *room, int64_t mark)
{
    int64_t wait = 0;
    pthread_mutex_lock(&s->mu);
    if (mark < s->mat_done) {
        wait = -1; /* a cycle ended after the reader's snapshot began */
    } else if (s->in_log_cap) {
        size_t i = in_log_slot(s->in_log_key, s->in_log_cap, in_log_key(hash_room(room)));
        if (s->in_log_key[i] && s->in_log_id[i] > mark)
            wait = s->in_log_id[i];
    }
    pthread_mutex_unlock(&s->mu);
    return wait;
}

/* After the cycle up to `upto` committed: its rooms leave the table, and
 * the mark readers compare with moves in the same hold of mu (a reader
 * that finds its room gone then also finds the mark it saw behind). */
static void in_log_applied(struct store *s, int64_t upto)
{
    pthread_mutex_lock(&s->mu);
    s->mat_done = upto;
    if (s->in_log_cap && in_log_rebuild(s, s->in_log_cap, upto))
        log_warn("out of memory: rooms whose log is applied are still read as waiting");
    pthread_mutex_unlock(&s->mu);
}

void store__log_rollback(struct store *s, int64_t log_id, size_t pend_n, size_t pend_used)
{
    s->log_id = log_id;
    s->pend_n = pend_n;
    s->pend_b->n = pend_n;
    s->pend_b->used = pend_used;
    /* Ids given to the failed batch will be given again: its rooms wait for
     * what the log held before it (at worst a cycle more than needed). */
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->in_log_cap; i++)
        if (s->in_log_key[i] && s->in_log_id[i] > log_id)
            s->in_log_id[i] = log_id;
    s->rollbacks++;
    pthread_cond_broadcast(&s->mat_cv);
    pthread_mutex_unlock(&s->mu);
}

static double since(const struct timespec *t)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)(now.tv_sec - t->tv_sec) + (double)(now.tv_nsec - t->tv_nsec) / 1e9;
}

int store__log_due(struct store *s)
{
    if (s->cycle_on || (s->log_trimmed < s->log_mark && !s->cycle_failed))
        return store__log_pace(s) == 0;
    double idle = since(&s->cycle_at);
    if (s->cycle_failed && idle < 1)
        return 0;
    if (s->log_trimmed < s->log_mark)
        return 1;
    if (s->log_id <= s->log_mark)
        return 0;
    return s->mat_want > s->log_mark || s->log_id - s->log_mark >= MAT_RECORDS ||
           idle >= s->cycle_s;
}

/* A cycle's order: by room, then by the row a record sets (events first),
 * then in log order, so that a row's records are next to each other and
 * only the last of them needs applying (replaced()). */
static int by_room(const void *x, const void *y)
{
    const struct log_ref *a = x, *b = y;
    if (a->room != b->room)
        return a->room < b->room ? -1 : 1;
    if (a->row != b->row)
        return a->row < b->row ? -1 : 1;
    return (a->id > b->id) - (a->id < b->id);
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* cycle[i] is a state record that cycle[i + 1] replaces: the same row
 * (the same room, table and key, compared in full, not by their hashes). */
static int replaced(const struct store *s, size_t i)
{
    if (i + 1 >= s->cycle_n || !s->cycle[i].row)
        return 0;
    const struct log_ref *x = &s->cycle[i], *y = &s->cycle[i + 1];
    if (x->room != y->room || x->row != y->row)
        return 0;
    const struct batch *c = s->cycle_b;
    const struct rec *a = &c->v[x->rec], *b = &c->v[y->rec];
    int ka = a->kind == REC_DEL_ITEM ? REC_ITEM : (int)a->kind;
    int kb = b->kind == REC_DEL_ITEM ? REC_ITEM : (int)b->kind;
    return ka == kb && same_str(rec_str(c, a->room), rec_str(c, b->room)) &&
           same_str(row_key(c, a), row_key(c, b));
}

static void end_cycle(struct store *s, int failed)
{
    s->cycle_on = 0;
    s->cycle_n = s->cycle_next = 0;
    /* The copies are dropped; a large arena is given back (the next cycle's
     * is pend_b, which grew meanwhile). */
    struct batch *c = s->cycle_b;
    c->n = c->used = 0;
    if (c->memcap > (4u << 20) || c->cap > 65536) {
        free(c->mem);
        free(c->v);
        *c = (struct batch){0};
    }
    s->cycle_failed = failed;
    clock_gettime(CLOCK_MONOTONIC, &s->cycle_at);
    if (failed)
        pend_read(s); /* the cycle's records are in the log still: all applied again */
}

/* The records after the mark, up to the last id given (between batches:
 * all of pend), sorted by room. The arrays swap: pend starts empty. */
static int start_cycle(struct store *s)
{
    if (s->pend_stale && pend_read(s))
        return RF_EINTERNAL;
    struct log_ref *v = s->cycle;
    size_t cap = s->cycle_cap;
    s->cycle = s->pend;
    s->cycle_n = s->pend_n;
    s->cycle_cap = s->pend_cap;
    s->pend = v;
    s->pend_cap = cap;
    s->pend_n = 0;
    struct batch *b = s->cycle_b;
    s->cycle_b = s->pend_b;
    s->pend_b = b;
    b->n = b->used = 0;
    s->cycle_next = 0;
    s->cycle_upto = s->log_id;
    s->cycle_events = 0;
    for (size_t i = 0; i < s->cycle_n; i++)
        s->cycle_events += s->cycle_b->v[s->cycle[i].rec].kind == REC_EVENT;
    qsort(s->cycle, s->cycle_n, sizeof *s->cycle, by_room);
    s->cycle_on = 1;
    return 0;
}

/* cycle[i] into its table, unless a later record of the cycle replaces it. */
static int apply_ref(struct store *s, size_t i)
{
    if (replaced(s, i))
        return 0;
    return store__apply_rec(s, s->cycle_b, &s->cycle_b->v[s->cycle[i].rec]);
}

/* The size cap (--max-db-size) bounds what clients write; applying the log
 * only moves records from it into the tables, so a cycle runs above it
 * (else a full database could never apply its log, nor load its rooms).
 * And a cycle's transactions need no fsync of their own (a lost one is
 * applied again from the log; the WAL's next synced commit covers their
 * frames): with --durability full they run with synchronous=OFF, else each
 * of them would wait for an fsync that batches then wait behind. */
static void lift_cap(struct store *s, int lift)
{
    if (s->full_sync)
        store__exec(s->wdb, lift ? "PRAGMA synchronous = OFF" : "PRAGMA synchronous = FULL");
    if (!s->max_pages)
        return;
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA max_page_count = %lld",
             (long long)(lift ? 2 * s->max_pages + 65536 : s->max_pages));
    store__exec(s->wdb, sql);
}

static int step_sql(struct store *s, sqlite3_stmt *st, int64_t v)
{
    sqlite3_bind_int64(st, 1, v);
    return store__step_write(s->wdb, st);
}

/* Deletes the next TRIM_CHUNK ids of the applied part of the log, in a
 * transaction of its own (one DELETE of a whole cycle's rows would hold
 * the batches up for tens of milliseconds). 0 or RF_EINTERNAL. */
static int trim_step(struct store *s)
{
    int64_t upto =
        s->log_trimmed + TRIM_CHUNK < s->log_mark ? s->log_trimmed + TRIM_CHUNK : s->log_mark;
    sqlite3_bind_int64(s->w_trim, 1, s->log_trimmed);
    sqlite3_bind_int64(s->w_trim, 2, upto);
    if (store__exec(s->wdb, "BEGIN IMMEDIATE"))
        return RF_EINTERNAL;
    if (store__step_write(s->wdb, s->w_trim) || store__exec(s->wdb, "COMMIT")) {
        store__exec(s->wdb, "ROLLBACK");
        return RF_EINTERNAL;
    }
    s->log_trimmed = upto;
    s->cycle_failed = 0; /* the database takes writes again: no second's wait before the next */
    return 0;
}

static int log_step_once(struct store *s)
{
    if (!s->cycle_on) {
        /* What a cycle applied leaves the log a chunk at a time, after
         * it: before the next cycle, unless a reader waits for one. */
        pthread_mutex_lock(&s->mu);
        int wanted = s->mat_want > s->log_mark;
        pthread_mutex_unlock(&s->mu);
        if (s->log_trimmed < s->log_mark && !wanted) {
            if (trim_step(s)) {
                s->cycle_failed = 1;
                clock_gettime(CLOCK_MONOTONIC, &s->cycle_at);
                return RF_EINTERNAL;
            }
            return 0;
        }
        if (s->log_id <= s->log_mark)
            return 1;
        if (start_cycle(s)) {
            s->cycle_failed = 1;
            clock_gettime(CLOCK_MONOTONIC, &s->cycle_at);
            return RF_EINTERNAL;
        }
    }
    lift_cap(s, 1);
    if (store__exec(s->wdb, "BEGIN IMMEDIATE")) {
        lift_cap(s, 0);
        end_cycle(s, 1);
        return RF_EINTERNAL;
    }
    size_t i = s->cycle_next, n = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (; i < s->cycle_n; i++, n++) {
        /* Readers wait for the whole cycle (the mark), so a transaction
         * may end anywhere: after MAT_CHUNK records or MAT_STEP_S. */
        if (n >= MAT_CHUNK || (n % 32 == 31 && since(&t0) >= MAT_STEP_S))
            break;
        if (apply_ref(s, i))
            goto fail;
    }
    int last = i == s->cycle_n;
    if (last &&
        (step_sql(s, s->w_mark, s->cycle_upto) || step_sql(s, s->w_events, s->cycle_events)))
        goto fail;
    if (store__exec(s->wdb, "COMMIT"))
        goto fail;
    lift_cap(s, 0);
    s->cycle_next = i;
    if (!last)
        return 0;
    s->log_mark = s->cycle_upto;
    in_log_applied(s, s->log_mark);
    end_cycle(s, 0);
    return 0; /* the trim follows */
fail:
    store__exec(s->wdb, "ROLLBACK");
    lift_cap(s, 0);
    log_error("the log could not be applied to the tables (it is kept and applied again later)");
    end_cycle(s, 1);
    return RF_EINTERNAL;
}

/* The applier's pace: after a step that took t, the next waits PACE * t
 * (a batch still goes first), so applying the log takes at most a third of
 * the writer's time in bursts, and the loop thread, sharing a core with it,
 * is not held up for a whole cycle. Unless a reader waits for the cycle, or
 * the log holds more than MAT_RECORDS besides the running cycle (the
 * applier falls behind the changes: then it runs flat out). */
#define PACE 2

int store__log_step(struct store *s)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int rc = log_step_once(s);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    int64_t ns = (int64_t)(t1.tv_sec - t0.tv_sec) * 1000000000 + (t1.tv_nsec - t0.tv_nsec);
    ns *= PACE;
    s->next_step.tv_sec = t1.tv_sec + (time_t)(ns / 1000000000);
    s->next_step.tv_nsec = t1.tv_nsec + (long)(ns % 1000000000);
    if (s->next_step.tv_nsec >= 1000000000) {
        s->next_step.tv_sec++;
        s->next_step.tv_nsec -= 1000000000;
    }
    return rc;
}

double store__log_pace(struct store *s)
{
    if (s->mat_want > s->log_mark || s->pend_n > MAT_RECORDS)
        return 0;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    double d = (double)(s->next_step.tv_sec - now.tv_sec) +
               (double)(s->next_step.tv_nsec - now.tv_nsec) / 1e9;
    return d > 0 ? d : 0;
}

int store__log_drain(struct store *s)
{
    int rc;
    while ((rc = store__log_step(s)) == 0)
        ;
    return rc < 0 ? rc : 0;
}

uint64_t store_log_pending(struct store *s)
{
    pthread_mutex_lock(&s->mu);
    int64_t n = s->log_committed - s->mat_done;
    pthread_mutex_unlock(&s->mu);
    return n > 0 ? (uint64_t)n : 0;
}

int store__log_wait(struct store *s, int64_t id)
{
    pthread_mutex_lock(&s->mu);
    uint64_t failures = s->mat_failures, rollbacks = s->rollbacks;
    if (s->mat_want < id)
        s->mat_want = id;
    pthread_cond_signal(&s->work_cv);
    /* A batch that failed gives its ids again (id may be one of them): the
     * caller looks again (0, as when id is applied). */
    while (s->mat_done < id && s->mat_failures == failures && s->rollbacks == rollbacks && !s->quit)
        pthread_cond_wait(&s->mat_cv, &s->mu);
    int rc = s->mat_done >= id || s->rollbacks != rollbacks ? 0 : RF_EINTERNAL;
    pthread_mutex_unlock(&s->mu);
    return rc;
}
