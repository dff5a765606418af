/* Unit tests of server/proxy.c: trusted networks, and the client address
 * taken from X-Forwarded-For. */
#include <string.h>

#include "check.h"
#include "proxy.h"

static bool trusted(const char *net, const char *addr)
{
    struct proxy_net n;
    CHECK(proxy_net_parse(net, &n) == 0);
    return proxy_trusted(&n, 1, addr);
}

static void test_networks(void)
{
    CHECK(trusted("127.0.0.1", "127.0.0.1"));
    CHECK(!trusted("127.0.0.1", "127.0.0.2"));
    CHECK(trusted("10.0.0.0/8", "10.200.3.4"));
    CHECK(!trusted("10.0.0.0/8", "11.0.0.1"));
    CHECK(trusted("172.16.0.0/12", "172.31.255.255"));
    CHECK(!trusted("172.16.0.0/12", "172.32.0.0"));
    CHECK(trusted("192.168.1.0/25", "192.168.1.127"));
    CHECK(!trusted("192.168.1.0/25", "192.168.1.128"));
    CHECK(trusted("0.0.0.0/0", "8.8.8.8"));
    CHECK(!trusted("0.0.0.0/0", "::1")); /* another family */
    CHECK(trusted("::1", "::1"));
    CHECK(trusted("fd00::/8", "fd12:3456::1"));
    CHECK(!trusted("fd00::/8", "fe80::1"));
    CHECK(trusted("127.0.0.0/8", "::ffff:127.0.0.1")); /* IPv4-mapped */
    CHECK(!trusted("127.0.0.1", "unknown"));
    CHECK(!proxy_trusted(NULL, 0, "127.0.0.1")); /* none configured */
}

static void test_bad_networks(void)
{
    static const char *const bad[] = {"",          "/8",     "10.0.0.0/",   "10.0.0.0/33",
                                      "::/129",    "10.0.0", "10.0.0.0/8x", "host.example",
                                      "1.2.3.4/-1"};
    struct proxy_net n;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(proxy_net_parse(bad[i], &n) != 0);
}

static void test_forwarded(void)
{
    char out[PROXY_ADDR_MAX] = "peer";
    CHECK(proxy_forwarded("203.0.113.7", out) == 0 && strcmp(out, "203.0.113.7") == 0);
    /* A client's own header comes first; the proxy's entry is the last one. */
    CHECK(proxy_forwarded("1.1.1.1, 203.0.113.8", out) == 0 && strcmp(out, "203.0.113.8") == 0);
    CHECK(proxy_forwarded("1.1.1.1,2001:db8::5 ", out) == 0 && strcmp(out, "2001:db8::5") == 0);
    strcpy(out, "peer");
    CHECK(proxy_forwarded("203.0.113.7, forged", out) == -1 && strcmp(out, "peer") == 0);
    CHECK(proxy_forwarded("", out) == -1);
    CHECK(proxy_forwarded("1.1.1.1,", out) == -1);
    CHECK(proxy_forwarded("1.1.1.1 2.2.2.2", out) == -1);
    CHECK(strcmp(out, "peer") == 0);
}

int main(void)
{
    test_networks();
    test_bad_networks();
    test_forwarded();
    return check_summary("test_proxy");
}
