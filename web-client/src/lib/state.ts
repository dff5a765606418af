// The room model: a snapshot plus every event since, applied in seq order, and the presence
// notices. Plain mutable data: these functions only read and assign through `view`, so they work
// on plain objects (the unit tests) and on Svelte `$state` proxies (the app) alike.
//
// Items stay sorted by rank (byte-wise; ranks are ASCII, so JS string order is byte order).
// Finding an item costs O(log n): an id -> rank index (kept beside the view, rebuilt when the
// items array is replaced or found stale) and a binary search by rank.
//
// Batches: between beginBatch(view) and endBatch(view) the item list and the activity feed are
// edited in working copies kept beside the view (every function here reads them), and published
// to the view once, by endBatch: a burst of events makes one new list, not one per event.

import { applyMapChange, emptyMap, mapFromSnapshot, placedLine } from "./storymap";
import type { Activity, Hint, RoomView } from "./api";
import { KANO_CATEGORY_NAMES } from "./kano";
import { applyProductEvent, emptyProduct } from "./product";
import { applyHealthNotice, healthFrom } from "./health";
import type {
  HintEntry,
  HintWhat,
  Item,
  JoinOk,
  HealthNotice,
  KanoResults,
  KanoSurvey,
  Message,
  Participant,
  Role,
  RoomInfo,
  Round,
  Snapshot,
  Stats,
} from "./protocol";

export const ACTIVITY_MAX = 50;

/** What applyEvent did with an event. */
export type ApplyResult =
  | "applied"
  | "duplicate" // seq <= the view's seq: already applied, ignored
  | "gap"; // seq > the view's seq + 1: not applied; the caller resynchronises (rejoin with since)

/** A new, empty room view (before the first snapshot). */
export function emptyView(): RoomView {
  return {
    info: null,
    seq: 0,
    epoch: null,
    items: itemList(),
    participants: [],
    observers: { online: 0, total: 0 },
    round: null,
    rounds: [],
    kano: [],
    product: emptyProduct(),
    map: emptyMap(),
    health: null,
    focus: null,
    timerEndsAt: null,
    hints: [],
    changedAt: {},
    activity: Object.setPrototypeOf([], ActivityList.prototype) as ActivityList,
  };
}

// ---------------------------------------------------------------------------------------------
// Items by rank
//
// view.items is an ItemList, an Array subclass: Svelte's $state proxies only plain arrays and
// objects, so the list and its items stay raw (a proxied 10,000-item array costs ~30 ms per
// splice). The list is copy-on-write: every change builds a new list (and a changed item is a new
// object) and assigns it to view.items, which is what a view reading `room.items` reacts to.

/**
 * The array type of view.items: Svelte never wraps it in a $state proxy (its prototype is not
 * Array.prototype). Treat it as immutable. Derived arrays (filter, map, slice) are plain arrays.
 */
export class ItemList extends Array<Item> {
  static get [Symbol.species](): ArrayConstructor {
    return Array;
  }
}

/** The array type of view.activity: raw like ItemList, replaced (not edited) on every line. */
export class ActivityList extends Array<Activity> {
  static get [Symbol.species](): ArrayConstructor {
    return Array;
  }
}

/** A plain (packed, fast) copy of a list. */
function copyOf(items: ArrayLike<Item>): Item[] {
  const out: Item[] = [];
  for (let i = 0; i < items.length; i++) out.push(items[i]);
  return out;
}

/** Tags a plain array as an ItemList, without copying (the array must not be edited after). */
function asItemList(items: Item[]): ItemList {
  return Object.setPrototypeOf(items, ItemList.prototype) as ItemList;
}

/** An ItemList holding a copy of `items` (in the given order). */
export function itemList(items: ArrayLike<Item> = []): ItemList {
  return asItemList(copyOf(items));
}

/** Byte-wise rank order (ranks are ASCII 0-9A-Za-z). */
export function compareRank(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

interface RankIndex {
  items: Item[]; // the list the index describes
  rank: Map<string, string>; // id -> rank
}
const indexes = new WeakMap<object, RankIndex>();

function rankIndex(view: RoomView): RankIndex {
  const items = view.items;
  let idx = indexes.get(view);
  if (!idx || idx.items !== items || idx.rank.size !== items.length) {
    idx = { items, rank: new Map() };
    for (let i = 0; i < items.length; i++) idx.rank.set(items[i].id, items[i].rank);
    indexes.set(view, idx);
  }
  return idx;
}

/** The first index whose rank is >= `rank` (binary search). */
function lowerBound(items: readonly Item[], rank: string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (items[mid].rank < rank) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

function search(items: readonly Item[], rank: string | undefined, id: string): number {
  if (rank === undefined) return -1;
  // Ranks are unique in a room; scan equal ranks anyway.
  for (let i = lowerBound(items, rank); i < items.length && items[i].rank === rank; i++) {
    if (items[i].id === id) return i;
  }
  return -1;
}

/**
 * The index of item `id` in view.items, or -1. O(log n). During a batch: in the working copy
 * (currentItems), which view.items becomes at endBatch.
 */
export function indexOfItem(view: RoomView, id: string): number {
  const draft = batches.get(view)?.items;
  if (draft) return search(draft.items, draft.rank.get(id), id);
  const idx = rankIndex(view);
  const i = search(view.items, idx.rank.get(id), id);
  if (i >= 0 || !idx.rank.has(id)) return i;
  indexes.delete(view); // stale (items changed behind our back): rebuild once
  return search(view.items, rankIndex(view).rank.get(id), id);
}

/** The item with this id, or undefined. O(log n). During a batch: as the batch left it. */
export function findItem(view: RoomView, id: string): Item | undefined {
  const i = indexOfItem(view, id);
  return i < 0 ? undefined : currentItems(view)[i];
}

/** view.items, or during a batch the working copy that endBatch publishes (do not edit it). */
export function currentItems(view: RoomView): readonly Item[] {
  return batches.get(view)?.items?.items ?? view.items;
}

// ---------------------------------------------------------------------------------------------
// Batches

interface Batch {
  depth: number;
  items: { items: Item[]; rank: Map<string, string> } | null; // the working copy, once edited
  activity: Activity[] | null; // the feed's working copy, once a line was added
}
const batches = new WeakMap<object, Batch>();

/**
 * Starts a batch of changes to `view` (nests): the item list and the activity feed are edited in
 * working copies and published once, by the matching endBatch. Other fields change at once.
 */
export function beginBatch(view: RoomView): void {
  const b = batches.get(view);
  if (b) b.depth++;
  else batches.set(view, { depth: 1, items: null, activity: null });
}

/** Ends a batch: the outermost one publishes a new view.items and view.activity if they changed. */
export function endBatch(view: RoomView): void {
  const b = batches.get(view);
  if (!b || --b.depth > 0) return;
  batches.delete(view);
  if (b.items) {
    view.items = asItemList(b.items.items);
    indexes.set(view, { items: view.items, rank: b.items.rank });
  }
  if (b.activity) {
    const list = b.activity;
    if (list.length > ACTIVITY_MAX) list.splice(0, list.length - ACTIVITY_MAX);
    view.activity = Object.setPrototypeOf(list, ActivityList.prototype) as ActivityList;
  }
}

/** Whether a batch of `view` is open. */
export function inBatch(view: RoomView): boolean {
  return batches.has(view);
}

/** One change of the item list: edits a copy, then commit() publishes it to the view. */
class ItemsEdit {
  items: Item[]; // a plain array while editing (ItemList's array methods are slower)
  private rank: Map<string, string>;
  private batch: Batch | undefined;
  constructor(private view: RoomView) {
    const b = (this.batch = batches.get(view));
    if (b) {
      // In a batch: every edit goes to the one working copy (copied once, at the first edit).
      b.items ??= { items: copyOf(view.items), rank: rankIndex(view).rank };
      this.items = b.items.items;
      this.rank = b.items.rank;
      return;
    }
    this.rank = rankIndex(view).rank;
    this.items = copyOf(view.items);
  }
  indexOf(id: string): number {
    return search(this.items, this.rank.get(id), id);
  }
  get(id: string): Item | undefined {
    const i = this.indexOf(id);
    return i < 0 ? undefined : this.items[i];
  }
  /** Inserts at the item's place by rank (replacing an item with the same id). */
  insert(item: Item): void {
    this.removeAt(this.indexOf(item.id));
    const at = lowerBound(this.items, item.rank);
    if (at === this.items.length) this.items.push(item);
    else this.items.splice(at, 0, item);
    this.rank.set(item.id, item.rank);
  }
  /** Rebuilds the id -> rank index after the items were changed in place. */
  reindex(): void {
    this.rank.clear();
    for (const it of this.items) this.rank.set(it.id, it.rank);
  }
  removeAt(i: number): Item | undefined {
    if (i < 0) return undefined;
    const [gone] = this.items.splice(i, 1);
    if (gone) this.rank.delete(gone.id);
    return gone;
  }
  /** Replaces item `id` by a changed copy (same rank). Returns the new object. */
  update(id: string, change: Partial<Item>): Item | undefined {
    const i = this.indexOf(id);
    if (i < 0) return undefined;
    const next = { ...this.items[i], ...change };
    if (next.rank !== this.items[i].rank) {
      this.removeAt(i);
      this.insert(next);
    } else {
      this.items[i] = next;
    }
    return next;
  }
  commit(): void {
    if (this.batch) return; // published by endBatch
    this.view.items = asItemList(this.items);
    indexes.set(this.view, { items: this.view.items, rank: this.rank });
  }
}

/** Checks that items are in rank order (for tests and after a rerank). */
export function isSorted(items: readonly Item[]): boolean {
  for (let i = 1; i < items.length; i++) if (items[i - 1].rank > items[i].rank) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// Snapshot and the join reply

/** Replaces the whole state with a snapshot (join `mode: "snapshot"`). Activity is kept. */
export function applySnapshot(view: RoomView, snap: Snapshot): void {
  const items = copyOf(snap.items ?? []);
  if (!isSorted(items)) items.sort((a, b) => compareRank(a.rank, b.rank));
  view.info = snap.room;
  view.epoch = snap.room?.epoch ?? view.epoch;
  view.seq = snap.seq;
  view.items = asItemList(items);
  view.participants = snap.participants ?? [];
  view.observers = snap.observers ?? { online: 0, total: 0 };
  view.rounds = snap.rounds ?? [];
  view.kano = snap.kano ?? [];
  view.product = snap.product ?? emptyProduct();
  view.map = mapFromSnapshot(snap.map);
  view.health = snap.health ? healthFrom(snap.health) : null;
  view.round = snap.round ?? null;
  view.focus = snap.focus ?? null;
  view.timerEndsAt = snap.timer ?? null;
  view.changedAt = {};
  indexes.delete(view);
  const b = batches.get(view);
  if (b) b.items = null; // the snapshot replaces the batch's edits; later events edit a new copy
}

/**
 * Takes what the join `ok` says about the present: the epoch, and in replay mode the participants
 * and observers (presence is not replayed); the hints in either mode.
 */
export function applyJoinOk(view: RoomView, ok: JoinOk, myPid: string, now: number): void {
  if (ok.epoch) view.epoch = ok.epoch;
  if (ok.participants) view.participants = ok.participants;
  if (ok.observers) view.observers = ok.observers;
  if (ok.health) view.health = healthFrom(ok.health);
  if (ok.hints) {
    view.hints = ok.hints
      .filter((h): h is HintEntry & { item: string; what: HintWhat } => !!h.item && !!h.what && h.pid !== myPid)
      .map((h) => ({ pid: h.pid, item: h.item, what: h.what, at: now }));
  } else if (ok.mode === "snapshot") {
    view.hints = [];
  }
}

// ---------------------------------------------------------------------------------------------
// Events

type Ev = Message & { seq: number };

/**
 * Applies one event (a message with `seq`) if it is the next one. Returns "duplicate" for
 * seq <= view.seq (ignored: never applied twice) and "gap" for seq > view.seq + 1 (not applied;
 * the caller rejoins with `since`). Remote changes (by !== myPid) mark changedAt; every event
 * but items.reranked adds a line to the activity feed.
 */
export function applyEvent(view: RoomView, ev: Message, myPid: string | null): ApplyResult {
  const seq = ev.seq;
  if (typeof seq !== "number") return "duplicate";
  if (seq <= view.seq) return "duplicate";
  if (seq > view.seq + 1) return "gap";
  const e = ev as Ev;
  const at = typeof e.at === "number" ? e.at : Date.now();
  const remote = e.by !== myPid || e.by == null;
  const line = mutate(view, e, at, remote);
  // An undo is made of the ordinary events, marked with the seq of the change undone.
  const text: Line = line && typeof e.undo === "number" ? (who) => `${line(who)} (undo)` : line;
  view.seq = seq;
  if (text) pushActivity(view, { seq, at, text: text(actorName(view, e.by ?? null, myPid)) });
  return "applied";
}

/** A sentence builder that gets the actor's display name ("Dana", "You", "Someone"). */
type Line = ((who: string) => string) | null;

function mutate(view: RoomView, e: Ev, at: number, remote: boolean): Line {
  const mark = (id: string) => {
    if (remote) view.changedAt[id] = at;
  };
  switch (e.t) {
    case "item.added": {
      const item = e.item as Item;
      const edit = new ItemsEdit(view);
      edit.insert(item);
      edit.commit();
      mark(item.id);
      return (who) => `${who} added “${item.title}”`;
    }
    case "item.updated": {
      const id = e.item as string;
      const set = (e.set ?? {}) as Partial<Item>;
      const edit = new ItemsEdit(view);
      const item = edit.update(id, { ...set, updated_at: at });
      if (!item) return null;
      edit.commit();
      mark(id);
      const keys = Object.keys(set);
      if (keys.length === 1 && keys[0] === "estimate")
        return set.estimate == null
          ? (who) => `${who} cleared the estimate of “${item.title}”`
          : (who) => `${who} set the estimate of “${item.title}” to ${set.estimate}`;
      return (who) => `${who} edited “${item.title}”`;
    }
    case "item.moved": {
      const id = e.item as string;
      const edit = new ItemsEdit(view);
      const item = edit.update(id, { rank: e.rank as string });
      if (!item) return null;
      edit.commit();
      mark(id);
      const after = e.after as string | null;
      const title = item.title;
      if (after == null) return (who) => `${who} moved “${title}” to the top`;
      const prev = edit.get(after);
      return (who) => `${who} moved “${title}” below “${prev?.title ?? "another story"}”`;
    }
    case "item.removed": {
      const id = e.item as string;
      const edit = new ItemsEdit(view);
      const item = edit.removeAt(edit.indexOf(id));
      edit.commit();
      if (view.focus === id) view.focus = null;
      delete view.changedAt[id];
      removeHintsWhere(view, (h) => h.item === id);
      return item ? (who) => `${who} removed “${item.title}”` : null;
    }
    case "item.split": {
      const id = e.item as string;
      const children = (e.children ?? []) as Item[];
      const edit = new ItemsEdit(view);
      const parent = edit.update(id, { status: "split", updated_at: at });
      if (parent) mark(id);
      for (const child of children) {
        edit.insert(child);
        mark(child.id);
      }
      edit.commit();
      removeHintsWhere(view, (h) => h.item === id); // the server drops them without a notice
      // The split closes the open round on the parent (`round`) and moves the focus from the
      // parent to the first child (`focus`); events from older servers carry neither key.
      if (typeof e.round === "string") {
        forRound(view, e.round, (r) => {
          r.state = "cancelled";
        });
        if (view.round?.id === e.round) view.round = null;
      }
      if ("focus" in e) view.focus = (e.focus as string | null) ?? null;
      const title = parent?.title ?? "a story";
      const n = children.length;
      const closed = typeof e.round === "string" ? " (the round on it is closed)" : "";
      return (who) => `${who} split “${title}” into ${n} ${n === 1 ? "story" : "stories"}${closed}`;
    }
    case "item.unsplit": {
      const id = e.item as string;
      const children = (e.children ?? []) as string[];
      const edit = new ItemsEdit(view);
      for (const child of children) {
        edit.removeAt(edit.indexOf(child));
        delete view.changedAt[child];
      }
      const parent = edit.update(id, { status: (e.status as Item["status"]) ?? "draft", updated_at: at });
      if (parent) mark(id);
      edit.commit();
      const gone = new Set(children);
      removeHintsWhere(view, (h) => gone.has(h.item));
      if ("focus" in e) view.focus = (e.focus as string | null) ?? null;
      const title = parent?.title ?? "a story";
      return (who) => `${who} merged the split of “${title}” back`;
    }
    case "backlog.imported": {
      // An import over HTTP (POST /api/rooms/{room}/import): whole items, in rank order, at once.
      const imported = (e.items ?? []) as Item[];
      const edit = new ItemsEdit(view);
      const items = edit.items;
      for (const item of imported) items.push(item);
      if (!isSorted(items)) items.sort((a, b) => compareRank(a.rank, b.rank));
      edit.reindex();
      edit.commit();
      for (const item of imported) mark(item.id);
      // The story map and the product, when the file brought them into a room that had none.
      if (e.map) view.map = mapFromSnapshot(e.map as Snapshot["map"]);
      if (e.product) view.product = e.product as NonNullable<Snapshot["product"]>;
      const n = imported.length;
      return () => `${n} ${n === 1 ? "story was" : "stories were"} imported`;
    }
    case "items.reranked": {
      const ranks = (e.ranks ?? {}) as Record<string, string>;
      const edit = new ItemsEdit(view);
      const items = edit.items;
      for (let i = 0; i < items.length; i++) {
        const r = ranks[items[i].id];
        if (r !== undefined && items[i].rank !== r) items[i] = { ...items[i], rank: r };
      }
      if (!isSorted(items)) items.sort((a, b) => compareRank(a.rank, b.rank));
      edit.reindex();
      edit.commit();
      return null;
    }
    case "order.applied": {
      // Prioritization: the items that moved, with their new ranks (PROTOCOL.md "order.apply").
      const ranks = (e.ranks ?? {}) as Record<string, string>;
      const edit = new ItemsEdit(view);
      const items = edit.items;
      let moved = 0;
      for (let i = 0; i < items.length; i++) {
        const r = ranks[items[i].id];
        if (r !== undefined && items[i].rank !== r) {
          items[i] = { ...items[i], rank: r };
          mark(items[i].id);
          moved++;
        }
      }
      items.sort((a, b) => compareRank(a.rank, b.rank));
      edit.reindex();
      edit.commit();
      const how = PRIO_METHOD_WORDS[e.method as string] ?? "a new";
      return (who) => `${who} applied ${how} order (${moved} ${moved === 1 ? "story" : "stories"} moved)`;
    }
    case "focus": {
      const id = (e.item as string | null) ?? null;
      view.focus = id;
      if (id === null) return (who) => `${who} cleared the focus`;
      const title = findItem(view, id)?.title ?? "a story";
      return (who) => `${who} put “${title}” in focus`;
    }
    case "round.started": {
      const round: Round = {
        id: e.round as string,
        item: e.item as string,
        state: "voting",
        deck: (e.deck as string[]) ?? [],
        anonymous: !!e.anonymous,
        deadline: (e.deadline as number | null) ?? null,
        started_at: at,
        revealed_at: null,
        voters: ((e.voters as string[]) ?? []).slice(),
        voted: [],
        votes: null,
        stats: null,
        estimate: null,
      };
      view.rounds.push(round);
      view.round = { ...round, voters: round.voters.slice(), voted: [] };
      const title = findItem(view, round.item)?.title ?? "a story";
      return (who) => `${who} started a round on “${title}”`;
    }
    case "voted": {
      const pid = e.pid as string;
      const has = !!e.has;
      forRound(view, e.round as string, (r) => {
        const i = r.voted.indexOf(pid);
        if (has && i < 0) r.voted.push(pid);
        if (!has && i >= 0) r.voted.splice(i, 1);
      });
      return has ? (who) => `${who} voted` : (who) => `${who} withdrew their vote`;
    }
    case "round.revealed": {
      const votes = (e.votes as Record<string, string | null> | null) ?? null;
      const stats = (e.stats as Stats | null) ?? null;
      forRound(view, e.round as string, (r) => {
        r.state = "revealed";
        r.votes = votes;
        r.stats = stats;
        r.revealed_at = at;
      });
      const summary = revealSummary(stats);
      return () => `Round revealed: ${summary}`;
    }
    case "round.accepted": {
      const estimate = e.estimate as string;
      forRound(view, e.round as string, (r) => {
        r.state = "accepted";
        r.estimate = estimate;
      });
      if (view.round?.id === e.round) view.round = null;
      const title = findItem(view, e.item as string)?.title ?? "a story";
      return (who) => `${who} accepted ${estimate} for “${title}”`;
    }
    case "round.cancelled": {
      forRound(view, e.round as string, (r) => {
        r.state = "cancelled";
      });
      if (view.round?.id === e.round) view.round = null;
      return (who) => `${who} cancelled the round`;
    }
    case "kano.answered": {
      const s = kanoSurvey(view, e.item as string);
      if (!s.answered.includes(e.pid as string)) s.answered.push(e.pid as string);
      const title = findItem(view, s.item)?.title ?? "a story";
      return (who) => `${who} answered the Kano survey of “${title}”`;
    }
    case "kano.revealed": {
      const s = kanoSurvey(view, e.item as string);
      s.revealed = true;
      s.results = (e.results as KanoResults | null) ?? null;
      const title = findItem(view, s.item)?.title ?? "a story";
      const cat = s.results?.category;
      const what = cat ? KANO_CATEGORY_NAMES[cat] : "no category";
      return () => `Kano results of “${title}”: ${what}`;
    }
    case "kano.reset": {
      const s = kanoSurvey(view, e.item as string);
      s.revealed = false;
      s.results = null;
      s.answered = [];
      return (who) => `${who} reopened a Kano survey`;
    }
    case "map.added":
    case "map.updated":
    case "map.moved":
      return applyMapChange(view.map, e);
    case "map.removed":
    case "map.placed": {
      const unplaced = e.t === "map.removed" ? ((e.unplaced as string[]) ?? []) : [e.item as string];
      const place = e.t === "map.placed" ? { step: (e.step as string | null) ?? null, slice: (e.slice as string | null) ?? null } : { step: null, slice: null };
      const edit = new ItemsEdit(view);
      let moved: Item | undefined;
      for (const id of unplaced) {
        moved = edit.update(id, { ...place, updated_at: at }) ?? moved;
        mark(id);
      }
      edit.commit();
      if (e.t === "map.removed") return applyMapChange(view.map, e);
      return placedLine(view.map, moved, place);
    }
    case "timer": {
      const ends = (e.ends_at as number | null) ?? null;
      view.timerEndsAt = ends;
      if (e.expired) return () => "Time is up";
      if (ends === null) return (who) => `${who} stopped the timer`;
      const secs = Math.max(0, Math.round((ends - at) / 1000));
      return (who) => `${who} started a ${clock(secs)} timer`;
    }
    case "participant.updated": {
      const pid = e.pid as string;
      const role = e.role as Role;
      const name = typeof e.name === "string" ? e.name : undefined;
      const p = setRole(view, pid, role, name);
      const whom = p?.name ?? name ?? "someone";
      if (e.by === pid && role === "facilitator") return (who) => `${who} took over facilitation`;
      return (who) => `${who} made ${whom} ${roleWord(role)}`;
    }
    case "room.updated": {
      const set = (e.set ?? {}) as Partial<RoomInfo>;
      if (view.info) for (const [k, v] of Object.entries(set)) (view.info as unknown as Record<string, unknown>)[k] = v;
      if (typeof set.name === "string") {
        const name = set.name;
        return (who) => `${who} renamed the room to “${name}”`;
      }
      return (who) => `${who} changed the room settings`;
    }
    case "token.rotated": {
      const role = e.role as Role;
      return (who) => `${who} replaced the ${role} invite link`;
    }
    case "vision.updated":
    case "persona.added":
    case "persona.updated":
    case "persona.removed":
    case "outcome.added":
    case "outcome.updated":
    case "outcome.removed": {
      const r = applyProductEvent(view.product, e, (id) => findItem(view, id));
      if (!r) return null;
      if (r.patches.length) {
        const edit = new ItemsEdit(view);
        for (const [id, set] of r.patches) if (edit.update(id, set)) mark(id);
        edit.commit();
      }
      return r.text;
    }
    default:
      return null; // an event this client does not know: seq still advances
  }
}

const PRIO_METHOD_WORDS: Record<string, string> = {
  value_effort: "the value/effort",
  wsjf: "the WSJF",
  moscow_value: "the MoSCoW",
};

/** The survey of an item, made (empty) when it has none yet. */
export function kanoSurvey(view: RoomView, item: string): KanoSurvey {
  let s = view.kano.find((k) => k.item === item);
  if (!s) {
    view.kano.push({ item, revealed: false, answered: [], results: null });
    s = view.kano[view.kano.length - 1];
  }
  return s;
}

/** Applies `fn` to the round with this id: the current round and its history entry. */
function forRound(view: RoomView, id: string, fn: (r: Round) => void): void {
  const cur = view.round;
  if (cur && cur.id === id) fn(cur);
  const rounds = view.rounds;
  for (let i = rounds.length - 1; i >= 0; i--) {
    if (rounds[i].id === id) {
      if (rounds[i] !== cur) fn(rounds[i]);
      break;
    }
  }
}

function setRole(view: RoomView, pid: string, role: Role, name?: string): Participant | undefined {
  const p = view.participants.find((x) => x.pid === pid);
  const obs = view.observers;
  if (!p) {
    // An observer of a crowd room (not listed) gets another role: list it from now on.
    if (role === "observer") return undefined;
    if (obs.total > 0) obs.total--;
    const added: Participant = { pid, name: name ?? "Someone", role, online: false };
    view.participants.push(added);
    return added;
  }
  if (name !== undefined) p.name = name;
  if (p.role !== role) {
    if (p.role === "observer") {
      obs.total = Math.max(0, obs.total - 1);
      if (p.online) obs.online = Math.max(0, obs.online - 1);
    } else if (role === "observer") {
      obs.total++;
      if (p.online) obs.online++;
    }
    p.role = role;
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// Notices

/**
 * Applies a presence notice (participant.joined / participant.left / observers / hint).
 * Returns false for a message that is not one of them.
 */
export function applyNotice(view: RoomView, n: Message, myPid: string | null = null): boolean {
  const at = typeof n.at === "number" ? n.at : Date.now();
  switch (n.t) {
    case "participant.joined": {
      const pid = n.pid as string;
      const role = n.role as Role;
      const name = n.name as string;
      let p = view.participants.find((x) => x.pid === pid);
      if (!p) {
        p = { pid, name, role, online: true };
        view.participants.push(p);
        if (role === "observer") {
          view.observers.total++;
          view.observers.online++;
        }
      } else {
        if (!p.online && p.role === "observer") view.observers.online++;
        p.online = true;
        p.name = name ?? p.name;
        if (role && p.role !== role) setRole(view, pid, role);
      }
      if (pid !== myPid) pushActivity(view, { seq: view.seq, at, text: `${p.name} joined` });
      return true;
    }
    case "participant.left": {
      const pid = n.pid as string;
      const p = view.participants.find((x) => x.pid === pid);
      if (p) {
        if (p.online && p.role === "observer") view.observers.online = Math.max(0, view.observers.online - 1);
        p.online = false;
        if (pid !== myPid) pushActivity(view, { seq: view.seq, at, text: `${p.name} left` });
      }
      removeHintsWhere(view, (h) => h.pid === pid);
      return true;
    }
    case "observers": {
      view.observers = { online: (n.online as number) ?? 0, total: (n.total as number) ?? 0 };
      if (view.participants.some((p) => p.role === "observer"))
        view.participants = view.participants.filter((p) => p.role !== "observer");
      return true;
    }
    case "health": {
      const h = n.health as HealthNotice | undefined;
      if (h && view.health) applyHealthNotice(view.health, h);
      else if (h) view.health = healthFrom({ ...h, findings: h.changed });
      return true;
    }
    case "hint": {
      const pid = n.pid as string;
      if (pid === myPid) return true;
      const item = (n.item as string | null) ?? null;
      const what = (n.what as HintWhat | null) ?? null;
      const hints = view.hints;
      const i = hints.findIndex((h) => h.pid === pid);
      if (!item || !what) {
        if (i >= 0) hints.splice(i, 1);
      } else if (i >= 0) {
        hints[i].item = item;
        hints[i].what = what;
        hints[i].at = at;
      } else {
        hints.push({ pid, item, what, at } satisfies Hint);
      }
      return true;
    }
    default:
      return false;
  }
}

function removeHintsWhere(view: RoomView, pred: (h: Hint) => boolean): void {
  if (view.hints.some(pred)) view.hints = view.hints.filter((h) => !pred(h));
}

// ---------------------------------------------------------------------------------------------
// Activity

function pushActivity(view: RoomView, a: Activity): void {
  const b = batches.get(view);
  if (b) {
    // In a batch: one working copy, trimmed now and then (and to ACTIVITY_MAX by endBatch).
    const list = (b.activity ??= view.activity.slice());
    list.push(a);
    if (list.length > 2 * ACTIVITY_MAX) list.splice(0, list.length - ACTIVITY_MAX);
    return;
  }
  // Copy-on-write, raw (never proxied): on a $state proxy each shift of the list would be 50
  // tracked writes per event.
  const list = view.activity;
  const next: Activity[] = [];
  for (let i = Math.max(0, list.length - ACTIVITY_MAX + 1); i < list.length; i++) next.push(list[i]);
  next.push(a);
  view.activity = Object.setPrototypeOf(next, ActivityList.prototype) as ActivityList;
}

function actorName(view: RoomView, by: string | null, myPid: string | null): string {
  if (by === null) return "Someone";
  if (by === myPid) return "You";
  return view.participants.find((p) => p.pid === by)?.name ?? "Someone";
}

function roleWord(role: Role): string {
  return role === "owner" ? "product owner" : role;
}

function clock(secs: number): string {
  return `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}`;
}

/** "5 (consensus)", "suggested 8, spread of 2 steps", "no numbers", for the feed. */
function revealSummary(stats: Stats | null): string {
  if (!stats) return "no votes";
  if (stats.consensus && stats.mode) return `${stats.mode} (consensus)`;
  if (stats.count === 0) return "no votes";
  const parts: string[] = [];
  if (stats.suggested) parts.push(`suggested ${stats.suggested}`);
  if (stats.spread !== null && stats.spread !== undefined)
    parts.push(`spread of ${stats.spread} ${stats.spread === 1 ? "step" : "steps"}`);
  return parts.length ? parts.join(", ") : "no estimate";
}
