// Issue 4's end-to-end proofs through real `wrangler dev`: dedup (KV and,
// after KV forgets, D1), body limits and gzip bombs, server-side bots,
// dead letters after storage failures, and the R2 + HTTP sinks.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer, request as httpRequest } from "node:http";
import { gzipSync } from "node:zlib";
import {
  startWorker, collect, exportEvents, waitForEvents, waitForStats, settled, stats, d1, wranglerCli, freePort, sleep, kvMark, archiveObjects, BROWSER_UA, SECRET,
} from "./harness.mjs";

let worker, sink;
const sinkBodies = [];
// Erasure notices (HTTP_SINK_ERASURE_URL), and whether the sink refuses them.
const notices = [];
let refuseNotices = false;

before(async () => {
  const sinkPort = await freePort();
  sink = createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      if (req.url === "/erasure") {
        if (refuseNotices) return res.writeHead(503).end();
        notices.push({ type: req.headers["content-type"], body: JSON.parse(body) });
        return res.writeHead(204).end();
      }
      sinkBodies.push({ type: req.headers["content-type"], body });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => sink.listen(sinkPort, "127.0.0.1", r));
  worker = await startWorker({ vars: { ARCHIVE_ENABLED: "1", HTTP_SINK_URL: `http://127.0.0.1:${sinkPort}/ingest`,
    HTTP_SINK_ERASURE_URL: `http://127.0.0.1:${sinkPort}/erasure` } });
});
after(async () => {
  await worker?.stop();
  sink?.close();
});

const now = () => Date.now();

function postWithoutUserAgent(url, body) {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", headers: { "content-type": "text/plain" } }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.statusCode));
    });
    req.on("error", reject);
    req.end(body);
  });
}

test("a duplicate is stored once, within the KV TTL and after KV forgot it", async () => {
  const event = { n: "signup", i: "dup-1", d: "dev-dup", ts: now(), p: { plan: "pro", seats: 3, tags: ["a"] } };
  assert.equal((await collect(worker.base, [event])).status, 202);
  assert.equal((await collect(worker.base, [event])).status, 202, "a retry is a success");
  const [stored] = (await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "dup-1"))).filter((x) => x.insert_id === "dup-1");
  // Make KV forget, as its TTL would: now only D1's unique key can catch it.
  forgetMarks([stored]);
  assert.equal((await collect(worker.base, [event])).status, 202);
  await settled(worker);
  const rows = (await exportEvents(worker.base)).filter((x) => x.insert_id === "dup-1");
  assert.equal(rows.length, 1);
  assert.deepEqual(rows[0].properties, { plan: "pro", seats: 3, tags: ["a"] }, "properties survive queue and D1");
});

// Issue 22: a KV write is the dearest thing an event pays for, so
// DEDUP_MARKS can mark a request as a whole, or nothing; D1's key stays the
// authority. To see what KV alone does, the stored rows are deleted from D1
// between sends: whatever comes back was let through by KV.
for (const [mode, wantMarks] of [["request", 1], ["off", 0]]) {
  test(`DEDUP_MARKS=${mode}: ${wantMarks} KV mark for a batch; an exact resend is ${wantMarks ? "stopped by it" : "stored again"}, any other batch goes through`, async () => {
    const own = await startWorker({ vars: { DEDUP_MARKS: mode } });
    try {
      const ts = now();
      const batch = ["a", "b", "c"].map((x) => ({ n: "$pageview", i: `${mode}-${x}`, d: `dev-${mode}`, ts }));
      const ids = (events) => events.filter((x) => x.insert_id.startsWith(`${mode}-`)).map((x) => x.insert_id).sort();
      assert.equal((await collect(own.base, batch)).status, 202);
      await waitForEvents(own.base, (e) => ids(e).length === 3);
      const marks = JSON.parse(wranglerCli(["kv", "key", "list", "--binding", "DEDUP", "--prefix", "seen:demo:"], own.persistDir)).map((k) => k.name);
      assert.equal(marks.length, wantMarks, JSON.stringify(marks));
      if (wantMarks) assert.match(marks[0], /^seen:demo:request:[0-9a-f]{32}$/);

      d1(`DELETE FROM events WHERE insert_id LIKE '${mode}-%'`, own.persistDir);
      assert.deepEqual(ids(await exportEvents(own.base)), []);
      assert.equal((await collect(own.base, batch)).status, 202, "a resend is a success");
      // A marker after the resend, seen stored, then the outbox empty: the
      // resend has been either dropped or stored by now.
      assert.equal((await collect(own.base, [{ n: "marker", i: `${mode}-marker-1`, d: "m", ts }])).status, 202);
      await waitForEvents(own.base, (e) => e.some((x) => x.insert_id === `${mode}-marker-1`));
      await settled(own);
      const resent = ids(await exportEvents(own.base)).filter((x) => !x.includes("marker"));
      assert.deepEqual(resent, wantMarks ? [] : [`${mode}-a`, `${mode}-b`, `${mode}-c`]);

      // The same events with one more are another request: all go through
      // KV, and D1 keeps each once.
      const bigger = [...batch, { n: "$pageview", i: `${mode}-d`, d: `dev-${mode}`, ts }];
      assert.equal((await collect(own.base, bigger)).status, 202);
      await waitForEvents(own.base, (e) => ids(e).includes(`${mode}-d`));
      await settled(own);
      assert.deepEqual(ids(await exportEvents(own.base)).filter((x) => !x.includes("marker")), [`${mode}-a`, `${mode}-b`, `${mode}-c`, `${mode}-d`]);
    } finally {
      await own.stop();
    }
  });
}

/** Deletes the KV marks of stored rows, as the marks' TTL would. */
function forgetMarks(rows) {
  for (const row of rows) {
    const before = wranglerCli(["kv", "key", "get", "--binding", "DEDUP", kvMark(row)], worker.persistDir);
    assert.equal(before.trim(), "1", `the mark of ${row.event} exists before it is forgotten`);
    wranglerCli(["kv", "key", "delete", "--binding", "DEDUP", kvMark(row)], worker.persistDir);
  }
}

// Issue 13 part 2: Mixpanel deduplicates on event name, distinct_id, time
// to the second and $insert_id together; a page's token must not be able to
// silence a server's import by sending its $insert_id first.
test("an $insert_id claimed by /collect does not silence a different /import event; exact resends of either store nothing", async () => {
  const ts = now();
  const browserEvent = { n: "$pageview", i: "order-1001", d: "dev-preclaim", ts };
  const imported = [{ event: "Purchase", properties: { time: Math.floor(ts / 1000) - 60, distinct_id: "buyer-1001", $insert_id: "order-1001", amount: 42 } }];
  const auth = { authorization: `Basic ${Buffer.from(`${SECRET}:`).toString("base64")}`, "content-type": "application/json" };
  const importOnce = async () => {
    const r = await fetch(`${worker.base}/import`, { method: "POST", headers: auth, body: JSON.stringify(imported) });
    assert.equal(r.status, 200);
    return r.json();
  };
  assert.equal((await collect(worker.base, [browserEvent])).status, 202);
  await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "order-1001"));
  assert.equal((await importOnce()).num_records_imported, 1);
  const rows = (await waitForEvents(worker.base, (e) => e.filter((x) => x.insert_id === "order-1001").length === 2))
    .filter((x) => x.insert_id === "order-1001")
    .sort((a, b) => a.event.localeCompare(b.event));
  assert.deepEqual(rows.map((x) => [x.event, x.distinct_id, x.source]), [
    ["$pageview", "dev-preclaim", "browser"],
    ["Purchase", "buyer-1001", "mixpanel_import"],
  ]);
  assert.deepEqual(rows[1].properties, { amount: 42 });

  // Exact resends: first caught by KV's marks, then (marks forgotten) by D1.
  assert.equal((await collect(worker.base, [browserEvent])).status, 202);
  await importOnce();
  forgetMarks(rows);
  assert.equal((await collect(worker.base, [browserEvent])).status, 202);
  await importOnce();
  // A marker sent after the resends and seen stored: they have been handled.
  assert.equal((await collect(worker.base, [{ n: "marker", i: "preclaim-marker", d: "dev-preclaim", ts: now() }])).status, 202);
  await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "preclaim-marker"));
  await settled(worker);
  assert.equal((await exportEvents(worker.base)).filter((x) => x.insert_id === "order-1001").length, 2);
});

// Issue 20 part 1: an event without an insert_id is deduplicated only when
// its content identifies one occurrence (dedup.rs: a client time in
// milliseconds, in our tracker's and Emp-Mix's dialects); otherwise each
// request's event is kept, as Mixpanel keeps every event without $insert_id.
test("repeated events without an insert_id are kept, per dialect; a millisecond client time makes a resend one event", async () => {
  const tag = `rep-${now()}`;
  const json = { "content-type": "application/json" };
  // The timed resends carry the very same client time.
  const fixed = now() - 5000;
  const send = {
    collect: () => collect(worker.base, [{ n: `${tag}-collect`, d: "dev-rep", p: { k: 1 } }]),
    collectTimed: () => collect(worker.base, [{ n: `${tag}-collect-ms`, d: "dev-rep", ts: fixed }]),
    track: () => fetch(`${worker.base}/track?ip=0&data=${Buffer.from(JSON.stringify({ event: `${tag}-track`, properties: { token: "demo-token", distinct_id: "u-rep" } })).toString("base64")}`),
    importForm: () => fetch(`${worker.base}/import?ip=0&verbose=0`, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from(`${SECRET}:`).toString("base64")}`, "content-type": "application/x-www-form-urlencoded" },
      body: `data=${encodeURIComponent(Buffer.from(JSON.stringify([{ event: `${tag}-import`, properties: { time: Math.floor(now() / 1000) - 60, distinct_id: "u-rep" } }])).toString("base64"))}`,
    }),
    empmix: () => fetch(`${worker.base}/public/track`, { method: "POST", headers: json, body: JSON.stringify({ apiKey: "demo-token", event: `${tag}-empmix`, distinct_id: "u-rep" }) }),
    empmixTimed: () => fetch(`${worker.base}/public/track`, { method: "POST", headers: json, body: JSON.stringify({ apiKey: "demo-token", event: `${tag}-empmix-ms`, distinct_id: "u-rep", timestamp: fixed }) }),
    vemetric: () => fetch(`${worker.base}/e`, { method: "POST", headers: { ...json, token: "demo-token", "user-agent": BROWSER_UA }, body: JSON.stringify({ name: `${tag}-vemetric`, identifier: "u-rep" }) }),
  };
  for (let i = 0; i < 2; i++) {
    for (const [name, call] of Object.entries(send)) {
      const r = await call();
      assert.ok(r.status < 300, `${name}: ${r.status} ${await r.text()}`);
    }
  }
  const expected = {
    [`${tag}-collect`]: 2, [`${tag}-collect-ms`]: 1, [`${tag}-track`]: 2, [`${tag}-import`]: 2,
    [`${tag}-empmix`]: 2, [`${tag}-empmix-ms`]: 1, [`${tag}-vemetric`]: 2,
  };
  const counts = (events) => Object.fromEntries(Object.keys(expected).map((name) => [name, events.filter((x) => x.event === name).length]));
  await waitForEvents(worker.base, (e) => JSON.stringify(counts(e)) === JSON.stringify(expected));
  // A marker after everything, seen stored: no late duplicate is on its way.
  assert.equal((await collect(worker.base, [{ n: "marker", i: `${tag}-marker`, d: "dev-rep", ts: now() }])).status, 202);
  await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === `${tag}-marker`));
  await settled(worker);
  assert.deepEqual(counts(await exportEvents(worker.base)), expected);
});

test("the same insert_id twice in one batch is one row", async () => {
  const event = { n: "twice", i: "dup-in-batch", d: "dev-b", ts: now() };
  assert.equal((await collect(worker.base, [event, event])).status, 202);
  await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "dup-in-batch"));
  await settled(worker);
  assert.equal((await exportEvents(worker.base)).filter((x) => x.insert_id === "dup-in-batch").length, 1);
});

test("bodies past 2 MiB get 413, at the limit they are read", async () => {
  const limit = 2 * 1024 * 1024;
  const ts = now();
  const pad = (id, n) => JSON.stringify({ t: "demo-token", e: [{ n: "big", i: id, d: "d", ts }], pad: "x".repeat(n) });
  const base = pad("limit-at", 0).length;
  assert.equal(pad("limit-at", limit - base).length, limit);
  const at = await fetch(`${worker.base}/collect`, { method: "POST", headers: { "user-agent": BROWSER_UA }, body: pad("limit-at", limit - base) });
  assert.equal(at.status, 202, "exactly 2 MiB is within the limit");
  const past = await fetch(`${worker.base}/collect`, { method: "POST", headers: { "user-agent": BROWSER_UA }, body: pad("limit-pas", limit - base + 1) });
  assert.equal(past.status, 413);
  await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "limit-at"));
  await settled(worker);
  assert.equal((await exportEvents(worker.base)).filter((x) => x.insert_id === "limit-pas").length, 0, "the refused body stored nothing");
});

test("a gzip bomb gets 413 and the worker keeps serving", async () => {
  const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024, 0x20), { level: 9 }); // 50 MiB of spaces in ~50 KB
  const r = await fetch(`${worker.base}/collect`, {
    method: "POST",
    headers: { "user-agent": BROWSER_UA, "content-encoding": "gzip", "content-type": "text/plain" },
    body: bomb,
  });
  assert.equal(r.status, 413);
  // Whichever cap trips first (ratio or size), the answer names it.
  assert.match((await r.json()).error, /expands more than|exceeds max limit/);
  // An honest gzip body still works afterwards.
  const honest = gzipSync(JSON.stringify({ t: "demo-token", e: [{ n: "zipped", i: "gz-1", d: "d-gz", ts: now() }] }));
  const ok = await fetch(`${worker.base}/collect`, {
    method: "POST", headers: { "user-agent": BROWSER_UA, "content-encoding": "gzip" }, body: honest,
  });
  assert.equal(ok.status, 202);
  await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "gz-1"));
});

test("a crawler's events are answered 202, not stored, and counted by reason", async () => {
  const googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
  assert.equal((await collect(worker.base, [{ n: "$pageview", i: "bot-1", d: "b" }], { userAgent: googlebot })).status, 202);
  // fetch always adds a user agent; node:http sends none unless told.
  assert.equal(await postWithoutUserAgent(`${worker.base}/collect`, JSON.stringify({ t: "demo-token", e: [{ n: "$pageview", i: "bot-2", d: "b" }] })), 202);
  // The drops are counted by the queue consumer: wait for both counts, then
  // for anything else accepted, before asserting that nothing was stored.
  const reasons = (s) => Object.fromEntries(s.bots.map((b) => [b.reason, b.requests]));
  await waitForStats(worker.base, (s) => reasons(s).user_agent_pattern >= 1 && reasons(s).missing_user_agent >= 1);
  await settled(worker);
  const events = await exportEvents(worker.base);
  assert.equal(events.filter((x) => x.insert_id.startsWith("bot-")).length, 0);
  const byReason = reasons(await stats(worker.base));
  assert.equal(byReason.user_agent_pattern, 1);
  assert.equal(byReason.missing_user_agent, 1);
});

test("R2 archive and HTTP sink receive the stored batch as NDJSON", async () => {
  const ts = now();
  assert.equal((await collect(worker.base, [{ n: "sinked", i: "sink-1", d: "d-s", ts }])).status, 202);
  await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "sink-1"));
  const deadline = Date.now() + 10_000;
  while (!sinkBodies.some((b) => b.body.includes('"sink-1"')) && Date.now() < deadline) await sleep(200);
  const delivered = sinkBodies.find((b) => b.body.includes('"sink-1"'));
  assert.ok(delivered, "the HTTP sink got the event");
  assert.equal(delivered.type, "application/x-ndjson");
  const line = delivered.body.split("\n").find((l) => l.includes('"sink-1"'));
  assert.equal(JSON.parse(line).name, "sinked");

  const objects = await archiveObjects(worker.persistDir, hourPrefix(ts));
  const lines = objects.flatMap((o) => o.text.trim().split("\n")).map((l) => JSON.parse(l));
  assert.deepEqual(lines.filter((e) => e.insert_id === "sink-1").map((e) => e.name), ["sinked"]);
  for (const { key } of objects) assert.match(key, /\/[0-9a-f]{32}\.ndjson$/, "named by a digest of its contents");
});

/** The archive's partition for a time: `events/project=demo/dt=…/hour=HH/`. */
function hourPrefix(ts) {
  const d = new Date(ts);
  return `events/project=demo/dt=${d.toISOString().slice(0, 10)}/hour=${String(d.getUTCHours()).padStart(2, "0")}/`;
}

/** Every archived event of the hour of `ts` whose insert_id starts with `prefix`. */
async function archived(ts, prefix) {
  const objects = await archiveObjects(worker.persistDir, hourPrefix(ts));
  return objects.flatMap((o) => o.text.trim().split("\n")).map((l) => JSON.parse(l)).filter((e) => e.insert_id.startsWith(prefix));
}

const importBody = (events) => JSON.stringify(events.map(([id, ts]) =>
  ({ event: "archived", properties: { time: ts, distinct_id: "u-r2", $insert_id: id } })));
const importAuth = { authorization: `Basic ${Buffer.from(`${SECRET}:`).toString("base64")}`, "content-type": "application/json" };

test("R2: two batches that start with the same insert_id are both archived in full", async () => {
  const ts = now();
  // 51 events each: past the KV fast path, so the second batch reaches the
  // consumer with its repeated first event (D1 ignores that one).
  const batch = (tag) => [["r2-first", ts], ...Array.from({ length: 50 }, (_, i) => [`r2-${tag}-${i}`, ts])];
  for (const tag of ["a", "b"]) {
    const r = await fetch(`${worker.base}/import`, { method: "POST", headers: importAuth, body: importBody(batch(tag)) });
    assert.equal(r.status, 200, await r.text());
    await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === `r2-${tag}-49`));
  }
  // The sink got both batches: the archive has had its turn too.
  const deadline = Date.now() + 10_000;
  while (!sinkBodies.some((b) => b.body.includes('"r2-b-49"')) && Date.now() < deadline) await sleep(200);
  const ids = (await archived(ts, "r2-")).map((e) => e.insert_id);
  for (const tag of ["a", "b"]) {
    for (let i = 0; i < 50; i++) assert.ok(ids.includes(`r2-${tag}-${i}`), `r2-${tag}-${i} is archived`);
  }
  assert.equal(ids.filter((id) => id === "r2-first").length, 2, "each batch's object keeps its own copy of the shared first event");
});

test("R2: a message delivered again after the archive wrote it leaves one copy", async () => {
  const ts = now();
  // One queue message, delivered twice: kept as a dead letter and replayed,
  // then kept and replayed once more (as a queue redelivers a message whose
  // batch failed after the archive wrote it).
  const events = ["r2-retry-1", "r2-retry-2"].map((id) => ({ project: "demo", name: "archived", distinct_id: "u-r2",
    time_ms: ts, insert_id: id, source: "mixpanel_import", received_at_ms: ts }));
  const body = JSON.stringify({ kind: "events", events }).replaceAll("'", "''");
  const delivered = () => sinkBodies.filter((b) => b.body.includes('"r2-retry-1"')).length;
  for (let round = 1; round <= 2; round++) {
    d1(`INSERT INTO dead_letters (queue, body, error, received_at_ms) VALUES ('edgetrack-events', '${body}', 'test', ${ts})`,
      worker.persistDir);
    const r = await fetch(`${worker.base}/api/dead-letters/replay`, { method: "POST", headers: { "x-api-key": SECRET } });
    assert.equal(r.status, 200, await r.text());
    // The sink is sent every event of a stored run (D1 ignoring a repeat
    // or not), after the archive: its copy is the signal.
    const deadline = Date.now() + 30_000;
    while (delivered() < round && Date.now() < deadline) await sleep(200);
    assert.equal(delivered(), round, `delivery ${round} reached the sink`);
  }
  const ids = (await archived(ts, "r2-retry-")).map((e) => e.insert_id).sort();
  assert.deepEqual(ids, ["r2-retry-1", "r2-retry-2"], "one copy of each");
});

test("erasure: the HTTP sink hears of it first (refused: nothing deleted), the archive is scrubbed of the person only", async () => {
  const ts = now();
  assert.equal((await collect(worker.base, [
    { n: "x", i: "er-user-1", d: "er-dev", id: "er-user", ts },
    { n: "x", i: "er-anon-1", d: "er-dev", ts },
    { n: "x", i: "er-other-1", d: "er-dev-2", id: "er-other", ts },
  ])).status, 202);
  await waitForEvents(worker.base, (e) => e.filter((x) => x.insert_id.startsWith("er-")).length === 3);
  const deadline = Date.now() + 10_000;
  while ((await archived(ts, "er-")).length < 3 && Date.now() < deadline) await sleep(250);
  const othersBefore = (await archived(ts, "")).filter((e) => !e.insert_id.startsWith("er-")).length;
  const erase = () => fetch(`${worker.base}/api/users/delete`, { method: "POST", headers: { "x-api-key": SECRET }, body: JSON.stringify({ distinct_id: "er-user" }) });

  refuseNotices = true;
  const refused = await erase();
  refuseNotices = false;
  assert.equal(refused.status, 503);
  assert.equal((await exportEvents(worker.base)).filter((x) => x.insert_id.startsWith("er-")).length, 3, "nothing deleted");

  const r = await erase();
  assert.equal(r.status, 200);
  const answer = await r.json();
  assert.equal(answer.deleted.events, 2);
  assert.equal(answer.http_sink_notified, true);
  assert.deepEqual(answer.archive_prefixes, [hourPrefix(ts)]);
  assert.equal(notices.length, 1);
  assert.equal(notices[0].type, "application/json");
  const { erased_at_ms: at, ...notice } = notices[0].body;
  assert.deepEqual(notice, { type: "erasure", project: "demo", distinct_id: "er-user", devices: ["er-dev"] });
  assert.ok(at >= ts);

  let removed = 0;
  for (const prefix of answer.archive_prefixes) {
    let cursor = null;
    do {
      const scrub = await fetch(`${worker.base}/api/archive/scrub`, { method: "POST", headers: { "x-api-key": SECRET }, body: JSON.stringify({ prefix, cursor }) });
      assert.equal(scrub.status, 200);
      const done = await scrub.json();
      removed += done.events_removed;
      cursor = done.cursor;
    } while (cursor);
  }
  assert.equal(removed, 2);
  assert.deepEqual((await archived(ts, "er-")).map((e) => e.insert_id), ["er-other-1"]);
  assert.equal((await archived(ts, "")).filter((e) => !e.insert_id.startsWith("er-")).length, othersBefore, "nobody else's lines");
  const objects = await archiveObjects(worker.persistDir, hourPrefix(ts));
  for (const { key } of objects) assert.match(key, /\/[0-9a-f]{32}\.ndjson$/);
  // Another project's folder cannot be named.
  const foreign = await fetch(`${worker.base}/api/archive/scrub`, { method: "POST", headers: { "x-api-key": SECRET }, body: JSON.stringify({ prefix: "events/project=other/" }) });
  assert.equal(foreign.status, 400);
});

test("when D1 writes fail the consumer retries, then dead-letters every event", async () => {
  d1("ALTER TABLE events RENAME TO events_offline", worker.persistDir);
  try {
    assert.equal((await collect(worker.base, [{ n: "doomed", i: "dead-1", d: "d-x", ts: now() }, { n: "doomed", i: "dead-2", d: "d-x", ts: now() }])).status, 202);
    // Dead letters keep whole queue messages; events travel packed.
    const deadIds = () => d1("SELECT body FROM dead_letters", worker.persistDir)
      .flatMap((r) => JSON.parse(r.body).events ?? [])
      .map((e) => e.insert_id)
      .filter((id) => id.startsWith("dead-"))
      .sort();
    let kept = [];
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline && kept.length < 2) {
      kept = deadIds();
      await sleep(1000);
    }
    assert.deepEqual(kept, ["dead-1", "dead-2"], "both events are kept in dead_letters, once each");
  } finally {
    d1("ALTER TABLE events_offline RENAME TO events", worker.persistDir);
  }
});
