#!/usr/bin/python3
"""A database whose items share a rank (issue #11, suspected bug in backlog.c). Loading accepts
equal ranks (the backlog sorts ties by id), but index_of() took the first item of the rank, so
removing the second one took the first out of the backlog (and out of the id map) while the
removed one was freed and stayed in it: the next snapshot read freed memory (AddressSanitizer:
heap-use-after-free) and the remaining item could no longer be found.

The test writes the equal rank into the real SQLite file while the server is stopped, restarts
it on that file, and removes, moves and updates items of the equal run."""

import os
import sqlite3
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AsyncTestCase, Server, create_room, join, main  # noqa: E402


class DuplicateRankTests(AsyncTestCase):

    async def room_with_equal_ranks(self, srv, titles):
        """A room with items of these titles, all given the rank of the first (the server
        stopped for the edit, then restarted on the same file), and a facilitator joined to it
        after the restart (the room loaded from the file). Returns (facilitator, room, tokens,
        ids in the backlog's order: by id, as the loader sorts ties)."""
        c = await self.connect(srv, "setup")
        room, tokens = await create_room(c, "Equal ranks")
        await join(c, room, tokens["facilitator"], "Fay")
        ids = [(await c.expect_ok("item.add", item={"title": t}))["item"] for t in titles]
        await c.close()
        self.assertEqual(srv.stop(), 0)
        db = sqlite3.connect(srv.db)
        try:
            (rank,) = db.execute("SELECT rank FROM items WHERE room = ? AND id = ?",
                                 (room, ids[0])).fetchone()
            db.execute("UPDATE items SET rank = ? WHERE room = ?", (rank, room))
            db.commit()
            n = db.execute("SELECT count(DISTINCT rank) FROM items WHERE room = ?",
                           (room,)).fetchone()[0]
        finally:
            db.close()
        self.assertEqual(n, 1)
        srv.restart()
        f = await self.connect(srv, "fac")
        await join(f, room, tokens["facilitator"], "Fay")
        return f, room, tokens, sorted(ids, key=lambda i: i.encode())

    async def snapshot_ids(self, srv, room, tokens):
        c = await self.connect(srv, "viewer")
        await join(c, room, tokens["observer"], "Obi")
        return [it["id"] for it in c.snapshot["items"]]

    async def test_remove_the_second_of_an_equal_rank(self):
        async with Server() as srv:
            self.server = srv
            f, room, tokens, (first, second, third) = await self.room_with_equal_ranks(
                srv, ["A", "B", "C"])
            self.assertEqual(sorted(it["id"] for it in f.snapshot["items"]),
                             sorted([first, second, third]))
            await f.expect_ok("item.remove", item=second)
            # The others are still there: in the snapshot of a new join, and by id.
            self.assertEqual(sorted(await self.snapshot_ids(srv, room, tokens)),
                             sorted([first, third]))
            await f.expect_ok("item.update", item=first, set={"title": "A2"})
            await f.expect_ok("item.update", item=third, set={"title": "C2"})
            await f.expect_err("not_found", "item.update", item=second, set={"title": "B2"})
            await f.expect_ok("item.remove", item=third)
            self.assertEqual(await self.snapshot_ids(srv, room, tokens), [first])

    async def test_move_within_an_equal_rank(self):
        async with Server() as srv:
            self.server = srv
            f, room, tokens, (first, second, third) = await self.room_with_equal_ranks(
                srv, ["A", "B", "C"])
            await f.expect_ok("item.move", item=third, after=None)
            ids = await self.snapshot_ids(srv, room, tokens)
            self.assertEqual(sorted(ids), sorted([first, second, third]))
            self.assertEqual(ids[0], third)
            await f.expect_ok("item.remove", item=second)
            self.assertEqual(sorted(await self.snapshot_ids(srv, room, tokens)),
                             sorted([first, third]))
            await f.expect_ok("item.update", item=first, set={"title": "A2"})


if __name__ == "__main__":
    main()
