#!/usr/bin/python3
"""Rooms, tokens, joining, presence, roles and room settings (PROTOCOL.md: Rooms / join)."""

import asyncio
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ServerPerTestCase, ROLES, TOKEN_RE, URLSAFE_RE, create_room,  # noqa: E402
                     join)

FIBONACCI = ["0", "1", "2", "3", "5", "8", "13", "21", "34", "55", "89", "?", "coffee"]
MODIFIED = ["0", "½", "1", "2", "3", "5", "8", "13", "20", "40", "100", "?", "coffee"]


def deck_matches(deck, name, cards):
    """A built-in deck may be reported by name or as its card list."""
    return deck == name or deck == cards


class RoomTests(ServerPerTestCase):

    async def new_room(self, name="Team Rocket refinement", deck=None):
        c = await self.connect(self.server, "creator")
        room, tokens = await create_room(c, name, deck)
        return room, tokens

    # -- room.create ---------------------------------------------------------
    async def test_create_room_tokens(self):
        c = await self.connect(self.server)
        r = await c.expect_ok("room.create", name="Team Rocket refinement", deck="modified")
        self.assertIsInstance(r["room"], str)
        self.assertRegex(r["room"], r"^[a-z][a-z0-9]{0,15}\.[A-Za-z0-9_-]{22}$",
                         "room id must be <instance>.<token>, URL-safe")
        self.assertGreaterEqual(len(r["room"]), 8, "room id should be unguessable")
        tokens = r["tokens"]
        self.assertEqual(set(tokens), set(ROLES), "one token per role")
        for role, tok in tokens.items():
            self.assertIsInstance(tok, str)
            self.assertRegex(tok, TOKEN_RE, "token for %s must be 22 URL-safe base64 chars" % role)
        self.assertEqual(len(set(tokens.values())), 4, "tokens must be distinct")
        # a second room gets other ids and tokens
        r2 = await c.expect_ok("room.create", name="Other")
        self.assertNotEqual(r2["room"], r["room"])
        self.assertFalse(set(r2["tokens"].values()) & set(tokens.values()))

    async def test_create_room_validation(self):
        c = await self.connect(self.server)
        await c.expect_err("bad_request", "room.create")                       # name missing
        await c.expect_err("bad_request", "room.create", name="")
        await c.expect_err("bad_request", "room.create", name="x" * 201)
        await c.expect_err("bad_request", "room.create", name=42)
        await c.expect_err("bad_request", "room.create", name="R", deck="nonexistent")
        await c.expect_err("bad_request", "room.create", name="R", deck=[])
        await c.expect_err("bad_request", "room.create", name="R", deck=["1", "1"])
        await c.expect_err("bad_request", "room.create", name="R", deck=["1", ""])
        await c.expect_err("bad_request", "room.create", name="R", deck=["x" * 17])
        await c.expect_err("bad_request", "room.create", name="R",
                           deck=[str(i) for i in range(21)])
        await c.expect_ok("room.create", name="x" * 200)
        await c.expect_ok("room.create", name="R", deck=[str(i) for i in range(20)])
        await c.expect_ok("room.create", name="R", deck=["x" * 16, "S"])
        for d in ("fibonacci", "modified", "tshirt", "powers"):
            await c.expect_ok("room.create", name="R", deck=d)

    # -- join ----------------------------------------------------------------
    async def test_join_with_each_role(self):
        room, tokens = await self.new_room()
        pids = set()
        for role in ROLES:
            c = await self.connect(self.server, role)
            ok = await join(c, room, tokens[role], "Ana " + role)
            self.assertEqual(ok["role"], role)
            self.assertEqual(ok["name"], "Ana " + role)
            self.assertIsInstance(ok["pid"], str)
            self.assertRegex(ok["pid"], URLSAFE_RE)
            self.assertIsInstance(ok["secret"], str)
            self.assertTrue(ok["secret"])
            self.assertEqual(ok["mode"], "snapshot")
            pids.add(ok["pid"])
        self.assertEqual(len(pids), 4, "each join with a token creates a new participant")

    async def test_join_bad_token(self):
        room, tokens = await self.new_room()
        other_room, other_tokens = await self.new_room("Other")
        c = await self.connect(self.server)
        await c.expect_err("auth_failed", "join", room=room, token="A" * 22, name="Eve")
        await c.expect_err("auth_failed", "join", room=room, token=other_tokens["facilitator"],
                           name="Eve")
        # a token of this room with one character changed
        t = tokens["member"]
        bad = ("B" if t[0] != "B" else "C") + t[1:]
        await c.expect_err("auth_failed", "join", room=room, token=bad, name="Eve")
        # the connection is still usable and not joined
        await c.expect_err("not_joined", "item.add", item={"title": "x"})
        ok = await join(c, room, tokens["member"], "Ana")
        self.assertEqual(ok["role"], "member")

    async def test_join_unknown_room(self):
        room, tokens = await self.new_room()
        c = await self.connect(self.server)
        await c.expect_err("not_found", "join", room="doesNotExist123", token=tokens["member"],
                           name="Ana")

    async def test_join_bad_fields(self):
        room, tokens = await self.new_room()
        c = await self.connect(self.server)
        await c.expect_err("bad_request", "join", room=room, token=tokens["member"])   # no name
        await c.expect_err("bad_request", "join", room=room, token=tokens["member"], name="")
        await c.expect_err("bad_request", "join", room=room, token=tokens["member"],
                           name="x" * 101)
        await c.expect_err("bad_request", "join", token=tokens["member"], name="Ana")  # no room
        await c.expect_err("bad_request", "join", room=room, token=5, name="Ana")
        # neither token nor pid/secret
        r = await c.request("join", room=room, name="Ana")
        self.assertEqual(r["t"], "err")
        self.assertIn(r["code"], ("bad_request", "auth_failed"))
        await join(c, room, tokens["member"], "x" * 100)

    async def test_join_twice_conflict(self):
        room, tokens = await self.new_room()
        c = await self.connect(self.server)
        await join(c, room, tokens["member"], "Ana")
        await c.expect_err("conflict", "join", room=room, token=tokens["member"], name="Ana")
        other_room, other_tokens = await self.new_room("Other")
        await c.expect_err("conflict", "join", room=other_room, token=other_tokens["member"],
                           name="Ana")
        # still joined to the first room and working
        r = await c.expect_ok("item.add", item={"title": "still here"})
        self.assertEqual(r["seq"], 1)

    async def test_snapshot_after_join(self):
        c0 = await self.connect(self.server)
        room, tokens = await create_room(c0, "Team Rocket refinement", "modified")
        c = await self.connect(self.server)
        ok = await join(c, room, tokens["owner"], "Olga")
        self.assertEqual(ok["seq"], 0)
        self.assertEqual(ok["mode"], "snapshot")
        snap = c.snapshot
        self.assertEqual(snap["t"], "snapshot")
        self.assertEqual(snap["seq"], 0)
        r = snap["room"]
        self.assertEqual(r["id"], room)
        self.assertEqual(r["name"], "Team Rocket refinement")
        self.assertTrue(deck_matches(r["deck"], "modified", MODIFIED), "deck: %r" % (r["deck"],))
        self.assertIn("auto_reveal", r)
        self.assertIsInstance(r["auto_reveal"], bool)
        self.assertIsInstance(r["created_at"], int)
        self.assertGreater(r["created_at"], 1_600_000_000_000, "created_at in ms since epoch")
        self.assertEqual(snap["items"], [])
        self.assertIsNone(snap["focus"])
        self.assertIn("round", snap)
        self.assertIsNone(snap["round"])
        self.assertIn("timer", snap)
        self.assertIsNone(snap["timer"])
        me = [p for p in snap["participants"] if p["pid"] == ok["pid"]]
        self.assertEqual(len(me), 1, "self in participants: %r" % snap["participants"])
        self.assertEqual(me[0]["name"], "Olga")
        self.assertEqual(me[0]["role"], "owner")
        self.assertIs(me[0]["online"], True)
        # no seq-carrying message other than the snapshot was received
        self.assertEqual([m["t"] for m in c.all if "seq" in m], ["ok", "snapshot"])
        # default deck
        room2, tokens2 = await create_room(c0, "Default deck")
        c2 = await self.connect(self.server)
        await join(c2, room2, tokens2["member"], "Ana")
        self.assertTrue(deck_matches(c2.snapshot["room"]["deck"], "fibonacci", FIBONACCI),
                        "default deck: %r" % (c2.snapshot["room"]["deck"],))
        # custom deck
        room3, tokens3 = await create_room(c0, "Custom", ["S", "M", "L"])
        c3 = await self.connect(self.server)
        await join(c3, room3, tokens3["member"], "Ana")
        self.assertEqual(c3.snapshot["room"]["deck"], ["S", "M", "L"])

    async def test_presence_notices(self):
        room, tokens = await self.new_room()
        a = await self.connect(self.server, "A")
        await join(a, room, tokens["facilitator"], "Fay")
        b = await self.connect(self.server, "B")
        okb = await join(b, room, tokens["member"], "Ben")
        n = await a.next_message("participant.joined")
        self.assertEqual(n["pid"], okb["pid"])
        self.assertEqual(n["name"], "Ben")
        self.assertEqual(n["role"], "member")
        self.assertIsInstance(n["at"], int)
        self.assertNotIn("seq", n, "presence notices carry no seq")
        # B sees A online in its snapshot, and gets no notice about itself
        online = {p["pid"]: p["online"] for p in b.snapshot["participants"]}
        self.assertIs(online.get(a.pid), True)
        self.assertIs(online.get(okb["pid"]), True)
        await asyncio.sleep(0.2)
        self.assertFalse([m for m in b.all if m.get("t") == "participant.joined"
                          and m.get("pid") == okb["pid"]],
                         "a participant.joined notice is sent to the room's *other* connections")
        # a second tab of B: no new joined notice; closing one tab: no left notice
        b2 = await self.connect(self.server, "B2")
        ok2 = await join(b2, room, None, "Ben", pid=okb["pid"], secret=okb["secret"])
        self.assertEqual(ok2["pid"], okb["pid"])
        await b2.close()
        await asyncio.sleep(0.3)
        self.assertFalse([m for m in a.inbox if m.get("t") in ("participant.joined",
                                                               "participant.left")],
                         "second connection of one participant counts once")
        # the last connection closes -> left
        await b.close()
        n = await a.next_message("participant.left")
        self.assertEqual(n["pid"], okb["pid"])
        self.assertIsInstance(n["at"], int)
        self.assertNotIn("seq", n)
        # a fresh joiner sees B offline
        c = await self.connect(self.server, "C")
        await join(c, room, tokens["observer"], "Obi")
        online = {p["pid"]: p["online"] for p in c.snapshot["participants"]}
        self.assertIs(online.get(okb["pid"]), False)
        self.assertIs(online.get(a.pid), True)

    async def test_rejoin_same_participant(self):
        room, tokens = await self.new_room()
        a = await self.connect(self.server, "A")
        ok = await join(a, room, tokens["owner"], "Olga")
        await a.close()
        a2 = await self.connect(self.server, "A2")
        ok2 = await join(a2, room, None, "Olga", pid=ok["pid"], secret=ok["secret"])
        self.assertEqual(ok2["pid"], ok["pid"])
        self.assertEqual(ok2["role"], "owner")
        self.assertEqual(ok2["name"], "Olga")
        pids = [p["pid"] for p in a2.snapshot["participants"]]
        self.assertEqual(pids.count(ok["pid"]), 1)
        self.assertEqual(len(pids), 1, "rejoining creates no new participant")
        await a2.close()
        # with a token too (the member token) the pid/secret still decide identity and role
        a3 = await self.connect(self.server, "A3")
        ok3 = await join(a3, room, tokens["member"], "Olga", pid=ok["pid"], secret=ok["secret"])
        self.assertEqual(ok3["pid"], ok["pid"])
        self.assertEqual(ok3["role"], "owner")
        await a3.close()
        # a new name renames the participant
        a4 = await self.connect(self.server, "A4")
        ok4 = await join(a4, room, None, "Olga P.", pid=ok["pid"], secret=ok["secret"])
        self.assertEqual(ok4["pid"], ok["pid"])
        self.assertEqual(ok4["name"], "Olga P.")
        self.assertEqual(ok4["role"], "owner")
        c = await self.connect(self.server, "C")
        await join(c, room, tokens["observer"], "Obi")
        names = {p["pid"]: p["name"] for p in c.snapshot["participants"]}
        self.assertEqual(names[ok["pid"]], "Olga P.")

    async def test_rejoin_wrong_secret(self):
        room, tokens = await self.new_room()
        a = await self.connect(self.server, "A")
        ok = await join(a, room, tokens["member"], "Ana")
        b = await self.connect(self.server, "B")
        bad = ok["secret"][:-1] + ("x" if ok["secret"][-1] != "x" else "y")
        await b.expect_err("auth_failed", "join", room=room, name="Ana", pid=ok["pid"], secret=bad)
        await b.expect_err("auth_failed", "join", room=room, name="Ana", pid="pNoSuchPid",
                           secret=ok["secret"])
        # pid/secret of a participant of another room
        room2, tokens2 = await self.new_room("Other")
        await b.expect_err("auth_failed", "join", room=room2, name="Ana", pid=ok["pid"],
                           secret=ok["secret"])
        # a wrong secret with a valid token still fails (no silent new participant)
        await b.expect_err("auth_failed", "join", room=room, token=tokens["member"], name="Ana",
                           pid=ok["pid"], secret=bad)
        ok2 = await join(b, room, None, "Ana", pid=ok["pid"], secret=ok["secret"])
        self.assertEqual(ok2["pid"], ok["pid"])

    # -- roles ---------------------------------------------------------------
    async def test_role_set(self):
        room, tokens = await self.new_room()
        f = await self.connect(self.server, "F")
        okf = await join(f, room, tokens["facilitator"], "Fay")
        m = await self.connect(self.server, "M")
        okm = await join(m, room, tokens["member"], "Max")
        o = await self.connect(self.server, "O")
        await join(o, room, tokens["observer"], "Obi")
        r = await f.expect_ok("role.set", pid=okm["pid"], role="owner")
        self.assertEqual(r["seq"], 1)
        for c in (f, m, o):
            ev = await c.next_event()
            self.assertEqual(ev["t"], "participant.updated")
            self.assertEqual(ev["seq"], 1)
            self.assertEqual(ev["pid"], okm["pid"])
            self.assertEqual(ev["role"], "owner")
            self.assertEqual(ev["by"], okf["pid"])
        # a member may not set roles
        m2 = await self.connect(self.server, "M2")
        okm2 = await join(m2, room, tokens["member"], "Mia")
        # the new role is in force: the ex-member (now owner) may move and remove items
        a = await m2.expect_ok("item.add", item={"title": "one"})
        b = await m2.expect_ok("item.add", item={"title": "two"})
        await m2.expect_err("forbidden", "item.move", item=b["item"], after=None)
        await m.expect_ok("item.move", item=b["item"], after=None)
        await m.expect_ok("item.remove", item=a["item"])
        await m2.expect_err("forbidden", "role.set", pid=okm2["pid"], role="facilitator")
        await m2.expect_err("forbidden", "role.set", pid=okm["pid"], role="member")
        # the observer neither
        await o.expect_err("forbidden", "role.set", pid=o.pid, role="facilitator")
        # the owner neither
        await m.expect_err("forbidden", "role.set", pid=okm2["pid"], role="owner")
        # bad role / unknown pid
        await f.expect_err("bad_request", "role.set", pid=okm["pid"], role="king")
        await f.expect_err("bad_request", "role.set", pid=okm["pid"])
        await f.expect_err("not_found", "role.set", pid="pNoSuchParticipant", role="member")
        # rejoin shows the new role
        await m.close()
        m3 = await self.connect(self.server, "M3")
        ok3 = await join(m3, room, None, "Max", pid=okm["pid"], secret=okm["secret"])
        self.assertEqual(ok3["role"], "owner")

    async def test_last_facilitator(self):
        room, tokens = await self.new_room()
        f = await self.connect(self.server, "F")
        okf = await join(f, room, tokens["facilitator"], "Fay")
        await f.expect_err("conflict", "role.set", pid=okf["pid"], role="member")
        # nothing changed
        self.assertEqual([m for m in f.inbox if "seq" in m], [])
        # with a second facilitator the hand-over works
        g = await self.connect(self.server, "G")
        okg = await join(g, room, tokens["facilitator"], "Gus")
        r = await f.expect_ok("role.set", pid=okf["pid"], role="member")
        self.assertEqual(r["seq"], 1)
        ev = await g.next_event()
        self.assertEqual((ev["t"], ev["pid"], ev["role"]), ("participant.updated", okf["pid"],
                                                             "member"))
        # f is no longer a facilitator
        await f.expect_err("forbidden", "role.set", pid=okg["pid"], role="member")
        # g is now the last one
        await g.expect_err("conflict", "role.set", pid=okg["pid"], role="owner")
        # handing over: promote first, then step down
        await g.expect_ok("role.set", pid=okf["pid"], role="facilitator")
        await g.expect_ok("role.set", pid=okg["pid"], role="observer")
        await f.expect_err("conflict", "role.set", pid=okf["pid"], role="observer")

    # -- room.update ---------------------------------------------------------
    async def test_room_update(self):
        room, tokens = await self.new_room()
        f = await self.connect(self.server, "F")
        okf = await join(f, room, tokens["facilitator"], "Fay")
        m = await self.connect(self.server, "M")
        await join(m, room, tokens["member"], "Max")
        r = await f.expect_ok("room.update", name="Renamed room")
        self.assertEqual(r["seq"], 1)
        for c in (f, m):
            ev = await c.next_event()
            if c is m:
                m.state.apply(ev)
            self.assertEqual(ev["t"], "room.updated")
            self.assertEqual(ev["seq"], 1)
            self.assertEqual(ev["set"], {"name": "Renamed room"})
            self.assertEqual(ev["by"], okf["pid"])
        r = await f.expect_ok("room.update", deck="tshirt", auto_reveal=True)
        self.assertEqual(r["seq"], 2)
        ev = await m.next_event()
        m.state.apply(ev)
        self.assertEqual(ev["t"], "room.updated")
        self.assertEqual(set(ev["set"]), {"deck", "auto_reveal"})
        self.assertIs(ev["set"]["auto_reveal"], True)
        await m.expect_err("forbidden", "room.update", name="Mine now")
        await f.expect_err("bad_request", "room.update")
        await f.expect_err("bad_request", "room.update", name="")
        await f.expect_err("bad_request", "room.update", name="x" * 201)
        await f.expect_err("bad_request", "room.update", deck="nonexistent")
        await f.expect_err("bad_request", "room.update", auto_reveal="yes")
        c = await self.connect(self.server, "C")
        await join(c, room, tokens["observer"], "Obi")
        self.assertEqual(c.snapshot["seq"], 2)
        self.assertEqual(c.snapshot["room"]["name"], "Renamed room")
        self.assertTrue(deck_matches(c.snapshot["room"]["deck"], "tshirt",
                                     ["XS", "S", "M", "L", "XL", "XXL", "?", "coffee"]))
        self.assertIs(c.snapshot["room"]["auto_reveal"], True)
        # m's state model agrees with the snapshot
        self.assertEqual(m.state.room, c.snapshot["room"])

    async def test_not_joined(self):
        room, tokens = await self.new_room()
        c = await self.connect(self.server)
        await c.expect_err("not_joined", "item.add", item={"title": "x"})
        await c.expect_err("not_joined", "item.update", item="i1", set={"title": "y"})
        await c.expect_err("not_joined", "item.move", item="i1", after=None)
        await c.expect_err("not_joined", "item.remove", item="i1")
        await c.expect_err("not_joined", "focus", item=None)
        await c.expect_err("not_joined", "role.set", pid="p1", role="member")
        await c.expect_err("not_joined", "room.update", name="x")
        # room.create needs no join
        await c.expect_ok("room.create", name="Fine")
        # a failed join leaves it unjoined
        await c.expect_err("auth_failed", "join", room=room, token="A" * 22, name="Eve")
        await c.expect_err("not_joined", "item.add", item={"title": "x"})

    async def test_rooms_are_isolated(self):
        room1, tokens1 = await self.new_room("One")
        room2, tokens2 = await self.new_room("Two")
        a = await self.connect(self.server, "A")
        await join(a, room1, tokens1["member"], "Ana")
        b = await self.connect(self.server, "B")
        await join(b, room2, tokens2["member"], "Ben")
        r1 = await a.expect_ok("item.add", item={"title": "in one"})
        r2 = await b.expect_ok("item.add", item={"title": "in two"})
        self.assertEqual((r1["seq"], r2["seq"]), (1, 1), "seq is per room")
        # a member of room 1 cannot touch room 2's items (ids may coincide: i1 in both)
        await a.expect_ok("item.update", item=r1["item"], set={"title": "one, edited"})
        await asyncio.sleep(0.2)
        self.assertEqual([m["seq"] for m in b.all if m.get("t") not in ("ok", "err", "snapshot")
                          and "seq" in m], [1])
        self.assertFalse([m for m in b.all if m.get("t") == "participant.joined"])
        c = await self.connect(self.server, "C")
        await join(c, room2, tokens2["observer"], "Obi")
        self.assertEqual([i["title"] for i in c.snapshot["items"]], ["in two"])
        self.assertEqual(c.snapshot["seq"], 1)
        # a token of room 1 does not open room 2
        d = await self.connect(self.server, "D")
        await d.expect_err("auth_failed", "join", room=room2, token=tokens1["facilitator"],
                           name="Eve")

    async def test_unknown_op(self):
        c = await self.connect(self.server)
        r = await c.expect_err("unknown_op", "room.destroy", room="x")
        self.assertEqual(r["id"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
