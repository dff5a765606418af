#include "storymap.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backlog.h"
#include "codec.h"
#include "errors.h"
#include "stats.h"

static const char *const KIND_NAMES[SMAP__NKIND] = {"activity", "step", "slice"};
static const char *const META_KEYS[SMAP__NKIND] = {"activities", "steps", "slices"};
static const size_t MAX[SMAP__NKIND] = {SMAP_MAX_ACTIVITIES, SMAP_MAX_STEPS, SMAP_MAX_SLICES};

const char *storymap_kind_name(enum smap_kind k)
{
    return KIND_NAMES[k];
}

int storymap_kind_parse(const char *s, size_t n)
{
    for (int k = 0; k < SMAP__NKIND; k++)
        if (codec_str_eq_n(s, n, KIND_NAMES[k]))
            return k;
    return -1;
}

struct smap_node *storymap_nodes(struct storymap *m, enum smap_kind k)
{
    return k == SMAP_ACTIVITY ? m->act : k == SMAP_STEP ? m->step : m->slice;
}

size_t storymap_max(enum smap_kind k)
{
    return MAX[k];
}

struct smap_node *storymap_find(struct storymap *m, const char *id, size_t n, enum smap_kind *kind,
                                size_t *ix)
{
    if (!m)
        return NULL;
    for (int k = 0; k < SMAP__NKIND; k++) {
        struct smap_node *v = storymap_nodes(m, k);
        for (size_t i = 0; i < m->n[k]; i++)
            if (codec_str_eq_n(id, n, v[i].id)) {
                *kind = k;
                *ix = i;
                return &v[i];
            }
    }
    return NULL;
}

/* Whether node v belongs with `activity` among its siblings (every node of a
 * kind but steps). */
static bool sibling(enum smap_kind k, const struct smap_node *v, const char *activity)
{
    return k != SMAP_STEP || strcmp(v->activity, activity) == 0;
}

size_t storymap_slot(struct storymap *m, enum smap_kind k, const char *activity,
                     const struct smap_node *after)
{
    struct smap_node *v = storymap_nodes(m, k);
    if (after)
        return (size_t)(after - v) + 1;
    for (size_t i = 0; i < m->n[k]; i++) /* first among its siblings */
        if (sibling(k, &v[i], activity))
            return i;
    return m->n[k];
}

const struct smap_node *storymap_prev(struct storymap *m, enum smap_kind k, size_t ix)
{
    struct smap_node *v = storymap_nodes(m, k);
    for (size_t i = ix; i-- > 0;)
        if (sibling(k, &v[i], v[ix].activity))
            return &v[i];
    return NULL;
}

void storymap_insert(struct storymap *m, enum smap_kind k, size_t ix, const struct smap_node *node)
{
    struct smap_node *v = storymap_nodes(m, k);
    memmove(&v[ix + 1], &v[ix], (m->n[k] - ix) * sizeof *v);
    v[ix] = *node;
    m->n[k]++;
}

void storymap_take(struct storymap *m, enum smap_kind k, size_t ix, struct smap_node *out)
{
    struct smap_node *v = storymap_nodes(m, k);
    *out = v[ix];
    m->n[k]--;
    memmove(&v[ix], &v[ix + 1], (m->n[k] - ix) * sizeof *v);
}

void storymap_free(struct storymap *m)
{
    if (!m)
        return;
    for (int k = 0; k < SMAP__NKIND; k++)
        for (size_t i = 0; i < m->n[k]; i++)
            free(storymap_nodes(m, k)[i].name);
    free(m);
}

static void pack_capacity(msgpack_packer *pk, const struct smap_node *n)
{
    codec_pack_str(pk, "capacity");
    if (n->capacity >= 0)
        msgpack_pack_int64(pk, n->capacity);
    else
        msgpack_pack_nil(pk);
}

void storymap_pack_node(const struct smap_node *n, enum smap_kind k, msgpack_packer *pk)
{
    msgpack_pack_map(pk, k == SMAP_ACTIVITY ? 2 : 3);
    codec_pack_kv_str(pk, "id", n->id);
    codec_pack_kv_str(pk, "name", n->name);
    if (k == SMAP_STEP) {
        codec_pack_kv_str(pk, "activity", n->activity);
    } else if (k == SMAP_SLICE) {
        pack_capacity(pk, n);
    }
}

static const char *item_str(const struct item *it, enum item_field f)
{
    return it->f[f].type == IV_STR ? it->f[f].u.s : NULL;
}

/* The index of it's slice in m, or -1: unplaced, or split (a split parent's
 * children stand for it, so it counts in no slice). */
static int slice_of(const struct storymap *m, const struct item *it)
{
    const char *slice = item_str(it, ITEM_F_SLICE), *status = item_str(it, ITEM_F_STATUS);
    if (!slice || (status && strcmp(status, "split") == 0))
        return -1;
    for (size_t s = 0; s < m->n[SMAP_SLICE]; s++)
        if (strcmp(m->slice[s].id, slice) == 0)
            return (int)s;
    return -1;
}

/* Whether it has a numeric estimate (into *v): "5", "0.5", "½". */
static bool points_of(const struct item *it, double *v)
{
    const char *est = item_str(it, ITEM_F_ESTIMATE);
    return est && stats_card_number(est, v);
}

/* A number of points: an integer when it is one (JSON shows 13, not 13.0). */
static void pack_points(msgpack_packer *pk, double v)
{
    if (v == (double)(int64_t)v)
        msgpack_pack_int64(pk, (int64_t)v);
    else
        msgpack_pack_double(pk, v);
}

void storymap_pack(const struct storymap *m, const struct backlog *b, msgpack_packer *pk)
{
    size_t n = m ? m->n[SMAP_SLICE] : 0;
    double points[SMAP_MAX_SLICES] = {0}, v;
    uint32_t unest[SMAP_MAX_SLICES] = {0};
    for (size_t i = 0; i < b->n && n; i++) {
        int s = slice_of(m, b->v[i]);
        if (s >= 0 && points_of(b->v[i], &v))
            points[s] += v;
        else if (s >= 0)
            unest[s]++;
    }
    msgpack_pack_map(pk, SMAP__NKIND);
    for (int k = 0; k < SMAP__NKIND; k++) {
        codec_pack_str(pk, META_KEYS[k]);
        msgpack_pack_array(pk, m ? m->n[k] : 0);
        for (size_t i = 0; m && i < m->n[k] && k != SMAP_SLICE; i++)
            storymap_pack_node(&storymap_nodes((struct storymap *)m, k)[i], k, pk);
    }
    for (size_t s = 0; s < n; s++) { /* a slice's node and its figures */
        const struct smap_node *sl = &m->slice[s];
        msgpack_pack_map(pk, 5);
        codec_pack_kv_str(pk, "id", sl->id);
        codec_pack_kv_str(pk, "name", sl->name);
        pack_capacity(pk, sl);
        codec_pack_str(pk, "points");
        pack_points(pk, points[s]);
        codec_pack_str(pk, "unestimated");
        msgpack_pack_array(pk, unest[s]);
        for (size_t i = 0; i < b->n && unest[s]; i++)
            if (slice_of(m, b->v[i]) == (int)s && !points_of(b->v[i], &v))
                codec_pack_str(pk, b->v[i]->id);
    }
}

void storymap_pack_meta(const struct storymap *m, msgpack_packer *pk)
{
    if (!m) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 1 + SMAP__NKIND);
    codec_pack_kv_u64(pk, "next", m->next_id);
    for (int k = 0; k < SMAP__NKIND; k++) {
        codec_pack_str(pk, META_KEYS[k]);
        msgpack_pack_array(pk, m->n[k]);
        for (size_t i = 0; i < m->n[k]; i++)
            storymap_pack_node(&storymap_nodes((struct storymap *)m, k)[i], k, pk);
    }
}

/* Copies string o (1..max-1 bytes) into dst. */
static bool load_id(char *dst, size_t max, const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_STR || !o->via.str.size || o->via.str.size >= max)
        return false;
    memcpy(dst, o->via.str.ptr, o->via.str.size);
    dst[o->via.str.size] = '\0';
    return true;
}

static int load_node(struct storymap *m, enum smap_kind k, const msgpack_object *o)
{
    struct smap_node *n = &storymap_nodes(m, k)[m->n[k]];
    const msgpack_object *name = codec_get(o, "name"), *cap = codec_get(o, "capacity");
    memset(n, 0, sizeof *n);
    n->capacity = -1;
    if (o->type != MSGPACK_OBJECT_MAP || !load_id(n->id, sizeof n->id, codec_get(o, "id")) ||
        !name || name->type != MSGPACK_OBJECT_STR)
        return RF_EINTERNAL;
    if (k == SMAP_STEP && !load_id(n->activity, sizeof n->activity, codec_get(o, "activity")))
        return RF_EINTERNAL;
    if (k == SMAP_SLICE && cap && cap->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        n->capacity = (int64_t)cap->via.u64;
    if (!(n->name = codec_strdup(name)))
        return RF_ENOMEM;
    m->n[k]++;
    return 0;
}

int storymap_load(const msgpack_object *o, struct storymap **out)
{
    *out = NULL;
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (o->type != MSGPACK_OBJECT_MAP)
        return RF_EINTERNAL;
    struct storymap *m = calloc(1, sizeof *m);
    if (!m)
        return RF_ENOMEM;
    int rc = codec_get_uint(o, "next", &m->next_id) ? 0 : RF_EINTERNAL;
    for (int k = 0; k < SMAP__NKIND && !rc; k++) {
        const msgpack_object *a = codec_get(o, META_KEYS[k]);
        if (!a || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size > MAX[k])
            rc = RF_EINTERNAL;
        for (uint32_t i = 0; !rc && i < a->via.array.size; i++)
            rc = load_node(m, k, &a->via.array.ptr[i]);
    }
    if (rc) {
        storymap_free(m);
        return rc;
    }
    *out = m;
    return 0;
}
