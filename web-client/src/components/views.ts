// The room's workspaces: "Refine" (backlog, story, poker) and the refinement toolkit's views.
// Each toolkit view is one component, loaded when first opened; add a view by adding a line.
import type { Component } from "svelte";

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
  { id: "priorities", label: "Priorities", load: () => import("./Priorities.svelte") },
  { id: "product", label: "Product", load: () => import("./Product.svelte") },
  { id: "map", label: "Story map", short: "Map", load: () => import("./StoryMap.svelte") },
  { id: "health", label: "Health", load: () => import("./Health.svelte") },
];
