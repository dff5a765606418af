// Vision, personas and outcomes in the browser: the product owner writes the vision, adds a
// persona and an outcome and links a story to them in the item editor; the facilitator, on the
// Product view, sees each change arrive, and the outcome's story and points (the estimate the
// facilitator then accepts in poker moves them live); a story link brings it back into Refine.
// axe on the Product view; screenshots at 390 and 1280 px (light and dark).

import assert from "node:assert/strict";
import { AxeBuilder } from "@axe-core/playwright";
import { suite, waitFor, screenshot } from "./harness.mjs";
import {
  addStory,
  createRoom,
  detail,
  enterRoom,
  joinFromLink,
  primary,
  selectItem,
  vote,
  waitPrimary,
} from "./app.mjs";

const { h, step } = suite("product");
const ROOM = "Product room";
const STORY = "Pay with saved card";
const OTHER = "Dark mode";
const s = {};

const view = (page, id) => page.getByTestId(`view-${id}`);
const product = (page) => page.getByTestId("product");
const text = async (loc) => ((await loc.textContent()) || "").replace(/\s+/g, " ").trim();

async function waitText(pages, loc, re, what) {
  for (const p of pages) {
    let last = "";
    await waitFor(
      async () => {
        last = await text(loc(p)).catch(() => "(none)");
        return re.test(last);
      },
      { describe: `${p.e2e.label}: ${what} reads ${re}` },
    ).catch((e) => {
      throw new Error(`${e.message}\n  it reads: ${last}`);
    });
  }
}

async function axe(page, what) {
  const res = await new AxeBuilder({ page }).include('[data-testid="product"]').analyze();
  for (const v of res.violations) console.log(`A11Y product ${what}: ${v.impact} ${v.id} ${v.help}`);
  assert.deepEqual(res.violations.map((v) => `${v.impact} ${v.id}`), [], `axe on the Product view (${what})`);
}

async function shots(page, name) {
  for (const w of [390, 1280]) {
    await page.setViewportSize({ width: w, height: w === 390 ? 844 : 900 });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      console.log(await screenshot(page, name, scheme));
    }
    await page.emulateMedia({ colorScheme: "light" });
  }
  await page.setViewportSize({ width: 1280, height: 900 });
}

step("an owner and a facilitator in a room with two stories", async () => {
  s.fac = await h.person("facilitator");
  s.links = await createRoom(s.fac, h.base, { room: ROOM, name: "Fay" });
  await enterRoom(s.fac, ROOM);
  s.own = await h.person("owner");
  await joinFromLink(s.own, s.links.owner, "Olu", { roomName: ROOM });
  await addStory(s.fac, STORY, { pages: [s.fac, s.own] });
  await addStory(s.fac, OTHER, { pages: [s.fac, s.own] });
  for (const p of [s.fac, s.own]) {
    await view(p, "product").click();
    await product(p).waitFor();
  }
  await product(s.fac).getByText("No vision yet").waitFor();
  assert.equal(await s.fac.getByTestId("vision-edit").count(), 0, "only the owner writes the vision");
  await axe(s.fac, "empty");
});

step("the owner writes the vision; the facilitator reads it as one statement", async () => {
  await s.own.getByTestId("vision-edit").click();
  const fields = {
    target: "remote Scrum teams",
    need: "need to refine their backlog together",
    product: "Refine",
    product_category: "live refinement board",
    benefit: "gets the top of the backlog ready in one meeting",
    alternatives: "spreadsheets and planning-poker sites",
    differentiator: "keeps the product owner's craft in one place",
  };
  for (const [k, v] of Object.entries(fields)) await s.own.getByTestId(`vision-${k}`).fill(v);
  await s.own.getByTestId("vision-save").click();
  await waitText(
    [s.own, s.fac],
    (p) => p.getByTestId("vision-statement"),
    /^For remote Scrum teams who need to refine their backlog together, Refine is a live refinement board that gets the top of the backlog ready in one meeting\. Unlike spreadsheets and planning-poker sites, our product keeps the product owner's craft in one place\.$/,
    "vision-statement",
  );
});

step("the owner adds a persona and an outcome; the facilitator sees both arrive", async () => {
  await s.own.getByTestId("persona-add").click();
  await s.own.getByTestId("persona-name").fill("Returning shopper");
  await s.own.getByTestId("persona-description").fill("Buys every week, on the phone, in a hurry.");
  await s.own.getByTestId("persona-goals").fill("Pay in seconds\nFind last week's basket");
  await s.own.getByTestId("persona-save").click();
  await waitText([s.own, s.fac], (p) => p.getByTestId("persona-card").first(), /^Returning shopper Buys every week.*Pay in seconds.*No stories yet/, "persona-card");

  await s.own.getByTestId("outcome-add").click();
  await s.own.getByTestId("outcome-name").fill("Fewer abandoned carts");
  await s.own.getByTestId("outcome-metric").fill("checkout abandonment rate");
  await s.own.getByTestId("outcome-current").fill("34");
  await s.own.getByTestId("outcome-target").fill("20");
  await s.own.getByTestId("outcome-unit").fill("%");
  await s.own.getByTestId("outcome-save").click();
  await waitText([s.own, s.fac], (p) => p.getByTestId("outcome-range").first(), /34 % → 20 %/, "outcome-range");
  await waitText([s.fac], (p) => p.getByTestId("outcome-points").first(), /^No stories serve it yet\.$/, "outcome-points");
});

step("the owner links a story in the item editor; the outcome shows it on both pages", async () => {
  await view(s.own, "refine").click();
  await selectItem(s.own, STORY);
  await detail(s.own).getByRole("button", { name: "Edit", exact: true }).click();
  const ed = s.own.getByTestId("editor-product");
  await ed.getByTestId("editor-persona").selectOption({ label: "Returning shopper" });
  await waitFor(async () => (await ed.textContent()).includes("Persona set to Returning shopper."));
  await ed.getByRole("checkbox", { name: "Fewer abandoned carts" }).check();
  await waitFor(async () => (await ed.textContent()).includes("Serves “Fewer abandoned carts”."));
  await ed.scrollIntoViewIfNeeded();
  console.log(await screenshot(s.own, "product-item-editor", "light"));
  await s.own.getByRole("button", { name: "Cancel", exact: true }).click();
  await waitText([s.own], (p) => detail(p).getByTestId("item-product"), /Persona Returning shopper Serves Fewer abandoned carts/, "item-product");
  await waitText([s.fac], (p) => p.getByTestId("outcome-points").first(), /^0 points in 1 story \(1 not estimated\)$/, "outcome-points");
  assert.deepEqual(await s.fac.getByTestId("outcome-item").allTextContents(), [STORY]);
  await waitText([s.fac], (p) => p.getByTestId("persona-card").first(), / 1 story Edit Remove$/, "persona-card");
});

step("an estimate accepted in poker moves the outcome's points live; a story link opens it", async () => {
  await view(s.fac, "refine").click();
  await selectItem(s.fac, STORY);
  await waitPrimary(s.fac, /^Start estimate/);
  await primary(s.fac).click();
  await vote(s.fac, "5");
  await waitPrimary(s.fac, /^Reveal/);
  await primary(s.fac).click();
  await waitPrimary(s.fac, /^Accept 5$/);
  await primary(s.fac).click();
  await view(s.own, "product").click();
  await waitText([s.own], (p) => p.getByTestId("outcome-points").first(), /^5 points in 1 story$/, "outcome-points");
  await view(s.fac, "product").click();
  await waitText([s.fac], (p) => p.getByTestId("outcome-points").first(), /^5 points in 1 story$/, "outcome-points");
  await axe(s.fac, "filled");
  await axe(s.own, "filled, owner");
  await shots(s.fac, "product");
  await s.own.getByTestId("vision-edit").click();
  await shots(s.own, "product-edit-vision");
  await s.own.getByRole("button", { name: "Cancel", exact: true }).first().click();

  await s.fac.getByTestId("outcome-item").first().click();
  await waitText([s.fac], (p) => detail(p).locator("#detail-title"), new RegExp(`^${STORY}$`), "detail-title");
  await s.fac.getByTestId("workspace-product").waitFor({ state: "detached" });
  await waitText([s.fac], (p) => detail(p).getByTestId("item-product"), /^Persona Returning shopper Serves Fewer abandoned carts$/, "item-product");
});

step("the owner removes the persona a story refers to: asked first, then gone everywhere", async () => {
  await s.own.getByTestId("persona-card-remove").click();
  await waitText([s.own], (p) => p.getByTestId("persona-card"), /1 story refers to Returning shopper\. Remove it from them too\?/, "persona-card");
  await s.own.getByTestId("persona-card-remove-confirm").click();
  await s.own.getByTestId("persona-card").waitFor({ state: "detached" });
  await waitText([s.own], (p) => p.getByTestId("product-personas"), /No personas yet/, "product-personas");
  await waitText([s.fac], (p) => detail(p).getByTestId("item-product"), /^Serves Fewer abandoned carts$/, "item-product");
  h.assertNoPageErrors();
});
