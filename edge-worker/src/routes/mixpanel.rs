//! Mixpanel: `/track`, `/engage` and `/groups` (GET or POST, client side,
//! project token in the data) and `/import` (POST, or GET as the Node
//! library sends it; server side, secret in Basic auth).

use super::prelude::Incoming;
use crate::{config, pipeline};
use ingest_core::auth::{self, KeyKind};
use ingest_core::dialect::mixpanel::{self, ImportParams, TrackParams};
use ingest_core::dialect::mixpanel_groups;
use ingest_core::dialect::Reply;
use ingest_core::identity;
use ingest_core::payload::form_field;
use ingest_core::IngestError;
use serde_json::json;
use worker::{Env, Request};

/// The three client-side endpoints share their transport and reply shape.
#[derive(Clone, Copy)]
pub enum Client {
    Track,
    Engage,
    Groups,
}

/// `/track`, `/engage` or `/groups`. The reply's shape (verbose, JSONP,
/// pixel) comes from the parameters, read from the query alone when the
/// body cannot be read.
pub async fn client(mut req: Request, env: &Env, endpoint: Client) -> Reply {
    let incoming = Incoming::of(&req);
    let body = match incoming.body(&mut req).await {
        Ok(body) => body,
        Err(e) => {
            let params = TrackParams::parse(&incoming.query, b"").unwrap_or_default();
            return mixpanel::track_error(&params, &e, &[]);
        }
    };
    let params = TrackParams::parse(&incoming.query, &body).unwrap_or_default();
    let handled = match endpoint {
        Client::Track => track(&incoming, &body, env).await,
        Client::Engage => engage(&incoming, &body, env).await,
        Client::Groups => groups(&incoming, &body, env).await,
    };
    handled.unwrap_or_else(|e| mixpanel::track_error(&params, &e, &[]))
}

async fn track(incoming: &Incoming, body: &[u8], env: &Env) -> Result<Reply, IngestError> {
    let request = mixpanel::decode_track(&incoming.query, body)?;
    let project = incoming.admit(env, request.token.as_deref(), KeyKind::Public).await?;
    // Server libraries send here too: the shared bot rule.
    if let Some(reason) = incoming.shared_bot() {
        if !request.params.test {
            let at = incoming.request.received_at_ms;
            pipeline::count_bot(env, &project.id, reason, request.items.len(), at).await?;
        }
        return Ok(mixpanel::track_ok(&request.params, &project.redirect_hosts));
    }
    // Only `ip=1` lets the address (hashed) stand in for a missing id.
    let anonymous_needed = request.params.ip
        && request
            .items
            .iter()
            .flatten()
            .any(|d| d.distinct_id.is_none() && d.device_id.is_none());
    let anonymous = if anonymous_needed {
        incoming.anonymous_id(env, &project).await
    } else {
        None
    };
    let admitted = incoming.admission(&project, KeyKind::Public, anonymous.as_deref());
    let (events, errors) = mixpanel::finish_track(request.items, &request.params, &admitted);
    let accepted = events.len();
    if !request.params.test {
        // `$identify` and `$create_alias` are stored as events and link ids.
        let links = events.iter().filter_map(identity::link_of).collect();
        pipeline::enqueue_events(env, events).await?;
        pipeline::enqueue_links(env, links).await?;
    }
    Ok(mixpanel::track_reply(
        &request.params,
        accepted,
        &errors,
        &project.redirect_hosts,
    ))
}

async fn engage(incoming: &Incoming, body: &[u8], env: &Env) -> Result<Reply, IngestError> {
    let request = mixpanel::decode_engage(&incoming.query, body)?;
    let project = incoming.admit(env, request.token.as_deref(), KeyKind::Public).await?;
    if incoming.shared_bot().is_some() {
        return Ok(mixpanel::track_ok(&request.params, &project.redirect_hosts));
    }
    let admitted = incoming.admission(&project, KeyKind::Public, None);
    let items = request.items.len();
    let (updates, mut errors) = mixpanel::finish_engage(request.items, &request.params, &admitted);
    // Each valid update with its place in the request, for the caps' errors.
    let refused: std::collections::BTreeSet<usize> = errors.iter().map(|e| e.index).collect();
    let indexed = (0..items).filter(|i| !refused.contains(i)).zip(updates).collect();
    let (updates, over_caps) = crate::profiles::within_caps(env, &project.id, indexed).await;
    errors.extend(over_caps);
    errors.sort_by_key(|e| e.index);
    let accepted = updates.len();
    if !request.params.test {
        pipeline::enqueue_profiles(env, updates).await?;
    }
    Ok(mixpanel::track_reply(
        &request.params,
        accepted,
        &errors,
        &project.redirect_hosts,
    ))
}

async fn groups(incoming: &Incoming, body: &[u8], env: &Env) -> Result<Reply, IngestError> {
    let request = mixpanel_groups::decode_groups(&incoming.query, body)?;
    let project = incoming.admit(env, request.token.as_deref(), KeyKind::Public).await?;
    if incoming.shared_bot().is_some() {
        return Ok(mixpanel::track_ok(&request.params, &project.redirect_hosts));
    }
    let admitted = incoming.admission(&project, KeyKind::Public, None);
    let items = request.items.len();
    let (updates, mut errors) = mixpanel_groups::finish_groups(request.items, &admitted);
    // Each valid update with its place in the request, for the caps' errors.
    let refused: std::collections::BTreeSet<usize> = errors.iter().map(|e| e.index).collect();
    let indexed = (0..items).filter(|i| !refused.contains(i)).zip(updates).collect();
    let (updates, over_caps) = crate::groups::within_caps(&crate::http::database(env)?, indexed).await;
    errors.extend(over_caps);
    errors.sort_by_key(|e| e.index);
    let accepted = updates.len();
    if !request.params.test {
        pipeline::enqueue_groups(env, updates).await?;
    }
    Ok(mixpanel::track_reply(
        &request.params,
        accepted,
        &errors,
        &project.redirect_hosts,
    ))
}

pub async fn import(mut req: Request, env: &Env) -> Reply {
    let incoming = Incoming::of(&req);
    // Enough of the parameters to shape an error before the body is read.
    let flag = |name: &str| form_field(incoming.query.as_bytes(), name).is_some_and(|v| v == "1" || v == "true");
    let params = ImportParams {
        strict: flag("strict"),
        verbose: flag("verbose"),
        ..Default::default()
    };
    handle_import(&mut req, &incoming, env)
        .await
        .unwrap_or_else(|e| mixpanel::import_error(&params, &e))
}

async fn handle_import(req: &mut Request, incoming: &Incoming, env: &Env) -> Result<Reply, IngestError> {
    let projects = config::projects(env)?;
    // Credentials first: an unauthenticated client learns nothing about its
    // data, and the rate limit counts before the body is read, so a
    // refused import costs no upload.
    let authorization = incoming.header("authorization");
    let query_project = form_field(incoming.query.as_bytes(), "project_id");
    let first = auth::authorize_import(&projects, authorization.as_deref(), query_project.as_deref())?;
    crate::ratelimit::per_project(env, first, KeyKind::Secret).await?;
    // The Node library's `import` is a GET with `data=` in the query.
    let body = incoming.body(req).await?;
    let content_type = incoming.header("content-type");
    let request = mixpanel::decode_import(&incoming.query, &body, content_type.as_deref())?;
    let project = auth::authorize_import(
        &projects,
        authorization.as_deref(),
        request.params.project_id.as_deref(),
    )?;
    auth::require_project_id(authorization.as_deref(), request.params.project_id.as_deref())?;
    let admitted = incoming.admission(project, KeyKind::Secret, None);
    let imported = mixpanel::finish_import(request.items, &request.params, &admitted);
    let outcome = mixpanel::settle_import(&request.params, imported);
    let mut links = outcome.links;
    links.extend(outcome.events.iter().filter_map(identity::link_of));
    pipeline::enqueue_events(env, outcome.events).await?;
    pipeline::enqueue_links(env, links).await?;
    Ok(outcome.reply)
}

/// Calls the official browser library can make besides tracking. With the
/// default configuration it makes none; these answers keep optional
/// features (feature flags, remote settings) from breaking it.
pub fn flags() -> Reply {
    Reply::json(200, &json!({"flags": {}}))
}

pub fn decide() -> Reply {
    Reply::json(
        200,
        &json!({"config": {"enable_collect_everything": false}, "notifications": [], "feature_flags": []}),
    )
}

pub fn import_method_not_allowed() -> Reply {
    mixpanel::import_error(&ImportParams::default(), &IngestError::MethodNotAllowed).with_header("Allow", "GET, POST")
}
