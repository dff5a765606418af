#!/usr/bin/python3
"""Prioritization (PROTOCOL.md: "Prioritization"), issue #12 part 3, through real WebSocket clients:

1. order.propose by value_effort, wsjf and moscow_value: the expected orders are computed here
   from PROTOCOL.md's rules (not copied from the server), with ties, zero and non-numeric
   estimates, lacking inputs, split parents and done items (which keep their place)
2. an estimate accepted in planning poker changes the proposal at once
3. order.apply (by method and by an explicit order) is one event every client sees and applies;
   a fresh snapshot agrees; the same order again changes nothing
4. stale, partial, duplicate, unknown, split-item and malformed applies are refused with nothing
   changed; roles
5. the applied order survives a restart
"""

import math
import os
import random
import sqlite3
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, comparable_snapshot, join, rank_key  # noqa: E402
from test_poker import PokerBase  # noqa: E402

MOSCOW = ["must", "should", "could", "wont"]
NEEDS = ["value", "estimate", "moscow", "business_value", "time_criticality", "risk_reduction"]
WSJF = ["business_value", "time_criticality", "risk_reduction"]


# ---------------------------------------------------------------------------
# PROTOCOL.md's rules, written out independently of the server's
# ---------------------------------------------------------------------------

def effort(item):
    e = item.get("estimate")
    if e is None:
        return None
    if e == "½":
        return 0.5
    try:
        v = float(e)
    except ValueError:
        return None
    return v if math.isfinite(v) and v >= 0 else None


def ratio(num, den):
    if den > 0:
        return num / den
    return math.inf if num > 0 else 0.0


def is_open(item):
    return item["status"] not in ("split", "done")


def expected(items_in_order, method):
    """(order, {id: score or None}, [(id, [missing])]) by the rules of PROTOCOL.md."""
    rows = []
    for pos, it in enumerate(x for x in items_in_order if is_open(x)):
        missing = set()
        eff = effort(it)
        if method == "value_effort":
            if it.get("value") is None:
                missing.add("value")
            if eff is None:
                missing.add("estimate")
            if missing:
                rows.append(((1, 0, 0, pos), it["id"], None, missing))
            else:
                r = ratio(it["value"], eff)
                rows.append(((0, -r, -it["value"], pos), it["id"], r, missing))
        elif method == "wsjf":
            missing = {f for f in WSJF if it.get(f) is None}
            if eff is None:
                missing.add("estimate")
            if missing:
                rows.append(((1, 0, 0, pos), it["id"], None, missing))
            else:
                cod = sum(it[f] for f in WSJF)
                r = ratio(cod, eff)
                rows.append(((0, -r, -cod, pos), it["id"], r, missing))
        else:
            if it.get("value") is None:
                missing.add("value")
            if it.get("moscow") is None:
                missing.add("moscow")
                rows.append(((4, 0, 0, pos), it["id"], None, missing))
            elif it.get("value") is None:
                rows.append(((MOSCOW.index(it["moscow"]), 1, 0, pos), it["id"], None, missing))
            else:
                rows.append(((MOSCOW.index(it["moscow"]), 0, -it["value"], pos), it["id"],
                             float(it["value"]), missing))
    rows.sort(key=lambda r: r[0])
    order = [r[1] for r in rows]
    scores = {r[1]: r[2] for r in rows}
    lacking = [(r[1], [n for n in NEEDS if n in r[3]]) for r in rows if r[3]]
    return order, scores, lacking


def applied_order(items_in_order, proposal):
    """The whole backlog after applying `proposal` (open ids): fixed items keep their places."""
    it = iter(proposal)
    return [next(it) if is_open(x) else x["id"] for x in items_in_order]


def backlog(state):
    return sorted(state.items.values(), key=rank_key)


class PrioBase(PokerBase):

    async def room(self, people=(("F", "facilitator", "Fay"), ("O", "owner", "Oli"),
                                 ("M", "member", "Max"), ("W", "observer", "Wes")),
                   server=None, deck="modified"):
        room, tokens, c = await self.team(list(people), deck=deck, name="Priorities",
                                          server=server)
        return room, tokens, c

    async def add(self, c, fields):
        ok = await c.expect_ok("item.add", item=fields)
        return ok["item"]

    async def propose(self, c, method):
        ok = await c.expect_ok("order.propose", method=method)
        self.assertNotIn("seq", ok, "a proposal changes nothing")
        self.assertEqual(ok["method"], method)
        self.assertRegex(ok["base"], r"^[0-9a-f]{16}$")
        self.assertEqual(len(ok["scores"]), len(ok["order"]))
        return ok

    async def state_of(self, c, server=None):
        """c's RoomState, caught up with the room (via a fresh observer snapshot's seq)."""
        room, tokens = self.ctx
        snap = await self.fresh_snapshot(room, tokens, server=server)
        await c.catch_up(snap["seq"])
        self.assertEqual(c.state.comparable(False), comparable_snapshot(snap, False))
        return c.state, snap

    def check_proposal(self, ok, items_in_order, method):
        order, scores, lacking = expected(items_in_order, method)
        self.assertEqual(ok["order"], order, method)
        for i, s in zip(ok["order"], ok["scores"]):
            if scores[i] is None:
                self.assertIsNone(s, "%s score of %s" % (method, i))
            elif math.isinf(scores[i]):
                self.assertTrue(math.isinf(s), "%s score of %s: %r" % (method, i, s))
            else:
                self.assertAlmostEqual(s, scores[i], 9, "%s score of %s" % (method, i))
        self.assertEqual([(x["item"], x["missing"]) for x in ok["lacking"]], lacking, method)
        self.assertEqual(ok["fixed"], sum(1 for x in items_in_order if not is_open(x)))


def random_fields(rng, n):
    cards = ["0", "½", "1", "2", "3", "5", "8", "13", "?", "coffee", None, None]
    out = []
    for i in range(n):
        f = {"title": "Story %02d" % i}
        for k, pick in (("estimate", lambda: rng.choice(cards)),
                        ("value", lambda: rng.choice([None, 0, 10, 20, 40, 40, 80, 100])),
                        ("moscow", lambda: rng.choice([None] + MOSCOW)),
                        ("business_value", lambda: rng.choice([None, 0, 1, 3, 5, 8, 20])),
                        ("time_criticality", lambda: rng.choice([None, 0, 2, 5, 13])),
                        ("risk_reduction", lambda: rng.choice([None, 0, 1, 8]))):
            v = pick()
            if v is not None or rng.random() < 0.3:
                f[k] = v
        out.append(f)
    return out


class ProposalTests(PrioBase):

    async def test_each_method_by_the_rules(self):
        room, tokens, c = await self.room()
        self.ctx = (room, tokens)
        F, W = c["F"], c["W"]
        rng = random.Random(12)
        ids = [await self.add(F, f) for f in random_fields(rng, 40)]
        # hand-made ties and edges
        ids.append(await self.add(F, {"title": "Tie A", "value": 40, "estimate": "8",
                                      "moscow": "must", "business_value": 8,
                                      "time_criticality": 5, "risk_reduction": 3}))
        ids.append(await self.add(F, {"title": "Tie B (more value)", "value": 80,
                                      "estimate": "16", "moscow": "must", "business_value": 13,
                                      "time_criticality": 13, "risk_reduction": 6}))
        ids.append(await self.add(F, {"title": "Zero effort", "value": 10, "estimate": "0",
                                      "business_value": 1, "time_criticality": 0,
                                      "risk_reduction": 0}))
        ids.append(await self.add(F, {"title": "Zero both", "value": 0, "estimate": "0",
                                      "business_value": 0, "time_criticality": 0,
                                      "risk_reduction": 0}))
        ids.append(await self.add(F, {"title": "T-shirt sized", "value": 90, "estimate": "XL"}))
        # a split parent (keeps its place; its children are ordinary items) and a done item
        await F.expect_ok("item.update", item=ids[3], set={"value": 100, "estimate": "1"})
        await F.expect_ok("item.split", item=ids[3], children=[
            {"title": "Child one", "value": 70, "estimate": "2", "moscow": "should"},
            {"title": "Child two"}])
        await F.expect_ok("item.update", item=ids[5], set={"status": "done", "value": 100,
                                                          "estimate": "1", "moscow": "must"})
        state, _ = await self.state_of(F)
        items = backlog(state)
        for method in ("value_effort", "wsjf", "moscow_value"):
            ok = await self.propose(W, method)     # observers may ask too
            self.check_proposal(ok, items, method)
            self.assertNotIn(ids[3], ok["order"])
            self.assertNotIn(ids[5], ok["order"])
        # nothing changed: no event came, the base is the same on every ask
        again = await self.propose(F, "wsjf")
        self.assertEqual(again["base"], ok["base"])
        self.assertEqual([m for m in W.inbox if "seq" in m and m["seq"] > state.seq], [])

    async def test_accepted_estimate_moves_the_proposal(self):
        room, tokens, c = await self.room()
        self.ctx = (room, tokens)
        F, O, M = c["F"], c["O"], c["M"]
        a = await self.add(F, {"title": "Known", "value": 50, "estimate": "8",
                               "business_value": 5, "time_criticality": 5, "risk_reduction": 0})
        b = await self.add(F, {"title": "Unestimated", "value": 40,
                               "business_value": 8, "time_criticality": 5, "risk_reduction": 1})
        before = await self.propose(O, "value_effort")
        self.assertEqual(before["order"], [a, b])
        self.assertEqual(before["lacking"], [{"item": b, "missing": ["estimate"]}])
        wsjf_before = await self.propose(O, "wsjf")
        self.assertEqual(wsjf_before["order"], [a, b])
        rid, _ = await self.start_round(F, b)
        for x in (F, O, M):
            await self.vote(x, rid, "2")
        await self.reveal(F, rid)
        await O.expect_ok("round.accept", round=rid, estimate="2")
        after = await self.propose(O, "value_effort")
        self.assertNotEqual(after["base"], before["base"])
        self.assertEqual(after["order"], [b, a])          # 40/2 = 20 > 50/8
        self.assertEqual(after["scores"], [20.0, 6.25])
        self.assertEqual(after["lacking"], [])
        wsjf = await self.propose(O, "wsjf")
        self.assertEqual(wsjf["order"], [b, a])           # 14/2 = 7 > 10/8
        # the stale base is refused now
        r = await self.err(O, "conflict", "order.apply", base=before["base"], method="value_effort")
        self.assertIn("propose it again", r["msg"])


class ApplyTests(PrioBase):

    async def seed(self, F):
        ids = []
        for i, (v, e, m) in enumerate([(10, "8", "could"), (90, "3", "must"), (None, "5", None),
                                       (60, "2", "should"), (30, "1", "wont"), (90, "13", "must"),
                                       (55, "?", "must")]):
            f = {"title": "Item %d" % i, "estimate": e, "value": v, "moscow": m,
                 "business_value": (i * 3) % 20, "time_criticality": (i * 7) % 13,
                 "risk_reduction": i % 3}
            ids.append(await self.add(F, f))
        await F.expect_ok("item.split", item=ids[0], children=[{"title": "Small part", "value": 5,
                                                                 "estimate": "1"}])
        await F.expect_ok("item.update", item=ids[4], set={"status": "done"})
        return ids

    async def apply_seen_by_all(self, c, who, fields, proposal_order):
        state, _ = await self.state_of(c["F"])
        before_items = backlog(state)
        before_ranks = {x["id"]: x["rank"] for x in before_items}
        for x in c.values():
            if x is not c["F"]:
                await x.catch_up(state.seq)
        ok = await c[who].expect_ok("order.apply", **fields)
        seen = []
        for label, x in c.items():
            evs = await x.events_until(ok["seq"])
            self.assertEqual([e["t"] for e in evs], ["order.applied"], label)   # ONE event
            for e in evs:
                x.state.apply(e)
            seen.append(evs[0])
        ev = seen[0]
        for other in seen[1:]:
            self.assertEqual(other, ev)
        self.assertEqual(ev["by"], c[who].pid)
        want = applied_order(before_items, proposal_order)
        for label, x in c.items():
            self.assertEqual(x.state.order(), want, label)
        # only moved items are named; their new ranks are the ranks the open items had
        open_ranks = sorted(r for i, r in before_ranks.items()
                            if is_open(next(x for x in before_items if x["id"] == i)))
        for i, r in ev["ranks"].items():
            self.assertNotEqual(before_ranks[i], r)
            self.assertIn(r, open_ranks)
        moved = {i for i in want if before_ranks[i] != x.state.items[i]["rank"]}
        self.assertEqual(set(ev["ranks"]), moved)
        _, snap = await self.state_of(c["F"])
        self.assertEqual([x["id"] for x in snap["items"]], want)
        return ev

    async def test_apply_by_method_is_one_event_for_everyone(self):
        room, tokens, c = await self.room()
        self.ctx = (room, tokens)
        ids = await self.seed(c["F"])
        prop = await self.propose(c["O"], "moscow_value")
        ev = await self.apply_seen_by_all(c, "O", {"base": prop["base"], "method": "moscow_value"},
                                          prop["order"])
        self.assertEqual(ev["method"], "moscow_value")
        # the split parent and the done item did not move
        self.assertNotIn(ids[0], ev["ranks"])
        self.assertNotIn(ids[4], ev["ranks"])
        # the same order again: ok without seq, no event
        again = await self.propose(c["O"], "moscow_value")
        self.assertEqual(again["order"], prop["order"])
        ok = await c["O"].expect_ok("order.apply", base=again["base"], method="moscow_value")
        self.assertNotIn("seq", ok)
        ok = await c["F"].expect_ok("order.apply", base=again["base"], order=again["order"])
        self.assertNotIn("seq", ok)

    async def test_apply_an_explicit_order(self):
        room, tokens, c = await self.room()
        self.ctx = (room, tokens)
        await self.seed(c["F"])
        prop = await self.propose(c["F"], "wsjf")
        mine = list(reversed(prop["order"]))              # any order of the open items
        ev = await self.apply_seen_by_all(c, "F", {"base": prop["base"], "order": mine}, mine)
        self.assertIsNone(ev["method"])
        prop2 = await self.propose(c["F"], "wsjf")
        self.assertNotEqual(prop2["base"], prop["base"])  # the order changed: a new base
        state, _ = await self.state_of(c["F"])
        self.check_proposal(prop2, backlog(state), "wsjf")   # lacking items: now reversed

    async def test_refusals_change_nothing(self):
        room, tokens, c = await self.room()
        self.ctx = (room, tokens)
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        ids = await self.seed(F)
        prop = await self.propose(O, "value_effort")
        base, order = prop["base"], prop["order"]
        _, snap0 = await self.state_of(F)
        cases = [
            ("bad_request", O, {"base": base}),                                   # neither
            ("bad_request", O, {"base": base, "method": "wsjf", "order": order}),  # both
            ("bad_request", O, {"base": base, "method": "alphabetical"}),
            ("bad_request", O, {"method": "wsjf"}),                                # no base
            ("bad_request", O, {"base": base, "order": order[:-1]}),               # partial
            ("bad_request", O, {"base": base, "order": order + [order[0]]}),       # duplicate
            ("bad_request", O, {"base": base, "order": [order[1]] + order[1:]}),   # dup, missing
            ("bad_request", O, {"base": base, "order": order + [ids[0]]}),         # split parent
            ("bad_request", O, {"base": base, "order": [ids[4]] + order}),         # done item
            ("bad_request", O, {"base": base, "order": order + [7]}),              # not a string
            ("not_found", O, {"base": base, "order": order[:-1] + ["i999"]}),      # unknown
            ("conflict", O, {"base": "0000000000000000", "method": "wsjf"}),       # stale
            ("forbidden", M, {"base": base, "method": "wsjf"}),                    # member
            ("forbidden", W, {"base": base, "method": "wsjf"}),                    # observer
        ]
        for code, who, fields in cases:
            r = await self.err(who, code, "order.apply", **fields)
            if code == "bad_request" and "order" in fields and len(fields["order"]) < len(order):
                self.assertIn("missing", r["msg"])
        await self.err(O, "bad_request", "order.propose", method="alphabetical")
        await self.err(O, "bad_request", "order.propose")
        _, snap1 = await self.state_of(F)
        self.assertEqual(comparable_snapshot(snap1, False), comparable_snapshot(snap0, False))
        # a change elsewhere in the meantime makes the proposal stale
        await M.expect_ok("item.update", item=order[-1], set={"value": 99})
        r = await self.err(O, "conflict", "order.apply", base=base, order=order)
        self.assertIn("propose it again", r["msg"])
        # ... but a change that no proposal depends on does not
        prop = await self.propose(O, "value_effort")
        await M.expect_ok("item.update", item=order[0], set={"title": "Renamed"})
        ok = await O.expect_ok("order.apply", base=prop["base"], method="value_effort")
        self.assertIn("seq", ok)


class RestartTests(PrioBase):

    async def test_order_survives_restart(self):
        srv = Server()
        srv.start()
        try:
            room, tokens, c = await self.room(people=[("O", "owner", "Oli")], server=srv)
            self.ctx = (room, tokens)
            O = c["O"]
            for i in range(12):
                await self.add(O, {"title": "R%d" % i, "value": (i * 37) % 101,
                                   "estimate": ["1", "2", "3", "5", "8"][i % 5]})
            prop = await self.propose(O, "value_effort")
            ok = await O.expect_ok("order.apply", base=prop["base"], method="value_effort")
            self.assertIn("seq", ok)
            _, snap = await self.state_of(O, server=srv)
            self.assertEqual([x["id"] for x in snap["items"]], prop["order"])
            await O.close()
            self.assertEqual(await srv.astop(), 0)
            srv.start()
            back = await self.fresh_snapshot(room, tokens, server=srv)
            self.assertEqual([x["id"] for x in back["items"]], prop["order"])
            self.assertEqual([x["rank"] for x in back["items"]],
                             [x["rank"] for x in snap["items"]])
            x = await self.connect(srv, "again")
            await join(x, room, tokens["owner"], "Oli again")
            again = await self.propose(x, "value_effort")
            self.assertEqual(again["order"], prop["order"])
            ok = await x.expect_ok("order.apply", base=again["base"], method="value_effort")
            self.assertNotIn("seq", ok)       # the order it has
            await x.close()
        finally:
            await srv.astop()


class EqualRankTests(PrioBase):

    async def test_apply_over_equal_stored_ranks_gives_fresh_keys(self):
        """A database whose items share one rank (from before ranks were unique): the open items
        cannot take each other's ranks, so every item gets a fresh key in the new order."""
        srv = Server()
        srv.start()
        try:
            room, tokens, c = await self.room(people=[("O", "owner", "Oli")], server=srv)
            O = c["O"]
            ids = [await self.add(O, {"title": t, "value": v, "estimate": "1"})
                   for t, v in (("A", 10), ("B", 90), ("C", 50))]
            await O.close()
            self.assertEqual(await srv.astop(), 0)
            db = sqlite3.connect(srv.db)
            try:
                db.execute("UPDATE items SET rank = 'a0' WHERE room = ?", (room,))
                db.commit()
            finally:
                db.close()
            srv.start()
            x = await self.connect(srv, "owner-again")
            await join(x, room, tokens["owner"], "Oli")
            self.assertEqual({it["rank"] for it in x.snapshot["items"]}, {"a0"})
            prop = await self.propose(x, "value_effort")
            self.assertEqual(prop["order"], [ids[1], ids[2], ids[0]])
            ok = await x.expect_ok("order.apply", base=prop["base"], method="value_effort")
            ev = (await x.events_until(ok["seq"]))[-1]
            self.assertEqual(ev["t"], "order.applied")
            self.assertEqual(set(ev["ranks"]), set(ids))
            snap = await self.fresh_snapshot(room, tokens, server=srv)
            self.assertEqual([it["id"] for it in snap["items"]], prop["order"])
            ranks = [it["rank"].encode() for it in snap["items"]]
            self.assertEqual(ranks, sorted(set(ranks)))
            await x.close()
        finally:
            await srv.astop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
