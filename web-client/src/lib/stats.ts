// Planning-poker helpers for the views: decks, card values, vote progress, the reveal in words,
// the split dialog's sums and keyboard voting. Pure functions.

import { DECKS, type Participant, type Round, type Stats } from "./protocol";
import { formatNumber } from "./format";

/** The cards of a deck: a built-in name via DECKS, a custom list as is; [] for an unknown name. */
export function deckCards(deck: string | readonly string[] | null | undefined): string[] {
  if (deck === null || deck === undefined) return DECKS.fibonacci.slice();
  if (Array.isArray(deck)) return deck.slice();
  return (DECKS[deck as string] ?? []).slice();
}

/** `?` and `coffee` are votes but not steps of the deck. */
export function isOrdinaryCard(card: string): boolean {
  return card !== "?" && card !== "coffee";
}

/** The number a card reads as ("½" = 0.5, "13" = 13), or null ("XL", "?", "coffee"). */
export function cardValue(card: string | null | undefined): number | null {
  if (card === null || card === undefined) return null;
  if (card === "½") return 0.5;
  if (!/^\d+(\.\d+)?$/.test(card)) return null;
  return Number(card);
}

export interface VoteProgress {
  voted: number;
  total: number;
  /** Who may still vote: eligible and not voted (pids). */
  waitingFor: string[];
  text: string; // "3 of 5 voted"
}

/**
 * "N of M voted" for a round: M counts the round's voters, everyone online who may vote (every
 * role but observer) and anyone who has voted; N counts who has voted.
 */
export function voteProgress(round: Pick<Round, "voters" | "voted">, participants: readonly Participant[]): VoteProgress {
  const eligible = new Set<string>(round.voters);
  for (const p of participants) if (p.online && p.role !== "observer") eligible.add(p.pid);
  const voted = new Set(round.voted);
  for (const pid of voted) eligible.add(pid);
  const waitingFor = [...eligible].filter((pid) => !voted.has(pid));
  return { voted: voted.size, total: eligible.size, waitingFor, text: `${voted.size} of ${eligible.size} voted` };
}

/**
 * The reveal in a few words: "Consensus on 5", "Spread of 3 steps", "Only ? and coffee",
 * "No votes".
 */
export function describeReveal(stats: Stats | null | undefined): string {
  if (!stats || stats.count === 0) return "No votes";
  if (stats.consensus) {
    const card = consensusCard(stats);
    return card ? `Consensus on ${card}` : "Consensus";
  }
  if (stats.spread === null || stats.spread === undefined) return "Only ? and coffee";
  return `Spread of ${stats.spread} ${stats.spread === 1 ? "step" : "steps"}`;
}

/** The one ordinary card everybody played, when there is consensus; else null. */
export function consensusCard(stats: Stats): string | null {
  if (!stats.consensus) return null;
  const cards = Object.keys(stats.distribution ?? {}).filter((c) => isOrdinaryCard(c) && stats.distribution[c] > 0);
  return cards.length === 1 ? cards[0] : (stats.mode ?? null);
}

/**
 * The card to offer for "Accept": the consensus card, else the server's `suggested`, else the
 * most common ordinary card; null when nothing can be suggested (only ? and coffee).
 */
export function suggestedCard(stats: Stats | null | undefined): string | null {
  if (!stats) return null;
  const c = consensusCard(stats);
  if (c && isOrdinaryCard(c)) return c;
  if (stats.suggested && isOrdinaryCard(stats.suggested)) return stats.suggested;
  if (stats.mode && isOrdinaryCard(stats.mode)) return stats.mode;
  return null;
}

/** Mean and median as the reveal panel shows them ("6.5", "½", "–"). */
export function formatStats(stats: Stats): { mean: string; median: string; min: string; max: string } {
  return {
    mean: formatNumber(stats.mean),
    median: formatNumber(stats.median),
    min: formatNumber(stats.min),
    max: formatNumber(stats.max),
  };
}

/** The distribution as bars in deck order (cards nobody played left out), for the chart. */
export function distributionBars(stats: Stats, deck: readonly string[]): { card: string; count: number }[] {
  const dist = stats.distribution ?? {};
  const order = [...deck, ...Object.keys(dist).filter((c) => !deck.includes(c))];
  return order.filter((c) => (dist[c] ?? 0) > 0).map((card) => ({ card, count: dist[card] }));
}

export interface SplitSum {
  sum: number; // of the children's numeric estimates
  counted: number; // children with a numeric estimate
  uncounted: number; // children without one (none, "?", "XL", ...)
  parent: number | null; // the parent's estimate as a number
  diff: number | null; // sum - parent
  text: string; // "Children 8 vs story 5 (+3)"
}

/** The children's estimates summed against the parent's, for the split dialog (numeric cards only). */
export function splitSum(children: readonly (string | null | undefined)[], parentEstimate: string | null | undefined): SplitSum {
  let sum = 0;
  let counted = 0;
  for (const e of children) {
    const v = cardValue(e);
    if (v !== null) {
      sum += v;
      counted++;
    }
  }
  sum = Math.round(sum * 100) / 100;
  const parent = cardValue(parentEstimate);
  const diff = parent === null ? null : Math.round((sum - parent) * 100) / 100;
  let text = `Children ${formatNumber(sum)}`;
  if (parent !== null) {
    const sign = diff! > 0 ? "+" : diff! < 0 ? "−" : "±";
    text += ` vs story ${formatNumber(parent)} (${sign}${formatNumber(Math.abs(diff!))})`;
  }
  return { sum, counted, uncounted: children.length - counted, parent, diff, text };
}

/** The children's estimates against each split parent's, for the backlog's rows: parent id ->
 *  its SplitSum (one pass over the items; only parents with a child estimated). */
export function splitSums(items: readonly { id: string; parent: string | null; status: string; estimate: string | null }[]): Map<string, SplitSum> {
  const kids = new Map<string, (string | null)[]>();
  for (const it of items) {
    if (it.parent === null) continue;
    const k = kids.get(it.parent);
    if (k) k.push(it.estimate);
    else kids.set(it.parent, [it.estimate]);
  }
  const out = new Map<string, SplitSum>();
  if (!kids.size) return out;
  for (const it of items) {
    const k = it.status === "split" ? kids.get(it.id) : undefined;
    if (!k) continue;
    const s = splitSum(k, it.estimate);
    if (s.counted) out.set(it.id, s);
  }
  return out;
}

// ---- keyboard voting ------------------------------------------------------------------------

/** Keys typed within this many ms of each other form one card ('1' then '3' is 13). */
export const KEY_WINDOW_MS = 600;

/** What was typed so far (pass the returned buffer with the next key). */
export interface KeyBuffer {
  text: string;
  at: number;
}

/**
 * Maps a key press to a card of `deck`. Keys typed within KEY_WINDOW_MS join: a card matching
 * the typed text (case-insensitive) is picked at once, and the text is kept while it can still
 * grow into a longer card ('1' picks 1, then '3' picks 13; 'x' then 'l' picks XL). '?' picks ?,
 * 'c' coffee, '.' ½. Returns the card to pick (or null) and the buffer for the next key.
 */
export function keyToCard(
  key: string,
  deck: readonly string[],
  now: number,
  prev: KeyBuffer | null,
): { card: string | null; buffer: KeyBuffer | null } {
  if (Array.from(key).length !== 1) return { card: null, buffer: null };
  const k = key.toLowerCase();
  const special = k === "?" ? "?" : k === "c" ? "coffee" : k === "." || k === "½" ? "½" : null;
  if (special && deck.includes(special)) return { card: special, buffer: null };
  const lower = deck.map((c) => c.toLowerCase());
  const attempt = (text: string) => {
    const i = lower.indexOf(text);
    const grows = lower.some((c) => c.length > text.length && c.startsWith(text));
    return { card: i >= 0 ? deck[i] : null, ok: i >= 0 || grows };
  };
  const fresh = prev && now - prev.at <= KEY_WINDOW_MS ? prev.text : "";
  if (fresh) {
    const joined = attempt(fresh + k);
    if (joined.ok) return { card: joined.card, buffer: { text: fresh + k, at: now } };
  }
  const alone = attempt(k);
  if (alone.ok) return { card: alone.card, buffer: { text: k, at: now } };
  return { card: null, buffer: null };
}
