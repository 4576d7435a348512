// Section 3: decode + validate in ingest-core beside serde_json's raw parse
// of the same bytes. Full: criterion (ingest-core/benches/decode.rs, built
// with the workspace release profile, the one the worker ships) for times,
// and valgrind's callgrind on ingest-core/benches/instructions.rs for
// instruction counts, which hold still on a busy machine. Smoke: every
// criterion case once (cargo test mode, debug build) and one small case
// under callgrind.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { ROOT, SMOKE, commandVersion, writeResult } from "./lib.mjs";

/** Release builds of the benches live apart from the shared target/ of tests. */
const TARGET = path.join(ROOT, "target/bench");
const SCALING_SIZES = [1, 10, 100, 1000, 2000];
const SIDES = ["setup", "ours", "baseline"];

function cargo(args, env = {}) {
  return execFileSync("cargo", args, { cwd: ROOT, env: { ...process.env, ...env }, maxBuffer: 64 << 20,
    stdio: ["ignore", "pipe", "inherit"] }).toString();
}

/** The executables of ingest-core's bench targets, by name. */
function executables(args, env) {
  const out = cargo([...args, "--no-run", "--message-format=json", "-q"], env);
  const found = {};
  for (const line of out.split("\n")) {
    if (!line.startsWith("{")) continue;
    const msg = JSON.parse(line);
    if (msg.reason === "compiler-artifact" && msg.executable) found[msg.target.name] = msg.executable;
  }
  return found;
}

/** Instructions of `ours` and `baseline`, each less the run that only builds the request. */
function countInstructions(exe, name) {
  const counts = {};
  for (const side of SIDES) {
    const run = spawnSync("valgrind", ["--tool=callgrind", "--callgrind-out-file=/dev/null", exe, name, side],
      { stdio: ["ignore", "ignore", "pipe"], maxBuffer: 16 << 20 });
    const log = run.stderr.toString();
    const match = log.match(/Collected\s*:\s*(\d+)/);
    if (run.status !== 0 || !match) throw new Error(`callgrind ${name} ${side} failed:\n${log}`);
    counts[side] = Number(match[1]);
  }
  return { ours: counts.ours - counts.setup, baseline: counts.baseline - counts.setup };
}

function estimate(...parts) {
  const file = path.join(TARGET, "criterion", ...parts, "new", "estimates.json");
  if (!existsSync(file)) return NaN;
  return JSON.parse(readFileSync(file, "utf8")).median.point_estimate;
}

const lockVersion = (name) => {
  const lock = readFileSync(path.join(ROOT, "Cargo.lock"), "utf8");
  return lock.match(new RegExp(`name = "${name}"\\nversion = "([^"]+)"`))?.[1] ?? "?";
};

/** The workspace release profile's opt-level (Cargo.toml), which the worker ships. */
function releaseLevel() {
  const toml = readFileSync(path.join(ROOT, "Cargo.toml"), "utf8");
  return toml.match(/\[profile\.release\]\s*\n(?:#.*\n)*opt-level = "?(\w)"?/)?.[1] ?? "?";
}

const benchArgs = ["-p", "ingest-core", "--bench", "decode", "--bench", "instructions"];
let exes;
if (SMOKE) {
  // Debug build, shared with `cargo test`: every case runs once as a test.
  cargo(["test", ...benchArgs]);
  exes = executables(["test", ...benchArgs]);
} else {
  const env = { CARGO_TARGET_DIR: TARGET };
  exes = executables(["bench", ...benchArgs], env);
  execFileSync(exes.decode, ["--bench"], { cwd: path.join(ROOT, "ingest-core"), env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit"] });
}
const list = execFileSync(exes.instructions, ["list"]).toString().trim().split("\n").map((line) => {
  const [name, events, what, baseline] = line.split("\t");
  return { name, events: Number(events), what, baseline };
});

const cases = [];
for (const c of list) {
  if (SMOKE && c.name !== "collect_pageview") continue;
  const ours = estimate(c.name, "ours");
  const baseline = estimate(c.name, "baseline");
  const counted = countInstructions(exes.instructions, c.name);
  const row = { ...c, oursNs: ours, baselineNs: baseline, ratio: baseline / ours,
    oursInstructions: counted.ours, baselineInstructions: counted.baseline,
    instructionRatio: counted.baseline / counted.ours };
  cases.push(row);
  console.log(`decode: ${c.name.padEnd(26)} time ratio ${row.ratio.toFixed(2)}  instruction ratio ` +
    `${row.instructionRatio.toFixed(2)}  (${counted.ours} vs ${counted.baseline})`);
}
const scaling = [];
if (!SMOKE) {
  for (const size of SCALING_SIZES) {
    const counted = countInstructions(exes.instructions, `import_scaling/${size}`);
    const ours = estimate("import_scaling", "ours", String(size));
    const baseline = estimate("import_scaling", "baseline", String(size));
    scaling.push({ size, oursNs: ours, baselineNs: baseline, oursPerEventNs: ours / size,
      baselinePerEventNs: baseline / size, oursInstructionsPerEvent: counted.ours / size,
      baselineInstructionsPerEvent: counted.baseline / size });
  }
}
const problems = cases.filter((c) => !(c.oursInstructions > 0 && c.baselineInstructions > 0) ||
  (!SMOKE && !(c.ratio > 0)));
writeResult("decode", {
  profile: SMOKE ? "debug (smoke)" : `release profile of the workspace (opt-level ${releaseLevel()}, LTO, one codegen unit)`,
  rustc: commandVersion("rustc"), valgrind: commandVersion("valgrind"),
  serde_json: lockVersion("serde_json"), criterion: lockVersion("criterion"), flate2: lockVersion("flate2"),
  goal: 0.5, cases, scaling,
});
if (problems.length) {
  console.error(`decode: no figures for ${problems.map((c) => c.name).join(", ")}`);
  process.exit(1);
}
