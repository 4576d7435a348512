//! Identity under consent: random ids, the first-party device cookie, the
//! user id from `identify`, and the storage keys the tracker owns.
//!
//! - `Granted`: a device id in a cookie; the user id and unsent events may
//!   be kept in localStorage.
//! - `Denied` (the default, without `data-consent`): no cookie and no
//!   storage; events carry no ids and the server gives them its cookieless
//!   daily visitor hash.
//! - `Pending`: nothing is sent, and events wait in memory.
//!
//! In every mode the opt-out flag is read, and written when the visitor
//! opts out or back in: keeping the visitor's own refusal is what it is for.

use crate::config::Config;
use crate::host::{Host, Read};
use crate::json::write_u64;
use crate::text;
use alloc::string::String;

/// Days the device cookie lives by default, and at most (`data-cookie-days`
/// may ask for fewer): 13 months of 30 days, so within the 13 months that
/// audience-measurement exemptions allow whatever the day it is set (any 13
/// calendar months have at least 393 days), and below Chrome's 400-day cap.
pub const COOKIE_MAX_DAYS: u32 = 390;
const DAY_SECONDS: u32 = 24 * 60 * 60;
/// localStorage: the id given to `identify`.
pub const USER_KEY: &str = "et_uid";
/// localStorage: "1" after `optout`.
pub const OPTOUT_KEY: &str = "et_optout";
/// Characters in a user id (the server's `MAX_ID_CHARS`).
pub const MAX_USER_ID_CHARS: usize = 255;
/// Characters of an id read back from the cookie; longer means not ours.
const MAX_DEVICE_ID_CHARS: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consent {
    Granted,
    Denied,
    Pending,
}

impl Consent {
    /// The mode's word, exactly (the loader trims what the page gives).
    pub fn parse(text: &str) -> Option<Consent> {
        match text {
            "granted" => Some(Consent::Granted),
            "denied" => Some(Consent::Denied),
            "pending" => Some(Consent::Pending),
            _ => None,
        }
    }
}

/// 128 random bits as 32 lower-case hex characters: device ids and
/// insert_ids (the server accepts `[A-Za-z0-9-]{1,36}`).
pub fn random_id(host: &impl Host) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut id = [0u8; 32];
    let mut word = 0;
    for (i, digit) in id.iter_mut().enumerate() {
        if i % 8 == 0 {
            word = host.random();
        }
        *digit = HEX[(word & 15) as usize];
        word >>= 4;
    }
    // SAFETY: hex digits are ASCII. (Bytes, not `String::push`: a char's
    // UTF-8 encoding is code the module does not need.)
    String::from(unsafe { core::str::from_utf8_unchecked(&id) })
}

/// Whether a cookie value looks like an id we wrote.
pub fn is_device_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_DEVICE_ID_CHARS && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The value of cookie `name` in a `document.cookie` string, if it is an id.
pub fn cookie_value<'a>(cookies: &'a str, name: &str) -> Option<&'a str> {
    // document.cookie joins its pairs with "; ".
    text::split(cookies, b';')
        .map(|pair| pair.strip_prefix(" ").unwrap_or(pair))
        .find(|pair| text::before(pair, b'=') == name)
        .map(|pair| text::after(pair, b'='))
        .filter(|value| is_device_id(value))
}

/// The `document.cookie` assignment for the device cookie. `max_age` 0
/// deletes it (with the same path and domain it was set with).
pub fn cookie_string(name: &str, value: &str, max_age: u64, secure: bool, domain: &str) -> String {
    let mut c = String::with_capacity(120);
    crate::text::add(&mut c, name);
    crate::text::add(&mut c, "=");
    crate::text::add(&mut c, value);
    crate::text::add(&mut c, "; Max-Age=");
    write_u64(&mut c, max_age);
    crate::text::add(&mut c, "; Path=/; SameSite=Lax");
    if !domain.is_empty() {
        crate::text::add(&mut c, "; Domain=");
        crate::text::add(&mut c, domain);
    }
    if secure {
        crate::text::add(&mut c, "; Secure");
    }
    c
}

/// A usable user id: not empty (the loader trims it) and not longer than
/// the server allows.
pub fn is_user_id(id: &str) -> bool {
    !id.is_empty() && text::chars(id) <= MAX_USER_ID_CHARS
}

/// The device id from the cookie, or a new one; either way the cookie is
/// (re)written so that it lives its days from the last visit. Call only
/// with consent.
pub fn device_id(host: &impl Host, cfg: &Config) -> String {
    let cookies = host.read(Read::Cookie);
    let id = match cookie_value(&cookies, cfg.cookie_name()) {
        Some(id) => String::from(id),
        None => random_id(host),
    };
    write_device_cookie(host, cfg, &id);
    id
}

/// Writes (or with an empty `id`, deletes) the device cookie.
pub fn write_device_cookie(host: &impl Host, cfg: &Config, id: &str) {
    let secure = host.read(Read::Href).starts_with("https:");
    let max_age = if id.is_empty() {
        0
    } else {
        u64::from(cfg.cookie_days() * DAY_SECONDS)
    };
    host.set_cookie(&cookie_string(
        cfg.cookie_name(),
        id,
        max_age,
        secure,
        cfg.cookie_domain(),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::Fake;
    use crate::host::{js_host, JsHost};
    use wasm_bindgen_test::wasm_bindgen_test;

    #[wasm_bindgen_test(unsupported = test)]
    fn consent_words() {
        assert_eq!(Consent::parse("granted"), Some(Consent::Granted));
        assert_eq!(Consent::parse("denied"), Some(Consent::Denied));
        assert_eq!(Consent::parse("pending"), Some(Consent::Pending));
        assert_eq!(Consent::parse("Granted"), None, "the words are exact");
        assert_eq!(Consent::parse("yes"), None);
        assert_eq!(Consent::parse(""), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn cookie_attributes() {
        let c = cookie_string(
            "et_id",
            "abc",
            u64::from(COOKIE_MAX_DAYS * DAY_SECONDS),
            true,
            "example.com",
        );
        assert_eq!(
            c,
            "et_id=abc; Max-Age=33696000; Path=/; SameSite=Lax; Domain=example.com; Secure"
        );
        assert_eq!(
            cookie_string("x", "1", 0, false, ""),
            "x=1; Max-Age=0; Path=/; SameSite=Lax"
        );
        // 13 calendar months are at least 365 + 28 days.
        const { assert!(COOKIE_MAX_DAYS <= 365 + 28) };
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn reads_only_our_cookie_and_only_ids() {
        let jar = "a=1; et_id_old=zzz; et_id=0123abcd; b=2";
        assert_eq!(cookie_value(jar, "et_id"), Some("0123abcd"));
        assert_eq!(cookie_value("et_id=<script>", "et_id"), None);
        assert_eq!(cookie_value("et_id=", "et_id"), None);
        assert_eq!(cookie_value("xet_id=abc", "et_id"), None);
        assert_eq!(cookie_value("", "et_id"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn random_ids_are_32_hex() {
        let host = Fake::new();
        let a = random_id(&host);
        let b = random_id(&host);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_ne!(a, b);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn user_ids() {
        assert!(is_user_id("user-42"));
        assert!(!is_user_id(""));
        assert!(is_user_id(&"é".repeat(MAX_USER_ID_CHARS)));
        assert!(!is_user_id(&"é".repeat(MAX_USER_ID_CHARS + 1)));
    }

    fn named(name: &str) -> Config {
        let mut cfg = Config::new();
        cfg.set(&format!("cookie-name={name}"));
        cfg
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn device_cookie_is_kept_or_made_and_refreshed() {
        let host = Fake::new();
        host.set_read(Read::Href, "https://site.test/");
        let cfg = Config::new();
        let first = device_id(&host, &cfg);
        assert_eq!(host.cookie("et_id").as_deref(), Some(first.as_str()));
        assert!(host.last_cookie().ends_with("; Secure"));
        assert!(host.last_cookie().contains("; Max-Age=33696000;"), "390 days");
        let again = device_id(&host, &cfg);
        assert_eq!(again, first);
        assert_eq!(host.cookie_writes(), 2, "the cookie is refreshed on each visit");
        write_device_cookie(&host, &cfg, "");
        assert_eq!(host.cookie("et_id"), None);
    }

    #[wasm_bindgen_test(unsupported = test)]
    fn cookie_days_set_the_max_age() {
        let host = Fake::new();
        let mut cfg = Config::new();
        cfg.set("cookie-days=30");
        write_device_cookie(&host, &cfg, "abc");
        assert!(
            host.last_cookie().contains("; Max-Age=2592000;"),
            "{}",
            host.last_cookie()
        );
    }

    // In Chromium: the cookie the browser actually keeps, read back with the
    // Cookie Store API, which reports the attributes document.cookie hides.
    #[wasm_bindgen_test]
    async fn browser_keeps_cookie_with_our_attributes() {
        use js_sys::{Function, Promise, Reflect};
        use wasm_bindgen::{JsCast, JsValue};
        let _ = js_host();
        let cfg = named("et_test");
        let id = device_id(&JsHost, &cfg);
        assert!(is_device_id(&id) && id.len() == 32);
        assert_eq!(cookie_value(&JsHost.read(Read::Cookie), "et_test"), Some(id.as_str()));
        let get = |target: &JsValue, key: &str| Reflect::get(target, &key.into()).unwrap_or(JsValue::UNDEFINED);
        let store = get(&js_sys::global(), "cookieStore");
        let lookup: Function = get(&store, "get").unchecked_into();
        let found: Promise = lookup
            .call1(&store, &"et_test".into())
            .unwrap_or(JsValue::NULL)
            .unchecked_into();
        let cookie = wasm_bindgen_futures::JsFuture::from(found)
            .await
            .unwrap_or(JsValue::NULL);
        assert_eq!(get(&cookie, "path").as_string().as_deref(), Some("/"));
        assert_eq!(get(&cookie, "sameSite").as_string().as_deref(), Some("lax"));
        let expires = get(&cookie, "expires").as_f64().unwrap_or(0.0);
        let days = (expires - JsHost.now()) / 86_400_000.0;
        assert!((389.0..=390.0).contains(&days), "expires in {days} days");
        // The browser refuses a Domain the page is not on.
        JsHost.set_cookie(&cookie_string("et_other", "x1", 60, false, "example.org"));
        assert_eq!(cookie_value(&JsHost.read(Read::Cookie), "et_other"), None);
        write_device_cookie(&JsHost, &cfg, "");
        assert_eq!(cookie_value(&JsHost.read(Read::Cookie), "et_test"), None);
    }
}
