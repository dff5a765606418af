#include "snapshot.h"

#include <stdbool.h>

#include "clock.h"
#include "codec.h"
#include "conn.h"
#include "errors.h"
#include "frame.h"
#include "health.h"
#include "kano_ops.h"
#include "outbox.h"
#include "product.h"
#include "room.h"
#include "storymap.h"

static void pack_participant(const struct participant *p, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4);
    codec_pack_kv_str(pk, "pid", p->pid);
    codec_pack_kv_str(pk, "name", p->name);
    codec_pack_kv_str(pk, "role", role_name(p->role));
    codec_pack_kv_bool(pk, "online", p->online > 0);
}

/* Every participant; in a crowd room only the actors (no observer): then
 * O(actors), however many observers the room has. */
void snapshot_pack_participants(const struct room *r, msgpack_packer *pk)
{
    bool crowded = room_crowded(r);
    struct participant *const *v = crowded ? r->actors : r->parts;
    size_t n = crowded ? r->nactors : r->nparts;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        pack_participant(v[i], pk);
}

void snapshot_pack_observers(const struct room *r, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    codec_pack_kv_u64(pk, "online", r->observers_online);
    codec_pack_kv_u64(pk, "total", r->observers);
}

static void pack_settings(const struct room *r, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 8 + HEALTH_NSETTINGS);
    codec_pack_kv_str(pk, "id", r->id);
    codec_pack_kv_str(pk, "epoch", r->epoch);
    codec_pack_kv_str(pk, "name", r->name);
    codec_pack_str(pk, "deck");
    room_pack_deck(r, pk);
    codec_pack_kv_bool(pk, "auto_reveal", r->auto_reveal);
    codec_pack_kv_bool(pk, "reveal_on_timer", r->reveal_on_timer);
    codec_pack_kv_u64(pk, "facilitator_grace", r->facilitator_grace);
    codec_pack_kv_i64(pk, "created_at", r->created_at);
    health_pack_settings(&r->health, HEALTH_SETTINGS_ALL, pk);
}

/* Packs the snapshot's last two entries, the `items` array's value, then
 * `rounds` and its array: what snapshot_head() leaves out when shared. */
static void pack_items_tail(const struct room *r, msgpack_packer *pk)
{
    msgpack_pack_array(pk, r->backlog.n);
    for (size_t i = 0; i < r->backlog.n; i++)
        backlog_item_pack(r->backlog.v[i], pk);
    codec_pack_str(pk, "rounds");
    msgpack_pack_array(pk, r->nrounds);
    for (size_t i = 0; i < r->nrounds; i++)
        round_pack(r->rounds[i], pk);
    codec_pack_str(pk, "kano");
    kano_pack_all(r, pk);
    codec_pack_str(pk, "product");
    product_pack(&r->product, pk);
    codec_pack_str(pk, "map");
    storymap_pack(r->smap, &r->backlog, pk);
}

void snapshot_pack_export_head(const struct room *r, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 10);
    codec_pack_kv_u64(pk, "format", 1);
    codec_pack_kv_i64(pk, "exported_at", clock_now_ms());
    codec_pack_kv_u64(pk, "seq", r->seq);
    codec_pack_str(pk, "room");
    pack_settings(r, pk);
    codec_pack_str(pk, "participants");
    msgpack_pack_array(pk, r->nparts);
    for (size_t i = 0; i < r->nparts; i++) {
        msgpack_pack_map(pk, 3);
        codec_pack_kv_str(pk, "pid", r->parts[i]->pid);
        codec_pack_kv_str(pk, "name", r->parts[i]->name);
        codec_pack_kv_str(pk, "role", role_name(r->parts[i]->role));
    }
    codec_pack_str(pk, "items");
}

void snapshot_pack_export(const struct room *r, msgpack_packer *pk)
{
    snapshot_pack_export_head(r, pk);
    pack_items_tail(r, pk);
}

/* The snapshot's items and rounds (they change only with an event), encoded
 * once for this seq and shared: a WebSocket continuation frame ending the
 * message that snapshot_head() starts. NULL on out of memory. Returns a new
 * reference. */
static struct frame *snapshot_items(struct room *r)
{
    if (!r->snap_items || r->snap_seq != r->seq) {
        struct codec_buf b;
        msgpack_packer pk;
        codec_buf_init(&b, FRAME_HEAD);
        codec_packer_init(&pk, &b);
        pack_items_tail(r, &pk);
        struct frame *f = frame_from_buf(&b);
        if (!f)
            return NULL;
        frame_set_fragment(f, false, true);
        frame_unref(r->snap_items);
        r->snap_items = f;
        r->snap_seq = r->seq;
    }
    return frame_ref(r->snap_items);
}

int snapshot_prepare(struct room *r)
{
    struct frame *f = snapshot_items(r);
    frame_unref(f);
    return f ? 0 : RF_ENOMEM;
}

struct frame *snapshot_export_items(struct room *r)
{
    return snapshot_items(r);
}

/* The snapshot, all of it but the items and rounds: small, and made for
 * each joiner (presence and participants change with every join). With
 * `whole`, the items and rounds follow in the same frame; otherwise it is the
 * first fragment of a message that snapshot_items() ends. */
static struct frame *snapshot_head(const struct room *r, bool whole)
{
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, FRAME_HEAD);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 14);
    codec_pack_kv_str(&pk, "t", "snapshot");
    codec_pack_kv_u64(&pk, "seq", r->seq);
    codec_pack_str(&pk, "room");
    pack_settings(r, &pk);
    codec_pack_str(&pk, "participants");
    snapshot_pack_participants(r, &pk);
    codec_pack_str(&pk, "observers");
    snapshot_pack_observers(r, &pk);
    const struct round *cur = room_current_round(r);
    codec_pack_str(&pk, "round");
    if (cur)
        round_pack(cur, &pk);
    else
        msgpack_pack_nil(&pk);
    codec_pack_kv_str(&pk, "focus", r->focus);
    codec_pack_str(&pk, "timer");
    if (r->timer_ends_at)
        msgpack_pack_int64(&pk, r->timer_ends_at);
    else
        msgpack_pack_nil(&pk);
    codec_pack_str(&pk, "health");
    health_pack(&r->health, &pk);
    codec_pack_str(&pk, "items");
    if (whole)
        pack_items_tail(r, &pk);
    struct frame *f = frame_from_buf(&b);
    if (f && !whole)
        frame_set_fragment(f, true, false);
    return f;
}

/* Queues the room's snapshot to c as the answer to its join. A large backlog
 * (or a long history of rounds) goes as two fragments of one message: c's own
 * head, then the items and rounds frame shared by every joiner of the same
 * moment, so 50 joiners of a room cost one copy of its items, not 50. A connection without a socket
 * (in-process) gets one whole frame. Returns 0 or RF_ENOMEM. */
int snapshot_send(struct app *app, struct room *r, struct conn *c)
{
    bool share = c->wsi && (r->backlog.bytes >= ROOM_SNAPSHOT_SHARE ||
                            r->nrounds >= ROOM_SNAPSHOT_SHARE_ROUNDS);
    struct frame *head = snapshot_head(r, !share), *items = share ? snapshot_items(r) : NULL;
    int rc = head && (items || !share) ? 0 : RF_ENOMEM;
    if (!rc) {
        outbox_answer(app, c, head);
        if (items)
            outbox_answer(app, c, items);
    }
    frame_unref(head);
    frame_unref(items);
    return rc;
}
