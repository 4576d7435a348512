// Vendors' official JavaScript clients pointed at our worker, changed in
// nothing but the host: mixpanel-browser in real Chromium on another
// origin, and @vemetric/node over https (it speaks nothing else).
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { startWorker, launchBrowser, humanPage, waitForEvents, exportEvents, settled, serveOrigin, SECRET, TOKEN } from "./harness.mjs";

const require = createRequire(import.meta.url);

async function profile(base, distinctId) {
  const r = await fetch(`${base}/api/profile?distinct_id=${encodeURIComponent(distinctId)}`, { headers: { "x-api-key": SECRET } });
  return r.status === 200 ? (await r.json()).properties : null;
}

async function waitForProfile(base, distinctId, predicate, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last = null;
  while (Date.now() < deadline) {
    last = await profile(base, distinctId);
    if (last && predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`profile never matched: ${JSON.stringify(last)}`);
}

describe("mixpanel-browser in Chromium", () => {
  let worker, browser, site;
  before(async () => {
    worker = await startWorker();
    browser = await launchBrowser();
    const library = readFileSync(require.resolve("mixpanel-browser/dist/mixpanel.umd.js"));
    const page = `<!doctype html><title>mp</title><script src="/mixpanel.js"></script>
<script>
  mixpanel.init("demo-token", { api_host: new URL(location.href).searchParams.get("api"), batch_flush_interval_ms: 300 });
  mixpanel.identify("mp-user-1");
  mixpanel.track("Played Video", { duration: 93, genre: "jazz" });
  mixpanel.people.set({ plan: "pro", $name: "Grace" });
  mixpanel.people.increment("videos", 2);
</script>`;
    site = await serveOrigin({
      "/mixpanel.js": { type: "text/javascript", body: library },
      "/mp.html": { type: "text/html", body: page },
    });
  });
  after(async () => {
    await browser?.close();
    await site?.close();
    await worker?.stop();
  });

  test("track, identify and people.set arrive from another origin", async () => {
    const { page, context } = await humanPage(browser);
    const failures = [];
    page.on("requestfailed", (r) => failures.push(r.url()));
    await page.goto(`${site.base}/mp.html?api=${encodeURIComponent(worker.base)}`);
    const events = await waitForEvents(worker.base, (e) => e.some((x) => x.event === "Played Video"));
    const played = events.find((x) => x.event === "Played Video");
    assert.equal(played.distinct_id, "mp-user-1");
    assert.equal(played.properties.genre, "jazz");
    assert.equal(played.properties.duration, 93);
    assert.equal(played.source, "mixpanel_track");
    const identify = events.find((x) => x.event === "$identify");
    assert.ok(identify, "identify sends $identify");
    // Its $anon_distinct_id (the device id from before) joins the user in
    // the identity map, so the anonymous events count as the same person.
    const anon = identify.properties.$anon_distinct_id;
    assert.match(anon, /^\$device:/);
    const deadline = Date.now() + 15_000;
    let person;
    while (Date.now() < deadline && person?.canonical_id !== "mp-user-1") {
      const r = await fetch(`${worker.base}/api/identity?distinct_id=${encodeURIComponent(anon)}`, { headers: { "x-api-key": SECRET } });
      person = await r.json();
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.deepEqual(person, { distinct_id: anon, canonical_id: "mp-user-1", distinct_ids: [anon, "mp-user-1"].sort() });
    const props = await waitForProfile(worker.base, "mp-user-1", (p) => p.videos === 2);
    assert.equal(props.plan, "pro");
    assert.equal(props.$name, "Grace");
    assert.deepEqual(failures, [], "no request failed (CORS with credentials works)");
    await context.close();
  });
});

describe("@vemetric/node over https", () => {
  let worker;
  const previousTls = process.env.NODE_TLS_REJECT_UNAUTHORIZED;
  before(async () => {
    process.env.NODE_TLS_REJECT_UNAUTHORIZED = "0"; // the dev certificate is self-signed
    worker = await startWorker({ https: true });
  });
  after(async () => {
    await worker?.stop();
    if (previousTls === undefined) delete process.env.NODE_TLS_REJECT_UNAUTHORIZED;
    else process.env.NODE_TLS_REJECT_UNAUTHORIZED = previousTls;
  });

  test("trackEvent and updateUser are stored", async () => {
    const { Vemetric } = require("@vemetric/node");
    const vemetric = new Vemetric({ token: "demo-token", host: worker.base });
    const errors = [];
    const original = console.error;
    console.error = (...args) => errors.push(args.map(String).join(" "));
    try {
      await vemetric.trackEvent("signup", {
        userIdentifier: "vm-user-1",
        userDisplayName: "Vera",
        eventData: { plan: "pro", seats: 4 },
        userData: { set: { company: "Acme" }, setOnce: { first_plan: "pro" } },
      });
      await vemetric.updateUser({ userIdentifier: "vm-user-1", userData: { set: { role: "admin" } } });
    } finally {
      console.error = original;
    }
    assert.deepEqual(errors, [], "the SDK logged no error");
    const events = await waitForEvents(worker.base, (e) => e.some((x) => x.event === "signup"));
    const signup = events.find((x) => x.event === "signup");
    assert.equal(signup.distinct_id, "vm-user-1");
    assert.equal(signup.source, "vemetric");
    assert.deepEqual(signup.properties, { plan: "pro", seats: "4" }, "customData values become strings");
    const props = await waitForProfile(worker.base, "vm-user-1", (p) => p.role === "admin" && p.company === "Acme");
    assert.equal(props.first_plan, "pro");
  });

  test("a wrong token is refused and nothing is stored", async () => {
    const r = await fetch(`${worker.base}/e`, {
      method: "POST",
      headers: { "content-type": "application/json", token: "wrong" },
      body: JSON.stringify({ name: "x", userIdentifier: "vm-nobody" }),
    });
    assert.equal(r.status, 401);
    // The same event with the right token is stored: the refusal is what kept it out.
    const ok = await fetch(`${worker.base}/e`, {
      method: "POST",
      headers: { "content-type": "application/json", token: TOKEN, "user-agent": "vemetric-test" },
      body: JSON.stringify({ name: "x-control", userIdentifier: "vm-nobody" }),
    });
    assert.equal(ok.status, 200);
    await waitForEvents(worker.base, (e) => e.some((x) => x.event === "x-control" && x.distinct_id === "vm-nobody"));
    await settled(worker);
    const stored = (await exportEvents(worker.base)).filter((x) => x.distinct_id === "vm-nobody");
    assert.deepEqual(stored.map((x) => x.event), ["x-control"]);
  });
});
