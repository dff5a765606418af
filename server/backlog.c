#include "backlog.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "dispatch.h"
#include "errors.h"
#include "hint.h"
#include "log.h"
#include "ops.h"
#include "room.h"
#include "store.h"
#include "token.h"

static size_t nfields(void)
{
    static size_t n;
    if (!n)
        while (ops_item_fields[n].name)
            n++;
    return n;
}

/* The index of field s[0..n), or -1. `hint` is where it probably is (a
 * stored item has its fields in table order): checked first. */
static int field_index_at(const char *s, size_t n, size_t hint)
{
    if (hint < nfields() && codec_str_eq_n(s, n, ops_item_fields[hint].name))
        return (int)hint;
    for (size_t i = 0; ops_item_fields[i].name; i++)
        if (codec_str_eq_n(s, n, ops_item_fields[i].name))
            return (int)i;
    return -1;
}

static int field_index(const char *s, size_t n)
{
    return field_index_at(s, n, 0);
}

/* ---- values ------------------------------------------------------------ */

static void ival_free(struct ival *v)
{
    if (v->type == IV_STR) {
        free(v->u.s);
    } else if (v->type == IV_LIST) {
        for (uint32_t i = 0; i < v->u.l.n; i++)
            free(v->u.l.v[i]);
        free(v->u.l.v);
    }
    v->type = IV_NIL;
}

/* A value from a validated object o for field spec f. */
static int ival_from(const struct field_spec *f, const msgpack_object *o, struct ival *out)
{
    out->type = IV_NIL;
    if (o->type == MSGPACK_OBJECT_NIL)
        return 0;
    switch (f->type) {
    case FT_STR:
        out->type = IV_STR;
        return (out->u.s = codec_strdup(o)) ? 0 : RF_ENOMEM;
    case FT_UINT:
        out->type = IV_INT;
        out->u.i = (int64_t)o->via.u64;
        return 0;
    case FT_STR_LIST:
        out->type = IV_LIST;
        out->u.l.n = 0;
        out->u.l.v = calloc(o->via.array.size ? o->via.array.size : 1, sizeof(char *));
        if (!out->u.l.v)
            return RF_ENOMEM;
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (!(out->u.l.v[i] = codec_strdup(&o->via.array.ptr[i]))) {
                ival_free(out);
                return RF_ENOMEM;
            }
            out->u.l.n++;
        }
        return 0;
    default:
        return RF_EBAD_REQUEST;
    }
}

/* The default of field f: its first choice, "" or nil, or an empty list. */
static int ival_default(const struct field_spec *f, struct ival *out)
{
    out->type = IV_NIL;
    if (f->type == FT_STR_LIST) {
        out->type = IV_LIST;
        out->u.l.n = 0;
        return (out->u.l.v = calloc(1, sizeof(char *))) ? 0 : RF_ENOMEM;
    }
    if (f->type == FT_STR && !(f->flags & FF_NIL_OK)) {
        out->type = IV_STR;
        out->u.s = strdup(f->choices ? f->choices[0] : "");
        return out->u.s ? 0 : RF_ENOMEM;
    }
    return 0;
}

static void ival_pack(const struct ival *v, msgpack_packer *pk)
{
    switch (v->type) {
    case IV_NIL:
        msgpack_pack_nil(pk);
        break;
    case IV_STR:
        codec_pack_str(pk, v->u.s);
        break;
    case IV_INT:
        msgpack_pack_int64(pk, v->u.i);
        break;
    case IV_LIST:
        msgpack_pack_array(pk, v->u.l.n);
        for (uint32_t i = 0; i < v->u.l.n; i++)
            codec_pack_str(pk, v->u.l.v[i]);
        break;
    }
}

static int count_write(void *data, const char *buf, size_t len)
{
    (void)buf;
    *(size_t *)data += len;
    return 0;
}

/* Bytes of v as MessagePack (what ival_pack writes). */
static size_t ival_bytes(const struct ival *v)
{
    size_t n = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &n, count_write);
    ival_pack(v, &pk);
    return n;
}

/* ---- items ------------------------------------------------------------- */

static void item_free(struct item *it)
{
    if (!it)
        return;
    if (it->f)
        for (size_t i = 0; i < nfields(); i++)
            ival_free(&it->f[i]);
    free(it->f);
    free(it->parent);
    free(it);
}

/* Gives every field still nil its default. */
static int item_fill_defaults(struct item *it)
{
    for (size_t i = 0; i < nfields(); i++)
        if (it->f[i].type == IV_NIL && ival_default(&ops_item_fields[i], &it->f[i]))
            return RF_ENOMEM;
    return 0;
}

/* An item with every field nil (IV_NIL is 0). */
static struct item *item_alloc(const char *id)
{
    struct item *it = calloc(1, sizeof *it);
    if (!it || !(it->f = calloc(nfields(), sizeof *it->f))) {
        item_free(it);
        return NULL;
    }
    snprintf(it->id, sizeof it->id, "%s", id);
    return it;
}

static struct item *item_new(const char *id)
{
    struct item *it = item_alloc(id);
    if (it && item_fill_defaults(it)) {
        item_free(it);
        return NULL;
    }
    return it;
}

/* Sets the fields present in the validated map. On failure the item is
 * unchanged. */
static int item_apply(struct item *it, const msgpack_object *map)
{
    size_t n = map->via.map.size;
    /* On the stack for any map an item can have (loading 10,000 items
     * allocates nothing here); on the heap for a larger one. */
    struct ival vstack[32];
    int istack[32];
    bool heap = n > 32;
    struct ival *vals = heap ? calloc(n, sizeof *vals) : vstack;
    int *idx = heap ? calloc(n, sizeof *idx) : istack;
    int rc = vals && idx ? 0 : RF_ENOMEM;
    if (!heap) /* as calloc leaves them: every value nil */
        memset(vstack, 0, n * sizeof *vstack);
    for (size_t i = 0; i < n && !rc; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        /* item_pack() writes 4 keys, then the fields in table order */
        idx[i] = k->type == MSGPACK_OBJECT_STR
                     ? field_index_at(k->via.str.ptr, k->via.str.size, i >= 4 ? i - 4 : 0)
                     : -1;
        if (idx[i] >= 0)
            rc = ival_from(&ops_item_fields[idx[i]], &map->via.map.ptr[i].val, &vals[i]);
    }
    for (size_t i = 0; i < n && vals; i++) {
        if (!rc && idx[i] >= 0) {
            ival_free(&it->f[idx[i]]);
            it->f[idx[i]] = vals[i];
        } else {
            ival_free(&vals[i]);
        }
    }
    if (heap) {
        free(vals);
        free(idx);
    }
    return rc;
}

/* The item's field values as MessagePack: its weight in the room's budget. */
static size_t item_bytes(const struct item *it)
{
    size_t n = 0;
    for (size_t i = 0; i < nfields(); i++)
        n += ival_bytes(&it->f[i]);
    return n;
}

/* Brings it->bytes, and the backlog's sum, up to date after a change to it. */
static void item_account(struct backlog *b, struct item *it)
{
    size_t n = item_bytes(it);
    b->bytes = b->bytes - it->bytes + n;
    it->bytes = n;
}

/* What it->bytes would be with the validated fields of map applied: 0, or
 * RF_ENOMEM. Nothing changes. */
static int item_bytes_with(const struct item *it, const msgpack_object *map, size_t *out)
{
    size_t n = it->bytes;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        int idx = k->type == MSGPACK_OBJECT_STR ? field_index(k->via.str.ptr, k->via.str.size) : -1;
        struct ival v = {0};
        if (idx < 0)
            continue;
        if (ival_from(&ops_item_fields[idx], &map->via.map.ptr[i].val, &v))
            return RF_ENOMEM;
        n = n + ival_bytes(&v) - ival_bytes(&it->f[idx]);
        ival_free(&v);
    }
    *out = n;
    return 0;
}

/* Refuses (too_large, with a sentence) a change that takes the room's item
 * state from `now` to `after` bytes past --max-room-bytes. */
static int check_budget(struct req *q, size_t now, size_t after)
{
    size_t max = q->app->cfg.max_room_bytes;
    if (after <= max || after <= now)
        return 0;
    return req_fail(q, RF_ETOO_LARGE,
                    "The room's backlog would pass %zu bytes, the most a room holds "
                    "(it has %zu; this change adds %zu). Shorten or remove items first.",
                    max, now, after - now);
}

/* Whether v holds o (a validated value of its field). Allocates nothing. */
static bool ival_is(const struct ival *v, const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return v->type == IV_NIL;
    case MSGPACK_OBJECT_STR:
        return v->type == IV_STR && codec_str_eq(o, v->u.s);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return v->type == IV_INT && v->u.i == (int64_t)o->via.u64;
    case MSGPACK_OBJECT_ARRAY:
        if (v->type != IV_LIST || v->u.l.n != o->via.array.size)
            return false;
        for (uint32_t i = 0; i < v->u.l.n; i++)
            if (!codec_str_eq(&o->via.array.ptr[i], v->u.l.v[i]))
                return false;
        return true;
    default:
        return false;
    }
}

/* Whether every field of the validated map `set` has that value in it already. */
static bool item_has(const struct item *it, const msgpack_object *set)
{
    for (uint32_t i = 0; i < set->via.map.size; i++) {
        const msgpack_object *k = &set->via.map.ptr[i].key;
        int f = k->type == MSGPACK_OBJECT_STR ? field_index(k->via.str.ptr, k->via.str.size) : -1;
        if (f < 0 || !ival_is(&it->f[f], &set->via.map.ptr[i].val))
            return false;
    }
    return true;
}

void item_pack(const struct item *it, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4 + nfields());
    codec_pack_kv_str(pk, "id", it->id);
    codec_pack_kv_str(pk, "rank", it->rank);
    codec_pack_kv_str(pk, "parent", it->parent);
    codec_pack_kv_i64(pk, "updated_at", it->updated_at);
    for (size_t i = 0; i < nfields(); i++) {
        codec_pack_str(pk, ops_item_fields[i].name);
        ival_pack(&it->f[i], pk);
    }
}

static int save_item(struct app *app, struct room *r, const struct item *it)
{
    msgpack_packer *pk = store_packer(app->store);
    item_pack(it, pk);
    return store_put_item(app->store, r->id, it->id, it->rank);
}

/* ---- the ordered list --------------------------------------------------- */

void backlog_free(struct backlog *b)
{
    for (size_t i = 0; i < b->n; i++)
        item_free(b->v[i]);
    free(b->v);
    map_free(&b->by_id);
    memset(b, 0, sizeof *b);
}

struct item *backlog_get(const struct backlog *b, const char *id, size_t n)
{
    return map_get(&b->by_id, id, n);
}

/* Position of the first item whose rank is >= rank. */
static size_t lower_bound(const struct backlog *b, const char *rank)
{
    size_t lo = 0, hi = b->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (strcmp(b->v[mid]->rank, rank) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static size_t index_of(const struct backlog *b, const struct item *it)
{
    return lower_bound(b, it->rank);
}

/* Room in b->v for one more item, and it in the by_id map. */
static int make_room_for(struct backlog *b, struct item *it)
{
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 32;
        struct item **v = realloc(b->v, cap * sizeof *v);
        if (!v)
            return RF_ENOMEM;
        b->v = v;
        b->cap = cap;
    }
    return map_put(&b->by_id, it->id, it) ? RF_ENOMEM : 0;
}

/* Inserts it (with its rank set) in order; the by_id entry too. */
static int insert_sorted(struct backlog *b, struct item *it)
{
    if (make_room_for(b, it))
        return RF_ENOMEM;
    size_t at = lower_bound(b, it->rank);
    memmove(&b->v[at + 1], &b->v[at], (b->n - at) * sizeof *b->v);
    b->v[at] = it;
    b->n++;
    return 0;
}

static void remove_at(struct backlog *b, size_t at)
{
    map_del(&b->by_id, b->v[at]->id);
    memmove(&b->v[at], &b->v[at + 1], (b->n - at - 1) * sizeof *b->v);
    b->n--;
}

/* Loading: appends it (and its by_id entry); backlog_load_done() sorts. */
static int append_unsorted(struct backlog *b, struct item *it)
{
    if (make_room_for(b, it))
        return RF_ENOMEM;
    b->v[b->n++] = it;
    return 0;
}

static int by_rank(const void *a, const void *b)
{
    const struct item *x = *(struct item *const *)a, *y = *(struct item *const *)b;
    int c = strcmp(x->rank, y->rank);
    return c ? c : strcmp(x->id, y->id);
}

void backlog_load_done(struct backlog *b)
{
    if (b->n > 1)
        qsort(b->v, b->n, sizeof *b->v, by_rank);
}

int backlog_load_item(struct backlog *b, const char *id, const char *rank, const void *data,
                      size_t len)
{
    msgpack_zone z;
    msgpack_object o;
    const char *why;
    int rc = RF_EINTERNAL;
    struct item *it = NULL;
    msgpack_zone_init(&z, 1024);
    if (strlen(id) >= ITEM_ID_MAX || strlen(rank) > RANK_MAX ||
        codec_decode(data, len, &z, &o, &why) || !(it = item_alloc(id)))
        goto out;
    strcpy(it->rank, rank);
    const msgpack_object *parent = codec_get(&o, "parent");
    if (parent && parent->type == MSGPACK_OBJECT_STR && !(it->parent = codec_strdup(parent)))
        goto out;
    const msgpack_object *at = codec_get(&o, "updated_at");
    if (at && at->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        it->updated_at = (int64_t)at->via.u64;
    /* Stored items hold every field, status "split" included: apply them
     * without the client-side checks. */
    /* Defaults after the stored fields, for any a stored item lacks: not
     * made and thrown away for each of 10,000 items. */
    if (item_apply(it, &o) || item_fill_defaults(it) || append_unsorted(b, it))
        goto out;
    item_account(b, it);
    it = NULL;
    rc = 0;
out:
    item_free(it);
    msgpack_zone_destroy(&z);
    return rc;
}

/* Gives every item a fresh, evenly spaced key and announces it. */
static int rebalance(struct req *q)
{
    struct room *r = q->room;
    struct backlog *b = &r->backlog;
    char(*keys)[RANK_MAX + 1] = malloc((b->n ? b->n : 1) * sizeof *keys);
    if (!keys || rank_spread(b->n, keys)) {
        free(keys);
        return RF_ENOMEM;
    }
    for (size_t i = 0; i < b->n; i++) {
        strcpy(b->v[i]->rank, keys[i]);
        if (save_item(q->app, r, b->v[i])) {
            free(keys);
            room_evict(q->app, r->id);
            return RF_ENOMEM;
        }
    }
    free(keys);
    log_info("room %s: rank keys rebalanced over %zu items", r->id, b->n);
    struct event ev;
    room_event_begin(&ev, r, "items.reranked", q->who, 1);
    codec_pack_str(&ev.pk, "ranks");
    msgpack_pack_map(&ev.pk, b->n);
    for (size_t i = 0; i < b->n; i++)
        codec_pack_kv_str(&ev.pk, b->v[i]->id, b->v[i]->rank);
    return room_event_commit(q->app, &ev) ? 0 : RF_ENOMEM;
}

/* Computes a rank for a new position: right after `prev` (NULL: at the top),
 * before the item that follows it (skipping `skip`). Rebalances first when
 * the key would grow too long. */
static int rank_for(struct req *q, const struct item *prev, const struct item *skip,
                    char out[RANK_MAX + 1])
{
    struct backlog *b = &q->room->backlog;
    for (int attempt = 0; attempt < 2; attempt++) {
        size_t next = prev ? index_of(b, prev) + 1 : 0;
        if (next < b->n && b->v[next] == skip)
            next++;
        const char *lo = prev ? prev->rank : NULL;
        const char *hi = next < b->n ? b->v[next]->rank : NULL;
        if (rank_between(lo, hi, out, RANK_MAX + 1) == 0 && strlen(out) <= RANK_REBALANCE)
            return 0;
        if (attempt == 0) {
            int rc = rebalance(q);
            if (rc)
                return rc;
        }
    }
    log_error("room %s: no rank key even after rebalancing", q->room->id);
    return RF_EINTERNAL;
}

/* Resolves `after` of item.add / item.move: *prev is the item to go below,
 * NULL for the top; absent (for item.add) means the bottom. */
static int resolve_after(struct req *q, const struct item *moving, const struct item **prev)
{
    struct backlog *b = &q->room->backlog;
    const msgpack_object *after = codec_get(q->msg, "after");
    if (!after) {
        *prev = b->n ? b->v[b->n - 1] : NULL;
        return 0;
    }
    if (after->type == MSGPACK_OBJECT_NIL) {
        *prev = NULL;
        return 0;
    }
    *prev = backlog_get(b, after->via.str.ptr, after->via.str.size);
    if (!*prev)
        return req_fail(q, RF_ENOT_FOUND, "There is no item '%.*s' to place it after.",
                        (int)after->via.str.size, after->via.str.ptr);
    if (*prev == moving)
        return req_fail(q, RF_EBAD_REQUEST, "An item cannot be placed after itself.");
    return 0;
}

static struct item *get_item(struct req *q, const char *field)
{
    const msgpack_object *id = codec_get(q->msg, field);
    struct item *it = backlog_get(&q->room->backlog, id->via.str.ptr, id->via.str.size);
    if (!it)
        req_fail(q, RF_ENOT_FOUND, "There is no item '%.*s' in this room.", (int)id->via.str.size,
                 id->via.str.ptr);
    return it;
}

/* A new item from a client's map (validated here); not yet in the backlog. */
static struct item *new_item_from(struct req *q, const msgpack_object *map, int *rc)
{
    struct room *r = q->room;
    *rc = ops_validate_fields(ops_item_fields, map, false, true, q->why, sizeof q->why);
    if (*rc)
        return NULL;
    char id[ITEM_ID_MAX];
    snprintf(id, sizeof id, "i%llu", (unsigned long long)r->next_item);
    struct item *it = item_new(id);
    if (!it || item_apply(it, map)) {
        item_free(it);
        *rc = RF_ENOMEM;
        return NULL;
    }
    it->updated_at = now_ms();
    it->bytes = item_bytes(it);
    r->next_item++;
    return it;
}

/* ---- handlers ------------------------------------------------------------ */

int backlog_handle_add(struct req *q)
{
    struct room *r = q->room;
    const struct item *prev;
    int rc;
    if (r->backlog.n >= BACKLOG_MAX_ITEMS)
        return req_fail(q, RF_ETOO_LARGE, "The backlog has %d items, the most a room holds.",
                        BACKLOG_MAX_ITEMS);
    if ((rc = resolve_after(q, NULL, &prev)))
        return rc;
    struct item *it = new_item_from(q, codec_get(q->msg, "item"), &rc);
    if (!it)
        return rc;
    if ((rc = check_budget(q, r->backlog.bytes, r->backlog.bytes + it->bytes)) ||
        (rc = rank_for(q, prev, NULL, it->rank)) || (rc = insert_sorted(&r->backlog, it))) {
        item_free(it);
        return rc;
    }
    r->backlog.bytes += it->bytes;
    if (save_item(q->app, r, it) || room_save_meta(q->app, r)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    room_event_begin(&ev, r, "item.added", q->who, 1);
    codec_pack_str(&ev.pk, "item");
    item_pack(it, &ev.pk);
    uint64_t seq = room_event_commit(q->app, &ev);
    if (seq) {
        struct codec_buf b;
        msgpack_packer pk;
        req_ok_begin(q, &b, &pk, 2);
        codec_pack_kv_u64(&pk, "seq", seq);
        codec_pack_kv_str(&pk, "item", it->id);
        req_ok_end(q, &b);
    }
    return 0;
}

uint64_t backlog_set_estimate(struct app *app, struct room *r, struct item *it,
                              const char *estimate, const struct participant *by)
{
    struct ival *v = &it->f[field_index("estimate", 8)];
    char *e = strdup(estimate);
    if (!e)
        return 0;
    ival_free(v);
    v->type = IV_STR;
    v->u.s = e;
    item_account(&r->backlog, it);
    it->updated_at = now_ms();
    if (save_item(app, r, it)) {
        room_evict(app, r->id);
        return 0;
    }
    struct event ev;
    room_event_begin(&ev, r, "item.updated", by, 2);
    codec_pack_kv_str(&ev.pk, "item", it->id);
    codec_pack_str(&ev.pk, "set");
    msgpack_pack_map(&ev.pk, 1);
    codec_pack_kv_str(&ev.pk, "estimate", e);
    return room_event_commit(app, &ev);
}

int backlog_handle_update(struct req *q)
{
    struct room *r = q->room;
    struct item *it = get_item(q, "item");
    if (!it)
        return RF_ENOT_FOUND;
    const msgpack_object *set = codec_get(q->msg, "set");
    if (set->via.map.size == 0)
        return req_fail(q, RF_EBAD_REQUEST, "Field 'set' must hold at least one item field.");
    int rc = ops_validate_fields(ops_item_fields, set, true, true, q->why, sizeof q->why);
    if (rc)
        return rc;
    if (item_has(it, set)) { /* the values it has: nothing changes */
        req_ok_unchanged(q);
        return 0;
    }
    size_t after;
    if ((rc = item_bytes_with(it, set, &after)) ||
        (rc = check_budget(q, r->backlog.bytes, r->backlog.bytes - it->bytes + after)) ||
        (rc = item_apply(it, set)))
        return rc;
    item_account(&r->backlog, it);
    it->updated_at = now_ms();
    if (save_item(q->app, r, it)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    room_event_begin(&ev, r, "item.updated", q->who, 2);
    codec_pack_kv_str(&ev.pk, "item", it->id);
    codec_pack_str(&ev.pk, "set");
    codec_pack_obj(&ev.pk, set);
    return room_event_reply(q, &ev);
}

int backlog_handle_move(struct req *q)
{
    struct room *r = q->room;
    struct item *it = get_item(q, "item");
    const struct item *prev;
    char rank[RANK_MAX + 1];
    int rc;
    if (!it)
        return RF_ENOT_FOUND;
    if ((rc = resolve_after(q, it, &prev)))
        return rc;
    size_t at = index_of(&r->backlog, it);
    if (prev == (at ? r->backlog.v[at - 1] : NULL)) { /* already there */
        req_ok_unchanged(q);
        return 0;
    }
    if ((rc = rank_for(q, prev, it, rank)))
        return rc;
    remove_at(&r->backlog, index_of(&r->backlog, it));
    strcpy(it->rank, rank);
    it->updated_at = now_ms();
    if (insert_sorted(&r->backlog, it) || save_item(q->app, r, it)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    room_event_begin(&ev, r, "item.moved", q->who, 3);
    codec_pack_kv_str(&ev.pk, "item", it->id);
    codec_pack_kv_str(&ev.pk, "after", prev ? prev->id : NULL);
    codec_pack_kv_str(&ev.pk, "rank", it->rank);
    return room_event_reply(q, &ev);
}

int backlog_handle_remove(struct req *q)
{
    struct room *r = q->room;
    struct item *it = get_item(q, "item");
    if (!it)
        return RF_ENOT_FOUND;
    if (store_del_item(q->app->store, r->id, it->id))
        return RF_ENOMEM;
    remove_at(&r->backlog, index_of(&r->backlog, it));
    r->backlog.bytes -= it->bytes;
    if (r->focus && strcmp(r->focus, it->id) == 0) {
        free(r->focus);
        r->focus = NULL;
        if (room_save_meta(q->app, r)) {
            item_free(it);
            room_evict(q->app, r->id);
            return RF_ENOMEM;
        }
    }
    hint_drop_item(r, it->id);
    struct event ev;
    room_event_begin(&ev, r, "item.removed", q->who, 1);
    codec_pack_kv_str(&ev.pk, "item", it->id);
    item_free(it);
    return room_event_reply(q, &ev);
}

int backlog_handle_split(struct req *q)
{
    struct room *r = q->room;
    struct item *parent = get_item(q, "item");
    const msgpack_object *children = codec_get(q->msg, "children");
    const msgpack_object *pattern = codec_get(q->msg, "pattern");
    uint32_t n = children->via.array.size;
    int rc = 0;
    if (!parent)
        return RF_ENOT_FOUND;
    if (parent->f[field_index("status", 6)].type == IV_STR &&
        strcmp(parent->f[field_index("status", 6)].u.s, "split") == 0)
        return req_fail(q, RF_ECONFLICT, "This item has been split already; split its children.");
    if (r->backlog.n + n > BACKLOG_MAX_ITEMS)
        return req_fail(q, RF_ETOO_LARGE, "The backlog would pass %d items, the most a room holds.",
                        BACKLOG_MAX_ITEMS);
    /* Validate every child before changing anything: all or nothing. */
    for (uint32_t i = 0; i < n; i++) {
        if ((rc = ops_validate_fields(ops_item_fields, &children->via.array.ptr[i], false, true,
                                      q->why, sizeof q->why))) {
            size_t len = strlen(q->why);
            snprintf(q->why + len, sizeof q->why - len, " (child %u)", i + 1);
            return rc;
        }
    }
    struct item **kids = calloc(n, sizeof *kids);
    if (!kids)
        return RF_ENOMEM;
    uint64_t first_id = r->next_item;
    for (uint32_t i = 0; i < n && !rc; i++) {
        kids[i] = new_item_from(q, &children->via.array.ptr[i], &rc);
        if (kids[i] && !(kids[i]->parent = strdup(parent->id)))
            rc = RF_ENOMEM;
    }
    /* The children, and the parent's status becoming "split". */
    size_t grow = 0;
    char word[] = "split";
    const struct ival split = {IV_STR, {.s = word}};
    for (uint32_t i = 0; i < n && !rc; i++)
        grow += kids[i]->bytes;
    if (!rc)
        rc = check_budget(q, r->backlog.bytes,
                          r->backlog.bytes + grow + ival_bytes(&split) -
                              ival_bytes(&parent->f[field_index("status", 6)]));
    /* Ranks: between the parent and the item after it, in the given order. */
    const struct item *prev = parent;
    for (uint32_t i = 0; i < n && !rc; i++) {
        if (!(rc = rank_for(q, prev, NULL, kids[i]->rank)))
            rc = insert_sorted(&r->backlog, kids[i]);
        if (!rc)
            prev = kids[i];
        else
            break;
    }
    if (rc) {
        for (uint32_t i = 0; i < n; i++) {
            if (kids[i] && backlog_get(&r->backlog, kids[i]->id, strlen(kids[i]->id)))
                remove_at(&r->backlog, index_of(&r->backlog, kids[i]));
            item_free(kids[i]);
        }
        free(kids);
        r->next_item = first_id;
        return rc;
    }
    struct ival *status = &parent->f[field_index("status", 6)];
    ival_free(status);
    status->type = IV_STR;
    status->u.s = strdup("split");
    if (status->u.s)
        item_account(&r->backlog, parent);
    r->backlog.bytes += grow;
    parent->updated_at = now_ms();
    int bad = !status->u.s || save_item(q->app, r, parent) || room_save_meta(q->app, r);
    for (uint32_t i = 0; i < n && !bad; i++)
        bad = save_item(q->app, r, kids[i]);
    if (bad) {
        free(kids);
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    hint_drop_item(r, parent->id);
    struct event ev;
    room_event_begin(&ev, r, "item.split", q->who, 3);
    codec_pack_kv_str(&ev.pk, "item", parent->id);
    codec_pack_str(&ev.pk, "children");
    msgpack_pack_array(&ev.pk, n);
    for (uint32_t i = 0; i < n; i++)
        item_pack(kids[i], &ev.pk);
    codec_pack_str(&ev.pk, "pattern");
    if (pattern)
        codec_pack_obj(&ev.pk, pattern);
    else
        msgpack_pack_nil(&ev.pk);
    free(kids);
    return room_event_reply(q, &ev);
}

int backlog_handle_focus(struct req *q)
{
    struct room *r = q->room;
    const msgpack_object *id = codec_get(q->msg, "item");
    char *focus = NULL;
    if (id->type == MSGPACK_OBJECT_STR) {
        struct item *it = get_item(q, "item");
        if (!it)
            return RF_ENOT_FOUND;
        if (r->focus && strcmp(r->focus, it->id) == 0) { /* already focused */
            req_ok_unchanged(q);
            return 0;
        }
        if (!(focus = strdup(it->id)))
            return RF_ENOMEM;
    } else if (!r->focus) {
        req_ok_unchanged(q);
        return 0;
    }
    free(r->focus);
    r->focus = focus;
    if (room_save_meta(q->app, r)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    room_event_begin(&ev, r, "focus", q->who, 1);
    codec_pack_kv_str(&ev.pk, "item", focus);
    return room_event_reply(q, &ev);
}
