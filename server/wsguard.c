#include "wsguard.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

#define GUARD_FDS 65536 /* sockets above this are passed through */
#define HOLD_MAX  131   /* the largest control frame: 2 + 4 (mask) + 125 */

struct guard {
    uint8_t hdr[14]; /* the header of the frame being read */
    uint8_t hlen;    /* its bytes seen so far (0: between frames) */
    uint8_t need;    /* its length, once its second byte is known */
    uint64_t left;   /* payload bytes of the current frame still to come */
    bool dead;       /* after an unmasked frame: lws closes, pass through */
    uint8_t held[HOLD_MAX];
    size_t nheld; /* bytes kept from the last read for the next */
};

static struct guard *guards[GUARD_FDS];

void wsguard_start(int fd)
{
    if (fd < 0 || fd >= GUARD_FDS)
        return;
    free(guards[fd]);
    guards[fd] = calloc(1, sizeof *guards[fd]); /* NULL: not guarded */
}

void wsguard_stop(int fd)
{
    if (fd < 0 || fd >= GUARD_FDS)
        return;
    free(guards[fd]);
    guards[fd] = NULL;
}

static uint64_t payload_length(const uint8_t *h)
{
    unsigned l = h[1] & 0x7f;
    uint64_t n = 0;
    if (l < 126)
        return l;
    for (int i = 0; i < (l == 126 ? 2 : 8); i++)
        n = n << 8 | h[2 + i];
    return n;
}

/* Follows the frames of buf[0..n) (see wsguard.h); returns how many bytes
 * lws gets now, the rest going to g->held. */
static size_t scan(struct guard *g, uint8_t *buf, size_t n)
{
    size_t i = 0, start = 0; /* where the frame being read starts in buf */
    bool ctl_here = false;   /* that frame is a control frame begun in buf */
    long last_ping = -1;     /* the first byte of the last ping begun in buf */
    while (i < n && !g->dead) {
        if (g->left) {
            size_t k = n - i < g->left ? n - i : (size_t)g->left;
            i += k;
            g->left -= k;
            continue;
        }
        if (g->hlen == 0) {
            start = i;
            ctl_here = false;
        }
        g->hdr[g->hlen++] = buf[i++];
        if (g->hlen == 2) {
            if (!(g->hdr[1] & 0x80)) {
                /* RFC 6455 5.1: a client frame must be masked. lws 4.1.6
                 * does not check; it does refuse reserved bits (close 1002,
                 * the frame and what follows unread), so this gets one. */
                buf[start] |= 0x20;
                g->dead = true;
                break;
            }
            unsigned l = g->hdr[1] & 0x7f;
            g->need = (uint8_t)(2 + (l == 126 ? 2 : l == 127 ? 8 : 0) + 4);
            ctl_here = (g->hdr[0] & 0x08) && l < 126;
            if ((g->hdr[0] & 0x0f) == 0x9) {
                /* lws answers the first ping it reads while a pong is
                 * pending and drops the rest: keep only the newest a ping */
                if (last_ping >= 0)
                    buf[last_ping] = (uint8_t)((buf[last_ping] & 0xf0) | 0xa);
                last_ping = (long)start;
            }
        }
        if (g->hlen >= 2 && g->hlen == g->need) {
            g->left = payload_length(g->hdr);
            g->hlen = 0;
        }
    }
    if (g->dead)
        return n;
    /* The read ends inside a header, or inside a control frame begun in it:
     * those bytes wait for the rest (more must come for that frame). */
    if (g->hlen || (g->left && ctl_here && n - start <= HOLD_MAX)) {
        if (n - start > HOLD_MAX) { /* cannot happen: a header is 14 bytes */
            g->dead = true;
            return n;
        }
        g->nheld = n - start;
        memcpy(g->held, buf + start, g->nheld);
        g->hlen = 0;
        g->left = 0;
        return start;
    }
    return n;
}

/* lws 4.1.6 reads a plain socket with recv(buf, len >= 1040, 0): see wsguard.h.
 * Any other call is passed to recvfrom, which this does not interpose. */
ssize_t recv(int fd, void *buf, size_t len, int flags)
{
    struct guard *g = fd >= 0 && fd < GUARD_FDS ? guards[fd] : NULL;
    if (!g || (g->dead && !g->nheld))
        return recvfrom(fd, buf, len, flags, NULL, NULL);
    if (flags || len <= HOLD_MAX) { /* not lws' read: give up the guard */
        size_t n = g->nheld < len ? g->nheld : len;
        g->dead = true;
        if (!n)
            return recvfrom(fd, buf, len, flags, NULL, NULL);
        memcpy(buf, g->held, n);
        if (!(flags & MSG_PEEK)) {
            memmove(g->held, g->held + n, g->nheld - n);
            g->nheld -= n;
        }
        return (ssize_t)n;
    }
    size_t held = g->nheld;
    memcpy(buf, g->held, held);
    ssize_t r = recvfrom(fd, (uint8_t *)buf + held, len - held, 0, NULL, NULL);
    if (r <= 0)
        return r; /* the held bytes stay held (EAGAIN), or the peer is gone */
    g->nheld = 0;
    if (g->dead)
        return (ssize_t)held + r;
    size_t n = scan(g, buf, held + (size_t)r);
    if (n)
        return (ssize_t)n;
    errno = EAGAIN; /* all held: 0 would read as the end of the stream */
    return -1;
}
