#!/usr/bin/python3
"""A change that changes nothing (PROTOCOL.md: Envelope) is answered `ok` without `seq`, and no
event: the log records only changes (issue 10, item 6). Withdrawing a vote never cast, voting the
same card again, role.set to the role someone has, room.update to the current values, item.update
with the current values, focus on the focused item, item.move to where the item is."""

import asyncio
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerPerTestCase, create_room, is_event, join  # noqa: E402


class NoopTests(ServerPerTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.fac = await self.connect(self.server, "fac")
        self.room, self.tokens = await create_room(self.fac, "Noop room")
        await join(self.fac, self.room, self.tokens["facilitator"], "Fay")
        self.mem = await self.connect(self.server, "mem")
        await join(self.mem, self.room, self.tokens["member"], "Max")
        self.a = (await self.fac.expect_ok("item.add", item={"title": "A", "labels": ["x"]}))["item"]
        self.b = (await self.fac.expect_ok("item.add", item={"title": "B"}))["item"]
        self.c = (await self.fac.expect_ok("item.add", item={"title": "C"}))["item"]

    async def settled_seq(self):
        """A real change as a marker: returns its seq once both clients have its event."""
        ok = await self.fac.expect_ok("item.add", item={"title": "marker"})
        for c in (self.fac, self.mem):
            await c.events_until(ok["seq"])
        return ok["seq"]

    async def assertNoop(self, client, op, **fields):
        """op is answered ok without seq, and nobody receives an event for it."""
        before = await self.settled_seq()
        r = await client.expect_ok(op, **fields)
        self.assertNotIn("seq", r, "%s %s changed nothing: ok without seq" % (op, fields))
        after = await self.settled_seq()
        self.assertEqual(after, before + 1, "%s %s changed nothing: no event, no seq" % (op, fields))
        for c in (self.fac, self.mem):
            evs = [m for m in c.all if is_event(m) and before < m["seq"] < after]
            self.assertEqual(evs, [], "%s: no event for %s" % (c.label, op))
        return r

    async def assertChange(self, client, op, **fields):
        r = await client.expect_ok(op, **fields)
        self.assertIn("seq", r, "%s %s is a change" % (op, fields))
        return r

    async def test_vote_withdraw_never_cast(self):
        await self.fac.expect_ok("round.start", item=self.a)
        rid = (await self.fac.next_message("round.started"))["round"]
        await self.assertNoop(self.mem, "vote", round=rid, card=None)
        await self.assertChange(self.mem, "vote", round=rid, card="5")
        await self.assertNoop(self.mem, "vote", round=rid, card="5")
        await self.assertChange(self.mem, "vote", round=rid, card="5", confidence="high")
        await self.assertNoop(self.mem, "vote", round=rid, card="5", confidence="high")
        await self.assertChange(self.mem, "vote", round=rid, card="8", confidence="high")
        await self.assertChange(self.mem, "vote", round=rid, card=None)
        await self.assertNoop(self.mem, "vote", round=rid, card=None)
        # still a round that counts the votes it has
        await self.assertChange(self.mem, "vote", round=rid, card="3")
        await self.assertChange(self.fac, "vote", round=rid, card="3")
        r = await self.fac.expect_ok("round.reveal", round=rid)
        ev = await self.fac.events_until(r["seq"])
        self.assertEqual(ev[-1]["stats"]["count"], 2)

    async def test_role_set_same_role(self):
        await self.assertNoop(self.fac, "role.set", pid=self.mem.pid, role="member")
        await self.assertNoop(self.fac, "role.set", pid=self.fac.pid, role="facilitator")
        await self.assertChange(self.fac, "role.set", pid=self.mem.pid, role="owner")
        await self.assertNoop(self.fac, "role.set", pid=self.mem.pid, role="owner")

    async def test_room_update_same_values(self):
        await self.assertNoop(self.fac, "room.update", name="Noop room")
        await self.assertNoop(self.fac, "room.update", name="Noop room", deck="fibonacci",
                              auto_reveal=False)
        await self.assertChange(self.fac, "room.update", deck=["1", "2", "3"], auto_reveal=True,
                                facilitator_grace=30)
        await self.assertNoop(self.fac, "room.update", deck=["1", "2", "3"], auto_reveal=True,
                              facilitator_grace=30)
        # a change of some fields: the event's set holds only the fields that changed
        r = await self.assertChange(self.fac, "room.update", name="New name", deck=["1", "2", "3"],
                                    auto_reveal=True)
        ev = [m for m in await self.mem.events_until(r["seq"]) if m["seq"] == r["seq"]][0]
        self.assertEqual(ev["set"], {"name": "New name"})

    async def test_item_update_same_values(self):
        await self.assertNoop(self.fac, "item.update", item=self.a, set={"title": "A"})
        await self.assertNoop(self.mem, "item.update", item=self.a,
                              set={"title": "A", "labels": ["x"], "estimate": None})
        await self.assertChange(self.mem, "item.update", item=self.a, set={"labels": ["x", "y"]})
        await self.assertNoop(self.mem, "item.update", item=self.a, set={"labels": ["x", "y"]})

    async def test_focus_same_item(self):
        await self.assertNoop(self.fac, "focus", item=None)
        await self.assertChange(self.fac, "focus", item=self.b)
        await self.assertNoop(self.fac, "focus", item=self.b)
        await self.assertChange(self.fac, "focus", item=None)

    async def test_move_to_same_place(self):
        await self.assertNoop(self.fac, "item.move", item=self.a, after=None)
        await self.assertNoop(self.fac, "item.move", item=self.b, after=self.a)
        await self.assertNoop(self.fac, "item.move", item=self.c, after=self.b)
        await self.assertChange(self.fac, "item.move", item=self.c, after=None)
        await self.assertNoop(self.fac, "item.move", item=self.c, after=None)
        await self.assertNoop(self.fac, "item.move", item=self.a, after=self.c)
        # the order is what a fresh snapshot says
        late = await self.connect(self.server, "late")
        await join(late, self.room, self.tokens["observer"], "Obs")
        order = [i["id"] for i in sorted(late.snapshot["items"], key=lambda i: i["rank"])]
        self.assertEqual(order[:3], [self.c, self.a, self.b])

    async def test_noop_is_still_checked(self):
        """A change that would change nothing is still refused when it is not allowed."""
        await self.mem.expect_err("forbidden", "role.set", pid=self.mem.pid, role="member")
        await self.mem.expect_err("forbidden", "focus", item=None)
        await self.fac.expect_err("not_found", "role.set", pid="nobody", role="member")
        await asyncio.sleep(0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
