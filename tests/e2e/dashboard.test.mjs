// The dashboard and the demo site through real `wrangler dev` and Chromium:
// seeded events -> /api/stats -> the numbers on the page, the login and its
// errors, empty ranges, the strict CSP, and the demo pages' own behaviour
// (the SPA router, the cross-origin page served from a second port).
// Screenshots go to tests/artifacts/ (gitignored).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  startWorker, launchBrowser, humanPage, collect, waitForEvents, freePort, SECRET, TOKEN,
} from "./harness.mjs";

/** The first dashboard reads the v1 numbers until it moves to stats v2. */
async function stats(base, query) {
  const r = await fetch(`${base}/api/stats/v1?${query}`, { headers: { "x-api-key": SECRET } });
  if (!r.ok) throw new Error(`stats v1 answered ${r.status}: ${await r.text()}`);
  return r.json();
}

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WWW = path.join(ROOT, "www");
const ARTIFACTS = path.join(ROOT, "tests/artifacts");
const DAY_MS = 24 * 60 * 60 * 1000;
const MINUTE_MS = 60 * 1000;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

let worker, browser, seeded;

const utcDay = (ms) => new Date(ms).toISOString().slice(0, 10);
const fmt = (n) => new Intl.NumberFormat("en-US").format(n);

/**
 * A week of traffic ending now: pageviews on several pages from six devices,
 * referrers, outbound clicks on three links, a custom event, a bot request,
 * and three visitors active in the last few minutes (the live count).
 */
function seedEvents(base) {
  const now = Date.now();
  const events = [];
  let n = 0;
  const add = (event, device, at, url, extra = {}) =>
    events.push({ n: event, i: `dash-${++n}`, ts: at, d: device, u: `${base}${url}`, h: `page ${url}`, ...extra });
  const pages = ["/", "/article.html", "/pricing", "/spa/?view=docs", "/blog/launch"];
  const referrers = ["https://news.example/", "https://www.google.com/", "", "https://news.example/", ""];
  const perDay = [3, 5, 4, 7, 6, 9, 5]; // six days ago .. today
  perDay.forEach((count, index) => {
    const daysAgo = perDay.length - 1 - index;
    for (let k = 0; k < count; k++) {
      const at = now - daysAgo * DAY_MS - (k + 1) * 7 * MINUTE_MS;
      add("$pageview", `device-${(index + k) % 6}`, at, pages[(index * 2 + k) % pages.length], { r: referrers[(index + k) % referrers.length] });
    }
  });
  const clicks = [
    ["https://www.rust-lang.org/", "device-0", 3], ["https://www.rust-lang.org/", "device-1", 2],
    ["https://www.rust-lang.org/", "device-2", 1], ["https://example.com/", "device-3", 2],
    ["https://example.com/", "device-4", 4], ["https://github.com/edgetrack/edgetrack", "device-5", 1],
  ];
  for (const [href, device, daysAgo] of clicks) {
    add("$outbound_link", device, now - daysAgo * DAY_MS - 30 * MINUTE_MS, "/article.html", { p: { href } });
  }
  add("Signup", "device-1", now - 2 * DAY_MS, "/pricing", { p: { plan: "pro" } });
  add("Signup", "device-4", now - 1 * DAY_MS, "/pricing", { p: { plan: "starter" } });
  for (const [device, minutesAgo] of [["device-0", 1], ["device-2", 2], ["device-3", 3]]) {
    add("$pageview", device, now - minutesAgo * MINUTE_MS, "/");
  }
  return events;
}

/** Static files from `dir` on a second loopback origin. */
async function serveStatic(dir, rewrite = (text) => text) {
  const types = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".pdf": "application/pdf" };
  const server = createServer((req, res) => {
    const url = new URL(req.url, "http://x");
    let file = path.normalize(path.join(dir, decodeURIComponent(url.pathname)));
    if (!file.startsWith(dir)) return res.writeHead(403).end();
    try {
      if (statSync(file).isDirectory()) file = path.join(file, "index.html");
      const raw = readFileSync(file);
      const body = path.extname(file) === ".html" ? rewrite(raw.toString("utf8")) : raw;
      res.writeHead(200, { "content-type": types[path.extname(file)] || "application/octet-stream" }).end(body);
    } catch {
      res.writeHead(404).end("not found");
    }
  });
  const port = await freePort();
  await new Promise((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { base: `http://127.0.0.1:${port}`, close: () => new Promise((resolve) => server.close(resolve)) };
}

/** A dashboard page that records CSP violations and console errors. */
async function dashboardPage(viewport = DESKTOP) {
  const { context, page } = await humanPage(browser, { viewport });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${worker.base}/dashboard.html`);
  return { context, page, problems };
}

async function logIn(page, key) {
  await page.fill("#key-input", key);
  await page.click("#login-submit");
  await page.waitForFunction(() => ["ready", "login-error", "error"].includes(document.body.dataset.state));
}

const metric = (page, name) => page.textContent(`[data-metric="${name}"] [data-value]`);

function noCspProblems(problems) {
  assert.deepEqual(problems.filter((p) => /Content Security Policy|Refused to/i.test(p)), [], "no CSP violations");
  assert.deepEqual(problems, [], "no console errors");
}

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  worker = await startWorker();
  browser = await launchBrowser();
  seeded = seedEvents(worker.base);
  assert.equal((await collect(worker.base, seeded)).status, 202);
  const bot = { n: "$pageview", i: "dash-bot-1", ts: Date.now(), d: "bot-device", u: `${worker.base}/` };
  await collect(worker.base, [bot], { userAgent: BOT_UA });
  await waitForEvents(worker.base, (events) => events.filter((e) => e.insert_id.startsWith("dash-")).length === seeded.length);
});

after(async () => {
  await browser?.close();
  await worker?.stop();
});

test("the dashboard and its files carry the strict CSP and the other headers", async () => {
  const first = await fetch(`${worker.base}/dashboard.html`, { redirect: "manual" });
  assert.equal(first.headers.get("content-security-policy"), CSP, "on /dashboard.html itself");
  for (const file of ["/dashboard.html", "/dashboard.js", "/dashboard.css"]) {
    const r = await fetch(`${worker.base}${file}`); // .html redirects to /dashboard
    assert.equal(r.status, 200, file);
    assert.equal(r.headers.get("content-security-policy"), CSP, file);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff", file);
    assert.equal(r.headers.get("cache-control"), "no-store", file);
    assert.equal(r.headers.get("referrer-policy"), "no-referrer", file);
  }
  const html = readFileSync(path.join(WWW, "dashboard.html"), "utf8");
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, "no inline script");
  assert.doesNotMatch(html, /\sstyle=|<style|\son[a-z]+=/i, "no inline style or handler attributes");
});

test("after login the page shows the API's numbers, and the key stays in this tab", async () => {
  const { context, page, problems } = await dashboardPage();
  await logIn(page, SECRET);
  assert.equal(await page.getAttribute("body", "data-state"), "ready");

  const today = utcDay(Date.now());
  const from = utcDay(Date.now() - 6 * DAY_MS);
  assert.equal(await page.inputValue("#from-input"), from, "the default range is the last 7 days");
  assert.equal(await page.inputValue("#to-input"), today);
  assert.equal(await page.getAttribute('[data-preset="7d"]', "aria-pressed"), "true");
  const api = await stats(worker.base, `from=${from}&to=${today}`);
  assert.equal(api.totals.pageviews, seeded.filter((e) => e.n === "$pageview").length, "the seed all arrived");

  assert.equal(await metric(page, "visitors"), fmt(api.totals.visitors));
  assert.equal(await metric(page, "pageviews"), fmt(api.totals.pageviews));
  assert.equal(await metric(page, "events"), fmt(api.totals.events));
  assert.equal(await metric(page, "outbound_clicks"), fmt(api.totals.outbound_clicks));
  assert.equal(await page.textContent("#live-count"), fmt(api.live_visitors));
  assert.equal(api.live_visitors, 3);

  // The marketer's table: every outbound link, in the API's order.
  const rows = await page.$$eval('[data-table="outbound"] tbody tr', (trs) => trs.map((tr) => ({
    href: tr.querySelector("a").getAttribute("href"),
    clicks: tr.querySelector('[data-column="clicks"]').textContent,
    clickers: tr.querySelector('[data-column="clickers"]').textContent,
  })));
  assert.deepEqual(rows, api.outbound.map((o) => ({ href: o.href, clicks: fmt(o.clicks), clickers: fmt(o.clickers) })));
  assert.deepEqual(api.outbound[0], { href: "https://www.rust-lang.org/", clicks: 3, clickers: 3 });

  // The other lists have one row per API row.
  for (const name of ["pages", "referrers", "countries", "events", "bots"]) {
    const count = await page.$$eval(`[data-table="${name}"] tbody tr`, (trs) => trs.length);
    assert.equal(count, api[name].length, name);
    assert.ok(count > 0, `${name} has rows`);
  }
  const firstPage = await page.$eval('[data-table="pages"] tbody tr', (tr) => tr.querySelector('[data-column="pageviews"]').textContent);
  assert.equal(firstPage, fmt(api.pages[0].pageviews));
  assert.ok(api.bots.some((b) => b.reason === "user_agent_pattern"), "the bot request was counted");

  // The chart: one bucket per day, gaps filled; the tooltip on the last day
  // shows that day's numbers.
  assert.equal(await page.getAttribute(".chart-svg", "data-buckets"), "7");
  const box = await page.locator(".chart-svg .hit").boundingBox();
  await page.mouse.move(box.x + box.width - 1, box.y + box.height / 2);
  const todayRow = api.series.find((s) => s.bucket === today) ?? { pageviews: 0 };
  assert.match(await page.textContent(".chart-tip"), new RegExp(`Pageviews${fmt(todayRow.pageviews)}Visitors`));
  await page.mouse.move(0, 0);

  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-desktop.png") });
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-desktop-full.png"), fullPage: true });

  // A reload in the same tab keeps the key (sessionStorage, not localStorage).
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.state === "ready");
  assert.equal(await page.evaluate(() => sessionStorage.getItem("edgetrack.dashboard.key")), SECRET);
  assert.equal(await page.evaluate(() => localStorage.length), 0);

  // One day is shown by hour.
  await page.click('[data-preset="today"]');
  await page.waitForFunction(() => document.body.dataset.state === "ready" && document.querySelector(".chart-svg")?.dataset.buckets === "24");
  const day = await stats(worker.base, `from=${today}&to=${today}`);
  assert.equal(day.granularity, "hour");
  assert.equal(await metric(page, "pageviews"), fmt(day.totals.pageviews));

  noCspProblems(problems);
  await context.close();
});

test("at phone width the same numbers fit the screen", async () => {
  const { context, page, problems } = await dashboardPage(PHONE);
  await logIn(page, SECRET);
  const today = utcDay(Date.now());
  const api = await stats(worker.base, `from=${utcDay(Date.now() - 6 * DAY_MS)}&to=${today}`);
  assert.equal(await metric(page, "visitors"), fmt(api.totals.visitors));
  assert.equal(await metric(page, "outbound_clicks"), fmt(api.totals.outbound_clicks));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling (overflow ${overflow}px)`);
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-phone.png") });
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-phone-full.png"), fullPage: true });
  noCspProblems(problems);
  await context.close();
});

test("a wrong key or the public token is refused with a clear message", async () => {
  const { context, page, problems } = await dashboardPage();
  await logIn(page, "not-the-key");
  assert.equal(await page.textContent("#login-error"), "That key was not accepted");
  assert.ok(await page.isHidden("#dash-view"));
  assert.equal(await page.evaluate(() => sessionStorage.length), 0, "a refused key is not kept");
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-login-error.png") });

  await logIn(page, TOKEN);
  assert.match(await page.textContent("#login-error"), /public token/);
  // The browser logs the 401/403 answers themselves; nothing else.
  assert.deepEqual(problems.filter((p) => !/status of 40[13]/.test(p)), []);
  await context.close();
});

test("a range without data shows the empty states", async () => {
  const { context, page, problems } = await dashboardPage();
  await logIn(page, SECRET);
  await page.fill("#from-input", "2025-01-01");
  await page.fill("#to-input", "2025-01-07");
  await page.click('#range-form button[type="submit"]');
  await page.waitForFunction(() => document.body.dataset.state === "ready" && !document.getElementById("chart-empty").hidden);
  assert.equal((await page.textContent("#chart-empty .empty-title")).trim(), "No pageviews in this range yet");
  assert.equal(await metric(page, "pageviews"), "0");
  assert.equal(await page.textContent('[data-table="outbound"] .table-empty'), "No outbound clicks in this range yet");
  assert.equal(await page.textContent('[data-table="pages"] .table-empty'), "No pageviews in this range yet");
  assert.equal(await page.getAttribute('[data-preset="7d"]', "aria-pressed"), "false");
  assert.match(page.url(), /from=2025-01-01&to=2025-01-07/, "the range is in the address");
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-empty.png"), fullPage: true });

  // A reversed range is caught before asking the API.
  await page.fill("#from-input", "2025-02-10");
  await page.click('#range-form button[type="submit"]');
  assert.equal(await page.textContent("#dash-error"), "The start date must not be after the end date.");
  noCspProblems(problems);
  await context.close();
});

test("live visitors refresh every 30 seconds", async () => {
  const { context, page } = await humanPage(browser, { viewport: DESKTOP });
  // The page's timers run on a paused clock that only the test moves.
  const start = Date.now();
  await context.clock.install({ time: start });
  const asked = [];
  page.on("request", (r) => { if (r.url().includes("/api/stats/v1")) asked.push(new URL(r.url()).search); });
  await page.goto(`${worker.base}/dashboard.html`);
  await page.clock.pauseAt(start + 10_000);
  await logIn(page, SECRET);
  const fresh = { n: "$pageview", i: "dash-live-1", ts: Date.now(), d: "device-live", u: `${worker.base}/` };
  assert.equal((await collect(worker.base, [fresh])).status, 202);
  await waitForEvents(worker.base, (events) => events.some((e) => e.insert_id === "dash-live-1"));

  const initial = asked.length;
  await page.clock.runFor(29_000);
  assert.equal(asked.length, initial, "no refresh before 30 s");
  const refreshed = page.waitForResponse((r) => r.url().includes("/api/stats/v1"));
  await page.clock.runFor(1_000);
  await refreshed;
  const today = utcDay(Date.now());
  assert.equal(asked.at(-1), `?from=${today}&to=${today}`, "the refresh asks for today only");
  const { live_visitors: live } = await stats(worker.base, `from=${today}&to=${today}`);
  assert.ok(live >= 1, "the fresh visitor is live");
  await page.waitForFunction((n) => document.getElementById("live-count").textContent === n, fmt(live));
  await context.close();
});

// These load demo pages that send events, so they run after the number checks.

test("every demo page includes the tracker with one plain script tag", async () => {
  for (const file of ["index.html", "article.html", "consent.html", "spa/index.html"]) {
    const html = readFileSync(path.join(WWW, file), "utf8");
    const tags = html.match(/<script[^>]*\bsrc="\/t\.js"[^>]*>/g) ?? [];
    assert.equal(tags.length, 1, file);
    assert.match(tags[0], /^<script defer src="\/t\.js" data-token="demo-token" data-local( data-consent="pending")?>$/, file);
    assert.equal(/data-consent="pending"/.test(tags[0]), file === "consent.html", file);
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>|\son[a-z]+=|\sstyle=/i, `${file}: no inline code or style`);
  }
  const index = readFileSync(path.join(WWW, "index.html"), "utf8");
  assert.match(index, /<title>edgetrack demo: home<\/title>/);
  assert.match(index, /data-et-event="Signup" data-et-prop-plan="pro"/);
  const article = readFileSync(path.join(WWW, "article.html"), "utf8");
  for (const link of ['href="https://example.com/"', 'href="https://www.rust-lang.org/" target="_blank"', 'href="/files/whitepaper.pdf"', 'href="mailto:']) {
    assert.ok(article.includes(link), link);
  }
  const pdf = await fetch(`${worker.base}/files/whitepaper.pdf`);
  assert.equal(pdf.status, 200);
  assert.match(Buffer.from(await pdf.arrayBuffer()).subarray(0, 8).toString(), /^%PDF-1\.\d/);
});

test("the SPA router: pushState links, a same-URL replaceState filter, back and forward", async () => {
  const { context, page } = await humanPage(browser, { viewport: DESKTOP });
  const problems = [];
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${worker.base}/spa/`);
  assert.equal(await page.textContent("#view h1"), "App home");
  const start = await page.evaluate(() => history.length);

  await page.click("#route-pricing");
  assert.equal(new URL(page.url()).search, "?view=pricing");
  assert.equal(await page.textContent("#view h1"), "Pricing");
  assert.equal(await page.title(), "edgetrack demo: pricing");
  assert.equal(await page.evaluate(() => history.length), start + 1);

  const before = page.url();
  await page.click("#filter-yearly");
  assert.equal(page.url(), before, "the filter keeps the address");
  assert.equal(await page.evaluate(() => history.length), start + 1, "and adds no history entry");
  assert.equal(await page.evaluate(() => history.state.filter), "yearly");
  assert.match(await page.textContent(".price"), /year/);

  await page.goBack();
  assert.equal(await page.textContent("#view h1"), "App home");
  await page.goForward();
  assert.equal(await page.textContent("#view h1"), "Pricing");
  assert.match(await page.textContent(".price"), /year/, "the filter came back with the entry");
  assert.equal(await page.getAttribute("#spa-signup-pro", "data-et-prop-plan"), "pro");
  assert.deepEqual(problems, []);
  await context.close();
});

test("cross-origin.html on a second origin loads the tracker from the worker and is counted", async () => {
  // As a customer would, the page names its worker in the tag; the address
  // of `make dev` in the file becomes this test's worker.
  const site = await serveStatic(WWW, (html) => html.replaceAll("http://127.0.0.1:8787", worker.base));
  try {
    const { context, page } = await humanPage(browser, { viewport: DESKTOP });
    await page.goto(`${site.base}/cross-origin.html`);
    await page.waitForFunction(() => document.getElementById("worker-origin").textContent !== "");
    assert.equal(await page.textContent("#worker-origin"), worker.base);
    const tag = await page.$eval('script[src$="/t.js"]', (s) => ({ src: s.src, api: s.dataset.api, token: s.dataset.token }));
    assert.deepEqual(tag, { src: `${worker.base}/t.js`, api: `${worker.base}/collect`, token: TOKEN });
    const events = await waitForEvents(worker.base, (all) => all.some((e) => e.url?.startsWith(site.base)));
    const view = events.find((e) => e.url?.startsWith(site.base));
    assert.equal(view.event, "$pageview");
    assert.equal(view.url, `${site.base}/cross-origin.html`);
    await context.close();
  } finally {
    await site.close();
  }
});
