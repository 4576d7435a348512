// edgetrack as an ES module, for bundlers and <script type="module">:
//   import { init, track } from "https://HOST/t.mjs";
//   init({ token: "demo-token" });
//   track("Signup", { plan: "pro" });
// init's options are the script tag's data- attributes in camelCase
// (token, api, consent, outbound, spa, cookieName, cookieDomain,
// respectDnt), plus `wasm`: the URL of t.wasm, by default beside this
// module. A bundled copy has no such neighbour: pass `wasm` and `api`.
// Calls made before init, or before the module has loaded, wait and run in
// order.
import { boot, run } from "./core.js";

export function init(options = {}) {
  const settings = [];
  // cookieName -> cookie-name, as the attribute is spelled.
  for (const key in options) settings.push([key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()), String(options[key])]);
  boot(settings, import.meta.url, options.wasm);
}

export const track = (name, props) => run(["track", name, props]);
export const identify = (userId) => run(["identify", userId]);
export const reset = () => run(["reset"]);
export const consent = (mode) => run(["consent", mode]);
export const optout = (on = true) => run(["optout", on]);
