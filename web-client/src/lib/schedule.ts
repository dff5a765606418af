// When the incoming messages are handled: in slices, each in a task of its own, so that a burst
// of hundreds of events is applied in a few batches (one new item list and one render each)
// instead of one task, one list and one render per WebSocket message.
//
// A visible page handles them in the next animation frame (just before it paints: one render a
// frame at most). A hidden page gets no frames (requestAnimationFrame does not fire in a
// background tab), so it uses a macrotask (MessageChannel, which background tabs do not
// throttle like timers) and still keeps up with the room. Everything the browser provides is
// injectable (SchedulerEnv) so the unit tests drive it with fakes.

/** Runs callbacks in later tasks; Connection uses one to handle its incoming messages. */
export interface Scheduler {
  /** Calls `fn` once, in a later task: the next animation frame, or a macrotask when hidden. */
  schedule(fn: () => void): void;
  /** A clock (ms) for the time budget of a slice. */
  now(): number;
}

/** What the browser scheduler needs of the page (window's by default). */
export interface SchedulerEnv {
  /** requestAnimationFrame, or null where there is none. */
  requestFrame: ((fn: () => void) => unknown) | null;
  /** Whether the page is hidden (document.visibilityState), when frames do not come. */
  hidden(): boolean;
  /** Calls `fn` on every visibility change. */
  onVisibilityChange(fn: () => void): void;
  /** Runs `fn` in a new task soon (MessageChannel; setTimeout 0 where there is none). */
  macrotask(fn: () => void): void;
  /** A last resort timer, should no frame come although the page says it is visible. */
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
  now(): number;
}

/** A frame that has not come after this long is not waited for (e.g. an occluded window). */
export const FRAME_BACKSTOP_MS = 100;

/** requestAnimationFrame while visible, a macrotask while hidden (see the file's comment). */
export function frameScheduler(env: SchedulerEnv = browserEnv()): Scheduler {
  // Callbacks waiting for a frame: run by whichever comes first (the frame, a switch to hidden,
  // the backstop timer); each runs once.
  const waiting = new Set<() => void>();
  let listening = false;
  const toMacrotask = () => {
    if (!env.hidden() || !waiting.size) return;
    const fns = [...waiting];
    waiting.clear();
    for (const run of fns) env.macrotask(run);
  };
  return {
    now: () => env.now(),
    schedule(fn) {
      if (!env.requestFrame || env.hidden()) {
        env.macrotask(fn);
        return;
      }
      if (!listening) {
        listening = true;
        env.onVisibilityChange(toMacrotask);
      }
      let done = false;
      let timer: unknown = null;
      const run = () => {
        if (done) return;
        done = true;
        waiting.delete(run);
        if (timer !== null) env.clearTimeout(timer);
        fn();
      };
      waiting.add(run);
      env.requestFrame(run);
      timer = env.setTimeout(run, FRAME_BACKSTOP_MS);
    },
  };
}

/** The page's own: requestAnimationFrame, document.visibilityState, MessageChannel. */
export function browserEnv(): SchedulerEnv {
  const g = globalThis as typeof globalThis & { document?: Document };
  const doc = typeof g.document === "undefined" ? null : g.document;
  const raf = doc && typeof g.requestAnimationFrame === "function" ? (fn: () => void) => g.requestAnimationFrame(() => fn()) : null;
  let macrotask: (fn: () => void) => void;
  if (typeof g.MessageChannel === "function") {
    // One channel; callbacks in the order they were posted.
    const channel = new g.MessageChannel();
    const queue: (() => void)[] = [];
    channel.port1.onmessage = () => queue.shift()?.();
    macrotask = (fn) => {
      queue.push(fn);
      channel.port2.postMessage(null);
    };
  } else {
    macrotask = (fn) => void g.setTimeout(fn, 0);
  }
  const perf = typeof g.performance !== "undefined" ? g.performance : null;
  return {
    requestFrame: raf,
    hidden: () => !!doc && doc.visibilityState === "hidden",
    onVisibilityChange: (fn) => doc?.addEventListener("visibilitychange", fn),
    macrotask,
    setTimeout: (fn, ms) => g.setTimeout(fn, ms),
    clearTimeout: (h) => g.clearTimeout(h as ReturnType<typeof setTimeout>),
    now: () => (perf ? perf.now() : Date.now()),
  };
}

let shared: Scheduler | null = null;

/** The page's scheduler (created on first use). */
export function browserScheduler(): Scheduler {
  return (shared ??= frameScheduler());
}
