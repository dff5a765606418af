#include "target.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t n = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&a, sizeof a) || getsockname(fd, (struct sockaddr *)&a, &n)) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

/* GET path into resp (cap bytes, NUL-terminated): the status line only
 * (whole 0) or the whole response, until the server closes. The HTTP
 * status, or -1 when nothing answered. */
static int http_get(const char *host, int port, const char *path, char *resp, size_t cap, int whole)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&a, sizeof a)) {
        close(fd);
        return -1;
    }
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n\r\n",
                     path, host, port);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    size_t got = 0;
    struct pollfd p = {fd, POLLIN, 0};
    resp[0] = 0;
    while (got < cap - 1 && poll(&p, 1, 2000) == 1) {
        ssize_t r = read(fd, resp + got, cap - 1 - got);
        if (r <= 0)
            break;
        got += (size_t)r;
        resp[got] = 0;
        if (!whole && strstr(resp, "\r\n"))
            break;
    }
    close(fd);
    resp[got] = 0;
    int status;
    if (sscanf(resp, "HTTP/1.%*d %d", &status) != 1)
        return -1;
    return status;
}

int target_healthz(const char *host, int port)
{
    char resp[512];
    return http_get(host, port, "/healthz", resp, sizeof resp, 0);
}

int target_metrics(const char *host, int port, const char *const *names, double *v, int n)
{
    size_t cap = 1 << 16;
    char *resp = malloc(cap);
    int found = 0;
    if (resp && http_get(host, port, "/metrics", resp, cap, 1) == 200) {
        for (int i = 0; i < n; i++) {
            /* a sample's line: its name at the start of a line, a space, the value */
            size_t len = strlen(names[i]);
            v[i] = NAN;
            for (const char *p = strstr(resp, names[i]); p; p = strstr(p + 1, names[i]))
                if (p > resp && p[-1] == '\n' && p[len] == ' ') {
                    v[i] = strtod(p + len + 1, NULL);
                    found++;
                    break;
                }
        }
    }
    free(resp);
    return found == n ? 0 : -1;
}

/* fork + exec the server; its stderr and stdout go to dir/server.log. */
static int start(struct target *t)
{
    char port[16], db[300], log[300], args[1024];
    char *argv[64];
    int argc = 0;
    snprintf(port, sizeof port, "%d", t->port);
    snprintf(db, sizeof db, "%s/refine.db", t->dir);
    snprintf(log, sizeof log, "%s/server.log", t->dir);
    snprintf(args, sizeof args, "%s", t->args);
    argv[argc++] = t->path;
    argv[argc++] = "--port";
    argv[argc++] = port;
    argv[argc++] = "--db";
    argv[argc++] = db;
    argv[argc++] = "--log-level";
    argv[argc++] = "warn";
    /* The per-connection and per-address limits are for people, not for a
     * load tool: raise them (--spawn-args can still override). */
    argv[argc++] = "--rate";
    argv[argc++] = "100000";
    argv[argc++] = "--max-conns-per-ip";
    argv[argc++] = "100000";
    argv[argc++] = "--max-participants";
    argv[argc++] = "100000";
    for (char *save = NULL, *tok = strtok_r(args, " ", &save); tok && argc < 62;
         tok = strtok_r(NULL, " ", &save))
        argv[argc++] = tok;
    argv[argc] = NULL;

    fflush(NULL);
    uint64_t t0 = now_us();
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
        int nul = open("/dev/null", O_RDONLY);
        if (nul >= 0) {
            dup2(nul, 0);
            close(nul);
        }
        execv(t->path, argv);
        _exit(127);
    }
    t->pid = pid;
    /* /healthz every 2 ms, for up to 60 s (a sanitizer build starts slowly). */
    while (now_us() - t0 < 60000000u) {
        if (target_healthz(t->host, t->port) == 200) {
            t->started_ms = (double)(now_us() - t0) / 1000.0;
            return 0;
        }
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            fprintf(stderr, "refine-bench: the server exited at start-up; its log:\n");
            t->pid = 0;
            target_log_tail(t, 20);
            return -1;
        }
        usleep(2000);
    }
    fprintf(stderr, "refine-bench: the server did not answer /healthz within 60 s\n");
    return -1;
}

int target_spawn(struct target *t, const char *path, const char *args)
{
    snprintf(t->path, sizeof t->path, "%s", path);
    snprintf(t->args, sizeof t->args, "%s", args ? args : "");
    snprintf(t->host, sizeof t->host, "127.0.0.1");
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/refine-bench-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(t->dir)) {
        perror("refine-bench: mkdtemp");
        return -1;
    }
    t->spawned = 1;
    t->port = free_port();
    if (t->port <= 0)
        return -1;
    return start(t);
}

/* SIGTERM and wait; the exit status (0 clean), -1 when it did not end
 * cleanly. */
static int terminate(struct target *t)
{
    int st = 0;
    if (t->pid <= 0)
        return -1;
    kill(t->pid, SIGTERM);
    uint64_t t0 = now_us();
    for (;;) {
        pid_t r = waitpid(t->pid, &st, WNOHANG);
        if (r == t->pid)
            break;
        if (r < 0) {
            t->pid = 0;
            return -1;
        }
        if (now_us() - t0 > 20000000u) {
            fprintf(stderr, "refine-bench: the server did not stop within 20 s of SIGTERM; "
                            "killing it\n");
            kill(t->pid, SIGKILL);
            waitpid(t->pid, &st, 0);
            t->pid = 0;
            return -1;
        }
        usleep(5000);
    }
    t->pid = 0;
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    fprintf(stderr, "refine-bench: the server died of signal %d\n", WTERMSIG(st));
    return -1;
}

int target_restart(struct target *t)
{
    int rc = terminate(t);
    if (rc != 0) {
        fprintf(stderr, "refine-bench: the server's exit status before the restart: %d\n", rc);
        target_log_tail(t, 20);
    }
    return start(t) ? -1 : rc == 0 ? 0 : -1;
}

int target_stop(struct target *t, int keep)
{
    if (!t->spawned)
        return 0;
    int rc = terminate(t);
    if (rc != 0) {
        fprintf(stderr, "refine-bench: the server's exit status: %d; the end of its log:\n", rc);
        target_log_tail(t, 20);
    }
    if (!keep && t->dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "refine-bench: could not remove %s\n", t->dir);
    } else if (t->dir[0]) {
        fprintf(stderr, "refine-bench: kept %s\n", t->dir);
    }
    t->spawned = 0;
    return rc == 0 ? 0 : -1;
}

int target_alive(const struct target *t)
{
    return t->pid > 0 && kill(t->pid, 0) == 0;
}

int target_stats(pid_t pid, double *cpu_s, uint64_t *rss_kb)
{
    char path[64], buf[2048];
    if (pid <= 0)
        return -1;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    /* Fields after the command name (which may hold spaces) start at ") ". */
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    *cpu_s = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    f = fopen(path, "r");
    if (!f)
        return -1;
    *rss_kb = 0;
    while (fgets(buf, sizeof buf, f)) {
        unsigned long long kb;
        if (sscanf(buf, "VmRSS: %llu kB", &kb) == 1)
            *rss_kb = kb;
    }
    fclose(f);
    return 0;
}

void target_log_tail(const struct target *t, int lines)
{
    char cmd[400];
    if (!t->dir[0])
        return;
    snprintf(cmd, sizeof cmd, "tail -n %d '%s/server.log' >&2", lines, t->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "(no server log)\n");
}
