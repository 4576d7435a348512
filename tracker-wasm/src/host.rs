//! Everything the tracker needs from the browser, as one trait: the page's
//! facts, the cookie, localStorage, the network, a timer, randomness and the
//! clock. [`JsHost`] calls the functions in `js/host.js`, each of which
//! catches its own errors; tests use an in-memory fake.

use alloc::string::String;
use alloc::vec::Vec;
use core::cell::RefCell;

/// A fact `read` returns as text; the numbers are the indexes of the
/// `probes` table in `js/host.js`, so the two lists must stay in step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u32)]
pub enum Read {
    /// `location.href`
    Href = 0,
    /// `location.hostname`
    Host = 1,
    /// `document.referrer`
    Referrer = 2,
    /// `document.title`
    Title = 3,
    /// `screen.width + "x" + screen.height`
    Screen = 4,
    /// `document.cookie`
    Cookie = 5,
    /// `navigator.userAgent` and the `navigator.userAgentData.brands` names
    /// (where the browser has them), joined by commas, lower-cased
    Agent = 6,
    /// Own enumerable property names of `window` and `document`, by commas
    Globals = 7,
    /// `navigator.webdriver` ("1" under automation)
    Webdriver = 8,
    /// `document.prerendering` ("1" while prerendered and not shown)
    Prerendering = 9,
    /// `navigator.doNotTrack` ("1" when the user asks not to be tracked)
    DoNotTrack = 10,
    /// `navigator.globalPrivacyControl` ("1" when set)
    PrivacyControl = 11,
    /// `document.hidden` ("1" while the page is not visible)
    Hidden = 12,
}

pub trait Host {
    /// Milliseconds since the epoch.
    fn now(&self) -> f64;
    /// 32 random bits from `crypto.getRandomValues`.
    fn random(&self) -> u32;
    /// A page fact; empty when the browser has none or refuses.
    fn read(&self, what: Read) -> String;
    /// `localStorage.getItem(key)`; empty when absent or storage is off.
    fn load(&self, key: &str) -> String;
    /// `localStorage.setItem(key, value)`, or `removeItem` for "".
    fn store(&self, key: &str, value: &str);
    /// `document.cookie = cookie`
    fn set_cookie(&self, cookie: &str);
    /// `navigator.sendBeacon(url, body)` with a text/plain body: whether the
    /// browser took it.
    fn beacon(&self, url: &str, body: &str) -> bool;
    /// `fetch(url, {method: "POST", body, keepalive})`; the outcome comes
    /// back later as `on(DONE, id, status)` (see lib.rs).
    fn post(&self, url: &str, body: &str, keepalive: bool, id: u32);
    /// `on(TICK)` after `ms` milliseconds, replacing any timer asked for
    /// before.
    fn wake(&self, ms: f64);
    /// A finished event through the page's `beforeSend` hook, if it set
    /// one: the event as the hook returned it (`JSON.stringify`), or
    /// something that is no JSON object when the hook dropped it (or
    /// failed). Without a hook, the event unchanged.
    fn hook(&self, event: &str) -> String;
}

/// A borrowed host is a host (tests share one fake between trackers).
impl<T: Host> Host for &T {
    fn now(&self) -> f64 {
        (**self).now()
    }
    fn random(&self) -> u32 {
        (**self).random()
    }
    fn read(&self, what: Read) -> String {
        (**self).read(what)
    }
    fn load(&self, key: &str) -> String {
        (**self).load(key)
    }
    fn store(&self, key: &str, value: &str) {
        (**self).store(key, value)
    }
    fn set_cookie(&self, cookie: &str) {
        (**self).set_cookie(cookie)
    }
    fn beacon(&self, url: &str, body: &str) -> bool {
        (**self).beacon(url, body)
    }
    fn post(&self, url: &str, body: &str, keepalive: bool, id: u32) {
        (**self).post(url, body, keepalive, id)
    }
    fn wake(&self, ms: f64) {
        (**self).wake(ms)
    }
    fn hook(&self, event: &str) -> String {
        (**self).hook(event)
    }
}

// The boundary with `js/host.js` carries numbers only: text goes through
// linear memory as (pointer, length) pairs, decoded and encoded there with
// TextDecoder/TextEncoder. wasm-bindgen's own string passing would put about
// a kilobyte (gzip) of conversion glue into t.js.
//
// The module built for the page imports `host` as `e.h`, which `js/core.js`
// supplies when it instantiates the module (no wasm-bindgen glue at all).
// Tests (wasm-bindgen-test in Chromium) import the same function from
// `js/host.js` through wasm-bindgen; native builds never call it.
#[cfg(all(target_arch = "wasm32", not(test)))]
#[link(wasm_import_module = "e")]
extern "C" {
    /// One operation (see the `op` constants) on up to two texts at
    /// `(a, a_len)` and `(b, b_len)` and a number `x`; see js/host.js.
    #[link_name = "h"]
    fn host(op: u32, a: u32, a_len: u32, b: u32, b_len: u32, x: f64) -> f64;
}

#[cfg(any(not(target_arch = "wasm32"), test))]
#[wasm_bindgen::prelude::wasm_bindgen(module = "/js/host.js")]
extern "C" {
    fn host(op: u32, a: u32, a_len: u32, b: u32, b_len: u32, x: f64) -> f64;
}

/// `host` operations after the [`Read`] facts (0 to 12), which, like
/// `LOAD` and `HOOK`, write their text's UTF-8 into the room at `a` (`a_len`
/// bytes) when it fits and return its length either way.
pub(crate) mod op {
    /// localStorage item `b`.
    pub const LOAD: u32 = 13;
    /// The `beforeSend` hook on the event `b`.
    pub const HOOK: u32 = 14;
    /// localStorage `a` = `b` ("" removes); an empty `a` sets the cookie `b`.
    pub const WRITE: u32 = 15;
    /// `sendBeacon(a, b)`: 1 if the browser took it.
    pub const BEACON: u32 = 16;
    /// `fetch(a, {method: "POST", body: b})`, answered by `on(DONE, x, status)`.
    pub const FETCH: u32 = 17;
    /// The same with `keepalive`.
    pub const KEEPALIVE: u32 = 18;
    /// `on(TICK)` after `x` milliseconds (one timer, replaced).
    pub const WAKE: u32 = 19;
    pub const NOW: u32 = 20;
    /// 32 bits from `crypto.getRandomValues`.
    pub const RANDOM: u32 = 21;
}

/// The room offered for what the hook returns: an event larger than the
/// largest delivery takes is dropped anyway, and a room that is too small
/// would run the page's hook a second time.
const HOOK_ROOM_BYTES: usize = 64 * 1024;

/// `host`, safe: it only reads and writes the ranges it is given, and
/// catches its own errors. (The wasm-bindgen import is already safe to call.)
#[allow(unused_unsafe)]
fn call_host(op: u32, a: u32, a_len: u32, b: u32, b_len: u32, x: f64) -> f64 {
    // SAFETY: see above; every caller passes ranges of live buffers.
    unsafe { host(op, a, a_len, b, b_len, x) }
}

fn host2(op: u32, a: &str, b: &str, x: f64) -> f64 {
    call_host(
        op,
        a.as_ptr() as u32,
        a.len() as u32,
        b.as_ptr() as u32,
        b.len() as u32,
        x,
    )
}

/// Where the loader writes the texts of a `call` (see `room` in lib.rs).
/// Wasm in a page has one thread.
pub struct Slot<T>(pub RefCell<T>);

// SAFETY: wasm32-unknown-unknown without the atomics feature has one
// thread, so the cells are never shared across threads.
unsafe impl<T> Sync for Slot<T> {}

pub static ARGS: Slot<Vec<u8>> = Slot(RefCell::new(Vec::new()));

/// A text from the host: `op` writes it into a room of at least `size`
/// bytes we offer and says how long it is; a room too small is grown and
/// the question asked again.
fn text_from(op: u32, key: &str, size: usize) -> String {
    let mut room = alloc::vec![0u8; size];
    loop {
        let offered = room.len();
        let len = call_host(
            op,
            room.as_mut_ptr() as u32,
            offered as u32,
            key.as_ptr() as u32,
            key.len() as u32,
            0.0,
        ) as usize;
        if len <= offered {
            room.truncate(len);
            // SAFETY: js/host.js filled the first `len` bytes with
            // TextEncoder's output, which is always UTF-8.
            return unsafe { String::from_utf8_unchecked(room) };
        }
        room.resize(len, 0);
    }
}

/// `bytes[start..start + len]` as text, or "" unless both ends are on
/// character boundaries. `bytes` must be UTF-8 (the loader writes it with
/// TextEncoder); a slice of it between two boundaries is then UTF-8 too.
pub fn piece(bytes: &[u8], start: usize, len: usize) -> &str {
    let boundary = |i: usize| bytes.get(i).map_or(i == bytes.len(), |b| b & 0xC0 != 0x80);
    match bytes.get(start..start + len) {
        // SAFETY: see above.
        Some(text) if boundary(start) && boundary(start + len) => unsafe { core::str::from_utf8_unchecked(text) },
        _ => "",
    }
}

/// The browser, through `js/host.js`.
pub struct JsHost;

impl Host for JsHost {
    fn now(&self) -> f64 {
        host2(op::NOW, "", "", 0.0)
    }
    fn random(&self) -> u32 {
        host2(op::RANDOM, "", "", 0.0) as u32
    }
    fn read(&self, what: Read) -> String {
        text_from(what as u32, "", 256)
    }
    fn load(&self, key: &str) -> String {
        text_from(op::LOAD, key, 256)
    }
    fn store(&self, key: &str, value: &str) {
        host2(op::WRITE, key, value, 0.0);
    }
    fn set_cookie(&self, cookie: &str) {
        host2(op::WRITE, "", cookie, 0.0);
    }
    fn beacon(&self, url: &str, body: &str) -> bool {
        host2(op::BEACON, url, body, 0.0) != 0.0
    }
    fn post(&self, url: &str, body: &str, keepalive: bool, id: u32) {
        host2(
            if keepalive { op::KEEPALIVE } else { op::FETCH },
            url,
            body,
            f64::from(id),
        );
    }
    fn wake(&self, ms: f64) {
        host2(op::WAKE, "", "", ms);
    }
    fn hook(&self, event: &str) -> String {
        text_from(op::HOOK, event, HOOK_ROOM_BYTES)
    }
}

/// Tests run without js/core.js: this hands js/host.js the memory it reads
/// and writes texts in.
#[cfg(test)]
pub fn js_host() -> JsHost {
    use wasm_bindgen::prelude::*;
    #[wasm_bindgen(module = "/js/host.js")]
    extern "C" {
        fn attach(memory: JsValue);
    }
    attach(wasm_bindgen::memory());
    JsHost
}

/// `read` for facts that are flags: "1" means set.
pub fn flag(host: &impl Host, what: Read) -> bool {
    host.read(what) == "1"
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen::prelude::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen(module = "/js/host.js")]
    extern "C" {
        #[wasm_bindgen(js_name = setHook)]
        fn set_hook(hook: JsValue);
    }

    // In Chromium: the page's beforeSend function, through js/host.js.
    #[wasm_bindgen_test]
    fn browser_before_send_hook() {
        let host = js_host();
        let event = r#"{"n":"a","u":"https://site.test/?t=1"}"#;
        set_hook(JsValue::UNDEFINED);
        assert_eq!(host.hook(event), event, "no hook: unchanged");
        let strip =
            js_sys::Function::new_with_args("e", "return e.n == 'drop' ? null : { ...e, u: e.u.split('?')[0] }");
        set_hook(strip.into());
        assert_eq!(host.hook(event), r#"{"n":"a","u":"https://site.test/"}"#);
        assert_eq!(host.hook(r#"{"n":"drop"}"#), "0", "dropped: no object");
        let failing = js_sys::Function::new_with_args("e", "throw new Error('oops')");
        set_hook(failing.into());
        assert_eq!(host.hook(event), "", "a failing hook drops the event too");
        let big = js_sys::Function::new_with_args("e", "return { ...e, x: 'x'.repeat(70000) }");
        set_hook(big.into());
        assert!(host.hook(event).len() > 70_000, "a long result is read whole");
        set_hook(JsValue::UNDEFINED);
    }
}
