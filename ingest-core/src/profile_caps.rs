//! Caps on one user profile: how many properties, how long a list, how
//! many bytes. Without them `$append` and `$union` from a public token could
//! grow one profile until every update moved megabytes through D1 and then
//! failed. An update that would take a profile past a cap is refused whole,
//! with the operation that crossed it; one that shrinks a profile already
//! past a cap (stored before the caps, say) still applies.

use crate::limits::{MAX_PROFILE_BYTES, MAX_PROFILE_LIST_ITEMS, MAX_PROFILE_PROPERTIES};
use crate::profile::{apply, ProfileOp};
use serde_json::{Map, Value};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProfileCapError {
    #[error("would give the profile more than {MAX_PROFILE_PROPERTIES} properties")]
    Properties,
    #[error("would make list '{key}' longer than {MAX_PROFILE_LIST_ITEMS} items")]
    ListItems { key: String },
    #[error("would make the profile larger than {MAX_PROFILE_BYTES} bytes")]
    Bytes,
}

/// A refused update: which of its operations crossed which cap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The operation's name (`$set`, `$union`, …), for the error's field.
    pub op: &'static str,
    pub error: ProfileCapError,
}

/// Applies `ops` to `profile` like [`apply`], one operation at a time, and
/// refuses the update at the first operation that grows the profile past a
/// cap.
pub fn apply_within_caps(
    profile: Option<Map<String, Value>>,
    ops: &[ProfileOp],
) -> Result<Option<Map<String, Value>>, Refused> {
    let mut current = profile;
    for op in ops {
        let next = apply(current.clone(), std::slice::from_ref(op));
        if let Some(error) = crossed(current.as_ref(), next.as_ref(), op) {
            return Err(Refused { op: op.key(), error });
        }
        current = next;
    }
    Ok(current)
}

/// The cap that `after` passes and `before` did not (or passed by less).
fn crossed(
    before: Option<&Map<String, Value>>,
    after: Option<&Map<String, Value>>,
    op: &ProfileOp,
) -> Option<ProfileCapError> {
    let after = after?;
    let count = |p: Option<&Map<String, Value>>| p.map_or(0, Map::len);
    if after.len() > MAX_PROFILE_PROPERTIES && after.len() > count(before) {
        return Some(ProfileCapError::Properties);
    }
    if let ProfileOp::Append(values) | ProfileOp::Union(values) = op {
        let length = |p: Option<&Map<String, Value>>, key: &str| match p.and_then(|p| p.get(key)) {
            Some(Value::Array(items)) => items.len(),
            Some(_) => 1,
            None => 0,
        };
        for key in values.keys() {
            let now = length(Some(after), key);
            if now > MAX_PROFILE_LIST_ITEMS && now > length(before, key) {
                return Some(ProfileCapError::ListItems {
                    key: key.chars().take(64).collect(),
                });
            }
        }
    }
    let bytes = |p: Option<&Map<String, Value>>| p.map_or(0, crate::validate::serialized_len);
    let size = bytes(Some(after));
    if size > MAX_PROFILE_BYTES && size > bytes(before) {
        return Some(ProfileCapError::Bytes);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn with_properties(n: usize) -> Map<String, Value> {
        (0..n).map(|i| (format!("p{i}"), json!(i))).collect()
    }

    #[test]
    fn property_count_at_and_past_the_cap() {
        let full = with_properties(MAX_PROFILE_PROPERTIES - 1);
        let one_more = [ProfileOp::Set(obj(json!({"last": 1})))];
        let at = apply_within_caps(Some(full.clone()), &one_more).expect("at the cap");
        assert_eq!(at.map(|p| p.len()), Some(MAX_PROFILE_PROPERTIES));
        let past = [ProfileOp::Set(obj(json!({"last": 1, "past": 2})))];
        assert_eq!(
            apply_within_caps(Some(full.clone()), &past),
            Err(Refused {
                op: "$set",
                error: ProfileCapError::Properties
            })
        );
        // Changing properties it already has is fine at the cap.
        let full = with_properties(MAX_PROFILE_PROPERTIES);
        assert!(apply_within_caps(Some(full), &[ProfileOp::Set(obj(json!({"p0": "x"})))]).is_ok());
    }

    #[test]
    fn list_length_at_and_past_the_cap() {
        let list: Vec<Value> = (0..MAX_PROFILE_LIST_ITEMS - 1).map(|i| json!(i)).collect();
        let start = Some(obj(json!({"tags": list})));
        let appended = apply_within_caps(start.clone(), &[ProfileOp::Append(obj(json!({"tags": "last"})))]);
        assert!(appended.is_ok());
        let twice = [
            ProfileOp::Append(obj(json!({"tags": "a"}))),
            ProfileOp::Union(obj(json!({"tags": ["b"]}))),
        ];
        assert_eq!(
            apply_within_caps(start.clone(), &twice),
            Err(Refused {
                op: "$union",
                error: ProfileCapError::ListItems { key: "tags".into() }
            })
        );
        // A union of values the list holds adds nothing and passes.
        assert!(apply_within_caps(start, &[ProfileOp::Union(obj(json!({"tags": [0, 1, 2]})))]).is_ok());
    }

    #[test]
    fn bytes_at_and_past_the_cap() {
        // {"s":"…"} is 8 bytes of JSON around the string.
        let fill = |n: usize| ProfileOp::Set(obj(json!({"s": "x".repeat(n)})));
        assert!(apply_within_caps(None, &[fill(MAX_PROFILE_BYTES - 8)]).is_ok());
        assert_eq!(
            apply_within_caps(None, &[fill(MAX_PROFILE_BYTES - 7)]),
            Err(Refused {
                op: "$set",
                error: ProfileCapError::Bytes
            })
        );
    }

    #[test]
    fn a_profile_already_past_a_cap_may_still_shrink() {
        let over = with_properties(MAX_PROFILE_PROPERTIES + 5);
        let shrink = [ProfileOp::Unset(vec!["p0".into(), "p1".into()])];
        assert_eq!(
            apply_within_caps(Some(over.clone()), &shrink).map(|p| p.map(|p| p.len())),
            Ok(Some(MAX_PROFILE_PROPERTIES + 3))
        );
        assert_eq!(apply_within_caps(Some(over.clone()), &[ProfileOp::Delete]), Ok(None));
        assert!(apply_within_caps(Some(over), &[ProfileOp::Set(obj(json!({"new": 1})))]).is_err());
    }

    #[test]
    fn the_refused_update_is_refused_whole() {
        let ops = [
            ProfileOp::Set(obj(json!({"name": "Ada"}))),
            ProfileOp::Set(Map::from_iter(
                (0..MAX_PROFILE_PROPERTIES).map(|i| (format!("k{i}"), json!(i))),
            )),
        ];
        let refused = apply_within_caps(None, &ops).err().map(|r| r.error);
        assert_eq!(refused, Some(ProfileCapError::Properties));
    }
}
