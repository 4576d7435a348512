//! What Mixpanel's `/engage` adds to a profile by itself (its user-profile
//! reference, "$ignore_time" and "$ip"):
//!
//! - `$last_seen`: every update with `$set`, `$add` or `$append` sets it to
//!   the update's time (`$time`, or the arrival time), as
//!   `YYYY-MM-DDTHH:MM:SS` in UTC, unless the update says
//!   `$ignore_time: true` or sets `$last_seen` itself.
//! - Location: every update with `$set` or `$set_once` overwrites the
//!   profile's `$country_code` with the request's country (Cloudflare's,
//!   from the connecting address), unless the request says `ip=0` or the
//!   update says `$ip: "0"`. An update that names another address in `$ip`
//!   gets no country: we have no address database, and the address itself
//!   is never stored.

use crate::profile::{ProfileOp, ProfileUpdate};
use crate::time::utc_datetime;
use serde_json::{Map, Value};

/// Adds `$last_seen` and `$country_code` to an update by the rules above.
/// `country` is the request's, already `None` for `ip=0`. What is added
/// comes before a `$delete`, so a deleted profile stays deleted.
pub fn stamp(update: &mut ProfileUpdate, ignore_time: bool, ip: Option<&str>, country: Option<&str>) {
    let has = |wanted: fn(&ProfileOp) -> bool| update.ops.iter().any(wanted);
    let writes = has(|op| matches!(op, ProfileOp::Set(_) | ProfileOp::Add(_) | ProfileOp::Append(_)));
    let sets = has(|op| matches!(op, ProfileOp::Set(_) | ProfileOp::SetOnce(_)));
    let sets_last_seen = has(|op| matches!(op, ProfileOp::Set(map) if map.contains_key("$last_seen")));

    let mut added = Map::new();
    if writes && !ignore_time && !sets_last_seen {
        added.insert("$last_seen".into(), Value::String(utc_datetime(update.time_ms)));
    }
    if let (true, None, Some(country)) = (sets, ip, country) {
        added.insert("$country_code".into(), Value::String(country.to_owned()));
    }
    if added.is_empty() {
        return;
    }
    let at = update
        .ops
        .iter()
        .position(|op| matches!(op, ProfileOp::Delete))
        .unwrap_or(update.ops.len());
    update.ops.insert(at, ProfileOp::Set(added));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::profile::apply;
    use serde_json::json;

    fn update(ops: Vec<ProfileOp>) -> ProfileUpdate {
        ProfileUpdate {
            project: "p".into(),
            distinct_id: "u".into(),
            ops,
            time_ms: 1_700_000_000_999,
            received_at_ms: 1_700_000_000_999,
        }
    }

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().cloned().unwrap_or_default()
    }

    fn stamped(ops: Vec<ProfileOp>, ignore_time: bool, ip: Option<&str>, country: Option<&str>) -> Value {
        let mut u = update(ops);
        stamp(&mut u, ignore_time, ip, country);
        apply(None, &u.ops).map_or(Value::Null, Value::Object)
    }

    #[test]
    fn last_seen_follows_set_add_and_append_unless_ignore_time() {
        let set = || vec![ProfileOp::Set(map(json!({"plan": "pro"})))];
        assert_eq!(
            stamped(set(), false, Some("0"), None),
            json!({"plan": "pro", "$last_seen": "2023-11-14T22:13:20"})
        );
        assert_eq!(stamped(set(), true, None, None), json!({"plan": "pro"}));
        let add = vec![ProfileOp::Add(map(json!({"n": 1})))];
        assert_eq!(stamped(add, false, None, None)["$last_seen"], "2023-11-14T22:13:20");
        let append = vec![ProfileOp::Append(map(json!({"l": 1})))];
        assert_eq!(stamped(append, false, None, None)["$last_seen"], "2023-11-14T22:13:20");
        // Other operations leave it alone.
        for op in [
            ProfileOp::SetOnce(map(json!({"a": 1}))),
            ProfileOp::Union(map(json!({"l": [1]}))),
            ProfileOp::Remove(map(json!({"l": 1}))),
            ProfileOp::Unset(vec!["a".into()]),
        ] {
            let out = stamped(vec![op.clone()], false, Some("0"), None);
            assert!(out.get("$last_seen").is_none(), "{op:?}");
        }
        // A client's own $last_seen wins.
        let own = vec![ProfileOp::Set(map(json!({"$last_seen": "2020-01-01T00:00:00"})))];
        assert_eq!(stamped(own, false, None, None)["$last_seen"], "2020-01-01T00:00:00");
    }

    #[test]
    fn country_from_the_request_unless_ip_says_otherwise() {
        let set = || vec![ProfileOp::SetOnce(map(json!({"a": 1})))];
        assert_eq!(
            stamped(set(), true, None, Some("DE")),
            json!({"a": 1, "$country_code": "DE"})
        );
        assert_eq!(stamped(set(), true, Some("0"), Some("DE")), json!({"a": 1}));
        assert_eq!(stamped(set(), true, Some("203.0.113.9"), Some("DE")), json!({"a": 1}));
        assert_eq!(stamped(set(), true, None, None), json!({"a": 1}), "ip=0 on the request");
        // Only profile sets place a profile.
        let add = vec![ProfileOp::Add(map(json!({"n": 1})))];
        assert!(stamped(add, true, None, Some("DE")).get("$country_code").is_none());
    }

    #[test]
    fn a_deleted_profile_stays_deleted() {
        let ops = vec![ProfileOp::Set(map(json!({"a": 1}))), ProfileOp::Delete];
        assert_eq!(stamped(ops, false, None, Some("DE")), Value::Null);
    }
}
