/* DEEP health of a backlog (PROTOCOL.md "Backlog health"), the model: which
 * rules each item breaks, four scores and an overall one, kept current as the
 * backlog changes, at a cost of O(the items whose findings change) per change
 * rather than a rescan of the room. Sending it to clients is health_ops.h's.
 *
 * The backlog tells its watcher (struct backlog_watch, backlog.h) of every
 * insertion, removal, move and field change; the health of a room is that
 * watcher. Its state is derived: recomputed when a room is loaded
 * (health_rebuild), never stored.
 *
 * Candidates: items whose status is not `done` nor `split`; the others break
 * no rule and count in no score.
 *
 * The top: the candidates, in backlog order, that start within the room's
 * capacity: a candidate is in the top when the points of the candidates above
 * it add up to less than `capacity`, and fewer than HEALTH_TOP_MAX are above
 * it. An item's points are its numeric estimate; an item without one
 * (unestimated, `?`, coffee, or a T-shirt size) counts as `size_limit`
 * points. The top ends at the first candidate left out (top_end): a change
 * below it cannot change the top, a change above it walks the top again
 * (O(top span)).
 *
 * Rules: in the top, an item is `unestimated` (no estimate, `?` or coffee),
 * `too_large` (numeric estimate above size_limit), `no_acceptance` (no
 * acceptance criteria), `no_benefit` (neither a "so that" benefit nor a
 * value), `draft` (status draft), `epic` (kind epic). Anywhere:
 * `wont_above_must` (a `wont` ranked above some `must`: the wonts and musts
 * are kept in rank order, so a change of the lowest must visits only the wonts
 * between its old and new place), `stale` (not touched for stale_days: items
 * sit on an age list, least recently touched first, and a tick moves the
 * frontier over the items that have just grown old).
 *
 * Scores 0..100, rounded down: detailed = top items with no detail finding
 * (too_large, no_acceptance, no_benefit, draft, epic) per top item; estimated
 * = estimated top items per top item; prioritized = candidates with a MoSCoW
 * value that are not a wont above a must, per candidate with a MoSCoW value;
 * emergent = candidates not stale per candidate; overall = their mean. A
 * score with nothing to count is 100. */
#ifndef REFINE_HEALTH_H
#define REFINE_HEALTH_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backlog.h"
#include "list.h"

#define HEALTH_TOP_MAX            100
#define HEALTH_CAPACITY_DEFAULT   40
#define HEALTH_SIZE_LIMIT_DEFAULT 13
#define HEALTH_STALE_DAYS_DEFAULT 90
#define HEALTH_CAPACITY_MAX       10000
#define HEALTH_SIZE_LIMIT_MAX     1000
#define HEALTH_STALE_DAYS_MAX     3650
#define HEALTH_DAY_MS             86400000ll

enum health_rule {
    HR_UNESTIMATED,
    HR_TOO_LARGE,
    HR_NO_ACCEPTANCE,
    HR_NO_BENEFIT,
    HR_DRAFT,
    HR_EPIC,
    HR_WONT_ABOVE_MUST,
    HR_STALE,
    HR__COUNT
};

enum health_score { HS_DETAILED, HS_EMERGENT, HS_ESTIMATED, HS_PRIORITIZED, HS_OVERALL, HS__COUNT };

/* Rank-ordered items (the wonts, the musts): room for the backlog's items. */
struct health_set {
    struct item **v;
    size_t n, cap;
};

/* The lowest must's place, kept across a change to see whether it moved. */
struct health_lowest {
    bool any;
    char rank[RANK_MAX + 1];
    char id[ITEM_ID_MAX];
};

struct health {
    struct backlog *b;
    /* Settings (room.update; in the room's meta). */
    uint32_t capacity, size_limit, stale_days;
    /* The top. */
    size_t top_end; /* index in b->v of the first candidate left out, or b->n */
    size_t top_n;   /* items with it->hl_top */
    double top_points;
    /* Counts. */
    size_t candidates, moscow; /* candidates; those with a MoSCoW value */
    size_t detail_bad;         /* top items with a detail finding */
    size_t n[HR__COUNT];       /* findings per rule */
    struct health_set wonts, musts;
    /* Every item, least recently touched first; stale ones first of all,
     * up to `fresh` (the first one not stale, or &age itself). */
    struct list age;
    struct list *fresh;
    int64_t now; /* the clock of the last tick (or rebuild): what `stale` is measured against */
    /* Items whose rules changed since the last health_take_changes. */
    struct list dirty;
    struct health_lowest mv_lowest; /* across a move (moving, moved) */
    bool mv_rewalk;
    uint8_t sent[HS__COUNT]; /* the scores last told to clients */
    size_t sent_top_n;
    double sent_top_points;
};

/* An empty health with the default settings, watching b (which must be
 * empty): sets b->watch. */
void health_init(struct health *h, struct backlog *b);
void health_free(struct health *h);
/* Computes everything from the items of the backlog (a room just loaded),
 * with clock `now`; nothing counts as changed. Returns 0 or RF_ENOMEM. */
int health_rebuild(struct health *h, int64_t now);

/* The settings (room.update), in this order: capacity, size_limit, stale_days. */
#define HEALTH_NSETTINGS 3
extern const char *const HEALTH_SETTING_NAMES[HEALTH_NSETTINGS];
uint32_t *health_setting(struct health *h, int i);
/* Packs the settings of the mask (bit i: the i-th) as key/value pairs. */
void health_pack_settings(const struct health *h, unsigned mask, msgpack_packer *pk);
#define HEALTH_SETTINGS_ALL ((1u << HEALTH_NSETTINGS) - 1)

/* Settings changed (already set in h): re-evaluates what depends on them. */
void health_settings_changed(struct health *h);
/* The clock moved to `now`: items that grew old become stale. O(those). */
void health_tick(struct health *h, int64_t now);

/* The scores now. */
void health_scores(const struct health *h, uint8_t out[HS__COUNT]);
/* The rule's wire name (PROTOCOL.md). */
const char *health_rule_name(enum health_rule r);
/* Packs the rules of the mask as an array of names. */
void health_pack_rules(unsigned mask, msgpack_packer *pk);
/* Packs the health with every finding: {scores, top, per_rule, findings}. */
void health_pack(const struct health *h, msgpack_packer *pk);
/* Whether something may have changed since the last health_take_changes
 * (cheap: no item is looked at). */
bool health_may_have_changed(const struct health *h);
/* Packs the health with the findings changed since the last call
 * {scores, top, per_rule, changed: [{item, rules}]} into pk and returns true,
 * when anything did change; otherwise packs nothing and returns false. The
 * changes are forgotten either way. */
bool health_take_changes(struct health *h, msgpack_packer *pk);

/* Checks every count and flag against a recomputation from scratch (tests):
 * 0, or the number of differences (logged). */
int health_check(const struct health *h);

#endif
