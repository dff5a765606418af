#!/usr/bin/python3
"""Crowd rooms (PROTOCOL.md: "Crowd rooms", "Presence notices", the snapshot's and the replay
ok's `observers`, the Limits table).

A room that knows more than ROOM_CROWD (100) participants counts its observers instead of
listing and announcing them: no participant.joined/left about an observer, a coalesced
`observers {online, total, at}` notice at most once a second, snapshots and replay-mode join
oks without observers. Every snapshot and replay ok carries `observers {online, total}`.

1. a small room: observers listed and announced as before, counts right, no `observers` notice
2. a room crossing 100 participants (1 facilitator, 2 members, 150 observers joining 25 at a
   time): no observer presence after the crossing, coalesced notices, snapshots and replay oks
   without observers, members still announced, role changes to and from observer, and the
   same after a restart on the same database
3. scale: 2,000 observers joining one room, 100 at a time; the time and the bytes the
   facilitator received are printed, and the bytes are bounded well below what announcing
   every observer would cost
"""

import asyncio
import math
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, Client, Server, create_room, join, pack,  # noqa: E402
                     summarize, unpack)

ROOM_CROWD = 100          # server/room.h
NOTICE_MS = 1000          # ROOM_OBSERVERS_MS: at most one `observers` notice a second
SERVER_ARGS = ("--max-participants", "5000", "--max-conns-per-ip", "10000")
PRESENCE = ("participant.joined", "participant.left")


def now_ms():
    return int(time.time() * 1000)


class TimedClient(Client):
    """A Client that also records when each message arrived (`times`, parallel to `all`)."""

    def __init__(self, ws, label=None):
        self.times = []
        super().__init__(ws, label)

    def _dispatch(self, msg):
        self.times.append(time.monotonic())
        super()._dispatch(msg)

    def timed(self, t):
        return [(m, ts) for m, ts in zip(self.all, self.times) if m.get("t") == t]


def of_type(client, t):
    return [m for m in client.all if m.get("t") == t]


def presence_about(client, pids):
    """The participant.joined / participant.left notices `client` received about `pids`."""
    return [m for m in client.all if m.get("t") in PRESENCE and m.get("pid") in pids]


def presence_after_crossing(client, pids):
    """Presence notices about `pids` that `client` received after its first `observers`
    notice (the room was crowded by then), and every participant.left about them."""
    out, crowded = [], False
    for m in client.all:
        crowded = crowded or m.get("t") == "observers"
        if m.get("t") in PRESENCE and m.get("pid") in pids and (
                crowded or m["t"] == "participant.left"):
            out.append(m)
    return out


def counts(online, total):
    return {"online": online, "total": total}


class CrowdBase(AsyncTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        # IsolatedAsyncioTestCase runs the loop in debug mode, which records a traceback for
        # every task and future: with thousands of connections that alone makes the client
        # side some twenty times slower (2,000 joins: 50 s instead of 3 s).
        asyncio.get_running_loop().set_debug(False)

    async def timed(self, server, label):
        c = await TimedClient.connect(server.ws_url, label=label)
        self._clients.append(c)
        return c

    async def member(self, server, room, token, name, timed=True, **kw):
        c = await (self.timed(server, name) if timed else self.connect(server, name))
        ok = await join(c, room, token, name, **kw)
        return c, ok

    async def join_batch(self, server, room, token, names, tracked=True):
        """Opens one connection per name and joins them all concurrently; returns
        [(client, ok)] in the order of names."""
        async def one(name):
            c = await Client.connect(server.ws_url, label=name)
            if tracked:
                self._clients.append(c)
            ok = await join(c, room, token, name)
            return c, ok
        return await asyncio.gather(*(one(n) for n in names))

    async def join_many(self, server, room, token, names, batch, tracked=True):
        out = []
        for i in range(0, len(names), batch):
            out += await self.join_batch(server, room, token, names[i:i + batch], tracked)
        return out

    @staticmethod
    def drop_notices(*clients):
        """Forgets the `observers` notices in the clients' inboxes (they stay in `all`), so that
        counts_notice() only sees those that come after."""
        for c in clients:
            c.inbox[:] = [m for m in c.inbox if m.get("t") != "observers"]

    async def counts_notice(self, client, online, total, timeout=5.0):
        """Waits for an `observers` notice with these counts (removing it from the inbox)."""
        try:
            return await client.next_message(
                "observers", timeout=timeout,
                pred=lambda m: m.get("online") == online and m.get("total") == total)
        except AssertionError:
            raise AssertionError("%s: no `observers` notice with online %d, total %d within "
                                 "%.1f s; the ones received: %s"
                                 % (client.label, online, total, timeout,
                                    [(m["online"], m["total"]) for m in of_type(client,
                                                                                "observers")]))

    def assertParticipants(self, listed, expected, what):
        """listed: [{pid, name, role, online}]; expected: {pid: (role, online)}."""
        got = {p["pid"]: (p["role"], p["online"]) for p in listed}
        self.assertEqual(len(got), len(listed), "%s: a pid listed twice" % what)
        self.assertEqual(got, expected, "%s: participants" % what)

    def assertNoticesSpaced(self, client):
        """At most one `observers` notice a second: by the server's `at` (exact) and by the
        arrival times (with tolerance for the client's own event loop)."""
        timed = client.timed("observers")
        for (a, ta), (b, tb) in zip(timed, timed[1:]):
            self.assertGreaterEqual(b["at"] - a["at"], NOTICE_MS,
                                    "%s: two `observers` notices %d ms apart: %s, %s"
                                    % (client.label, b["at"] - a["at"], a, b))
        if len(timed) > 1:
            span = timed[-1][1] - timed[0][1]
            self.assertLessEqual(len(timed), 2 + math.floor(span / 0.9),
                                 "%s: %d `observers` notices arrived within %.2f s"
                                 % (client.label, len(timed), span))


# ---------------------------------------------------------------------------
# 1. Small rooms: nothing changes but the counts in the snapshot
# ---------------------------------------------------------------------------


class SmallRoomTests(CrowdBase):

    async def test_small_room_lists_and_announces_observers(self):
        async with Server(*SERVER_ARGS) as srv:
            c0 = await self.connect(srv, "creator")
            room, tokens = await create_room(c0, "Small room")
            f, okf = await self.member(srv, room, tokens["facilitator"], "Fay")
            self.assertEqual(f.snapshot["observers"], counts(0, 0),
                             "`observers` is in every snapshot, also of an empty room")
            m, okm = await self.member(srv, room, tokens["member"], "Max")
            obs = []
            for i in range(3):
                obs.append(await self.member(srv, room, tokens["observer"], "Obi %d" % i))
            opids = {ok["pid"] for _, ok in obs}
            # each observer announced to the others, like everyone
            for c in (f, m):
                for _, ok in obs:
                    n = await c.next_message("participant.joined",
                                             pred=lambda x, p=ok["pid"]: x["pid"] == p)
                    self.assertEqual((n["name"], n["role"]), (ok["name"], "observer"))
            # the snapshot lists them, and counts them
            o2c, o2ok = obs[2]
            self.assertParticipants(o2c.snapshot["participants"],
                                    {okf["pid"]: ("facilitator", True),
                                     okm["pid"]: ("member", True),
                                     obs[0][1]["pid"]: ("observer", True),
                                     obs[1][1]["pid"]: ("observer", True),
                                     o2ok["pid"]: ("observer", True)}, "small room snapshot")
            self.assertEqual(o2c.snapshot["observers"], counts(3, 3))
            # an observer leaving is announced; the counts follow
            await o2c.close()
            for c in (f, m):
                n = await c.next_message("participant.left")
                self.assertEqual(n["pid"], o2ok["pid"])
            late, okl = await self.member(srv, room, tokens["observer"], "Late")
            self.assertEqual(late.snapshot["observers"], counts(3, 4))
            self.assertEqual(len(late.snapshot["participants"]), 6)
            self.assertIs({p["pid"]: p["online"] for p in late.snapshot["participants"]}
                          [o2ok["pid"]], False)
            # a replay-mode join ok: every participant, and the counts
            m2 = await self.timed(srv, "Max tab 2")
            r = await m2.expect_ok("join", room=room, name="Max", pid=okm["pid"],
                                   secret=okm["secret"], since=okm["seq"], epoch=okm["epoch"])
            self.assertEqual(r["mode"], "replay", summarize(r))
            self.assertEqual(len(r["participants"]), 6)
            self.assertEqual({p["pid"] for p in r["participants"] if p["role"] == "observer"},
                             opids | {okl["pid"]})
            self.assertEqual(r["observers"], counts(3, 4))
            # role.set observer -> member: the usual event (no name), no participant.joined
            o0c, o0ok = obs[0]
            await f.expect_ok("role.set", pid=o0ok["pid"], role="member")
            ev = await m.next_message("participant.updated")
            self.assertEqual((ev["pid"], ev["role"]), (o0ok["pid"], "member"))
            self.assertNotIn("name", ev, "a small room's participant.updated is as before")
            # role.set member -> observer (Max is online, with two connections)
            await f.expect_ok("role.set", pid=okm["pid"], role="observer")
            await m.next_message("participant.updated", pred=lambda x: x["pid"] == okm["pid"])
            late2, _ = await self.member(srv, room, tokens["observer"], "Later")
            # observers now: Obi 1, Obi 2 (gone), Late, Max, Later; online all but Obi 2
            self.assertEqual(late2.snapshot["observers"], counts(4, 5))
            await asyncio.sleep(1.5)   # a tick would have sent an `observers` notice by now
            for c in [f, m, m2, late, late2] + [c for c, _ in obs]:
                self.assertEqual(of_type(c, "observers"), [],
                                 "%s: an `observers` notice in a room of at most %d"
                                 % (c.label, ROOM_CROWD))
            # the joined notices the facilitator got: everyone but itself, once
            joined = [n["pid"] for n in of_type(f, "participant.joined")]
            self.assertEqual(len(joined), len(set(joined)))
            self.assertEqual(len(joined), 6)   # Max, the 3 Obi, Late, Later (not Max's tab)
            self.assertNotIn(okm["pid"], [n["pid"] for n in of_type(f, "participant.left")])


# ---------------------------------------------------------------------------
# 2. A room crossing 100 participants, and its restart
# ---------------------------------------------------------------------------


class CrowdRoomTests(CrowdBase):

    async def test_crowd_room(self):
        NOBS = 150
        async with Server(*SERVER_ARGS) as srv:
            c0 = await self.connect(srv, "creator")
            room, tokens = await create_room(c0, "Town hall refinement")
            f, okf = await self.member(srv, room, tokens["facilitator"], "Fay")
            m1, okm1 = await self.member(srv, room, tokens["member"], "Max")
            m2, okm2 = await self.member(srv, room, tokens["member"], "Mia")
            await c0.close()
            t0 = time.monotonic()
            obs = await self.join_many(srv, room, tokens["observer"],
                                       ["Observer %d" % i for i in range(NOBS)], batch=25)
            opids = {ok["pid"] for _, ok in obs}
            self.assertEqual(len(opids), NOBS)
            for c in (f, m1, m2, obs[-1][0]):
                await self.counts_notice(c, NOBS, NOBS)
            elapsed = time.monotonic() - t0

            # -- before the crossing observers were announced; after it, never --------------
            pre = ROOM_CROWD - 3   # the room held 3 participants before the observers came
            for c in (f, m1, m2):
                joined = [n for n in presence_about(c, opids)
                          if n["t"] == "participant.joined"]
                self.assertEqual(len(joined), pre,
                                 "%s: participant.joined about %d observers; only the first %d "
                                 "(up to the %dth participant) are announced"
                                 % (c.label, len(joined), pre, ROOM_CROWD))
                self.assertEqual(len({n["pid"] for n in joined}), pre)
                self.assertFalse([n for n in presence_about(c, opids)
                                  if n["t"] == "participant.left"])
                types = [n.get("t") for n in c.all]
                first_notice = types.index("observers")
                last_joined = max(i for i, n in enumerate(c.all)
                                  if n.get("t") == "participant.joined" and n["pid"] in opids)
                self.assertLess(last_joined, first_notice,
                                "%s: an observer announced after the room became crowded"
                                % c.label)
                notices = of_type(c, "observers")
                for a, b in zip(notices, notices[1:]):
                    self.assertNotEqual((a["online"], a["total"]), (b["online"], b["total"]),
                                        "%s: a notice with unchanged counts" % c.label)
                    self.assertLessEqual(a["total"], b["total"])
                for n in notices:
                    self.assertEqual(set(n), {"t", "at", "online", "total"}, summarize(n))
                    self.assertNotIn("seq", n, "the notice carries no seq")
                    self.assertEqual(n["online"], n["total"], "nobody left yet: %s" % n)
                    self.assertGreater(n["total"], pre)
                    self.assertLessEqual(abs(n["at"] - now_ms()), 120_000)
                self.assertLessEqual(len(notices), 2 + elapsed / 0.9)
                self.assertNoticesSpaced(c)
            # an observer that joined after the crossing heard of no other observer
            self.assertFalse(presence_about(obs[-1][0], opids))

            # -- a late joiner: only the facilitator and the members, and the counts --------
            late, okl = await self.member(srv, room, tokens["observer"], "Late")
            self.assertEqual((okl["role"], okl["name"]), ("observer", "Late"))
            self.assertTrue(okl["pid"] and okl["secret"], "a crowd observer gets its pid/secret")
            self.assertParticipants(late.snapshot["participants"],
                                    {okf["pid"]: ("facilitator", True),
                                     okm1["pid"]: ("member", True),
                                     okm2["pid"]: ("member", True)}, "late joiner's snapshot")
            self.assertEqual({p["name"] for p in late.snapshot["participants"]},
                             {"Fay", "Max", "Mia"})
            self.assertEqual(late.snapshot["observers"], counts(NOBS + 1, NOBS + 1))
            online = total = NOBS + 1
            opids.add(okl["pid"])
            await self.counts_notice(f, online, total)

            # -- replay-mode rejoins (a second tab): no observers listed, counts ------------
            mark = len(f.all)
            item = await f.expect_ok("item.add", item={"title": "Keynote"})
            for who, ok in ((obs[0][1]["name"], obs[0][1]), ("Max", okm1)):
                tab = await self.timed(srv, who + " tab 2")
                r = await tab.expect_ok("join", room=room, name=who, pid=ok["pid"],
                                        secret=ok["secret"], since=ok["seq"], epoch=ok["epoch"])
                self.assertEqual(r["mode"], "replay", summarize(r))
                self.assertEqual(r["seq"], item["seq"])
                self.assertParticipants(r["participants"],
                                        {okf["pid"]: ("facilitator", True),
                                         okm1["pid"]: ("member", True),
                                         okm2["pid"]: ("member", True)}, who + "'s replay ok")
                self.assertEqual(r["observers"], counts(online, total),
                                 "a second tab does not count twice")
                ev = await tab.next_message("item.added")
                self.assertEqual(ev["seq"], item["seq"])
                await tab.close()
            # a snapshot-mode rejoin after a change of epoch ... is a snapshot without observers
            tab = await self.timed(srv, "Mia tab 2")
            r = await tab.expect_ok("join", room=room, name="Mia", pid=okm2["pid"],
                                    secret=okm2["secret"], since=0, epoch="not-this-one")
            self.assertEqual((r["mode"], r["reason"]), ("snapshot", "epoch"))
            self.assertNotIn("participants", r)
            snap = await tab.next_message("snapshot")
            self.assertEqual(len(snap["participants"]), 3)
            self.assertEqual(snap["observers"], counts(online, total))
            await tab.close()

            # -- members' presence still works ----------------------------------------------
            await asyncio.sleep(0.3)
            self.assertFalse([n for n in f.all[mark:] if n.get("t") in PRESENCE],
                             "second tabs open and close silently")
            await m2.close()
            for c in (f, m1, late):
                n = await c.next_message("participant.left", pred=lambda x: x["pid"] ==
                                         okm2["pid"])
                self.assertIsInstance(n["at"], int)
            m2, _ = await self.member(srv, room, None, "Mia", pid=okm2["pid"],
                                      secret=okm2["secret"])
            for c in (f, m1, late):
                n = await c.next_message("participant.joined", pred=lambda x: x["pid"] ==
                                         okm2["pid"])
                self.assertEqual((n["name"], n["role"]), ("Mia", "member"))

            # -- observers leaving: the counts go down, nobody is told one by one ------------
            gone = obs[NOBS - 30:]
            self.drop_notices(f, m1, late)
            await asyncio.gather(*(c.close() for c, _ in gone))
            online -= len(gone)
            for c in (f, m1, late):
                await self.counts_notice(c, online, total)
            for c in (f, m1, m2, late):
                self.assertFalse(presence_after_crossing(c, opids),
                                 "%s: presence about an observer of the crowd room" % c.label)
            self.assertFalse(presence_about(late, opids))

            # -- role.set observer -> member, online: event with name, then joined ---------
            oc, ook = obs[0]
            self.drop_notices(f, m1, late)
            await f.expect_ok("role.set", pid=ook["pid"], role="member")
            for c in (f, m1, oc, late):
                ev = await c.next_message("participant.updated",
                                          pred=lambda x: x["pid"] == ook["pid"])
                self.assertEqual((ev["role"], ev.get("name")), ("member", ook["name"]),
                                 "%s: the event names the ex-observer" % c.label)
                ji = next(i for i, n in enumerate(c.all) if n is ev)
                # (Observer 0 joined before the crossing: an old notice about it may be there)
                n = await c.next_message("participant.joined",
                                         pred=lambda x: x["pid"] == ook["pid"] and
                                         x["role"] != "observer")
                self.assertEqual((n["name"], n["role"]), (ook["name"], "member"))
                self.assertGreater(next(i for i, x in enumerate(c.all) if x is n), ji,
                                   "participant.joined follows the event")
            online -= 1
            total -= 1
            for c in (f, m1, late):
                await self.counts_notice(c, online, total)
            # ... offline: the event names it; no participant.joined
            xc, xok = gone[-1]
            self.drop_notices(f)
            await f.expect_ok("role.set", pid=xok["pid"], role="owner")
            ev = await m1.next_message("participant.updated",
                                       pred=lambda x: x["pid"] == xok["pid"])
            self.assertEqual((ev["role"], ev.get("name")), ("owner", xok["name"]))
            total -= 1
            await self.counts_notice(f, online, total)
            self.assertFalse([n for n in f.all + m1.all if n.get("t") in PRESENCE
                              and n["pid"] == xok["pid"]], "no presence about an offline one")

            # -- role.set member -> observer: the event, then an `observers` notice ---------
            self.drop_notices(f, m2, late)
            await f.expect_ok("role.set", pid=okm1["pid"], role="observer")
            online += 1
            total += 1
            opids.add(okm1["pid"])
            for c in (f, m2, late):
                ev = await c.next_message("participant.updated",
                                          pred=lambda x: x["pid"] == okm1["pid"])
                self.assertEqual(ev["role"], "observer")
                ei = next(i for i, x in enumerate(c.all) if x is ev)
                n = await self.counts_notice(c, online, total)
                self.assertGreater(next(i for i, x in enumerate(c.all) if x is n), ei)
            # there and back within one second: the counts end where they were, and a notice
            # still follows (it is what tells clients to drop the observer from their lists)
            b1, bok = obs[1]
            self.drop_notices(f, b1)
            mark = len(f.all)
            there = f.send_request("role.set", pid=bok["pid"], role="member")
            back = f.send_request("role.set", pid=bok["pid"], role="observer")
            self.assertEqual([(await there)["t"], (await back)["t"]], ["ok", "ok"])
            for c in (f, b1):
                evs = [m for m in c.all if m.get("t") == "participant.updated" and
                       m["pid"] == bok["pid"]]
                while len(evs) < 2:
                    await c.next_message("participant.updated")
                    evs = [m for m in c.all if m.get("t") == "participant.updated" and
                           m["pid"] == bok["pid"]]
                self.assertEqual([(e["role"], e.get("name")) for e in evs],
                                 [("member", bok["name"]), ("observer", None)])
                ei = next(i for i, x in enumerate(c.all) if x is evs[1])
                n = await self.counts_notice(c, online, total)
                self.assertGreater(next(i for i, x in enumerate(c.all) if x is n), ei,
                                   "%s: an `observers` notice after the role changes" % c.label)
            self.assertEqual([(n["t"], n["role"]) for n in f.all[mark:]
                              if n.get("t") == "participant.joined"], [("participant.joined",
                                                                         "member")])
            # Max, an observer now, leaves: counted, not announced
            self.drop_notices(f)
            await m1.close()
            online -= 1
            await self.counts_notice(f, online, total)
            await asyncio.sleep(0.3)
            self.assertFalse([n for n in f.all if n.get("t") == "participant.left"
                              and n["pid"] == okm1["pid"]])
            # a snapshot now
            late2, _ = await self.member(srv, room, tokens["observer"], "Later")
            online += 1
            total += 1
            actors = {okf["pid"]: ("facilitator", True), okm2["pid"]: ("member", True),
                      ook["pid"]: ("member", True), xok["pid"]: ("owner", False)}
            self.assertParticipants(late2.snapshot["participants"], actors, "after role changes")
            self.assertEqual(late2.snapshot["observers"], counts(online, total))
            for c in (f, m2, late):
                self.assertNoticesSpaced(c)

            # -- restart on the same database -----------------------------------------------
            self.assertEqual(await srv.astop(), 0)
            srv.start()
            f2, _ = await self.member(srv, room, None, "Fay", pid=okf["pid"], secret=okf["secret"])
            offline = {p: (role, False) for p, (role, _) in actors.items()}
            self.assertParticipants(f2.snapshot["participants"],
                                    dict(offline, **{okf["pid"]: ("facilitator", True)}),
                                    "after a restart")
            self.assertEqual(f2.snapshot["observers"], counts(0, total))
            n3, ok3 = await self.member(srv, room, tokens["observer"], "Newcomer")
            total += 1
            self.assertParticipants(n3.snapshot["participants"],
                                    dict(offline, **{okf["pid"]: ("facilitator", True)}),
                                    "a late joiner after a restart")
            self.assertEqual(n3.snapshot["observers"], counts(1, total))
            await self.counts_notice(f2, 1, total)
            # an observer of before the restart comes back: counted
            o5c, o5 = await self.member(srv, room, None, obs[5][1]["name"], pid=obs[5][1]["pid"],
                                        secret=obs[5][1]["secret"])
            self.assertEqual(o5["role"], "observer")
            self.assertEqual(o5c.snapshot["observers"], counts(2, total))
            await self.counts_notice(f2, 2, total)
            # and a replay-mode rejoin of the facilitator's second tab
            tab = await self.timed(srv, "Fay tab 2")
            r = await tab.expect_ok("join", room=room, name="Fay", pid=okf["pid"],
                                    secret=okf["secret"], since=f2.join_ok["seq"],
                                    epoch=f2.join_ok["epoch"])
            self.assertEqual(r["mode"], "replay")
            self.assertParticipants(r["participants"],
                                    dict(offline, **{okf["pid"]: ("facilitator", True)}),
                                    "replay ok after a restart")
            self.assertEqual(r["observers"], counts(2, total))
            await asyncio.sleep(0.3)
            self.assertFalse(presence_about(f2, {ok3["pid"], o5["pid"]}))
            self.assertNoticesSpaced(f2)
            print("\ncrowd room: %d observers joined (25 at a time) and were counted in %.2f s; "
                  "the facilitator "
                  "got %d `observers` notices" % (NOBS, elapsed, len(of_type(f, "observers"))))


# ---------------------------------------------------------------------------
# 3. Scale: 2,000 observers in one room
# ---------------------------------------------------------------------------


class ScaleTests(CrowdBase):

    async def test_2000_observers(self):
        NOBS, BATCH = 2000, 100
        async with Server(*SERVER_ARGS) as srv:
            c0 = await self.connect(srv, "creator")
            room, tokens = await create_room(c0, "All hands")
            f, okf = await self.member(srv, room, tokens["facilitator"], "Fay")
            await c0.close()
            mark = len(f.all)
            frames_mark = len(f.raw_frames)
            obs = []
            try:
                t0 = time.monotonic()
                obs = await self.join_many(srv, room, tokens["observer"],
                                           ["Observer %04d" % i for i in range(NOBS)],
                                           batch=BATCH, tracked=False)
                joined_in = time.monotonic() - t0
                await self.counts_notice(f, NOBS, NOBS, timeout=10)
                got = list(f.raw_frames)[frames_mark:]
                received = sum(len(x) for x in got)
                msgs = f.all[mark:]
                opids = {ok["pid"] for _, ok in obs}
                self.assertEqual(len(opids), NOBS)
                # what announcing each observer to the facilitator would have cost
                individually = sum(len(pack({"t": "participant.joined", "at": now_ms(),
                                             "pid": ok["pid"], "name": ok["name"],
                                             "role": "observer"})) for _, ok in obs)
                announced = [m for m in msgs if m.get("t") == "participant.joined"]
                notices = [m for m in msgs if m.get("t") == "observers"]
                print("\n2000 observers: joined in %.2f s (%d at a time); the facilitator "
                      "received %d bytes in %d messages (%d participant.joined before the "
                      "crossing, %d `observers` notices); announcing each observer would "
                      "have cost %d bytes" % (joined_in, BATCH, received, len(msgs),
                                              len(announced), len(notices), individually))
                self.assertEqual(len(announced), ROOM_CROWD - 1,
                                 "only the observers who joined before the crossing are "
                                 "announced")
                self.assertTrue(all(m["pid"] in opids for m in announced))
                self.assertFalse([m for m in msgs if m.get("t") == "participant.left"])
                self.assertEqual({m.get("t") for m in msgs}, {"participant.joined",
                                                                "observers"})
                self.assertLess(received, 1 << 20)
                self.assertLess(received, individually / 5,
                                "the facilitator received %d bytes; one notice per observer "
                                "would be %d" % (received, individually))
                self.assertLessEqual(len(notices), 2 + (time.monotonic() - t0) / 0.9)
                self.assertNoticesSpaced(f)
                # a late joiner's snapshot is as small as the room's actors
                late, _ = await self.member(srv, room, tokens["observer"], "Late")
                snap_bytes = len(next(fr for fr in late.raw_frames
                                      if unpack(fr).get("t") == "snapshot"))
                self.assertEqual(len(late.snapshot["participants"]), 1)
                self.assertEqual(late.snapshot["observers"], counts(NOBS + 1, NOBS + 1))
                self.assertLess(snap_bytes, 2048)
                print("late joiner's snapshot: %d bytes" % snap_bytes)
                # everyone leaves: the counts come down
                t1 = time.monotonic()
                await asyncio.gather(*(c.close() for c, _ in obs))
                closed_in = time.monotonic() - t1
                obs_done, obs = obs, []
                await self.counts_notice(f, 1, NOBS + 1, timeout=10)
                self.assertFalse([m for m in f.all if m.get("t") == "participant.left"])
                print("2000 observers closed in %.2f s" % closed_in)
                problems = ["%s: %s" % (c.label, v) for c, _ in obs_done for v in c.violations]
                self.assertEqual(problems[:10], [])
            finally:
                await asyncio.gather(*(c.close() for c, _ in obs))


if __name__ == "__main__":
    unittest.main(verbosity=2)
