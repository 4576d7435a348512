//! Which page events are pageviews. The loader reports the events (load,
//! history changes, hash changes, back/forward-cache restores, prerender
//! activation); this module decides:
//!
//! - the same URL twice in a row is one pageview (a `replaceState` that only
//!   changes state, a `popstate` to a fragment);
//! - the fragment is part of the URL only with `data-spa="hash"`;
//! - a restore from the back/forward cache is a new pageview even though
//!   the URL is the one last counted;
//! - a prerendered page counts when it is shown, not before;
//! - in manual mode (`data-manual`) none of them is; the page says when.

use crate::text;
use alloc::string::String;

/// Page events by the code the loader passes to `page(kind)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// The tracker started on this page.
    Load,
    /// `history.pushState`, `replaceState` or `popstate`.
    History,
    /// `hashchange`.
    Hash,
    /// `pageshow` with `persisted`: back from the back/forward cache.
    Restore,
    /// `prerenderingchange`: a prerendered page was shown.
    Activate,
    /// `pagehide`, or `visibilitychange` to hidden: not a pageview, but
    /// the moment to send everything.
    Hide,
    /// `visibilitychange` to visible.
    Show,
    /// `scroll`: the viewport moved.
    Scroll,
}

impl Nav {
    pub fn from_code(code: u32) -> Option<Nav> {
        Some(match code {
            0 => Nav::Load,
            1 => Nav::History,
            2 => Nav::Hash,
            3 => Nav::Restore,
            4 => Nav::Activate,
            5 => Nav::Hide,
            6 => Nav::Show,
            7 => Nav::Scroll,
            _ => return None,
        })
    }
}

#[derive(Debug, Default)]
pub struct Pages {
    /// The URL last counted, as reported.
    pub url: String,
    /// Fragments count (`data-spa="hash"`).
    hash: bool,
    /// The first pageview waits for a prerendered page to be shown.
    held: bool,
}

impl Pages {
    pub const fn new(hash: bool) -> Pages {
        Pages {
            url: String::new(),
            hash,
            held: false,
        }
    }

    /// The URL as reported: without the fragment unless fragments count.
    pub fn report_url<'a>(&self, href: &'a str) -> &'a str {
        if self.hash {
            href
        } else {
            text::before(href, b'#')
        }
    }

    /// The URL to count when `nav` at `href` is a pageview (the caller then
    /// makes it `url`). `prerendering` is the page's state now.
    pub fn visit(&mut self, nav: Nav, href: &str, prerendering: bool) -> Option<String> {
        let again = match nav {
            Nav::Load if prerendering => {
                self.held = true;
                return None;
            }
            Nav::Activate if self.held => {
                self.held = false;
                false
            }
            // Until a prerendered page is shown, the activation counts
            // whatever URL it has by then.
            _ if self.held => return None,
            Nav::Load | Nav::History => false,
            Nav::Hash if self.hash => false,
            Nav::Restore => true,
            Nav::Hash | Nav::Activate | Nav::Hide | Nav::Show | Nav::Scroll => return None,
        };
        let url = self.report_url(href);
        (!url.is_empty() && (again || url != self.url)).then(|| String::from(url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    /// The URL counted, or None; as the tracker does, a counted URL becomes
    /// the last one.
    fn seen(p: &mut Pages, nav: Nav, href: &str, prerendering: bool) -> Option<String> {
        let url = p.visit(nav, href, prerendering);
        if let Some(u) = &url {
            p.url = u.clone();
        }
        url
    }

    fn counts(p: &mut Pages, nav: Nav, href: &str, prerendering: bool) -> bool {
        seen(p, nav, href, prerendering).is_some()
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn codes_round_trip() {
        assert_eq!(Nav::from_code(0), Some(Nav::Load));
        assert_eq!(Nav::from_code(5), Some(Nav::Hide));
        assert_eq!(Nav::from_code(7), Some(Nav::Scroll));
        assert_eq!(Nav::from_code(8), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn load_then_spa_navigations_same_url_once() {
        let mut p = Pages::new(false);
        assert!(counts(&mut p, Nav::Load, "https://a.test/", false));
        assert_eq!(p.url, "https://a.test/");
        // replaceState with the same URL: not a pageview.
        assert!(!counts(&mut p, Nav::History, "https://a.test/", false));
        assert_eq!(
            seen(&mut p, Nav::History, "https://a.test/pricing?plan=pro", false).as_deref(),
            Some("https://a.test/pricing?plan=pro")
        );
        assert!(!counts(&mut p, Nav::History, "https://a.test/pricing?plan=pro", false));
        // Back: popstate to the first URL is a pageview again.
        assert_eq!(
            seen(&mut p, Nav::History, "https://a.test/", false).as_deref(),
            Some("https://a.test/")
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn fragments_only_in_hash_mode() {
        let mut plain = Pages::new(false);
        assert_eq!(
            seen(&mut plain, Nav::Load, "https://a.test/#top", false).as_deref(),
            Some("https://a.test/")
        );
        assert!(!counts(&mut plain, Nav::History, "https://a.test/#faq", false));
        assert!(!counts(&mut plain, Nav::Hash, "https://a.test/#faq", false));

        let mut hash = Pages::new(true);
        assert_eq!(
            seen(&mut hash, Nav::Load, "https://a.test/#/", false).as_deref(),
            Some("https://a.test/#/")
        );
        assert_eq!(
            seen(&mut hash, Nav::Hash, "https://a.test/#/users", false).as_deref(),
            Some("https://a.test/#/users")
        );
        // popstate and hashchange both fire for one fragment navigation.
        assert!(!counts(&mut hash, Nav::History, "https://a.test/#/users", false));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn back_forward_cache_restore_counts_again() {
        let mut p = Pages::new(false);
        assert!(counts(&mut p, Nav::Load, "https://a.test/x", false));
        assert!(counts(&mut p, Nav::Restore, "https://a.test/x", false));
        assert_eq!(p.url, "https://a.test/x");
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn prerendered_page_counts_once_when_shown() {
        let mut p = Pages::new(false);
        assert!(!counts(&mut p, Nav::Load, "https://a.test/", true));
        assert!(!counts(&mut p, Nav::History, "https://a.test/next", true));
        assert_eq!(
            seen(&mut p, Nav::Activate, "https://a.test/next", false).as_deref(),
            Some("https://a.test/next")
        );
        assert!(!counts(&mut p, Nav::Activate, "https://a.test/next", false));
        // A page that was never prerendered ignores activation.
        let mut q = Pages::new(false);
        assert!(counts(&mut q, Nav::Load, "https://a.test/", false));
        assert!(!counts(&mut q, Nav::Activate, "https://a.test/other", false));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn hide_and_empty_urls_are_not_pageviews() {
        let mut p = Pages::new(false);
        assert!(!counts(&mut p, Nav::Hide, "https://a.test/", false));
        assert!(!counts(&mut p, Nav::Show, "https://a.test/", false));
        assert!(!counts(&mut p, Nav::Scroll, "https://a.test/", false));
        assert!(!counts(&mut p, Nav::Load, "", false));
    }
}
