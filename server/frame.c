#include "frame.h"

#include <stdlib.h>
#include <string.h>

_Static_assert(LWS_PRE >= 10, "the headroom holds the longest WebSocket header");

/* Sets up f for len payload bytes at bytes + LWS_PRE (= f + FRAME_HEAD),
 * and writes their WebSocket header into the hlen bytes before them. */
static struct frame *frame_init(struct frame *f, size_t len)
{
    unsigned char h[10];
    size_t n = 2;
    h[0] = 0x82; /* FIN, binary */
    if (len < 126) {
        h[1] = (unsigned char)len;
    } else if (len <= 0xffff) {
        h[1] = 126;
        h[2] = (unsigned char)(len >> 8);
        h[3] = (unsigned char)len;
        n = 4;
    } else {
        h[1] = 127;
        for (int i = 0; i < 8; i++)
            h[2 + i] = (unsigned char)((uint64_t)len >> (56 - 8 * i));
        n = 10;
    }
    f->refs = 1;
    f->len = (uint32_t)len;
    f->data = (unsigned char *)f + FRAME_HEAD; /* where codec_buf_init(b, FRAME_HEAD) packs */
    f->hlen = (uint32_t)n;
    memcpy(f->data - n, h, n);
    return f;
}

struct frame *frame_from_buf(struct codec_buf *b)
{
    size_t len;
    char *mem = codec_buf_take(b, &len);
    if (!mem)
        return NULL;
    return frame_init((struct frame *)(void *)mem, len - FRAME_HEAD);
}

struct frame *frame_copy(const void *data, size_t len)
{
    struct frame *f = malloc(FRAME_HEAD + len);
    if (!f)
        return NULL;
    memcpy((unsigned char *)f + FRAME_HEAD, data, len);
    return frame_init(f, len);
}

struct frame *frame_ref(struct frame *f)
{
    f->refs++;
    return f;
}

void frame_unref(struct frame *f)
{
    if (f && --f->refs == 0)
        free(f);
}
