#include "product.h"

#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "errors.h"

void product_rec_free(struct product_rec *rec)
{
    free(rec->data);
    rec->data = NULL;
    rec->len = 0;
}

void product_free(struct product *p)
{
    product_rec_free(&p->vision);
    for (size_t i = 0; i < p->npersonas; i++)
        product_rec_free(&p->personas[i]);
    for (size_t i = 0; i < p->noutcomes; i++)
        product_rec_free(&p->outcomes[i]);
    p->npersonas = p->noutcomes = 0;
}

static void pack_default(msgpack_packer *pk, const struct field_spec *f)
{
    if (f->type == FT_STR)
        codec_pack_str(pk, "");
    else if (f->type == FT_STR_LIST)
        msgpack_pack_array(pk, 0);
    else
        msgpack_pack_nil(pk);
}

static size_t nfields(const struct field_spec *fields)
{
    size_t n = 0;
    while (fields[n].name)
        n++;
    return n;
}

/* rec's map decoded into *o (in zone z), or false when it has none. */
static bool rec_decode(const struct product_rec *rec, msgpack_zone *z, msgpack_object *o)
{
    const char *why;
    return rec->data && codec_decode((const uint8_t *)rec->data, rec->len, z, o, &why) == 0;
}

/* Packs {id?, every field: from set, else from base, else its default}. */
static void pack_rec(msgpack_packer *pk, const char *id, const struct field_spec *fields,
                     const msgpack_object *base, const msgpack_object *set)
{
    msgpack_pack_map(pk, nfields(fields) + (id[0] != '\0'));
    if (id[0])
        codec_pack_kv_str(pk, "id", id);
    for (const struct field_spec *f = fields; f->name; f++) {
        const msgpack_object *v = set ? codec_get(set, f->name) : NULL;
        if (!v && base)
            v = codec_get(base, f->name);
        codec_pack_str(pk, f->name);
        if (v)
            codec_pack_obj(pk, v);
        else
            pack_default(pk, f);
    }
}

/* rec rebuilt from base and set (either may be NULL): 0 or RF_ENOMEM. */
static int rec_build(struct product_rec *rec, const struct field_spec *fields,
                     const msgpack_object *base, const msgpack_object *set)
{
    struct codec_buf b;
    msgpack_packer pk;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    pack_rec(&pk, rec->id, fields, base, set);
    size_t len;
    char *data = b.oom ? NULL : codec_buf_take(&b, &len);
    if (!data) {
        codec_buf_free(&b);
        return RF_ENOMEM;
    }
    free(rec->data);
    rec->data = data;
    rec->len = len;
    return 0;
}

int product_rec_set(struct product_rec *rec, const struct field_spec *fields,
                    const msgpack_object *set)
{
    msgpack_zone z;
    msgpack_object base;
    msgpack_zone_init(&z, 1024);
    bool has = rec_decode(rec, &z, &base);
    if (rec->data && !has) {
        msgpack_zone_destroy(&z);
        return RF_ENOMEM; /* it decoded when it was made: only memory fails */
    }
    int rc = rec_build(rec, fields, has ? &base : NULL, set);
    msgpack_zone_destroy(&z);
    return rc;
}

bool product_rec_has(const struct product_rec *rec, const struct field_spec *fields,
                     const msgpack_object *set)
{
    msgpack_zone z;
    msgpack_object base;
    msgpack_zone_init(&z, 1024);
    bool has = rec_decode(rec, &z, &base), same = true;
    for (const struct field_spec *f = fields; f->name && same; f++) {
        const msgpack_object *v = codec_get(set, f->name);
        if (!v)
            continue;
        const msgpack_object *now = has ? codec_get(&base, f->name) : NULL;
        if (now) {
            same = msgpack_object_equal(*v, *now);
        } else { /* at its default */
            same =
                (f->type == FT_STR && v->type == MSGPACK_OBJECT_STR && !v->via.str.size) ||
                (f->type == FT_STR_LIST && v->type == MSGPACK_OBJECT_ARRAY && !v->via.array.size) ||
                v->type == MSGPACK_OBJECT_NIL;
        }
    }
    msgpack_zone_destroy(&z);
    return same;
}

void product_rec_pack(const struct product_rec *rec, const struct field_spec *fields,
                      msgpack_packer *pk)
{
    if (rec->data)
        pk->callback(pk->data, rec->data, rec->len);
    else
        pack_rec(pk, rec->id, fields, NULL, NULL);
}

static void pack_list(msgpack_packer *pk, const char *key, const struct product_rec *v, size_t n,
                      const struct field_spec *fields)
{
    codec_pack_str(pk, key);
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        product_rec_pack(&v[i], fields, pk);
}

static void pack_body(const struct product *p, msgpack_packer *pk)
{
    codec_pack_str(pk, "vision");
    product_rec_pack(&p->vision, ops_vision_fields, pk);
    pack_list(pk, "personas", p->personas, p->npersonas, ops_persona_fields);
    pack_list(pk, "outcomes", p->outcomes, p->noutcomes, ops_outcome_fields);
}

void product_pack(const struct product *p, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 3);
    pack_body(p, pk);
}

void product_save(const struct product *p, msgpack_packer *pk)
{
    msgpack_pack_map(pk, 5);
    pack_body(p, pk);
    codec_pack_kv_u64(pk, "next_persona", p->next_persona);
    codec_pack_kv_u64(pk, "next_outcome", p->next_outcome);
}

/* Restores the records of list `key` of o into v (at most max). */
static int load_list(const msgpack_object *o, const char *key, struct product_rec *v, size_t *n,
                     size_t max, const struct field_spec *fields)
{
    const msgpack_object *a = codec_get(o, key);
    if (!a || a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size > max)
        return RF_EINTERNAL;
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        const msgpack_object *m = &a->via.array.ptr[i], *id = codec_get(m, "id");
        if (!id || id->type != MSGPACK_OBJECT_STR || id->via.str.size == 0 ||
            id->via.str.size >= PRODUCT_ID_MAX)
            return RF_EINTERNAL;
        struct product_rec *rec = &v[(*n)++];
        memcpy(rec->id, id->via.str.ptr, id->via.str.size);
        rec->id[id->via.str.size] = '\0';
        if (rec_build(rec, fields, m, NULL))
            return RF_ENOMEM;
    }
    return 0;
}

int product_load(struct product *p, const msgpack_object *o)
{
    if (!o)
        return 0;
    const msgpack_object *vision = codec_get(o, "vision");
    int rc;
    if (!vision || vision->type != MSGPACK_OBJECT_MAP)
        return RF_EINTERNAL;
    if ((rc = rec_build(&p->vision, ops_vision_fields, vision, NULL)) ||
        (rc = load_list(o, "personas", p->personas, &p->npersonas, PRODUCT_MAX_PERSONAS,
                        ops_persona_fields)) ||
        (rc = load_list(o, "outcomes", p->outcomes, &p->noutcomes, PRODUCT_MAX_OUTCOMES,
                        ops_outcome_fields)))
        return rc;
    if (!codec_get_uint(o, "next_persona", &p->next_persona) ||
        !codec_get_uint(o, "next_outcome", &p->next_outcome))
        return RF_EINTERNAL;
    return 0;
}
