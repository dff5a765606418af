#include "room_ops.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "clock.h"
#include "conn.h"
#include "errors.h"
#include "event.h"
#include "health_ops.h"
#include "hint.h"
#include "log.h"
#include "move.h"
#include "outbox.h"
#include "poker_ops.h"
#include "presence.h"
#include "reply.h"
#include "req.h"
#include "room.h"
#include "room_load.h"
#include "snapshot.h"
#include "token.h"

int room_ops_create(struct req *q)
{
    struct app *app = q->app;
    char tokens[ROLE__COUNT][TOKEN_LEN + 1];
    if (app->room_count >= app->cfg.max_rooms)
        return req_fail(q, RF_ETOO_LARGE,
                        "The server holds %zu rooms, its limit; ask its operator for more.",
                        app->cfg.max_rooms);
    struct room *r = room_new(app);
    if (!r)
        return RF_ENOMEM;
    if (token_new(tokens[0]) || token_new(r->epoch_base))
        goto fail;
    snprintf(r->id, sizeof r->id, "%s.%s", app->instance, tokens[0]); /* its home: here */
    r->epoch_base[8] = '\0'; /* 48 random bits tell epochs apart */
    room_set_epoch(app, r);
    for (int i = 0; i < ROLE__COUNT; i++) {
        if (token_new(tokens[i]))
            goto fail;
        token_hash(tokens[i], TOKEN_LEN, r->token_hash[i]);
    }
    r->name = codec_strdup(codec_get(q->msg, "name"));
    r->created_at = clock_now_ms();
    r->next_item = 1;
    if (!r->name || room_set_deck(r, codec_get(q->msg, "deck")) || map_put(&app->rooms, r->id, r))
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
    room_unref(r); /* its only reference: freed */
    return RF_EINTERNAL;
}

/* A join of room rid that is neither in memory nor in the database: a room
 * whose id names another home lives there (wrong_instance, naming it:
 * nothing is created here); any other is not_found. */
static int join_unknown(struct req *q, const msgpack_object *rid)
{
    char home[INSTANCE_NAME_MAX + 1];
    if (!room_elsewhere(q->app, rid->via.str.ptr, rid->via.str.size, home))
        return req_fail(q, RF_ENOT_FOUND, "There is no room with this id; check the invite link.");
    reply_fields_add(&q->fields, "home", home);
    return req_fail(q, RF_EWRONG_INSTANCE,
                    "Room %.*s lives on instance %s; this is instance %s (connect through the "
                    "balancer).",
                    (int)rid->via.str.size, rid->via.str.ptr, home, q->app->instance);
}

int room_ops_join(struct req *q)
{
    struct app *app = q->app;
    struct conn *c = q->conn;
    const msgpack_object *rid = codec_get(q->msg, "room"), *tok = codec_get(q->msg, "token"),
                         *name = codec_get(q->msg, "name"), *pid = codec_get(q->msg, "pid"),
                         *sec = codec_get(q->msg, "secret");
    uint64_t since = 0;
    int has_since = codec_get_uint(q->msg, "since", &since);

    if (c->room)
        return req_fail(q, RF_ECONFLICT,
                        "This connection has joined a room already; open another connection.");
    if ((pid != NULL) != (sec != NULL))
        return req_fail(q, RF_EBAD_REQUEST, "Send pid and secret together to rejoin.");
    if (!pid && !tok)
        return req_fail(q, RF_EBAD_REQUEST, "Send a token, or pid and secret to rejoin.");
    if (c->bound_room[0] && !codec_str_eq(rid, c->bound_room))
        return req_fail(q, RF_EBAD_REQUEST,
                        "This connection was opened for room %s; open /r/<room>/ws for "
                        "another room.",
                        c->bound_room);
    int moved = move_refuse_join(q, rid);
    if (moved)
        return moved; /* the room moved away: `moved` names where */
    struct room *r = room_find(app, rid->via.str.ptr, rid->via.str.size);
    if (!r && !q->load_err && rid->via.str.size <= ROOM_ID_MAX) {
        q->wait_room = rid; /* loaded off the loop, then this join again */
        return 0;
    }
    if (!r) {
        int err = q->load_err ? q->load_err : RF_ENOT_FOUND;
        if (err == RF_ENOT_FOUND)
            return join_unknown(q, rid);
        return err;
    }

    struct participant *p;
    char secret[TOKEN_LEN + 1];
    int is_new = 0;
    if (pid) {
        p = room_participant(r, pid->via.str.ptr, pid->via.str.size);
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
        if (!(p = room_add_participant(r)))
            return RF_ENOMEM;
        if (token_new(p->pid) || token_new(secret)) {
            room_drop_new_participant(r, p);
            return RF_EINTERNAL;
        }
        if (map_put(&r->by_pid, p->pid, p)) {
            room_drop_new_participant(r, p);
            return RF_ENOMEM;
        }
        token_hash(secret, TOKEN_LEN, p->secret_hash);
        p->role = role;
        is_new = 1;
    }
    if (!p->name || !codec_str_eq(name, p->name)) {
        char *old = p->name, *n = codec_strdup(name);
        p->name = n;
        if (!n || room_save_participant(app, r, p)) {
            p->name = old;
            free(n);
            if (is_new)
                room_drop_new_participant(r, p);
            return RF_ENOMEM;
        }
        free(old);
    }
    if (is_new) {
        room_track_participant(r, p);
        if (r->nparts == ROOM_CROWD + 1)
            room_observers_force(r); /* it has just become crowded */
    }

    c->room = room_ref(r);
    c->part = p;
    r->idle_since = 0;
    list_push(&r->conns, &c->room_link);
    c->join_serial = ++app->join_serial;
    if (p->online++ == 0)
        room_observer_presence(r, p, true);

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
    req_ok_begin(q, &b, &pk, replay ? 11 : reason ? 9 : 8);
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
        snapshot_pack_participants(r, &pk);
        codec_pack_str(&pk, "observers");
        snapshot_pack_observers(r, &pk);
        codec_pack_str(&pk, "health"); /* its notices are not replayed */
        health_pack(&r->health, &pk);
    }
    req_ok_end(q, &b);
    if (replay) {
        for (uint64_t s = since + 1; s <= r->seq; s++) {
            size_t back = (size_t)(r->seq - s); /* 0 for the newest */
            size_t idx = (r->ring_head + r->ring_count - 1 - back) % r->ring_alloc;
            outbox_answer(app, c, r->ring[idx]);
        }
    } else if (snapshot_send(app, r, c)) {
        conn_close(c, CONN_CLOSE_INTERNAL);
        return 0;
    }
    if (p->online == 1 && p->role != ROLE_OBSERVER) {
        presence_notice(app, r, c, "participant.joined", p);
        presence_changed(app, r);
    } else if (p->online == 1 && !room_crowded(r)) {
        presence_notice(app, r, c, "participant.joined",
                        p); /* a crowd room counts observers instead */
    }
    log_debug("participant %s joined room %s as %s", p->pid, r->id, role_name(p->role));
    return 0;
}

int room_ops_role_set(struct req *q)
{
    struct room *r = q->room;
    const msgpack_object *pid = codec_get(q->msg, "pid"), *role = codec_get(q->msg, "role");
    struct participant *p = room_participant(r, pid->via.str.ptr, pid->via.str.size);
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
    room_set_role(r, p, nr);
    if (room_save_participant(q->app, r, p)) {
        room_set_role(r, p, old);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "participant.updated", q->who, unlisted ? 3 : 2);
    codec_pack_kv_str(&ev.pk, "pid", p->pid);
    codec_pack_kv_str(&ev.pk, "role", role_name(nr));
    if (unlisted)
        codec_pack_kv_str(&ev.pk, "name", p->name);
    event_reply(q, &ev);
    if (unlisted && p->online > 0 && !r->dead)
        presence_notice(q->app, r, NULL, "participant.joined", p);
    if (nr == ROLE_OBSERVER && !r->dead)
        hint_drop_participant(q->app, r, p); /* observers do not hint */
    presence_changed(q->app, r);
    return 0;
}

int room_ops_claim(struct req *q)
{
    struct room *r = q->room;
    struct participant *p = q->who;
    if (room_online(r, ROLE_FACILITATOR))
        return req_fail(q, RF_ECONFLICT,
                        "A facilitator is online; ask them to hand facilitation over.");
    int64_t waited = r->no_facilitator_since ? clock_now_ms() - r->no_facilitator_since : 0;
    int64_t grace = (int64_t)r->facilitator_grace * 1000;
    if (waited < grace)
        return req_fail(q, RF_ECONFLICT,
                        "No facilitator has been online for %lld s; you may claim facilitation "
                        "after %lld s.",
                        (long long)(waited / 1000), (long long)(grace / 1000));
    int old = p->role;
    room_set_role(r, p, ROLE_FACILITATOR);
    if (room_save_participant(q->app, r, p)) {
        room_set_role(r, p, old);
        return RF_ENOMEM;
    }
    log_info("room %s: participant %s claimed facilitation", r->id, p->pid);
    struct event ev;
    event_begin(&ev, r, "participant.updated", p, 2);
    codec_pack_kv_str(&ev.pk, "pid", p->pid);
    codec_pack_kv_str(&ev.pk, "role", role_name(ROLE_FACILITATOR));
    event_reply(q, &ev);
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

int room_ops_update(struct req *q)
{
    struct room *r = q->room;
    const msgpack_object *name = codec_get(q->msg, "name"), *deck = codec_get(q->msg, "deck"),
                         *ar = codec_get(q->msg, "auto_reveal"),
                         *rot = codec_get(q->msg, "reveal_on_timer"),
                         *grace = codec_get(q->msg, "facilitator_grace");
    size_t n = (name != NULL) + (deck != NULL) + (ar != NULL) + (rot != NULL) + (grace != NULL);
    for (int i = 0; i < HEALTH_NSETTINGS; i++)
        n += codec_get(q->msg, HEALTH_SETTING_NAMES[i]) != NULL;
    if (!n)
        return req_fail(q, RF_EBAD_REQUEST,
                        "Send at least one of name, deck, auto_reveal, reveal_on_timer, "
                        "facilitator_grace, capacity, size_limit and stale_days.");
    int rc = health_ops_check(q);
    if (rc)
        return rc;
    unsigned health = health_ops_diff(q);
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
    n = (name != NULL) + (deck != NULL) + (ar != NULL) + (rot != NULL) + (grace != NULL) +
        (size_t)__builtin_popcount(health);
    if (!n) {
        req_ok_unchanged(q);
        return 0;
    }
    char *new_name = name ? codec_strdup(name) : NULL;
    if (name && !new_name)
        return RF_ENOMEM;
    if (deck && room_set_deck(r, deck)) {
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
    health_ops_set(q, health);
    if (room_save_meta(q->app, r)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "room.updated", q->who, 1);
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
    health_pack_settings(&r->health, health, &ev.pk);
    event_reply(q, &ev);
    if (ar)
        poker_ops_on_presence(q->app, r); /* turning auto-reveal on may reveal now */
    return 0;
}

int room_ops_token_rotate(struct req *q)
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
    event_begin(&ev, r, "token.rotated", q->who, 1);
    codec_pack_kv_str(&ev.pk, "role", role_name(which));
    uint64_t seq;
    if (event_commit(q->app, &ev, &seq) == 0)
        req_ok_seq_str(q, seq, "token", token);
    return 0;
}
