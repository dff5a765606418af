#!/usr/bin/python3
"""Scale-out (issue 13): Debian's haproxy with the repository's deploy/haproxy.cfg in front of
three instances a, b and c (support/cluster.py), then, in this order:

  1. `haproxy -c` passes on the repository's file;
  2. 60 rooms created through the balancer (room.create on /ws): every instance is home to some
     (ids `a.`, `b.`, `c.`); each room's /r/<id>/ws join and its export reach its home;
  3. a short meeting in 30 rooms at once through the balancer (a facilitator, an owner and a
     member each: joins, item.add, item.move, a poker round): every client's seq without gaps,
     one order per room;
  4. a join sent to the wrong instance directly is refused wrong_instance naming the home (and
     the HTTP export 421); a join over a room URL for another room is bad_request;
  5. /metrics on each instance parses as Prometheus text and its changes counter moves with the
     load; through the balancer it is 403;
  6. kill -9 of instance c: its rooms' clients are disconnected, their rejoins fail with
     HAProxy's 503 (JSON body, Retry-After) while it is down, the other rooms carry on; after
     the restart (same database, same name) they resume with `since` and nothing acknowledged
     is missing;
  7. drain (`set server any/a state drain` on the runtime socket): new rooms go to b and c only,
     a's rooms keep working through the balancer.

Skipped only when haproxy is not installed (scripts/install-deps test installs it).
"""

import asyncio
import json
import os
import re
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AsyncTestCase, Client, create_room, http_get, join  # noqa: E402
from support.cluster import Cluster, haproxy_binary  # noqa: E402

import websockets.exceptions  # noqa: E402

NAMES = ("a", "b", "c")
ROOM_ID_RE = re.compile(r"^([a-z][a-z0-9]{0,15})\.[A-Za-z0-9_-]{22}$")


def home_of(room):
    m = ROOM_ID_RE.match(room)
    return m.group(1) if m else None


def parse_prometheus(text):
    """Prometheus text format 0.0.4: {(name, labels-string): value}; raises on a bad line."""
    samples = {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*"'
                         r'(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\]|\\.)*")*,?)?\})?'
                         r' ([-+]?(?:[0-9.]+(?:[eE][-+]?[0-9]+)?|NaN|\+Inf|-Inf))( -?[0-9]+)?$')
    types = {}
    for n, line in enumerate(text.split("\n"), 1):
        if not line:
            continue
        if line.startswith("#"):
            parts = line.split(None, 3)
            if len(parts) >= 3 and parts[1] == "TYPE":
                if len(parts) < 4 or parts[3] not in ("counter", "gauge", "histogram",
                                                      "summary", "untyped"):
                    raise AssertionError("line %d: bad TYPE line %r" % (n, line))
                types[parts[2]] = parts[3]
            continue
        m = line_re.match(line)
        if not m:
            raise AssertionError("line %d is not Prometheus text: %r" % (n, line))
        samples[(m.group(1), m.group(2) or "")] = float(m.group(3))
    if not text.endswith("\n"):
        raise AssertionError("the exposition does not end with a newline")
    return samples, types


class ScaleTest(AsyncTestCase):
    cluster = None
    rooms = []            # [(room id, tokens)] made by test_2 (or the first test that needs them)

    @classmethod
    def setUpClass(cls):
        if haproxy_binary() is None:
            raise unittest.SkipTest("haproxy is not installed (scripts/install-deps test "
                                    "installs Debian's package)")
        cls.cluster = Cluster(NAMES)
        cls.cluster.__enter__()
        cls.failed = False

    @classmethod
    def tearDownClass(cls):
        if cls.cluster is not None:
            cls.cluster.stop(failed=cls.failed)

    def run(self, result=None):
        before = len(result.failures) + len(result.errors) if result is not None else 0
        out = super().run(result)
        if result is not None and len(result.failures) + len(result.errors) > before:
            type(self).failed = True
        return out

    # -- helpers ---------------------------------------------------------------
    async def lb_connect(self, room=None, label=None):
        c = await Client.connect(self.cluster.ws_url(room), label=label)
        self._clients.append(c)
        return c

    async def lb_join(self, room, token, name, **kw):
        c = await self.lb_connect(room, label="%s@%s" % (name, room[:8]))
        await join(c, room, token, name, **kw)
        return c

    async def make_rooms(self, n, prefix="Room"):
        """n rooms created through the balancer, 10 at a time (each on a socket of its own)."""
        out = []
        for start in range(0, n, 10):
            conns = [await self.lb_connect(label="creator") for _ in range(min(10, n - start))]
            made = await asyncio.gather(*(create_room(c, "%s %d" % (prefix, start + i))
                                          for i, c in enumerate(conns)))
            for c in conns:
                await c.close()
                self._clients.remove(c)
                self.assertNoViolations(c)
            out.extend(made)
        return out

    async def the_rooms(self):
        if not type(self).rooms:
            type(self).rooms = await self.make_rooms(60)
        return type(self).rooms

    def rooms_of(self, name):
        return [(r, t) for r, t in type(self).rooms if home_of(r) == name]

    def export(self, port, room, token):
        return http_get(port, "/api/rooms/%s/export" % room,
                        headers={"Authorization": "Bearer %s" % token})

    # -- 1 ----------------------------------------------------------------------
    def test_1_config_check(self):
        code, out = self.cluster.lb.check()
        self.assertEqual(code, 0, "haproxy -c -f deploy/haproxy.cfg failed:\n" + out)
        self.assertIn("Configuration file is valid", out)

    # -- 2 ----------------------------------------------------------------------
    async def test_2_rooms_at_home(self):
        rooms = await self.the_rooms()
        self.assertEqual(len(rooms), 60)
        homes = {}
        for room, _ in rooms:
            self.assertIsNotNone(home_of(room), "room id %r is not <instance>.<token>" % room)
            homes.setdefault(home_of(room), 0)
            homes[home_of(room)] += 1
        self.assertEqual(sorted(homes), list(NAMES),
                         "every instance is home to some of the 60 rooms: %s" % homes)

        async def check(room, tokens):
            c = await self.lb_join(room, tokens["facilitator"], "Fac")
            self.assertEqual(c.snapshot["room"]["id"], room)
            await c.close()
            self._clients.remove(c)
            self.assertNoViolations(c)
        for i in range(0, len(rooms), 15):
            await asyncio.gather(*(check(r, t) for r, t in rooms[i:i + 15]))

        for room, tokens in rooms:
            status, _, body = self.export(self.cluster.port, room, tokens["facilitator"])
            self.assertEqual(status, 200, "export of %s through the balancer: %s %r"
                             % (room, status, body[:200]))
            doc = json.loads(body)
            self.assertEqual(doc["room"]["id"] if isinstance(doc["room"], dict) else doc["room"],
                             room)
            # The room is at home there and nowhere else: its home exports it, the others
            # refuse (wrong_instance), so the balancer's 200 came from the home.
            home = self.cluster.servers[home_of(room)]
            status, _, _ = self.export(home.port, room, tokens["facilitator"])
            self.assertEqual(status, 200, "export of %s on its home directly" % room)

    # -- 3 ----------------------------------------------------------------------
    async def meeting(self, room, tokens):
        """Facilitator F, owner O and member M through the balancer: items added and moved, a
        poker round started, voted, revealed and accepted. Returns the three clients and the
        last acknowledged seq."""
        F = await self.lb_join(room, tokens["facilitator"], "Fran")
        O = await self.lb_join(room, tokens["owner"], "Olu")
        M = await self.lb_join(room, tokens["member"], "Mia")
        items = []
        for c, title in ((F, "Login"), (M, "Search"), (O, "Export"), (M, "Dark mode")):
            ok = await c.expect_ok("item.add", item={"title": title})
            items.append(ok["item"])
        await O.expect_ok("item.move", item=items[3], after=None)
        await F.expect_ok("item.move", item=items[0], after=items[2])
        ok = await F.expect_ok("round.start", item=items[1])
        ev = await F.next_message("round.started", pred=lambda m: m["seq"] == ok["seq"])
        rid = ev["round"]
        await O.expect_ok("vote", round=rid, card="3")
        await M.expect_ok("vote", round=rid, card="5")
        await F.expect_ok("round.reveal", round=rid)
        last = await F.expect_ok("round.accept", round=rid, estimate="5")
        return (F, O, M), last["seq"]

    async def test_3_meetings_in_30_rooms(self):
        rooms = (await self.the_rooms())[:30]
        results = await asyncio.gather(*(self.meeting(r, t) for r, t in rooms))
        for (room, _), (clients, last) in zip(rooms, results):
            orders = []
            for c in clients:
                await c.events_until(last, timeout=15)
                self.assertNoViolations(c)      # seq contiguous, replies in order, ...
                evs = {m["seq"]: (m["t"], m.get("item"), m.get("by")) for m in c.seen_events()}
                orders.append(evs)
            # Every seq two clients both saw is the same event for both: one order per room.
            for other in orders[1:]:
                for s in set(orders[0]) & set(other):
                    self.assertEqual(orders[0][s], other[s], "room %s seq %s differs" % (room, s))
            # The facilitator (joined first) saw every seq from its join to the last.
            seqs = sorted(orders[0])
            self.assertEqual(seqs, list(range(seqs[0], last + 1)), "room %s" % room)
            for c in clients:
                await c.close()

    # -- 4 ----------------------------------------------------------------------
    async def test_4_wrong_instance_refused(self):
        await self.the_rooms()
        room, tokens = self.rooms_of("a")[0]
        b = self.cluster.servers["b"]
        for path in ("/ws", "/r/%s/ws" % room):
            c = await Client.connect("ws://127.0.0.1:%d%s" % (b.port, path), label="direct-b")
            try:
                r = await c.request("join", room=room, token=tokens["member"], name="Lost")
            finally:
                await c.close()
            self.assertEqual(r.get("t"), "err", "join of an a-room on b over %s: %s" % (path, r))
            self.assertEqual(r.get("code"), "wrong_instance", r)
            self.assertEqual(r.get("home"), "a", r)
            self.assertIn("a", r.get("msg", ""))
        status, _, body = self.export(b.port, room, tokens["facilitator"])
        self.assertEqual(status, 421, "export of an a-room on b directly: %s %r" % (status, body))
        doc = json.loads(body)
        self.assertEqual((doc.get("code"), doc.get("home")), ("wrong_instance", "a"), doc)
        # b made nothing for it: the room is still unknown to b's database.
        status, _, _ = self.export(b.port, room, tokens["facilitator"])
        self.assertEqual(status, 421)

        # A join over a room's URL for another room: bad_request.
        other, otokens = self.rooms_of("a")[1]
        c = await self.lb_connect(room, label="wrong-url")
        r = await c.request("join", room=other, token=otokens["member"], name="X")
        self.assertEqual((r.get("t"), r.get("code")), ("err", "bad_request"), r)

    # -- 5 ----------------------------------------------------------------------
    def scrape(self, name):
        port = self.cluster.servers[name].port
        status, headers, body = http_get(port, "/metrics")
        ctype = headers.get("content-type", "")
        # Without /metrics the web client's page answers (200, text/html).
        self.assertTrue(status == 200 and ctype.startswith("text/plain"),
                        "GET /metrics on instance %s answered %s %s: is the /metrics work "
                        "(issue 13, METRICS) merged?" % (name, status, ctype))
        samples, types = parse_prometheus(body.decode("utf-8"))
        self.assertEqual(samples.get(("refine_instance_info", '{instance="%s"}' % name)), 1.0,
                         "refine_instance_info{instance=\"%s\"} 1 in /metrics" % name)
        return samples, types

    def changes_counter(self, samples, types):
        names = sorted(n for n, t in types.items() if t == "counter" and "change" in n)
        self.assertTrue(names, "no counter of changes in /metrics (types: %s)" % types)
        name = names[0]
        key = name if (name, "") in samples else name + "_total"
        return key, samples.get((key, ""), 0.0)

    async def test_5_metrics(self):
        await self.the_rooms()
        before = {}
        for n in NAMES:
            before[n] = self.changes_counter(*self.scrape(n))
        for n in NAMES:
            room, tokens = self.rooms_of(n)[-1]
            c = await self.lb_join(room, tokens["member"], "Metric")
            for i in range(5):
                await c.expect_ok("item.add", item={"title": "counted %d" % i})
        for n in NAMES:
            key, value = self.changes_counter(*self.scrape(n))
            self.assertEqual(key, before[n][0])
            self.assertGreaterEqual(value, before[n][1] + 5,
                                    "%s on %s did not move with 5 changes" % (key, n))
        status, _, _ = http_get(self.cluster.port, "/metrics")
        self.assertEqual(status, 403, "/metrics through the balancer")

    # -- 6 ----------------------------------------------------------------------
    async def test_6_kill9_one_instance(self):
        await self.the_rooms()
        lb = self.cluster.lb
        victim = "c"
        pairs = {}        # room -> (F, M, F's join ok, M's join ok, acknowledged item ids)
        for n in NAMES:
            for room, tokens in self.rooms_of(n)[1:3]:
                F = await self.lb_connect(room, "F@" + room[:8])
                okf = await join(F, room, tokens["facilitator"], "Fe")
                M = await self.lb_connect(room, "M@" + room[:8])
                okm = await join(M, room, tokens["member"], "Me")
                acked = []
                for i in range(3):
                    ok = await F.expect_ok("item.add", item={"title": "pre %d" % i})
                    acked.append(ok["item"])
                await M.events_until(ok["seq"])
                pairs[room] = [F, M, okf, okm, acked, tokens, ok["seq"]]
        victims = [r for r in pairs if home_of(r) == victim]
        others = [r for r in pairs if home_of(r) != victim]

        self.cluster.servers[victim].kill9()
        for room in victims:
            for c in pairs[room][:2]:
                await c.wait_closed(timeout=10)

        # While it is down: a rejoin's handshake gets HAProxy's 503, JSON body, Retry-After.
        lb.wait_server("home_" + victim, victim, "DOWN")
        for room in victims:
            with self.assertRaises(websockets.exceptions.InvalidStatusCode) as cm:
                await Client.connect(self.cluster.ws_url(room))
            self.assertEqual(cm.exception.status_code, 503)
            status, headers, body = http_get(self.cluster.port, "/r/%s/ws" % room, headers={
                "Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
                "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                "Sec-WebSocket-Protocol": "refine.v1"})
            self.assertEqual(status, 503)
            self.assertEqual(headers.get("retry-after"), "2", headers)
            self.assertTrue(headers.get("content-type", "").startswith("application/json"))
            doc = json.loads(body)
            self.assertEqual(doc.get("code"), "unavailable", doc)
            self.assertTrue(doc.get("msg"), doc)

        # Every other room carries on: changes acknowledged, no gap, no error.
        for room in others:
            F, M = pairs[room][:2]
            self.assertFalse(F.closed or M.closed, "a client of %s was disconnected" % room)
            for i in range(3):
                ok = await F.expect_ok("item.add", item={"title": "during %d" % i})
                pairs[room][4].append(ok["item"])
            await M.events_until(ok["seq"])
            self.assertNoViolations(F, M)

        # Restart (same database, same name): the victims' clients resume with `since`.
        self.cluster.servers[victim].restart()
        lb.wait_server("home_" + victim, victim, "UP")
        lb.wait_server("any", victim, "UP")
        for room in victims:
            F, M, okf, okm, acked, tokens, last = pairs[room]
            # F resumes from the last event it saw; M as if it had missed everything since its
            # join: the replay must hold every acknowledged change.
            seen = [m["seq"] for m in F.seen_events()]
            for ok, name, since in ((okf, "Fe", seen[-1]), (okm, "Me", okm["seq"])):
                c = await self.lb_connect(room, "re-" + name)
                r = await join(c, room, None, name, since=since, pid=ok["pid"],
                               secret=ok["secret"])
                self.assertEqual((r["pid"], r["mode"]), (ok["pid"], "replay"), r)
                self.assertGreaterEqual(r["seq"], last, "the restarted home lost acknowledged "
                                        "events of %s" % room)
                evs = await c.events_until(r["seq"]) if r["seq"] > since else []
                added = {e["item"]["id"] for e in evs if e["t"] == "item.added"}
                if since == okm["seq"]:
                    self.assertEqual([i for i in acked if i not in added], [],
                                     "acknowledged item.added of %s not replayed" % room)
                self.assertNoViolations(c)
            # Nothing acknowledged is missing: a fresh join's snapshot holds every item.
            fresh = await self.lb_join(room, tokens["member"], "Fresh")
            have = {it["id"] for it in fresh.snapshot["items"]}
            self.assertEqual([i for i in acked if i not in have], [],
                             "acknowledged items of %s missing after the restart" % room)

    # -- 7 ----------------------------------------------------------------------
    async def test_7_drain(self):
        await self.the_rooms()
        lb = self.cluster.lb
        for n in NAMES:
            lb.wait_server("any", n, "UP")
        self.assertEqual(lb.runtime("set server any/a state drain").strip(), "")
        try:
            self.assertTrue(lb.server_status("any", "a").startswith("DRAIN"))
            made = await self.make_rooms(12, "Drained")
            homes = sorted({home_of(r) for r, _ in made})
            self.assertEqual(homes, ["b", "c"], "rooms made while a drains: %s"
                             % [r for r, _ in made])
            # a's rooms still work through the balancer (backend home_a).
            room, tokens = self.rooms_of("a")[0]
            c = await self.lb_join(room, tokens["member"], "Still")
            await c.expect_ok("item.add", item={"title": "while draining"})
        finally:
            lb.runtime("set server any/a state ready")


if __name__ == "__main__":
    unittest.main(verbosity=2)
