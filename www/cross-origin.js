// Writes the tracker's script tag for cross-origin.html: src and data-api
// point at the worker named by ?worker= (its origin only), or at this page's
// own origin when the parameter is absent or not an http(s) URL.
(function () {
  "use strict";
  var TOKEN = "demo-token";

  function workerOrigin() {
    var given = new URLSearchParams(location.search).get("worker");
    if (given) {
      try {
        var url = new URL(given);
        if (url.protocol === "http:" || url.protocol === "https:") return url.origin;
      } catch (e) { /* not a URL: fall back below */ }
    }
    return location.origin;
  }

  var origin = workerOrigin();
  var tag = document.createElement("script");
  tag.defer = true;
  tag.src = origin + "/t.js";
  tag.setAttribute("data-token", TOKEN);
  tag.setAttribute("data-api", origin + "/collect");
  document.head.appendChild(tag);

  document.addEventListener("DOMContentLoaded", function () {
    document.getElementById("page-origin").textContent = location.origin;
    document.getElementById("worker-origin").textContent = origin;
  });
})();
