#include "hist.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t bucket_of(uint64_t v)
{
    if (v < HIST_LINEAR)
        return (size_t)v;
    int k = 63 - __builtin_clzll(v); /* >= 7 */
    if (k >= 7 + HIST_OCTAVES)
        return HIST_BUCKETS - 1;
    size_t sub = (size_t)(v >> (k - 6)) - HIST_SUB; /* 0..63 */
    return HIST_LINEAR + (size_t)(k - 7) * HIST_SUB + sub;
}

/* The lowest value of bucket i and its width. */
static void bucket_range(size_t i, uint64_t *lo, uint64_t *width)
{
    if (i < HIST_LINEAR) {
        *lo = i;
        *width = 1;
        return;
    }
    size_t k = (i - HIST_LINEAR) / HIST_SUB + 7, sub = (i - HIST_LINEAR) % HIST_SUB;
    *lo = (uint64_t)(HIST_SUB + sub) << (k - 6);
    *width = (uint64_t)1 << (k - 6);
}

void hist_reset(struct hist *h)
{
    memset(h, 0, sizeof *h);
}

void hist_record(struct hist *h, uint64_t us)
{
    h->b[bucket_of(us)]++;
    h->count++;
    h->sum += us;
    if (us > h->max)
        h->max = us;
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    for (size_t i = 0; i < HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
}

double hist_quantile(const struct hist *h, double q)
{
    if (!h->count)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->count + 0.5);
    if (rank < 1)
        rank = 1;
    if (rank > h->count)
        rank = h->count;
    uint64_t seen = 0;
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            uint64_t lo, w;
            bucket_range(i, &lo, &w);
            double v = (double)lo + (double)(w - 1) / 2.0;
            return h->max && v > (double)h->max ? (double)h->max : v;
        }
    }
    return (double)h->max;
}

size_t hist_to_json(const struct hist *h, char *buf, size_t cap)
{
    size_t n = 0;
    int first = 1;
#define PUT(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(buf + (n < cap ? n : cap), n < cap ? cap - n : 0, __VA_ARGS__);          \
        n += k_ > 0 ? (size_t)k_ : 0;                                                              \
    } while (0)
    PUT("[");
    for (size_t i = 0; i < HIST_BUCKETS; i++) {
        if (!h->b[i])
            continue;
        PUT("%s[%zu,%llu]", first ? "" : ",", i, (unsigned long long)h->b[i]);
        first = 0;
    }
    PUT("]");
#undef PUT
    return n;
}

size_t hist_add_json(struct hist *h, const char *s)
{
    const char *p = s;
    if (*p++ != '[')
        return 0;
    while (*p == '[' || *p == ',') {
        if (*p == ',')
            p++;
        if (*p != '[')
            break;
        char *end;
        unsigned long long i = strtoull(p + 1, &end, 10);
        if (*end != ',')
            return 0;
        unsigned long long c = strtoull(end + 1, &end, 10);
        if (*end != ']' || i >= HIST_BUCKETS)
            return 0;
        h->b[i] += c;
        h->count += c;
        p = end + 1;
    }
    if (*p != ']')
        return 0;
    return (size_t)(p + 1 - s);
}
