/* The HTTP side of moving a room (move.h; PROTOCOL.md "Moving a room"): the
 * operator's endpoints, with --admin-token as "Authorization: Bearer <T>",
 *   POST /api/rooms/{room}/move            freeze, then the archive (200)
 *   POST /api/instances/{name}/rooms       the archive as a new room here (201)
 *   POST /api/rooms/{room}/move/finish?to= record the move, close, unload (200)
 *   POST /api/rooms/{room}/move/abort      unfreeze (200)
 * and, for any other /api/rooms/{room}/... of a room that moved away, 308
 * to the same path and query with the new id. Each answers once what it did
 * is committed (a poll of the store's durable count, every few ms). */
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "clock.h"
#include "errors.h"
#include "loader.h"
#include "log.h"
#include "move.h"
#include "net_int.h"
#include "reply.h"
#include "room.h"
#include "room_load.h"
#include "store.h"
#include "token.h"

#define WAIT_POLL_MS   5   /* how often a step looks whether its rows are committed */
#define MOVE_TIMEOUT_S 120 /* a step (a large room's archive, its rows committed) at most */

enum { OP_NONE, OP_MOVE, OP_MAKE, OP_FINISH, OP_ABORT };

typedef void (*then_fn)(struct app *app, struct http_session *s, bool ok);

/* Waits for the store's durable count to reach upto (the session may go
 * meanwhile: s NULL, and the wait closes itself). */
struct move_wait {
    uv_timer_t t;
    struct app *app;
    struct http_session *s;
    uint64_t upto, failures;
    then_fn then;
};

static void free_wait(uv_handle_t *h)
{
    free(h->data);
}

static void on_poll(uv_timer_t *t)
{
    struct move_wait *w = t->data;
    struct store *st = w->app->store;
    if (w->s && store_durable(st) < w->upto)
        return;
    uv_timer_stop(t);
    uv_close((uv_handle_t *)t, free_wait);
    if (!w->s)
        return;
    w->s->move_wait = NULL;
    w->then(w->app, w->s, store_failures(st) == w->failures);
}

/* Calls then(app, s, ok) once everything appended so far is durable; ok
 * false when a transaction failed meanwhile (perhaps this one). */
static int wait_durable(struct app *app, struct http_session *s, uint64_t upto, then_fn then)
{
    struct move_wait *w = calloc(1, sizeof *w);
    if (!w || uv_timer_init(app->loop, &w->t)) {
        free(w);
        return RF_ENOMEM;
    }
    w->t.data = w;
    w->app = app;
    w->s = s;
    w->upto = upto;
    w->failures = store_failures(app->store);
    w->then = then; /* (referenced: at shutdown the loop runs until it has closed itself) */
    uv_timer_start(&w->t, on_poll, 0, WAIT_POLL_MS);
    s->move_wait = w;
    return 0;
}

void net_move_drop(struct http_session *s)
{
    if (s->move_wait)
        s->move_wait->s = NULL;
    s->move_wait = NULL;
    move_archive_abandon(s->archive);
    s->archive = NULL;
    move_make_abandon(s->make);
    s->make = NULL;
    s->move_op = OP_NONE;
}

/* A JSON answer {"room": a[, key: b][, "home": h]} for later (the values
 * are room ids: no quote in them). */
static void answer_json(struct http_session *s, int status, const char *a, const char *key,
                        const char *b)
{
    char *body = malloc(256);
    char home[INSTANCE_NAME_MAX + 1];
    size_t n = 0;
    if (body) {
        room_home(b ? b : a, home);
        n = (size_t)snprintf(body, 256, "{\"room\":\"%s\"", a);
        if (key)
            n += (size_t)snprintf(body + n, 256 - n, ",\"%s\":\"%s\"", key, b);
        n += (size_t)snprintf(body + n, 256 - n, ",\"home\":\"%s\"}\n", home);
    }
    answer_later(s, status, "application/json", body, n, NULL);
}

static void internal(struct http_session *s)
{
    error_later(s, HTTP_STATUS_INTERNAL_SERVER_ERROR, RF_EINTERNAL,
                "The move could not be recorded; nothing changed. Try again.");
}

/* ---- POST /api/rooms/{room}/move ----------------------------------------------- */

static void on_archive(void *arg, int rc, char *json, size_t len)
{
    struct http_session *s = arg;
    s->archive = NULL;
    struct app *app = lws_context_user(lws_get_context(s->wsi));
    struct room *r = room_find(app, s->room, strlen(s->room));
    if (rc) {
        if (r)
            r->moving = false; /* as it was */
        log_error("room %s: its archive could not be written (%s)", s->room, rf_err_code(rc));
        internal(s);
        return;
    }
    log_info("room %s frozen for a move; its archive is %zu bytes", s->room, len);
    answer_later(s, HTTP_STATUS_OK, "application/json", json, len, NULL);
}

static void archive_when_durable(struct app *app, struct http_session *s, bool ok)
{
    (void)ok; /* what failed reloads as committed: the archive reads that */
    struct room *r = room_find(app, s->room, strlen(s->room));
    if (!r || !r->moving || move_archive_start(app, r, on_archive, s, &s->archive)) {
        if (r)
            r->moving = false;
        internal(s);
    }
}

static void finish_when_durable(struct app *app, struct http_session *s, bool ok)
{
    struct room *r = room_find(app, s->room, strlen(s->room));
    if (!ok || store_moved_add(app->store, s->room, s->move_to)) {
        internal(s); /* not recorded (or not in memory): still frozen; finish again or abort */
        return;
    }
    log_info("room %s moved to %s", s->room, s->move_to);
    if (r)
        move_finish(app, r, s->move_to);
    answer_json(s, HTTP_STATUS_OK, s->room, "to", s->move_to);
}

static void move_ready(struct app *app, struct http_session *s, struct room *r, int err)
{
    if (!r) {
        if (err == RF_ENOT_FOUND)
            error_later(s, HTTP_STATUS_NOT_FOUND, RF_ENOT_FOUND, "There is no room with this id.");
        else
            internal(s);
        return;
    }
    switch (s->move_op) {
    case OP_MOVE:
        r->moving = true; /* from now on, no change: then all it wrote, committed */
        if (wait_durable(app, s, r->records_upto, archive_when_durable)) {
            r->moving = false;
            internal(s);
        }
        return;
    case OP_ABORT:
        if (r->moving)
            log_info("room %s: its move was aborted; it takes changes again", r->id);
        r->moving = false;
        answer_json(s, HTTP_STATUS_OK, r->id, NULL, NULL);
        return;
    default: /* OP_FINISH */
        break;
    }
    if (!r->moving) {
        error_later(s, HTTP_STATUS_CONFLICT, RF_ECONFLICT,
                    "The room is not being moved: POST /api/rooms/{room}/move first.");
        return;
    }
    /* The record goes with the next batch; the room's own records are all
     * committed (it is frozen), so the move is durable once it is. */
    if (store_put_moved(app->store, r->id, s->move_to, clock_now_ms())) {
        internal(s);
        return;
    }
    if (wait_durable(app, s, store_added(app->store), finish_when_durable))
        internal(s);
}

static void on_room(void *arg, struct room *r, int err)
{
    struct http_session *s = arg;
    s->loading = false;
    move_ready(lws_context_user(lws_get_context(s->wsi)), s, r, err);
}

/* ---- POST /api/instances/{name}/rooms -------------------------------------------- */

static void on_new_room(void *arg, struct room *r, int err)
{
    struct http_session *s = arg;
    s->loading = false;
    if (!r) {
        log_error("moved-in room %s could not be loaded (%s)", s->room, rf_err_code(err));
        internal(s);
        return;
    }
    log_info("room %s made from an archive: %zu items, %zu participants", r->id, r->backlog.n,
             r->nparts);
    answer_json(s, 201 /* Created */, r->id, NULL, NULL);
}

static void made_when_durable(struct app *app, struct http_session *s, bool ok)
{
    /* Loaded back: the room is what the archive held, and warm for its joiners. */
    if (!ok || loader_load(app->loader, s->room, on_new_room, s)) {
        internal(s);
        return;
    }
    s->loading = true;
    app->room_count++;
}

static void on_parsed(void *arg, struct move_make *m, int rc, const char *why)
{
    struct http_session *s = arg;
    struct app *app = lws_context_user(lws_get_context(s->wsi));
    char tok[TOKEN_LEN + 1];
    s->make = NULL;
    if (rc) {
        move_make_free(m);
        if (rc == RF_EBAD_REQUEST)
            error_later(s, HTTP_STATUS_BAD_REQUEST, rc, "The archive is not one: see its why.");
        else
            internal(s);
        log_info("a room archive was refused: %s", why);
        return;
    }
    if (token_new(tok)) {
        move_make_free(m);
        internal(s);
        return;
    }
    snprintf(s->room, sizeof s->room, "%s.%s", app->instance, tok);
    rc = move_make_apply(app, m, s->room);
    move_make_free(m);
    if (rc || wait_durable(app, s, store_added(app->store), made_when_durable))
        internal(s);
}

int net_move_body_done(struct app *app, struct http_session *s)
{
    s->importing = false;
    if (s->too_large) {
        error_later(s, HTTP_STATUS_REQ_ENTITY_TOO_LARGE, RF_ETOO_LARGE,
                    "The archive is larger than the 32 MiB a request takes.");
        return 0;
    }
    char *body = s->ibody;
    size_t len = s->ilen;
    s->ibody = NULL;
    s->ilen = s->icap = 0;
    if (!len) {
        free(body);
        error_later(s, HTTP_STATUS_BAD_REQUEST, RF_EBAD_REQUEST,
                    "POST the archive (the answer of POST /api/rooms/{room}/move) as the body.");
        return 0;
    }
    if (move_make_parse(app->loop, body, len, on_parsed, s, &s->make))
        internal(s);
    return 0;
}

/* ---- routing ------------------------------------------------------------------------ */

/* The room {room} of a path /api/rooms/{room}/... into out: its length, or 0. */
static size_t path_room(const char *path, char *out, size_t n)
{
    const char *p = "/api/rooms/";
    size_t pl = strlen(p);
    if (strncmp(path, p, pl))
        return 0;
    const char *end = strchr(path + pl, '/');
    size_t len = end ? (size_t)(end - path - pl) : 0;
    if (!len || len >= n)
        return 0;
    memcpy(out, path + pl, len);
    out[len] = '\0';
    return len;
}

bool net_move_claims(struct app *app, const char *path)
{
    char room[ROOM_ID_MAX + 1];
    size_t n = path_room(path, room, sizeof room);
    if (n &&
        (store_moved_to(app->store, room, n) || strcmp(path + 11 + n, "/move") == 0 ||
         strcmp(path + 11 + n, "/move/finish") == 0 || strcmp(path + 11 + n, "/move/abort") == 0))
        return true;
    return strncmp(path, "/api/instances/", 15) == 0;
}

/* 308 to the same path and query with room `to` in place of {room} (n bytes). */
static int redirect(struct lws *wsi, struct http_session *s, const char *path, size_t n,
                    const char *to)
{
    char loc[1400], arg[256], home[ROOM_ID_MAX + 1];
    unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof buf - 1;
    size_t l = (size_t)snprintf(loc, sizeof loc, "/api/rooms/%s%s", to, path + 11 + n);
    for (int i = 0; l < sizeof loc &&
                    lws_hdr_copy_fragment(wsi, arg, sizeof arg, WSI_TOKEN_HTTP_URI_ARGS, i) > 0;
         i++)
        l += (size_t)snprintf(loc + l, sizeof loc - l, "%c%s", i ? '&' : '?', arg);
    room_home(to, home);
    char msg[160], *body;
    size_t len;
    struct reply_fields x = {0};
    snprintf(msg, sizeof msg, "This room moved to %s on instance %s.", to, home);
    if (l >= sizeof loc || reply_fields_add(&x, "room", to) || reply_fields_add(&x, "home", home) ||
        reply_error_json(RF_EMOVED, msg, &x, &body, &len))
        return 1;
    if (lws_add_http_common_headers(wsi, 308, "application/json", len, &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"location:",
                                    (const unsigned char *)loc, (int)strlen(loc), &p, end) ||
        lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                    (const unsigned char *)"no-store", 8, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end)) {
        free(body);
        return 1;
    }
    s->body = (const unsigned char *)body;
    s->owned = (unsigned char *)body;
    s->len = s->head ? 0 : len;
    s->off = 0;
    if (!s->len) {
        free(body);
        s->owned = NULL;
        s->body = NULL;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

/* The operator's token, or an answer refusing the request (returns false). */
static int admin_refused(struct app *app, struct lws *wsi, struct http_session *s)
{
    char auth[160];
    uint8_t want[TOKEN_HASH];
    if (!app->cfg.admin_token)
        return respond_error(wsi, s, HTTP_STATUS_FORBIDDEN, RF_EFORBIDDEN,
                             "no admin token configured (start the server with --admin-token)");
    if (header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, auth, sizeof auth) ||
        strncmp(auth, "Bearer ", 7) != 0)
        return respond_error(wsi, s, HTTP_STATUS_UNAUTHORIZED, RF_EAUTH_FAILED,
                             "Send the admin token as Authorization: Bearer <token>.");
    token_hash(app->cfg.admin_token, strlen(app->cfg.admin_token), want);
    if (!token_matches(auth + 7, strlen(auth + 7), want))
        return respond_error(wsi, s, HTTP_STATUS_FORBIDDEN, RF_EFORBIDDEN,
                             "This is not the admin token.");
    return 2; /* not refused */
}

/* Whether to is a room id (as a new home makes them). */
static bool room_id_ok(const char *to)
{
    size_t n = strlen(to);
    if (!n || n > ROOM_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.", to[i]))
            return false;
    return true;
}

int net_move_request(struct app *app, struct lws *wsi, struct http_session *s, const char *path,
                     bool post)
{
    char room[ROOM_ID_MAX + 1], arg[96];
    size_t n = path_room(path, room, sizeof room);
    const char *rest = n ? path + 11 + n : "";
    const char *to = n ? store_moved_to(app->store, room, n) : NULL;
    bool finish = strcmp(rest, "/move/finish") == 0;
    s->move_to[0] = '\0';
    if (finish && lws_get_urlarg_by_name(wsi, "to=", arg, sizeof arg) &&
        strlen(arg + 3) <= ROOM_ID_MAX)
        memcpy(s->move_to, arg + 3, strlen(arg + 3) + 1);
    if (to && !(finish && strcmp(to, s->move_to) == 0))
        return redirect(wsi, s, path, n, to);
    if (!post)
        return respond_error(wsi, s, HTTP_STATUS_METHOD_NOT_ALLOWED, RF_EBAD_REQUEST,
                             "The move's endpoints take POST.");
    int rc = admin_refused(app, wsi, s);
    if (rc != 2)
        return rc;
    s->wsi = wsi;
    lws_set_timeout(wsi, PENDING_TIMEOUT_HTTP_CONTENT, MOVE_TIMEOUT_S);
    if (!n) { /* /api/instances/{name}/rooms */
        /* another instance's name: answered 421 by api_request (net_api.c) */
        const char *slash = strchr(path + 15, '/');
        if (!slash || strcmp(slash, "/rooms") != 0)
            return respond_error(wsi, s, HTTP_STATUS_NOT_FOUND, RF_ENOT_FOUND,
                                 "No such resource; a room is made at "
                                 "/api/instances/{name}/rooms.");
        s->move_op = OP_MAKE;
        s->importing = true; /* the body is read as an import's is (net_import.c) */
        s->too_large = false;
        return 0;
    }
    s->move_op = strcmp(rest, "/move") == 0 ? OP_MOVE : finish ? OP_FINISH : OP_ABORT;
    if (to) { /* finished already, to the same room: done */
        answer_json(s, HTTP_STATUS_OK, room, "to", to);
        return 0;
    }
    if (finish && !room_id_ok(s->move_to))
        return respond_error(wsi, s, HTTP_STATUS_BAD_REQUEST, RF_EBAD_REQUEST,
                             "Name the new room: ?to=<its id>.");
    snprintf(s->room, sizeof s->room, "%s", room);
    struct room *r = room_find(app, room, n);
    if (r) {
        move_ready(app, s, r, 0);
        return 0;
    }
    if (loader_load(app->loader, s->room, on_room, s))
        return respond_error(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR, RF_EINTERNAL,
                             "The room could not be read; try again.");
    s->loading = true;
    return 0;
}
