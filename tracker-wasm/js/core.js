// What the script-tag loader and the ES module share: fetching and starting
// the wasm module, the command backlog, and the page listeners. Listeners
// only report what happened; the module decides what it means.
import { hooks, host, START, bytes, encode } from "./host.js";

// Page event codes, as src/pageview.rs `Nav` numbers them.
const LOAD = 0;
const HISTORY = 1;
const HASH = 2;
const RESTORE = 3;
const ACTIVATE = 4;
const HIDE = 5;

const PROP_PREFIX = "data-et-prop-";

// Names by number, as src/tracker.rs COMMANDS and src/config.rs KEYS list
// them; `call` takes the number (CLICK and CONFIG as in src/lib.rs).
const COMMANDS = ["track", "identify", "reset", "consent", "optout"];
const KEYS = ["token", "api", "base", "consent", "outbound", "spa", "cookie-name", "cookie-domain", "respect-dnt", "cookie-days"];
const CLICK = 5;
const CONFIG = 10;

// Calls into the module wait in the backlog until it runs (then the
// backlog is null), and keep their order. `booted`: undefined before boot,
// true once booting, false when starting failed (calls are dropped).
let backlog = [];
let booted;
// The module's exports (call, on, room, memory) once it runs.
let wasm;

// Runs `f` (a call into the module) now or once the module runs; a trap
// inside the module must not reach the page.
const later = (f) => {
  if (!backlog) {
    try {
      f();
    } catch (e) {}
  } else if (booted !== false) {
    backlog.push(f);
  }
};

// A `call` with up to four texts, written one after another into the room
// the module makes for them (a length not passed arrives as 0).
function send(code, ...texts) {
  const encoded = texts.map(encode);
  let at = wasm.room(encoded.reduce((sum, e) => sum + e.length, 0));
  for (const e of encoded) {
    bytes(at, e.length).set(e);
    at += e.length;
  }
  wasm.call(code, ...encoded.map((e) => e.length));
}

// One command: ["track", name, props] | ["identify", id] | ["reset"] |
// ["consent", "granted"|"denied"|"pending"] | ["optout", true|false].
export function run(args) {
  const op = COMMANDS.indexOf(args[0]);
  // Texts arrive trimmed: " granted " is granted, "  " no name at all.
  const arg = args[1] == null ? "" : String(args[1]).trim();
  let props = "";
  try {
    if (args[2] && typeof args[2] == "object") props = JSON.stringify(args[2]);
  } catch (e) {}
  if (op >= 0) later(() => send(op, arg, props));
}

function onClick(e) {
  // auxclick is any non-primary button; only the middle one opens links.
  if (e.type == "auxclick" && e.button != 1) return;
  // A click on text has an element target; `closest` guards odd ones.
  const target = e.target;
  const tagged = target.closest?.("[data-et-event]");
  if (tagged) {
    const props = {};
    for (const a of tagged.attributes) {
      if (a.name.startsWith(PROP_PREFIX)) props[a.name.slice(PROP_PREFIX.length)] = a.value;
    }
    run(["track", tagged.getAttribute("data-et-event"), props]);
  }
  const a = target.closest?.("a[href]");
  // SVG links have an object for href; HTML anchors give the browser's
  // own parsing of the URL.
  if (a && typeof a.href == "string") {
    // Hosts come lower-cased from the browser's URL parser; the path is
    // lower-cased here for the download extensions.
    const parts = [a.href, a.protocol, a.host, a.pathname.toLowerCase()];
    later(() => send(CLICK, ...parts));
  }
}

function listen() {
  const page = (code) => later(() => wasm.on(code, 0, 0));
  const when = (target, type, code) => target.addEventListener(type, () => page(code));
  for (const name of ["pushState", "replaceState"]) {
    const original = history[name];
    history[name] = function () {
      const result = original.apply(this, arguments);
      page(HISTORY);
      return result;
    };
  }
  when(window, "popstate", HISTORY);
  when(window, "hashchange", HASH);
  when(window, "pagehide", HIDE);
  when(document, "prerenderingchange", ACTIVATE);
  addEventListener("pageshow", (e) => e.persisted && page(RESTORE));
  document.addEventListener("visibilitychange", () => document.visibilityState == "hidden" && page(HIDE));
  document.addEventListener("click", onClick, true);
  document.addEventListener("auxclick", onClick, true);
}

// The module's one import, as src/host.rs declares it.
const imports = { e: { h: host } };

// Compiles the module from its bytes: whatever type the server labels it
// with, and without console noise (for a module of a few kilobytes,
// streaming compilation would gain nothing).
const instantiate = (response) => {
  if (!response.ok) throw Error("HTTP " + response.status);
  return response.arrayBuffer().then((bytes) => WebAssembly.instantiate(bytes, imports));
};

// settings: [key, value] pairs named as the data- attributes are, without
// "data-". here: the tracker's own URL; the default endpoint and t.wasm
// are beside it. wasm: another URL for t.wasm.
export function boot(settings, here, wasmUrl) {
  if (booted != null) return;
  booted = true;
  later(() => wasm.on(LOAD, 0, 0));
  listen();
  fetch(wasmUrl || new URL("t.wasm", here))
    .then(instantiate)
    .then(({ instance }) => {
      wasm = instance.exports;
      Object.assign(hooks, wasm);
      const config = (key, value, i = KEYS.indexOf(key)) => i >= 0 && send(CONFIG + i, value.trim());
      config("base", new URL(".", here).href);
      // data-api may be relative to the page (a first-party proxy path); one
      // that is no URL at all stops the tracker with the parser's message.
      for (const [key, value] of settings) config(key, key == "api" ? new URL(value, location.href).href : value);
      wasm.on(START, 0, 0);
      const queued = backlog;
      backlog = null;
      queued.forEach(later);
    })
    .catch((e) => {
      booted = false;
      backlog = [];
      console.warn(
        "edgetrack is off: " +
          (/Content.Security|CSP|eval/i.test(e) ? "this page's Content-Security-Policy needs 'wasm-unsafe-eval' in script-src" : e),
      );
    });
}
