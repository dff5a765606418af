#!/usr/bin/python3
"""Moving a room between two instances (PROTOCOL.md "Moving a room"; issue #13 part 5):
scripts/move-room against two real servers (instances a and b, a database each), the new room
equal to the old, identities and invite tokens carried over, the clients told and closed, the
old id answering `moved` (also after a restart and after kill -9 right after `finish`), the
freeze refusing changes with `unavailable`, abort, and the admin token."""

import asyncio
import http.client
import json
import os
import subprocess
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (ROOT, AsyncTestCase, Server, comparable_snapshot, create_room,  # noqa: E402
                     http_get, join)

ADMIN = "move-test-admin-token-0123456789"
SCRIPT = os.path.join(ROOT, "scripts", "move-room")


def post(port, path, token=ADMIN, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        headers = {"Authorization": "Bearer " + token} if token else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
    finally:
        conn.close()


def move_room(a, b, room, instance="b", token=ADMIN):
    """scripts/move-room --from a --to b: (exit code, stdout, stderr)."""
    p = subprocess.run([SCRIPT, "--admin-token", token, "--from", a.http_base, "--to",
                        b.http_base, room, instance], capture_output=True, text=True,
                       timeout=60)
    return p.returncode, p.stdout.strip(), p.stderr


def comparable(snap, with_participants=True):
    """What must survive a move: the room's state but its id and epoch (and who is online)."""
    out = comparable_snapshot(snap, with_participants)
    room = dict(out["room"])
    room.pop("id", None)
    room.pop("epoch", None)
    out["room"] = room
    for key in ("rounds", "kano", "product", "map", "current_round", "health"):
        out[key] = snap.get(key)
    return out


class MoveTest(AsyncTestCase):
    maxDiff = None

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.a = Server("--instance", "a", "--admin-token", ADMIN)
        self.b = Server("--instance", "b", "--admin-token", ADMIN)
        self.a.start()
        self.b.start()

    async def asyncTearDown(self):
        await super().asyncTearDown()
        for s in (self.a, self.b):
            s.__exit__(None, None, None)

    async def fill(self):
        """A room on a with items, a finished poker round, an open one with votes, a story map,
        a vision and a persona; a facilitator F and a member M connected."""
        F = await self.connect(self.a, "F")
        room, tokens = await create_room(F, "Moving day")
        await join(F, room, tokens["facilitator"], "Fran")
        M = await self.joined(self.a, room, tokens["member"], "Mo", label="M")
        items = []
        for title in ("Checkout", "Search", "Wishlist", "Returns"):
            items.append((await F.expect_ok("item.add", item={"title": title}))["item"])
        await F.expect_ok("item.move", item=items[3], after=None)
        rid = (await F.expect_ok("round.start", item=items[0]))
        rid = (await F.next_message("round.started", pred=lambda m: m["seq"] == rid["seq"]))
        rid = rid["round"]
        await F.expect_ok("vote", round=rid, card="5")
        await M.expect_ok("vote", round=rid, card="8")
        await F.expect_ok("round.reveal", round=rid)
        await F.expect_ok("round.accept", round=rid, estimate="8")
        ok = await F.expect_ok("round.start", item=items[1])
        rid2 = (await F.next_message("round.started", pred=lambda m: m["seq"] == ok["seq"]))
        await M.expect_ok("vote", round=rid2["round"], card="3")
        await F.expect_ok("map.add", kind="activity", name="Buy")
        await F.expect_ok("persona.add", persona={"name": "Pat", "goals": ["pay"]})
        return room, tokens, F, M, rid2["round"]

    async def snapshot(self, server, room, token, label="look"):
        c = await self.connect(server, label)
        await join(c, room, token, "Looker", expect_mode="snapshot")
        snap = c.snapshot
        await c.close()
        return snap

    async def test_move_keeps_everything_and_the_old_id_answers_moved(self):
        room, tokens, F, M, open_round = await self.fill()
        # (a room made on a starts with "a." once instance names make room ids; any id moves)
        before = await self.snapshot(self.a, room, tokens["observer"])
        # the member's identity, to rejoin the new room with
        mpid, msec = M.pid, M.secret

        code, new, err = await asyncio.to_thread(move_room, self.a, self.b, room)
        self.assertEqual(code, 0, err)
        self.assertTrue(new.startswith("b.") and len(new) == 24, new)

        # connected clients: told, then closed with 4000 "moved"
        for c in (F, M):
            n = await c.next_message("room.moved", timeout=5)
            self.assertEqual((n["room"], n["home"]), (new, "b"))
            self.assertEqual(await c.wait_closed(5), 4000)
            self.assertEqual(c.close_reason, "moved")

        # the new room: what the old one was (the same token opens it), its seq going on
        after = await self.snapshot(self.b, new, tokens["observer"])
        self.assertEqual(comparable(after, False), comparable(before, False))
        # every participant with its name and role (and the new side's looker)
        old, moved = comparable(before)["participants"], comparable(after)["participants"]
        self.assertEqual({p: moved.get(p) for p in old}, old)
        self.assertEqual(len(moved), len(old) + 1)
        self.assertEqual(after["seq"], before["seq"])
        self.assertNotEqual(after["room"]["epoch"], before["room"]["epoch"])
        self.assertEqual(after["room"]["id"], new)

        # the member rejoins the new room as itself, and its secret vote is still there
        M2 = await self.connect(self.b, "M2")
        ok = await join(M2, new, None, "Mo", pid=mpid, secret=msec)
        self.assertEqual((ok["pid"], ok["role"]), (mpid, "member"))
        F2 = await self.joined(self.b, new, tokens["facilitator"], "Fran2", label="F2")
        rev = await F2.expect_ok("round.reveal", round=open_round)
        ev = await F2.next_message("round.revealed", pred=lambda m: m["seq"] == rev["seq"])
        self.assertEqual(rev["seq"], before["seq"] + 1)
        self.assertEqual(ev["votes"], {mpid: "3"})
        await M2.catch_up(rev["seq"])

        # the old id: `moved` with the new id and home, over /ws
        X = await self.connect(self.a, "X")
        err = await X.expect_err("moved", "join", room=room, token=tokens["member"], name="X")
        self.assertEqual((err["room"], err["home"]), (new, "b"))
        self.assertIn(new, err["msg"])
        # ... and 308 over HTTP, to the same path and query with the new id
        status, headers, body = http_get(self.a.port, "/api/rooms/%s/export?format=csv" % room,
                                         headers={"Authorization": "Bearer " + tokens["facilitator"]})
        self.assertEqual(status, 308)
        self.assertEqual(headers["location"], "/api/rooms/%s/export?format=csv" % new)
        doc = json.loads(body)
        self.assertEqual((doc["code"], doc["room"], doc["home"]), ("moved", new, "b"))
        # moving it again from its old home: it is not there any more
        status, _, _ = post(self.a.port, "/api/rooms/%s/move" % room)
        self.assertEqual(status, 308)
        # finish again, to the same room (a retried script): done already
        status, _, body = post(self.a.port, "/api/rooms/%s/move/finish?to=%s" % (room, new))
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["to"], new)

        # a restart of a: still `moved`
        self.a.stop()
        self.a.start()
        X = await self.connect(self.a, "X2")
        err = await X.expect_err("moved", "join", room=room, token=tokens["member"], name="X")
        self.assertEqual(err["room"], new)

    async def test_frozen_room_refuses_changes_and_abort_thaws_it(self):
        room, tokens, F, M, _ = await self.fill()
        before = await self.snapshot(self.a, room, tokens["observer"])
        status, _, body = post(self.a.port, "/api/rooms/%s/move" % room)
        self.assertEqual(status, 200)
        archive = json.loads(body)
        self.assertEqual((archive["format"], archive["room"]), ("refine.move.v1", room))
        self.assertEqual(archive["export"]["seq"], before["seq"])
        self.assertEqual(len(archive["state"]["items"]), 4)
        # changes: `unavailable`, nothing changed; rejoins still work
        for op, fields in (("item.add", {"item": {"title": "Late"}}),
                           ("item.update", {"item": "i1", "set": {"title": "X"}}),
                           ("map.add", {"kind": "activity", "name": "Later"})):
            err = await F.expect_err("unavailable", op, **fields)
            self.assertIn("moved", err["msg"])
        err = await M.expect_err("unavailable", "vote", round="r2", card="13")
        J = await self.connect(self.a, "J")
        await join(J, room, None, "Mo", pid=M.pid, secret=M.secret)
        # a new participant would not be in the archive: `unavailable` (retry: the new room)
        N = await self.connect(self.a, "N")
        err = await N.expect_err("unavailable", "join", room=room, token=tokens["member"],
                                 name="Newcomer")
        self.assertIn("try again", err["msg"])
        self.assertEqual(comparable(J.snapshot), comparable(before))
        # finish without `to`: refused; abort: the room takes changes again
        status, _, _ = post(self.a.port, "/api/rooms/%s/move/finish" % room)
        self.assertEqual(status, 400)
        status, _, body = post(self.a.port, "/api/rooms/%s/move/abort" % room)
        self.assertEqual(status, 200, body)
        ok = await F.expect_ok("item.add", item={"title": "After the abort"})
        self.assertEqual(ok["seq"], before["seq"] + 1)
        await J.catch_up(ok["seq"])
        # finish after an abort: not being moved
        status, _, _ = post(self.a.port, "/api/rooms/%s/move/finish?to=b.x" % room)
        self.assertEqual(status, 409)

    async def test_script_aborts_when_the_new_instance_fails(self):
        room, tokens, F, _, _ = await self.fill()
        # wrong instance name for b: b refuses (421), the script aborts the move
        code, out, err = await asyncio.to_thread(move_room, self.a, self.b, room, "c")
        self.assertNotEqual(code, 0)
        self.assertIn("aborted", err)
        self.assertEqual(out, "")
        await F.expect_ok("item.add", item={"title": "Still here"})
        status, _, body = post(self.b.port, "/api/instances/c/rooms", body=b"{}")
        self.assertEqual(status, 421)
        self.assertEqual(json.loads(body)["code"], "wrong_instance")
        # a body that is no archive: 400, nothing made
        status, _, body = post(self.b.port, "/api/instances/b/rooms", body=b'{"format": 1}')
        self.assertEqual(status, 400)
        # --help, and a missing argument
        p = subprocess.run([SCRIPT, "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("TO_INSTANCE", p.stdout)
        p = subprocess.run([SCRIPT, "--admin-token", ADMIN, self.a.http_base, room],
                           capture_output=True, text=True)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("move-room:", p.stderr)

    async def test_admin_token(self):
        room, _, _, _, _ = await self.fill()
        status, _, body = post(self.a.port, "/api/rooms/%s/move" % room, token=None)
        self.assertEqual(status, 401)
        status, _, body = post(self.a.port, "/api/rooms/%s/move" % room, token="not-the-token")
        self.assertEqual(status, 403)
        self.assertEqual(json.loads(body)["code"], "forbidden")
        status, _, _ = post(self.b.port, "/api/instances/b/rooms", token="x" * 20, body=b"{}")
        self.assertEqual(status, 403)
        code, _, err = await asyncio.to_thread(move_room, self.a, self.b, room, "b", "x" * 20)
        self.assertNotEqual(code, 0)
        self.assertIn("403", err)
        # a server without --admin-token has no admin endpoints
        with Server() as plain:
            status, _, body = post(plain.port, "/api/rooms/%s/move" % room)
            self.assertEqual(status, 403)
            self.assertIn("no admin token configured", json.loads(body)["msg"])

    async def test_kill9_right_after_finish_still_moved(self):
        room, tokens, F, M, _ = await self.fill()
        code, new, err = await asyncio.to_thread(move_room, self.a, self.b, room)
        self.assertEqual(code, 0, err)
        self.a.kill9()
        self.a.start()
        X = await self.connect(self.a, "X")
        err = await X.expect_err("moved", "join", room=room, token=tokens["member"], name="X")
        self.assertEqual((err["room"], err["home"]), (new, "b"))
        # and b's room survives b's kill -9 too (it was committed before 201)
        self.b.kill9()
        self.b.start()
        snap = await self.snapshot(self.b, new, tokens["observer"])
        self.assertEqual(len(snap["items"]), 4)


if __name__ == "__main__":
    unittest.main(verbosity=2)
