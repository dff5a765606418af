#!/usr/bin/python3
"""Hostile and malformed input (PROTOCOL.md: Transport): the server answers bad_request, keeps
the connection (except for over-size messages: close 1009), stays up for everyone else and never
changes room state because of a bad frame."""

import asyncio
import os
import random
import sys
import unittest

import msgpack

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, SharedServerTestCase, RawWs, Server, comparable_snapshot, create_room,  # noqa
                     http_get, join, pack)


def nested_array(depth, leaf="x"):
    v = leaf
    for _ in range(depth):
        v = [v]
    return v


def map_with_raw_value(fields, key, raw_value):
    """Encode {**fields, key: <raw_value bytes>} by hand (raw_value may be a truncated header)."""
    out = bytearray()
    n = len(fields) + 1
    assert n < 16
    out.append(0x80 | n)
    for k, v in fields.items():
        out += pack(k) + pack(v)
    out += pack(key) + raw_value
    return bytes(out)


def exactly(size, rid):
    """A well-formed item.add request of exactly `size` bytes."""
    n = size - 100
    while True:
        msg = pack({"t": "item.add", "id": rid, "item": {"title": "big", "notes": "n" * n}})
        if len(msg) == size:
            return msg
        n += size - len(msg)


class BadInputTests(SharedServerTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        srv = self.server
        c = await self.connect(srv, "creator")
        self.room, self.tokens = await create_room(c, "Bad input room")
        await c.close()
        self.M = await self.joined(srv, self.room, self.tokens["member"], "Max", label="M")
        self.O = await self.joined(srv, self.room, self.tokens["owner"], "Olga", label="O")
        w = await self.connect(srv, "W")
        self.wok = await join(w, self.room, self.tokens["observer"], "Wes")
        await w.close()
        self.item_a = (await self.M.expect_ok("item.add", item={"title": "A"}))["item"]
        self.item_b = (await self.M.expect_ok("item.add", item={"title": "B"}))["item"]
        self.follow = 0

    async def probe(self):
        """The room's state as a fresh connection of the same observer participant sees it."""
        c = await self.connect(self.server, "probe")
        await join(c, self.room, None, "Wes", pid=self.wok["pid"], secret=self.wok["secret"])
        snap = c.snapshot
        await c.close()
        return comparable_snapshot(snap)

    async def still_works(self, client=None):
        """The connection (if still open) and another client can still do valid requests."""
        self.follow += 1
        if client is not None:
            await client.expect_ok("item.update", item=self.item_a,
                                   set={"title": "follow-up %d" % self.follow})
            stray = [m for m in client.inbox if m.get("t") in ("ok", "err")]
            self.assertEqual(stray, [], "exactly one reply per bad frame; stray replies: %s"
                             % stray)
        await self.O.expect_ok("item.move", item=self.item_b, after=None)
        await self.O.expect_ok("item.move", item=self.item_a, after=None)
        status, _, _ = http_get(self.server.port, "/healthz")
        self.assertEqual(status, 200)

    async def check_bad(self, data, code="bad_request", expect_id=None, client=None):
        client = client or self.M
        before = await self.probe()
        await client.raw_send(data)
        err = await client.next_message("err")
        self.assertEqual(err.get("code"), code, "for input %r: %s" % (data[:60], err))
        self.assertIsInstance(err.get("msg"), str)
        if expect_id is not None:
            self.assertEqual(err.get("id"), expect_id, "the request id is echoed: %s" % err)
        self.assertFalse(client.closed, "connection stays open after a bad frame")
        after = await self.probe()
        self.assertEqual(after, before, "room state unchanged by %r" % (data[:60],))
        await self.still_works(client)
        return err

    # ----------------------------------------------------------------------
    async def test_text_frame(self):
        await self.check_bad("hello")
        await self.check_bad('{"t": "item.add", "id": 900001, "item": {"title": "json"}}')

    async def test_random_bytes(self):
        rnd = random.Random(42)
        before = await self.probe()
        for i in range(25):
            data = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
            await self.M.raw_send(data)
            err = await self.M.next_message("err")
            self.assertEqual(err["code"], "bad_request", "random input %d %r" % (i, data[:40]))
        await self.still_works(self.M)
        after = await self.probe()
        # still_works changed the order/titles; compare only what random bytes could touch
        self.assertEqual(after["seq"], before["seq"] + 3)
        self.assertEqual(set(after["items"]), set(before["items"]))
        await self.check_bad(b"\xc1")          # a never-used byte

    async def test_not_a_map(self):
        await self.check_bad(pack([1, 2, 3]))
        await self.check_bad(pack(["item.add", {"title": "x"}]))
        await self.check_bad(pack("item.add"))
        await self.check_bad(pack(5))
        await self.check_bad(pack(None))
        await self.check_bad(b"")

    async def test_trailing_bytes(self):
        msg = pack({"t": "item.add", "id": 900010, "item": {"title": "trailing"}})
        await self.check_bad(msg + b"\xc0")
        await self.check_bad(msg + b"\x00\x00\x00")
        # two complete maps in one frame: neither is executed
        msg2 = pack({"t": "item.add", "id": 900011, "item": {"title": "second"}})
        await self.check_bad(msg + msg2)

    async def test_truncated(self):
        msg = pack({"t": "item.add", "id": 900015, "item": {"title": "truncated"}})
        for cut in (1, 5, len(msg) // 2, len(msg) - 1):
            await self.check_bad(msg[:cut])

    async def test_missing_t(self):
        await self.check_bad(pack({"id": 900020, "item": {"title": "no t"}}), expect_id=900020)
        await self.check_bad(pack({"t": 5, "id": 900021}), expect_id=900021)
        await self.check_bad(pack({"t": None, "id": 900022}), expect_id=900022)

    async def test_unknown_op(self):
        await self.check_bad(pack({"t": "item.explode", "id": 900030}), code="unknown_op",
                             expect_id=900030)
        await self.check_bad(pack({"t": "", "id": 900031}), code="unknown_op",
                             expect_id=900031)

    async def test_bad_ids_and_keys(self):
        await self.check_bad(pack({"t": "item.add", "item": {"title": "no id"}}))
        await self.check_bad(pack({"t": "item.add", "id": "abc", "item": {"title": "str id"}}))
        await self.check_bad(pack({"t": "item.add", "id": -1, "item": {"title": "neg id"}}))
        await self.check_bad(pack({"t": "item.add", "id": 1.5, "item": {"title": "float id"}}))
        await self.check_bad(pack({"t": "item.add", "id": 2 ** 53 + 1,
                                   "item": {"title": "big id"}}))
        # the largest permitted id is echoed
        r = await self.M.request("item.explode")      # normal path works with small ids
        self.assertEqual(r["code"], "unknown_op")
        await self.M.raw_send(pack({"t": "item.explode", "id": 2 ** 53 - 1}))
        err = await self.M.next_message("err")
        self.assertEqual((err["code"], err.get("id")), ("unknown_op", 2 ** 53 - 1))

    async def test_non_string_key(self):
        # PROTOCOL.md Transport: "All keys are short lowercase strings."
        await self.check_bad(pack({1: 2, "t": "item.add", "id": 900035,
                                   "item": {"title": "int key"}}))
        await self.check_bad(pack({"t": "item.add", "id": 900036,
                                   "item": {"title": "int key inside", 7: "x"}}))

    async def test_missing_or_ill_typed_fields_echo_id(self):
        M = self.M
        # request() matches the reply by id: a reply without the id would time out here
        cases = [
            ("item.add", {}),
            ("item.add", {"item": "title"}),
            ("item.add", {"item": {"title": 7}}),
            ("item.add", {"item": {"title": "t", "acceptance": {"a": 1}}}),
            ("item.update", {"item": self.item_a}),
            ("item.update", {"item": 12, "set": {"title": "t"}}),
            ("item.update", {"item": self.item_a, "set": [1]}),
            ("item.move", {"item": self.item_a, "after": 5}),
            ("item.move", {"item": [self.item_a], "after": None}),
            ("item.remove", {"item": True}),
            ("room.create", {"name": b"bytes name"}),
            ("room.create", {"name": {"n": 1}}),
            ("join", {"room": self.room, "token": self.tokens["member"], "name": "X",
                      "since": "5"}),
        ]
        before = await self.probe()
        for op, fields in cases:
            r = await M.request(op, **fields)
            self.assertEqual(r["t"], "err", "%s %s -> %s" % (op, fields, r))
            # join on a joined connection may be judged a conflict before field checks
            allowed = ("bad_request", "conflict") if op == "join" else ("bad_request",)
            self.assertIn(r["code"], allowed, "%s %s -> %s" % (op, fields, r))
        self.assertEqual(await self.probe(), before)
        await self.still_works(M)
        # and on an unjoined connection, a join with an ill-typed field
        c = await self.connect(self.server, "unjoined")
        r = await c.request("join", room=self.room, token=self.tokens["member"], name="X",
                            since="5")
        self.assertEqual((r["t"], r.get("code")), ("err", "bad_request"))
        r = await c.request("join", room=42, token=self.tokens["member"], name="X")
        self.assertEqual((r["t"], r.get("code")), ("err", "bad_request"))

    async def test_huge_declared_lengths(self):
        await self.check_bad(b"\xdd\xff\xff\xff\xff")                 # array32, 2^32-1 elements
        await self.check_bad(b"\xdb\xff\xff\xff\xff" + b"abc")        # str32, 4 GiB
        await self.check_bad(b"\xdf\xff\xff\xff\xff")                 # map32
        await self.check_bad(b"\xc6\xff\xff\xff\xff" + b"\x00" * 10)  # bin32
        await self.check_bad(b"\xc9\xff\xff\xff\xff\x01")             # ext32
        await self.check_bad(b"\xdc\xff\xff")                         # array16, 65535
        base = {"t": "item.add", "id": 900040}
        await self.check_bad(map_with_raw_value(base, "item", b"\xdd\xff\xff\xff\xff"))
        await self.check_bad(map_with_raw_value(base, "item", b"\xdb\xff\xff\xff\xffabc"))
        await self.check_bad(map_with_raw_value(base, "item", b"\xdf\xff\xff\xff\xff"))
        await self.check_bad(map_with_raw_value(
            base, "item", b"\x81\xa5title\xdb\x00\x01\x00\x00" + b"x" * 100))
        await self.check_bad(b"\x81\xdb\xff\xff\xff\xff")             # map with a str32 key
        await self.check_bad(map_with_raw_value(
            base, "item", b"\x82\xa5title\xa1x\xaaacceptance\xdd\x7f\xff\xff\xff"))
        status, _, _ = http_get(self.server.port, "/healthz")
        self.assertEqual(status, 200)

    async def test_deep_nesting(self):
        await self.check_bad(pack({"t": "item.add", "id": 900050,
                                   "item": {"title": "deep", "acceptance": nested_array(100)}}))
        await self.check_bad(pack({"t": "item.add", "id": 900051,
                                   "item": {"title": "deep", "acceptance": nested_array(33)}}))
        await self.check_bad(pack({"t": "item.add", "id": 900052, "x": nested_array(40)}))
        # very deep, still under the size limit: must not exhaust the server's stack
        await self.check_bad(b"\x91" * 60000 + b"\xc0")
        await self.check_bad(b"\x81\xa1x" * 20000 + b"\xc0")

    def raw_joined(self):
        """A raw WebSocket joined as a member (reads are blocking: keep them short)."""
        x = RawWs(self.server.port)
        x.send_msg({"t": "join", "id": 1, "room": self.room, "token": self.tokens["member"],
                    "name": "Xena"})
        ok = x.recv_msg()
        self.assertEqual(ok.get("t"), "ok", ok)
        snap = x.recv_msg()
        self.assertEqual(snap.get("t"), "snapshot", snap)
        return x

    @staticmethod
    def send_all(x, frames):
        """Send (opcode, payload, fin) frames; the server may close part-way (EPIPE/RST)."""
        try:
            for op, payload, fin in frames:
                x.send_frame(op, payload, fin)
        except OSError:
            pass

    async def test_oversized_message_closes_1009(self):
        big = exactly(70000, 900060)
        self.assertEqual(len(big), 70000)
        x = self.raw_joined()
        before = await self.probe()
        self.send_all(x, [(2, big, True)])
        code = x.close_code()
        x.close()
        self.assertEqual(code, 1009, "close code for a 70,000-byte message (None: no close "
                                     "frame, the TCP connection just ended)")
        self.assertEqual(await self.probe(), before, "the oversized message was not executed")
        await self.still_works(self.M)
        # an unjoined connection, random bytes
        y = RawWs(self.server.port)
        self.send_all(y, [(2, os.urandom(70000), True)])
        self.assertEqual(y.close_code(), 1009)
        y.close()
        # the same through the websockets library (whole message, no race with fragments)
        X = await self.joined(self.server, self.room, self.tokens["member"], "Xena", label="X")
        before = await self.probe()
        try:
            await X.raw_send(exactly(70000, 900061))
        except Exception:
            pass
        self.assertEqual(await X.wait_closed(5), 1009)
        self.assertEqual(await self.probe(), before)
        await self.still_works(self.M)

    async def test_oversized_fragmented_message_closes_1009(self):
        big = exactly(80000, 900070)
        frags = [big[i:i + 10000] for i in range(0, len(big), 10000)]
        x = self.raw_joined()
        before = await self.probe()
        self.send_all(x, [(2 if i == 0 else 0, f, i == len(frags) - 1)
                          for i, f in enumerate(frags)])
        code = x.close_code()
        x.close()
        self.assertEqual(code, 1009, "the cap applies to the reassembled message (each fragment "
                         "is 10,000 bytes)")
        self.assertEqual(await self.probe(), before)
        await self.still_works(self.M)

    async def test_large_valid_message_accepted(self):
        """A valid ~61 KB message (under 64 KiB), whole and fragmented, is processed."""
        item = {"title": "large", "acceptance": ["a" * 1000] * 50, "notes": "n" * 10000}
        msg = pack({"t": "item.add", "id": 900080, "item": item})
        self.assertLess(len(msg), 65536)
        self.assertGreater(len(msg), 60000)
        await self.M.raw_send(msg)
        r = await self.M.next_message("ok")
        self.assertEqual(r["id"], 900080)
        self.assertIn("seq", r)
        msg = pack({"t": "item.add", "id": 900081, "item": item})
        await self.M.raw_send([msg[i:i + 4096] for i in range(0, len(msg), 4096)])
        r = await self.M.next_message("ok")
        self.assertEqual(r["id"], 900081)
        c = await self.connect(self.server, "check")
        await join(c, self.room, self.tokens["observer"], "Chk")
        larges = [i for i in c.snapshot["items"] if i["title"] == "large"]
        self.assertEqual(len(larges), 2)
        self.assertEqual(larges[0]["acceptance"], ["a" * 1000] * 50)
        await self.still_works(self.M)

    async def test_bad_input_unjoined_connection(self):
        c = await self.connect(self.server, "unjoined")
        for data in ("text", b"\x93\x01\x02\x03", b"\xdd\xff\xff\xff\xff",
                     pack({"id": 900090}), pack({"t": "join"}) + b"\x00"):
            await c.raw_send(data)
            err = await c.next_message("err")
            self.assertEqual(err["code"], "bad_request", "for %r" % (data,))
        # and then a normal join works on it
        ok = await join(c, self.room, self.tokens["member"], "Late")
        self.assertEqual(ok["role"], "member")
        await self.still_works(c)

    async def test_binary_and_ext_values(self):
        # bin where a string is expected
        await self.check_bad(pack({"t": "item.add", "id": 900100, "item": {"title": b"bin"}}),
                             expect_id=900100)
        # a timestamp/ext value
        ext = msgpack.ExtType(5, b"\x00\x01")
        await self.check_bad(pack({"t": "item.add", "id": 900101, "item": {"title": ext}}),
                             expect_id=900101)
    async def test_invalid_utf8_string(self):
        # a MessagePack str must be UTF-8; storing and re-broadcasting invalid bytes would
        # break every client's decoder
        await self.check_bad(map_with_raw_value({"t": "item.add", "id": 900102}, "item",
                                                b"\x81\xa5title\xa2\xff\xfe"),
                             expect_id=900102)


if __name__ == "__main__":
    unittest.main(verbosity=2)
