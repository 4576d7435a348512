// edgetrack dashboard. Plain DOM code, no libraries: it runs under
// `script-src 'self'; style-src 'self'`, so it never writes HTML strings or
// style attributes; sizes are set through element.style (CSSOM), which that
// policy allows, and the chart is SVG built node by node.
(function () {
  "use strict";

  const KEY_STORAGE = "edgetrack.dashboard.key";
  const LIVE_REFRESH_MS = 30 * 1000;
  const DAY_MS = 24 * 60 * 60 * 1000;
  const DEFAULT_PRESET = "7d";
  const PRESET_DAYS = { today: 1, "7d": 7, "30d": 30 };
  const SVG_NS = "http://www.w3.org/2000/svg";
  const CHART_HEIGHT = { wide: 260, narrow: 200 };
  const NARROW_WIDTH = 560;

  const MESSAGES = {
    401: "That key was not accepted",
    403: "That is the project's public token. The dashboard needs the secret key.",
    503: "The stats store is not answering right now. Try again in a moment.",
    network: "Could not reach the server. Check your connection and try again.",
    missingKey: "Enter your secret key.",
    badRange: "The start date must not be after the end date.",
  };

  const numberFormat = new Intl.NumberFormat("en-US");
  const regionNames = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;

  const $ = (id) => document.getElementById(id);
  const el = {
    loginView: $("login-view"),
    loginForm: $("login-form"),
    keyInput: $("key-input"),
    loginError: $("login-error"),
    loginSubmit: $("login-submit"),
    dashView: $("dash-view"),
    rangeForm: $("range-form"),
    fromInput: $("from-input"),
    toInput: $("to-input"),
    rangeLabel: $("range-label"),
    dashError: $("dash-error"),
    chart: $("chart"),
    chartEmpty: $("chart-empty"),
    chartLegend: $("chart-legend"),
    project: $("project-name"),
    live: $("live"),
    liveCount: $("live-count"),
    liveNoun: $("live-noun"),
    logout: $("logout"),
  };

  let current = null; // the last stats answer shown
  let liveTimer = 0;
  let requestSeq = 0;

  // ---- dates (the API's days are UTC days) ----

  const utcDay = (ms) => new Date(ms).toISOString().slice(0, 10);
  const dayMs = (day) => Date.parse(day + "T00:00:00Z");
  const isDay = (text) => /^\d{4}-\d{2}-\d{2}$/.test(text) && utcDay(dayMs(text)) === text;

  function presetRange(name) {
    const today = dayMs(utcDay(Date.now()));
    return { from: utcDay(today - (PRESET_DAYS[name] - 1) * DAY_MS), to: utcDay(today) };
  }

  function presetOf(range) {
    return Object.keys(PRESET_DAYS).find((name) => {
      const p = presetRange(name);
      return p.from === range.from && p.to === range.to;
    });
  }

  function shortDay(day, withYear) {
    const options = { month: "short", day: "numeric", timeZone: "UTC" };
    if (withYear) options.year = "numeric";
    return new Date(dayMs(day)).toLocaleDateString("en-US", options);
  }

  function describeRange(range) {
    if (range.from === range.to) return shortDay(range.from, true) + ", by hour (UTC)";
    const sameYear = range.from.slice(0, 4) === range.to.slice(0, 4);
    return shortDay(range.from, !sameYear) + " – " + shortDay(range.to, true) + ", by day (UTC)";
  }

  /**
   * Every bucket of the range, with zeros where the API had no row. Buckets
   * that start after now are marked `future`: the lines stop before them
   * instead of dropping to a zero that has not happened yet.
   */
  function fillSeries(answer) {
    const now = Date.now();
    const byBucket = new Map((answer.series || []).map((row) => [row.bucket, row]));
    const buckets = [];
    if (answer.granularity === "hour") {
      for (let h = 0; h < 24; h++) buckets.push(answer.from + "T" + String(h).padStart(2, "0") + ":00");
    } else {
      for (let t = dayMs(answer.from); t <= dayMs(answer.to); t += DAY_MS) buckets.push(utcDay(t));
    }
    return buckets.map((bucket) => {
      const row = byBucket.get(bucket) || {};
      const start = Date.parse(bucket.length > 10 ? bucket + ":00Z" : bucket + "T00:00:00Z");
      return { bucket, future: start > now, pageviews: Number(row.pageviews) || 0, visitors: Number(row.visitors) || 0, events: Number(row.events) || 0 };
    });
  }

  function bucketLabel(bucket, granularity) {
    return granularity === "hour" ? bucket.slice(11, 16) : shortDay(bucket, false);
  }

  // ---- the key and the API ----

  function storedKey() {
    try { return sessionStorage.getItem(KEY_STORAGE) || ""; } catch (e) { return ""; }
  }
  function storeKey(key) {
    try {
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      else sessionStorage.removeItem(KEY_STORAGE);
    } catch (e) { /* storage blocked: the key lives for this page only */ }
  }
  let memoryKey = storedKey();

  class ApiError extends Error {
    constructor(status, message) {
      super(message);
      this.status = status;
    }
  }

  async function fetchStats(range, key) {
    const query = new URLSearchParams({ from: range.from, to: range.to });
    let response;
    try {
      response = await fetch("/api/stats/v1?" + query, { headers: { "x-api-key": key }, cache: "no-store", credentials: "omit" });
    } catch (e) {
      throw new ApiError(0, MESSAGES.network);
    }
    let body = null;
    try { body = await response.json(); } catch (e) { /* not JSON: use the status alone */ }
    if (!response.ok) {
      const fallback = "The server answered " + response.status + ".";
      throw new ApiError(response.status, MESSAGES[response.status] || (body && body.error) || fallback);
    }
    return body;
  }

  // ---- views ----

  function setState(state) {
    document.body.dataset.state = state;
  }

  function showLogin(message) {
    stopLive();
    current = null;
    el.dashView.hidden = true;
    el.live.hidden = true;
    el.logout.hidden = true;
    el.project.hidden = true;
    el.loginView.hidden = false;
    el.loginError.textContent = message || "";
    el.loginError.hidden = !message;
    el.keyInput.setAttribute("aria-invalid", message ? "true" : "false");
    setState(message ? "login-error" : "login");
    el.keyInput.focus();
  }

  function showDashboard() {
    el.loginView.hidden = true;
    el.dashView.hidden = false;
    el.logout.hidden = false;
  }

  function showDashError(message) {
    el.dashError.textContent = message || "";
    el.dashError.hidden = !message;
  }

  function readRangeFromUrl() {
    const params = new URLSearchParams(location.search);
    const from = params.get("from");
    const to = params.get("to");
    if (from && to && isDay(from) && isDay(to) && from <= to) return { from, to };
    return presetRange(DEFAULT_PRESET);
  }

  function writeRangeToUrl(range) {
    const url = new URL(location.href);
    url.searchParams.set("from", range.from);
    url.searchParams.set("to", range.to);
    history.replaceState(null, "", url);
  }

  function reflectRange(range) {
    el.fromInput.value = range.from;
    el.toInput.value = range.to;
    const preset = presetOf(range);
    document.querySelectorAll("[data-preset]").forEach((button) => {
      button.setAttribute("aria-pressed", String(button.dataset.preset === preset));
    });
    el.rangeLabel.textContent = describeRange(range);
  }

  /** Loads a range with the current key; on 401/403 goes back to the login. */
  async function load(range) {
    const seq = ++requestSeq;
    reflectRange(range);
    writeRangeToUrl(range);
    setState("loading");
    el.dashView.setAttribute("aria-busy", "true");
    try {
      const answer = await fetchStats(range, memoryKey);
      if (seq !== requestSeq) return; // a newer request won
      showDashError("");
      render(answer);
      setState("ready");
      startLive();
    } catch (err) {
      if (seq !== requestSeq) return;
      if (err.status === 401 || err.status === 403) {
        memoryKey = "";
        storeKey("");
        showLogin(err.message);
        return;
      }
      showDashError(err.message);
      setState("error");
    } finally {
      if (seq === requestSeq) el.dashView.removeAttribute("aria-busy");
    }
  }

  // ---- rendering ----

  const format = (n) => numberFormat.format(Number(n) || 0);

  function render(answer) {
    current = answer;
    const totals = answer.totals || {};
    document.querySelectorAll("[data-metric]").forEach((card) => {
      const value = totals[card.dataset.metric];
      card.querySelector("[data-value]").textContent = format(value);
    });
    el.project.textContent = answer.project || "";
    el.project.hidden = !answer.project;
    setLive(answer.live_visitors);
    renderChart();
    renderTables(answer);
    el.rangeLabel.textContent = describeRange(answer);
  }

  function setLive(count) {
    const n = Number(count) || 0;
    el.liveCount.textContent = format(n);
    el.liveNoun.textContent = n === 1 ? " visitor" : " visitors";
    el.live.classList.toggle("is-idle", n === 0);
    el.live.hidden = false;
  }

  function node(tag, className, text) {
    const element = document.createElement(tag);
    if (className) element.className = className;
    if (text !== undefined) element.textContent = text;
    return element;
  }

  /** A link only for http(s) addresses; anything else is shown as text. */
  function safeLink(href, text) {
    let url = null;
    try { url = new URL(href); } catch (e) { /* not absolute */ }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:")) return node("span", "cell-text", text);
    const a = node("a", "cell-text", text);
    a.href = url.href;
    a.target = "_blank";
    a.rel = "noopener noreferrer";
    return a;
  }

  function prettyUrl(href) {
    try {
      const url = new URL(href);
      if (url.protocol !== "http:" && url.protocol !== "https:") return href;
      const rest = url.pathname === "/" && !url.search ? "" : url.pathname + url.search;
      return url.host.replace(/^www\./, "") + rest;
    } catch (e) {
      return href;
    }
  }

  function pagePath(href) {
    try {
      const url = new URL(href);
      return url.pathname + url.search + url.hash;
    } catch (e) {
      return href;
    }
  }

  function countryName(code) {
    if (!code || code === "??" || code === "XX") return "Unknown";
    if (code === "T1") return "Tor network";
    try { return (regionNames && regionNames.of(code)) || code; } catch (e) { return code; }
  }

  const EVENT_NAMES = {
    $pageview: "Pageview",
    $outbound_link: "Outbound link click",
    $pageleave: "Page leave",
    $identify: "Identify",
  };

  function humanize(reason) {
    const text = String(reason || "unknown").replace(/_/g, " ");
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  // Each table: the label cell, the number columns as [key, title, short
  // title for phones] (the first is the one the bars measure), and what to
  // say when there is nothing.
  const TABLES = {
    outbound: {
      label: "Link",
      columns: [["clicks", "Clicks", "Clicks"], ["clickers", "Unique clickers", "Clickers"]],
      empty: "No outbound clicks in this range yet",
      cell: (row) => {
        const link = safeLink(row.href, prettyUrl(row.href || ""));
        link.title = row.href || "";
        return link;
      },
    },
    pages: {
      label: "Page",
      columns: [["pageviews", "Pageviews", "Views"], ["visitors", "Visitors", "Visitors"]],
      empty: "No pageviews in this range yet",
      cell: (row) => {
        const text = node("span", "cell-text", pagePath(row.url || ""));
        text.title = row.url || "";
        return text;
      },
    },
    referrers: {
      label: "Referrer",
      columns: [["visitors", "Visitors", "Visitors"], ["pageviews", "Pageviews", "Views"]],
      empty: "No referrers in this range yet",
      cell: (row) => {
        const link = safeLink(row.referrer, prettyUrl(row.referrer || ""));
        link.title = row.referrer || "";
        return link;
      },
    },
    countries: {
      label: "Country",
      columns: [["visitors", "Visitors", "Visitors"]],
      empty: "No visitors in this range yet",
      cell: (row) => {
        const wrap = node("span", "cell-text", countryName(row.country));
        if (row.country && row.country !== "??") wrap.append(" ", node("span", "code", row.country));
        return wrap;
      },
    },
    events: {
      label: "Event",
      columns: [["count", "Count", "Count"]],
      empty: "No events in this range yet",
      cell: (row) => {
        const friendly = EVENT_NAMES[row.event];
        const wrap = node("span", "cell-text", friendly || row.event);
        if (friendly) wrap.append(" ", node("span", "code", row.event));
        return wrap;
      },
    },
    bots: {
      label: "Reason",
      columns: [["requests", "Requests", "Requests"], ["events", "Events", "Events"]],
      empty: "No bot traffic was dropped in this range",
      cell: (row) => node("span", "cell-text", humanize(row.reason)),
    },
  };

  function renderTables(answer) {
    document.querySelectorAll("[data-table]").forEach((holder) => {
      const name = holder.dataset.table;
      const spec = TABLES[name];
      const rows = Array.isArray(answer[name]) ? answer[name] : [];
      holder.replaceChildren(rows.length ? table(spec, rows) : emptyNote(spec.empty));
    });
  }

  function emptyNote(text) {
    const p = node("p", "table-empty", text);
    return p;
  }

  function table(spec, rows) {
    const [barKey] = spec.columns[0];
    const max = Math.max(1, ...rows.map((row) => Number(row[barKey]) || 0));
    const t = node("table", "data");
    const head = t.createTHead().insertRow();
    const labelHead = node("th", "label", spec.label);
    labelHead.scope = "col";
    head.append(labelHead);
    for (const [, title, short] of spec.columns) {
      const th = node("th", "num");
      th.scope = "col";
      if (short === title) th.textContent = title;
      else {
        th.title = title;
        th.append(node("span", "long", title), node("span", "short", short));
      }
      head.append(th);
    }
    const body = t.createTBody();
    for (const row of rows) {
      const tr = body.insertRow();
      const label = node("td", "label");
      const bar = node("span", "bar");
      bar.setAttribute("aria-hidden", "true");
      bar.style.width = ((100 * (Number(row[barKey]) || 0)) / max).toFixed(1) + "%";
      label.append(bar, spec.cell(row));
      tr.append(label);
      for (const [key] of spec.columns) {
        const td = node("td", "num", format(row[key]));
        td.dataset.column = key;
        tr.append(td);
      }
    }
    return t;
  }

  // ---- the chart: inline SVG drawn by hand ----

  function svg(tag, attrs, parent) {
    const element = document.createElementNS(SVG_NS, tag);
    for (const [name, value] of Object.entries(attrs || {})) element.setAttribute(name, String(value));
    if (parent) parent.append(element);
    return element;
  }

  /** A round upper bound and step for the y axis (1, 2 or 5 times a power of ten). */
  function niceScale(max, ticks) {
    if (max <= 0) return { top: ticks, step: 1 };
    const raw = max / ticks;
    const power = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
    const niceStep = Math.max(1, step);
    return { top: Math.ceil(max / niceStep) * niceStep, step: niceStep };
  }

  function renderChart() {
    const answer = current;
    if (!answer) return;
    const points = fillSeries(answer);
    const hasData = points.some((p) => p.pageviews > 0 || p.visitors > 0);
    el.chart.hidden = !hasData;
    el.chartEmpty.hidden = hasData;
    el.chartLegend.hidden = !hasData;
    el.chart.replaceChildren();
    if (!hasData) return;

    const width = Math.max(280, el.chart.clientWidth || 600);
    const narrow = width < NARROW_WIDTH;
    const height = narrow ? CHART_HEIGHT.narrow : CHART_HEIGHT.wide;
    const pad = { top: 14, right: 14, bottom: 30, left: 44 };
    const plotW = width - pad.left - pad.right;
    const plotH = height - pad.top - pad.bottom;
    const max = Math.max(...points.map((p) => Math.max(p.pageviews, p.visitors)));
    const scale = niceScale(max, narrow ? 4 : 5);
    const n = points.length;
    const x = (i) => pad.left + (n === 1 ? plotW / 2 : (i * plotW) / (n - 1));
    const y = (v) => pad.top + plotH - (v / scale.top) * plotH;

    const root = svg("svg", {
      width, height, viewBox: `0 0 ${width} ${height}`, class: "chart-svg", role: "img",
      "data-buckets": n, "data-granularity": answer.granularity,
      "aria-label": `Pageviews and visitors ${answer.granularity === "hour" ? "by hour" : "by day"}, ${describeRange(answer)}`,
    });

    const grid = svg("g", { class: "grid" }, root);
    for (let v = 0; v <= scale.top; v += scale.step) {
      svg("line", { x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v), class: v === 0 ? "axis" : "gridline" }, grid);
      const label = svg("text", { x: pad.left - 8, y: y(v) + 4, "text-anchor": "end", class: "tick" }, grid);
      label.textContent = format(v);
    }

    const maxLabels = Math.max(2, Math.floor(plotW / (answer.granularity === "hour" ? 46 : 62)));
    const every = Math.max(1, Math.ceil(n / maxLabels));
    const xLabels = svg("g", {}, root);
    points.forEach((p, i) => {
      if (i % every !== 0) return;
      const anchor = i === 0 && n > 1 ? "start" : i === n - 1 && n > 1 ? "end" : "middle";
      const label = svg("text", { x: x(i), y: height - 8, "text-anchor": anchor, class: "tick" }, xLabels);
      label.textContent = bucketLabel(p.bucket, answer.granularity);
    });

    const firstFuture = points.findIndex((p) => p.future);
    const last = firstFuture === -1 ? n - 1 : Math.max(0, firstFuture - 1);
    const drawn = points.slice(0, last + 1);
    const line = (key) => drawn.map((p, i) => `${i ? "L" : "M"}${x(i).toFixed(1)},${y(p[key]).toFixed(1)}`).join("");
    const baseY = y(0).toFixed(1);
    svg("path", { d: `${line("pageviews")}L${x(last).toFixed(1)},${baseY}L${x(0).toFixed(1)},${baseY}Z`, class: "area-pageviews" }, root);
    svg("path", { d: line("pageviews"), class: "line-pageviews" }, root);
    svg("path", { d: line("visitors"), class: "line-visitors" }, root);

    const showDots = n <= 31;
    if (showDots) {
      const dots = svg("g", {}, root);
      drawn.forEach((p, i) => {
        if (p.pageviews) svg("circle", { cx: x(i), cy: y(p.pageviews), r: 3, class: "dot-pageviews" }, dots);
        if (p.visitors) svg("circle", { cx: x(i), cy: y(p.visitors), r: 3, class: "dot-visitors" }, dots);
      });
    }

    // Hover: a guide line and a tooltip for the nearest bucket.
    const guide = svg("line", { x1: 0, x2: 0, y1: pad.top, y2: pad.top + plotH, class: "guide", visibility: "hidden" }, root);
    const hit = svg("rect", { x: pad.left, y: pad.top, width: plotW, height: plotH, class: "hit" }, root);
    const tip = node("div", "chart-tip");
    tip.hidden = true;
    tip.setAttribute("role", "presentation");

    const showTip = (clientX) => {
      const box = root.getBoundingClientRect();
      const px = clientX - box.left;
      const i = n === 1 ? 0 : Math.min(last, Math.max(0, Math.round(((px - pad.left) / plotW) * (n - 1))));
      const p = points[i];
      guide.setAttribute("x1", x(i));
      guide.setAttribute("x2", x(i));
      guide.setAttribute("visibility", "visible");
      const when = answer.granularity === "hour" ? shortDay(answer.from, false) + ", " + bucketLabel(p.bucket, "hour") : shortDay(p.bucket, true);
      tip.replaceChildren(
        node("strong", "", when),
        tipRow("pageviews", "Pageviews", p.pageviews),
        tipRow("visitors", "Visitors", p.visitors),
        tipRow("events", "Events", p.events),
      );
      tip.hidden = false;
      // Beside the guide line, on whichever side has room.
      const tipWidth = tip.offsetWidth;
      const gap = 12;
      const left = x(i) + gap + tipWidth <= width ? x(i) + gap : Math.max(0, x(i) - gap - tipWidth);
      tip.style.left = left + "px";
      tip.style.top = pad.top + "px";
    };
    const hideTip = () => {
      tip.hidden = true;
      guide.setAttribute("visibility", "hidden");
    };
    hit.addEventListener("pointermove", (event) => showTip(event.clientX));
    hit.addEventListener("pointerdown", (event) => showTip(event.clientX));
    hit.addEventListener("pointerleave", hideTip);

    el.chart.append(root, tip);
  }

  function tipRow(kind, label, value) {
    const row = node("span", "tip-row");
    const swatch = node("span", "swatch swatch-" + kind);
    swatch.setAttribute("aria-hidden", "true");
    row.append(swatch, node("span", "", label), node("b", "", format(value)));
    return row;
  }

  // ---- live visitors: every 30 s, today's stats, only the live number ----

  function startLive() {
    if (liveTimer) return;
    liveTimer = setInterval(refreshLive, LIVE_REFRESH_MS);
  }

  function stopLive() {
    clearInterval(liveTimer);
    liveTimer = 0;
  }

  async function refreshLive() {
    if (document.hidden || !memoryKey) return;
    try {
      const answer = await fetchStats(presetRange("today"), memoryKey);
      setLive(answer.live_visitors);
    } catch (err) {
      if (err.status === 401 || err.status === 403) {
        memoryKey = "";
        storeKey("");
        showLogin(err.message);
      }
      // Other failures: keep the last number; the next tick tries again.
    }
  }

  // ---- wiring ----

  el.loginForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = el.keyInput.value.trim();
    if (!key) {
      showLogin(MESSAGES.missingKey);
      return;
    }
    el.loginSubmit.disabled = true;
    setState("loading");
    const range = readRangeFromUrl();
    try {
      const answer = await fetchStats(range, key);
      memoryKey = key;
      storeKey(key);
      el.keyInput.value = "";
      showDashboard();
      showDashError("");
      reflectRange(range);
      writeRangeToUrl(range);
      render(answer);
      setState("ready");
      startLive();
    } catch (err) {
      showLogin(err.message);
    } finally {
      el.loginSubmit.disabled = false;
    }
  });

  el.rangeForm.addEventListener("submit", (event) => {
    event.preventDefault();
    const from = el.fromInput.value;
    const to = el.toInput.value;
    if (!isDay(from) || !isDay(to)) {
      showDashError("Pick both dates.");
      return;
    }
    if (from > to) {
      showDashError(MESSAGES.badRange);
      return;
    }
    load({ from, to });
  });

  document.querySelectorAll("[data-preset]").forEach((button) => {
    button.addEventListener("click", () => load(presetRange(button.dataset.preset)));
  });

  el.logout.addEventListener("click", () => {
    memoryKey = "";
    storeKey("");
    showLogin("");
  });

  // Redraw the chart when its width changes (not its height: drawing it
  // changes that, and redrawing on it would loop).
  let resizeFrame = 0;
  let chartWidth = 0;
  new ResizeObserver((entries) => {
    const width = Math.round(entries[0].contentRect.width);
    if (width === chartWidth) return;
    chartWidth = width;
    cancelAnimationFrame(resizeFrame);
    resizeFrame = requestAnimationFrame(renderChart);
  }).observe(el.chart.parentElement);

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && liveTimer) refreshLive();
  });

  if (memoryKey) {
    showDashboard();
    load(readRangeFromUrl());
  } else {
    showLogin("");
  }
})();
