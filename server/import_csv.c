/* Reading a Jira CSV (jira.h: its columns) into an import's items. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "backlog.h"
#include "csv.h"
#include "errors.h"
#include "import_int.h"
#include "jira.h"
#include "json.h"
#include "ops.h"

/* A cell as its author wrote it: one apostrophe that defused a formula
 * comes off. */
static struct csv_cell unquote(struct csv_cell c)
{
    if (c.n >= 2 && c.s[0] == '\'' && strchr("=+-@\t\r'", c.s[1]))
        c.s++, c.n--;
    return c;
}

static bool cell_is(struct csv_cell c, const char *word)
{
    return c.n == strlen(word) && strncasecmp(c.s, word, c.n) == 0;
}

/* A list cell split at sep (unescaped; "; " for ';'), into pk. Empty
 * labels (two spaces) are skipped. */
static void pack_list(msgpack_packer *pk, struct csv_cell c, char sep, struct codec_buf *tmp)
{
    struct codec_buf *b = tmp;
    size_t count = 0;
    struct codec_buf parts;
    msgpack_packer pp;
    codec_buf_init(&parts, 0);
    codec_packer_init(&pp, &parts);
    b->len = 0;
    for (size_t i = 0; c.n && i <= c.n; i++) {
        bool end = i == c.n;
        if (!end && c.s[i] == '\\' && i + 1 < c.n) {
            codec_buf_append(b, &c.s[++i], 1);
            continue;
        }
        if (end || (c.s[i] == sep && (sep == ' ' || (i + 1 < c.n && c.s[i + 1] == ' ')))) {
            if (sep != ' ' || b->len) {
                codec_pack_strn(&pp, b->data ? b->data : "", b->len);
                count++;
            }
            b->len = 0;
            i += sep == ';' && !end; /* the space after ';' */
            continue;
        }
        codec_buf_append(b, &c.s[i], 1);
    }
    msgpack_pack_array(pk, count);
    codec_buf_append((struct codec_buf *)pk->data, parts.data, parts.len);
    codec_buf_free(&parts);
}

/* A word of choices matched without case: the choice (NULL: none). */
static const char *choice(struct csv_cell c, const char *const *choices)
{
    for (size_t k = 0; choices && choices[k]; k++)
        if (cell_is(c, choices[k]))
            return choices[k];
    return NULL;
}

static const char *const KIND_WORDS[] = {"story", "epic", "spike", "bug", "task", NULL};
static const char *const STATUS_DRAFT[] = {
    "draft", "to do", "todo", "backlog", "open", "selected for development", NULL};
static const char *const STATUS_READY[] = {"ready", "in progress", NULL};
static const char *const STATUS_DONE[] = {"done", "closed", "resolved", NULL};

/* The value of field f from cell c into pk (the key is packed already). */
static int pack_cell(struct import *im, msgpack_packer *pk, size_t f, const struct jira_col *col,
                     struct csv_cell c, struct codec_buf *tmp, const char *where)
{
    const struct field_spec *fs = &ops_item_fields[f];
    if (f == ITEM_F_KIND && c.n) {
        const char *k =
            cell_is(c, "sub-task") || cell_is(c, "subtask") ? "story" : choice(c, KIND_WORDS);
        if (!k) {
            import_warn(im, "%s: the Issue Type '%.*s' is imported as a story.", where,
                        (int)(c.n > 40 ? 40 : c.n), c.s);
            k = "story";
        }
        codec_pack_str(pk, k);
        return 0;
    }
    if (f == ITEM_F_STATUS && c.n) {
        const char *s = cell_is(c, "split")       ? "split"
                        : choice(c, STATUS_DRAFT) ? "draft"
                        : choice(c, STATUS_READY) ? "ready"
                        : choice(c, STATUS_DONE)  ? "done"
                                                  : NULL;
        if (!s) {
            import_warn(im, "%s: the Status '%.*s' is imported as draft.", where,
                        (int)(c.n > 40 ? 40 : c.n), c.s);
            s = "draft";
        }
        codec_pack_str(pk, s);
        return 0;
    }
    if (f == ITEM_F_MOSCOW && c.n && choice(c, fs->choices)) {
        codec_pack_str(pk, choice(c, fs->choices));
        return 0;
    }
    switch (fs->type) {
    case FT_STR_LIST:
        pack_list(pk, c, col ? col->sep : ';', tmp);
        return 0;
    case FT_UINT: {
        uint64_t v = 0;
        if (!c.n) {
            msgpack_pack_nil(pk);
            return 0;
        }
        for (size_t i = 0; i < c.n; i++) {
            if (c.s[i] < '0' || c.s[i] > '9' || i > 15)
                return import_fail(im, "%s: %s must be a whole number from 0 to %llu, not '%.*s'.",
                                   where, col ? col->name : fs->name, (unsigned long long)fs->max,
                                   (int)(c.n > 40 ? 40 : c.n), c.s);
            v = v * 10 + (uint64_t)(c.s[i] - '0');
        }
        msgpack_pack_uint64(pk, v);
        return 0;
    }
    default:
        if (!c.n && (fs->flags & FF_NIL_OK))
            msgpack_pack_nil(pk);
        else
            codec_pack_strn(pk, c.s, c.n);
        return 0;
    }
}

struct header {
    int col[JIRA_NCOLS];      /* the file's column of each of COLS, or -1 */
    int field[ITEM_F__COUNT]; /* the file's column of each other field, or -1 */
    size_t ncells;            /* columns of the header row */
};

static int read_header(struct import *im, const struct csv_cell *cells, size_t n, struct header *h)
{
    for (size_t c = 0; c < JIRA_NCOLS; c++)
        h->col[c] = -1;
    for (size_t f = 0; f < ITEM_F__COUNT; f++)
        h->field[f] = -1;
    h->ncells = n;
    for (size_t i = 0; i < n; i++) {
        struct csv_cell c = cells[i];
        bool known = false;
        for (size_t k = 0; k < JIRA_NCOLS && !known; k++)
            if (cell_is(c, JIRA_COLS[k].name)) {
                if (h->col[k] >= 0)
                    return import_fail(im, "The CSV has two columns named %s.", JIRA_COLS[k].name);
                h->col[k] = (int)i, known = true;
            }
        for (size_t f = 0; f < ITEM_F__COUNT && !known; f++)
            if (!jira_fixed_column(f) && cell_is(c, ops_item_fields[f].name)) {
                if (h->field[f] >= 0)
                    return import_fail(im, "The CSV has two columns named %s.",
                                       ops_item_fields[f].name);
                h->field[f] = (int)i, known = true;
            }
        if (!known && c.n)
            import_warn(im, "The column '%.*s' is not imported: it has no place in a Refine item.",
                        (int)(c.n > 60 ? 60 : c.n), c.s);
    }
    if (h->col[JC_SUMMARY] < 0)
        return import_fail(im,
                           "The CSV has no Summary column: its first row must name the columns, "
                           "with Summary (the item's title) among them.");
    return 0;
}

static struct csv_cell cell_at(const struct csv_cell *cells, size_t n, int at)
{
    return at >= 0 && (size_t)at < n ? unquote(cells[at]) : (struct csv_cell){"", 0};
}

/* One data row as an item. */
static int read_row(struct import *im, const struct header *h, const struct csv_cell *cells,
                    size_t n, struct codec_buf *row, struct codec_buf *tmp, size_t line)
{
    char where[32];
    msgpack_packer pk;
    msgpack_zone z;
    msgpack_object map;
    size_t off = 0, nkeys = 0;
    int rc = 0;
    snprintf(where, sizeof where, "Line %zu", line);
    for (size_t i = 0; i < n; i++)
        if (memchr(cells[i].s, '\0', cells[i].n))
            return import_fail(im, "%s: a cell holds a NUL byte.", where);
    bool moscow_col = h->col[JC_MOSCOW] >= 0;
    for (size_t c = 0; c < JIRA_NCOLS; c++)
        nkeys += h->col[c] >= 0 &&
                 (JIRA_COLS[c].kind == C_FIELD || (JIRA_COLS[c].kind == C_PRIORITY && !moscow_col));
    for (size_t f = 0; f < ITEM_F__COUNT; f++)
        nkeys += h->field[f] >= 0;
    row->len = 0;
    codec_packer_init(&pk, row);
    msgpack_pack_map(&pk, nkeys);
    for (size_t c = 0; c < JIRA_NCOLS && !rc; c++) {
        struct csv_cell v = cell_at(cells, n, h->col[c]);
        if (h->col[c] < 0)
            continue;
        if (JIRA_COLS[c].kind == C_FIELD) {
            codec_pack_str(&pk, ops_item_fields[JIRA_COLS[c].field].name);
            rc = pack_cell(im, &pk, (size_t)JIRA_COLS[c].field, &JIRA_COLS[c], v, tmp, where);
        } else if (JIRA_COLS[c].kind == C_PRIORITY && !moscow_col) {
            const char *m = NULL;
            for (size_t k = 0; k < JIRA_NPRIORITIES && !m; k++)
                if (cell_is(v, JIRA_PRIORITIES[k].priority))
                    m = JIRA_PRIORITIES[k].moscow;
            if (!m && v.n)
                import_warn(im, "%s: the Priority '%.*s' has no MoSCoW; left empty.", where,
                            (int)(v.n > 40 ? 40 : v.n), v.s);
            codec_pack_kv_str(&pk, "moscow", m);
        }
    }
    for (size_t f = 0; f < ITEM_F__COUNT && !rc; f++)
        if (h->field[f] >= 0) {
            codec_pack_str(&pk, ops_item_fields[f].name);
            rc = pack_cell(im, &pk, f, NULL, cell_at(cells, n, h->field[f]), tmp, where);
        }
    if (rc)
        return rc;
    if (row->oom)
        return RF_ENOMEM;
    msgpack_zone_init(&z, 2048);
    if (msgpack_unpack(row->data, row->len, &off, &z, &map) != MSGPACK_UNPACK_SUCCESS) {
        msgpack_zone_destroy(&z);
        return RF_ENOMEM;
    }
    struct csv_cell id = cell_at(cells, n, h->col[JC_ID]),
                    parent = cell_at(cells, n, h->col[JC_PARENT]);
    rc = import_add_item(im, &map, id.n ? id.s : NULL, id.n, parent.n ? parent.s : NULL, parent.n,
                         NULL, 0, NULL, where);
    msgpack_zone_destroy(&z);
    return rc;
}

int import_csv(struct import *im)
{
    struct csv_reader rd;
    struct csv_cell cells[CSV_MAX_COLUMNS];
    struct header h;
    struct codec_buf row, tmp;
    size_t n;
    size_t ok = json_utf8_valid(im->body, im->len);
    if (ok < im->len) {
        size_t line = 1;
        for (size_t i = 0; i < ok; i++)
            line += im->body[i] == '\n';
        return import_fail(im, "The CSV is not UTF-8 (line %zu, byte %zu): save it as UTF-8.", line,
                           ok + 1);
    }
    csv_init(&rd, im->body, im->len);
    int rc = csv_next(&rd, cells, CSV_MAX_COLUMNS, &n, im->why, sizeof im->why);
    if (rc == 0)
        return import_fail(im, "The CSV is empty: its first row must name the columns.");
    if (rc < 0 || (rc = read_header(im, cells, n, &h)))
        return rc;
    codec_buf_init(&row, 0);
    codec_buf_init(&tmp, 0);
    while ((rc = csv_next(&rd, cells, CSV_MAX_COLUMNS, &n, im->why, sizeof im->why)) == 1) {
        im->rows++;
        if (n > h.ncells && im->rows == 1)
            import_warn(im, "Line %zu has more cells than the header names; the rest are ignored.",
                        rd.line);
        if ((rc = read_row(im, &h, cells, n, &row, &tmp, rd.line)))
            break;
    }
    codec_buf_free(&row);
    codec_buf_free(&tmp);
    if (rc == RF_ETOO_LARGE)
        return rc;
    return rc < 0 ? rc : 0;
}
