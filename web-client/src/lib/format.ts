// Display helpers for numbers, times, names and roles. Pure functions.

import type { Role } from "./protocol";

/**
 * A number for people: at most one decimal, no trailing ".0", 0.5 as "½"; null/NaN as "–".
 * formatNumber(6.5) = "6.5", formatNumber(6) = "6", formatNumber(0.5) = "½", formatNumber(2.25) = "2.3".
 */
export function formatNumber(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return "–";
  if (n === 0.5) return "½";
  const r = Math.round(n * 10) / 10;
  return Number.isInteger(r) ? String(r) : r.toFixed(1);
}

/** Whole seconds left, rounded up: 1200 ms -> 2 ("Reconnecting in 2 s"). Never negative. */
export function secondsLeft(ms: number): number {
  return Math.max(0, Math.ceil(ms / 1000));
}

/** A countdown as m:ss ("2:05"); negative times show "0:00". */
export function formatCountdown(ms: number): string {
  const s = secondsLeft(ms);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

/**
 * How long ago `at` was, relative to `now` (both ms since the epoch): "just now", "5 min ago",
 * "3 h ago", "yesterday", "4 days ago", then the date (YYYY-MM-DD). Future times: "in 2 min".
 */
export function relativeTime(at: number, now: number): string {
  const diff = now - at;
  if (diff < 0) {
    const s = Math.round(-diff / 1000);
    if (s < 60) return `in ${s} s`;
    if (s < 3600) return `in ${Math.round(s / 60)} min`;
    return `in ${Math.round(s / 3600)} h`;
  }
  const s = Math.floor(diff / 1000);
  if (s < 45) return "just now";
  if (s < 90) return "1 min ago";
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h} h ago`;
  const d = Math.floor(h / 24);
  if (d === 1) return "yesterday";
  if (d < 7) return `${d} days ago`;
  return new Date(at).toISOString().slice(0, 10);
}

/**
 * Up to two initials of a name, upper-cased: "Dana Scully" -> "DS", "ana" -> "A",
 * "Jean-Luc Picard" -> "JP", "  " -> "?". Works on whole code points (emoji, accents).
 */
export function initials(name: string): string {
  const words = name.trim().split(/[\s\-_.]+/u).filter(Boolean);
  if (words.length === 0) return "?";
  const first = Array.from(words[0])[0];
  if (words.length === 1) return first.toLocaleUpperCase();
  const last = Array.from(words[words.length - 1])[0];
  return (first + last).toLocaleUpperCase();
}

const ROLE_LABELS: Record<Role, string> = {
  facilitator: "Facilitator",
  owner: "Product owner",
  member: "Member",
  observer: "Observer",
};

const ROLE_LINES: Record<Role, string> = {
  facilitator: "Runs the session: rounds, timer, focus, settings and roles; votes too.",
  owner: "Orders the backlog, removes stories, accepts estimates and votes.",
  member: "Adds, edits and splits stories, and votes.",
  observer: "Watches everything; never votes and changes nothing.",
};

/** The role's name for people ("Product owner"). */
export function roleLabel(role: Role): string {
  return ROLE_LABELS[role] ?? role;
}

/** One line on what the role may do (the invite panel). */
export function roleDescription(role: Role): string {
  return ROLE_LINES[role] ?? "";
}

let clockFormat: Intl.DateTimeFormat | null = null;

/**
 * A time of day as the browser's locale writes hours and minutes ("09:05", "9:05 AM"). One
 * formatter for every call: Date#toLocaleTimeString with options builds a new one each time
 * (about a millisecond apiece, far more on the first call), which a list of times redrawn in a
 * burst of events pays per line.
 */
export function clockTime(at: number): string {
  clockFormat ??= new Intl.DateTimeFormat([], { hour: "2-digit", minute: "2-digit" });
  return clockFormat.format(at);
}
