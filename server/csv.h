/* A CSV reader (RFC 4180) for imports: fields separated by commas, records
 * by CRLF or LF; a field in double quotes may hold commas, line breaks and
 * doubled quotes (""); a quote inside an unquoted field is kept as it is.
 * It reads a buffer it may write: a quoted field is unescaped in place, and
 * the cells point into the buffer. Pure: safe on any thread. */
#ifndef REFINE_CSV_H
#define REFINE_CSV_H

#include <stddef.h>

#include "codec.h"

#define CSV_MAX_COLUMNS 256

struct csv_cell {
    const char *s; /* into the buffer; not NUL-terminated */
    size_t n;
};

struct csv_reader {
    char *s;
    size_t n, pos;
    size_t line; /* of the record read last (1-based; a quoted line break counts) */
    size_t next_line;
};

/* Reads from s[0..n) (written by the reader), after a UTF-8 byte order
 * mark if there is one. */
void csv_init(struct csv_reader *rd, char *s, size_t n);

/* The next record's cells into cells[0..*count): 1; 0 at the end; or
 * RF_EBAD_REQUEST with a sentence in why (a quoted field not closed, text
 * after a closing quote, more than max cells). An empty line is skipped. */
int csv_next(struct csv_reader *rd, struct csv_cell *cells, size_t max, size_t *count, char *why,
             size_t whysz);

/* Writes one field into b, then "," (or CRLF when last): quoted when it
 * holds a comma, quote or line break (a quote doubled); after a leading
 * apostrophe when it starts as a spreadsheet formula would (= + - @, a tab
 * or a carriage return) or with an apostrophe (OWASP "CSV injection"), so
 * that a reader may always take one leading apostrophe off. */
void csv_write_field(struct codec_buf *b, const char *s, size_t n, int last);

#endif
