/* The loader: rooms are read from the store and built on a thread of its
 * own, off the loop, and handed back to the loop thread.
 *
 * loader_load() queues a load and returns at once; the loader's thread reads
 * the room through its own store reader (store_reader_open) and builds it
 * with hooks.build into a room nothing else can see yet. On the loop thread
 * (a uv_async_t), hooks.publish makes it visible (puts it in the map of
 * loaded rooms), then every request for that room gets its done callback,
 * in the order the requests were made. Requests for a room that is queued,
 * being built or built but not yet handed back share that one load.
 *
 * Threads: every loader_* function is called on the loop thread, and so are
 * hooks.publish, hooks.discard and the done callbacks; only hooks.build runs
 * on the loader's thread, and it must touch nothing the loop touches (what it
 * builds, the reader it is given, and state that is read-only while the
 * loop runs, e.g. the configuration).
 *
 * The loader does not know which rooms are loaded: the caller looks in its
 * map first, and asks the loader only for a room that is not there. */
#ifndef REFINE_LOADER_H
#define REFINE_LOADER_H

#include <stdbool.h>
#include <uv.h>

struct loader;
struct room;
struct store;
struct store_reader;

struct loader_hooks {
    void *arg;
    /* Loader thread: builds room `id` from the store through q. Returns 0
     * with *out set (the room, owned by the loader until published), or a
     * negative code (RF_ENOT_FOUND when the store has no such room). */
    int (*build)(void *arg, struct store_reader *q, const char *id, struct room **out);
    /* Loop thread: makes the built room r (taken) visible. Returns the room
     * the requests get (r, or one that became visible meanwhile, r then
     * being freed by publish), or NULL with *err set (r freed). */
    struct room *(*publish)(void *arg, struct room *r, int *err);
    /* Loop thread: frees a built room that will never be published
     * (loader_close). */
    void (*discard)(void *arg, struct room *r);
};

/* A request's answer, on the loop thread: the room (borrowed: visible in
 * the caller's map from now on) and 0, or NULL and a negative code
 * (RF_ENOT_FOUND, RF_ENOMEM, RF_EINTERNAL). */
typedef void (*loader_done_fn)(void *arg, struct room *r, int err);

/* Starts the loader's thread with a reader of its own on store s. Returns 0
 * or a negative code. */
int loader_open(struct loader **out, uv_loop_t *loop, struct store *s,
                const struct loader_hooks *hooks);

/* Asks for room id (borrowed: copied): done(arg, ...) is called later, on
 * the loop thread, never from within this call. Returns 0, or RF_ENOMEM or
 * RF_EINTERNAL (the loader is closing) and done will not be called. */
int loader_load(struct loader *l, const char *id, loader_done_fn done, void *arg);

/* Whether room id is queued, being built, or built and not yet handed back. */
bool loader_busy(const struct loader *l, const char *id);

/* Withdraws every request made with arg (e.g. a connection that closed):
 * their done callbacks will not be called. The loads themselves go on (the
 * room is still published). Safe to call from a done callback. */
void loader_cancel(struct loader *l, const void *arg);

/* Shutdown: waits for the room being built (if any) to be finished, stops
 * the thread, discards every room built and not yet handed back, drops every
 * request without calling it, closes the reader, and closes the async handle
 * (the memory is freed when the loop has closed it: run the loop after).
 * Call before store_close(), and not from a done callback. NULL is a no-op. */
void loader_close(struct loader *l);

#endif
