/* Rank keys: fractional indexing over the 62 characters "0-9A-Za-z".
 *
 * The digits are 0-9A-Za-z in ASCII order, so comparing two keys with strcmp
 * gives their rank order. The scheme is the one of the "fractional-indexing"
 * library (David Greenspan, after Figma's multiplayer ranks). A key is
 *
 *     integer part | fraction part
 *
 * The integer part is a head character followed by base-62 digits; the head
 * gives the number of characters of the integer part:
 *
 *     'a'..'z'  2..27 characters (non-negative integers, "a0" is zero)
 *     'Z'..'A'  2..27 characters (negative integers, "Zz" is minus one)
 *
 * so the integers sort byte-wise: "A00..0" < ... < "Yzz" < "Z0" < ... < "Zz" <
 * "a0" < ... < "az" < "b00" < ... Appending at the bottom increments the
 * integer part and prepending at the top decrements it, so a list built that
 * way has keys of 2 characters for the first 62 items, 3 for the next 3844 and
 * 4 for the next 238328. The fraction part (possibly empty) is a base-62
 * fraction used only when two keys have no integer between them; inserting
 * repeatedly at one spot halves the gap each time and so adds one character
 * every log2(62) ~= 6 inserts.
 *
 * Invariants of a well-formed key (rank_valid):
 *   - 2..RANK_MAX characters, all from the alphabet;
 *   - the head is a letter and the key is at least as long as its integer part;
 *   - the fraction part never ends with '0' (so there is always room below a
 *     key without carrying into the integer part);
 *   - the key is not the smallest integer "A" followed by 26 '0's alone
 *     (nothing could be ranked before it).
 * Every key produced by rank_between and rank_spread satisfies them. */
#ifndef REFINE_RANK_H
#define REFINE_RANK_H

#include <stddef.h>

#define RANK_MAX 64 /* longest key rank_between will ever produce, NUL excluded */

/* Writes into out (capacity outsz, NUL-terminated) a key strictly between a
 * and b. a == NULL means "no lower bound" (insert at the top), b == NULL "no
 * upper bound" (the bottom); with both NULL the key is "a0". a and b must be
 * well-formed keys (rank_valid) with a < b byte-wise when both are given.
 * Bottom inserts (b == NULL) and top inserts (a == NULL) step the integer part,
 * so their keys stay short; the result is never longer than the longer
 * input plus one character. out may alias a or b.
 * Returns 0, or -1 (out set to "" when outsz > 0) if out is NULL, an input is
 * invalid (not in the alphabet, malformed, a >= b) or the result would be
 * longer than outsz - 1 or RANK_MAX characters. */
int rank_between(const char *a, const char *b, char *out, size_t outsz);

/* Writes n evenly spaced, strictly increasing keys into keys[0..n-1] (each
 * RANK_MAX + 1 bytes), for rebalancing a whole list. The keys are bare
 * integers of the shortest length class that holds n distinct values (the
 * class of "a0".."az" for n <= 62, "b00".."bzz" for n <= 3844, "c000".."czzz"
 * for n <= 238328, ...), spread evenly over that class with half a step of
 * room before the first and after the last, so later inserts between two of
 * them often need no fraction at all. The keys are at most 4 characters for
 * n <= 238328. n == 0 writes nothing (keys may be NULL).
 * Returns 0, or -1 if keys is NULL with n > 0 or n > 62^5 (916132832). */
int rank_spread(size_t n, char (*keys)[RANK_MAX + 1]);

/* 1 if s is a well-formed key (see the invariants above), 0 otherwise
 * (including s == NULL). */
int rank_valid(const char *s);

#endif
