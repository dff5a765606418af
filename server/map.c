#include "map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

struct map_entry {
    struct map_entry *next;
    const char *key;
    size_t keylen;
    uint64_t hash;
    void *value;
};

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

void *map_get(const struct map *m, const char *key, size_t n)
{
    if (!m->nbuckets)
        return NULL;
    uint64_t h = hash_bytes(key, n);
    for (struct map_entry *e = m->buckets[h & (m->nbuckets - 1)]; e; e = e->next)
        if (e->hash == h && e->keylen == n && memcmp(e->key, key, n) == 0)
            return e->value;
    return NULL;
}

static int grow(struct map *m)
{
    size_t nb = m->nbuckets ? m->nbuckets * 2 : 16;
    struct map_entry **b = calloc(nb, sizeof *b);
    if (!b)
        return RF_ENOMEM;
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct map_entry *e = m->buckets[i];
        while (e) {
            struct map_entry *next = e->next;
            e->next = b[e->hash & (nb - 1)];
            b[e->hash & (nb - 1)] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = nb;
    return 0;
}

int map_put(struct map *m, const char *key, void *value)
{
    size_t n = strlen(key);
    uint64_t h = hash_bytes(key, n);
    if (m->nbuckets) {
        for (struct map_entry *e = m->buckets[h & (m->nbuckets - 1)]; e; e = e->next)
            if (e->hash == h && e->keylen == n && memcmp(e->key, key, n) == 0) {
                e->key = key;
                e->value = value;
                return 0;
            }
    }
    if (m->count + 1 > m->nbuckets && grow(m))
        return RF_ENOMEM;
    struct map_entry *e = malloc(sizeof *e);
    if (!e)
        return RF_ENOMEM;
    e->key = key;
    e->keylen = n;
    e->hash = h;
    e->value = value;
    e->next = m->buckets[h & (m->nbuckets - 1)];
    m->buckets[h & (m->nbuckets - 1)] = e;
    m->count++;
    return 0;
}

void *map_del(struct map *m, const char *key)
{
    if (!m->nbuckets)
        return NULL;
    size_t n = strlen(key);
    uint64_t h = hash_bytes(key, n);
    for (struct map_entry **p = &m->buckets[h & (m->nbuckets - 1)]; *p; p = &(*p)->next) {
        struct map_entry *e = *p;
        if (e->hash == h && e->keylen == n && memcmp(e->key, key, n) == 0) {
            void *v = e->value;
            *p = e->next;
            free(e);
            m->count--;
            return v;
        }
    }
    return NULL;
}

void map_each(const struct map *m, void (*fn)(void *value, void *arg), void *arg)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct map_entry *next;
        for (struct map_entry *e = m->buckets[i]; e; e = next) {
            next = e->next; /* fn may delete e */
            fn(e->value, arg);
        }
    }
}

void map_free(struct map *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        struct map_entry *e = m->buckets[i];
        while (e) {
            struct map_entry *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
    m->nbuckets = m->count = 0;
}
