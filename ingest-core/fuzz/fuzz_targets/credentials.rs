#![no_main]
// Properties: ingest_core::fuzzing::credentials, and here, with a real
// WHATWG URL parser, that a redirect `redirect_allowed` lets through goes
// to the allowed host (or below it) over http(s) with no user info.
use ingest_core::auth::redirect_allowed;
use ingest_core::fuzzing::{credentials, REDIRECT_HOST};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    credentials(data);
    let text = String::from_utf8_lossy(data);
    if redirect_allowed(&text, &[REDIRECT_HOST.to_owned()]) {
        let url = url::Url::parse(&text).unwrap_or_else(|e| panic!("allowed {text:?}, not a URL: {e}"));
        assert!(matches!(url.scheme(), "http" | "https"), "{text:?}");
        assert!(url.username().is_empty() && url.password().is_none(), "{text:?}");
        let host = url.host_str().unwrap_or("");
        let host = host.strip_suffix('.').unwrap_or(host);
        let below = host
            .strip_suffix(REDIRECT_HOST)
            .is_some_and(|head| head.is_empty() || head.ends_with('.'));
        assert!(below, "{text:?} goes to {host}");
    }
});
