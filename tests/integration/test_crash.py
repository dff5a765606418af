#!/usr/bin/python3
"""Durability (PROTOCOL.md: "An event is committed to the database before it is broadcast, and
before the author's ok"; close code 1001 on SIGTERM): kill -9 under load loses no acknowledged
change, seq continues without a gap, the database passes integrity_check; a graceful shutdown
closes clients with 1001 and exits 0."""

import asyncio
import os
import random
import sqlite3
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, Server, comparable_snapshot, create_room, is_event,  # noqa
                     join, pipeline)

TARGET_ACKS = 1500
TRACKED_FIELDS = ("title", "value", "notes")
FIELD_DEFAULTS = {"title": None, "value": None, "notes": ""}


def integrity_check(db):
    conn = sqlite3.connect(db)
    try:
        return conn.execute("PRAGMA integrity_check").fetchall()
    finally:
        conn.close()


class CrashTests(AsyncTestCase):

    async def test_kill9_keeps_acknowledged_changes(self):
        async with Server() as srv:
            c = await self.connect(srv, "creator")
            room, tokens = await create_room(c, "Crash room")
            await c.close()
            M = await self.joined(srv, room, tokens["member"], "Max", label="M")
            O = await self.joined(srv, room, tokens["owner"], "Olga", label="O")
            W = await self.joined(srv, room, tokens["observer"], "Wes", label="W")
            wok, mok = W.join_ok, M.join_ok
            rnd = random.Random(2024)

            log_m = []          # (op, fields, future) in M's send order
            log_o = []
            ids = []            # acknowledged item ids
            split_acks = []     # (parent id, seq) of acknowledged splits
            split_sent = set()  # never split an item twice
            errors = []
            acks = [0]
            stop = asyncio.Event()
            kill_info = {}

            def on_done(op, fields, fut):
                if fut.cancelled() or fut.exception() is not None:
                    return
                r = fut.result()
                if r.get("t") != "ok":
                    errors.append((op, fields, r))
                    return
                acks[0] += 1
                if op == "item.add":
                    ids.append(r["item"])
                elif op == "item.split":
                    split_acks.append((fields["item"], r["seq"]))
                if acks[0] >= TARGET_ACKS and not stop.is_set():
                    stop.set()                   # the killer fires a burst, then kills

            def gen_m():
                x = rnd.random()
                if len(ids) < 20 or x < 0.45:
                    k = len(log_m)
                    item = {"title": "add %d" % k}
                    if rnd.random() < 0.5:
                        item["value"] = rnd.randrange(101)
                    fields = {"item": item}
                    if ids and rnd.random() < 0.9:
                        fields["after"] = ids[0]     # same spot again and again: reranks
                    return "item.add", fields
                cands = [i for i in ids[-100:] if i not in split_sent]
                if x < 0.5 and cands:
                    it = rnd.choice(cands)
                    split_sent.add(it)
                    kids = [{"title": "part %d.%d" % (len(log_m), j)}
                            for j in range(rnd.randrange(1, 4))]
                    return "item.split", {"item": it, "children": kids, "pattern": "business-rules"}
                it = rnd.choice(ids)
                s = {}
                for f in rnd.sample(TRACKED_FIELDS, rnd.choice((1, 1, 2))):
                    if f == "title":
                        s[f] = "title %d" % len(log_m)
                    elif f == "value":
                        s[f] = rnd.choice([None, rnd.randrange(101)])
                    else:
                        s[f] = "notes %d " % len(log_m) * rnd.randrange(1, 20)
                return "item.update", {"item": it, "set": s}

            def gen_o():
                if len(ids) < 3:
                    return None
                it = rnd.choice(ids[1:])               # the anchor ids[0] stays put
                aft = rnd.choice([None] + [x for x in ids[-50:] if x != it])
                return "item.move", {"item": it, "after": aft}

            def fire(client, gen, log):
                req = gen()
                if req is None:
                    return None
                op, fields = req
                fut = client.send_request(op, **fields)
                log.append((op, fields, fut))
                fut.add_done_callback(lambda f, op=op, fields=fields: on_done(op, fields, f))
                return fut

            async def killer():
                await stop.wait()
                # a burst of fresh requests, then SIGKILL a few ms later: some of them are
                # committed and answered, some committed and not answered, some never read
                for _ in range(40):
                    fire(M, gen_m, log_m)
                for _ in range(10):
                    fire(O, gen_o, log_o)
                await asyncio.sleep(random.choice((0, 0.001, 0.003, 0.006)))
                kill_info["in_flight"] = sum(1 for _, _, f in log_m + log_o if not f.done())
                srv.kill9_nowait()

            async def driver(client, gen, window, log):
                inflight = set()
                while not stop.is_set():
                    while len(inflight) < window and not stop.is_set():
                        fut = fire(client, gen, log)
                        if fut is None:
                            break
                        inflight.add(fut)
                    if not inflight:
                        await asyncio.sleep(0.01)
                        continue
                    done, inflight = await asyncio.wait(inflight, timeout=30,
                                                        return_when=asyncio.FIRST_COMPLETED)
                    if not done:
                        raise AssertionError("%s: no reply for 30 s" % client.label)
                if inflight:
                    await asyncio.wait(inflight, timeout=10)

            t0 = time.monotonic()
            await asyncio.gather(driver(M, gen_m, 40, log_m), driver(O, gen_o, 10, log_o),
                                 killer())
            pending = [f for _, _, f in log_m + log_o if not f.done()]
            if pending:
                await asyncio.wait(pending, timeout=10)
            self.assertTrue(stop.is_set())
            srv.kill9()                                  # reap
            for cl in (M, O, W):
                await cl.wait_closed(5)
            self.assertEqual(errors, [], "no change was refused")
            acked = [(op, f, fut.result()) for op, f, fut in log_m + log_o
                     if fut.done() and not fut.cancelled() and fut.exception() is None]
            unacked = [(op, f) for op, f, fut in log_m + log_o
                       if not fut.done() or fut.cancelled() or fut.exception() is not None]
            self.assertGreaterEqual(len(acked), TARGET_ACKS)
            # a move to where the item is, or a value it has, changes nothing: ok without seq
            self.assertEqual([op for op, _, r in acked if "seq" not in r and
                              op not in ("item.move", "item.update")], [])
            changed = [r["seq"] for _, _, r in acked if "seq" in r]
            max_acked = max(changed)
            self.assertEqual(len(set(changed)), len(changed))
            sys.stderr.write("[crash: %d acked, %d unacked (in flight at kill: %s), max acked "
                             "seq %d, %.1f s]\n" % (len(acked), len(unacked),
                                                    kill_info.get("in_flight"), max_acked,
                                                    time.monotonic() - t0))
            self.assertGreater(kill_info.get("in_flight", 0), 0,
                               "changes were still in flight at the kill")
            # W applies what it received live (strict checks) up to its last event
            live = [e for e in W.seen_events()]
            L = live[-1]["seq"] if live else 0
            await W.catch_up(L)

            # ---- restart on the same database ----
            srv.restart()
            probe = await self.connect(srv, "probe")
            await join(probe, room, None, "Wes", pid=wok["pid"], secret=wok["secret"])
            snap = probe.snapshot
            S = snap["seq"]
            self.assertGreaterEqual(S, max_acked, "room seq after restart >= highest acked seq")
            self.assertGreaterEqual(S, L, "room seq after restart >= last broadcast seq")
            items = {it["id"]: it for it in snap["items"]}
            for op, f, r in acked:
                if op == "item.add":
                    self.assertIn(r["item"], items, "acknowledged item.add seq %d lost"
                                  % r["seq"])
            # last acknowledged field values (or a later, unacknowledged value)
            hist = {}
            for op, f, fut in log_m:
                ok = fut.done() and not fut.cancelled() and fut.exception() is None
                if op == "item.add":
                    if not ok:
                        continue
                    iid = fut.result()["item"]
                    for fld in TRACKED_FIELDS:
                        hist.setdefault((iid, fld), []).append(
                            (f["item"].get(fld, FIELD_DEFAULTS[fld]), True))
                elif op == "item.update":
                    for fld, v in f["set"].items():
                        hist.setdefault((f["item"], fld), []).append((v, ok))
            # splits are atomic across the crash: every child's parent is a split item, and
            # every acknowledged split's parent is split and has children
            parents = {}
            for it in snap["items"]:
                if it["parent"] is not None:
                    self.assertIn(it["parent"], items, "child %s of a missing parent" % it["id"])
                    self.assertEqual(items[it["parent"]]["status"], "split",
                                     "child %s exists but its parent is not split" % it["id"])
                    parents.setdefault(it["parent"], []).append(it["id"])
            for pid_, seq in split_acks:
                self.assertEqual(items[pid_]["status"], "split")
                self.assertIn(pid_, parents)
            # rank keys stayed short (rebalancing happened and persisted)
            for it in snap["items"]:
                self.assertLessEqual(len(it["rank"]), 48)
            self.assertEqual(len({it["rank"] for it in snap["items"]}), len(snap["items"]),
                             "ranks are unique after the crash")
            sys.stderr.write("[crash: %d splits acked, %d items.reranked seen live]\n"
                             % (len(split_acks), W.state.reranks))
            checked = 0
            for (iid, fld), seq_vals in hist.items():
                last_ok = max(i for i, (_, ok) in enumerate(seq_vals) if ok) \
                    if any(ok for _, ok in seq_vals) else None
                if last_ok is None:
                    continue
                allowed = [v for v, _ in seq_vals[last_ok:]]
                self.assertIn(items[iid][fld], allowed,
                              "item %s field %s: %r is not the last acknowledged value %r (or a "
                              "later unacknowledged one)" % (iid, fld, items[iid][fld],
                                                             seq_vals[last_ok][0]))
                checked += 1
            self.assertGreater(checked, 100)

            # replay from W's last live seq reproduces the snapshot exactly
            w2 = await self.connect(srv, "W2")
            r = await join(w2, room, None, "Wes", since=L, pid=wok["pid"], secret=wok["secret"])
            self.assertEqual(r["mode"], "replay", "since=%d after restart (room seq %d)" % (L, S))
            self.assertEqual(r["seq"], S)
            if S > L:
                for ev in await w2.events_until(S):
                    W.state.apply(ev)
            self.assertEqual(W.state.comparable(False), comparable_snapshot(snap, False),
                             "live events + replay after the crash == snapshot after the crash")

            # new changes continue at S+1
            m2 = await self.connect(srv, "M2")
            await join(m2, room, None, "Max", pid=mok["pid"], secret=mok["secret"])
            r = await m2.expect_ok("item.add", item={"title": "after the crash"})
            self.assertEqual(r["seq"], S + 1)
            ev = await w2.next_event()
            self.assertEqual(ev["seq"], S + 1)
            self.assertEqual(ev["t"], "item.added")

            code = await srv.astop()
            self.assertEqual(code, 0)
            self.assertEqual(integrity_check(srv.db), [("ok",)])

    async def test_shutdown(self):
        async with Server() as srv:
            c = await self.connect(srv, "creator")
            room, tokens = await create_room(c, "Shutdown room")
            await c.close()
            M = await self.joined(srv, room, tokens["member"], "Max", label="M")
            O = await self.joined(srv, room, tokens["owner"], "Olga", label="O")
            oks = await pipeline(M, [("item.add", {"item": {"title": "s%d" % i}})
                                     for i in range(30)], 10)
            ids = [r["item"] for r in oks]
            moves = await pipeline(O, [("item.move", {"item": ids[i], "after": None})
                                       for i in range(1, 30, 3)], 5)
            for r in oks + moves:
                self.assertEqual(r["t"], "ok")
            # more requests in flight while SIGTERM arrives
            futs = [M.send_request("item.add", item={"title": "late %d" % i}) for i in range(40)]
            await asyncio.sleep(0.005)
            stopper = asyncio.ensure_future(srv.astop())
            late = await asyncio.gather(*futs, return_exceptions=True)
            code = await stopper
            self.assertEqual(code, 0, "exit code on SIGTERM")
            self.assertEqual(await M.wait_closed(5), 1001, "close code on shutdown")
            self.assertEqual(await O.wait_closed(5), 1001, "close code on shutdown")
            # requests in flight at SIGTERM may be answered or not; only acks are promises
            late_ok = [r for r in late if isinstance(r, dict) and r.get("t") == "ok"]
            top = max(r["seq"] for r in oks + moves + late_ok)
            await M.catch_up(top)
            srv.restart()
            probe = await self.connect(srv, "probe")
            await join(probe, room, tokens["observer"], "Obi")
            snap = probe.snapshot
            self.assertGreaterEqual(snap["seq"], top)
            got = {it["id"] for it in snap["items"]}
            for r in oks + late_ok:
                self.assertIn(r["item"], got)
            if snap["seq"] == top:
                self.assertEqual(comparable_snapshot(snap, False), M.state.comparable(False))
            code = await srv.astop()
            self.assertEqual(code, 0)
            self.assertEqual(integrity_check(srv.db), [("ok",)])


if __name__ == "__main__":
    unittest.main(verbosity=2)
