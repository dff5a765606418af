import { describe, expect, test } from "vitest";
import { formatCountdown, formatNumber, initials, relativeTime, roleLabel, secondsLeft } from "../src/lib/format";
import {
  KEY_WINDOW_MS,
  cardValue,
  deckCards,
  describeReveal,
  distributionBars,
  keyToCard,
  splitSum,
  suggestedCard,
  voteProgress,
  type KeyBuffer,
} from "../src/lib/stats";
import { buildHash, inviteLink, parseHash } from "../src/lib/hash";
import { DECKS, LIMITS, SPLIT_PATTERNS, type Stats } from "../src/lib/protocol";
import protocolDoc from "../../protocol/PROTOCOL.md?raw";
import { person } from "./fakes";

function stats(over: Partial<Stats>): Stats {
  return {
    count: 3, not_voted: 0, missing: [], numeric: 3, min: 3, max: 8, mean: 5.333, median: 5,
    distribution: { "3": 1, "5": 1, "8": 1 }, mode: "3", consensus: false, spread: 2,
    highest: [], lowest: [], suggested: "5", confidence: { low: 0, medium: 0, high: 0 }, ...over,
  };
}

describe("format", () => {
  test("numbers: one decimal, no .0, ½", () => {
    expect(formatNumber(6.5)).toBe("6.5");
    expect(formatNumber(6)).toBe("6");
    expect(formatNumber(5.333)).toBe("5.3");
    expect(formatNumber(2.96)).toBe("3");
    expect(formatNumber(0.5)).toBe("½");
    expect(formatNumber(null)).toBe("–");
  });
  test("countdowns and seconds", () => {
    expect(secondsLeft(1200)).toBe(2);
    expect(secondsLeft(-5)).toBe(0);
    expect(formatCountdown(125_000)).toBe("2:05");
    expect(formatCountdown(0)).toBe("0:00");
  });
  test("relative times", () => {
    const now = 1_800_000_000_000;
    expect(relativeTime(now - 10_000, now)).toBe("just now");
    expect(relativeTime(now - 60_000, now)).toBe("1 min ago");
    expect(relativeTime(now - 5 * 60_000, now)).toBe("5 min ago");
    expect(relativeTime(now - 3 * 3_600_000, now)).toBe("3 h ago");
    expect(relativeTime(now - 30 * 3_600_000, now)).toBe("yesterday");
    expect(relativeTime(now - 4 * 86_400_000, now)).toBe("4 days ago");
    expect(relativeTime(now - 40 * 86_400_000, now)).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect(relativeTime(now + 30_000, now)).toBe("in 30 s");
  });
  test("initials", () => {
    expect(initials("Dana Scully")).toBe("DS");
    expect(initials("ana")).toBe("A");
    expect(initials("Jean-Luc Picard")).toBe("JP");
    expect(initials("  Mary Ann  Smith ")).toBe("MS");
    expect(initials("")).toBe("?");
    expect(initials("éva ørsted")).toBe("ÉØ");
    expect(initials("🦊 Fox")).toBe("🦊F");
  });
  test("roles", () => {
    expect(roleLabel("owner")).toBe("Product owner");
  });
});

describe("poker helpers", () => {
  test("decks and card values", () => {
    expect(deckCards("tshirt")).toEqual(DECKS.tshirt);
    expect(deckCards(["a", "b"])).toEqual(["a", "b"]);
    expect(deckCards("nope")).toEqual([]);
    expect(cardValue("½")).toBe(0.5);
    expect(cardValue("13")).toBe(13);
    expect(cardValue("XL")).toBeNull();
    expect(cardValue("?")).toBeNull();
  });

  test("N of M voted: the round's voters, online voters, anyone who voted", () => {
    const people = [
      person("a", "Ana", "facilitator"),
      person("b", "Ben", "member"),
      person("c", "Cy", "member", false), // offline, not a voter
      person("d", "Di", "owner", false), // offline but in the round's voters
      person("o", "Olga", "observer"),
      person("e", "Eve", "member"), // came online after the start
    ];
    const p = voteProgress({ voters: ["a", "b", "d"], voted: ["b", "d"] }, people);
    expect(p.text).toBe("2 of 4 voted");
    expect(p.waitingFor.sort()).toEqual(["a", "e"]);
  });

  test("reveal in words and the suggested card", () => {
    expect(describeReveal(stats({ consensus: true, distribution: { "5": 2, "?": 3 }, mode: "?", spread: 0 }))).toBe("Consensus on 5");
    expect(suggestedCard(stats({ consensus: true, distribution: { "5": 2, "?": 3 }, mode: "?", spread: 0 }))).toBe("5");
    expect(describeReveal(stats({}))).toBe("Spread of 2 steps");
    expect(describeReveal(stats({ spread: 1 }))).toBe("Spread of 1 step");
    expect(describeReveal(stats({ spread: null, distribution: { "?": 2 }, mode: "?", suggested: null }))).toBe("Only ? and coffee");
    expect(suggestedCard(stats({ spread: null, distribution: { "?": 2 }, mode: "?", suggested: null }))).toBeNull();
    expect(describeReveal(stats({ count: 0 }))).toBe("No votes");
    expect(suggestedCard(stats({}))).toBe("5");
    expect(distributionBars(stats({ distribution: { "8": 2, "3": 1, "?": 1 } }), DECKS.fibonacci)).toEqual([
      { card: "3", count: 1 },
      { card: "8", count: 2 },
      { card: "?", count: 1 },
    ]);
  });

  test("split dialog: children's sum against the parent's estimate (½ = 0.5, non-numbers skipped)", () => {
    const s = splitSum(["3", "½", "?", null, "2"], "5");
    expect(s).toMatchObject({ sum: 5.5, counted: 3, uncounted: 2, parent: 5, diff: 0.5 });
    expect(s.text).toBe("Children 5.5 vs story 5 (+½)");
    expect(splitSum(["1"], "3").text).toBe("Children 1 vs story 3 (−2)");
    expect(splitSum(["S"], null)).toMatchObject({ sum: 0, counted: 0, parent: null, diff: null, text: "Children 0" });
  });

  test("keyboard voting: digits join within 600 ms, letters for t-shirts, ? and c", () => {
    const type = (keys: [string, number][], deck: readonly string[]) => {
      let buf: KeyBuffer | null = null;
      const picked: (string | null)[] = [];
      for (const [k, at] of keys) {
        const r = keyToCard(k, deck, at, buf);
        buf = r.buffer;
        picked.push(r.card);
      }
      return picked;
    };
    const fib = DECKS.fibonacci;
    expect(type([["1", 0], ["3", 300]], fib)).toEqual(["1", "13"]);
    expect(type([["1", 0], ["3", 300 + KEY_WINDOW_MS]], fib)).toEqual(["1", "3"]);
    expect(type([["8", 0], ["9", 100]], fib)).toEqual(["8", "89"]);
    expect(type([["1", 0], ["1", 100]], fib)).toEqual(["1", "1"]); // no card 11: starts again
    expect(type([["4", 0]], fib)).toEqual([null]);
    expect(type([["?", 0], ["c", 10]], fib)).toEqual(["?", "coffee"]);
    const mod = DECKS.modified;
    expect(type([["1", 0], ["0", 100], ["0", 200]], mod)).toEqual(["1", null, "100"]);
    expect(type([[".", 0]], mod)).toEqual(["½"]);
    const tshirt = DECKS.tshirt;
    expect(type([["s", 0]], tshirt)).toEqual(["S"]);
    expect(type([["m", 0], ["l", 100]], tshirt)).toEqual(["M", "L"]);
    expect(type([["x", 0], ["l", 100]], tshirt)).toEqual([null, "XL"]);
    expect(type([["x", 0], ["x", 100], ["L", 200]], tshirt)).toEqual([null, null, "XXL"]);
    expect(type([["x", 0], ["s", 100]], tshirt)).toEqual([null, "XS"]);
    expect(type([["Enter", 0]], tshirt)).toEqual([null]);
  });
});

describe("hash routes", () => {
  test("parse and build", () => {
    expect(parseHash("#room=R1&token=T-_x")).toEqual({ room: "R1", token: "T-_x" });
    expect(parseHash("#room=R1")).toEqual({ room: "R1", token: null });
    expect(parseHash("")).toEqual({ room: null, token: null });
    expect(buildHash({ room: "R1", token: "T" })).toBe("#room=R1&token=T");
    expect(buildHash({ room: "R1" })).toBe("#room=R1");
    expect(buildHash({})).toBe("");
    expect(parseHash(buildHash({ room: "a b&c", token: "x=y" }))).toEqual({ room: "a b&c", token: "x=y" });
  });
  test("invite links carry the token in the fragment", () => {
    expect(inviteLink("https://refine.example", "R1", "tok")).toBe("https://refine.example/#room=R1&token=tok");
    expect(inviteLink("http://localhost:8080/", "R1", "tok")).toBe("http://localhost:8080/#room=R1&token=tok");
  });
  test("invite links may carry the role and the room name as display hints, in the fragment", () => {
    const link = inviteLink("https://refine.example", "R1", "tok", { role: "member", name: "Sprint 14 & co + “more”" });
    expect(link).toBe("https://refine.example/#room=R1&token=tok&role=member&name=Sprint%2014%20%26%20co%20%2B%20%E2%80%9Cmore%E2%80%9D");
    const u = new URL(link);
    expect(u.search).toBe("");
    expect(parseHash(u.hash)).toEqual({ room: "R1", token: "tok", role: "member", name: "Sprint 14 & co + “more”" });
    // Old links (no hints) still parse; the hints are absent, not null.
    expect(parseHash("#room=R1&token=tok")).toStrictEqual({ room: "R1", token: "tok" });
  });
  test("hints are never trusted: unknown roles and empty names are dropped, long names cut", () => {
    expect(parseHash("#room=R1&token=t&role=admin&name=")).toStrictEqual({ room: "R1", token: "t" });
    expect(parseHash("#room=R1&token=t&role=observer&name=%20%20")).toStrictEqual({ room: "R1", token: "t", role: "observer" });
    expect(parseHash(`#room=R1&token=t&name=${"x".repeat(500)}`).name).toHaveLength(200);
    // A room's own address carries no hints.
    expect(buildHash({ room: "R1", role: "member", name: "N" })).toBe("#room=R1");
  });
});

describe("split patterns", () => {
  test("the dialog's ids are PROTOCOL.md's table, in order, each with a hint and within the limit", () => {
    const doc: string = protocolDoc;
    const from = doc.indexOf("| id | pattern | hint |");
    const table = doc.slice(from, doc.indexOf("\n\n", from));
    const ids = [...table.matchAll(/^\| `([a-z-]+)` \|/gm)].map((m) => m[1]);
    expect(from).toBeGreaterThan(0);
    expect(SPLIT_PATTERNS.map((p) => p.id)).toEqual(ids);
    for (const p of SPLIT_PATTERNS) {
      expect(p.hint.length).toBeGreaterThan(10);
      expect(p.id.length).toBeLessThanOrEqual(LIMITS.pattern);
    }
  });
});
