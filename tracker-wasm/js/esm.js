// edgetrack as an ES module, for bundlers and <script type="module">:
//   import { init, track } from "https://HOST/t.mjs";
//   init({ token: "demo-token" });
//   track("Signup", { plan: "pro" });
// init's options are the script tag's data- attributes in camelCase
// (token, api, consent, outbound, spa, cookieName, cookieDomain,
// cookieDays, respectDnt, manual, local, domains, include, exclude,
// fileTypes, forms; `404` as "404"), plus `wasm`: the URL of t.wasm, by
// default beside this module (a bundled copy has no such neighbour: pass
// `wasm` and `api`), `props`: properties on every event, and `beforeSend`:
// the hook.
// Calls made before init, or before the module has loaded, wait and run in
// order.
import { boot, run } from "./core.js";

export function init(options = {}) {
  const settings = [];
  // cookieName -> cookie-name, as the attribute is spelled.
  for (const key in options) settings.push([key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase()), String(options[key])]);
  if (options.props) run(["props", options.props]);
  if (options.beforeSend) run(["beforeSend", options.beforeSend]);
  boot(settings, import.meta.url, options.wasm);
}

export const track = (name, props) => run(["track", name, props]);
export const pageview = (options) => run(["pageview", options]);
export const props = (values) => run(["props", values]);
export const notFound = () => run(["404"]);
export const beforeSend = (hook) => run(["beforeSend", hook]);
export const identify = (userId) => run(["identify", userId]);
export const reset = () => run(["reset"]);
export const consent = (mode) => run(["consent", mode]);
export const optout = (on = true) => run(["optout", on]);
