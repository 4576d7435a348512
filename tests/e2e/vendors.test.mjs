// Other vendors' official browser trackers, unchanged, on a page of another
// origin in Chromium, pointed at `wrangler dev` by their own settings only:
// @plausible-analytics/tracker (npm), Umami's script.js (from the `umami`
// npm package; scripts/setup.sh takes that one file out of it) and
// posthog-js (npm, its `dist/array.js`). Each page view, custom event and
// click is counted exactly in D1, the stats API counts the page views as
// page views, and the page logs no error and sees no failed request.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startWorker, launchBrowser, humanPage, serveOrigin, d1, stats, sleep, SECRET } from "./harness.mjs";

const require = createRequire(import.meta.url);
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
// The development project's Umami website id (edge-worker/wrangler.jsonc).
const UMAMI_WEBSITE = "00000000-0000-4000-8000-00000000de00";
const OUTSIDE = "http://outbound.example/";

let worker, browser;
before(async () => {
  worker = await startWorker();
  browser = await launchBrowser();
});
after(async () => {
  await browser?.close();
  await worker?.stop();
});

/** Rows stored from one dialect, counted by event name. */
function counts(source) {
  const rows = d1(`SELECT event, COUNT(*) AS n FROM events WHERE source = '${source}' GROUP BY event`, worker.persistDir);
  return Object.fromEntries(rows.map((r) => [r.event, r.n]));
}

/** Polls D1 until `predicate(counts)` holds, then waits a little more and
 *  reads again, so a late duplicate would still be seen. */
async function settledCounts(source, predicate, timeoutMs = 30_000) {
  const deadline = Date.now() + timeoutMs;
  let last = {};
  while (Date.now() < deadline) {
    last = counts(source);
    if (predicate(last)) {
      await sleep(3000);
      return counts(source);
    }
    await sleep(500);
  }
  throw new Error(`${source} rows never matched: ${JSON.stringify(last)}`);
}

/** A page with its console errors, page errors and failed or refused
 *  requests to the worker recorded. */
async function watchedPage() {
  const { context, page } = await humanPage(browser);
  const problems = [];
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(`console: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  // A request the page itself gave up (ERR_ABORTED: posthog-js cancels a
  // flags request that a newer one replaces) is not a failure of ours; the
  // rows counted below prove what arrived.
  page.on("requestfailed", (r) => {
    const why = r.failure()?.errorText;
    if (r.url().startsWith(worker.base) && why !== "net::ERR_ABORTED") problems.push(`failed: ${r.url()} ${why}`);
  });
  page.on("response", (r) => {
    if (r.url().startsWith(worker.base) && r.status() >= 400) problems.push(`${r.status()}: ${r.url()}`);
  });
  // Outbound links lead nowhere real: answer them here.
  await context.route(`${OUTSIDE}**`, (r) => r.fulfill({ status: 200, contentType: "text/html", body: "<title>out</title>" }));
  return { context, page, problems };
}

/** Page views today in the stats API (the dashboard's overview). */
async function pageviewsToday() {
  return (await stats(worker.base, "period=day")).totals.pageviews;
}

describe("@plausible-analytics/tracker", () => {
  let site;
  before(async () => {
    const library = readFileSync(require.resolve("@plausible-analytics/tracker"));
    const page = `<!doctype html><title>plausible</title>
<a id="out" href="${OUTSIDE}plausible" target="_blank">out</a>
<button id="spa">next</button>
<script type="module">
  import { init, track } from "/plausible.js";
  const api = new URL(location.href).searchParams.get("api");
  init({ domain: location.hostname, endpoint: api + "/api/event", captureOnLocalhost: true, outboundLinks: true });
  track("Signup", { props: { plan: "pro" }, revenue: { amount: 9.99, currency: "EUR" } });
  document.getElementById("spa").onclick = () => history.pushState({}, "", "/pl/second");
  window.ready = true;
</script>`;
    site = await serveOrigin({
      "/plausible.js": { type: "text/javascript", body: library },
      "/pl/first": { type: "text/html", body: page },
    });
  });
  after(() => site?.close());

  test("page views (load and SPA), a custom event with revenue and an outbound click, each once", async () => {
    const before = (await pageviewsToday()) ?? 0;
    const { context, page, problems } = await watchedPage();
    await page.goto(`${site.base}/pl/first?api=${encodeURIComponent(worker.base)}`);
    await page.waitForFunction(() => window.ready === true);
    await page.click("#spa");
    await sleep(300);
    await page.click("#out");
    const rows = await settledCounts(
      "plausible",
      (c) => c.$pageview === 2 && c.Signup === 1 && c.$outbound_link === 1,
    );
    assert.equal(rows.$pageview, 2, JSON.stringify(rows));
    assert.equal(rows.Signup, 1);
    assert.equal(rows.$outbound_link, 1);
    // Engagement reports may come as the page is left; nothing else does.
    assert.deepEqual(Object.keys(rows).filter((n) => !["$pageview", "Signup", "$outbound_link", "$engagement"].includes(n)), []);
    const [signup] = d1("SELECT properties, url FROM events WHERE source = 'plausible' AND event = 'Signup'", worker.persistDir);
    assert.deepEqual(JSON.parse(signup.properties), { plan: "pro", $revenue: { amount: 9.99, currency: "EUR" } });
    assert.equal(signup.url, `${site.base}/pl/first?api=${encodeURIComponent(worker.base)}`);
    const [out] = d1("SELECT properties FROM events WHERE source = 'plausible' AND event = '$outbound_link'", worker.persistDir);
    assert.equal(JSON.parse(out.properties).href, `${OUTSIDE}plausible`);
    assert.equal(await waitForPageviews(before + 2), before + 2, "the stats count Plausible's pageviews");
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("an unknown domain is dropped as Plausible drops it; a bad body gets its error shape", async () => {
    const ok = await fetch(`${worker.base}/api/event`, {
      method: "POST",
      headers: { "content-type": "text/plain", "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0" },
      body: JSON.stringify({ n: "pageview", u: "https://nobody.example/", d: "nobody.example" }),
    });
    assert.equal(ok.status, 202);
    assert.equal(await ok.text(), "ok");
    assert.equal(ok.headers.get("x-plausible-dropped"), "1");
    const bad = await fetch(`${worker.base}/api/event`, { method: "POST", body: JSON.stringify({ n: "pageview", d: "localhost" }) });
    assert.equal(bad.status, 400);
    assert.deepEqual(await bad.json(), { errors: { url: ["is required"] } });
    assert.equal(d1("SELECT COUNT(*) AS n FROM events WHERE url LIKE 'https://nobody.example/%'", worker.persistDir)[0].n, 0);
  });
});

describe("Umami's script.js", () => {
  let site;
  before(async () => {
    const script = readFileSync(path.join(ROOT, "node_modules/.umami-tracker/script.js"));
    const page = (api) => `<!doctype html><title>umami page</title>
<script defer src="/script.js" data-website-id="${UMAMI_WEBSITE}" data-host-url="${api}"></script>
<button id="buy" data-umami-event="Buy" data-umami-event-plan="pro">buy</button>
<button id="spa">next</button>
<script>
  document.getElementById("spa").onclick = () => history.pushState({}, "", "/um/second");
</script>`;
    site = await serveOrigin({
      "/script.js": { type: "text/javascript", body: script },
      "/um/first": { type: "text/html", body: page(worker.base) },
    });
  });
  after(() => site?.close());

  test("page views (load and SPA), a custom event, a tracked click and identify, each once", async () => {
    const before = (await pageviewsToday()) ?? 0;
    const { context, page, problems } = await watchedPage();
    const answers = [];
    page.on("response", async (r) => {
      if (r.url() === `${worker.base}/api/send` && r.request().method() === "POST") answers.push(await r.json());
    });
    await page.goto(`${site.base}/um/first`);
    await page.waitForFunction(() => window.umami !== undefined);
    await page.evaluate(() => window.umami.track("Signup", { plan: "pro", seats: 3 }));
    await page.click("#buy");
    await page.click("#spa");
    await page.evaluate(() => window.umami.identify({ company: "Acme" }));
    const rows = await settledCounts("umami", (c) => c.$pageview === 2 && c.Signup === 1 && c.Buy === 1);
    assert.deepEqual(rows, { $pageview: 2, Signup: 1, Buy: 1 });
    const [signup] = d1("SELECT properties, url, title FROM events WHERE source = 'umami' AND event = 'Signup'", worker.persistDir);
    const props = JSON.parse(signup.properties);
    assert.equal(props.plan, "pro");
    assert.equal(props.seats, 3);
    // The 2.x script sends the path and `location.hostname` (no scheme or
    // port); Umami's server reads it against https://hostname, and so do we.
    assert.equal(signup.url, "https://127.0.0.1/um/first");
    assert.equal(signup.title, "umami page");
    const [buy] = d1("SELECT properties FROM events WHERE source = 'umami' AND event = 'Buy'", worker.persistDir);
    assert.equal(JSON.parse(buy.properties).plan, "pro");
    // Umami's answers: a token and the session the calls were counted in.
    assert.ok(answers.length >= 4, JSON.stringify(answers));
    assert.ok(answers.every((a) => typeof a.cache === "string" && a.cache.split(".").length === 3));
    assert.equal(new Set(answers.map((a) => a.sessionId)).size, 1, "one visitor, one session");
    assert.equal(await waitForPageviews(before + 2), before + 2, "the stats count Umami's page hits");
    assert.deepEqual(problems, []);
    await context.close();
  });

  test("an unknown website is refused as Umami refuses it", async () => {
    const r = await fetch(`${worker.base}/api/send`, {
      method: "POST",
      headers: { "content-type": "application/json", "user-agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0" },
      body: JSON.stringify({ type: "event", payload: { website: "00000000-0000-4000-8000-0000000000ff", url: "/" } }),
    });
    assert.equal(r.status, 400);
    assert.equal((await r.json()).error.message, "Website not found.");
  });
});

describe("posthog-js", () => {
  let site;
  before(async () => {
    const library = readFileSync(require.resolve("posthog-js/dist/array.js"));
    const page = `<!doctype html><title>posthog page</title>
<script src="/array.js"></script>
<button id="cta">Start trial</button>
<script>
  const api = new URL(location.href).searchParams.get("api");
  posthog.init("demo-token", { api_host: api, person_profiles: "always" });
  posthog.capture("signed up", { plan: "pro" });
  window.ready = true;
</script>`;
    site = await serveOrigin({
      "/array.js": { type: "text/javascript", body: library },
      "/ph/first": { type: "text/html", body: page },
    });
  });
  after(() => site?.close());

  test("a page view, a custom event, an autocaptured click and identify, each once", async (t) => {
    const before = (await pageviewsToday()) ?? 0;
    const { context, page, problems } = await watchedPage();
    const asked = [];
    const bodies = new Set();
    page.on("request", (r) => {
      if (!r.url().startsWith(worker.base)) return;
      const url = new URL(r.url());
      asked.push(url.pathname);
      if (["/e/", "/i/v0/e/", "/batch/"].includes(url.pathname)) {
        bodies.add(`${url.pathname} compression=${url.searchParams.get("compression") ?? "none"}`);
      }
    });
    await page.goto(`${site.base}/ph/first?api=${encodeURIComponent(worker.base)}`);
    await page.waitForFunction(() => window.ready === true);
    await page.click("#cta");
    await page.evaluate(() => window.posthog.identify("ph-user-1", { plan: "pro" }));
    const rows = await settledCounts(
      "posthog",
      (c) => c.$pageview === 1 && c["signed up"] === 1 && c.$autocapture === 1 && c.$identify === 1,
    );
    assert.equal(rows.$pageview, 1, JSON.stringify(rows));
    assert.equal(rows["signed up"], 1);
    assert.equal(rows.$autocapture, 1);
    assert.equal(rows.$identify, 1);
    const [signup] = d1("SELECT properties, distinct_id, url FROM events WHERE source = 'posthog' AND event = 'signed up'", worker.persistDir);
    assert.equal(JSON.parse(signup.properties).plan, "pro");
    assert.equal(signup.url, `${site.base}/ph/first?api=${encodeURIComponent(worker.base)}`);
    // identify joins the anonymous id to the user.
    const anon = signup.distinct_id;
    const deadline = Date.now() + 15_000;
    let person;
    while (Date.now() < deadline && person?.canonical_id !== "ph-user-1") {
      const r = await fetch(`${worker.base}/api/identity?distinct_id=${encodeURIComponent(anon)}`, { headers: { "x-api-key": SECRET } });
      person = await r.json();
      await sleep(250);
    }
    assert.equal(person?.canonical_id, "ph-user-1");
    assert.equal(await waitForPageviews(before + 1), before + 1, "the stats count PostHog's $pageview");
    assert.ok(asked.some((p) => p.startsWith("/flags") || p.startsWith("/decide") || p.startsWith("/array/")), asked.join(" "));
    t.diagnostic(`posthog-js asked: ${[...new Set(asked)].join(" ")}; capture bodies: ${[...bodies].join(", ")}`);
    assert.deepEqual(problems, []);
    await context.close();
  });
});

/** The stats API's page views for today, once they reach `expected`. */
async function waitForPageviews(expected, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    last = await pageviewsToday();
    if (last >= expected) break;
    await sleep(500);
  }
  return last;
}
