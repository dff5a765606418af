// Hostile text: a room name, participant names, titles, the user story, acceptance criteria,
// labels and notes holding HTML and script render as those characters on every page; nothing
// runs, no element is injected, no dialog opens.

import assert from "node:assert/strict";
import { suite, waitFor } from "./harness.mjs";
import {
  addStory,
  createRoom,
  detail,
  enterRoom,
  joinFromLink,
  moveByMenu,
  readPeople,
  rowTitles,
  selectItem,
  waitForSameOrder,
} from "./app.mjs";

const IMG = "<img src=x onerror=window.__xss=1>";
const SCRIPT = "<script>window.__xss=1</script>";
const SVG = '"><svg onload=window.__xss=1>';
const ALL = [IMG, SCRIPT, SVG];
const ROOM = `Refinement ${SVG}`;

const { h, step } = suite("hostile");
const s = {};


const everyone = () => [s.fac, s.own, s.mem];

/** Nothing ran and nothing was injected on the page. */
async function assertInert(p) {
  const r = await p.evaluate(() => ({
    xss: typeof window.__xss,
    injected: [...document.querySelectorAll('body script, img[src="x"], svg[onload], [onerror], [onload]')].map((e) => e.outerHTML.slice(0, 120)),
  }));
  assert.equal(r.xss, "undefined", `${p.e2e.label}: window.__xss was set`);
  assert.deepEqual(r.injected, [], `${p.e2e.label}: elements were injected from user text`);
  assert.deepEqual(p.e2e.dialogs, [], `${p.e2e.label}: a dialog opened`);
  const csp = p.e2e.consoleErrors.filter((m) => /Content Security Policy/i.test(m));
  assert.deepEqual(csp, [], `${p.e2e.label}: the CSP had to block something injected`);
}

step("the page is served with a Content-Security-Policy that allows only its own scripts", async () => {
  const r = await fetch(`${h.base}/`);
  const csp = r.headers.get("content-security-policy") || "";
  console.log(`CSP: ${csp}`);
  const script = (csp.match(/(?:^|;)\s*script-src ([^;]*)/) || csp.match(/(?:^|;)\s*default-src ([^;]*)/) || [])[1] || "";
  assert.match(script, /'self'/, "script-src allows 'self'");
  assert.doesNotMatch(script, /unsafe-inline|unsafe-eval|\*/, "script-src allows no inline script, eval or wildcard");
  assert.equal(r.headers.get("x-content-type-options"), "nosniff");
}, { blocking: false });

step("a room with a hostile name; people with hostile names join", async () => {
  s.fac = await h.person("facilitator");
  s.links = await createRoom(s.fac, h.base, { room: ROOM, name: `Fay ${IMG}` });
  await enterRoom(s.fac, ROOM);
  s.own = await h.person("owner");
  s.mem = await h.person("member");
  await joinFromLink(s.own, s.links.owner, SVG, { roomName: ROOM });
  await joinFromLink(s.mem, s.links.member, SCRIPT, { roomName: ROOM });
  for (const p of everyone()) {
    const h1 = await p.getByRole("heading", { level: 1 }).first().textContent();
    assert.equal(h1.trim(), ROOM, `${p.e2e.label}: the room name is shown as text`);
    await waitFor(
      async () => {
        const text = (await readPeople(p)).map((x) => x.text).join("\n");
        return text.includes(`Fay ${IMG}`) && text.includes(SVG) && text.includes(SCRIPT);
      },
      { describe: async () => `${p.e2e.label}: People shows the three names as text: ${JSON.stringify(await readPeople(p))}` },
    );
    await assertInert(p);
  }
});

step("hostile titles are shown as those characters on every page", async () => {
  await addStory(s.fac, IMG, { pages: everyone() });
  await addStory(s.own, SCRIPT, { pages: everyone() });
  await addStory(s.mem, SVG, { pages: everyone() });
  for (const p of everyone()) {
    assert.deepEqual(await rowTitles(p), ALL, `${p.e2e.label}: the titles, character for character`);
    await assertInert(p);
  }
  // A move of a hostile item is announced (live region) as text too.
  await moveByMenu(s.own, SVG, "Move to top");
  for (const p of everyone()) {
    await waitFor(async () => JSON.stringify(await rowTitles(p)) === JSON.stringify([SVG, IMG, SCRIPT]), {
      describe: async () => `${p.e2e.label}: the moved hostile row on top: ${JSON.stringify(await rowTitles(p))}`,
    });
  }
  await waitForSameOrder(everyone());
  for (const p of everyone()) await assertInert(p);
});

step("story, notes, acceptance criteria and labels with markup render as text", async () => {
  await selectItem(s.mem, IMG);
  await detail(s.mem).getByRole("button", { name: "Edit", exact: true }).click();
  const tb = (name) => s.mem.getByRole("textbox", { name, exact: true });
  await tb("As a").fill(IMG);
  await tb("I want").fill(SCRIPT);
  await tb("So that").fill(SVG);
  await tb("Notes").fill(`Notes: ${IMG}\n${SCRIPT}\n${SVG}`);
  await tb("Acceptance criteria").fill(ALL.join("\n"));
  await tb("Labels").fill(`${IMG}, ${SVG}`);
  await s.mem.getByRole("button", { name: "Save", exact: true }).click();
  for (const p of everyone()) {
    if (p !== s.mem) await selectItem(p, IMG);
    const d = detail(p);
    await waitFor(
      async () => {
        const text = (await d.textContent()) || "";
        return ALL.every((x) => text.includes(x)) && text.includes(`Notes: ${IMG}`);
      },
      { describe: async () => `${p.e2e.label}: item-detail shows the story, notes, criteria and labels as text: ${(await d.textContent())?.slice(0, 600)}` },
    );
    // Each criterion is one element whose text is exactly the payload.
    for (const x of ALL) {
      assert.ok((await d.getByText(x, { exact: true }).count()) >= 1, `${p.e2e.label}: an element reads exactly ${x}`);
    }
    await assertInert(p);
  }
});

step("after a reload everything is still inert", async () => {
  for (const p of everyone()) {
    await p.reload();
    await waitFor(async () => (await rowTitles(p)).length === 3, { describe: `${p.e2e.label}: the three rows after reload` });
    assert.deepEqual(await rowTitles(p), [SVG, IMG, SCRIPT]);
    await assertInert(p);
  }
});
