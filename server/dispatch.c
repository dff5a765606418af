#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "conn.h"
#include "errors.h"
#include "health_ops.h"
#include "hint.h"
#include "item_ops.h"
#include "kano_ops.h"
#include "product_ops.h"
#include "loader.h"
#include "log.h"
#include "metrics.h"
#include "move.h"
#include "poker_ops.h"
#include "prio_ops.h"
#include "req.h"
#include "room.h"
#include "room_ops.h"
#include "undo.h"
#include "unsplit.h"
#include "storymap_ops.h"

typedef int (*handler_fn)(struct req *r);

/* The handler of each operation of protocol/ops.c's table. */
/* clang-format off */
static const handler_fn HANDLERS[] = {
    [OP_ROOM_CREATE] = room_ops_create,
    [OP_JOIN] = room_ops_join,
    [OP_ROLE_SET] = room_ops_role_set,
    [OP_ROOM_UPDATE] = room_ops_update,
    [OP_ITEM_ADD] = item_ops_add,
    [OP_ITEM_UPDATE] = item_ops_update,
    [OP_ITEM_MOVE] = item_ops_move,
    [OP_ITEM_REMOVE] = item_ops_remove,
    [OP_ITEM_SPLIT] = item_ops_split,
    [OP_FOCUS] = item_ops_focus,
    [OP_ROUND_START] = poker_ops_start,
    [OP_VOTE] = poker_ops_vote,
    [OP_ROUND_REVEAL] = poker_ops_reveal,
    [OP_ROUND_ACCEPT] = poker_ops_accept,
    [OP_ROUND_CANCEL] = poker_ops_cancel,
    [OP_TIMER_START] = poker_ops_timer_start,
    [OP_TIMER_STOP] = poker_ops_timer_stop,
    [OP_ROLE_CLAIM] = room_ops_claim,
    [OP_TOKEN_ROTATE] = room_ops_token_rotate,
    [OP_HINT] = hint_handle,
    [OP_KANO_ANSWER] = kano_ops_answer,
    [OP_KANO_REVEAL] = kano_ops_reveal,
    [OP_KANO_RESET] = kano_ops_reset,
    [OP_ORDER_PROPOSE] = prio_ops_propose,
    [OP_ORDER_APPLY] = prio_ops_apply,
    [OP_ITEM_UNSPLIT] = unsplit_handle,
    [OP_UNDO] = undo_handle,
    [OP_VISION_SET] = product_ops_vision_set,
    [OP_PERSONA_ADD] = product_ops_persona_add,
    [OP_PERSONA_UPDATE] = product_ops_persona_update,
    [OP_PERSONA_REMOVE] = product_ops_persona_remove,
    [OP_OUTCOME_ADD] = product_ops_outcome_add,
    [OP_OUTCOME_UPDATE] = product_ops_outcome_update,
    [OP_OUTCOME_REMOVE] = product_ops_outcome_remove,
    [OP_MAP_ADD] = storymap_ops_add,
    [OP_MAP_UPDATE] = storymap_ops_update,
    [OP_MAP_MOVE] = storymap_ops_move,
    [OP_MAP_REMOVE] = storymap_ops_remove,
    [OP_MAP_PLACE] = storymap_ops_place,
};
/* clang-format on */
_Static_assert(sizeof HANDLERS / sizeof HANDLERS[0] == OP__COUNT,
               "every operation of the table has a handler");

bool dispatch_table_complete(void)
{
    for (int i = 0; i < OP__COUNT; i++)
        if (!HANDLERS[i])
            return false;
    return true;
}

static int wait_for_room(struct req *r, const void *data, size_t len, bool binary);

/* Handles one message: limited is conn_take_token()'s answer for it, and
 * load_err what the loader answered when it is a join handled again. */
static void handle(struct conn *c, const void *data, size_t len, bool binary, int limited,
                   int load_err)
{
    struct req r;
    memset(&r, 0, sizeof r);
    r.app = c->app;
    r.conn = c;
    r.load_err = load_err;
    if (!binary) {
        req_error(c, false, 0, RF_EBAD_REQUEST,
                  "Text frames are not accepted; send each message as one binary "
                  "MessagePack map.");
        return;
    }
    msgpack_zone zone;
    msgpack_object msg;
    const char *why;
    msgpack_zone_init(&zone, 2048);
    int rc = codec_decode(data, len, &zone, &msg, &why);
    if (rc) {
        /* Echo the id when the message is well-formed but for its strings,
         * and name the field that holds a NUL. */
        const char *ignored;
        size_t off = 0;
        uint64_t id = 0;
        bool whole = codec_check_structure(data, len, &ignored) == 0 &&
                     msgpack_unpack(data, len, &off, &zone, &msg) == MSGPACK_UNPACK_SUCCESS;
        bool has_id = whole && codec_get_uint(&msg, "id", &id);
        if (whole && codec_name_nul(&msg, r.why, sizeof r.why))
            why = r.why;
        req_error(c, has_id, id, rc, why);
        goto out;
    }
    for (uint32_t i = 0; i < msg.via.map.size; i++) {
        if (msg.via.map.ptr[i].key.type != MSGPACK_OBJECT_STR) {
            r.has_id = codec_get_uint(&msg, "id", &r.id);
            rc = req_fail(&r, RF_EBAD_REQUEST, "Every key of a message must be a string.");
            goto reply;
        }
    }
    r.msg = &msg;
    r.has_id = codec_get_uint(&msg, "id", &r.id);
    if (limited) {
        rc = req_fail(&r, limited, "Too many messages: at most %zu a second; slow down.",
                      c->app->cfg.rate);
        goto reply;
    }
    const msgpack_object *t = codec_get(&msg, "t");
    if (!t || t->type != MSGPACK_OBJECT_STR) {
        rc = req_fail(&r, RF_EBAD_REQUEST, "Field 't' (the operation) is required.");
        goto reply;
    }
    if (!r.has_id || r.id > 9007199254740991ull) {
        r.has_id = false;
        rc = req_fail(&r, RF_EBAD_REQUEST, "Field 'id' must be a whole number from 0 to 2^53-1.");
        goto reply;
    }
    r.op = ops_find(t->via.str.ptr, t->via.str.size);
    if (!r.op) {
        rc = req_fail(&r, RF_EUNKNOWN_OP, "There is no operation '%.*s'.", (int)t->via.str.size,
                      t->via.str.ptr);
        goto reply;
    }
    if ((rc = ops_validate(r.op, &msg, r.why, sizeof r.why)))
        goto reply;
    if (!(r.op->flags & OPF_NO_JOIN)) {
        if (!c->room) {
            rc = req_fail(&r, RF_ENOT_JOINED, "Join a room before '%s'.", r.op->name);
            goto reply;
        }
        r.room = c->room;
        r.who = c->part;
        if (!ops_allows(r.op, r.who->role)) {
            rc = req_fail(&r, RF_EFORBIDDEN, "The %s role may not use '%s'.",
                          role_name(r.who->role), r.op->name);
            goto reply;
        }
    }
    if ((rc = move_frozen(&r)))
        goto reply; /* the room is being moved: no change (move.h) */
    rc = HANDLERS[r.op->id](&r);
    c->app->metrics.joins += !rc && r.op->id == OP_JOIN && c->room; /* not a join that waits */
    if (r.room && c->room == r.room)
        health_ops_flush(c->app, r.room); /* what the operation changed in the room's health */
    if (!rc && r.wait_room)
        rc = wait_for_room(&r, data, len, binary);
    if (rc == RF_ENOMEM)
        log_error("out of memory handling '%s'", r.op->name);
reply:
    c->app->metrics.rate_limited += rc == RF_ERATE_LIMITED;
    if (rc)
        req_error_fields(c, r.has_id, r.id, rc, r.why, &r.fields);
out:
    msgpack_zone_destroy(&zone);
}

/* Handles what the connection sent while its join waited, in order, until
 * it waits again (another join) or is closing. */
static void drain(struct conn *c)
{
    struct msgq_entry *m;
    while (!c->join_msg && !c->close_code && !c->app->stopping && (m = msgq_pop(&c->held))) {
        handle(c, m->data, m->len, m->binary, m->limited, 0);
        free(m);
    }
}

/* The loader's answer to a waiting join (on the loop thread): the join is
 * handled again (the room is in memory now, or load_err says why not),
 * then what came after it. */
static void on_room_loaded(void *arg, struct room *room, int err)
{
    struct conn *c = conn_ref(arg);
    struct msgq_entry *join = c->join_msg;
    (void)room; /* in app->rooms: the join finds it there */
    c->join_msg = NULL;
    if (!c->close_code && !c->app->stopping)
        handle(c, join->data, join->len, join->binary, 0, err);
    free(join);
    drain(c);
    conn_unref(c);
}

/* The join r asked for a room not in memory: its message is kept and the
 * room loaded; the connection's next messages wait behind it. */
static int wait_for_room(struct req *r, const void *data, size_t len, bool binary)
{
    struct conn *c = r->conn;
    char id[ROOM_ID_MAX + 1];
    snprintf(id, sizeof id, "%.*s", (int)r->wait_room->via.str.size, r->wait_room->via.str.ptr);
    struct msgq_entry *join = msgq_entry_new(data, len, binary, 0);
    if (!join)
        return RF_ENOMEM;
    int rc = loader_load(c->app->loader, id, on_room_loaded, c);
    if (rc) {
        free(join);
        return rc;
    }
    c->join_msg = join;
    return 0;
}

void dispatch_message(struct conn *c, const void *data, size_t len, bool binary)
{
    c->app->metrics.messages++;
    if (c->close_code || c->app->stopping)
        return;
    /* Every message takes a token, junk included; a refused one is still
     * answered (with its id when it has one) until the flood closes it. */
    int limited = conn_take_token(c);
    if (c->close_code)
        return;
    if (!c->join_msg) {
        handle(c, data, len, binary, limited, 0);
        return;
    }
    /* Behind a join that waits for its room: kept, up to a bound. */
    if (c->held.count >= DISPATCH_HELD_MAX ||
        c->held.bytes + len > DISPATCH_HELD_BYTES(c->app->cfg.max_message)) {
        log_info("closing a connection that sent over %d messages (or %zu bytes) while its "
                 "join waited",
                 DISPATCH_HELD_MAX, (size_t)DISPATCH_HELD_BYTES(c->app->cfg.max_message));
        conn_close(c, CONN_CLOSE_POLICY);
        return;
    }
    if (msgq_push(&c->held, data, len, binary, limited))
        conn_close(c, CONN_CLOSE_INTERNAL);
}

void dispatch_on_closed(struct conn *c)
{
    if (c->join_msg && c->app->loader) /* after loader_close, nothing is answered anyway */
        loader_cancel(c->app->loader, c);
    free(c->join_msg);
    c->join_msg = NULL;
    msgq_clear(&c->held);
}
