// Accessibility: axe (through @axe-core/playwright) on the home, invite, join, room and reveal
// views, light and dark, at 1280 and 390 px: no serious or critical violation (every violation is
// printed, minor ones too). Then a poker round driven by the keyboard alone.

import { after } from "node:test";
import assert from "node:assert/strict";
import { AxeBuilder } from "@axe-core/playwright";
import { suite, waitFor } from "./harness.mjs";
import {
  addStory,
  card,
  createRoom,
  enterRoom,
  fillSplit,
  joinFromLink,
  primary,
  readRows,
  selectItem,
  tabTo,
  vote,
  waitEstimate,
  waitPrimary,
  waitProgress,
} from "./app.mjs";

const { h, step } = suite("a11y");
const ROOM = "Accessible refinement";
const s = {};
const VARIANTS = [
  { width: 1280, height: 800, scheme: "light" },
  { width: 1280, height: 800, scheme: "dark" },
  { width: 390, height: 844, scheme: "light" },
  { width: 390, height: 844, scheme: "dark" },
];
const found = []; // every violation, for the summary
const serious = []; // the serious and critical ones: the last step fails on them

after(async () => {
  console.log(`axe: ${found.length} violations in all, ${serious.length} serious or critical`);
});

/** Runs axe on the page in each variant; prints every violation; returns the serious ones. */
async function audit(page, view) {
  const bad = [];
  for (const v of VARIANTS) {
    await page.setViewportSize({ width: v.width, height: v.height });
    await page.emulateMedia({ colorScheme: v.scheme, reducedMotion: "reduce" });
    // Let the layout settle after the switch (a condition, not a sleep: two animation frames).
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const res = await new AxeBuilder({ page }).analyze();
    for (const x of res.violations) {
      const targets = x.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(" ; ");
      const line = `A11Y view=${view} width=${v.width} scheme=${v.scheme} impact=${x.impact} id=${x.id} nodes=${x.nodes.length} help="${x.help}" at: ${targets}`;
      console.log(line);
      found.push({ view, ...v, impact: x.impact, id: x.id });
      if (x.impact === "serious" || x.impact === "critical") bad.push(line), serious.push(line);
    }
    if (!res.violations.length) console.log(`A11Y view=${view} width=${v.width} scheme=${v.scheme} no violations`);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.emulateMedia({ colorScheme: "light" });
  return bad;
}

step("home", async () => {
  const p = await h.person("home");
  await p.goto(`${h.base}/`);
  await p.getByRole("form", { name: "Create a room" }).waitFor();
  await audit(p, "home");
});

step("invite links (after creating a room)", async () => {
  s.fac = await h.person("facilitator");
  s.links = await createRoom(s.fac, h.base, { room: ROOM, name: "Fay" });
  await audit(s.fac, "invite");
  await enterRoom(s.fac, ROOM);
});

step("join", async () => {
  s.mem = await h.person("member");
  await s.mem.goto(s.links.member);
  await s.mem.getByRole("textbox", { name: "Your name", exact: true }).waitFor();
  await audit(s.mem, "join");
});

step("room (backlog, a selected story, people)", async () => {
  await joinFromLink(s.mem, s.links.member, "Mia", { roomName: ROOM });
  s.own = await h.person("owner");
  await joinFromLink(s.own, s.links.owner, "Owen", { roomName: ROOM });
  for (const t of ["Search by order number", "Saved addresses", "Gift cards"]) await addStory(s.fac, t, { pages: [s.fac, s.mem, s.own] });
  await selectItem(s.fac, "Saved addresses");
  await audit(s.fac, "room");
  await audit(s.mem, "room-member");
});

step("voting and reveal", async () => {
  await waitPrimary(s.fac, /^Start estimate/);
  await primary(s.fac).click();
  await waitProgress([s.fac, s.mem, s.own], "0 of 3 voted");
  await vote(s.mem, "5");
  await audit(s.mem, "voting");
  await vote(s.own, "8");
  await waitPrimary(s.fac, /^Reveal/);
  await primary(s.fac).click();
  await s.fac.getByTestId("reveal-results").waitFor();
  await audit(s.fac, "reveal");
  await waitPrimary(s.fac, /^Accept/);
  await primary(s.fac).click();
  await waitEstimate([s.fac], "Saved addresses", "8");
});

step("a poker round by keyboard alone (Tab, Enter, Space, card keys)", async () => {
  const keys = { fac: 0, mem: 0, own: 0 };
  const tabs = [];
  const tabbed = (what, n) => (tabs.push(`${what}: ${n} Tab`), n);
  // Where the keyboard focus is after the primary action changed its label.
  const focusAfter = async (label) => {
    const at = await s.fac.evaluate(() => {
      const a = document.activeElement;
      return !a || a === document.body ? "body" : `${a.tagName.toLowerCase()}[data-testid=${a.getAttribute("data-testid")}] "${(a.textContent || "").trim().slice(0, 30)}"`;
    });
    s.focusLog.push(`${label} -> ${at}`);
  };
  s.focusLog = [];
  const press = async (who, p, k) => {
    keys[who]++;
    await p.keyboard.press(k);
  };
  // Start from a fresh load so no earlier mouse focus helps.
  for (const p of [s.fac, s.mem, s.own]) {
    await p.reload();
    await p.getByTestId("connection-status").waitFor();
    await waitFor(async () => (await readRows(p)).length === 3, { describe: `${p.e2e.label}: rows after reload` });
  }
  const item = "Gift cards";
  // Facilitator: Tab to the story's title, Enter selects it.
  keys.fac += tabbed("to the story", await tabTo(s.fac, (i) => i.titleOf === item, { describe: `the title of "${item}"` }));
  await press("fac", s.fac, "Enter");
  await waitFor(async () => (await readRows(s.fac)).find((r) => r.title === item)?.current, {
    describe: `facilitator: Enter on the title of "${item}" selects it (aria-current)`,
  });
  keys.fac += tabbed("to Start estimate", await tabTo(s.fac, (i) => i.testid === "primary-action" && /^Start estimate/.test(i.name), { describe: "primary-action Start estimate" }));
  await press("fac", s.fac, "Enter");
  await waitProgress([s.fac, s.mem, s.own], "0 of 3 voted");
  await waitPrimary(s.fac, /^Reveal/);
  await focusAfter("Start estimate");
  // Members: leave any text field with Tab, then type the card.
  for (const [who, p, c] of [["mem", s.mem, "3"], ["own", s.own, "3"]]) {
    keys[who] += await tabTo(p, (i) => !["input", "textarea", "select"].includes(i.tag), { describe: "an element that is not a text field" });
    for (const ch of c) await press(who, p, ch);
    await waitFor(async () => (await card(p, c).getAttribute("aria-pressed")) === "true", {
      describe: `${p.e2e.label}: key "${c}" picks the card (aria-pressed)`,
    });
  }
  await waitProgress([s.fac], "2 of 3 voted");
  keys.fac += tabbed("to Reveal", await tabTo(s.fac, (i) => i.testid === "primary-action" && /^Reveal/.test(i.name), { describe: "primary-action Reveal" }));
  await press("fac", s.fac, "Enter");
  await s.fac.getByTestId("reveal-results").waitFor();
  await waitPrimary(s.fac, /^Accept/);
  await focusAfter("Reveal");
  keys.fac += tabbed("to Accept", await tabTo(s.fac, (i) => i.testid === "primary-action" && /^Accept 3/.test(i.name), { describe: "primary-action Accept 3" }));
  await press("fac", s.fac, "Space");
  await waitEstimate([s.fac, s.mem, s.own], item, "3");
  console.log(`PERF keyboard_round_keys facilitator=${keys.fac} member=${keys.mem} owner=${keys.own} (facilitator ${tabs.join(", ")})`);
});

step("the primary action keeps the keyboard focus when its label changes (Start -> Reveal -> Accept)", async () => {
  console.log(`focus after the primary action: ${s.focusLog.join("; ")}`);
  for (const line of s.focusLog) assert.match(line, /data-testid=primary-action/, `focus lost: ${line}`);
}, { blocking: false });

step("the split dialog: pattern list with its hint, parts against the story's estimate", async () => {
  const item = "Gift cards";
  await selectItem(s.fac, item);
  await s.fac.getByRole("button", { name: "Split", exact: true }).first().click();
  const dlg = s.fac.getByRole("dialog", { name: `Split ${item}` });
  await dlg.waitFor();
  await fillSplit(dlg, [["Gift cards: buy", "2"], ["Gift cards: redeem", "3"]], "operations");
  await audit(s.fac, "split-dialog");
  await dlg.getByRole("button", { name: "Cancel", exact: true }).click();
  await dlg.waitFor({ state: "hidden" });
});

step("no serious or critical axe violation in any view", async () => {
  assert.deepEqual(serious, [], `serious or critical axe violations:\n${serious.join("\n")}`);
});
