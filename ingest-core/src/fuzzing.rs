//! Property checks for hostile input, shared by the cargo-fuzz targets in
//! `ingest-core/fuzz/` and by `tests/corpus_replay.rs`, which replays the
//! committed corpus on stable Rust as part of `cargo test -p ingest-core`.
//!
//! Each check takes one input as raw bytes and panics when a property fails.
//! Beyond "no panic", every check asserts:
//!
//! - every event produced satisfies the limits on its own, checked here
//!   independently of `validate`: a well-formed insert_id, name and id
//!   lengths, property count, key and string lengths, nesting depth, page
//!   fields, time window, and at most [`MAX_EVENT_BYTES`] serialised (and it
//!   reads back, as the queue consumer will);
//! - every error has the status [`IngestError::status`] promises for that
//!   stage (a payload error is 400, 413 or 415, a decode error 400 or 413,
//!   never 5xx), and the dialect's error reply has that status and shape;
//! - nothing grows without bound: inflated bodies stay within
//!   [`MAX_INFLATED_BODY_BYTES`] and the gzip ratio, and a reply is at most
//!   [`REPLY_GROWTH`] times the (inflated) body plus [`REPLY_SLACK_BYTES`].
//!
//! Inputs that carry more than a body (a query string, headers) give them
//! as leading fields ended by NUL bytes: `query\0body` for Mixpanel's
//! `/track`. An input with fewer NULs than fields is all body.

use crate::auth::{KeyKind, Projects};
use crate::dedup::is_valid_insert_id;
use crate::dialect::{self, browser, crm, empmix, mixpanel, mixpanel_groups, vemetric, Reply};
use crate::error::{FieldError, IngestError};
use crate::event::{Dialect, Event, RequestContext};
use crate::export::{DateRange, Page};
use crate::limits::EXPORT_MAX_RANGE_DAYS;
use crate::limits::*;
use crate::payload;
use crate::profile::{self, ProfileOp, ProfileUpdate};
use crate::validate::{self, Admission};
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::{Map, Value};

/// The arrival time every check uses (2026-09-21).
pub const NOW_MS: i64 = 1_790_000_000_000;
/// The project every check validates for.
pub const PROJECT: &str = "demo";
/// The keys of [`PROJECT`] in [`projects`].
pub const TOKEN: &str = "demo-token";
pub const SECRET: &str = "demo-secret";
/// The only host `redirect=` may go to in these checks.
pub const REDIRECT_HOST: &str = "example.com";
/// The cookieless id the checks offer for anonymous events.
pub const ANONYMOUS_ID: &str = "cl-0123456789abcdef0123456789abcdef";

/// A reply may be at most this many times the request, plus
/// [`REPLY_SLACK_BYTES`]: error lists are bounded, not an amplifier.
pub const REPLY_GROWTH: usize = 16;
pub const REPLY_SLACK_BYTES: usize = 64 * 1024;

/// Statuses each stage may answer with.
const PAYLOAD_STATUSES: &[u16] = &[400, 413, 415];
const DECODE_STATUSES: &[u16] = &[400, 413];

/// One check: the input as raw bytes.
pub type Check = fn(&[u8]);

/// Every check by the name of its fuzz target and corpus folder.
pub const TARGETS: &[(&str, Check)] = &[
    ("base64", base64),
    ("form", form),
    ("json", json),
    ("ndjson", ndjson),
    ("gzip", gzip),
    ("browser", browser),
    ("mixpanel_track", mixpanel_track),
    ("mixpanel_engage", mixpanel_engage),
    ("mixpanel_groups", mixpanel_groups),
    ("mixpanel_import", mixpanel_import),
    ("vemetric_event", vemetric_event),
    ("vemetric_user", vemetric_user),
    ("empmix", empmix),
    ("crm", crm),
    ("export_query", export_query),
    ("credentials", credentials),
];

/// The check of a fuzz target, by name.
pub fn target(name: &str) -> Option<Check> {
    TARGETS.iter().find(|(n, _)| *n == name).map(|(_, check)| *check)
}

/// The projects the checks authorise against.
pub fn projects() -> Projects {
    let config = format!(
        r#"{{"{PROJECT}":{{"token":"{TOKEN}","secret":"{SECRET}","redirect_hosts":["{REDIRECT_HOST}"]}},
            "other":{{"token":"other-token","secret":"other-secret"}}}}"#
    );
    Projects::from_json(&config).unwrap_or_default()
}

/// A browser's request at [`NOW_MS`].
pub fn request_context() -> RequestContext {
    RequestContext {
        received_at_ms: NOW_MS,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/130.0.0.0 Safari/537.36".into()),
        ip: Some("203.0.113.9".into()),
        country: Some("DE".into()),
        region: None,
        city: None,
        verified_bot: false,
        request_id: "fuzz-request".into(),
    }
}

fn admission(request: &RequestContext, key: KeyKind, anonymous: bool) -> Admission<'_> {
    Admission {
        project: PROJECT,
        key,
        request,
        anonymous_id: anonymous.then_some(ANONYMOUS_ID),
    }
}

/// The first `N` NUL-ended fields of `data` (absent when empty) and the
/// rest. Without `N` NULs, the whole input is the body.
fn split<const N: usize>(data: &[u8]) -> ([Option<String>; N], &[u8]) {
    let mut fields: [Option<String>; N] = std::array::from_fn(|_| None);
    let mut rest = data;
    for field in fields.iter_mut() {
        let Some(end) = rest.iter().position(|b| *b == 0) else {
            return (std::array::from_fn(|_| None), data);
        };
        let text = String::from_utf8_lossy(&rest[..end]).into_owned();
        *field = Some(text).filter(|t| !t.is_empty());
        rest = &rest[end + 1..];
    }
    (fields, rest)
}

// ---------------------------------------------------------------------------
// Payload targets.

/// `decode_base64` in every spelling, and `data_param_json` on any text.
pub fn base64(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    match payload::decode_base64(&text) {
        Ok(bytes) => assert!(bytes.len() <= text.len() / 4 * 3 + 3, "base64 grew"),
        Err(e) => assert_eq!(e, IngestError::BadEncoding("base64")),
    }
    if let Err(e) = payload::data_param_json(&text) {
        check_error(&e, DECODE_STATUSES);
    }
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        let encoded = engine.encode(data);
        assert_eq!(
            payload::decode_base64(&encoded).as_deref(),
            Ok(data),
            "round trip of {encoded}"
        );
    }
    // A form decoder turns '+' into ' ', at the ends too; clients break
    // lines at 76.
    let encoded = STANDARD_NO_PAD.encode(data);
    assert_eq!(
        payload::decode_base64(&encoded.replace('+', " ")).as_deref(),
        Ok(data),
        "'+' read as ' '"
    );
    let encoded = STANDARD.encode(data);
    let lines: Vec<&str> = encoded
        .as_bytes()
        .chunks(76)
        .filter_map(|c| std::str::from_utf8(c).ok())
        .collect();
    assert_eq!(
        payload::decode_base64(&lines.join("\r\n")).as_deref(),
        Ok(data),
        "line breaks"
    );
}

/// `form_field` on any body, and on forms holding the input as a value.
pub fn form(data: &[u8]) {
    let first = form_urlencoded::parse(data)
        .find(|(k, _)| k == "data")
        .map(|(_, v)| v.into_owned());
    assert_eq!(payload::form_field(data, "data"), first);
    let text = String::from_utf8_lossy(data).into_owned();
    let encoded = form_urlencoded::Serializer::new(String::new())
        .append_pair("ip", "1")
        .append_pair("data", &text)
        .append_pair("data", "second")
        .finish();
    assert_eq!(payload::form_field(encoded.as_bytes(), "data"), Some(text.clone()));
    assert_eq!(payload::form_field(encoded.as_bytes(), "absent"), None);
    // The Mixpanel transport reads the same fields, from the body or the query.
    let params = mixpanel::TrackParams::parse(&text, data);
    if let Ok(params) = params {
        check_callback(params.callback.as_deref());
    }
}

/// `parse_json` against serde_json itself: the same verdict, except that a
/// document with too many objects and arrays is refused with 413.
pub fn json(data: &[u8]) {
    let ours = payload::parse_json(data);
    let reference = serde_json::from_slice::<Value>(data);
    match (&ours, &reference) {
        (Ok(a), Ok(b)) => assert_eq!(a, b),
        (Err(IngestError::TooComplex { .. }), Ok(v)) => {
            assert!(
                containers(v) > MAX_JSON_CONTAINERS,
                "refused a document within the limit"
            )
        }
        (Err(IngestError::TooManyElements { .. }), Ok(v)) => {
            assert!(
                elements(v) > MAX_JSON_ELEMENTS,
                "refused a document within the element limit"
            )
        }
        (Err(e), Ok(_)) => panic!("refused valid JSON: {e:?}"),
        (Ok(_), Err(_)) => panic!("accepted invalid JSON"),
        (Err(e), Err(_)) => check_error(e, DECODE_STATUSES),
    }
    if let Ok(v) = &ours {
        assert!(containers(v) <= MAX_JSON_CONTAINERS);
        assert!(elements(v) <= MAX_JSON_ELEMENTS);
    }
}

/// `parse_json_or_ndjson` with each kind of content type.
pub fn ndjson(data: &[u8]) {
    let lines = data.split(|b| *b == b'\n').count();
    for content_type in [None, Some("application/json"), Some("application/x-ndjson")] {
        match payload::parse_json_or_ndjson(data, content_type) {
            Ok(items) => {
                let array = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
                if !(array && content_type.is_none_or(|t| !t.contains("ndjson"))) {
                    assert!(items.len() <= lines, "more items than lines");
                }
                assert!(items.iter().map(containers).sum::<usize>() <= MAX_JSON_CONTAINERS + 1);
                assert!(items.iter().map(elements).sum::<usize>() <= MAX_JSON_ELEMENTS);
            }
            Err(e) => check_error(&e, DECODE_STATUSES),
        }
    }
}

/// `decode_body`: the size and ratio caps hold for any input, declared gzip
/// or not, and any body survives a gzip round trip.
pub fn gzip(data: &[u8]) {
    let ratio_cap = data.len().saturating_mul(MAX_GZIP_RATIO).max(16 * 1024);
    for encoding in [Some("gzip"), Some(" GZIP "), None, Some("identity"), Some("")] {
        let inflates =
            encoding.is_some_and(|e| e.trim().eq_ignore_ascii_case("gzip")) || data.starts_with(&[0x1f, 0x8b]);
        match payload::decode_body(data, encoding) {
            Ok(out) => {
                assert!(data.len() <= MAX_BODY_BYTES, "read past the wire limit");
                assert!(out.len() <= MAX_INFLATED_BODY_BYTES, "inflated past the body limit");
                if inflates {
                    assert!(out.len() <= ratio_cap, "inflated past the ratio");
                } else {
                    assert_eq!(out, data);
                }
            }
            Err(e) => check_error(&e, PAYLOAD_STATUSES),
        }
    }
    assert_eq!(
        payload::decode_body(data, Some("br")),
        Err(IngestError::UnsupportedMediaType)
    );
    if data.len() <= 16 * 1024 {
        assert_eq!(
            payload::decode_body(&gzip_bytes(data), Some("gzip")).as_deref(),
            Ok(data)
        );
    }
}

/// Compresses with flate2, for round trips.
pub fn gzip_bytes(data: &[u8]) -> Vec<u8> {
    use flate2::write::GzEncoder;
    use std::io::Write;
    let mut encoder = GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).ok();
    encoder.finish().unwrap_or_default()
}

// ---------------------------------------------------------------------------
// Dialect targets: the worker's path from raw body to events and replies.

/// `POST /collect`: decode, validate, reply.
pub fn browser(data: &[u8]) {
    let body = match payload::decode_body(data, None) {
        Ok(body) => body,
        Err(e) => return check_browser_reply(&browser::error(&e), &e, data.len()),
    };
    // Replies are bounded by what the decoder read, which may be inflated.
    let size = data.len().max(body.len());
    let reply_for = |e: &IngestError| check_browser_reply(&browser::error(e), e, size);
    let batch = match browser::decode(&body) {
        Ok(batch) => batch,
        Err(e) => {
            check_error(&e, DECODE_STATUSES);
            return reply_for(&e);
        }
    };
    let count = batch.drafts.len();
    assert!((1..=MAX_BROWSER_BATCH_EVENTS).contains(&count));
    let _ = projects().authorize(batch.token.as_deref(), KeyKind::Public);
    let req = request_context();
    let (events, errors) = browser::finish(batch.drafts, &admission(&req, KeyKind::Public, true));
    check_outcome(&events, &errors, count, Dialect::Browser);
    check_recent(&events);
    if errors.is_empty() {
        assert_eq!(browser::accepted().status, 202);
    } else {
        reply_for(&IngestError::Invalid(errors));
    }
}

/// `GET|POST /track`: `query\0body`.
pub fn mixpanel_track(data: &[u8]) {
    let ([query], raw) = split::<1>(data);
    let query = query.unwrap_or_default();
    let size = data.len();
    let hosts = [REDIRECT_HOST.to_owned()];
    let body = match payload::decode_body(raw, None) {
        Ok(body) => body,
        Err(e) => return check_track_reply(&mixpanel::track_error(&Default::default(), &e, &[]), Some(&e), size),
    };
    // Replies are bounded by what the decoder read, which may be inflated.
    let size = size.max(body.len());
    let params = mixpanel::TrackParams::parse(&query, &body).unwrap_or_default();
    check_callback(params.callback.as_deref());
    let request = match mixpanel::decode_track(&query, &body) {
        Ok(request) => request,
        Err(e) => {
            check_error(&e, DECODE_STATUSES);
            return check_track_reply(&mixpanel::track_error(&params, &e, &hosts), Some(&e), size);
        }
    };
    let count = request.items.len();
    assert!((1..=MAX_BROWSER_BATCH_EVENTS).contains(&count));
    let req = request_context();
    let (events, errors) =
        mixpanel::finish_track(request.items, &request.params, &admission(&req, KeyKind::Public, true));
    check_outcome(&events, &errors, count, Dialect::MixpanelTrack);
    for event in &events {
        check_mixpanel_event(event);
        assert!(
            event.time_ms >= NOW_MS - MAX_TRACK_AGE_MS,
            "/track took an event older than 3 hours"
        );
        if !request.params.geolocate {
            assert_eq!(event.country, None, "ip=0 kept a country");
        }
    }
    let reply = mixpanel::track_reply(&request.params, events.len(), &errors, &hosts);
    let failed = (events.is_empty() && !errors.is_empty()).then_some(IngestError::Invalid(errors));
    check_track_reply(&reply, failed.as_ref(), size);
}

/// `GET|POST /engage`: `query\0body`.
pub fn mixpanel_engage(data: &[u8]) {
    let ([query], raw) = split::<1>(data);
    let query = query.unwrap_or_default();
    let size = data.len();
    let body = match payload::decode_body(raw, None) {
        Ok(body) => body,
        Err(e) => return check_track_reply(&mixpanel::track_error(&Default::default(), &e, &[]), Some(&e), size),
    };
    // Replies are bounded by what the decoder read, which may be inflated.
    let size = size.max(body.len());
    let params = mixpanel::TrackParams::parse(&query, &body).unwrap_or_default();
    let request = match mixpanel::decode_engage(&query, &body) {
        Ok(request) => request,
        Err(e) => {
            check_error(&e, DECODE_STATUSES);
            return check_track_reply(&mixpanel::track_error(&params, &e, &[]), Some(&e), size);
        }
    };
    let count = request.items.len();
    assert!((1..=MAX_BROWSER_BATCH_EVENTS).contains(&count));
    let req = request_context();
    let (updates, errors) =
        mixpanel::finish_engage(request.items, &request.params, &admission(&req, KeyKind::Public, false));
    assert!(updates.len() <= count);
    check_field_errors(&errors, count);
    for update in &updates {
        check_profile(update);
    }
    let reply = mixpanel::track_reply(&request.params, updates.len(), &errors, &[]);
    let failed = (updates.is_empty() && !errors.is_empty()).then_some(IngestError::Invalid(errors));
    check_track_reply(&reply, failed.as_ref(), size);
}

/// `GET|POST /groups`: `query\0body`. Group updates keep every limit of a
/// profile update, name their group, use only the group operations, and
/// are answered as `/engage` answers.
pub fn mixpanel_groups(data: &[u8]) {
    let ([query], raw) = split::<1>(data);
    let query = query.unwrap_or_default();
    let size = data.len();
    let body = match payload::decode_body(raw, None) {
        Ok(body) => body,
        Err(e) => return check_track_reply(&mixpanel::track_error(&Default::default(), &e, &[]), Some(&e), size),
    };
    let size = size.max(body.len());
    let params = mixpanel::TrackParams::parse(&query, &body).unwrap_or_default();
    let request = match mixpanel_groups::decode_groups(&query, &body) {
        Ok(request) => request,
        Err(e) => {
            check_error(&e, DECODE_STATUSES);
            return check_track_reply(&mixpanel::track_error(&params, &e, &[]), Some(&e), size);
        }
    };
    let count = request.items.len();
    assert!((1..=MAX_BROWSER_BATCH_EVENTS).contains(&count));
    let req = request_context();
    let (updates, errors) = mixpanel_groups::finish_groups(request.items, &admission(&req, KeyKind::Public, false));
    check_field_errors(&errors, count);
    let failed: std::collections::BTreeSet<usize> = errors.iter().map(|e| e.index).collect();
    assert_eq!(
        updates.len() + failed.len(),
        count,
        "every update is kept or has errors"
    );
    for update in &updates {
        assert!(!update.group_key.trim().is_empty() && update.group_key.chars().count() <= MAX_ID_CHARS);
        assert!(!update.group_id.is_empty() && update.group_id.chars().count() <= MAX_ID_CHARS);
        assert!(update
            .ops
            .iter()
            .all(|op| mixpanel_groups::GROUP_OPS.contains(&op.key())));
        check_profile(&ProfileUpdate {
            project: update.project.clone(),
            distinct_id: update.group_id.clone(),
            ops: update.ops.clone(),
            time_ms: update.time_ms,
            received_at_ms: update.time_ms,
        });
    }
    let reply = mixpanel::track_reply(&request.params, updates.len(), &errors, &[]);
    let failed = (updates.is_empty() && !errors.is_empty()).then_some(IngestError::Invalid(errors));
    check_track_reply(&reply, failed.as_ref(), size);
}

/// `POST /import`: `query\0content-type\0body`.
pub fn mixpanel_import(data: &[u8]) {
    let ([query, content_type], raw) = split::<2>(data);
    let query = query.unwrap_or_default();
    let size = data.len();
    let fallback = mixpanel::ImportParams {
        strict: query.contains("strict=1"),
        verbose: query.contains("verbose=1"),
        ..Default::default()
    };
    let body = match payload::decode_body(raw, None) {
        Ok(body) => body,
        Err(e) => return check_import_reply(&mixpanel::import_error(&fallback, &e), &e, size),
    };
    // Replies are bounded by what the decoder read, which may be inflated.
    let size = size.max(body.len());
    let request = match mixpanel::decode_import(&query, &body, content_type.as_deref()) {
        Ok(request) => request,
        Err(e) => {
            check_error(&e, DECODE_STATUSES);
            return check_import_reply(&mixpanel::import_error(&fallback, &e), &e, size);
        }
    };
    let count = request.items.len();
    assert!((1..=MAX_IMPORT_EVENTS).contains(&count));
    let req = request_context();
    let params = request.params.clone();
    let imported = mixpanel::finish_import(request.items, &params, &admission(&req, KeyKind::Secret, true));
    // Every item is an event, a `$merge` link, or has errors.
    check_field_errors(&imported.errors, count);
    let failed: std::collections::BTreeSet<usize> = imported.errors.iter().map(|e| e.index).collect();
    assert_eq!(imported.events.len() + imported.links.len() + failed.len(), count);
    for event in &imported.events {
        check_event(event, Dialect::MixpanelImport);
        check_mixpanel_event(event);
        assert!(
            event.device_id.as_deref() != Some(ANONYMOUS_ID),
            "an import got the cookieless id"
        );
        if params.skip_geolocation {
            assert_eq!(event.country, None, "ip=0 placed an import");
        }
    }
    for link in &imported.links {
        assert!(!link.keep.is_empty() && !link.join.is_empty());
    }
    let (events, links, errors) = (imported.events.len(), imported.links.len(), imported.errors.len());
    let outcome = mixpanel::settle_import(&params, imported);
    let reply = &outcome.reply;
    assert!(reply.body.len() <= size * REPLY_GROWTH + REPLY_SLACK_BYTES);
    // Nothing is stored that the reply does not count, and a legacy
    // request that failed stores nothing at all.
    if params.legacy && errors > 0 {
        assert!(outcome.events.is_empty() && outcome.links.is_empty());
        assert_eq!(reply.status, 400);
    } else {
        assert_eq!((outcome.events.len(), outcome.links.len()), (events, links));
    }
    if params.legacy && !params.verbose {
        let expected = if errors > 0 { "0" } else { "1" };
        assert_eq!(String::from_utf8_lossy(&reply.body), expected);
        return;
    }
    let body = reply_json(reply);
    if reply.status == 400 {
        assert!((params.strict || params.verbose) && errors > 0);
        assert_eq!(body["code"], 400);
        if params.verbose {
            assert_eq!(body["status"], 0, "a failure never says status 1");
        }
        let rows = body["failed_records"].as_array().map_or(0, Vec::len);
        assert!(rows >= 1 && rows <= count);
    } else {
        assert_eq!(reply.status, 200);
        assert_eq!(body["num_records_imported"], events + links);
        if params.verbose {
            assert_eq!((errors, body["status"].as_i64()), (0, Some(1)));
        }
    }
}

/// `POST /e`: `token\0allow-cookies\0v-referrer\0device-id\0body`. The
/// fourth field (a cookie's device id, a path since removed) is read and
/// dropped, so the corpus keeps its shape.
pub fn vemetric_event(data: &[u8]) {
    let ([token, allow_cookies, referrer, _device_id], raw) = split::<4>(data);
    let headers = vemetric::Headers {
        token: token.as_deref(),
        allow_cookies: allow_cookies.as_deref(),
        referrer: referrer.as_deref(),
    };
    let size = data.len();
    let body = match payload::decode_body(raw, None) {
        Ok(body) => body,
        Err(e) => return check_vemetric_reply(&e, size),
    };
    // Replies are bounded by what the decoder read, which may be inflated.
    let size = size.max(body.len());
    let request = match vemetric::decode_event(&body, &headers) {
        Ok(request) => request,
        Err(e) => {
            check_error(&e, DECODE_STATUSES);
            return check_vemetric_reply(&e, size);
        }
    };
    let _ = projects().authorize(request.token.as_deref(), KeyKind::Public);
    let req = request_context();
    match vemetric::finish_event(request, &admission(&req, KeyKind::Public, true)) {
        Ok((event, profile)) => {
            check_event(&event, Dialect::Vemetric);
            assert_eq!(event.time_ms, NOW_MS);
            assert!(event.properties.values().all(Value::is_string), "custom data is text");
            assert!(
                !matches!(event.name.as_str(), "$$pageView" | "$$outboundLink"),
                "web SDK names are made canonical"
            );
            if matches!(event.name.as_str(), vemetric::PAGEVIEW | vemetric::OUTBOUND_LINK) {
                assert!(event.page.url.is_some());
            }
            if let Some(profile) = profile {
                check_profile(&profile);
            }
            assert_eq!(vemetric::ok().status, 200);
        }
        Err(errors) => {
            assert!(!errors.is_empty());
            check_field_errors(&errors, 1);
            check_vemetric_reply(&IngestError::Invalid(errors), size);
        }
    }
}

/// `POST /i` (first field `i`) or `/u`, and `/l`:
/// `call\0token\0allow-cookies\0body`.
pub fn vemetric_user(data: &[u8]) {
    let ([call, token, allow_cookies], raw) = split::<3>(data);
    let headers = vemetric::Headers {
        token: token.as_deref(),
        allow_cookies: allow_cookies.as_deref(),
        referrer: None,
    };
    let size = data.len();
    let body = match payload::decode_body(raw, None) {
        Ok(body) => body,
        Err(e) => return check_vemetric_reply(&e, size),
    };
    // Replies are bounded by what the decoder read, which may be inflated.
    let size = size.max(body.len());
    let _ = vemetric::decode_no_op(&body, &headers);
    let identify = call.as_deref() == Some("i");
    let decoded = if identify {
        vemetric::decode_identify(&body, &headers)
    } else {
        vemetric::decode_update(&body, &headers)
    };
    let request = match decoded {
        Ok(request) => request,
        Err(e) => {
            check_error(&e, DECODE_STATUSES);
            return check_vemetric_reply(&e, size);
        }
    };
    if identify {
        assert!(
            !request.profile.ops.is_empty(),
            "identify always makes sure the profile exists"
        );
    }
    let req = request_context();
    match vemetric::finish_user(request, &admission(&req, KeyKind::Public, true)) {
        Ok(update) => check_profile(&update),
        Err(errors) => {
            check_field_errors(&errors, 1);
            check_vemetric_reply(&IngestError::Invalid(errors), size);
        }
    }
}

/// `POST /public/track` (first field `track`) or `/public/track/bulk`:
/// `call\0body`.
pub fn empmix(data: &[u8]) {
    let ([call], raw) = split::<1>(data);
    let size = data.len();
    let body = match payload::decode_body(raw, None) {
        Ok(body) => body,
        Err(e) => return check_empmix_reply(&empmix::error(&e), &e, size),
    };
    // Replies are bounded by what the decoder read, which may be inflated.
    let size = size.max(body.len());
    let bulk = call.as_deref() != Some("track");
    let decoded = if bulk {
        empmix::decode_bulk(&body)
    } else {
        empmix::decode_track(&body)
    };
    let request = match decoded {
        Ok(request) => request,
        Err(e) => {
            check_error(&e, DECODE_STATUSES);
            return check_empmix_reply(&empmix::error(&e), &e, size);
        }
    };
    let count = request.drafts.len();
    assert!((1..=if bulk { MAX_BULK_EVENTS } else { 1 }).contains(&count));
    assert!(
        request.drafts.iter().all(|d| d.distinct_id.is_some()),
        "distinct_id is required"
    );
    let kind = if bulk { KeyKind::Secret } else { KeyKind::Public };
    let _ = projects().authorize(request.api_key.as_deref(), kind);
    let req = request_context();
    let (events, errors) = validate::finish_all(
        request.drafts,
        &admission(&req, kind, false).as_dialect(Dialect::EmpMix, false),
    );
    check_outcome(&events, &errors, count, Dialect::EmpMix);
    if kind == KeyKind::Public {
        check_recent(&events);
    }
    if errors.is_empty() {
        assert_eq!(reply_json(&empmix::ok())["status"], 1);
    } else {
        let e = IngestError::Invalid(errors);
        check_empmix_reply(&empmix::error(&e), &e, size);
    }
}

/// `POST /v1/event`: `authorization\0x-api-key\0body`.
pub fn crm(data: &[u8]) {
    let ([authorization, x_api_key], raw) = split::<2>(data);
    if let Some(key) = crate::auth::api_key(authorization.as_deref(), x_api_key.as_deref()) {
        assert!(!key.is_empty() && key.trim() == key);
    }
    let size = data.len();
    let body = match payload::decode_body(raw, None) {
        Ok(body) => body,
        Err(e) => return check_crm_reply(&crm::error(&e), &e, size),
    };
    // Replies are bounded by what the decoder read, which may be inflated.
    let size = size.max(body.len());
    let request = match crm::decode(&body) {
        Ok(request) => request,
        Err(e) => {
            check_error(&e, DECODE_STATUSES);
            return check_crm_reply(&crm::error(&e), &e, size);
        }
    };
    let keys = request.user.clone();
    assert!(keys.email.is_some() || keys.id.is_some());
    for key in [&keys.email, &keys.id].into_iter().flatten() {
        assert!(!key.is_empty() && key.chars().count() <= MAX_ID_CHARS);
    }
    if let Some(email) = &keys.email {
        assert_eq!(email, &email.trim().to_lowercase());
    }
    // Against empty storage only a login finds (creates) its user, under
    // the identifier it came with and linked by every one it named.
    let kind = request.kind;
    let resolved = match crm::resolve(&request, &crm::Found::default()) {
        Ok(resolved) => {
            assert_eq!(kind, crm::Kind::Login);
            assert_eq!(Some(&resolved.distinct_id), keys.email.as_ref().or(keys.id.as_ref()));
            assert_eq!(resolved.link, keys.keys());
            resolved
        }
        Err(e) => {
            assert_ne!(kind, crm::Kind::Login);
            assert_eq!(e, IngestError::Refused(crm::Refusal::UserNotFound));
            check_crm_reply(&crm::error(&e), &e, size);
            // The same request for a user that exists under its first identifier.
            let user = crm::KnownUser {
                distinct_id: keys.email.clone().or(keys.id.clone()).unwrap_or_default(),
                email: keys.email.clone(),
            };
            let found = crm::Found {
                by_email: keys.email.as_ref().map(|_| user.clone()),
                by_id: Some(user.clone()),
            };
            let resolved = crm::resolve(&request, &found);
            assert_eq!(resolved.as_ref().map(|r| &r.distinct_id), Ok(&user.distinct_id));
            assert!(resolved.as_ref().is_ok_and(|r| r.link.is_empty() && r.moved.is_none()));
            resolved.unwrap_or_else(|_| unreachable!())
        }
    };
    let user = resolved.distinct_id;
    let req = request_context();
    match crm::finish(request, &user, &admission(&req, KeyKind::Secret, false)) {
        Ok((event, profile)) => {
            check_event(&event, Dialect::Crm);
            assert_eq!(event.distinct_id, user);
            assert_eq!(event.time_ms, NOW_MS);
            if kind == crm::Kind::EmailOpen {
                assert_eq!(event.name, "email_open");
            }
            if let Some(profile) = profile {
                check_profile(&profile);
                assert_eq!(profile.distinct_id, user);
            }
            assert_eq!(crm::created().status, 200);
        }
        Err(errors) => {
            check_field_errors(&errors, 1);
            let e = IngestError::Invalid(errors);
            check_crm_reply(&crm::error(&e), &e, size);
        }
    }
}

/// `GET /public/events` paging and the export and stats date ranges.
pub fn export_query(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    match Page::from_query(&query) {
        Ok(page) => {
            assert!((1..=EXPORT_MAX_LIMIT).contains(&page.limit) && page.page >= 1);
            assert_eq!(page.offset(), u64::from(page.page - 1) * u64::from(page.limit));
        }
        Err(e) => check_error(&e, &[400]),
    }
    match DateRange::from_query(&query, NOW_MS) {
        Ok(range) => {
            assert!(range.start_ms < range.end_ms);
            assert_eq!(range.start_ms % crate::time::DAY_MS, 0);
            assert_eq!(range.end_ms % crate::time::DAY_MS, 0);
            assert!((range.end_ms - range.start_ms) / crate::time::DAY_MS <= EXPORT_MAX_RANGE_DAYS);
            assert!(range.start_ms >= MIN_EVENT_TIME_MS - crate::time::DAY_MS * EXPORT_MAX_RANGE_DAYS);
            for day in [&range.from, &range.to] {
                assert!(
                    day.len() == 10 && day.as_bytes()[4] == b'-' && day.as_bytes()[7] == b'-',
                    "{day}"
                );
            }
            assert_eq!(crate::time::utc_day(range.start_ms), range.from);
        }
        Err(e) => check_error(&e, &[400]),
    }
}

/// Keys and redirects: Basic and Bearer parsing, key kinds, `redirect=`
/// and `callback=`. The input is one header value or URL.
pub fn credentials(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let candidates = crate::auth::basic_auth_candidates(&text);
    assert!(candidates.len() <= 2);
    assert!(candidates.iter().all(|c| !c.is_empty()));
    let projects = projects();
    match crate::auth::authorize_import(&projects, Some(&text), None) {
        Ok(project) => {
            assert_eq!(project.id, PROJECT);
            assert!(
                candidates.iter().any(|c| c == SECRET),
                "import opened without the secret"
            );
        }
        Err(e) => assert!(matches!(e, IngestError::Unauthorized | IngestError::Forbidden)),
    }
    for kind in [KeyKind::Public, KeyKind::Secret] {
        match projects.authorize(Some(&text), kind) {
            Ok(_) => assert!(text == TOKEN || text == SECRET || text == "other-token" || text == "other-secret"),
            Err(e) => assert!(matches!(e, IngestError::Unauthorized | IngestError::Forbidden)),
        }
    }
    if let Some(key) = crate::auth::api_key(Some(&text), Some(&text)) {
        assert!(!key.is_empty() && key.len() <= text.len());
    }
    if crate::auth::redirect_allowed(&text, &[REDIRECT_HOST.to_owned()]) {
        check_redirect_target(&text);
    }
    let query = format!("callback={}", form_urlencoded::byte_serialize(data).collect::<String>());
    match mixpanel::TrackParams::parse(&query, b"") {
        Ok(params) => check_callback(params.callback.as_deref()),
        Err(e) => check_error(&e, &[400]),
    }
}

/// What a redirect the worker would follow must look like: http(s), no
/// user info, no blanks or backslashes, a host at or below the allowed one.
pub fn check_redirect_target(url: &str) {
    let lower = url.to_ascii_lowercase();
    let rest = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .unwrap_or_else(|| panic!("redirect to a non-http URL: {url}"));
    assert!(
        !url.chars().any(|c| c.is_whitespace() || c.is_control() || c == '\\'),
        "{url}"
    );
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    assert!(!authority.contains('@'), "user info in {url}");
    let host = authority.split(':').next().unwrap_or("");
    let host = host.strip_suffix('.').unwrap_or(host);
    assert!(
        host == REDIRECT_HOST || host.ends_with(&format!(".{REDIRECT_HOST}")),
        "redirect to {host}"
    );
}

fn check_callback(callback: Option<&str>) {
    if let Some(name) = callback {
        assert!(!name.is_empty() && name.chars().count() <= MAX_CALLBACK_CHARS);
        assert!(
            name.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '.')),
            "{name}"
        );
        assert!(
            !name.starts_with('.') && !name.ends_with('.') && !name.contains(".."),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------
// The properties themselves.

/// An error's status is one this stage may give, never 5xx, and its
/// message is short and never empty.
pub fn check_error(err: &IngestError, allowed: &[u16]) {
    let status = err.status();
    assert!(
        allowed.contains(&status),
        "{err:?} answers {status}, expected one of {allowed:?}"
    );
    let message = err.message();
    assert!(
        !message.is_empty() && message.chars().count() <= 512,
        "message: {message}"
    );
    if let IngestError::Invalid(errors) = err {
        assert!(!errors.is_empty());
        check_field_errors(errors, usize::MAX);
    }
}

/// Field errors point into the request and stay small.
pub fn check_field_errors(errors: &[FieldError], items: usize) {
    for e in errors {
        assert!(e.index < items, "error index {} of {items} items", e.index);
        assert!(
            !e.field.is_empty() && e.field.chars().count() <= 128,
            "field: {}",
            e.field
        );
        assert!(
            !e.message.is_empty() && e.message.chars().count() <= 256,
            "message: {}",
            e.message
        );
        if let Some(id) = &e.insert_id {
            assert!(
                id.chars().count() <= MAX_ID_CHARS,
                "an error echoes a {}-character insert_id",
                id.chars().count()
            );
        }
    }
}

/// Events sent with a public token are no older than the public window.
fn check_recent(events: &[Event]) {
    for e in events {
        assert!(
            e.time_ms >= NOW_MS - MAX_PUBLIC_EVENT_AGE_MS,
            "public event from {}",
            e.time_ms
        );
    }
}

/// Validation's outcome for `items` drafts: events are valid, every error
/// names an item, and no item is both.
fn check_outcome(events: &[Event], errors: &[FieldError], items: usize, dialect: Dialect) {
    assert!(events.len() <= items);
    check_field_errors(errors, items);
    let failed: std::collections::BTreeSet<usize> = errors.iter().map(|e| e.index).collect();
    assert_eq!(
        events.len() + failed.len(),
        items,
        "every item is an event or has errors"
    );
    for event in events {
        check_event(event, dialect);
    }
}

/// Every limit on a canonical event, checked without `validate`.
pub fn check_event(e: &Event, dialect: Dialect) {
    assert!(is_valid_insert_id(&e.insert_id), "insert_id {:?}", e.insert_id);
    assert!(e.insert_id.len() <= MAX_INSERT_ID_CHARS);
    assert_eq!(
        (e.project.as_str(), e.source, e.received_at_ms),
        (PROJECT, dialect, NOW_MS)
    );
    assert!(
        !e.name.trim().is_empty() && e.name.chars().count() <= MAX_EVENT_NAME_CHARS,
        "name {:?}",
        e.name
    );
    // Only Mixpanel's `/track` keeps events of nobody (an empty id).
    assert!(
        (!e.distinct_id.is_empty() || dialect == Dialect::MixpanelTrack)
            && e.distinct_id.chars().count() <= MAX_ID_CHARS
    );
    if let Some(device) = &e.device_id {
        assert!(!device.is_empty() && device.chars().count() <= MAX_ID_CHARS);
    }
    assert!(
        e.time_ms >= MIN_EVENT_TIME_MS && e.time_ms <= NOW_MS + MAX_FUTURE_SKEW_MS,
        "time {}",
        e.time_ms
    );
    check_properties(&e.properties);
    for field in [&e.page.url, &e.page.referrer, &e.page.title, &e.page.screen]
        .into_iter()
        .flatten()
    {
        assert!(!field.is_empty() && field.chars().count() <= MAX_STRING_CHARS);
    }
    let text = serde_json::to_string(e).unwrap_or_default();
    assert!(
        !text.is_empty() && text.len() <= MAX_EVENT_BYTES,
        "event of {} bytes",
        text.len()
    );
    let back: Event = serde_json::from_str(&text).unwrap_or_else(|err| panic!("event does not read back: {err}"));
    assert_eq!(
        (&back.insert_id, &back.name, &back.distinct_id),
        (&e.insert_id, &e.name, &e.distinct_id)
    );
    assert_eq!(back.properties.len(), e.properties.len());
}

/// A property map within the limits: count, key length, and each value.
pub fn check_properties(map: &Map<String, Value>) {
    assert!(map.len() <= MAX_PROPERTIES, "{} properties", map.len());
    for (key, value) in map {
        assert!(key.chars().count() <= MAX_PROPERTY_KEY_CHARS);
        check_value(value, 1);
    }
}

fn check_value(value: &Value, depth: usize) {
    match value {
        Value::String(s) => assert!(s.chars().count() <= MAX_STRING_CHARS),
        Value::Array(items) => {
            assert!(depth < MAX_JSON_DEPTH, "nested past {MAX_JSON_DEPTH}");
            items.iter().for_each(|v| check_value(v, depth + 1));
        }
        Value::Object(map) => {
            assert!(depth < MAX_JSON_DEPTH, "nested past {MAX_JSON_DEPTH}");
            assert!(map.len() <= MAX_PROPERTIES);
            map.values().for_each(|v| check_value(v, depth + 1));
        }
        _ => {}
    }
}

/// Mixpanel's privacy and bookkeeping rules: the token, IP addresses and
/// `mp_` properties are never stored, and reserved fields have moved out.
fn check_mixpanel_event(e: &Event) {
    for key in ["ip", "$ip", "distinct_id", "$device_id", "time", "$insert_id"] {
        assert!(!e.properties.contains_key(key), "{key} kept");
    }
    // These move out when they are text; anything else is just a property.
    for key in ["token", "$current_url", "$referrer"] {
        assert!(!e.properties.get(key).is_some_and(Value::is_string), "{key} kept");
    }
    assert!(!e.properties.keys().any(|k| k.starts_with("mp_")), "mp_ property kept");
}

/// A profile update within the limits, that reads back and applies.
pub fn check_profile(u: &ProfileUpdate) {
    assert_eq!(u.project, PROJECT);
    assert!(!u.distinct_id.is_empty() && u.distinct_id.chars().count() <= MAX_ID_CHARS);
    assert!(u.time_ms >= MIN_EVENT_TIME_MS && u.time_ms <= NOW_MS + MAX_FUTURE_SKEW_MS);
    assert!(!u.ops.is_empty());
    for op in &u.ops {
        match op {
            ProfileOp::Set(m)
            | ProfileOp::SetOnce(m)
            | ProfileOp::Append(m)
            | ProfileOp::Union(m)
            | ProfileOp::Remove(m) => check_properties(m),
            ProfileOp::Add(m) => {
                check_properties(m);
                assert!(m.values().all(Value::is_number));
            }
            ProfileOp::Unset(keys) => {
                assert!(keys.len() <= MAX_PROPERTIES);
                assert!(keys.iter().all(|k| k.chars().count() <= MAX_PROPERTY_KEY_CHARS));
            }
            ProfileOp::Delete => {}
        }
    }
    let text = serde_json::to_string(u).unwrap_or_default();
    assert!(
        !text.is_empty() && text.len() <= MAX_EVENT_BYTES,
        "profile update of {} bytes",
        text.len()
    );
    let back: ProfileUpdate =
        serde_json::from_str(&text).unwrap_or_else(|err| panic!("update does not read back: {err}"));
    assert_eq!(back.ops.len(), u.ops.len());
    let applied = profile::apply(None, &u.ops);
    assert_eq!(applied.is_none(), matches!(u.ops.last(), Some(ProfileOp::Delete)));
}

/// Objects and arrays in a value, itself included.
/// Values inside the objects and arrays of `value`, at any depth: what
/// [`MAX_JSON_ELEMENTS`] counts.
pub fn elements(value: &Value) -> usize {
    match value {
        Value::Array(items) => items.len() + items.iter().map(elements).sum::<usize>(),
        Value::Object(map) => map.len() + map.values().map(elements).sum::<usize>(),
        _ => 0,
    }
}

pub fn containers(value: &Value) -> usize {
    match value {
        Value::Array(items) => 1 + items.iter().map(containers).sum::<usize>(),
        Value::Object(map) => 1 + map.values().map(containers).sum::<usize>(),
        _ => 0,
    }
}

fn check_size(reply: &Reply, input: usize) {
    assert!(
        reply.body.len() <= input.saturating_mul(REPLY_GROWTH) + REPLY_SLACK_BYTES,
        "a {input}-byte request got a {}-byte reply",
        reply.body.len()
    );
    assert!(reply.status >= 200 && reply.status < 500, "status {}", reply.status);
}

fn reply_json(reply: &Reply) -> Value {
    assert_eq!(reply.content_type, dialect::JSON);
    serde_json::from_slice(&reply.body).unwrap_or_else(|e| panic!("reply is not JSON: {e}"))
}

fn check_browser_reply(reply: &Reply, err: &IngestError, input: usize) {
    check_size(reply, input);
    assert_eq!(reply.status, err.status());
    let body = reply_json(reply);
    assert!(body["error"].is_string());
    if let IngestError::Invalid(errors) = err {
        assert_eq!(body["fields"].as_array().map(Vec::len), Some(errors.len()));
    }
}

/// Mixpanel's `/track` and `/engage`: 200 with `0` for refused content,
/// 200 with `1` otherwise, the other statuses kept, in the asked shape.
fn check_track_reply(reply: &Reply, err: Option<&IngestError>, input: usize) {
    check_size(reply, input);
    let expected = match err.map(IngestError::status) {
        None | Some(400) => 200,
        Some(other) => other,
    };
    if reply.status == 302 {
        let location = reply
            .headers
            .iter()
            .find(|(k, _)| *k == "Location")
            .map(|(_, v)| v.as_str());
        check_redirect_target(location.unwrap_or(""));
        return;
    }
    assert_eq!(reply.status, expected);
    let outcome = if err.is_some() { "0" } else { "1" };
    match reply.content_type {
        mixpanel::GIF => assert_eq!(reply.body, mixpanel::PIXEL_GIF),
        mixpanel::JAVASCRIPT => {
            let text = String::from_utf8_lossy(&reply.body);
            let open = text.find('(').unwrap_or(0);
            check_callback(Some(&text[..open]));
            assert!(text.ends_with(')'));
        }
        dialect::JSON => assert_eq!(reply_json(reply)["status"].to_string(), outcome),
        _ => assert_eq!(String::from_utf8_lossy(&reply.body), outcome),
    }
}

fn check_import_reply(reply: &Reply, err: &IngestError, input: usize) {
    check_size(reply, input);
    assert_eq!(reply.status, err.status());
    let body = reply_json(reply);
    assert_eq!(body["code"], err.status());
    assert!(body["error"].is_string());
}

fn check_vemetric_reply(err: &IngestError, input: usize) {
    let reply = vemetric::error(err);
    check_size(&reply, input);
    assert_eq!(reply.status, err.status());
    if reply.status == 400 {
        assert_eq!(reply.body, b"Invalid!");
    }
}

fn check_empmix_reply(reply: &Reply, err: &IngestError, input: usize) {
    check_size(reply, input);
    assert_eq!(reply.status, err.status());
    let body = reply_json(reply);
    assert_eq!(body["status"], 0);
    assert!(body["error"].is_string());
}

fn check_crm_reply(reply: &Reply, err: &IngestError, input: usize) {
    check_size(reply, input);
    assert_eq!(reply.status, err.status());
    let body = reply_json(reply);
    let entries = body["errors"].as_array().cloned().unwrap_or_default();
    assert!(!entries.is_empty());
    assert!(entries
        .iter()
        .all(|e| e["message"].is_string() && e["description"].is_string()));
}
