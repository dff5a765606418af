#include "move.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "clock.h"
#include "codec.h"
#include "conn.h"
#include "errors.h"
#include "event.h"
#include "frame.h"
#include "json.h"
#include "outbox.h"
#include "room_load.h"
#include "req.h"
#include "room.h"
#include "snapshot.h"
#include "store.h"
#include "token.h"

/* The kinds of rows an archive carries besides the room's settings row:
 * their key in "state", and how many strings come before the blob. */
enum { ROW_PART, ROW_ITEM, ROW_ROUND, ROW_KANO, ROW__N };
static const char *const ROW_KEYS[ROW__N] = {"participants", "items", "rounds", "kano"};
static const int ROW_STRS[ROW__N] = {1, 2, 1, 1};

#define ROW_STR_MAX 128 /* an id or a rank in a row */

/* ---- 1. the archive ----------------------------------------------------------- */

struct move_archive {
    uv_work_t work;
    move_archive_fn done; /* NULL once abandoned */
    void *arg;
    struct store_reader *q;
    char room[ROOM_ID_MAX + 1];
    struct codec_buf head; /* the export's head (snapshot_pack_export_head) */
    struct frame *items;   /* ... and its items (the loop's reference) */
    struct codec_buf meta, rows[ROW__N];
    msgpack_packer pk_meta, pk_rows[ROW__N];
    size_t n[ROW__N];
    int64_t created_at;
    uint64_t seq;
    int rc;
    char *body;
    size_t len;
};

static int got_room(void *arg, int64_t created_at, uint64_t seq, const void *meta, size_t len)
{
    struct move_archive *j = arg;
    j->created_at = created_at;
    j->seq = seq;
    msgpack_pack_bin(&j->pk_meta, len);
    msgpack_pack_bin_body(&j->pk_meta, meta, len);
    return 0;
}

/* One row of kind k: its strings a (and b), then its blob (as bin: base64 in JSON). */
static int got_row(struct move_archive *j, int k, const char *a, const char *b, const void *data,
                   size_t len)
{
    msgpack_packer *pk = &j->pk_rows[k];
    msgpack_pack_array(pk, (size_t)ROW_STRS[k] + 1);
    codec_pack_str(pk, a);
    if (ROW_STRS[k] == 2)
        codec_pack_str(pk, b);
    msgpack_pack_bin(pk, len);
    msgpack_pack_bin_body(pk, data, len);
    j->n[k]++;
    return j->rows[k].oom ? RF_ENOMEM : 0;
}

static int got_part(void *arg, const char *pid, const void *data, size_t len)
{
    return got_row(arg, ROW_PART, pid, NULL, data, len);
}

static int got_item(void *arg, const char *id, const char *rank, const void *data, size_t len)
{
    return got_row(arg, ROW_ITEM, id, rank, data, len);
}

static int got_round(void *arg, const char *id, const void *data, size_t len)
{
    return got_row(arg, ROW_ROUND, id, NULL, data, len);
}

static int got_kano(void *arg, const char *item, const void *data, size_t len)
{
    return got_row(arg, ROW_KANO, item, NULL, data, len);
}

static int got_event(void *arg, uint64_t seq, const void *payload, size_t len)
{
    (void)arg, (void)seq, (void)payload, (void)len;
    return 0; /* the history stays where it was made */
}

/* Worker: the rows read, then the whole archive as JSON. */
static void archive_work(uv_work_t *w)
{
    struct move_archive *j = w->data;
    struct store_room_reader rd = {j, got_room, got_part, got_item, got_round, got_event, got_kano};
    j->rc = store_reader_load_room(j->q, j->room, 0, &rd);
    store_reader_close(j->q);
    j->q = NULL;
    if (j->rc)
        return;
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 5);
    codec_pack_kv_str(&pk, "format", MOVE_FORMAT);
    codec_pack_kv_str(&pk, "room", j->room);
    codec_pack_kv_u64(&pk, "seq", j->seq);
    codec_pack_str(&pk, "export"); /* the head ends with the key "items": the frame ends it */
    codec_buf_append(&b, j->head.data, j->head.len);
    codec_buf_append(&b, j->items->data, j->items->len);
    codec_pack_str(&pk, "state");
    msgpack_pack_map(&pk, 2 + ROW__N);
    codec_pack_kv_i64(&pk, "created_at", j->created_at);
    codec_pack_str(&pk, "meta");
    codec_buf_append(&b, j->meta.data, j->meta.len);
    for (int k = 0; k < ROW__N; k++) {
        codec_pack_str(&pk, ROW_KEYS[k]);
        msgpack_pack_array(&pk, j->n[k]);
        codec_buf_append(&b, j->rows[k].data, j->rows[k].len);
    }
    bool oom = b.oom || j->head.oom || j->meta.oom;
    for (int k = 0; k < ROW__N; k++)
        oom = oom || j->rows[k].oom;
    if (oom) {
        codec_buf_free(&b);
        j->rc = RF_ENOMEM;
        return;
    }
    j->rc = json_from_msgpack(&b, &j->body, &j->len);
}

static void archive_free(struct move_archive *j)
{
    store_reader_close(j->q);
    frame_unref(j->items);
    codec_buf_free(&j->head);
    codec_buf_free(&j->meta);
    for (int k = 0; k < ROW__N; k++)
        codec_buf_free(&j->rows[k]);
    free(j->body);
    free(j);
}

static void archive_after(uv_work_t *w, int status)
{
    struct move_archive *j = w->data;
    if (status)
        j->rc = RF_EINTERNAL;
    if (j->done) {
        j->done(j->arg, j->rc, j->rc ? NULL : j->body, j->rc ? 0 : j->len);
        if (!j->rc)
            j->body = NULL; /* taken */
    }
    archive_free(j);
}

int move_archive_start(struct app *app, struct room *r, move_archive_fn done, void *arg,
                       struct move_archive **out)
{
    struct move_archive *j = calloc(1, sizeof *j);
    if (!j)
        return RF_ENOMEM;
    j->work.data = j;
    j->done = done;
    j->arg = arg;
    snprintf(j->room, sizeof j->room, "%s", r->id);
    msgpack_packer pk;
    codec_buf_init(&j->head, 0);
    codec_packer_init(&pk, &j->head);
    snapshot_pack_export_head(r, &pk);
    codec_buf_init(&j->meta, 0);
    codec_packer_init(&j->pk_meta, &j->meta);
    for (int k = 0; k < ROW__N; k++) {
        codec_buf_init(&j->rows[k], 0);
        codec_packer_init(&j->pk_rows[k], &j->rows[k]);
    }
    j->items = snapshot_export_items(r);
    int rc = j->items ? store_reader_open(app->store, &j->q) : RF_ENOMEM;
    if (!rc && uv_queue_work(app->loop, &j->work, archive_work, archive_after))
        rc = RF_EINTERNAL;
    if (rc) {
        archive_free(j);
        return rc;
    }
    *out = j;
    return 0;
}

void move_archive_abandon(struct move_archive *j)
{
    if (j)
        j->done = NULL;
}

/* ---- 2. the new room --------------------------------------------------------- */

struct mrow {
    char *s[2];
    uint8_t *blob;
    size_t len;
};

struct move_make {
    uv_work_t work;
    move_parsed_fn done; /* NULL once abandoned */
    void *arg;
    char *body;
    size_t len;
    int rc;
    char why[256];
    char from[ROOM_ID_MAX + 1];
    uint64_t seq;
    int64_t created_at;
    uint8_t *meta; /* the settings row, with a new epoch */
    size_t meta_len;
    struct mrow *rows[ROW__N];
    size_t n[ROW__N];
};

static int make_fail(struct move_make *m, const char *why)
{
    snprintf(m->why, sizeof m->why, "%s", why);
    return RF_EBAD_REQUEST;
}

static int b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' || c == '-' ? 62 : c == '/' || c == '_' ? 63 : -1;
}

/* The base64 string o (codec_to_json's) decoded into a new buffer that
 * holds one well-formed MessagePack value: 0, or RF_EBAD_REQUEST / RF_ENOMEM. */
static int blob_of(const msgpack_object *o, uint8_t **out, size_t *len)
{
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return RF_EBAD_REQUEST;
    const char *s = o->via.str.ptr;
    size_t n = o->via.str.size;
    while (n && s[n - 1] == '=')
        n--;
    uint8_t *b = malloc(n * 3 / 4 + 1);
    if (!b)
        return RF_ENOMEM;
    size_t k = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(s[i]);
        if (v < 0) {
            free(b);
            return RF_EBAD_REQUEST;
        }
        acc = acc << 6 | (uint32_t)v;
        if (i % 4 == 3) {
            b[k++] = (uint8_t)(acc >> 16);
            b[k++] = (uint8_t)(acc >> 8);
            b[k++] = (uint8_t)acc;
        }
    }
    if (n % 4 == 2)
        b[k++] = (uint8_t)(acc >> 4);
    else if (n % 4 == 3) {
        b[k++] = (uint8_t)(acc >> 10);
        b[k++] = (uint8_t)(acc >> 2);
    }
    msgpack_zone z;
    msgpack_object v;
    const char *why;
    msgpack_zone_init(&z, 1024);
    int rc = n % 4 == 1 || codec_decode(b, k, &z, &v, &why) ? RF_EBAD_REQUEST : 0;
    msgpack_zone_destroy(&z);
    if (rc) {
        free(b);
        return rc;
    }
    *out = b;
    *len = k;
    return 0;
}

/* The settings row m->meta again, its epoch a new random one (the new room's
 * history starts here). */
static int new_epoch(struct move_make *m)
{
    msgpack_zone z;
    msgpack_object o;
    const char *why;
    char epoch[TOKEN_LEN + 1];
    int rc = RF_EBAD_REQUEST;
    msgpack_zone_init(&z, 1024);
    if (codec_decode(m->meta, m->meta_len, &z, &o, &why) || o.type != MSGPACK_OBJECT_MAP ||
        !codec_get(&o, "tokens"))
        goto out;
    rc = token_new(epoch);
    if (rc)
        goto out;
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    bool has = codec_get(&o, "epoch") != NULL;
    msgpack_pack_map(&pk, o.via.map.size + !has);
    for (uint32_t i = 0; i < o.via.map.size; i++) {
        const msgpack_object_kv *kv = &o.via.map.ptr[i];
        codec_pack_obj(&pk, &kv->key);
        if (codec_str_eq(&kv->key, "epoch"))
            codec_pack_str(&pk, epoch);
        else
            codec_pack_obj(&pk, &kv->val);
    }
    if (!has)
        codec_pack_kv_str(&pk, "epoch", epoch);
    size_t len = 0;
    uint8_t *meta = (uint8_t *)codec_buf_take(&b, &len);
    rc = meta ? 0 : RF_ENOMEM;
    if (meta) {
        free(m->meta);
        m->meta = meta;
        m->meta_len = len;
    }
out:
    msgpack_zone_destroy(&z);
    return rc;
}

/* Whether string o is a round id "r<number>" (the store orders rounds by it). */
static bool round_id(const msgpack_object *o)
{
    if (o->via.str.size < 2 || o->via.str.size > 15 || o->via.str.ptr[0] != 'r')
        return false;
    for (uint32_t i = 1; i < o->via.str.size; i++)
        if (o->via.str.ptr[i] < '0' || o->via.str.ptr[i] > '9')
            return false;
    return true;
}

/* The rows of kind k from array v. */
static int parse_rows(struct move_make *m, int k, const msgpack_object *v)
{
    char why[128];
    snprintf(why, sizeof why, "state.%s must be an array of [%s, base64] rows.", ROW_KEYS[k],
             ROW_STRS[k] == 2 ? "id, rank" : "id");
    if (!v || v->type != MSGPACK_OBJECT_ARRAY)
        return make_fail(m, why);
    m->rows[k] = calloc(v->via.array.size ? v->via.array.size : 1, sizeof *m->rows[k]);
    if (!m->rows[k])
        return RF_ENOMEM;
    for (uint32_t i = 0; i < v->via.array.size; i++) {
        const msgpack_object *row = &v->via.array.ptr[i];
        struct mrow *out = &m->rows[k][m->n[k]];
        if (row->type != MSGPACK_OBJECT_ARRAY || row->via.array.size != (uint32_t)ROW_STRS[k] + 1)
            return make_fail(m, why);
        for (int s = 0; s < ROW_STRS[k]; s++) {
            const msgpack_object *o = &row->via.array.ptr[s];
            if (o->type != MSGPACK_OBJECT_STR || !o->via.str.size ||
                o->via.str.size > ROW_STR_MAX || memchr(o->via.str.ptr, 0, o->via.str.size) ||
                (k == ROW_PART && o->via.str.size > TOKEN_LEN) || (k == ROW_ROUND && !round_id(o)))
                return make_fail(m, why);
            if (!(out->s[s] = codec_strdup(o)))
                return RF_ENOMEM;
        }
        m->n[k]++; /* owned from here: freed with m */
        int rc = blob_of(&row->via.array.ptr[ROW_STRS[k]], &out->blob, &out->len);
        if (rc)
            return rc == RF_ENOMEM ? rc : make_fail(m, why);
    }
    return 0;
}

static int make_parse(struct move_make *m)
{
    struct codec_buf b;
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    codec_buf_init(&b, 0);
    int rc = json_to_msgpack(m->body, m->len, &b, m->why, sizeof m->why);
    free(m->body);
    m->body = NULL;
    if (rc) {
        codec_buf_free(&b);
        return rc;
    }
    msgpack_zone_init(&z, 65536);
    if (b.oom || msgpack_unpack(b.data, b.len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS) {
        rc = RF_ENOMEM;
        goto out;
    }
    const msgpack_object *fmt = codec_get(&o, "format"), *room = codec_get(&o, "room"),
                         *st = codec_get(&o, "state");
    uint64_t created = 0;
    if (!codec_str_eq(fmt, MOVE_FORMAT)) {
        rc = make_fail(m, "This is no room archive: its \"format\" must be \"" MOVE_FORMAT "\".");
        goto out;
    }
    if (!room || room->type != MSGPACK_OBJECT_STR || !room->via.str.size ||
        room->via.str.size > ROOM_ID_MAX || !codec_get_uint(&o, "seq", &m->seq) || !st ||
        st->type != MSGPACK_OBJECT_MAP || !codec_get_uint(st, "created_at", &created)) {
        rc = make_fail(m, "The archive needs \"room\", \"seq\" and \"state\" with \"created_at\".");
        goto out;
    }
    snprintf(m->from, sizeof m->from, "%.*s", (int)room->via.str.size, room->via.str.ptr);
    m->created_at = (int64_t)created;
    rc = blob_of(codec_get(st, "meta"), &m->meta, &m->meta_len);
    if (rc == RF_EBAD_REQUEST)
        rc = make_fail(m, "state.meta must be the room's settings row in base64.");
    if (!rc)
        rc = new_epoch(m);
    if (rc == RF_EBAD_REQUEST && !m->why[0])
        make_fail(m, "state.meta holds no room's settings (no tokens).");
    for (int k = 0; !rc && k < ROW__N; k++)
        rc = parse_rows(m, k, codec_get(st, ROW_KEYS[k]));
out:
    msgpack_zone_destroy(&z);
    codec_buf_free(&b);
    return rc;
}

static void make_work(uv_work_t *w)
{
    struct move_make *m = w->data;
    m->rc = make_parse(m);
}

static void make_after(uv_work_t *w, int status)
{
    struct move_make *m = w->data;
    if (status)
        m->rc = RF_EINTERNAL;
    if (!m->done) {
        move_make_free(m);
        return;
    }
    if (m->rc && !m->why[0])
        snprintf(m->why, sizeof m->why, "The archive could not be read; try again.");
    m->done(m->arg, m, m->rc, m->why);
}

int move_make_parse(uv_loop_t *loop, char *body, size_t len, move_parsed_fn done, void *arg,
                    struct move_make **out)
{
    struct move_make *m = calloc(1, sizeof *m);
    if (!m) {
        free(body);
        return RF_ENOMEM;
    }
    m->work.data = m;
    m->done = done;
    m->arg = arg;
    m->body = body;
    m->len = len;
    if (uv_queue_work(loop, &m->work, make_work, make_after)) {
        move_make_free(m);
        return RF_ENOMEM;
    }
    *out = m;
    return 0;
}

void move_make_abandon(struct move_make *m)
{
    if (m)
        m->done = NULL;
}

void move_make_free(struct move_make *m)
{
    if (!m)
        return;
    for (int k = 0; k < ROW__N; k++) {
        for (size_t i = 0; i < m->n[k]; i++) {
            free(m->rows[k][i].s[0]);
            free(m->rows[k][i].s[1]);
            free(m->rows[k][i].blob);
        }
        free(m->rows[k]);
    }
    free(m->meta);
    free(m->body);
    free(m);
}

/* The blob of the next state row: packed as it is. */
static void put_blob(struct store *st, const uint8_t *blob, size_t len)
{
    msgpack_packer *pk = store_packer(st);
    pk->callback(pk->data, (const char *)blob, len);
}

int move_make_apply(struct app *app, const struct move_make *m, const char *id)
{
    struct store *st = app->store;
    put_blob(st, m->meta, m->meta_len);
    int rc = store_put_room(st, id, m->created_at);
    for (int k = 0; k < ROW__N; k++) {
        for (size_t i = 0; !rc && i < m->n[k]; i++) {
            const struct mrow *w = &m->rows[k][i];
            put_blob(st, w->blob, w->len);
            rc = k == ROW_PART    ? store_put_participant(st, id, w->s[0])
                 : k == ROW_ITEM  ? store_put_item(st, id, w->s[0], w->s[1])
                 : k == ROW_ROUND ? store_put_round(st, id, w->s[0])
                                  : store_put_kano(st, id, w->s[0], i + 1); /* oldest first */
        }
    }
    if (!rc && m->seq) {
        /* The room numbers its events on from the old one's: items and
         * rounds remember the seq of their changes. */
        struct codec_buf b;
        msgpack_packer pk;
        int64_t now = clock_now_ms();
        codec_buf_init(&b, 0);
        codec_packer_init(&pk, &b);
        msgpack_pack_map(&pk, 5);
        codec_pack_kv_str(&pk, "t", "room.moved_in");
        codec_pack_kv_u64(&pk, "seq", m->seq);
        codec_pack_kv_i64(&pk, "at", now);
        codec_pack_kv_nil(&pk, "by");
        codec_pack_kv_str(&pk, "from", m->from);
        rc = b.oom ? RF_ENOMEM
                   : store_add_event(st, id, m->seq, now, NULL, "room.moved_in", b.data, b.len);
        codec_buf_free(&b);
    }
    if (rc)
        store_skip_pending(st, id);
    return rc;
}

/* ---- 3. the end ---------------------------------------------------------------- */

void move_finish(struct app *app, struct room *r, const char *to)
{
    char home[INSTANCE_NAME_MAX + 1];
    struct codec_buf b;
    msgpack_packer pk;
    room_home(to, home);
    event_notice_begin(&b, &pk, "room.moved", clock_now_ms(), 2);
    codec_pack_kv_str(&pk, "room", to);
    codec_pack_kv_str(&pk, "home", home);
    event_notice_end(app, r, NULL, &b, false);
    outbox_release(app); /* the notice into the queues, before the close */
    list_each(l, &r->conns) conn_close(conn_of_room(l), CONN_CLOSE_MOVED);
    map_del(&app->rooms, r->id);
    r->dead = true;
    room_unref(r);
}

int move_frozen(struct req *q)
{
    struct room *r = q->room;
    if (q->op->id == OP_JOIN && !codec_get(q->msg, "pid")) {
        const msgpack_object *rid = codec_get(q->msg, "room");
        r = room_find(q->app, rid->via.str.ptr, rid->via.str.size);
    } else if (!(q->op->flags & OPF_CHANGES)) {
        return 0;
    }
    if (!r || !r->moving)
        return 0;
    return req_fail(q, RF_EUNAVAILABLE,
                    "The room is being moved to another instance; try again in a moment.");
}

int move_refuse_join(struct req *q, const msgpack_object *rid)
{
    const char *to = store_moved_to(q->app->store, rid->via.str.ptr, rid->via.str.size);
    if (!to)
        return 0;
    char home[INSTANCE_NAME_MAX + 1];
    room_home(to, home);
    if (reply_fields_add(&q->fields, "room", to) || reply_fields_add(&q->fields, "home", home))
        return RF_ENOMEM;
    return req_fail(q, RF_EMOVED, "This room moved to %s on instance %s; join it there.", to, home);
}
