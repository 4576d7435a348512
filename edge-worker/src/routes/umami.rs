//! Umami: `POST /api/send`. The website id names the project.

use super::prelude::Incoming;
use crate::{config, pipeline, profiles, ratelimit};
use ingest_core::auth::KeyKind;
use ingest_core::dialect::umami::{self, Kind};
use ingest_core::dialect::Reply;
use ingest_core::IngestError;
use worker::{Env, Request};

pub async fn send(mut req: Request, env: &Env) -> Reply {
    run(&mut req, env).await.unwrap_or_else(|e| umami::error(&e))
}

async fn run(req: &mut Request, env: &Env) -> Result<Reply, IngestError> {
    let incoming = Incoming::of(req);
    let request = umami::decode(&incoming.body(req).await?)?;
    let projects = config::projects(env)?;
    // No key: the website id names the project, whose public budget the
    // request spends.
    let Some(project) = projects.by_umami_website(&request.website) else {
        return Ok(umami::unknown_website());
    };
    ratelimit::per_project(env, project, KeyKind::Public).await?;
    let ctx = &incoming.request;
    if let Some(reason) = incoming.shared_bot() {
        if request.kind == Kind::Event {
            pipeline::count_bot(env, &project.id, reason, 1, ctx.received_at_ms).await?;
        }
        return Ok(umami::bot());
    }
    let anonymous = if request.needs_visitor() {
        incoming.anonymous_id(env, project).await
    } else {
        None
    };
    let admitted = incoming.admission(project, KeyKind::Public, anonymous.as_deref());
    let website = request.website.clone();
    let visitor = request
        .distinct_id
        .clone()
        .or_else(|| anonymous.clone())
        .unwrap_or_default();
    match request.kind {
        Kind::Event => {
            let event = umami::finish_event(request, &admitted)?;
            pipeline::enqueue_events(env, vec![event]).await?;
        }
        Kind::Identify => {
            if let Some(update) = umami::finish_identify(request, &admitted)? {
                let update = profiles::one_within_caps(env, &project.id, update).await?;
                pipeline::enqueue_profiles(env, vec![update]).await?;
            }
        }
        // Web vitals: answered, not stored.
        Kind::Performance => {}
    }
    Ok(umami::accepted(&website, &visitor, ctx.received_at_ms))
}

pub fn method_not_allowed() -> Reply {
    umami::error(&IngestError::MethodNotAllowed).with_header("Allow", "POST")
}
