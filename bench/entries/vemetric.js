// @vemetric/web as a site installs it from npm: a loader that adds the
// tracker script (cdn.vemetric.com/main.js by default; here the same
// package's dist/main.js, served beside the page via data-script).
import { vemetric } from "@vemetric/web";

const tag = document.currentScript;
vemetric.init({ token: "demo-token", host: tag.dataset.api, scriptUrl: tag.dataset.script });
