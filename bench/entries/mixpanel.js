// mixpanel-browser as a site installs it from npm: the default import, one
// init with the project token and track_pageview (off by default), sent to
// the host in this script tag's data-api.
import mixpanel from "mixpanel-browser";

mixpanel.init("demo-token", { api_host: document.currentScript.dataset.api, track_pageview: true });
