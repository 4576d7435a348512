//! Where a request's parameters and payload are: the query string, a form
//! body whatever its content type, or a body that is JSON itself.

use crate::error::IngestError;
use crate::limits::MAX_CALLBACK_CHARS;
use crate::payload::{data_param_json, parse_json};
use serde_json::Value;

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

/// Where a request's parameters and payload are.
pub(super) struct Transport<'a> {
    pub(super) query: Vec<(String, String)>,
    pub(super) form: Vec<(String, String)>,
    /// A body that is JSON itself rather than a form carrying it.
    pub(super) json_body: Option<&'a [u8]>,
}

impl<'a> Transport<'a> {
    pub(super) fn new(query: &str, body: &'a [u8]) -> Transport<'a> {
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

    pub(super) fn get(&self, name: &str) -> Option<&str> {
        find_pair(&self.form, name).or_else(|| find_pair(&self.query, name))
    }

    pub(super) fn params(&self) -> Result<TrackParams, IngestError> {
        let callback = match self.get("callback").filter(|c| !c.is_empty()) {
            Some(name) if is_callback_name(name) => Some(name.to_owned()),
            Some(_) => {
                return Err(IngestError::BadRequest(format!(
                "callback must be a JavaScript name or dotted path of names, at most {MAX_CALLBACK_CHARS} characters"
            )))
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

    pub(super) fn data(&self) -> Result<Value, IngestError> {
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

pub(super) fn flag(value: &str) -> bool {
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
pub(super) fn batch(data: Value, limit: usize) -> Result<Vec<Value>, IngestError> {
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

pub(super) fn check_count(count: usize, limit: usize) -> Result<(), IngestError> {
    if count == 0 {
        return Err(IngestError::BadRequest("the request holds no events".into()));
    }
    if count > limit {
        return Err(IngestError::TooManyEvents { count, limit });
    }
    Ok(())
}
