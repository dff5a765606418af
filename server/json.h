/* A JSON reader for imports (RFC 8259): JSON text into MessagePack, so that
 * an imported document is read with the same codec_get()/msgpack_object code
 * as a message. Objects become maps (keys in document order), arrays arrays,
 * strings UTF-8 strings (escapes decoded, \u surrogate pairs joined),
 * integers positive or negative integers, other numbers float64, true/false
 * booleans, null nil. Pure: safe on any thread. */
#ifndef REFINE_JSON_H
#define REFINE_JSON_H

#include <stddef.h>

#include "codec.h"

#define JSON_MAX_DEPTH CODEC_MAX_DEPTH

/* Converts s[0..n) (one JSON value, whitespace around it allowed) into
 * MessagePack appended to out. Returns 0; RF_EBAD_REQUEST with a sentence
 * naming the line and column in why (whysz bytes) when s is no valid JSON
 * (bad syntax, invalid UTF-8, a NUL in a string, nesting past
 * JSON_MAX_DEPTH); RF_ENOMEM. */
int json_to_msgpack(const char *s, size_t n, struct codec_buf *out, char *why, size_t whysz);

/* The MessagePack object in mp (freed) as JSON text and a line break,
 * malloc'd into *out: 0, or RF_ENOMEM (*out NULL). */
int json_from_msgpack(struct codec_buf *mp, char **out, size_t *len);

/* The length of the longest valid UTF-8 prefix of s[0..n) (n: all valid). */
size_t json_utf8_valid(const char *s, size_t n);

#endif
