// Speed, measured through real pages and printed as `PERF name=value` lines (issue 9, "Speed").
// Only the JavaScript budget is asserted; the timings are figures to read, not pass/fail, since
// they depend on the machine's load.

import assert from "node:assert/strict";
import zlib from "node:zlib";
import { suite, RawClient, waitFor, percentile, parseInvite } from "./harness.mjs";
import { moveByMenu, readRows, waitConnected } from "./app.mjs";

// Seeding a 1,000-item room through one connection needs more than the default 50 messages/s.
const { h, step } = suite("perf", { serverArgs: ["--rate", "100000"] });
const s = {};
const N = 1000;
const JS_BUDGET = 100 * 1024;

const perf = (name, value, extra = "") => console.log(`PERF ${name}=${typeof value === "number" ? Math.round(value * 10) / 10 : value}${extra ? ` ${extra}` : ""}`);

// Installed in every measuring page before its scripts run.
const INIT = () => {
  const P = (window.__perf = { firstRow: null, rows1000: null, rows1000Frame: null, enter: null, longtasks: [], clicks: [], msgs: 0, lastMsgAt: 0, sends: 0 });
  // Every WebSocket of the page counts and times what it receives and sends (the frames are not
  // recorded through DevTools on these pages: that would weigh on the timings).
  const NativeWS = window.WebSocket;
  window.WebSocket = class extends NativeWS {
    constructor(...args) {
      super(...args);
      this.addEventListener("message", () => {
        P.msgs++;
        P.lastMsgAt = performance.timeOrigin + performance.now();
      });
    }
    send(data) {
      P.sends++;
      return super.send(data);
    }
  };
  addEventListener(
    "keydown",
    (e) => {
      if (e.key === "Enter" && P.enter === null) P.enter = performance.now();
    },
    true,
  );
  addEventListener(
    "click",
    (e) => {
      if (e.target instanceof Element && e.target.closest('[role="menuitem"]')) P.clicks.push(performance.timeOrigin + performance.now());
    },
    true,
  );
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) P.longtasks.push({ start: e.startTime, duration: e.duration });
    }).observe({ type: "longtask", buffered: true });
  } catch {}
  const check = () => {
    if (P.rows1000 !== null) return;
    const n = document.querySelectorAll('[data-testid="item-row"]').length;
    if (n && P.firstRow === null) P.firstRow = performance.now();
    if (n >= 1000) {
      P.rows1000 = performance.now();
      requestAnimationFrame(() => (P.rows1000Frame = performance.now()));
    }
  };
  new MutationObserver(check).observe(document, { childList: true, subtree: true });
};


step("first-load JavaScript, gzipped, within 100 KB", async () => {
  const p = await h.person("first-load");
  const scripts = [];
  p.on("response", async (r) => {
    if (r.request().resourceType() === "script") scripts.push(r);
  });
  await p.goto(`${h.base}/`, { waitUntil: "networkidle" });
  let raw = 0;
  let gz = 0;
  let transfer = 0;
  const encodings = new Set();
  for (const r of scripts) {
    encodings.add((await r.allHeaders())["content-encoding"] || "identity");
    const body = await r.body();
    raw += body.length;
    gz += zlib.gzipSync(body, { level: 9 }).length;
    const sizes = await r.request().sizes();
    transfer += sizes.responseBodySize;
  }
  perf("js_files", scripts.length);
  perf("js_raw_bytes", raw);
  perf("js_gzip_bytes", gz, "(gzip -9 of every script of the first load)");
  perf("js_transfer_bytes", transfer, `(as served, content-encoding: ${[...encodings].join(",")})`);
  assert.ok(scripts.length > 0, "the first load fetched scripts");
  assert.ok(gz <= JS_BUDGET, `first-load JS is ${gz} bytes gzipped, over the ${JS_BUDGET} budget`);
});

step(`seed a room of ${N} items over a raw WebSocket`, async () => {
  s.raw = await RawClient.open(await h.person("seeder"), h.server);
  const small = await s.raw.request({ t: "room.create", name: "Warm-up room" });
  const big = await s.raw.request({ t: "room.create", name: "Big backlog" });
  s.small = small;
  s.big = big;
  s.bigLink = (role) => `${h.base}/#room=${big.room}&token=${big.tokens[role]}`;
  // The seeder has a connection of its own joined to the big room.
  s.seed = await RawClient.open(await h.person("seeder-big"), h.server);
  await s.seed.request({ t: "join", room: big.room, token: big.tokens.facilitator, name: "Seeder" });
  // A bare protocol client watching the room: when the server's events reach a page with no app.
  s.rawWatch = await RawClient.open(await h.page(await h.context("raw-watcher"), "raw-watcher", { frames: false }), h.server);
  await s.rawWatch.request({ t: "join", room: big.room, token: big.tokens.observer, name: "Raw watcher" });
  const t0 = Date.now();
  s.ids = [];
  for (let i = 0; i < N; i += 200) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 200); j++) {
      batch.push({ t: "item.add", item: { title: `Story ${String(j + 1).padStart(4, "0")}`, persona: "shopper", goal: `do thing ${j + 1}`, benefit: "it is faster", labels: ["perf"] } });
    }
    const oks = await s.seed.requestAll(batch);
    s.ids.push(...oks.map((o) => o.item));
    s.seed.clear();
  }
  await s.rawWatch.drain();
  s.rawWatch.clear();
  perf("seed_items_ms", Date.now() - t0, `(${N} item.add through one connection)`);
  assert.equal(new Set(s.ids).size, N);
});

step(`open the invite link of a ${N}-item room (name remembered: one Enter) until the ${N}th row`, async () => {
  const ctx = await h.context("owner-viewer");
  await ctx.addInitScript(INIT);
  s.viewer = await h.page(ctx, "owner-viewer", { frames: false });
  // First visit elsewhere, so the browser remembers the name.
  await s.viewer.goto(`${h.base}/#room=${s.small.room}&token=${s.small.tokens.owner}`);
  const nameField = s.viewer.getByRole("textbox", { name: "Your name", exact: true });
  await nameField.fill("Owen");
  await nameField.press("Enter");
  await waitConnected(s.viewer);
  // Now the big room, as a new document: a link that differs only in its fragment would be a
  // same-document navigation, and the page's clock would still start at the first visit.
  await s.viewer.goto("about:blank");
  await s.viewer.goto(s.bigLink("owner"));
  await nameField.waitFor();
  assert.equal(await nameField.inputValue(), "Owen", "the name is remembered from the first join");
  await waitFor(() => nameField.evaluate((el) => el === document.activeElement), { describe: "the name field is focused" });
  await s.viewer.keyboard.press("Enter");
  await s.viewer.waitForFunction(() => window.__perf.rows1000Frame !== null, null, { timeout: 60000 });
  const m = await s.viewer.evaluate(() => window.__perf);
  perf("invite_to_first_row_ms", m.firstRow, "(navigation start to the first row in the DOM, the Enter included)");
  perf("invite_to_1000_rows_ms", m.rows1000, "(navigation start to the 1,000th row in the DOM)");
  perf("invite_to_1000_rows_painted_ms", m.rows1000Frame);
  perf("enter_to_1000_rows_ms", m.rows1000 - m.enter, "(from the Enter key)");
  const lt = m.longtasks.filter((t) => t.start >= m.enter);
  perf("load_longest_task_ms", lt.length ? Math.max(...lt.map((t) => t.duration)) : 0);
  assert.equal((await readRows(s.viewer)).length, N, `${N} rows`);
});

step("a burst of 500 remote events: longest main-thread task in the watching page", async () => {
  await s.viewer.evaluate(() => (window.__perf.longtasks = []));
  const t0 = await s.viewer.evaluate(() => performance.now());
  const msgs = [];
  let rnd = 12345;
  const rand = (n) => ((rnd = (rnd * 1103515245 + 12345) % 2147483648), rnd % n);
  for (let i = 0; i < 499; i++) {
    if (i % 2) {
      const a = s.ids[rand(N)];
      let b = s.ids[rand(N)];
      if (b === a) b = null;
      msgs.push({ t: "item.move", item: a, after: b });
    } else {
      msgs.push({ t: "item.update", item: s.ids[rand(N)], set: { title: `Burst ${i}`, notes: `changed in the burst (${i})` } });
    }
  }
  msgs.push({ t: "item.update", item: s.ids[7], set: { title: "Burst done" } });
  const doneId = s.ids[7];
  await s.viewer.evaluate((id) => {
    window.__burstDone = new Promise((resolve) => {
      const check = () => {
        const t = document.querySelector(`[data-testid="item-row"][data-item-id="${id}"] [data-testid="item-title"]`);
        if (t && t.textContent.trim() === "Burst done") {
          obs.disconnect();
          resolve(performance.timeOrigin + performance.now());
        }
      };
      const obs = new MutationObserver(check);
      obs.observe(document.body, { childList: true, subtree: true, characterData: true });
    });
  }, doneId);
  const sendAt = Date.now();
  let repliedAt = 0;
  const done = s.seed.requestAll(msgs, { timeout: 60000 }).then((r) => ((repliedAt = Date.now()), r));
  const drawnAt = await s.viewer.evaluate(() => window.__burstDone);
  await done;
  const sentAt = s.seed.lastSendAt;
  s.seed.clear();
  // Let the tail of the work finish, then read the long tasks.
  await s.viewer.evaluate(() => new Promise((r) => setTimeout(r, 300)));
  const lastMsgAt = await s.viewer.evaluate(() => window.__perf.lastMsgAt);
  await waitFor(async () => {
    await s.rawWatch.drain();
    return s.rawWatch.inbox.some((m) => m.t === "item.updated" && m.set?.title === "Burst done");
  }, { describe: "the raw watcher received the whole burst" });
  const rawLastAt = await s.rawWatch.page.evaluate(() => window.__raw.lastAt);
  s.rawWatch.clear();
  const lt = (await s.viewer.evaluate(() => window.__perf.longtasks)).filter((t) => t.start >= t0);
  perf("burst500_replied_ms", repliedAt - sendAt, "(the sender holding all 500 replies; polled every 50 ms)");
  perf("burst500_raw_watcher_received_ms", rawLastAt - sentAt, "(first send to a bare protocol client in the room receiving the last event)");
  perf("burst500_received_ms", lastMsgAt - sentAt, "(first send to the watching page's last WebSocket message, page clocks)");
  perf("burst500_applied_ms", drawnAt - sentAt, "(first send to the last change drawn in the watching page, page clocks)");
  perf("burst500_longest_task_ms", lt.length ? Math.max(...lt.map((t) => t.duration)) : 0, "(issue target: no task over 100 ms)");
  perf("burst500_long_tasks", lt.length, "(tasks over 50 ms)");
  // The page ends in the server's order: a fresh join agrees.
  s.fac = await h.page(await h.context("facilitator-viewer"), "facilitator-viewer", { frames: false });
  await s.fac.goto(s.bigLink("facilitator"));
  const f = s.fac.getByRole("textbox", { name: "Your name", exact: true });
  await f.fill("Fay");
  await f.press("Enter");
  await waitConnected(s.fac);
  await waitFor(async () => (await readRows(s.fac)).length === N, { timeout: 30000, describe: `facilitator: ${N} rows` });
  const [a, b] = [await readRows(s.viewer), await readRows(s.fac)];
  assert.deepEqual(a.map((r) => r.id), b.map((r) => r.id), "the page that took the burst has the order of a fresh page");
});

step("a pointer drag in the 1,000-item list: frame times", async () => {
  const p = s.viewer;
  const rows = p.locator('[data-testid="item-row"]');
  const title = (await rows.nth(2).getByTestId("item-title").textContent()).trim();
  const handle = p.getByRole("button", { name: `Reorder ${title}`, exact: true });
  await handle.scrollIntoViewIfNeeded();
  const hb = await handle.boundingBox();
  await p.evaluate(() => {
    const P = window.__perf;
    P.frames = [];
    P.rec = true;
    let last = performance.now();
    const f = (t) => {
      P.frames.push(t - last);
      last = t;
      if (P.rec) requestAnimationFrame(f);
    };
    requestAnimationFrame((t) => {
      last = t;
      requestAnimationFrame(f);
    });
  });
  const x = hb.x + hb.width / 2;
  const y = hb.y + hb.height / 2;
  const sendsBefore = await p.evaluate(() => window.__perf.sends);
  await p.mouse.move(x, y);
  await p.mouse.down();
  const t0 = Date.now();
  for (let i = 1; i <= 60; i++) await p.mouse.move(x, y + i * 8);
  for (let i = 59; i >= 30; i--) await p.mouse.move(x, y + i * 8);
  const dragMs = Date.now() - t0;
  await p.mouse.up();
  const frames = await p.evaluate(() => {
    window.__perf.rec = false;
    return window.__perf.frames;
  });
  perf("drag_frames", frames.length, `(during ${dragMs} ms of pointer moves)`);
  perf("drag_frame_p95_ms", percentile(frames, 95));
  perf("drag_frame_max_ms", Math.max(...frames));
  perf("drag_frame_median_ms", percentile(frames, 50));
  assert.ok(frames.length > 5, "frames were recorded during the drag");
  // The drag really dragged: the row left its place and the drop sent a message.
  await waitFor(async () => (await p.evaluate(() => window.__perf.sends)) > sendsBefore, { describe: "the drop sent a message (item.move)" });
  await waitFor(async () => (await rows.nth(2).getByTestId("item-title").textContent()).trim() !== title, {
    describe: `"${title}" left the third place`,
  });
  await waitFor(async () => (await readRows(p)).length === N, { describe: `${N} rows after the drop` });
});

step("20 moves made in one page appear in another: latency", async () => {
  const A = s.viewer;
  const B = s.fac;
  await B.evaluate(() => {
    window.__watch = (id) =>
      new Promise((resolve) => {
        const list = document.querySelector('[data-testid="backlog-list"]') || document.body;
        const check = () => {
          const first = document.querySelector('[data-testid="item-row"]');
          if (first && first.getAttribute("data-item-id") === id) {
            obs.disconnect();
            resolve(performance.timeOrigin + performance.now());
            return true;
          }
          return false;
        };
        const obs = new MutationObserver(check);
        obs.observe(list, { childList: true, subtree: true, attributes: true, attributeFilter: ["data-item-id"] });
        check();
      });
  });
  const lat = [];
  for (let i = 0; i < 20; i++) {
    const row = A.locator('[data-testid="item-row"]').nth(3);
    const id = await row.getAttribute("data-item-id");
    const title = (await row.getByTestId("item-title").textContent()).trim();
    const seen = B.evaluate((id) => window.__watch(id), id);
    const clicksBefore = await A.evaluate(() => window.__perf.clicks.length);
    await moveByMenu(A, title, "Move to top");
    const tB = await seen;
    const tA = await A.evaluate((n) => window.__perf.clicks[n], clicksBefore);
    assert.ok(tA, "the menu click was timed in the sending page");
    lat.push(tB - tA);
    await waitFor(async () => (await A.locator('[data-testid="item-row"]').first().getAttribute("data-item-id")) === id, {
      describe: "the sending page shows its own move",
    });
  }
  perf("move_latency_p95_ms", percentile(lat, 95), "(menu click in one page to the row on top in another; issue target 100 ms)");
  perf("move_latency_median_ms", percentile(lat, 50));
  perf("move_latency_max_ms", Math.max(...lat));
  void parseInvite;
});
