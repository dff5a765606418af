/* What a room tells its connections.
 *
 * Events: event_begin() starts an event map {t, seq, at, by, ...} with the
 * room's next seq; event_commit() persists it (with the state records the
 * handler appended to the store in the same turn), keeps it in the replay
 * ring and queues it to the room's connections through the outbox, which
 * releases it once it is committed.
 *
 * Notices (no seq, never stored): event_notice_begin() starts {t, at, ...},
 * event_notice_end() queues it to the room's connections. */
#ifndef REFINE_EVENT_H
#define REFINE_EVENT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"

struct app;
struct conn;
struct req;
struct room;
struct participant;

/* An event being built, on its maker's stack. */
struct event {
    struct codec_buf buf;
    msgpack_packer pk;
    struct room *room;
    const char *type;
    const char *by;
    uint64_t seq;
    int64_t at;
};

/* Starts event `type` by participant `by` (NULL: the server) with nfields
 * more key/value pairs for the caller to pack into ev->pk. */
void event_begin(struct event *ev, struct room *r, const char *type, const struct participant *by,
                 size_t nfields);
/* Finishes, persists and broadcasts the event, its seq into *seq (seq may be
 * NULL). Returns 0, or RF_ENOMEM when it could not be recorded: the room is
 * then evicted (its connections are closed and rejoin), so the caller only
 * stops; nothing is left to undo. */
int event_commit(struct app *app, struct event *ev, uint64_t *seq);

/* event_commit(), then the request's `ok {seq}` (no reply when the event
 * could not be recorded: the room's connections are being closed). A handler
 * returns 0 after it. */
void event_reply(struct req *q, struct event *ev);

/* A notice: event_notice_begin() starts {t, at} with nfields more pairs for
 * the caller to pack into pk; event_notice_end() sends it to the room's
 * connections but `except` (may be NULL), with actors_only only to those of
 * participants who are not observers. */
void event_notice_begin(struct codec_buf *b, msgpack_packer *pk, const char *type, int64_t at,
                        size_t nfields);
void event_notice_end(struct app *app, struct room *r, struct conn *except, struct codec_buf *b,
                      bool actors_only);

#endif
