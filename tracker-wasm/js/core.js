// What the script-tag loader and the ES module share: fetching and starting
// the wasm module, the command backlog, and the page listeners. Listeners
// only report what happened; the module decides what it means.
//
// ET_WASM (the module's file name beside the script) and the ET_* options
// are set by the build (esbuild --define, see the Makefile): code for an
// option a variant leaves out is not in its t.js.
import { hooks, host, START, bytes, encode } from "./host.js";

// Page event codes, as src/pageview.rs `Nav` numbers them.
const LOAD = 0;
const HISTORY = 1;
const HASH = 2;
const RESTORE = 3;
const ACTIVATE = 4;
const HIDE = 5;
const SHOW = 6;
const SCROLL = 7;

export const PROP_PREFIX = "data-et-prop-";

// Commands by number, as src/tracker.rs COMMANDS lists them; `call` takes
// the number (CLICK, FORM and CONFIG as in src/lib.rs).
const COMMANDS = ["track", "identify", "reset", "consent", "optout", "pageview", "props", "404"];
const PROPS = 6;
const CLICK = 8;
const FORM = 9;
const CONFIG = 10;

// Calls into the module wait in the backlog until it runs (then the
// backlog is null), and keep their order. `booted`: undefined before boot,
// true once booting, false when starting failed (calls are dropped).
let backlog = [];
let booted;
// A call into the module is running: a call made meanwhile (by the page's
// beforeSend hook, which the module calls) runs right after it.
let busy;
// The module's exports (call, on, room, memory) once it runs.
let wasm;
// The page-wide properties (data-et-prop-* on the tag, and `props`).
const props = {};

// Runs `f` (a call into the module) now or once the module runs; a trap
// inside the module must not reach the page.
const later = (f) => {
  if (backlog) booted !== false && backlog.push(f);
  else if (ET_HOOK && busy) queueMicrotask(() => later(f));
  else {
    if (ET_HOOK) busy = 1;
    try {
      f();
    } catch (e) {}
    if (ET_HOOK) busy = 0;
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

// Texts arrive trimmed: " granted " is granted, "  " no name at all.
const text = (x) => (x == null ? "" : String(x).trim());

// One command: ["track", name, props] (props may hold $revenue: {amount,
// currency}) | ["pageview", {url}] | ["props", props] | ["404"] |
// ["identify", id] | ["reset"] | ["consent", "granted"|"denied"|"pending"] |
// ["optout", true|false] | ["beforeSend", function].
export function run([name, arg, more]) {
  if (ET_HOOK && name == "beforeSend") return (hooks.b = typeof arg == "function" && arg);
  const op = COMMANDS.indexOf(name);
  let json = "";
  let money;
  try {
    // The page-wide properties are merged; a pageview's object is its URL.
    if (ET_PROPS && op == PROPS) more = Object.assign(props, arg);
    if (ET_MANUAL && op == 5) arg = arg?.url && new URL(arg.url, location.href);
    if (more && typeof more == "object") {
      // $revenue goes apart (the module checks it), never with the others.
      if (ET_REVENUE) money = more.$revenue;
      json = JSON.stringify(more, (key, value) => (key == "$revenue" ? undefined : value));
    }
  } catch (e) {}
  if (op >= 0) later(() => send(op, text(arg), json, ...(ET_REVENUE ? [text(money?.amount), text(money?.currency)] : [])));
}

function onClick(e) {
  // auxclick is any non-primary button; only the middle one opens links.
  if (e.type == "auxclick" && e.button != 1) return;
  // A click on text has an element target; `closest` guards odd ones.
  const target = e.target;
  const tagged = target.closest?.("[data-et-event]");
  if (tagged) run(["track", tagged.getAttribute("data-et-event"), attributeProps(tagged)]);
  const a = target.closest?.("a[href]");
  // SVG links have an object for href; HTML anchors give the browser's
  // own parsing of the URL.
  if (a && typeof a.href == "string") {
    // Host names come lower-cased from the browser's URL parser; the path
    // is lower-cased here for the file extensions.
    const parts = [a.href, a.protocol, a.hostname, a.pathname.toLowerCase()];
    later(() => send(CLICK, ...parts));
  }
}

// An element's data-et-prop-NAME="value" attributes as {NAME: value}.
export function attributeProps(element) {
  const found = {};
  for (const a of element.attributes) {
    if (a.name.startsWith(PROP_PREFIX)) found[a.name.slice(PROP_PREFIX.length)] = a.value;
  }
  return found;
}

function listen() {
  // Page events carry the viewport's bottom edge and the page's height.
  const page = (code) =>
    later(() => wasm.on(code, ET_ENGAGEMENT && scrollY + innerHeight, ET_ENGAGEMENT && document.documentElement.scrollHeight));
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
  if (ET_ENGAGEMENT) when(window, "scroll", SCROLL);
  when(document, "prerenderingchange", ACTIVATE);
  addEventListener("pageshow", (e) => e.persisted && page(RESTORE));
  document.addEventListener("visibilitychange", () =>
    ET_ENGAGEMENT ? page(document.hidden ? HIDE : SHOW) : document.hidden && page(HIDE),
  );
  for (const type of ["click", "auxclick"]) document.addEventListener(type, onClick, true);
  // A form names itself by its id, name or action (attributes: a control
  // called "id" or "name" would shadow the properties).
  if (ET_FORMS)
    document.addEventListener(
      "submit",
      (e) => {
        const form = ["id", "name", "action"].map((n) => e.target.getAttribute?.(n)).find((v) => v) || "";
        later(() => send(FORM, form));
      },
      true,
    );
}

// The module's one import, as src/host.rs declares it.
const imports = { e: { h: host } };

// Compiles the module from its bytes: whatever type the server labels it
// with, and without console noise (for a module of a few kilobytes,
// streaming compilation would gain nothing). An error page instead of the
// module fails to compile, and the console message says so.
const instantiate = (response) => response.arrayBuffer().then((bytes) => WebAssembly.instantiate(bytes, imports));

// settings: [key, value] pairs named as the data- attributes are, without
// "data-". here: the tracker's own URL; the default endpoint and t.wasm
// are beside it. wasm: another URL for t.wasm.
export function boot(settings, here, wasmUrl) {
  if (booted != null) return;
  booted = true;
  later(() => wasm.on(LOAD, 0, 0));
  listen();
  fetch(wasmUrl || new URL(ET_WASM, here))
    .then(instantiate)
    .then(({ instance }) => {
      wasm = instance.exports;
      Object.assign(hooks, wasm);
      // The settings as `name=value` lines (src/config.rs), trimmed. data-api
      // may be relative to the page (a first-party proxy path); one that is
      // no URL at all stops the tracker with the parser's message.
      const lines = [["base", new URL(".", here)], ...settings].map(
        ([key, value]) => key + "=" + (key == "api" ? new URL(value, location.href) : value).toString().trim(),
      );
      send(CONFIG, lines.join("\n"));
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
