//! Plausible: `POST /api/event`. The site is named by its domain, not a key.

use super::prelude::Incoming;
use crate::{config, pipeline, ratelimit};
use ingest_core::auth::KeyKind;
use ingest_core::dialect::plausible;
use ingest_core::dialect::Reply;
use ingest_core::IngestError;
use worker::{Env, Request};

pub async fn event(mut req: Request, env: &Env) -> Reply {
    run(&mut req, env).await.unwrap_or_else(|e| plausible::error(&e))
}

async fn run(req: &mut Request, env: &Env) -> Result<Reply, IngestError> {
    let incoming = Incoming::of(req);
    let event = plausible::decode(&incoming.body(req).await?)?;
    let projects = config::projects(env)?;
    // A domain no project lists is dropped, as Plausible drops an event
    // of a site it does not know. No key: the domain names the project,
    // whose public budget the request spends.
    let Some(project) = event.domains.iter().find_map(|d| projects.by_domain(d)) else {
        return Ok(plausible::dropped());
    };
    ratelimit::per_project(env, project, KeyKind::Public).await?;
    if let Some(reason) = incoming.shared_bot() {
        let ctx = &incoming.request;
        pipeline::count_bot(env, &project.id, reason, 1, ctx.received_at_ms).await?;
        return Ok(plausible::dropped());
    }
    let anonymous = incoming.anonymous_id(env, project).await;
    let admitted = incoming.admission(project, KeyKind::Public, anonymous.as_deref());
    let event = plausible::finish(event, &admitted)?;
    pipeline::enqueue_events(env, vec![event]).await?;
    Ok(plausible::accepted())
}

pub fn method_not_allowed() -> Reply {
    plausible::error(&IngestError::MethodNotAllowed).with_header("Allow", "POST")
}
