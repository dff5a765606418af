#!/usr/bin/python3
"""Hardening (issue #5; PROTOCOL.md: Transport, close codes, Limits, Storage faults, join/epoch/
reason, token.rotate, Error codes).

Hostile values and 100,000-deep nesting, the message-size cap on whole and fragmented messages,
cross-site handshakes, 10,000 randomized unauthorized attempts, a flood under --rate, a slow
reader under --max-queue, a kill -9 crash loop, storage faults (--max-db-size, a database locked
by another process), the connection/participant/room caps, token rotation, resume epochs and a
restore from a backup, the idle drop, and TLS.

Figures (latencies, resident memory, crash-loop counts) are printed to stderr as
"[hardening] ..." lines.

Environment (besides harness.py's):
  REFINE_CRASH_LOOPS  iterations of the kill -9 loop (default 20; 200 for the long run)
  REFINE_CRASH_SEED   its random seed
"""

import asyncio
import http.client
import os
import random
import re
import select
import shutil
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import unittest

import websockets
import websockets.exceptions

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, Client, ROLES, RawWs, RoomState, SUBPROTOCOL, Server,  # noqa
                     ServerError, TOKEN_RE, ASAN, TSAN, create_room, http_get, is_event, pack, pipeline,
                     join, raw_http, summarize, unpack, ws_handshake_request)

NAN = float("nan")
INF = float("inf")
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
SENTENCE_RE = re.compile(r"^[A-Z].* .*[.!?]$", re.S)
RSS_BUDGET_KB = 50 * 1024
if ASAN:
    # Under AddressSanitizer freed memory sits in a quarantine (256 MB by default) and every
    # block carries redzones: keep the quarantine small for the servers these tests start and
    # allow the sanitizer's overhead, so the bounds still catch unbounded growth.
    os.environ["ASAN_OPTIONS"] = (os.environ.get("ASAN_OPTIONS") or "detect_leaks=1") + \
        ":quarantine_size_mb=4:thread_local_quarantine_size_kb=64"
    RSS_BUDGET_KB = 150 * 1024
elif TSAN:
    RSS_BUDGET_KB = 150 * 1024


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


def report(fmt, *args):
    sys.stderr.write("[hardening] " + (fmt % args if args else fmt) + "\n")
    sys.stderr.flush()


def rss_kb(pid):
    """Resident memory of a process in KiB (VmRSS of /proc/<pid>/status)."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/%d/status" % pid)


def ms(seconds):
    return seconds * 1000.0


def lat_summary(samples):
    s = sorted(samples)
    return "median %.1f ms, p90 %.1f ms, max %.1f ms (n=%d)" % (
        ms(statistics.median(s)), ms(s[int(0.9 * (len(s) - 1))]), ms(s[-1]), len(s))


def stable_snapshot(snap):
    """A snapshot without its presence flags, for exact before/after comparisons."""
    out = {k: v for k, v in snap.items() if k != "t"}
    out["participants"] = sorted(({k: v for k, v in p.items() if k != "online"}
                                  for p in snap["participants"]), key=lambda p: p["pid"])
    return out


def comparable_no_epoch(state_or_snap):
    state = state_or_snap if isinstance(state_or_snap, RoomState) else RoomState(state_or_snap)
    c = state.comparable(False)
    c["room"] = {k: v for k, v in c["room"].items() if k != "epoch"}
    return c


async def join_ex(client, room, name, token=None, pid=None, secret=None, since=None,
                  epoch=None, expect_mode=None):
    """The harness's join() with the arguments in this file's order (name first)."""
    return await join(client, room, token, name, since=since, pid=pid, secret=secret,
                      expect_mode=expect_mode, epoch=epoch)


def raw_ws(port, rcvbuf=None, timeout=5.0):
    """A RawWs (harness) whose socket can get a small SO_RCVBUF before it connects."""
    x = RawWs.__new__(RawWs)
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    s.sendall(ws_handshake_request(port))
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        if not chunk:
            raise AssertionError("handshake: connection closed")
        head += chunk
    head, buf = head.split(b"\r\n\r\n", 1)
    if not head.startswith(b"HTTP/1.1 101"):
        raise AssertionError("handshake refused: %r" % head[:200])
    x.sock, x.buf = s, buf
    return x


def drain_frames(x, timeout):
    """Read frames of a RawWs until a close frame, EOF, an error or `timeout` seconds of
    silence. Returns (frames [(opcode, payload)], close code or None, how it ended)."""
    frames = []
    x.sock.settimeout(timeout)
    try:
        while True:
            op, data = x.read_frame()
            frames.append((op, data))
            if op == 8:
                return frames, (int.from_bytes(data[:2], "big") if len(data) >= 2 else 1005), \
                    "close frame"
    except EOFError:
        return frames, None, "EOF"
    except socket.timeout:
        return frames, None, "timeout"
    except OSError as e:
        return frames, None, "socket error %r" % e


def sized_item_add(size, rid):
    """A syntactically valid item.add request of exactly `size` bytes (its notes are too long
    for the protocol when size > ~10 KB, which is fine: it is judged after it is received)."""
    n = size - 64
    for _ in range(20):
        msg = pack({"t": "item.add", "id": rid, "item": {"title": "big", "notes": "n" * n}})
        if len(msg) == size:
            return msg
        n += size - len(msg)
    raise AssertionError("cannot build a message of %d bytes" % size)


def map_with_raw_value(fields, key, raw_value):
    """{**fields, key: <raw bytes>} encoded by hand (raw may be e.g. 100,000 nested arrays)."""
    out = bytearray([0x80 | (len(fields) + 1)])
    for k, v in fields.items():
        out += pack(k) + pack(v)
    out += pack(key) + raw_value
    return bytes(out)


def integrity_check(db):
    """PRAGMA integrity_check on a read-only connection (it neither checkpoints nor removes the
    WAL, so the server still does its own recovery on restart)."""
    try:
        conn = sqlite3.connect("file:%s?mode=ro" % db, uri=True, timeout=10)
    except sqlite3.Error:
        conn = sqlite3.connect(db, timeout=10)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


def https_get(port, path, timeout=5.0):
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class TlsServer(Server):
    """Server with --tls-cert/--tls-key: its start-up probe speaks https (the port serves
    https and wss only)."""

    def __init__(self, cert, key, *extra, **kw):
        super().__init__("--tls-cert", cert, "--tls-key", key, *extra, **kw)

    @property
    def ws_url(self):
        return "wss://127.0.0.1:%d/ws" % self.port

    def start(self, timeout=15.0):
        return super().start(timeout)

    def probe(self):
        """GET https://.../healthz: the port serves https only."""
        try:
            status, _ = https_get(self.port, "/healthz", timeout=1.0)
        except ssl.SSLError as e:
            raise OSError(repr(e)) from e
        return status


class HardeningBase(AsyncTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        # IsolatedAsyncioTestCase runs its loop in debug mode, which makes the client several
        # times slower than the server; these tests push thousands of messages.
        asyncio.get_running_loop().set_debug(False)

    async def make_room(self, srv, name="Hardening room", deck=None):
        c = await self.connect(srv, "creator")
        room, tokens = await create_room(c, name, deck)
        await c.close()
        return room, tokens

    async def joined_ex(self, srv, room, name, label=None, **kw):
        c = await self.connect(srv, label or name)
        await join_ex(c, room, name, **kw)
        return c

    async def probe(self, srv, room, ok, name):
        """A fresh snapshot, seen by a new connection of an existing participant."""
        c = await self.connect(srv, "probe")
        await join_ex(c, room, name, pid=ok["pid"], secret=ok["secret"], expect_mode="snapshot")
        snap = c.snapshot
        await c.close()
        return snap

    def assertHealthy(self, srv):
        status, _, _ = http_get(srv.port, "/healthz")
        self.assertEqual(status, 200, "GET /healthz")
        self.assertTrue(srv.running(), "the server is alive")

    def assertSentence(self, msg, what):
        self.assertIsInstance(msg, str, what)
        self.assertRegex(msg, SENTENCE_RE, "%s: `msg` is a sentence for a person" % what)


# ---------------------------------------------------------------------------
# 1. Hostile values and very deep nesting
# ---------------------------------------------------------------------------


class HostileValueTests(HardeningBase):

    def vectors_unjoined(self, room, tokens, rid):
        """(bytes, id the reply must echo or None when the id itself is bad / unreadable)."""
        tok = tokens["member"]
        out = []

        def req(op, echo=True, **f):
            rid[0] += 1
            m = {"t": op, "id": rid[0]}
            m.update(f)
            out.append((pack(m), rid[0] if echo else None))

        req("join", room=room, token=tok, name="N", since=-1)
        req("join", room=room, token=tok, name="N", since=-9007199254740991)
        req("join", room=room, token=tok, name="N", since=1.5)
        req("join", room=room, token=tok, name="N", since=3.0)
        req("join", room=room, token=tok, name="N", since=NAN)
        req("join", room=room, token=tok, name="N", since=-INF)
        req("join", room=room, token=tok, name="N", since=2 ** 53)
        req("join", room=room, token=tok, name="N", since=2 ** 64 - 1)
        req("join", room=room, token=tok, name="N", epoch=5)
        req("join", room=room, token=tok, name=NAN)
        req("join", room=room, token=tok, name="N", pid=-5, secret="x" * 22)
        req("room.create", name="n", deck={"a": "1", "b": "2"})
        req("room.create", name="n", deck=[NAN, 1.0])
        req("room.create", name=NAN)
        # bad ids themselves: never echoed
        for bad in (-5, NAN, -INF, 2.0, -2 ** 63):
            out.append((pack({"t": "room.create", "id": bad, "name": "bad id"}), None))
        out.append((pack({"t": "join", "id": -5, "room": room, "token": tok, "name": "N"}), None))
        return out

    def vectors_facilitator(self, item, rid):
        out = []

        def req(op, **f):
            rid[0] += 1
            m = {"t": op, "id": rid[0]}
            m.update(f)
            out.append((pack(m), rid[0]))

        for v in (NAN, -1, -5, 101, 5.5, 5.0, INF, -INF, -0.0, True, "5"):
            req("item.add", item={"title": "v", "value": v})
            req("item.update", item=item, set={"value": v})
        for field, bad in (("acceptance", {"Given": "when", "then": "x"}),
                           ("acceptance", [{"a": "b"}]), ("acceptance", [NAN]),
                           ("acceptance", [["nested"]]), ("labels", {"l": 1}),
                           ("labels", [NAN]), ("title", NAN), ("title", -1),
                           ("estimate", NAN), ("moscow", 1), ("kind", {"story": 1})):
            req("item.add", item={"title": "m", field: bad} if field != "title"
                else {"title": bad})
            req("item.update", item=item, set={field: bad})
        req("item.add", item=[["title", "array where the item map belongs"]])
        req("item.update", item=item, set=[{"title": "x"}])
        req("item.split", item=item, children={"title": "a map where an array belongs"})
        req("item.split", item=item, children=[{"title": "a"}, ["b"]])
        req("item.split", item=item, children=[{"title": "a", "value": NAN}])
        req("item.move", item=item, after=NAN)
        req("item.move", item=item, after=-1)
        req("item.move", item=-5, after=None)
        req("focus", item=-5)
        req("focus", item=NAN)
        for s in (1.5, 10.0, NAN, -1, -INF, INF, 3601, "10", 2 ** 64 - 1):
            req("timer.start", seconds=s)
        for g in (-1, 1.5, NAN, 3601, INF):
            req("room.update", facilitator_grace=g)
        req("room.update", auto_reveal=1)
        req("room.update", deck={"a": "1"})
        req("room.update", name=NAN)
        for d in (-1, NAN, 1.5, -INF):
            req("round.start", item=item, deadline=d)
        req("round.start", item=item, deck={"x": "y"})
        req("round.start", item=item, anonymous="yes")
        req("vote", round="r1", card=NAN)
        req("vote", round="r1", card="5", confidence=NAN)
        req("vote", round=-1, card="5")
        req("round.accept", round="r1", estimate=NAN)
        req("token.rotate", role=NAN)
        req("token.rotate", role="admin")
        req("role.set", pid=-5, role="member")
        return out

    @staticmethod
    def deep_vectors(rid):
        """100,000-deep nesting, bare and inside well-formed envelopes (ids not asserted: the
        structure cannot be read)."""
        rid[0] += 1
        return [
            (b"\x91" * 100000 + b"\xc0", None),                       # 100k nested arrays
            (b"\x81\xa1k" * 100000 + b"\xc0", None),                  # 100k nested maps
            (b"\xdc\x00\x01" * 100000 + b"\xc0", None),               # array16 x 100k
            (map_with_raw_value({"t": "item.add", "id": rid[0]}, "item",
                                b"\x82\xa5title\xa1x\xaaacceptance" + b"\x91" * 100000
                                + b"\xa1x"), None),
            (map_with_raw_value({"t": "item.update", "id": rid[0] + 1, "item": "i1"}, "set",
                                b"\x81\xa5notes" * 100000 + b"\xa1x"), None),
        ]

    async def expect_errs(self, client, sent):
        """After raw sends, the replies: one err bad_request per frame, in order."""
        for data, echo in sent:
            err = await client.next_message(timeout=20,
                                            pred=lambda m: m.get("t") in ("ok", "err"))
            self.assertEqual(err.get("t"), "err", "reply to %r: %s" % (data[:60], summarize(err)))
            self.assertEqual(err.get("code"), "bad_request",
                             "reply to %r: %s" % (data[:80], summarize(err)))
            if echo is not None:
                self.assertEqual(err.get("id"), echo, "the request's id is echoed: %s"
                                 % summarize(err))
            else:
                self.assertTrue(err.get("id") is None or isinstance(err.get("id"), int),
                                summarize(err))
            self.assertIsInstance(err.get("msg"), str)
        self.assertFalse(client.closed, "%s: the connection goes on after bad requests"
                         % client.label)

    async def test_hostile_values_and_deep_nesting(self):
        """NaN, negative and float values where integers belong, maps where arrays belong,
        100,000-deep nesting: each answered bad_request, nothing changes, the connection and the
        server go on and resident memory stays bounded. --max-message 1 MiB so that the
        100,000-deep messages (100-300 KB) reach the decoder instead of the size cap."""
        rounds = 8
        async with Server("--max-message", str(1 << 20)) as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Hostile room")
            F = await self.joined_ex(srv, room, "Fay", token=tokens["facilitator"], label="F")
            W = await self.joined_ex(srv, room, "Wes", token=tokens["observer"], label="W")
            item = (await F.expect_ok("item.add", item={"title": "target"}))["item"]
            U = await self.connect(srv, "U")           # never joins
            before = stable_snapshot(await self.probe(srv, room, W.join_ok, "Wes"))
            rid = [700000]
            rss_start = rss_kb(srv.proc.pid)
            rss = []
            for rnd in range(rounds):
                su = self.vectors_unjoined(room, tokens, rid) + self.deep_vectors(rid)
                sf = self.vectors_facilitator(item, rid) + self.deep_vectors(rid)
                for data, _ in su:
                    await U.raw_send(data)
                for data, _ in sf:
                    await F.raw_send(data)
                await self.expect_errs(U, su)
                await self.expect_errs(F, sf)
                rss.append(rss_kb(srv.proc.pid))
                if rnd == 0:
                    report("hostile vectors: %d per round (%d on an unjoined connection, %d on a "
                           "facilitator's), %d rounds", len(su) + len(sf), len(su), len(sf),
                           rounds)
            report("hostile vectors: server VmRSS %d KiB before, after each round (KiB): %s",
                   rss_start, rss)
            growth = rss[-1] - rss_start
            report("hostile vectors: VmRSS growth over all rounds: %+d KiB (after the first "
                   "round: %+d KiB)", growth, rss[-1] - rss[0])
            self.assertLess(growth, RSS_BUDGET_KB, "resident memory grows by less than 50 MB")
            self.assertLess(rss[-1] - rss[0], 8 * 1024, "no steady growth from round to round "
                            "(a leak per hostile message)")
            self.assertHealthy(srv)
            self.assertEqual(stable_snapshot(await self.probe(srv, room, W.join_ok, "Wes")), before,
                             "no hostile request changed the room")
            self.assertFalse([m for m in F.inbox + W.inbox if is_event(m) and m["seq"] > 1],
                             "no event was broadcast")
            # the same connections still work
            r = await F.expect_ok("item.update", item=item, set={"value": 8})
            self.assertIn("seq", r)
            ok = await join_ex(U, room, "Una", token=tokens["member"])
            self.assertEqual(ok["role"], "member")


# ---------------------------------------------------------------------------
# 2. The message-size cap, whole and fragmented
# ---------------------------------------------------------------------------


class MessageSizeTests(HardeningBase):

    def raw_member(self, srv, room, tokens, name):
        x = raw_ws(srv.port)
        x.send_msg({"t": "join", "id": 1, "room": room, "token": tokens["member"], "name": name})
        ok = x.recv_msg()
        self.assertEqual(ok.get("t"), "ok", ok)
        self.assertEqual(x.recv_msg().get("t"), "snapshot")
        return x

    async def test_size_cap_boundary_and_fragment_flood(self):
        async with Server() as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Size room")
            F = await self.joined_ex(srv, room, "Fay", token=tokens["facilitator"], label="F")
            rss0 = rss_kb(srv.proc.pid)

            # exactly 65,536 bytes: received and judged (notes too long: bad_request), not closed
            x = self.raw_member(srv, room, tokens, "Xena")
            x.send_frame(2, sized_item_add(65536, 42))
            reply = x.recv_msg()
            while reply.get("t") not in ("ok", "err"):
                reply = x.recv_msg()
            self.assertEqual((reply.get("t"), reply.get("code"), reply.get("id")),
                             ("err", "bad_request", 42),
                             "a message of exactly 65,536 bytes is within the cap")
            # one byte more: close 1009
            try:
                x.send_frame(2, sized_item_add(65537, 43))
            except OSError:
                pass
            self.assertEqual(x.close_code(), 1009, "a message of 65,537 bytes: close 1009")
            x.close()

            # 65 KiB through the websockets library: close 1009
            X = await self.joined_ex(srv, room, "Xavi", token=tokens["member"], label="X")
            try:
                await X.raw_send(sized_item_add(65 * 1024, 44))
            except Exception:
                pass
            self.assertEqual(await X.wait_closed(5), 1009, "a 65 KiB message: close 1009")

            # 1,000 fragments of 1 KiB (one message): closed around the 64th, long before the end
            y = self.raw_member(srv, room, tokens, "Yuri")
            frag = b"\xa5" * 1024
            closed_at, how, code = None, None, None
            t0 = time.monotonic()
            for i in range(1000):
                op = 2 if i == 0 else 0
                try:
                    y.send_frame(op, frag, fin=(i == 999))
                except OSError as e:
                    closed_at, how = i, "send failed: %r" % e
                    break
                # fragment #64 (the 65th) takes the message past 64 KiB: give the server time
                r, _, _ = select.select([y.sock], [], [], 2.0 if i == 64 else
                                        0.02 if i > 64 else 0)
                if r:
                    closed_at, how = i, "readable"
                    break
            if how == "readable" or (how or "").startswith("send failed"):
                code = y.close_code()
            y.close()
            report("fragment flood: connection closed after fragment #%s of 1000 (%s KiB sent; "
                   "%s; close code %s; %.2f s)", closed_at,
                   None if closed_at is None else closed_at + 1, how, code,
                   time.monotonic() - t0)
            self.assertIsNotNone(closed_at, "the server let a 1,000 KiB fragmented message "
                                 "through without closing the connection")
            self.assertLessEqual(closed_at, 70, "the cap (64 KiB) is enforced while the "
                                 "fragments arrive, not after the whole message")
            self.assertGreaterEqual(closed_at, 63, "64 fragments of 1 KiB (64 KiB) are within the "
                                    "cap")
            self.assertEqual(code, 1009, "fragmented over-size message: close 1009")

            rss1 = rss_kb(srv.proc.pid)
            report("size cap: server VmRSS %d KiB before, %d KiB after (%+d KiB)", rss0, rss1,
                   rss1 - rss0)
            self.assertLess(rss1 - rss0, RSS_BUDGET_KB)
            self.assertHealthy(srv)
            await F.expect_ok("item.add", item={"title": "still works"})


# ---------------------------------------------------------------------------
# 3. Cross-site WebSocket handshakes
# ---------------------------------------------------------------------------


class OriginTests(HardeningBase):

    def test_cross_site_handshakes(self):
        with Server("--allow-origin", "https://good.example",
                    "--allow-origin", "http://other.example:8443") as srv:
            self.server = srv
            p = srv.port

            def status_for(origin, host=None):
                st, _, head = raw_http(p, ws_handshake_request(p, origin=origin, host=host))
                return st, head

            refused = [
                "http://evil.example",
                "null",
                "http://127.0.0.1.evil.example:%d" % p,       # look-alike host
                "http://127.0.0.1:%d.evil.example" % p,
                "http://127.0.0.1:%d@evil.example" % p,
                "http://127.0.0.1:%d" % (p + 1),               # same host, other port
                "https://127.0.0.1:%d" % (p + 1),
                "http://127.0.0.1",                            # same host, no port
                "http://localhost:%d" % p,                     # same machine, other host name
                "ws://127.0.0.1:%d" % p,                       # not http(s)
                "http://127.0.0.1:%d/" % p,                    # not exactly the origin
                "http://good.example",                         # http vs the allowed https
                "https://good.example:443",
                "https://good.example/",
                "https://good.example.evil.example",
                "https://evil.example/https://good.example",
                "https://other.example:8443",                  # https vs the allowed http
                "http://other.example",
                "http://other.example:8443.evil.example",
            ]
            for origin in refused:
                st, head = status_for(origin)
                self.assertEqual(st, 403, "Origin %r must be refused with 403:\n%s"
                                 % (origin, head))
            for origin in (None, "https://good.example", "http://other.example:8443",
                           "http://127.0.0.1:%d" % p, "https://127.0.0.1:%d" % p):
                st, head = status_for(origin)
                self.assertEqual(st, 101, "Origin %r must be accepted:\n%s" % (origin, head))

            async def real_clients():
                c = await Client.connect(srv.ws_url, label="good", origin="https://good.example")
                try:
                    r = await c.expect_ok("room.create", name="From an allowed origin")
                    self.assertRegex(r["room"], r"^[a-z][a-z0-9]*\.[A-Za-z0-9_-]+$")
                finally:
                    await c.close()
                # (the refusal is an HTTP/1.0 response, which websockets 10.4 reports as
                # InvalidMessage rather than InvalidStatusCode; the status is checked raw above)
                with self.assertRaises((websockets.exceptions.InvalidStatusCode,
                                        websockets.exceptions.InvalidMessage)) as cm:
                    await websockets.connect(srv.ws_url, subprotocols=[SUBPROTOCOL],
                                             origin="https://evil.example", open_timeout=5)
                if isinstance(cm.exception, websockets.exceptions.InvalidStatusCode):
                    self.assertEqual(cm.exception.status_code, 403)

            asyncio.run(real_clients())
            self.assertHealthy(srv)


# ---------------------------------------------------------------------------
# 4. 10,000 randomized unauthorized attempts
# ---------------------------------------------------------------------------

ALL_OPS = ("role.set", "room.update", "item.add", "item.update", "item.move", "item.remove",
           "item.split", "focus", "round.start", "vote", "round.reveal", "round.accept",
           "round.cancel", "timer.start", "timer.stop", "role.claim", "token.rotate")
FORBIDDEN = {
    "observer": ALL_OPS,
    "member": ("role.set", "room.update", "item.move", "item.remove", "focus", "round.start",
               "round.reveal", "round.accept", "round.cancel", "timer.start", "timer.stop",
               "token.rotate"),
    "owner": ("role.set", "room.update", "focus", "round.start", "round.reveal",
              "round.cancel", "timer.start", "timer.stop", "token.rotate"),
    "facilitator": ("role.claim",),
}


class UnauthorizedTests(HardeningBase):

    @staticmethod
    def mutate(rnd, s):
        """A different string of 1..64 bytes close to s."""
        while True:
            k = rnd.randrange(6)
            i = rnd.randrange(len(s))
            if k == 0:
                t = s[:i] + rnd.choice(TOKEN_ALPHABET) + s[i + 1:]
            elif k == 1:
                t = s[:i] + s[i + 1:]
            elif k == 2:
                t = s + rnd.choice(TOKEN_ALPHABET)
            elif k == 3:
                t = s[:i] + s[i].swapcase() + s[i + 1:]
            elif k == 4:
                t = s[::-1]
            else:
                t = s[:-1] + ("A" if s[-1] != "A" else "B")
            if t != s and 1 <= len(t) <= 64:
                return t

    async def test_ten_thousand_unauthorized_attempts(self):
        total = 10000
        rnd = random.Random(0x5EC)
        async with Server() as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Target room")
            room_b, tokens_b = await self.make_room(srv, "Other room")
            conns = {}
            for role, name in (("facilitator", "Fay"), ("owner", "Olga"), ("member", "Max"),
                               ("observer", "Wes")):
                conns[role] = await self.joined_ex(srv, room, name, token=tokens[role],
                                                   label=role)
            B = await self.joined_ex(srv, room_b, "Bea", token=tokens_b["member"], label="B")
            F = conns["facilitator"]
            items = []
            for t in ("alpha", "beta", "gamma", "delta"):
                items.append((await F.expect_ok("item.add", item={"title": t}))["item"])
            rnd_round = await F.expect_ok("round.start", item=items[0])
            rid = None
            for m in F.inbox:
                if m.get("t") == "round.started":
                    rid = m["round"]
            self.assertIsNotNone(rid)
            await conns["member"].expect_ok("vote", round=rid, card="5")
            await F.expect_ok("timer.start", seconds=600)
            seq0 = (await conns["member"].expect_ok("item.update", item=items[1],
                                                     set={"notes": "baseline"}))["seq"]
            self.assertGreater(seq0, rnd_round["seq"])
            creds = {role: (c.join_ok["pid"], c.join_ok["secret"]) for role, c in conns.items()}
            pids = [p for p, _ in creds.values()]
            before = stable_snapshot(await self.probe(srv, room, conns["observer"].join_ok, "Wes"))
            for c in list(conns.values()) + [B]:
                await asyncio.sleep(0)
                c.inbox.clear()
            attackers = [await self.connect(srv, "U%d" % i) for i in range(2)]

            def valid_fields(op):
                it = rnd.choice(items)
                if op == "role.set":
                    return {"pid": rnd.choice(pids), "role": rnd.choice(ROLES)}
                if op == "room.update":
                    f = {}
                    while not f:
                        if rnd.random() < 0.5:
                            f["name"] = "hijacked %d" % rnd.randrange(1000)
                        if rnd.random() < 0.4:
                            f["auto_reveal"] = rnd.random() < 0.5
                        if rnd.random() < 0.3:
                            f["facilitator_grace"] = rnd.randrange(3601)
                        if rnd.random() < 0.3:
                            f["deck"] = rnd.choice(["tshirt", "powers", ["1", "2", "3"]])
                    return f
                if op == "item.add":
                    f = {"item": {"title": "forged %d" % rnd.randrange(10 ** 6)}}
                    if rnd.random() < 0.5:
                        f["after"] = rnd.choice(items + [None])
                    return f
                if op == "item.update":
                    return {"item": it, "set": rnd.choice([{"title": "forged"}, {"value": 99},
                                                           {"status": "done"}])}
                if op == "item.move":
                    return {"item": it, "after": rnd.choice([None] + [x for x in items
                                                                      if x != it])}
                if op == "item.remove":
                    return {"item": it}
                if op == "item.split":
                    return {"item": it, "children": [{"title": "c%d" % k}
                                                     for k in range(rnd.randrange(1, 4))]}
                if op == "focus":
                    return {"item": rnd.choice(items + [None])}
                if op == "round.start":
                    return {"item": it, "anonymous": rnd.random() < 0.5}
                if op == "vote":
                    return {"round": rid, "card": rnd.choice(["1", "3", "8", "?", None])}
                if op in ("round.reveal", "round.cancel"):
                    return {"round": rid}
                if op == "round.accept":
                    return {"round": rid, "estimate": rnd.choice(["3", "5", "8"])}
                if op == "timer.start":
                    return {"seconds": rnd.randrange(1, 3601)}
                if op == "token.rotate":
                    return {"role": rnd.choice(ROLES)}
                return {}          # timer.stop, role.claim

            def join_attempt():
                kind = rnd.randrange(7)
                f = {"room": room, "name": "Mallory %d" % rnd.randrange(1000)}
                role = rnd.choice(ROLES)
                if kind == 0:                                    # another room's token
                    f["token"] = tokens_b[role]
                elif kind == 1:                                  # forged token
                    f["token"] = "".join(rnd.choice(TOKEN_ALPHABET) for _ in range(22))
                elif kind == 2:                                  # mutated real token
                    f["token"] = self.mutate(rnd, tokens[role])
                elif kind == 3:                                  # pid of one, secret of another
                    a, b = rnd.sample(ROLES, 2)
                    f["pid"], f["secret"] = creds[a][0], creds[b][1]
                elif kind == 4:                                  # mutated secret
                    pid, sec = creds[role]
                    f["pid"], f["secret"] = pid, self.mutate(rnd, sec)
                elif kind == 5:                                  # mutated pid, right secret
                    pid, sec = creds[role]
                    f["pid"], f["secret"] = self.mutate(rnd, pid), sec
                else:                                            # other room's participant
                    f["pid"], f["secret"] = B.join_ok["pid"], B.join_ok["secret"]
                    if rnd.random() < 0.5:
                        f["token"] = tokens_b[role]
                if rnd.random() < 0.2:
                    f["since"] = rnd.randrange(0, 50)
                return f

            plan = {c: [] for c in attackers + list(conns.values())}
            expected = {c: [] for c in plan}
            for k in range(total):
                if rnd.random() < 0.4:
                    c = attackers[k % 2]
                    plan[c].append(("join", join_attempt()))
                    expected[c].append("auth_failed")
                else:
                    role = rnd.choice(("observer", "observer", "member", "member", "owner",
                                       "facilitator"))
                    op = rnd.choice(FORBIDDEN[role])
                    plan[conns[role]].append((op, valid_fields(op)))
                    expected[conns[role]].append("forbidden")
            t0 = time.monotonic()
            replies = await asyncio.gather(*(pipeline(c, plan[c], window=200) for c in plan))
            elapsed = time.monotonic() - t0
            wrong = []
            n = 0
            for c, rs in zip(plan, replies):
                for (op, f), exp, r in zip(plan[c], expected[c], rs):
                    n += 1
                    if r.get("t") != "err" or r.get("code") != exp:
                        wrong.append("%s %s %s -> %s (expected err %s)"
                                     % (c.label, op, summarize(f, 160), summarize(r, 200), exp))
            report("unauthorized: %d attempts (%d joins) in %.1f s, %d answered other than "
                   "expected", n, sum(len(plan[a]) for a in attackers), elapsed, len(wrong))
            self.assertEqual(n, total)
            self.assertEqual(wrong, [], "every unauthorized attempt is refused with the right "
                             "code; first ones:\n  " + "\n  ".join(wrong[:15]))
            # nothing happened in the room
            await asyncio.sleep(0.2)
            for c in list(conns.values()) + [B]:
                evs = [m for m in c.inbox if is_event(m)]
                self.assertEqual(evs, [], "%s received events during the attack" % c.label)
            after = stable_snapshot(await self.probe(srv, room, conns["observer"].join_ok, "Wes"))
            self.assertEqual(after, before, "the room's state is unchanged")
            self.assertEqual(after["seq"], seq0)
            for a in attackers:
                r = await a.request("item.add", item={"title": "x"})
                self.assertEqual(r.get("code"), "not_joined", "no attacker join succeeded")
            # the real credentials still work
            await conns["member"].expect_ok("item.update", item=items[2], set={"value": 3})
            self.assertHealthy(srv)


# ---------------------------------------------------------------------------
# 5. Flood under --rate 50
# ---------------------------------------------------------------------------


class FloodTests(HardeningBase):

    async def test_flood_is_limited_then_closed_and_others_unaffected(self):
        async with Server("--rate", "50") as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Flood room")
            L = await self.joined_ex(srv, room, "Lia", token=tokens["member"], label="L")
            X = await self.joined_ex(srv, room, "Xan", token=tokens["member"], label="X")
            item = (await L.expect_ok("item.add", item={"title": "latency probe"}))["item"]
            xitem = (await X.expect_ok("item.add", item={"title": "flood target"}))["item"]
            await asyncio.sleep(1.0)          # both buckets refill

            async def sample(tag, k):
                t = time.monotonic()
                r = await L.request("item.update", item=item, set={"title": "%s %d" % (tag, k)})
                self.assertEqual(r.get("t"), "ok", "the other client is never limited: %s"
                                 % summarize(r))
                return t, time.monotonic() - t

            base = []
            for k in range(25):
                base.append((await sample("base", k))[1])
                await asyncio.sleep(0.005)
            await asyncio.sleep(1.0)                      # L's bucket refills

            futs = []

            async def flood():
                # 1,000 messages at a steady 1 per ms (in ~1 s) unless the server closes first
                t_f = time.monotonic()
                for k in range(1000):
                    if X.closed:
                        break
                    futs.append(X.send_request("item.update", item=xitem,
                                               set={"title": "flood %d" % k}))
                    d = t_f + (k + 1) * 0.001 - time.monotonic()
                    if d > 0:
                        await asyncio.sleep(d)
                    elif k % 10 == 0:
                        await asyncio.sleep(0)

            closed_at = []

            async def watch():
                try:
                    await X.wait_closed(10)
                finally:
                    closed_at.append(time.monotonic())

            t0 = time.monotonic()
            wtask = asyncio.ensure_future(watch())
            ftask = asyncio.ensure_future(flood())
            samples = []
            k = 0
            while not ftask.done() and k < 400:
                samples.append(await sample("during", k))
                k += 1
                await asyncio.sleep(0.005)
            await ftask
            flood_s = time.monotonic() - t0
            await asyncio.gather(wtask, return_exceptions=True)
            code = X.close_code if X.closed else None
            end = closed_at[0] if closed_at else time.monotonic()
            during = [dt for ts, dt in samples if ts < end]
            await asyncio.gather(*futs, return_exceptions=True)
            replies = [f.result() for f in futs if not f.cancelled() and f.exception() is None]
            oks = sum(1 for r in replies if r.get("t") == "ok")
            limited = [r for r in replies if r.get("code") == "rate_limited"]
            other = [r for r in replies if r.get("t") == "err" and r.get("code") != "rate_limited"]
            report("flood: %d sent in %.2f s -> %d ok, %d rate_limited, %d other errors, %d "
                   "unanswered; close code %s after %.2f s", len(futs), flood_s, oks,
                   len(limited), len(other), len(futs) - len(replies), code, end - t0)
            report("flood: latency of the other client, baseline: %s", lat_summary(base))
            report("flood: latency of the other client, during the flood: %s",
                   lat_summary(during or [0.0]))
            self.assertGreater(len(limited), 0, "the flooding client gets rate_limited")
            self.assertSentence(limited[0].get("msg"), "rate_limited")
            self.assertEqual(other, [])
            self.assertLessEqual(oks, 100 + 50 * 3, "at most the burst plus the rate is accepted")
            self.assertEqual(code, 1008, "a client that keeps flooding after a second's worth of "
                             "rate_limited answers is closed with 1008 (it sent %d messages in "
                             "%.1f s and got %d rate_limited)" % (len(futs), flood_s,
                                                                  len(limited)))
            self.assertGreaterEqual(len(during), 5, "enough samples during the flood")
            bm, dm = statistics.median(base), statistics.median(during)
            self.assertLessEqual(dm, 2 * bm + 0.020,
                                 "median latency during the flood %.1f ms <= 2 x baseline %.1f ms "
                                 "+ 20 ms" % (ms(dm), ms(bm)))
            self.assertFalse(L.closed)
            # the flooder's participant can come back on a new connection
            X2 = await self.joined_ex(srv, room, "Xan", pid=X.join_ok["pid"],
                                      secret=X.join_ok["secret"], label="X2")
            await X2.expect_ok("item.update", item=xitem, set={"title": "calm again"})
            self.assertHealthy(srv)


# ---------------------------------------------------------------------------
# 6. Slow reader under --max-queue
# ---------------------------------------------------------------------------


class SlowReaderTests(HardeningBase):

    async def test_slow_reader_is_dropped_others_unaffected(self):
        """A client that joins and never reads again (SO_RCVBUF 4 KiB) while the room gets
        ~4.9 MB of events: the server closes it (4001) once it is --max-queue (64 KiB) behind;
        on loopback the kernel's buffers take ~3 MB first, so 600 events of 8.2 KB are sent."""
        n_events = 600
        async with Server("--max-queue", "65536") as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Slow room")
            Wr = await self.joined_ex(srv, room, "Writer", token=tokens["member"], label="Wr")
            R1 = await self.joined_ex(srv, room, "R1", token=tokens["observer"], label="R1")
            R2 = await self.joined_ex(srv, room, "R2", token=tokens["observer"], label="R2")
            item = (await Wr.expect_ok("item.add", item={"title": "big notes"}))["item"]
            start_seq = R1.join_ok["seq"] + 1
            await R1.catch_up(start_seq)
            await R2.catch_up(start_seq)
            rss0 = rss_kb(srv.proc.pid)

            slow = raw_ws(srv.port, rcvbuf=4096)
            slow.send_msg({"t": "join", "id": 1, "room": room, "token": tokens["observer"],
                           "name": "Slow"})
            note = await R1.next_message("participant.joined", timeout=5,
                                         pred=lambda m: m.get("name") == "Slow")
            slow_pid = note["pid"]
            t_join = time.monotonic()
            # the slow client never reads from here on

            lat = []
            stop = asyncio.Event()

            async def probe_latency():
                while not stop.is_set():
                    t = time.monotonic()
                    r = await R1.request("timer.stop")        # small; an observer: forbidden
                    lat.append(time.monotonic() - t)
                    self.assertEqual(r.get("code"), "forbidden")
                    await asyncio.sleep(0.02)

            ptask = asyncio.ensure_future(probe_latency())
            t0 = time.monotonic()
            reqs = [("item.update", {"item": item, "set": {"notes": ("%05d" % k) * 1640}})
                    for k in range(n_events)]                          # 8,200-byte notes
            try:
                oks = await pipeline(Wr, reqs, window=2)
            finally:
                stop.set()
                await asyncio.gather(ptask, return_exceptions=True)
            for r in oks:
                self.assertEqual(r.get("t"), "ok", summarize(r))
            last = oks[-1]["seq"]
            gen_s = time.monotonic() - t0
            for R in (R1, R2):
                evs = await R.events_until(last, timeout=30)
                notes = [e["set"]["notes"][:5] for e in evs if e["t"] == "item.updated"]
                self.assertEqual(notes, ["%05d" % k for k in range(n_events)],
                                 "%s got every event, in order" % R.label)
            await ptask
            rss1 = rss_kb(srv.proc.pid)
            # the server drops the slow one by itself, while it still does not read: the others
            # see it leave (at the latest by the idle rule: offline within 30 s of its last sign
            # of life, which was its join)
            left = None
            try:
                left = await R1.next_message(
                    "participant.left", timeout=max(1.0, 30.0 - (time.monotonic() - t_join)),
                    pred=lambda m: m.get("pid") == slow_pid)
            except AssertionError:
                pass
            left_s = time.monotonic() - t0
            # now look at what the slow client was sent
            frames, code, how = await asyncio.to_thread(drain_frames, slow, 3.0)
            slow.close()
            msgs = [unpack(d) for op, d in frames if op == 2]
            ev_seqs = [m["seq"] for m in msgs if is_event(m)]
            got_bytes = sum(len(d) for _, d in frames)
            report("slow reader: %d events of ~8.2 KB generated in %.2f s; the others saw the "
                   "slow participant leave: %s, %.1f s after the load began%s; it had been sent "
                   "%d frames (%d KiB, %d events, seqs %s..%s), then %s (close code %s)",
                   n_events, gen_s, left is not None, left_s,
                   " (its 4001 close frame could not be written to the full socket, so it "
                   "lingered until the idle drop)" if left_s > 10 else "",
                   len(frames), got_bytes // 1024, len(ev_seqs),
                   ev_seqs[0] if ev_seqs else None, ev_seqs[-1] if ev_seqs else None, how, code)
            report("slow reader: others' round trips during the load: %s", lat_summary(lat))
            report("slow reader: server VmRSS %d KiB before, %d KiB after the load (%+d KiB)",
                   rss0, rss1, rss1 - rss0)
            self.assertIsNotNone(left, "the server drops the slow reader: the others see it "
                                 "leave within 30 s")
            self.assertLess(len(ev_seqs), n_events, "the slow client was dropped, not sent all "
                            "%d events (%d KiB were queued for it)" % (n_events,
                                                                     got_bytes // 1024))
            self.assertTrue(how in ("close frame", "EOF") or how.startswith("socket error"),
                            "the slow client's connection ended (it: %s)" % how)
            if code is not None:
                self.assertEqual(code, 4001, "close code for a connection too far behind")
            if ev_seqs:
                self.assertEqual(ev_seqs, list(range(ev_seqs[0], ev_seqs[0] + len(ev_seqs))),
                                 "what the slow client did get has no gap")
            self.assertLess(rss1 - rss0, RSS_BUDGET_KB)
            self.assertLess(statistics.median(lat), 0.25, "others' latency stays sane")
            self.assertLess(max(lat), 2.0, "others' latency stays sane")
            self.assertFalse(R1.closed or R2.closed or Wr.closed)
            await Wr.expect_ok("item.update", item=item, set={"notes": "small again"})
            self.assertHealthy(srv)


# ---------------------------------------------------------------------------
# 7. kill -9 crash loop
# ---------------------------------------------------------------------------


class CrashLoopTests(HardeningBase):

    MAX_ITEMS = 400

    def index_event(self, ev, markers, problems):
        """markers: unique string of a request -> seq of the event that carries it."""
        mk = None
        if ev["t"] == "item.added":
            mk = ev["item"].get("title")
        elif ev["t"] == "item.updated":
            mk = ev["set"].get("title") or ev["set"].get("notes")
        if mk:
            if mk in markers:
                problems.append("duplicate: %r in events %d and %d" % (mk, markers[mk],
                                                                        ev["seq"]))
            markers[mk] = ev["seq"]

    def check_writer(self, label, log, history, markers, problems, counts):
        """Acknowledged => committed with that seq; committed requests form a prefix of the
        send order with increasing seqs (no reordering, no duplicate, no hole)."""
        prefix_open = True
        last_seq = 0
        for op, fields, fut, marker in log:
            reply = None
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                reply = fut.result()
                if reply.get("t") != "ok":
                    problems.append("%s: %s refused: %s" % (label, op, summarize(reply)))
                    continue
            seq = markers.get(marker) if marker else None
            if reply is not None and "seq" not in reply:
                # a change that changed nothing (a move to where the item is, a value it
                # has): ok without seq, no event; a marked request always changes something
                counts["acked"] += 1
                if marker or op == "item.add":
                    problems.append("%s: %s acknowledged without a seq: %s"
                                    % (label, op, summarize(reply)))
                continue
            if reply is not None:
                counts["acked"] += 1
                s = reply["seq"]
                ev = history.get(s)
                if ev is None:
                    problems.append("%s: acknowledged %s (seq %d) LOST after the kill"
                                    % (label, op, s))
                    continue
                if op == "item.add":
                    good = ev["t"] == "item.added" and ev["item"]["title"] == marker
                elif op == "item.update":
                    good = ev["t"] == "item.updated" and ev["item"] == fields["item"] and \
                        ev["set"] == fields["set"]
                else:
                    good = ev["t"] == "item.moved" and ev["item"] == fields["item"] and \
                        ev.get("after") == fields["after"]
                if not good:
                    problems.append("%s: acknowledged %s got seq %d but that event is %s"
                                    % (label, op, s, summarize(ev, 200)))
                if marker and seq != s:
                    problems.append("%s: %s acknowledged with seq %d, its event has seq %s"
                                    % (label, marker, s, seq))
            else:
                counts["unacked"] += 1
                if marker and seq is not None:
                    counts["unacked_committed"] += 1
            if marker:
                committed = seq is not None
                if committed and not prefix_open:
                    problems.append("%s: %r committed after an earlier request of the same "
                                    "connection was lost (reordering)" % (label, marker))
                if not committed:
                    prefix_open = False
                if committed:
                    if seq <= last_seq:
                        problems.append("%s: %r has seq %d <= the previous request's %d"
                                        % (label, marker, seq, last_seq))
                    last_seq = seq

    async def test_kill9_loop(self):
        loops = int(os.environ.get("REFINE_CRASH_LOOPS", "20"))
        seed = int(os.environ.get("REFINE_CRASH_SEED", "20261128"))
        rnd = random.Random(seed)
        t_start = time.monotonic()
        # The log is applied every 50 ms (not 5 s), so the kills also land in its cycles, its
        # trims and the paced waits between them, not only in the transactions that append.
        async with Server("--log-cycle-ms", "50") as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Crash loop room")
            history, markers = {}, {}
            problems = []
            counts = {"acked": 0, "unacked": 0, "unacked_committed": 0, "inflight": 0}
            creds = {}
            model = epoch = None
            prev_logs = []
            for it in range(loops + 1):
                if it > 0:
                    srv.start()
                # ---- the verifier (observer) joins: first a snapshot, later a replay ----
                V = await Client.connect(srv.ws_url, label="V%d" % it)
                if model is None:
                    ok = await join_ex(V, room, "Vic", token=tokens["observer"])
                    creds["V"] = ok
                    model = RoomState(V.snapshot)
                    epoch = ok["epoch"]
                else:
                    ok = await join_ex(V, room, "Vic", pid=creds["V"]["pid"],
                                       secret=creds["V"]["secret"], since=model.seq, epoch=epoch)
                    self.assertEqual(ok["epoch"], epoch, "a crash does not change the epoch")
                    self.assertEqual(ok["mode"], "replay", "iteration %d: rejoin with since %d: "
                                     "%s" % (it, model.seq, summarize(ok)))
                    self.assertGreaterEqual(ok["seq"], model.seq)
                    if ok["seq"] > model.seq:
                        await V.events_until(ok["seq"], timeout=20)
                    replayed = [e for e in V.seen_events()]
                    self.assertEqual([e["seq"] for e in replayed],
                                     list(range(model.seq + 1, ok["seq"] + 1)),
                                     "replayed seqs continue the live ones, no gap/duplicate")
                    for e in replayed:
                        history[e["seq"]] = e
                        self.index_event(e, markers, problems)
                        model.apply(e)
                    for label, log in prev_logs:
                        self.check_writer(label, log, history, markers, problems, counts)
                    self.assertEqual(problems, [], "iteration %d:\n  %s"
                                     % (it, "\n  ".join(problems[:20])))
                    P = await Client.connect(srv.ws_url, label="P%d" % it)
                    await join_ex(P, room, "Vic", pid=creds["V"]["pid"],
                                  secret=creds["V"]["secret"], expect_mode="snapshot")
                    self.assertEqual(RoomState(P.snapshot).comparable(False),
                                     model.comparable(False),
                                     "iteration %d: a fresh snapshot equals the events applied"
                                     % it)
                    await P.close()
                    self.assertEqual(P.violations, [])
                if it == loops:
                    await V.close()
                    self.assertEqual(V.violations, [])
                    break

                # ---- writers: M adds and retitles, O moves and annotates ----
                M = await Client.connect(srv.ws_url, label="M%d" % it)
                O = await Client.connect(srv.ws_url, label="O%d" % it)
                for key, c, role, name in (("M", M, "member", "Max"), ("O", O, "owner", "Olga")):
                    if key in creds:
                        await join_ex(c, room, name, pid=creds[key]["pid"],
                                      secret=creds[key]["secret"])
                    else:
                        creds[key] = await join_ex(c, room, name, token=tokens[role])
                known = list(model.items)
                logs = {"M": [], "O": []}
                stop = asyncio.Event()
                counter = [0]

                def fire(key):
                    counter[0] += 1
                    k = "%d.%d" % (it, counter[0])
                    if key == "M":
                        if len(known) < 3 or (len(known) < self.MAX_ITEMS and rnd.random() < 0.3):
                            marker = "add " + k
                            fields = {"item": {"title": marker}}
                            if known and rnd.random() < 0.5:
                                fields["after"] = rnd.choice(known)
                            op = "item.add"
                        else:
                            marker = "upd " + k
                            s = {"title": marker}
                            if rnd.random() < 0.3:
                                s["value"] = rnd.randrange(101)
                            fields = {"item": rnd.choice(known), "set": s}
                            op = "item.update"
                        fut = M.send_request(op, **fields)
                        if op == "item.add":
                            fut.add_done_callback(
                                lambda f: (not f.cancelled() and f.exception() is None
                                           and f.result().get("t") == "ok"
                                           and known.append(f.result()["item"])))
                    else:
                        it_id = rnd.choice(known)
                        if rnd.random() < 0.5:
                            op, marker = "item.move", None
                            fields = {"item": it_id,
                                      "after": rnd.choice([None] + [x for x in known[-60:]
                                                                    if x != it_id])}
                        else:
                            op, marker = "item.update", "note " + k
                            fields = {"item": it_id, "set": {"notes": marker}}
                        fut = O.send_request(op, **fields)
                    logs[key].append((op, fields, fut, marker))
                    return fut

                async def driver(key, window):
                    inflight = set()
                    while not stop.is_set():
                        while len(inflight) < window and not stop.is_set():
                            if key == "O" and len(known) < 3:
                                break
                            inflight.add(fire(key))
                        if not inflight:
                            await asyncio.sleep(0.005)
                            continue
                        done, inflight = await asyncio.wait(inflight, timeout=10,
                                                            return_when=asyncio.FIRST_COMPLETED)
                        if not done:
                            raise AssertionError("no reply for 10 s")

                async def killer():
                    await asyncio.sleep(rnd.uniform(0.05, 0.5))
                    counts["inflight"] += sum(1 for lg in logs.values()
                                              for _, _, f, _ in lg if not f.done())
                    srv.kill9_nowait()
                    stop.set()

                await asyncio.gather(driver("M", 16), driver("O", 8), killer())
                pending = [f for lg in logs.values() for _, _, f, _ in lg if not f.done()]
                if pending:
                    await asyncio.wait(pending, timeout=10)
                srv.kill9()
                for c in (V, M, O):
                    await c.wait_closed(5)
                    await c.close()
                    self.assertEqual(c.violations, [], "%s: protocol invariants" % c.label)
                live = [e for e in V.seen_events() if e["seq"] > model.seq]
                for e in live:
                    history[e["seq"]] = e
                    self.index_event(e, markers, problems)
                    model.apply(e)
                res = integrity_check(srv.db)
                self.assertEqual(res, [("ok",)], "iteration %d: PRAGMA integrity_check" % it)
                prev_logs = [("M%d" % it, logs["M"]), ("O%d" % it, logs["O"])]
            elapsed = time.monotonic() - t_start
            report("crash loop: %d kill -9 iterations (seed %d) in %.1f s; %d changes "
                   "acknowledged, none lost; %d unacknowledged (%d of them committed anyway); "
                   "%d requests in flight at the kills; final seq %d, %d items; integrity_check "
                   "ok every time", loops, seed, elapsed, counts["acked"], counts["unacked"],
                   counts["unacked_committed"], counts["inflight"], model.seq,
                   len(model.items))
            self.assertGreater(counts["acked"], loops * 5)


# ---------------------------------------------------------------------------
# 8. Storage faults
# ---------------------------------------------------------------------------


class StorageFaultTests(HardeningBase):

    async def test_db_size_cap_no_false_ack(self):
        async with Server("--max-db-size", "1") as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Full room")
            room_b, tokens_b = await self.make_room(srv, "Bystander room")
            W = await self.joined_ex(srv, room, "Wil", token=tokens["member"], label="W")
            R = await self.joined_ex(srv, room, "Rex", token=tokens["observer"], label="R")
            B = await self.joined_ex(srv, room_b, "Bea", token=tokens_b["member"], label="B")
            await B.expect_ok("item.add", item={"title": "bystander"})
            acked, failed, unanswered = [], [], []
            err = None
            k = 0
            while err is None and k < 400 and not W.closed:
                batch = []
                for _ in range(4):
                    title = "fill %d" % k
                    k += 1
                    batch.append((title, W.send_request(
                        "item.add", item={"title": title, "notes": "n" * 10000,
                                          "acceptance": ["a" * 1000] * 20})))
                await asyncio.wait([f for _, f in batch], timeout=15)
                last_batch = []
                for title, f in batch:
                    if not f.done() or f.cancelled() or f.exception() is not None:
                        unanswered.append(title)
                        last_batch.append("none")
                        continue
                    r = f.result()
                    last_batch.append(r.get("code") or r.get("t"))
                    if r.get("t") == "ok":
                        acked.append((title, r))
                    else:
                        self.assertEqual(r.get("code"), "internal", summarize(r))
                        failed.append(title)
                        err = err or r
            report("db size cap: %d items acknowledged, %d refused with internal, %d "
                   "unanswered (connection closed); last batch: %s", len(acked), len(failed),
                   len(unanswered), " ".join(last_batch))
            self.assertIsNotNone(err, "an `err internal` arrives once the 1 MiB cap is reached "
                                 "(%d items of ~30 KB were acknowledged)" % len(acked))
            self.assertSentence(err.get("msg"), "err internal")
            self.assertEqual(await W.wait_closed(5), 1011, "the author's connection: 1011")
            self.assertEqual(await R.wait_closed(5), 1011, "the room's other connection: 1011")
            await asyncio.sleep(0.3)
            self.assertFalse(B.closed, "another room's connection stays open")
            self.assertHealthy(srv)
            seen_titles = {e["item"]["title"] for c in (W, R) for e in c.seen_events()
                           if e["t"] == "item.added"}
            for t in failed:
                self.assertNotIn(t, seen_titles, "no event for a change that got internal")
            last_seen = max([e["seq"] for e in R.seen_events()] + [R.join_ok["seq"]])

            # rejoin (no restart): the state as last committed
            W2 = await self.connect(srv, "W2")
            ok = await join_ex(W2, room, "Wil", pid=W.join_ok["pid"], secret=W.join_ok["secret"],
                               since=last_seen, epoch=W.join_ok["epoch"])
            self.assertEqual(ok["seq"], last_seen, "no event beyond the last one broadcast")
            snap_live = await self.probe(srv, room, R.join_ok, "Rex")
            titles_live = {i["title"] for i in snap_live["items"]}

            # restart: what was acknowledged is there, what was refused is not
            await W2.close()
            await B.close()
            code = await srv.astop()
            self.assertEqual(code, 0, "exit code on SIGTERM with a full database")
            srv.start()
            snap = await self.probe(srv, room, R.join_ok, "Rex")
            titles = {i["title"] for i in snap["items"]}
            missing = [t for t, _ in acked if t not in titles]
            self.assertEqual(missing, [], "acknowledged changes absent after restart (false "
                             "acknowledgement)")
            self.assertEqual([t for t in failed if t in titles], [],
                             "a change answered internal was kept")
            self.assertEqual(titles, titles_live, "the rejoin showed the committed state")
            self.assertEqual(snap["seq"], last_seen)
            report("db size cap: after restart %d items present (of %d acknowledged; %d "
                   "unanswered of which %d present); db file %d KiB", len(titles), len(acked),
                   len(unanswered), len([t for t in unanswered if t in titles]),
                   os.path.getsize(srv.db) // 1024)

    async def test_locked_database(self):
        async with Server() as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Locked room")
            room_b, tokens_b = await self.make_room(srv, "Reading room")
            A1 = await self.joined_ex(srv, room, "Ann", token=tokens["member"], label="A1")
            A2 = await self.joined_ex(srv, room, "Abe", token=tokens["observer"], label="A2")
            B1 = await self.joined_ex(srv, room_b, "Bob", token=tokens_b["member"], label="B1")
            ia = (await A1.expect_ok("item.add", item={"title": "before lock"}))["item"]
            await B1.expect_ok("item.add", item={"title": "b item"})
            seq_a = (await A1.expect_ok("item.update", item=ia, set={"value": 1}))["seq"]

            lock = sqlite3.connect(srv.db, timeout=10, isolation_level=None)
            Bj = await self.connect(srv, "Bj")
            answered = {}

            def stamp(name):
                return lambda f: answered.setdefault(name, time.monotonic())

            try:
                lock.execute("BEGIN EXCLUSIVE")
                t_lock = time.monotonic()
                fut = A1.send_request("item.update", item=ia, set={"title": "during lock"})
                fut.add_done_callback(stamp("change"))
                await asyncio.sleep(0.2)
                # reads of another room go on: a rejoin (pid + secret, same name: nothing to
                # write), a request answered from memory (forbidden), healthz
                t_b = time.monotonic()
                jfut = Bj.send_request("join", room=room_b, name="Bob", pid=B1.join_ok["pid"],
                                       secret=B1.join_ok["secret"])
                jfut.add_done_callback(stamp("join"))
                bfut = B1.send_request("timer.stop")
                bfut.add_done_callback(stamp("forbidden"))
                t0 = time.monotonic()
                hz = (await asyncio.to_thread(http_get, srv.port, "/healthz", 3))[0]
                hz_s = time.monotonic() - t0
                r = await asyncio.wait_for(fut, 15)
                err_s = answered["change"] - t_lock
                await asyncio.wait([jfut, bfut], timeout=5)
                jr = jfut.result() if jfut.done() and jfut.exception() is None else None
                br = bfut.result() if bfut.done() and bfut.exception() is None else None
                join_s = answered["join"] - t_b if "join" in answered else None
                forb_s = answered["forbidden"] - t_b if "forbidden" in answered else None
                joined_anyway = None
                if jr is not None and jr.get("t") != "ok":
                    probe = await Bj.request("timer.stop")
                    joined_anyway = probe.get("code") != "not_joined"
                def what(reply, secs):
                    if reply is None:
                        return "no reply within %.1f s" % (time.monotonic() - t_b)
                    return "%s after %.0f ms" % (reply.get("code") or reply.get("t"), ms(secs))

                report("locked db: the change got %s after %.2f s; meanwhile, in another room, "
                       "a rejoin got %s (connection joined anyway: %s) and a forbidden request "
                       "got %s; healthz %s in %.0f ms", r.get("code") or r.get("t"), err_s,
                       what(jr, join_s), joined_anyway, what(br, forb_s), hz, ms(hz_s))
                self.assertEqual((r.get("t"), r.get("code")), ("err", "internal"),
                                 "a change while another process holds the lock: %s"
                                 % summarize(r))
                self.assertSentence(r.get("msg"), "err internal")
                self.assertGreaterEqual(err_s, 1.5, "the writer waits (2 s) for the lock")
                self.assertEqual(hz, 200)
                self.assertEqual(await A1.wait_closed(5), 1011)
                self.assertEqual(await A2.wait_closed(5), 1011)
                self.assertFalse([e for e in A1.seen_events() + A2.seen_events()
                                  if e["seq"] > seq_a], "no event of the refused change")
                self.assertIsNotNone(jr, "the other room's rejoin is answered")
                self.assertEqual(jr.get("t"), "ok", "another room's rejoin (which writes "
                                 "nothing) succeeds while the lock is held: %s" % summarize(jr))
                self.assertIsNotNone(br, "a request in another room is answered (exactly one "
                                     "reply per request)")
                self.assertEqual(br.get("code"), "forbidden", summarize(br))
                self.assertFalse(B1.closed or Bj.closed, "the other room carries on")
                rest = 4.0 - (time.monotonic() - t_lock)
                if rest > 0:
                    await asyncio.sleep(rest)
            finally:
                if lock.in_transaction:
                    lock.rollback()
                lock.close()
            # recovery without a restart
            A3 = await self.connect(srv, "A3")
            ok = await join_ex(A3, room, "Ann", pid=A1.join_ok["pid"],
                               secret=A1.join_ok["secret"], since=seq_a,
                               epoch=A1.join_ok["epoch"])
            self.assertEqual(ok["seq"], seq_a, "the refused change left no event")
            snap = await self.probe(srv, room, A2.join_ok, "Abe")
            self.assertEqual([i["title"] for i in snap["items"]], ["before lock"])
            r = await A3.expect_ok("item.update", item=ia, set={"title": "after lock"})
            self.assertEqual(r["seq"], seq_a + 1)
            await B1.expect_ok("item.add", item={"title": "b after"})
            self.assertHealthy(srv)
            # "Other rooms carry on", "No database wait ever blocks the event loop": what another
            # room asks, needing no write, is answered at once, not after the locked write of
            # an unrelated room has given up (2 s)
            self.assertLess(join_s, 1.0, "another room's rejoin was answered only after %.0f ms "
                            "(when the locked room's write gave up)" % ms(join_s))
            self.assertLess(forb_s, 1.0, "another room's request (forbidden) was answered only "
                            "after %.0f ms" % ms(forb_s))


# ---------------------------------------------------------------------------
# 9. Limits
# ---------------------------------------------------------------------------


class LimitTests(HardeningBase):

    async def test_max_conns_per_ip(self):
        async with Server("--max-conns-per-ip", "3") as srv:
            self.server = srv
            cs = [await self.connect(srv, "c%d" % i) for i in range(3)]
            st, _, head = raw_http(srv.port, ws_handshake_request(srv.port))
            self.assertEqual(st, 429, "the 4th WebSocket from one address:\n" + head)
            with self.assertRaises((websockets.exceptions.InvalidStatusCode,
                                    websockets.exceptions.InvalidMessage)) as cm:
                await websockets.connect(srv.ws_url, subprotocols=[SUBPROTOCOL], open_timeout=5)
            if isinstance(cm.exception, websockets.exceptions.InvalidStatusCode):
                self.assertEqual(cm.exception.status_code, 429)
            self.assertHealthy(srv)                 # plain HTTP is not counted
            r = await cs[0].expect_ok("room.create", name="still served")
            await cs[2].close()
            deadline = time.monotonic() + 5
            while True:
                st, _, head = raw_http(srv.port, ws_handshake_request(srv.port))
                if st == 101 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            self.assertEqual(st, 101, "after one closes a new one is accepted:\n" + head)
            # that raw one closes at once; wait until a real client fits again
            deadline = time.monotonic() + 5
            c = None
            while c is None:
                try:
                    c = await self.connect(srv, "again")
                except (websockets.exceptions.InvalidStatusCode,
                        websockets.exceptions.InvalidMessage):
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.05)
            await join_ex(c, r["room"], "Zed", token=r["tokens"]["member"])

    async def test_max_participants(self):
        async with Server("--max-participants", "2") as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Small room")
            F = await self.joined_ex(srv, room, "Fay", token=tokens["facilitator"], label="F")
            M = await self.joined_ex(srv, room, "Max", token=tokens["member"], label="M")
            c = await self.connect(srv, "third")
            r = await c.expect_err("room_full", "join", room=room, token=tokens["observer"],
                                   name="Third")
            self.assertSentence(r["msg"], "room_full")
            r = await c.request("join", room=room, token="A" * 22, name="Forger")
            self.assertEqual(r.get("code"), "auth_failed", "a wrong token is auth_failed, full "
                             "or not")
            # rejoin of existing participants: never refused (a second tab, a rename, after close)
            M2 = await self.joined_ex(srv, room, "Max", pid=M.join_ok["pid"],
                                      secret=M.join_ok["secret"], label="M2")
            await M.close()
            M3 = await self.joined_ex(srv, room, "Maximilian", pid=M.join_ok["pid"],
                                      secret=M.join_ok["secret"], label="M3")
            self.assertEqual(M3.join_ok["pid"], M.join_ok["pid"])
            self.assertEqual(M3.join_ok["role"], "member")
            await M2.close()
            await M3.close()
            r = await c.request("join", room=room, token=tokens["member"], name="Fourth")
            self.assertEqual(r.get("code"), "room_full", "participants count, not connections")
            await F.expect_ok("item.add", item={"title": "fine"})

    async def test_max_rooms_also_after_restart(self):
        async with Server("--max-rooms", "2") as srv:
            self.server = srv
            c = await self.connect(srv, "c")
            r1 = await c.expect_ok("room.create", name="one")
            await c.expect_ok("room.create", name="two")
            e = await c.expect_err("too_large", "room.create", name="three")
            self.assertSentence(e["msg"], "too_large")
            await c.close()
            code = await srv.astop()
            self.assertEqual(code, 0)
            srv.start()
            c2 = await self.connect(srv, "c2")
            await c2.expect_err("too_large", "room.create", name="three after restart")
            ok = await join_ex(c2, r1["room"], "Ana", token=r1["tokens"]["member"])
            self.assertEqual(ok["role"], "member")


# ---------------------------------------------------------------------------
# 10. Token rotation
# ---------------------------------------------------------------------------


class TokenRotationTests(HardeningBase):

    async def test_token_rotate(self):
        async with Server() as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Rotation room")
            F = await self.joined_ex(srv, room, "Fay", token=tokens["facilitator"], label="F")
            M = await self.joined_ex(srv, room, "Max", token=tokens["member"], label="M")
            O = await self.joined_ex(srv, room, "Olga", token=tokens["owner"], label="O")
            W = await self.joined_ex(srv, room, "Wes", token=tokens["observer"], label="W")
            for who in (M, O, W):
                await who.expect_err("forbidden", "token.rotate", role="member")
            ok = await F.expect_ok("token.rotate", role="member")
            new = ok.get("token")
            self.assertIsInstance(new, str)
            self.assertRegex(new, TOKEN_RE, "a new 22-character token")
            self.assertNotEqual(new, tokens["member"])
            self.assertIsInstance(ok.get("seq"), int)
            for c in (F, M, O, W):
                ev = await c.next_message("token.rotated")
                self.assertEqual(ev["seq"], ok["seq"])
                self.assertEqual(ev["role"], "member")
                self.assertEqual(ev["by"], F.join_ok["pid"])
                self.assertEqual(set(ev) - {"t", "seq", "at", "by", "role"}, set(),
                                 "token.rotated carries no token: %s" % summarize(ev))
            for c in (M, O, W):
                self.assertNotIn(new.encode(), b"".join(f for f in c.raw_frames
                                                         if isinstance(f, bytes)),
                                 "%s never sees the new token" % c.label)
            x = await self.connect(srv, "old")
            await x.expect_err("auth_failed", "join", room=room, token=tokens["member"],
                               name="Late")
            n = await self.joined_ex(srv, room, "Nia", token=new, label="N")
            self.assertEqual(n.join_ok["role"], "member")
            # the member already in stays, works, and can rejoin with pid + secret
            self.assertFalse(M.closed)
            await M.expect_ok("item.add", item={"title": "still here"})
            M2 = await self.joined_ex(srv, room, "Max", pid=M.join_ok["pid"],
                                      secret=M.join_ok["secret"], label="M2")
            self.assertEqual(M2.join_ok["role"], "member")
            # other roles' tokens untouched
            o2 = await self.joined_ex(srv, room, "Oren", token=tokens["owner"], label="O2")
            self.assertEqual(o2.join_ok["role"], "owner")
            # rotating the facilitator's own token, then a restart: the rotation is durable
            okf = await F.expect_ok("token.rotate", role="facilitator")
            code = await srv.astop()
            self.assertEqual(code, 0)
            srv.start()
            y = await self.connect(srv, "y")
            await y.expect_err("auth_failed", "join", room=room, token=tokens["member"],
                               name="Old link")
            await y.expect_err("auth_failed", "join", room=room, token=tokens["facilitator"],
                               name="Old link")
            await join_ex(y, room, "New link", token=new)
            z = await self.joined_ex(srv, room, "Fiona", token=okf["token"], label="Z")
            self.assertEqual(z.join_ok["role"], "facilitator")


# ---------------------------------------------------------------------------
# 11. Resume epochs and a restore from a backup
# ---------------------------------------------------------------------------


class EpochTests(HardeningBase):

    async def adds(self, client, n, prefix):
        oks = await pipeline(client, [("item.add", {"item": {"title": "%s %d" % (prefix, k)}})
                                      for k in range(n)], 10)
        for r in oks:
            self.assertEqual(r.get("t"), "ok", summarize(r))
        return oks

    async def test_epoch_reasons(self):
        async with Server("--replay-events", "8") as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Epoch room")
            B = await self.joined_ex(srv, room, "Ben", token=tokens["member"], label="B")
            A = await self.connect(srv, "A")
            aok = await join_ex(A, room, "Ana", token=tokens["member"])
            epoch = aok.get("epoch")
            self.assertIsInstance(epoch, str)
            self.assertTrue(1 <= len(epoch) <= 64, "epoch: 1..64 bytes: %r" % epoch)
            self.assertEqual(A.snapshot["room"].get("epoch"), epoch, "the snapshot's room "
                             "carries the epoch")
            self.assertEqual(B.join_ok.get("epoch"), epoch)
            await self.adds(B, 3, "first")
            await A.catch_up(3)
            await A.close()
            await self.adds(B, 3, "second")
            await B.catch_up(6)
            live = [e for e in B.seen_events() if e["seq"] > 3]

            async def rejoin(since, ep, label):
                c = await self.connect(srv, label)
                ok = await join_ex(c, room, "Ana", pid=aok["pid"], secret=aok["secret"],
                                   since=since, epoch=ep)
                return c, ok

            c, ok = await rejoin(3, epoch, "same-epoch")
            self.assertEqual((ok["mode"], ok.get("reason")), ("replay", None), summarize(ok))
            self.assertEqual(ok["epoch"], epoch)
            self.assertEqual(await c.events_until(6), live)
            c, ok = await rejoin(3, "another-epoch", "other-epoch")
            self.assertEqual((ok["mode"], ok.get("reason")), ("snapshot", "epoch"), summarize(ok))
            self.assertEqual(ok["epoch"], epoch)
            self.assertEqual(c.snapshot["seq"], 6)
            self.assertEqual(RoomState(c.snapshot).comparable(False), B.state.comparable(False))
            c, ok = await rejoin(6 + 5, epoch, "ahead")
            self.assertEqual((ok["mode"], ok.get("reason")), ("snapshot", "ahead"), summarize(ok))
            await self.adds(B, 10, "third")                       # seq 16, window 8
            await B.catch_up(16)
            c, ok = await rejoin(3, epoch, "too-old")
            self.assertEqual((ok["mode"], ok.get("reason")), ("snapshot", "too_old"),
                             summarize(ok))
            self.assertEqual(RoomState(c.snapshot).comparable(False), B.state.comparable(False))
            c, ok = await rejoin(8, epoch, "in-window")
            self.assertEqual((ok["mode"], ok.get("reason")), ("replay", None), summarize(ok))
            self.assertEqual([e["seq"] for e in await c.events_until(16)], list(range(9, 17)))
            c, ok = await rejoin(None, None, "no-since")
            self.assertEqual(ok["mode"], "snapshot")
            self.assertNotIn("reason", ok, "no since: no reason")

    async def test_restore_from_backup_changes_epoch(self):
        async with Server() as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Restored room")
            room2, tokens2 = await self.make_room(srv, "Second room")
            W = await self.joined_ex(srv, room, "Wil", token=tokens["member"], label="W")
            R = await self.connect(srv, "R")
            rok = await join_ex(R, room, "Rex", token=tokens["observer"])
            Q = await self.connect(srv, "Q")
            qok = await join_ex(Q, room2, "Quin", token=tokens2["member"])
            epoch_old, epoch2_old = rok["epoch"], qok["epoch"]
            await self.adds(W, 5, "kept")
            await Q.expect_ok("item.add", item={"title": "room2 kept"})
            await R.catch_up(5)
            restored = comparable_no_epoch(R.state)
            backup = os.path.join(srv.tmpdir, "backup.db")
            src = sqlite3.connect(srv.db, timeout=10)
            dst = sqlite3.connect(backup)
            try:
                src.backup(dst)
            finally:
                dst.close()
                src.close()
            await self.adds(W, 6, "lost")
            await R.catch_up(11)
            since_old = R.state.seq
            self.assertEqual(since_old, 11)
            code = await srv.astop()
            self.assertEqual(code, 0)
            for suffix in ("-wal", "-shm"):
                if os.path.exists(srv.db + suffix):
                    os.unlink(srv.db + suffix)
            shutil.copyfile(backup, srv.db)
            srv.start()

            R2 = await self.connect(srv, "R2")
            ok = await join_ex(R2, room, "Rex", pid=rok["pid"], secret=rok["secret"],
                               since=since_old, epoch=epoch_old)
            report("restore: epoch before %r, after restoring the backup %r; rejoin (since %d, "
                   "old epoch) -> mode %s, reason %s, seq %s", epoch_old, ok.get("epoch"),
                   since_old, ok.get("mode"), ok.get("reason"), ok.get("seq"))
            self.assertNotEqual(ok["epoch"], epoch_old, "restoring a backup changes the room's "
                                "epoch")
            self.assertEqual((ok["mode"], ok.get("reason")), ("snapshot", "epoch"),
                             summarize(ok))
            self.assertEqual(ok["seq"], 5)
            self.assertEqual(comparable_no_epoch(R2.snapshot), restored,
                             "the snapshot is the restored state")
            epoch_new = ok["epoch"]
            # a since inside the restored history must not be replayed across epochs either
            R3 = await self.connect(srv, "R3")
            ok3 = await join_ex(R3, room, "Rex", pid=rok["pid"], secret=rok["secret"], since=3,
                                epoch=epoch_old)
            self.assertEqual((ok3["mode"], ok3.get("reason")), ("snapshot", "epoch"))
            # every room's epoch changed
            Q2 = await self.connect(srv, "Q2")
            okq = await join_ex(Q2, room2, "Quin", pid=qok["pid"], secret=qok["secret"], since=1,
                                epoch=epoch2_old)
            self.assertNotEqual(okq["epoch"], epoch2_old)
            self.assertEqual(okq.get("reason"), "epoch")
            # new history: seq 6.. again; a client of the old history with since 8 (between the
            # restored seq and the new one) must get a snapshot, never a spliced replay
            W2 = await self.joined_ex(srv, room, "Wil", pid=W.join_ok["pid"],
                                      secret=W.join_ok["secret"], label="W2")
            oks = await self.adds(W2, 5, "new")
            self.assertEqual([r["seq"] for r in oks], [6, 7, 8, 9, 10])
            R4 = await self.connect(srv, "R4")
            ok4 = await join_ex(R4, room, "Rex", pid=rok["pid"], secret=rok["secret"], since=8,
                                epoch=epoch_old)
            self.assertEqual((ok4["mode"], ok4.get("reason")), ("snapshot", "epoch"),
                             "old history since 8 with the new history at 10: %s"
                             % summarize(ok4))
            # within the new epoch, replay works; a plain restart keeps the new epoch
            R5 = await self.connect(srv, "R5")
            ok5 = await join_ex(R5, room, "Rex", pid=rok["pid"], secret=rok["secret"], since=7,
                                epoch=epoch_new)
            self.assertEqual(ok5["mode"], "replay")
            self.assertEqual([e["seq"] for e in await R5.events_until(10)], [8, 9, 10])
            code = await srv.astop()
            self.assertEqual(code, 0)
            srv.start()
            R6 = await self.connect(srv, "R6")
            ok6 = await join_ex(R6, room, "Rex", pid=rok["pid"], secret=rok["secret"], since=10,
                                epoch=epoch_new)
            self.assertEqual(ok6["epoch"], epoch_new, "a plain restart keeps the epoch")
            self.assertEqual(ok6["mode"], "replay")


# ---------------------------------------------------------------------------
# 12. Idle connections
# ---------------------------------------------------------------------------


class IdleTests(HardeningBase):

    async def test_silent_peer_dropped_within_30s(self):
        async with Server() as srv:
            self.server = srv
            room, tokens = await self.make_room(srv, "Idle room")
            A = await self.joined_ex(srv, room, "Ana", token=tokens["member"], label="A")
            g = raw_ws(srv.port)
            g.send_msg({"t": "join", "id": 1, "room": room, "token": tokens["observer"],
                        "name": "Ghost"})
            t0 = time.monotonic()
            ok = g.recv_msg()
            self.assertEqual(ok.get("t"), "ok", ok)
            gpid = ok["pid"]
            await A.next_message("participant.joined", pred=lambda m: m.get("pid") == gpid)
            # the ghost never reads again and never answers a ping; A is silent but alive
            left = await A.next_message("participant.left", timeout=40,
                                        pred=lambda m: m.get("pid") == gpid)
            dt = time.monotonic() - t0
            frames, code, how = await asyncio.to_thread(drain_frames, g, 2.0)
            g.close()
            pings = sum(1 for op, _ in frames if op == 9)
            report("idle: a peer that never answers pings was shown offline after %.1f s (%d "
                   "ping frames sent to it; its socket: %s, close code %s)", dt, pings, how, code)
            self.assertLessEqual(dt, 31.0, "a vanished participant is shown offline within 30 s")
            self.assertGreaterEqual(dt, 20.0, "not dropped before 25 s of silence")
            self.assertGreaterEqual(pings, 1, "the server pinged the silent connection")
            self.assertIsInstance(left.get("at"), int)
            self.assertFalse(A.closed, "a silent client that answers pings is kept")
            await A.expect_ok("item.add", item={"title": "still connected"})


# ---------------------------------------------------------------------------
# 13. TLS
# ---------------------------------------------------------------------------


class TlsTests(HardeningBase):

    async def test_wss_only(self):
        openssl = shutil.which("openssl")
        if not openssl:
            self.skipTest("the openssl command-line tool is not installed: cannot make a "
                          "self-signed certificate")
        certdir = tempfile.mkdtemp(prefix="refine-tls-")
        try:
            cert, key = os.path.join(certdir, "cert.pem"), os.path.join(certdir, "key.pem")
            r = subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                                "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
                                "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1"],
                               capture_output=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stderr.decode(errors="replace"))
            async with TlsServer(cert, key) as srv:
                self.server = srv
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                c = await Client.connect(srv.ws_url, label="wss", ssl=ctx)
                self._clients.append(c)
                created = await c.expect_ok("room.create", name="Over TLS")
                self.assertRegex(created["tokens"]["member"], TOKEN_RE)
                c2 = await Client.connect(srv.ws_url, label="wss2", ssl=ctx)
                self._clients.append(c2)
                ok = await join_ex(c2, created["room"], "Tess",
                                   token=created["tokens"]["facilitator"])
                self.assertEqual(ok["role"], "facilitator")
                await c2.expect_ok("item.add", item={"title": "encrypted"})
                status, body = await asyncio.to_thread(https_get, srv.port, "/healthz")
                self.assertEqual(status, 200)
                # plain ws:// and http:// on the same port do not work
                plain_ok = False
                try:
                    ws = await asyncio.wait_for(websockets.connect(
                        "ws://127.0.0.1:%d/ws" % srv.port, subprotocols=[SUBPROTOCOL],
                        open_timeout=5), 10)
                    plain_ok = True
                    await ws.close()
                except (OSError, asyncio.TimeoutError, websockets.exceptions.WebSocketException,
                        EOFError):
                    pass
                self.assertFalse(plain_ok, "a plain ws:// handshake must fail on a TLS port")
                try:
                    st = (await asyncio.to_thread(http_get, srv.port, "/healthz", 5))[0]
                except (OSError, http.client.HTTPException):
                    st = None
                self.assertNotEqual(st, 200, "plain http is not served on a TLS port")
                await c2.expect_ok("item.add", item={"title": "still fine"})
        finally:
            shutil.rmtree(certdir, ignore_errors=True)


if __name__ == "__main__":
    unittest.main(verbosity=2)
