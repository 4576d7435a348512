//! `POST /collect`: our tracker's batches.

use crate::http::{header, read_body, request_context};
use crate::{config, pipeline, ratelimit};
use ingest_core::auth::KeyKind;
use ingest_core::dialect::browser;
use ingest_core::dialect::Reply;
use ingest_core::payload::decode_body;
use ingest_core::{bots, validate, Dialect, IngestError};
use worker::{Env, Request};

pub async fn collect(mut req: Request, env: &Env) -> Reply {
    handle(&mut req, env).await.unwrap_or_else(|e| browser::error(&e))
}

async fn handle(req: &mut Request, env: &Env) -> Result<Reply, IngestError> {
    let ctx = request_context(req);
    let body = decode_body(&read_body(req).await?, header(req, "content-encoding").as_deref())?;
    let batch = browser::decode(&body)?;
    let projects = config::projects(env)?;
    let project = projects.authorize(batch.token.as_deref(), KeyKind::Public)?;
    ratelimit::per_project(env, project, KeyKind::Public).await?;

    if let Some(reason) = bots::classify(ctx.user_agent.as_deref(), ctx.verified_bot) {
        pipeline::count_bot(env, &project.id, reason, batch.drafts.len(), ctx.received_at_ms).await?;
        return Ok(browser::accepted());
    }
    let needs_anonymous = batch
        .drafts
        .iter()
        .any(|d| d.distinct_id.is_none() && d.device_id.is_none());
    let anonymous = if needs_anonymous {
        pipeline::anonymous_id(env, &project.id, &ctx).await
    } else {
        None
    };
    let cx = validate::Context {
        project: &project.id,
        dialect: Dialect::Browser,
        key: KeyKind::Public,
        request: &ctx,
        anonymous_id: anonymous.as_deref(),
    };
    let (events, errors) = validate::finish_all(batch.drafts, &cx);
    // A browser batch is all or nothing: half of a page's events is worse
    // than none, and the tracker does not resend a 4xx.
    if !errors.is_empty() {
        return Err(IngestError::Invalid(errors));
    }
    pipeline::enqueue_events(env, events).await?;
    Ok(browser::accepted())
}

pub fn method_not_allowed() -> Reply {
    browser::error(&IngestError::MethodNotAllowed).with_header("Allow", "POST, OPTIONS")
}
