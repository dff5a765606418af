/* GET /metrics: the gauges counted from the connections and the rooms in
 * memory at each scrape, and metrics.h's text. A walk of every connection
 * and every loaded room, on the loop thread: cheap next to what those
 * connections and rooms cost the loop every second (docs/BENCHMARKS.md). */
#include <stdlib.h>

#include "app.h"
#include "conn.h"
#include "errors.h"
#include "metrics.h"
#include "net_int.h"
#include "room.h"

static void count_room(struct room *r, void *arg)
{
    struct metrics_gauges *g = arg;
    g->participants_online += r->observers_online; /* a counter; the others a walk */
    for (size_t i = 0; i < r->nactors; i++)
        g->participants_online += r->actors[i]->online > 0;
}

void net_metrics_gauges(struct app *app, struct metrics_gauges *g)
{
    *g = (struct metrics_gauges){
        .instance = app->instance, .rooms_loaded = app->rooms.count, .rooms = app->room_count};
    list_each(l, &app->conns)
    {
        const struct conn *c = conn_of_all(l);
        g->connections++;
        g->queued_bytes += c->qbytes;
        g->slow_readers += c->over_since != 0 && !c->close_code;
    }
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
