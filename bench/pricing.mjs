// The report's sections 6 to 8 (read side, consumer, cost) and their goals,
// and Cloudflare's published prices that section 8 applies to the counts.
// Kept apart from report.mjs so the figures and the price list are in one
// place; bench/report.mjs calls these.

/**
 * Cloudflare's paid-plan (Workers Paid, $5 a month) and free-plan prices, as
 * the developer documentation's pricing and limits pages state them (pages
 * last updated 2026-04-21, read 2026-12-02). Prices in US dollars per
 * million units beyond what the plan includes each month.
 */
export const PRICES = {
  date: "Cloudflare developer docs pricing and limits pages, last updated 2026-04-21, read 2026-12-02",
  base: 5.0,
  requests: { price: 0.3, included: 10e6, freePerDay: 100_000, label: "Worker requests" },
  kvReads: { price: 0.5, included: 10e6, freePerDay: 100_000, label: "KV keys read" },
  kvWrites: { price: 5.0, included: 1e6, freePerDay: 1_000, label: "KV keys written" },
  queueOps: { price: 0.4, included: 1e6, freePerDay: 10_000, label: "Queue operations (64 KB each: write, read, delete)" },
  d1RowsRead: { price: 0.001, included: 25e9, freePerDay: 5e6, label: "D1 rows read" },
  d1RowsWritten: { price: 1.0, included: 50e6, freePerDay: 100_000, label: "D1 rows written" },
  r2Writes: { price: 4.5, included: 1e6, freePerDay: 1e6 / 30, label: "R2 class A (writes)" },
  // Storage: per GB-month beyond 5 GB; one database holds at most 10 GB
  // (500 MB on the free plan).
  d1Storage: { pricePerGbMonth: 0.75, includedGb: 5, maxDbGb: 10, freeDbGb: 0.5 },
  // Workers Analytics Engine: data points written.
  wae: { price: 0.25, included: 10e6, freePerDay: 100_000 },
  cpuMs: { price: 0.02, included: 30e6 },
};
/** The default raw retention (ingest-core's DEFAULT_RAW_RETENTION_DAYS). */
export const RETENTION_DAYS = 400;
const DAYS_PER_MONTH = 30.44;

const fixed = (x, digits = 2) => (Number.isFinite(x) ? x.toFixed(digits) : "n/a");
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString("en-US") : "n/a");
const money = (x) => (Number.isFinite(x) ? (x < 0.01 && x > 0 ? `$${x.toFixed(4)}` : `$${x.toFixed(2)}`) : "n/a");
const mb = (b) => (Number.isFinite(b) ? `${(b / 1e6).toFixed(0)} MB` : "n/a");
const yes = (ok) => (ok ? "**met**" : "**not met**");
const table = (head, rows) =>
  [`| ${head.join(" | ")} |`, `| ${head.map(() => "---").join(" | ")} |`, ...rows.map((r) => `| ${r.join(" | ")} |`)].join("\n");

// ---- Section 6 and 7: the read side and the consumer ---------------------

/** p50, p95, calls and rows read of the raw plan, or why there are none. */
function rawCells(raw) {
  if (raw.skipped) return ["over the limit", "", "not run", ""];
  if (raw.timedOut) return [`> ${fixed(raw.p50 / 1000, 0)} s`, "", "1 (timed out)", ""];
  return [fixed(raw.p50, 0) + (raw.overLimit ? " (over D1's 30 s)" : ""), fixed(raw.p95, 0), raw.calls, int(raw.rowsRead)];
}

const byEvents = (readmodel, n) => readmodel?.scales?.find((s) => s.events === n);
const largest = (readmodel) => (readmodel?.scales ?? []).reduce((a, s) => (!a || s.events > a.events ? s : a), null);

/** Bytes per event of one scale: raw rows, their indexes, visits, rollups. */
export function bytesPerEvent(scale) {
  if (!scale) return null;
  const b = scale.bytes;
  const per = (x) => x / scale.events;
  return { events: per(b.events), eventIndexes: per(b.eventIndexes), visits: per(b.visits), rollups: per(b.rollups),
    kept: per(b.events + b.eventIndexes + b.visits), total: per(b.events + b.eventIndexes + b.visits + b.rollups) };
}

/** Events a month one 10 GB database holds at the default retention. */
export function capacity(readmodel) {
  const scale = byEvents(readmodel, 1_000_000) ?? largest(readmodel);
  const per = bytesPerEvent(scale);
  if (!per) return null;
  const months = RETENTION_DAYS / DAYS_PER_MONTH;
  // Raw rows, indexes and visits for the retention; rollups are kept for
  // ever, counted here for the same months (they grow with distinct values,
  // not events, so this is an upper bound).
  const perMonthlyEvent = months * (per.kept + per.rollups);
  return { scale: scale.events, months, perMonthlyEvent, eventsPerMonth: (PRICES.d1Storage.maxDbGb * 1e9) / perMonthlyEvent };
}

/**
 * The consumer's rates from its trials: means over the trials that stored
 * everything; a trial that stalled (a queue batch that never finished) is
 * counted apart, since its logged batches miss the one that hung.
 */
export function consumerRates(consumer) {
  const mean = (xs) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN);
  const done = (on) => consumer.trials.filter((t) => t.readModel === on && t.drained);
  const rate = (on, key) => mean(done(on).map((t) => t[key]));
  const withRm = rate(true, "consumerEventsPerSecond");
  const without = rate(false, "consumerEventsPerSecond");
  const stalled = consumer.trials.filter((t) => !t.drained);
  return { with: withRm, without, ratio: withRm / without, endToEnd: { with: rate(true, "eventsPerSecond"), without: rate(false, "eventsPerSecond") },
    stalled, trials: (on) => consumer.trials.filter((t) => t.readModel === on).length };
}

export function readGoals(readmodel, consumer) {
  const rows = [];
  if (readmodel) {
    const big = largest(readmodel);
    const ten = byEvents(readmodel, 10_000_000);
    const at = ten ?? big;
    rows.push([`stats p50 ≤ 300 ms at 10 M events (30 days, no filter: rollups)`,
      at ? `${fixed(at.rollups.p50, 0)} ms at ${int(at.events)} events (p95 ${fixed(at.rollups.p95, 0)} ms)` +
        (ten ? "" : "; 10 M not measured (BENCH_SCALE=10m)") : "n/a",
      at ? (ten ? yes(ten.rollups.p50 <= 300) : "**not measured at 10 M**") : "n/a"]);
    const reads = readmodel.scales.map((s) => s.rollups.rowsRead);
    const flat = reads.length > 1 && Math.max(...reads) <= 1.1 * Math.min(...reads);
    rows.push(["D1 rows read per dashboard load independent of the number of events",
      readmodel.scales.map((s) => `${int(s.rollups.rowsRead)} at ${int(s.events)}`).join(", ") +
        ` (raw fallback: ${readmodel.scales.map((s) => (s.raw.rowsRead ? int(s.raw.rowsRead) : "not run")).join(", ")})`,
      reads.length > 1 ? yes(flat) : "n/a"]);
  }
  if (consumer) {
    const c = consumerRates(consumer);
    const stalls = c.stalled.map((t) => `read model ${t.readModel ? "on" : "off"}: ${int(t.stored)} of ${int(t.accepted)} stored after ` +
      `${fixed(t.ms / 1000, 0)} s`);
    rows.push(["consumer events/s with rollups ≥ 80 % of without (same run)",
      `${int(c.with)} against ${int(c.without)} events/s of consumer time = ${fixed(c.ratio * 100, 0)} %` +
        (stalls.length ? `; **stalled** (the local queue broker stopped starting batches): ${stalls.join("; ")}` : ""),
      yes(c.ratio >= consumer.goal && !c.stalled.length)]);
  }
  return rows;
}

export function readSections(readmodel, consumer) {
  const out = [];
  if (readmodel) {
    out.push("## 6. Reading: the stats API at 100 k, 1 M and 10 M events", "",
      "A month of generated web traffic (about 4.5 events a visit: page views, engagement reports, links out, sign-ups; " +
      "300 paths, 14 referrers, 16 places, 8 browsers; visitors returning about three times a month) is written straight " +
      "into the local D1 file that `wrangler dev` then serves. Every row — enriched events, visits, rollups with their " +
      "HyperLogLog sketches — is decided by ingest-core's own read model, batch by batch as the consumer does " +
      "(`ingest-core/examples/readmodel_fill.rs`, piped into `sqlite3`); visits quiet for 30 minutes are made final as " +
      "the cron does. GET /api/stats?period=30d is one whole dashboard load (totals, previous period, series, 18 " +
      "breakdowns); rows read is the answer's own `d1.rows_read` (D1's `meta` summed). Rollups answer without a filter; " +
      `one filter (\`${readmodel.filter}\`) falls back to raw rows. Per plan at most ${readmodel.runs.rollups} / ` +
      `${readmodel.runs.raw} calls or ${readmodel.runs.ms / 1000} s, after one unmeasured call. 10 M events is opt-in ` +
      "(`BENCH_SCALE=10m make bench`, about half an hour); a run without it keeps the last 10 M figures, dated.", "",
      table(["events", "filled in (s)", "visits", "rollup rows", "plan", "p50 (ms)", "p95 (ms)", "calls", "rows read / load", "measured"],
        readmodel.scales.flatMap((s) => [
          [int(s.events), fixed(s.fillSeconds, 0), int(s.counts.visits), int(s.counts.rollups), "rollups (no filter)",
            fixed(s.rollups.p50, 0), fixed(s.rollups.p95, 0), s.rollups.calls, int(s.rollups.rowsRead), s.measured],
          ["", "", "", "", "raw rows (one filter)", ...rawCells(s.raw), ""],
        ])), "");
    const ratios = readmodel.scales.filter((s) => !s.raw.skipped && !s.raw.timedOut)
      .map((s) => `${int(s.events)}: ${fixed(s.raw.p50 / s.rollups.p50, 0)}× the time, ${fixed(s.raw.rowsRead / s.rollups.rowsRead, 0)}× the rows`);
    out.push((ratios.length ? `Raw fallback against rollups, same worker, same data: ${ratios.join("; ")}. ` : "") +
      "A raw call slower than D1's 30 s query limit would fail on Cloudflare; a call is given 60 s here, and once one " +
      "took longer, larger datasets are not asked (\"over the limit\").", "");
    out.push("### D1 bytes per million events", "",
      "SQLite's `dbstat` over the same files (pages in use, so what D1 bills as storage), divided by the events stored.", "",
      table(["events filled", "raw rows / M events", "their 2 indexes / M", "visits (+ 3 indexes) / M", "rollups (days, months, hours, minutes) / M", "total / M events", "whole file"],
        readmodel.scales.map((s) => {
          const per = bytesPerEvent(s);
          return [int(s.events), mb(per.events * 1e6), mb(per.eventIndexes * 1e6), mb(per.visits * 1e6), mb(per.rollups * 1e6),
            mb(per.total * 1e6), mb(s.bytes.file)];
        })), "");
    const cap = capacity(readmodel);
    if (cap) {
      out.push(`At the default retention (${RETENTION_DAYS} days of raw rows and visits, ${fixed(cap.months, 1)} months; ` +
        `rollups kept for ever, counted for the same months as an upper bound), one event a month costs ` +
        `${int(cap.perMonthlyEvent)} bytes of D1, so one 10 GB database holds about **${int(cap.eventsPerMonth)} events a month** ` +
        `(bytes of the ${int(cap.scale)}-event fill).`, "");
    }
  }
  if (consumer) {
    out.push("## 7. The consumer with the read model beside without", "",
      `The reliability test's load (${consumer.imports} × /import of 2000 and ${consumer.collects} × /collect of 50 browser ` +
      `events, ${consumer.clients} clients), sent to a fresh worker with \`READ_MODEL=on\` (visits and rollups in the same ` +
      "D1 transaction as the events) and one with `READ_MODEL=off` (enriched events only), `OUTBOX=off` (production's " +
      `setting), state on tmpfs, ${consumer.rounds} round(s), alternating which goes first. The consumer's rate is events ` +
      "stored / the summed duration of its queue batches as wrangler logs them; end to end is events stored / time from " +
      "the first request until D1 held them all (the sender, not the consumer, bounds that one here).", "",
      table(["read model", "events", "accepted", "stored", "sent in (s)", "all stored after (s)", "end to end (events/s)",
        "consumer batches", "consumer busy (s)", "consumer (events/s)"],
        consumer.trials.map((t) => [t.readModel ? "on" : "off", int(t.events), int(t.accepted), int(t.stored),
          fixed(t.sentMs / 1000, 1), fixed(t.ms / 1000, 1), int(t.eventsPerSecond), t.batches ?? "n/a",
          fixed((t.consumerMs ?? NaN) / 1000, 1), int(t.consumerEventsPerSecond)])), "",
      `Means over the trials that stored everything: the consumer stores ${int(consumerRates(consumer).with)} events/s with the ` +
      `read model, ${int(consumerRates(consumer).without)} without: **${fixed(consumerRates(consumer).ratio * 100, 0)} %** ` +
      `(goal ≥ 80 %); end to end ${int(consumerRates(consumer).endToEnd.with)} against ${int(consumerRates(consumer).endToEnd.without)} ` +
      "events/s. " + (consumerRates(consumer).stalled.length
        ? `**${consumerRates(consumer).stalled.length} trial(s) stalled**: Miniflare's local queue broker stopped starting ` +
          "batches (no error in the log, the worker still answering, the batches it did run short); with `OUTBOX=off` nothing " +
          "queues the rest again. Cloudflare Queues do not run this broker; README, \"Reliability\", says how the tests recover."
        : ""), "");
  }
  return out;
}

// ---- Section 8: cost ------------------------------------------------------

/** Per event of one path: each metered unit, and its price. */
export function perEvent(p) {
  const e = p.events;
  const o = p.ops;
  const units = {
    requests: o.requests / e,
    consumerInvocations: o.queueInvocations / e,
    kvReads: o.kvReads / e,
    kvWrites: o.kvWrites / e,
    queueOps: (3 * o.queueOps64k) / e,
    queueMessages: o.queueMessages / e,
    d1RowsRead: o.d1RowsRead / e,
    d1RowsWritten: o.d1RowsWritten / e,
    d1Queries: o.d1Queries / e,
    r2Writes: o.r2Writes / e,
  };
  const dollars = (k, n = units[k]) => (n * PRICES[k].price); // per million events: n per event × $/million
  const byUnit = {
    requests: dollars("requests", units.requests + units.consumerInvocations),
    kvReads: dollars("kvReads"),
    kvWrites: dollars("kvWrites"),
    queueOps: dollars("queueOps"),
    d1RowsRead: dollars("d1RowsRead"),
    d1RowsWritten: dollars("d1RowsWritten"),
  };
  const total = Object.values(byUnit).reduce((a, b) => a + b, 0);
  return { units, byUnit, perMillion: total, r2PerMillion: dollars("r2Writes") };
}

/** Events a day before a free-plan limit, and which. */
export function freeCeiling(p, readmodel) {
  const u = perEvent(p).units;
  const limits = [
    ["Worker requests (100,000/day)", PRICES.requests.freePerDay / (u.requests + u.consumerInvocations)],
    ["KV reads (100,000/day)", PRICES.kvReads.freePerDay / u.kvReads],
    ["KV writes (1,000/day)", PRICES.kvWrites.freePerDay / u.kvWrites],
    ["Queue operations (10,000/day)", PRICES.queueOps.freePerDay / u.queueOps],
    ["D1 rows read (5 M/day)", PRICES.d1RowsRead.freePerDay / u.d1RowsRead],
    ["D1 rows written (100,000/day)", PRICES.d1RowsWritten.freePerDay / u.d1RowsWritten],
  ];
  const per = bytesPerEvent(byEvents(readmodel, 1_000_000) ?? largest(readmodel));
  if (per) limits.push([`D1 database size (500 MB, ${RETENTION_DAYS} days kept)`, (PRICES.d1Storage.freeDbGb * 1e9) / (per.total * RETENTION_DAYS)]);
  const finite = limits.filter(([, n]) => Number.isFinite(n) && n > 0);
  finite.sort((a, b) => a[1] - b[1]);
  return { limits: finite, first: finite[0] };
}

/** What a site of `events` a month pays on the paid plan (browser path). */
export function monthly(events, p, readmodel) {
  const u = perEvent(p).units;
  const usage = {
    requests: events * (u.requests + u.consumerInvocations),
    kvReads: events * u.kvReads,
    kvWrites: events * u.kvWrites,
    queueOps: events * u.queueOps,
    d1RowsRead: events * u.d1RowsRead,
    d1RowsWritten: events * u.d1RowsWritten,
  };
  let dollars = PRICES.base;
  const lines = {};
  for (const [k, n] of Object.entries(usage)) {
    const over = Math.max(0, n - PRICES[k].included);
    lines[k] = (over / 1e6) * PRICES[k].price;
    dollars += lines[k];
  }
  const per = bytesPerEvent(byEvents(readmodel, 1_000_000) ?? largest(readmodel));
  const storedGb = per ? (events * (RETENTION_DAYS / DAYS_PER_MONTH) * per.total) / 1e9 : NaN;
  const storage = Math.max(0, storedGb - PRICES.d1Storage.includedGb) * PRICES.d1Storage.pricePerGbMonth;
  if (Number.isFinite(storage)) dollars += storage;
  const ceiling = freeCeiling(p, readmodel).first;
  const free = ceiling && events / DAYS_PER_MONTH <= ceiling[1];
  return { events, dollars, storage, storedGb, lines, free, overDb: storedGb > PRICES.d1Storage.maxDbGb };
}

// Production's settings (wrangler.jsonc, env.production): no KV dedup marks.
const PRODUCTION_BROWSER = "collect (1 event), DEDUP_MARKS=off";
const browserPath = (cost) => cost?.paths?.find((p) => p.name === PRODUCTION_BROWSER) ??
  cost?.paths?.find((p) => p.name === "collect (1 event)");
const browserLabel = (p) => (p.name === PRODUCTION_BROWSER ? "collect, 1 event a request, production's DEDUP_MARKS=off" : "collect, 1 event a request");

export function costGoals(cost, readmodel) {
  const b = browserPath(cost);
  if (!b) return [];
  const c = perEvent(b);
  const ceiling = freeCeiling(b, readmodel).first;
  return [
    ["≤ $1.00 per million events, browser traffic, rollups on (section 8)", `${money(c.perMillion)} per million (${browserLabel(b)})`,
      yes(c.perMillion <= 1.0)],
    ["a free-plan site keeps working at 30,000 events a day", ceiling ? `${int(ceiling[1])} a day; first limit: ${ceiling[0]}` : "n/a",
      ceiling ? yes(ceiling[1] >= 30_000) : "n/a"],
  ];
}

/** D1 rows written per event, by the table each statement writes (the counting wrapper's `d1BySql`). */
function rowsByTable(cost) {
  const shown = cost.paths.filter((p) => p.ops.d1BySql && /^collect \(1 event\)/.test(p.name));
  if (!shown.length) return [];
  const tableOf = (sql) => (sql.match(/^(?:INSERT(?: OR \w+)? INTO|UPDATE|DELETE FROM)\s+(\w+)/i) ?? [])[1];
  const names = [...new Set(shown.flatMap((p) => Object.keys(p.ops.d1BySql).map(tableOf).filter(Boolean)))].sort();
  const written = (p, name) => Object.entries(p.ops.d1BySql).filter(([sql]) => tableOf(sql) === name)
    .reduce((n, [, v]) => n + v.rowsWritten, 0) / p.events;
  const kept = names.filter((name) => shown.some((p) => written(p, name) > 0));
  return ["Where the D1 rows written go (per event; a row of a table with indexes counts once more per index it " +
    "touches, as D1 bills it):", "",
    table(["path", ...kept, "total"], shown.map((p) => [p.name, ...kept.map((name) => fixed(written(p, name), 2)),
      fixed(p.ops.d1RowsWritten / p.events, 2)])), ""];
}

export function priceSections(cost, readmodel) {
  if (!cost?.paths?.length) return [];
  const out = ["## 8. What an event costs on Cloudflare", "",
    "Counted in the running worker: the built worker under `wrangler dev` behind `bench/ops-entry.mjs`, which counts " +
    "every binding call (KV keys read and written, queue messages and their 64 KB operations, D1 rows read and written " +
    "as each result's own `meta` reports them, R2 writes) and every Worker invocation, with production's settings " +
    `(\`${Object.entries(cost.settings).map(([k, v]) => `${k}=${v}`).join("`, `")}\`). Each path sends its requests, the ` +
    "queue drains, and the counts are read once they stop moving, so the consumer's share is in. Queue operations are the " +
    "producer's 64 KB writes × 3 (write, read, delete); consumer invocations are counted as Worker requests (an upper bound).", "",
    table(["path", "requests", "events", "stored", "Worker req / event", "consumer runs / event", "KV read / event", "KV write / event",
      "queue ops / event", "D1 statements / event", "D1 rows read / event", "D1 rows written / event", "R2 writes / event"],
      cost.paths.map((p) => {
        const u = perEvent(p).units;
        return [p.name, p.requests, int(p.events), int(p.stored), fixed(u.requests, 3), fixed(u.consumerInvocations, 4), fixed(u.kvReads, 3),
          fixed(u.kvWrites, 3), fixed(u.queueOps, 3), fixed(u.d1Queries, 3), fixed(u.d1RowsRead, 2), fixed(u.d1RowsWritten, 2), fixed(u.r2Writes, 3)];
      })), "",
    ...rowsByTable(cost),
    `Priced with ${PRICES.date}: Workers Paid $5 a month, then per million: requests $${PRICES.requests.price}, KV reads ` +
    `$${PRICES.kvReads.price}, KV writes $${PRICES.kvWrites.price}, queue operations $${PRICES.queueOps.price}, D1 rows read ` +
    `$${PRICES.d1RowsRead.price}, D1 rows written $${PRICES.d1RowsWritten.price}, R2 class A $${PRICES.r2Writes.price}; D1 storage ` +
    `$${PRICES.d1Storage.pricePerGbMonth} per GB-month over ${PRICES.d1Storage.includedGb} GB. CPU time ($${PRICES.cpuMs.price} per ` +
    "million CPU-ms over 30 M) is not priced: workerd on this machine is not Cloudflare's CPU accounting. Marginal prices " +
    "(beyond what the $5 plan includes):", "",
    table(["path", "requests", "KV reads", "KV writes", "queue", "D1 rows read", "D1 rows written", "$ / million events", "+ R2 archive"],
      cost.paths.map((p) => {
        const c = perEvent(p);
        return [p.name, money(c.byUnit.requests), money(c.byUnit.kvReads), money(c.byUnit.kvWrites), money(c.byUnit.queueOps),
          money(c.byUnit.d1RowsRead), money(c.byUnit.d1RowsWritten), `**${money(c.perMillion)}**`, money(c.r2PerMillion)];
      })), "",
    `Beside it, Workers Analytics Engine, the platform's own store for analytics writes: $${PRICES.wae.price} per million ` +
    `data points over ${int(PRICES.wae.included)} a month (free plan: ${int(PRICES.wae.freePerDay)} a day), one data point per ` +
    "event, reads priced per query; no dedup, no visits or rollups of its own, three months kept.", ""];
  const d = cost.dashboard;
  if (d) {
    const o = d.ops;
    const scale = byEvents(readmodel, 1_000_000) ?? largest(readmodel);
    const rows = scale ? scale.rollups.rowsRead : o.d1RowsRead / d.loads;
    const perLoad = (o.requests / d.loads) * PRICES.requests.price / 1e6 + rows * PRICES.d1RowsRead.price / 1e6;
    out.push(`A dashboard load (GET /api/stats, 30 days): ${fixed(o.requests / d.loads, 0)} Worker request, ` +
      `${fixed(o.d1Queries / d.loads, 0)} D1 statements, ${int(o.d1RowsRead / d.loads)} rows read on this small database and ` +
      `${scale ? `${int(rows)} at ${int(scale.events)} events (section 6)` : "n/a"}: ` +
      `**${money(perLoad * 1000)} per thousand loads** at the marginal prices.`, "");
  }
  const b = browserPath(cost);
  if (b) {
    const f = freeCeiling(b, readmodel);
    out.push(`Free plan, browser traffic (${browserLabel(b)}): events a day before each daily limit:`, "",
      table(["limit", "events a day"], f.limits.map(([name, n]) => [name, int(n)])), "",
      `The first to bite: **${f.first[0]}** at ${int(f.first[1])} events a day.`, "");
    out.push("What a site pays a month (browser traffic as above, the read model on, default retention; the $5 plan's " +
      "inclusions first; dashboards and CPU time not included):", "",
      table(["events a month", "plan", "$ a month", "D1 stored (GB)", "note"], [10e3, 1e6, 100e6].map((n) => {
        const m = monthly(n, b, readmodel);
        return [int(n), m.free ? "free" : "Workers Paid", m.free ? "$0" : money(m.dollars), fixed(m.storedGb, 1),
          m.overDb ? `over one D1 database's ${PRICES.d1Storage.maxDbGb} GB: shorter raw retention or archive + sink` : ""];
      })), "");
  }
  return out;
}
