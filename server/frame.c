#include "frame.h"

#include <stdlib.h>
#include <string.h>

struct frame *frame_from_buf(struct codec_buf *b)
{
    size_t len;
    char *mem = codec_buf_take(b, &len);
    if (!mem)
        return NULL;
    struct frame *f = (struct frame *)(void *)mem;
    f->refs = 1;
    f->len = (uint32_t)(len - FRAME_HEAD);
    f->data = f->bytes + LWS_PRE;
    return f;
}

struct frame *frame_copy(const void *data, size_t len)
{
    struct frame *f = malloc(FRAME_HEAD + len);
    if (!f)
        return NULL;
    f->refs = 1;
    f->len = (uint32_t)len;
    f->data = f->bytes + LWS_PRE;
    memcpy(f->data, data, len);
    return f;
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
