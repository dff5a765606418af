/* Planning-poker statistics at the reveal: pure functions of a deck and the
 * votes cast, so they can be tested on known vote sets.
 *
 * Cards "?" (cannot estimate) and "coffee" (I need a break) count as votes
 * but are neither numbers nor steps of the deck. "½" is the number 0.5.
 * Every other card is a step of the deck (its position among the ordinary
 * cards) and, when it reads as a number, a number. */
#ifndef REFINE_STATS_H
#define REFINE_STATS_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

struct stats_vote {
    const char *pid;
    const char *card;
    int confidence; /* -1 none, 0 low, 1 medium, 2 high */
};

/* 1 when card is one of the deck's cards. */
bool stats_card_in_deck(const char *const *deck, size_t ndeck, const char *card);

/* Parses a card as a number ("½" is 0.5). Returns 1 and sets *v, or 0. */
int stats_card_number(const char *card, double *v);

/* Packs the stats map of a reveal: count, not_voted, missing, numeric
 * (count), min, max, mean, median, distribution, mode, consensus, spread,
 * highest, lowest, suggested, confidence. With `anonymous`, the participant
 * lists (missing, highest, lowest) are packed empty. missing[0..nmissing)
 * are the voters who did not vote. */
void stats_pack(msgpack_packer *pk, const char *const *deck, size_t ndeck,
                const struct stats_vote *votes, size_t n, const char *const *missing,
                size_t nmissing, bool anonymous);

#endif
