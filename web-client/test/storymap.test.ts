import { describe, expect, test } from "vitest";
import { applyEvent, applySnapshot, emptyView } from "../src/lib/state";
import { cardsByCell, cellKey, itemsOn, pointsText, sliceFigures, stepsByActivity } from "../src/lib/storymap";
import { may, type StoryMapData } from "../src/lib/protocol";
import { item, snapshot } from "./fakes";

function map(): StoryMapData {
  return {
    activities: [
      { id: "a1", name: "Browse" },
      { id: "a2", name: "Buy" },
    ],
    steps: [
      { id: "s3", name: "Search", activity: "a1" },
      { id: "s4", name: "Pay", activity: "a2" },
      { id: "s5", name: "Filter", activity: "a1" },
    ],
    slices: [
      { id: "r6", name: "Walking skeleton", capacity: 10 },
      { id: "r7", name: "Later", capacity: null },
    ],
  };
}

function viewWith(items = [item("i1", "a"), item("i2", "b"), item("i3", "c")]) {
  const v = emptyView();
  applySnapshot(v, snapshot({ seq: 1, items, map: map() }));
  return v;
}

describe("story map structure", () => {
  test("steps group under their activity in map order", () => {
    const g = stepsByActivity(map());
    expect(g.get("a1")!.map((s) => s.id)).toEqual(["s3", "s5"]);
    expect(g.get("a2")!.map((s) => s.id)).toEqual(["s4"]);
  });

  test("events: add (first, after a sibling, last), update, move a step to another activity, remove", () => {
    const v = viewWith();
    let seq = 1;
    const ev = (t: string, f: Record<string, unknown>) => expect(applyEvent(v, { t, seq: ++seq, at: 1, by: "p1", ...f }, "p2")).toBe("applied");
    ev("map.added", { kind: "step", node: { id: "s8", name: "Compare", activity: "a1" }, after: null });
    ev("map.added", { kind: "step", node: { id: "s9", name: "Save", activity: "a1" }, after: "s3" });
    ev("map.added", { kind: "activity", node: { id: "a10", name: "Sign up" }, after: null });
    ev("map.added", { kind: "slice", node: { id: "r11", name: "R3", capacity: 5 }, after: "r7" });
    expect(stepsByActivity(v.map).get("a1")!.map((s) => s.id)).toEqual(["s8", "s3", "s9", "s5"]);
    expect(v.map.activities.map((a) => a.id)).toEqual(["a10", "a1", "a2"]);
    expect(v.map.slices.map((s) => s.id)).toEqual(["r6", "r7", "r11"]);
    ev("map.updated", { kind: "slice", node: { id: "r6", name: "MVP", capacity: 13 } });
    expect(v.map.slices[0]).toEqual({ id: "r6", name: "MVP", capacity: 13 });
    ev("map.moved", { node: "s5", kind: "step", activity: "a2", after: null });
    expect(stepsByActivity(v.map).get("a2")!.map((s) => s.id)).toEqual(["s5", "s4"]);
    ev("map.moved", { node: "r6", kind: "slice", activity: null, after: "r11" });
    expect(v.map.slices.map((s) => s.id)).toEqual(["r7", "r11", "r6"]);
    ev("map.removed", { node: "a1", kind: "activity", steps: ["s8", "s3", "s9"], unplaced: [] });
    expect(v.map.activities.map((a) => a.id)).toEqual(["a10", "a2"]);
    expect(v.map.steps.map((s) => s.id)).toEqual(["s5", "s4"]);
    expect(v.activity.at(-1)?.text).toMatch(/removed the activity “Browse”/);
  });

  test("placing and unplacing items; a removal unplaces its items in the same event", () => {
    const v = viewWith();
    applyEvent(v, { t: "map.placed", seq: 2, at: 5, by: "p1", item: "i1", step: "s3", slice: "r6" }, "p2");
    applyEvent(v, { t: "map.placed", seq: 3, at: 6, by: "p1", item: "i2", step: "s3", slice: "r6" }, "p2");
    applyEvent(v, { t: "map.placed", seq: 4, at: 7, by: "p1", item: "i3", step: "s4", slice: "r7" }, "p2");
    expect(v.activity.at(-1)?.text).toBe("Someone placed “Story i3” on Pay · Later");
    let c = cardsByCell(v.map, v.items);
    expect(c.cells.get(cellKey("s3", "r6"))!.map((i) => i.id)).toEqual(["i1", "i2"]);
    expect(c.unplaced).toEqual([]);
    applyEvent(v, { t: "map.removed", seq: 5, at: 8, by: "p1", node: "s3", kind: "step", steps: [], unplaced: ["i1", "i2"] }, "p2");
    c = cardsByCell(v.map, v.items);
    expect(c.unplaced.map((i) => i.id)).toEqual(["i1", "i2"]);
    expect(v.items.find((i) => i.id === "i1")!.step).toBeNull();
    applyEvent(v, { t: "map.placed", seq: 6, at: 9, by: "p1", item: "i3", step: null, slice: null }, "p2");
    expect(cardsByCell(v.map, v.items).unplaced.map((i) => i.id)).toEqual(["i1", "i2", "i3"]);
  });
});

describe("slice figures", () => {
  test("points against capacity, unestimated items, split parents left out", () => {
    const items = [
      item("i1", "a", { step: "s3", slice: "r6", estimate: "5" }),
      item("i2", "b", { step: "s3", slice: "r6", estimate: "½" }),
      item("i3", "c", { step: "s4", slice: "r6", estimate: "8" }),
      item("i4", "d", { step: "s4", slice: "r6", estimate: "?" }),
      item("i5", "e", { step: "s4", slice: "r6", estimate: null }),
      item("i6", "f", { step: "s5", slice: "r7", estimate: "XL" }),
      item("i7", "g", { step: "s5", slice: "r7", estimate: "13", status: "split" }),
      item("i8", "h", { estimate: "3" }),
    ];
    const f = sliceFigures(map(), items);
    const r6 = f.get("r6")!;
    expect(r6.points).toBe(13.5);
    expect(r6.over).toBe(true);
    expect(r6.fill).toBe(1);
    expect(r6.unestimated.map((i) => i.id)).toEqual(["i4", "i5"]);
    expect(r6.stories).toBe(5);
    expect(pointsText(r6)).toBe("13.5 of 10 points");
    const r7 = f.get("r7")!;
    expect([r7.points, r7.over, r7.fill, r7.stories]).toEqual([0, false, 0, 1]);
    expect(r7.unestimated.map((i) => i.id)).toEqual(["i6"]);
    expect(pointsText(r7)).toBe("0 points");
    // the split parent is on the map as a card, but counts in no slice and is not "unplaced"
    const c = cardsByCell(map(), items);
    expect(c.cells.get(cellKey("s5", "r7"))!.map((i) => i.id)).toEqual(["i6", "i7"]);
    expect(c.unplaced.map((i) => i.id)).toEqual(["i8"]);
    expect(itemsOn(map(), items, "activity", "a1")).toBe(4);
    expect(itemsOn(map(), items, "step", "s4")).toBe(3);
    expect(itemsOn(map(), items, "slice", "r7")).toBe(2);
  });

  test("an item on a step the map does not have counts as unplaced", () => {
    const c = cardsByCell(map(), [item("i1", "a", { step: "s99", slice: "r6" })]);
    expect(c.unplaced.map((i) => i.id)).toEqual(["i1"]);
  });

  test("who may edit the map and place cards", () => {
    for (const op of ["map.add", "map.update", "map.move", "map.remove"]) {
      expect(may("facilitator", op)).toBe(true);
      expect(may("owner", op)).toBe(true);
      expect(may("member", op)).toBe(false);
      expect(may("observer", op)).toBe(false);
    }
    expect(may("member", "map.place")).toBe(true);
    expect(may("observer", "map.place")).toBe(false);
  });
});
