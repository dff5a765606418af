/* Unit test of the rank keys (protocol/rank.c).
 *
 * Prints one line per failed check and, at the end, how many checks passed.
 * Exits nonzero if any check failed. */
#include "rank.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LOOP_REPORT_MAX 5 /* failures printed per loop before going quiet */

typedef char rank_key[RANK_MAX + 1];

struct tally {
    int passed;
    int failed;
};

/* Counts one check; prints the formatted message if it failed. */
static void check(struct tally *t, int ok, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void check(struct tally *t, int ok, const char *fmt, ...)
{
    if (ok) {
        t->passed++;
        return;
    }
    t->failed++;
    va_list ap;
    va_start(ap, fmt);
    fputs("test_rank: FAILED: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

/* Records one failure inside a loop (checked once after the loop); prints the
 * first few of them. */
static void loop_fail(int *bad, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void loop_fail(int *bad, const char *fmt, ...)
{
    if ((*bad)++ >= LOOP_REPORT_MAX)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("test_rank:   detail: ", stdout);
    vprintf(fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
}

/* splitmix64: a small seeded PRNG so every run does the same operations. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* A uniform value in 0..n-1 (n > 0; the modulo bias is irrelevant here). */
static size_t rng_below(uint64_t *state, size_t n)
{
    return (size_t)(rng_next(state) % n);
}

static const char *show(const char *s)
{
    return s ? s : "(null)";
}

/* Checks that key is a valid key strictly between lo and hi (either may be
 * NULL); records a loop failure naming what if not. */
static void expect_between(int *bad, const char *what, const char *lo, const char *key,
                           const char *hi)
{
    if (!rank_valid(key))
        loop_fail(bad, "%s: key \"%s\" is not valid", what, key);
    if (lo && strcmp(lo, key) >= 0)
        loop_fail(bad, "%s: key \"%s\" not above \"%s\"", what, key, lo);
    if (hi && strcmp(key, hi) >= 0)
        loop_fail(bad, "%s: key \"%s\" not below \"%s\"", what, key, hi);
}

/* Reference vectors of the fractional-indexing library (same alphabet). */
static void test_vectors(struct tally *t)
{
    static const struct {
        const char *a, *b, *want; /* want NULL: must fail */
    } v[] = {
        {NULL, NULL, "a0"},
        {NULL, "a0", "Zz"},
        {NULL, "Zz", "Zy"},
        {"a0", NULL, "a1"},
        {"a1", NULL, "a2"},
        {"a0", "a1", "a0V"},
        {"a1", "a2", "a1V"},
        {"a0V", "a1", "a0l"},
        {"Zz", "a0", "ZzV"},
        {"Zz", "a1", "a0"},
        {NULL, "Y00", "Xzzz"},
        {"bzz", NULL, "c000"},
        {"a0", "a0V", "a0G"},
        {"a0", "a0G", "a08"},
        {"b125", "b129", "b127"},
        {"a0", "a01V", "a01"},
        {"a0", "a1V", "a1"},
        {"Zz", "a01", "a0"},
        {NULL, "a0V", "a0"},
        {NULL, "b999", "b99"},
        {NULL, "A00000000000000000000000000", NULL},
        {NULL, "A000000000000000000000000001", "A000000000000000000000000000V"},
        {"zzzzzzzzzzzzzzzzzzzzzzzzzzy", NULL, "zzzzzzzzzzzzzzzzzzzzzzzzzzz"},
        {"zzzzzzzzzzzzzzzzzzzzzzzzzzz", NULL, "zzzzzzzzzzzzzzzzzzzzzzzzzzzV"},
        {"a00", NULL, NULL},
        {"a00", "a1", NULL},
        {"0", "1", NULL},
        {"a1", "a0", NULL},
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        rank_key out;
        int rc = rank_between(v[i].a, v[i].b, out, sizeof out);
        if (!v[i].want) {
            if (rc != -1)
                loop_fail(&bad, "between(%s, %s) gave \"%s\", want -1", show(v[i].a), show(v[i].b),
                          out);
        } else if (rc != 0 || strcmp(out, v[i].want) != 0) {
            loop_fail(&bad, "between(%s, %s) gave %d \"%s\", want \"%s\"", show(v[i].a),
                      show(v[i].b), rc, rc == 0 ? out : "", v[i].want);
        }
    }
    check(t, bad == 0, "reference vectors: %d mismatches", bad);
}

/* Invalid inputs, rank_valid, output capacity and aliasing. */
static void test_invalid(struct tally *t)
{
    rank_key out;
    char longkey[RANK_MAX + 2];

    check(t,
          rank_between(NULL, NULL, out, sizeof out) == 0 && strcmp(out, "a0") == 0 &&
              rank_valid(out),
          "between(NULL, NULL) gave \"%s\", want a valid middle key \"a0\"", out);

    static const char *const bad_keys[] = {
        "",                            /* empty */
        "a",                           /* integer part too short */
        "b0",                          /* head b needs 3 characters */
        "0a",                          /* head must be a letter */
        "a00",                         /* fraction ends with '0' */
        "a0!",                         /* not in the alphabet */
        "a0 V",                        /* not in the alphabet */
        "a0-",                         /* not in the alphabet */
        "a\xc3\xa9",                   /* not ASCII */
        "A00000000000000000000000000", /* smallest integer alone */
    };
    int bad = 0;
    for (size_t i = 0; i < sizeof bad_keys / sizeof bad_keys[0]; i++) {
        const char *k = bad_keys[i];
        if (rank_valid(k))
            loop_fail(&bad, "rank_valid(\"%s\") is 1", k);
        if (rank_between(k, NULL, out, sizeof out) != -1)
            loop_fail(&bad, "between(\"%s\", NULL) did not fail", k);
        if (rank_between(NULL, k, out, sizeof out) != -1)
            loop_fail(&bad, "between(NULL, \"%s\") did not fail", k);
        if (rank_between(k, "zz", out, sizeof out) != -1)
            loop_fail(&bad, "between(\"%s\", \"zz\") did not fail", k);
    }
    check(t, bad == 0, "malformed keys and bad characters are rejected (%d failures)", bad);

    /* A key longer than RANK_MAX is not valid, one of exactly RANK_MAX is. */
    memset(longkey, 'V', sizeof longkey - 1);
    longkey[0] = 'a';
    longkey[sizeof longkey - 1] = '\0';
    int long_ok = !rank_valid(longkey) && rank_between(longkey, NULL, out, sizeof out) == -1;
    longkey[RANK_MAX] = '\0';
    long_ok = long_ok && rank_valid(longkey);
    check(t,
          long_ok && !rank_valid(NULL) && rank_valid("a0") && rank_valid("Zz") &&
              rank_valid("a0V") && rank_valid("A000000000000000000000000001"),
          "rank_valid on long keys, NULL and good keys");

    bad = 0;
    if (rank_between("a1", "a1", out, sizeof out) != -1)
        loop_fail(&bad, "between(a1, a1) did not fail");
    if (rank_between("a1", "a0", out, sizeof out) != -1)
        loop_fail(&bad, "between(a1, a0) did not fail");
    if (rank_between("b00", "az", out, sizeof out) != -1)
        loop_fail(&bad, "between(b00, az) did not fail");
    if (rank_between("a0V", "a0", out, sizeof out) != -1)
        loop_fail(&bad, "between(a0V, a0) did not fail");
    check(t, bad == 0, "a >= b is rejected (%d failures)", bad);

    bad = 0;
    if (rank_between(NULL, NULL, NULL, 10) != -1)
        loop_fail(&bad, "out == NULL did not fail");
    if (rank_between(NULL, NULL, out, 0) != -1)
        loop_fail(&bad, "outsz == 0 did not fail");
    if (rank_between(NULL, NULL, out, 2) != -1 || out[0] != '\0')
        loop_fail(&bad, "\"a0\" into 2 bytes did not fail with \"\"");
    if (rank_between(NULL, NULL, out, 3) != 0 || strcmp(out, "a0") != 0)
        loop_fail(&bad, "\"a0\" into 3 bytes failed");
    if (rank_between("a0", "a1", out, 3) != -1)
        loop_fail(&bad, "\"a0V\" into 3 bytes did not fail");
    check(t, bad == 0, "out/outsz limits (%d failures)", bad);

    /* out may alias an input. */
    strcpy(out, "a5");
    int alias_ok = rank_between(out, NULL, out, sizeof out) == 0 && strcmp(out, "a6") == 0;
    alias_ok = alias_ok && rank_between(NULL, out, out, sizeof out) == 0 && strcmp(out, "a5") == 0;
    check(t, alias_ok, "out aliasing an input works (got \"%s\")", out);
}

/* A list of keys in order, as indices into a pool of key slots. */
struct list {
    rank_key *pool;
    size_t *order; /* order[0..count) index pool, sorted by key */
    size_t *free_slots;
    size_t nfree, used, count, cap;
};

/* Random inserts (and some removals) at random positions. */
static void test_random(struct tally *t)
{
    enum { INSERTS = 20000, FULL_CHECK_EVERY = 500 };
    struct list l = {0};
    l.cap = INSERTS;
    l.pool = malloc(l.cap * sizeof *l.pool);
    l.order = malloc(l.cap * sizeof *l.order);
    l.free_slots = malloc(l.cap * sizeof *l.free_slots);
    if (!l.pool || !l.order || !l.free_slots) {
        check(t, 0, "random: out of memory");
        goto out;
    }

    uint64_t rng = 20240611;
    int bad = 0;
    size_t inserts = 0, removes = 0, maxlen = 0, ops = 0;
    while (inserts < INSERTS && bad == 0) {
        ops++;
        if (l.count > 0 && rng_below(&rng, 5) == 0) { /* remove one in five */
            size_t p = rng_below(&rng, l.count);
            l.free_slots[l.nfree++] = l.order[p];
            memmove(&l.order[p], &l.order[p + 1], (l.count - p - 1) * sizeof *l.order);
            l.count--;
            removes++;
            continue;
        }
        size_t p = rng_below(&rng, l.count + 1); /* insert before element p */
        const char *lo = p > 0 ? l.pool[l.order[p - 1]] : NULL;
        const char *hi = p < l.count ? l.pool[l.order[p]] : NULL;
        size_t slot = l.nfree ? l.free_slots[--l.nfree] : l.used++;
        if (rank_between(lo, hi, l.pool[slot], sizeof l.pool[slot]) != 0) {
            loop_fail(&bad, "random op %zu: between(%s, %s) failed", ops, show(lo), show(hi));
            break;
        }
        expect_between(&bad, "random", lo, l.pool[slot], hi);
        memmove(&l.order[p + 1], &l.order[p], (l.count - p) * sizeof *l.order);
        l.order[p] = slot;
        l.count++;
        inserts++;
        size_t len = strlen(l.pool[slot]);
        if (len > maxlen)
            maxlen = len;
        if (inserts % FULL_CHECK_EVERY == 0 || inserts == INSERTS) {
            for (size_t i = 0; i < l.count; i++) {
                if (!rank_valid(l.pool[l.order[i]]))
                    loop_fail(&bad, "random: list key %zu \"%s\" not valid", i, l.pool[l.order[i]]);
                if (i > 0 && strcmp(l.pool[l.order[i - 1]], l.pool[l.order[i]]) >= 0)
                    loop_fail(&bad, "random: list keys %zu..%zu out of order", i - 1, i);
            }
        }
    }
    printf("test_rank: random: %zu inserts, %zu removes, %zu items left, max key length %zu\n",
           inserts, removes, l.count, maxlen);
    check(t, bad == 0 && inserts == INSERTS,
          "random inserts keep keys valid and strictly ordered (%d failures)", bad);
    check(t, maxlen <= 16, "random inserts: max key length %zu > 16", maxlen);
out:
    free(l.pool);
    free(l.order);
    free(l.free_slots);
}

/* 100,000 appends at the bottom and 100,000 prepends at the top. */
static void test_ends(struct tally *t)
{
    enum { N = 100000 };
    for (int top = 0; top <= 1; top++) {
        rank_key prev, key;
        int bad = 0;
        size_t maxlen = 2;
        if (rank_between(NULL, NULL, prev, sizeof prev) != 0)
            loop_fail(&bad, "between(NULL, NULL) failed");
        for (int i = 1; i < N && bad == 0; i++) {
            int rc = top ? rank_between(NULL, prev, key, sizeof key)
                         : rank_between(prev, NULL, key, sizeof key);
            if (rc != 0) {
                loop_fail(&bad, "%s %d after \"%s\" failed", top ? "prepend" : "append", i, prev);
                break;
            }
            if (top)
                expect_between(&bad, "prepend", NULL, key, prev);
            else
                expect_between(&bad, "append", prev, key, NULL);
            size_t len = strlen(key);
            if (len > maxlen)
                maxlen = len;
            memcpy(prev, key, sizeof prev);
        }
        printf("test_rank: %d %s: max key length %zu, last key \"%s\"\n", N,
               top ? "prepends" : "appends", maxlen, prev);
        check(t, bad == 0, "%s keep keys valid and ordered (%d failures)",
              top ? "prepends" : "appends", bad);
        /* 62 keys of 2 characters, 3844 of 3, 238328 of 4. */
        check(t, maxlen <= 4, "%d %s: max key length %zu > 4", N, top ? "prepends" : "appends",
              maxlen);
    }
}

/* Inserts always at the same spot: between item k and the key inserted last
 * (approaching item k from above) or between the key inserted last and item
 * k + 1 (approaching item k + 1 from below). */
static void test_same_spot(struct tally *t)
{
    enum { N = 1000, K = 3, ITEMS = 8, AT = 200 };
    rank_key items[ITEMS];
    if (rank_spread(ITEMS, items) != 0) {
        check(t, 0, "same spot: rank_spread(%d) failed", ITEMS);
        return;
    }
    for (int from_below = 0; from_below <= 1; from_below++) {
        const char *dir = from_below ? "below item k+1" : "above item k";
        rank_key prev;
        char key[2 * RANK_MAX]; /* roomier than needed: RANK_MAX must bind, not outsz */
        const char *lo = items[K], *hi = items[K + 1];
        int bad = 0, ok_inserts = 0, first_fail = -1;
        size_t len0 = from_below ? strlen(lo) : strlen(hi), len_at = 0, maxlen = 0;
        memcpy(prev, from_below ? lo : hi, sizeof prev);
        for (int i = 0; i < N; i++) {
            const char *a = from_below ? prev : lo;
            const char *b = from_below ? hi : prev;
            int rc = rank_between(a, b, key, sizeof key);
            if (rc != 0) {
                /* Only allowed once the result cannot fit: it is at most one
                 * character longer than the longer input. */
                if (strlen(prev) + 1 <= RANK_MAX)
                    loop_fail(&bad, "same spot %s: insert %d failed with prev \"%s\" (%zu chars)",
                              dir, i + 1, prev, strlen(prev));
                if (first_fail < 0)
                    first_fail = i + 1;
                continue;
            }
            if (first_fail >= 0)
                loop_fail(&bad, "same spot %s: insert %d succeeded after a failure", dir, i + 1);
            expect_between(&bad, "same spot", a, key, b);
            if (strcmp(lo, key) >= 0 || strcmp(key, hi) >= 0)
                loop_fail(&bad, "same spot %s: \"%s\" left the gap", dir, key);
            size_t len = strlen(key);
            if (len > RANK_MAX)
                loop_fail(&bad, "same spot %s: \"%s\" longer than RANK_MAX", dir, key);
            if (len > maxlen)
                maxlen = len;
            if (i + 1 == AT)
                len_at = len;
            if (len > RANK_MAX)
                break;
            memcpy(prev, key, len + 1);
            ok_inserts++;
        }
        printf("test_rank: same spot %s: key length %zu after %d inserts (%.2f inserts per "
               "character), %d inserts succeeded, first -1 at insert %d, max length %zu\n",
               dir, len_at, AT, len_at > len0 ? (double)AT / (double)(len_at - len0) : 0.0,
               ok_inserts, first_fail, maxlen);
        check(t, bad == 0, "same spot %s: keys ordered, -1 only past RANK_MAX (%d failures)", dir,
              bad);
        /* Each insert halves the gap: log2(62) = 5.95 inserts per character
         * at best; allow down to 5. */
        check(t, len_at > 0 && len_at - len0 <= AT / 5,
              "same spot %s: key grew %zu characters in %d inserts (more than 1 per 5)", dir,
              len_at - len0, AT);
        check(t, first_fail > 0 && maxlen == RANK_MAX,
              "same spot %s: expected to reach RANK_MAX then fail (first fail %d, max len %zu)",
              dir, first_fail, maxlen);
    }
}

/* rank_spread: order, validity, length, room between and around the keys. */
static void test_spread(struct tally *t)
{
    static const size_t sizes[] = {1, 2, 3, 61, 62, 63, 1000, 3844, 3845, 100000, 238328};
    rank_key *keys = malloc(238328 * sizeof *keys);
    if (!keys) {
        check(t, 0, "spread: out of memory");
        return;
    }
    int bad = 0;
    size_t maxlen_100k = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        size_t want_max = n <= 62 ? 2 : n <= 3844 ? 3 : 4;
        if (rank_spread(n, keys) != 0) {
            loop_fail(&bad, "rank_spread(%zu) failed", n);
            continue;
        }
        size_t maxlen = 0;
        for (size_t i = 0; i < n; i++) {
            size_t len = strlen(keys[i]);
            if (len > maxlen)
                maxlen = len;
            if (!rank_valid(keys[i]))
                loop_fail(&bad, "rank_spread(%zu): key %zu \"%s\" not valid", n, i, keys[i]);
            if (i > 0 && strcmp(keys[i - 1], keys[i]) >= 0)
                loop_fail(&bad, "rank_spread(%zu): keys %zu \"%s\", %zu \"%s\" out of order", n,
                          i - 1, keys[i - 1], i, keys[i]);
            rank_key mid;
            const char *hi = i + 1 < n ? keys[i + 1] : NULL;
            if (rank_between(keys[i], hi, mid, sizeof mid) != 0)
                loop_fail(&bad, "rank_spread(%zu): no key after %zu", n, i);
            else
                expect_between(&bad, "spread gap", keys[i], mid, hi);
        }
        if (maxlen > want_max)
            loop_fail(&bad, "rank_spread(%zu): max key length %zu > %zu", n, maxlen, want_max);
        rank_key first;
        if (rank_between(NULL, keys[0], first, sizeof first) != 0 || strlen(first) > want_max)
            loop_fail(&bad, "rank_spread(%zu): no short key before the first", n);
        if (n == 100000)
            maxlen_100k = maxlen;
        printf("test_rank: rank_spread(%zu): max key length %zu, keys \"%s\" .. \"%s\"\n", n,
               maxlen, keys[0], keys[n - 1]);
    }
    check(t, bad == 0, "rank_spread keys ordered, valid, short, with room (%d failures)", bad);
    check(t, maxlen_100k > 0 && maxlen_100k <= 4, "rank_spread(100000): max key length %zu > 4",
          maxlen_100k);
    check(t,
          rank_spread(0, NULL) == 0 && rank_spread(1, NULL) == -1 &&
              rank_spread((size_t)916132832 + 1, keys) == -1,
          "rank_spread argument checks");
    free(keys);
}

int main(void)
{
    struct tally t = {0, 0};
    test_vectors(&t);
    test_invalid(&t);
    test_random(&t);
    test_ends(&t);
    test_same_spot(&t);
    test_spread(&t);
    if (t.failed) {
        printf("test_rank: %d of %d checks FAILED\n", t.failed, t.failed + t.passed);
        return 1;
    }
    printf("test_rank: %d checks passed\n", t.passed);
    return 0;
}
