// Section 7: the queue consumer's throughput with the read model (visits
// and rollups kept in the same D1 transaction as the raw rows) beside
// without it (`READ_MODEL=off`: enriched events only), in the same run,
// alternating, each trial on a fresh worker. The load is the reliability
// test's mix (/import of 2000 and /collect of 50 browser events, 8 clients);
// events/s = events stored / time from the first request until D1 holds them
// all. The consumer, not the sender, is the bottleneck: the report shows how
// long sending alone took.
import { execFileSync } from "node:child_process";
import { BROWSER_UA, SECRET, TOKEN } from "../tests/e2e/harness.mjs";
import { SMOKE, d1File, median, sleep, startWorker, writeResult } from "./lib.mjs";

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
  const worker = await startWorker({ vars: { RATE_LIMITS: "off", OUTBOX: "off", READ_MODEL: readModel ? "on" : "off" } });
  try {
    const file = d1File(worker.persistDir);
    const queue = requests(`c${Date.now().toString(36)}${readModel ? "m" : "p"}`);
    const total = queue.reduce((a, r) => a + r.events, 0);
    const started = performance.now();
    let accepted = 0;
    await Promise.all(Array.from({ length: CLIENTS }, async () => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        const res = await fetch(worker.base + r.path, { method: "POST", headers: r.headers, body: r.body });
        await res.text();
        if (res.status < 300) accepted += r.events;
      }
    }));
    const sentMs = performance.now() - started;
    const until = Date.now() + DRAIN_MS;
    let count = 0;
    while ((count = stored(file)) < accepted && Date.now() < until) await sleep(100);
    const ms = performance.now() - started;
    return { readModel, events: total, accepted, stored: count, sentMs, ms, eventsPerSecond: count / (ms / 1000),
      drained: count >= accepted };
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
const rate = (on) => median(trials.filter((t) => t.readModel === on).map((t) => t.eventsPerSecond));
const with_ = rate(true);
const without = rate(false);
writeResult("consumer", { clients: CLIENTS, imports: IMPORTS, collects: COLLECTS, rounds: ROUNDS, trials,
  withReadModel: with_, withoutReadModel: without, ratio: with_ / without, goal: 0.8 });
