// Test doubles: a clock with timers, a WebSocket driven by the test, an online switch and a
// Storage. They implement the injection points of src/lib (connection.ts, storage.ts).

import { decodeMessage, encodeMessage } from "../src/lib/wire";
import type { OnlineSignal, SocketLike, Timers } from "../src/lib/connection";
import type { Scheduler, SchedulerEnv } from "../src/lib/schedule";
import type { Item, Message, Participant, Snapshot } from "../src/lib/protocol";
import type { StorageBackend } from "../src/lib/storage";

/** A manual clock: timers fire only in advance(). */
export class FakeClock implements Timers {
  t = 1_800_000_000_000;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = ++this.seq;
    this.timers.set(id, { at: this.t + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Delays of the timers now pending, soonest first (relative to now). */
  pending(): number[] {
    return [...this.timers.values()].map((x) => x.at - this.t).sort((a, b) => a - b);
  }
  /** Moves time forward, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | null = null;
      for (const e of this.timers) if (e[1].at <= end && (!next || e[1].at < next[1].at)) next = e;
      if (!next) break;
      this.timers.delete(next[0]);
      this.t = next[1].at;
      next[1].fn();
    }
    this.t = end;
  }
}

/**
 * Where the incoming messages are handled (Connection's scheduler). By default each scheduled
 * slice runs at once, inside the socket's message (the tests written before batching: a
 * received message is handled when receive() returns). With `manual`, slices wait for frame():
 * the test decides what arrives before a slice runs. `t` is the clock of the slice budget;
 * `cost` ms are added to it at every reading (a slice of budget B handles about B / cost
 * messages).
 */
export class FakeScheduler implements Scheduler {
  t = 0;
  cost = 0;
  slices = 0; // how many scheduled callbacks ran
  private queue: (() => void)[] = [];
  constructor(public manual = false) {}
  schedule(fn: () => void): void {
    if (!this.manual) {
      this.slices++;
      fn();
      return;
    }
    this.queue.push(fn);
  }
  now(): number {
    this.t += this.cost;
    return this.t;
  }
  /** How many callbacks wait for the next frame. */
  get waiting(): number {
    return this.queue.length;
  }
  /** Runs the callbacks scheduled before this call (one frame); returns how many ran. */
  frame(): number {
    const fns = this.queue;
    this.queue = [];
    for (const fn of fns) {
      this.slices++;
      fn();
    }
    return fns.length;
  }
  /** Runs frames until nothing is scheduled; returns how many frames that took. */
  frames(): number {
    let n = 0;
    while (this.queue.length) {
      this.frame();
      n++;
    }
    return n;
  }
}

/**
 * The page as frameScheduler sees it: frames, macrotasks and timers queued until the test runs
 * them; `hidden` switchable (visibilitychange listeners called by setHidden).
 */
export class FakePage implements SchedulerEnv {
  hiddenNow = false;
  frameQueue: (() => void)[] = [];
  taskQueue: (() => void)[] = [];
  timers = new Map<number, { ms: number; fn: () => void }>();
  private nextTimer = 0;
  private listeners: (() => void)[] = [];
  requestFrame: ((fn: () => void) => unknown) | null = (fn) => this.frameQueue.push(fn);
  hidden(): boolean {
    return this.hiddenNow;
  }
  onVisibilityChange(fn: () => void): void {
    this.listeners.push(fn);
  }
  macrotask(fn: () => void): void {
    this.taskQueue.push(fn);
  }
  setTimeout(fn: () => void, ms: number): unknown {
    this.timers.set(++this.nextTimer, { ms, fn });
    return this.nextTimer;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  now(): number {
    return 0;
  }
  setHidden(hidden: boolean): void {
    this.hiddenNow = hidden;
    for (const l of this.listeners) l();
  }
  /** Runs the frame callbacks queued so far (a hidden page never calls this: no frames). */
  runFrame(): void {
    const q = this.frameQueue;
    this.frameQueue = [];
    for (const fn of q) fn();
  }
  /** Runs the macrotasks queued so far. */
  runTasks(): void {
    const q = this.taskQueue;
    this.taskQueue = [];
    for (const fn of q) fn();
  }
  /** Fires every pending timer. */
  runTimers(): void {
    const q = [...this.timers.values()];
    this.timers.clear();
    for (const t of q) t.fn();
  }
}

/** A WebSocket the test drives: open(), receive(), serverClose(); `sent` holds decoded frames. */
export class FakeSocket implements SocketLike {
  static all: FakeSocket[] = [];
  static last(): FakeSocket {
    return FakeSocket.all[FakeSocket.all.length - 1];
  }
  binaryType = "blob";
  readyState = 0;
  onopen: ((ev: unknown) => void) | null = null;
  onmessage: ((ev: { data: unknown }) => void) | null = null;
  onclose: ((ev: { code: number; reason: string }) => void) | null = null;
  onerror: ((ev: unknown) => void) | null = null;
  sent: Message[] = [];
  closedByClient: { code?: number; reason?: string } | null = null;

  constructor(
    public url: string,
    public protocols?: string | string[],
  ) {
    FakeSocket.all.push(this);
  }
  send(data: Uint8Array): void {
    if (this.readyState !== 1) throw new Error("not open");
    const msg = decodeMessage(data);
    if (!msg) throw new Error("undecodable frame");
    this.sent.push(msg);
  }
  close(code?: number, reason?: string): void {
    this.closedByClient = { code, reason };
    this.readyState = 3;
  }
  // --- driven by the test ---
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(msg: Record<string, unknown>): void {
    const bytes = encodeMessage(msg);
    const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    this.onmessage?.({ data: buf });
  }
  serverClose(code: number, reason = ""): void {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** The last request sent with this `t`. */
  lastSent(t: string): Message | undefined {
    return [...this.sent].reverse().find((m) => m.t === t);
  }
  /** Replies ok to the request (id echoed). */
  ok(req: Message | undefined, fields: Record<string, unknown> = {}): void {
    if (!req) throw new Error("no such request");
    this.receive({ t: "ok", id: req.id, ...fields });
  }
}

/** navigator.onLine and its events, switchable by the test. */
export class FakeOnline implements OnlineSignal {
  up = true;
  private listeners = new Set<(up: boolean) => void>();
  isOnline(): boolean {
    return this.up;
  }
  listen(fn: (up: boolean) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
  set(up: boolean): void {
    this.up = up;
    for (const l of this.listeners) l(up);
  }
}

/** An in-memory Storage; `failWrites` makes setItem throw like a full quota. */
export class MemoryStorage implements StorageBackend {
  data = new Map<string, string>();
  failWrites = false;
  failReads = false;
  getItem(key: string): string | null {
    if (this.failReads) throw new Error("SecurityError");
    return this.data.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    if (this.failWrites) throw new Error("QuotaExceededError");
    this.data.set(key, value);
  }
  removeItem(key: string): void {
    if (this.failWrites) throw new Error("QuotaExceededError");
    this.data.delete(key);
  }
}

/** Lets pending promise callbacks run. */
export async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

// ---- room data ----

/** An item with defaults; `rank` sortable. */
export function item(id: string, rank: string, fields: Partial<Item> = {}): Item {
  return {
    id,
    rank,
    parent: null,
    updated_at: 0,
    title: `Story ${id}`,
    kind: "story",
    persona: "",
    goal: "",
    benefit: "",
    notes: "",
    acceptance: [],
    estimate: null,
    value: null,
    moscow: null,
    status: "draft",
    labels: [],
    persona_id: null,
    outcomes: [],
    ...fields,
  };
}

export function person(pid: string, name: string, role: Participant["role"] = "member", online = true): Participant {
  return { pid, name, role, online };
}

/** A snapshot message with sensible defaults. */
export function snapshot(fields: Partial<Snapshot> = {}): Snapshot {
  return {
    t: "snapshot",
    seq: 0,
    room: {
      id: "R1",
      name: "Sprint 14",
      deck: "fibonacci",
      auto_reveal: false,
      reveal_on_timer: false,
      facilitator_grace: 120,
      created_at: 1,
      epoch: "E1",
    },
    participants: [],
    observers: { online: 0, total: 0 },
    items: [],
    round: null,
    rounds: [],
    focus: null,
    timer: null,
    ...fields,
  };
}

/** A rank for index i that sorts in i's order (5 base-62 digits). */
export function rankOf(i: number): string {
  const digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
  let s = "";
  let n = i;
  for (let k = 0; k < 5; k++) {
    s = digits[n % 62] + s;
    n = Math.floor(n / 62);
  }
  return "a" + s;
}
