// The dashboard (issue 16) through real `wrangler dev` and Chromium: a
// generated dataset sent through the real ingest endpoints (/collect for the
// last week, /import for older history), then every number on screen is
// compared with the stats API for the same range and filters: the cards and
// their changes, the chart's points, every panel's rows, the "more" view and
// its CSV. Filters applied and removed by clicking, the view restored from the
// address, the ranges, realtime refreshed on its own, the project switcher,
// the viewer key's limits from inside the page, axe-core, keyboard use, and
// screenshots at 1280 and 390 px (tests/artifacts/, gitignored). The demo
// site's own behaviour (SPA router, cross-origin page) is checked last.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { mkdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { fileURLToPath } from "node:url";
import {
  startWorker, launchBrowser, humanPage, collect, waitForEvents, freePort, sleep, SECRET, TOKEN,
} from "./harness.mjs";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const WWW = path.join(ROOT, "www");
const ARTIFACTS = path.join(ROOT, "tests/artifacts");
const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const MIN = 60_000;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const DESKTOP = { width: 1280, height: 900 };
const PHONE = { width: 390, height: 844 };
const CSP =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";
const VIEWER = "demo-viewer";
const ZONE = "Europe/Berlin";
const PROJECTS = {
  demo: {
    token: TOKEN, secret: SECRET, viewer: VIEWER, redirect_hosts: ["127.0.0.1", "localhost"], timezone: ZONE,
    goals: [{ event: "Signup" }, { page: "/pricing", name: "Visit pricing" }], properties: ["plan"],
  },
  shop: { token: "shop-token", secret: "shop-secret", viewer: "shop-viewer" },
};
const METRICS = ["visitors", "visits", "pageviews", "views_per_visit", "bounce_rate", "visit_duration"];
const PANELS = {
  pages: ["page", "entry", "exit"],
  sources: ["source", "channel", "utm_source", "utm_medium", "utm_campaign"],
  locations: ["country", "region", "city"],
  devices: ["browser", "os", "device"],
  goals: ["goal"],
  events: ["event"],
  outbound: ["outbound", "download"],
};
const COLUMNS = {
  page: ["visitors", "pageviews"], event: ["visitors", "events"], outbound: ["visitors", "events"],
  download: ["visitors", "events"], goal: ["visitors", "events", "conversion_rate"],
};
const columnsOf = (dim) => COLUMNS[dim] ?? (dim.startsWith("prop:") ? ["visitors", "events"] : ["visitors", "visits"]);
const MORE_VISIT = ["bounce_rate", "visit_duration"];
const moreColumnsOf = (dim) => columnsOf(dim).concat(COLUMNS[dim] || dim.startsWith("prop:") ? [] : MORE_VISIT);

// ---- how the page writes numbers (the test's own copy of the rules) ----
const int = (n) => new Intl.NumberFormat("en-US").format(Number(n) || 0);
const dec = (n) => new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 }).format(Number(n) || 0);
function duration(seconds) {
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}
function shown(field, value) {
  if (field === "views_per_visit") return dec(value);
  if (field === "bounce_rate") return `${int(value)}%`;
  if (field === "conversion_rate") return `${dec(value)}%`;
  if (field === "visit_duration") return duration(value);
  return int(value);
}
function changeText(field, now, prev) {
  if (field === "bounce_rate" || field === "conversion_rate") {
    const d = Math.round((now - prev) * 10) / 10;
    return `${d > 0 ? "+" : d < 0 ? "−" : "±"}${Math.abs(d)} pp`;
  }
  if (prev === 0) return now > 0 ? "new" : "±0%";
  const pct = Math.round(((now - prev) / prev) * 100);
  return `${pct > 0 ? "+" : pct < 0 ? "−" : "±"}${Math.abs(pct)}%`;
}

// ---- the dataset ----
const UAS = [
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
];
const REFERRERS = [null, null, "https://www.google.com/", "https://www.bing.com/search?q=edge", "https://news.ycombinator.com/item?id=1",
  "https://l.facebook.com/l.php", "https://blog.example/post"];
const PAGES = ["/", "/pricing", "/blog/launch", "/blog/rust", "/docs/intro", "/docs/api", "/about", "/contact", "/changelog",
  "/careers", "/blog/edge", "/docs/tracker"];
const CAMPAIGNS = [null, null, null, "utm_source=newsletter&utm_medium=email&utm_campaign=december",
  "utm_source=google&utm_medium=cpc&utm_campaign=brand", "utm_source=twitter&utm_medium=social&utm_campaign=launch"];
const LINKS = ["https://github.com/edgetrack/edgetrack", "https://www.rust-lang.org/", "https://docs.rs/worker"];

function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Browser batches for the last six days (with a few visitors right now), and /import rows for the 50 days before. */
function dataset(now) {
  const rand = prng(16);
  const pick = (list) => list[Math.floor(rand() * list.length)];
  let serial = 0;
  const id = () => `dash-${serial++}`;
  const batches = [];
  for (let v = 0; v < 80; v++) {
    const ua = UAS[v % UAS.length];
    const ip = `203.0.113.${v + 1}`;
    const device = v % 4 ? `dev-${v}` : undefined; // a quarter cookieless
    const events = [];
    let t = now - Math.floor(rand() * 6 * DAY) - 20 * MIN;
    const visits = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < visits && t < now - 5 * MIN; k++) {
      const campaign = pick(CAMPAIGNS);
      let url = `https://site.example${pick(PAGES)}${campaign ? `?${campaign}` : ""}`;
      let referrer = pick(REFERRERS);
      const pages = 1 + Math.floor(rand() * 4);
      for (let p = 0; p < pages && t < now - 2 * MIN; p++) {
        const e = { n: "$pageview", i: id(), ts: t, u: url, ...(referrer ? { r: referrer } : {}), ...(device ? { d: device } : {}) };
        events.push(e);
        if (rand() < 0.15) events.push({ ...e, n: "Signup", i: id(), ts: t + 5000, p: { plan: pick(["free", "pro", "team"]) } });
        if (rand() < 0.12) events.push({ ...e, n: "$outbound_link", i: id(), ts: t + 8000, p: { href: pick(LINKS) } });
        if (rand() < 0.05) events.push({ ...e, n: "$file_download", i: id(), ts: t + 9000, p: { href: "https://site.example/files/guide.pdf" } });
        referrer = url;
        url = `https://site.example${pick(PAGES)}`;
        t += Math.floor(15_000 + rand() * 8 * MIN);
      }
      t += Math.floor(40 * MIN + rand() * 20 * HOUR);
    }
    for (let i = 0; i < events.length; i += 10) batches.push({ ua, ip, events: events.slice(i, i + 10) });
  }
  // Visitors on the site right now: the realtime panel's.
  for (let v = 0; v < 3; v++) {
    batches.push({ ua: UAS[v], ip: `203.0.113.${200 + v}`, events: [{ n: "$pageview", i: id(), ts: now - (v + 1) * MIN, u: "https://site.example/", d: `now-${v}` }] });
  }
  const imports = [];
  for (let day = 7; day < 57; day++) {
    for (let v = 0; v < 3 + Math.floor(rand() * 5); v++) {
      const who = `old-${day}-${v}`;
      let time = now - day * DAY - Math.floor(rand() * 20 * HOUR);
      const campaign = pick(CAMPAIGNS);
      for (let p = 0; p < 1 + Math.floor(rand() * 3); p++) {
        imports.push({ event: "$mp_web_page_view", properties: { time: Math.floor(time / 1000), distinct_id: who, $insert_id: id(),
          $current_url: `https://site.example${pick(PAGES)}${p === 0 && campaign ? `?${campaign}` : ""}`, $referrer: p === 0 ? pick(["$direct", "https://www.google.com/"]) : "$direct" } });
        if (rand() < 0.1) imports.push({ event: "Signup", properties: { time: Math.floor(time / 1000) + 5, distinct_id: who, $insert_id: id(), plan: pick(["free", "pro"]) } });
        time += 60_000;
      }
    }
  }
  const sent = batches.reduce((n, b) => n + b.events.length, 0) + imports.length;
  return { batches, imports, sent };
}

const sharedProjects = JSON.stringify(PROJECTS);
let worker, browser;
const api = async (pathAndQuery, key = VIEWER) => {
  const r = await fetch(`${worker.base}${pathAndQuery}`, { headers: { "x-api-key": key } });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body;
};
const overview = (query, key) => api(`/api/stats?${query}`, key);

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  worker = await startWorker({
    vars: { PROJECTS: sharedProjects, RATE_LIMITS: "off", VISIT_FINALIZE_AFTER_SECONDS: "1" },
    testScheduled: true,
  });
  browser = await launchBrowser();
  const data = dataset(Date.now());
  for (const b of data.batches) {
    const r = await collect(worker.base, b.events, { userAgent: b.ua, headers: { "cf-connecting-ip": b.ip } });
    assert.equal(r.status, 202, await r.text());
  }
  for (let i = 0; i < data.imports.length; i += 500) {
    const r = await fetch(`${worker.base}/import`, {
      method: "POST",
      headers: { authorization: `Basic ${Buffer.from(`${SECRET}:`).toString("base64")}`, "content-type": "application/json" },
      body: JSON.stringify(data.imports.slice(i, i + 500)),
    });
    assert.equal(r.status, 200, await r.text());
  }
  // A second project with a little traffic of its own, for the switcher.
  assert.equal((await collect(worker.base, [{ n: "$pageview", i: "shop-1", ts: Date.now() - HOUR, d: "s1", u: "https://shop.example/" },
    { n: "$pageview", i: "shop-2", ts: Date.now() - HOUR, d: "s2", u: "https://shop.example/cart" }], { token: "shop-token" })).status, 202);
  const deadline = Date.now() + 120_000;
  let total = 0;
  while (Date.now() < deadline) {
    total = (await (await fetch(`${worker.base}/public/events?limit=1`, { headers: { "x-api-key": SECRET } })).json()).total;
    if (total >= data.sent) break;
    await sleep(500);
  }
  assert.equal(total, data.sent, "every generated event was stored");
  await sleep(1500);
  await worker.runCron(); // visits quiet for a second are made final
});

after(async () => {
  await browser?.close();
  await worker?.stop();
});

/** A dashboard page that records console errors (CSP violations among them). */
async function dashboardPage(viewport = DESKTOP, url = "/dashboard.html") {
  const { context, page } = await humanPage(browser, { viewport, acceptDownloads: true });
  const problems = [];
  page.on("console", (m) => { if (m.type() === "error") problems.push(m.text()); });
  page.on("pageerror", (e) => problems.push(String(e)));
  await page.goto(`${worker.base}${url}`);
  return { context, page, problems };
}

const ready = (page, previous) =>
  page.waitForFunction((prev) => document.body.dataset.state === "ready" && document.body.dataset.view !== prev, previous ?? "\u0000");
const viewOf = (page) => page.evaluate(() => document.body.dataset.view);

async function logIn(page, key) {
  await page.fill("#key-input", key);
  await page.click("#login-submit");
  await page.waitForFunction(() => ["ready", "login-error", "error"].includes(document.body.dataset.state));
}

function noProblems(problems) {
  assert.deepEqual(problems, [], "no console errors, no CSP violations");
}

/** The API query the page's view stands for (its own record of what it asked). */
async function shownQuery(page) {
  return viewOf(page);
}

async function cards(page) {
  return page.$$eval("#cards [data-metric]", (els) => els.map((e) => ({
    metric: e.dataset.metric, value: e.querySelector("[data-value]").textContent, change: e.querySelector("[data-change]").textContent,
  })));
}
function expectedCards(answer) {
  return METRICS.map((m) => ({ metric: m, value: shown(m, answer.totals[m]), change: changeText(m, answer.totals[m], answer.previous.totals[m]) }));
}
/** Under a goal filter: unique and total conversions, and the rate over the visitors of the view without the goal. */
function expectedGoalCards(goal, base) {
  const rate = (t, all) => (all.visitors ? Math.round((1000 * t.visitors) / all.visitors) / 10 : 0);
  const now = rate(goal.totals, base.totals);
  const before = rate(goal.previous.totals, base.previous.totals);
  return [
    { metric: "visitors", value: int(goal.totals.visitors), change: changeText("visitors", goal.totals.visitors, goal.previous.totals.visitors) },
    { metric: "events", value: int(goal.totals.events), change: changeText("events", goal.totals.events, goal.previous.totals.events) },
    { metric: "conversion_rate", value: `${dec(now)}%`, change: changeText("conversion_rate", now, before) },
  ];
}

/** The rows of a breakdown table on the page: raw value and each column as shown. */
async function tableRows(page, selector) {
  return page.$$eval(`${selector} tbody tr`, (trs) => trs.map((tr) => ({
    value: tr.dataset.row,
    cells: Object.fromEntries([...tr.querySelectorAll("[data-column]")].map((td) => [td.dataset.column, td.textContent])),
  })));
}
function expectedRows(rows, columns) {
  return rows.map((r) => ({ value: r.value ?? "", cells: Object.fromEntries(columns.map((c) => [c, shown(c, r[c])])) }));
}

/** Every panel tab's rows against the answer's breakdowns. */
async function checkPanels(page, answer) {
  for (const [panel, dims] of Object.entries(PANELS)) {
    for (const dim of dims) {
      if (dims.length > 1) await page.click(`#panel-${panel} [data-tab="${dim}"]`);
      // A tab the overview did not read is read when opened.
      await page.waitForSelector(`#panel-${panel} .panel-body[data-panel-dim="${dim}"][data-state="ready"]`);
      const rows = answer.breakdowns[dim].rows;
      if (!rows.length) {
        assert.equal(await page.locator(`#panel-${panel} .empty-note`).count(), 1, `${dim}: says it is empty`);
        continue;
      }
      assert.deepEqual(await tableRows(page, `#panel-${panel} table[data-dim="${dim}"]`), expectedRows(rows, columnsOf(dim)), `panel ${dim}`);
    }
    if (dims.length > 1) await page.click(`#panel-${panel} [data-tab="${dims[0]}"]`);
  }
}

async function checkScreen(page, query, what) {
  const answer = await overview(query);
  assert.deepEqual(await cards(page), expectedCards(answer), `${what}: cards`);
  await checkPanels(page, answer);
  return answer;
}

async function axe(page, what) {
  await page.evaluate(AXE_SOURCE); // CDP's evaluate: the page's CSP would refuse a script tag
  const result = await page.evaluate(() => window.axe.run(document, { resultTypes: ["violations"] }));
  const violations = result.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.length, target: v.nodes[0]?.target?.join(" ") }));
  const bad = violations.filter((v) => v.impact === "serious" || v.impact === "critical");
  assert.deepEqual(bad, [], `${what}: no serious or critical axe violations`);
  return violations;
}

/** The first screen and the whole page, scrolled to the top (a sticky bar
 *  otherwise lands mid-page in a full-page shot). */
async function shoot(page, name) {
  await page.keyboard.press("Escape");
  await page.evaluate(() => { document.activeElement?.blur(); window.scrollTo(0, 0); });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}-top.png`) });
  await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
}

const axeReport = {};
const figures = {};

test("the dashboard and its files carry the strict CSP and the other headers", async () => {
  for (const file of ["/dashboard.html", "/dashboard.js", "/dashboard.css"]) {
    const r = await fetch(`${worker.base}${file}`);
    assert.equal(r.status, 200, file);
    assert.equal(r.headers.get("content-security-policy"), CSP, file);
    assert.equal(r.headers.get("x-content-type-options"), "nosniff", file);
    assert.equal(r.headers.get("cache-control"), "no-store", file);
    assert.equal(r.headers.get("referrer-policy"), "no-referrer", file);
  }
  const html = readFileSync(path.join(WWW, "dashboard.html"), "utf8");
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/i, "no inline script");
  assert.doesNotMatch(html, /\sstyle=|<style|\son[a-z]+=/i, "no inline style or handler attributes");
  assert.doesNotMatch(readFileSync(path.join(WWW, "dashboard.js"), "utf8"), /stats\/v1|innerHTML|insertAdjacentHTML/, "stats v2 only; no HTML strings");
});

test("a wrong key or the public token is refused with a clear message; nothing is kept", async () => {
  const { context, page, problems } = await dashboardPage();
  assert.equal(await page.getAttribute("body", "data-state"), "login");
  assert.equal(await page.textContent('label[for="key-input"]'), "Viewer key");
  await logIn(page, "not-the-key");
  assert.equal(await page.textContent("#login-error"), "That key was not accepted.");
  assert.ok(await page.isHidden("#dash-view"));
  await logIn(page, TOKEN);
  assert.match(await page.textContent("#login-error"), /public token/);
  assert.equal(await page.evaluate(() => sessionStorage.getItem("edgetrack.dashboard.keys")), null, "a refused key is not kept");
  assert.deepEqual(problems.filter((p) => !/status of 40[13]/.test(p)), [], "only the refusals themselves are logged");
  await context.close();
});

test("with the viewer key every number on screen equals the stats API: cards, changes, chart points, every panel", async () => {
  const { context, page, problems } = await dashboardPage();
  await logIn(page, VIEWER);
  assert.equal(await page.getAttribute("body", "data-state"), "ready");
  assert.equal(await page.inputValue("#period-select"), "30d", "the default range is the last 30 days");
  const answer = await checkScreen(page, "period=30d", "30 days");
  assert.equal(answer.access, "viewer");
  assert.ok(answer.totals.visits > 50 && answer.previous.totals.visits > 20, "both periods have traffic");
  assert.ok(answer.breakdowns.goal.rows.length === 2 && answer.breakdowns.outbound.rows.length === 3, "goals and outbound links have rows");
  assert.match(await page.textContent("#range-label"), new RegExp(`times in ${ZONE.replace("/", "\\/")}`), "the page names the project's zone");
  assert.match(await page.textContent("#footnote"), /Europe\/Berlin/);

  // The chart: one point per bucket; the arrow keys read each one, with the previous period's.
  assert.equal(await page.getAttribute(".chart-svg", "data-buckets"), String(answer.series.length));
  await page.focus(".chart-wrap");
  for (let i = 0; i < answer.series.length; i++) {
    await page.keyboard.press("ArrowRight");
    const tip = await page.$$eval(".chart-tip span", (s) => s.map((x) => x.textContent));
    assert.equal(tip[0], `Unique visitors: ${shown("visitors", answer.series[i].visitors)}`, `point ${i}`);
    assert.match(tip[1], new RegExp(`: ${shown("visitors", answer.previous.series[i].visitors)}$`), `previous point ${i}`);
  }
  // A card is a button: Enter on it switches the chart's metric, into the address.
  await page.focus('[data-metric="pageviews"]');
  await page.keyboard.press("Enter");
  assert.equal(await page.getAttribute('[data-metric="pageviews"]', "aria-pressed"), "true");
  assert.equal(await page.textContent("#chart-title"), "Total pageviews");
  assert.equal(new URL(page.url()).searchParams.get("metric"), "pageviews");
  await page.focus(".chart-wrap");
  await page.keyboard.press("ArrowLeft");
  const last = answer.series.at(-1);
  assert.equal(await page.textContent(".chart-tip span"), `Total pageviews: ${shown("pageviews", last.pageviews)}`);

  figures.axeDesktop = axeReport.desktop = await axe(page, "1280 px");
  await shoot(page, "dashboard-1280");
  noProblems(problems);
  await context.close();
});

test("clicking rows filters the whole dashboard, several at once, each removable; the numbers follow the API", async () => {
  const { context, page, problems } = await dashboardPage();
  await logIn(page, VIEWER);
  const base = await overview("period=30d");
  // A source, then a device: two filters.
  const source = base.breakdowns.source.rows.find((r) => r.value !== null);
  let view = await viewOf(page);
  await page.click(`#panel-sources tr[data-row="${source.value}"] .row-filter`);
  await ready(page, view);
  const one = [["is", "source", [source.value]]];
  assert.deepEqual(JSON.parse(new URL(page.url()).searchParams.get("filters")), one);
  const filtered = await checkScreen(page, `period=30d&filters=${encodeURIComponent(JSON.stringify(one))}`, "one filter");
  assert.equal(filtered.plan, "raw");
  assert.ok(filtered.totals.visits < base.totals.visits, "the filter narrowed the numbers");

  await page.click('#panel-devices [data-tab="device"]');
  const device = filtered.breakdowns.device.rows.find((r) => r.value !== null);
  view = await viewOf(page);
  await page.click(`#panel-devices tr[data-row="${device.value}"] .row-filter`);
  await ready(page, view);
  const two = [...one, ["is", "device", [device.value]]];
  assert.deepEqual(JSON.parse(new URL(page.url()).searchParams.get("filters")), two);
  assert.equal(await page.locator("#filter-chips li").count(), 2);
  await checkScreen(page, `period=30d&filters=${encodeURIComponent(JSON.stringify(two))}`, "two filters");

  // Removing the first leaves the second, as the API counts it.
  view = await viewOf(page);
  await page.click('#filter-chips [data-remove-filter="0"]');
  await ready(page, view);
  const left = [["is", "device", [device.value]]];
  assert.deepEqual(JSON.parse(new URL(page.url()).searchParams.get("filters")), left);
  await checkScreen(page, `period=30d&filters=${encodeURIComponent(JSON.stringify(left))}`, "the device filter alone");

  // A goal row filters by the goal; removing every filter brings back the first numbers.
  view = await viewOf(page);
  await page.click('#filter-chips [data-remove-filter="0"]');
  await ready(page, view);
  assert.equal(new URL(page.url()).searchParams.get("filters"), null);
  assert.deepEqual(await cards(page), expectedCards(base));
  view = await viewOf(page);
  await page.click('#panel-goals tr[data-row="Signup"] .row-filter');
  await ready(page, view);
  // The cards become the goal's: conversions and the conversion rate.
  const goal = await overview(`period=30d&filters=${encodeURIComponent(JSON.stringify([["is", "goal", ["Signup"]]]))}`);
  assert.deepEqual(await cards(page), expectedGoalCards(goal, base), "goal cards");
  await checkPanels(page, goal);
  assert.equal(goal.totals.visitors, base.breakdowns.goal.rows.find((r) => r.value === "Signup").visitors, "converting visitors");
  const signupRate = base.breakdowns.goal.rows.find((r) => r.value === "Signup").conversion_rate;
  assert.equal(await page.textContent('[data-metric="conversion_rate"] [data-value]'), `${dec(signupRate)}%`, "the card's rate is the goal panel's");
  // Back in history is the unfiltered view again.
  view = await viewOf(page);
  await page.goBack();
  await ready(page, view);
  assert.deepEqual(await cards(page), expectedCards(base));
  // An address with the goal and the rate as the chart's metric charts the rate per day.
  view = await viewOf(page);
  await page.goto(`${worker.base}/dashboard?project=demo&period=30d&filters=${encodeURIComponent(JSON.stringify([["is", "goal", ["Signup"]]]))}&metric=conversion_rate`);
  await ready(page, view);
  assert.equal(await page.textContent("#chart-title"), "Conversion rate");
  const baseSeries = (await overview("period=30d&breakdowns=")).series;
  const rateOf = (p, b) => (b.visitors ? Math.round((1000 * p.visitors) / b.visitors) / 10 : 0);
  await page.focus(".chart-wrap");
  for (let i = 0; i < goal.series.length; i++) {
    await page.keyboard.press("ArrowRight");
    assert.equal(await page.textContent(".chart-tip span"), `Conversion rate: ${dec(rateOf(goal.series[i], baseSeries[i]))}%`, `rate point ${i}`);
  }
  noProblems(problems);
  await context.close();
});

test("the address restores the view after a reload: range, filters and metric", async () => {
  const { context, page, problems } = await dashboardPage();
  await logIn(page, VIEWER);
  let view = await viewOf(page);
  await page.selectOption("#period-select", "7d");
  await ready(page, view);
  const week = await overview("period=7d");
  view = await viewOf(page);
  const browserName = week.breakdowns.browser.rows[0].value;
  await page.click('#panel-devices [data-tab="browser"]');
  await page.click(`#panel-devices tr[data-row="${browserName}"] .row-filter`);
  await ready(page, view);
  await page.click('[data-metric="bounce_rate"]');
  const address = page.url();
  assert.match(address, /period=7d/);
  assert.match(address, /metric=bounce_rate/);

  // Responses during the reload: what one dashboard load reads from D1.
  const reads = [];
  page.on("response", async (r) => {
    if (!/\/api\/stats(\/realtime)?\?/.test(r.url())) return;
    try { reads.push({ url: r.url(), d1: (await r.json()).d1 }); } catch {}
  });
  await page.reload();
  await ready(page);
  assert.equal(page.url(), address);
  assert.equal(await page.inputValue("#period-select"), "7d");
  assert.equal(await page.getAttribute('[data-metric="bounce_rate"]', "aria-pressed"), "true");
  assert.equal(await page.textContent("#chart-title"), "Bounce rate");
  assert.equal(await page.locator("#filter-chips li").count(), 1);
  await checkScreen(page, `period=7d&filters=${encodeURIComponent(JSON.stringify([["is", "browser", [browserName]]]))}`, "restored");
  figures.firstRenderFilteredMs = Number(await page.evaluate(() => document.body.dataset.firstRenderMs));

  // An unfiltered reload: the common case, for the figures.
  reads.length = 0;
  await page.goto(`${worker.base}/dashboard?period=30d`);
  await ready(page);
  await page.waitForFunction(() => Number(document.body.dataset.realtime) >= 1);
  await sleep(200);
  figures.firstRenderMs = Number(await page.evaluate(() => document.body.dataset.firstRenderMs));
  figures.d1 = reads.map((r) => ({ what: new URL(r.url).pathname, ...r.d1 }));
  noProblems(problems);
  await context.close();
});

test("every range: the numbers are the API's for it, in the project's zone; a custom range from the date fields", async () => {
  const { context, page, problems } = await dashboardPage();
  await logIn(page, VIEWER);
  for (const period of ["day", "yesterday", "7d", "month", "last_month", "12mo", "30d"]) {
    const view = await viewOf(page);
    await page.selectOption("#period-select", period);
    await ready(page, view);
    const answer = await overview(`period=${period}`);
    assert.deepEqual(await cards(page), expectedCards(answer), period);
    assert.equal(await page.getAttribute(".chart-svg", "data-buckets"), String(answer.series.length), `${period} buckets`);
    assert.equal(answer.timezone, ZONE);
  }
  await page.selectOption("#period-select", "custom");
  const to = new Date(Date.now() - 2 * DAY).toISOString().slice(0, 10);
  const from = new Date(Date.now() - 20 * DAY).toISOString().slice(0, 10);
  await page.fill("#from-input", from);
  await page.fill("#to-input", to);
  const view = await viewOf(page);
  await page.click('#range-form button[type="submit"]');
  await ready(page, view);
  assert.match(page.url(), new RegExp(`period=custom&from=${from}&to=${to}`));
  await checkScreen(page, `period=custom&from=${from}&to=${to}`, "custom");
  // A reversed range is caught before asking the API.
  await page.fill("#from-input", to);
  await page.fill("#to-input", from);
  await page.click('#range-form button[type="submit"]');
  assert.equal(await page.textContent("#dash-error"), "Pick a start date on or before the end date.");
  noProblems(problems);
  await context.close();
});

test("'more' shows every row a page at a time; its CSV has the same rows; a property breakdown equals the API", async () => {
  const { context, page, problems } = await dashboardPage();
  await logIn(page, VIEWER);
  for (const [panel, dim] of [["pages", "page"], ["sources", "source"], ["outbound", "outbound"], ["goals", "goal"]]) {
    await page.click(`#panel-${panel} [data-more="${dim}"]`);
    await page.waitForFunction(() => document.getElementById("more-dialog").dataset.state === "ready");
    const full = await api(`/api/stats/breakdown?period=30d&dim=${dim}&limit=100&page=1`);
    const columns = moreColumnsOf(dim);
    const rows = await tableRows(page, "#more-body");
    assert.deepEqual(rows, expectedRows(full.rows, columns), `more ${dim}`);
    assert.equal(await page.isDisabled("#more-next"), !full.more);
    const [download] = await Promise.all([page.waitForEvent("download"), page.click("#more-csv")]);
    const csv = readFileSync(await download.path(), "utf8").trim().split("\r\n").map(parseCsvLine);
    assert.deepEqual(csv[0], [dim, ...columns]);
    assert.deepEqual(csv.slice(1).map(([value, ...cells]) => ({ value, cells: Object.fromEntries(columns.map((c, i) => [c, shown(c, Number(cells[i]))])) })), rows, `CSV ${dim} rows equal the panel's`);
    assert.deepEqual(csv.slice(1).map((r) => r[0]), full.rows.map((r) => r.value ?? ""), `CSV ${dim} values`);
    if (dim === "page") {
      await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-more-1280.png") });
      axeReport.dialog = await axe(page, "the more dialog");
      // The search is one more filter ("contains"), for the rows and the CSV.
      await page.fill("#more-search", "blog");
      await page.waitForFunction(() => document.getElementById("more-dialog").dataset.state === "ready" &&
        document.querySelectorAll("#more-body tbody tr").length > 0 &&
        [...document.querySelectorAll("#more-body tbody tr")].every((tr) => tr.dataset.row.includes("blog")));
      const searched = await api(`/api/stats/breakdown?period=30d&dim=page&limit=100&page=1&filters=${encodeURIComponent(JSON.stringify([["contains", "page", ["blog"]]]))}`);
      assert.ok(searched.rows.length >= 2 && searched.rows.length < full.rows.length);
      const searchedRows = await tableRows(page, "#more-body");
      assert.deepEqual(searchedRows, expectedRows(searched.rows, columns), "searched rows");
      const [again] = await Promise.all([page.waitForEvent("download"), page.click("#more-csv")]);
      const searchedCsv = readFileSync(await again.path(), "utf8").trim().split("\r\n").map(parseCsvLine);
      assert.deepEqual(searchedCsv.slice(1).map((r) => r[0]), searched.rows.map((r) => r.value), "the CSV follows the search");
    }
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => !document.getElementById("more-dialog").open);
  }
  // Custom events broken down by one property (rolled up: "plan").
  await page.click('#panel-events [data-tab="prop"]');
  await page.waitForSelector('#panel-events table[data-dim="prop:Signup:plan"]');
  const plan = await api(`/api/stats/breakdown?period=30d&dim=${encodeURIComponent("prop:Signup:plan")}&limit=10`);
  assert.ok(plan.rows.length >= 2);
  assert.deepEqual(await tableRows(page, '#panel-events table[data-dim="prop:Signup:plan"]'), expectedRows(plan.rows, ["visitors", "events"]));
  noProblems(problems);
  await context.close();
});

function parseCsvLine(line) {
  const out = [];
  let cur = "";
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') { cur += '"'; i++; } else if (c === '"') quoted = false; else cur += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") { out.push(cur); cur = ""; } else cur += c;
  }
  out.push(cur);
  return out;
}

test("at 390 px the same numbers fit the screen without sideways scrolling; axe finds nothing serious", async () => {
  const { context, page, problems } = await dashboardPage(PHONE);
  await logIn(page, VIEWER);
  assert.deepEqual(await cards(page), expectedCards(await overview("period=30d")));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
  assert.ok(overflow <= 0, `no sideways scrolling (overflow ${overflow}px)`);
  figures.axePhone = axeReport.phone = await axe(page, "390 px");
  await shoot(page, "dashboard-390");
  noProblems(problems);
  await context.close();
});

test("an empty range shows the script tag to paste, with this project's token", async () => {
  const { context, page, problems } = await dashboardPage();
  await logIn(page, VIEWER);
  const view = await viewOf(page);
  await page.goto(`${worker.base}/dashboard?period=custom&from=2020-01-01&to=2020-01-31`);
  await ready(page, view);
  assert.ok(await page.isVisible("#empty-site"));
  assert.equal(await page.textContent("#snippet"), `<script async src="${worker.base}/t.js" data-token="${TOKEN}"></script>`);
  assert.equal((await cards(page))[0].value, "0");
  await page.screenshot({ path: path.join(ARTIFACTS, "dashboard-empty-1280.png") });
  noProblems(problems);
  await context.close();
});

test("one login per project: the switcher holds each project's key in this tab and shows each one's numbers", async () => {
  const { context, page, problems } = await dashboardPage();
  await logIn(page, VIEWER);
  await page.selectOption("#project-select", "");
  await page.waitForSelector("#login-view:not([hidden])");
  await logIn(page, "shop-viewer");
  assert.deepEqual(await page.$$eval("#project-select option", (o) => o.map((x) => x.value)), ["demo", "shop", ""], "both projects, and 'Add a project'");
  assert.equal(await page.inputValue("#project-select"), "shop");
  assert.match(page.url(), /project=shop/);
  assert.deepEqual(await cards(page), expectedCards(await overview("period=30d", "shop-viewer")));
  let view = await viewOf(page);
  await page.selectOption("#project-select", "demo");
  await page.waitForFunction(() => document.body.dataset.state === "ready" && new URLSearchParams(location.search).get("project") === "demo");
  assert.deepEqual(await cards(page), expectedCards(await overview("period=30d")));
  assert.deepEqual(JSON.parse(await page.evaluate(() => sessionStorage.getItem("edgetrack.dashboard.keys"))), { demo: VIEWER, shop: "shop-viewer" });
  assert.equal(await page.evaluate(() => localStorage.length), 0, "keys stay in the tab");
  // Signing out of one project leaves the other.
  view = await viewOf(page);
  await page.click("#logout");
  await ready(page, view);
  assert.deepEqual(await page.$$eval("#project-select option", (o) => o.map((x) => x.value)), ["shop", ""]);
  noProblems(problems);
  await context.close();
});

test("the viewer key, used from the dashboard's own page, cannot import, export raw events or delete anyone", async () => {
  const { context, page } = await dashboardPage();
  await logIn(page, VIEWER);
  const statuses = await page.evaluate(async (key) => {
    const call = async (method, url, headers, body) => (await fetch(url, { method, headers, body })).status;
    return {
      export: await call("GET", "/api/2.0/export?from_date=2020-01-01&to_date=2030-01-01", { "x-api-key": key }),
      events: await call("GET", "/public/events", { "x-api-key": key }),
      import: await call("POST", "/import", { authorization: "Basic " + btoa(key + ":"), "content-type": "application/json" }, "[]"),
      delete: await call("POST", "/api/users/delete", { "x-api-key": key }, JSON.stringify({ distinct_id: "old-10-0" })),
      scrub: await call("POST", "/api/archive/scrub", { "x-api-key": key }, "{}"),
      stats: await call("GET", "/api/stats?period=7d", { "x-api-key": key }),
    };
  }, VIEWER);
  assert.deepEqual(statuses, { export: 403, events: 403, import: 403, delete: 403, scrub: 403, stats: 200 });
  await context.close();
});

test("realtime refreshes every 30 seconds on its own request, never re-running the full stats; a #key link signs in", async () => {
  const live = async (id, ip) => {
    const e = { n: "$pageview", i: id, ts: Date.now(), d: id, u: "https://site.example/live" };
    assert.equal((await collect(worker.base, [e], { headers: { "cf-connecting-ip": ip } })).status, 202);
    // A busy machine can hold the local queue's batch for a while.
    await waitForEvents(worker.base, (events) => events.some((x) => x.insert_id === id), { timeoutMs: 60_000 });
  };
  await live("dash-live-a", "203.0.113.250");
  const { context, page } = await humanPage(browser, { viewport: DESKTOP });
  const start = Date.now();
  await context.clock.install({ time: start });
  const asked = { overview: 0, realtime: 0 };
  const answers = [];
  page.on("request", (r) => {
    const p = new URL(r.url()).pathname;
    if (p === "/api/stats") asked.overview++;
    if (p === "/api/stats/realtime") asked.realtime++;
  });
  // The realtime answers the page got: the window moves every minute, so the
  // screen is compared with the very answer it shows.
  page.on("response", async (r) => {
    if (new URL(r.url()).pathname === "/api/stats/realtime") answers.push(await r.json());
  });
  const answer = async (n) => {
    for (let waited = 0; answers.length < n; waited += 20) {
      assert.ok(waited < 10_000, `realtime answer ${n} was read`);
      await sleep(20);
    }
    return answers[n - 1];
  };
  // The page's clock stands still from before it loads, so its first
  // realtime request and the timer it sets happen at one known instant.
  await context.clock.pauseAt(start + 1_000);
  await page.goto(`${worker.base}/dashboard?period=7d#key=${VIEWER}`);
  await page.waitForFunction(() => document.body.dataset.state === "ready" && Number(document.body.dataset.realtime) >= 1);
  assert.equal(new URL(page.url()).hash, "", "the key left the address at once");
  assert.equal(new URL(page.url()).searchParams.get("project"), "demo");
  const onScreen = async () => ({
    live: await page.textContent("#live-count"),
    panel: await page.textContent("#rt-visitors"),
    bars: await page.$$eval("#rt-chart rect", (r) => r.map((x) => Number(x.dataset.pageviews))),
  });
  const expected = (rt) => ({ live: int(rt.visitors), panel: int(rt.visitors), bars: rt.pageviews_per_minute.map((m) => m.pageviews) });
  const first = await answer(1);
  assert.ok(first.visitors >= 1, "the visitor of a moment ago is live");
  assert.deepEqual(await onScreen(), expected(first));
  assert.equal(first.pageviews_per_minute.length, 30);

  await live("dash-live-b", "203.0.113.251");
  const before = { ...asked };
  await page.clock.runFor(29_000);
  assert.deepEqual(asked, before, "nothing before 30 s");
  const refreshed = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/stats/realtime");
  await page.clock.runFor(1_000);
  await refreshed;
  assert.deepEqual(asked, { overview: before.overview, realtime: before.realtime + 1 }, "only the realtime request ran");
  await page.waitForFunction(() => Number(document.body.dataset.realtime) >= 2);
  const second = await answer(2);
  assert.equal(answers.length, 2, "one realtime request a refresh");
  assert.ok(second.visitors >= 2, "both fresh visitors are live");
  assert.deepEqual(await onScreen(), expected(second));
  await context.close();
});

test("figures for the notes", () => {
  assert.ok(figures.firstRenderMs > 0, "the reload test measured the first render");
  const out = { ...figures, axe: axeReport };
  writeFileSync(path.join(ARTIFACTS, "dashboard-figures.json"), JSON.stringify(out, null, 2));
  process.stderr.write(`dashboard figures: ${JSON.stringify(out)}\n`);
});

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
