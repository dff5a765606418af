/* Exporting a room (GET /api/rooms/{room}/export): JSON with everything a
 * team may keep (settings, participants without secrets, items, every round
 * with its revealed votes and stats), or CSV with one row per item. Secret
 * cards of unrevealed rounds are never exported: rounds are encoded by
 * round_pack(). */
#ifndef REFINE_EXPORT_H
#define REFINE_EXPORT_H

#include <stddef.h>

struct room;

/* Builds the export of r in format "json" or "csv" into a new buffer
 * (*body, caller frees) with its media type. Returns 0, RF_EBAD_REQUEST for
 * an unknown format, or RF_ENOMEM. */
int export_room(const struct room *r, const char *format, char **body, size_t *len,
                const char **type);

#endif
