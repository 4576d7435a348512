// Issue 9's security promises through real `wrangler dev`: key separation,
// CORS only where browsers need it, strict headers on data endpoints, rate
// limits, SQL injection through every field that reaches a query, GDPR
// erasure, and dead-letter replay after a storage outage.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  startWorker, collect, exportEvents, waitForEvents, settled, d1, wranglerCli, sleep, launchBrowser, serveOrigin, kvMark,
  BROWSER_UA, SECRET, TOKEN,
} from "./harness.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

let worker;
before(async () => (worker = await startWorker({ testScheduled: true })));
after(async () => worker?.stop());

const basic = (key) => `Basic ${Buffer.from(`${key}:`).toString("base64")}`;

describe("keys", () => {
  // Each secret-only endpoint, called with the public token (403), a wrong key (401) and no key (401).
  const secretOnly = [
    ["GET", "/public/events", (k) => ({ "x-api-key": k })],
    ["GET", "/api/stats", (k) => ({ "x-api-key": k })],
    ["GET", "/api/2.0/export", (k) => ({ authorization: basic(k) })],
    ["GET", "/api/profile?distinct_id=x", (k) => ({ "x-api-key": k })],
    ["POST", "/api/users/delete", (k) => ({ "x-api-key": k })],
    ["POST", "/api/dead-letters/replay", (k) => ({ "x-api-key": k })],
    ["POST", "/import", (k) => ({ authorization: basic(k) })],
    ["POST", "/v1/event", (k) => ({ authorization: `Bearer ${k}` })],
  ];
  for (const [method, path, headers] of secretOnly) {
    test(`${method} ${path}: public token 403, wrong key 401, no key 401`, async () => {
      const body = method === "POST" ? "{}" : undefined;
      const call = (h) => fetch(`${worker.base}${path}`, { method, headers: { "content-type": "application/json", ...h }, body });
      assert.equal((await call(headers(TOKEN))).status, 403);
      assert.equal((await call(headers("wrong-key"))).status, 401);
      assert.equal((await call({})).status, 401);
    });
  }

  test("public endpoints refuse the secret key with 403 (it must never ship in a page)", async () => {
    assert.equal((await collect(worker.base, [{ n: "x", d: "d" }], { token: SECRET })).status, 403);
    const empmix = await fetch(`${worker.base}/public/track`, { method: "POST", body: JSON.stringify({ apiKey: SECRET, event: "x", distinct_id: "u" }) });
    assert.equal(empmix.status, 403);
    const vemetric = await fetch(`${worker.base}/e`, { method: "POST", headers: { token: SECRET }, body: JSON.stringify({ name: "x", url: "https://a.test/" }) });
    assert.equal(vemetric.status, 403);
  });

  test("keys are never echoed back", async () => {
    const r = await fetch(`${worker.base}/public/events`, { headers: { "x-api-key": "guess-secret-123" } });
    assert.ok(!(await r.text()).includes("guess-secret-123"));
  });
});

describe("headers", () => {
  test("data endpoints: nosniff, strict CSP, no-store, no CORS", async () => {
    for (const path of ["/public/events", "/api/stats", "/api/2.0/export"]) {
      const r = await fetch(`${worker.base}${path}`, { headers: { "x-api-key": SECRET, origin: "https://evil.example" } });
      assert.equal(r.status, 200, path);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff", path);
      assert.match(r.headers.get("content-security-policy") ?? "", /default-src 'none'/, path);
      assert.equal(r.headers.get("cache-control"), "no-store", path);
      assert.equal(r.headers.get("access-control-allow-origin"), null, `${path} must not be readable cross-origin`);
    }
  });

  test("browser endpoints: CORS echoes the origin, preflight is answered", async () => {
    const r = await collect(worker.base, [{ n: "cors", d: "d" }], { headers: { origin: "https://shop.example" } });
    assert.equal(r.headers.get("access-control-allow-origin"), "https://shop.example");
    const pre = await fetch(`${worker.base}/track`, { method: "OPTIONS", headers: { origin: "https://shop.example", "access-control-request-method": "POST", "access-control-request-headers": "content-type" } });
    assert.equal(pre.status, 204);
    assert.equal(pre.headers.get("access-control-allow-credentials"), "true");
  });
});

describe("SQL injection", () => {
  const payloads = ["'; DROP TABLE events; --", "\" OR 1=1 --", "x') UNION SELECT secret FROM projects --", "Robert'); DELETE FROM profiles;--"];
  test("every field that reaches a query stores and reads back verbatim", async () => {
    const now = Date.now();
    const events = payloads.map((p, i) => ({ n: p, i: `sqli-${i}`, d: p, id: p, ts: now, u: `https://a.test/?q=${p}`, r: p, h: p, p: { [p]: p } }));
    assert.equal((await collect(worker.base, events)).status, 202);
    const rows = await waitForEvents(worker.base, (e) => e.filter((x) => x.insert_id.startsWith("sqli-")).length === payloads.length);
    for (const [i, p] of payloads.entries()) {
      const row = rows.find((x) => x.insert_id === `sqli-${i}`);
      assert.equal(row.event, p);
      assert.equal(row.distinct_id, p);
      assert.equal(row.title, p);
      assert.equal(row.device_id, p);
      assert.equal(row.url, `https://a.test/?q=${p}`);
      assert.equal(row.properties[p], p);
    }
    // Through read paths too: each payload as a filter value reads back its own event, and only it.
    for (const [i, p] of payloads.entries()) {
      const filters = encodeURIComponent(JSON.stringify([["is", "event", [p]]]));
      const r = await fetch(`${worker.base}/api/stats/breakdown?period=30d&dim=event&limit=10&filters=${filters}`, { headers: { "x-api-key": SECRET } });
      assert.equal(r.status, 200, `breakdown filtered by payload ${i}`);
      assert.deepEqual((await r.json()).rows.map((x) => [x.value, x.events]), [[p, 1]], `payload ${i} reads back as itself`);
    }
    // Profile lookup, stats ranges, export limits.
    for (const p of payloads) {
      const profile = await fetch(`${worker.base}/api/profile?distinct_id=${encodeURIComponent(p)}`, { headers: { "x-api-key": SECRET } });
      assert.equal(profile.status, 404);
      const stats = await fetch(`${worker.base}/api/stats?from=${encodeURIComponent(p)}`, { headers: { "x-api-key": SECRET } });
      assert.equal(stats.status, 400);
      const page = await fetch(`${worker.base}/public/events?limit=${encodeURIComponent(p)}`, { headers: { "x-api-key": SECRET } });
      assert.equal(page.status, 400);
    }
    const tables = d1("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", worker.persistDir).map((r) => r.name);
    for (const t of ["bot_drops", "dead_letters", "events", "profiles"]) assert.ok(tables.includes(t), t);
    assert.equal(d1("SELECT COUNT(*) AS n FROM events WHERE insert_id LIKE 'sqli-%'", worker.persistDir)[0].n, payloads.length);
    // Deletion by a payload as the distinct_id takes that person's event and no other.
    const gone = payloads[0];
    const erased = await fetch(`${worker.base}/api/users/delete`, { method: "POST", headers: { "x-api-key": SECRET }, body: JSON.stringify({ distinct_id: gone }) });
    assert.equal(erased.status, 200);
    const left = (await exportEvents(worker.base)).filter((x) => x.insert_id.startsWith("sqli-")).map((x) => x.insert_id).sort();
    assert.deepEqual(left, payloads.slice(1).map((_, i) => `sqli-${i + 1}`));
  });
});

describe("GDPR erasure", () => {
  test("deleting one person removes their events (anonymous ones too), profile and dedup marks, nobody else's", async () => {
    const now = Date.now();
    await collect(worker.base, [
      { n: "$pageview", i: "gdpr-anon", d: "gdpr-device", ts: now },
      { n: "Signed Up", i: "gdpr-known", d: "gdpr-device", id: "gdpr-user", ts: now },
      { n: "$pageview", i: "gdpr-other", d: "other-device", id: "other-user", ts: now },
    ]);
    await fetch(`${worker.base}/public/track`, { method: "POST", body: JSON.stringify({ apiKey: TOKEN, event: "x", distinct_id: "gdpr-user" }) });
    const engage = Buffer.from(JSON.stringify({ $token: TOKEN, $distinct_id: "gdpr-user", $set: { email: "g@example.com" } })).toString("base64");
    await fetch(`${worker.base}/engage?data=${engage}`);
    const stored = await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "gdpr-other") && e.some((x) => x.distinct_id === "gdpr-user" && x.event === "x"));
    await settled(worker);
    const marksOf = (rows) => rows.map((x) => kvMark(x)).sort();
    const personMarks = marksOf(stored.filter((x) => x.distinct_id === "gdpr-user" || x.device_id === "gdpr-device"));
    const otherMarks = marksOf(stored.filter((x) => x.insert_id === "gdpr-other"));
    const listMarks = () => JSON.parse(wranglerCli(["kv", "key", "list", "--binding", "DEDUP", "--prefix", "seen:demo:"], worker.persistDir)).map((k) => k.name);
    const before = listMarks();
    assert.deepEqual([...personMarks, ...otherMarks].filter((m) => !before.includes(m)), [], "every stored event has its mark");

    const r = await fetch(`${worker.base}/api/users/delete`, { method: "POST", headers: { "x-api-key": SECRET }, body: JSON.stringify({ distinct_id: "gdpr-user" }) });
    assert.equal(r.status, 200);
    const answer = await r.json();
    assert.equal(answer.deleted.events, 3, "the anonymous pageview on the same device goes too");
    assert.equal(answer.deleted.profiles, 1);
    assert.equal(answer.deleted.dedup_marks, 3);

    const left = await exportEvents(worker.base);
    assert.ok(!left.some((x) => x.distinct_id === "gdpr-user" || x.device_id === "gdpr-device"));
    assert.ok(left.some((x) => x.insert_id === "gdpr-other"), "other people stay");
    const profile = await fetch(`${worker.base}/api/profile?distinct_id=gdpr-user`, { headers: { "x-api-key": SECRET } });
    assert.equal(profile.status, 404);
    const after = listMarks();
    assert.deepEqual(personMarks.filter((m) => after.includes(m)), [], "the person's marks are gone");
    assert.deepEqual(otherMarks.filter((m) => !after.includes(m)), [], "the other person's mark is left");
  });

  // Queue jobs as the worker writes them (ingest-core's Job and Event), for
  // rows put straight into dead_letters and outbox: the states a real
  // queue leaves only with unlucky timing.
  const job = (events, outbox) => ({ kind: "events", events, ...(outbox ? { outbox } : {}) });
  const canonical = (project, id, distinct, device, receivedAt) => ({
    project, name: "late", distinct_id: distinct, ...(device ? { device_id: device } : {}), time_ms: receivedAt,
    insert_id: id, page: {}, properties: {}, source: "browser", received_at_ms: receivedAt,
  });
  const profileJob = (distinct, receivedAt) => ({
    kind: "profile", project: "demo", distinct_id: distinct, ops: [{ op: "set", value: { late: true } }],
    time_ms: receivedAt, received_at_ms: receivedAt,
  });
  const sql = (value) => `'${JSON.stringify(value).replaceAll("'", "''")}'`;
  const putLetter = (body) => d1(`INSERT INTO dead_letters (queue, body, error, received_at_ms) VALUES ('edgetrack-events', ${sql(body)}, 'test', 0)`, worker.persistDir);
  const erase = async (distinct) => {
    const r = await fetch(`${worker.base}/api/users/delete`, { method: "POST", headers: { "x-api-key": SECRET }, body: JSON.stringify({ distinct_id: distinct }) });
    assert.equal(r.status, 200);
    return r.json();
  };
  const replay = () => fetch(`${worker.base}/api/dead-letters/replay`, { method: "POST", headers: { "x-api-key": SECRET } });
  const profileStatus = async (distinct) =>
    (await fetch(`${worker.base}/api/profile?distinct_id=${distinct}`, { headers: { "x-api-key": SECRET } })).status;

  test("a shared device: deleting Alice takes her events and the device's anonymous ones, never Bob's", async () => {
    const now = Date.now();
    assert.equal((await collect(worker.base, [
      { n: "$pageview", i: "shared-anon", d: "shared-laptop", ts: now },
      { n: "Signed In", i: "shared-alice", d: "shared-laptop", id: "shared-alice", ts: now },
      { n: "Signed In", i: "shared-bob", d: "shared-laptop", id: "shared-bob", ts: now },
      { n: "$pageview", i: "shared-tablet", d: "shared-tablet", ts: now },
    ])).status, 202);
    await waitForEvents(worker.base, (e) => e.filter((x) => x.insert_id.startsWith("shared-")).length === 4);
    const answer = await erase("shared-alice");
    assert.equal(answer.deleted.events, 2);
    assert.equal(answer.devices, 1);
    assert.equal(answer.tombstones, 2, "one for her, one for the laptop");
    const left = (await exportEvents(worker.base)).filter((x) => x.insert_id.startsWith("shared-")).map((x) => x.insert_id).sort();
    assert.deepEqual(left, ["shared-bob", "shared-tablet"]);
  });

  test("every id the identity map links with the person goes with them, and the map forgets them", async () => {
    const time = Math.floor(Date.now() / 1000);
    const track = (events) => fetch(`${worker.base}/track?verbose=1&data=${encodeURIComponent(Buffer.from(JSON.stringify(events)).toString("base64"))}`);
    const props = (extra) => ({ token: TOKEN, time, ...extra });
    const sent = await track([
      { event: "$pageview", properties: props({ distinct_id: "$device:idn-dev", $device_id: "idn-dev", $insert_id: "idn-anon" }) },
      { event: "$identify", properties: props({ distinct_id: "idn-user", $anon_distinct_id: "$device:idn-dev", $insert_id: "idn-identify" }) },
      { event: "Purchase", properties: props({ distinct_id: "idn-user", $insert_id: "idn-known" }) },
    ]);
    assert.deepEqual(await sent.json(), { status: 1, error: null });
    const identity = async (id) => (await (await fetch(`${worker.base}/api/identity?distinct_id=${encodeURIComponent(id)}`, { headers: { "x-api-key": SECRET } })).json());
    const deadline = Date.now() + 15_000;
    while ((await identity("idn-user")).distinct_ids?.length !== 2 && Date.now() < deadline) await sleep(250);
    assert.deepEqual((await identity("idn-user")).distinct_ids, ["$device:idn-dev", "idn-user"]);
    await waitForEvents(worker.base, (e) => e.filter((x) => x.insert_id.startsWith("idn-")).length === 3);
    const answer = await erase("idn-user");
    assert.equal(answer.deleted.events, 3, "the anonymous id's pageview too");
    assert.equal(answer.deleted.identities, 2);
    assert.equal(answer.tombstones, 3, "two ids and the device");
    assert.equal((await exportEvents(worker.base)).filter((x) => x.insert_id.startsWith("idn-")).length, 0);
    assert.deepEqual((await identity("$device:idn-dev")).distinct_ids, ["$device:idn-dev"], "the map holds nothing of them");
  });

  test("dead letters lose only the person's events: not others' in the same letter, not another project's, not a substring", async () => {
    const t = Date.now() - 60_000;
    const mixed = job([canonical("demo", "dl-u", "dl-user", null, t), canonical("demo", "dl-v", "dl-other", null, t)]);
    const elsewhere = job([canonical("other", "dl-u-other", "dl-user", null, t)]);
    const lookalike = job([{ ...canonical("demo", "dl-w", "dl-user2", null, t), properties: { friend: "dl-user" } }]);
    for (const body of [mixed, elsewhere, lookalike, profileJob("dl-user", t)]) putLetter(body);
    const answer = await erase("dl-user");
    assert.equal(answer.deleted.dead_letters, 2, "the mixed letter rewritten, the profile letter removed");
    const bodies = d1("SELECT body FROM dead_letters WHERE body LIKE '%dl-%'", worker.persistDir).map((r) => JSON.parse(r.body));
    const ids = bodies.map((b) => (b.events ?? []).map((e) => e.insert_id).join(",") || b.kind).sort();
    assert.deepEqual(ids, ["dl-u-other", "dl-v", "dl-w"]);
    d1("DELETE FROM dead_letters WHERE body LIKE '%dl-%'", worker.persistDir);
  });

  test("the person's events and profile updates that arrive after the deletion (outbox, dead-letter replay) are dropped; others' stored", async () => {
    const before = Date.now() - 60_000;
    assert.equal((await collect(worker.base, [{ n: "Signed In", i: "late-known", d: "late-dev", id: "late-user", ts: Date.now() }])).status, 202);
    await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "late-known"));
    await erase("late-user");
    // Accepted before the deletion, stored after: an outbox row a crashed
    // queue left (the cron sweep queues it again) and dead letters replayed.
    const outbox = job([
      canonical("demo", "late-ob-user", "late-user", "late-dev", before),
      canonical("demo", "late-ob-anon", "late-dev", "late-dev", before),
      canonical("demo", "late-ob-other", "late-other", "other-dev", before),
    ], "late-outbox");
    d1(`INSERT INTO outbox (id, body, queued_at_ms) VALUES ('late-outbox', ${sql(outbox)}, 0)`, worker.persistDir);
    putLetter(job([canonical("demo", "late-dl-user", "late-user", null, before), canonical("demo", "late-dl-other", "late-other", null, before)]));
    putLetter(profileJob("late-user", before));
    putLetter(profileJob("late-other", before));
    await worker.runCron();
    assert.equal((await replay()).status, 200);
    // The signal: the other person's events and profile from the same messages are stored.
    await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "late-ob-other") && e.some((x) => x.insert_id === "late-dl-other"));
    const deadline = Date.now() + 15_000;
    while ((await profileStatus("late-other")) !== 200 && Date.now() < deadline) await sleep(250);
    assert.equal(await profileStatus("late-other"), 200);
    const left = (await exportEvents(worker.base)).filter((x) => x.insert_id.startsWith("late-")).map((x) => x.insert_id).sort();
    assert.deepEqual(left, ["late-dl-other", "late-ob-other"]);
    assert.equal(await profileStatus("late-user"), 404);
    assert.equal(d1("SELECT COUNT(*) AS n FROM outbox WHERE id = 'late-outbox'", worker.persistDir)[0].n, 0, "the outbox row is done");
    // New activity after the deletion is stored as usual.
    assert.equal((await collect(worker.base, [{ n: "Came Back", i: "late-new", d: "late-dev", id: "late-user" }])).status, 202);
    await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "late-new"));
  });

  test("events held in the queue while the person is deleted are dropped when they are stored", async () => {
    // A trigger makes D1 refuse the person's rows, so their message waits
    // in the queue (retried) until the trigger goes, after the deletion.
    d1("CREATE TRIGGER hold_for_test BEFORE INSERT ON events WHEN NEW.distinct_id = 'held-user' BEGIN SELECT RAISE(ABORT, 'held for the test'); END", worker.persistDir);
    try {
      assert.equal((await collect(worker.base, [
        { n: "Held", i: "held-user-1", d: "held-dev", id: "held-user" },
        { n: "Held", i: "held-other-1", d: "held-dev-2", id: "held-other" },
      ])).status, 202);
      const deadline = Date.now() + 15_000;
      while (!worker.log().includes("held for the test") && Date.now() < deadline) await sleep(100);
      assert.ok(worker.log().includes("held for the test"), "the first attempt was refused");
      await erase("held-user");
    } finally {
      d1("DROP TRIGGER hold_for_test", worker.persistDir);
    }
    // The message comes again from the queue (or, had its retries run out
    // meanwhile, from a dead-letter replay); the other person's event in it
    // is the signal that it was stored.
    const deadline = Date.now() + 60_000;
    let stored = [];
    while (Date.now() < deadline && !stored.some((x) => x.insert_id === "held-other-1")) {
      if (d1("SELECT COUNT(*) AS n FROM dead_letters WHERE body LIKE '%held-other-1%'", worker.persistDir)[0].n > 0) await replay();
      await sleep(500);
      stored = await exportEvents(worker.base);
    }
    assert.ok(stored.some((x) => x.insert_id === "held-other-1"), "the held message was stored in the end");
    assert.ok(!stored.some((x) => x.insert_id === "held-user-1"), "without the deleted person's event");
  });

});

describe("profile caps", () => {
  // ip=0: no `$country_code` from the request, so the counts below are the
  // test's own properties and the `$last_seen` that /engage's $set adds.
  const engage = (updates) => fetch(`${worker.base}/engage?verbose=1&ip=0`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `data=${encodeURIComponent(Buffer.from(JSON.stringify(updates)).toString("base64"))}`,
  });
  const update = (id, ops) => ({ $token: TOKEN, $distinct_id: id, ...ops });
  const props = (prefix, n, value = 0) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, value]));
  async function profile(id) {
    const r = await fetch(`${worker.base}/api/profile?distinct_id=${id}`, { headers: { "x-api-key": SECRET } });
    return r.status === 200 ? (await r.json()).properties : null;
  }
  /** Polls the profile until `predicate` holds (the consumer stored what was sent). */
  async function stored(id, predicate) {
    const deadline = Date.now() + 15_000;
    let last;
    while (Date.now() < deadline) {
      last = await profile(id);
      if (last && predicate(last)) return last;
      await sleep(250);
    }
    throw new Error(`profile ${id} never matched: ${JSON.stringify(last)?.slice(0, 300)}`);
  }
  const ok = async (r) => assert.deepEqual(await r.json(), { status: 1, error: null });
  const refused = async (r, pattern) => {
    const body = await r.json();
    assert.equal(body.status, 0);
    assert.match(body.error, pattern);
  };

  test("2000 properties per profile: at the cap accepted, one more refused with /engage's error (and Vemetric's)", async () => {
    const id = "cap-props";
    const batch = Array.from({ length: 7 }, (_, k) => update(id, { $set: props(`k${k}-`, 255) }));
    // 1999 of its own: /engage's $set adds `$last_seen`, the 2000th.
    batch.push(update(id, { $set: props("last-", 214) }));
    await ok(await engage(batch));
    await stored(id, (p) => Object.keys(p).length === 2000);
    await refused(await engage([update(id, { $set: { one_more: 1 } })]), /'\$set' is invalid: would give the profile more than 2000 properties/);
    const vemetric = await fetch(`${worker.base}/u`, { method: "POST", headers: { token: TOKEN, "content-type": "application/json" }, body: JSON.stringify({ identifier: id, data: { set: { one_more: 1 } } }) });
    assert.equal(vemetric.status, 400);
    assert.equal(await vemetric.text(), "Invalid!");
    // Changing a property it has is fine; once stored, nothing else came.
    await ok(await engage([update(id, { $set: { "k0-0": "changed" } })]));
    const after = await stored(id, (p) => p["k0-0"] === "changed");
    assert.equal(Object.keys(after).length, 2000);
    assert.equal(after.one_more, undefined);
  });

  test("1000 items per list: $union and $append past it are refused, a union of held values passes", async () => {
    const id = "cap-list";
    const items = (n) => Array.from({ length: n }, (_, i) => i);
    await refused(await engage([update(id, { $union: { tags: items(1001) } })]), /'\$union' is invalid: would make list 'tags' longer than 1000 items/);
    await ok(await engage([update(id, { $union: { tags: items(1000) } })]));
    await stored(id, (p) => p.tags?.length === 1000);
    await refused(await engage([update(id, { $append: { tags: "x" } })]), /'\$append' is invalid: would make list 'tags' longer than 1000 items/);
    await ok(await engage([update(id, { $union: { tags: [0, 1, 999] }, $set: { marker: 1 } })]));
    const after = await stored(id, (p) => p.marker === 1);
    assert.equal(after.tags.length, 1000);
    assert.equal(after.tags.at(-1), 999);
  });

  test("256 KiB per profile: the update that would pass it is refused", async () => {
    const id = "cap-bytes";
    const big = (k) => update(id, { $set: props(`b${k}-`, 7, "x".repeat(8190)) });
    await ok(await engage([big(0), big(1), big(2), big(3)]));
    // 28 of its own and `$last_seen`, which /engage's $set adds.
    await stored(id, (p) => Object.keys(p).length === 29);
    await refused(await engage([big(4)]), /would make the profile larger than 262144 bytes/);
    await ok(await engage([update(id, { $set: { marker: 1 } })]));
    const after = await stored(id, (p) => p.marker === 1);
    assert.equal(Object.keys(after).length, 30, "nothing of the refused update (the marker is the 30th)");
  });
});

describe("storage outage", () => {
  test("events accepted while D1 fails are dead-lettered, then replayed exactly once", async () => {
    d1("ALTER TABLE events RENAME TO events_down", worker.persistDir);
    const ids = Array.from({ length: 12 }, (_, i) => `outage-${i}`);
    try {
      for (let i = 0; i < ids.length; i += 4) {
        const batch = ids.slice(i, i + 4).map((id) => ({ n: "during outage", i: id, d: "d-out", ts: Date.now() }));
        assert.equal((await collect(worker.base, batch)).status, 202);
      }
      const deadline = Date.now() + 60_000;
      let kept = [];
      while (Date.now() < deadline && kept.length < ids.length) {
        kept = d1("SELECT body FROM dead_letters", worker.persistDir).flatMap((r) => JSON.parse(r.body).events ?? []).map((e) => e.insert_id).filter((id) => id.startsWith("outage-"));
        await sleep(1000);
      }
      assert.equal(kept.length, ids.length, "every accepted event is kept");
    } finally {
      d1("ALTER TABLE events_down RENAME TO events", worker.persistDir);
    }
    // Replay twice: the second finds nothing; the rows are there once.
    const first = await (await fetch(`${worker.base}/api/dead-letters/replay`, { method: "POST", headers: { "x-api-key": SECRET } })).json();
    assert.ok(first.replayed >= 3);
    const second = await (await fetch(`${worker.base}/api/dead-letters/replay`, { method: "POST", headers: { "x-api-key": SECRET } })).json();
    assert.equal(second.replayed, 0);
    const rows = await waitForEvents(worker.base, (e) => e.filter((x) => x.insert_id.startsWith("outage-")).length === ids.length);
    await settled(worker);
    const stored = (await exportEvents(worker.base)).filter((x) => x.insert_id.startsWith("outage-"));
    assert.deepEqual(stored.map((x) => x.insert_id).sort(), [...ids].sort());
    assert.equal(rows.length >= ids.length, true);
  });
});

describe("script injection", () => {
  // The policy every page but the dashboard carries (www/_headers).
  const SITE_CSP =
    "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; img-src 'self' data:; " +
    "connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

  test("cross-origin.html?worker=https://evil.example never requests the foreign host", async () => {
    const browser = await launchBrowser();
    const site = await serveOrigin(Object.fromEntries(["cross-origin.html", "cross-origin.js", "site.js", "site.css"].map((f) => {
      const text = readFileSync(path.join(ROOT, "www", f), "utf8").replaceAll("http://127.0.0.1:8787", worker.base);
      return [`/${f}`, { type: f.endsWith(".html") ? "text/html" : f.endsWith(".css") ? "text/css" : "text/javascript", body: text }];
    })));
    try {
      const context = await browser.newContext({ userAgent: BROWSER_UA });
      const foreign = [];
      await context.route("**/*", (route) => {
        const url = new URL(route.request().url());
        if (url.hostname.endsWith("evil.example")) {
          foreign.push(url.href);
          return route.abort();
        }
        return route.continue();
      });
      const page = await context.newPage();
      // On the worker's origin (the development bundle serves the page):
      // the page's own script has run once it shows the worker's origin.
      await page.goto(`${worker.base}/cross-origin.html?worker=https://evil.example`);
      await page.waitForFunction(() => document.getElementById("worker-origin").textContent !== "");
      assert.notEqual(await page.textContent("#worker-origin"), "https://evil.example");
      // On a second origin, where the tracker counts the page: its pageview
      // stored is the signal that every script of the page has run.
      await page.goto(`${site.base}/cross-origin.html?worker=https://evil.example`);
      await waitForEvents(worker.base, (events) => events.some((e) => e.url?.startsWith(`${site.base}/cross-origin.html`)));
      assert.deepEqual(foreign, [], "no request to the host named in the query");
      await context.close();
    } finally {
      await browser.close();
      await site.close();
    }
  });

  test("every HTML page the worker serves carries a CSP without inline scripts", async () => {
    const dir = path.join(ROOT, "edge-worker/public");
    const pages = readdirSync(dir, { recursive: true }).filter((f) => f.endsWith(".html"));
    assert.ok(pages.length >= 5, `pages: ${pages}`);
    for (const page of pages) {
      const r = await fetch(`${worker.base}/${page}`); // follows /x.html -> /x
      assert.equal(r.status, 200, page);
      assert.match(await r.text(), /<html/i, page);
      const csp = r.headers.get("content-security-policy") ?? "";
      assert.match(csp, /script-src 'self'[;' ]/, `${page}: ${csp}`);
      assert.doesNotMatch(csp, /'unsafe-inline'|'unsafe-eval'|\*/, `${page}: ${csp}`);
      assert.match(csp, /frame-ancestors 'none'/, page);
      if (!page.startsWith("dashboard")) assert.equal(csp, SITE_CSP, page);
      assert.equal(r.headers.get("x-content-type-options"), "nosniff", page);
    }
  });

  test("the production bundle (deploy dry run) ships no demo page", () => {
    const out = mkdtempSync(path.join(tmpdir(), "edgetrack-dry-run-"));
    try {
      // At debug level the dry run lists every file of the assets directory.
      const log = execFileSync(path.join(ROOT, "node_modules/.bin/wrangler"),
        ["deploy", "--dry-run", "--env", "production", "--outdir", out], {
          cwd: path.join(ROOT, "edge-worker"),
          env: { ...process.env, WRANGLER_LOG: "debug", WRANGLER_SEND_METRICS: "false", CI: "true" },
          stdio: "pipe",
        }).toString();
      const lines = log.split("\n");
      const start = lines.findIndex((l) => /Read \d+ files? from the assets directory/.test(l));
      assert.ok(start >= 0, "the dry run read an assets directory");
      const count = Number(lines[start].match(/Read (\d+) file/)[1]);
      const files = lines.slice(start + 1, start + 1 + count).map((l) => l.trim()).sort();
      assert.equal(files.length, count);
      for (const f of files) assert.match(f, /^\/\S+$/, "one file per line");
      for (const wanted of ["/t.js", "/t.wasm", "/dashboard.html", "/dashboard.js", "/_headers"]) {
        assert.ok(files.includes(wanted), `${wanted} ships: ${files}`);
      }
      const html = files.filter((f) => f.endsWith(".html"));
      assert.deepEqual(html, ["/dashboard.html"], "the dashboard is the only page");
      for (const demo of ["/index.html", "/cross-origin.js", "/site.js", "/spa", "/files"]) {
        assert.ok(!files.some((f) => f.startsWith(demo)), `${demo} must not ship: ${files}`);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe("configuration", () => {
  test("PROJECTS with a key used twice is refused when first read: 503s, one log line that names no key", async () => {
    const shared = "shared-key-9f2c";
    const projects = { a: { token: shared, secret: "a-secret-71d0" }, b: { token: "b-token-33e1", secret: shared } };
    const bad = await startWorker({ vars: { PROJECTS: JSON.stringify(projects) } });
    try {
      const r = await collect(bad.base, [{ n: "x", d: "d" }], { token: shared });
      assert.equal(r.status, 503);
      assert.equal(typeof (await r.json()).error, "string", "in /collect's own shape");
      const again = await fetch(`${bad.base}/public/events`, { headers: { "x-api-key": "a-secret-71d0" } });
      assert.equal(again.status, 503);
      assert.equal((await again.json()).status, 0, "in Emp-Mix's own shape");
      // The worker's output reaches us a moment after its answers: wait
      // for wrangler's line of the last request, then count.
      const deadline = Date.now() + 10_000;
      while (!/GET \/public\/events 503/.test(bad.log()) && Date.now() < deadline) await sleep(100);
      const log = bad.log();
      assert.match(log, /GET \/public\/events 503/);
      const refusals = log.split("\n").filter((l) => l.includes("PROJECTS is refused"));
      assert.equal(refusals.length, 1, `checked once, not per request:\n${refusals.join("\n")}`);
      assert.match(refusals[0], /project b's secret is also project a's token/);
      for (const key of [shared, "a-secret-71d0", "b-token-33e1"]) assert.ok(!log.includes(key), `the log shows ${key}`);
    } finally {
      await bad.stop();
    }
  });
});

describe("rate limits", () => {
  const PERIOD_MS = 10_000;
  const windowOf = (ms) => Math.floor(ms / PERIOD_MS);
  /** Waits for the start of a fresh 10-second window of the local limiter
   *  (fixed windows on the wall clock), so a burst falls inside one. */
  async function freshWindow() {
    while (Date.now() % PERIOD_MS > 300) await sleep(50);
  }
  const importOne = (base, id) => fetch(`${base}/import`, {
    method: "POST",
    headers: { authorization: `Basic ${Buffer.from(`${SECRET}:`).toString("base64")}`, "content-type": "application/json" },
    body: JSON.stringify([{ event: "server", properties: { time: Date.now(), distinct_id: "rl-server", $insert_id: id } }]),
  });
  const count = (answers, status) => answers.filter((r) => r.status === status).length;

  test("the public token and the secret key spend separate budgets, set per project in PROJECTS", async () => {
    const projects = { demo: { token: TOKEN, secret: SECRET, rate_limits: { public: 200, secret: 100 } } };
    const w = await startWorker({ vars: { PROJECTS: JSON.stringify(projects) } });
    try {
      // Browsers spend the public budget of 200 (two slots); the server's
      // imports in the same window still get through. A burst that
      // crossed into the next window proves nothing: it is tried again.
      let browsers, imports;
      for (let attempt = 1; ; attempt++) {
        await freshWindow();
        const started = windowOf(Date.now());
        browsers = await Promise.all(Array.from({ length: 230 }, (_, i) => collect(w.base, [{ n: "burst", i: `rl-${attempt}-${i}`, d: "d-rl" }])));
        imports = await Promise.all(Array.from({ length: 3 }, (_, i) => importOne(w.base, `rl-imp-${attempt}-${i}`)));
        if (windowOf(Date.now()) === started || attempt === 3) break;
      }
      assert.deepEqual({ accepted: count(browsers, 202), limited: count(browsers, 429) }, { accepted: 200, limited: 30 });
      const refused = browsers.find((r) => r.status === 429);
      assert.equal(refused.headers.get("retry-after"), "10");
      assert.deepEqual(await refused.json(), { error: "too many requests" });
      assert.deepEqual(imports.map((r) => r.status), [200, 200, 200], "the secret key's budget is untouched");

      // The secret budget of 100 on its own, in a window of its own.
      let server;
      for (let attempt = 1; ; attempt++) {
        await freshWindow();
        const started = windowOf(Date.now());
        server = await Promise.all(Array.from({ length: 110 }, (_, i) => importOne(w.base, `rl-srv-${attempt}-${i}`)));
        if (windowOf(Date.now()) === started || attempt === 3) break;
      }
      assert.deepEqual({ accepted: count(server, 200), limited: count(server, 429) }, { accepted: 100, limited: 10 });
      const body = await server.find((r) => r.status === 429).json();
      assert.equal(body.code, 429, "in /import's own shape");
    } finally {
      await w.stop();
    }
  });

  test("past the per-IP budget: 429 with Retry-After in the endpoint's own shape", async () => {
    // 400 cheap requests (nothing to store: /decide only answers) in one
    // limiter window: exactly the budget of 300 pass. Then, in the same
    // window, each API answers its refusal in its own shape. A burst that
    // crossed into the next window proves nothing: it is tried again.
    let answers, browser, mixpanel;
    for (let attempt = 1; ; attempt++) {
      await freshWindow();
      const started = windowOf(Date.now());
      answers = await Promise.all(Array.from({ length: 400 }, () => fetch(`${worker.base}/decide`)));
      browser = await collect(worker.base, [{ n: "burst", d: "d" }]);
      mixpanel = await fetch(`${worker.base}/track?verbose=1&data=e30`);
      if (windowOf(Date.now()) === started || attempt === 3) break;
    }
    const statuses = answers.map((r) => r.status);
    assert.deepEqual({ accepted: count(answers, 200), limited: count(answers, 429) }, { accepted: 300, limited: 100 },
      `statuses: ${[...new Set(statuses)]}`);
    assert.equal(browser.status, 429);
    assert.equal(browser.headers.get("retry-after"), "10");
    assert.deepEqual(await browser.json(), { error: "too many requests" });
    assert.equal(mixpanel.status, 429);
    assert.deepEqual(await mixpanel.json(), { status: 0, error: "too many requests" });
  });


});
