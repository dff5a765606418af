/* Kano survey, the model and its operations: for an item, every participant
 * (observers included) answers how they feel if the feature is present
 * (functional) and if it is absent (dysfunctional), each one of like, expect,
 * neutral, tolerate, dislike; the pair maps to a category by the Kano table
 * (A attractive, O one-dimensional, M must-be, I indifferent, R reverse,
 * Q questionable). A room owns its surveys (room.kano, room.kano_by_item);
 * what clients do with them is in kano_ops.h.
 *
 * Secrecy: an answer lives only in struct kano_survey and in the store's
 * kano table. kano_pack() and kano_pack_results() are the only encoders of a survey for clients: it
 * packs who has answered, and the counts only once the facilitator revealed
 * the survey; no individual answer is ever packed for a client, nor logged.
 *
 * The category is the most frequent one; a tie goes to the first in the
 * order M, O, A, I, R, Q (the usual Kano rule M > O > A > I). The
 * satisfaction coefficient is (A+O)/(A+O+M+I) and the dissatisfaction
 * coefficient -(O+M)/(A+O+M+I); both are nil when A+O+M+I is 0 (every
 * answer R or Q). */
#ifndef REFINE_KANO_H
#define REFINE_KANO_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backlog.h"
#include "token.h"

struct store;

enum kano_cat { KANO_A, KANO_O, KANO_M, KANO_I, KANO_R, KANO_Q, KANO__NCAT };

struct kano_answer {
    char pid[TOKEN_LEN + 1];
    uint8_t functional, dysfunctional; /* 0 like .. 4 dislike */
};

struct kano_survey {
    char item[ITEM_ID_MAX];
    uint64_t created; /* the room's seq when it was made: orders the surveys */
    bool revealed;
    struct kano_answer *v;
    size_t n, cap;
    uint32_t counts[KANO__NCAT];
};

/* The category of an answer pair (0 like .. 4 dislike each). */
enum kano_cat kano_classify(unsigned functional, unsigned dysfunctional);
/* NULL is a no-op. */
void kano_free(struct kano_survey *s);
/* Packs the survey as clients see it (no answer of anyone). */
void kano_pack(const struct kano_survey *s, msgpack_packer *pk);
/* Packs the results of the survey: {counts, total, category, satisfaction,
 * dissatisfaction} (PROTOCOL.md "Kano survey"). */
void kano_pack_results(const struct kano_survey *s, msgpack_packer *pk);
/* Appends the survey's row (answers included) of room `room` to the store's
 * current batch. */
int kano_save(struct store *st, const char *room, const struct kano_survey *s);
/* Restores a survey stored with its answers (room loading). NULL on failure. */
struct kano_survey *kano_load(const char *item, const void *data, size_t len);
#endif
