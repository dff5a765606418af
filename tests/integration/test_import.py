#!/usr/bin/python3
"""POST /api/rooms/{room}/import (PROTOCOL.md: HTTP): the JSON and Jira CSV round trips
(export -> import into a new room -> export, byte-identical), one backlog.imported event that
leaves a connected client's state equal to a fresh join's, a dry run that changes nothing, bad
files refused with nothing changed, who may import, and an import kept over a restart."""

import http.client
import json
import os
import sys
import time
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerPerTestCase, comparable_snapshot, create_room, http_get, join  # noqa: E402

JIRA_HEADER = ("Issue Id,Parent,Summary,Issue Type,Status,Priority,Story Points,Labels,"
               "Description,Acceptance Criteria,MoSCoW,Business Value,Persona,Goal,Benefit")


def http_post(port, path, body, token, content_type=None, timeout=30.0):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"Authorization": "Bearer " + token} if token else {}
        if content_type:
            headers["Content-Type"] = content_type
        conn.request("POST", path, body=body, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def section(body, key, until):
    """The bytes of a JSON export's value under key (up to the key `until`, or the end)."""
    start = body.index(b'"%s":' % key.encode())
    end = body.index(b',"%s":' % until.encode()) if until else body.rindex(b"}")
    return body[start:end]


def items_section(body):
    """The bytes of a JSON export's "items" value (the rest names the room it came from)."""
    start = body.index(b'"items":')
    end = body.index(b',"rounds":')
    return body[start:end]


class ImportTests(ServerPerTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.fac = await self.connect(self.server, "fac")
        self.room, self.tokens = await create_room(self.fac, "Source")
        await join(self.fac, self.room, self.tokens["facilitator"], "Fay")

    async def fill(self):
        """A backlog with every kind of value: quotes, commas, newlines, formulas, lists with
        separators, a split with children, MoSCoW, value, estimates."""
        add = self.fac.expect_ok
        a = (await add("item.add", item={
            "title": 'Pay, then "ship"', "acceptance": ["Given a cart; paid", "When I pay\\"],
            "labels": ["checkout", "has space", "back\\slash"], "value": 70, "moscow": "must",
            "notes": "line one\nline two\r\nthree", "persona": "=shopper", "goal": "+fast",
            "benefit": "'quoted", "kind": "epic", "status": "ready"}))["item"]
        await add("item.add", item={"title": "@Second", "moscow": "wont", "kind": "bug",
                                    "labels": [], "acceptance": []})
        await add("item.split", item=a, children=[{"title": "Child one", "estimate": "3"},
                                                  {"title": "Child two", "moscow": "could"}])
        await add("item.add", item={"title": "Ünïcödé ✓", "status": "done", "value": 0,
                                    "moscow": "should"})

    def export(self, room, token, fmt):
        status, _, body = http_get(self.server.port, "/api/rooms/%s/export?format=%s"
                                   % (room, fmt), headers={"Authorization": "Bearer " + token})
        self.assertEqual(status, 200, body)
        return body

    def post(self, room, token, body, query="", content_type=None):
        status, out = http_post(self.server.port, "/api/rooms/%s/import%s" % (room, query), body,
                                token, content_type)
        return status, json.loads(out)

    async def new_room(self, name="Target"):
        c = await self.connect(self.server, "t-" + name)
        room, tokens = await create_room(c, name)
        await join(c, room, tokens["facilitator"], "Tia")
        return c, room, tokens

    async def test_json_round_trip_is_byte_identical(self):
        await self.fill()
        src = self.export(self.room, self.tokens["owner"], "json")
        c, room, tokens = await self.new_room()
        status, ans = self.post(room, tokens["owner"], src)
        self.assertEqual(status, 200, ans)
        self.assertEqual((ans["items"], ans["children"], ans["ids"]), (5, 2, "kept"))
        self.assertIn("seq", ans)
        again = self.export(room, tokens["owner"], "json")
        self.assertEqual(items_section(again), items_section(src))

    async def test_csv_round_trip_is_byte_identical(self):
        await self.fill()
        src = self.export(self.room, self.tokens["facilitator"], "jira")
        self.assertTrue(src.startswith(JIRA_HEADER.encode() + b","), src[:200])  # then other fields
        _, headers, _ = http_get(self.server.port, "/api/rooms/%s/export?format=jira" % self.room,
                                 headers={"Authorization": "Bearer " + self.tokens["owner"]})
        self.assertTrue(headers["content-type"].startswith("text/csv"), headers)
        self.assertIn('refine-%s.jira.csv"' % self.room, headers["content-disposition"])
        c, room, tokens = await self.new_room()
        status, ans = self.post(room, tokens["facilitator"], src, "?format=csv")
        self.assertEqual(status, 200, ans)
        self.assertEqual((ans["items"], ans["children"], ans["warnings"]), (5, 2, []))
        again = self.export(room, tokens["facilitator"], "jira")
        self.assertEqual(again, src)
        # and the JSON of both rooms agrees on every field but the update times and the rank
        # keys (a CSV's order is its rows'), in the same order
        a = json.loads(self.export(self.room, self.tokens["owner"], "json"))["items"]
        b = json.loads(self.export(room, tokens["owner"], "json"))["items"]

        def strip(items):
            return [{k: v for k, v in it.items() if k not in ("updated_at", "rank")}
                    for it in items]
        self.assertEqual(strip(a), strip(b))

    async def test_connected_client_sees_one_event_equal_to_a_fresh_join(self):
        await self.fill()
        src = self.export(self.room, self.tokens["owner"], "jira")
        c, room, tokens = await self.new_room()
        await c.expect_ok("item.add", item={"title": "Already here"})
        await c.next_message("item.added")
        watcher = await self.connect(self.server, "watcher")
        await join(watcher, room, tokens["member"], "Wes")
        status, ans = self.post(room, tokens["owner"], src, content_type="text/csv")
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["ids"], "new")
        ev = await watcher.next_message("backlog.imported")
        self.assertEqual(ev["seq"], ans["seq"])
        self.assertEqual(len(ev["items"]), 5)
        watcher.state.apply(ev)
        # appended at the bottom with new ids, parents mapped to them
        ids = [it["id"] for it in ev["items"]]
        self.assertNotIn("i1", ids)
        kids = [it for it in ev["items"] if it["parent"]]
        self.assertEqual({k["parent"] for k in kids}, {ids[0]})
        fresh = await self.connect(self.server, "fresh")
        await join(fresh, room, tokens["member"], "Fred")
        self.assertEqual(comparable_snapshot(fresh.snapshot, False),
                         watcher.state.comparable(False))
        order = watcher.state.order()
        self.assertEqual(order[0], "i1")
        self.assertEqual(order[1:], ids)

    async def fill_map_and_product(self):
        """A story map with items placed, a vision, personas and outcomes items refer to."""
        F = self.fac
        node = {}
        for key, kind, kw in (("a", "activity", {}), ("s", "step", None), ("r1", "slice", {}),
                              ("r2", "slice", {"capacity": 8})):
            ok = await F.expect_ok("map.add", kind=kind, name="Node " + key,
                                   **(kw if kw is not None else {"activity": node["a"]}))
            ev = await F.next_message(pred=lambda m: m.get("seq") == ok["seq"])
            node[key] = ev["node"]["id"]
        O = await self.connect(self.server, "owner")
        await join(O, self.room, self.tokens["owner"], "Olga")
        await O.expect_ok("vision.set", vision={"target": "shoppers", "benefit": "speed"})
        p = (await F.expect_ok("persona.add", persona={"name": "Pat", "goals": ["pay"]}))["persona"]
        o1 = (await F.expect_ok("outcome.add", outcome={"name": "Faster"}))["outcome"]
        o2 = (await F.expect_ok("outcome.add", outcome={"name": "Cheaper"}))["outcome"]
        items = [it["id"] for it in comparable_snapshot(
            (await self.fresh_join()), False)["items"].values()]
        await F.expect_ok("map.place", item=items[1], step=node["s"], slice=node["r2"])
        await F.expect_ok("map.place", item=items[2], step=node["s"], slice=node["r1"])
        await F.expect_ok("item.update", item=items[1], set={"persona_id": p, "outcomes": [o2, o1]})
        return node, p, [o1, o2], items

    async def fresh_join(self, room=None, token=None):
        c = await self.connect(self.server, "fresh")
        await join(c, room or self.room, token or self.tokens["member"], "Fred")
        return c.snapshot

    async def test_map_and_product_round_trip_and_a_watcher_equals_a_fresh_join(self):
        await self.fill()
        await self.fill_map_and_product()
        src = self.export(self.room, self.tokens["owner"], "json")
        c, room, tokens = await self.new_room()
        watcher = await self.connect(self.server, "watcher")
        await join(watcher, room, tokens["member"], "Wes")
        status, ans = self.post(room, tokens["owner"], src)
        self.assertEqual(status, 200, ans)
        self.assertEqual((ans["ids"], ans["warnings"]), ("kept", []))
        self.assertEqual((ans["sections"]["map"], ans["sections"]["product"]), (4, 4))
        again = self.export(room, tokens["owner"], "json")
        self.assertEqual(items_section(again), items_section(src))
        self.assertEqual(section(again, "product", "map"), section(src, "product", "map"))
        self.assertEqual(section(again, "map", None), section(src, "map", None))
        ev = await watcher.next_message("backlog.imported")
        snap = await self.fresh_join(room, tokens["member"])
        self.assertEqual((ev["map"], ev["product"]), (snap["map"], snap["product"]))
        watcher.state.apply(ev)
        self.assertEqual(watcher.state.comparable(False), comparable_snapshot(snap, False))
        # the imported map and product go on as the room's own: new ids follow the file's
        ok = await c.expect_ok("map.add", kind="slice", name="Later")
        ev = await c.next_message(pred=lambda m: m.get("seq") == ok["seq"])
        self.assertEqual(ev["node"]["id"], "r5")
        self.assertEqual((await c.expect_ok("persona.add", persona={"name": "Q"}))["persona"], "p2")

    async def test_map_and_product_into_a_room_that_has_them_are_skipped(self):
        await self.fill()
        await self.fill_map_and_product()
        src = self.export(self.room, self.tokens["owner"], "json")
        c, room, tokens = await self.new_room()
        await c.expect_ok("map.add", kind="activity", name="Mine")
        await c.expect_ok("persona.add", persona={"name": "Mine"})
        await c.expect_ok("item.add", item={"title": "Already here"})
        before = await self.fresh_join(room, tokens["member"])
        watcher = await self.connect(self.server, "watcher")
        await join(watcher, room, tokens["member"], "Wes")
        status, ans = self.post(room, tokens["owner"], src)
        self.assertEqual(status, 200, ans)
        self.assertEqual(ans["ids"], "new")
        text = " ".join(ans["warnings"])
        self.assertIn("story map is not imported", text)
        self.assertIn("personas and outcomes are not imported", text)
        self.assertIn("2 items come unplaced", text)
        self.assertIn("1 item loses a persona or outcomes", text)
        ev = await watcher.next_message("backlog.imported")
        self.assertNotIn("map", ev)
        self.assertNotIn("product", ev)
        snap = await self.fresh_join(room, tokens["member"])
        self.assertEqual((snap["map"], snap["product"]), (before["map"], before["product"]))
        for it in ev["items"]:
            self.assertEqual((it["step"], it["slice"], it["persona_id"], it["outcomes"]),
                             (None, None, None, []))
        watcher.state.apply(ev)
        self.assertEqual(watcher.state.comparable(False), comparable_snapshot(snap, False))

    async def test_bad_map_or_product_changes_nothing(self):
        await self.fill()
        await self.fill_map_and_product()
        doc = json.loads(self.export(self.room, self.tokens["owner"], "json"))
        c, room, tokens = await self.new_room()
        before = self.export(room, tokens["owner"], "json")
        bad = [("map", "steps", 0, "activity", "a99", "activity is not one of"),
               ("map", "slices", 0, "id", "x1", "its id must be 'r'"),
               ("map", "slices", 1, "capacity", -3, "capacity must be"),
               ("product", "personas", 0, "name", "", "personas"),
               ("product", "outcomes", 1, "id", "o1", "two have its id")]
        for key, lst, i, field, value, msg in bad:
            d = json.loads(json.dumps(doc))
            d[key][lst][i][field] = value
            status, ans = self.post(room, tokens["owner"], json.dumps(d).encode())
            self.assertEqual(status, 400, ans)
            self.assertIn(msg, ans["msg"] if "msg" in ans else json.dumps(ans))
        self.assertEqual(items_section(self.export(room, tokens["owner"], "json")),
                         items_section(before))

    async def test_dry_run_previews_and_changes_nothing(self):
        await self.fill()
        src = self.export(self.room, self.tokens["owner"], "jira")
        body = src.replace(b"\r\n", b",Sprint\r\n", 1)  # a column Refine does not know
        c, room, tokens = await self.new_room()
        before = self.export(room, tokens["owner"], "json")
        status, ans = self.post(room, tokens["owner"], body, "?dry_run=1")
        self.assertEqual(status, 200, ans)
        self.assertTrue(ans["dry_run"])
        self.assertIsNone(ans["seq"])
        self.assertEqual((ans["items"], ans["children"], ans["format"]), (5, 2, "csv"))
        self.assertEqual(ans["first"][0]["title"], 'Pay, then "ship"')
        self.assertEqual(ans["first"][1]["parent"], ans["first"][0]["id"])
        self.assertTrue(any("Sprint" in w for w in ans["warnings"]), ans["warnings"])
        self.assertEqual(json.loads(self.export(room, tokens["owner"], "json"))["seq"],
                         json.loads(before)["seq"])

    async def test_jira_csv_details(self):
        """A CSV as Jira writes it: a BOM, LF line ends, quoted newlines, columns in another
        order, Priority without MoSCoW, Jira's issue types and statuses."""
        c, room, tokens = await self.new_room()
        csv = ("\ufeffSummary,Issue Type,Priority,Issue Id,Parent,Status,Labels,Story Points,"
               "Description\n"
               "\"Epic, big\",Epic,Highest,10,,To Do,a b,,\"multi\nline \"\"desc\"\"\"\n"
               "Sub,Sub-task,Low,11,10,In Progress,,5,\n"
               "Odd,Improvement,Weird,12,,Blocked,,,\n")
        status, ans = self.post(room, tokens["owner"], csv.encode())
        self.assertEqual(status, 200, ans)
        self.assertEqual((ans["format"], ans["items"], ans["children"]), ("csv", 3, 1))
        self.assertEqual(len(ans["warnings"]), 3, ans["warnings"])  # Improvement, Blocked, Weird
        doc = json.loads(self.export(room, tokens["owner"], "json"))
        it = {i["id"]: i for i in doc["items"]}
        self.assertEqual(sorted(it), ["i10", "i11", "i12"])
        self.assertEqual((it["i10"]["title"], it["i10"]["kind"], it["i10"]["moscow"],
                          it["i10"]["status"], it["i10"]["labels"], it["i10"]["notes"]),
                         ("Epic, big", "epic", "must", "draft", ["a", "b"],
                          'multi\nline "desc"'))
        self.assertEqual((it["i11"]["parent"], it["i11"]["estimate"], it["i11"]["status"],
                          it["i11"]["moscow"]), ("i10", "5", "ready", "wont"))
        self.assertEqual((it["i12"]["kind"], it["i12"]["moscow"]), ("story", None))
        # the room's next item follows the imported ids
        r = await c.expect_ok("item.add", item={"title": "after"})
        self.assertEqual(r["item"], "i13")

    async def test_bad_files_change_nothing(self):
        c, room, tokens = await self.new_room()
        await c.expect_ok("item.add", item={"title": "Keep me"})
        before = items_section(self.export(room, tokens["owner"], "json"))
        big = "Summary\r\n" + "".join("Row %d\r\n" % i for i in range(100000))
        cases = [
            (b"Title,Kind\r\nA,story\r\n", None, 400, "Summary"),
            (b"Summary\r\n\"never closed\r\n", None, 400, "never closed"),
            (b"Summary,Value\r\n\"a\"b,1\r\n", None, 400, "quote"),
            (b"Summary\r\nok\r\n\xff\xfe bad\r\n", None, 400, "UTF-8"),
            (b"Summary,Issue Id,Parent\r\nA,1,2\r\nB,2,1\r\n", None, 400, "cycle"),
            (b"Summary,Issue Id,Parent\r\nA,1,7\r\n", None, 400, "not in the file"),
            (b"Summary,Issue Id\r\nA,1\r\nB,1\r\n", None, 400, "unique"),
            (b"Summary,Business Value\r\nA,101\r\n", None, 400, "Line 2"),
            (b"Summary,Business Value\r\nA,lots\r\n", None, 400, "whole number"),
            (b"Summary\r\n\r\n", None, 400, "no items"),
            (b"Summary,MoSCoW\r\nA,maybe\r\n", None, 400, "moscow"),
            (big.encode(), None, 413, "10000"),
            (b'{"items": [', None, 400, "line 1"),
            (b'{"items": [{"title": ""}]}', None, 400, "Item 1"),
            (b'{"items": [{"title": "x", "id": "i1", "parent": "i1"}]}', None, 400, "cycle"),
            (b'{"items": 3}', None, 400, "array"),
            (b'[1, 2]', "?format=json", 400, "object"),
            (b'{"nothing": 1}', None, 400, 'no "items"'),
            # a key repeated with a value of the wrong type (its first one valid): refused,
            # not applied (tests/fuzz/crashes/import-repeated-key-wrong-type.json)
            (b'{"items": [{"title": "x", "labels": [], "labels": "split"}]}', None, 400,
             "labels"),
            (b'{"items": [{"title": "x", "value": 5, "value": "lots"}]}', None, 400, "value"),
        ]
        for body, query, want, text in cases:
            status, ans = self.post(room, tokens["owner"], body, query or "")
            self.assertEqual(status, want, (body[:60], ans))
            self.assertIn(text, ans["msg"], (body[:60], ans))
        # a file that fits no room's item limit together with what the room holds
        fits = "Summary\r\n" + "".join("Row %d\r\n" % i for i in range(10000))
        status, ans = self.post(room, tokens["owner"], fits.encode())
        self.assertEqual(status, 413, ans)
        self.assertIn("10000", ans["msg"])
        self.assertEqual(items_section(self.export(room, tokens["owner"], "json")), before)

    async def test_who_may_import(self):
        c, room, tokens = await self.new_room()
        body = b"Summary\r\nOne\r\n"
        for role, want in (("member", 403), ("observer", 403)):
            status, ans = self.post(room, tokens[role], body)
            self.assertEqual(status, want, (role, ans))
        status, ans = self.post(room, None, body)
        self.assertEqual(status, 401, ans)
        status, ans = self.post(room, "x" * 22, body)
        self.assertEqual(status, 401, ans)
        status, ans = self.post(room, tokens["owner"], body, "?format=xml")
        self.assertEqual(status, 400, ans)
        self.assertEqual(json.loads(self.export(room, tokens["owner"], "json"))["items"], [])
        status, _, _ = http_get(self.server.port, "/api/rooms/%s/import" % room,
                                headers={"Authorization": "Bearer " + tokens["owner"]})
        self.assertEqual(status, 405)

    async def test_restart_keeps_the_import(self):
        await self.fill()
        src = self.export(self.room, self.tokens["owner"], "json")
        c, room, tokens = await self.new_room()
        status, ans = self.post(room, tokens["owner"], src)
        self.assertEqual(status, 200, ans)
        before = self.export(room, tokens["owner"], "json")
        for cl in list(self._clients):
            await cl.close()
        self._clients = []
        self.server.restart()
        after = self.export(room, tokens["owner"], "json")
        self.assertEqual(items_section(after), items_section(before))
        self.assertEqual(json.loads(after)["seq"], json.loads(before)["seq"])

    async def test_speed_of_a_10000_row_csv(self):
        """Prints the time of a Jira CSV import of 10,000 rows (docs/BENCHMARKS.md); not
        asserted."""
        rows = ["%d,,Story number %d with a title,Story,To Do,High,%d,one two,"
                "\"A description, with a comma\",Given a; When b,should,%d,,,"
                % (i + 1, i, i % 13, i % 100) for i in range(10000)]
        body = (JIRA_HEADER + "\r\n" + "\r\n".join(rows) + "\r\n").encode()
        c, room, tokens = await self.new_room()
        t0 = time.perf_counter()
        status, ans = self.post(room, tokens["owner"], body, "?dry_run=1")
        t1 = time.perf_counter()
        self.assertEqual(status, 200, ans)
        status, ans = self.post(room, tokens["owner"], body)
        t2 = time.perf_counter()
        self.assertEqual((status, ans["items"]), (200, 10000), ans)
        sys.stderr.write("\nimport of a 10,000-row Jira CSV (%d KB): dry run %.0f ms, import "
                         "%.0f ms (HTTP round trip)\n" % (len(body) // 1024, (t1 - t0) * 1e3,
                                                         (t2 - t1) * 1e3))


if __name__ == "__main__":
    unittest.main(verbosity=2)
