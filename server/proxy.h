/* Trusted reverse proxies (--trusted-proxy): a connection that comes from one
 * of their networks is counted, limited and logged by the client address the
 * proxy forwards in X-Forwarded-For (HAProxy's `option forwardfor`), not by
 * the proxy's own address. Pure functions, so they are tested on strings. */
#ifndef REFINE_PROXY_H
#define REFINE_PROXY_H

#include <stdbool.h>
#include <stddef.h>

#define PROXY_ADDR_MAX 64 /* an address as text, NUL included */

/* A network: an address and how many of its leading bits count. */
struct proxy_net {
    int family; /* AF_INET or AF_INET6 */
    unsigned char addr[16];
    unsigned bits;
};

/* Parses "10.0.0.0/8", "127.0.0.1", "::1" or "fd00::/8" into out. Returns 0,
 * or RF_EBAD_REQUEST for anything else (bits beyond the family's length
 * included). */
int proxy_net_parse(const char *s, struct proxy_net *out);

/* Whether addr (a peer address as text; an IPv4-mapped IPv6 address counts
 * as its IPv4 one) lies in one of nets[0..n). */
bool proxy_trusted(const struct proxy_net *nets, size_t n, const char *addr);

/* The client's address in an X-Forwarded-For value: its last entry (the one
 * the trusted proxy added), into out, when it is an IP address. Returns 0,
 * or -1 (out untouched) when the value holds no such entry. */
int proxy_forwarded(const char *xff, char out[PROXY_ADDR_MAX]);

#endif
