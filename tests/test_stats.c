/* Unit tests of server/stats.c: the statistics of a reveal on known vote
 * sets, for every built-in deck, with ?, coffee and ½ in the mix. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codec.h"
#include "ops.h"
#include "stats.h"

struct result {
    msgpack_zone zone;
    msgpack_object o;
    char *data;
};

static size_t deck_len(const char *const *d)
{
    size_t n = 0;
    while (d[n])
        n++;
    return n;
}

static void compute(struct result *r, const char *deck, const char *const *cards, size_t n,
                    bool anonymous)
{
    static const char *const pids[] = {"p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7"};
    struct stats_vote v[8];
    for (size_t i = 0; i < n; i++)
        v[i] = (struct stats_vote){pids[i], cards[i], (int)(i % 4) - 1};
    const char *const *d = deck_builtin(deck, strlen(deck));
    const char *missing[] = {"absent"};
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    stats_pack(&pk, d, deck_len(d), v, n, missing, 1, anonymous);
    size_t len;
    r->data = codec_buf_take(&b, &len);
    msgpack_zone_init(&r->zone, 2048);
    /* stats_pack writes one map: decode it as a message. */
    const char *why;
    CHECK(codec_decode((uint8_t *)r->data, len, &r->zone, &r->o, &why) == 0);
}

static void done(struct result *r)
{
    msgpack_zone_destroy(&r->zone);
    free(r->data);
}

static double num(struct result *r, const char *key)
{
    const msgpack_object *o = codec_get(&r->o, key);
    if (!o)
        return NAN;
    if (o->type == MSGPACK_OBJECT_FLOAT64 || o->type == MSGPACK_OBJECT_FLOAT32)
        return o->via.f64;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (double)o->via.u64;
    return NAN; /* nil */
}

static bool is_nil(struct result *r, const char *key)
{
    const msgpack_object *o = codec_get(&r->o, key);
    return o && o->type == MSGPACK_OBJECT_NIL;
}

static bool str_is(struct result *r, const char *key, const char *want)
{
    return codec_str_eq(codec_get(&r->o, key), want);
}

static bool flag(struct result *r, const char *key)
{
    const msgpack_object *o = codec_get(&r->o, key);
    return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

/* The pids listed under key, joined with commas. */
static bool pids_are(struct result *r, const char *key, const char *want)
{
    const msgpack_object *o = codec_get(&r->o, key);
    char buf[128] = "";
    if (!o || o->type != MSGPACK_OBJECT_ARRAY)
        return false;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, sizeof buf - len, "%s%.*s", i ? "," : "",
                 (int)o->via.array.ptr[i].via.str.size, o->via.array.ptr[i].via.str.ptr);
    }
    return strcmp(buf, want) == 0;
}

static uint64_t dist(struct result *r, const char *card)
{
    uint64_t v = 0;
    codec_get_uint(codec_get(&r->o, "distribution"), card, &v);
    return v;
}

static void test_fibonacci(void)
{
    struct result r;
    const char *cards[] = {"5", "8", "13", "?", "5"};
    compute(&r, "fibonacci", cards, 5, false);
    CHECK(num(&r, "count") == 5 && num(&r, "numeric") == 4 && num(&r, "not_voted") == 1);
    CHECK(num(&r, "min") == 5 && num(&r, "max") == 13);
    CHECK(num(&r, "mean") == 7.75 && num(&r, "median") == 6.5);
    CHECK(dist(&r, "5") == 2 && dist(&r, "?") == 1 && dist(&r, "21") == 0);
    CHECK(str_is(&r, "mode", "5") && !flag(&r, "consensus"));
    CHECK(num(&r, "spread") == 2); /* 5 -> 8 -> 13 */
    CHECK(pids_are(&r, "highest", "p2") && pids_are(&r, "lowest", "p0,p4"));
    CHECK(pids_are(&r, "missing", "absent"));
    CHECK(str_is(&r, "suggested", "8")); /* 6.5 is as near 5 as 8: the larger */
    done(&r);
}

static void test_modified_with_half_and_coffee(void)
{
    struct result r;
    const char *cards[] = {"½", "1", "coffee", "2"};
    compute(&r, "modified", cards, 4, false);
    CHECK(num(&r, "count") == 4 && num(&r, "numeric") == 3);
    CHECK(num(&r, "min") == 0.5 && num(&r, "max") == 2 && num(&r, "median") == 1);
    CHECK(fabs(num(&r, "mean") - 3.5 / 3) < 1e-9);
    CHECK(num(&r, "spread") == 2 && str_is(&r, "suggested", "1"));
    CHECK(pids_are(&r, "lowest", "p0") && pids_are(&r, "highest", "p3"));
    CHECK(str_is(&r, "mode", "½")); /* all once: the earliest card of the deck */
    done(&r);
}

static void test_tshirt_consensus(void)
{
    struct result r;
    const char *cards[] = {"M", "M", "?", "M"};
    compute(&r, "tshirt", cards, 4, false);
    CHECK(num(&r, "numeric") == 0 && is_nil(&r, "min") && is_nil(&r, "median"));
    CHECK(flag(&r, "consensus") && num(&r, "spread") == 0);
    CHECK(str_is(&r, "suggested", "M") && str_is(&r, "mode", "M"));
    done(&r);
    const char *spread[] = {"S", "XL", "L"};
    compute(&r, "tshirt", spread, 3, false);
    CHECK(!flag(&r, "consensus") && num(&r, "spread") == 3);
    CHECK(str_is(&r, "suggested", "L")); /* middle step of S, L, XL */
    CHECK(pids_are(&r, "highest", "p1") && pids_are(&r, "lowest", "p0"));
    done(&r);
}

static void test_powers_anonymous(void)
{
    struct result r;
    const char *cards[] = {"4", "16", "coffee"};
    compute(&r, "powers", cards, 3, true);
    CHECK(num(&r, "median") == 10 && str_is(&r, "suggested", "8")); /* |8-10| < |16-10| */
    CHECK(pids_are(&r, "highest", "") && pids_are(&r, "lowest", "") && pids_are(&r, "missing", ""));
    CHECK(num(&r, "not_voted") == 1);
    done(&r);
}

static void test_only_specials_and_confidence(void)
{
    struct result r;
    const char *cards[] = {"?", "coffee", "?", "?"};
    compute(&r, "fibonacci", cards, 4, false);
    CHECK(num(&r, "numeric") == 0 && !flag(&r, "consensus") && is_nil(&r, "spread"));
    CHECK(is_nil(&r, "suggested") && str_is(&r, "mode", "?"));
    const msgpack_object *c = codec_get(&r.o, "confidence");
    uint64_t low = 9, med = 9, high = 9;
    codec_get_uint(c, "low", &low);
    codec_get_uint(c, "medium", &med);
    codec_get_uint(c, "high", &high);
    CHECK(low == 1 && med == 1 && high == 1); /* votes 1..3 carry 0, 1, 2; vote 0 none */
    done(&r);
}

static void test_card_parsing(void)
{
    double v;
    CHECK(stats_card_number("½", &v) && v == 0.5);
    CHECK(stats_card_number("100", &v) && v == 100);
    CHECK(!stats_card_number("?", &v) && !stats_card_number("coffee", &v));
    CHECK(!stats_card_number("XL", &v) && !stats_card_number("", &v));
    CHECK(!stats_card_number("nan", &v) && !stats_card_number("inf", &v));
}

int main(void)
{
    test_fibonacci();
    test_modified_with_half_and_coffee();
    test_tshirt_consensus();
    test_powers_anonymous();
    test_only_specials_and_confidence();
    test_card_parsing();
    return check_summary("test_stats");
}
