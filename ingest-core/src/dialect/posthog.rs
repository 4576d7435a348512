//! posthog-js and PostHog's capture API: `POST /e/`, `/i/v0/e/`, `/batch/`
//! (and `/capture/`, `/track/` as PostHog's server libraries name it).
//!
//! A body is one event, an array of events, or `{"api_key", "batch": [...]}`.
//! As posthog-js sends it: JSON; gzip (`?compression=gzip-js`); or a form
//! whose `data` field holds base64 JSON (`?compression=base64`, what
//! `sendBeacon` sends while a page unloads) or plain JSON. Each form is
//! known by its bytes (gzip's magic number, `data=`), so `compression=` is
//! not needed: the worker's body reader inflates any gzip body before the
//! dialect sees it, and then the parameter no longer describes the body.
//!
//! The project is named by our public token, as PostHog names it by its
//! project API key: `api_key` or `token` on the body, or `token` in each
//! event's properties. Each event: `event` (the name), `properties`
//! (`distinct_id`, `$device_id`, `$current_url`, `$referrer`, `title`,
//! `$screen_width` and `$screen_height` fill the page; the rest are kept as
//! properties), `timestamp` (ISO 8601), `uuid` (our insert_id), and `$set`
//! / `$set_once` (top level or in properties) for the person's profile.
//!
//! Names stay PostHog's: `$pageview` is already ours; `$identify` with
//! `$anon_distinct_id` joins the two ids in the identity map as Mixpanel's
//! does. `$pageleave` is stored as `$engagement` (its
//! `$prev_pageview_duration` seconds as `engaged_ms`, its scroll
//! percentage as `scroll`), which is what the read model times visits and
//! bounces by.
//!
//! posthog-js also asks, before it sends anything, for feature flags and
//! its remote configuration; [`flags`], [`decide`] and [`remote_config`]
//! answer with nothing switched on (no flags, no recordings, surveys,
//! heatmaps or extra scripts), so it runs with its defaults and loads
//! nothing more.

use super::Reply;
use crate::error::IngestError;
use crate::event::{Dialect, Event, EventDraft, PageContext};
use crate::limits::MAX_POSTHOG_BATCH_EVENTS;
use crate::payload::{data_param_json, form_field, gunzip, parse_json};
use crate::profile::{ProfileDraft, ProfileOp, ProfileUpdate};
use crate::validate::{finish_each, finish_profile, Admission};
use serde_json::{json, Map, Value};

pub const PAGEVIEW: &str = "$pageview";
pub const PAGELEAVE: &str = "$pageleave";
pub const ENGAGEMENT: &str = "$engagement";

/// A decoded capture request.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    pub token: Option<String>,
    pub drafts: Vec<EventDraft>,
    /// `$set` and `$set_once` of each event, for its distinct_id.
    pub profiles: Vec<(usize, Vec<ProfileOp>)>,
}

impl Capture {
    /// Whether an event has no id of its own and needs the visitor's.
    pub fn needs_visitor(&self) -> bool {
        self.drafts
            .iter()
            .any(|d| d.distinct_id.is_none() && d.device_id.is_none())
    }
}

/// Decodes a capture body (gzip is undone here too, for callers that did
/// not inflate it).
pub fn decode(body: &[u8]) -> Result<Capture, IngestError> {
    let root = read_body(body)?;
    let mut token = None;
    let items = match root {
        Value::Array(items) => items,
        Value::Object(mut map) if map.contains_key("batch") => {
            token = text(map.remove("api_key")).or_else(|| text(map.remove("token")));
            match map.remove("batch") {
                Some(Value::Array(items)) => items,
                _ => return Err(invalid("batch must be an array of events")),
            }
        }
        Value::Object(map) => vec![Value::Object(map)],
        _ => return Err(invalid("the body must be an event, an array of events or a batch")),
    };
    if items.is_empty() {
        return Err(invalid("no events in the request"));
    }
    if items.len() > MAX_POSTHOG_BATCH_EVENTS {
        return Err(IngestError::TooManyEvents {
            count: items.len(),
            limit: MAX_POSTHOG_BATCH_EVENTS,
        });
    }
    let mut drafts = Vec::with_capacity(items.len());
    let mut profiles = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let Value::Object(event) = item else {
            return Err(invalid("each event must be a JSON object"));
        };
        let (event_token, draft, ops) = draft(event)?;
        if token.is_none() {
            token = event_token;
        }
        if !ops.is_empty() {
            profiles.push((index, ops));
        }
        drafts.push(draft);
    }
    Ok(Capture {
        token,
        drafts,
        profiles,
    })
}

/// The events, all or nothing (posthog-js sends a batch again only when
/// the whole request failed), with the profile updates their `$set`s make.
pub fn finish(capture: Capture, admitted: &Admission<'_>) -> Result<(Vec<Event>, Vec<ProfileUpdate>), IngestError> {
    let cx = admitted.as_dialect(Dialect::PostHog, true);
    let (events, errors) = finish_each(capture.drafts.into_iter().map(Ok), &cx, |_, _| Vec::new());
    if !errors.is_empty() {
        return Err(IngestError::Invalid(errors));
    }
    let mut updates = Vec::new();
    let mut problems = Vec::new();
    for (index, ops) in capture.profiles {
        let Some(event) = events.get(index) else { continue };
        let draft = ProfileDraft {
            distinct_id: Some(Value::String(event.distinct_id.clone())),
            time: None,
            ops,
        };
        match finish_profile(draft, index, &cx) {
            Ok(update) => updates.push(update),
            Err(found) => problems.extend(found),
        }
    }
    if !problems.is_empty() {
        return Err(IngestError::Invalid(problems));
    }
    Ok((events, updates))
}

/// PostHog's answer to a capture: 200 `{"status": 1}`.
pub fn ok() -> Reply {
    Reply::json(200, &json!({"status": 1}))
}

/// PostHog's error body: `{"type", "code", "detail", "attr"}`.
pub fn error(err: &IngestError) -> Reply {
    let (kind, code) = match err {
        IngestError::Unauthorized | IngestError::Forbidden => ("authentication_error", "invalid_api_key"),
        IngestError::RateLimited { .. } => ("throttled_error", "rate_limited"),
        IngestError::Unavailable => ("server_error", "unavailable"),
        IngestError::PayloadTooLarge { .. } | IngestError::InflatedTooLarge { .. } => {
            ("validation_error", "payload_too_large")
        }
        _ => ("validation_error", "invalid_payload"),
    };
    let attr = match err {
        IngestError::Invalid(fields) => fields.first().map(|f| Value::String(f.field.clone())),
        _ => None,
    };
    Reply::json(
        err.status(),
        &json!({"type": kind, "code": code, "detail": err.message(), "attr": attr}),
    )
    .retry_after_for(err)
}

/// 404: a configuration asked for a token no project has.
pub fn not_found() -> Reply {
    Reply::json(
        404,
        &json!({"type": "invalid_request", "code": "not_found", "detail": "No project has this token.", "attr": null}),
    )
}

/// What posthog-js's remote configuration holds, with every optional
/// feature off: the same object for `/array/<token>/config`, inside
/// `config.js`, and in the flags answers.
fn config(token: &str) -> Value {
    json!({
        "token": token,
        "supportedCompression": ["gzip", "gzip-js"],
        "hasFeatureFlags": false,
        "captureDeadClicks": false,
        "capturePerformance": false,
        "autocapture_opt_out": false,
        "autocaptureExceptions": false,
        "analytics": {"endpoint": "/e/"},
        "elementsChainAsString": true,
        "errorTracking": {"autocaptureExceptions": false, "suppressionRules": []},
        "logs": {"captureConsoleLogs": false},
        "sessionRecording": false,
        "heatmaps": false,
        // No `surveys` key: posthog-js 1.449 loads its surveys script when
        // the key says `false` too (only a missing key leaves it unloaded).
        "defaultIdentifiedOnly": true,
        "siteApps": [],
    })
}

/// `GET /array/<token>/config`: the configuration as JSON.
pub fn remote_config(token: &str) -> Reply {
    Reply::json(200, &config(token))
}

/// `GET /array/<token>/config.js`: the configuration as the script
/// posthog-js's loader runs. The token (one of ours, checked by the
/// caller) is written as a JSON string with `<` escaped, so the script
/// holds nothing but data.
pub fn remote_config_js(token: &str) -> Reply {
    let key = Value::String(token.to_owned()).to_string().replace('<', "\\u003c");
    let value = json!({"config": config(token), "siteApps": []})
        .to_string()
        .replace('<', "\\u003c");
    let body = format!(
        "(function(){{var w=window;w._POSTHOG_REMOTE_CONFIG=w._POSTHOG_REMOTE_CONFIG||{{}};w._POSTHOG_REMOTE_CONFIG[{key}]={value};}})();"
    );
    Reply {
        status: 200,
        content_type: "application/javascript",
        body: body.into_bytes(),
        headers: Vec::new(),
    }
}

/// `POST /flags/?v=2`: no flags, and the configuration beside them (the
/// answer to `&config=true`).
pub fn flags() -> Reply {
    let mut body = config("");
    if let Value::Object(map) = &mut body {
        map.remove("token");
        map.insert("flags".into(), json!({}));
        map.insert("errorsWhileComputingFlags".into(), json!(false));
        map.insert("quotaLimited".into(), json!([]));
        // The older shape's names, which versions before /flags read.
        map.insert("featureFlags".into(), json!({}));
        map.insert("featureFlagPayloads".into(), json!({}));
    }
    Reply::json(200, &body)
}

/// `POST /decide/?v=3|4` (posthog-js before `/flags`): the same, in the
/// older shape.
pub fn decide() -> Reply {
    let mut body = config("");
    if let Value::Object(map) = &mut body {
        map.remove("token");
        map.insert("config".into(), json!({"enable_collect_everything": true}));
        map.insert("featureFlags".into(), json!({}));
        map.insert("featureFlagPayloads".into(), json!({}));
        map.insert("errorsWhileComputingFlags".into(), json!(false));
        map.insert("toolbarParams".into(), json!({}));
        map.insert("isAuthenticated".into(), json!(false));
        map.insert("editorParams".into(), json!({}));
    }
    Reply::json(200, &body)
}

/// Whether a `/flags` or `/decide` request is posthog-js's (it asks with
/// `v=`; mixpanel-browser's carry `version=` or nothing).
pub fn asks_posthog(query: &str) -> bool {
    form_field(query.as_bytes(), "v").is_some()
}

fn invalid(message: &str) -> IngestError {
    IngestError::BadRequest(message.to_owned())
}

/// The JSON of a body in any of the forms posthog-js sends.
fn read_body(body: &[u8]) -> Result<Value, IngestError> {
    let body = if body.starts_with(&[0x1f, 0x8b]) {
        gunzip(body, crate::limits::MAX_INFLATED_BODY_BYTES)?
    } else {
        body.to_vec()
    };
    let start = body.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(body.len());
    if matches!(body.get(start), Some(b'{' | b'[')) {
        return parse_json(&body);
    }
    match form_field(&body, "data") {
        Some(data) => data_param_json(&data),
        None => Err(invalid("the body is neither JSON nor a form with a data field")),
    }
}

fn text(value: Option<Value>) -> Option<String> {
    match value {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

type Decoded = (Option<String>, EventDraft, Vec<ProfileOp>);

fn draft(mut event: Map<String, Value>) -> Result<Decoded, IngestError> {
    let mut props = match event.remove("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(invalid("properties must be an object")),
    };
    let token = text(event.remove("api_key"))
        .or_else(|| text(event.remove("token")))
        .or_else(|| text(props.remove("token")));
    props.remove("token");
    let distinct_id = event
        .remove("distinct_id")
        .filter(|v| !v.is_null())
        .or_else(|| props.remove("distinct_id"));
    props.remove("distinct_id");
    let device_id = props.remove("$device_id").filter(|v| !v.is_null());

    let mut ops = Vec::new();
    for (key, set_once) in [("$set", false), ("$set_once", true)] {
        let value = event.remove(key).or_else(|| props.remove(key));
        props.remove(key);
        match value {
            Some(Value::Object(map)) if !map.is_empty() => ops.push(if set_once {
                ProfileOp::SetOnce(map)
            } else {
                ProfileOp::Set(map)
            }),
            None | Some(Value::Null | Value::Object(_)) => {}
            Some(_) => return Err(invalid(&format!("{key} must be an object"))),
        }
    }

    let time = match event.remove("timestamp") {
        None | Some(Value::Null) => None,
        Some(Value::String(iso)) => match iso.parse::<jiff::Timestamp>() {
            Ok(t) => Some(json!(t.as_millisecond())),
            // A number in text is read as our other APIs read times.
            Err(_) => Some(Value::String(iso)),
        },
        Some(other) => Some(other),
    };
    let insert_id = event.remove("uuid").filter(|v| !v.is_null());

    let page_text = |props: &mut Map<String, Value>, key: &str| match props.remove(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        Some(other) => {
            props.insert(key.to_owned(), other);
            None
        }
        None => None,
    };
    let url = page_text(&mut props, "$current_url");
    // posthog-js writes `$direct` for no referrer.
    let referrer = page_text(&mut props, "$referrer").filter(|r| r != "$direct");
    let title = page_text(&mut props, "title");
    let screen = match (props.get("$screen_width"), props.get("$screen_height")) {
        (Some(Value::Number(w)), Some(Value::Number(h))) => Some(format!("{w}x{h}")),
        _ => None,
    };

    let mut name = event.remove("event");
    if name.as_ref().and_then(Value::as_str) == Some(PAGELEAVE) {
        name = Some(Value::String(ENGAGEMENT.to_owned()));
        if let Some(seconds) = props.get("$prev_pageview_duration").and_then(Value::as_f64) {
            props.insert("engaged_ms".into(), json!((seconds * 1000.0).round() as i64));
        }
        let scroll = props
            .get("$prev_pageview_max_content_percentage")
            .or_else(|| props.get("$prev_pageview_max_scroll_percentage"))
            .and_then(Value::as_f64);
        if let Some(fraction) = scroll {
            props.insert(
                "scroll".into(),
                json!((fraction * 100.0).round().clamp(0.0, 100.0) as i64),
            );
        }
    }
    let draft = EventDraft {
        name,
        distinct_id,
        device_id,
        time,
        insert_id,
        page: PageContext {
            url,
            referrer,
            title,
            screen,
        },
        properties: props,
    };
    Ok((token, draft, ops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RequestContext;
    use base64::Engine;
    use std::io::Write;

    const NOW: i64 = 1_795_424_070_930;
    const NOW_ISO: &str = "2026-11-23T08:54:30.930Z";

    fn request() -> RequestContext {
        crate::dialect::test_request::browser(NOW)
    }

    fn cx(req: &RequestContext) -> Admission<'_> {
        crate::dialect::test_request::public(req)
    }

    fn pageview() -> String {
        format!(
            r#"{{"uuid":"019a1b2c-3d4e-7f80-9a1b-2c3d4e5f6a7b","event":"$pageview","properties":{{"$os":"Linux","$browser":"Chrome","$current_url":"https://shop.example/menu?utm_source=news","$host":"shop.example","$pathname":"/menu","$screen_height":1080,"$screen_width":1920,"$lib":"web","$lib_version":"1.449.2","$insert_id":"x1","$time":1795424070.93,"distinct_id":"019a1b2c-0000-7000-8000-000000000001","$device_id":"019a1b2c-0000-7000-8000-000000000001","$referrer":"$direct","$referring_domain":"$direct","title":"Menu","token":"demo-token","$session_id":"s1","$window_id":"w1"}},"timestamp":"{NOW_ISO}"}}"#
        )
    }

    /// `query` is what posthog-js puts beside the body; the body alone decides.
    fn finish_one(_query: &str, body: &[u8]) -> Result<(Vec<Event>, Vec<ProfileUpdate>), IngestError> {
        let r = request();
        let capture = decode(body)?;
        assert_eq!(capture.token.as_deref(), Some("demo-token"));
        finish(capture, &cx(&r))
    }

    #[test]
    fn a_pageview_as_posthog_js_sends_it() {
        let (events, profiles) = finish_one("", pageview().as_bytes()).expect("valid");
        let e = &events[0];
        assert_eq!(e.name, PAGEVIEW);
        assert_eq!(e.source, Dialect::PostHog);
        assert_eq!(e.distinct_id, "019a1b2c-0000-7000-8000-000000000001");
        assert_eq!(e.device_id.as_deref(), Some("019a1b2c-0000-7000-8000-000000000001"));
        assert_eq!(e.insert_id, "019a1b2c-3d4e-7f80-9a1b-2c3d4e5f6a7b");
        assert_eq!(e.time_ms, NOW);
        assert_eq!(e.page.url.as_deref(), Some("https://shop.example/menu?utm_source=news"));
        assert_eq!(e.page.referrer, None, "$direct is no referrer");
        assert_eq!(e.page.title.as_deref(), Some("Menu"));
        assert_eq!(e.page.screen.as_deref(), Some("1920x1080"));
        assert!(!e.properties.contains_key("token") && !e.properties.contains_key("distinct_id"));
        assert_eq!(e.properties["$browser"], "Chrome");
        assert!(profiles.is_empty());
    }

    #[test]
    fn gzip_base64_form_and_batches() {
        let body = format!("[{}]", pageview());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let _ = gz.write_all(body.as_bytes());
        let gzipped = gz.finish().unwrap_or_default();
        let (events, _) = finish_one("ip=0&_=1&ver=1.449.2&compression=gzip-js", &gzipped).expect("gzip");
        assert_eq!(events.len(), 1);
        // Magic number without the parameter; the parameter on a body the
        // worker already inflated.
        assert!(finish_one("", &gzipped).is_ok());
        assert!(finish_one("compression=gzip-js", body.as_bytes()).is_ok());
        // sendBeacon: a form with base64 data.
        let b64 = base64::engine::general_purpose::STANDARD.encode(body.as_bytes());
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("data", &b64)
            .finish();
        assert!(finish_one("compression=base64", form.as_bytes()).is_ok());
        // A form with plain JSON.
        let form: String = form_urlencoded::Serializer::new(String::new())
            .append_pair("data", &body)
            .finish();
        assert!(finish_one("", form.as_bytes()).is_ok());
        // The server libraries' batch.
        let batch = format!(
            r#"{{"api_key":"demo-token","batch":[{},{}]}}"#,
            pageview(),
            pageview().replace("019a1b2c-3d4e", "019a1b2c-3d4f")
        );
        assert_eq!(finish_one("", batch.as_bytes()).map(|(e, _)| e.len()).ok(), Some(2));
    }

    #[test]
    fn identify_links_and_sets_the_person() {
        let body = format!(
            r#"{{"uuid":"019a1b2c-3d4e-7f80-9a1b-2c3d4e5f6a7c","event":"$identify","properties":{{"distinct_id":"user-7","$anon_distinct_id":"anon-1","token":"demo-token","$set":{{"plan":"pro"}},"$set_once":{{"first":"mon"}}}},"$set":{{"email":"a@b.example"}},"timestamp":"{NOW_ISO}"}}"#
        );
        let (events, profiles) = finish_one("", body.as_bytes()).expect("valid");
        let link = crate::identity::link_of(&events[0]).expect("a link");
        assert_eq!((link.keep.as_str(), link.join.as_str()), ("user-7", "anon-1"));
        assert_eq!(profiles.len(), 1);
        assert_eq!(profiles[0].distinct_id, "user-7");
        let applied = crate::profile::apply(None, &profiles[0].ops).map(Value::Object);
        // The top-level $set wins over the one in properties.
        assert_eq!(applied, Some(json!({"email": "a@b.example", "first": "mon"})));
    }

    #[test]
    fn pageleave_times_the_page() {
        let body = format!(
            r#"{{"event":"$pageleave","properties":{{"distinct_id":"d1","token":"demo-token","$current_url":"https://a.example/","$prev_pageview_duration":12.4,"$prev_pageview_max_content_percentage":0.75}},"timestamp":"{NOW_ISO}"}}"#
        );
        let (events, _) = finish_one("", body.as_bytes()).expect("valid");
        assert_eq!(events[0].name, ENGAGEMENT);
        assert_eq!(events[0].properties["engaged_ms"], 12_400);
        assert_eq!(events[0].properties["scroll"], 75);
    }

    #[test]
    fn custom_events_keep_names_and_resends_keep_ids() {
        let body = format!(
            r#"{{"event":"signed up","uuid":"019a1b2c-3d4e-7f80-9a1b-2c3d4e5f6a7d","properties":{{"distinct_id":"d1","token":"demo-token","plan":"pro"}},"timestamp":"{NOW_ISO}"}}"#
        );
        let (one, _) = finish_one("", body.as_bytes()).expect("valid");
        let (two, _) = finish_one("", body.as_bytes()).expect("valid");
        assert_eq!(one[0].name, "signed up");
        assert_eq!(crate::dedup::dedup_key(&one[0]), crate::dedup::dedup_key(&two[0]));
    }

    #[test]
    fn batch_size_at_and_past_the_limit() {
        let one = r#"{"event":"e","properties":{"distinct_id":"d"}}"#;
        let body = |n: usize| format!(r#"{{"api_key":"demo-token","batch":[{}]}}"#, vec![one; n].join(","));
        assert_eq!(
            decode(body(MAX_POSTHOG_BATCH_EVENTS).as_bytes())
                .map(|c| c.drafts.len())
                .ok(),
            Some(MAX_POSTHOG_BATCH_EVENTS)
        );
        assert!(matches!(
            decode(body(MAX_POSTHOG_BATCH_EVENTS + 1).as_bytes()),
            Err(IngestError::TooManyEvents { .. })
        ));
    }

    #[test]
    fn refusals_in_posthogs_shape() {
        for body in [&b"nope"[..], b"[]", b"[1]", br#"{"batch":1}"#, b"data=%%%"] {
            let err = decode(body).err();
            assert_eq!(
                err.as_ref().map(IngestError::status),
                Some(400),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
        let reply = error(&IngestError::Unauthorized);
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        assert_eq!(
            (reply.status, body["type"].as_str()),
            (401, Some("authentication_error"))
        );
        let r = request();
        let bad = decode(br#"{"event":"","properties":{"distinct_id":"d","token":"t"}}"#)
            .and_then(|c| finish(c, &cx(&r)).map(|_| ()));
        let reply = error(&bad.err().unwrap_or(IngestError::Unavailable));
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        assert_eq!((reply.status, &body["attr"]), (400, &json!("event")));
        assert_eq!(ok().body, br#"{"status":1}"#.to_vec());
    }

    #[test]
    fn configuration_answers_switch_everything_off() {
        let config: Value = serde_json::from_slice(&remote_config("demo-token").body).unwrap_or_default();
        assert_eq!(config["sessionRecording"], false);
        assert_eq!(
            config.get("surveys"),
            None,
            "a false value would load the surveys script"
        );
        let js = String::from_utf8(remote_config_js("a</script>").body).unwrap_or_default();
        assert!(!js.contains('<'), "{js}");
        assert!(js.contains(r#"w._POSTHOG_REMOTE_CONFIG["a\u003c/script>"]="#));
        let flags: Value = serde_json::from_slice(&flags().body).unwrap_or_default();
        assert_eq!(
            (&flags["flags"], &flags["errorsWhileComputingFlags"]),
            (&json!({}), &json!(false))
        );
        let decide: Value = serde_json::from_slice(&decide().body).unwrap_or_default();
        assert_eq!(decide["featureFlags"], json!({}));
        assert!(asks_posthog("v=2&config=true"));
        assert!(!asks_posthog("verbose=1&version=3&lib=web&token=t"));
    }
}
