// The read model end to end: a generated dataset (cookie and cookieless
// visitors, visits across hour and day boundaries, resends, retries and
// batches out of order, in three time zones) goes through the real worker;
// every number the stats API gives is compared with an independent
// reference computed by plain SQL over the raw export (reference.py). The
// export itself is compared with the dataset as sent, event by event, and
// the headline numbers of the 7-day report (visitors, visits, page views
// per path, visits per source and country, signups) are computed from the
// sent events alone and compared exactly.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { startWorker, sleep } from "./harness.mjs";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = path.resolve(HERE, "../../.venv/bin/python");
const GOALS = [{ event: "Signup" }, { page: "/pricing", name: "Visit pricing" }, { page: "/blog/*", name: "Read blog" }];
const PROJECTS = {
  demo: { token: "demo-token", secret: "demo-secret", redirect_hosts: ["127.0.0.1", "localhost"], goals: GOALS },
  ny: { token: "ny-token", secret: "ny-secret", timezone: "America/New_York", goals: GOALS, currency: "EUR" },
  kol: { token: "kol-token", secret: "kol-secret", timezone: "Asia/Kolkata", goals: GOALS },
  ber: { token: "ber-token", secret: "ber-secret", timezone: "Europe/Berlin" },
  idm: { token: "idm-token", secret: "idm-secret" },
};
const GOAL_NAMES = [
  { name: "Signup", event: "Signup" },
  { name: "Visit pricing", page: "/pricing" },
  { name: "Read blog", page: "/blog/*" },
];
const DIMS = ["page", "entry", "exit", "source", "channel", "utm_source", "utm_medium", "utm_campaign", "country",
  "region", "city", "browser", "browser_version", "os", "device", "hostname", "event", "outbound", "download", "goal"];
const MIN = 60_000;
const HOUR = 60 * MIN;

// The five browsers the dataset's visitors use, each with the screen its
// tracker would report and what enrichment must make of the pair: written
// out by hand from the browsers' own naming (major version only; a screen
// of at most 575 CSS pixels is a phone), never by calling our parser.
const AGENTS = [
  { ua: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    screen: "1440x900", browser: "Chrome", version: "130", os: "Linux", device: "Desktop" },
  { ua: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
    screen: "390x844", browser: "Safari", version: "17", os: "iOS", device: "Mobile" },
  { ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
    screen: "1920x1080", browser: "Firefox", version: "133", os: "Windows", device: "Desktop" },
  { ua: "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    screen: "1536x864", browser: "Edge", version: "131", os: "Windows", device: "Desktop" },
  { ua: "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
    screen: "412x915", browser: "Chrome", version: "124", os: "Android", device: "Mobile" },
];
// Where Cloudflare places a request (its `request.cf` object). Locally,
// `wrangler dev` takes that object from the request's `MF-CF-Blob` header
// when one is sent (and otherwise uses one fixed placeholder for every
// request), so each visitor is placed by the header the test sends.
const GEOS = [
  { country: "DE", region: "Bavaria", city: "Munich" },
  { country: "FR", region: "Ile-de-France", city: "Paris" },
  { country: "IN", region: "Karnataka", city: "Bengaluru" },
  { country: "BR", region: "Sao Paulo", city: "Sao Paulo" },
];
const IMPORT_GEO = { country: "GB", region: "England", city: "London" };
// A server library's agent: it names no browser, system or device.
const IMPORT_UA = "edgetrack-e2e-import/1.0";
// The visit source of each referrer the dataset sends (a campaign's
// utm_source, or else its ref tag, names the visit instead); pages of the
// site itself and Mixpanel's "$direct" are no source.
const SOURCE_OF_REFERRER = {
  "https://www.google.com/": "Google",
  "https://www.bing.com/search?q=shoes": "Bing",
  "https://l.facebook.com/l.php": "Facebook",
  "https://news.ycombinator.com/item?id=1": "Hacker News",
  "https://mail.google.com/mail/u/0/": "Gmail",
  "https://blog.example/post": "blog.example",
  "https://duckduckgo.com/": "DuckDuckGo",
  "$direct": null,
};
const REFERRERS = [null, null, "https://www.google.com/", "https://www.bing.com/search?q=shoes", "https://l.facebook.com/l.php",
  "https://news.ycombinator.com/item?id=1", "https://mail.google.com/mail/u/0/", "https://blog.example/post"];
const PAGES = ["/", "/pricing", "/blog/a", "/blog/b", "/docs/intro", "/#/app/orders"];
const CAMPAIGNS = [null, null, null, "utm_source=newsletter&utm_medium=email&utm_campaign=dec",
  "utm_source=google&utm_medium=cpc&utm_campaign=brand&utm_term=shoes", "ref=partner"];

function prng(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Browser batches per visitor (their agent and address), and server events. */
function dataset(now, seed) {
  const rand = prng(seed);
  const pick = (list) => list[Math.floor(rand() * list.length)];
  const requests = [];
  let serial = 0;
  const id = () => `ev-${seed}-${serial++}`;
  for (let v = 0; v < 90; v++) {
    const cookie = v < 60;
    const agent = AGENTS[v % AGENTS.length];
    const geo = GEOS[v % GEOS.length];
    const ip = `198.51.${Math.floor(v / 200)}.${v % 200 + 1}`;
    const device = cookie ? `c-${seed}-${v}` : undefined;
    const events = [];
    // Visits start anywhere in the last 30 hours; some right before an
    // hour or a day turns, so they cross it.
    let t = now - Math.floor(rand() * 30 * HOUR) - 10 * MIN;
    if (v % 7 === 0) t = Math.floor(t / HOUR) * HOUR - 3 * MIN;
    const visits = 1 + Math.floor(rand() * 3);
    for (let k = 0; k < visits && t < now - 2 * MIN; k++) {
      const campaign = pick(CAMPAIGNS);
      const referrer = pick(REFERRERS);
      let url = `https://shop.example${pick(PAGES)}`;
      if (campaign) url += (url.includes("#") ? "" : `?${campaign}`);
      const screen = agent.screen;
      const pages = 1 + Math.floor(rand() * 5);
      let previous = null;
      for (let pv = 0; pv < pages && t < now - MIN; pv++) {
        const e = { n: "$pageview", i: id(), ts: t, u: url, s: screen, r: previous ?? referrer ?? undefined };
        if (device) e.d = device;
        events.push(e);
        if (rand() < 0.3) events.push({ ...e, n: "$engagement", i: id(), ts: t + 5000, p: { engaged_ms: Math.floor(rand() * 40_000), scroll: 50 } });
        if (rand() < 0.12) events.push({ ...e, n: "Signup", i: id(), ts: t + 7000, p: { plan: pick(["free", "pro"]), $revenue: { amount: 9.5, currency: pick(["EUR", "USD"]) } } });
        if (rand() < 0.1) events.push({ ...e, n: "$outbound_link", i: id(), ts: t + 9000, p: { href: pick(["https://github.com/x", "https://docs.rs/y"]) } });
        previous = url;
        url = `https://shop.example${pick(PAGES)}`;
        // Pauses count from the visit's latest event (a page's engagement,
        // signup or click comes seconds after it). 29:59 keeps the visit,
        // other pauses are ordinary reading.
        const last = events.at(-1).ts;
        t = last + (rand() < 0.1 ? 30 * MIN - 1000 : Math.floor(10_000 + rand() * 20 * MIN));
      }
      // Exactly 30 minutes after its latest event ends a visit; most pauses
      // are longer.
      t = events.at(-1).ts + (rand() < 0.2 ? 30 * MIN : Math.floor(31 * MIN + rand() * 5 * HOUR));
    }
    // Cut the visitor's events into batches, in random sizes.
    const cut = events.filter((e) => e.ts < now);
    while (cut.length) {
      requests.push({ kind: "collect", ua: agent.ua, agent, ip, geo, events: cut.splice(0, 1 + Math.floor(rand() * 12)) });
    }
  }
  // Server events: invoices without a page, and mixpanel-browser's page
  // views, through /import.
  const imports = [];
  for (let n = 0; n < 40; n++) {
    const time = now - Math.floor(rand() * 30 * HOUR) - MIN;
    imports.push({ event: "invoice_paid", properties: { time: Math.floor(time / 1000), distinct_id: `user-${n % 13}`, $insert_id: id() } });
    imports.push({ event: "$mp_web_page_view", properties: { time: Math.floor(time / 1000), distinct_id: `mp-${n % 9}`, $insert_id: id(),
      $current_url: `https://shop.example${pick(PAGES)}`, $referrer: pick(["$direct", "https://duckduckgo.com/"]) } });
  }
  requests.push({ kind: "import", ua: IMPORT_UA, geo: IMPORT_GEO, events: imports });
  // Resends: some requests exactly again, some events again in new batches.
  const resends = requests.filter(() => rand() < 0.15).map((r) => ({ ...r }));
  const retried = requests.filter((r) => r.kind === "collect" && rand() < 0.05).map((r) => ({ ...r, events: r.events.slice(0, 2) }));
  const all = [...requests, ...resends, ...retried];
  for (let i = all.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [all[i], all[j]] = [all[j], all[i]];
  }
  // Every event once, with the request that first carried it.
  const sent = new Map();
  for (const request of requests) {
    for (const event of request.events) sent.set(event.i ?? event.properties.$insert_id, { event, request });
  }
  return { requests: all, sent, distinct: sent.size, resent: resends.length + retried.length };
}

let worker;
before(async () => {
  // Visits are made final a second after their last write (30 minutes in
  // production), when the test runs the cron.
  worker = await startWorker({
    vars: { PROJECTS: JSON.stringify(PROJECTS), RATE_LIMITS: "off", VISIT_FINALIZE_AFTER_SECONDS: "1" },
    testScheduled: true,
  });
});
after(async () => worker?.stop());

const basic = (secret) => `Basic ${Buffer.from(`${secret}:`).toString("base64")}`;

async function send(project, request) {
  const { token, secret } = PROJECTS[project];
  // The UTC day the worker receives the request on picks the cookieless
  // salt; the test's clock is the worker's (one machine).
  request.sentDay = new Date().toISOString().slice(0, 10);
  const placed = request.geo ? { "mf-cf-blob": JSON.stringify(request.geo) } : {};
  if (request.kind === "import") {
    const r = await fetch(`${worker.base}/import`, {
      method: "POST",
      headers: { authorization: basic(secret), "content-type": "application/json", "user-agent": request.ua, ...placed },
      body: JSON.stringify(request.events),
    });
    assert.equal(r.status, 200, await r.text());
    return;
  }
  const r = await fetch(`${worker.base}/collect`, {
    method: "POST",
    headers: { "content-type": "text/plain", "user-agent": request.ua, "cf-connecting-ip": request.ip, ...placed },
    body: JSON.stringify({ t: token, e: request.events }),
  });
  assert.equal(r.status, 202, await r.text());
}

/** Waits until the project holds `count` events: the consumer is done. */
async function stored(project, count) {
  const deadline = Date.now() + 90_000;
  let total = -1;
  while (Date.now() < deadline) {
    const r = await fetch(`${worker.base}/public/events?limit=1`, { headers: { "x-api-key": PROJECTS[project].secret } });
    total = (await r.json()).total;
    if (total === count) return;
    assert.ok(total < count, `more events stored (${total}) than distinct sent (${count})`);
    await sleep(300);
  }
  assert.fail(`only ${total} of ${count} events were stored`);
}

/** The raw export, page by page through its cursor. */
async function exportAll(project, from, to) {
  const lines = [];
  let after = "";
  for (;;) {
    const r = await fetch(`${worker.base}/api/2.0/export?from_date=${from}&to_date=${to}&limit=300${after}`, {
      headers: { "x-api-key": PROJECTS[project].secret },
    });
    assert.equal(r.status, 200);
    const page = (await r.text()).split("\n").filter(Boolean);
    lines.push(...page);
    if (page.length < 300) return lines;
    after = `&after=${encodeURIComponent(JSON.parse(page.at(-1)).cursor)}`;
  }
}

function reference(lines, query) {
  const out = execFileSync(PYTHON, [path.join(HERE, "reference.py"), JSON.stringify(query)], {
    input: lines.join("\n"),
    maxBuffer: 64 * 1024 * 1024,
  });
  return JSON.parse(out.toString());
}

async function api(project, query) {
  const r = await fetch(`${worker.base}/api/stats?${query}`, { headers: { "x-api-key": PROJECTS[project].secret } });
  const body = await r.json();
  assert.equal(r.status, 200, JSON.stringify(body));
  return body;
}

const PAGEVIEW_EVENTS = ["$pageview", "$mp_web_page_view"];
const VISIT_GAP_MS = 30 * MIN;

/** The page path of a URL: its path, and a hash route ("#/…") after it. */
function pathOf(url) {
  const u = new URL(url);
  if (!u.hash.startsWith("#/")) return u.pathname;
  const route = u.hash.slice(1).split("?")[0];
  return u.pathname === "/" ? `/#${route}` : `${u.pathname.replace(/\/+$/, "")}#${route}`;
}

/** A visit's source by the rule the README gives: utm_source, else the ref
 *  tag, else the referrer's name (none for the site's own pages). */
function sourceOf(url, referrer) {
  const query = url ? new URL(url).searchParams : new URLSearchParams();
  if (query.get("utm_source")) return query.get("utm_source");
  if (query.get("ref")) return query.get("ref");
  if (!referrer || new URL(referrer, "https://shop.example/").hostname === "shop.example") return null;
  assert.ok(referrer in SOURCE_OF_REFERRER, `the test names the source of ${referrer}`);
  return SOURCE_OF_REFERRER[referrer];
}

/** A sent event in one shape, whichever route it took. A cookieless
 *  visitor is its (address, agent, UTC day received) group: the worker's id
 *  for it is a keyed hash with a daily random salt the test cannot know. */
function flat({ event: e, request: r }) {
  if (r.kind === "import") {
    const { time, distinct_id, $insert_id, $current_url, $referrer, ...rest } = e.properties;
    return { id: $insert_id, name: e.event, time_ms: time * 1000, url: $current_url, referrer: $referrer,
      visitor: distinct_id, device: undefined, props: rest, request: r };
  }
  return { id: e.i, name: e.n, time_ms: e.ts, url: e.u, referrer: e.r, screen: e.s, props: e.p ?? {}, request: r,
    device: e.d, visitor: e.d ?? `cookieless ${r.ip} ${r.ua} ${r.sentDay}` };
}

/** The export properties the test can name for a sent event, from what it
 *  sent alone; `undefined` is a property that must be absent. */
function expectedProperties(f) {
  const page = f.url ? new URL(f.url) : null;
  const campaign = (key) => page?.searchParams.get(key) ?? undefined;
  const agent = f.request.agent;
  return {
    ...f.props,
    $current_url: f.url,
    $path: page ? pathOf(f.url) : undefined,
    $host: page?.hostname,
    $referrer: f.referrer,
    $source: page ? sourceOf(f.url, f.referrer) ?? undefined : undefined,
    $screen: f.screen,
    utm_source: campaign("utm_source"),
    utm_medium: campaign("utm_medium"),
    utm_campaign: campaign("utm_campaign"),
    utm_term: campaign("utm_term"),
    $browser: agent?.browser,
    $browser_version: agent?.version,
    $os: agent?.os,
    $device_type: agent?.device,
    mp_country_code: f.request.geo.country,
    $region: f.request.geo.region,
    $city: f.request.geo.city,
  };
}

/**
 * The export against the dataset as sent, event by event by insert id:
 * every sent event is there once (resends and retries included) and
 * nothing else is; its name, visitor, time and page are what was sent, and
 * its enrichment is what the test's own tables say. Returns the number of
 * fields compared.
 */
function compareExportWithSent(lines, data) {
  const byId = new Map();
  for (const line of lines) {
    const row = JSON.parse(line);
    const id = row.properties.$insert_id;
    assert.ok(!byId.has(id), `${id} is exported once`);
    byId.set(id, row);
  }
  assert.deepEqual([...byId.keys()].sort(), [...data.sent.keys()].sort(), "the export holds exactly the events sent");
  let fields = 0;
  const cookieless = new Map(); // group -> the worker's id for it
  for (const sent of data.sent.values()) {
    const f = flat(sent);
    const row = byId.get(f.id);
    const what = `${f.id} (${f.name})`;
    assert.equal(row.event, f.name, `${what} name`);
    assert.equal(Number(row.cursor.split(":")[0]), f.time_ms, `${what} time in ms`);
    assert.equal(row.properties.time, Math.floor(f.time_ms / 1000), `${what} time in seconds`);
    if (f.request.kind === "import" || f.device) {
      assert.equal(row.properties.distinct_id, f.visitor, `${what} distinct id`);
      assert.equal(row.properties.$device_id, f.device, `${what} device id`);
    } else {
      const id = row.properties.distinct_id;
      assert.match(id, /^cl-[0-9a-f]{32}$/, `${what} cookieless id`);
      assert.equal(row.properties.$device_id, id, `${what} cookieless device id`);
      assert.equal(cookieless.get(f.visitor) ?? id, id, `${what}: one id for its address, agent and day`);
      cookieless.set(f.visitor, id);
    }
    fields += 5;
    const want = expectedProperties(f);
    const got = Object.fromEntries(Object.keys(want).map((k) => [k, row.properties[k]]));
    assert.deepEqual(got, want, `${what} properties`);
    fields += Object.keys(want).length;
  }
  const ids = [...cookieless.values()];
  assert.equal(new Set(ids).size, ids.length, "each cookieless group has its own id");
  assert.ok(ids.length > 0 && cookieless.size < data.distinct, "the dataset has cookieless and identified visitors");
  return fields;
}

/** Headline numbers of the 7-day report from the distinct sent events. */
function headlinesFromSent(data) {
  const events = [...data.sent.values()].map(flat);
  const pages = {};
  for (const e of events) if (PAGEVIEW_EVENTS.includes(e.name)) pages[pathOf(e.url)] = (pages[pathOf(e.url)] ?? 0) + 1;
  // Visits: each visitor's page events in time order, cut at every pause
  // of 30 minutes or more; a visit's source and country are its first
  // event's.
  const byVisitor = new Map();
  for (const e of events.filter((e) => e.url)) byVisitor.set(e.visitor, [...(byVisitor.get(e.visitor) ?? []), e]);
  const sources = {};
  const countries = {};
  let visits = 0;
  const edges = { ended: 0, kept: 0 }; // pauses of exactly 30:00 and 29:59
  for (const [visitor, list] of byVisitor) {
    list.sort((a, b) => a.time_ms - b.time_ms || (a.id < b.id ? -1 : 1));
    list.forEach((e, n) => {
      const pause = n > 0 ? e.time_ms - list[n - 1].time_ms : Infinity;
      if (pause === VISIT_GAP_MS) edges.ended++;
      if (pause === VISIT_GAP_MS - 1000) edges.kept++;
      if (pause < VISIT_GAP_MS) return;
      visits++;
      const source = sourceOf(e.url, e.referrer) ?? "";
      sources[source] = (sources[source] ?? 0) + 1;
      const c = (countries[e.request.geo.country] ??= { visitors: new Set(), visits: 0 });
      c.visitors.add(visitor);
      c.visits++;
    });
  }
  const signups = events.filter((e) => e.name === "Signup");
  return {
    totals: {
      visitors: new Set(events.map((e) => e.visitor)).size,
      visits,
      pageviews: events.filter((e) => PAGEVIEW_EVENTS.includes(e.name)).length,
    },
    pages,
    sources,
    countries: Object.fromEntries(Object.entries(countries).map(([k, c]) => [k, { visitors: c.visitors.size, visits: c.visits }])),
    signup: { visitors: new Set(signups.map((e) => e.visitor)).size, events: signups.length },
    edges,
  };
}

/** /api/stats for the 7-day period against the numbers from the sent
 *  events, exactly (visitors included: the sketches count this few
 *  visitors exactly). Returns the number of figures compared. */
async function compareHeadlines(project, want, [from, to], what) {
  const got = await api(project, "period=7d&limit=1000&breakdowns=page,source,country,goal");
  assert.deepEqual([got.from, got.to], [from, to], `${what}: the 7 days end today in the project's zone`);
  assert.deepEqual({ visitors: got.totals.visitors, visits: got.totals.visits, pageviews: got.totals.pageviews },
    want.totals, `${what} totals`);
  const rows = (dim) => got.breakdowns[dim].rows;
  for (const dim of ["page", "source", "country", "goal"]) assert.equal(got.breakdowns[dim].more, false, `${what} ${dim} fits`);
  assert.deepEqual(Object.fromEntries(rows("page").map((r) => [r.value, r.pageviews])), want.pages, `${what} page views per path`);
  assert.deepEqual(Object.fromEntries(rows("source").map((r) => [r.value ?? "", r.visits])), want.sources, `${what} visits per source`);
  assert.deepEqual(Object.fromEntries(rows("country").map((r) => [r.value, { visitors: r.visitors, visits: r.visits }])),
    want.countries, `${what} visitors and visits per country`);
  const signup = rows("goal").find((r) => r.value === "Signup");
  assert.deepEqual({ visitors: signup?.visitors, events: signup?.events }, want.signup, `${what} signups`);
  return 3 + Object.keys(want.pages).length + Object.keys(want.sources).length + 2 * Object.keys(want.countries).length + 2;
}

/** Sketch counts within 2 %; everything else exact. */
function near(actual, expected, what) {
  assert.ok(Math.abs(actual - expected) <= 0.02 * expected, `${what}: ${actual}, reference ${expected}`);
}

function compareTotals(got, want, what) {
  near(got.visitors, want.visitors, `${what} visitors`);
  for (const k of ["visits", "pageviews", "events", "bounces", "duration_ms"]) assert.equal(got[k], want[k], `${what} ${k}`);
  assert.equal(got.revenue, want.revenue_micros / 1e6, `${what} revenue`);
  const v = want.visits;
  assert.equal(got.bounce_rate, v ? Math.round((100 * want.bounces) / v) : 0, `${what} bounce rate`);
  assert.equal(got.visit_duration, v ? Math.round(want.duration_ms / v / 1000) : 0, `${what} visit duration`);
  assert.equal(got.views_per_visit, v ? Math.round((100 * want.pageviews) / v) / 100 : 0, `${what} views per visit`);
}

function compareSeries(series, want, hourly, what) {
  let seen = 0;
  for (const point of series) {
    const key = hourly ? String(point.start_ms) : point.bucket;
    const ref = want[key] ?? { visitors: 0, visits: 0, pageviews: 0, events: 0 };
    near(point.visitors, ref.visitors, `${what} ${point.bucket} visitors`);
    for (const k of ["visits", "pageviews", "events"]) assert.equal(point[k], ref[k], `${what} ${point.bucket} ${k}`);
    if (want[key]) seen++;
  }
  assert.equal(seen, Object.keys(want).length, `${what}: every reference bucket is in the series`);
}

function compareBreakdowns(breakdowns, want, totalVisitors, what) {
  for (const dim of DIMS) {
    const rows = breakdowns[dim].rows;
    assert.equal(breakdowns[dim].more, false, `${what} ${dim} fits one page`);
    const ref = want[dim];
    assert.deepEqual(rows.map((r) => r.value ?? "").sort(), Object.keys(ref).sort(), `${what} ${dim} values`);
    for (const row of rows) {
      const r = ref[row.value ?? ""];
      near(row.visitors, r.visitors, `${what} ${dim}=${row.value} visitors`);
      for (const k of ["visits", "pageviews", "events", "bounces", "duration_ms"]) {
        if (k in r) assert.equal(row[k], r[k], `${what} ${dim}=${row.value} ${k}`);
      }
      if ("revenue_micros" in r) assert.equal(row.revenue, r.revenue_micros / 1e6, `${what} ${dim}=${row.value} revenue`);
      if (dim === "goal") {
        assert.equal(row.conversion_rate, Math.round((row.visitors * 1000) / totalVisitors) / 10, `${what} goal rate`);
      }
    }
  }
}

const FILTERS = [
  [],
  [["is", "channel", ["Organic Search", "Social"]]],
  [["contains", "page", ["blog"]]],
  [["is", "device", "Mobile"], ["is_not", "source", "Google"]],
  [["is", "goal", "Signup"]],
];

for (const project of ["demo", "ny", "kol"]) {
  test(`${project}: every stats number equals the reference over the raw export`, { timeout: 600_000 }, async (t) => {
    const now = Date.now();
    const data = dataset(now, project.length * 7919 + 11);
    assert.ok(data.resent > 0, "the dataset resends requests");
    for (const request of data.requests) await send(project, request);
    await stored(project, data.distinct);

    const tz = PROJECTS[project].timezone ?? "UTC";
    const today = new Intl.DateTimeFormat("en-CA", { timeZone: tz }).format(now);
    const back = (n) => new Intl.DateTimeFormat("en-CA", { timeZone: tz }).format(now - n * 86_400_000);
    const lines = await exportAll(project, back(9), today);
    assert.equal(lines.length, data.distinct, "the export through its cursor holds every event once");
    assert.equal(new Set(lines.map((l) => JSON.parse(l).cursor)).size, data.distinct);
    const fields = compareExportWithSent(lines, data);

    // Headline numbers from the sent events themselves, not the export.
    for (const { event: e } of data.sent.values()) {
      const time = e.ts ?? e.properties.time * 1000;
      assert.ok(time > now - 3 * 86_400_000 && time < now, "every sent event falls in the 7-day period");
    }
    const headlines = headlinesFromSent(data);
    assert.ok(Object.keys(headlines.sources).length >= 8 && headlines.signup.events > 0, "the dataset varies sources and converts");
    assert.ok(headlines.edges.ended > 0 && headlines.edges.kept > 0, `visits end at 30:00 and go on at 29:59: ${JSON.stringify(headlines.edges)}`);
    delete headlines.edges;
    let figures = await compareHeadlines(project, headlines, [back(6), today], `${project} open visits`);

    // Realtime: page views per minute and visitors of the last five
    // minutes, from the per-minute rows, against the export.
    const live = await (await fetch(`${worker.base}/api/stats/realtime`, { headers: { "x-api-key": PROJECTS[project].secret } })).json();
    assert.equal(live.pageviews_per_minute.length, 30);
    const rows = lines.map((l) => JSON.parse(l));
    const timeOf = (r) => Number(r.cursor.split(":")[0]);
    for (const { minute_ms: m, pageviews } of live.pageviews_per_minute) {
      const want = rows.filter((r) => ["$pageview", "$mp_web_page_view"].includes(r.event) && timeOf(r) >= m && timeOf(r) < m + MIN).length;
      assert.equal(pageviews, want, `page views in the minute from ${m}`);
    }
    const since = live.pageviews_per_minute[25].minute_ms;
    const recent = new Set(rows.filter((r) => timeOf(r) >= since).map((r) => r.properties.$device_id ?? r.properties.distinct_id));
    assert.equal(live.visitors, recent.size, "visitors of the last five minutes");
    assert.ok(live.pageviews_per_minute.some((p) => p.pageviews > 0), "the dataset has page views in the last half hour");

    // First with every visit still open (visitors from the visits table),
    // then with every visit final (visitors from the sketches alone).
    const open = await api(project, "period=7d&breakdowns=source");
    assert.ok(open.open_visits > 0, "visits are open before the cron");
    await compareAll(project, lines, tz, today, back);
    await sleep(1500);
    await worker.runCron();
    for (let deadline = Date.now() + 30_000; ; await sleep(300)) {
      if ((await api(project, "period=7d&breakdowns=source")).open_visits === 0) break;
      assert.ok(Date.now() < deadline, "the cron's finalization reached every visit");
    }
    await compareAll(project, lines, tz, today, back);
    figures += await compareHeadlines(project, headlines, [back(6), today], `${project} final visits`);
    t.diagnostic(`${data.distinct} events (${data.resent} requests resent), ${fields} export fields and ${figures} stats figures compared with what was sent`);
  });
}

async function compareAll(project, lines, tz, today, back) {
  for (const [period, from, to] of [["day", today, today], ["7d", back(6), today], ["custom", back(1), today]]) {
    for (const filters of FILTERS) {
      const what = `${project} ${period} ${JSON.stringify(filters)}`;
      const query = `period=${period}&from=${from}&to=${to}&limit=1000&breakdowns=${DIMS.join(",")}` +
        (filters.length ? `&filters=${encodeURIComponent(JSON.stringify(filters))}` : "");
      const got = await api(project, query);
      assert.equal(got.plan, filters.length ? "raw" : "rollups", what);
      assert.deepEqual([got.from, got.to], [from, to], what);
      const base = { tz, goals: GOAL_NAMES, currency: PROJECTS[project].currency ?? "USD", filters };
      const want = reference(lines, { ...base, from, to });
      compareTotals(got.totals, want.totals, what);
      compareSeries(got.series, want.series, from === to, what);
      compareBreakdowns(got.breakdowns, want.breakdowns, got.totals.visitors, what);
      const prev = reference(lines, { ...base, from: got.previous.from, to: got.previous.to });
      compareTotals(got.previous.totals, prev.totals, `${what} previous`);
      compareSeries(got.previous.series, prev.series, from === to, `${what} previous`);
    }
  }
}

test("days of 23 and 25 hours are charted hour by hour in the project's zone", { timeout: 120_000 }, async () => {
  // Europe/Berlin: clocks go forward on 2026-03-29 and back on 2026-10-25.
  const events = [];
  for (const [start, hours] of [[Date.UTC(2026, 2, 28, 22), 23], [Date.UTC(2026, 9, 24, 22), 25]]) {
    for (let h = 0; h < hours; h++) {
      for (let n = 0; n <= h % 3; n++) {
        const t = start + h * HOUR + n * 7 * MIN;
        events.push({ event: "$pageview", properties: { time: Math.floor(t / 1000), distinct_id: `dst-${h}-${n}`,
          $insert_id: `dst-${t}-${n}`, $current_url: "https://shop.example/" } });
      }
    }
  }
  await send("ber", { kind: "import", events });
  await stored("ber", events.length);
  const lines = await exportAll("ber", "2026-03-28", "2026-10-26");
  for (const [day, hours] of [["2026-03-29", 23], ["2026-10-25", 25]]) {
    const got = await api("ber", `period=custom&from=${day}&to=${day}&breakdowns=page`);
    assert.equal(got.granularity, "hour");
    assert.equal(got.series.length, hours, `${day} has ${hours} hours`);
    assert.equal(new Set(got.series.map((p) => p.start_ms)).size, hours, "every hour is its own bucket");
    const want = reference(lines, { tz: "Europe/Berlin", from: day, to: day, filters: [] });
    compareSeries(got.series, want.series, true, day);
    compareTotals(got.totals, want.totals, day);
  }
  // The two local 02:00 hours of the autumn day are both in the chart.
  const autumn = await api("ber", "period=custom&from=2026-10-25&to=2026-10-25&breakdowns=page");
  assert.equal(autumn.series.filter((p) => p.bucket.endsWith("T02:00")).length, 2);
});

test("ids an alias joined count as one visitor, in rollups and in the raw-row plan", { timeout: 120_000 }, async () => {
  // The alias first (Mixpanel's /track form, as the server libraries send
  // it), then server events of both ids and of a third person.
  const alias = { event: "$create_alias", properties: { distinct_id: "idm-user", alias: "idm-anon", token: PROJECTS.idm.token } };
  const form = new URLSearchParams({ data: Buffer.from(JSON.stringify(alias)).toString("base64"), verbose: "1" });
  const r = await fetch(`${worker.base}/track`, { method: "POST", body: form });
  assert.equal((await r.json()).status, 1);
  const deadline = Date.now() + 60_000;
  let canonical;
  while (Date.now() < deadline) {
    const i = await fetch(`${worker.base}/api/identity?distinct_id=idm-anon`, { headers: { "x-api-key": PROJECTS.idm.secret } });
    canonical = (await i.json()).canonical_id;
    if (canonical === "idm-user") break;
    await sleep(250);
  }
  assert.equal(canonical, "idm-user", "the alias reached the identity map");
  const t = Math.floor((Date.now() - HOUR) / 1000);
  const events = ["idm-anon", "idm-anon", "idm-user", "idm-user", "idm-other"].map((id, n) => ({
    event: "Checkout step",
    properties: { time: t + n, distinct_id: id, $insert_id: `idm-${n}` },
  }));
  await send("idm", { kind: "import", events });
  await stored("idm", events.length + 1); // and the $create_alias event itself
  const rollups = await api("idm", "period=day");
  assert.equal(rollups.plan, "rollups");
  assert.equal(rollups.totals.events, 6);
  assert.equal(rollups.totals.visitors, 2, "idm-anon and idm-user are one person, idm-other another");
  const filters = encodeURIComponent(JSON.stringify([["is", "event", "Checkout step"]]));
  const raw = await api("idm", `period=day&filters=${filters}`);
  assert.equal(raw.plan, "raw");
  assert.equal(raw.totals.events, 5);
  assert.equal(raw.totals.visitors, 2, "the raw-row plan resolves ids by the same map");
});
