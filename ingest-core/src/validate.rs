//! Turns an [`EventDraft`] into a canonical [`Event`], or says exactly which
//! fields are wrong. Every dialect ends here, so every limit is checked once.

use crate::auth::KeyKind;
use crate::dedup::{is_valid_insert_id, missing_insert_id, Content};
use crate::error::FieldError;
use crate::event::{Dialect, Event, EventDraft, PageContext, RequestContext};
use crate::limits::*;
use crate::profile::{ProfileDraft, ProfileOp, ProfileUpdate};
use crate::time::{check_window, parse_time, parse_time_ms, TimeUnit, DAY_MS, HOUR_MS};
use serde_json::{Map, Value};

/// Everything validation needs besides the draft.
pub struct Context<'a> {
    pub project: &'a str,
    pub dialect: Dialect,
    /// The kind of key that opened the request: a public token may only
    /// send recent events (see [`recent_window`]).
    pub key: KeyKind,
    pub request: &'a RequestContext,
    /// Device id for events that carry neither a distinct_id nor a device id
    /// (the cookieless daily visitor hash).
    pub anonymous_id: Option<&'a str>,
}

/// What a route knows of a request once its key is checked, the same for
/// every dialect. Each dialect's `finish` adds its own [`Dialect`] through
/// [`Admission::as_dialect`], so a route never names one.
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    pub project: &'a str,
    pub key: KeyKind,
    pub request: &'a RequestContext,
    /// The cookieless daily visitor hash, when the route computed one.
    pub anonymous_id: Option<&'a str>,
}

impl<'a> Admission<'a> {
    /// The request seen through `dialect`; `keep_anonymous` says whether
    /// the cookieless id may stand in for a missing identity there.
    pub fn as_dialect(&self, dialect: Dialect, keep_anonymous: bool) -> Context<'a> {
        Context {
            project: self.project,
            dialect,
            key: self.key,
            request: self.request,
            anonymous_id: self.anonymous_id.filter(|_| keep_anonymous),
        }
    }
}

pub fn finish(draft: EventDraft, index: usize, cx: &Context<'_>) -> Result<Event, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: &str| errors.push(FieldError::new(index, field, message));

    let name = match draft.name.as_ref() {
        Some(Value::String(s)) if s.trim().is_empty() => {
            fail("event", "must not be empty");
            String::new()
        }
        Some(Value::String(s)) if s.chars().count() > MAX_EVENT_NAME_CHARS => {
            fail("event", &format!("is longer than {MAX_EVENT_NAME_CHARS} characters"));
            String::new()
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => {
            fail("event", "must be a string");
            String::new()
        }
        None => {
            fail("event", "is required");
            String::new()
        }
    };

    let distinct_id = id_field(draft.distinct_id.as_ref(), "properties.distinct_id", &mut fail);
    let device_id = id_field(draft.device_id.as_ref(), "properties.$device_id", &mut fail).or_else(|| {
        if distinct_id.is_none() {
            cx.anonymous_id.map(str::to_owned)
        } else {
            None
        }
    });
    let distinct_id = match distinct_id.or_else(|| device_id.clone()) {
        Some(id) => id,
        // Mixpanel's `/track` takes events of nobody in particular (without
        // `ip=1` nothing stands in for the id): they keep an empty one.
        None if cx.dialect == Dialect::MixpanelTrack => String::new(),
        None => {
            fail("properties.distinct_id", "is required");
            String::new()
        }
    };

    let now_ms = cx.request.received_at_ms;
    let unit = TimeUnit::of(cx.dialect);
    let time_ms = match draft.time.as_ref() {
        None | Some(Value::Null) => now_ms,
        Some(raw) => match parse_time(raw, unit).and_then(|t| check_window(t, now_ms)) {
            Ok(t) => match recent_window(cx) {
                Some(window) if t < now_ms - window.max_age_ms => {
                    fail("properties.time", &window.message);
                    0
                }
                _ => t,
            },
            Err(e) => {
                fail("properties.time", e.message_for(unit));
                0
            }
        },
    };

    let insert_id = match draft.insert_id.as_ref() {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if is_valid_insert_id(s) => Some(s.clone()),
        Some(_) => {
            fail(
                "properties.$insert_id",
                &format!("must be at most {MAX_INSERT_ID_CHARS} characters of letters, digits and '-'"),
            );
            None
        }
    };

    check_map(&draft.properties, index, "properties", &mut errors);
    check_revenue(draft.properties.get(REVENUE_PROPERTY), index, &mut errors);
    check_page(&draft.page, index, &mut errors);

    if !errors.is_empty() {
        let id = echoed_insert_id(draft.insert_id.as_ref());
        for e in &mut errors {
            e.insert_id.clone_from(&id);
        }
        return Err(errors);
    }

    let insert_id = insert_id.unwrap_or_else(|| {
        let content = Content {
            project: cx.project,
            name: &name,
            distinct_id: &distinct_id,
            raw_time: draft.time.as_ref(),
            properties: &draft.properties,
        };
        missing_insert_id(cx.dialect, &cx.request.request_id, index, content)
    });
    let event = Event {
        project: cx.project.to_owned(),
        name,
        distinct_id,
        device_id,
        time_ms,
        insert_id,
        page: draft.page,
        properties: draft.properties,
        source: cx.dialect,
        received_at_ms: cx.request.received_at_ms,
        user_agent: cx.request.user_agent.clone(),
        country: cx.request.country.clone(),
        region: cx.request.region.clone(),
        city: cx.request.city.clone(),
    };
    let size = serialized_len(&event);
    if size > MAX_EVENT_BYTES {
        let mut e = FieldError::new(
            index,
            "properties",
            format!("event is larger than {MAX_EVENT_BYTES} bytes"),
        );
        e.insert_id = Some(event.insert_id);
        return Err(vec![e]);
    }
    Ok(event)
}

/// How far back a request may date its events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecentWindow {
    pub max_age_ms: i64,
    pub message: String,
}

/// The window for the key and API of a request: the secret key keeps the
/// full range (from 1971); a public token may rewrite no history older than
/// [`MAX_PUBLIC_EVENT_AGE_MS`], and Mixpanel's classic `/track` documents
/// three hours.
pub fn recent_window(cx: &Context<'_>) -> Option<RecentWindow> {
    match (cx.key, cx.dialect) {
        (KeyKind::Secret, _) => None,
        (KeyKind::Public, Dialect::MixpanelTrack) => Some(RecentWindow {
            max_age_ms: MAX_TRACK_AGE_MS,
            message: format!(
                "is more than {} hours in the past; send older events to /import",
                MAX_TRACK_AGE_MS / HOUR_MS
            ),
        }),
        // A viewer key never ingests; were it to, the strictest window.
        (KeyKind::Public | KeyKind::Viewer, _) => Some(RecentWindow {
            max_age_ms: MAX_PUBLIC_EVENT_AGE_MS,
            message: format!(
                "is more than {} days in the past; send older events with the secret key",
                MAX_PUBLIC_EVENT_AGE_MS / DAY_MS
            ),
        }),
    }
}

/// Bytes of `value` as JSON, counted as serde_json writes them instead of
/// kept: the size cap needs the length, not a second copy of every event.
/// A value serde_json cannot write counts as too large.
pub(crate) fn serialized_len(value: &impl serde::Serialize) -> usize {
    struct Counter(usize);
    impl std::io::Write for Counter {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len();
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut counter = Counter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// Validates every draft of a request: the good events and all field errors,
/// so a dialect can choose all-or-nothing or partial success.
pub fn finish_all(drafts: Vec<EventDraft>, cx: &Context<'_>) -> (Vec<Event>, Vec<FieldError>) {
    let mut events = Vec::with_capacity(drafts.len());
    let mut errors = Vec::new();
    for (index, draft) in drafts.into_iter().enumerate() {
        match finish(draft, index, cx) {
            Ok(event) => events.push(event),
            Err(mut problems) => errors.append(&mut problems),
        }
    }
    (events, errors)
}

/// [`finish_all`] for dialects that refuse some items while decoding (they
/// stay in place, so indices remain those of the request) or that have rules
/// of their own: `extra` may add errors for a draft, which then also fails.
/// Errors come in request order, each carrying the event's `$insert_id`.
pub fn finish_each<I, F>(items: I, cx: &Context<'_>, mut extra: F) -> (Vec<Event>, Vec<FieldError>)
where
    I: IntoIterator<Item = Result<EventDraft, Vec<FieldError>>>,
    F: FnMut(usize, &EventDraft) -> Vec<FieldError>,
{
    let mut events = Vec::new();
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let draft = match item {
            Ok(draft) => draft,
            Err(refused) => {
                errors.extend(refused);
                continue;
            }
        };
        let own = extra(index, &draft);
        let id = echoed_insert_id(draft.insert_id.as_ref());
        let mut found = match finish(draft, index, cx) {
            Ok(event) if own.is_empty() => {
                events.push(event);
                continue;
            }
            Ok(_) => Vec::new(),
            Err(found) => found,
        };
        // A dialect rule may restate a shared one ("is required"); say it once.
        for e in own {
            if !found.iter().any(|f| f.field == e.field && f.message == e.message) {
                found.push(e);
            }
        }
        for e in &mut found {
            if e.insert_id.is_none() {
                e.insert_id.clone_from(&id);
            }
        }
        errors.extend(found);
    }
    (events, errors)
}

/// Turns a [`ProfileDraft`] into a queued [`ProfileUpdate`], holding every
/// operation's values to the same limits as event properties (a profile
/// update travels through the same queue as events).
pub fn finish_profile(draft: ProfileDraft, index: usize, cx: &Context<'_>) -> Result<ProfileUpdate, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: &str| errors.push(FieldError::new(index, field, message));

    // Profiles need a known user: the cookieless id changes daily, so a
    // profile under it would be lost by tomorrow.
    let distinct_id = id_field(draft.distinct_id.as_ref(), "distinct_id", &mut fail);
    if distinct_id.is_none() && is_blank(draft.distinct_id.as_ref()) {
        fail("distinct_id", "is required");
    }
    let time_ms = match draft.time.as_ref() {
        None | Some(Value::Null) => cx.request.received_at_ms,
        Some(raw) => match parse_time_ms(raw).and_then(|t| check_window(t, cx.request.received_at_ms)) {
            Ok(t) => t,
            Err(e) => {
                fail("time", e.message());
                0
            }
        },
    };
    if draft.ops.is_empty() {
        fail("ops", "at least one profile operation is required");
    }
    for op in &draft.ops {
        match op {
            ProfileOp::Set(map)
            | ProfileOp::SetOnce(map)
            | ProfileOp::Append(map)
            | ProfileOp::Union(map)
            | ProfileOp::Remove(map) => check_map(map, index, op.key(), &mut errors),
            ProfileOp::Add(map) => {
                check_map(map, index, op.key(), &mut errors);
                for (key, value) in map {
                    if !value.is_number() {
                        errors.push(FieldError::new(
                            index,
                            format!("$add.{}", short(key)),
                            "must be a number",
                        ));
                    }
                }
            }
            ProfileOp::Unset(keys) => {
                if keys.len() > MAX_PROPERTIES {
                    errors.push(FieldError::new(
                        index,
                        "$unset",
                        format!("has more than {MAX_PROPERTIES} keys"),
                    ));
                }
                if keys.iter().any(|k| k.chars().count() > MAX_PROPERTY_KEY_CHARS) {
                    errors.push(FieldError::new(
                        index,
                        "$unset",
                        format!("has a key longer than {MAX_PROPERTY_KEY_CHARS} characters"),
                    ));
                }
            }
            ProfileOp::Delete => {}
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let update = ProfileUpdate {
        project: cx.project.to_owned(),
        distinct_id: distinct_id.unwrap_or_default(),
        ops: draft.ops,
        time_ms,
        received_at_ms: cx.request.received_at_ms,
    };
    let size = serialized_len(&update);
    if size > MAX_EVENT_BYTES {
        return Err(vec![FieldError::new(
            index,
            "ops",
            format!("profile update is larger than {MAX_EVENT_BYTES} bytes"),
        )]);
    }
    Ok(update)
}

/// Checks a map of client values against the property limits: key count,
/// key length, string length and nesting. `field` names the map in errors.
pub fn check_map(map: &Map<String, Value>, index: usize, field: &str, errors: &mut Vec<FieldError>) {
    if map.len() > MAX_PROPERTIES {
        errors.push(FieldError::new(
            index,
            field,
            format!("has more than {MAX_PROPERTIES} properties"),
        ));
    }
    if map.keys().any(|k| k.chars().count() > MAX_PROPERTY_KEY_CHARS) {
        errors.push(FieldError::new(
            index,
            field,
            format!("has a key longer than {MAX_PROPERTY_KEY_CHARS} characters"),
        ));
    }
    for (key, value) in map {
        if let Err(problem) = check_value(value, 1) {
            errors.push(FieldError::new(index, format!("{field}.{}", short(key)), problem));
        }
    }
}

fn id_field(value: Option<&Value>, field: &str, fail: &mut impl FnMut(&str, &str)) -> Option<String> {
    let id = match value? {
        Value::Null => return None,
        Value::String(s) => s.clone(),
        // Several SDKs send numeric user ids; they are ids all the same.
        Value::Number(n) => n.to_string(),
        _ => {
            fail(field, "must be a string");
            return None;
        }
    };
    if id.is_empty() {
        return None;
    }
    if id.chars().count() > MAX_ID_CHARS {
        fail(field, &format!("is longer than {MAX_ID_CHARS} characters"));
        return None;
    }
    Some(id)
}

/// The `$insert_id` a client sent, to name its event in error replies, when
/// it is at most 255 characters. A wrong id is still echoed so the client can
/// find the event, but not a huge one: it is copied into every error of its
/// event, and a megabyte id with a few thousand errors took gigabytes.
fn echoed_insert_id(value: Option<&Value>) -> Option<String> {
    value
        .and_then(Value::as_str)
        .filter(|id| id.chars().count() <= MAX_ID_CHARS)
        .map(str::to_owned)
}

/// Absent, null or empty: nothing was sent, as opposed to something wrong.
fn is_blank(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// Checks string lengths and nesting below a property value.
fn check_value(value: &Value, depth: usize) -> Result<(), String> {
    match value {
        Value::String(s) if s.chars().count() > MAX_STRING_CHARS => {
            Err(format!("string is longer than {MAX_STRING_CHARS} characters"))
        }
        Value::Array(items) => {
            if depth + 1 > MAX_JSON_DEPTH {
                return Err(format!("is nested more than {MAX_JSON_DEPTH} levels deep"));
            }
            items.iter().try_for_each(|v| check_value(v, depth + 1))
        }
        Value::Object(map) => {
            if depth + 1 > MAX_JSON_DEPTH {
                return Err(format!("is nested more than {MAX_JSON_DEPTH} levels deep"));
            }
            if map.len() > MAX_PROPERTIES {
                return Err(format!("has more than {MAX_PROPERTIES} keys"));
            }
            map.values().try_for_each(|v| check_value(v, depth + 1))
        }
        _ => Ok(()),
    }
}

/// The property that carries an event's revenue, as our tracker sends it:
/// `{"amount": 15.99, "currency": "USD"}`.
pub const REVENUE_PROPERTY: &str = "$revenue";

/// Checks `$revenue` when an event has it, so that the dashboard can sum
/// it: an object of exactly `amount`, a number whose absolute value is below
/// [`REVENUE_AMOUNT_LIMIT`], and `currency`, three ASCII capital letters
/// (an ISO 4217 code).
fn check_revenue(revenue: Option<&Value>, index: usize, errors: &mut Vec<FieldError>) {
    let Some(revenue) = revenue else { return };
    let Some(fields) = revenue.as_object() else {
        errors.push(FieldError::new(
            index,
            "properties.$revenue",
            "must be an object with amount and currency",
        ));
        return;
    };
    if fields.keys().any(|k| k != "amount" && k != "currency") {
        errors.push(FieldError::new(
            index,
            "properties.$revenue",
            "may hold only amount and currency",
        ));
    }
    match fields.get("amount").and_then(Value::as_f64) {
        Some(amount) if amount.is_finite() && amount.abs() < REVENUE_AMOUNT_LIMIT => {}
        Some(_) => errors.push(FieldError::new(
            index,
            "properties.$revenue.amount",
            format!("must be below 10^{} in absolute value", REVENUE_AMOUNT_LIMIT.log10()),
        )),
        None => errors.push(FieldError::new(index, "properties.$revenue.amount", "must be a number")),
    }
    match fields.get("currency").and_then(Value::as_str) {
        Some(code) if code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()) => {}
        _ => errors.push(FieldError::new(
            index,
            "properties.$revenue.currency",
            "must be three capital letters (ISO 4217)",
        )),
    }
}

fn check_page(page: &PageContext, index: usize, errors: &mut Vec<FieldError>) {
    for (field, value) in [
        ("url", &page.url),
        ("referrer", &page.referrer),
        ("title", &page.title),
        ("screen", &page.screen),
    ] {
        if value.as_ref().is_some_and(|v| v.chars().count() > MAX_STRING_CHARS) {
            errors.push(FieldError::new(
                index,
                field,
                format!("is longer than {MAX_STRING_CHARS} characters"),
            ));
        }
    }
}

/// Keys in error messages are cut so that a hostile key cannot bloat them.
fn short(key: &str) -> String {
    key.chars().take(64).collect()
}

/// Takes a string field out of a properties map if it is a string.
pub fn take_string(props: &mut Map<String, Value>, key: &str) -> Option<String> {
    match props.get(key) {
        Some(Value::String(_)) => match props.remove(key) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_790_000_000_000;

    fn request() -> RequestContext {
        RequestContext {
            received_at_ms: NOW,
            user_agent: Some("Mozilla/5.0".into()),
            ..Default::default()
        }
    }

    fn run(draft: EventDraft) -> Result<Event, Vec<FieldError>> {
        let req = request();
        let cx = Context {
            project: "p",
            dialect: Dialect::Browser,
            key: KeyKind::Secret,
            request: &req,
            anonymous_id: None,
        };
        finish(draft, 3, &cx)
    }

    fn draft() -> EventDraft {
        EventDraft {
            name: Some(json!("Signed Up")),
            distinct_id: Some(json!("u1")),
            ..Default::default()
        }
    }

    fn fields(result: Result<Event, Vec<FieldError>>) -> Vec<String> {
        result.err().unwrap_or_default().into_iter().map(|e| e.field).collect()
    }

    /// A public token's events at and just past its window; the secret key
    /// keeps the whole range back to 1971.
    #[test]
    fn public_tokens_send_recent_events_only() {
        let req = request();
        let at = |key: KeyKind, dialect: Dialect, time_ms: i64| {
            let mut d = draft();
            // Seconds below the boundary (1971 in milliseconds reads as
            // seconds), except where the API reads milliseconds only.
            let seconds_rule = TimeUnit::of(dialect) == TimeUnit::SecondsOrMilliseconds;
            d.time = Some(if seconds_rule && (time_ms as f64) < SECONDS_MS_BOUNDARY {
                json!(time_ms / 1000)
            } else {
                json!(time_ms)
            });
            let cx = Context {
                project: "p",
                dialect,
                key,
                request: &req,
                anonymous_id: None,
            };
            finish(d, 0, &cx).map(|e| e.time_ms).map_err(|e| e[0].message.clone())
        };
        for dialect in [Dialect::Browser, Dialect::Vemetric, Dialect::EmpMix] {
            let edge = NOW - MAX_PUBLIC_EVENT_AGE_MS;
            assert_eq!(at(KeyKind::Public, dialect, edge), Ok(edge));
            assert_eq!(
                at(KeyKind::Public, dialect, edge - 1),
                Err("is more than 7 days in the past; send older events with the secret key".into())
            );
        }
        let edge = NOW - MAX_TRACK_AGE_MS;
        assert_eq!(at(KeyKind::Public, Dialect::MixpanelTrack, edge), Ok(edge));
        assert!(at(KeyKind::Public, Dialect::MixpanelTrack, edge - 1).is_err_and(|m| m.contains("3 hours")));
        for dialect in [Dialect::MixpanelImport, Dialect::EmpMix, Dialect::Crm] {
            assert_eq!(at(KeyKind::Secret, dialect, MIN_EVENT_TIME_MS), Ok(MIN_EVENT_TIME_MS));
        }
    }

    #[test]
    fn minimal_event_gets_defaults() {
        let event = run(draft()).expect("valid");
        assert_eq!(event.name, "Signed Up");
        assert_eq!(event.distinct_id, "u1");
        assert_eq!(event.time_ms, NOW);
        assert_eq!(event.insert_id.len(), 32);
        assert_eq!(event.project, "p");
        assert_eq!(event.user_agent.as_deref(), Some("Mozilla/5.0"));
    }

    #[test]
    fn errors_name_the_event_index_and_field() {
        let mut d = draft();
        d.name = None;
        d.time = Some(json!("yesterday"));
        let errors = run(d).err().unwrap_or_default();
        assert_eq!(errors.len(), 2);
        assert!(errors.iter().all(|e| e.index == 3));
        assert_eq!(errors[0].field, "event");
        assert_eq!(errors[1].field, "properties.time");
    }

    #[test]
    fn event_name_at_and_past_limit() {
        let mut d = draft();
        d.name = Some(json!("n".repeat(MAX_EVENT_NAME_CHARS)));
        assert!(run(d.clone()).is_ok());
        d.name = Some(json!("n".repeat(MAX_EVENT_NAME_CHARS + 1)));
        assert_eq!(fields(run(d)), ["event"]);
    }

    #[test]
    fn distinct_id_at_and_past_limit_and_numeric() {
        let mut d = draft();
        d.distinct_id = Some(json!("u".repeat(MAX_ID_CHARS)));
        assert!(run(d.clone()).is_ok());
        d.distinct_id = Some(json!("u".repeat(MAX_ID_CHARS + 1)));
        assert!(fields(run(d.clone())).contains(&"properties.distinct_id".to_string()));
        d.distinct_id = Some(json!(42));
        assert_eq!(run(d).map(|e| e.distinct_id).ok().as_deref(), Some("42"));
    }

    #[test]
    fn missing_identity_uses_device_then_anonymous_then_fails() {
        let mut d = draft();
        d.distinct_id = None;
        d.device_id = Some(json!("dev-1"));
        let e = run(d.clone()).expect("device id is enough");
        assert_eq!(
            (e.distinct_id.as_str(), e.device_id.as_deref()),
            ("dev-1", Some("dev-1"))
        );

        d.device_id = None;
        assert_eq!(fields(run(d.clone())), ["properties.distinct_id"]);

        let req = request();
        let cx = Context {
            project: "p",
            dialect: Dialect::Browser,
            key: KeyKind::Secret,
            request: &req,
            anonymous_id: Some("v-hash"),
        };
        let e = finish(d, 0, &cx).expect("cookieless id fills in");
        assert_eq!(e.distinct_id, "v-hash");
    }

    #[test]
    fn properties_count_at_and_past_limit() {
        let mut d = draft();
        d.properties = (0..MAX_PROPERTIES).map(|i| (format!("k{i}"), json!(i))).collect();
        assert!(run(d.clone()).is_ok());
        d.properties.insert("one-more".into(), json!(1));
        assert_eq!(fields(run(d)), ["properties"]);
    }

    #[test]
    fn string_length_at_and_past_limit() {
        let mut d = draft();
        d.properties.insert("s".into(), json!("x".repeat(MAX_STRING_CHARS)));
        assert!(run(d.clone()).is_ok());
        d.properties.insert("s".into(), json!("x".repeat(MAX_STRING_CHARS + 1)));
        assert_eq!(fields(run(d)), ["properties.s"]);
        let mut d = draft();
        d.page.url = Some("u".repeat(MAX_STRING_CHARS + 1));
        assert_eq!(fields(run(d)), ["url"]);
    }

    #[test]
    fn key_length_at_and_past_limit() {
        let mut d = draft();
        d.properties.insert("k".repeat(MAX_PROPERTY_KEY_CHARS), json!(1));
        assert!(run(d.clone()).is_ok());
        d.properties.insert("k".repeat(MAX_PROPERTY_KEY_CHARS + 1), json!(1));
        assert_eq!(fields(run(d)), ["properties"]);
    }

    fn nested(levels: usize) -> Value {
        (0..levels).fold(json!(1), |inner, _| json!({ "n": inner }))
    }

    #[test]
    fn nesting_at_and_past_limit() {
        // The property value sits at depth 1 (inside `properties`).
        let mut d = draft();
        d.properties.insert("deep".into(), nested(MAX_JSON_DEPTH - 1));
        assert!(run(d.clone()).is_ok());
        d.properties.insert("deep".into(), nested(MAX_JSON_DEPTH));
        assert_eq!(fields(run(d)), ["properties.deep"]);
    }

    #[test]
    fn insert_id_kept_checked_or_derived() {
        let mut d = draft();
        d.insert_id = Some(json!("abc-123"));
        assert_eq!(run(d.clone()).map(|e| e.insert_id).ok().as_deref(), Some("abc-123"));
        d.insert_id = Some(json!("bad id!"));
        let errors = run(d).err().unwrap_or_default();
        assert_eq!(errors[0].field, "properties.$insert_id");
        assert_eq!(errors[0].insert_id.as_deref(), Some("bad id!"));
        // Without one, the dialect's rule decides (dedup.rs): here, in the
        // browser dialect, a millisecond client time makes resends one event.
        let mut timed = draft();
        timed.time = Some(json!(NOW - 5));
        assert_eq!(
            run(timed.clone()).map(|e| e.insert_id).ok(),
            run(timed).map(|e| e.insert_id).ok()
        );
    }

    #[test]
    fn only_mixpanel_track_keeps_an_event_of_nobody() {
        let req = request();
        let nobody = EventDraft {
            name: Some(json!("ping")),
            ..Default::default()
        };
        for dialect in [Dialect::Browser, Dialect::MixpanelImport, Dialect::Vemetric] {
            let cx = Context {
                project: "p",
                dialect,
                key: KeyKind::Public,
                request: &req,
                anonymous_id: None,
            };
            let errors = finish(nobody.clone(), 0, &cx).err().unwrap_or_default();
            assert_eq!(errors[0].field, "properties.distinct_id", "{dialect:?}");
        }
        let cx = Context {
            project: "p",
            dialect: Dialect::MixpanelTrack,
            key: KeyKind::Public,
            request: &req,
            anonymous_id: None,
        };
        let event = finish(nobody, 0, &cx).expect("kept");
        assert_eq!((event.distinct_id.as_str(), event.device_id), ("", None));
    }

    #[test]
    fn errors_echo_an_insert_id_of_at_most_255_characters() {
        // Regression: the id was cloned into every error of its event, so a
        // 1 MB id and 500 nesting errors (a 1 MB /collect body) took about
        // 2 GB and a 478 MB reply.
        let too_deep = nested(MAX_JSON_DEPTH);
        let errors_for = |id: String| {
            let mut d = draft();
            d.insert_id = Some(json!(id));
            for i in 0..20 {
                d.properties.insert(format!("k{i}"), too_deep.clone());
            }
            run(d).err().unwrap_or_default()
        };
        let errors = errors_for("x".repeat(MAX_ID_CHARS));
        assert_eq!(errors.len(), 21, "the id and each property");
        assert!(errors
            .iter()
            .all(|e| e.insert_id.as_ref().map(String::len) == Some(MAX_ID_CHARS)));
        let errors = errors_for("x".repeat(1_000_000));
        assert_eq!(errors.len(), 21);
        assert!(errors.iter().all(|e| e.insert_id.is_none()));
        let req = request();
        let mut d = draft();
        d.insert_id = Some(json!("y".repeat(MAX_ID_CHARS + 1)));
        let (_, errors) = finish_each([Ok(d)], &cx(&req), |i, _| vec![FieldError::new(i, "x", "rule")]);
        assert!(!errors.is_empty() && errors.iter().all(|e| e.insert_id.is_none()));
    }

    #[test]
    fn whole_event_size_at_and_past_limit() {
        // Many properties of the largest string push the event past 64 KiB.
        let mut d = draft();
        for i in 0..7 {
            d.properties
                .insert(format!("s{i}"), json!("x".repeat(MAX_STRING_CHARS)));
        }
        assert!(run(d.clone()).is_ok(), "7 x 8192 chars fit");
        d.properties.insert("s7".into(), json!("x".repeat(MAX_STRING_CHARS)));
        assert_eq!(fields(run(d)), ["properties"]);
    }

    /// A draft whose finished event serialises to exactly `target` bytes.
    /// Quotes are written as two bytes (`\"`), so the escapes count as
    /// serde_json writes them, not as characters.
    fn draft_of_size(target: usize) -> EventDraft {
        let mut d = draft();
        for i in 0..3 {
            d.properties
                .insert(format!("q{i}"), json!("\"".repeat(MAX_STRING_CHARS)));
        }
        d.properties.insert("fill".into(), json!(""));
        let base = serde_json::to_vec(&run(d.clone()).expect("the base event is valid")).map_or(0, |v| v.len());
        let need = target - base;
        let fill = format!("{}{}", "\"".repeat(need / 2), "x".repeat(need % 2));
        d.properties.insert("fill".into(), json!(fill));
        d
    }

    #[test]
    fn event_size_is_counted_as_serde_json_writes_it() {
        // The documented limit, as a literal: a wrong constant cannot move its own test.
        assert_eq!(MAX_EVENT_BYTES, 65_536);
        let at = run(draft_of_size(65_536)).expect("an event of exactly 65,536 bytes is accepted");
        let written = serde_json::to_vec(&at).map_or(0, |v| v.len());
        assert_eq!(written, 65_536);
        assert_eq!(serialized_len(&at), written);
        // Escapes and multi-byte characters count in bytes as written.
        let tricky = json!({"a": "\"\\\n\u{1}é😀", "b": [1.5, null, true]});
        assert_eq!(
            serialized_len(&tricky),
            serde_json::to_vec(&tricky).map_or(0, |v| v.len())
        );
        let past = run(draft_of_size(65_537));
        assert_eq!(fields(past), ["properties"], "65,537 bytes are refused");
    }

    #[test]
    fn times_are_normalised_to_ms() {
        let mut d = draft();
        d.time = Some(json!(1_700_000_000));
        assert_eq!(run(d.clone()).map(|e| e.time_ms).ok(), Some(1_700_000_000_000));
        d.time = Some(json!(NOW + MAX_FUTURE_SKEW_MS + 1));
        assert_eq!(fields(run(d)), ["properties.time"]);
    }

    fn cx(req: &RequestContext) -> Context<'_> {
        Context {
            project: "p",
            dialect: Dialect::MixpanelImport,
            key: KeyKind::Secret,
            request: req,
            anonymous_id: None,
        }
    }

    #[test]
    fn finish_each_keeps_indices_and_merges_dialect_rules() {
        let req = request();
        let mut bad = draft();
        bad.insert_id = Some(json!("id-2"));
        let items = vec![
            Ok(draft()),
            Err(vec![FieldError::new(1, "event", "must be an object")]),
            Ok(bad),
            Ok(EventDraft { name: None, ..draft() }),
        ];
        let (events, errors) = finish_each(items, &cx(&req), |i, _| {
            if i == 2 || i == 3 {
                vec![
                    FieldError::new(i, "event", "is required"),
                    FieldError::new(i, "x", "rule"),
                ]
            } else {
                Vec::new()
            }
        });
        assert_eq!(events.len(), 1);
        let seen: Vec<(usize, &str)> = errors.iter().map(|e| (e.index, e.field.as_str())).collect();
        // Index 3 misses its name: the shared and the dialect rule say it once.
        assert_eq!(seen, [(1, "event"), (2, "event"), (2, "x"), (3, "event"), (3, "x")]);
        assert_eq!(errors[1].insert_id.as_deref(), Some("id-2"));
    }

    fn profile(ops: Vec<ProfileOp>) -> ProfileDraft {
        ProfileDraft {
            distinct_id: Some(json!("u1")),
            time: None,
            ops,
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn profile_updates_are_checked_like_properties() {
        let req = request();
        let ok = finish_profile(profile(vec![ProfileOp::Set(map(json!({"a": 1})))]), 0, &cx(&req)).expect("valid");
        assert_eq!(
            (ok.distinct_id.as_str(), ok.time_ms, ok.project.as_str()),
            ("u1", NOW, "p")
        );

        let fields = |d: ProfileDraft| -> Vec<String> {
            finish_profile(d, 0, &cx(&req))
                .err()
                .unwrap_or_default()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(fields(profile(Vec::new())), ["ops"]);
        assert_eq!(
            fields(profile(vec![ProfileOp::Add(map(json!({"n": "1"})))])),
            ["$add.n"]
        );
        let mut d = profile(vec![ProfileOp::Delete]);
        d.distinct_id = Some(json!(""));
        d.time = Some(json!("soon"));
        assert_eq!(fields(d), ["distinct_id", "time"]);

        let keys = |n: usize| (0..n).map(|i| format!("k{i}")).collect::<Vec<_>>();
        assert!(fields(profile(vec![ProfileOp::Unset(keys(MAX_PROPERTIES))])).is_empty());
        assert_eq!(
            fields(profile(vec![ProfileOp::Unset(keys(MAX_PROPERTIES + 1))])),
            ["$unset"]
        );
        let wide = |n: usize| map(Value::Object((0..n).map(|i| (format!("k{i}"), json!(i))).collect()));
        assert!(fields(profile(vec![ProfileOp::SetOnce(wide(MAX_PROPERTIES))])).is_empty());
        assert_eq!(
            fields(profile(vec![ProfileOp::SetOnce(wide(MAX_PROPERTIES + 1))])),
            ["$set_once"]
        );
    }

    #[test]
    fn profile_update_size_at_and_past_limit() {
        let req = request();
        let big = |n: usize| {
            let values = (0..n)
                .map(|i| (format!("s{i}"), json!("x".repeat(MAX_STRING_CHARS))))
                .collect();
            profile(vec![ProfileOp::Set(values)])
        };
        assert!(finish_profile(big(7), 0, &cx(&req)).is_ok());
        let errors = finish_profile(big(8), 0, &cx(&req)).err().unwrap_or_default();
        assert_eq!(errors.first().map(|e| e.field.as_str()), Some("ops"));
    }

    fn with_revenue(revenue: Value) -> Result<Event, Vec<FieldError>> {
        let mut d = draft();
        d.properties.insert(REVENUE_PROPERTY.into(), revenue);
        run(d)
    }

    #[test]
    fn revenue_is_stored_when_well_formed() {
        let event = with_revenue(json!({"amount": 15.99, "currency": "USD"})).expect("valid");
        assert_eq!(event.properties["$revenue"]["amount"], 15.99);
        assert_eq!(event.properties["$revenue"]["currency"], "USD");
        assert!(
            with_revenue(json!({"amount": -5, "currency": "EUR"})).is_ok(),
            "a refund"
        );
        assert!(run(draft()).is_ok(), "no revenue, no check");
    }

    #[test]
    fn revenue_amount_at_and_past_limit() {
        let amount = |a: f64| with_revenue(json!({"amount": a, "currency": "EUR"}));
        let below = 999_999_999_999.99;
        assert!(below < REVENUE_AMOUNT_LIMIT);
        assert!(amount(below).is_ok());
        assert!(amount(-below).is_ok());
        assert_eq!(fields(amount(REVENUE_AMOUNT_LIMIT)), ["properties.$revenue.amount"]);
        assert_eq!(fields(amount(-REVENUE_AMOUNT_LIMIT)), ["properties.$revenue.amount"]);
        assert_eq!(
            fields(with_revenue(json!({"amount": "15.99", "currency": "EUR"}))),
            ["properties.$revenue.amount"],
            "a number, not text"
        );
    }

    #[test]
    fn revenue_currency_and_shape() {
        let currency = |c: Value| fields(with_revenue(json!({"amount": 1, "currency": c})));
        assert!(currency(json!("JPY")).is_empty());
        for bad in [
            json!("eur"),
            json!("EU"),
            json!("EURO"),
            json!("E1R"),
            json!("ÉUR"),
            json!(978),
            json!(null),
        ] {
            assert_eq!(currency(bad.clone()), ["properties.$revenue.currency"], "{bad}");
        }
        assert_eq!(fields(with_revenue(json!(15.99))), ["properties.$revenue"]);
        assert_eq!(fields(with_revenue(json!([15.99, "EUR"]))), ["properties.$revenue"]);
        assert_eq!(
            fields(with_revenue(json!({"amount": 1, "currency": "EUR", "tax": 0.2}))),
            ["properties.$revenue"]
        );
        assert_eq!(
            fields(with_revenue(json!({"currency": "EUR"}))),
            ["properties.$revenue.amount"]
        );
    }
}
