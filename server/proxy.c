#include "proxy.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "errors.h"

/* addr as a network address of its family (IPv4-mapped IPv6 as IPv4). */
static int parse_addr(const char *s, int *family, unsigned char out[16])
{
    if (inet_pton(AF_INET, s, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, s, out) != 1)
        return -1;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(out, mapped, sizeof mapped) == 0) {
        memmove(out, out + 12, 4);
        *family = AF_INET;
        return 0;
    }
    *family = AF_INET6;
    return 0;
}

int proxy_net_parse(const char *s, struct proxy_net *out)
{
    char buf[PROXY_ADDR_MAX];
    const char *slash = strchr(s, '/');
    size_t n = slash ? (size_t)(slash - s) : strlen(s);
    if (n == 0 || n >= sizeof buf)
        return RF_EBAD_REQUEST;
    memcpy(buf, s, n);
    buf[n] = '\0';
    memset(out, 0, sizeof *out);
    if (parse_addr(buf, &out->family, out->addr))
        return RF_EBAD_REQUEST;
    unsigned max = out->family == AF_INET ? 32 : 128;
    out->bits = max;
    if (slash) {
        char *end;
        unsigned long bits = strtoul(slash + 1, &end, 10);
        if (!slash[1] || *end || bits > max)
            return RF_EBAD_REQUEST;
        out->bits = (unsigned)bits;
    }
    return 0;
}

/* Whether a and the network's address agree in the network's leading bits. */
static bool in_net(const struct proxy_net *net, const unsigned char a[16])
{
    unsigned whole = net->bits / 8, rest = net->bits % 8;
    if (memcmp(a, net->addr, whole) != 0)
        return false;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return !rest || (a[whole] & mask) == (net->addr[whole] & mask);
}

bool proxy_trusted(const struct proxy_net *nets, size_t n, const char *addr)
{
    unsigned char a[16];
    int family;
    if (!n || parse_addr(addr, &family, a))
        return false;
    for (size_t i = 0; i < n; i++)
        if (nets[i].family == family && in_net(&nets[i], a))
            return true;
    return false;
}

int proxy_forwarded(const char *xff, char out[PROXY_ADDR_MAX])
{
    const char *last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    last += strspn(last, " \t");
    size_t n = strcspn(last, " \t");
    if (n == 0 || n >= PROXY_ADDR_MAX || last[n + strspn(last + n, " \t")] != '\0')
        return -1;
    char buf[PROXY_ADDR_MAX];
    unsigned char a[16];
    int family;
    memcpy(buf, last, n);
    buf[n] = '\0';
    if (parse_addr(buf, &family, a))
        return -1;
    memcpy(out, buf, n + 1);
    return 0;
}
