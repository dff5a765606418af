// Kano survey in the browser: the facilitator and an observer answer the survey of the story in
// view (radio groups, the keyboard for the observer), each page shows "N answered" and never the
// other's answer (frames and DOM) until the facilitator's Reveal; then both see the stacked bar,
// the category and both coefficients. axe on the survey before and after the reveal; screenshots
// at 390 and 1280 px.

import assert from "node:assert/strict";
import { AxeBuilder } from "@axe-core/playwright";
import { suite, waitFor, received, screenshot } from "./harness.mjs";
import { facilitatorAndObserver, selectItem } from "./app.mjs";

const { h, step } = suite("kano");
const ROOM = "Kano room";
const STORY = "Pay with saved card";
const s = {};

const kano = (page) => page.getByTestId("kano");
const count = (page) => page.getByTestId("kano-count");

async function waitCount(pages, text) {
  for (const p of pages)
    await waitFor(async () => (await count(p).textContent())?.trim() === text, {
      describe: `${p.e2e.label}: "${text}"`,
    });
}

async function axe(page, what) {
  const res = await new AxeBuilder({ page }).include('[data-testid="kano"]').analyze();
  for (const v of res.violations) console.log(`A11Y kano ${what}: ${v.impact} ${v.id} ${v.help}`);
  assert.deepEqual(res.violations.map((v) => `${v.impact} ${v.id}`), [], `axe on the survey (${what})`);
}

/** At `w` px wide; on a phone the Vote tab (the story in view) is shown. */
async function atWidth(page, w) {
  await page.setViewportSize({ width: w, height: w === 390 ? 844 : 800 });
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  if (w === 390) await page.getByRole("tab", { name: "Vote" }).click();
  await kano(page).scrollIntoViewIfNeeded();
}

/** Places in a frame where an answer could be: the answer fields, or counts before the reveal. */
function leaks(msg) {
  const out = [];
  const walk = (v, p) => {
    if (!v || typeof v !== "object") return;
    for (const [k, x] of Object.entries(v)) {
      if (k === "functional" || k === "dysfunctional" || k === "answers") out.push(`${p}.${k}`);
      if (k === "results" && x) out.push(`${p}.results`);
      walk(x, `${p}.${k}`);
    }
  };
  walk(msg, "msg");
  return out;
}

step("a facilitator and an observer look at the same story", async () => {
  Object.assign(s, await facilitatorAndObserver(h, ROOM, STORY));
  await selectItem(s.fac, STORY);
  await s.fac.getByRole("button", { name: /^Start estimate/ }).waitFor();
  await selectItem(s.obs, STORY);
  for (const p of [s.fac, s.obs]) await kano(p).waitFor();
  await waitCount([s.fac, s.obs], "0 answered");
  await axe(s.fac, "before answers");
});

step("both answer; each sees only the count", async () => {
  const k = kano(s.fac);
  await k.getByRole("group", { name: /is there/ }).getByRole("radio", { name: "I like it" }).check();
  await k.getByRole("group", { name: /not there/ }).getByRole("radio", { name: "I dislike it" }).check();
  await k.getByTestId("kano-submit").click();
  await waitCount([s.fac, s.obs], "1 answered");
  await waitFor(async () => (await k.getByTestId("kano-mine").textContent())?.includes("Performance"));

  // The observer answers with the keyboard alone: arrows move within a radio group.
  const o = kano(s.obs);
  await o.getByRole("radio", { name: "I like it" }).first().focus();
  await s.obs.keyboard.press("ArrowRight"); // I expect it
  await s.obs.keyboard.press("Tab");
  await s.obs.keyboard.press("ArrowRight"); // dysfunctional: I expect it
  await s.obs.keyboard.press("ArrowRight"); // I am neutral
  await s.obs.keyboard.press("ArrowRight"); // I can tolerate it
  await s.obs.keyboard.press("ArrowRight"); // I dislike it
  await s.obs.keyboard.press("Tab");
  await s.obs.keyboard.press("Enter");
  await waitCount([s.fac, s.obs], "2 answered");
  await waitFor(async () => (await o.getByTestId("kano-mine").textContent())?.includes("Must-be"));

  // Neither page received the other's answer, and neither shows it.
  for (const p of [s.fac, s.obs]) {
    for (const m of received(p)) assert.deepEqual(leaks(m), [], `${p.e2e.label} received ${JSON.stringify(m)}`);
    assert.equal(await p.getByTestId("kano-results").count(), 0);
  }
  assert.ok(!(await kano(s.obs).textContent()).includes("Performance"), "the observer sees the facilitator's category");
  assert.ok(!(await kano(s.fac).textContent()).includes("Must-be"), "the facilitator sees the observer's category");
  assert.equal(await s.obs.getByTestId("kano-reveal").count(), 0, "only the facilitator has Reveal");
  await axe(s.obs, "answered");
  for (const w of [390, 1280]) {
    await atWidth(s.obs, w);
    for (const scheme of ["light", "dark"]) {
      await s.obs.emulateMedia({ colorScheme: scheme });
      console.log(await screenshot(s.obs, "kano-answer", scheme));
    }
    await s.obs.emulateMedia({ colorScheme: "light" });
  }
});

step("the facilitator reveals: both see the bar, the category and the coefficients", async () => {
  await s.fac.getByTestId("kano-reveal").click();
  for (const p of [s.fac, s.obs]) {
    await p.getByTestId("kano-results").waitFor();
    // O (like/dislike) and M (expect/dislike): a tie goes to M; CS+ = 1/2, CS- = -2/2.
    assert.equal((await p.getByTestId("kano-category").textContent()).trim(), "Must-be (M)");
    assert.equal((await p.getByTestId("kano-cs-plus").textContent()).trim(), "0.50");
    assert.equal((await p.getByTestId("kano-cs-minus").textContent()).trim(), "−1.00");
    assert.equal(await p.locator('[data-testid="kano-results"] svg rect').count(), 2);
  }
  await axe(s.fac, "revealed");
  await atWidth(s.obs, 390);
  await axe(s.obs, "revealed at 390 px");
  for (const w of [390, 1280]) {
    await atWidth(s.fac, w);
    for (const scheme of ["light", "dark"]) {
      await s.fac.emulateMedia({ colorScheme: scheme });
      console.log(await screenshot(s.fac, "kano-results", scheme));
    }
    await s.fac.emulateMedia({ colorScheme: "light" });
  }
  h.assertNoPageErrors();
});
