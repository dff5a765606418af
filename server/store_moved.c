/* The rooms moved away from this instance (table `moved`, schema 5): read
 * once at open and held in memory, so that a join or a request naming one
 * is answered `moved` on the loop without reading the disk. A move adds its
 * row through the writer (store_put_moved, a batch record like any other),
 * then, once committed, here (store_moved_add). */
#include <stdlib.h>
#include <string.h>

#include "errors.h"
#include "log.h"
#include "store_int.h"

struct store_moved {
    char *to;
    char room[]; /* the map's key */
};

int store_moved_add(struct store *s, const char *room, const char *to)
{
    size_t n = strlen(room), t = strlen(to);
    struct store_moved *m = malloc(sizeof *m + n + 1 + t + 1);
    if (!m)
        return RF_ENOMEM;
    memcpy(m->room, room, n + 1);
    m->to = m->room + n + 1;
    memcpy(m->to, to, t + 1);
    struct store_moved *old = map_get(&s->moved, room, n);
    if (map_put(&s->moved, m->room, m)) {
        free(m);
        return RF_ENOMEM;
    }
    free(old);
    return 0;
}

const char *store_moved_to(const struct store *s, const char *room, size_t n)
{
    const struct store_moved *m = map_get(&s->moved, room, n);
    return m ? m->to : NULL;
}

uint64_t store_failures(const struct store *s)
{
    return s->failures;
}

int store__load_moved(struct store *s)
{
    sqlite3_stmt *st;
    int rc = 0;
    if (sqlite3_prepare_v2(s->wdb, "SELECT room, to_room FROM moved", -1, &st, NULL) != SQLITE_OK) {
        log_error("sqlite: %s (reading the moved rooms)", sqlite3_errmsg(s->wdb));
        return RF_EINTERNAL;
    }
    int step;
    while (!rc && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = store_moved_add(s, (const char *)sqlite3_column_text(st, 0),
                             (const char *)sqlite3_column_text(st, 1));
    if (!rc && step != SQLITE_DONE)
        rc = RF_EINTERNAL;
    sqlite3_finalize(st);
    return rc;
}

static void free_moved(void *value, void *arg)
{
    struct map *m = arg;
    struct store_moved *mv = value;
    map_del(m, mv->room);
    free(mv);
}

void store__free_moved(struct store *s)
{
    map_each(&s->moved, free_moved, &s->moved);
    map_free(&s->moved);
}
