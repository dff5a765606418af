// The hash route: `#room=<id>&token=<token>` (invite link) or `#room=<id>` (a known room).
// Tokens live only in the fragment, which browsers never send to a server (PROTOCOL.md
// "Invite links").

export interface HashRoute {
  room: string | null;
  token: string | null;
}

/** Reads room and token from a location hash ("#room=..&token=.."; "" or "#" gives nulls). */
export function parseHash(hash: string): HashRoute {
  const params = new URLSearchParams(hash.replace(/^#/, ""));
  const room = params.get("room");
  const token = params.get("token");
  return { room: room || null, token: token || null };
}

/** Builds the hash for a route: "#room=R&token=T", "#room=R", or "" (home). */
export function buildHash(route: Partial<HashRoute>): string {
  if (!route.room) return "";
  let h = `#room=${encodeURIComponent(route.room)}`;
  if (route.token) h += `&token=${encodeURIComponent(route.token)}`;
  return h;
}

/** The invite link for a role's token: `${origin}/#room=${room}&token=${token}`. */
export function inviteLink(origin: string, room: string, token: string): string {
  return `${origin.replace(/\/+$/, "")}/${buildHash({ room, token })}`;
}
