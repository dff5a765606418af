// Undo and "Merge back" in the browser. The facilitator moves a story: a toast offers "Undo";
// Ctrl+Z (outside text fields) puts it back on every page. She moves it again, a member edits
// it, and her Undo is refused: the toast says, calmly, that Max changed it since. A split is
// merged back with "Merge back" on the parent (its children go on every page); after the
// member edits a child, the merge is refused with the server's sentence. The split parent's row
// shows its children's estimates against its own. axe on the toast and the merge; screenshots
// at 390 and 1280 px.

import assert from "node:assert/strict";
import { AxeBuilder } from "@axe-core/playwright";
import { suite, waitFor, sent, screenshot } from "./harness.mjs";
import {
  addStory,
  createRoom,
  detail,
  enterRoom,
  fillSplit,
  joinFromLink,
  leaveTextFields,
  moveByMenu,
  rowByTitle,
  rowTitles,
  selectItem,
} from "./app.mjs";

const { h, step } = suite("undo");
const ROOM = "Undo room";
const STORIES = ["Sign in", "Checkout", "Order history"];
const s = {};

const toast = (page) => page.getByTestId("undo-toast");
const pages = () => [s.fac, s.mem];

async function waitOrder(order) {
  for (const p of pages())
    await waitFor(async () => (await rowTitles(p)).join("|") === order.join("|"), {
      describe: async () => `${p.e2e.label}: order ${order.join(" | ")}, is ${(await rowTitles(p)).join(" | ")}`,
    });
}

/** The member renames a story in its editor; the facilitator's page shows the new title. */
async function memberRenames(title, renamed) {
  await selectItem(s.mem, title);
  await detail(s.mem).getByRole("button", { name: "Edit", exact: true }).click();
  const form = s.mem.getByRole("form", { name: "Edit story" });
  await form.getByRole("textbox", { name: "Title" }).fill(renamed);
  await form.getByRole("button", { name: "Save", exact: true }).click();
  await waitFor(async () => (await rowTitles(s.fac)).includes(renamed));
}

async function axe(page, selector, what) {
  const res = await new AxeBuilder({ page }).include(selector).analyze();
  for (const v of res.violations) console.log(`A11Y undo ${what}: ${v.impact} ${v.id} ${v.help}`);
  assert.deepEqual(res.violations.map((v) => `${v.impact} ${v.id}`), [], `axe (${what})`);
}

async function shots(page, view, { tab } = {}) {
  for (const w of [390, 1280]) {
    await page.setViewportSize({ width: w, height: w === 390 ? 844 : 800 });
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    if (w === 390 && tab) await page.getByRole("tab", { name: tab }).click();
    for (const scheme of ["light", "dark"]) {
      await page.emulateMedia({ colorScheme: scheme });
      console.log(await screenshot(page, view, scheme));
    }
    await page.emulateMedia({ colorScheme: "light" });
  }
  await page.setViewportSize({ width: 1280, height: 800 });
}

step("a facilitator and a member share a backlog", async () => {
  s.fac = await h.person("facilitator");
  s.links = await createRoom(s.fac, h.base, { room: ROOM, name: "Fay" });
  await enterRoom(s.fac, ROOM);
  s.mem = await h.person("member");
  await joinFromLink(s.mem, s.links.member, "Max", { roomName: ROOM });
  for (const t of STORIES) await addStory(s.fac, t, { pages: pages() });
  await waitOrder(STORIES);
});

step("a move offers Undo; Ctrl+Z puts it back on every page", async () => {
  await leaveTextFields(s.fac);
  await moveByMenu(s.fac, "Order history", "Move to top");
  await waitOrder(["Order history", "Sign in", "Checkout"]);
  await waitFor(async () => /Moved “Order history”/.test((await toast(s.fac).textContent()) ?? ""), { describe: "the toast names the move" });
  assert.equal(await toast(s.mem).count(), 0, "the member made no change: no toast");
  await axe(s.fac, '[data-testid="undo-toast"]', "the offer");
  await shots(s.fac, "undo-offer");
  const before = s.fac.e2e.frames.length;
  await leaveTextFields(s.fac);
  await s.fac.locator("body").press("Control+z");
  await waitOrder(STORIES);
  const undo = sent(s.fac, before).find((m) => m.t === "undo");
  assert.ok(undo && typeof undo.seq === "number", "Ctrl+Z sent undo with the move's seq");
  await waitFor(async () => /Undone: Moved “Order history”/.test((await s.fac.getByTestId("undo-message").textContent()) ?? ""));
  // Ctrl+Z while typing is the field's own undo, not ours.
  const n = s.fac.e2e.frames.length;
  const add = s.fac.getByRole("textbox", { name: "Add a story" });
  await add.fill("typing");
  await add.press("Control+z");
  await add.fill("");
  assert.equal(sent(s.fac, n).filter((m) => m.t === "undo").length, 0, "no undo while typing");
});

step("after the member edits the story, the Undo button explains the refusal", async () => {
  await leaveTextFields(s.fac);
  await moveByMenu(s.fac, "Checkout", "Move to top");
  await waitOrder(["Checkout", "Sign in", "Order history"]);
  await toast(s.fac).getByTestId("undo-button").waitFor();
  await memberRenames("Checkout", "Checkout with card");
  await toast(s.fac).getByTestId("undo-button").click();
  const msg = s.fac.getByTestId("undo-message");
  await waitFor(async () => /Not undone\. Max changed 'Checkout with card' after your move/.test((await msg.textContent()) ?? ""), {
    describe: async () => `the refusal, is "${await msg.textContent().catch(() => "")}"`,
  });
  await waitOrder(["Checkout with card", "Sign in", "Order history"]);
  await axe(s.fac, '[data-testid="undo-toast"]', "the refusal");
  await shots(s.fac, "undo-refused");
  // Refused once, never again: the toast no longer offers it.
  await toast(s.fac).getByRole("button", { name: "Close" }).click();
  assert.equal(await toast(s.fac).count(), 0);
});

step("a split merged back; then refused once a child was edited; the row's estimate sum", async () => {
  const item = "Sign in";
  await selectItem(s.fac, item);
  await detail(s.fac).getByRole("button", { name: "Split", exact: true }).click();
  let dlg = s.fac.getByRole("dialog", { name: `Split ${item}` });
  await fillSplit(dlg, [["Sign in: password", "3"], ["Sign in: magic link", "5"]], "interface");
  await dlg.getByRole("button", { name: "Split story", exact: true }).click();
  await dlg.waitFor({ state: "hidden" });
  await waitOrder(["Checkout with card", item, "Sign in: password", "Sign in: magic link", "Order history"]);
  const sum = rowByTitle(s.mem, item).getByTestId("row-split-sum");
  await waitFor(async () => /Σ 8/.test((await sum.textContent()) ?? ""), { describe: "the parent row shows Σ 8" });
  await selectItem(s.fac, item);
  await detail(s.fac).getByTestId("unsplit").click();
  await waitOrder(["Checkout with card", item, "Order history"]);
  await waitFor(async () => !/split/i.test((await rowByTitle(s.mem, item).textContent()) ?? ""), { describe: "the parent is no longer split" });

  await detail(s.fac).getByRole("button", { name: "Split", exact: true }).click();
  dlg = s.fac.getByRole("dialog", { name: `Split ${item}` });
  await fillSplit(dlg, [["Sign in: password", "3"], ["Sign in: magic link"]], "interface");
  await dlg.getByRole("button", { name: "Split story", exact: true }).click();
  await dlg.waitFor({ state: "hidden" });
  await waitOrder(["Checkout with card", item, "Sign in: password", "Sign in: magic link", "Order history"]);
  await memberRenames("Sign in: magic link", "Sign in: passkey");
  await selectItem(s.fac, item);
  await detail(s.fac).getByTestId("unsplit").click();
  const refused = detail(s.fac).getByTestId("unsplit-refused");
  await waitFor(async () => /Not merged\. Max changed 'Sign in: passkey' since the split/.test((await refused.textContent().catch(() => "")) ?? ""), {
    describe: "the merge's refusal names Max and the child",
  });
  await waitOrder(["Checkout with card", item, "Sign in: password", "Sign in: passkey", "Order history"]);
  await axe(s.fac, '[data-testid="item-detail"]', "the refused merge");
  await shots(s.fac, "unsplit-refused", { tab: "Vote" });
  h.assertNoPageErrors();
});
