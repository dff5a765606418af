#include "product_ops.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app.h"
#include "backlog.h"
#include "clock.h"
#include "codec.h"
#include "errors.h"
#include "event.h"
#include "product.h"
#include "req.h"
#include "room.h"

/* Personas and outcomes are handled alike: a kind says which. */
struct kind {
    const char *key;    /* "persona": the request's field, the event's key */
    const char *prefix; /* of its ids */
    const struct field_spec *fields;
    size_t max;
    enum item_field ref; /* the item field that refers to it */
    const char *added, *updated, *removed;
};

static const struct kind PERSONA = {"persona",          "p",
                                    ops_persona_fields, PRODUCT_MAX_PERSONAS,
                                    ITEM_F_PERSONA_ID,  "persona.added",
                                    "persona.updated",  "persona.removed"};
static const struct kind OUTCOME = {"outcome",          "o",
                                    ops_outcome_fields, PRODUCT_MAX_OUTCOMES,
                                    ITEM_F_OUTCOMES,    "outcome.added",
                                    "outcome.updated",  "outcome.removed"};

static struct product_rec *list_of(struct product *p, const struct kind *k, size_t **n)
{
    if (k == &PERSONA) {
        *n = &p->npersonas;
        return p->personas;
    }
    *n = &p->noutcomes;
    return p->outcomes;
}

static int find_rec(const struct product_rec *v, size_t n, const char *id, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (codec_str_eq_n(id, len, v[i].id))
            return (int)i;
    return -1;
}

/* ---- items and their references ------------------------------------------ */

int product_check_item(const struct room *r, const msgpack_object *map, char *why, size_t whysz)
{
    const struct product *p = &r->product;
    const msgpack_object *pid = codec_get(map, "persona_id"), *out = codec_get(map, "outcomes");
    if (pid && pid->type == MSGPACK_OBJECT_STR &&
        find_rec(p->personas, p->npersonas, pid->via.str.ptr, pid->via.str.size) < 0) {
        snprintf(why, whysz, "There is no persona '%.*s' in this room.", (int)pid->via.str.size,
                 pid->via.str.ptr);
        return RF_EBAD_REQUEST;
    }
    for (uint32_t i = 0; out && i < out->via.array.size; i++) {
        const msgpack_object *o = &out->via.array.ptr[i];
        if (find_rec(p->outcomes, p->noutcomes, o->via.str.ptr, o->via.str.size) < 0) {
            snprintf(why, whysz, "There is no outcome '%.*s' in this room.", (int)o->via.str.size,
                     o->via.str.ptr);
            return RF_EBAD_REQUEST;
        }
        for (uint32_t k = 0; k < i; k++)
            if (msgpack_object_equal(*o, out->via.array.ptr[k])) {
                snprintf(why, whysz, "Field 'outcomes' names outcome '%.*s' twice.",
                         (int)o->via.str.size, o->via.str.ptr);
                return RF_EBAD_REQUEST;
            }
    }
    return 0;
}

/* Where item field ref of it names id: for a list, its index; for a
 * string, 0; -1 when it does not. */
static int refers(const struct item *it, enum item_field ref, const char *id)
{
    const struct ival *v = &it->f[ref];
    if (v->type == IV_STR)
        return strcmp(v->u.s, id) == 0 ? 0 : -1;
    for (uint32_t i = 0; v->type == IV_LIST && i < v->u.l.n; i++)
        if (strcmp(v->u.l.v[i], id) == 0)
            return (int)i;
    return -1;
}

/* Takes id out of item field ref of it. Allocates nothing. */
static void unrefer(struct item *it, enum item_field ref, const char *id)
{
    struct ival *v = &it->f[ref];
    int at = refers(it, ref, id);
    if (at < 0)
        return;
    if (v->type == IV_STR) {
        backlog_ival_free(v);
        return;
    }
    free(v->u.l.v[at]);
    memmove(&v->u.l.v[at], &v->u.l.v[at + 1], (v->u.l.n - (uint32_t)at - 1) * sizeof *v->u.l.v);
    v->u.l.n--;
}

/* The items that refer to id (by item field ref), or those a new persona
 * adopts (`adopt`: no persona_id, free-text persona equal to id's name) into
 * a new array *out (NULL when none): their count, or -1 on out of memory. */
static long collect(const struct room *r, enum item_field ref, const char *id, const char *adopt,
                    struct item ***out)
{
    *out = NULL;
    size_t n = 0, cap = 0;
    for (size_t i = 0; i < r->backlog.n; i++) {
        struct item *it = r->backlog.v[i];
        bool hit;
        if (adopt) {
            const struct ival *t = &it->f[ITEM_F_PERSONA];
            const char *s = t->type == IV_STR ? t->u.s : "";
            while (isspace((unsigned char)*s))
                s++;
            size_t len = strlen(s), alen = strlen(adopt);
            while (len && isspace((unsigned char)s[len - 1]))
                len--;
            hit = it->f[ITEM_F_PERSONA_ID].type == IV_NIL && len == alen && alen &&
                  strncasecmp(s, adopt, len) == 0;
        } else {
            hit = refers(it, ref, id) >= 0;
        }
        if (!hit)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            struct item **v = realloc(*out, cap * sizeof *v);
            if (!v) {
                free(*out);
                *out = NULL;
                return -1;
            }
            *out = v;
        }
        (*out)[n++] = it;
    }
    return (long)n;
}

static void pack_ids(msgpack_packer *pk, struct item **v, size_t n)
{
    codec_pack_str(pk, "items");
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        codec_pack_str(pk, v[i]->id);
}

/* Appends the rows of the changed items and the room's meta to the store's
 * batch; on failure the room is evicted (RF_ENOMEM). */
static int save(struct req *q, struct item **v, size_t n)
{
    struct room *r = q->room;
    for (size_t i = 0; i < n; i++)
        if (backlog_save_item(q->app->store, r->id, v[i]))
            goto fail;
    if (room_save_meta(q->app, r))
        goto fail;
    return 0;
fail:
    room_evict(q->app, r->id);
    return RF_ENOMEM;
}

/* ---- the operations ------------------------------------------------------ */

/* Validates the map at field `key` of the request against fields (partial:
 * every field optional, at least one). */
static int check_map(struct req *q, const char *key, const struct field_spec *fields, bool partial)
{
    const msgpack_object *m = codec_get(q->msg, key);
    if (partial && m->via.map.size == 0)
        return req_fail(q, RF_EBAD_REQUEST, "Field '%s' must hold at least one field.", key);
    return ops_validate_fields(fields, m, partial, true, q->why, sizeof q->why);
}

int product_ops_vision_set(struct req *q)
{
    struct room *r = q->room;
    const msgpack_object *set = codec_get(q->msg, "vision");
    int rc = check_map(q, "vision", ops_vision_fields, true);
    if (rc)
        return rc;
    if (product_rec_has(&r->product.vision, ops_vision_fields, set)) {
        req_ok_unchanged(q);
        return 0;
    }
    if ((rc = product_rec_set(&r->product.vision, ops_vision_fields, set)))
        return rc;
    if ((rc = save(q, NULL, 0)))
        return rc;
    struct event ev;
    event_begin(&ev, r, "vision.updated", q->who, 1);
    codec_pack_str(&ev.pk, "vision");
    product_rec_pack(&r->product.vision, ops_vision_fields, &ev.pk);
    event_reply(q, &ev);
    return 0;
}

static int add(struct req *q, const struct kind *k)
{
    struct room *r = q->room;
    struct product *p = &r->product;
    size_t *n;
    struct product_rec *v = list_of(p, k, &n);
    const msgpack_object *m = codec_get(q->msg, k->key), *adopt = codec_get(q->msg, "adopt");
    int rc = check_map(q, k->key, k->fields, false);
    if (rc)
        return rc;
    if (*n >= k->max)
        return req_fail(q, RF_ETOO_LARGE, "The room has %zu %ss, the most it holds.", k->max,
                        k->key);
    uint64_t *next = k == &PERSONA ? &p->next_persona : &p->next_outcome;
    struct product_rec *rec = &v[*n];
    memset(rec, 0, sizeof *rec);
    snprintf(rec->id, sizeof rec->id, "%s%llu", k->prefix, (unsigned long long)(*next + 1));
    struct item **items = NULL;
    long nitems = 0;
    char **ids = NULL;
    if (adopt && adopt->type == MSGPACK_OBJECT_BOOLEAN && adopt->via.boolean) {
        const msgpack_object *name = codec_get(m, "name");
        char buf[256];
        snprintf(buf, sizeof buf, "%.*s", (int)name->via.str.size, name->via.str.ptr);
        if ((nitems = collect(r, k->ref, NULL, buf, &items)) < 0)
            return RF_ENOMEM;
        if (nitems && !(ids = calloc((size_t)nitems, sizeof *ids)))
            goto oom;
        for (long i = 0; i < nitems; i++)
            if (!(ids[i] = strdup(rec->id)))
                goto oom;
    }
    if (product_rec_set(rec, k->fields, m))
        goto oom;
    (*n)++;
    (*next)++;
    for (long i = 0; i < nitems; i++) { /* nothing below fails but the store */
        struct ival *f = &items[i]->f[ITEM_F_PERSONA_ID];
        f->type = IV_STR;
        f->u.s = ids[i];
        backlog_account(&r->backlog, items[i]);
        backlog_touch(items[i], r->seq + 1, q->who ? q->who->pid : NULL, clock_now_ms());
    }
    free(ids);
    if ((rc = save(q, items, (size_t)nitems))) {
        free(items);
        return rc;
    }
    struct event ev;
    event_begin(&ev, r, k->added, q->who, 1 + (k == &PERSONA));
    codec_pack_str(&ev.pk, k->key);
    product_rec_pack(rec, k->fields, &ev.pk);
    if (k == &PERSONA)
        pack_ids(&ev.pk, items, (size_t)nitems);
    free(items);
    uint64_t seq;
    if (event_commit(q->app, &ev, &seq) == 0)
        req_ok_seq_str(q, seq, k->key, rec->id);
    return 0;
oom:
    for (long i = 0; ids && i < nitems; i++)
        free(ids[i]);
    free(ids);
    free(items);
    return RF_ENOMEM;
}

/* The record the request's field k->key names, or NULL (answered). */
static struct product_rec *find(struct req *q, const struct kind *k, size_t *at)
{
    size_t *n;
    struct product_rec *v = list_of(&q->room->product, k, &n);
    const msgpack_object *id = codec_get(q->msg, k->key);
    int i = find_rec(v, *n, id->via.str.ptr, id->via.str.size);
    if (i < 0) {
        req_fail(q, RF_ENOT_FOUND, "There is no %s '%.*s' in this room.", k->key,
                 (int)id->via.str.size, id->via.str.ptr);
        return NULL;
    }
    *at = (size_t)i;
    return &v[i];
}

static int update(struct req *q, const struct kind *k)
{
    size_t at;
    struct product_rec *rec = find(q, k, &at);
    if (!rec)
        return RF_ENOT_FOUND;
    const msgpack_object *set = codec_get(q->msg, "set");
    int rc = check_map(q, "set", k->fields, true);
    if (rc)
        return rc;
    if (product_rec_has(rec, k->fields, set)) {
        req_ok_unchanged(q);
        return 0;
    }
    if ((rc = product_rec_set(rec, k->fields, set)) || (rc = save(q, NULL, 0)))
        return rc;
    struct event ev;
    event_begin(&ev, q->room, k->updated, q->who, 1);
    codec_pack_str(&ev.pk, k->key);
    product_rec_pack(rec, k->fields, &ev.pk);
    event_reply(q, &ev);
    return 0;
}

static int remove_rec(struct req *q, const struct kind *k)
{
    struct room *r = q->room;
    size_t at, *n;
    struct product_rec *rec = find(q, k, &at);
    if (!rec)
        return RF_ENOT_FOUND;
    list_of(&r->product, k, &n);
    const msgpack_object *force = codec_get(q->msg, "force");
    struct item **items;
    long nitems = collect(r, k->ref, rec->id, NULL, &items);
    if (nitems < 0)
        return RF_ENOMEM;
    if (nitems && !(force && force->type == MSGPACK_OBJECT_BOOLEAN && force->via.boolean)) {
        req_fail(q, RF_ECONFLICT,
                 "%ld item%s refer%s to %s %s (the first: %s); send force: true to remove it from "
                 "them too.",
                 nitems, nitems == 1 ? "" : "s", nitems == 1 ? "s" : "", k->key, rec->id,
                 items[0]->id);
        free(items);
        return RF_ECONFLICT;
    }
    char id[PRODUCT_ID_MAX];
    snprintf(id, sizeof id, "%s", rec->id);
    for (long i = 0; i < nitems; i++) {
        unrefer(items[i], k->ref, id);
        backlog_account(&r->backlog, items[i]);
        backlog_touch(items[i], r->seq + 1, q->who ? q->who->pid : NULL, clock_now_ms());
    }
    product_rec_free(rec);
    memmove(rec, rec + 1, (*n - at - 1) * sizeof *rec);
    (*n)--;
    int rc = save(q, items, (size_t)nitems);
    if (rc) {
        free(items);
        return rc;
    }
    struct event ev;
    event_begin(&ev, r, k->removed, q->who, 2);
    codec_pack_kv_str(&ev.pk, k->key, id);
    pack_ids(&ev.pk, items, (size_t)nitems);
    free(items);
    event_reply(q, &ev);
    return 0;
}

int product_ops_persona_add(struct req *q)
{
    return add(q, &PERSONA);
}

int product_ops_persona_update(struct req *q)
{
    return update(q, &PERSONA);
}

int product_ops_persona_remove(struct req *q)
{
    return remove_rec(q, &PERSONA);
}

int product_ops_outcome_add(struct req *q)
{
    return add(q, &OUTCOME);
}

int product_ops_outcome_update(struct req *q)
{
    return update(q, &OUTCOME);
}

int product_ops_outcome_remove(struct req *q)
{
    return remove_rec(q, &OUTCOME);
}
