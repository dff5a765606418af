#!/usr/bin/python3
"""Vision, personas and outcomes (PROTOCOL.md "Vision, personas and outcomes"), issue #12 part 6:

1. the vision: set by the owner, seen by everyone, partial updates, the same values again
2. personas and outcomes: added, updated, removed, live for the room
3. items refer to a persona and to outcomes; unknown ids refused; split children inherit them
4. removing one that items refer to: conflict without force, cleared in the same event with it
5. adopt: the free-text persona of existing items becomes a reference
6. the items and points behind an outcome, from what a client holds
7. bad input and roles: clear errors, nothing changed
8. a restart keeps everything; the snapshot and the JSON export carry the product
"""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, http_get, join  # noqa: E402
from test_poker import PokerBase  # noqa: E402

VISION_KEYS = ["target", "need", "product", "product_category", "benefit", "alternatives",
               "differentiator"]
TEAM = [("F", "facilitator", "Fay"), ("O", "owner", "Olu"), ("M", "member", "Max"),
        ("W", "observer", "Wes")]


def outcome_totals(snapshot_items, outcome_id):
    """What a client shows behind an outcome: its items (in backlog order) and their points."""
    items = [it for it in snapshot_items if outcome_id in it["outcomes"]]
    pts = 0.0
    for it in items:
        try:
            pts += float(it["estimate"]) if it["estimate"] is not None else 0
        except ValueError:
            pass
    return [it["id"] for it in items], pts


class ProductBase(PokerBase):

    async def change(self, c, op, others=(), **fields):
        """op from c: ok with seq, and the same event at c and every other."""
        ok = await c.expect_ok(op, **fields)
        self.assertIn("seq", ok, "%s changed nothing" % op)
        ev = await c.next_message(pred=lambda m: m.get("seq") == ok["seq"] and m["t"] != "ok")
        for o in others:
            ev2 = await o.next_message(pred=lambda m: m.get("seq") == ok["seq"])
            self.assertEqual(ev2, ev)
        return ok, ev

    async def unchanged(self, c, op, **fields):
        ok = await c.expect_ok(op, **fields)
        self.assertNotIn("seq", ok, "%s changed something" % op)

    async def refused(self, c, code, op, room, tokens, **fields):
        """op refused with code, and the room exactly as it was (its snapshot)."""
        before = await self.fresh_snapshot(room, tokens)
        r = await self.err(c, code, op, **fields)
        after = await self.fresh_snapshot(room, tokens)
        for k in ("seq", "items", "product"):
            self.assertEqual(after[k], before[k], "%s refused (%s) changed %s" % (op, code, k))
        return r["msg"]


class VisionTests(ProductBase):

    async def test_owner_sets_the_vision_everyone_sees_it(self):
        room, tokens, c = await self.team(TEAM)
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["product"], {"vision": {k: "" for k in VISION_KEYS},
                                           "personas": [], "outcomes": []})
        _, ev = await self.change(O, "vision.set", [F, M, W],
                                  vision={"target": "remote Scrum teams",
                                          "need": "refine their backlog together",
                                          "product": "Refine"})
        want = {k: "" for k in VISION_KEYS}
        want.update(target="remote Scrum teams", need="refine their backlog together",
                    product="Refine")
        self.assertEqual(ev["vision"], want)
        self.assertEqual(ev["by"], O.pid)
        _, ev = await self.change(O, "vision.set", [F],
                                  vision={"product_category": "meeting tool", "product": "Refine 2"})
        want.update(product_category="meeting tool", product="Refine 2")
        self.assertEqual(ev["vision"], want)
        await self.unchanged(O, "vision.set", vision={"product_category": "meeting tool"})
        await self.unchanged(O, "vision.set", vision={"alternatives": ""})   # at its default
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["product"]["vision"], want)
        # the product owner owns the vision
        for x in (F, M, W):
            await self.refused(x, "forbidden", "vision.set", room, tokens,
                               vision={"target": "someone else"})
        msg = await self.refused(O, "bad_request", "vision.set", room, tokens,
                                 vision={"need": "x" * 301})
        self.assertIn("need", msg)
        msg = await self.refused(O, "bad_request", "vision.set", room, tokens,
                                 vision={"mission": "world peace"})
        self.assertIn("mission", msg)
        await self.refused(O, "bad_request", "vision.set", room, tokens, vision={})
        await self.refused(O, "bad_request", "vision.set", room, tokens, vision={"target": 5})
        await self.refused(O, "bad_request", "vision.set", room, tokens,
                           vision={"target": "ok", "need": None})


class PersonaOutcomeTests(ProductBase):

    async def test_add_update_remove_live(self):
        room, tokens, c = await self.team(TEAM)
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        ok, ev = await self.change(O, "persona.add", [F, M, W],
                                   persona={"name": "Shopper", "description": "buys weekly",
                                            "goals": ["pay fast", "find again"]})
        self.assertEqual(ok["persona"], "p1")
        self.assertEqual(ev["persona"], {"id": "p1", "name": "Shopper",
                                         "description": "buys weekly",
                                         "goals": ["pay fast", "find again"]})
        self.assertEqual(ev["items"], [])
        ok, ev = await self.change(F, "persona.add", [M], persona={"name": "Clerk"})
        self.assertEqual(ev["persona"], {"id": "p2", "name": "Clerk", "description": "",
                                         "goals": []})
        _, ev = await self.change(F, "persona.update", [O, W], persona="p2",
                                  set={"description": "in the shop", "goals": ["no queue"]})
        self.assertEqual(ev["persona"], {"id": "p2", "name": "Clerk",
                                         "description": "in the shop", "goals": ["no queue"]})
        await self.unchanged(F, "persona.update", persona="p2", set={"name": "Clerk"})
        ok, ev = await self.change(O, "outcome.add", [F, M, W],
                                   outcome={"name": "Fewer abandoned carts",
                                            "metric": "checkout abandonment", "unit": "%",
                                            "current": 34, "target": 20})
        self.assertEqual(ok["outcome"], "o1")
        self.assertEqual(ev["outcome"], {"id": "o1", "name": "Fewer abandoned carts",
                                         "metric": "checkout abandonment", "unit": "%",
                                         "current": 34, "target": 20})
        _, ev = await self.change(O, "outcome.add", [M], outcome={"name": "Faster pages",
                                                                   "current": 2.5})
        self.assertEqual(ev["outcome"], {"id": "o2", "name": "Faster pages", "metric": "",
                                         "unit": "", "current": 2.5, "target": None})
        _, ev = await self.change(F, "outcome.update", [W], outcome="o2",
                                  set={"target": -0.5, "current": None, "unit": "s"})
        self.assertEqual(ev["outcome"], {"id": "o2", "name": "Faster pages", "metric": "",
                                         "unit": "s", "current": None, "target": -0.5})
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual([p["id"] for p in snap["product"]["personas"]], ["p1", "p2"])
        self.assertEqual([o["id"] for o in snap["product"]["outcomes"]], ["o1", "o2"])
        _, ev = await self.change(O, "persona.remove", [F, M, W], persona="p1")
        self.assertEqual((ev["persona"], ev["items"]), ("p1", []))
        _, ev = await self.change(O, "outcome.remove", [M], outcome="o1")
        self.assertEqual((ev["outcome"], ev["items"]), ("o1", []))
        ok, ev = await self.change(O, "persona.add", [], persona={"name": "Shopper"})
        self.assertEqual(ok["persona"], "p3", "ids are never given again")
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual([p["id"] for p in snap["product"]["personas"]], ["p2", "p3"])
        self.assertEqual([o["id"] for o in snap["product"]["outcomes"]], ["o2"])
        for op, f in (("persona.update", {"persona": "p1", "set": {"name": "x"}}),
                      ("persona.remove", {"persona": "p1"}),
                      ("outcome.update", {"outcome": "o9", "set": {"name": "x"}}),
                      ("outcome.remove", {"outcome": "o1", "force": True})):
            await self.refused(O, "not_found", op, room, tokens, **f)

    async def test_roles(self):
        room, tokens, c = await self.team(TEAM)
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        await self.change(O, "persona.add", persona={"name": "Shopper"})
        await self.change(O, "outcome.add", outcome={"name": "Sales up"})
        for x in (M, W):
            for op, f in (("persona.add", {"persona": {"name": "X"}}),
                          ("persona.update", {"persona": "p1", "set": {"name": "X"}}),
                          ("persona.remove", {"persona": "p1"}),
                          ("outcome.add", {"outcome": {"name": "X"}}),
                          ("outcome.update", {"outcome": "o1", "set": {"name": "X"}}),
                          ("outcome.remove", {"outcome": "o1"})):
                await self.refused(x, "forbidden", op, room, tokens, **f)
        # a member points an item at them (as for any item field); an observer cannot
        item = await self.add_item(M, "Pay by card")
        await self.change(M, "item.update", item=item, set={"persona_id": "p1",
                                                            "outcomes": ["o1"]})
        await self.refused(W, "forbidden", "item.update", room, tokens, item=item,
                           set={"persona_id": None})

    async def test_bad_input_changes_nothing(self):
        room, tokens, c = await self.team(TEAM[:2])
        O = c["O"]
        bad_personas = [{}, {"name": ""}, {"name": "n" * 101}, {"name": "A", "description": "d" * 501},
                        {"name": "A", "goals": ["g"] * 6}, {"name": "A", "goals": ["g" * 201]},
                        {"name": "A", "goals": "pay"}, {"name": "A", "age": 30},
                        {"name": "A\x00B"}]
        for p in bad_personas:
            await self.refused(O, "bad_request", "persona.add", room, tokens, persona=p)
        bad_outcomes = [{"name": "A", "current": "34"}, {"name": "A", "target": 10 ** 16},
                        {"name": "A", "target": float("inf")}, {"name": "A", "target": float("nan")},
                        {"name": "A", "unit": "u" * 17}, {"name": "t" * 201}, {"metric": "m"},
                        {"name": "A", "current": True}]
        for o in bad_outcomes:
            await self.refused(O, "bad_request", "outcome.add", room, tokens, outcome=o)
        await self.change(O, "outcome.add", outcome={"name": "Edge", "current": -10 ** 15,
                                                     "target": 10 ** 15})
        await self.refused(O, "bad_request", "outcome.update", room, tokens, outcome="o1",
                           set={})
        await self.refused(O, "bad_request", "outcome.update", room, tokens, outcome="o1",
                           set={"name": None})
        # too many
        for i in range(12):
            await self.change(O, "persona.add", persona={"name": "P%d" % i})
        msg = await self.refused(O, "too_large", "persona.add", room, tokens,
                                 persona={"name": "P13"})
        self.assertIn("12", msg)
        for i in range(19):
            await self.change(O, "outcome.add", outcome={"name": "O%d" % i})
        await self.refused(O, "too_large", "outcome.add", room, tokens, outcome={"name": "O21"})


class ItemReferenceTests(ProductBase):

    async def test_items_refer_and_unknown_ids_are_refused(self):
        room, tokens, c = await self.team(TEAM[:3])
        F, O, M = c["F"], c["O"], c["M"]
        await self.change(O, "persona.add", persona={"name": "Shopper"})
        for n in ("Carts", "Speed"):
            await self.change(O, "outcome.add", outcome={"name": n})
        ok, ev = await self.change(M, "item.add", [F, O],
                                   item={"title": "Saved cards", "persona_id": "p1",
                                         "outcomes": ["o1", "o2"]})
        self.assertEqual((ev["item"]["persona_id"], ev["item"]["outcomes"]), ("p1", ["o1", "o2"]))
        item = ok["item"]
        plain = await self.add_item(M, "Dark mode")
        snap = await self.fresh_snapshot(room, tokens)
        by = {it["id"]: it for it in snap["items"]}
        self.assertEqual((by[plain]["persona_id"], by[plain]["outcomes"]), (None, []))
        cases = [
            ("item.add", {"item": {"title": "X", "persona_id": "p9"}}, "persona 'p9'"),
            ("item.add", {"item": {"title": "X", "outcomes": ["o1", "o7"]}}, "outcome 'o7'"),
            ("item.update", {"item": plain, "set": {"persona_id": "Shopper"}}, "persona"),
            ("item.update", {"item": plain, "set": {"outcomes": ["o2", "o2"]}}, "twice"),
            ("item.update", {"item": plain, "set": {"outcomes": ["o1"] * 11}}, "outcomes"),
            ("item.update", {"item": plain, "set": {"persona_id": ""}}, "persona_id"),
            ("item.split", {"item": item, "children": [{"title": "a"},
                                                       {"title": "b", "outcomes": ["o3"]}]},
             "o3"),
        ]
        for op, f, word in cases:
            msg = await self.refused(M, "bad_request", op, room, tokens, **f)
            self.assertIn(word, msg, op)
        _, ev = await self.change(M, "item.update", [F], item=plain,
                                  set={"persona_id": "p1", "outcomes": ["o2"]})
        await self.unchanged(M, "item.update", item=plain, set={"outcomes": ["o2"]})
        await self.change(M, "item.update", item=plain, set={"persona_id": None, "outcomes": []})
        # split children inherit the persona and the outcomes unless they give their own
        _, ev = await self.change(M, "item.split", [O], item=item,
                                  children=[{"title": "Save"}, {"title": "Use", "outcomes": ["o1"],
                                                                "persona_id": None}])
        kids = ev["children"]
        self.assertEqual((kids[0]["persona_id"], kids[0]["outcomes"]), ("p1", ["o1", "o2"]))
        self.assertEqual((kids[1]["persona_id"], kids[1]["outcomes"]), (None, ["o1"]))

    async def test_removing_a_referenced_one(self):
        room, tokens, c = await self.team(TEAM[:3])
        F, O, M = c["F"], c["O"], c["M"]
        await self.change(O, "persona.add", persona={"name": "Shopper"})
        await self.change(O, "outcome.add", outcome={"name": "Carts"})
        await self.change(O, "outcome.add", outcome={"name": "Speed"})
        a = (await M.expect_ok("item.add", item={"title": "A", "persona_id": "p1",
                                                 "outcomes": ["o1", "o2"]}))["item"]
        b = (await M.expect_ok("item.add", item={"title": "B", "outcomes": ["o2", "o1"]}))["item"]
        d = (await M.expect_ok("item.add", item={"title": "D", "outcomes": ["o2"]}))["item"]
        msg = await self.refused(O, "conflict", "outcome.remove", room, tokens, outcome="o1")
        self.assertIn("2 items", msg)
        self.assertIn("force", msg)
        msg = await self.refused(O, "conflict", "persona.remove", room, tokens, persona="p1",
                                 force=False)
        self.assertIn("1 item refers", msg)
        _, ev = await self.change(O, "outcome.remove", [F, M], outcome="o1", force=True)
        self.assertEqual(ev["items"], [a, b])
        _, ev = await self.change(F, "persona.remove", [O, M], persona="p1", force=True)
        self.assertEqual(ev["items"], [a])
        snap = await self.fresh_snapshot(room, tokens)
        by = {it["id"]: it for it in snap["items"]}
        self.assertEqual((by[a]["persona_id"], by[a]["outcomes"]), (None, ["o2"]))
        self.assertEqual(by[b]["outcomes"], ["o2"])
        self.assertEqual(by[d]["outcomes"], ["o2"])
        self.assertEqual([o["id"] for o in snap["product"]["outcomes"]], ["o2"])
        self.assertEqual(snap["product"]["personas"], [])

    async def test_adopt_turns_free_text_into_references(self):
        room, tokens, c = await self.team(TEAM[:3])
        F, O, M = c["F"], c["O"], c["M"]
        await self.change(O, "persona.add", persona={"name": "Clerk"})
        ids = {}
        for title, text, pid in (("A", "Shopper", None), ("B", "  shopper ", None),
                                 ("C", "Shopper", "p1"), ("D", "Shoppers", None), ("E", "", None)):
            item = {"title": title, "persona": text}
            if pid:
                item["persona_id"] = pid
            ids[title] = (await M.expect_ok("item.add", item=item))["item"]
        ok, ev = await self.change(O, "persona.add", [F, M], persona={"name": "SHOPPER"},
                                   adopt=True)
        self.assertEqual(ev["items"], [ids["A"], ids["B"]])
        snap = await self.fresh_snapshot(room, tokens)
        by = {it["id"]: it for it in snap["items"]}
        got = {t: (by[i]["persona_id"], by[i]["persona"]) for t, i in ids.items()}
        self.assertEqual(got, {"A": ("p2", "Shopper"), "B": ("p2", "  shopper "),
                               "C": ("p1", "Shopper"), "D": (None, "Shoppers"), "E": (None, "")})
        # without adopt, nothing is touched
        _, ev = await self.change(O, "persona.add", persona={"name": "Shoppers"})
        self.assertEqual(ev["items"], [])

    async def test_items_and_points_behind_an_outcome(self):
        room, tokens, c = await self.team(TEAM[:3])
        F, O, M = c["F"], c["O"], c["M"]
        await self.change(O, "outcome.add", outcome={"name": "Carts", "current": 34,
                                                     "target": 20, "unit": "%"})
        a = (await M.expect_ok("item.add", item={"title": "A", "outcomes": ["o1"],
                                                 "estimate": "3"}))["item"]
        b = (await M.expect_ok("item.add", item={"title": "B", "outcomes": ["o1"]}))["item"]
        await M.expect_ok("item.add", item={"title": "C", "estimate": "8"})
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(outcome_totals(snap["items"], "o1"), ([a, b], 3.0))
        # an estimate accepted in poker moves the points at once (an item.updated event)
        rid, _ = await self.start_round(F, b)
        await self.vote(M, rid, "5")
        await self.reveal(F, rid)
        await F.expect_ok("round.accept", round=rid, estimate="5")
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(outcome_totals(snap["items"], "o1"), ([a, b], 8.0))


class PersistenceTests(ProductBase):

    async def test_restart_keeps_everything_and_export(self):
        srv = Server()
        srv.start()
        try:
            room, tokens, c = await self.team(TEAM[:3], server=srv)
            O, M = c["O"], c["M"]
            await self.change(O, "vision.set", vision={k: k.upper() for k in VISION_KEYS})
            await self.change(O, "persona.add", persona={"name": "Gone"})
            await self.change(O, "persona.add", persona={"name": "Shopper",
                                                         "goals": ["pay fast"]})
            await self.change(O, "persona.remove", persona="p1")
            await self.change(O, "outcome.add", outcome={"name": "Carts", "current": 34.5,
                                                         "target": 20, "unit": "%"})
            item = (await M.expect_ok("item.add", item={"title": "A", "persona_id": "p2",
                                                        "outcomes": ["o1"]}))["item"]
            before = await self.fresh_snapshot(room, tokens, server=srv)
            self.assertEqual(await srv.astop(), 0)
            srv.start()
            after = await self.fresh_snapshot(room, tokens, server=srv)
            self.assertEqual(after["product"], before["product"])
            self.assertEqual(after["items"], before["items"])
            self.assertEqual(after["product"]["outcomes"][0]["current"], 34.5)
            O2 = await self.connect(srv, "O2")
            await join(O2, room, tokens["owner"], "Olu")
            ok = await O2.expect_ok("persona.add", persona={"name": "New"})
            self.assertEqual(ok["persona"], "p3", "the id counter survives the restart")
            status, _, body = http_get(srv.port, "/api/rooms/%s/export?format=json" % room,
                                       headers={"Authorization": "Bearer " + tokens["owner"]})
            self.assertEqual(status, 200)
            exp = json.loads(body)
            self.assertEqual(exp["product"]["vision"], {k: k.upper() for k in VISION_KEYS})
            self.assertEqual([p["name"] for p in exp["product"]["personas"]], ["Shopper", "New"])
            self.assertEqual(exp["product"]["outcomes"][0]["target"], 20)
            self.assertEqual([(i["id"], i["persona_id"], i["outcomes"]) for i in exp["items"]],
                             [(item, "p2", ["o1"])])
            status, _, body = http_get(srv.port, "/api/rooms/%s/export?format=csv" % room,
                                       headers={"Authorization": "Bearer " + tokens["owner"]})
            self.assertEqual(status, 200)
            await O2.close()
            for x in c.values():
                await x.close()
        finally:
            await srv.astop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
