// Incoming messages handled in slices (connection.ts + schedule.ts) and applied in batches
// (state.ts beginBatch/endBatch, RoomClient): order, exactly once, gaps, replies after their
// events, the join before the snapshot, closes, the adaptive slice size, hidden tabs.

import { beforeEach, describe, expect, test } from "vitest";
import { proxy } from "svelte/internal/client";
import { Connection, SLICE_FIRST_MESSAGES, SLICE_MIN_MESSAGES, type ConnState } from "../src/lib/connection";
import { FRAME_BACKSTOP_MS, frameScheduler } from "../src/lib/schedule";
import { RoomClient } from "../src/lib/client.svelte";
import { ACTIVITY_MAX, applyEvent, applySnapshot, beginBatch, currentItems, emptyView, endBatch, findItem, inBatch, isSorted } from "../src/lib/state";
import { clockTime } from "../src/lib/format";
import * as storage from "../src/lib/storage";
import type { RoomView } from "../src/lib/api";
import type { Message } from "../src/lib/protocol";
import { FakeClock, FakeOnline, FakePage, FakeScheduler, FakeSocket, MemoryStorage, flush, item, person, rankOf, snapshot } from "./fakes";

const ME = "pMe";
const BEN = "pBen";

beforeEach(() => {
  FakeSocket.all = [];
  storage.useStorageBackend(new MemoryStorage());
});

// ---------------------------------------------------------------------------------------------
// Connection: the inbox

function setupConn(sched: FakeScheduler, opts: { sliceBudgetMs?: number; sliceTargetMs?: number } = {}) {
  const log: string[] = [];
  const got: Message[] = [];
  const states: ConnState[] = [];
  const conn = new Connection({
    url: "ws://test/ws",
    WebSocketImpl: FakeSocket,
    timers: new FakeClock(),
    online: new FakeOnline(),
    scheduler: sched,
    ...opts,
    onOpen: () => {},
    onMessage: (m) => {
      got.push(m);
      log.push(`msg ${m.t === "snapshot" ? m.t : m.seq}`);
    },
    onBatchStart: () => log.push("start"),
    onBatchEnd: () => log.push("end"),
    onState: (s) => states.push(s),
  });
  conn.start();
  const ws = FakeSocket.last();
  ws.open();
  return { conn, ws, log, got, states };
}

const ev = (seq: number, fields: Record<string, unknown> = {}) => ({ t: "focus", seq, at: seq, by: BEN, item: null, ...fields });

describe("the inbox", () => {
  test("messages wait for a slice; a slice handles them in arrival order as one batch", () => {
    const sched = new FakeScheduler(true);
    const { conn, ws, log, got } = setupConn(sched);
    for (let s = 1; s <= 3; s++) ws.receive(ev(s));
    expect(got).toEqual([]); // not in the socket's own task
    expect(conn.queued).toBe(3);
    expect(sched.waiting).toBe(1); // one slice scheduled for all three
    sched.frame();
    expect(log).toEqual(["start", "msg 1", "msg 2", "msg 3", "end"]);
    expect(conn.queued).toBe(0);
    expect(sched.waiting).toBe(0);
  });

  test("a slice yields at its time budget; the rest follows in later slices, in order", () => {
    const sched = new FakeScheduler(true);
    sched.cost = 1; // every reading of the clock: 1 ms later
    const { ws, log, got } = setupConn(sched, { sliceBudgetMs: 8 });
    for (let s = 1; s <= 30; s++) ws.receive(ev(s));
    sched.frame();
    const first = got.length;
    expect(first).toBeGreaterThan(0);
    expect(first).toBeLessThan(30);
    expect(sched.waiting).toBe(1);
    const frames = sched.frames();
    expect(frames).toBeGreaterThan(1);
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    // every message inside a batch, batches never nested
    let open = false;
    for (const l of log) {
      if (l === "start") expect((open = !open)).toBe(true);
      else if (l === "end") expect((open = !open)).toBe(false);
      else expect(open).toBe(true);
    }
  });

  test("a reply resolves in its place: events before it handed on first, its callbacks after the batch", async () => {
    const sched = new FakeScheduler(true);
    const { conn, ws, log } = setupConn(sched);
    const p = conn.request({ t: "item.move", item: "i1", after: null }).then((r) => log.push(`reply ${r.seq}`));
    ws.receive(ev(1));
    ws.ok(ws.sent[0], { seq: 1 });
    ws.receive(ev(2));
    sched.frame();
    await p;
    expect(log).toEqual(["start", "msg 1", "msg 2", "end", "reply 1"]);
  });

  test("a sync callback (the join's) runs between the messages around it", () => {
    const sched = new FakeScheduler(true);
    const { conn, ws, log } = setupConn(sched);
    conn.call({ t: "join", room: "R1" }, () => log.push("join reply"), () => log.push("lost"));
    ws.ok(ws.lastSent("join"), { seq: 0 });
    ws.receive({ t: "snapshot", seq: 0 });
    sched.frame();
    expect(log).toEqual(["start", "join reply", "msg snapshot", "end"]);
  });

  test("a close handles what arrived before it first: the reply resolves, it is not lost", async () => {
    const sched = new FakeScheduler(true);
    const { conn, ws, log, states } = setupConn(sched);
    const p = conn.request({ t: "focus", item: null });
    ws.receive(ev(1));
    ws.ok(ws.sent[0], { seq: 1 });
    ws.serverClose(1001);
    await expect(p).resolves.toMatchObject({ t: "ok", seq: 1 });
    expect(log).toEqual(["start", "msg 1", "end"]);
    expect(states.at(-1)).toBe("waiting");
    sched.frames(); // the slice scheduled before the close finds nothing
    expect(log).toHaveLength(3);
  });

  test("what the old socket had queued is dropped by a resync (the rejoin replays it)", () => {
    const sched = new FakeScheduler(true);
    const { conn, ws, got } = setupConn(sched);
    ws.receive(ev(1));
    ws.receive(ev(2));
    conn.reconnectNow();
    const next = FakeSocket.last();
    expect(next).not.toBe(ws);
    next.open();
    next.receive(ev(1, { fresh: true }));
    sched.frames();
    expect(got).toEqual([expect.objectContaining({ seq: 1, fresh: true })]);
  });

  test("stop() drops the queue", () => {
    const sched = new FakeScheduler(true);
    const { conn, ws, got } = setupConn(sched);
    ws.receive(ev(1));
    conn.stop();
    sched.frames();
    expect(got).toEqual([]);
  });

  test("the slice size adapts: cut when a slice's task runs over its target, raised when full ones fit", async () => {
    const sched = new FakeScheduler(true);
    let msCost = 1;
    const { conn, ws, got } = setupConn(sched, { sliceBudgetMs: 1e9, sliceTargetMs: 40 });
    // the views' render after the slice is what the handlers cost here: 1 ms a message
    const onMessage = got.push.bind(got);
    got.push = (...m: Message[]) => {
      sched.t += msCost;
      return onMessage(...m);
    };
    expect(conn.sliceLimit).toBe(SLICE_FIRST_MESSAGES);
    for (let s = 1; s <= 400; s++) ws.receive(ev(s));
    sched.frame();
    expect(got).toHaveLength(SLICE_FIRST_MESSAGES);
    await flush();
    expect(conn.sliceLimit).toBe(40); // 100 messages took 100 ms: 40 fit in 40 ms
    sched.frame();
    expect(got).toHaveLength(SLICE_FIRST_MESSAGES + 40);
    await flush();
    expect(conn.sliceLimit).toBe(50); // a full slice within its target: a quarter more
    msCost = 0.1;
    sched.frame();
    expect(got).toHaveLength(SLICE_FIRST_MESSAGES + 90);
    await flush();
    expect(conn.sliceLimit).toBe(63);
    msCost = 100; // a very slow page: never below the floor
    sched.frame();
    await flush();
    expect(conn.sliceLimit).toBe(SLICE_MIN_MESSAGES);
    sched.frames();
    expect(got.map((m) => m.seq)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
  });

  test("a slow slice of a few messages (a first render, a fixed cost) leaves the slice size alone", async () => {
    const sched = new FakeScheduler(true);
    const { conn, ws, got } = setupConn(sched, { sliceTargetMs: 40 });
    const onMessage = got.push.bind(got);
    got.push = (...m: Message[]) => {
      sched.t += 150;
      return onMessage(...m);
    };
    ws.receive(ev(1));
    ws.receive(ev(2));
    sched.frames();
    await flush();
    expect(got).toHaveLength(2);
    expect(conn.sliceLimit).toBe(SLICE_FIRST_MESSAGES);
  });
});

// ---------------------------------------------------------------------------------------------
// The scheduler: frames while visible, macrotasks while hidden

describe("frameScheduler", () => {
  test("visible: the next frame, once (the backstop timer is cleared)", () => {
    const page = new FakePage();
    const s = frameScheduler(page);
    let runs = 0;
    s.schedule(() => runs++);
    expect(page.frameQueue).toHaveLength(1);
    expect(page.taskQueue).toHaveLength(0);
    expect([...page.timers.values()].map((t) => t.ms)).toEqual([FRAME_BACKSTOP_MS]);
    page.runFrame();
    expect(runs).toBe(1);
    expect(page.timers.size).toBe(0);
    page.runTimers();
    expect(runs).toBe(1);
  });

  test("hidden: no frame comes, a macrotask runs it", () => {
    const page = new FakePage();
    page.hiddenNow = true;
    const s = frameScheduler(page);
    let runs = 0;
    s.schedule(() => runs++);
    expect(page.frameQueue).toHaveLength(0);
    page.runTasks();
    expect(runs).toBe(1);
  });

  test("hidden while waiting for a frame: moved to a macrotask, run once", () => {
    const page = new FakePage();
    const s = frameScheduler(page);
    let runs = 0;
    s.schedule(() => runs++);
    page.setHidden(true);
    page.runTasks();
    expect(runs).toBe(1);
    page.runFrame(); // a frame much later (visible again)
    page.runTimers();
    expect(runs).toBe(1);
  });

  test("visible but no frame comes (e.g. an occluded window): the backstop timer runs it", () => {
    const page = new FakePage();
    const s = frameScheduler(page);
    let runs = 0;
    s.schedule(() => runs++);
    page.runTimers();
    expect(runs).toBe(1);
    page.runFrame();
    expect(runs).toBe(1);
  });

  test("no requestAnimationFrame at all: macrotasks", () => {
    const page = new FakePage();
    page.requestFrame = null;
    const s = frameScheduler(page);
    let runs = 0;
    s.schedule(() => runs++);
    page.runTasks();
    expect(runs).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------------
// state.ts batches

describe("batches of the room model", () => {
  function room(n = 20): RoomView {
    const v = emptyView();
    applySnapshot(v, snapshot({ seq: 0, participants: [person(BEN, "Ben")], items: Array.from({ length: n }, (_, i) => item(`i${i}`, rankOf(i * 10))) }));
    return v;
  }
  const move = (v: RoomView, id: string, rank: string): Message => ({ t: "item.moved", seq: v.seq + 1, at: 1, by: BEN, item: id, after: null, rank });
  const upd = (v: RoomView, id: string, title: string): Message => ({ t: "item.updated", seq: v.seq + 1, at: 1, by: BEN, item: id, set: { title } });

  test("one new items list per batch; reads inside the batch see the working copy", () => {
    const plain = room();
    let v = plain;
    let sets = 0;
    let items = plain.items;
    v = Object.defineProperty(plain, "items", {
      get: () => items,
      set: (x) => {
        sets++;
        items = x;
      },
    });
    const before = v.items;
    beginBatch(v);
    expect(inBatch(v)).toBe(true);
    expect(applyEvent(v, move(v, "i5", rankOf(0).slice(0, -1)), BEN)).toBe("applied");
    expect(applyEvent(v, upd(v, "i5", "Moved and renamed"), BEN)).toBe("applied");
    expect(applyEvent(v, { t: "item.added", seq: v.seq + 1, at: 1, by: BEN, item: item("new", rankOf(15)) }, BEN)).toBe("applied");
    expect(applyEvent(v, { t: "item.removed", seq: v.seq + 1, at: 1, by: BEN, item: "i7" }, BEN)).toBe("applied");
    expect(sets).toBe(0);
    expect(v.items).toBe(before); // nothing published yet
    expect(before.map((i) => i.id)).toEqual(Array.from({ length: 20 }, (_, i) => `i${i}`)); // and not edited
    expect(currentItems(v)[0].id).toBe("i5");
    expect(findItem(v, "i5")?.title).toBe("Moved and renamed");
    expect(findItem(v, "i7")).toBeUndefined();
    expect(findItem(v, "new")).toBeDefined();
    endBatch(v);
    expect(sets).toBe(1);
    expect(inBatch(v)).toBe(false);
    expect(v.items.map((i) => i.id).slice(0, 3)).toEqual(["i5", "i0", "i1"]);
    expect(v.items).toHaveLength(20);
    expect(isSorted(v.items)).toBe(true);
    expect(findItem(v, "i5")?.title).toBe("Moved and renamed");
    endBatch(v); // unmatched: nothing
    expect(sets).toBe(1);
  });

  test("a batch ends with the same model as the events one by one (items, feed, seq, highlights)", () => {
    const events = (v: RoomView) => {
      const out: Message[] = [];
      for (let k = 0; k < 120; k++) {
        const id = `i${(k * 7) % 20}`;
        const seq = 1 + k;
        out.push(
          k % 3 === 0
            ? { t: "item.moved", seq, at: seq, by: BEN, item: id, after: null, rank: rankOf((k * 37) % 200) + "x" }
            : k % 3 === 1
              ? { t: "item.updated", seq, at: seq, by: BEN, item: id, set: { title: `T${k}` } }
              : k === 62
                ? { t: "items.reranked", seq, at: seq, by: BEN, ranks: Object.fromEntries(v.items.map((it, i) => [it.id, rankOf(1000 - i)])) }
                : { t: "item.added", seq, at: seq, by: BEN, item: item(`n${k}`, rankOf((k * 13) % 200) + "k") },
        );
      }
      return out;
    };
    const one = room();
    for (const e of events(one)) expect(applyEvent(one, e, ME)).toBe("applied");
    const batched = proxy(room());
    beginBatch(batched);
    for (const e of events(batched)) expect(applyEvent(batched, e, ME)).toBe("applied");
    endBatch(batched);
    expect(batched.items.map((i) => [i.id, i.rank, i.title])).toEqual(one.items.map((i) => [i.id, i.rank, i.title]));
    expect(batched.seq).toBe(120);
    expect(batched.activity).toHaveLength(ACTIVITY_MAX);
    expect(batched.activity.map((a) => a.text)).toEqual(one.activity.map((a) => a.text));
    expect({ ...batched.changedAt }).toEqual(one.changedAt);
  });

  test("a snapshot inside a batch replaces the edits before it; events after it apply to it", () => {
    const v = room();
    beginBatch(v);
    applyEvent(v, upd(v, "i1", "lost"), BEN);
    applySnapshot(v, snapshot({ seq: 50, items: [item("a", "a1"), item("b", "a2")] }));
    expect(v.items.map((i) => i.id)).toEqual(["a", "b"]);
    expect(applyEvent(v, { t: "item.updated", seq: 51, at: 1, by: BEN, item: "b", set: { title: "B" } }, ME)).toBe("applied");
    endBatch(v);
    expect(v.items.map((i) => [i.id, i.title])).toEqual([
      ["a", "Story a"],
      ["b", "B"],
    ]);
  });

  test("nested batches publish at the outermost end", () => {
    const v = room();
    const before = v.items;
    beginBatch(v);
    beginBatch(v);
    applyEvent(v, upd(v, "i1", "x"), BEN);
    endBatch(v);
    expect(v.items).toBe(before);
    endBatch(v);
    expect(v.items).not.toBe(before);
    expect(findItem(v, "i1")?.title).toBe("x");
  });
});

// ---------------------------------------------------------------------------------------------
// RoomClient over batches

describe("RoomClient with batched messages", () => {
  let sched: FakeScheduler;
  let client: RoomClient;
  const N = 200;

  const joinOk = (req: Message | undefined, fields: Record<string, unknown> = {}) => ({
    t: "ok",
    id: req?.id,
    pid: ME,
    secret: "S",
    role: "facilitator",
    name: "Ana",
    seq: 2,
    mode: "snapshot",
    epoch: "E1",
    hints: [],
    ...fields,
  });
  const base = () =>
    snapshot({
      seq: 2,
      participants: [person(ME, "Ana", "facilitator"), person(BEN, "Ben", "member")],
      items: Array.from({ length: N }, (_, i) => item(`i${i}`, rankOf(i * 10))),
    }) as unknown as Record<string, unknown>;

  beforeEach(() => {
    sched = new FakeScheduler(true);
    client = new RoomClient({ url: "ws://test/ws", WebSocketImpl: FakeSocket, timers: new FakeClock(), online: new FakeOnline(), random: () => 0.5, scheduler: sched });
  });

  async function connected(): Promise<FakeSocket> {
    const done = client.connect({ room: "R1", name: "Ana", token: "T" });
    const ws = FakeSocket.last();
    ws.open();
    // the join's reply and the snapshot arrive together: one slice, the reply taken first
    ws.receive(joinOk(ws.lastSent("join")));
    ws.receive(base());
    expect(client.status).toBe("connecting");
    expect(sched.frames()).toBe(1);
    await done;
    expect(client.status).toBe("connected");
    expect(client.room.items).toHaveLength(N);
    return ws;
  }

  /** A burst: moves and edits by Ben, from seq `from`. */
  function burst(from: number, n: number): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (let k = 0; k < n; k++) {
      const seq = from + k;
      const id = `i${(k * 7919) % N}`;
      out.push(
        k % 2
          ? { t: "item.moved", seq, at: seq, by: BEN, item: id, after: null, rank: rankOf((k * 104_729) % (N * 10)) + "m" }
          : { t: "item.updated", seq, at: seq, by: BEN, item: id, set: { title: `Burst ${k}` } },
      );
    }
    return out;
  }

  test("a burst of 500 events: a few slices, seq order, each event once, one items list per slice", async () => {
    const ws = await connected();
    const events = burst(3, 500);
    // the same events one by one on a plain model: what the client must end with
    const expected = emptyView();
    applySnapshot(expected, base() as never);
    for (const e of events) expect(applyEvent(expected, e as Message, ME)).toBe("applied");

    sched.cost = 0.05; // 20 messages per ms: the 8 ms budget cuts slices too
    const lists = new Set<unknown>([client.room.items]);
    for (let k = 0; k < events.length; k++) {
      ws.receive(events[k]);
      if (k % 50 === 49) ws.receive(events[k - 10]); // a duplicate now and then: ignored
    }
    const slicesBefore = sched.slices;
    while (sched.waiting) {
      const before = client.room.items;
      sched.frame();
      lists.add(client.room.items);
      expect(client.room.items).not.toBe(before); // each slice published one new list
    }
    const slices = sched.slices - slicesBefore;
    expect(slices).toBeGreaterThan(1);
    expect(slices).toBeLessThan(20);
    expect(lists.size).toBe(slices + 1);
    expect(client.room.seq).toBe(502);
    expect(client.room.items.map((i) => [i.id, i.rank, i.title])).toEqual(expected.items.map((i) => [i.id, i.rank, i.title]));
    expect(client.room.activity.map((a) => a.seq)).toEqual(expected.activity.map((a) => a.seq));
    expect(client.room.activity).toHaveLength(ACTIVITY_MAX);
    expect(FakeSocket.all).toHaveLength(1); // no resync
  });

  test("a gap inside a slice: the events before it applied, the rest dropped, a rejoin with since", async () => {
    const ws = await connected();
    const events = burst(3, 10);
    for (const e of events.slice(0, 4)) ws.receive(e); // 3..6
    for (const e of events.slice(5)) ws.receive(e); // 8..12: 7 is missing
    sched.frames();
    expect(client.room.seq).toBe(6);
    const next = FakeSocket.last();
    expect(next).not.toBe(ws);
    next.open();
    const join = next.lastSent("join")!;
    expect(join).toMatchObject({ since: 6, epoch: "E1" });
    next.receive(joinOk(join, { seq: 12, mode: "replay" }));
    for (const e of events.slice(4)) next.receive(e); // the replay: 7..12
    sched.frames();
    expect(client.room.seq).toBe(12);
    expect(client.status).toBe("connected");
    const expected = emptyView();
    applySnapshot(expected, base() as never);
    for (const e of events) applyEvent(expected, e as Message, ME);
    expect(client.room.items.map((i) => i.id)).toEqual(expected.items.map((i) => i.id));
  });

  test("my change resolves after its event is applied: room.items shows it when the promise settles", async () => {
    const ws = await connected();
    const seen: string[][] = [];
    const p = client.moveItem("i9", null).then(() => seen.push(client.room.items.slice(0, 2).map((i) => i.id)));
    const req = ws.lastSent("item.move")!;
    // others' events, mine, its ok, more of others' in one slice
    for (const e of burst(3, 5)) ws.receive(e);
    ws.receive({ t: "item.moved", seq: 8, at: 8, by: ME, item: "i9", after: null, rank: "0" });
    ws.ok(req, { seq: 8 });
    ws.receive({ t: "item.updated", seq: 9, at: 9, by: BEN, item: "i9", set: { title: "later" } });
    sched.frames();
    await p;
    expect(seen).toEqual([["i9", expect.any(String)]]);
    expect(findItem(client.room, "i9")?.title).toBe("later");
  });

  test("my event in one slice, its ok in the next: the event is published before", async () => {
    const ws = await connected();
    const p = client.updateItem("i3", { title: "Mine" });
    const req = ws.lastSent("item.update")!;
    sched.cost = 10; // every slice takes one message
    ws.receive({ t: "item.updated", seq: 3, at: 3, by: ME, item: "i3", set: { title: "Mine" } });
    ws.ok(req, { seq: 3 });
    let settled = false;
    void p.then(() => (settled = true));
    sched.frame();
    await flush();
    expect(findItem(client.room, "i3")?.title).toBe("Mine");
    expect(settled).toBe(false);
    sched.frame();
    await flush();
    expect(settled).toBe(true);
  });

  test("presence notices and hints keep their order with the events around them", async () => {
    const ws = await connected();
    ws.receive({ t: "participant.joined", pid: "pCy", name: "Cy", role: "member" });
    ws.receive({ t: "hint", pid: "pCy", item: "i1", what: "editing" });
    ws.receive({ t: "item.removed", seq: 3, at: 3, by: BEN, item: "i1" }); // drops the hints on i1
    ws.receive({ t: "hint", pid: BEN, item: "i2", what: "dragging" });
    ws.receive({ t: "participant.left", pid: BEN });
    ws.receive({ t: "hint", pid: "pCy", item: "i4", what: "editing" });
    expect(sched.frames()).toBe(1);
    expect(client.room.hints.map((h) => [h.pid, h.item])).toEqual([["pCy", "i4"]]);
    expect(client.room.participants.find((p) => p.pid === "pCy")?.online).toBe(true);
    expect(client.room.participants.find((p) => p.pid === BEN)?.online).toBe(false);
    expect(client.room.activity.map((a) => a.text)).toEqual(["Cy joined", "Ben removed “Story i1”", "Ben left"]);
  });
});

describe("clockTime", () => {
  test("hours and minutes, one formatter for every call", () => {
    const at = new Date(2030, 0, 2, 9, 5).getTime();
    expect(clockTime(at)).toBe(new Date(at).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }));
  });
});
