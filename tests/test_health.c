/* Unit tests of DEEP health (server/health.c): a backlog with its health
 * watching, driven through the backlog's own operations (insert, remove,
 * move, field changes with backlog_account, clock ticks, settings), and after
 * every step the incremental state checked against a recomputation from
 * scratch (health_check). Then the figure: the time per change in a backlog of
 * 10,000 items, with and without the health watching (printed, not asserted).
 *
 * Usage: test_health [--bench]   (--bench: 200,000 changes instead of 20,000) */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backlog.h"
#include "check.h"
#include "health.h"
#include "rank.h"

static uint64_t rng = 88172645463325252ull;
static unsigned rnd(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

static int64_t clock_ms = 1000000000000ll;
static uint64_t next_id = 1;

static void set_str(struct item *it, enum item_field f, const char *s)
{
    backlog_ival_free(&it->f[f]);
    if (s) {
        it->f[f].type = IV_STR;
        it->f[f].u.s = strdup(s);
    }
}

static void set_acceptance(struct item *it, unsigned n)
{
    struct ival *v = &it->f[ITEM_F_ACCEPTANCE];
    backlog_ival_free(v);
    v->type = IV_LIST;
    v->u.l.n = n;
    v->u.l.v = calloc(n + 1, sizeof(char *));
    for (unsigned i = 0; i < n; i++)
        v->u.l.v[i] = strdup("given when then");
}

static const char *const ESTIMATES[] = {NULL, "?", "coffee", "0",  "½",  "1",   "2", "3",
                                        "5",  "8", "13",     "20", "40", "100", "XL"};
static const char *const MOSCOWS[] = {NULL, NULL, "must", "should", "could", "wont"};
static const char *const STATUSES[] = {"draft", "ready", "ready", "done", "split"};
static const char *const KINDS[] = {"story", "story", "story", "epic", "bug"};
#define PICK(a) (a)[rnd(sizeof(a) / sizeof(a)[0])]

/* Changes one random field of it (as item.update would), then tells the backlog. */
static void change_fields(struct backlog *b, struct item *it)
{
    switch (rnd(7)) {
    case 0:
        set_str(it, ITEM_F_ESTIMATE, PICK(ESTIMATES));
        break;
    case 1:
        set_str(it, ITEM_F_MOSCOW, PICK(MOSCOWS));
        break;
    case 2:
        set_str(it, ITEM_F_STATUS, PICK(STATUSES));
        break;
    case 3:
        set_str(it, ITEM_F_KIND, PICK(KINDS));
        break;
    case 4:
        set_acceptance(it, rnd(3));
        break;
    case 5:
        set_str(it, ITEM_F_BENEFIT, rnd(2) ? "so that it helps" : "");
        break;
    default:
        backlog_ival_free(&it->f[ITEM_F_VALUE]);
        if (rnd(2)) {
            it->f[ITEM_F_VALUE].type = IV_INT;
            it->f[ITEM_F_VALUE].u.i = rnd(100);
        }
    }
    backlog_account(b, it);
    it->updated_at = clock_ms;
}

/* A rank key for a place after index i-1 (before index i); 0 or -1 when
 * there is none short enough. */
static int rank_at(struct backlog *b, size_t i, const struct item *skip, char out[RANK_MAX + 1])
{
    size_t lo = i, hi = i;
    const char *a = NULL, *z = NULL;
    if (lo > 0 && b->v[lo - 1] == skip)
        lo--;
    if (hi < b->n && b->v[hi] == skip)
        hi++;
    if (lo > 0)
        a = b->v[lo - 1]->rank;
    if (hi < b->n)
        z = b->v[hi]->rank;
    return rank_between(a, z, out, RANK_MAX + 1) == 0 && strlen(out) <= RANK_REBALANCE ? 0 : -1;
}

static void add_random(struct backlog *b)
{
    char id[ITEM_ID_MAX];
    snprintf(id, sizeof id, "i%llu", (unsigned long long)next_id++);
    struct item *it = backlog_item_new(id);
    if (rank_at(b, rnd((unsigned)b->n + 1), NULL, it->rank)) {
        backlog_item_free(it);
        return;
    }
    set_str(it, ITEM_F_ESTIMATE, PICK(ESTIMATES));
    set_str(it, ITEM_F_MOSCOW, PICK(MOSCOWS));
    set_str(it, ITEM_F_STATUS, PICK(STATUSES));
    set_str(it, ITEM_F_KIND, PICK(KINDS));
    set_acceptance(it, rnd(2));
    it->updated_at = clock_ms;
    CHECK(backlog_insert(b, it) == 0);
}

static void remove_random(struct backlog *b)
{
    if (!b->n)
        return;
    size_t at = rnd((unsigned)b->n);
    struct item *it = b->v[at];
    backlog_remove_at(b, at);
    backlog_item_free(it);
}

static void move_random(struct backlog *b)
{
    if (!b->n)
        return;
    struct item *it = b->v[rnd((unsigned)b->n)];
    char rank[RANK_MAX + 1];
    /* Near the top half the time: the interesting moves. */
    size_t to = rnd(2) ? rnd((unsigned)b->n + 1) : rnd(b->n < 30 ? (unsigned)b->n + 1 : 30);
    if (rank_at(b, to, it, rank) == 0) {
        backlog_move(b, it, rank);
        it->updated_at = clock_ms;
    }
}

/* order.apply's way: a new order of every item, taking the ranks the items
 * have now (backlog_reorder). */
static void reorder_random(struct backlog *b)
{
    if (b->n < 2)
        return;
    struct item **v = malloc(b->n * sizeof *v);
    char(*ranks)[RANK_MAX + 1] = malloc(b->n * sizeof *ranks);
    CHECK(v && ranks);
    for (size_t i = 0; i < b->n; i++) {
        v[i] = b->v[i];
        strcpy(ranks[i], b->v[i]->rank);
    }
    for (size_t i = b->n - 1; i > 0; i--) { /* Fisher-Yates */
        size_t j = rnd((unsigned)i + 1);
        struct item *t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    backlog_reorder(b, v, (const char(*)[RANK_MAX + 1]) ranks);
    free(v);
    free(ranks);
}

static void step(struct backlog *b, struct health *h, int allow_settings)
{
    unsigned k = rnd(100);
    clock_ms += rnd(4) * HEALTH_DAY_MS / 2;
    if (k < 20)
        add_random(b);
    else if (k < 30)
        remove_random(b);
    else if (k < 53)
        move_random(b);
    else if (k < 55)
        reorder_random(b);
    else if (k < 95) {
        if (b->n)
            change_fields(
                b, b->v[rnd(2) ? rnd((unsigned)b->n) : rnd(b->n < 10 ? (unsigned)b->n : 10)]);
    } else if (k < 98 || !allow_settings) {
        health_tick(h, clock_ms);
    } else {
        h->capacity = 1 + rnd(60);
        h->size_limit = 1 + rnd(20);
        h->stale_days = 1 + rnd(10);
        health_settings_changed(h);
    }
}

/* The changes, taken as the server does after each operation. */
static size_t take(struct health *h)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    health_take_changes(h, &pk);
    size_t n = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return n;
}

/* An empty backlog with its health watching, and these settings. */
static void start(struct backlog *b, struct health *h, uint32_t capacity, uint32_t size_limit,
                  uint32_t stale_days)
{
    memset(b, 0, sizeof *b);
    health_init(h, b);
    h->capacity = capacity;
    h->size_limit = size_limit;
    h->stale_days = stale_days;
}

static void test_random(void)
{
    struct backlog b;
    struct health h;
    start(&b, &h, 20, 8, 3);
    int bad = 0;
    for (int i = 0; i < 6000 && !bad; i++) {
        step(&b, &h, 1);
        bad = health_check(&h);
        CHECK(bad == 0);
        take(&h);
        CHECK(list_empty(&h.dirty));
    }
    /* A copy rebuilt from the same items agrees, item by item. */
    struct backlog b2;
    struct health h2;
    memset(&b2, 0, sizeof b2); /* no watcher yet: items come in as a loaded room's do */
    for (size_t i = 0; i < b.n; i++) {
        struct item *it = backlog_item_new(b.v[i]->id);
        strcpy(it->rank, b.v[i]->rank);
        for (int f = 0; f < ITEM_F__COUNT; f++) {
            backlog_ival_free(&it->f[f]);
            backlog_ival_copy(&it->f[f], &b.v[i]->f[f]);
        }
        it->updated_at = b.v[i]->updated_at;
        CHECK(backlog_insert(&b2, it) == 0);
    }
    health_init(&h2, &b2);
    h2.capacity = h.capacity;
    h2.size_limit = h.size_limit;
    h2.stale_days = h.stale_days;
    CHECK(health_rebuild(&h2, h.now) == 0);
    CHECK(health_check(&h2) == 0);
    uint8_t s1[HS__COUNT], s2[HS__COUNT];
    health_scores(&h, s1);
    health_scores(&h2, s2);
    CHECK(memcmp(s1, s2, sizeof s1) == 0);
    for (size_t i = 0; i < b.n; i++)
        CHECK(b.v[i]->hl_rules == b2.v[i]->hl_rules);
    health_free(&h2);
    backlog_free(&b2);
    health_free(&h);
    backlog_free(&b);
}

/* Known cases: the top by capacity, a wont above a must, stale by the clock. */
static void test_cases(void)
{
    struct backlog b;
    struct health h;
    start(&b, &h, 10, 5, HEALTH_STALE_DAYS_DEFAULT);
    char keys[6][RANK_MAX + 1];
    CHECK(rank_spread(6, keys) == 0);
    struct item *v[6];
    for (int i = 0; i < 6; i++) {
        char id[8];
        snprintf(id, sizeof id, "i%d", i);
        v[i] = backlog_item_new(id);
        strcpy(v[i]->rank, keys[i]);
        set_str(v[i], ITEM_F_ESTIMATE, "3");
        set_str(v[i], ITEM_F_STATUS, "ready");
        set_str(v[i], ITEM_F_BENEFIT, "so that");
        set_acceptance(v[i], 1);
        v[i]->updated_at = clock_ms;
        CHECK(backlog_insert(&b, v[i]) == 0);
    }
    /* 3 + 3 + 3 = 9 < 10: the fourth starts within the capacity, the fifth not. */
    CHECK(h.top_n == 4 && v[3]->hl_top && !v[4]->hl_top);
    CHECK(v[0]->hl_rules == 0x100);
    uint8_t s[HS__COUNT];
    health_scores(&h, s);
    CHECK(s[HS_OVERALL] == 100);
    int64_t t0 = clock_ms;
    clock_ms += HEALTH_DAY_MS;
    set_str(v[1], ITEM_F_ESTIMATE, NULL); /* counts as size_limit, 5: 3 + 5 + 3 = 11 */
    backlog_account(&b, v[1]);
    v[1]->updated_at = clock_ms;
    CHECK(v[1]->hl_rules & (1u << HR_UNESTIMATED));
    CHECK(h.top_n == 3 && h.top_points == 11);
    health_scores(&h, s);
    CHECK(s[HS_ESTIMATED] == 66);
    set_str(v[0], ITEM_F_ESTIMATE, "8"); /* too large, and 8 + 5 = 13: the top is two */
    backlog_account(&b, v[0]);
    v[0]->updated_at = clock_ms;
    CHECK(v[0]->hl_rules & (1u << HR_TOO_LARGE));
    CHECK(h.top_n == 2 && !v[2]->hl_top);
    set_str(v[5], ITEM_F_MOSCOW, "must");
    backlog_account(&b, v[5]);
    v[5]->updated_at = clock_ms;
    set_str(v[4], ITEM_F_MOSCOW, "wont");
    backlog_account(&b, v[4]);
    CHECK(v[4]->hl_rules & (1u << HR_WONT_ABOVE_MUST));
    char last[RANK_MAX + 1];
    CHECK(rank_between(v[5]->rank, NULL, last, sizeof last) == 0);
    backlog_move(&b, v[4], last); /* the wont to the bottom */
    v[4]->updated_at = clock_ms;
    CHECK(!(v[4]->hl_rules & (1u << HR_WONT_ABOVE_MUST)));
    health_scores(&h, s);
    CHECK(s[HS_PRIORITIZED] == 100);
    health_tick(&h, t0 + 89 * HEALTH_DAY_MS);
    CHECK(h.n[HR_STALE] == 0);
    health_tick(&h, t0 + 90 * HEALTH_DAY_MS); /* v[1], v[0] and v[5], v[4] were touched since */
    CHECK(h.n[HR_STALE] == 2 && (v[2]->hl_rules & (1u << HR_STALE)));
    CHECK(health_check(&h) == 0);
    health_free(&h);
    backlog_free(&b);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The figure: changes to a 10,000-item backlog, with and without its health. */
static void bench(int changes, uint32_t capacity)
{
    double per[2];
    for (int watched = 0; watched < 2; watched++) {
        rng = 12345;
        struct backlog b;
        struct health h;
        start(&b, &h, capacity, HEALTH_SIZE_LIMIT_DEFAULT, HEALTH_STALE_DAYS_DEFAULT);
        if (!watched)
            b.watch = NULL;
        while (b.n < BACKLOG_MAX_ITEMS)
            add_random(&b);
        if (watched) {
            take(&h);
            CHECK(health_check(&h) == 0);
        }
        double t0 = now_s();
        for (int i = 0; i < changes; i++) {
            step(&b, &h, 0);
            if (b.n < BACKLOG_MAX_ITEMS)
                add_random(&b);
            if (watched)
                take(&h);
        }
        per[watched] = (now_s() - t0) / changes * 1e6;
        if (watched) {
            CHECK(health_check(&h) == 0);
            printf("health: top %zu items, span %zu, %zu wonts, %zu musts\n", h.top_n, h.top_end,
                   h.wonts.n, h.musts.n);
        }
        health_free(&h);
        backlog_free(&b);
    }
    printf("health: %d changes to a backlog of %d items, capacity %u: %.2f us per change with "
           "health (%.2f us without): health adds %.2f us per change\n",
           changes, BACKLOG_MAX_ITEMS, capacity, per[1], per[0], per[1] - per[0]);
}

int main(int argc, char **argv)
{
    int full = argc > 1 && strcmp(argv[1], "--bench") == 0;
    test_cases();
    test_random();
    bench(full ? 200000 : 20000, HEALTH_CAPACITY_DEFAULT);
    bench(full ? 200000 : 20000, HEALTH_CAPACITY_MAX); /* the top as long as it gets */
    return check_summary("test_health");
}
