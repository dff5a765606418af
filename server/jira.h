/* The backlog as a CSV that Jira's CSV importer accepts (export format
 * "jira"), and the reading of such a CSV (import). One row per item, in
 * rank order, with the columns
 *
 *   Issue Id, Parent, Summary, Issue Type, Status, Priority, Story Points,
 *   Labels, Description, Acceptance Criteria, MoSCoW, Business Value,
 *   Persona, Goal, Benefit
 *
 * then one column per other item field of protocol/ops.c's table, named by
 * the field. Issue Id is the item's number (i12: 12) and Parent its parent's
 * Issue Id, as Jira links sub-tasks. Labels are separated by spaces (Jira's
 * labels have none; a space or backslash inside one is escaped with a
 * backslash), acceptance criteria by "; " (a ';' or backslash inside one is
 * escaped). Priority is derived from MoSCoW (must Highest, should High,
 * could Medium, wont Lowest); an import reads MoSCoW, or Priority when the
 * file has no MoSCoW column. Cells that a spreadsheet would run as a formula
 * start with an apostrophe (export.h), which an import takes off. */
#ifndef REFINE_JIRA_H
#define REFINE_JIRA_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "codec.h"

enum jira_col_kind { C_FIELD, C_ID, C_PARENT, C_PRIORITY };

struct jira_col {
    const char *name;
    enum jira_col_kind kind;
    int field;    /* C_FIELD: its enum item_field */
    char sep;     /* a list's separator: ' ' (labels) or ';' ("; ") */
    bool capital; /* written with a capital first letter (Issue Type) */
};

/* The fixed columns, in the export's order (JIRA_COLS' indices). */
enum jira_column {
    JC_ID,
    JC_PARENT,
    JC_SUMMARY,
    JC_TYPE,
    JC_STATUS,
    JC_PRIORITY,
    JC_POINTS,
    JC_LABELS,
    JC_DESCRIPTION,
    JC_ACCEPTANCE,
    JC_MOSCOW,
    JC_VALUE,
    JC_PERSONA,
    JC_GOAL,
    JC_BENEFIT,
};
#define JIRA_NCOLS 15
extern const struct jira_col JIRA_COLS[JIRA_NCOLS];

/* MoSCoW and Jira's priorities, both ways (the first row of a MoSCoW word
 * is the priority written). */
struct jira_priority {
    const char *priority, *moscow;
};
extern const struct jira_priority JIRA_PRIORITIES[];
extern const size_t JIRA_NPRIORITIES;

/* Whether item field f has a fixed column (else it gets one named by it). */
bool jira_fixed_column(size_t f);

/* The CSV of items (an array of backlog_item_pack maps) into out. */
void jira_export(const msgpack_object *items, struct codec_buf *out);

#endif
