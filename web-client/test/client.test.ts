import { beforeEach, describe, expect, test } from "vitest";
import { MAY_NOT_BE_SAVED, RoomClient, makeCreateRoom } from "../src/lib/client.svelte";
import { RequestError } from "../src/lib/api";
import * as storage from "../src/lib/storage";
import type { Message } from "../src/lib/protocol";
import { FakeClock, FakeOnline, FakeScheduler, FakeSocket, MemoryStorage, flush, item, person, snapshot } from "./fakes";

const ME = "pMe";
const BEN = "pBen";

let clock: FakeClock;
let online: FakeOnline;
let client: RoomClient;
let mem: MemoryStorage;

beforeEach(() => {
  FakeSocket.all = [];
  mem = new MemoryStorage();
  storage.useStorageBackend(mem);
  clock = new FakeClock();
  online = new FakeOnline();
  client = new RoomClient({ url: "ws://test/ws", WebSocketImpl: FakeSocket, timers: clock, online, random: () => 0.5, scheduler: new FakeScheduler() });
});

/**
 * A page reload: a new RoomClient with its own clock and sockets over the same localStorage
 * (the in-memory copy of the old page is gone). The old page's sockets and timers are left
 * behind, never driven again.
 */
function reload(): RoomClient {
  FakeSocket.all = [];
  storage.useStorageBackend(mem);
  clock = new FakeClock();
  online = new FakeOnline();
  client = new RoomClient({ url: "ws://test/ws", WebSocketImpl: FakeSocket, timers: clock, online, random: () => 0.5, scheduler: new FakeScheduler() });
  return client;
}

/** After a reload: connects with the stored credentials and answers the join with a snapshot. */
async function rejoinAfterReload(snap = base(), beforeJoin?: () => void): Promise<FakeSocket> {
  const done = client.connect({ room: "R1", name: "Ana" });
  beforeJoin?.();
  const ws = FakeSocket.last();
  ws.open();
  const join = ws.lastSent("join")!;
  expect(join).toMatchObject({ pid: ME, secret: "S3cret" });
  expect(join.since).toBeUndefined(); // a reloaded page knows no seq: a snapshot follows
  ws.receive(joinOk(join, { seq: snap.seq }));
  ws.receive(snap as unknown as Record<string, unknown>);
  await done;
  return ws;
}

/** The kept rows, as a reload would find them. */
function stored(): Pick<storage.StoredPending, "op" | "state" | "error">[] {
  storage.useStorageBackend(mem);
  return storage.loadPending("R1").map((p) => (p.error ? { op: p.op, state: p.state, error: p.error } : { op: p.op, state: p.state }));
}

function joinOk(req: Message | undefined, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { t: "ok", id: req?.id, pid: ME, secret: "S3cret", role: "facilitator", name: "Ana", seq: 2, mode: "snapshot", epoch: "E1", hints: [], ...fields };
}

const base = () =>
  snapshot({
    seq: 2,
    participants: [person(ME, "Ana", "facilitator"), person(BEN, "Ben", "member")],
    items: [item("i1", "a1"), item("i2", "a2")],
  });

/** Connects with a token and answers the join with a snapshot at seq 2. */
async function connected(): Promise<FakeSocket> {
  const done = client.connect({ room: "R1", name: "Ana", token: "TOKf" });
  const ws = FakeSocket.last();
  ws.open();
  ws.receive(joinOk(ws.lastSent("join")));
  ws.receive(base() as unknown as Record<string, unknown>);
  await done;
  return ws;
}

/** Drops the socket, waits out the backoff, and returns the new (open) socket. */
async function reconnect(ws: FakeSocket, code = 1001): Promise<FakeSocket> {
  ws.serverClose(code);
  await flush();
  clock.advance(client.retryInMs);
  const next = FakeSocket.last();
  expect(next).not.toBe(ws);
  next.open();
  return next;
}

function event(t: string, seq: number, fields: Record<string, unknown>, by: string | null = ME): Record<string, unknown> {
  return { t, seq, at: 1000 + seq, by, ...fields };
}

describe("joining", () => {
  test("first join with the token; credentials remembered; connected after the snapshot", async () => {
    const ws = await connected();
    const join = ws.lastSent("join")!;
    expect(join).toMatchObject({ room: "R1", name: "Ana", token: "TOKf" });
    expect(join.since).toBeUndefined();
    expect(client.status).toBe("connected");
    expect(client.me).toEqual({ pid: ME, name: "Ana", role: "facilitator" });
    expect(client.room.items.map((i) => i.id)).toEqual(["i1", "i2"]);
    const stored = storage.getRoom("R1")!;
    expect(stored).toMatchObject({ pid: ME, secret: "S3cret", roomName: "Sprint 14" });
    expect(stored.tokens.facilitator).toBe("TOKf"); // a facilitator keeps the link's token
    expect(client.tokens.facilitator).toBe("TOKf");
    expect(storage.loadName()).toBe("Ana");
    expect(storage.recentRooms().map((r) => r.room)).toEqual(["R1"]);
  });

  test("a reload rejoins with the stored pid and secret, not the token", async () => {
    storage.saveRoom("R1", { pid: ME, secret: "S3cret" });
    client.connect({ room: "R1", name: "Ana", token: "TOKf" });
    const ws = FakeSocket.last();
    ws.open();
    expect(ws.lastSent("join")).toMatchObject({ pid: ME, secret: "S3cret" });
    expect(ws.lastSent("join")!.token).toBeUndefined();
  });

  test("pid + secret refused but a token known: joins again with the token", async () => {
    storage.saveRoom("R1", { pid: "old", secret: "bad" });
    const done = client.connect({ room: "R1", name: "Ana", token: "TOKm" });
    const ws = FakeSocket.last();
    ws.open();
    ws.receive({ t: "err", id: ws.lastSent("join")!.id, code: "auth_failed", msg: "Wrong secret." });
    await flush();
    const again = ws.lastSent("join")!;
    expect(again).toMatchObject({ token: "TOKm" });
    expect(again.pid).toBeUndefined();
    ws.receive(joinOk(again, { role: "member" }));
    ws.receive(base() as unknown as Record<string, unknown>);
    await done;
    expect(storage.getRoom("R1")?.pid).toBe(ME);
    expect(client.tokens.member).toBeUndefined(); // members do not keep tokens
  });

  for (const code of ["auth_failed", "not_found", "room_full"]) {
    test(`a join refused with ${code} is fatal`, async () => {
      const done = client.connect({ room: "R1", name: "Ana", token: "bad" });
      const ws = FakeSocket.last();
      ws.open();
      ws.receive({ t: "err", id: ws.lastSent("join")!.id, code, msg: "The sentence." });
      await expect(done).rejects.toBeInstanceOf(RequestError);
      expect(client.status).toBe("failed");
      expect(client.fatal).toMatchObject({ code, msg: "The sentence." });
      clock.advance(60_000);
      expect(FakeSocket.all).toHaveLength(1);
      await expect(client.addItem({ title: "x" })).rejects.toMatchObject({ code: "not_sent" });
    });
  }

  test("a passing refusal (rate_limited) retries with backoff", async () => {
    client.connect({ room: "R1", name: "Ana", token: "t" });
    const ws = FakeSocket.last();
    ws.open();
    ws.receive({ t: "err", id: ws.lastSent("join")!.id, code: "rate_limited", msg: "Slow down." });
    await flush();
    expect(client.status).toBe("reconnecting");
    clock.advance(500);
    expect(FakeSocket.all).toHaveLength(2);
  });
});

describe("reconnecting", () => {
  test("status and countdown, then a rejoin with since + epoch and the replay applied", async () => {
    const ws = await connected();
    ws.serverClose(1001);
    await flush();
    expect(client.status).toBe("reconnecting");
    expect(client.retryInMs).toBe(500);
    clock.advance(250);
    expect(client.retryInMs).toBe(250);
    clock.advance(250);
    const ws2 = FakeSocket.last();
    expect(ws2).not.toBe(ws);
    expect(client.status).toBe("reconnecting");
    ws2.open();
    const join = ws2.lastSent("join")!;
    expect(join).toMatchObject({ room: "R1", pid: ME, secret: "S3cret", since: 2, epoch: "E1", name: "Ana" });
    expect(join.token).toBeUndefined();
    ws2.receive(
      joinOk(join, {
        mode: "replay",
        seq: 4,
        participants: [person(ME, "Ana", "facilitator"), person(BEN, "Ben", "member", false)],
        observers: { online: 0, total: 0 },
        hints: [{ pid: BEN, item: "i1", what: "editing" }],
      }),
    );
    expect(client.status).toBe("reconnecting"); // not before the replay is in
    ws2.receive(event("item.added", 3, { item: item("i3", "a3", { title: "New" }) }, BEN));
    ws2.receive(event("item.moved", 4, { item: "i3", after: null, rank: "a0" }, BEN));
    expect(client.status).toBe("connected");
    expect(client.room.items.map((i) => i.id)).toEqual(["i3", "i1", "i2"]);
    expect(client.room.seq).toBe(4);
    expect(client.room.participants.find((p) => p.pid === BEN)?.online).toBe(false);
    expect(client.room.hints).toMatchObject([{ pid: BEN, item: "i1", what: "editing" }]);
    // a replayed event that arrives again is not applied twice
    ws2.receive(event("item.added", 3, { item: item("i3", "a3") }, BEN));
    expect(client.room.items).toHaveLength(3);
  });

  test("another epoch: a snapshot replaces the state", async () => {
    const ws = await connected();
    const ws2 = await reconnect(ws);
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "snapshot", reason: "epoch", epoch: "E2", seq: 1 }));
    ws2.receive(snapshot({ seq: 1, room: { ...base().room, epoch: "E2" }, items: [item("j1", "b")] }) as unknown as Record<string, unknown>);
    expect(client.status).toBe("connected");
    expect(client.room.epoch).toBe("E2");
    expect(client.room.seq).toBe(1);
    expect(client.room.items.map((i) => i.id)).toEqual(["j1"]);
  });

  test("a gap in the events rejoins with since instead of applying out of order", async () => {
    const ws = await connected();
    ws.receive(event("item.removed", 4, { item: "i1" }, BEN)); // seq 3 is missing
    expect(client.room.items).toHaveLength(2);
    const ws2 = FakeSocket.last();
    expect(ws2).not.toBe(ws);
    ws2.open();
    expect(ws2.lastSent("join")).toMatchObject({ since: 2, epoch: "E1" });
  });
});

describe("changes", () => {
  test("a change while connected resolves with the reply (item.add gives the id)", async () => {
    const ws = await connected();
    const p = client.addItem({ title: "Checkout" });
    const req = ws.lastSent("item.add")!;
    expect(req.item).toEqual({ title: "Checkout" });
    expect("after" in req).toBe(false); // absent: the bottom
    ws.receive(event("item.added", 3, { item: item("i9", "a9", { title: "Checkout" }) }));
    ws.ok(req, { seq: 3, item: "i9" });
    await expect(p).resolves.toBe("i9");
    expect(client.pending).toEqual([]);
    const top = client.addItem({ title: "Top" }, null);
    expect(ws.lastSent("item.add")!.after).toBeNull();
    ws.receive({ t: "err", id: ws.lastSent("item.add")!.id, code: "forbidden", msg: "Observers cannot add stories." });
    await expect(top).rejects.toMatchObject({ code: "forbidden", msg: "Observers cannot add stories." });
  });

  test("split resolves the children's ids; rotate the new token", async () => {
    const ws = await connected();
    const p = client.splitItem("i1", [{ title: "A" }, { title: "B" }], "workflow");
    const req = ws.lastSent("item.split")!;
    ws.receive(event("item.split", 3, { item: "i1", pattern: "workflow", children: [item("i3", "a1V"), item("i4", "a1l")] }));
    ws.ok(req, { seq: 3 });
    await expect(p).resolves.toEqual(["i3", "i4"]);
    const r = client.rotateToken("member");
    ws.receive(event("token.rotated", 4, { role: "member" }));
    ws.ok(ws.lastSent("token.rotate"), { seq: 4, token: "NEWm" });
    await expect(r).resolves.toBe("NEWm");
    expect(client.tokens.member).toBe("NEWm");
    expect(storage.getRoom("R1")?.tokens.member).toBe("NEWm");
  });

  test("changes made while disconnected wait, go out in order after the rejoin; a refused one is shown failed", async () => {
    const ws = await connected();
    ws.serverClose(1006);
    await flush();
    const a = client.updateItem("i1", { title: "Renamed" });
    const b = client.moveItem("i2", null);
    expect(client.pending.map((p) => [p.op, p.state])).toEqual([
      ["item.update", "waiting"],
      ["item.move", "waiting"],
    ]);
    expect(client.pending[0].label).toBe("Edit “Story i1”");
    clock.advance(client.retryInMs);
    const ws2 = FakeSocket.last();
    ws2.open();
    expect(ws2.sent.map((m) => m.t)).toEqual(["join"]); // nothing before the join
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "replay", seq: 2, participants: base().participants }));
    expect(ws2.sent.map((m) => m.t)).toEqual(["join", "item.update", "item.move"]);
    expect(client.pending.map((p) => p.state)).toEqual(["sending", "sending"]);
    ws2.receive(event("item.updated", 3, { item: "i1", set: { title: "Renamed" } }));
    ws2.ok(ws2.sent[1], { seq: 3 });
    ws2.receive({ t: "err", id: ws2.sent[2].id, code: "forbidden", msg: "Only the owner or a facilitator can reorder." });
    await expect(a).resolves.toBeUndefined();
    await expect(b).rejects.toMatchObject({ code: "forbidden" });
    expect(client.pending).toMatchObject([{ op: "item.move", state: "failed", error: "Only the owner or a facilitator can reorder." }]);
    // retry, then it goes through
    client.retryPending(client.pending[0].key);
    expect(ws2.lastSent("item.move")).not.toBe(ws2.sent[2]);
    ws2.receive(event("item.moved", 4, { item: "i2", after: null, rank: "a0" }));
    ws2.ok(ws2.lastSent("item.move"), { seq: 4 });
    await flush();
    expect(client.pending).toEqual([]);
  });

  test("discarding a waiting change rejects it and never sends it", async () => {
    const ws = await connected();
    ws.serverClose(1006);
    await flush();
    const p = client.removeItem("i1");
    client.discardPending(client.pending[0].key);
    await expect(p).rejects.toMatchObject({ code: "not_sent" });
    expect(client.pending).toEqual([]);
    clock.advance(client.retryInMs);
    const ws2 = FakeSocket.last();
    ws2.open();
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "replay", seq: 2, participants: base().participants }));
    expect(ws2.sent.map((m) => m.t)).toEqual(["join"]);
  });

  test("no duplicate: an add whose reply was lost and whose event is in the replay is not resent", async () => {
    const ws = await connected();
    const p = client.addItem({ title: "Checkout" });
    ws.serverClose(1006); // the server applied it (seq 3) but the reply never came
    const ws2 = await reconnect(ws, 1006);
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "replay", seq: 3, participants: base().participants }));
    ws2.receive(event("item.added", 3, { item: item("i9", "a9", { title: "Checkout" }) }));
    await expect(p).resolves.toBe("i9");
    expect(ws2.sent.map((m) => m.t)).toEqual(["join"]);
    expect(client.room.items.filter((i) => i.title === "Checkout")).toHaveLength(1);
    expect(client.pending).toEqual([]);
  });

  test("an add whose reply was lost and that the replay shows was never applied is sent once more", async () => {
    const ws = await connected();
    const p = client.addItem({ title: "Checkout" });
    const ws2 = await reconnect(ws, 1006);
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "replay", seq: 2, participants: base().participants }));
    expect(ws2.sent.map((m) => m.t)).toEqual(["join", "item.add"]);
    ws2.receive(event("item.added", 3, { item: item("i9", "a9", { title: "Checkout" }) }));
    ws2.ok(ws2.lastSent("item.add"), { seq: 3, item: "i9" });
    await expect(p).resolves.toBe("i9");
  });

  test("after a snapshot an unverifiable add is reported as maybe not saved, not resent", async () => {
    const ws = await connected();
    const p = client.addItem({ title: "Checkout" });
    const u = client.updateItem("i1", { title: "Renamed" });
    const ws2 = await reconnect(ws, 1006);
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "snapshot", reason: "too_old", seq: 900 }));
    const snap = base();
    snap.seq = 900;
    snap.items = [item("i1", "a1", { title: "Renamed" }), item("i2", "a2")];
    ws2.receive(snap as unknown as Record<string, unknown>);
    await expect(p).rejects.toMatchObject({ code: "not_sent", msg: MAY_NOT_BE_SAVED });
    await expect(u).resolves.toBeUndefined(); // the state shows the update applied
    expect(ws2.sent.map((m) => m.t)).toEqual(["join"]);
    expect(client.pending).toMatchObject([{ op: "item.add", state: "failed", error: MAY_NOT_BE_SAVED }]);
  });
});

describe("changes across a reload", () => {
  test("a change made offline survives a reload and is sent once after the join, in order", async () => {
    const ws = await connected();
    online.set(false);
    ws.serverClose(1006);
    await flush();
    expect(client.status).toBe("offline");
    client.addItem({ title: "Checkout" }).catch(() => {});
    client.updateItem("i1", { title: "Renamed" }).catch(() => {});
    client.moveItem("i2", null).catch(() => {});
    expect(stored()).toEqual([
      { op: "item.add", state: "waiting" },
      { op: "item.update", state: "waiting" },
      { op: "item.move", state: "waiting" },
    ]);
    const keys = client.pending.map((p) => p.key);

    reload();
    expect(client.pending).toEqual([]); // nothing before connect: the room is not known yet
    client.connect({ room: "R1", name: "Ana" });
    expect(client.pending.map((p) => [p.key, p.op, p.label, p.state])).toEqual([
      [keys[0], "item.add", "Add “Checkout”", "waiting"],
      [keys[1], "item.update", "Edit “Story i1”", "waiting"],
      [keys[2], "item.move", "Move “Story i2”", "waiting"],
    ]);
    const ws2 = FakeSocket.last();
    ws2.open();
    expect(ws2.sent.map((m) => m.t)).toEqual(["join"]); // nothing before the join
    ws2.receive(joinOk(ws2.lastSent("join")));
    ws2.receive(base() as unknown as Record<string, unknown>);
    await flush();
    expect(ws2.sent.map((m) => m.t)).toEqual(["join", "item.add", "item.update", "item.move"]);
    expect(ws2.sent[1]).toMatchObject({ item: { title: "Checkout" } });
    expect(ws2.sent[2]).toMatchObject({ item: "i1", set: { title: "Renamed" } });
    expect(ws2.sent[3]).toMatchObject({ item: "i2", after: null });
    expect(client.pending.map((p) => p.state)).toEqual(["sending", "sending", "sending"]);
    expect(stored().map((p) => p.state)).toEqual(["sending", "sending", "sending"]);
    // a new change gets a key of its own
    const k = client.addItem({ title: "Later" });
    expect(client.pending).toHaveLength(3); // made while connected: not listed
    ws2.receive(event("item.added", 3, { item: item("i9", "a9", { title: "Checkout" }) }));
    ws2.ok(ws2.sent[1], { seq: 3, item: "i9" });
    ws2.receive(event("item.updated", 4, { item: "i1", set: { title: "Renamed" } }));
    ws2.ok(ws2.sent[2], { seq: 4 });
    ws2.receive(event("item.moved", 5, { item: "i2", after: null, rank: "a0" }));
    ws2.ok(ws2.sent[3], { seq: 5 });
    ws2.receive(event("item.added", 6, { item: item("i10", "b", { title: "Later" }) }));
    ws2.ok(ws2.lastSent("item.add"), { seq: 6, item: "i10" });
    await expect(k).resolves.toBe("i10");
    expect(client.pending).toEqual([]);
    expect(mem.data.has("refine.pending.R1")).toBe(false); // acknowledged: cleared
    // a later reconnect sends nothing again
    const ws3 = await reconnect(ws2);
    ws3.receive(joinOk(ws3.lastSent("join"), { mode: "replay", seq: 6 }));
    expect(ws3.sent.map((m) => m.t)).toEqual(["join"]);
    expect(client.room.items.filter((i) => i.title === "Checkout")).toHaveLength(1);
  });

  test("a reload while offline and again before the join keeps the list as it was", async () => {
    const ws = await connected();
    ws.serverClose(1006);
    await flush();
    client.removeItem("i2").catch(() => {});
    reload();
    client.connect({ room: "R1", name: "Ana" }); // never joins (the server is still away)
    FakeSocket.last().serverClose(1006);
    await flush();
    expect(client.status).not.toBe("connected");
    expect(stored()).toEqual([{ op: "item.remove", state: "waiting" }]);
    reload();
    const ws3 = await rejoinAfterReload();
    expect(ws3.sent.map((m) => m.t)).toEqual(["join", "item.remove"]);
  });

  test("sent changes whose reply was lost come back failed after a reload unless the snapshot shows them applied", async () => {
    const ws = await connected();
    ws.receive(event("round.started", 3, { round: "r1", item: "i1", deck: ["1", "2"], voters: [ME, BEN], anonymous: false, deadline: null }));
    client.addItem({ title: "Checkout" }).catch(() => {});
    client.updateItem("i1", { title: "Renamed" }).catch(() => {});
    client.setFocus("i2").catch(() => {});
    client.vote("r1", "2").catch(() => {});
    expect(ws.sent.map((m) => m.t)).toEqual(["join", "item.add", "item.update", "focus", "vote"]);
    ws.serverClose(1006); // sent, no reply
    await flush();
    expect(client.pending.map((p) => p.state)).toEqual(["waiting", "waiting", "waiting", "waiting"]);
    expect(stored().map((p) => p.state)).toEqual(["sending", "sending", "sending", "sending"]); // to be checked, not resent

    reload();
    const snap = base();
    snap.seq = 7;
    snap.items = [item("i1", "a1", { title: "Renamed" }), item("i2", "a2")]; // the update was applied
    snap.focus = null; // the focus was not (or was undone): cannot tell
    snap.round = { id: "r1", item: "i1", state: "voting", deck: ["1", "2"], voters: [ME, BEN], voted: [], anonymous: false, deadline: null } as unknown as typeof snap.round;
    const ws2 = await rejoinAfterReload(snap, () =>
      expect(client.pending.map((p) => p.state)).toEqual(["waiting", "waiting", "waiting", "waiting"]),
    );
    // the add cannot be checked in a snapshot (resending could duplicate it); a vote is harmless to resend
    expect(ws2.sent.map((m) => m.t)).toEqual(["join", "vote"]);
    expect(ws2.lastSent("vote")).toMatchObject({ round: "r1", card: "2" });
    expect(client.pending).toMatchObject([
      { op: "item.add", state: "failed", error: MAY_NOT_BE_SAVED },
      { op: "focus", state: "failed", error: MAY_NOT_BE_SAVED },
      { op: "vote", state: "sending" },
    ]);
    expect(stored()).toEqual([
      { op: "item.add", state: "failed", error: MAY_NOT_BE_SAVED },
      { op: "focus", state: "failed", error: MAY_NOT_BE_SAVED },
      { op: "vote", state: "sending" },
    ]);
    ws2.receive(event("voted", 8, { round: "r1", pid: ME, has: true }));
    ws2.ok(ws2.lastSent("vote"), { seq: 8 });
    await flush();
    expect(client.pending.map((p) => p.op)).toEqual(["item.add", "focus"]);
    expect(stored().map((p) => p.op)).toEqual(["item.add", "focus"]);
  });

  test("a change sending at the reload (after a rejoin) is checked, not resent", async () => {
    const ws = await connected();
    ws.serverClose(1006);
    await flush();
    client.removeItem("i2").catch(() => {});
    const ws2 = await reconnect(ws);
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "replay", seq: 2 }));
    expect(ws2.sent.map((m) => m.t)).toEqual(["join", "item.remove"]);
    expect(stored()).toEqual([{ op: "item.remove", state: "sending" }]);
    reload(); // before the reply
    const snap = base();
    snap.seq = 3;
    snap.items = [item("i1", "a1")]; // it was applied
    const ws3 = await rejoinAfterReload(snap);
    expect(ws3.sent.map((m) => m.t)).toEqual(["join"]);
    expect(client.pending).toEqual([]);
    expect(mem.data.has("refine.pending.R1")).toBe(false);
  });

  test("a refused change is kept as failed across a reload; Retry sends it, Discard removes it from storage", async () => {
    const ws = await connected();
    ws.serverClose(1006);
    await flush();
    client.moveItem("i2", null).catch(() => {});
    client.removeItem("i1").catch(() => {});
    const ws2 = await reconnect(ws);
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "replay", seq: 2 }));
    const refuse = "Only the owner or a facilitator can reorder.";
    ws2.receive({ t: "err", id: ws2.lastSent("item.move")!.id, code: "forbidden", msg: refuse });
    ws2.receive({ t: "err", id: ws2.lastSent("item.remove")!.id, code: "not_found", msg: "No such story." });
    await flush();
    expect(stored()).toEqual([
      { op: "item.move", state: "failed", error: refuse },
      { op: "item.remove", state: "failed", error: "No such story." },
    ]);

    reload();
    client.connect({ room: "R1", name: "Ana" });
    expect(client.pending).toMatchObject([
      { op: "item.move", state: "failed", error: refuse, label: "Move “Story i2”" },
      { op: "item.remove", state: "failed", error: "No such story." },
    ]);
    client.discardPending(client.pending[1].key); // allowed before the join too
    expect(stored()).toEqual([{ op: "item.move", state: "failed", error: refuse }]);
    const ws3 = FakeSocket.last();
    ws3.open();
    ws3.receive(joinOk(ws3.lastSent("join")));
    ws3.receive(base() as unknown as Record<string, unknown>);
    await flush();
    expect(ws3.sent.map((m) => m.t)).toEqual(["join"]); // failed ones are not sent by themselves
    client.retryPending(client.pending[0].key);
    expect(ws3.sent.map((m) => m.t)).toEqual(["join", "item.move"]);
    expect(stored()).toEqual([{ op: "item.move", state: "sending" }]);
    ws3.receive({ t: "err", id: ws3.lastSent("item.move")!.id, code: "forbidden", msg: refuse });
    await flush();
    expect(stored()).toEqual([{ op: "item.move", state: "failed", error: refuse }]);
    client.discardPending(client.pending[0].key);
    expect(client.pending).toEqual([]);
    expect(mem.data.has("refine.pending.R1")).toBe(false);
    reload();
    client.connect({ room: "R1", name: "Ana" });
    expect(client.pending).toEqual([]);
  });

  test("a failed change retried while offline is kept after the ones made before the retry", async () => {
    const ws = await connected();
    ws.serverClose(1006);
    await flush();
    client.moveItem("i2", null).catch(() => {});
    const ws2 = await reconnect(ws);
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "replay", seq: 2 }));
    ws2.receive({ t: "err", id: ws2.lastSent("item.move")!.id, code: "internal", msg: "Try again." });
    await flush();
    ws2.serverClose(1006);
    await flush();
    client.removeItem("i1").catch(() => {});
    client.retryPending(client.pending[0].key); // queued after the remove
    expect(client.pending.map((p) => [p.op, p.state])).toEqual([
      ["item.move", "waiting"],
      ["item.remove", "waiting"],
    ]);
    expect(stored()).toEqual([
      { op: "item.remove", state: "waiting" },
      { op: "item.move", state: "waiting" },
    ]);
    reload();
    const ws3 = await rejoinAfterReload();
    expect(ws3.sent.map((m) => m.t)).toEqual(["join", "item.remove", "item.move"]);
  });

  test("a new link asked for offline and sent after a reload is kept", async () => {
    const ws = await connected();
    ws.serverClose(1006);
    await flush();
    client.rotateToken("member").catch(() => {});
    reload();
    const ws2 = await rejoinAfterReload();
    expect(ws2.sent.map((m) => m.t)).toEqual(["join", "token.rotate"]);
    ws2.receive(event("token.rotated", 3, { role: "member" }));
    ws2.ok(ws2.lastSent("token.rotate"), { seq: 3, token: "NEWm" });
    await flush();
    expect(client.tokens.member).toBe("NEWm");
    expect(storage.getRoom("R1")?.tokens.member).toBe("NEWm");
    expect(client.pending).toEqual([]);
  });

  test("discarding a restored waiting change removes it from storage and never sends it", async () => {
    const ws = await connected();
    ws.serverClose(1006);
    await flush();
    client.updateItem("i1", { title: "A" }).catch(() => {});
    client.updateItem("i2", { title: "B" }).catch(() => {});
    reload();
    client.connect({ room: "R1", name: "Ana" });
    client.discardPending(client.pending[0].key);
    expect(stored()).toEqual([{ op: "item.update", state: "waiting" }]);
    client.removeItem("i1").catch(() => {}); // made before the join: after the restored ones, a key of its own
    const keys = client.pending.map((p) => p.key);
    expect(new Set(keys).size).toBe(2);
    expect(stored()).toEqual([
      { op: "item.update", state: "waiting" },
      { op: "item.remove", state: "waiting" },
    ]);
    const ws2 = FakeSocket.last();
    ws2.open();
    ws2.receive(joinOk(ws2.lastSent("join")));
    ws2.receive(base() as unknown as Record<string, unknown>);
    await flush();
    expect(ws2.sent.map((m) => [m.t, m.item])).toEqual([
      ["join", undefined],
      ["item.update", "i2"],
      ["item.remove", "i1"],
    ]);
  });

  test("a discarded in-doubt change is neither resent nor listed again after the rejoin", async () => {
    const ws = await connected();
    const p = client.addItem({ title: "Checkout" });
    ws.serverClose(1006);
    await flush();
    client.discardPending(client.pending[0].key);
    await expect(p).rejects.toMatchObject({ code: "not_sent" });
    expect(mem.data.has("refine.pending.R1")).toBe(false);
    const ws2 = FakeSocket.last() === ws ? await reconnect(ws) : FakeSocket.last();
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "replay", seq: 2 })); // not applied: would be resent
    expect(ws2.sent.map((m) => m.t)).toEqual(["join"]);
    expect(client.pending).toEqual([]);
  });

  test("leaving the room fails what is left: unsent ones as not sent, sent ones as maybe not saved", async () => {
    const ws = await connected();
    ws.serverClose(1006);
    await flush();
    client.removeItem("i1").catch(() => {});
    const ws2 = await reconnect(ws);
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "replay", seq: 2 })); // item.remove sent
    ws2.serverClose(1006);
    await flush();
    client.updateItem("i2", { title: "B" }).catch(() => {});
    client.close();
    expect(stored()).toEqual([
      { op: "item.remove", state: "failed", error: MAY_NOT_BE_SAVED },
      { op: "item.update", state: "failed", error: "The room was closed before this change was sent." },
    ]);
  });

  test("storage failures never break the client", async () => {
    const ws = await connected();
    ws.serverClose(1006);
    await flush();
    mem.failWrites = true; // quota exceeded / private mode
    const p = client.updateItem("i1", { title: "A" });
    expect(client.pending.map((x) => x.state)).toEqual(["waiting"]);
    const ws2 = await reconnect(ws);
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "replay", seq: 2 }));
    ws2.receive(event("item.updated", 3, { item: "i1", set: { title: "A" } }));
    ws2.ok(ws2.lastSent("item.update"), { seq: 3 });
    await expect(p).resolves.toBeUndefined();
    expect(client.pending).toEqual([]);
    // unreadable storage on reload: nothing restored, the join still works (with the token)
    mem.failWrites = false;
    mem.failReads = true;
    reload();
    const done = client.connect({ room: "R1", name: "Ana", token: "TOKf" });
    expect(client.pending).toEqual([]);
    const ws3 = FakeSocket.last();
    ws3.open();
    ws3.receive(joinOk(ws3.lastSent("join")));
    ws3.receive(base() as unknown as Record<string, unknown>);
    await done;
    expect(client.status).toBe("connected");
    // garbage under the key: ignored
    mem.failReads = false;
    mem.data.set("refine.pending.R1", "{not json");
    reload();
    client.connect({ room: "R1", name: "Ana" });
    expect(client.pending).toEqual([]);
  });
});

describe("votes and hints", () => {
  test("my vote is kept locally, reverted on refusal, reset when a round starts", async () => {
    const ws = await connected();
    ws.receive(event("round.started", 3, { round: "r1", item: "i1", deck: ["1", "2"], voters: [ME, BEN], anonymous: false, deadline: null }));
    const v = client.vote("r1", "2", "high");
    expect(client.myVote).toEqual({ round: "r1", card: "2", confidence: "high" });
    expect(ws.lastSent("vote")).toMatchObject({ round: "r1", card: "2", confidence: "high" });
    ws.receive(event("voted", 4, { round: "r1", pid: ME, has: true }));
    ws.ok(ws.lastSent("vote"), { seq: 4 });
    await v;
    expect(storage.getRoom("R1")?.vote).toEqual({ round: "r1", card: "2" });
    const bad = client.vote("r1", "1");
    ws.receive({ t: "err", id: ws.lastSent("vote")!.id, code: "conflict", msg: "The round is closed." });
    await expect(bad).rejects.toMatchObject({ code: "conflict" });
    expect(client.myVote?.card).toBe("2");
    ws.receive(event("round.cancelled", 5, { round: "r1" }));
    expect(client.myVote).toBeNull();
  });

  test("hints: at most two a second, the latest wins, never queued while offline", async () => {
    const ws = await connected();
    client.hint("i1", "editing");
    client.hint("i2", "editing");
    client.hint("i2", "dragging");
    expect(ws.sent.filter((m) => m.t === "hint")).toHaveLength(1);
    clock.advance(499);
    expect(ws.sent.filter((m) => m.t === "hint")).toHaveLength(1);
    clock.advance(1);
    const hints = ws.sent.filter((m) => m.t === "hint");
    expect(hints.map((h) => [h.item, h.what])).toEqual([
      ["i1", "editing"],
      ["i2", "dragging"],
    ]);
    client.hint("i2", "dragging"); // unchanged: nothing sent
    clock.advance(1000);
    expect(ws.sent.filter((m) => m.t === "hint")).toHaveLength(2);
    ws.serverClose(1006);
    await flush();
    client.hint(null, null);
    client.hint("i1", "editing");
    clock.advance(client.retryInMs);
    const ws2 = FakeSocket.last();
    ws2.open();
    expect(ws2.sent.filter((m) => m.t === "hint")).toHaveLength(0);
    ws2.receive(joinOk(ws2.lastSent("join"), { mode: "replay", seq: 2, participants: base().participants }));
    // after the rejoin only the current one goes out
    expect(ws2.sent.filter((m) => m.t === "hint").map((h) => h.item)).toEqual(["i1"]);
  });

  test("an observer never sends hints", async () => {
    const done = client.connect({ room: "R1", name: "Olga", token: "o" });
    const ws = FakeSocket.last();
    ws.open();
    ws.receive(joinOk(ws.lastSent("join"), { role: "observer", name: "Olga" }));
    ws.receive(snapshot({ seq: 2, participants: [person(ME, "Olga", "observer")], items: [item("i1", "a1")] }) as unknown as Record<string, unknown>);
    await done;
    client.hint("i1", "editing");
    clock.advance(1000);
    expect(ws.sent.filter((m) => m.t === "hint")).toHaveLength(0);
  });
});

describe("createRoom", () => {
  test("sends room.create on a connection of its own, keeps the tokens, closes", async () => {
    const create = makeCreateRoom({ url: "ws://test/ws", WebSocketImpl: FakeSocket, timers: clock, online, scheduler: new FakeScheduler() });
    const p = create("Sprint 14", "modified");
    const ws = FakeSocket.last();
    ws.open();
    const req = ws.lastSent("room.create")!;
    expect(req).toMatchObject({ name: "Sprint 14", deck: "modified" });
    const tokens = { facilitator: "f", owner: "o", member: "m", observer: "v" };
    ws.ok(req, { room: "R7", tokens });
    await expect(p).resolves.toEqual({ room: "R7", tokens });
    expect(ws.closedByClient).not.toBeNull();
    expect(storage.getRoom("R7")).toMatchObject({ roomName: "Sprint 14", tokens });
  });

  test("a room is created over /ws; the room is then joined, and rejoined, over /r/<room>/ws", async () => {
    const create = makeCreateRoom({ url: "ws://test/ws", WebSocketImpl: FakeSocket, timers: clock, online, scheduler: new FakeScheduler() });
    const p = create("Sprint 15", "fibonacci");
    const cws = FakeSocket.last();
    expect(cws.url).toBe("ws://test/ws");
    cws.open();
    cws.ok(cws.lastSent("room.create")!, { room: "a.R8", tokens: { facilitator: "f", owner: "o", member: "m", observer: "v" } });
    await p;
    const done = client.connect({ room: "a.R8", token: "f", name: "Ana" });
    const ws = FakeSocket.last();
    expect(ws.url).toBe("ws://test/r/a.R8/ws");
    ws.open();
    const join = ws.lastSent("join")!;
    expect(join.room).toBe("a.R8");
    ws.receive(joinOk(join, { seq: 0 }));
    ws.receive(snapshot({ seq: 0 }) as unknown as Record<string, unknown>);
    await done;
    ws.serverClose(1006);
    clock.advance(60_000);
    expect(FakeSocket.last()).not.toBe(ws);
    expect(FakeSocket.last().url).toBe("ws://test/r/a.R8/ws");
  });

  test("an unreachable server rejects with a sentence", async () => {
    const create = makeCreateRoom({ url: "ws://test/ws", WebSocketImpl: FakeSocket, timers: clock, online, scheduler: new FakeScheduler() });
    const p = create("X", "fibonacci");
    FakeSocket.last().serverClose(1006);
    await expect(p).rejects.toMatchObject({ code: "not_sent" });
    clock.advance(60_000);
    expect(FakeSocket.all).toHaveLength(1);
  });
});
