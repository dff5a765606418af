#include "health_ops.h"

#include "clock.h"
#include "codec.h"
#include "errors.h"
#include "event.h"
#include "health.h"
#include "req.h"
#include "room.h"

void health_ops_flush(struct app *app, struct room *r)
{
    if (r->dead || !health_may_have_changed(&r->health))
        return; /* most operations: no allocation, nothing packed */
    struct codec_buf b;
    msgpack_packer pk;
    event_notice_begin(&b, &pk, "health", clock_now_ms(), 1);
    codec_pack_str(&pk, "health");
    if (health_take_changes(&r->health, &pk))
        event_notice_end(app, r, NULL, &b, false);
    else
        codec_buf_free(&b);
}

void health_ops_tick(struct app *app, struct room *r, int64_t now)
{
    health_tick(&r->health, now);
    health_ops_flush(app, r);
}

int health_ops_check(struct req *q)
{
    for (int i = 0; i < HEALTH_NSETTINGS; i++) {
        const msgpack_object *o = codec_get(q->msg, HEALTH_SETTING_NAMES[i]);
        if (o && o->via.u64 == 0)
            return req_fail(q, RF_EBAD_REQUEST, "Field '%s' must be at least 1.",
                            HEALTH_SETTING_NAMES[i]);
    }
    return 0;
}

unsigned health_ops_diff(struct req *q)
{
    unsigned mask = 0;
    for (int i = 0; i < HEALTH_NSETTINGS; i++) {
        const msgpack_object *o = codec_get(q->msg, HEALTH_SETTING_NAMES[i]);
        if (o && o->via.u64 != *health_setting(&q->room->health, i))
            mask |= 1u << i;
    }
    return mask;
}

void health_ops_set(struct req *q, unsigned mask)
{
    for (int i = 0; i < HEALTH_NSETTINGS; i++)
        if (mask & (1u << i))
            *health_setting(&q->room->health, i) =
                (uint32_t)codec_get(q->msg, HEALTH_SETTING_NAMES[i])->via.u64;
    if (mask)
        health_settings_changed(&q->room->health);
}
