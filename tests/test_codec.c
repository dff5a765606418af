/* Unit tests of protocol/codec.c and protocol/ops.c: the armoured decoder,
 * the writer, and validation against the operation table. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "codec.h"
#include "errors.h"
#include "ops.h"

static int check_bytes(const char *bytes, size_t n)
{
    const char *why;
    return codec_check((const uint8_t *)bytes, n, &why);
}

static void test_check_accepts_maps(void)
{
    CHECK(check_bytes("\x80", 1) == 0);                                      /* {} */
    CHECK(check_bytes("\x81\xa1t\xa2ok", 6) == 0);                           /* {t: "ok"} */
    CHECK(check_bytes("\x81\xa1\x61\x92\x01\xc0", 6) == 0);                  /* {a: [1, nil]} */
    CHECK(check_bytes("\xde\x00\x01\xa1\x61\xcb\0\0\0\0\0\0\0\0", 14) == 0); /* map16, f64 */
    CHECK(check_bytes("\x81\xa1s\xa2\xc2\xbd", 6) == 0);                     /* "½" in UTF-8 */
}

static void test_check_refuses_hostile_input(void)
{
    CHECK(check_bytes("", 0) == RF_EBAD_REQUEST);
    CHECK(check_bytes("\x91\x01", 2) == RF_EBAD_REQUEST);             /* array at top */
    CHECK(check_bytes("\x81\xa1t", 3) == RF_EBAD_REQUEST);            /* value missing */
    CHECK(check_bytes("\x80\x00", 2) == RF_EBAD_REQUEST);             /* trailing byte */
    CHECK(check_bytes("\xdf\xff\xff\xff\xff", 5) == RF_EBAD_REQUEST); /* map32 of 4G */
    CHECK(check_bytes("\x81\xa1\x61\xdd\xff\xff\xff\xff", 8) == RF_EBAD_REQUEST);     /* array32 */
    CHECK(check_bytes("\x81\xa1\x61\xdb\xff\xff\xff\xff", 8) == RF_EBAD_REQUEST);     /* str32 */
    CHECK(check_bytes("\x81\xa1\x61\xc6\xff\xff\xff\xff", 8) == RF_EBAD_REQUEST);     /* bin32 */
    CHECK(check_bytes("\x81\xa1\x61\xc9\xff\xff\xff\xff\x01", 9) == RF_EBAD_REQUEST); /* ext32 */
    CHECK(check_bytes("\x81\xa1\x61\xc1", 4) == RF_EBAD_REQUEST);             /* never-used byte */
    CHECK(check_bytes("\x81\xa1\x61\xa2\xc3\x28", 6) == RF_EBAD_REQUEST);     /* bad UTF-8 */
    CHECK(check_bytes("\x81\xa1\x61\xa3\xed\xa0\x80", 7) == RF_EBAD_REQUEST); /* surrogate */
    CHECK(check_bytes("\x81\xa1\x61\xa2\xc0\x80", 6) == RF_EBAD_REQUEST);     /* overlong NUL */
}

/* {a: [[[...]]]} with `depth` containers in all (the map included). */
static int nested(int depth)
{
    size_t n = (size_t)depth + 2;
    char *b = malloc(n);
    b[0] = (char)0x81;
    b[1] = (char)0xa1;
    b[2] = 'a';
    for (int i = 0; i < depth - 2; i++)
        b[3 + i] = (char)0x91;
    b[3 + depth - 2] = (char)0x90;
    int rc = check_bytes(b, n);
    free(b);
    return rc;
}

static void test_check_depth(void)
{
    CHECK(nested(CODEC_MAX_DEPTH) == 0);
    CHECK(nested(CODEC_MAX_DEPTH + 1) == RF_EBAD_REQUEST);
    CHECK(nested(100000) == RF_EBAD_REQUEST);
}

static void test_utf8_prefix(void)
{
    CHECK(codec_utf8_prefix("ab\xc3\xa9", 4) == 4);
    CHECK(codec_utf8_prefix("ab\xc3", 3) == 2);     /* cut inside é */
    CHECK(codec_utf8_prefix("ab\xe2\x82", 4) == 2); /* cut inside € */
    CHECK(codec_utf8_prefix("a\xff"
                            "b",
                            3) == 1); /* invalid byte */
    CHECK(codec_utf8_prefix("", 0) == 0);
}

static void test_roundtrip(void)
{
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 16);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 4);
    codec_pack_kv_str(&pk, "t", "join");
    codec_pack_kv_u64(&pk, "id", 7);
    codec_pack_kv_nil(&pk, "after");
    codec_pack_str(&pk, "long");
    char big[3000];
    memset(big, 'x', sizeof big);
    codec_pack_strn(&pk, big, sizeof big);
    size_t len;
    char *data = codec_buf_take(&b, &len);
    CHECK(data != NULL && len > 3000 + 16);

    msgpack_zone z;
    msgpack_object o;
    const char *why;
    msgpack_zone_init(&z, 1024);
    CHECK(codec_decode((uint8_t *)data + 16, len - 16, &z, &o, &why) == 0);
    uint64_t id = 0;
    CHECK(codec_get_uint(&o, "id", &id) == 1 && id == 7);
    CHECK(codec_str_eq(codec_get(&o, "t"), "join"));
    CHECK(codec_get(&o, "after") && codec_get(&o, "after")->type == MSGPACK_OBJECT_NIL);
    CHECK(codec_get(&o, "missing") == NULL);
    CHECK(codec_get(&o, "long")->via.str.size == sizeof big);
    msgpack_zone_destroy(&z);
    free(data);
}

/* Validates a request given as packed key/values through its op's fields. */
static int validate(const char *op, const char *hex_map, size_t n)
{
    msgpack_zone z;
    msgpack_object o;
    const char *why;
    char msg[256];
    msgpack_zone_init(&z, 1024);
    int rc = codec_decode((const uint8_t *)hex_map, n, &z, &o, &why);
    if (!rc)
        rc = ops_validate(ops_find(op, strlen(op)), &o, msg, sizeof msg);
    msgpack_zone_destroy(&z);
    return rc;
}

#define VALIDATE(op, lit) validate(op, lit, sizeof(lit) - 1)

static void test_validation(void)
{
    CHECK(ops_find("join", 4) && ops_find("join", 4)->id == OP_JOIN);
    CHECK(ops_find("nope", 4) == NULL);
    /* room.create {name: "R"} ok; {} missing name; {name: 1} ill-typed */
    CHECK(VALIDATE("room.create", "\x81\xa4name\xa1R") == 0);
    CHECK(VALIDATE("room.create", "\x80") == RF_EBAD_REQUEST);
    CHECK(VALIDATE("room.create", "\x81\xa4name\x01") == RF_EBAD_REQUEST);
    /* deck: built-in name, unknown name, custom list, duplicate cards, empty list */
    CHECK(VALIDATE("room.create", "\x82\xa4name\xa1R\xa4\x64\x65\x63k\xa6tshirt") == 0);
    CHECK(VALIDATE("room.create", "\x82\xa4name\xa1R\xa4\x64\x65\x63k\xa3xyz") == RF_EBAD_REQUEST);
    CHECK(VALIDATE("room.create", "\x82\xa4name\xa1R\xa4\x64\x65\x63k\x92\xa1\x31\xa1\x32") == 0);
    CHECK(VALIDATE("room.create", "\x82\xa4name\xa1R\xa4\x64\x65\x63k\x92\xa1\x31\xa1\x31") ==
          RF_EBAD_REQUEST);
    CHECK(VALIDATE("room.create", "\x82\xa4name\xa1R\xa4\x64\x65\x63k\x90") == RF_EBAD_REQUEST);
    /* item.move needs after, which may be nil */
    CHECK(VALIDATE("item.move", "\x82\xa4item\xa2i1\xa5\x61\x66ter\xc0") == 0);
    CHECK(VALIDATE("item.move", "\x81\xa4item\xa2i1") == RF_EBAD_REQUEST);
    /* role permissions */
    CHECK(ops_allows(ops_get(OP_ITEM_MOVE), ROLE_OWNER));
    CHECK(!ops_allows(ops_get(OP_ITEM_MOVE), ROLE_MEMBER));
    CHECK(!ops_allows(ops_get(OP_ITEM_ADD), ROLE_OBSERVER));
    CHECK(ops_allows(ops_get(OP_JOIN), -1));
    CHECK(deck_builtin("modified", 8) && strcmp(deck_builtin("modified", 8)[1], "½") == 0);
}

/* Strings never contain NUL (issue 10): codec_check refuses a NUL in any
 * string, keys included, at any depth; binary values are not strings. */
static void test_check_refuses_nul(void)
{
    const char *why = NULL;
    /* {a: "\0"}, {a: "x\0y"} (str8), {"a\0": 1}, {a: [1, {b: "\0"}]} */
    static const char v1[] = "\x81\xa1\x61\xa1\x00", v2[] = "\x81\xa1\x61\xd9\x03x\x00y",
                      k1[] = "\x81\xa2\x61\x00\x01",
                      deep[] = "\x81\xa1\x61\x92\x01\x81\xa1\x62\xa1\x00";
    CHECK(codec_check((const uint8_t *)v1, sizeof v1 - 1, &why) == RF_EBAD_REQUEST);
    CHECK(why && strcmp(why, CODEC_NUL_SENTENCE) == 0);
    CHECK(check_bytes(v2, sizeof v2 - 1) == RF_EBAD_REQUEST);
    CHECK(check_bytes(k1, sizeof k1 - 1) == RF_EBAD_REQUEST);
    CHECK(check_bytes(deep, sizeof deep - 1) == RF_EBAD_REQUEST);
    /* well-formed all the same: the id of such a message can be read */
    CHECK(codec_check_structure((const uint8_t *)v2, sizeof v2 - 1, &why) == 0);
    CHECK(codec_check_structure((const uint8_t *)deep, sizeof deep - 1, &why) == 0);
    CHECK(check_bytes("\x81\xa1\x61\xc4\x02\x00\x00", 7) == 0); /* bin with NULs: not a string */
    CHECK(check_bytes("\x81\xa1\x61\xa2\xc0\x80", 6) == RF_EBAD_REQUEST); /* overlong NUL */
    msgpack_zone z;
    msgpack_object o;
    msgpack_zone_init(&z, 256);
    CHECK(codec_decode((const uint8_t *)v1, sizeof v1 - 1, &z, &o, &why) == RF_EBAD_REQUEST);
    msgpack_zone_destroy(&z);
}

/* codec_name_nul on the bytes of a message; returns its sentence or "" (0). */
static const char *name_nul(const char *bytes, size_t n, char *why, size_t whysz)
{
    msgpack_zone z;
    msgpack_object o;
    size_t off = 0;
    const char *ignored;
    why[0] = '\0';
    msgpack_zone_init(&z, 1024);
    if (codec_check_structure((const uint8_t *)bytes, n, &ignored) == 0 &&
        msgpack_unpack(bytes, n, &off, &z, &o) == MSGPACK_UNPACK_SUCCESS &&
        !codec_name_nul(&o, why, whysz))
        why[0] = '\0';
    msgpack_zone_destroy(&z);
    return why;
}

#define NAME_NUL(lit) name_nul(lit, sizeof(lit) - 1, why, sizeof why)

static void test_name_nul(void)
{
    char why[256];
    /* item.add {item: {title: "\0"}} */
    CHECK(strcmp(NAME_NUL("\x82\xa1t\xa8item.add\xa4item\x81\xa5title\xa1\x00"),
                 "Field 'item.title' contains a NUL byte; strings never contain NUL.") == 0);
    /* join {name: "\0"} */
    CHECK(strstr(NAME_NUL("\x82\xa1t\xa4join\xa4name\xa1\x00"), "Field 'name' contains a NUL"));
    /* room.create {deck: ["5\0a", "5\0b", "\0"]}: the first card names it */
    CHECK(strstr(NAME_NUL("\x81\xa4\x64\x65\x63k\x93\xa3\x35\x00\x61\xa3\x35\x00\x62\xa1\x00"),
                 "Field 'deck[0]' contains"));
    /* item.split {children: [{title: "a"}, {acceptance: ["ok", "\0"]}]} */
    CHECK(strstr(NAME_NUL("\x81\xa8\x63hildren\x92\x81\xa5title\xa1\x61"
                          "\x81\xaa\x61\x63\x63\x65ptance\x92\xa2ok\xa1\x00"),
                 "Field 'children[1].acceptance[1]' contains"));
    /* a key: in a nested map, at the top */
    CHECK(strstr(NAME_NUL("\x81\xa4item\x81\xa3k\x00y\x01"), "A key in field 'item' contains"));
    CHECK(strstr(NAME_NUL("\x81\xa3k\x00y\x01"), "A key of the message contains a NUL"));
    /* a key that is not a string shows as ? */
    CHECK(strstr(NAME_NUL("\x81\x07\xa1\x00"), "Field '?' contains"));
    /* no NUL; or a string that is not UTF-8 comes first (codec_check says that) */
    CHECK(strcmp(NAME_NUL("\x81\xa1\x61\xa1\x62"), "") == 0);
    CHECK(strcmp(NAME_NUL("\x82\xa1\x61\xa2\xc3\x28\xa1\x62\xa1\x00"), "") == 0);
    CHECK(strstr(NAME_NUL("\x82\xa1\x61\xa1\x00\xa1\x62\xa2\xc3\x28"), "Field 'a' contains"));
    /* a long path is cut at a character boundary and the sentence stays UTF-8 */
    char big[2 + 3 + 200 + 2];
    size_t n = 0;
    big[n++] = (char)0x81;
    big[n++] = (char)0xd9;
    big[n++] = (char)200;
    for (int i = 0; i < 100; i++) {
        big[n++] = (char)0xc3;
        big[n++] = (char)0xa9; /* é */
    }
    big[n++] = (char)0xa1;
    big[n++] = 0;
    const char *s = name_nul(big, n, why, sizeof why);
    CHECK(strncmp(s, "Field '\xc3\xa9", 9) == 0 && strstr(s, "' contains a NUL byte"));
    CHECK(codec_utf8_prefix(s, strlen(s)) == strlen(s) && strlen(s) < 200);
}

int main(void)
{
    test_check_accepts_maps();
    test_check_refuses_hostile_input();
    test_check_depth();
    test_utf8_prefix();
    test_roundtrip();
    test_validation();
    test_check_refuses_nul();
    test_name_nul();
    return check_summary("test_codec");
}
