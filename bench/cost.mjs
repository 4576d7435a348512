// Section 8: what an event costs on Cloudflare (issue 22), counted in the
// running worker. The built worker runs under `wrangler dev` behind
// bench/ops-entry.mjs, which counts every binding call (KV keys read and
// written, queue messages and their 64 KB operations, D1 rows read and
// written as each result's `meta` reports them, R2 writes) and Worker
// invocations. Production's settings: OUTBOX=off, the archive on (so R2
// writes show; they are priced apart), the read model on, rate limits off
// (one loopback address). Each ingest path sends its events, the queue
// drains, and the counters are read once they stop moving; the report
// prices the counts per event (bench/report.mjs).
import { copyFileSync, cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { BROWSER_UA, SECRET, TOKEN } from "../tests/e2e/harness.mjs";
import { BENCH, SMOKE, WORKER_DIR, d1File, sleep, startWorker, workDir, writeResult } from "./lib.mjs";

/** Requests per path (smoke: a couple). */
const N = SMOKE ? 2 : 100;
const IMPORT_REQUESTS = SMOKE ? 1 : 2;
const IMPORT_EVENTS = 2000;
const COLLECT_BATCH = 10;
const DASHBOARD_LOADS = SMOKE ? 1 : 10;
const DRAIN_MS = SMOKE ? 60_000 : 120_000;

// A copy of the worker whose entry is the counting wrapper.
const dir = path.join(workDir(), "ops-worker");
rmSync(dir, { recursive: true, force: true });
mkdirSync(dir, { recursive: true });
for (const part of ["migrations", "build", "public"]) cpSync(path.join(WORKER_DIR, part), path.join(dir, part), { recursive: true });
copyFileSync(path.join(BENCH, "ops-entry.mjs"), path.join(dir, "build", "ops-entry.mjs"));
// The copy has no build command: its build/ is the one copied here.
const config = readFileSync(path.join(WORKER_DIR, "wrangler.jsonc"), "utf8")
  .replace(/^ {2}"build": .*\n/m, "")
  .replace(/^ {2}"main": .*$/m, '  "main": "build/ops-entry.mjs",');
writeFileSync(path.join(dir, "wrangler.jsonc"), config);

const nonce = randomBytes(4).toString("hex");
let seq = 0;
const id = () => `${nonce}-${(seq++).toString(36)}`;
const json = { "content-type": "application/json" };
const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64");
const page = (i) => `https://shop.example/products/${i % 40}?ref=${i % 3}`;

function tracker(events, device = `d${nonce}${String(seq).padStart(20, "0")}`) {
  return {
    path: "/collect", method: "POST", headers: { "content-type": "text/plain", "user-agent": BROWSER_UA },
    body: JSON.stringify({ t: TOKEN, e: Array.from({ length: events }, (_, i) => ({ n: "$pageview", i: id(), ts: Date.now() - i * 1000,
      u: page(seq), r: "https://www.google.com/", h: "A product", s: "1920x1080", d: device })) }),
  };
}

const PATHS = {
  "collect (1 event)": { events: 1, make: () => tracker(1) },
  [`collect (${COLLECT_BATCH} events)`]: { events: COLLECT_BATCH, make: () => tracker(COLLECT_BATCH) },
  "Mixpanel /track (1 event)": {
    events: 1,
    make: () => ({ path: `/track?ip=1&data=${encodeURIComponent(b64({ event: "$mp_web_page_view", properties: { token: TOKEN,
      distinct_id: `mp-${id()}`, $insert_id: id(), time: Date.now(), $current_url: page(seq), $browser: "Chrome" } }))}`, method: "GET",
      headers: { "user-agent": BROWSER_UA } }),
  },
  [`/import (${IMPORT_EVENTS} events)`]: {
    events: IMPORT_EVENTS, requests: IMPORT_REQUESTS,
    make: () => ({ path: "/import?strict=1", method: "POST",
      headers: { ...json, authorization: "Basic " + Buffer.from(`${SECRET}:`).toString("base64") },
      body: JSON.stringify(Array.from({ length: IMPORT_EVENTS }, (_, i) => ({ event: i % 2 ? "Purchase" : "Signup",
        properties: { time: Math.floor(Date.now() / 1000) - (i % 600), distinct_id: `user-${i % 97}`, $insert_id: id(),
          plan: i % 3 ? "free" : "pro", $current_url: page(i) } }))) }),
  },
  "Vemetric /e (1 event)": {
    events: 1,
    make: () => ({ path: "/e", method: "POST", headers: { ...json, token: TOKEN, "user-agent": BROWSER_UA },
      body: JSON.stringify({ name: "$pageview", url: page(seq), identifier: `vm-${id()}` }) }),
  },
  "CRM /v1/event (1 event)": {
    events: 1, setup: [{ path: "/v1/event", method: "POST", headers: { ...json, authorization: `Bearer ${SECRET}` },
      body: JSON.stringify({ user: { email: "cost@example.com" }, event: { login: { firstname: "cost" } } }) }],
    make: () => ({ path: "/v1/event", method: "POST", headers: { ...json, authorization: `Bearer ${SECRET}` },
      body: JSON.stringify({ user: { email: "cost@example.com" }, event: { generic: { generic: { event_name: `e_${id()}` } } } }) }),
  },
};

/** Sends once more (same insert ids, so D1 keeps one) when wrangler restarted the worker mid-request. */
async function send(base, r) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(base + r.path, { method: r.method, headers: r.headers, body: r.body });
    const text = await res.text();
    if (res.status === 503 && /restarted/.test(text) && attempt < 3) {
      await sleep(1000);
      continue;
    }
    if (res.status >= 300) throw new Error(`${r.method} ${r.path.slice(0, 40)} answered ${res.status}: ${text.slice(0, 200)}`);
    return text;
  }
}

const ops = async (base, reset = false) => (await fetch(`${base}/__bench/ops${reset ? "?reset=1" : ""}`)).json();
const storedEvents = (file) => Number(execFileSync("sqlite3", [file, "SELECT COUNT(*) FROM events"]).toString().trim());

/** Waits until `want` rows are stored and the counters stop moving. */
async function drain(base, file, want) {
  const until = Date.now() + DRAIN_MS;
  while (storedEvents(file) < want && Date.now() < until) await sleep(250);
  let last = JSON.stringify(await ops(base));
  for (let still = 0; still < 6 && Date.now() < until; ) {
    await sleep(250);
    const now = JSON.stringify(await ops(base));
    still = now === last ? still + 1 : 0;
    last = now;
  }
  return storedEvents(file);
}

/** Sends each path's requests and counts what they cost, the consumer's share included. */
async function measure(worker, file, paths, label = "") {
  const out = [];
  for (const [name, p] of Object.entries(paths)) {
    for (const r of p.setup ?? []) await send(worker.base, r);
    const before = storedEvents(file);
    await drain(worker.base, file, before);
    await ops(worker.base, true);
    const requests = p.requests ?? N;
    for (let i = 0; i < requests; i++) {
      await send(worker.base, p.make());
      // Low traffic: each request waits until the consumer has stored it.
      if (p.alone) await drain(worker.base, file, before + (i + 1) * p.events);
    }
    const events = requests * p.events;
    const stored = (await drain(worker.base, file, before + events)) - before;
    const counted = await ops(worker.base, true);
    out.push({ name: name + label, requests, events, stored, ops: counted });
    console.log(`cost: ${name}${label}: ${JSON.stringify(counted)}`);
  }
  return out;
}

async function withWorker(vars, body) {
  const worker = await startWorker({ vars: { RATE_LIMITS: "off", OUTBOX: "off", ARCHIVE_ENABLED: "1", ...vars },
    config: path.join(dir, "wrangler.jsonc") });
  try {
    // The wrapper must be what answers.
    const first = await ops(worker.base, true);
    if (!("kvReads" in first)) throw new Error("the counting wrapper did not answer");
    const file = d1File(worker.persistDir);
    // Warm the isolate (not counted).
    await send(worker.base, tracker(1));
    await drain(worker.base, file, 1);
    return await body(worker, file);
  } finally {
    await worker.stop();
  }
}

const paths = [];
let dashboard = null;
await withWorker({ DEDUP_MARKS: "event" }, async (worker, file) => {
  paths.push(...(await measure(worker, file, PATHS)));
  // One event a consumer batch: what a quiet site's traffic looks like to
  // the consumer (rollup rows are merged per batch, so they cost most here).
  paths.push(...(await measure(worker, file, { "collect (1 event), alone in its consumer batch":
    { events: 1, requests: SMOKE ? 2 : 20, alone: true, make: () => tracker(1) } })));
  await ops(worker.base, true);
  for (let i = 0; i < DASHBOARD_LOADS; i++) {
    const r = await fetch(`${worker.base}/api/stats?period=30d`, { headers: { authorization: `Bearer ${SECRET}` } });
    if (r.status !== 200) throw new Error(`stats answered ${r.status}`);
    await r.text();
  }
  dashboard = { loads: DASHBOARD_LOADS, ops: await ops(worker.base, true) };
});
// The KV lever (DEDUP_MARKS): the browser paths again with one mark per
// request, and with none.
const browser = { "collect (1 event)": PATHS["collect (1 event)"], [`collect (${COLLECT_BATCH} events)`]: PATHS[`collect (${COLLECT_BATCH} events)`] };
// Returning page views: a visit's row is rewritten in place (the visit
// goes on), where the paths above start a new visit with every event.
let pageOfVisit = 0;
const visits = { "collect (1 event), 5 page views a visit":
  { events: 1, make: () => tracker(1, `v${nonce}-${Math.floor(pageOfVisit++ / 5)}`) } };
for (const mode of ["request", "off"]) {
  await withWorker({ DEDUP_MARKS: mode }, async (worker, file) => {
    paths.push(...(await measure(worker, file, mode === "off" ? { ...browser, ...visits } : browser, `, DEDUP_MARKS=${mode}`)));
  });
}
writeResult("cost", { settings: { OUTBOX: "off", ARCHIVE_ENABLED: "1", READ_MODEL: "on", RATE_LIMITS: "off", DEDUP_MARKS: "event unless named" }, paths, dashboard });
