// The thin path: a page with one script tag -> tracker -> /collect -> KV ->
// Queue -> D1 -> GET /public/events, in real Chromium and real workerd.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, launchBrowser, humanPage, waitForEvents, exportEvents, settled, BROWSER_UA } from "./harness.mjs";

let worker, browser;
before(async () => {
  worker = await startWorker();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await worker?.stop();
});

test("a page view in Chromium is stored once and exported", async () => {
  const { page, context } = await humanPage(browser);
  const beacons = [];
  page.on("request", (r) => {
    if (r.url().endsWith("/collect")) beacons.push({ body: r.postData(), type: r.headers()["content-type"] });
  });
  await page.goto(`${worker.base}/`);
  const events = await waitForEvents(worker.base, (e) => e.length >= 1);
  assert.equal(events.length, 1);
  const [view] = events;
  assert.equal(view.event, "$pageview");
  assert.equal(view.url, `${worker.base}/`);
  assert.equal(view.title, "edgetrack demo: home");
  assert.match(view.insert_id, /^[A-Za-z0-9-]{1,36}$/);
  assert.ok(view.device_id, "a device id from the cookie");
  assert.equal(view.source, "browser");
  assert.equal(beacons.length, 1);
  assert.match(beacons[0].type, /^text\/plain/, "beacons are text/plain: no preflight");

  // The same beacon again (a retry) stores nothing new.
  for (let i = 0; i < 2; i++) {
    const r = await fetch(`${worker.base}/collect`, {
      method: "POST", body: beacons[0].body, headers: { "user-agent": BROWSER_UA, "content-type": "text/plain" },
    });
    assert.equal(r.status, 202);
  }
  await settled(worker);
  assert.equal((await exportEvents(worker.base)).length, 1);
  await context.close();
});

test("export needs the secret key: missing or wrong 401, public token 403", async () => {
  const missing = await fetch(`${worker.base}/public/events`);
  assert.equal(missing.status, 401);
  assert.deepEqual(await missing.json(), { status: 0, error: "missing or invalid credentials" });
  const wrong = await fetch(`${worker.base}/public/events`, { headers: { "x-api-key": "nope" } });
  assert.equal(wrong.status, 401);
  const publicKey = await fetch(`${worker.base}/public/events`, { headers: { "x-api-key": "demo-token" } });
  assert.equal(publicKey.status, 403);
});
