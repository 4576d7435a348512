// Section 2: what each tracker costs the page. The same test page, each
// tracker alone (and once with none), loaded in headless Debian Chromium in
// a fresh context per run; runs go round-robin so a busy moment of the
// shared machine hits every tracker alike. Per run, over the DevTools
// protocol: when the page-view request left the page (Network
// requestWillBeSent, from the document's own), main-thread script time
// (Performance.getMetrics ScriptDuration) and the JS heap after a forced GC
// (JSHeapUsedSize). Every tracker posts to one collector on 127.0.0.1; the
// page is served from 127.0.0.2 (another origin, as on a real site, and not
// the "127.0.0.1" some trackers refuse to run on).
import { readFileSync } from "node:fs";
import path from "node:path";
import { launchBrowser, BROWSER_UA } from "../tests/e2e/harness.mjs";
import { BENCH, SMOKE, median, serveFiles, sleep, startCollector, writeResult } from "./lib.mjs";
import { TRACKERS, buildAll } from "./trackers.mjs";

const RUNS = SMOKE ? 1 : Number(process.env.BENCH_PAGE_RUNS || 15);
/** mixpanel-browser and posthog-js batch their first send on a timer. */
const PAGEVIEW_TIMEOUT_MS = 12_000;
/** Quiet time after the page view before reading metrics. */
const SETTLE_MS = 500;
const PAGE_HOST = "127.0.0.2";

const collector = await startCollector();
const built = buildAll();
const template = readFileSync(path.join(BENCH, "page.html"), "utf8");
const variants = [{ id: "none", label: "no tracker", tag: () => "", pageview: null }, ...TRACKERS];
const files = {};
for (const v of variants) {
  const html = template.replace("<!-- tracker -->", v.tag(collector.base));
  files[`/${v.id}.html`] = { body: html, type: "text/html; charset=utf-8" };
  Object.assign(files, built[v.id] ?? {});
}
const site = await serveFiles(PAGE_HOST, files);
const browser = await launchBrowser();

async function measure(variant) {
  const context = await browser.newContext({ userAgent: BROWSER_UA, viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const cdp = await context.newCDPSession(page);
  const requests = [];
  cdp.on("Network.requestWillBeSent", (e) => {
    requests.push({ url: e.request.url, method: e.request.method, type: e.type, ts: e.timestamp });
  });
  await cdp.send("Network.enable");
  await cdp.send("Performance.enable");
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const collectorStart = collector.seen.length;
  try {
    await page.goto(`${site.base}/${variant.id}.html`, { waitUntil: "load" });
    const deadline = Date.now() + PAGEVIEW_TIMEOUT_MS;
    const isPageview = (r) => r.url.startsWith(collector.base) && r.method !== "OPTIONS" &&
      variant.pageview.test(new URL(r.url).pathname);
    while (variant.pageview && !requests.some(isPageview) && Date.now() < deadline) await sleep(25);
    await sleep(SETTLE_MS);
    await cdp.send("HeapProfiler.collectGarbage");
    const { metrics } = await cdp.send("Performance.getMetrics");
    const metric = (name) => metrics.find((m) => m.name === name)?.value ?? NaN;
    const doc = requests.find((r) => r.type === "Document");
    const pageview = variant.pageview ? requests.find(isPageview) : null;
    return {
      pageviewMs: pageview && doc ? (pageview.ts - doc.ts) * 1000 : NaN,
      scriptMs: metric("ScriptDuration") * 1000,
      taskMs: metric("TaskDuration") * 1000,
      heapKB: metric("JSHeapUsedSize") / 1024,
      requests: requests.filter((r) => r.type !== "Document").length,
      collectorRequests: collector.seen.length - collectorStart,
      errors,
    };
  } finally {
    await context.close();
  }
}

const runs = Object.fromEntries(variants.map((v) => [v.id, []]));
let failed = false;
try {
  for (let i = 0; i < RUNS; i++) {
    // Rotate the order every round: no tracker always goes first.
    const order = variants.map((_, k) => variants[(k + i) % variants.length]);
    for (const v of order) runs[v.id].push(await measure(v));
  }
} finally {
  await browser.close();
  await site.close();
  await collector.close();
}

const none = runs.none;
const base = { scriptMs: median(none.map((r) => r.scriptMs)), heapKB: median(none.map((r) => r.heapKB)) };
const rows = variants.map((v) => {
  const r = runs[v.id];
  const m = (k) => median(r.map((x) => x[k]));
  const sent = r.filter((x) => Number.isFinite(x.pageviewMs)).length;
  const row = {
    id: v.id, label: v.label, version: v.version ? v.version() : "", runs: r.length, pageviewsSent: sent,
    pageviewMs: m("pageviewMs"), scriptMs: m("scriptMs"), taskMs: m("taskMs"), heapKB: m("heapKB"),
    requests: m("requests"), addedScriptMs: m("scriptMs") - base.scriptMs, addedHeapKB: m("heapKB") - base.heapKB,
    errors: [...new Set(r.flatMap((x) => x.errors))].slice(0, 3),
  };
  if (v.pageview && sent < r.length) {
    console.error(`page: ${v.label} sent its page view in ${sent} of ${r.length} runs`);
    failed = true;
  }
  return row;
});
const ours = rows.find((r) => r.id === "edgetrack");
for (const r of rows) {
  r.pageviewVsOurs = r.pageviewMs / ours.pageviewMs;
  r.addedScriptVsOurs = r.addedScriptMs / ours.addedScriptMs;
  r.addedHeapVsOurs = r.addedHeapKB / ours.addedHeapKB;
  console.log(`page: ${r.label.padEnd(30)} pageview ${r.pageviewMs.toFixed(0).padStart(6)} ms  script ` +
    `${r.scriptMs.toFixed(1).padStart(6)} ms  heap ${r.heapKB.toFixed(0).padStart(6)} KB  (${r.pageviewsSent}/${r.runs} sent)`);
}
writeResult("page", { runs: RUNS, pageHost: PAGE_HOST, pageviewTimeoutMs: PAGEVIEW_TIMEOUT_MS, settleMs: SETTLE_MS,
  userAgent: BROWSER_UA, rows });
if (failed) process.exit(1);
