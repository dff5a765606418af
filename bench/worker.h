/* A load-generating worker process: its share of the rooms and clients, on
 * its own libuv loop.
 *
 * The parent drives it with one command per line on cmd_fd:
 *   setup                  connect, create and join its rooms; answers ready
 *   step RATE SECONDS      send changes (RATE per participant per second;
 *                          persist: a window of requests per client) for
 *                          SECONDS, drain, answer step with the figures
 *   slow                   make its share of clients stop reading
 *   bigroom REPEATS        big-room: round.start, votes, round.reveal, REPEATS times
 *   build                  cold: fill the big room and the stored rooms
 *   coldjoin PORT          cold: time a first join on the restarted server
 *   coldrooms              meetings-cold: build the big rooms (worker 0; the
 *                          others answer at once); answers coldrooms. During a
 *                          step, worker 0 then joins one of them every
 *                          cold_every seconds (join -> snapshot in the aux
 *                          histogram)
 *   quit                   close everything and exit
 * and it answers with one JSON line per command on out_fd
 * ({"ev":"ready"|"step"|"bigroom"|"built"|"coldjoin"|"coldrooms"|"fail", ...}). All
 * clients of a room live in one worker, so fan-out latency is measured
 * against one clock. */
#ifndef REFINE_BENCH_WORKER_H
#define REFINE_BENCH_WORKER_H

#include "bench.h"

/* Runs the worker until quit; returns the process exit code. */
int worker_main(const struct bench_cfg *cfg, int index, int nworkers, int cmd_fd, int out_fd);

#endif
