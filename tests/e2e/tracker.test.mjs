// The tracker in real Chromium against real `wrangler dev`: what a person's
// visit stores, counted exactly through the export API. First visit (private
// by default) and the cookie with consent, SPA history navigations, outbound clicks (same tab, new tab, middle
// click), consent (pending, declined, accepted), bots (automation and a
// crawler's user agent) and delivery after the worker was down.
// External sites are fulfilled by context.route: no real network is used.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { rmSync } from "node:fs";
import {
  startWorker, launchBrowser, humanPage, collect, exportEvents, waitForEvents, waitForStats, settled, trackerIdle, trackerStarted, stats, sleep, serveOrigin,
} from "./harness.mjs";

const DAY_S = 24 * 60 * 60;
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const COOKIE = "et_id"; // tracker-wasm/README.md: data-cookie-name defaults to et_id
// The modules t.js and t.full.js (and t.mjs) load: named after their contents (the Makefile's hashed_wasm).
const MODULE = /\/t\.[0-9a-f]{10}\.wasm$/;
const FULL_MODULE = /\/t\.full\.[0-9a-f]{10}\.wasm$/;

let worker, browser;
before(async () => {
  worker = await startWorker({ vars: { RATE_LIMITS: "off" } });
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await worker?.stop();
  // The offline test restarts the worker on the same state folder, which
  // the restarted worker then does not own.
  if (worker) rmSync(worker.persistDir, { recursive: true, force: true });
});

/** The insert_ids stored so far; `fresh(seen)` gives the rows stored since. */
async function seenIds() {
  return new Set((await exportEvents(worker.base)).map((e) => e.insert_id));
}
const fresh = (seen) => (events) => events.filter((e) => !seen.has(e.insert_id));

/** Waits until the rows stored since `seen` satisfy `predicate`, then lets
 *  anything still on its way arrive, and returns those rows. */
async function newRows(seen, predicate) {
  await waitForEvents(worker.base, (events) => predicate(fresh(seen)(events)));
  await settled(worker);
  return fresh(seen)(await exportEvents(worker.base));
}

/** Resolves once the tracker's first beacon left: the module runs. */
const firstBeacon = (page) => page.waitForRequest((r) => r.url() === `${worker.base}/collect`, { timeout: 15_000 });

/** Stops external sites from being reached: each answers "ok". */
async function fulfillExternal(context) {
  for (const host of ["https://example.com/**", "https://www.rust-lang.org/**"]) {
    await context.route(host, (r) => r.fulfill({ status: 200, contentType: "text/html", body: "<title>ok</title>ok" }));
  }
}

/** A page at `path` on the worker's origin whose only content is the tracker's tag with `attributes` (and data-local: the worker is on 127.0.0.1). */
async function tagPage(context, path, attributes, title = "tagged") {
  const url = `${worker.base}${path}`;
  await context.route(url, (r) => r.fulfill({
    status: 200,
    contentType: "text/html",
    body: `<!doctype html><title>${title}</title><script defer src="/t.js" data-token="demo-token" data-local ${attributes}></script><p>${title}</p>`,
  }));
  return url;
}

/** Grants consent before the tracker runs, as a consent banner's script would. */
const grantFirst = (context) => context.addInitScript(() => {
  window.edgetrack = function () { (edgetrack.q = edgetrack.q || []).push(arguments); };
  edgetrack("consent", "granted");
});

test("a first visit without data-consent: one $pageview sent at once, no cookie, no storage, the server's cookieless id", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  const beacon = firstBeacon(page);
  await page.goto(`${worker.base}/`, { referer: "http://news.example/story?id=7" });
  const request = await beacon;
  // The first request carries the pageview itself (no timer waits for company).
  assert.deepEqual(JSON.parse(request.postData()).e.map((e) => e.n), ["$pageview"]);
  for (const e of JSON.parse(request.postData()).e) assert.ok(!("d" in e) && !("id" in e), JSON.stringify(e));
  const rows = await newRows(seen, (r) => r.length >= 1);
  assert.equal(rows.length, 1, JSON.stringify(rows));
  const [view] = rows;
  assert.equal(view.event, "$pageview");
  assert.equal(view.url, `${worker.base}/`);
  assert.equal(view.title, "edgetrack demo: home");
  // Playwright's `referer` becomes document.referrer as given.
  assert.equal(await page.evaluate(() => document.referrer), "http://news.example/story?id=7");
  assert.equal(view.referrer, "http://news.example/story?id=7");
  assert.match(view.distinct_id, /^cl-/, "the server's cookieless daily hash");
  assert.deepEqual(await context.cookies(), [], "no cookie");
  assert.deepEqual(await page.evaluate(() => Object.keys(localStorage)), [], "no localStorage");
  await context.close();
});

test("data-consent=granted: a device cookie, Lax, Path=/, 390 days (data-cookie-days=30: 30 days), not Secure on http", async () => {
  for (const [attributes, days] of [['data-consent="granted"', 390], ['data-consent="granted" data-cookie-days="30"', 30]]) {
    const seen = await seenIds();
    const { context, page } = await humanPage(browser);
    const url = await tagPage(context, "/granted", attributes);
    await page.goto(url);
    const rows = await newRows(seen, (r) => r.length >= 1);
    assert.deepEqual(rows.map((r) => r.event), ["$pageview"]);
    const cookies = (await context.cookies(worker.base)).filter((c) => c.name === COOKIE);
    assert.equal(cookies.length, 1, "one device cookie");
    const [cookie] = cookies;
    assert.equal(cookie.sameSite, "Lax");
    assert.equal(cookie.path, "/");
    assert.equal(cookie.secure, false, "no Secure on http");
    const lifetime = (cookie.expires - Date.now() / 1000) / DAY_S;
    assert.ok(lifetime <= days && lifetime > days - 1, `${attributes}: expires in ${lifetime} days`);
    assert.equal(rows[0].device_id, cookie.value, "the event carries the cookie's device id");
    await context.close();
  }
});

test("SPA: pushState x3, replaceState to the same URL, back, forward are 6 pageviews", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  const base = `${worker.base}/spa/`;
  const beacon = firstBeacon(page);
  await page.goto(base);
  // History changes before the module runs are read at the URL it finds
  // then; a person clicks after the page is up.
  await beacon;
  await page.click("#route-docs");
  await page.waitForURL(`${base}?view=docs`);
  await page.click("#route-home");
  await page.waitForURL(base);
  await page.click("#route-pricing");
  await page.waitForURL(`${base}?view=pricing`);
  // replaceState with the same URL (the state changes): not a pageview.
  await page.click("#filter-yearly");
  assert.equal(await page.evaluate(() => history.state.filter), "yearly");
  await page.goBack();
  await page.waitForURL(base);
  await page.goForward();
  await page.waitForURL(`${base}?view=pricing`);

  // README/pageview.rs: every history change is a pageview unless the URL
  // is the one last counted.
  const expected = [
    [base, "edgetrack demo: app home"],
    [`${base}?view=docs`, "edgetrack demo: docs"],
    [base, "edgetrack demo: app home"],
    [`${base}?view=pricing`, "edgetrack demo: pricing"],
    [base, null], // back
    [`${base}?view=pricing`, null], // forward
  ];
  const rows = await newRows(seen, (r) => r.length >= expected.length);
  assert.equal(rows.length, expected.length, JSON.stringify(rows.map((r) => [r.event, r.url])));
  assert.ok(rows.every((r) => r.event === "$pageview"));
  const ordered = rows.slice().sort((a, b) => a.timestamp - b.timestamp);
  assert.deepEqual(ordered.map((r) => r.url), expected.map(([u]) => u));
  for (const [i, [, title]] of expected.entries()) if (title) assert.equal(ordered[i].title, title);
  assert.equal(new Set(rows.map((r) => r.device_id)).size, 1, "one device");
  await context.close();
});

test("outbound: new tab, middle click and same tab are one $outbound_link each, and the navigation happens", async (t) => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  t.after(() => context.close().catch(() => {}));
  await fulfillExternal(context);
  // The static assets answer /article.html with a redirect to /article.
  const article = `${worker.base}/article`;
  const beacon = firstBeacon(page);
  await page.goto(`${worker.base}/article.html`);
  assert.equal(page.url(), article);
  await beacon;

  // target=_blank: a popup opens on the external site.
  const [popup] = await Promise.all([page.waitForEvent("popup"), page.click("#out-new-tab")]);
  await popup.waitForURL("https://www.rust-lang.org/");
  await popup.close();

  // Middle click: a new tab in the background, this page stays.
  const [tab] = await Promise.all([context.waitForEvent("page"), page.click("#out-same-tab", { button: "middle" })]);
  // Playwright neither routes nor reports a background tab's first request
  // (it starts before the tab is attached; without a network it ends on
  // chrome-error://). The tab's history shows it followed the link.
  // Under load Chromium may swap the tab's renderer for its error page
  // before we attach; the tab's own URL then shows where it went.
  let history = null;
  try {
    const cdp = await context.newCDPSession(tab);
    for (const until = Date.now() + 5000; Date.now() < until; await sleep(100)) {
      history = (await cdp.send("Page.getNavigationHistory")).entries;
      if (history.some((e) => e.url !== "about:blank")) break;
    }
  } catch {
    history = null;
  }
  if (history) {
    assert.deepEqual(history.map((e) => [e.url, e.transitionType]), [["https://example.com/", "link"]]);
  } else {
    assert.match(tab.url(), /^(https:\/\/example\.com\/|chrome-error:)/, "the background tab followed the link");
  }
  await tab.close();
  assert.equal(page.url(), article);

  // Same tab: the page leaves.
  await page.click("#out-same-tab");
  await page.waitForURL("https://example.com/");

  const rows = await newRows(seen, (r) => r.filter((e) => e.event === "$outbound_link").length >= 3);
  const outbound = rows.filter((e) => e.event === "$outbound_link");
  assert.equal(outbound.length, 3, JSON.stringify(outbound));
  assert.deepEqual(
    outbound.map((e) => e.properties.href).sort(),
    ["https://example.com/", "https://example.com/", "https://www.rust-lang.org/"],
  );
  assert.ok(outbound.every((e) => e.url === article));
  assert.equal(rows.filter((e) => e.event === "$pageview").length, 1, "the article's own pageview");
  assert.equal(rows.length, 4);
  await context.close();
});

test("consent: nothing while pending; Decline stores cookieless events and writes nothing; Accept sets the cookie and sends the waiting pageview once", async () => {
  // The static assets answer /consent.html with a redirect to /consent.
  const url = `${worker.base}/consent`;
  let seen = await seenIds();
  {
    const { context, page } = await humanPage(browser);
    const beacons = [];
    page.on("request", (r) => r.url().endsWith("/collect") && beacons.push(r));
    // The tracker has started and would have sent by now: it sent nothing.
    // (The page's "load" is not awaited: once, under load, it never came
    // within 30 s although the page ran; trackerIdle is the signal here.)
    await page.goto(url, { waitUntil: "domcontentloaded" });
    await trackerIdle(page);
    await settled(worker);
    assert.equal(beacons.length, 0, "no request while pending");
    assert.equal(fresh(seen)(await exportEvents(worker.base)).length, 0, "nothing stored while pending");
    assert.equal(await page.evaluate(() => document.cookie), "");

    await page.click("#consent-decline");
    const rows = await newRows(seen, (r) => r.length >= 1);
    assert.equal(rows.length, 1, JSON.stringify(rows));
    assert.equal(rows[0].event, "$pageview");
    assert.equal(rows[0].url, url);
    assert.match(rows[0].distinct_id, /^cl-/);
    // The tracker sends no id; the server gives its cookieless daily hash.
    assert.ok(!rows[0].device_id || rows[0].device_id === rows[0].distinct_id, rows[0].device_id);
    assert.ok(beacons.length >= 1);
    for (const b of beacons) {
      for (const e of JSON.parse(b.postData()).e) assert.ok(!("d" in e) && !("id" in e), JSON.stringify(e));
    }
    assert.equal(await page.evaluate(() => document.cookie), "", "no cookie");
    assert.equal((await context.cookies()).length, 0, "no cookie");
    // The demo page keeps its own banner choice; the tracker writes nothing.
    const keys = await page.evaluate(() => Object.keys(localStorage));
    assert.deepEqual(keys, ["edgetrack-demo-consent"], "only the demo banner's own key");
    await context.close();
  }
  seen = await seenIds();
  {
    const { context, page } = await humanPage(browser);
    await page.goto(url);
    await sleep(1500);
    await page.click("#consent-accept");
    const rows = await newRows(seen, (r) => r.length >= 1);
    assert.equal(rows.length, 1, `the waiting pageview once: ${JSON.stringify(rows)}`);
    assert.equal(rows[0].event, "$pageview");
    assert.equal(rows[0].url, url);
    const cookies = (await context.cookies(worker.base)).filter((c) => c.name === COOKIE);
    assert.equal(cookies.length, 1, "the device cookie after Accept");
    assert.equal(rows[0].device_id, cookies[0].value);
    await context.close();
  }
});

test("bots: an automated browser sends nothing; a crawler's POST stores nothing and counts once", async () => {
  let seen = await seenIds();
  const robot = await launchBrowser({ automation: true });
  try {
    const { page } = await humanPage(robot);
    const requests = [];
    page.on("request", (r) => r.url().endsWith("/collect") && requests.push(r.url()));
    await page.goto(`${worker.base}/`);
    assert.equal(await page.evaluate(() => navigator.webdriver), true);
    // The tracker has loaded and started before the click, as a person's would.
    await trackerStarted(page);
    await page.click("#signup-pro");
    await trackerIdle(page);
    await settled(worker);
    assert.deepEqual(requests, [], "no request to /collect");
    assert.equal(fresh(seen)(await exportEvents(worker.base)).length, 0);
  } finally {
    await robot.close();
  }

  const botCount = async () =>
    (await stats(worker.base)).bots.find((b) => b.reason === "user_agent_pattern")?.requests ?? 0;
  const before = await botCount();
  seen = await seenIds();
  const r = await collect(worker.base, [{ n: "$pageview", i: "tracker-bot-1", d: "bot", ts: Date.now(), u: `${worker.base}/` }],
    { userAgent: GOOGLEBOT });
  assert.equal(r.status, 202);
  // The drop is counted by the queue consumer (no outbox row): wait for it.
  await waitForStats(worker.base, (s) => (s.bots.find((b) => b.reason === "user_agent_pattern")?.requests ?? 0) > before);
  await settled(worker);
  assert.equal(fresh(seen)(await exportEvents(worker.base)).length, 0);
  assert.equal(await botCount(), before + 1);
});

test("offline: three events tracked while the worker is stopped arrive exactly once after it restarts and the next page loads", async () => {
  let seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    // The backlog is kept in localStorage only with consent.
    await grantFirst(context);
    await page.goto(`${worker.base}/`);
    const first = await newRows(seen, (r) => r.length >= 1);
    assert.equal(first.length, 1);
    seen = new Set([...seen, ...first.map((e) => e.insert_id)]);

    const { persistDir, port } = worker;
    await worker.stop({ keepState: true });
    const failed = [];
    page.on("requestfailed", (r) => r.url().endsWith("/collect") && failed.push(r.postData() ?? ""));
    await page.evaluate(() => {
      for (const n of [1, 2, 3]) edgetrack("track", `offline-${n}`);
    });
    // The batch leaves by fetch a second later and fails.
    await sleep(2500);
    assert.ok(failed.some((b) => b.includes("offline-3")), "the batch was tried and failed");
    const backlog = await page.evaluate(() => localStorage.getItem("et_q") || "");
    assert.equal((backlog.match(/offline-/g) || []).length, 3, "the backlog is stored");
    // The person leaves while the worker is still down: the page's beacon
    // on the way out is lost as well.
    await page.goto("about:blank");

    worker = await startWorker({ vars: { RATE_LIMITS: "off" }, persistDir, port });
    await page.goto(`${worker.base}/article.html`);
    const rows = await newRows(seen, (r) => r.filter((e) => e.event.startsWith("offline-")).length >= 3);
    const offline = rows.filter((e) => e.event.startsWith("offline-"));
    assert.deepEqual(offline.map((e) => e.event).sort(), ["offline-1", "offline-2", "offline-3"]);
    assert.equal(new Set(offline.map((e) => e.insert_id)).size, 3);
    assert.equal(rows.filter((e) => e.event === "$pageview").length, 1, "the second page's pageview");
    assert.equal(rows.length, 4, JSON.stringify(rows.map((r) => r.event)));
    // Delivered: the backlog is gone, so a third page sends nothing again.
    assert.equal(await page.evaluate(() => localStorage.getItem("et_q")), null);
  } finally {
    await context.close();
  }
});

test("a page whose CSP forbids WebAssembly gets one console warning naming 'wasm-unsafe-eval', and nothing breaks", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    const url = `${worker.base}/csp-strict`;
    await page.route(url, (r) => r.fulfill({
      status: 200,
      contentType: "text/html",
      headers: { "content-security-policy": "script-src 'self'" },
      body: `<title>strict</title><script defer src="/t.js" data-token="demo-token" data-local></script>`,
    }));
    const warnings = [];
    page.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
    const wasm = page.waitForResponse((r) => MODULE.test(r.url()));
    await page.goto(url);
    await wasm;
    await sleep(1000);
    const ours = warnings.filter((w) => w.startsWith("edgetrack"));
    assert.equal(ours.length, 1, JSON.stringify(warnings));
    assert.match(ours[0], /'wasm-unsafe-eval'/);
    assert.match(ours[0], /script-src/);
    // The page's calls still work and throw nothing; they go nowhere.
    assert.equal(await page.evaluate(() => (edgetrack("track", "after"), document.title)), "strict");
    await settled(worker);
    assert.equal(fresh(seen)(await exportEvents(worker.base)).length, 0);
    assert.equal(warnings.filter((w) => w.startsWith("edgetrack")).length, 1, "one message, not one per call");
  } finally {
    await context.close();
  }
});

test("a page whose CSP has no connect-src for the tracker's host gets one warning, and nothing breaks", async () => {
  const { context, page } = await humanPage(browser);
  try {
    const url = `${worker.base}/csp-no-connect`;
    await page.route(url, (r) => r.fulfill({
      status: 200,
      contentType: "text/html",
      headers: { "content-security-policy": "script-src 'self' 'wasm-unsafe-eval'; connect-src 'none'" },
      body: `<title>no connect</title><script async src="/t.js" data-token="demo-token" data-local></script>`,
    }));
    const warnings = [];
    page.on("console", (m) => m.type() === "warning" && m.text().startsWith("edgetrack") && warnings.push(m.text()));
    const requests = [];
    page.on("request", (r) => r.url().startsWith(worker.base) && !r.url().endsWith("/csp-no-connect") && requests.push(r.url()));
    const warned = page.waitForEvent("console", (m) => m.text().startsWith("edgetrack"));
    await page.goto(url);
    await warned;
    assert.deepEqual(warnings, ["edgetrack is off: TypeError: Failed to fetch"]);
    assert.equal(await page.evaluate(() => (edgetrack("track", "after"), document.title)), "no connect");
    assert.deepEqual(requests, [`${worker.base}/t.js`], "the module and /collect are never requested");
  } finally {
    await context.close();
  }
});

test("commands arrive trimmed: ' Signup ' is Signup, a blank name is nothing, ' denied ' is denied", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    await grantFirst(context);
    const beacon = firstBeacon(page);
    await page.goto(`${worker.base}/spa/`);
    await beacon;
    await page.evaluate(() => {
      edgetrack("track", "  Signup  ", { plan: "pro" });
      edgetrack("track", "   ");
      edgetrack("consent", " denied ");
      edgetrack("track", "after-deny");
    });
    const rows = await newRows(seen, (r) => r.some((e) => e.event === "after-deny"));
    const names = rows.map((r) => r.event).sort();
    assert.deepEqual(names, ["$pageview", "Signup", "after-deny"]);
    assert.equal(rows.find((r) => r.event === "Signup").properties.plan, "pro");
    const denied = rows.find((r) => r.event === "after-deny");
    assert.notEqual(denied.device_id, rows.find((r) => r.event === "Signup").device_id, "denied: the cookie's id is gone");
    assert.equal((await context.cookies(worker.base)).filter((c) => c.name === COOKIE).length, 0, "denied removed the cookie");
  } finally {
    await context.close();
  }
});

test("the module served without the wasm MIME type still runs (the loader compiles it from bytes), silently", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    const served = [];
    await context.route(MODULE, async (route) => {
      const response = await route.fetch();
      served.push(response.headers()["content-type"]);
      await route.fulfill({ response, headers: { ...response.headers(), "content-type": "application/octet-stream" } });
    });
    const warnings = [];
    page.on("console", (m) => (m.type() === "warning" || m.type() === "error") && warnings.push(m.text()));
    await page.goto(`${worker.base}/`);
    const rows = await newRows(seen, (r) => r.length >= 1);
    assert.equal(served.length, 1);
    assert.match(served[0], /wasm/, "the worker itself labels it application/wasm");
    assert.deepEqual(rows.map((r) => r.event), ["$pageview"]);
    assert.deepEqual(warnings.filter((w) => /edgetrack|wasm|WebAssembly/i.test(w)), []);
  } finally {
    await context.close();
  }
});

test("t.mjs imported by a page on another origin counts its page views; the next page takes the module from the browser's cache", async () => {
  const seen = await seenIds();
  // A customer's site on a second origin: two pages importing the ES
  // module entry from the worker's (a module script from another origin
  // needs CORS).
  const page = (title) => ({
    type: "text/html",
    body: `<!doctype html><title>${title}</title><script type="module">
import { init } from "${worker.base}/t.mjs";
init({ token: "demo-token", local: true });
</script><p>${title}</p>`,
  });
  const site = await serveOrigin({ "/esm.html": page("esm"), "/next.html": page("next") });
  const { context, page: tab } = await humanPage(browser);
  try {
    // Chromium's own account of each response: from the network or from
    // its HTTP cache (no request routing here: routing turns the cache off).
    const cdp = await context.newCDPSession(tab);
    await cdp.send("Network.enable");
    const responses = [];
    cdp.on("Network.responseReceived", ({ response }) => responses.push(response));
    const fromCache = (r) => r.fromDiskCache || r.fromMemoryCache || r.fromPrefetchCache;
    const headersOf = (r) => Object.fromEntries(Object.entries(r.headers).map(([k, v]) => [k.toLowerCase(), v]));
    const views = (rows) => rows.filter((e) => e.event === "$pageview").map((e) => e.url);

    await tab.goto(`${site.base}/esm.html`);
    let rows = await newRows(seen, (r) => views(r).length >= 1);
    assert.deepEqual(views(rows), [`${site.base}/esm.html`], "the import tracked the page view");
    const [module] = responses.filter((r) => FULL_MODULE.test(r.url));
    assert.ok(module, "t.mjs loaded its module");
    assert.equal(module.status, 200);
    assert.ok(!fromCache(module), "the first page fetches the module");
    assert.equal(headersOf(module)["cache-control"], "public, max-age=31536000, immutable");
    assert.equal(headersOf(module)["access-control-allow-origin"], "*");
    const script = responses.find((r) => r.url === `${worker.base}/t.mjs`);
    assert.ok(script && !fromCache(script), "the first page fetches t.mjs");
    assert.equal(headersOf(script)["cache-control"], "public, max-age=300");
    assert.equal(headersOf(script)["access-control-allow-origin"], "*");

    // The next page of the site: counted too, with the module and t.mjs
    // from the cache, not the network.
    responses.length = 0;
    await tab.goto(`${site.base}/next.html`);
    rows = await newRows(seen, (r) => views(r).length >= 2);
    assert.deepEqual(views(rows).sort(), [`${site.base}/esm.html`, `${site.base}/next.html`]);
    const again = responses.filter((r) => FULL_MODULE.test(r.url));
    assert.equal(again.length, 1, "the next page used the module (Chromium reports a cached response too)");
    assert.ok(fromCache(again[0]), `the module came from the cache: ${JSON.stringify(again[0])}`);
    // (Chromium fetched t.mjs itself again here, 200 with its body, although
    // its max-age of 300 s had not passed; the module is the one that weighs.)

    // Leaving sends each page's engagement (t.mjs has every option): wait
    // for the last page's, so no later test meets it.
    await tab.goto("about:blank");
    await newRows(seen, (r) => r.some((e) => e.event === "$engagement" && e.url === `${site.base}/next.html`));
  } finally {
    await context.close();
    await site.close();
  }
});

// ---------------------------------------------------------------------------
// The options of issue 17. t.js is the default script; options that are not
// in it (tracker-wasm/README.md) are tested with t.full.js, the variant with
// every option. Test pages are served on 127.0.0.1, so they say data-local.

/** A page at `path` whose body is `body`, loading `script` (t.js or t.full.js) with `attributes` and data-local. */
async function optionPage(context, path, { script = "/t.full.js", attributes = "", head = "", body = "", title = "options" } = {}) {
  const url = `${worker.base}${path}`;
  await context.route(url, (r) => r.fulfill({
    status: 200,
    contentType: "text/html",
    body: `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>${head}` +
      `<script async src="${script}" data-token="demo-token" data-local ${attributes}></script></head><body>${body}</body></html>`,
  }));
  return url;
}

/** The stub a page defines before the tracker arrives, then `calls` (code run in the page). */
const stub = (calls = "") =>
  `<script>window.edgetrack=window.edgetrack||function(){(edgetrack.q=edgetrack.q||[]).push(arguments)};${calls}</script>`;

/** Waits until the tracker's /collect request carrying an event named `name` left `page`. */
const sentEvent = (page, name) => page.waitForRequest(
  (r) => r.url() === `${worker.base}/collect` && (r.postData() || "").includes(`"n":${JSON.stringify(name)}`),
  { timeout: 15_000 },
);

test("localhost and loopback pages are not counted without data-local; a real host name is", async (t) => {
  const seen = await seenIds();
  const named = await launchBrowser({ args: [`--host-resolver-rules=MAP shop.test 127.0.0.1`] });
  try {
    const { context, page } = await humanPage(named);
    const requests = [];
    page.on("request", (r) => r.url().endsWith("/collect") && requests.push(r.url()));
    for (const [host, path] of [["127.0.0.1", "/loopback"], ["localhost", "/localhost"]]) {
      const url = `http://${host}:${worker.port}${path}`;
      await context.route(url, (r) => r.fulfill({
        status: 200, contentType: "text/html",
        body: `<title>local</title><script async src="/t.js" data-token="demo-token"></script>`,
      }));
      const wasm = page.waitForResponse((r) => MODULE.test(r.url()));
      await page.goto(url);
      await wasm;
      await trackerStarted(page);
      // The module ran: its own track call goes nowhere either.
      await page.evaluate(() => edgetrack("track", "local-event"));
    }
    // A page under a real host name (resolved to this machine) is counted:
    // the signal that everything before it had its chance. It comes from
    // a server of its own (a page Playwright fulfils counts as public, and
    // Chromium then refuses it a script from this machine).
    const site = await serveOrigin({
      "/shop": { type: "text/html", body: `<title>shop</title><script async src="http://shop.test:${worker.port}/t.js" data-token="demo-token"></script>` },
    });
    t.after(() => site.close());
    const shop = site.base.replace("127.0.0.1", "shop.test") + "/shop";
    await page.goto(shop);
    const rows = await newRows(seen, (r) => r.length >= 1);
    assert.deepEqual(rows.map((r) => [r.event, r.url]), [["$pageview", shop]]);
    assert.deepEqual(requests, [`http://shop.test:${worker.port}/collect`], "the loopback pages sent nothing");
    await context.close();
  } finally {
    await named.close();
  }
});

test("data-manual: no automatic pageview; edgetrack('pageview', {url}) sends the URL given, and later events carry it", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    const url = await optionPage(context, "/users/4711", {
      attributes: "data-manual",
      head: stub(`edgetrack("pageview", { url: "/users/:id" });`),
    });
    const view = sentEvent(page, "$pageview");
    await page.goto(url);
    await view;
    await page.evaluate(() => {
      history.pushState({}, "", "/users/4712");
      edgetrack("track", "Saved");
    });
    const rows = await newRows(seen, (r) => r.some((e) => e.event === "Saved"));
    const masked = `${worker.base}/users/:id`;
    assert.deepEqual(
      rows.filter((r) => r.event !== "$engagement").map((r) => [r.event, r.url]).sort(),
      [["$pageview", masked], ["Saved", masked]],
    );
    assert.ok(!rows.some((r) => r.url.includes("4711") || r.url.includes("4712")), JSON.stringify(rows));
  } finally {
    await context.close();
  }
});

test("data-include and data-exclude: an excluded path sends nothing, an SPA move to an included one is counted", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    const url = await optionPage(context, "/blog/draft-1", { attributes: 'data-include="/blog/*" data-exclude="/blog/draft-*"' });
    const wasm = page.waitForResponse((r) => FULL_MODULE.test(r.url()));
    await page.goto(url);
    await wasm;
    await trackerStarted(page);
    await page.evaluate(() => edgetrack("track", "on-draft"));
    await page.evaluate(() => history.pushState({}, "", "/blog/final"));
    await page.evaluate(() => edgetrack("track", "on-final"));
    const rows = await newRows(seen, (r) => r.some((e) => e.event === "on-final"));
    assert.deepEqual(
      rows.filter((r) => r.event !== "$engagement").map((r) => [r.event, r.url]).sort(),
      [["$pageview", `${worker.base}/blog/final`], ["on-final", `${worker.base}/blog/final`]],
    );
  } finally {
    await context.close();
  }
});

test("data-domains: a page on another host than the site's own is not counted", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    const mirror = await optionPage(context, "/mirror", { attributes: 'data-domains="shop.example www.shop.example"' });
    const wasm = page.waitForResponse((r) => FULL_MODULE.test(r.url()));
    await page.goto(mirror);
    await wasm;
    await trackerStarted(page);
    await page.evaluate(() => edgetrack("track", "on-mirror"));
    const own = await optionPage(context, "/own", { attributes: 'data-domains="shop.example 127.0.0.1"' });
    await page.goto(own);
    const rows = await newRows(seen, (r) => r.some((e) => e.event === "$pageview"));
    assert.deepEqual(rows.filter((r) => r.event !== "$engagement").map((r) => [r.event, r.url]), [["$pageview", own]]);
  } finally {
    await context.close();
  }
});

test("properties on every event (data-et-prop-* and props), and revenue checked in the page and stored", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    const url = await optionPage(context, "/shop", {
      attributes: 'data-et-prop-author="ann"',
      head: stub(`edgetrack("props", { section: "mugs" });`),
    });
    const view = sentEvent(page, "$pageview");
    await page.goto(url);
    await view;
    await page.evaluate(() => {
      edgetrack("track", "Purchase", { sku: "mug-blue", section: "sale", $revenue: { amount: 14.5, currency: "EUR" } });
      edgetrack("track", "Refund", { $revenue: { amount: "-3", currency: "USD" } });
      edgetrack("track", "Bad amount", { $revenue: { amount: "14,50", currency: "EUR" } });
      edgetrack("track", "Bad currency", { $revenue: { amount: 1, currency: "euro" } });
    });
    const rows = await newRows(seen, (r) => r.filter((e) => e.event !== "$engagement").length >= 5);
    const by = Object.fromEntries(rows.map((r) => [r.event, r.properties]));
    assert.deepEqual(by.$pageview, { author: "ann", section: "mugs" });
    assert.deepEqual(by.Purchase, { author: "ann", section: "sale", sku: "mug-blue", $revenue: { amount: 14.5, currency: "EUR" } });
    assert.deepEqual(by.Refund, { author: "ann", section: "mugs", $revenue: { amount: -3, currency: "USD" } });
    for (const bad of ["Bad amount", "Bad currency"]) assert.deepEqual(by[bad], { author: "ann", section: "mugs" }, bad);
  } finally {
    await context.close();
  }
  // The server checks it too, in /collect's error shape.
  const r = await collect(worker.base, [{ n: "Purchase", i: "revenue-bad-1", ts: Date.now(), u: `${worker.base}/`,
    p: { $revenue: { amount: 10, currency: "eur" } } }]);
  assert.equal(r.status, 400);
  const body = await r.json();
  assert.deepEqual(body.fields.map((f) => f.field), ["properties.$revenue.currency"]);
});

test("$file_download: a click on a link to a file, by the default types or data-file-types", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser, { acceptDownloads: true });
  try {
    const links = '<a id="pdf" download href="/files/whitepaper.pdf">PDF</a> <a id="zip" download href="/files/all.zip">ZIP</a>';
    const plain = await optionPage(context, "/files-default", { body: links });
    const view = sentEvent(page, "$pageview");
    await page.goto(plain);
    await view;
    await page.click("#pdf");
    let rows = await newRows(seen, (r) => r.some((e) => e.event === "$file_download"));
    assert.deepEqual(rows.filter((r) => r.event === "$file_download").map((r) => [r.properties.href, r.url]),
      [[`${worker.base}/files/whitepaper.pdf`, plain]]);
    const before = new Set([...seen, ...rows.map((r) => r.insert_id)]);
    const zipOnly = await optionPage(context, "/files-zip", { body: links, attributes: 'data-file-types="zip"' });
    const next = sentEvent(page, "$pageview");
    await page.goto(zipOnly);
    await next;
    await page.click("#pdf");
    await page.click("#zip");
    rows = await newRows(before, (r) => r.some((e) => e.event === "$file_download"));
    assert.deepEqual(rows.filter((r) => r.event === "$file_download").map((r) => r.properties.href),
      [`${worker.base}/files/all.zip`], "the PDF is not a listed type any more");
  } finally {
    await context.close();
  }
});

test("data-404 (in the default t.js) sends $404 with the pageview; edgetrack('404') another", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    const url = await optionPage(context, "/no-such-page", { script: "/t.js", attributes: "data-404" });
    // Only this test's pages: the previous test's page may still beacon its
    // engagement as its context closes.
    const ours = (rows) => rows.filter((r) => r.url === url || r.url === `${worker.base}/gone`);
    await page.goto(url);
    let rows = ours(await newRows(seen, (r) => ours(r).length >= 2));
    assert.deepEqual(rows.map((r) => [r.event, r.url]).sort(), [["$404", url], ["$pageview", url]]);
    await page.evaluate(() => {
      history.pushState({}, "", "/gone");
      edgetrack("404");
    });
    rows = ours(await newRows(seen, (r) => ours(r).filter((e) => e.event === "$404").length >= 2));
    assert.deepEqual(rows.filter((r) => r.event === "$404").map((r) => r.url).sort(), [`${worker.base}/gone`, url]);
  } finally {
    await context.close();
  }
});

test("engagement: visible time and deepest scroll, closed by an SPA navigation and sent when the page is left", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser, { viewport: { width: 1000, height: 1000 } });
  try {
    const url = await optionPage(context, "/long-read", {
      head: "<style>body{margin:0}</style>",
      body: '<div style="height:4000px">a long article</div>',
    });
    const view = sentEvent(page, "$pageview");
    await page.goto(url);
    await view;
    // Down to the middle (viewport bottom at 2000 of 4000 px), back up.
    await page.evaluate(() => window.scrollTo(0, 1000));
    await page.waitForFunction(() => scrollY === 1000);
    await page.evaluate(() => window.scrollTo(0, 0));
    await sleep(1200);
    const closed = sentEvent(page, "$engagement");
    await page.evaluate(() => history.pushState({}, "", "/long-read/part-2"));
    await closed;
    await page.goto("about:blank");
    const rows = await newRows(seen, (r) => r.filter((e) => e.event === "$engagement").length >= 2);
    const engaged = rows.filter((r) => r.event === "$engagement").sort((a, b) => a.timestamp - b.timestamp);
    assert.deepEqual(engaged.map((e) => e.url), [url, `${url}/part-2`], "each with its page view's URL");
    assert.deepEqual(engaged.map((e) => e.properties.scroll), [50, 25], "the deepest point, in percent");
    assert.ok(engaged.every((e) => Number.isInteger(e.properties.engaged_ms)), JSON.stringify(engaged));
    assert.ok(engaged[0].properties.engaged_ms >= 1200, `visible at least as long as we waited: ${engaged[0].properties.engaged_ms}`);
    assert.deepEqual(rows.filter((r) => r.event === "$pageview").map((r) => r.url).sort(), [url, `${url}/part-2`]);
  } finally {
    await context.close();
  }
});

test("beforeSend can change an event (strip the query) or drop it", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    const url = await optionPage(context, "/account?token=s3cret", {
      head: stub(`edgetrack("beforeSend", (e) => e.n === "secret" ? null : { ...e, u: e.u.split("?")[0] });`),
    });
    await page.goto(url);
    await page.evaluate(() => {
      edgetrack("track", "secret");
      edgetrack("track", "after");
    });
    const rows = await newRows(seen, (r) => r.some((e) => e.event === "after"));
    assert.deepEqual(rows.filter((r) => r.event !== "$engagement").map((r) => [r.event, r.url]).sort(),
      [["$pageview", `${worker.base}/account`], ["after", `${worker.base}/account`]]);
  } finally {
    await context.close();
  }
});

test("data-forms: a submitted form sends $form_submit named by its id or name; without data-forms nothing", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    const forms = '<form id="newsletter"><button id="a">Subscribe</button></form>' +
      '<form name="contact"><button id="b">Send</button></form>' +
      '<script>for (const f of document.forms) f.addEventListener("submit", (e) => e.preventDefault())</script>';
    const without = await optionPage(context, "/forms-off", { body: forms });
    const first = sentEvent(page, "$pageview");
    await page.goto(without);
    await first;
    await page.click("#a");
    const url = await optionPage(context, "/forms", { body: forms, attributes: "data-forms" });
    const view = sentEvent(page, "$pageview");
    await page.goto(url);
    await view;
    await page.click("#a");
    await page.click("#b");
    const rows = await newRows(seen, (r) => r.filter((e) => e.event === "$form_submit").length >= 2);
    const submits = rows.filter((r) => r.event === "$form_submit");
    assert.deepEqual(submits.map((r) => [r.properties.form, r.url]).sort(), [["contact", url], ["newsletter", url]]);
  } finally {
    await context.close();
  }
});
