// posthog-js as a site installs it from npm, with its default options
// (page views on), sent to the host in this script tag's data-api.
import posthog from "posthog-js";

posthog.init("phc_benchtoken", { api_host: document.currentScript.dataset.api });
