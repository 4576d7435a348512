//! User profiles: Mixpanel's people operations (also used by Vemetric's user
//! updates and the CRM's update/login events), applied in order to a JSON
//! object of properties.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashSet;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "op", content = "value")]
pub enum ProfileOp {
    Set(Map<String, Value>),
    SetOnce(Map<String, Value>),
    /// Adds numbers to numeric properties (missing counts as 0).
    Add(Map<String, Value>),
    /// Appends one value to a list property.
    Append(Map<String, Value>),
    /// Adds the values of a list that the property does not hold yet.
    Union(Map<String, Value>),
    /// Removes one value from a list property.
    Remove(Map<String, Value>),
    Unset(Vec<String>),
    /// Deletes the whole profile.
    Delete,
}

impl ProfileOp {
    /// The operation's name in Mixpanel's `/engage`, also used to name it in
    /// errors whatever dialect it came in.
    pub fn key(&self) -> &'static str {
        match self {
            ProfileOp::Set(_) => "$set",
            ProfileOp::SetOnce(_) => "$set_once",
            ProfileOp::Add(_) => "$add",
            ProfileOp::Append(_) => "$append",
            ProfileOp::Union(_) => "$union",
            ProfileOp::Remove(_) => "$remove",
            ProfileOp::Unset(_) => "$unset",
            ProfileOp::Delete => "$delete",
        }
    }
}

/// What a dialect decoder extracts for one profile update before validation
/// ([`crate::validate::finish_profile`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProfileDraft {
    pub distinct_id: Option<Value>,
    pub time: Option<Value>,
    pub ops: Vec<ProfileOp>,
}

/// Operations on one user, as queued for the consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileUpdate {
    pub project: String,
    pub distinct_id: String,
    pub ops: Vec<ProfileOp>,
    pub time_ms: i64,
    /// When the worker accepted it: an erasure made later drops it on
    /// arrival (see `erasure`). Messages queued before this field existed
    /// read as 0, i.e. older than any erasure.
    #[serde(default)]
    pub received_at_ms: i64,
}

/// Applies operations to a profile. `None` means the profile does not exist
/// (or was deleted); any operation but `Delete` creates it.
pub fn apply(mut profile: Option<Map<String, Value>>, ops: &[ProfileOp]) -> Option<Map<String, Value>> {
    for op in ops {
        if matches!(op, ProfileOp::Delete) {
            profile = None;
            continue;
        }
        let props = profile.get_or_insert_with(Map::new);
        match op {
            ProfileOp::Set(values) => {
                for (k, v) in values {
                    props.insert(k.clone(), v.clone());
                }
            }
            ProfileOp::SetOnce(values) => {
                for (k, v) in values {
                    props.entry(k.clone()).or_insert_with(|| v.clone());
                }
            }
            ProfileOp::Add(values) => {
                for (k, v) in values {
                    let Some(delta) = v.as_f64() else { continue };
                    let current = props.get(k).and_then(Value::as_f64).unwrap_or(0.0);
                    props.insert(k.clone(), number(current + delta));
                }
            }
            ProfileOp::Append(values) => {
                for (k, v) in values {
                    list(props, k).push(v.clone());
                }
            }
            ProfileOp::Union(values) => {
                for (k, v) in values {
                    let incoming = match v {
                        Value::Array(items) => items.as_slice(),
                        other => std::slice::from_ref(other),
                    };
                    let target = list(props, k);
                    // Linear: one pass over the list and one over the new
                    // values, each value looked up by its JSON text (maps
                    // serialise in key order, so equal values, equal text).
                    let mut held: HashSet<String> = target.iter().map(Value::to_string).collect();
                    for item in incoming {
                        if held.insert(item.to_string()) {
                            target.push(item.clone());
                        }
                    }
                }
            }
            ProfileOp::Remove(values) => {
                for (k, v) in values {
                    if let Some(Value::Array(items)) = props.get_mut(k) {
                        items.retain(|item| item != v);
                    }
                }
            }
            ProfileOp::Unset(keys) => {
                for k in keys {
                    props.remove(k);
                }
            }
            ProfileOp::Delete => {}
        }
    }
    profile
}

/// The list under `key`, made a list if it was missing or a scalar.
fn list<'a>(props: &'a mut Map<String, Value>, key: &str) -> &'a mut Vec<Value> {
    let slot = props.entry(key.to_owned()).or_insert_with(|| Value::Array(Vec::new()));
    if !slot.is_array() {
        let old = std::mem::take(slot);
        *slot = Value::Array(if old.is_null() { Vec::new() } else { vec![old] });
    }
    match slot {
        Value::Array(items) => items,
        _ => unreachable!("made an array above"),
    }
}

/// Whole results stay integers in JSON (2, not 2.0).
fn number(x: f64) -> Value {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        Value::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn operations_apply_in_order() {
        let ops = vec![
            ProfileOp::Set(obj(json!({"name": "Ada", "plan": "free"}))),
            ProfileOp::SetOnce(obj(json!({"name": "Bob", "first_seen": "mon"}))),
            ProfileOp::Add(obj(json!({"logins": 1, "score": 2.5}))),
            ProfileOp::Add(obj(json!({"logins": 2, "ignored": "x"}))),
            ProfileOp::Append(obj(json!({"tags": "a"}))),
            ProfileOp::Union(obj(json!({"tags": ["a", "b", "c"]}))),
            ProfileOp::Remove(obj(json!({"tags": "b"}))),
            ProfileOp::Unset(vec!["plan".into()]),
        ];
        let profile = apply(None, &ops).expect("created");
        assert_eq!(
            Value::Object(profile),
            json!({"name": "Ada", "first_seen": "mon", "logins": 3, "score": 2.5, "tags": ["a", "c"]})
        );
    }

    #[test]
    fn delete_removes_and_later_ops_recreate() {
        let start = Some(obj(json!({"name": "Ada"})));
        assert_eq!(apply(start.clone(), &[ProfileOp::Delete]), None);
        let again = apply(start, &[ProfileOp::Delete, ProfileOp::Set(obj(json!({"n": 1})))]);
        assert_eq!(again.map(Value::Object), Some(json!({"n": 1})));
    }

    #[test]
    fn union_adds_each_new_value_once_in_order() {
        let start = Some(obj(json!({"tags": ["a", 1, {"x": 1, "y": 2}]})));
        let ops = [ProfileOp::Union(obj(
            json!({"tags": ["b", "a", 1.5, 1, {"y": 2, "x": 1}, "b", [1], [1]], "new": "solo"}),
        ))];
        let out = apply(start, &ops).map(Value::Object);
        assert_eq!(
            out,
            Some(json!({"tags": ["a", 1, {"x": 1, "y": 2}, "b", 1.5, [1]], "new": ["solo"]}))
        );
    }

    #[test]
    fn append_to_scalar_makes_a_list() {
        let start = Some(obj(json!({"tags": "x"})));
        let out = apply(start, &[ProfileOp::Append(obj(json!({"tags": "y"})))]);
        assert_eq!(out.map(Value::Object), Some(json!({"tags": ["x", "y"]})));
    }
}
