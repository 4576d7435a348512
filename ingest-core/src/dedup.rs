//! Dedup keys. An event is a repeat of a stored one only when its
//! [`dedup_key`] is the same: Mixpanel's rule, which takes the event name,
//! the distinct_id, the time to the second and `$insert_id` together. The
//! KV fast path (`seen:<project>:<key>`) and D1's primary key
//! `(project, dedup_key)` both use it, so an `$insert_id` alone (which a
//! public page can send) never silences another event.

use crate::event::{Dialect, Event};
use crate::limits::MAX_INSERT_ID_CHARS;
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
    let mut hasher = Sha256::new();
    for field in fields {
        hasher.update(field.len().to_string().as_bytes());
        hasher.update(b":");
        hasher.update(field.as_bytes());
    }
    hex(&hasher.finalize()[..16])
}

/// Whether a client-made insert_id has the accepted form.
pub fn is_valid_insert_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_INSERT_ID_CHARS && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A stable insert_id for an event that came without one: the same content
/// sent twice (a retry) gets the same id, so it is stored once. The raw time
/// field is part of the content, so send a time or an `$insert_id` to keep
/// two identical actions apart.
pub fn derive_insert_id(
    project: &str,
    name: &str,
    distinct_id: &str,
    raw_time: Option<&Value>,
    properties: &Map<String, Value>,
) -> String {
    let mut hasher = Sha256::new();
    for part in [project, name, distinct_id] {
        hasher.update(part.as_bytes());
        hasher.update([0u8]);
    }
    // serde_json's map is ordered by key, so this serialisation is canonical.
    if let Some(time) = raw_time {
        hasher.update(time.to_string().as_bytes());
    }
    hasher.update([0u8]);
    hasher.update(Value::Object(properties.clone()).to_string().as_bytes());
    let digest = hasher.finalize();
    // 32 hex characters: within the 36 allowed, and 128 bits of identity.
    hex(&digest[..16])
}

/// The KV key marking an event of `project` with this [`dedup_key`] as seen.
pub fn kv_key(project: &str, dedup_key: &str) -> String {
    format!("seen:{project}:{dedup_key}")
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
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
        }
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

    #[test]
    fn derived_ids_are_stable_and_content_sensitive() {
        let props = json!({"b": 2, "a": 1}).as_object().cloned().unwrap_or_default();
        let same = json!({"a": 1, "b": 2}).as_object().cloned().unwrap_or_default();
        let time = json!(1_700_000_000);
        let one = derive_insert_id("p", "e", "u", Some(&time), &props);
        assert_eq!(one, derive_insert_id("p", "e", "u", Some(&time), &same));
        assert!(is_valid_insert_id(&one));
        assert_ne!(
            one,
            derive_insert_id("p", "e", "u", Some(&json!(1_700_000_001)), &props)
        );
        assert_ne!(one, derive_insert_id("q", "e", "u", Some(&time), &props));
        assert_ne!(one, derive_insert_id("p", "e", "u", None, &props));
        // Field boundaries matter: ("ab","c") is not ("a","bc").
        assert_ne!(
            derive_insert_id("p", "ab", "c", None, &props),
            derive_insert_id("p", "a", "bc", None, &props)
        );
    }
}
