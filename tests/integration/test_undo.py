#!/usr/bin/python3
"""Undo and item.unsplit (PROTOCOL.md "Undo", "item.unsplit"), issue #12 parts 7 and 1:

1. undo of each covered op (item.add, item.update, item.move, item.remove, item.split)
   restores the exact previous state, as every client sees it, in a fresh snapshot and after
   a restart; the inverse events carry `undo: <seq undone>` and are ordinary item events
2. refused (conflict) after someone else's change on top, naming them; "You changed" for one's
   own later change; nothing to undo after an undo (no redo), or before any change
3. one record per participant: the older change is not undoable after a newer one; `seq`
   guards a stale client; observers may not undo; undo history does not survive a restart
4. item.unsplit: untouched -> merged back (status and focus restored); a child edited, moved,
   removed, estimated, with a poker round open or Kano answers -> refused, naming what changed
5. the other parts' changes to an item are changes on top (its version): order.apply (a new
   rank), map.place and map.remove with force (its cell), persona.add with adopt and
   persona/outcome.remove with force (its persona_id/outcomes); an undo after one is refused
   naming who, and so is item.unsplit after a child was placed on the map or reordered
"""

import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, join  # noqa: E402
from test_poker import PokerBase  # noqa: E402

PEOPLE = [("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M", "member", "Max"),
          ("W", "observer", "Wes")]


def view(state):
    """What a room looks like (RoomState.comparable without seq and participants)."""
    c = state.comparable(with_participants=False)
    del c["seq"]
    return c


class UndoBase(PokerBase):

    async def setup_room(self, server=None):
        room, tokens, c = await self.team(PEOPLE, server=server)
        ids = {}
        for title in ("Alpha", "Bravo", "Charlie", "Delta"):
            ids[title] = await self.add_item(c["F"], title)
        await self.sync(c)
        return room, tokens, c, ids

    async def sync(self, c, seq=None):
        """Every client applies the events it received up to seq (by default the newest any
        client has received), from everything it received (tests take events from inboxes)."""
        import asyncio
        if seq is None:
            seq = max([x.state.seq for x in c.values()] +
                      [m["seq"] for x in c.values() for m in x.seen_events()])
        for x in c.values():
            for _ in range(500):
                if any(m["seq"] >= seq for m in x.seen_events()) or x.state.seq >= seq:
                    break
                await asyncio.sleep(0.01)
            for ev in x.seen_events():
                if x.state.seq < ev["seq"] <= seq:
                    x.state.apply(ev)
            self.assertEqual(x.state.seq, seq, x.label)
        return seq

    async def estimate(self, c, item, card, by="F"):
        """A round on item: Fay votes, reveals; `by` accepts card."""
        rd, _ = await self.start_round(c["F"], item)
        await c["F"].expect_ok("vote", round=rd, card=card)
        await c["F"].expect_ok("round.reveal", round=rd)
        return await c[by].expect_ok("round.accept", round=rd, estimate=card)

    async def fresh_view(self, room, tokens, server=None):
        from harness import RoomState
        return view(RoomState(await self.fresh_snapshot(room, tokens, server=server)))

    async def change_and_undo(self, c, room, tokens, who, op, **fields):
        """who does op, then undoes it: returns (ok of the change, ok of the undo, the undo's
        events); asserts every client and a fresh snapshot see the state from before."""
        await self.sync(c)
        before = view(c[who].state)
        self.assertEqual(await self.fresh_view(room, tokens), before)
        ok = await c[who].expect_ok(op, **fields)
        self.assertIn("seq", ok)
        await self.sync(c, ok["seq"])
        self.assertNotEqual(view(c["F"].state), before, op + " changed nothing")
        u = await c[who].expect_ok("undo", seq=ok["seq"])
        await self.sync(c, u["seq"])
        undo_events = [m for m in c["W"].seen_events() if m["seq"] > ok["seq"]]
        for ev in undo_events:
            if ev["t"] != "items.reranked":
                self.assertEqual(ev.get("undo"), ok["seq"], ev)
            self.assertEqual(ev["by"], c[who].pid)
        for k, x in c.items():
            self.assertEqual(view(x.state), before, "%s after undoing %s" % (k, op))
        self.assertEqual(await self.fresh_view(room, tokens), before, "snapshot after undo")
        return ok, u, undo_events


class UndoEachOp(UndoBase):

    async def test_undo_of_each_covered_op_restores_the_state(self):
        room, tokens, c, ids = await self.setup_room()
        A, B, C, D = ids["Alpha"], ids["Bravo"], ids["Charlie"], ids["Delta"]
        # item.add (in the middle): the undo removes it
        ok, u, evs = await self.change_and_undo(c, room, tokens, "O", "item.add",
                                                item={"title": "Echo", "labels": ["x"]}, after=B)
        self.assertEqual([e["t"] for e in evs], ["item.removed"])
        # item.update of several fields: the undo sets the values before
        await c["O"].expect_ok("item.update", item=B, set={"notes": "old notes", "value": 5})
        ok, u, evs = await self.change_and_undo(
            c, room, tokens, "M", "item.update", item=B,
            set={"title": "Bravo 2", "notes": "", "value": None, "labels": ["a", "b"],
                 "estimate": "5", "moscow": "must"})
        self.assertEqual([e["t"] for e in evs], ["item.updated"])
        self.assertEqual(evs[0]["set"], {"title": "Bravo", "notes": "old notes", "value": 5,
                                         "labels": [], "estimate": None, "moscow": None})
        # item.move to the top, and to the bottom: the undo moves it back
        ok, u, evs = await self.change_and_undo(c, room, tokens, "O", "item.move", item=C,
                                                after=None)
        self.assertEqual([(e["t"], e["after"]) for e in evs], [("item.moved", B)])
        await self.change_and_undo(c, room, tokens, "F", "item.move", item=A, after=D)
        # item.remove: the undo puts it back at its place with every field
        await c["O"].expect_ok("item.update", item=C, set={"acceptance": ["Given a card"],
                                                           "persona": "shopper"})
        ok, u, evs = await self.change_and_undo(c, room, tokens, "O", "item.remove", item=C)
        self.assertEqual([e["t"] for e in evs], ["item.added"])
        self.assertEqual(evs[0]["item"]["id"], C)
        # ... also when the item above it was removed since (by someone else)
        await self.sync(c)
        before = view(c["F"].state)
        ok = await c["O"].expect_ok("item.remove", item=C)
        await c["F"].expect_ok("item.remove", item=B)
        await c["O"].expect_ok("undo")
        await self.sync(c)
        order = c["F"].state.order()
        self.assertEqual(order, [x for x in before["order"] if x != B])
        # item.split: the undo is an unsplit
        ok, u, evs = await self.change_and_undo(
            c, room, tokens, "M", "item.split", item=D, pattern="workflow",
            children=[{"title": "D1"}, {"title": "D2", "estimate": "3"}])
        self.assertEqual([e["t"] for e in evs], ["item.unsplit"])
        self.assertEqual(evs[0]["status"], "draft")

    async def test_undo_survives_restart_as_state_not_as_history(self):
        srv = Server()
        srv.start()
        try:
            room, tokens, c, ids = await self.setup_room(server=srv)
            await self.sync(c)
            before = view(c["F"].state)
            ok = await c["O"].expect_ok("item.move", item=ids["Delta"], after=None)
            await c["O"].expect_ok("undo", seq=ok["seq"])
            ok2 = await c["O"].expect_ok("item.update", item=ids["Alpha"], set={"title": "A2"})
            pid, secret = c["O"].join_ok["pid"], c["O"].join_ok["secret"]
            self.assertEqual(await srv.astop(), 0)
            srv.start()
            back = await self.connect(srv, "O-back")
            await join(back, room, None, "Olga", pid=pid, secret=secret, expect_mode="snapshot")
            after = view(back.state)
            self.assertEqual(after["order"], before["order"])
            self.assertEqual(after["items"][ids["Alpha"]]["title"], "A2")
            r = await self.err(back, "conflict", "undo", seq=ok2["seq"])
            self.assertIn("nothing to undo", r["msg"])
            # the versions are stored: a change after the restart still refuses an unsplit
            ok = await back.expect_ok("item.split", item=ids["Bravo"],
                                      children=[{"title": "B1"}, {"title": "B2"}])
            self.assertEqual(await srv.astop(), 0)
            srv.start()
            x = await self.connect(srv, "O-again")
            await join(x, room, None, "Olga", pid=pid, secret=secret, expect_mode="snapshot")
            await self.err(x, "conflict", "undo")
            kids = [i["id"] for i in x.snapshot["items"] if i.get("parent") == ids["Bravo"]]
            await x.expect_ok("item.update", item=kids[1], set={"notes": "n"})
            r = await self.err(x, "conflict", "item.unsplit", item=ids["Bravo"])
            self.assertIn("You changed 'B2'", r["msg"])
            await x.expect_ok("item.update", item=ids["Charlie"], set={"notes": "n"})
            await back.close()
            await x.close()
        finally:
            await srv.astop()


class UndoRefusals(UndoBase):

    async def test_refused_after_someone_elses_change_naming_them(self):
        room, tokens, c, ids = await self.setup_room()
        A, B = ids["Alpha"], ids["Bravo"]
        ok = await c["O"].expect_ok("item.update", item=A, set={"title": "Alpha!"})
        await c["M"].expect_ok("item.update", item=A, set={"notes": "Max's note"})
        await self.sync(c)
        before = view(c["F"].state)
        r = await self.err(c["O"], "conflict", "undo", seq=ok["seq"])
        self.assertIn("Max changed 'Alpha!'", r["msg"])
        ok = await c["O"].expect_ok("item.move", item=B, after=None)
        await self.estimate(c, B, "8")
        r = await self.err(c["O"], "conflict", "undo")
        self.assertIn("Fay changed 'Bravo'", r["msg"])
        # one's own later change on top
        ok = await c["M"].expect_ok("item.add", item={"title": "Golf"})
        await c["M"].expect_ok("item.split", item=ids["Charlie"],
                               children=[{"title": "C1"}, {"title": "C2"}])
        await c["M"].expect_ok("undo")              # the split: undone
        r = await self.err(c["M"], "conflict", "undo")  # the add is not undoable any more
        self.assertIn("nothing to undo", r["msg"])
        ok = await c["O"].expect_ok("item.update", item=ids["Delta"], set={"title": "D"})
        await c["O"].expect_ok("item.update", item=ids["Delta"], set={"labels": ["x"]})
        await c["O"].expect_ok("undo")
        await c["O"].expect_ok("item.move", item=ids["Delta"], after=None)
        await c["O"].expect_ok("item.update", item=ids["Delta"], set={"title": "D2"})
        await c["F"].expect_ok("item.remove", item=ids["Delta"])
        r = await self.err(c["O"], "conflict", "undo")
        self.assertIn("removed since", r["msg"])
        # a refused undo changes nothing, for anyone
        await self.sync(c)
        seq = c["F"].state.seq
        self.assertEqual(await self.fresh_view(room, tokens), view(c["F"].state))
        self.assertEqual(before["items"][A]["notes"], "Max's note")
        self.assertEqual(c["F"].state.seq, seq)

    async def test_own_change_on_top_says_you(self):
        room, tokens, c, ids = await self.setup_room()
        ok = await c["O"].expect_ok("item.move", item=ids["Charlie"], after=None)
        await c["F"].expect_ok("focus", item=ids["Charlie"])     # not a change to the item
        rd, _ = await self.start_round(c["F"], ids["Alpha"])
        await c["O"].expect_ok("vote", round=rd, card="3")     # not undoable: keeps the record
        await c["F"].expect_ok("round.reveal", round=rd)
        await c["O"].expect_ok("round.accept", round=rd, estimate="3")
        u = await c["O"].expect_ok("undo", seq=ok["seq"])      # the move, still
        self.assertIn("seq", u)
        ok = await c["O"].expect_ok("item.move", item=ids["Bravo"], after=None)
        await self.estimate(c, ids["Bravo"], "5", by="O")
        r = await self.err(c["O"], "conflict", "undo", seq=ok["seq"])
        self.assertIn("You changed 'Bravo'", r["msg"])

    async def test_nothing_to_undo_undo_of_undo_stale_seq_and_roles(self):
        room, tokens, c, ids = await self.setup_room()
        r = await self.err(c["O"], "conflict", "undo")
        self.assertIn("nothing to undo", r["msg"])
        r = await self.err(c["W"], "forbidden", "undo")
        self.assertIn("observer", r["msg"])
        ok = await c["O"].expect_ok("item.update", item=ids["Alpha"], set={"title": "A1"})
        r = await self.err(c["O"], "conflict", "undo", seq=ok["seq"] - 1)
        self.assertIn("#%d" % ok["seq"], r["msg"])
        await self.err(c["O"], "bad_request", "undo", seq="x")
        await c["O"].expect_ok("undo", seq=ok["seq"])
        r = await self.err(c["O"], "conflict", "undo")          # no undo of an undo, no redo
        self.assertIn("nothing to undo", r["msg"])
        # an undo is not a change another participant can undo either
        r = await self.err(c["M"], "conflict", "undo")
        # a change that changes nothing is not a change: the record before stays
        ok = await c["O"].expect_ok("item.update", item=ids["Alpha"], set={"title": "A3"})
        same = await c["O"].expect_ok("item.update", item=ids["Alpha"], set={"title": "A3"})
        self.assertNotIn("seq", same)
        await c["O"].expect_ok("undo", seq=ok["seq"])
        # the owner who moved, made a member, may no longer undo the move
        ok = await c["O"].expect_ok("item.move", item=ids["Delta"], after=None)
        await c["F"].expect_ok("role.set", pid=c["O"].pid, role="member")
        r = await self.err(c["O"], "forbidden", "undo")
        self.assertIn("move", r["msg"])
        await self.sync(c)


class Unsplit(UndoBase):

    async def split(self, c, who, item, n=2, **kw):
        ok = await c[who].expect_ok("item.split", item=item,
                                    children=[{"title": "Part %d" % (i + 1)} for i in range(n)],
                                    **kw)
        await self.sync(c, ok["seq"])
        ev = [m for m in c["F"].seen_events() if m["seq"] == ok["seq"]][0]
        return [k["id"] for k in ev["children"]]

    async def test_untouched_split_merges_back(self):
        room, tokens, c, ids = await self.setup_room()
        B = ids["Bravo"]
        await c["O"].expect_ok("item.update", item=B, set={"status": "ready"})
        await c["F"].expect_ok("focus", item=B)
        await self.sync(c)
        before = view(c["F"].state)
        kids = await self.split(c, "M", B, 3)
        # unrelated changes around it do not matter: another item moved between the children
        await c["O"].expect_ok("item.move", item=ids["Delta"], after=kids[0])
        await c["O"].expect_ok("item.move", item=ids["Delta"], after=ids["Charlie"])
        ok = await c["O"].expect_ok("item.unsplit", item=B)
        await self.sync(c, ok["seq"])
        ev = [m for m in c["W"].seen_events() if m["seq"] == ok["seq"]][0]
        self.assertEqual((ev["t"], ev["item"], ev["children"], ev["status"], ev["focus"]),
                         ("item.unsplit", B, kids, "ready", B))
        self.assertNotIn("undo", ev)
        for x in c.values():
            self.assertEqual(view(x.state), before)
        self.assertEqual(await self.fresh_view(room, tokens), before)
        r = await self.err(c["O"], "conflict", "item.unsplit", item=B)
        self.assertIn("not split", r["msg"])
        await self.err(c["W"], "forbidden", "item.unsplit", item=B)
        await self.err(c["O"], "not_found", "item.unsplit", item="i999")
        # M's split was merged back by Olga: M's undo of it is refused, naming her
        r = await self.err(c["M"], "conflict", "undo")
        self.assertIn("Olga changed 'Bravo' after your split", r["msg"])

    async def test_touched_children_refuse_naming_what_changed(self):
        room, tokens, c, ids = await self.setup_room()
        A, B, C, D = ids["Alpha"], ids["Bravo"], ids["Charlie"], ids["Delta"]
        kids = await self.split(c, "M", A)
        await c["O"].expect_ok("item.update", item=kids[1], set={"title": "Edited"})
        r = await self.err(c["M"], "conflict", "item.unsplit", item=A)
        self.assertIn("Olga changed 'Edited' since the split", r["msg"])
        r = await self.err(c["M"], "conflict", "undo")
        self.assertIn("Olga changed 'Edited'", r["msg"])
        kids = await self.split(c, "M", B)
        await c["O"].expect_ok("item.move", item=kids[0], after=None)
        r = await self.err(c["F"], "conflict", "item.unsplit", item=B)
        self.assertIn("Olga changed 'Part 1'", r["msg"])
        kids = await self.split(c, "M", C)
        await c["F"].expect_ok("item.remove", item=kids[1])
        r = await self.err(c["M"], "conflict", "item.unsplit", item=C)
        self.assertIn("Child 2 of 'Charlie' has been removed", r["msg"])
        # estimated in a round: refused; a round open on a child: refused until cancelled
        kids = await self.split(c, "M", D, 3)
        rd, _ = await self.start_round(c["F"], kids[0])
        r = await self.err(c["M"], "conflict", "item.unsplit", item=D)
        self.assertIn("Planning poker is open on 'Part 1'", r["msg"])
        await c["F"].expect_ok("round.cancel", round=rd)
        await self.sync(c)
        before = view(c["F"].state)
        await self.estimate(c, kids[2], "5")
        r = await self.err(c["M"], "conflict", "item.unsplit", item=D)
        self.assertIn("Fay changed 'Part 3'", r["msg"])
        await self.sync(c)
        self.assertEqual(await self.fresh_view(room, tokens), view(c["F"].state))
        self.assertEqual(len(view(c["F"].state)["items"]), len(before["items"]))

    async def test_open_round_on_the_parent_and_kano(self):
        room, tokens, c, ids = await self.setup_room()
        A = ids["Alpha"]
        rd, _ = await self.start_round(c["F"], A)
        kids = await self.split(c, "F", A)        # closes the round on the parent
        ok = await c["F"].expect_ok("item.unsplit", item=A)
        self.assertIn("seq", ok)
        kids = await self.split(c, "F", A)
        await c["W"].expect_ok("kano.answer", item=kids[0], functional="like",
                               dysfunctional="neutral")
        r = await self.err(c["F"], "conflict", "item.unsplit", item=A)
        self.assertIn("Kano answers", r["msg"])


    async def event_of(self, c, ok):
        ev = await c.next_message(pred=lambda m: m.get("seq") == ok["seq"])
        return ev

    async def small_map(self, F):
        """An activity with one step and two slices: (step, slice 1, slice 2)."""
        nodes = []
        for kind, kw in (("activity", {}), ("step", None), ("slice", {}), ("slice", {})):
            if kw is None:
                kw = {"activity": nodes[0]}
            ev = await self.event_of(F, await F.expect_ok("map.add", kind=kind, name=kind, **kw))
            nodes.append(ev["node"]["id"])
        return nodes[1], nodes[2], nodes[3]

    async def apply_order(self, c, ids):
        """c applies the open items in the order ids (by ids, after a fresh proposal's base)."""
        base = (await c.expect_ok("order.propose", method="value_effort"))["base"]
        return await c.expect_ok("order.apply", base=base, order=ids)

    async def test_other_parts_changes_are_changes_on_top(self):
        room, tokens, c, ids = await self.setup_room()
        A, B, C, D = ids["Alpha"], ids["Bravo"], ids["Charlie"], ids["Delta"]
        F, O, M = c["F"], c["O"], c["M"]
        step, r1, r2 = await self.small_map(F)
        # a map.place by someone else on my edited story
        await M.expect_ok("item.update", item=A, set={"title": "Alpha!"})
        await F.expect_ok("map.place", item=A, step=step, slice=r1)
        r = await self.err(M, "conflict", "undo")
        self.assertIn("Fay changed 'Alpha!' after your edit", r["msg"])
        # a map.remove with force unplaces it: a change on top too
        await M.expect_ok("item.update", item=A, set={"notes": "n"})
        await F.expect_ok("map.remove", node=r1, force=True)
        r = await self.err(M, "conflict", "undo")
        self.assertIn("Fay changed 'Alpha!' after your edit", r["msg"])
        # a reorder by the owner after my move
        await F.expect_ok("item.move", item=C, after=None)
        await self.apply_order(O, [A, B, D, C])
        r = await self.err(F, "conflict", "undo")
        self.assertIn("Olga changed 'Charlie' after your move", r["msg"])
        # persona.remove with force takes it from my edited item
        pid = (await O.expect_ok("persona.add", persona={"name": "Pat"}))["persona"]
        await M.expect_ok("item.update", item=D, set={"persona_id": pid})
        await O.expect_ok("persona.remove", persona=pid, force=True)
        r = await self.err(M, "conflict", "undo")
        self.assertIn("Olga changed 'Delta' after your edit", r["msg"])
        # outcome.remove with force
        oid = (await O.expect_ok("outcome.add", outcome={"name": "Faster"}))["outcome"]
        await M.expect_ok("item.update", item=B, set={"outcomes": [oid]})
        await O.expect_ok("outcome.remove", outcome=oid, force=True)
        r = await self.err(M, "conflict", "undo")
        self.assertIn("Olga changed 'Bravo' after your edit", r["msg"])
        # persona.add with adopt gives my edited item its persona_id
        await M.expect_ok("item.update", item=B, set={"persona": "Buyer"})
        await O.expect_ok("persona.add", persona={"name": "Buyer"}, adopt=True)
        r = await self.err(M, "conflict", "undo")
        self.assertIn("Olga changed 'Bravo' after your edit", r["msg"])
        # one's own reorder on top of one's move: "You changed"
        await O.expect_ok("item.move", item=B, after=None)
        await self.apply_order(O, [A, C, D, B])
        r = await self.err(O, "conflict", "undo")
        self.assertIn("You changed 'Bravo' after your move", r["msg"])
        # a refused undo changes nothing
        await self.sync(c)
        self.assertEqual(await self.fresh_view(room, tokens), view(F.state))

    async def test_undo_of_ones_own_map_place(self):
        room, tokens, c, ids = await self.setup_room()
        A, B, D = ids["Alpha"], ids["Bravo"], ids["Delta"]
        F, O = c["F"], c["O"]
        step, r1, r2 = await self.small_map(F)
        await F.expect_ok("map.place", item=A, step=step, slice=r1)
        await self.sync(c)
        before = view(F.state)
        ok = await F.expect_ok("map.place", item=A, step=step, slice=r2)
        u = await F.expect_ok("undo", seq=ok["seq"])
        ev = await self.event_of(O, u)
        self.assertEqual((ev["t"], ev["item"], ev["step"], ev["slice"], ev["undo"]),
                         ("map.placed", A, step, r1, ok["seq"]))
        await self.sync(c)
        for x in c.values():
            self.assertEqual(view(x.state), before, x.label)
        self.assertEqual(await self.fresh_view(room, tokens), before)
        r = await self.err(F, "conflict", "undo")
        self.assertIn("nothing to undo", r["msg"])
        # someone else's placement on top: refused, naming them
        await F.expect_ok("map.place", item=B, step=step, slice=r1)
        await O.expect_ok("map.place", item=B, step=None, slice=None)
        r = await self.err(F, "conflict", "undo")
        self.assertIn("Olga changed 'Bravo' after your placement", r["msg"])
        # the cell it came from is gone
        await O.expect_ok("map.place", item=D, step=step, slice=r2)
        await F.expect_ok("map.place", item=D, step=step, slice=r1)
        await O.expect_ok("map.remove", node=r2)
        r = await self.err(F, "conflict", "undo")
        self.assertIn("has been removed from the story map", r["msg"])
        await self.sync(c)
        self.assertEqual(await self.fresh_view(room, tokens), view(F.state))

    async def test_unsplit_after_a_child_was_placed_or_reordered(self):
        room, tokens, c, ids = await self.setup_room()
        A, B, C, D = ids["Alpha"], ids["Bravo"], ids["Charlie"], ids["Delta"]
        F, O = c["F"], c["O"]
        step, r1, r2 = await self.small_map(F)
        kids = await self.split(c, "M", A)
        await F.expect_ok("map.place", item=kids[1], step=step, slice=r2)
        r = await self.err(c["M"], "conflict", "item.unsplit", item=A)
        self.assertIn("Fay changed 'Part 2' since the split", r["msg"])
        r = await self.err(c["M"], "conflict", "undo")
        self.assertIn("Fay changed 'Part 2' since the split", r["msg"])
        kids = await self.split(c, "M", B)
        await self.sync(c)
        order = [i for i in F.state.order() if i != kids[0] and
                 F.state.items[i].get("status") not in ("split", "done")] + [kids[0]]
        await self.apply_order(O, order)
        r = await self.err(c["M"], "conflict", "item.unsplit", item=B)
        self.assertIn("Olga changed 'Part 1' since the split", r["msg"])
        # an untouched split still merges back
        kids = await self.split(c, "M", C)
        ok = await c["M"].expect_ok("item.unsplit", item=C)
        self.assertIn("seq", ok)


if __name__ == "__main__":
    unittest.main(verbosity=2)
