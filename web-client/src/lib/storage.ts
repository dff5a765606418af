// What this browser remembers, in localStorage: the last name used, per room the participant's
// credentials and known tokens, the recent rooms, drafts (what someone is typing) and the changes
// not sent yet (so a reload while offline does not lose them).
//
// Guarded: localStorage may be missing, throw on access (private mode, blocked cookies) or be
// full. Every write also lands in an in-memory copy, so this page keeps working (a reconnect still
// finds its pid and secret) even when nothing can be persisted; no function here ever throws.

import type { PendingChange } from "./api";
import type { Role } from "./protocol";

/** The subset of the Web Storage API used here. */
export interface StorageBackend {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

/** What is kept per room. */
export interface StoredRoom {
  room: string;
  roomName?: string;
  name?: string; // my display name in that room
  pid?: string;
  secret?: string;
  role?: Role;
  lastJoinedAt: number;
  /** Invite tokens known here: the creator's four, or the facilitator's/owner's own one. */
  tokens: Partial<Record<Role, string>>;
  /** My vote in the room's current round (the server never tells it back before a reveal). */
  vote?: { round: string; card: string | null } | null;
}

const PREFIX = "refine.";
const K_NAME = PREFIX + "name";
const K_ROOMS = PREFIX + "rooms";
const draftKey = (room: string, key: string) => `${PREFIX}draft.${room}.${key}`;
const pendingKey = (room: string) => `${PREFIX}pending.${room}`;

/** Rooms whose credentials are kept (the recent list shows the newest RECENT_MAX of them). */
export const ROOMS_KEPT = 50;
export const RECENT_MAX = 10;

let backend: StorageBackend | null | undefined; // undefined: not looked up yet
const memory = new Map<string, string | null>(); // this page's writes (null: removed)

function store(): StorageBackend | null {
  if (backend === undefined) {
    try {
      backend = (globalThis as { localStorage?: StorageBackend }).localStorage ?? null;
    } catch {
      backend = null; // access itself throws (blocked storage)
    }
  }
  return backend;
}

/** Uses `b` instead of localStorage (tests), or null for none; clears the in-memory copy. */
export function useStorageBackend(b: StorageBackend | null | undefined): void {
  backend = b;
  memory.clear();
}

function read(key: string): string | null {
  if (memory.has(key)) return memory.get(key) ?? null;
  try {
    return store()?.getItem(key) ?? null;
  } catch {
    return null;
  }
}

function write(key: string, value: string | null): void {
  memory.set(key, value);
  try {
    const s = store();
    if (!s) return;
    if (value === null) s.removeItem(key);
    else s.setItem(key, value);
  } catch {
    /* quota or private mode: the in-memory copy serves this page */
  }
}

function readJson<T>(key: string, fallback: T): T {
  const raw = read(key);
  if (raw === null) return fallback;
  try {
    return JSON.parse(raw) as T;
  } catch {
    return fallback;
  }
}

/** The name typed last time ("" if none). */
export function loadName(): string {
  return read(K_NAME) ?? "";
}

/** Remembers the name for the next join form. */
export function saveName(name: string): void {
  write(K_NAME, name);
}

function allRooms(): StoredRoom[] {
  const list = readJson<unknown>(K_ROOMS, []);
  if (!Array.isArray(list)) return [];
  return list.filter(
    (r): r is StoredRoom => !!r && typeof r === "object" && typeof (r as StoredRoom).room === "string",
  );
}

/** What this browser knows of a room, or null. */
export function getRoom(room: string): StoredRoom | null {
  return allRooms().find((r) => r.room === room) ?? null;
}

/**
 * Merges `patch` into the room's entry (created if new; tokens merged, not replaced) and moves it
 * to the front of the recent list when `touch` (a join). Returns the stored entry.
 */
export function saveRoom(
  room: string,
  patch: Partial<Omit<StoredRoom, "room">>,
  opts: { touch?: boolean; now?: number } = {},
): StoredRoom {
  const rooms = allRooms();
  const i = rooms.findIndex((r) => r.room === room);
  const old: StoredRoom = i >= 0 ? rooms[i] : { room, lastJoinedAt: 0, tokens: {} };
  const next: StoredRoom = {
    ...old,
    ...patch,
    room,
    tokens: { ...old.tokens, ...(patch.tokens ?? {}) },
  };
  if (opts.touch) next.lastJoinedAt = opts.now ?? Date.now();
  if (i >= 0) rooms.splice(i, 1);
  rooms.unshift(next);
  rooms.sort((a, b) => b.lastJoinedAt - a.lastJoinedAt);
  write(K_ROOMS, JSON.stringify(rooms.slice(0, ROOMS_KEPT)));
  return next;
}

/** Forgets a room's pid and secret (they were refused); tokens and name stay. */
export function forgetCredentials(room: string): void {
  const r = getRoom(room);
  if (!r) return;
  const rest: Partial<StoredRoom> = { ...r };
  delete rest.pid;
  delete rest.secret;
  const rooms = allRooms().map((x) => (x.room === room ? ({ ...rest, room } as StoredRoom) : x));
  write(K_ROOMS, JSON.stringify(rooms));
}

/** Removes one token (it was rotated away). */
export function forgetToken(room: string, role: Role): void {
  const r = getRoom(room);
  if (!r || !r.tokens[role]) return;
  const tokens = { ...r.tokens };
  delete tokens[role];
  const rooms = allRooms().map((x) => (x.room === room ? { ...x, tokens } : x));
  write(K_ROOMS, JSON.stringify(rooms));
}

/** Removes a room from this browser (credentials, tokens and its place in the list). */
export function forgetRoom(room: string): void {
  write(K_ROOMS, JSON.stringify(allRooms().filter((r) => r.room !== room)));
}

/**
 * The room moved to the id `to` (PROTOCOL.md "Moving a room"): its entry (pid, secret, tokens,
 * name: they open the new room too) is copied there and takes the old one's place in the recent
 * list. The old id keeps its entry out of the recent list, so an old link still opens it and
 * follows the move again.
 */
export function moveRoom(from: string, to: string): void {
  const old = getRoom(from);
  if (!old || from === to) return;
  const copy: Partial<StoredRoom> = { ...old };
  delete copy.room;
  saveRoom(to, copy);
  write(K_ROOMS, JSON.stringify(allRooms().map((x) => (x.room === from ? { ...x, lastJoinedAt: 0 } : x))));
}

/** Rooms joined from this browser, newest first, at most RECENT_MAX. */
export function recentRooms(): StoredRoom[] {
  return allRooms()
    .filter((r) => r.lastJoinedAt > 0)
    .sort((a, b) => b.lastJoinedAt - a.lastJoinedAt)
    .slice(0, RECENT_MAX);
}

/** Keeps what someone is typing in `key` (e.g. "item:i3:title", "new-item"); "" clears it. */
export function saveDraft(room: string, key: string, text: string): void {
  write(draftKey(room, key), text === "" ? null : text);
}

/** The draft kept for this room and key, or null. */
export function loadDraft(room: string, key: string): string | null {
  return read(draftKey(room, key));
}

/** Drops the draft (call once the server acknowledged the change). */
export function clearDraft(room: string, key: string): void {
  write(draftKey(room, key), null);
}

/**
 * A change not acknowledged yet, as kept across a reload: "waiting" was never sent, "sending" was
 * sent and its reply is unknown, "failed" was refused or could not be confirmed (shown until
 * discarded).
 */
export type StoredPending = Pick<PendingChange, "key" | "op" | "fields" | "label" | "state" | "error">;

const PENDING_STATES: ReadonlySet<string> = new Set(["waiting", "sending", "failed"]);

/** Replaces the room's list of changes not acknowledged yet ([] removes it). */
export function savePending(room: string, list: readonly StoredPending[]): void {
  let text: string | null = null;
  if (list.length) {
    try {
      text = JSON.stringify(
        list.map((p) => {
          const row: StoredPending = { key: p.key, op: p.op, fields: p.fields, label: p.label, state: p.state };
          if (p.error) row.error = p.error;
          return row;
        }),
      );
    } catch {
      return; // not serialisable (never expected): keep what was stored before
    }
  }
  write(pendingKey(room), text);
}

/** The room's changes kept by savePending, in order; malformed rows are left out. */
export function loadPending(room: string): StoredPending[] {
  const list = readJson<unknown>(pendingKey(room), []);
  if (!Array.isArray(list)) return [];
  const out: StoredPending[] = [];
  const keys = new Set<number>();
  for (const r of list as unknown[]) {
    if (!r || typeof r !== "object") continue;
    const p = r as Record<string, unknown>;
    const fields = p.fields;
    if (
      typeof p.key !== "number" ||
      !Number.isSafeInteger(p.key) ||
      keys.has(p.key) ||
      typeof p.op !== "string" ||
      !fields ||
      typeof fields !== "object" ||
      Array.isArray(fields) ||
      typeof p.label !== "string" ||
      typeof p.state !== "string" ||
      !PENDING_STATES.has(p.state)
    )
      continue;
    keys.add(p.key);
    const row: StoredPending = {
      key: p.key,
      op: p.op,
      fields: fields as Record<string, unknown>,
      label: p.label,
      state: p.state as StoredPending["state"],
    };
    if (typeof p.error === "string" && p.error) row.error = p.error;
    out.push(row);
  }
  return out;
}
