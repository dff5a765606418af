/* Unit tests of server/prio.c (prioritization's model), and its speed: a
 * proposal of a 10,000-item backlog, as order.propose makes it (compute the
 * order, the base, pack the reply), timed for each method and printed
 * (docs/BENCHMARKS.md "Prioritization"; issue 12 asks for <= 20 ms). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backlog.h"
#include "check.h"
#include "codec.h"
#include "prio.h"
#include "rank.h"

#define BIG 10000

/* An item of b at the bottom with the fields of the JSON-free list kv (name, value). */
static struct item *add(struct backlog *b, const char *id, const char *rank, int value,
                        const char *estimate, const char *moscow, int bv, int tc, int rr,
                        const char *status)
{
    struct codec_buf buf;
    msgpack_packer pk;
    codec_buf_init(&buf, 0);
    codec_packer_init(&pk, &buf);
    msgpack_pack_map(&pk, 8);
    codec_pack_kv_str(&pk, "title", id);
    codec_pack_str(&pk, "value");
    value < 0 ? msgpack_pack_nil(&pk) : msgpack_pack_int(&pk, value);
    codec_pack_kv_str(&pk, "estimate", estimate);
    codec_pack_kv_str(&pk, "moscow", moscow);
    codec_pack_str(&pk, "business_value");
    bv < 0 ? msgpack_pack_nil(&pk) : msgpack_pack_int(&pk, bv);
    codec_pack_str(&pk, "time_criticality");
    tc < 0 ? msgpack_pack_nil(&pk) : msgpack_pack_int(&pk, tc);
    codec_pack_str(&pk, "risk_reduction");
    rr < 0 ? msgpack_pack_nil(&pk) : msgpack_pack_int(&pk, rr);
    codec_pack_kv_str(&pk, "status", status);
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    msgpack_zone_init(&z, 1024);
    struct item *it = backlog_item_new(id);
    if (!it || msgpack_unpack(buf.data, buf.len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS ||
        backlog_item_apply(it, &o))
        abort();
    snprintf(it->rank, sizeof it->rank, "%s", rank);
    if (backlog_insert(b, it))
        abort();
    msgpack_zone_destroy(&z);
    codec_buf_free(&buf);
    return it;
}

static void ids_of(const struct prio_order *o, char *out, size_t n)
{
    size_t off = 0;
    out[0] = '\0';
    for (size_t i = 0; i < o->n && off < n; i++)
        off += (size_t)snprintf(out + off, n - off, "%s%s", i ? " " : "", o->v[i].it->id);
}

static void small_cases(void)
{
    struct backlog b = {0};
    char got[256], base1[PRIO_BASE_LEN + 1], base2[PRIO_BASE_LEN + 1];
    struct prio_order o;
    /* id, rank, value, estimate, moscow, bv, tc, rr, status */
    add(&b, "a", "a1", 40, "8", "could", 5, 5, 0, "draft");   /* v/e 5,   wsjf 10/8 */
    add(&b, "b", "a2", 80, "16", "must", 8, 2, 0, "draft");   /* v/e 5 (more value) */
    add(&b, "c", "a3", 10, "0", "must", 1, 0, 0, "ready");    /* v/e inf, wsjf inf */
    add(&b, "d", "a4", -1, "3", "must", -1, 3, 3, "draft");   /* lacks value, bv */
    add(&b, "e", "a5", 90, "?", "wont", 20, 20, 20, "draft"); /* lacks a numeric estimate */
    add(&b, "s", "a6", 100, "1", "must", 1, 1, 1, "split");   /* keeps its place */
    add(&b, "f", "a7", 0, "0", NULL, 0, 0, 0, "draft");       /* 0/0 = 0; no moscow */
    add(&b, "x", "a8", 100, "1", "must", 20, 20, 20, "done"); /* keeps its place */
    CHECK(prio_propose(&b, PRIO_VALUE_EFFORT, &o) == 0);
    ids_of(&o, got, sizeof got);
    CHECK(strcmp(got, "c b a f d e") == 0);
    CHECK(o.v[4].missing == PRIO_NEED_VALUE && o.v[5].missing == PRIO_NEED_ESTIMATE);
    prio_order_free(&o);
    CHECK(prio_propose(&b, PRIO_WSJF, &o) == 0);
    ids_of(&o, got, sizeof got);
    CHECK(strcmp(got, "c a b f d e") == 0); /* a: 10/8 > b: 10/16 */
    CHECK(o.v[4].missing == PRIO_NEED_BUSINESS_VALUE);
    prio_order_free(&o);
    CHECK(prio_propose(&b, PRIO_MOSCOW_VALUE, &o) == 0);
    ids_of(&o, got, sizeof got);
    CHECK(strcmp(got, "b c d a e f") == 0); /* musts by value, d (no value) last of them */
    CHECK(o.v[5].missing == PRIO_NEED_MOSCOW);
    prio_order_free(&o);
    /* The base follows the inputs and the order, not the titles. */
    prio_base(&b, base1);
    struct item *a = backlog_get(&b, "a", 1);
    free(a->f[ITEM_F_TITLE].u.s);
    a->f[ITEM_F_TITLE].u.s = strdup("renamed");
    prio_base(&b, base2);
    CHECK(strcmp(base1, base2) == 0);
    a->f[ITEM_F_VALUE].u.i = 41;
    prio_base(&b, base2);
    CHECK(strcmp(base1, base2) != 0);
    backlog_free(&b);
}

static double ms_since(clockid_t clock, const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(clock, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void big_room(void)
{
    static const char *const CARDS[] = {"1", "2", "3", "5", "8", "13", "20", "?", NULL, "½"};
    static const char *const MOSCOW[] = {"must", "should", "could", "wont", NULL};
    struct backlog b = {0};
    char(*keys)[RANK_MAX + 1] = malloc(BIG * sizeof *keys);
    if (!keys || rank_spread(BIG, keys))
        abort();
    srand(12);
    for (int i = 0; i < BIG; i++) {
        char id[16];
        snprintf(id, sizeof id, "i%d", i + 1);
        add(&b, id, keys[i], rand() % 10 ? rand() % 101 : -1, CARDS[rand() % 10],
            MOSCOW[rand() % 5], rand() % 21, rand() % 21, rand() % 8 ? rand() % 21 : -1,
            rand() % 50 ? "draft" : "split");
    }
    free(keys);
    static const char *const NAMES[] = {"value_effort", "wsjf", "moscow_value"};
    for (int m = 0; m < PRIO__COUNT; m++) {
        double t[21], cpu[21];
        size_t bytes = 0;
        for (int run = 0; run < 21; run++) {
            struct timespec t0, c0;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
            struct prio_order o;
            char base[PRIO_BASE_LEN + 1];
            struct codec_buf buf;
            msgpack_packer pk;
            CHECK(prio_propose(&b, (enum prio_method)m, &o) == 0);
            prio_base(&b, base);
            codec_buf_init(&buf, 0);
            codec_packer_init(&pk, &buf);
            msgpack_pack_map(&pk, 2 + PRIO_PACK_FIELDS);
            codec_pack_kv_str(&pk, "method", NAMES[m]);
            codec_pack_kv_str(&pk, "base", base);
            prio_pack(&b, &o, &pk);
            t[run] = ms_since(CLOCK_MONOTONIC, &t0);
            cpu[run] = ms_since(CLOCK_THREAD_CPUTIME_ID, &c0);
            bytes = buf.len;
            CHECK(o.n > 9000 && o.n < BIG);
            prio_order_free(&o);
            codec_buf_free(&buf);
        }
        qsort(t, 21, sizeof t[0], cmp_double);
        qsort(cpu, 21, sizeof cpu[0], cmp_double);
        printf("test_prio: order.propose %-12s over %d items: CPU median %.2f ms, max %.2f ms; "
               "wall min %.2f, median %.2f ms (reply %zu bytes)\n",
               NAMES[m], BIG, cpu[10], cpu[20], t[0], t[10], bytes);
    }
    backlog_free(&b);
}

int main(void)
{
    small_cases();
    big_room();
    return check_summary("test_prio");
}
