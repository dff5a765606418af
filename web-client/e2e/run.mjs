// Runs every e2e test file one after the other (what `npm run test:e2e` does):
//   node e2e/run.mjs [name ...]     e.g. node e2e/run.mjs meeting secrecy
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const wanted = process.argv.slice(2);
const files = fs
  .readdirSync(here)
  .filter((f) => f.endsWith(".test.mjs"))
  .filter((f) => !wanted.length || wanted.includes(f.replace(/\.test\.mjs$/, "")))
  .sort()
  .map((f) => path.join(here, f));
if (!files.length) {
  console.error(`no e2e test file matches ${wanted.join(" ")}`);
  process.exit(2);
}
const r = spawnSync(process.execPath, ["--test", "--test-concurrency=1", ...files], { stdio: "inherit" });
process.exit(r.status ?? 1);
