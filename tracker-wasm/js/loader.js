// edgetrack loader: one <script> tag, e.g.
//   <script defer src="/t.js" data-token="demo-token"></script>
// Reads the tag, fetches t.wasm beside this script and starts the tracker.
import init, { start } from "../pkg/tracker_wasm.js";

const script = document.currentScript;
const token = script && script.getAttribute("data-token");
const base = script ? new URL(".", script.src) : new URL("/", location.href);
const api = (script && script.getAttribute("data-api")) || new URL("/collect", base).href;

if (token) {
  init({ module_or_path: new URL("t.wasm", base) })
    .then(() => start(token, api))
    .catch((e) => console.warn("edgetrack: tracker not started:", e && e.message));
}
