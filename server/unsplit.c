#include "unsplit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "backlog.h"
#include "clock.h"
#include "errors.h"
#include "event.h"
#include "hint.h"
#include "req.h"
#include "room.h"
#include "round.h"
#include "store.h"

static const char *title_of(const struct item *it)
{
    const struct ival *t = &it->f[ITEM_F_TITLE];
    return t->type == IV_STR ? t->u.s : it->id;
}

/* 0 when the split of parent is untouched; else conflict with a sentence
 * naming what changed. */
static int check_untouched(struct req *q, const struct item *parent)
{
    struct room *r = q->room;
    const struct item_split *sp = parent->split;
    const struct round *open = room_current_round(r);
    if (!sp)
        return req_fail(q, RF_ECONFLICT,
                        "'%.60s' is not split, or was split before merging back was possible.",
                        title_of(parent));
    for (uint32_t i = 0; i < sp->n; i++) {
        const struct item *kid = backlog_get(&r->backlog, sp->kids[i], strlen(sp->kids[i]));
        if (!kid)
            return req_fail(q, RF_ECONFLICT,
                            "Child %u of '%.60s' has been removed since the split, so it cannot "
                            "be merged back.",
                            i + 1, title_of(parent));
        if (kid->seq != sp->seq) {
            char who[160];
            unsplit_who_changed(q, kid, who, sizeof who);
            return req_fail(q, RF_ECONFLICT,
                            "%s since the split, so it cannot be merged back; its children "
                            "must be as the split made them.",
                            who);
        }
        if (open && strcmp(open->item, kid->id) == 0)
            return req_fail(q, RF_ECONFLICT,
                            "Planning poker is open on '%.60s'; cancel the round first to merge "
                            "the split back.",
                            title_of(kid));
        if (map_get(&r->kano_by_item, kid->id, strlen(kid->id)))
            return req_fail(q, RF_ECONFLICT,
                            "'%.60s' has Kano answers, so the split cannot be merged back.",
                            title_of(kid));
    }
    return 0;
}

void unsplit_who_changed(const struct req *q, const struct item *it, char *why, size_t n)
{
    const struct ival *t = &it->f[ITEM_F_TITLE];
    const char *title = t->type == IV_STR ? t->u.s : it->id;
    const struct participant *p =
        it->by[0] ? room_participant(q->room, it->by, strlen(it->by)) : NULL;
    if (q->who && p == q->who)
        snprintf(why, n, "You changed '%.60s'", title);
    else if (p)
        snprintf(why, n, "%.60s changed '%.60s'", p->name, title);
    else
        snprintf(why, n, "'%.60s' has changed", title);
}

int unsplit_handle(struct req *q)
{
    const msgpack_object *id = codec_get(q->msg, "item");
    struct item *it = backlog_get(&q->room->backlog, id->via.str.ptr, id->via.str.size);
    if (!it)
        return req_fail(q, RF_ENOT_FOUND, "There is no item '%.*s' in this room.",
                        (int)id->via.str.size, id->via.str.ptr);
    return unsplit_merge(q, it, 0);
}

int unsplit_merge(struct req *q, struct item *parent, uint64_t undo)
{
    struct room *r = q->room;
    int rc = check_untouched(q, parent);
    if (rc)
        return rc;
    struct item_split *sp = parent->split;
    /* The focus on a child goes back to the parent. */
    bool refocus = false;
    for (uint32_t i = 0; i < sp->n && r->focus; i++)
        refocus = refocus || strcmp(r->focus, sp->kids[i]) == 0;
    char *focus = refocus ? strdup(parent->id) : NULL;
    if (refocus && !focus)
        return RF_ENOMEM;
    /* Point of no return: the children out, the status back. */
    int bad = 0;
    for (uint32_t i = 0; i < sp->n; i++) {
        struct item *kid = backlog_get(&r->backlog, sp->kids[i], strlen(sp->kids[i]));
        bad = bad || store_del_item(q->app->store, r->id, kid->id);
        backlog_remove_at(&r->backlog, backlog_index_of(&r->backlog, kid));
        r->backlog.bytes -= kid->bytes;
        hint_drop_item(r, kid->id);
        backlog_item_free(kid);
    }
    if (refocus) {
        free(r->focus);
        r->focus = focus;
    }
    struct ival *status = &parent->f[ITEM_F_STATUS];
    backlog_ival_free(status);
    status->type = IV_STR;
    status->u.s = sp->was;
    sp->was = NULL;
    parent->split = NULL;
    backlog_account(&r->backlog, parent);
    backlog_touch(parent, r->seq + 1, q->who ? q->who->pid : NULL, clock_now_ms());
    bad = bad || backlog_save_item(q->app->store, r->id, parent) ||
          (refocus && room_save_meta(q->app, r));
    if (bad) {
        backlog_split_free(sp);
        room_evict(q->app, r->id);
        return RF_ENOMEM;
    }
    struct event ev;
    event_begin(&ev, r, "item.unsplit", q->who, 4 + (undo != 0));
    codec_pack_kv_str(&ev.pk, "item", parent->id);
    codec_pack_str(&ev.pk, "children");
    msgpack_pack_array(&ev.pk, sp->n);
    for (uint32_t i = 0; i < sp->n; i++)
        codec_pack_str(&ev.pk, sp->kids[i]);
    codec_pack_kv_str(&ev.pk, "status", status->u.s);
    codec_pack_kv_str(&ev.pk, "focus", r->focus);
    if (undo)
        codec_pack_kv_u64(&ev.pk, "undo", undo);
    backlog_split_free(sp);
    event_reply(q, &ev);
    return 0;
}
