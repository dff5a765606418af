/* The server's figures for monitoring, and their Prometheus text (format
 * 0.0.4) for GET /metrics (net_metrics.c answers it).
 *
 * Counters and histograms live in struct metrics (app.metrics), plain
 * integers bumped on the loop thread where things happen: no lock, no
 * atomic. The commit histograms take what the store's writer thread
 * measured, handed over with the commit (store_last_batch(), read in the
 * on_commit hook on the loop thread). The connections' gauges are kept
 * here too, as they change (conn.c: walking thousands of connections at a
 * scrape would cost a cache miss each); the participants online are
 * counted in the rooms in memory at each scrape (struct metrics_gauges),
 * and the process' figures read from the kernel then. The text is built
 * only on a scrape. */
#ifndef REFINE_METRICS_H
#define REFINE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* Most buckets of a histogram, +Inf included. */
#define METRICS_BUCKETS_MAX 16

/* A histogram: observations per bucket (not cumulative: made cumulative in
 * the text), the last bucket being +Inf; their count and sum. */
struct metrics_hist {
    uint64_t n[METRICS_BUCKETS_MAX];
    uint64_t count;
    double sum;
};

struct metrics {
    uint64_t changes;          /* events committed (acknowledged changes) */
    uint64_t deliveries;       /* event and notice frames queued to connections */
    uint64_t messages;         /* WebSocket messages received */
    uint64_t storage_failures; /* transactions that failed (nothing of them committed) */
    uint64_t rate_limited;     /* messages refused with rate_limited */
    uint64_t slow_drops;       /* connections closed for their queue (4001) */
    uint64_t joins;            /* joins that succeeded */
    uint64_t wal_frames;       /* pages the writer appended to the WAL */
    uint64_t ckpt_pages;       /* pages checkpoints copied into the database file */
    uint64_t log_frames;       /* of wal_frames: applying the log (cycles, trims) */
    /* Gauges kept as they change (conn.c): */
    uint64_t connections;  /* open WebSockets (on app->conns) */
    uint64_t queued_bytes; /* the sum of their qbytes */
    uint64_t slow_readers; /* those over --max-queue (over_since set), until closed or gone */
    struct metrics_hist commit_seconds; /* the writer's transaction time per batch */
    struct metrics_hist batch_records;  /* records per batch */
    double start_time;                  /* the process' start (Unix s), read once (0: not yet) */
};

/* The gauges of a scrape (net_metrics.c gathers them: struct metrics' own,
 * and what it counts in the rooms in memory). */
struct metrics_gauges {
    const char *instance;         /* the instance's name (may be "") */
    uint64_t connections;         /* open WebSockets */
    uint64_t rooms_loaded;        /* rooms in memory */
    uint64_t rooms;               /* rooms in the database */
    uint64_t participants_online; /* participants with at least one open connection */
    uint64_t queued_bytes;        /* output queued to connections, not yet written */
    uint64_t slow_readers;        /* connections over --max-queue (closed if they stay) */
    uint64_t log_pending;         /* records committed to the log, not yet in the tables */
};

/* A batch written by the store (store_last_batch()): its transaction took
 * `seconds`, held `records` records of which `events` events; ok: committed. */
void metrics_on_commit(struct metrics *m, double seconds, uint64_t records, uint64_t events,
                       bool ok);

/* The same batch's pages: appended to the WAL by its transaction, and
 * copied into the database file by the checkpoints since the batch before. */
void metrics_on_pages(struct metrics *m, uint64_t wal_frames, uint64_t ckpt_pages,
                      uint64_t log_frames);

/* The Prometheus text of m, g and the process' figures, into *out (owned
 * by the caller, NUL-terminated) and *len. m is borrowed (its start time
 * is read and kept on first use). Returns 0 or RF_ENOMEM. */
int metrics_text(struct metrics *m, const struct metrics_gauges *g, char **out, size_t *len);

/* The upper bounds of the commit histograms' buckets (without +Inf): for
 * the tests and the docs. */
extern const double METRICS_SECONDS_BOUNDS[];
extern const size_t METRICS_SECONDS_NBOUNDS;
extern const double METRICS_RECORDS_BOUNDS[];
extern const size_t METRICS_RECORDS_NBOUNDS;

#endif
