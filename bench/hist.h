/* A log-bucket latency histogram (HDR style) in microseconds.
 *
 * Values below 128 us have a bucket each; above, every power of two is cut
 * into 64 equal buckets, so a reported percentile is within 1/64 (1.6%) of
 * the true value. Fixed size, mergeable by adding counts, and serialisable
 * as sparse [index, count] pairs, which is how workers send it to the
 * parent. */
#ifndef REFINE_BENCH_HIST_H
#define REFINE_BENCH_HIST_H

#include <stddef.h>
#include <stdint.h>

#define HIST_SUB     64
#define HIST_LINEAR  128 /* 2 * HIST_SUB */
#define HIST_OCTAVES 34  /* 2^7 .. 2^40 us */
#define HIST_BUCKETS (HIST_LINEAR + HIST_OCTAVES * HIST_SUB)

struct hist {
    uint64_t count;
    uint64_t max; /* exact */
    uint64_t sum;
    uint64_t b[HIST_BUCKETS];
};

void hist_reset(struct hist *h);
void hist_record(struct hist *h, uint64_t us);
/* Adds every count of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);
/* The value (us) at quantile q in [0, 1]: the middle of its bucket, but
 * never above the exact maximum. 0 when empty. */
double hist_quantile(const struct hist *h, double q);

/* Appends "[[i,c],...]" for the non-empty buckets to buf (at most cap bytes,
 * NUL-terminated); returns the length it needed (as snprintf does). */
size_t hist_to_json(const struct hist *h, char *buf, size_t cap);
/* Adds the counts of a "[[i,c],...]" text (at s) to h; returns the number of
 * characters read, 0 on a malformed text. max and sum are not in the text. */
size_t hist_add_json(struct hist *h, const char *s);

#endif
