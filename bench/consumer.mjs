// Section 7: the queue consumer's throughput with the read model (visits
// and rollups kept in the same D1 transaction as the raw rows) beside
// without it (`READ_MODEL=off`: enriched events only), in the same run,
// alternating, each trial on a fresh worker. The load is the reliability
// test's mix (/import of 2000 and /collect of 50 browser events, 8 clients);
// The goal's figure is the consumer's own rate: events stored / the summed
// duration of its queue batches (wrangler logs each); beside it the end-to-end
// rate, events stored / time from the first request until D1 holds them all,
// which the sender bounds on this machine.
import { execFileSync } from "node:child_process";
import { BROWSER_UA, SECRET, TOKEN } from "../tests/e2e/harness.mjs";
import { MEMORY_DIR, SMOKE, d1File, sleep, startWorker, writeResult } from "./lib.mjs";

const IMPORTS = SMOKE ? 0 : 6; // of 2000 events
const COLLECTS = SMOKE ? 4 : 160; // of 50 events
const ROUNDS = SMOKE ? 1 : 2;
const CLIENTS = 8;
const DRAIN_MS = SMOKE ? 60_000 : 240_000;

function requests(runId) {
  const now = Date.now();
  const out = [];
  for (let r = 0; r < IMPORTS; r++) {
    const events = Array.from({ length: 2000 }, (_, k) => ({ event: "load import",
      properties: { time: now - 60_000, distinct_id: `u${(r * 2000 + k) % 997}`, $insert_id: `${runId}-i${r}-${k}` } }));
    out.push({ path: "/import", events: 2000, body: JSON.stringify(events),
      headers: { authorization: `Basic ${Buffer.from(`${SECRET}:`).toString("base64")}`, "content-type": "application/json" } });
  }
  for (let r = 0; r < COLLECTS; r++) {
    const e = Array.from({ length: 50 }, (_, k) => {
      const n = r * 50 + k;
      return { n: "$pageview", i: `${runId}-b${n}`, ts: now - 30_000, d: `dev${n % 1499}`, u: `https://site.test/p${n % 40}` };
    });
    out.push({ path: "/collect", events: 50, body: JSON.stringify({ t: TOKEN, e }),
      headers: { "user-agent": BROWSER_UA, "content-type": "text/plain" } });
  }
  return out.sort((a, b) => (a.body.length % 7) - (b.body.length % 7));
}

const stored = (file) => Number(execFileSync("sqlite3", [file, "SELECT COUNT(*) FROM events"]).toString().trim());

async function trial(readModel) {
  // State on tmpfs (see bench/readmodel.mjs): the shared disk's waits would
  // drown the difference measured here.
  const worker = await startWorker({ vars: { RATE_LIMITS: "off", OUTBOX: "off", READ_MODEL: readModel ? "on" : "off" }, stateBase: MEMORY_DIR });
  try {
    const file = d1File(worker.persistDir);
    // One unmeasured request first: the isolate and the queue warm up.
    const warm = await fetch(worker.base + "/collect", { method: "POST", headers: { "user-agent": BROWSER_UA, "content-type": "text/plain" },
      body: JSON.stringify({ t: TOKEN, e: [{ n: "$pageview", i: `warm-${Date.now()}`, ts: Date.now(), d: "devwarm", u: "https://site.test/" }] }) });
    await warm.text();
    for (const until = Date.now() + 30_000; stored(file) < 1 && Date.now() < until; ) await sleep(100);
    const base = stored(file);
    const queue = requests(`c${Date.now().toString(36)}${readModel ? "m" : "p"}`);
    const total = queue.reduce((a, r) => a + r.events, 0);
    const started = performance.now();
    let accepted = 0;
    const failures = [];
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        // A request the worker did not answer is sent again (same insert
        // ids: D1 keeps each event once), at most three times.
        for (let attempt = 0; attempt < 3; attempt++) {
          try {
            const res = await fetch(worker.base + r.path, { method: "POST", headers: r.headers, body: r.body,
              signal: AbortSignal.timeout(60_000) });
            await res.text();
            if (res.status < 300) accepted += r.events;
            if (res.status !== 503) break;
          } catch (e) {
            failures.push(String(e.cause?.code ?? e.name));
          }
        }
      }
    }));
    const sentMs = performance.now() - started;
    const until = Date.now() + DRAIN_MS;
    let count = 0;
    while ((count = stored(file) - base) < accepted && Date.now() < until) await sleep(100);
    const ms = performance.now() - started;
    // The consumer's own time: wrangler logs each queue batch's duration.
    const batches = [...worker.log().matchAll(/QUEUE edgetrack-events (\d+)\/(\d+) \((\d+)ms\)/g)]
      .map((m) => ({ messages: Number(m[2]), ms: Number(m[3]) }));
    const consumerMs = batches.reduce((a, b) => a + b.ms, 0);
    return { readModel, events: total, accepted, stored: count, sentMs, ms, eventsPerSecond: count / (ms / 1000),
      batches: batches.length, consumerMs, consumerEventsPerSecond: count / (consumerMs / 1000),
      drained: count >= accepted, failures };
  } finally {
    await worker.stop();
  }
}

const trials = [];
for (let round = 0; round < ROUNDS; round++) {
  // Alternating which goes first, so neither always runs on a warmer machine.
  for (const readModel of round % 2 ? [true, false] : [false, true]) {
    const t = await trial(readModel);
    trials.push(t);
    console.log(`consumer: read model ${readModel ? "on" : "off"}: ${t.stored}/${t.accepted} stored in ${(t.ms / 1000).toFixed(1)} s ` +
      `(sent in ${(t.sentMs / 1000).toFixed(1)} s): ${t.eventsPerSecond.toFixed(0)} events/s`);
  }
}
// The report (bench/pricing.mjs) takes the rates from the trials: means over
// those that stored everything, a stalled one counted apart.
writeResult("consumer", { clients: CLIENTS, imports: IMPORTS, collects: COLLECTS, rounds: ROUNDS, trials, goal: 0.8 });
