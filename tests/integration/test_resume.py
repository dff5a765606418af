#!/usr/bin/python3
"""Reconnect and resume (PROTOCOL.md: join with `since`, replay window, restart)."""

import asyncio
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, Server, comparable_snapshot, create_room, is_event,  # noqa
                     join, pipeline)


class ResumeBase(AsyncTestCase):

    async def make_room(self, server):
        c = await self.connect(server, "creator")
        room, tokens = await create_room(c, "Resume room")
        await c.close()
        return room, tokens

    async def changes(self, client, n, prefix="chg"):
        """n acknowledged changes by `client` (adds and updates, pipelined); returns the oks."""
        oks = []
        if getattr(self, "_last_item", None) is None:
            r = await client.expect_ok("item.add", item={"title": "%s 0" % prefix})
            self._last_item = r["item"]
            oks.append(r)
        reqs = []
        for i in range(len(oks), n):
            if i % 3 == 2:
                reqs.append(("item.update", {"item": self._last_item,
                                             "set": {"title": "%s upd %d" % (prefix, i)}}))
            else:
                reqs.append(("item.add", {"item": {"title": "%s %d" % (prefix, i)}}))
        for r in await pipeline(client, reqs, 10):
            self.assertEqual(r["t"], "ok", r)
            oks.append(r)
        return oks

    def events_in(self, client):
        return [m for m in client.all if is_event(m)]

    async def rejoin(self, server, room, ok, name, since=None, label=None):
        c = await self.connect(server, label or ("re-" + name))
        r = await join(c, room, None, name, since=since, pid=ok["pid"], secret=ok["secret"])
        self.assertEqual(r["pid"], ok["pid"])
        return c, r


class ReplayTests(ResumeBase):

    async def test_replay_after_disconnect(self):
        async with Server() as srv:
            room, tokens = await self.make_room(srv)
            b = await self.joined(srv, room, tokens["member"], "Ben", label="B")
            a = await self.connect(srv, "A")
            oka = await join(a, room, tokens["member"], "Ana")
            await self.changes(b, 3, "pre")
            await a.catch_up(3)
            n = a.state.seq
            self.assertEqual(n, 3)
            await a.close()
            await b.next_message("participant.left")
            oks = await self.changes(b, 10, "while-away")
            self.assertEqual([r["seq"] for r in oks], list(range(n + 1, n + 11)))
            await b.catch_up(n + 10)
            expected_events = [e for e in self.events_in(b) if e["seq"] > n]
            self.assertEqual(len(expected_events), 10)

            a2, r = await self.rejoin(srv, room, oka, "Ana", since=n, label="A2")
            self.assertEqual(r["mode"], "replay")
            self.assertEqual(r["seq"], n + 10)
            self.assertEqual(r["role"], "member")
            self.assertEqual(r["name"], "Ana")
            self.assertIn("participants", r, "a replay ok carries the participant list")
            parts = {p["pid"]: p for p in r["participants"]}
            self.assertIn(b.pid, parts)
            self.assertIs(parts[b.pid]["online"], True)
            self.assertEqual(parts[b.pid]["role"], "member")
            self.assertEqual(parts[b.pid]["name"], "Ben")
            self.assertIn(oka["pid"], parts)
            self.assertIs(parts[oka["pid"]]["online"], True)
            got = await a2.events_until(n + 10)
            self.assertEqual([e["seq"] for e in got], list(range(n + 1, n + 11)))
            self.assertEqual(got, expected_events, "replayed events equal the live events")
            await asyncio.sleep(0.3)
            self.assertFalse([m for m in a2.all if m.get("t") == "snapshot"],
                             "no snapshot in replay mode")
            self.assertFalse([m for m in a2.inbox if is_event(m)], "nothing beyond seq %d" % (n + 10))
            # the live stream continues after the replay
            r2 = await b.expect_ok("item.add", item={"title": "live"})
            self.assertEqual(r2["seq"], n + 11)
            ev = await a2.next_event()
            self.assertEqual(ev["seq"], n + 11)
            # order on the wire: ok, then the 10 replayed events, then the live one
            seqmsgs = [(m["t"], m.get("seq")) for m in a2.all if "seq" in m]
            self.assertEqual(seqmsgs[0], ("ok", n + 10))
            self.assertEqual([s for _, s in seqmsgs[1:]], list(range(n + 1, n + 12)))

    async def test_replay_since_equal_seq(self):
        async with Server() as srv:
            room, tokens = await self.make_room(srv)
            a = await self.connect(srv, "A")
            oka = await join(a, room, tokens["member"], "Ana")
            await self.changes(a, 5)
            await a.catch_up(5)
            await a.close()
            a2, r = await self.rejoin(srv, room, oka, "Ana", since=5)
            self.assertEqual(r["mode"], "replay")
            self.assertEqual(r["seq"], 5)
            self.assertIn("participants", r)
            await asyncio.sleep(0.3)
            self.assertEqual([m for m in a2.all if "seq" in m and m["t"] != "ok"], [],
                             "since == seq: no events, no snapshot")
            # since 0 on a young room: everything is still held -> replay of 1..5
            a3, r3 = await self.rejoin(srv, room, oka, "Ana", since=0, label="A3")
            self.assertEqual(r3["mode"], "replay")
            got = await a3.events_until(5)
            self.assertEqual([e["seq"] for e in got], [1, 2, 3, 4, 5])

    async def test_since_greater_than_seq_gets_snapshot(self):
        async with Server() as srv:
            room, tokens = await self.make_room(srv)
            a = await self.connect(srv, "A")
            oka = await join(a, room, tokens["member"], "Ana")
            await self.changes(a, 4)
            await a.catch_up(4)
            a2, r = await self.rejoin(srv, room, oka, "Ana", since=1000)
            self.assertEqual(r["mode"], "snapshot")
            self.assertEqual(r["seq"], 4)
            self.assertEqual(a2.snapshot["seq"], 4)
            self.assertEqual(comparable_snapshot(a2.snapshot, False), a.state.comparable(False))

    async def test_rejoin_without_since_gets_snapshot(self):
        async with Server() as srv:
            room, tokens = await self.make_room(srv)
            a = await self.connect(srv, "A")
            oka = await join(a, room, tokens["member"], "Ana")
            await self.changes(a, 3)
            a2, r = await self.rejoin(srv, room, oka, "Ana")
            self.assertEqual(r["mode"], "snapshot")
            self.assertEqual(a2.snapshot["seq"], 3)


class WindowTests(ResumeBase):

    async def test_old_since_gets_snapshot(self):
        async with Server("--replay-events", "16") as srv:
            room, tokens = await self.make_room(srv)
            b = await self.joined(srv, room, tokens["member"], "Ben", label="B")
            a = await self.connect(srv, "A")
            oka = await join(a, room, tokens["member"], "Ana")
            await a.close()
            oks = await self.changes(b, 40)
            top = oks[-1]["seq"]
            self.assertEqual(top, 40)
            await b.catch_up(top)
            a2, r = await self.rejoin(srv, room, oka, "Ana", since=0)
            self.assertEqual(r["mode"], "snapshot", "since=0 with 40 events and a window of 16")
            self.assertEqual(r["seq"], 40)
            snap = a2.snapshot
            self.assertEqual(snap["seq"], 40)
            self.assertEqual(comparable_snapshot(snap, False), b.state.comparable(False),
                             "snapshot equals the state built by applying the events")
            # participants are not events (presence); both are listed with role and name
            parts = {p["pid"]: (p["name"], p["role"]) for p in snap["participants"]}
            self.assertEqual(parts, {b.pid: ("Ben", "member"), oka["pid"]: ("Ana", "member")})
            await asyncio.sleep(0.2)
            self.assertFalse([m for m in a2.inbox if is_event(m)], "no events with a snapshot")
            # within the window: replay
            a3, r3 = await self.rejoin(srv, room, oka, "Ana", since=30, label="A3")
            self.assertEqual(r3["mode"], "replay")
            got = await a3.events_until(40)
            self.assertEqual([e["seq"] for e in got], list(range(31, 41)))
            self.assertEqual(got, [e for e in self.events_in(b) if e["seq"] > 30])
            # well outside the window
            a4, r4 = await self.rejoin(srv, room, oka, "Ana", since=20, label="A4")
            self.assertEqual(r4["mode"], "snapshot")
            self.assertEqual(comparable_snapshot(a4.snapshot, False), b.state.comparable(False))

    async def test_window_boundary(self):
        """--replay-events 16 keeps the 16 most recent events: since=seq-16 replays 16 events,
        since=seq-17 needs 17 and gets a snapshot."""
        async with Server("--replay-events", "16") as srv:
            room, tokens = await self.make_room(srv)
            a = await self.connect(srv, "A")
            oka = await join(a, room, tokens["member"], "Ana")
            await self.changes(a, 40)
            a2, r = await self.rejoin(srv, room, oka, "Ana", since=24, label="A2")
            self.assertEqual(r["mode"], "replay", "since = seq-16 is inside a window of 16")
            got = await a2.events_until(40)
            self.assertEqual([e["seq"] for e in got], list(range(25, 41)))
            a3, r3 = await self.rejoin(srv, room, oka, "Ana", since=23, label="A3")
            self.assertEqual(r3["mode"], "snapshot", "since = seq-17 is outside a window of 16")


class RestartTests(ResumeBase):

    async def test_replay_across_restart(self):
        async with Server() as srv:
            room, tokens = await self.make_room(srv)
            b = await self.joined(srv, room, tokens["member"], "Ben", label="B")
            a = await self.connect(srv, "A")
            oka = await join(a, room, tokens["member"], "Ana")
            okb = b.join_ok
            await self.changes(b, 6, "first")
            await a.catch_up(6)
            n = a.state.seq
            await a.close()
            await self.changes(b, 10, "second")
            await b.catch_up(n + 10)
            live = [e for e in self.events_in(b) if e["seq"] > n]
            code = await srv.astop()
            self.assertEqual(code, 0, "exit code on SIGTERM")
            self.assertEqual(await b.wait_closed(), 1001)
            srv.restart()
            a2, r = await self.rejoin(srv, room, oka, "Ana", since=n, label="A2")
            self.assertEqual(r["mode"], "replay", "the replay window survives a restart")
            self.assertEqual(r["seq"], n + 10)
            got = await a2.events_until(n + 10)
            self.assertEqual(got, live, "replayed after restart == live events before")
            # B resumes too, with nothing to replay
            b2, rb = await self.rejoin(srv, room, okb, "Ben", since=n + 10, label="B2")
            self.assertEqual(rb["mode"], "replay")
            self.assertEqual(rb["seq"], n + 10)
            # seq continues without a gap
            r3 = await b2.expect_ok("item.add", item={"title": "after restart"})
            self.assertEqual(r3["seq"], n + 11)
            ev = await a2.next_event()
            self.assertEqual(ev["seq"], n + 11)
            self.assertEqual(ev["item"]["title"], "after restart")
            # item ids are not reused after the restart
            ids_before = {e["item"]["id"] for e in live if e["t"] == "item.added"}
            self.assertNotIn(r3["item"], ids_before)
            # a fresh snapshot equals B's model (+ the new event)
            a2.state = None
            c = await self.connect(srv, "C")
            await join(c, room, tokens["observer"], "Obi")
            b.state.apply(ev)
            self.assertEqual(comparable_snapshot(c.snapshot, False), b.state.comparable(False))


if __name__ == "__main__":
    unittest.main(verbosity=2)
