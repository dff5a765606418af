/* Prioritization (issue 12 part 3), the model: the order the backlog would
 * have by one of three methods (PROTOCOL.md "Prioritization"), computed from
 * the items' fields as they are now, and the fingerprint (`base`) of what a
 * proposal depends on. What clients do with it is in prio_ops.h.
 *
 * Only the open items are ordered: every item whose status is neither
 * `split` nor `done` (a split parent and a done item keep their place). Each
 * method ranks the items that have its inputs; the items that lack one go
 * after them, in their current order:
 * - value_effort: value / effort, effort the item's numeric estimate; a tie
 *   goes to the larger value. Needs `value` and a numeric `estimate`.
 * - wsjf: (business_value + time_criticality + risk_reduction) / job size,
 *   the job size the numeric estimate; a tie goes to the larger cost of delay
 *   (the sum). Needs the three and a numeric `estimate`.
 * - moscow_value: must, should, could, wont, each by value, largest first
 *   (an item without a value last in its category). Needs `moscow`.
 * An effort (job size) of 0 makes the ratio infinite when the value (cost of
 * delay) is above 0, and 0 when it is 0. Every remaining tie keeps the
 * current order: the result is a function of the backlog alone. */
#ifndef REFINE_PRIO_H
#define REFINE_PRIO_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "backlog.h"

enum prio_method { PRIO_VALUE_EFFORT, PRIO_WSJF, PRIO_MOSCOW_VALUE, PRIO__COUNT };

/* The method named by o (a string), or -1. */
int prio_method_parse(const msgpack_object *o);
const char *prio_method_name(enum prio_method m);

/* The inputs an item lacks for a method (struct prio_entry.missing). */
enum {
    PRIO_NEED_VALUE = 1u << 0,
    PRIO_NEED_ESTIMATE = 1u << 1, /* none, or not a number (?, coffee, T-shirt sizes) */
    PRIO_NEED_MOSCOW = 1u << 2,
    PRIO_NEED_BUSINESS_VALUE = 1u << 3,
    PRIO_NEED_TIME_CRITICALITY = 1u << 4,
    PRIO_NEED_RISK_REDUCTION = 1u << 5,
};

struct prio_entry {
    struct item *it; /* borrowed from the backlog */
    size_t pos;      /* its place among the open items now */
    int group;       /* sorted ascending first: 0 ranked, larger later (lacking last) */
    double key, tie; /* then descending */
    double score;    /* what the method computes (has_score), shown to people */
    bool has_score;
    unsigned missing; /* PRIO_NEED_* */
};

struct prio_order {
    struct prio_entry *v; /* the open items in the proposed order */
    size_t n;
};

/* Whether the item takes part in an order (its status is not split or done). */
bool prio_is_open(const struct item *it);

/* The proposal of method m for b into *out (freed with prio_order_free):
 * 0, or RF_ENOMEM with *out empty. Changes nothing. */
int prio_propose(const struct backlog *b, enum prio_method m, struct prio_order *out);
void prio_order_free(struct prio_order *o);

/* The fingerprint of everything a proposal depends on (the items in their
 * order, each one's status and the inputs of every method): 16 hex digits. */
#define PRIO_BASE_LEN 16
void prio_base(const struct backlog *b, char out[PRIO_BASE_LEN + 1]);

/* Packs the four fields of a proposal: `order` (ids), `scores` (each one's
 * score or nil, in the same order), `lacking` ([{item, missing: [field
 * names]}] in the proposed order) and `fixed` (how many items keep their
 * place). The caller packs `method` and `base`. */
#define PRIO_PACK_FIELDS 4
void prio_pack(const struct backlog *b, const struct prio_order *o, msgpack_packer *pk);

#endif
