/* libFuzzer target: a file POSTed to /api/rooms/{room}/import, read as a
 * Jira CSV and as JSON by the import's worker part (import_parse), without a
 * server or a room.
 *
 * Besides "never crash, leak or hang", it checks:
 *   - a refused file has a sentence saying why, and no item;
 *   - an accepted file has 1..10000 items (none when the JSON holds none),
 *     each with a title, every parent index naming another item;
 *   - JSON text that json_to_msgpack() accepts decodes into exactly one
 *     MessagePack object, and that object written back as JSON
 *     (codec_to_json) reads back into the same bytes (without a float:
 *     an integral float is written as an integer). */
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backlog.h"
#include "codec.h"
#include "errors.h"
#include "import_int.h"
#include "json.h"

#define VIOLATION(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "fuzz_import: invariant violated: ");                                      \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        abort();                                                                                   \
    } while (0)

static void check_import(const uint8_t *data, size_t size, bool csv)
{
    char *body = malloc(size ? size : 1);
    struct import *im;
    if (!body)
        return;
    memcpy(body, data, size);
    int rc = import_parse(body, size, csv, &im);
    if (!im)
        return;
    if (rc) {
        if (rc != RF_ENOMEM && !im->why[0])
            VIOLATION("a refused %s file (rc %d) has no sentence", csv ? "CSV" : "JSON", rc);
    } else {
        if (im->n > BACKLOG_MAX_ITEMS)
            VIOLATION("%zu items accepted", im->n);
        for (size_t i = 0; i < im->n; i++) {
            const struct item *it = im->v[i].it;
            if (it->f[ITEM_F_TITLE].type != IV_STR || !it->f[ITEM_F_TITLE].u.s[0])
                VIOLATION("item %zu has no title", i);
            if (im->v[i].parent && (im->v[i].up >= im->n || im->v[i].up == i))
                VIOLATION("item %zu: parent index %zu", i, im->v[i].up);
        }
    }
    import_free(im);
}

/* Whether o holds a float (codec_to_json writes 3.0 as 3, which reads back
 * as an integer). */
static bool has_float(const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_FLOAT32 || o->type == MSGPACK_OBJECT_FLOAT64)
        return true;
    if (o->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < o->via.array.size; i++)
            if (has_float(&o->via.array.ptr[i]))
                return true;
    if (o->type == MSGPACK_OBJECT_MAP)
        for (uint32_t i = 0; i < o->via.map.size; i++)
            if (has_float(&o->via.map.ptr[i].val))
                return true;
    return false;
}

static void check_json(const uint8_t *data, size_t size)
{
    struct codec_buf a, j, b;
    char why[256];
    codec_buf_init(&a, 0);
    if (json_to_msgpack((const char *)data, size, &a, why, sizeof why) == 0) {
        msgpack_zone z;
        msgpack_object o;
        size_t off = 0;
        msgpack_zone_init(&z, 1024);
        if (msgpack_unpack(a.data, a.len, &off, &z, &o) != MSGPACK_UNPACK_SUCCESS || off != a.len)
            VIOLATION("accepted JSON is not one MessagePack object");
        codec_buf_init(&j, 0);
        codec_to_json(&j, &o);
        codec_buf_init(&b, 0);
        if (json_to_msgpack(j.data, j.len, &b, why, sizeof why))
            VIOLATION("codec_to_json wrote JSON that does not read back: %s", why);
        if (!has_float(&o) && (b.len != a.len || memcmp(a.data, b.data, a.len)))
            VIOLATION("JSON -> MessagePack -> JSON -> MessagePack changed the bytes");
        codec_buf_free(&b);
        codec_buf_free(&j);
        msgpack_zone_destroy(&z);
    }
    codec_buf_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 1 << 20)
        return 0;
    check_import(data, size, true);
    check_import(data, size, false);
    check_json(data, size);
    return 0;
}
