//! What Mixpanel itself checks and decides: `mp_funnel`'s properties,
//! `/import`'s required fields and placeholder ids, who stands in for a
//! missing id, and what an `/import` stores and answers.

use super::reply::failed_validation;
use super::{EventItem, ImportOutcome, ImportParams, Imported, ProfileItem, TrackParams};
use crate::dialect::Reply;
use crate::error::FieldError;
use crate::event::{Dialect, Event, EventDraft};
use crate::identity::merge_link;
use crate::profile::ProfileUpdate;
use crate::time::parse_time_ms;
use crate::validate::{finish_each, finish_profile, Admission};
use serde_json::Value;

/// Validates `/track` events: the shared rules (which hold `/track` to
/// events at most three hours old: `validate::recent_window`), then
/// `mp_funnel`'s properties. The request's country is dropped for `ip=0`.
///
/// An event without a distinct_id (or `$device_id`): seed 002 says `ip=1`
/// makes the request's address "the substitute for the distinct_id
/// parameter if one is not specified", so with `ip=1` the cookieless
/// visitor hash (the address hashed with a daily salt, never stored) stands
/// in. Without `ip=1` (absent or `ip=0`) nothing does: Mixpanel takes such
/// an event as nobody's, and it is kept with an empty distinct_id, counted
/// as no visitor. (Before, every server sending `ip=0` collapsed into one
/// visitor per address and agent.)
pub fn finish_track(
    items: Vec<EventItem>,
    params: &TrackParams,
    admitted: &Admission<'_>,
) -> (Vec<Event>, Vec<FieldError>) {
    let request = if params.geolocate {
        admitted.request.clone()
    } else {
        admitted.request.without_location()
    };
    let cx = Admission {
        request: &request,
        ..*admitted
    }
    .as_dialect(Dialect::MixpanelTrack, params.ip);
    finish_each(items, &cx, funnel_rules)
}

/// Validates `/import` events: the shared rules, plus the fields `/import`
/// requires and Mixpanel's refusal of placeholder ids. No cookieless
/// stand-in: imports come from servers. `ip=0` drops the request's country.
/// `$merge` events become identity links, not events
/// ([`crate::identity::merge_link`]).
pub fn finish_import(items: Vec<EventItem>, params: &ImportParams, admitted: &Admission<'_>) -> Imported {
    let request = if params.skip_geolocation {
        admitted.request.without_location()
    } else {
        admitted.request.clone()
    };
    let cx = Admission {
        request: &request,
        ..*admitted
    }
    .as_dialect(Dialect::MixpanelImport, false);
    let mut links = Vec::new();
    let mut merge_errors = Vec::new();
    // A `$merge` leaves the list as nothing (neither event nor error), so
    // the other items keep their indices.
    let items: Vec<EventItem> = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item {
            Ok(draft) if draft.name.as_ref().and_then(Value::as_str) == Some("$merge") => {
                let time_ms = draft
                    .time
                    .as_ref()
                    .and_then(|t| parse_time_ms(t).ok())
                    .unwrap_or(request.received_at_ms);
                match merge_link(cx.project, &draft.properties, time_ms, index) {
                    Ok(link) => links.push(link),
                    Err(error) => merge_errors.push(error),
                }
                Err(Vec::new())
            }
            other => other,
        })
        .collect();
    let (events, mut errors) = finish_each(items, &cx, |index, draft| {
        let mut errors = import_rules(index, draft, params.legacy);
        errors.extend(funnel_rules(index, draft));
        errors
    });
    errors.extend(merge_errors);
    errors.sort_by_key(|e| e.index);
    Imported { events, links, errors }
}

/// Decides what an `/import` request stores and answers, so that no reply
/// claims what was not stored:
///
/// - the older `data=` import (Python, Node): all or nothing. One invalid
///   event and nothing is stored, the answer is `0` (or `status: 0` with
///   the failed records); otherwise `1` (or `status: 1`). Storing the valid
///   part of a batch the client reads as failed would double it on retry,
///   since these events often carry no `$insert_id`.
/// - JSON (seed 001): the valid events are stored; `strict=1` or
///   `verbose=1` answer 400 with `failed_records` and `status: 0` when any
///   failed, otherwise `num_records_imported` says how many were taken.
///
/// A `$merge` counts as one imported record.
pub fn settle_import(params: &ImportParams, imported: Imported) -> ImportOutcome {
    let Imported { events, links, errors } = imported;
    let count = events.len() + links.len();
    if params.legacy && !errors.is_empty() {
        let reply = if params.verbose {
            failed_validation(params, 0, &errors)
        } else {
            Reply::text(400, "0")
        };
        return ImportOutcome {
            events: Vec::new(),
            links: Vec::new(),
            reply,
        };
    }
    let reply = if !errors.is_empty() && (params.strict || params.verbose) {
        failed_validation(params, count, &errors)
    } else if params.legacy && !params.verbose {
        Reply::text(200, "1")
    } else {
        super::import_reply(params, count, &errors)
    };
    ImportOutcome { events, links, reply }
}

/// Validates `/engage` updates and adds what Mixpanel adds itself:
/// `$last_seen` and the profile's country (see
/// [`crate::dialect::mixpanel_people::stamp`]).
pub fn finish_engage(
    items: Vec<ProfileItem>,
    params: &TrackParams,
    admitted: &Admission<'_>,
) -> (Vec<ProfileUpdate>, Vec<FieldError>) {
    let cx = admitted.as_dialect(Dialect::MixpanelEngage, false);
    let country = cx.request.country.as_deref().filter(|_| params.geolocate);
    let mut updates = Vec::new();
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let finished = item.and_then(|draft| {
            let modifiers = (draft.ignore_time, draft.ip);
            finish_profile(draft.profile, index, &cx).map(|update| (update, modifiers))
        });
        match finished {
            Ok((mut update, (ignore_time, ip))) => {
                crate::dialect::mixpanel_people::stamp(&mut update, ignore_time, ip.as_deref(), country);
                updates.push(update);
            }
            Err(found) => errors.extend(found),
        }
    }
    (updates, errors)
}

/// The event `mp_funnel` carries `step` (a whole number from 1), `funnel`
/// and `goal` (non-empty strings).
fn funnel_rules(index: usize, draft: &EventDraft) -> Vec<FieldError> {
    if draft.name.as_ref().and_then(Value::as_str) != Some("mp_funnel") {
        return Vec::new();
    }
    let mut errors = Vec::new();
    let props = &draft.properties;
    match props.get("step") {
        Some(step) if step.as_u64().is_some_and(|s| s >= 1) => {}
        None | Some(Value::Null) => errors.push(FieldError::new(index, "properties.step", "is required")),
        Some(_) => errors.push(FieldError::new(
            index,
            "properties.step",
            "must be a whole number of at least 1",
        )),
    }
    for key in ["funnel", "goal"] {
        let field = format!("properties.{key}");
        match props.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            None | Some(Value::Null) => errors.push(FieldError::new(index, field, "is required")),
            Some(_) => errors.push(FieldError::new(index, field, "must be a non-empty string")),
        }
    }
    errors
}

/// Values Mixpanel's `/import` refuses as ids: placeholders that a bug put
/// where an id should be. Compared without case.
const PLACEHOLDER_IDS: [&str; 17] = [
    "00000000-0000-0000-0000-000000000000",
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "undefined",
    "unknown",
    "<nil>",
    "0",
    "-1",
    "true",
    "false",
    "[]",
    "{}",
];

/// `time` and `distinct_id` are required; `$insert_id` too, except in the
/// older `data=` import (`legacy`), whose clients often send none: such an
/// event is kept as one occurrence, as Mixpanel keeps it.
fn import_rules(index: usize, draft: &EventDraft, legacy: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let insert_id = if legacy && draft.insert_id.as_ref().is_none_or(Value::is_null) {
        None
    } else {
        Some(("properties.$insert_id", &draft.insert_id))
    };
    for (field, value) in [
        ("properties.time", &draft.time),
        ("properties.distinct_id", &draft.distinct_id),
    ]
    .into_iter()
    .chain(insert_id)
    {
        let text = match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => Some(String::from("x")),
        };
        match text.as_deref() {
            None | Some("") => errors.push(FieldError::new(index, field, "is required")),
            Some(id) if field != "properties.time" && PLACEHOLDER_IDS.iter().any(|p| p.eq_ignore_ascii_case(id)) => {
                errors.push(FieldError::new(index, field, "is a placeholder, not an id"))
            }
            Some(_) => {}
        }
    }
    errors
}
