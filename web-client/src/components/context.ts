// What the room's views share: the client, the live-region announcer and the room-level actions.
import { getContext, setContext } from "svelte";
import type { RoomApi } from "../lib/api";

export interface RoomCtx {
  client: RoomApi;
  /** Polite announcement in the room's live region. */
  announce(text: string): void;
  /** Assertive announcement (the reveal). */
  alert(text: string): void;
  /** Brings a story into view (from a toolkit view: back to Refine with it). */
  select(id: string | null): void;
  /** Opens a workspace by its id in views.ts ("refine", or a toolkit view). */
  showWorkspace(id: string): void;
  openSplit(id: string): void;
  /** Marks whether this view is editing an item (remote focus changes then leave the view alone). */
  setEditing(id: string | null): void;
}

const KEY = Symbol("room");

export function setRoomCtx(ctx: RoomCtx): void {
  setContext(KEY, ctx);
}

export function roomCtx(): RoomCtx {
  return getContext<RoomCtx>(KEY);
}

/** A request's failure as a sentence for a person. */
export function errorText(e: unknown): string {
  if (e && typeof e === "object" && "msg" in e && typeof (e as { msg: unknown }).msg === "string") {
    return (e as { msg: string }).msg;
  }
  if (e instanceof Error) return e.message;
  return "Something went wrong. Try again.";
}
