#include "loader.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "map.h"
#include "store.h"

struct waiter {
    struct waiter *next;
    loader_done_fn done;
    void *arg;
};

/* One room being loaded. Between loader_load() and its hand-back it is in
 * l->loading (loop thread) and in one of the lists under l->mu: todo, then
 * (after the thread took it and built it) built. The thread writes room and
 * err; only the loop thread touches the waiters. */
struct load {
    struct load *next; /* under mu: in todo or built */
    struct waiter *first, **last;
    struct room *room;
    int err;
    char id[]; /* l->loading's key */
};

struct loader {
    uv_async_t async;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct load *todo, **todo_end;   /* under mu: for the thread, in order */
    struct load *built, **built_end; /* under mu: for the loop, in order */
    int quit;                        /* under mu */
    struct map loading;              /* loop thread: id -> struct load */
    struct load *delivering;         /* loop thread: the load being handed back */
    struct store_reader *reader;     /* the thread's (the loop's after the join) */
    struct loader_hooks hooks;
    bool closing;
};

static void load_free(struct load *ld)
{
    while (ld->first) {
        struct waiter *w = ld->first;
        ld->first = w->next;
        free(w);
    }
    free(ld);
}

static void *loader_main(void *arg)
{
    struct loader *l = arg;
    pthread_mutex_lock(&l->mu);
    for (;;) {
        while (!l->todo && !l->quit)
            pthread_cond_wait(&l->cv, &l->mu);
        if (l->quit)
            break;
        struct load *ld = l->todo;
        if (!(l->todo = ld->next))
            l->todo_end = &l->todo;
        pthread_mutex_unlock(&l->mu);
        ld->room = NULL;
        ld->err = l->hooks.build(l->hooks.arg, l->reader, ld->id, &ld->room);
        pthread_mutex_lock(&l->mu);
        ld->next = NULL;
        *l->built_end = ld;
        l->built_end = &ld->next;
        uv_async_send(&l->async);
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

/* Hands one load back: publish, then each request in order. A done
 * callback may make new requests (a new load, since this one has left
 * l->loading) or withdraw waiting ones (loader_cancel sees l->delivering). */
static void deliver(struct loader *l, struct load *ld)
{
    map_del(&l->loading, ld->id);
    struct room *r = NULL;
    int err = ld->err;
    if (!err)
        r = l->hooks.publish(l->hooks.arg, ld->room, &err);
    else if (ld->room) /* defensive: build failed but left a room */
        l->hooks.discard(l->hooks.arg, ld->room);
    l->delivering = ld;
    while (ld->first) {
        struct waiter *w = ld->first;
        if (!(ld->first = w->next))
            ld->last = &ld->first;
        w->done(w->arg, r, r ? 0 : err);
        free(w);
    }
    l->delivering = NULL;
    free(ld);
}

static void on_async(uv_async_t *h)
{
    struct loader *l = h->data;
    pthread_mutex_lock(&l->mu);
    struct load *ld = l->built;
    l->built = NULL;
    l->built_end = &l->built;
    pthread_mutex_unlock(&l->mu);
    while (ld) {
        struct load *next = ld->next;
        deliver(l, ld);
        ld = next;
    }
}

static void free_loader(uv_handle_t *h)
{
    free(h->data);
}

int loader_open(struct loader **out, uv_loop_t *loop, struct store *s,
                const struct loader_hooks *hooks)
{
    struct loader *l = calloc(1, sizeof *l);
    if (!l)
        return RF_ENOMEM;
    l->hooks = *hooks;
    l->todo_end = &l->todo;
    l->built_end = &l->built;
    int rc = store_reader_open(s, &l->reader);
    if (rc)
        goto fail;
    rc = RF_EINTERNAL;
    if (uv_async_init(loop, &l->async, on_async))
        goto fail;
    l->async.data = l;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    if (pthread_create(&l->thread, NULL, loader_main, l)) {
        pthread_cond_destroy(&l->cv);
        pthread_mutex_destroy(&l->mu);
        l->closing = true;
        uv_close((uv_handle_t *)&l->async, free_loader);
        store_reader_close(l->reader);
        return rc;
    }
    *out = l;
    return 0;
fail:
    store_reader_close(l->reader);
    free(l);
    return rc;
}

int loader_load(struct loader *l, const char *id, loader_done_fn done, void *arg)
{
    if (l->closing)
        return RF_EINTERNAL;
    struct waiter *w = malloc(sizeof *w);
    if (!w)
        return RF_ENOMEM;
    *w = (struct waiter){NULL, done, arg};
    struct load *ld = map_get(&l->loading, id, strlen(id));
    if (ld) {
        *ld->last = w;
        ld->last = &w->next;
        return 0;
    }
    size_t n = strlen(id) + 1;
    if (!(ld = calloc(1, sizeof *ld + n))) {
        free(w);
        return RF_ENOMEM;
    }
    memcpy(ld->id, id, n);
    ld->first = w;
    ld->last = &w->next;
    if (map_put(&l->loading, ld->id, ld)) {
        load_free(ld);
        return RF_ENOMEM;
    }
    pthread_mutex_lock(&l->mu);
    *l->todo_end = ld;
    l->todo_end = &ld->next;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

bool loader_busy(const struct loader *l, const char *id)
{
    return map_get(&l->loading, id, strlen(id)) != NULL;
}

static void cancel_in(void *value, void *arg)
{
    struct load *ld = value;
    struct waiter **p = &ld->first;
    while (*p) {
        struct waiter *w = *p;
        if (w->arg == arg) {
            *p = w->next;
            free(w);
        } else {
            p = &w->next;
        }
    }
    ld->last = p;
}

void loader_cancel(struct loader *l, const void *arg)
{
    map_each(&l->loading, cancel_in, (void *)arg);
    if (l->delivering)
        cancel_in(l->delivering, (void *)arg);
}

/* Frees a list of loads that will not be handed back. */
static void drop_all(struct loader *l, struct load *ld)
{
    while (ld) {
        struct load *next = ld->next;
        if (ld->room)
            l->hooks.discard(l->hooks.arg, ld->room);
        map_del(&l->loading, ld->id);
        load_free(ld);
        ld = next;
    }
}

void loader_close(struct loader *l)
{
    if (!l)
        return;
    l->closing = true;
    pthread_mutex_lock(&l->mu);
    l->quit = 1;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    /* The thread is gone: every load is in todo or built. */
    drop_all(l, l->todo);
    drop_all(l, l->built);
    l->todo = l->built = NULL;
    map_free(&l->loading);
    store_reader_close(l->reader);
    l->reader = NULL;
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    uv_close((uv_handle_t *)&l->async, free_loader);
}
