#include "presence.h"

#include <string.h>

#include "app.h"
#include "clock.h"
#include "conn.h"
#include "event.h"
#include "frame.h"
#include "hint.h"
#include "poker_ops.h"
#include "room.h"

/* Facilitation watch: when the last online facilitator goes, the grace
 * period before someone else may claim the role starts. Then poker checks
 * whether everyone online has voted. Neither depends on observers (they
 * neither facilitate nor vote), so an observer coming or going does not call
 * it: in a room of thousands of observers a join stays O(1). */
void presence_changed(struct app *app, struct room *r)
{
    if (room_online(r, ROLE_FACILITATOR))
        r->no_facilitator_since = 0;
    else if (!r->no_facilitator_since)
        r->no_facilitator_since = clock_now_ms();
    if (!app->stopping && !r->dead)
        poker_ops_on_presence(app, r);
}

/* participant.joined / participant.left about p. */
void presence_notice(struct app *app, struct room *r, struct conn *except, const char *type,
                     const struct participant *p)
{
    struct codec_buf b;
    msgpack_packer pk;
    int joined = strcmp(type, "participant.joined") == 0;
    event_notice_begin(&b, &pk, type, clock_now_ms(), joined ? 3 : 1);
    codec_pack_kv_str(&pk, "pid", p->pid);
    if (joined) {
        codec_pack_kv_str(&pk, "name", p->name);
        codec_pack_kv_str(&pk, "role", role_name(p->role));
    }
    event_notice_end(app, r, except, &b, false);
}

void presence_tick(struct app *app, struct room *r, int64_t now)
{
    if (r->snap_items && r->snap_items->refs == 1) { /* every joiner has it: not kept */
        frame_unref(r->snap_items);
        r->snap_items = NULL;
    }
    /* now is the wall clock (the notice's `at`): when it went back, do not wait for it to
     * catch up with the last notice's time. */
    int64_t since = now - r->observers_sent_at;
    if (!r->observers_dirty || r->dead || (since >= 0 && since < ROOM_OBSERVERS_MS))
        return;
    r->observers_dirty = false;
    if (r->observers_online == r->observers_sent_online && r->observers == r->observers_sent_total)
        return; /* changed and changed back since the last notice */
    r->observers_sent_at = now;
    r->observers_sent_online = r->observers_online;
    r->observers_sent_total = r->observers;
    if (list_empty(&r->conns))
        return; /* nobody to tell: a later joiner gets the counts in its snapshot */
    struct codec_buf b;
    msgpack_packer pk;
    event_notice_begin(&b, &pk, "observers", now, 2);
    codec_pack_kv_u64(&pk, "online", r->observers_online);
    codec_pack_kv_u64(&pk, "total", r->observers);
    event_notice_end(app, r, NULL, &b, false);
}

void presence_leave(struct conn *c)
{
    struct room *r = c->room;
    struct participant *p = c->part;
    hint_leave(c, r->dead || c->app->stopping);
    list_remove(&c->room_link);
    c->room = NULL;
    c->part = NULL;
    if (list_empty(&r->conns))
        r->idle_since = clock_now_ms();
    if (--p->online == 0) {
        room_observer_presence(r, p, false);
        if (!r->dead && !c->app->stopping && p->role != ROLE_OBSERVER) {
            presence_notice(c->app, r, NULL, "participant.left", p);
            presence_changed(c->app, r);
        } else if (!r->dead && !c->app->stopping && !room_crowded(r)) {
            presence_notice(c->app, r, NULL, "participant.left", p);
        }
    }
    room_unref(r);
}
