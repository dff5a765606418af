#!/usr/bin/python3
"""Kano survey (PROTOCOL.md: "Kano survey"), issue #12 part 4:

1. the Kano table for all 25 answer pairs, through the reveal
2. counts, category (ties, all questionable) and both coefficients
3. secrecy: no answer in any message any other client receives, in a snapshot, a replay or the
   export, before or after the reveal; before it, only who and how many
4. observers answer; answering again replaces; the same answer again changes nothing
5. persistence across a restart (answers kept, still secret), then the reveal
6. bad input and permissions: clear errors, nothing half-applied
"""

import json
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Server, http_get, join  # noqa: E402
from test_poker import PokerBase  # noqa: E402

ANSWERS = ["like", "expect", "neutral", "tolerate", "dislike"]
# PROTOCOL.md's table, written out independently of the server's.
TABLE = {
    "like": "QAAAO",
    "expect": "RIIIM",
    "neutral": "RIIIM",
    "tolerate": "RIIIM",
    "dislike": "RRRRQ",
}
CATS = "AOMIRQ"
TIE_ORDER = "MOAIRQ"
SECRET_KEYS = {"functional", "dysfunctional", "answers", "counts", "category", "satisfaction",
               "dissatisfaction"}


def classify(f, d):
    return TABLE[f][ANSWERS.index(d)]


def expected_results(pairs):
    counts = {c: 0 for c in CATS}
    for f, d in pairs:
        counts[classify(f, d)] += 1
    best = max(TIE_ORDER, key=lambda c: (counts[c], -TIE_ORDER.index(c)))
    base = counts["A"] + counts["O"] + counts["M"] + counts["I"]
    return {
        "counts": counts,
        "total": len(pairs),
        "category": best if pairs else None,
        "satisfaction": (counts["A"] + counts["O"]) / base if base else None,
        "dissatisfaction": -(counts["O"] + counts["M"]) / base if base else None,
    }


def kano_leaks(obj, path="msg"):
    """Places where an answer could be: a secret key, non-nil results, an answer word."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = "%s.%s" % (path, k)
            if k in SECRET_KEYS:
                out.append(p)
            elif k == "results" and v is not None:
                out.append(p)
            else:
                out += kano_leaks(v, p)
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += kano_leaks(v, "%s[%d]" % (path, i))
    elif isinstance(obj, str) and obj in ANSWERS:
        out.append(path)
    return out


class KanoBase(PokerBase):

    async def answer(self, c, item, f, d, others=()):
        ok = await c.expect_ok("kano.answer", item=item, functional=f, dysfunctional=d)
        ev = await c.next_message("kano.answered", pred=lambda m: m["seq"] == ok["seq"])
        self.assertEqual((ev["item"], ev["pid"], ev["by"]), (item, c.pid, c.pid))
        self.assertEqual(kano_leaks(ev), [])
        for o in others:
            ev2 = await o.next_message("kano.answered", pred=lambda m: m["seq"] == ok["seq"])
            self.assertEqual(ev2, ev)
        return ev

    async def kano_reveal(self, F, item):
        ok = await F.expect_ok("kano.reveal", item=item)
        ev = await F.next_message("kano.revealed", pred=lambda m: m["seq"] == ok["seq"])
        self.assertEqual(ev["item"], item)
        return ev["results"]

    def assertResults(self, got, exp, what):
        self.assertEqual(got["counts"], exp["counts"], what)
        self.assertEqual(got["total"], exp["total"], what)
        self.assertEqual(got["category"], exp["category"], what)
        for k in ("satisfaction", "dissatisfaction"):
            if exp[k] is None:
                self.assertIsNone(got[k], "%s: %s" % (what, k))
            else:
                self.assertAlmostEqual(got[k], exp[k], 12, "%s: %s" % (what, k))


class TableTests(KanoBase):

    async def test_all_25_pairs(self):
        room, tokens, c = await self.team([("F", "facilitator", "Fay"), ("M", "member", "Max")])
        F, M = c["F"], c["M"]
        for f in ANSWERS:
            for d in ANSWERS:
                item = await self.add_item(F, "Feature %s/%s" % (f[:3], d[:3]))
                ev = await self.answer(M, item, f, d)
                self.assertEqual(ev["count"], 1)
                res = await self.kano_reveal(F, item)
                cat = classify(f, d)
                self.assertEqual(res["category"], cat, "%s/%s" % (f, d))
                self.assertEqual(res["counts"], {k: int(k == cat) for k in CATS})
                self.assertResults(res, expected_results([(f, d)]), "%s/%s" % (f, d))

    async def test_ties_coefficients_and_all_questionable(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M1", "member", "Max"),
            ("M2", "member", "Mia"), ("W", "observer", "Wes")])
        people = [c["F"], c["O"], c["M1"], c["M2"], c["W"]]
        F = c["F"]
        cases = [
            [("like", "expect"), ("expect", "dislike")],                     # A vs M: M
            [("like", "expect"), ("like", "dislike")],                       # A vs O: O
            [("like", "neutral"), ("neutral", "neutral")],                   # A vs I: A
            [("like", "dislike"), ("like", "dislike"), ("expect", "dislike"),
             ("like", "tolerate"), ("neutral", "expect")],                   # O wins
            [("like", "like"), ("dislike", "dislike")],                      # all Q
            [("dislike", "like"), ("like", "like"), ("dislike", "expect")],  # R, Q: no coefficient
        ]
        for i, pairs in enumerate(cases):
            item = await self.add_item(F, "Case %d" % i)
            for who, (f, d) in zip(people, pairs):
                await self.answer(who, item, f, d)
            res = await self.kano_reveal(F, item)
            self.assertResults(res, expected_results(pairs), "case %d %r" % (i, pairs))
        self.assertEqual(expected_results(cases[0])["category"], "M")
        self.assertEqual(expected_results(cases[4])["category"], "Q")
        self.assertIsNone(expected_results(cases[5])["satisfaction"])


class SecrecyTests(KanoBase):

    async def test_no_answer_before_or_after_reveal(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M", "member", "Max"),
            ("W", "observer", "Wes")])
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        item = await self.add_item(F, "Saved cards")
        start = (await F.expect_ok("focus", item=item))["seq"]
        everyone = [F, O, M, W]
        await self.answer(M, item, "like", "dislike", [F, O, W])
        await self.answer(W, item, "expect", "dislike", [F, O, M])   # an observer answers
        ev = await self.answer(M, item, "like", "neutral", [F, O, W])  # replaces
        self.assertEqual(ev["count"], 2)
        same = await M.expect_ok("kano.answer", item=item, functional="like",
                                 dysfunctional="neutral")
        self.assertNotIn("seq", same, "the same answer again changes nothing")
        await self.answer(F, item, "neutral", "neutral", [O, M, W])
        answered = sorted([M.pid, W.pid, F.pid])

        # a snapshot, a replay, the export: who answered, never what
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(kano_leaks(snap), [])
        [s] = snap["kano"]
        self.assertEqual((s["item"], s["revealed"], s["results"]), (item, False, None))
        self.assertEqual(sorted(s["answered"]), answered)
        R = await self.connect(self.server, "replay")
        rr = await join(R, room, tokens["member"], "Rae", since=start)
        self.assertEqual(rr["mode"], "replay")
        for e in await R.events_until(rr["seq"]):
            self.assertEqual(kano_leaks(e), [], repr(e))
        for role in ("facilitator", "owner"):
            status, _, body = http_get(self.server.port, "/api/rooms/%s/export?format=json"
                                       % room, headers={"Authorization": "Bearer " + tokens[role]})
            self.assertEqual(status, 200, body[:300])
            exported = json.loads(body)
            self.assertEqual(kano_leaks(exported, "export"), [])
            self.assertEqual([k["item"] for k in exported["kano"]], [item])
            status, _, body = http_get(self.server.port, "/api/rooms/%s/export?format=csv"
                                       % room, headers={"Authorization": "Bearer " + tokens[role]})
            self.assertEqual(status, 200, body[:300])

        # every message every client received up to now: no answer
        checked = 0
        for x in everyone + [R]:
            for m in x.all:
                self.assertEqual(kano_leaks(m), [], "%s received %r" % (x.label, m))
                checked += 1
        self.assertGreater(checked, 20)

        res = await self.kano_reveal(F, item)
        exp = expected_results([("like", "neutral"), ("expect", "dislike"), ("neutral", "neutral")])
        self.assertResults(res, exp, "reveal")
        for x in (O, M, W, R):
            ev = await x.next_message("kano.revealed", timeout=5)
            self.assertEqual(ev["results"], res, x.label)
        # after the reveal: the counts, still nobody's answer
        snap = await self.fresh_snapshot(room, tokens)
        [s] = snap["kano"]
        self.assertTrue(s["revealed"])
        self.assertEqual(s["results"], res)
        self.assertEqual(sorted(s["answered"]), answered)
        for x in everyone + [R]:
            for m in x.all:
                if m.get("t") != "snapshot":
                    m = {k: v for k, v in m.items() if k != "results"}
                else:
                    m = {k: v for k, v in m.items() if k != "kano"}
                self.assertEqual(kano_leaks(m), [], "%s received %r" % (x.label, m))
        # answers are closed after the reveal; reset opens the survey again
        await self.err(M, "conflict", "kano.answer", item=item, functional="like",
                       dysfunctional="like")
        await self.err(M, "forbidden", "kano.reset", item=item)
        ok = await F.expect_ok("kano.reset", item=item)
        ev = await F.next_message("kano.reset", pred=lambda m: m["seq"] == ok["seq"])
        self.assertEqual(ev["item"], item)
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["kano"], [{"item": item, "revealed": False, "answered": [],
                                         "results": None}])
        await self.err(F, "conflict", "kano.reveal", item=item)
        ev = await self.answer(O, item, "like", "like")
        self.assertEqual(ev["count"], 1)


class BadInputTests(KanoBase):

    async def test_bad_input_changes_nothing(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M", "member", "Max"),
            ("W", "observer", "Wes")])
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        item = await self.add_item(F, "Saved cards")
        seq = (await F.expect_ok("focus", item=item))["seq"]
        bad = [
            ("bad_request", dict(item=item, functional="love", dysfunctional="like")),
            ("bad_request", dict(item=item, functional="like", dysfunctional="")),
            ("bad_request", dict(item=item, functional="LIKE", dysfunctional="like")),
            ("bad_request", dict(item=item, functional=3, dysfunctional="like")),
            ("bad_request", dict(item=item, functional=None, dysfunctional="like")),
            ("bad_request", dict(item=item, functional="like")),
            ("bad_request", dict(functional="like", dysfunctional="like")),
            ("not_found", dict(item="i999", functional="like", dysfunctional="like")),
        ]
        for code, fields in bad:
            await self.err(M, code, "kano.answer", **fields)
        await self.err(F, "not_found", "kano.reveal", item="i999")
        await self.err(F, "conflict", "kano.reveal", item=item)    # nobody has answered
        await self.err(F, "conflict", "kano.reset", item=item)
        await self.answer(W, item, "like", "dislike")
        for x in (O, M, W):
            await self.err(x, "forbidden", "kano.reveal", item=item)
        await self.err(F, "bad_request", "kano.reveal")
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["seq"], seq + 1, "only the one good answer made an event")
        self.assertEqual(snap["kano"], [{"item": item, "revealed": False,
                                         "answered": [W.pid], "results": None}])
        # a removed item's survey is no longer shown, and takes no answer
        await F.expect_ok("item.remove", item=item)
        await self.err(M, "not_found", "kano.answer", item=item, functional="like",
                       dysfunctional="like")
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["kano"], [])


class RestartTests(KanoBase):

    async def test_answers_survive_restart(self):
        srv = Server()
        srv.start()
        try:
            room, tokens, c = await self.team([
                ("F", "facilitator", "Fay"), ("M", "member", "Max"), ("W", "observer", "Wes")],
                server=srv)
            ids = {k: (x.join_ok["pid"], x.join_ok["secret"], x.join_ok["name"])
                   for k, x in c.items()}
            item = await self.add_item(c["F"], "Saved cards")
            other = await self.add_item(c["F"], "Dark mode")
            await self.answer(c["M"], item, "like", "dislike")
            await self.answer(c["W"], item, "expect", "dislike")
            await self.answer(c["W"], other, "like", "neutral")
            await self.kano_reveal(c["F"], other)
            self.assertEqual(await srv.astop(), 0)
            srv.start()
            back = {}
            for k, (pid, secret, name) in ids.items():
                x = await self.connect(srv, k + "-back")
                await join(x, room, None, name, pid=pid, secret=secret, expect_mode="snapshot")
                back[k] = x
            snap = back["F"].snapshot
            self.assertEqual([s["item"] for s in snap["kano"]], [item, other])
            s, o = snap["kano"]
            self.assertEqual(sorted(s["answered"]), sorted([ids["M"][0], ids["W"][0]]))
            self.assertIsNone(s["results"])
            self.assertTrue(o["revealed"])
            self.assertResults(o["results"], expected_results([("like", "neutral")]), "other")
            for x in back.values():
                self.assertEqual(kano_leaks({k: v for k, v in x.snapshot.items()
                                             if k != "kano"}), [])
            self.assertEqual(kano_leaks(s), [])
            ev = await self.answer(back["M"], item, "like", "expect")   # replaces after restart
            self.assertEqual(ev["count"], 2)
            res = await self.kano_reveal(back["F"], item)
            self.assertResults(res, expected_results([("like", "expect"), ("expect", "dislike")]),
                               "after restart")
            for x in back.values():
                await x.close()
        finally:
            await srv.astop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
