// @plausible-analytics/tracker as a site installs it from npm. The test page
// is served from a loopback address, which Plausible skips unless told.
import { init } from "@plausible-analytics/tracker";

init({
  domain: "shop.example",
  endpoint: document.currentScript.dataset.api + "/api/event",
  captureOnLocalhost: true,
});
