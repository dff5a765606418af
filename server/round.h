/* Planning poker: rounds of secret votes on an item, the reveal with its
 * statistics (stats.h), re-votes, accepting an estimate, the countdown timer
 * and claiming facilitation when no facilitator is around.
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

struct app;
struct req;
struct room;

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

void round_free(struct round *rd);
/* Packs the round as clients see it: no card before the reveal. */
void round_pack(const struct round *rd, msgpack_packer *pk);
/* Restores a round stored with its votes (room loading). NULL on failure. */
struct round *round_load(const char *id, const void *data, size_t len);

/* The room's timer ran out, or a participant came or went: what poker does
 * about it (reveal on timer, auto-reveal, facilitator presence). The tick
 * (every 100 ms) also lets the room send its coalesced `observers` notice
 * (room_tick). */
void round_on_tick(struct app *app, struct room *r, int64_t now);
void round_on_presence(struct app *app, struct room *r);

int round_handle_start(struct req *q);
int round_handle_vote(struct req *q);
int round_handle_reveal(struct req *q);
int round_handle_accept(struct req *q);
int round_handle_cancel(struct req *q);
int round_handle_timer_start(struct req *q);
int round_handle_timer_stop(struct req *q);

#endif
