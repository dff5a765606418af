/* The request API: what a handler (room_ops.h, item_ops.h, poker_ops.h,
 * hint.h) gets from the dispatcher and how it answers.
 *
 * Handlers get a struct req, reply through req_ok_*(), and return 0, or a
 * negative RF_E* code (after req_fail() for a specific sentence) for the
 * dispatcher to answer with `err`. A handler that fails must leave the room
 * as it found it. Every reply goes through the outbox (outbox.h): an `ok`
 * leaves once the change it reports is committed. */
#ifndef REFINE_REQ_H
#define REFINE_REQ_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "ops.h"
#include "reply.h"

struct app;
struct conn;
struct room;
struct participant;

/* One request, on the dispatcher's stack for the time of its handler: every
 * pointer is borrowed. */
struct req {
    struct app *app;
    struct conn *conn;
    struct room *room;       /* the sender's room, NULL before join */
    struct participant *who; /* the sender, NULL before join */
    const struct op_spec *op;
    const msgpack_object *msg;
    uint64_t id;
    bool has_id;
    /* A join of a room not in memory: the handler sets wait_room (the room's
     * id, a string of msg) and returns 0 without a reply; the dispatcher has
     * the room loaded off the loop (loader.h) and hands the message to the
     * handler again once it is, with load_err set if it could not be. */
    const msgpack_object *wait_room;
    int load_err;
    char why[256];
    struct reply_fields fields; /* the error reply's extra fields (reply.h), e.g. `home` */
};

/* Sets the sentence of the error reply; returns code. */
int req_fail(struct req *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Starts an ok reply with nfields more key/value pairs to pack into pk. */
void req_ok_begin(struct req *r, struct codec_buf *b, msgpack_packer *pk, size_t nfields);
/* Queues the reply started with req_ok_begin (out of memory: closes the
 * connection, which rejoins). */
void req_ok_end(struct req *r, struct codec_buf *b);
/* ok {id, seq}. */
void req_ok_seq(struct req *r, uint64_t seq);
/* ok {id, seq, key: value} (both strings borrowed). */
void req_ok_seq_str(struct req *r, uint64_t seq, const char *key, const char *value);
/* `ok` without seq to a change that changes nothing: no event, nothing stored. */
void req_ok_unchanged(struct req *r);

/* Queues an `err` reply (reply.h) for request id (has_id false: id nil) to c;
 * closes c when out of memory (a request is never left unanswered). */
void req_error(struct conn *c, bool has_id, uint64_t id, int code, const char *msg);
/* The same with x's extra fields (NULL: none). */
void req_error_fields(struct conn *c, bool has_id, uint64_t id, int code, const char *msg,
                      const struct reply_fields *x);

#endif
