#!/usr/bin/python3
"""Schema 5 -> 6 (issue #14: the log): a database made by the server before the log, opened by
this one, serves every room as it was. Needs the old binary: REFINE_OLD_SERVER=<a refine-server
built from a commit before the log> (e.g. `git archive 3ec4bd6 | tar -x -C /tmp/old` and build
it); skipped without it.

The old server makes three rooms (items added, edited, moved, removed; a poker round voted and revealed;
a second round open) and stops; each room's JSON export and a joiner's snapshot are taken then.
This server opens the same file (user_version 5 -> 6) and must give the same export, the same
snapshot items and seq, and go on: a new change gets seq + 1, and after a restart it is there."""

import json
import os
import sqlite3
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AsyncTestCase, Server, create_room, http_get, join, main  # noqa: E402

OLD = os.environ.get("REFINE_OLD_SERVER")


def export(srv, room, token):
    status, _, body = http_get(srv.port, "/api/rooms/%s/export" % room,
                               headers={"Authorization": "Bearer " + token})
    assert status == 200, (status, body[:200])
    doc = json.loads(body)
    doc.pop("exported_at", None)
    return doc


@unittest.skipUnless(OLD and os.path.exists(OLD), "REFINE_OLD_SERVER (a server before the log) "
                     "is not set")
class MigrateTests(AsyncTestCase):

    async def fill(self, srv, n):
        rooms = []
        for k in range(n):
            c = await self.connect(srv, "maker%d" % k)
            room, tokens = await create_room(c, "Room %d" % k)
            ok = await join(c, room, tokens["facilitator"], "Fay")
            items = []
            for i in range(6):
                items.append((await c.expect_ok("item.add", item={"title": "story %d.%d" % (k, i)}))
                             ["item"])
            await c.expect_ok("item.update", item=items[0], set={"title": "edited %d" % k})
            await c.expect_ok("item.remove", item=items[1])
            await c.expect_ok("item.move", item=items[5], after=items[0])
            r = await c.expect_ok("round.start", item=items[2])
            rid = (await c.next_message("round.started",
                                        pred=lambda m: m["seq"] == r["seq"]))["round"]
            await c.expect_ok("vote", round=rid, card="5")
            await c.expect_ok("round.reveal", round=rid)
            await c.expect_ok("round.start", item=items[3])
            await c.close()
            rooms.append((room, tokens, ok))
        return rooms

    async def state(self, srv, room, tokens, ok, label):
        c = await self.connect(srv, label)
        j = await join(c, room, None, "Fay", pid=ok["pid"], secret=ok["secret"])
        items = sorted((i["id"], i["title"], i.get("estimate")) for i in c.snapshot["items"])
        await c.close()
        return j["seq"], items, export(srv, room, tokens["facilitator"])

    async def test_a_schema_5_database_serves_every_room_as_it_was(self):
        srv = Server(binary=OLD)
        srv.start()
        self.addCleanup(srv._finish, None)
        self.server = srv
        rooms = await self.fill(srv, 3)
        before = [await self.state(srv, *r, label="old") for r in rooms]
        self.assertEqual(await srv.astop(), 0)
        db = sqlite3.connect(srv.db)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 5)
        db.close()

        srv.binary = Server().binary  # this build
        srv.start()
        after = [await self.state(srv, *r, label="new") for r in rooms]
        for (room, _, _), b, a in zip(rooms, before, after):
            self.assertEqual(a[0], b[0], "seq of %s" % room)
            self.assertEqual(a[1], b[1], "snapshot items of %s" % room)
            self.assertEqual(a[2], b[2], "export of %s" % room)
        room, tokens, ok = rooms[0]
        c = await self.connect(srv, "after")
        await join(c, room, None, "Fay", pid=ok["pid"], secret=ok["secret"])
        r = await c.expect_ok("item.add", item={"title": "after the migration"})
        self.assertEqual(r["seq"], after[0][0] + 1)
        await c.close()
        self.assertEqual(await srv.astop(), 0)
        db = sqlite3.connect(srv.db)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 6)
        self.assertEqual(db.execute("SELECT count(*) FROM log").fetchone()[0], 0,
                         "a clean stop leaves the log applied")
        db.close()
        srv.start()
        seq, items, _ = await self.state(srv, room, tokens, ok, "restart")
        self.assertEqual(seq, after[0][0] + 1)
        self.assertIn("after the migration", [t for _, t, _ in items])
        self.assertEqual(await srv.astop(), 0)


if __name__ == "__main__":
    main()
