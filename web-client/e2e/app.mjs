// The app's hooks (e2e/SELECTORS.md) and the user flows built on them. Only the roles, names and
// data-testids of SELECTORS.md are used here; a flow that breaks says which hook it missed.

import assert from "node:assert/strict";
import { waitFor, TIMEOUT, ROLES, joinedPid, rowIds, waitForSameOrder } from "./harness.mjs";

export { rowIds, waitForSameOrder };

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
export const exact = (s) => new RegExp(`^\\s*${esc(s)}\\s*$`);

// ---------------------------------------------------------------------------------------------
// Reading the page

/** Rows of the backlog in DOM order: [{id, title, estimate, focused, current, split, text}]. */
export function readRows(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="item-row"]')].map((r) => ({
      id: r.getAttribute("data-item-id"),
      title: r.querySelector('[data-testid="item-title"]')?.textContent.trim() ?? null,
      estimate: r.querySelector('[data-testid="item-estimate"]')?.textContent.trim() ?? null,
      focused: r.getAttribute("data-focused") === "true",
      current: r.getAttribute("aria-current") === "true",
      text: r.textContent.replace(/\s+/g, " ").trim(),
    })),
  );
}

export async function rowTitles(page) {
  return (await readRows(page)).map((r) => r.title);
}

/** People: [{pid, online, voted, text}]. */
export function readPeople(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="participant"]')].map((p) => ({
      pid: p.getAttribute("data-pid"),
      online: p.getAttribute("data-online"),
      voted: p.getAttribute("data-voted"),
      text: p.textContent.replace(/\s+/g, " ").trim(),
    })),
  );
}

export function status(page) {
  return page.evaluate(() => {
    const el = document.querySelector('[data-testid="connection-status"]');
    return el ? { state: el.getAttribute("data-state"), text: el.textContent.trim() } : null;
  });
}

// ---------------------------------------------------------------------------------------------
// Locators

export const rowByTitle = (page, title) =>
  page.locator('[data-testid="item-row"]', { has: page.locator('[data-testid="item-title"]', { hasText: exact(title) }) });
export const rowById = (page, id) => page.locator(`[data-testid="item-row"][data-item-id="${id}"]`);
export const primary = (page) => page.getByTestId("primary-action");
export const deck = (page) => page.getByRole("group", { name: "Your card" });
export const card = (page, c) => deck(page).getByRole("button", { name: c, exact: true });
export const progress = (page) => page.getByTestId("vote-progress");
export const poker = (page) => page.getByRole("region", { name: "Planning poker" });
export const detail = (page) => page.getByTestId("item-detail");
export const addField = (page) => page.getByRole("textbox", { name: "Add a story" });

// ---------------------------------------------------------------------------------------------
// Flows

/** Creates a room from the home page; returns the four invite links (the page stays on them). */
export async function createRoom(page, base, { room, name, deckName = "fibonacci" }) {
  await page.goto(`${base}/`);
  await page.getByRole("heading", { level: 1, name: "Refine" }).waitFor();
  const form = page.getByRole("form", { name: "Create a room" });
  await form.getByRole("textbox", { name: "Room name" }).fill(room);
  await form.getByRole("textbox", { name: "Your name" }).fill(name);
  await form.getByRole("combobox", { name: "Deck" }).selectOption(deckName);
  await form.getByRole("button", { name: "Create room" }).click();
  await page.getByRole("region", { name: "Invite links" }).waitFor();
  const links = {};
  for (const r of ROLES) {
    links[r] = await page.getByTestId(`invite-${r}`).inputValue();
    assert.match(links[r], /#room=[^&]+&token=[^&]+(&role=[a-z]+)?(&name=[^&]*)?$/, `invite-${r} is a /#room=...&token=...[&role=...&name=...] link`);
    const hint = new URLSearchParams(new URL(links[r]).hash.slice(1));
    assert.ok(!hint.has("role") || hint.get("role") === r, `invite-${r}: its role hint is "${r}"`);
    assert.ok(!new URL(links[r]).search.includes("token"), `invite-${r}: no token in the query string`);
  }
  return links;
}

/** The creator enters the room as facilitator. */
export async function enterRoom(page, roomName) {
  await page.getByRole("button", { name: "Enter the room" }).click();
  await waitConnected(page);
  if (roomName) await page.getByRole("heading", { level: 1, name: roomName, exact: true }).waitFor();
}

export async function waitConnected(page, { timeout = TIMEOUT } = {}) {
  await waitFor(
    async () => {
      const s = await status(page);
      return s && s.state === "connected" && /^Connected/.test(s.text);
    },
    { timeout, describe: `${page.e2e.label}: connection-status data-state=connected, text "Connected…"` },
  );
}

/**
 * A facilitator "Fay" creates `room` and enters it, an observer "Oli" joins from the link, and
 * the facilitator adds `story`, seen by both. Returns { fac, obs, links }.
 */
export async function facilitatorAndObserver(h, room, story) {
  const fac = await h.person("facilitator");
  const links = await createRoom(fac, h.base, { room, name: "Fay" });
  await enterRoom(fac, room);
  const obs = await h.person("observer");
  await joinFromLink(obs, links.observer, "Oli", { roomName: room });
  await addStory(fac, story, { pages: [fac, obs] });
  return { fac, obs, links };
}

/** Opens an invite link and joins: one field, one Enter. Returns the participant id. */
export async function joinFromLink(page, link, name, { roomName } = {}) {
  await page.goto(link);
  await page.getByRole("heading", { level: 1, name: /Join/ }).waitFor();
  const field = page.getByRole("textbox", { name: "Your name", exact: true });
  if (name !== null) await field.fill(name);
  await field.press("Enter");
  await waitConnected(page);
  if (roomName) await page.getByRole("heading", { level: 1, name: roomName, exact: true }).waitFor();
  return waitFor(() => joinedPid(page), { describe: `${page.e2e.label}: a join ok with pid` });
}

/** Adds a story with "Add a story" + Enter; checks the field keeps focus and is emptied. */
export async function addStory(page, title, { pages = [page] } = {}) {
  const field = addField(page);
  await field.fill(title);
  await field.press("Enter");
  for (const p of pages) {
    await waitFor(async () => (await rowTitles(p)).includes(title), { describe: `${p.e2e.label}: a row titled "${title}"` });
  }
  await waitFor(() => field.evaluate((el) => el === document.activeElement && el.value === ""), {
    describe: `"Add a story" focused and empty after Enter`,
  });
}

export async function selectItem(page, title) {
  await rowByTitle(page, title).getByTestId("item-title").click();
  await waitFor(async () => (await readRows(page)).find((r) => r.title === title)?.current, {
    describe: `${page.e2e.label}: the row "${title}" has aria-current="true" after clicking its title`,
  });
}

export async function moveByMenu(page, title, which) {
  await rowByTitle(page, title).getByRole("button", { name: `Move ${title}`, exact: true }).click();
  await page.getByRole("menuitem", { name: which, exact: true }).click();
}

/** Keyboard reorder: Space lifts, arrows move, Space drops. */
export async function moveByKeyboard(page, title, arrows) {
  const handle = page.getByRole("button", { name: `Reorder ${title}`, exact: true });
  await handle.focus();
  await page.keyboard.press("Space");
  for (const k of arrows) await page.keyboard.press(k);
  await page.keyboard.press("Space");
}

/** Pointer drag of a row by its handle until it sits where `targetTitle` is. */
export async function dragByPointer(page, title, targetTitle, { steps = 20 } = {}) {
  const handle = page.getByRole("button", { name: `Reorder ${title}`, exact: true });
  const target = rowByTitle(page, targetTitle);
  await handle.scrollIntoViewIfNeeded();
  const hb = await handle.boundingBox();
  const rb = await rowByTitle(page, title).boundingBox();
  const tb = await target.boundingBox();
  assert.ok(hb && tb && rb, "handle and target rows are visible");
  const sx = hb.x + hb.width / 2;
  const sy = hb.y + hb.height / 2;
  // Where the dragged row's centre should go: a quarter into the target row, on the side we come from.
  const offset = sy - (rb.y + rb.height / 2);
  const goingUp = tb.y < rb.y;
  const ty = (goingUp ? tb.y + tb.height * 0.25 : tb.y + tb.height * 0.75) + offset;
  await page.mouse.move(sx, sy);
  await page.mouse.down();
  await page.mouse.move(sx, sy + (goingUp ? -6 : 6), { steps: 3 });
  await page.mouse.move(sx, ty, { steps });
  await page.mouse.move(sx, ty + (goingUp ? -1 : 1), { steps: 2 });
  await page.mouse.up();
}

/** Picks a card: by click, or by keyboard with focus moved out of any text field. */
export async function vote(page, c, { by = "click" } = {}) {
  if (by === "click") {
    await card(page, c).click();
  } else {
    await leaveTextFields(page);
    for (const ch of c) await page.keyboard.press(ch);
  }
  await waitFor(async () => (await card(page, c).getAttribute("aria-pressed")) === "true", {
    describe: `${page.e2e.label}: card "${c}" aria-pressed="true" after voting by ${by}`,
  });
}

export async function primaryLabel(page) {
  return ((await primary(page).textContent()) || "").replace(/\s+/g, " ").trim();
}

export async function waitPrimary(page, re) {
  return waitFor(
    async () => {
      const l = await primaryLabel(page);
      return re.test(l) && (await primary(page).isEnabled()) && l;
    },
    { describe: `${page.e2e.label}: primary-action reads ${re} (and is enabled)` },
  );
}

export async function waitProgress(pages, text) {
  for (const p of pages) {
    await waitFor(async () => ((await progress(p).textContent()) || "").replace(/\s+/g, " ").includes(text), {
      describe: `${p.e2e.label}: vote-progress reads "${text}"`,
    });
  }
}

export async function readProgress(page) {
  return ((await progress(page).textContent().catch(() => "")) || "").replace(/\s+/g, " ").trim();
}

/** The estimate pill of a row on every page. */
export async function waitEstimate(pages, title, estimate) {
  for (const p of pages) {
    await waitFor(async () => (await readRows(p)).find((r) => r.title === title)?.estimate === estimate, {
      describe: `${p.e2e.label}: item-estimate "${estimate}" on the row "${title}"`,
    });
  }
}

/** Moves focus out of text fields without a mouse (Escape, then blur as a last resort). */
export async function leaveTextFields(page) {
  await page.evaluate(() => {
    const a = document.activeElement;
    if (a && a.matches("input, textarea, select, [contenteditable]")) a.blur();
  });
}

/** Keyboard only: presses Tab until `pred(activeElementInfo)` holds; returns the presses. */
export async function tabTo(page, pred, { max = 120, describe = "an element", shift = false } = {}) {
  for (let i = 0; i < max; i++) {
    const info = await page.evaluate(() => {
      const a = document.activeElement;
      if (!a || a === document.body) return null;
      return {
        tag: a.tagName.toLowerCase(),
        testid: a.getAttribute("data-testid"),
        name: (a.getAttribute("aria-label") || a.textContent || "").replace(/\s+/g, " ").trim(),
        role: a.getAttribute("role"),
        rowTitle: a.closest('[data-testid="item-row"]')?.querySelector('[data-testid="item-title"]')?.textContent.trim() ?? null,
        titleOf: (() => {
          const t = a.closest('[data-testid="item-title"]') || a.querySelector('[data-testid="item-title"]');
          return t ? t.textContent.trim() : null;
        })(),
        inDeck: a.closest('[role="group"]')?.getAttribute("aria-label") === "Your card",
        pressed: a.getAttribute("aria-pressed"),
      };
    });
    if (info && pred(info)) return i;
    await page.keyboard.press(shift ? "Shift+Tab" : "Tab");
  }
  throw new Error(`${page.e2e.label}: ${describe} never got the keyboard focus within ${max} Tab presses`);
}

/** Fills the split dialog `dlg`: parts [[title, estimate?], ...] (two fields to start) and the
 * pattern id. */
export async function fillSplit(dlg, parts, pattern) {
  for (const [i, [title, estimate]] of parts.entries()) {
    await dlg.getByRole("textbox", { name: `Child ${i + 1} title`, exact: true }).fill(title);
    if (estimate) await dlg.getByRole("textbox", { name: `Child ${i + 1} estimate`, exact: true }).fill(estimate);
  }
  await dlg.getByRole("combobox", { name: "Pattern" }).selectOption(pattern);
}

// ---------------------------------------------------------------------------------------------
// Story map

/** Clicks an add button, types the new node's name into its focused name field, Enter. */
export async function addMapNode(page, button, name) {
  await button.click();
  await waitFor(() => page.evaluate(() => document.activeElement?.classList.contains("name") && document.activeElement.value !== ""), {
    describe: `${page.e2e.label}: the new node's name field has the focus`,
  });
  await page.keyboard.type(name);
  await page.keyboard.press("Enter");
}

/** Waits until every page shows the story map nodes `testid` named `names`, in order. */
export async function waitMapNames(pages, testid, names) {
  for (const p of pages)
    await waitFor(
      async () =>
        JSON.stringify(
          await p.evaluate(
            (id) => [...document.querySelectorAll(`[data-testid="${id}"]`)].map((el) => (el.querySelector("input.name")?.value ?? el.querySelector(".name")?.textContent ?? "").trim()).filter(Boolean),
            testid,
          ),
        ) === JSON.stringify(names),
      { describe: `${p.e2e.label}: ${testid} ${names.join(", ")}` },
    );
}
