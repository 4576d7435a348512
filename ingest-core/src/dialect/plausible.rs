//! Plausible's tracker and Events API: `POST /api/event` with one JSON
//! event, in short keys (the script and `@plausible-analytics/tracker`) or
//! long ones (the documented Events API): `n`/`name`, `u`/`url`,
//! `d`/`domain`, `r`/`referrer`, `p`/`props` (`m`/`meta` in old scripts),
//! `$`/`revenue`, `h`/`hashMode`, `i`/`interactive`, and the engagement
//! event's `sd` (scroll depth, percent) and `e` (engaged milliseconds).
//! The body is sent as `text/plain`, so a page needs no CORS preflight.
//!
//! There is no key: the site is named by its domain. `d` may list several
//! domains separated by commas (the script then counts the event for each
//! site); the first domain a project lists in `domains` in `PROJECTS` takes
//! the event. A domain no project lists is dropped with Plausible's answer
//! for a site it does not know: `202 ok` and `x-plausible-dropped`.
//!
//! Names are our canonical ones where Plausible's tracker sends a
//! standard event: `pageview` is stored as `$pageview`, `engagement` as
//! `$engagement` (`e` as `engaged_ms`, `sd` as `scroll`), `Outbound Link:
//! Click` as `$outbound_link` and `File Download` as `$file_download` (their
//! `url` property also as `href`, which the dashboard's link panels read),
//! and `404` as `$404`. Every other name is a custom event and keeps it.
//!
//! Visitors are counted as Plausible counts them, without a cookie: the
//! daily hash of the request's IP and user agent (`anonymous_id`).
//!
//! Answers: `202` with the text `ok`; a refusal is a 400 whose body names
//! the fields, `{"errors": {"url": ["is required"]}}`, under Plausible's
//! field names (`event_name`, `url`, `domain`, `props`, `revenue`,
//! `request`).

use super::Reply;
use crate::error::{FieldError, IngestError};
use crate::event::{Dialect, Event, EventDraft, PageContext};
use crate::limits::MAX_PLAUSIBLE_DOMAINS;
use crate::payload::parse_json;
use crate::validate::{finish_each, Admission, REVENUE_PROPERTY};
use serde_json::{json, Map, Number, Value};

pub const PAGEVIEW: &str = "$pageview";
pub const ENGAGEMENT: &str = "$engagement";
pub const OUTBOUND_LINK: &str = "$outbound_link";
pub const FILE_DOWNLOAD: &str = "$file_download";
pub const NOT_FOUND: &str = "$404";

/// The header Plausible sets on an answer whose event it did not record.
pub const DROPPED_HEADER: &str = "x-plausible-dropped";

/// A decoded `/api/event`.
#[derive(Debug, Clone, PartialEq)]
pub struct PlausibleEvent {
    /// The domains `d` names (or the URL's host), in their normal form.
    pub domains: Vec<String>,
    pub draft: EventDraft,
}

pub fn decode(body: &[u8]) -> Result<PlausibleEvent, IngestError> {
    let Ok(Value::Object(mut root)) = parse_json(body) else {
        return Err(refused("request", "Unable to parse request body as json"));
    };
    let mut errors = Vec::new();
    let mut fail = |field: &str, message: &str| errors.push(FieldError::new(0, field, message));

    let url = match take(&mut root, &["u", "url"]) {
        None | Some(Value::Null) => {
            fail("url", "is required");
            None
        }
        Some(Value::String(url)) if url.trim_start().to_ascii_lowercase().starts_with("data:") => {
            fail("url", "scheme is not allowed");
            None
        }
        Some(Value::String(url)) => Some(url),
        Some(_) => {
            fail("url", "must be a valid url");
            None
        }
    };
    let host = url
        .as_deref()
        .and_then(|u| url::Url::parse(u).ok())
        .and_then(|u| u.host_str().map(str::to_owned));
    let domains = match take(&mut root, &["d", "domain"]) {
        Some(Value::String(list)) if !list.trim().is_empty() => list
            .split(',')
            .map(crate::auth::normalise_domain)
            .filter(|d| !d.is_empty())
            .collect(),
        Some(Value::String(_)) => Vec::new(),
        _ => host.iter().map(|h| crate::auth::normalise_domain(h)).collect(),
    };
    if domains.is_empty() {
        fail("domain", "can't be blank");
    } else if domains.len() > MAX_PLAUSIBLE_DOMAINS {
        fail("domain", &format!("may list at most {MAX_PLAUSIBLE_DOMAINS} domains"));
    }

    let name = match take(&mut root, &["n", "name"]) {
        Some(Value::String(name)) if !name.trim().is_empty() => Some(name),
        // Plausible takes whole numbers as names (its 404 tracking sent 404).
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => {
            fail("event_name", "can't be blank");
            None
        }
    };

    let mut properties = props(take(&mut root, &["p", "props", "m", "meta"]));
    if let Some(revenue) = take(&mut root, &["$", "revenue"]).filter(|r| !r.is_null()) {
        properties.insert(REVENUE_PROPERTY.to_owned(), revenue_value(revenue));
    }
    let name = name.map(|name| canonical(name, &mut root, &mut properties, &mut fail));
    let referrer = match take(&mut root, &["r", "referrer"]) {
        Some(Value::String(r)) if !r.is_empty() => Some(r),
        _ => None,
    };
    if !errors.is_empty() {
        return Err(IngestError::Invalid(errors));
    }
    let draft = EventDraft {
        name: name.map(Value::String),
        page: PageContext {
            url,
            referrer,
            ..PageContext::default()
        },
        properties,
        ..EventDraft::default()
    };
    Ok(PlausibleEvent { domains, draft })
}

/// Validates the event with the shared rules; errors use Plausible's names.
pub fn finish(event: PlausibleEvent, admitted: &Admission<'_>) -> Result<Event, IngestError> {
    let cx = admitted.as_dialect(Dialect::Plausible, true);
    let (mut events, mut errors) = finish_each([Ok(event.draft)], &cx, |_, _| Vec::new());
    for error in &mut errors {
        error.field = field_name(&error.field).to_owned();
    }
    match events.pop() {
        Some(event) if errors.is_empty() => Ok(event),
        _ => Err(IngestError::Invalid(errors)),
    }
}

/// `202 ok`, as Plausible answers an event it records.
pub fn accepted() -> Reply {
    Reply::text(202, "ok")
}

/// `202 ok` with `x-plausible-dropped: 1`: an event of a site no project
/// lists, or of a bot; Plausible answers those the same way.
pub fn dropped() -> Reply {
    accepted().with_header(DROPPED_HEADER, "1")
}

/// `{"errors": {field: [messages]}}`. Content refusals are 400 as in
/// Plausible; a body too large, a rate limit or an outage keep their own
/// status (Plausible has none of ours to copy) in the same shape.
pub fn error(err: &IngestError) -> Reply {
    let mut errors = Map::new();
    match err {
        IngestError::Invalid(fields) => {
            for e in fields {
                let list = errors.entry(e.field.clone()).or_insert_with(|| json!([]));
                if let Value::Array(list) = list {
                    list.push(Value::String(e.message.clone()));
                }
            }
        }
        other => {
            errors.insert("request".into(), json!([other.message()]));
        }
    }
    Reply::json(err.status(), &json!({ "errors": errors })).retry_after_for(err)
}

fn refused(field: &str, message: &str) -> IngestError {
    IngestError::Invalid(vec![FieldError::new(0, field, message)])
}

fn take(root: &mut Map<String, Value>, keys: &[&str]) -> Option<Value> {
    let mut found = None;
    for key in keys {
        let value = root.remove(*key);
        if found.is_none() {
            found = value;
        }
    }
    found
}

/// Props as Plausible keeps them: an object, or its JSON text; values that
/// are empty, null, lists or objects are left out, the rest become text.
fn props(raw: Option<Value>) -> Map<String, Value> {
    let object = match raw {
        Some(Value::Object(map)) => map,
        Some(Value::String(text)) => match serde_json::from_str::<Value>(&text) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        },
        _ => Map::new(),
    };
    object
        .into_iter()
        .filter_map(|(key, value)| {
            let text = match value {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            (!key.trim().is_empty() && !text.trim().is_empty()).then_some((key, Value::String(text)))
        })
        .collect()
}

/// `{"amount": 10.5 or "10.5", "currency": "EUR"}` as our `$revenue`: the
/// amount a number. Anything else is passed on for validation to refuse.
fn revenue_value(raw: Value) -> Value {
    let Value::Object(mut fields) = raw else {
        return raw;
    };
    if let Some(Value::String(text)) = fields.get("amount") {
        if let Some(n) = text.trim().parse::<f64>().ok().and_then(Number::from_f64) {
            fields.insert("amount".into(), Value::Number(n));
        }
    }
    Value::Object(fields)
}

/// Plausible's standard events under our names; custom events as they are.
fn canonical(
    name: String,
    root: &mut Map<String, Value>,
    properties: &mut Map<String, Value>,
    fail: &mut impl FnMut(&str, &str),
) -> String {
    match name.as_str() {
        "pageview" => PAGEVIEW.to_owned(),
        "404" => NOT_FOUND.to_owned(),
        "engagement" => {
            let engaged = whole(root.remove("e"));
            let scroll = whole(root.remove("sd")).map(|sd| sd.min(100));
            if engaged.is_none() && scroll.is_none() {
                fail("event_name", "engagement needs a whole number in 'e' or 'sd'");
            }
            if let Some(ms) = engaged {
                properties.insert("engaged_ms".into(), json!(ms));
            }
            if let Some(percent) = scroll {
                properties.insert("scroll".into(), json!(percent));
            }
            ENGAGEMENT.to_owned()
        }
        "Outbound Link: Click" | "File Download" => {
            if let Some(url) = properties.get("url").cloned() {
                properties.insert("href".into(), url);
            }
            if name == "File Download" {
                FILE_DOWNLOAD.to_owned()
            } else {
                OUTBOUND_LINK.to_owned()
            }
        }
        _ => name,
    }
}

/// A non-negative whole number, or its text.
fn whole(value: Option<Value>) -> Option<u64> {
    match value? {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Our validation's field names as Plausible names them.
fn field_name(ours: &str) -> &str {
    match ours {
        "event" => "event_name",
        f if f.starts_with("properties.$revenue") => "revenue",
        f if f.starts_with("properties.distinct_id") => "request",
        f if f.starts_with("properties") => "props",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RequestContext;
    use crate::limits::MAX_STRING_CHARS;

    const NOW: i64 = 1_795_424_070_930;

    fn request() -> RequestContext {
        crate::dialect::test_request::browser(NOW)
    }

    fn cx(req: &RequestContext) -> Admission<'_> {
        crate::dialect::test_request::public(req)
    }

    fn run(body: &str) -> Result<Event, IngestError> {
        let r = request();
        finish(decode(body.as_bytes())?, &cx(&r))
    }

    fn reply_of(body: &str) -> (u16, Value) {
        let reply = error(&run(body).err().unwrap_or(IngestError::Unavailable));
        (reply.status, serde_json::from_slice(&reply.body).unwrap_or_default())
    }

    #[test]
    fn events_api_example_is_a_pageview() {
        // The Events API reference's curl example, long keys.
        let body = r#"{"name":"pageview","url":"http://dummy.site","domain":"dummy.site","width":1666}"#;
        let decoded = decode(body.as_bytes()).expect("decodes");
        assert_eq!(decoded.domains, ["dummy.site"]);
        let event = run(body).expect("valid");
        assert_eq!(event.name, PAGEVIEW);
        assert!(crate::enrich::is_pageview(&event.name));
        assert_eq!(event.page.url.as_deref(), Some("http://dummy.site"));
        assert_eq!(event.distinct_id, "cl-visitor");
        assert_eq!(event.source, Dialect::Plausible);
        assert_eq!(event.time_ms, NOW);
        assert!(!event.properties.contains_key("width"));
    }

    #[test]
    fn tracker_payload_with_props_and_revenue() {
        // What @plausible-analytics/tracker 0.4 sends for
        // track("Purchase", {props, revenue}) on a hash-routed page.
        let body = r##"{"n":"Purchase","v":36,"u":"https://shop.example/#/cart","d":"shop.example","r":"https://www.google.com/","p":{"plan":"pro","seats":3,"empty":"","list":[1],"nested":{"a":1},"null":null},"$":{"amount":"15.99","currency":"EUR"},"h":1}"##;
        let event = run(body).expect("valid");
        assert_eq!(event.name, "Purchase");
        assert_eq!(event.page.url.as_deref(), Some("https://shop.example/#/cart"));
        assert_eq!(event.page.referrer.as_deref(), Some("https://www.google.com/"));
        assert_eq!(
            Value::Object(event.properties),
            json!({"plan": "pro", "seats": "3", "$revenue": {"amount": 15.99, "currency": "EUR"}})
        );
    }

    #[test]
    fn props_may_be_json_text() {
        let event = run(r#"{"n":"Signup","u":"https://a.example/","d":"a.example","p":"{\"method\":\"google\"}"}"#)
            .expect("valid");
        assert_eq!(event.properties["method"], "google");
        let event = run(r#"{"n":"Signup","u":"https://a.example/","d":"a.example","m":"not json"}"#).expect("valid");
        assert!(event.properties.is_empty());
    }

    #[test]
    fn standard_events_take_our_names() {
        let outbound = run(r#"{"n":"Outbound Link: Click","u":"https://a.example/","d":"a.example","p":{"url":"https://other.example/x"}}"#)
            .expect("valid");
        assert_eq!(outbound.name, OUTBOUND_LINK);
        assert_eq!(outbound.properties["href"], "https://other.example/x");
        assert_eq!(outbound.properties["url"], "https://other.example/x");
        let download = run(
            r#"{"n":"File Download","u":"https://a.example/","d":"a.example","p":{"url":"https://a.example/f.pdf"}}"#,
        )
        .expect("valid");
        assert_eq!(
            (download.name.as_str(), &download.properties["href"]),
            (FILE_DOWNLOAD, &json!("https://a.example/f.pdf"))
        );
        let missing = run(r#"{"n":404,"u":"https://a.example/nope","d":"a.example"}"#).expect("valid");
        assert_eq!(missing.name, NOT_FOUND);
        // The tracker's engagement report.
        let engagement =
            run(r#"{"n":"engagement","sd":140,"d":"a.example","u":"https://a.example/","p":{},"e":5230,"v":36}"#)
                .expect("valid");
        assert_eq!(engagement.name, ENGAGEMENT);
        assert_eq!(
            Value::Object(engagement.properties),
            json!({"engaged_ms": 5230, "scroll": 100})
        );
        assert_eq!(
            reply_of(r#"{"n":"engagement","d":"a.example","u":"https://a.example/"}"#).1["errors"]["event_name"][0],
            "engagement needs a whole number in 'e' or 'sd'"
        );
        // A custom event keeps its name, even one that looks like ours.
        assert_eq!(
            run(r#"{"n":"Pageview","u":"https://a.example/","d":"a.example"}"#)
                .map(|e| e.name)
                .ok()
                .as_deref(),
            Some("Pageview")
        );
    }

    #[test]
    fn domains_list_and_default() {
        let decoded = decode(br#"{"n":"pageview","u":"https://www.a.example/","d":"www.A.example, b.example"}"#)
            .expect("decodes");
        assert_eq!(decoded.domains, ["a.example", "b.example"]);
        // Without `d`, the URL's host names the site.
        let decoded = decode(br#"{"n":"pageview","u":"https://www.c.example/x"}"#).expect("decodes");
        assert_eq!(decoded.domains, ["c.example"]);
        let list = |n: usize| (0..n).map(|i| format!("d{i}.example")).collect::<Vec<_>>().join(",");
        let body = |n: usize| format!(r#"{{"n":"pageview","u":"https://a.example/","d":"{}"}}"#, list(n));
        assert_eq!(
            decode(body(MAX_PLAUSIBLE_DOMAINS).as_bytes())
                .map(|d| d.domains.len())
                .ok(),
            Some(MAX_PLAUSIBLE_DOMAINS)
        );
        assert!(decode(body(MAX_PLAUSIBLE_DOMAINS + 1).as_bytes()).is_err());
    }

    #[test]
    fn refusals_in_plausibles_shape() {
        assert_eq!(
            reply_of("nope"),
            (
                400,
                json!({"errors": {"request": ["Unable to parse request body as json"]}})
            )
        );
        assert_eq!(reply_of("[1]").0, 400);
        assert_eq!(
            reply_of(r#"{"n":"pageview","d":"a.example"}"#),
            (400, json!({"errors": {"url": ["is required"]}}))
        );
        assert_eq!(
            reply_of(r#"{"n":"pageview","u":"data:text/html,hi","d":"a.example"}"#).1,
            json!({"errors": {"url": ["scheme is not allowed"]}})
        );
        assert_eq!(
            reply_of(r#"{"n":"pageview","u":"https://a.example/","d":" "}"#).1,
            json!({"errors": {"domain": ["can't be blank"]}})
        );
        assert_eq!(
            reply_of(r#"{"u":"https://a.example/","d":"a.example"}"#).1,
            json!({"errors": {"event_name": ["can't be blank"]}})
        );
        // The shared limits, under Plausible's names.
        let long = "x".repeat(MAX_STRING_CHARS + 1);
        let (status, body) = reply_of(&format!(
            r#"{{"n":"e","u":"https://a.example/","d":"a.example","p":{{"k":"{long}"}}}}"#
        ));
        assert_eq!(status, 400);
        assert!(body["errors"]["props"].is_array(), "{body}");
        let (_, body) =
            reply_of(r#"{"n":"e","u":"https://a.example/","d":"a.example","$":{"amount":"lots","currency":"EUR"}}"#);
        assert!(body["errors"]["revenue"].is_array(), "{body}");
        let at_limit = format!(
            r#"{{"n":"e","u":"https://a.example/","d":"a.example","p":{{"k":"{}"}}}}"#,
            "x".repeat(MAX_STRING_CHARS)
        );
        assert!(run(&at_limit).is_ok());
    }

    #[test]
    fn replies() {
        let ok = accepted();
        assert_eq!((ok.status, ok.body.as_slice()), (202, &b"ok"[..]));
        let dropped = dropped();
        assert_eq!(dropped.status, 202);
        assert!(dropped.headers.iter().any(|(k, v)| *k == DROPPED_HEADER && v == "1"));
        let busy = error(&IngestError::Unavailable);
        assert_eq!(busy.status, 503);
        assert!(busy.headers.iter().any(|(k, _)| *k == "Retry-After"));
        assert_eq!(error(&IngestError::PayloadTooLarge { limit: 1 }).status, 413);
    }
}
