#!/usr/bin/python3
"""Rooms not in memory are loaded off the loop (issue #11, "No disk on the loop"): a join or an
export of a room that is not in memory waits for the loader's thread, which reads and builds it,
while every other meeting on the server goes on; what a joining connection sends meanwhile is
answered in order after its join; two joins of one cold room share its load; a connection or an
HTTP client that goes away while its room loads is withdrawn cleanly.

The cold rooms are written into the real SQLite file while the server is stopped (9,900 items
of about 1 KiB each, copied from an item made through the protocol), then the server is
restarted on that file, so each cold room is read from disk on its first join or export."""

import asyncio
import csv
import io
import json
import os
import socket
import sqlite3
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import AsyncTestCase, Server, create_room, http_get, join, main  # noqa: E402
from support.raw import RawWs  # noqa: E402

COLD_ITEMS = 9900  # room for a few more (10,000 at most)


class ColdLoadTests(AsyncTestCase):

    async def setup_rooms(self, srv, ncold):
        """A warm room (with one item of ~1 KiB) and ncold rooms of COLD_ITEMS copies of that
        item written into the database; the server restarted on it. Returns (warm room, its
        tokens, [(cold room, its tokens)])."""
        c = await self.connect(srv, "setup")
        warm, wtokens = await create_room(c, "Warm")
        await join(c, warm, wtokens["facilitator"], "Fay")
        await c.expect_ok("item.add", item={"title": "A story of some length",
                                            "notes": "n" * 1000})
        cold = [await create_room(c, "Cold %d" % i) for i in range(ncold)]
        await c.close()
        self.assertEqual(srv.stop(), 0)
        db = sqlite3.connect(srv.db)
        try:
            (data,) = db.execute("SELECT data FROM items WHERE room = ?", (warm,)).fetchone()
            for room, _ in cold:
                db.executemany("INSERT INTO items(room, id, rank, data) VALUES(?, ?, ?, ?)",
                               ((room, "c%05d" % i, "a%06d" % i, data)
                                for i in range(COLD_ITEMS)))
            db.commit()
        finally:
            db.close()
        srv.restart()
        return warm, wtokens, cold

    async def test_a_warm_room_answers_while_a_cold_room_loads(self):
        """A facilitator of a warm room changes it (an unchanged room.update: answered at once,
        nothing to commit) over and over while another client joins a cold room of 10,000
        items: several of its answers arrive before the cold join's ok. With rooms loaded on
        the loop, the first answer waited for the whole load."""
        async with Server() as srv:
            self.server = srv
            warm, wtokens, [(room, tokens)] = await self.setup_rooms(srv, 1)
            fac = await self.connect(srv, "fac")
            await join(fac, warm, wtokens["facilitator"], "Fay")  # the warm room is loaded now
            cold = await self.connect(srv, "cold")
            order = []
            t0 = time.monotonic()
            joined = cold.send_request("join", room=room, token=tokens["member"], name="Cy")
            joined.add_done_callback(lambda f: order.append(("cold", time.monotonic() - t0)))
            await asyncio.sleep(0.01)  # the join is on its way first
            warm_times = []
            while not joined.done() and time.monotonic() - t0 < 30:
                t = time.monotonic()
                r = fac.send_request("room.update", name="Warm")
                r.add_done_callback(lambda f: order.append(("warm", time.monotonic() - t0)))
                await r
                warm_times.append(time.monotonic() - t)
            ok = await joined
            snap = await cold.next_message("snapshot", timeout=30)
            self.assertEqual(ok["seq"], snap["seq"])
            self.assertEqual(len(snap["items"]), COLD_ITEMS)
            before = [w for w, _ in order[:order.index(next(o for o in order if o[0] == "cold"))]]
            cold_at = next(t for w, t in order if w == "cold")
            sys.stderr.write("cold join ok after %.1f ms; %d warm answers before it (median "
                             "%.2f ms)\n" % (cold_at * 1000, len(before),
                                             sorted(warm_times)[len(warm_times) // 2] * 1000))
            self.assertGreaterEqual(len(before), 3, order[:10])
            # and the warm room still answers, after
            await fac.expect_ok("room.update", name="Warm again")

    async def test_messages_after_a_cold_join_are_answered_in_order_after_it(self):
        async with Server() as srv:
            self.server = srv
            _, _, [(room, tokens)] = await self.setup_rooms(srv, 1)
            c = await self.connect(srv, "cy")
            joined = c.send_request("join", room=room, token=tokens["facilitator"], name="Cy")
            later = [c.send_request("item.add", item={"title": "After %d" % i}) for i in range(3)]
            later.append(c.send_request("no.such.op"))
            later.append(c.send_request("join", room=room, token=tokens["member"], name="Cy"))
            later.append(c.send_request("item.add", item={"title": "Last"}))
            ok = await asyncio.wait_for(joined, 30)
            replies = [await asyncio.wait_for(f, 30) for f in later]
            self.assertEqual([r["t"] for r in replies], ["ok", "ok", "ok", "err", "err", "ok"])
            self.assertEqual(replies[3]["code"], "unknown_op")
            self.assertEqual(replies[4]["code"], "conflict")
            self.assertEqual([replies[i]["seq"] for i in (0, 1, 2, 5)],
                             [ok["seq"] + 1, ok["seq"] + 2, ok["seq"] + 3, ok["seq"] + 4])
            # the order on the wire: the join's ok, its snapshot, then the rest (the client
            # records a violation for a reply out of order or a snapshot not right after its ok)
            kinds = [m["t"] for m in c.all if m.get("t") in ("ok", "err", "snapshot")]
            self.assertEqual(kinds[:2], ["ok", "snapshot"])
            self.assertEqual(len(c.all[1]["items"]), COLD_ITEMS)
            self.assertNoViolations(c)

    async def test_too_many_messages_behind_a_waiting_join_close_with_1008(self):
        async with Server() as srv:
            self.server = srv
            _, _, [(room, tokens), (other, otokens)] = await self.setup_rooms(srv, 2)
            ws = RawWs(srv.port)
            try:
                ws.send_msg({"t": "join", "id": 1, "room": room, "token": tokens["member"],
                             "name": "Flo"})
                for i in range(100):
                    ws.send_msg({"t": "item.add", "id": 2 + i, "item": {"title": "x"}})
                self.assertEqual(ws.close_code(), 1008)
            finally:
                ws.close()
            # the server goes on: the room loads for others
            c = await self.connect(srv, "after")
            await join(c, room, tokens["member"], "Ann")
            self.assertEqual(len(c.snapshot["items"]), COLD_ITEMS)

    async def test_two_joins_of_one_cold_room_both_get_it(self):
        async with Server() as srv:
            self.server = srv
            _, _, [(room, tokens)] = await self.setup_rooms(srv, 1)
            a = await self.connect(srv, "a")
            b = await self.connect(srv, "b")
            ja = a.send_request("join", room=room, token=tokens["facilitator"], name="Ann")
            jb = b.send_request("join", room=room, token=tokens["member"], name="Bob")
            oka, okb = await asyncio.wait_for(asyncio.gather(ja, jb), 30)
            sa = await a.next_message("snapshot", timeout=30)
            sb = await b.next_message("snapshot", timeout=30)
            self.assertEqual(len(sa["items"]), COLD_ITEMS)
            self.assertEqual(len(sb["items"]), COLD_ITEMS)
            # one room: Ann's change reaches Bob
            r = await a.expect_ok("item.add", item={"title": "Shared"})
            evs = await b.events_until(r["seq"])
            self.assertEqual(evs[-1]["t"], "item.added")
            self.assertNoViolations(a, b)

    async def test_closing_while_the_room_loads(self):
        """Connections that close (TCP reset or close) right after a cold join, some with
        messages behind it: the server keeps serving, and the rooms load for others."""
        async with Server() as srv:
            self.server = srv
            _, _, cold = await self.setup_rooms(srv, 3)
            for n, (room, tokens) in enumerate(cold):
                for k in range(3):
                    ws = RawWs(srv.port)
                    ws.send_msg({"t": "join", "id": 1, "room": room, "token": tokens["member"],
                                 "name": "Gone"})
                    for i in range(k * 5):
                        ws.send_msg({"t": "item.add", "id": 2 + i, "item": {"title": "x"}})
                    if (n + k) % 2:
                        ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
                    ws.close()
            await asyncio.sleep(0.3)
            for room, tokens in cold:
                c = await self.connect(srv, "after")
                await join(c, room, tokens["member"], "Ann")
                # (what a closed connection sent behind its join is dropped, unless the room
                # was loaded before the close was read)
                self.assertGreaterEqual(len(c.snapshot["items"]), COLD_ITEMS)
                self.assertEqual([p["name"] for p in c.snapshot["participants"]
                                  if p["online"]], ["Ann"])
            self.assertEqual(http_get(srv.port, "/healthz")[0], 200)

    async def test_export_of_a_cold_room(self):
        async with Server() as srv:
            self.server = srv
            _, _, cold = await self.setup_rooms(srv, 4)
            auth = lambda t: {"Authorization": "Bearer " + t}  # noqa: E731
            # JSON, CSV, and a wrong token (401, as for an unknown room) of cold rooms
            room, tokens = cold[0]
            status, headers, body = http_get(srv.port, "/api/rooms/%s/export?format=json" % room,
                                             timeout=30, headers=auth(tokens["facilitator"]))
            self.assertEqual(status, 200, body[:200])
            self.assertEqual(len(json.loads(body)["items"]), COLD_ITEMS)
            room, tokens = cold[1]
            status, headers, body = http_get(srv.port, "/api/rooms/%s/export?format=csv" % room,
                                             timeout=30, headers=auth(tokens["owner"]))
            self.assertEqual(status, 200, body[:200])
            rows = list(csv.DictReader(io.StringIO(body.decode())))
            self.assertEqual(len(rows), COLD_ITEMS)
            self.assertEqual(rows[0]["id"], "c00000")
            room, tokens = cold[2]
            status, _, _ = http_get(srv.port, "/api/rooms/%s/export" % room, timeout=30,
                                    headers=auth(tokens["member"] + "x"))
            self.assertEqual(status, 401)
            status, _, _ = http_get(srv.port, "/api/rooms/%s/export" % room, timeout=30,
                                    headers=auth(tokens["member"]))
            self.assertEqual(status, 403)
            # clients that go away while the room loads, or while the export is built
            room, tokens = cold[3]
            request = ("GET /api/rooms/%s/export?format=%%s HTTP/1.1\r\nHost: x\r\n"
                       "Authorization: Bearer %s\r\n\r\n" % (room, tokens["facilitator"]))
            for i in range(8):
                s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
                s.sendall((request % ("csv" if i % 2 else "json")).encode())
                await asyncio.sleep(0.02 * i)
                if i % 3 == 0:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                 b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
                s.close()
            await asyncio.sleep(0.5)
            self.assertEqual(http_get(srv.port, "/healthz")[0], 200)
            status, _, body = http_get(srv.port, "/api/rooms/%s/export?format=json" % room,
                                       timeout=30, headers=auth(tokens["facilitator"]))
            self.assertEqual(status, 200)
            self.assertEqual(len(json.loads(body)["items"]), COLD_ITEMS)


if __name__ == "__main__":
    main()
