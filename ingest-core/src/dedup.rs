//! Dedup keys. `$insert_id` is the identity of an event: the KV fast path and
//! D1's unique `(project, insert_id)` both key on it.

use crate::limits::MAX_INSERT_ID_CHARS;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

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

/// The KV key marking `(project, insert_id)` as seen.
pub fn kv_key(project: &str, insert_id: &str) -> String {
    format!("seen:{project}:{insert_id}")
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
    use serde_json::json;

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
