/* The product around a room's backlog, the model: a vision (Geoffrey Moore's
 * elevator pitch), personas and measurable outcomes (design/refinement.md
 * "Vision and outcomes"). Items refer to them through their item fields
 * `persona_id` and `outcomes`; what clients do with them is in
 * product_ops.h.
 *
 * Each record is kept as the MessagePack map clients get: the vision is
 * {each field of ops_vision_fields}, a persona {id, each field of
 * ops_persona_fields}, an outcome {id, each field of ops_outcome_fields},
 * every field present (a default where never given: "", [] or nil). The
 * lists are small and capped (PRODUCT_MAX_*), so the whole product lives in
 * the room's meta row (room_save_meta, under "product"): no table of its own. */
#ifndef REFINE_PRODUCT_H
#define REFINE_PRODUCT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ops.h"

#define PRODUCT_MAX_PERSONAS 12
#define PRODUCT_MAX_OUTCOMES 20
#define PRODUCT_ID_MAX       16

struct product_rec {
    char id[PRODUCT_ID_MAX]; /* "" for the vision */
    char *data;              /* the record as a MessagePack map; NULL: every field at its default */
    size_t len;
};

struct product {
    struct product_rec vision;
    struct product_rec personas[PRODUCT_MAX_PERSONAS]; /* in the order they were added */
    size_t npersonas;
    struct product_rec outcomes[PRODUCT_MAX_OUTCOMES];
    size_t noutcomes;
    uint64_t next_persona, next_outcome; /* the number of the next id (p1, o1, ...) */
};

/* Frees what p holds (not p). */
void product_free(struct product *p);
/* Rebuilds rec with the validated map `set` over its fields (those `set`
 * lacks keep their value or default): 0, or RF_ENOMEM with rec unchanged. */
int product_rec_set(struct product_rec *rec, const struct field_spec *fields,
                    const msgpack_object *set);
/* Whether every field of the validated map `set` has that value in rec already. */
bool product_rec_has(const struct product_rec *rec, const struct field_spec *fields,
                     const msgpack_object *set);
/* Frees rec's data and empties it. */
void product_rec_free(struct product_rec *rec);
/* Packs rec as its map. */
void product_rec_pack(const struct product_rec *rec, const struct field_spec *fields,
                      msgpack_packer *pk);
/* Packs {vision, personas, outcomes} as clients see it (the snapshot's and
 * the export's `product`). */
void product_pack(const struct product *p, msgpack_packer *pk);
/* Packs what the room's meta keeps: product_pack()'s map with the id counters. */
void product_save(const struct product *p, msgpack_packer *pk);
/* Restores p (empty) from the meta's `product` (NULL: a room without one):
 * 0, or RF_EINTERNAL / RF_ENOMEM. */
int product_load(struct product *p, const msgpack_object *o);
#endif
