#!/usr/bin/python3
"""Instances and the homes of rooms (issue #13, part 1): every instance has a name
(--instance, or the one its database stores), the rooms it makes are `<name>.<token>`, a
WebSocket opened on /r/<room>/ws is bound to that room, and a request for a room that lives on
another instance is refused naming that home (`wrong_instance`; HTTP 421), never creating or
loading anything. A database made before instances had names keeps serving its rooms.

Two real servers (`--instance a`, `--instance b`) on their own SQLite files; the databases are
read with sqlite3 to see what was (not) written."""

import json
import os
import re
import sqlite3
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (AsyncTestCase, Client, Server, TOKEN_RE, create_room, http_get,  # noqa: E402
                     join, main, server_binary)


def room_url(srv, room):
    return "ws://127.0.0.1:%d/r/%s/ws" % (srv.port, room)


def rooms_in(db_path, room):
    """How many rows of the database at db_path name room, in every table that has rooms."""
    db = sqlite3.connect(db_path)
    try:
        n = db.execute("SELECT count(*) FROM rooms WHERE id = ?", (room,)).fetchone()[0]
        for t in ("participants", "items", "events", "rounds", "kano"):
            n += db.execute("SELECT count(*) FROM %s WHERE room = ?" % t, (room,)).fetchone()[0]
        return n
    finally:
        db.close()


def export(srv, room, token):
    return http_get(srv.port, "/api/rooms/%s/export" % room,
                    headers={"Authorization": "Bearer " + token})


class InstanceTests(AsyncTestCase):

    async def two(self):
        """Servers a and b, each with a room made on it and joined there by its facilitator.
        Returns (a, b, (a's room, tokens), (b's room, tokens))."""
        a = Server("--instance", "a")
        b = Server("--instance", "b")
        a.start()
        self.addCleanup(a._finish, None)
        b.start()
        self.addCleanup(b._finish, None)
        self.server = a
        ca = await self.connect(a, "a")
        ra = await create_room(ca, "On a")
        cb = await self.connect(b, "b")
        rb = await create_room(cb, "On b")
        return a, b, ra, rb

    async def stop(self, *servers):
        for s in servers:
            self.assertEqual(await s.astop(), 0)

    async def test_rooms_carry_their_home_and_join_there_on_both_paths(self):
        a, b, (room_a, tok_a), (room_b, tok_b) = await self.two()
        for room, name in ((room_a, "a"), (room_b, "b")):
            home, _, token = room.partition(".")
            self.assertEqual(home, name, room)
            self.assertRegex(token, TOKEN_RE, room)
        # over /r/<room>/ws, and over /ws as before
        c = await Client.connect(room_url(a, room_a), label="bound")
        self._clients.append(c)
        ok = await join(c, room_a, tok_a["member"], "Mo")
        await c.expect_ok("item.add", item={"title": "A story"})
        c2 = await self.connect(a, "plain")
        await join(c2, room_a, tok_a["owner"], "Ow")
        self.assertEqual(c2.snapshot["room"]["id"], room_a)
        c3 = await Client.connect(room_url(b, room_b), label="b-bound")
        self._clients.append(c3)
        await join(c3, room_b, tok_b["facilitator"], "Fa")
        # a rejoin with pid and secret on the room URL
        c4 = await Client.connect(room_url(a, room_a), label="rejoin")
        self._clients.append(c4)
        await join(c4, room_a, None, "Mo", pid=ok["pid"], secret=ok["secret"], since=ok["seq"])
        # the room URL without an upgrade is the WebSocket endpoint, like /ws
        status, _, _ = http_get(a.port, "/r/%s/ws" % room_a)
        self.assertEqual(status, 426)
        await self.stop(a, b)

    async def test_a_join_for_another_instance_is_refused_naming_its_home(self):
        a, b, (room_a, tok_a), (room_b, tok_b) = await self.two()
        for label, url in (("plain", a.ws_url), ("bound", room_url(a, room_b))):
            c = await Client.connect(url, label=label)
            self._clients.append(c)
            r = await c.expect_err("wrong_instance", "join", room=room_b,
                                   token=tok_b["facilitator"], name="Lost")
            self.assertEqual(r["home"], "b", r)
            self.assertIn(room_b, r["msg"])
            self.assertIn("instance b", r["msg"])
            self.assertIn("this is instance a", r["msg"])
            # the connection goes on: it may still join a room of its own instance
            if label == "plain":
                await join(c, room_a, tok_a["member"], "Found")
        # a rejoin (pid and secret) is refused alike
        c = await self.connect(a, "rejoin")
        r = await c.expect_err("wrong_instance", "join", room=room_b, pid="p" * 22,
                               secret="s" * 22, name="Lost")
        self.assertEqual(r["home"], "b")
        # nothing of b's room was made on a; b's room is untouched and served by b
        await self.stop(a)
        self.assertEqual(rooms_in(a.db, room_b), 0)
        self.assertGreater(rooms_in(a.db, room_a), 0)
        await self.stop(b)

    async def test_an_unknown_room_of_this_instance_and_a_legacy_id_are_not_found(self):
        a, b, (room_a, tok_a), _ = await self.two()
        c = await self.connect(a, "c")
        for room in ("a." + "A" * 22, "B" * 22, "Q!.xyz", "toolongname12345678.x"):
            r = await c.expect_err("not_found", "join", room=room, token=tok_a["member"],
                                   name="N")
            self.assertNotIn("home", r)
        await self.stop(a, b)

    async def test_a_room_url_joins_only_its_room(self):
        a, b, (room_a, tok_a), _ = await self.two()
        c = await self.connect(a, "maker")
        other, tok_o = await create_room(c, "Other")
        bound = await Client.connect(room_url(a, room_a), label="bound")
        self._clients.append(bound)
        r = await bound.expect_err("bad_request", "join", room=other, token=tok_o["member"],
                                   name="X")
        self.assertIn(room_a, r["msg"])
        # room.create is allowed on any path; the bound room can still be joined
        made = await bound.expect_ok("room.create", name="Made on a room URL")
        self.assertTrue(made["room"].startswith("a."))
        await join(bound, room_a, tok_a["member"], "Y")
        # a handshake on a path that is no room URL is refused
        for path in ("/r//ws", "/r/a.b!c/ws", "/r/%s/wsx" % room_a, "/r/%s" % ("x" * 40) + "/ws"):
            with self.assertRaises(Exception, msg=path):
                await Client.connect("ws://127.0.0.1:%d%s" % (a.port, path))
        await self.stop(a, b)

    async def test_http_for_another_instance_is_421_naming_it(self):
        a, b, (room_a, tok_a), (room_b, tok_b) = await self.two()
        status, headers, body = export(a, room_b, tok_b["facilitator"])
        self.assertEqual(status, 421, body)
        self.assertEqual(headers["content-type"], "application/json")
        j = json.loads(body)
        self.assertEqual((j["code"], j["home"]), ("wrong_instance", "b"), j)
        self.assertIn(room_b, j["msg"])
        # the import alike (after its body), and nothing is made on a
        status, body = raw_post(a.port, "/api/rooms/%s/import" % room_b, tok_b["facilitator"],
                                b'{"items": []}')
        self.assertEqual(status, 421, body)
        self.assertEqual(json.loads(body)["home"], "b")
        # the room's own home exports it; a exports its own
        self.assertEqual(export(b, room_b, tok_b["facilitator"])[0], 200)
        self.assertEqual(export(a, room_a, tok_a["facilitator"])[0], 200)
        # a legacy-looking or unknown id of this instance is 401 as before
        self.assertEqual(export(a, "a." + "Z" * 22, tok_a["facilitator"])[0], 401)
        self.assertEqual(export(a, "Z" * 22, tok_a["facilitator"])[0], 401)
        # /api/instances/<another>/... is 421 naming it, whatever the method
        for method in ("GET", "POST"):
            status, headers, body = raw_request(a.port, method, "/api/instances/b/rooms")
            self.assertEqual(status, 421, body)
            j = json.loads(body)
            self.assertEqual((j["code"], j["home"]), ("wrong_instance", "b"), j)
        status, _, body = raw_request(a.port, "GET", "/api/instances/a/rooms")
        self.assertNotEqual(status, 421, body)
        status, _, body = raw_request(a.port, "GET", "/api/instances/B!/rooms")
        self.assertEqual(status, 404, body)
        await self.stop(a)
        self.assertEqual(rooms_in(a.db, room_b), 0)
        await self.stop(b)

    async def test_the_database_keeps_its_name(self):
        a, b, (room_a, tok_a), _ = await self.two()
        await self.stop(b)
        # restarted without --instance: still a, its rooms served, new rooms a.
        a.extra_args = ["--log-level", "info"]
        a.restart()
        self.assertIn("instance name: a", a.stderr_text())
        c = await self.connect(a, "again")
        await join(c, room_a, tok_a["member"], "Back")
        room, _ = await create_room(c, "Later")
        self.assertTrue(room.startswith("a."), room)
        await c.close()
        self.assertEqual(await a.astop(), 0)
        # with another name: refused, exit 2, a sentence that says what to do
        p = subprocess.run(a.command()[:1] + ["--port", str(a.port), "--db", a.db,
                                              "--instance", "z"],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("this database belongs to instance 'a' (its rooms' ids start with 'a.'); "
                      "start with --instance a", p.stderr)
        p = subprocess.run(a.command()[:1] + ["--port", str(a.port), "--db", a.db],
                           capture_output=True, text=True, timeout=30,
                           env=dict(os.environ, REFINE_INSTANCE="y"))
        self.assertEqual(p.returncode, 2, p.stderr)
        self.assertIn("start with --instance a", p.stderr)
        db = sqlite3.connect(a.db)
        self.assertEqual(db.execute("SELECT value FROM names WHERE key = 'instance'").fetchall(),
                         [("a",)])
        db.close()

    async def test_a_new_database_without_a_name_gets_one(self):
        srv = Server("--log-level", "info")
        srv.start()
        self.addCleanup(srv._finish, None)
        self.server = srv
        m = re.search(r"instance name: (i[a-z0-9]{5})\b", srv.stderr_text())
        self.assertIsNotNone(m, srv.stderr_text())
        c = await self.connect(srv, "c")
        room, _ = await create_room(c, "Named")
        self.assertTrue(room.startswith(m.group(1) + "."), room)
        await c.close()
        self.assertEqual(await srv.astop(), 0)
        srv.restart()  # the same name again
        self.assertEqual(re.findall(r"instance name: (\S+)", srv.stderr_text()),
                         [m.group(1)] * 2)
        self.assertEqual(await srv.astop(), 0)

    def test_bad_names_are_refused(self):
        with tempfile.TemporaryDirectory(prefix="refine-it-") as d:
            db = os.path.join(d, "x.db")
            for name in ("A!", "a" * 17, "1abc", "", "a.b", "Ab"):
                for how in ("flag", "env"):
                    args = [server_binary(), "--port", "1", "--db", db]
                    env = dict(os.environ)
                    if how == "flag":
                        args += ["--instance", name]
                    else:
                        env["REFINE_INSTANCE"] = name
                        if not name:
                            continue  # an empty variable is no setting
                    p = subprocess.run(args, capture_output=True, text=True, timeout=30, env=env)
                    self.assertEqual(p.returncode, 2, (name, how, p.stderr))
                    self.assertIn("invalid instance name", p.stderr, (name, how))
            self.assertFalse(os.path.exists(db), "nothing was created")
            ok = subprocess.run([server_binary(), "--help"], capture_output=True, text=True)
            self.assertIn("--instance NAME", ok.stdout)

    async def test_a_database_of_older_versions_keeps_serving_its_rooms(self):
        """A room made before rooms had homes has a bare 22-character id; the database has
        schema version 4 (no names, no moved, no log). Made here from a room of today, its id rewritten
        in every table, the new tables dropped and user_version set back to 4."""
        srv = Server("--instance", "old")
        srv.start()
        self.addCleanup(srv._finish, None)
        self.server = srv
        c = await self.connect(srv, "maker")
        room, tokens = await create_room(c, "Made long ago")
        ok = await join(c, room, tokens["facilitator"], "Fay")
        await c.expect_ok("item.add", item={"title": "An old story"})
        await c.close()
        self.assertEqual(await srv.astop(), 0)
        legacy = room.partition(".")[2]
        self.assertRegex(legacy, TOKEN_RE)
        rows = rooms_in(srv.db, room)
        db = sqlite3.connect(srv.db)
        db.execute("UPDATE rooms SET id = ? WHERE id = ?", (legacy, room))
        for t in ("participants", "items", "events", "rounds", "kano"):
            db.execute("UPDATE %s SET room = ? WHERE room = ?" % t, (legacy, room))
        db.execute("DROP TABLE names")
        db.execute("DROP TABLE moved")
        db.execute("DROP TABLE log")  # schema 6 (empty after a clean stop)
        db.execute("DELETE FROM server_state WHERE key = 'log_mark'")
        db.execute("PRAGMA user_version = 4")
        db.commit()
        db.close()
        self.assertEqual((rooms_in(srv.db, legacy), rooms_in(srv.db, room)), (rows, 0))
        # started with a name of its own: the database takes it, the old room is served
        srv.extra_args = ["--instance", "new"]
        srv.start()
        for url in (srv.ws_url, room_url(srv, legacy)):
            c = await Client.connect(url, label="old")
            self._clients.append(c)
            await join(c, legacy, None, "Fay", pid=ok["pid"], secret=ok["secret"])
            self.assertEqual([i["title"] for i in c.snapshot["items"]], ["An old story"])
        c2 = await self.connect(srv, "member")
        await join(c2, legacy, tokens["member"], "Mia")
        self.assertEqual(export(srv, legacy, tokens["facilitator"])[0], 200)
        room2, _ = await create_room(c2, "New")
        self.assertTrue(room2.startswith("new."), room2)
        self.assertEqual(await srv.astop(), 0)
        db = sqlite3.connect(srv.db)
        self.assertEqual(db.execute("PRAGMA user_version").fetchone()[0], 6)
        self.assertEqual(db.execute("SELECT value FROM names").fetchall(), [("new",)])
        db.close()


def raw_request(port, method, path, token=None, body=b""):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        headers = {"Authorization": "Bearer " + token} if token else {}
        conn.request(method, path, body=body or None, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def raw_post(port, path, token, body):
    status, _, data = raw_request(port, "POST", path, token, body)
    return status, data


if __name__ == "__main__":
    main()
