// @plausible-analytics/tracker with the options that match edgetrack's
// t.full.js feature for feature: outbound links, file downloads, form
// submissions, hash routing, properties on every event and a request hook
// (revenue, tagged events and engagement are always in the package). The
// package is one module whatever the options, so this measures the same
// code plus the options object.
import { init } from "@plausible-analytics/tracker";

init({
  domain: "shop.example",
  endpoint: document.currentScript.dataset.api + "/api/event",
  captureOnLocalhost: true,
  outboundLinks: true,
  fileDownloads: { fileExtensions: ["pdf", "zip"] },
  formSubmissions: true,
  hashBasedRouting: true,
  customProperties: { author: "ann" },
  transformRequest: (payload) => payload,
});
