// Import over HTTP (PROTOCOL.md: POST /api/rooms/{room}/import): the server's preview (a dry run)
// and the import itself, which arrives in the room as one backlog.imported event.

/** The server's answer to an import or its dry run. */
export interface ImportPreview {
  dry_run: boolean;
  format: "json" | "csv";
  items: number;
  children: number;
  ids: "kept" | "new";
  first: { id: string; parent: string | null; title: string; kind: string | null; estimate: string | null }[];
  warnings: string[];
  more_warnings: number;
  seq: number | null;
}

/** The format of a file, by its name and then its first character ("{": JSON). */
export function fileFormat(name: string, text: string): "json" | "csv" {
  if (/\.json$/i.test(name)) return "json";
  if (/\.csv$/i.test(name)) return "csv";
  return text.replace(/^\uFEFF/, "").trimStart().startsWith("{") ? "json" : "csv";
}

/** One line that says what an import brings. */
export function previewSentence(p: ImportPreview): string {
  const stories = `${p.items} ${p.items === 1 ? "story" : "stories"}`;
  const kids = p.children ? `, ${p.children} of them split from another` : "";
  const where = p.ids === "kept" ? "" : ", added below the stories already here";
  return `${stories}${kids}${where}.`;
}

/** POSTs the file: a preview with dryRun, else the import. Throws an Error with the server's sentence. */
export async function postImport(
  room: string,
  token: string,
  body: Blob | string,
  format: "json" | "csv",
  dryRun: boolean,
  fetcher: typeof fetch = fetch,
): Promise<ImportPreview> {
  const q = `format=${format}${dryRun ? "&dry_run=1" : ""}`;
  const res = await fetcher(`/api/rooms/${encodeURIComponent(room)}/import?${q}`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      "Content-Type": format === "json" ? "application/json" : "text/csv",
    },
    body,
  });
  let out: unknown = null;
  try {
    out = await res.json();
  } catch {
    /* not JSON */
  }
  if (!res.ok) {
    const msg = (out as { msg?: string } | null)?.msg;
    throw new Error(msg || `The import failed (HTTP ${res.status}).`);
  }
  if (!out) throw new Error("The server applied the import but sent no summary; the backlog shows it.");
  return out as ImportPreview;
}
