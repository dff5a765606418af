#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "codec.h"
#include "errors.h"
#include "import.h"
#include "json.h"
#include "loader.h"
#include "net_int.h"
#include "room.h"
#include "room_load.h"

#define IMPORT_TIMEOUT_S 60 /* an import's load, parse and apply, at most */
#define IMPORTS_MAX      4  /* imports in flight at once (each may hold a 32 MiB body) */

static size_t in_flight;

/* s's import no longer holds a place among those in flight. */
static void release(struct http_session *s)
{
    if (s->counted)
        in_flight--;
    s->counted = false;
}

/* ---- import (POST /api/rooms/{room}/import) ------------------------------- */

/* An error answer whose sentence may hold quotes: {code, msg} as JSON. */
static void error_later_text(struct http_session *s, int status, int code, const char *msg)
{
    struct codec_buf b;
    msgpack_packer pk;
    char *body;
    size_t n = 0;
    codec_buf_init(&b, 0);
    codec_packer_init(&pk, &b);
    msgpack_pack_map(&pk, 2);
    codec_pack_kv_str(&pk, "code", rf_err_code(code));
    codec_pack_kv_str(&pk, "msg", msg);
    json_from_msgpack(&b, &body, &n);
    answer_later(s, status, "application/json", body, n, NULL);
}

bool http_import_path(const char *path)
{
    const char *prefix = "/api/rooms/", *suffix = "/import";
    size_t n = strlen(path), pl = strlen(prefix), sl = strlen(suffix);
    return n > pl + sl && strncmp(path, prefix, pl) == 0 && strcmp(path + n - sl, suffix) == 0;
}

/* The HTTP status of an import's failure. */
static int import_status(int rc)
{
    return rc == RF_ETOO_LARGE     ? HTTP_STATUS_REQ_ENTITY_TOO_LARGE
           : rc == RF_EBAD_REQUEST ? HTTP_STATUS_BAD_REQUEST
                                   : HTTP_STATUS_INTERNAL_SERVER_ERROR;
}

static void import_room_ready(struct http_session *s, struct room *r, int err);

static void on_import_room(void *arg, struct room *r, int err)
{
    struct http_session *s = arg;
    s->loading = false;
    import_room_ready(s, r, err);
}

/* The room of s's import, in memory now or loaded off the loop first. */
static void import_find_room(struct app *app, struct http_session *s)
{
    struct room *r = room_find(app, s->room, strlen(s->room));
    if (r) {
        import_room_ready(s, r, 0);
        return;
    }
    if (loader_load(app->loader, s->room, on_import_room, s)) {
        error_later(s, HTTP_STATUS_INTERNAL_SERVER_ERROR, RF_EINTERNAL,
                    "The room could not be read; try again.");
        return;
    }
    s->loading = true;
}

static void on_import_parsed(void *arg, struct import *im, int rc, const char *why)
{
    struct http_session *s = arg;
    s->parsing = false;
    if (rc) {
        error_later_text(s, import_status(rc), rc, why);
        import_free(im);
        s->imp = NULL;
        release(s);
        return;
    }
    s->imp = im;
    import_find_room(lws_context_user(lws_get_context(s->wsi)),
                     s); /* it may have been unloaded meanwhile */
}

/* Whether the body is CSV: ?format= says, else the Content-Type, else its
 * first character ('{' is JSON). */
static bool import_is_csv(struct http_session *s)
{
    char type[64];
    if (strcmp(s->format, "csv") == 0 || strcmp(s->format, "jira") == 0)
        return true;
    if (strcmp(s->format, "json") == 0)
        return false;
    if (!header(s->wsi, WSI_TOKEN_HTTP_CONTENT_TYPE, type, sizeof type)) {
        if (strncmp(type, "text/csv", 8) == 0)
            return true;
        if (strncmp(type, "application/json", 16) == 0)
            return false;
    }
    size_t i = s->ilen >= 3 && memcmp(s->ibody, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    while (i < s->ilen && strchr(" \t\r\n", s->ibody[i]))
        i++;
    return !(i < s->ilen && s->ibody[i] == '{');
}

/* The room of s's import is here (r; NULL: err says why): the token's role,
 * then the parse (first time) or the apply (once parsed). */
static void import_room_ready(struct http_session *s, struct room *r, int err)
{
    struct app *app = lws_context_user(lws_get_context(s->wsi));
    if (room_answer_refused(s, r, err, "import"))
        return;
    if (!s->imp) {
        bool csv = import_is_csv(s);
        char *body = s->ibody;
        size_t len = s->ilen;
        s->ibody = NULL;
        s->ilen = s->icap = 0;
        if (import_start(app->loop, body, len, csv, on_import_parsed, s, &s->imp))
            error_later(s, HTTP_STATUS_INTERNAL_SERVER_ERROR, RF_ENOMEM,
                        "The import could not be started; try again.");
        else
            s->parsing = true;
        return;
    }
    char why[512], *body = NULL;
    size_t len = 0;
    int rc = import_apply(s->imp, app, r, s->dry_run, &body, &len, why, sizeof why);
    import_free(s->imp);
    s->imp = NULL;
    release(s);
    if (rc)
        error_later_text(s, import_status(rc), rc, why);
    else
        answer_later(s, HTTP_STATUS_OK, "application/json", body, len, NULL);
}

/* POST /api/rooms/{room}/import[?format=json|csv][&dry_run=1] with the
 * facilitator's or owner's token: the body is read (import_body), then
 * parsed and applied (import_body_done). path is borrowed. */
int http_import_request(struct lws *wsi, struct http_session *s, const char *path)
{
    char auth[128], arg[32];
    size_t pl = strlen("/api/rooms/"), idlen = strlen(path) - pl - strlen("/import");
    if (header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, auth, sizeof auth) ||
        strncmp(auth, "Bearer ", 7) != 0)
        return respond_error(wsi, s, HTTP_STATUS_UNAUTHORIZED, RF_EAUTH_FAILED,
                             "Send the room's facilitator or owner token as Authorization: "
                             "Bearer <token>.");
    if (idlen > ROOM_ID_MAX)
        return respond_error(wsi, s, HTTP_STATUS_UNAUTHORIZED, RF_EAUTH_FAILED,
                             "This token does not open that room.");
    snprintf(s->token, sizeof s->token, "%s", auth + 7);
    snprintf(s->room, sizeof s->room, "%.*s", (int)idlen, path + pl);
    s->format[0] = '\0';
    if (lws_get_urlarg_by_name(wsi, "format=", arg, sizeof arg))
        snprintf(s->format, sizeof s->format, "%s", arg + strlen("format="));
    if (s->format[0] && strcmp(s->format, "csv") && strcmp(s->format, "jira") &&
        strcmp(s->format, "json"))
        return respond_error(wsi, s, HTTP_STATUS_BAD_REQUEST, RF_EBAD_REQUEST,
                             "format must be json or csv.");
    s->dry_run = lws_get_urlarg_by_name(wsi, "dry_run=", arg, sizeof arg) &&
                 strcmp(arg + strlen("dry_run="), "0") != 0 &&
                 strcmp(arg + strlen("dry_run="), "false") != 0;
    s->wsi = wsi;
    /* A token that the room (in memory) refuses is answered without reading the body. */
    struct app *app = lws_context_user(lws_get_context(wsi));
    struct room *r = room_find(app, s->room, strlen(s->room));
    if (r && room_answer_refused(s, r, 0, "import"))
        return 0;
    if (in_flight >= IMPORTS_MAX)
        return respond_error(wsi, s, HTTP_STATUS_SERVICE_UNAVAILABLE, RF_EINTERNAL,
                             "Other imports are under way; try again in a moment.");
    in_flight++;
    s->counted = true;
    s->importing = true;
    s->too_large = false;
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, IMPORT_TIMEOUT_S);
    return 0;
}

/* A piece of s's import body: kept, up to IMPORT_MAX_BYTES. */
void http_import_body(struct http_session *s, const void *in, size_t len)
{
    if (s->too_large || s->ilen + len > IMPORT_MAX_BYTES) {
        s->too_large = true;
        return;
    }
    if (s->ilen + len > s->icap) {
        size_t cap = s->icap ? s->icap : 65536;
        while (cap < s->ilen + len)
            cap *= 2;
        char *b = realloc(s->ibody, cap);
        if (!b) {
            s->too_large = true;
            return;
        }
        s->ibody = b;
        s->icap = cap;
    }
    memcpy(s->ibody + s->ilen, in, len);
    s->ilen += len;
}

int http_import_done(struct app *app, struct http_session *s)
{
    if (s->move_op)
        return net_move_body_done(app, s);
    if (s->too_large) {
        error_later(s, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, RF_ETOO_LARGE,
                    "The file is larger than the 32 MiB an import takes.");
        return 0;
    }
    if (!s->ilen) {
        error_later(s, HTTP_STATUS_BAD_REQUEST, RF_EBAD_REQUEST,
                    "The import has no body: send the JSON or CSV file as the request body.");
        return 0;
    }
    import_find_room(app, s);
    return 0;
}

void http_import_drop(struct http_session *s)
{
    release(s);
    if (s->parsing)
        import_abandon(s->imp); /* the worker finishes; the import frees itself */
    else
        import_free(s->imp);
    s->imp = NULL;
    s->parsing = s->importing = false;
    free(s->ibody);
    s->ibody = NULL;
    s->ilen = s->icap = 0;
}
