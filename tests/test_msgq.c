/* Unit tests of the queue of messages held behind a waiting join (msgq.h):
 * first in, first out, with copies of the bytes; the counts follow; a
 * cleared queue is empty and reusable (run under -DREFINE_SANITIZE=ON: no
 * leak, no read of freed memory). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "errors.h"
#include "msgq.h"

int main(void)
{
    struct msgq q;
    msgq_init(&q);
    CHECK(msgq_pop(&q) == NULL && q.count == 0 && q.bytes == 0);

    char buf[16] = "first";
    CHECK(msgq_push(&q, buf, 5, true, 0) == 0);
    strcpy(buf, "XXXXX"); /* the queue holds a copy */
    CHECK(msgq_push(&q, "second!", 7, false, RF_ERATE_LIMITED) == 0);
    CHECK(msgq_push(&q, "", 0, true, 0) == 0);
    CHECK(q.count == 3 && q.bytes == 12);

    struct msgq_entry *e = msgq_pop(&q);
    CHECK(e && e->len == 5 && memcmp(e->data, "first", 5) == 0 && e->binary && !e->limited);
    free(e);
    e = msgq_pop(&q);
    CHECK(e && e->len == 7 && memcmp(e->data, "second!", 7) == 0 && !e->binary &&
          e->limited == RF_ERATE_LIMITED);
    free(e);
    CHECK(q.count == 1 && q.bytes == 0);
    e = msgq_pop(&q);
    CHECK(e && e->len == 0);
    free(e);
    CHECK(msgq_pop(&q) == NULL && q.count == 0);

    /* Cleared with entries in it, then used again. */
    for (int i = 0; i < 100; i++)
        CHECK(msgq_push(&q, &i, sizeof i, true, 0) == 0);
    msgq_clear(&q);
    CHECK(q.count == 0 && q.bytes == 0 && msgq_pop(&q) == NULL);
    int v = 42;
    CHECK(msgq_push(&q, &v, sizeof v, true, 0) == 0);
    e = msgq_pop(&q);
    CHECK(e && e->len == sizeof v && memcmp(e->data, &v, sizeof v) == 0);
    free(e);

    /* An entry made on its own (the waiting join's) is on no queue. */
    e = msgq_entry_new("join", 4, true, 0);
    CHECK(e && e->len == 4 && list_empty(&e->link));
    free(e);
    return check_summary("test_msgq");
}
