#!/usr/bin/python3
"""GET /api/rooms/{room}/export (PROTOCOL.md: HTTP): who may export, the JSON and CSV bodies,
the history of rounds, and no card of an unrevealed round."""

import csv
import io
import json
import os
import sys
import unittest

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import ServerPerTestCase, create_room, http_get, join  # noqa: E402


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
