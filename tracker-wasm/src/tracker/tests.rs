use super::*;
use crate::delivery::QUEUE_KEY;
use crate::fake::Fake;
use crate::host::{js_host, JsHost};
use serde_json::Value;
use wasm_bindgen_test::wasm_bindgen_test;

const TRACK: u32 = 0;
const IDENTIFY: u32 = 1;
const RESET: u32 = 2;
const CONSENT: u32 = 3;
const OPTOUT: u32 = 4;
const PAGEVIEW_COMMAND: u32 = 5;
const PROPS: u32 = 6;
const NOT_FOUND_COMMAND: u32 = 7;
const LOAD: u32 = 0;
const HISTORY: u32 = 1;
const HASH: u32 = 2;
const RESTORE: u32 = 3;
const ACTIVATE: u32 = 4;
const HIDE: u32 = 5;
const SHOW: u32 = 6;
const SCROLL: u32 = 7;

/// A started tracker on `host` with these settings (plus a token and the
/// script's directory).
fn tracker<H: Host>(host: H, settings: &[(&str, &str)]) -> Tracker<H> {
    let mut t = Tracker::new(host);
    let lines: Vec<String> = [("token", "tok"), ("base", "https://cdn.test/")]
        .iter()
        .chain(settings)
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    t.configure(&lines.join("\n"));
    t.start();
    t
}

/// Every event sent so far: by beacon, then by fetch.
fn sent(host: &Fake) -> Vec<Value> {
    host.bodies()
        .iter()
        .flat_map(|b| {
            let v: Value = serde_json::from_str(b).unwrap_or_else(|e| panic!("not JSON ({e}): {b}"));
            assert_eq!(v["t"], "tok");
            v["e"].as_array().cloned().unwrap_or_default()
        })
        .collect()
}

/// The last event called `name` that left (a resend carries the same one).
fn last_named(host: &Fake, name: &str) -> Value {
    sent(host)
        .into_iter()
        .rev()
        .find(|e| e["n"] == name)
        .unwrap_or_default()
}

/// The names of the events sent, but `$engagement` (its own tests look at it).
fn names(host: &Fake) -> Vec<String> {
    sent(host)
        .iter()
        .map(|e| e["n"].as_str().unwrap_or("?").to_owned())
        .filter(|n| n != ENGAGEMENT)
        .collect()
}

/// The events sent but `$engagement`.
fn plain(host: &Fake) -> Vec<Value> {
    sent(host).into_iter().filter(|e| e["n"] != ENGAGEMENT).collect()
}

#[wasm_bindgen_test(unsupported = test)]
fn granted_pageview_with_page_facts_and_device_cookie() {
    let host = Fake::new();
    host.set_read(Read::Referrer, "https://search.test/?q=x");
    let mut t = tracker(&host, &[("consent", "granted")]);
    t.page(LOAD, 0, 0);
    t.page(HIDE, 0, 0);
    let events = plain(&host);
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e["n"], "$pageview");
    assert_eq!(e["u"], "https://site.test/");
    assert_eq!(e["r"], "https://search.test/?q=x");
    assert_eq!(e["h"], "Home");
    assert_eq!(e["s"], "1280x720");
    assert_eq!(e["ts"], 1_700_000_000_000u64);
    let id = e["i"].as_str().unwrap_or("");
    assert!(id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
    let device = host.cookie("et_id").unwrap_or_default();
    assert_eq!(e["d"], device.as_str());
    assert!(e.get("id").is_none(), "no user yet");
    let posts = host.posts();
    assert_eq!(posts.len(), 1, "the pageview left at once, by fetch");
    assert_eq!(posts[0].0, "https://cdn.test/collect");
    assert!(posts[0].2, "with keepalive");
}

/// The names of the events in one body.
fn body_names(body: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(body).unwrap_or_default();
    v["e"]
        .as_array()
        .map(|e| e.iter().map(|x| x["n"].as_str().unwrap_or("?").to_owned()).collect())
        .unwrap_or_default()
}

#[wasm_bindgen_test(unsupported = test)]
fn a_pageview_leaves_at_once_and_later_events_are_batched() {
    let host = Fake::new();
    let mut t = tracker(&host, &[]);
    // A call the page queued before the module ran comes first.
    t.command(TRACK, "Queued", "", "", "");
    assert_eq!(host.bodies().len(), 0, "a custom event waits for company");
    t.page(LOAD, 0, 0);
    let posts = host.posts();
    assert_eq!(posts.len(), 1, "the pageview leaves at once, no timer");
    assert!(posts[0].2, "by keepalive fetch");
    assert_eq!(body_names(&posts[0].1), ["Queued", "$pageview"]);
    t.done(posts[0].3, 202);
    t.command(TRACK, "A", "", "", "");
    t.command(TRACK, "B", "", "", "");
    assert_eq!(host.posts().len(), 1, "later custom events wait");
    assert_eq!(host.last_wake(), Some(crate::delivery::FLUSH_DELAY_MS));
    host.advance(crate::delivery::FLUSH_DELAY_MS);
    t.tick();
    let posts = host.posts();
    assert_eq!(posts.len(), 2);
    assert_eq!(body_names(&posts[1].1), ["A", "B"], "in one batch");
}

#[wasm_bindgen_test(unsupported = test)]
fn nothing_without_token_or_endpoint() {
    let host = Fake::new();
    let mut t = Tracker::new(&host);
    t.configure("base=https://cdn.test/");
    t.start();
    t.page(LOAD, 0, 0);
    t.command(TRACK, "x", "", "", "");
    t.page(HIDE, 0, 0);
    assert_eq!(t.ignored(), Some(Ignored::NotStarted));
    assert_eq!(host.bodies().len(), 0);
    assert_eq!(host.cookie_writes(), 0);
}

/// Nothing written, and only the opt-out flag read.
fn private(host: &Fake) {
    assert_eq!(host.writes(), 0, "no cookie, no localStorage write");
    assert!(
        host.loaded().iter().all(|k| k == identity::OPTOUT_KEY),
        "{:?}",
        host.loaded()
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn private_by_default() {
    let host = Fake::new();
    let mut t = tracker(&host, &[]);
    t.page(LOAD, 0, 0);
    t.command(IDENTIFY, "user-1", "", "", "");
    t.command(TRACK, "Signup", "", "", "");
    t.page(HIDE, 0, 0);
    assert_eq!(names(&host), ["$pageview", "Signup"]);
    for e in sent(&host) {
        assert!(e.get("d").is_none() && e.get("id").is_none(), "{e}");
    }
    private(&host);
    assert_eq!(host.loaded(), [identity::OPTOUT_KEY], "one read, at start");
    // A consent banner's yes turns on the cookie identity.
    t.command(CONSENT, "granted", "", "", "");
    t.command(TRACK, "After", "", "", "");
    t.page(HIDE, 0, 0);
    let device = host.cookie("et_id").unwrap_or_default();
    assert_eq!(device.len(), 32);
    assert_eq!(last_named(&host, "After")["d"], device.as_str());
    assert!(host.last_cookie().contains("; Max-Age=33696000;"), "390 days");
}

#[wasm_bindgen_test(unsupported = test)]
fn denied_sends_no_ids_and_touches_no_storage() {
    let host = Fake::new();
    host.refuse_beacons();
    let mut t = tracker(&host, &[("consent", "denied")]);
    t.page(LOAD, 0, 0);
    t.command(IDENTIFY, "user-1", "", "", "");
    t.command(TRACK, "Signup", "{\"plan\":\"pro\"}", "", "");
    t.command(RESET, "", "", "", "");
    t.page(HIDE, 0, 0);
    // The pageview left at once; its answer lets the refused beacon's body
    // go by fetch, which fails and is kept (in memory only).
    t.done(host.posts()[0].3, 202);
    t.done(host.posts()[1].3, 503);
    let events = sent(&host);
    assert_eq!(names(&host), ["$pageview", "Signup"]);
    for e in &events {
        assert!(e.get("d").is_none() && e.get("id").is_none(), "{e}");
    }
    assert_eq!(events[1]["p"]["plan"], "pro");
    private(&host);
}

#[wasm_bindgen_test(unsupported = test)]
fn pending_waits_then_granted_sends_each_event_once_with_ids() {
    let host = Fake::new();
    let mut t = tracker(&host, &[("consent", "pending")]);
    t.page(LOAD, 0, 0);
    t.command(TRACK, "Clicked", "", "", "");
    t.page(HIDE, 0, 0);
    assert_eq!(host.bodies().len(), 0, "nothing leaves while consent is pending");
    assert_eq!(host.storage_touched(), 0);
    t.command(CONSENT, "granted", "", "", "");
    t.page(HIDE, 0, 0);
    let events = sent(&host);
    assert_eq!(names(&host), ["$pageview", "Clicked"]);
    let device = host.cookie("et_id").unwrap_or_default();
    assert!(events.iter().all(|e| e["d"] == device.as_str()));
    t.command(CONSENT, "granted", "", "", "");
    t.page(HIDE, 0, 0);
    assert_eq!(plain(&host).len(), 2, "deciding again sends nothing again");
}

#[wasm_bindgen_test(unsupported = test)]
fn pending_then_denied_sends_without_ids_and_bounds_the_wait() {
    let host = Fake::new();
    let mut t = tracker(&host, &[("consent", "pending")]);
    for i in 0..MAX_WAITING_EVENTS + 20 {
        t.command(TRACK, &format!("e{i}"), "", "", "");
    }
    t.command(CONSENT, "denied", "", "", "");
    t.page(HIDE, 0, 0);
    let events = sent(&host);
    assert_eq!(events.len(), MAX_WAITING_EVENTS, "the wait is bounded");
    assert!(events.iter().all(|e| e.get("d").is_none()));
    private(&host);
}

#[wasm_bindgen_test(unsupported = test)]
fn denied_then_granted_never_double_counts() {
    let host = Fake::new();
    let mut t = tracker(&host, &[("consent", "denied")]);
    t.page(LOAD, 0, 0);
    t.page(HIDE, 0, 0);
    t.command(CONSENT, "granted", "", "", "");
    t.page(HISTORY, 0, 0);
    t.page(LOAD, 0, 0);
    t.command(TRACK, "After", "", "", "");
    t.page(HIDE, 0, 0);
    let events = plain(&host);
    assert_eq!(names(&host), ["$pageview", "After"], "the pageview is not sent again");
    assert!(events[0].get("d").is_none());
    assert_eq!(events[1]["d"], host.cookie("et_id").unwrap_or_default().as_str());
    let ids: Vec<&str> = events.iter().filter_map(|e| e["i"].as_str()).collect();
    assert_ne!(ids[0], ids[1]);
}

#[wasm_bindgen_test(unsupported = test)]
fn withdrawing_consent_removes_what_was_kept() {
    let host = Fake::new();
    host.refuse_beacons();
    let mut t = tracker(&host, &[("consent", "granted")]);
    t.command(IDENTIFY, "user-7", "", "", "");
    t.page(LOAD, 0, 0);
    t.page(HIDE, 0, 0);
    assert!(host.cookie("et_id").is_some());
    assert_eq!(host.stored(identity::USER_KEY).as_deref(), Some("user-7"));
    assert!(host.stored(QUEUE_KEY).is_some(), "a refused beacon is kept for later");
    t.command(CONSENT, "denied", "", "", "");
    assert_eq!(host.cookie("et_id"), None);
    assert_eq!(host.stored(identity::USER_KEY), None);
    assert_eq!(host.stored(QUEUE_KEY), None);
    host.accept_beacons();
    t.command(TRACK, "Later", "", "", "");
    t.page(HIDE, 0, 0);
    let events = sent(&host);
    let later = events.iter().find(|e| e["n"] == "Later").cloned().unwrap_or_default();
    assert_eq!(later["n"], "Later");
    assert!(later.get("d").is_none() && later.get("id").is_none(), "{later}");
}

#[wasm_bindgen_test(unsupported = test)]
fn identify_persists_with_consent_and_reset_starts_over() {
    let host = Fake::new();
    let mut t = tracker(&host, &[("consent", "granted")]);
    t.command(IDENTIFY, "", "", "", "");
    t.command(IDENTIFY, "user-42", "", "", "");
    t.command(TRACK, "A", "", "", "");
    t.page(HIDE, 0, 0);
    let device = host.cookie("et_id").unwrap_or_default();
    let a = last_named(&host, "A");
    assert_eq!(
        (a["id"].as_str(), a["d"].as_str()),
        (Some("user-42"), Some(device.as_str()))
    );

    // The next page knows the user from storage.
    let mut next = tracker(&host, &[("consent", "granted")]);
    next.command(TRACK, "B", "", "", "");
    next.page(HIDE, 0, 0);
    let b = last_named(&host, "B");
    assert_eq!(
        (b["id"].as_str(), b["d"].as_str()),
        (Some("user-42"), Some(device.as_str()))
    );

    next.command(RESET, "", "", "", "");
    next.command(TRACK, "C", "", "", "");
    next.page(HIDE, 0, 0);
    let c = last_named(&host, "C");
    assert_eq!(c["n"], "C");
    assert!(c.get("id").is_none());
    assert_ne!(c["d"], device.as_str(), "a new device after reset");
    assert_eq!(c["d"], host.cookie("et_id").unwrap_or_default().as_str());
    assert_eq!(host.stored(identity::USER_KEY), None);
}

#[wasm_bindgen_test(unsupported = test)]
fn optout_is_kept_and_can_be_undone() {
    let host = Fake::new();
    let mut t = tracker(&host, &[("consent", "granted")]);
    t.command(OPTOUT, "", "", "", "");
    t.page(LOAD, 0, 0);
    t.command(TRACK, "x", "", "", "");
    t.page(HIDE, 0, 0);
    assert_eq!(host.bodies().len(), 0);
    assert_eq!(t.ignored(), Some(Ignored::OptedOut));
    assert_eq!(host.stored(identity::OPTOUT_KEY).as_deref(), Some("1"));
    assert_eq!(host.cookie("et_id"), None, "opting out removes the device cookie");

    let mut next = tracker(&host, &[("consent", "granted")]);
    next.page(LOAD, 0, 0);
    next.page(HIDE, 0, 0);
    assert_eq!(host.bodies().len(), 0, "the next page stays out");
    next.command(OPTOUT, "false", "", "", "");
    next.command(TRACK, "back", "", "", "");
    next.page(HIDE, 0, 0);
    assert_eq!(names(&host), ["back"]);
    assert_eq!(host.stored(identity::OPTOUT_KEY), None);
}

#[wasm_bindgen_test(unsupported = test)]
fn do_not_track_and_gpc_only_when_the_site_asks() {
    for (fact, value) in [(Read::DoNotTrack, "1"), (Read::PrivacyControl, "1")] {
        let host = Fake::new();
        host.set_read(fact, value);
        let mut t = tracker(&host, &[("respect-dnt", "")]);
        t.page(LOAD, 0, 0);
        t.page(HIDE, 0, 0);
        assert_eq!(t.ignored(), Some(Ignored::DoNotTrack));
        assert_eq!(host.bodies().len(), 0);
        assert_eq!(host.storage_touched(), 0);

        let plain = Fake::new();
        plain.set_read(fact, value);
        let mut u = tracker(&plain, &[]);
        u.page(LOAD, 0, 0);
        u.page(HIDE, 0, 0);
        assert_eq!(names(&plain), ["$pageview"]);
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn bots_send_nothing_and_get_no_cookie() {
    let webdriver = Fake::new();
    webdriver.set_read(Read::Webdriver, "1");
    let headless = Fake::new();
    headless.set_read(Read::Agent, "mozilla/5.0 headlesschrome/130.0.0.0");
    for host in [&webdriver, &headless] {
        let mut t = tracker(host, &[]);
        t.page(LOAD, 0, 0);
        t.command(TRACK, "x", "", "", "");
        t.page(HIDE, 0, 0);
        assert!(matches!(t.ignored(), Some(Ignored::Bot(_))));
        assert_eq!(host.bodies().len(), 0);
        assert_eq!(host.storage_touched(), 0);
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn prerendered_page_counts_when_shown() {
    let host = Fake::new();
    host.set_read(Read::Prerendering, "1");
    let mut t = tracker(&host, &[("consent", "granted")]);
    t.page(LOAD, 0, 0);
    t.command(TRACK, "early", "", "", "");
    t.page(HIDE, 0, 0);
    assert_eq!(host.bodies().len(), 0);
    assert_eq!(host.cookie_writes(), 0, "no cookie before the page is shown");
    host.set_read(Read::Prerendering, "0");
    host.set_read(Read::Href, "https://site.test/shown");
    t.page(ACTIVATE, 0, 0);
    t.page(HIDE, 0, 0);
    let events = sent(&host);
    assert_eq!(names(&host), ["early", "$pageview"]);
    assert_eq!(events[1]["u"], "https://site.test/shown");
    assert!(events
        .iter()
        .all(|e| e["d"] == host.cookie("et_id").unwrap_or_default().as_str()));
}

#[wasm_bindgen_test(unsupported = test)]
fn spa_navigation_restores_and_hash_mode() {
    let host = Fake::new();
    let mut t = tracker(&host, &[]);
    t.page(LOAD, 0, 0);
    t.page(HISTORY, 0, 0);
    host.set_read(Read::Href, "https://site.test/pricing#plans");
    t.page(HISTORY, 0, 0);
    t.page(HASH, 0, 0);
    t.page(RESTORE, 0, 0);
    t.page(HIDE, 0, 0);
    let urls: Vec<Value> = plain(&host).iter().map(|e| e["u"].clone()).collect();
    assert_eq!(
        urls,
        [
            "https://site.test/",
            "https://site.test/pricing",
            "https://site.test/pricing"
        ]
    );

    let hashed = Fake::new();
    let mut h = tracker(&hashed, &[("spa", "hash")]);
    h.page(LOAD, 0, 0);
    hashed.set_read(Read::Href, "https://site.test/#/users");
    h.page(HASH, 0, 0);
    h.page(HISTORY, 0, 0);
    h.page(HIDE, 0, 0);
    let urls: Vec<Value> = plain(&hashed).iter().map(|e| e["u"].clone()).collect();
    assert_eq!(urls, ["https://site.test/", "https://site.test/#/users"]);
}

#[wasm_bindgen_test(unsupported = test)]
fn outbound_clicks_leave_at_once() {
    let host = Fake::new();
    host.set_read(Read::Host, "site.test");
    let mut t = tracker(&host, &[("outbound", "mailto")]);
    let link = |protocol, host, path| Link { protocol, host, path };
    t.click("https://site.test/about", link("https:", "site.test", "/about"));
    t.click("tel:+1555", link("tel:", "", "+1555"));
    assert_eq!(host.bodies().len(), 0);
    t.click("https://other.test/x?y=1", link("https:", "other.test", "/x"));
    let posts = host.posts();
    assert_eq!(posts.len(), 1, "a keepalive fetch at once, not after the delay");
    t.done(posts[0].3, 202);
    t.click("mailto:hi@site.test", link("mailto:", "", "hi@site.test"));
    let events = sent(&host);
    assert_eq!(names(&host), ["$outbound_link", "$outbound_link"]);
    assert_eq!(events[0]["u"], "https://site.test/");
    assert_eq!(events[0]["p"]["href"], "https://other.test/x?y=1");
    assert_eq!(events[1]["p"]["href"], "mailto:hi@site.test");
}

#[wasm_bindgen_test(unsupported = test)]
fn custom_events_props_and_names() {
    let host = Fake::new();
    let mut t = tracker(&host, &[]);
    t.command(TRACK, "Signup", "{\"plan\":\"pro\",\"seats\":3}", "", "");
    t.command(
        TRACK,
        "Deep",
        &format!("{}1{}", "{\"a\":".repeat(9), "}".repeat(9)),
        "",
        "",
    );
    t.command(TRACK, "", "", "", "");
    t.command(TRACK, &"n".repeat(MAX_EVENT_NAME_CHARS + 1), "", "", "");
    t.command(TRACK, "Quote \"me\"\n", "", "", "");
    t.command(99, "x", "", "", "");
    t.page(HIDE, 0, 0);
    let events = sent(&host);
    assert_eq!(names(&host), ["Signup", "Deep", "Quote \"me\"\n"]);
    assert_eq!(events[0]["p"], serde_json::json!({"plan": "pro", "seats": 3}));
    assert!(
        events[1].get("p").is_none(),
        "props the server would refuse are left out"
    );
    assert_eq!(events[0]["u"], "https://site.test/");
}

#[wasm_bindgen_test(unsupported = test)]
fn long_texts_are_cut_and_escaped() {
    let host = Fake::new();
    host.set_read(Read::Title, &format!("\"é\"\t{}", "t".repeat(MAX_TEXT_BYTES)));
    let mut t = tracker(&host, &[]);
    t.page(LOAD, 0, 0);
    t.page(HIDE, 0, 0);
    let title = sent(&host)[0]["h"].as_str().unwrap_or("").to_owned();
    assert!(title.starts_with("\"é\"\t"));
    assert!(title.len() <= MAX_TEXT_BYTES);
}

/// The real browser host, but a human one: chromedriver's webdriver flag,
/// its `cdc_` globals and the headless user agent and brand would make the
/// tracker (rightly) stay silent. Bodies are recorded instead of sent.
struct Human {
    sent: core::cell::RefCell<Vec<String>>,
}

impl Host for Human {
    fn now(&self) -> f64 {
        JsHost.now()
    }
    fn random(&self) -> u32 {
        JsHost.random()
    }
    fn read(&self, what: Read) -> String {
        match what {
            Read::Webdriver => "false".into(),
            Read::Agent => "mozilla/5.0 (x11; linux x86_64) chrome/130.0.0.0 safari/537.36,chromium".into(),
            Read::Globals => "Chromium".into(),
            _ => JsHost.read(what),
        }
    }
    fn load(&self, key: &str) -> String {
        JsHost.load(key)
    }
    fn store(&self, key: &str, value: &str) {
        JsHost.store(key, value)
    }
    fn set_cookie(&self, cookie: &str) {
        JsHost.set_cookie(cookie)
    }
    fn beacon(&self, _url: &str, body: &str) -> bool {
        self.sent.borrow_mut().push(body.into());
        true
    }
    fn post(&self, _url: &str, body: &str, _keepalive: bool, _id: u32) {
        self.sent.borrow_mut().push(body.into());
    }
    fn wake(&self, _ms: f64) {}
    fn hook(&self, event: &str) -> String {
        JsHost.hook(event)
    }
}

// In Chromium: the real page facts, cookie and storage, end to end.
#[wasm_bindgen_test]
fn browser_pageview_and_consent_round_trip() {
    let _ = js_host();
    let human = Human {
        sent: Default::default(),
    };
    human.set_cookie("et_e2e=; Max-Age=0; Path=/");
    // The test runner serves the page on 127.0.0.1.
    let mut t = tracker(
        &human,
        &[("cookie-name", "et_e2e"), ("consent", "granted"), ("local", "")],
    );
    t.page(LOAD, 0, 0);
    t.command(IDENTIFY, "user-9", "", "", "");
    t.command(TRACK, "Signup", "{\"plan\":\"pro\"}", "", "");
    t.page(HIDE, 0, 0);
    // The pageview by fetch at once, the rest by beacon as the page hides.
    let bodies = human.sent.borrow().clone();
    assert_eq!(bodies.len(), 2);
    let get = |v: &wasm_bindgen::JsValue, k: &str| js_sys::Reflect::get(v, &k.into()).unwrap_or_default();
    let event = |i: usize| {
        let body = js_sys::JSON::parse(&bodies[i]).unwrap_or(wasm_bindgen::JsValue::NULL);
        get(&get(&body, "e"), "0")
    };
    let view = event(0);
    let href = JsHost.read(Read::Href);
    assert_eq!(get(&view, "n").as_string().as_deref(), Some("$pageview"));
    assert_eq!(get(&view, "u").as_string().as_deref(), Some(text::before(&href, b'#')));
    let device = identity::cookie_value(&JsHost.read(Read::Cookie), "et_e2e").map(String::from);
    assert_eq!(get(&view, "d").as_string(), device);
    let signup = event(1);
    assert_eq!(get(&signup, "n").as_string().as_deref(), Some("Signup"));
    assert_eq!(get(&signup, "id").as_string().as_deref(), Some("user-9"));
    assert_eq!(JsHost.load(identity::USER_KEY), "user-9");
    t.command(CONSENT, "denied", "", "", "");
    assert_eq!(identity::cookie_value(&JsHost.read(Read::Cookie), "et_e2e"), None);
    assert_eq!(JsHost.load(identity::USER_KEY), "");
}

#[wasm_bindgen_test(unsupported = test)]
fn optout_is_remembered_without_consent_too() {
    let host = Fake::new();
    let mut t = tracker(&host, &[]);
    t.command(OPTOUT, "", "", "", "");
    t.page(LOAD, 0, 0);
    t.page(HIDE, 0, 0);
    assert_eq!(host.bodies().len(), 0);
    assert_eq!(host.stored(identity::OPTOUT_KEY).as_deref(), Some("1"));
    assert_eq!(host.cookie_writes(), 0, "the refusal, and nothing else");
    let mut next = tracker(&host, &[]);
    next.page(LOAD, 0, 0);
    next.page(HIDE, 0, 0);
    assert_eq!(host.bodies().len(), 0, "the next page reads it");
    assert_eq!(next.ignored(), Some(Ignored::OptedOut));
}

/// The events called `name` sent so far.
fn named(host: &Fake, name: &str) -> Vec<Value> {
    sent(host).into_iter().filter(|e| e["n"] == name).collect()
}

#[wasm_bindgen_test(unsupported = test)]
fn manual_mode_sends_pageviews_only_when_told_with_the_url_given() {
    let host = Fake::new();
    host.set_read(Read::Href, "https://site.test/users/4711/settings");
    let mut t = tracker(&host, &[("manual", "")]);
    t.page(LOAD, 0, 0);
    host.set_read(Read::Href, "https://site.test/users/4712");
    t.page(HISTORY, 0, 0);
    t.page(RESTORE, 0, 0);
    assert_eq!(names(&host), Vec::<String>::new(), "no automatic pageviews");
    t.command(PAGEVIEW_COMMAND, "https://site.test/users/:id", "", "", "");
    t.command(TRACK, "Saved", "", "", "");
    t.command(PAGEVIEW_COMMAND, "", "", "", "");
    t.page(HIDE, 0, 0);
    let urls: Vec<Value> = plain(&host).iter().map(|e| e["u"].clone()).collect();
    assert_eq!(names(&host), ["$pageview", "Saved", "$pageview"]);
    assert_eq!(
        urls,
        [
            "https://site.test/users/:id",
            "https://site.test/users/:id",
            "https://site.test/users/4712"
        ],
        "events carry the page view's URL; a pageview without one the page's own"
    );
    let views = named(&host, PAGEVIEW);
    assert_eq!(views[0]["h"], "Home", "with the page's title and referrer as usual");
    // Without manual mode the command still adds a pageview.
    let auto = Fake::new();
    let mut a = tracker(&auto, &[]);
    a.page(LOAD, 0, 0);
    a.command(PAGEVIEW_COMMAND, "https://site.test/extra", "", "", "");
    a.page(HIDE, 0, 0);
    assert_eq!(named(&auto, PAGEVIEW).len(), 2);
}

#[wasm_bindgen_test(unsupported = test)]
fn local_pages_are_skipped_unless_data_local() {
    for host_name in ["localhost", "127.0.0.1", "app.localhost", "[::1]", ""] {
        let host = Fake::new();
        host.set_read(Read::Host, host_name);
        let mut t = tracker(&host, &[("consent", "granted")]);
        t.page(LOAD, 0, 0);
        t.command(TRACK, "x", "", "", "");
        t.page(HIDE, 0, 0);
        assert_eq!(t.ignored(), Some(Ignored::Local), "{host_name:?}");
        assert_eq!(host.bodies().len(), 0);
        assert_eq!(host.storage_touched(), 0, "no cookie, nothing read");
        let allowed = Fake::new();
        allowed.set_read(Read::Host, host_name);
        let mut u = tracker(&allowed, &[("local", "")]);
        u.page(LOAD, 0, 0);
        u.page(HIDE, 0, 0);
        assert_eq!(names(&allowed), ["$pageview"], "{host_name:?} with data-local");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn only_the_sites_own_domains() {
    let domains = ("domains", "site.test www.site.test");
    let host = Fake::new();
    host.set_read(Read::Host, "www.site.test");
    let mut t = tracker(&host, &[domains]);
    t.page(LOAD, 0, 0);
    t.page(HIDE, 0, 0);
    assert_eq!(names(&host), ["$pageview"]);
    let copy = Fake::new();
    copy.set_read(Read::Host, "site-test.mirror.example");
    let mut c = tracker(&copy, &[domains]);
    c.page(LOAD, 0, 0);
    c.page(HIDE, 0, 0);
    assert_eq!(c.ignored(), Some(Ignored::OtherDomain));
    assert_eq!(copy.bodies().len(), 0);
}

#[wasm_bindgen_test(unsupported = test)]
fn include_and_exclude_paths() {
    let host = Fake::new();
    host.set_read(Read::Href, "https://site.test/blog/draft-1");
    let mut t = tracker(&host, &[("include", "/blog/*"), ("exclude", "/blog/draft-*")]);
    t.page(LOAD, 0, 0);
    t.command(TRACK, "on-draft", "", "", "");
    host.set_read(Read::Href, "https://site.test/blog/final?x=1");
    t.page(HISTORY, 0, 0);
    t.command(TRACK, "on-final", "", "", "");
    host.set_read(Read::Href, "https://site.test/shop");
    t.page(HISTORY, 0, 0);
    t.page(HIDE, 0, 0);
    let events = plain(&host);
    assert_eq!(names(&host), ["$pageview", "on-final"]);
    assert_eq!(events[0]["u"], "https://site.test/blog/final?x=1");
}

#[wasm_bindgen_test(unsupported = test)]
fn page_wide_properties_join_every_event() {
    let host = Fake::new();
    let mut t = tracker(&host, &[]);
    // As the loader sends data-et-prop-* from the tag, before the pageview.
    t.command(PROPS, "", "{\"author\":\"ann\",\"plan\":\"free\"}", "", "");
    t.page(LOAD, 0, 0);
    t.command(TRACK, "Signup", "{\"plan\":\"pro\"}", "", "");
    t.command(PROPS, "", "{\"a\":", "", "");
    t.command(TRACK, "Plain", "", "", "");
    t.page(HIDE, 0, 0);
    let props = |name: &str| {
        let e = last_named(&host, name);
        let text = serde_json::to_string(&e["p"]).unwrap_or_default();
        serde_json::from_str::<Value>(&text).unwrap_or_default()
    };
    assert_eq!(props("$pageview"), serde_json::json!({"author": "ann", "plan": "free"}));
    assert_eq!(
        props("Signup"),
        serde_json::json!({"author": "ann", "plan": "pro"}),
        "the event's own value wins"
    );
    assert_eq!(
        props("Plain"),
        serde_json::json!({"author": "ann", "plan": "free"}),
        "a broken props object is ignored"
    );
    assert_eq!(last_named(&host, ENGAGEMENT)["p"]["author"], "ann");
}

#[wasm_bindgen_test(unsupported = test)]
fn revenue_on_a_custom_event_checked() {
    let host = Fake::new();
    let mut t = tracker(&host, &[]);
    t.command(TRACK, "Purchase", "{\"sku\":\"mug\"}", "14.50", "EUR");
    t.command(TRACK, "Bad amount", "", "14,50", "EUR");
    t.command(TRACK, "Bad currency", "", "14.5", "euro");
    t.page(HIDE, 0, 0);
    assert_eq!(
        last_named(&host, "Purchase")["p"],
        serde_json::json!({"sku": "mug", "$revenue": {"amount": 14.5, "currency": "EUR"}})
    );
    for name in ["Bad amount", "Bad currency"] {
        let e = last_named(&host, name);
        assert_eq!(e["n"], name, "the event is sent");
        assert!(e.get("p").is_none(), "without the revenue: {e}");
    }
}

#[wasm_bindgen_test(unsupported = test)]
fn file_downloads_and_outbound_links() {
    let host = Fake::new();
    let mut t = tracker(&host, &[]);
    let link = |protocol, host, path| Link { protocol, host, path };
    t.click(
        "https://site.test/files/report.pdf",
        link("https:", "site.test", "/files/report.pdf"),
    );
    t.click("https://other.test/x", link("https:", "other.test", "/x"));
    t.click("https://site.test/about", link("https:", "site.test", "/about"));
    t.page(HIDE, 0, 0);
    assert_eq!(names(&host), ["$file_download", "$outbound_link"]);
    assert_eq!(
        last_named(&host, "$file_download")["p"]["href"],
        "https://site.test/files/report.pdf"
    );
    let mine = Fake::new();
    let mut m = tracker(&mine, &[("file-types", "zip")]);
    m.click("https://site.test/r.pdf", link("https:", "site.test", "/r.pdf"));
    m.click("https://site.test/a.zip", link("https:", "site.test", "/a.zip"));
    m.page(HIDE, 0, 0);
    assert_eq!(names(&mine), ["$file_download"]);
    assert_eq!(
        last_named(&mine, "$file_download")["p"]["href"],
        "https://site.test/a.zip"
    );
}

#[wasm_bindgen_test(unsupported = test)]
fn not_found_pages() {
    let host = Fake::new();
    let mut t = tracker(&host, &[("404", "")]);
    t.page(LOAD, 0, 0);
    t.page(HIDE, 0, 0);
    assert_eq!(names(&host), ["$404", "$pageview"]);
    assert_eq!(last_named(&host, NOT_FOUND)["u"], "https://site.test/");
    let spa = Fake::new();
    let mut s = tracker(&spa, &[]);
    s.page(LOAD, 0, 0);
    spa.set_read(Read::Href, "https://site.test/missing");
    s.page(HISTORY, 0, 0);
    s.command(NOT_FOUND_COMMAND, "", "", "", "");
    s.page(HIDE, 0, 0);
    assert_eq!(names(&spa), ["$pageview", "$pageview", "$404"]);
    assert_eq!(last_named(&spa, NOT_FOUND)["u"], "https://site.test/missing");
}

#[wasm_bindgen_test(unsupported = test)]
fn engagement_is_sent_when_hidden_and_on_spa_navigation() {
    let host = Fake::new();
    let mut t = tracker(&host, &[]);
    t.page(LOAD, 0, 0);
    host.advance(5_000.0);
    t.page(SCROLL, 1_200, 4_000);
    t.page(SCROLL, 2_000, 4_000);
    host.advance(1_000.0);
    // An SPA navigation closes the first page view's engagement.
    host.set_read(Read::Href, "https://site.test/pricing");
    t.page(HISTORY, 0, 0);
    host.advance(2_000.0);
    t.page(HIDE, 900, 1_000);
    host.advance(60_000.0);
    t.page(SHOW, 0, 0);
    host.advance(4_000.0);
    t.page(HIDE, 900, 1_000);
    let engaged: Vec<(Value, Value, Value)> = named(&host, ENGAGEMENT)
        .iter()
        .map(|e| (e["u"].clone(), e["p"]["engaged_ms"].clone(), e["p"]["scroll"].clone()))
        .collect();
    assert_eq!(
        engaged,
        [
            ("https://site.test/".into(), 6_000.into(), 50.into()),
            ("https://site.test/pricing".into(), 2_000.into(), 90.into()),
            ("https://site.test/pricing".into(), 4_000.into(), 90.into()),
        ]
    );
    // pagehide after visibilitychange: nothing more to report.
    t.page(HIDE, 900, 1_000);
    assert_eq!(named(&host, ENGAGEMENT).len(), 3);
}

#[wasm_bindgen_test(unsupported = test)]
fn a_background_tab_counts_engagement_from_when_it_is_shown() {
    let host = Fake::new();
    host.set_read(Read::Hidden, "1");
    let mut t = tracker(&host, &[]);
    t.page(LOAD, 0, 0);
    host.advance(30_000.0);
    host.set_read(Read::Hidden, "0");
    t.page(SHOW, 0, 0);
    host.advance(1_500.0);
    t.page(HIDE, 0, 0);
    assert_eq!(last_named(&host, ENGAGEMENT)["p"]["engaged_ms"], 1_500);
}

#[wasm_bindgen_test(unsupported = test)]
fn the_before_send_hook_changes_or_drops_events() {
    let host = Fake::new();
    host.set_hook(|event: &str| {
        let mut e: Value = serde_json::from_str(event).unwrap_or_default();
        match e["n"].as_str() {
            Some("secret") => "0".into(),
            Some("broken") => "[1]".into(),
            _ => {
                let url = e["u"].as_str().unwrap_or("").replace("token=abc", "token=x");
                e["u"] = url.into();
                e.to_string()
            }
        }
    });
    host.set_read(Read::Href, "https://site.test/?token=abc");
    let mut t = tracker(&host, &[]);
    t.page(LOAD, 0, 0);
    t.command(TRACK, "secret", "", "", "");
    t.command(TRACK, "broken", "", "", "");
    t.command(TRACK, "kept", "", "", "");
    t.page(HIDE, 0, 0);
    assert_eq!(names(&host), ["$pageview", "kept"]);
    assert!(plain(&host).iter().all(|e| e["u"] == "https://site.test/?token=x"));
}

#[wasm_bindgen_test(unsupported = test)]
fn form_submissions_only_with_data_forms() {
    let host = Fake::new();
    let mut t = tracker(&host, &[("forms", "")]);
    t.form("newsletter");
    let posts = host.posts();
    assert_eq!(posts.len(), 1, "sent at once: the page may be leaving");
    t.page(HIDE, 0, 0);
    assert_eq!(
        last_named(&host, FORM_SUBMIT)["p"],
        serde_json::json!({"form": "newsletter"})
    );
    let off = Fake::new();
    let mut o = tracker(&off, &[]);
    o.form("newsletter");
    o.page(HIDE, 0, 0);
    assert_eq!(off.bodies().len(), 0);
}
