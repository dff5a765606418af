#!/usr/bin/python3
"""GET /metrics (issue 13, part 4; PROTOCOL.md "Metrics"): the Prometheus text format 0.0.4,
parsed with Debian's python3-prometheus-client, and its figures moving with the load.

1. every metric PROTOCOL.md documents is served with its type, and nothing undocumented; the
   headers (Content-Type version=0.0.4, never cached); HEAD; the process' figures are sane
2. a meeting (joins, changes, a poker round, a hint, a rate-limited burst): the counters move by
   exactly what the clients saw (changes = oks with a seq, deliveries = events and notices
   received by all clients, rate_limited = the refusals, joins, messages sent); the gauges
   (connections, participants online, rooms) up, then down when everyone leaves; the commit
   histograms count the same batches, their buckets cumulative
3. a reader that stops reading: counted as a slow reader while its queue is over --max-queue,
   then dropped (4001) and counted once in refine_slow_reader_drops_total
4. storage faults (--max-db-size, as test_hardening's): refine_storage_failures_total counts the
   failed transactions; no change that failed is counted as a change
5. pages (issue 14): refine_wal_frames_total counts at least one page per acknowledged change made
   one at a time (each its own transaction), no more than a few, and at least the frames the WAL
   file grew by; refine_checkpoint_pages_total moves once the checkpointer has run (handed over
   with the next commit), by no more than the pages the WAL was given
"""

import asyncio
import os
import re
import subprocess
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, ROOT, Server, create_room, http_get, join,  # noqa: E402
                     raw_http, server_binary, summarize)
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402
from test_hardening import raw_ws  # noqa: E402  (a WebSocket with a small SO_RCVBUF)

DOC = os.path.join(ROOT, "protocol", "PROTOCOL.md")

# What PROTOCOL.md's "Metrics" table must list, with the type the server must give.
EXPECTED = {
    "refine_instance_info": "gauge",
    "refine_connections": "gauge",
    "refine_rooms_loaded": "gauge",
    "refine_rooms": "gauge",
    "refine_participants_online": "gauge",
    "refine_queued_bytes": "gauge",
    "refine_slow_readers": "gauge",
    "refine_changes_total": "counter",
    "refine_deliveries_total": "counter",
    "refine_messages_total": "counter",
    "refine_storage_failures_total": "counter",
    "refine_rate_limited_total": "counter",
    "refine_slow_reader_drops_total": "counter",
    "refine_joins_total": "counter",
    "refine_wal_frames_total": "counter",
    "refine_checkpoint_pages_total": "counter",
    "refine_log_apply_pages_total": "counter",
    "refine_log_pending_records": "gauge",
    "refine_commit_seconds": "histogram",
    "refine_commit_batch_changes": "histogram",
    "process_cpu_seconds_total": "counter",
    "process_resident_memory_bytes": "gauge",
    "process_virtual_memory_bytes": "gauge",
    "process_open_fds": "gauge",
    "process_max_fds": "gauge",
    "process_start_time_seconds": "gauge",
}
HISTOGRAMS = ("refine_commit_seconds", "refine_commit_batch_changes")
REPLIES = ("ok", "err", "snapshot")  # what is not an event or a notice


class Scrape:
    """One GET /metrics, parsed: families by name (a counter's without `_total`, as the parser
    gives them) and samples by name and labels."""

    def __init__(self, port):
        status, headers, body = http_get(port, "/metrics")
        if status != 200:
            raise AssertionError("GET /metrics: %s %r" % (status, body[:200]))
        self.headers = headers
        self.text = body.decode("utf-8")
        self.families = {f.name: f for f in text_string_to_metric_families(self.text)}
        self.samples = {}
        for f in self.families.values():
            for s in f.samples:
                self.samples[(s.name, tuple(sorted(s.labels.items())))] = s.value

    def family(self, name):
        """The family of a metric as documented (counters with their `_total`)."""
        return self.families.get(name) or self.families.get(re.sub(r"_total$", "", name))

    def __getitem__(self, name):
        return self.samples[(name, ())]

    def buckets(self, name):
        """[(le, cumulative count)] of a histogram, in the order served."""
        return [(s.labels["le"], s.value) for s in self.family(name).samples
                if s.name == name + "_bucket"]


def scrape(port):
    return Scrape(port)


def delta(after, before, name):
    return after[name] - before[name]


def notices_and_events(client):
    """What the room sent this client: every message but its replies and its snapshot."""
    return sum(1 for m in client.all if m.get("t") not in REPLIES)


class MetricsCase(AsyncTestCase):

    def assertHistograms(self, m):
        for name in HISTOGRAMS:
            b = m.buckets(name)
            counts = [v for _, v in b]
            self.assertEqual(b[-1][0], "+Inf", "%s ends with the +Inf bucket" % name)
            self.assertEqual(counts, sorted(counts), "%s's buckets are cumulative" % name)
            self.assertEqual(counts[-1], m[name + "_count"], "%s: +Inf == _count" % name)
            les = [float(le) for le, _ in b[:-1]]
            self.assertEqual(les, sorted(les), "%s's bounds ascend" % name)
        self.assertEqual(m["refine_commit_seconds_count"], m["refine_commit_batch_changes_count"],
                         "both histograms count the same batches")

    async def sync(self, *clients):
        """A request that changes nothing from each client: once its answer is in, every
        frame the server queued to that client before it has arrived."""
        for c in clients:
            r = await c.request("metrics.sync")
            self.assertEqual(r.get("code"), "unknown_op", summarize(r))


class FormatTests(MetricsCase):

    async def test_every_documented_metric_with_its_type(self):
        with open(DOC, encoding="utf-8") as f:
            doc = f.read()
        section = doc.split("\n## Metrics\n", 1)
        self.assertEqual(len(section), 2, "PROTOCOL.md has a \"Metrics\" section")
        documented = dict(re.findall(r"^\| `([a-z_]+)` \| (counter|gauge|histogram) \|",
                                     section[1].split("\n## ", 1)[0], re.M))
        self.assertEqual(documented, EXPECTED, "PROTOCOL.md's metrics table")
        # --instance (issue 13's part 1) names the instance; a build without it has no name
        helptext = subprocess.run([server_binary(), "--help"], capture_output=True,
                                  text=True).stdout
        named = "--instance" in helptext
        async with Server(*(["--instance", "m1"] if named else [])) as srv:
            self.server = srv
            m = scrape(srv.port)
            self.assertEqual(m.headers.get("content-type"),
                             "text/plain; version=0.0.4; charset=utf-8")
            self.assertEqual(m.headers.get("cache-control"), "no-store")
            served = {}
            for f in m.families.values():
                name = f.name + "_total" if f.type == "counter" else f.name
                served[name] = f.type
            self.assertEqual(served, EXPECTED, "every metric served, with its type, and no other")
            for name, typ in EXPECTED.items():
                self.assertIn("# TYPE %s %s\n" % (name, typ), m.text, "TYPE line of %s" % name)
                self.assertIn("# HELP %s " % name, m.text, "HELP line of %s" % name)
            self.assertEqual([(s.labels, s.value) for s in
                              m.family("refine_instance_info").samples],
                             [({"instance": "m1" if named else ""}, 1.0)])
            self.assertHistograms(m)
            # the process, from the kernel
            with open("/proc/%d/status" % srv.proc.pid) as f:
                rss_kb = int(re.search(r"VmRSS:\s+(\d+)", f.read()).group(1))
            self.assertLess(abs(m["process_resident_memory_bytes"] / 1024 - rss_kb), 0.5 * rss_kb)
            fds = len(os.listdir("/proc/%d/fd" % srv.proc.pid))
            self.assertLessEqual(abs(m["process_open_fds"] - fds), 2)
            self.assertLess(abs(m["process_start_time_seconds"] - time.time()), 60)
            self.assertGreater(m["process_cpu_seconds_total"], 0)
            self.assertGreater(m["process_virtual_memory_bytes"], m["process_resident_memory_bytes"])
            # HEAD: the headers alone; any other method: 405
            status, headers, head = raw_http(srv.port, b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n"
                                             b"Connection: close\r\n\r\n")
            self.assertEqual(status, 200, head)
            self.assertEqual(headers.get("content-type"), "text/plain; version=0.0.4; charset=utf-8")
            status, _, head = raw_http(srv.port, b"POST /metrics HTTP/1.1\r\nHost: x\r\n"
                                       b"Content-Length: 0\r\nConnection: close\r\n\r\n")
            self.assertEqual(status, 405, head)


class LoadTests(MetricsCase):

    async def test_counters_follow_a_meeting(self):
        async with Server("--rate", "50") as srv:
            self.server = srv
            m0 = scrape(srv.port)
            F = await self.connect(srv, "F")
            room, tokens = await create_room(F, "Metrics room")
            await join(F, room, tokens["facilitator"], "Fay")
            clients = [F]
            for role, name in (("owner", "Olu"), ("member", "Mia"), ("member", "Max"),
                               ("observer", "Obi")):
                clients.append(await self.joined(srv, room, tokens[role], name))
            F, O, M1, M2, X = clients
            m1 = scrape(srv.port)
            self.assertEqual(m1["refine_connections"], 5)
            self.assertEqual(m1["refine_participants_online"], 5)
            self.assertEqual(m1["refine_rooms_loaded"], 1)
            self.assertEqual(m1["refine_rooms"], 1)

            # changes: items, a move, an edit, a poker round with four votes, a hint
            items = []
            for k in range(5):
                items.append((await M1.expect_ok("item.add", item={"title": "story %d" % k}))
                             ["item"])
            await O.expect_ok("item.move", item=items[4], after=None)
            await M2.expect_ok("item.update", item=items[1], set={"notes": "more"})
            await F.expect_ok("round.start", item=items[0])
            rnd = (await F.next_message("round.started"))["round"]
            for c, card in ((F, "3"), (O, "5"), (M1, "5"), (M2, "8")):
                await c.expect_ok("vote", round=rnd, card=card)
            await F.expect_ok("round.reveal", round=rnd)
            await O.expect_ok("round.accept", round=rnd, estimate="5")
            await M1.request("hint", item=items[2], what="editing")
            await X.expect_err("forbidden", "item.add", item={"title": "no"})

            # a burst past --rate 50 (a burst of 100 allowed, then 50 a second): refused ones
            # get rate_limited; fewer than a second's worth, so the connection stays open
            futs = [O.send_request("focus.nope") for _ in range(130)]
            replies = await asyncio.gather(*futs)
            limited = sum(1 for r in replies if r.get("code") == "rate_limited")
            self.assertGreater(limited, 0, "the burst was refused in part")
            self.assertFalse(O.closed)
            await asyncio.sleep(1.0)  # the bucket refills before the sync below

            await self.sync(*clients)
            m2 = scrape(srv.port)
            # acknowledged changes (an ok with a seq; a join's ok has the room's seq) and the
            # events they made (round.accept makes two: round.accepted and item.updated), all
            # seen by the facilitator, in the room from its start
            oks_with_seq = sum(1 for c in clients for m in c.all
                               if m.get("t") == "ok" and "seq" in m and "pid" not in m)
            events = sorted(m["seq"] for m in F.all if m.get("t") not in REPLIES and "seq" in m)
            self.assertEqual(events, list(range(1, len(events) + 1)))
            sent = sum(c.next_id - 1 for c in clients)
            received = sum(notices_and_events(c) for c in clients)
            joins = sum(1 for c in clients if c.join_ok)
            figures = {n: delta(m2, m0, n) for n in (
                "refine_changes_total", "refine_deliveries_total", "refine_messages_total",
                "refine_rate_limited_total", "refine_joins_total", "refine_commit_seconds_count",
                "refine_commit_batch_changes_sum")}
            print("meeting: %d changes acknowledged making %d events, %d events and notices received, %d "
                  "messages sent, %d rate_limited, %d joins; /metrics moved by %s"
                  % (oks_with_seq, len(events), received, sent, limited, joins, figures))
            self.assertEqual(oks_with_seq, 14)
            self.assertEqual(figures["refine_changes_total"], len(events))
            self.assertEqual(figures["refine_deliveries_total"], received)
            self.assertEqual(figures["refine_messages_total"], sent)
            self.assertEqual(figures["refine_rate_limited_total"], limited)
            self.assertEqual(figures["refine_joins_total"], joins)
            self.assertEqual(joins, 5)
            self.assertGreaterEqual(figures["refine_commit_seconds_count"], 1)
            # every change is at least its event's record, every batch at least one record
            self.assertGreaterEqual(figures["refine_commit_batch_changes_sum"], len(events))
            self.assertLessEqual(figures["refine_commit_seconds_count"],
                                 figures["refine_commit_batch_changes_sum"])
            self.assertGreater(delta(m2, m0, "refine_commit_seconds_sum"), 0)
            self.assertEqual(delta(m2, m0, "refine_storage_failures_total"), 0)
            self.assertEqual(delta(m2, m0, "refine_slow_reader_drops_total"), 0)
            self.assertEqual(m2["refine_queued_bytes"], 0, "everything was read")
            self.assertEqual(m2["refine_slow_readers"], 0)
            self.assertHistograms(m2)

            # everyone leaves: the gauges go back down; the room stays loaded a while
            for c in clients:
                await c.close()
            deadline = time.monotonic() + 10
            while True:
                m3 = scrape(srv.port)
                if m3["refine_connections"] == 0 or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
            self.assertEqual(m3["refine_connections"], 0)
            self.assertEqual(m3["refine_participants_online"], 0)
            self.assertEqual(m3["refine_rooms"], 1)
            self.assertEqual(delta(m3, m2, "refine_changes_total"), 0, "leaving changes nothing")

    async def test_slow_reader_counted_then_dropped(self):
        """A reader with a 4 KiB SO_RCVBUF that never reads while 8 KB events come one at a
        time: once the kernel's buffers are full its queue grows; while it is over --max-queue
        (64 KiB) and under 4 times that it is a slow reader; the first event 2 s later drops
        it (4001), counted once."""
        async with Server("--max-queue", "65536") as srv:
            self.server = srv
            W = await self.connect(srv, "W")
            room, tokens = await create_room(W, "Slow room")
            await join(W, room, tokens["facilitator"], "Wil")
            R = await self.joined(srv, room, tokens["observer"], "Rex")
            item = (await W.expect_ok("item.add", item={"title": "big notes"}))["item"]
            m0 = scrape(srv.port)
            slow = raw_ws(srv.port, rcvbuf=4096)
            slow.send_msg({"t": "join", "id": 1, "room": room, "token": tokens["observer"],
                           "name": "Slow"})
            await R.next_message("participant.joined", timeout=5,
                                 pred=lambda m: m.get("name") == "Slow")
            over = None
            for k in range(2000):
                await W.expect_ok("item.update", item=item, set={"notes": ("%05d" % k) * 1640})
                m = scrape(srv.port)
                if m["refine_slow_readers"]:
                    over = m
                    break
            self.assertIsNotNone(over, "the reader that does not read goes over --max-queue")
            print("slow reader: over --max-queue after %d events of 8.2 KB: %d bytes queued"
                  % (k + 1, over["refine_queued_bytes"]))
            self.assertEqual(over["refine_slow_readers"], 1)
            self.assertGreater(over["refine_queued_bytes"], 65536)
            self.assertLess(over["refine_queued_bytes"], 4 * 65536)
            self.assertEqual(delta(over, m0, "refine_slow_reader_drops_total"), 0)
            self.assertEqual(over["refine_connections"], 3)
            await asyncio.sleep(2.2)  # past the grace: the next event drops it
            await W.expect_ok("item.update", item=item, set={"notes": "small"})
            m1 = scrape(srv.port)
            self.assertEqual(delta(m1, m0, "refine_slow_reader_drops_total"), 1)
            self.assertEqual(m1["refine_slow_readers"], 0, "closing: no longer counted as slow")
            self.assertEqual(delta(m1, m0, "refine_changes_total"), k + 2)
            # its close frame cannot pass its full socket: it goes when the client goes
            slow.close()
            await R.next_message("participant.left", timeout=10)
            m2 = scrape(srv.port)
            self.assertEqual(m2["refine_connections"], 2)
            self.assertEqual(m2["refine_queued_bytes"], 0)
            self.assertEqual(delta(m2, m0, "refine_slow_reader_drops_total"), 1, "counted once")

    async def test_storage_failures_counted(self):
        """The database capped at 1 MiB (test_hardening's storage fault): changes fail with
        `internal` once it is full; each failed transaction is one storage failure, and only
        the acknowledged changes are counted as changes."""
        async with Server("--max-db-size", "1") as srv:
            self.server = srv
            W = await self.connect(srv, "W")
            room, tokens = await create_room(W, "Full room")
            await join(W, room, tokens["member"], "Wil")
            m0 = scrape(srv.port)
            acked, internal = 0, 0
            for k in range(400):
                batch = [W.send_request("item.add", item={"title": "fill %d" % k,
                                                          "notes": "n" * 10000,
                                                          "acceptance": ["a" * 1000] * 20})
                         for _ in range(4)]
                done, _ = await asyncio.wait(batch, timeout=15)
                for f in done:
                    if f.exception() is None:
                        r = f.result()
                        acked += r.get("t") == "ok"
                        internal += r.get("code") == "internal"
                if internal or W.closed:
                    break
            m1 = scrape(srv.port)
            failures = delta(m1, m0, "refine_storage_failures_total")
            print("storage: %d changes acknowledged, %d refused with internal; /metrics: %d "
                  "changes, %d storage failures" % (acked, internal,
                                                     delta(m1, m0, "refine_changes_total"),
                                                     failures))
            self.assertGreater(internal, 0, "the cap was reached")
            self.assertGreaterEqual(failures, 1)
            self.assertLessEqual(failures, internal, "a failed transaction refuses its changes")
            self.assertEqual(delta(m1, m0, "refine_changes_total"), acked)
            self.assertHistograms(m1)


WAL_HEADER, FRAME_HEADER = 32, 24  # bytes (SQLite's file format: the WAL)


class PagesTests(MetricsCase):

    async def test_wal_and_checkpoint_pages(self):
        async with Server() as srv:
            self.server = srv
            W = await self.connect(srv, "W")
            room, tokens = await create_room(W, "Pages room")
            await join(W, room, tokens["member"], "Wil")
            with open(srv.db, "rb") as f:
                header = f.read(100)
            page = int.from_bytes(header[16:18], "big")
            page = 65536 if page == 1 else page
            wal = srv.db + "-wal"
            m0 = scrape(srv.port)
            size0 = os.path.getsize(wal)
            n = 40
            for k in range(n):  # one at a time: each change its own transaction
                await W.expect_ok("item.add", item={"title": "page %d" % k})
            m1 = scrape(srv.port)
            size1 = os.path.getsize(wal)
            frames = delta(m1, m0, "refine_wal_frames_total")
            print("pages: %d changes one at a time appended %d pages (%.1f a change); the WAL file "
                  "grew by %d frames of %d bytes" % (n, frames, frames / n,
                                                      (size1 - size0) // (page + FRAME_HEADER),
                                                      page))
            self.assertEqual(delta(m1, m0, "refine_changes_total"), n)
            self.assertGreaterEqual(frames, n, "a transaction appends at least one page")
            self.assertLessEqual(frames, 16 * n, "an item.add writes a few pages, no more")
            # The file holds every frame appended since it was made (a WAL started over after a
            # complete checkpoint is written over, not grown): it grew by no more than counted.
            self.assertGreaterEqual(frames * (page + FRAME_HEADER), size1 - size0)
            # The checkpointer runs at least once a second; what it copied is handed over with
            # the next commit.
            m2 = m1
            for _ in range(10):
                if m2["refine_checkpoint_pages_total"] > m0["refine_checkpoint_pages_total"]:
                    break
                await asyncio.sleep(1.1)
                await W.expect_ok("item.add", item={"title": "after a checkpoint"})
                m2 = scrape(srv.port)
            copied = delta(m2, m0, "refine_checkpoint_pages_total")
            print("pages: the checkpoints copied %d pages into the database file" % copied)
            self.assertGreater(copied, 0, "a checkpoint copied pages into the database file")
            # a page is copied once per checkpoint that finds it in the WAL: no more pages than
            # the WAL was given (what it held at the start, and the frames appended since)
            self.assertLessEqual(copied, delta(m2, m0, "refine_wal_frames_total") +
                                 (size0 - WAL_HEADER) // (page + FRAME_HEADER))


if __name__ == "__main__":
    unittest.main(verbosity=2)
