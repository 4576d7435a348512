//! Mixpanel's items as drafts: events (`/track`, `/import`) and profile
//! updates (`/engage`, and `/groups` through [`read_ops`]).

use super::{EngageDraft, EventItem, ProfileItem};
use crate::error::{FieldError, IngestError};
use crate::event::{EventDraft, PageContext};
use crate::profile::{ProfileDraft, ProfileOp};
use crate::validate::take_string;
use serde_json::{Map, Value};

/// The token of a request whose items each name one. Mixing projects in one
/// request is refused rather than guessed at.
pub(in crate::dialect) fn one_token(tokens: Vec<Option<String>>) -> Result<Option<String>, IngestError> {
    let mut found: Option<String> = None;
    for token in tokens.into_iter().flatten() {
        match &found {
            Some(seen) if *seen != token => {
                return Err(IngestError::BadRequest(
                    "all items of one request must carry the same token".into(),
                ))
            }
            Some(_) => {}
            None => found = Some(token),
        }
    }
    Ok(found)
}

/// An event object as a draft, and the token it carried. Reserved
/// properties move to their fields; the token and IP addresses are never
/// stored; `mp_` properties are Mixpanel's own bookkeeping and are dropped.
/// The page facts mixpanel-browser sends move into the page context.
pub(super) fn read_event(index: usize, item: Value) -> (EventItem, Option<String>) {
    let Value::Object(mut e) = item else {
        return (
            Err(vec![FieldError::new(
                index,
                "event",
                "each event must be a JSON object",
            )]),
            None,
        );
    };
    let mut properties = match e.remove("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => {
            return (
                Err(vec![FieldError::new(index, "properties", "must be an object")]),
                None,
            )
        }
    };
    let token = take_string(&mut properties, "token").filter(|t| !t.is_empty());
    properties.remove("ip");
    properties.remove("$ip");
    properties.retain(|key, _| !key.starts_with("mp_"));
    let mut text = |key: &str| take_string(&mut properties, key).filter(|s| !s.is_empty());
    let url = text("$current_url");
    let referrer = text("$referrer");
    let screen = screen(&mut properties);
    let draft = EventDraft {
        name: e.remove("event"),
        distinct_id: properties.remove("distinct_id"),
        device_id: properties.remove("$device_id"),
        time: properties.remove("time"),
        insert_id: properties.remove("$insert_id"),
        page: PageContext {
            url,
            referrer,
            title: None,
            screen,
        },
        properties,
    };
    (Ok(draft), token)
}

/// `$screen_width` and `$screen_height` as our `WIDTHxHEIGHT`, when both are
/// whole numbers; otherwise they stay properties.
fn screen(properties: &mut Map<String, Value>) -> Option<String> {
    let width = properties.get("$screen_width").and_then(Value::as_u64)?;
    let height = properties.get("$screen_height").and_then(Value::as_u64)?;
    properties.remove("$screen_width");
    properties.remove("$screen_height");
    Some(format!("{width}x{height}"))
}

/// The profile operations `/engage` takes, in the order they are applied.
///
/// JSON objects have no key order, so one that holds several operations
/// gets them in a fixed order: `$set`, `$set_once`, `$add`, `$append`,
/// `$union`, `$remove`, `$unset`, `$delete`. Writes come before removals,
/// `$set` wins over `$set_once` for the same key, and deletion is last, so
/// an update that asks to delete a profile always ends with none.
pub(in crate::dialect) const PEOPLE_OPS: [&str; 8] = [
    "$set",
    "$set_once",
    "$add",
    "$append",
    "$union",
    "$remove",
    "$unset",
    "$delete",
];

/// One `/engage` or `/groups` update object opened: its token taken out
/// (returned even when the rest is refused, so the request's token is still
/// known) and its operations among `allowed` read. The other fields are
/// left for the endpoint.
pub(in crate::dialect) type OpenedUpdate = Result<(Map<String, Value>, Vec<ProfileOp>), Vec<FieldError>>;

pub(in crate::dialect) fn open_update(index: usize, item: Value, allowed: &[&str]) -> (OpenedUpdate, Option<String>) {
    let Value::Object(mut update) = item else {
        let refused = FieldError::new(index, "update", "each update must be a JSON object");
        return (Err(vec![refused]), None);
    };
    let token = take_token(&mut update);
    let opened = read_ops(&mut update, index, allowed).map(|ops| (update, ops));
    (opened, token)
}

/// An `/engage` update object as a profile draft, and its token.
pub(super) fn read_update(index: usize, item: Value) -> (ProfileItem, Option<String>) {
    let (opened, token) = open_update(index, item, &PEOPLE_OPS);
    let (mut u, ops) = match opened {
        Ok(opened) => opened,
        Err(errors) => return (Err(errors), token),
    };
    let ignore_time = match u.remove("$ignore_time") {
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true") || s == "1",
        Some(Value::Number(n)) => n.as_f64() == Some(1.0),
        _ => false,
    };
    let ip = match u.remove("$ip") {
        Some(Value::String(ip)) => Some(ip),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let draft = EngageDraft {
        profile: ProfileDraft {
            distinct_id: u.remove("$distinct_id"),
            time: u.remove("$time"),
            ops,
        },
        ignore_time,
        ip,
    };
    (Ok(draft), token)
}

/// `$token` of an `/engage` or `/groups` update.
fn take_token(update: &mut Map<String, Value>) -> Option<String> {
    match update.remove("$token") {
        Some(Value::String(t)) if !t.is_empty() => Some(t),
        _ => None,
    }
}

/// The operations of one update, among `allowed` (in that order); every
/// malformed one is an error. An operation of [`PEOPLE_OPS`] that is not
/// allowed here is refused by name.
fn read_ops(
    update: &mut Map<String, Value>,
    index: usize,
    allowed: &[&str],
) -> Result<Vec<ProfileOp>, Vec<FieldError>> {
    let mut ops = Vec::new();
    let mut errors = Vec::new();
    for key in PEOPLE_OPS {
        let Some(value) = update.remove(key) else { continue };
        if !allowed.contains(&key) {
            errors.push(FieldError::new(index, key, "is not supported here"));
            continue;
        }
        let op = match (key, value) {
            ("$delete", _) => Some(ProfileOp::Delete),
            ("$unset", Value::Array(names)) => {
                let names: Option<Vec<String>> = names.into_iter().map(|n| n.as_str().map(str::to_owned)).collect();
                names.map(ProfileOp::Unset)
            }
            ("$unset", _) => None,
            (_, Value::Object(map)) => match key {
                "$set" => Some(ProfileOp::Set(map)),
                "$set_once" => Some(ProfileOp::SetOnce(map)),
                "$add" => Some(ProfileOp::Add(map)),
                "$append" => Some(ProfileOp::Append(map)),
                "$union" => Some(ProfileOp::Union(map)),
                _ => Some(ProfileOp::Remove(map)),
            },
            _ => None,
        };
        match op {
            Some(op) => ops.push(op),
            None if key == "$unset" => errors.push(FieldError::new(index, key, "must be an array of property names")),
            None => errors.push(FieldError::new(index, key, "must be an object")),
        }
    }
    if errors.is_empty() {
        Ok(ops)
    } else {
        Err(errors)
    }
}
