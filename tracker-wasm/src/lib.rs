//! edgetrack's in-page tracker.
//!
//! The JavaScript side (`js/`) only wires the page to this module: it reads
//! the script tag, listens to clicks, history and visibility, and performs
//! the few browser calls in `js/host.js`. Every decision is made here:
//!
//! - [`config`]: the `data-` attributes (or ESM `init` options);
//! - [`pageview`]: which navigations are pageviews;
//! - [`site`]: which pages are counted at all (local, domains, paths);
//! - [`engagement`]: visible time and scroll depth of each page view;
//! - [`outbound`]: which clicked links are downloads or outbound;
//! - [`identity`]: consent modes, the device cookie, the user id;
//! - [`bots`]: automation that must not be counted;
//! - [`delivery`]: batching, beacon/fetch, retries and the stored backlog;
//! - [`json`]: the small JSON writer the payloads are built with;
//! - [`text`]: string helpers without panic paths;
//! - [`tracker`]: the state machine tying them together.
//!
//! The shipped module (a release build for wasm32) is `no_std` with its own
//! small allocator (`heap`) and panic handler: std's panic and formatting
//! code would be most of the file otherwise. Every other build uses std:
//! tests (natively and in headless Chromium) and checks, which may unify
//! wasm-bindgen's `std` feature in from other crates (`cargo clippy -p
//! edge-worker -p tracker-wasm`), and then std must be the one panic
//! handler.

#![cfg_attr(all(target_arch = "wasm32", not(test), not(debug_assertions)), no_std)]

extern crate alloc;

pub mod bots;
pub mod config;
pub mod delivery;
pub mod engagement;
#[cfg(all(target_arch = "wasm32", not(test), not(debug_assertions)))]
mod heap;
pub mod host;
pub mod identity;
pub mod json;
pub mod outbound;
pub mod pageview;
pub mod site;
pub mod text;
pub mod tracker;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod boundary;
#[cfg(test)]
mod fake;

use core::cell::RefCell;
use host::{JsHost, Slot};
use tracker::Tracker;

/// A trap is all a panic can do in the shipped module; the loader catches
/// it, and the tracker stays silent for the rest of the page.
#[cfg(all(target_arch = "wasm32", not(test), not(debug_assertions)))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}

/// The page's one tracker.
static TRACKER: Slot<Tracker<JsHost>> = Slot(RefCell::new(Tracker::new(JsHost)));

/// Runs `f` on the tracker. A call that arrives while another is running
/// (it cannot: the host never calls back synchronously) or after a trap
/// left the cell borrowed is dropped.
fn with(f: impl FnOnce(&mut Tracker<JsHost>)) {
    if let Ok(mut tracker) = TRACKER.0.try_borrow_mut() {
        f(&mut tracker);
    }
}

/// `call` codes after the [`tracker::COMMANDS`] (0 to 7).
pub const CLICK: u32 = 8;
pub const FORM: u32 = 9;
/// The settings text (see [`config`]).
pub const CONFIG: u32 = 10;

/// `on` codes after the [`pageview::Nav`] ones (0 to 7); `js/host.js`
/// and `js/core.js` use the same numbers.
pub const START: u32 = 8;
pub const TICK: u32 = 9;
pub const DONE: u32 = 10;

/// Makes room for `len` bytes of text for the next [`call`] and says where
/// (the loader writes UTF-8 there). Texts cross as bytes in linear memory:
/// wasm-bindgen's string conversion glue would cost more than the tracker's
/// own loader.
///
/// The three exports are plain C-ABI functions, instantiated by
/// `js/core.js` itself: wasm-bindgen's generated loader and its start-up
/// code would cost more than the exports they wrap.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn room(len: u32) -> u32 {
    let Ok(mut args) = host::ARGS.0.try_borrow_mut() else {
        return 0;
    };
    args.clear();
    args.resize(len as usize, 0);
    args.as_mut_ptr() as u32
}

/// The loader's calls that carry text, one entry point for all (each export
/// costs glue in t.js and a wrapper in t.wasm). The texts are in the room
/// (see [`room`]), one after another, `a`, `b`, `c` and `d` bytes long.
/// By code:
///
/// - 0 to 7, the page's `edgetrack(...)` commands ([`tracker::COMMANDS`]):
///   `track name props amount currency`, `identify id`, `reset`,
///   `consent mode`, `optout [false]`, `pageview url`, `props - props`,
///   `404`; `props` is `JSON.stringify` of an object (without `$revenue`,
///   whose amount and currency come apart), or empty;
/// - [`CLICK`] `href protocol hostname path`: a click or middle click on a
///   link, the parts as the browser parsed them;
/// - [`FORM`] `form`: a form was submitted (its id, name or action);
/// - [`CONFIG`] `lines`: the settings, from the script tag's `data-`
///   attributes or the ESM `init` options.
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn call(code: u32, a: u32, b: u32, c: u32, d: u32) {
    if let Ok(args) = host::ARGS.0.try_borrow() {
        let (a, b, c, d) = (a as usize, b as usize, c as usize, d as usize);
        let (a, b, c, d) = (
            host::piece(&args, 0, a),
            host::piece(&args, a, b),
            host::piece(&args, a + b, c),
            host::piece(&args, a + b + c, d),
        );
        with(|t| match code {
            CLICK => t.click(
                a,
                outbound::Link {
                    protocol: b,
                    host: c,
                    path: d,
                },
            ),
            FORM => t.form(a),
            CONFIG => t.configure(a),
            _ => t.command(code, a, b, c, d),
        });
    }
}

/// The loader's calls that carry numbers: a page event ([`pageview::Nav`]
/// code, with the viewport's bottom edge and the page's height in pixels),
/// [`START`], [`TICK`] (the timer asked for by the host's `wake`), or
/// [`DONE`] with the id and status of a fetch the host started (status 0:
/// network error).
#[cfg_attr(target_arch = "wasm32", no_mangle)]
pub extern "C" fn on(code: u32, a: u32, b: u32) {
    with(|t| match code {
        START => t.start(),
        TICK => t.tick(),
        DONE => t.done(a, b),
        nav => t.page(nav, a, b),
    });
}

#[cfg(test)]
wasm_bindgen_test::wasm_bindgen_test_configure!(run_in_browser);
