// A short refinement meeting, end to end: a facilitator, a product owner and a member (three
// browser contexts) and an observer, against a real server and database.

import assert from "node:assert/strict";
import fs from "node:fs";
import { suite, waitFor, joinedPid, joinOks, sent, received, parseInvite } from "./harness.mjs";
import {
  addStory,
  card,
  createRoom,
  detail,
  dragByPointer,
  enterRoom,
  joinFromLink,
  moveByKeyboard,
  moveByMenu,
  poker,
  primary,
  readPeople,
  readRows,
  rowByTitle,
  rowTitles,
  selectItem,
  vote,
  waitConnected,
  waitEstimate,
  waitForSameOrder,
  waitPrimary,
  waitProgress,
} from "./app.mjs";

const { h, step } = suite("meeting");
const ROOM = "Sprint 14 refinement";
const s = {}; // shared between steps


const everyone = () => [s.fac, s.own, s.mem, s.obs];

async function titlesOnEveryPage(expected, pages = everyone()) {
  let last = [];
  await waitFor(
    async () => {
      last = await Promise.all(pages.map((p) => rowTitles(p)));
      return last.every((t) => JSON.stringify(t) === JSON.stringify(expected));
    },
    {
      describe: () =>
        `every page in the order ${expected.join(" | ")}:\n` +
        pages.map((p, i) => `    ${p.e2e.label}: ${(last[i] || []).join(" | ")}`).join("\n"),
    },
  );
  return waitForSameOrder(pages);
}

step("the facilitator creates the room from the home page and enters it", async () => {
  s.fac = await h.person("facilitator");
  s.links = await createRoom(s.fac, h.base, { room: ROOM, name: "Fay", deckName: "fibonacci" });
  s.room = parseInvite(s.links.member).room;
  assert.ok(s.room, "the invite link names the room");
  await enterRoom(s.fac, ROOM);
  s.facPid = joinedPid(s.fac);
  assert.ok(s.facPid, "the facilitator joined (a join ok with pid)");
  const u = new URL(s.fac.url());
  assert.ok(!s.fac.url().includes("token"), `no token in the address bar: ${s.fac.url()}`);
  assert.equal(u.hash, `#room=${s.room}`);
});

step("owner, member and observer join from their invite links (one field, Enter)", async () => {
  s.own = await h.person("owner");
  s.mem = await h.person("member");
  s.obs = await h.person("observer");
  s.ownPid = await joinFromLink(s.own, s.links.owner, "Owen", { roomName: ROOM });
  s.memPid = await joinFromLink(s.mem, s.links.member, "Mia", { roomName: ROOM });
  s.obsPid = await joinFromLink(s.obs, s.links.observer, "Obi", { roomName: ROOM });
  for (const p of [s.own, s.mem, s.obs]) {
    assert.ok(!p.url().includes("token"), `${p.e2e.label}: the token left the address bar: ${p.url()}`);
    assert.equal(new URL(p.url()).hash, `#room=${s.room}`, `${p.e2e.label}: address bar is /#room=<id>`);
    // The join used the token, and only the first time.
    assert.ok(sent(p).some((m) => m.t === "join" && m.token), `${p.e2e.label}: joined with the token`);
  }
  const expectRoles = { [s.facPid]: "facilitator", [s.ownPid]: "owner", [s.memPid]: "member", [s.obsPid]: "observer" };
  for (const p of everyone()) {
    await waitFor(
      async () => {
        const people = await readPeople(p);
        return Object.entries(expectRoles).every(([pid, role]) => {
          const e = people.find((x) => x.pid === pid);
          return e && e.online === "true" && e.text.toLowerCase().includes(role);
        });
      },
      { describe: async () => `${p.e2e.label}: People lists all four online with their roles: ${JSON.stringify(await readPeople(p))}` },
    );
  }
});

step("stories are added by three people (Enter keeps the field focused)", async () => {
  s.titles = ["Login with SSO", "Checkout with saved card", "Order history", "Password reset", "Export invoices"];
  await addStory(s.fac, s.titles[0], { pages: everyone() });
  await addStory(s.fac, s.titles[1], { pages: [s.fac] });
  await addStory(s.own, s.titles[2], { pages: [s.own] });
  await addStory(s.mem, s.titles[3], { pages: [s.mem] });
  await addStory(s.mem, s.titles[4], { pages: everyone() });
  await titlesOnEveryPage(s.titles);
});

step("reorder by pointer drag and drop: every page shows the same order", async () => {
  // The owner drags "Password reset" (4th) onto the top.
  const before = sent(s.own).length;
  await dragByPointer(s.own, "Password reset", "Login with SSO");
  const want = ["Password reset", "Login with SSO", "Checkout with saved card", "Order history", "Export invoices"];
  await titlesOnEveryPage(want).catch((e) => {
    const moves = sent(s.own, before).filter((m) => m.t === "item.move");
    e.message += `\n  item.move frames sent by the owner's drag: ${JSON.stringify(moves)}`;
    throw e;
  });
  assert.ok(sent(s.own, before).some((m) => m.t === "item.move"), "the drag sent item.move");
});

step("reorder by keyboard (Space, ArrowDown, Space), announced in the live region", async () => {
  await moveByKeyboard(s.fac, "Login with SSO", ["ArrowDown"]);
  const want = ["Password reset", "Checkout with saved card", "Login with SSO", "Order history", "Export invoices"];
  await titlesOnEveryPage(want);
  await waitFor(async () => ((await s.fac.getByTestId("live-region").textContent()) || "").includes("Login with SSO"), {
    describe: `facilitator: the live-region announces the move of "Login with SSO"`,
  });
});

step("reorder by the move menu (top, down, bottom)", async () => {
  await moveByMenu(s.own, "Checkout with saved card", "Move to top");
  await titlesOnEveryPage(["Checkout with saved card", "Password reset", "Login with SSO", "Order history", "Export invoices"]);
  await moveByMenu(s.own, "Checkout with saved card", "Move down");
  await titlesOnEveryPage(["Password reset", "Checkout with saved card", "Login with SSO", "Order history", "Export invoices"]);
  await moveByMenu(s.fac, "Password reset", "Move to bottom");
  await titlesOnEveryPage(["Checkout with saved card", "Login with SSO", "Order history", "Export invoices", "Password reset"]);
});

step("the move menu of the last row is usable (Move to top)", async () => {
  await moveByMenu(s.own, "Password reset", "Move to top");
  await titlesOnEveryPage(["Password reset", "Checkout with saved card", "Login with SSO", "Order history", "Export invoices"]);
}, { blocking: false });

step("presence: who is editing an item is shown to the others (hint), and cleared", async () => {
  const item = "Export invoices";
  await selectItem(s.mem, item);
  await detail(s.mem).getByRole("button", { name: "Edit", exact: true }).click();
  for (const p of [s.fac, s.own, s.obs]) {
    await waitFor(async () => ((await rowByTitle(p, item).getByTestId("item-hint").textContent().catch(() => "")) || "").includes("Mia"), {
      describe: `${p.e2e.label}: item-hint on "${item}" names Mia while she edits it`,
    });
  }
  assert.ok(received(s.fac).some((m) => m.t === "hint" && m.pid === s.memPid && m.what === "editing"), "a hint notice reached the facilitator");
  await s.mem.getByRole("button", { name: "Cancel", exact: true }).click();
  for (const p of [s.fac, s.own, s.obs]) {
    await waitFor(async () => (await rowByTitle(p, item).getByTestId("item-hint").count()) === 0, {
      describe: `${p.e2e.label}: the hint on "${item}" is gone after Mia cancels`,
    });
  }
}, { blocking: false });

step("remove a story after a confirmation", async () => {
  const item = "Password reset";
  await selectItem(s.own, item);
  await detail(s.own).getByRole("button", { name: "Remove", exact: true }).click();
  const dlg = s.own.getByRole("dialog");
  await dlg.getByRole("button", { name: "Remove story", exact: true }).click();
  for (const p of everyone()) {
    await waitFor(async () => !(await rowTitles(p)).includes(item), { describe: `${p.e2e.label}: "${item}" removed` });
  }
  await waitForSameOrder(everyone());
}, { blocking: false });

async function checkReveal(cards, median) {
  for (const p of everyone()) {
    const res = p.getByTestId("reveal-results");
    await res.waitFor({ state: "visible" });
    const chart = res.getByTestId("distribution-chart");
    await chart.waitFor({ state: "visible" });
    const bars = await chart.locator('[data-testid="bar"]').evaluateAll((els) => els.map((e) => e.getAttribute("data-card")));
    assert.deepEqual([...bars].sort(), [...new Set(cards)].sort(), `${p.e2e.label}: one bar per card voted`);
    for (const id of ["stat-median", "stat-mean", "stat-spread", "stat-consensus"]) {
      await res.getByTestId(id).waitFor({ state: "visible" });
    }
    const med = (await res.getByTestId("stat-median").textContent()) || "";
    assert.ok(med.includes(median), `${p.e2e.label}: stat-median "${med}" shows ${median}`);
  }
}

step("a poker round: start, votes (key and click), N of M voted, reveal, re-vote, accept", async () => {
  const item = "Checkout with saved card";
  await selectItem(s.fac, item);
  await waitPrimary(s.fac, /^Start estimate/);
  await primary(s.fac).click();
  await waitProgress(everyone(), "0 of 3 voted");
  await vote(s.mem, "8", { by: "key" });
  await vote(s.own, "5", { by: "click" });
  await waitProgress(everyone(), "2 of 3 voted");
  for (const p of everyone()) {
    await waitFor(
      async () => {
        const people = await readPeople(p);
        const v = (pid) => people.find((x) => x.pid === pid)?.voted;
        return v(s.ownPid) === "true" && v(s.memPid) === "true" && v(s.facPid) === "false";
      },
      { describe: async () => `${p.e2e.label}: data-voted true for owner and member, false for the facilitator: ${JSON.stringify(await readPeople(p))}` },
    );
  }
  // The observer cannot vote.
  assert.equal(await card(s.obs, "5").count(), 0, "the observer has no deck");
  await waitPrimary(s.fac, /^Reveal/);
  await primary(s.fac).click();
  await checkReveal(["5", "8"], "6.5");
  // "explain your card": the highest and the lowest voters are named.
  const res = await s.fac.getByTestId("reveal-results").textContent();
  assert.match(res, /explain your card/i, "reveal names the highest and lowest voters (explain your card)");
  assert.ok(res.includes("Owen") && res.includes("Mia"), `the reveal names Owen and Mia: ${res}`);
  await waitPrimary(s.fac, /^Accept 8$/);

  // Re-vote: a new round on the same item.
  await s.fac.getByRole("button", { name: "Re-vote", exact: true }).click();
  await waitProgress(everyone(), "0 of 3 voted");
  for (const p of everyone()) {
    await waitFor(async () => !(await p.getByTestId("reveal-results").isVisible()), {
      describe: `${p.e2e.label}: the re-vote hides the previous reveal`,
    });
  }
  await vote(s.own, "8");
  await vote(s.mem, "8", { by: "key" });
  await waitProgress(everyone(), "2 of 3 voted");
  await primary(s.fac).click(); // Reveal
  await checkReveal(["8"], "8");
  await waitPrimary(s.fac, /^Accept 8$/);
  await primary(s.fac).click();
  await waitEstimate(everyone(), item, "8");
  const history = s.fac.getByTestId("round-history");
  await waitFor(async () => (await history.getByRole("listitem").count()) >= 2, {
    describe: "facilitator: round-history lists both rounds of the item",
  });
});

step("a round takes the facilitator at most 4 actions (select, start, reveal, accept)", async () => {
  const item = "Login with SSO";
  const actions = [];
  const act = async (what, fn) => {
    actions.push(what);
    await fn();
  };
  await act("select the story", () => selectItem(s.fac, item));
  await waitPrimary(s.fac, /^Start estimate/);
  await act("Start estimate", () => primary(s.fac).click());
  await waitProgress(everyone(), "0 of 3 voted");
  await vote(s.own, "3");
  await vote(s.mem, "3", { by: "key" });
  await waitProgress([s.fac], "2 of 3 voted");
  await waitPrimary(s.fac, /^Reveal/);
  await act("Reveal", () => primary(s.fac).click());
  const label = await waitPrimary(s.fac, /^Accept 3$/);
  await act(label, () => primary(s.fac).click());
  await waitEstimate(everyone(), item, "3");
  console.log(`PERF facilitator_actions_per_round=${actions.length} (${actions.join(", ")})`);
  assert.ok(actions.length <= 4, `a round took the facilitator ${actions.length} actions`);
});

step("split from the poker panel during a round: two children, the round's item becomes the first child", async () => {
  const item = "Order history";
  const kids = ["Order history: list of orders", "Order history: filter by date"];
  await selectItem(s.fac, item);
  await waitPrimary(s.fac, /^Start estimate/);
  await primary(s.fac).click();
  await waitProgress(everyone(), "0 of 3 voted");
  const before = sent(s.fac).length;
  await poker(s.fac).getByRole("button", { name: "Split", exact: true }).click();
  const dlg = s.fac.getByRole("dialog", { name: `Split ${item}` });
  await dlg.waitFor();
  await dlg.getByRole("textbox", { name: "Child 1 title", exact: true }).fill(kids[0]);
  await dlg.getByRole("textbox", { name: "Child 2 title", exact: true }).fill(kids[1]);
  // The pattern list: the protocol's ids, a one-line hint for the chosen one.
  const pattern = dlg.getByRole("combobox", { name: "Pattern" });
  await pattern.selectOption("data");
  assert.match(await dlg.getByTestId("split-pattern-hint").textContent(), /kind of data/);
  await dlg.getByRole("button", { name: "Split story", exact: true }).click();
  await dlg.waitFor({ state: "hidden" });
  const split = sent(s.fac, before).find((m) => m.t === "item.split");
  assert.ok(split, "the dialog sent item.split");
  assert.deepEqual(split.children.map((c) => c.title), kids);
  assert.equal(split.pattern, "data", "the chosen pattern's id is sent");
  for (const p of everyone()) {
    await waitFor(
      async () => {
        const t = await rowTitles(p);
        const i = t.indexOf(item);
        return i >= 0 && t[i + 1] === kids[0] && t[i + 2] === kids[1];
      },
      { describe: async () => `${p.e2e.label}: the children right below the parent: ${(await rowTitles(p)).join(" | ")}` },
    );
    const parent = (await readRows(p)).find((r) => r.title === item);
    assert.match(parent.text, /split/i, `${p.e2e.label}: the parent row is marked Split`);
  }
  // The round's item becomes the first child: focus and a voting round on it, on every page.
  const kid = (await readRows(s.fac)).find((r) => r.title === kids[0]);
  for (const p of everyone()) {
    await waitFor(async () => (await readRows(p)).find((r) => r.focused)?.id === kid.id, {
      describe: async () => `${p.e2e.label}: the focused row is the first child (focused: ${(await readRows(p)).find((r) => r.focused)?.title})`,
    });
    await waitFor(
      () => received(p).some((m) => m.t === "round.started" && m.item === kid.id),
      { describe: `${p.e2e.label}: a round started on the first child` },
    );
  }
  await waitProgress(everyone(), "0 of 3 voted");
  await s.fac.getByRole("button", { name: "Cancel round", exact: true }).click();
  // The split parent's detail shows the children's estimates against its own.
  await selectItem(s.fac, item);
  await waitFor(async () => /No child estimated yet/.test((await s.fac.getByTestId("split-sum").textContent({ timeout: 2000 }).catch(() => "")) ?? ""), {
    describe: "the split parent's detail: the children's estimate sum (none yet)",
  });
  s.allTitles = await rowTitles(s.fac);
});

async function download(page, label) {
  await page.getByRole("button", { name: "Export", exact: true }).click();
  const target = page
    .getByRole("menuitem", { name: label, exact: true })
    .or(page.getByRole("button", { name: label, exact: true }))
    .or(page.getByRole("link", { name: label, exact: true }));
  const [dl] = await Promise.all([page.waitForEvent("download"), target.first().click()]);
  const file = await dl.path();
  return { name: dl.suggestedFilename(), text: fs.readFileSync(file, "utf8") };
}

step("export downloads JSON and CSV with every story", async () => {
  const json = await download(s.fac, "Download JSON");
  let data;
  assert.doesNotThrow(() => (data = JSON.parse(json.text)), `the JSON download parses (${json.name})`);
  assert.equal(data.format, 1, "format: 1");
  const exported = data.items.map((i) => i.title);
  for (const t of s.allTitles) assert.ok(exported.includes(t), `JSON export holds "${t}"`);
  assert.ok(data.rounds.length >= 4, `JSON export holds the rounds (${data.rounds.length})`);
  await s.fac.keyboard.press("Escape");
  const csv = await download(s.fac, "Download CSV");
  const lines = csv.text.split(/\r?\n/).filter(Boolean);
  assert.match(lines[0], /^id,rank,parent,title,/, `CSV header: ${lines[0]}`);
  for (const t of s.allTitles) assert.ok(csv.text.includes(t), `CSV export holds "${t}"`);
  assert.equal(lines.length - 1, s.allTitles.length, "one CSV row per item");
  console.log(`downloads: ${json.name} (${json.text.length} B), ${csv.name} (${csv.text.length} B)`);
  await s.fac.keyboard.press("Escape");
});

step("a new observer link (token rotation): the old link is refused with a readable alert, the new one joins", async () => {
  await s.fac.getByRole("button", { name: "Invite", exact: true }).click();
  const dlg = s.fac.getByRole("dialog");
  await dlg.waitFor();
  const oldLink = s.links.observer;
  await dlg.getByRole("button", { name: "New link for observer", exact: true }).click();
  const newLink = await waitFor(async () => {
    const v = await dlg.getByTestId("invite-observer").inputValue();
    return v && v !== oldLink && v.includes(`#room=${s.room}&token=`) && v;
  }, { describe: "the Invite dialog shows a new observer link" });
  await s.fac.keyboard.press("Escape");
  const late = await h.person("late-observer");
  await late.goto(oldLink);
  const field = late.getByRole("textbox", { name: "Your name", exact: true });
  await field.fill("Lou");
  await field.press("Enter");
  const alert = late.getByRole("alert");
  await alert.waitFor();
  const text = ((await alert.textContent()) || "").trim();
  console.log(`refused join alert: ${text}`);
  assert.ok(text.length > 10 && /[a-z]/.test(text), `a readable sentence: "${text}"`);
  const refused = received(late).find((m) => m.t === "err");
  assert.ok(refused && refused.code === "auth_failed", "the server refused the old token");
  assert.ok(text.includes(refused.msg), `the alert carries the server's sentence "${refused.msg}"`);
  await joinFromLink(late, newLink, "Lou", { roomName: ROOM });
  await late.close();
}, { blocking: false });

step("a second tab of the member is the same participant and counts once", async () => {
  const countBefore = (await readPeople(s.fac)).length;
  s.mem2 = await h.page(s.mem.context(), "member-tab2");
  await s.mem2.goto(`${h.base}/#room=${s.room}`);
  await waitConnected(s.mem2);
  const pid2 = await waitFor(() => joinedPid(s.mem2));
  assert.equal(pid2, s.memPid, "the second tab rejoined as the same participant");
  assert.ok(sent(s.mem2).some((m) => m.t === "join" && m.pid === s.memPid && !m.token), "the second tab joined with pid + secret");
  for (const p of [s.fac, s.obs, s.mem2]) {
    await waitFor(async () => {
      const people = await readPeople(p);
      return people.length === countBefore && people.filter((x) => x.pid === s.memPid).length === 1;
    }, { describe: async () => `${p.e2e.label}: Mia listed once, ${countBefore} people: ${JSON.stringify(await readPeople(p))}` });
  }
  await waitForSameOrder([...everyone(), s.mem2]);
});

step("a reload rejoins as the same participant; nothing is duplicated", async () => {
  const oksBefore = joinOks(s.own).length;
  const countBefore = (await readPeople(s.fac)).length;
  await s.own.reload();
  await waitConnected(s.own);
  await waitFor(() => joinOks(s.own).length > oksBefore, { describe: "owner: a new join ok after the reload" });
  assert.equal(joinedPid(s.own), s.ownPid, "same pid after the reload");
  assert.ok(!s.own.url().includes("token"), "still no token in the address bar");
  const order = await waitForSameOrder([...everyone(), s.mem2]);
  assert.equal(new Set(order).size, order.length, "no item twice");
  assert.equal(order.length, s.allTitles.length, "no item lost or added");
  for (const p of [...everyone(), s.mem2]) {
    await waitFor(async () => (await readPeople(p)).length === countBefore, {
      describe: async () => `${p.e2e.label}: still ${countBefore} people: ${JSON.stringify(await readPeople(p))}`,
    });
    const people = await readPeople(p);
    assert.equal(new Set(people.map((x) => x.pid)).size, people.length, `${p.e2e.label}: nobody listed twice`);
  }
  // The estimates survived the reload.
  const rows = await readRows(s.own);
  assert.equal(rows.find((r) => r.title === "Checkout with saved card")?.estimate, "8");
  assert.equal(rows.find((r) => r.title === "Login with SSO")?.estimate, "3");
  assert.ok(await rowByTitle(s.own, "Order history: list of orders").isVisible());
  void detail;
});
