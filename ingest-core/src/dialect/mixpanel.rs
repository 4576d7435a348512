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
use crate::event::{Dialect, Event, EventDraft, PageContext};
use crate::identity::{merge_link, IdentityLink};
use crate::limits::{MAX_BROWSER_BATCH_EVENTS, MAX_CALLBACK_CHARS, MAX_IMPORT_EVENTS, MAX_REDIRECT_URL_CHARS};
use crate::payload::{data_param_json, decode_base64, parse_json, parse_json_or_ndjson};
use crate::profile::{ProfileDraft, ProfileOp, ProfileUpdate};
use crate::time::parse_time_ms;
use crate::validate::{finish_each, finish_profile, take_string, Context};
use serde_json::{json, Map, Value};

/// One decoded event, or why it could not be read.
pub type EventItem = Result<EventDraft, Vec<FieldError>>;
/// One decoded profile update, or why it could not be read.
pub type ProfileItem = Result<EngageDraft, Vec<FieldError>>;

/// An `/engage` update: its operations and Mixpanel's modifiers, which
/// decide the properties the update adds itself
/// ([`super::mixpanel_people::stamp`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngageDraft {
    pub profile: ProfileDraft,
    /// `$ignore_time`: leave `$last_seen` alone.
    pub ignore_time: bool,
    /// `$ip`: `"0"` forbids placing the profile; an address is one we
    /// cannot place (and never keep).
    pub ip: Option<String>,
}

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
    /// imported all the same). Otherwise invalid events are skipped and
    /// counted out of `num_records_imported`.
    pub strict: bool,
    /// `verbose=1`, which the Python client always sends: it reads a numeric
    /// `status` (1 is success) and `error`, so replies then carry both.
    pub verbose: bool,
    /// `project_id=`: names the project that service-account credentials
    /// are for.
    pub project_id: Option<String>,
    /// The events came in a `data=` form field or query parameter (the
    /// Python library's form POST, the Node library's `import` GET and
    /// `import_batch` form POST), Mixpanel's older import: answered `1`/`0`
    /// (or `{"status":…,"error":…}` with `verbose=1`) like `/track`, all or
    /// nothing, and `$insert_id` may be left out.
    pub legacy: bool,
    /// `ip=0`: the events are not placed by the request's address.
    pub skip_geolocation: bool,
}

/// A decoded `/import` request.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportRequest {
    pub params: ImportParams,
    pub items: Vec<EventItem>,
}

/// What validation made of an `/import` request: the events, the identity
/// links its `$merge` events asked for, and the errors of the rest.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Imported {
    pub events: Vec<Event>,
    pub links: Vec<IdentityLink>,
    pub errors: Vec<FieldError>,
}

/// What to store for an `/import` request and what to answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportOutcome {
    pub events: Vec<Event>,
    pub links: Vec<IdentityLink>,
    pub reply: Reply,
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
    let (params, values) = read_batch(query, body)?;
    let (items, tokens): (Vec<_>, Vec<_>) = values.into_iter().enumerate().map(|(i, v)| read_update(i, v)).unzip();
    Ok(EngageRequest {
        params,
        token: one_token(tokens)?,
        items,
    })
}

/// The parameters and the items of a `/track`-style request (`/engage`,
/// `/groups`): one object or an array of at most 50.
pub(super) fn read_batch(query: &str, body: &[u8]) -> Result<(TrackParams, Vec<Value>), IngestError> {
    let transport = Transport::new(query, body);
    let params = transport.params()?;
    let values = batch(transport.data()?, MAX_BROWSER_BATCH_EVENTS)?;
    Ok((params, values))
}

/// `body` is already inflated ([`crate::payload::decode_body`]); a GET
/// (the Node library's `import`) has none and carries `data=` in `query`.
pub fn decode_import(query: &str, body: &[u8], content_type: Option<&str>) -> Result<ImportRequest, IngestError> {
    let transport = Transport::new(query, body);
    if body.iter().all(u8::is_ascii_whitespace) && transport.get("data").is_none_or(|d| d.trim().is_empty()) {
        return Err(IngestError::EmptyBody);
    }
    let params = ImportParams {
        strict: transport.get("strict").is_some_and(flag),
        verbose: transport.get("verbose").is_some_and(flag),
        project_id: transport
            .get("project_id")
            .filter(|id| !id.is_empty())
            .map(str::to_owned),
        legacy: transport.json_body.is_none(),
        skip_geolocation: transport.get("ip").is_some_and(|v| v.trim() == "0"),
    };
    let values = match transport.json_body {
        Some(json) => {
            let values = parse_json_or_ndjson(json, content_type)?;
            check_count(values.len(), MAX_IMPORT_EVENTS)?;
            values
        }
        // The Python and Node libraries send `data=`, like their tracking.
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
/// `mp_funnel`'s properties. The request's country is dropped for `ip=0`.
///
/// An event without a distinct_id (or `$device_id`): seed 002 says `ip=1`
/// makes the request's address "the substitute for the distinct_id
/// parameter if one is not specified", so with `ip=1` the cookieless
/// visitor hash (the address hashed with a daily salt, never stored) stands
/// in. Without `ip=1` (absent or `ip=0`) nothing does: Mixpanel takes such
/// an event as nobody's, and it is kept with an empty distinct_id, counted
/// as no visitor. (Before, every server sending `ip=0` collapsed into one
/// visitor per address and agent.)
pub fn finish_track(items: Vec<EventItem>, params: &TrackParams, cx: &Context<'_>) -> (Vec<Event>, Vec<FieldError>) {
    let request = if params.geolocate {
        cx.request.clone()
    } else {
        cx.request.without_location()
    };
    let cx = Context {
        project: cx.project,
        dialect: Dialect::MixpanelTrack,
        key: cx.key,
        request: &request,
        anonymous_id: cx.anonymous_id.filter(|_| params.ip),
    };
    finish_each(items, &cx, funnel_rules)
}

/// Validates `/import` events: the shared rules, plus the fields `/import`
/// requires and Mixpanel's refusal of placeholder ids. No cookieless
/// stand-in: imports come from servers. `ip=0` drops the request's country.
/// `$merge` events become identity links, not events
/// ([`crate::identity::merge_link`]).
pub fn finish_import(items: Vec<EventItem>, params: &ImportParams, cx: &Context<'_>) -> Imported {
    let request = if params.skip_geolocation {
        cx.request.without_location()
    } else {
        cx.request.clone()
    };
    let cx = Context {
        project: cx.project,
        dialect: Dialect::MixpanelImport,
        key: cx.key,
        request: &request,
        anonymous_id: None,
    };
    let mut links = Vec::new();
    let mut merge_errors = Vec::new();
    // A `$merge` leaves the list as nothing (neither event nor error), so
    // the other items keep their indices.
    let items: Vec<EventItem> = items
        .into_iter()
        .enumerate()
        .map(|(index, item)| match item {
            Ok(draft) if draft.name.as_ref().and_then(Value::as_str) == Some("$merge") => {
                let time_ms = draft
                    .time
                    .as_ref()
                    .and_then(|t| parse_time_ms(t).ok())
                    .unwrap_or(request.received_at_ms);
                match merge_link(cx.project, &draft.properties, time_ms, index) {
                    Ok(link) => links.push(link),
                    Err(error) => merge_errors.push(error),
                }
                Err(Vec::new())
            }
            other => other,
        })
        .collect();
    let (events, mut errors) = finish_each(items, &cx, |index, draft| {
        let mut errors = import_rules(index, draft, params.legacy);
        errors.extend(funnel_rules(index, draft));
        errors
    });
    errors.extend(merge_errors);
    errors.sort_by_key(|e| e.index);
    Imported { events, links, errors }
}

/// Decides what an `/import` request stores and answers, so that no reply
/// claims what was not stored:
///
/// - the older `data=` import (Python, Node): all or nothing. One invalid
///   event and nothing is stored, the answer is `0` (or `status: 0` with
///   the failed records); otherwise `1` (or `status: 1`). Storing the valid
///   part of a batch the client reads as failed would double it on retry,
///   since these events often carry no `$insert_id`.
/// - JSON (seed 001): the valid events are stored; `strict=1` or
///   `verbose=1` answer 400 with `failed_records` and `status: 0` when any
///   failed, otherwise `num_records_imported` says how many were taken.
///
/// A `$merge` counts as one imported record.
pub fn settle_import(params: &ImportParams, imported: Imported) -> ImportOutcome {
    let Imported { events, links, errors } = imported;
    let count = events.len() + links.len();
    if params.legacy && !errors.is_empty() {
        let reply = if params.verbose {
            failed_validation(params, 0, &errors)
        } else {
            Reply::text(400, "0")
        };
        return ImportOutcome {
            events: Vec::new(),
            links: Vec::new(),
            reply,
        };
    }
    let reply = if !errors.is_empty() && (params.strict || params.verbose) {
        failed_validation(params, count, &errors)
    } else if params.legacy && !params.verbose {
        Reply::text(200, "1")
    } else {
        import_reply(params, count, &errors)
    };
    ImportOutcome { events, links, reply }
}

/// Service accounts (Basic `username:secret`, both parts given) must name
/// their project: seed 001 calls `project_id` "required when using service
/// account authentication". The legacy API secret (`secret:`) need not.
pub fn require_project_id(authorization: Option<&str>, project_id: Option<&str>) -> Result<(), IngestError> {
    let service_account = authorization
        .and_then(basic_parts)
        .is_some_and(|(user, password)| !user.is_empty() && !password.is_empty());
    if service_account && project_id.is_none_or(|id| id.trim().is_empty()) {
        return Err(IngestError::BadRequest(PROJECT_ID_REQUIRED.into()));
    }
    Ok(())
}

/// The refusal of a service account that names no project.
pub const PROJECT_ID_REQUIRED: &str = "project_id is required when using service account authentication";

/// Validates `/engage` updates and adds what Mixpanel adds itself:
/// `$last_seen` and the profile's country (see
/// [`super::mixpanel_people::stamp`]).
pub fn finish_engage(
    items: Vec<ProfileItem>,
    params: &TrackParams,
    cx: &Context<'_>,
) -> (Vec<ProfileUpdate>, Vec<FieldError>) {
    let cx = cx.for_dialect(Dialect::MixpanelEngage, false);
    let country = cx.request.country.as_deref().filter(|_| params.geolocate);
    let mut updates = Vec::new();
    let mut errors = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let finished = item.and_then(|draft| {
            let modifiers = (draft.ignore_time, draft.ip);
            finish_profile(draft.profile, index, &cx).map(|update| (update, modifiers))
        });
        match finished {
            Ok((mut update, (ignore_time, ip))) => {
                super::mixpanel_people::stamp(&mut update, ignore_time, ip.as_deref(), country);
                updates.push(update);
            }
            Err(found) => errors.extend(found),
        }
    }
    (updates, errors)
}

/// The secrets an `Authorization: Basic` header may be offering, most
/// likely first: the password (a service account's secret), then the
/// username (the legacy API secret, sent with an empty password).
pub fn basic_auth_candidates(authorization: &str) -> Vec<String> {
    let Some((user, password)) = basic_parts(authorization) else {
        return Vec::new();
    };
    let mut candidates: Vec<String> = Vec::new();
    for part in [password, user] {
        if !part.is_empty() && !candidates.contains(&part) {
            candidates.push(part);
        }
    }
    candidates
}

/// The username and password of an `Authorization: Basic` header.
fn basic_parts(authorization: &str) -> Option<(String, String)> {
    let (scheme, encoded) = authorization.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let text = decode_base64(encoded).ok().and_then(|b| String::from_utf8(b).ok())?;
    let (user, password) = text.split_once(':').unwrap_or((text.as_str(), ""));
    Some((user.to_owned(), password.to_owned()))
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

/// The JSON answer to a validated `/import` request (see [`settle_import`]
/// for which answer a request gets).
pub fn import_reply(params: &ImportParams, imported: usize, errors: &[FieldError]) -> Reply {
    if (params.strict || params.verbose) && !errors.is_empty() {
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
/// Mixpanel's `error` for an import with invalid events.
const FAILED_VALIDATION: &str = "some data points in the request failed validation";

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
    // The libraries that ask for `verbose` show `error` alone: name the first
    // problem there too.
    let error = match rows
        .first()
        .and_then(|r| r["message"].as_str())
        .filter(|_| params.verbose)
    {
        Some(first) => format!("{FAILED_VALIDATION}: event {}: {first}", rows[0]["index"]),
        None => FAILED_VALIDATION.to_owned(),
    };
    Reply::json(
        400,
        &json!({
            "code": 400,
            "error": error,
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
pub(super) fn one_token(tokens: Vec<Option<String>>) -> Result<Option<String>, IngestError> {
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

/// The profile operations `/engage` takes, in the order they are applied.
///
/// JSON objects have no key order, so one that holds several operations
/// gets them in a fixed order: `$set`, `$set_once`, `$add`, `$append`,
/// `$union`, `$remove`, `$unset`, `$delete`. Writes come before removals,
/// `$set` wins over `$set_once` for the same key, and deletion is last, so
/// an update that asks to delete a profile always ends with none.
pub(super) const PEOPLE_OPS: [&str; 8] = [
    "$set",
    "$set_once",
    "$add",
    "$append",
    "$union",
    "$remove",
    "$unset",
    "$delete",
];

/// An `/engage` update object as a profile draft, and its token.
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
    let token = take_token(&mut u);
    let ops = match read_ops(&mut u, index, &PEOPLE_OPS) {
        Ok(ops) => ops,
        Err(errors) => return (Err(errors), token),
    };
    let ignore_time = match u.remove("$ignore_time") {
        Some(Value::Bool(b)) => b,
        Some(Value::String(s)) => s.eq_ignore_ascii_case("true") || s == "1",
        Some(Value::Number(n)) => n.as_f64() == Some(1.0),
        _ => false,
    };
    let ip = match u.remove("$ip") {
        Some(Value::String(ip)) => Some(ip),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let draft = EngageDraft {
        profile: ProfileDraft {
            distinct_id: u.remove("$distinct_id"),
            time: u.remove("$time"),
            ops,
        },
        ignore_time,
        ip,
    };
    (Ok(draft), token)
}

/// `$token` of an `/engage` or `/groups` update.
pub(super) fn take_token(update: &mut Map<String, Value>) -> Option<String> {
    match update.remove("$token") {
        Some(Value::String(t)) if !t.is_empty() => Some(t),
        _ => None,
    }
}

/// The operations of one update, among `allowed` (in that order); every
/// malformed one is an error. An operation of [`PEOPLE_OPS`] that is not
/// allowed here is refused by name.
pub(super) fn read_ops(
    update: &mut Map<String, Value>,
    index: usize,
    allowed: &[&str],
) -> Result<Vec<ProfileOp>, Vec<FieldError>> {
    let mut ops = Vec::new();
    let mut errors = Vec::new();
    for key in PEOPLE_OPS {
        let Some(value) = update.remove(key) else { continue };
        if !allowed.contains(&key) {
            errors.push(FieldError::new(index, key, "is not supported here"));
            continue;
        }
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
    if errors.is_empty() {
        Ok(ops)
    } else {
        Err(errors)
    }
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

/// `time` and `distinct_id` are required; `$insert_id` too, except in the
/// older `data=` import (`legacy`), whose clients often send none: such an
/// event is kept as one occurrence, as Mixpanel keeps it.
fn import_rules(index: usize, draft: &EventDraft, legacy: bool) -> Vec<FieldError> {
    let mut errors = Vec::new();
    let insert_id = if legacy && draft.insert_id.as_ref().is_none_or(Value::is_null) {
        None
    } else {
        Some(("properties.$insert_id", &draft.insert_id))
    };
    for (field, value) in [
        ("properties.time", &draft.time),
        ("properties.distinct_id", &draft.distinct_id),
    ]
    .into_iter()
    .chain(insert_id)
    {
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
    use crate::event::RequestContext;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
    use base64::Engine;

    const NOW: i64 = 1_795_424_070_930;

    fn request() -> RequestContext {
        RequestContext {
            received_at_ms: NOW,
            user_agent: Some("Mozilla/5.0".into()),
            ip: Some("203.0.113.9".into()),
            country: Some("DE".into()),
            region: None,
            city: None,
            verified_bot: false,
            request_id: "req-1".into(),
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

    /// Issue 23 part 5: seed 002 ties the address standing in for a
    /// missing distinct_id to `ip=1`; without it the event is nobody's.
    #[test]
    fn only_ip_1_lets_the_visitor_hash_stand_in_for_a_missing_id() {
        let event = json!({"event": "ping", "properties": {"token": "t", "time": 1_795_424_000}});
        let r = request();
        let outcome = |query: &str| {
            let req =
                decode_track(&format!("data={}&{query}", STANDARD.encode(event.to_string())), b"").expect("decodes");
            let (events, errors) = finish_track(req.items, &req.params, &cx(&r, Some("cl-x")));
            assert!(errors.is_empty(), "{errors:?}");
            let e = &events[0];
            (e.distinct_id.clone(), e.device_id.clone(), e.country.clone())
        };
        assert_eq!(outcome("ip=1"), ("cl-x".into(), Some("cl-x".into()), Some("DE".into())));
        assert_eq!(outcome("ip=0"), (String::new(), None, None));
        assert_eq!(outcome("verbose=1"), (String::new(), None, Some("DE".into())));
        // An id the client sent is never replaced.
        let known = json!({"event": "ping", "properties": {"token": "t", "distinct_id": "u-1"}});
        let req = decode_track(&format!("data={}&ip=1", STANDARD.encode(known.to_string())), b"").expect("decodes");
        let (events, _) = finish_track(req.items, &req.params, &cx(&r, Some("cl-x")));
        assert_eq!(
            (events[0].distinct_id.as_str(), events[0].device_id.as_deref()),
            ("u-1", None)
        );
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
        let (updates, errors) = finish_engage(req.items, &req.params, &cx(&r, None));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(updates[0].distinct_id, "u-42");
        assert_eq!(updates[0].time_ms, 1_795_424_001_500);
        assert_eq!(updates[0].project, "demo");

        let browser = json!([{"$set": {"$browser": "Chrome", "name": "Ann"}, "$token": "demo-token",
            "$distinct_id": "u-1", "$device_id": "18c2f", "$user_id": "u-1"},
            {"$union": {"tags": ["a"]}, "$token": "demo-token", "$distinct_id": "u-1"}]);
        let body = format!("data={}", urlencode(&STANDARD.encode(browser.to_string())));
        let req = decode_engage("verbose=1", body.as_bytes()).expect("decodes");
        let (updates, errors) = finish_engage(req.items, &req.params, &cx(&r, None));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(updates.len(), 2);
        assert!(matches!(&updates[1].ops[..], [ProfileOp::Union(_)]));
    }

    /// The Node library's `people.set(id, props, {$ignore_time, $ip})`
    /// (GET, base64, `ip=0` unless `geolocate`), and a browser's update.
    #[test]
    fn engage_modifiers_decide_last_seen_and_country() {
        let r = request();
        let run = |update: Value, query: &str| {
            let req = decode_engage(&format!("{query}&data={}", base64_param(&update)), b"").expect("decodes");
            let (updates, errors) = finish_engage(req.items, &req.params, &cx(&r, None));
            assert!(errors.is_empty(), "{errors:?}");
            crate::profile::apply(None, &updates[0].ops).map_or(Value::Null, Value::Object)
        };
        let set = |extra: Value| {
            let mut u = json!({"$token": "t", "$distinct_id": "u", "$set": {"plan": "pro"}});
            for (k, v) in extra.as_object().cloned().unwrap_or_default() {
                u[k] = v;
            }
            u
        };
        let seen = crate::time::utc_datetime(NOW);
        assert_eq!(run(set(json!({})), "ip=0"), json!({"plan": "pro", "$last_seen": seen}));
        assert_eq!(
            run(set(json!({})), "ip=1"),
            json!({"plan": "pro", "$last_seen": seen, "$country_code": "DE"})
        );
        assert_eq!(
            run(set(json!({"$ignore_time": true, "$ip": "0"})), "ip=1"),
            json!({"plan": "pro"})
        );
        assert_eq!(
            run(set(json!({"$ip": "198.51.100.7"})), "ip=1"),
            json!({"plan": "pro", "$last_seen": seen}),
            "an address we cannot place is not kept either"
        );
        let timed = set(json!({"$time": 1_700_000_000_999_i64}));
        assert_eq!(run(timed, "ip=0")["$last_seen"], "2023-11-14T22:13:20");
    }

    #[test]
    fn engage_operations_come_in_a_fixed_order() {
        let update = json!({"$token": "t", "$distinct_id": "u", "$delete": "", "$unset": ["a"],
            "$remove": {"l": 1}, "$union": {"l": [2]}, "$append": {"l": 3}, "$add": {"n": 1},
            "$set_once": {"s": 1}, "$set": {"s": 2}});
        let req = decode_engage("", update.to_string().as_bytes()).expect("decodes");
        let ops = match &req.items[0] {
            Ok(d) => d.profile.ops.iter().map(ProfileOp::key).collect::<Vec<_>>(),
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
        let (updates, errors) = finish_engage(req.items, &req.params, &cx(&r, Some("cl-x")));
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
                project_id: Some("12345".into()),
                legacy: false,
                skip_geolocation: false,
            }
        );
        let r = request();
        let Imported { events, links, errors } = finish_import(req.items, &req.params, &import_cx(&r, Some("cl-x")));
        assert!(errors.is_empty() && links.is_empty(), "{errors:?}");
        assert_eq!(
            events[0].country.as_deref(),
            Some("DE"),
            "no ip=0: placed by the request"
        );
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
        let Imported { events, errors, .. } = finish_import(req.items, &req.params, &import_cx(&r, Some("cl-x")));
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

        // Not strict: the invalid ones are skipped, and the count says so.
        let quiet = import_reply(&ImportParams::default(), 1, &errors);
        assert_eq!(
            body_json(&quiet),
            json!({"code": 200, "num_records_imported": 1, "status": "OK"})
        );
        // verbose=1 reads `status`: never 1 for a request that stored less
        // than it sent.
        let verbose = ImportParams {
            verbose: true,
            ..Default::default()
        };
        let told = import_reply(&verbose, 1, &errors);
        assert_eq!((told.status, body_json(&told)["status"].clone()), (400, json!(0)));
    }

    fn base64_param(value: &Value) -> String {
        urlencode(&STANDARD.encode(value.to_string()))
    }

    /// The Node library's `import` (GET, base64 `data`, `ip=0&verbose=0`)
    /// and `import_batch` (form POST), whose documented examples carry no
    /// `$insert_id`; and the Python library's form POST (`verbose=1`).
    #[test]
    fn the_older_data_import_is_all_or_nothing_and_answers_as_its_clients_read() {
        let r = request();
        let one =
            json!({"event": "Old", "properties": {"time": 1_700_000_000_000_i64, "distinct_id": "u", "token": "t"}});
        let get = decode_import(&format!("ip=0&verbose=0&data={}", base64_param(&one)), b"", None).expect("decodes");
        assert!(get.params.legacy && get.params.skip_geolocation && !get.params.verbose);
        let imported = finish_import(get.items, &get.params, &import_cx(&r, None));
        assert_eq!(imported.events[0].country, None, "ip=0: not placed");
        assert_eq!(imported.events[0].insert_id.len(), 32, "an id for the occurrence");
        let outcome = settle_import(&get.params, imported);
        assert_eq!((outcome.reply.status, outcome.reply.body.as_slice()), (200, &b"1"[..]));
        assert_eq!(outcome.events.len(), 1);

        // A batch with one bad event: nothing stored, `0` (or status 0).
        let batch = json!([one, {"event": "Bad", "properties": {"distinct_id": "u"}}]);
        let form = format!("data={}", base64_param(&batch));
        for (query, verbose) in [("ip=0&verbose=0", false), ("ip=0&verbose=1", true)] {
            let req =
                decode_import(query, form.as_bytes(), Some("application/x-www-form-urlencoded")).expect("decodes");
            assert!(req.params.legacy);
            let outcome = settle_import(&req.params, finish_import(req.items, &req.params, &import_cx(&r, None)));
            assert!(outcome.events.is_empty() && outcome.links.is_empty(), "all or nothing");
            assert_eq!(outcome.reply.status, 400);
            if verbose {
                let body = body_json(&outcome.reply);
                assert_eq!(
                    (body["status"].clone(), body["num_records_imported"].clone()),
                    (json!(0), json!(0))
                );
                assert_eq!(body["failed_records"][0]["index"], 1);
            } else {
                assert_eq!(outcome.reply.body, b"0");
            }
        }

        // Python's form (raw JSON in `data`, verbose=1): status 1 only
        // when every record was taken, a `$merge` counting as one.
        let merge = json!({"event": "$merge", "properties": {"$distinct_ids": ["a", "b"], "token": "t"}});
        let body = format!("data={}&verbose=1&ip=0", urlencode(&json!([one, merge]).to_string()));
        let req = decode_import("", body.as_bytes(), None).expect("decodes");
        let outcome = settle_import(&req.params, finish_import(req.items, &req.params, &import_cx(&r, None)));
        assert_eq!(
            body_json(&outcome.reply),
            json!({"code": 200, "num_records_imported": 2, "status": 1, "error": null})
        );
        assert_eq!((outcome.events.len(), outcome.links.len()), (1, 1));
        assert_eq!(
            (outcome.links[0].keep.as_str(), outcome.links[0].join.as_str()),
            ("a", "b")
        );

        // JSON imports still need `$insert_id` (seed 001).
        let json_body = json!([{"event": "e", "properties": {"time": 1_700_000_000, "distinct_id": "u"}}]);
        let req = decode_import("", json_body.to_string().as_bytes(), None).expect("decodes");
        assert!(!req.params.legacy);
        let imported = finish_import(req.items, &req.params, &import_cx(&r, None));
        assert_eq!(fields(&imported.errors), [(0, "properties.$insert_id")]);
        // No data anywhere: an empty request.
        assert_eq!(decode_import("ip=0&verbose=0", b"", None), Err(IngestError::EmptyBody));
    }

    #[test]
    fn a_merge_in_a_json_import_keeps_the_indices_of_the_rest() {
        let body = json!([
            {"event": "$merge", "properties": {"$distinct_ids": ["x"]}},
            {"event": "e", "properties": {"distinct_id": "u", "$insert_id": "m-1"}},
            {"event": "$merge", "properties": {"$distinct_ids": ["x", "y"], "time": 1_700_000_000}},
        ]);
        let req = decode_import("strict=1", body.to_string().as_bytes(), None).expect("decodes");
        let r = request();
        let imported = finish_import(req.items, &req.params, &import_cx(&r, None));
        assert_eq!(
            fields(&imported.errors),
            [(0, "properties.$distinct_ids"), (1, "properties.time")]
        );
        assert_eq!(imported.links.len(), 1);
        assert_eq!(imported.links[0].time_ms, 1_700_000_000_000);
        let outcome = settle_import(&req.params, imported);
        assert_eq!(body_json(&outcome.reply)["num_records_imported"], 1);
    }

    /// Seed 001, "Common Errors": "Error: 'properties.time' is invalid:
    /// must be specified as seconds since epoch".
    #[test]
    fn an_invalid_time_is_refused_in_the_seed_s_words() {
        let body =
            json!([{"event": "e", "properties": {"time": "yesterday", "distinct_id": "u", "$insert_id": "t-1"}}]);
        let req = decode_import("strict=1", body.to_string().as_bytes(), None).expect("decodes");
        let r = request();
        let outcome = settle_import(&req.params, finish_import(req.items, &req.params, &import_cx(&r, None)));
        assert_eq!(
            body_json(&outcome.reply)["failed_records"][0]["message"],
            "'properties.time' is invalid: must be specified as seconds since epoch"
        );
    }

    #[test]
    fn service_accounts_must_name_their_project() {
        let service = basic("sa.user:demo-secret");
        assert_eq!(
            require_project_id(Some(&service), None),
            Err(IngestError::BadRequest(PROJECT_ID_REQUIRED.into()))
        );
        assert_eq!(
            require_project_id(Some(&service), Some(" ")),
            Err(IngestError::BadRequest(PROJECT_ID_REQUIRED.into()))
        );
        assert_eq!(require_project_id(Some(&service), Some("12345")), Ok(()));
        // The legacy secret, alone as the username, needs none.
        assert_eq!(require_project_id(Some(&basic("demo-secret:")), None), Ok(()));
        assert_eq!(require_project_id(None, None), Ok(()));
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
