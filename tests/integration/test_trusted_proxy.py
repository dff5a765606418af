#!/usr/bin/python3
"""--trusted-proxy (issue 13): behind HAProxy every connection comes from the balancer's address,
so the per-address limit (--max-conns-per-ip) would count every client as one. With the balancer
trusted, an instance counts each client by the address HAProxy forwards in X-Forwarded-For.

The clients connect from distinct loopback addresses (127.0.0.2, 127.0.0.3: Linux answers the
whole 127/8) to the balancer, which connects to the instances from 127.0.0.1:
  1. trusted: 2 connections per client address are allowed; the third from 127.0.0.2 is refused
     (429 through the balancer) while 127.0.0.3 still connects;
  2. not trusted (the same limit, no --trusted-proxy): every client counts as 127.0.0.1, so the
     third connection is refused whoever opens it;
  3. a client's own forged X-Forwarded-For does not buy it more connections (the last entry,
     HAProxy's, is the one that counts).
Skipped only when haproxy is not installed (scripts/install-deps test installs it).
"""

import asyncio
import os
import socket
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AsyncTestCase, Client  # noqa: E402
from support.cluster import Cluster, haproxy_binary  # noqa: E402


class TrustedProxyTest(AsyncTestCase):
    def setUp(self):
        if haproxy_binary() is None:
            raise unittest.SkipTest("haproxy is not installed (scripts/install-deps test "
                                    "installs Debian's package)")

    async def open(self, cluster, source, **kw):
        c = await Client.connect(cluster.ws_url(), label="from %s" % source,
                                 local_addr=(source, 0), **kw)
        self._clients.append(c)
        await c.expect_ok("room.create", name="from %s" % source)
        return c

    async def refused(self, cluster, source, forged=None):
        """A WebSocket handshake from `source` through the balancer is answered 429. (Read raw:
        lws answers a refused handshake in HTTP/1.0, which the websockets client does not parse.)"""
        def handshake():
            s = socket.create_connection(("127.0.0.1", cluster.port), timeout=5,
                                         source_address=(source, 0))
            try:
                s.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                           "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                           "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: refine.v1\r\n%s\r\n"
                           % (cluster.port, "X-Forwarded-For: %s\r\n" % forged if forged else ""))
                          .encode())
                return s.recv(200).decode("latin-1").split("\r\n")[0]
            finally:
                s.close()
        status = await asyncio.get_running_loop().run_in_executor(None, handshake)
        self.assertRegex(status, r"^HTTP/1\.[01] 429", "a handshake from %s" % source)

    async def test_trusted_counts_each_client(self):
        args = ("--max-conns-per-ip", "2", "--trusted-proxy", "127.0.0.1")
        # One instance takes every /ws connection: the limit is that instance's.
        with Cluster(("a", "b", "c"), extra_args=args) as cluster:
            for n in ("b", "c"):
                cluster.lb.runtime("set server any/%s state drain" % n)
            a = [await self.open(cluster, "127.0.0.2") for _ in range(2)]
            await self.refused(cluster, "127.0.0.2")
            b = [await self.open(cluster, "127.0.0.3") for _ in range(2)]
            # A forged header of the client's own comes before HAProxy's entry: ignored.
            await self.refused(cluster, "127.0.0.3", forged="198.51.100.9")
            for c in a + b:
                await c.close()

    async def test_untrusted_counts_the_balancer(self):
        args = ("--max-conns-per-ip", "2")
        with Cluster(("a", "b", "c"), extra_args=args) as cluster:
            for n in ("b", "c"):
                cluster.lb.runtime("set server any/%s state drain" % n)
            a = [await self.open(cluster, "127.0.0.2") for _ in range(2)]
            await self.refused(cluster, "127.0.0.3")
            for c in a:
                await c.close()


if __name__ == "__main__":
    unittest.main()
