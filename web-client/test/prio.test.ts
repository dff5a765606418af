import { describe, expect, test } from "vitest";
import { applyEvent, applySnapshot, emptyView } from "../src/lib/state";
import { effortOf, isOpen, median, moveText, orderDiff, plotOf, quadrant, scoreText } from "../src/lib/prio";
import { may } from "../src/lib/protocol";
import { item, person, snapshot } from "./fakes";

describe("prioritization helpers", () => {
  test("effort: numbers and ½; not ?, coffee, T-shirt sizes or nothing", () => {
    expect(effortOf("8")).toBe(8);
    expect(effortOf("½")).toBe(0.5);
    expect(effortOf("0")).toBe(0);
    expect(effortOf("2.5")).toBe(2.5);
    for (const x of ["?", "coffee", "XL", "", null, undefined, "-3", "Infinity"]) expect(effortOf(x)).toBeNull();
  });

  test("quadrants: value >= split is high, effort > split is big", () => {
    expect(quadrant(80, 1, 50, 5)).toBe("quick-win");
    expect(quadrant(80, 8, 50, 5)).toBe("big-bet");
    expect(quadrant(20, 1, 50, 5)).toBe("fill-in");
    expect(quadrant(20, 8, 50, 5)).toBe("time-sink");
    expect(quadrant(50, 5, 50, 5)).toBe("quick-win"); // on both lines: high value, small effort
    expect(quadrant(49, 6, 50, 5)).toBe("time-sink");
  });

  test("median: the lower middle, 0 for none", () => {
    expect(median([])).toBe(0);
    expect(median([5])).toBe(5);
    expect(median([8, 1, 3])).toBe(3);
    expect(median([8, 1, 3, 5])).toBe(3);
  });

  test("the plot: open items with a value and a numeric estimate, keyboard order, positions", () => {
    const items = [
      item("i1", "a1", { title: "Quick", value: 90, estimate: "1" }),
      item("i2", "a2", { title: "Bet", value: 70, estimate: "13" }),
      item("i3", "a3", { title: "Sink", value: 10, estimate: "20" }),
      item("i4", "a4", { title: "Fill", value: 5, estimate: "2" }),
      item("i5", "a5", { title: "No value", value: null, estimate: "3" }),
      item("i6", "a6", { title: "T-shirt", value: 40, estimate: "M" }),
      item("i7", "a7", { title: "Split", value: 99, estimate: "1", status: "split" }),
      item("i8", "a8", { title: "Done", value: 99, estimate: "1", status: "done" }),
    ];
    const p = plotOf(items);
    expect(p.points.map((x) => x.id)).toEqual(["i1", "i4", "i2", "i3"]); // by effort
    expect(p.missing).toBe(2);
    expect(p.effortSplit).toBe(2); // median of 1, 2, 13, 20 (lower middle)
    expect(p.maxEffort).toBe(20);
    const q = Object.fromEntries(p.points.map((x) => [x.id, x.quadrant]));
    expect(q).toEqual({ i1: "quick-win", i4: "fill-in", i2: "big-bet", i3: "time-sink" });
    const sink = p.points.find((x) => x.id === "i3")!;
    expect(sink.x).toBeCloseTo(1);
    expect(sink.y).toBeCloseTo(0.9);
    expect(p.points.find((x) => x.id === "i1")!.x).toBeCloseTo(Math.sqrt(1 / 20));
  });

  test("the diff: each proposed place against the current one", () => {
    const d = orderDiff(["a", "b", "c", "d"], ["c", "a", "b", "d"]);
    expect(d).toEqual([
      { id: "c", to: 0, from: 2, delta: 2 },
      { id: "a", to: 1, from: 0, delta: -1 },
      { id: "b", to: 2, from: 1, delta: -1 },
      { id: "d", to: 3, from: 3, delta: 0 },
    ]);
    expect(d.map((r) => moveText(r.delta))).toEqual(["up 2", "down 1", "down 1", "stays"]);
    expect(orderDiff([], [])).toEqual([]);
  });

  test("scores and who may apply", () => {
    expect(scoreText(null)).toBe("–");
    expect(scoreText(Infinity)).toBe("∞");
    expect(scoreText(10 / 3)).toBe("3.33");
    expect(isOpen({ status: "ready" })).toBe(true);
    expect(isOpen({ status: "split" })).toBe(false);
    expect(may("owner", "order.apply")).toBe(true);
    expect(may("facilitator", "order.apply")).toBe(true);
    expect(may("member", "order.apply")).toBe(false);
    expect(may("observer", "order.propose")).toBe(true);
  });
});

describe("order.applied", () => {
  test("moves the named items to their new ranks, marks them, one feed line", () => {
    const v = emptyView();
    applySnapshot(
      v,
      snapshot({
        seq: 5,
        participants: [person("P1", "Pat", "owner")],
        items: [item("i1", "a1"), item("i2", "a2"), item("i3", "a3", { status: "split" }), item("i4", "a4")],
      }),
    );
    const r = applyEvent(v, { t: "order.applied", seq: 6, at: 100, by: "P1", method: "wsjf", ranks: { i1: "a4", i4: "a1" } }, "ME");
    expect(r).toBe("applied");
    expect(v.items.map((x) => x.id)).toEqual(["i4", "i2", "i3", "i1"]);
    expect(v.changedAt).toEqual({ i1: 100, i4: 100 });
    expect(v.activity.at(-1)?.text).toBe("Pat applied the WSJF order (2 stories moved)");
  });
});
