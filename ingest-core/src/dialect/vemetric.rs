//! Vemetric's event ingestion (seed 003, and the @vemetric/node and
//! @vemetric/web clients): `POST /e` tracks an event, `POST /i` identifies a
//! user, `POST /u` updates one. The web SDK also posts `/l` when a page is
//! left and `/r` when the user resets; both are accepted and do nothing
//! (the seed gives them no meaning, and a page leave carries nothing the
//! dashboard reads), after the token is checked like any other call.
//!
//! The project token comes in the `Token` header, or inside the JSON body:
//! as `token` (the seed's server-side form) or as `Token` (beacons cannot
//! set headers, so the web SDK merges them into the body, `Allow-Cookies`
//! too).
//!
//! The web SDK's automatic events `$$pageView` and `$$outboundLink` are
//! stored as `$pageview` and `$outbound_link`, the names the seed documents
//! and our own tracker uses, so the dashboard counts them together.
//!
//! Who a call is about: `identifier` (the web SDK, once identified, and the
//! seed's `/e` and `/i`) or `userIdentifier` (the Node SDK). Without either,
//! Vemetric's hub takes the visitor the request itself comes from (its
//! cookie, or a daily hash of IP and user agent), and so do we: the
//! cookieless daily visitor id, the same one that visitor's `/e` events carry
//! that day (the hub sets no cookie of ours to read). That is who the seed's
//! `/u`, which lists only `token`, `displayName`, `avatarUrl` and `data`,
//! updates, and who an `/e`'s `userData` goes to. `/i` names its user, so it
//! always needs `identifier`.

use super::Reply;
use crate::error::{FieldError, IngestError};
use crate::event::{Dialect, Event, EventDraft, PageContext};
use crate::payload::parse_json;
use crate::profile::{ProfileDraft, ProfileOp, ProfileUpdate};
use crate::validate::{finish_each, finish_profile, Admission};
use serde_json::{json, Map, Value};

pub const PAGEVIEW: &str = "$pageview";
pub const OUTBOUND_LINK: &str = "$outbound_link";

/// What the worker reads from the request's headers for this dialect.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Headers<'a> {
    /// `Token`.
    pub token: Option<&'a str>,
    /// `Allow-Cookies`: `"true"` lets persistent identifiers be used.
    pub allow_cookies: Option<&'a str>,
    /// `v-referrer`: the page's referrer, sent on non-beacon `/e` calls.
    pub referrer: Option<&'a str>,
}

/// A decoded `/e`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackRequest {
    pub token: Option<String>,
    pub allow_cookies: bool,
    pub draft: EventDraft,
    /// `displayName` and `userData`, for the identifier or else (no
    /// `distinct_id` yet) the visitor the event is stored under.
    pub profile: Option<ProfileDraft>,
}

/// A decoded `/i` or `/u`.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRequest {
    pub token: Option<String>,
    pub allow_cookies: bool,
    /// Without a `distinct_id` (an `/u` with no identifier), the update is
    /// for the visitor the request comes from: [`finish_user`] takes the
    /// context's anonymous id.
    pub profile: ProfileDraft,
}

impl UserRequest {
    /// Whether the worker must work out the request's visitor id.
    pub fn needs_visitor(&self) -> bool {
        self.profile.distinct_id.is_none()
    }
}

pub fn decode_event(body: &[u8], headers: &Headers<'_>) -> Result<TrackRequest, IngestError> {
    let mut root = object(parse_json(body)?)?;
    let (token, allow_cookies) = credentials(&mut root, headers);
    let identifier = identifier(&mut root);

    let mut properties = match root.remove("customData") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(data)) => data.into_iter().map(|(k, v)| (k, as_text(v))).collect(),
        Some(_) => return Err(invalid("customData must be an object")),
    };
    if let Some(context) = text(&mut root, "contextId") {
        properties.insert("$context_id".into(), Value::String(context));
    }
    let name = match root.remove("name") {
        Some(Value::String(name)) => Some(Value::String(canonical_name(name))),
        other => other,
    };
    let page = PageContext {
        url: text(&mut root, "url"),
        referrer: headers.referrer.filter(|r| !r.is_empty()).map(str::to_owned),
        ..PageContext::default()
    };

    let mut ops = user_ops(root.remove("userData"), "userData")?;
    if let Some(name) = text(&mut root, "displayName") {
        set(&mut ops, "$name", name);
    }
    let profile = (!ops.is_empty()).then(|| ProfileDraft {
        distinct_id: identifier.clone(),
        time: None,
        ops,
    });
    let draft = EventDraft {
        name,
        distinct_id: identifier,
        page,
        properties,
        ..EventDraft::default()
    };
    Ok(TrackRequest {
        token,
        allow_cookies,
        draft,
        profile,
    })
}

/// `/i`: `identifier` is required. Identifying someone with nothing else to
/// say still makes sure their profile exists.
pub fn decode_identify(body: &[u8], headers: &Headers<'_>) -> Result<UserRequest, IngestError> {
    let mut request = decode_user(body, headers)?;
    if request.needs_visitor() {
        return Err(invalid("identifier is required"));
    }
    if request.profile.ops.is_empty() {
        request.profile.ops.push(ProfileOp::SetOnce(Map::new()));
    }
    Ok(request)
}

/// `/u`: the Node SDK names the user `userIdentifier`, the web SDK 0.6
/// `identifier`; the seed names neither, and then the update is for the
/// request's own visitor.
pub fn decode_update(body: &[u8], headers: &Headers<'_>) -> Result<UserRequest, IngestError> {
    decode_user(body, headers)
}

/// `/l` and `/r`: only the token matters (the body may be empty or not
/// JSON at all, as `/r` sends none).
pub fn decode_no_op(body: &[u8], headers: &Headers<'_>) -> Option<String> {
    let mut root = parse_json(body).ok().and_then(|v| object(v).ok()).unwrap_or_default();
    credentials(&mut root, headers).0
}

/// Validates an `/e`: the shared rules, then Vemetric's (`$pageview` needs
/// `url`; `$outbound_link` needs `url` and `customData.href`).
///
/// Vemetric sends no time, so the event is stamped with the arrival time
/// before validation; the id derived from the content then differs between
/// two identical page views, which are two visits, not one retried.
pub fn finish_event(
    request: TrackRequest,
    admitted: &Admission<'_>,
) -> Result<(Event, Option<ProfileUpdate>), Vec<FieldError>> {
    let cx = admitted.as_dialect(Dialect::Vemetric, true);
    let mut draft = request.draft;
    draft.time = Some(json!(cx.request.received_at_ms));
    let (mut events, mut errors) = finish_each([Ok(draft)], &cx, rules);
    // Without a user of its own, the profile is the event's visitor's; when
    // the event itself failed, its errors say enough.
    let profile = match (request.profile, events.first()) {
        (Some(mut profile), Some(event)) => {
            profile
                .distinct_id
                .get_or_insert_with(|| Value::String(event.distinct_id.clone()));
            match finish_profile(profile, 0, &cx) {
                Ok(update) => Some(update),
                Err(found) => {
                    errors.extend(found);
                    None
                }
            }
        }
        _ => None,
    };
    match events.pop() {
        Some(event) if errors.is_empty() => Ok((event, profile)),
        _ => Err(errors),
    }
}

/// Validates an `/i` or `/u`. An `/u` without an identifier updates the
/// request's visitor (`cx.anonymous_id`); with none known (no IP to hash),
/// it is refused like any request without a user.
pub fn finish_user(request: UserRequest, admitted: &Admission<'_>) -> Result<ProfileUpdate, Vec<FieldError>> {
    let cx = admitted.as_dialect(Dialect::Vemetric, true);
    let mut profile = request.profile;
    if profile.distinct_id.is_none() {
        profile.distinct_id = cx.anonymous_id.map(|id| Value::String(id.to_owned()));
    }
    finish_profile(profile, 0, &cx)
}

/// 200 with an empty body: `/e`, `/u`, `/l`, `/r`.
pub fn ok() -> Reply {
    Reply::empty(200)
}

/// 202 with an empty body: `/i` ("identification in progress").
pub fn accepted() -> Reply {
    Reply::empty(202)
}

/// Any refusal of the content is a 400 `Invalid!`, as the seed documents;
/// other errors keep their status (never 500 from us) with a short text.
pub fn error(err: &IngestError) -> Reply {
    let status = err.status();
    let body = if status == 400 {
        "Invalid!".to_owned()
    } else {
        err.message()
    };
    Reply::text(status, body).retry_after_for(err)
}

fn decode_user(body: &[u8], headers: &Headers<'_>) -> Result<UserRequest, IngestError> {
    let mut root = object(parse_json(body)?)?;
    let (token, allow_cookies) = credentials(&mut root, headers);
    let identifier = identifier(&mut root);
    let mut ops = user_ops(root.remove("data"), "data")?;
    if let Some(name) = text(&mut root, "displayName") {
        set(&mut ops, "$name", name);
    }
    if let Some(avatar) = text(&mut root, "avatarUrl") {
        set(&mut ops, "$avatar", avatar);
    }
    let profile = ProfileDraft {
        distinct_id: identifier,
        time: None,
        ops,
    };
    Ok(UserRequest {
        token,
        allow_cookies,
        profile,
    })
}

fn object(value: Value) -> Result<Map<String, Value>, IngestError> {
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(invalid("body must be a JSON object")),
    }
}

fn invalid(message: &str) -> IngestError {
    IngestError::BadRequest(message.to_owned())
}

/// The token and the cookie consent, from the headers or, for beacons, the
/// body. These keys are taken out of the body either way.
fn credentials(root: &mut Map<String, Value>, headers: &Headers<'_>) -> (Option<String>, bool) {
    let in_body = [text(root, "Token"), text(root, "token")];
    let token = headers
        .token
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .or_else(|| in_body.into_iter().flatten().next());
    let body_consent = text(root, "Allow-Cookies");
    let consent = headers.allow_cookies.map(str::to_owned).or(body_consent);
    let allow_cookies = consent.is_some_and(|c| c.trim().eq_ignore_ascii_case("true"));
    (token, allow_cookies)
}

/// `identifier` (web SDK, seed) or `userIdentifier` (Node SDK); numbers are
/// ids too.
fn identifier(root: &mut Map<String, Value>) -> Option<Value> {
    ["identifier", "userIdentifier"]
        .into_iter()
        .find_map(|key| match root.remove(key) {
            Some(Value::String(s)) if !s.is_empty() => Some(Value::String(s)),
            Some(Value::Number(n)) => Some(Value::String(n.to_string())),
            _ => None,
        })
}

fn text(root: &mut Map<String, Value>, key: &str) -> Option<String> {
    match root.remove(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn canonical_name(name: String) -> String {
    match name.as_str() {
        "$$pageView" => PAGEVIEW.to_owned(),
        "$$outboundLink" => OUTBOUND_LINK.to_owned(),
        _ => name,
    }
}

/// "All values are converted to strings": numbers, booleans and null are
/// written out as JSON writes them (`null` becomes `"null"`, as JavaScript's
/// `String(null)` would; the key a client sent is kept), objects and arrays
/// become their JSON text.
fn as_text(value: Value) -> Value {
    match value {
        Value::String(s) => Value::String(s),
        other => Value::String(other.to_string()),
    }
}

/// `{set, setOnce, unset}` as profile operations, in that order.
fn user_ops(data: Option<Value>, field: &str) -> Result<Vec<ProfileOp>, IngestError> {
    let mut data = match data {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(data)) => data,
        Some(_) => return Err(invalid(&format!("{field} must be an object"))),
    };
    let mut ops = Vec::new();
    for key in ["set", "setOnce"] {
        match data.remove(key) {
            None | Some(Value::Null) => {}
            Some(Value::Object(map)) if key == "set" => ops.push(ProfileOp::Set(map)),
            Some(Value::Object(map)) => ops.push(ProfileOp::SetOnce(map)),
            Some(_) => return Err(invalid(&format!("{field}.{key} must be an object"))),
        }
    }
    match data.remove("unset") {
        None | Some(Value::Null) => {}
        Some(Value::Array(names)) => {
            let names: Option<Vec<String>> = names.into_iter().map(|n| n.as_str().map(str::to_owned)).collect();
            match names {
                Some(names) => ops.push(ProfileOp::Unset(names)),
                None => return Err(invalid(&format!("{field}.unset must be a list of names"))),
            }
        }
        Some(_) => return Err(invalid(&format!("{field}.unset must be a list of names"))),
    }
    Ok(ops)
}

/// Adds one value to the first `Set` operation, making one in front if
/// there is none (a name given beside `set` wins over a `set` of the same
/// key).
fn set(ops: &mut Vec<ProfileOp>, key: &str, value: String) {
    if let Some(ProfileOp::Set(map)) = ops.iter_mut().find(|op| matches!(op, ProfileOp::Set(_))) {
        map.insert(key.to_owned(), Value::String(value));
        return;
    }
    let mut map = Map::new();
    map.insert(key.to_owned(), Value::String(value));
    ops.insert(0, ProfileOp::Set(map));
}

fn rules(index: usize, draft: &EventDraft) -> Vec<FieldError> {
    let name = draft.name.as_ref().and_then(Value::as_str);
    let mut errors = Vec::new();
    if matches!(name, Some(PAGEVIEW | OUTBOUND_LINK)) && draft.page.url.is_none() {
        errors.push(FieldError::new(index, "url", "is required"));
    }
    let has_href = matches!(draft.properties.get("href"), Some(Value::String(s)) if !s.is_empty());
    if name == Some(OUTBOUND_LINK) && !has_href {
        errors.push(FieldError::new(index, "customData.href", "is required"));
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::RequestContext;

    const NOW: i64 = 1_795_424_070_930;

    fn request() -> RequestContext {
        RequestContext {
            received_at_ms: NOW,
            user_agent: Some("Mozilla/5.0".into()),
            ip: Some("203.0.113.9".into()),
            ..Default::default()
        }
    }

    fn cx(req: &RequestContext) -> Admission<'_> {
        Admission {
            project: "demo",
            key: crate::auth::KeyKind::Public,
            request: req,
            anonymous_id: Some("cl-visitor"),
        }
    }

    fn header_token() -> Headers<'static> {
        Headers {
            token: Some("pubTOKEN"),
            ..Headers::default()
        }
    }

    fn fields(errors: &[FieldError]) -> Vec<&str> {
        errors.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn node_sdk_track_with_user_data() {
        // The capture of @vemetric/node 0.2.0.
        let body = br#"{"name":"Signup","userIdentifier":"u1","customData":{"plan":"pro"},"displayName":"Ann","userData":{"set":{"a":1},"setOnce":{"b":2},"unset":["c"]}}"#;
        let req = decode_event(body, &header_token()).expect("decodes");
        assert_eq!(req.token.as_deref(), Some("pubTOKEN"));
        assert!(!req.allow_cookies);
        let r = request();
        let (event, profile) = finish_event(req, &cx(&r)).expect("valid");
        assert_eq!((event.name.as_str(), event.distinct_id.as_str()), ("Signup", "u1"));
        assert_eq!(event.properties["plan"], "pro");
        assert_eq!(event.source, Dialect::Vemetric);
        assert_eq!(event.time_ms, NOW);
        let profile = profile.expect("user data becomes a profile update");
        assert_eq!(profile.distinct_id, "u1");
        let applied = crate::profile::apply(None, &profile.ops).map(Value::Object);
        assert_eq!(applied, Some(json!({"a": 1, "b": 2, "$name": "Ann"})));
    }

    #[test]
    fn web_sdk_pageview_is_canonical_and_cookieless() {
        // The capture of @vemetric/web 0.6.1: headers and body.
        let body = br#"{"url":"https://www.shop.example.com/products/*?q=1","contextId":"9891210326894382","name":"$$pageView","deviceId":"client-made"}"#;
        let headers = Headers {
            token: Some("pubTOKEN"),
            allow_cookies: Some("false"),
            referrer: Some("https://google.com/"),
        };
        let req = decode_event(body, &headers).expect("decodes");
        assert_eq!(req.draft.device_id, None, "no cookie consent: no persistent id");
        let r = request();
        let (event, profile) = finish_event(req, &cx(&r)).expect("valid");
        assert_eq!(event.name, PAGEVIEW);
        assert_eq!(event.distinct_id, "cl-visitor");
        assert_eq!(
            event.page.url.as_deref(),
            Some("https://www.shop.example.com/products/*?q=1")
        );
        assert_eq!(event.page.referrer.as_deref(), Some("https://google.com/"));
        assert_eq!(event.properties["$context_id"], "9891210326894382");
        assert!(!event.properties.contains_key("deviceId"));
        assert_eq!(profile, None);

        let allowed = Headers {
            allow_cookies: Some("true"),
            ..headers
        };
        let req = decode_event(body, &allowed).expect("decodes");
        assert!(req.allow_cookies);
        // The hub sets no cookie of ours, and the client's own `deviceId`
        // is not taken: still the daily visitor.
        let (event, _) = finish_event(req, &cx(&r)).expect("valid");
        assert_eq!(event.distinct_id, "cl-visitor");
        assert_ne!(event.device_id.as_deref(), Some("client-made"));
    }

    #[test]
    fn beacon_carries_its_headers_in_the_body() {
        let body = br#"{"url":"https://shop.test/a","contextId":"1","name":"$$outboundLink","customData":{"href":"https://other.test/"},"Token":"pubTOKEN","Allow-Cookies":"true","V-Host":"edge.example.com","V-SDK":"web","V-SDK-Version":"0.6.1"}"#;
        let req = decode_event(body, &Headers::default()).expect("decodes");
        assert_eq!(req.token.as_deref(), Some("pubTOKEN"));
        assert!(req.allow_cookies);
        let r = request();
        let (event, _) = finish_event(req, &cx(&r)).expect("valid");
        assert_eq!(event.name, OUTBOUND_LINK);
        assert_eq!(event.properties["href"], "https://other.test/");
        assert!(event.properties.keys().all(|k| !k.starts_with("V-") && k != "Token"));
        // The seed's server-side form: token in the body as `token`.
        let req = decode_event(br#"{"token":"pubTOKEN","name":"signup"}"#, &Headers::default()).expect("decodes");
        assert_eq!(req.token.as_deref(), Some("pubTOKEN"));
    }

    #[test]
    fn special_events_need_their_fields() {
        let r = request();
        let run = |body: &[u8]| {
            let req = decode_event(body, &header_token()).expect("decodes");
            finish_event(req, &cx(&r)).err().unwrap_or_default()
        };
        assert_eq!(fields(&run(br#"{"name":"$pageview"}"#)), ["url"]);
        assert_eq!(fields(&run(br#"{"name":"$$pageView"}"#)), ["url"]);
        assert!(run(br#"{"name":"$pageview","url":"https://a.test/"}"#).is_empty());
        assert_eq!(
            fields(&run(br#"{"name":"$outbound_link","url":"https://a.test/"}"#)),
            ["customData.href"]
        );
        assert_eq!(
            fields(&run(br#"{"name":"$$outboundLink"}"#)),
            ["url", "customData.href"]
        );
        assert_eq!(
            fields(&run(
                br#"{"name":"$outbound_link","url":"https://a.test/","customData":{"href":""}}"#
            )),
            ["customData.href"]
        );
        assert_eq!(fields(&run(br#"{"url":"https://a.test/"}"#)), ["event"]);
        assert_eq!(fields(&run(br#"{"name":""}"#)), ["event"]);
    }

    #[test]
    fn custom_data_values_become_strings() {
        let body = br#"{"name":"e","customData":{"n":1.5,"b":true,"o":{"k":[1,2]},"a":["x"],"s":"t","z":null,"e":""}}"#;
        let req = decode_event(body, &header_token()).expect("decodes");
        let p = Value::Object(req.draft.properties);
        assert_eq!(
            p,
            json!({"n": "1.5", "b": "true", "o": "{\"k\":[1,2]}", "a": "[\"x\"]", "s": "t", "z": "null", "e": ""})
        );
    }

    #[test]
    fn identical_pageviews_are_two_visits() {
        let body = br#"{"name":"$$pageView","url":"https://a.test/"}"#;
        let r1 = request();
        let r2 = RequestContext {
            received_at_ms: NOW + 1,
            request_id: "req-2".into(),
            ..request()
        };
        let one = decode_event(body, &header_token())
            .ok()
            .and_then(|q| finish_event(q, &cx(&r1)).ok());
        let two = decode_event(body, &header_token())
            .ok()
            .and_then(|q| finish_event(q, &cx(&r2)).ok());
        let ids = (one.map(|e| e.0.insert_id), two.map(|e| e.0.insert_id));
        assert!(ids.0.is_some() && ids.0 != ids.1);
    }

    #[test]
    fn user_data_without_an_identifier_goes_to_the_visitor() {
        let body = br#"{"name":"e","userData":{"set":{"a":1}}}"#;
        let r = request();
        let req = decode_event(body, &header_token()).expect("decodes");
        let (event, profile) = finish_event(req, &cx(&r)).expect("valid");
        assert_eq!(event.distinct_id, "cl-visitor");
        assert_eq!(profile.map(|p| p.distinct_id).as_deref(), Some("cl-visitor"));
        let with_cookies = Headers {
            allow_cookies: Some("true"),
            ..header_token()
        };
        let req = decode_event(body, &with_cookies).expect("decodes");
        assert_eq!(
            req.profile.and_then(|p| p.distinct_id),
            None,
            "the visitor, once finished"
        );
        // An event refused for its own fields sends no profile update.
        let req =
            decode_event(br#"{"name":"$pageview","userData":{"set":{"a":1}}}"#, &header_token()).expect("decodes");
        assert_eq!(fields(&finish_event(req, &cx(&r)).err().unwrap_or_default()), ["url"]);
    }

    #[test]
    fn identify_and_update_user() {
        let r = request();
        // Web SDK identify with only an identifier: the profile is created.
        let req = decode_identify(br#"{"identifier":"u1"}"#, &header_token()).expect("decodes");
        let update = finish_user(req, &cx(&r)).expect("valid");
        assert_eq!(update.distinct_id, "u1");
        assert_eq!(crate::profile::apply(None, &update.ops), Some(Map::new()));

        let body = br#"{"identifier":"u1","displayName":"Ann","avatarUrl":"https://a.test/a.png","data":{"set":{"plan":"pro","$name":"Old"},"unset":["trial"]}}"#;
        let update = decode_identify(body, &header_token())
            .ok()
            .and_then(|q| finish_user(q, &cx(&r)).ok());
        let applied = update
            .and_then(|u| crate::profile::apply(None, &u.ops))
            .map(Value::Object);
        assert_eq!(
            applied,
            Some(json!({"plan": "pro", "$name": "Ann", "$avatar": "https://a.test/a.png"}))
        );

        // Node SDK update: `userIdentifier`.
        let body = br#"{"userIdentifier":"u2","displayName":"Bo","data":{"setOnce":{"first":"mon"}}}"#;
        let update = decode_update(body, &header_token())
            .ok()
            .and_then(|q| finish_user(q, &cx(&r)).ok());
        assert_eq!(update.map(|u| u.distinct_id).as_deref(), Some("u2"));

        // Nothing to update is invalid; identify without a user is invalid.
        let empty = decode_update(br#"{"identifier":"u1"}"#, &header_token()).expect("decodes");
        assert_eq!(finish_user(empty, &cx(&r)).err().map(|e| e.len()), Some(1));
        assert!(matches!(
            decode_identify(br#"{"displayName":"x"}"#, &header_token()),
            Err(IngestError::BadRequest(_))
        ));
    }

    #[test]
    fn update_with_only_the_seed_fields_is_for_the_requests_visitor() {
        // The seed's /u: token, displayName, avatarUrl, data; no identifier.
        let body = br#"{"token":"pubTOKEN","displayName":"Ann","avatarUrl":"https://a.test/a.png","data":{"set":{"plan":"pro"}}}"#;
        let req = decode_update(body, &Headers::default()).expect("decodes");
        assert!(req.needs_visitor());
        assert_eq!(req.token.as_deref(), Some("pubTOKEN"));
        let r = request();
        let update = finish_user(req.clone(), &cx(&r)).expect("valid");
        assert_eq!(update.distinct_id, "cl-visitor");
        let applied = crate::profile::apply(None, &update.ops).map(Value::Object);
        assert_eq!(
            applied,
            Some(json!({"plan": "pro", "$name": "Ann", "$avatar": "https://a.test/a.png"}))
        );
        // No visitor known (no IP to hash): refused like any request without a user.
        let nobody = Admission {
            anonymous_id: None,
            ..cx(&r)
        };
        let errors = finish_user(req, &nobody).err().unwrap_or_default();
        assert_eq!(fields(&errors), ["distinct_id"]);
        assert_eq!(error(&IngestError::Invalid(errors)).body, b"Invalid!".to_vec());
        // An identifier, when sent, wins.
        let named = decode_update(br#"{"identifier":"u9","data":{"set":{"a":1}}}"#, &header_token()).expect("decodes");
        assert!(!named.needs_visitor());
        assert_eq!(
            finish_user(named, &cx(&r)).map(|u| u.distinct_id).ok().as_deref(),
            Some("u9")
        );
    }

    #[test]
    fn malformed_bodies_are_invalid() {
        for body in [
            &b""[..],
            b"[]",
            b"nope",
            br#"{"name":"e","customData":[1]}"#,
            br#"{"name":"e","userData":{"set":1}}"#,
            br#"{"name":"e","userData":{"unset":[1]}}"#,
            br#"{"name":"e","userData":{"unset":"a"}}"#,
        ] {
            let reply = decode_event(body, &header_token()).err().map(|e| error(&e));
            assert_eq!(
                reply.map(|r| (r.status, r.body)),
                Some((400, b"Invalid!".to_vec())),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn page_leave_and_reset_only_need_a_token() {
        assert_eq!(decode_no_op(b"", &header_token()).as_deref(), Some("pubTOKEN"));
        assert_eq!(
            decode_no_op(br#"{"Token":"pubTOKEN","contextId":"1"}"#, &Headers::default()).as_deref(),
            Some("pubTOKEN")
        );
        assert_eq!(decode_no_op(b"garbage", &Headers::default()), None);
    }

    #[test]
    fn replies_match_the_seed() {
        assert_eq!((ok().status, ok().body.len()), (200, 0));
        assert_eq!((accepted().status, accepted().body.len()), (202, 0));
        let invalid = error(&IngestError::Invalid(vec![FieldError::new(0, "url", "is required")]));
        assert_eq!((invalid.status, invalid.body.as_slice()), (400, &b"Invalid!"[..]));
        let busy = error(&IngestError::Unavailable);
        assert_eq!(busy.status, 503);
        assert!(busy.headers.iter().any(|(k, _)| *k == "Retry-After"));
        assert_eq!(error(&IngestError::Unauthorized).status, 401);
        assert_eq!(error(&IngestError::PayloadTooLarge { limit: 1 }).status, 413);
    }
}
