// edgetrack's script-tag entry, built into t.js:
//   <script async src="https://HOST/t.js" data-token="demo-token"></script>
// Reads the tag's data- attributes (data-et-prop-* are properties on every
// event), takes over the `edgetrack(...)` command queue a page may have
// started before this script arrived, and boots the module from t.wasm
// beside this script.
import { attributeProps, boot, run } from "./core.js";

const script = document.currentScript || document.querySelector("script[data-token]");

if (script) {
  const settings = [];
  for (const a of script.attributes) {
    if (a.name.startsWith("data-")) settings.push([a.name.slice(5), a.value]);
  }
  // The stub a page can define first:
  //   window.edgetrack = window.edgetrack || function () { (edgetrack.q = edgetrack.q || []).push(arguments) };
  const earlier = window.edgetrack?.q || [];
  window.edgetrack = function () {
    run(arguments);
  };
  if (ET_PROPS) run(["props", attributeProps(script)]);
  for (const args of earlier) run(args);
  boot(settings, script.src);
}
