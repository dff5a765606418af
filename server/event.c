#include "event.h"

#include "app.h"
#include "clock.h"
#include "errors.h"
#include "frame.h"
#include "log.h"
#include "outbox.h"
#include "req.h"
#include "room.h"
#include "store.h"

void event_begin(struct event *ev, struct room *r, const char *type, const struct participant *by,
                 size_t nfields)
{
    ev->room = r;
    ev->type = type;
    ev->by = by ? by->pid : NULL;
    ev->seq = ++r->seq;
    ev->at = clock_now_ms();
    frame_unref(r->snap_items); /* the items may change: the next joiner's snapshot is new */
    r->snap_items = NULL;
    codec_buf_init(&ev->buf, FRAME_HEAD);
    codec_packer_init(&ev->pk, &ev->buf);
    msgpack_pack_map(&ev->pk, 4 + nfields);
    codec_pack_kv_str(&ev->pk, "t", type);
    codec_pack_kv_u64(&ev->pk, "seq", ev->seq);
    codec_pack_kv_i64(&ev->pk, "at", ev->at);
    codec_pack_kv_str(&ev->pk, "by", ev->by);
}

int event_commit(struct app *app, struct event *ev, uint64_t *seq)
{
    struct room *r = ev->room;
    struct frame *f = frame_from_buf(&ev->buf);
    if (!f ||
        store_add_event(app->store, r->id, ev->seq, ev->at, ev->by, ev->type, f->data, f->len)) {
        /* The in-memory room is now ahead of what can be stored: drop it. */
        log_error("out of memory recording an event of room %s", r->id);
        frame_unref(f);
        room_evict(app, r->id);
        return RF_ENOMEM;
    }
    r->records_upto = store_added(app->store);
    room_ring_push(r, frame_ref(f));
    outbox_to_room(app, r, f, NULL, false);
    frame_unref(f);
    if (seq)
        *seq = ev->seq;
    return 0;
}

void event_reply(struct req *q, struct event *ev)
{
    uint64_t seq;
    if (event_commit(q->app, ev, &seq) == 0)
        req_ok_seq(q, seq);
}

void event_notice_begin(struct codec_buf *b, msgpack_packer *pk, const char *type, int64_t at,
                        size_t nfields)
{
    codec_buf_init(b, FRAME_HEAD);
    codec_packer_init(pk, b);
    msgpack_pack_map(pk, 2 + nfields);
    codec_pack_kv_str(pk, "t", type);
    codec_pack_kv_i64(pk, "at", at);
}

void event_notice_end(struct app *app, struct room *r, struct conn *except, struct codec_buf *b,
                      bool actors_only)
{
    struct frame *f = frame_from_buf(b);
    if (f)
        outbox_to_room(app, r, f, except, actors_only);
    frame_unref(f);
}
