#include "storymap_ops.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "backlog.h"
#include "clock.h"
#include "codec.h"
#include "errors.h"
#include "event.h"
#include "req.h"
#include "room.h"
#include "storymap.h"
#include "undo_rec.h"

static const char ID_PREFIX[SMAP__NKIND] = {'a', 's', 'r'};
static const char *const KIND_PLURAL[SMAP__NKIND] = {"activities", "steps", "release slices"};

/* Persists the room's meta row (the map in it): 0, or RF_ENOMEM with the
 * room evicted (its connections rejoin and find it as stored). */
static int save_map(struct req *q)
{
    if (room_save_meta(q->app, q->room)) {
        room_evict(q->app, q->room->id);
        return RF_ENOMEM;
    }
    return 0;
}

/* The node the request's field `key` names, of kind `want` (-1: any), into
 * *kind and *ix; or NULL (answered). */
static struct smap_node *find_node(struct req *q, const char *key, int want, enum smap_kind *kind,
                                   size_t *ix)
{
    const msgpack_object *id = codec_get(q->msg, key);
    struct smap_node *n = storymap_find(q->room->smap, id->via.str.ptr, id->via.str.size, kind, ix);
    if (!n || (want >= 0 && *kind != (enum smap_kind)want)) {
        req_fail(q, RF_ENOT_FOUND, "There is no %s '%.*s' on the story map.",
                 want >= 0 ? storymap_kind_name(want) : "activity, step or slice",
                 (int)id->via.str.size, id->via.str.ptr);
        return NULL;
    }
    return n;
}

/* Resolves `after` (absent: the last sibling; nil: none, the first place; an
 * id: that sibling, which may not be `self`) for a node of kind k under
 * `activity` into *prev. Returns 0 or the error (answered). */
static int resolve_after(struct req *q, enum smap_kind k, const char *activity,
                         const struct smap_node *self, const struct smap_node **prev)
{
    struct storymap *m = q->room->smap;
    const msgpack_object *after = codec_get(q->msg, "after");
    *prev = NULL;
    if (!after) {
        struct smap_node *v = storymap_nodes(m, k);
        for (size_t i = 0; i < m->n[k]; i++)
            if (&v[i] != self && (k != SMAP_STEP || strcmp(v[i].activity, activity) == 0))
                *prev = &v[i];
        return 0;
    }
    if (after->type == MSGPACK_OBJECT_NIL)
        return 0;
    enum smap_kind ak;
    size_t ix;
    const struct smap_node *n = find_node(q, "after", (int)k, &ak, &ix);
    if (!n)
        return RF_ENOT_FOUND;
    if (n == self)
        return req_fail(q, RF_EBAD_REQUEST, "A %s cannot go after itself.", storymap_kind_name(k));
    if (k == SMAP_STEP && strcmp(n->activity, activity) != 0)
        return req_fail(q, RF_EBAD_REQUEST,
                        "Step '%s' is under another activity; 'after' names a "
                        "step of the activity the step goes under.",
                        n->id);
    *prev = n;
    return 0;
}

/* Checks that only a step names an activity and only a slice a capacity. */
static int check_kind_fields(struct req *q, enum smap_kind k)
{
    const msgpack_object *act = codec_get(q->msg, "activity");
    if (act && k != SMAP_STEP)
        return req_fail(q, RF_EBAD_REQUEST,
                        "Only a step goes under an activity; a %s has no "
                        "'activity'.",
                        storymap_kind_name(k));
    if (codec_get(q->msg, "capacity") && k != SMAP_SLICE)
        return req_fail(q, RF_EBAD_REQUEST, "Only a release slice has a capacity; a %s has none.",
                        storymap_kind_name(k));
    return 0;
}

static int64_t capacity_of(const msgpack_object *cap)
{
    return cap && cap->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)cap->via.u64 : -1;
}

int storymap_ops_add(struct req *q)
{
    struct room *r = q->room;
    const msgpack_object *kind = codec_get(q->msg, "kind");
    enum smap_kind k = storymap_kind_parse(kind->via.str.ptr, kind->via.str.size);
    int rc = check_kind_fields(q, k);
    if (rc)
        return rc;
    enum smap_kind ak;
    size_t ix;
    const struct smap_node *act = NULL;
    if (k == SMAP_STEP) {
        if (!codec_get(q->msg, "activity"))
            return req_fail(q, RF_EBAD_REQUEST, "A step needs the 'activity' it goes under.");
        if (!(act = find_node(q, "activity", SMAP_ACTIVITY, &ak, &ix)))
            return RF_ENOT_FOUND;
    }
    if (r->smap && r->smap->n[k] == storymap_max(k))
        return req_fail(q, RF_ETOO_LARGE, "The story map holds at most %zu %s; remove one first.",
                        storymap_max(k), KIND_PLURAL[k]);
    bool made = !r->smap;
    if (made && !(r->smap = calloc(1, sizeof *r->smap)))
        return RF_ENOMEM;
    struct storymap *m = r->smap;
    const struct smap_node *prev;
    struct smap_node node = {.capacity = capacity_of(codec_get(q->msg, "capacity"))};
    if (act)
        snprintf(node.activity, sizeof node.activity, "%s", act->id);
    if ((rc = resolve_after(q, k, node.activity, NULL, &prev)) ||
        !(node.name = codec_strdup(codec_get(q->msg, "name")))) {
        if (made) {
            free(r->smap);
            r->smap = NULL;
        }
        return rc ? rc : RF_ENOMEM;
    }
    char after[SMAP_ID_MAX] = "";
    if (prev)
        snprintf(after, sizeof after, "%s", prev->id);
    snprintf(node.id, sizeof node.id, "%c%" PRIu64, ID_PREFIX[k], ++m->next_id);
    size_t at = storymap_slot(m, k, node.activity, prev);
    storymap_insert(m, k, at, &node);
    if ((rc = save_map(q)))
        return rc;
    struct event ev;
    event_begin(&ev, r, "map.added", q->who, 3);
    codec_pack_kv_str(&ev.pk, "kind", storymap_kind_name(k));
    codec_pack_str(&ev.pk, "node");
    storymap_pack_node(&storymap_nodes(m, k)[at], k, &ev.pk);
    codec_pack_kv_str(&ev.pk, "after", prev ? after : NULL);
    event_reply(q, &ev);
    return 0;
}

int storymap_ops_update(struct req *q)
{
    enum smap_kind k;
    size_t ix;
    struct smap_node *n = find_node(q, "node", -1, &k, &ix);
    if (!n)
        return RF_ENOT_FOUND;
    const msgpack_object *name = codec_get(q->msg, "name"), *cap = codec_get(q->msg, "capacity");
    int rc = check_kind_fields(q, k);
    if (rc)
        return rc;
    if (!name && !cap)
        return req_fail(q, RF_EBAD_REQUEST, "Send a new 'name' or (for a slice) 'capacity'.");
    int64_t capacity = cap ? capacity_of(cap) : n->capacity;
    if ((!name || codec_str_eq(name, n->name)) && capacity == n->capacity) {
        req_ok_unchanged(q);
        return 0;
    }
    if (name) {
        char *s = codec_strdup(name);
        if (!s)
            return RF_ENOMEM;
        free(n->name);
        n->name = s;
    }
    n->capacity = capacity;
    if ((rc = save_map(q)))
        return rc;
    struct event ev;
    event_begin(&ev, q->room, "map.updated", q->who, 2);
    codec_pack_kv_str(&ev.pk, "kind", storymap_kind_name(k));
    codec_pack_str(&ev.pk, "node");
    storymap_pack_node(n, k, &ev.pk);
    event_reply(q, &ev);
    return 0;
}

int storymap_ops_move(struct req *q)
{
    struct room *r = q->room;
    enum smap_kind k, ak;
    size_t ix, aix;
    struct smap_node *n = find_node(q, "node", -1, &k, &ix);
    if (!n)
        return RF_ENOT_FOUND;
    int rc = check_kind_fields(q, k);
    if (rc)
        return rc;
    char activity[SMAP_ID_MAX];
    snprintf(activity, sizeof activity, "%s", n->activity);
    if (codec_get(q->msg, "activity")) {
        const struct smap_node *a = find_node(q, "activity", SMAP_ACTIVITY, &ak, &aix);
        if (!a)
            return RF_ENOT_FOUND;
        snprintf(activity, sizeof activity, "%s", a->id);
    }
    const struct smap_node *prev;
    if ((rc = resolve_after(q, k, activity, n, &prev)))
        return rc;
    if (strcmp(activity, n->activity) == 0 && prev == storymap_prev(r->smap, k, ix)) {
        req_ok_unchanged(q); /* already there */
        return 0;
    }
    char after[SMAP_ID_MAX] = "";
    if (prev)
        snprintf(after, sizeof after, "%s", prev->id);
    struct smap_node node;
    storymap_take(r->smap, k, ix, &node);
    snprintf(node.activity, sizeof node.activity, "%s", activity);
    prev = prev ? storymap_find(r->smap, after, strlen(after), &ak, &aix) : NULL;
    size_t at = storymap_slot(r->smap, k, activity, prev);
    storymap_insert(r->smap, k, at, &node);
    if ((rc = save_map(q)))
        return rc;
    struct event ev;
    event_begin(&ev, r, "map.moved", q->who, 4);
    codec_pack_kv_str(&ev.pk, "node", node.id);
    codec_pack_kv_str(&ev.pk, "kind", storymap_kind_name(k));
    codec_pack_kv_str(&ev.pk, "activity", k == SMAP_STEP ? activity : NULL);
    codec_pack_kv_str(&ev.pk, "after", prev ? after : NULL);
    event_reply(q, &ev);
    return 0;
}

static const char *item_str(const struct item *it, enum item_field f)
{
    return it->f[f].type == IV_STR ? it->f[f].u.s : NULL;
}

/* Whether it is placed on node n of kind k (for an activity: on one of its steps). */
static bool item_on(struct storymap *m, const struct item *it, enum smap_kind k,
                    const struct smap_node *n)
{
    const char *step = item_str(it, ITEM_F_STEP), *slice = item_str(it, ITEM_F_SLICE);
    if (k == SMAP_SLICE)
        return slice && strcmp(slice, n->id) == 0;
    if (!step)
        return false;
    if (k == SMAP_STEP)
        return strcmp(step, n->id) == 0;
    enum smap_kind sk;
    size_t six;
    const struct smap_node *s = storymap_find(m, step, strlen(step), &sk, &six);
    return s && strcmp(s->activity, n->id) == 0;
}

/* Puts it on (step, slice), both taken (both nil: unplaced). Cannot fail. */
/* Puts it at (step, slice), taking both values; the change gives the item a
 * new version (backlog_touch: undo and unsplit see it), by pid. */
static void set_place(struct room *r, struct item *it, struct ival step, struct ival slice,
                      const char *pid, int64_t now)
{
    backlog_ival_free(&it->f[ITEM_F_STEP]);
    backlog_ival_free(&it->f[ITEM_F_SLICE]);
    it->f[ITEM_F_STEP] = step;
    it->f[ITEM_F_SLICE] = slice;
    backlog_account(&r->backlog, it);
    backlog_touch(it, r->seq + 1, pid, now);
}

static const struct ival NIL = {IV_NIL, {0}};

/* Takes node ix of kind k out of the map and frees it. */
static void drop_node(struct storymap *m, enum smap_kind k, size_t ix)
{
    struct smap_node gone;
    storymap_take(m, k, ix, &gone);
    free(gone.name);
}

int storymap_ops_remove(struct req *q)
{
    struct room *r = q->room;
    struct storymap *m = r->smap;
    enum smap_kind k;
    size_t ix;
    struct smap_node *n = find_node(q, "node", -1, &k, &ix);
    if (!n)
        return RF_ENOT_FOUND;
    size_t count = 0;
    for (size_t i = 0; i < r->backlog.n; i++)
        count += item_on(m, r->backlog.v[i], k, n);
    const msgpack_object *force = codec_get(q->msg, "force");
    if (count && !(force && force->via.boolean))
        return req_fail(q, RF_ECONFLICT,
                        "The %s '%s' holds %zu item%s; removing it leaves %s unplaced. Send "
                        "force: true to confirm.",
                        storymap_kind_name(k), n->name, count, count == 1 ? "" : "s",
                        count == 1 ? "it" : "them");
    struct item **items = calloc(count ? count : 1, sizeof *items);
    if (!items)
        return RF_ENOMEM;
    size_t got = 0;
    for (size_t i = 0; i < r->backlog.n && got < count; i++)
        if (item_on(m, r->backlog.v[i], k, n))
            items[got++] = r->backlog.v[i];
    char id[SMAP_ID_MAX], steps[SMAP_MAX_STEPS][SMAP_ID_MAX];
    size_t nsteps = 0;
    snprintf(id, sizeof id, "%s", n->id);
    int64_t now = clock_now_ms();
    for (size_t i = 0; i < count; i++)
        set_place(r, items[i], NIL, NIL, q->who ? q->who->pid : NULL, now);
    if (k == SMAP_ACTIVITY) /* its steps go with it */
        for (size_t i = m->n[SMAP_STEP]; i-- > 0;)
            if (strcmp(m->step[i].activity, id) == 0) {
                memcpy(steps[nsteps++], m->step[i].id, SMAP_ID_MAX);
                drop_node(m, SMAP_STEP, i);
            }
    drop_node(m, k, ix);
    int rc = 0;
    for (size_t i = 0; i < count && !rc; i++)
        rc = backlog_save_item(q->app->store, r->id, items[i]);
    if (rc || (rc = save_map(q))) {
        free(items);
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "map.removed", q->who, 4);
    codec_pack_kv_str(&ev.pk, "node", id);
    codec_pack_kv_str(&ev.pk, "kind", storymap_kind_name(k));
    codec_pack_str(&ev.pk, "steps");
    msgpack_pack_array(&ev.pk, nsteps);
    for (size_t i = nsteps; i-- > 0;) /* in map order */
        codec_pack_str(&ev.pk, steps[i]);
    codec_pack_str(&ev.pk, "unplaced");
    msgpack_pack_array(&ev.pk, count);
    for (size_t i = 0; i < count; i++)
        codec_pack_str(&ev.pk, items[i]->id);
    free(items);
    event_reply(q, &ev);
    return 0;
}

/* Whether a and b (either NULL) are the same string or both NULL. */
static bool same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* Whether field `key` of the request (a string or nil) equals v (NULL: nil). */
static bool same(const msgpack_object *o, const char *v)
{
    return o->type == MSGPACK_OBJECT_NIL ? !v : v && codec_str_eq(o, v);
}

/* Puts it at (sv, lv) (taken: both strings or both nil) for q: the item
 * saved, the event `map.placed` (with `undo: seq` for an undo's, else the
 * sender's undoable change). */
static int place(struct req *q, struct item *it, struct ival sv, struct ival lv, uint64_t undo)
{
    struct room *r = q->room;
    /* the place before, for an undo (out of memory: not undoable) */
    struct undo_rec *u = undo || !q->who ? NULL : undo_rec_new(OP_MAP_PLACE, it, &r->backlog, NULL);
    if (u && !(u->image = backlog_item_new(it->id))) {
        undo_rec_free(u);
        u = NULL;
    }
    if (u && (backlog_ival_copy(&u->image->f[ITEM_F_STEP], &it->f[ITEM_F_STEP]) ||
              backlog_ival_copy(&u->image->f[ITEM_F_SLICE], &it->f[ITEM_F_SLICE]))) {
        undo_rec_free(u);
        u = NULL;
    }
    set_place(r, it, sv, lv, q->who ? q->who->pid : NULL, clock_now_ms());
    if (backlog_save_item(q->app->store, r->id, it)) {
        undo_rec_free(u);
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "map.placed", q->who, 3 + (undo != 0));
    codec_pack_kv_str(&ev.pk, "item", it->id);
    codec_pack_kv_str(&ev.pk, "step", item_str(it, ITEM_F_STEP));
    codec_pack_kv_str(&ev.pk, "slice", item_str(it, ITEM_F_SLICE));
    if (undo)
        codec_pack_kv_u64(&ev.pk, "undo", undo);
    uint64_t seq;
    if (event_commit(q->app, &ev, &seq)) { /* the room is evicted: nothing to undo */
        undo_rec_free(u);
        return 0;
    }
    req_ok_seq(q, seq);
    if (u)
        undo_rec_set(&q->who->undo, u, seq);
    return 0;
}

/* A copy of string s (NULL: nil) as an item value; false when out of memory. */
static bool str_ival(const char *s, struct ival *v)
{
    *v = NIL;
    if (!s)
        return true;
    v->type = IV_STR;
    return (v->u.s = strdup(s)) != NULL;
}

int storymap_ops_place_back(struct req *q, struct item *it, const struct item *image, uint64_t undo)
{
    struct room *r = q->room;
    const char *step = item_str(image, ITEM_F_STEP), *slice = item_str(image, ITEM_F_SLICE);
    enum smap_kind k;
    size_t ix;
    if (step && (!storymap_find(r->smap, step, strlen(step), &k, &ix) ||
                 !storymap_find(r->smap, slice, strlen(slice), &k, &ix)))
        return req_fail(q, RF_ECONFLICT,
                        "The step or slice where the item was has been removed from the story map "
                        "since, so the placement cannot be undone.");
    if (same_str(item_str(it, ITEM_F_STEP), step) && same_str(item_str(it, ITEM_F_SLICE), slice)) {
        req_ok_unchanged(q);
        return 0;
    }
    struct ival sv, lv;
    if (!str_ival(step, &sv) || !str_ival(slice, &lv)) {
        backlog_ival_free(&sv);
        backlog_ival_free(&lv);
        return RF_ENOMEM;
    }
    return place(q, it, sv, lv, undo);
}

int storymap_ops_place(struct req *q)
{
    struct room *r = q->room;
    const msgpack_object *id = codec_get(q->msg, "item");
    struct item *it = backlog_get(&r->backlog, id->via.str.ptr, id->via.str.size);
    if (!it)
        return req_fail(q, RF_ENOT_FOUND, "There is no item '%.*s' in this room.",
                        (int)id->via.str.size, id->via.str.ptr);
    const msgpack_object *step = codec_get(q->msg, "step"), *slice = codec_get(q->msg, "slice");
    bool unplaced = step->type == MSGPACK_OBJECT_NIL;
    if (unplaced != (slice->type == MSGPACK_OBJECT_NIL))
        return req_fail(q, RF_EBAD_REQUEST,
                        "A place on the story map is a step and a release "
                        "slice; send both, or both nil to unplace the item.");
    enum smap_kind k;
    size_t ix;
    if (!unplaced &&
        (!find_node(q, "step", SMAP_STEP, &k, &ix) || !find_node(q, "slice", SMAP_SLICE, &k, &ix)))
        return RF_ENOT_FOUND;
    if (same(step, item_str(it, ITEM_F_STEP)) && same(slice, item_str(it, ITEM_F_SLICE))) {
        req_ok_unchanged(q);
        return 0;
    }
    struct ival sv = NIL, lv = NIL;
    if (!unplaced) {
        sv.type = lv.type = IV_STR;
        sv.u.s = codec_strdup(step);
        lv.u.s = codec_strdup(slice);
        if (!sv.u.s || !lv.u.s) {
            free(sv.u.s);
            free(lv.u.s);
            return RF_ENOMEM;
        }
    }
    return place(q, it, sv, lv, 0);
}
