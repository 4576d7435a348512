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
  startWorker, launchBrowser, humanPage, collect, exportEvents, waitForEvents, settle, stats, sleep,
} from "./harness.mjs";

const DAY_S = 24 * 60 * 60;
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const COOKIE = "et_id"; // tracker-wasm/README.md: data-cookie-name defaults to et_id

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
  await settle();
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

/** A page at `path` on the worker's origin whose only content is the tracker's tag with `attributes`. */
async function tagPage(context, path, attributes, title = "tagged") {
  const url = `${worker.base}${path}`;
  await context.route(url, (r) => r.fulfill({
    status: 200,
    contentType: "text/html",
    body: `<!doctype html><title>${title}</title><script defer src="/t.js" data-token="demo-token" ${attributes}></script><p>${title}</p>`,
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
    // t.wasm is fetched and started; then give it time to (not) send.
    const wasm = page.waitForResponse((r) => r.url().endsWith("/t.wasm"));
    await page.goto(url);
    await wasm;
    await settle();
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
    await page.click("#signup-pro");
    await settle();
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
  await settle();
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
      body: `<title>strict</title><script defer src="/t.js" data-token="demo-token"></script>`,
    }));
    const warnings = [];
    page.on("console", (m) => m.type() === "warning" && warnings.push(m.text()));
    const wasm = page.waitForResponse((r) => r.url().endsWith("/t.wasm"));
    await page.goto(url);
    await wasm;
    await sleep(1000);
    const ours = warnings.filter((w) => w.startsWith("edgetrack"));
    assert.equal(ours.length, 1, JSON.stringify(warnings));
    assert.match(ours[0], /'wasm-unsafe-eval'/);
    assert.match(ours[0], /script-src/);
    // The page's calls still work and throw nothing; they go nowhere.
    assert.equal(await page.evaluate(() => (edgetrack("track", "after"), document.title)), "strict");
    await settle();
    assert.equal(fresh(seen)(await exportEvents(worker.base)).length, 0);
    assert.equal(warnings.filter((w) => w.startsWith("edgetrack")).length, 1, "one message, not one per call");
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

test("t.wasm served without the wasm MIME type still runs (the loader compiles it from bytes), silently", async () => {
  const seen = await seenIds();
  const { context, page } = await humanPage(browser);
  try {
    const served = [];
    await context.route("**/t.wasm", async (route) => {
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
