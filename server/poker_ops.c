#include "poker_ops.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "clock.h"
#include "codec.h"
#include "errors.h"
#include "event.h"
#include "item_ops.h"
#include "log.h"
#include "req.h"
#include "room.h"
#include "round.h"
#include "stats.h"

static const char *const CONFIDENCE_NAMES[] = {"low", "medium", "high"};

static struct round *find_round(struct req *q)
{
    const msgpack_object *id = codec_get(q->msg, "round");
    struct room *r = q->room;
    for (size_t i = r->nrounds; i-- > 0;)
        if (codec_str_eq(id, r->rounds[i]->id))
            return r->rounds[i];
    req_fail(q, RF_ENOT_FOUND, "There is no round '%.*s' in this room.", (int)id->via.str.size,
             id->via.str.ptr);
    return NULL;
}

/* Reveals rd: computes the stats, persists, broadcasts. by may be NULL (the
 * server: auto-reveal or the timer); the event's seq goes into *seq (may be
 * NULL). Returns 0 or RF_ENOMEM (before any change, or with the room evicted). */
static int reveal(struct app *app, struct room *r, struct round *rd, const struct participant *by,
                  uint64_t *seq)
{
    /* Voters who did not vote: those the round started with, and anyone who
     * may vote and is online now. */
    const char **missing = calloc(rd->nvoters + r->nactors + 1, sizeof *missing);
    struct stats_vote *sv = calloc(rd->nvotes + 1, sizeof *sv);
    size_t nmissing = 0;
    if (!missing || !sv) {
        free(missing);
        free(sv);
        return RF_ENOMEM;
    }
    for (size_t i = 0; i < rd->nvoters; i++)
        if (!round_find_vote(rd, rd->voters[i]))
            missing[nmissing++] = rd->voters[i];
    for (size_t i = 0; i < r->nactors; i++) { /* the room's participants but observers */
        const struct participant *p = r->actors[i];
        if (!p->online || round_find_vote(rd, p->pid))
            continue;
        size_t k = 0;
        while (k < nmissing && strcmp(missing[k], p->pid) != 0)
            k++;
        if (k == nmissing)
            missing[nmissing++] = p->pid;
    }
    for (size_t i = 0; i < rd->nvotes; i++)
        sv[i] = (struct stats_vote){rd->votes[i].pid, rd->votes[i].card, rd->votes[i].confidence};

    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    stats_pack(&pk, (const char *const *)rd->cards, rd->ncards, sv, rd->nvotes, missing, nmissing,
               rd->anonymous);
    free(missing);
    free(sv);
    size_t len;
    char *stats = codec_buf_take(&b, &len);
    if (!stats)
        return RF_ENOMEM;
    rd->stats = stats;
    rd->stats_len = len;
    rd->state = ROUND_REVEALED;
    rd->revealed_at = clock_now_ms();
    if (round_save(app->store, r->id, rd)) {
        room_evict(app, r->id);
        return RF_ENOMEM;
    }
    log_info("room %s: round %s revealed with %zu votes", r->id, rd->id, rd->nvotes);
    struct event ev;
    event_begin(&ev, r, "round.revealed", by, 3);
    codec_pack_kv_str(&ev.pk, "round", rd->id);
    codec_pack_str(&ev.pk, "votes");
    if (rd->anonymous) {
        msgpack_pack_nil(&ev.pk);
    } else {
        msgpack_pack_map(&ev.pk, rd->nvotes);
        for (size_t i = 0; i < rd->nvotes; i++)
            codec_pack_kv_str(&ev.pk, rd->votes[i].pid, rd->votes[i].card);
    }
    codec_pack_str(&ev.pk, "stats");
    round_pack_stats(rd, &ev.pk);
    return event_commit(app, &ev, seq);
}

/* Auto-reveal: the room wants it, a round is open, and every participant
 * who may vote and is online has voted. */
static void maybe_auto_reveal(struct app *app, struct room *r)
{
    struct round *rd = room_current_round(r);
    if (!r->auto_reveal || !rd || rd->state != ROUND_VOTING)
        return;
    size_t online_voters = 0;
    for (size_t i = 0; i < r->nactors; i++) { /* the room's participants but observers */
        const struct participant *p = r->actors[i];
        if (!p->online)
            continue;
        if (!round_find_vote(rd, p->pid))
            return;
        online_voters++;
    }
    if (online_voters)
        reveal(app, r, rd, NULL, NULL);
}

/* The `timer` event about r->timer_ends_at (set, stopped or expired): saves
 * the room's settings first. Returns 0 or RF_ENOMEM (the room evicted). */
static int timer_event(struct app *app, struct room *r, const struct participant *by, bool expired,
                       uint64_t *seq)
{
    if (room_save_meta(app, r)) {
        room_evict(app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "timer", by, expired ? 2 : 1);
    codec_pack_str(&ev.pk, "ends_at");
    if (r->timer_ends_at)
        msgpack_pack_int64(&ev.pk, r->timer_ends_at);
    else
        msgpack_pack_nil(&ev.pk);
    if (expired)
        codec_pack_kv_bool(&ev.pk, "expired", true);
    return event_commit(app, &ev, seq);
}

void poker_ops_on_tick(struct app *app, struct room *r, int64_t now)
{
    if (!r->timer_ends_at || now < r->timer_ends_at)
        return;
    r->timer_ends_at = 0;
    if (timer_event(app, r, NULL, true, NULL))
        return;
    struct round *rd = room_current_round(r);
    if (r->reveal_on_timer && rd && rd->state == ROUND_VOTING && reveal(app, r, rd, NULL, NULL) &&
        !r->dead)
        room_evict(app, r->id); /* the timer's end without its reveal: neither is kept, and
                                   the next load of the room runs out the timer again */
}

void poker_ops_on_presence(struct app *app, struct room *r)
{
    maybe_auto_reveal(app, r);
}

/* The cards of a validated FT_DECK object, or of the room's deck. */
static int copy_deck(const struct room *r, const msgpack_object *deck, char ***cards, size_t *n)
{
    const char *const *builtin = NULL;
    size_t count = 0;
    if (deck && deck->type == MSGPACK_OBJECT_STR)
        builtin = deck_builtin(deck->via.str.ptr, deck->via.str.size);
    else if (!deck && r->deck_name)
        builtin = deck_builtin(r->deck_name, strlen(r->deck_name));
    if (builtin)
        while (builtin[count])
            count++;
    else
        count = deck ? deck->via.array.size : r->ncards;
    *cards = calloc(count ? count : 1, sizeof **cards);
    *n = 0;
    if (!*cards)
        return RF_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        char *c = builtin ? strdup(builtin[i])
                  : deck  ? codec_strdup(&deck->via.array.ptr[i])
                          : strdup(r->cards[i]);
        if (!c)
            return RF_ENOMEM;
        (*cards)[(*n)++] = c;
    }
    return 0;
}

int poker_ops_start(struct req *q)
{
    struct room *r = q->room;
    const msgpack_object *item = codec_get(q->msg, "item"), *anon = codec_get(q->msg, "anonymous");
    uint64_t deadline = 0;
    codec_get_uint(q->msg, "deadline", &deadline);
    struct item *it = backlog_get(&r->backlog, item->via.str.ptr, item->via.str.size);
    if (!it)
        return req_fail(q, RF_ENOT_FOUND, "There is no item '%.*s' to estimate.",
                        (int)item->via.str.size, item->via.str.ptr);
    struct round *cur = room_current_round(r);
    if (cur && cur->state == ROUND_VOTING)
        return req_fail(q, RF_ECONFLICT,
                        "Round %s is still open; reveal or cancel it before starting another.",
                        cur->id);
    int64_t now = clock_now_ms();
    if (deadline && (int64_t)deadline <= now)
        return req_fail(q, RF_EBAD_REQUEST, "The deadline has passed; give a future time in ms.");

    struct round *rd = calloc(1, sizeof *rd);
    if (!rd)
        return RF_ENOMEM;
    snprintf(rd->id, sizeof rd->id, "r%llu", (unsigned long long)r->next_round);
    snprintf(rd->item, sizeof rd->item, "%s", it->id);
    rd->state = ROUND_VOTING;
    rd->anonymous = anon && anon->via.boolean;
    rd->deadline = (int64_t)deadline;
    rd->started_at = now;
    rd->voters = calloc(r->nactors + 1, sizeof *rd->voters);
    int rc =
        rd->voters ? copy_deck(r, codec_get(q->msg, "deck"), &rd->cards, &rd->ncards) : RF_ENOMEM;
    /* Who can vote: everyone but observers (the actors); online now, or
     * anyone for an asynchronous round. */
    for (size_t i = 0; i < r->nactors && !rc; i++) {
        const struct participant *p = r->actors[i];
        if (!p->online && !deadline)
            continue;
        if (!(rd->voters[rd->nvoters] = strdup(p->pid)))
            rc = RF_ENOMEM;
        else
            rd->nvoters++;
    }
    if (rc || (rc = room_add_round(r, rd))) {
        round_free(rd);
        return rc;
    }
    r->next_round++;
    if (round_save(q->app->store, r->id, rd) || room_save_meta(q->app, r)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "round.started", q->who, 6);
    codec_pack_kv_str(&ev.pk, "round", rd->id);
    codec_pack_kv_str(&ev.pk, "item", rd->item);
    codec_pack_str(&ev.pk, "deck");
    msgpack_pack_array(&ev.pk, rd->ncards);
    for (size_t i = 0; i < rd->ncards; i++)
        codec_pack_str(&ev.pk, rd->cards[i]);
    codec_pack_str(&ev.pk, "voters");
    msgpack_pack_array(&ev.pk, rd->nvoters);
    for (size_t i = 0; i < rd->nvoters; i++)
        codec_pack_str(&ev.pk, rd->voters[i]);
    codec_pack_kv_bool(&ev.pk, "anonymous", rd->anonymous);
    codec_pack_str(&ev.pk, "deadline");
    if (rd->deadline)
        msgpack_pack_int64(&ev.pk, rd->deadline);
    else
        msgpack_pack_nil(&ev.pk);
    event_reply(q, &ev);
    return 0;
}

int poker_ops_vote(struct req *q)
{
    struct room *r = q->room;
    struct round *rd = find_round(q);
    const msgpack_object *card = codec_get(q->msg, "card"), *conf = codec_get(q->msg, "confidence");
    if (!rd)
        return RF_ENOT_FOUND;
    if (rd->state != ROUND_VOTING)
        return req_fail(q, RF_ECONFLICT, "Round %s is %s; votes are closed.", rd->id,
                        round_state_name(rd->state));
    if (rd->deadline && clock_now_ms() > rd->deadline)
        return req_fail(q, RF_ECONFLICT, "The deadline of round %s has passed; votes are closed.",
                        rd->id);
    struct vote *v = round_find_vote(rd, q->who->pid);
    if (card->type == MSGPACK_OBJECT_NIL) {
        if (!v) { /* withdrawing a vote never cast changes nothing */
            req_ok_unchanged(q);
            return 0;
        }
        free(v->card);
        *v = rd->votes[--rd->nvotes];
    } else {
        char *c = codec_strdup(card);
        if (!c)
            return RF_ENOMEM;
        if (!stats_card_in_deck((const char *const *)rd->cards, rd->ncards, c)) {
            free(c);
            return req_fail(q, RF_EBAD_REQUEST,
                            "That card is not in this round's deck; pick one of its cards.");
        }
        int confidence = -1;
        for (int i = 0; conf && i < 3; i++)
            if (codec_str_eq(conf, CONFIDENCE_NAMES[i]))
                confidence = i;
        if (v && strcmp(v->card, c) == 0 && v->confidence == confidence) {
            free(c); /* the same vote again */
            req_ok_unchanged(q);
            return 0;
        }
        if (!v) {
            if (rd->nvotes == rd->capvotes) {
                size_t cap = rd->capvotes ? rd->capvotes * 2 : 8;
                struct vote *nv = realloc(rd->votes, cap * sizeof *nv);
                if (!nv) {
                    free(c);
                    return RF_ENOMEM;
                }
                rd->votes = nv;
                rd->capvotes = cap;
            }
            v = &rd->votes[rd->nvotes++];
            memset(v, 0, sizeof *v);
            snprintf(v->pid, sizeof v->pid, "%s", q->who->pid);
        }
        free(v->card);
        v->card = c;
        v->confidence = confidence;
    }
    if (round_save(q->app->store, r->id, rd)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "voted", q->who, 3);
    codec_pack_kv_str(&ev.pk, "round", rd->id);
    codec_pack_kv_str(&ev.pk, "pid", q->who->pid);
    codec_pack_kv_bool(&ev.pk, "has", card->type != MSGPACK_OBJECT_NIL);
    event_reply(q, &ev);
    maybe_auto_reveal(q->app, r);
    return 0;
}

int poker_ops_reveal(struct req *q)
{
    struct round *rd = find_round(q);
    if (!rd)
        return RF_ENOT_FOUND;
    if (rd->state != ROUND_VOTING)
        return req_fail(q, RF_ECONFLICT, "Round %s is %s already.", rd->id,
                        round_state_name(rd->state));
    uint64_t seq;
    if (reveal(q->app, q->room, rd, q->who, &seq))
        return RF_ENOMEM;
    req_ok_seq(q, seq);
    return 0;
}

int poker_ops_accept(struct req *q)
{
    struct room *r = q->room;
    struct round *rd = find_round(q);
    const msgpack_object *est = codec_get(q->msg, "estimate");
    if (!rd)
        return RF_ENOT_FOUND;
    if (rd->state != ROUND_REVEALED && rd->state != ROUND_ACCEPTED)
        return req_fail(q, RF_ECONFLICT, "Round %s is %s; reveal it before accepting an estimate.",
                        rd->id, round_state_name(rd->state));
    char *e = codec_strdup(est);
    if (!e)
        return RF_ENOMEM;
    if (!stats_card_in_deck((const char *const *)rd->cards, rd->ncards, e) || strcmp(e, "?") == 0 ||
        strcmp(e, "coffee") == 0) {
        free(e);
        return req_fail(q, RF_EBAD_REQUEST,
                        "An estimate is one of the round's cards other than ? and coffee.");
    }
    struct item *it = backlog_get(&r->backlog, rd->item, strlen(rd->item));
    if (!it) {
        free(e);
        return req_fail(q, RF_ENOT_FOUND, "Item %s has been removed; nothing to estimate.",
                        rd->item);
    }
    free(rd->estimate);
    rd->estimate = e;
    rd->state = ROUND_ACCEPTED;
    if (round_save(q->app->store, r->id, rd)) {
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "round.accepted", q->who, 3);
    codec_pack_kv_str(&ev.pk, "round", rd->id);
    codec_pack_kv_str(&ev.pk, "item", rd->item);
    codec_pack_kv_str(&ev.pk, "estimate", e);
    uint64_t seq;
    if (event_commit(q->app, &ev, NULL) == 0 &&
        item_ops_set_estimate(q->app, r, it, e, q->who, &seq) == 0)
        req_ok_seq(q, seq);
    return 0;
}

int poker_ops_cancel(struct req *q)
{
    struct round *rd = find_round(q);
    if (!rd)
        return RF_ENOT_FOUND;
    if (rd->state != ROUND_VOTING && rd->state != ROUND_REVEALED)
        return req_fail(q, RF_ECONFLICT, "Round %s is %s; there is nothing to cancel.", rd->id,
                        round_state_name(rd->state));
    rd->state = ROUND_CANCELLED;
    if (round_save(q->app->store, q->room->id, rd)) {
        room_evict(q->app, q->room->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, q->room, "round.cancelled", q->who, 1);
    codec_pack_kv_str(&ev.pk, "round", rd->id);
    event_reply(q, &ev);
    return 0;
}

int poker_ops_timer_start(struct req *q)
{
    uint64_t seconds = 0;
    codec_get_uint(q->msg, "seconds", &seconds);
    if (seconds < 1)
        return req_fail(q, RF_EBAD_REQUEST, "A timer runs from 1 to 3600 seconds.");
    q->room->timer_ends_at = clock_now_ms() + (int64_t)seconds * 1000;
    uint64_t seq;
    if (timer_event(q->app, q->room, q->who, false, &seq) == 0)
        req_ok_seq(q, seq);
    return 0;
}

int poker_ops_timer_stop(struct req *q)
{
    if (!q->room->timer_ends_at)
        return req_fail(q, RF_ECONFLICT, "No timer is running.");
    q->room->timer_ends_at = 0;
    uint64_t seq;
    if (timer_event(q->app, q->room, q->who, false, &seq) == 0)
        req_ok_seq(q, seq);
    return 0;
}
