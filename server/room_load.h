/* Loading a room from the store's state tables on first join (not by
 * replaying history): its settings row, participants, items and rounds, and
 * the most recent events for the replay ring. */
#ifndef REFINE_ROOM_LOAD_H
#define REFINE_ROOM_LOAD_H

#include <stddef.h>

struct app;
struct room;

/* The room with id[0..n), from memory or else loaded from the store (then
 * put in app->rooms, which holds its reference); NULL with *err set
 * (RF_ENOT_FOUND, ...) otherwise. The room is borrowed. */
struct room *room_find(struct app *app, const char *id, size_t n, int *err);

#endif
