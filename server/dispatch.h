/* From a received message to its handler: decode (armoured), look the op up
 * in the operation table, validate its fields, check the sender's role
 * against the table, call the handler (room_ops.h, item_ops.h, poker_ops.h,
 * hint.h) with a struct req (req.h), and reply `err` on failure. */
#ifndef REFINE_DISPATCH_H
#define REFINE_DISPATCH_H

#include <stdbool.h>
#include <stddef.h>

struct conn;

/* 1 when every operation of the table has a handler (checked at start-up). */
bool dispatch_table_complete(void);

/* Handles one complete message (net.c calls it once conn_on_receive() has
 * one); data is borrowed. */
void dispatch_message(struct conn *c, const void *data, size_t len, bool binary);

#endif
