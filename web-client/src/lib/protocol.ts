// The wire protocol's shapes, as protocol/PROTOCOL.md specifies them (the contract of record).
// Only types and small constant tables live here; no behaviour.

export type Role = "facilitator" | "owner" | "member" | "observer";
export const ROLES: readonly Role[] = ["facilitator", "owner", "member", "observer"];

export type ItemKind = "story" | "epic" | "spike" | "bug" | "task";
export type ItemStatus = "draft" | "ready" | "done" | "split";
export type Moscow = "must" | "should" | "could" | "wont";
export type Confidence = "low" | "medium" | "high";
export type HintWhat = "editing" | "dragging";

export interface Item {
  id: string;
  rank: string;
  parent: string | null;
  updated_at: number;
  title: string;
  kind: ItemKind;
  persona: string;
  goal: string;
  benefit: string;
  notes: string;
  acceptance: string[];
  estimate: string | null;
  value: number | null;
  moscow: Moscow | null;
  status: ItemStatus;
  labels: string[];
  /** WSJF's cost-of-delay inputs, 0..20 or nil (PROTOCOL.md "Prioritization"). */
  business_value?: number | null;
  time_criticality?: number | null;
  risk_reduction?: number | null;
  persona_id: string | null; // one of the room's personas (Product), or null
  outcomes: string[]; // ids of the room's outcomes the item serves
  /** Its place on the story map (both set, or both null: unplaced); set by map.place only. */
  step?: string | null;
  slice?: string | null;
}

/** Fields a client may send in item.add's `item`, item.update's `set` and item.split's `children`. */
export type ItemFields = Partial<Omit<Item, "id" | "rank" | "parent" | "updated_at" | "status" | "step" | "slice">> & {
  status?: Exclude<ItemStatus, "split">;
};

export interface Participant {
  pid: string;
  name: string;
  role: Role;
  online: boolean;
}

export interface RoomInfo {
  id: string;
  name: string;
  deck: string | string[];
  auto_reveal: boolean;
  reveal_on_timer: boolean;
  facilitator_grace: number;
  capacity?: number; // health settings (PROTOCOL.md "Backlog health")
  size_limit?: number;
  stale_days?: number;
  created_at: number;
  epoch?: string;
}

export interface Stats {
  count: number;
  not_voted: number;
  missing: string[];
  numeric: number;
  min: number | null;
  max: number | null;
  mean: number | null;
  median: number | null;
  distribution: Record<string, number>;
  mode: string | null;
  consensus: boolean;
  spread: number | null;
  highest: string[];
  lowest: string[];
  suggested: string | null;
  confidence: { low: number; medium: number; high: number };
}

export type RoundState = "voting" | "revealed" | "accepted" | "cancelled";

export interface Round {
  id: string;
  item: string;
  state: RoundState;
  deck: string[];
  anonymous: boolean;
  deadline: number | null;
  started_at: number;
  revealed_at: number | null;
  voters: string[];
  voted: string[];
  votes: Record<string, string | null> | null;
  stats: Stats | null;
  estimate: string | null;
}

/** Kano survey (PROTOCOL.md "Kano survey"). */
export type KanoAnswer = "like" | "expect" | "neutral" | "tolerate" | "dislike";
export type KanoCategory = "A" | "O" | "M" | "I" | "R" | "Q";
export const KANO_ANSWERS: readonly KanoAnswer[] = ["like", "expect", "neutral", "tolerate", "dislike"];
export interface KanoResults {
  counts: Record<KanoCategory, number>;
  total: number;
  category: KanoCategory | null;
  satisfaction: number | null; // CS+ = (A+O)/(A+O+M+I), nil when A+O+M+I is 0
  dissatisfaction: number | null; // CS- = -(O+M)/(A+O+M+I)
}
export interface KanoSurvey {
  item: string;
  revealed: boolean;
  answered: string[]; // pids; never what they answered
  results: KanoResults | null; // after the reveal
}

/** Story map (PROTOCOL.md "Story map"): activities, steps under them, release slices. */
export type MapKind = "activity" | "step" | "slice";
export interface MapNode {
  id: string;
  name: string;
  activity?: string; // a step's activity
  capacity?: number | null; // a slice's capacity in points (null: none)
}
export interface StoryMapData {
  activities: MapNode[];
  steps: MapNode[];
  slices: MapNode[]; // the snapshot's slices also carry points and unestimated (clients recompute)
}

export interface Snapshot {
  t: "snapshot";
  seq: number;
  room: RoomInfo;
  participants: Participant[];
  observers: { online: number; total: number };
  items: Item[];
  round: Round | null;
  rounds: Round[];
  focus: string | null;
  timer: number | null;
  kano?: KanoSurvey[];
  product?: Product;
  map?: StoryMapData;
  health?: HealthWire;
}

/** DEEP health (PROTOCOL.md "Backlog health"). */
export type HealthRule =
  | "unestimated"
  | "too_large"
  | "no_acceptance"
  | "no_benefit"
  | "draft"
  | "epic"
  | "wont_above_must"
  | "stale";
export interface HealthScores {
  detailed: number;
  emergent: number;
  estimated: number;
  prioritized: number;
  overall: number;
}
export interface HealthFinding {
  item: string;
  rules: HealthRule[];
}
/** The health of the snapshot and of a replay join's `ok`. */
export interface HealthWire {
  scores: HealthScores;
  top: { items: number; points: number };
  per_rule: Record<HealthRule, number>;
  findings: HealthFinding[];
}
/** The `health` notice's content: only the findings that changed. */
export type HealthNotice = Omit<HealthWire, "findings"> & { changed: HealthFinding[] };

/** Every message has `t`; events also `seq`, `at`, `by`; replies `id`. */
export interface Message {
  t: string;
  id?: number;
  seq?: number;
  at?: number;
  by?: string | null;
  [field: string]: unknown;
}

export interface ErrorReply {
  t: "err";
  id: number | null;
  code: ErrorCode;
  msg: string;
}

export type ErrorCode =
  | "bad_request"
  | "unknown_op"
  | "not_joined"
  | "auth_failed"
  | "forbidden"
  | "not_found"
  | "conflict"
  | "too_large"
  | "rate_limited"
  | "room_full"
  | "internal"
  | "moved"
  | "unavailable"
  | "wrong_instance";

/** The built-in decks (PROTOCOL.md "Decks"). */
export const DECKS: Record<string, string[]> = {
  fibonacci: ["0", "1", "2", "3", "5", "8", "13", "21", "34", "55", "89", "?", "coffee"],
  modified: ["0", "½", "1", "2", "3", "5", "8", "13", "20", "40", "100", "?", "coffee"],
  tshirt: ["XS", "S", "M", "L", "XL", "XXL", "?", "coffee"],
  powers: ["0", "1", "2", "4", "8", "16", "32", "64", "?", "coffee"],
};

/** Who may send what (PROTOCOL.md "Who may send what"); the server checks it too. */
export const PERMISSIONS: Record<string, readonly Role[]> = {
  "role.set": ["facilitator"],
  "room.update": ["facilitator"],
  "item.add": ["facilitator", "owner", "member"],
  "item.update": ["facilitator", "owner", "member"],
  "item.move": ["facilitator", "owner"],
  "item.remove": ["facilitator", "owner"],
  "item.split": ["facilitator", "owner", "member"],
  focus: ["facilitator"],
  "round.start": ["facilitator"],
  vote: ["facilitator", "owner", "member"],
  "round.reveal": ["facilitator"],
  "round.accept": ["facilitator", "owner"],
  "round.cancel": ["facilitator"],
  "timer.start": ["facilitator"],
  "timer.stop": ["facilitator"],
  "role.claim": ["owner", "member"],
  "token.rotate": ["facilitator"],
  hint: ["facilitator", "owner", "member"],
  "kano.answer": ["facilitator", "owner", "member", "observer"],
  "kano.reveal": ["facilitator"],
  "kano.reset": ["facilitator"],
  "order.propose": ["facilitator", "owner", "member", "observer"],
  "order.apply": ["facilitator", "owner"],
  "item.unsplit": ["facilitator", "owner", "member"],
  undo: ["facilitator", "owner", "member"],
  "vision.set": ["owner"],
  "persona.add": ["facilitator", "owner"],
  "persona.update": ["facilitator", "owner"],
  "persona.remove": ["facilitator", "owner"],
  "outcome.add": ["facilitator", "owner"],
  "outcome.update": ["facilitator", "owner"],
  "outcome.remove": ["facilitator", "owner"],
  "map.add": ["facilitator", "owner"],
  "map.update": ["facilitator", "owner"],
  "map.move": ["facilitator", "owner"],
  "map.remove": ["facilitator", "owner"],
  "map.place": ["facilitator", "owner", "member"],
};

export function may(role: Role | null | undefined, op: string): boolean {
  return !!role && (PERMISSIONS[op]?.includes(role) ?? false);
}

/** The protocol's limits the client checks before sending (the server checks them again). */
export const LIMITS = {
  title: 200,
  roomName: 200,
  name: 100,
  text: 1000, // persona, goal, benefit, one acceptance criterion
  notes: 10000,
  acceptance: 50,
  labels: 20,
  label: 50,
  children: 20,
  pattern: 16,
  deckCards: 20,
  card: 16,
  mapName: 100,
  mapActivities: 20,
  mapSteps: 100,
  mapSlices: 10,
  mapCapacity: 10000,
};

// ---- Additions by the client core (additive only; nothing above was renamed or removed) ----

/** One entry of the join `ok`'s `hints` and the body of the `hint` notice (ephemeral op). */
export interface HintEntry {
  pid: string;
  item: string | null;
  what: HintWhat | null;
}

/** The join reply (`{t: "ok", id, ...}`), PROTOCOL.md "join". */
export interface JoinOk {
  t: "ok";
  id: number;
  pid: string;
  secret: string;
  role: Role;
  name: string;
  seq: number;
  mode: "replay" | "snapshot";
  epoch?: string;
  reason?: "epoch" | "ahead" | "too_old";
  participants?: Participant[]; // replay mode
  observers?: { online: number; total: number }; // replay mode
  health?: HealthWire; // replay mode
  hints?: HintEntry[];
}

/** Close codes the server sends (PROTOCOL.md "Close codes sent by the server"). */
export const CLOSE = {
  normal: 1000,
  goingAway: 1001,
  policy: 1008,
  tooBig: 1009,
  internal: 1011,
  slow: 4001,
  idle: 4002,
} as const;

/** item.split's `pattern` ids (PROTOCOL.md "Splitting patterns"), with a label and a one-line
 * hint each, from the domain notes. The server refuses any other id. */
export const SPLIT_PATTERNS = [
  { id: "workflow", label: "Workflow steps", hint: "One story per step of the user's workflow." },
  { id: "business-rules", label: "Business-rule variations", hint: "One story per rule or rule variant." },
  { id: "happy-path", label: "Happy path first, then variations", hint: "The main success path first; alternatives and errors later." },
  { id: "simple-complex", label: "Simple case first, then complex", hint: "The simplest version that works, then the harder cases." },
  { id: "data", label: "Variations in data", hint: "One story per kind of data handled." },
  { id: "interface", label: "Data entry or interface variations", hint: "One story per input method, device or interface." },
  { id: "operations", label: "Operations (create, read, update, delete)", hint: "One story per operation on the thing." },
  { id: "performance", label: "Defer performance", hint: "Make it work first; make it fast in a later story." },
  { id: "spike", label: "Spike (research) first", hint: "A time-boxed research story, then the stories it informs." },
] as const;
export type SplitPattern = (typeof SPLIT_PATTERNS)[number]["id"];

/** Prioritization (PROTOCOL.md "Prioritization"): order.propose's methods and reply. */
export type PrioMethod = "value_effort" | "wsjf" | "moscow_value";
export interface Proposal {
  method: PrioMethod;
  base: string; // order.apply refuses a stale one (conflict)
  order: string[]; // the open items' ids, in the proposed order
  scores: (number | null)[];
  lacking: { item: string; missing: string[] }[];
  fixed: number; // split parents and done items, which keep their place
}

/** Vision, personas and outcomes (PROTOCOL.md "Vision, personas and outcomes"). */
export interface Vision {
  target: string; // For ...
  need: string; // who ...
  product: string; // the ...
  product_category: string; // is a ...
  benefit: string; // that ...
  alternatives: string; // Unlike ...
  differentiator: string; // our product ...
}
export const VISION_FIELDS: readonly (keyof Vision)[] = ["target", "need", "product", "product_category", "benefit", "alternatives", "differentiator"];
export interface Persona {
  id: string;
  name: string;
  description: string;
  goals: string[];
}
export interface Outcome {
  id: string;
  name: string;
  metric: string;
  unit: string;
  current: number | null;
  target: number | null;
}
export interface Product {
  vision: Vision;
  personas: Persona[];
  outcomes: Outcome[];
}
export const PRODUCT_LIMITS = {
  vision: 300,
  personas: 12,
  personaName: 100,
  personaDescription: 500,
  goals: 5,
  goal: 200,
  outcomes: 20,
  outcomeName: 200,
  metric: 200,
  unit: 16,
  itemOutcomes: 10,
};
