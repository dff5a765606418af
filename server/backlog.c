#include "backlog.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "log.h"
#include "ops.h"
#include "store.h"

/* The names of enum item_field, in the order of protocol/ops.c's table. */
static const char *const FIELD_NAMES[ITEM_F__COUNT] = {
    [ITEM_F_TITLE] = "title",
    [ITEM_F_KIND] = "kind",
    [ITEM_F_PERSONA] = "persona",
    [ITEM_F_GOAL] = "goal",
    [ITEM_F_BENEFIT] = "benefit",
    [ITEM_F_NOTES] = "notes",
    [ITEM_F_ACCEPTANCE] = "acceptance",
    [ITEM_F_ESTIMATE] = "estimate",
    [ITEM_F_VALUE] = "value",
    [ITEM_F_MOSCOW] = "moscow",
    [ITEM_F_STATUS] = "status",
    [ITEM_F_LABELS] = "labels",
    [ITEM_F_BUSINESS_VALUE] = "business_value",
    [ITEM_F_TIME_CRITICALITY] = "time_criticality",
    [ITEM_F_RISK_REDUCTION] = "risk_reduction",
    [ITEM_F_PERSONA_ID] = "persona_id",
    [ITEM_F_OUTCOMES] = "outcomes",
    [ITEM_F_STEP] = "step",
    [ITEM_F_SLICE] = "slice",
};

int backlog_check_fields(void)
{
    size_t n = 0;
    while (ops_item_fields[n].name)
        n++;
    if (n != ITEM_F__COUNT) {
        log_error("protocol/ops.c has %zu item fields, enum item_field (server/backlog.h) %d", n,
                  ITEM_F__COUNT);
        return RF_EINTERNAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ops_item_fields[i].name, FIELD_NAMES[i]) != 0) {
            log_error("item field %zu is '%s' in protocol/ops.c, '%s' in server/backlog.h", i,
                      ops_item_fields[i].name, FIELD_NAMES[i]);
            return RF_EINTERNAL;
        }
    }
    return 0;
}

/* The index of field s[0..n), or -1. `hint` is where it probably is (a
 * stored item has its fields in table order): checked first. */
static int field_index_at(const char *s, size_t n, size_t hint)
{
    if (hint < ITEM_F__COUNT && codec_str_eq_n(s, n, ops_item_fields[hint].name))
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

void backlog_ival_free(struct ival *v)
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

int backlog_ival_copy(struct ival *dst, const struct ival *src)
{
    *dst = *src;
    if (src->type == IV_STR) {
        if (!(dst->u.s = strdup(src->u.s)))
            goto fail;
    } else if (src->type == IV_LIST) {
        dst->u.l.n = 0;
        if (!(dst->u.l.v = calloc(src->u.l.n ? src->u.l.n : 1, sizeof *dst->u.l.v)))
            goto fail;
        for (uint32_t i = 0; i < src->u.l.n; i++, dst->u.l.n++)
            if (!(dst->u.l.v[i] = strdup(src->u.l.v[i]))) {
                backlog_ival_free(dst);
                return RF_ENOMEM;
            }
    }
    return 0;
fail:
    dst->type = IV_NIL;
    return RF_ENOMEM;
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
                backlog_ival_free(out);
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
    backlog_ival_pack(v, pk);
}

void backlog_ival_pack(const struct ival *v, msgpack_packer *pk)
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
size_t backlog_ival_bytes(const struct ival *v)
{
    size_t n = 0;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &n, count_write);
    ival_pack(v, &pk);
    return n;
}

/* ---- items ------------------------------------------------------------- */

void backlog_item_free(struct item *it)
{
    if (!it)
        return;
    if (it->f)
        for (size_t i = 0; i < ITEM_F__COUNT; i++)
            backlog_ival_free(&it->f[i]);
    free(it->f);
    free(it->parent);
    backlog_split_free(it->split);
    free(it);
}

void backlog_split_free(struct item_split *sp)
{
    if (!sp)
        return;
    free(sp->was);
    free(sp->kids);
    free(sp);
}

void backlog_touch(struct item *it, uint64_t seq, const char *pid, int64_t now)
{
    it->seq = seq;
    snprintf(it->by, sizeof it->by, "%s", pid ? pid : "");
    it->updated_at = now;
}

/* Gives every field still nil its default. */
static int item_fill_defaults(struct item *it)
{
    for (size_t i = 0; i < ITEM_F__COUNT; i++)
        if (it->f[i].type == IV_NIL && ival_default(&ops_item_fields[i], &it->f[i]))
            return RF_ENOMEM;
    return 0;
}

/* An item with every field nil (IV_NIL is 0). */
static struct item *item_alloc(const char *id)
{
    struct item *it = calloc(1, sizeof *it);
    if (!it || !(it->f = calloc(ITEM_F__COUNT, sizeof *it->f))) {
        backlog_item_free(it);
        return NULL;
    }
    snprintf(it->id, sizeof it->id, "%s", id);
    list_init(&it->hl_age);
    list_init(&it->hl_dirty);
    return it;
}

struct item *backlog_item_new(const char *id)
{
    struct item *it = item_alloc(id);
    if (it && item_fill_defaults(it)) {
        backlog_item_free(it);
        return NULL;
    }
    return it;
}

/* Sets the fields present in the validated map. On failure the item is
 * unchanged. */
int backlog_item_apply(struct item *it, const msgpack_object *map)
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
        /* backlog_item_pack() writes 4 keys, then the fields in table order */
        idx[i] = k->type == MSGPACK_OBJECT_STR
                     ? field_index_at(k->via.str.ptr, k->via.str.size, i >= 4 ? i - 4 : 0)
                     : -1;
        if (idx[i] >= 0)
            rc = ival_from(&ops_item_fields[idx[i]], &map->via.map.ptr[i].val, &vals[i]);
    }
    for (size_t i = 0; i < n && vals; i++) {
        if (!rc && idx[i] >= 0) {
            backlog_ival_free(&it->f[idx[i]]);
            it->f[idx[i]] = vals[i];
        } else {
            backlog_ival_free(&vals[i]);
        }
    }
    if (heap) {
        free(vals);
        free(idx);
    }
    return rc;
}

/* The item's field values as MessagePack: its weight in the room's budget. */
size_t backlog_item_bytes(const struct item *it)
{
    size_t n = 0;
    for (size_t i = 0; i < ITEM_F__COUNT; i++)
        n += backlog_ival_bytes(&it->f[i]);
    return n;
}

/* Brings it->bytes, and the backlog's sum, up to date after a change to it. */
/* backlog_account() without telling the watcher (loading). */
static void account(struct backlog *b, struct item *it)
{
    size_t n = backlog_item_bytes(it);
    b->bytes = b->bytes - it->bytes + n;
    it->bytes = n;
}

void backlog_account(struct backlog *b, struct item *it)
{
    account(b, it);
    if (b->watch)
        b->watch->changed(b->watch_arg, it);
}

/* What it->bytes would be with the validated fields of map applied: 0, or
 * RF_ENOMEM. Nothing changes. */
int backlog_item_bytes_with(const struct item *it, const msgpack_object *map, size_t *out)
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
        n = n + backlog_ival_bytes(&v) - backlog_ival_bytes(&it->f[idx]);
        backlog_ival_free(&v);
    }
    *out = n;
    return 0;
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
bool backlog_item_has(const struct item *it, const msgpack_object *set)
{
    for (uint32_t i = 0; i < set->via.map.size; i++) {
        const msgpack_object *k = &set->via.map.ptr[i].key;
        int f = k->type == MSGPACK_OBJECT_STR ? field_index(k->via.str.ptr, k->via.str.size) : -1;
        if (f < 0 || !ival_is(&it->f[f], &set->via.map.ptr[i].val))
            return false;
    }
    return true;
}

/* The item's 4 keys and its fields (4 + ITEM_F__COUNT pairs of a map). */
static void pack_pairs(const struct item *it, msgpack_packer *pk)
{
    codec_pack_kv_str(pk, "id", it->id);
    codec_pack_kv_str(pk, "rank", it->rank);
    codec_pack_kv_str(pk, "parent", it->parent);
    codec_pack_kv_i64(pk, "updated_at", it->updated_at);
    for (size_t i = 0; i < ITEM_F__COUNT; i++) {
        codec_pack_str(pk, ops_item_fields[i].name);
        ival_pack(&it->f[i], pk);
    }
}

void backlog_item_pack(const struct item *it, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4 + ITEM_F__COUNT);
    pack_pairs(it, pk);
}

/* The stored map: backlog_item_pack()'s keys and fields, then seq, by and
 * split (nil, or {seq, was, children}). */
static void pack_stored(const struct item *it, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4 + ITEM_F__COUNT + 3);
    pack_pairs(it, pk);
    codec_pack_kv_u64(pk, "seq", it->seq);
    codec_pack_kv_str(pk, "by", it->by);
    codec_pack_str(pk, "split");
    if (!it->split) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_map(pk, 3);
    codec_pack_kv_u64(pk, "seq", it->split->seq);
    codec_pack_kv_str(pk, "was", it->split->was);
    codec_pack_str(pk, "children");
    msgpack_pack_array(pk, it->split->n);
    for (uint32_t i = 0; i < it->split->n; i++)
        codec_pack_str(pk, it->split->kids[i]);
}

int backlog_save_item(struct store *s, const char *room, const struct item *it)
{
    pack_stored(it, store_packer(s));
    return store_put_item(s, room, it->id, it->rank);
}

/* The split record of a stored item map (o: its "split" value). */
static int load_split(struct item *it, const msgpack_object *o)
{
    const msgpack_object *seq = codec_get(o, "seq"), *was = codec_get(o, "was"),
                         *kids = codec_get(o, "children");
    if (!seq || seq->type != MSGPACK_OBJECT_POSITIVE_INTEGER || !was ||
        was->type != MSGPACK_OBJECT_STR || !kids || kids->type != MSGPACK_OBJECT_ARRAY)
        return 0; /* not one we wrote: no unsplit for it */
    struct item_split *sp = calloc(1, sizeof *sp);
    if (!sp || !(sp->was = codec_strdup(was)) ||
        !(sp->kids = calloc(kids->via.array.size ? kids->via.array.size : 1, sizeof *sp->kids))) {
        backlog_split_free(sp);
        return RF_ENOMEM;
    }
    sp->seq = seq->via.u64;
    for (uint32_t i = 0; i < kids->via.array.size; i++) {
        const msgpack_object *k = &kids->via.array.ptr[i];
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size < ITEM_ID_MAX) {
            memcpy(sp->kids[sp->n], k->via.str.ptr, k->via.str.size);
            sp->kids[sp->n++][k->via.str.size] = 0;
        }
    }
    it->split = sp;
    return 0;
}

/* ---- the ordered list --------------------------------------------------- */

void backlog_free(struct backlog *b)
{
    for (size_t i = 0; i < b->n; i++)
        backlog_item_free(b->v[i]);
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

size_t backlog_index_of(const struct backlog *b, const struct item *it)
{
    /* Ranks loaded from the database may repeat (sorted by id): it is in that run. */
    size_t at = lower_bound(b, it->rank);
    while (at < b->n && b->v[at] != it)
        at++;
    return at;
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
int backlog_insert(struct backlog *b, struct item *it)
{
    if (b->watch && b->watch->reserve(b->watch_arg, b->n + 1))
        return RF_ENOMEM;
    if (make_room_for(b, it))
        return RF_ENOMEM;
    size_t at = lower_bound(b, it->rank);
    memmove(&b->v[at + 1], &b->v[at], (b->n - at) * sizeof *b->v);
    b->v[at] = it;
    b->n++;
    if (b->watch)
        b->watch->inserted(b->watch_arg, it, at);
    return 0;
}

void backlog_remove_at(struct backlog *b, size_t at)
{
    if (b->watch)
        b->watch->removing(b->watch_arg, b->v[at], at);
    map_del(&b->by_id, b->v[at]->id);
    memmove(&b->v[at], &b->v[at + 1], (b->n - at - 1) * sizeof *b->v);
    b->n--;
}

void backlog_move(struct backlog *b, struct item *it, const char *rank)
{
    size_t from = backlog_index_of(b, it);
    if (b->watch)
        b->watch->moving(b->watch_arg, it, from);
    memmove(&b->v[from], &b->v[from + 1], (b->n - from - 1) * sizeof *b->v);
    b->n--;
    strcpy(it->rank, rank);
    size_t at = lower_bound(b, it->rank);
    memmove(&b->v[at + 1], &b->v[at], (b->n - at) * sizeof *b->v);
    b->v[at] = it;
    b->n++;
    if (b->watch)
        b->watch->moved(b->watch_arg, it, at);
}

void backlog_reorder(struct backlog *b, struct item *const *v, const char (*ranks)[RANK_MAX + 1])
{
    for (size_t i = 0; i < b->n; i++) {
        strcpy(v[i]->rank, ranks[i]);
        b->v[i] = v[i];
    }
    if (b->watch)
        b->watch->reordered(b->watch_arg);
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
    const msgpack_object *seq = codec_get(&o, "seq"), *by = codec_get(&o, "by"),
                         *split = codec_get(&o, "split");
    if (seq && seq->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        it->seq = seq->via.u64;
    if (by && by->type == MSGPACK_OBJECT_STR && by->via.str.size < sizeof it->by)
        memcpy(it->by, by->via.str.ptr, by->via.str.size);
    if (split && split->type == MSGPACK_OBJECT_MAP && load_split(it, split))
        goto out;
    /* Stored items hold every field, status "split" included: apply them
     * without the client-side checks. */
    /* Defaults after the stored fields, for any a stored item lacks: not
     * made and thrown away for each of 10,000 items. */
    if (backlog_item_apply(it, &o) || item_fill_defaults(it) || append_unsorted(b, it))
        goto out;
    account(b, it); /* the watcher learns loaded items all at once (health_rebuild) */
    it = NULL;
    rc = 0;
out:
    backlog_item_free(it);
    msgpack_zone_destroy(&z);
    return rc;
}
