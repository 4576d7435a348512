//! Umami's tracker: `POST /api/send` with `{"type", "payload"}`.
//!
//! - `type: "event"`: a page hit when `payload.name` is absent (stored as
//!   `$pageview`), else a custom event named `name` whose properties are
//!   `payload.data`. `url` is a path (the v2 script) or a whole URL (v3),
//!   read against `https://{hostname}` as Umami reads it; `title` may be
//!   percent-encoded (the v2 script encodes it); `screen` is `WxH`;
//!   `language` and `tag` are kept as `$language` and `$tag`; `id` (v3's
//!   `umami.identify("user")`) is the distinct_id, else the visitor is the
//!   cookieless daily hash, as Umami counts sessions without cookies;
//!   `timestamp` (seconds) dates the event.
//! - `type: "identify"`: `payload.data` is set on the profile of `id` (or of
//!   the request's visitor); nothing else is stored.
//! - `type: "performance"` (v3's web vitals): accepted and not stored.
//!
//! `payload.website` names the project: a UUID listed in its
//! `umami_websites` in `PROJECTS`. Umami's links and pixels (`link`,
//! `pixel`) are not supported and refused as an unknown website.
//!
//! Answers are Umami's: `200 {"cache", "sessionId", "visitId"}`, where
//! `cache` is a JWT-shaped token. Umami signs its token and reads it back
//! from `x-umami-cache` to skip look-ups; we never read it, so ours is
//! unsigned (`alg: none`) and trusts nothing. Bots get `{"beep": "boop"}`;
//! refusals `400 {"error": {"message", "code": "bad-request", "status"}}`.

use super::Reply;
use crate::error::{FieldError, IngestError};
use crate::event::{Dialect, Event, EventDraft, PageContext};
use crate::limits::{MAX_UMAMI_HOSTNAME_CHARS, MAX_UMAMI_LANGUAGE_CHARS, MAX_UMAMI_NAME_CHARS, MAX_UMAMI_SCREEN_CHARS};
use crate::payload::parse_json;
use crate::profile::{ProfileDraft, ProfileOp, ProfileUpdate};
use crate::validate::{finish_each, finish_profile, Admission};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const PAGEVIEW: &str = "$pageview";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Event,
    Identify,
    Performance,
}

/// A decoded `/api/send`.
#[derive(Debug, Clone, PartialEq)]
pub struct UmamiRequest {
    pub kind: Kind,
    pub website: String,
    /// `id`, when the page identified its user.
    pub distinct_id: Option<String>,
    /// The event (`Kind::Event`).
    pub draft: EventDraft,
    /// `data` of an identify call.
    pub data: Map<String, Value>,
}

impl UmamiRequest {
    /// Whether the worker must work out the request's visitor id.
    pub fn needs_visitor(&self) -> bool {
        self.distinct_id.is_none()
    }
}

pub fn decode(body: &[u8]) -> Result<UmamiRequest, IngestError> {
    let Ok(Value::Object(mut root)) = parse_json(body) else {
        return Err(refused("request", "body must be a JSON object"));
    };
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: &str| errors.push(FieldError::new(0, field, message));
    let kind = match root.remove("type") {
        Some(Value::String(t)) if t == "event" => Kind::Event,
        Some(Value::String(t)) if t == "identify" => Kind::Identify,
        Some(Value::String(t)) if t == "performance" => Kind::Performance,
        _ => {
            fail("type", "must be one of \"event\", \"identify\", \"performance\"");
            Kind::Event
        }
    };
    let Some(Value::Object(mut payload)) = root.remove("payload") else {
        fail("payload", "must be an object");
        return Err(IngestError::Invalid(errors));
    };
    let mut text = |key: &str, max: Option<usize>, fail: &mut dyn FnMut(&str, &str)| match payload.remove(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match max {
            Some(max) if s.chars().count() > max => {
                fail(&format!("payload.{key}"), &format!("must be at most {max} characters"));
                None
            }
            _ => Some(s),
        },
        Some(_) => {
            fail(&format!("payload.{key}"), "must be a string");
            None
        }
    };
    let website = text("website", None, &mut fail);
    let hostname = text("hostname", Some(MAX_UMAMI_HOSTNAME_CHARS), &mut fail);
    let url = text("url", None, &mut fail);
    let referrer = text("referrer", None, &mut fail);
    let title = text("title", None, &mut fail);
    let screen = text("screen", Some(MAX_UMAMI_SCREEN_CHARS), &mut fail);
    let language = text("language", Some(MAX_UMAMI_LANGUAGE_CHARS), &mut fail);
    let name = text("name", Some(MAX_UMAMI_NAME_CHARS), &mut fail);
    let tag = text("tag", Some(MAX_UMAMI_NAME_CHARS), &mut fail);
    let id = text("id", None, &mut fail).filter(|id| !id.is_empty());
    let timestamp = match payload.remove("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) if n.is_i64() => Some(Value::Number(n)),
        Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => Some(Value::String(s)),
        Some(_) => {
            fail("payload.timestamp", "must be a whole number of seconds");
            None
        }
    };
    let data = match payload.remove("data") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data,
        Some(_) => {
            fail("payload.data", "must be an object");
            Map::new()
        }
    };
    let website = match website {
        Some(w) if crate::auth::is_uuid(&w) => w.to_ascii_lowercase(),
        Some(_) => {
            fail("payload.website", "must be a UUID");
            String::new()
        }
        None => {
            fail("payload.website", "is required (links and pixels are not supported)");
            String::new()
        }
    };
    if !errors.is_empty() {
        return Err(IngestError::Invalid(errors));
    }

    let base = format!("https://{}", hostname.as_deref().unwrap_or("localhost"));
    let page = PageContext {
        url: url.filter(|u| !u.is_empty()).map(|u| absolute(&base, &u)),
        referrer: referrer.filter(|r| !r.is_empty()).map(|r| absolute(&base, &r)),
        title: title.filter(|t| !t.is_empty()).map(|t| percent_decoded(&t)),
        screen: screen.filter(|s| !s.is_empty()),
    };
    let (name, mut properties, data) = match (kind, name) {
        (Kind::Event, Some(name)) => (name, data, Map::new()),
        (Kind::Event, None) => (PAGEVIEW.to_owned(), Map::new(), Map::new()),
        (_, name) => (name.unwrap_or_default(), Map::new(), data),
    };
    if let Some(language) = language.filter(|l| !l.is_empty()) {
        properties.insert("$language".into(), Value::String(language));
    }
    if let Some(tag) = tag.filter(|t| !t.is_empty()) {
        properties.insert("$tag".into(), Value::String(tag));
    }
    let draft = EventDraft {
        name: Some(Value::String(name)),
        distinct_id: id.clone().map(Value::String),
        time: timestamp,
        page,
        properties,
        ..EventDraft::default()
    };
    Ok(UmamiRequest {
        kind,
        website,
        distinct_id: id,
        draft,
        data,
    })
}

/// Validates an event with the shared rules.
pub fn finish_event(request: UmamiRequest, admitted: &Admission<'_>) -> Result<Event, IngestError> {
    let cx = admitted.as_dialect(Dialect::Umami, true);
    let (mut events, mut errors) = finish_each([Ok(request.draft)], &cx, |_, _| Vec::new());
    for error in &mut errors {
        error.field = field_name(&error.field);
    }
    match events.pop() {
        Some(event) if errors.is_empty() => Ok(event),
        _ => Err(IngestError::Invalid(errors)),
    }
}

/// An identify call's profile update: `data` set on the user (or on the
/// request's visitor); `None` when there is nothing to record (no user and
/// no data).
pub fn finish_identify(request: UmamiRequest, admitted: &Admission<'_>) -> Result<Option<ProfileUpdate>, IngestError> {
    let cx = admitted.as_dialect(Dialect::Umami, true);
    let op = match (request.data.is_empty(), request.distinct_id.is_some()) {
        (false, _) => ProfileOp::Set(request.data),
        // Identifying a user with nothing else to say makes sure they exist.
        (true, true) => ProfileOp::SetOnce(Map::new()),
        (true, false) => return Ok(None),
    };
    let distinct_id = request
        .distinct_id
        .or_else(|| cx.anonymous_id.map(str::to_owned))
        .map(Value::String);
    let draft = ProfileDraft {
        distinct_id,
        time: None,
        ops: vec![op],
    };
    finish_profile(draft, 0, &cx).map(Some).map_err(|mut errors| {
        for error in &mut errors {
            error.field = format!("payload.data.{}", error.field.trim_start_matches("$set."));
        }
        IngestError::Invalid(errors)
    })
}

/// Umami's answer to a call it recorded: the session and visit ids it
/// counted the call under, and a token the script sends back. `visitor` is
/// the event's distinct id; the visit id changes by the hour (Umami starts
/// a new visit after 30 minutes without a call; the dashboard's visits are
/// ours, made by the read model, not this id).
pub fn accepted(website: &str, visitor: &str, now_ms: i64) -> Reply {
    let session = uuid_of(&["umami-session", website, visitor]);
    let hour = (now_ms / crate::time::HOUR_MS).to_string();
    let visit = uuid_of(&["umami-visit", &session, &hour]);
    let claims = json!({"websiteId": website, "sessionId": session, "visitId": visit, "iat": now_ms / 1000});
    let token = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    Reply::json(200, &json!({"cache": token, "sessionId": session, "visitId": visit}))
}

/// A bot's call, dropped: Umami's answer to one.
pub fn bot() -> Reply {
    Reply::json(200, &json!({"beep": "boop"}))
}

/// A website id no project lists: Umami's 400.
pub fn unknown_website() -> Reply {
    Reply::json(
        400,
        &json!({"error": {"message": "Website not found.", "code": "bad-request", "status": 400}}),
    )
}

/// Umami's error body, `{"error": {"message", "code", "status"}}`; a
/// content refusal adds `fields`, each field with its messages.
pub fn error(err: &IngestError) -> Reply {
    let status = err.status();
    let (message, code) = match status {
        400 => ("Bad request".to_owned(), "bad-request"),
        401 => ("Unauthorized".to_owned(), "unauthorized"),
        403 => ("Forbidden".to_owned(), "forbidden"),
        404 => ("Not found".to_owned(), "not-found"),
        413 => (err.message(), "payload-too-large"),
        429 => (err.message(), "too-many-requests"),
        _ => (err.message(), "server-error"),
    };
    let mut body = json!({"message": message, "code": code, "status": status});
    match err {
        IngestError::Invalid(fields) => {
            let mut by_field = Map::new();
            for e in fields {
                if let Value::Array(list) = by_field.entry(e.field.clone()).or_insert_with(|| json!([])) {
                    list.push(Value::String(e.message.clone()));
                }
            }
            body["fields"] = Value::Object(by_field);
        }
        IngestError::BadRequest(detail) => body["fields"] = json!({"request": [detail]}),
        _ => {}
    }
    Reply::json(status, &json!({ "error": body })).retry_after_for(err)
}

fn refused(field: &str, message: &str) -> IngestError {
    IngestError::Invalid(vec![FieldError::new(0, field, message)])
}

/// A path or URL read against the page's host, as Umami's server does.
fn absolute(base: &str, raw: &str) -> String {
    match url::Url::parse(base).and_then(|b| b.join(raw)) {
        Ok(url) => url.to_string(),
        Err(_) => raw.to_owned(),
    }
}

/// `%XX` sequences decoded when they spell UTF-8 (the v2 script sends the
/// title through `encodeURIComponent`); anything else as it came.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (
            bytes[i],
            bytes.get(i + 1).copied().and_then(hex),
            bytes.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

/// A name-based id in UUID form (version 5 bits over SHA-256 of the parts,
/// each length-prefixed).
fn uuid_of(parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(format!("{}:", part.len()));
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// Our validation's field names in the payload's terms.
fn field_name(ours: &str) -> String {
    match ours {
        "event" => "payload.name".to_owned(),
        "properties.time" => "payload.timestamp".to_owned(),
        "properties.distinct_id" => "payload.id".to_owned(),
        f => match f.strip_prefix("properties.") {
            Some("$language") => "payload.language".to_owned(),
            Some("$tag") => "payload.tag".to_owned(),
            Some(key) => format!("payload.data.{key}"),
            None if f == "properties" => "payload.data".to_owned(),
            None => format!("payload.{f}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RequestContext;

    const NOW: i64 = 1_795_424_070_930;
    const SITE: &str = "4fb6a0c2-5b8e-4a62-9e47-3c1d2b0a9f10";

    fn request() -> RequestContext {
        crate::dialect::test_request::browser(NOW)
    }

    fn cx(req: &RequestContext) -> Admission<'_> {
        crate::dialect::test_request::public(req)
    }

    fn event(body: &str) -> Result<Event, IngestError> {
        let r = request();
        finish_event(decode(body.as_bytes())?, &cx(&r))
    }

    fn error_body(body: &str) -> (u16, Value) {
        let reply = error(&event(body).err().unwrap_or(IngestError::Unavailable));
        (reply.status, serde_json::from_slice(&reply.body).unwrap_or_default())
    }

    #[test]
    fn v2_script_page_hit() {
        // What umami's 2.x script.js sends on load: a path, the host apart,
        // the title percent-encoded.
        let body = format!(
            r#"{{"type":"event","payload":{{"website":"{SITE}","hostname":"shop.example","screen":"1920x1080","language":"en-US","title":"Caf%C3%A9%20%26%20more","url":"/menu?x=1","referrer":"https://www.google.com/search"}}}}"#
        );
        let request = decode(body.as_bytes()).expect("decodes");
        assert_eq!((request.kind, request.website.as_str()), (Kind::Event, SITE));
        assert!(request.needs_visitor());
        let event = event(&body).expect("valid");
        assert_eq!(event.name, PAGEVIEW);
        assert!(crate::enrich::is_pageview(&event.name));
        assert_eq!(event.page.url.as_deref(), Some("https://shop.example/menu?x=1"));
        assert_eq!(event.page.referrer.as_deref(), Some("https://www.google.com/search"));
        assert_eq!(event.page.title.as_deref(), Some("Café & more"));
        assert_eq!(event.page.screen.as_deref(), Some("1920x1080"));
        assert_eq!(event.properties["$language"], "en-US");
        assert_eq!(
            (event.distinct_id.as_str(), event.source),
            ("cl-visitor", Dialect::Umami)
        );
    }

    #[test]
    fn v3_custom_event_with_data_and_identity() {
        // umami.track("signup", {plan: "pro"}) after umami.identify("u-1") in
        // the 3.x script: a whole URL, a raw title, `id`.
        let body = format!(
            r#"{{"type":"event","payload":{{"website":"{SITE}","screen":"390x844","language":"de","title":"50% off + more","hostname":"shop.example","url":"https://shop.example/a#b","referrer":"","tag":"spring","id":"u-1","name":"signup","data":{{"plan":"pro","seats":3,"meta":{{"a":[1]}}}}}}}}"#
        );
        let event = event(&body).expect("valid");
        assert_eq!((event.name.as_str(), event.distinct_id.as_str()), ("signup", "u-1"));
        assert_eq!(event.page.title.as_deref(), Some("50% off + more"));
        assert_eq!(event.page.referrer, None);
        assert_eq!(
            Value::Object(event.properties),
            json!({"plan": "pro", "seats": 3, "meta": {"a": [1]}, "$language": "de", "$tag": "spring"})
        );
    }

    #[test]
    fn timestamp_dates_the_event() {
        let body =
            |ts: i64| format!(r#"{{"type":"event","payload":{{"website":"{SITE}","url":"/","timestamp":{ts}}}}}"#);
        assert_eq!(
            event(&body(NOW / 1000 - 60)).map(|e| e.time_ms).ok(),
            Some((NOW / 1000 - 60) * 1000)
        );
        // A public page may date events a week back at most.
        let (status, body) = error_body(&body(NOW / 1000 - 8 * 24 * 3600));
        assert_eq!(status, 400);
        assert!(body["error"]["fields"]["payload.timestamp"].is_array(), "{body}");
    }

    #[test]
    fn identify_sets_data_on_the_user_or_the_visitor() {
        let r = request();
        let body = format!(
            r#"{{"type":"identify","payload":{{"website":"{SITE}","url":"/","id":"u-1","data":{{"plan":"pro"}}}}}}"#
        );
        let request = decode(body.as_bytes()).expect("decodes");
        assert_eq!(request.kind, Kind::Identify);
        let update = finish_identify(request, &cx(&r)).expect("valid").expect("an update");
        assert_eq!(update.distinct_id, "u-1");
        let applied = crate::profile::apply(None, &update.ops).map(Value::Object);
        assert_eq!(applied, Some(json!({"plan": "pro"})));
        // The v2 script's identify(data): the request's visitor.
        let body = format!(r#"{{"type":"identify","payload":{{"website":"{SITE}","data":{{"a":1}}}}}}"#);
        let update = decode(body.as_bytes())
            .ok()
            .and_then(|q| finish_identify(q, &cx(&r)).ok().flatten());
        assert_eq!(update.map(|u| u.distinct_id).as_deref(), Some("cl-visitor"));
        // Nothing to record.
        let body = format!(r#"{{"type":"identify","payload":{{"website":"{SITE}"}}}}"#);
        assert_eq!(
            decode(body.as_bytes())
                .ok()
                .and_then(|q| finish_identify(q, &cx(&r)).ok()),
            Some(None)
        );
    }

    #[test]
    fn refusals_in_umamis_shape() {
        assert_eq!(error_body("nope").0, 400);
        let (status, body) = error_body(r#"{"type":"click","payload":{}}"#);
        assert_eq!(status, 400);
        assert_eq!(body["error"]["message"], "Bad request");
        assert_eq!(body["error"]["code"], "bad-request");
        assert!(body["error"]["fields"]["type"].is_array());
        assert!(body["error"]["fields"]["payload.website"].is_array());
        let (_, body) = error_body(r#"{"type":"event","payload":{"website":"nope"}}"#);
        assert_eq!(body["error"]["fields"]["payload.website"][0], "must be a UUID");
        let (_, body) = error_body(r#"{"type":"event"}"#);
        assert!(body["error"]["fields"]["payload"].is_array());
        let unknown = unknown_website();
        assert_eq!(unknown.status, 400);
        assert_eq!(
            serde_json::from_slice::<Value>(&unknown.body).ok(),
            Some(json!({"error": {"message": "Website not found.", "code": "bad-request", "status": 400}}))
        );
    }

    #[test]
    fn umamis_field_caps_at_and_past_their_value() {
        let with = |key: &str, n: usize| {
            format!(
                r#"{{"type":"event","payload":{{"website":"{SITE}","url":"/","{key}":"{}"}}}}"#,
                "a".repeat(n)
            )
        };
        for (key, max) in [
            ("name", MAX_UMAMI_NAME_CHARS),
            ("screen", MAX_UMAMI_SCREEN_CHARS),
            ("language", MAX_UMAMI_LANGUAGE_CHARS),
            ("hostname", MAX_UMAMI_HOSTNAME_CHARS),
        ] {
            assert!(event(&with(key, max)).is_ok(), "{key} at {max}");
            let (status, body) = error_body(&with(key, max + 1));
            assert_eq!(status, 400, "{key}");
            assert!(body["error"]["fields"][format!("payload.{key}")].is_array(), "{body}");
        }
    }

    #[test]
    fn the_answer_carries_ids_and_a_token() {
        let reply = accepted(SITE, "cl-visitor", NOW);
        assert_eq!(reply.status, 200);
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        let session = body["sessionId"].as_str().unwrap_or_default();
        let visit = body["visitId"].as_str().unwrap_or_default();
        assert!(crate::auth::is_uuid(session) && crate::auth::is_uuid(visit));
        let token = body["cache"].as_str().unwrap_or_default();
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3, "header.claims.(no signature)");
        let claims: Value = URL_SAFE_NO_PAD
            .decode(parts[1])
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        assert_eq!(claims["websiteId"], SITE);
        assert_eq!(claims["sessionId"], session);
        // Same visitor: same session; another hour: another visit.
        let again: Value = serde_json::from_slice(&accepted(SITE, "cl-visitor", NOW + 1).body).unwrap_or_default();
        assert_eq!(again["sessionId"], session);
        let later: Value =
            serde_json::from_slice(&accepted(SITE, "cl-visitor", NOW + crate::time::HOUR_MS).body).unwrap_or_default();
        assert_ne!(later["visitId"], visit);
        let bot: Value = serde_json::from_slice(&bot().body).unwrap_or_default();
        assert_eq!(bot, json!({"beep": "boop"}));
    }
}
