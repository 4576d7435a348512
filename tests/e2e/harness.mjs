// Shared end-to-end plumbing: a real `wrangler dev` (workerd with local KV,
// D1, Queues and R2) on a free loopback port with its own state folder, and
// Debian's Chromium driven by playwright-core. Everything started here is
// stopped by PID.
import { spawn, execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WORKER_DIR = path.join(ROOT, "edge-worker");
const WRANGLER = path.join(ROOT, "node_modules/.bin/wrangler");
const ARTIFACTS = path.join(ROOT, "tests/artifacts");

// Node's fetch keeps connections alive, and workerd may close an idle one
// just as it is reused; such a request never reached the worker. It is sent
// again once on a fresh connection; any other failure is thrown as it is.
// Likewise `wrangler dev`'s proxy answers 503 "restarted mid-request" when
// it reloads its runtime under a request (wrangler itself resends only GET
// and HEAD). Only an idempotent request goes once more: a read, an erasure,
// or an ingest call whose events the worker deduplicates (so a resend of a
// request that did arrive stores nothing twice); a test of anything else
// sees the 503.
const nativeFetch = globalThis.fetch;
const RUNTIME_RESTARTED = "restarted mid-request";
const IDEMPOTENT_POSTS = new Set(["/collect", "/track", "/engage", "/groups", "/import", "/e", "/i", "/u", "/l", "/r",
  "/public/track", "/public/track/bulk", "/v1/event", "/api/users/delete", "/api/event", "/api/send", "/e/", "/batch/", "/i/v0/e/"]);
function idempotent(url, options) {
  const method = (options?.method ?? "GET").toUpperCase();
  if (method === "GET" || method === "HEAD" || method === "OPTIONS") return true;
  if (method !== "POST" || options?.duplex || options?.body instanceof ReadableStream) return false;
  try {
    return IDEMPOTENT_POSTS.has(new URL(String(url)).pathname);
  } catch {
    return false;
  }
}
globalThis.fetch = async (url, options) => {
  let response;
  try {
    response = await nativeFetch(url, options);
  } catch (error) {
    const code = error?.cause?.code;
    if (code !== "UND_ERR_SOCKET" && code !== "ECONNRESET") throw error;
    process.stderr.write(`harness: ${code} on a reused connection, sending once more\n`);
    return nativeFetch(url, options);
  }
  if (response.status === 503 && idempotent(url, options) && (await response.clone().text()).includes(RUNTIME_RESTARTED)) {
    process.stderr.write("harness: wrangler restarted its runtime mid-request, sending once more\n");
    return nativeFetch(url, options);
  }
  return response;
};

export const TOKEN = "demo-token";
export const SECRET = "demo-secret";
export const BROWSER_UA =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36";

export async function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Applies the D1 migrations to a state folder. */
export function migrate(persistDir) {
  execFileSync(WRANGLER, ["d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir], {
    cwd: WORKER_DIR,
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
    stdio: "pipe",
  });
}

/**
 * Starts the worker. `vars` override wrangler.jsonc's vars; `persistDir`
 * reuses a state folder (to restart on the same data).
 */
export async function startWorker({ vars = {}, persistDir, port, https = false, testScheduled = false } = {}) {
  const dir = persistDir ?? mkdtempSync(path.join(tmpdir(), "edgetrack-e2e-"));
  if (!persistDir) migrate(dir);
  const listenPort = port ?? (await freePort());
  const args = ["dev", "--ip", "127.0.0.1", "--port", String(listenPort), "--persist-to", dir,
    "--show-interactive-dev-session=false", "--inspector-port", String(await freePort())];
  for (const [k, v] of Object.entries(vars)) args.push("--var", `${k}:${v}`);
  // Self-signed, for clients that only speak https; their tests turn
  // certificate checks off for themselves.
  if (https) args.push("--local-protocol", "https");
  // Lets a test run the cron handler on demand: GET /__scheduled.
  if (testScheduled) args.push("--test-scheduled");
  const child = spawn(WRANGLER, args, {
    cwd: WORKER_DIR,
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CI: "true" },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true, // own process group, so stop() ends workerd too
  });
  let log = "";
  child.stdout.on("data", (d) => (log += d));
  child.stderr.on("data", (d) => (log += d));
  const base = `${https ? "https" : "http"}://127.0.0.1:${listenPort}`;
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`wrangler dev exited:\n${log}`);
    try {
      const r = await fetch(`${base}/health`);
      if (r.ok) break;
    } catch {}
    await sleep(250);
  }
  if (Date.now() >= deadline) {
    stopGroup(child.pid);
    throw new Error(`wrangler dev did not start:\n${log}`);
  }
  return {
    base,
    port: listenPort,
    persistDir: dir,
    pid: child.pid,
    log: () => log,
    /** Runs the cron handler once (needs `testScheduled`). */
    async runCron() {
      const r = await fetch(`${base}/__scheduled?cron=*+*+*+*+*`);
      if (!r.ok) throw new Error(`cron answered ${r.status}`);
    },
    /** Stops the worker; keeps the state folder when `keepState`. */
    async stop({ keepState = false, signal = "SIGTERM" } = {}) {
      // The worker's own log, for reading after a failure.
      mkdirSync(ARTIFACTS, { recursive: true });
      writeFileSync(path.join(ARTIFACTS, `worker-${listenPort}-${child.pid}.log`), log);
      stopGroup(child.pid, signal);
      const until = Date.now() + 10_000;
      while (child.exitCode === null && child.signalCode === null && Date.now() < until) await sleep(100);
      if (child.exitCode === null && child.signalCode === null) stopGroup(child.pid, "SIGKILL");
      if (!keepState && !persistDir) rmSync(dir, { recursive: true, force: true });
    },
  };
}

function stopGroup(pid, signal = "SIGTERM") {
  try {
    process.kill(-pid, signal);
  } catch {}
}

/** Debian's Chromium, headless, with `args` added to its flags (e.g. a
 *  --host-resolver-rules mapping); `automation` keeps navigator.webdriver true
 *  and the headless user agent. Otherwise the browser itself claims an
 *  ordinary Chrome's user agent: a page's override does not reach the
 *  beacons Chromium sends while a page unloads, and the worker would drop
 *  those as a headless bot. */
export async function launchBrowser({ automation = false, args: extra = [] } = {}) {
  const { chromium } = await import("playwright-core");
  const chromiumPath = execFileSync("sh", ["-c", "command -v chromium"]).toString().trim();
  const args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync", ...extra];
  if (!automation) args.push("--disable-blink-features=AutomationControlled", `--user-agent=${BROWSER_UA}`);
  return chromium.launch({ executablePath: chromiumPath, headless: true, args });
}

/** A page whose user agent is an ordinary Chrome's (the tracker drops headless ones). */
export async function humanPage(browser, options = {}) {
  const context = await browser.newContext({ userAgent: BROWSER_UA, ...options });
  await context.addInitScript(markModuleStarts);
  return { context, page: await context.newPage() };
}

/** Runs in every page before its scripts: counts WebAssembly modules
 *  instantiated, after the code that awaited each has run (the tracker
 *  starts in the `then` of its instantiation). */
function markModuleStarts() {
  const instantiate = WebAssembly.instantiate;
  window.__modulesStarted = 0;
  WebAssembly.instantiate = function (...args) {
    return instantiate.apply(this, args).then((result) => {
      setTimeout(() => window.__modulesStarted++);
      return result;
    });
  };
}

/** Resolves once the page's tracker module has started: commands sent
 *  after it run at once, not from the backlog the loader keeps before. */
export async function trackerStarted(page) {
  await page.waitForFunction(() => window.__modulesStarted > 0, null, { timeout: 15_000 });
}

/** The tracker's delivery delay (tracker-wasm/src/delivery.rs FLUSH_DELAY_MS). */
export const TRACKER_FLUSH_DELAY_MS = 1000;

/**
 * Resolves once the page's tracker has started and anything it queued at
 * start would have left: a timer set after the start, longer than the
 * tracker's own flush delay, fires after the tracker's flush timer (the
 * page runs its timers in order), so a request the tracker meant to send
 * has been made by then. The signal to assert "sent nothing" after.
 */
export async function trackerIdle(page) {
  await trackerStarted(page);
  await page.evaluate((ms) => new Promise((resolve) => setTimeout(resolve, ms)), TRACKER_FLUSH_DELAY_MS + 100);
}

export async function exportEvents(base, { limit = 10000, secret = SECRET } = {}) {
  const r = await fetch(`${base}/public/events?limit=${limit}`, { headers: { "x-api-key": secret } });
  if (!r.ok) throw new Error(`export answered ${r.status}: ${await r.text()}`);
  return (await r.json()).events;
}

/** Polls the export until `predicate(events)` holds, or fails with the last events. */
export async function waitForEvents(base, predicate, { timeoutMs = 15_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let events = [];
  while (Date.now() < deadline) {
    events = await exportEvents(base);
    if (predicate(events)) return events;
    await sleep(250);
  }
  throw new Error(`events never matched; last seen:\n${JSON.stringify(events, null, 1).slice(0, 4000)}`);
}

/**
 * Polls the stats API until `predicate(stats)` holds. Bot drops travel as
 * their own queue job with no outbox row, so `settled` does not wait for
 * them: a test that counts bots waits for the count itself.
 */
export async function waitForStats(base, predicate, { query = "", timeoutMs = 15_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await stats(base, query);
    if (predicate(last)) return last;
    await sleep(250);
  }
  throw new Error(`stats never matched; last seen:\n${JSON.stringify(last, null, 1).slice(0, 4000)}`);
}

/**
 * Resolves once the queue consumer has stored every event the worker has
 * accepted so far: the signal to assert absence after. In development
 * (`OUTBOX = on`) an accepted event message is written to D1's outbox
 * before the request is answered and leaves it only once stored, so an
 * empty outbox means nothing accepted is still on its way. (Profile and
 * identity jobs have no outbox row: their tests wait for a marker event.)
 */
export async function settled(worker, { timeoutMs = 60_000 } = {}) {
  const deadline = Date.now() + timeoutMs;
  let waiting;
  do {
    [{ waiting }] = d1("SELECT COUNT(*) AS waiting FROM outbox", worker.persistDir);
    if (waiting === 0) return;
    await sleep(250);
  } while (Date.now() < deadline);
  throw new Error(`${waiting} accepted event messages were still not stored after ${timeoutMs} ms`);
}

export { sleep };

/** Runs a wrangler command against a worker's local state (KV, D1, R2). */
export function wranglerCli(args, persistDir) {
  return execFileSync(WRANGLER, [...args, "--local", "--persist-to", persistDir], {
    cwd: WORKER_DIR,
    env: { ...process.env, CI: "true", WRANGLER_SEND_METRICS: "false" },
    stdio: "pipe",
    maxBuffer: 64 * 1024 * 1024,
  }).toString();
}

/**
 * The R2 archive's objects under `prefix`, as [{key, text}], read from a
 * worker's state folder by Miniflare (the local R2 that `wrangler dev`
 * runs on): wrangler's command line can get an object but not list them.
 */
export async function archiveObjects(persistDir, prefix) {
  const { Miniflare } = await import("miniflare");
  const mf = new Miniflare({
    modules: true,
    script: "export default { fetch() { return new Response(null, { status: 204 }); } }",
    host: "127.0.0.1",
    port: await freePort(),
    r2Buckets: { ARCHIVE: "edgetrack-archive" },
    r2Persist: path.join(persistDir, "v3", "r2"),
  });
  try {
    const bucket = await mf.getR2Bucket("ARCHIVE");
    const objects = [];
    let cursor;
    do {
      const page = await bucket.list({ prefix, cursor });
      for (const { key } of page.objects) objects.push({ key, text: await (await bucket.get(key)).text() });
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
    return objects;
  } finally {
    await mf.dispose();
  }
}

/** Runs SQL on the local D1 database and returns the rows. A running
 *  worker may hold SQLite's write lock at that moment (SQLITE_BUSY): the
 *  read is tried again a little later, a few times. */
export function d1(sql, persistDir) {
  for (let attempt = 1; ; attempt++) {
    try {
      const out = wranglerCli(["d1", "execute", "DB", "--json", "--command", sql], persistDir);
      const parsed = JSON.parse(out.slice(out.indexOf("[")));
      return parsed[0].results;
    } catch (error) {
      if (attempt >= 5 || !/SQLITE_BUSY|database is locked/.test(String(error))) throw error;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 500 * attempt);
    }
  }
}

/** Sends a browser batch as the tracker would. */
export async function collect(base, events, { token = TOKEN, userAgent = BROWSER_UA, headers = {} } = {}) {
  return fetch(`${base}/collect`, {
    method: "POST",
    headers: { "content-type": "text/plain", ...(userAgent ? { "user-agent": userAgent } : {}), ...headers },
    body: JSON.stringify({ t: token, e: events }),
  });
}

export async function stats(base, query = "", secret = SECRET) {
  const r = await fetch(`${base}/api/stats${query ? `?${query}` : ""}`, { headers: { "x-api-key": secret } });
  if (!r.ok) throw new Error(`stats answered ${r.status}: ${await r.text()}`);
  return r.json();
}

/** Serves files from a map of path -> {type, body} on another loopback port:
 *  a second origin, as every real site that embeds a tracker is. */
export async function serveOrigin(files) {
  const { createServer } = await import("node:http");
  const port = await freePort();
  const server = createServer((req, res) => {
    const file = files[new URL(req.url, "http://x").pathname];
    if (!file) return res.writeHead(404).end("not found");
    res.writeHead(200, { "content-type": file.type }).end(file.body);
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return { base: `http://127.0.0.1:${port}`, close: () => new Promise((r) => server.close(r)) };
}

/** The worker's dedup key of a stored event (ingest-core's `dedup_key`,
 *  recomputed from its documented preimage): each field length-prefixed,
 *  SHA-256, the first 16 bytes in hex. CRM events key on name and id only. */
export function dedupKey({ event, distinct_id, time_ms, timestamp, insert_id, source }) {
  time_ms ??= timestamp;
  const fields = source === "crm"
    ? ["business-v1", event, insert_id]
    : ["occurrence-v1", event, distinct_id, String(Math.floor(time_ms / 1000)), insert_id];
  const preimage = fields.map((f) => `${Buffer.byteLength(f)}:${f}`).join("");
  return createHash("sha256").update(preimage).digest("hex").slice(0, 32);
}

/** The KV mark of a stored event row (as `/public/events` lists it). */
export const kvMark = (row, project = "demo") => `seen:${project}:${dedupKey(row)}`;
