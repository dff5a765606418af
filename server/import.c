#include "import.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "backlog.h"
#include "clock.h"
#include "errors.h"
#include "event.h"
#include "import_int.h"
#include "json.h"
#include "log.h"
#include "map.h"
#include "ops.h"
#include "rank.h"
#include "room.h"
#include "store.h"

#define PREVIEW_ROWS 5 /* items described in the answer */

void import_warn(struct import *im, const char *fmt, ...)
{
    if (im->nwarn < IMPORT_WARNINGS_MAX) {
        char line[300];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        im->warn[im->nwarn] = strdup(line); /* out of memory: the warning is lost */
    }
    im->nwarn++;
}

int import_fail(struct import *im, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(im->why, sizeof im->why, fmt, ap);
    va_end(ap);
    return RF_EBAD_REQUEST;
}

static char *dupn(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = '\0';
    }
    return d;
}

int import_add_item(struct import *im, const msgpack_object *map, const char *src, size_t srclen,
                    const char *parent, size_t parentlen, const char *rank, size_t ranklen,
                    const int64_t *updated_at, const char *where)
{
    char why[300];
    if (im->n >= BACKLOG_MAX_ITEMS) { /* the limit of any room: no need to read on */
        import_fail(im,
                    "The file holds more than %d items, the most a room holds (%s is item %d); "
                    "split it into smaller files.",
                    BACKLOG_MAX_ITEMS, where, BACKLOG_MAX_ITEMS + 1);
        return RF_ETOO_LARGE;
    }
    /* "split" is a status item.split gives: an import may bring it. */
    const msgpack_object *status = codec_get(map, "status");
    msgpack_object view = *map;
    msgpack_object_kv kv[ITEM_F__COUNT + 8];
    if (status && codec_str_eq(status, "split") && map->via.map.size <= sizeof kv / sizeof *kv) {
        uint32_t k = 0;
        for (uint32_t i = 0; i < map->via.map.size; i++)
            if (&map->via.map.ptr[i].val != status)
                kv[k++] = map->via.map.ptr[i];
        view.via.map.ptr = kv;
        view.via.map.size = k;
    }
    if (ops_validate_fields(ops_item_fields, &view, false, false, why, sizeof why))
        return import_fail(im, "%s: %s", where, why);
    if (im->n == im->cap) {
        size_t cap = im->cap ? im->cap * 2 : 64;
        struct import_item *v = realloc(im->v, cap * sizeof *v);
        if (!v)
            return RF_ENOMEM;
        im->v = v;
        im->cap = cap;
    }
    struct import_item *x = &im->v[im->n];
    *x = (struct import_item){0};
    x->it = backlog_item_new("");
    if (!x->it || backlog_item_apply(x->it, map)) {
        backlog_item_free(x->it);
        return RF_ENOMEM;
    }
    im->n++; /* freed with the import from here on */
    char num[24];
    if (!src) {
        snprintf(num, sizeof num, "%zu", im->n);
        src = num;
        srclen = strlen(num);
    }
    if (!(x->src = dupn(src, srclen)) || (parent && !(x->parent = dupn(parent, parentlen))))
        return RF_ENOMEM;
    if (rank && ranklen <= RANK_MAX) {
        memcpy(x->it->rank, rank, ranklen);
        x->it->rank[ranklen] = '\0';
        x->rank_given = rank_valid(x->it->rank);
    }
    if (updated_at) {
        x->it->updated_at = *updated_at;
        x->time_given = true;
    }
    x->it->bytes = backlog_item_bytes(x->it);
    return 0;
}

/* ---- the sections of a JSON document ------------------------------------- */

/* The string under key in map m, or NULL (absent or nil); *bad when it is
 * there but no string. */
static const msgpack_object *str_at(const msgpack_object *m, const char *key, bool *bad)
{
    const msgpack_object *v = codec_get(m, key);
    if (!v || v->type == MSGPACK_OBJECT_NIL)
        return NULL;
    if (v->type != MSGPACK_OBJECT_STR)
        *bad = true;
    return v->type == MSGPACK_OBJECT_STR ? v : NULL;
}

/* "items": the backlog, as the export writes it (backlog_item_pack maps:
 * id, rank, parent, updated_at and the item fields). */
static int items_parse(struct import *im, void **state, const msgpack_object *v)
{
    (void)state;
    if (v->type != MSGPACK_OBJECT_ARRAY)
        return import_fail(im, "\"items\" must be an array of items.");
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *m = &v->via.array.ptr[i];
        char where[48];
        bool bad = false;
        snprintf(where, sizeof where, "Item %u of \"items\"", i + 1);
        if (m->type != MSGPACK_OBJECT_MAP)
            return import_fail(im, "%s is not an object.", where);
        const msgpack_object *id = str_at(m, "id", &bad), *parent = str_at(m, "parent", &bad),
                             *rank = str_at(m, "rank", &bad), *at = codec_get(m, "updated_at");
        if (bad)
            return import_fail(im, "%s: id, parent and rank are strings (or null).", where);
        int64_t t = 0;
        bool has_t = at && (at->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                            at->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
        if (has_t)
            t = at->via.i64;
        int rc = import_add_item(im, m, id ? id->via.str.ptr : NULL, id ? id->via.str.size : 0,
                                 parent ? parent->via.str.ptr : NULL,
                                 parent ? parent->via.str.size : 0, rank ? rank->via.str.ptr : NULL,
                                 rank ? rank->via.str.size : 0, has_t ? &t : NULL, where);
        if (rc)
            return rc;
    }
    return 0;
}

/* "rounds" and "kano": the votes and answers of another room's participants,
 * who are not this room's: not imported, said so. */
static int history_parse(struct import *im, void **state, const msgpack_object *v)
{
    (void)state;
    if (v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size)
        import_warn(im,
                    "The file's %u %s are not imported: they belong to the participants of the "
                    "room it was exported from.",
                    v->via.array.size, "poker rounds");
    return 0;
}

static int kano_parse(struct import *im, void **state, const msgpack_object *v)
{
    (void)state;
    if (v->type == MSGPACK_OBJECT_ARRAY && v->via.array.size)
        import_warn(im,
                    "The file's %u Kano surveys are not imported: their answers belong to the "
                    "participants of the room it was exported from.",
                    v->via.array.size);
    return 0;
}

/* The keys of a JSON document, each read by its own importer. The export's
 * description of its room (format, exported_at, seq, room, participants)
 * is read by none: it names the room it came from. A section that a room
 * gains adds one row (and its key to the export). */
static const struct import_section SECTIONS[] = {
    {"items", items_parse, NULL, NULL, NULL, NULL, NULL},
    {"rounds", history_parse, NULL, NULL, NULL, NULL, NULL},
    {"kano", kano_parse, NULL, NULL, NULL, NULL, NULL},
    {"format", NULL, NULL, NULL, NULL, NULL, NULL},
    {"exported_at", NULL, NULL, NULL, NULL, NULL, NULL},
    {"seq", NULL, NULL, NULL, NULL, NULL, NULL},
    {"room", NULL, NULL, NULL, NULL, NULL, NULL},
    {"participants", NULL, NULL, NULL, NULL, NULL, NULL},
    {"map", import_map_parse, import_map_check, import_map_apply, import_map_pack, import_map_count,
     import_map_release},
    {"product", import_product_parse, import_product_check, import_product_apply,
     import_product_pack_room, import_product_count, import_product_release},
};
#define NSECTIONS (sizeof SECTIONS / sizeof *SECTIONS)
_Static_assert(NSECTIONS <= IMPORT_SECTIONS_MAX, "raise IMPORT_SECTIONS_MAX");

static int json_parse(struct import *im)
{
    struct codec_buf b;
    msgpack_zone z;
    msgpack_object doc;
    size_t off = 0;
    codec_buf_init(&b, 0);
    msgpack_zone_init(&z, 4096);
    int rc = json_to_msgpack(im->body, im->len, &b, im->why, sizeof im->why);
    if (!rc && msgpack_unpack(b.data, b.len, &off, &z, &doc) != MSGPACK_UNPACK_SUCCESS)
        rc = RF_ENOMEM;
    if (!rc && doc.type != MSGPACK_OBJECT_MAP)
        rc = import_fail(im, "The JSON must be an object with \"items\", as an export writes it.");
    if (!rc && !codec_get(&doc, "items"))
        rc = import_fail(im, "The JSON has no \"items\": import a room's JSON export, or a Jira "
                             "CSV (format=csv).");
    for (uint32_t i = 0; !rc && i < doc.via.map.size; i++) {
        const msgpack_object_kv *kv = &doc.via.map.ptr[i];
        size_t s = 0;
        while (s < NSECTIONS && !codec_str_eq(&kv->key, SECTIONS[s].key))
            s++;
        if (s == NSECTIONS) {
            import_warn(im, "The key \"%.*s\" is not imported: this server does not know it.",
                        kv->key.type == MSGPACK_OBJECT_STR ? (int)kv->key.via.str.size : 1,
                        kv->key.type == MSGPACK_OBJECT_STR ? kv->key.via.str.ptr : "?");
            continue;
        }
        if (im->present[s]) {
            rc = import_fail(im, "The key \"%s\" appears twice.", SECTIONS[s].key);
            break;
        }
        im->present[s] = true;
        if (SECTIONS[s].parse)
            rc = SECTIONS[s].parse(im, &im->state[s], &kv->val);
    }
    msgpack_zone_destroy(&z);
    codec_buf_free(&b);
    return rc;
}

/* Every item's parent, which must be one of the imported items, found by
 * its id in the file; ids unique; no cycle of parents. */
static int link_parents(struct import *im)
{
    struct map ids = MAP_INIT;
    int rc = 0;
    for (size_t i = 0; i < im->n && !rc; i++) {
        if (map_get(&ids, im->v[i].src, strlen(im->v[i].src)))
            rc = import_fail(im, "Two items have the id '%s'; ids must be unique.", im->v[i].src);
        else if (map_put(&ids, im->v[i].src, &im->v[i]))
            rc = RF_ENOMEM;
    }
    for (size_t i = 0; i < im->n && !rc; i++) {
        if (!im->v[i].parent)
            continue;
        struct import_item *p = map_get(&ids, im->v[i].parent, strlen(im->v[i].parent));
        if (!p)
            rc = import_fail(im, "The item '%s' names the parent '%s', which is not in the file.",
                             im->v[i].src, im->v[i].parent);
        else
            im->v[i].up = (size_t)(p - im->v);
    }
    map_free(&ids);
    /* A cycle: walking up from an item comes back to an item of the same
     * walk. mark[i]: 0 unseen, walk number + 1 while (or after) walked. */
    size_t *mark = rc ? NULL : calloc(im->n ? im->n : 1, sizeof *mark);
    if (!rc && !mark)
        rc = RF_ENOMEM;
    for (size_t i = 0; i < im->n && !rc; i++) {
        size_t k = i;
        while (!mark[k]) {
            mark[k] = i + 1;
            if (!im->v[k].parent)
                break;
            k = im->v[k].up;
            if (mark[k] == i + 1)
                rc = import_fail(im, "The parents of item '%s' form a cycle.", im->v[k].src);
        }
    }
    free(mark);
    return rc;
}

static void import_work(uv_work_t *w)
{
    struct import *im = w->data;
    im->rc = im->csv ? import_csv(im) : json_parse(im);
    if (!im->rc)
        im->rc = link_parents(im);
    if (im->rc == RF_ENOMEM)
        snprintf(im->why, sizeof im->why, "The server ran out of memory reading the file.");
    free(im->body); /* the items own copies of what they need */
    im->body = NULL;
}

static void import_after(uv_work_t *w, int status)
{
    struct import *im = w->data;
    if (status && !im->rc) {
        im->rc = RF_EINTERNAL;
        snprintf(im->why, sizeof im->why, "The import was cancelled.");
    }
    if (!im->done) {
        import_free(im);
        return;
    }
    im->done(im->arg, im, im->rc, im->why);
}

/* A new import of body[0..len) (taken; freed when NULL is returned). */
static struct import *import_new(char *body, size_t len, bool csv)
{
    struct import *im = calloc(1, sizeof *im);
    if (!im) {
        free(body);
        return NULL;
    }
    im->work.data = im;
    im->body = body;
    im->len = len;
    im->csv = csv;
    return im;
}

int import_start(uv_loop_t *loop, char *body, size_t len, bool csv, import_parsed_fn done,
                 void *arg, struct import **out)
{
    struct import *im = import_new(body, len, csv);
    if (!im)
        return RF_ENOMEM;
    im->done = done;
    im->arg = arg;
    if (uv_queue_work(loop, &im->work, import_work, import_after)) {
        import_free(im);
        return RF_ENOMEM;
    }
    *out = im;
    return 0;
}

int import_parse(char *body, size_t len, bool csv, struct import **out)
{
    struct import *im = *out = import_new(body, len, csv);
    if (!im)
        return RF_ENOMEM;
    import_work(&im->work);
    return im->rc;
}

void import_abandon(struct import *im)
{
    if (im)
        im->done = NULL;
}

void import_free(struct import *im)
{
    if (!im)
        return;
    for (size_t i = 0; i < im->n; i++) {
        if (!im->taken)
            backlog_item_free(im->v[i].it);
        free(im->v[i].src);
        free(im->v[i].parent);
    }
    free(im->v);
    for (size_t s = 0; s < NSECTIONS; s++)
        if (im->state[s] && SECTIONS[s].release)
            SECTIONS[s].release(im->state[s]);
    for (size_t i = 0; i < im->nwarn && i < IMPORT_WARNINGS_MAX; i++)
        free(im->warn[i]);
    free(im->body);
    free(im);
}

/* ---- applying ------------------------------------------------------------- */

/* The number n of an id "i<n>" (JSON) or "<n>" (a CSV Issue Id), or 0. */
static uint64_t id_number(const char *src, bool csv)
{
    if (!csv && *src++ != 'i')
        return 0;
    uint64_t v = 0;
    if (!*src || *src == '0' || strlen(src) > 14)
        return 0;
    for (; *src; src++) {
        if (*src < '0' || *src > '9')
            return 0;
        v = v * 10 + (uint64_t)(*src - '0');
    }
    return v;
}

/* The ids and ranks the items get in r: kept from the file in a room that
 * never held an item (when every id has the form of this server's), new
 * otherwise. *kept says which. */
static int plan(struct import *im, const struct room *r, char (*ids)[ITEM_ID_MAX],
                char (*ranks)[RANK_MAX + 1], bool *kept, uint64_t *next)
{
    bool keep = r->backlog.n == 0 && r->next_item == 1, keep_ranks = keep;
    uint64_t max = 0;
    for (size_t i = 0; i < im->n && keep; i++) {
        uint64_t k = id_number(im->v[i].src, im->csv);
        keep = k > 0;
        max = k > max ? k : max;
        keep_ranks = keep_ranks && im->v[i].rank_given &&
                     (i == 0 || strcmp(im->v[i - 1].it->rank, im->v[i].it->rank) < 0);
    }
    *kept = keep;
    *next = keep ? max + 1 : r->next_item + im->n;
    const char *prev = r->backlog.n ? r->backlog.v[r->backlog.n - 1]->rank : NULL;
    for (size_t i = 0; i < im->n; i++) {
        if (keep)
            snprintf(ids[i], ITEM_ID_MAX, "i%llu",
                     (unsigned long long)id_number(im->v[i].src, im->csv));
        else
            snprintf(ids[i], ITEM_ID_MAX, "i%llu", (unsigned long long)(r->next_item + i));
        if (keep_ranks)
            strcpy(ranks[i], im->v[i].it->rank);
        else if (rank_between(prev, NULL, ranks[i], RANK_MAX + 1))
            return RF_EINTERNAL;
        prev = ranks[i];
    }
    return 0;
}

static void pack_warnings(const struct import *im, msgpack_packer *pk)
{
    size_t n = im->nwarn < IMPORT_WARNINGS_MAX ? im->nwarn : IMPORT_WARNINGS_MAX;
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        kept += im->warn[i] != NULL;
    codec_pack_str(pk, "warnings");
    msgpack_pack_array(pk, kept);
    for (size_t i = 0; i < n; i++)
        if (im->warn[i])
            codec_pack_str(pk, im->warn[i]);
    codec_pack_kv_u64(pk, "more_warnings", im->nwarn - kept);
}

/* The answer: what the import brings (dry run) or brought. */
static int answer(const struct import *im, bool dry_run, bool kept, char (*ids)[ITEM_ID_MAX],
                  uint64_t seq, char **body, size_t *len)
{
    struct codec_buf b;
    msgpack_packer pk;
    size_t children = 0, first = im->n < PREVIEW_ROWS ? im->n : PREVIEW_ROWS;
    for (size_t i = 0; i < im->n; i++)
        children += im->v[i].parent != NULL;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 10);
    codec_pack_kv_bool(&pk, "dry_run", dry_run);
    codec_pack_kv_str(&pk, "format", im->csv ? "csv" : "json");
    codec_pack_kv_u64(&pk, "items", im->n);
    codec_pack_kv_u64(&pk, "children", children);
    codec_pack_kv_str(&pk, "ids", kept ? "kept" : "new");
    codec_pack_str(&pk, "first");
    msgpack_pack_array(&pk, first);
    for (size_t i = 0; i < first; i++) {
        const struct item *it = im->v[i].it;
        msgpack_pack_map(&pk, 5);
        codec_pack_kv_str(&pk, "id", ids[i]);
        codec_pack_kv_str(&pk, "parent", im->v[i].parent ? ids[im->v[i].up] : NULL);
        codec_pack_kv_str(&pk, "title", it->f[ITEM_F_TITLE].u.s);
        codec_pack_kv_str(&pk, "kind",
                          it->f[ITEM_F_KIND].type == IV_STR ? it->f[ITEM_F_KIND].u.s : NULL);
        codec_pack_kv_str(&pk, "estimate",
                          it->f[ITEM_F_ESTIMATE].type == IV_STR ? it->f[ITEM_F_ESTIMATE].u.s
                                                                : NULL);
    }
    codec_pack_str(&pk, "sections");
    size_t nsec = 0;
    for (size_t s = 1; s < NSECTIONS; s++)
        nsec += im->present[s] && SECTIONS[s].count;
    msgpack_pack_map(&pk, nsec);
    for (size_t s = 1; s < NSECTIONS; s++)
        if (im->present[s] && SECTIONS[s].count)
            codec_pack_kv_u64(&pk, SECTIONS[s].key, SECTIONS[s].count(im->state[s]));
    pack_warnings(im, &pk);
    codec_pack_str(&pk, "seq");
    if (dry_run)
        msgpack_pack_nil(&pk);
    else
        msgpack_pack_uint64(&pk, seq);
    return json_from_msgpack(&b, body, len);
}

/* The state of section key when the document has it, else NULL. */
static const void *section_state(const struct import *im, const char *key)
{
    for (size_t s = 0; s < NSECTIONS; s++)
        if (strcmp(SECTIONS[s].key, key) == 0)
            return im->present[s] ? im->state[s] : NULL;
    return NULL;
}

/* Whether section s goes into the backlog.imported event: it is in the
 * document, has a value for the event, and brings something (a section
 * skipped, or empty, brings nothing). */
static bool brings(const struct import *im, size_t s)
{
    return im->present[s] && SECTIONS[s].pack &&
           (!SECTIONS[s].count || SECTIONS[s].count(im->state[s]));
}

/* Takes the planned items into r: on out of memory, r is as it was. */
static int insert_all(struct import *im, struct room *r, char (*ids)[ITEM_ID_MAX],
                      char (*ranks)[RANK_MAX + 1], bool kept)
{
    int64_t now = clock_now_ms();
    size_t done = 0;
    int rc = 0;
    for (size_t i = 0; i < im->n && !rc; i++) {
        struct item *it = im->v[i].it;
        strcpy(it->id, ids[i]);
        strcpy(it->rank, ranks[i]);
        if (!im->v[i].time_given || !kept) /* the file's times go with its ids */
            it->updated_at = now;
        if (im->v[i].parent && !(it->parent = strdup(ids[im->v[i].up])))
            rc = RF_ENOMEM;
        if (!rc && !(rc = backlog_insert(&r->backlog, it)))
            done++;
    }
    if (rc) {
        for (size_t i = 0; i < done; i++)
            backlog_remove_at(&r->backlog, backlog_index_of(&r->backlog, im->v[i].it));
        return rc;
    }
    for (size_t i = 0; i < im->n; i++)
        r->backlog.bytes += im->v[i].it->bytes;
    im->taken = true; /* the items are the backlog's now */
    return 0;
}

int import_apply(struct import *im, struct app *app, struct room *r, bool dry_run, char **body,
                 size_t *len, char *why, size_t whysz)
{
    char(*ids)[ITEM_ID_MAX] = malloc((im->n ? im->n : 1) * sizeof *ids);
    char(*ranks)[RANK_MAX + 1] = malloc((im->n ? im->n : 1) * sizeof *ranks);
    size_t grow = 0;
    bool kept = false;
    uint64_t next = 0, seq = 0;
    int rc = ids && ranks ? 0 : RF_ENOMEM;
    why[0] = '\0';
    for (size_t i = 0; i < im->n; i++)
        grow += im->v[i].it->bytes;
    if (!rc && im->n == 0)
        rc = RF_EBAD_REQUEST, snprintf(why, whysz, "The file holds no items to import.");
    if (!rc && r->backlog.n + im->n > BACKLOG_MAX_ITEMS)
        rc = RF_ETOO_LARGE,
        snprintf(why, whysz,
                 "The room would pass %d items, the most a room holds: it has %zu and the file "
                 "brings %zu.",
                 BACKLOG_MAX_ITEMS, r->backlog.n, im->n);
    if (!rc && r->backlog.bytes + grow > app->cfg.max_room_bytes)
        rc = RF_ETOO_LARGE,
        snprintf(why, whysz,
                 "The room's backlog would pass %zu bytes, the most a room holds (it has %zu; "
                 "the file brings %zu).",
                 app->cfg.max_room_bytes, r->backlog.bytes, grow);
    for (size_t s = 0; s < NSECTIONS && !rc; s++)
        if (im->present[s] && SECTIONS[s].check && (rc = SECTIONS[s].check(im, im->state[s], r)))
            snprintf(why, whysz, "%s", im->why);
    if (!rc)
        import_room_refs(im, r, section_state(im, "map"), section_state(im, "product"));
    if (!rc)
        rc = plan(im, r, ids, ranks, &kept, &next);
    if (!rc && !dry_run)
        rc = insert_all(im, r, ids, ranks, kept);
    if (rc || dry_run) {
        if (!rc)
            rc = answer(im, true, kept, ids, 0, body, len);
        if (rc == RF_ENOMEM || rc == RF_EINTERNAL)
            snprintf(why, whysz, "The server ran out of memory importing; try again.");
        free(ids);
        free(ranks);
        return rc;
    }
    /* Applied: every record in this turn's batch, one event. */
    r->next_item = next;
    bool bad = false;
    for (size_t s = 0; s < NSECTIONS && !bad; s++)
        if (im->present[s] && SECTIONS[s].apply)
            bad = SECTIONS[s].apply(im, im->state[s], app, r) != 0;
    bad = bad || room_save_meta(app, r) != 0;
    for (size_t i = 0; i < im->n && !bad; i++) {
        struct item *it = im->v[i].it;
        /* their first version (backlog_touch but for the time: insert_all's) */
        backlog_touch(it, r->seq + 1, NULL, it->updated_at);
        bad = backlog_save_item(app->store, r->id, it) != 0;
    }
    if (bad) {
        room_evict(app, r->id);
        free(ids);
        free(ranks);
        snprintf(why, whysz, "The server ran out of memory importing; try again.");
        return RF_ENOMEM;
    }
    size_t extra = 0;
    for (size_t s = 0; s < NSECTIONS; s++)
        extra += brings(im, s);
    struct event ev;
    event_begin(&ev, r, "backlog.imported", NULL, 1 + extra);
    codec_pack_str(&ev.pk, "items");
    msgpack_pack_array(&ev.pk, im->n);
    for (size_t i = 0; i < im->n; i++)
        backlog_item_pack(im->v[i].it, &ev.pk);
    for (size_t s = 0; s < NSECTIONS; s++)
        if (brings(im, s)) {
            codec_pack_str(&ev.pk, SECTIONS[s].key);
            SECTIONS[s].pack(im->state[s], &ev.pk);
        }
    rc = event_commit(app, &ev, &seq);
    if (!rc) {
        log_info("room %s: imported %zu items from %s", r->id, im->n, im->csv ? "CSV" : "JSON");
        if (answer(im, false, kept, ids, seq, body, len)) /* applied: no summary to say so */
            *len = 0;
    } else {
        snprintf(why, whysz, "The server ran out of memory importing; try again.");
    }
    free(ids);
    free(ranks);
    return rc;
}
