// The hash route: `#room=<id>&token=<token>` (invite link) or `#room=<id>` (a known room).
// Tokens live only in the fragment, which browsers never send to a server (PROTOCOL.md
// "Invite links"). Invite links may also carry `&role=<role>&name=<room name>`: display hints
// for the join page only, never trusted (the server decides the role from the token).

import { ROLES, type Role } from "./protocol";

export interface HashRoute {
  room: string | null;
  token: string | null;
  /** Hint from an invite link: the role its token is for (display only; absent if none or unknown). */
  role?: Role;
  /** Hint from an invite link: the room's name (display only; absent if none). */
  name?: string;
}

/** The most of a room name a hint may carry (the server allows 200 characters). */
const MAX_NAME = 200;

/**
 * Reads room and token from a location hash ("#room=..&token=.."; "" or "#" gives nulls), and
 * the invite link's hints `role` (one of the four roles) and `name` when present.
 */
export function parseHash(hash: string): HashRoute {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const room = params.get("room");
  const token = params.get("token");
  const route: HashRoute = { room: room || null, token: token || null };
  const role = params.get("role");
  if (role && (ROLES as readonly string[]).includes(role)) route.role = role as Role;
  const name = params.get("name")?.trim();
  if (name) route.name = Array.from(name).slice(0, MAX_NAME).join("");
  return route;
}

/** Builds the hash for a route: "#room=R&token=T[&role=X&name=N]", "#room=R", or "" (home). */
export function buildHash(route: Partial<HashRoute>): string {
  if (!route.room) return "";
  let h = `#room=${encodeURIComponent(route.room)}`;
  if (route.token) {
    h += `&token=${encodeURIComponent(route.token)}`;
    // The hints only make sense on an invite link.
    if (route.role) h += `&role=${encodeURIComponent(route.role)}`;
    if (route.name) h += `&name=${encodeURIComponent(route.name)}`;
  }
  return h;
}

/**
 * The invite link for a role's token: `${origin}/#room=${room}&token=${token}`, followed by
 * `&role=${role}&name=${room name}` when those hints are given (all in the fragment).
 */
export function inviteLink(origin: string, room: string, token: string, hints: { role?: Role; name?: string } = {}): string {
  return `${origin.replace(/\/+$/, "")}/${buildHash({ room, token, role: hints.role, name: hints.name })}`;
}
