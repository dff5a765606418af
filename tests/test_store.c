/* Unit tests of the store (store.h) with a real SQLite file in a temporary
 * directory and the real writer and checkpointer threads: commits reach the
 * database and come back through a store reader; a failing transaction
 * (the database size cap) reports its rooms through on_fail, leaves nothing
 * of itself in the database and makes the next batch skip those rooms'
 * records (REC_SKIP: the only records store.c skips; loading skips none);
 * the high-water file detects a database restored from an older copy; and
 * store_close persists what is in flight and what is still accumulating,
 * with the high-water file written once, by one thread (issue #11); each
 * batch's info counts the pages its transaction appended to the WAL and
 * the pages the checkpoints copied since the batch before (issue #14). */
#include <msgpack.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "errors.h"
#include "log.h"
#include "store.h"

static uv_loop_t loop;
static char dir[64], dbpath[128];

/* What the hooks saw. */
static int commits, fails;
static uint64_t fail_upto;
static char fail_rooms[8][32];
static size_t fail_nrooms;

/* The store whose batches' pages on_commit sums (test_pages), and the sums. */
static struct store *paged;
static uint64_t wal_frames, ckpt_pages;

static void on_commit(void *arg)
{
    (void)arg;
    commits++;
    if (paged) {
        wal_frames += store_last_batch(paged)->wal_frames;
        ckpt_pages += store_last_batch(paged)->ckpt_pages;
    }
}

static void on_fail(void *arg, uint64_t upto, const char *const *rooms, size_t n)
{
    (void)arg;
    fails++;
    fail_upto = upto;
    fail_nrooms = n;
    for (size_t i = 0; i < n && i < 8; i++)
        snprintf(fail_rooms[i], sizeof fail_rooms[i], "%s", rooms[i]);
}

static struct store *open_store_with(const struct store_options *o)
{
    struct store_hooks hooks = {NULL, on_commit, on_fail};
    struct store *s = NULL;
    CHECK(store_open(&s, dbpath, o, &loop, &hooks) == 0);
    return s;
}

static struct store *open_store(size_t max_mb)
{
    return open_store_with(&(struct store_options){.max_mb = max_mb});
}

static void close_store(struct store *s)
{
    store_close(s);
    uv_run(&loop, UV_RUN_DEFAULT); /* closes the store's async handle */
}

/* Loop turns until everything appended is committed (or failed). */
static void pump(struct store *s)
{
    for (int i = 0; i < 100000 && store_durable(s) != store_added(s); i++) {
        store_flush(s);
        uv_run(&loop, UV_RUN_ONCE);
    }
    CHECK(store_durable(s) == store_added(s));
}

static void put_room(struct store *s, const char *room)
{
    msgpack_pack_map(store_packer(s), 0);
    CHECK(store_put_room(s, room, 1000) == 0);
}

/* An item whose blob is a string of `size` bytes. */
static void put_item(struct store *s, const char *room, const char *id, const char *rank,
                     size_t size)
{
    msgpack_packer *pk = store_packer(s);
    char *fill = malloc(size ? size : 1);
    memset(fill, 'x', size);
    msgpack_pack_str_with_body(pk, fill, size);
    free(fill);
    CHECK(store_put_item(s, room, id, rank) == 0);
}

static void add_event(struct store *s, const char *room, uint64_t seq)
{
    CHECK(store_add_event(s, room, seq, 1000 + (int64_t)seq, "p1", "item.add", "\x80", 1) == 0);
}

/* A second, independent connection's answer to a count query. */
static long long count(const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *st;
    long long n = -1;
    if (sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

static long long read_high_water(void)
{
    char path[160];
    long long v = -1;
    snprintf(path, sizeof path, "%s.high-water", dbpath);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    if (fscanf(f, "%lld", &v) != 1)
        v = -1;
    fclose(f);
    return v;
}

static int exists(const char *suffix)
{
    char path[160];
    snprintf(path, sizeof path, "%s%s", dbpath, suffix);
    return access(path, F_OK) == 0;
}

static void remove_db(void)
{
    const char *suffixes[] = {"", "-wal", "-shm", ".high-water", ".high-water.tmp"};
    for (size_t i = 0; i < sizeof suffixes / sizeof suffixes[0]; i++) {
        char path[160];
        snprintf(path, sizeof path, "%s%s", dbpath, suffixes[i]);
        unlink(path);
    }
}

/* What store_reader_load_room hands back. */
struct loaded {
    int room;
    char items[16][16];
    size_t nitems, nevents;
    uint64_t seq;
};

static int ld_room(void *arg, int64_t created_at, uint64_t seq, const void *meta, size_t len)
{
    struct loaded *l = arg;
    l->room = created_at == 1000;
    l->seq = seq;
    return 0;
}

static int ld_part(void *arg, const char *pid, const void *data, size_t len)
{
    return 0;
}

static int ld_item(void *arg, const char *id, const char *rank, const void *data, size_t len)
{
    struct loaded *l = arg;
    if (l->nitems < 16)
        snprintf(l->items[l->nitems], sizeof l->items[0], "%s", id);
    l->nitems++;
    return 0;
}

static int ld_round(void *arg, const char *id, const void *data, size_t len)
{
    return 0;
}

static int ld_event(void *arg, uint64_t seq, const void *payload, size_t len)
{
    ((struct loaded *)arg)->nevents++;
    return 0;
}

static int load(struct store *s, const char *room, struct loaded *l)
{
    memset(l, 0, sizeof *l);
    struct store_room_reader r = {l, ld_room, ld_part, ld_item, ld_round, ld_event, NULL};
    struct store_reader *q;
    int rc = store_reader_open(s, &q);
    if (rc == 0)
        rc = store_reader_load_room(q, room, 1000, &r);
    store_reader_close(q);
    return rc;
}

/* The applied rows leave the log in transactions after the cycle's: 1 once
 * it is empty (within 5 s). */
static int log_emptied(void)
{
    for (int i = 0; i < 500 && count("SELECT count(*) FROM log") != 0; i++)
        usleep(10000);
    return count("SELECT count(*) FROM log") == 0;
}

static int has_item(const struct loaded *l, const char *id)
{
    for (size_t i = 0; i < l->nitems && i < 16; i++)
        if (strcmp(l->items[i], id) == 0)
            return 1;
    return 0;
}

static void test_commit_and_load(void)
{
    remove_db();
    commits = fails = 0;
    struct store *s = open_store(0);
    put_room(s, "A");
    put_item(s, "A", "i1", "a", 10);
    put_item(s, "A", "i2", "b", 10);
    add_event(s, "A", 1);
    add_event(s, "A", 2);
    CHECK(store_added(s) == 5);
    CHECK(store_durable(s) == 0);
    pump(s);
    CHECK(commits >= 1 && fails == 0);
    CHECK(store_materialize(s) == 0); /* the log into the tables, for count() */
    CHECK(count("SELECT count(*) FROM items WHERE room = 'A'") == 2);
    CHECK(store_del_item(s, "A", "i1") == 0);
    pump(s);
    struct loaded l;
    CHECK(load(s, "A", &l) == 0);
    CHECK(l.room && l.seq == 2 && l.nevents == 2);
    CHECK(l.nitems == 1 && has_item(&l, "i2"));
    CHECK(load(s, "nope", &l) == RF_ENOT_FOUND);
    close_store(s);
    CHECK(read_high_water() == 2);
}

/* A transaction over the size cap fails as a whole: on_fail names its rooms,
 * none of its records is in the database, and the records of those rooms
 * that were waiting in the next batch are skipped while the other rooms'
 * records of that batch are written. */
static void test_failed_commit(void)
{
    remove_db();
    commits = fails = 0;
    fail_nrooms = 0;
    struct store *s = open_store(1); /* --max-db-size 1 (MiB) */
    put_room(s, "A");
    put_item(s, "A", "a1", "a", 100);
    add_event(s, "A", 1);
    pump(s);
    CHECK(fails == 0);
    uint64_t before = store_added(s);

    /* The failing batch: a small item, an event, then 3 MiB over the cap. */
    put_item(s, "A", "a2", "b", 100);
    add_event(s, "A", 2);
    put_item(s, "A", "big", "c", 3 * 1024 * 1024);
    uint64_t upto = store_added(s);
    store_flush(s); /* in flight now */
    /* The next batch, appended while the first is being written. */
    put_item(s, "A", "a3", "d", 100);
    add_event(s, "A", 3);
    put_room(s, "B");
    put_item(s, "B", "b1", "a", 100);
    pump(s);

    CHECK(fails == 1);
    CHECK(fail_upto == upto && upto == before + 3);
    CHECK(fail_nrooms == 1 && strcmp(fail_rooms[0], "A") == 0);
    /* Nothing half-written: neither the failing batch nor A's records after it. */
    CHECK(store_materialize(s) == 0);
    CHECK(count("SELECT count(*) FROM items WHERE room = 'A'") == 1);
    CHECK(count("SELECT count(*) FROM items WHERE id IN ('a2', 'big', 'a3')") == 0);
    CHECK(count("SELECT count(*) FROM events WHERE room = 'A'") == 1);
    CHECK(count("SELECT value FROM server_state WHERE key = 'events'") == 1);
    /* The other room of the skipping batch was written. */
    CHECK(count("SELECT count(*) FROM rooms WHERE id = 'B'") == 1);
    CHECK(count("SELECT count(*) FROM items WHERE room = 'B'") == 1);
    struct loaded l;
    CHECK(load(s, "A", &l) == 0);
    CHECK(l.seq == 1 && l.nevents == 1 && l.nitems == 1 && has_item(&l, "a1"));
    /* The store goes on: A's next change commits. */
    put_item(s, "A", "a4", "e", 100);
    pump(s);
    CHECK(fails == 1);
    CHECK(store_materialize(s) == 0);
    CHECK(count("SELECT count(*) FROM items WHERE room = 'A'") == 2);
    close_store(s);
    CHECK(read_high_water() == 1);
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    char buf[65536];
    size_t n;
    int ok = in && out;
    while (ok && (n = fread(buf, 1, sizeof buf, in)) > 0)
        ok = fwrite(buf, 1, n, out) == n;
    if (in)
        fclose(in);
    if (out)
        ok = fclose(out) == 0 && ok;
    return ok ? 0 : -1;
}

/* A database copied back from before its last commits holds fewer events
 * than the high-water file: one more restore, counted once. */
static void test_restore_detection(void)
{
    char backup[160];
    snprintf(backup, sizeof backup, "%s.backup", dbpath);
    remove_db();
    struct store *s = open_store(0);
    CHECK(store_restores(s) == 0);
    put_room(s, "A");
    add_event(s, "A", 1);
    pump(s);
    close_store(s); /* the last close checkpoints: the main file is whole */
    CHECK(!exists("-wal"));
    CHECK(copy_file(dbpath, backup) == 0);
    CHECK(read_high_water() == 1);

    s = open_store(0);
    CHECK(store_restores(s) == 0); /* the same database: no restore */
    CHECK(store_room_count(s) == 1);
    add_event(s, "A", 2);
    add_event(s, "A", 3);
    pump(s);
    close_store(s);
    CHECK(read_high_water() == 3);

    /* Restore the backup (one event). */
    CHECK(copy_file(backup, dbpath) == 0);
    s = open_store(0);
    CHECK(store_restores(s) == 1);
    struct loaded l;
    CHECK(load(s, "A", &l) == 0);
    CHECK(l.seq == 1 && l.nevents == 1);
    close_store(s);
    CHECK(read_high_water() == 1);
    /* Counted once: the count is kept and the file now agrees. */
    s = open_store(0);
    CHECK(store_restores(s) == 1);
    close_store(s);
    unlink(backup);
}

/* store_close writes the batch in flight and the one still accumulating. */
static void test_close_persists_pending(void)
{
    remove_db();
    struct store *s = open_store(0);
    put_room(s, "A");
    put_item(s, "A", "i1", "a", 10);
    add_event(s, "A", 1);
    store_flush(s); /* in flight */
    put_item(s, "A", "i2", "b", 10);
    add_event(s, "A", 2);
    put_item(s, "A", "i3", "c", 10); /* accumulating, never flushed */
    close_store(s);
    CHECK(count("SELECT count(*) FROM items WHERE room = 'A'") == 3);
    CHECK(count("SELECT count(*) FROM events WHERE room = 'A'") == 2);
    CHECK(read_high_water() == 2);
    s = open_store(0);
    struct loaded l;
    CHECK(load(s, "A", &l) == 0);
    CHECK(l.nitems == 3 && has_item(&l, "i3") && l.seq == 2);
    close_store(s);
}

/* Issue #11: at close the writer wrote the high-water file while the
 * checkpointer, woken by the last commit's WAL size, could be writing it
 * too (same temporary name, its fields outside the mutex). Each round
 * commits over WAL_CKPT_PAGES pages, so the checkpointer is at work, and
 * closes at once; ThreadSanitizer (scripts/test, build-tsan/) reported the
 * race here. The file must hold the final count, with no temporary left. */
static void test_close_while_checkpointing(void)
{
    remove_db();
    for (int round = 0; round < 16; round++) {
        struct store *s = open_store(0);
        if (round == 0)
            put_room(s, "A");
        char id[16];
        for (int i = 0; i < 24; i++) {
            snprintf(id, sizeof id, "r%di%d", round, i);
            put_item(s, "A", id, id, 200 * 1024); /* ~5 MB: over 1,000 WAL pages */
        }
        add_event(s, "A", (uint64_t)round + 1);
        pump(s);
        close_store(s);
        CHECK(read_high_water() == round + 1);
        CHECK(!exists(".high-water.tmp"));
    }
}

/* A cycle applies only the last record of each row (the others are
 * replaced): an item put several times, deleted and put again, a room's
 * rows kept apart from another room's of the same key, every event kept. */
static void test_log_coalesce(void)
{
    remove_db();
    struct store *s = open_store(0);
    put_room(s, "A");
    put_room(s, "B");
    put_item(s, "A", "i1", "a", 40);
    put_item(s, "A", "i2", "b", 40);
    add_event(s, "A", 1);
    pump(s);
    put_item(s, "A", "i1", "c", 44);
    CHECK(store_del_item(s, "A", "i2") == 0);
    put_item(s, "A", "i3", "x", 40);
    add_event(s, "A", 2);
    pump(s);
    CHECK(store_del_item(s, "A", "i1") == 0);
    put_item(s, "B", "i1", "g", 90);
    put_item(s, "A", "i2", "d", 70);
    pump(s);
    put_item(s, "A", "i1", "f", 50);
    CHECK(store_del_item(s, "A", "i3") == 0);
    add_event(s, "A", 3);
    pump(s);
    struct loaded l;
    CHECK(load(s, "A", &l) == 0); /* waits for the cycle */
    CHECK(l.room && l.seq == 3 && l.nevents == 3 && l.nitems == 2);
    CHECK(count("SELECT count(*) FROM items WHERE room = 'A' AND id = 'i1' AND rank = 'f'"
                " AND length(data) = 52") == 1);
    CHECK(count("SELECT count(*) FROM items WHERE room = 'A' AND id = 'i2' AND rank = 'd'"
                " AND length(data) = 72") == 1);
    CHECK(count("SELECT count(*) FROM items WHERE room = 'A' AND id = 'i3'") == 0);
    CHECK(count("SELECT count(*) FROM items WHERE room = 'B' AND id = 'i1' AND rank = 'g'"
                " AND length(data) = 92") == 1);
    CHECK(count("SELECT count(*) FROM events WHERE room = 'A'") == 3);
    close_store(s);
    /* Reopened: the same rows (the close applied nothing more). */
    s = open_store(0);
    CHECK(load(s, "A", &l) == 0);
    CHECK(l.room && l.seq == 3 && l.nitems == 2 && has_item(&l, "i1") && has_item(&l, "i2"));
    close_store(s);
}

/* Schema 6: a transaction appends its records to the table `log`; the
 * tables catch up behind. A copy of the database taken while the records
 * are only in the log (as a kill -9 leaves it) gets them into its tables at
 * open, and a reader of a room with records in the log waits for them. */
static void test_log_replay(void)
{
    char copy[160], copy_wal[170], wal[170];
    snprintf(copy, sizeof copy, "%s.copy", dbpath);
    snprintf(copy_wal, sizeof copy_wal, "%s.copy-wal", dbpath);
    snprintf(wal, sizeof wal, "%s-wal", dbpath);
    remove_db();
    struct store *s = open_store(0);
    put_room(s, "A");
    put_item(s, "A", "i1", "a", 10);
    put_item(s, "A", "i2", "b", 10);
    add_event(s, "A", 1);
    pump(s);
    CHECK(store_del_item(s, "A", "i1") == 0);
    put_item(s, "A", "i3", "c", 10);
    add_event(s, "A", 2);
    pump(s);
    /* Committed, in the log only (a cycle starts after 5 s or 50,000). */
    CHECK(count("SELECT sum(n) FROM log") == 7 && count("SELECT count(*) FROM log") == 2);
    CHECK(count("SELECT value FROM server_state WHERE key = 'events'") == 0);
    CHECK(count("SELECT count(*) FROM items") == 0);
    CHECK(copy_file(wal, copy_wal) == 0 && copy_file(dbpath, copy) == 0);
    struct loaded l;
    CHECK(load(s, "A", &l) == 0); /* waits for the log to be applied */
    CHECK(l.room && l.seq == 2 && l.nevents == 2 && l.nitems == 2);
    CHECK(has_item(&l, "i2") && has_item(&l, "i3") && !has_item(&l, "i1"));
    CHECK(log_emptied());
    CHECK(count("SELECT value FROM server_state WHERE key = 'log_mark'") == 7);
    close_store(s);

    /* The copy with its log's last row cut short: refused at open, with the
     * row named in the log (nothing read past its end). */
    remove_db();
    CHECK(copy_file(copy, dbpath) == 0 && copy_file(copy_wal, wal) == 0);
    sqlite3 *db;
    CHECK(sqlite3_open(dbpath, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db,
                       "UPDATE log SET data = substr(data, 1, length(data) - 3)"
                       " WHERE id = (SELECT max(id) FROM log)",
                       NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    struct store *bad = NULL;
    struct store_hooks hooks = {NULL, on_commit, on_fail};
    CHECK(store_open(&bad, dbpath, &(struct store_options){0}, &loop, &hooks) != 0 && !bad);
    uv_run(&loop, UV_RUN_DEFAULT);

    /* The copy, as after a crash: replayed at open. */
    remove_db();
    CHECK(copy_file(copy, dbpath) == 0 && copy_file(copy_wal, wal) == 0);
    unlink(copy);
    unlink(copy_wal);
    CHECK(count("SELECT sum(n) FROM log") == 7);
    s = open_store(0);
    CHECK(count("SELECT count(*) FROM log") == 0);
    CHECK(count("SELECT count(*) FROM items WHERE room = 'A'") == 2);
    CHECK(count("SELECT count(*) FROM events WHERE room = 'A'") == 2);
    /* The committed events' count (restore detection) took the log's events. */
    CHECK(count("SELECT value FROM server_state WHERE key = 'events'") == 2);
    CHECK(store_restores(s) == 0 && read_high_water() == 2);
    CHECK(store_room_count(s) == 1);
    CHECK(load(s, "A", &l) == 0);
    CHECK(l.seq == 2 && l.nitems == 2 && has_item(&l, "i3"));
    /* Ids go on after the mark: the next records land after it. */
    add_event(s, "A", 3);
    pump(s);
    CHECK(count("SELECT min(id) FROM log") == 8);
    close_store(s);
    CHECK(count("SELECT count(*) FROM log") == 0);
    CHECK(count("SELECT count(*) FROM events WHERE room = 'A'") == 3);
}

/* A schema-5 database (as the server before the log made it: the same
 * statements) opens migrated to 6 with every row where it was. */
static void test_migrate_from_5(void)
{
    remove_db();
    sqlite3 *db;
    CHECK(sqlite3_open(dbpath, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(
              db,
              "PRAGMA journal_mode = WAL;"
              "CREATE TABLE rooms(id TEXT PRIMARY KEY, created_at INTEGER NOT NULL, meta BLOB NOT "
              "NULL) WITHOUT ROWID;"
              "CREATE TABLE participants(room TEXT NOT NULL, pid TEXT NOT NULL, data BLOB NOT "
              "NULL, PRIMARY KEY(room, pid)) WITHOUT ROWID;"
              "CREATE TABLE items(room TEXT NOT NULL, id TEXT NOT NULL, rank TEXT NOT NULL,"
              " data BLOB NOT NULL, PRIMARY KEY(room, id)) WITHOUT ROWID;"
              "CREATE INDEX items_rank ON items(room, rank);"
              "CREATE TABLE events(room TEXT NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL,"
              " author TEXT, type TEXT NOT NULL, payload BLOB NOT NULL, PRIMARY KEY(room, seq))"
              " WITHOUT ROWID;"
              "CREATE TABLE rounds(room TEXT NOT NULL, id TEXT NOT NULL, seqno INTEGER NOT NULL,"
              " data BLOB NOT NULL, PRIMARY KEY(room, id)) WITHOUT ROWID;"
              "CREATE INDEX rounds_order ON rounds(room, seqno);"
              "CREATE TABLE server_state(key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT "
              "ROWID;"
              "CREATE TABLE kano(room TEXT NOT NULL, item TEXT NOT NULL, seqno INTEGER NOT NULL,"
              " data BLOB NOT NULL, PRIMARY KEY(room, item)) WITHOUT ROWID;"
              "CREATE TABLE names(key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
              "CREATE TABLE moved(room TEXT PRIMARY KEY, to_room TEXT NOT NULL, at INTEGER NOT "
              "NULL) WITHOUT ROWID;"
              "PRAGMA user_version = 5;"
              "INSERT INTO rooms VALUES('A', 1000, x'80');"
              "INSERT INTO items VALUES('A', 'i1', 'a', x'a178'), ('A', 'i2', 'b', x'a178');"
              "INSERT INTO events VALUES('A', 1, 1001, 'p1', 'item.add', x'80'),"
              " ('A', 2, 1002, 'p1', 'item.add', x'80');"
              "INSERT INTO server_state VALUES('events', 2), ('restores', 0);",
              NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(db);
    struct store *s = open_store(0);
    CHECK(count("PRAGMA user_version") == 6);
    CHECK(store_room_count(s) == 1 && store_restores(s) == 0);
    struct loaded l;
    CHECK(load(s, "A", &l) == 0);
    CHECK(l.room && l.seq == 2 && l.nevents == 2 && l.nitems == 2 && has_item(&l, "i1"));
    add_event(s, "A", 3);
    pump(s);
    CHECK(load(s, "A", &l) == 0);
    CHECK(l.seq == 3 && l.nevents == 3);
    close_store(s);
}

/* A cycle that fails (another process holds the write lock past the
 * writer's 2 s) leaves the log as it was: the waiting reader is told, and
 * the next cycle applies every record. */
static void test_failed_cycle(void)
{
    remove_db();
    struct store *s = open_store(0);
    put_room(s, "A");
    put_item(s, "A", "i1", "a", 10);
    add_event(s, "A", 1);
    pump(s);
    sqlite3 *lock;
    CHECK(sqlite3_open(dbpath, &lock) == SQLITE_OK);
    CHECK(sqlite3_exec(lock, "BEGIN EXCLUSIVE", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(store_materialize(s) == RF_EINTERNAL);
    CHECK(sqlite3_exec(lock, "ROLLBACK", NULL, NULL, NULL) == SQLITE_OK);
    sqlite3_close(lock);
    CHECK(count("SELECT sum(n) FROM log") == 3);
    put_item(s, "A", "i2", "b", 10);
    pump(s);
    struct loaded l;
    CHECK(load(s, "A", &l) == 0); /* the next cycle: after a second */
    CHECK(l.room && l.seq == 1 && l.nitems == 2 && l.nevents == 1);
    CHECK(log_emptied());
    CHECK(count("SELECT value FROM server_state WHERE key = 'events'") == 1);
    close_store(s);
}

/* --group-commit-ms: a batch is handed to the writer at most every
 * group_ms, so the records of the turns in between share one transaction. */
static void test_group_commit(void)
{
    remove_db();
    struct store *s = open_store_with(&(struct store_options){.group_ms = 100});
    uv_update_time(&loop);       /* the store reads the loop's time (uv_now) */
    uint64_t t0 = uv_now(&loop); /* when the first batch is handed over */
    put_room(s, "A");
    pump(s); /* the first goes at once */
    commits = 0;
    put_item(s, "A", "i1", "a", 10);
    store_flush(s);
    uv_run(&loop, UV_RUN_NOWAIT);
    put_item(s, "A", "i2", "b", 10);
    store_flush(s);
    CHECK(store_durable(s) + 2 == store_added(s)); /* both wait */
    pump(s);
    uv_update_time(&loop);
    CHECK(uv_now(&loop) - t0 >= 90);
    CHECK(commits == 1 && store_last_batch(s)->records == 2);
    close_store(s);
}

static long long file_size(const char *suffix)
{
    char path[160];
    struct stat st;
    snprintf(path, sizeof path, "%s%s", dbpath, suffix);
    return stat(path, &st) == 0 ? (long long)st.st_size : 0;
}

/* Issue 14: an item of 400 KB is 100 overflow pages: its transaction
 * appends at least that many pages to the WAL, and the WAL file grows by no
 * more than the frames counted (4,096 + 24 bytes each); over WAL_CKPT_PAGES
 * pages wake the checkpointer, whose pages come with a later batch: some,
 * and no more than the WAL was given. */
static void test_pages(void)
{
    remove_db();
    struct store *s = open_store(0);
    paged = s;
    wal_frames = ckpt_pages = 0;
    long long wal0 = file_size("-wal");
    put_room(s, "A");
    put_item(s, "A", "big", "a", 400 * 1024);
    pump(s);
    CHECK(wal_frames >= 100 && wal_frames <= 130);
    CHECK((long long)wal_frames * (4096 + 24) >= file_size("-wal") - wal0);
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "i%d", i);
        put_item(s, "A", id, id, 2 * 1024 * 1024);
        pump(s);
    }
    CHECK(wal_frames >= 100 + 3 * 512);
    for (uint64_t seq = 1; seq <= 50 && !ckpt_pages; seq++) {
        usleep(100 * 1000);
        add_event(s, "A", seq);
        pump(s);
    }
    CHECK(ckpt_pages > 0);
    CHECK(ckpt_pages <= wal_frames + (uint64_t)wal0 / 4096);
    paged = NULL;
    close_store(s);
}

int main(void)
{
    log_set_level(LOG_ERROR);
    snprintf(dir, sizeof dir, "/tmp/refine-test-store-XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(dbpath, sizeof dbpath, "%s/store.db", dir);
    uv_loop_init(&loop);
    test_commit_and_load();
    test_failed_commit();
    test_restore_detection();
    test_close_persists_pending();
    test_close_while_checkpointing();
    test_log_replay();
    test_log_coalesce();
    test_migrate_from_5();
    test_failed_cycle();
    test_group_commit();
    test_pages();
    CHECK(uv_loop_close(&loop) == 0);
    remove_db();
    rmdir(dir);
    return check_summary("test_store");
}
