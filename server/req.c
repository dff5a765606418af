#include "req.h"

#include <stdarg.h>
#include <stdio.h>

#include "app.h"
#include "conn.h"
#include "frame.h"
#include "outbox.h"
#include "reply.h"

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
        conn_close(r->conn, CONN_CLOSE_INTERNAL);
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

void req_ok_seq_str(struct req *r, uint64_t seq, const char *key, const char *value)
{
    struct codec_buf b;
    msgpack_packer pk;
    req_ok_begin(r, &b, &pk, 2);
    codec_pack_kv_u64(&pk, "seq", seq);
    codec_pack_kv_str(&pk, key, value);
    req_ok_end(r, &b);
}

void req_ok_unchanged(struct req *r)
{
    struct codec_buf b;
    msgpack_packer pk;
    req_ok_begin(r, &b, &pk, 0);
    req_ok_end(r, &b);
}

void req_error_fields(struct conn *c, bool has_id, uint64_t id, int code, const char *msg,
                      const struct reply_fields *x)
{
    struct frame *f = reply_error_frame_fields(has_id, id, code, msg, x);
    if (!f) { /* unanswered, the client would wait for ever: as req_ok_end */
        conn_close(c, CONN_CLOSE_INTERNAL);
        return;
    }
    outbox_to_conn(c->app, c, f);
    frame_unref(f);
}

void req_error(struct conn *c, bool has_id, uint64_t id, int code, const char *msg)
{
    req_error_fields(c, has_id, id, code, msg, NULL);
}
