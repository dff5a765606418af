/* The HTTP API (/api/...): the routing of its requests, and the export of a
 * room (GET /api/rooms/{room}/export). The import is net_import.c's. */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "errors.h"
#include "export.h"
#include "loader.h"
#include "log.h"
#include "net_int.h"
#include "reply.h"
#include "room.h"
#include "room_load.h"

#define EXPORT_TIMEOUT_S 60 /* an export's load, conversion and writing, at most */

/* RFC 9110 15.5.20: the request reached a server that is not its to answer. */
#define HTTP_STATUS_MISDIRECTED 421

/* Drops what s's export is waiting for (its connection goes, or lws
 * rebinds the session: HTTP_DROP_PROTOCOL). */
void api_drop(struct app *app, struct http_session *s)
{
    if (s->loading && app->loader)
        loader_cancel(app->loader, s);
    s->loading = false;
    export_abandon(s->job); /* the worker finishes; its result is dropped */
    s->job = NULL;
    http_import_drop(s);
    net_move_drop(s);
    free(s->later.body);
    s->later = (struct later){0};
}

static void export_failed(struct http_session *s)
{
    error_later(s, HTTP_STATUS_INTERNAL_SERVER_ERROR, RF_EINTERNAL,
                "The export could not be built; try again.");
}

static void on_export_done(void *arg, int rc, char *body, size_t len, const char *type)
{
    struct http_session *s = arg;
    s->job = NULL;
    if (rc) {
        export_failed(s);
        return;
    }
    char disposition[96];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"refine-%s.%s\"", s->room,
             strcmp(s->format, "csv") == 0    ? "csv"
             : strcmp(s->format, "jira") == 0 ? "jira.csv"
                                              : "json");
    log_info("room %s exported as %s (%zu bytes)", s->room, s->format, len);
    answer_later(s, HTTP_STATUS_OK, type, body, len, disposition);
}

/* HTTP 421 and {"code": "wrong_instance", "home": home, "msg": msg} (both
 * borrowed): for s's next HTTP_WRITEABLE when later (answer_later; returns
 * 0), else now (returns as respond() does). */
static int answer_wrong_instance(struct lws *wsi, struct http_session *s, const char *home,
                                 const char *msg, bool later)
{
    struct reply_fields x = {0};
    char *body;
    size_t n;
    reply_fields_add(&x, "home", home);
    if (reply_error_json(RF_EWRONG_INSTANCE, msg, &x, &body, &n)) {
        if (later)
            error_later(s, HTTP_STATUS_INTERNAL_SERVER_ERROR, RF_EINTERNAL,
                        "The answer could not be made; try again.");
        return later ? 0 : 1;
    }
    if (later) {
        answer_later(s, HTTP_STATUS_MISDIRECTED, "application/json", body, n, NULL);
        return 0;
    }
    return respond(wsi, s, HTTP_STATUS_MISDIRECTED, "application/json", body, n, NULL);
}

bool room_answer_refused(struct http_session *s, struct room *r, int err, const char *what)
{
    char msg[192], home[INSTANCE_NAME_MAX + 1];
    struct app *app = lws_context_user(lws_get_context(s->wsi));
    if (!r && err == RF_ENOT_FOUND && room_elsewhere(app, s->room, strlen(s->room), home)) {
        /* Not here, and its id names its home: 421 naming it. */
        snprintf(msg, sizeof msg,
                 "Room %s lives on instance %s; this is instance %s (connect through the "
                 "balancer).",
                 s->room, home, app->instance);
        answer_wrong_instance(s->wsi, s, home, msg, true);
        return true;
    }
    if (!r && err != RF_ENOT_FOUND) {
        error_later(s, HTTP_STATUS_INTERNAL_SERVER_ERROR, RF_EINTERNAL,
                    "The room could not be read; try again.");
        return true;
    }
    /* An unknown room and a wrong token look the same from outside. */
    int role = r ? room_token_role(r, s->token, strlen(s->token)) : -1;
    if (role < 0) {
        error_later(s, HTTP_STATUS_UNAUTHORIZED, RF_EAUTH_FAILED,
                    "This token does not open that room.");
        return true;
    }
    if (role != ROLE_FACILITATOR && role != ROLE_OWNER) {
        snprintf(msg, sizeof msg, "Only the facilitator's or the owner's token may %s.", what);
        error_later(s, HTTP_STATUS_FORBIDDEN, RF_EFORBIDDEN, msg);
        return true;
    }
    return false;
}

/* The export of room r (NULL: err says why) for s's token and format: the
 * body is built on a worker (export.h). */
static void export_ready(struct http_session *s, struct room *r, int err)
{
    if (room_answer_refused(s, r, err, "export"))
        return;
    snprintf(s->room, sizeof s->room, "%s", r->id);
    struct app *app = lws_context_user(lws_get_context(s->wsi));
    int rc = export_start(app->loop, r, s->format, on_export_done, s, &s->job);
    if (rc == RF_EBAD_REQUEST)
        error_later(s, HTTP_STATUS_BAD_REQUEST, rc, "format must be json or csv.");
    else if (rc)
        export_failed(s);
}

static void on_export_room(void *arg, struct room *r, int err)
{
    struct http_session *s = arg;
    s->loading = false;
    export_ready(s, r, err);
}

/* /api/instances/<name>/...: a request for instance <name>. Another
 * instance's is answered 421 wrong_instance naming it (the balancer sent it
 * astray). Returns true when it answered (*rc: what the HTTP callback
 * returns), false when path is not one of these or names this instance. */
static bool instance_request(struct app *app, struct lws *wsi, struct http_session *s,
                             const char *path, int *rc)
{
    const char *prefix = "/api/instances/";
    size_t pl = strlen(prefix);
    if (strncmp(path, prefix, pl) != 0)
        return false;
    const char *name = path + pl, *end = strchr(name, '/');
    size_t n = end ? (size_t)(end - name) : strlen(name);
    if (!config_instance_valid(name, n)) {
        *rc = respond_error(wsi, s, HTTP_STATUS_NOT_FOUND, RF_ENOT_FOUND,
                            "No such resource: an instance's name is 1 to 16 of a-z and 0-9.");
        return true;
    }
    if (n == strlen(app->instance) && memcmp(name, app->instance, n) == 0)
        return false; /* this instance's own endpoints (moving a room here) go on from here */
    char home[INSTANCE_NAME_MAX + 1], msg[128];
    snprintf(home, sizeof home, "%.*s", (int)n, name);
    snprintf(msg, sizeof msg, "This is instance %s, not %s (connect through the balancer).",
             app->instance, home);
    *rc = answer_wrong_instance(wsi, s, home, msg, false);
    return true;
}

/* GET (or HEAD) /api/rooms/{room}/export?format=json|csv with the room's
 * facilitator or owner token as "Authorization: Bearer <token>". path is
 * borrowed. */
int api_request(struct app *app, struct lws *wsi, struct http_session *s, const char *path,
                bool get_or_head, bool post)
{
    char uri[160], auth[128], fmt[32];
    const char *prefix = "/api/rooms/", *suffix = "/export";
    int rc;
    if (instance_request(app, wsi, s, path, &rc))
        return rc;
    net_move_drop(s); /* what a move's step before it on this connection left */
    if (net_move_claims(app, path))
        return net_move_request(app, wsi, s, path, post);
    if (post && http_import_path(path))
        return http_import_request(wsi, s, path);
    if (http_import_path(path))
        return respond_error(wsi, s, HTTP_STATUS_METHOD_NOT_ALLOWED, RF_EBAD_REQUEST,
                             "POST the file to /api/rooms/{room}/import.");
    if (!get_or_head)
        return respond_error(wsi, s, HTTP_STATUS_METHOD_NOT_ALLOWED, RF_EBAD_REQUEST,
                             "Only GET /api/rooms/{room}/export and POST "
                             "/api/rooms/{room}/import are served.");
    if (strlen(path) >= sizeof uri)
        return respond_error(wsi, s, HTTP_STATUS_NOT_FOUND, RF_ENOT_FOUND, "No such resource.");
    strcpy(uri, path);
    size_t n = strlen(uri), pl = strlen(prefix), sl = strlen(suffix);
    if (n <= pl + sl || strncmp(uri, prefix, pl) || strcmp(uri + n - sl, suffix))
        return respond_error(wsi, s, HTTP_STATUS_NOT_FOUND, RF_ENOT_FOUND,
                             "No such resource; exports are at /api/rooms/{room}/export.");
    const char *id = uri + pl;
    size_t idlen = n - pl - sl;
    if (header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, auth, sizeof auth) ||
        strncmp(auth, "Bearer ", 7) != 0)
        return respond_error(wsi, s, HTTP_STATUS_UNAUTHORIZED, RF_EAUTH_FAILED,
                             "Send the room's facilitator or owner token as Authorization: "
                             "Bearer <token>.");
    /* Answered from HTTP_WRITEABLE (answer_later), once the room is in
     * memory: a room that is not is loaded off the loop first. */
    snprintf(s->token, sizeof s->token, "%s", auth + 7);
    snprintf(s->format, sizeof s->format, "json");
    if (lws_get_urlarg_by_name(wsi, "format=", fmt, sizeof fmt))
        snprintf(s->format, sizeof s->format, "%s", fmt + strlen("format="));
    s->wsi = wsi;
    /* not lws' 5 s keep-alive timeout: a large room's load may take longer */
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, EXPORT_TIMEOUT_S);
    struct room *r = room_find(app, id, idlen);
    snprintf(s->room, sizeof s->room, "%.*s", (int)idlen, id); /* cut if too long: no room */
    if (r || idlen > ROOM_ID_MAX) {
        export_ready(s, r, RF_ENOT_FOUND);
        return 0;
    }
    rc = loader_load(app->loader, s->room, on_export_room, s);
    if (rc)
        return respond_error(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR, RF_EINTERNAL,
                             "The room could not be read; try again.");
    s->loading = true;
    return 0;
}
