#include "reply.h"

#include <string.h>

#include "codec.h"
#include "errors.h"
#include "frame.h"
#include "json.h"

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

int reply_fields_add(struct reply_fields *x, const char *key, const char *value)
{
    size_t n = strlen(value);
    if (x->n == REPLY_FIELDS_MAX || n >= REPLY_FIELD_BYTES)
        return RF_ETOO_LARGE;
    x->f[x->n].key = key;
    memcpy(x->f[x->n].value, value, n + 1);
    x->n++;
    return 0;
}

/* code, x's fields and msg, as map entries (3 + x->n of them). */
static void pack_error(msgpack_packer *pk, int code, const char *msg, const struct reply_fields *x)
{
    codec_pack_kv_str(pk, "code", rf_err_code(code));
    for (size_t i = 0; x && i < x->n; i++)
        codec_pack_kv_str(pk, x->f[i].key, x->f[i].value);
    /* A sentence may quote what the client sent, cut to a buffer: never send
     * it cut inside a character. */
    const char *m = msg && *msg ? msg : default_msg(code);
    codec_pack_str(pk, "msg");
    codec_pack_strn(pk, m, codec_utf8_prefix(m, strlen(m)));
}

struct frame *reply_error_frame_fields(bool has_id, uint64_t id, int code, const char *msg,
                                       const struct reply_fields *x)
{
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, FRAME_HEAD);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 4 + (x ? x->n : 0));
    codec_pack_kv_str(&pk, "t", "err");
    codec_pack_str(&pk, "id");
    if (has_id)
        msgpack_pack_uint64(&pk, id);
    else
        msgpack_pack_nil(&pk);
    pack_error(&pk, code, msg, x);
    return frame_from_buf(&b);
}

struct frame *reply_error_frame(bool has_id, uint64_t id, int code, const char *msg)
{
    return reply_error_frame_fields(has_id, id, code, msg, NULL);
}

int reply_error_json(int code, const char *msg, const struct reply_fields *x, char **out,
                     size_t *len)
{
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 2 + (x ? x->n : 0));
    pack_error(&pk, code, msg, x);
    return json_from_msgpack(&b, out, len);
}
