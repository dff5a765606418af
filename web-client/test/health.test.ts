import { describe, expect, test } from "vitest";
import { applyJoinOk, applyNotice, applySnapshot, emptyView } from "../src/lib/state";
import { HEALTH_RULES, applyHealthNotice, groupByRule, healthFrom, rulesText, scoreTone } from "../src/lib/health";
import type { HealthWire, JoinOk } from "../src/lib/protocol";
import { item, snapshot } from "./fakes";

const zero = Object.fromEntries(HEALTH_RULES.map((r) => [r, 0])) as HealthWire["per_rule"];
const wire = (findings: HealthWire["findings"], overall = 80): HealthWire => ({
  scores: { detailed: 50, emergent: 100, estimated: 70, prioritized: 100, overall },
  top: { items: 2, points: 13 },
  per_rule: { ...zero, unestimated: 1 },
  findings,
});

describe("health", () => {
  test("from the snapshot, then notices applied over it", () => {
    const h = healthFrom(wire([{ item: "i1", rules: ["unestimated", "draft"] }]));
    expect(h.findings).toEqual({ i1: ["unestimated", "draft"] });
    applyHealthNotice(h, {
      ...wire([], 90),
      changed: [
        { item: "i1", rules: [] },
        { item: "i2", rules: ["stale"] },
      ],
    });
    expect(h.findings).toEqual({ i2: ["stale"] });
    expect(h.scores.overall).toBe(90);
  });

  test("the view takes it from the snapshot, the replay ok and the notice", () => {
    const view = emptyView();
    expect(view.health).toBeNull();
    applySnapshot(view, snapshot({ items: [item("i1", "a0")], health: wire([{ item: "i1", rules: ["epic"] }]) }));
    expect(view.health?.findings.i1).toEqual(["epic"]);
    expect(applyNotice(view, { t: "health", at: 1, health: { ...wire([]), changed: [{ item: "i1", rules: [] }] } })).toBe(true);
    expect(view.health?.findings).toEqual({});
    const ok = { t: "ok", id: 1, pid: "p", secret: "s", role: "member", name: "n", seq: 3, mode: "replay", health: wire([{ item: "i9", rules: ["stale"] }]) } as JoinOk;
    applyJoinOk(view, ok, "p", 0);
    expect(view.health?.findings).toEqual({ i9: ["stale"] });
  });

  test("findings grouped by rule in the rules' order, items in backlog order, removed items left out", () => {
    const items = [item("i1", "a0"), item("i2", "a1"), item("i3", "a2")];
    const h = healthFrom(
      wire([
        { item: "i3", rules: ["unestimated", "stale"] },
        { item: "i1", rules: ["stale"] },
        { item: "gone", rules: ["draft"] },
      ]),
    );
    const g = groupByRule(h, items);
    expect(g.map((x) => x.rule)).toEqual(["unestimated", "stale"]);
    expect(g[1].items.map((x) => x.id)).toEqual(["i1", "i3"]);
    expect(groupByRule(null, items)).toEqual([]);
  });

  test("words and tones", () => {
    expect(rulesText(["unestimated", "wont_above_must"])).toBe("Not estimated, Won't above a must");
    expect([scoreTone(100), scoreTone(80), scoreTone(79), scoreTone(50), scoreTone(49)]).toEqual(["good", "good", "fair", "fair", "poor"]);
  });
});
