/* Vision, personas and outcomes, what clients do (PROTOCOL.md "Vision,
 * personas and outcomes"); the model is in product.h.
 *
 * An item refers to a persona by its field `persona_id` and to outcomes by
 * its list `outcomes`: item.add, item.update and item.split accept only ids
 * the room has (product_check_item). Removing a persona or an outcome that
 * items refer to is refused (conflict, naming them) unless the request says
 * `force`: then the same event removes it from those items. The free-text
 * field `persona` ("As a ...") stays as it was: persona.add with `adopt`
 * refers to the new persona every item without one whose free text is its
 * name (the path from the old text to references). */
#ifndef REFINE_PRODUCT_OPS_H
#define REFINE_PRODUCT_OPS_H

#include <msgpack.h>
#include <stddef.h>

struct req;
struct room;

/* Checks the persona and outcome ids of a validated item map against the
 * room's: 0, or RF_EBAD_REQUEST with a sentence in why. */
int product_check_item(const struct room *r, const msgpack_object *map, char *why, size_t whysz);

int product_ops_vision_set(struct req *q);
int product_ops_persona_add(struct req *q);
int product_ops_persona_update(struct req *q);
int product_ops_persona_remove(struct req *q);
int product_ops_outcome_add(struct req *q);
int product_ops_outcome_update(struct req *q);
int product_ops_outcome_remove(struct req *q);

#endif
