#include "export.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "csv.h"
#include "errors.h"
#include "frame.h"
#include "jira.h"
#include "ops.h"
#include "room.h"
#include "round.h"
#include "snapshot.h"
#include "token.h"

static void put(struct codec_buf *b, const char *s)
{
    codec_buf_append(b, s, strlen(s));
}

/* One CSV field (RFC 4180): csv.h. */
static void csv_field(struct codec_buf *b, const char *s, size_t n, int last)
{
    csv_write_field(b, s, n, last);
}

/* A value of an item map as CSV text: strings as they are, lists joined by
 * "; " (with "\\" and "\\;" for a backslash and a semicolon inside an
 * element, so that splitting is exact), numbers in decimal, nil empty. */
static void csv_value(struct codec_buf *b, const msgpack_object *v, int last)
{
    char num[32];
    if (!v || v->type == MSGPACK_OBJECT_NIL) {
        csv_field(b, "", 0, last);
    } else if (v->type == MSGPACK_OBJECT_STR) {
        csv_field(b, v->via.str.ptr, v->via.str.size, last);
    } else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf(num, sizeof num, "%llu", (unsigned long long)v->via.u64);
        csv_field(b, num, strlen(num), last);
    } else if (v->type == MSGPACK_OBJECT_ARRAY) {
        struct codec_buf j;
        codec_buf_init(&j, 0);
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            const msgpack_object *e = &v->via.array.ptr[i];
            if (i)
                put(&j, "; ");
            for (uint32_t k = 0; e->type == MSGPACK_OBJECT_STR && k < e->via.str.size; k++) {
                char ch = e->via.str.ptr[k];
                if (ch == '\\' || ch == ';')
                    put(&j, "\\");
                codec_buf_append(&j, &ch, 1);
            }
        }
        csv_field(b, j.data ? j.data : "", j.len, last);
        codec_buf_free(&j);
    } else {
        csv_field(b, "", 0, last);
    }
}

/* The rounds held for item id (a string object) among rounds. */
static size_t rounds_of(const msgpack_object *rounds, const msgpack_object *id)
{
    size_t n = 0;
    for (uint32_t k = 0; id && id->type == MSGPACK_OBJECT_STR && k < rounds->via.array.size; k++) {
        const msgpack_object *item = codec_get(&rounds->via.array.ptr[k], "item");
        n += item && item->type == MSGPACK_OBJECT_STR && item->via.str.size == id->via.str.size &&
             memcmp(item->via.str.ptr, id->via.str.ptr, id->via.str.size) == 0;
    }
    return n;
}

/* CSV from the decoded items (backlog_item_pack maps) and rounds arrays. */
static void export_csv(const msgpack_object *items, const msgpack_object *rounds,
                       struct codec_buf *out)
{
    static const char *const cols[] = {"id",     "rank",     "parent",     "title",  "kind",
                                       "status", "estimate", "value",      "moscow", "persona",
                                       "goal",   "benefit",  "acceptance", "labels", "notes"};
    size_t ncols = sizeof cols / sizeof cols[0];
    for (size_t c = 0; c < ncols; c++) {
        put(out, cols[c]);
        put(out, ",");
    }
    put(out, "rounds\r\n");
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        const msgpack_object *o = &items->via.array.ptr[i];
        for (size_t c = 0; c < ncols; c++)
            csv_value(out, codec_get(o, cols[c]), 0);
        char num[32];
        snprintf(num, sizeof num, "%zu", rounds_of(rounds, codec_get(o, "id")));
        csv_field(out, num, strlen(num), 1);
    }
}

struct export_job {
    uv_work_t work;
    export_done_fn done; /* NULL once abandoned */
    void *arg;
    bool csv;
    bool jira;             /* csv in Jira's columns (jira.h) */
    struct codec_buf head; /* snapshot_pack_export_head() */
    struct frame *items;   /* the loop's reference: the worker reads its bytes only */
    int rc;
    char *body;
    size_t len;
};

/* Worker thread: the export's bytes into JSON or CSV. Touches only the job
 * (and reads the items frame's bytes, which nobody writes). */
static void export_work(uv_work_t *w)
{
    struct export_job *j = w->data;
    struct codec_buf out;
    msgpack_zone z;
    msgpack_object o, items, key, rounds;
    size_t off = 0;
    codec_buf_init(&out, 0);
    msgpack_zone_init(&z, 4096);
    j->rc = RF_ENOMEM;
    if (j->csv) {
        const char *data = (const char *)j->items->data;
        size_t n = j->items->len;
        /* The items, "rounds", the rounds (then "kano" and the surveys, "product"). */
        if (msgpack_unpack(data, n, &off, &z, &items) == MSGPACK_UNPACK_EXTRA_BYTES &&
            msgpack_unpack(data, n, &off, &z, &key) == MSGPACK_UNPACK_EXTRA_BYTES &&
            msgpack_unpack(data, n, &off, &z, &rounds) == MSGPACK_UNPACK_EXTRA_BYTES &&
            items.type == MSGPACK_OBJECT_ARRAY && rounds.type == MSGPACK_OBJECT_ARRAY) {
            if (j->jira)
                jira_export(&items, &out);
            else
                export_csv(&items, &rounds, &out);
            j->rc = 0;
        }
    } else {
        /* The head ends with the key "items": the shared bytes complete it. */
        codec_buf_append(&j->head, j->items->data, j->items->len);
        if (!j->head.oom &&
            msgpack_unpack(j->head.data, j->head.len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS) {
            codec_to_json(&out, &o);
            put(&out, "\n");
            j->rc = 0;
        }
    }
    msgpack_zone_destroy(&z);
    if (!j->rc && !out.oom)
        j->body = codec_buf_take(&out, &j->len);
    if (!j->body) {
        j->rc = RF_ENOMEM;
        codec_buf_free(&out);
    }
}

/* Loop thread: hands the result over (or drops it, abandoned). */
static void export_after(uv_work_t *w, int status)
{
    struct export_job *j = w->data;
    frame_unref(j->items);
    codec_buf_free(&j->head);
    if (status)
        j->rc = RF_EINTERNAL;
    if (j->done && !j->rc)
        j->done(j->arg, 0, j->body, j->len,
                j->csv ? "text/csv; charset=utf-8" : "application/json");
    else if (j->done)
        j->done(j->arg, j->rc, NULL, 0, NULL);
    if (!j->done || j->rc)
        free(j->body);
    free(j);
}

int export_start(uv_loop_t *loop, struct room *r, const char *format, export_done_fn done,
                 void *arg, struct export_job **out)
{
    bool jira = strcmp(format, "jira") == 0, csv = jira || strcmp(format, "csv") == 0;
    if (!csv && strcmp(format, "json") != 0)
        return RF_EBAD_REQUEST;
    struct export_job *j = calloc(1, sizeof *j);
    if (!j)
        return RF_ENOMEM;
    j->work.data = j;
    j->done = done;
    j->arg = arg;
    j->csv = csv;
    j->jira = jira;
    codec_buf_init(&j->head, 0);
    if (!csv) {
        msgpack_packer pk;
        codec_packer_init(&pk, &j->head);
        snapshot_pack_export_head(r, &pk);
    }
    /* The items and rounds as joiners get them: shared, and encoded once. */
    j->items = snapshot_export_items(r);
    if (!j->items || j->head.oom || uv_queue_work(loop, &j->work, export_work, export_after)) {
        frame_unref(j->items);
        codec_buf_free(&j->head);
        free(j);
        return RF_ENOMEM;
    }
    *out = j;
    return 0;
}

void export_abandon(struct export_job *j)
{
    if (j)
        j->done = NULL;
}
