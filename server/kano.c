#include "kano.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "store.h"

static const char *const CAT_NAMES[KANO__NCAT] = {"A", "O", "M", "I", "R", "Q"};
/* Ties: the first of this order wins. */
static const enum kano_cat TIE_ORDER[KANO__NCAT] = {KANO_M, KANO_O, KANO_A, KANO_I, KANO_R, KANO_Q};

/* Rows: the functional answer; columns: the dysfunctional one. */
static const uint8_t TABLE[5][5] = {
    {KANO_Q, KANO_A, KANO_A, KANO_A, KANO_O}, {KANO_R, KANO_I, KANO_I, KANO_I, KANO_M},
    {KANO_R, KANO_I, KANO_I, KANO_I, KANO_M}, {KANO_R, KANO_I, KANO_I, KANO_I, KANO_M},
    {KANO_R, KANO_R, KANO_R, KANO_R, KANO_Q},
};

enum kano_cat kano_classify(unsigned functional, unsigned dysfunctional)
{
    return functional < 5 && dysfunctional < 5 ? (enum kano_cat)TABLE[functional][dysfunctional]
                                               : KANO_Q;
}

void kano_free(struct kano_survey *s)
{
    if (!s)
        return;
    free(s->v);
    free(s);
}

void kano_pack_results(const struct kano_survey *s, msgpack_packer *pk)
{
    const uint32_t *c = s->counts;
    msgpack_pack_map(pk, 5);
    codec_pack_str(pk, "counts");
    msgpack_pack_map(pk, KANO__NCAT);
    for (int i = 0; i < KANO__NCAT; i++)
        codec_pack_kv_u64(pk, CAT_NAMES[i], c[i]);
    codec_pack_kv_u64(pk, "total", s->n);
    enum kano_cat best = TIE_ORDER[0];
    for (int i = 1; i < KANO__NCAT; i++)
        if (c[TIE_ORDER[i]] > c[best])
            best = TIE_ORDER[i];
    codec_pack_kv_str(pk, "category", s->n ? CAT_NAMES[best] : NULL);
    uint32_t base = c[KANO_A] + c[KANO_O] + c[KANO_M] + c[KANO_I];
    codec_pack_str(pk, "satisfaction");
    if (base)
        msgpack_pack_double(pk, (double)(c[KANO_A] + c[KANO_O]) / base);
    else
        msgpack_pack_nil(pk);
    codec_pack_str(pk, "dissatisfaction");
    if (base)
        msgpack_pack_double(pk, -(double)(c[KANO_O] + c[KANO_M]) / base);
    else
        msgpack_pack_nil(pk);
}

void kano_pack(const struct kano_survey *s, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 4);
    codec_pack_kv_str(pk, "item", s->item);
    codec_pack_kv_bool(pk, "revealed", s->revealed);
    codec_pack_str(pk, "answered");
    msgpack_pack_array(pk, s->n);
    for (size_t i = 0; i < s->n; i++)
        codec_pack_str(pk, s->v[i].pid);
    codec_pack_str(pk, "results");
    if (s->revealed)
        kano_pack_results(s, pk);
    else
        msgpack_pack_nil(pk);
}

int kano_save(struct store *st, const char *room, const struct kano_survey *s)
{
    msgpack_packer *pk = store_packer(st);
    msgpack_pack_map(pk, 2);
    codec_pack_kv_bool(pk, "revealed", s->revealed);
    codec_pack_str(pk, "answers"); /* secret: stays on the server */
    msgpack_pack_array(pk, s->n);
    for (size_t i = 0; i < s->n; i++) {
        msgpack_pack_array(pk, 3);
        codec_pack_str(pk, s->v[i].pid);
        msgpack_pack_uint8(pk, s->v[i].functional);
        msgpack_pack_uint8(pk, s->v[i].dysfunctional);
    }
    return store_put_kano(st, room, s->item, s->created);
}

struct kano_survey *kano_load(const char *item, const void *data, size_t len)
{
    msgpack_zone z;
    msgpack_object o;
    const char *why;
    struct kano_survey *s = calloc(1, sizeof *s);
    msgpack_zone_init(&z, 1024);
    if (!s || strlen(item) >= sizeof s->item || codec_decode(data, len, &z, &o, &why))
        goto fail;
    strcpy(s->item, item);
    const msgpack_object *rev = codec_get(&o, "revealed"), *ans = codec_get(&o, "answers");
    s->revealed = rev && rev->type == MSGPACK_OBJECT_BOOLEAN && rev->via.boolean;
    if (!ans || ans->type != MSGPACK_OBJECT_ARRAY)
        goto fail;
    s->cap = ans->via.array.size ? ans->via.array.size : 1;
    if (!(s->v = calloc(s->cap, sizeof *s->v)))
        goto fail;
    for (uint32_t i = 0; i < ans->via.array.size; i++) {
        const msgpack_object *a = &ans->via.array.ptr[i];
        if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size != 3 ||
            a->via.array.ptr[0].type != MSGPACK_OBJECT_STR ||
            a->via.array.ptr[0].via.str.size > TOKEN_LEN ||
            a->via.array.ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            a->via.array.ptr[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            a->via.array.ptr[1].via.u64 > 4 || a->via.array.ptr[2].via.u64 > 4)
            goto fail;
        struct kano_answer *k = &s->v[s->n++];
        memcpy(k->pid, a->via.array.ptr[0].via.str.ptr, a->via.array.ptr[0].via.str.size);
        k->functional = (uint8_t)a->via.array.ptr[1].via.u64;
        k->dysfunctional = (uint8_t)a->via.array.ptr[2].via.u64;
        s->counts[kano_classify(k->functional, k->dysfunctional)]++;
    }
    msgpack_zone_destroy(&z);
    return s;
fail:
    msgpack_zone_destroy(&z);
    kano_free(s);
    return NULL;
}
