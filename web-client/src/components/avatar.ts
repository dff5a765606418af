// A colour per person, derived from the pid, so two people with the same initials ("OO") still
// look different. Every page derives the same colours from the same participant list: pids in
// order, each takes its hashed hue or, when an earlier pid has it, the next free one.

/** Hues far enough apart to tell apart; light and dark tints of each meet AA (global.css). */
const HUES = [0, 30, 55, 120, 190, 225, 270, 320];

function hash(s: string): number {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** pid -> hue (degrees) for everyone in the list; distinct while there are at most 8 people. */
export function avatarHues(pids: readonly string[]): Map<string, number> {
  const out = new Map<string, number>();
  const used = new Set<number>();
  for (const pid of [...pids].sort()) {
    let i = hash(pid) % HUES.length;
    for (let k = 0; k < HUES.length && used.has(i); k++) i = (i + 1) % HUES.length;
    used.add(i);
    if (used.size === HUES.length) used.clear(); // more than eight people: colours repeat
    out.set(pid, HUES[i]);
  }
  return out;
}
