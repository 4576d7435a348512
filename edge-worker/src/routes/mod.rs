//! The route table. Paths are normalised once (no trailing slash), so
//! `/track/` and `/track` reach the same handler. Each family answers in its
//! own API's shape, errors included.

mod api;
mod browser;
mod crm;
mod empmix;
mod mixpanel;
mod plausible;
mod posthog;
mod prelude;
mod umami;
mod vemetric;

use crate::http::{self, Audience};
use crate::ratelimit;
use ingest_core::dialect::Reply;
use ingest_core::IngestError;
use worker::{Env, Method, Request, Response, Result};

pub async fn dispatch(req: Request, env: Env) -> Result<Response> {
    let raw_path = req.path();
    let path = normalise(&raw_path);
    let origin = http::header(&req, "origin");
    let method = req.method();
    // A URL that cannot be read counts as one without a query.
    let query = http::query(&req).unwrap_or_default();
    let family = Family::of(&raw_path, &path, &query);
    let audience = family.audience();
    if method == Method::Options && audience == Audience::Browser {
        return http::preflight(&req);
    }
    if path != "/health" {
        if let Err(limited) = ratelimit::per_ip(&env, http::header(&req, "cf-connecting-ip").as_deref()).await {
            return http::to_response(family.error(&query, &limited), audience, origin.as_deref());
        }
    }
    if method == Method::Get && matches!(path.as_str(), "/api/2.0/export" | "/api/export") {
        return api::export(req, &env, origin.as_deref()).await;
    }
    if family == Family::PostHog {
        return http::to_response(
            posthog_route(req, &env, method, &path).await,
            audience,
            origin.as_deref(),
        );
    }
    let reply = match (method, path.as_str()) {
        (Method::Post, "/collect") => browser::collect(req, &env).await,
        (_, "/collect") => browser::method_not_allowed(),

        (Method::Get | Method::Post, "/track") => mixpanel::client(req, &env, mixpanel::Client::Track).await,
        (Method::Get | Method::Post, "/engage") => mixpanel::client(req, &env, mixpanel::Client::Engage).await,
        (Method::Get | Method::Post, "/groups") => mixpanel::client(req, &env, mixpanel::Client::Groups).await,
        (Method::Get | Method::Post, "/import") => mixpanel::import(req, &env).await,
        // posthog-js asks these too, with `v=`.
        (Method::Get | Method::Post, "/decide") if ingest_core::dialect::posthog::asks_posthog(&query) => {
            ingest_core::dialect::posthog::decide()
        }
        (Method::Get | Method::Post, "/flags") if ingest_core::dialect::posthog::asks_posthog(&query) => {
            ingest_core::dialect::posthog::flags()
        }
        (Method::Get | Method::Post, "/decide") => mixpanel::decide(),
        (Method::Get | Method::Post, "/flags") => mixpanel::flags(),
        (_, "/import") => mixpanel::import_method_not_allowed(),
        (_, "/track" | "/engage" | "/groups") => Reply::text(405, "0").with_header("Allow", "GET, POST"),

        (Method::Post, "/e") => vemetric::handle(req, &env, vemetric::Call::Event).await,
        (Method::Post, "/i") => vemetric::handle(req, &env, vemetric::Call::Identify).await,
        (Method::Post, "/u") => vemetric::handle(req, &env, vemetric::Call::Update).await,
        (Method::Post, "/l" | "/r") => vemetric::handle(req, &env, vemetric::Call::NoOp).await,
        (_, "/e" | "/i" | "/u" | "/l" | "/r") => Reply::text(405, "Method not allowed").with_header("Allow", "POST"),

        (Method::Post, "/public/track") => empmix::track(req, &env).await,
        (Method::Post, "/public/track/bulk") => empmix::bulk(req, &env).await,
        (Method::Get, "/public/events") => empmix::events(req, &env).await,
        (_, "/public/track" | "/public/track/bulk" | "/public/events") => empmix::method_not_allowed(),

        (Method::Post, "/api/event") => plausible::event(req, &env).await,
        (_, "/api/event") => plausible::method_not_allowed(),
        (Method::Post, "/api/send") => umami::send(req, &env).await,
        (_, "/api/send") => umami::method_not_allowed(),

        (Method::Post, "/v1/event") => crm::event(req, &env).await,
        (_, "/v1/event") => crm_method_not_allowed(),

        (Method::Get, "/api/stats") => api::stats_view(req, &env, api::StatsView::Overview).await,
        (Method::Get, "/api/stats/breakdown") => api::stats_view(req, &env, api::StatsView::Breakdown).await,
        (Method::Get, "/api/stats/realtime") => api::stats_view(req, &env, api::StatsView::Realtime).await,
        (Method::Get, "/api/profile") => api::profile(req, &env).await,
        (Method::Get, "/api/group") => api::group(req, &env).await,
        (Method::Get, "/api/identity") => api::identity(req, &env).await,
        (Method::Post, "/api/users/delete") => api::delete_user(req, &env).await,
        (Method::Post, "/api/dead-letters/replay") => api::replay_dead_letters(req, &env).await,
        (Method::Post, "/api/archive/scrub") => api::scrub_archive(req, &env).await,

        (
            _,
            "/api/stats"
            | "/api/stats/breakdown"
            | "/api/stats/realtime"
            | "/api/profile"
            | "/api/group"
            | "/api/identity"
            | "/api/2.0/export"
            | "/api/export",
        ) => api::error(&IngestError::MethodNotAllowed).with_header("Allow", "GET"),
        (_, "/api/users/delete" | "/api/dead-letters/replay" | "/api/archive/scrub") => {
            api::error(&IngestError::MethodNotAllowed).with_header("Allow", "POST")
        }

        (Method::Get, "/health") => Reply::json(200, &serde_json::json!({"ok": true})),
        // `status` too: the Mixpanel libraries read it from any answer (the
        // Python one fails with a KeyError, not its own exception, without).
        _ => Reply::json(404, &serde_json::json!({"status": 0, "error": "no such endpoint"})),
    };
    http::to_response(reply, audience, origin.as_deref())
}

/// The API families, each with its error shape and CORS audience: the one
/// table that dispatch, refusals made before a route runs (rate limits) and
/// CORS all read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    /// Our tracker's `/collect`.
    Collect,
    /// Mixpanel's client side: `/track`, `/engage`, `/groups`.
    MixpanelTrack,
    /// Mixpanel's server side: `/import`.
    MixpanelImport,
    /// What mixpanel-browser asks besides tracking: `/decide`, `/flags`.
    MixpanelFlags,
    /// Vemetric: `/e`, `/i`, `/u`, `/l`, `/r`.
    Vemetric,
    /// Plausible's tracker: `/api/event`.
    Plausible,
    /// Umami's tracker: `/api/send`.
    Umami,
    /// posthog-js: `/e/` (with its slash or parameters), `/i/v0/e`,
    /// `/batch`, `/capture`, `/array/<token>/config[.js]`.
    PostHog,
    /// Emp-Mix's page endpoint: `/public/track`.
    EmpMixPublic,
    /// Emp-Mix's server endpoints, and any other `/public/` path.
    EmpMixServer,
    /// The CRM API: `/v1/event`.
    Crm,
    /// Everything else: the read and admin API, `/health`, unknown paths.
    Api,
}

impl Family {
    /// `raw` is the path as asked (posthog-js asks `/e/`, Vemetric `/e`),
    /// `path` the same normalised.
    fn of(raw: &str, path: &str, query: &str) -> Family {
        match path {
            "/e" if posthog::is_posthog_e(raw, query) => Family::PostHog,
            "/i/v0/e" | "/batch" | "/capture" => Family::PostHog,
            p if p.starts_with("/array/") => Family::PostHog,
            "/api/event" => Family::Plausible,
            "/api/send" => Family::Umami,
            "/collect" => Family::Collect,
            "/track" | "/engage" | "/groups" => Family::MixpanelTrack,
            "/import" => Family::MixpanelImport,
            "/decide" | "/flags" => Family::MixpanelFlags,
            "/e" | "/i" | "/u" | "/l" | "/r" => Family::Vemetric,
            "/public/track" => Family::EmpMixPublic,
            p if p.starts_with("/public/") => Family::EmpMixServer,
            "/v1/event" => Family::Crm,
            _ => Family::Api,
        }
    }

    /// Endpoints that pages on other origins call get CORS; the rest do not.
    fn audience(self) -> Audience {
        match self {
            Family::Collect
            | Family::MixpanelTrack
            | Family::MixpanelFlags
            | Family::Vemetric
            | Family::Plausible
            | Family::Umami
            | Family::PostHog
            | Family::EmpMixPublic => Audience::Browser,
            Family::MixpanelImport | Family::EmpMixServer | Family::Crm | Family::Api => Audience::Server,
        }
    }

    /// An error in the family's shape, for refusals made before a route
    /// runs (rate limits).
    fn error(self, query: &str, err: &IngestError) -> Reply {
        use ingest_core::dialect::{browser, crm, empmix, mixpanel, plausible, posthog, umami, vemetric};
        match self {
            Family::Collect => browser::error(err),
            // The query alone says how the client wants its answer (verbose,
            // JSONP, pixel); the body is not read for a refusal.
            Family::MixpanelTrack => {
                mixpanel::track_error(&mixpanel::TrackParams::parse(query, b"").unwrap_or_default(), err, &[])
            }
            Family::MixpanelImport => {
                let verbose = ingest_core::payload::form_field(query.as_bytes(), "verbose").is_some_and(|v| v == "1");
                mixpanel::import_error(
                    &mixpanel::ImportParams {
                        verbose,
                        ..Default::default()
                    },
                    err,
                )
            }
            Family::Vemetric => vemetric::error(err),
            Family::Plausible => plausible::error(err),
            Family::Umami => umami::error(err),
            Family::PostHog => posthog::error(err),
            Family::Crm => crm::error(err),
            Family::EmpMixPublic | Family::EmpMixServer => empmix::error(err),
            Family::MixpanelFlags | Family::Api => api::error(err),
        }
    }
}

/// posthog-js's paths: capture, and its remote configuration.
async fn posthog_route(req: Request, env: &Env, method: Method, path: &str) -> Reply {
    match (method, path) {
        (Method::Get, p) if p.starts_with("/array/") => posthog::remote_config(env, &p["/array/".len()..]),
        (Method::Post, "/e" | "/i/v0/e" | "/batch" | "/capture") => posthog::capture(req, env).await,
        _ => posthog::method_not_allowed(),
    }
}

fn crm_method_not_allowed() -> Reply {
    ingest_core::dialect::crm::error(&ingest_core::IngestError::MethodNotAllowed).with_header("Allow", "POST")
}

fn normalise(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        trimmed.to_owned()
    }
}
