#include "rank.h"

#include <stdint.h>
#include <string.h>

/* Algorithm after the "fractional-indexing" library (David Greenspan), base 62. */

#define RANK_BASE          62
#define RANK_INT_MAX       27 /* longest integer part: head 'A' or 'z' plus 26 digits */
#define RANK_SPREAD_DIGITS 5  /* rank_spread uses at most 5 digits: n <= 62^5 */

static const char rank_digits[RANK_BASE + 1] =
    "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* A key under construction. Room for a little more than RANK_MAX characters so
 * an over-long result is detected by its length rather than by truncation. */
struct rank_buf {
    char s[RANK_MAX + RANK_INT_MAX + 2];
    size_t len;
};

/* The value 0..61 of digit c, or -1 if c is not in the alphabet. */
static int rank_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'Z')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 36;
    return -1;
}

/* The length of the integer part a key with head character head has, or 0 if
 * head is not a valid head ('a'..'z' give 2..27, 'Z'..'A' give 2..27). */
static size_t rank_int_len(char head)
{
    if (head >= 'a' && head <= 'z')
        return (size_t)(head - 'a') + 2;
    if (head >= 'A' && head <= 'Z')
        return (size_t)('Z' - head) + 2;
    return 0;
}

/* 1 if the key s (at least RANK_INT_MAX characters when its head is 'A')
 * starts with the smallest integer "A" followed by 26 '0's. */
static int rank_is_smallest_int(const char *s)
{
    if (s[0] != 'A')
        return 0;
    for (size_t i = 1; i < RANK_INT_MAX; i++)
        if (s[i] != '0')
            return 0;
    return 1;
}

/* Appends n characters of s to b. 0, or -1 if b would overflow. */
static int rank_buf_put(struct rank_buf *b, const char *s, size_t n)
{
    if (n > sizeof b->s - 1 - b->len)
        return -1;
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
    return 0;
}

/* Appends the single character c to b. 0, or -1 if b would overflow. */
static int rank_buf_putc(struct rank_buf *b, char c)
{
    return rank_buf_put(b, &c, 1);
}

/* Writes into out (at least il + 2 bytes, NUL-terminated) the integer part x
 * (il characters, well-formed) plus one. Returns the new length, or 0 if x is
 * the largest integer ("z" followed by 26 'z's). */
static size_t rank_int_increment(const char *x, size_t il, char *out)
{
    memcpy(out, x, il);
    out[il] = '\0';
    for (size_t i = il - 1; i >= 1; i--) {
        int d = rank_digit(out[i]) + 1;
        if (d < RANK_BASE) {
            out[i] = rank_digits[d];
            return il;
        }
        out[i] = '0';
    }
    /* Carried out of every digit: x was the largest of its length class. */
    char head = out[0];
    if (head == 'z')
        return 0;
    if (head == 'Z') { /* -1 + 1 = 0 */
        memcpy(out, "a0", 3);
        return 2;
    }
    out[0] = (char)(head + 1);
    if (head >= 'a') { /* positive: one digit longer */
        out[il] = '0';
        out[il + 1] = '\0';
        return il + 1;
    }
    out[il - 1] = '\0'; /* negative: one digit shorter */
    return il - 1;
}

/* Writes into out (at least il + 2 bytes, NUL-terminated) the integer part x
 * (il characters, well-formed) minus one. Returns the new length, or 0 if x is
 * the smallest integer ("A" followed by 26 '0's). */
static size_t rank_int_decrement(const char *x, size_t il, char *out)
{
    memcpy(out, x, il);
    out[il] = '\0';
    for (size_t i = il - 1; i >= 1; i--) {
        int d = rank_digit(out[i]);
        if (d > 0) {
            out[i] = rank_digits[d - 1];
            return il;
        }
        out[i] = rank_digits[RANK_BASE - 1];
    }
    /* Borrowed out of every digit: x was the smallest of its length class. */
    char head = out[0];
    if (head == 'A')
        return 0;
    if (head == 'a') { /* 0 - 1 = -1 */
        memcpy(out, "Zz", 3);
        return 2;
    }
    out[0] = (char)(head - 1);
    if (head <= 'Z') { /* negative: one digit longer */
        out[il] = rank_digits[RANK_BASE - 1];
        out[il + 1] = '\0';
        return il + 1;
    }
    out[il - 1] = '\0'; /* positive: one digit shorter */
    return il - 1;
}

/* Appends to r a fraction strictly between the fractions a (alen digits) and
 * b (blen digits), or strictly above a if b is NULL. Fractions are digit
 * strings read as base-62 numbers 0.d1d2...; neither may end with '0' and
 * a < b when b is given. The appended fraction does not end with '0' and is
 * at most max(alen, blen) + 1 digits. Returns 0, or -1 if r would overflow or
 * the inputs break the preconditions. */
static int rank_midpoint(struct rank_buf *r, const char *a, size_t alen, const char *b, size_t blen)
{
    for (;;) {
        if (b) {
            /* Copy the longest common prefix, reading a as padded with '0's. */
            size_t n = 0;
            while (n < blen && (n < alen ? a[n] : '0') == b[n])
                n++;
            if (n == blen)
                return -1; /* b <= a */
            if (rank_buf_put(r, b, n))
                return -1;
            size_t skip = n < alen ? n : alen;
            a += skip;
            alen -= skip;
            b += n;
            blen -= n;
        }
        /* The first digits differ now (a missing digit counts as 0). */
        int da = alen ? rank_digit(a[0]) : 0;
        int db = b ? rank_digit(b[0]) : RANK_BASE;
        if (da < 0 || db <= da)
            return -1;
        if (db - da > 1)
            return rank_buf_putc(r, rank_digits[(da + db + 1) / 2]);
        /* Consecutive digits. b's first digit alone lies between if b goes on. */
        if (b && blen > 1)
            return rank_buf_putc(r, b[0]);
        /* Keep a's digit and look for room above the rest of a. */
        if (rank_buf_putc(r, rank_digits[da]))
            return -1;
        if (alen) {
            a++;
            alen--;
        }
        b = NULL;
        blen = 0;
    }
}

int rank_valid(const char *s)
{
    if (!s)
        return 0;
    size_t len = 0;
    while (len <= RANK_MAX && s[len])
        len++;
    if (len > RANK_MAX)
        return 0;
    size_t il = rank_int_len(s[0]);
    if (il == 0 || len < il)
        return 0;
    for (size_t i = 1; i < len; i++)
        if (rank_digit(s[i]) < 0)
            return 0;
    if (len > il && s[len - 1] == '0')
        return 0;
    if (len == il && rank_is_smallest_int(s))
        return 0;
    return 1;
}

int rank_between(const char *a, const char *b, char *out, size_t outsz)
{
    struct rank_buf r = {.len = 0};
    char tmp[RANK_INT_MAX + 2];

    if (!out || outsz == 0)
        return -1;
    if ((a && !rank_valid(a)) || (b && !rank_valid(b)))
        goto fail;
    if (a && b && strcmp(a, b) >= 0)
        goto fail;

    if (!a && !b) {
        if (rank_buf_put(&r, "a0", 2))
            goto fail;
    } else if (!a) {
        /* Top: the integer just below b's, or b's own if b has a fraction. */
        size_t ib = rank_int_len(b[0]);
        size_t blen = strlen(b);
        if (rank_is_smallest_int(b)) {
            if (rank_buf_put(&r, b, ib) || rank_midpoint(&r, "", 0, b + ib, blen - ib))
                goto fail;
        } else if (blen > ib) {
            if (rank_buf_put(&r, b, ib))
                goto fail;
        } else {
            size_t n = rank_int_decrement(b, ib, tmp);
            if (n == 0 || rank_buf_put(&r, tmp, n))
                goto fail;
        }
    } else if (!b) {
        /* Bottom: the integer just above a's; past the largest, a fraction. */
        size_t ia = rank_int_len(a[0]);
        size_t alen = strlen(a);
        size_t n = rank_int_increment(a, ia, tmp);
        if (n > 0) {
            if (rank_buf_put(&r, tmp, n))
                goto fail;
        } else if (rank_buf_put(&r, a, ia) || rank_midpoint(&r, a + ia, alen - ia, NULL, 0)) {
            goto fail;
        }
    } else {
        size_t ia = rank_int_len(a[0]);
        size_t ib = rank_int_len(b[0]);
        size_t alen = strlen(a);
        size_t blen = strlen(b);
        if (ia == ib && memcmp(a, b, ia) == 0) {
            /* Same integer part: only the fractions differ. */
            if (rank_buf_put(&r, a, ia) || rank_midpoint(&r, a + ia, alen - ia, b + ib, blen - ib))
                goto fail;
        } else {
            /* a's integer + 1 if that is still below b, else a fraction above a. */
            size_t n = rank_int_increment(a, ia, tmp);
            if (n == 0)
                goto fail;
            if (strcmp(tmp, b) < 0) {
                if (rank_buf_put(&r, tmp, n))
                    goto fail;
            } else if (rank_buf_put(&r, a, ia) || rank_midpoint(&r, a + ia, alen - ia, NULL, 0)) {
                goto fail;
            }
        }
    }

    if (r.len > RANK_MAX || r.len > outsz - 1)
        goto fail;
    memcpy(out, r.s, r.len + 1);
    return 0;

fail:
    out[0] = '\0';
    return -1;
}

int rank_spread(size_t n, char (*keys)[RANK_MAX + 1])
{
    if (n == 0)
        return 0;
    if (!keys)
        return -1;

    /* The shortest integer length class with at least n values: head 'a' + k - 1
     * followed by k digits, holding 62^k integers. */
    uint64_t cap = RANK_BASE;
    size_t k = 1;
    while (cap < (uint64_t)n) {
        if (k == RANK_SPREAD_DIGITS)
            return -1;
        cap *= RANK_BASE;
        k++;
    }

    /* Key i is the integer floor((i + 1/2) * cap / n) of that class: evenly
     * spaced, at least 1 apart since cap >= n, so strictly increasing. With
     * n, cap <= 62^5 the product stays below 2^61. */
    for (size_t i = 0; i < n; i++) {
        uint64_t v = ((2 * (uint64_t)i + 1) * cap) / (2 * (uint64_t)n);
        keys[i][0] = (char)('a' + (k - 1));
        for (size_t j = k; j >= 1; j--) {
            keys[i][j] = rank_digits[v % RANK_BASE];
            v /= RANK_BASE;
        }
        keys[i][k + 1] = '\0';
    }
    return 0;
}
