//! Vemetric: `POST /e` (event), `/i` (identify), `/u` (update user), and the
//! web SDK's `/l` (page left) and `/r` (reset), which need no storage.

use crate::http::{header, read_body, request_context};
use crate::{config, pipeline, profiles, ratelimit};
use ingest_core::auth::KeyKind;
use ingest_core::dialect::vemetric::{self, Headers};
use ingest_core::dialect::Reply;
use ingest_core::payload::decode_body;
use ingest_core::{bots, validate, Dialect, IngestError};
use worker::{Env, Request};

#[derive(Clone, Copy)]
pub enum Call {
    Event,
    Identify,
    Update,
    NoOp,
}

struct Incoming {
    token: Option<String>,
    allow_cookies: Option<String>,
    referrer: Option<String>,
}

pub async fn handle(mut req: Request, env: &Env, call: Call) -> Reply {
    run(&mut req, env, call).await.unwrap_or_else(|e| vemetric::error(&e))
}

async fn run(req: &mut Request, env: &Env, call: Call) -> Result<Reply, IngestError> {
    let ctx = request_context(req);
    let incoming = Incoming {
        token: header(req, "token"),
        allow_cookies: header(req, "allow-cookies"),
        referrer: header(req, "v-referrer"),
    };
    let body = decode_body(&read_body(req).await?, header(req, "content-encoding").as_deref())?;
    let headers = Headers {
        token: incoming.token.as_deref(),
        allow_cookies: incoming.allow_cookies.as_deref(),
        referrer: incoming.referrer.as_deref(),
    };
    let projects = config::projects(env)?;
    match call {
        Call::NoOp => {
            let token = vemetric::decode_no_op(&body, &headers);
            let project = projects.authorize(token.as_deref(), KeyKind::Public)?;
            ratelimit::per_project(env, project, KeyKind::Public).await?;
            Ok(vemetric::ok())
        }
        Call::Event => {
            let request = vemetric::decode_event(&body, &headers)?;
            let project = projects.authorize(request.token.as_deref(), KeyKind::Public)?;
            ratelimit::per_project(env, project, KeyKind::Public).await?;
            if let Some(reason) = bots::classify_shared(ctx.user_agent.as_deref(), ctx.verified_bot) {
                pipeline::count_bot(env, &project.id, reason, 1, ctx.received_at_ms).await?;
                return Ok(vemetric::ok());
            }
            let anonymous = pipeline::anonymous_id(env, &project.id, &ctx).await;
            let cx = validate::Context {
                project: &project.id,
                dialect: Dialect::Vemetric,
                key: KeyKind::Public,
                request: &ctx,
                anonymous_id: anonymous.as_deref(),
            };
            let (event, profile) = vemetric::finish_event(request, &cx).map_err(IngestError::Invalid)?;
            let profile = match profile {
                Some(update) => Some(profiles::one_within_caps(env, &project.id, update).await?),
                None => None,
            };
            pipeline::enqueue_events(env, vec![event]).await?;
            if let Some(profile) = profile {
                pipeline::enqueue_profiles(env, vec![profile]).await?;
            }
            Ok(vemetric::ok())
        }
        Call::Identify | Call::Update => {
            let request = match call {
                Call::Identify => vemetric::decode_identify(&body, &headers)?,
                _ => vemetric::decode_update(&body, &headers)?,
            };
            let project = projects.authorize(request.token.as_deref(), KeyKind::Public)?;
            ratelimit::per_project(env, project, KeyKind::Public).await?;
            // An update that names no user is for the request's visitor.
            let anonymous = if request.needs_visitor() {
                pipeline::anonymous_id(env, &project.id, &ctx).await
            } else {
                None
            };
            let cx = validate::Context {
                project: &project.id,
                dialect: Dialect::Vemetric,
                key: KeyKind::Public,
                request: &ctx,
                anonymous_id: anonymous.as_deref(),
            };
            let update = vemetric::finish_user(request, &cx).map_err(IngestError::Invalid)?;
            let update = profiles::one_within_caps(env, &project.id, update).await?;
            pipeline::enqueue_profiles(env, vec![update]).await?;
            Ok(if matches!(call, Call::Identify) {
                vemetric::accepted()
            } else {
                vemetric::ok()
            })
        }
    }
}
