//! How long a page view was visible and how far down it was read: the
//! `$engagement` event's `engaged_ms` and `scroll`.
//!
//! Each page view (a load, an SPA navigation, a back/forward-cache restore,
//! a manual pageview) starts a count. Time counts while the page is visible.
//! When the page is hidden or left, or an SPA navigation opens the next page
//! view, the count so far is reported: `engaged_ms` is the visible time since
//! the previous report of the same page view (so the reports of one page view
//! add up to its visible time), `scroll` the deepest point reached so far, in
//! percent of the page's height. The first report of a page view is always
//! sent; later ones only when they add [`MIN_ENGAGED_MS`] or a deeper scroll,
//! so that flipping between tabs does not send a stream of tiny events.

use crate::json::write_u64;
use crate::text::add;
use alloc::string::String;

/// Visible time a later report must add to be sent (Plausible uses the same
/// 3 seconds).
pub const MIN_ENGAGED_MS: f64 = 3000.0;

#[derive(Debug, Default)]
pub struct Engagement {
    /// When the page became visible; 0 while hidden.
    since: f64,
    /// Visible time not reported yet, besides the running stretch.
    engaged: f64,
    /// The deepest scroll seen, in percent.
    deepest: u32,
    /// `deepest` at the last report; `None` before the first.
    reported: Option<u32>,
}

/// How far down the viewport's bottom edge (`bottom`, scroll offset plus
/// viewport height) is on a page `height` high, in percent; a page with no
/// height counts as read to the end.
pub fn percent(bottom: u32, height: u32) -> u32 {
    if height == 0 {
        return 100;
    }
    (u64::from(bottom) * 100 / u64::from(height)).min(100) as u32
}

impl Engagement {
    pub const fn new() -> Engagement {
        Engagement {
            since: 0.0,
            engaged: 0.0,
            deepest: 0,
            reported: None,
        }
    }

    /// A new page view, visible or not.
    pub fn start(&mut self, now: f64, visible: bool) {
        *self = Engagement::new();
        if visible {
            self.since = now;
        }
    }

    pub fn shown(&mut self, now: f64) {
        if self.since == 0.0 {
            self.since = now;
        }
    }

    pub fn hidden(&mut self, now: f64) {
        if self.since > 0.0 {
            self.engaged += now - self.since;
            self.since = 0.0;
        }
    }

    pub fn scrolled(&mut self, bottom: u32, height: u32) {
        self.deepest = self.deepest.max(percent(bottom, height));
    }

    /// The `$engagement` properties to send now, if any is worth sending
    /// (see the module docs); the time reported is then counted as sent.
    pub fn report(&mut self, now: f64) -> Option<String> {
        let running = if self.since > 0.0 { now - self.since } else { 0.0 };
        let ms = self.engaged + running;
        let deeper = self.reported.is_none_or(|r| self.deepest > r);
        if ms < MIN_ENGAGED_MS && !deeper {
            return None;
        }
        self.engaged = 0.0;
        if self.since > 0.0 {
            self.since = now;
        }
        self.reported = Some(self.deepest);
        let mut props = String::from("{\"engaged_ms\":");
        write_u64(&mut props, ms.max(0.0) as u64);
        add(&mut props, ",\"scroll\":");
        write_u64(&mut props, u64::from(self.deepest));
        add(&mut props, "}");
        Some(props)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    const T0: f64 = 1_700_000_000_000.0;

    fn parsed(props: Option<String>) -> (u64, u64) {
        let v: serde_json::Value = serde_json::from_str(&props.unwrap_or_default()).unwrap_or_default();
        (
            v["engaged_ms"].as_u64().unwrap_or(u64::MAX),
            v["scroll"].as_u64().unwrap_or(u64::MAX),
        )
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn scroll_percent() {
        assert_eq!(percent(800, 3200), 25);
        assert_eq!(percent(3200, 3200), 100);
        assert_eq!(percent(4000, 3200), 100, "overscroll");
        assert_eq!(percent(500, 0), 100);
        assert_eq!(percent(u32::MAX, u32::MAX), 100, "no overflow");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn visible_time_only_and_the_deepest_scroll() {
        let mut e = Engagement::new();
        e.start(T0, true);
        e.scrolled(800, 3200);
        e.scrolled(2400, 3200);
        e.scrolled(1600, 3200);
        e.hidden(T0 + 4_000.0);
        // Hidden for a minute: not counted.
        e.shown(T0 + 64_000.0);
        e.hidden(T0 + 65_500.0);
        assert_eq!(parsed(e.report(T0 + 90_000.0)), (5_500, 75));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn the_first_report_always_later_ones_when_they_add_enough() {
        let mut e = Engagement::new();
        e.start(T0, true);
        assert_eq!(parsed(e.report(T0 + 500.0)), (500, 0), "a short visit still reports");
        assert_eq!(e.report(T0 + 500.0 + MIN_ENGAGED_MS - 1.0), None, "too little since");
        assert_eq!(
            parsed(e.report(T0 + 500.0 + MIN_ENGAGED_MS)),
            (MIN_ENGAGED_MS as u64, 0),
            "time since the previous report"
        );
        e.scrolled(100, 100);
        assert_eq!(parsed(e.report(T0 + 4_000.0)), (500, 100), "deeper: sent");
        assert_eq!(e.report(T0 + 4_100.0), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_page_opened_in_the_background_counts_from_when_it_is_shown() {
        let mut e = Engagement::new();
        e.start(T0, false);
        e.shown(T0 + 10_000.0);
        e.shown(T0 + 11_000.0);
        assert_eq!(parsed(e.report(T0 + 12_000.0)), (2_000, 0));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn a_new_page_view_starts_over() {
        let mut e = Engagement::new();
        e.start(T0, true);
        e.scrolled(100, 100);
        assert!(e.report(T0 + 9_000.0).is_some());
        e.start(T0 + 9_000.0, true);
        assert_eq!(parsed(e.report(T0 + 9_200.0)), (200, 0));
    }
}
