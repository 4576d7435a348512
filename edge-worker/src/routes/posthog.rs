//! posthog-js: capture (`/e/`, `/i/v0/e/`, `/batch/`, `/capture/`), its
//! flags (`/flags/?v=2`, `/decide/?v=3`) and remote configuration
//! (`/array/<token>/config`, `/array/<token>/config.js`).

use super::prelude::Incoming;
use crate::{config, pipeline, profiles};
use ingest_core::auth::KeyKind;
use ingest_core::dialect::posthog;
use ingest_core::dialect::Reply;
use ingest_core::{identity, IngestError};
use worker::{Env, Request};

pub async fn capture(mut req: Request, env: &Env) -> Reply {
    run(&mut req, env).await.unwrap_or_else(|e| posthog::error(&e))
}

async fn run(req: &mut Request, env: &Env) -> Result<Reply, IngestError> {
    let incoming = Incoming::of(req);
    let capture = posthog::decode(&incoming.body(req).await?)?;
    let project = incoming.admit(env, capture.token.as_deref(), KeyKind::Public).await?;
    if let Some(reason) = incoming.shared_bot() {
        let ctx = &incoming.request;
        pipeline::count_bot(env, &project.id, reason, capture.drafts.len(), ctx.received_at_ms).await?;
        return Ok(posthog::ok());
    }
    let anonymous = if capture.needs_visitor() {
        incoming.anonymous_id(env, &project).await
    } else {
        None
    };
    let admitted = incoming.admission(&project, KeyKind::Public, anonymous.as_deref());
    let (events, updates) = posthog::finish(capture, &admitted)?;
    let (updates, refused) = profiles::within_caps(env, &project.id, updates.into_iter().enumerate().collect()).await;
    if !refused.is_empty() {
        return Err(IngestError::Invalid(refused));
    }
    // `$identify` joins the anonymous id to the user, as Mixpanel's does.
    let links = events.iter().filter_map(identity::link_of).collect();
    pipeline::enqueue_events(env, events).await?;
    pipeline::enqueue_profiles(env, updates).await?;
    pipeline::enqueue_links(env, links).await?;
    Ok(posthog::ok())
}

/// `GET /array/<token>/config[.js]`: for a project's public token only,
/// so nothing but our own tokens is ever written into a script.
pub fn remote_config(env: &Env, rest: &str) -> Reply {
    let (token, script) = match (rest.strip_suffix("/config.js"), rest.strip_suffix("/config")) {
        (Some(token), _) => (token, true),
        (None, Some(token)) => (token, false),
        (None, None) => return posthog::not_found(),
    };
    let known = config::projects(env).map(|p| p.authorize(Some(token), KeyKind::Public).is_ok());
    match known {
        Ok(true) if script => posthog::remote_config_js(token),
        Ok(true) => posthog::remote_config(token),
        Ok(false) => posthog::not_found(),
        Err(e) => posthog::error(&e),
    }
}

/// Whether a request to `/e` is posthog-js's rather than Vemetric's: it
/// asks for `/e/` (with the slash) and with its `ver`/`compression`
/// parameters; Vemetric's SDKs post to `/e` bare.
pub fn is_posthog_e(raw_path: &str, query: &str) -> bool {
    raw_path.ends_with('/')
        || ["ver", "compression"]
            .iter()
            .any(|k| ingest_core::payload::form_field(query.as_bytes(), k).is_some())
}

pub fn method_not_allowed() -> Reply {
    posthog::error(&IngestError::MethodNotAllowed).with_header("Allow", "GET, POST")
}
