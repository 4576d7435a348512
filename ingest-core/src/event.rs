//! The canonical event: one shape inside, whatever dialect it came in.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Which API an event arrived through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Dialect {
    /// Our own tracker's beacon endpoint.
    Browser,
    MixpanelTrack,
    MixpanelImport,
    MixpanelEngage,
    Vemetric,
    EmpMix,
    Crm,
    /// Plausible's tracker (`/api/event`).
    Plausible,
    /// Umami's tracker (`/api/send`).
    Umami,
    /// posthog-js (`/e/`, `/batch/`, `/i/v0/e/`).
    #[serde(rename = "posthog")]
    PostHog,
}

impl Dialect {
    pub fn as_str(self) -> &'static str {
        match self {
            Dialect::Browser => "browser",
            Dialect::MixpanelTrack => "mixpanel_track",
            Dialect::MixpanelImport => "mixpanel_import",
            Dialect::MixpanelEngage => "mixpanel_engage",
            Dialect::Vemetric => "vemetric",
            Dialect::EmpMix => "empmix",
            Dialect::Crm => "crm",
            Dialect::Plausible => "plausible",
            Dialect::Umami => "umami",
            Dialect::PostHog => "posthog",
        }
    }
}

/// Where the event happened in the page, when it happened in one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PageContext {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub referrer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// `WIDTHxHEIGHT` of the screen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub screen: Option<String>,
}

/// A validated event, ready for the queue and storage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub project: String,
    pub name: String,
    /// The known user, or the anonymous id when none is known yet.
    pub distinct_id: String,
    /// The anonymous device (cookie id, or the daily cookieless hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_id: Option<String>,
    pub time_ms: i64,
    pub insert_id: String,
    #[serde(default)]
    pub page: PageContext,
    #[serde(default)]
    pub properties: Map<String, Value>,
    pub source: Dialect,
    pub received_at_ms: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// Region (state, province) and city, where Cloudflare's request data
    /// has them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
}

/// What a dialect decoder extracts from one event before validation. Fields
/// keep their raw JSON where validation must judge the type.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventDraft {
    pub name: Option<Value>,
    pub distinct_id: Option<Value>,
    pub device_id: Option<Value>,
    pub time: Option<Value>,
    pub insert_id: Option<Value>,
    pub page: PageContext,
    pub properties: Map<String, Value>,
}

/// Facts about the HTTP request that carried the events. The IP is used for
/// the cookieless hash and never stored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestContext {
    pub received_at_ms: i64,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    /// Cloudflare's `cf.botManagement.verifiedBot`, when present.
    pub verified_bot: bool,
    /// A random id the worker draws for each request. Events whose content
    /// does not identify one occurrence get an insert_id made from it and
    /// their place in the request, so each of them is kept
    /// ([`crate::dedup::missing_insert_id`]).
    pub request_id: String,
}

impl RequestContext {
    /// The same request with its location forgotten (Mixpanel's `ip=0`).
    pub fn without_location(&self) -> RequestContext {
        RequestContext {
            country: None,
            region: None,
            city: None,
            ..self.clone()
        }
    }
}
