// Prioritization helpers for the Priorities view (PROTOCOL.md "Prioritization"): which items are
// ordered, their effort, the value-vs-effort quadrants and plot positions, and the proposed order
// as a diff of the current one. Pure functions: the unit tests drive them directly.
import type { Item, Moscow, PrioMethod } from "./protocol";

export const PRIO_METHODS: readonly { id: PrioMethod; label: string; hint: string }[] = [
  { id: "value_effort", label: "Value / effort", hint: "Value divided by the estimate, largest first." },
  { id: "wsjf", label: "WSJF", hint: "Cost of delay (business value + time criticality + risk reduction) divided by the estimate." },
  { id: "moscow_value", label: "MoSCoW, then value", hint: "Must, Should, Could, Won't; by value within each." },
];

export const MOSCOW_COLUMNS: readonly { id: Moscow | null; label: string }[] = [
  { id: "must", label: "Must" },
  { id: "should", label: "Should" },
  { id: "could", label: "Could" },
  { id: "wont", label: "Won't" },
  { id: null, label: "Unsorted" },
];

/** WSJF's relative scale as the editor offers it (the server takes any integer 0..20). */
export const WSJF_SCALE: readonly number[] = [1, 2, 3, 5, 8, 13, 20];

/** Whether an item takes part in an order: not a split parent, not done. */
export function isOpen(it: Pick<Item, "status">): boolean {
  return it.status !== "split" && it.status !== "done";
}

/** The estimate as a number ("½" is 0.5), or null: none, "?", "coffee", T-shirt sizes. */
export function effortOf(estimate: string | null | undefined): number | null {
  if (estimate == null) return null;
  if (estimate === "½") return 0.5;
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(estimate)) return null;
  const v = Number(estimate);
  return Number.isFinite(v) && v >= 0 ? v : null;
}

export type Quadrant = "quick-win" | "big-bet" | "fill-in" | "time-sink";

export const QUADRANT_NAMES: Record<Quadrant, string> = {
  "quick-win": "Quick wins",
  "big-bet": "Big bets",
  "fill-in": "Fill-ins",
  "time-sink": "Time sinks",
};

/** The quadrant of a point: high value is value >= valueSplit; high effort is effort > effortSplit. */
export function quadrant(value: number, effort: number, valueSplit: number, effortSplit: number): Quadrant {
  const high = value >= valueSplit;
  const big = effort > effortSplit;
  return high ? (big ? "big-bet" : "quick-win") : big ? "time-sink" : "fill-in";
}

/** The median of a list of numbers (the lower middle of an even list), or 0 for none. */
export function median(xs: readonly number[]): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1];
}

export interface PlotPoint {
  id: string;
  title: string;
  value: number;
  effort: number;
  quadrant: Quadrant;
  x: number; // 0..1 from the left (effort, square-root scale)
  y: number; // 0..1 from the top (value 100 at the top)
}

export interface Plot {
  points: PlotPoint[]; // in keyboard order: by effort, then by value (highest first)
  missing: number; // open items without a value or a numeric estimate
  effortSplit: number; // the median effort of the plotted items
  maxEffort: number;
}

/**
 * The value-vs-effort plot of the open items that have a value and a numeric estimate. Effort runs
 * on a square-root scale (estimates grow roughly geometrically); the effort split is the median
 * effort of the plotted items, the value split 50.
 */
export function plotOf(items: readonly Item[]): Plot {
  const base: Omit<PlotPoint, "quadrant" | "x" | "y">[] = [];
  let missing = 0;
  for (const it of items) {
    if (!isOpen(it)) continue;
    const effort = effortOf(it.estimate);
    if (it.value == null || effort == null) {
      missing++;
      continue;
    }
    base.push({ id: it.id, title: it.title, value: it.value, effort });
  }
  const effortSplit = median(base.map((p) => p.effort));
  const maxEffort = Math.max(1, ...base.map((p) => p.effort));
  const points = base.map((p) => ({
    ...p,
    quadrant: quadrant(p.value, p.effort, 50, effortSplit),
    x: Math.sqrt(p.effort) / Math.sqrt(maxEffort),
    y: 1 - p.value / 100,
  }));
  points.sort((a, b) => a.effort - b.effort || b.value - a.value);
  return { points, missing, effortSplit, maxEffort };
}

export interface DiffRow {
  id: string;
  to: number; // 0-based place in the proposed order
  from: number; // 0-based place now (among the open items)
  delta: number; // from - to: > 0 moves up by delta, < 0 down
}

/** The proposed order against the current order of the same ids. */
export function orderDiff(current: readonly string[], proposed: readonly string[]): DiffRow[] {
  const at = new Map<string, number>();
  current.forEach((id, i) => at.set(id, i));
  return proposed.map((id, to) => {
    const from = at.get(id) ?? to;
    return { id, to, from, delta: from - to };
  });
}

/** "up 3", "down 1", "stays", for a diff row. */
export function moveText(delta: number): string {
  if (delta > 0) return `up ${delta}`;
  if (delta < 0) return `down ${-delta}`;
  return "stays";
}

/** A score as people read it: "∞", "4.25", or "–" for none. */
export function scoreText(score: number | null | undefined): string {
  if (score == null) return "–";
  if (!Number.isFinite(score)) return "∞";
  return String(Math.round(score * 100) / 100);
}
