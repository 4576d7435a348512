//! Our own tracker's beacon: `POST /collect` with a `text/plain` JSON body (so
//! browsers send no CORS preflight) in short keys, as Plausible does, because
//! every byte of the tracker counts.
//!
//! ```json
//! {"t":"demo-token","e":[{"n":"$pageview","i":"…","ts":1700000000000,
//!   "d":"device id","id":"user id","u":"url","r":"referrer","h":"title",
//!   "s":"1920x1080","p":{"k":"v"}}]}
//! ```

use super::Reply;
use crate::error::{FieldError, IngestError};
use crate::event::{Dialect, Event, EventDraft, PageContext};
use crate::limits::MAX_BROWSER_BATCH_EVENTS;
use crate::payload::parse_json;
use crate::validate::{finish_all, Admission};
use serde_json::{json, Map, Value};

pub struct BrowserBatch {
    pub token: Option<String>,
    pub drafts: Vec<EventDraft>,
}

pub fn decode(body: &[u8]) -> Result<BrowserBatch, IngestError> {
    let Value::Object(mut root) = parse_json(body)? else {
        return Err(IngestError::BadRequest("body must be a JSON object".into()));
    };
    let token = match root.remove("t") {
        Some(Value::String(t)) => Some(t),
        _ => None,
    };
    let items = match root.remove("e") {
        Some(Value::Array(items)) => items,
        _ => return Err(IngestError::BadRequest("'e' must be an array of events".into())),
    };
    if items.is_empty() {
        return Err(IngestError::BadRequest("'e' must hold at least one event".into()));
    }
    if items.len() > MAX_BROWSER_BATCH_EVENTS {
        return Err(IngestError::TooManyEvents {
            count: items.len(),
            limit: MAX_BROWSER_BATCH_EVENTS,
        });
    }
    let drafts = items.into_iter().map(draft).collect::<Result<_, _>>()?;
    Ok(BrowserBatch { token, drafts })
}

fn draft(item: Value) -> Result<EventDraft, IngestError> {
    let Value::Object(mut e) = item else {
        return Err(IngestError::BadRequest("each event must be a JSON object".into()));
    };
    let properties = match e.remove("p") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(IngestError::BadRequest("'p' must be an object".into())),
    };
    let mut text = |key: &str| match e.remove(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    };
    let page = PageContext {
        url: text("u"),
        referrer: text("r"),
        title: text("h"),
        screen: text("s"),
    };
    Ok(EventDraft {
        name: e.remove("n"),
        distinct_id: e.remove("id"),
        device_id: e.remove("d"),
        time: e.remove("ts"),
        insert_id: e.remove("i"),
        page,
        properties,
    })
}

/// Accepted: nothing to say (beacons ignore the answer anyway).
/// Validates a batch; the cookieless id stands in for a visitor the
/// tracker could not name (consent withheld, no cookie).
pub fn finish(drafts: Vec<EventDraft>, admitted: &Admission<'_>) -> (Vec<Event>, Vec<FieldError>) {
    finish_all(drafts, &admitted.as_dialect(Dialect::Browser, true))
}

pub fn accepted() -> Reply {
    Reply::empty(202)
}

pub fn error(err: &IngestError) -> Reply {
    let mut body = json!({ "error": err.message() });
    if let IngestError::Invalid(fields) = err {
        body["fields"] = json!(fields);
    }
    Reply::json(err.status(), &body).retry_after_for(err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_short_keys() {
        let body = br#"{"t":"tok","e":[{"n":"$pageview","i":"abc","ts":1700000000000,"d":"dev","u":"https://a.test/x","r":"https://b.test/","h":"Title","s":"800x600","p":{"k":"v"}}]}"#;
        let batch = decode(body).expect("decodes");
        assert_eq!(batch.token.as_deref(), Some("tok"));
        let d = &batch.drafts[0];
        assert_eq!(d.name, Some(json!("$pageview")));
        assert_eq!(d.device_id, Some(json!("dev")));
        assert_eq!(d.page.url.as_deref(), Some("https://a.test/x"));
        assert_eq!(d.page.title.as_deref(), Some("Title"));
        assert_eq!(d.page.screen.as_deref(), Some("800x600"));
        assert_eq!(d.properties["k"], "v");
    }

    #[test]
    fn a_repeated_property_key_keeps_its_last_value() {
        // The tracker writes page-wide properties first and the event's own
        // after them, so that the event's value counts.
        let body = br#"{"t":"tok","e":[{"n":"x","d":"dev","p":{"plan":"free","a":1,"plan":"pro"}}]}"#;
        let batch = decode(body).expect("decodes");
        assert_eq!(batch.drafts[0].properties["plan"], "pro");
        assert_eq!(batch.drafts[0].properties.len(), 2);
    }

    #[test]
    fn batch_size_at_and_past_limit() {
        let one = r#"{"n":"x","d":"dev"}"#;
        let body = |n: usize| format!(r#"{{"t":"tok","e":[{}]}}"#, vec![one; n].join(","));
        assert_eq!(
            decode(body(MAX_BROWSER_BATCH_EVENTS).as_bytes())
                .map(|b| b.drafts.len())
                .ok(),
            Some(50)
        );
        assert!(matches!(
            decode(body(MAX_BROWSER_BATCH_EVENTS + 1).as_bytes()),
            Err(IngestError::TooManyEvents { count: 51, limit: 50 })
        ));
    }

    #[test]
    fn wrong_shapes_are_bad_requests() {
        for body in [
            &b"[]"[..],
            b"{\"t\":\"x\"}",
            b"{\"e\":[]}",
            b"{\"e\":[1]}",
            b"{\"e\":[{\"p\":[]}]}",
            b"nope",
        ] {
            let err = decode(body).err().map(|e| e.status());
            assert_eq!(err, Some(400), "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn error_reply_lists_fields() {
        let err = IngestError::Invalid(vec![crate::FieldError::new(2, "event", "is required")]);
        let reply = error(&err);
        assert_eq!(reply.status, 400);
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        assert_eq!(body["fields"][0]["index"], 2);
        assert_eq!(body["error"], "'event' is invalid: is required");
    }
}
