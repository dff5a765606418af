#include "round.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"
#include "store.h"

static const char *const STATE_NAMES[] = {"voting", "revealed", "accepted", "cancelled"};

const char *round_state_name(enum round_state s)
{
    return STATE_NAMES[s];
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void round_free(struct round *rd)
{
    if (!rd)
        return;
    free_strv(rd->cards, rd->ncards);
    free_strv(rd->voters, rd->nvoters);
    for (size_t i = 0; i < rd->nvotes; i++)
        free(rd->votes[i].card);
    free(rd->votes);
    free(rd->estimate);
    free(rd->stats);
    free(rd);
}

struct vote *round_find_vote(struct round *rd, const char *pid)
{
    for (size_t i = 0; i < rd->nvotes; i++)
        if (strcmp(rd->votes[i].pid, pid) == 0)
            return &rd->votes[i];
    return NULL;
}

void round_pack_stats(const struct round *rd, msgpack_packer *pk)
{
    pk->callback(pk->data, rd->stats, rd->stats_len); /* raw MessagePack: an encoded value */
}

void round_pack(const struct round *rd, msgpack_packer *pk)
{
    bool shown = rd->stats != NULL; /* revealed (and maybe accepted, or cancelled after) */
    msgpack_pack_map(pk, 13);
    codec_pack_kv_str(pk, "id", rd->id);
    codec_pack_kv_str(pk, "item", rd->item);
    codec_pack_kv_str(pk, "state", STATE_NAMES[rd->state]);
    codec_pack_str(pk, "deck");
    msgpack_pack_array(pk, rd->ncards);
    for (size_t i = 0; i < rd->ncards; i++)
        codec_pack_str(pk, rd->cards[i]);
    codec_pack_kv_bool(pk, "anonymous", rd->anonymous);
    codec_pack_str(pk, "deadline");
    if (rd->deadline)
        msgpack_pack_int64(pk, rd->deadline);
    else
        msgpack_pack_nil(pk);
    codec_pack_kv_i64(pk, "started_at", rd->started_at);
    codec_pack_str(pk, "revealed_at");
    if (shown)
        msgpack_pack_int64(pk, rd->revealed_at);
    else
        msgpack_pack_nil(pk);
    codec_pack_str(pk, "voters");
    msgpack_pack_array(pk, rd->nvoters);
    for (size_t i = 0; i < rd->nvoters; i++)
        codec_pack_str(pk, rd->voters[i]);
    /* Who has voted is public; what is not, until the reveal. */
    codec_pack_str(pk, "voted");
    msgpack_pack_array(pk, rd->nvotes);
    for (size_t i = 0; i < rd->nvotes; i++)
        codec_pack_str(pk, rd->votes[i].pid);
    codec_pack_str(pk, "votes");
    if (shown && !rd->anonymous) {
        msgpack_pack_map(pk, rd->nvotes);
        for (size_t i = 0; i < rd->nvotes; i++)
            codec_pack_kv_str(pk, rd->votes[i].pid, rd->votes[i].card);
    } else {
        msgpack_pack_nil(pk);
    }
    codec_pack_str(pk, "stats");
    if (shown)
        round_pack_stats(rd, pk);
    else
        msgpack_pack_nil(pk);
    codec_pack_kv_str(pk, "estimate", rd->estimate);
}

/* ---- storage ------------------------------------------------------------ */

int round_save(struct store *s, const char *room, const struct round *rd)
{
    msgpack_packer *pk = store_packer(s);
    msgpack_pack_map(pk, 11);
    codec_pack_kv_str(pk, "item", rd->item);
    codec_pack_kv_u64(pk, "state", (uint64_t)rd->state);
    codec_pack_str(pk, "cards");
    msgpack_pack_array(pk, rd->ncards);
    for (size_t i = 0; i < rd->ncards; i++)
        codec_pack_str(pk, rd->cards[i]);
    codec_pack_kv_bool(pk, "anonymous", rd->anonymous);
    codec_pack_kv_i64(pk, "deadline", rd->deadline);
    codec_pack_kv_i64(pk, "started_at", rd->started_at);
    codec_pack_kv_i64(pk, "revealed_at", rd->revealed_at);
    codec_pack_str(pk, "voters");
    msgpack_pack_array(pk, rd->nvoters);
    for (size_t i = 0; i < rd->nvoters; i++)
        codec_pack_str(pk, rd->voters[i]);
    codec_pack_str(pk, "votes"); /* secret until revealed: stays on the server */
    msgpack_pack_array(pk, rd->nvotes);
    for (size_t i = 0; i < rd->nvotes; i++) {
        msgpack_pack_array(pk, 3);
        codec_pack_str(pk, rd->votes[i].pid);
        codec_pack_str(pk, rd->votes[i].card);
        msgpack_pack_int64(pk, rd->votes[i].confidence);
    }
    codec_pack_kv_str(pk, "estimate", rd->estimate);
    codec_pack_str(pk, "stats");
    if (rd->stats) {
        msgpack_pack_bin(pk, rd->stats_len);
        msgpack_pack_bin_body(pk, rd->stats, rd->stats_len);
    } else {
        msgpack_pack_nil(pk);
    }
    return store_put_round(s, room, rd->id);
}

static int64_t get_i64(const msgpack_object *map, const char *key)
{
    const msgpack_object *o = codec_get(map, key);
    if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return 0;
}

static int load_strv(const msgpack_object *a, char ***out, size_t *n)
{
    *n = 0;
    *out = NULL;
    if (!a || a->type != MSGPACK_OBJECT_ARRAY)
        return RF_EINTERNAL;
    *out = calloc(a->via.array.size ? a->via.array.size : 1, sizeof **out);
    if (!*out)
        return RF_ENOMEM;
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        if (!((*out)[i] = codec_strdup(&a->via.array.ptr[i])))
            return RF_EINTERNAL;
        (*n)++;
    }
    return 0;
}

struct round *round_load(const char *id, const void *data, size_t len)
{
    msgpack_zone z;
    msgpack_object o;
    const char *why;
    struct round *rd = calloc(1, sizeof *rd);
    msgpack_zone_init(&z, 1024);
    if (!rd || strlen(id) >= sizeof rd->id || codec_decode(data, len, &z, &o, &why))
        goto fail;
    strcpy(rd->id, id);
    const msgpack_object *item = codec_get(&o, "item");
    if (!item || item->type != MSGPACK_OBJECT_STR || item->via.str.size >= ITEM_ID_MAX)
        goto fail;
    memcpy(rd->item, item->via.str.ptr, item->via.str.size);
    rd->state = (enum round_state)get_i64(&o, "state");
    if (rd->state > ROUND_CANCELLED)
        goto fail;
    const msgpack_object *anon = codec_get(&o, "anonymous");
    rd->anonymous = anon && anon->type == MSGPACK_OBJECT_BOOLEAN && anon->via.boolean;
    rd->deadline = get_i64(&o, "deadline");
    rd->started_at = get_i64(&o, "started_at");
    rd->revealed_at = get_i64(&o, "revealed_at");
    if (load_strv(codec_get(&o, "cards"), &rd->cards, &rd->ncards) ||
        load_strv(codec_get(&o, "voters"), &rd->voters, &rd->nvoters))
        goto fail;
    const msgpack_object *votes = codec_get(&o, "votes");
    if (!votes || votes->type != MSGPACK_OBJECT_ARRAY)
        goto fail;
    rd->votes = calloc(votes->via.array.size ? votes->via.array.size : 1, sizeof *rd->votes);
    if (!rd->votes)
        goto fail;
    rd->capvotes = votes->via.array.size;
    for (uint32_t i = 0; i < votes->via.array.size; i++) {
        const msgpack_object *v = &votes->via.array.ptr[i];
        if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size != 3 ||
            v->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
            v->via.array.ptr[0].via.str.size > TOKEN_LEN)
            goto fail;
        struct vote *vt = &rd->votes[rd->nvotes];
        memcpy(vt->pid, v->via.array.ptr[0].via.str.ptr, v->via.array.ptr[0].via.str.size);
        if (!(vt->card = codec_strdup(&v->via.array.ptr[1])))
            goto fail;
        vt->confidence = v->via.array.ptr[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER
                             ? (int)v->via.array.ptr[2].via.u64
                             : -1;
        rd->nvotes++;
    }
    const msgpack_object *est = codec_get(&o, "estimate");
    if (est && est->type == MSGPACK_OBJECT_STR && !(rd->estimate = codec_strdup(est)))
        goto fail;
    const msgpack_object *st = codec_get(&o, "stats");
    if (st && st->type == MSGPACK_OBJECT_BIN) {
        if (!(rd->stats = malloc(st->via.bin.size ? st->via.bin.size : 1)))
            goto fail;
        memcpy(rd->stats, st->via.bin.ptr, st->via.bin.size);
        rd->stats_len = st->via.bin.size;
    }
    msgpack_zone_destroy(&z);
    return rd;
fail:
    msgpack_zone_destroy(&z);
    round_free(rd);
    return NULL;
}
