/* refine-bench: the load generator of Refine.
 *
 * The parent process parses the flags, starts the server (--spawn) or
 * watches a running one (--server-pid), forks the worker processes that
 * hold the connections (worker.c), drives them phase by phase over pipes
 * (commands down, JSON lines up), samples the server's CPU time and
 * resident memory from /proc, merges the workers' histograms and prints a
 * human table (stderr) and one JSON line per scenario (stdout). */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "floor.h"
#include "hist.h"
#include "target.h"
#include "worker.h"

static const char *const NAMES[SC__COUNT] = {
    "idle", "meetings",     "saturate", "big-room",      "persist",
    "cold", "slow-readers", "soak",     "meetings-cold", "floor"};

const char *scenario_name(enum scenario s)
{
    return s < SC__COUNT ? NAMES[s] : "?";
}

static const char USAGE[] =
    "Usage: refine-bench [options]\n"
    "\n"
    "Load generator for refine-server: thousands of WebSocket clients (libwebsockets'\n"
    "client on libuv) speaking the Refine protocol through the protocol library.\n"
    "Prints a table per scenario on stderr and one JSON line per scenario on stdout.\n"
    "\n"
    "Target server (one of):\n"
    "  --spawn PATH        start PATH (refine-server) for each scenario on a free port with a\n"
    "                      temporary database, with --rate 100000 --max-conns-per-ip 100000\n"
    "                      --max-participants 100000, and stop it at the end (its exit status\n"
    "                      must be 0). Required by cold, meetings-cold and --smoke.\n"
    "  --spawn-args 'ARGS' extra arguments for the spawned server, space-separated, e.g.\n"
    "                      '--durability full' (they come last, so they win)\n"
    "  --keep              keep the spawned server's temp dir (database, server.log)\n"
    "  --host ADDR         a running server's IPv4 address (default 127.0.0.1)\n"
    "  --port N            a running server's port (default 8080); start it with\n"
    "                      --rate 100000 --max-conns-per-ip 100000 (and --max-participants\n"
    "                      above --clients for big-room)\n"
    "  --server-pid PID    that server's pid, for its CPU time and memory (/proc/PID)\n"
    "  --balancer-pid PID  the pid of a balancer (HAProxy) between the clients and the server\n"
    "                      (--host/--port are then the balancer's): its CPU time is reported,\n"
    "                      per delivery in meetings (bench/through-haproxy sets this up)\n"
    "\n"
    "What to run:\n"
    "  --scenario NAME     one of the scenarios below, or all (default meetings)\n"
    "  --smoke             a tiny run of every scenario (persist twice: normal and\n"
    "                      --durability full) against --spawn; exits 0 when each completed\n"
    "                      with zero errors. No timing is asserted.\n"
    "  --procs N           worker processes that split the rooms (default 1; big-room and\n"
    "                      cold use 1). Each raises its open-file limit to the hard limit.\n"
    "\n"
    "Knobs (defaults per scenario below):\n"
    "  --rooms N           rooms (cold: rooms stored for the start-up timing)\n"
    "  --per-room N        participants per room\n"
    "  --clients N         connections (idle, big-room)\n"
    "  --rate R            changes per participant per second (saturate: the first step)\n"
    "  --duration S        seconds measured (saturate: per step; slow-readers: per phase;\n"
    "                      idle: seconds the connections are held)\n"
    "  --items N           backlog items per room (cold: items of the big room; the server\n"
    "                      caps a room at 10000)\n"
    "  --window N          persist: requests in flight per client\n"
    "  --voters N          big-room: members who vote (the rest join as observers)\n"
    "  --repeats N         big-room: rounds measured\n"
    "  --events N          cold: events in the big room's history; soak: updates in all\n"
    "  --max-p99 MS        saturate: a step holds when its p99 is below this (default 50)\n"
    "  --rate-factor F     saturate: rate multiplier between steps (default 1.5)\n"
    "  --max-steps N       saturate: at most N steps (default 14)\n"
    "  --slow-pct P        slow-readers: percent of clients that stop reading (default 1)\n"
    "  --seed N            random seed (default 1)\n"
    "  --cold-every S      meetings-cold: seconds between cold joins (default 2)\n"
    "  --cold-items N      meetings-cold: items of each cold room (default 10000)\n"
    "  --frame BYTES       floor: bytes of a frame (default 95: a meetings event on the wire,\n"
    "                      93 bytes of payload on average plus the 2-byte WebSocket header)\n"
    "  --floor-seconds S   before the scenario, the floor (see below) for S seconds with the\n"
    "                      scenario's connections and delivery rate; the report then gives the\n"
    "                      server's CPU per change and per delivery as a multiple of it\n"
    "                      (default 5 for meetings and persist, 0 for the others; 0: off)\n"
    "  --verbose           print every err reply\n"
    "  --help              this text\n"
    "\n"
    "Scenarios and their figures:\n"
    "  idle          --clients 15000 --per-room 5 --duration 10: joined, silent connections;\n"
    "                server RSS per connection = (RSS after - RSS before) / clients.\n"
    "  meetings      --rooms 2000 --per-room 5 --rate 1 --duration 60 --items 20: every\n"
    "                participant makes a change (move, edit or vote, at random) R times a\n"
    "                second; fan-out latency (send -> the last member of the room has the\n"
    "                event) p50/p99/p99.9/max, changes/s, deliveries/s, server CPU.\n"
    "  saturate      meetings' rooms, --rate 0.1 raised by --rate-factor each --duration 10 s\n"
    "                step until p99 > --max-p99 (or errors); highest deliveries/s held.\n"
    "  big-room      --clients 10000 --voters 50 --repeats 10: one room; the facilitator\n"
    "                starts a round, the voters vote, the facilitator reveals; time until\n"
    "                the last participant has round.revealed (p50/p99/max over repeats).\n"
    "  persist       --rooms 25 --per-room 4 --window 4 --duration 20: edits as fast as\n"
    "                the server acknowledges them, N in flight per client; acks/s and ack\n"
    "                latency (send -> ok) for the durability the server runs with.\n"
    "  cold          --items 10000 --events 1000000 --rooms 1000 (needs --spawn): builds a\n"
    "                room with that history through the protocol plus rooms-1 more rooms,\n"
    "                restarts the server, times start -> /healthz 200 and the first join\n"
    "                -> snapshot (and a second, warm join).\n"
    "  slow-readers  meetings (--duration 30 per phase) run twice: all reading, then with\n"
    "                --slow-pct of clients that stop reading; the others' p99 in both,\n"
    "                server RSS (max) while the slow ones lag.\n"
    "  soak          --rooms 5 --per-room 1 --items 4 --rate 1000 --events 1000000:\n"
    "                item.update of a ~1.8 KB note at a steady rate until that many are\n"
    "                acknowledged, in steps of 10 s; server RSS after each step (printed\n"
    "                as it goes), its maximum and at the end: it must level off.\n"
    "  meetings-cold meetings, while a big room is joined cold every --cold-every 2 s (needs\n"
    "                --spawn): first builds duration/cold-every + 1 rooms of --cold-items\n"
    "                10000 items through the protocol and restarts the server; then the\n"
    "                meetings' figures plus each cold join -> snapshot (p50/max).\n"
    "  floor         --rooms 2000 --per-room 5 --rate 1 --duration 10, no server: the\n"
    "                machine's floor. rooms x per-room TCP connections over loopback; one\n"
    "                thread writes --frame byte frames to them at meetings' delivery rate\n"
    "                (rooms x per-room x rate x per-room frames/s), another reads them all\n"
    "                (epoll); pinned to two CPUs when there are two. 40% of --duration one\n"
    "                frame per send, 40% two frames per send, 20% flat out. Writer and\n"
    "                reader CPU per delivery (thread CPU clocks), deliveries/s achieved and\n"
    "                flat out. A rate of 0 (persist's prelude) runs every phase flat out.\n"
    "\n"
    "Latency is CLOCK_MONOTONIC from the moment a change is made (before it is queued)\n"
    "to the moment the last reading member of its room has decoded its event, matched\n"
    "by the seq of the author's ok. Exit status: 0 when every scenario completed with\n"
    "zero errors (err replies, disconnects, seq gaps, unfinished changes).\n";

/* ---- options ------------------------------------------------------------ */

struct opts {
    const char *spawn, *spawn_args, *scenario;
    char host[64];
    int port, keep, smoke, verbose;
    long server_pid, balancer_pid;
    int procs;
    /* -1: not given */
    double rooms, per_room, clients, rate, duration, items, window, voters, repeats, events,
        max_p99, rate_factor, max_steps, slow_pct, seed, cold_every, cold_items, frame,
        floor_seconds;
};

static void defaults(struct bench_cfg *c, enum scenario s, int smoke)
{
    memset(c, 0, sizeof *c);
    c->scenario = s;
    c->procs = 1;
    c->rooms = 2000;
    c->per_room = 5;
    c->clients = 15000;
    c->rate = 1;
    c->duration = 60;
    c->max_p99_ms = 50;
    c->rate_factor = 1.5;
    c->max_steps = 14;
    c->window = 16;
    c->voters = 50;
    c->repeats = 10;
    c->items = 20;
    c->events = 1000000;
    c->slow_pct = 1;
    c->seed = 1;
    c->cold_every = 2;
    c->cold_items = 10000;
    switch (s) {
    case SC_IDLE:
        c->duration = 10;
        break;
    case SC_SATURATE:
        c->duration = 10;
        c->rate = 0.1;
        break;
    case SC_BIG_ROOM:
        c->clients = 10000;
        break;
    case SC_PERSIST:
        c->rooms = 25;
        c->per_room = 4;
        c->window = 4;
        c->duration = 20;
        break;
    case SC_COLD:
        c->items = 10000;
        c->rooms = 1000;
        break;
    case SC_SLOW_READERS:
        c->duration = 30;
        break;
    case SC_SOAK:
        c->rooms = 5;
        c->per_room = 1;
        c->items = 4;
        c->rate = 1000;
        break;
    case SC_FLOOR:
        c->duration = 10;
        break;
    default:
        break;
    }
    if (!smoke)
        return;
    c->rooms = 4;
    c->per_room = 3;
    c->rate = 5;
    c->duration = 1;
    c->items = 5;
    switch (s) {
    case SC_IDLE:
        c->clients = 20;
        c->per_room = 5;
        c->duration = 0.5;
        break;
    case SC_SATURATE:
        c->rate_factor = 2;
        c->max_steps = 2;
        c->duration = 0.7;
        c->max_p99_ms = 1e9; /* no timing assertion */
        break;
    case SC_BIG_ROOM:
        c->clients = 40;
        c->voters = 5;
        c->repeats = 3;
        break;
    case SC_PERSIST:
        c->rooms = 3;
        c->per_room = 2;
        c->window = 4;
        break;
    case SC_COLD:
        c->items = 50;
        c->events = 1000;
        c->rooms = 20;
        break;
    case SC_SLOW_READERS:
        c->per_room = 5;
        break;
    case SC_MEETINGS_COLD:
        c->cold_every = 0.25;
        c->cold_items = 50;
        break;
    case SC_SOAK:
        c->rooms = 2;
        c->per_room = 1;
        c->items = 2;
        c->rate = 500;
        c->events = 2000;
        break;
    default:
        break;
    }
}

static void apply(struct bench_cfg *c, const struct opts *o)
{
    snprintf(c->host, sizeof c->host, "%s", o->host);
    c->port = o->port;
    c->verbose = o->verbose;
    if (o->procs > 0)
        c->procs = o->procs;
#define SET(field, opt, type)                                                                      \
    if (o->opt >= 0)                                                                               \
    c->field = (type)o->opt
    SET(rooms, rooms, size_t);
    SET(per_room, per_room, size_t);
    SET(clients, clients, size_t);
    SET(rate, rate, double);
    SET(duration, duration, double);
    SET(items, items, size_t);
    SET(window, window, size_t);
    SET(voters, voters, size_t);
    SET(repeats, repeats, size_t);
    SET(events, events, uint64_t);
    SET(max_p99_ms, max_p99, double);
    SET(rate_factor, rate_factor, double);
    SET(max_steps, max_steps, int);
    SET(slow_pct, slow_pct, double);
    SET(seed, seed, unsigned);
    SET(cold_every, cold_every, double);
    SET(cold_items, cold_items, size_t);
#undef SET
    if (c->cold_every < 0.05)
        c->cold_every = 0.05;
    if (c->scenario == SC_BIG_ROOM || c->scenario == SC_COLD)
        c->procs = 1;
    if (c->per_room < 1)
        c->per_room = 1;
    if (c->items < 2 && c->scenario != SC_IDLE)
        c->items = 2;
    if (c->window < 1)
        c->window = 1;
    if (c->window > 256)
        c->window = 256;
    if (c->voters >= c->clients && c->clients)
        c->voters = c->clients - 1;
}

/* ---- workers ------------------------------------------------------------ */

struct wk {
    pid_t pid;
    int in, out; /* our ends: commands to it, lines from it */
    char *buf;
    size_t len, cap;
    char *line; /* the last line it answered (owned) */
};

struct run {
    const struct bench_cfg *cfg;
    struct target *t;
    pid_t lb_pid; /* --balancer-pid, 0 if none */
    struct wk *w;
    int n;
    uint64_t rss_max;
    int failed;
    char why[300];
    int have_floor;            /* the floor was measured before the scenario */
    struct floor_result floor; /* (floor_seconds > 0) */
    double load_avg;           /* the 1-minute load average when it was */
    int want_pages;            /* mark() reads the server's page counters (meetings, persist) */
};

static int workers_start(struct run *r)
{
    int n = r->cfg->procs;
    r->w = calloc((size_t)n, sizeof *r->w);
    if (!r->w)
        return -1;
    for (int i = 0; i < n; i++) {
        int cmd[2], out[2];
        if (pipe(cmd) || pipe(out))
            return -1;
        for (int k = 0; k < 2; k++) {
            fcntl(cmd[k], F_SETFD, FD_CLOEXEC);
            fcntl(out[k], F_SETFD, FD_CLOEXEC);
        }
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
            return -1;
        if (pid == 0) {
            for (int j = 0; j < i; j++) {
                close(r->w[j].in);
                close(r->w[j].out);
            }
            close(cmd[1]);
            close(out[0]);
            signal(SIGPIPE, SIG_IGN);
            int rc = worker_main(r->cfg, i, n, cmd[0], out[1]);
            fflush(NULL);
            _exit(rc);
        }
        close(cmd[0]);
        close(out[1]);
        r->w[i].pid = pid;
        r->w[i].in = cmd[1];
        r->w[i].out = out[0];
        r->n++;
    }
    return 0;
}

static void workers_send(struct run *r, const char *cmd)
{
    for (int i = 0; i < r->n; i++) {
        size_t n = strlen(cmd);
        if (r->w[i].in >= 0 && write(r->w[i].in, cmd, n) != (ssize_t)n) {
            close(r->w[i].in);
            r->w[i].in = -1;
        }
    }
}

static void sample(struct run *r)
{
    double cpu;
    uint64_t rss;
    if (r->t->pid > 0 && !target_stats(r->t->pid, &cpu, &rss) && rss > r->rss_max)
        r->rss_max = rss;
}

/* Waits for every worker's answer `ev` (kept in w[i].line), sampling the
 * server's memory every 100 ms. 0, or -1 with r->why. */
static int workers_collect(struct run *r, const char *ev, double timeout_s)
{
    char want[64];
    int left = r->n;
    uint64_t t0 = now_us();
    snprintf(want, sizeof want, "{\"ev\":\"%s\"", ev);
    for (int i = 0; i < r->n; i++) {
        free(r->w[i].line);
        r->w[i].line = NULL;
    }
    while (left > 0) {
        struct pollfd p[64];
        int np = 0, idx[64];
        for (int i = 0; i < r->n && np < 64; i++)
            if (!r->w[i].line) {
                p[np].fd = r->w[i].out;
                p[np].events = POLLIN;
                idx[np++] = i;
            }
        int k = poll(p, (nfds_t)np, 100);
        sample(r);
        if (r->t->pid > 0 && !target_alive(r->t)) {
            snprintf(r->why, sizeof r->why, "the server (pid %d) is gone", (int)r->t->pid);
            return -1;
        }
        if ((double)(now_us() - t0) / 1e6 > timeout_s) {
            snprintf(r->why, sizeof r->why, "no '%s' from the workers within %.0f s", ev,
                     timeout_s);
            return -1;
        }
        if (k <= 0)
            continue;
        for (int j = 0; j < np; j++) {
            if (!(p[j].revents & (POLLIN | POLLHUP)))
                continue;
            struct wk *w = &r->w[idx[j]];
            if (w->cap - w->len < 65536) {
                size_t cap = w->cap ? w->cap * 2 : 262144;
                char *b = realloc(w->buf, cap);
                if (!b)
                    return -1;
                w->buf = b;
                w->cap = cap;
            }
            ssize_t n = read(w->out, w->buf + w->len, w->cap - w->len - 1);
            if (n <= 0) {
                snprintf(r->why, sizeof r->why, "worker %d exited", idx[j]);
                return -1;
            }
            w->len += (size_t)n;
            w->buf[w->len] = 0;
            char *nl;
            while ((nl = strchr(w->buf, '\n'))) {
                *nl = 0;
                if (strncmp(w->buf, "{\"ev\":\"fail\"", 12) == 0) {
                    const char *m = strstr(w->buf, "\"msg\":\"");
                    snprintf(r->why, sizeof r->why, "worker %d: %.200s", idx[j],
                             m ? m + 7 : w->buf);
                    char *q = strchr(r->why, '"');
                    if (q)
                        *q = 0;
                    return -1;
                }
                if (strncmp(w->buf, want, strlen(want)) == 0 && !w->line) {
                    w->line = strdup(w->buf);
                    left--;
                }
                size_t used = (size_t)(nl + 1 - w->buf);
                memmove(w->buf, nl + 1, w->len - used + 1);
                w->len -= used;
            }
        }
    }
    return 0;
}

/* Tells the workers to quit and reaps them; -1 when one did not exit 0. */
static int workers_stop(struct run *r)
{
    int rc = 0;
    workers_send(r, "quit\n");
    for (int i = 0; i < r->n; i++) {
        struct wk *w = &r->w[i];
        int st = 0;
        uint64_t t0 = now_us();
        while (waitpid(w->pid, &st, WNOHANG) == 0) {
            if (now_us() - t0 > 60000000u) {
                kill(w->pid, SIGKILL);
                waitpid(w->pid, &st, 0);
                break;
            }
            usleep(10000);
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
            fprintf(stderr, "refine-bench: worker %d ended with status %d\n", i,
                    WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
            rc = -1;
        }
        if (w->in >= 0)
            close(w->in);
        close(w->out);
        free(w->buf);
        free(w->line);
    }
    free(r->w);
    r->w = NULL;
    r->n = 0;
    return rc;
}

/* ---- figures ------------------------------------------------------------ */

static double jnum(const char *line, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = line ? strstr(line, k) : NULL;
    return p ? strtod(p + strlen(k), NULL) : 0;
}

struct agg {
    double secs;
    uint64_t changes, deliveries, notices, err_replies, disconnects, seq_gaps, incomplete,
        slow_closed, skipped, overrun, repeats;
    uint64_t err_by[12];
    struct hist lat, ack, aux;
};

static const char *const ERR_NAMES[12] = {"bad_request",  "unknown_op", "not_joined", "auth_failed",
                                          "forbidden",    "not_found",  "conflict",   "too_large",
                                          "rate_limited", "room_full",  "internal",   "other"};

static void merge_hist(struct hist *h, const char *line, const char *key, const char *maxkey)
{
    char k[32];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(line, k);
    if (p)
        hist_add_json(h, p + strlen(k));
    uint64_t m = (uint64_t)jnum(line, maxkey);
    if (m > h->max)
        h->max = m;
}

static void aggregate(const struct run *r, struct agg *a)
{
    memset(a, 0, sizeof *a);
    for (int i = 0; i < r->n; i++) {
        const char *l = r->w[i].line;
        if (!l)
            continue;
        double s = jnum(l, "secs");
        if (s > a->secs)
            a->secs = s;
#define ADD(f) a->f += (uint64_t)jnum(l, #f)
        ADD(changes);
        ADD(deliveries);
        ADD(notices);
        ADD(err_replies);
        ADD(disconnects);
        ADD(seq_gaps);
        ADD(incomplete);
        ADD(slow_closed);
        ADD(skipped);
        ADD(overrun);
        ADD(repeats);
#undef ADD
        const char *e = strstr(l, "\"err_by\":[");
        for (int k = 0; e && k < 12; k++) {
            char *end;
            e += k == 0 ? 10 : 0;
            a->err_by[k] += strtoull(e, &end, 10);
            e = *end == ',' ? end + 1 : NULL;
        }
        merge_hist(&a->lat, l, "lat", "lat_max");
        merge_hist(&a->ack, l, "ack", "ack_max");
        merge_hist(&a->aux, l, "aux", "aux_max");
    }
}

static uint64_t agg_errors(const struct agg *a)
{
    return a->err_replies + a->disconnects + a->seq_gaps + a->incomplete + a->overrun;
}

/* One scenario's output: JSON fields and table lines, appended as it runs. */
struct result {
    const struct bench_cfg *cfg;
    const char *label;
    int completed;
    uint64_t errors;
    char json[8192];
    size_t jlen;
    char table[4096];
    size_t tlen;
    char summary[160]; /* the headline figure against its target */
};

static void jput(struct result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jput(struct result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(res->json + res->jlen, sizeof res->json - res->jlen, fmt, ap);
    va_end(ap);
    if (n > 0 && res->jlen + (size_t)n < sizeof res->json)
        res->jlen += (size_t)n;
}

static void tput(struct result *res, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tput(struct result *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(res->table + res->tlen, sizeof res->table - res->tlen, fmt, ap);
    va_end(ap);
    if (n > 0 && res->tlen + (size_t)n < sizeof res->table)
        res->tlen += (size_t)n;
}

static double ms(double us)
{
    return us / 1000.0;
}

/* The latency, throughput and error fields of one measured step. */
static void put_step(struct result *res, const struct agg *a, const struct hist *h,
                     const char *prefix)
{
    double secs = a->secs > 0 ? a->secs : 1;
    jput(res,
         ",\"%sp50_ms\":%.3f,\"%sp99_ms\":%.3f,\"%sp999_ms\":%.3f,\"%smax_ms\":%.3f,"
         "\"%ssamples\":%llu,\"%schanges_per_s\":%.1f,\"%sdeliveries_per_s\":%.1f",
         prefix, ms(hist_quantile(h, 0.5)), prefix, ms(hist_quantile(h, 0.99)), prefix,
         ms(hist_quantile(h, 0.999)), prefix, ms((double)h->max), prefix,
         (unsigned long long)h->count, prefix, (double)a->changes / secs, prefix,
         (double)a->deliveries / secs);
    tput(res,
         "  %-14s p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms  (%llu samples)\n"
         "  %-14s %.0f changes/s  %.0f deliveries/s  %.0f notices/s  over %.1f s\n",
         prefix[0] ? prefix : "latency", ms(hist_quantile(h, 0.5)), ms(hist_quantile(h, 0.99)),
         ms(hist_quantile(h, 0.999)), ms((double)h->max), (unsigned long long)h->count,
         "throughput", (double)a->changes / secs, (double)a->deliveries / secs,
         (double)a->notices / secs, secs);
}

static void put_errors(struct result *res, const struct agg *a)
{
    uint64_t e = agg_errors(a);
    res->errors += e;
    jput(res,
         ",\"errors\":%llu,\"err_replies\":%llu,\"disconnects\":%llu,\"seq_gaps\":%llu,"
         "\"incomplete\":%llu,\"skipped_sends\":%llu",
         (unsigned long long)res->errors, (unsigned long long)a->err_replies,
         (unsigned long long)a->disconnects, (unsigned long long)a->seq_gaps,
         (unsigned long long)(a->incomplete + a->overrun), (unsigned long long)a->skipped);
    tput(res, "  %-14s %llu (err replies %llu, disconnects %llu, seq gaps %llu, unfinished %llu)",
         "errors", (unsigned long long)e, (unsigned long long)a->err_replies,
         (unsigned long long)a->disconnects, (unsigned long long)a->seq_gaps,
         (unsigned long long)(a->incomplete + a->overrun));
    for (int k = 0; k < 12; k++)
        if (a->err_by[k])
            tput(res, " %s:%llu", ERR_NAMES[k], (unsigned long long)a->err_by[k]);
    tput(res, "\n");
    if (a->skipped)
        tput(res, "  %-14s %llu sends skipped: a client's requests in flight were full\n", "",
             (unsigned long long)a->skipped);
}

struct cpu_mark {
    double cpu;
    uint64_t rss;
    uint64_t t;
    double lb_cpu; /* the balancer's CPU time (--balancer-pid) */
    int has_pages; /* pages: read from the server's /metrics (PAGE_METRICS) */
    double pages[4];
};

/* What the server's /metrics gives of its storage's pages (issue 14). */
static const char *const PAGE_METRICS[4] = {
    "refine_wal_frames_total", "refine_checkpoint_pages_total", "refine_changes_total",
    "refine_log_apply_pages_total" /* only a server with the log (schema 6) has it */};

static void mark(const struct run *r, struct cpu_mark *m)
{
    m->cpu = 0;
    m->rss = 0;
    m->t = now_us();
    if (r->t->pid > 0)
        target_stats(r->t->pid, &m->cpu, &m->rss);
    m->lb_cpu = 0;
    uint64_t lb_rss;
    if (r->lb_pid > 0)
        target_stats(r->lb_pid, &m->lb_cpu, &lb_rss);
    /* Behind a balancer /metrics would be one instance's: not read. */
    m->has_pages = r->want_pages && r->lb_pid <= 0 &&
                   (target_metrics(r->t->host, r->t->port, PAGE_METRICS, m->pages, 4) == 0 ||
                    (!isnan(m->pages[0]) && !isnan(m->pages[1]) && !isnan(m->pages[2])));
}

/* The pages the server's storage wrote per change over a step (its own
 * counts of WAL frames, checkpointed pages and changes committed, read from
 * /metrics at the step's start and end); nothing from a server without them. */
static void put_pages(struct result *res, const struct cpu_mark *a, const struct cpu_mark *b)
{
    double changes = b->pages[2] - a->pages[2];
    if (!a->has_pages || !b->has_pages || changes <= 0)
        return;
    double wal = b->pages[0] - a->pages[0], ckpt = b->pages[1] - a->pages[1];
    jput(res,
         ",\"wal_pages\":%.0f,\"checkpoint_pages\":%.0f,\"server_changes\":%.0f,"
         "\"wal_pages_per_change\":%.3f,\"checkpoint_pages_per_change\":%.3f",
         wal, ckpt, changes, wal / changes, ckpt / changes);
    tput(res,
         "  %-14s WAL pages per change: %.3f (checkpointed pages per change: %.3f); %.0f WAL "
         "pages, %.0f checkpointed, %.0f changes\n",
         "pages", wal / changes, ckpt / changes, wal, ckpt, changes);
    double logp = b->pages[3] - a->pages[3];
    if (!isnan(logp)) {
        jput(res, ",\"log_apply_pages_per_change\":%.3f", logp / changes);
        tput(res, "  %-14s of which applying the log to the tables: %.3f per change (%.0f pages)\n",
             "", logp / changes, logp);
    }
}

/* The balancer's CPU over the step, and per delivery (the cost the balancer
 * adds to each event delivered; compare with the server's). */
static void put_balancer(struct result *res, const struct run *r, const struct cpu_mark *a,
                         const struct cpu_mark *b, uint64_t deliveries)
{
    if (r->lb_pid <= 0)
        return;
    double wall = (double)(b->t - a->t) / 1e6, cpu = b->lb_cpu - a->lb_cpu;
    double per = deliveries ? 1e6 * cpu / (double)deliveries : 0;
    jput(res,
         ",\"balancer_cpu_s\":%.2f,\"balancer_cpu_pct\":%.1f,\"balancer_cpu_us_per_delivery\":%.3f",
         cpu, wall > 0 ? 100.0 * cpu / wall : 0, per);
    tput(res, "  %-14s cpu %.2f s over %.1f s (%.0f%% of a core): %.2f us per delivery\n",
         "balancer", cpu, wall, wall > 0 ? 100.0 * cpu / wall : 0, per);
}

static void put_server(struct result *res, const struct run *r, const struct cpu_mark *a,
                       const struct cpu_mark *b)
{
    double wall = (double)(b->t - a->t) / 1e6;
    if (r->t->pid <= 0) {
        tput(res, "  %-14s (no --server-pid: CPU and memory not measured)\n", "server");
        return;
    }
    jput(res,
         ",\"server_cpu_s\":%.2f,\"server_cpu_pct\":%.1f,\"server_rss_kb\":%llu,"
         "\"server_rss_max_kb\":%llu",
         b->cpu - a->cpu, wall > 0 ? 100.0 * (b->cpu - a->cpu) / wall : 0,
         (unsigned long long)b->rss, (unsigned long long)r->rss_max);
    tput(res, "  %-14s cpu %.2f s over %.1f s (%.0f%% of a core)  rss %llu KiB (max %llu KiB)\n",
         "server", b->cpu - a->cpu, wall, wall > 0 ? 100.0 * (b->cpu - a->cpu) / wall : 0,
         (unsigned long long)b->rss, (unsigned long long)r->rss_max);
}

/* ---- the floor ---------------------------------------------------------- */

/* A meetings event on the wire: 92.6 bytes of msgpack on average (moves,
 * edits and votes in meetings, measured) and the 2-byte header of an
 * unmasked WebSocket frame. */
#define FLOOR_FRAME 95

/* The floor's settings for a scenario: its connections, its deliveries per
 * second (changes/s x per_room; 0, flat out, for persist, which has no rate)
 * and `seconds` in all: 40% one frame a send, 40% two, 20% flat out. */
static void floor_settings(const struct bench_cfg *c, const struct opts *o, double seconds,
                           struct floor_cfg *f)
{
    int by_clients = c->scenario == SC_IDLE || c->scenario == SC_BIG_ROOM;
    memset(f, 0, sizeof *f);
    f->conns = by_clients ? c->clients : c->rooms * c->per_room;
    f->frame = o->frame > 0 ? (size_t)o->frame : FLOOR_FRAME;
    f->rate = c->scenario == SC_PERSIST || by_clients
                  ? 0
                  : (double)c->rooms * (double)c->per_room * c->rate * (double)c->per_room;
    f->seconds = 0.4 * seconds;
    f->flat_seconds = 0.2 * seconds;
}

static int measure_floor(struct run *r, const struct opts *o, double seconds)
{
    struct floor_cfg f;
    double load[1] = {0};
    floor_settings(r->cfg, o, seconds, &f);
    if (getloadavg(load, 1) == 1)
        r->load_avg = load[0];
    fprintf(stderr, "refine-bench: the floor: %zu connections, %.0f frames/s, %.1f s ...\n",
            f.conns, f.rate, seconds);
    if (floor_run(&f, &r->floor, r->why, sizeof r->why))
        return -1;
    r->have_floor = 1;
    return 0;
}

static void put_floor_phase(struct result *res, const struct floor_phase *p, const char *name,
                            const char *key)
{
    jput(res,
         ",\"floor%s_us_per_delivery\":%.3f,\"floor%s_read_us_per_delivery\":%.3f,"
         "\"floor%s_deliveries_per_s\":%.1f,\"floor%s_would_block\":%llu",
         key, floor_send_us(p), key, floor_read_us(p), key, floor_rate(p), key,
         (unsigned long long)p->would_block);
    tput(res,
         "  %-14s writer %.2f us (%.2f with its wake-ups), reader %.2f us per delivery; %.0f "
         "deliveries/s over %.1f s\n",
         name, floor_send_us(p), p->sent > 0 ? p->writer_cpu_s * 1e6 / p->sent : 0,
         floor_read_us(p), floor_rate(p), p->secs);
    if (p->would_block)
        tput(res, "  %-14s %llu frames not sent: a socket buffer was full\n", "",
             (unsigned long long)p->would_block);
}

/* The floor's figures: floor_us_per_delivery is the writer's CPU per frame
 * at one frame a send, the floor of a delivery. */
static void put_floor(struct result *res, const struct run *r)
{
    const struct floor_result *f = &r->floor;
    jput(res,
         ",\"floor_conns\":%zu,\"floor_frame\":%zu,\"floor_rate\":%.1f,\"floor_pinned\":%s,"
         "\"load_avg\":%.2f",
         f->conns, f->frame, f->rate, f->send_cpu >= 0 ? "true" : "false", r->load_avg);
    tput(res, "  %-14s %zu connections, %zu-byte frames, %.0f frames/s (%s); load average %.2f\n",
         "floor", f->conns, f->frame, f->rate, f->rate > 0 ? "meetings' rate" : "flat out",
         r->load_avg);
    if (f->send_cpu >= 0)
        tput(res, "  %-14s writer on CPU %d, reader on CPU %d\n", "", f->send_cpu, f->read_cpu);
    put_floor_phase(res, &f->one, "1 frame/send", "");
    put_floor_phase(res, &f->two, "2 frames/send", "_2");
    put_floor_phase(res, &f->flat, "flat out", "_flat");
}

/* The server's CPU per change and per delivery of a measured step, and,
 * when the floor was measured, each as a multiple of it. */
static void put_vs_floor(struct result *res, const struct run *r, const struct agg *a,
                         const struct cpu_mark *m0, const struct cpu_mark *m1)
{
    double cpu_us = (m1->cpu - m0->cpu) * 1e6;
    if (r->t->pid <= 0 || !a->changes || !a->deliveries || cpu_us <= 0)
        return;
    double change = cpu_us / (double)a->changes, delivery = cpu_us / (double)a->deliveries;
    jput(res, ",\"server_us_per_change\":%.2f,\"server_us_per_delivery\":%.3f", change, delivery);
    if (!r->have_floor) {
        tput(res, "  %-14s server CPU per change: %.1f us, per delivery: %.2f us\n", "per change",
             change, delivery);
        return;
    }
    double fc = floor_change_us(&r->floor, (double)a->deliveries / (double)a->changes);
    double fd = floor_send_us(&r->floor.one);
    double xc = fc > 0 ? change / fc : 0, xd = fd > 0 ? delivery / fd : 0;
    jput(res,
         ",\"floor_us_per_change\":%.2f,\"server_per_change_x_floor\":%.2f,"
         "\"server_per_delivery_x_floor\":%.2f",
         fc, xc, xd);
    tput(res, "  %-14s server CPU per change: %.1f us (%.1f x floor, %.1f us)\n", "vs floor",
         change, xc, fc);
    tput(res, "  %-14s per delivery: %.2f us (%.1f x floor, %.2f us)\n", "", delivery, xd, fd);
}

static int sc_floor(struct run *r, const struct opts *o, struct result *res)
{
    const struct bench_cfg *c = r->cfg;
    if (measure_floor(r, o, c->duration))
        return -1;
    const struct floor_result *f = &r->floor;
    double fc = floor_change_us(f, (double)c->per_room);
    put_floor(res, r);
    jput(res, ",\"floor_us_per_change\":%.2f,\"errors\":0", fc);
    tput(res,
         "  %-14s %.1f us: one receive, %zu sends of one frame and the author's event and "
         "reply in one send\n",
         "a change", fc, c->per_room > 1 ? c->per_room - 1 : 0);
    snprintf(res->summary, sizeof res->summary,
             "%.2f us a delivery (1 frame/send), %.2f (2), %.0f/s flat out; a change %.1f us",
             floor_send_us(&f->one), floor_send_us(&f->two), floor_rate(&f->flat), fc);
    return 0;
}

/* ---- scenarios ---------------------------------------------------------- */

#define SETUP_TIMEOUT 1800.0

static int do_setup(struct run *r, struct result *res)
{
    uint64_t t0 = now_us();
    workers_send(r, "setup\n");
    if (workers_collect(r, "ready", SETUP_TIMEOUT))
        return -1;
    double clients = 0, lost = 0;
    for (int i = 0; i < r->n; i++) {
        clients += jnum(r->w[i].line, "clients");
        lost += jnum(r->w[i].line, "setup_disconnects");
    }
    double s = (double)(now_us() - t0) / 1e6;
    res->errors += (uint64_t)lost;
    jput(res, ",\"setup_s\":%.2f,\"connections\":%.0f,\"setup_disconnects\":%.0f", s,
         clients - lost, lost);
    tput(res, "  %-14s %.0f connections joined in %.2f s", "setup", clients - lost, s);
    if (lost)
        tput(res, " (%.0f more were closed by the server during setup: errors)", lost);
    tput(res, "\n");
    return 0;
}

/* One measured step: `step RATE SECS` on every worker, merged into a. */
static int do_step(struct run *r, double rate, double secs, struct agg *a, struct cpu_mark *m0,
                   struct cpu_mark *m1)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "step %.6f %.6f\n", rate, secs);
    mark(r, m0);
    r->rss_max = m0->rss;
    workers_send(r, cmd);
    if (workers_collect(r, "step", secs + 60))
        return -1;
    mark(r, m1);
    aggregate(r, a);
    return 0;
}

static int sc_idle(struct run *r, struct result *res, const struct cpu_mark *before)
{
    const struct bench_cfg *c = r->cfg;
    struct agg a;
    struct cpu_mark m0, m1;
    if (do_setup(r, res) || do_step(r, 0, c->hold > 0 ? c->hold : c->duration, &a, &m0, &m1))
        return -1;
    put_errors(res, &a);
    put_server(res, r, &m0, &m1);
    if (r->t->pid > 0) {
        double per = ((double)m1.rss - (double)before->rss) * 1024.0 / (double)c->clients;
        jput(res,
             ",\"clients\":%zu,\"rss_before_kb\":%llu,\"rss_after_kb\":%llu,"
             "\"rss_per_conn_bytes\":%.0f",
             c->clients, (unsigned long long)before->rss, (unsigned long long)m1.rss, per);
        tput(res, "  %-14s %.0f bytes per connection (RSS %llu -> %llu KiB for %zu)\n", "memory",
             per, (unsigned long long)before->rss, (unsigned long long)m1.rss, c->clients);
        snprintf(res->summary, sizeof res->summary, "%.2f KiB/connection (target <= 4)",
                 per / 1024.0);
    }
    return 0;
}

/* meetings-cold, before the meetings: the big rooms it joins cold (built
 * through the protocol by worker 0), then a restart, so none is in memory. */
static int build_cold_rooms(struct run *r, struct result *res)
{
    const struct bench_cfg *c = r->cfg;
    if (!r->t->spawned) {
        snprintf(r->why, sizeof r->why, "meetings-cold restarts the server: it needs --spawn");
        return -1;
    }
    workers_send(r, "coldrooms\n");
    if (workers_collect(r, "coldrooms", SETUP_TIMEOUT))
        return -1;
    double rooms = jnum(r->w[0].line, "rooms"), build_s = jnum(r->w[0].line, "build_s");
    jput(res, ",\"cold_rooms\":%.0f,\"cold_items\":%zu,\"cold_every_s\":%.2f,\"cold_build_s\":%.2f",
         rooms, c->cold_items, c->cold_every, build_s);
    tput(res, "  %-14s %.0f rooms of %zu items in %.1f s; one joined cold every %.2f s\n",
         "cold rooms", rooms, c->cold_items, build_s, c->cold_every);
    if (target_restart(r->t)) {
        snprintf(r->why, sizeof r->why, "the server did not restart cleanly");
        return -1;
    }
    return 0;
}

static int sc_meetings(struct run *r, struct result *res)
{
    const struct bench_cfg *c = r->cfg;
    int cold = c->scenario == SC_MEETINGS_COLD;
    struct agg a;
    struct cpu_mark m0, m1;
    r->want_pages = 1;
    if ((cold && build_cold_rooms(r, res)) || do_setup(r, res) ||
        do_step(r, c->rate, c->duration, &a, &m0, &m1))
        return -1;
    put_step(res, &a, &a.lat, "");
    put_errors(res, &a);
    put_server(res, r, &m0, &m1);
    put_balancer(res, r, &m0, &m1, a.deliveries);
    jput(res, ",\"ack_p99_ms\":%.3f", ms(hist_quantile(&a.ack, 0.99)));
    put_vs_floor(res, r, &a, &m0, &m1);
    put_pages(res, &m0, &m1);
    if (cold) {
        jput(res,
             ",\"cold_joins\":%llu,\"cold_join_p50_ms\":%.3f,\"cold_join_p99_ms\":%.3f,"
             "\"cold_join_max_ms\":%.3f",
             (unsigned long long)a.aux.count, ms(hist_quantile(&a.aux, 0.5)),
             ms(hist_quantile(&a.aux, 0.99)), ms((double)a.aux.max));
        tput(res, "  %-14s %llu joins of a cold room -> snapshot: p50 %.2f ms, max %.2f ms\n",
             "cold joins", (unsigned long long)a.aux.count, ms(hist_quantile(&a.aux, 0.5)),
             ms((double)a.aux.max));
    }
    snprintf(res->summary, sizeof res->summary,
             "p99 %.2f ms, p99.9 %.2f ms, %.0f deliveries/s (target p99 <= 10, p99.9 <= 25)",
             ms(hist_quantile(&a.lat, 0.99)), ms(hist_quantile(&a.lat, 0.999)),
             (double)a.deliveries / (a.secs > 0 ? a.secs : 1));
    return 0;
}

static int sc_saturate(struct run *r, struct result *res)
{
    const struct bench_cfg *c = r->cfg;
    double rate = c->rate, best = 0, best_rate = 0, best_p99 = 0;
    if (do_setup(r, res))
        return -1;
    jput(res, ",\"steps\":[");
    for (int i = 0; i < c->max_steps; i++) {
        struct agg a;
        struct cpu_mark m0, m1;
        if (do_step(r, rate, c->duration, &a, &m0, &m1))
            return -1;
        double secs = a.secs > 0 ? a.secs : 1, dps = (double)a.deliveries / secs;
        double p99 = ms(hist_quantile(&a.lat, 0.99));
        uint64_t e = agg_errors(&a);
        double cpu = m1.cpu - m0.cpu, wall = (double)(m1.t - m0.t) / 1e6;
        jput(res,
             "%s{\"rate\":%.3f,\"changes_per_s\":%.1f,\"deliveries_per_s\":%.1f,\"p50_ms\":%.3f,"
             "\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,\"errors\":%llu,"
             "\"skipped_sends\":%llu,\"server_cpu_pct\":%.1f}",
             i ? "," : "", rate, (double)a.changes / secs, dps, ms(hist_quantile(&a.lat, 0.5)), p99,
             ms(hist_quantile(&a.lat, 0.999)), ms((double)a.lat.max), (unsigned long long)e,
             (unsigned long long)a.skipped, wall > 0 ? 100 * cpu / wall : 0);
        tput(res,
             "  step %-9d rate %.2f/s: %.0f changes/s, %.0f deliveries/s, p50 %.2f ms, p99 %.2f "
             "ms, max %.2f ms, errors %llu, server cpu %.0f%%\n",
             i + 1, rate, (double)a.changes / secs, dps, ms(hist_quantile(&a.lat, 0.5)), p99,
             ms((double)a.lat.max), (unsigned long long)e, wall > 0 ? 100 * cpu / wall : 0);
        if (p99 >= c->max_p99_ms) /* past the knee: the result, not an error */
            break;
        if (e) {
            res->errors += e; /* errors below the latency limit are errors */
            break;
        }
        if (dps > best) {
            best = dps;
            best_rate = rate;
            best_p99 = p99;
        }
        rate *= c->rate_factor;
    }
    jput(res,
         "],\"best_deliveries_per_s\":%.1f,\"best_rate\":%.3f,\"best_p99_ms\":%.3f,"
         "\"errors\":%llu",
         best, best_rate, best_p99, (unsigned long long)res->errors);
    tput(res, "  %-14s %.0f deliveries/s held with p99 %.2f ms < %.0f ms (rate %.2f/s)\n", "best",
         best, best_p99, c->max_p99_ms, best_rate);
    snprintf(res->summary, sizeof res->summary,
             "%.0f deliveries/s with p99 < %.0f ms (target >= 200000)", best, c->max_p99_ms);
    return 0;
}

static int sc_big_room(struct run *r, struct result *res)
{
    const struct bench_cfg *c = r->cfg;
    char cmd[64];
    struct agg a;
    struct cpu_mark m0, m1;
    if (do_setup(r, res))
        return -1;
    snprintf(cmd, sizeof cmd, "bigroom %zu\n", c->repeats);
    mark(r, &m0);
    workers_send(r, cmd);
    if (workers_collect(r, "bigroom", 600))
        return -1;
    mark(r, &m1);
    aggregate(r, &a);
    jput(res, ",\"clients\":%zu,\"voters\":%zu,\"repeats\":%llu", c->clients, c->voters,
         (unsigned long long)a.repeats);
    tput(res, "  %-14s %zu participants (%zu voters + facilitator), %llu rounds\n", "room",
         c->clients, c->voters, (unsigned long long)a.repeats);
    jput(res,
         ",\"p50_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f,"
         "\"start_vote_p99_ms\":%.3f,\"start_vote_max_ms\":%.3f",
         ms(hist_quantile(&a.lat, 0.5)), ms(hist_quantile(&a.lat, 0.99)),
         ms(hist_quantile(&a.lat, 0.999)), ms((double)a.lat.max), ms(hist_quantile(&a.aux, 0.99)),
         ms((double)a.aux.max));
    tput(res,
         "  %-14s p50 %.2f ms  p99 %.2f ms  max %.2f ms  (round.reveal -> the last has "
         "round.revealed)\n"
         "  %-14s p99 %.2f ms  max %.2f ms  (round.start and votes -> the last has the event)\n",
         "reveal", ms(hist_quantile(&a.lat, 0.5)), ms(hist_quantile(&a.lat, 0.99)),
         ms((double)a.lat.max), "start, votes", ms(hist_quantile(&a.aux, 0.99)),
         ms((double)a.aux.max));
    put_errors(res, &a);
    put_server(res, r, &m0, &m1);
    snprintf(res->summary, sizeof res->summary,
             "last of %zu has round.revealed: p99 %.2f ms (target <= 50)", c->clients,
             ms(hist_quantile(&a.lat, 0.99)));
    return 0;
}

static int sc_persist(struct run *r, struct result *res)
{
    const struct bench_cfg *c = r->cfg;
    struct agg a;
    struct cpu_mark m0, m1;
    int full = r->t->spawned && strstr(r->t->args, "full") != NULL;
    r->want_pages = 1;
    if (do_setup(r, res) || do_step(r, 0, c->duration, &a, &m0, &m1))
        return -1;
    double secs = a.secs > 0 ? a.secs : 1;
    jput(res, ",\"durability\":\"%s\",\"window\":%zu,\"acks_per_s\":%.1f",
         r->t->spawned ? (full ? "full" : "normal") : "unknown", c->window,
         (double)a.changes / secs);
    jput(res, ",\"ack_p50_ms\":%.3f,\"ack_p99_ms\":%.3f,\"ack_p999_ms\":%.3f,\"ack_max_ms\":%.3f",
         ms(hist_quantile(&a.ack, 0.5)), ms(hist_quantile(&a.ack, 0.99)),
         ms(hist_quantile(&a.ack, 0.999)), ms((double)a.ack.max));
    tput(res, "  %-14s %s, %zu in flight per client\n", "durability",
         r->t->spawned ? (full ? "full" : "normal") : "(as the server runs)", c->window);
    tput(res, "  %-14s %.0f acks/s  p50 %.2f ms  p99 %.2f ms  max %.2f ms  (send -> ok)\n", "acks",
         (double)a.changes / secs, ms(hist_quantile(&a.ack, 0.5)), ms(hist_quantile(&a.ack, 0.99)),
         ms((double)a.ack.max));
    put_step(res, &a, &a.lat, "");
    put_errors(res, &a);
    put_server(res, r, &m0, &m1);
    put_vs_floor(res, r, &a, &m0, &m1);
    put_pages(res, &m0, &m1);
    snprintf(res->summary, sizeof res->summary, "%.0f acks/s, ack p99 %.2f ms (target %s)",
             (double)a.changes / secs, ms(hist_quantile(&a.ack, 0.99)),
             full ? ">= 10000/s with p99 < 20 ms" : ">= 50000/s");
    return 0;
}

#define SOAK_STEP_S 10.0

/* Steps of SOAK_STEP_S at --rate until --events updates are acknowledged;
 * the server's RSS after each one. */
static int sc_soak(struct run *r, struct result *res)
{
    const struct bench_cfg *c = r->cfg;
    uint64_t done = 0, errors = 0, skipped = 0, rss_max = 0, rss_end = 0;
    double secs = 0, offered = c->rate * (double)(c->rooms * c->per_room);
    if (do_setup(r, res))
        return -1;
    struct cpu_mark start;
    mark(r, &start);
    uint64_t t0 = now_us();
    fprintf(stderr, "soak: server RSS %llu KiB after setup\n", (unsigned long long)start.rss);
    tput(res, "  %-14s rss %llu KiB after setup\n", "server", (unsigned long long)start.rss);
    jput(res, ",\"updates_wanted\":%llu,\"rss_setup_kb\":%llu,\"rss_kb\":[",
         (unsigned long long)c->events, (unsigned long long)start.rss);
    for (int i = 0; done < c->events; i++) {
        struct agg a;
        struct cpu_mark m0, m1;
        double step = (double)(c->events - done) / (offered > 0 ? offered : 1);
        if (step > SOAK_STEP_S)
            step = SOAK_STEP_S;
        if (step < 0.2)
            step = 0.2;
        if (do_step(r, c->rate, step, &a, &m0, &m1))
            return -1;
        done += a.changes;
        secs += a.secs;
        errors += agg_errors(&a);
        skipped += a.skipped;
        rss_end = m1.rss;
        if (r->rss_max > rss_max)
            rss_max = r->rss_max;
        if (m1.rss > rss_max)
            rss_max = m1.rss;
        jput(res, "%s%llu", i ? "," : "", (unsigned long long)m1.rss);
        fprintf(stderr, "soak: %llu updates in %.0f s, server RSS %llu KiB (max %llu KiB)\n",
                (unsigned long long)done, (double)(now_us() - t0) / 1e6, (unsigned long long)m1.rss,
                (unsigned long long)rss_max);
        tput(res, "  step %-9d %llu updates, %.0f/s, rss %llu KiB\n", i + 1,
             (unsigned long long)done, (double)a.changes / (a.secs > 0 ? a.secs : 1),
             (unsigned long long)m1.rss);
        if (agg_errors(&a) || a.changes == 0) {
            if (!agg_errors(&a)) {
                snprintf(r->why, sizeof r->why, "a step acknowledged no update");
                return -1;
            }
            break;
        }
    }
    res->errors += errors;
    jput(res,
         "],\"updates\":%llu,\"updates_per_s\":%.1f,\"errors\":%llu,\"skipped_sends\":%llu,"
         "\"server_rss_kb\":%llu,\"server_rss_max_kb\":%llu",
         (unsigned long long)done, secs > 0 ? (double)done / secs : 0,
         (unsigned long long)res->errors, (unsigned long long)skipped, (unsigned long long)rss_end,
         (unsigned long long)rss_max);
    tput(res, "  %-14s %llu updates in %.0f s (%.0f/s), errors %llu, skipped sends %llu\n", "soak",
         (unsigned long long)done, secs, secs > 0 ? (double)done / secs : 0,
         (unsigned long long)errors, (unsigned long long)skipped);
    tput(res, "  %-14s rss %llu KiB at the end, %llu KiB at most\n", "server",
         (unsigned long long)rss_end, (unsigned long long)rss_max);
    snprintf(res->summary, sizeof res->summary,
             "%llu updates, server RSS %.1f MiB at the end, %.1f MiB at most",
             (unsigned long long)done, (double)rss_end / 1024, (double)rss_max / 1024);
    return 0;
}

static int sc_cold(struct run *r, struct result *res)
{
    const struct bench_cfg *c = r->cfg;
    char cmd[64], db[300];
    struct stat st;
    if (!r->t->spawned) {
        snprintf(r->why, sizeof r->why, "cold restarts the server: it needs --spawn");
        return -1;
    }
    if (do_setup(r, res))
        return -1;
    workers_send(r, "build\n");
    if (workers_collect(r, "built", SETUP_TIMEOUT))
        return -1;
    double seq = jnum(r->w[0].line, "seq"), items = jnum(r->w[0].line, "items");
    double build_s = jnum(r->w[0].line, "build_s");
    snprintf(db, sizeof db, "%s/refine.db", r->t->dir);
    double db_mb = stat(db, &st) ? 0 : (double)st.st_size / 1048576.0;
    snprintf(db, sizeof db, "%s/refine.db-wal", r->t->dir);
    db_mb += stat(db, &st) ? 0 : (double)st.st_size / 1048576.0;
    tput(res,
         "  %-14s a room of %.0f items and %.0f events, %zu rooms, in %.1f s (%.0f "
         "events/s); database %.1f MiB\n",
         "built", items, seq, c->rooms, build_s, build_s > 0 ? seq / build_s : 0, db_mb);
    if (target_restart(r->t)) {
        snprintf(r->why, sizeof r->why, "the server did not restart cleanly");
        return -1;
    }
    struct cpu_mark m0, m1;
    mark(r, &m0);
    snprintf(cmd, sizeof cmd, "coldjoin %d\n", r->t->port);
    workers_send(r, cmd);
    if (workers_collect(r, "coldjoin", 120))
        return -1;
    mark(r, &m1);
    double cold = jnum(r->w[0].line, "cold_ms"), warm = jnum(r->w[0].line, "warm_ms");
    double bytes = jnum(r->w[0].line, "snapshot_bytes");
    jput(res,
         ",\"items\":%.0f,\"events\":%.0f,\"stored_rooms\":%zu,\"build_s\":%.2f,\"db_mb\":%.1f,"
         "\"start_to_healthy_ms\":%.2f,\"cold_join_ms\":%.3f,\"warm_join_ms\":%.3f,"
         "\"snapshot_bytes\":%.0f,\"errors\":%llu",
         items, seq, c->rooms, build_s, db_mb, r->t->started_ms, cold, warm, bytes,
         (unsigned long long)res->errors);
    tput(res, "  %-14s %.2f ms from exec to /healthz 200 with %zu rooms stored\n", "start",
         r->t->started_ms, c->rooms);
    tput(res, "  %-14s first join -> snapshot %.2f ms (%.0f bytes); a second join %.2f ms\n",
         "join", cold, bytes, warm);
    put_server(res, r, &m0, &m1);
    snprintf(res->summary, sizeof res->summary,
             "first join %.1f ms, healthy in %.1f ms (target < 100, < 1000)", cold,
             r->t->started_ms);
    return 0;
}

static int sc_slow_readers(struct run *r, struct result *res)
{
    const struct bench_cfg *c = r->cfg;
    struct agg a, b;
    struct cpu_mark m0, m1, m2, m3;
    if (do_setup(r, res) || do_step(r, c->rate, c->duration, &a, &m0, &m1))
        return -1;
    uint64_t rss_plain = r->rss_max;
    put_step(res, &a, &a.lat, "plain_");
    workers_send(r, "slow\n");
    if (workers_collect(r, "slow", 60))
        return -1;
    double slow = 0;
    for (int i = 0; i < r->n; i++)
        slow += jnum(r->w[i].line, "slow");
    if (do_step(r, c->rate, c->duration, &b, &m2, &m3))
        return -1;
    put_step(res, &b, &b.lat, "");
    double p0 = hist_quantile(&a.lat, 0.99), p1 = hist_quantile(&b.lat, 0.99);
    jput(res, ",\"slow_clients\":%.0f,\"slow_closed\":%llu,\"p99_ratio\":%.3f", slow,
         (unsigned long long)b.slow_closed, p0 > 0 ? p1 / p0 : 0);
    jput(res, ",\"plain_rss_max_kb\":%llu", (unsigned long long)rss_plain);
    tput(res, "  %-14s %.0f clients stopped reading; %llu of them closed by the server (4001)\n",
         "slow", slow, (unsigned long long)b.slow_closed);
    tput(res, "  %-14s others' p99 %.2f ms with slow readers vs %.2f ms without (x%.2f)\n",
         "compare", ms(p1), ms(p0), p0 > 0 ? p1 / p0 : 0);
    agg_errors(&a);
    struct agg both = b;
    both.err_replies += a.err_replies;
    both.disconnects += a.disconnects;
    both.seq_gaps += a.seq_gaps;
    both.incomplete += a.incomplete;
    both.overrun += a.overrun;
    put_errors(res, &both);
    put_server(res, r, &m2, &m3);
    put_vs_floor(res, r, &b, &m2, &m3);
    tput(res, "  %-14s rss max %llu KiB with slow readers, %llu KiB without\n", "memory",
         (unsigned long long)r->rss_max, (unsigned long long)rss_plain);
    snprintf(res->summary, sizeof res->summary,
             "others' p99 x%.2f of plain; server RSS max %llu KiB (target within 10%%, bounded)",
             p0 > 0 ? p1 / p0 : 0, (unsigned long long)r->rss_max);
    return 0;
}

/* ---- running a scenario ------------------------------------------------- */

static int run_scenario(const struct opts *o, struct bench_cfg *cfg, const char *label,
                        const char *extra_args, struct result *res)
{
    struct target t;
    struct run r;
    char args[1024];
    int rc = -1;
    memset(&t, 0, sizeof t);
    memset(&r, 0, sizeof r);
    memset(res, 0, sizeof *res);
    res->cfg = cfg;
    res->label = label;
    snprintf(args, sizeof args, "%s%s%s", o->spawn_args ? o->spawn_args : "", extra_args ? " " : "",
             extra_args ? extra_args : "");
    fprintf(stderr, "refine-bench: %s ...\n", label);
    r.cfg = cfg;
    r.t = &t;
    if (cfg->scenario == SC_FLOOR) {
        jput(res,
             "{\"scenario\":\"%s\",\"rooms\":%zu,\"per_room\":%zu,\"rate\":%.3f,"
             "\"duration_s\":%.1f",
             label, cfg->rooms, cfg->per_room, cfg->rate, cfg->duration);
        rc = sc_floor(&r, o, res);
        goto out;
    }
    /* The floor first, with nothing else of this run on the machine. */
    double floor_s = o->floor_seconds >= 0 ? o->floor_seconds
                     : cfg->scenario == SC_MEETINGS || cfg->scenario == SC_PERSIST
                         ? (o->smoke ? 0.3 : 5)
                         : 0;
    if (floor_s > 0 && measure_floor(&r, o, floor_s))
        fprintf(stderr, "refine-bench: no floor (%s); going on without it\n", r.why);
    if (o->spawn) {
        if (target_spawn(&t, o->spawn, args)) {
            snprintf(r.why, sizeof r.why, "could not start the server %s", o->spawn);
            goto out;
        }
        cfg->port = t.port;
        snprintf(cfg->host, sizeof cfg->host, "%s", t.host);
    } else {
        t.pid = (pid_t)o->server_pid;
        t.port = cfg->port;
        snprintf(t.host, sizeof t.host, "%s", cfg->host);
        if (target_healthz(t.host, t.port) != 200) {
            snprintf(r.why, sizeof r.why, "no server answers /healthz on %s:%d", t.host, t.port);
            goto out;
        }
    }
    r.cfg = cfg;
    r.t = &t;
    r.lb_pid = (pid_t)o->balancer_pid;
    struct cpu_mark before;
    usleep(200000);
    mark(&r, &before);
    jput(res,
         "{\"scenario\":\"%s\",\"procs\":%d,\"rooms\":%zu,\"per_room\":%zu,\"rate\":%.3f,"
         "\"duration_s\":%.1f",
         label, cfg->procs, cfg->rooms, cfg->per_room, cfg->rate, cfg->duration);
    if (r.have_floor)
        put_floor(res, &r);
    if (workers_start(&r)) {
        snprintf(r.why, sizeof r.why, "could not start the worker processes");
        goto out;
    }
    switch (cfg->scenario) {
    case SC_IDLE:
        rc = sc_idle(&r, res, &before);
        break;
    case SC_MEETINGS:
    case SC_MEETINGS_COLD:
        rc = sc_meetings(&r, res);
        break;
    case SC_SATURATE:
        rc = sc_saturate(&r, res);
        break;
    case SC_BIG_ROOM:
        rc = sc_big_room(&r, res);
        break;
    case SC_PERSIST:
        rc = sc_persist(&r, res);
        break;
    case SC_COLD:
        rc = sc_cold(&r, res);
        break;
    case SC_SLOW_READERS:
        rc = sc_slow_readers(&r, res);
        break;
    case SC_SOAK:
        rc = sc_soak(&r, res);
        break;
    default:
        break;
    }
out:
    if (r.n && workers_stop(&r) && rc == 0) {
        snprintf(r.why, sizeof r.why, "a worker process did not end cleanly");
        rc = -1;
    }
    free(r.w);
    if (t.spawned && target_stop(&t, o->keep) && rc == 0) {
        snprintf(r.why, sizeof r.why, "the server did not exit cleanly (see its log above)");
        jput(res, ",\"server_exit\":\"unclean\"");
        rc = -1;
    }
    res->completed = rc == 0;
    if (!res->jlen)
        jput(res, "{\"scenario\":\"%s\"", label);
    if (rc) {
        for (char *p = r.why; *p; p++)
            if (*p == '"' || *p == '\\')
                *p = '\'';
        jput(res, ",\"completed\":false,\"failure\":\"%s\"}", r.why);
        tput(res, "  FAILED: %s\n", r.why);
    } else {
        jput(res, ",\"completed\":true}");
    }
    fprintf(stderr, "\n== %s ==\n%s", label, res->table);
    printf("%s\n", res->json);
    fflush(stdout);
    return rc;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int parse_scenario(const char *s, enum scenario *out)
{
    for (int i = 0; i < SC__COUNT; i++)
        if (strcmp(s, NAMES[i]) == 0) {
            *out = (enum scenario)i;
            return 0;
        }
    return -1;
}

int main(int argc, char **argv)
{
    struct opts o;
    memset(&o, 0, sizeof o);
    snprintf(o.host, sizeof o.host, "127.0.0.1");
    o.port = 8080;
    o.scenario = "meetings";
    o.rooms = o.per_room = o.clients = o.rate = o.duration = o.items = o.window = o.voters =
        o.repeats = o.events = o.max_p99 = o.rate_factor = o.max_steps = o.slow_pct = o.seed =
            o.cold_every = o.cold_items = o.frame = o.floor_seconds = -1;
    enum {
        O_SPAWN = 256,
        O_SPAWN_ARGS,
        O_KEEP,
        O_HOST,
        O_PORT,
        O_PID,
        O_LB_PID,
        O_SCENARIO,
        O_SMOKE,
        O_PROCS,
        O_ROOMS,
        O_PER_ROOM,
        O_CLIENTS,
        O_RATE,
        O_DURATION,
        O_ITEMS,
        O_WINDOW,
        O_VOTERS,
        O_REPEATS,
        O_EVENTS,
        O_MAX_P99,
        O_RATE_FACTOR,
        O_MAX_STEPS,
        O_SLOW_PCT,
        O_SEED,
        O_COLD_EVERY,
        O_COLD_ITEMS,
        O_FRAME,
        O_FLOOR_SECONDS,
        O_VERBOSE,
        O_HELP
    };
    static const struct option LONG[] = {
        {"spawn", required_argument, 0, O_SPAWN},
        {"spawn-args", required_argument, 0, O_SPAWN_ARGS},
        {"keep", no_argument, 0, O_KEEP},
        {"host", required_argument, 0, O_HOST},
        {"port", required_argument, 0, O_PORT},
        {"server-pid", required_argument, 0, O_PID},
        {"balancer-pid", required_argument, 0, O_LB_PID},
        {"scenario", required_argument, 0, O_SCENARIO},
        {"smoke", no_argument, 0, O_SMOKE},
        {"procs", required_argument, 0, O_PROCS},
        {"rooms", required_argument, 0, O_ROOMS},
        {"per-room", required_argument, 0, O_PER_ROOM},
        {"clients", required_argument, 0, O_CLIENTS},
        {"rate", required_argument, 0, O_RATE},
        {"duration", required_argument, 0, O_DURATION},
        {"items", required_argument, 0, O_ITEMS},
        {"window", required_argument, 0, O_WINDOW},
        {"voters", required_argument, 0, O_VOTERS},
        {"repeats", required_argument, 0, O_REPEATS},
        {"events", required_argument, 0, O_EVENTS},
        {"max-p99", required_argument, 0, O_MAX_P99},
        {"rate-factor", required_argument, 0, O_RATE_FACTOR},
        {"max-steps", required_argument, 0, O_MAX_STEPS},
        {"slow-pct", required_argument, 0, O_SLOW_PCT},
        {"seed", required_argument, 0, O_SEED},
        {"cold-every", required_argument, 0, O_COLD_EVERY},
        {"cold-items", required_argument, 0, O_COLD_ITEMS},
        {"frame", required_argument, 0, O_FRAME},
        {"floor-seconds", required_argument, 0, O_FLOOR_SECONDS},
        {"verbose", no_argument, 0, O_VERBOSE},
        {"help", no_argument, 0, O_HELP},
        {0, 0, 0, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "h", LONG, NULL)) != -1) {
        double v = optarg ? strtod(optarg, NULL) : 0;
        switch (opt) {
        case O_SPAWN:
            o.spawn = optarg;
            break;
        case O_SPAWN_ARGS:
            o.spawn_args = optarg;
            break;
        case O_KEEP:
            o.keep = 1;
            break;
        case O_HOST:
            snprintf(o.host, sizeof o.host, "%s", optarg);
            break;
        case O_PORT:
            o.port = atoi(optarg);
            break;
        case O_PID:
            o.server_pid = atol(optarg);
            break;
        case O_LB_PID:
            o.balancer_pid = atol(optarg);
            break;
        case O_SCENARIO:
            o.scenario = optarg;
            break;
        case O_SMOKE:
            o.smoke = 1;
            break;
        case O_PROCS:
            o.procs = atoi(optarg);
            break;
        case O_ROOMS:
            o.rooms = v;
            break;
        case O_PER_ROOM:
            o.per_room = v;
            break;
        case O_CLIENTS:
            o.clients = v;
            break;
        case O_RATE:
            o.rate = v;
            break;
        case O_DURATION:
            o.duration = v;
            break;
        case O_ITEMS:
            o.items = v;
            break;
        case O_WINDOW:
            o.window = v;
            break;
        case O_VOTERS:
            o.voters = v;
            break;
        case O_REPEATS:
            o.repeats = v;
            break;
        case O_EVENTS:
            o.events = v;
            break;
        case O_MAX_P99:
            o.max_p99 = v;
            break;
        case O_RATE_FACTOR:
            o.rate_factor = v;
            break;
        case O_MAX_STEPS:
            o.max_steps = v;
            break;
        case O_SLOW_PCT:
            o.slow_pct = v;
            break;
        case O_SEED:
            o.seed = v;
            break;
        case O_COLD_EVERY:
            o.cold_every = v;
            break;
        case O_COLD_ITEMS:
            o.cold_items = v;
            break;
        case O_FRAME:
            o.frame = v;
            break;
        case O_FLOOR_SECONDS:
            o.floor_seconds = v;
            break;
        case O_VERBOSE:
            o.verbose = 1;
            break;
        case 'h':
        case O_HELP:
            fputs(USAGE, stdout);
            return 0;
        default:
            fputs("refine-bench: try --help\n", stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "refine-bench: unexpected argument %s; try --help\n", argv[optind]);
        return 2;
    }
    if (o.smoke && !o.spawn) {
        fputs("refine-bench: --smoke needs --spawn PATH\n", stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    raise_nofile();

    enum scenario list[SC__COUNT + 1];
    const char *extra[SC__COUNT + 1] = {0};
    const char *labels[SC__COUNT + 1];
    int n = 0;
    if (o.smoke || strcmp(o.scenario, "all") == 0) {
        for (int i = 0; i < SC__COUNT; i++) {
            labels[n] = NAMES[i];
            list[n++] = (enum scenario)i;
            if (o.smoke && i == SC_PERSIST) {
                labels[n] = "persist-full";
                extra[n] = "--durability full";
                list[n++] = SC_PERSIST;
            }
        }
    } else {
        if (parse_scenario(o.scenario, &list[0])) {
            fprintf(stderr, "refine-bench: unknown scenario %s; try --help\n", o.scenario);
            return 2;
        }
        labels[0] = NAMES[list[0]];
        n = 1;
    }
    if (!o.spawn) {
        for (int i = 0; i < n; i++)
            if ((list[i] == SC_COLD || list[i] == SC_MEETINGS_COLD) && n == 1) {
                fprintf(stderr, "refine-bench: %s restarts the server: use --spawn PATH\n",
                        NAMES[list[i]]);
                return 2;
            }
    }

    size_t count = n > 0 && n <= SC__COUNT + 1 ? (size_t)n : 1;
    struct result *res = calloc(count, sizeof *res);
    struct bench_cfg *cfgs = calloc(count, sizeof *cfgs);
    if (!res || !cfgs)
        return 1;
    int failed = 0;
    for (int i = 0; i < n; i++) {
        defaults(&cfgs[i], list[i], o.smoke);
        apply(&cfgs[i], &o);
        if ((list[i] == SC_COLD || list[i] == SC_MEETINGS_COLD) && !o.spawn) {
            fprintf(stderr, "refine-bench: skipping %s: it needs --spawn\n", NAMES[list[i]]);
            continue;
        }
        if (run_scenario(&o, &cfgs[i], labels[i], extra[i], &res[i]) || res[i].errors)
            failed++;
    }
    fprintf(stderr, "\n%-14s %-9s %s\n", "scenario", "result", "headline figure");
    for (int i = 0; i < n; i++) {
        if (!res[i].label)
            continue;
        fprintf(stderr, "%-14s %-9s %s\n", res[i].label,
                !res[i].completed ? "FAILED"
                : res[i].errors   ? "errors"
                                  : "ok",
                res[i].summary);
    }
    if (o.smoke)
        fprintf(stderr, "refine-bench: smoke %s: %d of %d scenarios completed with zero errors\n",
                failed ? "FAILED" : "passed", n - failed, n);
    free(res);
    free(cfgs);
    return failed ? 1 : 0;
}
