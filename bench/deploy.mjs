// Section 9: the worker's size as Cloudflare counts it. `wrangler deploy
// --dry-run --env production` bundles exactly what `make deploy` uploads
// (scripts/deploy.sh --dry-run) and prints its total and gzip size; the
// platform refuses a Worker whose compressed size passes the plan's limit.
// Also the size of each file it wrote, raw and gzip -9.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { ROOT, writeResult } from "./lib.mjs";

/** Cloudflare's limits on a Worker's compressed size (Workers docs, "Limits"), bytes. */
const LIMITS = { free: 3 * 1024 * 1024, paid: 10 * 1024 * 1024 };

execFileSync(path.join(ROOT, "scripts/deploy.sh"), ["--dry-run"], { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
const log = readFileSync(path.join(ROOT, "target/deploy-dry-run.log"), "utf8");
const line = log.split("\n").find((l) => l.includes("Total Upload"));
const match = line?.match(/Total Upload:\s*([\d.]+)\s*KiB\s*\/\s*gzip:\s*([\d.]+)\s*KiB/);
if (!match) throw new Error(`no 'Total Upload' line in wrangler's output:\n${log}`);
const dir = path.join(ROOT, "target/deploy-dry-run");
// The modules the Worker is made of (the folder also holds a source map and
// a README, which are not uploaded); the wasm's name leads with its digest.
const files = readdirSync(dir).filter((f) => /\.(js|wasm)$/.test(f) && statSync(path.join(dir, f)).isFile()).map((f) => {
  const bytes = readFileSync(path.join(dir, f));
  return { file: f.replace(/^[0-9a-f]{40}-/, ""), raw: bytes.length, gzip: gzipSync(bytes, { level: 9 }).length };
});
const wrangler = JSON.parse(readFileSync(path.join(ROOT, "node_modules/wrangler/package.json"), "utf8")).version;
const result = {
  wrangler,
  totalKiB: Number(match[1]),
  gzipKiB: Number(match[2]),
  limits: LIMITS,
  files,
};
writeResult("deploy", result);
console.log(`deploy: ${result.totalKiB} KiB, gzip ${result.gzipKiB} KiB (free plan limit ${LIMITS.free / 1024} KiB)`);
