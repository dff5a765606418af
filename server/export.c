#include "export.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "ops.h"
#include "room.h"
#include "round.h"
#include "snapshot.h"
#include "token.h"

static void put(struct codec_buf *b, const char *s)
{
    codec_buf_append(b, s, strlen(s));
}

/* A cell a spreadsheet would run as a formula (OWASP "CSV injection"): it
 * starts with = + - @, a tab or a carriage return. A cell starting with an
 * apostrophe is listed too, so that a reader may always take one leading
 * apostrophe off. */
static int csv_formula(const char *s, size_t n)
{
    return n && s[0] && strchr("=+-@\t\r'", s[0]);
}

/* One CSV field (RFC 4180): quoted when it holds a comma, quote or newline,
 * and after a leading apostrophe when csv_formula() says so. */
static void csv_field(struct codec_buf *b, const char *s, size_t n, int last)
{
    int quote = memchr(s, ',', n) || memchr(s, '"', n) || memchr(s, '\n', n) || memchr(s, '\r', n);
    if (quote)
        put(b, "\"");
    if (csv_formula(s, n))
        put(b, "'");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            put(b, "\"");
        codec_buf_append(b, &s[i], 1);
    }
    if (quote)
        put(b, "\"");
    put(b, last ? "\r\n" : ",");
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

static int export_csv(const struct room *r, struct codec_buf *out)
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
    for (size_t i = 0; i < r->backlog.n; i++) {
        const struct item *it = r->backlog.v[i];
        struct codec_buf b;
        msgpack_packer pk;
        codec_buf_init(&b, 0);
        codec_packer_init(&pk, &b);
        backlog_item_pack(it, &pk);
        msgpack_zone z;
        msgpack_object o;
        size_t off = 0;
        msgpack_zone_init(&z, 2048);
        if (b.oom || msgpack_unpack(b.data, b.len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS) {
            msgpack_zone_destroy(&z);
            codec_buf_free(&b);
            return RF_ENOMEM;
        }
        for (size_t c = 0; c < ncols; c++)
            csv_value(out, codec_get(&o, cols[c]), 0);
        size_t rounds = 0;
        for (size_t k = 0; k < r->nrounds; k++)
            rounds += strcmp(r->rounds[k]->item, it->id) == 0;
        char num[32];
        snprintf(num, sizeof num, "%zu", rounds);
        csv_field(out, num, strlen(num), 1);
        msgpack_zone_destroy(&z);
        codec_buf_free(&b);
    }
    return out->oom ? RF_ENOMEM : 0;
}

static int export_json(const struct room *r, struct codec_buf *out)
{
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    snapshot_pack_export(r, &pk);
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    msgpack_zone_init(&z, 4096);
    int rc = !b.oom && msgpack_unpack(b.data, b.len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS
                 ? 0
                 : RF_ENOMEM;
    if (!rc) {
        codec_to_json(out, &o);
        put(out, "\n");
    }
    msgpack_zone_destroy(&z);
    codec_buf_free(&b);
    return rc || out->oom ? RF_ENOMEM : 0;
}

int export_room(const struct room *r, const char *format, char **body, size_t *len,
                const char **type)
{
    struct codec_buf out;
    int rc;
    codec_buf_init(&out, 0);
    if (strcmp(format, "json") == 0) {
        *type = "application/json";
        rc = export_json(r, &out);
    } else if (strcmp(format, "csv") == 0) {
        *type = "text/csv; charset=utf-8";
        rc = export_csv(r, &out);
    } else {
        rc = RF_EBAD_REQUEST;
    }
    if (rc) {
        codec_buf_free(&out);
        return rc;
    }
    *body = codec_buf_take(&out, len);
    return *body ? 0 : RF_ENOMEM;
}
