//! Emp-Mix Events API (seed 000): `POST /public/track` with the public key in
//! the body, `POST /public/track/bulk` with the secret key and at most 1000
//! events, `GET /public/events` with the secret key in `x-api-key`.
//! Every answer is `{"status": 1|0, "error": null|"…"}`, plus data on export.

use super::Reply;
use crate::error::IngestError;
use crate::event::EventDraft;
use crate::limits::MAX_BULK_EVENTS;
use crate::payload::parse_json;
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
