#include "health.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "log.h"
#include "stats.h"

/* Bits of item.hl_rules: the rules (0..7), then how the item is counted. */
#define RULES_MASK 0xffu
#define HL_CAND    0x100u /* counted in candidates */
#define HL_MOSCOW  0x200u /* counted in moscow */
#define HL_WONT    0x400u /* in h->wonts */
#define HL_MUST    0x800u /* in h->musts */
#define DETAIL_MASK                                                                                \
    ((1u << HR_TOO_LARGE) | (1u << HR_NO_ACCEPTANCE) | (1u << HR_NO_BENEFIT) | (1u << HR_DRAFT) |  \
     (1u << HR_EPIC))

static const char *const RULE_NAMES[HR__COUNT] = {
    "unestimated", "too_large", "no_acceptance",   "no_benefit",
    "draft",       "epic",      "wont_above_must", "stale",
};
static const char *const SCORE_NAMES[HS__COUNT] = {"detailed", "emergent", "estimated",
                                                   "prioritized", "overall"};

const char *const HEALTH_SETTING_NAMES[HEALTH_NSETTINGS] = {"capacity", "size_limit", "stale_days"};

uint32_t *health_setting(struct health *h, int i)
{
    return i == 0 ? &h->capacity : i == 1 ? &h->size_limit : &h->stale_days;
}

void health_pack_settings(const struct health *h, unsigned mask, msgpack_packer *pk)
{
    for (int i = 0; i < HEALTH_NSETTINGS; i++)
        if (mask & (1u << i))
            codec_pack_kv_u64(pk, HEALTH_SETTING_NAMES[i], *health_setting((struct health *)h, i));
}

const char *health_rule_name(enum health_rule r)
{
    return RULE_NAMES[r];
}

/* ---- what an item is ------------------------------------------------------ */

static const char *str_of(const struct item *it, enum item_field f)
{
    return it->f[f].type == IV_STR ? it->f[f].u.s : NULL;
}

static bool str_is(const struct item *it, enum item_field f, const char *s)
{
    const char *v = str_of(it, f);
    return v && strcmp(v, s) == 0;
}

static bool candidate(const struct item *it)
{
    return !str_is(it, ITEM_F_STATUS, "done") && !str_is(it, ITEM_F_STATUS, "split");
}

static bool unestimated(const struct item *it)
{
    const char *e = str_of(it, ITEM_F_ESTIMATE);
    return !e || !*e || strcmp(e, "?") == 0 || strcmp(e, "coffee") == 0;
}

/* The item's numeric estimate (never below 0) into *v: 1, or 0 without one. */
static int number_of(const struct item *it, double *v)
{
    const char *e = str_of(it, ITEM_F_ESTIMATE);
    if (!e || !stats_card_number(e, v))
        return 0;
    if (*v < 0)
        *v = 0;
    return 1;
}

static double points_of(const struct health *h, const struct item *it)
{
    double v;
    return number_of(it, &v) ? v : (double)h->size_limit;
}

/* ---- rank-ordered sets ----------------------------------------------------- */

/* An item's place by (rank, id): the backlog's order. */
static int key_cmp(const char *rank, const char *id, const struct item *it)
{
    int c = strcmp(rank, it->rank);
    return c ? c : strcmp(id, it->id);
}

/* The first index of s whose item is not before (rank, id). */
static size_t set_lower(const struct health_set *s, const char *rank, const char *id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (key_cmp(rank, id, s->v[mid]) > 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Cannot fail: the set has room for every item of the backlog (reserve). */
static void set_insert(struct health_set *s, struct item *it)
{
    size_t at = set_lower(s, it->rank, it->id);
    memmove(&s->v[at + 1], &s->v[at], (s->n - at) * sizeof *s->v);
    s->v[at] = it;
    s->n++;
}

static void set_remove(struct health_set *s, struct item *it)
{
    size_t at = set_lower(s, it->rank, it->id);
    if (at < s->n && s->v[at] == it) {
        memmove(&s->v[at], &s->v[at + 1], (s->n - at - 1) * sizeof *s->v);
        s->n--;
    }
}

static int set_reserve(struct health_set *s, size_t n)
{
    if (n <= s->cap)
        return 0;
    size_t cap = s->cap ? s->cap : 32;
    while (cap < n)
        cap *= 2;
    struct item **v = realloc(s->v, cap * sizeof *v);
    if (!v)
        return RF_ENOMEM;
    s->v = v;
    s->cap = cap;
    return 0;
}

static void lowest_save(const struct health *h, struct health_lowest *l)
{
    l->any = h->musts.n > 0;
    if (l->any) {
        const struct item *m = h->musts.v[h->musts.n - 1];
        memcpy(l->rank, m->rank, sizeof l->rank);
        memcpy(l->id, m->id, sizeof l->id);
    }
}

/* The index in the wonts of the first one not above the lowest must l. */
static size_t wont_bound(const struct health *h, const struct health_lowest *l)
{
    return l->any ? set_lower(&h->wonts, l->rank, l->id) : 0;
}

/* ---- rules ----------------------------------------------------------------- */

static unsigned rules_of(const struct health *h, const struct item *it)
{
    if (!candidate(it))
        return 0;
    unsigned m = 0;
    if (it->hl_top) {
        double v;
        if (unestimated(it))
            m |= 1u << HR_UNESTIMATED;
        else if (number_of(it, &v) && v > h->size_limit)
            m |= 1u << HR_TOO_LARGE;
        if (it->f[ITEM_F_ACCEPTANCE].type != IV_LIST || it->f[ITEM_F_ACCEPTANCE].u.l.n == 0)
            m |= 1u << HR_NO_ACCEPTANCE;
        const char *benefit = str_of(it, ITEM_F_BENEFIT);
        if ((!benefit || !*benefit) && it->f[ITEM_F_VALUE].type != IV_INT)
            m |= 1u << HR_NO_BENEFIT;
        if (str_is(it, ITEM_F_STATUS, "draft"))
            m |= 1u << HR_DRAFT;
        if (str_is(it, ITEM_F_KIND, "epic"))
            m |= 1u << HR_EPIC;
    }
    if (str_is(it, ITEM_F_MOSCOW, "wont") && h->musts.n &&
        key_cmp(it->rank, it->id, h->musts.v[h->musts.n - 1]) < 0)
        m |= 1u << HR_WONT_ABOVE_MUST;
    if (it->hl_stale)
        m |= 1u << HR_STALE;
    return m;
}

/* Gives it the rules m, keeping the counts; a change puts it on the dirty list. */
static void set_rules(struct health *h, struct item *it, unsigned m)
{
    unsigned old = it->hl_rules & RULES_MASK;
    if (m == old)
        return;
    for (int r = 0; r < HR__COUNT; r++) {
        unsigned bit = 1u << r;
        if ((old ^ m) & bit) {
            if (m & bit)
                h->n[r]++;
            else
                h->n[r]--;
        }
    }
    h->detail_bad += (m & DETAIL_MASK) != 0;
    h->detail_bad -= (old & DETAIL_MASK) != 0;
    it->hl_rules = (uint16_t)((it->hl_rules & ~RULES_MASK) | m);
    if (list_empty(&it->hl_dirty))
        list_push(&h->dirty, &it->hl_dirty);
}

static void update_rules(struct health *h, struct item *it)
{
    set_rules(h, it, rules_of(h, it));
}

/* Re-evaluates the wonts whose place against the lowest must changed from
 * `before` to now. */
static void revisit_wonts(struct health *h, const struct health_lowest *before)
{
    struct health_lowest now;
    lowest_save(h, &now);
    if (now.any == before->any &&
        (!now.any || (strcmp(now.rank, before->rank) == 0 && strcmp(now.id, before->id) == 0)))
        return;
    size_t a = wont_bound(h, before), b = wont_bound(h, &now);
    size_t lo = a < b ? a : b, hi = a < b ? b : a;
    for (size_t i = lo; i < hi; i++)
        update_rules(h, h->wonts.v[i]);
}

/* Brings the item's counted flags (candidate, MoSCoW, in the wonts or the
 * musts) to what its fields say, or to nothing when !present. */
static void flags_update(struct health *h, struct item *it, bool present)
{
    bool cand = present && candidate(it);
    const char *moscow = cand ? str_of(it, ITEM_F_MOSCOW) : NULL;
    unsigned want = (cand ? HL_CAND : 0) | (moscow ? HL_MOSCOW : 0) |
                    (moscow && strcmp(moscow, "wont") == 0 ? HL_WONT : 0) |
                    (moscow && strcmp(moscow, "must") == 0 ? HL_MUST : 0);
    unsigned have = it->hl_rules & ~RULES_MASK;
    if (want == have)
        return;
    if ((want ^ have) & HL_CAND)
        h->candidates += (want & HL_CAND) ? 1 : (size_t)-1;
    if ((want ^ have) & HL_MOSCOW)
        h->moscow += (want & HL_MOSCOW) ? 1 : (size_t)-1;
    if ((want ^ have) & HL_WONT) {
        if (want & HL_WONT)
            set_insert(&h->wonts, it);
        else
            set_remove(&h->wonts, it);
    }
    if ((want ^ have) & HL_MUST) {
        if (want & HL_MUST)
            set_insert(&h->musts, it);
        else
            set_remove(&h->musts, it);
    }
    it->hl_rules = (uint16_t)((it->hl_rules & RULES_MASK) | want);
}

/* ---- the top --------------------------------------------------------------- */

/* Walks the top again from the first item: items coming in or going out are
 * re-evaluated (every item in it with `force`); `skip` (being removed) is left
 * out. O(top span, old and new). */
static void rewalk(struct health *h, const struct item *skip, bool force)
{
    struct backlog *b = h->b;
    size_t old_n = h->top_n, seen = 0, count = 0, i = 0;
    double cum = 0;
    bool stopped = false;
    h->top_end = b->n;
    for (; i < b->n && (!stopped || seen < old_n); i++) {
        struct item *it = b->v[i];
        bool was = it->hl_top, in = false;
        seen += was;
        if (!stopped && it != skip && candidate(it)) {
            if (count >= HEALTH_TOP_MAX || cum >= h->capacity) {
                stopped = true;
                h->top_end = i;
            } else {
                in = true;
                count++;
                cum += points_of(h, it);
            }
        }
        if (was != in || (force && in)) {
            it->hl_top = in;
            update_rules(h, it);
        }
    }
    h->top_n = count;
    h->top_points = cum;
}

/* ---- the age list ---------------------------------------------------------- */

static void age_unlink(struct health *h, struct item *it)
{
    if (h->fresh == &it->hl_age)
        h->fresh = it->hl_age.next;
    list_remove(&it->hl_age);
}

/* it was just touched: last on the age list, not stale. */
static void age_touch(struct health *h, struct item *it)
{
    age_unlink(h, it);
    list_push(h->age.prev, &it->hl_age);
    if (h->fresh == &h->age)
        h->fresh = &it->hl_age;
    it->hl_stale = false;
}

static int64_t stale_ms(const struct health *h)
{
    return (int64_t)h->stale_days * HEALTH_DAY_MS;
}

/* ---- the watcher ----------------------------------------------------------- */

static int w_reserve(void *arg, size_t n)
{
    struct health *h = arg;
    return set_reserve(&h->wonts, n) || set_reserve(&h->musts, n) ? RF_ENOMEM : 0;
}

static void w_inserted(void *arg, struct item *it, size_t at)
{
    struct health *h = arg;
    struct health_lowest before;
    lowest_save(h, &before);
    it->hl_rules = 0;
    it->hl_sent = 0;
    it->hl_top = false;
    age_touch(h, it);
    flags_update(h, it, true);
    if (at <= h->top_end)
        rewalk(h, NULL, false);
    update_rules(h, it);
    revisit_wonts(h, &before);
}

static void w_removing(void *arg, struct item *it, size_t at)
{
    struct health *h = arg;
    struct health_lowest before;
    lowest_save(h, &before);
    if (at < h->top_end)
        rewalk(h, it, false);
    if (h->top_end > at)
        h->top_end--;
    flags_update(h, it, false);
    set_rules(h, it, 0);
    list_remove(&it->hl_dirty); /* clients drop its findings with the item */
    age_unlink(h, it);
    revisit_wonts(h, &before);
}

/* A move: the item leaves the sets, the counts and the top before its rank
 * changes (moving), and comes back at its new place (moved). */
static void w_moving(void *arg, struct item *it, size_t from)
{
    struct health *h = arg;
    lowest_save(h, &h->mv_lowest);
    flags_update(h, it, false);
    if (it->hl_top) {
        it->hl_top = false;
        h->top_n--;
    }
    h->mv_rewalk = from < h->top_end;
    if (h->top_end > from)
        h->top_end--;
}

static void w_moved(void *arg, struct item *it, size_t at)
{
    struct health *h = arg;
    age_touch(h, it);
    flags_update(h, it, true);
    if (h->mv_rewalk || at <= h->top_end)
        rewalk(h, NULL, false);
    update_rules(h, it);
    revisit_wonts(h, &h->mv_lowest);
}

static void w_changed(void *arg, struct item *it)
{
    struct health *h = arg;
    struct health_lowest before;
    lowest_save(h, &before);
    age_touch(h, it);
    flags_update(h, it, true);
    if (backlog_index_of(h->b, it) < h->top_end)
        rewalk(h, NULL, false);
    update_rules(h, it);
    revisit_wonts(h, &before);
}

static int set_item_cmp(const void *a, const void *b)
{
    const struct item *x = *(struct item *const *)a;
    return key_cmp(x->rank, x->id, *(struct item *const *)b);
}

/* Many ranks changed at once (order.apply): the sets sorted again, the top
 * walked again, every wont looked at again. O(n log n) for the sets, like the
 * reorder itself; allocates nothing. */
static void w_reordered(void *arg)
{
    struct health *h = arg;
    qsort(h->wonts.v, h->wonts.n, sizeof *h->wonts.v, set_item_cmp);
    qsort(h->musts.v, h->musts.n, sizeof *h->musts.v, set_item_cmp);
    rewalk(h, NULL, false);
    for (size_t i = 0; i < h->wonts.n; i++)
        update_rules(h, h->wonts.v[i]);
}

static const struct backlog_watch WATCH = {w_reserve, w_inserted, w_removing, w_moving,
                                           w_moved,   w_changed,  w_reordered};

/* ---- the health -------------------------------------------------------------- */

void health_init(struct health *h, struct backlog *b)
{
    memset(h, 0, sizeof *h);
    h->b = b;
    h->capacity = HEALTH_CAPACITY_DEFAULT;
    h->size_limit = HEALTH_SIZE_LIMIT_DEFAULT;
    h->stale_days = HEALTH_STALE_DAYS_DEFAULT;
    list_init(&h->age);
    list_init(&h->dirty);
    h->fresh = &h->age;
    for (int i = 0; i < HS__COUNT; i++)
        h->sent[i] = 100;
    b->watch = &WATCH;
    b->watch_arg = h;
}

void health_free(struct health *h)
{
    free(h->wonts.v);
    free(h->musts.v);
    h->wonts = h->musts = (struct health_set){0};
}

static int by_age(const void *a, const void *b)
{
    const struct item *x = *(struct item *const *)a, *y = *(struct item *const *)b;
    return x->updated_at < y->updated_at ? -1 : x->updated_at > y->updated_at;
}

int health_rebuild(struct health *h, int64_t now)
{
    struct backlog *b = h->b;
    if (w_reserve(h, b->n))
        return RF_ENOMEM;
    struct item **byage = malloc((b->n ? b->n : 1) * sizeof *byage);
    if (!byage)
        return RF_ENOMEM;
    if (b->n)
        memcpy(byage, b->v, b->n * sizeof *byage);
    qsort(byage, b->n, sizeof *byage, by_age);
    for (size_t i = 0; i < b->n; i++) {
        struct item *it = byage[i];
        list_push(h->age.prev, &it->hl_age);
        it->hl_stale = false;
        it->hl_rules = it->hl_sent = 0;
        it->hl_top = false;
    }
    free(byage);
    h->fresh = h->age.next;
    for (size_t i = 0; i < b->n; i++) /* in rank order: the sets fill at their ends */
        flags_update(h, b->v[i], true);
    h->now = now;
    health_tick(h, now);
    h->top_n = 0;
    rewalk(h, NULL, true);
    for (size_t i = 0; i < b->n; i++)
        update_rules(h, b->v[i]);
    /* Nothing is news: clients get it in full. */
    list_each_safe(l, nx, &h->dirty)
    {
        struct item *it = list_entry(l, struct item, hl_dirty);
        it->hl_sent = it->hl_rules & RULES_MASK;
        list_remove(l);
    }
    health_scores(h, h->sent);
    h->sent_top_n = h->top_n;
    h->sent_top_points = h->top_points;
    return 0;
}

void health_settings_changed(struct health *h)
{
    /* stale_days may have grown: the newest stale items may be fresh again. */
    int64_t limit = h->now - stale_ms(h);
    while (h->fresh->prev != &h->age) {
        struct item *it = list_entry(h->fresh->prev, struct item, hl_age);
        if (it->updated_at <= limit)
            break;
        it->hl_stale = false;
        h->fresh = &it->hl_age;
        update_rules(h, it);
    }
    health_tick(h, h->now);
    rewalk(h, NULL, true);
}

void health_tick(struct health *h, int64_t now)
{
    h->now = now;
    int64_t limit = now - stale_ms(h);
    while (h->fresh != &h->age) {
        struct item *it = list_entry(h->fresh, struct item, hl_age);
        if (it->updated_at > limit)
            break;
        it->hl_stale = true;
        h->fresh = h->fresh->next;
        update_rules(h, it);
    }
}

static uint8_t share(size_t good, size_t all)
{
    return all ? (uint8_t)(100 * good / all) : 100;
}

void health_scores(const struct health *h, uint8_t out[HS__COUNT])
{
    out[HS_DETAILED] = share(h->top_n - h->detail_bad, h->top_n);
    out[HS_ESTIMATED] = share(h->top_n - h->n[HR_UNESTIMATED], h->top_n);
    out[HS_PRIORITIZED] = share(h->moscow - h->n[HR_WONT_ABOVE_MUST], h->moscow);
    out[HS_EMERGENT] = share(h->candidates - h->n[HR_STALE], h->candidates);
    out[HS_OVERALL] =
        (uint8_t)((out[HS_DETAILED] + out[HS_ESTIMATED] + out[HS_PRIORITIZED] + out[HS_EMERGENT]) /
                  4);
}

void health_pack_rules(unsigned mask, msgpack_packer *pk)
{
    msgpack_pack_array(pk, (size_t)__builtin_popcount(mask & RULES_MASK));
    for (int r = 0; r < HR__COUNT; r++)
        if (mask & (1u << r))
            codec_pack_str(pk, RULE_NAMES[r]);
}

static void pack_finding(const struct item *it, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    codec_pack_kv_str(pk, "item", it->id);
    codec_pack_str(pk, "rules");
    health_pack_rules(it->hl_rules & RULES_MASK, pk);
}

/* {scores, top, counts} and the key of the findings that follow. */
static void pack_head(const struct health *h, msgpack_packer *pk, const char *findings)
{
    uint8_t s[HS__COUNT];
    health_scores(h, s);
    msgpack_pack_map(pk, 4);
    codec_pack_str(pk, "scores");
    msgpack_pack_map(pk, HS__COUNT);
    for (int i = 0; i < HS__COUNT; i++)
        codec_pack_kv_u64(pk, SCORE_NAMES[i], s[i]);
    codec_pack_str(pk, "top");
    msgpack_pack_map(pk, 2);
    codec_pack_kv_u64(pk, "items", h->top_n);
    codec_pack_str(pk, "points");
    msgpack_pack_double(pk, h->top_points);
    codec_pack_str(pk, "per_rule");
    msgpack_pack_map(pk, HR__COUNT);
    for (int r = 0; r < HR__COUNT; r++)
        codec_pack_kv_u64(pk, RULE_NAMES[r], h->n[r]);
    codec_pack_str(pk, findings);
}

void health_pack(const struct health *h, msgpack_packer *pk)
{
    pack_head(h, pk, "findings");
    size_t n = 0;
    for (size_t i = 0; i < h->b->n; i++)
        n += (h->b->v[i]->hl_rules & RULES_MASK) != 0;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < h->b->n; i++)
        if (h->b->v[i]->hl_rules & RULES_MASK)
            pack_finding(h->b->v[i], pk);
}

bool health_may_have_changed(const struct health *h)
{
    uint8_t s[HS__COUNT];
    health_scores(h, s);
    return !list_empty(&h->dirty) || memcmp(s, h->sent, sizeof s) != 0 ||
           h->top_n != h->sent_top_n || h->top_points != h->sent_top_points;
}

bool health_take_changes(struct health *h, msgpack_packer *pk)
{
    size_t n = 0;
    list_each(l, &h->dirty)
    {
        const struct item *it = list_entry(l, struct item, hl_dirty);
        n += (it->hl_rules & RULES_MASK) != it->hl_sent;
    }
    uint8_t s[HS__COUNT];
    health_scores(h, s);
    bool changed = n || memcmp(s, h->sent, sizeof s) || h->top_n != h->sent_top_n ||
                   h->top_points != h->sent_top_points;
    if (changed) {
        pack_head(h, pk, "changed");
        msgpack_pack_array(pk, n);
    }
    list_each_safe(l, nx, &h->dirty)
    {
        struct item *it = list_entry(l, struct item, hl_dirty);
        if ((it->hl_rules & RULES_MASK) != it->hl_sent) {
            pack_finding(it, pk);
            it->hl_sent = it->hl_rules & RULES_MASK;
        }
        list_remove(l);
    }
    memcpy(h->sent, s, sizeof s);
    h->sent_top_n = h->top_n;
    h->sent_top_points = h->top_points;
    return changed;
}

/* ---- the check ------------------------------------------------------------- */

int health_check(const struct health *h)
{
    const struct backlog *b = h->b;
    int bad = 0;
    size_t count = 0, cand = 0, moscow = 0, counts[HR__COUNT] = {0}, detail = 0;
    double cum = 0;
    bool stopped = false;
    const struct item *lowest = NULL;
    for (size_t i = 0; i < b->n; i++)
        if (candidate(b->v[i]) && str_is(b->v[i], ITEM_F_MOSCOW, "must"))
            lowest = b->v[i];
    if (lowest != (h->musts.n ? h->musts.v[h->musts.n - 1] : NULL)) {
        log_error("health: the lowest must differs");
        bad++;
    }
    int64_t limit = h->now - stale_ms(h);
    for (size_t i = 0; i < b->n; i++) {
        const struct item *it = b->v[i];
        bool in = false;
        if (candidate(it)) {
            cand++;
            moscow += str_of(it, ITEM_F_MOSCOW) != NULL;
            if (!stopped && (count >= HEALTH_TOP_MAX || cum >= h->capacity))
                stopped = true;
            if (!stopped) {
                in = true;
                count++;
                cum += points_of(h, it);
            }
        }
        if (in != it->hl_top) {
            log_error("health: %s in the top: %d, should be %d", it->id, it->hl_top, in);
            bad++;
        }
        if (it->hl_stale != (it->updated_at <= limit)) {
            log_error("health: %s stale: %d", it->id, it->hl_stale);
            bad++;
        }
        unsigned m = rules_of(h, it);
        if (m != (it->hl_rules & RULES_MASK)) {
            log_error("health: %s rules %x, should be %x", it->id, it->hl_rules & RULES_MASK, m);
            bad++;
        }
        for (int r = 0; r < HR__COUNT; r++)
            counts[r] += (m >> r) & 1;
        detail += (m & DETAIL_MASK) != 0;
    }
    bad += count != h->top_n || cum != h->top_points || cand != h->candidates ||
           moscow != h->moscow || detail != h->detail_bad;
    for (int r = 0; r < HR__COUNT; r++)
        bad += counts[r] != h->n[r];
    if (bad)
        log_error("health: %d differences (top %zu/%zu, candidates %zu/%zu)", bad, h->top_n, count,
                  h->candidates, cand);
    return bad;
}
