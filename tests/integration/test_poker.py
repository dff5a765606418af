#!/usr/bin/python3
"""Planning poker (PROTOCOL.md: "Planning poker", "Roles", "Who may send what"), issue #3:

1. secrecy of votes before the reveal, in every message any client can receive
2. the statistics at the reveal, on known vote sets, for every built-in deck and custom decks
3. the permission table of PROTOCOL.md, op by op and role by role
4. auto-reveal, re-vote history, accept, cancel, the timer (and reveal_on_timer)
5. identity and vote kept across a reconnect and across a server restart mid-round
6. bad input
7. an end-to-end session, whose summary is printed to stdout
"""

import asyncio
import collections
import json
import math
import os
import re
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, SharedServerTestCase, ROLES, ROOT, Server, create_room, http_get,  # noqa: E402
                     is_event, join)

DOC = os.path.join(ROOT, "protocol", "PROTOCOL.md")

DECKS = {
    "fibonacci": ["0", "1", "2", "3", "5", "8", "13", "21", "34", "55", "89", "?", "coffee"],
    "modified": ["0", "½", "1", "2", "3", "5", "8", "13", "20", "40", "100", "?", "coffee"],
    "tshirt": ["XS", "S", "M", "L", "XL", "XXL", "?", "coffee"],
    "powers": ["0", "1", "2", "4", "8", "16", "32", "64", "?", "coffee"],
}
SPECIAL = ("?", "coffee")
STATS_FIELDS = ("count", "not_voted", "missing", "numeric", "min", "max", "mean", "median",
                "distribution", "mode", "consensus", "spread", "highest", "lowest", "suggested",
                "confidence")
ROUND_FIELDS = ("id", "item", "state", "deck", "anonymous", "deadline", "started_at",
                "revealed_at", "voters", "voted", "votes", "stats", "estimate")


def now_ms():
    return int(time.time() * 1000)


# ---------------------------------------------------------------------------
# Independent model of PROTOCOL.md's Statistics table
# ---------------------------------------------------------------------------


def card_number(card):
    """'½' is 0.5; '?' and 'coffee' are not numbers; any other card that reads as a number is."""
    if card == "½":
        return 0.5
    if card in SPECIAL or not re.fullmatch(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", card):
        return None
    v = float(card)
    return v if math.isfinite(v) else None


def expected_stats(deck, votes, could_vote, anonymous=False):
    """deck: the round's cards; votes: {pid: (card, confidence or None)} (the last vote of each
    participant, withdrawn ones absent); could_vote: the round's voters plus everyone who may
    vote and is online at the reveal."""
    ordinary = [c for c in deck if c not in SPECIAL]
    step = {c: i for i, c in enumerate(ordinary)}
    cards = [c for c, _ in votes.values()]
    nums = sorted(v for v in (card_number(c) for c in cards) if v is not None)
    n = len(nums)
    median = None
    if n:
        median = nums[n // 2] if n % 2 else (nums[n // 2 - 1] + nums[n // 2]) / 2
    dist = collections.Counter(cards)
    mode, best = None, 0
    for c in deck:                              # a tie goes to the card earlier in the deck
        if dist[c] > best:
            mode, best = c, dist[c]
    steps = {pid: step[c] for pid, (c, _) in votes.items() if c in step}
    lo = min(steps.values()) if steps else None
    hi = max(steps.values()) if steps else None
    if nums:                                    # nearest the median, a tie goes to the larger
        cands = [(card_number(c), c) for c in deck if card_number(c) is not None]
        suggested = min(cands, key=lambda x: (abs(x[0] - median), -x[0]))[1]
    elif steps:                                 # no numbers: the card at the middle step
        st = sorted(steps.values())
        suggested = ordinary[st[len(st) // 2]]
    else:
        suggested = None
    missing = sorted(set(p for p in could_vote if p not in votes))
    conf = collections.Counter(cf for _, cf in votes.values() if cf)
    return {
        "count": len(votes),
        "not_voted": len(missing),
        "missing": [] if anonymous else missing,
        "numeric": n,
        "min": nums[0] if n else None,
        "max": nums[-1] if n else None,
        "mean": sum(nums) / n if n else None,
        "median": median,
        "distribution": dict(dist),
        "mode": mode,
        "consensus": bool(steps) and lo == hi,
        "spread": hi - lo if steps else None,
        "highest": [] if anonymous else sorted(p for p, s in steps.items() if s == hi),
        "lowest": [] if anonymous else sorted(p for p, s in steps.items() if s == lo),
        "suggested": suggested,
        "confidence": {"low": conf["low"], "medium": conf["medium"], "high": conf["high"]},
    }


def secrecy_leaks(obj, path="msg"):
    """Places in a message where a card could be: any key 'card', any non-nil 'votes', any
    non-nil 'stats', any 'distribution' key."""
    out = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            p = "%s.%s" % (path, k)
            if k == "card":
                out.append("%s = %r" % (p, v))
            elif k in ("votes", "stats") and v is not None:
                out.append("%s = %r" % (p, v))
            elif k == "distribution":
                out.append("%s = %r" % (p, v))
            out.extend(secrecy_leaks(v, p))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            out.extend(secrecy_leaks(v, "%s[%d]" % (path, i)))
    return out


def parse_permission_table():
    """{op: {role: 'yes'|'no'}} from PROTOCOL.md's "Who may send what" table."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    i = text.index("Who may send what")
    lines = text[i:].splitlines()[1:]
    table, header = {}, None
    for line in lines:
        line = line.strip()
        if not line:
            if header:
                break
            continue
        if not line.startswith("|"):
            if header:
                break
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if header is None:
            header = cells
            continue
        if set(cells[0]) <= set("- :"):
            continue
        op = cells[0].strip("`")
        table[op] = dict(zip(header[1:], cells[1:]))
    return header, table


def parse_request_fields():
    """{op: [(field, type, required)]} from PROTOCOL.md's "Fields of each request" table."""
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    i = text.index("Fields of each request")
    out = collections.defaultdict(list)
    started = False
    for line in text[i:].splitlines()[1:]:
        line = line.strip()
        if not line.startswith("|"):
            if started:
                break
            continue
        started = True
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] == "op" or set(cells[0]) <= set("- :"):
            continue
        out[cells[0].strip("`")].append((cells[1].strip("`"), cells[2], cells[3] == "yes"))
    return out


def guess_value(field, typ, ctx):
    """A plausible valid value for a request field of an op this file does not know."""
    if field in ctx:
        return ctx[field]
    enum = re.findall(r"`([^`]+)`", typ)
    if enum:
        return enum[0]
    if typ.startswith("integer"):
        return 1
    if typ.startswith("boolean"):
        return True
    if typ.startswith("map"):
        return {}
    if typ.startswith("array"):
        return []
    return "x"


# ---------------------------------------------------------------------------
# Test base
# ---------------------------------------------------------------------------


class PokerBase(SharedServerTestCase):

    # -- helpers -------------------------------------------------------------
    async def team(self, people, deck=None, name="Poker room", server=None):
        """people: [(label, role, name)]. Creates a room and joins everyone (snapshot mode).
        Returns (room, tokens, {label: Client})."""
        srv = server or self.server
        c = await self.connect(srv, "creator")
        room, tokens = await create_room(c, name, deck)
        await c.close()
        clients = {}
        for label, role, pname in people:
            clients[label] = await self.joined(srv, room, tokens[role], pname, label=label)
            self.assertEqual(clients[label].role, role)
        return room, tokens, clients

    async def add_item(self, c, title="Checkout with saved card"):
        r = await c.expect_ok("item.add", item={"title": title})
        return r["item"]

    async def start_round(self, F, item, **kw):
        ok = await F.expect_ok("round.start", item=item, **kw)
        ev = await F.next_message("round.started", pred=lambda m: m["seq"] == ok["seq"])
        return ev["round"], ev

    async def vote(self, c, rid, card, confidence=None):
        f = {"round": rid, "card": card}
        if confidence is not None:
            f["confidence"] = confidence
        ok = await c.expect_ok("vote", **f)
        ev = await c.next_message("voted", pred=lambda m: m["seq"] == ok["seq"])
        self.assertEqual(ev["round"], rid)
        self.assertEqual(ev["pid"], c.pid)
        self.assertEqual(ev["by"], c.pid)
        self.assertIs(ev["has"], card is not None)
        self.assertNotIn("card", ev)
        return ok

    async def reveal(self, F, rid):
        ok = await F.expect_ok("round.reveal", round=rid)
        ev = await F.next_message("round.revealed", pred=lambda m: m["seq"] == ok["seq"])
        self.assertEqual(ev["round"], rid)
        self.assertEqual(ev["by"], F.pid)
        return ev

    async def fresh_snapshot(self, room, tokens, server=None, label="fresh"):
        c = await self.connect(server or self.server, label)
        await join(c, room, tokens["observer"], "Fresh observer", expect_mode="snapshot")
        snap = c.snapshot
        await c.close()
        return snap

    async def err(self, c, code, op, **fields):
        r = await c.expect_err(code, op, **fields)
        self.assertIsInstance(r.get("msg"), str, "err %s for %s has no msg" % (code, op))
        self.assertTrue(r["msg"].strip(), "err %s for %s: empty msg" % (code, op))
        self.assertNotIn("seq", r, "an err changes nothing and carries no seq")
        return r

    def assertStats(self, got, exp, what):
        self.assertIsInstance(got, dict, "%s: stats %r" % (what, got))
        for f in STATS_FIELDS:
            self.assertIn(f, got, "%s: stats lack %r: %r" % (what, f, got))
        for f in STATS_FIELDS:
            g, e = got[f], exp[f]
            if f in ("min", "max", "mean", "median"):
                if e is None:
                    self.assertIsNone(g, "%s: stats.%s" % (what, f))
                else:
                    self.assertIsInstance(g, (int, float), "%s: stats.%s = %r" % (what, f, g))
                    self.assertAlmostEqual(g, e, 9, "%s: stats.%s = %r, expected %r"
                                           % (what, f, g, e))
            elif f in ("missing", "highest", "lowest"):
                self.assertIsInstance(g, list, "%s: stats.%s" % (what, f))
                self.assertEqual(sorted(g), sorted(e), "%s: stats.%s" % (what, f))
                self.assertEqual(len(g), len(set(g)), "%s: stats.%s has duplicates" % (what, f))
            elif f in ("consensus",):
                self.assertIs(g, e, "%s: stats.%s = %r, expected %r" % (what, f, g, e))
            else:
                self.assertEqual(g, e, "%s: stats.%s = %r, expected %r" % (what, f, g, e))

    def check_round_object(self, rd, what):
        self.assertIsInstance(rd, dict, what)
        for f in ROUND_FIELDS:
            self.assertIn(f, rd, "%s: round object lacks %r: %r" % (what, f, rd))


# ---------------------------------------------------------------------------
# 1. Secrecy
# ---------------------------------------------------------------------------


class SecrecyTests(PokerBase):

    async def test_no_card_before_reveal_anywhere(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M1", "member", "Max"),
            ("M2", "member", "Mia"), ("M3", "member", "Moe")])
        F, O, M1, M2, M3 = c["F"], c["O"], c["M1"], c["M2"], c["M3"]
        item = await self.add_item(F)
        before_round = (await F.expect_ok("focus", item=item))["seq"]
        rid, started = await self.start_round(F, item)
        self.assertEqual(sorted(started["voters"]),
                         sorted(x.pid for x in (F, O, M1, M2, M3)))
        self.assertEqual(started["deck"], DECKS["fibonacci"])
        self.assertIs(started["anonymous"], False)
        self.assertIsNone(started["deadline"])

        await self.vote(F, rid, "8", "high")
        await self.vote(O, rid, "5")
        await self.vote(M1, rid, "3", "low")
        await self.vote(M2, rid, "5", "medium")
        await self.vote(O, rid, "13")                    # changes the vote
        await self.vote(M2, rid, None)                   # withdraws
        await self.vote(M3, rid, "?")
        voted_now = sorted([F.pid, O.pid, M1.pid, M3.pid])

        # a fresh observer joins mid-round: snapshot
        W = await self.joined(self.server, room, tokens["observer"], "Wes", label="W")
        snap = W.snapshot
        self.check_round_object(snap["round"], "observer snapshot round")
        self.assertEqual(snap["round"]["id"], rid)
        self.assertEqual(snap["round"]["state"], "voting")
        self.assertIsNone(snap["round"]["votes"])
        self.assertIsNone(snap["round"]["stats"])
        self.assertEqual(sorted(snap["round"]["voted"]), voted_now)
        self.assertEqual(len(snap["rounds"]), 1)
        self.assertIsNone(snap["rounds"][0]["votes"])
        self.assertIsNone(snap["rounds"][0]["stats"])

        # M1 drops and comes back with pid + secret and `since`: replay
        m1ok = M1.join_ok
        await M1.close()
        await F.next_message("participant.left", pred=lambda m: m["pid"] == m1ok["pid"])
        M1b = await self.connect(self.server, "M1b")
        r = await join(M1b, room, None, "Max", since=before_round, pid=m1ok["pid"],
                       secret=m1ok["secret"])
        self.assertEqual(r["mode"], "replay")
        self.assertEqual(r["pid"], m1ok["pid"])
        self.assertEqual(r["role"], "member")
        replayed = await M1b.events_until(r["seq"])
        self.assertIn("voted", [e["t"] for e in replayed])
        self.assertIn("round.started", [e["t"] for e in replayed])

        # a fresh member joins with since=0: replay of everything
        Z = await self.connect(self.server, "Z")
        rz = await join(Z, room, tokens["member"], "Zed", since=0)
        self.assertEqual(rz["mode"], "replay")
        zev = await Z.events_until(rz["seq"])
        self.assertEqual([e["seq"] for e in zev], list(range(1, rz["seq"] + 1)))
        self.assertEqual(sum(1 for e in zev if e["t"] == "voted"), 7)

        # the facilitator in a second tab: snapshot (the facilitator learns no card either)
        F2 = await self.connect(self.server, "F2")
        await join(F2, room, None, "Fay", pid=F.pid, secret=F.secret, expect_mode="snapshot")
        self.assertIsNone(F2.snapshot["round"]["votes"])
        self.assertIsNone(F2.snapshot["round"]["stats"])
        self.assertEqual(sorted(F2.snapshot["round"]["voted"]), voted_now)

        # the HTTP export (facilitator's and owner's tokens) holds no card either
        for role in ("facilitator", "owner"):
            hdr = {"Authorization": "Bearer " + tokens[role]}
            status, _, body = http_get(self.server.port, "/api/rooms/%s/export?format=json"
                                       % room, headers=hdr)
            self.assertEqual(status, 200, body[:300])
            exported = json.loads(body)
            self.assertEqual(secrecy_leaks(exported, "export"), [])
            self.assertEqual([r["id"] for r in exported["rounds"]], [rid])
            self.assertIsNone(exported["rounds"][0]["votes"])
            status, _, body = http_get(self.server.port, "/api/rooms/%s/export?format=csv"
                                       % room, headers=hdr)
            self.assertEqual(status, 200, body[:300])

        # the reveal
        rev = await self.reveal(F, rid)
        expected_votes = {F.pid: "8", O.pid: "13", M1.pid: "3", M3.pid: "?"}
        self.assertEqual(rev["votes"], expected_votes)
        self.assertEqual(rev["stats"]["count"], 4)
        # Z (a member who joined after the start and is online) could vote too
        self.assertEqual(sorted(rev["stats"]["missing"]), sorted([M2.pid, Z.pid]))
        everyone = [F, O, M1b, M2, M3, W, Z, F2]
        for x in everyone[1:]:
            ev = await x.next_message("round.revealed", timeout=5)
            self.assertEqual(ev["votes"], expected_votes, x.label)

        # every message every client received before round.revealed: no card anywhere
        checked = 0
        for x in everyone + [M1]:
            msgs = x.all
            cut = next((i for i, m in enumerate(msgs) if m.get("t") == "round.revealed"),
                       len(msgs))
            self.assertTrue(x is M1 or cut < len(msgs), "%s saw the reveal" % x.label)
            for m in msgs[:cut]:
                leaks = secrecy_leaks(m)
                self.assertEqual(leaks, [], "%s received a card before the reveal: %r"
                                 % (x.label, m))
                checked += 1
                if m.get("t") == "snapshot":
                    for rd in ([m["round"]] if m["round"] else []) + m.get("rounds", []):
                        self.assertIsNone(rd["votes"])
                        self.assertIsNone(rd["stats"])
        self.assertGreater(checked, 60)

        status, _, body = http_get(self.server.port, "/api/rooms/%s/export" % room,
                                   headers={"Authorization": "Bearer " + tokens["owner"]})
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["rounds"][0]["votes"], expected_votes)

        # after the reveal, a snapshot shows the votes
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["round"]["state"], "revealed")
        self.assertEqual(snap["round"]["votes"], expected_votes)
        self.assertEqual(snap["rounds"][0]["votes"], expected_votes)
        self.assertEqual(snap["round"]["stats"], rev["stats"])

    async def test_cancelled_round_votes_never_shown(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M", "member", "Max"),
            ("W", "observer", "Wes")])
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        item = await self.add_item(F)
        rid, _ = await self.start_round(F, item)
        await self.vote(F, rid, "2")
        await self.vote(M, rid, "21")
        await self.vote(O, rid, "coffee")
        ok = await F.expect_ok("round.cancel", round=rid)
        ev = await W.next_message("round.cancelled")
        self.assertEqual(ev["seq"], ok["seq"])
        self.assertEqual(ev["round"], rid)
        self.assertEqual(ev["by"], F.pid)
        await self.err(M, "conflict", "vote", round=rid, card="3")
        await self.err(F, "conflict", "round.reveal", round=rid)
        await self.err(O, "conflict", "round.accept", round=rid, estimate="3")
        await self.err(F, "conflict", "round.cancel", round=rid)
        snap = await self.fresh_snapshot(room, tokens)
        self.assertIsNone(snap["round"], "a cancelled round is not the current round")
        self.assertEqual(len(snap["rounds"]), 1)
        rd = snap["rounds"][0]
        self.check_round_object(rd, "cancelled round")
        self.assertEqual(rd["state"], "cancelled")
        self.assertIsNone(rd["votes"])
        self.assertIsNone(rd["stats"])
        self.assertEqual(sorted(rd["voted"]), sorted([F.pid, M.pid, O.pid]))
        for x in (F, O, M, W):
            for m in x.all:
                self.assertEqual(secrecy_leaks(m), [], "%s: %r" % (x.label, m))
        # a new round can start on the item
        rid2, _ = await self.start_round(F, item)
        self.assertNotEqual(rid2, rid)

    async def test_no_card_in_log_lines(self):
        """With debug logging, the server's log holds none of the (distinctive) voted cards."""
        cards = ["kiwi-7q", "mango-3z", "papaya-9x", "guava-2w"]
        srv = Server("--log-level", "debug")
        srv.start()
        try:
            room, tokens, c = await self.team([
                ("F", "facilitator", "Fay"), ("M", "member", "Max"), ("O", "owner", "Olga")],
                deck=cards, server=srv)
            item = await self.add_item(c["F"])
            rid, _ = await self.start_round(c["F"], item)
            await self.vote(c["F"], rid, "mango-3z")
            await self.vote(c["M"], rid, "papaya-9x", "high")
            await self.vote(c["O"], rid, "guava-2w")
            for x in c.values():
                for m in x.all:
                    self.assertEqual(secrecy_leaks(m), [])
            log = srv.stderr_text()
            for card in ("mango-3z", "papaya-9x", "guava-2w"):
                self.assertNotIn(card, log, "the log names voted card %r before the reveal"
                                 % card)
            for x in list(c.values()):
                await x.close()
        finally:
            code = await srv.astop()
            srv._finish(None)
        self.assertEqual(code, 0)


# ---------------------------------------------------------------------------
# 2. Statistics
# ---------------------------------------------------------------------------


class StatsTests(PokerBase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M1", "member", "Max"),
            ("M2", "member", "Mia"), ("M3", "member", "Moe"), ("M4", "member", "Meg"),
            ("W", "observer", "Wes")], name="Stats room")
        self.room, self.tokens, self.c = room, tokens, c
        self.item = await self.add_item(c["F"])
        self.voters = [c[k].pid for k in ("F", "O", "M1", "M2", "M3", "M4")]

    async def play(self, deck, votes, anonymous=False, changes=(), only=None):
        """Run one round on self.item. deck: a built-in name or a list; votes:
        {label: card or (card, confidence)}; changes: earlier votes [(label, card, conf)] sent
        before the final ones. Returns (event, expected stats, pid votes)."""
        c = self.c
        F = c["F"]
        kw = {"anonymous": True} if anonymous else {}
        if deck is not None:
            kw["deck"] = deck
        rid, started = await self.start_round(F, self.item, **kw)
        cards = DECKS[deck] if isinstance(deck, str) else (deck or DECKS["fibonacci"])
        self.assertEqual(started["deck"], cards)
        self.assertEqual(sorted(started["voters"]), sorted(self.voters))
        self.assertIs(started["anonymous"], anonymous)
        for label, card, conf in changes:
            await self.vote(c[label], rid, card, conf)
        final = {}
        for label, v in votes.items():
            card, conf = v if isinstance(v, tuple) else (v, None)
            await self.vote(c[label], rid, card, conf)
            final[c[label].pid] = (card, conf)
        ev = await self.reveal(F, rid)
        exp = expected_stats(cards, final, self.voters, anonymous)
        what = "deck %s votes %s" % (deck, votes)
        if only is None:
            self.assertStats(ev["stats"], exp, what)
        else:
            for f in only:
                self.assertEqual(ev["stats"][f], exp[f], "%s: stats.%s" % (what, f))
        pid_votes = {p: cv[0] for p, cv in final.items()}
        if anonymous:
            self.assertIsNone(ev["votes"], what)
        else:
            self.assertEqual(ev["votes"], pid_votes, what)
        return ev, exp, pid_votes

    def pids(self, *labels):
        return sorted(self.c[k].pid for k in labels)

    async def test_fibonacci(self):
        ev, _, _ = await self.play("fibonacci", {
            "F": ("3", "high"), "O": ("5", "medium"), "M1": ("8", "low"), "M2": ("?", "high"),
            "M3": "coffee"})
        s = ev["stats"]
        # hand-written expectations
        self.assertEqual(s["count"], 5)
        self.assertEqual(s["numeric"], 3)
        self.assertEqual((s["min"], s["max"], s["median"]), (3, 8, 5))
        self.assertAlmostEqual(s["mean"], 16 / 3)
        self.assertEqual(s["distribution"], {"3": 1, "5": 1, "8": 1, "?": 1, "coffee": 1})
        self.assertEqual(s["mode"], "3", "a five-way tie goes to the card earliest in the deck")
        self.assertIs(s["consensus"], False)
        self.assertEqual(s["spread"], 2)
        self.assertEqual(sorted(s["highest"]), self.pids("M1"))
        self.assertEqual(sorted(s["lowest"]), self.pids("F"))
        self.assertEqual(s["suggested"], "5")
        self.assertEqual(s["not_voted"], 1)
        self.assertEqual(sorted(s["missing"]), self.pids("M4"))
        self.assertEqual(s["confidence"], {"low": 1, "medium": 1, "high": 2})

    async def test_fibonacci_even_median_tie_goes_to_larger(self):
        ev, _, _ = await self.play("fibonacci", {"F": "2", "O": "3", "M1": "5", "M2": "8"})
        s = ev["stats"]
        self.assertEqual(s["median"], 4)
        self.assertEqual(s["suggested"], "5", "3 and 5 are both 1 from 4: the larger")
        self.assertEqual(s["mode"], "2")
        self.assertEqual(s["spread"], 3)
        self.assertEqual(sorted(s["missing"]), self.pids("M3", "M4"))
        self.assertEqual(s["confidence"], {"low": 0, "medium": 0, "high": 0})

    async def test_fibonacci_changed_and_withdrawn_votes(self):
        ev, _, votes = await self.play(
            "fibonacci", {"F": ("13", "low"), "O": "13", "M1": ("21", "medium")},
            changes=[("M1", "1", "high"), ("M2", "2", "high"), ("M2", None, None),
                     ("F", "0", "high"), ("M3", "89", None), ("M3", None, None)])
        s = ev["stats"]
        self.assertEqual(votes, {self.c["F"].pid: "13", self.c["O"].pid: "13",
                                 self.c["M1"].pid: "21"})
        self.assertEqual(s["count"], 3)
        self.assertEqual(s["confidence"], {"low": 1, "medium": 1, "high": 0},
                         "only each participant's last vote counts")
        self.assertEqual(s["mode"], "13")
        self.assertEqual(sorted(s["highest"]), self.pids("M1"))
        self.assertEqual(sorted(s["lowest"]), self.pids("F", "O"))
        self.assertEqual(s["spread"], 1)
        self.assertEqual(s["suggested"], "13")
        self.assertEqual(sorted(s["missing"]), self.pids("M2", "M3", "M4"))

    async def test_modified_with_half(self):
        ev, _, _ = await self.play("modified", {
            "F": "½", "O": "½", "M1": "1", "M2": ("3", "low"), "M3": "?", "M4": "coffee"})
        s = ev["stats"]
        self.assertEqual(s["numeric"], 4)
        self.assertEqual(s["min"], 0.5)
        self.assertEqual(s["max"], 3)
        self.assertAlmostEqual(s["mean"], 1.25)
        self.assertAlmostEqual(s["median"], 0.75)
        self.assertEqual(s["suggested"], "1", "½ and 1 are both 0.25 from 0.75: the larger")
        self.assertEqual(s["mode"], "½")
        self.assertEqual(s["spread"], 3)
        self.assertEqual(sorted(s["lowest"]), self.pids("F", "O"))
        self.assertEqual(sorted(s["highest"]), self.pids("M2"))
        self.assertEqual(s["not_voted"], 0)
        self.assertEqual(s["missing"], [])

    async def test_modified_consensus(self):
        ev, _, _ = await self.play("modified", {"F": "13", "O": "13", "M1": "?", "M2": "coffee"})
        s = ev["stats"]
        self.assertIs(s["consensus"], True, "? and coffee do not break a consensus")
        self.assertEqual(s["spread"], 0)
        self.assertEqual(s["suggested"], "13")
        self.assertEqual(sorted(s["highest"]), self.pids("F", "O"))
        self.assertEqual(sorted(s["lowest"]), self.pids("F", "O"))

    async def test_tshirt(self):
        ev, _, _ = await self.play("tshirt", {
            "F": "S", "O": "M", "M1": ("XL", "high"), "M2": "M", "M3": "?", "M4": "coffee"})
        s = ev["stats"]
        self.assertEqual(s["numeric"], 0)
        for f in ("min", "max", "mean", "median"):
            self.assertIsNone(s[f], f)
        self.assertEqual(s["suggested"], "M", "steps 1,2,2,4: the element at index 2 is M")
        self.assertEqual(s["spread"], 3)
        self.assertEqual(s["mode"], "M")
        self.assertEqual(sorted(s["highest"]), self.pids("M1"))
        self.assertEqual(sorted(s["lowest"]), self.pids("F"))

    async def test_tshirt_two_votes_upper_middle(self):
        ev, _, _ = await self.play("tshirt", {"F": "XS", "O": "L"})
        self.assertEqual(ev["stats"]["suggested"], "L")
        self.assertEqual(ev["stats"]["spread"], 3)
        self.assertEqual(ev["stats"]["mode"], "XS")

    async def test_powers(self):
        ev, _, _ = await self.play("powers", {
            "F": "2", "O": "4", "M1": ("16", "medium"), "M2": "16", "M3": "?"})
        s = ev["stats"]
        self.assertEqual(s["median"], 10)
        self.assertAlmostEqual(s["mean"], 9.5)
        self.assertEqual(s["suggested"], "8")
        self.assertEqual(s["mode"], "16")
        self.assertEqual(s["spread"], 3)
        self.assertEqual(sorted(s["highest"]), self.pids("M1", "M2"))

    async def test_powers_tie_and_zero(self):
        ev, _, _ = await self.play("powers", {"F": "2", "O": "4"})
        self.assertEqual(ev["stats"]["suggested"], "4")
        ev, _, _ = await self.play("powers", {"F": "0", "O": "0", "M1": "coffee", "M2": "coffee",
                                              "M3": "coffee"})
        s = ev["stats"]
        self.assertEqual(s["mode"], "coffee")
        self.assertEqual((s["min"], s["max"], s["mean"], s["median"]), (0, 0, 0, 0))
        self.assertEqual(s["suggested"], "0")
        self.assertIs(s["consensus"], True)

    async def test_custom_deck_room(self):
        deck = ["½", "1", "3", "5", "10", "20", "?", "coffee"]
        room, tokens, c = await self.team([("F", "facilitator", "Fay"), ("O", "owner", "Olga"),
                                           ("M", "member", "Max"), ("N", "member", "Ned")],
                                          deck=deck, name="Custom deck room")
        self.assertEqual(c["F"].snapshot["room"]["deck"], deck)
        item = await self.add_item(c["F"])
        rid, started = await self.start_round(c["F"], item)
        self.assertEqual(started["deck"], deck, "the room's custom deck is the round's deck")
        await self.vote(c["F"], rid, "½", "low")
        await self.vote(c["O"], rid, "5")
        await self.vote(c["M"], rid, "10", "high")
        await self.vote(c["N"], rid, "coffee")
        ev = await self.reveal(c["F"], rid)
        votes = {c["F"].pid: ("½", "low"), c["O"].pid: ("5", None), c["M"].pid: ("10", "high"),
                 c["N"].pid: ("coffee", None)}
        exp = expected_stats(deck, votes, [x.pid for x in c.values()])
        self.assertStats(ev["stats"], exp, "custom deck")
        s = ev["stats"]
        self.assertEqual(s["median"], 5)
        self.assertEqual(s["suggested"], "5")
        self.assertEqual(s["spread"], 4)
        self.assertEqual(s["mode"], "½")
        self.assertAlmostEqual(s["mean"], 15.5 / 3)

    async def test_custom_deck_without_numbers(self):
        deck = ["mouse", "cat", "dog", "horse", "elephant", "?"]
        ev, _, _ = await self.play(deck, {"F": "cat", "O": "dog", "M1": "elephant", "M2": "?"})
        s = ev["stats"]
        self.assertEqual(s["numeric"], 0)
        self.assertEqual(s["suggested"], "dog", "steps 1,2,4: the element at index 1")
        self.assertEqual(s["spread"], 3)
        self.assertEqual(sorted(s["highest"]), self.pids("M1"))
        self.assertEqual(sorted(s["lowest"]), self.pids("F"))

    async def test_custom_deck_in_descending_order(self):
        """A custom deck need not be sorted: the tie for `suggested` goes to the larger card
        (by value), not to the one later in the deck; the mode tie to the earlier card."""
        deck = ["13", "8", "5", "3", "2", "1", "?"]
        ev, _, _ = await self.play(deck, {"F": "3", "O": "5"},
                                   only=("count", "numeric", "min", "max", "mean", "median",
                                         "distribution", "mode", "consensus", "spread",
                                         "suggested"))
        s = ev["stats"]
        self.assertEqual(s["median"], 4)
        self.assertEqual(s["mode"], "5", "a tie goes to the card earlier in the deck")
        self.assertEqual(s["spread"], 1)
        self.assertEqual(s["suggested"], "5", "3 and 5 are both 1 from the median 4: the "
                         "larger, 5")

    async def test_only_special_cards_and_empty_round(self):
        ev, _, _ = await self.play("fibonacci", {"F": "?", "O": "?", "M1": "coffee"})
        s = ev["stats"]
        self.assertEqual(s["mode"], "?")
        self.assertIs(s["consensus"], False, "no ordinary card: no consensus")
        self.assertIsNone(s["spread"])
        self.assertIsNone(s["suggested"])
        self.assertEqual(s["highest"], [])
        self.assertEqual(s["lowest"], [])
        ev, _, _ = await self.play("modified", {})
        s = ev["stats"]
        self.assertEqual(s["count"], 0)
        self.assertEqual(s["distribution"], {})
        self.assertIsNone(s["mode"])
        self.assertEqual(s["not_voted"], 6)

    async def test_anonymous_round(self):
        ev, _, _ = await self.play("fibonacci", {"F": "1", "O": "2", "M1": "3"}, anonymous=True)
        s = ev["stats"]
        self.assertEqual(s["not_voted"], 3)
        self.assertEqual(s["missing"], [])
        self.assertEqual(s["distribution"], {"1": 1, "2": 1, "3": 1})
        snap = await self.fresh_snapshot(self.room, self.tokens)
        self.assertIsNone(snap["round"]["votes"], "votes stay nil in an anonymous round")
        self.assertEqual(snap["round"]["stats"], s)


# ---------------------------------------------------------------------------
# 3. Permissions
# ---------------------------------------------------------------------------


class PermissionTests(PokerBase):

    async def attempt(self, op, role):
        """A fresh room set up so that `op` with the fields below is valid; the actor has
        `role`. Returns the reply."""
        F = await self.connect(self.server, "setup")
        room, tokens = await create_room(F, "Permissions %s %s" % (op, role))
        await join(F, room, tokens["facilitator"], "Setup")
        i1 = await self.add_item(F, "first")
        i2 = await self.add_item(F, "second")
        rid = None
        if op in ("vote", "round.reveal", "round.cancel", "round.accept"):
            rid, _ = await self.start_round(F, i1)
        if op == "round.accept":
            await F.expect_ok("vote", round=rid, card="3")
            await F.expect_ok("round.reveal", round=rid)
        if op == "timer.stop":
            await F.expect_ok("timer.start", seconds=600)
        A = await self.connect(self.server, "%s-%s" % (role, op))
        if op == "join":
            r = await A.request("join", room=room, token=tokens[role], name="Actor")
            if r.get("t") == "ok":
                self.assertEqual(r["role"], role)
                await A.next_message("snapshot")
            await A.close()
            await F.close()
            return r
        await join(A, room, tokens[role], "Actor")
        fields = {
            "room.create": {"name": "Another room"},
            "role.set": {"pid": F.pid, "role": "owner"},
            "room.update": {"name": "Renamed"},
            "item.add": {"item": {"title": "added"}},
            "item.update": {"item": i1, "set": {"notes": "more"}},
            "item.move": {"item": i2, "after": None},
            "item.remove": {"item": i2},
            "item.split": {"item": i1, "children": [{"title": "part a"}, {"title": "part b"}]},
            "focus": {"item": i1},
            "round.start": {"item": i1},
            "vote": {"round": rid, "card": "3"},
            "round.reveal": {"round": rid},
            "round.accept": {"round": rid, "estimate": "3"},
            "round.cancel": {"round": rid},
            "timer.start": {"seconds": 60},
            "timer.stop": {},
            "role.claim": {},
            "token.rotate": {"role": "member"},
        }.get(op)
        if fields is None:      # an op added after this file: fields from PROTOCOL.md
            ctx = {"item": i1, "round": rid, "pid": F.pid, "name": "A name"}
            fields = {f: guess_value(f, typ, ctx)
                      for f, typ, req in parse_request_fields().get(op, []) if req}
        r = await A.request(op, **fields)
        if op == "timer.start" and r.get("t") == "ok":
            await F.request("timer.stop")
        await A.close()
        await F.close()
        return r

    async def test_who_may_send_what(self):
        header, table = parse_permission_table()
        self.assertEqual(header, ["op"] + list(ROLES))
        self.assertLessEqual({"room.create", "join", "role.set", "room.update", "item.add",
                              "item.update", "item.move", "item.remove", "item.split", "focus",
                              "round.start", "vote", "round.reveal", "round.accept",
                              "round.cancel", "timer.start", "timer.stop", "role.claim"},
                             set(table), sorted(table))
        known = {"room.create", "join", "role.set", "room.update", "item.add", "item.update",
                 "item.move", "item.remove", "item.split", "focus", "round.start", "vote",
                 "round.reveal", "round.accept", "round.cancel", "timer.start", "timer.stop",
                 "role.claim", "token.rotate"}
        for op in ("room.create", "join"):
            self.assertEqual(table[op], {r: "yes" for r in ROLES}, op)
        results = []
        problems = []
        for op, row in table.items():
            for role in ROLES:
                allowed = row[role]
                self.assertIn(allowed, ("yes", "no"), (op, role))
                r = await self.attempt(op, role)
                results.append((op, role, allowed, r.get("t"), r.get("code")))
                if allowed == "no":
                    if not (r.get("t") == "err" and r.get("code") == "forbidden"):
                        problems.append("%s by %s: table says no, expected err forbidden, got %r"
                                        % (op, role, r))
                    elif not r.get("msg"):
                        problems.append("%s by %s: forbidden without a msg" % (op, role))
                else:
                    if r.get("t") == "err" and r.get("code") == "forbidden":
                        problems.append("%s by %s: table says yes, got forbidden: %r"
                                        % (op, role, r))
                    # the fields are valid and the state allows it: only role.claim, whose
                    # state (an online facilitator) forbids it now, may be refused (conflict)
                    elif op not in known:
                        pass        # guessed fields: only "not forbidden" is asserted
                    elif op == "role.claim":
                        if not (r.get("t") == "ok" or r.get("code") == "conflict"):
                            problems.append("%s by %s: expected ok or conflict, got %r"
                                            % (op, role, r))
                    elif r.get("t") != "ok":
                        problems.append("%s by %s: allowed and valid, expected ok, got %r"
                                        % (op, role, r))
        self.assertEqual(len(results), len(table) * 4)
        self.assertEqual(problems, [], "\n".join(problems))

    async def test_room_create_without_join(self):
        c = await self.connect(self.server, "anon")
        r = await c.expect_ok("room.create", name="No join needed", deck="tshirt")
        self.assertEqual(set(r["tokens"]), set(ROLES))


# ---------------------------------------------------------------------------
# 4. Auto-reveal, re-vote, accept, cancel, timer
# ---------------------------------------------------------------------------


class FlowTests(PokerBase):

    async def test_auto_reveal(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("M1", "member", "Max"), ("M2", "member", "Mia"),
            ("M3", "member", "Moe"), ("W", "observer", "Wes")])
        F, M1, M2, M3, W = c["F"], c["M1"], c["M2"], c["M3"], c["W"]
        ok = await F.expect_ok("room.update", auto_reveal=True)
        ev = await W.next_message("room.updated")
        self.assertEqual(ev["set"], {"auto_reveal": True})
        self.assertEqual(ev["seq"], ok["seq"])
        item = await self.add_item(F)
        rid, started = await self.start_round(F, item)
        self.assertEqual(sorted(started["voters"]), sorted([F.pid, M1.pid, M2.pid, M3.pid]))

        # M3 goes offline: it does not block the auto-reveal
        m3ok = M3.join_ok
        await M3.close()
        await F.next_message("participant.left", pred=lambda m: m["pid"] == m3ok["pid"])
        await self.vote(F, rid, "5")
        await self.vote(M1, rid, "8")
        self.assertFalse([m for m in W.all if m.get("t") == "round.revealed"],
                         "revealed before every online voter had voted")
        await self.vote(M2, rid, "5")
        ev = await W.next_message("round.revealed", timeout=5)
        self.assertEqual(ev["round"], rid)
        self.assertIsNone(ev["by"], "an automatic reveal has by nil")
        self.assertEqual(ev["votes"], {F.pid: "5", M1.pid: "8", M2.pid: "5"})
        self.assertEqual(ev["stats"]["missing"], [m3ok["pid"]],
                         "the round's voter who went offline did not vote")
        self.assertEqual(ev["stats"]["not_voted"], 1)
        await self.err(M1, "conflict", "vote", round=rid, card="3")

        # a re-vote; M3 comes back, the others vote, and M3 then leaves: reveal
        rid2, started2 = await self.start_round(F, item)
        self.assertNotEqual(rid2, rid)
        M3b = await self.connect(self.server, "M3b")
        await join(M3b, room, None, "Moe", pid=m3ok["pid"], secret=m3ok["secret"])
        await self.vote(F, rid2, "5")
        await self.vote(M1, rid2, "5")
        await self.vote(M2, rid2, "8")
        await self.vote(M2, rid2, None)
        await self.vote(M2, rid2, "5")
        await asyncio.sleep(0.3)
        self.assertEqual([m for m in W.inbox if m.get("t") == "round.revealed"], [],
                         "an online voter (M3) has not voted: no auto-reveal")
        await M3b.close()
        ev = await W.next_message("round.revealed", timeout=5)
        self.assertEqual(ev["round"], rid2)
        self.assertIsNone(ev["by"])
        self.assertEqual(ev["votes"], {F.pid: "5", M1.pid: "5", M2.pid: "5"})
        self.assertIs(ev["stats"]["consensus"], True)

        # a participant open in two tabs is one voter: closing one tab is not leaving
        rid3, _ = await self.start_round(F, item)
        M2b = await self.connect(self.server, "M2-tab2")
        await join(M2b, room, None, "Mia", pid=M2.pid, secret=M2.secret)
        await self.vote(F, rid3, "8")
        await self.vote(M1, rid3, "8")
        await M2.close()
        await asyncio.sleep(0.3)
        self.assertEqual([m for m in W.inbox if m.get("t") == "round.revealed"], [],
                         "M2 is still online in its second tab and has not voted")
        await self.vote(M2b, rid3, "13")
        ev = await W.next_message("round.revealed", timeout=5)
        self.assertEqual((ev["round"], ev["by"]), (rid3, None))
        self.assertEqual(ev["votes"], {F.pid: "8", M1.pid: "8", M2.pid: "13"})

    async def test_revote_history(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M", "member", "Max")])
        F, O, M = c["F"], c["O"], c["M"]
        item = await self.add_item(F)
        rid1, _ = await self.start_round(F, item)
        await self.vote(F, rid1, "3")
        await self.vote(O, rid1, "13")
        await self.vote(M, rid1, "5")
        rev1 = await self.reveal(F, rid1)
        rid2, st2 = await self.start_round(F, item)
        self.assertNotEqual(rid2, rid1)
        self.assertEqual(st2["item"], item)
        await self.vote(M, rid2, "8")
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual([r["id"] for r in snap["rounds"]], [rid1, rid2])
        first, second = snap["rounds"]
        self.check_round_object(first, "first round")
        self.check_round_object(second, "second round")
        self.assertEqual(first["state"], "revealed")
        self.assertEqual(first["votes"], {F.pid: "3", O.pid: "13", M.pid: "5"})
        self.assertEqual(first["stats"], rev1["stats"])
        self.assertIsInstance(first["revealed_at"], int)
        self.assertEqual(second["state"], "voting")
        self.assertIsNone(second["votes"])
        self.assertIsNone(second["stats"])
        self.assertIsNone(second["revealed_at"])
        self.assertEqual(second["voted"], [M.pid])
        self.assertEqual(snap["round"]["id"], rid2, "the current round is the re-vote")
        self.assertEqual(first["item"], item)
        self.assertEqual(second["item"], item)

    async def test_accept(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M", "member", "Max"),
            ("W", "observer", "Wes")])
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        item = await self.add_item(F)
        rid, _ = await self.start_round(F, item, deck="modified")
        await self.vote(F, rid, "5")
        await self.vote(M, rid, "8")
        await self.err(O, "conflict", "round.accept", round=rid, estimate="5")
        await self.reveal(F, rid)
        await self.err(O, "bad_request", "round.accept", round=rid, estimate="?")
        await self.err(O, "bad_request", "round.accept", round=rid, estimate="coffee")
        await self.err(O, "bad_request", "round.accept", round=rid, estimate="21")
        await self.err(O, "bad_request", "round.accept", round=rid)
        await self.err(O, "not_found", "round.accept", round="r999", estimate="5")
        await self.err(M, "forbidden", "round.accept", round=rid, estimate="5")

        ok = await O.expect_ok("round.accept", round=rid, estimate="8")
        evs = await W.events_until(ok["seq"])
        tail = evs[-2:]
        self.assertEqual([e["t"] for e in tail], ["round.accepted", "item.updated"])
        acc, upd = tail
        self.assertEqual(upd["seq"], ok["seq"], "the ok carries the item.updated seq")
        self.assertEqual(acc["seq"], ok["seq"] - 1)
        self.assertEqual((acc["round"], acc["item"], acc["estimate"], acc["by"]),
                         (rid, item, "8", O.pid))
        self.assertEqual((upd["item"], upd["set"], upd["by"]), (item, {"estimate": "8"}, O.pid))
        # accepting again replaces the estimate; ½ is a valid estimate of the modified deck
        ok2 = await F.expect_ok("round.accept", round=rid, estimate="½")
        snap = await self.fresh_snapshot(room, tokens)
        it = [i for i in snap["items"] if i["id"] == item][0]
        self.assertEqual(it["estimate"], "½")
        self.assertEqual(snap["seq"], ok2["seq"])
        self.assertIsNone(snap["round"], "an accepted round is no longer the current round")
        self.assertEqual(snap["rounds"][-1]["state"], "accepted")
        self.assertEqual(snap["rounds"][-1]["estimate"], "½")
        self.assertEqual(snap["rounds"][-1]["votes"], {F.pid: "5", M.pid: "8"})
        await self.err(F, "conflict", "vote", round=rid, card="5")

    async def test_cancel_revealed_and_start_rules(self):
        room, tokens, c = await self.team([("F", "facilitator", "Fay"), ("M", "member", "Max")])
        F, M = c["F"], c["M"]
        item = await self.add_item(F)
        other = await self.add_item(F, "Other story")
        rid, _ = await self.start_round(F, item)
        await self.err(F, "conflict", "round.start", item=other)
        await self.vote(M, rid, "3")
        await self.reveal(F, rid)
        ok = await F.expect_ok("round.cancel", round=rid)
        ev = await M.next_message("round.cancelled")
        self.assertEqual((ev["round"], ev["seq"], ev["by"]), (rid, ok["seq"], F.pid))
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["rounds"][0]["state"], "cancelled")
        self.assertIsNone(snap["round"])
        await self.err(F, "conflict", "round.accept", round=rid, estimate="3")
        rid2, _ = await self.start_round(F, other)
        self.assertNotEqual(rid2, rid)

    async def test_timer(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("M", "member", "Max"), ("W", "observer", "Wes")])
        F, M, W = c["F"], c["M"], c["W"]
        item = await self.add_item(F)
        rid, _ = await self.start_round(F, item)
        await self.vote(M, rid, "5")
        await self.err(F, "conflict", "timer.stop")
        await self.err(F, "bad_request", "timer.start", seconds=0)
        await self.err(F, "bad_request", "timer.start", seconds=3601)
        await self.err(F, "bad_request", "timer.start", seconds=-5)
        await self.err(F, "bad_request", "timer.start", seconds="10")
        await self.err(F, "bad_request", "timer.start")

        t0 = now_ms()
        ok = await F.expect_ok("timer.start", seconds=1)
        t1 = now_ms()
        ev = await W.next_message("timer")
        self.assertEqual(ev["seq"], ok["seq"])
        self.assertEqual(ev["by"], F.pid)
        self.assertIsInstance(ev["ends_at"], int)
        self.assertGreaterEqual(ev["ends_at"], t0 + 1000 - 50)
        self.assertLessEqual(ev["ends_at"], t1 + 1000 + 50)
        self.assertFalse(ev.get("expired"), "a started timer is not expired")
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["timer"], ev["ends_at"])
        exp = await W.next_message("timer", timeout=max(0.1, (t0 + 2000 - now_ms()) / 1000))
        got_at = now_ms()
        self.assertIsNone(exp["ends_at"])
        self.assertIs(exp.get("expired"), True)
        self.assertIsNone(exp["by"], "the expiry is the server's")
        self.assertEqual(exp["seq"], ev["seq"] + 1)
        self.assertGreaterEqual(got_at, ev["ends_at"] - 20, "the timer did not end early")
        await F.next_message("timer", pred=lambda m: m["seq"] == exp["seq"])
        await asyncio.sleep(0.3)
        self.assertEqual([m for m in W.inbox if m.get("t") == "round.revealed"], [],
                         "reveal_on_timer is off: the round stays open")
        snap = await self.fresh_snapshot(room, tokens)
        self.assertIsNone(snap["timer"])
        self.assertEqual(snap["round"]["state"], "voting")
        await self.err(F, "conflict", "timer.stop")
        await self.err(M, "forbidden", "timer.start", seconds=5)

        # start and stop
        ok = await F.expect_ok("timer.start", seconds=3600)
        ev = await W.next_message("timer")
        self.assertGreaterEqual(ev["ends_at"], now_ms() + 3590 * 1000)
        await self.err(M, "forbidden", "timer.stop")
        ok = await F.expect_ok("timer.stop")
        ev = await W.next_message("timer")
        self.assertEqual(ev["seq"], ok["seq"])
        self.assertIsNone(ev["ends_at"])
        self.assertFalse(ev.get("expired"), "a stopped timer did not expire")
        self.assertEqual(ev["by"], F.pid)
        snap = await self.fresh_snapshot(room, tokens)
        self.assertIsNone(snap["timer"])

    async def test_reveal_on_timer(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("M", "member", "Max"), ("N", "member", "Ned"),
            ("W", "observer", "Wes")])
        F, M, N, W = c["F"], c["M"], c["N"], c["W"]
        await F.expect_ok("room.update", reveal_on_timer=True)
        ev = await W.next_message("room.updated")
        self.assertEqual(ev["set"], {"reveal_on_timer": True})
        snap = await self.fresh_snapshot(room, tokens)
        self.assertIs(snap["room"]["reveal_on_timer"], True)
        item = await self.add_item(F)
        rid, _ = await self.start_round(F, item)
        await self.vote(F, rid, "5")
        await self.vote(M, rid, "8", "low")
        t0 = now_ms()
        await F.expect_ok("timer.start", seconds=1)
        tev = await W.next_message("timer")
        self.assertIsInstance(tev["ends_at"], int)
        exp = await W.next_message("timer", timeout=max(0.1, (t0 + 2000 - now_ms()) / 1000))
        self.assertIs(exp.get("expired"), True)
        rev = await W.next_message("round.revealed", timeout=2)
        self.assertGreater(rev["seq"], exp["seq"], "the expiry comes first, then the reveal")
        self.assertEqual(rev["round"], rid)
        self.assertIsNone(rev["by"])
        self.assertEqual(rev["votes"], {F.pid: "5", M.pid: "8"})
        self.assertEqual(rev["stats"]["missing"], [N.pid])
        self.assertEqual(rev["stats"]["confidence"], {"low": 1, "medium": 0, "high": 0})
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(snap["round"]["state"], "revealed")
        self.assertIsNone(snap["timer"])
        # with no round voting, the expiry reveals nothing
        await F.expect_ok("timer.start", seconds=1)
        await W.next_message("timer")
        await W.next_message("timer", pred=lambda m: m.get("expired"), timeout=2.5)
        await asyncio.sleep(0.2)
        self.assertEqual([m for m in W.inbox if m.get("t") == "round.revealed"], [])


# ---------------------------------------------------------------------------
# 5. Reconnect and restart
# ---------------------------------------------------------------------------


class ReconnectTests(PokerBase):

    async def test_vote_kept_across_reconnect(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("M", "member", "Max"), ("O", "owner", "Olga")])
        F, M, O = c["F"], c["M"], c["O"]
        item = await self.add_item(F)
        rid, _ = await self.start_round(F, item)
        await self.vote(M, rid, "13", "high")
        mok = M.join_ok
        await M.close()
        await F.next_message("participant.left", pred=lambda m: m["pid"] == mok["pid"])
        await self.vote(O, rid, "8")
        M2 = await self.connect(self.server, "M-again")
        r = await join(M2, room, None, "Max", pid=mok["pid"], secret=mok["secret"],
                       expect_mode="snapshot")
        self.assertEqual(r["pid"], mok["pid"])
        self.assertEqual(r["role"], "member")
        self.assertEqual(r["name"], "Max")
        rd = M2.snapshot["round"]
        self.assertEqual(rd["id"], rid)
        self.assertIn(mok["pid"], rd["voted"], "the vote survived the disconnect")
        self.assertIsNone(rd["votes"])
        # a second tab of the same participant: one voter
        M3 = await self.connect(self.server, "M-tab2")
        await join(M3, room, None, "Max", pid=mok["pid"], secret=mok["secret"])
        rev = await self.reveal(F, rid)
        self.assertEqual(rev["votes"], {mok["pid"]: "13", O.pid: "8"})
        self.assertEqual(rev["stats"]["count"], 2)
        self.assertEqual(rev["stats"]["missing"], [F.pid])
        self.assertEqual(rev["stats"]["confidence"], {"low": 0, "medium": 0, "high": 1})
        for x in (M2, M3):
            ev = await x.next_message("round.revealed")
            self.assertEqual(ev["votes"], rev["votes"])
        # a wrong secret is not that participant
        X = await self.connect(self.server, "X")
        await self.err(X, "auth_failed", "join", room=room, name="Max", pid=mok["pid"],
                       secret="not-the-secret")

    async def test_votes_survive_restart(self):
        srv = Server()
        srv.start()
        try:
            room, tokens, c = await self.team([
                ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M1", "member", "Max"),
                ("M2", "member", "Mia")], server=srv)
            F, O, M1, M2 = c["F"], c["O"], c["M1"], c["M2"]
            ids = {k: (x.join_ok["pid"], x.join_ok["secret"], x.role, x.join_ok["name"])
                   for k, x in c.items()}
            item = await self.add_item(F)
            rid, started = await self.start_round(F, item, deck="modified")
            await self.vote(F, rid, "½", "low")
            await self.vote(O, rid, "3")
            await self.vote(M1, rid, "20", "high")
            await self.vote(M1, rid, "40", "high")
            last = (await M2.expect_ok("vote", round=rid, card="100"))["seq"]
            await M2.expect_ok("vote", round=rid, card=None)

            code = await srv.astop()
            self.assertEqual(code, 0)
            for x in c.values():
                await x.wait_closed()
                self.assertEqual(x.close_code, 1001)
            srv.start()

            back = {}
            for k, (pid, secret, role, name) in ids.items():
                x = await self.connect(srv, k + "-back")
                r = await join(x, room, None, name, pid=pid, secret=secret,
                               expect_mode="snapshot")
                self.assertEqual((r["pid"], r["role"]), (pid, role))
                back[k] = x
            snap = back["F"].snapshot
            self.assertGreaterEqual(snap["seq"], last + 1)
            rd = snap["round"]
            self.check_round_object(rd, "round after restart")
            self.assertEqual(rd["id"], rid)
            self.assertEqual(rd["state"], "voting")
            self.assertEqual(rd["deck"], DECKS["modified"])
            self.assertEqual(sorted(rd["voters"]), sorted(started["voters"]))
            self.assertIsNone(rd["votes"], "still secret after the restart")
            self.assertIsNone(rd["stats"])
            self.assertEqual(sorted(rd["voted"]),
                             sorted([ids["F"][0], ids["O"][0], ids["M1"][0]]))
            for x in back.values():
                for m in x.all:
                    self.assertEqual(secrecy_leaks(m), [], "%s: %r" % (x.label, m))
            # a replay across the restart holds no card either
            R = await self.connect(srv, "replay")
            rr = await join(R, room, None, "Olga", pid=ids["O"][0], secret=ids["O"][1], since=0)
            self.assertEqual(rr["mode"], "replay")
            for e in await R.events_until(rr["seq"]):
                self.assertEqual(secrecy_leaks(e), [], repr(e))
            # the round goes on: M2 votes again, then the reveal shows every vote
            await self.vote(back["M2"], rid, "1", "medium")
            rev = await self.reveal(back["F"], rid)
            expv = {ids["F"][0]: "½", ids["O"][0]: "3", ids["M1"][0]: "40", ids["M2"][0]: "1"}
            self.assertEqual(rev["votes"], expv)
            exp = expected_stats(DECKS["modified"],
                                 {ids["F"][0]: ("½", "low"), ids["O"][0]: ("3", None),
                                  ids["M1"][0]: ("40", "high"), ids["M2"][0]: ("1", "medium")},
                                 started["voters"])
            self.assertStats(rev["stats"], exp, "after restart")
            for x in back.values():
                await x.close()
            await R.close()
        finally:
            code = await srv.astop()
            srv._finish(None)
        self.assertEqual(code, 0)


# ---------------------------------------------------------------------------
# 6. Bad input
# ---------------------------------------------------------------------------


class BadInputTests(PokerBase):

    async def test_vote_and_round_errors(self):
        room, tokens, c = await self.team([
            ("F", "facilitator", "Fay"), ("O", "owner", "Olga"), ("M", "member", "Max"),
            ("W", "observer", "Wes")])
        F, O, M, W = c["F"], c["O"], c["M"], c["W"]
        item = await self.add_item(F)
        await self.err(M, "not_found", "vote", round="r1", card="3")      # no round at all
        await self.err(F, "not_found", "round.reveal", round="r1")
        await self.err(F, "not_found", "round.cancel", round="r1")
        await self.err(F, "not_found", "round.start", item="i999")
        rid, _ = await self.start_round(F, item)
        await self.err(M, "not_found", "vote", round="r999", card="3")
        await self.err(M, "bad_request", "vote", round=rid, card="4")     # not in fibonacci
        await self.err(M, "bad_request", "vote", round=rid, card="XL")
        await self.err(M, "bad_request", "vote", round=rid, card="½")
        await self.err(M, "bad_request", "vote", round=rid, card="")
        await self.err(M, "bad_request", "vote", round=rid, card="1" * 17)
        await self.err(M, "bad_request", "vote", round=rid, card=5)
        await self.err(M, "bad_request", "vote", round=rid)               # card is required
        await self.err(M, "bad_request", "vote", card="3")                # round is required
        await self.err(M, "bad_request", "vote", round=rid, card="3", confidence="very")
        await self.err(W, "forbidden", "vote", round=rid, card="3")
        await self.err(W, "forbidden", "vote", round=rid, card=None)
        await self.err(M, "forbidden", "round.reveal", round=rid)
        await self.err(O, "forbidden", "round.reveal", round=rid)
        await self.err(M, "forbidden", "round.cancel", round=rid)
        await self.err(M, "forbidden", "round.start", item=item)
        await self.vote(M, rid, "3")
        await self.reveal(F, rid)
        await self.err(M, "conflict", "vote", round=rid, card="5")        # revealed
        await self.err(F, "conflict", "round.reveal", round=rid)
        await self.err(M, "forbidden", "round.accept", round=rid, estimate="3")
        await self.err(W, "forbidden", "round.accept", round=rid, estimate="3")
        # nothing of the above changed the room: only the events of the successful requests
        seqs = [e["seq"] for e in W.all if is_event(e)]
        self.assertEqual(seqs, list(range(seqs[0], seqs[0] + len(seqs))))
        self.assertEqual([e["t"] for e in W.all if is_event(e)],
                         ["item.added", "round.started", "voted", "round.revealed"])

    async def test_custom_deck_validation(self):
        room, tokens, c = await self.team([("F", "facilitator", "Fay")])
        F = c["F"]
        item = await self.add_item(F)
        X = await self.connect(self.server, "creator2")
        bad_decks = {
            "empty": [],
            "21 cards": [str(i) for i in range(21)],
            "duplicate cards": ["1", "2", "2", "3"],
            "an empty card": ["1", "", "3"],
            "a 17-byte card": ["1", "x" * 17],
            "a non-string card": ["1", 2, "3"],
            "an unknown deck name": "fibonaci",
        }
        for what, deck in bad_decks.items():
            with self.subTest(deck=what):
                await self.err(X, "bad_request", "room.create", name="Bad deck", deck=deck)
                await self.err(F, "bad_request", "round.start", item=item, deck=deck)
                await self.err(F, "bad_request", "room.update", deck=deck)
        # the limits themselves are fine
        await X.expect_ok("room.create", name="Twenty", deck=[str(i) for i in range(20)])
        rid, st = await self.start_round(F, item, deck=["x" * 16, "½", "?"])
        self.assertEqual(st["deck"], ["x" * 16, "½", "?"])
        await self.vote(F, rid, "x" * 16)
        await self.err(F, "bad_request", "vote", round=rid, card="5")
        await F.expect_ok("round.cancel", round=rid)
        # none of the failed round.start calls opened a round
        snap = await self.fresh_snapshot(room, tokens)
        self.assertEqual(len(snap["rounds"]), 1)

    async def test_deadline_round(self):
        room, tokens, c = await self.team([("F", "facilitator", "Fay"), ("M", "member", "Max")])
        F, M = c["F"], c["M"]
        item = await self.add_item(F)
        await self.err(F, "bad_request", "round.start", item=item, deadline=now_ms() - 1000)
        offline = await self.connect(self.server, "N")
        nok = await join(offline, room, tokens["member"], "Ned")
        await offline.close()
        await F.next_message("participant.left", pred=lambda m: m["pid"] == nok["pid"])
        rid, st = await self.start_round(F, item, deadline=now_ms() + 800)
        self.assertIn(nok["pid"], st["voters"], "with a deadline, offline members are voters")
        await self.vote(M, rid, "5")
        await asyncio.sleep(1.0)
        await self.err(M, "conflict", "vote", round=rid, card="8")
        rev = await self.reveal(F, rid)
        self.assertEqual(rev["votes"], {M.pid: "5"})
        self.assertIn(nok["pid"], rev["stats"]["missing"])


# ---------------------------------------------------------------------------
# 7. End to end
# ---------------------------------------------------------------------------


class EndToEndTests(PokerBase):

    async def test_session(self):
        people = [("F", "facilitator", "Ana"), ("O", "owner", "Olga"), ("M1", "member", "Ben"),
                  ("M2", "member", "Chen"), ("M3", "member", "Dara"),
                  ("W", "observer", "Sam")]
        room, tokens, c = await self.team(people, name="Sprint 14 refinement")
        F, O, W = c["F"], c["O"], c["W"]
        names = {c[k].pid: "%s (%s)" % (n, r) for k, r, n in people}
        voters = ["F", "O", "M1", "M2", "M3"]
        item = await self.add_item(O, "Checkout with saved card")
        await F.expect_ok("focus", item=item)
        lines = ["End-to-end planning poker: room 'Sprint 14 refinement', item %s "
                 "'Checkout with saved card', deck fibonacci, 5 voters + 1 observer" % item]

        async def one_round(cards, label):
            rid, st = await self.start_round(F, item)
            self.assertEqual(sorted(st["voters"]), sorted(c[k].pid for k in voters))
            for k, card in zip(voters, cards):
                await self.vote(c[k], rid, card, "medium" if card == "13" else None)
            ev = await self.reveal(F, rid)
            exp_votes = {c[k].pid: card for k, card in zip(voters, cards)}
            self.assertEqual(ev["votes"], exp_votes)
            exp = expected_stats(DECKS["fibonacci"],
                                 {c[k].pid: (card, "medium" if card == "13" else None)
                                  for k, card in zip(voters, cards)},
                                 st["voters"])
            self.assertStats(ev["stats"], exp, label)
            s = ev["stats"]
            w = await W.next_message("round.revealed", pred=lambda m: m["round"] == rid)
            self.assertEqual(w["votes"], exp_votes)
            lines.append("%s %s: votes %s" % (label, rid, ", ".join(
                "%s=%s" % (names[c[k].pid], card) for k, card in zip(voters, cards))))
            lines.append("  stats: count %d, numeric %d, min %g, max %g, mean %.2f, median %g, "
                         "mode %s, consensus %s, spread %s, suggested %s, highest %s, lowest %s, "
                         "distribution %s, confidence %s"
                         % (s["count"], s["numeric"], s["min"], s["max"], s["mean"], s["median"],
                            s["mode"], s["consensus"], s["spread"], s["suggested"],
                            [names[p] for p in s["highest"]], [names[p] for p in s["lowest"]],
                            s["distribution"], s["confidence"]))
            return rid, ev

        rid1, ev1 = await one_round(["3", "5", "8", "13", "5"], "Round 1")
        s1 = ev1["stats"]
        self.assertEqual((s1["min"], s1["max"], s1["median"], s1["mode"], s1["suggested"]),
                         (3, 13, 5, "5", "5"))
        self.assertAlmostEqual(s1["mean"], 6.8)
        self.assertEqual(s1["spread"], 3)
        self.assertEqual(s1["highest"], [c["M2"].pid])
        self.assertEqual(s1["lowest"], [F.pid])
        self.assertIs(s1["consensus"], False)
        rid2, ev2 = await one_round(["5", "5", "8", "5", "5"], "Round 2 (re-vote)")
        s2 = ev2["stats"]
        self.assertEqual((s2["mode"], s2["suggested"], s2["median"], s2["spread"]),
                         ("5", "5", 5, 1))
        self.assertAlmostEqual(s2["mean"], 5.6)
        ok = await O.expect_ok("round.accept", round=rid2, estimate=s2["suggested"])
        upd = await W.next_message("item.updated", pred=lambda m: m["seq"] == ok["seq"])
        self.assertEqual(upd["set"], {"estimate": "5"})

        snap = await self.fresh_snapshot(room, tokens, label="late")
        it = [i for i in snap["items"] if i["id"] == item][0]
        self.assertEqual(it["estimate"], "5")
        self.assertEqual([(r["id"], r["state"]) for r in snap["rounds"]],
                         [(rid1, "revealed"), (rid2, "accepted")])
        self.assertEqual(snap["rounds"][1]["estimate"], "5")
        self.assertEqual(snap["rounds"][0]["votes"], ev1["votes"])
        self.assertIsNone(snap["round"])
        lines.append("Accepted estimate: %s by %s (seq %d); a fresh snapshot at seq %d shows "
                     "item %s estimate %r and rounds %s"
                     % ("5", names[O.pid], ok["seq"], snap["seq"], item, it["estimate"],
                        [(r["id"], r["state"]) for r in snap["rounds"]]))
        sys.stdout.write("\n" + "\n".join(lines) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    unittest.main(verbosity=2)
