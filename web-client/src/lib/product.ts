// Vision, personas and outcomes (PROTOCOL.md "Vision, personas and outcomes"): the model's
// events, the vision as one statement, an outcome's progress, and the items and points behind
// an outcome (computed here, from the items the client holds: the server sends no totals).
import { cardValue } from "./stats";
import type { Item, Outcome, Persona, Product, Vision } from "./protocol";
import { VISION_FIELDS } from "./protocol";

export function emptyVision(): Vision {
  return { target: "", need: "", product: "", product_category: "", benefit: "", alternatives: "", differentiator: "" };
}

export function emptyProduct(): Product {
  return { vision: emptyVision(), personas: [], outcomes: [] };
}

/** The vision's template, each field with the words before it (Geoffrey Moore's elevator pitch). */
export const VISION_TEMPLATE: { key: keyof Vision; before: string; label: string; placeholder: string }[] = [
  { key: "target", before: "For", label: "Target customers", placeholder: "remote Scrum teams" },
  { key: "need", before: "who", label: "Their need", placeholder: "need to refine their backlog together" },
  { key: "product", before: "", label: "Product name", placeholder: "Refine" },
  { key: "product_category", before: "is a", label: "Product category", placeholder: "live refinement board" },
  { key: "benefit", before: "that", label: "Key benefit", placeholder: "gets the top of the backlog ready in one meeting" },
  { key: "alternatives", before: "Unlike", label: "Alternatives", placeholder: "spreadsheets and planning-poker sites" },
  { key: "differentiator", before: "our product", label: "Differentiator", placeholder: "keeps the product owner's craft in one place" },
];

export interface VisionPart {
  text: string;
  field?: keyof Vision; // a filled-in field (else the template's words)
}

/**
 * The vision as one readable statement, split into parts so a view can emphasise the filled-in
 * fields: "For T who N, P is a C that B. Unlike A, our product D." Sentences whose fields are
 * empty are left out; [] when the vision is empty.
 */
export function visionStatement(v: Vision): VisionPart[][] {
  const t = (s: string) => s.trim().replace(/[.\s]+$/, "");
  const f = Object.fromEntries(VISION_FIELDS.map((k) => [k, t(v[k] ?? "")])) as Record<keyof Vision, string>;
  const out: VisionPart[][] = [];
  const first: VisionPart[] = [];
  const add = (parts: VisionPart[], words: string, field: keyof Vision) => {
    if (!f[field]) return;
    if (words) parts.push({ text: (parts.length ? " " : "") + words + " " });
    else if (parts.length) parts.push({ text: ", " });
    parts.push({ text: f[field], field });
  };
  add(first, "For", "target");
  add(first, "who", "need");
  add(first, "", "product");
  if (f.product && f.product_category) first.push({ text: " " });
  if (f.product_category) first.push({ text: (f.product ? "" : first.length ? " " : "") + "is a " }, { text: f.product_category, field: "product_category" });
  add(first, "that", "benefit");
  if (first.length) {
    first.push({ text: "." });
    out.push(first);
  }
  const second: VisionPart[] = [];
  add(second, "Unlike", "alternatives");
  if (f.differentiator) {
    second.push({ text: second.length ? ", our product " : "Our product " }, { text: f.differentiator, field: "differentiator" });
  }
  if (second.length) {
    second.push({ text: "." });
    out.push(second);
  }
  return out;
}

/** The statement as plain text. */
export function visionText(v: Vision): string {
  return visionStatement(v)
    .map((s) => s.map((p) => p.text).join(""))
    .join(" ");
}

/**
 * How close the current value is to the target, 0..1 (an outcome keeps no baseline, so this is
 * the ratio of the smaller to the larger: 34 % now, 20 % wanted reads 0.59; 120 now, 200 wanted
 * 0.6), 1 when they are equal; null without both values, or when they are not both positive.
 */
export function outcomeProgress(o: Pick<Outcome, "current" | "target">): number | null {
  const c = o.current;
  const t = o.target;
  if (c == null || t == null) return null;
  if (c === t) return 1;
  if (c <= 0 || t <= 0) return null;
  return Math.min(c, t) / Math.max(c, t);
}

/** "34 % → 20 %", "2.5 s → –", from the values and the unit. */
export function outcomeRange(o: Pick<Outcome, "current" | "target" | "unit">): string {
  const v = (n: number | null) => (n == null ? "–" : `${+n.toFixed(2)}${o.unit ? (o.unit === "%" ? " %" : " " + o.unit) : ""}`);
  return `${v(o.current)} → ${v(o.target)}`;
}

export interface OutcomeWork {
  items: Item[]; // in backlog order (split parents left out: their children carry the work)
  points: number; // sum of the numeric estimates
  unestimated: number; // items without a numeric estimate
}

/** The items and points behind an outcome, from the backlog (sorted by rank). */
export function outcomeWork(items: readonly Item[], outcomeId: string): OutcomeWork {
  const out: OutcomeWork = { items: [], points: 0, unestimated: 0 };
  for (const it of items) {
    if (it.status === "split" || !(it.outcomes ?? []).includes(outcomeId)) continue;
    out.items.push(it);
    const n = cardValue(it.estimate);
    if (n == null) out.unestimated++;
    else out.points += n;
  }
  return out;
}

/** The persona an item refers to, or null. */
export function itemPersona(item: Pick<Item, "persona_id">, personas: readonly Persona[]): Persona | null {
  return item.persona_id ? (personas.find((p) => p.id === item.persona_id) ?? null) : null;
}

/** Free-text personas of items that refer to none, with how many items say each (the migration
 *  path: "Make a persona" adopts them). Compared ignoring case and surrounding spaces. */
export function freeTextPersonas(items: readonly Item[], personas: readonly Persona[]): { name: string; count: number }[] {
  const known = new Set(personas.map((p) => p.name.trim().toLowerCase()));
  const by = new Map<string, { name: string; count: number }>();
  for (const it of items) {
    if (it.persona_id || it.status === "split") continue;
    const name = (it.persona ?? "").trim();
    const key = name.toLowerCase();
    if (!name || known.has(key)) continue;
    const e = by.get(key);
    if (e) e.count++;
    else by.set(key, { name, count: 1 });
  }
  return [...by.values()].sort((a, b) => b.count - a.count || a.name.localeCompare(b.name));
}

/** Item changes an event makes: [id, fields to set]. */
export type ItemPatch = [string, Partial<Item>];

/**
 * Applies a product event to `p`; returns the item changes it makes (adopted or cleared
 * references) and its activity sentence, or null for an event that is not the product's.
 */
export function applyProductEvent(
  p: Product,
  e: Record<string, unknown>,
  getItem: (id: string) => Item | undefined,
): { patches: ItemPatch[]; text: (who: string) => string } | null {
  const ids = (e.items as string[] | undefined) ?? [];
  switch (e.t) {
    case "vision.updated":
      p.vision = { ...emptyVision(), ...(e.vision as Vision) };
      return { patches: [], text: (who) => `${who} changed the product vision` };
    case "persona.added": {
      const persona = e.persona as Persona;
      p.personas.push(persona);
      const patches: ItemPatch[] = ids.map((id) => [id, { persona_id: persona.id }]);
      const n = ids.length;
      return {
        patches,
        text: (who) => `${who} added the persona ${persona.name}` + (n ? ` (${n} ${n === 1 ? "story" : "stories"} linked)` : ""),
      };
    }
    case "persona.updated": {
      const persona = e.persona as Persona;
      const i = p.personas.findIndex((x) => x.id === persona.id);
      if (i >= 0) p.personas[i] = persona;
      return { patches: [], text: (who) => `${who} edited the persona ${persona.name}` };
    }
    case "persona.removed": {
      const id = e.persona as string;
      const name = p.personas.find((x) => x.id === id)?.name ?? "a persona";
      p.personas = p.personas.filter((x) => x.id !== id);
      return { patches: ids.map((i) => [i, { persona_id: null }]), text: (who) => `${who} removed the persona ${name}` };
    }
    case "outcome.added": {
      const o = e.outcome as Outcome;
      p.outcomes.push(o);
      return { patches: [], text: (who) => `${who} added the outcome “${o.name}”` };
    }
    case "outcome.updated": {
      const o = e.outcome as Outcome;
      const i = p.outcomes.findIndex((x) => x.id === o.id);
      if (i >= 0) p.outcomes[i] = o;
      return { patches: [], text: (who) => `${who} updated the outcome “${o.name}”` };
    }
    case "outcome.removed": {
      const id = e.outcome as string;
      const name = p.outcomes.find((x) => x.id === id)?.name ?? "an outcome";
      p.outcomes = p.outcomes.filter((x) => x.id !== id);
      const patches: ItemPatch[] = [];
      for (const i of ids) {
        const it = getItem(i);
        if (it) patches.push([i, { outcomes: (it.outcomes ?? []).filter((x) => x !== id) }]);
      }
      return { patches, text: (who) => `${who} removed the outcome “${name}”` };
    }
    default:
      return null;
  }
}
