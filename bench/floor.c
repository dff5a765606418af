#define _GNU_SOURCE /* pthread_setaffinity_np, CPU_SET */
#include "floor.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#define READ_BUF     65536
#define FLAT_BATCH   256      /* flat out: sends between two looks at the clock */
#define MIN_SLEEP_US 500      /* paced: the writer sleeps at least this long (sends in bursts) */
#define DRAIN_US     3000000u /* after a phase: how long the reader may take to catch up */
#define FD_RESERVE   64       /* file descriptors left for everything else */

struct floor_ctx {
    const struct floor_cfg *cfg;
    int *srv, *cli; /* the writer's and the reader's ends, n of each */
    size_t n;
    int lfd, ep;
    char *frames; /* two frames' worth of bytes */
    int cpus[2];

    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned gen, done_gen; /* a phase is asked for by gen++, done when done_gen == gen */
    int quit;
    struct floor_phase *phase; /* the phase asked for */
    double phase_secs, phase_rate;

    atomic_uint_fast64_t read_bytes;
    atomic_int stop_reader;
};

static double thread_cpu_s(clockid_t id)
{
    struct timespec ts;
    if (clock_gettime(id, &ts))
        return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(char *why, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *why, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, len, fmt, ap);
    va_end(ap);
}

/* The first two CPUs this process may run on, or -1 -1 when it has one. */
static void pick_cpus(int out[2])
{
    cpu_set_t s;
    int k = 0;
    out[0] = out[1] = -1;
    if (sched_getaffinity(0, sizeof s, &s))
        return;
    for (int c = 0; c < CPU_SETSIZE && k < 2; c++)
        if (CPU_ISSET(c, &s))
            out[k++] = c;
    if (k < 2)
        out[0] = out[1] = -1;
}

static void pin_self(int cpu)
{
    cpu_set_t s;
    if (cpu < 0)
        return;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    pthread_setaffinity_np(pthread_self(), sizeof s, &s);
}

/* ---- the reader ("the clients") ----------------------------------------- */

static void *reader_main(void *arg)
{
    struct floor_ctx *x = arg;
    struct epoll_event ev[512];
    char *buf = malloc(READ_BUF);
    pin_self(x->cpus[1]);
    while (buf && !atomic_load_explicit(&x->stop_reader, memory_order_relaxed)) {
        int k = epoll_wait(x->ep, ev, 512, 20);
        uint64_t got = 0;
        for (int i = 0; i < k; i++) {
            int fd = ev[i].data.fd;
            ssize_t r = recv(fd, buf, READ_BUF, 0);
            if (r > 0)
                got += (uint64_t)r;
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                epoll_ctl(x->ep, EPOLL_CTL_DEL, fd, NULL);
        }
        if (got)
            atomic_fetch_add_explicit(&x->read_bytes, got, memory_order_relaxed);
    }
    free(buf);
    return NULL;
}

/* ---- the writer ("the server side") ------------------------------------- */

static void sleep_us(double us)
{
    struct timespec ts = {(time_t)(us / 1e6),
                          (long)((us - (double)(time_t)(us / 1e6) * 1e6) * 1e3)};
    nanosleep(&ts, NULL);
}

/* One phase: frames_per_send frames a send, round-robin over the
 * connections, at rate frames/s (0: flat out) for secs. */
static void write_phase(struct floor_ctx *x, struct floor_phase *p, double secs, double rate)
{
    size_t len = x->cfg->frame * (size_t)p->frames_per_send, i = 0;
    double sends_per_s = rate / p->frames_per_send;
    uint64_t sends = 0, bytes = 0, blocked = 0;
    double cpu0 = thread_cpu_s(CLOCK_THREAD_CPUTIME_ID), in_sends = 0;
    uint64_t t0 = now_us();
    for (;;) {
        double el = (double)(now_us() - t0) / 1e6;
        if (el >= secs)
            break;
        uint64_t due = rate > 0 ? (uint64_t)(el * sends_per_s) + 1 : sends + FLAT_BATCH;
        double b0 = thread_cpu_s(CLOCK_THREAD_CPUTIME_ID);
        for (; sends < due; sends++) {
            ssize_t w = send(x->srv[i], x->frames, len, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (w > 0)
                bytes += (uint64_t)w;
            else
                blocked += (uint64_t)p->frames_per_send;
            if (++i == x->n)
                i = 0;
        }
        in_sends += thread_cpu_s(CLOCK_THREAD_CPUTIME_ID) - b0;
        if (rate > 0) {
            double next = (double)sends / sends_per_s - el, left = secs - el;
            double us = (next < left ? next : left) * 1e6;
            sleep_us(us > MIN_SLEEP_US ? us : MIN_SLEEP_US);
        }
    }
    /* Paced, the sends are due within secs, and a sleep that overran it (a busy
     * machine) is no time of the phase; flat out, the wall time it took. */
    p->secs = rate > 0 ? secs : (double)(now_us() - t0) / 1e6;
    p->send_cpu_s = in_sends;
    p->writer_cpu_s = thread_cpu_s(CLOCK_THREAD_CPUTIME_ID) - cpu0;
    p->sent = (double)bytes / (double)x->cfg->frame;
    p->would_block = blocked;
}

static void *writer_main(void *arg)
{
    struct floor_ctx *x = arg;
    unsigned seen = 0;
    pin_self(x->cpus[0]);
    pthread_mutex_lock(&x->mu);
    for (;;) {
        while (!x->quit && x->gen == seen)
            pthread_cond_wait(&x->cv, &x->mu);
        if (x->quit)
            break;
        seen = x->gen;
        pthread_mutex_unlock(&x->mu);
        write_phase(x, x->phase, x->phase_secs, x->phase_rate);
        pthread_mutex_lock(&x->mu);
        x->done_gen = seen;
        pthread_cond_broadcast(&x->cv);
    }
    pthread_mutex_unlock(&x->mu);
    return NULL;
}

/* ---- setup -------------------------------------------------------------- */

/* Opens x->n connection pairs (fewer if the descriptors run out). */
static int connect_all(struct floor_ctx *x, size_t want, char *why, size_t why_len)
{
    struct sockaddr_in a;
    socklen_t alen = sizeof a;
    struct rlimit rl;
    int one = 1;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur > FD_RESERVE && want > (rl.rlim_cur - FD_RESERVE) / 2)
        want = (size_t)(rl.rlim_cur - FD_RESERVE) / 2;
    if (want < 1) {
        say(why, why_len, "floor: no file descriptors left for a connection");
        return -1;
    }
    x->srv = malloc(want * sizeof *x->srv);
    x->cli = malloc(want * sizeof *x->cli);
    x->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    x->ep = epoll_create1(EPOLL_CLOEXEC);
    if (!x->srv || !x->cli || x->lfd < 0 || x->ep < 0) {
        say(why, why_len, "floor: out of memory or descriptors");
        return -1;
    }
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(x->lfd, (struct sockaddr *)&a, sizeof a) || listen(x->lfd, 4096) ||
        getsockname(x->lfd, (struct sockaddr *)&a, &alen)) {
        say(why, why_len, "floor: cannot listen on loopback: %s", strerror(errno));
        return -1;
    }
    /* One connect, then its accept: the listen backlog never fills. */
    while (x->n < want) {
        int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a)) {
            say(why, why_len, "floor: connection %zu: %s", x->n, strerror(errno));
            if (c >= 0)
                close(c);
            return -1;
        }
        int s = accept4(x->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (s < 0) {
            say(why, why_len, "floor: accept: %s", strerror(errno));
            close(c);
            return -1;
        }
        /* As the server's sockets: no Nagle (libwebsockets sets TCP_NODELAY). */
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        fcntl(c, F_SETFL, fcntl(c, F_GETFL) | O_NONBLOCK);
        struct epoll_event ev = {.events = EPOLLIN, .data.fd = c};
        x->srv[x->n] = s;
        x->cli[x->n] = c;
        x->n++;
        if (epoll_ctl(x->ep, EPOLL_CTL_ADD, c, &ev)) {
            say(why, why_len, "floor: epoll_ctl: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void teardown(struct floor_ctx *x)
{
    for (size_t i = 0; i < x->n; i++) {
        close(x->srv[i]);
        close(x->cli[i]);
    }
    if (x->lfd >= 0)
        close(x->lfd);
    if (x->ep >= 0)
        close(x->ep);
    free(x->srv);
    free(x->cli);
    free(x->frames);
}

/* Runs one phase on the writer and waits until the reader has read what it
 * wrote (or DRAIN_US passed). */
static void run_phase(struct floor_ctx *x, clockid_t reader_clock, struct floor_phase *p,
                      double secs, double rate)
{
    uint64_t b0 = atomic_load(&x->read_bytes);
    double r0 = thread_cpu_s(reader_clock);
    pthread_mutex_lock(&x->mu);
    x->phase = p;
    x->phase_secs = secs;
    x->phase_rate = rate;
    unsigned want = ++x->gen;
    pthread_cond_broadcast(&x->cv);
    while (x->done_gen != want)
        pthread_cond_wait(&x->cv, &x->mu);
    pthread_mutex_unlock(&x->mu);
    uint64_t sent = (uint64_t)(p->sent * (double)x->cfg->frame + 0.5), t = now_us();
    while (atomic_load(&x->read_bytes) - b0 < sent && now_us() - t < DRAIN_US)
        sleep_us(1000);
    p->read_cpu_s = thread_cpu_s(reader_clock) - r0;
    p->read = (double)(atomic_load(&x->read_bytes) - b0) / (double)x->cfg->frame;
}

int floor_run(const struct floor_cfg *cfg, struct floor_result *res, char *why, size_t why_len)
{
    struct floor_ctx x;
    pthread_t reader, writer;
    clockid_t reader_clock;
    int rc = -1, have_reader = 0, have_writer = 0;
    memset(res, 0, sizeof *res);
    memset(&x, 0, sizeof x);
    x.cfg = cfg;
    x.lfd = x.ep = -1;
    pthread_mutex_init(&x.mu, NULL);
    pthread_cond_init(&x.cv, NULL);
    atomic_init(&x.read_bytes, 0);
    atomic_init(&x.stop_reader, 0);
    if (cfg->frame < 1 || cfg->conns < 1) {
        say(why, why_len, "floor: no frame or no connection");
        goto out;
    }
    x.frames = malloc(cfg->frame * 2);
    if (!x.frames) {
        say(why, why_len, "floor: out of memory");
        goto out;
    }
    /* Two unmasked WebSocket binary frames (the server's direction): a header,
     * then payload bytes. Nobody parses them; they only make the bytes real. */
    memset(x.frames, 'x', cfg->frame * 2);
    for (size_t f = 0, pay = cfg->frame - 2; f < 2 && cfg->frame >= 4; f++) {
        unsigned char *h = (unsigned char *)x.frames + f * cfg->frame;
        h[0] = 0x82;
        h[1] = (unsigned char)(pay < 126 ? pay : 126);
        if (pay >= 126) {
            h[2] = (unsigned char)((cfg->frame - 4) >> 8);
            h[3] = (unsigned char)(cfg->frame - 4);
        }
    }
    if (connect_all(&x, cfg->conns, why, why_len))
        goto out;
    pick_cpus(x.cpus);
    if (pthread_create(&reader, NULL, reader_main, &x)) {
        say(why, why_len, "floor: cannot start the reader thread");
        goto out;
    }
    have_reader = 1;
    if (pthread_create(&writer, NULL, writer_main, &x)) {
        say(why, why_len, "floor: cannot start the writer thread");
        goto out;
    }
    have_writer = 1;
    if (pthread_getcpuclockid(reader, &reader_clock)) {
        say(why, why_len, "floor: no CPU clock for the reader thread");
        goto out;
    }
    res->conns = x.n;
    res->frame = cfg->frame;
    res->rate = cfg->rate;
    res->send_cpu = x.cpus[0];
    res->read_cpu = x.cpus[1];
    res->one.frames_per_send = res->flat.frames_per_send = 1;
    res->two.frames_per_send = 2;
    run_phase(&x, reader_clock, &res->one, cfg->seconds, cfg->rate);
    run_phase(&x, reader_clock, &res->two, cfg->seconds, cfg->rate);
    if (cfg->flat_seconds > 0)
        run_phase(&x, reader_clock, &res->flat, cfg->flat_seconds, 0);
    rc = 0;
out:
    if (have_writer) {
        pthread_mutex_lock(&x.mu);
        x.quit = 1;
        pthread_cond_broadcast(&x.cv);
        pthread_mutex_unlock(&x.mu);
        pthread_join(writer, NULL);
    }
    if (have_reader) {
        atomic_store(&x.stop_reader, 1);
        pthread_join(reader, NULL);
    }
    teardown(&x);
    pthread_mutex_destroy(&x.mu);
    pthread_cond_destroy(&x.cv);
    return rc;
}

double floor_send_us(const struct floor_phase *p)
{
    return p->sent > 0 ? p->send_cpu_s * 1e6 / p->sent : 0;
}

double floor_read_us(const struct floor_phase *p)
{
    return p->read > 0 ? p->read_cpu_s * 1e6 / p->read : 0;
}

double floor_rate(const struct floor_phase *p)
{
    return p->secs > 0 ? p->read / p->secs : 0;
}

double floor_change_us(const struct floor_result *f, double deliveries)
{
    double others = deliveries > 1 ? deliveries - 1 : 0;
    return floor_read_us(&f->one) + others * floor_send_us(&f->one) + 2 * floor_send_us(&f->two);
}
