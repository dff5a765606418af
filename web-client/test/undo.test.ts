// Undo and unsplit in the client core: the events (item.unsplit, events marked `undo`), the row's
// split sums, and RoomClient's lastChange / undo() / unsplitItem() against a fake socket.
import { beforeEach, describe, expect, test } from "vitest";
import { applyEvent, applySnapshot, emptyView } from "../src/lib/state";
import { splitSums } from "../src/lib/stats";
import { RoomClient } from "../src/lib/client.svelte";
import * as storage from "../src/lib/storage";
import type { RoomView } from "../src/lib/api";
import type { Message } from "../src/lib/protocol";
import { FakeClock, FakeOnline, FakeScheduler, FakeSocket, MemoryStorage, flush, item, person, snapshot } from "./fakes";

const ME = "pMe";
const DANA = "pDana";

const base = () =>
  snapshot({
    seq: 10,
    focus: "i4",
    participants: [person(ME, "Ana", "facilitator"), person(DANA, "Dana", "owner")],
    items: [
      item("i1", "a1", { status: "split", estimate: "8" }),
      item("i4", "a1V", { parent: "i1", estimate: "5" }),
      item("i5", "a1k", { parent: "i1", estimate: "?" }),
      item("i2", "a2"),
    ],
  });

function room(): RoomView {
  const v = emptyView();
  applySnapshot(v, base());
  return v;
}

function ev(v: RoomView, t: string, fields: Record<string, unknown>, by: string | null = DANA): Message {
  return { t, seq: v.seq + 1, at: 1_800_000_000_000 + v.seq, by, ...fields };
}

describe("events", () => {
  test("item.unsplit removes the children, gives the parent its status and the focus back", () => {
    const v = room();
    expect(applyEvent(v, ev(v, "item.unsplit", { item: "i1", children: ["i4", "i5"], status: "ready", focus: "i1" }), ME)).toBe("applied");
    expect(v.items.map((i) => i.id)).toEqual(["i1", "i2"]);
    expect(v.items[0].status).toBe("ready");
    expect(v.focus).toBe("i1");
    expect(v.activity.at(-1)!.text).toBe("Dana merged the split of “Story i1” back");
  });

  test("an undo is the ordinary events, marked: applied as usual, said in the feed", () => {
    const v = room();
    applyEvent(v, ev(v, "item.moved", { item: "i2", after: null, rank: "a0" }), ME);
    applyEvent(v, ev(v, "item.moved", { item: "i2", after: "i5", rank: "a2", undo: 11 }, ME), ME);
    expect(v.items.map((i) => i.id)).toEqual(["i1", "i4", "i5", "i2"]);
    expect(v.activity.at(-1)!.text).toBe("You moved “Story i2” below “Story i5” (undo)");
    applyEvent(v, ev(v, "item.added", { item: item("i9", "a3", { title: "Back" }), undo: 7 }, ME), ME);
    expect(v.activity.at(-1)!.text).toBe("You added “Back” (undo)");
  });
});

describe("split sums on the rows", () => {
  test("a split parent with an estimated child gets its children's sum against its estimate", () => {
    const v = room();
    const s = splitSums(v.items);
    expect([...s.keys()]).toEqual(["i1"]);
    expect(s.get("i1")).toMatchObject({ sum: 5, counted: 1, uncounted: 1, parent: 8, text: "Children 5 vs story 8 (−3)" });
  });

  test("none for a parent whose children are not estimated, nor for other items", () => {
    expect(splitSums([item("i1", "a1", { status: "split" }), item("i2", "a2", { parent: "i1" })]).size).toBe(0);
    expect(splitSums([item("i1", "a1"), item("i2", "a2")]).size).toBe(0);
  });
});

describe("RoomClient", () => {
  let clock: FakeClock;
  let client: RoomClient;

  beforeEach(() => {
    FakeSocket.all = [];
    storage.useStorageBackend(new MemoryStorage());
    clock = new FakeClock();
    client = new RoomClient({ url: "ws://test/ws", WebSocketImpl: FakeSocket, timers: clock, online: new FakeOnline(), random: () => 0.5, scheduler: new FakeScheduler() });
  });

  async function connected(): Promise<FakeSocket> {
    const done = client.connect({ room: "R1", name: "Ana", token: "TOKf" });
    const ws = FakeSocket.last();
    ws.open();
    const join = ws.lastSent("join");
    ws.receive({ t: "ok", id: join?.id, pid: ME, secret: "S", role: "owner", name: "Ana", seq: 10, mode: "snapshot", epoch: "E1", hints: [] });
    ws.receive(base() as unknown as Record<string, unknown>);
    await done;
    return ws;
  }


  test("my change becomes lastChange; undo sends its seq and clears it", async () => {
    const ws = await connected();
    expect(client.lastChange).toBeNull();
    const p = client.moveItem("i2", null);
    ws.receive({ t: "item.moved", seq: 11, at: 1, by: ME, item: "i2", after: null, rank: "a0" });
    ws.ok(ws.lastSent("item.move"), { seq: 11 });
    await p;
    expect(client.lastChange).toEqual({ seq: 11, op: "item.move", label: "Moved “Story i2”" });
    const u = client.undo();
    await flush();
    expect(ws.lastSent("undo")).toMatchObject({ t: "undo", seq: 11 });
    ws.receive({ t: "item.moved", seq: 12, at: 2, by: ME, item: "i2", after: "i5", rank: "a2", undo: 11 });
    ws.ok(ws.lastSent("undo"), { seq: 12 });
    await u;
    expect(client.lastChange).toBeNull();
    expect(client.room.items.map((i) => i.id)).toEqual(["i1", "i4", "i5", "i2"]);
  });

  test("a change that changes nothing (ok without seq) keeps the last one", async () => {
    const ws = await connected();
    const p = client.updateItem("i2", { title: "T" });
    ws.receive({ t: "item.updated", seq: 11, at: 1, by: ME, item: "i2", set: { title: "T" } });
    ws.ok(ws.lastSent("item.update"), { seq: 11 });
    await p;
    const q = client.updateItem("i2", { title: "T" });
    ws.ok(ws.lastSent("item.update"));
    await q;
    expect(client.lastChange).toMatchObject({ seq: 11, op: "item.update", label: "Edited “T”" });
  });

  test("a refusal rejects with the server's sentence and forgets the change", async () => {
    const ws = await connected();
    const p = client.removeItem("i2");
    ws.receive({ t: "item.removed", seq: 11, at: 1, by: ME, item: "i2" });
    ws.ok(ws.lastSent("item.remove"), { seq: 11 });
    await p;
    expect(client.lastChange?.label).toBe("Removed “Story i2”");
    const u = client.undo();
    await flush();
    const msg = "Dana changed 'Story i2' after your removal, so it cannot be undone.";
    ws.receive({ t: "err", id: ws.lastSent("undo")!.id, code: "conflict", msg });
    await expect(u).rejects.toMatchObject({ code: "conflict", msg });
    expect(client.lastChange).toBeNull();
    // with nothing known, undo asks the server anyway (it may hold a change of an earlier page)
    const again = client.undo();
    await flush();
    expect(ws.lastSent("undo")!.seq).toBeUndefined();
    ws.receive({ t: "err", id: ws.lastSent("undo")!.id, code: "conflict", msg: "You have nothing to undo." });
    await expect(again).rejects.toMatchObject({ code: "conflict" });
  });

  test("unsplitItem sends item.unsplit", async () => {
    const ws = await connected();
    const p = client.unsplitItem("i1");
    await flush();
    expect(ws.lastSent("item.unsplit")).toMatchObject({ item: "i1" });
    ws.receive({ t: "item.unsplit", seq: 11, at: 1, by: ME, item: "i1", children: ["i4", "i5"], status: "draft", focus: "i1" });
    ws.ok(ws.lastSent("item.unsplit"), { seq: 11 });
    await p;
    expect(client.room.items.map((i) => i.id)).toEqual(["i1", "i2"]);
  });
});
