// Secrecy in the browser: until the reveal, no page's received WebSocket frames nor its DOM hold
// another voter's card; after the reveal they do. Cards chosen to be searchable: "89" (a number
// no clock, date or count on the page is likely to show) and "coffee".

import assert from "node:assert/strict";
import { suite, waitFor, received, sent, joinedPid } from "./harness.mjs";
import {
  addStory,
  createRoom,
  deck,
  enterRoom,
  joinFromLink,
  primary,
  selectItem,
  vote,
  waitPrimary,
  waitProgress,
} from "./app.mjs";

const { h, step } = suite("secrecy");
const ROOM = "Secret ballot";
const s = {};
const CARD = { member: "89", owner: "coffee" };


/**
 * Walks a decoded message for a leak: a `card` field with a value, a `votes` map with any
 * non-nil value, or a string equal to one of `cards` anywhere but inside a `deck` list.
 */
function leaks(msg, cards, path = "") {
  const out = [];
  const walk = (v, p, key) => {
    if (key === "deck") return; // the deck lists every card by design
    if (typeof v === "string") {
      if (cards.includes(v)) out.push(`${p} = ${JSON.stringify(v)}`);
      return;
    }
    if (!v || typeof v !== "object") return;
    if (key === "card" && v !== null) out.push(`${p} (a card field)`);
    if (key === "votes" && Object.values(v).some((x) => x !== null && x !== undefined)) out.push(`${p} (a votes map with values)`);
    for (const [k, x] of Object.entries(v)) walk(x, `${p}.${k}`, k);
  };
  if (msg && typeof msg === "object" && "card" in msg && msg.card !== null && msg.card !== undefined) out.push(`${path}.card`);
  walk(msg, path, null);
  return out;
}

/** The page's DOM without the own deck (every card is on its buttons by design) holds `cards`? */
async function domHits(page, cards) {
  const d = deck(page);
  if (await d.count()) await d.evaluate((el) => el.setAttribute("data-e2e-own-deck", ""));
  return page.evaluate((cards) => {
    const clone = document.body.cloneNode(true);
    clone.querySelectorAll("[data-e2e-own-deck]").forEach((e) => e.remove());
    const html = clone.innerHTML;
    const hits = [];
    for (const c of cards) {
      const re = new RegExp(`(^|[^0-9A-Za-z_-])${c.replace(/[?]/g, "\\?")}($|[^0-9A-Za-z_-])`, "i");
      const m = html.match(re);
      if (m) hits.push(`${c}: …${html.slice(Math.max(0, m.index - 80), m.index + 80)}…`);
    }
    return hits;
  }, cards);
}

step("a room with a facilitator, an owner and a member; a round starts", async () => {
  s.fac = await h.person("facilitator");
  s.links = await createRoom(s.fac, h.base, { room: ROOM, name: "Fay", deckName: "fibonacci" });
  await enterRoom(s.fac, ROOM);
  s.own = await h.person("owner");
  s.mem = await h.person("member");
  s.ownPid = await joinFromLink(s.own, s.links.owner, "Owen", { roomName: ROOM });
  s.memPid = await joinFromLink(s.mem, s.links.member, "Mia", { roomName: ROOM });
  await addStory(s.fac, "Fraud check on checkout", { pages: [s.fac, s.own, s.mem] });
  await selectItem(s.fac, "Fraud check on checkout");
  await waitPrimary(s.fac, /^Start estimate/);
  await primary(s.fac).click();
  await waitProgress([s.fac, s.own, s.mem], "0 of 3 voted");
});

step("votes are cast: 89 by the member (keyboard), coffee by the owner (click)", async () => {
  await vote(s.mem, CARD.member, { by: "key" });
  await vote(s.own, CARD.owner, { by: "click" });
  await waitProgress([s.fac, s.own, s.mem], "2 of 3 voted");
  // An observer joins now: its snapshot carries the voting round.
  s.obs = await h.person("observer-late");
  await joinFromLink(s.obs, s.links.observer, "Obi", { roomName: ROOM });
  await waitProgress([s.obs], "2 of 3 voted");
  // The member reloads mid-round: its own vote comes back from the browser, never the server.
  await s.mem.reload();
  await waitProgress([s.mem], "2 of 3 voted");
});

step("before the reveal: no frame and no DOM holds another voter's card", async () => {
  s.pages = [
    [s.fac, [CARD.member, CARD.owner]],
    [s.obs, [CARD.member, CARD.owner]],
    [s.own, [CARD.member]],
    [s.mem, [CARD.owner]],
  ];
  for (const [p, cards] of s.pages) {
    const msgs = received(p);
    assert.ok(msgs.some((m) => m.t === "round.started" || (m.t === "snapshot" && m.round)), `${p.e2e.label}: saw the round (frames captured)`);
    const bad = msgs.flatMap((m, i) => leaks(m, cards, `frame#${i}(${m.t})`));
    assert.deepEqual(bad, [], `${p.e2e.label}: received frames leak another voter's card`);
    for (const m of msgs) {
      if (m.t === "snapshot" && m.round) assert.equal(m.round.votes ?? null, null, `${p.e2e.label}: snapshot round has no votes`);
    }
    const hits = await domHits(p, cards);
    assert.deepEqual(hits, [], `${p.e2e.label}: the DOM shows another voter's card before the reveal`);
    s[p.e2e.label + "_frames"] = p.e2e.frames.length;
  }
  // The search is meaningful: the member's own sent vote frame holds its card, and the same
  // walk finds it there.
  const ownVote = sent(s.mem).filter((m) => m.t === "vote");
  assert.ok(ownVote.length && ownVote.some((m) => leaks(m, [CARD.member]).length > 0), "the leak search finds the card in the member's own vote frame");
});

step("after the reveal: every page received the votes and shows them", async () => {
  await waitPrimary(s.fac, /^Reveal/);
  await primary(s.fac).click();
  for (const [p] of s.pages) {
    await waitFor(() => received(p).some((m) => m.t === "round.revealed"), { describe: `${p.e2e.label}: round.revealed received` });
    const ev = received(p).find((m) => m.t === "round.revealed");
    assert.equal(ev.votes[s.memPid], CARD.member, `${p.e2e.label}: the member's 89 is in the revealed votes`);
    assert.equal(ev.votes[s.ownPid], CARD.owner, `${p.e2e.label}: the owner's coffee is in the revealed votes`);
    const res = p.getByTestId("reveal-results");
    await res.waitFor({ state: "visible" });
    for (const c of [CARD.member, CARD.owner]) {
      await waitFor(async () => (await res.locator(`[data-testid="bar"][data-card="${c}"]`).count()) === 1, {
        describe: `${p.e2e.label}: a bar for card ${c}`,
      });
    }
    const hits = await domHits(p, [CARD.member, CARD.owner]);
    assert.equal(hits.length, 2, `${p.e2e.label}: the DOM now shows both cards (${hits.length} found): the DOM search is meaningful`);
  }
  void joinedPid;
});
