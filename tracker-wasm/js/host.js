// The browser calls the wasm module makes (see src/host.rs `host` and its
// operation codes). Texts cross as UTF-8 in the module's memory. Every
// operation catches its own errors: a sandboxed iframe without storage, a
// missing API or a refused cookie must never throw into the page.

// Set by core.js once the module runs: its memory and its `on` export, which
// async work (timers, fetch answers) calls back; and `b`, the page's
// beforeSend hook, once it sets one.
export const hooks = {};

// Tests (wasm-bindgen-test) run without core.js and hand over the memory,
// and set the hook as core.js would (unused exports are not in t.js).
export const attach = (memory) => (hooks.memory = memory);
export const setHook = (hook) => (hooks.b = hook);

const encoder = new TextEncoder();
const decoder = new TextDecoder();
let timer;

export const bytes = (at, len) => new Uint8Array(hooks.memory.buffer, at, len);
export const encode = (s) => encoder.encode(s);
const text = (at, len) => decoder.decode(bytes(at, len));
const later = (...args) => hooks.on && hooks.on(...args);

// Codes of the module's `on` export (src/lib.rs).
export const START = 8;
const TICK = 9;
const DONE = 10;

// Indexed by src/host.rs `Read`, then LOAD (13) and HOOK (14); keep them
// in step.
const probes = [
  () => location.href,
  () => location.hostname,
  () => document.referrer,
  () => document.title,
  () => screen.width + "x" + screen.height,
  () => document.cookie,
  () => [navigator.userAgent, ...(navigator.userAgentData?.brands || []).map((b) => b.brand)].join().toLowerCase(),
  () => Object.keys(window).concat(Object.keys(document)),
  // Flags as "1" when set.
  () => +navigator.webdriver,
  () => +document.prerendering,
  () => navigator.doNotTrack,
  () => +navigator.globalPrivacyControl,
  (typeof ET_ENGAGEMENT == "undefined" || ET_ENGAGEMENT) && (() => +document.hidden),
  (key) => localStorage.getItem(key) || "",
  // The page's beforeSend hook on an event: what it returns, or "0" (no
  // object: the module drops the event) when it returns nothing. (Tests
  // load this file as it is, without the build's ET_HOOK.)
  (typeof ET_HOOK == "undefined" || ET_HOOK) && ((event) => (hooks.b ? JSON.stringify(hooks.b(JSON.parse(event)) || 0) : event)),
];

// op: a probe (writes the fact into the room at a/aLen if it fits, returns
// its length), or 15 WRITE, 16 BEACON, 17 FETCH, 18 KEEPALIVE (fetch with
// keepalive), 19 WAKE, 20 NOW, 21 RANDOM, as src/host.rs `op` numbers them.
export function host(op, a, aLen, b, bLen, x) {
  try {
    if (op < 15) {
      const out = encode(String(probes[op](text(b, bLen))));
      if (out.length <= aLen) bytes(a, out.length).set(out);
      return out.length;
    }
    const first = text(a, aLen);
    const second = text(b, bLen);
    if (op == 15) {
      if (!first) document.cookie = second;
      else if (second) localStorage.setItem(first, second);
      else localStorage.removeItem(first);
    }
    // A string body makes a text/plain request: no CORS preflight.
    if (op == 16) return navigator.sendBeacon(first, second);
    if (op == 17 || op == 18) {
      const answer = (status) => later(DONE, x, status);
      fetch(first, { method: "POST", body: second, keepalive: op == 18 }).then((r) => answer(r.status), () => answer(0));
    }
    if (op == 19) {
      clearTimeout(timer);
      timer = setTimeout(later, x, TICK, 0, 0);
    }
    if (op == 20) return Date.now();
    if (op == 21) return crypto.getRandomValues(new Uint32Array(1))[0];
  } catch (e) {}
  return 0;
}
