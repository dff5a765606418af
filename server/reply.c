#include "reply.h"

#include <string.h>

#include "codec.h"
#include "errors.h"
#include "frame.h"

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

struct frame *reply_error_frame(bool has_id, uint64_t id, int code, const char *msg)
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
