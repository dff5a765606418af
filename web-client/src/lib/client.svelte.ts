// RoomClient: the one object the views talk to (RoomApi). It owns the connection, joins and
// rejoins (with `since` + `epoch`), keeps the room model up to date, sends changes (queued while
// not connected, checked after a reconnect instead of resent blindly), throttles hints, and
// remembers credentials, tokens, my vote and the changes not acknowledged yet in localStorage
// (a reload restores the latter: never-sent ones go out after the join, sent ones are checked).

import type {
  ConnectionStatus,
  CreateRoom,
  JoinCredentials,
  LastChange,
  PendingChange,
  RoomApi,
  RoomView,
} from "./api";
import { RequestError } from "./api";
import {
  Connection,
  Disconnected,
  defaultUrl,
  roomUrl,
  type Backoff,
  type ConnState,
  type OnlineSignal,
  type SocketFactory,
  type Timers,
  browserTimers,
} from "./connection";
import type {
  Confidence,
  KanoAnswer,
  ErrorCode,
  HintWhat,
  Item,
  ItemFields,
  JoinOk,
  Message,
  PrioMethod,
  Proposal,
  Role,
  RoomInfo,
  Snapshot,
  Outcome,
  Persona,
  Vision,
} from "./protocol";
import type { Scheduler } from "./schedule";
import { applyEvent, applyJoinOk, applyNotice, applySnapshot, beginBatch, emptyView, endBatch, findItem, indexOfItem } from "./state";
import * as storage from "./storage";
import { buildHash, parseHash } from "./hash";
import type { MapKind, MapNode } from "./protocol";
import { findNode } from "./storymap";

/** Everything injectable (tests); the browser's defaults otherwise. */
export interface RoomClientOptions {
  url?: string;
  WebSocketImpl?: SocketFactory;
  timers?: Timers;
  online?: OnlineSignal;
  random?: () => number;
  backoff?: Partial<Backoff>;
  /** When incoming messages are handled, in batches (the page's animation frames by default). */
  scheduler?: Scheduler;
  sliceBudgetMs?: number;
}

/** Hints go out at most this often (the server allows 10/s; we send at most 2/s). */
export const HINT_INTERVAL_MS = 500;
/** How many changes may await their reply at once (the server allows 50 messages/s). */
export const SEND_WINDOW = 20;
/** The sentence for a change whose reply was lost with the connection and cannot be checked. */
export const MAY_NOT_BE_SAVED = "The connection dropped before the server confirmed this change; it may not have been saved.";

const FATAL_JOIN: ReadonlySet<string> = new Set(["auth_failed", "not_found", "room_full", "bad_request"]);
/** The toast for a change refused while the room moves to another server (`unavailable`). */
export const MOVING_TEXT = "The room is being moved; try again in a moment.";
/** How long a toast (notice) stays. */
export const NOTICE_MS = 6000;

/** A change on its way: queued, sent, or failed. */
interface Entry {
  key: number;
  op: string;
  fields: Record<string, unknown>;
  label: string;
  visible: boolean; // listed in `pending` (made while not connected, or failed after a drop)
  sentAtSeq: number; // the room's seq when it was sent
  settled: boolean;
  resolve(ok: Message): void;
  reject(err: RequestError): void;
}

type Ev = Message & { seq: number };

export class RoomClient implements RoomApi {
  status = $state<ConnectionStatus>("connecting");
  retryInMs = $state(0);
  fatal = $state<RequestError | null>(null);
  me = $state<{ pid: string; name: string; role: Role } | null>(null);
  room = $state<RoomView>(emptyView());
  pending = $state<PendingChange[]>([]);
  tokens = $state<Partial<Record<Role, string>>>({});
  myKano = $state<Record<string, { functional: KanoAnswer; dysfunctional: KanoAnswer }>>({});
  myVote = $state<{ round: string; card: string | null; confidence?: Confidence } | null>(null);
  lastChange = $state<LastChange | null>(null);
  /** Extra (not in RoomApi): the id of the room this client is in (it changes when the room moves). */
  roomId = $state<string | null>(null);
  /** Extra (not in RoomApi): a passing sentence for a toast (e.g. MOVING_TEXT), or null. */
  notice = $state<string | null>(null);

  private opts: RoomClientOptions;
  private timers: Timers;
  private conn: Connection | null = null;
  private creds: JoinCredentials | null = null;
  private secret: string | null = null;
  private everJoined = false;
  private synced = false;
  private syncTarget: number | null = null; // replay: synced once room.seq reaches it
  private awaitingSnapshot = false;
  private outbox: Entry[] = []; // not sent yet, in order
  private inflight = new Set<Entry>(); // sent on the current socket
  private inDoubt: Entry[] = []; // sent, socket lost before the reply
  private nextKey = 1;
  private mine: Ev[] = []; // recent events authored by me (to check in-doubt changes)
  private ticker: unknown = null;
  private hintWanted: { item: string | null; what: HintWhat | null } = { item: null, what: null };
  private hintSent: { item: string | null; what: HintWhat | null } = { item: null, what: null };
  private hintAt = -Infinity;
  private hintTimer: unknown = null;
  private connected: { resolve(): void; reject(e: RequestError): void } | null = null;
  private batchView: RoomView | null = null; // the view a batch of incoming messages is editing
  private noticeTimer: unknown = null;

  constructor(opts: RoomClientOptions = {}) {
    this.opts = opts;
    this.timers = opts.timers ?? browserTimers;
  }

  /** Connects and joins; resolves once the first snapshot or replay is applied. */
  connect(creds: JoinCredentials): Promise<void> {
    if (this.conn) this.shutdown(null);
    const stored = storage.getRoom(creds.room);
    this.creds = { ...creds };
    this.roomId = creds.room;
    if (!this.creds.pid && stored?.pid && stored.secret) {
      this.creds.pid = stored.pid;
      this.creds.secret = stored.secret;
    }
    this.secret = this.creds.secret ?? null;
    this.tokens = { ...(stored?.tokens ?? {}) };
    this.myVote = stored?.vote ? { round: stored.vote.round, card: stored.vote.card } : null;
    this.room = emptyView();
    this.restorePending(creds.room);
    this.fatal = null;
    this.status = "connecting";
    this.everJoined = false;
    const promise = new Promise<void>((resolve, reject) => {
      this.connected = { resolve, reject };
    });
    promise.catch(() => {}); // a caller that ignores it must not see an unhandled rejection
    this.conn = new Connection({
      // The room's own URL (/r/<room>/ws, so a balancer routes it to the room's home), asked
      // again before every attempt: it follows this.creds.room.
      url: () => roomUrl(this.creds?.room ?? creds.room, this.opts.url),
      WebSocketImpl: this.opts.WebSocketImpl,
      timers: this.timers,
      online: this.opts.online,
      random: this.opts.random,
      backoff: this.opts.backoff,
      scheduler: this.opts.scheduler,
      sliceBudgetMs: this.opts.sliceBudgetMs,
      onOpen: () => this.join(),
      onMessage: (m) => this.onMessage(m),
      // A slice of incoming messages is one batch: the item list (and the feed) is replaced once
      // per slice, not per event. Replies are resolved in the slice, in order, and their
      // promise callbacks run after it, when the batch is published: the author's event shows
      // in room.items by the time its change resolves.
      onBatchStart: () => {
        this.batchView = this.room;
        beginBatch(this.batchView);
      },
      onBatchEnd: () => {
        const view = this.batchView;
        this.batchView = null;
        if (view) endBatch(view);
      },
      onDown: () => this.onDown(),
      onState: (s) => this.onConnState(s),
    });
    this.conn.start();
    return promise;
  }

  /** Closes for good (leaving the room view): changes not yet sent are rejected. */
  close(): void {
    this.shutdown(new RequestError("not_sent", "The room was closed before this change was sent."));
  }

  /** Extra (not in RoomApi): retries at once while reconnecting or offline ("Retry now"). */
  retryNow(): void {
    if (this.conn && (this.conn.state === "waiting" || this.conn.state === "offline")) this.conn.reconnectNow();
  }

  // ---- changes ---------------------------------------------------------------------------

  async addItem(fields: ItemFields, after?: string | null): Promise<string> {
    const f: Record<string, unknown> = { item: fields };
    if (after !== undefined) f.after = after;
    const ok = await this.change("item.add", f, `Add “${fields.title ?? ""}”`);
    this.noteUndoable(ok, "item.add", `Added “${fields.title ?? ""}”`);
    return ok.item as string;
  }

  async updateItem(id: string, set: ItemFields): Promise<void> {
    const ok = await this.change("item.update", { item: id, set }, `Edit “${this.title(id)}”`);
    this.noteUndoable(ok, "item.update", `Edited “${this.title(id)}”`);
  }

  async moveItem(id: string, after: string | null): Promise<void> {
    const ok = await this.change("item.move", { item: id, after }, `Move “${this.title(id)}”`);
    this.noteUndoable(ok, "item.move", `Moved “${this.title(id)}”`);
  }

  async removeItem(id: string): Promise<void> {
    const title = this.title(id);
    const ok = await this.change("item.remove", { item: id }, `Remove “${title}”`);
    this.noteUndoable(ok, "item.remove", `Removed “${title}”`);
  }

  async splitItem(id: string, children: ItemFields[], pattern?: string): Promise<string[]> {
    const f: Record<string, unknown> = { item: id, children };
    if (pattern) f.pattern = pattern;
    const ok = await this.change("item.split", f, `Split “${this.title(id)}”`);
    this.noteUndoable(ok, "item.split", `Split “${this.title(id)}”`);
    const ev = this.mine.find((e) => e.seq === ok.seq && e.t === "item.split");
    return ((ev?.children as Item[] | undefined) ?? []).map((c) => c.id);
  }

  async unsplitItem(id: string): Promise<void> {
    await this.change("item.unsplit", { item: id }, `Merge “${this.title(id)}” back`);
  }

  /** Undoes lastChange (or, unknown to this page, whatever the server holds as my last). */
  async undo(): Promise<void> {
    const last = this.lastChange;
    try {
      await this.change("undo", last ? { seq: last.seq } : {}, last ? `Undo: ${last.label}` : "Undo");
    } catch (e) {
      // Refused: that change can never be undone any more (versions only move on).
      if (e instanceof RequestError && e.code !== "not_sent" && this.lastChange === last) this.lastChange = null;
      throw e;
    }
    if (this.lastChange === last) this.lastChange = null;
  }

  /** A change of mine that made an event (ok with seq) is the one `undo` would undo now. */
  private noteUndoable(ok: Message, op: string, label: string): void {
    if (typeof ok.seq === "number") this.lastChange = { seq: ok.seq, op, label };
  }

  async setFocus(id: string | null): Promise<void> {
    await this.change("focus", { item: id }, id ? `Focus “${this.title(id)}”` : "Clear the focus");
  }

  async startRound(item: string, opts: { anonymous?: boolean; deck?: string | string[] } = {}): Promise<void> {
    await this.change("round.start", { item, ...opts }, `Start a round on “${this.title(item)}”`);
  }

  async vote(round: string, card: string | null, confidence?: Confidence): Promise<void> {
    const before = this.myVote ? { ...this.myVote } : null;
    const mine = confidence ? { round, card, confidence } : { round, card };
    this.setMyVote(mine);
    const f: Record<string, unknown> = { round, card };
    if (confidence) f.confidence = confidence;
    try {
      await this.change("vote", f, card === null ? "Withdraw my vote" : `Vote ${card}`);
    } catch (e) {
      if (this.myVote && this.myVote.round === round && this.myVote.card === card) this.setMyVote(before);
      throw e;
    }
  }

  async kanoAnswer(item: string, functional: KanoAnswer, dysfunctional: KanoAnswer): Promise<void> {
    const before = this.myKano[item];
    this.myKano[item] = { functional, dysfunctional };
    try {
      await this.change("kano.answer", { item, functional, dysfunctional }, `Answer the Kano survey of “${this.title(item)}”`);
    } catch (e) {
      if (before) this.myKano[item] = before;
      else delete this.myKano[item];
      throw e;
    }
  }

  async kanoReveal(item: string): Promise<void> {
    await this.change("kano.reveal", { item }, `Reveal the Kano results of “${this.title(item)}”`);
  }

  async kanoReset(item: string): Promise<void> {
    await this.change("kano.reset", { item }, `Reopen the Kano survey of “${this.title(item)}”`);
    delete this.myKano[item];
  }

  async proposeOrder(method: PrioMethod): Promise<Proposal> {
    if (!this.conn || this.status !== "connected") throw new RequestError("not_sent", "Not connected: the proposal needs the server.");
    const reply = await this.conn.request({ t: "order.propose", method });
    if (reply.t !== "ok") throw new RequestError((reply.code as ErrorCode) ?? "internal", (reply.msg as string) ?? "The server refused the proposal.");
    return reply as unknown as Proposal;
  }

  async applyOrder(method: PrioMethod, base: string): Promise<void> {
    await this.change("order.apply", { method, base }, "Apply the proposed order");
  }

  async setVision(set: Partial<Vision>): Promise<void> {
    await this.change("vision.set", { vision: set }, "Change the product vision");
  }

  async addPersona(p: Partial<Omit<Persona, "id">> & { name: string }, adopt = false): Promise<string> {
    const f: Record<string, unknown> = { persona: p };
    if (adopt) f.adopt = true;
    const ok = await this.change("persona.add", f, `Add the persona ${p.name}`);
    return ok.persona as string;
  }

  async updatePersona(id: string, set: Partial<Omit<Persona, "id">>): Promise<void> {
    await this.change("persona.update", { persona: id, set }, "Edit a persona");
  }

  async removePersona(id: string, force = false): Promise<void> {
    await this.change("persona.remove", force ? { persona: id, force } : { persona: id }, "Remove a persona");
  }

  async addOutcome(o: Partial<Omit<Outcome, "id">> & { name: string }): Promise<string> {
    const ok = await this.change("outcome.add", { outcome: o }, `Add the outcome “${o.name}”`);
    return ok.outcome as string;
  }

  async updateOutcome(id: string, set: Partial<Omit<Outcome, "id">>): Promise<void> {
    await this.change("outcome.update", { outcome: id, set }, "Edit an outcome");
  }

  async removeOutcome(id: string, force = false): Promise<void> {
    await this.change("outcome.remove", force ? { outcome: id, force } : { outcome: id }, "Remove an outcome");
  }

  async mapAdd(kind: MapKind, name: string, opts: { activity?: string; after?: string | null; capacity?: number | null } = {}): Promise<string> {
    const ok = await this.change("map.add", { kind, name, ...opts }, `Add “${name}” to the story map`);
    const ev = this.mine.find((e) => e.seq === ok.seq && e.t === "map.added");
    return ((ev?.node as MapNode | undefined)?.id as string) ?? "";
  }

  async mapUpdate(node: string, set: { name?: string; capacity?: number | null }): Promise<void> {
    await this.change("map.update", { node, ...set }, `Change “${this.mapName(node)}” on the story map`);
  }

  async mapMove(node: string, after: string | null, activity?: string): Promise<void> {
    const f: Record<string, unknown> = { node, after };
    if (activity) f.activity = activity;
    await this.change("map.move", f, `Move “${this.mapName(node)}” on the story map`);
  }

  async mapRemove(node: string, force = false): Promise<void> {
    const f: Record<string, unknown> = { node };
    if (force) f.force = true;
    await this.change("map.remove", f, `Remove “${this.mapName(node)}” from the story map`);
  }

  async mapPlace(item: string, step: string | null, slice: string | null): Promise<void> {
    await this.change("map.place", { item, step, slice }, step ? `Place “${this.title(item)}” on the story map` : `Take “${this.title(item)}” off the story map`);
  }

  private mapName(id: string): string {
    return findNode(this.room.map, id)?.node.name ?? "a node";
  }

  async reveal(round: string): Promise<void> {
    await this.change("round.reveal", { round }, "Reveal the votes");
  }

  async accept(round: string, estimate: string): Promise<void> {
    await this.change("round.accept", { round, estimate }, `Accept ${estimate}`);
  }

  async cancelRound(round: string): Promise<void> {
    await this.change("round.cancel", { round }, "Cancel the round");
  }

  async startTimer(seconds: number): Promise<void> {
    await this.change("timer.start", { seconds }, `Start a ${seconds} s timer`);
  }

  async stopTimer(): Promise<void> {
    await this.change("timer.stop", {}, "Stop the timer");
  }

  async setRole(pid: string, role: Role): Promise<void> {
    const name = this.room.participants.find((p) => p.pid === pid)?.name ?? "someone";
    await this.change("role.set", { pid, role }, `Make ${name} ${role}`);
  }

  async updateRoom(
    set: Partial<
      Pick<RoomInfo, "name" | "deck" | "auto_reveal" | "reveal_on_timer" | "facilitator_grace" | "capacity" | "size_limit" | "stale_days">
    >,
  ): Promise<void> {
    await this.change("room.update", { ...set }, "Change the room settings");
  }

  async rotateToken(role: Role): Promise<string> {
    const ok = await this.change("token.rotate", { role }, `New ${role} link`);
    return ok.token as string; // kept by done(), also for a retried or restored one
  }

  async claimFacilitator(): Promise<void> {
    await this.change("role.claim", {}, "Become facilitator");
  }

  /** Ephemeral; never queued while offline; at most one every HINT_INTERVAL_MS, the latest wins. */
  hint(item: string | null, what: HintWhat | null): void {
    if (!this.me || this.me.role === "observer") return;
    this.hintWanted = item && what ? { item, what } : { item: null, what: null };
    this.scheduleHint();
  }

  retryPending(key: number): void {
    const i = this.pending.findIndex((p) => p.key === key);
    if (i < 0 || this.pending[i].state !== "failed") return;
    const p = this.pending[i];
    const entry = this.newEntry(p.op, { ...p.fields }, p.label);
    entry.key = key; // keep the row
    entry.visible = true;
    this.pending[i].state = "waiting";
    this.pending[i].error = undefined;
    this.outbox.push(entry);
    this.persistPending();
    this.pump();
  }

  discardPending(key: number): void {
    const j = this.pending.findIndex((p) => p.key === key);
    if (j < 0 || this.pending[j].state === "sending") return; // awaiting its reply: not discardable
    for (const queue of [this.outbox, this.inDoubt]) {
      // an in-doubt one must not be resent (or shown again) by the check after the rejoin
      const i = queue.findIndex((e) => e.key === key);
      if (i >= 0) {
        const [e] = queue.splice(i, 1);
        this.settle(e, null, new RequestError("not_sent", "Discarded: this change was not sent."));
      }
    }
    this.pending.splice(j, 1);
    this.persistPending();
  }

  // ---- the outbox ------------------------------------------------------------------------

  private change(op: string, fields: Record<string, unknown>, label: string): Promise<Message> {
    if (!this.conn || this.status === "failed" || this.conn.state === "closed") {
      const why = this.fatal?.msg ?? "Not connected to a room.";
      return Promise.reject(new RequestError("not_sent", why));
    }
    const entry = this.newEntry(op, fields, label);
    const promise = new Promise<Message>((resolve, reject) => {
      entry.resolve = resolve;
      entry.reject = reject;
    });
    this.outbox.push(entry);
    if (!this.synced) this.showPending(entry, "waiting");
    this.pump();
    return promise;
  }

  private newEntry(op: string, fields: Record<string, unknown>, label: string): Entry {
    return {
      key: this.nextKey++,
      op,
      fields,
      label,
      visible: false,
      sentAtSeq: 0,
      settled: false,
      resolve: () => {},
      reject: () => {},
    };
  }

  /** Sends queued changes in order while joined, at most SEND_WINDOW awaiting replies. */
  private pump(): void {
    while (this.synced && this.conn && this.outbox.length && this.inflight.size < SEND_WINDOW) {
      this.send(this.outbox.shift()!);
    }
  }

  private send(entry: Entry): void {
    const conn = this.conn!;
    entry.sentAtSeq = this.room.seq;
    this.inflight.add(entry);
    if (entry.visible) this.showPending(entry, "sending");
    conn.request({ t: entry.op, ...entry.fields }).then(
      (reply) => {
        this.inflight.delete(entry);
        if (reply.t === "ok") this.done(entry, reply);
        else this.refused(entry, (reply.code as ErrorCode) ?? "internal", (reply.msg as string) ?? "The server refused this change.");
        this.pump();
      },
      (err: unknown) => {
        this.inflight.delete(entry);
        if (entry.settled) return;
        if (err instanceof Disconnected && !err.sent) this.outbox.unshift(entry); // never left this page
        else this.inDoubt.push(entry); // sent: checked after the rejoin
        this.showPending(entry, "waiting");
      },
    );
  }

  private done(entry: Entry, ok: Message): void {
    if (entry.op === "token.rotate" && typeof ok.token === "string") {
      // here, not in rotateToken: a retried or restored one has no caller to keep it
      const role = entry.fields.role as Role;
      this.tokens = { ...this.tokens, [role]: ok.token };
      if (this.creds) storage.saveRoom(this.creds.room, { tokens: { [role]: ok.token } });
    }
    if (entry.visible) this.dropPending(entry.key);
    this.settle(entry, ok, null);
  }

  private refused(entry: Entry, code: ErrorCode | "not_sent", msg: string): void {
    if (code === "unavailable") this.showNotice(MOVING_TEXT);
    if (entry.visible || code === "not_sent") this.showPending(entry, "failed", msg);
    this.settle(entry, null, new RequestError(code, msg));
  }

  private settle(entry: Entry, ok: Message | null, err: RequestError | null): void {
    if (entry.settled) return;
    entry.settled = true;
    if (ok) entry.resolve(ok);
    else entry.reject(err!);
  }

  private showPending(entry: Entry, state: PendingChange["state"], error?: string): void {
    entry.visible = true;
    const i = this.pending.findIndex((p) => p.key === entry.key);
    if (i >= 0) {
      this.pending[i].state = state;
      this.pending[i].error = error;
    } else {
      const row: PendingChange = { key: entry.key, op: entry.op, fields: entry.fields, label: entry.label, state };
      if (error) row.error = error;
      this.pending.push(row);
    }
    this.persistPending();
  }

  private dropPending(key: number): void {
    const i = this.pending.findIndex((p) => p.key === key);
    if (i >= 0) {
      this.pending.splice(i, 1);
      this.persistPending();
    }
  }

  /**
   * Keeps the `pending` list in localStorage with each change's true state: a row shown as
   * waiting whose change was sent before the connection dropped is kept as "sending" (a reload
   * must check it, not resend it), and waiting ones are kept in the order they will be sent.
   */
  private persistPending(): void {
    if (!this.creds) return;
    const sent = new Set<number>();
    for (const e of this.inflight) sent.add(e.key);
    for (const e of this.inDoubt) sent.add(e.key);
    const rows: storage.StoredPending[] = this.pending.map((p) => ({
      key: p.key,
      op: p.op,
      fields: p.fields,
      label: p.label,
      state: p.state === "failed" ? "failed" : sent.has(p.key) ? "sending" : "waiting",
      error: p.state === "failed" ? p.error : undefined,
    }));
    const at = new Map(this.outbox.map((e, i) => [e.key, i] as const));
    const slots = rows.flatMap((r, i) => (r.state === "waiting" ? [i] : []));
    const waiting = slots.map((i) => rows[i]).sort((a, b) => (at.get(a.key) ?? Infinity) - (at.get(b.key) ?? Infinity));
    slots.forEach((slot, j) => (rows[slot] = waiting[j]));
    storage.savePending(this.creds.room, rows);
  }

  /**
   * After a reload (or on opening the room): the changes kept for it come back. Never-sent ones
   * are queued again (sent after the join, in order); sent ones whose reply was lost are checked
   * after the join like any lost reply (settleInDoubt: confirmed, or failed as maybe not saved);
   * failed ones stay listed for Retry or Discard. Their promises died with the page: nothing is
   * settled for them, the list is just kept true.
   */
  private restorePending(room: string): void {
    const rows = storage.loadPending(room);
    this.pending = [];
    for (const r of rows) {
      this.nextKey = Math.max(this.nextKey, r.key + 1);
      if (r.state === "failed") {
        const row: PendingChange = { key: r.key, op: r.op, fields: r.fields, label: r.label, state: "failed" };
        if (r.error) row.error = r.error;
        this.pending.push(row);
        continue;
      }
      const entry = this.newEntry(r.op, r.fields, r.label);
      entry.key = r.key;
      entry.visible = true;
      if (r.state === "sending") this.inDoubt.push(entry);
      else this.outbox.push(entry);
      this.pending.push({ key: r.key, op: r.op, fields: r.fields, label: r.label, state: "waiting" });
    }
  }

  /**
   * After a rejoin: decides what became of each change whose reply was lost. With a replay every
   * event since is known, so a change is either found among my events (done) or was never
   * applied (resent). After a snapshot the state is checked where it can tell; otherwise the
   * change is reported as failed, never resent blindly (an item.add resent would duplicate).
   */
  private settleInDoubt(replayed: boolean): void {
    const doubts = this.inDoubt;
    this.inDoubt = [];
    const resend: Entry[] = [];
    const used = new Set<Ev>();
    for (const entry of doubts) {
      if (entry.settled) continue;
      if (replayed) {
        const ev = this.mine.find((e) => e.seq > entry.sentAtSeq && !used.has(e) && matches(entry, e, this.me?.pid ?? ""));
        if (!ev) {
          resend.push(entry);
        } else {
          used.add(ev);
          if (entry.op === "token.rotate")
            this.refused(entry, "not_sent", "A new link was made, but it did not reach this page: make another one.");
          else this.done(entry, okFromEvent(entry, ev));
        }
        continue;
      }
      const verdict = checkState(this.room, entry, this.me?.pid ?? "");
      if (verdict === "applied") this.done(entry, { t: "ok", id: 0, seq: this.room.seq });
      else if (verdict === "resend") resend.push(entry);
      else this.refused(entry, "not_sent", MAY_NOT_BE_SAVED);
    }
    this.outbox.unshift(...resend);
  }

  // ---- joining ---------------------------------------------------------------------------

  private join(): void {
    const conn = this.conn;
    const creds = this.creds;
    if (!conn || !creds) return;
    const usePid = !!(creds.pid && creds.secret);
    const msg: Record<string, unknown> & { t: string } = { t: "join", room: creds.room, name: creds.name };
    if (usePid) {
      msg.pid = creds.pid;
      msg.secret = creds.secret;
    } else if (creds.token) {
      msg.token = creds.token;
    }
    if (this.room.info && this.room.epoch) {
      msg.since = this.room.seq;
      msg.epoch = this.room.epoch;
    }
    // Callbacks, not a promise: the reply must be taken before the snapshot that follows it.
    conn.call(msg, (reply) => this.onJoinReply(conn, creds, usePid, reply), () => {
      /* the socket closed: the next open joins again */
    });
  }

  private onJoinReply(conn: Connection, creds: JoinCredentials, usePid: boolean, reply: Message): void {
    if (this.conn !== conn) return;
    if (reply.t === "err") {
      const code = reply.code as ErrorCode;
      const text = (reply.msg as string) ?? "The server refused to join this room.";
      if (usePid && code === "auth_failed" && creds.token) {
        // pid + secret refused (e.g. another browser's): join anew with the invite token
        creds.pid = undefined;
        creds.secret = undefined;
        storage.forgetCredentials(creds.room);
        this.join();
        return;
      }
      if (code === "moved" && typeof reply.room === "string") {
        this.follow(reply.room);
        return;
      }
      if (FATAL_JOIN.has(code)) {
        if (usePid && code === "auth_failed") storage.forgetCredentials(creds.room);
        this.shutdown(new RequestError(code, text), true);
        return;
      }
      conn.drop(code); // a passing refusal (rate_limited, internal): try again later
      return;
    }
    this.onJoined(reply as unknown as JoinOk);
  }

  private onJoined(ok: JoinOk): void {
    const creds = this.creds!;
    creds.pid = ok.pid;
    creds.secret = ok.secret;
    creds.name = ok.name;
    this.secret = ok.secret;
    this.me = { pid: ok.pid, name: ok.name, role: ok.role };
    const patch: Partial<storage.StoredRoom> = { pid: ok.pid, secret: ok.secret, name: ok.name, role: ok.role };
    if (creds.token && (ok.role === "facilitator" || ok.role === "owner")) {
      patch.tokens = { [ok.role]: creds.token };
      this.tokens = { ...this.tokens, [ok.role]: creds.token };
    }
    storage.saveRoom(creds.room, patch, { touch: true, now: this.timers.now() });
    storage.saveName(ok.name);
    applyJoinOk(this.room, ok, ok.pid, this.timers.now());
    this.hintSent = { item: null, what: null }; // the server dropped them with the old socket
    if (ok.mode === "replay") {
      this.syncTarget = ok.seq;
      this.maybeSynced();
    } else {
      this.awaitingSnapshot = true;
    }
  }

  private maybeSynced(): void {
    if (this.synced) return;
    if (this.syncTarget !== null && this.room.seq >= this.syncTarget) {
      this.syncTarget = null;
      this.onSynced(true);
    }
  }

  private onSynced(replayed: boolean): void {
    this.synced = true;
    this.everJoined = true;
    this.status = "connected";
    this.retryInMs = 0;
    this.stopTicker();
    this.settleInDoubt(replayed);
    for (const e of this.outbox) if (e.visible) this.showPending(e, "waiting");
    this.pump();
    this.scheduleHint();
    const c = this.connected;
    this.connected = null;
    c?.resolve();
  }

  // ---- incoming --------------------------------------------------------------------------

  private onMessage(msg: Message): void {
    if (msg.t === "snapshot") {
      applySnapshot(this.room, msg as unknown as Snapshot);
      const round = this.room.round;
      if (this.myVote && (!round || round.id !== this.myVote.round)) this.setMyVote(null);
      if (this.creds && this.room.info) storage.saveRoom(this.creds.room, { roomName: this.room.info.name });
      if (this.me) this.syncMe();
      if (this.awaitingSnapshot) {
        this.awaitingSnapshot = false;
        this.onSynced(false);
      }
      return;
    }
    if (typeof msg.seq === "number" && msg.t !== "ok" && msg.t !== "err") {
      this.onEvent(msg as Ev);
      return;
    }
    if (msg.t === "room.moved" && typeof msg.room === "string") {
      this.follow(msg.room); // the server closes this socket (4000) next
      return;
    }
    applyNotice(this.room, msg, this.me?.pid ?? null);
  }

  private onEvent(ev: Ev): void {
    const myPid = this.me?.pid ?? null;
    const result = applyEvent(this.room, ev, myPid);
    if (result === "gap") {
      this.conn?.reconnectNow(); // rejoin with since: the server replays what is missing
      return;
    }
    if (result !== "applied") return;
    if (myPid && ev.by === myPid) {
      this.mine.push(ev);
      if (this.mine.length > 500) this.mine.splice(0, this.mine.length - 500);
    }
    switch (ev.t) {
      case "round.started":
      case "round.accepted":
      case "round.cancelled":
        if (this.myVote) this.setMyVote(null);
        break;
      case "participant.updated":
        if (this.me && ev.pid === this.me.pid) this.syncMe();
        break;
      case "room.updated":
        if (this.creds && this.room.info) storage.saveRoom(this.creds.room, { roomName: this.room.info.name });
        break;
      case "token.rotated": {
        const role = ev.role as Role;
        if (this.tokens[role]) {
          const next = { ...this.tokens };
          delete next[role];
          this.tokens = next;
          if (this.creds) storage.forgetToken(this.creds.room, role);
        }
        break;
      }
    }
    this.maybeSynced();
  }

  /** My role as the participant list says (after role.set / role.claim or a snapshot). */
  private syncMe(): void {
    const me = this.me;
    if (!me) return;
    const p = this.room.participants.find((x) => x.pid === me.pid);
    if (p && p.role !== me.role) {
      this.me = { ...me, role: p.role };
      if (this.creds) storage.saveRoom(this.creds.room, { role: p.role });
    }
  }

  private onDown(): void {
    this.synced = false;
    this.syncTarget = null;
    this.awaitingSnapshot = false;
    if (this.room.hints.length) this.room.hints = [];
    for (const e of this.outbox) this.showPending(e, "waiting");
  }

  private onConnState(s: ConnState): void {
    if (this.status === "failed") return;
    switch (s) {
      case "connecting":
        this.status = this.everJoined ? "reconnecting" : "connecting";
        this.retryInMs = 0;
        this.stopTicker();
        break;
      case "waiting":
        this.status = "reconnecting";
        this.tick();
        break;
      case "offline":
        this.status = "offline";
        this.retryInMs = 0;
        this.stopTicker();
        break;
      default:
        break;
    }
  }

  /** Updates retryInMs four times a second while a retry is scheduled. */
  private tick(): void {
    this.stopTicker();
    if (!this.conn || this.conn.state !== "waiting") return;
    this.retryInMs = this.conn.retryInMs();
    this.ticker = this.timers.setTimeout(() => {
      this.ticker = null;
      this.tick();
    }, 250);
  }

  private stopTicker(): void {
    if (this.ticker !== null) this.timers.clearTimeout(this.ticker);
    this.ticker = null;
  }

  // ---- hints -----------------------------------------------------------------------------

  private scheduleHint(): void {
    if (this.hintTimer !== null || !this.synced) return;
    const w = this.hintWanted;
    if (w.item === this.hintSent.item && w.what === this.hintSent.what) return;
    const wait = this.hintAt + HINT_INTERVAL_MS - this.timers.now();
    if (wait > 0) {
      this.hintTimer = this.timers.setTimeout(() => {
        this.hintTimer = null;
        this.flushHint();
      }, wait);
    } else {
      this.flushHint();
    }
  }

  private flushHint(): void {
    if (!this.synced || !this.conn || !this.me || this.me.role === "observer") return;
    const w = this.hintWanted;
    if (w.item === this.hintSent.item && w.what === this.hintSent.what) return;
    this.hintSent = { ...w };
    this.hintAt = this.timers.now();
    this.conn.request({ t: "hint", item: w.item, what: w.what }).catch(() => {});
  }

  // ---- helpers ---------------------------------------------------------------------------

  private setMyVote(v: { round: string; card: string | null; confidence?: Confidence } | null): void {
    this.myVote = v;
    if (this.creds) storage.saveRoom(this.creds.room, { vote: v ? { round: v.round, card: v.card } : null });
  }

  private title(id: string): string {
    return findItem(this.room, id)?.title ?? id;
  }

  /**
   * The room moved to another server under the id `to` (a `moved` answer to the join, or the
   * `room.moved` notice): the identity remembered here goes with it (the same pid and secret open
   * the new room), the address bar names the new id (an invite link keeps its token), and this
   * client joins there. Whoever waits for the first join keeps waiting, for the new room's.
   */
  private follow(to: string): void {
    const creds = this.creds;
    if (!creds || to === creds.room) return;
    const from = creds.room;
    storage.moveRoom(from, to);
    this.notice = null; // "being moved" is over
    if (typeof location !== "undefined" && typeof history !== "undefined") {
      const r = parseHash(location.hash);
      if (r.room === from) {
        const hash = buildHash({ room: to, token: r.token, role: r.role, name: r.name });
        history.replaceState(history.state, "", `${location.pathname}${location.search}${hash}`);
      }
    }
    const waiting = this.connected;
    this.connected = null;
    const joined = this.connect({ ...creds, room: to, pid: creds.pid, secret: creds.secret });
    if (waiting) joined.then(waiting.resolve, waiting.reject);
  }

  private showNotice(text: string): void {
    this.notice = text;
    if (this.noticeTimer !== null) this.timers.clearTimeout(this.noticeTimer);
    this.noticeTimer = this.timers.setTimeout(() => {
      this.noticeTimer = null;
      this.notice = null;
    }, NOTICE_MS);
  }

  /** Stops everything; with `err`, rejects every unsettled change (and marks status failed). */
  private shutdown(err: RequestError | null, fatal = false): void {
    const conn = this.conn;
    this.conn = null;
    this.synced = false;
    conn?.stop();
    this.stopTicker();
    if (this.hintTimer !== null) this.timers.clearTimeout(this.hintTimer);
    this.hintTimer = null;
    const why = err ?? new RequestError("not_sent", "The room was closed before this change was sent.");
    const maybe = new RequestError("not_sent", MAY_NOT_BE_SAVED);
    const sent = new Set([...this.inflight, ...this.inDoubt]);
    const all = [...this.outbox, ...sent];
    this.outbox = [];
    this.inflight.clear();
    this.inDoubt = [];
    for (const e of all) {
      const reason = sent.has(e) ? maybe : why; // a sent one may have been applied
      if (e.visible) this.showPending(e, "failed", reason.msg);
      this.settle(e, null, reason);
    }
    if (fatal && err) {
      this.fatal = err;
      this.status = "failed";
      this.retryInMs = 0;
    }
    const c = this.connected;
    this.connected = null;
    c?.reject(why);
  }
}

/** Whether `ev` (an event I authored) is the result of the change `entry`. */
function matches(entry: Entry, ev: Ev, myPid: string): boolean {
  const f = entry.fields;
  switch (entry.op) {
    case "item.add":
      return ev.t === "item.added" && (ev.item as Item).title === (f.item as ItemFields).title;
    case "item.update":
      return ev.t === "item.updated" && ev.item === f.item && sameKeys(ev.set, f.set);
    case "item.move":
      return ev.t === "item.moved" && ev.item === f.item && (ev.after ?? null) === (f.after ?? null);
    case "item.remove":
      return ev.t === "item.removed" && ev.item === f.item;
    case "item.split":
      return ev.t === "item.split" && ev.item === f.item;
    case "item.unsplit":
      return ev.t === "item.unsplit" && ev.item === f.item && ev.undo == null;
    case "undo":
      return ev.undo != null && (f.seq === undefined || ev.undo === f.seq);
    case "focus":
      return ev.t === "focus" && (ev.item ?? null) === (f.item ?? null);
    case "round.start":
      return ev.t === "round.started" && ev.item === f.item;
    case "vote":
      return ev.t === "voted" && ev.round === f.round && ev.pid === myPid && !!ev.has === (f.card !== null);
    case "round.reveal":
      return ev.t === "round.revealed" && ev.round === f.round;
    case "kano.answer":
      return ev.t === "kano.answered" && ev.item === f.item && ev.pid === myPid;
    case "kano.reveal":
      return ev.t === "kano.revealed" && ev.item === f.item;
    case "kano.reset":
      return ev.t === "kano.reset" && ev.item === f.item;
    case "order.apply":
      return ev.t === "order.applied";
    case "map.add":
      return ev.t === "map.added" && (ev.node as MapNode).name === f.name && ev.kind === f.kind;
    case "map.update":
      return ev.t === "map.updated" && (ev.node as MapNode).id === f.node;
    case "map.move":
      return ev.t === "map.moved" && ev.node === f.node;
    case "map.remove":
      return ev.t === "map.removed" && ev.node === f.node;
    case "map.place":
      return ev.t === "map.placed" && ev.item === f.item && (ev.step ?? null) === (f.step ?? null) && (ev.slice ?? null) === (f.slice ?? null);
    case "round.accept":
      return ev.t === "round.accepted" && ev.round === f.round;
    case "round.cancel":
      return ev.t === "round.cancelled" && ev.round === f.round;
    case "timer.start":
      return ev.t === "timer" && ev.ends_at != null;
    case "timer.stop":
      return ev.t === "timer" && ev.ends_at == null && !ev.expired;
    case "role.set":
      return ev.t === "participant.updated" && ev.pid === f.pid && ev.role === f.role;
    case "role.claim":
      return ev.t === "participant.updated" && ev.pid === myPid && ev.role === "facilitator";
    case "room.update":
      return ev.t === "room.updated" && sameKeys(ev.set, f);
    case "token.rotate":
      return ev.t === "token.rotated" && ev.role === f.role;
    default:
      return false;
  }
}

function sameKeys(a: unknown, b: unknown): boolean {
  if (!a || !b || typeof a !== "object" || typeof b !== "object") return false;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i]);
}

/** The reply a change would have had, rebuilt from its event (item.add's id). */
function okFromEvent(entry: Entry, ev: Ev): Message {
  const ok: Message = { t: "ok", id: 0, seq: ev.seq };
  if (entry.op === "item.add") ok.item = (ev.item as Item).id;
  return ok;
}

function same(a: unknown, b: unknown): boolean {
  return JSON.stringify(a ?? null) === JSON.stringify(b ?? null);
}

/**
 * After a snapshot: does the state show that the change was applied? "resend" when sending it
 * again is harmless (a vote sets the card), "unknown" when the state cannot tell.
 */
function checkState(view: RoomView, entry: Entry, myPid: string): "applied" | "resend" | "unknown" {
  const f = entry.fields;
  switch (entry.op) {
    case "item.update": {
      const item = findItem(view, f.item as string) as unknown as Record<string, unknown> | undefined;
      const set = f.set as Record<string, unknown>;
      return item && Object.keys(set).every((k) => same(item[k], set[k])) ? "applied" : "unknown";
    }
    case "item.move": {
      const i = indexOfItem(view, f.item as string);
      if (i < 0) return "unknown";
      if (f.after == null) return i === 0 ? "applied" : "unknown";
      return indexOfItem(view, f.after as string) === i - 1 ? "applied" : "unknown";
    }
    case "item.remove":
      return indexOfItem(view, f.item as string) < 0 ? "applied" : "unknown";
    case "focus":
      return view.focus === ((f.item as string | null) ?? null) ? "applied" : "unknown";
    case "vote":
      return view.round && view.round.id === f.round && view.round.state === "voting" ? "resend" : "unknown";
    case "kano.answer": {
      const k = view.kano.find((x) => x.item === f.item);
      return !k || !k.revealed ? "resend" : "unknown"; // an answer sets the pair
    }
    case "kano.reveal":
      return view.kano.find((x) => x.item === f.item)?.revealed ? "applied" : "unknown";
    case "map.place": {
      const it = findItem(view, f.item as string);
      return it && (it.step ?? null) === f.step && (it.slice ?? null) === f.slice ? "applied" : "resend"; // a place sets both
    }
    case "map.remove":
      return findNode(view.map, f.node as string) ? "unknown" : "applied";
    case "round.start":
      return view.round && view.round.item === f.item && view.round.state === "voting" ? "applied" : "unknown";
    case "round.reveal": {
      const r = view.rounds.find((x) => x.id === f.round);
      return r && r.state !== "voting" ? "applied" : "unknown";
    }
    case "round.cancel": {
      const r = view.rounds.find((x) => x.id === f.round);
      return r?.state === "cancelled" ? "applied" : "unknown";
    }
    case "round.accept": {
      const r = view.rounds.find((x) => x.id === f.round);
      return r?.state === "accepted" && r.estimate === f.estimate ? "applied" : "unknown";
    }
    case "timer.stop":
      return view.timerEndsAt === null ? "applied" : "unknown";
    case "role.set":
      return view.participants.find((p) => p.pid === f.pid)?.role === f.role ? "applied" : "unknown";
    case "role.claim":
      return view.participants.find((p) => p.pid === myPid)?.role === "facilitator" ? "applied" : "unknown";
    case "room.update": {
      const info = view.info as unknown as Record<string, unknown> | null;
      return info && Object.keys(f).every((k) => same(info[k], f[k])) ? "applied" : "unknown";
    }
    default:
      return "unknown"; // item.add, item.split, timer.start, token.rotate: cannot tell
  }
}

/**
 * Builds a CreateRoom over a short-lived connection of its own: sends `room.create`, keeps the
 * four tokens and the room's name in this browser, closes.
 */
export function makeCreateRoom(opts: RoomClientOptions = {}): CreateRoom {
  return (name, deck) =>
    new Promise((resolve, reject) => {
      let finished = false;
      const finish = (err: RequestError | null, value?: { room: string; tokens: Record<Role, string> }) => {
        if (finished) return;
        finished = true;
        conn.stop();
        if (err) reject(err);
        else resolve(value!);
      };
      const conn: Connection = new Connection({
        url: opts.url ?? defaultUrl(),
        WebSocketImpl: opts.WebSocketImpl,
        timers: opts.timers,
        online: opts.online,
        scheduler: opts.scheduler,
        onOpen: () => {
          conn.request({ t: "room.create", name, deck }).then(
            (reply) => {
              if (reply.t !== "ok") {
                finish(new RequestError((reply.code as ErrorCode) ?? "internal", (reply.msg as string) ?? "The room could not be created."));
                return;
              }
              const room = reply.room as string;
              const tokens = reply.tokens as Record<Role, string>;
              storage.saveRoom(room, { roomName: name, tokens });
              finish(null, { room, tokens });
            },
            () => finish(new RequestError("not_sent", "The connection to the server was lost; try again.")),
          );
        },
        onMessage: () => {},
        onDown: () => finish(new RequestError("not_sent", "Could not reach the server; check the connection and try again.")),
      });
      conn.start();
      if (conn.state === "offline") finish(new RequestError("not_sent", "This browser is offline; try again once it is back online."));
    });
}

/** Creates a room through this page's server (see makeCreateRoom). */
export const createRoom: CreateRoom = (name, deck) => makeCreateRoom()(name, deck);
