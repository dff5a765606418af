#!/usr/bin/python3
"""Story map (PROTOCOL.md: "Story map"), issue #12 part 5, through real WebSocket clients:

1. building a map (activities, steps, slices; order by `after`; rename; capacity; moves, a step
   to another activity), every event seen by every client in the same order
2. placing and moving items (members too), each move seen by all in the same order, also when
   two clients move at once; cards in a cell in rank order
3. removing an activity, step or slice that holds items: refused without `force`, done with it
   (its items unplaced in the same event)
4. bad placements and bad input: clear errors, nothing changed; limits
5. each slice's points against its capacity and its unestimated items (snapshot and export)
6. a restart keeps the map and the placements
7. roles
"""

import asyncio
import json
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, http_get, join  # noqa: E402
from test_poker import PokerBase  # noqa: E402

MAP_EVENTS = ("map.added", "map.updated", "map.moved", "map.removed", "map.placed")


def apply_map(m, ev):
    """A client's model of the map, from the PROTOCOL.md rules (independent of the server)."""
    keys = {"activity": "activities", "step": "steps", "slice": "slices"}
    t = ev["t"]
    if t == "map.added":
        lst = m[keys[ev["kind"]]]
        node = dict(ev["node"])
        sib = [n for n in lst if ev["kind"] != "step" or n["activity"] == node["activity"]]
        if ev["after"] is None:
            at = lst.index(sib[0]) if sib else len(lst)
        else:
            at = next(i for i, n in enumerate(lst) if n["id"] == ev["after"]) + 1
        lst.insert(at, node)
    elif t == "map.updated":
        lst = m[keys[ev["kind"]]]
        n = next(n for n in lst if n["id"] == ev["node"]["id"])
        n.update(ev["node"])
    elif t == "map.moved":
        lst = m[keys[ev["kind"]]]
        n = next(n for n in lst if n["id"] == ev["node"])
        lst.remove(n)
        if ev["kind"] == "step":
            n["activity"] = ev["activity"]
        sib = [x for x in lst if ev["kind"] != "step" or x["activity"] == n["activity"]]
        if ev["after"] is None:
            at = lst.index(sib[0]) if sib else len(lst)
        else:
            at = next(i for i, x in enumerate(lst) if x["id"] == ev["after"]) + 1
        lst.insert(at, n)
    elif t == "map.removed":
        gone = {ev["node"], *ev["steps"]}
        for k in keys.values():
            m[k] = [n for n in m[k] if n["id"] not in gone]
    return m


def structure(m):
    """The map without the slices' figures."""
    return {
        "activities": m["activities"],
        "steps": m["steps"],
        "slices": [{k: s[k] for k in ("id", "name", "capacity")} for s in m["slices"]],
    }


class MapBase(PokerBase):

    async def change(self, c, op, others=(), **fields):
        """op by c; returns its event, checked identical at every other client."""
        ok = await c.expect_ok(op, **fields)
        self.assertIn("seq", ok, "%s %r changed nothing" % (op, fields))
        ev = await c.next_message(pred=lambda m: m.get("seq") == ok["seq"])
        self.assertIn(ev["t"], MAP_EVENTS)
        self.assertEqual(ev["by"], c.pid)
        for o in others:
            ev2 = await o.next_message(pred=lambda m: m.get("seq") == ok["seq"])
            self.assertEqual(ev2, ev, o.label)
        return ev

    async def add(self, c, kind, name, others=(), **kw):
        ev = await self.change(c, "map.add", others, kind=kind, name=name, **kw)
        self.assertEqual(ev["kind"], kind)
        self.assertEqual(ev["node"]["name"], name)
        return ev["node"]["id"], ev

    async def place(self, c, item, step, slice_, others=()):
        ev = await self.change(c, "map.place", others, item=item, step=step, slice=slice_)
        self.assertEqual((ev["item"], ev["step"], ev["slice"]), (item, step, slice_))
        return ev

    async def small_map(self, F, others=()):
        """Two activities with two steps each, two slices. Returns ids."""
        a1, _ = await self.add(F, "activity", "Browse", others)
        a2, _ = await self.add(F, "activity", "Buy", others)
        s11, _ = await self.add(F, "step", "Search", others, activity=a1)
        s12, _ = await self.add(F, "step", "Filter", others, activity=a1)
        s21, _ = await self.add(F, "step", "Pay", others, activity=a2)
        s22, _ = await self.add(F, "step", "Ship", others, activity=a2)
        r1, _ = await self.add(F, "slice", "Walking skeleton", others, capacity=10)
        r2, _ = await self.add(F, "slice", "Release 2", others)
        return dict(a1=a1, a2=a2, s11=s11, s12=s12, s21=s21, s22=s22, r1=r1, r2=r2)

    async def items_of(self, room, tokens):
        snap = await self.fresh_snapshot(room, tokens)
        return snap, {i["id"]: i for i in snap["items"]}


class BuildTests(MapBase):

    async def test_build_order_rename_move(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M", "member", "Max"),
            ("W", "observer", "Wes")])
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["map"], {"activities": [], "steps": [], "slices": []})
        model = {"activities": [], "steps": [], "slices": []}
        start = snap["seq"]
        ids = await self.small_map(F, [O, M, W])
        # nil: first; an id: below it; steps ordered within their activity
        a0, ev = await self.add(O, "activity", "Sign up", [F, M, W], after=None)
        self.assertIsNone(ev["after"])
        s0, ev = await self.add(O, "step", "Compare", [F, M, W], activity=ids["a1"],
                                after=ids["s11"])
        self.assertEqual(ev["after"], ids["s11"])
        self.assertEqual(ev["node"], {"id": s0, "name": "Compare", "activity": ids["a1"]})
        s00, ev = await self.add(F, "step", "Register", [O, M, W], activity=a0)
        self.assertIsNone(ev["after"], "the first step of its activity")
        ev = await self.change(O, "map.update", [F, M, W], node=ids["r2"], capacity=8)
        self.assertEqual(ev["node"], {"id": ids["r2"], "name": "Release 2", "capacity": 8})
        ev = await self.change(F, "map.update", [O, M, W], node=ids["a2"], name="Purchase")
        self.assertEqual((ev["kind"], ev["node"]["name"]), ("activity", "Purchase"))
        same = await F.expect_ok("map.update", node=ids["a2"], name="Purchase")
        self.assertNotIn("seq", same, "the same name again changes nothing")
        # moves: a slice up, an activity last, a step to another activity
        ev = await self.change(O, "map.move", [F, M, W], node=ids["r2"], after=None)
        self.assertEqual((ev["kind"], ev["after"], ev["activity"]), ("slice", None, None))
        ev = await self.change(F, "map.move", [O, M, W], node=a0, after=ids["a2"])
        ev = await self.change(F, "map.move", [O, M, W], node=ids["s22"], after=None,
                               activity=ids["a1"])
        self.assertEqual((ev["activity"], ev["after"]), (ids["a1"], None))
        same = await F.expect_ok("map.move", node=ids["s22"], after=None)
        self.assertNotIn("seq", same, "already there")
        # every client's model from the events equals the snapshot
        for x in (F, O, M, W):
            m = {"activities": [], "steps": [], "slices": []}
            for e in [e for e in x.all if e.get("t") in MAP_EVENTS]:
                apply_map(m, e)
            model = m if x is F else model
            self.assertEqual(m, model, x.label)
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(structure(snap["map"]), model)
        self.assertEqual([a["name"] for a in model["activities"]], ["Browse", "Purchase", "Sign up"])
        self.assertEqual([(s["name"], s["activity"]) for s in model["steps"]
                          if s["activity"] == ids["a1"]],
                         [("Ship", ids["a1"]), ("Search", ids["a1"]), ("Compare", ids["a1"]),
                          ("Filter", ids["a1"])])
        self.assertEqual([s["name"] for s in model["slices"]], ["Release 2", "Walking skeleton"])
        self.assertEqual([s["capacity"] for s in model["slices"]], [8, 10])
        # a replay from the start brings the same events
        R = await self.connect(self.server, "replay")
        rr = await join(R, room, tokens["member"], "Rae", since=start)
        self.assertEqual(rr["mode"], "replay")
        m = {"activities": [], "steps": [], "slices": []}
        for e in await R.events_until(rr["seq"]):
            if e.get("t") in MAP_EVENTS:
                apply_map(m, e)
        self.assertEqual(m, model)
        self.assertIn(s00, [s["id"] for s in model["steps"]])


class PlaceTests(MapBase):

    async def test_place_and_move_seen_by_all_in_order(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M", "member", "Max"),
            ("W", "observer", "Wes")])
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        ids = await self.small_map(O, [F, M, W])
        items = [await self.add_item(F, "Story %d" % i) for i in range(6)]
        await self.place(O, items[0], ids["s11"], ids["r1"], [F, M, W])
        await self.place(M, items[1], ids["s11"], ids["r1"], [F, O, W])   # members place
        await self.place(M, items[1], ids["s21"], ids["r2"], [F, O, W])   # and move
        same = await M.expect_ok("map.place", item=items[1], step=ids["s21"], slice=ids["r2"])
        self.assertNotIn("seq", same, "the same place again changes nothing")
        await self.err(W, "forbidden", "map.place", item=items[2], step=ids["s11"],
                       slice=ids["r1"])
        # many moves at once from three clients: every client sees the same order of events
        futs = []
        cells = [(s, r) for s in ("s11", "s12", "s21", "s22") for r in ("r1", "r2")]
        for n in range(24):
            who = (F, O, M)[n % 3]
            s, r = cells[(n * 5) % len(cells)]
            futs.append(who.send_request("map.place", item=items[n % 6], step=ids[s],
                                         slice=ids[r]))
        replies = await asyncio.gather(*futs)
        last = max(r["seq"] for r in replies if "seq" in r)
        seen = {}
        for x in (F, O, M, W):
            evs = [e for e in await x.events_until(last) if e.get("t") == "map.placed"]
            seen[x.label] = [(e["seq"], e["item"], e["step"], e["slice"]) for e in evs]
        self.assertEqual(len({tuple(v) for v in seen.values()}), 1, seen)
        final = {}
        for _, it, s, r in seen["F"]:
            final[it] = (s, r)
        snap, by_id = await self.items_of(room, tokens)
        for it, (s, r) in final.items():
            self.assertEqual((by_id[it]["step"], by_id[it]["slice"]), (s, r))
        # unplace; the item fields are nil
        await self.place(F, items[0], None, None, [O, M, W])
        snap, by_id = await self.items_of(room, tokens)
        self.assertEqual((by_id[items[0]]["step"], by_id[items[0]]["slice"]), (None, None))
        # a cell's cards are in rank order: moving an item in the backlog reorders its cell
        await self.place(F, items[3], ids["s12"], ids["r2"])
        await self.place(F, items[4], ids["s12"], ids["r2"])
        await O.expect_ok("item.move", item=items[4], after=None)
        snap, _ = await self.items_of(room, tokens)
        cell = [i["id"] for i in snap["items"]
                if (i["step"], i["slice"]) == (ids["s12"], ids["r2"])]
        self.assertEqual(cell[0], items[4])

    async def test_bad_placements_change_nothing(self):
        room, tokens, c = await self.team([("F", "facilitator", "Fay"), ("M", "member", "Max")])
        F, M = c["F"], c["M"]
        ids = await self.small_map(F)
        item = await self.add_item(F, "Saved cards")
        await self.place(F, item, ids["s11"], ids["r1"])
        seq = (await F.expect_ok("focus", item=item))["seq"]
        bad = [
            ("not_found", dict(item=item, step="s999", slice=ids["r1"])),
            ("not_found", dict(item=item, step=ids["s11"], slice="r999")),
            ("not_found", dict(item=item, step=ids["r1"], slice=ids["r2"])),   # a slice as step
            ("not_found", dict(item=item, step=ids["s12"], slice=ids["s11"])),  # a step as slice
            ("not_found", dict(item=item, step=ids["a1"], slice=ids["r1"])),   # an activity
            ("not_found", dict(item="i999", step=ids["s11"], slice=ids["r1"])),
            ("bad_request", dict(item=item, step=ids["s11"], slice=None)),
            ("bad_request", dict(item=item, step=None, slice=ids["r1"])),
            ("bad_request", dict(item=item, step=ids["s11"])),
            ("bad_request", dict(item=item, step=5, slice=ids["r1"])),
            ("bad_request", dict(step=ids["s11"], slice=ids["r1"])),
        ]
        for code, fields in bad:
            r = await self.err(M, code, "map.place", **fields)
            if fields.get("step") == "s999":
                self.assertIn("s999", r["msg"])
        # the placement fields belong to map.place only
        await self.err(M, "bad_request", "item.update", item=item, set={"step": ids["s12"]})
        await self.err(M, "bad_request", "item.add", item={"title": "x", "slice": ids["r1"]})
        bad_map = [
            ("bad_request", "map.add", dict(kind="lane", name="x")),
            ("bad_request", "map.add", dict(kind="step", name="x")),   # no activity
            ("not_found", "map.add", dict(kind="step", name="x", activity=ids["s11"])),
            ("bad_request", "map.add", dict(kind="activity", name="x", activity=ids["a1"])),
            ("bad_request", "map.add", dict(kind="activity", name="x", capacity=3)),
            ("bad_request", "map.add", dict(kind="slice", name="")),
            ("bad_request", "map.add", dict(kind="slice", name="x" * 101)),
            ("bad_request", "map.add", dict(kind="slice", name="x", capacity=10001)),
            ("not_found", "map.add", dict(kind="slice", name="x", after=ids["a1"])),
            ("bad_request", "map.add", dict(kind="step", name="x", activity=ids["a1"],
                                            after=ids["s21"])),   # a step of another activity
            ("bad_request", "map.update", dict(node=ids["a1"])),
            ("bad_request", "map.update", dict(node=ids["s11"], capacity=4)),
            ("not_found", "map.update", dict(node="zz", name="x")),
            ("bad_request", "map.move", dict(node=ids["s11"])),
            ("bad_request", "map.move", dict(node=ids["s11"], after=ids["s11"])),
            ("not_found", "map.move", dict(node=ids["s11"], after=None, activity=ids["r1"])),
            ("bad_request", "map.move", dict(node=ids["r1"], after=None, activity=ids["a1"])),
            ("not_found", "map.remove", dict(node="a999")),
            ("bad_request", "map.remove", dict(node=ids["r1"], force="yes")),
        ]
        for code, op, fields in bad_map:
            await self.err(F, code, op, **fields)
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["seq"], seq, "no bad request made an event")
        [it] = snap["items"]
        self.assertEqual((it["step"], it["slice"]), (ids["s11"], ids["r1"]))

    async def test_limits(self):
        room, tokens, c = await self.team([("F", "facilitator", "Fay")])
        F = c["F"]
        for i in range(10):
            await self.add(F, "slice", "Slice %d" % i)
        r = await self.err(F, "too_large", "map.add", kind="slice", name="One more")
        self.assertIn("10", r["msg"])
        acts = [(await self.add(F, "activity", "A%d" % i))[0] for i in range(20)]
        await self.err(F, "too_large", "map.add", kind="activity", name="One more")
        for i in range(100):
            await self.add(F, "step", "S%d" % i, activity=acts[i % 20])
        await self.err(F, "too_large", "map.add", kind="step", name="x", activity=acts[0])
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual([len(snap["map"][k]) for k in ("activities", "steps", "slices")],
                         [20, 100, 10])


class RemoveTests(MapBase):

    async def test_removal_with_items_needs_force(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M", "member", "Max")])
        F, O, M = c["F"], c["O"], c["M"]
        ids = await self.small_map(F, [O, M])
        items = [await self.add_item(F, "Story %d" % i) for i in range(5)]
        await self.place(F, items[0], ids["s11"], ids["r1"])
        await self.place(F, items[1], ids["s12"], ids["r2"])
        await self.place(F, items[2], ids["s21"], ids["r1"])
        await self.place(F, items[3], ids["s21"], ids["r2"])
        before = await self.fresh_snapshot(room, tokens)
        for id_, n in ((ids["a1"], 2), (ids["s21"], 2), (ids["r1"], 2)):
            r = await self.err(O, "conflict", "map.remove", node=id_)
            self.assertIn("%d items" % n, r["msg"])
            self.assertIn("force", r["msg"])
            await self.err(O, "conflict", "map.remove", node=id_, force=False)
        await self.err(M, "forbidden", "map.remove", node=ids["s22"])
        after = await self.fresh_snapshot(room, tokens)
        self.assertEqual(after["seq"], before["seq"])
        self.assertEqual(after["map"], before["map"])
        # an empty step goes without the flag
        ev = await self.change(O, "map.remove", [F, M], node=ids["s22"])
        self.assertEqual((ev["kind"], ev["steps"], ev["unplaced"]), ("step", [], []))
        # an activity with the flag: its steps go, its items are unplaced in the same event
        ev = await self.change(O, "map.remove", [F, M], node=ids["a1"], force=True)
        self.assertEqual(ev["kind"], "activity")
        self.assertEqual(ev["steps"], [ids["s11"], ids["s12"]])
        self.assertEqual(ev["unplaced"], [items[0], items[1]])
        ev = await self.change(F, "map.remove", [O, M], node=ids["r2"], force=True)
        self.assertEqual(ev["unplaced"], [items[3]])
        snap, by_id = await self.items_of(room, tokens)
        placed = {i: (by_id[i]["step"], by_id[i]["slice"]) for i in items}
        self.assertEqual(placed, {items[0]: (None, None), items[1]: (None, None),
                                  items[2]: (ids["s21"], ids["r1"]), items[3]: (None, None),
                                  items[4]: (None, None)})
        self.assertEqual([a["id"] for a in snap["map"]["activities"]], [ids["a2"]])
        self.assertEqual([s["id"] for s in snap["map"]["steps"]], [ids["s21"]])
        self.assertEqual([s["id"] for s in snap["map"]["slices"]], [ids["r1"]])
        await self.err(M, "not_found", "map.place", item=items[0], step=ids["s11"],
                       slice=ids["r1"])

    async def test_split_children_inherit_the_cell(self):
        room, tokens, c = await self.team([("F", "facilitator", "Fay"), ("O", "owner", "Olga")])
        F, O = c["F"], c["O"]
        ids = await self.small_map(F, [O])
        story, loose = await self.add_item(F, "Checkout"), await self.add_item(F, "Loose")
        await self.place(F, story, ids["s21"], ids["r1"])
        ok = await F.expect_ok("item.split", item=story,
                               children=[{"title": "Card"}, {"title": "Invoice"}])
        ev = await O.next_message(pred=lambda m: m.get("seq") == ok["seq"])
        self.assertEqual([(k["step"], k["slice"]) for k in ev["children"]],
                         [(ids["s21"], ids["r1"])] * 2)
        ok = await F.expect_ok("item.split", item=loose, children=[{"title": "L1"}])
        ev = await O.next_message(pred=lambda m: m.get("seq") == ok["seq"])
        self.assertEqual((ev["children"][0]["step"], ev["children"][0]["slice"]), (None, None))
        snap, by_id = await self.items_of(room, tokens)
        kids = [i for i in by_id.values() if i.get("parent") == story]
        self.assertEqual([(k["step"], k["slice"]) for k in kids], [(ids["s21"], ids["r1"])] * 2)


class PointsTests(MapBase):

    async def test_points_capacity_unestimated_and_export(self):
        room, tokens, c = await self.team([("F", "facilitator", "Fay"), ("O", "owner", "Olga")])
        F, O = c["F"], c["O"]
        ids = await self.small_map(O)
        est = ["3", "5", "½", None, "?", "8", "13"]
        items = []
        for i, e in enumerate(est):
            fields = {"title": "Story %d" % i}
            if e is not None:
                fields["estimate"] = e
            items.append((await F.expect_ok("item.add", item=fields))["item"])
        for i in range(4):   # r1: 3 + 5 + ½ and one unestimated
            await self.place(F, items[i], ids["s11"], ids["r1"])
        await self.place(F, items[4], ids["s21"], ids["r2"])   # "?" counts as unestimated
        await self.place(F, items[5], ids["s22"], ids["r2"])
        await self.place(F, items[6], ids["s22"], ids["r2"])
        snap = await self.fresh_snapshot(room, tokens)
        r1, r2 = snap["map"]["slices"]
        self.assertEqual((r1["points"], r1["capacity"], r1["unestimated"]), (8.5, 10, [items[3]]))
        self.assertEqual((r2["points"], r2["capacity"], r2["unestimated"]), (21, None, [items[4]]))
        # the owner sets a capacity; an estimate accepted later counts at once
        await self.change(O, "map.update", node=ids["r2"], capacity=20)
        await F.expect_ok("item.update", item=items[4], set={"estimate": "2"})
        await F.expect_ok("item.update", item=items[3], set={"estimate": "1"})
        snap = await self.fresh_snapshot(room, tokens)
        r1, r2 = snap["map"]["slices"]
        self.assertEqual((r1["points"], r1["unestimated"]), (9.5, []))
        self.assertEqual((r2["points"], r2["capacity"], r2["unestimated"]), (23, 20, []))
        # a split parent counts in no slice: its children stand for it
        await F.expect_ok("item.split", item=items[6], children=[{"title": "Half A"},
                                                                 {"title": "Half B"}])
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["map"]["slices"][1]["points"], 10)
        # the JSON export carries the map with its figures
        status, _, body = http_get(self.server.port, "/api/rooms/%s/export?format=json" % room,
                                   headers={"Authorization": "Bearer " + tokens["owner"]})
        self.assertEqual(status, 200, body[:300])
        exported = json.loads(body)
        self.assertEqual(exported["map"], snap["map"])
        by_id = {i["id"]: i for i in exported["items"]}
        self.assertEqual((by_id[items[0]]["step"], by_id[items[0]]["slice"]),
                         (ids["s11"], ids["r1"]))
        status, _, body = http_get(self.server.port, "/api/rooms/%s/export?format=csv" % room,
                                   headers={"Authorization": "Bearer " + tokens["owner"]})
        self.assertEqual(status, 200)


class RoleTests(MapBase):

    async def test_roles(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M", "member", "Max"),
            ("W", "observer", "Wes")])
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        a, _ = await self.add(O, "activity", "Browse")
        s, _ = await self.add(F, "step", "Search", activity=a)
        r, _ = await self.add(O, "slice", "MVP")
        item = await self.add_item(F)
        for x in (M, W):
            await self.err(x, "forbidden", "map.add", kind="activity", name="x")
            await self.err(x, "forbidden", "map.update", node=a, name="x")
            await self.err(x, "forbidden", "map.update", node=r, capacity=5)
            await self.err(x, "forbidden", "map.move", node=a, after=None)
            await self.err(x, "forbidden", "map.remove", node=s)
        await self.err(W, "forbidden", "map.place", item=item, step=s, slice=r)
        await self.place(M, item, s, r)


class RestartTests(MapBase):

    async def test_map_survives_restart(self):
        srv = Server()
        srv.start()
        try:
            room, tokens, c = await self.team([("F", "facilitator", "Fay"),
                                               ("O", "owner", "Olga")], server=srv)
            F, O = c["F"], c["O"]
            ids = await self.small_map(O)
            await self.change(O, "map.update", node=ids["r2"], capacity=13)
            await self.change(O, "map.move", node=ids["s12"], after=None)
            items = [await self.add_item(F, "Story %d" % i) for i in range(3)]
            await self.place(F, items[0], ids["s11"], ids["r1"])
            await self.place(F, items[1], ids["s22"], ids["r2"])
            before = await self.fresh_snapshot(room, tokens, server=srv)
            self.assertEqual(await srv.astop(), 0)
            srv.start()
            after = await self.fresh_snapshot(room, tokens, server=srv)
            self.assertEqual(after["map"], before["map"])
            self.assertEqual(after["items"], before["items"])
            # ids keep counting after the restart: a new node never reuses one
            F2 = await self.joined(srv, room, tokens["facilitator"], "Fay again")
            nid, _ = await self.add(F2, "activity", "Later")
            self.assertNotIn(nid, [ids[k] for k in ids])
            await self.place(F2, items[2], ids["s12"], ids["r1"])
            ev = await self.change(F2, "map.remove", node=ids["r2"], force=True)
            self.assertEqual(ev["unplaced"], [items[1]])
            await F2.close()
        finally:
            await srv.astop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
