#include "ops.h"

#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "codec.h"
#include "errors.h"

static const char *const ROLE_NAMES[ROLE__COUNT] = {"facilitator", "owner", "member", "observer"};

const char *role_name(int role)
{
    return role >= 0 && role < ROLE__COUNT ? ROLE_NAMES[role] : NULL;
}

int role_parse(const char *s, size_t n)
{
    for (int r = 0; r < ROLE__COUNT; r++)
        if (strlen(ROLE_NAMES[r]) == n && memcmp(ROLE_NAMES[r], s, n) == 0)
            return r;
    return -1;
}

#define ID_MAX    64
#define SEQ_MAX   9007199254740991u /* 2^53 - 1: exact in every client's numbers */
#define NAME_MAX_ 100
#define TITLE_MAX 200

static const char *const ROLE_CHOICES[] = {"facilitator", "owner", "member", "observer", NULL};
static const char *const KIND_CHOICES[] = {"story", "epic", "spike", "bug", "task", NULL};
static const char *const MOSCOW_CHOICES[] = {"must", "should", "could", "wont", NULL};
static const char *const STATUS_CHOICES[] = {"draft", "ready", "done", NULL};

const struct field_spec ops_item_fields[] = {
    {"title", FT_STR, FF_REQUIRED, TITLE_MAX, 0, NULL, "one line that names the item"},
    {"kind", FT_STR, 0, 16, 0, KIND_CHOICES, "default `story`"},
    {"persona", FT_STR, FF_EMPTY_OK, 1000, 0, NULL, "As a ..."},
    {"goal", FT_STR, FF_EMPTY_OK, 1000, 0, NULL, "I want ..."},
    {"benefit", FT_STR, FF_EMPTY_OK, 1000, 0, NULL, "so that ..."},
    {"notes", FT_STR, FF_EMPTY_OK, 10000, 0, NULL, "free text"},
    {"acceptance", FT_STR_LIST, 0, 50, 1000, NULL, "acceptance criteria"},
    {"estimate", FT_STR, FF_NIL_OK, 16, 0, NULL, "the card, or nil"},
    {"value", FT_UINT, FF_NIL_OK, 100, 0, NULL, "business value, or nil"},
    {"moscow", FT_STR, FF_NIL_OK, 8, 0, MOSCOW_CHOICES, "or nil"},
    {"status", FT_STR, 0, 8, 0, STATUS_CHOICES, "default `draft`; `split` is set by item.split"},
    {"labels", FT_STR_LIST, 0, 20, 50, NULL, "free labels"},
    {"business_value", FT_UINT, FF_NIL_OK, 20, 0, NULL,
     "WSJF: user and business value (the web client offers 1 2 3 5 8 13 20), or nil"},
    {"time_criticality", FT_UINT, FF_NIL_OK, 20, 0, NULL, "WSJF: how much waiting costs, or nil"},
    {"risk_reduction", FT_UINT, FF_NIL_OK, 20, 0, NULL,
     "WSJF: risk reduction or opportunity enablement, or nil"},
    {"persona_id", FT_STR, FF_NIL_OK, 16, 0, NULL,
     "the id of one of the room's personas (persona.add), or nil"},
    {"outcomes", FT_STR_LIST, 0, 10, 16, NULL, "ids of the room's outcomes the item serves"},
    {"step", FT_STR, FF_NIL_OK | FF_SERVER, ID_MAX, 0, NULL,
     "its story-map step, or nil (unplaced); set by `map.place` only"},
    {"slice", FT_STR, FF_NIL_OK | FF_SERVER, ID_MAX, 0, NULL,
     "its release slice, or nil (unplaced); set by `map.place` only"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

#define VISION_MAX 300
#define NUM_MAX    1000000000000000u /* 10^15: outcome values */

/* Geoffrey Moore's elevator pitch (design/refinement.md "Vision and outcomes"). */
const struct field_spec ops_vision_fields[] = {
    {"target", FT_STR, FF_EMPTY_OK, VISION_MAX, 0, NULL, "For (target customer)"},
    {"need", FT_STR, FF_EMPTY_OK, VISION_MAX, 0, NULL, "who (statement of the need)"},
    {"product", FT_STR, FF_EMPTY_OK, VISION_MAX, 0, NULL, "the (product name)"},
    {"product_category", FT_STR, FF_EMPTY_OK, VISION_MAX, 0, NULL, "is a (product category)"},
    {"benefit", FT_STR, FF_EMPTY_OK, VISION_MAX, 0, NULL, "that (key benefit)"},
    {"alternatives", FT_STR, FF_EMPTY_OK, VISION_MAX, 0, NULL, "unlike (primary alternatives)"},
    {"differentiator", FT_STR, FF_EMPTY_OK, VISION_MAX, 0, NULL,
     "our product (statement of primary differentiation)"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
const struct field_spec ops_persona_fields[] = {
    {"name", FT_STR, FF_REQUIRED, NAME_MAX_, 0, NULL, "the archetype's name"},
    {"description", FT_STR, FF_EMPTY_OK, 500, 0, NULL, "who they are"},
    {"goals", FT_STR_LIST, 0, 5, 200, NULL, "what they want to achieve"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
const struct field_spec ops_outcome_fields[] = {
    {"name", FT_STR, FF_REQUIRED, TITLE_MAX, 0, NULL, "the measurable goal"},
    {"metric", FT_STR, FF_EMPTY_OK, TITLE_MAX, 0, NULL, "what is measured"},
    {"unit", FT_STR, FF_EMPTY_OK, 16, 0, NULL, "of the values, e.g. `%`"},
    {"current", FT_NUM, FF_NIL_OK, NUM_MAX, 0, NULL, "the value today, or nil"},
    {"target", FT_NUM, FF_NIL_OK, NUM_MAX, 0, NULL, "the value aimed at (above or below current)"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const struct field_spec F_ROOM_CREATE[] = {
    {"name", FT_STR, FF_REQUIRED, TITLE_MAX, 0, NULL, "the room's name"},
    {"deck", FT_DECK, 0, DECK_MAX_CARDS, DECK_CARD_MAX, NULL, "deck name or list of cards"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_JOIN[] = {
    {"room", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "room id"},
    {"token", FT_STR, 0, ID_MAX, 0, NULL, "a role token (not needed with pid + secret)"},
    {"name", FT_STR, FF_REQUIRED, NAME_MAX_, 0, NULL, "display name"},
    {"since", FT_UINT, 0, SEQ_MAX, 0, NULL, "last seq the client has"},
    {"epoch", FT_STR, 0, ID_MAX, 0, NULL, "the room's epoch that `since` belongs to"},
    {"pid", FT_STR, 0, ID_MAX, 0, NULL, "participant id, to rejoin"},
    {"secret", FT_STR, 0, ID_MAX, 0, NULL, "participant secret, to rejoin"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_ROLE_SET[] = {
    {"pid", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "participant id"},
    {"role", FT_STR, FF_REQUIRED, 16, 0, ROLE_CHOICES, "new role"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_ROOM_UPDATE[] = {
    {"name", FT_STR, 0, TITLE_MAX, 0, NULL, "new name"},
    {"deck", FT_DECK, 0, DECK_MAX_CARDS, DECK_CARD_MAX, NULL, "deck name or list of cards"},
    {"auto_reveal", FT_BOOL, 0, 0, 0, NULL, "reveal when every online voter has voted"},
    {"reveal_on_timer", FT_BOOL, 0, 0, 0, NULL, "reveal the open round when the timer ends"},
    {"facilitator_grace", FT_UINT, 0, 3600, 0, NULL,
     "seconds without an online facilitator before others may claim (default 120)"},
    {"capacity", FT_UINT, 0, 10000, 0, NULL,
     "points of the backlog's top, for its health (1..10000, default 40)"},
    {"size_limit", FT_UINT, 0, 1000, 0, NULL,
     "the largest estimate an item in the top should have (1..1000, default 13)"},
    {"stale_days", FT_UINT, 0, 3650, 0, NULL,
     "days untouched after which an item is stale (1..3650, default 90)"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_ITEM_ADD[] = {
    {"item", FT_MAP, FF_REQUIRED, 0, 0, NULL, "item fields"},
    {"after", FT_STR, FF_NIL_OK, ID_MAX, 0, NULL, "absent: bottom; nil: top; id: below it"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_ITEM_UPDATE[] = {
    {"item", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "item id"},
    {"set", FT_MAP, FF_REQUIRED, 0, 0, NULL, "item fields to change"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_ITEM_MOVE[] = {
    {"item", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "item id"},
    {"after", FT_STR, FF_REQUIRED | FF_NIL_OK, ID_MAX, 0, NULL, "nil: top; id: below it"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_ITEM[] = {
    {"item", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "item id"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
/* The splitting patterns of the domain notes (design/refinement.md), by stable id;
 * PROTOCOL.md "Splitting patterns" gives each its hint. */
static const char *const PATTERN_CHOICES[] = {
    "workflow",  "business-rules", "happy-path",  "simple-complex", "data",
    "interface", "operations",     "performance", "spike",          NULL};
static const struct field_spec F_ITEM_SPLIT[] = {
    {"item", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "item id"},
    {"children", FT_MAP_LIST, FF_REQUIRED, 20, 0, NULL, "item maps, in order"},
    {"pattern", FT_STR, 0, 16, 0, PATTERN_CHOICES, "the splitting pattern used"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_FOCUS[] = {
    {"item", FT_STR, FF_REQUIRED | FF_NIL_OK, ID_MAX, 0, NULL, "item id or nil"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const char *const CONFIDENCE_CHOICES[] = {"low", "medium", "high", NULL};

static const struct field_spec F_ROUND_START[] = {
    {"item", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "the item to estimate"},
    {"deck", FT_DECK, 0, DECK_MAX_CARDS, DECK_CARD_MAX, NULL, "this round's deck (room's default)"},
    {"anonymous", FT_BOOL, 0, 0, 0, NULL, "reveal the distribution without names"},
    {"deadline", FT_UINT, 0, SEQ_MAX, 0, NULL,
     "ms since the epoch: votes close then (asynchronous pre-estimation)"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_VOTE[] = {
    {"round", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "round id"},
    {"card", FT_STR, FF_REQUIRED | FF_NIL_OK, DECK_CARD_MAX, 0, NULL,
     "a card of the deck; nil withdraws"},
    {"confidence", FT_STR, 0, 8, 0, CONFIDENCE_CHOICES, "how sure the voter is"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_ROUND[] = {
    {"round", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "round id"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_ROUND_ACCEPT[] = {
    {"round", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "round id"},
    {"estimate", FT_STR, FF_REQUIRED, DECK_CARD_MAX, 0, NULL, "a card of the round's deck"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_TIMER_START[] = {
    {"seconds", FT_UINT, FF_REQUIRED, 3600, 0, NULL, "1..3600"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_TOKEN_ROTATE[] = {
    {"role", FT_STR, FF_REQUIRED, 16, 0, ROLE_CHOICES, "whose invite token to replace"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const char *const HINT_CHOICES[] = {"editing", "dragging", NULL};
static const struct field_spec F_HINT[] = {
    {"item", FT_STR, FF_REQUIRED | FF_NIL_OK, ID_MAX, 0, NULL, "item id, or nil to clear"},
    {"what", FT_STR, FF_REQUIRED | FF_NIL_OK, 16, 0, HINT_CHOICES,
     "what you are doing to it, or nil to clear"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const char *const KANO_CHOICES[] = {"like",     "expect",  "neutral",
                                           "tolerate", "dislike", NULL};
static const struct field_spec F_KANO_ANSWER[] = {
    {"item", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "item id"},
    {"functional", FT_STR, FF_REQUIRED, 16, 0, KANO_CHOICES,
     "how you feel if the item's feature is there"},
    {"dysfunctional", FT_STR, FF_REQUIRED, 16, 0, KANO_CHOICES, "how you feel if it is not there"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const char *const PRIO_METHOD_CHOICES[] = {"value_effort", "wsjf", "moscow_value", NULL};
static const struct field_spec F_ORDER_PROPOSE[] = {
    {"method", FT_STR, FF_REQUIRED, 16, 0, PRIO_METHOD_CHOICES, "how to order the open items"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_ORDER_APPLY[] = {
    {"base", FT_STR, FF_REQUIRED, 16, 0, NULL, "the proposal's `base`: refused when it is stale"},
    {"method", FT_STR, 0, 16, 0, PRIO_METHOD_CHOICES,
     "apply the proposal of this method (or give `order`)"},
    {"order", FT_STR_LIST, 0, 10000, ID_MAX, NULL,
     "every open item's id, in the new order (or give `method`)"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_UNDO[] = {
    {"seq", FT_UINT, 0, SEQ_MAX, 0, NULL,
     "the seq of the change to undo: refused unless it is your last undoable one"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_VISION_SET[] = {
    {"vision", FT_MAP, FF_REQUIRED, 0, 0, NULL, "vision fields to change"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_PERSONA_ADD[] = {
    {"persona", FT_MAP, FF_REQUIRED, 0, 0, NULL, "persona fields"},
    {"adopt", FT_BOOL, 0, 0, 0, NULL,
     "refer to it every item without one whose free-text `persona` is its name"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_PERSONA_UPDATE[] = {
    {"persona", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "persona id"},
    {"set", FT_MAP, FF_REQUIRED, 0, 0, NULL, "persona fields to change"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_PERSONA_REMOVE[] = {
    {"persona", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "persona id"},
    {"force", FT_BOOL, 0, 0, 0, NULL, "remove it even if items refer to it (they lose it)"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_OUTCOME_ADD[] = {
    {"outcome", FT_MAP, FF_REQUIRED, 0, 0, NULL, "outcome fields"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_OUTCOME_UPDATE[] = {
    {"outcome", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "outcome id"},
    {"set", FT_MAP, FF_REQUIRED, 0, 0, NULL, "outcome fields to change"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_OUTCOME_REMOVE[] = {
    {"outcome", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "outcome id"},
    {"force", FT_BOOL, 0, 0, 0, NULL, "remove it even if items serve it (they lose it)"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
/* Story map (server/storymap.h has the same limits). */
#define MAP_NAME_MAX     100
#define MAP_CAPACITY_MAX 10000
static const char *const MAP_KIND_CHOICES[] = {"activity", "step", "slice", NULL};
static const struct field_spec F_MAP_ADD[] = {
    {"kind", FT_STR, FF_REQUIRED, 16, 0, MAP_KIND_CHOICES, "what to add"},
    {"name", FT_STR, FF_REQUIRED, MAP_NAME_MAX, 0, NULL, "its name"},
    {"activity", FT_STR, 0, ID_MAX, 0, NULL, "a step's activity (required for a step)"},
    {"after", FT_STR, FF_NIL_OK, ID_MAX, 0, NULL,
     "absent: last; nil: first; id: below that sibling"},
    {"capacity", FT_UINT, FF_NIL_OK, MAP_CAPACITY_MAX, 0, NULL, "a slice's capacity in points"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_MAP_UPDATE[] = {
    {"node", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "an activity, step or slice (its id)"},
    {"name", FT_STR, 0, MAP_NAME_MAX, 0, NULL, "new name"},
    {"capacity", FT_UINT, FF_NIL_OK, MAP_CAPACITY_MAX, 0, NULL,
     "a slice's capacity in points, nil for none"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_MAP_MOVE[] = {
    {"node", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "an activity, step or slice (its id)"},
    {"after", FT_STR, FF_REQUIRED | FF_NIL_OK, ID_MAX, 0, NULL,
     "nil: first; id: below that sibling"},
    {"activity", FT_STR, 0, ID_MAX, 0, NULL, "a step's new activity (default: its own)"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_MAP_REMOVE[] = {
    {"node", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "an activity, step or slice (its id)"},
    {"force", FT_BOOL, 0, 0, 0, NULL,
     "confirm removing one that holds items (they become unplaced)"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_MAP_PLACE[] = {
    {"item", FT_STR, FF_REQUIRED, ID_MAX, 0, NULL, "item id"},
    {"step", FT_STR, FF_REQUIRED | FF_NIL_OK, ID_MAX, 0, NULL, "a step, or nil to unplace"},
    {"slice", FT_STR, FF_REQUIRED | FF_NIL_OK, ID_MAX, 0, NULL,
     "a release slice, or nil to unplace"},
    {NULL, 0, 0, 0, 0, NULL, NULL},
};
static const struct field_spec F_NONE[] = {
    {NULL, 0, 0, 0, 0, NULL, NULL},
};

static const struct op_spec OPS[OP__COUNT] = {
    {"room.create", OP_ROOM_CREATE, 0, OPF_NO_JOIN, F_ROOM_CREATE, NULL, "create a room"},
    {"join", OP_JOIN, 0, OPF_NO_JOIN, F_JOIN, NULL, "join a room"},
    {"role.set", OP_ROLE_SET, R_FAC, OPF_CHANGES, F_ROLE_SET, "participant.updated",
     "change a participant's role"},
    {"room.update", OP_ROOM_UPDATE, R_FAC, OPF_CHANGES, F_ROOM_UPDATE, "room.updated",
     "change room settings"},
    {"item.add", OP_ITEM_ADD, R_FAC | R_OWN | R_MEM, OPF_CHANGES, F_ITEM_ADD, "item.added",
     "add a backlog item"},
    {"item.update", OP_ITEM_UPDATE, R_FAC | R_OWN | R_MEM, OPF_CHANGES, F_ITEM_UPDATE,
     "item.updated", "change item fields"},
    {"item.move", OP_ITEM_MOVE, R_FAC | R_OWN, OPF_CHANGES, F_ITEM_MOVE, "item.moved",
     "reorder the backlog"},
    {"item.remove", OP_ITEM_REMOVE, R_FAC | R_OWN, OPF_CHANGES, F_ITEM, "item.removed",
     "remove an item"},
    {"item.split", OP_ITEM_SPLIT, R_FAC | R_OWN | R_MEM, OPF_CHANGES, F_ITEM_SPLIT, "item.split",
     "split an item into children"},
    {"focus", OP_FOCUS, R_FAC, OPF_CHANGES, F_FOCUS, "focus", "point everyone at an item"},
    {"round.start", OP_ROUND_START, R_FAC, OPF_CHANGES, F_ROUND_START, "round.started",
     "open a planning-poker round on an item"},
    {"vote", OP_VOTE, R_FAC | R_OWN | R_MEM, OPF_CHANGES, F_VOTE, "voted",
     "cast, change or withdraw a secret vote"},
    {"round.reveal", OP_ROUND_REVEAL, R_FAC, OPF_CHANGES, F_ROUND, "round.revealed",
     "show every vote and the statistics"},
    {"round.accept", OP_ROUND_ACCEPT, R_FAC | R_OWN, OPF_CHANGES, F_ROUND_ACCEPT, "round.accepted",
     "record the estimate on the item"},
    {"round.cancel", OP_ROUND_CANCEL, R_FAC, OPF_CHANGES, F_ROUND, "round.cancelled",
     "drop a round (its votes stay secret)"},
    {"timer.start", OP_TIMER_START, R_FAC, OPF_CHANGES, F_TIMER_START, "timer",
     "start a countdown for everyone"},
    {"timer.stop", OP_TIMER_STOP, R_FAC, OPF_CHANGES, F_NONE, "timer", "stop the countdown"},
    {"role.claim", OP_ROLE_CLAIM, R_OWN | R_MEM, OPF_CHANGES, F_NONE, "participant.updated",
     "become facilitator when none has been online for the grace period"},
    {"token.rotate", OP_TOKEN_ROTATE, R_FAC, OPF_CHANGES, F_TOKEN_ROTATE, "token.rotated",
     "replace a role's invite token (old links stop working)"},
    {"hint", OP_HINT, R_FAC | R_OWN | R_MEM, 0, F_HINT, NULL,
     "show the others what you are editing or dragging (ephemeral: `ok` without seq, a notice)"},
    {"kano.answer", OP_KANO_ANSWER, R_ANY, OPF_CHANGES, F_KANO_ANSWER, "kano.answered",
     "answer (or change one's answer to) the Kano survey of an item, secretly"},
    {"kano.reveal", OP_KANO_REVEAL, R_FAC, OPF_CHANGES, F_ITEM, "kano.revealed",
     "show an item's Kano results: counts, category, coefficients"},
    {"kano.reset", OP_KANO_RESET, R_FAC, OPF_CHANGES, F_ITEM, "kano.reset",
     "drop every answer of an item's survey and open it again"},
    {"order.propose", OP_ORDER_PROPOSE, R_ANY, 0, F_ORDER_PROPOSE, NULL,
     "propose an order of the backlog by a method, applying nothing (`ok` without seq)"},
    {"order.apply", OP_ORDER_APPLY, R_FAC | R_OWN, OPF_CHANGES, F_ORDER_APPLY, "order.applied",
     "apply a proposed order to the backlog, in one event"},
    {"item.unsplit", OP_ITEM_UNSPLIT, R_FAC | R_OWN | R_MEM, OPF_CHANGES, F_ITEM, "item.unsplit",
     "merge an untouched split back: its children go, the parent's status comes back"},
    {"undo", OP_UNDO, R_FAC | R_OWN | R_MEM, OPF_CHANGES, F_UNDO, "item.* with `undo`",
     "undo your own last backlog change if nothing changed on top of it since"},
    {"vision.set", OP_VISION_SET, R_OWN, OPF_CHANGES, F_VISION_SET, "vision.updated",
     "change fields of the product vision"},
    {"persona.add", OP_PERSONA_ADD, R_FAC | R_OWN, OPF_CHANGES, F_PERSONA_ADD, "persona.added",
     "add a persona (optionally adopting the items that name it in free text)"},
    {"persona.update", OP_PERSONA_UPDATE, R_FAC | R_OWN, OPF_CHANGES, F_PERSONA_UPDATE,
     "persona.updated", "change a persona's fields"},
    {"persona.remove", OP_PERSONA_REMOVE, R_FAC | R_OWN, OPF_CHANGES, F_PERSONA_REMOVE,
     "persona.removed", "remove a persona (with `force`, also from the items that refer to it)"},
    {"outcome.add", OP_OUTCOME_ADD, R_FAC | R_OWN, OPF_CHANGES, F_OUTCOME_ADD, "outcome.added",
     "add a measurable outcome"},
    {"outcome.update", OP_OUTCOME_UPDATE, R_FAC | R_OWN, OPF_CHANGES, F_OUTCOME_UPDATE,
     "outcome.updated", "change an outcome's fields"},
    {"outcome.remove", OP_OUTCOME_REMOVE, R_FAC | R_OWN, OPF_CHANGES, F_OUTCOME_REMOVE,
     "outcome.removed", "remove an outcome (with `force`, also from the items that serve it)"},
    {"map.add", OP_MAP_ADD, R_FAC | R_OWN, OPF_CHANGES, F_MAP_ADD, "map.added",
     "add an activity, a step or a release slice to the story map"},
    {"map.update", OP_MAP_UPDATE, R_FAC | R_OWN, OPF_CHANGES, F_MAP_UPDATE, "map.updated",
     "rename an activity, step or slice, or set a slice's capacity"},
    {"map.move", OP_MAP_MOVE, R_FAC | R_OWN, OPF_CHANGES, F_MAP_MOVE, "map.moved",
     "reorder an activity, step or slice (a step also to another activity)"},
    {"map.remove", OP_MAP_REMOVE, R_FAC | R_OWN, OPF_CHANGES, F_MAP_REMOVE, "map.removed",
     "remove an activity (with its steps), a step or a slice; its items become unplaced"},
    {"map.place", OP_MAP_PLACE, R_FAC | R_OWN | R_MEM, OPF_CHANGES, F_MAP_PLACE, "map.placed",
     "place an item on a (step, slice) cell of the story map, or unplace it"},
};

const struct op_spec *ops_find(const char *s, size_t n)
{
    for (int i = 0; i < OP__COUNT; i++)
        if (strlen(OPS[i].name) == n && memcmp(OPS[i].name, s, n) == 0)
            return &OPS[i];
    return NULL;
}

const struct op_spec *ops_get(enum op_id id)
{
    return (unsigned)id < OP__COUNT ? &OPS[id] : NULL;
}

bool ops_allows(const struct op_spec *op, int role)
{
    if (op->flags & OPF_NO_JOIN)
        return true;
    return role >= 0 && role < ROLE__COUNT && (op->roles & (1u << role));
}

static const char *const DECK_FIBONACCI[] = {"0",  "1",  "2",  "3",  "5", "8",      "13",
                                             "21", "34", "55", "89", "?", "coffee", NULL};
static const char *const DECK_MODIFIED[] = {"0",  "½",  "1",  "2",   "3", "5",      "8",
                                            "13", "20", "40", "100", "?", "coffee", NULL};
static const char *const DECK_TSHIRT[] = {"XS", "S", "M", "L", "XL", "XXL", "?", "coffee", NULL};
static const char *const DECK_POWERS[] = {"0",  "1",  "2", "4",      "8", "16",
                                          "32", "64", "?", "coffee", NULL};

const char *const *deck_builtin(const char *name, size_t n)
{
    static const struct {
        const char *name;
        const char *const *cards;
    } decks[] = {{"fibonacci", DECK_FIBONACCI},
                 {"modified", DECK_MODIFIED},
                 {"tshirt", DECK_TSHIRT},
                 {"powers", DECK_POWERS}};
    for (size_t i = 0; i < sizeof decks / sizeof decks[0]; i++)
        if (strlen(decks[i].name) == n && memcmp(decks[i].name, name, n) == 0)
            return decks[i].cards;
    return NULL;
}

static bool in_choices(const char *const *choices, const char *s, size_t n)
{
    for (; *choices; choices++)
        if (strlen(*choices) == n && memcmp(*choices, s, n) == 0)
            return true;
    return false;
}

/* Writes the choices into buf as "a, b, c", each between `quote`s; returns the length. */
static size_t choices_text(const char *const *choices, const char *quote, char *buf, size_t n)
{
    size_t off = 0;
    buf[0] = '\0';
    for (const char *const *c = choices; *c && off < n; c++)
        off += (size_t)snprintf(buf + off, n - off, "%s%s%s%s", c == choices ? "" : ", ", quote, *c,
                                quote);
    return off < n ? off : n;
}

#define FAIL(...)                                                                                  \
    do {                                                                                           \
        snprintf(why, whysz, __VA_ARGS__);                                                         \
        return RF_EBAD_REQUEST;                                                                    \
    } while (0)

static int check_deck(const struct field_spec *f, const msgpack_object *v, char *why, size_t whysz)
{
    if (v->type == MSGPACK_OBJECT_STR) {
        if (!deck_builtin(v->via.str.ptr, v->via.str.size))
            FAIL("Field '%s' must be fibonacci, modified, tshirt, powers or a list of cards.",
                 f->name);
        return 0;
    }
    if (v->type != MSGPACK_OBJECT_ARRAY)
        FAIL("Field '%s' must be a deck name or a list of cards.", f->name);
    uint32_t n = v->via.array.size;
    if (n < 1 || n > f->max)
        FAIL("A custom deck holds 1 to %u cards; this one has %u.", (unsigned)f->max, n);
    for (uint32_t i = 0; i < n; i++) {
        const msgpack_object *c = &v->via.array.ptr[i];
        if (c->type != MSGPACK_OBJECT_STR || c->via.str.size < 1 || c->via.str.size > f->max2)
            FAIL("Every card of a custom deck is a string of 1 to %u bytes.", f->max2);
        for (uint32_t k = 0; k < i; k++) {
            const msgpack_object *d = &v->via.array.ptr[k];
            if (d->via.str.size == c->via.str.size &&
                memcmp(d->via.str.ptr, c->via.str.ptr, c->via.str.size) == 0)
                FAIL("The custom deck has the card '%.*s' twice; cards must be distinct.",
                     (int)c->via.str.size, c->via.str.ptr);
        }
    }
    return 0;
}

static int check_field(const struct field_spec *f, const msgpack_object *v, char *why, size_t whysz)
{
    if (v->type == MSGPACK_OBJECT_NIL) {
        if (f->flags & FF_NIL_OK)
            return 0;
        FAIL("Field '%s' may not be nil.", f->name);
    }
    switch (f->type) {
    case FT_STR:
        if (v->type != MSGPACK_OBJECT_STR)
            FAIL("Field '%s' must be a string.", f->name);
        if (v->via.str.size == 0 && !(f->flags & FF_EMPTY_OK))
            FAIL("Field '%s' may not be empty.", f->name);
        if (v->via.str.size > f->max)
            FAIL("Field '%s' is %u bytes long; the limit is %u.", f->name, v->via.str.size,
                 (unsigned)f->max);
        if (f->choices && !in_choices(f->choices, v->via.str.ptr, v->via.str.size)) {
            char list[256];
            choices_text(f->choices, "", list, sizeof list);
            FAIL("Field '%s' has the unknown value '%.*s'; it is one of: %s.", f->name,
                 (int)v->via.str.size, v->via.str.ptr, list);
        }
        return 0;
    case FT_UINT:
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 > f->max)
            FAIL("Field '%s' must be a whole number from 0 to %" PRIu64 ".", f->name, f->max);
        return 0;
    case FT_BOOL:
        if (v->type != MSGPACK_OBJECT_BOOLEAN)
            FAIL("Field '%s' must be true or false.", f->name);
        return 0;
    case FT_STR_LIST:
        if (v->type != MSGPACK_OBJECT_ARRAY)
            FAIL("Field '%s' must be a list of strings.", f->name);
        if (v->via.array.size > f->max)
            FAIL("Field '%s' holds at most %u entries.", f->name, (unsigned)f->max);
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            const msgpack_object *e = &v->via.array.ptr[i];
            if (e->type != MSGPACK_OBJECT_STR || e->via.str.size > f->max2)
                FAIL("Every entry of '%s' is a string of at most %u bytes.", f->name, f->max2);
        }
        return 0;
    case FT_MAP:
        if (v->type != MSGPACK_OBJECT_MAP)
            FAIL("Field '%s' must be a map.", f->name);
        return 0;
    case FT_MAP_LIST:
        if (v->type != MSGPACK_OBJECT_ARRAY || v->via.array.size < 1 || v->via.array.size > f->max)
            FAIL("Field '%s' must be a list of 1 to %u maps.", f->name, (unsigned)f->max);
        for (uint32_t i = 0; i < v->via.array.size; i++)
            if (v->via.array.ptr[i].type != MSGPACK_OBJECT_MAP)
                FAIL("Every entry of '%s' must be a map.", f->name);
        return 0;
    case FT_DECK:
        return check_deck(f, v, why, whysz);
    case FT_NUM: {
        double d = v->type == MSGPACK_OBJECT_POSITIVE_INTEGER   ? (double)v->via.u64
                   : v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? (double)v->via.i64
                   : v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64
                       ? v->via.f64
                       : NAN;
        if (!(d >= -(double)f->max && d <= (double)f->max))
            FAIL("Field '%s' must be a number from -%" PRIu64 " to %" PRIu64 ".", f->name, f->max,
                 f->max);
        return 0;
    }
    }
    FAIL("Field '%s' has an unknown type.", f->name);
}

int ops_validate_fields(const struct field_spec *fields, const msgpack_object *map, bool partial,
                        bool strict, char *why, size_t whysz)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        FAIL("Expected a map.");
    if (strict) {
        for (uint32_t i = 0; i < map->via.map.size; i++) {
            const msgpack_object *k = &map->via.map.ptr[i].key;
            if (k->type != MSGPACK_OBJECT_STR)
                FAIL("Every key must be a string.");
            const struct field_spec *f = fields;
            while (f->name && !codec_str_eq_n(k->via.str.ptr, k->via.str.size, f->name))
                f++;
            if (!f->name)
                FAIL("Field '%.*s' cannot be set here.", (int)k->via.str.size, k->via.str.ptr);
            if (f->flags & FF_SERVER)
                FAIL("Field '%s' cannot be set here; use its own operation (see PROTOCOL.md).",
                     f->name);
            if (check_field(f, &map->via.map.ptr[i].val, why, whysz)) /* a repeated key too */
                return RF_EBAD_REQUEST;
        }
    }
    /* Every occurrence of a field's key: a map may repeat one, and who
     * applies the map (backlog_item_apply) takes each of them. */
    for (const struct field_spec *f = fields; f->name; f++) {
        bool found = false;
        for (uint32_t i = 0; i < map->via.map.size; i++) {
            const msgpack_object_kv *kv = &map->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR ||
                !codec_str_eq_n(kv->key.via.str.ptr, kv->key.via.str.size, f->name))
                continue;
            found = true;
            int rc = check_field(f, &kv->val, why, whysz);
            if (rc)
                return rc;
        }
        if (!found && (f->flags & FF_REQUIRED) && !partial)
            FAIL("Field '%s' is required.", f->name);
    }
    return 0;
}

int ops_validate(const struct op_spec *op, const msgpack_object *map, char *why, size_t whysz)
{
    return ops_validate_fields(op->fields, map, false, false, why, whysz);
}

static const char *type_doc(const struct field_spec *f, char *buf, size_t n)
{
    const char *nil = (f->flags & FF_NIL_OK) ? " or nil" : "";
    switch (f->type) {
    case FT_STR:
        if (f->choices) {
            size_t off = choices_text(f->choices, "`", buf, n);
            if (off < n)
                snprintf(buf + off, n - off, "%s", nil);
            return buf;
        }
        snprintf(buf, n, "string, %s..%u bytes%s", (f->flags & FF_EMPTY_OK) ? "0" : "1",
                 (unsigned)f->max, nil);
        return buf;
    case FT_UINT:
        snprintf(buf, n, "integer 0..%" PRIu64 "%s", f->max, nil);
        return buf;
    case FT_BOOL:
        return "boolean";
    case FT_STR_LIST:
        snprintf(buf, n, "array of at most %u strings of at most %u bytes", (unsigned)f->max,
                 f->max2);
        return buf;
    case FT_MAP:
        return "map";
    case FT_MAP_LIST:
        snprintf(buf, n, "array of 1..%u maps", (unsigned)f->max);
        return buf;
    case FT_DECK:
        snprintf(buf, n, "deck name, or array of 1..%u distinct cards of 1..%u bytes",
                 (unsigned)f->max, f->max2);
        return buf;
    case FT_NUM:
        snprintf(buf, n, "number -10^15..10^15%s", nil);
        return buf;
    }
    return "?";
}

void ops_print_markdown(FILE *out)
{
    char buf[256];
    fprintf(out, "<!-- BEGIN GENERATED: operations -->\n");
    fprintf(out, "| op | roles | event | what it does |\n| --- | --- | --- | --- |\n");
    for (int i = 0; i < OP__COUNT; i++) {
        const struct op_spec *op = &OPS[i];
        fprintf(out, "| `%s` | ", op->name);
        if (op->flags & OPF_NO_JOIN) {
            fprintf(out, "anyone (no join needed)");
        } else {
            int first = 1;
            for (int r = 0; r < ROLE__COUNT; r++)
                if (op->roles & (1u << r)) {
                    fprintf(out, "%s%s", first ? "" : ", ", role_name(r));
                    first = 0;
                }
        }
        fprintf(out, " | %s%s%s | %s |\n", op->event ? "`" : "", op->event ? op->event : "-",
                op->event ? "`" : "", op->doc);
    }
    fprintf(out, "\nWho may send what (the server answers `forbidden` to every other "
                 "combination):\n\n| op | facilitator | owner | member | observer |\n"
                 "| --- | --- | --- | --- | --- |\n");
    for (int i = 0; i < OP__COUNT; i++) {
        fprintf(out, "| `%s` |", OPS[i].name);
        for (int r = 0; r < ROLE__COUNT; r++)
            fprintf(out, " %s |", ops_allows(&OPS[i], r) ? "yes" : "no");
        fprintf(out, "\n");
    }
    fprintf(out, "\nFields of each request (besides `t` and `id`). Every string, and every "
                 "string inside a list or\na map, is UTF-8 without a NUL byte (see "
                 "[Transport](#transport)); lengths are in bytes:\n\n");
    fprintf(out, "| op | field | type | required | meaning |\n| --- | --- | --- | --- | --- |\n");
    for (int i = 0; i < OP__COUNT; i++)
        for (const struct field_spec *f = OPS[i].fields; f->name; f++)
            fprintf(out, "| `%s` | `%s` | %s | %s | %s |\n", OPS[i].name, f->name,
                    type_doc(f, buf, sizeof buf), (f->flags & FF_REQUIRED) ? "yes" : "no", f->doc);
    fprintf(out, "\nItem fields a client may send (`item.add`'s `item`, `item.update`'s `set`, "
                 "`item.split`'s `children`):\n\n");
    fprintf(out, "| field | type | required in item.add | meaning |\n| --- | --- | --- | --- |\n");
    for (const struct field_spec *f = ops_item_fields; f->name; f++)
        fprintf(out, "| `%s` | %s | %s | %s |\n", f->name, type_doc(f, buf, sizeof buf),
                (f->flags & FF_REQUIRED) ? "yes" : "no", f->doc);
    static const struct {
        const char *what;
        const struct field_spec *fields;
    } product[] = {{"The vision's fields (`vision.set`'s `vision`)", ops_vision_fields},
                   {"A persona's fields (`persona.add`'s `persona`, `persona.update`'s `set`)",
                    ops_persona_fields},
                   {"An outcome's fields (`outcome.add`'s `outcome`, `outcome.update`'s `set`)",
                    ops_outcome_fields}};
    for (size_t i = 0; i < sizeof product / sizeof product[0]; i++) {
        fprintf(out,
                "\n%s:\n\n| field | type | required in add | meaning |\n"
                "| --- | --- | --- | --- |\n",
                product[i].what);
        for (const struct field_spec *f = product[i].fields; f->name; f++)
            fprintf(out, "| `%s` | %s | %s | %s |\n", f->name, type_doc(f, buf, sizeof buf),
                    (f->flags & FF_REQUIRED) ? "yes" : "no", f->doc);
    }
    fprintf(out, "<!-- END GENERATED: operations -->\n");
}
