#include "room_load.h"

#include <stdio.h>
#include <string.h>

#include "app.h"
#include "clock.h"
#include "codec.h"
#include "errors.h"
#include "frame.h"
#include "loader.h"
#include "log.h"
#include "product.h"
#include "kano.h"
#include "kano_ops.h"
#include "room.h"
#include "snapshot.h"
#include "store.h"
#include "storymap.h"

static int load_room_row(void *arg, int64_t created_at, uint64_t seq, const void *meta, size_t len)
{
    struct room *r = arg;
    msgpack_zone z;
    msgpack_object o;
    const char *why;
    int rc = RF_EINTERNAL;
    msgpack_zone_init(&z, 1024);
    if (codec_decode(meta, len, &z, &o, &why))
        goto out;
    r->created_at = created_at;
    r->seq = seq;
    r->name = codec_strdup(codec_get(&o, "name"));
    const msgpack_object *epoch = codec_get(&o, "epoch");
    if (epoch && epoch->type == MSGPACK_OBJECT_STR && epoch->via.str.size <= TOKEN_LEN)
        memcpy(r->epoch_base, epoch->via.str.ptr, epoch->via.str.size);
    else
        strcpy(r->epoch_base, "0");
    const msgpack_object *focus = codec_get(&o, "focus");
    if (focus && focus->type == MSGPACK_OBJECT_STR && !(r->focus = codec_strdup(focus)))
        goto out;
    const msgpack_object *ar = codec_get(&o, "auto_reveal");
    r->auto_reveal = ar && ar->type == MSGPACK_OBJECT_BOOLEAN && ar->via.boolean;
    codec_get_uint(&o, "next_item", &r->next_item);
    codec_get_uint(&o, "next_round", &r->next_round);
    uint64_t u = 0;
    if (codec_get_uint(&o, "facilitator_grace", &u))
        r->facilitator_grace = (uint32_t)u;
    if (codec_get_uint(&o, "timer_ends_at", &u))
        r->timer_ends_at = (int64_t)u;
    for (int i = 0; i < HEALTH_NSETTINGS; i++) /* absent in rooms older than them: defaults */
        if (codec_get_uint(&o, HEALTH_SETTING_NAMES[i], &u) && u >= 1 && u <= UINT32_MAX)
            *health_setting(&r->health, i) = (uint32_t)u;
    const msgpack_object *rot = codec_get(&o, "reveal_on_timer");
    r->reveal_on_timer = rot && rot->type == MSGPACK_OBJECT_BOOLEAN && rot->via.boolean;
    const msgpack_object *t = codec_get(&o, "tokens");
    if (!r->name || room_set_deck(r, codec_get(&o, "deck")) ||
        product_load(&r->product, codec_get(&o, "product")) || !t ||
        t->type != MSGPACK_OBJECT_ARRAY || t->via.array.size != ROLE__COUNT)
        goto out;
    for (int i = 0; i < ROLE__COUNT; i++) {
        const msgpack_object *h = &t->via.array.ptr[i];
        if (h->type != MSGPACK_OBJECT_BIN || h->via.bin.size != TOKEN_HASH)
            goto out;
        memcpy(r->token_hash[i], h->via.bin.ptr, TOKEN_HASH);
    }
    if (storymap_load(codec_get(&o, "map"), &r->smap))
        goto out;
    rc = 0;
out:
    msgpack_zone_destroy(&z);
    return rc;
}

static int load_participant(void *arg, const char *pid, const void *data, size_t len)
{
    struct room *r = arg;
    msgpack_zone z;
    msgpack_object o;
    const char *why;
    int rc = RF_EINTERNAL;
    msgpack_zone_init(&z, 256);
    if (codec_decode(data, len, &z, &o, &why) || strlen(pid) > TOKEN_LEN)
        goto out;
    const msgpack_object *role = codec_get(&o, "role"), *sec = codec_get(&o, "secret");
    struct participant *p;
    if (!role || role->type != MSGPACK_OBJECT_STR || !sec || sec->type != MSGPACK_OBJECT_BIN ||
        sec->via.bin.size != TOKEN_HASH || !(p = room_add_participant(r)))
        goto out;
    strcpy(p->pid, pid);
    p->role = role_parse(role->via.str.ptr, role->via.str.size);
    memcpy(p->secret_hash, sec->via.bin.ptr, TOKEN_HASH);
    p->name = codec_strdup(codec_get(&o, "name"));
    if (!p->name || p->role < 0 || room_participant(r, pid, strlen(pid)) ||
        map_put(&r->by_pid, p->pid, p)) {
        room_drop_new_participant(r, p);
        goto out;
    }
    room_track_participant(r, p);
    rc = 0;
out:
    msgpack_zone_destroy(&z);
    return rc;
}

static int load_item(void *arg, const char *id, const char *rank, const void *data, size_t len)
{
    struct room *r = arg;
    return backlog_load_item(&r->backlog, id, rank, data, len);
}

static int load_round(void *arg, const char *id, const void *data, size_t len)
{
    struct room *r = arg;
    struct round *rd = round_load(id, data, len);
    if (!rd || room_add_round(r, rd)) {
        round_free(rd);
        return RF_EINTERNAL;
    }
    return 0;
}

static int load_kano(void *arg, const char *item, const void *data, size_t len)
{
    struct room *r = arg;
    struct kano_survey *s = kano_load(item, data, len);
    if (!s || kano_add(r, s)) {
        kano_free(s);
        return RF_EINTERNAL;
    }
    return 0;
}

static int load_event(void *arg, uint64_t seq, const void *payload, size_t len)
{
    struct room *r = arg;
    (void)seq;
    struct frame *f = frame_copy(payload, len);
    if (!f)
        return RF_ENOMEM;
    room_ring_push(r, f);
    return 0;
}

struct room *room_find(struct app *app, const char *id, size_t n)
{
    return map_get(&app->rooms, id, n);
}

/* Loader thread: room id read through q and built; nothing the loop touches
 * but the configuration and the store's count of restores, both fixed while
 * the loop runs. */
static int build(void *arg, struct store_reader *q, const char *id, struct room **out)
{
    struct app *app = arg;
    struct room *r = room_new(app);
    if (!r)
        return RF_ENOMEM;
    snprintf(r->id, sizeof r->id, "%s", id);
    struct store_room_reader reader = {r,          load_room_row, load_participant, load_item,
                                       load_round, load_event,    load_kano};
    int rc = store_reader_load_room(q, r->id, app->cfg.replay_events, &reader);
    backlog_load_done(&r->backlog);
    if (rc == 0)
        rc = health_rebuild(&r->health, clock_now_ms()); /* derived: never stored */
    if (rc == 0 && r->ring_count > r->seq)
        rc = RF_EINTERNAL;
    room_set_epoch(app, r);
    /* The items and rounds its first joiner (or export) needs, encoded here
     * rather than on the loop. */
    if (rc == 0)
        rc = snapshot_prepare(r);
    if (rc == 0) {
        *out = r;
        return 0;
    }
    if (rc != RF_ENOT_FOUND)
        log_error("room %s could not be loaded (%s)", r->id, rf_err_code(rc));
    room_unref(r); /* its only reference: freed */
    return rc;
}

/* Loop thread: the built room goes into app->rooms, unless one of that id
 * is there already. */
static struct room *publish(void *arg, struct room *r, int *err)
{
    struct app *app = arg;
    struct room *have = map_get(&app->rooms, r->id, strlen(r->id));
    if (have) {
        room_unref(r);
        return have;
    }
    if (map_put(&app->rooms, r->id, r)) {
        log_error("room %s could not be loaded (%s)", r->id, rf_err_code(RF_ENOMEM));
        room_unref(r);
        *err = RF_ENOMEM;
        return NULL;
    }
    log_info("room %s loaded: %zu items, %zu participants, seq %llu", r->id, r->backlog.n,
             r->nparts, (unsigned long long)r->seq);
    return r;
}

static void discard(void *arg, struct room *r)
{
    (void)arg;
    room_unref(r);
}

void room_load_hooks(struct app *app, struct loader_hooks *h)
{
    *h = (struct loader_hooks){app, build, publish, discard};
}
