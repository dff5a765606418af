/* From a received message to its handler: decode (armoured), look the op up
 * in the operation table, validate its fields, check the sender's role
 * against the table, call the handler, and reply `err` on failure.
 *
 * Handlers get a struct req, reply through req_ok_*(), and return 0, or a
 * negative RF_E* code (after req_fail() for a specific sentence) for the
 * dispatcher to answer with `err`. A handler that fails must leave the room
 * as it found it. */
#ifndef REFINE_DISPATCH_H
#define REFINE_DISPATCH_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "ops.h"

struct app;
struct conn;
struct room;
struct participant;

struct req {
    struct app *app;
    struct conn *conn;
    struct room *room;       /* the sender's room, NULL before join */
    struct participant *who; /* the sender, NULL before join */
    const struct op_spec *op;
    const msgpack_object *msg;
    uint64_t id;
    bool has_id;
    char why[256];
};

/* 1 when every operation of the table has a handler (checked at start-up). */
bool dispatch_table_complete(void);

/* Handles one complete message; data is borrowed. */
void dispatch_message(struct conn *c, const void *data, size_t len, bool binary);

/* Sets the sentence of the error reply; returns code. */
int req_fail(struct req *r, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Starts an ok reply with nfields more key/value pairs to pack into pk. */
void req_ok_begin(struct req *r, struct codec_buf *b, msgpack_packer *pk, size_t nfields);
/* Queues the reply started with req_ok_begin. */
void req_ok_end(struct req *r, struct codec_buf *b);
/* ok {id, seq}. */
void req_ok_seq(struct req *r, uint64_t seq);
/* `ok` without seq to a change that changes nothing: no event, nothing stored. */
void req_ok_unchanged(struct req *r);

/* Sends an err reply for request id (has_id false: id nil) to c. */
void dispatch_error(struct conn *c, bool has_id, uint64_t id, int code, const char *msg);
/* The same `err` message as a frame with one reference (NULL when out of
 * memory), for a caller that sends it itself. */
struct frame *dispatch_error_frame(bool has_id, uint64_t id, int code, const char *msg);

#endif
