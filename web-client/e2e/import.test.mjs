// Import in the browser: the facilitator picks a Jira CSV in Export > Import…, sees the server's
// preview (stories, children, warnings, first rows), imports it in one click, and a member sees
// the stories arrive (one backlog.imported frame). A member's menu has no Import. axe on the
// dialog; screenshots at 390 and 1280 px (light and dark).

import assert from "node:assert/strict";
import { AxeBuilder } from "@axe-core/playwright";
import { suite, waitFor, received, screenshot } from "./harness.mjs";
import { createRoom, enterRoom, joinFromLink, rowTitles } from "./app.mjs";

const { h, step } = suite("import");
const ROOM = "Import room";
const CSV = [
  "\uFEFFIssue Id,Parent,Summary,Issue Type,Status,Priority,Story Points,Labels,Sprint",
  '1,,"Checkout, one page",Epic,To Do,Highest,,web,S1',
  "2,1,Pay with a saved card,Story,In Progress,High,5,web pay,S1",
  '3,,"Receipt by mail\nwith the order",Story,To Do,Medium,3,,S2',
  "",
].join("\r\n");
const s = {};

const dialog = (page) => page.getByTestId("import-dialog");

async function axe(page, what) {
  const res = await new AxeBuilder({ page }).include("dialog").analyze();
  for (const v of res.violations) console.log(`A11Y import ${what}: ${v.impact} ${v.id} ${v.help}`);
  assert.deepEqual(res.violations.map((v) => `${v.impact} ${v.id}`), [], `axe on the import dialog (${what})`);
}

step("a facilitator and a member in a new room", async () => {
  s.fac = await h.person("facilitator");
  s.links = await createRoom(s.fac, h.base, { room: ROOM, name: "Fay" });
  await enterRoom(s.fac, ROOM);
  s.mem = await h.person("member");
  await joinFromLink(s.mem, s.links.member, "Max", { roomName: ROOM });
});

step("a member's Export menu has no Import", async () => {
  assert.equal(await s.mem.getByRole("button", { name: "Export" }).count(), 0, "members have no export menu");
});

step("the facilitator picks a Jira CSV and sees the preview", async () => {
  await s.fac.getByRole("button", { name: "Export" }).click();
  const menu = s.fac.getByRole("menu", { name: "Export" });
  assert.ok(await menu.getByRole("menuitem", { name: "Download Jira CSV" }).isVisible());
  await menu.getByRole("menuitem", { name: "Import…" }).click();
  await dialog(s.fac).waitFor();
  await axe(s.fac, "empty");
  await s.fac.getByTestId("import-file").setInputFiles({ name: "jira.csv", mimeType: "text/csv", buffer: Buffer.from(CSV) });
  const preview = s.fac.getByTestId("import-preview");
  await preview.waitFor();
  const text = (await preview.textContent()).replace(/\s+/g, " ");
  assert.match(text, /3 stories, 1 of them split from another\./);
  assert.match(text, /Checkout, one page/);
  assert.match(text, /1 warning/);
  await preview.getByText("1 warning").click();
  assert.match((await preview.textContent()).replace(/\s+/g, " "), /Sprint/);
  assert.equal(await s.fac.getByTestId("item-row").count(), 0, "a preview changes nothing");
  await axe(s.fac, "preview");
  for (const w of [1280, 390]) {
    await s.fac.setViewportSize({ width: w, height: w === 390 ? 844 : 800 });
    for (const scheme of ["light", "dark"]) {
      await s.fac.emulateMedia({ colorScheme: scheme });
      console.log(await screenshot(s.fac, "import-preview", scheme));
    }
    await s.fac.emulateMedia({ colorScheme: "light" });
  }
  await axe(s.fac, "preview at 390 px");
  await s.fac.setViewportSize({ width: 1280, height: 800 });
});

step("Import: the member sees the three stories arrive as one event", async () => {
  const from = s.mem.e2e.frames.length;
  await s.fac.getByTestId("import-run").click();
  await dialog(s.fac).waitFor({ state: "detached" });
  const want = ["Checkout, one page", "Pay with a saved card", "Receipt by mail with the order"];
  for (const p of [s.fac, s.mem])
    await waitFor(async () => JSON.stringify((await rowTitles(p)).map((t) => t.replace(/\s+/g, " "))) === JSON.stringify(want), {
      describe: `${p.e2e.label}: the imported stories`,
    });
  const events = received(s.mem, from).filter((m) => typeof m.seq === "number" && m.t !== "presence");
  assert.deepEqual(events.map((m) => m.t), ["backlog.imported"]);
  assert.equal(events[0].items.length, 3);
  assert.equal(events[0].items[1].parent, "i1");
  h.assertNoPageErrors();
});
