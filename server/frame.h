/* A frame: one encoded message, stored once and reference-counted while it
 * waits in any number of connection queues (and in a room's replay ring).
 * The payload sits after LWS_PRE bytes of headroom, whose last hlen bytes
 * hold its WebSocket header, written once when the frame is made. lws_write()
 * never sees a frame's memory: conn.c copies header and payload into one
 * write buffer per burst (app->wbuf), so LWS_PRE is only room for the header
 * (at most 10 bytes). */
#ifndef REFINE_FRAME_H
#define REFINE_FRAME_H

#include <libwebsockets.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct frame {
    uint32_t refs;
    uint32_t len;
    /* The WebSocket header (FIN, binary, unmasked length), written once when
     * the frame is made, right before data: the same for every recipient, so
     * data - hlen .. data + len is the whole frame on the wire. */
    uint32_t hlen;
    unsigned char *data; /* = (unsigned char *)frame + FRAME_HEAD */
    unsigned char bytes[];
};

/* Headroom to pass to codec_buf_init() for a buffer that becomes a frame. */
#define FRAME_HEAD (sizeof(struct frame) + LWS_PRE)

/* The frame on the wire: its header and payload, hlen + len bytes. */
static inline const unsigned char *frame_wire(const struct frame *f)
{
    return f->data - f->hlen;
}

/* Turns an encoded buffer (started with codec_buf_init(b, FRAME_HEAD)) into
 * a frame with one reference; takes b's memory. NULL on out of memory. */
struct frame *frame_from_buf(struct codec_buf *b);

/* A frame holding a copy of data[0..len). NULL on out of memory. */
struct frame *frame_copy(const void *data, size_t len);

/* Makes f one fragment of a message split over several frames (RFC 6455
 * 5.4): `first` gives it the binary opcode (else continuation), `fin` marks
 * the last. A message's fragments must be queued back to back. */
static inline void frame_set_fragment(struct frame *f, bool first, bool fin)
{
    f->data[-(ptrdiff_t)f->hlen] = (unsigned char)((fin ? 0x80 : 0) | (first ? 0x2 : 0x0));
}

struct frame *frame_ref(struct frame *f);
/* Drops one reference; frees on the last. NULL is a no-op. */
void frame_unref(struct frame *f);

#endif
