// Shows, on cross-origin.html, which origin the page came from and which
// worker its tracker tag names. It only reads the page: the tag itself is
// fixed in the HTML, never built from the address.
(function () {
  "use strict";
  var tag = document.querySelector("script[data-token]");
  document.getElementById("page-origin").textContent = location.origin;
  document.getElementById("worker-origin").textContent = tag ? new URL(tag.src).origin : "(none)";
})();
