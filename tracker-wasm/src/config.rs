//! Settings, from the script tag's `data-` attributes or the ESM `init`
//! options, by attribute name without `data-` (`cookie-name`). The loader
//! hands them over as one text, a `name=value` line each (values trimmed,
//! `api` resolved against the page, and `base`, the directory of the
//! script's URL, first); each setting is read where it is used. One text
//! and one lookup cost the module far less than a field and a parser per
//! setting, and the loader needs no list of the names.

use crate::identity::{Consent, COOKIE_MAX_DAYS};
use crate::text::{self, after, before, split, words};
use alloc::string::String;

/// The device cookie's name unless `data-cookie-name` says otherwise.
pub const DEFAULT_COOKIE_NAME: &str = "et_id";
/// The path of the ingestion endpoint below an API base URL.
pub const COLLECT_PATH: &str = "collect";
/// Characters in a cookie name or domain we accept from the page.
const MAX_COOKIE_NAME_CHARS: usize = 64;
const MAX_DOMAIN_CHARS: usize = 253;

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Config {
    /// The settings' lines.
    raw: String,
}

/// A boolean attribute: present means on, unless it says `false`.
fn switch(value: &str) -> bool {
    value != "false"
}

/// 1 to `max` bytes of ASCII letters, digits and `extra`: what we accept as
/// a cookie name or domain (nothing that could add cookie attributes).
fn is_plain(value: &str, extra: u8, max: usize) -> bool {
    !value.is_empty()
        && value.len() <= max
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == extra)
}

/// A whole number of 1 to 9 ASCII digits (no sign, no spaces).
pub fn whole(text: &str) -> Option<u32> {
    let mut n = 0u32;
    for b in text.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.wrapping_mul(10).wrapping_add(u32::from(b - b'0'));
    }
    (!text.is_empty() && text.len() <= 9).then_some(n)
}

impl Config {
    pub const fn new() -> Config {
        Config { raw: String::new() }
    }

    /// Takes the loader's settings text (more lines add to it).
    pub fn set(&mut self, lines: &str) {
        text::add(&mut self.raw, "\n");
        text::add(&mut self.raw, lines);
    }

    /// The value of setting `name`, if the page gave it.
    pub fn get(&self, name: &str) -> Option<&str> {
        split(&self.raw, b'\n')
            .find(|line| before(line, b'=') == name)
            .map(|line| after(line, b'='))
    }

    /// The value of `name`, or "".
    pub fn text(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// A boolean attribute (`data-local`): present and not "false".
    pub fn on(&self, name: &str) -> bool {
        self.get(name).is_some_and(switch)
    }

    /// Whether the words of `name` (spaces or commas) include `word`.
    pub fn has(&self, name: &str, word: &str) -> bool {
        words(self.text(name)).any(|w| w == word)
    }

    /// `data-consent`: the mode until the site says otherwise; without it
    /// (or with a word we do not know), `denied`: no cookie, no storage,
    /// the server's cookieless hash.
    pub fn consent(&self) -> Consent {
        self.get("consent").and_then(Consent::parse).unwrap_or(Consent::Denied)
    }

    /// The device cookie's name: `data-cookie-name` or the default.
    pub fn cookie_name(&self) -> &str {
        match self.get("cookie-name") {
            Some(name) if is_plain(name, b'_', MAX_COOKIE_NAME_CHARS) => name,
            _ => DEFAULT_COOKIE_NAME,
        }
    }

    /// `data-cookie-domain`, e.g. `example.com` to share the cookie across
    /// subdomains (a leading dot is dropped); "" when absent or unusable.
    pub fn cookie_domain(&self) -> &str {
        let domain = self.text("cookie-domain");
        let domain = domain.strip_prefix(".").unwrap_or(domain);
        if is_plain(domain, b'.', MAX_DOMAIN_CHARS) {
            domain
        } else {
            ""
        }
    }

    /// `data-cookie-days`: the device cookie's lifetime, 1 to
    /// [`COOKIE_MAX_DAYS`] (larger values are capped, others ignored).
    pub fn cookie_days(&self) -> u32 {
        whole(self.text("cookie-days"))
            .filter(|d| *d > 0)
            .map_or(COOKIE_MAX_DAYS, |d| d.min(COOKIE_MAX_DAYS))
    }

    /// Where batches go: `data-api` if it names an endpoint, `data-api` +
    /// `collect` if it ends in `/` (a base, e.g. a first-party proxy path),
    /// otherwise `collect` beside the script. Empty when nothing is usable.
    pub fn endpoint(&self) -> String {
        let base = match self.text("api") {
            "" => self.text("base"),
            api if api.ends_with("/") => api,
            api => return api.into(),
        };
        if base.is_empty() {
            return String::new();
        }
        let mut endpoint = String::from(base);
        text::add(&mut endpoint, COLLECT_PATH);
        endpoint
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasm_bindgen_test::wasm_bindgen_test;

    pub fn config(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::default();
        let lines: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        c.set(&lines.join("\n"));
        c
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn lookups_by_name() {
        let c = config(&[("token", "tok"), ("api", "https://a.test/x?y=1"), ("local", "")]);
        assert_eq!(c.get("token"), Some("tok"));
        assert_eq!(c.get("api"), Some("https://a.test/x?y=1"), "values may hold '='");
        assert_eq!(c.get("local"), Some(""), "a boolean attribute is present, empty");
        assert_eq!(c.get("loc"), None);
        assert_eq!(c.get("tok"), None);
        assert_eq!(c.text("nothing"), "");
        assert!(c.on("local"));
        assert!(!c.on("manual"));
        assert!(!config(&[("local", "false")]).on("local"));
        assert!(config(&[("local", "1")]).on("local"));
        assert!(config(&[("local", "true")]).on("local"));
        assert!(
            !config(&[("respectDnt", "")]).on("respect-dnt"),
            "the ESM entry spells keys as attributes"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn cookie_settings_and_rejected_values() {
        let a = config(&[("cookie-name", "sid"), ("cookie-domain", ".example.com")]);
        assert_eq!(a.cookie_name(), "sid");
        assert_eq!(a.cookie_domain(), "example.com");
        assert_eq!(
            config(&[("cookie-domain", "example.com")]).cookie_domain(),
            "example.com"
        );
        let c = config(&[
            ("cookie-name", "bad name;"),
            ("cookie-domain", "evil.test; Path=/x"),
            ("consent", "maybe"),
        ]);
        assert_eq!(c.cookie_name(), DEFAULT_COOKIE_NAME);
        assert_eq!(c.cookie_domain(), "");
        assert_eq!(c.consent(), Consent::Denied, "private by default");
        assert_eq!(Config::new().consent(), Consent::Denied);
        assert_eq!(config(&[("consent", "pending")]).consent(), Consent::Pending);
        assert_eq!(config(&[("consent", "granted")]).consent(), Consent::Granted);
        // The loader trims values; the words themselves are exact.
        assert_eq!(config(&[("consent", "Granted")]).consent(), Consent::Denied);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn cookie_days_within_13_months() {
        let days = |value: &str| config(&[("cookie-days", value)]).cookie_days();
        assert_eq!(Config::new().cookie_days(), COOKIE_MAX_DAYS);
        assert_eq!(days("30"), 30);
        assert_eq!(days("1"), 1);
        assert_eq!(days("390"), COOKIE_MAX_DAYS);
        assert_eq!(days("391"), COOKIE_MAX_DAYS, "capped, never longer");
        assert_eq!(days("999999999"), COOKIE_MAX_DAYS);
        for ignored in ["0", "", "-5", "30d", "3.5", "1000000000"] {
            assert_eq!(days(ignored), COOKIE_MAX_DAYS, "{ignored:?}");
        }
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn words_of_a_setting() {
        assert!(config(&[("spa", "hash")]).has("spa", "hash"));
        assert!(config(&[("spa", "history, hash")]).has("spa", "hash"));
        assert!(!config(&[("spa", "hashes")]).has("spa", "hash"));
        let c = config(&[("outbound", "downloads mailto")]);
        assert!(c.has("outbound", "mailto") && !c.has("outbound", "tel"));
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn endpoint_from_api_base_full_url_or_script() {
        let src = ("base", "https://cdn.test/js/");
        assert_eq!(config(&[src]).endpoint(), "https://cdn.test/js/collect");
        assert_eq!(
            config(&[src, ("api", "https://site.test/stats/")]).endpoint(),
            "https://site.test/stats/collect"
        );
        assert_eq!(
            config(&[src, ("api", "https://site.test/")]).endpoint(),
            "https://site.test/collect"
        );
        assert_eq!(
            config(&[src, ("api", "https://site.test/p/event")]).endpoint(),
            "https://site.test/p/event"
        );
        assert_eq!(config(&[("base", "")]).endpoint(), "");
    }
}
