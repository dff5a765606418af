import { describe, expect, test } from "vitest";
import { applyEvent, applySnapshot, emptyView } from "../src/lib/state";
import {
  emptyProduct,
  emptyVision,
  freeTextPersonas,
  itemPersona,
  outcomeProgress,
  outcomeRange,
  outcomeWork,
  visionText,
} from "../src/lib/product";
import { may, type Message, type Product } from "../src/lib/protocol";
import { item, snapshot } from "./fakes";

const ev = (seq: number, t: string, f: Record<string, unknown>): Message => ({ t, seq, at: 1000 + seq, by: "pO", ...f });

function product(): Product {
  return {
    vision: emptyVision(),
    personas: [{ id: "p1", name: "Shopper", description: "", goals: [] }],
    outcomes: [
      { id: "o1", name: "Carts", metric: "abandonment", unit: "%", current: 34, target: 20 },
      { id: "o2", name: "Speed", metric: "", unit: "s", current: null, target: 1 },
    ],
  };
}

function room() {
  const v = emptyView();
  applySnapshot(
    v,
    snapshot({
      seq: 5,
      items: [
        item("i1", "a1", { title: "A", persona_id: "p1", outcomes: ["o1", "o2"], estimate: "3" }),
        item("i2", "a2", { title: "B", outcomes: ["o1"], estimate: "½" }),
        item("i3", "a3", { title: "C", outcomes: ["o2"], estimate: "?" }),
        item("i4", "a4", { title: "D", persona: " shopper " }),
      ],
      product: product(),
    }),
  );
  return v;
}

describe("vision statement", () => {
  test("the whole template", () => {
    const v = {
      target: "remote Scrum teams",
      need: "refine their backlog together",
      product: "Refine",
      product_category: "live refinement board",
      benefit: "gets the top of the backlog ready in one meeting.",
      alternatives: "spreadsheets",
      differentiator: "keeps the product owner's craft in one place",
    };
    expect(visionText(v)).toBe(
      "For remote Scrum teams who refine their backlog together, Refine is a live refinement board that gets the top of the backlog ready in one meeting. " +
        "Unlike spreadsheets, our product keeps the product owner's craft in one place.",
    );
  });

  test("parts left out, and empty", () => {
    expect(visionText(emptyVision())).toBe("");
    expect(visionText({ ...emptyVision(), product: "Refine", product_category: "board" })).toBe("Refine is a board.");
    expect(visionText({ ...emptyVision(), target: "teams", differentiator: "is live" })).toBe("For teams. Our product is live.");
  });
});

describe("outcomes", () => {
  test("progress toward the target, either direction", () => {
    expect(outcomeProgress({ current: 34, target: 20 })).toBeCloseTo(20 / 34);
    expect(outcomeProgress({ current: 120, target: 200 })).toBeCloseTo(0.6);
    expect(outcomeProgress({ current: 5, target: 5 })).toBe(1);
    expect(outcomeProgress({ current: null, target: 5 })).toBeNull();
    expect(outcomeProgress({ current: -1, target: 5 })).toBeNull();
    expect(outcomeRange({ current: 34, target: 20, unit: "%" })).toBe("34 % → 20 %");
    expect(outcomeRange({ current: null, target: 1.25, unit: "s" })).toBe("– → 1.25 s");
  });

  test("items and points behind an outcome, live with estimates", () => {
    const v = room();
    let w = outcomeWork(v.items, "o1");
    expect(w.items.map((i) => i.id)).toEqual(["i1", "i2"]);
    expect(w.points).toBe(3.5);
    expect(w.unestimated).toBe(0);
    w = outcomeWork(v.items, "o2");
    expect([w.points, w.unestimated]).toEqual([3, 1]);
    applyEvent(v, ev(6, "item.updated", { item: "i3", set: { estimate: "8" } }), "pA");
    expect(outcomeWork(v.items, "o2").points).toBe(11);
  });

  test("who may change what", () => {
    expect(may("owner", "vision.set")).toBe(true);
    for (const r of ["facilitator", "member", "observer"] as const) expect(may(r, "vision.set")).toBe(false);
    for (const op of ["persona.add", "outcome.remove"]) {
      expect(may("facilitator", op)).toBe(true);
      expect(may("member", op)).toBe(false);
    }
  });
});

describe("product events", () => {
  test("snapshot without product: empty", () => {
    const v = emptyView();
    applySnapshot(v, snapshot({ seq: 1 }));
    expect(v.product).toEqual(emptyProduct());
  });

  test("vision, personas and outcomes applied; removal clears the items named", () => {
    const v = room();
    applyEvent(v, ev(6, "vision.updated", { vision: { ...emptyVision(), product: "Refine" } }), "pA");
    expect(v.product.vision.product).toBe("Refine");
    applyEvent(v, ev(7, "persona.added", { persona: { id: "p2", name: "Clerk", description: "", goals: [] }, items: ["i4"] }), "pA");
    expect(v.product.personas.map((p) => p.id)).toEqual(["p1", "p2"]);
    expect(v.items.find((i) => i.id === "i4")?.persona_id).toBe("p2");
    expect(v.changedAt.i4).toBe(1007);
    applyEvent(v, ev(8, "persona.updated", { persona: { id: "p2", name: "Clerk", description: "d", goals: ["g"] } }), "pA");
    expect(v.product.personas[1].goals).toEqual(["g"]);
    applyEvent(v, ev(9, "outcome.removed", { outcome: "o1", items: ["i1", "i2"] }), "pA");
    expect(v.product.outcomes.map((o) => o.id)).toEqual(["o2"]);
    expect(v.items.map((i) => i.outcomes)).toEqual([["o2"], [], ["o2"], []]);
    applyEvent(v, ev(10, "persona.removed", { persona: "p1", items: ["i1"] }), "pA");
    expect(v.items.find((i) => i.id === "i1")?.persona_id).toBeNull();
    applyEvent(v, ev(11, "outcome.added", { outcome: { id: "o3", name: "New", metric: "", unit: "", current: 1, target: 2 } }), "pA");
    applyEvent(v, ev(12, "outcome.updated", { outcome: { id: "o3", name: "Newer", metric: "", unit: "", current: 1, target: 2 } }), "pA");
    expect(v.product.outcomes.map((o) => o.name)).toEqual(["Speed", "Newer"]);
    expect(v.activity.map((a) => a.text).slice(-3)).toEqual([
      "Someone removed the persona Shopper",
      "Someone added the outcome “New”",
      "Someone updated the outcome “Newer”",
    ]);
  });

  test("the item's persona, and free-text personas to adopt", () => {
    const v = room();
    expect(itemPersona(v.items[0], v.product.personas)?.name).toBe("Shopper");
    expect(itemPersona(v.items[1], v.product.personas)).toBeNull();
    const items = [
      item("a", "a1", { persona: "Clerk" }),
      item("b", "a2", { persona: " clerk" }),
      item("c", "a3", { persona: "Shopper" }), // a persona already has this name
      item("d", "a4", { persona: "Buyer", persona_id: "p1" }), // linked already
      item("e", "a5", { persona: "Buyer" }),
    ];
    expect(freeTextPersonas(items, v.product.personas)).toEqual([
      { name: "Clerk", count: 2 },
      { name: "Buyer", count: 1 },
    ]);
  });
});
