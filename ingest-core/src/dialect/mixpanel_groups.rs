//! Mixpanel's group profiles: `/groups` (GET or POST, like `/engage`), one
//! update or an array of at most 50, each naming its group by `$group_key`
//! (the kind of group, e.g. `company`) and `$group_id`, with the project
//! token in `$token`:
//!
//! ```json
//! {"$token": "…", "$group_key": "company", "$group_id": "Acme Inc.",
//!  "$set": {"industry": "widgets"}}
//! ```
//!
//! Operations: `$set`, `$set_once`, `$union`, `$remove`, `$unset` and
//! `$delete`, applied in that order as for user profiles. Mixpanel's group
//! API has no `$add` or `$append`; they are refused. Replies are those of
//! `/engage` (`1`/`0`, or `{"status":…,"error":…}` with `verbose=1`).

use super::mixpanel::{one_token, open_update, read_batch, TrackParams};
use crate::error::{FieldError, IngestError};
use crate::event::Dialect;
use crate::limits::MAX_ID_CHARS;
use crate::profile::{ProfileDraft, ProfileOp};
use crate::validate::{finish_profile, Admission};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The operations a group profile takes, in the order they are applied.
pub const GROUP_OPS: [&str; 6] = ["$set", "$set_once", "$union", "$remove", "$unset", "$delete"];

/// One `/groups` update before validation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GroupDraft {
    pub group_key: Option<Value>,
    pub group_id: Option<Value>,
    pub time: Option<Value>,
    pub ops: Vec<ProfileOp>,
}

/// One decoded group update, or why it could not be read.
pub type GroupItem = Result<GroupDraft, Vec<FieldError>>;

/// A decoded `/groups` request.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupsRequest {
    pub params: TrackParams,
    pub token: Option<String>,
    pub items: Vec<GroupItem>,
}

/// Operations on one group profile, as queued for the consumer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupUpdate {
    pub project: String,
    pub group_key: String,
    pub group_id: String,
    pub ops: Vec<ProfileOp>,
    pub time_ms: i64,
}

pub fn decode_groups(query: &str, body: &[u8]) -> Result<GroupsRequest, IngestError> {
    let (params, values) = read_batch(query, body)?;
    let (items, tokens): (Vec<_>, Vec<_>) = values.into_iter().enumerate().map(|(i, v)| read_group(i, v)).unzip();
    Ok(GroupsRequest {
        params,
        token: one_token(tokens)?,
        items,
    })
}

fn read_group(index: usize, item: Value) -> (GroupItem, Option<String>) {
    let (opened, token) = open_update(index, item, &GROUP_OPS);
    let draft = opened.map(|(mut u, ops)| GroupDraft {
        group_key: u.remove("$group_key"),
        group_id: u.remove("$group_id"),
        time: u.remove("$time"),
        ops,
    });
    (draft, token)
}

/// Validates group updates: `$group_key` a non-empty string and
/// `$group_id` a non-empty string or number, both at most 255 characters;
/// the operations and `$time` as for user profiles.
pub fn finish_groups(items: Vec<GroupItem>, admitted: &Admission<'_>) -> (Vec<GroupUpdate>, Vec<FieldError>) {
    let cx = admitted.as_dialect(Dialect::MixpanelEngage, false);
    let mut updates = Vec::new();
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let draft = match item {
            Ok(draft) => draft,
            Err(found) => {
                errors.extend(found);
                continue;
            }
        };
        let mut own = Vec::new();
        let group_key = match draft.group_key {
            Some(Value::String(key)) if !key.trim().is_empty() && key.chars().count() <= MAX_ID_CHARS => Some(key),
            Some(Value::String(key)) if !key.trim().is_empty() => {
                own.push(FieldError::new(
                    index,
                    "$group_key",
                    format!("is longer than {MAX_ID_CHARS} characters"),
                ));
                None
            }
            None | Some(Value::Null) => {
                own.push(FieldError::new(index, "$group_key", "is required"));
                None
            }
            Some(_) => {
                own.push(FieldError::new(index, "$group_key", "must be a non-empty string"));
                None
            }
        };
        // The group id is checked like a distinct_id (string or number, at
        // most 255 characters), and named as what it is in errors.
        let profile = ProfileDraft {
            distinct_id: draft.group_id,
            time: draft.time,
            ops: draft.ops,
        };
        match finish_profile(profile, index, &cx) {
            Ok(update) if own.is_empty() => updates.push(GroupUpdate {
                project: update.project,
                group_key: group_key.unwrap_or_default(),
                group_id: update.distinct_id,
                ops: update.ops,
                time_ms: update.time_ms,
            }),
            Ok(_) => errors.extend(own),
            Err(found) => {
                errors.extend(own);
                errors.extend(found.into_iter().map(|mut e| {
                    if e.field == "distinct_id" {
                        e.field = "$group_id".into();
                    }
                    e
                }));
            }
        }
    }
    errors.sort_by_key(|e| e.index);
    (updates, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RequestContext;
    use crate::profile::apply;
    use serde_json::json;

    fn run(body: &Value) -> (Vec<GroupUpdate>, Vec<(usize, String)>) {
        let req = decode_groups("", body.to_string().as_bytes()).expect("decodes");
        let request = RequestContext {
            received_at_ms: 1_795_424_070_930,
            ..Default::default()
        };
        let cx = Admission {
            project: "demo",
            key: crate::auth::KeyKind::Public,
            request: &request,
            anonymous_id: Some("never-used"),
        };
        let (updates, errors) = finish_groups(req.items, &cx);
        (updates, errors.into_iter().map(|e| (e.index, e.field)).collect())
    }

    /// What the Python library's `group_set` sends (`$time` in float
    /// seconds) and the Node library's `groups.union` (GET, no `$time`).
    #[test]
    fn the_libraries_updates_apply_to_one_group() {
        let body = json!([
            {"$token": "demo-token", "$time": 1_795_424_001.5_f64, "$group_key": "company",
             "$group_id": "Acme Inc.", "$set": {"industry": "widgets", "size": 10}},
            {"$union": {"products": ["anvil"]}, "$token": "demo-token", "$group_key": "company", "$group_id": "Acme Inc."},
            {"$token": "demo-token", "$group_key": "company", "$group_id": 42, "$set_once": {"a": 1}}
        ]);
        let (updates, errors) = run(&body);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            (
                updates[0].group_key.as_str(),
                updates[0].group_id.as_str(),
                updates[0].time_ms
            ),
            ("company", "Acme Inc.", 1_795_424_001_500)
        );
        assert_eq!(updates[1].time_ms, 1_795_424_070_930, "no $time: the arrival");
        assert_eq!(updates[2].group_id, "42", "numeric ids are ids");
        let profile = apply(apply(None, &updates[0].ops), &updates[1].ops);
        assert_eq!(
            profile.map(Value::Object),
            Some(json!({"industry": "widgets", "size": 10, "products": ["anvil"]}))
        );
    }

    #[test]
    fn operations_in_order_and_add_or_append_refused() {
        let req = decode_groups(
            "",
            json!({"$token": "t", "$group_key": "k", "$group_id": "g", "$delete": "", "$unset": ["a"],
                "$remove": {"l": 1}, "$union": {"l": [2]}, "$set_once": {"s": 1}, "$set": {"s": 2}})
            .to_string()
            .as_bytes(),
        )
        .expect("decodes");
        let ops: Vec<&str> = match &req.items[0] {
            Ok(d) => d.ops.iter().map(ProfileOp::key).collect(),
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(ops, GROUP_OPS);
        let (_, errors) = run(&json!([
            {"$token": "t", "$group_key": "k", "$group_id": "g", "$add": {"n": 1}},
            {"$token": "t", "$group_key": "k", "$group_id": "g", "$append": {"l": 1}}
        ]));
        assert_eq!(errors, [(0, "$add".to_owned()), (1, "$append".to_owned())]);
    }

    #[test]
    fn the_group_must_be_named() {
        let long = "k".repeat(MAX_ID_CHARS + 1);
        let (updates, errors) = run(&json!([
            {"$token": "t", "$group_id": "g", "$set": {"a": 1}},
            {"$token": "t", "$group_key": "k", "$set": {"a": 1}},
            {"$token": "t", "$group_key": 5, "$group_id": "g", "$set": {"a": 1}},
            {"$token": "t", "$group_key": long, "$group_id": "g", "$set": {"a": 1}},
            {"$token": "t", "$group_key": "k".repeat(MAX_ID_CHARS), "$group_id": "g", "$set": {"a": 1}},
            {"$token": "t", "$group_key": "k", "$group_id": "g"}
        ]));
        assert_eq!(updates.len(), 1, "only the one at the key's limit");
        assert_eq!(
            errors,
            [
                (0, "$group_key".to_owned()),
                (1, "$group_id".to_owned()),
                (2, "$group_key".to_owned()),
                (3, "$group_key".to_owned()),
                (5, "ops".to_owned())
            ]
        );
    }

    #[test]
    fn one_project_per_request() {
        let body = json!([{"$token": "a", "$group_key": "k", "$group_id": "g", "$set": {}},
            {"$token": "b", "$group_key": "k", "$group_id": "g", "$set": {}}]);
        assert!(matches!(
            decode_groups("", body.to_string().as_bytes()),
            Err(IngestError::BadRequest(_))
        ));
    }
}
