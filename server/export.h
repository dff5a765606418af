/* Exporting a room (GET /api/rooms/{room}/export): JSON with everything a
 * team may keep (settings, participants without secrets, items, every round
 * with its revealed votes and stats), or CSV with one row per item. Secret
 * cards of unrevealed rounds are never exported: rounds are encoded by
 * round_pack().
 *
 * Off the loop: export_start() encodes on the loop only what is not shared
 * already (the settings and participants; the items and rounds are the
 * snapshot's shared frame, r->snap_items), and the conversion to JSON or CSV
 * runs on a libuv worker (uv_queue_work) from those bytes. The loop holds the
 * frame's reference until the worker is done. */
#ifndef REFINE_EXPORT_H
#define REFINE_EXPORT_H

#include <stddef.h>
#include <uv.h>

struct room;
struct export_job;

/* The export's answer, on the loop thread: 0 with the body (taken: free it)
 * and its media type, or a negative code (RF_ENOMEM, RF_EINTERNAL) and NULL. */
typedef void (*export_done_fn)(void *arg, int rc, char *body, size_t len, const char *type);

/* Starts the export of r in format "json", "csv" or "jira" (jira.h): done(arg, ...) is
 * called later on the loop thread, never from within this call. Returns 0
 * with *out set (until done is called), RF_EBAD_REQUEST for an unknown
 * format, or RF_ENOMEM (done will not be called). */
int export_start(uv_loop_t *loop, struct room *r, const char *format, export_done_fn done,
                 void *arg, struct export_job **out);

/* The requester has gone: done will not be called; the job frees itself
 * when the worker is done. NULL is a no-op. */
void export_abandon(struct export_job *j);

#endif
