// The trackers that make bench measures, ours first: how each is built into
// what a site serves, the script tag that puts it in the test page, and the
// request that carries its page view.
import { copyFileSync, mkdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { BENCH, PUBLIC, bundle, packageVersion, workDir } from "./lib.mjs";

const NPM = path.join(BENCH, "node_modules");

/**
 * id, label, package + version, `files(dir)` -> { url path: file } that the
 * page server serves (built into dir), `tag(api)` the script element, and
 * `pageview` matching the URL of the request that carries the page view.
 * Each tag is loaded the way its vendor recommends today: `async` for ours
 * (tracker-wasm/README.md) and Plausible's (its current snippet is an async
 * script), `defer` for the others.
 */
export const TRACKERS = [
  {
    id: "edgetrack",
    label: "edgetrack (ours)",
    package: "tracker-wasm",
    version: () => "this checkout",
    // t.js loads its module by its content-hashed name, t.<hash>.wasm.
    files: () => {
      const module = readFileSync(path.join(PUBLIC, "t.js"), "utf8").match(/"(t\.[0-9a-f]{10}\.wasm)"/)?.[1];
      if (!module) throw new Error("t.js names no t.<hash>.wasm: run 'make tracker'");
      return { "/t.js": path.join(PUBLIC, "t.js"), [`/${module}`]: path.join(PUBLIC, module) };
    },
    // data-local: the test page is served from a loopback address, which
    // the tracker skips unless told (as Plausible's captureOnLocalhost).
    tag: (api) => `<script async src="/t.js" data-token="demo-token" data-local data-api="${api}/collect"></script>`,
    pageview: /\/collect$/,
  },
  {
    id: "mixpanel",
    label: "mixpanel-browser",
    package: "mixpanel-browser",
    version: () => packageVersion("mixpanel-browser"),
    files: (dir) => ({ "/mixpanel.js": bundle("mixpanel.js", path.join(dir, "mixpanel.js")) }),
    tag: (api) => `<script defer src="/mixpanel.js" data-api="${api}"></script>`,
    pageview: /\/track\/?(\?|$)/,
  },
  {
    id: "posthog",
    label: "posthog-js",
    package: "posthog-js",
    version: () => packageVersion("posthog-js"),
    files: (dir) => ({ "/posthog.js": bundle("posthog.js", path.join(dir, "posthog.js")) }),
    tag: (api) => `<script defer src="/posthog.js" data-api="${api}"></script>`,
    pageview: /\/(e|i\/v0\/e|batch|capture)\/?(\?|$)/,
  },
  {
    id: "plausible",
    label: "@plausible-analytics/tracker",
    package: "@plausible-analytics/tracker",
    version: () => packageVersion("@plausible-analytics/tracker"),
    files: (dir) => ({ "/plausible.js": bundle("plausible.js", path.join(dir, "plausible.js")) }),
    tag: (api) => `<script async src="/plausible.js" data-api="${api}"></script>`,
    pageview: /\/api\/event$/,
  },
  {
    id: "vemetric",
    label: "@vemetric/web",
    package: "@vemetric/web",
    version: () => packageVersion("@vemetric/web"),
    files: (dir) => {
      const main = path.join(dir, "vemetric-main.js");
      copyFileSync(path.join(NPM, "@vemetric/web/dist/main.js"), main);
      return { "/vemetric.js": bundle("vemetric.js", path.join(dir, "vemetric.js")), "/vemetric-main.js": main };
    },
    tag: (api) => `<script defer src="/vemetric.js" data-api="${api}" data-script="/vemetric-main.js"></script>`,
    pageview: /\/e$/,
  },
];

/** Builds every tracker once; returns { id: { url path: file } }. */
export function buildAll() {
  const dir = path.join(workDir(), "trackers");
  mkdirSync(dir, { recursive: true });
  return Object.fromEntries(TRACKERS.map((t) => [t.id, t.files(dir)]));
}
