// Story map in the browser: the owner lays out a small map (two activities with a step each, a
// release slice with a capacity) inline, drags a card from "Not on the map" into a cell; the
// member sees each change arrive, moves a card with the keyboard (the Move dialog), and both
// see the slice's points go over its capacity (calmly marked) and its unestimated story. The
// owner removes a step that holds a card (a confirmation first): the card goes back to "Not on
// the map" on both pages. axe on the map; screenshots at 390 and 1280 px. Then 1,000 stories on
// the map: the time to open the view, a remote move to arrive, and a keyboard move, printed.

import assert from "node:assert/strict";
import { AxeBuilder } from "@axe-core/playwright";
import { suite, waitFor, screenshot, RawClient, parseInvite, percentile } from "./harness.mjs";
import { addMapNode, createRoom, enterRoom, joinFromLink, waitMapNames } from "./app.mjs";

// Seeding 1,000 stories through one connection needs more than the default 50 messages/s.
const { h, step } = suite("storymap", { serverArgs: ["--rate", "100000"] });
const ROOM = "Map room";
const s = {};
const perf = (name, value, extra = "") => console.log(`PERF storymap_${name}=${typeof value === "number" ? Math.round(value * 10) / 10 : value}${extra ? ` ${extra}` : ""}`);

const map = (page) => page.getByTestId("storymap");
const cardIn = (scope, title) => scope.locator('[data-testid="map-card"]', { hasText: title });
const cell = (page, step, slice) => page.getByRole("list", { name: `${step} · ${slice}`, exact: true });
const unplaced = (page) => page.getByTestId("map-unplaced");

async function openMap(page) {
  await page.getByTestId("view-map").click();
  await map(page).waitFor();
}

async function waitCard(pages, where, title) {
  for (const p of pages) await waitFor(async () => (await cardIn(where(p), title).count()) === 1, { describe: `${p.e2e.label}: “${title}” in place` });
}

async function pointsOf(page, i = 0) {
  return (await page.getByTestId("map-slice-points").nth(i).textContent()).trim();
}

/** Drags `source` by the pointer onto the top of `target` (a tall cell's middle may be off screen). */
async function dragTo(page, source, target) {
  await source.scrollIntoViewIfNeeded();
  const a = await source.boundingBox();
  const b = await target.boundingBox();
  const bx = b.x + b.width / 2;
  const by = b.y + Math.min(b.height / 2, 30);
  await page.mouse.move(a.x + a.width / 2, a.y + 10);
  await page.mouse.down();
  const steps = 16;
  for (let i = 1; i <= steps; i++) {
    await page.mouse.move(a.x + a.width / 2 + ((bx - a.x - a.width / 2) * i) / steps, a.y + 10 + ((by - a.y - 10) * i) / steps);
  }
  await page.mouse.up();
}

async function axe(page, what) {
  const res = await new AxeBuilder({ page }).include('[data-testid="storymap"]').analyze();
  for (const v of res.violations) console.log(`A11Y storymap ${what}: ${v.impact} ${v.id} ${v.help} ${v.nodes[0]?.target}`);
  assert.deepEqual(res.violations.map((v) => `${v.impact} ${v.id}`), [], `axe on the story map (${what})`);
}

step("a room with four stories; the owner and a member open the story map", async () => {
  s.fac = await h.person("facilitator");
  s.links = await createRoom(s.fac, h.base, { room: ROOM, name: "Fay" });
  await enterRoom(s.fac, ROOM);
  const inv = parseInvite(s.links.facilitator);
  s.raw = await RawClient.open(await h.person("seeder"), h.server);
  await s.raw.request({ t: "join", room: inv.room, token: inv.token, name: "Seeder" });
  s.room = inv.room;
  const stories = [
    ["Search by name", "3"],
    ["Pay by card", "5"],
    ["Filter by price", null],
    ["Ship to a locker", "8"],
  ];
  for (const [title, estimate] of stories) await s.raw.request({ t: "item.add", item: estimate ? { title, estimate } : { title } });
  s.own = await h.person("owner");
  await joinFromLink(s.own, s.links.owner, "Olga", { roomName: ROOM });
  s.mem = await h.person("member");
  await joinFromLink(s.mem, s.links.member, "Max", { roomName: ROOM });
  for (const p of [s.own, s.mem]) await openMap(p);
  await waitFor(async () => (await s.mem.getByTestId("map-unplaced-count").textContent()).trim() === "4");
  assert.equal(await s.mem.getByTestId("map-add-activity").count(), 0, "a member does not edit the map");
  await s.own.getByTestId("map-empty").waitFor();
});

step("the owner lays out the map inline; the member sees each change", async () => {
  const o = s.own;
  await addMapNode(o, o.getByTestId("map-add-activity"), "Browse");
  await addMapNode(o, o.getByTestId("map-add-activity"), "Buy");
  await waitMapNames([o, s.mem], "map-activity", ["Browse", "Buy"]);
  await addMapNode(o, o.getByRole("button", { name: "Add a step to “Browse”" }), "Search");
  await addMapNode(o, o.getByRole("button", { name: "Add a step to “Buy”" }), "Pay");
  await waitMapNames([o, s.mem], "map-step", ["Search", "Pay"]);
  await addMapNode(o, o.getByTestId("map-add-slice"), "Walking skeleton");
  await waitMapNames([o, s.mem], "map-slice", ["Walking skeleton"]);
  const cap = o.getByRole("spinbutton", { name: "Capacity of “Walking skeleton” in points" });
  await cap.fill("10");
  await cap.press("Enter");
  for (const p of [o, s.mem]) await waitFor(async () => (await pointsOf(p)) === "0 of 10 points", { describe: `${p.e2e.label}: 0 of 10 points` });
  // Renaming inline: the activity's name is its field.
  const act = o.getByRole("textbox", { name: "Name of the activity “Buy”" });
  await act.fill("Purchase");
  await act.press("Enter");
  await waitMapNames([o, s.mem], "map-activity", ["Browse", "Purchase"]);
});

step("the owner drags a card into a cell; the member sees it there", async () => {
  const target = cell(s.own, "Search", "Walking skeleton");
  await dragTo(s.own, cardIn(unplaced(s.own), "Search by name"), target);
  await waitCard([s.own, s.mem], (p) => cell(p, "Search", "Walking skeleton"), "Search by name");
  for (const p of [s.own, s.mem]) await waitFor(async () => (await pointsOf(p)) === "3 of 10 points", { describe: `${p.e2e.label}: 3 of 10 points` });
  assert.equal(await cardIn(unplaced(s.mem), "Search by name").count(), 0);
});

step("the member moves cards with the keyboard: the Move dialog", async () => {
  const m = s.mem;
  for (const [title, stepName] of [
    ["Ship to a locker", "Pay"],
    ["Filter by price", "Search"],
  ]) {
    const btn = m.getByRole("button", { name: `Move “${title}”` });
    await btn.focus();
    await m.keyboard.press("Enter");
    const dlg = m.getByTestId("map-move-dialog");
    await dlg.waitFor();
    const stepSel = dlg.getByRole("combobox", { name: "Step" });
    await waitFor(() => stepSel.evaluate((el) => el === document.activeElement || el.closest("dialog")?.contains(document.activeElement)));
    await stepSel.focus();
    await stepSel.selectOption({ label: stepName });
    await dlg.getByRole("combobox", { name: "Release slice" }).selectOption({ label: "Walking skeleton" });
    await dlg.getByRole("button", { name: "Move" }).focus();
    await m.keyboard.press("Enter");
    await waitCard([s.own, m], (p) => cell(p, stepName, "Walking skeleton"), title);
    await waitFor(() => btn.evaluate((el) => el === document.activeElement), { describe: "the focus is back on the card's Move button" });
  }
  // 3 + 8 = 11 of 10: over capacity, calmly marked; "Filter by price" is unestimated.
  for (const p of [s.own, m]) {
    await waitFor(async () => (await pointsOf(p)).startsWith("11 of 10 points"), { describe: `${p.e2e.label}: 11 of 10 points` });
    assert.match(await pointsOf(p), /1 over/);
    assert.equal(await p.locator('[data-testid="map-slice"].over').count(), 1);
    assert.match(await p.getByTestId("map-unestimated").textContent(), /1 unestimated/);
  }
  await axe(s.own, "owner");
  await axe(m, "member");
  for (const w of [390, 1280]) {
    for (const p of [s.own, m]) await p.setViewportSize({ width: w, height: w === 390 ? 844 : 800 });
    for (const scheme of ["light", "dark"]) {
      await s.own.emulateMedia({ colorScheme: scheme });
      console.log(await screenshot(s.own, "storymap-owner", scheme));
    }
    await s.own.emulateMedia({ colorScheme: "light" });
    console.log(await screenshot(m, "storymap-member", "light"));
  }
  await axe(s.own, "owner at 390 px");
  for (const p of [s.own, m]) await p.setViewportSize({ width: 1280, height: 800 });
});

step("removing a step that holds a card asks first; the card goes back to Not on the map", async () => {
  const o = s.own;
  await o.getByRole("button", { name: "Remove the step “Pay”" }).click();
  const dlg = o.getByTestId("map-remove-dialog");
  await dlg.waitFor();
  assert.match(await dlg.textContent(), /One story is on it/);
  await axe(o, "remove dialog");
  await dlg.getByTestId("map-remove-confirm").click();
  await waitMapNames([o, s.mem], "map-step", ["Search"]);
  await waitCard([o, s.mem], unplaced, "Ship to a locker");
  for (const p of [o, s.mem]) await waitFor(async () => (await pointsOf(p)) === "3 of 10 points", { describe: `${p.e2e.label}: 3 of 10 points` });
});

step("1,000 stories on the map stay interactive", async () => {
  const N = 1000;
  const m = s.mem;
  await m.getByTestId("view-refine").click();
  // Three more steps and two more slices: 4 x 3 = 12 cells.
  const add = (f) => s.raw.request({ t: "map.add", ...f });
  await add({ kind: "activity", name: "Track" });
  s.raw.clear();
  // Ids of the map from the owner's page (its client state is the snapshot + events).
  const ids = await s.own.evaluate(() =>
    [...document.querySelectorAll('[data-testid="map-step"], [data-testid="map-slice"], [data-testid="map-activity"]')].map((el) => ({ t: el.getAttribute("data-testid"), id: el.getAttribute("data-node-id") })),
  );
  const activityIds = ids.filter((x) => x.t === "map-activity").map((x) => x.id);
  for (const [i, a] of activityIds.entries()) await add({ kind: "step", name: `Step ${i + 1}`, activity: a });
  await add({ kind: "slice", name: "Release 2", capacity: 400 });
  await add({ kind: "slice", name: "Later" });
  await waitFor(async () => (await s.own.getByTestId("map-slice").count()) === 3, { describe: "3 slices on the owner's page" });
  const grid = await s.own.evaluate(() => ({
    steps: [...document.querySelectorAll('[data-testid="map-step"]')].map((el) => el.getAttribute("data-node-id")).filter(Boolean),
    slices: [...document.querySelectorAll('[data-testid="map-slice"]')].map((el) => el.getAttribute("data-node-id")),
  }));
  const cells = grid.steps.flatMap((st) => grid.slices.map((sl) => [st, sl]));
  const t0 = Date.now();
  const added = [];
  for (let i = 0; i < N; i += 200) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 200); j++) batch.push({ t: "item.add", item: { title: `Map story ${String(j + 1).padStart(4, "0")}`, estimate: String((j % 5) + 1) } });
    const oks = await s.raw.requestAll(batch);
    added.push(...oks.map((x) => x.item));
    s.raw.clear();
  }
  for (let i = 0; i < N; i += 200) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 200); j++) {
      const [st, sl] = cells[j % cells.length];
      batch.push({ t: "map.place", item: added[j], step: st, slice: sl });
    }
    await s.raw.requestAll(batch);
    s.raw.clear();
  }
  perf("seed_ms", Date.now() - t0, `(${N} item.add + ${N} map.place, ${cells.length} cells)`);
  // Every page has applied the seeding's events.
  await waitFor(async () => (await s.own.locator('[data-testid="map-card"]').count()) >= N, { timeout: 60000, describe: `${N} cards on the owner's map` });
  // The member opens the map: time until every card is drawn.
  const open0 = Date.now();
  await m.getByTestId("view-map").click();
  await waitFor(async () => (await m.locator('[data-testid="map-card"]').count()) >= N, { timeout: 60000, describe: `${N} cards on the member's map` });
  perf("open_1000_ms", Date.now() - open0, "(click on Story map to 1,000 cards in the DOM)");
  // Remote moves: the owner's page sees each one arrive.
  const lat = [];
  for (let k = 0; k < 10; k++) {
    const id = added[k * 37];
    const [st, sl] = cells[(k * 37 + 5) % cells.length];
    const sel = `[data-testid="map-cell"][data-cell="${st}|${sl}"] [data-item-id="${id}"]`;
    // Measured in the browser: from the raw page's send to the card in its cell in the owner's.
    const seen = s.own.evaluate(
      (q) =>
        new Promise((resolve) => {
          const done = () => document.querySelector(q) && (obs.disconnect(), resolve(performance.timeOrigin + performance.now()), true);
          const obs = new MutationObserver(done);
          obs.observe(document.body, { childList: true, subtree: true });
          done();
        }),
      sel,
    );
    await s.raw.sendAll([{ t: "map.place", item: id, step: st, slice: sl }]);
    lat.push((await seen) - s.raw.lastSendAt);
    await s.raw.drain();
    s.raw.clear();
  }
  perf("remote_move_p50_ms", percentile(lat, 50), "(a raw client's map.place to the card in its new cell on the owner's page, 1,000 cards, in-browser clocks)");
  perf("remote_move_max_ms", Math.max(...lat));
  // A keyboard move by the member in the 1,000-card map.
  const title = "Map story 0002";
  const btn = m.getByRole("button", { name: `Move “${title}”` });
  await btn.scrollIntoViewIfNeeded();
  const k0 = Date.now();
  await btn.click();
  const dlg = m.getByTestId("map-move-dialog");
  await dlg.waitFor();
  perf("move_dialog_open_ms", Date.now() - k0);
  await dlg.getByRole("combobox", { name: "Step" }).selectOption({ label: "Step 1" });
  await dlg.getByRole("combobox", { name: "Release slice" }).selectOption({ label: "Later" });
  const k1 = Date.now();
  await dlg.getByRole("button", { name: "Move" }).click();
  await waitFor(async () => (await cardIn(cell(s.own, "Step 1", "Later"), title).count()) === 1, { describe: "the move on the owner's page" });
  perf("keyboard_move_roundtrip_ms", Date.now() - k1, "(Move to the card in its cell on the other page)");
  // A pointer drag across the 1,000-card map: frame times while dragging, and the drop arrives.
  // The first card of the cell (Search, Walking skeleton) onto the cell to its right.
  const src = cell(m, "Search", "Walking skeleton").locator('[data-testid="map-card"]').first();
  const dragTitle = (await src.locator(".title").textContent()).trim();
  const dst = cell(m, "Step 1", "Walking skeleton");
  await m.evaluate(() => {
    const P = (window.__mapPerf = { frames: [], rec: true });
    let last = performance.now();
    const f = (t) => {
      P.frames.push(t - last);
      last = t;
      if (P.rec) requestAnimationFrame(f);
    };
    requestAnimationFrame((t) => {
      last = t;
      requestAnimationFrame(f);
    });
  });
  await dragTo(m, src, dst);
  const frames = await m.evaluate(() => {
    window.__mapPerf.rec = false;
    return window.__mapPerf.frames;
  });
  perf("drag_frame_p95_ms", percentile(frames, 95), `(${frames.length} frames during a pointer drag, 1,000 cards)`);
  perf("drag_frame_max_ms", Math.max(...frames));
  await waitFor(async () => (await cardIn(cell(s.own, "Step 1", "Walking skeleton"), dragTitle).count()) === 1, { describe: `“${dragTitle}” dropped, on the owner's page` });
  // Points of 1,000 cards: the slices add up to the sum of the estimates.
  const want = added.reduce((sum, _, j) => sum + (j % 5) + 1, 0);
  const got = await s.own.evaluate(() => [...document.querySelectorAll('[data-testid="map-slice-points"]')].map((el) => parseFloat(el.textContent)));
  assert.equal(got.reduce((a, b) => a + b, 0), want + 3, "the slices' points add up (the first 3 of the small map too)");
  h.assertNoPageErrors();
});
