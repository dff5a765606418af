/* From a received message to its handler: decode (armoured), look the op up
 * in the operation table, validate its fields, check the sender's role
 * against the table, call the handler (room_ops.h, item_ops.h, poker_ops.h,
 * hint.h) with a struct req (req.h), and reply `err` on failure.
 *
 * A join of a room not in memory waits for the loader (loader.h), which
 * reads and builds the room off the loop; what the connection sends
 * meanwhile is kept (each message still takes its rate token when it comes)
 * and handled in order after the join's answer. A connection that sends more
 * than DISPATCH_HELD_MAX messages, or DISPATCH_HELD_BYTES, while its join
 * waits is closed with 1008 (PROTOCOL.md: limits). */
#ifndef REFINE_DISPATCH_H
#define REFINE_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

struct conn;

#define DISPATCH_HELD_MAX 64
/* Bytes kept behind a waiting join: 256 KiB, or one message of --max-message if larger. */
#define DISPATCH_HELD_BYTES(max_message) ((max_message) > 262144 ? (max_message) : 262144)

/* 1 when every operation of the table has a handler (checked at start-up). */
bool dispatch_table_complete(void);

/* Handles one complete message (net.c calls it once conn_on_receive() has
 * one); data is borrowed. */
void dispatch_message(struct conn *c, const void *data, size_t len, bool binary);

/* The connection's socket has closed: a join waiting for its room is
 * withdrawn, and what waited behind it dropped. */
void dispatch_on_closed(struct conn *c);

#endif
