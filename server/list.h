/* An intrusive doubly-linked list, after libuv's uv__queue: a struct list
 * node inside each element, a struct list as the head. The head and every
 * node start list_init()ed (pointing at themselves): an empty head, a node
 * on no list. The list owns nothing; the comment at a head says what holds
 * its elements alive. */
#ifndef REFINE_LIST_H
#define REFINE_LIST_H

#include <stdbool.h>
#include <stddef.h>

struct list {
    struct list *next, *prev;
};

static inline void list_init(struct list *l)
{
    l->next = l->prev = l;
}

/* Head: no element. Node: on no list. */
static inline bool list_empty(const struct list *l)
{
    return l->next == l;
}

/* Puts node n (on no list) first in head h. */
static inline void list_push(struct list *h, struct list *n)
{
    n->next = h->next;
    n->prev = h;
    h->next->prev = n;
    h->next = n;
}

/* Takes node n off its list (a node on no list: no-op). */
static inline void list_remove(struct list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    list_init(n);
}

/* The element whose `field` is node p. */
#define list_entry(p, type, field) ((type *)((char *)(p)-offsetof(type, field)))

/* Walks head h first to last with `it` (a struct list *). list_each_safe
 * keeps the next node in `nx`, so the body may take `it` off the list. */
#define list_each(it, h) for (struct list *it = (h)->next; it != (h); it = it->next)
#define list_each_safe(it, nx, h)                                                                  \
    for (struct list *it = (h)->next, *nx = it->next; it != (h); it = nx, nx = it->next)

#endif
