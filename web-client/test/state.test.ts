import { describe, expect, test } from "vitest";
import { proxy } from "svelte/internal/client";
import {
  ACTIVITY_MAX,
  ItemList,
  applyEvent,
  applyJoinOk,
  applyNotice,
  applySnapshot,
  emptyView,
  findItem,
  indexOfItem,
  isSorted,
} from "../src/lib/state";
import type { RoomView } from "../src/lib/api";
import type { Message, Round, Stats } from "../src/lib/protocol";
import { item, person, rankOf, snapshot } from "./fakes";

const ME = "pMe";
const DANA = "pDana";
const BEN = "pBen";

function room(): RoomView {
  const v = emptyView();
  applySnapshot(
    v,
    snapshot({
      seq: 10,
      participants: [person(ME, "Ana", "facilitator"), person(DANA, "Dana", "owner"), person(BEN, "Ben", "member")],
      items: [item("i1", "a1"), item("i2", "a2"), item("i3", "a3")],
    }),
  );
  return v;
}

let seq = 10;
function ev(v: RoomView, t: string, fields: Record<string, unknown>, by: string | null = DANA): Message {
  seq = v.seq + 1;
  return { t, seq, at: 1_800_000_000_000 + seq, by, ...fields };
}
const ids = (v: RoomView) => v.items.map((i) => i.id);
const lastLine = (v: RoomView) => v.activity[v.activity.length - 1]?.text;

const STATS: Stats = {
  count: 2,
  not_voted: 0,
  missing: [],
  numeric: 2,
  min: 5,
  max: 5,
  mean: 5,
  median: 5,
  distribution: { "5": 2 },
  mode: "5",
  consensus: true,
  spread: 0,
  highest: [ME, BEN],
  lowest: [ME, BEN],
  suggested: "5",
  confidence: { low: 0, medium: 0, high: 0 },
};

describe("snapshot", () => {
  test("replaces the state and sorts items by rank byte-wise", () => {
    const v = room();
    applySnapshot(
      v,
      snapshot({
        seq: 3,
        items: [item("b", "a0z"), item("a", "a0Z"), item("c", "a00")],
        focus: "a",
        timer: 123,
      }),
    );
    // byte order: digits < upper case < lower case
    expect(ids(v)).toEqual(["c", "a", "b"]);
    expect(v.seq).toBe(3);
    expect(v.epoch).toBe("E1");
    expect(v.focus).toBe("a");
    expect(v.timerEndsAt).toBe(123);
    expect(v.items).toBeInstanceOf(ItemList);
    expect(findItem(v, "b")?.rank).toBe("a0z");
  });
});

describe("events", () => {
  test("item.added goes to its rank, highlighted when remote, with a feed line", () => {
    const v = room();
    expect(applyEvent(v, ev(v, "item.added", { item: item("i9", "a15", { title: "Checkout" }) }), ME)).toBe("applied");
    expect(ids(v)).toEqual(["i1", "i9", "i2", "i3"]);
    expect(v.changedAt.i9).toBeGreaterThan(0);
    expect(lastLine(v)).toBe("Dana added “Checkout”");
    applyEvent(v, ev(v, "item.added", { item: item("i10", "a0") }, ME), ME);
    expect(ids(v)[0]).toBe("i10");
    expect(v.changedAt.i10).toBeUndefined(); // my own change: no highlight
    expect(lastLine(v)).toBe("You added “Story i10”");
  });

  test("backlog.imported adds every item at its rank at once, with one feed line", () => {
    const v = room();
    const items = [item("i4", "a4", { title: "Four" }), item("i5", "a5", { parent: "i4" }), item("i6", "a15")];
    expect(applyEvent(v, ev(v, "backlog.imported", { items }, null), ME)).toBe("applied");
    expect(ids(v)).toEqual(["i1", "i6", "i2", "i3", "i4", "i5"]);
    expect(findItem(v, "i5")?.parent).toBe("i4");
    expect(lastLine(v)).toBe("3 stories were imported");
  });

  test("backlog.imported with a map and a product makes them the room's (as a fresh join)", () => {
    const v = room();
    const map = {
      activities: [{ id: "a1", name: "Browse" }],
      steps: [{ id: "s2", name: "Search", activity: "a1" }],
      slices: [{ id: "r3", name: "MVP", capacity: 8, points: 3, unestimated: [] }],
    };
    const product = {
      vision: { target: "shoppers", need: "", product: "", product_category: "", benefit: "", alternatives: "", differentiator: "" },
      personas: [{ id: "p1", name: "Pat", description: "", goals: [] }],
      outcomes: [],
    };
    const items = [item("i4", "a4", { step: "s2", slice: "r3", persona_id: "p1" })];
    expect(applyEvent(v, ev(v, "backlog.imported", { items, map, product }, null), ME)).toBe("applied");
    expect(v.map).toEqual({
      activities: [{ id: "a1", name: "Browse" }],
      steps: [{ id: "s2", name: "Search", activity: "a1" }],
      slices: [{ id: "r3", name: "MVP", capacity: 8 }],
    });
    expect(v.product.personas.map((p) => p.id)).toEqual(["p1"]);
    expect(findItem(v, "i4")?.step).toBe("s2");
    // without them (skipped, or not in the file), the room's stay
    const before = { map: v.map, product: v.product };
    applyEvent(v, ev(v, "backlog.imported", { items: [item("i5", "a5")] }, null), ME);
    expect({ map: v.map, product: v.product }).toEqual(before);
  });

  test("item.updated changes fields on a new object (views keyed by item see it)", () => {
    const v = room();
    const before = findItem(v, "i2")!;
    applyEvent(v, ev(v, "item.updated", { item: "i2", set: { title: "New", estimate: "5" } }), ME);
    const after = findItem(v, "i2")!;
    expect(after).not.toBe(before);
    expect(after.title).toBe("New");
    expect(after.estimate).toBe("5");
    expect(before.title).toBe("Story i2");
    applyEvent(v, ev(v, "item.updated", { item: "i2", set: { estimate: "8" } }, null), ME);
    expect(lastLine(v)).toBe("Someone set the estimate of “New” to 8");
  });

  test("item.moved re-places the item; moves to the top are described", () => {
    const v = room();
    applyEvent(v, ev(v, "item.moved", { item: "i3", after: null, rank: "a0" }), ME);
    expect(ids(v)).toEqual(["i3", "i1", "i2"]);
    expect(lastLine(v)).toBe("Dana moved “Story i3” to the top");
    applyEvent(v, ev(v, "item.moved", { item: "i3", after: "i2", rank: "a5" }), ME);
    expect(ids(v)).toEqual(["i1", "i2", "i3"]);
    expect(lastLine(v)).toBe("Dana moved “Story i3” below “Story i2”");
    expect(isSorted(v.items)).toBe(true);
  });

  test("item.removed drops the item, its focus and its hints", () => {
    const v = room();
    v.focus = "i2";
    applyNotice(v, { t: "hint", at: 1, pid: BEN, item: "i2", what: "editing" }, ME);
    applyEvent(v, ev(v, "item.removed", { item: "i2" }), ME);
    expect(ids(v)).toEqual(["i1", "i3"]);
    expect(v.focus).toBeNull();
    expect(v.hints).toEqual([]);
    expect(indexOfItem(v, "i2")).toBe(-1);
  });

  test("item.split marks the parent and inserts the children after it", () => {
    const v = room();
    applyEvent(
      v,
      ev(v, "item.split", {
        item: "i1",
        pattern: "workflow",
        children: [item("i4", "a1V", { parent: "i1" }), item("i5", "a1l", { parent: "i1" })],
      }),
      ME,
    );
    expect(ids(v)).toEqual(["i1", "i4", "i5", "i2", "i3"]);
    expect(findItem(v, "i1")?.status).toBe("split");
    expect(lastLine(v)).toBe("Dana split “Story i1” into 2 stories");
  });

  test("item.split of the round's item closes the round and moves the focus to the first child", () => {
    const v = room();
    applyEvent(v, ev(v, "focus", { item: "i1" }, ME), ME);
    applyEvent(v, ev(v, "round.started", { round: "r1", item: "i1", deck: ["1", "5"], voters: [ME, BEN], anonymous: false, deadline: null }, ME), ME);
    expect(v.round?.state).toBe("voting");
    applyEvent(
      v,
      ev(v, "item.split", {
        item: "i1",
        pattern: "spike",
        children: [item("i4", "a1V", { parent: "i1" }), item("i5", "a1l", { parent: "i1" })],
        round: "r1",
        focus: "i4",
      }),
      ME,
    );
    expect(v.round).toBeNull();
    expect(v.rounds.map((r) => r.state)).toEqual(["cancelled"]);
    expect(v.focus).toBe("i4");
    expect(lastLine(v)).toBe("Dana split “Story i1” into 2 stories (the round on it is closed)");
    // a split elsewhere leaves the focus where the event says, and no round is touched
    applyEvent(v, ev(v, "item.split", { item: "i2", pattern: null, children: [item("i6", "b1", { parent: "i2" })], round: null, focus: "i4" }), ME);
    expect(v.focus).toBe("i4");
    expect(v.rounds.map((r) => r.state)).toEqual(["cancelled"]);
  });

  test("items.reranked gives new ranks (also to children not there yet) without a feed line", () => {
    const v = room();
    const lines = v.activity.length;
    applyEvent(v, ev(v, "items.reranked", { ranks: { i1: "b3", i2: "b1", i3: "b2", i7: "b4" } }), ME);
    expect(ids(v)).toEqual(["i2", "i3", "i1"]);
    expect(v.items.map((i) => i.rank)).toEqual(["b1", "b2", "b3"]);
    expect(v.activity.length).toBe(lines);
    // the index follows: a later move finds the item by its new rank
    applyEvent(v, ev(v, "item.moved", { item: "i1", after: null, rank: "b0" }), ME);
    expect(ids(v)).toEqual(["i1", "i2", "i3"]);
  });

  test("focus, timer and room.updated", () => {
    const v = room();
    applyEvent(v, ev(v, "focus", { item: "i2" }, ME), ME);
    expect(v.focus).toBe("i2");
    expect(lastLine(v)).toBe("You put “Story i2” in focus");
    applyEvent(v, ev(v, "timer", { ends_at: v.seq + 1_800_000_000_000 + 1 + 120_000 }, ME), ME);
    expect(v.timerEndsAt).not.toBeNull();
    expect(lastLine(v)).toBe("You started a 2:00 timer");
    applyEvent(v, ev(v, "timer", { ends_at: null, expired: true }, null), ME);
    expect(v.timerEndsAt).toBeNull();
    expect(lastLine(v)).toBe("Time is up");
    applyEvent(v, ev(v, "room.updated", { set: { name: "Sprint 15", auto_reveal: true } }, ME), ME);
    expect(v.info?.name).toBe("Sprint 15");
    expect(v.info?.auto_reveal).toBe(true);
  });

  test("a round from start to accept, history kept", () => {
    const v = room();
    applyEvent(v, ev(v, "round.started", { round: "r1", item: "i2", deck: ["1", "5"], voters: [ME, BEN], anonymous: false, deadline: null }, ME), ME);
    expect(v.round?.state).toBe("voting");
    expect(v.rounds).toHaveLength(1);
    applyEvent(v, ev(v, "voted", { round: "r1", pid: BEN, has: true }, BEN), ME);
    applyEvent(v, ev(v, "voted", { round: "r1", pid: BEN, has: true }, BEN), ME); // a changed vote
    expect(v.round?.voted).toEqual([BEN]);
    expect(lastLine(v)).toBe("Ben voted");
    applyEvent(v, ev(v, "voted", { round: "r1", pid: BEN, has: false }, BEN), ME);
    expect(v.round?.voted).toEqual([]);
    applyEvent(v, ev(v, "voted", { round: "r1", pid: BEN, has: true }, BEN), ME);
    applyEvent(v, ev(v, "round.revealed", { round: "r1", votes: { [ME]: "5", [BEN]: "5" }, stats: STATS }, ME), ME);
    expect(v.round?.state).toBe("revealed");
    expect(v.round?.votes).toEqual({ [ME]: "5", [BEN]: "5" });
    expect(v.rounds[0].stats?.consensus).toBe(true);
    expect(lastLine(v)).toBe("Round revealed: 5 (consensus)");
    applyEvent(v, ev(v, "round.accepted", { round: "r1", item: "i2", estimate: "5" }, ME), ME);
    applyEvent(v, ev(v, "item.updated", { item: "i2", set: { estimate: "5" } }, ME), ME);
    expect(v.round).toBeNull();
    expect(v.rounds[0]).toMatchObject({ state: "accepted", estimate: "5" } satisfies Partial<Round>);
    expect(findItem(v, "i2")?.estimate).toBe("5");
    applyEvent(v, ev(v, "round.started", { round: "r2", item: "i3", deck: ["1"], voters: [], anonymous: true, deadline: null }, ME), ME);
    applyEvent(v, ev(v, "round.cancelled", { round: "r2" }, ME), ME);
    expect(v.round).toBeNull();
    expect(v.rounds.map((r) => r.state)).toEqual(["accepted", "cancelled"]);
  });

  test("participant.updated, token.rotated", () => {
    const v = room();
    applyEvent(v, ev(v, "participant.updated", { pid: BEN, role: "owner" }, ME), ME);
    expect(v.participants.find((p) => p.pid === BEN)?.role).toBe("owner");
    expect(lastLine(v)).toBe("You made Ben product owner");
    applyEvent(v, ev(v, "participant.updated", { pid: BEN, role: "observer" }, ME), ME);
    expect(v.observers).toEqual({ online: 1, total: 1 });
    applyEvent(v, ev(v, "participant.updated", { pid: DANA, role: "facilitator" }, DANA), ME);
    expect(lastLine(v)).toBe("Dana took over facilitation");
    // crowd room: an unlisted observer becomes a member, the event carries its name
    applyEvent(v, ev(v, "participant.updated", { pid: "pX", role: "member", name: "Xena" }, ME), ME);
    expect(v.participants.find((p) => p.pid === "pX")?.name).toBe("Xena");
    applyEvent(v, ev(v, "token.rotated", { role: "member" }, ME), ME);
    expect(lastLine(v)).toBe("You replaced the member invite link");
  });

  test("duplicates are ignored, gaps are reported and not applied", () => {
    const v = room();
    const add = ev(v, "item.added", { item: item("i9", "a9") });
    expect(applyEvent(v, add, ME)).toBe("applied");
    expect(applyEvent(v, add, ME)).toBe("duplicate");
    expect(applyEvent(v, { ...add, seq: 5 }, ME)).toBe("duplicate");
    expect(ids(v).filter((id) => id === "i9")).toHaveLength(1);
    const gap = { t: "item.removed", seq: v.seq + 2, at: 1, by: DANA, item: "i1" };
    expect(applyEvent(v, gap, ME)).toBe("gap");
    expect(findItem(v, "i1")).toBeDefined();
    expect(v.seq).toBe(add.seq);
  });

  test("unknown events advance seq without changing anything", () => {
    const v = room();
    expect(applyEvent(v, ev(v, "future.thing", { x: 1 }), ME)).toBe("applied");
    expect(v.seq).toBe(11);
  });

  test("the activity feed keeps the newest 50", () => {
    const v = room();
    for (let i = 0; i < 60; i++) applyEvent(v, ev(v, "voted", { round: "r", pid: BEN, has: true }, BEN), ME);
    expect(v.activity).toHaveLength(ACTIVITY_MAX);
    expect(v.activity[ACTIVITY_MAX - 1].seq).toBe(v.seq);
  });
});

describe("notices", () => {
  test("joined / left, observers counted, hints latest per pid", () => {
    const v = room();
    applyNotice(v, { t: "participant.joined", at: 1, pid: "pO", name: "Olga", role: "observer" }, ME);
    expect(v.observers).toEqual({ online: 1, total: 1 });
    expect(lastLine(v)).toBe("Olga joined");
    applyNotice(v, { t: "participant.left", at: 2, pid: "pO" }, ME);
    expect(v.observers).toEqual({ online: 0, total: 1 });
    expect(v.participants.find((p) => p.pid === "pO")?.online).toBe(false);

    applyNotice(v, { t: "hint", at: 3, pid: BEN, item: "i1", what: "editing" }, ME);
    applyNotice(v, { t: "hint", at: 4, pid: BEN, item: "i2", what: "dragging" }, ME);
    applyNotice(v, { t: "hint", at: 4, pid: ME, item: "i2", what: "dragging" }, ME); // my other tab
    expect(v.hints).toEqual([{ pid: BEN, item: "i2", what: "dragging", at: 4 }]);
    applyNotice(v, { t: "hint", at: 5, pid: BEN, item: null, what: null }, ME);
    expect(v.hints).toEqual([]);
    applyNotice(v, { t: "hint", at: 6, pid: BEN, item: "i3", what: "editing" }, ME);
    applyNotice(v, { t: "participant.left", at: 7, pid: BEN }, ME);
    expect(v.hints).toEqual([]);

    applyNotice(v, { t: "observers", at: 8, online: 300, total: 2000 }, ME);
    expect(v.observers).toEqual({ online: 300, total: 2000 });
    expect(v.participants.some((p) => p.role === "observer")).toBe(false);
    expect(applyNotice(v, { t: "item.added" }, ME)).toBe(false);
  });

  test("the join ok brings participants, observers and hints", () => {
    const v = room();
    applyJoinOk(
      v,
      {
        t: "ok",
        id: 1,
        pid: ME,
        secret: "s",
        role: "facilitator",
        name: "Ana",
        seq: 12,
        mode: "replay",
        epoch: "E1",
        participants: [person(ME, "Ana", "facilitator")],
        observers: { online: 2, total: 3 },
        hints: [
          { pid: BEN, item: "i1", what: "editing" },
          { pid: ME, item: "i2", what: "editing" },
        ],
      },
      ME,
      99,
    );
    expect(v.participants).toHaveLength(1);
    expect(v.observers).toEqual({ online: 2, total: 3 });
    expect(v.hints).toEqual([{ pid: BEN, item: "i1", what: "editing", at: 99 }]);
  });
});

describe("speed", () => {
  function bigRoom(view: RoomView): void {
    const items = Array.from({ length: 10_000 }, (_, i) => item(`i${i}`, rankOf(i * 100)));
    applySnapshot(view, snapshot({ seq: 0, items, participants: [person(DANA, "Dana", "owner")] }));
  }
  function burst(view: RoomView): void {
    for (let k = 0; k < 500; k++) {
      const id = `i${(k * 7919) % 10_000}`;
      const s = view.seq + 1;
      const e: Message =
        k % 3 === 0
          ? { t: "item.moved", seq: s, at: s, by: DANA, item: id, after: null, rank: rankOf((k * 104_729) % 1_000_000) + "V" }
          : k % 3 === 1
            ? { t: "item.updated", seq: s, at: s, by: DANA, item: id, set: { title: `T${k}` } }
            : { t: "item.added", seq: s, at: s, by: DANA, item: item(`n${k}`, rankOf((k * 31_337) % 1_000_000) + "k") };
      expect(applyEvent(view, e, ME)).toBe("applied");
    }
  }

  for (const kind of ["plain object", "$state proxy"] as const) {
    test(`a 10,000-item room and a burst of 500 events (${kind})`, () => {
      const view = kind === "plain object" ? emptyView() : proxy(emptyView());
      let t0 = performance.now();
      bigRoom(view);
      const snapMs = performance.now() - t0;
      t0 = performance.now();
      burst(view);
      const burstMs = performance.now() - t0;
      console.log(
        `[timing] ${kind}: snapshot of 10,000 items ${snapMs.toFixed(1)} ms; 500 events ${burstMs.toFixed(1)} ms (${((burstMs / 500) * 1000).toFixed(0)} µs each)`,
      );
      expect(view.items.length).toBe(10_000 + 166);
      expect(isSorted(view.items)).toBe(true);
      expect(new Set(view.items.map((i) => i.id)).size).toBe(view.items.length);
      expect(findItem(view, "i0")).toBeDefined();
    });
  }
});
