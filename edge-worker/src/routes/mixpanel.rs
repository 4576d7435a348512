//! Mixpanel: `/track`, `/engage` and `/groups` (GET or POST, client side,
//! project token in the data) and `/import` (POST, or GET as the Node
//! library sends it; server side, secret in Basic auth).

use crate::http::{self, header, read_body, request_context};
use crate::{config, pipeline, ratelimit};
use ingest_core::auth::{self, KeyKind};
use ingest_core::dialect::mixpanel::{self, ImportParams, TrackParams};
use ingest_core::dialect::mixpanel_groups;
use ingest_core::dialect::Reply;
use ingest_core::identity;
use ingest_core::payload::{decode_body, form_field};
use ingest_core::{bots, validate, Dialect, IngestError, RequestContext};
use serde_json::json;
use worker::{Env, Method, Request};

/// The query string and the (inflated) body; GET has no body.
async fn transport(req: &mut Request) -> Result<(String, Vec<u8>), IngestError> {
    let query = http::query(req).unwrap_or_default();
    if req.method() == Method::Get {
        return Ok((query, Vec::new()));
    }
    let body = decode_body(&read_body(req).await?, header(req, "content-encoding").as_deref())?;
    Ok((query, body))
}

/// Mixpanel's `/track` is also used by server libraries: the shared
/// endpoints' bot rule ([`bots::classify_shared`]).
fn browser_bot(ctx: &RequestContext) -> Option<bots::BotReason> {
    bots::classify_shared(ctx.user_agent.as_deref(), ctx.verified_bot)
}

/// The reply shape (verbose, JSONP, pixel) the query asks for, when the
/// body could not even be read.
fn query_params(req: &Request) -> TrackParams {
    let query = http::query(req).unwrap_or_default();
    TrackParams::parse(&query, b"").unwrap_or_default()
}

pub async fn track(mut req: Request, env: &Env) -> Reply {
    let ctx = request_context(&req);
    let (query, body) = match transport(&mut req).await {
        Ok(parts) => parts,
        Err(e) => return mixpanel::track_error(&query_params(&req), &e, &[]),
    };
    let params = TrackParams::parse(&query, &body).unwrap_or_default();
    handle_track(&query, &body, &ctx, env)
        .await
        .unwrap_or_else(|e| mixpanel::track_error(&params, &e, &[]))
}

async fn handle_track(query: &str, body: &[u8], ctx: &RequestContext, env: &Env) -> Result<Reply, IngestError> {
    let request = mixpanel::decode_track(query, body)?;
    let projects = config::projects(env)?;
    let project = projects.authorize(request.token.as_deref(), KeyKind::Public)?;
    ratelimit::per_project(env, project, KeyKind::Public).await?;
    if let Some(reason) = browser_bot(ctx) {
        if !request.params.test {
            pipeline::count_bot(env, &project.id, reason, request.items.len(), ctx.received_at_ms).await?;
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
        pipeline::anonymous_id(env, &project.id, ctx).await
    } else {
        None
    };
    let cx = validate::Context {
        project: &project.id,
        dialect: Dialect::MixpanelTrack,
        key: KeyKind::Public,
        request: ctx,
        anonymous_id: anonymous.as_deref(),
    };
    let (events, errors) = mixpanel::finish_track(request.items, &request.params, &cx);
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

pub async fn engage(mut req: Request, env: &Env) -> Reply {
    let ctx = request_context(&req);
    let (query, body) = match transport(&mut req).await {
        Ok(parts) => parts,
        Err(e) => return mixpanel::track_error(&query_params(&req), &e, &[]),
    };
    let params = TrackParams::parse(&query, &body).unwrap_or_default();
    handle_engage(&query, &body, &ctx, env)
        .await
        .unwrap_or_else(|e| mixpanel::track_error(&params, &e, &[]))
}

async fn handle_engage(query: &str, body: &[u8], ctx: &RequestContext, env: &Env) -> Result<Reply, IngestError> {
    let request = mixpanel::decode_engage(query, body)?;
    let projects = config::projects(env)?;
    let project = projects.authorize(request.token.as_deref(), KeyKind::Public)?;
    ratelimit::per_project(env, project, KeyKind::Public).await?;
    if browser_bot(ctx).is_some() {
        return Ok(mixpanel::track_ok(&request.params, &project.redirect_hosts));
    }
    let cx = validate::Context {
        project: &project.id,
        dialect: Dialect::MixpanelEngage,
        key: KeyKind::Public,
        request: ctx,
        anonymous_id: None,
    };
    let items = request.items.len();
    let (updates, mut errors) = mixpanel::finish_engage(request.items, &request.params, &cx);
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

pub async fn groups(mut req: Request, env: &Env) -> Reply {
    let ctx = request_context(&req);
    let (query, body) = match transport(&mut req).await {
        Ok(parts) => parts,
        Err(e) => return mixpanel::track_error(&query_params(&req), &e, &[]),
    };
    let params = TrackParams::parse(&query, &body).unwrap_or_default();
    handle_groups(&query, &body, &ctx, env)
        .await
        .unwrap_or_else(|e| mixpanel::track_error(&params, &e, &[]))
}

async fn handle_groups(query: &str, body: &[u8], ctx: &RequestContext, env: &Env) -> Result<Reply, IngestError> {
    let request = mixpanel_groups::decode_groups(query, body)?;
    let projects = config::projects(env)?;
    let project = projects.authorize(request.token.as_deref(), KeyKind::Public)?;
    ratelimit::per_project(env, project, KeyKind::Public).await?;
    if browser_bot(ctx).is_some() {
        return Ok(mixpanel::track_ok(&request.params, &project.redirect_hosts));
    }
    let cx = validate::Context {
        project: &project.id,
        dialect: Dialect::MixpanelEngage,
        key: KeyKind::Public,
        request: ctx,
        anonymous_id: None,
    };
    let items = request.items.len();
    let (updates, mut errors) = mixpanel_groups::finish_groups(request.items, &cx);
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
    let query = http::query(&req).unwrap_or_default();
    // Enough of the parameters to shape an error before the body is read.
    let flag = |name: &str| form_field(query.as_bytes(), name).is_some_and(|v| v == "1" || v == "true");
    let params = ImportParams {
        strict: flag("strict"),
        verbose: flag("verbose"),
        ..Default::default()
    };
    handle_import(&mut req, &query, env)
        .await
        .unwrap_or_else(|e| mixpanel::import_error(&params, &e))
}

async fn handle_import(req: &mut Request, query: &str, env: &Env) -> Result<Reply, IngestError> {
    let ctx = request_context(req);
    let projects = config::projects(env)?;
    // Credentials first: an unauthenticated client learns nothing about its data.
    let authorization = header(req, "authorization");
    let query_project = form_field(query.as_bytes(), "project_id");
    let first = auth::authorize_import(&projects, authorization.as_deref(), query_project.as_deref())?;
    // Counted before the body is read: a refused import costs no upload.
    ratelimit::per_project(env, first, KeyKind::Secret).await?;
    // The Node library's `import` is a GET with `data=` in the query.
    let body = if req.method() == Method::Get {
        Vec::new()
    } else {
        decode_body(&read_body(req).await?, header(req, "content-encoding").as_deref())?
    };
    let request = mixpanel::decode_import(query, &body, header(req, "content-type").as_deref())?;
    let project = auth::authorize_import(
        &projects,
        authorization.as_deref(),
        request.params.project_id.as_deref(),
    )?;
    auth::require_project_id(authorization.as_deref(), request.params.project_id.as_deref())?;
    let cx = validate::Context {
        project: &project.id,
        dialect: Dialect::MixpanelImport,
        key: KeyKind::Secret,
        request: &ctx,
        anonymous_id: None,
    };
    let imported = mixpanel::finish_import(request.items, &request.params, &cx);
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
