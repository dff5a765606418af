#include "csv.h"

#include <stdio.h>
#include <string.h>

#include "errors.h"

static void put(struct codec_buf *b, const char *s)
{
    codec_buf_append(b, s, strlen(s));
}

/* A cell a spreadsheet would run as a formula (OWASP "CSV injection"): it
 * starts with = + - @, a tab or a carriage return. A cell starting with an
 * apostrophe is listed too, so that a reader may always take one leading
 * apostrophe off. */
static int csv_formula(const char *s, size_t n)
{
    return n && s[0] && strchr("=+-@\t\r'", s[0]);
}

/* One CSV field (RFC 4180): quoted when it holds a comma, quote or newline,
 * and after a leading apostrophe when csv_formula() says so. */
void csv_write_field(struct codec_buf *b, const char *s, size_t n, int last)
{
    int quote = memchr(s, ',', n) || memchr(s, '"', n) || memchr(s, '\n', n) || memchr(s, '\r', n);
    if (quote)
        put(b, "\"");
    if (csv_formula(s, n))
        put(b, "'");
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"')
            put(b, "\"");
        codec_buf_append(b, &s[i], 1);
    }
    if (quote)
        put(b, "\"");
    put(b, last ? "\r\n" : ",");
}

void csv_init(struct csv_reader *rd, char *s, size_t n)
{
    *rd = (struct csv_reader){.s = s, .n = n, .next_line = 1};
    if (n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0)
        rd->pos = 3;
}

/* One quoted field at rd->pos (its opening quote), unescaped in place. */
static int quoted(struct csv_reader *rd, struct csv_cell *c, char *why, size_t whysz)
{
    char *out = rd->s + rd->pos + 1;
    size_t start_line = rd->next_line;
    c->s = out;
    c->n = 0;
    rd->pos++;
    for (;;) {
        const char *q = memchr(rd->s + rd->pos, '"', rd->n - rd->pos);
        if (!q) {
            snprintf(why, whysz,
                     "The CSV has a quoted field that is never closed (it opens on line %zu).",
                     start_line);
            return RF_EBAD_REQUEST;
        }
        size_t k = (size_t)(q - (rd->s + rd->pos));
        for (size_t i = 0; i < k; i++)
            rd->next_line += rd->s[rd->pos + i] == '\n';
        memmove(out + c->n, rd->s + rd->pos, k);
        c->n += k;
        rd->pos += k + 1;
        if (rd->pos < rd->n && rd->s[rd->pos] == '"') { /* a doubled quote */
            out[c->n++] = '"';
            rd->pos++;
            continue;
        }
        if (rd->pos < rd->n && !strchr(",\r\n", rd->s[rd->pos])) {
            snprintf(why, whysz,
                     "The CSV has text after the closing quote of a field on line %zu; a quote "
                     "inside a quoted field is written twice (\"\").",
                     rd->next_line);
            return RF_EBAD_REQUEST;
        }
        return 0;
    }
}

int csv_next(struct csv_reader *rd, struct csv_cell *cells, size_t max, size_t *count, char *why,
             size_t whysz)
{
    for (;;) {
        if (rd->pos >= rd->n)
            return 0;
        rd->line = rd->next_line;
        size_t k = 0;
        int was_quoted = 0;
        for (;;) {
            struct csv_cell c;
            if (rd->pos < rd->n && rd->s[rd->pos] == '"') {
                int rc = quoted(rd, &c, why, whysz);
                if (rc)
                    return rc;
                was_quoted = 1;
            } else {
                size_t start = rd->pos;
                while (
                    rd->pos < rd->n && rd->s[rd->pos] != ',' && rd->s[rd->pos] != '\n' &&
                    !(rd->s[rd->pos] == '\r' && rd->pos + 1 < rd->n && rd->s[rd->pos + 1] == '\n'))
                    rd->pos++;
                c = (struct csv_cell){rd->s + start, rd->pos - start};
            }
            if (k == max) {
                snprintf(why, whysz, "The CSV has more than %zu columns on line %zu.", max,
                         rd->line);
                return RF_EBAD_REQUEST;
            }
            cells[k++] = c;
            if (rd->pos < rd->n && rd->s[rd->pos] == ',') {
                rd->pos++;
                continue;
            }
            if (rd->pos < rd->n && rd->s[rd->pos] == '\r')
                rd->pos++;
            if (rd->pos < rd->n && rd->s[rd->pos] == '\n')
                rd->pos++;
            rd->next_line++;
            break;
        }
        if (k == 1 && cells[0].n == 0 && !was_quoted)
            continue; /* an empty line */
        *count = k;
        return 1;
    }
}
