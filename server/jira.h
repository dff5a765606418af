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

#include "codec.h"

struct import;

/* The CSV of items (an array of backlog_item_pack maps) into out. */
void jira_export(const msgpack_object *items, struct codec_buf *out);

/* Reads the import's body as such a CSV into its items (import_int.h).
 * The header row names the columns (case-insensitive, in any order);
 * Summary is required, unknown columns are warned about and ignored.
 * Returns 0, RF_EBAD_REQUEST (the import's why says where), or RF_ENOMEM. */
int jira_import(struct import *im);

#endif
