#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

/* Returns 1 when s[0..n) is valid UTF-8 (no overlongs, no surrogates). */
static int utf8_valid(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t need;
        uint32_t cp;
        if (c >= 0xc2 && c <= 0xdf) {
            need = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i <= need)
            return 0;
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return 0;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        i += need + 1;
    }
    return 1;
}

size_t codec_utf8_prefix(const char *s, size_t n)
{
    size_t ok = 0;
    for (size_t end = 1; end <= n; end++)
        if (utf8_valid((const uint8_t *)s + ok, end - ok))
            ok = end;
    return ok;
}

static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

static int check(const uint8_t *buf, size_t len, int utf8, const char **why)
{
    uint64_t stack[CODEC_MAX_DEPTH + 1];
    int top = 0;
    size_t pos = 0;

    *why = NULL;
    if (len == 0) {
        *why = "The message is empty; send one MessagePack map.";
        return RF_EBAD_REQUEST;
    }
    if (!((buf[0] >= 0x80 && buf[0] <= 0x8f) || buf[0] == 0xde || buf[0] == 0xdf)) {
        *why = "The message must be one MessagePack map.";
        return RF_EBAD_REQUEST;
    }
    stack[0] = 1;
    while (top >= 0) {
        if (stack[top] == 0) {
            top--;
            continue;
        }
        stack[top]--;
        if (pos >= len)
            goto truncated;
        uint8_t b = buf[pos++];
        size_t rest = len - pos;
        uint64_t children = 0, payload = 0;
        int is_container = 0, is_str = 0, hdr = 0;

        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            payload = 0;
        } else if (b <= 0x8f) {
            is_container = 1;
            children = 2u * (b & 0x0f);
        } else if (b <= 0x9f) {
            is_container = 1;
            children = b & 0x0f;
        } else if (b <= 0xbf) {
            is_str = 1;
            payload = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4:
            case 0xc5:
            case 0xc6: /* bin 8/16/32 */
                hdr = 1 << (b - 0xc4);
                if (rest < (size_t)hdr)
                    goto truncated;
                payload = be(buf + pos, hdr);
                break;
            case 0xc7:
            case 0xc8:
            case 0xc9: /* ext 8/16/32: length, then type */
                hdr = 1 << (b - 0xc7);
                if (rest < (size_t)hdr)
                    goto truncated;
                payload = be(buf + pos, hdr) + 1;
                break;
            case 0xca:
                payload = 4;
                break;
            case 0xcb:
                payload = 8;
                break;
            case 0xcc:
            case 0xd0:
                payload = 1;
                break;
            case 0xcd:
            case 0xd1:
                payload = 2;
                break;
            case 0xce:
            case 0xd2:
                payload = 4;
                break;
            case 0xcf:
            case 0xd3:
                payload = 8;
                break;
            case 0xd4:
                payload = 2;
                break;
            case 0xd5:
                payload = 3;
                break;
            case 0xd6:
                payload = 5;
                break;
            case 0xd7:
                payload = 9;
                break;
            case 0xd8:
                payload = 17;
                break;
            case 0xd9:
            case 0xda:
            case 0xdb: /* str 8/16/32 */
                hdr = 1 << (b - 0xd9);
                if (rest < (size_t)hdr)
                    goto truncated;
                payload = be(buf + pos, hdr);
                is_str = 1;
                break;
            case 0xdc:
            case 0xdd: /* array 16/32 */
                hdr = b == 0xdc ? 2 : 4;
                if (rest < (size_t)hdr)
                    goto truncated;
                children = be(buf + pos, hdr);
                is_container = 1;
                break;
            case 0xde:
            case 0xdf: /* map 16/32 */
                hdr = b == 0xde ? 2 : 4;
                if (rest < (size_t)hdr)
                    goto truncated;
                children = 2 * be(buf + pos, hdr);
                is_container = 1;
                break;
            default: /* 0xc1 is never used */
                *why = "The message holds a byte that is not MessagePack (0xc1).";
                return RF_EBAD_REQUEST;
            }
        }
        pos += (size_t)hdr;
        rest = len - pos;
        if (is_container) {
            /* Every element takes at least one byte. */
            if (children > rest)
                goto truncated;
            if (top + 1 > CODEC_MAX_DEPTH) {
                *why = "The message nests deeper than 32 levels.";
                return RF_EBAD_REQUEST;
            }
            stack[++top] = children;
            continue;
        }
        if (payload > rest)
            goto truncated;
        if (is_str && utf8 && !utf8_valid(buf + pos, (size_t)payload)) {
            *why = "A string in the message is not valid UTF-8.";
            return RF_EBAD_REQUEST;
        }
        if (is_str && utf8 && payload && memchr(buf + pos, 0, (size_t)payload)) {
            *why = CODEC_NUL_SENTENCE;
            return RF_EBAD_REQUEST;
        }
        pos += (size_t)payload;
    }
    if (pos != len) {
        *why = "The message has bytes after its map; send exactly one map per frame.";
        return RF_EBAD_REQUEST;
    }
    return 0;

truncated:
    *why = "The message declares more data than it holds.";
    return RF_EBAD_REQUEST;
}

int codec_check(const uint8_t *buf, size_t len, const char **why)
{
    return check(buf, len, 1, why);
}

int codec_check_structure(const uint8_t *buf, size_t len, const char **why)
{
    return check(buf, len, 0, why);
}

/* The walk of codec_name_nul: path[0..plen) names o's place. Returns 1 when
 * it wrote the sentence, -1 at a string that is not valid UTF-8 (codec_check
 * stops there first), 0 when o holds neither. */
static int name_nul(const msgpack_object *o, char *path, size_t plen, size_t cap, char *why,
                    size_t whysz)
{
    uint32_t n;
    switch (o->type) {
    case MSGPACK_OBJECT_STR:
        if (!utf8_valid((const uint8_t *)o->via.str.ptr, o->via.str.size))
            return -1;
        if (!o->via.str.size || !memchr(o->via.str.ptr, 0, o->via.str.size))
            return 0;
        snprintf(why, whysz, "Field '%.*s' contains a NUL byte; strings never contain NUL.",
                 (int)codec_utf8_prefix(path, plen), path);
        return 1;
    case MSGPACK_OBJECT_ARRAY:
        n = o->via.array.size;
        for (uint32_t i = 0; i < n; i++) {
            int w = snprintf(path + plen, cap - plen, "[%u]", (unsigned)i);
            size_t sub = w < 0 || (size_t)w >= cap - plen ? cap - 1 : plen + (size_t)w;
            int rc = name_nul(&o->via.array.ptr[i], path, sub, cap, why, whysz);
            path[plen] = '\0';
            if (rc)
                return rc;
        }
        return 0;
    case MSGPACK_OBJECT_MAP:
        n = o->via.map.size;
        for (uint32_t i = 0; i < n; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            size_t sub = plen;
            if (k->type == MSGPACK_OBJECT_STR) {
                if (!utf8_valid((const uint8_t *)k->via.str.ptr, k->via.str.size))
                    return -1;
                if (k->via.str.size && memchr(k->via.str.ptr, 0, k->via.str.size)) {
                    if (plen)
                        snprintf(why, whysz,
                                 "A key in field '%.*s' contains a NUL byte; strings never "
                                 "contain NUL.",
                                 (int)codec_utf8_prefix(path, plen), path);
                    else
                        snprintf(why, whysz,
                                 "A key of the message contains a NUL byte; strings "
                                 "never contain NUL.");
                    return 1;
                }
            }
            if (k->type == MSGPACK_OBJECT_MAP || k->type == MSGPACK_OBJECT_ARRAY) {
                int rc = name_nul(k, path, plen, cap, why, whysz);
                if (rc)
                    return rc;
            }
            /* The value's place: path.key (a key that is not a string shows as ?). */
            int w = k->type == MSGPACK_OBJECT_STR
                        ? snprintf(path + plen, cap - plen, "%s%.*s", plen ? "." : "",
                                   (int)k->via.str.size, k->via.str.ptr)
                        : snprintf(path + plen, cap - plen, "%s?", plen ? "." : "");
            sub = w < 0 || (size_t)w >= cap - plen ? cap - 1 : plen + (size_t)w;
            int rc = name_nul(&o->via.map.ptr[i].val, path, sub, cap, why, whysz);
            path[plen] = '\0';
            if (rc)
                return rc;
        }
        return 0;
    default:
        return 0;
    }
}

int codec_name_nul(const msgpack_object *o, char *why, size_t whysz)
{
    char path[96];
    path[0] = '\0';
    return name_nul(o, path, 0, sizeof path, why, whysz) == 1;
}

int codec_decode(const uint8_t *buf, size_t len, msgpack_zone *zone, msgpack_object *out,
                 const char **why)
{
    int rc = codec_check(buf, len, why);
    if (rc)
        return rc;
    size_t off = 0;
    msgpack_unpack_return r = msgpack_unpack((const char *)buf, len, &off, zone, out);
    if (r != MSGPACK_UNPACK_SUCCESS || out->type != MSGPACK_OBJECT_MAP) {
        *why = "The message is not one well-formed MessagePack map.";
        return RF_EBAD_REQUEST;
    }
    return 0;
}

const msgpack_object *codec_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == klen &&
            memcmp(kv->key.via.str.ptr, key, klen) == 0)
            return &kv->val;
    }
    return NULL;
}

bool codec_str_eq_n(const char *s, size_t n, const char *z)
{
    for (size_t i = 0; i < n; i++) /* never reads z past its NUL */
        if (!z[i] || z[i] != s[i])
            return false;
    return z[n] == '\0';
}

bool codec_str_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}

char *codec_strdup(const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return NULL;
    char *s = malloc(o->via.str.size + 1);
    if (!s)
        return NULL;
    memcpy(s, o->via.str.ptr, o->via.str.size);
    s[o->via.str.size] = '\0';
    return s;
}

int codec_get_uint(const msgpack_object *map, const char *key, uint64_t *v)
{
    const msgpack_object *o = codec_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return 0;
    *v = o->via.u64;
    return 1;
}

void codec_buf_init(struct codec_buf *b, size_t head)
{
    b->cap = head + 256;
    b->data = malloc(b->cap);
    b->oom = b->data == NULL;
    if (b->oom)
        b->cap = 0;
    else
        memset(b->data, 0, head);
    b->len = b->oom ? 0 : head;
    b->head = head;
}

void codec_buf_free(struct codec_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

char *codec_buf_take(struct codec_buf *b, size_t *len)
{
    char *d = b->data;
    *len = b->len;
    if (b->oom) {
        free(d);
        d = NULL;
        *len = 0;
    }
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

static int codec_buf_write(void *data, const char *buf, size_t len)
{
    struct codec_buf *b = data;
    if (b->oom)
        return -1;
    if (len == 0) /* msgpack-c passes (NULL, 0) for an empty string: memcpy(_, NULL, 0) is UB */
        return 0;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->oom = 1;
            return -1;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, buf, len);
    b->len += len;
    return 0;
}

void codec_buf_append(struct codec_buf *b, const void *data, size_t n)
{
    codec_buf_write(b, data, n);
}

void codec_packer_init(msgpack_packer *pk, struct codec_buf *b)
{
    msgpack_packer_init(pk, b, codec_buf_write);
}

void codec_pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void codec_pack_str(msgpack_packer *pk, const char *s)
{
    if (!s)
        msgpack_pack_nil(pk);
    else
        codec_pack_strn(pk, s, strlen(s));
}

void codec_pack_kv_str(msgpack_packer *pk, const char *key, const char *val)
{
    codec_pack_str(pk, key);
    codec_pack_str(pk, val);
}

void codec_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t val)
{
    codec_pack_str(pk, key);
    msgpack_pack_uint64(pk, val);
}

void codec_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t val)
{
    codec_pack_str(pk, key);
    msgpack_pack_int64(pk, val);
}

void codec_pack_kv_bool(msgpack_packer *pk, const char *key, bool val)
{
    codec_pack_str(pk, key);
    if (val)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void codec_pack_kv_nil(msgpack_packer *pk, const char *key)
{
    codec_pack_str(pk, key);
    msgpack_pack_nil(pk);
}

void codec_pack_obj(msgpack_packer *pk, const msgpack_object *o)
{
    msgpack_pack_object(pk, *o);
}

static void json_put(struct codec_buf *b, const char *s, size_t n)
{
    codec_buf_write(b, s, n);
}

static void json_str(struct codec_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    json_put(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7] = {'\\', (char)c, 0, 0, 0, 0, 0};
        if (c == '"' || c == '\\') {
            json_put(b, esc, 2);
        } else if (c < 0x20) {
            esc[1] = 'u';
            esc[2] = '0';
            esc[3] = '0';
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            json_put(b, esc, 6);
        } else {
            json_put(b, (const char *)&s[i], 1);
        }
    }
    json_put(b, "\"", 1);
}

static void json_base64(struct codec_buf *b, const uint8_t *p, size_t n)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    json_put(b, "\"", 1);
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        char out[4] = {t[v >> 18], t[(v >> 12) & 63], i + 1 < n ? t[(v >> 6) & 63] : '=',
                       i + 2 < n ? t[v & 63] : '='};
        json_put(b, out, 4);
    }
    json_put(b, "\"", 1);
}

void codec_to_json(struct codec_buf *b, const msgpack_object *o)
{
    char num[48];
    int n;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        json_put(b, "null", 4);
        return;
    case MSGPACK_OBJECT_BOOLEAN:
        json_put(b, o->via.boolean ? "true" : "false", o->via.boolean ? 4 : 5);
        return;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        n = snprintf(num, sizeof num, "%llu", (unsigned long long)o->via.u64);
        json_put(b, num, (size_t)n);
        return;
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        n = snprintf(num, sizeof num, "%lld", (long long)o->via.i64);
        json_put(b, num, (size_t)n);
        return;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (o->via.f64 != o->via.f64 || o->via.f64 > 1e308 || o->via.f64 < -1e308) {
            json_put(b, "null", 4);
            return;
        }
        n = snprintf(num, sizeof num, "%.17g", o->via.f64);
        json_put(b, num, (size_t)n);
        return;
    case MSGPACK_OBJECT_STR:
        json_str(b, o->via.str.ptr, o->via.str.size);
        return;
    case MSGPACK_OBJECT_BIN:
        json_base64(b, (const uint8_t *)o->via.bin.ptr, o->via.bin.size);
        return;
    case MSGPACK_OBJECT_ARRAY:
        json_put(b, "[", 1);
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            if (i)
                json_put(b, ",", 1);
            codec_to_json(b, &o->via.array.ptr[i]);
        }
        json_put(b, "]", 1);
        return;
    case MSGPACK_OBJECT_MAP:
        json_put(b, "{", 1);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (i)
                json_put(b, ",", 1);
            if (kv->key.type == MSGPACK_OBJECT_STR)
                codec_to_json(b, &kv->key);
            else
                json_str(b, "?", 1);
            json_put(b, ":", 1);
            codec_to_json(b, &kv->val);
        }
        json_put(b, "}", 1);
        return;
    default:
        json_put(b, "null", 4);
        return;
    }
}
