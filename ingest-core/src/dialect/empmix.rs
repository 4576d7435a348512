//! Emp-Mix Events API (seed 000): `POST /public/track` with the public key in
//! the body, `POST /public/track/bulk` with the secret key and at most 1000
//! events, `GET /public/events` with the secret key in `x-api-key`.
//! Every answer is `{"status": 1|0, "error": null|"…"}`, plus data on export.
//!
//! `timestamp` is "Epoch timestamp in milliseconds", and is read as
//! milliseconds whatever its size ([`crate::time::TimeUnit::Milliseconds`]):
//! the other APIs' rule (below 1e11 it is seconds) would turn a 1972 time
//! into the year 4000, and a time sent in seconds by mistake is refused
//! (as January 1970) rather than guessed at.

use super::Reply;
use crate::error::{FieldError, IngestError};
use crate::event::{Dialect, Event, EventDraft};
use crate::limits::MAX_BULK_EVENTS;
use crate::payload::parse_json;
use crate::validate::{finish_all, Admission};
use serde_json::{json, Map, Value};

/// A decoded track or bulk request: the key it carried and its events.
pub struct EmpMixRequest {
    pub api_key: Option<String>,
    pub drafts: Vec<EventDraft>,
}

pub fn decode_track(body: &[u8]) -> Result<EmpMixRequest, IngestError> {
    let mut root = object(parse_json(body)?)?;
    let api_key = take_key(&mut root);
    let draft = draft(root)?;
    Ok(EmpMixRequest {
        api_key,
        drafts: vec![draft],
    })
}

pub fn decode_bulk(body: &[u8]) -> Result<EmpMixRequest, IngestError> {
    let mut root = object(parse_json(body)?)?;
    let api_key = take_key(&mut root);
    let events = match root.remove("events") {
        Some(Value::Array(events)) => events,
        _ => return Err(IngestError::BadRequest("events must be an array".into())),
    };
    if events.is_empty() {
        return Err(IngestError::BadRequest("events must hold at least one event".into()));
    }
    if events.len() > MAX_BULK_EVENTS {
        return Err(IngestError::TooManyEvents {
            count: events.len(),
            limit: MAX_BULK_EVENTS,
        });
    }
    let drafts = events
        .into_iter()
        .map(|e| object(e).and_then(draft))
        .collect::<Result<_, _>>()?;
    Ok(EmpMixRequest { api_key, drafts })
}

fn object(value: Value) -> Result<Map<String, Value>, IngestError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(IngestError::BadRequest("expected a JSON object".into())),
    }
}

fn take_key(root: &mut Map<String, Value>) -> Option<String> {
    match root.remove("apiKey") {
        Some(Value::String(key)) => Some(key),
        _ => None,
    }
}

/// `event` and `distinct_id` are required here (the seed says so), so they
/// are checked before the shared validation, which would accept a device id.
fn draft(mut e: Map<String, Value>) -> Result<EventDraft, IngestError> {
    let properties = match e.remove("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => return Err(IngestError::BadRequest("properties must be an object".into())),
    };
    let distinct_id = e.remove("distinct_id");
    if distinct_id
        .as_ref()
        .is_none_or(|v| v.is_null() || v.as_str() == Some(""))
    {
        return Err(IngestError::BadRequest("distinct_id is required".into()));
    }
    let insert_id = e.remove("insert_id").or_else(|| properties.get("$insert_id").cloned());
    Ok(EventDraft {
        name: e.remove("event"),
        distinct_id,
        time: e.remove("timestamp"),
        insert_id,
        properties,
        ..Default::default()
    })
}

/// Validates every event, all or nothing: the errors name the fields as
/// this API spells them (`timestamp`, `distinct_id`, `insert_id`).
pub fn finish(drafts: Vec<EventDraft>, admitted: &Admission<'_>) -> Result<Vec<Event>, IngestError> {
    let (events, mut errors) = finish_all(drafts, &admitted.as_dialect(Dialect::EmpMix, false));
    if errors.is_empty() {
        return Ok(events);
    }
    for error in &mut errors {
        rename_field(error);
    }
    Err(IngestError::Invalid(errors))
}

fn rename_field(error: &mut FieldError) {
    let ours = match error.field.as_str() {
        "properties.time" => "timestamp",
        "properties.distinct_id" => "distinct_id",
        "properties.$insert_id" => "insert_id",
        _ => return,
    };
    error.field = ours.to_owned();
}

pub fn ok() -> Reply {
    Reply::json(200, &json!({"status": 1, "error": null}))
}

pub fn error(err: &IngestError) -> Reply {
    Reply::json(err.status(), &json!({"status": 0, "error": err.message()})).retry_after_for(err)
}

/// One page of `GET /public/events`.
pub fn events_page(events: Vec<Value>, page: u32, limit: u32, total: u64) -> Reply {
    Reply::json(
        200,
        &json!({"status": 1, "error": null, "page": page, "limit": limit, "total": total, "events": events}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_track_example_decodes() {
        let body = br#"{"apiKey":"YOUR_PUBLIC_API_KEY","event":"purchase","distinct_id":"user_123","properties":{"price":99.99,"currency":"USD"}}"#;
        let req = decode_track(body).expect("decodes");
        assert_eq!(req.api_key.as_deref(), Some("YOUR_PUBLIC_API_KEY"));
        let d = &req.drafts[0];
        assert_eq!(d.name, Some(json!("purchase")));
        assert_eq!(d.distinct_id, Some(json!("user_123")));
        assert_eq!(d.properties["price"], 99.99);
        assert_eq!(d.time, None);
    }

    #[test]
    fn seed_bulk_example_decodes_with_ms_timestamp() {
        let body = br#"{"apiKey":"YOUR_SECRET_KEY","events":[{"event":"signup","distinct_id":"user_123","timestamp":1672531200000,"properties":{}}]}"#;
        let req = decode_bulk(body).expect("decodes");
        assert_eq!(req.drafts[0].time, Some(json!(1_672_531_200_000_i64)));
    }

    #[test]
    fn bulk_count_at_and_past_limit() {
        let one = r#"{"event":"e","distinct_id":"u"}"#;
        let body = |n: usize| format!(r#"{{"apiKey":"k","events":[{}]}}"#, vec![one; n].join(","));
        assert_eq!(
            decode_bulk(body(MAX_BULK_EVENTS).as_bytes())
                .map(|r| r.drafts.len())
                .ok(),
            Some(1000)
        );
        assert!(matches!(
            decode_bulk(body(MAX_BULK_EVENTS + 1).as_bytes()),
            Err(IngestError::TooManyEvents {
                count: 1001,
                limit: 1000
            })
        ));
    }

    #[test]
    fn distinct_id_is_required() {
        for body in [
            &br#"{"apiKey":"k","event":"e"}"#[..],
            br#"{"apiKey":"k","event":"e","distinct_id":""}"#,
        ] {
            assert!(matches!(decode_track(body), Err(IngestError::BadRequest(_))));
        }
    }

    fn finish_at(body: &[u8], now_ms: i64) -> Result<Vec<Event>, IngestError> {
        let request = crate::event::RequestContext {
            received_at_ms: now_ms,
            ..Default::default()
        };
        // Bulk, with the secret key: the full range of times.
        let cx = Admission {
            project: "demo",
            key: crate::auth::KeyKind::Secret,
            request: &request,
            anonymous_id: Some("cl-x"),
        };
        finish(decode_bulk(body)?.drafts, &cx)
    }

    #[test]
    fn timestamps_are_milliseconds_always() {
        use crate::limits::{MIN_EVENT_TIME_MS, SECONDS_MS_BOUNDARY};
        const NOW: i64 = 1_790_000_000_000;
        let at = |ts: &str| {
            let body = format!(r#"{{"apiKey":"k","events":[{{"event":"e","distinct_id":"u","timestamp":{ts}}}]}}"#);
            finish_at(body.as_bytes(), NOW)
        };
        let time = |ts: &str| at(ts).map(|e| e[0].time_ms);
        // The seed's example, and times before 1973 that the seconds rule
        // would have read as seconds.
        assert_eq!(time("1672531200000"), Ok(1_672_531_200_000));
        assert_eq!(time(&MIN_EVENT_TIME_MS.to_string()), Ok(MIN_EVENT_TIME_MS));
        let below = SECONDS_MS_BOUNDARY as i64 - 1;
        assert_eq!(time(&below.to_string()), Ok(below));
        // Just past 1971-01-01, and a time in seconds: refused by their own name.
        for refused in [(MIN_EVENT_TIME_MS - 1).to_string(), "1672531200".to_owned()] {
            let Err(IngestError::Invalid(errors)) = at(&refused) else {
                panic!("{refused} accepted");
            };
            assert_eq!(errors[0].field, "timestamp");
            assert_eq!(
                error(&IngestError::Invalid(errors)).body,
                br#"{"error":"'timestamp' is invalid: must not be before 1971-01-01 (it is read as milliseconds since epoch)","status":0}"#.to_vec()
            );
        }
        // Not a number: said once, in milliseconds.
        let Err(not_a_number) = at(r#""soon""#) else {
            panic!("a word accepted as a time");
        };
        assert_eq!(
            not_a_number.message(),
            "'timestamp' is invalid: must be specified as milliseconds since epoch"
        );
        // No timestamp: the server's time.
        let events = finish_at(br#"{"apiKey":"k","events":[{"event":"e","distinct_id":"u"}]}"#, NOW);
        assert_eq!(events.map(|e| (e[0].time_ms, e[0].source)), Ok((NOW, Dialect::EmpMix)));
    }

    #[test]
    fn replies_match_the_seed() {
        assert_eq!(ok().body, br#"{"error":null,"status":1}"#.to_vec());
        let reply = error(&IngestError::Unauthorized);
        assert_eq!(reply.status, 401);
        let body: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
        assert_eq!(body["status"], 0);
        assert_eq!(body["error"], "missing or invalid credentials");
    }
}
