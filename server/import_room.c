/* The sections of a JSON export that are the room's around its backlog:
 * "map" (the story map, storymap.h) and "product" (vision, personas,
 * outcomes, product.h). Each is read on the worker into the model it
 * becomes, with the file's ids (they must have this server's form: a1, s2,
 * r3; p1; o1), and goes into a room that has none (no node on its map; no
 * persona, no outcome and an empty vision); into a room that has one, it is
 * skipped with a warning. The items' references to them (step and slice;
 * persona_id and outcomes) are then checked against what the room will have
 * (import_room_refs): a reference to nothing is dropped with a warning. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backlog.h"
#include "errors.h"
#include "import_int.h"
#include "ops.h"
#include "product.h"
#include "room.h"
#include "storymap.h"

/* The number n of an id "<prefix><n>" (n > 0, no leading zero), or 0. */
static uint64_t id_number(const msgpack_object *id, char prefix)
{
    if (!id || id->type != MSGPACK_OBJECT_STR || id->via.str.size < 2 || id->via.str.size > 15 ||
        id->via.str.ptr[0] != prefix || id->via.str.ptr[1] == '0')
        return 0;
    uint64_t v = 0;
    for (uint32_t i = 1; i < id->via.str.size; i++) {
        char c = id->via.str.ptr[i];
        if (c < '0' || c > '9')
            return 0;
        v = v * 10 + (uint64_t)(c - '0');
    }
    return v;
}

/* Whether a and b (either may be NULL) are the same string. */
static bool same_str(const msgpack_object *a, const msgpack_object *b)
{
    return a && b && a->type == MSGPACK_OBJECT_STR && b->type == MSGPACK_OBJECT_STR &&
           a->via.str.size == b->via.str.size &&
           memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0;
}

/* Whether string o is one of the ids of the nodes v[0..n). */
static bool among(const msgpack_object *o, const msgpack_object *v, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++)
        if (same_str(o, codec_get(&v[i], "id")))
            return true;
    return false;
}

/* Unpacks the meta-form document in b and hands it to load(). */
static int reload(struct codec_buf *b, int (*load)(const msgpack_object *o, void *out), void *out)
{
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    int rc = RF_ENOMEM;
    msgpack_zone_init(&z, 1024);
    if (!b->oom && msgpack_unpack(b->data, b->len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS)
        rc = load(&o, out);
    msgpack_zone_destroy(&z);
    codec_buf_free(b);
    return rc == RF_EINTERNAL ? RF_ENOMEM : rc; /* checked before: only memory fails */
}

/* ---- "map" ----------------------------------------------------------------- */

struct map_state {
    struct storymap *m; /* the file's map (NULL: no node), until applied */
    struct room *r;     /* the room it goes into (check) */
    bool skip;          /* the room has a map: not imported */
    size_t n;           /* the nodes it brings (check) */
};

static const char *const MAP_KEYS[SMAP__NKIND] = {"activities", "steps", "slices"};
static const char MAP_PREFIX[SMAP__NKIND] = {'a', 's', 'r'};

static int map_load(const msgpack_object *o, void *out)
{
    return storymap_load(o, out);
}

/* Checks node o of kind k (its place in the file: where). */
static int map_node_check(struct import *im, enum smap_kind k, const msgpack_object *o,
                          const msgpack_object *acts, uint32_t nacts, const char *where)
{
    if (o->type != MSGPACK_OBJECT_MAP)
        return import_fail(im, "%s is not an object.", where);
    const msgpack_object *name = codec_get(o, "name"), *cap = codec_get(o, "capacity");
    if (!id_number(codec_get(o, "id"), MAP_PREFIX[k]))
        return import_fail(im, "%s: its id must be '%c' and a number (as the export writes it).",
                           where, MAP_PREFIX[k]);
    if (!name || name->type != MSGPACK_OBJECT_STR || !name->via.str.size ||
        name->via.str.size > SMAP_NAME_MAX)
        return import_fail(im, "%s: its name must be a string of 1 to %d bytes.", where,
                           SMAP_NAME_MAX);
    if (k == SMAP_STEP && !among(codec_get(o, "activity"), acts, nacts))
        return import_fail(im, "%s: its activity is not one of the map's activities.", where);
    if (k == SMAP_SLICE && cap && cap->type != MSGPACK_OBJECT_NIL &&
        (cap->type != MSGPACK_OBJECT_POSITIVE_INTEGER || cap->via.u64 > SMAP_CAPACITY_MAX))
        return import_fail(im, "%s: its capacity must be null or a number of points from 0 to %d.",
                           where, SMAP_CAPACITY_MAX);
    return 0;
}

int import_map_parse(struct import *im, void **state, const msgpack_object *v)
{
    const msgpack_object *list[SMAP__NKIND];
    if (v->type != MSGPACK_OBJECT_MAP)
        return import_fail(im, "\"map\" must be an object (activities, steps, slices).");
    uint64_t next = 0;
    size_t nodes = 0;
    for (int k = 0; k < SMAP__NKIND; k++) {
        list[k] = codec_get(v, MAP_KEYS[k]);
        if (!list[k] || list[k]->type != MSGPACK_OBJECT_ARRAY)
            return import_fail(im, "\"map\" must have the array \"%s\".", MAP_KEYS[k]);
        if (list[k]->via.array.size > storymap_max(k))
            return import_fail(im, "The map has more than %zu %s, the most a map holds.",
                               storymap_max(k), MAP_KEYS[k]);
        nodes += list[k]->via.array.size;
    }
    const msgpack_object *acts = list[SMAP_ACTIVITY]->via.array.ptr;
    uint32_t nacts = list[SMAP_ACTIVITY]->via.array.size;
    for (int k = 0; k < SMAP__NKIND; k++)
        for (uint32_t i = 0; i < list[k]->via.array.size; i++) {
            const msgpack_object *o = &list[k]->via.array.ptr[i];
            char where[48];
            snprintf(where, sizeof where, "Node %u of the map's %s", i + 1, MAP_KEYS[k]);
            int rc = map_node_check(im, k, o, acts, nacts, where);
            if (rc)
                return rc;
            for (uint32_t j = 0; j < i; j++)
                if (same_str(codec_get(o, "id"), codec_get(&list[k]->via.array.ptr[j], "id")))
                    return import_fail(im, "%s: two nodes have its id.", where);
            uint64_t n = id_number(codec_get(o, "id"), MAP_PREFIX[k]);
            next = n > next ? n : next;
        }
    struct map_state *ms = calloc(1, sizeof *ms);
    if (!ms)
        return RF_ENOMEM;
    *state = ms;
    if (!nodes)
        return 0;
    /* The map as the room's meta keeps it (its ids' counter, the nodes). */
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 1 + SMAP__NKIND);
    codec_pack_kv_u64(&pk, "next", next);
    for (int k = 0; k < SMAP__NKIND; k++) {
        codec_pack_str(&pk, MAP_KEYS[k]);
        codec_pack_obj(&pk, list[k]);
    }
    return reload(&b, map_load, &ms->m);
}

int import_map_check(struct import *im, void *state, struct room *r)
{
    struct map_state *ms = state;
    ms->r = r;
    size_t nodes = 0;
    for (int k = 0; r->smap && k < SMAP__NKIND; k++)
        nodes += r->smap->n[k];
    ms->skip = ms->m && nodes;
    ms->n = 0;
    for (int k = 0; ms->m && !ms->skip && k < SMAP__NKIND; k++)
        ms->n += ms->m->n[k];
    if (ms->skip)
        import_warn(im, "The file's story map is not imported: this room has a map already (its "
                        "items come unplaced).");
    return 0;
}

int import_map_apply(struct import *im, void *state, struct app *app, struct room *r)
{
    (void)im, (void)app;
    struct map_state *ms = state;
    if (ms->skip || !ms->m)
        return 0;
    if (r->smap) /* an empty map: its ids are never used again */
        ms->m->next_id = ms->m->next_id > r->smap->next_id ? ms->m->next_id : r->smap->next_id;
    storymap_free(r->smap);
    r->smap = ms->m;
    ms->m = NULL;
    return 0;
}

size_t import_map_count(const void *state)
{
    return ((const struct map_state *)state)->n;
}

void import_map_pack(const void *state, msgpack_packer *pk)
{
    const struct map_state *ms = state;
    storymap_pack(ms->r->smap, &ms->r->backlog, pk);
}

void import_map_release(void *state)
{
    struct map_state *ms = state;
    storymap_free(ms->m);
    free(ms);
}

/* ---- "product" ------------------------------------------------------------- */

struct product_state {
    struct product p; /* the file's, until applied */
    struct room *r;   /* the room it goes into (check) */
    bool skip;        /* the room has one: not imported */
    size_t n;         /* the records it brings (check): the vision, personas, outcomes */
};

static int product_reload(const msgpack_object *o, void *out)
{
    return product_load(out, o);
}

/* Checks the records of list key (ids prefix<n>) against fields; their
 * highest number into *next. */
static int product_list_check(struct import *im, const msgpack_object *v, const char *key,
                              char prefix, size_t max, const struct field_spec *fields,
                              uint64_t *next)
{
    const msgpack_object *a = codec_get(v, key);
    char why[300];
    if (!a || a->type != MSGPACK_OBJECT_ARRAY)
        return import_fail(im, "\"product\" must have the array \"%s\".", key);
    if (a->via.array.size > max)
        return import_fail(im, "The product has more than %zu %s, the most a room holds.", max,
                           key);
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        const msgpack_object *m = &a->via.array.ptr[i];
        uint64_t n = m->type == MSGPACK_OBJECT_MAP ? id_number(codec_get(m, "id"), prefix) : 0;
        if (!n)
            return import_fail(im,
                               "Entry %u of the product's %s: an object whose id is '%c' and "
                               "a number (as the export writes it).",
                               i + 1, key, prefix);
        if (ops_validate_fields(fields, m, false, false, why, sizeof why))
            return import_fail(im, "Entry %u of the product's %s: %s", i + 1, key, why);
        for (uint32_t j = 0; j < i; j++)
            if (same_str(codec_get(m, "id"), codec_get(&a->via.array.ptr[j], "id")))
                return import_fail(im, "Entry %u of the product's %s: two have its id.", i + 1,
                                   key);
        *next = n > *next ? n : *next;
    }
    return 0;
}

int import_product_parse(struct import *im, void **state, const msgpack_object *v)
{
    char why[300];
    uint64_t np = 0, no = 0;
    if (v->type != MSGPACK_OBJECT_MAP)
        return import_fail(im, "\"product\" must be an object (vision, personas, outcomes).");
    const msgpack_object *vision = codec_get(v, "vision");
    if (vision && vision->type != MSGPACK_OBJECT_NIL &&
        (vision->type != MSGPACK_OBJECT_MAP ||
         ops_validate_fields(ops_vision_fields, vision, false, false, why, sizeof why)))
        return import_fail(im, "The product's vision: %s",
                           vision->type == MSGPACK_OBJECT_MAP ? why : "it must be an object.");
    int rc =
        product_list_check(im, v, "personas", 'p', PRODUCT_MAX_PERSONAS, ops_persona_fields, &np);
    if (rc || (rc = product_list_check(im, v, "outcomes", 'o', PRODUCT_MAX_OUTCOMES,
                                       ops_outcome_fields, &no)))
        return rc;
    struct product_state *ps = calloc(1, sizeof *ps);
    if (!ps)
        return RF_ENOMEM;
    *state = ps;
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 5);
    codec_pack_str(&pk, "vision");
    if (vision && vision->type == MSGPACK_OBJECT_MAP)
        codec_pack_obj(&pk, vision);
    else
        msgpack_pack_map(&pk, 0);
    codec_pack_str(&pk, "personas");
    codec_pack_obj(&pk, codec_get(v, "personas"));
    codec_pack_str(&pk, "outcomes");
    codec_pack_obj(&pk, codec_get(v, "outcomes"));
    codec_pack_kv_u64(&pk, "next_persona", np);
    codec_pack_kv_u64(&pk, "next_outcome", no);
    return reload(&b, product_reload, &ps->p);
}

/* Whether p has nothing: no persona, no outcome, every field of the vision
 * at its default. */
static bool product_empty(const struct product *p)
{
    if (p->npersonas || p->noutcomes)
        return false;
    struct codec_buf a, b;
    msgpack_packer pa, pb;
    struct product_rec none = {{0}, NULL, 0};
    codec_buf_init(&a, 0);
    codec_buf_init(&b, 0);
    codec_packer_init(&pa, &a);
    codec_packer_init(&pb, &b);
    product_rec_pack(&p->vision, ops_vision_fields, &pa);
    product_rec_pack(&none, ops_vision_fields, &pb);
    bool same = !a.oom && !b.oom && a.len == b.len && memcmp(a.data, b.data, a.len) == 0;
    codec_buf_free(&a);
    codec_buf_free(&b);
    return same;
}

int import_product_check(struct import *im, void *state, struct room *r)
{
    struct product_state *ps = state;
    ps->r = r;
    ps->skip = !product_empty(&r->product) && !product_empty(&ps->p);
    ps->n = ps->skip || product_empty(&ps->p) ? 0 : 1 + ps->p.npersonas + ps->p.noutcomes;
    if (ps->skip)
        import_warn(im, "The file's vision, personas and outcomes are not imported: this room has "
                        "its own (its items lose their references to them).");
    return 0;
}

int import_product_apply(struct import *im, void *state, struct app *app, struct room *r)
{
    (void)im, (void)app;
    struct product_state *ps = state;
    if (ps->skip || product_empty(&ps->p))
        return 0;
    struct product *p = &r->product;
    ps->p.next_persona =
        ps->p.next_persona > p->next_persona ? ps->p.next_persona : p->next_persona;
    ps->p.next_outcome =
        ps->p.next_outcome > p->next_outcome ? ps->p.next_outcome : p->next_outcome;
    product_free(p);
    *p = ps->p;
    memset(&ps->p, 0, sizeof ps->p);
    return 0;
}

size_t import_product_count(const void *state)
{
    return ((const struct product_state *)state)->n;
}

void import_product_pack_room(const void *state, msgpack_packer *pk)
{
    const struct product_state *ps = state;
    product_pack(&ps->r->product, pk);
}

void import_product_release(void *state)
{
    struct product_state *ps = state;
    product_free(&ps->p);
    free(ps);
}

/* ---- the items' references ------------------------------------------------ */

/* Whether m (NULL: none) has node id of kind k. */
static bool has_node(struct storymap *m, const struct ival *id, enum smap_kind k)
{
    enum smap_kind got;
    size_t ix;
    return m && id->type == IV_STR && storymap_find(m, id->u.s, strlen(id->u.s), &got, &ix) &&
           got == k;
}

static bool has_rec(const struct product_rec *v, size_t n, const char *id)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].id, id) == 0)
            return true;
    return false;
}

/* Drops the outcomes of it that p lacks; whether any was. */
static bool drop_outcomes(struct item *it, const struct product *p)
{
    struct ival *o = &it->f[ITEM_F_OUTCOMES];
    if (o->type != IV_LIST)
        return false;
    size_t k = 0, n = o->u.l.n;
    for (size_t i = 0; i < n; i++) {
        if (has_rec(p->outcomes, p->noutcomes, o->u.l.v[i]))
            o->u.l.v[k++] = o->u.l.v[i];
        else
            free(o->u.l.v[i]);
    }
    o->u.l.n = k;
    return k != n;
}

void import_room_refs(struct import *im, struct room *r, const void *map_state,
                      const void *product_state)
{
    const struct map_state *ms = map_state;
    const struct product_state *ps = product_state;
    /* What the room will have; a section of the file that is skipped: nothing
     * of it (its ids are the file's). */
    struct storymap *m = ms ? (ms->skip ? NULL : ms->m) : r->smap;
    struct product none = {0};
    const struct product *p = ps ? (ps->skip ? &none : &ps->p) : &r->product;
    if (ps && !ps->skip && product_empty(&ps->p))
        p = &r->product; /* nothing in the file's: the room's stays */
    if (ms && !ms->skip && !ms->m)
        m = r->smap;
    size_t unplaced = 0, unreferred = 0;
    for (size_t i = 0; i < im->n; i++) {
        struct item *it = im->v[i].it;
        struct ival *step = &it->f[ITEM_F_STEP], *slice = &it->f[ITEM_F_SLICE],
                    *persona = &it->f[ITEM_F_PERSONA_ID];
        bool changed = false;
        if ((step->type != IV_NIL || slice->type != IV_NIL) &&
            !(has_node(m, step, SMAP_STEP) && has_node(m, slice, SMAP_SLICE))) {
            backlog_ival_free(step);
            backlog_ival_free(slice);
            unplaced++;
            changed = true;
        }
        bool lost = persona->type == IV_STR && !has_rec(p->personas, p->npersonas, persona->u.s);
        if (lost)
            backlog_ival_free(persona);
        lost = drop_outcomes(it, p) || lost;
        unreferred += lost;
        if (changed || lost)
            it->bytes = backlog_item_bytes(it);
    }
    if (unplaced)
        import_warn(im,
                    "%zu item%s come%s unplaced: %s place on the story map is not one of the "
                    "room's.",
                    unplaced, unplaced == 1 ? "" : "s", unplaced == 1 ? "s" : "",
                    unplaced == 1 ? "its" : "their");
    if (unreferred)
        import_warn(im, "%zu item%s lose%s a persona or outcomes that the room does not have.",
                    unreferred, unreferred == 1 ? "" : "s", unreferred == 1 ? "s" : "");
}
