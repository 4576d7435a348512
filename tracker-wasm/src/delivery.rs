//! Delivery: `sendBeacon` with a text/plain body (no CORS preflight), which
//! survives the page being closed.

pub fn send(window: &web_sys::Window, endpoint: &str, body: &str) -> bool {
    window.navigator().send_beacon_with_opt_str(endpoint, Some(body)).unwrap_or(false)
}
