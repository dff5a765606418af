#include "json.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

struct jp {
    const char *s;
    size_t n, pos;
    int depth;
    struct codec_buf str; /* a string being decoded */
    char *why;
    size_t whysz;
};

size_t json_utf8_valid(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = u[i];
        size_t len;
        uint32_t cp, min;
        if (c < 0x80) {
            i++;
            continue;
        }
        if ((c & 0xE0) == 0xC0)
            len = 2, cp = c & 0x1F, min = 0x80;
        else if ((c & 0xF0) == 0xE0)
            len = 3, cp = c & 0x0F, min = 0x800;
        else if ((c & 0xF8) == 0xF0)
            len = 4, cp = c & 0x07, min = 0x10000;
        else
            return i;
        if (n - i < len)
            return i;
        for (size_t k = 1; k < len; k++) {
            if ((u[i + k] & 0xC0) != 0x80)
                return i;
            cp = (cp << 6) | (u[i + k] & 0x3F);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return i;
        i += len;
    }
    return n;
}

static int fail(struct jp *p, const char *what)
{
    size_t line = 1, col = 1;
    for (size_t i = 0; i < p->pos && i < p->n; i++) {
        if (p->s[i] == '\n')
            line++, col = 1;
        else if (((unsigned char)p->s[i] & 0xC0) != 0x80)
            col++;
    }
    snprintf(p->why, p->whysz, "The JSON is not valid at line %zu, column %zu: %s.", line, col,
             what);
    return RF_EBAD_REQUEST;
}

static void ws(struct jp *p)
{
    while (p->pos < p->n && strchr(" \t\r\n", p->s[p->pos]) && p->s[p->pos])
        p->pos++;
}

static int lit(struct jp *p, const char *word)
{
    size_t k = strlen(word);
    if (p->n - p->pos < k || memcmp(p->s + p->pos, word, k) != 0)
        return fail(p, "expected a value");
    p->pos += k;
    return 0;
}

static int hex4(struct jp *p, uint32_t *out)
{
    uint32_t v = 0;
    if (p->n - p->pos < 4)
        return fail(p, "a \\u escape needs four hex digits");
    for (int i = 0; i < 4; i++) {
        char c = p->s[p->pos++];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (uint32_t)(c - 'A' + 10);
        else
            return fail(p, "a \\u escape needs four hex digits");
    }
    *out = v;
    return 0;
}

static void put_utf8(struct codec_buf *b, uint32_t cp)
{
    char u[4];
    size_t k;
    if (cp < 0x80)
        u[0] = (char)cp, k = 1;
    else if (cp < 0x800)
        u[0] = (char)(0xC0 | cp >> 6), u[1] = (char)(0x80 | (cp & 0x3F)), k = 2;
    else if (cp < 0x10000)
        u[0] = (char)(0xE0 | cp >> 12), u[1] = (char)(0x80 | ((cp >> 6) & 0x3F)),
        u[2] = (char)(0x80 | (cp & 0x3F)), k = 3;
    else
        u[0] = (char)(0xF0 | cp >> 18), u[1] = (char)(0x80 | ((cp >> 12) & 0x3F)),
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3F)), u[3] = (char)(0x80 | (cp & 0x3F)), k = 4;
    codec_buf_append(b, u, k);
}

/* A string at p->pos (its opening quote) decoded into p->str. */
static int string(struct jp *p)
{
    p->str.len = 0;
    p->pos++;
    for (;;) {
        size_t start = p->pos;
        while (p->pos < p->n && p->s[p->pos] != '"' && p->s[p->pos] != '\\' &&
               (unsigned char)p->s[p->pos] >= 0x20)
            p->pos++;
        codec_buf_append(&p->str, p->s + start, p->pos - start);
        if (p->pos >= p->n)
            return fail(p, "a string is not closed");
        char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            return p->str.oom ? RF_ENOMEM : 0;
        }
        if (c != '\\')
            return fail(p, "a control character inside a string must be escaped");
        if (++p->pos >= p->n)
            return fail(p, "a string is not closed");
        c = p->s[p->pos++];
        const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
        const char *at = c ? strchr(from, c) : NULL;
        if (at) {
            codec_buf_append(&p->str, &to[at - from], 1);
            continue;
        }
        if (c != 'u')
            return fail(p, "an unknown escape in a string");
        uint32_t cp, lo;
        int rc = hex4(p, &cp);
        if (rc)
            return rc;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                return fail(p, "a lone UTF-16 surrogate in a \\u escape");
            p->pos += 2;
            if ((rc = hex4(p, &lo)))
                return rc;
            if (lo < 0xDC00 || lo > 0xDFFF)
                return fail(p, "a lone UTF-16 surrogate in a \\u escape");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return fail(p, "a lone UTF-16 surrogate in a \\u escape");
        } else if (cp == 0) {
            return fail(p, "a string holds a NUL (\\u0000)");
        }
        put_utf8(&p->str, cp);
    }
}

static int number(struct jp *p, msgpack_packer *pk)
{
    size_t start = p->pos;
    bool integer = true;
    if (p->s[p->pos] == '-')
        p->pos++;
    if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return fail(p, "expected a value");
    if (p->s[p->pos] == '0')
        p->pos++;
    else
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    if (p->pos < p->n && p->s[p->pos] == '.') {
        integer = false;
        p->pos++;
        if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return fail(p, "a number needs digits after its point");
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        integer = false;
        p->pos++;
        if (p->pos < p->n && (p->s[p->pos] == '+' || p->s[p->pos] == '-'))
            p->pos++;
        if (p->pos >= p->n || p->s[p->pos] < '0' || p->s[p->pos] > '9')
            return fail(p, "a number needs digits in its exponent");
        while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9')
            p->pos++;
    }
    char num[64];
    size_t k = p->pos - start;
    if (k >= sizeof num)
        integer = false, k = sizeof num - 1; /* a long number: as a double */
    memcpy(num, p->s + start, k);
    num[k] = '\0';
    errno = 0;
    if (integer && num[0] != '-') {
        unsigned long long v = strtoull(num, NULL, 10);
        if (!errno) {
            msgpack_pack_uint64(pk, v);
            return 0;
        }
    } else if (integer) {
        long long v = strtoll(num, NULL, 10);
        if (!errno) {
            msgpack_pack_int64(pk, v);
            return 0;
        }
    }
    if (p->pos - start >= sizeof num)
        return fail(p, "a number is too long");
    msgpack_pack_double(pk, strtod(num, NULL));
    return 0;
}

static int value(struct jp *p, struct codec_buf *b);

/* An array or an object at p->pos: its elements packed into a buffer of
 * their own, then its header (now that their count is known) and them. */
static int container(struct jp *p, struct codec_buf *b)
{
    bool obj = p->s[p->pos] == '{';
    char close = obj ? '}' : ']';
    struct codec_buf in;
    msgpack_packer pk;
    uint32_t count = 0;
    int rc = 0;
    if (++p->depth > JSON_MAX_DEPTH)
        return fail(p, "it nests too deep");
    p->pos++;
    codec_buf_init(&in, 0);
    codec_packer_init(&pk, &in);
    ws(p);
    if (p->pos < p->n && p->s[p->pos] == close) {
        p->pos++;
    } else {
        for (;;) {
            ws(p);
            if (obj) {
                if (p->pos >= p->n || p->s[p->pos] != '"') {
                    rc = fail(p, "expected a key in quotes");
                    break;
                }
                if ((rc = string(p)))
                    break;
                codec_pack_strn(&pk, p->str.data ? p->str.data : "", p->str.len);
                ws(p);
                if (p->pos >= p->n || p->s[p->pos] != ':') {
                    rc = fail(p, "expected ':' after a key");
                    break;
                }
                p->pos++;
            }
            if ((rc = value(p, &in)))
                break;
            if (count == UINT32_MAX) {
                rc = fail(p, "too many elements");
                break;
            }
            count++;
            ws(p);
            if (p->pos < p->n && p->s[p->pos] == ',') {
                p->pos++;
                continue;
            }
            if (p->pos < p->n && p->s[p->pos] == close) {
                p->pos++;
                break;
            }
            rc = fail(p, obj ? "expected ',' or '}'" : "expected ',' or ']'");
            break;
        }
    }
    if (!rc) {
        msgpack_packer out;
        codec_packer_init(&out, b);
        if (obj)
            msgpack_pack_map(&out, count);
        else
            msgpack_pack_array(&out, count);
        codec_buf_append(b, in.data, in.len);
        rc = in.oom || b->oom ? RF_ENOMEM : 0;
    }
    codec_buf_free(&in);
    p->depth--;
    return rc;
}

static int value(struct jp *p, struct codec_buf *b)
{
    msgpack_packer pk;
    codec_packer_init(&pk, b);
    ws(p);
    if (p->pos >= p->n)
        return fail(p, "expected a value");
    switch (p->s[p->pos]) {
    case '{':
    case '[':
        return container(p, b);
    case '"': {
        int rc = string(p);
        if (!rc)
            codec_pack_strn(&pk, p->str.data ? p->str.data : "", p->str.len);
        return rc;
    }
    case 't':
        msgpack_pack_true(&pk);
        return lit(p, "true");
    case 'f':
        msgpack_pack_false(&pk);
        return lit(p, "false");
    case 'n':
        msgpack_pack_nil(&pk);
        return lit(p, "null");
    default:
        return number(p, &pk);
    }
}

int json_to_msgpack(const char *s, size_t n, struct codec_buf *out, char *why, size_t whysz)
{
    struct jp p = {.s = s, .n = n, .why = why, .whysz = whysz};
    size_t ok = json_utf8_valid(s, n);
    if (ok < n) {
        p.pos = ok;
        return fail(&p, "the text is not UTF-8");
    }
    codec_buf_init(&p.str, 0);
    int rc = value(&p, out);
    if (!rc) {
        ws(&p);
        if (p.pos < n)
            rc = fail(&p, "text follows the value");
    }
    if (!rc && out->oom)
        rc = RF_ENOMEM;
    codec_buf_free(&p.str);
    return rc;
}

int json_from_msgpack(struct codec_buf *mp, char **out, size_t *len)
{
    struct codec_buf j;
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    *out = NULL;
    msgpack_zone_init(&z, 1024);
    codec_buf_init(&j, 0);
    if (!mp->oom && msgpack_unpack(mp->data, mp->len, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS) {
        codec_to_json(&j, &o);
        codec_buf_append(&j, "\n", 1);
        *out = codec_buf_take(&j, len);
    }
    if (!*out)
        codec_buf_free(&j);
    msgpack_zone_destroy(&z);
    codec_buf_free(mp);
    return *out ? 0 : RF_ENOMEM;
}
