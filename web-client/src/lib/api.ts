// The contract between the client core (src/lib: connection, state, outbox, storage) and the
// views (src/components). The views only ever talk to a RoomApi and read its reactive fields;
// the core implements it in src/lib/client.svelte.ts (class RoomClient implements RoomApi).
//
// Reactivity: every field below is Svelte 5 `$state` inside RoomClient, so a view that reads
// `client.room.items` or `client.status` re-renders when it changes.

import type {
  ErrorCode,
  HintWhat,
  Item,
  ItemFields,
  Participant,
  Role,
  RoomInfo,
  Round,
  Confidence,
  KanoAnswer,
  KanoSurvey,
  PrioMethod,
  Proposal,
  Outcome,
  Persona,
  Product,
  Vision,
  MapKind,
  StoryMapData,
} from "./protocol";
import type { RoomHealth } from "./health";

export type ConnectionStatus =
  | "connecting" // first connection of this page, not yet joined
  | "connected" // joined, live
  | "reconnecting" // lost; a retry is scheduled (retryInMs counts down) or under way
  | "offline" // the browser says it is offline (navigator.onLine false); retries resume on "online"
  | "failed"; // the join was refused for good (auth_failed, not_found, room_full): see fatal

/** A refused request, readable by a person: `msg` is the server's sentence. */
export class RequestError extends Error {
  constructor(
    public code: ErrorCode | "not_sent",
    public msg: string,
  ) {
    super(msg);
  }
}

/** Someone's ephemeral activity on an item (the `hint` notice). */
export interface Hint {
  pid: string;
  item: string;
  what: HintWhat;
  at: number;
}

/** A change made while not connected: kept until sent (after the rejoin) or discarded. */
export interface PendingChange {
  key: number;
  op: string;
  fields: Record<string, unknown>;
  label: string; // "Add “Checkout”", for the "not sent" list
  state: "waiting" | "sending" | "failed";
  error?: string;
}

/** My own last undoable change: its seq, op and a sentence ("Moved “Checkout”"). */
export interface LastChange {
  seq: number;
  op: string;
  label: string;
}

/** One line of the activity feed, built from events ("Dana moved “Checkout” to the top"). */
export interface Activity {
  seq: number;
  at: number;
  text: string;
}

/** The room as this client knows it: snapshot + every event since, applied in seq order. */
export interface RoomView {
  info: RoomInfo | null;
  seq: number;
  epoch: string | null;
  items: Item[]; // every item sorted by rank (split parents included; views may hide them)
  participants: Participant[];
  observers: { online: number; total: number };
  round: Round | null; // current (voting or revealed) round, or null
  rounds: Round[]; // history, oldest first
  focus: string | null;
  timerEndsAt: number | null;
  kano: KanoSurvey[]; // Kano surveys, oldest first (no one's answer)
  product: Product; // vision, personas, outcomes
  map: StoryMapData; // the story map's structure (placements are the items' step and slice)
  health: RoomHealth | null; // DEEP health (lib/health.ts), from the server
  hints: Hint[]; // other participants' live hints
  /** item id -> time of the last remote change (for a brief highlight) */
  changedAt: Record<string, number>;
  activity: Activity[]; // newest last, at most 50
}

export interface JoinCredentials {
  room: string;
  name: string;
  token?: string; // first join from an invite link
  pid?: string; // rejoin
  secret?: string;
}

export interface RoomApi {
  readonly status: ConnectionStatus;
  readonly retryInMs: number; // while reconnecting: ms until the next attempt (0 when trying)
  readonly fatal: RequestError | null; // why status is "failed"
  readonly me: { pid: string; name: string; role: Role } | null;
  readonly room: RoomView;
  readonly pending: PendingChange[];
  /** Tokens known to this browser for this room (the creator's, or after token.rotate). */
  readonly tokens: Partial<Record<Role, string>>;

  /** Connects and joins; resolves after the first snapshot/replay is applied. */
  connect(creds: JoinCredentials): Promise<void>;
  /** Closes for good (leaving the room view). */
  close(): void;

  // Each request resolves with the `ok` reply or rejects with RequestError. Changes made while
  // not connected are queued in `pending` and sent after the rejoin (their promises settle then).
  addItem(fields: ItemFields, after?: string | null): Promise<string>; // resolves the new id
  updateItem(id: string, set: ItemFields): Promise<void>;
  moveItem(id: string, after: string | null): Promise<void>;
  removeItem(id: string): Promise<void>;
  splitItem(id: string, children: ItemFields[], pattern?: string): Promise<string[]>; // child ids
  setFocus(id: string | null): Promise<void>;
  startRound(item: string, opts?: { anonymous?: boolean; deck?: string | string[] }): Promise<void>;
  vote(round: string, card: string | null, confidence?: Confidence): Promise<void>;
  reveal(round: string): Promise<void>;
  accept(round: string, estimate: string): Promise<void>;
  cancelRound(round: string): Promise<void>;
  startTimer(seconds: number): Promise<void>;
  stopTimer(): Promise<void>;
  setRole(pid: string, role: Role): Promise<void>;
  updateRoom(
    set: Partial<
      Pick<RoomInfo, "name" | "deck" | "auto_reveal" | "reveal_on_timer" | "facilitator_grace" | "capacity" | "size_limit" | "stale_days">
    >,
  ): Promise<void>;
  rotateToken(role: Role): Promise<string>; // the new token
  claimFacilitator(): Promise<void>;
  /** Ephemeral; never queued while offline; throttled by the client (at most 2/s). */
  hint(item: string | null, what: HintWhat | null): void;
  /** My own vote in the current round (kept locally, since the server never echoes it). */
  readonly myVote: { round: string; card: string | null; confidence?: Confidence } | null;
  /** Kano survey: answer (again) for an item; reveal and reset (facilitator). */
  kanoAnswer(item: string, functional: KanoAnswer, dysfunctional: KanoAnswer): Promise<void>;
  kanoReveal(item: string): Promise<void>;
  kanoReset(item: string): Promise<void>;
  /** My own Kano answers (kept locally, since the server never echoes them): item -> pair. */
  readonly myKano: Record<string, { functional: KanoAnswer; dysfunctional: KanoAnswer }>;
  /** Merges an untouched split back (item.unsplit); rejects with the server's reason otherwise. */
  unsplitItem(id: string): Promise<void>;
  /** My last change that `undo` would undo, as this page knows it (null: none known). */
  readonly lastChange: LastChange | null;
  /** Undoes my last undoable change (`undo {seq}`); rejects with the server's reason. */
  undo(): Promise<void>;
  /** Vision (owner), personas and outcomes (owner, facilitator). add* resolve the new id. */
  setVision(set: Partial<Vision>): Promise<void>;
  addPersona(p: Partial<Omit<Persona, "id">> & { name: string }, adopt?: boolean): Promise<string>;
  updatePersona(id: string, set: Partial<Omit<Persona, "id">>): Promise<void>;
  removePersona(id: string, force?: boolean): Promise<void>;
  addOutcome(o: Partial<Omit<Outcome, "id">> & { name: string }): Promise<string>;
  updateOutcome(id: string, set: Partial<Omit<Outcome, "id">>): Promise<void>;
  removeOutcome(id: string, force?: boolean): Promise<void>;
  /** Story map: add, rename / set capacity, reorder, remove (force: it holds items), place. */
  mapAdd(kind: MapKind, name: string, opts?: { activity?: string; after?: string | null; capacity?: number | null }): Promise<string>;
  mapUpdate(node: string, set: { name?: string; capacity?: number | null }): Promise<void>;
  mapMove(node: string, after: string | null, activity?: string): Promise<void>;
  mapRemove(node: string, force?: boolean): Promise<void>;
  mapPlace(item: string, step: string | null, slice: string | null): Promise<void>;
  retryPending(key: number): void;
  discardPending(key: number): void;
  /** Prioritization: the order a method gives the backlog (changes nothing; not queued offline). */
  proposeOrder(method: PrioMethod): Promise<Proposal>;
  /** Applies the proposal of `method` made at `base` (facilitator, owner), in one event. */
  applyOrder(method: PrioMethod, base: string): Promise<void>;
}

/** Creates a room (a connection of its own) and returns its id and four tokens. */
export type CreateRoom = (
  name: string,
  deck: string | string[],
) => Promise<{ room: string; tokens: Record<Role, string> }>;
