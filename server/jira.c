#include "jira.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backlog.h"
#include "csv.h"
#include "errors.h"
#include "ops.h"

const struct jira_col JIRA_COLS[JIRA_NCOLS] = {
    {"Issue Id", C_ID, -1, 0, false},
    {"Parent", C_PARENT, -1, 0, false},
    {"Summary", C_FIELD, ITEM_F_TITLE, 0, false},
    {"Issue Type", C_FIELD, ITEM_F_KIND, 0, true},
    {"Status", C_FIELD, ITEM_F_STATUS, 0, false},
    {"Priority", C_PRIORITY, -1, 0, false},
    {"Story Points", C_FIELD, ITEM_F_ESTIMATE, 0, false},
    {"Labels", C_FIELD, ITEM_F_LABELS, ' ', false},
    {"Description", C_FIELD, ITEM_F_NOTES, 0, false},
    {"Acceptance Criteria", C_FIELD, ITEM_F_ACCEPTANCE, ';', false},
    {"MoSCoW", C_FIELD, ITEM_F_MOSCOW, 0, false},
    {"Business Value", C_FIELD, ITEM_F_VALUE, 0, false},
    {"Persona", C_FIELD, ITEM_F_PERSONA, 0, false},
    {"Goal", C_FIELD, ITEM_F_GOAL, 0, false},
    {"Benefit", C_FIELD, ITEM_F_BENEFIT, 0, false},
};
_Static_assert(JC_BENEFIT + 1 == JIRA_NCOLS, "enum jira_column names JIRA_COLS");

/* MoSCoW and Jira's priorities, both ways (the first of a MoSCoW word is
 * the one written). */
const struct jira_priority JIRA_PRIORITIES[] = {
    {"Highest", "must"}, {"High", "should"},  {"Medium", "could"},  {"Lowest", "wont"},
    {"Low", "wont"},     {"Blocker", "must"}, {"Critical", "must"}, {"Major", "should"},
    {"Minor", "could"},  {"Trivial", "wont"},
};

const size_t JIRA_NPRIORITIES = sizeof JIRA_PRIORITIES / sizeof *JIRA_PRIORITIES;

bool jira_fixed_column(size_t f)
{
    for (size_t c = 0; c < JIRA_NCOLS; c++)
        if (JIRA_COLS[c].kind == C_FIELD && (size_t)JIRA_COLS[c].field == f)
            return true;
    return false;
}

static void put(struct codec_buf *b, const char *s)
{
    codec_buf_append(b, s, strlen(s));
}

/* An item id as an Issue Id: "i12" is 12; another id as it is. */
static void put_issue_id(struct codec_buf *b, const msgpack_object *id, int last)
{
    const char *s = id && id->type == MSGPACK_OBJECT_STR ? id->via.str.ptr : "";
    size_t n = id && id->type == MSGPACK_OBJECT_STR ? id->via.str.size : 0;
    if (n > 1 && s[0] == 'i' && s[1] >= '1' && s[1] <= '9')
        s++, n--;
    csv_write_field(b, s, n, last);
}

/* A value as its cell: strings as they are (capitalized for Issue Type),
 * integers in decimal, lists joined by sep, nil empty. */
static void put_value(struct codec_buf *b, const msgpack_object *v, char sep, bool capital,
                      int last)
{
    struct codec_buf j;
    codec_buf_init(&j, 0);
    if (v && v->type == MSGPACK_OBJECT_STR) {
        codec_buf_append(&j, v->via.str.ptr, v->via.str.size);
        if (capital && j.len && j.data[0] >= 'a' && j.data[0] <= 'z')
            j.data[0] = (char)(j.data[0] - 'a' + 'A');
    } else if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        char num[32];
        snprintf(num, sizeof num, "%llu", (unsigned long long)v->via.u64);
        put(&j, num);
    } else if (v && v->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < v->via.array.size; i++) {
            const msgpack_object *e = &v->via.array.ptr[i];
            if (i)
                put(&j, sep == ' ' ? " " : "; ");
            for (uint32_t k = 0; e->type == MSGPACK_OBJECT_STR && k < e->via.str.size; k++) {
                char ch = e->via.str.ptr[k];
                if (ch == '\\' || ch == sep)
                    put(&j, "\\");
                codec_buf_append(&j, &ch, 1);
            }
        }
    }
    csv_write_field(b, j.data ? j.data : "", j.len, last);
    codec_buf_free(&j);
}

void jira_export(const msgpack_object *items, struct codec_buf *out)
{
    size_t extra = 0;
    for (size_t f = 0; f < ITEM_F__COUNT; f++)
        extra += !jira_fixed_column(f);
    for (size_t c = 0; c < JIRA_NCOLS; c++)
        csv_write_field(out, JIRA_COLS[c].name, strlen(JIRA_COLS[c].name),
                        c + 1 == JIRA_NCOLS && !extra);
    for (size_t f = 0, k = 0; f < ITEM_F__COUNT; f++)
        if (!jira_fixed_column(f))
            csv_write_field(out, ops_item_fields[f].name, strlen(ops_item_fields[f].name),
                            ++k == extra);
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        const msgpack_object *o = &items->via.array.ptr[i];
        for (size_t c = 0; c < JIRA_NCOLS; c++) {
            int last = c + 1 == JIRA_NCOLS && !extra;
            const struct jira_col *col = &JIRA_COLS[c];
            if (col->kind == C_ID || col->kind == C_PARENT) {
                put_issue_id(out, codec_get(o, col->kind == C_ID ? "id" : "parent"), last);
            } else if (col->kind == C_PRIORITY) {
                const msgpack_object *m = codec_get(o, "moscow");
                const char *p = "";
                for (size_t k = 0; k < JIRA_NPRIORITIES && *p == 0; k++)
                    if (m && codec_str_eq(m, JIRA_PRIORITIES[k].moscow))
                        p = JIRA_PRIORITIES[k].priority;
                csv_write_field(out, p, strlen(p), last);
            } else {
                put_value(out, codec_get(o, ops_item_fields[col->field].name), col->sep,
                          col->capital, last);
            }
        }
        for (size_t f = 0, k = 0; f < ITEM_F__COUNT; f++)
            if (!jira_fixed_column(f))
                put_value(out, codec_get(o, ops_item_fields[f].name), ';', false, ++k == extra);
    }
}
