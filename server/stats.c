#include "stats.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"

#define DECK_STEPS_MAX 4096 /* votes considered for a middle step */

static bool is_special(const char *card)
{
    return strcmp(card, "?") == 0 || strcmp(card, "coffee") == 0;
}

bool stats_card_in_deck(const char *const *deck, size_t ndeck, const char *card)
{
    for (size_t i = 0; i < ndeck; i++)
        if (strcmp(deck[i], card) == 0)
            return true;
    return false;
}

int stats_card_number(const char *card, double *v)
{
    if (strcmp(card, "½") == 0) {
        *v = 0.5;
        return 1;
    }
    if (!*card || is_special(card))
        return 0;
    char *end;
    double d = strtod(card, &end);
    if (*end || !isfinite(d))
        return 0;
    *v = d;
    return 1;
}

/* Position of card among the deck's ordinary cards, or -1. */
static int step_of(const char *const *deck, size_t ndeck, const char *card)
{
    int step = 0;
    for (size_t i = 0; i < ndeck; i++) {
        if (is_special(deck[i]))
            continue;
        if (strcmp(deck[i], card) == 0)
            return step;
        step++;
    }
    return -1;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void pack_pids_at_step(msgpack_packer *pk, const char *const *deck, size_t ndeck,
                              const struct stats_vote *v, size_t n, int step, bool anonymous)
{
    size_t count = 0;
    if (!anonymous && step >= 0)
        for (size_t i = 0; i < n; i++)
            count += step_of(deck, ndeck, v[i].card) == step;
    msgpack_pack_array(pk, count);
    if (!count)
        return;
    for (size_t i = 0; i < n; i++)
        if (step_of(deck, ndeck, v[i].card) == step)
            codec_pack_str(pk, v[i].pid);
}

static void pack_number(msgpack_packer *pk, const char *key, bool have, double v)
{
    codec_pack_str(pk, key);
    if (have)
        msgpack_pack_double(pk, v);
    else
        msgpack_pack_nil(pk);
}

void stats_pack(msgpack_packer *pk, const char *const *deck, size_t ndeck,
                const struct stats_vote *v, size_t n, const char *const *missing, size_t nmissing,
                bool anonymous)
{
    double *nums = malloc((n ? n : 1) * sizeof *nums);
    size_t nnum = 0;
    int lo = -1, hi = -1;
    int conf[3] = {0, 0, 0};
    for (size_t i = 0; i < n; i++) {
        double d;
        if (nums && stats_card_number(v[i].card, &d))
            nums[nnum++] = d;
        int s = step_of(deck, ndeck, v[i].card);
        if (s >= 0 && (lo < 0 || s < lo))
            lo = s;
        if (s > hi)
            hi = s;
        if (v[i].confidence >= 0 && v[i].confidence < 3)
            conf[v[i].confidence]++;
    }
    double sum = 0, median = 0;
    if (nnum) {
        qsort(nums, nnum, sizeof *nums, cmp_double);
        for (size_t i = 0; i < nnum; i++)
            sum += nums[i];
        median = nnum % 2 ? nums[nnum / 2] : (nums[nnum / 2 - 1] + nums[nnum / 2]) / 2;
    }

    /* The most common card; a tie goes to the card that comes first in the deck. */
    const char *mode = NULL;
    size_t mode_count = 0, distinct = 0;
    for (size_t d = 0; d < ndeck; d++) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
            c += strcmp(v[i].card, deck[d]) == 0;
        distinct += c > 0;
        if (c > mode_count) {
            mode_count = c;
            mode = deck[d];
        }
    }

    /* Suggested: the deck card nearest the median (a tie goes to the larger);
     * for a deck without numbers, the card at the middle step. */
    const char *suggested = NULL;
    if (nnum) {
        double best = INFINITY, best_x = 0;
        for (size_t d = 0; d < ndeck; d++) {
            double x;
            if (!stats_card_number(deck[d], &x))
                continue;
            double dist = fabs(x - median);
            if (dist < best || (dist == best && x > best_x)) {
                best = dist;
                best_x = x;
                suggested = deck[d];
            }
        }
    } else if (lo >= 0) {
        int steps[DECK_STEPS_MAX];
        size_t ns = 0;
        for (size_t i = 0; i < n && ns < DECK_STEPS_MAX; i++) {
            int s = step_of(deck, ndeck, v[i].card);
            if (s >= 0)
                steps[ns++] = s;
        }
        for (size_t i = 1; i < ns; i++) /* insertion sort: a handful of votes */
            for (size_t k = i; k > 0 && steps[k - 1] > steps[k]; k--) {
                int t = steps[k];
                steps[k] = steps[k - 1];
                steps[k - 1] = t;
            }
        int mid = steps[ns / 2];
        for (size_t d = 0; d < ndeck; d++)
            if (step_of(deck, ndeck, deck[d]) == mid)
                suggested = deck[d];
    }

    msgpack_pack_map(pk, 16);
    codec_pack_kv_u64(pk, "count", n);
    codec_pack_kv_u64(pk, "not_voted", nmissing);
    codec_pack_str(pk, "missing");
    msgpack_pack_array(pk, anonymous ? 0 : nmissing);
    for (size_t i = 0; i < nmissing && !anonymous; i++)
        codec_pack_str(pk, missing[i]);
    codec_pack_kv_u64(pk, "numeric", nnum);
    pack_number(pk, "min", nnum > 0, nnum ? nums[0] : 0);
    pack_number(pk, "max", nnum > 0, nnum ? nums[nnum - 1] : 0);
    pack_number(pk, "mean", nnum > 0, nnum ? sum / (double)nnum : 0);
    pack_number(pk, "median", nnum > 0, median);
    codec_pack_str(pk, "distribution");
    msgpack_pack_map(pk, distinct);
    for (size_t d = 0; d < ndeck; d++) {
        size_t c = 0;
        for (size_t i = 0; i < n; i++)
            c += strcmp(v[i].card, deck[d]) == 0;
        if (c) {
            codec_pack_str(pk, deck[d]);
            msgpack_pack_uint64(pk, c);
        }
    }
    codec_pack_kv_str(pk, "mode", mode);
    /* Consensus: at least one ordinary card, and every ordinary card equal. */
    codec_pack_kv_bool(pk, "consensus", lo >= 0 && lo == hi);
    codec_pack_str(pk, "spread");
    if (lo >= 0)
        msgpack_pack_uint64(pk, (uint64_t)(hi - lo));
    else
        msgpack_pack_nil(pk);
    codec_pack_str(pk, "highest");
    pack_pids_at_step(pk, deck, ndeck, v, n, hi, anonymous);
    codec_pack_str(pk, "lowest");
    pack_pids_at_step(pk, deck, ndeck, v, n, lo, anonymous);
    codec_pack_kv_str(pk, "suggested", suggested);
    codec_pack_str(pk, "confidence");
    msgpack_pack_map(pk, 3);
    codec_pack_kv_u64(pk, "low", (uint64_t)conf[0]);
    codec_pack_kv_u64(pk, "medium", (uint64_t)conf[1]);
    codec_pack_kv_u64(pk, "high", (uint64_t)conf[2]);
    free(nums);
}
