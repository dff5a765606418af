#include "web.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errors.h"

#define WEB_FILE_MAX (64u << 20) /* largest file served from --web DIR */

const char *web_content_type(const char *path)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"ico", "image/x-icon"},
        {"json", "application/json"},
        {"map", "application/json"},
        {"webmanifest", "application/manifest+json"},
        {"woff2", "font/woff2"},
        {"woff", "font/woff"},
        {"txt", "text/plain; charset=utf-8"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"webp", "image/webp"},
    };
    const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
    if (dot && (!slash || dot > slash))
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
            if (strcasecmp(dot + 1, types[i].ext) == 0)
                return types[i].type;
    return "application/octet-stream";
}

static bool is_asset(const char *path)
{
    return strncmp(path, "/assets/", 8) == 0;
}

/* The next comma-separated element of a header list, trimmed: [*s, *e). */
static bool next_element(const char **p, const char **s, const char **e)
{
    const char *q = *p;
    while (*q == ' ' || *q == '\t' || *q == ',')
        q++;
    if (!*q)
        return false;
    *s = q;
    while (*q && *q != ',')
        q++;
    *p = q;
    while (q > *s && (q[-1] == ' ' || q[-1] == '\t'))
        q--;
    *e = q;
    return true;
}

/* Accept-Encoding names gzip (or *) without q=0. */
static bool accepts_gzip(const char *ae)
{
    const char *s, *e;
    while (ae && next_element(&ae, &s, &e)) {
        /* A loop rather than memchr: GCC's -O3 range analysis (Release) cannot see that
         * e >= s and rejects the bound (-Wstringop-overread). */
        const char *semi = s;
        while (semi < e && *semi != ';')
            semi++;
        const char *name_end = semi;
        if (semi == e)
            semi = NULL;
        while (name_end > s && name_end[-1] == ' ')
            name_end--;
        size_t n = (size_t)(name_end - s);
        if (!((n == 4 && strncasecmp(s, "gzip", 4) == 0) || (n == 1 && *s == '*')))
            continue;
        for (const char *q = semi; q && q + 1 < e; q++)
            if ((*q == 'q' || *q == 'Q') && q[1] == '=')
                return strtod(q + 2, NULL) > 0;
        return true; /* no q: 1 */
    }
    return false;
}

/* If-None-Match names `etag` (weakly compared, as RFC 9110 asks), or is *. */
static bool etag_matches(const char *inm, const char *etag)
{
    const char *s, *e;
    size_t n = strlen(etag);
    while (inm && next_element(&inm, &s, &e)) {
        if (e - s == 1 && *s == '*')
            return true;
        if (e - s > 2 && s[0] == 'W' && s[1] == '/')
            s += 2;
        if ((size_t)(e - s) == n && memcmp(s, etag, n) == 0)
            return true;
    }
    return false;
}

static const struct web_file *embedded_find(const char *path)
{
    for (size_t i = 0; i < web_embedded_count; i++)
        if (strcmp(web_embedded[i].path, path) == 0)
            return &web_embedded[i];
    return NULL;
}

/* Reads root + path into f (data in *owned, ETag in etag[]) when it is a
 * regular file inside root. RF_ENOT_FOUND when there is none. */
static int dir_find(const char *root, const char *path, struct web_file *f, unsigned char **owned,
                    char etag[24])
{
    char full[PATH_MAX], real[PATH_MAX];
    size_t rl = strlen(root);
    if (strstr(path, "/..") ||
        (size_t)snprintf(full, sizeof full, "%s%s", root, path) >= sizeof full)
        return RF_ENOT_FOUND;
    if (!realpath(full, real) || strncmp(real, root, rl) != 0 || real[rl] != '/')
        return RF_ENOT_FOUND; /* missing, or a link out of root */
    int fd = open(real, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return errno == ENOENT ? RF_ENOT_FOUND : RF_EINTERNAL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_size > (off_t)WEB_FILE_MAX) {
        close(fd);
        return RF_ENOT_FOUND;
    }
    size_t len = (size_t)st.st_size, got = 0;
    unsigned char *data = malloc(len ? len : 1);
    if (!data) {
        close(fd);
        return RF_ENOMEM;
    }
    while (got < len) {
        ssize_t n = read(fd, data + got, len - got);
        if (n <= 0 && !(n < 0 && errno == EINTR))
            break;
        got += n > 0 ? (size_t)n : 0;
    }
    close(fd);
    if (got != len) {
        free(data);
        return RF_EINTERNAL;
    }
    uint64_t h = 1469598103934665603ull; /* FNV-1a of the content */
    for (size_t i = 0; i < len; i++)
        h = (h ^ data[i]) * 1099511628211ull;
    snprintf(etag, 24, "\"%016llx\"", (unsigned long long)h);
    *f = (struct web_file){path, data, len, NULL, 0, etag, etag};
    *owned = data;
    return 0;
}

static int find(const char *root, const char *path, struct web_file *f, unsigned char **owned,
                char etag[24])
{
    if (root)
        return dir_find(root, path, f, owned, etag);
    const struct web_file *e = embedded_find(path);
    if (!e)
        return RF_ENOT_FOUND;
    *f = *e;
    return 0;
}

int web_resolve(const char *root, const char *path, const char *accept_encoding,
                const char *if_none_match, struct web_reply *out)
{
    struct web_file f;
    memset(out, 0, sizeof *out);
    const char *want = strcmp(path, "/") == 0 ? "/index.html" : path;
    int rc = find(root, want, &f, &out->owned, out->etag_buf);
    if (rc == RF_ENOT_FOUND && !is_asset(path)) {
        want = "/index.html"; /* a route of the single-page app */
        rc = find(root, want, &f, &out->owned, out->etag_buf);
    }
    if (rc == RF_ENOT_FOUND) {
        static const char missing[] = "Not found.\n";
        out->status = 404;
        out->type = "text/plain; charset=utf-8";
        out->cache = WEB_CACHE_OTHER;
        out->body = (const unsigned char *)missing;
        out->len = sizeof missing - 1;
        return 0;
    }
    if (rc)
        return rc;
    out->gzip = f.gz && accepts_gzip(accept_encoding);
    out->vary = f.gz != NULL;
    out->type = web_content_type(want);
    out->cache = is_asset(want) ? WEB_CACHE_ASSET : WEB_CACHE_OTHER;
    out->etag = out->gzip ? f.etag_gz : f.etag;
    out->body = out->gzip ? f.gz : f.data;
    out->len = out->gzip ? f.gzlen : f.len;
    out->status = if_none_match && etag_matches(if_none_match, out->etag) ? 304 : 200;
    return 0;
}
