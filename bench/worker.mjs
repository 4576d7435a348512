// Sections 4 and 5: the worker under `wrangler dev` on loopback (the built
// worker in edge-worker/build, RATE_LIMITS=off, a fresh local state).
//
// 4. Requests/s and latency at concurrency 1, 8 and 32 for GET /health (the
//    worker's cheapest route, our "empty route"), POST /collect with one
//    event and POST /import with 100, each level in turn; the queue is left
//    to drain between levels so one level's storing does not slow the next.
// 5. POST /import at 1, 10, 100, 1000 and 2000 events, one request at a
//    time: the time per event.
// Then the count check: every event of a 2xx answer is stored, exactly
// once, and nothing else is (the insert_ids read back from D1). Last, a
// second worker with OUTBOX=off (production's setting) at concurrency 8,
// with its own count check.
//
// Every loop is bounded by a request count and a time limit.
import http from "node:http";
import { randomBytes } from "node:crypto";
import { BROWSER_UA, TOKEN, SECRET } from "../tests/e2e/harness.mjs";
import { SMOKE, d1, median, percentile, sleep, startWorker, writeResult } from "./lib.mjs";

const CONCURRENCY = [1, 8, 32];
/** The level measured once more with OUTBOX=off (production's setting). */
const OUTBOX_OFF_LEVEL = 8;
/** Per cell: at most this many requests, for at most this long. */
const LIMITS = SMOKE
  ? { health: 16, collect: 16, import: 8, seconds: 3 }
  : { health: 20_000, collect: 3_000, import: 200, seconds: 6 };
/** Unmeasured requests before each cell (their events count as sent). */
const WARM_UP = SMOKE ? 2 : 20;
const IMPORT_BATCH = 100;
const SCALING_SIZES = [1, 10, 100, 1000, 2000];
/** Per batch size: at most this many requests, for at most this long. */
const SCALING = SMOKE ? { requests: 1, seconds: 5 } : { requests: 25, seconds: 8 };
/** How long the queue may take to store what was accepted: between levels, and at the end. */
const DRAIN_MS = SMOKE ? 30_000 : 60_000;
const FINAL_DRAIN_MS = SMOKE ? 60_000 : 180_000;

const nonce = randomBytes(4).toString("hex");
let counter = 0;
const nextId = () => `${nonce}${(counter++).toString(16).padStart(24, "0")}`;
const basic = "Basic " + Buffer.from(`${SECRET}:`).toString("base64");

/** The insert_ids of every event in a 2xx answer. */
const accepted = new Set();

function collectRequest() {
  const id = nextId();
  const body = JSON.stringify({ t: TOKEN, e: [{ n: "$pageview", i: id, ts: Date.now(), u: "https://shop.example/products/42",
    r: "https://search.example/", h: "Blue Mug | Shop", s: "1920x1080", d: "d" + nonce + "0000000000000000000000" }] });
  return { method: "POST", path: "/collect", headers: { "content-type": "text/plain", "user-agent": BROWSER_UA }, body, ids: [id] };
}

function importRequest(size) {
  const now = Math.floor(Date.now() / 1000);
  const ids = [];
  const events = [];
  for (let i = 0; i < size; i++) {
    const id = nextId();
    ids.push(id);
    events.push({ event: i % 2 ? "Purchase" : "Signup", properties: { time: now - (i % 600), distinct_id: `user-${i % 97}`,
      $insert_id: id, plan: i % 3 ? "free" : "pro", amount: (i % 200) * 0.5 + 4.99, $current_url: `https://shop.example/p/${i % 50}` } });
  }
  return { method: "POST", path: "/import?strict=1", body: JSON.stringify(events), ids,
    headers: { "content-type": "application/json", authorization: basic } };
}

const ROUTES = {
  health: () => ({ method: "GET", path: "/health", headers: {}, body: null, ids: [] }),
  collect: collectRequest,
  import: () => importRequest(IMPORT_BATCH),
};

function send(agent, base, req) {
  return new Promise((resolve) => {
    const started = performance.now();
    const r = http.request(base + req.path, { method: req.method, headers: req.headers, agent }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, ms: performance.now() - started }));
    });
    r.on("error", () => resolve({ status: 0, ms: performance.now() - started }));
    if (req.body) r.end(req.body);
    else r.end();
  });
}

/** `concurrency` loops sending `make()` until `maxRequests` or `seconds` run out. */
async function load(base, make, { concurrency, maxRequests, seconds }) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const latencies = [];
  const statuses = {};
  let issued = 0;
  let ok = 0;
  let events = 0;
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const loop = async () => {
    while (issued < maxRequests && performance.now() < deadline) {
      issued++;
      const req = make();
      const { status, ms } = await send(agent, base, req);
      latencies.push(ms);
      statuses[status] = (statuses[status] ?? 0) + 1;
      if (status >= 200 && status < 300) {
        ok++;
        events += req.ids.length;
        for (const id of req.ids) accepted.add(id);
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, loop));
  const elapsedMs = performance.now() - started;
  agent.destroy();
  return {
    requests: issued, ok, events, statuses, seconds: elapsedMs / 1000,
    rps: (issued / elapsedMs) * 1000, okRps: (ok / elapsedMs) * 1000, eventsPerSecond: (events / elapsedMs) * 1000,
    p50: percentile(latencies, 50), p99: percentile(latencies, 99), latencies,
  };
}

async function storedCount(base) {
  const r = await fetch(`${base}/public/events?limit=1`, { headers: { "x-api-key": SECRET } });
  if (!r.ok) throw new Error(`export answered ${r.status}`);
  return (await r.json()).total;
}

/** Waits until D1 holds as many rows as were accepted; returns the time it took. */
async function drain(base, limitMs) {
  const started = Date.now();
  let stored = -1;
  while (Date.now() - started < limitMs) {
    stored = await storedCount(base);
    if (stored >= accepted.size) break;
    await sleep(500);
  }
  return { stored, ms: Date.now() - started };
}

/**
 * One worker, fresh state: the levels of section 4, optionally section 5,
 * then the count check of everything it accepted.
 */
async function measureWorker({ vars, levels, withScaling }) {
  accepted.clear();
  const worker = await startWorker({ vars });
  // scripts/bench.sh stops a step that hangs; wrangler runs in its own
  // process group, so it is stopped here rather than left behind.
  const onTerm = () => worker.stop().finally(() => process.exit(1));
  process.once("SIGTERM", onTerm);
  const tag = Object.entries(vars).map(([k, v]) => `${k}=${v}`).join(" ");
  const throughput = [];
  const scaling = [];
  const drains = [];
  let check;
  try {
    for (const concurrency of levels) {
      for (const route of ["health", "collect", "import"]) {
        await load(worker.base, ROUTES[route], { concurrency: Math.min(concurrency, WARM_UP), maxRequests: WARM_UP, seconds: 10 });
        const { latencies, ...cell } = await load(worker.base, ROUTES[route],
          { concurrency, maxRequests: LIMITS[route], seconds: LIMITS.seconds });
        throughput.push({ route, concurrency, ...cell });
        console.log(`worker (${tag}): ${route.padEnd(7)} c=${String(concurrency).padEnd(2)} ${cell.rps.toFixed(1).padStart(8)} req/s` +
          `  p50 ${cell.p50.toFixed(1)} ms  p99 ${cell.p99.toFixed(1)} ms  (${cell.ok}/${cell.requests} 2xx)`);
      }
      const { stored, ms } = await drain(worker.base, DRAIN_MS);
      drains.push({ afterConcurrency: concurrency, accepted: accepted.size, stored, ms });
      console.log(`worker (${tag}): queue drained to ${stored}/${accepted.size} rows in ${(ms / 1000).toFixed(1)} s`);
    }
    for (const size of withScaling ? SCALING_SIZES : []) {
      const { latencies, ...cell } = await load(worker.base, () => importRequest(size),
        { concurrency: 1, maxRequests: SCALING.requests, seconds: SCALING.seconds });
      const perEventMs = median(latencies) / size;
      scaling.push({ size, ...cell, medianMs: median(latencies), perEventMs });
      console.log(`scaling: ${String(size).padStart(4)} events/request  median ${median(latencies).toFixed(1)} ms` +
        `  ${(perEventMs * 1000).toFixed(1)} us/event  (${cell.ok}/${cell.requests} 2xx)`);
    }
    const { stored, ms } = await drain(worker.base, FINAL_DRAIN_MS);
    const ids = d1("SELECT insert_id FROM events WHERE project = 'demo'", worker.persistDir).map((r) => r.insert_id);
    const unique = new Set(ids);
    const unexpected = ids.filter((id) => !accepted.has(id)).length;
    const missing = [...accepted].filter((id) => !unique.has(id)).length;
    const deadLetters = d1("SELECT COUNT(*) AS n FROM dead_letters", worker.persistDir)[0].n;
    check = { accepted: accepted.size, stored: ids.length, distinct: unique.size, duplicates: ids.length - unique.size,
      missing, unexpected, deadLetters, drainMs: ms, storedByExport: stored };
    check.ok = check.accepted > 0 && check.stored === check.accepted && check.duplicates === 0 && missing === 0 &&
      unexpected === 0;
    console.log(`worker (${tag}): accepted ${check.accepted}, stored ${check.stored}, distinct ${check.distinct}, ` +
      `missing ${missing}, unexpected ${unexpected}, dead letters ${deadLetters}: ${check.ok ? "ok" : "MISMATCH"}`);
  } finally {
    process.removeListener("SIGTERM", onTerm);
    await worker.stop();
  }
  for (const cell of throughput) {
    const empty = throughput.find((c) => c.route === "health" && c.concurrency === cell.concurrency);
    cell.vsEmpty = cell.okRps / empty.okRps;
  }
  const one = scaling.find((s) => s.size === 1);
  for (const s of scaling) s.perEventVsOne = s.perEventMs / one.perEventMs;
  return { vars, throughput, drains, scaling, check };
}

// wrangler.jsonc's development settings (the outbox on), then production's
// outbox setting at one level, to show what the outbox's D1 write costs.
const dev = await measureWorker({ vars: { RATE_LIMITS: "off" }, levels: CONCURRENCY, withScaling: true });
const prod = await measureWorker({ vars: { RATE_LIMITS: "off", OUTBOX: "off" }, levels: [OUTBOX_OFF_LEVEL], withScaling: false });
writeResult("worker", { limits: LIMITS, warmUp: WARM_UP, importBatch: IMPORT_BATCH, vars: dev.vars,
  throughput: dev.throughput, drains: dev.drains, scaling: dev.scaling, scalingLimits: SCALING, check: dev.check,
  outboxOff: prod });
const cells = [...dev.throughput, ...prod.throughput];
const refused = cells.filter((c) => c.route !== "health" && c.ok < c.requests);
if (refused.length) console.error(`worker: ${refused.length} cells had refused requests`);
if (!dev.check?.ok || !prod.check?.ok || refused.length) process.exit(1);
