//! Automation that must not be counted, found by cheap checks before
//! anything is sent. The server drops known crawlers by user agent as well;
//! these are the signals only the page can see.
//!
//! [`classify`] is a pure function of the [`Signals`], so both outcomes are
//! testable even under chromedriver, where `navigator.webdriver` is true.

use crate::host::{flag, Host, Read};
use crate::text::split;
use alloc::string::String;

/// Why the page is not counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotReason {
    /// `navigator.webdriver` is set (WebDriver, Puppeteer, Playwright).
    Webdriver,
    /// The user agent, or a `navigator.userAgentData` brand, names a
    /// headless or scripted browser (`HeadlessChrome`, …).
    HeadlessAgent,
    /// A global that automation tools leave behind (`callPhantom`, …).
    AutomationGlobal,
    /// The page is prerendered and not shown yet: events wait, and are
    /// never sent if it is never activated.
    Prerendered,
}

impl BotReason {
    /// Prerendering ends when the page is shown; the others last.
    pub fn is_final(self) -> bool {
        self != BotReason::Prerendered
    }
}

/// Words in a (lower-cased) user agent or brand of headless or scripted
/// browsers, comma separated (one string is smaller in the module than a
/// slice of strings).
pub const HEADLESS_AGENTS: &str = "headless,phantomjs,lighthouse";

/// Globals (on `window` or `document`) that automation tools set; a
/// trailing `*` matches any rest. Exact: PhantomJS, Nightmare, Cypress,
/// ChromeDriver's `domAutomation`, Selenium IDE. Prefixes: Selenium's and
/// ChromeDriver's markers (`__selenium_unwrapped`, `__webdriver_evaluate`,
/// `$cdc_…`), Playwright's (`__playwright__binding__…`, `__pwInitScripts`)
/// and Puppeteer's.
pub const AUTOMATION_GLOBALS: &str = "_phantom,callPhantom,__nightmare,Cypress,domAutomation,\
domAutomationController,_Selenium_IDE_Recorder,_selenium,calledSelenium,__selenium*,__webdriver*,__driver_*,\
__fxdriver*,$cdc_*,$wdc_*,cdc_*,__playwright*,__pw*,__puppeteer*";

/// Whether `name` matches `pattern` (exactly, or by prefix with a `*`).
fn matches(name: &str, pattern: &str) -> bool {
    match pattern.strip_suffix("*") {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// What the page shows about its browser.
#[derive(Debug, Clone, Default)]
pub struct Signals {
    pub webdriver: bool,
    /// The user agent and brand names, lower-cased ([`Read::Agent`]).
    pub agent: String,
    /// Own enumerable property names of `window` and `document`, comma
    /// separated.
    pub globals: String,
    pub prerendering: bool,
}

impl Signals {
    pub fn read(host: &impl Host) -> Signals {
        Signals {
            webdriver: flag(host, Read::Webdriver),
            agent: host.read(Read::Agent),
            globals: host.read(Read::Globals),
            prerendering: flag(host, Read::Prerendering),
        }
    }
}

/// Whether `haystack` contains `needle`.
fn contains(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    !n.is_empty() && h.windows(n.len()).any(|w| w == n)
}

pub fn classify(s: &Signals) -> Option<BotReason> {
    if s.webdriver {
        return Some(BotReason::Webdriver);
    }
    if split(HEADLESS_AGENTS, b',').any(|word| contains(&s.agent, word)) {
        return Some(BotReason::HeadlessAgent);
    }
    if split(&s.globals, b',').any(|name| split(AUTOMATION_GLOBALS, b',').any(|pattern| matches(name, pattern))) {
        return Some(BotReason::AutomationGlobal);
    }
    if s.prerendering {
        return Some(BotReason::Prerendered);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::js_host;
    use wasm_bindgen_test::wasm_bindgen_test;

    // As the host gives it: user agent and brands, lower-cased.
    const CHROME: &str = "mozilla/5.0 (x11; linux x86_64) applewebkit/537.36 (khtml, like gecko) chrome/130.0.0.0 \
safari/537.36,chromium,google chrome,not?a_brand";

    fn human() -> Signals {
        Signals {
            agent: CHROME.into(),
            globals: "dataLayer,gtag,jQuery,$,_,__NEXT_DATA__,__REACT_DEVTOOLS_GLOBAL_HOOK__".into(),
            ..Signals::default()
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn ordinary_browsers_pass() {
        assert_eq!(classify(&human()), None);
        assert_eq!(
            classify(&Signals {
                agent: "mozilla/5.0 (macintosh; intel mac os x 14_0) version/17.0 safari/605.1.15".into(),
                ..human()
            }),
            None,
            "no brands (Safari, Firefox)"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn each_signal_alone_is_enough() {
        assert_eq!(
            classify(&Signals {
                webdriver: true,
                ..human()
            }),
            Some(BotReason::Webdriver)
        );
        let ua = CHROME.replace("chrome/", "headlesschrome/");
        assert_eq!(
            classify(&Signals { agent: ua, ..human() }),
            Some(BotReason::HeadlessAgent)
        );
        let phantom =
            "mozilla/5.0 (unknown; linux x86_64) applewebkit/538.1 (khtml, like gecko) phantomjs/2.1.1 safari/538.1";
        assert_eq!(
            classify(&Signals {
                agent: phantom.into(),
                ..human()
            }),
            Some(BotReason::HeadlessAgent)
        );
        let agent = CHROME.replace("google chrome", "headlesschrome");
        assert_eq!(
            classify(&Signals { agent, ..human() }),
            Some(BotReason::HeadlessAgent),
            "a brand"
        );
        assert_eq!(
            classify(&Signals {
                prerendering: true,
                ..human()
            }),
            Some(BotReason::Prerendered)
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn automation_globals_exact_and_by_prefix() {
        for name in [
            "_phantom",
            "callPhantom",
            "__nightmare",
            "Cypress",
            "__selenium_unwrapped",
            "__webdriver_evaluate",
            "__driver_evaluate",
            "$cdc_asdjflasutopfhvcZLmcfl_",
            "cdc_adoQpoasnfa76pfcZLmcfl_Array",
            "__playwright__binding__controller__",
            "__pwInitScripts",
        ] {
            let globals = format!("dataLayer,{name},gtag");
            assert_eq!(
                classify(&Signals { globals, ..human() }),
                Some(BotReason::AutomationGlobal),
                "{name}"
            );
        }
        // Near misses are ordinary page globals.
        let globals = "cypressConfig,phantom,seleniumFan,pw,playwright".into();
        assert_eq!(classify(&Signals { globals, ..human() }), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn only_prerendering_is_temporary() {
        assert!(!BotReason::Prerendered.is_final());
        assert!(BotReason::Webdriver.is_final());
        assert!(BotReason::AutomationGlobal.is_final());
    }

    // Headless Chromium under chromedriver, as the tests run: the real
    // signals say automation, through the real host.
    #[wasm_bindgen_test]
    fn real_signals_under_chromedriver() {
        let s = Signals::read(&js_host());
        assert!(s.webdriver, "chromedriver sets navigator.webdriver");
        assert!(!s.prerendering);
        assert!(s.agent.contains("mozilla/5.0"), "{}", s.agent);
        assert_eq!(s.agent, s.agent.to_lowercase());
        assert_eq!(classify(&s), Some(BotReason::Webdriver));
        // Without the flag, the other signals still give it away.
        let rest = classify(&Signals {
            webdriver: false,
            ..s.clone()
        });
        assert!(
            matches!(rest, Some(BotReason::HeadlessAgent | BotReason::AutomationGlobal)),
            "{rest:?}"
        );
    }
}
