#include "room.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "conn.h"
#include "dispatch.h"
#include "errors.h"
#include "frame.h"
#include "hint.h"
#include "log.h"
#include "outbox.h"
#include "store.h"

/* The epoch clients see: the room's own, plus the number of restores the
 * database has been through (store.h), so a restore changes every room's. */
static void set_epoch(struct app *app, struct room *r)
{
    uint64_t restores = store_restores(app->store);
    if (restores)
        snprintf(r->epoch, sizeof r->epoch, "%s.%llu", r->epoch_base, (unsigned long long)restores);
    else
        snprintf(r->epoch, sizeof r->epoch, "%s", r->epoch_base);
}

/* ---- lifetime ---------------------------------------------------------- */

static struct room *room_alloc(struct app *app)
{
    struct room *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->refs = 1;
    r->facilitator_grace = 120;
    r->next_round = 1;
    r->no_facilitator_since = now_ms();
    r->idle_since = now_ms();
    r->ring_cap = app->cfg.replay_events;
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

static void room_free(struct room *r)
{
    for (size_t i = 0; i < r->nparts; i++) {
        free(r->parts[i]->name);
        free(r->parts[i]);
    }
    free(r->parts);
    free(r->actors);
    map_free(&r->by_pid);
    for (size_t i = 0; i < r->ring_count; i++)
        frame_unref(r->ring[(r->ring_head + i) % r->ring_alloc]);
    free(r->ring);
    frame_unref(r->snap_items);
    for (size_t i = 0; i < r->nrounds; i++)
        round_free(r->rounds[i]);
    free(r->rounds);
    backlog_free(&r->backlog);
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

struct conn *room_conns(struct room *r)
{
    return r->conns;
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

static void each_room(void *value, void *arg)
{
    struct each_ctx *c = arg;
    c->fn(value, c->arg);
}

void room_each(struct app *app, void (*fn)(struct room *r, void *arg), void *arg)
{
    struct each_ctx c = {fn, arg};
    map_each(&app->rooms, each_room, &c);
}

/* Facilitation watch: when the last online facilitator goes, the grace
 * period before someone else may claim the role starts. Then poker checks
 * whether everyone online has voted. Neither depends on observers (they
 * neither facilitate nor vote), so an observer coming or going does not call
 * it: in a room of thousands of observers a join stays O(1). */
static void presence_changed(struct app *app, struct room *r)
{
    if (room_online(r, ROLE_FACILITATOR))
        r->no_facilitator_since = 0;
    else if (!r->no_facilitator_since)
        r->no_facilitator_since = now_ms();
    if (!app->stopping && !r->dead)
        round_on_presence(app, r);
}

/* ---- settings and participants as stored ------------------------------ */

/* Sets the deck from a validated FT_DECK object. */
static int set_deck(struct room *r, const msgpack_object *o)
{
    free_cards(r);
    if (!o) {
        r->deck_name = strdup("fibonacci");
        return r->deck_name ? 0 : RF_ENOMEM;
    }
    if (o->type == MSGPACK_OBJECT_STR) {
        r->deck_name = codec_strdup(o);
        return r->deck_name ? 0 : RF_ENOMEM;
    }
    r->cards = calloc(o->via.array.size ? o->via.array.size : 1, sizeof *r->cards);
    if (!r->cards)
        return RF_ENOMEM;
    for (uint32_t i = 0; i < o->via.array.size; i++) {
        if (!(r->cards[i] = codec_strdup(&o->via.array.ptr[i])))
            return RF_ENOMEM;
        r->ncards++;
    }
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
    msgpack_pack_map(pk, 11);
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
    int rc = store_put_room(app->store, r->id, r->created_at);
    r->records_upto = store_added(app->store);
    return rc;
}

static int save_participant(struct app *app, struct room *r, const struct participant *p)
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

static struct participant *find_participant(const struct room *r, const char *pid, size_t n)
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
 * fails: the array has room for every participant (add_participant). */
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
 * (room_tick sends it). */
static void observers_touch(struct room *r)
{
    if (room_crowded(r))
        r->observers_dirty = true;
}

/* In a crowd room, the next tick sends an `observers` notice even if the
 * counts are back to what the last one said: it is what tells clients to drop
 * observers from their lists (the room became crowded, or someone listed
 * became an observer). */
static void observers_force(struct room *r)
{
    if (!room_crowded(r))
        return;
    r->observers_dirty = true;
    r->observers_sent_online = r->observers_sent_total = SIZE_MAX;
}

/* Counts p (fully set up, last in parts, with no connection yet) as an actor
 * or an observer. */
static void track_participant(struct room *r, struct participant *p)
{
    if (p->role == ROLE_OBSERVER) {
        r->observers++;
        observers_touch(r);
    } else {
        actor_insert(r, p);
    }
}

/* Changes p's role, keeping the actors and the observer counts right. */
static void set_role(struct room *r, struct participant *p, int role)
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
    observers_force(r);
}

/* p's first connection opened, or its last one closed. */
static void observer_presence(struct room *r, const struct participant *p, bool up)
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
 * track_participant()), or NULL when out of memory. */
static struct participant *add_participant(struct room *r)
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

/* Undoes add_participant() for p, the last one, before track_participant(). */
static void drop_new_participant(struct room *r, struct participant *p)
{
    if (find_participant(r, p->pid, strlen(p->pid)) == p)
        map_del(&r->by_pid, p->pid);
    r->nparts--;
    free(p->name);
    free(p);
}

/* ---- the replay ring and events --------------------------------------- */

/* Keeps f (taken) as the newest event; the ring grows up to ring_cap, then
 * drops the oldest. */
static void ring_push(struct room *r, struct frame *f)
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

void room_event_begin(struct event *ev, struct room *r, const char *type,
                      const struct participant *by, size_t nfields)
{
    ev->room = r;
    ev->type = type;
    ev->by = by ? by->pid : NULL;
    ev->seq = ++r->seq;
    ev->at = now_ms();
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

uint64_t room_event_commit(struct app *app, struct event *ev)
{
    struct room *r = ev->room;
    struct frame *f = frame_from_buf(&ev->buf);
    if (!f ||
        store_add_event(app->store, r->id, ev->seq, ev->at, ev->by, ev->type, f->data, f->len)) {
        /* The in-memory room is now ahead of what can be stored: drop it. */
        log_error("out of memory recording an event of room %s", r->id);
        frame_unref(f);
        room_evict(app, r->id);
        return 0;
    }
    r->records_upto = store_added(app->store);
    ring_push(r, frame_ref(f));
    outbox_to_room(app, r, f, NULL, false);
    frame_unref(f);
    return ev->seq;
}

int room_event_reply(struct req *q, struct event *ev)
{
    uint64_t seq = room_event_commit(q->app, ev);
    if (seq)
        req_ok_seq(q, seq);
    return 0;
}

/* ---- loading ------------------------------------------------------------ */

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
    const msgpack_object *rot = codec_get(&o, "reveal_on_timer");
    r->reveal_on_timer = rot && rot->type == MSGPACK_OBJECT_BOOLEAN && rot->via.boolean;
    const msgpack_object *t = codec_get(&o, "tokens");
    if (!r->name || set_deck(r, codec_get(&o, "deck")) || !t || t->type != MSGPACK_OBJECT_ARRAY ||
        t->via.array.size != ROLE__COUNT)
        goto out;
    for (int i = 0; i < ROLE__COUNT; i++) {
        const msgpack_object *h = &t->via.array.ptr[i];
        if (h->type != MSGPACK_OBJECT_BIN || h->via.bin.size != TOKEN_HASH)
            goto out;
        memcpy(r->token_hash[i], h->via.bin.ptr, TOKEN_HASH);
    }
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
        sec->via.bin.size != TOKEN_HASH || !(p = add_participant(r)))
        goto out;
    strcpy(p->pid, pid);
    p->role = role_parse(role->via.str.ptr, role->via.str.size);
    memcpy(p->secret_hash, sec->via.bin.ptr, TOKEN_HASH);
    p->name = codec_strdup(codec_get(&o, "name"));
    if (!p->name || p->role < 0 || find_participant(r, pid, strlen(pid)) ||
        map_put(&r->by_pid, p->pid, p)) {
        drop_new_participant(r, p);
        goto out;
    }
    track_participant(r, p);
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

static int load_event(void *arg, uint64_t seq, const void *payload, size_t len)
{
    struct room *r = arg;
    (void)seq;
    struct frame *f = frame_copy(payload, len);
    if (!f)
        return RF_ENOMEM;
    ring_push(r, f);
    return 0;
}

/* The room with id[0..n), from memory or else from the store; NULL with *err
 * set when it does not exist or cannot be read. */
struct room *room_find(struct app *app, const char *id, size_t n, int *err)
{
    struct room *r = map_get(&app->rooms, id, n);
    if (r)
        return r;
    if (n > TOKEN_LEN) {
        *err = RF_ENOT_FOUND;
        return NULL;
    }
    if (!(r = room_alloc(app))) {
        *err = RF_ENOMEM;
        return NULL;
    }
    memcpy(r->id, id, n);
    r->id[n] = '\0';
    struct store_room_reader reader = {r,         load_room_row, load_participant,
                                       load_item, load_round,    load_event};
    int rc = store_load_room(app->store, r->id, app->cfg.replay_events, &reader);
    backlog_load_done(&r->backlog);
    if (rc == 0 && r->ring_count > r->seq)
        rc = RF_EINTERNAL;
    set_epoch(app, r);
    if (rc == 0 && (rc = map_put(&app->rooms, r->id, r)) == 0) {
        log_info("room %s loaded: %zu items, %zu participants, seq %llu", r->id, r->backlog.n,
                 r->nparts, (unsigned long long)r->seq);
        return r;
    }
    if (rc != RF_ENOT_FOUND)
        log_error("room %s could not be loaded (%s)", r->id, rf_err_code(rc));
    room_free(r);
    *err = rc;
    return NULL;
}

/* ---- snapshot ------------------------------------------------------------ */

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
static void pack_participants(const struct room *r, msgpack_packer *pk)
{
    bool crowded = room_crowded(r);
    struct participant *const *v = crowded ? r->actors : r->parts;
    size_t n = crowded ? r->nactors : r->nparts;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        pack_participant(v[i], pk);
}

static void pack_observers(const struct room *r, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 2);
    codec_pack_kv_u64(pk, "online", r->observers_online);
    codec_pack_kv_u64(pk, "total", r->observers);
}

static void pack_settings(const struct room *r, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 8);
    codec_pack_kv_str(pk, "id", r->id);
    codec_pack_kv_str(pk, "epoch", r->epoch);
    codec_pack_kv_str(pk, "name", r->name);
    codec_pack_str(pk, "deck");
    room_pack_deck(r, pk);
    codec_pack_kv_bool(pk, "auto_reveal", r->auto_reveal);
    codec_pack_kv_bool(pk, "reveal_on_timer", r->reveal_on_timer);
    codec_pack_kv_u64(pk, "facilitator_grace", r->facilitator_grace);
    codec_pack_kv_i64(pk, "created_at", r->created_at);
}

/* Packs the snapshot's last two entries, the `items` array's value, then
 * `rounds` and its array: what snapshot_head() leaves out when shared. */
static void pack_items_tail(const struct room *r, msgpack_packer *pk)
{
    msgpack_pack_array(pk, r->backlog.n);
    for (size_t i = 0; i < r->backlog.n; i++)
        item_pack(r->backlog.v[i], pk);
    codec_pack_str(pk, "rounds");
    msgpack_pack_array(pk, r->nrounds);
    for (size_t i = 0; i < r->nrounds; i++)
        round_pack(r->rounds[i], pk);
}

static void pack_items_and_rounds(const struct room *r, msgpack_packer *pk)
{
    codec_pack_str(pk, "items");
    pack_items_tail(r, pk);
}

void room_pack_export(const struct room *r, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 7);
    codec_pack_kv_u64(pk, "format", 1);
    codec_pack_kv_i64(pk, "exported_at", now_ms());
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
    pack_items_and_rounds(r, pk);
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
    msgpack_pack_map(&pk, 10);
    codec_pack_kv_str(&pk, "t", "snapshot");
    codec_pack_kv_u64(&pk, "seq", r->seq);
    codec_pack_str(&pk, "room");
    pack_settings(r, &pk);
    codec_pack_str(&pk, "participants");
    pack_participants(r, &pk);
    codec_pack_str(&pk, "observers");
    pack_observers(r, &pk);
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
static int send_snapshot(struct app *app, struct room *r, struct conn *c)
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

/* ---- presence -------------------------------------------------------------- */

void room_notice_begin(struct codec_buf *b, msgpack_packer *pk, const char *type, int64_t at,
                       size_t nfields)
{
    codec_buf_init(b, FRAME_HEAD);
    codec_packer_init(pk, b);
    msgpack_pack_map(pk, 2 + nfields);
    codec_pack_kv_str(pk, "t", type);
    codec_pack_kv_i64(pk, "at", at);
}

void room_notice_end(struct app *app, struct room *r, struct conn *except, struct codec_buf *b,
                     bool actors_only)
{
    struct frame *f = frame_from_buf(b);
    if (f)
        outbox_to_room(app, r, f, except, actors_only);
    frame_unref(f);
}

/* participant.joined / participant.left about p. */
static void notice(struct app *app, struct room *r, struct conn *except, const char *type,
                   const struct participant *p)
{
    struct codec_buf b;
    msgpack_packer pk;
    int joined = strcmp(type, "participant.joined") == 0;
    room_notice_begin(&b, &pk, type, now_ms(), joined ? 3 : 1);
    codec_pack_kv_str(&pk, "pid", p->pid);
    if (joined) {
        codec_pack_kv_str(&pk, "name", p->name);
        codec_pack_kv_str(&pk, "role", role_name(p->role));
    }
    room_notice_end(app, r, except, &b, false);
}

void room_tick(struct app *app, struct room *r, int64_t now)
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
    if (!r->conns)
        return; /* nobody to tell: a later joiner gets the counts in its snapshot */
    struct codec_buf b;
    msgpack_packer pk;
    room_notice_begin(&b, &pk, "observers", now, 2);
    codec_pack_kv_u64(&pk, "online", r->observers_online);
    codec_pack_kv_u64(&pk, "total", r->observers);
    room_notice_end(app, r, NULL, &b, false);
}

void room_leave(struct conn *c)
{
    struct room *r = c->room;
    struct participant *p = c->part;
    hint_leave(c, r->dead || c->app->stopping);
    if (c->room_prev)
        c->room_prev->room_next = c->room_next;
    else
        r->conns = c->room_next;
    if (c->room_next)
        c->room_next->room_prev = c->room_prev;
    c->room_prev = c->room_next = NULL;
    c->room = NULL;
    c->part = NULL;
    if (!r->conns)
        r->idle_since = now_ms();
    if (--p->online == 0) {
        observer_presence(r, p, false);
        if (!r->dead && !c->app->stopping && p->role != ROLE_OBSERVER) {
            notice(c->app, r, NULL, "participant.left", p);
            presence_changed(c->app, r);
        } else if (!r->dead && !c->app->stopping && !room_crowded(r)) {
            notice(c->app, r, NULL, "participant.left", p);
        }
    }
    room_unref(r);
}

void room_evict(struct app *app, const char *id)
{
    struct room *r = map_del(&app->rooms, id);
    if (!r)
        return;
    r->dead = true;
    for (struct conn *c = r->conns; c; c = c->room_next)
        conn_close(c, CLOSE_INTERNAL);
    room_unref(r);
}

struct sweep {
    struct app *app;
    int64_t now;
    struct room **idle;
    size_t n, cap;
};

static void find_idle(struct room *r, void *arg)
{
    struct sweep *sw = arg;
    if (r->conns || !r->idle_since || sw->now - r->idle_since < ROOM_UNLOAD_MS ||
        r->timer_ends_at || r->records_upto > store_durable(sw->app->store))
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
        room_unref(r);
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

/* ---- handlers ---------------------------------------------------------- */

int room_handle_create(struct req *q)
{
    struct app *app = q->app;
    char tokens[ROLE__COUNT][TOKEN_LEN + 1];
    if (app->room_count >= app->cfg.max_rooms)
        return req_fail(q, RF_ETOO_LARGE,
                        "The server holds %zu rooms, its limit; ask its operator for more.",
                        app->cfg.max_rooms);
    struct room *r = room_alloc(app);
    if (!r)
        return RF_ENOMEM;
    if (token_new(r->id) || token_new(r->epoch_base))
        goto fail;
    r->epoch_base[8] = '\0'; /* 48 random bits tell epochs apart */
    set_epoch(app, r);
    for (int i = 0; i < ROLE__COUNT; i++) {
        if (token_new(tokens[i]))
            goto fail;
        token_hash(tokens[i], TOKEN_LEN, r->token_hash[i]);
    }
    r->name = codec_strdup(codec_get(q->msg, "name"));
    r->created_at = now_ms();
    r->next_item = 1;
    if (!r->name || set_deck(r, codec_get(q->msg, "deck")) || map_put(&app->rooms, r->id, r))
        goto fail;
    if (room_save_meta(app, r)) {
        map_del(&app->rooms, r->id);
        goto fail;
    }
    app->room_count++;
    q->room = r; /* what the ok depends on */
    log_info("room %s created", r->id);

    struct codec_buf b;
    msgpack_packer pk;
    req_ok_begin(q, &b, &pk, 2);
    codec_pack_kv_str(&pk, "room", r->id);
    codec_pack_str(&pk, "tokens");
    msgpack_pack_map(&pk, ROLE__COUNT);
    for (int i = 0; i < ROLE__COUNT; i++)
        codec_pack_kv_str(&pk, role_name(i), tokens[i]);
    req_ok_end(q, &b);
    return 0;
fail:
    room_free(r);
    return RF_EINTERNAL;
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

int room_handle_join(struct req *q)
{
    struct app *app = q->app;
    struct conn *c = q->conn;
    const msgpack_object *rid = codec_get(q->msg, "room"), *tok = codec_get(q->msg, "token"),
                         *name = codec_get(q->msg, "name"), *pid = codec_get(q->msg, "pid"),
                         *sec = codec_get(q->msg, "secret");
    uint64_t since = 0;
    int has_since = codec_get_uint(q->msg, "since", &since);
    int err = 0;

    if (c->room)
        return req_fail(q, RF_ECONFLICT,
                        "This connection has joined a room already; open another connection.");
    if ((pid != NULL) != (sec != NULL))
        return req_fail(q, RF_EBAD_REQUEST, "Send pid and secret together to rejoin.");
    if (!pid && !tok)
        return req_fail(q, RF_EBAD_REQUEST, "Send a token, or pid and secret to rejoin.");
    struct room *r = room_find(app, rid->via.str.ptr, rid->via.str.size, &err);
    if (!r) {
        if (err == RF_ENOT_FOUND)
            return req_fail(q, err, "There is no room with this id; check the invite link.");
        return err;
    }

    struct participant *p;
    char secret[TOKEN_LEN + 1];
    int is_new = 0;
    if (pid) {
        p = find_participant(r, pid->via.str.ptr, pid->via.str.size);
        if (!p || !token_matches(sec->via.str.ptr, sec->via.str.size, p->secret_hash))
            return req_fail(q, RF_EAUTH_FAILED,
                            "This participant id and secret do not match the room; join with "
                            "a token instead.");
        snprintf(secret, sizeof secret, "%.*s", (int)sec->via.str.size, sec->via.str.ptr);
    } else {
        int role = room_token_role(r, tok->via.str.ptr, tok->via.str.size);
        if (role < 0)
            return req_fail(q, RF_EAUTH_FAILED,
                            "This token does not open the room; ask the facilitator for a "
                            "new invite link.");
        if (r->nparts >= app->cfg.max_participants)
            return req_fail(q, RF_EROOM_FULL,
                            "The room has %zu participants, its limit; ask the facilitator.",
                            r->nparts);
        if (!(p = add_participant(r)))
            return RF_ENOMEM;
        if (token_new(p->pid) || token_new(secret)) {
            drop_new_participant(r, p);
            return RF_EINTERNAL;
        }
        if (map_put(&r->by_pid, p->pid, p)) {
            drop_new_participant(r, p);
            return RF_ENOMEM;
        }
        token_hash(secret, TOKEN_LEN, p->secret_hash);
        p->role = role;
        is_new = 1;
    }
    if (!p->name || !codec_str_eq(name, p->name)) {
        char *old = p->name, *n = codec_strdup(name);
        p->name = n;
        if (!n || save_participant(app, r, p)) {
            p->name = old;
            free(n);
            if (is_new)
                drop_new_participant(r, p);
            return RF_ENOMEM;
        }
        free(old);
    }
    if (is_new) {
        track_participant(r, p);
        if (r->nparts == ROOM_CROWD + 1)
            observers_force(r); /* it has just become crowded */
    }

    c->room = room_ref(r);
    c->part = p;
    r->idle_since = 0;
    c->room_next = r->conns;
    if (r->conns)
        r->conns->room_prev = c;
    r->conns = c;
    c->join_serial = ++app->join_serial;
    if (p->online++ == 0)
        observer_presence(r, p, true);

    /* Replay when the client's history is this room's (same epoch) and the
     * events after it are still held; otherwise a snapshot, and why. */
    const msgpack_object *epoch = codec_get(q->msg, "epoch");
    const char *reason = NULL;
    if (has_since) {
        if (epoch && !codec_str_eq(epoch, r->epoch))
            reason = "epoch";
        else if (since > r->seq)
            reason = "ahead";
        else if (r->seq - since > r->ring_count)
            reason = "too_old";
    }
    int replay = has_since && !reason;
    struct codec_buf b;
    msgpack_packer pk;
    req_ok_begin(q, &b, &pk, replay ? 10 : reason ? 9 : 8);
    codec_pack_kv_str(&pk, "pid", p->pid);
    codec_pack_kv_str(&pk, "secret", secret);
    codec_pack_kv_str(&pk, "role", role_name(p->role));
    codec_pack_kv_str(&pk, "name", p->name);
    codec_pack_kv_u64(&pk, "seq", r->seq);
    codec_pack_kv_str(&pk, "mode", replay ? "replay" : "snapshot");
    codec_pack_kv_str(&pk, "epoch", r->epoch);
    if (reason)
        codec_pack_kv_str(&pk, "reason", reason);
    codec_pack_str(&pk, "hints");
    hint_pack_room(r, c, &pk);
    if (replay) {
        codec_pack_str(&pk, "participants");
        pack_participants(r, &pk);
        codec_pack_str(&pk, "observers");
        pack_observers(r, &pk);
    }
    req_ok_end(q, &b);
    if (replay) {
        for (uint64_t s = since + 1; s <= r->seq; s++) {
            size_t back = (size_t)(r->seq - s); /* 0 for the newest */
            size_t idx = (r->ring_head + r->ring_count - 1 - back) % r->ring_alloc;
            outbox_answer(app, c, r->ring[idx]);
        }
    } else if (send_snapshot(app, r, c)) {
        conn_close(c, CLOSE_INTERNAL);
        return 0;
    }
    if (p->online == 1 && p->role != ROLE_OBSERVER) {
        notice(app, r, c, "participant.joined", p);
        presence_changed(app, r);
    } else if (p->online == 1 && !room_crowded(r)) {
        notice(app, r, c, "participant.joined", p); /* a crowd room counts observers instead */
    }
    log_debug("participant %s joined room %s as %s", p->pid, r->id, role_name(p->role));
    return 0;
}

int room_handle_role_set(struct req *q)
{
    struct room *r = q->room;
    const msgpack_object *pid = codec_get(q->msg, "pid"), *role = codec_get(q->msg, "role");
    struct participant *p = find_participant(r, pid->via.str.ptr, pid->via.str.size);
    if (!p)
        return req_fail(q, RF_ENOT_FOUND, "There is no participant with this id in the room.");
    int nr = role_parse(role->via.str.ptr, role->via.str.size);
    if (nr == p->role) { /* the role it has: nothing changes */
        req_ok_unchanged(q);
        return 0;
    }
    if (p->role == ROLE_FACILITATOR && nr != ROLE_FACILITATOR) {
        size_t facilitators = 0;
        for (size_t i = 0; i < r->nactors; i++)
            facilitators += r->actors[i]->role == ROLE_FACILITATOR;
        if (facilitators == 1)
            return req_fail(q, RF_ECONFLICT,
                            "A room keeps at least one facilitator; make someone else "
                            "facilitator first.");
    }
    int old = p->role;
    /* An observer of a crowd room is in nobody's list: when it gets another
     * role, the event carries its name and, if it is online, a
     * participant.joined notice follows, so everyone can show it. */
    bool unlisted = old == ROLE_OBSERVER && nr != ROLE_OBSERVER && room_crowded(r);
    set_role(r, p, nr);
    if (save_participant(q->app, r, p)) {
        set_role(r, p, old);
        return RF_ENOMEM;
    }
    struct event ev;
    room_event_begin(&ev, r, "participant.updated", q->who, unlisted ? 3 : 2);
    codec_pack_kv_str(&ev.pk, "pid", p->pid);
    codec_pack_kv_str(&ev.pk, "role", role_name(nr));
    if (unlisted)
        codec_pack_kv_str(&ev.pk, "name", p->name);
    room_event_reply(q, &ev);
    if (unlisted && p->online > 0 && !r->dead)
        notice(q->app, r, NULL, "participant.joined", p);
    if (nr == ROLE_OBSERVER && !r->dead)
        hint_drop_participant(q->app, r, p); /* observers do not hint */
    presence_changed(q->app, r);
    return 0;
}

int room_handle_claim(struct req *q)
{
    struct room *r = q->room;
    struct participant *p = q->who;
    if (room_online(r, ROLE_FACILITATOR))
        return req_fail(q, RF_ECONFLICT,
                        "A facilitator is online; ask them to hand facilitation over.");
    int64_t waited = r->no_facilitator_since ? now_ms() - r->no_facilitator_since : 0;
    int64_t grace = (int64_t)r->facilitator_grace * 1000;
    if (waited < grace)
        return req_fail(q, RF_ECONFLICT,
                        "No facilitator has been online for %lld s; you may claim facilitation "
                        "after %lld s.",
                        (long long)(waited / 1000), (long long)(grace / 1000));
    int old = p->role;
    set_role(r, p, ROLE_FACILITATOR);
    if (save_participant(q->app, r, p)) {
        set_role(r, p, old);
        return RF_ENOMEM;
    }
    log_info("room %s: participant %s claimed facilitation", r->id, p->pid);
    struct event ev;
    room_event_begin(&ev, r, "participant.updated", p, 2);
    codec_pack_kv_str(&ev.pk, "pid", p->pid);
    codec_pack_kv_str(&ev.pk, "role", role_name(ROLE_FACILITATOR));
    room_event_reply(q, &ev);
    presence_changed(q->app, r);
    return 0;
}

/* Whether deck (a name or a list of cards) is the room's deck as it is. */
static bool deck_is(const struct room *r, const msgpack_object *deck)
{
    if (deck->type == MSGPACK_OBJECT_STR)
        return r->deck_name && codec_str_eq(deck, r->deck_name);
    if (r->deck_name || deck->via.array.size != r->ncards)
        return false;
    for (size_t i = 0; i < r->ncards; i++)
        if (!codec_str_eq(&deck->via.array.ptr[i], r->cards[i]))
            return false;
    return true;
}

int room_handle_update(struct req *q)
{
    struct room *r = q->room;
    const msgpack_object *name = codec_get(q->msg, "name"), *deck = codec_get(q->msg, "deck"),
                         *ar = codec_get(q->msg, "auto_reveal"),
                         *rot = codec_get(q->msg, "reveal_on_timer"),
                         *grace = codec_get(q->msg, "facilitator_grace");
    size_t n = (name != NULL) + (deck != NULL) + (ar != NULL) + (rot != NULL) + (grace != NULL);
    if (!n)
        return req_fail(q, RF_EBAD_REQUEST,
                        "Send at least one of name, deck, auto_reveal, reveal_on_timer and "
                        "facilitator_grace.");
    /* Only the fields that change are set, stored and in the event. */
    if (name && codec_str_eq(name, r->name))
        name = NULL;
    if (deck && deck_is(r, deck))
        deck = NULL;
    if (ar && ar->via.boolean == r->auto_reveal)
        ar = NULL;
    if (rot && rot->via.boolean == r->reveal_on_timer)
        rot = NULL;
    if (grace && grace->via.u64 == r->facilitator_grace)
        grace = NULL;
    n = (name != NULL) + (deck != NULL) + (ar != NULL) + (rot != NULL) + (grace != NULL);
    if (!n) {
        req_ok_unchanged(q);
        return 0;
    }
    char *new_name = name ? codec_strdup(name) : NULL;
    if (name && !new_name)
        return RF_ENOMEM;
    if (deck && set_deck(r, deck)) {
        free(new_name);
        return RF_ENOMEM;
    }
    if (new_name) {
        free(r->name);
        r->name = new_name;
    }
    if (ar)
        r->auto_reveal = ar->via.boolean;
    if (rot)
        r->reveal_on_timer = rot->via.boolean;
    if (grace)
        r->facilitator_grace = (uint32_t)grace->via.u64;
    if (room_save_meta(q->app, r)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    room_event_begin(&ev, r, "room.updated", q->who, 1);
    codec_pack_str(&ev.pk, "set");
    msgpack_pack_map(&ev.pk, n);
    if (name)
        codec_pack_kv_str(&ev.pk, "name", r->name);
    if (deck) {
        codec_pack_str(&ev.pk, "deck");
        room_pack_deck(r, &ev.pk);
    }
    if (ar)
        codec_pack_kv_bool(&ev.pk, "auto_reveal", r->auto_reveal);
    if (rot)
        codec_pack_kv_bool(&ev.pk, "reveal_on_timer", r->reveal_on_timer);
    if (grace)
        codec_pack_kv_u64(&ev.pk, "facilitator_grace", r->facilitator_grace);
    room_event_reply(q, &ev);
    if (ar)
        round_on_presence(q->app, r); /* turning auto-reveal on may reveal now */
    return 0;
}

int room_handle_token_rotate(struct req *q)
{
    struct room *r = q->room;
    const msgpack_object *role = codec_get(q->msg, "role");
    int which = role_parse(role->via.str.ptr, role->via.str.size);
    char token[TOKEN_LEN + 1];
    uint8_t old[TOKEN_HASH];
    if (token_new(token))
        return RF_EINTERNAL;
    memcpy(old, r->token_hash[which], TOKEN_HASH);
    token_hash(token, TOKEN_LEN, r->token_hash[which]);
    if (room_save_meta(q->app, r)) {
        memcpy(r->token_hash[which], old, TOKEN_HASH);
        return RF_ENOMEM;
    }
    log_info("room %s: the %s token was rotated", r->id, role_name(which));
    /* Everyone learns that it changed; only the facilitator's reply holds it. */
    struct event ev;
    room_event_begin(&ev, r, "token.rotated", q->who, 1);
    codec_pack_kv_str(&ev.pk, "role", role_name(which));
    uint64_t seq = room_event_commit(q->app, &ev);
    if (seq) {
        struct codec_buf b;
        msgpack_packer pk;
        req_ok_begin(q, &b, &pk, 2);
        codec_pack_kv_u64(&pk, "seq", seq);
        codec_pack_kv_str(&pk, "token", token);
        req_ok_end(q, &b);
    }
    return 0;
}
