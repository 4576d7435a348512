// Section 9: which optimisation level each crate ships at. The tracker is
// held to a byte budget and stays at opt-level "z"; the worker and
// ingest-core are measured at z, s, 2 and 3 side by side in one run:
//   - the worker's wasm as worker-build ships it (wasm-bindgen, then
//     wasm-opt -O as its release default), gzip -9 bytes: what Cloudflare's
//     size limit counts;
//   - ingest-core's decode + validate as instructions (callgrind, the cases
//     of section 3 summed, "ours" less the run that only builds the
//     request): the work the worker's CPU time pays for.
// Each level builds into its own target folder, so the shared one (and
// edge-worker/build) is left alone. Smoke: the built worker's wasm and one
// case at the debug build of section 3, no rebuilds.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import path from "node:path";
import { gzipSync } from "node:zlib";
import { ROOT, SMOKE, WORKER_DIR, commandVersion, writeResult } from "./lib.mjs";

const LEVELS = ["z", "s", "2", "3"];
const SCRATCH = path.join(ROOT, "target/profiles");
const SIDES = ["setup", "ours"];

const gzipBytes = (file) => gzipSync(readFileSync(file), { level: 9 }).length;

function run(cmd, args, options = {}) {
  return execFileSync(cmd, args, { maxBuffer: 64 << 20, stdio: ["ignore", "pipe", "pipe"], ...options }).toString();
}

/** The instructions bench executable built at `level` (its own target folder). */
function instructionsExe(level) {
  const env = { ...process.env, CARGO_TARGET_DIR: path.join(SCRATCH, `native-${level}`),
    CARGO_PROFILE_RELEASE_OPT_LEVEL: level, CARGO_PROFILE_BENCH_OPT_LEVEL: level };
  const out = run("cargo", ["bench", "-p", "ingest-core", "--bench", "instructions", "--no-run",
    "--message-format=json", "-q"], { cwd: ROOT, env });
  for (const line of out.split("\n")) {
    if (!line.startsWith("{")) continue;
    const msg = JSON.parse(line);
    if (msg.reason === "compiler-artifact" && msg.executable && msg.target.name === "instructions") return msg.executable;
  }
  throw new Error(`profiles: no instructions executable at opt-level ${level}`);
}

/** The smoke's executable: the debug build section 3's smoke leaves in target/. */
function debugInstructionsExe() {
  const out = run("cargo", ["test", "-p", "ingest-core", "--bench", "instructions", "--no-run",
    "--message-format=json", "-q"], { cwd: ROOT });
  const line = out.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l))
    .find((m) => m.reason === "compiler-artifact" && m.executable && m.target.name === "instructions");
  if (!line) throw new Error("profiles: no debug instructions executable");
  return line.executable;
}

function instructions(exe, name) {
  const counts = {};
  for (const side of SIDES) {
    const done = spawnSync("valgrind", ["--tool=callgrind", "--callgrind-out-file=/dev/null", exe, name, side],
      { stdio: ["ignore", "ignore", "pipe"], maxBuffer: 16 << 20 });
    const match = done.stderr.toString().match(/Collected\s*:\s*(\d+)/);
    if (done.status !== 0 || !match) throw new Error(`callgrind ${name} ${side} failed:\n${done.stderr}`);
    counts[side] = Number(match[1]);
  }
  return counts.ours - counts.setup;
}

/** The worker's wasm built by worker-build at `level`, gzip -9 bytes. */
function workerWasm(level) {
  const outDir = path.join(SCRATCH, `worker-out-${level}`);
  rmSync(outDir, { recursive: true, force: true });
  // The pinned local tools, as the Makefile points worker-build at them
  // (it would otherwise download its own).
  const env = { ...process.env, CARGO_PROFILE_RELEASE_OPT_LEVEL: level,
    WASM_BINDGEN_BIN: run("sh", ["-c", "command -v wasm-bindgen"]).trim(),
    WASM_OPT_BIN: path.join(ROOT, "node_modules/.bin/wasm-opt"), ESBUILD_BIN: path.join(ROOT, "node_modules/.bin/esbuild") };
  const started = Date.now();
  run("worker-build", ["--release", "--out-dir", outDir, "--target-dir", path.join(SCRATCH, `worker-${level}`)],
    { cwd: path.join(ROOT, "edge-worker"), env });
  const wasm = path.join(outDir, "index_bg.wasm");
  if (!existsSync(wasm)) throw new Error(`profiles: worker-build left no ${wasm}`);
  return { bytes: readFileSync(wasm).length, gzip: gzipBytes(wasm), buildSeconds: (Date.now() - started) / 1000 };
}

const caseNames = (exe) => run(exe, ["list"]).trim().split("\n").map((l) => l.split("\t")[0]);

const levels = [];
if (SMOKE) {
  const exe = debugInstructionsExe();
  const wasm = path.join(WORKER_DIR, "build/index_bg.wasm");
  levels.push({ level: "z (smoke: debug instructions, the built worker)", workerBytes: readFileSync(wasm).length,
    workerGzip: gzipBytes(wasm), instructions: instructions(exe, "collect_pageview"), cases: 1 });
} else {
  for (const level of LEVELS) {
    const exe = instructionsExe(level);
    const names = caseNames(exe).filter((n) => !n.startsWith("import_scaling/"));
    let total = 0;
    for (const name of names) total += instructions(exe, name);
    const worker = workerWasm(level);
    levels.push({ level, workerBytes: worker.bytes, workerGzip: worker.gzip, workerBuildSeconds: worker.buildSeconds,
      instructions: total, cases: names.length });
    console.log(`profiles: opt-level ${level}: worker ${worker.gzip} B gzip, ${total} instructions over ` +
      `${names.length} cases`);
  }
}
writeResult("profiles", { rustc: commandVersion("rustc"), workerBuild: commandVersion("worker-build"), levels });
if (levels.some((l) => !(l.workerGzip > 0 && l.instructions > 0))) {
  console.error("profiles: a level has no figures");
  process.exit(1);
}
