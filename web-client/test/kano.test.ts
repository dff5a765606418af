import { describe, expect, test } from "vitest";
import { applyEvent, applySnapshot, emptyView } from "../src/lib/state";
import { formatCoefficient, kanoClassify, kanoSegments } from "../src/lib/kano";
import { KANO_ANSWERS, may, type KanoResults } from "../src/lib/protocol";
import { item, person, snapshot } from "./fakes";

// refinement.md's table, rows functional, columns dysfunctional.
const TABLE: Record<string, string> = {
  like: "QAAAO",
  expect: "RIIIM",
  neutral: "RIIIM",
  tolerate: "RIIIM",
  dislike: "RRRRQ",
};

describe("kano table", () => {
  test("every one of the 25 answer pairs", () => {
    let n = 0;
    for (const f of KANO_ANSWERS)
      for (const [j, d] of KANO_ANSWERS.entries()) {
        expect(kanoClassify(f, d), `${f}/${d}`).toBe(TABLE[f][j]);
        n++;
      }
    expect(n).toBe(25);
  });

  test("who may answer, reveal, reset", () => {
    for (const r of ["facilitator", "owner", "member", "observer"] as const) expect(may(r, "kano.answer")).toBe(true);
    expect(may("facilitator", "kano.reveal")).toBe(true);
    for (const r of ["owner", "member", "observer"] as const) {
      expect(may(r, "kano.reveal")).toBe(false);
      expect(may(r, "kano.reset")).toBe(false);
    }
  });
});

describe("kano results", () => {
  const res: KanoResults = {
    counts: { A: 1, O: 2, M: 1, I: 0, R: 0, Q: 0 },
    total: 4,
    category: "O",
    satisfaction: 0.75,
    dissatisfaction: -0.75,
  };

  test("the stacked bar's segments fill the bar in the order A O M I R Q", () => {
    const s = kanoSegments(res);
    expect(s.map((x) => x.cat)).toEqual(["A", "O", "M"]);
    expect(s.map((x) => x.x)).toEqual([0, 25, 75]);
    expect(s.reduce((a, x) => a + x.width, 0)).toBe(100);
    expect(kanoSegments({ ...res, counts: { A: 0, O: 0, M: 0, I: 0, R: 0, Q: 0 }, total: 0 })).toEqual([]);
  });

  test("coefficients for people", () => {
    expect(formatCoefficient(0.6666)).toBe("0.67");
    expect(formatCoefficient(-0.3333)).toBe("−0.33");
    expect(formatCoefficient(-0)).toBe("0.00");
    expect(formatCoefficient(null)).toBe("–");
  });
});

describe("kano events", () => {
  function room() {
    const v = emptyView();
    applySnapshot(
      v,
      snapshot({
        seq: 5,
        participants: [person("pA", "Ana", "facilitator"), person("pW", "Wes", "observer")],
        items: [item("i1", "a1"), item("i2", "a2")],
        kano: [{ item: "i2", revealed: false, answered: ["pA"], results: null }],
      }),
    );
    return v;
  }
  const ev = (seq: number, t: string, f: Record<string, unknown>, by = "pW") => ({ t, seq, at: 1, by, ...f });

  test("the snapshot's surveys, answers counted, revealed, reset", () => {
    const v = room();
    expect(v.kano).toHaveLength(1);
    expect(applyEvent(v, ev(6, "kano.answered", { item: "i1", pid: "pW", count: 1 }), "pA")).toBe("applied");
    expect(v.kano.find((k) => k.item === "i1")?.answered).toEqual(["pW"]);
    applyEvent(v, ev(7, "kano.answered", { item: "i1", pid: "pW", count: 1 }), "pA"); // changed answer
    expect(v.kano.find((k) => k.item === "i1")?.answered).toEqual(["pW"]);
    const results: KanoResults = {
      counts: { A: 1, O: 0, M: 0, I: 0, R: 0, Q: 0 },
      total: 1,
      category: "A",
      satisfaction: 1,
      dissatisfaction: -0,
    };
    applyEvent(v, ev(8, "kano.revealed", { item: "i1", results }, "pA"), "pA");
    const s = v.kano.find((k) => k.item === "i1")!;
    expect(s.revealed).toBe(true);
    expect(s.results).toEqual(results);
    expect(v.activity.at(-1)?.text).toBe("Kano results of “Story i1”: Attractive");
    applyEvent(v, ev(9, "kano.reset", { item: "i1" }, "pA"), "pA");
    expect(v.kano.find((k) => k.item === "i1")).toEqual({ item: "i1", revealed: false, answered: [], results: null });
    expect(v.seq).toBe(9);
  });
});
