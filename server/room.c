#include "room.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "clock.h"
#include "conn.h"
#include "errors.h"
#include "frame.h"
#include "kano.h"
#include "undo_rec.h"
#include "log.h"
#include "product.h"
#include "store.h"
#include "storymap.h"

/* The epoch clients see: the room's own, plus the number of restores the
 * database has been through (store.h), so a restore changes every room's. */
void room_set_epoch(struct app *app, struct room *r)
{
    uint64_t restores = store_restores(app->store);
    if (restores)
        snprintf(r->epoch, sizeof r->epoch, "%s.%llu", r->epoch_base, (unsigned long long)restores);
    else
        snprintf(r->epoch, sizeof r->epoch, "%s", r->epoch_base);
}

/* ---- room ids ---------------------------------------------------------- */

bool room_home(const char *id, char out[INSTANCE_NAME_MAX + 1])
{
    const char *dot = strchr(id, '.');
    out[0] = '\0';
    if (!dot || !config_instance_valid(id, (size_t)(dot - id)))
        return false;
    memcpy(out, id, (size_t)(dot - id));
    out[dot - id] = '\0';
    return true;
}

bool room_elsewhere(const struct app *app, const char *id, size_t n,
                    char home[INSTANCE_NAME_MAX + 1])
{
    char rid[ROOM_ID_MAX + 1];
    if (n > ROOM_ID_MAX)
        n = ROOM_ID_MAX; /* the home comes first: a longer id still names it */
    memcpy(rid, id, n);
    rid[n] = '\0';
    return room_home(rid, home) && strcmp(home, app->instance) != 0;
}

/* ---- lifetime ---------------------------------------------------------- */

struct room *room_new(struct app *app)
{
    struct room *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->refs = 1;
    list_init(&r->conns);
    list_init(&r->hinting);
    r->facilitator_grace = 120;
    r->next_round = 1;
    r->no_facilitator_since = clock_now_ms();
    r->idle_since = clock_now_ms();
    r->ring_cap = app->cfg.replay_events;
    health_init(&r->health, &r->backlog);
    return r;
}

static void free_cards(struct room *r)
{
    for (size_t i = 0; i < r->ncards; i++)
        free(r->cards[i]);
    free(r->cards);
    free(r->deck_name);
    r->cards = NULL;
    r->ncards = 0;
    r->deck_name = NULL;
}

/* The room's frames: their counts are the loop's (connection queues share them). */
static void drop_frames(struct room *r)
{
    for (size_t i = 0; i < r->ring_count; i++)
        frame_unref(r->ring[(r->ring_head + i) % r->ring_alloc]);
    r->ring_count = 0;
    frame_unref(r->snap_items);
    r->snap_items = NULL;
}

static void room_free(struct room *r)
{
    drop_frames(r);
    for (size_t i = 0; i < r->nparts; i++) {
        undo_rec_free(r->parts[i]->undo);
        free(r->parts[i]->name);
        free(r->parts[i]);
    }
    free(r->parts);
    free(r->actors);
    map_free(&r->by_pid);
    free(r->ring);
    for (size_t i = 0; i < r->nrounds; i++)
        round_free(r->rounds[i]);
    free(r->rounds);
    for (size_t i = 0; i < r->nkano; i++)
        kano_free(r->kano[i]);
    free(r->kano);
    map_free(&r->kano_by_item);
    product_free(&r->product);
    storymap_free(r->smap);
    backlog_free(&r->backlog);
    health_free(&r->health);
    free_cards(r);
    free(r->name);
    free(r->focus);
    free(r);
}

struct room *room_ref(struct room *r)
{
    r->refs++;
    return r;
}

void room_unref(struct room *r)
{
    if (r && --r->refs == 0)
        room_free(r);
}

struct round *room_current_round(const struct room *r)
{
    if (!r->nrounds)
        return NULL;
    struct round *rd = r->rounds[r->nrounds - 1];
    return rd->state == ROUND_VOTING || rd->state == ROUND_REVEALED ? rd : NULL;
}

int room_add_round(struct room *r, struct round *rd)
{
    if (r->nrounds == r->caprounds) {
        size_t cap = r->caprounds ? r->caprounds * 2 : 8;
        struct round **v = realloc(r->rounds, cap * sizeof *v);
        if (!v)
            return RF_ENOMEM;
        r->rounds = v;
        r->caprounds = cap;
    }
    r->rounds[r->nrounds++] = rd;
    return 0;
}

size_t room_online(const struct room *r, int role)
{
    if (role == ROLE_OBSERVER)
        return r->observers_online;
    size_t n = 0;
    for (size_t i = 0; i < r->nactors; i++)
        n += r->actors[i]->role == role && r->actors[i]->online > 0;
    return n;
}

bool room_crowded(const struct room *r)
{
    return r->nparts > ROOM_CROWD;
}

struct each_ctx {
    void (*fn)(struct room *r, void *arg);
    void *arg;
};

/* fn may evict the room (a timer's reveal that fails to be recorded does):
 * the walk holds a reference, and map_each allows the entry's deletion. */
static void each_room(void *value, void *arg)
{
    struct each_ctx *c = arg;
    struct room *r = room_ref(value);
    c->fn(r, c->arg);
    room_unref(r);
}

void room_each(struct app *app, void (*fn)(struct room *r, void *arg), void *arg)
{
    struct each_ctx c = {fn, arg};
    map_each(&app->rooms, each_room, &c);
}

/* ---- settings and participants as stored ------------------------------ */

/* Sets the deck from a validated FT_DECK object (NULL: fibonacci). The new
 * deck is built before the old one is freed: on RF_ENOMEM the room keeps its
 * deck. */
int room_set_deck(struct room *r, const msgpack_object *o)
{
    char *name = NULL, **cards = NULL;
    size_t n = 0;
    if (!o || o->type == MSGPACK_OBJECT_STR) {
        if (!(name = o ? codec_strdup(o) : strdup("fibonacci")))
            return RF_ENOMEM;
    } else {
        if (!(cards = calloc(o->via.array.size ? o->via.array.size : 1, sizeof *cards)))
            return RF_ENOMEM;
        for (; n < o->via.array.size; n++) {
            if (!(cards[n] = codec_strdup(&o->via.array.ptr[n]))) {
                while (n > 0)
                    free(cards[--n]);
                free(cards);
                return RF_ENOMEM;
            }
        }
    }
    free_cards(r);
    r->deck_name = name;
    r->cards = cards;
    r->ncards = n;
    return 0;
}

void room_pack_deck(const struct room *r, msgpack_packer *pk)
{
    if (r->deck_name) {
        codec_pack_str(pk, r->deck_name);
        return;
    }
    msgpack_pack_array(pk, r->ncards);
    for (size_t i = 0; i < r->ncards; i++)
        codec_pack_str(pk, r->cards[i]);
}

int room_save_meta(struct app *app, struct room *r)
{
    msgpack_packer *pk = store_packer(app->store);
    msgpack_pack_map(pk, 13 + HEALTH_NSETTINGS);
    codec_pack_kv_str(pk, "epoch", r->epoch_base);
    codec_pack_kv_bool(pk, "reveal_on_timer", r->reveal_on_timer);
    codec_pack_kv_u64(pk, "facilitator_grace", r->facilitator_grace);
    codec_pack_kv_i64(pk, "timer_ends_at", r->timer_ends_at);
    codec_pack_kv_u64(pk, "next_round", r->next_round);
    codec_pack_kv_str(pk, "name", r->name);
    codec_pack_kv_str(pk, "focus", r->focus);
    codec_pack_str(pk, "deck");
    room_pack_deck(r, pk);
    codec_pack_kv_bool(pk, "auto_reveal", r->auto_reveal);
    codec_pack_kv_u64(pk, "next_item", r->next_item);
    codec_pack_str(pk, "tokens");
    msgpack_pack_array(pk, ROLE__COUNT);
    for (int i = 0; i < ROLE__COUNT; i++) {
        msgpack_pack_bin(pk, TOKEN_HASH);
        msgpack_pack_bin_body(pk, r->token_hash[i], TOKEN_HASH);
    }
    codec_pack_str(pk, "product");
    product_save(&r->product, pk);
    codec_pack_str(pk, "map");
    storymap_pack_meta(r->smap, pk);
    health_pack_settings(&r->health, HEALTH_SETTINGS_ALL, pk);
    int rc = store_put_room(app->store, r->id, r->created_at);
    r->records_upto = store_added(app->store);
    return rc;
}

int room_save_participant(struct app *app, struct room *r, const struct participant *p)
{
    msgpack_packer *pk = store_packer(app->store);
    msgpack_pack_map(pk, 3);
    codec_pack_kv_str(pk, "name", p->name);
    codec_pack_kv_str(pk, "role", role_name(p->role));
    codec_pack_str(pk, "secret");
    msgpack_pack_bin(pk, TOKEN_HASH);
    msgpack_pack_bin_body(pk, p->secret_hash, TOKEN_HASH);
    int rc = store_put_participant(app->store, r->id, p->pid);
    r->records_upto = store_added(app->store);
    return rc;
}

struct participant *room_participant(const struct room *r, const char *pid, size_t n)
{
    return map_get(&r->by_pid, pid, n);
}

/* ---- the crowd rule: actors and observer counts (room.h) ---------------- */

/* Where p is, or would go, in the actors array (ordered by ix). */
static size_t actor_slot(const struct room *r, const struct participant *p)
{
    size_t lo = 0, hi = r->nactors;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (r->actors[mid]->ix < p->ix)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* O(1) for a newcomer (it goes last); O(actors) for a role change. Never
 * fails: the array has room for every participant (room_add_participant). */
static void actor_insert(struct room *r, struct participant *p)
{
    size_t k = actor_slot(r, p);
    memmove(&r->actors[k + 1], &r->actors[k], (r->nactors - k) * sizeof *r->actors);
    r->actors[k] = p;
    r->nactors++;
}

static void actor_remove(struct room *r, struct participant *p)
{
    size_t k = actor_slot(r, p);
    if (k == r->nactors || r->actors[k] != p)
        return; /* defensive: not an actor */
    memmove(&r->actors[k], &r->actors[k + 1], (r->nactors - k - 1) * sizeof *r->actors);
    r->nactors--;
}

/* The observer counts changed: in a crowd room, an `observers` notice is due
 * (presence_tick sends it). */
static void observers_touch(struct room *r)
{
    if (room_crowded(r))
        r->observers_dirty = true;
}

/* In a crowd room, the next tick sends an `observers` notice even if the
 * counts are back to what the last one said: it is what tells clients to drop
 * observers from their lists (the room became crowded, or someone listed
 * became an observer). */
void room_observers_force(struct room *r)
{
    if (!room_crowded(r))
        return;
    r->observers_dirty = true;
    r->observers_sent_online = r->observers_sent_total = SIZE_MAX;
}

/* Counts p (fully set up, last in parts, with no connection yet) as an actor
 * or an observer. */
void room_track_participant(struct room *r, struct participant *p)
{
    if (p->role == ROLE_OBSERVER) {
        r->observers++;
        observers_touch(r);
    } else {
        actor_insert(r, p);
    }
}

/* Changes p's role, keeping the actors and the observer counts right. */
void room_set_role(struct room *r, struct participant *p, int role)
{
    bool was = p->role == ROLE_OBSERVER, is = role == ROLE_OBSERVER;
    p->role = role;
    if (was == is)
        return;
    if (is) {
        actor_remove(r, p);
        r->observers++;
        r->observers_online += p->online > 0;
    } else {
        r->observers--;
        r->observers_online -= p->online > 0;
        actor_insert(r, p);
    }
    room_observers_force(r);
}

/* p's first connection opened, or its last one closed. */
void room_observer_presence(struct room *r, const struct participant *p, bool up)
{
    if (p->role != ROLE_OBSERVER)
        return;
    if (up)
        r->observers_online++;
    else
        r->observers_online--;
    observers_touch(r);
}

/* A new, empty participant at the end of parts (the caller sets it up, then
 * room_track_participant()), or NULL when out of memory. */
struct participant *room_add_participant(struct room *r)
{
    if (r->nparts == r->capparts) {
        size_t cap = r->capparts ? r->capparts * 2 : 8;
        /* actors first: its allocation must never be smaller than capparts */
        struct participant **a = realloc(r->actors, cap * sizeof *a);
        if (!a)
            return NULL;
        r->actors = a;
        struct participant **v = realloc(r->parts, cap * sizeof *v);
        if (!v)
            return NULL;
        r->parts = v;
        r->capparts = cap;
    }
    struct participant *p = calloc(1, sizeof *p);
    if (p) {
        p->ix = r->nparts;
        r->parts[r->nparts++] = p;
    }
    return p;
}

/* Undoes room_add_participant() for p, the last one, before room_track_participant(). */
void room_drop_new_participant(struct room *r, struct participant *p)
{
    if (room_participant(r, p->pid, strlen(p->pid)) == p)
        map_del(&r->by_pid, p->pid);
    r->nparts--;
    free(p->name);
    free(p);
}

/* ---- the replay ring and events --------------------------------------- */

/* Keeps f (taken) as the newest event; the ring grows up to ring_cap, then
 * drops the oldest. */
void room_ring_push(struct room *r, struct frame *f)
{
    if (r->ring_count == r->ring_alloc && r->ring_alloc < r->ring_cap) {
        size_t n = r->ring_alloc ? r->ring_alloc * 2 : 8;
        if (n > r->ring_cap)
            n = r->ring_cap;
        struct frame **v = malloc(n * sizeof *v);
        if (v) {
            for (size_t i = 0; i < r->ring_count; i++)
                v[i] = r->ring[(r->ring_head + i) % r->ring_alloc];
            free(r->ring);
            r->ring = v;
            r->ring_alloc = n;
            r->ring_head = 0;
        }
    }
    if (!r->ring_alloc) {
        frame_unref(f);
        return;
    }
    if (r->ring_count == r->ring_alloc) {
        frame_unref(r->ring[r->ring_head]);
        r->ring[r->ring_head] = f;
        r->ring_head = (r->ring_head + 1) % r->ring_alloc;
    } else {
        r->ring[(r->ring_head + r->ring_count) % r->ring_alloc] = f;
        r->ring_count++;
    }
}

void room_evict(struct app *app, const char *id)
{
    struct room *r = map_del(&app->rooms, id);
    if (!r)
        return;
    store_skip_pending(app->store, r->id); /* what the failed change had appended */
    r->dead = true;
    list_each(l, &r->conns) conn_close(conn_of_room(l), CONN_CLOSE_INTERNAL);
    room_unref(r);
}

struct sweep {
    struct app *app;
    int64_t now;
    struct room **idle;
    size_t n, cap;
};

struct unload {
    uv_work_t work;
    struct room *room;
};

static void unload_work(uv_work_t *w)
{
    room_free(((struct unload *)w->data)->room);
}

static void unload_done(uv_work_t *w, int status)
{
    (void)status;
    free(w->data);
}

/* room_unref() for the sweep: a room's last reference frees its frames on
 * the loop and the rest (10,000 items take the loop ~8 ms to free) on a
 * libuv worker: nothing but the room's own memory is left in it. */
static void unref_off_loop(struct app *app, struct room *r)
{
    if (--r->refs > 0)
        return;
    drop_frames(r);
    struct unload *u = malloc(sizeof *u);
    if (u) {
        u->work.data = u;
        u->room = r;
    }
    if (!u || uv_queue_work(app->loop, &u->work, unload_work, unload_done)) {
        free(u);
        room_free(r);
    }
}

static void find_idle(struct room *r, void *arg)
{
    struct sweep *sw = arg;
    if (!list_empty(&r->conns) || !r->idle_since || sw->now - r->idle_since < ROOM_UNLOAD_MS ||
        r->timer_ends_at || r->records_upto > store_durable(sw->app->store) || r->moving)
        return;
    if (sw->n == sw->cap) {
        size_t cap = sw->cap ? sw->cap * 2 : 16;
        struct room **v = realloc(sw->idle, cap * sizeof *v);
        if (!v)
            return;
        sw->idle = v;
        sw->cap = cap;
    }
    sw->idle[sw->n++] = r;
}

void room_sweep(struct app *app, int64_t now)
{
    struct sweep sw = {app, now, NULL, 0, 0};
    room_each(app, find_idle, &sw);
    for (size_t i = 0; i < sw.n; i++) {
        struct room *r = sw.idle[i];
        log_debug("room %s unloaded after %lld s without connections", r->id,
                  (long long)((now - r->idle_since) / 1000));
        map_del(&app->rooms, r->id);
        unref_off_loop(app, r);
    }
    free(sw.idle);
}

static void unref_room(void *value, void *arg)
{
    (void)arg;
    room_unref(value);
}

void room_free_all(struct app *app)
{
    map_each(&app->rooms, unref_room, NULL);
    map_free(&app->rooms);
}

int room_token_role(const struct room *r, const char *token, size_t n)
{
    int role = -1;
    /* Check all four, so the time taken does not tell which matched. */
    for (int i = 0; i < ROLE__COUNT; i++)
        if (token_matches(token, n, r->token_hash[i]))
            role = i;
    return role;
}
