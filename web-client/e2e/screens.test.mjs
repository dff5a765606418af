// Screenshots of the main views at 1280x800 and 390x844, light and dark, saved as
// <view>-<width>-<light|dark>.png in the artifacts folder (REFINE_E2E_ARTIFACTS).

import { after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import { suite, screenshot } from "./harness.mjs";
import {
  addStory,
  createRoom,
  detail,
  enterRoom,
  fillSplit,
  joinFromLink,
  primary,
  selectItem,
  vote,
  waitPrimary,
  waitProgress,
} from "./app.mjs";

const { h, step } = suite("screens");
const s = {};
const VARIANTS = [
  { width: 1280, height: 800, scheme: "light" },
  { width: 1280, height: 800, scheme: "dark" },
  { width: 390, height: 844, scheme: "light" },
  { width: 390, height: 844, scheme: "dark" },
];
const files = [];

after(async () => {
  console.log(`screenshots:\n${files.map((f) => `  ${f}`).join("\n")}`);
});

/** Shoots the page in every variant; `phoneTab` is the tab to show below 700 px. */
async function shoot(page, view, { phoneTab } = {}) {
  for (const v of VARIANTS) {
    await page.setViewportSize({ width: v.width, height: v.height });
    await page.emulateMedia({ colorScheme: v.scheme, reducedMotion: "reduce" });
    if (phoneTab && v.width < 700) {
      const tab = page.getByRole("tab", { name: new RegExp(`^${phoneTab}\\b`) });
      const there = await tab.waitFor({ timeout: 5000 }).then(() => true, () => false);
      if (there) await tab.click();
      else console.log(`note: no tab "${phoneTab}" at ${v.width} px on ${view}`);
    }
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    const f = await screenshot(page, view, v.scheme);
    assert.ok(fs.statSync(f).size > 1000, `${f} is an image`);
    files.push(f);
  }
  await page.setViewportSize({ width: 1280, height: 800 });
  await page.emulateMedia({ colorScheme: "light" });
}

step("home", async () => {
  const p = await h.person("home");
  await p.goto(`${h.base}/`);
  await p.getByRole("form", { name: "Create a room" }).waitFor();
  await shoot(p, "home");
});

step("invite panel", async () => {
  s.fac = await h.person("facilitator");
  s.links = await createRoom(s.fac, h.base, { room: "Sprint 14 refinement", name: "Fay Facilitator", deckName: "fibonacci" });
  await shoot(s.fac, "invite");
  await enterRoom(s.fac, "Sprint 14 refinement");
});

step("join", async () => {
  s.mem = await h.person("member");
  await s.mem.goto(s.links.member);
  await s.mem.getByRole("textbox", { name: "Your name", exact: true }).waitFor();
  await shoot(s.mem, "join");
});

step("room: backlog and a focused story", async () => {
  await joinFromLink(s.mem, s.links.member, "Mia Member", {});
  s.own = await h.person("owner");
  await joinFromLink(s.own, s.links.owner, "Owen Owner", {});
  s.obs = await h.person("observer");
  await joinFromLink(s.obs, s.links.observer, "Olga Observer", {});
  const titles = [
    "Checkout with a saved card",
    "Guest checkout without an account",
    "Order history with filters",
    "Password reset by email",
    "Export invoices as PDF",
    "Search by order number",
  ];
  for (const t of titles) await addStory(s.fac, t, { pages: [s.fac] });
  await selectItem(s.fac, titles[0]);
  await detail(s.fac).getByRole("button", { name: "Edit", exact: true }).click();
  const tb = (name) => s.fac.getByRole("textbox", { name, exact: true });
  await tb("As a").fill("returning buyer");
  await tb("I want").fill("to pay with the card I saved last time");
  await tb("So that").fill("I check out in seconds");
  await tb("Acceptance criteria").fill("Given a saved card, when I pay, then no card form is shown\nThe last four digits are shown\nI can choose another card");
  await tb("Labels").fill("checkout, payments");
  await s.fac.getByRole("button", { name: "Save", exact: true }).click();
  await detail(s.fac).getByRole("button", { name: "Focus for everyone", exact: true }).click();
  await s.mem.locator('[data-testid="item-row"][data-focused="true"]').waitFor();
  await shoot(s.fac, "room", { phoneTab: "Backlog" });
});

step("voting", async () => {
  await waitPrimary(s.fac, /^Start estimate/);
  await primary(s.fac).click();
  await waitProgress([s.fac, s.mem, s.own], "0 of 3 voted");
  await vote(s.mem, "5");
  await vote(s.own, "8");
  await waitProgress([s.fac, s.mem], "2 of 3 voted");
  await shoot(s.mem, "voting", { phoneTab: "Vote" });
  await shoot(s.fac, "voting-facilitator", { phoneTab: "Vote" });
});

step("reveal", async () => {
  await vote(s.fac, "13");
  await waitPrimary(s.fac, /^Reveal/);
  await primary(s.fac).click();
  await s.fac.getByTestId("reveal-results").waitFor();
  await s.mem.getByTestId("reveal-results").waitFor();
  await shoot(s.fac, "reveal", { phoneTab: "Vote" });
});

step("split dialog: a pattern with its hint, the parts against the story's estimate", async () => {
  await s.fac.getByRole("button", { name: "Split", exact: true }).first().click();
  const dlg = s.fac.getByRole("dialog", { name: /^Split / });
  await dlg.waitFor();
  await fillSplit(dlg, [["Pay with a saved card", "5"], ["Manage saved cards", "5"]], "workflow");
  await shoot(s.fac, "split-dialog");
  const next = dlg.getByRole("checkbox", { name: "Then estimate the first part now" });
  if (await next.isVisible()) await next.uncheck();
  await dlg.getByRole("button", { name: "Split story", exact: true }).click();
  await dlg.waitFor({ state: "hidden" });
});

step("split parent: its children and their estimates against its own", async () => {
  await selectItem(s.fac, "Checkout with a saved card");
  await s.fac.getByTestId("split-sum").waitFor();
  await shoot(s.fac, "split-parent", { phoneTab: "Backlog" });
});
