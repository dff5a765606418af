#include "prio.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "stats.h"

static const char *const METHOD_NAMES[PRIO__COUNT] = {"value_effort", "wsjf", "moscow_value"};
static const char *const MOSCOW_ORDER[] = {"must", "should", "could", "wont"};
#define MOSCOW_NONE 4

/* The names of the PRIO_NEED_* bits, in bit order. */
static const char *const NEED_NAMES[] = {"value",          "estimate",         "moscow",
                                         "business_value", "time_criticality", "risk_reduction"};
#define NEED_COUNT (sizeof NEED_NAMES / sizeof NEED_NAMES[0])

int prio_method_parse(const msgpack_object *o)
{
    for (int m = 0; m < PRIO__COUNT; m++)
        if (codec_str_eq(o, METHOD_NAMES[m]))
            return m;
    return -1;
}

const char *prio_method_name(enum prio_method m)
{
    return (unsigned)m < PRIO__COUNT ? METHOD_NAMES[m] : NULL;
}

static bool str_is(const struct ival *v, const char *s)
{
    return v->type == IV_STR && strcmp(v->u.s, s) == 0;
}

bool prio_is_open(const struct item *it)
{
    const struct ival *st = &it->f[ITEM_F_STATUS];
    return !str_is(st, "split") && !str_is(st, "done");
}

/* The item's integer field f into *out, or false (nil). */
static bool int_of(const struct item *it, enum item_field f, double *out)
{
    if (it->f[f].type != IV_INT)
        return false;
    *out = (double)it->f[f].u.i;
    return true;
}

/* The item's numeric estimate (its effort, its job size) into *out, or false. */
static bool effort_of(const struct item *it, double *out)
{
    const struct ival *e = &it->f[ITEM_F_ESTIMATE];
    return e->type == IV_STR && stats_card_number(e->u.s, out) && *out >= 0;
}

/* num / den with den 0 meaning an infinite ratio (0 when num is 0 too). */
static double ratio(double num, double den)
{
    if (den > 0)
        return num / den;
    return num > 0 ? INFINITY : 0;
}

static void rank_value_effort(struct prio_entry *e)
{
    double value = 0, effort = 0;
    if (!int_of(e->it, ITEM_F_VALUE, &value))
        e->missing |= PRIO_NEED_VALUE;
    if (!effort_of(e->it, &effort))
        e->missing |= PRIO_NEED_ESTIMATE;
    if (e->missing) {
        e->group = 1;
        return;
    }
    e->score = e->key = ratio(value, effort);
    e->tie = value;
    e->has_score = true;
}

static void rank_wsjf(struct prio_entry *e)
{
    static const struct {
        enum item_field f;
        unsigned need;
    } parts[] = {{ITEM_F_BUSINESS_VALUE, PRIO_NEED_BUSINESS_VALUE},
                 {ITEM_F_TIME_CRITICALITY, PRIO_NEED_TIME_CRITICALITY},
                 {ITEM_F_RISK_REDUCTION, PRIO_NEED_RISK_REDUCTION}};
    double cod = 0, size = 0, x = 0;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (int_of(e->it, parts[i].f, &x))
            cod += x;
        else
            e->missing |= parts[i].need;
    }
    if (!effort_of(e->it, &size))
        e->missing |= PRIO_NEED_ESTIMATE;
    if (e->missing) {
        e->group = 1;
        return;
    }
    e->score = e->key = ratio(cod, size);
    e->tie = cod;
    e->has_score = true;
}

static void rank_moscow_value(struct prio_entry *e)
{
    const struct ival *m = &e->it->f[ITEM_F_MOSCOW];
    double value = 0;
    bool valued = int_of(e->it, ITEM_F_VALUE, &value);
    e->group = MOSCOW_NONE;
    for (int i = 0; i < MOSCOW_NONE; i++)
        if (str_is(m, MOSCOW_ORDER[i]))
            e->group = i;
    if (!valued)
        e->missing |= PRIO_NEED_VALUE;
    if (e->group == MOSCOW_NONE) { /* last, in the current order */
        e->missing |= PRIO_NEED_MOSCOW;
        return;
    }
    if (!valued) {
        e->key = -1; /* after the valued items of its category */
        return;
    }
    e->score = e->key = value;
    e->has_score = true;
}

static int by_proposal(const void *pa, const void *pb)
{
    const struct prio_entry *a = pa, *b = pb;
    if (a->group != b->group)
        return a->group < b->group ? -1 : 1;
    if (a->key != b->key)
        return a->key > b->key ? -1 : 1;
    if (a->tie != b->tie)
        return a->tie > b->tie ? -1 : 1;
    return a->pos < b->pos ? -1 : a->pos > b->pos;
}

int prio_propose(const struct backlog *b, enum prio_method m, struct prio_order *out)
{
    static void (*const RANK[PRIO__COUNT])(struct prio_entry *) = {
        [PRIO_VALUE_EFFORT] = rank_value_effort,
        [PRIO_WSJF] = rank_wsjf,
        [PRIO_MOSCOW_VALUE] = rank_moscow_value,
    };
    out->n = 0;
    if (!(out->v = calloc(b->n ? b->n : 1, sizeof *out->v)))
        return RF_ENOMEM;
    for (size_t i = 0; i < b->n; i++) {
        if (!prio_is_open(b->v[i]))
            continue;
        struct prio_entry *e = &out->v[out->n];
        e->it = b->v[i];
        e->pos = out->n++;
        RANK[m](e);
    }
    qsort(out->v, out->n, sizeof *out->v, by_proposal);
    return 0;
}

void prio_order_free(struct prio_order *o)
{
    free(o->v);
    o->v = NULL;
    o->n = 0;
}

/* ---- the base ------------------------------------------------------------ */

#define FNV_OFFSET 1469598103934665603ull
#define FNV_PRIME  1099511628211ull

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * FNV_PRIME;
    return h;
}

static uint64_t fnv_ival(uint64_t h, const struct ival *v)
{
    unsigned char tag = (unsigned char)v->type;
    h = fnv(h, &tag, 1);
    if (v->type == IV_STR)
        return fnv(h, v->u.s, strlen(v->u.s) + 1);
    if (v->type == IV_INT)
        return fnv(h, &v->u.i, sizeof v->u.i);
    return h;
}

void prio_base(const struct backlog *b, char out[PRIO_BASE_LEN + 1])
{
    static const enum item_field INPUTS[] = {
        ITEM_F_STATUS,         ITEM_F_ESTIMATE,         ITEM_F_VALUE,         ITEM_F_MOSCOW,
        ITEM_F_BUSINESS_VALUE, ITEM_F_TIME_CRITICALITY, ITEM_F_RISK_REDUCTION};
    uint64_t h = FNV_OFFSET;
    for (size_t i = 0; i < b->n; i++) {
        const struct item *it = b->v[i];
        h = fnv(h, it->id, strlen(it->id) + 1);
        for (size_t k = 0; k < sizeof INPUTS / sizeof INPUTS[0]; k++)
            h = fnv_ival(h, &it->f[INPUTS[k]]);
    }
    snprintf(out, PRIO_BASE_LEN + 1, "%016llx", (unsigned long long)h);
}

/* ---- the reply ----------------------------------------------------------- */

void prio_pack(const struct backlog *b, const struct prio_order *o, msgpack_packer *pk)
{
    size_t lacking = 0;
    codec_pack_str(pk, "order");
    msgpack_pack_array(pk, o->n);
    for (size_t i = 0; i < o->n; i++) {
        codec_pack_str(pk, o->v[i].it->id);
        lacking += o->v[i].missing != 0;
    }
    codec_pack_str(pk, "scores");
    msgpack_pack_array(pk, o->n);
    for (size_t i = 0; i < o->n; i++) {
        if (o->v[i].has_score)
            msgpack_pack_double(pk, o->v[i].score);
        else
            msgpack_pack_nil(pk);
    }
    codec_pack_str(pk, "lacking");
    msgpack_pack_array(pk, lacking);
    for (size_t i = 0; i < o->n; i++) {
        unsigned miss = o->v[i].missing;
        if (!miss)
            continue;
        msgpack_pack_map(pk, 2);
        codec_pack_kv_str(pk, "item", o->v[i].it->id);
        codec_pack_str(pk, "missing");
        msgpack_pack_array(pk, (size_t)__builtin_popcount(miss));
        for (size_t k = 0; k < NEED_COUNT; k++)
            if (miss & (1u << k))
                codec_pack_str(pk, NEED_NAMES[k]);
    }
    codec_pack_kv_u64(pk, "fixed", b->n - o->n);
}
