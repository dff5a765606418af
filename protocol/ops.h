/* The operation table: the one place that says which operations exist,
 * which fields each takes with which types and limits, and which roles may
 * send it. Validation (ops_validate), permission checks (ops_allows) and the
 * tables of protocol/PROTOCOL.md (ops_print_markdown) are all derived from
 * it; the server maps each op id to its handler. */
#ifndef REFINE_OPS_H
#define REFINE_OPS_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

enum role {
    ROLE_FACILITATOR = 0,
    ROLE_OWNER,
    ROLE_MEMBER,
    ROLE_OBSERVER,
    ROLE__COUNT,
};

#define R_FAC (1u << ROLE_FACILITATOR)
#define R_OWN (1u << ROLE_OWNER)
#define R_MEM (1u << ROLE_MEMBER)
#define R_OBS (1u << ROLE_OBSERVER)
#define R_ANY (R_FAC | R_OWN | R_MEM | R_OBS)

/* "facilitator", ... or NULL for an invalid role. */
const char *role_name(int role);
/* The role named by s[0..n), or -1. */
int role_parse(const char *s, size_t n);

enum op_id {
    OP_ROOM_CREATE,
    OP_JOIN,
    OP_ROLE_SET,
    OP_ROOM_UPDATE,
    OP_ITEM_ADD,
    OP_ITEM_UPDATE,
    OP_ITEM_MOVE,
    OP_ITEM_REMOVE,
    OP_ITEM_SPLIT,
    OP_FOCUS,
    OP_ROUND_START,
    OP_VOTE,
    OP_ROUND_REVEAL,
    OP_ROUND_ACCEPT,
    OP_ROUND_CANCEL,
    OP_TIMER_START,
    OP_TIMER_STOP,
    OP_ROLE_CLAIM,
    OP_TOKEN_ROTATE,
    OP_HINT,
    OP_KANO_ANSWER,
    OP_KANO_REVEAL,
    OP_KANO_RESET,
    OP_ORDER_PROPOSE,
    OP_ORDER_APPLY,
    OP_ITEM_UNSPLIT,
    OP_UNDO,
    OP_VISION_SET,
    OP_PERSONA_ADD,
    OP_PERSONA_UPDATE,
    OP_PERSONA_REMOVE,
    OP_OUTCOME_ADD,
    OP_OUTCOME_UPDATE,
    OP_OUTCOME_REMOVE,
    OP_MAP_ADD,
    OP_MAP_UPDATE,
    OP_MAP_MOVE,
    OP_MAP_REMOVE,
    OP_MAP_PLACE,
    OP__COUNT,
};

enum field_type {
    FT_STR,  /* string of 1..max bytes (0..max with FF_EMPTY_OK) */
    FT_UINT, /* integer 0..max */
    FT_BOOL,
    FT_STR_LIST, /* array of at most max strings of at most max2 bytes */
    FT_MAP,      /* a map, validated by the handler against another table */
    FT_MAP_LIST, /* array of 1..max maps */
    FT_DECK,     /* a built-in deck name or a custom list of cards */
    FT_NUM,      /* a number (integer or float) from -max to max */
};

#define FF_REQUIRED 1u /* must be present */
#define FF_NIL_OK   2u /* nil is a valid value */
#define FF_EMPTY_OK 4u /* an empty string is valid */
#define FF_SERVER   8u /* an item field only its own operation sets (item.add/update refuse it) */

struct field_spec {
    const char *name;
    enum field_type type;
    unsigned flags;
    uint64_t max;
    uint32_t max2;
    const char *const *choices; /* NULL-terminated allowed strings, or NULL */
    const char *doc;
};

#define OPF_NO_JOIN 1u /* may be sent before joining a room */
#define OPF_CHANGES 2u /* produces an event (changes persistent state) */

struct op_spec {
    const char *name;
    enum op_id id;
    unsigned roles; /* R_* mask; ignored for OPF_NO_JOIN ops */
    unsigned flags;
    const struct field_spec *fields; /* terminated by a NULL name */
    const char *event;               /* the event it produces, or NULL */
    const char *doc;
};

/* The spec of op name s[0..n), or NULL. */
const struct op_spec *ops_find(const char *s, size_t n);
const struct op_spec *ops_get(enum op_id id);

/* The item fields a client may send in item.add / item.split children
 * (FF_REQUIRED marks those item.add requires). */
extern const struct field_spec ops_item_fields[];

/* The fields of the product's records (server/product.h): vision.set's
 * `vision`, persona.add's `persona`, outcome.add's `outcome` (and the `set`
 * of the updates). */
extern const struct field_spec ops_vision_fields[];
extern const struct field_spec ops_persona_fields[];
extern const struct field_spec ops_outcome_fields[];

/* Checks map against fields: required fields present, types, lengths,
 * ranges and choices. With `partial`, FF_REQUIRED is not enforced (for
 * item.update's set). Unknown keys are refused when `strict`.
 * Returns 0 or RF_EBAD_REQUEST with a sentence in why (whysz bytes). */
int ops_validate_fields(const struct field_spec *fields, const msgpack_object *map, bool partial,
                        bool strict, char *why, size_t whysz);

/* Checks a request against its op's fields (unknown keys are ignored). */
int ops_validate(const struct op_spec *op, const msgpack_object *map, char *why, size_t whysz);

/* 1 if role may send op. */
bool ops_allows(const struct op_spec *op, int role);

/* Built-in decks: returns the NULL-terminated card list of deck `name`, or NULL. */
const char *const *deck_builtin(const char *name, size_t n);
#define DECK_MAX_CARDS 20
#define DECK_CARD_MAX  16

/* Prints the generated Markdown tables (operations, item fields). */
void ops_print_markdown(FILE *out);

#endif
