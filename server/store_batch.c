/* The batch of the current loop turn (loop thread only): its records and
 * their arena, the record appenders (store_packer, store_put_*,
 * store_add_event, store_skip_pending), and store_flush, which hands the
 * batch to the writer thread (store_writer.c). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "store.h"
#include "store_int.h"

void store__batch_free(struct batch *b)
{
    if (!b)
        return;
    free(b->v);
    free(b->mem);
    free(b);
}

void store__submit(struct store *s)
{
    struct batch *next = s->spare ? s->spare : calloc(1, sizeof *next);
    s->spare = NULL;
    if (!next)
        return; /* try again at the next turn */
    pthread_mutex_lock(&s->mu);
    s->inflight = s->accum;
    s->accum = next;
    s->pack_open = 0; /* a blob packed and never put stays behind, unused */
    s->work_ready = 1;
    pthread_cond_signal(&s->work_cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_group_timer(uv_timer_t *t)
{
    store_flush(t->data);
}

void store_flush(struct store *s)
{
    if (s->inflight || s->accum->n == 0)
        return;
    uint64_t now = uv_now(s->async.loop);
    if (s->group_ms && now < s->submitted_at + s->group_ms) {
        if (!uv_is_active((uv_handle_t *)&s->group_timer))
            uv_timer_start(&s->group_timer, on_group_timer, s->submitted_at + s->group_ms - now, 0);
        return;
    }
    s->submitted_at = now;
    store__submit(s);
}

void store_skip_pending(struct store *s, const char *room)
{
    for (size_t j = 0; j < s->accum->n; j++)
        if (s->accum->v[j].kind != REC_SKIP &&
            strcmp(rec_str(s->accum, s->accum->v[j].room), room) == 0)
            s->accum->v[j].kind = REC_SKIP;
}

/* Copies len bytes (a string with its NUL when len is NONE) into bt's
 * arena; returns the offset, or NONE for NULL data. *oom on failure. */
static size_t arena_add(struct batch *bt, const void *data, size_t len, int *oom)
{
    if (!data)
        return NONE;
    if (len == NONE)
        len = strlen(data) + 1;
    if (bt->used + len > bt->memcap) {
        size_t cap = bt->memcap ? bt->memcap : 4096;
        while (cap < bt->used + len)
            cap *= 2;
        char *mem = realloc(bt->mem, cap);
        if (!mem) {
            *oom = 1;
            return NONE;
        }
        bt->mem = mem;
        bt->memcap = cap;
    }
    size_t off = bt->used;
    memcpy(bt->mem + off, data, len);
    bt->used += len;
    return off;
}

static int arena_write(void *data, const char *buf, size_t len)
{
    struct store *s = data;
    int oom = 0;
    if (len && !s->pack_oom)
        arena_add(s->accum, buf, len, &oom);
    s->pack_oom |= oom;
    return oom ? -1 : 0;
}

msgpack_packer *store_packer(struct store *s)
{
    if (s->pack_open)
        s->accum->used = s->pack_start; /* one that was never put */
    s->pack_start = s->accum->used;
    s->pack_open = 1;
    s->pack_oom = 0;
    msgpack_packer_init(&s->pk, s, arena_write);
    return &s->pk;
}

/* Appends a record to bt (the arena copies its strings and blob). packed:
 * where a blob already in bt's arena starts (it is bt->used - packed bytes
 * long), or NONE for blob[0..len). 0 or RF_ENOMEM (then bt is as it was,
 * but for a packed blob, dropped). */
int store__batch_append(struct batch *bt, enum rec_kind kind, const char *room, const char *a,
                        const char *b, int64_t i1, int64_t i2, const void *blob, size_t len,
                        size_t packed)
{
    if (packed != NONE)
        len = bt->used - packed;
    if (bt->n == bt->cap) {
        size_t cap = bt->cap ? bt->cap * 2 : 64;
        struct rec *v = realloc(bt->v, cap * sizeof *v);
        if (!v) {
            if (packed != NONE)
                bt->used = packed;
            return RF_ENOMEM;
        }
        bt->v = v;
        bt->cap = cap;
    }
    int oom = 0;
    size_t used = packed != NONE ? packed : bt->used;
    struct rec r = {kind,
                    arena_add(bt, room, NONE, &oom),
                    arena_add(bt, a, NONE, &oom),
                    arena_add(bt, b, NONE, &oom),
                    NONE,
                    i1,
                    i2,
                    len};
    if (packed != NONE)
        r.blob = len ? packed : NONE;
    else
        r.blob = blob && len ? arena_add(bt, blob, len, &oom) : NONE;
    if (oom) {
        bt->used = used;
        return RF_ENOMEM;
    }
    bt->v[bt->n++] = r;
    return 0;
}

/* Appends a record to the current batch. Its blob: blob[0..len), or with
 * PACKED, what was packed since store_packer(). */
static const char PACKED[1];

static int append(struct store *s, enum rec_kind kind, const char *room, const char *a,
                  const char *b, int64_t i1, int64_t i2, const void *blob, size_t len)
{
    size_t packed = NONE;
    if (blob == PACKED) {
        if (!s->pack_open)
            return RF_EINTERNAL; /* defensive: a put without store_packer() */
        s->pack_open = 0;
        if (s->pack_oom) {
            s->accum->used = s->pack_start;
            return RF_ENOMEM;
        }
        packed = s->pack_start;
        blob = NULL;
    }
    int rc = store__batch_append(s->accum, kind, room, a, b, i1, i2, blob, len, packed);
    if (rc == 0)
        s->added++;
    return rc;
}

int store_put_room(struct store *s, const char *room, int64_t created_at)
{
    return append(s, REC_ROOM, room, NULL, NULL, created_at, 0, PACKED, 0);
}

int store_put_participant(struct store *s, const char *room, const char *pid)
{
    return append(s, REC_PART, room, pid, NULL, 0, 0, PACKED, 0);
}

int store_put_item(struct store *s, const char *room, const char *id, const char *rank)
{
    return append(s, REC_ITEM, room, id, rank, 0, 0, PACKED, 0);
}

int store_del_item(struct store *s, const char *room, const char *id)
{
    return append(s, REC_DEL_ITEM, room, id, NULL, 0, 0, NULL, 0);
}

int store_put_round(struct store *s, const char *room, const char *id)
{
    /* Round ids are "r<number>": the number orders them. */
    return append(s, REC_ROUND, room, id, NULL, strtoll(id + 1, NULL, 10), 0, PACKED, 0);
}

int store_put_kano(struct store *s, const char *room, const char *item, uint64_t created)
{
    return append(s, REC_KANO, room, item, NULL, (int64_t)created, 0, PACKED, 0);
}

int store_put_moved(struct store *s, const char *room, const char *to, int64_t at)
{
    return append(s, REC_MOVED, room, to, NULL, at, 0, NULL, 0);
}

int store_add_event(struct store *s, const char *room, uint64_t seq, int64_t at, const char *by,
                    const char *type, const void *payload, size_t len)
{
    return append(s, REC_EVENT, room, by, type, (int64_t)seq, at, payload, len);
}
