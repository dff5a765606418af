// Kano survey helpers for the view (PROTOCOL.md "Kano survey"): the table (the server classifies
// too; the client shows one's own category), the wording, the stacked bar's segments.
import type { KanoAnswer, KanoCategory, KanoResults } from "./protocol";

export const KANO_CATEGORIES: readonly KanoCategory[] = ["A", "O", "M", "I", "R", "Q"];

export const KANO_CATEGORY_NAMES: Record<KanoCategory, string> = {
  A: "Attractive",
  O: "Performance",
  M: "Must-be",
  I: "Indifferent",
  R: "Reverse",
  Q: "Questionable",
};

export const KANO_ANSWER_LABELS: Record<KanoAnswer, string> = {
  like: "I like it",
  expect: "I expect it",
  neutral: "I am neutral",
  tolerate: "I can tolerate it",
  dislike: "I dislike it",
};

const ANSWERS: readonly KanoAnswer[] = ["like", "expect", "neutral", "tolerate", "dislike"];
const TABLE = ["QAAAO", "RIIIM", "RIIIM", "RIIIM", "RRRRQ"];

/** The category of an answer pair (rows functional, columns dysfunctional). */
export function kanoClassify(functional: KanoAnswer, dysfunctional: KanoAnswer): KanoCategory {
  return TABLE[ANSWERS.indexOf(functional)][ANSWERS.indexOf(dysfunctional)] as KanoCategory;
}

export interface BarSegment {
  cat: KanoCategory;
  count: number;
  x: number; // 0..100, percent of the bar
  width: number;
}

/** The stacked bar: one segment per category with answers, in the order A O M I R Q. */
export function kanoSegments(r: KanoResults): BarSegment[] {
  const out: BarSegment[] = [];
  let x = 0;
  if (!r.total) return out;
  for (const cat of KANO_CATEGORIES) {
    const count = r.counts[cat] ?? 0;
    if (!count) continue;
    const width = (count / r.total) * 100;
    out.push({ cat, count, x, width });
    x += width;
  }
  return out;
}

/** A coefficient for people: "0.67", "−0.33", or "–" without one. */
export function formatCoefficient(v: number | null): string {
  if (v === null || !Number.isFinite(v)) return "–";
  const s = Math.abs(v).toFixed(2);
  return v < 0 && s !== "0.00" ? `−${s}` : s;
}
