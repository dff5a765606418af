#include "dispatch.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "app.h"
#include "backlog.h"
#include "conn.h"
#include "errors.h"
#include "frame.h"
#include "hint.h"
#include "log.h"
#include "outbox.h"
#include "room.h"
#include "round.h"

typedef int (*handler_fn)(struct req *r);

/* The handler of each operation of protocol/ops.c's table. */
/* clang-format off */
static const handler_fn HANDLERS[] = {
    [OP_ROOM_CREATE] = room_handle_create,
    [OP_JOIN] = room_handle_join,
    [OP_ROLE_SET] = room_handle_role_set,
    [OP_ROOM_UPDATE] = room_handle_update,
    [OP_ITEM_ADD] = backlog_handle_add,
    [OP_ITEM_UPDATE] = backlog_handle_update,
    [OP_ITEM_MOVE] = backlog_handle_move,
    [OP_ITEM_REMOVE] = backlog_handle_remove,
    [OP_ITEM_SPLIT] = backlog_handle_split,
    [OP_FOCUS] = backlog_handle_focus,
    [OP_ROUND_START] = round_handle_start,
    [OP_VOTE] = round_handle_vote,
    [OP_ROUND_REVEAL] = round_handle_reveal,
    [OP_ROUND_ACCEPT] = round_handle_accept,
    [OP_ROUND_CANCEL] = round_handle_cancel,
    [OP_TIMER_START] = round_handle_timer_start,
    [OP_TIMER_STOP] = round_handle_timer_stop,
    [OP_ROLE_CLAIM] = room_handle_claim,
    [OP_TOKEN_ROTATE] = room_handle_token_rotate,
    [OP_HINT] = hint_handle,
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

static const char *default_msg(int code)
{
    switch (code) {
    case RF_EBAD_REQUEST:
        return "The request is malformed.";
    case RF_ENOT_JOINED:
        return "Join a room first.";
    case RF_EFORBIDDEN:
        return "Your role may not do this.";
    case RF_ENOT_FOUND:
        return "Not found.";
    case RF_ECONFLICT:
        return "The room's state does not allow this now.";
    default:
        return "The server could not complete the request; nothing was changed. Try again.";
    }
}

struct frame *dispatch_error_frame(bool has_id, uint64_t id, int code, const char *msg)
{
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, FRAME_HEAD);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 4);
    codec_pack_kv_str(&pk, "t", "err");
    codec_pack_str(&pk, "id");
    if (has_id)
        msgpack_pack_uint64(&pk, id);
    else
        msgpack_pack_nil(&pk);
    codec_pack_kv_str(&pk, "code", rf_err_code(code));
    /* A sentence may quote what the client sent, cut to a buffer: never send
     * it cut inside a character. */
    const char *m = msg && *msg ? msg : default_msg(code);
    codec_pack_str(&pk, "msg");
    codec_pack_strn(&pk, m, codec_utf8_prefix(m, strlen(m)));
    return frame_from_buf(&b);
}

void dispatch_error(struct conn *c, bool has_id, uint64_t id, int code, const char *msg)
{
    struct frame *f = dispatch_error_frame(has_id, id, code, msg);
    if (f)
        outbox_to_conn(c->app, c, f);
    frame_unref(f);
}

int req_fail(struct req *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->why, sizeof r->why, fmt, ap);
    va_end(ap);
    return code;
}

void req_ok_begin(struct req *r, struct codec_buf *b, msgpack_packer *pk, size_t nfields)
{
    codec_buf_init(b, FRAME_HEAD);
    codec_packer_init(pk, b);
    msgpack_pack_map(pk, 2 + nfields);
    codec_pack_kv_str(pk, "t", "ok");
    codec_pack_kv_u64(pk, "id", r->id);
}

void req_ok_end(struct req *r, struct codec_buf *b)
{
    struct frame *f = frame_from_buf(b);
    if (!f) {
        conn_close(r->conn, CLOSE_INTERNAL);
        return;
    }
    outbox_ack(r->app, r->conn, f, r->id, r->room ? r->room : r->conn->room);
    frame_unref(f);
}

void req_ok_seq(struct req *r, uint64_t seq)
{
    struct codec_buf b;
    msgpack_packer pk;
    req_ok_begin(r, &b, &pk, 1);
    codec_pack_kv_u64(&pk, "seq", seq);
    req_ok_end(r, &b);
}

void req_ok_unchanged(struct req *r)
{
    struct codec_buf b;
    msgpack_packer pk;
    req_ok_begin(r, &b, &pk, 0);
    req_ok_end(r, &b);
}

void dispatch_message(struct conn *c, const void *data, size_t len, bool binary)
{
    struct req r;
    memset(&r, 0, sizeof r);
    r.app = c->app;
    r.conn = c;
    if (c->close_code || c->app->stopping)
        return;
    /* Every message takes a token, junk included; a refused one is still
     * answered (with its id when it has one) until the flood closes it. */
    int limited = conn_take_token(c);
    if (c->close_code)
        return;
    if (!binary) {
        dispatch_error(c, false, 0, RF_EBAD_REQUEST,
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
        dispatch_error(c, has_id, id, rc, why);
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
    rc = HANDLERS[r.op->id](&r);
    if (rc == RF_ENOMEM)
        log_error("out of memory handling '%s'", r.op->name);
reply:
    if (rc)
        dispatch_error(c, r.has_id, r.id, rc, r.why);
out:
    msgpack_zone_destroy(&zone);
}
