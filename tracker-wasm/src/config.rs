//! Settings, from the script tag's `data-` attributes or the ESM `init`
//! options, by attribute name without `data-` (`cookie-name`).

use crate::identity::{Consent, COOKIE_MAX_DAYS};
use crate::outbound::Extras;
use crate::text;
use alloc::string::String;

/// The device cookie's name unless `data-cookie-name` says otherwise.
pub const DEFAULT_COOKIE_NAME: &str = "et_id";
/// The path of the ingestion endpoint below an API base URL.
pub const COLLECT_PATH: &str = "collect";
/// Characters in a cookie name or domain we accept from the page.
const MAX_COOKIE_NAME_CHARS: usize = 64;
const MAX_DOMAIN_CHARS: usize = 253;

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The project's public token (`data-token`).
    pub token: String,
    /// `data-api` as an absolute URL (the loader resolves it against the
    /// page): an API base ending in `/`, or the full endpoint.
    pub api: String,
    /// The directory of the tracker script's URL (the loader resolves it);
    /// the default endpoint sits there.
    pub base: String,
    /// `data-consent`: the mode until the site says otherwise; without it,
    /// `denied` (no cookie, no storage: the server's cookieless hash).
    pub consent: Consent,
    /// `data-outbound`: links that count as outbound besides other hosts.
    pub extras: Extras,
    /// `data-spa="hash"`: fragment changes are pageviews too.
    pub hash: bool,
    /// `data-cookie-name`; empty for [`DEFAULT_COOKIE_NAME`].
    pub cookie_name: String,
    /// `data-cookie-domain`, e.g. `example.com` to share across subdomains.
    pub cookie_domain: String,
    /// `data-cookie-days`: the device cookie's lifetime, 1 to
    /// [`COOKIE_MAX_DAYS`] (larger values are capped).
    pub cookie_days: u64,
    /// `data-respect-dnt`: no events at all under Do-Not-Track or GPC.
    pub respect_dnt: bool,
}

impl Config {
    pub const fn new() -> Config {
        Config {
            token: String::new(),
            api: String::new(),
            base: String::new(),
            consent: Consent::Denied,
            extras: Extras::NONE,
            hash: false,
            cookie_name: String::new(),
            cookie_domain: String::new(),
            cookie_days: COOKIE_MAX_DAYS,
            respect_dnt: false,
        }
    }

    /// The device cookie's name: `data-cookie-name` or the default.
    pub fn cookie_name(&self) -> &str {
        if self.cookie_name.is_empty() {
            DEFAULT_COOKIE_NAME
        } else {
            &self.cookie_name
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config::new()
    }
}

/// A boolean attribute: present means on, unless it says otherwise.
fn switch(value: &str) -> bool {
    !matches!(value, "false" | "0" | "no" | "off")
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

/// A whole number of at most 12 ASCII digits (no sign, no spaces).
pub fn whole(text: &str) -> Option<u64> {
    let mut n = 0u64;
    for b in text.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(b - b'0');
    }
    (!text.is_empty() && text.len() <= 12).then_some(n)
}

/// The settings by number: `js/core.js` passes a `data-` attribute's name
/// (without `data-`) as its index in this list, which it keeps in the same
/// order. `base` is the loader's own: the directory of the script's URL.
pub const KEYS: [&str; 10] = [
    "token",
    "api",
    "base",
    "consent",
    "outbound",
    "spa",
    "cookie-name",
    "cookie-domain",
    "respect-dnt",
    "cookie-days",
];

/// A setting's number by its name (tests and docs; the loader has its own
/// copy of [`KEYS`]).
#[cfg(test)]
pub fn key(name: &str) -> u32 {
    KEYS.iter().position(|k| *k == name).map_or(99, |i| i as u32)
}

impl Config {
    /// Applies setting number `key` (see [`KEYS`]) to a value the loader
    /// trimmed. Unknown keys and invalid values are ignored, so a typo
    /// leaves the default in place.
    pub fn set(&mut self, key: u32, value: &str) {
        match key {
            0 => self.token = value.into(),
            1 => self.api = value.into(),
            2 => self.base = value.into(),
            3 => self.consent = Consent::parse(value).unwrap_or(self.consent),
            4 => self.extras = Extras::parse(value),
            5 => self.hash = text::words(value).any(|word| word == "hash"),
            6 if is_plain(value, b'_', MAX_COOKIE_NAME_CHARS) => self.cookie_name = value.into(),
            7 => {
                let domain = value.strip_prefix(".").unwrap_or(value);
                if is_plain(domain, b'.', MAX_DOMAIN_CHARS) {
                    self.cookie_domain = domain.into();
                }
            }
            8 => self.respect_dnt = switch(value),
            9 => {
                if let Some(days) = whole(value).filter(|d| *d > 0) {
                    self.cookie_days = days.min(COOKIE_MAX_DAYS);
                }
            }
            _ => {}
        }
    }

    /// Where batches go: `data-api` if it names an endpoint, `data-api` +
    /// `collect` if it ends in `/` (a base, e.g. a first-party proxy path),
    /// otherwise `collect` beside the script. Empty when nothing is usable.
    pub fn endpoint(&self) -> String {
        let base = match self.api.as_str() {
            "" => &self.base,
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

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut c = Config::default();
        for (k, v) in pairs {
            c.set(KEYS.iter().position(|key| key == k).map_or(99, |i| i as u32), v);
        }
        c
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn attributes_and_switches() {
        let a = config(&[
            ("cookie-name", "sid"),
            ("cookie-domain", ".example.com"),
            ("respect-dnt", ""),
        ]);
        let b = config(&[
            ("cookie-name", "sid"),
            ("cookie-domain", "example.com"),
            ("respect-dnt", "true"),
        ]);
        assert_eq!(a, b);
        assert_eq!(a.cookie_name(), "sid");
        assert_eq!(a.cookie_domain, "example.com");
        assert!(a.respect_dnt);
        assert!(!config(&[("respect-dnt", "false")]).respect_dnt);
        assert!(!config(&[("respect-dnt-extra", "")]).respect_dnt);
        assert!(
            !config(&[("respectDnt", "")]).respect_dnt,
            "the ESM entry spells keys as attributes"
        );
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn defaults_and_rejected_values() {
        let c = config(&[
            ("cookie-name", "bad name;"),
            ("cookie-domain", "evil.test; Path=/x"),
            ("consent", "maybe"),
        ]);
        assert_eq!(c.cookie_name(), DEFAULT_COOKIE_NAME);
        assert_eq!(c.cookie_domain, "");
        assert_eq!(c.consent, Consent::Denied, "private by default");
        assert_eq!(config(&[("consent", "pending")]).consent, Consent::Pending);
        assert_eq!(config(&[("consent", "granted")]).consent, Consent::Granted);
        // The loader trims values; the words themselves are exact.
        assert_eq!(config(&[("consent", "Granted")]).consent, Consent::Denied);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn spa_and_outbound_words() {
        assert!(config(&[("spa", "hash")]).hash);
        assert!(config(&[("spa", "history, hash")]).hash);
        assert!(!config(&[("spa", "hashes")]).hash);
        let c = config(&[("outbound", "downloads mailto")]);
        assert!(c.extras.downloads && c.extras.mailto && !c.extras.tel);
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
