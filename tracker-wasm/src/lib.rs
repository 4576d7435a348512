//! edgetrack's in-page tracker. The loader (`js/loader.js`) reads the script
//! tag and calls [`start`]; everything else happens here.

mod delivery;
mod identity;
mod json;

use wasm_bindgen::prelude::*;

/// Starts tracking: sends the first pageview.
#[wasm_bindgen]
pub fn start(token: &str, endpoint: &str) {
    let Some(window) = web_sys::window() else { return };
    let Some(document) = window.document() else { return };
    let url = window.location().href().unwrap_or_default();
    let device = identity::device_id(&document);
    let mut event = json::Object::new();
    event.str("n", "$pageview");
    event.str("i", &identity::random_id());
    event.num("ts", js_sys::Date::now());
    event.str("d", &device);
    event.str("u", &url);
    event.str("r", &document.referrer());
    event.str("h", &document.title());
    let mut batch = json::Object::new();
    batch.str("t", token);
    batch.raw("e", &format!("[{}]", event.finish()));
    delivery::send(&window, endpoint, &batch.finish());
}
