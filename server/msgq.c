#include "msgq.h"

#include <stdlib.h>
#include <string.h>

#include "errors.h"

void msgq_init(struct msgq *q)
{
    list_init(&q->entries);
    q->count = q->bytes = 0;
}

struct msgq_entry *msgq_entry_new(const void *data, size_t len, bool binary, int limited)
{
    struct msgq_entry *e = malloc(sizeof *e + len);
    if (!e)
        return NULL;
    list_init(&e->link);
    e->len = len;
    e->binary = binary;
    e->limited = limited;
    if (len)
        memcpy(e->data, data, len);
    return e;
}

int msgq_push(struct msgq *q, const void *data, size_t len, bool binary, int limited)
{
    struct msgq_entry *e = msgq_entry_new(data, len, binary, limited);
    if (!e)
        return RF_ENOMEM;
    list_push(q->entries.prev, &e->link); /* after the last: at the end */
    q->count++;
    q->bytes += len;
    return 0;
}

struct msgq_entry *msgq_pop(struct msgq *q)
{
    if (list_empty(&q->entries))
        return NULL;
    struct msgq_entry *e = list_entry(q->entries.next, struct msgq_entry, link);
    list_remove(&e->link);
    q->count--;
    q->bytes -= e->len;
    return e;
}

void msgq_clear(struct msgq *q)
{
    struct msgq_entry *e;
    while ((e = msgq_pop(q)))
        free(e);
}
