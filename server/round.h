/* Planning poker, the model: a round of secret votes on an item, with the
 * statistics of its reveal (stats.h). What clients do with rounds (start,
 * vote, reveal, accept, the timer) is in poker_ops.h. A room owns its rounds
 * (room.rounds).
 *
 * Secrecy: a vote's card lives only in struct round and in the store's
 * rounds table until the reveal. round_pack() is the only encoder of a round
 * and packs no card of a round that has not been revealed; cards never go to
 * the log. */
#ifndef REFINE_ROUND_H
#define REFINE_ROUND_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backlog.h"
#include "token.h"

struct store;

enum round_state { ROUND_VOTING, ROUND_REVEALED, ROUND_ACCEPTED, ROUND_CANCELLED };

struct vote {
    char pid[TOKEN_LEN + 1];
    char *card;
    int confidence; /* -1 none, 0 low, 1 medium, 2 high */
};

struct round {
    char id[16];
    char item[ITEM_ID_MAX];
    enum round_state state;
    char **cards;
    size_t ncards;
    bool anonymous;
    int64_t deadline; /* 0: none */
    int64_t started_at, revealed_at;
    char **voters; /* participants who could vote when it started */
    size_t nvoters;
    struct vote *votes;
    size_t nvotes, capvotes;
    char *estimate; /* accepted estimate */
    char *stats;    /* encoded stats map, from the reveal on */
    size_t stats_len;
};

/* NULL is a no-op. */
void round_free(struct round *rd);
/* "voting", "revealed", ... */
const char *round_state_name(enum round_state s);
/* The vote of participant pid, or NULL. */
struct vote *round_find_vote(struct round *rd, const char *pid);
/* Packs the round as clients see it: no card before the reveal. */
void round_pack(const struct round *rd, msgpack_packer *pk);
/* Packs the stats of a revealed round (rd->stats) as they are stored. */
void round_pack_stats(const struct round *rd, msgpack_packer *pk);
/* Appends the round's row (votes included) of room `room` to the store's
 * current batch. */
int round_save(struct store *s, const char *room, const struct round *rd);
/* Restores a round stored with its votes (room loading). NULL on failure. */
struct round *round_load(const char *id, const void *data, size_t len);

#endif
