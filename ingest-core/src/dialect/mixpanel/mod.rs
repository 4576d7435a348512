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
//!
//! The family is split by concern, not by endpoint (the transport serves all
//! three): [`transport`] reads parameters and payloads, [`read`] turns items
//! into drafts, [`rules`] holds what Mixpanel itself checks and decides, and
//! [`reply`] answers in each shape the clients read. The credentials and
//! `redirect=` checks live in [`crate::auth`].

mod read;
mod reply;
mod rules;
#[cfg(test)]
mod tests;
mod transport;

pub(super) use read::{one_token, open_update};
pub use reply::{import_error, import_reply, track_error, track_ok, track_reply, GIF, JAVASCRIPT, PIXEL_GIF};
pub use rules::{finish_engage, finish_import, finish_track, settle_import};
pub use transport::{ImportParams, TrackParams};

use super::Reply;
use crate::error::{FieldError, IngestError};
use crate::event::{Event, EventDraft};
use crate::identity::IdentityLink;
use crate::limits::{MAX_BROWSER_BATCH_EVENTS, MAX_IMPORT_EVENTS};
use crate::payload::parse_json_or_ndjson;
use crate::profile::ProfileDraft;
use read::{read_event, read_update};
use serde_json::Value;
use transport::{batch, check_count, flag, Transport};

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
pub(in crate::dialect) fn read_batch(query: &str, body: &[u8]) -> Result<(TrackParams, Vec<Value>), IngestError> {
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
