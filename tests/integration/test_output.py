#!/usr/bin/python3
"""The output path and the checkpointer, through the real server.

Output: frames given to a connection during a loop turn are framed into one buffer and sent
with one write at the end of the turn; a frame larger than that buffer (64 KiB) is framed by
lws; what the socket does not take is kept and sent when it can. These tests drive large
snapshots and bursts of events through it and check that every client receives every message
whole, in order, with no gap (the harness checks seq contiguity after every join).

Checkpointer: the WAL is copied back into the database file while the server runs, not only
when it stops (the first version's checkpointer connection never read the database, so its
checkpoints did nothing).
"""

import asyncio
import os
import sqlite3
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, RoomState, Server, comparable_snapshot, create_room,  # noqa
                     is_event, join, pipeline)


class OutputTests(AsyncTestCase):

    async def test_large_snapshots_and_bursts_arrive_whole_and_in_order(self):
        async with Server() as srv:
            c = await self.connect(srv, "creator")
            room, tokens = await create_room(c, "Output room")
            await c.close()
            owner = await self.joined(srv, room, tokens["owner"], "Olga", label="owner")
            reader = await self.joined(srv, room, tokens["member"], "Rui", label="reader")

            # 40 items of ~9 KB each: a snapshot of ~360 KB, over the 64 KiB burst buffer.
            notes = "".join(chr(ord("a") + (i % 26)) for i in range(9000))
            adds = [("item.add", {"item": {"title": "big %d" % i, "notes": notes + str(i)}})
                    for i in range(40)]
            items = [r["item"] for r in await pipeline(owner, adds, window=20)]

            # A burst of 400 small updates, 100 in flight: many frames per connection per turn,
            # while two late joiners get the large snapshot in the middle of it.
            updates = [("item.update", {"item": items[i % len(items)],
                                        "set": {"title": "upd %d" % i}}) for i in range(400)]
            burst = asyncio.ensure_future(pipeline(owner, updates, window=100))
            await asyncio.sleep(0.05)
            late1 = await self.joined(srv, room, tokens["observer"], "Lea", label="late1")
            late2 = await self.joined(srv, room, tokens["member"], "Lou", label="late2")
            oks = await burst
            self.assertTrue(all(r["t"] == "ok" for r in oks))
            final = oks[-1]["seq"]

            for cl in (reader, late1, late2, owner):
                await cl.catch_up(final, timeout=20)
            self.assertGreater(len(late1.snapshot["items"]), 39)
            big = [it for it in late1.snapshot["items"] if it["title"].startswith(("big", "upd"))]
            self.assertTrue(all(len(it["notes"]) >= 9000 for it in big),
                            "a large snapshot arrived cut")

            # Everyone's state, rebuilt from snapshot + events, equals a fresh snapshot.
            fresh = await self.joined(srv, room, tokens["member"], "Fay", label="fresh")
            want = comparable_snapshot(fresh.snapshot, with_participants=False)
            for cl in (reader, late1, late2):
                self.assertEqual(cl.state.comparable(with_participants=False), want, cl.label)
            reader_seqs = [m["seq"] for m in reader.all if is_event(m)]
            self.assertEqual(reader_seqs, sorted(reader_seqs))
            self.assertEqual(len(reader_seqs), len(set(reader_seqs)))
            print("[output] snapshot of %d bytes of notes; %d events to the reader, last seq %d"
                  % (sum(len(it.get("notes", "")) for it in late1.snapshot["items"]),
                     len(reader_seqs), final))


class CheckpointTests(AsyncTestCase):

    async def test_wal_is_copied_into_the_database_while_running(self):
        async with Server() as srv:
            c = await self.connect(srv, "creator")
            room, tokens = await create_room(c, "Checkpoint room")
            owner = await self.joined(srv, room, tokens["owner"], "Olga", label="owner")
            first = await owner.expect_ok("item.add", item={"title": "first"})
            updates = [("item.update", {"item": first["item"], "set": {"notes": "n%d" % i}})
                       for i in range(1500)]
            oks = await pipeline(owner, updates, window=50)
            final = oks[-1]["seq"]
            # The database file itself, ignoring the WAL (immutable=1 reads only the main
            # file): once the checkpointer has run (at least once a second), every committed
            # event is there although the server is still running.
            uri = "file:%s?immutable=1" % srv.db
            counted = -1
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                await asyncio.sleep(0.5)
                try:
                    db = sqlite3.connect(uri, uri=True)
                    counted = db.execute("SELECT count(*) FROM events WHERE room = ?",
                                         (room,)).fetchone()[0]
                    db.close()
                except sqlite3.DatabaseError:
                    continue  # caught the file mid-copy: look again
                if counted == final:
                    break
            wal = srv.db + "-wal"
            wal_size = os.path.getsize(wal) if os.path.exists(wal) else 0
            print("[output] %d events committed; %d in the database file itself; WAL %d bytes"
                  % (final, counted, wal_size))
            self.assertEqual(counted, final, "the WAL was not checkpointed while running")
            self.assertTrue(srv.running())


if __name__ == "__main__":
    unittest.main(verbosity=2)
