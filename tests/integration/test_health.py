#!/usr/bin/python3
"""Backlog health (PROTOCOL.md: "Backlog health"), issue #12 part 2, through real WebSocket
clients:

1. findings appear and disappear as items change: an estimate accepted in a poker round removes
   `unestimated`, acceptance criteria remove `no_acceptance`, a `wont` moved above a `must` adds
   `wont_above_must`, settings re-evaluate `too_large` and the top
2. the `health` notice only when the health changed, one per operation (a split of three)
3. a client that applies the notices over its snapshot holds what a fresh snapshot holds
4. after a restart the snapshot's health equals the live one; an item untouched for longer than
   stale_days (its stored updated_at set back while the server is stopped) is `stale`, and
   touching it clears that
5. a replay join carries the health
6. bad settings are refused and change nothing
"""

import os
import sqlite3
import sys
import time
import unittest

import msgpack

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, join  # noqa: E402
from test_poker import PokerBase  # noqa: E402

RULES = ["unestimated", "too_large", "no_acceptance", "no_benefit", "draft", "epic",
         "wont_above_must", "stale"]
SCORES = ["detailed", "emergent", "estimated", "prioritized", "overall"]
DAY_MS = 86400000


class Tracker:
    """A client's view of the health: the snapshot's, with every notice applied."""

    def __init__(self, health):
        self.head = {k: health[k] for k in ("scores", "top", "per_rule")}
        self.findings = {f["item"]: f["rules"] for f in health["findings"]}

    def apply(self, h):
        self.head = {k: h[k] for k in ("scores", "top", "per_rule")}
        for f in h["changed"]:
            if f["rules"]:
                self.findings[f["item"]] = f["rules"]
            else:
                self.findings.pop(f["item"], None)

    def forget(self, item):
        self.findings.pop(item, None)

    def as_health(self, order):
        return dict(self.head, findings=[{"item": i, "rules": self.findings[i]}
                                         for i in order if i in self.findings])


class HealthBase(PokerBase):

    async def setup_room(self, server=None):
        room, tokens, c = await self.team([("F", "facilitator", "Fay"), ("M", "member", "Max")],
                                          server=server)
        self.room, self.tokens, self.F, self.M = room, tokens, c["F"], c["M"]
        self.srv = server
        self.T = Tracker(self.F.snapshot["health"])
        self.order = []
        return c

    async def op(self, op, **fields):
        """Sends op as F, then a request that changes nothing: every notice of op has arrived
        by its answer. Returns (ok, [health notices of op, as both clients got them])."""
        ok = await self.F.expect_ok(op, **fields)
        await self.F.request("room.update")  # bad_request: a sentinel, changes nothing
        await self.M.request("room.update")
        got = []
        for x in (self.F, self.M):
            notes = []
            while True:
                try:
                    notes.append(await x.next_message("health", timeout=0.05))
                except AssertionError:
                    break
            got.append(notes)
        self.assertEqual(got[0], got[1], "both clients get the same notices")
        for n in got[0]:
            self.assertIsInstance(n["at"], int)
            self.assertNotIn("seq", n, "a notice, not an event")
            self.T.apply(n["health"])
        return ok, [n["health"] for n in got[0]]

    async def add(self, title, **fields):
        ok, notes = await self.op("item.add", item=dict(title=title, **fields))
        self.order.append(ok["item"])
        return ok["item"], notes

    def rules(self, item):
        return self.T.findings.get(item, [])

    async def assert_matches_fresh(self):
        snap = await self.fresh_snapshot(self.room, self.tokens, server=self.srv)
        self.order = [it["id"] for it in snap["items"]]
        self.assertEqual(self.T.as_health(self.order), snap["health"],
                         "the notices applied over the snapshot give a fresh snapshot's health")
        return snap


class FindingTests(HealthBase):

    async def test_findings_appear_and_disappear(self):
        await self.setup_room()
        F = self.F
        h = F.snapshot["health"]
        self.assertEqual(h["scores"], {k: 100 for k in SCORES}, "an empty backlog is healthy")
        self.assertEqual(h["findings"], [])
        self.assertEqual(F.snapshot["room"]["capacity"], 40)
        self.assertEqual(F.snapshot["room"]["size_limit"], 13)
        self.assertEqual(F.snapshot["room"]["stale_days"], 90)
        await self.op("room.update", capacity=20, size_limit=8)

        a, notes = await self.add("Sign in with a passkey")
        self.assertEqual(len(notes), 1)
        self.assertEqual(notes[0]["changed"], [{"item": a, "rules": [
            "unestimated", "no_acceptance", "no_benefit", "draft"]}])
        self.assertEqual(notes[0]["scores"]["detailed"], 0)
        self.assertEqual(notes[0]["scores"]["estimated"], 0)
        self.assertEqual(notes[0]["top"], {"items": 1, "points": 8.0})

        # An estimate accepted through a poker round removes `unestimated`.
        rid, _ = await self.start_round(F, a)
        await self.vote(F, rid, "5")
        await self.vote(self.M, rid, "5")
        await self.reveal(F, rid)
        _, notes = await self.op("round.accept", round=rid, estimate="5")
        self.assertEqual(len(notes), 1)
        self.assertEqual(notes[0]["changed"], [{"item": a, "rules": [
            "no_acceptance", "no_benefit", "draft"]}])
        self.assertEqual(notes[0]["scores"]["estimated"], 100)
        self.assertEqual(notes[0]["top"], {"items": 1, "points": 5.0})

        # Acceptance criteria remove `no_acceptance`; a benefit and ready the rest.
        await self.op("item.update", item=a, set={"acceptance": ["Given a passkey ..."]})
        self.assertEqual(self.rules(a), ["no_benefit", "draft"])
        await self.op("item.update", item=a, set={"benefit": "I sign in fast",
                                                  "status": "ready"})
        self.assertEqual(self.rules(a), [])
        self.assertEqual(self.T.head["scores"], {k: 100 for k in SCORES})

        # A second item: 5 < 20, in the top.
        b, _ = await self.add("Export to CSV", estimate="20", benefit="b", acceptance=["x"],
                              status="ready")
        self.assertEqual(self.rules(b), ["too_large"])
        self.assertEqual(self.T.head["top"], {"items": 2, "points": 25.0})
        c, _ = await self.add("Dark mode", benefit="b", acceptance=["x"], status="ready")
        self.assertEqual(self.rules(c), [], "5 + 20 >= 20: below the top")
        self.assertEqual(self.T.head["top"]["items"], 2)

        # Settings re-evaluate: a larger size limit clears too_large, a smaller capacity
        # shrinks the top.
        _, notes = await self.op("room.update", size_limit=20)
        self.assertEqual(self.rules(b), [])
        self.assertEqual(len(notes), 1)
        _, notes = await self.op("room.update", capacity=5)
        self.assertEqual(self.T.head["top"], {"items": 1, "points": 5.0})
        await self.op("room.update", capacity=100)
        self.assertEqual(self.rules(c), ["unestimated"])
        self.assertEqual(self.T.head["top"]["items"], 3)

        # A wont above a must; moved below it, the finding goes; above again, it comes back.
        await self.op("item.update", item=b, set={"moscow": "wont"})
        self.assertEqual(self.rules(b), [])
        await self.op("item.update", item=c, set={"moscow": "must"})
        self.assertEqual(self.rules(b), ["wont_above_must"])
        self.assertEqual(self.T.head["scores"]["prioritized"], 50)
        await self.op("item.move", item=b, after=c)
        self.assertEqual(self.rules(b), [])
        self.assertEqual(self.T.head["scores"]["prioritized"], 100)
        await self.op("item.move", item=b, after=None)
        self.assertEqual(self.rules(b), ["wont_above_must"])
        # The must done: no must left below, no finding.
        await self.op("item.update", item=c, set={"status": "done"})
        self.assertEqual(self.rules(b), [])
        self.assertEqual(self.rules(c), [], "a done item breaks no rule")

        # An epic near the top.
        e, _ = await self.add("Payments", kind="epic", estimate="3", benefit="b",
                              acceptance=["x"], status="ready")
        self.assertEqual(self.rules(e), ["epic"])
        # Removed: its findings go with it (no entry), and the counts drop.
        _, notes = await self.op("item.remove", item=e)
        self.T.forget(e)
        self.order.remove(e)
        self.assertEqual(notes[0]["changed"], [])
        self.assertEqual(notes[0]["per_rule"]["epic"], 0)
        await self.assert_matches_fresh()

    async def test_notice_only_when_changed_and_one_per_operation(self):
        await self.setup_room()
        a, notes = await self.add("Sign in")
        self.assertEqual(len(notes), 1)
        _, notes = await self.op("item.update", item=a, set={"notes": "talk to Ana"})
        self.assertEqual(notes, [], "notes change no rule: no notice")
        _, notes = await self.op("item.update", item=a, set={"title": "Sign in faster"})
        self.assertEqual(notes, [])
        _, notes = await self.op("focus", item=a)
        self.assertEqual(notes, [])
        b, notes = await self.add("Far below", estimate="100")
        self.assertEqual(len(notes), 1, "13 (unestimated) < 40: in the top, too large")
        self.assertEqual(self.rules(b), ["too_large", "no_acceptance", "no_benefit", "draft"])
        # A split of three children: one notice for all of it.
        _, notes = await self.op("item.split", item=a, children=[
            {"title": "Sign in: email"}, {"title": "Sign in: passkey"},
            {"title": "Sign in: SSO"}])
        self.assertEqual(len(notes), 1)
        kids = [f["item"] for f in notes[0]["changed"] if f["rules"]]
        self.assertEqual(len(kids), 3, notes[0])
        self.assertIn({"item": a, "rules": []}, notes[0]["changed"], "the split parent is clean")
        await self.assert_matches_fresh()

    async def test_bad_settings_refused(self):
        await self.setup_room()
        a, _ = await self.add("Sign in")
        before = await self.fresh_snapshot(self.room, self.tokens)
        for fields in ({"capacity": 0}, {"size_limit": 0}, {"stale_days": 0},
                       {"capacity": 10001}, {"size_limit": 1001}, {"stale_days": 3651},
                       {"capacity": -1}, {"capacity": "40"}, {"size_limit": 1.5},
                       {"capacity": 30, "stale_days": 0}):
            r = await self.err(self.F, "bad_request", "room.update", **fields)
            self.assertTrue(any(k in r["msg"] for k in fields), r["msg"])
        await self.err(self.M, "forbidden", "room.update", capacity=10)
        after = await self.fresh_snapshot(self.room, self.tokens)
        self.assertEqual(before["room"], after["room"])
        self.assertEqual(before["health"], after["health"])
        self.assertEqual(after["room"]["capacity"], 40)
        _, notes = await self.op("room.update", capacity=40)   # the value it has
        self.assertEqual(notes, [])


class PersistenceTests(HealthBase):

    async def test_snapshot_after_restart_and_stale(self):
        srv = Server()
        srv.start()
        try:
            await self.setup_room(server=srv)
            F = self.F
            ids = {x.label: (x.join_ok["pid"], x.join_ok["secret"]) for x in (F, self.M)}
            await self.op("room.update", capacity=30, size_limit=5, stale_days=10)
            a, _ = await self.add("Sign in", estimate="8", moscow="wont")
            b, _ = await self.add("Search", estimate="3", acceptance=["x"], benefit="b",
                                  status="ready")
            c, _ = await self.add("Reports", moscow="must", kind="epic")
            live = (await self.assert_matches_fresh())["health"]
            self.assertEqual(self.rules(a), ["too_large", "no_acceptance", "no_benefit", "draft",
                                             "wont_above_must"])
            # A replay join carries the health too.
            x = await self.connect(srv, "replayer")
            ok = await join(x, self.room, None, "Fay", pid=ids["F"][0], secret=ids["F"][1],
                            since=F.join_ok["seq"], epoch=F.join_ok["epoch"],
                            expect_mode="replay")
            self.assertEqual(ok["health"], live)
            await x.close()
            for y in (F, self.M):
                await y.close()
            self.assertEqual(await srv.astop(), 0)

            srv.start()
            back = await self.connect(srv, "back")
            await join(back, self.room, None, "Fay", pid=ids["F"][0], secret=ids["F"][1],
                       expect_mode="snapshot")
            self.assertEqual(back.snapshot["health"], live, "recomputed on load: the same")
            self.assertEqual(back.snapshot["room"]["stale_days"], 10)
            await back.close()
            self.assertEqual(await srv.astop(), 0)

            # b untouched for 11 days: set back in the store while the server is down.
            db = sqlite3.connect(srv.db)
            row = db.execute("SELECT data FROM items WHERE room = ? AND id = ?",
                             (self.room, b)).fetchone()
            data = msgpack.unpackb(row[0], raw=False)
            data["updated_at"] = int(time.time() * 1000) - 11 * DAY_MS
            db.execute("UPDATE items SET data = ? WHERE room = ? AND id = ?",
                       (msgpack.packb(data, use_bin_type=True), self.room, b))
            db.commit()
            db.close()
            srv.start()
            F = await self.connect(srv, "F2")
            await join(F, self.room, None, "Fay", pid=ids["F"][0], secret=ids["F"][1],
                       expect_mode="snapshot")
            h = F.snapshot["health"]
            self.assertIn({"item": b, "rules": ["stale"]}, h["findings"])
            self.assertEqual(h["per_rule"]["stale"], 1)
            self.assertEqual(h["scores"]["emergent"], 66)
            # Touched: fresh again, told in a notice.
            await F.expect_ok("item.update", item=b, set={"notes": "still wanted"})
            n = await F.next_message("health")
            self.assertEqual(n["health"]["changed"], [{"item": b, "rules": []}])
            self.assertEqual(n["health"]["scores"]["emergent"], 100)
            # A shorter stale_days makes nothing stale that was touched just now.
            await F.expect_ok("room.update", stale_days=1)
            await F.close()
        finally:
            await srv.astop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
