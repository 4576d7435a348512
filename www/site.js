// Shared by the demo pages. Loaded with `defer` before the tracker's tag, so
// the command queue exists before any page code (or the tracker) uses it.
// Calls made before t.js has started wait in `edgetrack.q`.
window.edgetrack = window.edgetrack || function () { (edgetrack.q = edgetrack.q || []).push(arguments); };

(function () {
  "use strict";
  // The consent banner (only consent.html has one). The choice is remembered
  // here only to hide the banner; the tracker keeps its own record.
  var banner = document.getElementById("consent-banner");
  if (!banner) return;
  var KEY = "edgetrack-demo-consent";
  var status = document.getElementById("consent-status");
  function remembered() {
    try { return localStorage.getItem(KEY); } catch (e) { return null; }
  }
  function show(choice) {
    banner.hidden = choice === "granted" || choice === "denied";
    status.textContent = choice === "granted" ? "You accepted analytics."
      : choice === "denied" ? "You declined analytics." : "No choice yet: nothing is sent.";
  }
  function choose(choice) {
    edgetrack("consent", choice);
    try { localStorage.setItem(KEY, choice); } catch (e) { /* private mode: banner just comes back */ }
    show(choice);
  }
  document.getElementById("consent-accept").addEventListener("click", function () { choose("granted"); });
  document.getElementById("consent-decline").addEventListener("click", function () { choose("denied"); });
  document.getElementById("consent-change").addEventListener("click", function () {
    banner.hidden = false;
  });
  var previous = remembered();
  if (previous) edgetrack("consent", previous);
  show(previous);
})();
