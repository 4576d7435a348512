//! A marketing-automation events API (seed 004): `POST /v1/event` with a
//! `user` (`email` or `_id`) and one `event`, keyed by its type:
//!
//! ```json
//! {"user": {"email": "ann@example.com"},
//!  "event": {"generic": {"generic": {"event_name": "my_event", "firstname": "Ann"}}}}
//! ```
//!
//! Types: `update` and `login` set user attributes (login may create the
//! user); `generic` names itself with `event_name` (the seed nests it twice,
//! once is accepted too); `confirmation` needs an `orderId`; `email_open`
//! (also spelled `emailOpen`) is an email being opened. Any other type is
//! stored as an event of that name with its fields as properties.
//!
//! The rules that need storage are left to the worker or made
//! deterministic here:
//! - the user must exist (except for `login`): [`CrmRequest::requires_existing_user`]
//!   tells the worker to look the profile up and answer [`user_not_found`];
//! - a second confirmation of an order is discarded: its `$insert_id` is
//!   derived from (project, "confirmation", orderId), and CRM events
//!   deduplicate on name and insert_id alone ([`crate::dedup::dedup_key`]),
//!   so D1's unique key drops the repeat whenever it comes;
//! - one email open per user per 20 minutes: its `$insert_id` is derived
//!   from (project, user, 20-minute window of the arrival time). Windows are
//!   aligned (00:00, 00:20, …), so two opens just either side of a boundary
//!   both count; within one window only the first is kept.

use super::Reply;
use crate::dedup::hex;
use crate::error::{FieldError, IngestError};
use crate::event::{Dialect, Event, EventDraft};
pub use crate::limits::EMAIL_OPEN_WINDOW_MS;
use crate::limits::MAX_ID_CHARS;
use crate::payload::parse_json;
use crate::profile::{ProfileDraft, ProfileOp, ProfileUpdate};
use crate::validate::{finish_each, finish_profile, Context};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub const MISSING_EVENT: &str = "Missing event information";
pub const MISSING_USER: &str = "Missing user information";
pub const INVALID_USER: &str = "Invalid user information";
pub const ONE_EVENT: &str = "One event per request";

/// The event types with rules of their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Update,
    Login,
    Generic,
    Confirmation,
    EmailOpen,
    /// Any other standard type, stored under its own name.
    Other,
}

/// A decoded `POST /v1/event`.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmRequest {
    /// The user as stored: the normalised email, or `_id` when there is no
    /// email (the seed's examples and login both speak of emails).
    pub user: String,
    pub email: Option<String>,
    pub kind: Kind,
    pub draft: EventDraft,
    /// `update` and `login` attributes as a `$set` (login also sets
    /// `$email`, and creates the profile even with no attributes).
    pub profile: Option<ProfileDraft>,
    /// True for every type but `login`: the worker must find the user's
    /// profile and answer [`user_not_found`] when there is none.
    pub requires_existing_user: bool,
}

pub fn decode(body: &[u8]) -> Result<CrmRequest, IngestError> {
    let Value::Object(mut root) = parse_json(body)? else {
        return Err(IngestError::BadRequest("body must be a JSON object".into()));
    };
    let (user, email) = read_user(root.remove("user"))?;
    let Some(Value::Object(event)) = root.remove("event") else {
        return Err(IngestError::BadRequest(MISSING_EVENT.into()));
    };
    if event.len() > 1 {
        return Err(IngestError::BadRequest(ONE_EVENT.into()));
    }
    let Some((type_name, fields)) = event.into_iter().next() else {
        return Err(IngestError::BadRequest(MISSING_EVENT.into()));
    };
    let mut fields = match fields {
        Value::Object(fields) => fields,
        Value::Null => Map::new(),
        _ => {
            return Err(IngestError::BadRequest(format!(
                "{MISSING_EVENT}: the event type must hold an object"
            )))
        }
    };
    let kind = match type_name.as_str() {
        "update" => Kind::Update,
        "login" => Kind::Login,
        "generic" => Kind::Generic,
        "confirmation" => Kind::Confirmation,
        "email_open" | "emailOpen" => Kind::EmailOpen,
        _ => Kind::Other,
    };
    let name = match kind {
        Kind::Generic => {
            // The seed nests a generic event in a second `generic`.
            if let Some(Value::Object(inner)) = fields.get("generic") {
                if fields.len() == 1 {
                    fields = inner.clone();
                }
            }
            fields.remove("event_name")
        }
        Kind::EmailOpen => Some(json!("email_open")),
        _ => Some(Value::String(type_name)),
    };
    let profile = match kind {
        Kind::Update if !fields.is_empty() => Some(vec![ProfileOp::Set(fields.clone())]),
        Kind::Login => {
            let mut values = fields.clone();
            if let Some(email) = &email {
                values.insert("$email".into(), json!(email));
            }
            Some(vec![if values.is_empty() {
                ProfileOp::SetOnce(values)
            } else {
                ProfileOp::Set(values)
            }])
        }
        _ => None,
    }
    .map(|ops| ProfileDraft {
        distinct_id: Some(json!(user)),
        time: None,
        ops,
    });
    let draft = EventDraft {
        name,
        distinct_id: Some(json!(user)),
        properties: fields,
        ..EventDraft::default()
    };
    Ok(CrmRequest {
        user,
        email,
        kind,
        draft,
        profile,
        requires_existing_user: kind != Kind::Login,
    })
}

/// Validates the event (and the profile update) and gives confirmations
/// and email opens their dedup ids. Events carry no time of their own here,
/// so they are stamped with the arrival time.
pub fn finish(request: CrmRequest, cx: &Context<'_>) -> Result<(Event, Option<ProfileUpdate>), Vec<FieldError>> {
    let cx = cx.for_dialect(Dialect::Crm, false);
    let now_ms = cx.request.received_at_ms;
    let mut draft = request.draft;
    draft.time = Some(json!(now_ms));
    let mut own = Vec::new();
    match request.kind {
        Kind::Confirmation => match order_id(draft.properties.get("orderId")) {
            Some(order) => draft.insert_id = Some(json!(keyed_id(&[cx.project, "confirmation", &order]))),
            None => own.push(FieldError::new(0, "event.confirmation.orderId", "is required")),
        },
        Kind::EmailOpen => {
            let window = now_ms.div_euclid(EMAIL_OPEN_WINDOW_MS).to_string();
            draft.insert_id = Some(json!(keyed_id(&[cx.project, "email_open", &request.user, &window])));
        }
        _ => {}
    }
    let (mut events, mut errors) = finish_each([Ok(draft)], &cx, |_, _| std::mem::take(&mut own));
    let profile = match request.profile.map(|p| finish_profile(p, 0, &cx)) {
        Some(Ok(update)) => Some(update),
        Some(Err(found)) => {
            errors.extend(found);
            None
        }
        None => None,
    };
    match events.pop() {
        Some(event) if errors.is_empty() => Ok((event, profile)),
        _ => Err(errors),
    }
}

/// The key a server sends: `Authorization: Bearer <key>`, or `x-api-key`.
pub fn api_key(authorization: Option<&str>, x_api_key: Option<&str>) -> Option<String> {
    let bearer = authorization.and_then(|value| {
        let (scheme, key) = value.trim().split_once(' ')?;
        scheme.eq_ignore_ascii_case("bearer").then(|| key.trim().to_owned())
    });
    bearer
        .or_else(|| x_api_key.map(|k| k.trim().to_owned()))
        .filter(|k| !k.is_empty())
}

pub fn created() -> Reply {
    Reply::json(
        200,
        &json!({"results": {"message": "Event created", "email": "Event was created for the specified user"}}),
    )
}

/// For a user that must exist and does not. The page documents 400 as its
/// only error status, so this is a 400 in the documented shape.
pub fn user_not_found() -> Reply {
    errors(
        400,
        vec![error_entry(
            "User not found",
            "No user with this email or _id exists; send a login event to create it first",
        )],
    )
}

pub fn error(err: &IngestError) -> Reply {
    let entries = match err {
        IngestError::BadRequest(message) if message == MISSING_EVENT => {
            vec![error_entry(
                MISSING_EVENT,
                "Please send event information along with user",
            )]
        }
        IngestError::BadRequest(message) if message == MISSING_USER => {
            vec![error_entry(
                MISSING_USER,
                "Please send user information (email or _id) along with event",
            )]
        }
        IngestError::BadRequest(message) if message == INVALID_USER => {
            vec![error_entry(
                INVALID_USER,
                "The email must be an address and an _id at most 255 characters",
            )]
        }
        IngestError::BadRequest(message) if message == ONE_EVENT => {
            vec![error_entry(ONE_EVENT, "Send one event type in the event object")]
        }
        IngestError::Invalid(fields) => fields
            .iter()
            .map(|f| error_entry("Invalid event information", &format!("'{}' {}", f.field, f.message)))
            .collect(),
        IngestError::Unauthorized => {
            vec![error_entry("Unauthorized", "Missing or invalid API key")]
        }
        IngestError::Forbidden => vec![error_entry(
            "Forbidden",
            "This key may not send events; use the secret key",
        )],
        other if other.status() == 400 => vec![error_entry("Invalid request", &other.message())],
        other => vec![error_entry(&other.to_string(), &other.message())],
    };
    errors(err.status(), entries).retry_after_for(err)
}

fn error_entry(message: &str, description: &str) -> Value {
    json!({"message": message, "description": description})
}

fn errors(status: u16, entries: Vec<Value>) -> Reply {
    Reply::json(status, &json!({ "errors": entries }))
}

/// The user's id and email. Emails are compared without case or
/// surrounding space, so they are stored that way.
fn read_user(user: Option<Value>) -> Result<(String, Option<String>), IngestError> {
    let missing = || IngestError::BadRequest(MISSING_USER.into());
    let invalid = || IngestError::BadRequest(INVALID_USER.into());
    let Some(Value::Object(user)) = user else {
        return Err(missing());
    };
    let email = match user.get("email") {
        None | Some(Value::Null) => None,
        Some(Value::String(e)) if e.trim().is_empty() => None,
        Some(Value::String(e)) => {
            let e = e.trim().to_lowercase();
            let valid = e.chars().count() <= MAX_ID_CHARS
                && matches!(e.split_once('@'), Some((local, domain)) if !local.is_empty() && !domain.is_empty());
            if !valid {
                return Err(invalid());
            }
            Some(e)
        }
        Some(_) => return Err(invalid()),
    };
    let id = match user.get("_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) if id.trim().is_empty() => None,
        Some(Value::String(id)) if id.chars().count() <= MAX_ID_CHARS => Some(id.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(invalid()),
    };
    match (email, id) {
        (Some(email), _) => Ok((email.clone(), Some(email))),
        (None, Some(id)) => Ok((id, None)),
        (None, None) => Err(missing()),
    }
}

/// An order id as text, so that `123` and `"123"` are one order.
fn order_id(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A stable `$insert_id` from parts, each length-prefixed so that no two
/// different part lists hash alike.
fn keyed_id(parts: &[&str]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_le_bytes());
        hasher.update(part.as_bytes());
    }
    hex(&hasher.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::is_valid_insert_id;
    use crate::event::RequestContext;

    const NOW: i64 = 1_795_424_070_930;

    /// A request at `received_at_ms`; each one has its own random id.
    fn request_at(received_at_ms: i64) -> RequestContext {
        RequestContext {
            received_at_ms,
            request_id: format!("req-{received_at_ms}"),
            ..Default::default()
        }
    }

    fn cx(req: &RequestContext) -> Context<'_> {
        Context {
            project: "demo",
            dialect: Dialect::Browser,
            key: crate::auth::KeyKind::Secret,
            request: req,
            anonymous_id: Some("cl-x"),
        }
    }

    fn run(body: &str, at: i64) -> Result<(Event, Option<ProfileUpdate>), Vec<FieldError>> {
        let req = request_at(at);
        let decoded = decode(body.as_bytes()).map_err(|e| vec![FieldError::new(0, "decode", e.message())])?;
        finish(decoded, &cx(&req))
    }

    fn insert_id(body: &str, at: i64) -> Option<String> {
        run(body, at).ok().map(|(e, _)| e.insert_id)
    }

    #[test]
    fn seed_update_example() {
        let body = r#"{"user": {"email": "alex@example.com"}, "event": {"update": {"firstname": "alexandru"}}}"#;
        let req = decode(body.as_bytes()).expect("decodes");
        assert_eq!((req.kind, req.requires_existing_user), (Kind::Update, true));
        let (event, profile) = run(body, NOW).expect("valid");
        assert_eq!(
            (event.name.as_str(), event.distinct_id.as_str()),
            ("update", "alex@example.com")
        );
        assert_eq!(event.source, Dialect::Crm);
        let profile = profile.expect("update sets attributes");
        let applied = crate::profile::apply(None, &profile.ops).map(Value::Object);
        assert_eq!(applied, Some(json!({"firstname": "alexandru"})));
    }

    #[test]
    fn seed_generic_example_nested_twice_or_once() {
        let twice = r#"{"user": {"email": "alex@example.com"}, "event": {"generic": {"generic": {"event_name": "my_event", "firstname": "alexandru"}}}}"#;
        let once = r#"{"user": {"email": "alex@example.com"}, "event": {"generic": {"event_name": "my_event", "firstname": "alexandru"}}}"#;
        for body in [twice, once] {
            let (event, profile) = run(body, NOW).expect("valid");
            assert_eq!(event.name, "my_event");
            assert_eq!(Value::Object(event.properties), json!({"firstname": "alexandru"}));
            assert_eq!(profile, None);
        }
        let nameless = r#"{"user": {"email": "a@b.c"}, "event": {"generic": {"generic": {"x": 1}}}}"#;
        assert_eq!(
            run(nameless, NOW).err().map(|e| e[0].field.clone()).as_deref(),
            Some("event")
        );
    }

    #[test]
    fn login_creates_the_user_and_keeps_the_email() {
        let body = r#"{"user": {"email": "  Ann@Example.COM "}, "event": {"login": {"firstname": "Ann"}}}"#;
        let req = decode(body.as_bytes()).expect("decodes");
        assert!(!req.requires_existing_user);
        assert_eq!(req.user, "ann@example.com");
        let (_, profile) = run(body, NOW).expect("valid");
        let applied = profile
            .and_then(|p| crate::profile::apply(None, &p.ops))
            .map(Value::Object);
        assert_eq!(applied, Some(json!({"firstname": "Ann", "$email": "ann@example.com"})));
        // With only an _id and nothing to set, the profile is still created.
        let (_, profile) = run(r#"{"user": {"_id": 42}, "event": {"login": {}}}"#, NOW).expect("valid");
        let profile = profile.expect("login always updates");
        assert_eq!(profile.distinct_id, "42");
        assert_eq!(crate::profile::apply(None, &profile.ops), Some(Map::new()));
    }

    #[test]
    fn confirmations_of_one_order_share_an_id() {
        let confirm = |user: &str, order: &str| {
            format!(
                r#"{{"user": {{"email": "{user}"}}, "event": {{"confirmation": {{"orderId": {order}, "total": 10}}}}}}"#
            )
        };
        let first = insert_id(&confirm("a@b.c", "\"A-1\""), NOW);
        assert!(first.as_deref().is_some_and(is_valid_insert_id));
        assert_eq!(first, insert_id(&confirm("a@b.c", "\"A-1\""), NOW + 86_400_000));
        assert_eq!(
            first,
            insert_id(&confirm("other@b.c", "\"A-1\""), NOW),
            "an order is confirmed once per project"
        );
        assert_ne!(first, insert_id(&confirm("a@b.c", "\"A-2\""), NOW));
        assert_eq!(
            insert_id(&confirm("a@b.c", "123"), NOW),
            insert_id(&confirm("a@b.c", "\"123\""), NOW)
        );
        let missing = r#"{"user": {"email": "a@b.c"}, "event": {"confirmation": {"total": 10}}}"#;
        let errors = run(missing, NOW).err().unwrap_or_default();
        assert_eq!(
            errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
            ["event.confirmation.orderId"]
        );
    }

    #[test]
    fn email_open_window_at_and_past_limit() {
        let open = |user: &str| {
            format!(r#"{{"user": {{"email": "{user}"}}, "event": {{"email_open": {{"campaign": "c1"}}}}}}"#)
        };
        let start = (NOW / EMAIL_OPEN_WINDOW_MS) * EMAIL_OPEN_WINDOW_MS;
        let first = insert_id(&open("a@b.c"), start);
        assert_eq!(
            first,
            insert_id(&open("a@b.c"), start + EMAIL_OPEN_WINDOW_MS - 1),
            "same window: a repeat"
        );
        assert_ne!(
            first,
            insert_id(&open("a@b.c"), start + EMAIL_OPEN_WINDOW_MS),
            "next window: a new open"
        );
        assert_ne!(first, insert_id(&open("z@b.c"), start));
        let (event, _) = run(&open("a@b.c").replace("email_open", "emailOpen"), start).expect("valid");
        assert_eq!((event.name.as_str(), Some(event.insert_id)), ("email_open", first));
        assert_eq!(EMAIL_OPEN_WINDOW_MS, 1_200_000);
    }

    #[test]
    fn other_types_are_events_of_their_name_and_repeat_freely() {
        let body = r#"{"user": {"_id": "u-1"}, "event": {"add_to_cart": {"product_id": "p1"}}}"#;
        let (event, profile) = run(body, NOW).expect("valid");
        assert_eq!(
            (event.name.as_str(), event.distinct_id.as_str()),
            ("add_to_cart", "u-1")
        );
        assert_eq!(profile, None);
        assert_ne!(
            insert_id(body, NOW),
            insert_id(body, NOW + 1),
            "two identical actions, two events"
        );
    }

    fn error_body(body: &str) -> (u16, Value) {
        let reply = match decode(body.as_bytes()) {
            Err(e) => error(&e),
            Ok(_) => created(),
        };
        (reply.status, serde_json::from_slice(&reply.body).unwrap_or_default())
    }

    #[test]
    fn missing_parts_answer_like_the_seed() {
        let (status, body) = error_body(r#"{"user": {"email": "a@b.c"}}"#);
        assert_eq!(status, 400);
        assert_eq!(
            body,
            json!({"errors": [{"message": "Missing event information", "description": "Please send event information along with user"}]})
        );
        for no_event in [
            r#"{"user": {"email": "a@b.c"}, "event": {}}"#,
            r#"{"user": {"email": "a@b.c"}, "event": 5}"#,
        ] {
            assert_eq!(error_body(no_event).1["errors"][0]["message"], MISSING_EVENT);
        }
        for no_user in [
            r#"{"event": {"update": {}}}"#,
            r#"{"user": {}, "event": {"update": {}}}"#,
            r#"{"user": {"email": ""}, "event": {"login": {}}}"#,
        ] {
            let (status, body) = error_body(no_user);
            assert_eq!(
                (status, body["errors"][0]["message"].clone()),
                (400, json!(MISSING_USER))
            );
        }
        for bad_user in [
            r#"{"user": {"email": "nope"}, "event": {"login": {}}}"#,
            r#"{"user": {"_id": [1]}, "event": {"login": {}}}"#,
        ] {
            assert_eq!(error_body(bad_user).1["errors"][0]["message"], INVALID_USER);
        }
        let two = r#"{"user": {"email": "a@b.c"}, "event": {"update": {}, "login": {}}}"#;
        assert_eq!(error_body(two).1["errors"][0]["message"], ONE_EVENT);
        assert_eq!(error_body("[]").0, 400);
    }

    #[test]
    fn id_length_at_and_past_limit() {
        let with_id = |id: String| format!(r#"{{"user": {{"_id": "{id}"}}, "event": {{"login": {{}}}}}}"#);
        assert!(decode(with_id("u".repeat(MAX_ID_CHARS)).as_bytes()).is_ok());
        assert!(
            matches!(decode(with_id("u".repeat(MAX_ID_CHARS + 1)).as_bytes()), Err(IngestError::BadRequest(m)) if m == INVALID_USER)
        );
        let local = "a".repeat(MAX_ID_CHARS - "@b.c".len());
        assert!(decode(
            with_id(String::new())
                .replace(r#""_id": """#, &format!(r#""email": "{local}@b.c""#))
                .as_bytes()
        )
        .is_ok());
        assert!(decode(
            with_id(String::new())
                .replace(r#""_id": """#, &format!(r#""email": "{local}a@b.c""#))
                .as_bytes()
        )
        .is_err());
    }

    #[test]
    fn replies() {
        let ok = created();
        assert_eq!(ok.status, 200);
        let body: Value = serde_json::from_slice(&ok.body).unwrap_or_default();
        assert_eq!(
            body,
            json!({"results": {"message": "Event created", "email": "Event was created for the specified user"}})
        );
        let missing = user_not_found();
        assert_eq!(missing.status, 400);
        assert!(String::from_utf8_lossy(&missing.body).contains("User not found"));
        for (err, status) in [
            (IngestError::Unauthorized, 401),
            (IngestError::Forbidden, 403),
            (IngestError::Unavailable, 503),
        ] {
            let reply = error(&err);
            let body: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
            assert_eq!(reply.status, status);
            assert!(body["errors"][0]["message"].is_string() && body["errors"][0]["description"].is_string());
        }
        let invalid = error(&IngestError::Invalid(vec![FieldError::new(0, "event", "is required")]));
        let body: Value = serde_json::from_slice(&invalid.body).unwrap_or_default();
        assert_eq!(
            body["errors"][0],
            json!({"message": "Invalid event information", "description": "'event' is required"})
        );
    }

    #[test]
    fn api_keys_from_either_header() {
        assert_eq!(api_key(Some("Bearer s3cret"), None).as_deref(), Some("s3cret"));
        assert_eq!(
            api_key(Some("bearer  s3cret "), Some("other")).as_deref(),
            Some("s3cret")
        );
        assert_eq!(api_key(None, Some("k")).as_deref(), Some("k"));
        assert_eq!(api_key(Some("Basic abc"), None), None);
        assert_eq!(api_key(Some("Bearer "), Some(" ")), None);
    }
}
