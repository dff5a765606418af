#!/usr/bin/python3
"""Strings never contain a NUL byte (issue 10, item 2; PROTOCOL.md "Envelope").

A NUL inside any string of a request, in every string field of every operation (item fields,
acceptance and labels entries, deck cards, names, ids, tokens, epochs, pids, secrets, patterns,
split children, keys and fields the operation ignores), is refused with `bad_request` and a
sentence that names the field; nothing is stored: the seq does not move, and a fresh join's
snapshot, before and after a restart, is what it was before."""

import asyncio
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, Server, comparable_snapshot, create_room, join,  # noqa
                     main, summarize)

# Item fields a client sends, with a valid value each; the case puts a NUL into it.
ITEM_STR_FIELDS = {
    "title": "Story", "kind": "story", "persona": "a user", "goal": "to log in",
    "benefit": "I get in", "notes": "some notes", "estimate": "5", "moscow": "must",
    "status": "ready",
}
ITEM_LIST_FIELDS = ("acceptance", "labels")
BAD_DECK = ["5\0a", "5\0b", "\0"]


def with_nul(value):
    """The valid value with a NUL inside (after its first byte), or a lone NUL."""
    return value[:1] + "\0" + value[1:] if value else "\0"


def item_variants():
    """(named field, item map) for every client-sent string of an item."""
    yield "title", {"title": "\0"}
    yield "title", {"title": "Sto\0ry"}
    for f, v in ITEM_STR_FIELDS.items():
        if f != "title":
            yield f, {"title": "Ok", f: with_nul(v)}
    for f in ITEM_LIST_FIELDS:
        yield f, {"title": "Ok", f: ["fine", "bad\0entry"]}
        yield f, {"title": "Ok", f: ["\0"]}
    yield "key", {"title": "Ok", "notes\0x": "a key with a NUL"}


def cases(x):
    """(who, op, fields, a word the error must contain) for every string of every operation.
    who: "u" a connection that has not joined, "f" the facilitator."""
    room, tok, a, b, rnd = x["room"], x["tokens"], x["a"], x["b"], x["round"]
    out = []
    # room.create
    out += [("u", "room.create", {"name": "\0"}, "name"),
            ("u", "room.create", {"name": "Ro\0om"}, "name"),
            ("u", "room.create", {"name": "Deck", "deck": BAD_DECK}, "deck"),
            ("u", "room.create", {"name": "Deck", "deck": ["1", "2\0"]}, "deck"),
            ("u", "room.create", {"name": "Deck", "deck": "fibonacci\0"}, "deck")]
    # join: every string, on an otherwise valid join
    base = {"room": room, "token": tok["member"], "name": "Nia"}
    for f in ("room", "token", "name"):
        out.append(("u", "join", dict(base, **{f: with_nul(base[f])}), f))
    out.append(("u", "join", dict(base, name="\0"), "name"))
    out.append(("u", "join", dict(base, since=0, epoch="0\0"), "epoch"))
    re = {"room": room, "pid": x["fpid"], "secret": x["fsecret"], "name": "Fay"}
    for f in ("pid", "secret"):
        out.append(("u", "join", dict(re, **{f: with_nul(re[f])}), f))
    # role.set, token.rotate
    out += [("f", "role.set", {"pid": with_nul(x["mpid"]), "role": "owner"}, "pid"),
            ("f", "role.set", {"pid": x["mpid"], "role": "owner\0"}, "role"),
            ("f", "token.rotate", {"role": "member\0"}, "role")]
    # room.update
    out += [("f", "room.update", {"name": "Re\0named"}, "name"),
            ("f", "room.update", {"name": "\0"}, "name"),
            ("f", "room.update", {"deck": BAD_DECK}, "deck"),
            ("f", "room.update", {"deck": "tshirt\0"}, "deck")]
    # item.add, item.update, item.split: every item field
    for named, item in item_variants():
        out.append(("f", "item.add", {"item": item}, named))
        s = {k: v for k, v in item.items() if k != "title" or "\0" in v}
        out.append(("f", "item.update", {"item": a, "set": s}, named))
        out.append(("f", "item.split", {"item": a, "children": [{"title": "One"}, item]}, named))
    out += [("f", "item.add", {"item": {"title": "Ok"}, "after": with_nul(a)}, "after"),
            ("f", "item.update", {"item": with_nul(a), "set": {"notes": "n"}}, "item"),
            ("f", "item.move", {"item": with_nul(a), "after": None}, "item"),
            ("f", "item.move", {"item": a, "after": with_nul(b)}, "after"),
            ("f", "item.remove", {"item": with_nul(a)}, "item"),
            ("f", "item.split", {"item": with_nul(a), "children": [{"title": "One"}]}, "item"),
            ("f", "item.split", {"item": a, "children": [{"title": "One"}], "pattern": "wo\0rk"},
             "pattern"),
            ("f", "focus", {"item": with_nul(a)}, "item")]
    # poker
    out += [("f", "round.start", {"item": with_nul(a)}, "item"),
            ("f", "round.start", {"item": a, "deck": BAD_DECK}, "deck"),
            ("f", "round.start", {"item": a, "deck": "powers\0"}, "deck"),
            ("f", "vote", {"round": with_nul(rnd), "card": "5"}, "round"),
            ("f", "vote", {"round": rnd, "card": "5\0"}, "card"),
            ("f", "vote", {"round": rnd, "card": "8", "confidence": "high\0"}, "confidence"),
            ("f", "round.reveal", {"round": with_nul(rnd)}, "round"),
            ("f", "round.accept", {"round": rnd, "estimate": "8\0"}, "estimate"),
            ("f", "round.accept", {"round": with_nul(rnd), "estimate": "8"}, "round"),
            ("f", "round.cancel", {"round": with_nul(rnd)}, "round"),
            ("f", "hint", {"item": with_nul(a), "what": "editing"}, "item"),
            ("f", "hint", {"item": a, "what": "editing\0"}, "what")]
    # strings the operation ignores are refused too: no string of a message holds a NUL
    out += [("f", "timer.stop", {"note": "\0"}, "note"),
            ("f", "focus", {"item": a, "extra": ["ok", {"deep": "\0"}]}, "deep"),
            ("f", "item.update\0", {"item": a, "set": {"notes": "n"}}, "t")]
    return out


def state_of(snap, me):
    """What a snapshot says that a change could alter (without the joiner itself)."""
    comp = comparable_snapshot(snap)
    comp["participants"].pop(me, None)
    return {"state": comp, "room": snap["room"], "round": snap.get("round"),
            "rounds": snap.get("rounds")}


class NulTests(AsyncTestCase):

    async def look(self, srv, room, token):
        """A fresh connection's snapshot: the first time as a new observer, then as the same
        participant again (pid + secret), so that the looker itself changes nothing."""
        c = await self.connect(srv, "look")
        if getattr(self, "looker", None) is None:
            await join(c, room, token, "Looker")
            self.looker = (c.pid, c.secret)
        else:
            await join(c, room, None, "Looker", pid=self.looker[0], secret=self.looker[1])
        st = state_of(c.snapshot, c.pid)
        await c.close()
        return st

    async def test_nul_in_every_string_is_refused_and_nothing_stored(self):
        srv = Server("--rate", "10000")
        srv.start()
        try:
            await self.run_cases(srv)
        finally:
            code = await srv.astop()
            srv._finish(None)
        self.assertEqual(code, 0, "server exit code on SIGTERM")

    async def run_cases(self, srv):
        c = await self.connect(srv, "creator")
        room, tokens = await create_room(c, "NUL room", deck=["1", "2", "3", "5", "8"])
        await c.close()
        f = await self.joined(srv, room, tokens["facilitator"], "Fay", label="F")
        m = await self.joined(srv, room, tokens["member"], "Max", label="M")
        a = (await f.expect_ok("item.add", item={"title": "A", "labels": ["x"],
                                                  "acceptance": ["works"]}))["item"]
        b = (await f.expect_ok("item.add", item={"title": "B"}))["item"]
        await f.expect_ok("round.start", item=b)
        rnd = (await f.next_message("round.started"))["round"]
        last = await f.expect_ok("vote", round=rnd, card="3")
        seq = last["seq"]
        x = {"room": room, "tokens": tokens, "a": a, "b": b, "round": rnd, "fpid": f.pid,
             "fsecret": f.secret, "mpid": m.pid}
        before = await self.look(srv, room, tokens["observer"])
        self.assertEqual(before["state"]["seq"], seq)

        failures = []
        for who, op, fields, named in cases(x):
            u = None
            if who == "u":
                u = await self.connect(srv, "u")
                sender = u
            else:
                sender = f
            r = await sender.request(op, **fields)
            msg = r.get("msg") or ""
            if (r.get("t") != "err" or r.get("code") != "bad_request" or "NUL" not in msg
                    or named not in msg):
                failures.append("%s %s -> %s" % (op, summarize(fields, 160), summarize(r, 200)))
            if u is not None:
                await u.close()
        self.assertFalse(failures, "%d of %d requests with a NUL were not refused as "
                         "bad_request naming the field:\n  %s"
                         % (len(failures), len(cases(x)), "\n  ".join(failures)))

        # nothing stored: the seq did not move, no event was sent, a fresh join sees the same
        self.assertEqual((await f.expect_ok("hint", item=None, what=None)).get("seq"), None)
        self.assertEqual([e["seq"] for e in f.seen_events() if e["seq"] > seq], [])
        self.assertEqual(await self.look(srv, room, tokens["observer"]), before)
        await f.close()
        await m.close()
        self.assertEqual(await srv.astop(), 0, "server exit code on SIGTERM")
        srv.start()
        self.assertEqual(await self.look(srv, room, tokens["observer"]), before)


if __name__ == "__main__":
    main()
