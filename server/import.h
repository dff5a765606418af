/* Importing into a room (POST /api/rooms/{room}/import): a JSON document
 * of the room's export or a Jira CSV of items (jira.h) becomes one event,
 * backlog.imported, persisted in one batch, or nothing at all.
 *
 * Off the loop: import_start() hands the body to a libuv worker, which
 * parses and validates all of it (JSON: json.h; CSV: csv.h, jira.h) and
 * builds the items. Back on the loop, the caller finds the room again (it
 * may have been unloaded meanwhile) and calls import_apply(), which checks
 * what depends on the room (its item limit and byte budget), then either
 * describes what would happen (a dry run) or applies it all in one turn.
 *
 * Into a room that has never held an item, the items keep their ids, ranks
 * and update times, so that the room's export equals the one imported;
 * into any other room they are appended at the bottom with new ids, and
 * their parents are mapped to the new ids. */
#ifndef REFINE_IMPORT_H
#define REFINE_IMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <uv.h>

struct app;
struct room;
struct import;

#define IMPORT_MAX_BYTES ((size_t)32 << 20) /* the largest body accepted */

/* Called on the loop thread once the body is parsed: rc 0 (then call
 * import_apply, or import_free), or a negative code with a sentence in why
 * (then call import_free). */
typedef void (*import_parsed_fn)(void *arg, struct import *im, int rc, const char *why);

/* Parses body[0..len) (taken: freed by the import) as format "json" or
 * "csv" on a worker. Returns 0 (done is called later, never from within
 * this call) or RF_ENOMEM (the body is freed; done is not called). */
int import_start(uv_loop_t *loop, char *body, size_t len, bool csv, import_parsed_fn done,
                 void *arg, struct import **out);

/* The worker's part on the calling thread (the fuzzer, tests): parses
 * body[0..len) (taken) into *out (free it with import_free). Returns 0 or
 * a negative code, as import_parsed_fn gets it. */
int import_parse(char *body, size_t len, bool csv, struct import **out);

/* The requester has gone: done will not be called; the import frees itself
 * when the worker is done. NULL is a no-op. */
void import_abandon(struct import *im);

/* Applies the parsed import to r (dry_run: changes nothing) and writes the
 * answer, a JSON object (import.c: the preview), into *body (malloc'd; the
 * caller frees it; NULL when an applied import's summary could not be built
 * for want of memory). Returns 0; or a negative code (RF_EBAD_REQUEST,
 * RF_ETOO_LARGE, RF_ENOMEM) with a sentence in why, the room as it was (or
 * evicted, when what changed could not be recorded: it loads back as it was). */
int import_apply(struct import *im, struct app *app, struct room *r, bool dry_run, char **body,
                 size_t *len, char *why, size_t whysz);

void import_free(struct import *im);

#endif
