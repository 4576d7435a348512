//! Dedup keys. An event is a repeat of a stored one only when its
//! [`dedup_key`] is the same: Mixpanel's rule, which takes the event name,
//! the distinct_id, the time to the second and `$insert_id` together. The
//! KV fast path (`seen:<project>:<key>`) and D1's primary key
//! `(project, dedup_key)` both use it, so an `$insert_id` alone (which a
//! public page can send) never silences another event.

use crate::event::{Dialect, Event};
use crate::hash::{hex, text_framed};
use crate::limits::{MAX_INSERT_ID_CHARS, SECONDS_MS_BOUNDARY};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

/// Domain tags of the two key forms, so that no occurrence key can ever
/// equal a business key (their preimages differ from the first byte).
const OCCURRENCE_TAG: &str = "occurrence-v1";
const BUSINESS_TAG: &str = "business-v1";

/// The identity D1 and KV deduplicate on, as 32 hex characters (128 bits of
/// SHA-256).
///
/// - Every dialect but the CRM API: the event name, distinct_id, time in
///   whole seconds and insert_id, as Mixpanel deduplicates. A resend of the
///   same occurrence matches; the same `$insert_id` on another event, user
///   or second does not.
/// - The CRM API (secret key only): its ids are business keys the dialect
///   derives (an order's confirmation, a user's email-open window), meant to
///   drop a later repeat at any time, so the key is the name and the
///   insert_id alone. The tag keeps these apart from every public event.
///
/// Each field is length-prefixed, so no two field lists hash alike.
pub fn dedup_key(event: &Event) -> String {
    let time_s = event.time_ms.div_euclid(1000).to_string();
    let fields: &[&str] = match event.source {
        Dialect::Crm => &[BUSINESS_TAG, &event.name, &event.insert_id],
        _ => &[
            OCCURRENCE_TAG,
            &event.name,
            &event.distinct_id,
            &time_s,
            &event.insert_id,
        ],
    };
    text_framed(fields, 16)
}

/// Whether a client-made insert_id has the accepted form.
pub fn is_valid_insert_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_INSERT_ID_CHARS && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// The insert_id of an event that came without one, by the rule of the
/// dialect it came in:
///
/// - our tracker (`/collect`, `ts`) and Emp-Mix (`timestamp`): a client
///   timestamp in milliseconds identifies one occurrence, so the id is a
///   hash of the content with it, and a resend of the same content is the
///   same event. Without one (or with whole seconds) each event is kept;
/// - Mixpanel `/track` and `/import`: Mixpanel never deduplicates an event
///   that carries no `$insert_id`, so each one is kept, whatever its time;
/// - Vemetric and the CRM API send no client time or id, so each request's
///   event is kept (the CRM dialect gives confirmations and email opens
///   business ids of its own before this).
///
/// "Kept" means an id made from the request's random id and the event's
/// index in it: unique per occurrence, stable within the request.
pub fn missing_insert_id(dialect: Dialect, request_id: &str, index: usize, content: Content<'_>) -> String {
    let identified_by_content =
        matches!(dialect, Dialect::Browser | Dialect::EmpMix) && content.raw_time.is_some_and(is_millisecond_timestamp);
    if identified_by_content {
        derive_insert_id(content)
    } else {
        occurrence_insert_id(request_id, index)
    }
}

/// What a derived insert_id is made of.
#[derive(Debug, Clone, Copy)]
pub struct Content<'a> {
    pub project: &'a str,
    pub name: &'a str,
    pub distinct_id: &'a str,
    /// The time as the client sent it.
    pub raw_time: Option<&'a Value>,
    pub properties: &'a Map<String, Value>,
}

/// A client time given in milliseconds (a number, or numeric text, of at
/// least 1e11): precise enough to tell two occurrences of one action apart.
fn is_millisecond_timestamp(raw: &Value) -> bool {
    let value = match raw {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    value.is_some_and(|v| v.is_finite() && v >= SECONDS_MS_BOUNDARY)
}

/// A stable insert_id from the content: the same content sent twice (a
/// retry) gets the same id, so it is stored once.
fn derive_insert_id(content: Content<'_>) -> String {
    let mut hasher = Sha256::new();
    for part in [content.project, content.name, content.distinct_id] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    // serde_json's map is ordered by key, so this serialisation is canonical.
    if let Some(time) = content.raw_time {
        hasher.update(time.to_string().as_bytes());
    }
    hasher.update([0u8]);
    hasher.update(Value::Object(content.properties.clone()).to_string().as_bytes());
    // 32 hex characters: within the 36 allowed, and 128 bits of identity.
    hex(&hasher.finalize()[..16])
}

/// The id of one occurrence: the request's random id and the event's index.
fn occurrence_insert_id(request_id: &str, index: usize) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"occurrence:");
    hasher.update(request_id.as_bytes());
    hasher.update(b":");
    hasher.update(index.to_string().as_bytes());
    hex(&hasher.finalize()[..16])
}

/// The KV key marking an event of `project` with this [`dedup_key`] as seen.
pub fn kv_key(project: &str, dedup_key: &str) -> String {
    format!("seen:{project}:{dedup_key}")
}

/// How the ingest path marks what it has seen in KV (`DEDUP_MARKS`). D1's
/// key on each event is the authority in every mode: a mark only stops a
/// resend before it costs a queue message and the consumer's reads, and a
/// KV write is the dearest operation an event pays for (issue 22).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MarkMode {
    /// One mark per event: a retry that re-batches known events with new
    /// ones is still filtered before the queue.
    PerEvent,
    /// One mark per request: an exact resend, which is how trackers and
    /// SDKs retry, is caught by one key; a request of one event is marked
    /// exactly as [`MarkMode::PerEvent`] marks it.
    PerRequest,
    /// No marks: every resend reaches the queue, and D1 keeps one.
    Off,
}

impl MarkMode {
    /// Reads the setting; anything unknown keeps the default (per event).
    pub fn parse(setting: Option<&str>) -> Self {
        match setting.map(str::trim) {
            Some("request") => Self::PerRequest,
            Some("off") => Self::Off,
            _ => Self::PerEvent,
        }
    }
}

/// The KV keys a request of `project` checks and then writes, for its
/// events' (distinct) dedup keys in order.
pub fn request_marks(mode: MarkMode, project: &str, dedup_keys: &[String]) -> Vec<String> {
    match (mode, dedup_keys) {
        (MarkMode::Off, _) | (_, []) => Vec::new(),
        (MarkMode::PerEvent, keys) | (MarkMode::PerRequest, keys @ [_]) => {
            keys.iter().map(|key| kv_key(project, key)).collect()
        }
        (MarkMode::PerRequest, keys) => {
            let mut hasher = Sha256::new();
            for key in keys {
                hasher.update(key.as_bytes());
                hasher.update([b'\n']);
            }
            vec![kv_key(project, &format!("request:{}", hex(&hasher.finalize()[..16])))]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::PageContext;
    use serde_json::json;

    fn event(source: Dialect, name: &str, distinct_id: &str, time_ms: i64, insert_id: &str) -> Event {
        Event {
            project: "p".into(),
            name: name.into(),
            distinct_id: distinct_id.into(),
            device_id: None,
            time_ms,
            insert_id: insert_id.into(),
            page: PageContext::default(),
            properties: Map::new(),
            source,
            received_at_ms: time_ms,
            user_agent: None,
            country: None,
            region: None,
            city: None,
        }
    }

    /// Keys already stored in D1 and KV must not change: two known keys,
    /// computed outside Rust.
    #[test]
    fn known_keys_are_pinned() {
        let occurrence = event(Dialect::Browser, "$pageview", "u-1", 1_700_000_000_123, "ins-1");
        assert_eq!(dedup_key(&occurrence), "99347fd9ccbbd13dd4d784de3092e076");
        let business = event(Dialect::Crm, "Order Confirmed", "u-1", 1_700_000_000_123, "ins-1");
        assert_eq!(dedup_key(&business), "308ecb494767e990bba9535d811a41ea");
    }

    #[test]
    fn an_insert_id_alone_does_not_make_a_repeat() {
        let order = event(
            Dialect::MixpanelImport,
            "Purchase",
            "u-1",
            1_700_000_000_000,
            "order-1001",
        );
        let key = dedup_key(&order);
        assert_eq!(key.len(), 32);
        // The same occurrence from another endpoint, or within the same
        // second, is a repeat (Mixpanel's rule: time to the second).
        let mut resend = order.clone();
        resend.source = Dialect::MixpanelTrack;
        resend.time_ms += 999;
        resend.properties.insert("extra".into(), json!(1));
        assert_eq!(dedup_key(&resend), key);
        // A different name, user or second with the same insert_id is not.
        let browser = event(Dialect::Browser, "$pageview", "u-1", 1_700_000_000_000, "order-1001");
        assert_ne!(dedup_key(&browser), key);
        let other_user = event(
            Dialect::MixpanelImport,
            "Purchase",
            "u-2",
            1_700_000_000_000,
            "order-1001",
        );
        assert_ne!(dedup_key(&other_user), key);
        let next_second = event(
            Dialect::MixpanelImport,
            "Purchase",
            "u-1",
            1_700_000_001_000,
            "order-1001",
        );
        assert_ne!(dedup_key(&next_second), key);
        // Negative times round down to their second like any other.
        let early = event(Dialect::MixpanelImport, "e", "u", -1, "x");
        let earlier = event(Dialect::MixpanelImport, "e", "u", -1000, "x");
        assert_eq!(dedup_key(&early), dedup_key(&earlier));
    }

    #[test]
    fn field_boundaries_and_key_forms_are_kept_apart() {
        let a = event(Dialect::Browser, "ab", "c", 0, "x");
        let b = event(Dialect::Browser, "a", "bc", 0, "x");
        assert_ne!(dedup_key(&a), dedup_key(&b));
        // CRM business keys ignore user and time, and never equal a public
        // event's key even with the same name and id.
        let crm = event(Dialect::Crm, "confirmation", "ann@example.com", 1_000, "k-1");
        let crm_later = event(Dialect::Crm, "confirmation", "bob@example.com", 9_000_000, "k-1");
        assert_eq!(dedup_key(&crm), dedup_key(&crm_later));
        let public = event(Dialect::Browser, "confirmation", "ann@example.com", 1_000, "k-1");
        assert_ne!(dedup_key(&crm), dedup_key(&public));
    }

    /// The key's documented preimage, computed here by hand: the e2e tests
    /// recompute it in JavaScript the same way.
    #[test]
    fn the_key_is_the_documented_hash() {
        let e = event(Dialect::Browser, "signup", "dev-1", 1_700_000_000_123, "dup-1");
        let preimage = "13:occurrence-v16:signup5:dev-110:17000000005:dup-1";
        assert_eq!(dedup_key(&e), hex(&Sha256::digest(preimage.as_bytes())[..16]));
    }

    #[test]
    fn insert_id_form_at_and_past_the_limit() {
        assert!(is_valid_insert_id(&"a".repeat(MAX_INSERT_ID_CHARS)));
        assert!(!is_valid_insert_id(&"a".repeat(MAX_INSERT_ID_CHARS + 1)));
        assert!(is_valid_insert_id("0f8fad5b-d9cb-469f-a165-70867728950e"));
        assert!(!is_valid_insert_id(""));
        assert!(!is_valid_insert_id("has space"));
        assert!(!is_valid_insert_id("under_score"));
        assert!(!is_valid_insert_id("ünïcode"));
    }

    fn content<'a>(time: Option<&'a Value>, props: &'a Map<String, Value>) -> Content<'a> {
        Content {
            project: "p",
            name: "e",
            distinct_id: "u",
            raw_time: time,
            properties: props,
        }
    }

    #[test]
    fn millisecond_client_times_identify_an_occurrence_in_the_browser_and_emp_mix() {
        let props = json!({"b": 2, "a": 1}).as_object().cloned().unwrap_or_default();
        let same = json!({"a": 1, "b": 2}).as_object().cloned().unwrap_or_default();
        let ms = json!(1_700_000_000_123_i64);
        for dialect in [Dialect::Browser, Dialect::EmpMix] {
            // A resend in another request is the same event.
            let one = missing_insert_id(dialect, "req-1", 0, content(Some(&ms), &props));
            assert!(is_valid_insert_id(&one));
            assert_eq!(one, missing_insert_id(dialect, "req-2", 4, content(Some(&ms), &same)));
            // Another millisecond, or other content, is another event.
            let next = json!(1_700_000_000_124_i64);
            assert_ne!(
                one,
                missing_insert_id(dialect, "req-1", 0, content(Some(&next), &props))
            );
            let other = json!({"a": 2}).as_object().cloned().unwrap_or_default();
            assert_ne!(one, missing_insert_id(dialect, "req-1", 0, content(Some(&ms), &other)));
            // Numeric text counts as the number it spells.
            let text = json!("1700000000123");
            assert!(is_valid_insert_id(&missing_insert_id(
                dialect,
                "r",
                0,
                content(Some(&text), &props)
            )));
        }
    }

    #[test]
    fn without_a_millisecond_time_or_in_other_dialects_every_event_is_kept() {
        let props = Map::new();
        let seconds = json!(1_700_000_000);
        let ms = json!(1_700_000_000_123_i64);
        let cases: [(Dialect, Option<&Value>); 8] = [
            (Dialect::Browser, None),
            (Dialect::Browser, Some(&seconds)),
            (Dialect::EmpMix, None),
            (Dialect::EmpMix, Some(&seconds)),
            (Dialect::MixpanelTrack, Some(&ms)),
            (Dialect::MixpanelImport, Some(&ms)),
            (Dialect::Vemetric, None),
            (Dialect::Crm, None),
        ];
        for (dialect, time) in cases {
            let a = missing_insert_id(dialect, "req-1", 0, content(time, &props));
            assert!(is_valid_insert_id(&a));
            // The same content in another request, or twice in one, is kept twice.
            assert_ne!(
                a,
                missing_insert_id(dialect, "req-2", 0, content(time, &props)),
                "{dialect:?}"
            );
            assert_ne!(
                a,
                missing_insert_id(dialect, "req-1", 1, content(time, &props)),
                "{dialect:?}"
            );
            // Within one request the id is stable (a queue retry keeps it).
            assert_eq!(a, missing_insert_id(dialect, "req-1", 0, content(time, &props)));
        }
        // Index boundaries: ("req-1", 12) is not ("req-11", 2).
        assert_ne!(occurrence_insert_id("req-1", 12), occurrence_insert_id("req-11", 2));
    }

    fn keys(list: &[&str]) -> Vec<String> {
        list.iter().map(|k| (*k).to_owned()).collect()
    }

    #[test]
    fn mark_modes_parse_with_per_event_as_the_default() {
        assert_eq!(MarkMode::parse(Some("request")), MarkMode::PerRequest);
        assert_eq!(MarkMode::parse(Some(" off ")), MarkMode::Off);
        assert_eq!(MarkMode::parse(Some("event")), MarkMode::PerEvent);
        assert_eq!(MarkMode::parse(Some("bogus")), MarkMode::PerEvent);
        assert_eq!(MarkMode::parse(None), MarkMode::PerEvent);
    }

    #[test]
    fn per_event_marks_one_key_per_event() {
        let marks = request_marks(MarkMode::PerEvent, "demo", &keys(&["a", "b", "c"]));
        assert_eq!(marks, ["seen:demo:a", "seen:demo:b", "seen:demo:c"]);
    }

    #[test]
    fn per_request_marks_one_key_that_an_exact_resend_repeats() {
        let three = keys(&["a", "b", "c"]);
        let marks = request_marks(MarkMode::PerRequest, "demo", &three);
        assert_eq!(marks.len(), 1);
        assert!(marks[0].starts_with("seen:demo:request:"), "{}", marks[0]);
        assert_eq!(marks[0].len(), "seen:demo:request:".len() + 32);
        assert_eq!(request_marks(MarkMode::PerRequest, "demo", &three), marks);
        // Another set, another order or another project is another request.
        for other in [keys(&["a", "b"]), keys(&["a", "c", "b"]), keys(&["ab", "c"])] {
            assert_ne!(request_marks(MarkMode::PerRequest, "demo", &other), marks, "{other:?}");
        }
        assert_ne!(request_marks(MarkMode::PerRequest, "shop", &three)[0], marks[0]);
    }

    #[test]
    fn a_request_of_one_event_is_marked_alike_in_both_modes() {
        let one = keys(&["a"]);
        assert_eq!(request_marks(MarkMode::PerRequest, "demo", &one), ["seen:demo:a"]);
        assert_eq!(
            request_marks(MarkMode::PerRequest, "demo", &one),
            request_marks(MarkMode::PerEvent, "demo", &one)
        );
    }

    #[test]
    fn no_marks_when_off_or_empty() {
        assert!(request_marks(MarkMode::Off, "demo", &keys(&["a", "b"])).is_empty());
        assert!(request_marks(MarkMode::PerEvent, "demo", &[]).is_empty());
        assert!(request_marks(MarkMode::PerRequest, "demo", &[]).is_empty());
    }
}
