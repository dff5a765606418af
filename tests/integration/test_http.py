#!/usr/bin/python3
"""HTTP on the WebSocket port (PROTOCOL.md: Transport, HTTP on the same port): /healthz, static
files, and the WebSocket handshake rules (path, subprotocol, Origin)."""

import os
import shutil
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, Client, SUBPROTOCOL, Server, http_get, raw_http,  # noqa
                     ws_handshake_request)

INDEX = b"<!doctype html>\n<html><head><title>Refine test page</title></head>" \
        b"<body>refine-integration-marker</body></html>\n"


class HttpTests(AsyncTestCase):
    server = None

    @classmethod
    def setUpClass(cls):
        cls.webdir = tempfile.mkdtemp(prefix="refine-web-")
        with open(os.path.join(cls.webdir, "index.html"), "wb") as f:
            f.write(INDEX)
        with open(os.path.join(cls.webdir, "app.js"), "wb") as f:
            f.write(b"console.log('refine');\n")
        cls.server = Server(web=cls.webdir)
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        srv = cls.server
        try:
            code = srv.stop()
            srv._finish(None)
            if code != 0:
                raise AssertionError("server exit code on SIGTERM: %s (expected 0)" % code)
        finally:
            shutil.rmtree(cls.webdir, ignore_errors=True)

    @property
    def port(self):
        return self.server.port

    def handshake(self, **kw):
        return raw_http(self.port, ws_handshake_request(self.port, **kw))

    # -- plain HTTP -------------------------------------------------------------
    def test_healthz(self):
        status, headers, body = http_get(self.port, "/healthz")
        self.assertEqual(status, 200)

    def test_index_html(self):
        status, headers, body = http_get(self.port, "/")
        self.assertEqual(status, 200)
        self.assertTrue(headers.get("content-type", "").startswith("text/html"),
                        "content-type: %r" % headers.get("content-type"))
        self.assertEqual(body, INDEX, "GET / serves index.html of --web DIR")
        status, headers, body = http_get(self.port, "/index.html")
        self.assertEqual(status, 200)
        self.assertEqual(body, INDEX)

    def test_static_file(self):
        status, headers, body = http_get(self.port, "/app.js")
        self.assertEqual(status, 200)
        self.assertIn("javascript", headers.get("content-type", ""))
        self.assertEqual(body, b"console.log('refine');\n")

    def test_default_web_client_dir(self):
        """With the project's own web-client directory (REFINE_WEB), GET / is an HTML page."""
        with Server() as srv:
            status, headers, body = http_get(srv.port, "/")
            self.assertEqual(status, 200, "GET / with --web %s" % srv.web)
            self.assertTrue(headers.get("content-type", "").startswith("text/html"))
            self.assertIn(b"<html", body.lower())

    def test_no_path_traversal(self):
        secret = os.path.join(os.path.dirname(self.webdir), "refine-secret-%d.txt" % os.getpid())
        with open(secret, "w") as f:
            f.write("TOP-SECRET-CONTENT")
        try:
            name = os.path.basename(secret)
            for path in ("/../" + name, "/%2e%2e/" + name, "/..%2f" + name,
                         "/./../" + name, "/../../../../../../etc/passwd"):
                req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n"
                       % (path, self.port)).encode()
                import socket
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                try:
                    s.sendall(req)
                    data = b""
                    while True:
                        chunk = s.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                        if len(data) > 1 << 20:
                            break
                except OSError:
                    pass
                finally:
                    s.close()
                self.assertNotIn(b"TOP-SECRET-CONTENT", data, "path traversal via %s" % path)
                self.assertNotIn(b"root:x:0:0", data, "path traversal via %s" % path)
        finally:
            os.unlink(secret)
        status, _, _ = http_get(self.port, "/healthz")
        self.assertEqual(status, 200)

    # -- WebSocket handshake ---------------------------------------------------
    def test_handshake_ok_without_origin(self):
        status, headers, head = self.handshake()
        self.assertEqual(status, 101, head)
        self.assertEqual(headers.get("sec-websocket-protocol"), SUBPROTOCOL)

    def test_handshake_without_subprotocol_refused(self):
        status, headers, head = self.handshake(subprotocol=None)
        self.assertNotEqual(status, 101, "handshake without subprotocol must be refused:\n" + head)
        self.assertEqual(status, 403, head)
        status, headers, head = self.handshake(subprotocol="chat")
        self.assertNotEqual(status, 101, head)
        self.assertEqual(status, 403, head)

    def test_handshake_other_path_refused(self):
        status, headers, head = self.handshake(path="/other")
        self.assertNotEqual(status, 101, head)
        self.assertEqual(status, 403, head)

    def test_handshake_foreign_origin_refused(self):
        for origin in ("http://evil.example", "null",
                       "http://127.0.0.1:%d.evil.example" % self.port,
                       "http://127.0.0.1", "http://127.0.0.1:%d/" % (self.port + 1),
                       "ftp://127.0.0.1:%d" % self.port):
            status, headers, head = self.handshake(origin=origin)
            self.assertNotEqual(status, 101, "Origin %s must be refused:\n%s" % (origin, head))

    def test_handshake_own_origin_accepted(self):
        for origin in ("http://127.0.0.1:%d" % self.port, "https://127.0.0.1:%d" % self.port):
            status, headers, head = self.handshake(origin=origin)
            self.assertEqual(status, 101, "Origin %s (== Host) must be accepted:\n%s"
                             % (origin, head))
        # Host other than the address, origin matching that Host
        status, headers, head = self.handshake(origin="http://refine.example:8080",
                                               host="refine.example:8080")
        self.assertEqual(status, 101, head)

    def test_allow_origin_flag(self):
        with Server("--allow-origin", "http://good.example") as srv:
            req = ws_handshake_request(srv.port, origin="http://good.example")
            status, headers, head = raw_http(srv.port, req)
            self.assertEqual(status, 101, head)
            req = ws_handshake_request(srv.port, origin="http://evil.example")
            status, headers, head = raw_http(srv.port, req)
            self.assertNotEqual(status, 101, head)
            req = ws_handshake_request(srv.port, origin="http://127.0.0.1:%d" % srv.port)
            status, headers, head = raw_http(srv.port, req)
            self.assertEqual(status, 101, head)

    async def test_websocket_works_with_and_without_origin(self):
        for origin in (None, "http://127.0.0.1:%d" % self.port):
            c = await self.connect(self.server, "o", origin=origin)
            r = await c.expect_ok("room.create", name="via origin %s" % origin)
            self.assertIn("room", r)
            await c.close()
        status, _, _ = http_get(self.port, "/healthz")
        self.assertEqual(status, 200)


if __name__ == "__main__":
    unittest.main(verbosity=2)
