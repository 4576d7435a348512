// The browser calls the wasm module makes (see src/host.rs `host` and its
// operation codes). Texts cross as UTF-8 in the module's memory. Every
// operation catches its own errors: a sandboxed iframe without storage, a
// missing API or a refused cookie must never throw into the page.

// Set by core.js once the module runs: its memory and its `on` export, which
// async work (timers, fetch answers) calls back.
export const hooks = {};

// Tests (wasm-bindgen-test) run without core.js and hand over the memory.
export const attach = (memory) => (hooks.memory = memory);

const encoder = new TextEncoder();
const decoder = new TextDecoder();
let timer;

export const bytes = (at, len) => new Uint8Array(hooks.memory.buffer, at, len);
export const encode = (s) => encoder.encode(s);
const text = (at, len) => decoder.decode(bytes(at, len));
const later = (...args) => hooks.on && hooks.on(...args);

// Codes of the module's `on` export (src/lib.rs).
export const START = 6;
const TICK = 7;
const DONE = 8;

// Indexed by src/host.rs `Read`, then LOAD (12); keep them in step.
const probes = [
  () => location.href,
  () => location.host,
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
  (key) => localStorage.getItem(key) || "",
];

// op: a probe (writes the fact into the room at a/aLen if it fits, returns
// its length), or 13 WRITE, 14 BEACON, 15 FETCH, 16 KEEPALIVE (fetch with
// keepalive), 17 WAKE, 18 NOW, 19 RANDOM, as src/host.rs `op` numbers them.
export function host(op, a, aLen, b, bLen, x) {
  try {
    if (op < 13) {
      const out = encode(String(probes[op](text(b, bLen))));
      if (out.length <= aLen) bytes(a, out.length).set(out);
      return out.length;
    }
    const first = text(a, aLen);
    const second = text(b, bLen);
    if (op == 13) {
      if (!first) document.cookie = second;
      else if (second) localStorage.setItem(first, second);
      else localStorage.removeItem(first);
    }
    // A string body makes a text/plain request: no CORS preflight.
    if (op == 14) return navigator.sendBeacon(first, second);
    if (op == 15 || op == 16) {
      const answer = (status) => later(DONE, x, status);
      fetch(first, { method: "POST", body: second, keepalive: op == 16 }).then((r) => answer(r.status), () => answer(0));
    }
    if (op == 17) {
      clearTimeout(timer);
      timer = setTimeout(later, x, TICK, 0, 0);
    }
    if (op == 18) return Date.now();
    if (op == 19) return crypto.getRandomValues(new Uint32Array(1))[0];
  } catch (e) {}
  return 0;
}
