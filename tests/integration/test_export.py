#!/usr/bin/python3
"""GET /api/rooms/{room}/export (PROTOCOL.md: HTTP): who may export, the JSON and CSV bodies,
the history of rounds, and no card of an unrevealed round."""

import csv
import io
import json
import os
import socket
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerPerTestCase, create_room, http_get, join  # noqa: E402

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(text):
    """A CSV cell as its author wrote it (PROTOCOL.md: HTTP): one leading apostrophe that
    defuses a formula comes off."""
    if text[:1] == "'" and text[1:2] in FORMULA_STARTS + ("'",):
        return text[1:]
    return text


def csv_list(text):
    """A list cell (labels, acceptance) split back into its elements: `; ` between elements,
    `\\` and `\\;` inside one."""
    text = csv_cell(text)
    if text == "":
        return []
    out, cur, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur += text[i + 1]
            i += 2
        elif ch == ";" and text[i + 1:i + 2] == " ":
            out.append(cur)
            cur = ""
            i += 2
        else:
            cur += ch
            i += 1
    out.append(cur)
    return out


def raw_request(port, request):
    """Every byte the server sends for `request` (Connection: close) until it closes."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        s.sendall(request)
        data = b""
        while True:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        return data
    finally:
        s.close()


def split_response(data):
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    return int(lines[0].split(" ")[1]), headers, body


class ExportTests(ServerPerTestCase):

    async def asyncSetUp(self):
        await super().asyncSetUp()
        self.fac = await self.connect(self.server, "fac")
        self.room, self.tokens = await create_room(self.fac, "Export room")
        await join(self.fac, self.room, self.tokens["facilitator"], "Fay")
        self.mem = await self.connect(self.server, "mem")
        await join(self.mem, self.room, self.tokens["member"], "Max")
        r = await self.fac.expect_ok("item.add", item={
            "title": 'Pay, then "ship"', "acceptance": ["Given a cart", "When I pay"],
            "labels": ["checkout"], "value": 70, "notes": "line one\nline two"})
        self.item = r["item"]
        await self.fac.expect_ok("item.add", item={"title": "Second"})

    def export(self, token, fmt=None, room=None):
        path = "/api/rooms/%s/export" % (room or self.room)
        if fmt:
            path += "?format=" + fmt
        headers = {"Authorization": "Bearer " + token} if token is not None else {}
        return http_get(self.server.port, path, headers=headers)

    async def test_who_may_export(self):
        for role, want in (("facilitator", 200), ("owner", 200), ("member", 403),
                           ("observer", 403)):
            status, _, body = self.export(self.tokens[role])
            self.assertEqual(status, want, (role, body))
        status, _, body = self.export(None)
        self.assertEqual(status, 401, body)
        self.assertEqual(json.loads(body)["code"], "auth_failed")
        status, _, body = self.export("x" * 22)
        self.assertEqual(status, 401, body)
        status, _, body = self.export(self.tokens["owner"], room="NoSuchRoomAtAll000000A")
        self.assertEqual(status, 401, body)
        status, _, body = self.export(self.tokens["owner"], fmt="xml")
        self.assertEqual(status, 400, body)
        self.assertEqual(json.loads(body)["code"], "bad_request")
        status, _, _ = http_get(self.server.port, "/api/nothing/here")
        self.assertEqual(status, 404)

    async def test_json_export_holds_the_room(self):
        status, headers, body = self.export(self.tokens["owner"], "json")
        self.assertEqual(status, 200)
        self.assertEqual(headers["content-type"], "application/json")
        self.assertIn("attachment", headers.get("content-disposition", ""))
        doc = json.loads(body)
        self.assertEqual(doc["room"]["id"], self.room)
        self.assertEqual(doc["room"]["name"], "Export room")
        self.assertEqual([i["title"] for i in doc["items"]], ['Pay, then "ship"', "Second"])
        self.assertEqual(doc["items"][0]["acceptance"], ["Given a cart", "When I pay"])
        self.assertEqual(doc["items"][0]["notes"], "line one\nline two")
        self.assertEqual(sorted(p["name"] for p in doc["participants"]), ["Fay", "Max"])
        for p in doc["participants"]:
            self.assertEqual(set(p), {"pid", "name", "role"}, "no secret in an export")
        self.assertNotIn(self.tokens["facilitator"], body.decode())

    async def test_csv_export_quotes_fields(self):
        status, headers, body = self.export(self.tokens["facilitator"], "csv")
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/csv"))
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
        self.assertEqual(len(rows), 2)
        self.assertEqual(rows[0]["title"], 'Pay, then "ship"')
        self.assertEqual(rows[0]["acceptance"], "Given a cart; When I pay")
        self.assertEqual(rows[0]["notes"], "line one\nline two")
        self.assertEqual(rows[0]["value"], "70")
        self.assertEqual(rows[0]["estimate"], "")
        self.assertEqual(rows[0]["rounds"], "0")

    async def test_csv_defuses_formulas(self):
        """Every cell that a spreadsheet would run as a formula starts with an apostrophe
        (OWASP CSV injection); a cell that starts with an apostrophe gets one more, so that
        removing one is always right."""
        texts = ["=HYPERLINK(\"http://x\",\"y\")", "+1+1", "-2+3", "@SUM(A1)", "\tTab", "\rCR",
                 "'quoted", "plain = fine"]
        ids = []
        for t in texts:
            r = await self.fac.expect_ok("item.add", item={
                "title": t, "persona": t, "goal": t, "benefit": t, "notes": t,
                "acceptance": [t, "ok"], "labels": [t]})
            ids.append(r["item"])
        _, _, body = self.export(self.tokens["facilitator"], "csv")
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
        by_id = {row["id"]: row for row in rows}
        for t, i in zip(texts, ids):
            row = by_id[i]
            for col in ("title", "persona", "goal", "benefit", "notes", "acceptance", "labels"):
                cell = row[col]
                self.assertFalse(cell[:1] in FORMULA_STARTS, (col, t, cell))
                if t[:1] in FORMULA_STARTS + ("'",):
                    self.assertEqual(cell[:1], "'", (col, t, cell))
            for col in ("title", "persona", "goal", "benefit", "notes"):
                self.assertEqual(csv_cell(row[col]), t, col)
            self.assertEqual(csv_list(row["acceptance"]), [t, "ok"])
            self.assertEqual(csv_list(row["labels"]), [t])
        for row in rows:  # no cell of any column starts a formula
            for col, cell in row.items():
                self.assertFalse(cell[:1] in FORMULA_STARTS, (col, cell))

    async def test_csv_lists_split_back(self):
        """Labels and criteria holding the separator, or a backslash, split back exactly."""
        lists = [["a; b", "c"], ["x;y", "z\\", "\\;"], ["one"], [], ["trailing; "], ["; lead"],
                 ["a\\", "b"]]
        ids = []
        for ls in lists:
            r = await self.fac.expect_ok("item.add", item={"title": "L", "labels": ls[:20],
                                                           "acceptance": ls})
            ids.append(r["item"])
        _, _, body = self.export(self.tokens["owner"], "csv")
        rows = {row["id"]: row for row in
                csv.DictReader(io.StringIO(body.decode("utf-8"), newline=""))}
        for ls, i in zip(lists, ids):
            self.assertEqual(csv_list(rows[i]["labels"]), ls, rows[i]["labels"])
            self.assertEqual(csv_list(rows[i]["acceptance"]), ls, rows[i]["acceptance"])
        self.assertEqual(rows[self.item]["acceptance"], "Given a cart; When I pay")

    async def test_head_is_get_without_body(self):
        """HEAD on the export, the UI and /healthz: GET's status and headers, no body."""
        auth = "Authorization: Bearer %s\r\n" % self.tokens["facilitator"]
        for path, extra in (("/api/rooms/%s/export?format=csv" % self.room, auth),
                            ("/api/rooms/%s/export" % self.room, auth),
                            ("/api/rooms/%s/export" % self.room, ""),
                            ("/", ""), ("/healthz", ""), ("/room/x", "")):
            got = {}
            for method in ("GET", "HEAD"):
                req = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%sConnection: close\r\n\r\n"
                       % (method, path, extra)).encode()
                got[method] = split_response(raw_request(self.server.port, req))
            gs, gh, gb = got["GET"]
            hs, hh, hb = got["HEAD"]
            self.assertEqual(hs, gs, path)
            self.assertEqual(hb, b"", "%s: HEAD has no body" % path)
            self.assertEqual(int(hh["content-length"]), len(gb), path)
            for k in set(gh) | set(hh):
                if k not in ("date",):
                    self.assertEqual(hh.get(k), gh.get(k), "%s: header %s" % (path, k))

    async def test_history_and_secrecy(self):
        r = await self.fac.expect_ok("round.start", item=self.item)
        ev = await self.fac.next_message("round.started")
        rid = ev["round"]
        await self.fac.expect_ok("vote", round=rid, card="13")
        await self.mem.expect_ok("vote", round=rid, card="21")
        _, _, body = self.export(self.tokens["facilitator"], "json")
        doc = json.loads(body)
        self.assertEqual(doc["rounds"][0]["state"], "voting")
        self.assertIsNone(doc["rounds"][0]["votes"])
        self.assertIsNone(doc["rounds"][0]["stats"])
        self.assertEqual(len(doc["rounds"][0]["voted"]), 2)
        self.assertNotIn('"card"', body.decode())
        await self.fac.expect_ok("round.reveal", round=rid)
        await self.fac.expect_ok("round.accept", round=rid, estimate="21")
        _, _, body = self.export(self.tokens["facilitator"], "json")
        doc = json.loads(body)
        rd = doc["rounds"][0]
        self.assertEqual(rd["state"], "accepted")
        self.assertEqual(sorted(rd["votes"].values()), ["13", "21"])
        self.assertEqual(rd["stats"]["count"], 2)
        self.assertEqual(rd["estimate"], "21")
        self.assertEqual(doc["items"][0]["estimate"], "21")
        _, _, body = self.export(self.tokens["facilitator"], "csv")
        rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"), newline="")))
        self.assertEqual((rows[0]["estimate"], rows[0]["rounds"]), ("21", "1"))
        del r


if __name__ == "__main__":
    unittest.main(verbosity=2)
