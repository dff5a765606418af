/* A string-keyed hash map of borrowed pointers. The map does not own keys or
 * values: a key must stay valid while its entry is in the map (typically it
 * is a field of the value). */
#ifndef REFINE_MAP_H
#define REFINE_MAP_H

#include <stddef.h>

struct map_entry;

struct map {
    struct map_entry **buckets;
    size_t nbuckets; /* power of two, or 0 when empty */
    size_t count;
};

#define MAP_INIT                                                                                   \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

/* The value under key[0..n), or NULL. */
void *map_get(const struct map *m, const char *key, size_t n);
/* Inserts or replaces. Returns 0 or RF_ENOMEM. */
int map_put(struct map *m, const char *key, void *value);
/* Removes key (NUL-terminated); returns the value that was there or NULL. */
void *map_del(struct map *m, const char *key);
/* Calls fn for each value. fn may delete the entry it is given (map_del)
 * but must not otherwise change the map. */
void map_each(const struct map *m, void (*fn)(void *value, void *arg), void *arg);
/* Frees the map's own memory (not keys or values). */
void map_free(struct map *m);

#endif
