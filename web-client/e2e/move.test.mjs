// A room moves to another server while two browsers are in it (PROTOCOL.md "Moving a room"):
// instance a (the harness's server) and instance b (started here), behind a small path-routing
// proxy that stands for the balancer (the browsers only ever talk to the proxy). During the
// freeze a change gets the toast; after `finish` both pages follow to the new id by themselves,
// the hash names it, and a change made after the move reaches the other browser in the new room.

import assert from "node:assert/strict";
import net from "node:net";
import { RefineServer, freePort, screenshot, suite, waitFor } from "./harness.mjs";
import { addField, addStory, createRoom, enterRoom, joinFromLink, rowTitles, waitConnected } from "./app.mjs";

const ADMIN = "e2e-move-admin-token-0123456789";
const { h, step } = suite("move", { serverArgs: ["--instance", "a", "--admin-token", ADMIN] });
const ROOM = "Moving refinement";
const s = {};

/**
 * The balancer's part: a TCP proxy that sends a connection to instance a or b by the path of
 * its first request (`/r/<room>/...` and `/api/rooms/<room>/...` by the room's prefix), anything
 * else to `s.home` (the instance the test says holds the room: a, then b once the move is
 * finished), as the balancer does once the room's new id is what the client asks for.
 */
function startProxy(port) {
  const servers = { a: h.server, b: s.b };
  const srv = net.createServer((client) => {
    client.once("data", (first) => {
      const line = first.toString("latin1").split("\r\n", 1)[0];
      const path = line.split(" ")[1] || "/";
      const m = /^\/(?:r|api\/rooms)\/([a-z][a-z0-9]*)\./.exec(path);
      const to = servers[m ? m[1] : s.home] || servers[s.home];
      const up = net.connect(to.port, "127.0.0.1", () => {
        up.write(first);
        client.pipe(up);
        up.pipe(client);
      });
      up.on("error", () => client.destroy());
      client.on("error", () => up.destroy());
      client.on("close", () => up.destroy());
      up.on("close", () => client.destroy());
    });
    client.on("error", () => {});
  });
  return new Promise((resolve) => srv.listen(port, "127.0.0.1", () => resolve(srv)));
}

async function admin(base, path, body) {
  const r = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${ADMIN}`, ...(body ? { "Content-Type": "application/json" } : {}) },
    body,
    redirect: "manual",
  });
  return { status: r.status, text: await r.text() };
}

const hashRoom = (page) => page.evaluate(() => new URLSearchParams(location.hash.slice(1)).get("room"));

step("a room on instance a, two browsers in it through the proxy", async () => {
  s.b = new RefineServer({ args: ["--instance", "b", "--admin-token", ADMIN], label: "move-b" });
  await s.b.start();
  s.home = "a";
  s.proxyPort = await freePort();
  s.proxy = await startProxy(s.proxyPort);
  s.base = `http://127.0.0.1:${s.proxyPort}`;
  s.fac = await h.person("facilitator", { width: 1280 });
  s.links = await createRoom(s.fac, s.base, { room: ROOM, name: "Fay" });
  await enterRoom(s.fac, ROOM);
  s.mem = await h.person("member", { width: 390, height: 844 });
  await joinFromLink(s.mem, s.links.member, "Mia", { roomName: ROOM });
  await addStory(s.fac, "Saved cards", { pages: [s.fac, s.mem] });
  s.old = await hashRoom(s.fac);
  assert.ok(s.old, "the facilitator's hash names the room");
  assert.equal(await hashRoom(s.mem), s.old);
});

step("frozen: a change gets the toast and changes nothing", async () => {
  const r = await admin(h.server.url, `/api/rooms/${s.old}/move`);
  assert.equal(r.status, 200, r.text);
  s.archive = r.text;
  const field = addField(s.fac);
  await field.fill("Added while moving");
  await field.press("Enter");
  const toast = s.fac.getByTestId("notice-toast");
  await toast.waitFor();
  assert.match(await toast.innerText(), /The room is being moved; try again in a moment\./);
  await screenshot(s.fac, "move-frozen-toast", "light");
  await waitFor(async () => !(await rowTitles(s.mem)).includes("Added while moving") && true, {
    describe: "the member never sees the refused change",
  });
  assert.deepEqual(await rowTitles(s.mem), ["Saved cards"]);
});

step("the move finishes: both pages follow to the new id without anyone doing anything", async () => {
  const made = await admin(s.b.url, "/api/instances/b/rooms", s.archive);
  assert.equal(made.status, 201, made.text);
  s.new = JSON.parse(made.text).room;
  assert.match(s.new, /^b\.[A-Za-z0-9_-]{22}$/);
  s.home = "b"; // the balancer's part: the room's requests reach b from now on
  const fin = await admin(h.server.url, `/api/rooms/${s.old}/move/finish?to=${encodeURIComponent(s.new)}`);
  assert.equal(fin.status, 200, fin.text);
  for (const page of [s.fac, s.mem]) {
    await waitFor(async () => (await hashRoom(page)) === s.new, { describe: `${page.e2e.label}: the hash names ${s.new}` });
    await waitConnected(page);
    await page.getByRole("heading", { level: 1, name: ROOM, exact: true }).waitFor();
    assert.deepEqual(await rowTitles(page), ["Saved cards"]);
  }
  const moved = s.fac.e2e.frames.find((f) => f.dir === "in" && f.msg && f.msg.t === "room.moved");
  assert.ok(moved, "the facilitator's page got room.moved");
  assert.equal(moved.msg.room, s.new);
  // it rejoined as itself (same pid) in the new room
  const joins = s.mem.e2e.frames.filter((f) => f.dir === "out" && f.msg && f.msg.t === "join");
  const last = joins[joins.length - 1].msg;
  assert.equal(last.room, s.new);
  assert.ok(last.pid && last.secret, "the member rejoined with its pid and secret");
});

step("a change after the move reaches the other browser in the new room", async () => {
  await addStory(s.mem, "Guest checkout", { pages: [s.mem, s.fac] });
  await addStory(s.fac, "Refunds", { pages: [s.fac, s.mem] });
  assert.deepEqual(await rowTitles(s.mem), await rowTitles(s.fac));
  await screenshot(s.mem, "move-followed", "light");
  await screenshot(s.fac, "move-followed", "light");
  s.proxy.close();
  await s.b.stop();
});
// (An old invite link following the move needs the room's URL, /r/<room>/ws, which the balancer
// routes to the old home: with /ws alone the proxy cannot tell which home a join is for.)
