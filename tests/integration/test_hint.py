#!/usr/bin/python3
"""The ephemeral `hint` operation (PROTOCOL.md: Hints): who is editing or dragging which item.
Not persisted, not sequenced; a notice to the room's other connections; cleared on disconnect;
the join ok carries the current hints; a rate limit of its own; observers may not hint, and in a
crowd room they are not sent hint notices."""

import asyncio
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Client, Server, ServerPerTestCase, create_room, join  # noqa: E402

HINT_RATE = 10


def hints_of(client):
    return [m for m in client.all if m.get("t") == "hint"]


class HintBase(ServerPerTestCase):

    async def meeting(self, items=2):
        """A room with a facilitator, an owner, a member and an observer joined, and `items`
        items; returns (clients by role, tokens, room, item ids)."""
        fac = await self.connect(self.server, "facilitator")
        room, tokens = await create_room(fac, "Hints")
        await join(fac, room, tokens["facilitator"], "Fay")
        people = {"facilitator": fac}
        for role, name in (("owner", "Olu"), ("member", "Mia"), ("observer", "Obi")):
            people[role] = await self.joined(self.server, room, tokens[role], name, label=role)
        ids = []
        for i in range(items):
            ok = await fac.expect_ok("item.add", item={"title": "Story %d" % i})
            ids.append(ok["item"])
        for c in people.values():
            await c.catch_up(ok["seq"])
        self.room, self.tokens = room, tokens
        return people, ids

    async def settle(self, *clients):
        """A round trip on each client: whatever the server sent before is in its inbox."""
        for c in clients:
            await c.expect_ok("hint", item=None, what=None) if c.role != "observer" else \
                await c.expect_err("forbidden", "hint", item=None, what=None)


class HintTests(HintBase):

    async def test_broadcast_to_others_not_to_self(self):
        p, ids = await self.meeting()
        mia = p["member"]
        ok = await mia.expect_ok("hint", item=ids[0], what="editing")
        self.assertEqual(set(ok), {"t", "id"}, "a hint's ok carries no seq: %s" % ok)
        for role in ("facilitator", "owner", "observer"):
            n = await p[role].next_message("hint")
            self.assertEqual({k: v for k, v in n.items() if k != "at"},
                             {"t": "hint", "pid": mia.pid, "item": ids[0], "what": "editing"})
            self.assertIsInstance(n["at"], int)
            self.assertNotIn("seq", n)
        await self.settle(mia)  # clears mia's hint: one more notice to each of the others
        self.assertEqual(hints_of(mia), [], "the sender gets no notice of its own hint")
        for role in ("facilitator", "owner", "observer"):
            n = await p[role].next_message("hint")
            self.assertEqual((n["pid"], n["item"], n["what"]), (mia.pid, None, None))
        # dragging another item: one more notice; the same hint again: none
        await mia.expect_ok("hint", item=ids[1], what="dragging")
        await mia.expect_ok("hint", item=ids[1], what="dragging")
        n = await p["owner"].next_message("hint")
        self.assertEqual((n["item"], n["what"]), (ids[1], "dragging"))
        await self.settle(p["owner"])
        self.assertEqual([m for m in p["owner"].inbox if m.get("t") == "hint"], [],
                         "a repeated hint is not broadcast again")

    async def test_clear_by_nil(self):
        p, ids = await self.meeting()
        olu, fay = p["owner"], p["facilitator"]
        for clear in ({"item": None, "what": "editing"}, {"item": ids[0], "what": None},
                      {"item": None, "what": None}):
            await olu.expect_ok("hint", item=ids[0], what="editing")
            n = await fay.next_message("hint")
            self.assertEqual(n["item"], ids[0])
            await olu.expect_ok("hint", **clear)
            n = await fay.next_message("hint")
            self.assertEqual((n["pid"], n["item"], n["what"]), (olu.pid, None, None),
                             "clear with %s" % clear)
        # clearing without a hint: ok, no notice; clearing with an unknown item: ok too
        await olu.expect_ok("hint", item=None, what=None)
        await olu.expect_ok("hint", item="i999", what=None)
        await self.settle(fay)
        self.assertEqual([m for m in fay.inbox if m.get("t") == "hint"], [])

    async def test_cleared_when_the_connection_closes(self):
        p, ids = await self.meeting()
        mia = p["member"]
        await mia.expect_ok("hint", item=ids[0], what="editing")
        for role in ("facilitator", "owner"):
            await p[role].next_message("hint")
        await mia.close()
        for role in ("facilitator", "owner", "observer"):
            n = await p[role].next_message("hint", pred=lambda m: m["item"] is None)
            self.assertEqual((n["pid"], n["what"]), (mia.pid, None))
        # a connection that leaves without a hint sends none
        olu = p["owner"]
        await olu.close()
        await p["facilitator"].next_message("participant.left", pred=lambda m: m["pid"] == olu.pid)
        await self.settle(p["facilitator"])
        self.assertEqual([m["pid"] for m in hints_of(p["facilitator"])], [mia.pid, mia.pid])

    async def test_join_ok_carries_current_hints(self):
        p, ids = await self.meeting()
        await p["member"].expect_ok("hint", item=ids[0], what="editing")
        await p["owner"].expect_ok("hint", item=ids[1], what="dragging")
        await p["owner"].expect_ok("hint", item=ids[1], what="editing")
        want = sorted([(p["member"].pid, ids[0], "editing"), (p["owner"].pid, ids[1], "editing")])
        # a newcomer (snapshot mode)
        new = await self.connect(self.server, "newcomer")
        ok = await join(new, self.room, self.tokens["member"], "Neo")
        self.assertEqual(sorted((h["pid"], h["item"], h["what"]) for h in ok["hints"]), want)
        # a rejoin with since (replay mode) of the owner from another connection: it sees its
        # own first tab's hint too (hints are per connection)
        tab = await self.connect(self.server, "owner tab 2")
        ok = await join(tab, self.room, None, "Olu", pid=p["owner"].pid,
                        secret=p["owner"].secret, since=p["owner"].state.seq,
                        expect_mode="replay")
        self.assertEqual(sorted((h["pid"], h["item"], h["what"]) for h in ok["hints"]), want)
        # an observer sees them too in a room that is not crowded
        obs = await self.connect(self.server, "observer 2")
        ok = await join(obs, self.room, self.tokens["observer"], "Ola")
        self.assertEqual(len(ok["hints"]), 2)
        # without hints: an empty list
        await p["member"].expect_ok("hint", item=None, what=None)
        await p["owner"].expect_ok("hint", item=None, what=None)
        late = await self.connect(self.server, "late")
        ok = await join(late, self.room, self.tokens["member"], "Lee")
        self.assertEqual(ok["hints"], [])

    async def test_validation_and_roles(self):
        p, ids = await self.meeting()
        obi, mia = p["observer"], p["member"]
        r = await obi.expect_err("forbidden", "hint", item=ids[0], what="editing")
        self.assertIn("observer", r["msg"])
        await mia.expect_err("not_found", "hint", item="i999", what="editing")
        for bad in ({"item": ids[0], "what": "typing"}, {"item": ids[0], "what": 1},
                    {"item": ids[0]}, {"what": "editing"}, {"item": 5, "what": "editing"},
                    {"item": "", "what": "editing"}, {"item": "x" * 65, "what": "editing"}):
            await mia.expect_err("bad_request", "hint", **bad)
        stranger = await self.connect(self.server, "stranger")
        await stranger.expect_err("not_joined", "hint", item=ids[0], what="editing")
        await self.settle(p["facilitator"])
        self.assertEqual(hints_of(p["facilitator"]), [], "a refused hint is not broadcast")

    async def test_rate_limit(self):
        p, ids = await self.meeting()
        mia, fay = p["member"], p["facilitator"]
        start = time.monotonic()
        futs = [mia.send_request("hint", item=ids[i % 2], what="editing") for i in range(40)]
        replies = await asyncio.gather(*futs)
        elapsed = time.monotonic() - start
        oks = [r for r in replies if r["t"] == "ok"]
        errs = [r for r in replies if r["t"] == "err"]
        self.assertGreaterEqual(len(oks), HINT_RATE, "the first %d hints pass" % HINT_RATE)
        self.assertTrue(all(r["t"] == "ok" for r in replies[:HINT_RATE]))
        self.assertLessEqual(len(oks), HINT_RATE + int(elapsed * HINT_RATE) + 1,
                             "%d hints accepted in %.2f s" % (len(oks), elapsed))
        self.assertTrue(errs, "40 hints at once: some must be refused")
        self.assertEqual({r["code"] for r in errs}, {"rate_limited"})
        await self.settle(fay)
        got = [m for m in fay.inbox if m.get("t") == "hint"]
        # every accepted hint changed the item, so each made one notice; a refused one none
        self.assertEqual(len(got), len(oks), "one notice per accepted hint, none per refused")
        await asyncio.sleep(1.1)
        await mia.expect_ok("hint", item=ids[0], what="dragging")

    async def test_general_rate_counts_hints(self):
        async with Server("--rate", "5") as srv:
            c = await self.connect(srv, "fac")
            room, tokens = await create_room(c, "Rate")
            await join(c, room, tokens["facilitator"], "F")
            await asyncio.sleep(2.5)  # refill the general bucket (burst: twice --rate)
            futs = [c.send_request("hint", item=None, what=None) for _ in range(HINT_RATE)]
            futs.append(c.send_request("room.update", name="R2"))
            replies = await asyncio.gather(*futs)
            self.assertEqual([r["t"] for r in replies[:HINT_RATE]], ["ok"] * HINT_RATE)
            self.assertEqual((replies[-1]["t"], replies[-1].get("code")),
                             ("err", "rate_limited"),
                             "10 hints used up the burst of 2 x --rate 5: the next message is "
                             "refused")

    async def test_removed_or_split_item_drops_hints(self):
        p, ids = await self.meeting(items=3)
        mia, olu, fay = p["member"], p["owner"], p["facilitator"]
        await mia.expect_ok("hint", item=ids[0], what="editing")
        await olu.expect_ok("hint", item=ids[1], what="dragging")
        await fay.expect_ok("item.remove", item=ids[0])
        await fay.expect_ok("item.split", item=ids[1], children=[{"title": "A"}, {"title": "B"}])
        late = await self.connect(self.server, "late")
        ok = await join(late, self.room, self.tokens["member"], "Lee")
        self.assertEqual(ok["hints"], [], "hints on a removed or split item are dropped")
        # dropped silently: no clearing notice (clients clear from the events), and closing
        # the connection later sends none either
        await mia.close()
        await fay.next_message("participant.left", pred=lambda m: m["pid"] == mia.pid)
        await self.settle(fay)
        self.assertEqual([(m["pid"], m["item"]) for m in hints_of(fay)],
                         [(mia.pid, ids[0]), (olu.pid, ids[1])])

    async def test_becoming_observer_clears_the_hint(self):
        p, ids = await self.meeting()
        mia, fay = p["member"], p["facilitator"]
        await mia.expect_ok("hint", item=ids[0], what="editing")
        await fay.next_message("hint")
        await fay.expect_ok("role.set", pid=mia.pid, role="observer")
        n = await fay.next_message("hint")
        self.assertEqual((n["pid"], n["item"], n["what"]), (mia.pid, None, None))
        await mia.expect_err("forbidden", "hint", item=ids[0], what="editing")

    async def test_nothing_persisted(self):
        p, ids = await self.meeting()
        fay, mia = p["facilitator"], p["member"]
        seq = fay.state.seq
        for i in range(8):
            await mia.expect_ok("hint", item=ids[i % 2], what=("editing", "dragging")[i % 2])
        await fay.expect_ok("hint", item=ids[1], what="editing")
        late = await self.connect(self.server, "late")
        ok = await join(late, self.room, self.tokens["member"], "Lee")
        self.assertEqual(ok["seq"], seq, "hints do not advance seq")
        self.assertEqual(len(ok["hints"]), 2)
        for c in p.values():
            self.assertFalse([m for m in c.all if "seq" in m and m.get("t") == "hint"])
        for c in list(p.values()) + [late]:
            await c.close()
        await self.server.astop()
        self.server.restart()
        again = await self.connect(self.server, "after restart")
        ok = await join(again, self.room, None, "Mia", pid=mia.pid, secret=mia.secret,
                        since=0, expect_mode="replay")
        self.assertEqual(ok["hints"], [], "no hint survives a restart")
        self.assertEqual(ok["seq"], seq)
        events = await again.events_until(seq)
        self.assertEqual([e["t"] for e in events], ["item.added"] * len(ids),
                         "the replayed history holds no hint")


class CrowdHintTests(HintBase):
    server_args = ("--max-participants", "300")

    async def test_crowd_room_observers_get_no_hints(self):
        asyncio.get_running_loop().set_debug(False)
        fac = await self.connect(self.server, "facilitator")
        room, tokens = await create_room(fac, "Crowd hints")
        await join(fac, room, tokens["facilitator"], "Fay")
        it = (await fac.expect_ok("item.add", item={"title": "Story"}))["item"]
        mia = await self.joined(self.server, room, tokens["member"], "Mia", label="member")

        async def one(i):
            c = await Client.connect(self.server.ws_url, label="obs%d" % i)
            await join(c, room, tokens["observer"], "Watcher %d" % i)
            return c
        obs = None
        for i in range(0, 100, 25):  # at most 25 at once: --max-conns-per-ip is 64
            batch = await asyncio.gather(*(one(k) for k in range(i, i + 25)))
            obs = obs or batch.pop(0)
            for c in batch:
                await c.close()
        self._clients.append(obs)
        await mia.expect_ok("hint", item=it, what="editing")
        n = await fac.next_message("hint")
        self.assertEqual((n["pid"], n["item"]), (mia.pid, it))
        # an event after the hint reaches the observer: the hint notice would have come first
        ok = await fac.expect_ok("focus", item=it)
        await obs.events_until(ok["seq"])
        self.assertEqual(hints_of(obs), [], "crowd room: observers get no hint notices")
        # a joining observer gets an empty list; a joining member gets the hint
        o2 = await self.joined(self.server, room, tokens["observer"], "Late watcher")
        self.assertEqual(o2.join_ok["hints"], [])
        m2 = await self.joined(self.server, room, tokens["member"], "Max")
        self.assertEqual([(h["pid"], h["item"]) for h in m2.join_ok["hints"]], [(mia.pid, it)])
        await mia.close()
        n = await fac.next_message("hint", pred=lambda m: m["item"] is None)
        self.assertEqual(n["pid"], mia.pid)
        ok = await fac.expect_ok("focus", item=None)
        await obs.events_until(ok["seq"])
        self.assertEqual(hints_of(obs), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
