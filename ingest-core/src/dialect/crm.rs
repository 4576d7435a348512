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
//! once is accepted too); `confirmation` is a purchase, deduplicated by its
//! `orderId` when it has one; `email_open` (also spelled `emailOpen`) is an
//! email being opened. Any other type is stored as an event of that name
//! with its fields as properties.
//!
//! Users. "User: object with email or _id as identifier": one user may be
//! known by an email, by `_id`s, or both, and is reachable by any of them.
//! The worker keeps each identifier → user link in D1 and hands what it
//! found to [`resolve`], which decides (pure logic, tested here):
//! - every type but `login` needs a user that exists ("Note that user must
//!   exist in the database beforehand"), found by email first, then `_id`;
//!   otherwise [`USER_NOT_FOUND`];
//! - `login` creates the user when neither identifier is known, under the
//!   identifier it first came with (the email when it has one), and links
//!   the identifiers it did not know yet to the user it found. That is the
//!   seed's "adding email if anonymous": an `_id`-only user who logs in with
//!   an email gains the email, no second user. When the email already
//!   belongs to another user and the `_id` is anonymous, the `_id` moves to
//!   that user ("replacement of current user (if not identified already)");
//!   an `_id` already identified by another email is [`USER_CONFLICT`].
//!
//! The worker writes those links before it answers, so the user exists for
//! the very next request, whatever the queue is doing.
//!
//! Repeats:
//! - a second confirmation of an order is discarded: its `$insert_id` is
//!   derived from (project, "confirmation", orderId), and CRM events
//!   deduplicate on name and insert_id alone ([`crate::dedup::dedup_key`]),
//!   so D1's unique key drops the repeat whenever it comes. Without an
//!   `orderId` (the seed requires none) a confirmation is stored like any
//!   event, with nothing to deduplicate it by;
//! - "All other events coming within 20 minutes after first one are
//!   discarded": an email open counts when none of the user's opens counted
//!   in the [`EMAIL_OPEN_WINDOW_MS`] before it ([`email_open_counts`]). The
//!   worker keeps each user's last counted open in D1 and claims the next one
//!   by compare-and-set, so the rule holds exactly across isolates, queue
//!   batches and retries; the counted open's `$insert_id` is derived from
//!   (project, user, its time), so a retried queue message stores it once.

use super::Reply;
use crate::error::{FieldError, IngestError};
use crate::event::{Dialect, Event, EventDraft};
pub use crate::limits::EMAIL_OPEN_WINDOW_MS;
use crate::limits::MAX_ID_CHARS;
use crate::payload::parse_json;
use crate::profile::{ProfileDraft, ProfileOp, ProfileUpdate};
use crate::validate::{finish_each, finish_profile, Admission};
use serde_json::{json, Map, Value};

pub const MISSING_EVENT: &str = "Missing event information";
pub const MISSING_USER: &str = "Missing user information";
pub const INVALID_USER: &str = "Invalid user information";
pub const ONE_EVENT: &str = "One event per request";
pub const USER_NOT_FOUND: &str = "User not found";
pub const USER_CONFLICT: &str = "User conflict";

/// Why the API refused a request, in the words its documentation uses.
/// [`error`] answers each by its variant (a message is never compared).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No `event` object, or one with no type.
    MissingEvent,
    /// The event's type holds something other than an object.
    EventNotObject,
    /// No `user` object, or one with neither `email` nor `_id`.
    MissingUser,
    /// An email that is not an address, or an `_id` that is not an id.
    InvalidUser,
    /// More than one event type in one `event`.
    OneEvent,
    /// Every type but `login` needs a user that exists.
    UserNotFound,
    /// An `_id` already identified by another email.
    UserConflict,
}

impl Refusal {
    /// The documented `message`, which is also the error's text.
    pub fn message(self) -> &'static str {
        match self {
            Refusal::MissingEvent | Refusal::EventNotObject => MISSING_EVENT,
            Refusal::MissingUser => MISSING_USER,
            Refusal::InvalidUser => INVALID_USER,
            Refusal::OneEvent => ONE_EVENT,
            Refusal::UserNotFound => USER_NOT_FOUND,
            Refusal::UserConflict => USER_CONFLICT,
        }
    }

    /// What the client should do, as the reply's `description`.
    pub fn description(self) -> String {
        match self {
            Refusal::MissingEvent => "Please send event information along with user".into(),
            Refusal::EventNotObject => "The event type must hold an object".into(),
            Refusal::MissingUser => "Please send user information (email or _id) along with event".into(),
            Refusal::InvalidUser => {
                format!("The email must be an address and an _id at most {MAX_ID_CHARS} characters")
            }
            Refusal::OneEvent => "Send one event type in the event object".into(),
            Refusal::UserNotFound => {
                "No user with this email or _id exists; send a login event to create it first".into()
            }
            Refusal::UserConflict => "This _id belongs to a user identified by another email".into(),
        }
    }
}

impl From<Refusal> for IngestError {
    fn from(refusal: Refusal) -> Self {
        IngestError::Refused(refusal)
    }
}

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

/// How a request names its user: a normalised email, an `_id`, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserKeys {
    pub email: Option<String>,
    pub id: Option<String>,
}

impl UserKeys {
    /// The identifier keys as stored: `email:<email>`, then `id:<_id>`.
    pub fn keys(&self) -> Vec<String> {
        let email = self.email.as_deref().map(email_key);
        let id = self.id.as_deref().map(id_key);
        email.into_iter().chain(id).collect()
    }
}

/// The stored key of an email identifier.
pub fn email_key(email: &str) -> String {
    format!("email:{email}")
}

/// The stored key of an `_id` identifier.
pub fn id_key(id: &str) -> String {
    format!("id:{id}")
}

/// A stored user that one of the request's identifiers leads to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownUser {
    pub distinct_id: String,
    /// The user's email, when it has one (a user without is anonymous).
    pub email: Option<String>,
}

/// What storage knows of the request's identifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Found {
    pub by_email: Option<KnownUser>,
    pub by_id: Option<KnownUser>,
}

/// The user a request is about, and what a login adds to storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Where the event (and profile update) goes.
    pub distinct_id: String,
    /// Identifier keys to link to `distinct_id` if they are not linked yet.
    pub link: Vec<String>,
    /// An anonymous user's `_id` key that moves to `distinct_id`, with the
    /// user it moves from (the move only applies if it still points there).
    pub moved: Option<(String, String)>,
}

/// A decoded `POST /v1/event`.
#[derive(Debug, Clone, PartialEq)]
pub struct CrmRequest {
    pub user: UserKeys,
    pub kind: Kind,
    /// The event, without its user yet (see [`finish`]).
    pub draft: EventDraft,
    /// `update` and `login` attributes as profile operations (login also
    /// sets `$email`, and creates the profile even with no attributes).
    pub profile: Option<Vec<ProfileOp>>,
}

pub fn decode(body: &[u8]) -> Result<CrmRequest, IngestError> {
    let Value::Object(mut root) = parse_json(body)? else {
        return Err(IngestError::BadRequest("body must be a JSON object".into()));
    };
    let user = read_user(root.remove("user"))?;
    let Some(Value::Object(event)) = root.remove("event") else {
        return Err(Refusal::MissingEvent.into());
    };
    if event.len() > 1 {
        return Err(Refusal::OneEvent.into());
    }
    let Some((type_name, fields)) = event.into_iter().next() else {
        return Err(Refusal::MissingEvent.into());
    };
    let mut fields = match fields {
        Value::Object(fields) => fields,
        Value::Null => Map::new(),
        _ => return Err(Refusal::EventNotObject.into()),
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
            if let Some(email) = &user.email {
                values.insert("$email".into(), json!(email));
            }
            Some(vec![if values.is_empty() {
                ProfileOp::SetOnce(values)
            } else {
                ProfileOp::Set(values)
            }])
        }
        _ => None,
    };
    let draft = EventDraft {
        name,
        properties: fields,
        ..EventDraft::default()
    };
    Ok(CrmRequest {
        user,
        kind,
        draft,
        profile,
    })
}

/// Decides which user a request is about from what storage found for its
/// identifiers (see the module's notes). Refusals are [`USER_NOT_FOUND`] and
/// [`USER_CONFLICT`], answered by [`error`] in the documented shape.
pub fn resolve(request: &CrmRequest, found: &Found) -> Result<Resolved, IngestError> {
    let keys = &request.user;
    let refuse = |refusal: Refusal| Err(refusal.into());
    if request.kind != Kind::Login {
        return match found.by_email.as_ref().or(found.by_id.as_ref()) {
            Some(user) => Ok(Resolved {
                distinct_id: user.distinct_id.clone(),
                link: Vec::new(),
                moved: None,
            }),
            None => refuse(Refusal::UserNotFound),
        };
    }
    let (email, id) = (keys.email.as_deref(), keys.id.as_deref());
    let (distinct_id, moved) = match (&found.by_email, &found.by_id) {
        (None, None) => {
            // New: under the identifier it came with, the email first.
            let Some(first) = email.or(id) else {
                return refuse(Refusal::MissingUser);
            };
            (first.to_owned(), None)
        }
        (Some(user), None) => (user.distinct_id.clone(), None),
        (None, Some(user)) => match (&user.email, email) {
            // "adding email if anonymous"; the same email again is nothing new.
            (None, _) | (_, None) => (user.distinct_id.clone(), None),
            (Some(known), Some(email)) if known == email => (user.distinct_id.clone(), None),
            (Some(_), Some(_)) => return refuse(Refusal::UserConflict),
        },
        (Some(named), Some(current)) if named.distinct_id == current.distinct_id => (named.distinct_id.clone(), None),
        (Some(named), Some(current)) => match (&current.email, id) {
            // The anonymous visitor turns out to be the named user.
            (None, Some(id)) => (
                named.distinct_id.clone(),
                Some((id_key(id), current.distinct_id.clone())),
            ),
            _ => return refuse(Refusal::UserConflict),
        },
    };
    let link = keys
        .keys()
        .into_iter()
        .filter(|key| moved.as_ref().is_none_or(|(moved, _)| moved != key))
        .collect();
    Ok(Resolved {
        distinct_id,
        link,
        moved,
    })
}

/// Whether an email open at `now_ms` counts, given the user's last counted
/// open: only when none counted in the [`EMAIL_OPEN_WINDOW_MS`] before it,
/// measured from that open (not from the clock's hour), to the millisecond.
pub fn email_open_counts(last_counted_ms: Option<i64>, now_ms: i64) -> bool {
    last_counted_ms.is_none_or(|last| now_ms >= last.saturating_add(EMAIL_OPEN_WINDOW_MS))
}

/// Validates the event (and the profile update) for the resolved user and
/// gives confirmations with an order, and email opens, their dedup ids.
/// Events carry no time of their own here, so they are stamped with the
/// arrival time (an email open's time is the one [`email_open_counts`]
/// judged).
pub fn finish(
    request: CrmRequest,
    distinct_id: &str,
    admitted: &Admission<'_>,
) -> Result<(Event, Option<ProfileUpdate>), Vec<FieldError>> {
    let cx = admitted.as_dialect(Dialect::Crm, false);
    let now_ms = cx.request.received_at_ms;
    let mut draft = request.draft;
    draft.distinct_id = Some(json!(distinct_id));
    draft.time = Some(json!(now_ms));
    let mut own = Vec::new();
    match request.kind {
        Kind::Confirmation => match order_id(draft.properties.get("orderId")) {
            Ok(Some(order)) => draft.insert_id = Some(json!(keyed_id(&[cx.project, "confirmation", &order]))),
            Ok(None) => {}
            Err(message) => own.push(FieldError::new(0, "event.confirmation.orderId", message)),
        },
        Kind::EmailOpen => {
            let at = now_ms.to_string();
            draft.insert_id = Some(json!(keyed_id(&[cx.project, "email_open", distinct_id, &at])));
        }
        _ => {}
    }
    let (mut events, mut errors) = finish_each([Ok(draft)], &cx, |_, _| std::mem::take(&mut own));
    let profile = request.profile.map(|ops| {
        let draft = ProfileDraft {
            distinct_id: Some(json!(distinct_id)),
            time: None,
            ops,
        };
        finish_profile(draft, 0, &cx)
    });
    let profile = match profile {
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

pub fn created() -> Reply {
    Reply::json(
        200,
        &json!({"results": {"message": "Event created", "email": "Event was created for the specified user"}}),
    )
}

pub fn error(err: &IngestError) -> Reply {
    let entries = match err {
        // The page documents 400 as its only error status, so a user that
        // must exist and does not is a 400 in the documented shape too.
        IngestError::Refused(refusal) => vec![error_entry(refusal.message(), &refusal.description())],
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

/// The user's email and `_id`. Emails are compared without case or
/// surrounding space, so they are kept that way.
fn read_user(user: Option<Value>) -> Result<UserKeys, IngestError> {
    let missing = || IngestError::from(Refusal::MissingUser);
    let invalid = || IngestError::from(Refusal::InvalidUser);
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
    if email.is_none() && id.is_none() {
        return Err(missing());
    }
    Ok(UserKeys { email, id })
}

/// An order id as text, so that `123` and `"123"` are one order. Absent
/// (or null) is no order; anything else that names none is refused.
fn order_id(value: Option<&Value>) -> Result<Option<String>, &'static str> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.trim().to_owned())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err("must be a non-empty string or a number"),
    }
}

/// A stable `$insert_id` from parts, each length-prefixed so that no two
/// different part lists hash alike.
fn keyed_id(parts: &[&str]) -> String {
    crate::hash::framed(parts, 16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dedup::is_valid_insert_id;
    use crate::event::RequestContext;

    const NOW: i64 = 1_795_424_070_930;

    /// Business ids already stored (and the dedup keys made of them) must
    /// not change: a known id, computed outside Rust.
    #[test]
    fn a_known_business_id_is_pinned() {
        assert_eq!(
            keyed_id(&["demo", "confirmation", "A-1"]),
            "3de1406aec11559b2fefe028178af30d"
        );
    }

    /// A request at `received_at_ms`; each one has its own random id.
    fn request_at(received_at_ms: i64) -> RequestContext {
        RequestContext {
            received_at_ms,
            request_id: format!("req-{received_at_ms}"),
            ..Default::default()
        }
    }

    fn cx(req: &RequestContext) -> Admission<'_> {
        Admission {
            project: "demo",
            key: crate::auth::KeyKind::Secret,
            request: req,
            anonymous_id: Some("cl-x"),
        }
    }

    /// Storage as it would be if the request's user had been created under
    /// the identifier it names (its email when it has one).
    fn existing(keys: &UserKeys) -> Found {
        let user = KnownUser {
            distinct_id: keys.email.clone().or_else(|| keys.id.clone()).unwrap_or_default(),
            email: keys.email.clone(),
        };
        Found {
            by_email: keys.email.as_ref().map(|_| user.clone()),
            by_id: keys.id.as_ref().map(|_| user.clone()),
        }
    }

    /// Decodes, resolves (a login against empty storage, anything else
    /// against an existing user) and finishes.
    fn run(body: &str, at: i64) -> Result<(Event, Option<ProfileUpdate>), Vec<FieldError>> {
        let req = request_at(at);
        let as_errors = |e: IngestError| vec![FieldError::new(0, "decode", e.message())];
        let decoded = decode(body.as_bytes()).map_err(as_errors)?;
        let found = match decoded.kind {
            Kind::Login => Found::default(),
            _ => existing(&decoded.user),
        };
        let user = resolve(&decoded, &found).map_err(as_errors)?;
        finish(decoded, &user.distinct_id, &cx(&req))
    }

    fn insert_id(body: &str, at: i64) -> Option<String> {
        run(body, at).ok().map(|(e, _)| e.insert_id)
    }

    fn known(distinct_id: &str, email: Option<&str>) -> Option<KnownUser> {
        Some(KnownUser {
            distinct_id: distinct_id.into(),
            email: email.map(str::to_owned),
        })
    }

    fn request(user: &str, kind: &str) -> CrmRequest {
        let body = format!(r#"{{"user": {user}, "event": {{"{kind}": {{}}}}}}"#);
        decode(body.as_bytes()).expect("decodes")
    }

    #[test]
    fn seed_update_example() {
        let body = r#"{"user": {"email": "alex@example.com"}, "event": {"update": {"firstname": "alexandru"}}}"#;
        let req = decode(body.as_bytes()).expect("decodes");
        assert_eq!(req.kind, Kind::Update);
        assert_eq!(
            resolve(&req, &Found::default()),
            Err(IngestError::Refused(Refusal::UserNotFound)),
            "the user must exist beforehand"
        );
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
        assert_eq!(req.user.email.as_deref(), Some("ann@example.com"));
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
        assert_eq!(
            first,
            insert_id(&confirm("a@b.c", "\"A-1\""), NOW + crate::time::DAY_MS)
        );
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
        // A bad orderId is refused by name.
        for bad in ["\"\"", "{}", "true"] {
            let errors = run(&confirm("a@b.c", bad), NOW).err().unwrap_or_default();
            assert_eq!(
                errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>(),
                ["event.confirmation.orderId"],
                "{bad}"
            );
        }
    }

    #[test]
    fn a_confirmation_without_an_order_is_an_ordinary_event() {
        // Neither the seed nor the README requires orderId: accepted, with
        // no order to deduplicate it by.
        let body = r#"{"user": {"email": "a@b.c"}, "event": {"confirmation": {"total": 10}}}"#;
        let (event, _) = run(body, NOW).expect("valid");
        assert_eq!(
            (event.name.as_str(), event.distinct_id.as_str()),
            ("confirmation", "a@b.c")
        );
        assert_eq!(event.properties["total"], 10);
        let null_order = body.replace(r#""total": 10"#, r#""total": 10, "orderId": null"#);
        assert!(run(&null_order, NOW).is_ok());
        assert_ne!(
            insert_id(body, NOW),
            insert_id(body, NOW + 1),
            "two purchases, two events"
        );
    }

    #[test]
    fn email_open_window_at_and_past_limit() {
        assert_eq!(EMAIL_OPEN_WINDOW_MS, 1_200_000);
        // Measured from the last counted open, to the millisecond, wherever
        // it falls on the clock.
        let first = NOW;
        assert!(email_open_counts(None, first));
        assert!(!email_open_counts(Some(first), first));
        assert!(!email_open_counts(Some(first), first + 10_000));
        assert!(!email_open_counts(Some(first), first + EMAIL_OPEN_WINDOW_MS - 1));
        assert!(email_open_counts(Some(first), first + EMAIL_OPEN_WINDOW_MS));
        // An open stamped before the last counted one (another isolate's
        // clock) is within its window too.
        assert!(!email_open_counts(Some(first), first - 5));
        // Across a clock-aligned boundary (:00, :20, :40) nothing changes.
        let boundary = (NOW / EMAIL_OPEN_WINDOW_MS + 1) * EMAIL_OPEN_WINDOW_MS;
        assert!(!email_open_counts(Some(boundary - 5_000), boundary + 5_000));
    }

    #[test]
    fn a_counted_open_is_keyed_by_its_user_and_time() {
        let open = |user: &str| {
            format!(r#"{{"user": {{"email": "{user}"}}, "event": {{"email_open": {{"campaign": "c1"}}}}}}"#)
        };
        let first = insert_id(&open("a@b.c"), NOW);
        assert!(first.as_deref().is_some_and(is_valid_insert_id));
        assert_eq!(first, insert_id(&open("a@b.c"), NOW), "a retried message: one row");
        assert_ne!(first, insert_id(&open("a@b.c"), NOW + EMAIL_OPEN_WINDOW_MS));
        assert_ne!(first, insert_id(&open("z@b.c"), NOW));
        let (event, _) = run(&open("a@b.c").replace("email_open", "emailOpen"), NOW).expect("valid");
        assert_eq!((event.name.as_str(), event.time_ms), ("email_open", NOW));
        assert_eq!(Some(event.insert_id), first);
    }

    #[test]
    fn one_user_reachable_by_email_or_id() {
        // Known by both: an event naming either finds the same user.
        let both = known("ann@example.com", Some("ann@example.com"));
        for (user, found) in [
            (
                r#"{"_id": "u-7"}"#,
                Found {
                    by_email: None,
                    by_id: both.clone(),
                },
            ),
            (
                r#"{"email": "ann@example.com"}"#,
                Found {
                    by_email: both.clone(),
                    by_id: None,
                },
            ),
        ] {
            let resolved = resolve(&request(user, "update"), &found).expect("found");
            assert_eq!(
                (resolved.distinct_id.as_str(), resolved.link.len()),
                ("ann@example.com", 0)
            );
        }
        // Email first when the two name different users.
        let found = Found {
            by_email: known("ann@example.com", Some("ann@example.com")),
            by_id: known("u-9", None),
        };
        let req = request(r#"{"email": "ann@example.com", "_id": "u-9"}"#, "generic");
        assert_eq!(
            resolve(&req, &found).map(|r| r.distinct_id).as_deref(),
            Ok("ann@example.com")
        );
        // Unknown by both: not found, for every type but login.
        for kind in ["update", "generic", "confirmation", "email_open", "add_to_cart"] {
            assert_eq!(
                resolve(&request(r#"{"email": "x@y.z", "_id": "q"}"#, kind), &Found::default()),
                Err(IngestError::Refused(Refusal::UserNotFound)),
                "{kind}"
            );
        }
    }

    #[test]
    fn login_links_identifiers_to_one_user() {
        let login = |user: &str| request(user, "login");
        let keys = |v: &[&str]| v.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        // New with both: created under the email, reachable by both.
        let r = resolve(
            &login(r#"{"email": "Ann@Example.com", "_id": "u-7"}"#),
            &Found::default(),
        )
        .expect("ok");
        assert_eq!(r.distinct_id, "ann@example.com");
        assert_eq!(r.link, keys(&["email:ann@example.com", "id:u-7"]));
        assert_eq!(r.moved, None);
        // New and anonymous: under its _id.
        let r = resolve(&login(r#"{"_id": 42}"#), &Found::default()).expect("ok");
        assert_eq!((r.distinct_id.as_str(), r.link.clone()), ("42", keys(&["id:42"])));
        // "adding email if anonymous": the _id user gains the email.
        let anonymous = Found {
            by_email: None,
            by_id: known("u-7", None),
        };
        let r = resolve(&login(r#"{"email": "ann@example.com", "_id": "u-7"}"#), &anonymous).expect("ok");
        assert_eq!(r.distinct_id, "u-7", "no second user");
        assert_eq!(r.link, keys(&["email:ann@example.com", "id:u-7"]));
        // A known email with a new _id: the _id joins that user.
        let named = Found {
            by_email: known("ann@example.com", Some("ann@example.com")),
            by_id: None,
        };
        let r = resolve(&login(r#"{"email": "ann@example.com", "_id": "u-8"}"#), &named).expect("ok");
        assert_eq!(r.distinct_id, "ann@example.com");
        // The anonymous visitor turns out to be a known user: the _id moves.
        let two = Found {
            by_email: known("ann@example.com", Some("ann@example.com")),
            by_id: known("u-7", None),
        };
        let r = resolve(&login(r#"{"email": "ann@example.com", "_id": "u-7"}"#), &two).expect("ok");
        assert_eq!(r.distinct_id, "ann@example.com");
        assert_eq!(r.moved, Some(("id:u-7".into(), "u-7".into())));
        assert_eq!(r.link, keys(&["email:ann@example.com"]));
        // An _id identified by another email is not taken over.
        let conflict = Err(IngestError::Refused(Refusal::UserConflict));
        let taken = Found {
            by_email: None,
            by_id: known("bob@example.com", Some("bob@example.com")),
        };
        assert_eq!(
            resolve(&login(r#"{"email": "ann@example.com", "_id": "u-7"}"#), &taken),
            conflict
        );
        let both_named = Found {
            by_email: known("ann@example.com", Some("ann@example.com")),
            by_id: known("bob@example.com", Some("bob@example.com")),
        };
        assert_eq!(
            resolve(&login(r#"{"email": "ann@example.com", "_id": "u-7"}"#), &both_named),
            conflict
        );
        // A login that repeats what is known changes nothing.
        let same = Found {
            by_email: known("u-7", Some("ann@example.com")),
            by_id: known("u-7", Some("ann@example.com")),
        };
        let r = resolve(&login(r#"{"email": "ann@example.com", "_id": "u-7"}"#), &same).expect("ok");
        assert_eq!((r.distinct_id.as_str(), r.moved), ("u-7", None));
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
        // A type holding no object is missing event information too (it
        // was "Invalid request" while refusals were told apart by text).
        let not_object = r#"{"user": {"email": "a@b.c"}, "event": {"update": 5}}"#;
        assert_eq!(
            error_body(not_object),
            (
                400,
                json!({"errors": [{"message": MISSING_EVENT, "description": "The event type must hold an object"}]})
            )
        );
        assert_eq!(error_body("[]").0, 400);
    }

    #[test]
    fn id_length_at_and_past_limit() {
        let with_id = |id: String| format!(r#"{{"user": {{"_id": "{id}"}}, "event": {{"login": {{}}}}}}"#);
        assert!(decode(with_id("u".repeat(MAX_ID_CHARS)).as_bytes()).is_ok());
        assert!(matches!(
            decode(with_id("u".repeat(MAX_ID_CHARS + 1)).as_bytes()),
            Err(IngestError::Refused(Refusal::InvalidUser))
        ));
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
        for (refusal, description) in [
            (Refusal::UserNotFound, "send a login event"),
            (Refusal::UserConflict, "another email"),
        ] {
            let reply = error(&refusal.into());
            let body: Value = serde_json::from_slice(&reply.body).unwrap_or_default();
            assert_eq!(
                (reply.status, body["errors"][0]["message"].as_str()),
                (400, Some(refusal.message()))
            );
            assert!(body["errors"][0]["description"]
                .as_str()
                .is_some_and(|d| d.contains(description)));
        }
        // A refusal is known by its variant: the same words from elsewhere
        // are just a bad request.
        let lookalike = error(&IngestError::BadRequest(USER_NOT_FOUND.into()));
        let body: Value = serde_json::from_slice(&lookalike.body).unwrap_or_default();
        assert_eq!(body["errors"][0]["message"], "Invalid request");
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
}
