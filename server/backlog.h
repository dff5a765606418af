/* The backlog of a room: items ordered by rank keys (protocol/rank.h), with
 * the user-story fields of protocol/ops.c's item field table. An item's
 * client-settable fields are held generically, one value per table entry,
 * so adding a field to the table is all it takes to store, validate, encode
 * and document it. */
#ifndef REFINE_BACKLOG_H
#define REFINE_BACKLOG_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "map.h"
#include "rank.h"

struct req;
struct room;

#define ITEM_ID_MAX       16
#define BACKLOG_MAX_ITEMS 10000
#define RANK_REBALANCE    48 /* a key longer than this triggers a rebalance */

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
    struct ival *f; /* one per entry of ops_item_fields */
    size_t bytes;   /* its fields' values as MessagePack (item_bytes): what counts
                       against --max-room-bytes */
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
    size_t bytes; /* the sum of the items' `bytes` */
};

void backlog_free(struct backlog *b);
struct item *backlog_get(const struct backlog *b, const char *id, size_t n);
/* Packs the item as a map (every field). */
void item_pack(const struct item *it, msgpack_packer *pk);
/* Adds an item stored as MessagePack (room loading). Returns 0 or a code. */
/* Loading a room: items come in any order (backlog_load_item), then
 * backlog_load_done() puts them in rank order. */
void backlog_load_done(struct backlog *b);
int backlog_load_item(struct backlog *b, const char *id, const char *rank, const void *data,
                      size_t len);

struct app;
struct participant;
/* Sets the item's estimate (an accepted poker round) and broadcasts
 * item.updated. Returns the event's seq, or 0 when it could not be recorded. */
uint64_t backlog_set_estimate(struct app *app, struct room *r, struct item *it,
                              const char *estimate, const struct participant *by);

int backlog_handle_add(struct req *r);
int backlog_handle_update(struct req *r);
int backlog_handle_move(struct req *r);
int backlog_handle_remove(struct req *r);
int backlog_handle_split(struct req *r);
int backlog_handle_focus(struct req *r);

#endif
