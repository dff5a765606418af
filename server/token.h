/* Secrets and identifiers: random URL-safe ids from the kernel, SHA-256
 * hashes for storage, constant-time comparison. */
#ifndef REFINE_TOKEN_H
#define REFINE_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define TOKEN_LEN  22 /* 128 random bits, URL-safe base64 without padding */
#define TOKEN_HASH 32 /* SHA-256 */

/* Fills out (TOKEN_LEN + 1 bytes) with a fresh random token. Returns 0 or
 * RF_EINTERNAL when the kernel's random source fails. */
int token_new(char out[TOKEN_LEN + 1]);

/* SHA-256 of s[0..n) into hash. */
void token_hash(const char *s, size_t n, uint8_t hash[TOKEN_HASH]);

/* 1 when the hash of s[0..n) equals hash, compared in constant time. */
int token_matches(const char *s, size_t n, const uint8_t hash[TOKEN_HASH]);

#endif
