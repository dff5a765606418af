#include "kano_ops.h"

#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "codec.h"
#include "errors.h"
#include "event.h"
#include "kano.h"
#include "log.h"
#include "req.h"
#include "room.h"

static const char *const ANSWER_NAMES[] = {"like", "expect", "neutral", "tolerate", "dislike"};

static int answer_index(const msgpack_object *o)
{
    for (int i = 0; i < 5; i++)
        if (codec_str_eq(o, ANSWER_NAMES[i]))
            return i;
    return -1;
}

void kano_pack_all(const struct room *r, msgpack_packer *pk)
{
    size_t n = 0;
    for (size_t i = 0; i < r->nkano; i++)
        n += backlog_get(&r->backlog, r->kano[i]->item, strlen(r->kano[i]->item)) != NULL;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < r->nkano; i++)
        if (backlog_get(&r->backlog, r->kano[i]->item, strlen(r->kano[i]->item)))
            kano_pack(r->kano[i], pk);
}

int kano_add(struct room *r, struct kano_survey *s)
{
    if (r->nkano == r->capkano) {
        size_t cap = r->capkano ? r->capkano * 2 : 8;
        struct kano_survey **v = realloc(r->kano, cap * sizeof *v);
        if (!v)
            return RF_ENOMEM;
        r->kano = v;
        r->capkano = cap;
    }
    if (map_put(&r->kano_by_item, s->item, s))
        return RF_ENOMEM;
    r->kano[r->nkano++] = s;
    return 0;
}

/* The item the request names, which must be in the backlog, or NULL (answered). */
static struct item *find_item(struct req *q)
{
    const msgpack_object *id = codec_get(q->msg, "item");
    struct item *it = backlog_get(&q->room->backlog, id->via.str.ptr, id->via.str.size);
    if (!it)
        req_fail(q, RF_ENOT_FOUND, "There is no item '%.*s' in this room.", (int)id->via.str.size,
                 id->via.str.ptr);
    return it;
}

static struct kano_survey *find_survey(const struct room *r, const struct item *it)
{
    return map_get(&r->kano_by_item, it->id, strlen(it->id));
}

/* Persists s and broadcasts `kano.answered`. */
static int answered_event(struct req *q, struct kano_survey *s)
{
    if (kano_save(q->app->store, q->room->id, s)) {
        room_evict(q->app, q->room->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, q->room, "kano.answered", q->who, 3);
    codec_pack_kv_str(&ev.pk, "item", s->item);
    codec_pack_kv_str(&ev.pk, "pid", q->who->pid);
    codec_pack_kv_u64(&ev.pk, "count", s->n);
    event_reply(q, &ev);
    return 0;
}

int kano_ops_answer(struct req *q)
{
    struct room *r = q->room;
    struct item *it = find_item(q);
    if (!it)
        return RF_ENOT_FOUND;
    int f = answer_index(codec_get(q->msg, "functional"));
    int d = answer_index(codec_get(q->msg, "dysfunctional"));
    if (f < 0 || d < 0) /* the op table's choices refuse these first */
        return req_fail(q, RF_EBAD_REQUEST,
                        "An answer is like, expect, neutral, tolerate or dislike.");
    struct kano_survey *s = find_survey(r, it);
    if (s && s->revealed)
        return req_fail(q, RF_ECONFLICT,
                        "The survey of item %s has been revealed; answers are closed until the "
                        "facilitator resets it.",
                        s->item);
    bool made = false;
    if (!s) {
        if (!(s = calloc(1, sizeof *s)))
            return RF_ENOMEM;
        snprintf(s->item, sizeof s->item, "%s", it->id);
        s->created = r->seq + 1;
        if (kano_add(r, s)) {
            kano_free(s);
            return RF_ENOMEM;
        }
        made = true;
    }
    struct kano_answer *a = NULL;
    for (size_t i = 0; i < s->n && !a; i++)
        if (strcmp(s->v[i].pid, q->who->pid) == 0)
            a = &s->v[i];
    if (a && a->functional == f && a->dysfunctional == d) {
        req_ok_unchanged(q); /* the same answer again */
        return 0;
    }
    if (!a && s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        struct kano_answer *v = realloc(s->v, cap * sizeof *v);
        if (!v) {
            if (made) {
                map_del(&r->kano_by_item, s->item);
                r->nkano--;
                kano_free(s);
            }
            return RF_ENOMEM;
        }
        s->v = v;
        s->cap = cap;
    }
    if (a) {
        s->counts[kano_classify(a->functional, a->dysfunctional)]--;
    } else {
        a = &s->v[s->n++];
        memset(a, 0, sizeof *a);
        snprintf(a->pid, sizeof a->pid, "%s", q->who->pid);
    }
    a->functional = (uint8_t)f;
    a->dysfunctional = (uint8_t)d;
    s->counts[kano_classify(a->functional, a->dysfunctional)]++;
    return answered_event(q, s);
}

/* The survey of the request's item, answered at least once, into *out; or
 * the error (with its sentence). */
static int find_answered(struct req *q, struct kano_survey **out)
{
    struct item *it = find_item(q);
    if (!it)
        return RF_ENOT_FOUND;
    *out = find_survey(q->room, it);
    if (!*out || !(*out)->n)
        return req_fail(q, RF_ECONFLICT, "Nobody has answered the survey of item %s yet.", it->id);
    return 0;
}

int kano_ops_reveal(struct req *q)
{
    struct kano_survey *s;
    int rc = find_answered(q, &s);
    if (rc)
        return rc;
    if (s->revealed)
        return req_fail(q, RF_ECONFLICT, "The survey of item %s is revealed already.", s->item);
    s->revealed = true;
    if (kano_save(q->app->store, q->room->id, s)) {
        room_evict(q->app, q->room->id);
        return RF_ENOMEM;
    }
    log_info("room %s: kano survey of %s revealed with %zu answers", q->room->id, s->item, s->n);
    struct event ev;
    event_begin(&ev, q->room, "kano.revealed", q->who, 2);
    codec_pack_kv_str(&ev.pk, "item", s->item);
    codec_pack_str(&ev.pk, "results");
    kano_pack_results(s, &ev.pk);
    event_reply(q, &ev);
    return 0;
}

int kano_ops_reset(struct req *q)
{
    struct kano_survey *s;
    int rc = find_answered(q, &s);
    if (rc)
        return rc;
    s->revealed = false;
    s->n = 0;
    memset(s->counts, 0, sizeof s->counts);
    if (kano_save(q->app->store, q->room->id, s)) {
        room_evict(q->app, q->room->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, q->room, "kano.reset", q->who, 1);
    codec_pack_kv_str(&ev.pk, "item", s->item);
    event_reply(q, &ev);
    return 0;
}
