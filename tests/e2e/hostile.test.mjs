// Hostile input against every endpoint: replays the cases in
// tests/hostile/*.ndjson (see tests/hostile/README.md for their format) on
// one real `wrangler dev`. Each case must get its dialect's own answer (4xx
// in that API's shape, or the documented silent success), never a 5xx, and
// within 10 s. Afterwards the stored data must have changed by exactly what
// the cases marked `stores` add: every other case stored nothing.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import zlib from "node:zlib";
import { readFileSync, readdirSync } from "node:fs";
import { startWorker, d1, sleep, BROWSER_UA, SECRET } from "./harness.mjs";

const CORPUS = new URL("../hostile/", import.meta.url);
const TIMEOUT_MS = 10_000;

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
// The run.

const cases = loadCases();
let worker;
let before_ = {};

const countsSql =
  "SELECT (SELECT COUNT(*) FROM events) AS events, (SELECT COUNT(*) FROM profiles) AS profiles, " +
  "(SELECT COUNT(*) FROM dead_letters) AS dead_letters";

before(async () => {
  // Rate limits off: the corpus is sent from one address faster than a client would.
  worker = await startWorker({ vars: { RATE_LIMITS: "off" } });
  [before_] = d1(countsSql, worker.persistDir);
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
  const options = c.known_defect ? { todo: `worker defect: ${c.known_defect}` } : {};
  test(`${c.file}: ${c.name}`, options, async () => {
    const res = await (c.chunked ? sendChunked : send)(worker.port, request(c));
    if (res.stopped || devProxyLostUpstream(res) || (c.stops_reading && res.complete === false)) return checkStopped(c, res);
    checkAnswer(c, res);
  });
}

test("stored data changed by exactly what the accepted cases add", async (t) => {
  const accepted = cases.filter((c) => c.stores);
  const events = accepted.reduce((n, c) => n + (c.stores.events ?? 0), 0);
  const profiles = accepted.reduce((n, c) => n + (c.stores.profiles ?? 0), 0);
  // Accepted events reach D1 through the queue: wait for the count to settle.
  const deadline = Date.now() + 60_000;
  let total = -1;
  while (Date.now() < deadline) {
    const r = await fetch(`${worker.base}/public/events?limit=1`, { headers: { "x-api-key": SECRET } });
    total = (await r.json()).total;
    if (total >= before_.events + events) break;
    await sleep(500);
  }
  await sleep(1500); // anything late would show up now
  const [afterCounts] = d1(countsSql, worker.persistDir);
  const rows = d1("SELECT insert_id, event, distinct_id FROM events", worker.persistDir);
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
  if (afterCounts.events - before_.events !== events) {
    try {
      t.diagnostic(`outbox: ${JSON.stringify(d1("SELECT COUNT(*) AS n FROM outbox", worker.persistDir))}`);
    } catch {}
  }
  t.diagnostic(`${accepted.length} accepted cases: ${events} events and ${profiles} profiles expected; ` +
    `stored ${afterCounts.events - before_.events} events, ${afterCounts.profiles - before_.profiles} profiles`);
  assert.deepEqual(problems, []);
  assert.deepEqual(
    { events: afterCounts.events - before_.events, profiles: afterCounts.profiles - before_.profiles, dead_letters: afterCounts.dead_letters - before_.dead_letters },
    { events, profiles, dead_letters: 0 },
    "only the accepted cases stored anything, and nothing failed to store",
  );
});
