/* The `err` message: what a client gets for a request that failed, encoded
 * once as a frame. Below the outbox and the request API (req.h), which both
 * send it. */
#ifndef REFINE_REPLY_H
#define REFINE_REPLY_H

#include <stdbool.h>
#include <stdint.h>

struct frame;

/* `err {id, code, msg}` for request id (has_id false: id nil) with error code
 * `code` (an RF_E* of errors.h) and the sentence msg (borrowed; NULL or empty:
 * the code's default sentence), as a frame with one reference, or NULL when
 * out of memory. */
struct frame *reply_error_frame(bool has_id, uint64_t id, int code, const char *msg);

#endif
