//! The route table. Paths are normalised once (no trailing slash), so
//! `/track/` and `/track` reach the same handler. Each family answers in its
//! own API's shape, errors included.

mod api;
mod browser;
mod crm;
mod empmix;
mod mixpanel;
mod vemetric;

use crate::http::{self, Audience};
use ingest_core::dialect::Reply;
use worker::{Env, Method, Request, Response, Result};

pub async fn dispatch(req: Request, env: Env) -> Result<Response> {
    let path = normalise(&req.path());
    let origin = http::header(&req, "origin");
    let method = req.method();
    let audience = audience(&path);
    if method == Method::Options && audience == Audience::Browser {
        return http::preflight(&req);
    }
    let reply = match (method, path.as_str()) {
        (Method::Post, "/collect") => browser::collect(req, &env).await,
        (_, "/collect") => browser::method_not_allowed(),

        (Method::Get | Method::Post, "/track") => mixpanel::track(req, &env).await,
        (Method::Get | Method::Post, "/engage") => mixpanel::engage(req, &env).await,
        (Method::Post, "/import") => mixpanel::import(req, &env).await,
        (Method::Get | Method::Post, "/decide") => mixpanel::decide(),
        (Method::Get | Method::Post, "/flags") => mixpanel::flags(),
        (_, "/track" | "/engage" | "/import") => Reply::text(405, "0").with_header("Allow", "GET, POST"),

        (Method::Post, "/e") => vemetric::handle(req, &env, vemetric::Call::Event).await,
        (Method::Post, "/i") => vemetric::handle(req, &env, vemetric::Call::Identify).await,
        (Method::Post, "/u") => vemetric::handle(req, &env, vemetric::Call::Update).await,
        (Method::Post, "/l" | "/r") => vemetric::handle(req, &env, vemetric::Call::NoOp).await,
        (_, "/e" | "/i" | "/u" | "/l" | "/r") => Reply::text(405, "Method not allowed").with_header("Allow", "POST"),

        (Method::Post, "/public/track") => empmix::track(req, &env).await,
        (Method::Post, "/public/track/bulk") => empmix::bulk(req, &env).await,
        (Method::Get, "/public/events") => empmix::events(req, &env).await,
        (_, "/public/track" | "/public/track/bulk" | "/public/events") => empmix::method_not_allowed(),

        (Method::Post, "/v1/event") => crm::event(req, &env).await,
        (_, "/v1/event") => crm_method_not_allowed(),

        (Method::Get, "/api/stats") => api::stats(req, &env).await,
        (Method::Get, "/api/profile") => api::profile(req, &env).await,
        (Method::Get, "/api/2.0/export" | "/api/export") => api::export(req, &env).await,

        (Method::Get, "/health") => Reply::json(200, &serde_json::json!({"ok": true})),
        _ => Reply::json(404, &serde_json::json!({"error": "no such endpoint"})),
    };
    http::to_response(reply, audience, origin.as_deref())
}

fn crm_method_not_allowed() -> Reply {
    ingest_core::dialect::crm::error(&ingest_core::IngestError::MethodNotAllowed).with_header("Allow", "POST")
}

fn normalise(path: &str) -> String {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() { "/".to_owned() } else { trimmed.to_owned() }
}

/// Endpoints that pages on other origins call get CORS; the rest do not.
fn audience(path: &str) -> Audience {
    match path {
        "/collect" | "/track" | "/engage" | "/groups" | "/decide" | "/flags" | "/e" | "/i" | "/u" | "/r" | "/l" | "/public/track" => {
            Audience::Browser
        }
        _ => Audience::Server,
    }
}
