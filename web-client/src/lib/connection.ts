// One WebSocket to the server at a time, reconnected with backoff: request ids and replies,
// events and notices handed on, close codes and the browser's online state respected.
// Everything the browser provides (WebSocket, timers, navigator.onLine, animation frames) is
// injected so the unit tests drive it with fakes.
//
// Incoming frames are queued, not handled in the WebSocket's own task: the queue is drained in
// slices (see schedule.ts: the next animation frame, or a macrotask in a hidden tab), each slice
// a batch between onBatchStart and onBatchEnd and at most `sliceBudgetMs` long, in arrival order.
// A reply is matched and resolved in its place in that order, so an event received before a
// reply is handed on before the reply is resolved (and a promise's callbacks run after the
// slice, once its batch is published).

import { CLOSE, type Message } from "./protocol";
import { browserScheduler, type Scheduler } from "./schedule";
import { decodeMessage, encodeMessage } from "./wire";

/** The part of the browser's WebSocket this module uses. */
export interface SocketLike {
  binaryType: string;
  readonly readyState: number;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
}
export type SocketFactory = new (url: string, protocols?: string | string[]) => SocketLike;

/** Clock and timers (window's by default; fake ones in tests). */
export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

/** The browser's idea of being online (navigator.onLine and the online/offline events). */
export interface OnlineSignal {
  isOnline(): boolean;
  /** Calls `onChange` on every online/offline event; returns the unsubscribe function. */
  listen(onChange: (online: boolean) => void): () => void;
}

export type ConnState =
  | "idle" // not started
  | "connecting" // a socket is opening
  | "open" // the socket is open
  | "waiting" // closed; a retry is scheduled (see retryInMs)
  | "offline" // closed; the browser is offline, retrying when it comes back
  | "closed"; // stopped for good

export interface ConnectionOptions {
  /**
   * Where to connect: a URL, or a function asked again before every attempt (a room's URL
   * follows the room: see roomUrl).
   */
  url: string | (() => string);
  protocol?: string; // default "refine.v1"
  WebSocketImpl?: SocketFactory;
  timers?: Timers;
  online?: OnlineSignal;
  random?: () => number;
  backoff?: Partial<Backoff>;
  /** When incoming messages are handled (the page's frames by default). */
  scheduler?: Scheduler;
  /** The longest a slice of incoming messages goes on before yielding (ms, default 8). */
  sliceBudgetMs?: number;
  /** What a slice and the work after it should stay within (ms, default SLICE_TARGET_MS). */
  sliceTargetMs?: number;
  /** The socket is open: the owner sends its join now. */
  onOpen(): void;
  /** Every message that is not a reply to a request of this connection. */
  onMessage(msg: Message): void;
  /** A slice of incoming messages begins: the owner may gather its changes into one batch. */
  onBatchStart?(): void;
  /** The slice is over (always called after onBatchStart, also when a handler threw). */
  onBatchEnd?(): void;
  /** The socket closed (in-flight requests were rejected with Disconnected just before). */
  onDown?(info: { code: number; reason: string }): void;
  onState?(state: ConnState): void;
}

export interface Backoff {
  baseMs: number; // first retry
  capMs: number; // longest ordinary wait
  jitter: number; // +- fraction of the delay
  stableMs: number; // a connection open this long resets the sequence
  policyMs: number; // wait after a 1008 close (we flooded the server)
  connectTimeoutMs: number; // a socket not open by then is given up and retried
}

/** The default time budget of a slice of incoming messages (ms): half a frame at 60 Hz. */
export const SLICE_BUDGET_MS = 8;
/**
 * What a slice's whole task should stay within (ms): the messages and the page's work after
 * them (the views' render, which grows with the changes in the slice: rows redrawn and moved).
 * The number of messages a slice may take is adapted to it, between SLICE_MIN_MESSAGES and
 * SLICE_MAX_MESSAGES, starting at SLICE_FIRST_MESSAGES: cut when a slice's task ran over,
 * raised by a quarter when a full slice stayed within.
 */
export const SLICE_TARGET_MS = 40;
export const SLICE_FIRST_MESSAGES = 100;
export const SLICE_MIN_MESSAGES = 16;
export const SLICE_MAX_MESSAGES = 1000;

export const DEFAULT_BACKOFF: Backoff = {
  baseMs: 500,
  capMs: 10_000,
  jitter: 0.2,
  stableMs: 60_000,
  policyMs: 30_000,
  connectTimeoutMs: 10_000,
};

/** A request's reply never came: the socket closed first (or was not open). */
export class Disconnected extends Error {
  constructor(public sent: boolean) {
    super(sent ? "The connection closed before the server answered." : "Not connected.");
  }
}

/** The delay before retry number `failures` (0-based): base * 2^n, capped, with jitter. */
export function backoffDelay(failures: number, b: Backoff, random: () => number): number {
  const raw = Math.min(b.capMs, b.baseMs * 2 ** Math.min(failures, 30));
  const jittered = raw * (1 - b.jitter + 2 * b.jitter * random());
  return Math.round(Math.min(b.capMs, Math.max(0, jittered)));
}

/**
 * The WebSocket URL of this page's server: ws(s)://host/ws. Only for creating a room: a balancer
 * sends it to any instance (the room is made on the one that answers).
 */
export function defaultUrl(loc: { protocol: string; host: string } = location): string {
  return `${loc.protocol === "https:" ? "wss" : "ws"}://${loc.host}/ws`;
}

/**
 * The WebSocket URL of a known room: ws(s)://host/r/<room>/ws, made from the server's `/ws` URL
 * (`base`, this page's by default). A balancer routes it to the room's home by the path alone
 * (the room id starts with its home's name); the server binds the connection to that room.
 */
export function roomUrl(room: string, base: string = defaultUrl()): string {
  const path = `/r/${encodeURIComponent(room)}/ws`;
  return base.endsWith("/ws") ? base.slice(0, -"/ws".length) + path : base.replace(/\/?$/, path);
}

export const browserTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
  now: () => Date.now(),
};

/** navigator.onLine and window's online/offline events; always online where they do not exist. */
export const browserOnline: OnlineSignal = {
  isOnline: () => (typeof navigator === "undefined" ? true : navigator.onLine !== false),
  listen(onChange) {
    if (typeof window === "undefined" || !window.addEventListener) return () => {};
    const on = () => onChange(true);
    const off = () => onChange(false);
    window.addEventListener("online", on);
    window.addEventListener("offline", off);
    return () => {
      window.removeEventListener("online", on);
      window.removeEventListener("offline", off);
    };
  },
};

interface InFlight {
  resolve(reply: Message): void;
  reject(err: Disconnected): void;
}

/** A frame received and not handled yet, with the socket it came from. */
interface Incoming {
  ws: SocketLike;
  data: ArrayBuffer | ArrayBufferView;
}

/** A reconnecting WebSocket carrying MessagePack requests, replies, events and notices. */
export class Connection {
  private opts: ConnectionOptions;
  private timers: Timers;
  private online: OnlineSignal;
  private random: () => number;
  private b: Backoff;
  private ws: SocketLike | null = null;
  private _state: ConnState = "idle";
  private nextId = 1;
  private inflight = new Map<number, InFlight>();
  private retryTimer: unknown = null;
  private connectTimer: unknown = null;
  private _retryAt: number | null = null;
  private failures = 0;
  private openedAt = 0;
  private unlisten: () => void = () => {};
  private scheduler: Scheduler;
  private budget: number;
  private target: number;
  private limit = SLICE_FIRST_MESSAGES; // messages the next slice may take
  private inbox: Incoming[] = []; // received, not handled yet (from inbox[head] on)
  private head = 0;
  private drainScheduled = false;
  private draining = false;

  constructor(opts: ConnectionOptions) {
    this.opts = opts;
    this.timers = opts.timers ?? browserTimers;
    this.online = opts.online ?? browserOnline;
    this.random = opts.random ?? Math.random;
    this.b = { ...DEFAULT_BACKOFF, ...opts.backoff };
    this.scheduler = opts.scheduler ?? browserScheduler();
    this.budget = opts.sliceBudgetMs ?? SLICE_BUDGET_MS;
    this.target = opts.sliceTargetMs ?? SLICE_TARGET_MS;
  }

  /** How many received messages wait to be handled. */
  get queued(): number {
    return this.inbox.length - this.head;
  }

  get state(): ConnState {
    return this._state;
  }

  /** When the next attempt is due (ms since the epoch), or null when none is scheduled. */
  get retryAt(): number | null {
    return this._retryAt;
  }

  /** Ms until the next attempt while waiting; 0 otherwise. */
  retryInMs(): number {
    return this._retryAt === null ? 0 : Math.max(0, this._retryAt - this.timers.now());
  }

  /** Starts connecting (no-op unless idle). Listens to online/offline until stop(). */
  start(): void {
    if (this._state !== "idle") return;
    this.unlisten = this.online.listen((up) => this.onOnlineChange(up));
    if (this.online.isOnline()) this.open();
    else this.setState("offline");
  }

  /** Closes for good: no reconnect; in-flight requests are rejected. */
  stop(): void {
    if (this._state === "closed") return;
    this.unlisten();
    this.clearTimers();
    this.clearInbox();
    const ws = this.ws;
    this.ws = null;
    if (ws) {
      detach(ws);
      try {
        ws.close(CLOSE.normal, "bye");
      } catch {
        /* already closing */
      }
    }
    this.failInflight();
    this.setState("closed");
  }

  /**
   * Drops the current socket (if any) and connects again at once: used to resynchronise
   * (a gap in the events) and by a "Retry now" button.
   */
  reconnectNow(): void {
    if (this._state === "closed" || this._state === "idle") return;
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      this.clearInbox(); // what the old socket still had queued is replayed after the rejoin
      detach(ws);
      try {
        ws.close(CLOSE.normal, "resync");
      } catch {
        /* ignore */
      }
      this.failInflight();
      this.opts.onDown?.({ code: CLOSE.normal, reason: "resync" });
    }
    this.clearTimers();
    this.open();
  }

  /**
   * Gives up the current socket as if it had failed (e.g. a join refused for a passing reason):
   * the usual backoff schedules the next attempt.
   */
  drop(reason: string): void {
    const ws = this.ws;
    if (!ws) return;
    try {
      ws.close(CLOSE.normal, reason);
    } catch {
      /* ignore */
    }
    this.onSocketClosed(ws, 4000, reason);
  }

  /**
   * Sends `msg` with a fresh id and resolves with the reply (`ok` or `err`: the caller decides).
   * Rejects with Disconnected when the socket is not open, or closes before the reply.
   */
  request(msg: Record<string, unknown> & { t: string }): Promise<Message> {
    return new Promise<Message>((resolve, reject) => this.call(msg, resolve, reject));
  }

  /**
   * The same as request() with callbacks, called synchronously as the reply is dispatched (before
   * the next frame is handled): the join's reply must be taken before the snapshot after it.
   */
  call(msg: Record<string, unknown> & { t: string }, onReply: (reply: Message) => void, onLost: (err: Disconnected) => void): void {
    const ws = this.ws;
    if (!ws || this._state !== "open") {
      onLost(new Disconnected(false));
      return;
    }
    const id = this.nextId++;
    this.inflight.set(id, { resolve: onReply, reject: onLost });
    try {
      ws.send(encodeMessage({ ...msg, id }));
    } catch {
      this.inflight.delete(id);
      onLost(new Disconnected(false));
    }
  }

  /** How many requests await their reply. */
  get pendingReplies(): number {
    return this.inflight.size;
  }

  private open(): void {
    this._retryAt = null;
    const Impl = this.opts.WebSocketImpl ?? (globalThis.WebSocket as unknown as SocketFactory);
    let ws: SocketLike;
    try {
      const url = typeof this.opts.url === "function" ? this.opts.url() : this.opts.url;
      ws = new Impl(url, this.opts.protocol ?? "refine.v1");
    } catch {
      this.setState("connecting");
      this.scheduleRetry(1006);
      return;
    }
    ws.binaryType = "arraybuffer";
    this.ws = ws;
    this.setState("connecting");
    this.connectTimer = this.timers.setTimeout(() => {
      this.connectTimer = null;
      if (this.ws === ws && this._state === "connecting") {
        detach(ws);
        try {
          ws.close();
        } catch {
          /* ignore */
        }
        this.onSocketClosed(ws, 1006, "connect timeout");
      }
    }, this.b.connectTimeoutMs);
    ws.onopen = () => {
      if (this.ws !== ws) return;
      this.clearConnectTimer();
      this.openedAt = this.timers.now();
      this.setState("open");
      this.opts.onOpen();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      const data = ev.data;
      if (!(data instanceof ArrayBuffer) && !ArrayBuffer.isView(data)) return; // text: not ours
      this.inbox.push({ ws, data: data as ArrayBuffer | ArrayBufferView });
      this.scheduleDrain();
    };
    ws.onclose = (ev) => {
      // What arrived before the close is handled first, as it was received (replies resolved,
      // events applied), before the close fails the requests still in flight.
      if (this.ws === ws && this.queued) this.runSlice(Infinity);
      this.onSocketClosed(ws, ev.code, ev.reason);
    };
    ws.onerror = () => {}; // a close always follows
  }

  private scheduleDrain(): void {
    if (this.drainScheduled || this.draining) return;
    this.drainScheduled = true;
    this.scheduler.schedule(() => {
      this.drainScheduled = false;
      this.runSlice(this.budget);
    });
  }

  /**
   * Handles queued messages in arrival order, as one batch, until the queue is empty or `budget`
   * ms have passed; schedules the next slice for the rest. Messages of a socket given up since
   * they arrived are skipped.
   */
  private runSlice(budget: number): void {
    if (this.draining || !this.queued) return;
    this.draining = true;
    const start = this.scheduler.now();
    const max = budget === Infinity ? Infinity : this.limit;
    let handled = 0;
    this.opts.onBatchStart?.();
    try {
      while (this.head < this.inbox.length) {
        const next = this.inbox[this.head];
        this.inbox[this.head++] = undefined as unknown as Incoming; // let the frame go
        if (next.ws === this.ws) {
          const msg = decodeMessage(next.data);
          if (msg) {
            handled++;
            this.dispatch(msg);
          }
        }
        if (this.head < this.inbox.length && (handled >= max || this.scheduler.now() - start >= budget)) break;
      }
    } finally {
      if (this.head >= this.inbox.length) this.clearInbox();
      this.draining = false;
      try {
        this.opts.onBatchEnd?.();
      } finally {
        if (this.queued) this.scheduleDrain();
        // The views render in a microtask queued by the slice's first change: this one runs
        // after it, and sees how long the slice's task took with the render.
        if (max !== Infinity && handled > 0) queueMicrotask(() => this.adapt(start, handled, handled >= max));
      }
    }
  }

  /**
   * Sets the next slice's message limit from how long this one's task took (SLICE_TARGET_MS).
   * A slice of fewer than SLICE_MIN_MESSAGES says nothing about the cost of a message (a slow
   * one of a few messages is the views' fixed cost, or a first render): it changes nothing.
   */
  private adapt(start: number, handled: number, full: boolean): void {
    if (handled < SLICE_MIN_MESSAGES) return;
    const took = this.scheduler.now() - start;
    if (took > this.target) {
      this.limit = Math.max(SLICE_MIN_MESSAGES, Math.min(this.limit, Math.floor((handled * this.target) / took)));
    } else if (full) {
      this.limit = Math.min(SLICE_MAX_MESSAGES, Math.ceil(this.limit * 1.25));
    }
  }

  /** How many messages the next slice may take (adapted to how long slices take; tests). */
  get sliceLimit(): number {
    return this.limit;
  }

  private clearInbox(): void {
    this.inbox = [];
    this.head = 0;
  }

  private dispatch(msg: Message): void {
    if ((msg.t === "ok" || msg.t === "err") && typeof msg.id === "number") {
      const waiting = this.inflight.get(msg.id);
      if (waiting) {
        this.inflight.delete(msg.id);
        waiting.resolve(msg);
        return;
      }
    }
    this.opts.onMessage(msg);
  }

  private onSocketClosed(ws: SocketLike, code: number, reason: string): void {
    if (this.ws !== ws) return;
    this.ws = null;
    this.clearInbox();
    detach(ws);
    this.clearConnectTimer();
    const wasOpen = this._state === "open";
    if (wasOpen && this.timers.now() - this.openedAt >= this.b.stableMs) this.failures = 0;
    this.failInflight();
    this.opts.onDown?.({ code, reason });
    if (this._state === "closed") return;
    this.scheduleRetry(code);
  }

  private scheduleRetry(code: number): void {
    if (!this.online.isOnline()) {
      this._retryAt = null;
      this.setState("offline");
      return;
    }
    let delay = backoffDelay(this.failures, this.b, this.random);
    if (code === CLOSE.policy) delay = Math.max(delay, this.b.policyMs);
    this.failures++;
    this._retryAt = this.timers.now() + delay;
    this.retryTimer = this.timers.setTimeout(() => {
      this.retryTimer = null;
      if (this._state === "waiting") this.open();
    }, delay);
    this.setState("waiting");
  }

  private onOnlineChange(up: boolean): void {
    if (this._state === "closed" || this._state === "idle") return;
    if (up && (this._state === "waiting" || this._state === "offline")) {
      this.clearTimers();
      this.open();
    } else if (!up && this._state === "waiting") {
      this.clearTimers();
      this._retryAt = null;
      this.setState("offline");
    }
    // An open socket is left alone when the browser says offline: it may still work (a local
    // server), and if it does not, its close starts the retries.
  }

  private failInflight(): void {
    const waiting = [...this.inflight.values()];
    this.inflight.clear();
    for (const w of waiting) w.reject(new Disconnected(true));
  }

  private clearConnectTimer(): void {
    if (this.connectTimer !== null) this.timers.clearTimeout(this.connectTimer);
    this.connectTimer = null;
  }

  private clearTimers(): void {
    this.clearConnectTimer();
    if (this.retryTimer !== null) this.timers.clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this._retryAt = null;
  }

  private setState(s: ConnState): void {
    if (this._state === s) return;
    this._state = s;
    this.opts.onState?.(s);
  }
}

function detach(ws: SocketLike): void {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = null;
}
