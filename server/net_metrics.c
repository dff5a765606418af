/* GET /metrics: the gauges of a scrape (the connections' as conn.c keeps
 * them; the participants online counted in the rooms in memory, a walk of
 * each room's voters) and metrics.h's text. */
#include <stdlib.h>

#include "app.h"
#include "errors.h"
#include "metrics.h"
#include "net_int.h"
#include "room.h"
#include "store.h"

static void count_room(struct room *r, void *arg)
{
    struct metrics_gauges *g = arg;
    g->participants_online += r->observers_online; /* a counter; the others a walk */
    for (size_t i = 0; i < r->nactors; i++)
        g->participants_online += r->actors[i]->online > 0;
}

void net_metrics_gauges(struct app *app, struct metrics_gauges *g)
{
    const struct metrics *m = &app->metrics;
    *g = (struct metrics_gauges){.instance = app->instance,
                                 .connections = m->connections,
                                 .rooms_loaded = app->rooms.count,
                                 .rooms = app->room_count,
                                 .queued_bytes = m->queued_bytes,
                                 .slow_readers = m->slow_readers,
                                 .log_pending = app->store ? store_log_pending(app->store) : 0};
    room_each(app, count_room, g);
}

int net_metrics(struct app *app, struct lws *wsi, struct http_session *s)
{
    struct metrics_gauges g;
    char *body;
    size_t len;
    net_metrics_gauges(app, &g);
    if (metrics_text(&app->metrics, &g, &body, &len))
        return respond_error(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR, RF_ENOMEM,
                             "Out of memory building the metrics.");
    return respond(wsi, s, HTTP_STATUS_OK, METRICS_CONTENT_TYPE, body, len, NULL);
}
