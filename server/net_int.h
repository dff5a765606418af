/* The inside of net.c's HTTP side, for the import's (net_import.c): the
 * session of an HTTP connection and the answers net.c writes. */
#ifndef REFINE_NET_INT_H
#define REFINE_NET_INT_H

#include <libwebsockets.h>
#include <stdbool.h>
#include <stddef.h>

#include "room.h"

struct app;
struct export_job;
struct import;
struct move_archive;
struct move_make;
struct move_wait;
struct room;

/* An export's answer (made once its room is loaded and its body built), for HTTP_WRITEABLE. */
struct later {
    bool ready;
    int status;
    const char *type;
    char *body; /* owned */
    size_t len;
    char disposition[96]; /* "": none */
};

struct http_session {
    const unsigned char *body; /* what HTTP_WRITEABLE writes: owned, or embedded */
    unsigned char *owned;
    size_t len, off;
    bool head; /* a HEAD request: every answer to it goes without its body */
    /* An export under way (api_request): its room loading, its body building, its answer. */
    struct lws *wsi;
    bool loading;
    struct export_job *job; /* its body being built on a worker */
    struct later later;
    char token[128], format[32], room[ROOM_ID_MAX + 1];
    /* An import under way (import_request): its body, then its parse, then its apply. */
    bool importing, dry_run, too_large, parsing;
    bool counted; /* one of the imports in flight (net_import.c) */
    char *ibody;  /* the body read so far */
    size_t ilen, icap;
    struct import *imp; /* parsing (on a worker) or parsed */
    /* A move's step under way (net_move.c): which, the room it names (room), its new id. */
    int move_op;
    char move_to[ROOM_ID_MAX + 1];
    struct move_archive *archive; /* being written on a worker */
    struct move_make *make;       /* the new room's archive, being parsed on a worker */
    struct move_wait *move_wait;  /* waiting for what it wrote to be committed */
};

/* The request header t into buf (len bytes): 0, or -1 when absent or too long. */
int header(struct lws *wsi, enum lws_token_indexes t, char *buf, int len);
/* An answer now, never cached: its headers, then body (taken; may be NULL
 * when len is 0) from HTTP_WRITEABLE; disposition may be NULL. */
int respond(struct lws *wsi, struct http_session *s, int status, const char *type, char *body,
            size_t len, const char *disposition);
/* A JSON error body {code, msg} (msg without quotes) with an HTTP status, now. */
int respond_error(struct lws *wsi, struct http_session *s, int status, int code, const char *msg);
/* The answer of s's export or import (body taken), for the next HTTP_WRITEABLE. */
void answer_later(struct http_session *s, int status, const char *type, char *body, size_t len,
                  const char *disposition);
void error_later(struct http_session *s, int status, int code, const char *msg);

/* The room r (NULL: err says why) refuses s's token unless it is the
 * facilitator's or the owner's: true once the refusal is answered (401 for
 * an unknown room or a wrong token, alike; 403 naming `what`). */
bool room_answer_refused(struct http_session *s, struct room *r, int err, const char *what);

/* net_api.c: a request under /api/ (path borrowed): the export here, the
 * import net_import.c's. Returns as an lws HTTP callback does. */
int api_request(struct app *app, struct lws *wsi, struct http_session *s, const char *path,
                bool get_or_head, bool post);
/* The connection goes (or lws rebinds its session): whatever s's export or
 * import waits for is dropped. */
void api_drop(struct app *app, struct http_session *s);

/* net_metrics.c: GET /metrics (metrics.h), and the gauges it counts at each scrape. */
struct metrics_gauges;
int net_metrics(struct app *app, struct lws *wsi, struct http_session *s);
void net_metrics_gauges(struct app *app, struct metrics_gauges *g);

/* net_import.c: POST /api/rooms/{room}/import (import.h). */
bool http_import_path(const char *path);
/* The request's headers: 0 to read its body (http_import_body), else as respond_error. */
int http_import_request(struct lws *wsi, struct http_session *s, const char *path);
void http_import_body(struct http_session *s, const void *in, size_t len);
/* The body is read: the room is found, then the body parsed and applied. */
int http_import_done(struct app *app, struct http_session *s);
/* The connection goes: whatever the import waits for is dropped. */
void http_import_drop(struct http_session *s);

/* net_move.c: the endpoints of moving a room (move.h), and 308 for any
 * /api/rooms/{room}/... of a room that moved away. */
bool net_move_claims(struct app *app, const char *path);
int net_move_request(struct app *app, struct lws *wsi, struct http_session *s, const char *path,
                     bool post);
/* The body of POST /api/instances/{name}/rooms is read (as an import's). */
int net_move_body_done(struct app *app, struct http_session *s);
/* The connection goes: whatever the move's step waits for is dropped. */
void net_move_drop(struct http_session *s);

#endif
