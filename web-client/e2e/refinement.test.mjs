// The refinement toolkit as one product (issue 12, "In Chromium"): a product owner and the
// facilitator run a refinement while a member and an observer watch in their own browsers. The
// owner lays out a small story map and places a card, sorts the MoSCoW board (pointer drag and
// keyboard), gives a story a value, reads the scatter plot and applies the proposed order; the
// facilitator runs a poker round whose accepted estimate removes an "unestimated" health finding.
// At each step the watchers' DOM shows the change arrive. axe is clean on every view for every
// role; screenshots at 390 and 1280 px go to the artifacts folder (refinement-<view>-<role>).

import assert from "node:assert/strict";
import { AxeBuilder } from "@axe-core/playwright";
import { suite, waitFor, screenshot, RawClient, parseInvite } from "./harness.mjs";
import { addMapNode, createRoom, detail, enterRoom, joinFromLink, primary, rowIds, selectItem, vote, waitMapNames, waitPrimary } from "./app.mjs";

const { h, step } = suite("refinement");
const ROOM = "Shop refinement";
const s = {};
const VIEWS = ["refine", "priorities", "product", "map", "health"];

// [title, estimate, value, moscow]
const SEED = [
  ["Checkout with a saved card", "5", 80, "must"],
  ["Guest checkout", "8", 60, null],
  ["Order history with filters", null, 40, "should"],
  ["Search by order number", "3", 70, null],
  ["Export invoices as PDF", "13", null, "could"],
  ["Dark mode", "2", 15, "wont"],
];

const watchers = () => [s.mem, s.obs];
const everyone = () => [s.own, s.fac, s.mem, s.obs];

async function open(page, view) {
  await page.getByTestId(`view-${view}`).click();
  await waitFor(async () => (await page.getByTestId(`view-${view}`).getAttribute("aria-current")) === "page", {
    describe: `${page.e2e.label}: the ${view} view is current`,
  });
  if (view !== "refine") await page.getByTestId(`workspace-${view}`).waitFor();
}

async function axe(page, what) {
  const res = await new AxeBuilder({ page }).analyze();
  for (const v of res.violations) console.log(`A11Y refinement ${what}: ${v.impact} ${v.id} ${v.help} ${v.nodes[0]?.target}`);
  assert.deepEqual(res.violations.map((v) => `${v.impact} ${v.id}`), [], `axe (${what})`);
}

async function shoot(page, name) {
  for (const w of [1280, 390]) {
    await page.setViewportSize({ width: w, height: w === 390 ? 844 : 800 });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    console.log(await screenshot(page, `refinement-${name}`, "light"));
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

const text = async (loc) => ((await loc.textContent()) || "").replace(/\s+/g, " ").trim();

// Story map
const mapCard = (scope, title) => scope.locator('[data-testid="map-card"]', { hasText: title });
const cell = (page, st, sl) => page.getByRole("list", { name: `${st} · ${sl}`, exact: true });

/** Pointer drag from `source` to `target`, in steps (svelte-dnd-action follows the pointer). */
async function drag(page, source, tx, ty) {
  await source.scrollIntoViewIfNeeded();
  const a = await source.boundingBox();
  const sx = a.x + 20;
  const sy = a.y + 12;
  await page.mouse.move(sx, sy);
  await page.mouse.down();
  await page.mouse.move(sx + 6, sy + 6, { steps: 3 });
  await page.mouse.move(tx, ty, { steps: 20 });
  await page.mouse.move(tx, ty + 2, { steps: 2 });
  await page.mouse.up();
}

// Priorities
const col = (page, m) => page.getByTestId(`moscow-col-${m}`);
const moscowCard = (page, m, title) => col(page, m).getByTestId("moscow-card").filter({ hasText: title });

// Health
const finding = (page, rule, title) => page.locator(`[data-testid="health-finding"][data-rule="${rule}"]`, { hasText: title });

step("the facilitator opens a room with six stories; the owner, a member and an observer join", async () => {
  s.fac = await h.person("facilitator");
  s.links = await createRoom(s.fac, h.base, { room: ROOM, name: "Fay Facilitator" });
  await enterRoom(s.fac, ROOM);
  const inv = parseInvite(s.links.facilitator);
  const raw = await RawClient.open(await h.person("seeder"), h.server);
  await raw.request({ t: "join", room: inv.room, token: inv.token, name: "Import" });
  const oks = await raw.requestAll(
    SEED.map(([title, estimate, value, moscow]) => ({ t: "item.add", item: { title, estimate, value, moscow } })),
  );
  s.ids = Object.fromEntries(SEED.map(([title], i) => [title, oks[i].item]));
  await raw.close();
  s.own = await h.person("owner");
  await joinFromLink(s.own, s.links.owner, "Olu Owner", { roomName: ROOM });
  s.mem = await h.person("member");
  await joinFromLink(s.mem, s.links.member, "Mia Member", { roomName: ROOM });
  s.obs = await h.person("observer");
  await joinFromLink(s.obs, s.links.observer, "Oli Observer", { roomName: ROOM });
  for (const p of everyone())
    await waitFor(async () => (await rowIds(p)).length === SEED.length, { describe: `${p.e2e.label}: six rows` });
});

step("the owner lays out a story map and places a card; the watchers see each change", async () => {
  const o = s.own;
  for (const p of [o, ...watchers()]) await open(p, "map");
  for (const p of watchers()) assert.equal(await p.getByTestId("map-add-activity").count(), 0, `${p.e2e.label}: no editing`);
  await addMapNode(o, o.getByTestId("map-add-activity"), "Find");
  await addMapNode(o, o.getByTestId("map-add-activity"), "Buy");
  await waitMapNames([o, ...watchers()], "map-activity", ["Find", "Buy"]);
  await addMapNode(o, o.getByRole("button", { name: "Add a step to “Find”" }), "Search");
  await addMapNode(o, o.getByRole("button", { name: "Add a step to “Buy”" }), "Pay");
  await waitMapNames([o, ...watchers()], "map-step", ["Search", "Pay"]);
  await addMapNode(o, o.getByTestId("map-add-slice"), "First release");
  await waitMapNames([o, ...watchers()], "map-slice", ["First release"]);
  // A card by the pointer into (Pay, First release); the watchers see it leave "Not on the map".
  const target = cell(o, "Pay", "First release");
  const card = mapCard(o.getByTestId("map-unplaced"), "Checkout with a saved card");
  await card.scrollIntoViewIfNeeded();
  const b = await target.boundingBox();
  await drag(o, card, b.x + b.width / 2, b.y + Math.min(b.height / 2, 30));
  for (const p of [o, ...watchers()]) {
    await waitFor(async () => (await mapCard(cell(p, "Pay", "First release"), "Checkout with a saved card").count()) === 1, {
      describe: `${p.e2e.label}: the card in Pay · First release`,
    });
    assert.equal(await mapCard(p.getByTestId("map-unplaced"), "Checkout with a saved card").count(), 0);
  }
  // A second card with the keyboard (the Move dialog).
  const btn = o.getByRole("button", { name: "Move “Search by order number”" });
  await btn.focus();
  await o.keyboard.press("Enter");
  const dlg = o.getByTestId("map-move-dialog");
  await dlg.waitFor();
  await dlg.getByRole("combobox", { name: "Step" }).selectOption({ label: "Search" });
  await dlg.getByRole("combobox", { name: "Release slice" }).selectOption({ label: "First release" });
  await dlg.getByRole("button", { name: "Move" }).click();
  for (const p of [o, ...watchers()])
    await waitFor(async () => (await mapCard(cell(p, "Search", "First release"), "Search by order number").count()) === 1, {
      describe: `${p.e2e.label}: the card in Search · First release`,
    });
  for (const p of [o, ...watchers()])
    await waitFor(async () => /^8 /.test(await text(p.getByTestId("map-slice-points").first())), { describe: `${p.e2e.label}: 8 points in the slice` });
  await shoot(o, "map-owner");
  await shoot(s.mem, "map-member");
});

step("the owner sorts the MoSCoW board by pointer and keyboard; the watchers' boards follow", async () => {
  const o = s.own;
  for (const p of [o, ...watchers()]) {
    await open(p, "priorities");
    await waitFor(async () => (await col(p, "none").getByTestId("moscow-card").count()) === 2, { describe: `${p.e2e.label}: 2 unsorted cards` });
  }
  for (const p of watchers()) assert.equal(await p.getByTestId("apply-order").count(), 0, `${p.e2e.label}: no Apply`);
  const from = moscowCard(o, "none", "Guest checkout");
  const to = col(o, "must").locator("ul");
  await from.scrollIntoViewIfNeeded();
  const fb = await from.boundingBox();
  const tb = await to.boundingBox();
  await drag(o, from, tb.x + tb.width / 2 - (fb.width / 2 - 20), tb.y + tb.height / 2 - (fb.height / 2 - 12));
  for (const p of [o, ...watchers()]) await moscowCard(p, "must", "Guest checkout").waitFor({ timeout: 10000 });
  const menu = moscowCard(o, "none", "Search by order number").getByRole("combobox", { name: /Move “Search by order number” to/ });
  await menu.focus();
  await menu.selectOption("should");
  for (const p of [o, ...watchers()]) {
    await moscowCard(p, "should", "Search by order number").waitFor();
    assert.equal(await col(p, "none").getByTestId("moscow-card").count(), 0, `${p.e2e.label}: nothing unsorted`);
  }
});

step("the owner gives a story a value; it appears on the watchers' scatter plots", async () => {
  const o = s.own;
  for (const p of [o, ...watchers()])
    await waitFor(async () => (await p.getByTestId("plot-point").count()) === 4, { describe: `${p.e2e.label}: 4 points (a value and a numeric estimate)` });
  await open(o, "refine");
  await selectItem(o, "Export invoices as PDF");
  await detail(o).getByRole("button", { name: "Edit", exact: true }).click();
  const ed = o.getByTestId("editor-priority");
  await ed.getByTestId("editor-value").fill("35");
  await ed.getByTestId("editor-value").press("Tab");
  for (const p of watchers())
    await waitFor(async () => (await p.getByTestId("plot-point").count()) === 5, { describe: `${p.e2e.label}: a fifth point` });
  await o.getByRole("button", { name: "Cancel" }).click();
  await open(o, "priorities");
  // The plot by keyboard: the first point's title in the tip.
  await o.locator('[data-testid="plot-point"][tabindex="0"]').focus();
  await o.getByTestId("plot-tip").waitFor();
  assert.ok((await text(o.getByTestId("plot-tip"))).length > 0, "the tip names the focused story");
  await shoot(o, "priorities-owner");
});

step("the owner applies the proposed order; the watchers' backlogs take it", async () => {
  const o = s.own;
  const want = await o.locator('[data-testid="proposal-row"]').evaluateAll((els) => els.map((e) => e.dataset.id));
  assert.notEqual(await text(o.getByTestId("proposal-moves")), "0 stories move");
  await o.getByTestId("apply-order").click();
  for (const p of [o, ...watchers()])
    await waitFor(async () => (await text(p.getByTestId("proposal-moves"))) === "0 stories move", { describe: `${p.e2e.label}: nothing left to move` });
  for (const p of watchers()) await open(p, "refine");
  for (const p of [...watchers(), s.fac])
    await waitFor(async () => JSON.stringify(await rowIds(p)) === JSON.stringify(want), { describe: `${p.e2e.label}: the backlog in the applied order` });
});

step("an estimate accepted in poker removes an 'unestimated' finding from the watchers' Health", async () => {
  const STORY = "Order history with filters";
  for (const p of [s.own, ...watchers()]) {
    await open(p, "health");
    await finding(p, "unestimated", STORY).waitFor();
  }
  const badge = async (p) => (await text(p.getByTestId("view-health"))).replace(/^Health\s*,?\s*(score)?\s*/, "");
  for (const p of watchers())
    assert.equal(await badge(p), await text(p.getByTestId("health-score-overall")), `${p.e2e.label}: the nav's badge is the overall score`);
  const before = await text(s.obs.getByTestId("health-score-overall"));
  await s.obs.getByRole("button", { name: `Health, score ${before}`, exact: true }).waitFor();
  await shoot(s.obs, "health-observer");
  // The facilitator estimates it; the owner votes too.
  await selectItem(s.fac, STORY);
  await waitPrimary(s.fac, /^Start estimate/);
  await primary(s.fac).click();
  await open(s.own, "refine");
  await vote(s.own, "5");
  await vote(s.fac, "5");
  await waitPrimary(s.fac, /^Reveal/);
  await primary(s.fac).click();
  await waitPrimary(s.fac, /^Accept 5/);
  await primary(s.fac).click();
  for (const p of watchers()) {
    await waitFor(async () => (await finding(p, "unestimated", STORY).count()) === 0, { describe: `${p.e2e.label}: no "unestimated" finding for the story` });
    await waitFor(async () => (await badge(p)) === (await text(p.getByTestId("health-score-overall"))), { describe: `${p.e2e.label}: the badge follows the score` });
  }
  const afterScore = await text(s.obs.getByTestId("health-score-overall"));
  assert.ok(Number(afterScore) >= Number(before), `the score did not fall (${before} -> ${afterScore})`);
});

step("axe is clean on every view for every role; screenshots of every view", async () => {
  for (const p of everyone()) {
    for (const v of VIEWS) {
      await open(p, v);
      await p.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
      await axe(p, `${p.e2e.label} on ${v}`);
    }
  }
  for (const v of VIEWS) {
    await open(s.own, v);
    await shoot(s.own, `${v}-owner`);
  }
  await open(s.mem, "refine");
  await shoot(s.mem, "refine-member");
  // At 390 px the nav still names every view and marks the current one.
  await s.obs.setViewportSize({ width: 390, height: 844 });
  await open(s.obs, "health");
  await axe(s.obs, "observer on health at 390 px");
  assert.equal(await text(s.obs.getByTestId("view-map")), "Map", "the short label on a phone");
  await s.obs.getByRole("button", { name: "Story map", exact: true }).waitFor();
  await s.obs.setViewportSize({ width: 1280, height: 800 });
  h.assertNoPageErrors();
});
