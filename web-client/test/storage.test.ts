import { beforeEach, describe, expect, test } from "vitest";
import * as storage from "../src/lib/storage";
import { MemoryStorage } from "./fakes";

let mem: MemoryStorage;
beforeEach(() => {
  mem = new MemoryStorage();
  storage.useStorageBackend(mem);
});

describe("storage", () => {
  test("name, rooms and tokens round-trip through localStorage", () => {
    storage.saveName("Ana");
    storage.saveRoom("R1", { roomName: "Sprint", tokens: { facilitator: "f", owner: "o" } });
    storage.saveRoom("R1", { pid: "p", secret: "s", tokens: { member: "m" } }, { touch: true, now: 5 });
    storage.useStorageBackend(mem); // a reload: the in-memory copy is gone, only localStorage remains
    expect(storage.loadName()).toBe("Ana");
    expect(storage.getRoom("R1")).toEqual({
      room: "R1",
      roomName: "Sprint",
      pid: "p",
      secret: "s",
      lastJoinedAt: 5,
      tokens: { facilitator: "f", owner: "o", member: "m" },
    });
    storage.forgetCredentials("R1");
    expect(storage.getRoom("R1")?.pid).toBeUndefined();
    expect(storage.getRoom("R1")?.tokens.owner).toBe("o");
    storage.forgetToken("R1", "owner");
    expect(storage.getRoom("R1")?.tokens).toEqual({ facilitator: "f", member: "m" });
  });

  test("recent rooms: joined ones only, newest first, at most 10", () => {
    storage.saveRoom("created-only", { roomName: "x" });
    for (let i = 0; i < 12; i++) storage.saveRoom(`R${i}`, { roomName: `Room ${i}` }, { touch: true, now: 100 + i });
    storage.saveRoom("R3", {}, { touch: true, now: 1000 }); // rejoined: to the front
    const recent = storage.recentRooms();
    expect(recent).toHaveLength(storage.RECENT_MAX);
    expect(recent[0].room).toBe("R3");
    expect(recent[1].room).toBe("R11");
    expect(recent.some((r) => r.room === "created-only")).toBe(false);
    // older credentials are still kept for a rejoin
    expect(storage.getRoom("R0")?.roomName).toBe("Room 0");
  });

  test("drafts per room and key; empty text or clear removes them", () => {
    storage.saveDraft("R1", "item:i1:title", "Half a tit");
    storage.saveDraft("R2", "item:i1:title", "Other room");
    expect(storage.loadDraft("R1", "item:i1:title")).toBe("Half a tit");
    expect(storage.loadDraft("R1", "new-item")).toBeNull();
    storage.useStorageBackend(mem);
    expect(storage.loadDraft("R2", "item:i1:title")).toBe("Other room");
    storage.clearDraft("R1", "item:i1:title");
    expect(storage.loadDraft("R1", "item:i1:title")).toBeNull();
    storage.saveDraft("R2", "item:i1:title", "");
    expect(storage.loadDraft("R2", "item:i1:title")).toBeNull();
  });

  test("a full quota never throws, and this page still remembers", () => {
    mem.failWrites = true;
    expect(() => storage.saveRoom("R1", { pid: "p", secret: "s" }, { touch: true })).not.toThrow();
    expect(() => storage.saveDraft("R1", "k", "text")).not.toThrow();
    expect(storage.getRoom("R1")?.secret).toBe("s");
    expect(storage.loadDraft("R1", "k")).toBe("text");
    expect(mem.data.size).toBe(0);
  });

  test("blocked storage (reads throw) or none at all: defaults, no exceptions", () => {
    mem.failReads = true;
    mem.failWrites = true;
    expect(storage.loadName()).toBe("");
    expect(storage.recentRooms()).toEqual([]);
    storage.useStorageBackend(null);
    storage.saveName("Ben");
    expect(storage.loadName()).toBe("Ben");
  });

  test("corrupt data is ignored", () => {
    mem.data.set("refine.rooms", "{not json");
    expect(storage.recentRooms()).toEqual([]);
    mem.data.set("refine.rooms", JSON.stringify([{ nope: 1 }, { room: "R1", lastJoinedAt: 1, tokens: {} }]));
    expect(storage.recentRooms().map((r) => r.room)).toEqual(["R1"]);
  });

  test("changes not sent yet: kept per room, malformed rows left out, [] removes the key", () => {
    const rows: storage.StoredPending[] = [
      { key: 3, op: "item.add", fields: { item: { title: "A" } }, label: "Add “A”", state: "waiting" },
      { key: 5, op: "item.move", fields: { item: "i1", after: null }, label: "Move “B”", state: "failed", error: "No." },
    ];
    storage.savePending("R1", rows);
    storage.savePending("R2", [{ ...rows[0], key: 1, state: "sending" }]);
    storage.useStorageBackend(mem); // reload
    expect(storage.loadPending("R1")).toEqual(rows);
    expect(storage.loadPending("R2").map((p) => [p.key, p.state])).toEqual([[1, "sending"]]);
    expect(storage.loadPending("R3")).toEqual([]);
    mem.data.set(
      "refine.pending.R1",
      JSON.stringify([
        rows[0],
        { ...rows[1], key: 3 }, // duplicate key
        { ...rows[1], state: "done" },
        { ...rows[1], key: "7" },
        { ...rows[1], key: 8, fields: [] },
        { ...rows[1], key: 9, label: undefined },
        null,
        { ...rows[1], key: 10, error: 42 },
      ]),
    );
    storage.useStorageBackend(mem);
    expect(storage.loadPending("R1").map((p) => [p.key, p.error])).toEqual([
      [3, undefined],
      [10, undefined],
    ]);
    mem.data.set("refine.pending.R1", JSON.stringify({ not: "a list" }));
    storage.useStorageBackend(mem);
    expect(storage.loadPending("R1")).toEqual([]);
    storage.savePending("R2", []);
    expect(mem.data.has("refine.pending.R2")).toBe(false);
  });

  test("changes not sent yet: a full or blocked storage never throws", () => {
    mem.failWrites = true;
    const row: storage.StoredPending = { key: 1, op: "focus", fields: { item: null }, label: "Clear the focus", state: "waiting" };
    expect(() => storage.savePending("R1", [row])).not.toThrow();
    expect(storage.loadPending("R1")).toEqual([row]); // this page still knows it
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => storage.savePending("R1", [{ ...row, fields: cyclic }])).not.toThrow();
    expect(storage.loadPending("R1")).toEqual([row]); // kept what was there
    mem.failReads = true;
    storage.useStorageBackend(mem);
    expect(storage.loadPending("R1")).toEqual([]);
  });
});
