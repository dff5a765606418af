/* Unit tests of the metrics (metrics.h, net_metrics.c's gauges):
 * - the text: HELP and TYPE of every family, counters as given, the
 *   instance's name as an escaped label value, histograms cumulative up to
 *   +Inf with their sum and count;
 * - metrics_on_commit: a value on a bucket's bound counts in that bucket
 *   (le is "less or equal"), past the last in +Inf; a failed batch is a
 *   storage failure and adds no change; metrics_on_pages adds up the WAL's
 *   and the checkpoints' pages;
 * - the gauges of an in-process server: connections as conn_new and
 *   conn_on_closed count them, rooms and participants online from the
 *   rooms in memory (queued bytes and slow readers need a socket: the
 *   integration test test_metrics.py follows them);
 * - the cost of a scrape (gauges and text) with the meetings benchmark's
 *   default size in memory: 2,000 rooms of 5 participants online and
 *   10,000 connections. Printed; checked only against a loose bound (the
 *   machine is shared, and the sanitizer build is slower). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "errors.h"
#include "fixture.h"
#include "metrics.h"
#include "net_int.h"
#include "token.h"

/* Whether text holds line (a whole line). */
static int has_line(const char *text, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = text; (p = strstr(p, line)); p++)
        if ((p == text || p[-1] == '\n') && p[n] == '\n')
            return 1;
    return 0;
}

static void test_text(void)
{
    struct metrics m = {0};
    m.changes = 12;
    m.deliveries = 34;
    m.messages = 56;
    m.storage_failures = 1;
    m.rate_limited = 7;
    m.slow_drops = 2;
    m.joins = 9;
    metrics_on_commit(&m, 0.0001, 1, 1, true); /* on the first bound: in it */
    metrics_on_commit(&m, 0.0003, 3, 2, true);
    metrics_on_commit(&m, 5.0, 6000, 0, false); /* past every bound: +Inf; a failure */
    metrics_on_pages(&m, 5, 0, 0);
    /* the checkpoints' pages, with a later commit; 2 of the 3 WAL pages the log's */
    metrics_on_pages(&m, 3, 7, 2);
    struct metrics_gauges g = {"a\"b\\c\nd", 3, 4, 5, 6, 7, 1, 9};
    char *t;
    size_t len;
    CHECK(metrics_text(&m, &g, &t, &len) == 0);
    CHECK(strlen(t) == len);
    CHECK(has_line(t, "refine_instance_info{instance=\"a\\\"b\\\\c\\nd\"} 1"));
    CHECK(has_line(t, "# TYPE refine_instance_info gauge"));
    CHECK(has_line(t, "refine_connections 3"));
    CHECK(has_line(t, "refine_rooms_loaded 4"));
    CHECK(has_line(t, "refine_rooms 5"));
    CHECK(has_line(t, "refine_participants_online 6"));
    CHECK(has_line(t, "refine_queued_bytes 7"));
    CHECK(has_line(t, "refine_slow_readers 1"));
    CHECK(has_line(t, "# TYPE refine_changes_total counter"));
    CHECK(has_line(t, "refine_changes_total 15")); /* 12 + the events of the two commits */
    CHECK(has_line(t, "refine_deliveries_total 34"));
    CHECK(has_line(t, "refine_messages_total 56"));
    CHECK(has_line(t, "refine_storage_failures_total 2"));
    CHECK(has_line(t, "refine_rate_limited_total 7"));
    CHECK(has_line(t, "refine_slow_reader_drops_total 2"));
    CHECK(has_line(t, "refine_joins_total 9"));
    CHECK(has_line(t, "# TYPE refine_wal_frames_total counter"));
    CHECK(has_line(t, "refine_wal_frames_total 8"));
    CHECK(has_line(t, "# TYPE refine_checkpoint_pages_total counter"));
    CHECK(has_line(t, "refine_checkpoint_pages_total 7"));
    CHECK(has_line(t, "# TYPE refine_log_apply_pages_total counter"));
    CHECK(has_line(t, "refine_log_apply_pages_total 2"));
    CHECK(has_line(t, "# TYPE refine_log_pending_records gauge"));
    CHECK(has_line(t, "refine_log_pending_records 9"));
    CHECK(has_line(t, "# TYPE refine_commit_seconds histogram"));
    CHECK(has_line(t, "refine_commit_seconds_bucket{le=\"0.0001\"} 1"));
    CHECK(has_line(t, "refine_commit_seconds_bucket{le=\"0.00025\"} 1"));
    CHECK(has_line(t, "refine_commit_seconds_bucket{le=\"0.0005\"} 2"));
    CHECK(has_line(t, "refine_commit_seconds_bucket{le=\"1\"} 2"));
    CHECK(has_line(t, "refine_commit_seconds_bucket{le=\"+Inf\"} 3"));
    CHECK(has_line(t, "refine_commit_seconds_sum 5.0004"));
    CHECK(has_line(t, "refine_commit_seconds_count 3"));
    CHECK(has_line(t, "refine_commit_batch_changes_bucket{le=\"1\"} 1"));
    CHECK(has_line(t, "refine_commit_batch_changes_bucket{le=\"2\"} 1"));
    CHECK(has_line(t, "refine_commit_batch_changes_bucket{le=\"5\"} 2"));
    CHECK(has_line(t, "refine_commit_batch_changes_bucket{le=\"5000\"} 2"));
    CHECK(has_line(t, "refine_commit_batch_changes_bucket{le=\"+Inf\"} 3"));
    CHECK(has_line(t, "refine_commit_batch_changes_sum 6004"));
    CHECK(has_line(t, "refine_commit_batch_changes_count 3"));
    CHECK(has_line(t, "# TYPE process_cpu_seconds_total counter"));
    CHECK(has_line(t, "# TYPE process_start_time_seconds gauge"));
    CHECK(strstr(t, "\nprocess_open_fds ") && strstr(t, "\nprocess_resident_memory_bytes "));
    /* every family has its HELP before its TYPE, every line ends */
    CHECK(t[len - 1] == '\n');
    int help = 0, type = 0;
    for (const char *p = t; (p = strstr(p, "# HELP ")); p++)
        help++;
    for (const char *p = t; (p = strstr(p, "# TYPE ")); p++)
        type++;
    CHECK(help == type && help == 26);
    /* the start time is read once and kept */
    double start = m.start_time;
    CHECK(start > 1.6e9);
    free(t);
    CHECK(metrics_text(&m, &g, &t, &len) == 0 && m.start_time == start);
    free(t);
}

/* Times the scrape's work: the gauges from app, then the text. */
static double scrape_us(int n)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < n; i++) {
        struct metrics_gauges g;
        char *t;
        size_t len;
        net_metrics_gauges(&app, &g);
        CHECK(metrics_text(&app.metrics, &g, &t, &len) == 0);
        free(t);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / n;
}

#define ROOMS    2000
#define PER_ROOM 5

/* A room in memory with PER_ROOM participants, four voters and an observer,
 * `online` of them connected. */
static void add_room(int k, int online)
{
    struct room *r = room_new(&app);
    snprintf(r->id, sizeof r->id, "room%d", k);
    for (int i = 0; i < PER_ROOM; i++) {
        struct participant *p = room_add_participant(r);
        token_new(p->pid);
        p->role = i == PER_ROOM - 1 ? ROLE_OBSERVER : ROLE_MEMBER;
        room_track_participant(r, p);
        if (i < online) {
            p->online = 1;
            room_observer_presence(r, p, true);
        }
    }
    CHECK(map_put(&app.rooms, r->id, r) == 0);
}

static void test_gauges_and_cost(void)
{
    fixture_start(0);
    snprintf(app.instance, sizeof app.instance, "a");
    app.room_count = 12345;
    struct metrics_gauges g;
    net_metrics_gauges(&app, &g);
    CHECK(g.connections == 0 && g.rooms_loaded == 0 && g.participants_online == 0);
    CHECK(g.rooms == 12345 && strcmp(g.instance, "a") == 0);

    /* a few: every participant of room0 online, two of room1's four voters */
    add_room(0, PER_ROOM);
    add_room(1, 2);
    struct client *cl[3];
    for (int i = 0; i < 3; i++)
        cl[i] = client_new();
    app.metrics.queued_bytes = 1000; /* kept by conn.c as queues change (a socket's) */
    app.metrics.slow_readers = 1;
    net_metrics_gauges(&app, &g);
    CHECK(g.connections == 3 && g.rooms_loaded == 2);
    CHECK(g.participants_online == PER_ROOM + 2);
    CHECK(g.queued_bytes == 1000 && g.slow_readers == 1);
    app.metrics.queued_bytes = app.metrics.slow_readers = 0;
    for (int i = 0; i < 3; i++) {
        conn_on_closed(cl[i]->c);
        client_drop(cl[i]);
    }
    net_metrics_gauges(&app, &g);
    CHECK(g.connections == 0);

    /* the meetings benchmark's default size: 2,000 rooms x 5, 10,000 connections */
    for (int k = 2; k < ROOMS; k++)
        add_room(k, PER_ROOM);
    static struct client *many[ROOMS * PER_ROOM];
    for (int i = 0; i < ROOMS * PER_ROOM; i++)
        many[i] = client_new();
    net_metrics_gauges(&app, &g);
    CHECK(g.connections == ROOMS * PER_ROOM && g.rooms_loaded == ROOMS);
    CHECK(g.participants_online == (ROOMS - 1) * PER_ROOM + 2);
    scrape_us(10); /* warm */
    double us = scrape_us(200);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (int i = 0; i < 200; i++)
        net_metrics_gauges(&app, &g);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double gauges_us =
        ((double)(t1.tv_sec - t0.tv_sec) * 1e6 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e3) / 200;
    printf("scrape with %d rooms x %d online and %d connections: %.1f us (the rooms' walk "
           "%.1f us, the text and the process' figures the rest)\n",
           ROOMS, PER_ROOM, ROOMS * PER_ROOM, us, gauges_us);
    CHECK(us < 20000); /* 2% of a core at one scrape a second, sanitizers included */
    for (int i = 0; i < ROOMS * PER_ROOM; i++) {
        conn_on_closed(many[i]->c);
        client_drop(many[i]);
    }
    fixture_stop();
}

/* Commits reach the histograms through the store's hook (outbox_on_commit):
 * one observation per batch, with the writer's figures. */
static void test_commit_hook(void)
{
    fixture_start(0);
    uint64_t before = app.metrics.commit_seconds.count;
    msgpack_pack_nil(store_packer(app.store));
    CHECK(store_put_room(app.store, "r1", 1) == 0);
    CHECK(store_add_event(app.store, "r1", 1, 1, NULL, "x", "\x80", 1) == 0);
    CHECK(store_add_event(app.store, "r1", 2, 1, NULL, "x", "\x80", 1) == 0);
    CHECK(inproc_pump(&app));
    CHECK(app.metrics.commit_seconds.count == before + 1);
    CHECK(app.metrics.batch_records.count == before + 1);
    CHECK(app.metrics.batch_records.sum == 3);
    CHECK(app.metrics.changes == 2);
    CHECK(app.metrics.commit_seconds.sum > 0 && app.metrics.commit_seconds.sum < 10);
    CHECK(app.metrics.storage_failures == 0);
    const struct store_batch_info *b = store_last_batch(app.store);
    CHECK(b->ok && b->records == 3 && b->events == 2);
    fixture_stop();
}

int main(void)
{
    test_text();
    test_gauges_and_cost();
    test_commit_hook();
    fixture_done();
    return check_summary("test_metrics");
}
