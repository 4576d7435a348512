// The read-only viewer key (issue 16) through real `wrangler dev`: it opens
// the stats API and nothing else. Every endpoint that imports, exports raw
// events, reads or deletes people, replays or scrubs answers 403 to it (the
// key is known, its kind is wrong), and the data a refused delete named is
// still there afterwards.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, collect, waitForEvents, exportEvents, SECRET, TOKEN } from "./harness.mjs";

const VIEWER = "demo-viewer";
let worker;
before(async () => (worker = await startWorker()));
after(async () => worker?.stop());

const basic = (key) => `Basic ${Buffer.from(`${key}:`).toString("base64")}`;
const b64 = (value) => Buffer.from(JSON.stringify(value)).toString("base64");

test("the viewer key reads every stats view, by x-api-key and by Bearer", async () => {
  for (const path of ["/api/stats?period=7d", "/api/stats/breakdown?dim=page&period=30d", "/api/stats/realtime"]) {
    for (const headers of [{ "x-api-key": VIEWER }, { authorization: `Bearer ${VIEWER}` }]) {
      const r = await fetch(`${worker.base}${path}`, { headers });
      assert.equal(r.status, 200, `${path} ${JSON.stringify(Object.keys(headers))}`);
      assert.equal(typeof (await r.json()).d1?.rows_read, "number");
    }
  }
  // The secret still reads them; the public token does not.
  assert.equal((await fetch(`${worker.base}/api/stats`, { headers: { "x-api-key": SECRET } })).status, 200);
  assert.equal((await fetch(`${worker.base}/api/stats`, { headers: { "x-api-key": TOKEN } })).status, 403);
  // Basic auth is the export's (the secret's): a viewer key there is refused.
  assert.equal((await fetch(`${worker.base}/api/stats`, { headers: { authorization: basic(VIEWER) } })).status, 403);
});

test("the viewer key opens nothing else: 403 on import, raw export, people, deletion, replay, scrub and every ingest endpoint", async () => {
  const now = Date.now();
  const calls = [
    ["GET", "/public/events", { "x-api-key": VIEWER }],
    ["GET", "/api/2.0/export?from_date=2020-01-01&to_date=2030-01-01", { authorization: basic(VIEWER) }],
    ["GET", "/api/2.0/export?from_date=2020-01-01&to_date=2030-01-01", { "x-api-key": VIEWER }],
    ["GET", "/api/export?from_date=2020-01-01&to_date=2030-01-01", { authorization: `Bearer ${VIEWER}` }],
    ["GET", "/api/profile?distinct_id=viewer-victim", { "x-api-key": VIEWER }],
    ["GET", "/api/group?group_key=company&group_id=x", { "x-api-key": VIEWER }],
    ["GET", "/api/identity?distinct_id=viewer-victim", { "x-api-key": VIEWER }],
    ["POST", "/api/users/delete", { "x-api-key": VIEWER }, JSON.stringify({ distinct_id: "viewer-victim" })],
    ["POST", "/api/users/delete", { authorization: `Bearer ${VIEWER}` }, JSON.stringify({ distinct_id: "viewer-victim" })],
    ["POST", "/api/dead-letters/replay", { "x-api-key": VIEWER }],
    ["POST", "/api/archive/scrub", { "x-api-key": VIEWER }, JSON.stringify({ distinct_id: "viewer-victim" })],
    ["POST", "/import?strict=1", { authorization: basic(VIEWER), "content-type": "application/json" },
      JSON.stringify([{ event: "forged", properties: { time: now, distinct_id: "x", $insert_id: "forged-1" } }])],
    ["POST", "/public/track/bulk", {}, JSON.stringify({ apiKey: VIEWER, events: [{ event: "forged", distinct_id: "x" }] })],
    ["POST", "/public/track", {}, JSON.stringify({ apiKey: VIEWER, event: "forged", distinct_id: "x" })],
    ["POST", "/v1/event", { authorization: `Bearer ${VIEWER}` }, JSON.stringify({ name: "forged", userId: "x" })],
    ["POST", "/e", { token: VIEWER }, JSON.stringify({ name: "forged", url: "https://a.test/" })],
  ];
  for (const [method, path, headers, body] of calls) {
    const r = await fetch(`${worker.base}${path}`, { method, headers, body });
    assert.equal(r.status, 403, `${method} ${path} with the viewer key`);
  }
  const collected = await collect(worker.base, [{ n: "forged", d: "x", ts: now }], { token: VIEWER });
  assert.equal(collected.status, 403, "/collect with the viewer key");
  const engage = await fetch(`${worker.base}/engage?verbose=1&data=${b64({ $token: VIEWER, $distinct_id: "x", $set: { a: 1 } })}`);
  assert.equal((await engage.json()).status, 0, "/engage with the viewer key");
  const track = await fetch(`${worker.base}/track?verbose=1&data=${b64({ event: "forged", properties: { token: VIEWER, distinct_id: "x" } })}`);
  assert.equal((await track.json()).status, 0, "/track with the viewer key");
});

test("a delete refused to the viewer key deletes nothing; the same call with the secret does", async () => {
  await collect(worker.base, [{ n: "$pageview", i: "viewer-victim-1", d: "viewer-device", id: "viewer-victim", ts: Date.now() }]);
  await waitForEvents(worker.base, (e) => e.some((x) => x.insert_id === "viewer-victim-1"));
  const del = (key) =>
    fetch(`${worker.base}/api/users/delete`, { method: "POST", headers: { "x-api-key": key }, body: JSON.stringify({ distinct_id: "viewer-victim" }) });
  assert.equal((await del(VIEWER)).status, 403);
  assert.ok((await exportEvents(worker.base)).some((x) => x.insert_id === "viewer-victim-1"), "still stored after the refusal");
  const ok = await del(SECRET);
  assert.equal(ok.status, 200);
  assert.equal((await ok.json()).deleted.events, 1, "the secret's delete found the event the viewer's could not touch");
  assert.ok(!(await exportEvents(worker.base)).some((x) => x.insert_id === "viewer-victim-1"));
  // No forged event of the refused calls above was stored.
  assert.ok(!(await exportEvents(worker.base)).some((x) => x.event === "forged"));
});
