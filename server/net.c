#include "net.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "app.h"
#include "codec.h"
#include "conn.h"
#include "errors.h"
#include "export.h"
#include "dispatch.h"
#include "loader.h"
#include "log.h"
#include "net_int.h"
#include "presence.h"
#include "room.h"
#include "room_load.h"
#include "store.h"
#include "web.h"
#include "wsguard.h"

#define SUBPROTOCOL "refine.v1"

struct ws_session {
    struct conn *conn;
    int guarded_fd; /* the socket wsguard follows, or -1 */
};

/* Open WebSocket connections from one client address. */
struct peer {
    char addr[64];
    size_t count;
};

/* The client's address: the peer's, or, when the peer is a trusted proxy
 * (--trusted-proxy), the one it forwards in X-Forwarded-For. */
static void peer_address(struct app *app, struct lws *wsi, char addr[PROXY_ADDR_MAX])
{
    char xff[256];
    if (!lws_get_peer_simple(wsi, addr, PROXY_ADDR_MAX))
        snprintf(addr, PROXY_ADDR_MAX, "unknown");
    else if (proxy_trusted(app->cfg.proxies, app->cfg.nproxies, addr) &&
             !header(wsi, WSI_TOKEN_X_FORWARDED_FOR, xff, sizeof xff))
        proxy_forwarded(xff, addr);
}

static size_t peer_count(struct app *app, const char *addr)
{
    struct peer *p = map_get(&app->peers, addr, strlen(addr));
    return p ? p->count : 0;
}

/* Counts a new connection from addr; the conn remembers its address. */
static void peer_add(struct app *app, struct conn *c, const char *addr)
{
    struct peer *p = map_get(&app->peers, addr, strlen(addr));
    if (!p) {
        p = calloc(1, sizeof *p);
        if (!p)
            return;
        snprintf(p->addr, sizeof p->addr, "%s", addr);
        if (map_put(&app->peers, p->addr, p)) {
            free(p);
            return;
        }
    }
    p->count++;
    c->peer = strdup(addr);
}

static void peer_remove(struct app *app, struct conn *c)
{
    struct peer *p = c->peer ? map_get(&app->peers, c->peer, strlen(c->peer)) : NULL;
    if (p && --p->count == 0)
        free(map_del(&app->peers, p->addr));
}

/* Headers of every HTTP answer (lws adds the vhost's canned headers to each
 * status line it writes: files, /healthz, /api, errors, refused handshakes).
 * The web client has no inline script; Svelte sets inline style attributes,
 * hence style-src 'unsafe-inline'. */
static const struct lws_protocol_vhost_options SECURITY_HEADERS[] = {
    {&SECURITY_HEADERS[1], NULL, "content-security-policy:",
     "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' "
     "data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
     "form-action 'self'; frame-ancestors 'none'"},
    {&SECURITY_HEADERS[2], NULL, "x-content-type-options:", "nosniff"},
    {&SECURITY_HEADERS[3], NULL, "referrer-policy:", "no-referrer"},
    {NULL, NULL, "x-frame-options:", "DENY"},
};

/* The optional headers of an answer. */
struct reply_headers {
    const char *cache; /* Cache-Control (default no-store) */
    const char *etag;
    const char *disposition;
    bool gzip; /* Content-Encoding: gzip */
    bool vary; /* Vary: Accept-Encoding */
    bool head; /* a HEAD request: no body */
};

static struct app *app_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

int header(struct lws *wsi, enum lws_token_indexes t, char *buf, int len)
{
    if (lws_hdr_total_length(wsi, t) <= 0 || lws_hdr_total_length(wsi, t) >= len)
        return -1;
    return lws_hdr_copy(wsi, buf, len, t) < 0 ? -1 : 0;
}

_Static_assert(sizeof((struct conn *)0)->bound_room == ROOM_ID_MAX + 1, "conn.h: bound_room");

/* Whether path is a WebSocket endpoint: /ws, or /r/<room>/ws for one room
 * (a room id: 1..ROOM_ID_MAX of [A-Za-z0-9_.-]), that room then in room
 * ("" for /ws). */
static bool ws_path(const char *path, char room[ROOM_ID_MAX + 1])
{
    room[0] = '\0';
    if (strcmp(path, "/ws") == 0)
        return true;
    size_t n = strlen(path);
    if (strncmp(path, "/r/", 3) || n < 3 + 1 + 3 || n > 3 + ROOM_ID_MAX + 3 ||
        strcmp(path + n - 3, "/ws"))
        return false;
    n -= 6;
    if (strspn(path + 3, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-") < n)
        return false;
    memcpy(room, path + 3, n);
    room[n] = '\0';
    return true;
}

/* The WebSocket endpoint wsi's handshake asked for (ws_path), or false. */
static bool handshake_path(struct lws *wsi, char room[ROOM_ID_MAX + 1])
{
    char uri[64];
    room[0] = '\0';
    return !header(wsi, WSI_TOKEN_GET_URI, uri, sizeof uri) && ws_path(uri, room);
}

/* 1 when the handshake may go on: the path is /ws or /r/<room>/ws, the
 * subprotocol is ours, and an Origin, if any, is the server's own or an
 * allowed one. */
static int handshake_allowed(struct app *app, struct lws *wsi)
{
    char room[ROOM_ID_MAX + 1], proto[128], origin[256], host[256], own[300];
    if (!handshake_path(wsi, room)) {
        log_info("refused a WebSocket handshake on a path other than /ws and /r/<room>/ws");
        return 0;
    }
    int has_proto = 0;
    if (!header(wsi, WSI_TOKEN_PROTOCOL, proto, sizeof proto)) {
        for (char *save = NULL, *tok = strtok_r(proto, ", ", &save); tok;
             tok = strtok_r(NULL, ", ", &save))
            has_proto |= strcmp(tok, SUBPROTOCOL) == 0;
    }
    if (!has_proto) {
        log_info("refused a WebSocket handshake without the subprotocol " SUBPROTOCOL);
        return 0;
    }
    if (lws_hdr_total_length(wsi, WSI_TOKEN_ORIGIN) <= 0)
        return 1; /* not a browser: the token is what authorises */
    if (header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof origin)) {
        log_info("refused a WebSocket handshake with an unreadable Origin");
        return 0;
    }
    if (!header(wsi, WSI_TOKEN_HOST, host, sizeof host)) {
        snprintf(own, sizeof own, "http://%s", host);
        if (strcmp(origin, own) == 0)
            return 1;
        snprintf(own, sizeof own, "https://%s", host);
        if (strcmp(origin, own) == 0)
            return 1;
    }
    for (size_t i = 0; i < app->cfg.norigins; i++)
        if (strcmp(origin, app->cfg.origins[i]) == 0)
            return 1;
    log_info("refused a WebSocket handshake from origin %s", origin);
    return 0;
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end);

/* RFC 6455 4.2.2 and 4.4: a handshake whose Sec-WebSocket-Version is not
 * exactly 13 (or that has none) gets 426 Upgrade Required naming 13. lws
 * 4.1.6 does not: it logs an unknown version and upgrades it as 13 anyway
 * (server-ws.c, lws_process_ws_upgrade2), so the check is made here, before
 * lws reads the version. Returns 1 when it refused (the answer is written). */
static int refuse_version(struct lws *wsi)
{
    static const char body[] = "This server speaks WebSocket version 13 only "
                               "(Sec-WebSocket-Version: 13).\n";
    char v[8];
    if (!header(wsi, WSI_TOKEN_VERSION, v, sizeof v) && strcmp(v, "13") == 0)
        return 0;
    log_info("refused a WebSocket handshake of a version other than 13");
    unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof buf - sizeof body;
    if (lws_add_http_common_headers(wsi, 426, "text/plain", sizeof body - 1, &p, end) ||
        add_header(wsi, "sec-websocket-version:", "13", &p, end) ||
        add_header(wsi, "cache-control:", "no-store", &p, end) ||
        lws_finalize_http_header(wsi, &p, end))
        return -1;
    /* HTTP/1 (an upgrade is never HTTP/2): head and body in one write, as
     * lws_return_http_status does */
    memcpy(p, body, sizeof body - 1);
    p += sizeof body - 1;
    return lws_write(wsi, start, (size_t)(p - start), LWS_WRITE_HTTP) < 0 ? -1 : 1;
}

/* Refuses an upgrade with HTTP 426 (another WebSocket version), 429 (too
 * many from the address) or 403 (and a reason) unless handshake_allowed. */
static int confirm_upgrade(struct app *app, struct lws *wsi)
{
    char addr[64];
    int refused = refuse_version(wsi);
    if (refused)
        return refused;
    peer_address(app, wsi, addr);
    if (!app->stopping && peer_count(app, addr) >= app->cfg.max_conns_per_ip) {
        log_info("refused a WebSocket from %s: %zu connections already", addr,
                 peer_count(app, addr));
        lws_return_http_status(wsi, 429,
                               "Too many connections from this address; close some first.");
        return 1;
    }
    if (!app->stopping && handshake_allowed(app, wsi))
        return 0;
    lws_return_http_status(wsi, HTTP_STATUS_FORBIDDEN,
                           app->stopping ? "The server is shutting down."
                                         : "WebSocket handshakes go to /ws or /r/<room>/ws with "
                                           "the subprotocol refine.v1, from an allowed origin.");
    return 1;
}

/* 1 when a close code received from a peer may be echoed (RFC 6455 7.4.1,
 * 7.4.2): 1000-1003, 1007-1011, 3000-4999. (1012-1014, registered since,
 * never get here: lws 4.1.6 has already turned them into 1002.) */
static int close_code_valid(unsigned code)
{
    return (code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
           (code >= 3000 && code <= 4999);
}

/* The peer's close frame (payload p, len bytes), which lws echoes when this
 * returns 0: what p holds then, p being lws' own buffer. lws 4.1.6 checks it
 * only in part: it turns 0-999, 1004-1006, 1012-1015 and 1016-2999 into 1002
 * in p, but echoes 5000 and up, a 1-byte payload, and a reason that is not
 * UTF-8 (it checks the reason only with LWS_SERVER_OPTION_VALIDATE_UTF8, and
 * then drops the socket without a close frame). Those are answered here
 * instead (RFC 6455 7.4.1, 8.1): a code of 5000 and up becomes 1002 in p as
 * lws does for the others; a reason that is not UTF-8 becomes 1007, its bytes
 * overwritten by a reason of ours (cut or space-padded to the same length:
 * lws echoes len bytes). A 1-byte payload has no room for a code: lws is
 * given the 1002 by lws_close_reason and -1 (as for 1009 in
 * conn_on_receive), and then waits up to 5 s for the peer, which has closed
 * already, to hang up. */
static int peer_close(struct conn *c, struct lws *wsi, unsigned char *p, size_t len)
{
    int status = 0;
    const char *why = "";
    if (len == 1) {
        log_info("a peer's close frame had a 1-byte payload: closing with 1002");
        if (c) { /* lws writes this close frame, not conn.c */
            c->close_code = LWS_CLOSE_STATUS_PROTOCOL_ERR;
            c->close_sent = true;
        }
        lws_close_reason(wsi, LWS_CLOSE_STATUS_PROTOCOL_ERR, (unsigned char *)"bad close", 9);
        return -1;
    }
    if (len < 2)
        return 0;
    if (len > 2 && codec_utf8_prefix((const char *)p + 2, len - 2) != len - 2) {
        status = LWS_CLOSE_STATUS_INVALID_PAYLOAD;
        why = "close reason not UTF-8";
    } else if (!close_code_valid((unsigned)p[0] << 8 | p[1])) {
        status = LWS_CLOSE_STATUS_PROTOCOL_ERR;
    }
    if (!status)
        return 0;
    log_info("a peer's close frame was invalid (code %u): answering %d", (unsigned)p[0] << 8 | p[1],
             status);
    p[0] = (unsigned char)(status >> 8);
    p[1] = (unsigned char)(status & 0xff);
    if (status == LWS_CLOSE_STATUS_INVALID_PAYLOAD) {
        size_t n = strlen(why) < len - 2 ? strlen(why) : len - 2;
        memset(p + 2, ' ', len - 2);
        memcpy(p + 2, why, n);
    }
    return 0;
}

static int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                       size_t len)
{
    struct ws_session *s = user;
    struct app *app = app_of(wsi);
    switch (reason) {
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(app, wsi);
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        return app->stopping || !handshake_allowed(app, wsi);
    case LWS_CALLBACK_ESTABLISHED: {
        char addr[64];
        s->conn = conn_new(app, wsi);
        if (!s->conn)
            return -1;
        handshake_path(wsi, s->conn->bound_room); /* "" for /ws */
        peer_address(app, wsi, addr);
        peer_add(app, s->conn, addr);
        /* Masks and ping bursts, which lws 4.1.6 gets wrong (wsguard.h);
         * a TLS socket is read through OpenSSL, not recv(): not guarded. */
        s->guarded_fd = lws_is_ssl(wsi) ? -1 : (int)lws_get_socket_fd(wsi);
        wsguard_start(s->guarded_fd);
        return 0;
    }
    case LWS_CALLBACK_RECEIVE: {
        if (!s->conn)
            return -1;
        struct conn_msg m;
        if (conn_on_receive(s->conn, in, len, &m)) {
            /* conn_on_receive gave lws the close frame (1009) with
             * lws_close_reason: lws sends it, so conn_on_writeable must not
             * send one of its own as well (that was a second close frame). */
            s->conn->close_sent = true;
            return -1;
        }
        if (m.data) {
            dispatch_message(s->conn, m.data, m.len, m.binary);
            conn_rx_done(s->conn);
        }
        return 0;
    }
    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        return peer_close(s->conn, wsi, in, len);
    case LWS_CALLBACK_RECEIVE_PONG:
        if (s->conn)
            conn_on_alive(s->conn);
        return 0;
    case LWS_CALLBACK_SERVER_WRITEABLE:
        return s->conn && conn_on_writeable(s->conn) == 0 ? 0 : -1;
    case LWS_CALLBACK_CLOSED:
        if (s->conn) {
            wsguard_stop(s->guarded_fd); /* still open: the fd cannot be reused yet */
            peer_remove(app, s->conn);
            dispatch_on_closed(s->conn); /* a join waiting for its room is withdrawn */
            if (s->conn->room)
                presence_leave(s->conn); /* the room sees it go, then the socket goes */
            conn_on_closed(s->conn);
        }
        s->conn = NULL;
        return 0;
    default:
        return 0;
    }
}

static int add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
                      unsigned char *end)
{
    return value &&
           lws_add_http_header_by_name(wsi, (const unsigned char *)name,
                                       (const unsigned char *)value, (int)strlen(value), p, end);
}

/* Starts an answer: headers now, then the body from HTTP_WRITEABLE. body
 * is borrowed (it outlives the answer), owned is taken (freed after it; may
 * be body). */
static int respond_with(struct lws *wsi, struct http_session *s, int status, const char *type,
                        const void *body, size_t len, void *owned, const struct reply_headers *h)
{
    unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
                                       *end = buf + sizeof buf - 1;
    s->body = body;
    s->owned = owned;
    s->len = status == HTTP_STATUS_NOT_MODIFIED || h->head || s->head ? 0 : len;
    s->off = 0;
    if (lws_add_http_common_headers(wsi, (unsigned)status, type, len, &p, end) ||
        add_header(wsi, "cache-control:", h->cache ? h->cache : "no-store", &p, end) ||
        add_header(wsi, "etag:", h->etag, &p, end) ||
        add_header(wsi, "content-encoding:", h->gzip ? "gzip" : NULL, &p, end) ||
        add_header(wsi, "vary:", h->vary ? "Accept-Encoding" : NULL, &p, end) ||
        add_header(wsi, "content-disposition:", h->disposition, &p, end) ||
        lws_finalize_write_http_header(wsi, start, &p, end))
        return 1;
    if (!s->len) {
        free(s->owned);
        s->owned = NULL;
        s->body = NULL; /* nothing pending: a later WRITEABLE writes nothing */
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    lws_callback_on_writable(wsi);
    return 0;
}

/* An answer whose body (taken) is no file: never cached. */
int respond(struct lws *wsi, struct http_session *s, int status, const char *type, char *body,
            size_t len, const char *disposition)
{
    struct reply_headers h = {.disposition = disposition};
    return respond_with(wsi, s, status, type, body, len, body, &h);
}

/* A JSON error body {code, msg} (NULL on out of memory). */
static char *error_body(int code, const char *msg, size_t *len)
{
    char *body = malloc(512);
    if (body)
        *len = (size_t)snprintf(body, 512, "{\"code\":\"%s\",\"msg\":\"%s\"}\n", rf_err_code(code),
                                msg);
    return body;
}

/* A JSON error body {code, msg} with an HTTP status. */
int respond_error(struct lws *wsi, struct http_session *s, int status, int code, const char *msg)
{
    size_t n;
    char *body = error_body(code, msg, &n);
    if (!body)
        return 1;
    return respond(wsi, s, status, "application/json", body, n, NULL);
}

/* The answer of s's export (body taken), for the next HTTP_WRITEABLE. */
void answer_later(struct http_session *s, int status, const char *type, char *body, size_t len,
                  const char *disposition)
{
    s->later = (struct later){true, status, type, body, body ? len : 0, ""};
    if (disposition)
        snprintf(s->later.disposition, sizeof s->later.disposition, "%s", disposition);
    lws_callback_on_writable(s->wsi);
}

void error_later(struct http_session *s, int status, int code, const char *msg)
{
    size_t n = 0;
    char *body = error_body(code, msg, &n);
    answer_later(s, status, "application/json", body, n, NULL);
}

/* A GET or HEAD of the web client (web.h): the embedded files, or --web DIR's. */
static int web_request(struct app *app, struct lws *wsi, struct http_session *s, const char *path,
                       bool head)
{
    char ae[256], inm[512];
    struct web_reply w;
    int rc = web_resolve(
        app->web_root, path, header(wsi, WSI_TOKEN_HTTP_ACCEPT_ENCODING, ae, sizeof ae) ? NULL : ae,
        header(wsi, WSI_TOKEN_HTTP_IF_NONE_MATCH, inm, sizeof inm) ? NULL : inm, &w);
    if (rc)
        return respond_error(wsi, s, HTTP_STATUS_INTERNAL_SERVER_ERROR, RF_EINTERNAL,
                             "The file could not be read; try again.");
    struct reply_headers h = {w.cache, w.etag, NULL, w.gzip, w.vary, head};
    return respond_with(wsi, s, w.status, w.type, w.body, w.len, w.owned, &h);
}

/* Every HTTP request but a WebSocket handshake: /healthz, /api/..., and the
 * web client for any other path. */
static int http_request(struct app *app, struct lws *wsi, struct http_session *s)
{
    char *uri;
    int urilen, method = lws_http_get_uri_and_method(wsi, &uri, &urilen);
    char path[1024];
    s->head = false;     /* set below; the session outlives a keep-alive request */
    http_import_drop(s); /* what an import before it on this connection left */
    if (method < 0 || urilen <= 0)
        return respond_error(wsi, s, HTTP_STATUS_BAD_REQUEST, RF_EBAD_REQUEST,
                             "The request has no path.");
    if ((size_t)urilen >= sizeof path)
        return respond_error(wsi, s, 414, RF_EBAD_REQUEST, "The path is too long.");
    memcpy(path, uri, (size_t)urilen);
    path[urilen] = '\0';
    char h2method[8] = "";
    if (method == LWSHUMETH_COLON_PATH) /* HTTP/2: the method is a header of its own */
        header(wsi, WSI_TOKEN_HTTP_COLON_METHOD, h2method, sizeof h2method);
    bool get = method == LWSHUMETH_GET || strcmp(h2method, "GET") == 0,
         head = method == LWSHUMETH_HEAD || strcmp(h2method, "HEAD") == 0;
    s->head = head;
    if (strcmp(path, "/api") == 0 || strncmp(path, "/api/", 5) == 0)
        return api_request(app, wsi, s, path, get || head,
                           method == LWSHUMETH_POST || strcmp(h2method, "POST") == 0);
    if (!get && !head)
        return respond_error(wsi, s, HTTP_STATUS_METHOD_NOT_ALLOWED, RF_EBAD_REQUEST,
                             "Only GET is served here.");
    if (strcmp(path, "/healthz") == 0) {
        int ok = !app->stopping && store_healthy(app->store);
        char *body = strdup(ok ? "ok\n" : "unavailable\n");
        if (!body)
            return 1;
        struct reply_headers h = {.head = head};
        return respond_with(wsi, s, ok ? HTTP_STATUS_OK : HTTP_STATUS_SERVICE_UNAVAILABLE,
                            "text/plain", body, strlen(body), body, &h);
    }
    if (strcmp(path, "/metrics") == 0)
        return net_metrics(app, wsi, s);
    char room[ROOM_ID_MAX + 1];
    if (ws_path(path, room))
        return respond_error(wsi, s, 426, RF_EBAD_REQUEST,
                             "This is the WebSocket endpoint: open it with a WebSocket client and "
                             "the subprotocol refine.v1.");
    return web_request(app, wsi, s, path, head);
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                         size_t len)
{
    struct http_session *s = user;
    struct app *app = app_of(wsi);
    switch (reason) {
    case LWS_CALLBACK_FILTER_NETWORK_CONNECTION:
        /* a new socket: whatever was guarded on its fd number is gone */
        wsguard_stop((int)(intptr_t)in);
        return 0;
    case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
        return confirm_upgrade(app, wsi);
    case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
        log_info("refused a WebSocket handshake without the subprotocol " SUBPROTOCOL);
        return 1; /* an upgrade that did not name our subprotocol */
    case LWS_CALLBACK_HTTP:
        return http_request(app, wsi, s);
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        /* The body in pieces of at most 16 KiB, one lws_write per callback. */
        unsigned char buf[LWS_PRE + 16384];
        if (s && s->later.ready) { /* an export's answer: its headers now */
            struct later a = s->later;
            s->later = (struct later){0};
            return respond(wsi, s, a.status, a.type, a.body, a.len,
                           a.disposition[0] ? a.disposition : NULL);
        }
        if (!s || !s->body)
            return 0; /* a spurious callback: nothing to send */
        size_t n = s->len - s->off;
        if (n > sizeof buf - LWS_PRE)
            n = sizeof buf - LWS_PRE;
        memcpy(buf + LWS_PRE, s->body + s->off, n);
        s->off += n;
        int last = s->off == s->len;
        if (lws_write(wsi, buf + LWS_PRE, n, last ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
            (int)n)
            return 1;
        if (!last) {
            lws_callback_on_writable(wsi);
            return 0;
        }
        free(s->owned);
        s->owned = NULL;
        s->body = NULL;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_HTTP_BODY:
        if (s && s->importing)
            http_import_body(s, in, len);
        return 0; /* any other request body (POST ...): refused, and its bytes ignored */
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if (s && s->importing && !s->parsing && !s->imp && !s->later.ready)
            return http_import_done(app, s);
        /* lws holds back WRITEABLE while a request has a body to read. */
        if (s && (s->body || s->later.ready))
            lws_callback_on_writable(wsi);
        return 0;
    case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
    case LWS_CALLBACK_CLOSED_HTTP:
        if (s) {
            api_drop(app, s);
            free(s->owned);
            s->owned = NULL;
            s->body = NULL;
        }
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    default:
        return lws_callback_http_dummy(wsi, reason, user, in, len);
    }
}

static const struct lws_protocols PROTOCOLS[] = {
    {"http", http_callback, sizeof(struct http_session), 0, 0, NULL, 0},
    /* 1 KiB receive buffer per connection (messages are reassembled in
     * conn.c); a send may carry a whole burst of coalesced frames. */
    {SUBPROTOCOL, ws_callback, sizeof(struct ws_session), 1024, 0, NULL, APP_WBUF},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static int lws_level(int ours)
{
    switch (ours) {
    case LOG_DEBUG:
        return LLL_ERR | LLL_WARN | LLL_NOTICE;
    case LOG_INFO:
    case LOG_WARN:
        return LLL_ERR | LLL_WARN;
    default:
        return LLL_ERR;
    }
}

static void lws_logger(int level, const char *line)
{
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
    log_msg(level == LLL_ERR    ? LOG_ERROR
            : level == LLL_WARN ? LOG_WARN
                                : LOG_DEBUG,
            "libwebsockets: %.*s", (int)n, line);
}

int net_start(struct app *app)
{
    void *foreign_loops[1] = {app->loop};
    struct lws_context_creation_info info;

    lws_set_log_level(lws_level(app->cfg.log_level), lws_logger);
    if (app->cfg.web) {
        char dir[PATH_MAX];
        if (!realpath(app->cfg.web, dir) || !(app->web_root = strdup(dir))) {
            log_error("--web %s: no such directory", app->cfg.web);
            return RF_EINTERNAL;
        }
        log_info("serving the web client from %s", app->web_root);
    } else if (web_embedded_fallback) {
        log_warn("this build holds no web client (web-client/dist was not built): / serves a page "
                 "that says how to build it");
    }
    /* Every HTTP request reaches http_callback, which routes it by path. */
    struct lws_http_mount *root = &app->mount; /* lws keeps the pointer: it lives in the app */
    memset(root, 0, sizeof *root);
    root->mountpoint = "/";
    root->mountpoint_len = 1;
    root->origin = "http";
    root->origin_protocol = LWSMPRO_CALLBACK;

    memset(&info, 0, sizeof info);
    info.options = LWS_SERVER_OPTION_LIBUV | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
    if (app->cfg.tls_cert)
        info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
    info.foreign_loops = foreign_loops;
    info.user = app;
    info.port = CONTEXT_PORT_NO_LISTEN;
    app->lws = lws_create_context(&info);
    if (!app->lws) {
        log_error("cannot start libwebsockets on the libuv loop (is the package "
                  "libwebsockets-evlib-uv installed?)");
        return RF_EINTERNAL;
    }
    info.port = app->cfg.port;
    info.protocols = PROTOCOLS;
    info.mounts = root;
    info.headers = SECURITY_HEADERS;
    info.vhost_name = "refine";
    info.timeout_secs = 20; /* HTTP and WebSocket handshakes */
    /* Liveness is ours (conn_check_idle), not lws' validity timers: lws
     * 4.1.6 keeps them in one sorted list per thread, and re-inserting a
     * connection's timer walks that list: O(connections) each time. Without
     * a policy of its own the vhost takes the context's default (ping after
     * 300 s), whose timer is re-inserted on every PONG, i.e. after each of
     * our liveness pings: at 10,000 silent connections that walk was half of
     * the server's CPU. A policy with no validity times arms no timer. */
    static const lws_retry_bo_t no_validity = {.secs_since_valid_ping = 0,
                                               .secs_since_valid_hangup = 0};
    info.retry_and_idle_policy = &no_validity;
    if (app->cfg.tls_cert) {
        info.ssl_cert_filepath = app->cfg.tls_cert;
        info.ssl_private_key_filepath = app->cfg.tls_key;
    }
    app->vhost = lws_create_vhost(app->lws, &info);
    if (!app->vhost) {
        log_error("cannot listen on port %d (is it in use?%s)", app->cfg.port,
                  app->cfg.tls_cert ? " are the TLS certificate and key readable?" : "");
        return RF_EINTERNAL;
    }
    return 0;
}

void net_stop(struct app *app)
{
    if (app->lws)
        lws_context_destroy(app->lws);
}

static void free_peer(void *value, void *arg)
{
    (void)arg;
    free(value);
}

void net_destroy(struct app *app)
{
    map_each(&app->peers, free_peer, NULL);
    map_free(&app->peers);
    free(app->web_root);
    app->web_root = NULL;
    if (app->lws)
        lws_context_destroy(app->lws);
    app->lws = NULL;
}
