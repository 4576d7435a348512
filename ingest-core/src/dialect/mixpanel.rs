//! Mixpanel's ingestion family (seeds 001 and 002, and the official Python
//! and browser clients):
//!
//! - `/track`: client side, the project token inside each event. Parameters
//!   come from the query string and from a form body whatever its content
//!   type (sendBeacon posts `data=…` as text/plain); `data` is base64 in
//!   either alphabet, padded or not, or plain JSON; a raw JSON body works
//!   too. One event object or an array of at most 50.
//! - `/engage`: user profile updates, same transport, `$token` in each.
//! - `/import`: server side, the secret in `Authorization: Basic`, a JSON
//!   array or NDJSON body (or the Python client's form body), at most 2000
//!   events, `strict=1` for per-event errors with partial success.
//!
//! Decoders keep an item that cannot be read in place as its errors, so that
//! indices stay those of the request and the other items still count.

use super::Reply;
use crate::auth::{KeyKind, Project, Projects};
use crate::error::{FieldError, IngestError};
use crate::event::{Dialect, Event, EventDraft, PageContext, RequestContext};
use crate::limits::{MAX_BROWSER_BATCH_EVENTS, MAX_CALLBACK_CHARS, MAX_IMPORT_EVENTS, MAX_REDIRECT_URL_CHARS};
use crate::payload::{data_param_json, decode_base64, parse_json, parse_json_or_ndjson};
use crate::profile::{ProfileDraft, ProfileOp, ProfileUpdate};
use crate::validate::{finish_each, finish_profile, take_string, Context};
use serde_json::{json, Map, Value};

/// One decoded event, or why it could not be read.
pub type EventItem = Result<EventDraft, Vec<FieldError>>;
/// One decoded profile update, or why it could not be read.
pub type ProfileItem = Result<ProfileDraft, Vec<FieldError>>;

pub const GIF: &str = "image/gif";
pub const JAVASCRIPT: &str = "application/javascript";

/// A 1x1 transparent GIF for `img=1`: header, a two-colour palette, a
/// graphic control extension marking colour 0 transparent, one pixel of
/// colour 0 (LZW: clear code, 0, end code) and the trailer.
pub const PIXEL_GIF: [u8; 43] = [
    b'G', b'I', b'F', b'8', b'9', b'a', // signature and version
    0x01, 0x00, 0x01, 0x00, // width 1, height 1
    0x80, 0x00, 0x00, // global palette of 2 colours, background 0, no aspect
    0x00, 0x00, 0x00, 0xff, 0xff, 0xff, // palette: black, white
    0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, // transparency on colour 0
    0x2c, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x00, // image 1x1 at 0,0
    0x02, 0x02, 0x44, 0x01, 0x00, // LZW minimum size 2, one 2-byte block
    0x3b, // trailer
];

/// The parameters of a `/track` or `/engage` request, from the query string
/// and the form body (the body wins when both have one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackParams {
    /// `ip=1`: the request's address may stand in for a missing distinct_id.
    /// We never keep addresses, so the cookieless visitor hash stands in.
    pub ip: bool,
    /// False for `ip=0`: the sender (typically a server, like the Python
    /// client) asks that events not be placed by the request's address, so
    /// no country is attached.
    pub geolocate: bool,
    /// `verbose=1`: answer `{"status":…,"error":…}` instead of `1`/`0`.
    pub verbose: bool,
    /// `img=1`: answer a transparent 1x1 GIF.
    pub img: bool,
    /// `callback=`: answer JSONP. Only identifiers or dotted paths of them.
    pub callback: Option<String>,
    /// `redirect=`: send the browser on; honoured only for allowed hosts.
    pub redirect: Option<String>,
    /// `test=1`: validate and answer, but store nothing.
    pub test: bool,
}

impl Default for TrackParams {
    fn default() -> Self {
        TrackParams {
            ip: false,
            geolocate: true,
            verbose: false,
            img: false,
            callback: None,
            redirect: None,
            test: false,
        }
    }
}

impl TrackParams {
    /// Reads the parameters alone. Fails only on a `callback` that is not a
    /// plain JavaScript name; the error never repeats it. The worker uses
    /// `parse(..).unwrap_or_default()` to pick the shape of an error reply.
    pub fn parse(query: &str, body: &[u8]) -> Result<TrackParams, IngestError> {
        Transport::new(query, body).params()
    }
}

/// A decoded `/track` request.
#[derive(Debug, Clone, PartialEq)]
pub struct TrackRequest {
    pub params: TrackParams,
    /// The project token the events carry (`properties.token`).
    pub token: Option<String>,
    pub items: Vec<EventItem>,
}

/// A decoded `/engage` request.
#[derive(Debug, Clone, PartialEq)]
pub struct EngageRequest {
    pub params: TrackParams,
    /// The project token the updates carry (`$token`).
    pub token: Option<String>,
    pub items: Vec<ProfileItem>,
}

/// The parameters of an `/import` request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportParams {
    /// `strict=1`: a 400 listing the invalid events (the valid ones are
    /// imported all the same). Otherwise invalid events are skipped quietly.
    pub strict: bool,
    /// `verbose=1`, which the Python client always sends: it reads a numeric
    /// `status` (1 is success) and `error`, so replies then carry both.
    pub verbose: bool,
    /// `project_id=`: names the project that service-account credentials
    /// are for.
    pub project_id: Option<String>,
}

/// A decoded `/import` request.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRequest {
    pub params: ImportParams,
    pub items: Vec<EventItem>,
}

pub fn decode_track(query: &str, body: &[u8]) -> Result<TrackRequest, IngestError> {
    let transport = Transport::new(query, body);
    let params = transport.params()?;
    let values = batch(transport.data()?, MAX_BROWSER_BATCH_EVENTS)?;
    let (items, tokens): (Vec<_>, Vec<_>) = values.into_iter().enumerate().map(|(i, v)| read_event(i, v)).unzip();
    Ok(TrackRequest {
        params,
        token: one_token(tokens)?,
        items,
    })
}

pub fn decode_engage(query: &str, body: &[u8]) -> Result<EngageRequest, IngestError> {
    let transport = Transport::new(query, body);
    let params = transport.params()?;
    let values = batch(transport.data()?, MAX_BROWSER_BATCH_EVENTS)?;
    let (items, tokens): (Vec<_>, Vec<_>) = values.into_iter().enumerate().map(|(i, v)| read_update(i, v)).unzip();
    Ok(EngageRequest {
        params,
        token: one_token(tokens)?,
        items,
    })
}

/// `body` is already inflated ([`crate::payload::decode_body`]).
pub fn decode_import(query: &str, body: &[u8], content_type: Option<&str>) -> Result<ImportRequest, IngestError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(IngestError::EmptyBody);
    }
    let transport = Transport::new(query, body);
    let params = ImportParams {
        strict: transport.get("strict").is_some_and(flag),
        verbose: transport.get("verbose").is_some_and(flag),
        project_id: transport
            .get("project_id")
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
    };
    let values = match transport.json_body {
        Some(json) => {
            let values = parse_json_or_ndjson(json, content_type)?;
            check_count(values.len(), MAX_IMPORT_EVENTS)?;
            values
        }
        // The Python client posts imports as a form, like its tracking.
        None => batch(transport.data()?, MAX_IMPORT_EVENTS)?,
    };
    let items = values
        .into_iter()
        .enumerate()
        .map(|(i, v)| read_event(i, v).0)
        .collect();
    Ok(ImportRequest { params, items })
}

/// Validates `/track` events: the shared rules (which hold `/track` to
/// events at most three hours old: `validate::recent_window`), then
/// `mp_funnel`'s properties. The request's
/// country is dropped for `ip=0`. An event without a distinct_id gets the
/// cookieless visitor hash: with `ip=1` that is what the seed asks for (the
/// address standing in for the id, never stored), and without it Mixpanel
/// still accepts anonymous events, which need some identity here.
pub fn finish_track(items: Vec<EventItem>, params: &TrackParams, cx: &Context<'_>) -> (Vec<Event>, Vec<FieldError>) {
    let request = RequestContext {
        country: cx.request.country.clone().filter(|_| params.geolocate),
        ..cx.request.clone()
    };
    let cx = Context {
        project: cx.project,
        dialect: Dialect::MixpanelTrack,
        key: cx.key,
        request: &request,
        anonymous_id: cx.anonymous_id,
    };
    finish_each(items, &cx, funnel_rules)
}

/// Validates `/import` events: the shared rules, plus the four fields
/// `/import` requires and Mixpanel's refusal of placeholder ids. No
/// cookieless stand-in: imports come from servers.
pub fn finish_import(items: Vec<EventItem>, cx: &Context<'_>) -> (Vec<Event>, Vec<FieldError>) {
    let cx = cx.for_dialect(Dialect::MixpanelImport, false);
    finish_each(items, &cx, |index, draft| {
        let mut errors = import_rules(index, draft);
        errors.extend(funnel_rules(index, draft));
        errors
    })
}

pub fn finish_engage(items: Vec<ProfileItem>, cx: &Context<'_>) -> (Vec<ProfileUpdate>, Vec<FieldError>) {
    let cx = cx.for_dialect(Dialect::MixpanelEngage, false);
    let mut updates = Vec::new();
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        match item.and_then(|draft| finish_profile(draft, index, &cx)) {
            Ok(update) => updates.push(update),
            Err(found) => errors.extend(found),
        }
    }
    (updates, errors)
}

/// The secrets an `Authorization: Basic` header may be offering, most
/// likely first: the password (a service account's secret), then the
/// username (the legacy API secret, sent with an empty password).
pub fn basic_auth_candidates(authorization: &str) -> Vec<String> {
    let Some((scheme, encoded)) = authorization.trim().split_once(' ') else {
        return Vec::new();
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Vec::new();
    }
    let Some(text) = decode_base64(encoded).ok().and_then(|b| String::from_utf8(b).ok()) else {
        return Vec::new();
    };
    let (user, password) = text.split_once(':').unwrap_or((text.as_str(), ""));
    let mut candidates: Vec<String> = Vec::new();
    for part in [password, user] {
        if !part.is_empty() && !candidates.iter().any(|c| c == part) {
            candidates.push(part.to_owned());
        }
    }
    candidates
}

/// Finds the project an `/import` request may write to: a candidate from
/// the Basic header must be a project's secret, and `project_id`, when
/// given, must name that same project. A public token is refused with
/// `Forbidden` (Mixpanel accepts it; here it opens only the track side).
pub fn authorize_import<'p>(
    projects: &'p Projects,
    authorization: Option<&str>,
    project_id: Option<&str>,
) -> Result<&'p Project, IngestError> {
    let project_id = project_id.filter(|id| !id.is_empty());
    let mut refusal = IngestError::Unauthorized;
    for key in authorization.map(basic_auth_candidates).unwrap_or_default() {
        match projects.authorize(Some(&key), KeyKind::Secret) {
            Ok(project) if project_id.is_none_or(|id| id == project.id) => return Ok(project),
            Err(IngestError::Forbidden) => refusal = IngestError::Forbidden,
            _ => {}
        }
    }
    Err(refusal)
}

/// Whether `redirect=` may send a browser to `url`: http or https only, no
/// user info, and a host equal to an allowed host or below one.
pub fn redirect_allowed(url: &str, allowed_hosts: &[String]) -> bool {
    if url.chars().count() > MAX_REDIRECT_URL_CHARS
        || url.chars().any(|c| c.is_control() || c.is_whitespace() || c == '\\')
    {
        return false;
    }
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://")) else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    // `https://allowed.test@evil.test` goes to evil.test; no user info at all.
    if authority.contains('@') {
        return false;
    }
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok() => host,
        Some(_) => return false,
        None => authority,
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    if host.is_empty()
        || !host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
    {
        return false;
    }
    allowed_hosts.iter().any(|allowed| {
        let allowed = allowed.trim().trim_end_matches('.').to_ascii_lowercase();
        !allowed.is_empty()
            && (host == allowed
                || host
                    .strip_suffix(allowed.as_str())
                    .is_some_and(|head| head.ends_with('.')))
    })
}

/// The answer to a validated `/track` or `/engage` request. Mixpanel
/// answers success when at least one item was valid.
pub fn track_reply(params: &TrackParams, accepted: usize, errors: &[FieldError], redirect_hosts: &[String]) -> Reply {
    if accepted > 0 || errors.is_empty() {
        track_ok(params, redirect_hosts)
    } else {
        track_error(params, &IngestError::Invalid(errors.to_vec()), redirect_hosts)
    }
}

pub fn track_ok(params: &TrackParams, redirect_hosts: &[String]) -> Reply {
    respond(params, 200, 1, None, redirect_hosts)
}

/// Refusals of the request's content answer 200 with `0`, as Mixpanel does;
/// the rest keep their status, because mixpanel-browser retries a batch on
/// 429 and 5xx and halves it on 413, and drops it on anything else.
pub fn track_error(params: &TrackParams, err: &IngestError, redirect_hosts: &[String]) -> Reply {
    let status = match err.status() {
        400 => 200,
        other => other,
    };
    respond(params, status, 0, Some(err.message()), redirect_hosts).retry_after_for(err)
}

fn respond(params: &TrackParams, status: u16, outcome: u8, error: Option<String>, redirect_hosts: &[String]) -> Reply {
    // GET is allowed, so no cache may answer in our place.
    let no_store = |reply: Reply| reply.with_header("Cache-Control", "no-store");
    if let Some(target) = params
        .redirect
        .as_deref()
        .filter(|t| redirect_allowed(t, redirect_hosts))
    {
        // The person clicked a link: they go on even if the event failed.
        return no_store(Reply::empty(302).with_header("Location", target));
    }
    let verbose = json!({ "status": outcome, "error": error });
    if params.img {
        return no_store(Reply {
            status,
            content_type: GIF,
            body: PIXEL_GIF.to_vec(),
            headers: Vec::new(),
        });
    }
    if let Some(callback) = params.callback.as_deref() {
        let payload = if params.verbose {
            verbose.to_string()
        } else {
            outcome.to_string()
        };
        return no_store(Reply {
            status,
            content_type: JAVASCRIPT,
            body: format!("{callback}({payload})").into_bytes(),
            headers: vec![("X-Content-Type-Options", "nosniff".to_owned())],
        });
    }
    if params.verbose {
        return no_store(Reply::json(status, &verbose));
    }
    no_store(Reply::text(status, outcome.to_string()))
}

/// The answer to a validated `/import` request.
pub fn import_reply(params: &ImportParams, imported: usize, errors: &[FieldError]) -> Reply {
    if params.strict && !errors.is_empty() {
        return failed_validation(params, imported, errors);
    }
    let mut body = json!({"code": 200, "num_records_imported": imported, "status": "OK"});
    if params.verbose {
        body["status"] = json!(1);
        body["error"] = Value::Null;
    }
    Reply::json(200, &body)
}

/// Errors of `/import` in Mixpanel's shape:
/// `{"code":401,"error":"…","status":"Unauthorized"}`, the status being the
/// reason phrase (as in Mixpanel's published OpenAPI description of the
/// ingestion API), or 0 for the Python client (`verbose=1`).
pub fn import_error(params: &ImportParams, err: &IngestError) -> Reply {
    if let IngestError::Invalid(errors) = err {
        return failed_validation(params, 0, errors);
    }
    let code = err.status();
    let status = if params.verbose { json!(0) } else { json!(reason(code)) };
    Reply::json(code, &json!({"code": code, "error": err.message(), "status": status})).retry_after_for(err)
}

/// Mixpanel lists one row per failed event: its first problem.
fn failed_validation(params: &ImportParams, imported: usize, errors: &[FieldError]) -> Reply {
    let mut rows = Vec::new();
    let mut last = None;
    for e in errors {
        if last == Some(e.index) {
            continue;
        }
        last = Some(e.index);
        let mut row = json!({"index": e.index, "field": e.field, "message": format!("'{}' {}", e.field, e.message)});
        if let Some(id) = &e.insert_id {
            row["$insert_id"] = json!(id);
        }
        rows.push(row);
    }
    let status = if params.verbose { json!(0) } else { json!("Bad Request") };
    Reply::json(
        400,
        &json!({
            "code": 400,
            "error": "some data points in the request failed validation",
            "failed_records": rows,
            "num_records_imported": imported,
            "status": status,
        }),
    )
}

fn reason(code: u16) -> &'static str {
    match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        415 => "Unsupported Media Type",
        429 => "Too Many Requests",
        503 => "Service Unavailable",
        _ => "error",
    }
}

/// Where a request's parameters and payload are.
struct Transport<'a> {
    query: Vec<(String, String)>,
    form: Vec<(String, String)>,
    /// A body that is JSON itself rather than a form carrying it.
    json_body: Option<&'a [u8]>,
}

impl<'a> Transport<'a> {
    fn new(query: &str, body: &'a [u8]) -> Transport<'a> {
        let query = known_pairs(query.trim_start_matches('?').as_bytes());
        let first = body.iter().copied().find(|b| !b.is_ascii_whitespace());
        // Content types are not trusted to tell: sendBeacon posts forms as
        // text/plain and some senders label JSON as a form.
        if matches!(first, Some(b'{' | b'[')) {
            return Transport {
                query,
                form: Vec::new(),
                json_body: Some(body),
            };
        }
        let form = known_pairs(body);
        Transport {
            query,
            form,
            json_body: None,
        }
    }

    fn get(&self, name: &str) -> Option<&str> {
        find_pair(&self.form, name).or_else(|| find_pair(&self.query, name))
    }

    fn params(&self) -> Result<TrackParams, IngestError> {
        let callback = match self.get("callback").filter(|c| !c.is_empty()) {
            Some(name) if is_callback_name(name) => Some(name.to_owned()),
            Some(_) => {
                return Err(IngestError::BadRequest(
                    "callback must be a JavaScript name or dotted path of names, at most 64 characters".into(),
                ))
            }
            None => None,
        };
        Ok(TrackParams {
            ip: self.get("ip").is_some_and(flag),
            geolocate: self.get("ip").is_none_or(|v| v.trim() != "0"),
            verbose: self.get("verbose").is_some_and(flag),
            img: self.get("img").is_some_and(flag),
            callback,
            redirect: self.get("redirect").filter(|r| !r.is_empty()).map(str::to_owned),
            test: self.get("test").is_some_and(flag),
        })
    }

    fn data(&self) -> Result<Value, IngestError> {
        if let Some(json) = self.json_body {
            return parse_json(json);
        }
        match self.get("data") {
            Some(data) if !data.trim().is_empty() => data_param_json(data),
            _ => Err(IngestError::BadRequest("data is required".into())),
        }
    }
}

/// The parameters `/track`, `/engage` and `/import` read.
const PARAMETERS: [&str; 9] = [
    "data",
    "ip",
    "verbose",
    "img",
    "callback",
    "redirect",
    "test",
    "strict",
    "project_id",
];

/// The first value of each known parameter in a form or query string. Only
/// these are kept: every pair of a 2 MiB body of `a&a&…` as owned strings
/// took about 50 MiB.
fn known_pairs(encoded: &[u8]) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (key, value) in form_urlencoded::parse(encoded) {
        if PARAMETERS.contains(&key.as_ref()) && !pairs.iter().any(|(k, _)| *k == key) {
            pairs.push((key.into_owned(), value.into_owned()));
        }
    }
    pairs
}

fn find_pair<'p>(pairs: &'p [(String, String)], name: &str) -> Option<&'p str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn flag(value: &str) -> bool {
    let value = value.trim();
    value == "1" || value.eq_ignore_ascii_case("true")
}

/// A JavaScript identifier, or identifiers joined by dots, in ASCII: enough
/// for every JSONP helper, and nothing that can break out of the call.
fn is_callback_name(name: &str) -> bool {
    let part_ok = |part: &str| {
        let mut chars = part.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == '$')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
    };
    name.chars().count() <= MAX_CALLBACK_CHARS && name.split('.').all(part_ok)
}

/// One object, or an array of them, as a list of at most `limit` values.
fn batch(data: Value, limit: usize) -> Result<Vec<Value>, IngestError> {
    match data {
        Value::Object(_) => Ok(vec![data]),
        Value::Array(items) => {
            check_count(items.len(), limit)?;
            Ok(items)
        }
        _ => Err(IngestError::BadRequest(
            "data must be a JSON object or an array of objects".into(),
        )),
    }
}

fn check_count(count: usize, limit: usize) -> Result<(), IngestError> {
    if count == 0 {
        return Err(IngestError::BadRequest("the request holds no events".into()));
    }
    if count > limit {
        return Err(IngestError::TooManyEvents { count, limit });
    }
    Ok(())
}

/// The token of a request whose items each name one. Mixing projects in one
/// request is refused rather than guessed at.
fn one_token(tokens: Vec<Option<String>>) -> Result<Option<String>, IngestError> {
    let mut found: Option<String> = None;
    for token in tokens.into_iter().flatten() {
        match &found {
            Some(seen) if *seen != token => {
                return Err(IngestError::BadRequest(
                    "all items of one request must carry the same token".into(),
                ))
            }
            Some(_) => {}
            None => found = Some(token),
        }
    }
    Ok(found)
}

/// An event object as a draft, and the token it carried. Reserved
/// properties move to their fields; the token and IP addresses are never
/// stored; `mp_` properties are Mixpanel's own bookkeeping and are dropped.
/// The page facts mixpanel-browser sends move into the page context.
fn read_event(index: usize, item: Value) -> (EventItem, Option<String>) {
    let Value::Object(mut e) = item else {
        return (
            Err(vec![FieldError::new(
                index,
                "event",
                "each event must be a JSON object",
            )]),
            None,
        );
    };
    let mut properties = match e.remove("properties") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(p)) => p,
        Some(_) => {
            return (
                Err(vec![FieldError::new(index, "properties", "must be an object")]),
                None,
            )
        }
    };
    let token = take_string(&mut properties, "token").filter(|t| !t.is_empty());
    properties.remove("ip");
    properties.remove("$ip");
    properties.retain(|key, _| !key.starts_with("mp_"));
    let mut text = |key: &str| take_string(&mut properties, key).filter(|s| !s.is_empty());
    let url = text("$current_url");
    let referrer = text("$referrer");
    let screen = screen(&mut properties);
    let draft = EventDraft {
        name: e.remove("event"),
        distinct_id: properties.remove("distinct_id"),
        device_id: properties.remove("$device_id"),
        time: properties.remove("time"),
        insert_id: properties.remove("$insert_id"),
        page: PageContext {
            url,
            referrer,
            title: None,
            screen,
        },
        properties,
    };
    (Ok(draft), token)
}

/// `$screen_width` and `$screen_height` as our `WIDTHxHEIGHT`, when both are
/// whole numbers; otherwise they stay properties.
fn screen(properties: &mut Map<String, Value>) -> Option<String> {
    let width = properties.get("$screen_width").and_then(Value::as_u64)?;
    let height = properties.get("$screen_height").and_then(Value::as_u64)?;
    properties.remove("$screen_width");
    properties.remove("$screen_height");
    Some(format!("{width}x{height}"))
}

/// An `/engage` update object as a profile draft, and its token.
///
/// JSON objects have no key order, so one that holds several operations
/// gets them in a fixed order: `$set`, `$set_once`, `$add`, `$append`,
/// `$union`, `$remove`, `$unset`, `$delete`. Writes come before removals,
/// `$set` wins over `$set_once` for the same key, and deletion is last, so
/// an update that asks to delete a profile always ends with none.
fn read_update(index: usize, item: Value) -> (ProfileItem, Option<String>) {
    let Value::Object(mut u) = item else {
        return (
            Err(vec![FieldError::new(
                index,
                "update",
                "each update must be a JSON object",
            )]),
            None,
        );
    };
    let token = match u.remove("$token") {
        Some(Value::String(t)) if !t.is_empty() => Some(t),
        _ => None,
    };
    let mut ops = Vec::new();
    let mut errors = Vec::new();
    for key in [
        "$set",
        "$set_once",
        "$add",
        "$append",
        "$union",
        "$remove",
        "$unset",
        "$delete",
    ] {
        let Some(value) = u.remove(key) else { continue };
        let op = match (key, value) {
            ("$delete", _) => Some(ProfileOp::Delete),
            ("$unset", Value::Array(names)) => {
                let names: Option<Vec<String>> = names.into_iter().map(|n| n.as_str().map(str::to_owned)).collect();
                names.map(ProfileOp::Unset)
            }
            ("$unset", _) => None,
            (_, Value::Object(map)) => match key {
                "$set" => Some(ProfileOp::Set(map)),
                "$set_once" => Some(ProfileOp::SetOnce(map)),
                "$add" => Some(ProfileOp::Add(map)),
                "$append" => Some(ProfileOp::Append(map)),
                "$union" => Some(ProfileOp::Union(map)),
                _ => Some(ProfileOp::Remove(map)),
            },
            _ => None,
        };
        match op {
            Some(op) => ops.push(op),
            None if key == "$unset" => errors.push(FieldError::new(index, key, "must be an array of property names")),
            None => errors.push(FieldError::new(index, key, "must be an object")),
        }
    }
    if !errors.is_empty() {
        return (Err(errors), token);
    }
    let draft = ProfileDraft {
        distinct_id: u.remove("$distinct_id"),
        time: u.remove("$time"),
        ops,
    };
    (Ok(draft), token)
}

/// The event `mp_funnel` carries `step` (a whole number from 1), `funnel`
/// and `goal` (non-empty strings).
fn funnel_rules(index: usize, draft: &EventDraft) -> Vec<FieldError> {
    if draft.name.as_ref().and_then(Value::as_str) != Some("mp_funnel") {
        return Vec::new();
    }
    let mut errors = Vec::new();
    let props = &draft.properties;
    match props.get("step") {
        Some(step) if step.as_u64().is_some_and(|s| s >= 1) => {}
        None | Some(Value::Null) => errors.push(FieldError::new(index, "properties.step", "is required")),
        Some(_) => errors.push(FieldError::new(
            index,
            "properties.step",
            "must be a whole number of at least 1",
        )),
    }
    for key in ["funnel", "goal"] {
        let field = format!("properties.{key}");
        match props.get(key) {
            Some(Value::String(s)) if !s.trim().is_empty() => {}
            None | Some(Value::Null) => errors.push(FieldError::new(index, field, "is required")),
            Some(_) => errors.push(FieldError::new(index, field, "must be a non-empty string")),
        }
    }
    errors
}

/// Values Mixpanel's `/import` refuses as ids: placeholders that a bug put
/// where an id should be. Compared without case.
const PLACEHOLDER_IDS: [&str; 17] = [
    "00000000-0000-0000-0000-000000000000",
    "anon",
    "anonymous",
    "nil",
    "none",
    "null",
    "n/a",
    "na",
    "undefined",
    "unknown",
    "<nil>",
    "0",
    "-1",
    "true",
    "false",
    "[]",
    "{}",
];

fn import_rules(index: usize, draft: &EventDraft) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (field, value) in [
        ("properties.time", &draft.time),
        ("properties.distinct_id", &draft.distinct_id),
        ("properties.$insert_id", &draft.insert_id),
    ] {
        let text = match value {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(_) => Some(String::from("x")),
        };
        match text.as_deref() {
            None | Some("") => errors.push(FieldError::new(index, field, "is required")),
            Some(id) if field != "properties.time" && PLACEHOLDER_IDS.iter().any(|p| p.eq_ignore_ascii_case(id)) => {
                errors.push(FieldError::new(index, field, "is a placeholder, not an id"))
            }
            Some(_) => {}
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dialect::{JSON, TEXT};
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;

    const NOW: i64 = 1_795_424_070_930;

    fn request() -> RequestContext {
        RequestContext {
            received_at_ms: NOW,
            user_agent: Some("Mozilla/5.0".into()),
            ip: Some("203.0.113.9".into()),
            country: Some("DE".into()),
            verified_bot: false,
        }
    }

    /// A public token's request (`/track`, `/engage`).
    fn cx<'a>(req: &'a RequestContext, anonymous_id: Option<&'a str>) -> Context<'a> {
        Context {
            project: "demo",
            dialect: Dialect::Browser,
            key: KeyKind::Public,
            request: req,
            anonymous_id,
        }
    }

    /// A secret key's request (`/import`).
    fn import_cx<'a>(req: &'a RequestContext, anonymous_id: Option<&'a str>) -> Context<'a> {
        Context {
            key: KeyKind::Secret,
            ..cx(req, anonymous_id)
        }
    }

    fn drafts(items: &[EventItem]) -> Vec<&EventDraft> {
        items.iter().filter_map(|i| i.as_ref().ok()).collect()
    }

    fn body_json(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.body).unwrap_or_default()
    }

    fn fields(errors: &[FieldError]) -> Vec<(usize, &str)> {
        errors.iter().map(|e| (e.index, e.field.as_str())).collect()
    }

    /// The `/track` example of seed 002, as its URL carries it.
    const SEED_QUERY: &str = "data=eyJldmVudCI6ICJnYW1lIiwgInByb3BlcnRpZXMiOiB7ImlwIjogIjEyMy4xMjMuMTIzLjEyMyIsICJ0b2tlbiI6ICJlM2JiNDEwMDMzMGMzNTcyMjc0MGZiOGM2ZjVhYmRkYyIsICJ0aW1lIjogMTI0NTYxMzg4NSwgImFjdGlvbiI6ICJwbGF5In19&ip=1";

    #[test]
    fn seed_track_example_decodes_and_is_too_old_for_track() {
        let req = decode_track(SEED_QUERY, b"").expect("decodes");
        assert_eq!(req.token.as_deref(), Some("e3bb4100330c35722740fb8c6f5abddc"));
        assert!(req.params.ip && req.params.geolocate && !req.params.verbose);
        let d = drafts(&req.items)[0].clone();
        assert_eq!(d.name, Some(json!("game")));
        assert_eq!(d.time, Some(json!(1_245_613_885)));
        assert_eq!(
            Value::Object(d.properties.clone()),
            json!({"action": "play"}),
            "ip and token never kept"
        );

        // 2009 is far more than three hours ago.
        let r = request();
        let (events, errors) = finish_track(req.items.clone(), &req.params, &cx(&r, Some("cl-x")));
        assert!(events.is_empty());
        assert_eq!(fields(&errors), [(0, "properties.time")]);

        // Received right then, it is fine, and the cookieless id is not needed.
        let then = RequestContext {
            received_at_ms: 1_245_613_885_000,
            ..request()
        };
        let (events, errors) = finish_track(req.items, &req.params, &cx(&then, Some("cl-x")));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(events[0].distinct_id, "cl-x", "ip=1 lets the visitor hash stand in");
        assert_eq!(events[0].source, Dialect::MixpanelTrack);
    }

    /// What the Python client 5.4.1 posts for `track` (captured shape).
    fn python_track_body() -> String {
        let event = json!({"event": "Signed Up", "properties": {"token": "TOKEN123", "distinct_id": "u-42",
            "time": 1_795_424_001.152_876_6_f64, "$insert_id": "0f8fad5bd9cb469fa16570867728950e",
            "mp_lib": "python", "$lib_version": "5.4.1", "plan": "pro"}});
        let encoded: String = form_urlencoded::byte_serialize(event.to_string().as_bytes()).collect();
        format!("data={encoded}&verbose=1&ip=0")
    }

    #[test]
    fn python_client_form_body() {
        let req = decode_track("", python_track_body().as_bytes()).expect("decodes");
        assert_eq!(req.token.as_deref(), Some("TOKEN123"));
        let p = &req.params;
        assert!(p.verbose && !p.ip && !p.geolocate && !p.img && !p.test);
        let d = drafts(&req.items)[0];
        assert_eq!(d.insert_id, Some(json!("0f8fad5bd9cb469fa16570867728950e")));
        assert!(!d.properties.contains_key("mp_lib"));
        assert_eq!(d.properties["$lib_version"], "5.4.1");

        let r = request();
        let (events, errors) = finish_track(req.items, &req.params, &cx(&r, Some("cl-x")));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            events[0].time_ms, 1_795_424_001_153,
            "float seconds keep their milliseconds"
        );
        assert_eq!(events[0].country, None, "ip=0: not placed by the request's address");
        assert_eq!(events[0].distinct_id, "u-42");
    }

    #[test]
    fn only_the_first_of_each_known_parameter_is_kept() {
        // Regression: every pair of a form body was kept as owned strings,
        // about 50 MiB for a 2 MiB body of `a&a&…`.
        let body = format!("{}&{}&data=second&verbose=0", "a&".repeat(100_000), python_track_body());
        let transport = Transport::new("?verbose=0&img=1&x=1", body.as_bytes());
        assert_eq!(transport.form.len(), 3, "data, verbose, ip");
        assert_eq!(transport.query.len(), 2, "verbose, img");
        assert_eq!(transport.get("verbose"), Some("1"), "the body's first value wins");
        assert_eq!(transport.get("img"), Some("1"), "the query fills in");
        let req = decode_track("", body.as_bytes()).expect("decodes");
        assert_eq!(req.token.as_deref(), Some("TOKEN123"));
    }

    /// mixpanel-browser 2.83.0, batched, default base64 payload.
    fn browser_batch() -> Value {
        let event = |name: &str, id: &str| {
            json!({"event": name, "properties": {"$os": "Linux", "$browser": "Chrome",
                "$current_url": "https://shop.example.com/p?q=1", "$referrer": "https://google.com/",
                "$screen_height": 1080, "$screen_width": 1920, "mp_lib": "web", "$lib_version": "2.83.0",
                "$insert_id": id, "time": 1_795_424_065.918_f64, "distinct_id": "$device:18c2f",
                "$device_id": "18c2f", "token": "demo-token", "mp_sent_by_lib_version": "2.83.0"}})
        };
        json!([
            event("Signed Up", "k3j2h1g0f9e8d7c6"),
            event("$identify", "a1b2c3d4e5f6g7h8")
        ])
    }

    #[test]
    fn browser_batch_in_base64_form_body() {
        let data: String =
            form_urlencoded::byte_serialize(STANDARD.encode(browser_batch().to_string()).as_bytes()).collect();
        let body = format!("data={data}");
        let req = decode_track("?verbose=1&ip=1&_=1795424070930", body.as_bytes()).expect("decodes");
        assert!(req.params.verbose && req.params.ip);
        assert_eq!(req.token.as_deref(), Some("demo-token"));
        let d = drafts(&req.items);
        assert_eq!(d.len(), 2);
        assert_eq!(d[0].page.url.as_deref(), Some("https://shop.example.com/p?q=1"));
        assert_eq!(d[0].page.referrer.as_deref(), Some("https://google.com/"));
        assert_eq!(d[0].page.screen.as_deref(), Some("1920x1080"));
        assert_eq!(d[0].device_id, Some(json!("18c2f")));
        assert!(d[0].properties.keys().all(|k| !k.starts_with("mp_")));
        assert!(!d[0].properties.contains_key("$current_url"));

        let r = request();
        let (events, errors) = finish_track(req.items, &req.params, &cx(&r, None));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(events[1].name, "$identify");
        assert_eq!(events[0].time_ms, 1_795_424_065_918);
        assert_eq!(events[0].country.as_deref(), Some("DE"));
    }

    #[test]
    fn every_transport_gives_the_same_events() {
        let one = json!({"event": "e", "properties": {"token": "t", "distinct_id": "u", "time": 1_795_424_000}});
        let text = one.to_string();
        let std = STANDARD.encode(&text);
        let url_safe = URL_SAFE_NO_PAD.encode(&text);
        let expected = decode_track(&format!("data={}", urlencode(&text)), b"")
            .expect("query json")
            .items;
        let bodies = [
            // sendBeacon: a form string posted as text/plain
            (String::new(), format!("data={}", urlencode(&std))),
            // a client that forgot to percent-encode base64: '+' arrives as ' '
            (String::new(), format!("data={std}")),
            (String::new(), format!("data={url_safe}")),
            (String::new(), format!("data={}", urlencode(&text))),
            // raw JSON body, parameters in the query
            ("verbose=1".to_owned(), text.clone()),
            (format!("data={}", urlencode(std.trim_end_matches('='))), String::new()),
        ];
        for (query, body) in bodies {
            let got = decode_track(&query, body.as_bytes()).map(|r| r.items);
            assert_eq!(got.as_ref().ok(), Some(&expected), "{query} | {body}");
        }
    }

    fn urlencode(text: &str) -> String {
        form_urlencoded::byte_serialize(text.as_bytes()).collect()
    }

    #[test]
    fn batch_size_at_and_past_limit() {
        let one = json!({"event": "e", "properties": {"token": "t", "distinct_id": "u"}});
        let body = |n: usize| format!("data={}", urlencode(&Value::Array(vec![one.clone(); n]).to_string()));
        let at = decode_track("", body(MAX_BROWSER_BATCH_EVENTS).as_bytes()).map(|r| r.items.len());
        assert_eq!(at.ok(), Some(MAX_BROWSER_BATCH_EVENTS));
        assert!(matches!(
            decode_track("", body(MAX_BROWSER_BATCH_EVENTS + 1).as_bytes()),
            Err(IngestError::TooManyEvents { count: 51, limit: 50 })
        ));
        assert!(matches!(
            decode_engage("", body(MAX_BROWSER_BATCH_EVENTS + 1).as_bytes()),
            Err(IngestError::TooManyEvents { .. })
        ));
    }

    #[test]
    fn shapes_the_request_cannot_have() {
        for (query, body) in [
            ("", &b""[..]),
            ("", b"verbose=1"),
            ("data=", b""),
            ("", b"data=%21%21%21"),
            ("", b"data=5"),
            ("", b"[]"),
            ("", b"{oops"),
        ] {
            let status = decode_track(query, body).err().map(|e| e.status());
            assert_eq!(status, Some(400), "{query} | {}", String::from_utf8_lossy(body));
        }
        let mixed = br#"[{"event":"a","properties":{"token":"t1"}},{"event":"b","properties":{"token":"t2"}}]"#;
        assert!(matches!(decode_track("", mixed), Err(IngestError::BadRequest(_))));
        // One bad item keeps its place; the others still decode.
        let partly = br#"[{"event":"a","properties":{"token":"t"}}, 7, {"event":"c","properties":[]}]"#;
        let req = decode_track("", partly).expect("decodes");
        assert_eq!(req.items.len(), 3);
        let errors: Vec<FieldError> = req.items.iter().filter_map(|i| i.clone().err()).flatten().collect();
        assert_eq!(fields(&errors), [(1, "event"), (2, "properties")]);
        assert_eq!(req.token.as_deref(), Some("t"));
    }

    #[test]
    fn track_age_at_and_past_limit() {
        let at = |time_ms: i64| {
            let body = json!({"event": "e", "properties": {"token": "t", "distinct_id": "u", "time": time_ms}});
            let req = decode_track("", body.to_string().as_bytes()).expect("decodes");
            let r = request();
            finish_track(req.items, &req.params, &cx(&r, None)).1
        };
        assert!(at(NOW - crate::limits::MAX_TRACK_AGE_MS).is_empty());
        assert_eq!(
            fields(&at(NOW - crate::limits::MAX_TRACK_AGE_MS - 1)),
            [(0, "properties.time")]
        );
    }

    #[test]
    fn funnel_event_from_the_seed_and_its_rules() {
        let props = |extra: Value| {
            let mut p = json!({"ip": "123.123.123.123", "token": "e3bc4100330c35722740fb8c6f5abddc",
                "time": 1_795_424_000, "gender": "male", "funnel": "My Funnel", "step": 1, "goal": "Impression",
                "distinct_id": "u"});
            if let (Some(p), Some(extra)) = (p.as_object_mut(), extra.as_object()) {
                for (k, v) in extra {
                    p.insert(k.clone(), v.clone());
                }
            }
            json!({"event": "mp_funnel", "properties": p}).to_string()
        };
        let run = |body: String| {
            let req = decode_track("", body.as_bytes()).expect("decodes");
            let r = request();
            finish_track(req.items, &req.params, &cx(&r, None))
        };
        let (events, errors) = run(props(json!({})));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(events[0].properties["funnel"], "My Funnel");
        let (_, errors) = run(props(json!({"step": 0, "funnel": "", "goal": null})));
        assert_eq!(
            fields(&errors),
            [(0, "properties.step"), (0, "properties.funnel"), (0, "properties.goal")]
        );
        let (_, errors) = run(props(json!({"step": 1.5})));
        assert_eq!(fields(&errors), [(0, "properties.step")]);
    }

    #[test]
    fn callback_names_at_and_past_limit() {
        for good in ["cb", "jQuery1830_1700000000", "window.mp.cb", "$", "_a$1"] {
            let p = TrackParams::parse(&format!("callback={good}"), b"").expect(good);
            assert_eq!(p.callback.as_deref(), Some(good));
        }
        let at = "a".repeat(MAX_CALLBACK_CHARS);
        assert!(TrackParams::parse(&format!("callback={at}"), b"").is_ok());
        let past = "a".repeat(MAX_CALLBACK_CHARS + 1);
        for bad in [past.as_str(), "alert(1)", "a..b", "1a", "a-b", ".a", "a.", "x;y", "é"] {
            let err = TrackParams::parse(&format!("callback={}", urlencode(bad)), b"").err();
            let message = err.as_ref().map(IngestError::message).unwrap_or_default();
            assert!(matches!(err, Some(IngestError::BadRequest(_))), "{bad}");
            assert!(!message.contains(bad), "never reflected");
        }
        assert_eq!(TrackParams::parse("callback=", b"").map(|p| p.callback), Ok(None));
    }

    #[test]
    fn track_replies_in_every_shape() {
        let plain = TrackParams::default();
        let ok = track_ok(&plain, &[]);
        assert_eq!((ok.status, ok.body.as_slice(), ok.content_type), (200, &b"1"[..], TEXT));
        let invalid = IngestError::Invalid(vec![FieldError::new(0, "event", "is required")]);
        let no = track_error(&plain, &invalid, &[]);
        assert_eq!((no.status, no.body.as_slice()), (200, &b"0"[..]));

        let verbose = TrackParams {
            verbose: true,
            ..TrackParams::default()
        };
        assert_eq!(body_json(&track_ok(&verbose, &[])), json!({"status": 1, "error": null}));
        let reply = track_error(&verbose, &invalid, &[]);
        assert_eq!(
            body_json(&reply),
            json!({"status": 0, "error": "'event' is invalid: is required"})
        );
        assert_eq!(reply.content_type, JSON);

        // Statuses that make mixpanel-browser retry or split are kept.
        let busy = track_error(&verbose, &IngestError::Unavailable, &[]);
        assert_eq!(busy.status, 503);
        assert!(busy.headers.iter().any(|(k, v)| *k == "Retry-After" && v == "5"));
        assert_eq!(
            track_error(&plain, &IngestError::TooManyEvents { count: 51, limit: 50 }, &[]).status,
            413
        );
        assert_eq!(track_error(&plain, &IngestError::Unauthorized, &[]).status, 401);

        let img = TrackParams {
            img: true,
            ..TrackParams::default()
        };
        let pixel = track_ok(&img, &[]);
        assert_eq!((pixel.content_type, pixel.body.as_slice()), (GIF, &PIXEL_GIF[..]));

        let jsonp = TrackParams {
            callback: Some("mp.cb".into()),
            ..TrackParams::default()
        };
        let reply = track_ok(&jsonp, &[]);
        assert_eq!(
            (reply.content_type, reply.body.as_slice()),
            (JAVASCRIPT, &b"mp.cb(1)"[..])
        );
        let jsonp_verbose = TrackParams { verbose: true, ..jsonp };
        assert_eq!(
            track_ok(&jsonp_verbose, &[]).body,
            br#"mp.cb({"error":null,"status":1})"#.to_vec()
        );
        assert!(reply
            .headers
            .iter()
            .any(|(k, v)| *k == "X-Content-Type-Options" && v == "nosniff"));
        assert!(reply.headers.iter().any(|(k, _)| *k == "Cache-Control"));

        // Partial success is success.
        let errors = [FieldError::new(1, "event", "is required")];
        assert_eq!(track_reply(&plain, 1, &errors, &[]).body, b"1".to_vec());
        assert_eq!(track_reply(&plain, 0, &errors, &[]).body, b"0".to_vec());
    }

    #[test]
    fn pixel_is_a_well_formed_gif() {
        assert_eq!(&PIXEL_GIF[..6], b"GIF89a");
        assert_eq!(PIXEL_GIF[PIXEL_GIF.len() - 1], 0x3b);
        // Width and height are both 1 (little endian).
        assert_eq!(&PIXEL_GIF[6..10], &[1, 0, 1, 0]);
    }

    #[test]
    fn redirects_only_to_allowed_hosts() {
        let hosts = vec!["example.com".to_owned(), "Shop.Test.".to_owned()];
        for good in [
            "https://example.com/",
            "http://example.com",
            "https://www.example.com/a?b=c#d",
            "HTTPS://EXAMPLE.COM:8443/x",
            "https://shop.test/thanks",
            "https://example.com./",
        ] {
            assert!(redirect_allowed(good, &hosts), "{good}");
        }
        for bad in [
            "https://example.com@evil.test/",
            "https://user:pw@example.com/",
            "//evil.test/",
            "//example.com/",
            "https:evil.test",
            "https:///evil.test",
            "javascript:alert(1)//example.com",
            "ftp://example.com/",
            "https://evil.test/example.com",
            "https://example.com.evil.test/",
            "https://notexample.com/",
            "https://evil.test\\@example.com/",
            "https://example.com\\.evil.test/",
            "https://exa mple.com/",
            "https://example.com\r\nSet-Cookie: a=b",
            "https://example.com:99999/",
            "https://example.com:/",
            "https://[::1]/",
            "https://%65xample.com/",
            "",
        ] {
            assert!(!redirect_allowed(bad, &hosts), "{bad}");
        }
        assert!(!redirect_allowed("https://example.com/", &[]));
        assert!(!redirect_allowed("https://example.com/", &[String::new()]));
    }

    #[test]
    fn redirect_length_at_and_past_limit() {
        let hosts = vec!["example.com".to_owned()];
        let base = "https://example.com/";
        let at = format!("{base}{}", "a".repeat(MAX_REDIRECT_URL_CHARS - base.len()));
        assert!(redirect_allowed(&at, &hosts));
        assert!(!redirect_allowed(&format!("{at}a"), &hosts));
    }

    #[test]
    fn redirect_reply_goes_on_even_after_a_failure() {
        let params = TrackParams {
            redirect: Some("https://example.com/next".into()),
            ..TrackParams::default()
        };
        let hosts = vec!["example.com".to_owned()];
        let reply = track_error(&params, &IngestError::Invalid(Vec::new()), &hosts);
        assert_eq!(reply.status, 302);
        assert!(reply
            .headers
            .iter()
            .any(|(k, v)| *k == "Location" && v == "https://example.com/next"));
        // Not allowed: the usual answer, no redirect.
        assert_eq!(track_ok(&params, &[]).status, 200);
    }

    #[test]
    fn engage_python_and_browser_updates() {
        let python = json!({"$token": "TOKEN123", "$time": 1_795_424_001.5_f64, "$distinct_id": "u-42",
            "$set": {"plan": "pro"}});
        let body = format!("data={}&verbose=1&ip=0", urlencode(&python.to_string()));
        let req = decode_engage("", body.as_bytes()).expect("decodes");
        assert_eq!(req.token.as_deref(), Some("TOKEN123"));
        let r = request();
        let (updates, errors) = finish_engage(req.items, &cx(&r, None));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(updates[0].distinct_id, "u-42");
        assert_eq!(updates[0].time_ms, 1_795_424_001_500);
        assert_eq!(updates[0].project, "demo");

        let browser = json!([{"$set": {"$browser": "Chrome", "name": "Ann"}, "$token": "demo-token",
            "$distinct_id": "u-1", "$device_id": "18c2f", "$user_id": "u-1"},
            {"$union": {"tags": ["a"]}, "$token": "demo-token", "$distinct_id": "u-1"}]);
        let body = format!("data={}", urlencode(&STANDARD.encode(browser.to_string())));
        let req = decode_engage("verbose=1", body.as_bytes()).expect("decodes");
        let (updates, errors) = finish_engage(req.items, &cx(&r, None));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(updates.len(), 2);
        assert!(matches!(&updates[1].ops[..], [ProfileOp::Union(_)]));
    }

    #[test]
    fn engage_operations_come_in_a_fixed_order() {
        let update = json!({"$token": "t", "$distinct_id": "u", "$delete": "", "$unset": ["a"],
            "$remove": {"l": 1}, "$union": {"l": [2]}, "$append": {"l": 3}, "$add": {"n": 1},
            "$set_once": {"s": 1}, "$set": {"s": 2}});
        let req = decode_engage("", update.to_string().as_bytes()).expect("decodes");
        let ops = match &req.items[0] {
            Ok(d) => d.ops.iter().map(ProfileOp::key).collect::<Vec<_>>(),
            Err(e) => panic!("{e:?}"),
        };
        assert_eq!(
            ops,
            [
                "$set",
                "$set_once",
                "$add",
                "$append",
                "$union",
                "$remove",
                "$unset",
                "$delete"
            ]
        );
    }

    #[test]
    fn engage_errors_stay_with_their_update() {
        let body = json!([{"$token": "t", "$distinct_id": "u", "$set": 5},
            {"$token": "t", "$distinct_id": "u", "$unset": "a"},
            {"$token": "t", "$set": {"a": 1}},
            {"$token": "t", "$distinct_id": "u"},
            {"$token": "t", "$distinct_id": "u", "$add": {"n": "x"}},
            {"$token": "t", "$distinct_id": "u", "$unset": ["a", "b"]}]);
        let req = decode_engage("", body.to_string().as_bytes()).expect("decodes");
        let r = request();
        let (updates, errors) = finish_engage(req.items, &cx(&r, Some("cl-x")));
        assert_eq!(updates.len(), 1);
        assert_eq!(
            fields(&errors),
            [
                (0, "$set"),
                (1, "$unset"),
                (2, "distinct_id"),
                (3, "ops"),
                (4, "$add.n")
            ]
        );
    }

    /// The import example of Mixpanel's documentation.
    const IMPORT_ARRAY: &str = r#"[
  {"event": "Signup", "properties": {"time": 1618716477000,"distinct_id": "91304156-cafc-4673-a237-623d1129c801","$insert_id": "29fc2962-6d9c-455d-95ad-95b84f09b9e4","Referred by": "Friend","URL": "mixpanel.com/signup"}},
  {"event": "Purchase", "properties": {"time": 1618716477000,"distinct_id": "91304156-cafc-4673-a237-623d1129c801","$insert_id": "935d87b1-00cd-41b7-be34-b9d98dd08b42","Item": "Coffee", "Amount": 5.0}}
]"#;

    #[test]
    fn import_json_array_and_ndjson() {
        let req = decode_import(
            "strict=1&project_id=12345",
            IMPORT_ARRAY.as_bytes(),
            Some("application/json"),
        )
        .expect("decodes");
        assert_eq!(
            req.params,
            ImportParams {
                strict: true,
                verbose: false,
                project_id: Some("12345".into())
            }
        );
        let r = request();
        let (events, errors) = finish_import(req.items, &import_cx(&r, Some("cl-x")));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].insert_id, "935d87b1-00cd-41b7-be34-b9d98dd08b42");
        assert_eq!(events[0].time_ms, 1_618_716_477_000);
        assert_eq!(events[0].source, Dialect::MixpanelImport);

        let ndjson: String = IMPORT_ARRAY
            .lines()
            .filter(|l| l.contains("event"))
            .map(|l| format!("{}\n", l.trim().trim_end_matches(',')))
            .collect();
        let req = decode_import("", ndjson.as_bytes(), Some("application/x-ndjson")).expect("decodes");
        assert_eq!(req.items.len(), 2);
    }

    #[test]
    fn import_from_the_python_client_form() {
        let event = json!({"event": "SA Event", "properties": {"token": "TOKEN123", "distinct_id": "u",
            "time": 1_700_000_000, "$insert_id": "a1b2c3d4e5f60718293a4b5c6d7e8f90", "mp_lib": "python"}});
        let body = format!("data={}&verbose=1&ip=0&api_key=legacy", urlencode(&event.to_string()));
        let req = decode_import(
            "project_id=12345",
            body.as_bytes(),
            Some("application/x-www-form-urlencoded"),
        )
        .expect("decodes");
        assert!(req.params.verbose && !req.params.strict);
        let d = drafts(&req.items)[0];
        assert!(!d.properties.contains_key("token") && !d.properties.contains_key("mp_lib"));
        let ok = import_reply(&req.params, 1, &[]);
        // The Python client reads a numeric status and the error.
        assert_eq!(
            body_json(&ok),
            json!({"code": 200, "num_records_imported": 1, "status": 1, "error": null})
        );
    }

    #[test]
    fn import_requires_its_four_fields_and_real_ids() {
        let body = json!([
            {"event": "ok", "properties": {"time": 1_700_000_000, "distinct_id": "u", "$insert_id": "a-1"}},
            {"event": "e", "properties": {"distinct_id": "u", "$insert_id": "a-2"}},
            {"event": "e", "properties": {"time": 1_700_000_000, "$device_id": "d", "$insert_id": "a-3"}},
            {"event": "e", "properties": {"time": 1_700_000_000, "distinct_id": "u"}},
            {"properties": {"time": 1_700_000_000, "distinct_id": "u", "$insert_id": "a-5"}},
            {"event": "e", "properties": {"time": 1_700_000_000, "distinct_id": "Undefined", "$insert_id": "a-6"}},
            {"event": "e", "properties": {"time": 1_700_000_000, "distinct_id": -1, "$insert_id": "null"}},
            "not an event"
        ]);
        let req = decode_import("strict=1", body.to_string().as_bytes(), None).expect("decodes");
        let r = request();
        let (events, errors) = finish_import(req.items, &import_cx(&r, Some("cl-x")));
        assert_eq!(events.len(), 1, "the cookieless id never stands in for imports");
        assert_eq!(
            fields(&errors),
            [
                (1, "properties.time"),
                (2, "properties.distinct_id"),
                (3, "properties.$insert_id"),
                (4, "event"),
                (5, "properties.distinct_id"),
                (6, "properties.distinct_id"),
                (6, "properties.$insert_id"),
                (7, "event"),
            ]
        );
        assert_eq!(errors[0].insert_id.as_deref(), Some("a-2"));

        let reply = import_reply(&req.params, events.len(), &errors);
        assert_eq!(reply.status, 400);
        let body = body_json(&reply);
        assert_eq!(body["error"], "some data points in the request failed validation");
        assert_eq!(
            (body["code"].clone(), body["status"].clone()),
            (json!(400), json!("Bad Request"))
        );
        assert_eq!(body["num_records_imported"], 1);
        let rows = body["failed_records"].as_array().cloned().unwrap_or_default();
        assert_eq!(rows.len(), 7, "one row per failed event");
        assert_eq!(
            rows[0],
            json!({"index": 1, "$insert_id": "a-2", "field": "properties.time",
            "message": "'properties.time' is required"})
        );
        assert!(rows[6].get("$insert_id").is_none());

        // Not strict: the invalid ones are skipped without a word.
        let quiet = import_reply(&ImportParams::default(), 1, &errors);
        assert_eq!(
            body_json(&quiet),
            json!({"code": 200, "num_records_imported": 1, "status": "OK"})
        );
    }

    #[test]
    fn import_count_at_and_past_limit() {
        let one = r#"{"event":"e","properties":{"time":1700000000,"distinct_id":"u","$insert_id":"x"}}"#;
        let body = |n: usize| format!("[{}]", vec![one; n].join(","));
        let at = decode_import("", body(MAX_IMPORT_EVENTS).as_bytes(), None).map(|r| r.items.len());
        assert_eq!(at.ok(), Some(MAX_IMPORT_EVENTS));
        assert!(matches!(
            decode_import("", body(MAX_IMPORT_EVENTS + 1).as_bytes(), None),
            Err(IngestError::TooManyEvents {
                count: 2001,
                limit: 2000
            })
        ));
        let ndjson = vec![one; MAX_IMPORT_EVENTS + 1].join("\n");
        assert!(matches!(
            decode_import("", ndjson.as_bytes(), None),
            Err(IngestError::TooManyEvents { .. })
        ));
        assert_eq!(decode_import("", b"  ", None), Err(IngestError::EmptyBody));
        assert!(matches!(
            decode_import("", b"[]", None),
            Err(IngestError::BadRequest(_))
        ));
    }

    #[test]
    fn import_errors_in_mixpanel_shape() {
        let plain = ImportParams::default();
        let reply = import_error(&plain, &IngestError::Unauthorized);
        assert_eq!(reply.status, 401);
        assert_eq!(
            body_json(&reply),
            json!({"code": 401, "error": "missing or invalid credentials", "status": "Unauthorized"})
        );
        let too_big = import_error(&plain, &IngestError::PayloadTooLarge { limit: 2_097_152 });
        assert_eq!(
            body_json(&too_big)["error"],
            "request exceeds max limit of 2097152 bytes"
        );
        assert_eq!(body_json(&too_big)["status"], "Request Entity Too Large");
        let limited = import_error(&plain, &IngestError::RateLimited { retry_after_seconds: 7 });
        assert!(limited.headers.iter().any(|(k, v)| *k == "Retry-After" && v == "7"));
        let verbose = ImportParams {
            verbose: true,
            ..ImportParams::default()
        };
        assert_eq!(body_json(&import_error(&verbose, &IngestError::Forbidden))["status"], 0);
    }

    fn basic(user_pass: &str) -> String {
        format!("Basic {}", STANDARD.encode(user_pass))
    }

    #[test]
    fn basic_auth_offers_password_then_username() {
        assert_eq!(basic_auth_candidates(&basic("legacy-secret:")), ["legacy-secret"]);
        // The capture of the Python client with a service account.
        assert_eq!(
            basic_auth_candidates("Basic c2EudXNlcjpzYXNlY3JldA=="),
            ["sasecret", "sa.user"]
        );
        assert_eq!(basic_auth_candidates(&basic("same:same")), ["same"]);
        assert_eq!(
            basic_auth_candidates(&basic("pass:with:colons")),
            ["with:colons", "pass"]
        );
        for bad in ["Bearer abc", "Basic", "Basic !!!", "", "basic"] {
            assert!(basic_auth_candidates(bad).is_empty(), "{bad}");
        }
        assert_eq!(basic_auth_candidates(&basic("s:")).len(), 1);
    }

    #[test]
    fn import_authorization() {
        let projects = Projects::from_json(
            r#"{"12345":{"token":"demo-token","secret":"demo-secret"},"other":{"token":"t2","secret":"s2"}}"#,
        )
        .expect("config");
        let id = |r: Result<&Project, IngestError>| r.map(|p| p.id.clone());
        assert_eq!(
            id(authorize_import(&projects, Some(&basic("demo-secret:")), None)),
            Ok("12345".into())
        );
        assert_eq!(
            id(authorize_import(
                &projects,
                Some(&basic("sa.user:demo-secret")),
                Some("12345")
            )),
            Ok("12345".into())
        );
        assert_eq!(
            id(authorize_import(
                &projects,
                Some(&basic("sa.user:demo-secret")),
                Some("")
            )),
            Ok("12345".into())
        );
        assert_eq!(
            id(authorize_import(&projects, Some(&basic("demo-secret:")), Some("other"))),
            Err(IngestError::Unauthorized)
        );
        assert_eq!(
            id(authorize_import(&projects, Some(&basic("demo-token:")), None)),
            Err(IngestError::Forbidden)
        );
        assert_eq!(
            id(authorize_import(&projects, Some(&basic("nope:")), None)),
            Err(IngestError::Unauthorized)
        );
        assert_eq!(
            id(authorize_import(&projects, None, None)),
            Err(IngestError::Unauthorized)
        );
    }
}
