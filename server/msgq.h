/* A first-in first-out queue of copied messages: what a connection sends
 * while its join waits for the room to be loaded (dispatch.c), handled in
 * order once the join is done. The queue owns its entries; an entry taken
 * off with msgq_pop() is the caller's (free() it). */
#ifndef REFINE_MSGQ_H
#define REFINE_MSGQ_H

#include <stdbool.h>
#include <stddef.h>

#include "list.h"

struct msgq_entry {
    struct list link; /* on msgq.entries */
    size_t len;
    bool binary; /* a binary WebSocket message (else text) */
    int limited; /* conn_take_token()'s answer when it came in */
    unsigned char data[];
};

struct msgq {
    struct list entries; /* oldest first */
    size_t count, bytes; /* entries, and their bytes of data */
};

void msgq_init(struct msgq *q);
/* An entry holding a copy of data[0..len), on no queue; NULL on out of memory. */
struct msgq_entry *msgq_entry_new(const void *data, size_t len, bool binary, int limited);
/* Appends a copy of data[0..len). Returns 0 or RF_ENOMEM. */
int msgq_push(struct msgq *q, const void *data, size_t len, bool binary, int limited);
/* Takes the oldest entry off (the caller frees it), or NULL when empty. */
struct msgq_entry *msgq_pop(struct msgq *q);
/* Frees every entry. */
void msgq_clear(struct msgq *q);

#endif
