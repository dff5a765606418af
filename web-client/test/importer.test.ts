import { describe, expect, it } from "vitest";
import { fileFormat, postImport, previewSentence, type ImportPreview } from "../src/lib/importer";

const preview: ImportPreview = {
  dry_run: true,
  format: "csv",
  items: 3,
  children: 1,
  ids: "new",
  first: [],
  warnings: [],
  more_warnings: 0,
  seq: null,
};

describe("importer", () => {
  it("tells the format by the name, then by the first character", () => {
    expect(fileFormat("a.JSON", "Summary")).toBe("json");
    expect(fileFormat("a.csv", "{")).toBe("csv");
    expect(fileFormat("export", "\uFEFF  {\"items\": []}")).toBe("json");
    expect(fileFormat("export", "Summary,Issue Id")).toBe("csv");
  });

  it("says what an import brings", () => {
    expect(previewSentence(preview)).toBe("3 stories, 1 of them split from another, added below the stories already here.");
    expect(previewSentence({ ...preview, items: 1, children: 0, ids: "kept" })).toBe("1 story.");
  });

  it("posts a dry run with the token and gives the server's sentence on an error", async () => {
    const calls: [string, RequestInit][] = [];
    const ok = (async (url: string, init: RequestInit) => {
      calls.push([url, init]);
      return new Response(JSON.stringify(preview), { status: 200 });
    }) as unknown as typeof fetch;
    await postImport("R1", "tok", "Summary\r\nA\r\n", "csv", true, ok);
    expect(calls[0][0]).toBe("/api/rooms/R1/import?format=csv&dry_run=1");
    expect((calls[0][1].headers as Record<string, string>).Authorization).toBe("Bearer tok");
    expect(calls[0][1].method).toBe("POST");
    const bad = (async () =>
      new Response(JSON.stringify({ code: "bad_request", msg: "The CSV has no Summary column." }), { status: 400 })) as unknown as typeof fetch;
    await expect(postImport("R1", "tok", "x", "csv", false, bad)).rejects.toThrow("no Summary column");
  });
});
