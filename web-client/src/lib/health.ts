// DEEP health for the views (PROTOCOL.md "Backlog health"): the server computes it; the client
// keeps the snapshot's health and applies each `health` notice's changed findings over it, then
// groups the findings by rule for the Health view and names them for a backlog row.
import type { HealthNotice, HealthRule, HealthScores, HealthWire, Item } from "./protocol";

export const HEALTH_RULES: readonly HealthRule[] = [
  "unestimated",
  "too_large",
  "no_acceptance",
  "no_benefit",
  "draft",
  "epic",
  "wont_above_must",
  "stale",
];

/** A rule as a short name, and what to do about it. */
export const HEALTH_RULE_TEXT: Record<HealthRule, { name: string; fix: string }> = {
  unestimated: { name: "Not estimated", fix: "Near the top without an estimate: play a round." },
  too_large: { name: "Too large", fix: "Near the top and above the size limit: split it." },
  no_acceptance: { name: "No acceptance criteria", fix: "Near the top: agree how the team will know it is done." },
  no_benefit: { name: "No benefit", fix: "Near the top with no “so that” and no value." },
  draft: { name: "Still a draft", fix: "Near the top: refine it until it is ready." },
  epic: { name: "Epic near the top", fix: "Split it before the team pulls it." },
  wont_above_must: { name: "Won't above a must", fix: "A “won't” is ranked above a “must”: move it down." },
  stale: { name: "Stale", fix: "Not touched for a long time: still wanted?" },
};

export const HEALTH_SCORES: readonly { id: keyof HealthScores; name: string; what: string }[] = [
  { id: "detailed", name: "Detailed", what: "Top items small, with acceptance criteria and a benefit" },
  { id: "emergent", name: "Emergent", what: "Items touched recently" },
  { id: "estimated", name: "Estimated", what: "Top items estimated" },
  { id: "prioritized", name: "Prioritized", what: "No “won't” above a “must”" },
];

/** The room's health as the client keeps it: findings by item id. */
export interface RoomHealth {
  scores: HealthScores;
  top: { items: number; points: number };
  per_rule: Record<HealthRule, number>;
  findings: Record<string, HealthRule[]>;
}

/** The health of a snapshot or a replay join's `ok`. */
export function healthFrom(w: HealthWire): RoomHealth {
  const findings: Record<string, HealthRule[]> = {};
  for (const f of w.findings ?? []) if (f.rules.length) findings[f.item] = f.rules;
  return { scores: w.scores, top: w.top, per_rule: w.per_rule, findings };
}

/** Applies a `health` notice's content over the health kept (in place). */
export function applyHealthNotice(h: RoomHealth, n: HealthNotice): void {
  h.scores = n.scores;
  h.top = n.top;
  h.per_rule = n.per_rule;
  for (const f of n.changed ?? []) {
    if (f.rules.length) h.findings[f.item] = f.rules;
    else delete h.findings[f.item];
  }
}

export interface RuleGroup {
  rule: HealthRule;
  items: Item[]; // in backlog order
}

/** The findings of items still in the backlog, grouped by rule in the rules' order. */
export function groupByRule(h: RoomHealth | null, items: readonly Item[]): RuleGroup[] {
  if (!h) return [];
  const by = new Map<HealthRule, Item[]>();
  for (const it of items) {
    const rules = h.findings[it.id];
    if (!rules) continue;
    for (const r of rules) {
      let list = by.get(r);
      if (!list) by.set(r, (list = []));
      list.push(it);
    }
  }
  return HEALTH_RULES.filter((r) => by.has(r)).map((rule) => ({ rule, items: by.get(rule)! }));
}

/** "Not estimated, No acceptance criteria": a row's marker text. */
export function rulesText(rules: readonly HealthRule[]): string {
  return rules.map((r) => HEALTH_RULE_TEXT[r]?.name ?? r).join(", ");
}

/** A score's tone: good (>= 80), fair (>= 50) or poor. */
export function scoreTone(score: number): "good" | "fair" | "poor" {
  return score >= 80 ? "good" : score >= 50 ? "fair" : "poor";
}
