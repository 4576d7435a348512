// Hostile input against every endpoint: replays the cases in
// tests/hostile/*.ndjson (see tests/hostile/README.md for their format) on
// one real `wrangler dev`. Each case must get its dialect's own answer (4xx
// in that API's shape, or the documented silent success), never a 5xx, and
// within 10 s. Each case is then checked on its own: after it, a marker
// event (of another project) is sent and seen stored, so the queue has
// passed everything the case sent, and the stored state (every D1 table
// that holds data, every KV key) is compared with the state before the
// case: a refused case changed nothing at all, an accepted one wrote
// exactly the rows, marks and profile it names. At the end the tables
// must have changed by exactly what the cases marked `stores` add.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import path from "node:path";
import zlib from "node:zlib";
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { startWorker, d1, sleep, collect, kvMark, BROWSER_UA, SECRET } from "./harness.mjs";

const CORPUS = new URL("../hostile/", import.meta.url);
const TIMEOUT_MS = 10_000;
const HERE = path.dirname(fileURLToPath(import.meta.url));
const PYTHON = path.resolve(HERE, "../../.venv/bin/python");
// The project of the marker events; its rows and marks are not the cases'.
const MARK = { name: "mark", token: "mark-token", secret: "mark-secret" };
// Tables the read model derives from stored events (visits, rollups): they
// change with every accepted event, and the read-model suite checks them.
const DERIVED = new Set(["visits", "rollups", "rollup_hours", "rollup_minutes"]);
// A request marks its events as seen in KV only when it has at most this
// many (ingest-core limits.rs KV_DEDUP_MAX_KEYS); past it, D1's key alone
// deduplicates.
const KV_DEDUP_MAX_KEYS = 50;
// The day's cookieless salt: made by the first request that needs a
// cookieless id, which the worker works out before it validates the
// events, so a refused request may be the one that makes it. It is no
// data of that request's.
const SALT_KEY = /^salt:\d{4}-\d{2}-\d{2}$/;

/** Every case, in file then line order, with the file it came from. */
function loadCases() {
  const cases = [];
  for (const file of readdirSync(CORPUS).filter((f) => f.endsWith(".ndjson")).sort()) {
    const lines = readFileSync(new URL(file, CORPUS), "utf8").split("\n");
    lines.forEach((line, i) => {
      if (line.trim()) cases.push({ file: file.replace(/\.ndjson$/, ""), line: i + 1, ...JSON.parse(line) });
    });
  }
  return cases;
}

// ---------------------------------------------------------------------------
// Bodies, queries and header values from their specs.

const NOW = /\{\{now_(ms|s)([+-]\d+)?\}\}/g;
const now = (unit, offset) => {
  const ms = Date.now();
  return unit === "ms" ? ms + Number(offset ?? 0) : Math.floor(ms / 1000) + Number(offset ?? 0);
};
const withNow = (text) => text.replace(NOW, (_, unit, offset) => String(now(unit, offset)));

const memo = new Map();

/** Builds the bytes a spec describes (the format is in tests/hostile/README.md). */
function build(spec) {
  if (spec === null || spec === undefined) return Buffer.alloc(0);
  if (typeof spec === "string") return Buffer.from(withNow(spec), "utf8");
  const key = JSON.stringify(spec);
  const cacheable = !key.includes("{{now_");
  if (cacheable && memo.has(key)) return memo.get(key);
  const out = make(spec);
  if (cacheable && out.length > 64 * 1024 && out.length <= 8 * 1024 * 1024) memo.set(key, out);
  return out;
}

function make(spec) {
  if ("json" in spec) {
    const text = JSON.stringify(spec.json).replace(/"\{\{now_(ms|s)([+-]\d+)?\}\}"/g, (_, u, o) => String(now(u, o)));
    return Buffer.from(text, "utf8");
  }
  if ("hex" in spec) return Buffer.from(spec.hex, "hex");
  if ("base64" in spec) return Buffer.from(spec.base64, "base64");
  if ("concat" in spec) return Buffer.concat(spec.concat.map(build));
  if ("gzip" in spec) return zlib.gzipSync(build(spec.gzip));
  if ("b64" in spec) return Buffer.from(build(spec.b64).toString("base64"));
  if ("b64url" in spec) return Buffer.from(build(spec.b64url).toString("base64url"));
  if ("url" in spec) return Buffer.from(encodeURIComponent(build(spec.url).toString("utf8")));
  if ("truncate" in spec) {
    const whole = build(spec.truncate);
    return whole.subarray(0, spec.to >= 0 ? spec.to : whole.length + spec.to);
  }
  if ("pad" in spec) {
    const head = build(spec.pad);
    const fill = Buffer.alloc(Math.max(0, spec.to - head.length), spec.with ?? " ");
    return Buffer.concat([head, fill]);
  }
  if ("repeat" in spec) {
    const part = build(spec.repeat);
    const sep = Buffer.from(spec.sep ?? "", "utf8");
    const times = spec.times;
    if (part.includes("{i}")) {
      // Each copy gets its index: unique insert_ids and property names.
      const text = part.toString("utf8");
      return Buffer.from(Array.from({ length: times }, (_, i) => text.replaceAll("{i}", String(i))).join(sep.toString("utf8")));
    }
    if (times === 0) return Buffer.alloc(0);
    const unit = Buffer.concat([part, sep]);
    return Buffer.alloc(times * part.length + (times - 1) * sep.length).fill(unit);
  }
  throw new Error(`unknown body spec: ${JSON.stringify(spec).slice(0, 200)}`);
}

/** The request a case describes. */
function request(c) {
  const body = c.body === undefined ? null : build(c.body);
  const method = c.method ?? (body ? "POST" : "GET");
  const query = c.query === undefined ? "" : `?${build(c.query).toString("utf8")}`;
  const headers = { "user-agent": BROWSER_UA };
  if (body) headers["content-type"] = "text/plain;charset=UTF-8";
  for (const [name, value] of Object.entries(c.headers ?? {})) {
    if (value === null) delete headers[name.toLowerCase()];
    else headers[name.toLowerCase()] = build(value).toString("latin1");
  }
  // Without Content-Length the body goes out chunked: its size is only known once read.
  if (body && !c.chunked) headers["content-length"] = String(body.length);
  return { method, path: `${c.path}${query}`, headers, body };
}

/** Sends one request on a fresh connection; fails after 10 s. */
function send(port, { method, path, headers, body }) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    let answered = false;
    const req = http.request({ host: "127.0.0.1", port, method, path, headers, agent: false }, (res) => {
      answered = true;
      const chunks = [];
      res.on("data", (d) => chunks.push(d));
      res.on("end", () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks), ms: Date.now() - started });
      });
      res.on("error", reject);
    });
    const timer = setTimeout(() => {
      req.destroy();
      reject(new Error(`no complete answer within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    // A server may answer (413) and close before the whole body is written.
    req.on("error", (e) => {
      if (!answered) {
        clearTimeout(timer);
        reject(e);
      }
    });
    req.end(body ?? undefined);
  });
}

/**
 * Sends a body chunked, on a raw socket: a server may answer 413 and close
 * while the body is still going out, and Node's client then reports only
 * the broken pipe. Here the answer is read whatever happens to the upload.
 */
function sendChunked(port, { method, path, headers, body }) {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, "127.0.0.1");
    const received = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no complete answer within ${TIMEOUT_MS} ms`));
    }, TIMEOUT_MS);
    socket.on("data", (d) => received.push(d));
    socket.on("error", () => {}); // a refused upload; the answer decides
    socket.on("close", () => {
      clearTimeout(timer);
      const res = parseResponse(Buffer.concat(received));
      if (res) resolve({ ...res, ms: Date.now() - started, sent: offset, length: body.length });
      // The server stopped reading before the body was all out, and the
      // connection closed with the answer lost on the way: only a case
      // marked `stops_reading` accepts that (see checkStopped).
      else if (offset < body.length) resolve({ stopped: true, sent: offset, length: body.length });
      else reject(new Error("connection closed without an answer"));
    });
    const lines = [`${method} ${path} HTTP/1.1`, `host: 127.0.0.1:${port}`, "connection: close", "transfer-encoding: chunked"];
    for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
    socket.write(`${lines.join("\r\n")}\r\n\r\n`);
    let offset = 0;
    const pump = () => {
      while (offset < body.length && !socket.destroyed) {
        const chunk = body.subarray(offset, offset + 64 * 1024);
        offset += chunk.length;
        const ok = socket.write(Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from("\r\n")]));
        if (!ok) return socket.once("drain", pump);
      }
      if (!socket.destroyed) socket.write("0\r\n\r\n");
    };
    pump();
  });
}

/** Status, headers and body of one HTTP/1.1 answer, or null. */
function parseResponse(bytes) {
  const end = bytes.indexOf("\r\n\r\n");
  if (end < 0) return null;
  const [statusLine, ...headerLines] = bytes.subarray(0, end).toString("latin1").split("\r\n");
  const status = Number(statusLine.split(" ")[1]);
  const headers = {};
  for (const line of headerLines) {
    const colon = line.indexOf(":");
    headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let rest = bytes.subarray(end + 4);
  if (/chunked/i.test(headers["transfer-encoding"] ?? "")) {
    const parts = [];
    for (;;) {
      const eol = rest.indexOf("\r\n");
      const size = parseInt(rest.subarray(0, eol).toString("latin1"), 16);
      if (eol < 0 || !(size > 0)) break;
      parts.push(rest.subarray(eol + 2, eol + 2 + size));
      rest = rest.subarray(eol + 2 + size + 2);
    }
    rest = Buffer.concat(parts);
  } else if (headers["content-length"] !== undefined) {
    rest = rest.subarray(0, Number(headers["content-length"]));
  }
  // Whether all of a declared length arrived (a chunked answer is taken as read).
  const complete = headers["content-length"] === undefined || rest.length === Number(headers["content-length"]);
  return { status, headers, body: rest, complete };
}

// ---------------------------------------------------------------------------
// Expectations.

function statusMatches(expected, status) {
  if (expected === undefined) return true;
  if (Array.isArray(expected)) return expected.includes(status);
  if (typeof expected === "string") return String(status)[0] === expected[0] && /^[1-5]xx$/.test(expected);
  return status === expected;
}

const type = (res) => res.headers["content-type"] ?? "";
const text = (res) => res.body.toString("utf8");
function json(res) {
  assert.match(type(res), /^application\/json/, "content type");
  return JSON.parse(text(res));
}

/** Each API's own answer shape. */
const SHAPES = {
  browser: (res) => assert.equal(typeof json(res).error, "string"),
  mp_track: (res) => {
    assert.match(type(res), /^text\/plain/);
    assert.equal(text(res), "0");
  },
  mp_track_ok: (res) => assert.equal(text(res), "1"),
  mp_track_verbose: (res) => {
    const body = json(res);
    assert.equal(body.status, 0);
    assert.equal(typeof body.error, "string");
  },
  mp_import: (res) => {
    const body = json(res);
    assert.equal(body.code, res.status);
    assert.equal(typeof body.error, "string");
    assert.ok("status" in body);
  },
  vemetric: (res) => {
    assert.match(type(res), /^text\/plain/);
    if (res.status === 400) assert.equal(text(res), "Invalid!");
    else assert.ok(text(res).length > 0);
  },
  empmix: (res) => {
    const body = json(res);
    assert.equal(body.status, 0);
    assert.equal(typeof body.error, "string");
  },
  crm: (res) => {
    const { errors } = json(res);
    assert.ok(Array.isArray(errors) && errors.length > 0, "errors");
    for (const e of errors) assert.ok(typeof e.message === "string" && typeof e.description === "string", JSON.stringify(e));
  },
  api: (res) => assert.equal(typeof json(res).error, "string"),
  plausible: (res) => {
    const { errors } = json(res);
    assert.ok(errors && typeof errors === "object" && Object.keys(errors).length > 0, "errors");
    for (const list of Object.values(errors)) assert.ok(list.every((m) => typeof m === "string"), JSON.stringify(list));
  },
  umami: (res) => {
    const { error } = json(res);
    assert.equal(typeof error.message, "string");
    assert.equal(typeof error.code, "string");
    assert.equal(error.status, res.status);
  },
  posthog: (res) => {
    const body = json(res);
    assert.equal(typeof body.type, "string");
    assert.equal(typeof body.code, "string");
    assert.equal(typeof body.detail, "string");
  },
  json: (res) => json(res),
  empty: (res) => assert.equal(res.body.length, 0),
  gif: (res) => {
    assert.equal(type(res), "image/gif");
    assert.equal(res.body.subarray(0, 6).toString(), "GIF89a");
  },
  jsonp: (res) => assert.match(type(res), /^application\/javascript/),
};

/** wrangler's local proxy (its ProxyWorker, not ours) answers this 503
 *  when the worker's side closed while the proxy was still passing the
 *  upload on: in production there is no such proxy. */
function devProxyLostUpstream(res) {
  return res.status === 503 && text(res).startsWith("Your worker restarted mid-request.");
}

/** A body the worker stopped reading, the connection closed before the
 *  client could send it all (no answer, or only part of one, got through):
 *  allowed only where the case says so, and only well before the body's end
 *  (reading on to the end is what the cap stops). */
function checkStopped(c, res) {
  assert.ok(c.stops_reading, `no answer of the worker's after ${res.sent} of ${res.length} bytes`);
  assert.ok(res.sent <= c.stops_reading, `the client sent ${res.sent} bytes before the close, more than ${c.stops_reading}`);
}

function checkAnswer(c, res) {
  const e = c.expect ?? {};
  const shown = `${res.status} ${type(res)} ${JSON.stringify(text(res).slice(0, 300))}`;
  assert.ok(res.status < 500, `never a 5xx: ${shown}`);
  assert.ok(statusMatches(e.status, res.status), `expected ${JSON.stringify(e.status)}, got ${shown}`);
  if (e.shape) {
    assert.ok(SHAPES[e.shape], `unknown shape ${e.shape}`);
    try {
      SHAPES[e.shape](res);
    } catch (err) {
      err.message = `not the ${e.shape} shape (${shown}): ${err.message}`;
      throw err;
    }
  }
  if (e.body !== undefined) assert.equal(text(res), e.body);
  if (e.json) {
    const body = json(res);
    for (const [k, v] of Object.entries(e.json)) assert.deepEqual(body[k], v, `${k} in ${shown}`);
  }
  for (const [name, value] of Object.entries(e.header ?? {})) assert.equal(res.headers[name.toLowerCase()], value, `${name} header`);
  if (e.no_header) assert.equal(res.headers[e.no_header.toLowerCase()], undefined, `no ${e.no_header} header`);
}

// ---------------------------------------------------------------------------
// Stored state, case by case.

/** The development projects (wrangler.jsonc's PROJECTS), and the marker's. */
function projects() {
  const config = readFileSync(path.join(HERE, "../../edge-worker/wrangler.jsonc"), "utf8");
  const quoted = config.match(/"PROJECTS":\s*("(?:[^"\\]|\\.)*")/);
  assert.ok(quoted, "wrangler.jsonc names the development projects");
  return { ...JSON.parse(JSON.parse(quoted[1])), [MARK.name]: { token: MARK.token, secret: MARK.secret } };
}

/** Every data row and KV key outside the marker's project (snapshot.py). */
function snapshot() {
  const out = execFileSync(PYTHON, [path.join(HERE, "snapshot.py"), worker.persistDir, MARK.name], { maxBuffer: 256 * 1024 * 1024 });
  return JSON.parse(out.toString());
}

/** What changed from one snapshot to the next: rows and keys added and removed. */
function changes(before, after) {
  const out = {};
  const delta = (was, now) => {
    const old = new Set(was);
    const kept = new Set(now);
    return { added: now.filter((r) => !old.has(r)), removed: was.filter((r) => !kept.has(r)) };
  };
  for (const table of Object.keys(after.tables)) {
    const { added, removed } = delta(before.tables[table], after.tables[table]);
    if (added.length || removed.length) out[table] = { added: added.map((r) => JSON.parse(r)), removed: removed.map((r) => JSON.parse(r)) };
  }
  const { added, removed } = delta(before.kv.map((k) => JSON.stringify(k)), after.kv.map((k) => JSON.stringify(k)));
  if (added.length || removed.length) out.kv = { added: added.map((k) => JSON.parse(k)[0]), removed: removed.map((k) => JSON.parse(k)[0]) };
  return out;
}

let markers = 0;
/**
 * Sends a marker event of the marker project and waits until it is stored.
 * Every job a case queued went before it (one queue, consumed in order,
 * one batch at a time), bot drops and profile jobs included, which leave
 * no outbox row: once the marker is stored, the case's writes are done.
 */
async function marker() {
  const id = `marker-${++markers}`;
  const r = await collect(worker.base, [{ n: "marker", d: "marker", i: id }], { token: MARK.token });
  assert.equal(r.status, 202, `marker ${id}: ${await r.text()}`);
  const deadline = Date.now() + 60_000;
  for (;;) {
    const listed = await fetch(`${worker.base}/public/events?limit=1`, { headers: { "x-api-key": MARK.secret } });
    if ((await listed.json()).total === markers) return;
    assert.ok(Date.now() < deadline, `marker ${id} was not stored within 60 s`);
    await sleep(100);
  }
}

/** The browser events a /collect body holds, by insert id (none if it is no JSON). */
function collectEvents(c, body) {
  if (c.path !== "/collect" || !body) return new Map();
  try {
    const { e } = JSON.parse(body.toString("utf8"));
    return new Map((Array.isArray(e) ? e : []).filter((x) => x?.i).map((x) => [x.i, x]));
  } catch {
    return new Map();
  }
}

/** The case's stored writes against what it declares (`stores`, `drops`). */
function checkStored(c, change, body) {
  const stores = c.stores ?? {};
  const unexpected = { ...change };
  if (change.kv) {
    const kv = { added: change.kv.added.filter((k) => !SALT_KEY.test(k)), removed: change.kv.removed };
    if (kv.added.length || kv.removed.length) unexpected.kv = kv;
    else delete unexpected.kv;
  }
  // Bot drops: one counter row of the day, for the reason and the events the case names.
  if (c.drops) {
    const rows = change.bot_drops ?? { added: [], removed: [] };
    assert.equal(rows.added.length, 1, `one bot counter written: ${JSON.stringify(rows)}`);
    const [row] = rows.added;
    const was = rows.removed.find((r) => r.project === row.project && r.day === row.day && r.reason === row.reason);
    assert.equal(rows.removed.length, was ? 1 : 0, "only that counter changed");
    assert.deepEqual({ project: row.project, reason: row.reason, requests: row.requests - (was?.requests ?? 0), events: row.events - (was?.events ?? 0) },
      { project: "demo", reason: c.drops.reason, requests: 1, events: c.drops.events }, "the bot counter moved by this request");
    delete unexpected.bot_drops;
  }
  if (stores.events !== undefined || stores.ids || stores.user && !stores.profiles) {
    const rows = change.events ?? { added: [], removed: [] };
    assert.deepEqual(rows.removed, [], "no stored event changed or vanished");
    const mine = (r) => (stores.ids ? r.insert_id.startsWith(stores.ids) : r.distinct_id === stores.user);
    assert.deepEqual(rows.added.filter((r) => !mine(r)).map((r) => r.insert_id), [], "only the case's own events were stored");
    if (stores.events !== undefined) assert.equal(rows.added.length, stores.events, "events stored");
    if (stores.name) assert.deepEqual([...new Set(rows.added.map((r) => r.event))], [stores.name], "stored under its name");
    for (const [column, value] of Object.entries(stores.row ?? {})) {
      for (const r of rows.added) assert.deepEqual(column === "properties" ? JSON.parse(r[column]) : r[column], value, `${r.insert_id} ${column}`);
    }
    // A browser event is stored as it was sent: name, visitor, time, page
    // and every property, whole (at-limit names, keys and strings too).
    const sent = collectEvents(c, body);
    for (const r of rows.added.filter((row) => sent.has(row.insert_id))) {
      const e = sent.get(r.insert_id);
      const got = { event: r.event, distinct_id: r.distinct_id, device_id: r.device_id, properties: JSON.parse(r.properties) };
      const want = { event: e.n, distinct_id: e.d, device_id: e.d, properties: e.p ?? {} };
      for (const [key, column] of [["ts", "time_ms"], ["u", "url"], ["r", "referrer"], ["s", "screen"]]) {
        if (e[key] !== undefined) [got[column], want[column]] = [r[column], e[key]];
      }
      assert.deepEqual(got, want, `${r.insert_id} is stored as sent`);
    }
    if (c.path === "/collect") assert.equal(rows.added.filter((row) => sent.has(row.insert_id)).length, rows.added.length, "every stored event is one sent");
    // Each stored event has its dedup mark in KV, and nothing else was
    // marked (none past the KV limit).
    const marks = unexpected.kv ?? { added: [], removed: [] };
    assert.deepEqual(marks.removed, [], "no KV key went away");
    const want = rows.added.length <= KV_DEDUP_MAX_KEYS ? rows.added.map((r) => kvMark(r, r.project)) : [];
    assert.deepEqual([...marks.added].sort(), want.sort(), "KV marks of exactly the stored events");
    delete unexpected.events;
    delete unexpected.kv;
    if (rows.added.length) for (const table of DERIVED) delete unexpected[table];
  }
  if (stores.profiles) {
    const rows = change.profiles ?? { added: [], removed: [] };
    const people = new Set(rows.added.map((r) => r.distinct_id));
    assert.deepEqual([...people], [stores.user], "the profile written is the case's user's");
    assert.ok(rows.removed.every((r) => r.distinct_id === stores.user), "no other profile changed");
    for (const [key, value] of Object.entries(stores.profile ?? {})) {
      assert.deepEqual(JSON.parse(rows.added[0].properties)[key], value, `profile property ${key}`);
    }
    delete unexpected.profiles;
  }
  // Other tables a case writes, each row named by the columns it must have.
  for (const [table, want] of Object.entries(stores.tables ?? {})) {
    const rows = change[table] ?? { added: [], removed: [] };
    assert.equal(rows.removed.length, 0, `${table}: nothing changed or vanished`);
    assert.equal(rows.added.length, want.length, `${table}: rows written`);
    want.forEach((partial, n) => {
      const row = rows.added[n];
      assert.deepEqual(Object.fromEntries(Object.keys(partial).map((k) => [k, row[k]])), partial, `${table} row ${n}`);
    });
    delete unexpected[table];
  }
  assert.deepEqual(unexpected, {}, c.stores || c.drops ? "nothing else was written" : "a refused case writes nothing");
}

// ---------------------------------------------------------------------------
// The run.

const cases = loadCases();
let worker;
let before_ = {};
let state;

const countsSql =
  "SELECT (SELECT COUNT(*) FROM events) AS events, (SELECT COUNT(*) FROM profiles) AS profiles, " +
  "(SELECT COUNT(*) FROM dead_letters) AS dead_letters";

before(async () => {
  // Rate limits off: the corpus is sent from one address faster than a
  // client would. KV marks each event (development's mode, named here
  // because the per-case checks expect each stored event's mark).
  worker = await startWorker({ vars: { RATE_LIMITS: "off", DEDUP_MARKS: "event", PROJECTS: JSON.stringify(projects()) } });
  [before_] = d1(countsSql, worker.persistDir);
  state = snapshot();
});
after(async () => worker?.stop());

test("the corpus covers every endpoint with at least 100 cases", () => {
  assert.ok(cases.length >= 100, `${cases.length} cases`);
  const paths = new Set(cases.map((c) => `${c.method ?? (c.body === undefined ? "GET" : "POST")} ${c.path}`));
  for (const p of ["POST /collect", "GET /track", "POST /track", "POST /engage", "POST /import", "POST /e", "POST /i", "POST /u",
    "POST /public/track", "POST /public/track/bulk", "GET /public/events", "POST /v1/event", "GET /api/stats",
    "GET /api/2.0/export", "GET /api/profile"]) {
    assert.ok(paths.has(p), `no case for ${p}`);
  }
});

for (const c of cases) {
  // A known defect is not excused: its case fails until the worker is fixed.
  const name = `${c.file}: ${c.name}${c.known_defect ? ` (known defect: ${c.known_defect})` : ""}`;
  test(name, async () => {
    const req = request(c);
    const res = await (c.chunked ? sendChunked : send)(worker.port, req);
    await marker();
    const now = snapshot();
    const change = changes(state, now);
    state = now;
    if (res.stopped || devProxyLostUpstream(res) || (c.stops_reading && res.complete === false)) checkStopped(c, res);
    else checkAnswer(c, res);
    try {
      checkStored(c, change, req.body);
    } catch (err) {
      err.message = `${err.message}\nwritten: ${JSON.stringify(change).slice(0, 3000)}`;
      throw err;
    }
  });
}

test("stored data changed by exactly what the accepted cases add", async (t) => {
  const accepted = cases.filter((c) => c.stores);
  const events = accepted.reduce((n, c) => n + (c.stores.events ?? 0), 0);
  const profiles = accepted.reduce((n, c) => n + (c.stores.profiles ?? 0), 0);
  await marker(); // every case's jobs are done
  const [afterCounts] = d1(countsSql, worker.persistDir);
  const rows = d1("SELECT insert_id, event, distinct_id FROM events WHERE project != 'mark'", worker.persistDir);
  const people = new Set(d1("SELECT distinct_id FROM profiles", worker.persistDir).map((r) => r.distinct_id));
  const problems = [];
  for (const c of accepted) {
    const { ids, user, name } = c.stores;
    const mine = rows.filter((r) => (ids ? r.insert_id.startsWith(ids) : r.distinct_id === user));
    if (c.stores.events !== undefined && mine.length !== c.stores.events) {
      problems.push(`${c.file}: ${c.name}: ${mine.length} events stored, expected ${c.stores.events}`);
    }
    if (name && !mine.every((r) => r.event === name)) problems.push(`${c.file}: ${c.name}: stored as ${mine.map((r) => r.event)}`);
    if (c.stores.profiles && !people.has(user)) problems.push(`${c.file}: ${c.name}: no profile for ${user}`);
  }
  t.diagnostic(`${cases.length} cases checked one by one (${accepted.length} accepted): ${events} events and ${profiles} profiles expected; ` +
    `stored ${afterCounts.events - before_.events - markers} events, ${afterCounts.profiles - before_.profiles} profiles`);
  assert.deepEqual(problems, []);
  assert.deepEqual(
    { events: afterCounts.events - before_.events - markers, profiles: afterCounts.profiles - before_.profiles, dead_letters: afterCounts.dead_letters - before_.dead_letters },
    { events, profiles, dead_letters: 0 },
    "only the accepted cases stored anything, and nothing failed to store",
  );
});
