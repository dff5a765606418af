/* refine-bench: what the parent (orchestration, output) and the workers (the
 * load-generating processes) share: the run's settings and the clock. */
#ifndef REFINE_BENCH_H
#define REFINE_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

enum scenario {
    SC_IDLE,
    SC_MEETINGS,
    SC_SATURATE,
    SC_BIG_ROOM,
    SC_PERSIST,
    SC_COLD,
    SC_SLOW_READERS,
    SC_SOAK,
    SC_MEETINGS_COLD,
    SC_FLOOR,
    SC__COUNT
};

/* One scenario's settings, after defaults and flags. A worker gets a copy
 * (it is forked), so nothing in here may point at memory that changes. */
struct bench_cfg {
    enum scenario scenario;
    char host[64];
    int port;
    int procs;          /* worker processes */
    size_t rooms;       /* rooms (cold: rooms stored for the healthz timing) */
    size_t per_room;    /* participants per room */
    size_t clients;     /* idle, big-room: connections */
    double rate;        /* changes per participant per second */
    double duration;    /* seconds of measurement (saturate: per step) */
    double max_p99_ms;  /* saturate: the p99 a step must stay under */
    double rate_factor; /* saturate: rate multiplier between steps */
    int max_steps;      /* saturate: at most this many steps */
    size_t window;      /* persist: requests in flight per client */
    size_t voters;      /* big-room: participants who vote (the rest observe) */
    size_t repeats;     /* big-room: rounds measured */
    size_t items;       /* items per room (cold: items of the big room) */
    uint64_t events;    /* cold: events in the big room's history; soak: updates */
    double slow_pct;    /* slow-readers: percent of clients that stop reading */
    double hold;        /* idle: seconds to hold the joined connections */
    double cold_every;  /* meetings-cold: seconds between joins of a cold big room */
    size_t cold_items;  /* meetings-cold: items of each cold big room */
    unsigned seed;
    int verbose;
};

const char *scenario_name(enum scenario s);

/* CLOCK_MONOTONIC in microseconds. */
static inline uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

#endif
