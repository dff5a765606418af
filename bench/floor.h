/* The machine's floor: what the kernel alone costs to deliver the frames of
 * a load, with no server and no WebSocket in the way.
 *
 * floor_run opens `conns` TCP connections over loopback inside this
 * process; one thread (the "server side") writes frames of `frame` bytes to
 * them, round-robin, at `rate` frames per second in total, and another (the
 * "clients") reads them all with epoll. When the process may run on two or
 * more CPUs, the writer is pinned to the first of them and the reader to the
 * second, as a benchmarked server and its load tool would be. Three phases:
 *   one   one frame per send() at the rate, `seconds` long
 *   two   two frames per send() at the same frame rate (half the sends), as
 *         when an event and the author's reply leave in one write
 *   flat  one frame per send(), as fast as the writer can, `flat_seconds`
 * Each phase reports the CPU time of the writer and of the reader (their
 * thread CPU clocks), the frames written and read, and its wall time. The
 * writer's figure is the time in its bursts of sends: its sleeps and
 * wake-ups between them belong to the pacing, which a server does not pay
 * apart (it sends when a change arrives); they are reported separately. */
#ifndef REFINE_BENCH_FLOOR_H
#define REFINE_BENCH_FLOOR_H

#include <stddef.h>
#include <stdint.h>

struct floor_cfg {
    size_t conns;        /* connections wanted (fewer when the file limit is short) */
    size_t frame;        /* bytes of one frame */
    double rate;         /* frames per second over all connections; 0: flat out */
    double seconds;      /* seconds of each of the phases one and two */
    double flat_seconds; /* seconds of the flat-out phase; 0: none */
};

struct floor_phase {
    int frames_per_send;
    double secs;          /* the writer's wall time */
    double sent, read;    /* frames written and read (bytes / frame) */
    double send_cpu_s;    /* the writer's CPU time in its bursts of sends */
    double writer_cpu_s;  /* ... and with its sleeps and wake-ups between them */
    double read_cpu_s;    /* the reader's CPU time, until all it was sent was read */
    uint64_t would_block; /* sends refused by a full socket buffer (frames not sent) */
};

struct floor_result {
    size_t conns; /* connections used */
    size_t frame;
    double rate;
    int send_cpu, read_cpu; /* the CPUs they were pinned to, -1 when not pinned */
    struct floor_phase one, two, flat;
};

/* Runs the three phases; 0, or -1 with a reason in why (of why_len bytes).
 * Takes about 2 * seconds + flat_seconds plus the connection setup. */
int floor_run(const struct floor_cfg *cfg, struct floor_result *res, char *why, size_t why_len);

/* Per frame delivered (read) of a phase, in microseconds; 0 when none was. */
double floor_send_us(const struct floor_phase *p);
double floor_read_us(const struct floor_phase *p);
/* Frames read per second of a phase. */
double floor_rate(const struct floor_phase *p);

/* The floor of one change that is delivered to `deliveries` members: one
 * receive (the reader's cost of a frame), deliveries - 1 sends of one frame
 * and the author's event and reply in one send (two frames at the cost of
 * the phase two). Microseconds. */
double floor_change_us(const struct floor_result *f, double deliveries);

#endif
