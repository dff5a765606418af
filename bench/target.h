/* The server under test, seen from the parent process: spawning it on a free
 * port with a temporary database (--spawn), restarting and stopping it,
 * reading its CPU time and resident memory from /proc, /healthz and /metrics. */
#ifndef REFINE_BENCH_TARGET_H
#define REFINE_BENCH_TARGET_H

#include <stdint.h>
#include <sys/types.h>

struct target {
    pid_t pid;         /* the server's pid (spawned or --server-pid), 0 if unknown */
    int spawned;       /* 1 when this process started it */
    int port;          /* its port */
    char host[64];     /* where it listens */
    char dir[256];     /* spawned: temp dir holding refine.db and server.log */
    char path[512];    /* spawned: the binary */
    char args[1024];   /* spawned: extra arguments (--spawn-args), space-separated */
    double started_ms; /* spawned: start to /healthz 200 of the last start */
};

/* Makes a temp dir, picks a free port, starts path with the load-raising
 * flags plus args, and waits for /healthz 200 (up to 60 s). 0 or -1. */
int target_spawn(struct target *t, const char *path, const char *args);
/* SIGTERM, wait, start again on the same port and database; measures
 * t->started_ms. 0 or -1. */
int target_restart(struct target *t);
/* Spawned: SIGTERM and wait (SIGKILL after 20 s); returns the exit status
 * (0 is a clean exit, -1 killed or crashed) and removes the temp dir unless
 * keep. Not spawned: nothing. */
int target_stop(struct target *t, int keep);
/* 1 while the process exists. */
int target_alive(const struct target *t);
/* utime + stime in seconds and VmRSS in KiB from /proc. 0 or -1. */
int target_stats(pid_t pid, double *cpu_s, uint64_t *rss_kb);
/* GET /healthz; the HTTP status, or -1 when nothing answered. */
int target_healthz(const char *host, int port);
/* GET /metrics: the values of the samples without labels names[0..n-1]
 * into v (NAN where absent). 0 when all were served, else -1 (no answer, not
 * 200, or a name missing: a server without them). */
int target_metrics(const char *host, int port, const char *const *names, double *v, int n);
/* The last lines of the spawned server's log to stderr. */
void target_log_tail(const struct target *t, int lines);

#endif
