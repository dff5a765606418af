/* The `err` message: what a client gets for a request that failed, encoded
 * once as a frame. Below the outbox and the request API (req.h), which both
 * send it. */
#ifndef REFINE_REPLY_H
#define REFINE_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct frame;

/* Fields an error carries besides code and msg, each a string: `home` of
 * wrong_instance, `room` and `home` of moved. Zeroed: none. */
#define REPLY_FIELDS_MAX  2
#define REPLY_FIELD_BYTES 48 /* a value's bytes, its NUL included (a room id fits) */
struct reply_fields {
    size_t n;
    struct {
        const char *key; /* a string literal (borrowed for good) */
        char value[REPLY_FIELD_BYTES];
    } f[REPLY_FIELDS_MAX];
};

/* Adds key = value (copied) to x. Returns 0, or RF_ETOO_LARGE (x unchanged)
 * when x is full or value longer than REPLY_FIELD_BYTES - 1. */
int reply_fields_add(struct reply_fields *x, const char *key, const char *value);

/* `err {id, code, msg}` for request id (has_id false: id nil) with error code
 * `code` (an RF_E* of errors.h) and the sentence msg (borrowed; NULL or empty:
 * the code's default sentence), as a frame with one reference, or NULL when
 * out of memory. */
struct frame *reply_error_frame(bool has_id, uint64_t id, int code, const char *msg);
/* The same with x's fields (NULL: none) after code: `err {id, code, ...x, msg}`. */
struct frame *reply_error_frame_fields(bool has_id, uint64_t id, int code, const char *msg,
                                       const struct reply_fields *x);
/* An HTTP error body `{"code": ..., ...x, "msg": ...}` (JSON, with a final
 * newline; msg borrowed, NULL or empty: the code's default sentence) into
 * *out (taken by the caller) and *len. Returns 0 or RF_ENOMEM. */
int reply_error_json(int code, const char *msg, const struct reply_fields *x, char **out,
                     size_t *len);

#endif
