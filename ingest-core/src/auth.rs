//! Projects and their keys. A public token only opens the track endpoints;
//! the secret key opens import, bulk, export, stats and deletion; the
//! optional viewer key opens the stats API (and so the dashboard) only.
//! Keys are compared in constant time and never echoed.

use crate::error::IngestError;
use crate::limits::{
    MAX_DOMAIN_CHARS, MAX_KEY_CHARS, MAX_PROJECT_ID_CHARS, MAX_PROJECT_SITES, MAX_PROPERTY_KEY_CHARS, MAX_RATE_LIMIT,
    MAX_RAW_RETENTION_DAYS, MAX_REDIRECT_URL_CHARS, MAX_ROLLUP_PROPERTIES, RATE_LIMIT_SLOT_REQUESTS,
};
use crate::payload::decode_base64;
use crate::rate::RateLimits;
use crate::readmodel::Goal;
use crate::zone::Zone;
use serde_json::{Map, Value};
use subtle::ConstantTimeEq;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Project {
    pub id: String,
    /// Public token: safe in web pages and mobile apps.
    pub token: String,
    /// Secret key: server side only.
    pub secret: String,
    /// Read-only key: the stats API and nothing else, for sharing a
    /// dashboard. Optional.
    pub viewer: Option<String>,
    /// Hosts that Mixpanel's `redirect=` may send a browser to.
    pub redirect_hosts: Vec<String>,
    /// Requests per period and location for each kind of key.
    pub rate_limits: RateLimits,
    /// The IANA time zone the project's days and hours are counted in.
    pub zone: Zone,
    /// Conversion goals: `{"event": "Signup"}` or `{"page": "/thanks*"}`.
    pub goals: Vec<Goal>,
    /// The currency revenue is summed in (ISO 4217).
    pub currency: String,
    /// Days raw events are kept; rollups are kept for good.
    pub raw_retention_days: u32,
    /// Custom-event property keys rolled up for fast breakdowns.
    pub properties: Vec<String>,
    /// The sites' domains, as Plausible's tracker names a site (`d`):
    /// lower case, without `www.` (Plausible strips it too).
    pub domains: Vec<String>,
    /// Umami website ids (UUIDs, lower case) that send to this project.
    pub umami_websites: Vec<String>,
}

/// Raw events are kept this many days unless a project says otherwise:
/// long enough for filtered reports over the last year and a bit.
pub const DEFAULT_RAW_RETENTION_DAYS: u32 = 400;
/// Revenue is summed in this currency unless a project says otherwise.
pub const DEFAULT_CURRENCY: &str = "USD";

/// Which kind of key an endpoint requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    Public,
    Secret,
    /// Reads stats only.
    Viewer,
}

#[derive(Debug, Clone, Default)]
pub struct Projects {
    projects: Vec<Project>,
}

/// The fields a project may have, as the configuration names them.
const FIELDS: [&str; 12] = [
    "token",
    "secret",
    "viewer",
    "redirect_hosts",
    "rate_limits",
    "timezone",
    "goals",
    "currency",
    "raw_retention_days",
    "properties",
    "domains",
    "umami_websites",
];

/// What is wrong with `PROJECTS`. No variant carries a key or any other
/// value from the configuration (a message goes to logs, and a key pasted in
/// the wrong place must not follow it there): only project ids, which are
/// checked to be plain names first, field names and positions.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("PROJECTS is not valid JSON (line {line}, column {column})")]
    NotJson { line: usize, column: usize },
    #[error("PROJECTS must be a JSON object from project id to project")]
    NotAnObject,
    #[error("PROJECTS has no project")]
    NoProjects,
    #[error("project #{position}: an id must be 1 to {MAX_PROJECT_ID_CHARS} letters, digits, '-' or '_'")]
    BadId { position: usize },
    #[error("project {project}: must be a JSON object")]
    ProjectNotObject { project: String },
    #[error("project {project}: {field} is required")]
    Missing { project: String, field: &'static str },
    #[error("project {project}: {field} must be {expected}")]
    Invalid {
        project: String,
        field: &'static str,
        expected: String,
    },
    /// The field is not named: a key pasted as a field name would be shown.
    #[error(
        "project {project}: has a field that is none of token, secret, viewer, redirect_hosts, rate_limits, \
         timezone, goals, currency, raw_retention_days, properties, domains, umami_websites"
    )]
    UnknownField { project: String },
    /// The site is named by its place in the list, not its text (a key
    /// pasted there would be shown).
    #[error("project {project}'s {field} #{position} is also in project {other}'s: a site sends to one project")]
    SiteReused {
        project: String,
        other: String,
        field: &'static str,
        position: usize,
    },
    #[error("project {project}'s {field} is also project {other}'s {other_field}: every key must be unique")]
    Reused {
        project: String,
        field: &'static str,
        other: String,
        other_field: &'static str,
    },
}

fn key_form() -> String {
    format!("1 to {MAX_KEY_CHARS} printable ASCII characters without spaces")
}

const HOSTS_FORM: &str = "a list of host names";

impl Projects {
    /// Reads and checks the `PROJECTS` configuration: a JSON object from
    /// project id to `{"token", "secret", "redirect_hosts"}`. Every token
    /// and secret must be unique across all projects and both kinds, so a
    /// key names one project and one kind, whatever endpoint it reaches.
    pub fn from_json(text: &str) -> Result<Projects, ConfigError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ConfigError::NotJson {
            line: e.line(),
            column: e.column(),
        })?;
        let Value::Object(map) = value else {
            return Err(ConfigError::NotAnObject);
        };
        if map.is_empty() {
            return Err(ConfigError::NoProjects);
        }
        let mut projects = Vec::with_capacity(map.len());
        for (position, (id, fields)) in map.into_iter().enumerate() {
            if !is_project_id(&id) {
                return Err(ConfigError::BadId { position: position + 1 });
            }
            projects.push(project(id, fields)?);
        }
        check_unique(&projects)?;
        check_unique_sites(&projects)?;
        Ok(Projects { projects })
    }

    /// The project a Plausible event's domain names (`www.` and case aside).
    pub fn by_domain(&self, domain: &str) -> Option<&Project> {
        let domain = normalise_domain(domain);
        self.projects.iter().find(|p| p.domains.contains(&domain))
    }

    /// The project an Umami website id names (case aside).
    pub fn by_umami_website(&self, website: &str) -> Option<&Project> {
        let website = website.trim().to_ascii_lowercase();
        self.projects.iter().find(|p| p.umami_websites.contains(&website))
    }

    pub fn all(&self) -> &[Project] {
        &self.projects
    }

    pub fn by_id(&self, id: &str) -> Option<&Project> {
        self.projects.iter().find(|p| p.id == id)
    }

    /// Finds the project a key belongs to and checks the key's kind. Every
    /// project's keys are compared, each in constant time, so timing tells
    /// nothing about how close a guess was or which project matched.
    pub fn authorize(&self, key: Option<&str>, required: KeyKind) -> Result<&Project, IngestError> {
        let key = key.filter(|k| !k.is_empty()).ok_or(IngestError::Unauthorized)?;
        let mut found: Option<(&Project, KeyKind)> = None;
        for project in &self.projects {
            if bool::from(project.token.as_bytes().ct_eq(key.as_bytes())) {
                found = Some((project, KeyKind::Public));
            }
            if bool::from(project.secret.as_bytes().ct_eq(key.as_bytes())) {
                found = Some((project, KeyKind::Secret));
            }
            // A project without a viewer key compares against an empty
            // one, which no key equals (empty keys were refused above).
            let viewer = project.viewer.as_deref().unwrap_or("");
            if bool::from(viewer.as_bytes().ct_eq(key.as_bytes())) {
                found = Some((project, KeyKind::Viewer));
            }
        }
        match found {
            None => Err(IngestError::Unauthorized),
            Some((project, kind)) if kind == required => Ok(project),
            Some(_) => Err(IngestError::Forbidden),
        }
    }

    /// The stats API's check: the secret key or the viewer key, nothing
    /// else (a public token is refused with 403, as everywhere else); with
    /// the kind of key it was.
    pub fn authorize_reader(&self, key: Option<&str>) -> Result<(&Project, KeyKind), IngestError> {
        match self.authorize(key, KeyKind::Viewer) {
            Ok(project) => Ok((project, KeyKind::Viewer)),
            Err(IngestError::Forbidden) => self.authorize(key, KeyKind::Secret).map(|p| (p, KeyKind::Secret)),
            Err(other) => Err(other),
        }
    }
}

fn is_project_id(id: &str) -> bool {
    !id.is_empty()
        && id.chars().count() <= MAX_PROJECT_ID_CHARS
        && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn is_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_KEY_CHARS && key.bytes().all(|b| b.is_ascii_graphic())
}

/// One project's fields, checked.
fn project(id: String, fields: Value) -> Result<Project, ConfigError> {
    let Value::Object(mut fields) = fields else {
        return Err(ConfigError::ProjectNotObject { project: id });
    };
    if fields.keys().any(|k| !FIELDS.contains(&k.as_str())) {
        return Err(ConfigError::UnknownField { project: id });
    }
    let token = key(&id, &mut fields, "token")?;
    let secret = key(&id, &mut fields, "secret")?;
    let viewer = match fields.get("viewer") {
        None | Some(Value::Null) => None,
        Some(_) => Some(key(&id, &mut fields, "viewer")?),
    };
    let redirect_hosts = match fields.remove("redirect_hosts") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(hosts)) => hosts
            .into_iter()
            .map(|h| match h {
                Value::String(h) if !h.is_empty() => Ok(h),
                _ => Err(ConfigError::Invalid {
                    project: id.clone(),
                    field: "redirect_hosts",
                    expected: HOSTS_FORM.into(),
                }),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(ConfigError::Invalid {
                project: id,
                field: "redirect_hosts",
                expected: HOSTS_FORM.into(),
            })
        }
    };
    let rate_limits = rate_limits(&id, fields.remove("rate_limits"))?;
    let invalid = |field: &'static str, expected: &dyn std::fmt::Display| ConfigError::Invalid {
        project: id.clone(),
        field,
        expected: expected.to_string(),
    };
    let zone = match fields.remove("timezone") {
        None | Some(Value::Null) => Zone::utc(),
        Some(Value::String(name)) => {
            Zone::named(&name).map_err(|_| invalid("timezone", &"an IANA time zone name such as Europe/Berlin"))?
        }
        Some(_) => return Err(invalid("timezone", &"an IANA time zone name such as Europe/Berlin")),
    };
    let goals = match fields.remove("goals") {
        None | Some(Value::Null) => Vec::new(),
        Some(list) => serde_json::from_value::<Vec<Goal>>(list).map_err(|_| {
            invalid(
                "goals",
                &"a list of {\"event\": name} or {\"page\": \"/path\"} goals, each with an optional \"name\"",
            )
        })?,
    };
    let currency = match fields.remove("currency") {
        None | Some(Value::Null) => DEFAULT_CURRENCY.to_owned(),
        Some(Value::String(c)) if c.len() == 3 && c.bytes().all(|b| b.is_ascii_uppercase()) => c,
        Some(_) => return Err(invalid("currency", &"three capital letters (ISO 4217)")),
    };
    let raw_retention_days = match fields.remove("raw_retention_days") {
        None | Some(Value::Null) => DEFAULT_RAW_RETENTION_DAYS,
        Some(days) => days
            .as_u64()
            .and_then(|d| u32::try_from(d).ok())
            .filter(|d| (1..=MAX_RAW_RETENTION_DAYS).contains(d))
            .ok_or_else(|| {
                invalid(
                    "raw_retention_days",
                    &format!("a whole number of days from 1 to {MAX_RAW_RETENTION_DAYS}"),
                )
            })?,
    };
    let properties = match fields.remove("properties") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(keys)) if keys.len() <= MAX_ROLLUP_PROPERTIES => keys
            .into_iter()
            .map(|k| match k {
                Value::String(k) if !k.is_empty() && k.chars().count() <= MAX_PROPERTY_KEY_CHARS => Ok(k),
                _ => Err(invalid("properties", &properties_form())),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(invalid("properties", &properties_form())),
    };
    let domains = sites(&id, fields.remove("domains"), "domains", is_domain, normalise_domain)?;
    let umami_websites = sites(&id, fields.remove("umami_websites"), "umami_websites", is_uuid, |w| {
        w.to_ascii_lowercase()
    })?;
    Ok(Project {
        id,
        token,
        secret,
        viewer,
        redirect_hosts,
        rate_limits,
        zone,
        goals,
        currency,
        raw_retention_days,
        properties,
        domains,
        umami_websites,
    })
}

/// A domain as Plausible compares them: trimmed, lower case, without a
/// leading `www.`.
pub fn normalise_domain(domain: &str) -> String {
    let domain = domain.trim().to_ascii_lowercase();
    match domain.strip_prefix("www.") {
        Some(rest) => rest.to_owned(),
        None => domain,
    }
}

/// A host name (or an IP address, as a development site has): letters,
/// digits, '-', '.' and ':' (IPv6), at most [`MAX_DOMAIN_CHARS`].
fn is_domain(domain: &str) -> bool {
    !domain.is_empty()
        && domain.len() <= MAX_DOMAIN_CHARS
        && domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b':' | b'[' | b']'))
}

/// A UUID in its usual text form: 8-4-4-4-12 hexadecimal digits.
pub fn is_uuid(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 36
        && bytes.iter().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => *b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn sites_form(field: &str) -> String {
    let what = if field == "domains" {
        format!("host names of at most {MAX_DOMAIN_CHARS} characters")
    } else {
        "UUIDs".to_owned()
    };
    format!("a list of at most {MAX_PROJECT_SITES} {what}, each listed once")
}

/// `domains` or `umami_websites`: a list of names in their normal form,
/// none twice.
fn sites(
    project: &str,
    value: Option<Value>,
    field: &'static str,
    valid: fn(&str) -> bool,
    normal: fn(&str) -> String,
) -> Result<Vec<String>, ConfigError> {
    let invalid = || ConfigError::Invalid {
        project: project.to_owned(),
        field,
        expected: sites_form(field),
    };
    let items = match value {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(items)) if items.len() <= MAX_PROJECT_SITES => items,
        Some(_) => return Err(invalid()),
    };
    let mut names: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        let name = match item {
            Value::String(name) => normal(&name),
            _ => return Err(invalid()),
        };
        if !valid(&name) || names.contains(&name) {
            return Err(invalid());
        }
        names.push(name);
    }
    Ok(names)
}

/// A domain or Umami website names one project: two projects listing the
/// same one could not tell whose an event is.
fn check_unique_sites(projects: &[Project]) -> Result<(), ConfigError> {
    for (i, project) in projects.iter().enumerate() {
        for other in &projects[..i] {
            let lists: [(&'static str, &[String], &[String]); 2] = [
                ("domains", &project.domains, &other.domains),
                ("umami_websites", &project.umami_websites, &other.umami_websites),
            ];
            for (field, mine, theirs) in lists {
                if let Some(position) = mine.iter().position(|s| theirs.contains(s)) {
                    return Err(ConfigError::SiteReused {
                        project: project.id.clone(),
                        other: other.id.clone(),
                        field,
                        position: position + 1,
                    });
                }
            }
        }
    }
    Ok(())
}

fn properties_form() -> String {
    format!("a list of at most {MAX_ROLLUP_PROPERTIES} property keys")
}

fn rate_limit_form() -> String {
    format!(
        "an object of \"public\" and \"secret\", each a multiple of {RATE_LIMIT_SLOT_REQUESTS} from \
         {RATE_LIMIT_SLOT_REQUESTS} to {MAX_RATE_LIMIT}"
    )
}

/// `{"public": N, "secret": M}`, either optional: requests per period and
/// location, in whole slots of the limiter binding.
fn rate_limits(project: &str, value: Option<Value>) -> Result<RateLimits, ConfigError> {
    let mut limits = RateLimits::default();
    let invalid = || ConfigError::Invalid {
        project: project.to_owned(),
        field: "rate_limits",
        expected: rate_limit_form(),
    };
    let fields = match value {
        None | Some(Value::Null) => return Ok(limits),
        Some(Value::Object(fields)) => fields,
        Some(_) => return Err(invalid()),
    };
    for (name, budget) in fields {
        let budget = budget
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| (RATE_LIMIT_SLOT_REQUESTS..=MAX_RATE_LIMIT).contains(n) && n % RATE_LIMIT_SLOT_REQUESTS == 0)
            .ok_or_else(invalid)?;
        match name.as_str() {
            "public" => limits.public = budget,
            "secret" => limits.secret = budget,
            _ => return Err(invalid()),
        }
    }
    Ok(limits)
}

fn key(project: &str, fields: &mut Map<String, Value>, field: &'static str) -> Result<String, ConfigError> {
    match fields.remove(field) {
        None | Some(Value::Null) => Err(ConfigError::Missing {
            project: project.to_owned(),
            field,
        }),
        Some(Value::String(key)) if is_key(&key) => Ok(key),
        Some(_) => Err(ConfigError::Invalid {
            project: project.to_owned(),
            field,
            expected: key_form(),
        }),
    }
}

/// Every key of every project against every other: a token that is also
/// another project's token (or any secret) would open the wrong project.
fn check_unique(projects: &[Project]) -> Result<(), ConfigError> {
    let keys: Vec<(&str, &'static str, &str)> = projects
        .iter()
        .flat_map(|p| {
            [
                Some((p.id.as_str(), "token", p.token.as_str())),
                Some((p.id.as_str(), "secret", p.secret.as_str())),
                p.viewer.as_deref().map(|v| (p.id.as_str(), "viewer", v)),
            ]
            .into_iter()
            .flatten()
        })
        .collect();
    for (i, (project, field, key)) in keys.iter().enumerate() {
        if let Some((other, other_field, _)) = keys[..i].iter().find(|(_, _, k)| k == key) {
            return Err(ConfigError::Reused {
                project: (*project).to_owned(),
                field,
                other: (*other).to_owned(),
                other_field,
            });
        }
    }
    Ok(())
}

// Credentials as requests present them, Mixpanel's Basic rules (`/import`,
// and the export's Basic auth), and the `redirect=` check of its `/track`.

/// One key a request offers, and the way it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Offered {
    /// `x-api-key: <key>` (Emp-Mix's documented header, and ours).
    ApiKey(String),
    /// `Authorization: Bearer <key>`.
    Bearer(String),
    /// `Authorization: Basic`, Mixpanel's form: a service account's
    /// `user:secret`, or the legacy API secret as the user name
    /// ([`basic_auth_candidates`] says which to try first).
    Basic(String),
}

/// Every key a request offers, in the one documented order: `x-api-key`
/// first, then the `Authorization` header (Bearer or Basic). Blank keys and
/// other schemes offer nothing. Each endpoint takes the first kind it
/// accepts: the CRM and the stats API `x-api-key` or Bearer, the export
/// those or Basic, `/import` Basic alone.
pub fn offered_keys(authorization: Option<&str>, x_api_key: Option<&str>) -> Vec<Offered> {
    let mut offered = Vec::new();
    if let Some(key) = x_api_key.map(str::trim).filter(|k| !k.is_empty()) {
        offered.push(Offered::ApiKey(key.to_owned()));
    }
    if let Some((scheme, value)) = authorization.and_then(|a| a.trim().split_once(' ')) {
        let value = value.trim();
        if scheme.eq_ignore_ascii_case("bearer") && !value.is_empty() {
            offered.push(Offered::Bearer(value.to_owned()));
        } else if scheme.eq_ignore_ascii_case("basic") {
            offered.push(Offered::Basic(format!("{scheme} {value}")));
        }
    }
    offered
}

/// The first key offered as `x-api-key` or Bearer (see [`offered_keys`]).
pub fn api_key(authorization: Option<&str>, x_api_key: Option<&str>) -> Option<String> {
    offered_keys(authorization, x_api_key)
        .into_iter()
        .find_map(|k| match k {
            Offered::ApiKey(key) | Offered::Bearer(key) => Some(key),
            Offered::Basic(_) => None,
        })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn projects() -> Projects {
        Projects::from_json(
            r#"{"demo":{"token":"demo-token","secret":"demo-secret","viewer":"demo-viewer","redirect_hosts":["example.com"]},
                "other":{"token":"t2","secret":"s2"}}"#,
        )
        .expect("valid config")
    }

    #[test]
    fn sites_name_their_project() {
        let p = Projects::from_json(
            r#"{"a":{"token":"ta","secret":"sa","domains":["Shop.Example","www.blog.example","127.0.0.1"],
                     "umami_websites":["4FB6A0C2-5B8E-4A62-9E47-3C1D2B0A9F10"]},
                "b":{"token":"tb","secret":"sb","domains":["other.example"]}}"#,
        )
        .expect("valid config");
        let of = |d: &str| p.by_domain(d).map(|p| p.id.as_str());
        assert_eq!(of("shop.example"), Some("a"));
        assert_eq!(of("www.SHOP.example"), Some("a"));
        assert_eq!(of("blog.example"), Some("a"));
        assert_eq!(of("127.0.0.1"), Some("a"));
        assert_eq!(of("other.example"), Some("b"));
        assert_eq!(of("nobody.example"), None);
        let web = |w: &str| p.by_umami_website(w).map(|p| p.id.as_str());
        assert_eq!(web("4fb6a0c2-5b8e-4a62-9e47-3c1d2b0a9f10"), Some("a"));
        assert_eq!(web("4fb6a0c2-5b8e-4a62-9e47-3c1d2b0a9f11"), None);

        // One domain in two projects, or twice in one; not host names; not UUIDs.
        let twice = Projects::from_json(
            r#"{"a":{"token":"ta","secret":"sa","domains":["x.example"]},
                "b":{"token":"tb","secret":"sb","domains":["y.example","www.x.example"]}}"#,
        );
        assert_eq!(
            twice.err(),
            Some(ConfigError::SiteReused {
                project: "b".into(),
                other: "a".into(),
                field: "domains",
                position: 2
            })
        );
        for bad in [
            r#""domains":["a.example","A.example"]"#,
            r#""domains":["https://a.example/"]"#,
            r#""domains":[""]"#,
            r#""domains":"a.example""#,
            r#""umami_websites":["not-a-uuid"]"#,
            r#""umami_websites":[1]"#,
        ] {
            let text = format!(r#"{{"a":{{"token":"ta","secret":"sa",{bad}}}}}"#);
            assert!(
                matches!(Projects::from_json(&text), Err(ConfigError::Invalid { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn site_lists_at_and_past_their_limits() {
        let config = |domains: Vec<String>| {
            let list = serde_json::to_string(&domains).unwrap_or_default();
            Projects::from_json(&format!(r#"{{"a":{{"token":"ta","secret":"sa","domains":{list}}}}}"#))
        };
        let many = |n: usize| (0..n).map(|i| format!("d{i}.example")).collect::<Vec<_>>();
        assert!(config(many(MAX_PROJECT_SITES)).is_ok());
        assert!(config(many(MAX_PROJECT_SITES + 1)).is_err());
        let long = |n: usize| vec![format!("{}.x", "a".repeat(n - 2))];
        assert!(config(long(MAX_DOMAIN_CHARS)).is_ok());
        assert!(config(long(MAX_DOMAIN_CHARS + 1)).is_err());
    }

    #[test]
    fn keys_open_only_their_endpoints() {
        let p = projects();
        assert_eq!(
            p.authorize(Some("demo-token"), KeyKind::Public).map(|p| p.id.as_str()),
            Ok("demo")
        );
        assert_eq!(
            p.authorize(Some("s2"), KeyKind::Secret).map(|p| p.id.as_str()),
            Ok("other")
        );
        assert_eq!(
            p.authorize(Some("demo-token"), KeyKind::Secret),
            Err(IngestError::Forbidden)
        );
        assert_eq!(
            p.authorize(Some("demo-secret"), KeyKind::Public),
            Err(IngestError::Forbidden)
        );
        assert_eq!(
            p.authorize(Some("demo-secre"), KeyKind::Secret),
            Err(IngestError::Unauthorized)
        );
        assert_eq!(p.authorize(Some(""), KeyKind::Public), Err(IngestError::Unauthorized));
        assert_eq!(p.authorize(None, KeyKind::Public), Err(IngestError::Unauthorized));
        assert_eq!(p.by_id("demo").map(|p| p.redirect_hosts.len()), Some(1));
    }

    #[test]
    fn the_viewer_key_reads_stats_and_opens_nothing_else() {
        let p = projects();
        for required in [KeyKind::Public, KeyKind::Secret] {
            assert_eq!(p.authorize(Some("demo-viewer"), required), Err(IngestError::Forbidden));
        }
        let reader = |key: &str| p.authorize_reader(Some(key)).map(|(p, kind)| (p.id.as_str(), kind));
        assert_eq!(reader("demo-viewer"), Ok(("demo", KeyKind::Viewer)));
        assert_eq!(reader("demo-secret"), Ok(("demo", KeyKind::Secret)));
        assert_eq!(reader("s2"), Ok(("other", KeyKind::Secret)));
        assert_eq!(reader("demo-token"), Err(IngestError::Forbidden));
        assert_eq!(reader("demo-viewe"), Err(IngestError::Unauthorized));
        assert_eq!(p.authorize_reader(Some("")), Err(IngestError::Unauthorized));
        assert_eq!(p.authorize_reader(None), Err(IngestError::Unauthorized));
        // A project without a viewer key is not opened by an empty one.
        assert_eq!(p.by_id("other").map(|p| p.viewer.clone()), Some(None));
        let bad = Projects::from_json(r#"{"a":{"token":"tok-1","secret":"sec-1","viewer":""}}"#).err();
        assert_eq!(
            bad,
            Some(ConfigError::Invalid {
                project: "a".into(),
                field: "viewer",
                expected: key_form()
            })
        );
        let reused = Projects::from_json(
            r#"{"a":{"token":"tok-1","secret":"sec-1","viewer":"v-1"},"b":{"token":"tok-2","secret":"v-1"}}"#,
        )
        .err();
        assert_eq!(
            reused,
            Some(ConfigError::Reused {
                project: "b".into(),
                field: "secret",
                other: "a".into(),
                other_field: "viewer"
            })
        );
    }

    /// Each bad configuration, the error it gets, and every key it holds:
    /// none of those may appear in the message.
    #[test]
    fn bad_configuration_is_refused_without_echoing_keys() {
        let cases: Vec<(&str, ConfigError)> = vec![
            (
                r#"{"a":{"token":"tok-1","secret":"#,
                ConfigError::NotJson { line: 1, column: 31 },
            ),
            ("[]", ConfigError::NotAnObject),
            ("{}", ConfigError::NoProjects),
            (
                r#"{"a b":{"token":"tok-1","secret":"sec-1"}}"#,
                ConfigError::BadId { position: 1 },
            ),
            (
                r#"{"a":"tok-1"}"#,
                ConfigError::ProjectNotObject { project: "a".into() },
            ),
            (
                r#"{"a":{"secret":"sec-1"}}"#,
                ConfigError::Missing {
                    project: "a".into(),
                    field: "token",
                },
            ),
            (
                r#"{"a":{"token":"tok-1","secret":""}}"#,
                ConfigError::Invalid {
                    project: "a".into(),
                    field: "secret",
                    expected: key_form(),
                },
            ),
            (
                r#"{"a":{"token":"tok 1","secret":"sec-1"}}"#,
                ConfigError::Invalid {
                    project: "a".into(),
                    field: "token",
                    expected: key_form(),
                },
            ),
            (
                r#"{"a":{"token":["tok-1"],"secret":"sec-1"}}"#,
                ConfigError::Invalid {
                    project: "a".into(),
                    field: "token",
                    expected: key_form(),
                },
            ),
            (
                r#"{"a":{"token":"tok-1","secret":"sec-1","sec-2":1}}"#,
                ConfigError::UnknownField { project: "a".into() },
            ),
            (
                r#"{"a":{"token":"tok-1","secret":"sec-1","redirect_hosts":"sec-2"}}"#,
                ConfigError::Invalid {
                    project: "a".into(),
                    field: "redirect_hosts",
                    expected: HOSTS_FORM.into(),
                },
            ),
            // The same key twice: within a project, and across projects
            // and kinds.
            (
                r#"{"a":{"token":"tok-1","secret":"tok-1"}}"#,
                ConfigError::Reused {
                    project: "a".into(),
                    field: "secret",
                    other: "a".into(),
                    other_field: "token",
                },
            ),
            (
                r#"{"a":{"token":"tok-1","secret":"sec-1"},"b":{"token":"tok-1","secret":"sec-2"}}"#,
                ConfigError::Reused {
                    project: "b".into(),
                    field: "token",
                    other: "a".into(),
                    other_field: "token",
                },
            ),
            (
                r#"{"a":{"token":"tok-1","secret":"sec-1"},"b":{"token":"tok-2","secret":"tok-1"}}"#,
                ConfigError::Reused {
                    project: "b".into(),
                    field: "secret",
                    other: "a".into(),
                    other_field: "token",
                },
            ),
            (
                r#"{"a":{"token":"tok-1","secret":"sec-1"},"b":{"token":"sec-1","secret":"sec-2"}}"#,
                ConfigError::Reused {
                    project: "b".into(),
                    field: "token",
                    other: "a".into(),
                    other_field: "secret",
                },
            ),
        ];
        for (config, expected) in cases {
            let err = Projects::from_json(config).err();
            assert_eq!(err.as_ref(), Some(&expected), "{config}");
            let message = expected.to_string();
            for key in ["tok-1", "tok 1", "tok-2", "sec-1", "sec-2"] {
                assert!(!message.contains(key), "{message} shows {key}");
            }
        }
    }

    #[test]
    fn rate_limits_default_or_whole_slots_within_bounds() {
        let with = |limits: &str| {
            Projects::from_json(&format!(
                r#"{{"p":{{"token":"t-1","secret":"s-1","rate_limits":{limits}}}}}"#
            ))
            .map(|p| p.by_id("p").map(|p| p.rate_limits))
        };
        assert_eq!(
            Projects::from_json(r#"{"p":{"token":"t-1","secret":"s-1"}}"#).map(|p| p.by_id("p").map(|p| p.rate_limits)),
            Ok(Some(RateLimits::default()))
        );
        assert_eq!(
            with(r#"{"public":100,"secret":1000000}"#),
            Ok(Some(RateLimits {
                public: RATE_LIMIT_SLOT_REQUESTS,
                secret: MAX_RATE_LIMIT
            }))
        );
        assert_eq!(
            with(r#"{"secret":200}"#),
            Ok(Some(RateLimits {
                secret: 200,
                ..RateLimits::default()
            }))
        );
        for bad in [
            r#"{"public":0}"#,
            r#"{"public":150}"#,
            r#"{"public":1000100}"#,
            r#"{"public":-100}"#,
            r#"{"public":"300"}"#,
            r#"{"viewer":300}"#,
            "300",
        ] {
            assert!(
                matches!(
                    with(bad),
                    Err(ConfigError::Invalid {
                        field: "rate_limits",
                        ..
                    })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn limits_of_ids_and_keys_at_and_past_their_value() {
        let config = |id: &str, token: &str| format!(r#"{{"{id}":{{"token":"{token}","secret":"s-1"}}}}"#);
        let id = "p".repeat(MAX_PROJECT_ID_CHARS);
        assert!(Projects::from_json(&config(&id, "t-1")).is_ok());
        let long_id = "p".repeat(MAX_PROJECT_ID_CHARS + 1);
        assert_eq!(
            Projects::from_json(&config(&long_id, "t-1")).err(),
            Some(ConfigError::BadId { position: 1 })
        );
        assert!(Projects::from_json(&config("p", &"t".repeat(MAX_KEY_CHARS))).is_ok());
        assert!(matches!(
            Projects::from_json(&config("p", &"t".repeat(MAX_KEY_CHARS + 1))),
            Err(ConfigError::Invalid { field: "token", .. })
        ));
    }

    #[test]
    fn read_model_settings_have_defaults_and_limits() {
        let p = Projects::from_json(
            r#"{"a":{"token":"t-a","secret":"s-a"},
                "b":{"token":"t-b","secret":"s-b","timezone":"Europe/Berlin","currency":"EUR",
                     "raw_retention_days":30,"goals":[{"event":"Signup"}]}}"#,
        )
        .expect("valid config");
        let a = p.by_id("a").expect("project a");
        assert_eq!(
            (a.zone.name(), a.currency.as_str(), a.raw_retention_days),
            ("UTC", DEFAULT_CURRENCY, DEFAULT_RAW_RETENTION_DAYS)
        );
        let b = p.by_id("b").expect("project b");
        assert_eq!(
            (b.zone.name(), b.goals.len(), b.raw_retention_days),
            ("Europe/Berlin", 1, 30)
        );
        let with = |extra: &str| Projects::from_json(&format!(r#"{{"x":{{"token":"t-x","secret":"s-x",{extra}}}}}"#));
        for bad in [
            r#""timezone":"Mars/Base""#,
            r#""timezone":5"#,
            r#""currency":"euro""#,
            r#""raw_retention_days":0"#,
            r#""raw_retention_days":36501"#,
            r#""goals":[{"page":"no-slash"}]"#,
            r#""goals":{"event":"x"}"#,
        ] {
            assert!(matches!(with(bad), Err(ConfigError::Invalid { .. })), "{bad}");
        }
        assert!(with(r#""raw_retention_days":36500"#).is_ok());
        assert!(with(r#""properties":["plan","method"]"#).is_ok());
        let sixteen: Vec<String> = (0..MAX_ROLLUP_PROPERTIES).map(|i| format!("\"k{i}\"")).collect();
        assert!(with(&format!(r#""properties":[{}]"#, sixteen.join(","))).is_ok());
        assert!(with(&format!(r#""properties":[{},"one-more"]"#, sixteen.join(","))).is_err());
        assert!(with(r#""properties":[""]"#).is_err());
        assert!(with(r#""raw_retention_days":1"#).is_ok());
    }

    fn basic(user_pass: &str) -> String {
        use base64::Engine;
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass))
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

    #[test]
    fn keys_are_offered_in_one_order() {
        let offered = |auth: Option<&str>, x: Option<&str>| offered_keys(auth, x);
        // x-api-key first, then Authorization.
        assert_eq!(
            offered(Some("Bearer b-key"), Some(" x-key ")),
            [Offered::ApiKey("x-key".into()), Offered::Bearer("b-key".into())]
        );
        assert_eq!(api_key(Some("Bearer b-key"), Some("x-key")).as_deref(), Some("x-key"));
        assert_eq!(api_key(Some("bearer  s3cret "), None).as_deref(), Some("s3cret"));
        assert_eq!(api_key(None, Some("k")).as_deref(), Some("k"));
        // Basic is offered as the header, for Mixpanel's rules.
        let header = basic("demo-secret:");
        assert_eq!(offered(Some(&header), None), [Offered::Basic(header.clone())]);
        assert_eq!(api_key(Some(&header), None), None);
        // Blank keys and other schemes offer nothing.
        for (auth, x) in [
            (Some("Bearer "), Some(" ")),
            (Some("Digest abc"), None),
            (Some("Bearer"), Some("")),
            (None, None),
        ] {
            assert_eq!(offered(auth, x), [], "{auth:?} {x:?}");
        }
    }
}
