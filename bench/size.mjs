// Section 1: tracker bytes on the wire. Each tracker as a site serves it
// (ours: t.js + t.wasm and t.full.js + t.full.wasm as `make tracker` built
// them; the others: an esbuild --bundle --minify of a one-line init from the
// npm package, plus the CDN builds the packages ship), raw, gzip -9 and
// brotli quality 11. And what each of our options costs: t.js + t.wasm built
// with it alone, over the script with none (make tracker-variant).
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { brotliCompressSync, constants } from "node:zlib";
import { BENCH, PUBLIC, ROOT, SMOKE, bundle, workDir, writeResult } from "./lib.mjs";
import { TRACKERS, buildAll } from "./trackers.mjs";

const NPM = path.join(BENCH, "node_modules");
/** The target the project set for its tracker: 5 KB gzip, t.js + t.wasm. */
const GOAL_GZIP_BYTES = 5 * 1024;

function sizes(file) {
  const bytes = readFileSync(file);
  // -n: a server's gzip stream carries no file name (scripts/size.sh too).
  const gzip = execFileSync("gzip", ["-9", "-n", "-c", file], { maxBuffer: 64 << 20 }).length;
  const brotli = brotliCompressSync(bytes, {
    params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length },
  }).length;
  return { file: path.basename(file), raw: bytes.length, gzip, brotli };
}

function row(tracker, artifact, files, note) {
  const parts = files.map(sizes);
  const sum = (k) => parts.reduce((s, p) => s + p[k], 0);
  return { id: tracker.id, label: tracker.label, version: tracker.version(), artifact, note,
    parts, raw: sum("raw"), gzip: sum("gzip"), brotli: sum("brotli") };
}

/** The tracker's options (tracker-wasm/Cargo.toml features), cheapest first as the README lists them. */
const OPTIONS = ["not-found", "manual", "domains", "props", "forms", "hook", "downloads", "revenue", "paths", "engagement"];

/** t.js + t.wasm built with `options` (make tracker-variant), gzip -9 of each. */
function variant(options) {
  const dir = path.join(workDir(), "variant");
  execFileSync("make", ["-s", "tracker-variant", `PUBLIC=${dir}`, `OPTIONS=${options.join(" ")}`],
    { cwd: ROOT, stdio: ["ignore", "ignore", "inherit"] });
  const [js, wasm] = ["t.js", "t.wasm"].map((f) => sizes(path.join(dir, f)).gzip);
  return { js, wasm, total: js + wasm };
}

// What each option adds to the script with none (the smoke run builds the
// bare script only, to keep `make test` quick).
const bare = variant([]);
const options = (SMOKE ? [] : OPTIONS).map((option) => {
  const v = variant([option]);
  return { option, js: v.js - bare.js, wasm: v.wasm - bare.wasm, total: v.total - bare.total };
});

const built = buildAll();
const byId = Object.fromEntries(TRACKERS.map((t) => [t.id, t]));
const plausibleOptions = bundle("plausible-options.js", path.join(workDir(), "trackers", "plausible-options.js"));
const rows = [
  row(byId.edgetrack, "t.js + t.wasm (make tracker)", Object.values(built.edgetrack),
    "the default script: page views at once, SPA, outbound links, tagged events, 404, consent modes (private by default), local pages skipped, bot checks, confirmed delivery"),
  row(byId.edgetrack, "t.full.js + t.full.wasm", [path.join(PUBLIC, "t.full.js"), path.join(PUBLIC, "t.full.wasm")],
    "every option: the default's, plus engagement, file downloads, revenue, properties on every event, manual pageviews, include/exclude, domains, beforeSend, forms"),
  row(byId.mixpanel, "npm bundle (esbuild --minify)", Object.values(built.mixpanel),
    "default import; session recording and targeting load later from the CDN, not counted"),
  row(byId.mixpanel, "CDN build dist/mixpanel.min.js", [path.join(NPM, "mixpanel-browser/dist/mixpanel.min.js")],
    "what the official snippet loads (ships minified)"),
  row(byId.posthog, "npm bundle (esbuild --minify)", Object.values(built.posthog),
    "default import; lazily loaded extensions (recorder, surveys, …) not counted"),
  row(byId.posthog, "CDN build dist/array.js", [path.join(NPM, "posthog-js/dist/array.js")],
    "what the official snippet loads (ships minified)"),
  row(byId.plausible, "npm bundle (esbuild --minify)", Object.values(built.plausible),
    "the package ships one minified ES module"),
  row(byId.plausible, "npm bundle, t.full.js's options on", [plausibleOptions],
    "outbound links, file downloads, forms, hash routing, custom properties, transformRequest on (bench/entries/plausible-options.js); revenue, tagged events and engagement are always in"),
  row(byId.vemetric, "npm loader bundle + dist/main.js", Object.values(built.vemetric),
    "the npm package is a loader that adds main.js from Vemetric's CDN; the same package ships that main.js in dist/, measured here"),
  row(byId.vemetric, "npm loader bundle alone", [built.vemetric["/vemetric.js"]],
    "what `import { vemetric } from \"@vemetric/web\"` adds to a site's bundle"),
];

const ours = rows[0];
for (const r of rows) {
  r.gzipVsOurs = r.gzip / ours.gzip;
  r.brotliVsOurs = r.brotli / ours.brotli;
}
const result = {
  goalGzipBytes: GOAL_GZIP_BYTES,
  oursGzip: ours.gzip,
  goalMet: ours.gzip <= GOAL_GZIP_BYTES,
  bare,
  options,
  brotli: "Node zlib, quality 11",
  gzip: execFileSync("gzip", ["--version"]).toString().split("\n")[0],
  rows,
};
writeResult("size", result);
for (const r of rows) {
  console.log(`size: ${r.label.padEnd(30)} ${r.artifact.padEnd(34)} gzip ${String(r.gzip).padStart(7)} B` +
    `  brotli ${String(r.brotli).padStart(7)} B  (${r.gzipVsOurs.toFixed(2)}x ours)`);
}
console.log(`size: ours ${ours.gzip} B gzip against the ${GOAL_GZIP_BYTES} B goal: ${result.goalMet ? "met" : "not met"}`);
console.log(`size: the script with no option ${bare.total} B; ` + options.map((o) => `${o.option} +${o.total}`).join(", "));
if (!(ours.gzip > 0) || rows.some((r) => !(r.gzip > 0))) {
  console.error("size: a tracker measured 0 bytes");
  process.exit(1);
}
