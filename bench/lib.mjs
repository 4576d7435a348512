// What the bench scripts share: paths, the results folder, small statistics,
// a static file server and a collector that answers every tracker, both on
// loopback only, and esbuild bundles of the trackers we compare against.
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:http";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const BENCH = path.join(ROOT, "bench");
/**
 * The worker folder to run and the tracker files to measure. scripts/bench.sh
 * points this at a copy taken when the run starts, so that a rebuild by
 * someone else on the machine neither reloads `wrangler dev` mid-run nor
 * swaps the tracker between sections.
 */
export const WORKER_DIR = process.env.BENCH_WORKER_DIR || path.join(ROOT, "edge-worker");
export const PUBLIC = path.join(WORKER_DIR, "public");
const WRANGLER = path.join(ROOT, "node_modules/.bin/wrangler");
export const ESBUILD = path.join(ROOT, "node_modules/.bin/esbuild");

/** `--smoke` on the command line: one tiny iteration of everything. */
export const SMOKE = process.argv.includes("--smoke");

/** Where results go: bench/results for a full run, a scratch folder for smoke. */
export function outDir() {
  const dir = process.env.BENCH_OUT || path.join(ROOT, SMOKE ? "target/bench-smoke" : "bench/results");
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Scratch space for bundles and pages (never committed). */
export function workDir() {
  const dir = path.join(ROOT, "target/bench-work");
  mkdirSync(dir, { recursive: true });
  return dir;
}

export function writeResult(name, data) {
  const file = path.join(outDir(), `${name}.json`);
  writeFileSync(file, JSON.stringify(data, null, 2) + "\n");
  return file;
}

export function readResult(name) {
  const file = path.join(outDir(), `${name}.json`);
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : null;
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function median(values) {
  return percentile(values, 50);
}

/** Nearest-rank percentile; NaN for no values. */
export function percentile(values, p) {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1];
}

/** The version a package in bench/node_modules (or the main one) declares. */
export function packageVersion(name, where = "bench") {
  const base = where === "bench" ? path.join(BENCH, "node_modules") : path.join(ROOT, "node_modules");
  return JSON.parse(readFileSync(path.join(base, name, "package.json"), "utf8")).version;
}

export function commandVersion(cmd, args = ["--version"]) {
  try {
    return execFileSync(cmd, args, { stdio: ["ignore", "pipe", "ignore"] }).toString().trim().split("\n")[0];
  } catch {
    return "not installed";
  }
}

/** Bundles one entry of bench/entries into a minified IIFE, as a site's build would. */
export function bundle(entry, outfile) {
  execFileSync(ESBUILD, [path.join(BENCH, "entries", entry), "--bundle", "--minify", "--format=iife",
    "--target=es2020", "--log-level=error", `--outfile=${outfile}`], { cwd: BENCH, stdio: "inherit" });
  return outfile;
}

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".mjs": "text/javascript",
  ".wasm": "application/wasm", ".css": "text/css", ".json": "application/json" };

/** Serves `files` (url path -> file path or {body, type}) on `host`, port chosen by the system. */
export async function serveFiles(host, files) {
  const server = createServer((req, res) => {
    const entry = files[new URL(req.url, "http://x").pathname];
    if (!entry) return res.writeHead(404).end("not found");
    const body = typeof entry === "string" ? readFileSync(entry) : entry.body;
    const type = typeof entry === "string" ? TYPES[path.extname(entry)] ?? "application/octet-stream" : entry.type;
    res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(body);
  });
  await new Promise((r) => server.listen(0, host, r));
  const { port } = server.address();
  return { base: `http://${host}:${port}`, close: () => new Promise((r) => server.close(r)) };
}

/**
 * Stands in for every tracker's ingestion host on 127.0.0.1: answers CORS
 * preflights, records each request (time, method, path, body size) and
 * answers 200 with what the trackers read (`{"status":1}` JSON; an empty
 * script for `.js`, which posthog-js loads from its host).
 */
export async function startCollector() {
  const seen = [];
  const server = createServer((req, res) => {
    const cors = {
      "access-control-allow-origin": req.headers.origin || "*",
      "access-control-allow-credentials": "true",
      "access-control-allow-methods": "GET, POST, OPTIONS",
      "access-control-allow-headers": req.headers["access-control-request-headers"] || "content-type",
      "access-control-max-age": "600",
    };
    if (req.method === "OPTIONS") return res.writeHead(204, cors).end();
    let bytes = 0;
    req.on("data", (chunk) => (bytes += chunk.length));
    req.on("end", () => {
      const url = new URL(req.url, "http://x");
      seen.push({ at: performance.now(), method: req.method, path: url.pathname, bytes });
      if (url.pathname.endsWith(".js")) {
        return res.writeHead(200, { ...cors, "content-type": "text/javascript" }).end("");
      }
      res.writeHead(200, { ...cors, "content-type": "application/json" }).end('{"status":1,"error":null}');
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    base: `http://127.0.0.1:${port}`,
    seen,
    close: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

/** "2 cores, 2026-01-01" and friends for the report's header. */
export function machine() {
  let cores = "?";
  try {
    cores = execFileSync("nproc").toString().trim();
  } catch {}
  return { cores, date: new Date().toISOString().slice(0, 16).replace("T", " ") + " UTC", node: process.version };
}

function wranglerCli(args, persistDir) {
  return execFileSync(WRANGLER, [...args, "--local", "--persist-to", persistDir], {
    cwd: WORKER_DIR, env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
    stdio: ["ignore", "pipe", "pipe"], maxBuffer: 256 << 20,
  }).toString();
}

/** Runs SQL on the worker's local D1 and returns the rows. */
export function d1(sql, persistDir) {
  const out = wranglerCli(["d1", "execute", "DB", "--json", "--command", sql], persistDir);
  return JSON.parse(out.slice(out.indexOf("[")))[0].results;
}

/**
 * Memory-backed scratch (tmpfs) when the machine has one: D1's local SQLite
 * then waits on no disk that other people's builds and tests share.
 */
export const MEMORY_DIR = existsSync("/dev/shm") ? "/dev/shm" : tmpdir();

/** A fresh state folder with the migrations applied (removed by `stop`). */
export function freshState(base = tmpdir()) {
  const dir = mkdtempSync(path.join(base, "edgetrack-bench-"));
  wranglerCli(["d1", "migrations", "apply", "DB"], dir);
  return dir;
}

/** The SQLite file behind the local D1 database of a state folder. */
export function d1File(persistDir) {
  const base = path.join(persistDir, "v3", "d1", "miniflare-D1DatabaseObject");
  const files = readdirSync(base).filter((f) => f.endsWith(".sqlite") && f !== "metadata.sqlite");
  if (files.length !== 1) throw new Error(`expected one D1 file in ${base}, found ${files.join(", ")}`);
  return path.join(base, files[0]);
}

async function freePort() {
  const server = createServer();
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  await new Promise((r) => server.close(r));
  return port;
}

/**
 * `wrangler dev` on 127.0.0.1 in WORKER_DIR with a fresh migrated state
 * folder, as tests/e2e/harness.mjs starts it; `vars` override wrangler.jsonc's.
 * Stopped by its process group id; the state folder is removed.
 */
export async function startWorker({ vars = {}, persistDir = null, config = null, stateBase = tmpdir() } = {}) {
  const dir = persistDir ?? freshState(stateBase);
  const port = await freePort();
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(port), "--persist-to", dir, ...(config ? ["--config", config] : []),
    "--show-interactive-dev-session=false", "--inspector-port", String(await freePort())];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  const child = spawn(WRANGLER, args, { cwd: WORKER_DIR, detached: true, stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" } });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const base = `http://127.0.0.1:${port}`;
  const kill = (signal) => {
    try {
      process.kill(-child.pid, signal);
    } catch {}
  };
  const deadline = Date.now() + 90_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${log}`);
    if (Date.now() > deadline) {
      kill("SIGKILL");
      throw new Error(`wrangler dev did not start:\n${log}`);
    }
    try {
      if ((await fetch(`${base}/health`)).ok) break;
    } catch {}
    await sleep(250);
  }
  return {
    base,
    persistDir: dir,
    log: () => log,
    async stop() {
      writeFileSync(path.join(workDir(), "worker.log"), log);
      kill("SIGTERM");
      const until = Date.now() + 10_000;
      while (child.exitCode === null && child.signalCode === null && Date.now() < until) await sleep(100);
      if (child.exitCode === null && child.signalCode === null) kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
