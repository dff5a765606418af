// The end-to-end harness: a real refine-server (real SQLite file in a temporary directory) on a
// free port, Debian's Chromium driven by playwright-core, every page's WebSocket frames captured
// and decoded, page errors collected, screenshots saved. Used by the *.test.mjs files beside it.
//
// Environment:
//   REFINE_SERVER         the server binary (default <repo>/build/refine-server)
//   REFINE_E2E_WEB        serve the client from this directory (--web); unset: the binary's own
//   REFINE_E2E_ARTIFACTS  where screenshots go (default web-client/e2e-artifacts)
//   REFINE_E2E_CHROMIUM   the browser (default /usr/bin/chromium)
//   REFINE_E2E_TIMEOUT    ms to wait for a condition (default 15000)
//   REFINE_E2E_HEADED     set to 1 to watch the browser (needs a display)

import { chromium } from "playwright-core";
import { decode } from "@msgpack/msgpack";
import { spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, test } from "node:test";

export { sleep };

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const WEB_CLIENT = path.resolve(HERE, "..");
export const REPO = path.resolve(HERE, "../..");
export const SERVER_BIN = process.env.REFINE_SERVER || path.join(REPO, "build/refine-server");
export const WEB_DIR = process.env.REFINE_E2E_WEB || null;
export const ARTIFACTS = process.env.REFINE_E2E_ARTIFACTS || path.join(WEB_CLIENT, "e2e-artifacts");
export const CHROMIUM = process.env.REFINE_E2E_CHROMIUM || "/usr/bin/chromium";
export const TIMEOUT = Number(process.env.REFINE_E2E_TIMEOUT || 15000);
export const ROLES = ["facilitator", "owner", "member", "observer"];

// ---------------------------------------------------------------------------------------------
// Waiting

/**
 * Polls `fn` until it returns a truthy value (returned) or `timeout` ms pass (throws, saying what
 * was awaited and the last value or error seen). `describe` may be a string or a function of the
 * last value, for a useful failure message.
 */
export async function waitFor(fn, { timeout = TIMEOUT, interval = 100, describe } = {}) {
  const end = Date.now() + timeout;
  let last;
  let lastErr;
  for (;;) {
    try {
      last = await fn();
      if (last) return last;
      lastErr = undefined;
    } catch (e) {
      lastErr = e;
    }
    if (Date.now() > end) {
      let what = describe || fn.toString();
      if (typeof describe === "function") what = await Promise.resolve(describe(last)).catch((e) => `(describe failed: ${e.message})`);
      let msg = `Timed out after ${timeout} ms waiting for: ${what}`;
      if (lastErr) msg += `\n  last error: ${lastErr.message.split("\n")[0]}`;
      else msg += `\n  last value: ${safeJson(last)}`;
      throw new Error(msg);
    }
    await sleep(interval);
  }
}

function safeJson(v) {
  try {
    const s = JSON.stringify(v);
    return s && s.length > 2000 ? s.slice(0, 2000) + "…" : s;
  } catch {
    return String(v);
  }
}

// ---------------------------------------------------------------------------------------------
// The server

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

export class RefineServer {
  constructor({ args = [], label = "server" } = {}) {
    this.args = args;
    this.label = label;
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), "refine-e2e-"));
    this.db = path.join(this.dir, "refine.db");
    this.port = null;
    this.proc = null;
    this.log = [];
    this.starts = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get wsUrl() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  async start() {
    if (!fs.existsSync(SERVER_BIN)) {
      throw new Error(`No server binary at ${SERVER_BIN} (build it, or set REFINE_SERVER)`);
    }
    if (this.port === null) this.port = await freePort();
    const args = ["--port", String(this.port), "--db", this.db, "--log-level", "warn"];
    if (WEB_DIR) args.push("--web", WEB_DIR);
    args.push(...this.args);
    const env = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith("REFINE_")) delete env[k];
    // A restart on the same port may race the kernel releasing it: try a few times.
    for (let attempt = 0; ; attempt++) {
      const proc = spawn(SERVER_BIN, args, { cwd: this.dir, env, stdio: ["ignore", "pipe", "pipe"] });
      this.proc = proc;
      this.starts++;
      const tag = `[${this.label}#${this.starts}]`;
      const onData = (d) => {
        for (const line of d.toString().split("\n")) if (line) this.log.push(`${tag} ${line}`);
        if (this.log.length > 2000) this.log.splice(0, this.log.length - 2000);
      };
      proc.stdout.on("data", onData);
      proc.stderr.on("data", onData);
      proc.exited = new Promise((resolve) => proc.on("exit", (code, sig) => resolve({ code, sig })));
      let dead = null;
      proc.exited.then((r) => (dead = r));
      try {
        await waitFor(
          async () => {
            if (dead) return true;
            const r = await fetch(`${this.url}/healthz`).catch(() => null);
            return r && r.status === 200;
          },
          { timeout: 15000, interval: 50, describe: `${SERVER_BIN} to answer /healthz on ${this.port}` },
        );
      } catch (e) {
        proc.kill("SIGKILL");
        throw new Error(`${e.message}\n${this.log.slice(-20).join("\n")}`);
      }
      if (!dead) return this;
      if (attempt >= 20) {
        throw new Error(`The server exited at start (${JSON.stringify(dead)}):\n${this.log.slice(-20).join("\n")}`);
      }
      await sleep(250);
    }
  }

  /** SIGKILL: no shutdown, no close frames; the database is left as a crash leaves it. */
  async kill() {
    const p = this.proc;
    if (!p || p.exitCode !== null || p.signalCode !== null) return;
    p.kill("SIGKILL");
    await p.exited;
  }

  async restart() {
    await this.kill();
    await this.start();
  }

  async stop({ keep = false } = {}) {
    const p = this.proc;
    if (p && p.exitCode === null && p.signalCode === null) {
      p.kill("SIGTERM");
      const done = await Promise.race([p.exited, sleep(5000).then(() => null)]);
      if (!done) {
        p.kill("SIGKILL");
        await p.exited;
      }
    }
    if (!keep) fs.rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// The browser

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: process.env.REFINE_E2E_HEADED !== "1",
    args: CHROMIUM_ARGS,
  });
}

function decodeFrame(payload) {
  if (typeof payload === "string") return { __text: payload };
  try {
    return decode(payload);
  } catch (e) {
    return { __undecodable: payload.length, error: e.message };
  }
}

/**
 * One test file's world: a server, a browser, contexts and pages with everything they do
 * recorded. `page.e2e` holds { label, frames: [{dir, at, msg, url}], errors, consoleErrors,
 * dialogs, downloads }.
 */
export class Harness {
  constructor(name, { serverArgs = [] } = {}) {
    this.name = name;
    this.serverArgs = serverArgs;
    this.contexts = [];
    this.pages = [];
  }

  async start() {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    for (const f of fs.readdirSync(ARTIFACTS)) if (f.startsWith(`fail-${this.name}-`)) fs.rmSync(path.join(ARTIFACTS, f));
    this.server = this.makeServer();
    await this.server.start();
    this.browser = await launchBrowser();
    return this;
  }

  get base() {
    return this.server.url;
  }

  /** What start() starts: one refine-server (cluster.mjs's ClusterHarness: HAProxy + instances). */
  makeServer() {
    return new RefineServer({ args: this.serverArgs, label: this.name });
  }

  /** A browser context: one person's browser (its own localStorage). */
  async context(label, { colorScheme = "light", width = 1280, height = 800, ...opts } = {}) {
    const ctx = await this.browser.newContext({
      viewport: { width, height },
      colorScheme,
      reducedMotion: "reduce",
      acceptDownloads: true,
      ...opts,
    });
    ctx.e2eLabel = label;
    ctx.setDefaultTimeout(TIMEOUT);
    this.contexts.push(ctx);
    return ctx;
  }

  /** A new page (tab) of a context, instrumented. */
  /** `frames: false` skips recording WebSocket frames (their DevTools events cost time in timings). */
  async page(ctx, label = ctx.e2eLabel, { frames = true } = {}) {
    const page = await ctx.newPage();
    this.instrument(page, label, { frames });
    return page;
  }

  /** A context with one page: the usual "one person". */
  async person(label, opts) {
    const ctx = await this.context(label, opts);
    return this.page(ctx, label);
  }

  instrument(page, label, { frames = true } = {}) {
    const rec = { label, frames: [], errors: [], consoleErrors: [], dialogs: [], sockets: [] };
    page.e2e = rec;
    page.setDefaultTimeout(TIMEOUT);
    page.on("pageerror", (err) => rec.errors.push(`${err.name}: ${err.message}`));
    page.on("console", (m) => {
      if (m.type() === "error") rec.consoleErrors.push(m.text());
    });
    page.on("dialog", (d) => {
      rec.dialogs.push(`${d.type()}: ${d.message()}`);
      d.dismiss().catch(() => {});
    });
    if (frames) page.on("websocket", (ws) => {
      rec.sockets.push(ws.url());
      const url = ws.url();
      ws.on("framereceived", (f) => rec.frames.push({ dir: "in", at: Date.now(), url, msg: decodeFrame(f.payload) }));
      ws.on("framesent", (f) => rec.frames.push({ dir: "out", at: Date.now(), url, msg: decodeFrame(f.payload) }));
    });
    this.pages.push(page);
    return page;
  }

  /** Throws when any page had an uncaught error (and says which page and what). */
  assertNoPageErrors() {
    const bad = this.pages.filter((p) => p.e2e.errors.length);
    if (bad.length) {
      const lines = bad.map((p) => `  ${p.e2e.label}: ${p.e2e.errors.join(" | ")}`);
      for (const p of bad) p.e2e.errors.length = 0; // reported once
      throw new Error(`Uncaught page errors:\n${lines.join("\n")}`);
    }
  }

  consoleErrorSummary() {
    return this.pages
      .filter((p) => p.e2e.consoleErrors.length)
      .map((p) => `  ${p.e2e.label}: ${[...new Set(p.e2e.consoleErrors)].slice(0, 5).join(" | ")}`)
      .join("\n");
  }

  /** Screenshots of every open page, for a failed step. */
  async snapAll(tag) {
    const safe = tag.replace(/[^A-Za-z0-9_-]+/g, "_").slice(0, 60);
    let i = 0;
    for (const p of this.pages) {
      if (p.isClosed()) continue;
      const file = path.join(ARTIFACTS, `fail-${this.name}-${safe}-${i++}-${p.e2e.label.replace(/[^A-Za-z0-9_-]+/g, "_")}.png`);
      await p.screenshot({ path: file, timeout: 5000 }).catch(() => {});
    }
  }

  async close() {
    const ce = this.consoleErrorSummary();
    if (ce) console.log(`console errors seen (not failures):\n${ce}`);
    for (const c of this.contexts) await c.close().catch(() => {});
    if (this.browser) await this.browser.close().catch(() => {});
    if (this.server) await this.server.stop();
  }
}

/** One e2e file: its Harness, started before the first step and closed after the last, and
 * the file's step() (see stepper). */
export function suite(name, opts) {
  const h = new Harness(name, opts);
  before(() => h.start());
  after(() => h.close());
  return { h, step: stepper(h, test) };
}

/**
 * Sequential steps sharing state: a step after a failed one is skipped (saying so) instead of
 * failing for a reason that is not its own. Every step ends by checking for page errors; a
 * failed step leaves screenshots of every page in the artifacts folder.
 */
export function stepper(h, testFn) {
  let broken = null;
  return (name, fn, { timeout = 120000, blocking = true } = {}) =>
    testFn(name, { timeout }, async (t) => {
      if (broken) {
        t.skip(`skipped: the earlier step "${broken}" failed`);
        return;
      }
      try {
        await fn(t);
        h.assertNoPageErrors();
      } catch (e) {
        // A non-blocking step fails alone: the steps after it do not depend on what it did.
        if (blocking) broken = name;
        await h.snapAll(name);
        for (const p of h.pages) if (!p.isClosed()) await p.keyboard.press("Escape").catch(() => {});
        const tail = h.server?.log.slice(-10).join("\n");
        if (tail) e.message += `\n  server log tail:\n${tail}`;
        throw e;
      }
    });
}

// ---------------------------------------------------------------------------------------------
// Screenshots

export function artifactPath(file) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  return path.join(ARTIFACTS, file);
}

/** Saves `<view>-<width>-<light|dark>.png` and returns its path. */
export async function screenshot(page, view, scheme) {
  const width = page.viewportSize().width;
  const file = artifactPath(`${view}-${width}-${scheme}.png`);
  await page.screenshot({ path: file, animations: "disabled" });
  return file;
}

// ---------------------------------------------------------------------------------------------
// Frames

/** Messages a page received (decoded), optionally only those after index `from`. */
export function received(page, from = 0) {
  return page.e2e.frames.slice(from).filter((f) => f.dir === "in").map((f) => f.msg);
}

export function sent(page, from = 0) {
  return page.e2e.frames.slice(from).filter((f) => f.dir === "out").map((f) => f.msg);
}

/** The participant id this page joined as (the last join `ok` it received). */
export function joinedPid(page) {
  const oks = received(page).filter((m) => m && m.t === "ok" && typeof m.pid === "string" && typeof m.secret === "string");
  return oks.length ? oks[oks.length - 1].pid : null;
}

export function joinOks(page) {
  return received(page).filter((m) => m && m.t === "ok" && typeof m.pid === "string" && typeof m.secret === "string");
}

// ---------------------------------------------------------------------------------------------
// A raw protocol client inside a page (Node 20 has no WebSocket): messages are encoded with
// @msgpack/msgpack here in Node and cross into the page as base64. Used to seed big rooms fast.

import { encode } from "@msgpack/msgpack";

export class RawClient {
  constructor(page, server) {
    this.page = page;
    this.server = server;
    this.nextId = 1;
    this.inbox = [];
  }

  static async open(page, server) {
    const c = new RawClient(page, server);
    // Same origin as the server, or the handshake's Origin is refused.
    await page.goto(`${server.url}/healthz`);
    await page.evaluate(
      (url) =>
        new Promise((resolve, reject) => {
          const ws = new WebSocket(url, "refine.v1");
          ws.binaryType = "arraybuffer";
          const raw = { ws, inbox: [], closed: null };
          window.__raw = raw;
          ws.onmessage = (e) => {
            raw.inbox.push(new Uint8Array(e.data));
            raw.lastAt = performance.timeOrigin + performance.now();
          };
          ws.onopen = () => resolve();
          ws.onerror = () => reject(new Error("raw WebSocket failed"));
          ws.onclose = (e) => (raw.closed = e.code);
        }),
      server.wsUrl,
    );
    return c;
  }

  /** Sends every message (ids assigned here when missing); returns their ids. */
  async sendAll(msgs) {
    const ids = [];
    const b64 = msgs.map((m) => {
      if (m.id === undefined) m = { ...m, id: this.nextId++ };
      ids.push(m.id);
      return Buffer.from(encode(m)).toString("base64");
    });
    this.lastSendAt = await this.page.evaluate((list) => {
      const bufs = list.map((s) => {
        const bin = atob(s);
        const u8 = new Uint8Array(bin.length);
        for (let i = 0; i < bin.length; i++) u8[i] = bin.charCodeAt(i);
        return u8;
      });
      const at = performance.timeOrigin + performance.now();
      for (const u8 of bufs) window.__raw.ws.send(u8);
      return at;
    }, b64);
    return ids;
  }

  /** Moves what the page received into this.inbox (decoded). */
  async drain() {
    const list = await this.page.evaluate(() => {
      const out = [];
      for (const u8 of window.__raw.inbox.splice(0)) {
        let s = "";
        for (let i = 0; i < u8.length; i += 0x8000) s += String.fromCharCode.apply(null, u8.subarray(i, i + 0x8000));
        out.push(btoa(s));
      }
      return out;
    });
    for (const s of list) this.inbox.push(decode(Buffer.from(s, "base64")));
    return list.length;
  }

  /** Sends the messages and waits for a reply to each; throws on any err reply. */
  async requestAll(msgs, { timeout = 60000 } = {}) {
    const ids = await this.sendAll(msgs);
    const want = new Set(ids);
    const replies = new Map();
    await waitFor(
      async () => {
        await this.drain();
        for (const m of this.inbox) if ((m.t === "ok" || m.t === "err") && want.has(m.id)) replies.set(m.id, m);
        return replies.size === want.size;
      },
      { timeout, interval: 50, describe: () => `${want.size} replies (have ${replies.size})` },
    );
    const errs = [...replies.values()].filter((m) => m.t === "err");
    if (errs.length) throw new Error(`err replies: ${JSON.stringify(errs.slice(0, 3))}`);
    return ids.map((id) => replies.get(id));
  }

  async request(msg, opts) {
    return (await this.requestAll([msg], opts))[0];
  }

  clear() {
    this.inbox.length = 0;
  }

  async close() {
    await this.page.evaluate(() => window.__raw.ws.close()).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// The backlog's order on several pages

/** The item ids of `[data-testid=item-row]` in DOM order. */
export function rowIds(page) {
  return page.evaluate(() => [...document.querySelectorAll('[data-testid="item-row"]')].map((r) => r.getAttribute("data-item-id")));
}

/**
 * Waits until every page lists the same item ids in the same order (and, when given, that
 * order), and returns it.
 */
export async function waitForSameOrder(pages, expected = null, { timeout = TIMEOUT } = {}) {
  let last = [];
  await waitFor(
    async () => {
      last = await Promise.all(pages.map((p) => rowIds(p)));
      const first = JSON.stringify(last[0]);
      if (!last.every((o) => JSON.stringify(o) === first)) return false;
      if (expected && first !== JSON.stringify(expected)) return false;
      return last[0].length > 0 || (expected && expected.length === 0);
    },
    {
      timeout,
      describe: () =>
        `the same order on every page${expected ? ` (expected ${expected.join(",")})` : ""}:\n` +
        pages.map((p, i) => `    ${p.e2e.label}: ${(last[i] || []).join(",")}`).join("\n"),
    },
  );
  return last[0];
}

/** Parses an invite link `.../#room=R&token=T`. */
export function parseInvite(link) {
  const u = new URL(link);
  const p = new URLSearchParams(u.hash.replace(/^#/, ""));
  return { room: p.get("room"), token: p.get("token"), search: u.search };
}

export function percentile(values, p) {
  if (!values.length) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}
