#include "token.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/random.h>

#include "errors.h"

int token_new(char out[TOKEN_LEN + 1])
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    uint8_t raw[17];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t n = getrandom(raw + got, sizeof raw - got, 0);
        if (n <= 0)
            return RF_EINTERNAL;
        got += (size_t)n;
    }
    /* 22 characters of 6 bits: 132 bits, of which 128 and more are random. */
    uint32_t acc = 0;
    int bits = 0, j = 0;
    for (size_t i = 0; i < sizeof raw && j < TOKEN_LEN; i++) {
        acc = (acc << 8) | raw[i];
        bits += 8;
        while (bits >= 6 && j < TOKEN_LEN) {
            bits -= 6;
            out[j++] = b64[(acc >> bits) & 63];
        }
    }
    out[TOKEN_LEN] = '\0';
    return 0;
}

void token_hash(const char *s, size_t n, uint8_t hash[TOKEN_HASH])
{
    SHA256((const unsigned char *)s, n, hash);
}

int token_matches(const char *s, size_t n, const uint8_t hash[TOKEN_HASH])
{
    uint8_t h[TOKEN_HASH];
    token_hash(s, n, h);
    return CRYPTO_memcmp(h, hash, TOKEN_HASH) == 0;
}
