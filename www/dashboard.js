// edgetrack dashboard on stats API v2. Plain DOM code, no libraries: it runs
// under `script-src 'self'; style-src 'self'`, so it never writes HTML
// strings or style attributes; sizes go through element.style (CSSOM, which
// that policy allows) and the charts are SVG built node by node.
//
// State lives in the address: project, period (or from/to), filters (the
// API's JSON) and the chart's metric, so a view can be bookmarked and
// shared. Keys never go in the query: they stay in this tab's storage, one
// per project, and a link may bring a viewer key in its fragment (#key=),
// which no server ever sees and which is dropped from the address at once.
(function () {
  "use strict";

  const KEYS_STORAGE = "edgetrack.dashboard.keys";
  const REALTIME_REFRESH_MS = 30 * 1000;
  const PANEL_ROWS = 10;
  const MORE_ROWS = 100;
  const CSV_PAGE_ROWS = 1000;
  const CSV_MAX_PAGES = 10;
  const SVG_NS = "http://www.w3.org/2000/svg";
  const DEFAULT_PERIOD = "30d";
  const PERIODS = ["day", "yesterday", "7d", "30d", "month", "last_month", "12mo", "custom"];

  const METRICS = [
    { key: "visitors", label: "Unique visitors" },
    { key: "visits", label: "Total visits" },
    { key: "pageviews", label: "Total pageviews" },
    { key: "views_per_visit", label: "Views per visit" },
    { key: "bounce_rate", label: "Bounce rate", lowerIsBetter: true },
    { key: "visit_duration", label: "Visit duration" },
  ];
  // Under a goal filter the cards are the goal's, as Plausible shows them;
  // the rate is over the visitors of the same view without the goal.
  const GOAL_METRICS = [
    { key: "visitors", label: "Unique conversions" },
    { key: "events", label: "Total conversions" },
    { key: "conversion_rate", label: "Conversion rate", rate: true, points: true },
  ];

  // Column sets: [field of the API row, heading, how it is shown].
  const COLS = {
    page: [["visitors", "Visitors"], ["pageviews", "Pageviews"]],
    visit: [["visitors", "Visitors"], ["visits", "Visits"]],
    event: [["visitors", "Uniques"], ["events", "Total"]],
    click: [["visitors", "Clickers"], ["events", "Clicks"]],
    goal: [["visitors", "Uniques"], ["events", "Conversions"], ["conversion_rate", "CR", "percent1"]],
  };
  const MORE_VISIT_COLS = [["bounce_rate", "Bounce rate", "percent"], ["visit_duration", "Visit duration", "duration"]];

  const DIMS = {
    page: { label: "Page", tab: "Top pages", cols: "page" },
    entry: { label: "Entry page", tab: "Entry pages", cols: "visit", more: true },
    exit: { label: "Exit page", tab: "Exit pages", cols: "visit", more: true },
    source: { label: "Source", tab: "Sources", cols: "visit", more: true, none: "Direct / None" },
    channel: { label: "Channel", tab: "Channels", cols: "visit", more: true, none: "Direct / None" },
    utm_source: { label: "UTM source", tab: "UTM source", cols: "visit", more: true },
    utm_medium: { label: "UTM medium", tab: "UTM medium", cols: "visit", more: true },
    utm_campaign: { label: "UTM campaign", tab: "UTM campaign", cols: "visit", more: true },
    country: { label: "Country", tab: "Countries", cols: "visit", more: true, country: true },
    region: { label: "Region", tab: "Regions", cols: "visit", more: true },
    city: { label: "City", tab: "Cities", cols: "visit", more: true },
    browser: { label: "Browser", tab: "Browsers", cols: "visit", more: true },
    os: { label: "Operating system", tab: "OS", cols: "visit", more: true },
    device: { label: "Device", tab: "Devices", cols: "visit", more: true },
    goal: { label: "Goal", tab: "Goals", cols: "goal" },
    event: { label: "Event", tab: "Custom events", cols: "event" },
    outbound: { label: "Outbound link", tab: "Outbound links", cols: "click", link: true },
    download: { label: "File download", tab: "File downloads", cols: "click", link: true },
  };

  const PANELS = [
    { id: "pages", title: "Pages", tabs: ["page", "entry", "exit"] },
    { id: "sources", title: "Sources", tabs: ["source", "channel", "utm_source", "utm_medium", "utm_campaign"] },
    { id: "locations", title: "Locations", tabs: ["country", "region", "city"] },
    { id: "devices", title: "Devices", tabs: ["browser", "os", "device"] },
    { id: "goals", title: "Goal conversions", tabs: ["goal"], wide: true },
    { id: "events", title: "Custom events", tabs: ["event", "prop"] },
    { id: "outbound", title: "Outbound links", tabs: ["outbound", "download"] },
  ];

  const MESSAGES = {
    401: "That key was not accepted.",
    403: "That key cannot read stats (the public token only sends events). Use the viewer key.",
    429: "Too many requests right now. Try again in a moment.",
    503: "The stats store is not answering right now. Try again in a moment.",
    network: "Could not reach the server. Check your connection and try again.",
    missingKey: "Enter the viewer key.",
    badRange: "Pick a start date on or before the end date.",
  };

  const numberFormat = new Intl.NumberFormat("en-US");
  const decimalFormat = new Intl.NumberFormat("en-US", { maximumFractionDigits: 2 });
  const regionNames = typeof Intl.DisplayNames === "function" ? new Intl.DisplayNames(["en"], { type: "region" }) : null;

  const $ = (id) => document.getElementById(id);
  const el = {
    loginView: $("login-view"), loginForm: $("login-form"), keyInput: $("key-input"), loginError: $("login-error"),
    loginSubmit: $("login-submit"), dashView: $("dash-view"), rangeLabel: $("range-label"), periodSelect: $("period-select"),
    customDates: $("custom-dates"), rangeForm: $("range-form"), fromInput: $("from-input"), toInput: $("to-input"),
    copyLink: $("copy-link"), chips: $("filter-chips"), addFilter: $("add-filter"), filterForm: $("filter-form"),
    filterDim: $("filter-dim"), filterOp: $("filter-op"), filterValue: $("filter-value"), dashError: $("dash-error"),
    shareNote: $("share-note"), emptySite: $("empty-site"), snippet: $("snippet"), copySnippet: $("copy-snippet"),
    cards: $("cards"), chartTitle: $("chart-title"), chart: $("chart"), legendNow: $("legend-now"), legendPrev: $("legend-prev"),
    panels: $("panels"), rtVisitors: $("rt-visitors"), rtChart: $("rt-chart"), footnote: $("footnote"),
    switcher: $("switcher"), projectSelect: $("project-select"), live: $("live"), liveCount: $("live-count"), logout: $("logout"),
    more: $("more-dialog"), moreTitle: $("more-title"), moreBody: $("more-body"), moreClose: $("more-close"),
    morePrev: $("more-prev"), moreNext: $("more-next"), morePage: $("more-page"), moreCsv: $("more-csv"),
    moreSearch: $("more-search"), moreSearchLabel: $("more-search-label"),
    realtimePanel: $("realtime-panel"),
  };

  // ---- small helpers ----

  function node(tag, attrs, children) {
    const n = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === "text") n.textContent = v;
      else if (k === "className") n.className = v;
      else n.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children || []) if (c) n.append(c);
    return n;
  }
  function svg(tag, attrs) {
    const n = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) n.setAttribute(k, String(v));
    return n;
  }
  const fmtInt = (n) => numberFormat.format(Number(n) || 0);
  function fmtDuration(seconds) {
    const s = Math.max(0, Math.round(Number(seconds) || 0));
    if (s < 60) return s + "s";
    if (s < 3600) return Math.floor(s / 60) + "m " + String(s % 60).padStart(2, "0") + "s";
    return Math.floor(s / 3600) + "h " + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  }
  /** How a metric's value reads on screen (the e2e test formats the API's numbers the same way). */
  function fmtMetric(kind, value) {
    switch (kind) {
      case "views_per_visit": return decimalFormat.format(Number(value) || 0);
      case "bounce_rate": case "percent": return fmtInt(value) + "%";
      case "conversion_rate": case "percent1": return decimalFormat.format(Number(value) || 0) + "%";
      case "visit_duration": case "duration": return fmtDuration(value);
      default: return fmtInt(value);
    }
  }
  /** Change against the previous period: percent, or points for the bounce rate. */
  function change(metric, now, prev) {
    now = Number(now) || 0;
    prev = Number(prev) || 0;
    if (metric.key === "bounce_rate" || metric.points) {
      const d = Math.round((now - prev) * 10) / 10;
      return { delta: d, text: (d > 0 ? "+" : d < 0 ? "−" : "±") + Math.abs(d) + " pp" };
    }
    if (prev === 0) return { delta: now > 0 ? 1 : 0, text: now > 0 ? "new" : "±0%" };
    const pct = Math.round(((now - prev) / prev) * 100);
    return { delta: pct, text: (pct > 0 ? "+" : pct < 0 ? "−" : "±") + Math.abs(pct) + "%" };
  }
  /** The goal filter of the view, if any ("is" a goal). */
  function goalFiltered(filters) {
    return filters.some((f) => f[0] === "is" && f[1] === "goal");
  }
  /** The cards of the view: the goal's under a goal filter. */
  function metricsShown() {
    return answer && answer.base ? GOAL_METRICS : METRICS;
  }
  function chosenMetric() {
    const list = metricsShown();
    return list.find((m) => m.key === state.metric) || list[0];
  }
  /** A metric of a point (totals or a series bucket), with its base point for a rate. */
  function valueOf(m, point, basePoint) {
    if (!point) return 0;
    if (m.rate) {
      const all = Number(basePoint && basePoint.visitors) || 0;
      return all ? Math.round((1000 * (Number(point.visitors) || 0)) / all) / 10 : 0;
    }
    return Number(point[m.key]) || 0;
  }

  function dimInfo(dim) {
    if (DIMS[dim]) return DIMS[dim];
    if (dim.startsWith("prop:")) {
      const [, event, key] = splitProp(dim);
      return { label: event + " · " + key, tab: "Properties", cols: "event" };
    }
    return { label: dim, cols: "event" };
  }
  function splitProp(dim) {
    const rest = dim.slice(5);
    const at = rest.lastIndexOf(":");
    return ["prop", rest.slice(0, at), rest.slice(at + 1)];
  }
  function valueLabel(dim, value) {
    const info = dimInfo(dim);
    if (value === null || value === undefined || value === "") return info.none || "(none)";
    if (info.country && regionNames && /^[A-Z]{2}$/.test(value)) {
      try { return regionNames.of(value) || value; } catch (e) { return value; }
    }
    return String(value);
  }

  // ---- state in the address ----

  function readUrl() {
    const p = new URLSearchParams(location.search);
    let period = p.get("period") || "";
    if (!PERIODS.includes(period)) period = p.get("from") && p.get("to") ? "custom" : DEFAULT_PERIOD;
    let filters = [];
    try {
      const parsed = JSON.parse(p.get("filters") || "[]");
      if (Array.isArray(parsed)) filters = parsed.filter((f) => Array.isArray(f) && f.length === 3);
    } catch (e) { filters = []; }
    const metric = METRICS.concat(GOAL_METRICS).some((m) => m.key === p.get("metric")) ? p.get("metric") : "visitors";
    return { project: p.get("project") || "", period, from: p.get("from") || "", to: p.get("to") || "", filters, metric };
  }
  function stateQuery(s) {
    const q = new URLSearchParams();
    if (s.project) q.set("project", s.project);
    q.set("period", s.period);
    if (s.period === "custom") { q.set("from", s.from); q.set("to", s.to); }
    if (s.filters.length) q.set("filters", JSON.stringify(s.filters));
    if (s.metric !== "visitors") q.set("metric", s.metric);
    return q;
  }
  function writeUrl(push) {
    const url = location.pathname + "?" + stateQuery(state).toString();
    if (url === location.pathname + location.search) return;
    if (push) history.pushState(null, "", url);
    else history.replaceState(null, "", url);
  }
  /** The API's query for the current range and filters. */
  function apiQuery(extra, moreFilters, baseFilters) {
    const q = new URLSearchParams();
    q.set("period", state.period);
    if (state.period === "custom") { q.set("from", state.from); q.set("to", state.to); }
    const filters = (baseFilters || state.filters).concat(moreFilters || []);
    if (filters.length) q.set("filters", JSON.stringify(filters));
    for (const [k, v] of Object.entries(extra || {})) q.set(k, v);
    return q;
  }

  // ---- keys ----

  function storedKeys() {
    try { return JSON.parse(sessionStorage.getItem(KEYS_STORAGE) || "{}") || {}; } catch (e) { return {}; }
  }
  function saveKeys(keys) {
    memoryKeys = keys;
    try { sessionStorage.setItem(KEYS_STORAGE, JSON.stringify(keys)); } catch (e) { /* storage blocked: this page only */ }
  }
  let memoryKeys = storedKeys();

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }
  async function api(path, query, key) {
    let response;
    try {
      response = await fetch(path + "?" + query, { headers: { "x-api-key": key }, cache: "no-store", credentials: "omit" });
    } catch (e) {
      throw new ApiError(0, MESSAGES.network);
    }
    let body = null;
    try { body = await response.json(); } catch (e) { /* not JSON */ }
    if (!response.ok) {
      throw new ApiError(response.status, MESSAGES[response.status] || (body && body.error) || "The server answered " + response.status + ".");
    }
    return body;
  }

  // ---- app state ----

  let state = readUrl();
  let key = "";
  let answer = null;
  let seq = 0;
  let realtimeTimer = 0;
  const tabs = {}; // panel id -> chosen dim
  const propChoice = { event: "", key: "" };
  let firstRender = true;

  function setBodyState(s) { document.body.dataset.state = s; }

  function showLogin(message) {
    stopRealtime();
    el.dashView.hidden = true;
    el.live.hidden = true;
    el.logout.hidden = true;
    el.loginView.hidden = false;
    el.loginError.textContent = message || "";
    el.loginError.hidden = !message;
    el.keyInput.setAttribute("aria-invalid", message ? "true" : "false");
    renderSwitcher(true);
    setBodyState(message ? "login-error" : "login");
    el.keyInput.focus();
  }

  function renderSwitcher(adding) {
    const ids = Object.keys(memoryKeys);
    el.switcher.hidden = ids.length === 0;
    el.projectSelect.replaceChildren();
    for (const id of ids) {
      el.projectSelect.append(node("option", { value: id, text: id, selected: !adding && id === state.project }));
    }
    el.projectSelect.append(node("option", { value: "", text: "Add a project…", selected: adding }));
  }

  /** Loads the overview with `key`; a 401/403 goes back to the login. */
  async function load({ push = false, loginKey = null } = {}) {
    const mine = ++seq;
    const useKey = loginKey || key;
    if (!useKey) return showLogin("");
    setBodyState("loading");
    el.dashView.setAttribute("aria-busy", "true");
    try {
      // Only the panels' shown tabs (and the events, which the property
      // tab lists): other tabs are read when opened, so a load reads from D1
      // what it shows.
      const shownDims = PANELS.map((p) => tabs[p.id] || p.tabs[0]).filter((d) => d !== "prop");
      if (!shownDims.includes("event")) shownDims.push("event");
      const goal = goalFiltered(state.filters);
      const [body, base] = await Promise.all([
        api("/api/stats", apiQuery({ breakdowns: shownDims.join(",") }), useKey),
        // Under a goal filter: the same view without it, for the rate.
        goal ? api("/api/stats", apiQuery({ breakdowns: "" }, [], state.filters.filter((f) => f[1] !== "goal")), useKey) : null,
      ]);
      if (mine !== seq) return;
      body.base = base;
      key = useKey;
      const keys = Object.assign({}, memoryKeys);
      keys[body.project] = useKey;
      saveKeys(keys);
      if (state.project !== body.project) { state.project = body.project; }
      if (state.period === "custom" && (!state.from || !state.to)) { state.from = body.from; state.to = body.to; }
      writeUrl(push);
      answer = body;
      el.loginView.hidden = true;
      el.dashView.hidden = false;
      el.logout.hidden = false;
      showError("");
      render();
      setBodyState("ready");
      document.body.dataset.view = state.project + "?" + apiQuery().toString();
      if (firstRender) {
        firstRender = false;
        // Milliseconds from the navigation's start to the first numbers.
        document.body.dataset.firstRenderMs = String(Math.round(performance.now()));
      }
      startRealtime();
    } catch (err) {
      if (mine !== seq) return;
      if (err.status === 401 || err.status === 403) {
        if (!loginKey) {
          const keys = Object.assign({}, memoryKeys);
          delete keys[state.project];
          saveKeys(keys);
          key = "";
        }
        return showLogin(err.message);
      }
      if (loginKey) return showLogin(err.message);
      showError(err.message);
      setBodyState("error");
    } finally {
      if (mine === seq) el.dashView.removeAttribute("aria-busy");
    }
  }

  function showError(message) {
    el.dashError.textContent = message || "";
    el.dashError.hidden = !message;
  }

  // ---- rendering ----

  function render() {
    renderSwitcher(false);
    renderRange();
    renderFilters();
    renderEmpty();
    renderCards();
    renderChart();
    renderPanels();
  }

  function shortDay(day, withYear) {
    const o = { month: "short", day: "numeric", timeZone: "UTC" };
    if (withYear) o.year = "numeric";
    return new Date(day + "T00:00:00Z").toLocaleDateString("en-US", o);
  }

  function renderRange() {
    el.periodSelect.value = state.period;
    el.customDates.hidden = state.period !== "custom";
    el.fromInput.value = answer.from;
    el.toInput.value = answer.to;
    const same = answer.from === answer.to;
    const span = same ? shortDay(answer.from, true) : shortDay(answer.from, answer.from.slice(0, 4) !== answer.to.slice(0, 4)) + " – " + shortDay(answer.to, true);
    el.rangeLabel.textContent = span + " · by " + answer.granularity + " · times in " + answer.timezone;
    el.footnote.textContent = "Days and hours are in the project's time zone, " + answer.timezone +
      ". Compared with " + shortDay(answer.previous.from, true) + " – " + shortDay(answer.previous.to, true) + ".";
  }

  function filterText(f) {
    const [op, dim, values] = f;
    const list = (Array.isArray(values) ? values : [values]).map((v) => valueLabel(dim, v)).join(" or ");
    const opText = op === "is_not" ? "is not" : op === "contains" ? "contains" : "is";
    return dimInfo(dim).label + " " + opText + " " + list;
  }

  function renderFilters() {
    el.chips.replaceChildren();
    state.filters.forEach((f, i) => {
      const text = filterText(f);
      const remove = node("button", { type: "button", className: "chip-remove", "aria-label": "Remove filter: " + text, "data-remove-filter": i, text: "×" });
      remove.addEventListener("click", () => {
        state.filters = state.filters.filter((_, j) => j !== i);
        load({ push: true });
      });
      el.chips.append(node("li", { className: "chip", "data-filter": JSON.stringify(f) }, [node("span", { text }), remove]));
    });
  }

  function renderEmpty() {
    const t = answer.totals;
    const empty = !state.filters.length && !t.visits && !t.pageviews && !t.events;
    el.emptySite.hidden = !empty;
    el.snippet.textContent = '<script async src="' + location.origin + '/t.js" data-token="' + answer.token + '"></script>';
  }

  function renderCards() {
    el.cards.replaceChildren();
    const base = answer.base;
    for (const m of metricsShown()) {
      const now = valueOf(m, answer.totals, base && base.totals);
      const prev = valueOf(m, answer.previous.totals, base && base.previous.totals);
      const c = change(m, now, prev);
      const good = m.lowerIsBetter ? c.delta < 0 : c.delta > 0;
      const bad = m.lowerIsBetter ? c.delta > 0 : c.delta < 0;
      const button = node("button", {
        type: "button", className: "card metric", "data-metric": m.key, "aria-pressed": String(chosenMetric().key === m.key),
      }, [
        node("span", { className: "card-label", text: m.label }),
        node("span", { className: "value", "data-value": "", text: fmtMetric(m.key, now) }),
        node("span", {
          className: "change" + (good ? " good" : bad ? " bad" : ""), "data-change": "",
          title: "Previous period: " + fmtMetric(m.key, prev), text: c.text,
        }),
        node("span", { className: "sr-only", text: " compared with " + fmtMetric(m.key, prev) + " in the previous period" }),
      ]);
      button.addEventListener("click", () => {
        state.metric = m.key;
        writeUrl(true);
        renderCards();
        renderChart();
        el.cards.querySelector('[data-metric="' + m.key + '"]').focus();
      });
      el.cards.append(button);
    }
  }

  // ---- the chart ----

  function bucketLabel(bucket, granularity) {
    if (granularity === "hour") return String(bucket).slice(-5);
    if (granularity === "month") return new Date(bucket + "-01T00:00:00Z").toLocaleDateString("en-US", { month: "short", year: "numeric", timeZone: "UTC" });
    return shortDay(bucket, false);
  }
  /** A grid step (1, 2, 2.5 or 5 times a power of ten) of at least `raw`; whole for whole-number metrics. */
  function niceStep(raw, whole) {
    if (!(raw > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    for (const m of [1, 2, 2.5, 5, 10]) {
      const step = m * p;
      if (whole && (step < 1 || !Number.isInteger(step))) continue;
      if (step >= raw) return step;
    }
    return 10 * p;
  }
  function zoneToday(zone) {
    try { return new Intl.DateTimeFormat("en-CA", { timeZone: zone }).format(new Date()); } catch (e) { return new Date().toISOString().slice(0, 10); }
  }

  let chartIndex = -1;
  function renderChart() {
    const metric = chosenMetric();
    el.chartTitle.textContent = metric.label;
    const series = answer.series || [];
    const prev = answer.previous.series || [];
    const base = answer.base;
    const at = (list, baseList, i) => valueOf(metric, list[i], baseList && baseList[i]);
    const today = zoneToday(answer.timezone);
    const now = Date.now();
    const future = (p) => (p.start_ms !== undefined ? p.start_ms > now : String(p.bucket) > today.slice(0, String(p.bucket).length));
    const values = series.map((_, i) => at(series, base && base.series, i));
    const prevValues = series.map((_, i) => (prev[i] ? at(prev, base && base.previous.series, i) : null));
    const W = Math.max(280, el.chart.clientWidth || 800);
    const H = W < 560 ? 200 : 260;
    const pad = { l: 48, r: 12, t: 12, b: 28 };
    // Four grid steps, whole ones for whole-number metrics.
    const whole = metric.key !== "views_per_visit" && !metric.rate;
    const max = 4 * niceStep(Math.max(...values, ...prevValues.map((v) => v || 0)) / 4, whole);
    const n = Math.max(1, series.length);
    const x = (i) => pad.l + (n === 1 ? (W - pad.l - pad.r) / 2 : (i * (W - pad.l - pad.r)) / (n - 1));
    const y = (v) => pad.t + (H - pad.t - pad.b) * (1 - v / max);
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, class: "chart-svg", "aria-hidden": "true", "data-buckets": series.length });
    for (let g = 0; g <= 4; g++) {
      const v = (max * g) / 4;
      root.append(svg("line", { x1: pad.l, x2: W - pad.r, y1: y(v), y2: y(v), class: "grid-line" }));
      const label = svg("text", { x: pad.l - 6, y: y(v) + 4, class: "axis", "text-anchor": "end" });
      label.textContent = fmtMetric(metric.key, whole ? Math.round(v) : v);
      root.append(label);
    }
    const step = Math.max(1, Math.ceil(n / (W < 560 ? 4 : 8)));
    series.forEach((p, i) => {
      if (i % step) return;
      const t = svg("text", { x: x(i), y: H - 8, class: "axis", "text-anchor": "middle" });
      t.textContent = bucketLabel(p.bucket, answer.granularity);
      root.append(t);
    });
    const path = (vals) => vals.map((v, i) => (v === null ? null : (i === 0 || vals[i - 1] === null ? "M" : "L") + x(i).toFixed(1) + " " + y(v).toFixed(1))).filter(Boolean).join(" ");
    root.append(svg("path", { d: path(prevValues), class: "line-prev" }));
    const shown = values.map((v, i) => (future(series[i]) ? null : v));
    root.append(svg("path", { d: path(shown), class: "line-now" }));
    shown.forEach((v, i) => { if (v !== null && n <= 31) root.append(svg("circle", { cx: x(i), cy: y(v), r: 3, class: "dot-now" })); });
    const cursor = svg("line", { x1: 0, x2: 0, y1: pad.t, y2: H - pad.b, class: "cursor", visibility: "hidden" });
    root.append(cursor);
    const tip = node("div", { className: "chart-tip", role: "status", "aria-live": "polite" });
    tip.hidden = true;
    const wrap = node("div", {
      className: "chart-wrap", tabindex: "0", role: "group",
      "aria-label": metric.label + " by " + answer.granularity + ": use the left and right arrow keys to read each point",
    }, [root, tip]);
    const show = (i) => {
      if (i < 0 || i >= series.length) { tip.hidden = true; cursor.setAttribute("visibility", "hidden"); return; }
      chartIndex = i;
      cursor.setAttribute("x1", x(i));
      cursor.setAttribute("x2", x(i));
      cursor.setAttribute("visibility", "visible");
      const p = series[i];
      const q = prev[i];
      const lines = [
        node("strong", { text: bucketLabel(p.bucket, answer.granularity) }),
        node("span", { text: metric.label + ": " + fmtMetric(metric.key, values[i]) }),
      ];
      if (q) lines.push(node("span", { className: "muted", text: "Before (" + bucketLabel(q.bucket, answer.granularity) + "): " + fmtMetric(metric.key, prevValues[i]) }));
      tip.replaceChildren(...lines);
      tip.hidden = false;
      const left = Math.min(Math.max(0, x(i) - 80), W - 170);
      tip.style.left = left + "px";
    };
    root.addEventListener("mousemove", (e) => {
      const box = root.getBoundingClientRect();
      const px = ((e.clientX - box.left) / box.width) * W;
      const i = n === 1 ? 0 : Math.round(((px - pad.l) / (W - pad.l - pad.r)) * (n - 1));
      show(Math.min(n - 1, Math.max(0, i)));
    });
    root.addEventListener("mouseleave", () => show(-1));
    wrap.addEventListener("keydown", (e) => {
      if (e.key === "ArrowRight" || e.key === "ArrowLeft") {
        e.preventDefault();
        const i = chartIndex < 0 ? (e.key === "ArrowRight" ? 0 : n - 1) : chartIndex + (e.key === "ArrowRight" ? 1 : -1);
        show(Math.min(n - 1, Math.max(0, i)));
      } else if (e.key === "Escape") show(-1);
    });
    wrap.addEventListener("blur", () => { chartIndex = -1; show(-1); });
    el.chart.replaceChildren(wrap);
    el.legendNow.textContent = shortDay(answer.from, false) + " – " + shortDay(answer.to, true);
    el.legendPrev.textContent = shortDay(answer.previous.from, false) + " – " + shortDay(answer.previous.to, true);
  }

  // ---- breakdown panels ----

  function colsOf(dim, more) {
    const info = dimInfo(dim);
    const cols = COLS[info.cols].slice();
    if (more && info.more) cols.push(...MORE_VISIT_COLS);
    return cols;
  }

  function addFilter(dim, value) {
    const f = ["is", dim, [value === null || value === undefined ? "" : String(value)]];
    state.filters = state.filters.filter((g) => g[1] !== dim).concat([f]);
    if (el.more.open) el.more.close();
    load({ push: true });
  }

  /** A table of breakdown rows; each row's value is a button that filters by it. */
  function table(dim, rows, more) {
    const cols = colsOf(dim, more);
    const info = dimInfo(dim);
    const max = Math.max(1, ...rows.map((r) => Number(r.visitors) || 0));
    const head = node("tr", {}, [node("th", { scope: "col", text: info.label })].concat(
      cols.map(([, h]) => node("th", { scope: "col", className: "num", text: h }))));
    const body = node("tbody");
    for (const row of rows) {
      const label = valueLabel(dim, row.value);
      const bar = node("span", { className: "bar", "aria-hidden": "true" });
      bar.style.width = Math.round((100 * (Number(row.visitors) || 0)) / max) + "%";
      const button = node("button", {
        type: "button", className: "row-filter", title: String(row.value ?? label),
        "aria-label": "Filter by " + info.label + " " + label,
      }, [node("span", { className: "row-label", text: label })]);
      button.addEventListener("click", () => addFilter(dim, row.value));
      const cell = node("td", { className: "value-cell" }, [bar, button]);
      if (info.link && row.value && /^https?:\/\//i.test(row.value)) {
        cell.append(node("a", { href: row.value, className: "row-link", target: "_blank", rel: "noopener noreferrer", "aria-label": "Open " + row.value, text: "↗" }));
      }
      const tr = node("tr", { "data-row": row.value === null ? "" : String(row.value) }, [cell].concat(
        cols.map(([field, , kind]) => node("td", { className: "num", "data-column": field, text: fmtMetric(kind || field, row[field]) }))));
      body.append(tr);
    }
    return node("table", { className: "breakdown", "data-dim": dim }, [node("thead", {}, [head]), body]);
  }

  function emptyText(dim) {
    if (dim === "goal") return answer.goals && answer.goals.length
      ? "No conversions in this range."
      : "No goals yet: add \"goals\" to this project in PROJECTS, e.g. [{\"event\": \"Signup\"}, {\"page\": \"/thanks\"}].";
    if (dim === "outbound") return "No outbound link clicks in this range (the tracker records them by default).";
    if (dim === "download") return "No file downloads in this range (t.full.js records them).";
    if (dim === "event") return "No custom events in this range. Send one with edgetrack('Signup', {plan: 'pro'}).";
    return "No data in this range.";
  }

  function renderPanels() {
    el.panels.replaceChildren();
    for (const panel of PANELS) {
      const dim = tabs[panel.id] || panel.tabs[0];
      const section = node("section", { className: "panel" + (panel.wide ? " wide" : ""), id: "panel-" + panel.id, "aria-labelledby": "title-" + panel.id });
      const head = node("div", { className: "panel-head" }, [node("h2", { id: "title-" + panel.id, text: panel.title })]);
      if (panel.tabs.length > 1) {
        const group = node("div", { className: "tabs", role: "group", "aria-label": panel.title + ": show" });
        for (const t of panel.tabs) {
          const b = node("button", { type: "button", className: "tab", "aria-pressed": String(t === dim), "data-tab": t, text: t === "prop" ? "Properties" : DIMS[t].tab });
          b.addEventListener("click", () => {
            tabs[panel.id] = t;
            renderPanels();
            const again = document.querySelector('#panel-' + panel.id + ' [data-tab="' + t + '"]');
            if (again) again.focus();
          });
          group.append(b);
        }
        head.append(group);
      }
      section.append(head);
      const content = node("div", { className: "panel-body", "data-panel-dim": dim });
      section.append(content);
      if (dim === "prop") renderPropTab(content);
      else if (answer.breakdowns[dim]) fillPanel(content, dim, answer.breakdowns[dim]);
      else loadTab(content, dim);
      el.panels.append(section);
    }
  }

  /** A tab the overview did not read: its top rows, once per view. */
  async function loadTab(content, dim) {
    const mine = answer;
    content.dataset.state = "loading";
    content.replaceChildren(node("p", { className: "muted empty-note", text: "Loading…" }));
    try {
      const data = await api("/api/stats/breakdown", apiQuery({ dim, limit: String(PANEL_ROWS) }), key);
      if (mine !== answer) return; // a newer view replaced this one
      answer.breakdowns[dim] = { rows: data.rows, more: data.more };
      if (content.isConnected) fillPanel(content, dim, answer.breakdowns[dim]);
    } catch (err) {
      content.replaceChildren(node("p", { className: "form-error", role: "alert", text: err.message }));
      content.dataset.state = "error";
    }
  }

  function fillPanel(content, dim, data) {
    content.dataset.state = "ready";
    content.replaceChildren();
    content.dataset.panelDim = dim;
    if (!data.rows.length) {
      content.append(node("p", { className: "empty-note muted", text: emptyText(dim) }));
      return;
    }
    content.append(table(dim, data.rows, false));
    const more = node("button", { type: "button", className: "button ghost more", "data-more": dim, text: data.more ? "More " + dimInfo(dim).tab.toLowerCase() + " and CSV" : "Details and CSV" });
    more.addEventListener("click", () => openMore(dim));
    content.append(more);
  }

  function renderPropTab(content) {
    const events = ((answer.breakdowns.event || {}).rows || []).map((r) => r.value).filter((v) => v && !String(v).startsWith("$"));
    const filtered = state.filters.find((f) => f[1] === "event" && f[0] === "is");
    if (!propChoice.event || !events.includes(propChoice.event)) propChoice.event = filtered ? String(filtered[2][0] ?? filtered[2]) : events[0] || "";
    if (!propChoice.key) propChoice.key = (answer.properties || [])[0] || "";
    const eventSelect = node("select", { id: "prop-event" }, events.map((e) => node("option", { value: e, text: e, selected: e === propChoice.event })));
    const listId = "prop-keys";
    const keyInput = node("input", { id: "prop-key", type: "text", list: listId, value: propChoice.key, autocomplete: "off", placeholder: "e.g. plan" });
    const datalist = node("datalist", { id: listId }, (answer.properties || []).map((k) => node("option", { value: k })));
    const form = node("form", { className: "prop-form" }, [
      node("label", {}, [node("span", { text: "Event" }), eventSelect]),
      node("label", {}, [node("span", { text: "Property" }), keyInput]),
      datalist,
      node("button", { type: "submit", className: "button primary", text: "Break down" }),
    ]);
    const out = node("div", { className: "prop-out" });
    content.append(form, out);
    if (!events.length) {
      out.append(node("p", { className: "empty-note muted", text: "No custom events in this range to break down." }));
      return;
    }
    const run = async () => {
      propChoice.event = eventSelect.value;
      propChoice.key = keyInput.value.trim();
      if (!propChoice.key) { out.replaceChildren(node("p", { className: "empty-note muted", text: "Name a property of " + propChoice.event + "." })); return; }
      const dim = "prop:" + propChoice.event + ":" + propChoice.key;
      out.replaceChildren(node("p", { className: "muted", text: "Loading…" }));
      try {
        const data = await api("/api/stats/breakdown", apiQuery({ dim, limit: String(PANEL_ROWS) }), key);
        fillPanel(out, dim, data);
      } catch (err) {
        out.replaceChildren(node("p", { className: "form-error", role: "alert", text: err.message }));
      }
    };
    form.addEventListener("submit", (e) => { e.preventDefault(); run(); });
    if (propChoice.key) run();
  }

  // ---- "more": every row, page by page, and the CSV ----

  let moreDim = "";
  let morePageNo = 1;
  /** The "more" view's search, as one more filter (goals are names, not searched). */
  function moreFilters() {
    const text = el.moreSearch.value.trim();
    return text && moreDim !== "goal" ? [["contains", moreDim, [text]]] : [];
  }
  async function openMore(dim) {
    moreDim = dim;
    morePageNo = 1;
    el.moreSearch.value = "";
    el.moreSearchLabel.hidden = dim === "goal";
    el.moreTitle.textContent = dimInfo(dim).tab === "Properties" ? dimInfo(dim).label : dimInfo(dim).tab;
    if (!el.more.open) el.more.showModal();
    await loadMore();
  }
  async function loadMore() {
    el.moreBody.replaceChildren(node("p", { className: "muted", text: "Loading…" }));
    el.more.dataset.state = "loading";
    try {
      const query = apiQuery({ dim: moreDim, limit: String(MORE_ROWS), page: String(morePageNo) }, moreFilters());
      const data = await api("/api/stats/breakdown", query, key);
      if (query.toString() !== apiQuery({ dim: moreDim, limit: String(MORE_ROWS), page: String(morePageNo) }, moreFilters()).toString()) return;
      el.moreBody.replaceChildren(data.rows.length ? table(moreDim, data.rows, true) : node("p", { className: "muted", text: "No rows." }));
      el.morePrev.disabled = morePageNo <= 1;
      el.moreNext.disabled = !data.more;
      el.morePage.textContent = "Page " + morePageNo;
      el.more.dataset.state = "ready";
    } catch (err) {
      el.moreBody.replaceChildren(node("p", { className: "form-error", role: "alert", text: err.message }));
      el.more.dataset.state = "error";
    }
  }
  function csvField(v) {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]/.test(s) || /^[=+\-@]/.test(s) ? '"' + (/^[=+\-@]/.test(s) ? "'" : "") + s.replace(/"/g, '""') + '"' : s;
  }
  async function downloadCsv() {
    const cols = colsOf(moreDim, true);
    const lines = [[moreDim].concat(cols.map(([f]) => f)).map(csvField).join(",")];
    el.moreCsv.disabled = true;
    try {
      for (let page = 1; page <= CSV_MAX_PAGES; page++) {
        const data = await api("/api/stats/breakdown", apiQuery({ dim: moreDim, limit: String(CSV_PAGE_ROWS), page: String(page) }, moreFilters()), key);
        for (const r of data.rows) lines.push([r.value].concat(cols.map(([f]) => r[f])).map(csvField).join(","));
        if (!data.more) break;
      }
      const blob = new Blob([lines.join("\r\n") + "\r\n"], { type: "text/csv" });
      const a = node("a", { href: URL.createObjectURL(blob), download: [state.project, moreDim.replace(/[^\w-]+/g, "_"), answer.from, answer.to].join("-") + ".csv" });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
    } catch (err) {
      el.moreBody.prepend(node("p", { className: "form-error", role: "alert", text: err.message }));
    } finally {
      el.moreCsv.disabled = false;
    }
  }

  // ---- realtime: its own small request, never the full stats ----

  function stopRealtime() {
    clearTimeout(realtimeTimer);
    realtimeTimer = 0;
  }
  function startRealtime() {
    if (realtimeTimer) return;
    refreshRealtime();
  }
  async function refreshRealtime() {
    clearTimeout(realtimeTimer);
    realtimeTimer = setTimeout(refreshRealtime, REALTIME_REFRESH_MS);
    if (document.hidden || !key) return;
    try {
      const rt = await api("/api/stats/realtime", "", key);
      el.live.hidden = false;
      el.liveCount.textContent = fmtInt(rt.visitors);
      el.rtVisitors.textContent = fmtInt(rt.visitors);
      el.live.classList.toggle("is-idle", !rt.visitors);
      renderRealtime(rt.pageviews_per_minute || []);
      document.body.dataset.realtime = String((Number(document.body.dataset.realtime) || 0) + 1);
    } catch (err) {
      el.live.hidden = true;
    }
  }
  function renderRealtime(minutes) {
    const W = Math.max(280, el.rtChart.clientWidth || 600);
    const H = 90;
    const max = Math.max(1, ...minutes.map((m) => m.pageviews));
    const bw = W / Math.max(1, minutes.length);
    const root = svg("svg", { viewBox: "0 0 " + W + " " + H, width: W, height: H, class: "rt-svg", role: "img",
      "aria-label": "Pageviews per minute, last 30 minutes: " + minutes.reduce((a, m) => a + m.pageviews, 0) + " in all" });
    minutes.forEach((m, i) => {
      const h = Math.round(((H - 16) * m.pageviews) / max);
      const r = svg("rect", { x: i * bw + 1, y: H - 14 - h, width: Math.max(1, bw - 2), height: Math.max(h, m.pageviews ? 2 : 1), class: m.pageviews ? "rt-bar" : "rt-bar zero", "data-pageviews": m.pageviews });
      const t = svg("title");
      t.textContent = m.label + ": " + m.pageviews + " pageviews";
      r.append(t);
      root.append(r);
    });
    const first = svg("text", { x: 0, y: H - 2, class: "axis" });
    first.textContent = "30 min ago";
    const last = svg("text", { x: W, y: H - 2, class: "axis", "text-anchor": "end" });
    last.textContent = "now";
    root.append(first, last);
    el.rtChart.replaceChildren(root);
  }

  // ---- wiring ----

  el.loginForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const typed = el.keyInput.value.trim();
    if (!typed) return showLogin(MESSAGES.missingKey);
    el.keyInput.value = "";
    state.project = "";
    load({ loginKey: typed, push: true });
  });
  el.periodSelect.addEventListener("change", () => {
    const p = el.periodSelect.value;
    if (p === "custom") {
      el.customDates.hidden = false;
      el.fromInput.focus();
      return;
    }
    state.period = p;
    load({ push: true });
  });
  el.rangeForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const from = el.fromInput.value;
    const to = el.toInput.value;
    if (!from || !to || from > to) return showError(MESSAGES.badRange);
    Object.assign(state, { period: "custom", from, to });
    load({ push: true });
  });
  el.copyLink.addEventListener("click", async () => {
    let link = location.href.split("#")[0];
    let note = "Link copied. It holds this view (range, filters, metric), not a key: whoever opens it signs in with the project's viewer key.";
    if (answer && answer.access === "viewer") {
      link += "#key=" + encodeURIComponent(key);
      note = "Link copied with the viewer key (read-only) in its fragment, which never reaches a server: whoever has it sees these stats.";
    }
    try { await navigator.clipboard.writeText(link); } catch (e) { note = "Copy this link: " + link; }
    el.shareNote.textContent = note;
    el.shareNote.hidden = false;
  });
  el.copySnippet.addEventListener("click", async () => {
    try { await navigator.clipboard.writeText(el.snippet.textContent); el.copySnippet.textContent = "Copied"; } catch (e) { /* select it by hand */ }
  });
  for (const [d, info] of Object.entries(DIMS)) el.filterDim.append(node("option", { value: d, text: info.label }));
  el.filterForm.addEventListener("submit", (e) => {
    e.preventDefault();
    const value = el.filterValue.value.trim();
    if (!value) return el.filterValue.focus();
    state.filters = state.filters.filter((g) => g[1] !== el.filterDim.value).concat([[el.filterOp.value, el.filterDim.value, [value]]]);
    el.filterValue.value = "";
    el.addFilter.open = false;
    load({ push: true });
  });
  el.projectSelect.addEventListener("change", () => {
    const id = el.projectSelect.value;
    if (!id) {
      state.filters = [];
      el.dashView.hidden = true;
      return showLogin("");
    }
    state = { project: id, period: state.period, from: state.from, to: state.to, filters: [], metric: state.metric };
    key = memoryKeys[id];
    load({ push: true });
  });
  el.logout.addEventListener("click", () => {
    const keys = Object.assign({}, memoryKeys);
    delete keys[state.project];
    saveKeys(keys);
    const next = Object.keys(keys)[0];
    key = next ? keys[next] : "";
    state = { project: next || "", period: DEFAULT_PERIOD, from: "", to: "", filters: [], metric: "visitors" };
    if (next) load({ push: true });
    else { history.replaceState(null, "", location.pathname); showLogin(""); }
  });
  el.live.addEventListener("click", () => {
    el.realtimePanel.scrollIntoView({ behavior: "smooth" });
    el.realtimePanel.setAttribute("tabindex", "-1");
    el.realtimePanel.focus({ preventScroll: true });
  });
  el.moreClose.addEventListener("click", () => el.more.close());
  el.morePrev.addEventListener("click", () => { morePageNo = Math.max(1, morePageNo - 1); loadMore(); });
  el.moreNext.addEventListener("click", () => { morePageNo += 1; loadMore(); });
  el.moreCsv.addEventListener("click", downloadCsv);
  let searchTimer = 0;
  el.moreSearch.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => { morePageNo = 1; loadMore(); }, 250);
  });
  window.addEventListener("popstate", () => {
    state = readUrl();
    key = memoryKeys[state.project] || key;
    load();
  });
  let resizeTimer = 0;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => { if (answer && !el.dashView.hidden) renderChart(); }, 150);
  });
  document.addEventListener("visibilitychange", () => { if (!document.hidden && key) refreshRealtime(); });

  // ---- boot ----

  const hash = new URLSearchParams(location.hash.slice(1));
  const linkKey = hash.get("key");
  if (linkKey) history.replaceState(null, "", location.pathname + location.search);
  if (linkKey) {
    load({ loginKey: linkKey });
  } else {
    key = memoryKeys[state.project] || (state.project ? "" : memoryKeys[Object.keys(memoryKeys)[0]] || "");
    if (key) load();
    else showLogin("");
  }
})();
