#include "metrics.h"

#include <dirent.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errors.h"

/* Commit time: a group commit of a few records is well under a millisecond
 * with synchronous=NORMAL; an fsync (--durability full) costs milliseconds. */
const double METRICS_SECONDS_BOUNDS[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                                         0.01,   0.025,   0.05,   0.1,   0.25,   1};
const size_t METRICS_SECONDS_NBOUNDS = sizeof METRICS_SECONDS_BOUNDS / sizeof(double);
/* Records per batch: one change is a few records (its event, its rows). */
const double METRICS_RECORDS_BOUNDS[] = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
const size_t METRICS_RECORDS_NBOUNDS = sizeof METRICS_RECORDS_BOUNDS / sizeof(double);

_Static_assert(sizeof METRICS_SECONDS_BOUNDS / sizeof(double) < METRICS_BUCKETS_MAX &&
                   sizeof METRICS_RECORDS_BOUNDS / sizeof(double) < METRICS_BUCKETS_MAX,
               "every bucket and +Inf fit in a histogram");

static void observe(struct metrics_hist *h, const double *bounds, size_t nb, double v)
{
    size_t i = 0;
    while (i < nb && v > bounds[i])
        i++;
    h->n[i]++; /* i == nb: +Inf */
    h->count++;
    h->sum += v;
}

void metrics_on_commit(struct metrics *m, double seconds, uint64_t records, uint64_t events,
                       bool ok)
{
    observe(&m->commit_seconds, METRICS_SECONDS_BOUNDS, METRICS_SECONDS_NBOUNDS, seconds);
    observe(&m->batch_records, METRICS_RECORDS_BOUNDS, METRICS_RECORDS_NBOUNDS, (double)records);
    if (ok)
        m->changes += events;
    else
        m->storage_failures++;
}

void metrics_on_pages(struct metrics *m, uint64_t wal_frames, uint64_t ckpt_pages,
                      uint64_t log_frames)
{
    m->log_frames += log_frames;
    m->wal_frames += wal_frames;
    m->ckpt_pages += ckpt_pages;
}

/* ---- the process, from the kernel ---------------------------------------- */

/* The size of the process' file descriptor table (FDSize in /proc/self/status), 0: unknown. */
static long fd_table_size(void)
{
    char line[256];
    long n = 0;
    FILE *f = fopen("/proc/self/status", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "FDSize: %ld", &n) == 1)
            break;
    if (f)
        fclose(f);
    return n;
}

/* Open file descriptors. Listing /proc/self/fd (what Prometheus' own
 * clients do) costs the kernel ~0.4 us an entry: 2 ms with 5,000
 * connections, on the loop. Since Linux 6.2 the size that stat() gives
 * that directory is the count, read from the descriptor table's bitmap:
 * microseconds. On older kernels (its size is 0 there), one poll() of
 * every slot of the table with no event asked and no wait, about a third
 * of the listing's cost: a closed slot answers POLLNVAL, an open one
 * anything else. The listing when the table's size cannot be read. */
static long open_fds(void)
{
    struct stat st;
    if (stat("/proc/self/fd", &st) == 0 && st.st_size > 0)
        return (long)st.st_size;
    long size = fd_table_size();
    struct pollfd *p = size > 0 ? malloc((size_t)size * sizeof *p) : NULL;
    long n = 0;
    if (p) {
        for (long i = 0; i < size; i++)
            p[i] = (struct pollfd){.fd = (int)i, .events = 0};
        if (poll(p, (nfds_t)size, 0) >= 0) {
            for (long i = 0; i < size; i++)
                n += !(p[i].revents & POLLNVAL);
            free(p);
            return n;
        }
        free(p);
    }
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    struct dirent *e;
    while ((e = readdir(d)))
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the listing's own */
}

/* Resident and virtual memory in bytes from /proc/self/statm (0: unknown). */
static void memory(double *rss, double *vsz)
{
    unsigned long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    *rss = *vsz = 0;
    if (!f)
        return;
    if (fscanf(f, "%lu %lu", &pages, &resident) == 2) {
        double page = (double)sysconf(_SC_PAGESIZE);
        *rss = (double)resident * page;
        *vsz = (double)pages * page;
    }
    fclose(f);
}

/* The process' start in Unix seconds: the boot time (/proc/stat btime) plus
 * its start in clock ticks after boot (field 22 of /proc/self/stat); the
 * time of the first scrape when they cannot be read. */
static double start_time(void)
{
    unsigned long long btime = 0, ticks = 0;
    char line[512];
    FILE *f = fopen("/proc/stat", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    if (f)
        fclose(f);
    f = fopen("/proc/self/stat", "r");
    int got = 0;
    if (f && fgets(line, sizeof line, f)) {
        /* The command in parentheses may hold spaces: count fields after its ')'. */
        const char *p = strrchr(line, ')');
        got = p && sscanf(p + 2,
                          "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d "
                          "%*d %*d %*d %*d %llu",
                          &ticks) == 1;
    }
    if (f)
        fclose(f);
    if (btime && got)
        return (double)btime + (double)ticks / (double)sysconf(_SC_CLK_TCK);
    return (double)time(NULL);
}

/* ---- the text ------------------------------------------------------------- */

struct text {
    char *p;
    size_t len, cap;
    bool oom;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
    for (int tries = 0; tries < 2 && !t->oom; tries++) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->oom = true;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap * 2 > t->len + (size_t)n + 1 ? t->cap * 2 : t->len + (size_t)n + 1;
        char *p = realloc(t->p, cap);
        if (!p) {
            t->oom = true;
            return;
        }
        t->p = p;
        t->cap = cap;
    }
}

/* # HELP and # TYPE of a family. */
static void family(struct text *t, const char *name, const char *type, const char *help)
{
    put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void counter(struct text *t, const char *name, const char *help, uint64_t v)
{
    family(t, name, "counter", help);
    put(t, "%s %llu\n", name, (unsigned long long)v);
}

static void gauge(struct text *t, const char *name, const char *help, double v)
{
    family(t, name, "gauge", help);
    put(t, "%s %.15g\n", name, v);
}

static void histogram(struct text *t, const char *name, const char *help,
                      const struct metrics_hist *h, const double *bounds, size_t nb)
{
    family(t, name, "histogram", help);
    uint64_t below = 0;
    for (size_t i = 0; i < nb; i++) {
        below += h->n[i];
        put(t, "%s_bucket{le=\"%.15g\"} %llu\n", name, bounds[i], (unsigned long long)below);
    }
    put(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    put(t, "%s_sum %.15g\n%s_count %llu\n", name, h->sum, name, (unsigned long long)h->count);
}

/* A label value with \, " and newline escaped (the format's rules). */
static void label_value(struct text *t, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            put(t, "\\%c", *s);
        else if (*s == '\n')
            put(t, "\\n");
        else
            put(t, "%c", *s);
    }
}

int metrics_text(struct metrics *m, const struct metrics_gauges *g, char **out, size_t *len)
{
    struct text t = {malloc(8192), 0, 8192, false};
    if (!t.p)
        return RF_ENOMEM;
    family(&t, "refine_instance_info", "gauge", "The instance's name (--instance), as a label.");
    put(&t, "refine_instance_info{instance=\"");
    label_value(&t, g->instance ? g->instance : "");
    put(&t, "\"} 1\n");

    gauge(&t, "refine_connections", "Open WebSocket connections.", (double)g->connections);
    gauge(&t, "refine_rooms_loaded", "Rooms in memory.", (double)g->rooms_loaded);
    gauge(&t, "refine_rooms", "Rooms in the database.", (double)g->rooms);
    gauge(&t, "refine_participants_online",
          "Participants of the rooms in memory with at least one open connection.",
          (double)g->participants_online);
    gauge(&t, "refine_queued_bytes",
          "Bytes of events, notices and replies queued to connections and not yet written (a "
          "join's snapshot or replay not counted): what --max-queue limits.",
          (double)g->queued_bytes);
    gauge(&t, "refine_log_pending_records",
          "Records committed to the log and not yet applied to the tables behind it.",
          (double)g->log_pending);
    gauge(&t, "refine_slow_readers",
          "Connections whose queue is over --max-queue (closed with 4001 if it stays so).",
          (double)g->slow_readers);

    counter(&t, "refine_changes_total", "Changes committed: events written to the database.",
            m->changes);
    counter(&t, "refine_deliveries_total",
            "Event and notice frames queued to the rooms' connections.", m->deliveries);
    counter(&t, "refine_messages_total", "WebSocket messages received.", m->messages);
    counter(&t, "refine_storage_failures_total",
            "Transactions that failed (nothing of them committed; their rooms reload).",
            m->storage_failures);
    counter(&t, "refine_rate_limited_total", "Messages refused with rate_limited.",
            m->rate_limited);
    counter(&t, "refine_slow_reader_drops_total",
            "Connections closed because their queue stayed over --max-queue (4001).",
            m->slow_drops);
    counter(&t, "refine_joins_total", "Joins that succeeded.", m->joins);
    counter(&t, "refine_wal_frames_total",
            "Pages (WAL frames) the writer's transactions appended to the WAL.", m->wal_frames);
    counter(&t, "refine_checkpoint_pages_total",
            "Pages the checkpoints copied from the WAL into the database file (counted with the "
            "next commit).",
            m->ckpt_pages);
    counter(&t, "refine_log_apply_pages_total",
            "Of refine_wal_frames_total: the pages written applying the log to the tables "
            "(cycles and trims).",
            m->log_frames);

    histogram(&t, "refine_commit_seconds",
              "Time of the writer's transaction per batch (group commit), seconds.",
              &m->commit_seconds, METRICS_SECONDS_BOUNDS, METRICS_SECONDS_NBOUNDS);
    histogram(&t, "refine_commit_batch_changes", "Records (events and rows) per batch written.",
              &m->batch_records, METRICS_RECORDS_BOUNDS, METRICS_RECORDS_NBOUNDS);

    struct rusage ru;
    double cpu = 0, rss, vsz;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
              (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
    memory(&rss, &vsz);
    struct rlimit rl;
    double max_fds = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY
                         ? (double)rl.rlim_cur
                         : -1;
    if (!m->start_time)
        m->start_time = start_time();
    family(&t, "process_cpu_seconds_total", "counter", "User and system CPU time, seconds.");
    put(&t, "process_cpu_seconds_total %.15g\n", cpu);
    gauge(&t, "process_resident_memory_bytes", "Resident memory size, bytes.", rss);
    gauge(&t, "process_virtual_memory_bytes", "Virtual memory size, bytes.", vsz);
    gauge(&t, "process_open_fds", "Open file descriptors.", (double)open_fds());
    gauge(&t, "process_max_fds", "Most open file descriptors (RLIMIT_NOFILE).", max_fds);
    gauge(&t, "process_start_time_seconds", "Start time of the process, Unix seconds.",
          m->start_time);
    if (t.oom) {
        free(t.p);
        return RF_ENOMEM;
    }
    *out = t.p;
    *len = t.len;
    return 0;
}
