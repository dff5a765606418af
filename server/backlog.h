/* The backlog of a room (the model): items ordered by rank keys
 * (protocol/rank.h), with the user-story fields of protocol/ops.c's item
 * field table. An item's client-settable fields are held generically, one
 * value per table entry, so adding a field to the table and its name to enum
 * item_field is all it takes to store, validate, encode and document it (a
 * table and enum that drift apart stop the server at start-up).
 *
 * The operations clients send on items are in item_ops.h. The backlog owns
 * its items: backlog_free() frees them. */
#ifndef REFINE_BACKLOG_H
#define REFINE_BACKLOG_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"
#include "map.h"
#include "rank.h"
#include "token.h"

struct store;

#define ITEM_ID_MAX       16
#define BACKLOG_MAX_ITEMS 10000
#define RANK_REBALANCE    48 /* a key longer than this triggers a rebalance */

/* The item fields of protocol/ops.c's table, by index (checked against the
 * table at start-up: backlog_check_fields). */
enum item_field {
    ITEM_F_TITLE,
    ITEM_F_KIND,
    ITEM_F_PERSONA,
    ITEM_F_GOAL,
    ITEM_F_BENEFIT,
    ITEM_F_NOTES,
    ITEM_F_ACCEPTANCE,
    ITEM_F_ESTIMATE,
    ITEM_F_VALUE,
    ITEM_F_MOSCOW,
    ITEM_F_STATUS,
    ITEM_F_LABELS,
    ITEM_F_BUSINESS_VALUE,
    ITEM_F_TIME_CRITICALITY,
    ITEM_F_RISK_REDUCTION,
    ITEM_F_PERSONA_ID,
    ITEM_F_OUTCOMES,
    ITEM_F_STEP,
    ITEM_F_SLICE,
    ITEM_F__COUNT
};

enum ival_type { IV_NIL, IV_STR, IV_INT, IV_LIST };

struct ival {
    enum ival_type type;
    union {
        char *s;
        int64_t i;
        struct {
            char **v;
            uint32_t n;
        } l;
    } u;
};

struct item {
    char id[ITEM_ID_MAX];
    char rank[RANK_MAX + 1];
    char *parent;
    int64_t updated_at;
    struct ival *f; /* ITEM_F__COUNT: one per entry of ops_item_fields */
    size_t bytes;   /* its fields' values as MessagePack (backlog_item_bytes): what counts
                       against --max-room-bytes */
    /* Its version, for undo and unsplit (undo.h): the seq of the last event
     * that changed it (0: none since it was stored without one) and who sent
     * it ("": the server or unknown). Stored, not sent to clients. */
    uint64_t seq;
    char by[TOKEN_LEN + 1];
    struct item_split *split; /* a split parent: what item.unsplit needs; else NULL */
    /* The backlog's watcher's bookkeeping (health.h): on its age list, on its
     * list of changed items; the rules it breaks and those last told; in the
     * top; stale. */
    struct list hl_age, hl_dirty;
    uint16_t hl_rules, hl_sent;
    bool hl_top, hl_stale;
};

/* What a split left on its parent (stored with it): the split's seq, the
 * parent's status before it, and its children's ids in order. */
struct item_split {
    uint64_t seq;
    char *was;
    uint32_t n;
    char (*kids)[ITEM_ID_MAX];
};

/* Who watches a backlog's changes (the room's health, health.h), told after
 * an item is inserted, before one is removed, before and after a move (its
 * index then), and after an item's fields change (backlog_account). reserve
 * comes before an insertion: 0, or RF_ENOMEM and the insertion is refused.
 * Loading (backlog_load_item) tells it nothing. */
struct backlog_watch {
    int (*reserve)(void *arg, size_t n);
    void (*inserted)(void *arg, struct item *it, size_t at);
    void (*removing)(void *arg, struct item *it, size_t at);
    void (*moving)(void *arg, struct item *it, size_t from);
    void (*moved)(void *arg, struct item *it, size_t at);
    void (*changed)(void *arg, struct item *it);
    void (*reordered)(void *arg); /* after backlog_reorder: many ranks at once */
};

/* A room's byte budget (--max-room-bytes) counts the items' field values
 * (title, notes, acceptance, labels, ...) as MessagePack: backlog.bytes, kept
 * up to date as items are added, changed and removed, and summed when a room
 * is loaded. item.add, item.update and item.split that would take it past the
 * budget are refused with too_large; an accepted estimate (a deck card) is
 * not. */
struct backlog {
    struct item **v; /* sorted by rank */
    size_t n, cap;
    struct map by_id;
    size_t bytes;                      /* the sum of the items' `bytes` */
    const struct backlog_watch *watch; /* NULL: nobody */
    void *watch_arg;
};

/* Start-up check: 0 when enum item_field names protocol/ops.c's item table
 * entry for entry; RF_EINTERNAL, with the drift logged, otherwise. */
int backlog_check_fields(void);

/* Frees every item (the struct itself is the caller's). */
void backlog_free(struct backlog *b);
/* The item with id[0..n), or NULL; borrowed from the backlog. */
struct item *backlog_get(const struct backlog *b, const char *id, size_t n);
/* Where `it` (which is in b) is in b->v. */
size_t backlog_index_of(const struct backlog *b, const struct item *it);
/* Inserts it (with its rank set) in rank order, and in by_id; the backlog
 * takes it. Returns 0 or RF_ENOMEM (then b is as it was). */
int backlog_insert(struct backlog *b, struct item *it);
/* Takes the item at b->v[at] out of b (not freed: the caller owns it again;
 * b->bytes is the caller's to adjust). */
void backlog_remove_at(struct backlog *b, size_t at);
/* Gives it (which is in b) its new rank and moves it to its place for it.
 * Allocates nothing, so cannot fail: the by_id entry stays. */
void backlog_move(struct backlog *b, struct item *it, const char *rank);
/* Many moves at once (order.apply): v[i] takes rank ranks[i], v (every item of
 * the backlog, each once) being the new order; ranks strictly increasing.
 * Allocates nothing. */
void backlog_reorder(struct backlog *b, struct item *const *v, const char (*ranks)[RANK_MAX + 1]);
/* Brings it->bytes, and b->bytes, up to date after a change to it. */
void backlog_account(struct backlog *b, struct item *it);

/* Loading a room: items come in any order (backlog_load_item: stored as
 * MessagePack; returns 0 or a code), then backlog_load_done() puts them in
 * rank order. */
int backlog_load_item(struct backlog *b, const char *id, const char *rank, const void *data,
                      size_t len);
void backlog_load_done(struct backlog *b);

/* ---- one item ------------------------------------------------------------ */

/* A new item `id` with every field at its default, or NULL (out of memory). */
struct item *backlog_item_new(const char *id);
/* NULL is a no-op. */
void backlog_item_free(struct item *it);
/* Sets the fields of the validated map to its values: 0, or RF_ENOMEM with
 * the item unchanged. */
int backlog_item_apply(struct item *it, const msgpack_object *map);
/* Whether every field of the validated map `set` has that value already. */
bool backlog_item_has(const struct item *it, const msgpack_object *set);
/* The item's field values as MessagePack: its weight in the room's budget. */
size_t backlog_item_bytes(const struct item *it);
/* What it->bytes would be with the validated map applied, into *out: 0, or
 * RF_ENOMEM. Nothing changes. */
int backlog_item_bytes_with(const struct item *it, const msgpack_object *map, size_t *out);
/* Packs the item as a map (every field). */
void backlog_item_pack(const struct item *it, msgpack_packer *pk);
/* Appends the item's row of room `room` to the store's current batch: the
 * map of backlog_item_pack() with its version (seq, by) and split record. */
int backlog_save_item(struct store *s, const char *room, const struct item *it);
/* Marks it as changed by the event about to be made (seq: the room's next)
 * by pid (NULL: the server), at `now`. Every change to an item calls it. */
void backlog_touch(struct item *it, uint64_t seq, const char *pid, int64_t now);
/* NULL is a no-op. */
void backlog_split_free(struct item_split *sp);

/* Frees what v holds; v becomes nil. */
void backlog_ival_free(struct ival *v);
/* Makes *dst (nil) a deep copy of *src: 0, or RF_ENOMEM with *dst nil. */
int backlog_ival_copy(struct ival *dst, const struct ival *src);
/* v as MessagePack, in bytes. */
size_t backlog_ival_bytes(const struct ival *v);
/* Packs v (nil, string, integer or array of strings). */
void backlog_ival_pack(const struct ival *v, msgpack_packer *pk);

#endif
