// The web client following a room that moved to another server (PROTOCOL.md "Moving a room"):
// the `room.moved` notice and the `moved` answer to a join, and the `unavailable` toast.
import { beforeEach, expect, test } from "vitest";
import { MOVING_TEXT, NOTICE_MS, RoomClient } from "../src/lib/client.svelte";
import { RequestError } from "../src/lib/api";
import * as storage from "../src/lib/storage";
import type { Message } from "../src/lib/protocol";
import { FakeClock, FakeOnline, FakeScheduler, FakeSocket, MemoryStorage, item, person, snapshot } from "./fakes";

const ME = "pMe";
let clock: FakeClock;
let client: RoomClient;

beforeEach(() => {
  FakeSocket.all = [];
  storage.useStorageBackend(new MemoryStorage());
  clock = new FakeClock();
  client = new RoomClient({ url: "ws://test/ws", WebSocketImpl: FakeSocket, timers: clock, online: new FakeOnline(), random: () => 0.5, scheduler: new FakeScheduler() });
});

function joinOk(req: Message | undefined, fields: Record<string, unknown> = {}): Record<string, unknown> {
  return { t: "ok", id: req?.id, pid: ME, secret: "S3cret", role: "facilitator", name: "Ana", seq: 2, mode: "snapshot", epoch: "E1", hints: [], ...fields };
}

const snap = (id: string) => {
  const s = snapshot({ seq: 2, participants: [person(ME, "Ana", "facilitator")], items: [item("i1", "a1")] }) as unknown as Record<string, unknown>;
  (s.room as Record<string, unknown>).id = id;
  return s;
};

async function connected(room: string): Promise<FakeSocket> {
  const done = client.connect({ room, name: "Ana", token: "TOKf" });
  const ws = FakeSocket.last();
  ws.open();
  ws.receive(joinOk(ws.lastSent("join")));
  ws.receive(snap(room));
  await done;
  return ws;
}

test("room.moved: the identity goes to the new id and the client joins there as itself", async () => {
  const ws = await connected("a.OLD");
  ws.receive({ t: "room.moved", at: 1, room: "b.NEW", home: "b" });
  expect(client.roomId).toBe("b.NEW");
  const stored = storage.getRoom("b.NEW");
  expect(stored).toMatchObject({ pid: ME, secret: "S3cret" });
  expect(storage.recentRooms().map((r) => r.room)).toEqual(["b.NEW"]);
  expect(storage.getRoom("a.OLD")?.pid).toBe(ME); // an old link still follows
  const ws2 = FakeSocket.last();
  expect(ws2).not.toBe(ws);
  ws2.open();
  const join = ws2.lastSent("join")!;
  expect(join).toMatchObject({ room: "b.NEW", pid: ME, secret: "S3cret" });
  ws2.receive(joinOk(join));
  ws2.receive(snap("b.NEW"));
  expect(client.status).toBe("connected");
  expect(client.room.info?.id).toBe("b.NEW");
});

test("a `moved` answer to the first join: the join goes on at the new id and its promise resolves", async () => {
  const done = client.connect({ room: "a.OLD", name: "Ana", token: "TOKm" });
  const ws = FakeSocket.last();
  ws.open();
  const join = ws.lastSent("join")!;
  ws.receive({ t: "err", id: join.id, code: "moved", msg: "moved", room: "b.NEW", home: "b" });
  const ws2 = FakeSocket.last();
  ws2.open();
  const join2 = ws2.lastSent("join")!;
  expect(join2).toMatchObject({ room: "b.NEW", token: "TOKm" });
  ws2.receive(joinOk(join2));
  ws2.receive(snap("b.NEW"));
  await done;
  expect(client.roomId).toBe("b.NEW");
  expect(client.fatal).toBeNull();
});

test("a change refused with `unavailable` (the room is moving): a toast for a while", async () => {
  const ws = await connected("a.R");
  const p = client.addItem({ title: "Late" });
  const req = ws.lastSent("item.add");
  ws.receive({ t: "err", id: req?.id, code: "unavailable", msg: "being moved" });
  await expect(p).rejects.toBeInstanceOf(RequestError);
  expect(client.notice).toBe(MOVING_TEXT);
  clock.advance(NOTICE_MS);
  expect(client.notice).toBeNull();
});
