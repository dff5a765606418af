// Story map, the pure logic (PROTOCOL.md "Story map"): the structure from the snapshot and the
// map.* events, the cells and their cards, and each release slice's points against its capacity.
// A card's place is its item's `step` and `slice`; cards in a cell are in backlog (rank) order.
import type { Item, MapKind, MapNode, StoryMapData } from "./protocol";
import { cardValue } from "./stats";

/** A sentence builder for the activity feed (as state.ts's). */
type Line = ((who: string) => string) | null;

const LIST: Record<MapKind, keyof StoryMapData> = { activity: "activities", step: "steps", slice: "slices" };

export function emptyMap(): StoryMapData {
  return { activities: [], steps: [], slices: [] };
}

/** The structure of the snapshot's map (its slices' figures are left out: clients recompute). */
export function mapFromSnapshot(m: StoryMapData | undefined): StoryMapData {
  if (!m) return emptyMap();
  return {
    activities: m.activities.map((a) => ({ id: a.id, name: a.name })),
    steps: m.steps.map((s) => ({ id: s.id, name: s.name, activity: s.activity })),
    slices: m.slices.map((s) => ({ id: s.id, name: s.name, capacity: s.capacity ?? null })),
  };
}

/** The siblings of a node of kind `kind` (for a step: the steps of `activity`). */
function siblings(list: MapNode[], kind: MapKind, activity: string | undefined): MapNode[] {
  return kind === "step" ? list.filter((n) => n.activity === activity) : list;
}

/** Puts `node` into `list` below sibling `after` (null: first among its siblings). */
function insertAfter(list: MapNode[], kind: MapKind, node: MapNode, after: string | null): void {
  let at: number;
  if (after == null) {
    const first = siblings(list, kind, node.activity)[0];
    at = first ? list.indexOf(first) : list.length;
  } else {
    const i = list.findIndex((n) => n.id === after);
    at = i < 0 ? list.length : i + 1;
  }
  list.splice(at, 0, node);
}

export function findNode(map: StoryMapData, id: string | null | undefined): { kind: MapKind; node: MapNode } | null {
  if (!id) return null;
  for (const kind of ["activity", "step", "slice"] as const) {
    const node = map[LIST[kind]].find((n) => n.id === id);
    if (node) return { kind, node };
  }
  return null;
}

/** Applies map.added, map.updated, map.moved or map.removed to the structure (in place). */
export function applyMapChange(map: StoryMapData, e: Record<string, unknown>): Line {
  const kind = e.kind as MapKind;
  const key = LIST[kind];
  if (!key) return null;
  const word = kind === "slice" ? "release slice" : kind;
  switch (e.t) {
    case "map.added": {
      const node = { ...(e.node as MapNode) };
      const list = map[key].slice();
      insertAfter(list, kind, node, (e.after as string | null) ?? null);
      map[key] = list;
      return (who) => `${who} added the ${word} “${node.name}” to the story map`;
    }
    case "map.updated": {
      const node = e.node as MapNode;
      const old = map[key].find((n) => n.id === node.id);
      map[key] = map[key].map((n) => (n.id === node.id ? { ...n, ...node } : n));
      if (old && old.name !== node.name) return (who) => `${who} renamed the ${word} “${old.name}” to “${node.name}”`;
      const cap = node.capacity;
      return (who) => (cap == null ? `${who} cleared the capacity of “${node.name}”` : `${who} set the capacity of “${node.name}” to ${cap} points`);
    }
    case "map.moved": {
      const list = map[key].slice();
      const i = list.findIndex((n) => n.id === e.node);
      if (i < 0) return null;
      const [n] = list.splice(i, 1);
      const node = kind === "step" ? { ...n, activity: (e.activity as string) ?? n.activity } : n;
      insertAfter(list, kind, node, (e.after as string | null) ?? null);
      map[key] = list;
      return (who) => `${who} moved the ${word} “${node.name}” on the story map`;
    }
    case "map.removed": {
      const gone = new Set([e.node as string, ...((e.steps as string[]) ?? [])]);
      const name = map[key].find((n) => n.id === e.node)?.name ?? "a node";
      map.activities = map.activities.filter((n) => !gone.has(n.id));
      map.steps = map.steps.filter((n) => !gone.has(n.id));
      map.slices = map.slices.filter((n) => !gone.has(n.id));
      const k = ((e.unplaced as string[]) ?? []).length;
      const tail = k ? ` (${k} ${k === 1 ? "story" : "stories"} unplaced)` : "";
      return (who) => `${who} removed the ${word} “${name}” from the story map${tail}`;
    }
  }
  return null;
}

/** The activity line of map.placed. */
export function placedLine(map: StoryMapData, item: Item | undefined, place: { step: string | null; slice: string | null }): Line {
  const title = item?.title ?? "a story";
  if (!place.step) return (who) => `${who} took “${title}” off the story map`;
  const step = findNode(map, place.step)?.node.name ?? "a step";
  const slice = findNode(map, place.slice)?.node.name ?? "a slice";
  return (who) => `${who} placed “${title}” on ${step} · ${slice}`;
}

/** The steps of each activity, in map order. */
export function stepsByActivity(map: StoryMapData): Map<string, MapNode[]> {
  const out = new Map<string, MapNode[]>(map.activities.map((a) => [a.id, []]));
  for (const s of map.steps) out.get(s.activity ?? "")?.push(s);
  return out;
}

export const cellKey = (step: string, slice: string) => `${step}|${slice}`;

/** Whether an item stands on the map as a card (a split parent's children stand for it). */
export function counts(item: Item): boolean {
  return item.status !== "split";
}

/**
 * The cards of every cell (key cellKey(step, slice)) in rank order, and the unplaced items
 * (split parents left out). An item on a step or slice the map does not have counts as unplaced.
 */
export function cardsByCell(map: StoryMapData, items: readonly Item[]): { cells: Map<string, Item[]>; unplaced: Item[] } {
  const steps = new Set(map.steps.map((s) => s.id));
  const slices = new Set(map.slices.map((s) => s.id));
  const cells = new Map<string, Item[]>();
  const unplaced: Item[] = [];
  for (const it of items) {
    if (it.step && it.slice && steps.has(it.step) && slices.has(it.slice)) {
      const k = cellKey(it.step, it.slice);
      const list = cells.get(k);
      if (list) list.push(it);
      else cells.set(k, [it]);
    } else if (counts(it)) {
      unplaced.push(it);
    }
  }
  return { cells, unplaced };
}

export interface SliceFigures {
  points: number; // the sum of the numeric estimates of its items
  capacity: number | null;
  unestimated: Item[]; // its items without a numeric estimate, in rank order
  stories: number; // its items (split parents left out)
  over: boolean; // points > capacity
  /** 0..1: how full the bar is drawn (points / capacity, capped at 1; 0 without a capacity). */
  fill: number;
}

/** Each slice's figures, by the rule of PROTOCOL.md "Story map" (the server's snapshot figures). */
export function sliceFigures(map: StoryMapData, items: readonly Item[]): Map<string, SliceFigures> {
  const out = new Map<string, SliceFigures>();
  for (const s of map.slices)
    out.set(s.id, { points: 0, capacity: s.capacity ?? null, unestimated: [], stories: 0, over: false, fill: 0 });
  for (const it of items) {
    const f = it.slice ? out.get(it.slice) : undefined;
    if (!f || !counts(it)) continue;
    f.stories++;
    const v = cardValue(it.estimate);
    if (v === null) f.unestimated.push(it);
    else f.points += v;
  }
  for (const f of out.values()) {
    f.points = Math.round(f.points * 100) / 100;
    f.over = f.capacity !== null && f.points > f.capacity;
    f.fill = f.capacity ? Math.min(1, f.points / f.capacity) : 0;
  }
  return out;
}

/** "8 of 10 points", "21 points" (no capacity), "½". */
export function pointsText(f: SliceFigures): string {
  const p = f.points === 0.5 ? "½" : String(f.points);
  return f.capacity === null ? `${p} ${f.points === 1 ? "point" : "points"}` : `${p} of ${f.capacity} points`;
}

/** The number of items a node holds (an activity: on any of its steps), for the removal dialog. */
export function itemsOn(map: StoryMapData, items: readonly Item[], kind: MapKind, id: string): number {
  let n = 0;
  const steps = kind === "activity" ? new Set(map.steps.filter((s) => s.activity === id).map((s) => s.id)) : null;
  for (const it of items) {
    if (kind === "slice" ? it.slice === id : kind === "step" ? it.step === id : !!it.step && steps!.has(it.step)) n++;
  }
  return n;
}
