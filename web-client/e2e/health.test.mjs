// Backlog health in the browser: the facilitator edits, estimates and changes the settings; an
// observer watches the Health view and the backlog's row markers change live with every `health`
// notice. A finding's button brings its story back into view in Refine. axe on the view;
// screenshots at 390 and 1280 px (light and dark).

import assert from "node:assert/strict";
import { AxeBuilder } from "@axe-core/playwright";
import { suite, waitFor, received, screenshot } from "./harness.mjs";
import { addStory, detail, facilitatorAndObserver, primary, rowByTitle, selectItem, vote, waitPrimary } from "./app.mjs";

const { h, step } = suite("health");
const ROOM = "Health room";
const STORY = "Sign in with a passkey";
const OTHER = "Export invoices as PDF";
const s = {};

const panel = (page) => page.getByTestId("health");
const marker = (page, title) => rowByTitle(page, title).getByTestId("item-health");
const groupRules = async (page) => panel(page).getByTestId("health-group").evaluateAll((els) => els.map((e) => e.dataset.rule));

async function waitRules(page, expected) {
  await waitFor(async () => JSON.stringify(await groupRules(page)) === JSON.stringify(expected), {
    describe: `${page.e2e.label}: health groups ${JSON.stringify(expected)}`,
  });
}

async function axe(page, what) {
  const res = await new AxeBuilder({ page }).include('[data-testid="health"]').analyze();
  for (const v of res.violations) console.log(`A11Y health ${what}: ${v.impact} ${v.id} ${v.help}`);
  assert.deepEqual(res.violations.map((v) => `${v.impact} ${v.id}`), [], `axe on the health view (${what})`);
}

async function shoot(page, view) {
  for (const w of [390, 1280]) {
    await page.setViewportSize({ width: w, height: w === 390 ? 844 : 800 });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      console.log(await screenshot(page, view, scheme));
    }
    await page.emulateMedia({ colorScheme: "light" });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

step("a facilitator adds stories; the observer's backlog marks their findings", async () => {
  Object.assign(s, await facilitatorAndObserver(h, ROOM, STORY));
  await addStory(s.fac, OTHER, { pages: [s.fac, s.obs] });
  // Both in the top (40 points; unestimated counts as the size limit, 13): both marked.
  for (const t of [STORY, OTHER]) {
    await marker(s.obs, t).waitFor();
    assert.equal(await marker(s.obs, t).getAttribute("data-rules"), "unestimated no_acceptance no_benefit draft");
    const label = await marker(s.obs, t).getAttribute("title");
    assert.equal(label, "Health: Not estimated, No acceptance criteria, No benefit, Still a draft");
    assert.equal((await marker(s.obs, t).locator(".sr-only").textContent()).trim(), label, "the marker's text for screen readers");
  }
});

step("the observer opens the Health view: scores and findings grouped by rule", async () => {
  await s.obs.getByTestId("view-health").click();
  await panel(s.obs).waitFor();
  await waitRules(s.obs, ["unestimated", "no_acceptance", "no_benefit", "draft"]);
  assert.equal((await panel(s.obs).getByTestId("health-score-estimated").textContent()).trim(), "0");
  assert.equal((await panel(s.obs).getByTestId("health-score-detailed").textContent()).trim(), "0");
  const findings = panel(s.obs).locator('[data-testid="health-finding"][data-rule="unestimated"]');
  assert.deepEqual(await findings.allTextContents(), [STORY, OTHER]);
  await axe(s.obs, "with findings");
  await shoot(s.obs, "health-findings");
});

step("the facilitator details the story: its findings leave the observer's panel live", async () => {
  const before = received(s.obs).length;
  await selectItem(s.fac, STORY);
  await detail(s.fac).getByRole("button", { name: "Edit", exact: true }).click();
  const tb = (name) => s.fac.getByRole("textbox", { name, exact: true });
  await tb("So that").fill("I sign in without a password");
  await tb("Acceptance criteria").fill("Given a passkey, when I sign in, then no password is asked");
  await s.fac.getByRole("combobox", { name: "Status" }).selectOption("ready");
  await s.fac.getByRole("button", { name: "Save", exact: true }).click();
  await waitFor(async () => (await marker(s.fac, STORY).getAttribute("data-rules")) === "unestimated", {
    describe: "the facilitator's row marker names only unestimated",
  });
  const story = (rule) => panel(s.obs).locator(`[data-testid="health-finding"][data-rule="${rule}"]`, { hasText: STORY });
  await waitFor(async () => (await story("no_acceptance").count()) === 0 && (await story("draft").count()) === 0, {
    describe: "observer: the story left no_acceptance and draft",
  });
  assert.equal(await story("unestimated").count(), 1);
  assert.ok(received(s.obs, before).some((m) => m.t === "health"), "a health notice reached the observer");
});

step("an estimate accepted in planning poker removes `unestimated`", async () => {
  await waitPrimary(s.fac, /^Start estimate/);
  await primary(s.fac).click();
  await vote(s.fac, "5");
  await waitPrimary(s.fac, /^Reveal/);
  await primary(s.fac).click();
  await waitPrimary(s.fac, /^Accept 5/);
  await primary(s.fac).click();
  const story = panel(s.obs).locator('[data-testid="health-finding"]', { hasText: STORY });
  await waitFor(async () => (await story.count()) === 0, { describe: "observer: the story has no finding left" });
  // The facilitator's page gets the same notice, maybe a moment after the observer's.
  await waitFor(async () => (await marker(s.fac, STORY).count()) === 0, { describe: "facilitator: no marker on a story without findings" });
});

step("a smaller size limit in Settings re-evaluates: `too_large` appears", async () => {
  await s.fac.getByRole("button", { name: "Settings", exact: true }).click();
  const dlg = s.fac.getByRole("dialog");
  await dlg.getByTestId("settings-size-limit").fill("3");
  await dlg.getByRole("button", { name: "Save", exact: true }).click();
  await dlg.waitFor({ state: "detached" });
  await waitFor(async () => (await groupRules(s.obs)).includes("too_large"), { describe: "observer: a too_large group" });
  assert.deepEqual(await panel(s.obs).locator('[data-testid="health-finding"][data-rule="too_large"]').allTextContents(), [STORY]);
  assert.match(await panel(s.obs).getByTestId("health-settings").textContent(), /size limit 3/);
  await axe(s.obs, "after the settings");
});

step("a finding brings its story into view in Refine", async () => {
  await panel(s.obs).locator('[data-testid="health-finding"][data-rule="too_large"]').click();
  await s.obs.getByTestId("workspace-health").waitFor({ state: "detached" });
  await waitFor(async () => (await rowByTitle(s.obs, STORY).getAttribute("aria-current")) === "true", {
    describe: "observer: the story is selected in the backlog",
  });
  await shoot(s.obs, "health-backlog");
  h.assertNoPageErrors();
});
