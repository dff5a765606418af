/* MessagePack codec for the Refine wire protocol, on msgpack-c.
 *
 * Decoding is armoured: msgpack-c allocates whatever a header declares, so
 * every frame is first walked by codec_check(), which bounds each declared
 * length by the bytes actually present, the nesting depth and the string
 * encoding, before msgpack-c sees it.
 *
 * Encoding writes into a growable buffer that reserves `head` bytes in front
 * of the message (the server uses it for its frame header and LWS_PRE). */
#ifndef REFINE_CODEC_H
#define REFINE_CODEC_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CODEC_MAX_DEPTH 32

/* Walks one MessagePack value at buf[0..len). Returns 0 when buf holds exactly
 * one well-formed map (no trailing bytes), every declared length fits in the
 * bytes present, nesting is at most CODEC_MAX_DEPTH and every string (keys
 * included) is valid UTF-8 without a NUL byte; otherwise RF_EBAD_REQUEST with
 * a static sentence in *why (CODEC_NUL_SENTENCE for a NUL).
 *
 * Strings never contain NUL: this is the one place where the rule is kept,
 * for every field of every operation (the server holds strings as C strings,
 * which a NUL would cut). */
int codec_check(const uint8_t *buf, size_t len, const char **why);

#define CODEC_NUL_SENTENCE "A string in the message contains a NUL byte; strings never contain NUL."

/* codec_check() without the string checks (UTF-8, NUL): to read a refused
 * message's id and say which field was refused. */
int codec_check_structure(const uint8_t *buf, size_t len, const char **why);

/* For a message that codec_check() refused at a string: when the first string
 * it refuses (in the order it walks them) holds a NUL, writes a sentence
 * naming that field (a path such as 'item.acceptance[1]', or the map whose key
 * holds the NUL) into why (whysz bytes, valid UTF-8) and returns 1; otherwise
 * (no NUL, or invalid UTF-8 first) returns 0 and leaves why alone. Borrows o. */
int codec_name_nul(const msgpack_object *o, char *why, size_t whysz);

/* The length of the longest prefix of s[0..n) that is valid UTF-8 and does
 * not end inside a character (for cutting text to a buffer's size). */
size_t codec_utf8_prefix(const char *s, size_t n);

/* codec_check() then msgpack_unpack() into zone (which the caller owns and
 * destroys; out borrows from it). Returns 0 or RF_EBAD_REQUEST with *why. */
int codec_decode(const uint8_t *buf, size_t len, msgpack_zone *zone, msgpack_object *out,
                 const char **why);

/* The value under a string key of a map object, or NULL (also when map is not
 * a map). Borrowed. */
const msgpack_object *codec_get(const msgpack_object *map, const char *key);

/* 1 if s[0..n) equals the NUL-terminated z. */
bool codec_str_eq_n(const char *s, size_t n, const char *z);

/* 1 if o is a string equal to s. */
bool codec_str_eq(const msgpack_object *o, const char *s);

/* Copies string object o into a new NUL-terminated heap string (caller frees),
 * or NULL if o is not a string or on out of memory. */
char *codec_strdup(const msgpack_object *o);

/* Looks up an unsigned integer. Returns 1 and sets *v when present and a
 * non-negative integer, 0 otherwise. */
int codec_get_uint(const msgpack_object *map, const char *key, uint64_t *v);

struct codec_buf {
    char *data;
    size_t len; /* bytes written, head included */
    size_t cap;
    size_t head;
    int oom;
};

/* Starts an empty buffer with head reserved bytes; never fails (an
 * allocation failure is remembered in oom and reported by codec_buf_take,
 * which then returns NULL). */
void codec_buf_init(struct codec_buf *b, size_t head);
/* Releases b's memory (a no-op after codec_buf_take). */
void codec_buf_free(struct codec_buf *b);
/* Hands the buffer's memory to the caller (NULL when writing ran out of
 * memory; then the buffer is freed); b is empty afterwards. */
char *codec_buf_take(struct codec_buf *b, size_t *len);

/* Appends n raw bytes to b. */
void codec_buf_append(struct codec_buf *b, const void *data, size_t n);

/* A packer that writes into b. */
void codec_packer_init(msgpack_packer *pk, struct codec_buf *b);

void codec_pack_str(msgpack_packer *pk, const char *s); /* s NULL packs nil */
void codec_pack_strn(msgpack_packer *pk, const char *s, size_t n);
void codec_pack_kv_str(msgpack_packer *pk, const char *key, const char *val);
void codec_pack_kv_u64(msgpack_packer *pk, const char *key, uint64_t val);
void codec_pack_kv_i64(msgpack_packer *pk, const char *key, int64_t val);
void codec_pack_kv_bool(msgpack_packer *pk, const char *key, bool val);
void codec_pack_kv_nil(msgpack_packer *pk, const char *key);
/* Packs object o as it is (for echoing a client's values). */
void codec_pack_obj(msgpack_packer *pk, const msgpack_object *o);

/* Appends o as JSON text to b (strings escaped, binary as base64 strings,
 * non-finite floats as null). */
void codec_to_json(struct codec_buf *b, const msgpack_object *o);

#endif
