#!/usr/bin/python3
"""HTTP on the WebSocket port (PROTOCOL.md: Transport, HTTP on the same port): /healthz, the web
client built into the binary (served from anywhere, single-page routes, caching, gzip, ETags),
--web DIR for development, the security headers of every answer, and the WebSocket handshake
rules (path, subprotocol, Origin)."""

import gzip
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, Client, SUBPROTOCOL, Server, free_port, http_get,  # noqa
                     raw_http, server_binary, ws_handshake_request)

INDEX = b"<!doctype html>\n<html><head><title>Refine test page</title></head>" \
        b"<body>refine-integration-marker</body></html>\n"
ASSET = b"export const refine = 'asset';\n" * 40

SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self' "
                               "'unsafe-inline'; img-src 'self' data:; connect-src 'self'; "
                               "font-src 'self'; object-src 'none'; base-uri 'none'; "
                               "form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "x-frame-options": "DENY",
}
LONG_CACHE = "public, max-age=31536000, immutable"


def request(port, path, method="GET", headers=None):
    """(status, headers, body) of one request, the body as sent (not decompressed)."""
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request(method, path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


class SecurityHeadersMixin:
    def assertSecurityHeaders(self, headers, what):
        for name, value in SECURITY_HEADERS.items():
            self.assertEqual(headers.get(name), value, "%s: header %s" % (what, name))


class HttpTests(AsyncTestCase, SecurityHeadersMixin):
    """A server with --web DIR (the development override)."""
    server = None

    @classmethod
    def setUpClass(cls):
        cls.webdir = tempfile.mkdtemp(prefix="refine-web-")
        with open(os.path.join(cls.webdir, "index.html"), "wb") as f:
            f.write(INDEX)
        with open(os.path.join(cls.webdir, "app.js"), "wb") as f:
            f.write(b"console.log('refine');\n")
        os.mkdir(os.path.join(cls.webdir, "assets"))
        with open(os.path.join(cls.webdir, "assets", "main-1a2b3c.js"), "wb") as f:
            f.write(ASSET)
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

    def test_web_dir_rules(self):
        """--web DIR: the same routes, types, caching and ETags as the built-in client."""
        status, headers, body = request(self.port, "/assets/main-1a2b3c.js")
        self.assertEqual((status, body), (200, ASSET))
        self.assertEqual(headers.get("cache-control"), LONG_CACHE)
        self.assertTrue(headers.get("content-type", "").startswith("text/javascript"))
        self.assertSecurityHeaders(headers, "a file of --web DIR")
        etag = headers.get("etag")
        self.assertRegex(etag or "", r'^"[^"]+"$', "a strong ETag")
        status, headers, body = request(self.port, "/assets/main-1a2b3c.js",
                                        headers={"If-None-Match": etag})
        self.assertEqual((status, body), (304, b""))
        status, headers, body = request(self.port, "/room/abc")
        self.assertEqual((status, body), (200, INDEX), "a route of the app gets index.html")
        self.assertEqual(headers.get("cache-control"), "no-cache")
        status, headers, body = request(self.port, "/assets/missing.js")
        self.assertEqual(status, 404)
        self.assertSecurityHeaders(headers, "a 404")
        # a file changed on disk is served at once, with a new ETag (development)
        path = os.path.join(self.webdir, "app.js")
        _, h1, _ = request(self.port, "/app.js")
        with open(path, "wb") as f:
            f.write(b"console.log('changed');\n")
        try:
            status, h2, body = request(self.port, "/app.js", headers={"If-None-Match": h1["etag"]})
            self.assertEqual((status, body), (200, b"console.log('changed');\n"))
            self.assertNotEqual(h1["etag"], h2["etag"])
        finally:
            with open(path, "wb") as f:
                f.write(b"console.log('refine');\n")

    def test_security_headers_everywhere(self):
        for path in ("/", "/healthz", "/api/rooms/nope/export", "/api/other", "/assets/x.js",
                     "/ws"):
            status, headers, _ = request(self.port, path)
            self.assertSecurityHeaders(headers, "GET %s (%s)" % (path, status))
        status, headers, _ = request(self.port, "/", method="POST")
        self.assertEqual(status, 405)
        self.assertSecurityHeaders(headers, "POST /")
        status, headers, _ = request(self.port, "/api/rooms/x/export", method="POST")
        self.assertEqual(status, 405)
        self.assertSecurityHeaders(headers, "POST /api")
        status, headers, _ = request(self.port, "/api/rooms/x/import", method="POST")
        self.assertEqual(status, 401)  # an import without a token (test_import.py)
        self.assertSecurityHeaders(headers, "POST /api/rooms/x/import")
        for kw in ({"subprotocol": None}, {"path": "/other"}, {"origin": "http://evil.example"}):
            status, headers, head = self.handshake(**kw)
            self.assertEqual(status, 403, head)
            self.assertSecurityHeaders(headers, "a refused handshake %s" % kw)

    def test_missing_web_dir_refuses_to_start(self):
        missing = os.path.join(self.webdir, "no-such-dir")
        with tempfile.TemporaryDirectory() as tmp:
            proc = subprocess.run([server_binary(), "--port", str(free_port()), "--db",
                                   os.path.join(tmp, "r.db"), "--web", missing],
                                  capture_output=True, text=True, timeout=20)
        self.assertNotEqual(proc.returncode, 0)
        self.assertIn("no such directory", proc.stderr)

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


class EmbeddedClientTests(unittest.TestCase, SecurityHeadersMixin):
    """The web client built into the binary: the binary alone, copied to an empty directory and
    started from there without --web, serves the UI."""

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="refine-alone-")
        binary = os.path.join(cls.tmp, "refine-server")
        shutil.copy2(server_binary(), binary)
        cls.server = Server("--max-conns-per-ip", "1", binary=binary, cwd=cls.tmp,
                            db=os.path.join(cls.tmp, "refine.db"))
        cls.server.start()
        cls.port = cls.server.port
        status, cls.index_headers, cls.index = request(cls.port, "/")
        # script and stylesheet of the built client (none in a build without one)
        cls.assets = re.findall(rb'(?:src|href)="(/assets/[^"]+)"', cls.index)

    @classmethod
    def tearDownClass(cls):
        try:
            code = cls.server.stop()
            cls.server._finish(None)
            if code != 0:
                raise AssertionError("server exit code on SIGTERM: %s (expected 0)" % code)
        finally:
            shutil.rmtree(cls.tmp, ignore_errors=True)

    def test_index_at_root(self):
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "web-client")))
        status, headers, body = request(self.port, "/")
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("content-type"), "text/html; charset=utf-8")
        self.assertEqual(headers.get("cache-control"), "no-cache")
        self.assertIn(b"<html", body.lower())
        self.assertSecurityHeaders(headers, "GET /")
        if self.assets:
            self.assertNotIn(b"<script>", body, "no inline script (the CSP forbids it)")
            self.assertIn(b'<div id="app">', body)
        else:
            self.assertIn(b"web client was not built", body, "a build without web-client/dist "
                          "serves the page that says how to build it")
        status, headers, same = request(self.port, "/index.html")
        self.assertEqual((status, same), (200, body))

    def test_deep_paths_get_index(self):
        for path in ("/some/deep/path", "/room/abc?x=1", "/join"):
            status, headers, body = request(self.port, path)
            self.assertEqual((status, body), (200, self.index), path)
            self.assertEqual(headers.get("cache-control"), "no-cache", path)
            self.assertSecurityHeaders(headers, path)

    def test_assets_cached_long_and_gzipped(self):
        if not self.assets:
            self.skipTest("this build has no web client (web-client/dist was not built)")
        for asset in self.assets:
            path = asset.decode()
            status, headers, plain = request(self.port, path)
            self.assertEqual(status, 200, path)
            self.assertEqual(headers.get("cache-control"), LONG_CACHE, path)
            self.assertIsNone(headers.get("content-encoding"), "no gzip unless asked: " + path)
            self.assertEqual(int(headers["content-length"]), len(plain))
            want = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
            ext = os.path.splitext(path)[1]
            if ext in want:
                self.assertEqual(headers.get("content-type"), want[ext], path)
            status, gz_headers, packed = request(self.port, path,
                                                 headers={"Accept-Encoding": "gzip, br"})
            self.assertEqual(status, 200)
            if ext in (".js", ".css") and len(plain) > 1000:
                self.assertEqual(gz_headers.get("content-encoding"), "gzip", path)
                self.assertEqual(gzip.decompress(packed), plain, path)
                self.assertLess(len(packed), len(plain))
                self.assertEqual(gz_headers.get("vary"), "Accept-Encoding")
                self.assertNotEqual(gz_headers["etag"], headers["etag"],
                                    "each representation has its own ETag")
            status, _, _ = request(self.port, path, headers={"Accept-Encoding": "gzip;q=0"})
            self.assertEqual(status, 200)

    def test_gzip_index_and_304(self):
        status, headers, packed = request(self.port, "/", headers={"Accept-Encoding": "gzip"})
        self.assertEqual(status, 200)
        self.assertEqual(headers.get("content-encoding"), "gzip")
        self.assertEqual(gzip.decompress(packed), self.index)
        etag = headers["etag"]
        status, h304, body = request(self.port, "/", headers={"Accept-Encoding": "gzip",
                                                               "If-None-Match": etag})
        self.assertEqual((status, body), (304, b""))
        self.assertEqual(h304.get("etag"), etag)
        self.assertSecurityHeaders(h304, "a 304")
        status, _, _ = request(self.port, "/", headers={"If-None-Match": '"other", W/%s' % etag,
                                                         "Accept-Encoding": "gzip"})
        self.assertEqual(status, 304, "a list, and a weak form of the tag, match too")
        status, _, body = request(self.port, "/", headers={"If-None-Match": '"other"'})
        self.assertEqual((status, body), (200, self.index))

    def test_missing_asset_is_404(self):
        status, headers, body = request(self.port, "/assets/index-doesnotexist.js")
        self.assertEqual(status, 404)
        self.assertNotEqual(body, self.index)
        self.assertSecurityHeaders(headers, "404")

    def test_head(self):
        status, headers, body = request(self.port, "/", method="HEAD")
        self.assertEqual((status, body), (200, b""))
        self.assertEqual(int(headers["content-length"]), len(self.index))
        status, _, _ = request(self.port, "/healthz", method="HEAD")
        self.assertEqual(status, 200)

    def test_security_headers(self):
        for path in ("/", "/healthz", "/api/rooms/nope/export", "/favicon.svg"):
            status, headers, _ = request(self.port, path)
            self.assertIn(status, (200, 401, 404), path)
            self.assertSecurityHeaders(headers, "GET %s" % path)
        # the 429 of a handshake over --max-conns-per-ip (1 here)
        from harness import RawWs
        first = RawWs(self.port)
        try:
            status, headers, head = raw_http(self.port, ws_handshake_request(self.port))
            self.assertEqual(status, 429, head)
            self.assertSecurityHeaders(headers, "a 429 handshake refusal")
        finally:
            first.sock.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
