//! `POST /collect`: our tracker's batches.

use super::prelude::Incoming;
use crate::pipeline;
use ingest_core::auth::KeyKind;
use ingest_core::dialect::browser;
use ingest_core::dialect::Reply;
use ingest_core::{bots, IngestError};
use worker::{Env, Request};

pub async fn collect(mut req: Request, env: &Env) -> Reply {
    handle(&mut req, env).await.unwrap_or_else(|e| browser::error(&e))
}

async fn handle(req: &mut Request, env: &Env) -> Result<Reply, IngestError> {
    let incoming = Incoming::of(req);
    let batch = browser::decode(&incoming.body(req).await?)?;
    let project = incoming.admit(env, batch.token.as_deref(), KeyKind::Public).await?;
    let ctx = &incoming.request;

    // Only browsers send here, so the whole rule applies (no `Mozilla/` test).
    if let Some(reason) = bots::classify(ctx.user_agent.as_deref(), ctx.verified_bot) {
        pipeline::count_bot(env, &project.id, reason, batch.drafts.len(), ctx.received_at_ms).await?;
        return Ok(browser::accepted());
    }
    let needs_anonymous = batch
        .drafts
        .iter()
        .any(|d| d.distinct_id.is_none() && d.device_id.is_none());
    let anonymous = if needs_anonymous {
        incoming.anonymous_id(env, &project).await
    } else {
        None
    };
    let admitted = incoming.admission(&project, KeyKind::Public, anonymous.as_deref());
    let (events, errors) = browser::finish(batch.drafts, &admitted);
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
