/* The inside of an import (import.c), for the readers of its formats
 * (jira.c) and the importers of the JSON document's sections. */
#ifndef REFINE_IMPORT_INT_H
#define REFINE_IMPORT_INT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "codec.h"
#include "import.h"

struct app;
struct item;
struct room;

#define IMPORT_WARNINGS_MAX 20 /* warnings kept; the rest are counted */
#define IMPORT_SECTIONS_MAX 12

/* One imported item: built on the worker, its id, rank and parent given on
 * the loop by import_apply. */
struct import_item {
    struct item *it;
    char *src;       /* its id in the file (a JSON id or a CSV Issue Id) */
    char *parent;    /* its parent's id in the file, or NULL */
    size_t up;       /* its parent's index, when parent */
    bool rank_given; /* it->rank holds the file's rank */
    bool time_given; /* it->updated_at holds the file's time */
};

/* A section of the JSON document (a top-level key): parse() runs on the
 * worker and keeps what it read in *state; check() on the loop says whether
 * it fits the room (nothing changed); apply() changes the room and appends
 * its records to the store's batch (it may not fail but for out of memory,
 * after which the room is evicted); pack() writes its value into the
 * backlog.imported event under its key; count() says how many entries it
 * brings (the preview); release() frees the state. Every function but
 * parse may be NULL. */
struct import_section {
    const char *key;
    int (*parse)(struct import *im, void **state, const msgpack_object *v);
    int (*check)(struct import *im, void *state, struct room *r);
    int (*apply)(struct import *im, void *state, struct app *app, struct room *r);
    void (*pack)(const void *state, msgpack_packer *pk);
    size_t (*count)(const void *state);
    void (*release)(void *state);
};

struct import {
    uv_work_t work;
    import_parsed_fn done; /* NULL once abandoned */
    void *arg;
    char *body;
    size_t len;
    bool csv;
    int rc;
    char why[512];
    /* the backlog (items) */
    struct import_item *v;
    size_t n, cap;
    size_t rows; /* CSV: data rows read */
    bool taken;  /* the items went into a room (import_apply) */
    /* the JSON document's other sections, by index in the section table */
    void *state[IMPORT_SECTIONS_MAX];
    bool present[IMPORT_SECTIONS_MAX];
    char *warn[IMPORT_WARNINGS_MAX];
    size_t nwarn; /* all of them, kept or not */
};

/* A warning for the preview and the answer (printf-style). */
void import_warn(struct import *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Fails the import with a sentence (printf-style); returns RF_EBAD_REQUEST. */
int import_fail(struct import *im, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Adds an item from an item map (the fields of protocol/ops.c's item table;
 * "split" allowed as its status), its id in the file src[0..srclen) (NULL: the
 * item's number), its parent's (NULL: none), and optionally a rank and an
 * update time (NULL). `where` names it in errors ("line 4", "item 3").
 * Returns 0, RF_EBAD_REQUEST (import_fail), or RF_ENOMEM. */
int import_add_item(struct import *im, const msgpack_object *map, const char *src, size_t srclen,
                    const char *parent, size_t parentlen, const char *rank, size_t ranklen,
                    const int64_t *updated_at, const char *where);

/* import_room.c: the sections "map" (the story map) and "product" (vision,
 * personas, outcomes) of a JSON document, each into a room that has none
 * (else skipped with a warning). */
int import_map_parse(struct import *im, void **state, const msgpack_object *v);
int import_map_check(struct import *im, void *state, struct room *r);
int import_map_apply(struct import *im, void *state, struct app *app, struct room *r);
void import_map_pack(const void *state, msgpack_packer *pk);
size_t import_map_count(const void *state);
void import_map_release(void *state);
int import_product_parse(struct import *im, void **state, const msgpack_object *v);
int import_product_check(struct import *im, void *state, struct room *r);
int import_product_apply(struct import *im, void *state, struct app *app, struct room *r);
void import_product_pack_room(const void *state, msgpack_packer *pk);
size_t import_product_count(const void *state);
void import_product_release(void *state);

/* import_room.c: drops, with a warning, the items' references to what the
 * room will not have: a place on the story map (step and slice) and a
 * persona_id or outcomes. map_state and product_state are the states of the
 * sections "map" and "product" (NULL: not in the file: the room's own are
 * what the references name). Runs after the sections' check(). */
void import_room_refs(struct import *im, struct room *r, const void *map_state,
                      const void *product_state);

/* import_csv.c: reads the import's body as a Jira CSV (jira.h) into its
 * items. The header row names the columns (case-insensitive, in any order);
 * Summary is required, unknown columns are warned about and ignored.
 * Returns 0, RF_EBAD_REQUEST or RF_ETOO_LARGE (the import's why says where),
 * or RF_ENOMEM. */
int import_csv(struct import *im);

#endif
