/* Loading a room from the store's state tables (not by replaying history):
 * its settings row, participants, items and rounds, and the most recent
 * events for the replay ring. Rooms are read and built on the loader's
 * thread (loader.h) through these hooks and put in app->rooms on the loop. */
#ifndef REFINE_ROOM_LOAD_H
#define REFINE_ROOM_LOAD_H

#include <stddef.h>

struct app;
struct loader_hooks;
struct room;

/* The room with id[0..n) if it is in memory (borrowed), else NULL: ask the
 * loader (app->loader) for it. */
struct room *room_find(struct app *app, const char *id, size_t n);

/* The loader's hooks for app's rooms: build reads and builds a room on the
 * loader's thread (touching only app->cfg and the store's restore count);
 * publish puts it in app->rooms (or keeps the one already there); discard
 * frees it. */
void room_load_hooks(struct app *app, struct loader_hooks *h);

#endif
