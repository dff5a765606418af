// The room's workspaces: "Refine" (backlog, story, poker) and the refinement toolkit's views.
// Each toolkit view is one component, loaded when first opened (lazy: tried again until it
// arrives); add a view by adding a line.
import type { Component } from "svelte";
import { lazy } from "../lib/lazy";

export interface WorkspaceView {
  id: string;
  label: string;
  /** A shorter label for phones (five views share 390 px), when the label is long. */
  short?: string;
  /** null: the Refine layout itself (Room.svelte). */
  load: (() => Promise<{ default: Component }>) | null;
}

export const views: WorkspaceView[] = [
  { id: "refine", label: "Refine", load: null },
  { id: "priorities", label: "Priorities", load: lazy(() => import("./Priorities.svelte")) },
  { id: "product", label: "Product", load: lazy(() => import("./Product.svelte")) },
  { id: "map", label: "Story map", short: "Map", load: lazy(() => import("./StoryMap.svelte")) },
  { id: "health", label: "Health", load: lazy(() => import("./Health.svelte")) },
];
