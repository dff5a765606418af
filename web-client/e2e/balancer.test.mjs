// Through the balancer (issue 13): Debian's haproxy with deploy/haproxy.cfg in front of two
// instances a and b. A facilitator creates a room in the browser through the balancer, a second
// browser opens the invite link through the balancer and joins; a change by either appears for
// the other; the room's WebSocket is /r/<room>/ws (the id starting with its home's name), and
// /ws only carried the room.create. Then the room moves to the other instance with
// scripts/move-room through the balancer: both pages follow to the new id by themselves, and a
// third browser opening the OLD invite link lands in the new room (the old id answers `moved`).
// Screenshots at 390 px: balancer-390-light.png, balancer-moved-390-light.png.

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import path from "node:path";
import { after, before, test } from "node:test";
import { REPO, screenshot, stepper, parseInvite, waitFor } from "./harness.mjs";
import { addStory, createRoom, enterRoom, joinFromLink, moveByMenu, rowTitles, waitForSameOrder } from "./app.mjs";
import { ClusterHarness, haproxyBinary } from "./cluster.mjs";

const ROOM = "Balanced refinement";
const ADMIN = "e2e-balancer-admin-token-0123456789";
const s = {};

if (!haproxyBinary()) {
  test("through the balancer", { skip: "haproxy is not installed (scripts/install-deps test installs Debian's package)" }, () => {});
} else {
  const h = new ClusterHarness("balancer", { names: ["a", "b"], args: ["--admin-token", ADMIN] });
  before(() => h.start());
  after(() => h.close());
  const step = stepper(h, test);

  /** The paths of the WebSockets a page opened. */
  const socketPaths = (page) => page.e2e.sockets.map((u) => new URL(u).pathname);

  step("a facilitator creates a room through the balancer", async () => {
    s.fac = await h.person("facilitator");
    s.links = await createRoom(s.fac, h.base, { room: ROOM, name: "Fay" });
    s.room = parseInvite(s.links.member).room;
    assert.match(s.room, /^[ab]\.[A-Za-z0-9_-]{22}$/, `the room id ${s.room} starts with its home's name`);
    assert.ok(new URL(s.links.member).origin === h.base, `the invite link is on the balancer (${s.links.member})`);
    await enterRoom(s.fac, ROOM);
    const paths = socketPaths(s.fac);
    assert.equal(paths[0], "/ws", `room.create went over /ws (sockets: ${paths.join(", ")})`);
    assert.ok(paths.slice(1).length > 0 && paths.slice(1).every((p) => p === `/r/${s.room}/ws`), `the room is joined over /r/${s.room}/ws (sockets: ${paths.join(", ")})`);
  });

  step("a second browser at 390 px opens the invite link through the balancer and joins", async () => {
    s.mem = await h.person("member", { width: 390, height: 844 });
    await joinFromLink(s.mem, s.links.member, "Mo", { roomName: ROOM });
    assert.deepEqual([...new Set(socketPaths(s.mem))], [`/r/${s.room}/ws`], `the member's only WebSocket is the room's (sockets: ${socketPaths(s.mem).join(", ")})`);
  });

  step("a change by one appears for the other, both ways", async () => {
    await addStory(s.fac, "Checkout with a saved card", { pages: [s.fac, s.mem] });
    await addStory(s.mem, "Guest checkout", { pages: [s.fac, s.mem] });
    await addStory(s.fac, "Refunds", { pages: [s.fac, s.mem] });
    await moveByMenu(s.fac, "Refunds", "Move to top");
    const order = await waitForSameOrder([s.fac, s.mem]);
    assert.equal(order.length, 3);
    await screenshot(s.mem, "balancer", "light");
  });

  const hashRoom = (page) => page.evaluate(() => new URLSearchParams(location.hash.slice(1)).get("room"));

  step("the room moves to the other instance (scripts/move-room through the balancer): both pages follow", async () => {
    const to = s.room.startsWith("a.") ? "b" : "a";
    const r = spawnSync(path.join(REPO, "scripts/move-room"), ["--admin-token", ADMIN, h.base, s.room, to], { encoding: "utf8", timeout: 60000 });
    assert.equal(r.status, 0, `scripts/move-room exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
    s.moved = r.stdout.trim().split("\n").pop().trim();
    assert.match(s.moved, new RegExp(`^${to}\\.[A-Za-z0-9_-]{22}$`), `the new id (${s.moved}) names instance ${to}`);
    for (const p of [s.fac, s.mem]) {
      await waitFor(async () => (await hashRoom(p)) === s.moved, { timeout: 20000, describe: `${p.e2e.label}: the address bar names the new room ${s.moved}` });
    }
    await addStory(s.mem, "Saved carts", { pages: [s.fac, s.mem] });
    const order = await waitForSameOrder([s.fac, s.mem]);
    assert.equal(order.length, 4);
    assert.ok(socketPaths(s.mem).includes(`/r/${s.moved}/ws`), `the member reconnected over /r/${s.moved}/ws (sockets: ${socketPaths(s.mem).join(", ")})`);
  });

  step("a new browser opening the old invite link lands in the new room", async () => {
    const late = await h.person("late", { width: 390, height: 844 });
    await joinFromLink(late, s.links.member, "Lee", { roomName: ROOM });
    await waitFor(async () => (await hashRoom(late)) === s.moved, { describe: `late: the address bar names the new room ${s.moved}` });
    assert.deepEqual(await rowTitles(late), await rowTitles(s.fac), "the late joiner sees the moved room's backlog");
    await screenshot(late, "balancer-moved", "light");
  });
}
