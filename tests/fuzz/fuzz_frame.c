/* libFuzzer target: one WebSocket frame through the armoured decoder and the
 * operation table, exactly as dispatch.c sees it, without a server.
 *
 * Besides "never crash, leak or hang", it checks the codec's promises:
 *   - codec_check() accepting means msgpack-c decodes the bytes into one map
 *     consuming exactly `size` bytes, nested at most CODEC_MAX_DEPTH deep;
 *   - codec_check() and codec_check_structure() differ only on strings, and
 *     there codec_check() agrees with an independent validator written
 *     from the Unicode table of well-formed byte sequences, which also
 *     refuses a NUL byte (strings never contain NUL);
 *   - codec_name_nul() names a field exactly when codec_check() refused a
 *     NUL, in a sentence that is valid UTF-8;
 *   - codec_decode() agrees with codec_check();
 *   - a decoded message re-encodes (codec_pack_obj) to bytes codec_check()
 *     accepts, which decode to an equal object;
 * and the operation table's: ops_validate() and ops_validate_fields() return
 * 0 or RF_EBAD_REQUEST with a sentence, and a strict item map they accept
 * holds only valid values (every occurrence of a key: the server applies
 * them all). A violation aborts, which libFuzzer reports as a crash. */
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "ops.h"

#define VIOLATION(...)                                                                             \
    do {                                                                                           \
        fprintf(stderr, "fuzz_frame: invariant violated: ");                                       \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fprintf(stderr, "\n");                                                                     \
        abort();                                                                                   \
    } while (0)

/* Reference UTF-8 check (Unicode 15, table 3-7, well-formed byte sequences),
 * written independently of codec.c's. */
static bool ref_utf8(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t a = s[i];
        if (a <= 0x7f) {
            i++;
            continue;
        }
        uint8_t lo = 0x80, hi = 0xbf;
        size_t len;
        if (a >= 0xc2 && a <= 0xdf) {
            len = 2;
        } else if (a == 0xe0) {
            len = 3;
            lo = 0xa0;
        } else if ((a >= 0xe1 && a <= 0xec) || a == 0xee || a == 0xef) {
            len = 3;
        } else if (a == 0xed) {
            len = 3;
            hi = 0x9f;
        } else if (a == 0xf0) {
            len = 4;
            lo = 0x90;
        } else if (a >= 0xf1 && a <= 0xf3) {
            len = 4;
        } else if (a == 0xf4) {
            len = 4;
            hi = 0x8f;
        } else {
            return false;
        }
        if (n - i < len)
            return false;
        if (s[i + 1] < lo || s[i + 1] > hi)
            return false;
        for (size_t k = 2; k < len; k++)
            if (s[i + k] < 0x80 || s[i + k] > 0xbf)
                return false;
        i += len;
    }
    return true;
}

/* Depth of o (a scalar is 0, an empty container 1) and whether every string
 * in it, keys included, is well-formed UTF-8 without a NUL byte. */
static int walk(const msgpack_object *o, bool *utf8_ok)
{
    int d = 0;
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        if (!ref_utf8((const uint8_t *)o->via.str.ptr, o->via.str.size))
            *utf8_ok = false;
        for (uint32_t i = 0; i < o->via.str.size; i++)
            if (o->via.str.ptr[i] == '\0')
                *utf8_ok = false;
        return 0;
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            int c = walk(&o->via.array.ptr[i], utf8_ok);
            if (c > d)
                d = c;
        }
        return d + 1;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            int k = walk(&o->via.map.ptr[i].key, utf8_ok);
            int v = walk(&o->via.map.ptr[i].val, utf8_ok);
            if (k > d)
                d = k;
            if (v > d)
                d = v;
        }
        return d + 1;
    default:
        return 0;
    }
}

static void check_verdict(int rc, const char *why, const char *what)
{
    if (rc != 0 && rc != RF_EBAD_REQUEST)
        VIOLATION("%s returned %d, neither 0 nor RF_EBAD_REQUEST", what, rc);
    if (rc && (!why || !*why))
        VIOLATION("%s refused without a sentence", what);
}

/* ops_validate_fields on an arbitrary object, every combination of flags;
 * what a strict check accepts must hold valid values under every key. */
static void validate_item_map(const msgpack_object *m)
{
    char why[256];
    for (int partial = 0; partial < 2; partial++) {
        for (int strict = 0; strict < 2; strict++) {
            why[0] = '\0';
            int rc = ops_validate_fields(ops_item_fields, m, partial, strict, why, sizeof why);
            check_verdict(rc, why, "ops_validate_fields(ops_item_fields)");
            if (rc || !strict)
                continue;
            if (m->type != MSGPACK_OBJECT_MAP)
                VIOLATION("ops_validate_fields accepted a %d that is not a map", (int)m->type);
            /* Every pair on its own must be valid too: backlog.c applies every
             * pair of the map, not only the first of each key. */
            for (uint32_t i = 0; i < m->via.map.size; i++) {
                msgpack_object_kv kv = m->via.map.ptr[i];
                msgpack_object one;
                one.type = MSGPACK_OBJECT_MAP;
                one.via.map.size = 1;
                one.via.map.ptr = &kv;
                char why1[256] = "";
                if (ops_validate_fields(ops_item_fields, &one, true, true, why1, sizeof why1))
                    VIOLATION("a strict item map was accepted although its pair '%.*s' is "
                              "invalid on its own (%s): a duplicate key hides a bad value",
                              kv.key.type == MSGPACK_OBJECT_STR ? (int)kv.key.via.str.size : 1,
                              kv.key.type == MSGPACK_OBJECT_STR ? kv.key.via.str.ptr : "?", why1);
            }
        }
    }
}

/* Item maps where requests carry them: item.add's `item`, item.update's
 * `set`, item.split's `children`; and the message itself. */
static void validate_item_maps(const msgpack_object *msg)
{
    static const char *const keys[] = {"item", "set"};
    validate_item_map(msg);
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        const msgpack_object *v = codec_get(msg, keys[k]);
        if (v)
            validate_item_map(v);
    }
    const msgpack_object *children = codec_get(msg, "children");
    if (children && children->type == MSGPACK_OBJECT_ARRAY)
        for (uint32_t i = 0; i < children->via.array.size && i < 64; i++)
            validate_item_map(&children->via.array.ptr[i]);
}

static void check_ops(const msgpack_object *msg)
{
    char why[256];
    /* The op the message names, as dispatch.c looks it up. */
    const msgpack_object *t = codec_get(msg, "t");
    if (t && t->type == MSGPACK_OBJECT_STR) {
        const struct op_spec *op = ops_find(t->via.str.ptr, t->via.str.size);
        if (op) {
            if (ops_get(op->id) != op)
                VIOLATION("ops_get(ops_find(%s)->id) is another op", op->name);
            why[0] = '\0';
            check_verdict(ops_validate(op, msg, why, sizeof why), why, "ops_validate");
            for (int role = -1; role <= ROLE__COUNT; role++)
                (void)ops_allows(op, role);
        }
    }
    /* Every op's validator against this map: the fuzzer need not guess `t`. */
    for (int id = 0; id < OP__COUNT; id++) {
        const struct op_spec *op = ops_get((enum op_id)id);
        why[0] = '\0';
        check_verdict(ops_validate(op, msg, why, sizeof why), why, op->name);
    }
    validate_item_maps(msg);
}

/* memcmp for n bytes where an empty string may come with a NULL pointer. */
static bool bytes_eq(const void *a, const void *b, size_t n)
{
    return n == 0 || memcmp(a, b, n) == 0;
}

/* Structural equality; floats compare by their bits (NaN equals itself). */
static bool obj_equal(const msgpack_object *a, const msgpack_object *b)
{
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case MSGPACK_OBJECT_NIL:
        return true;
    case MSGPACK_OBJECT_BOOLEAN:
        return a->via.boolean == b->via.boolean;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return a->via.u64 == b->via.u64;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return a->via.i64 == b->via.i64;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return memcmp(&a->via.f64, &b->via.f64, sizeof a->via.f64) == 0;
    case MSGPACK_OBJECT_STR:
        return a->via.str.size == b->via.str.size &&
               bytes_eq(a->via.str.ptr, b->via.str.ptr, a->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return a->via.bin.size == b->via.bin.size &&
               bytes_eq(a->via.bin.ptr, b->via.bin.ptr, a->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        return a->via.ext.type == b->via.ext.type && a->via.ext.size == b->via.ext.size &&
               bytes_eq(a->via.ext.ptr, b->via.ext.ptr, a->via.ext.size);
    case MSGPACK_OBJECT_ARRAY:
        if (a->via.array.size != b->via.array.size)
            return false;
        for (uint32_t i = 0; i < a->via.array.size; i++)
            if (!obj_equal(&a->via.array.ptr[i], &b->via.array.ptr[i]))
                return false;
        return true;
    case MSGPACK_OBJECT_MAP:
        if (a->via.map.size != b->via.map.size)
            return false;
        for (uint32_t i = 0; i < a->via.map.size; i++)
            if (!obj_equal(&a->via.map.ptr[i].key, &b->via.map.ptr[i].key) ||
                !obj_equal(&a->via.map.ptr[i].val, &b->via.map.ptr[i].val))
                return false;
        return true;
    }
    return false;
}

/* codec_pack_obj(o) must give bytes the codec accepts and that decode to o. */
static void check_roundtrip(const msgpack_object *o)
{
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    codec_pack_obj(&pk, o);
    size_t len;
    char *data = codec_buf_take(&b, &len);
    if (!data)
        return; /* out of memory */
    const char *why = NULL;
    msgpack_zone z;
    msgpack_object back;
    msgpack_zone_init(&z, 2048);
    if (codec_decode((const uint8_t *)data, len, &z, &back, &why))
        VIOLATION("a decoded message re-encodes to bytes codec_decode refuses: %s", why);
    if (!obj_equal(o, &back))
        VIOLATION("a decoded message re-encodes to a different object");
    msgpack_zone_destroy(&z);
    free(data);

    /* The JSON export encoder must cope with anything a message holds. */
    struct codec_buf j;
    codec_buf_init(&j, 0);
    codec_to_json(&j, o);
    codec_buf_free(&j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *why = NULL, *why_s = NULL, *why_d = NULL;
    int rc = codec_check(data, size, &why);
    int rc_s = codec_check_structure(data, size, &why_s);
    check_verdict(rc, why, "codec_check");
    check_verdict(rc_s, why_s, "codec_check_structure");
    if (rc == 0 && rc_s != 0)
        VIOLATION("codec_check accepted what codec_check_structure refused (%s)", why_s);
    /* Both refuse: for the same reason, unless codec_check met a bad string
     * before the structural fault. */
    bool nul = rc != 0 && strcmp(why, CODEC_NUL_SENTENCE) == 0;
    if (rc != 0 && rc_s != 0 && strcmp(why, why_s) != 0 && !strstr(why, "UTF-8") && !nul)
        VIOLATION("the two checks refused for different reasons: '%s' / '%s'", why, why_s);
    if (rc != 0 && rc_s == 0 && !strstr(why, "UTF-8") && !nul)
        VIOLATION("codec_check refused a well-structured message, not for a string: %s", why);

    msgpack_zone zone;
    msgpack_zone_init(&zone, 2048);
    if (rc_s == 0) {
        /* Structure accepted: msgpack-c must agree, byte for byte. */
        size_t off = 0;
        msgpack_object o;
        msgpack_unpack_return ur = msgpack_unpack((const char *)data, size, &off, &zone, &o);
        if (ur != MSGPACK_UNPACK_SUCCESS)
            VIOLATION("codec_check_structure accepted %zu bytes msgpack_unpack refuses (%d)", size,
                      (int)ur);
        if (off != size)
            VIOLATION("msgpack_unpack consumed %zu of the %zu bytes codec_check accepted", off,
                      size);
        if (o.type != MSGPACK_OBJECT_MAP)
            VIOLATION("codec_check accepted a message that is not a map (type %d)", (int)o.type);
        bool utf8_ok = true;
        int depth = walk(&o, &utf8_ok);
        if (depth > CODEC_MAX_DEPTH)
            VIOLATION("codec_check accepted nesting %d deep (limit %d)", depth, CODEC_MAX_DEPTH);
        if ((rc == 0) != utf8_ok)
            VIOLATION("codec_check says the strings are %s UTF-8 without NUL, the reference "
                      "says %s",
                      rc == 0 ? "valid" : "invalid", utf8_ok ? "valid" : "invalid");
        /* The sentence dispatch sends for a NUL: exactly then, naming it. */
        char named[256];
        int got = codec_name_nul(&o, named, sizeof named);
        if (got != nul)
            VIOLATION("codec_name_nul says %d where codec_check refused '%s'", got,
                      rc ? why : "nothing");
        if (got && (!ref_utf8((const uint8_t *)named, strlen(named)) ||
                    !strstr(named, "contains a NUL byte")))
            VIOLATION("codec_name_nul wrote '%s'", named);
    }
    msgpack_zone_destroy(&zone);

    /* codec_decode, as dispatch_message calls it. */
    msgpack_zone_init(&zone, 2048);
    msgpack_object msg;
    int rc_d = codec_decode(data, size, &zone, &msg, &why_d);
    if (rc_d != rc)
        VIOLATION("codec_decode says %d, codec_check %d", rc_d, rc);
    if (rc_d == 0) {
        if (msg.type != MSGPACK_OBJECT_MAP)
            VIOLATION("codec_decode returned a %d, not a map", (int)msg.type);
        check_ops(&msg);
        check_roundtrip(&msg);
        /* The lookups handlers use, on whatever the message holds. */
        uint64_t u;
        (void)codec_get_uint(&msg, "id", &u);
        char *s = codec_strdup(codec_get(&msg, "name"));
        free(s);
    } else {
        check_verdict(rc_d, why_d, "codec_decode");
    }
    msgpack_zone_destroy(&zone);
    return 0;
}
