//! Vemetric: `POST /e` (event), `/i` (identify), `/u` (update user), and the
//! web SDK's `/l` (page left) and `/r` (reset), which need no storage.

use super::prelude::Incoming;
use crate::{pipeline, profiles};
use ingest_core::auth::KeyKind;
use ingest_core::dialect::vemetric::{self, Headers};
use ingest_core::dialect::Reply;
use ingest_core::IngestError;
use worker::{Env, Request};

#[derive(Clone, Copy)]
pub enum Call {
    Event,
    Identify,
    Update,
    NoOp,
}

pub async fn handle(mut req: Request, env: &Env, call: Call) -> Reply {
    run(&mut req, env, call).await.unwrap_or_else(|e| vemetric::error(&e))
}

async fn run(req: &mut Request, env: &Env, call: Call) -> Result<Reply, IngestError> {
    let incoming = Incoming::of(req);
    let body = incoming.body(req).await?;
    let (token, allow_cookies, referrer) = (
        incoming.header("token"),
        incoming.header("allow-cookies"),
        incoming.header("v-referrer"),
    );
    let headers = Headers {
        token: token.as_deref(),
        allow_cookies: allow_cookies.as_deref(),
        referrer: referrer.as_deref(),
    };
    match call {
        Call::NoOp => {
            let token = vemetric::decode_no_op(&body, &headers);
            incoming.admit(env, token.as_deref(), KeyKind::Public).await?;
            Ok(vemetric::ok())
        }
        Call::Event => {
            let request = vemetric::decode_event(&body, &headers)?;
            let project = incoming.admit(env, request.token.as_deref(), KeyKind::Public).await?;
            if let Some(reason) = incoming.shared_bot() {
                pipeline::count_bot(env, &project.id, reason, 1, incoming.request.received_at_ms).await?;
                return Ok(vemetric::ok());
            }
            let anonymous = incoming.anonymous_id(env, &project).await;
            let admitted = incoming.admission(&project, KeyKind::Public, anonymous.as_deref());
            let (event, profile) = vemetric::finish_event(request, &admitted).map_err(IngestError::Invalid)?;
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
            let project = incoming.admit(env, request.token.as_deref(), KeyKind::Public).await?;
            // An update that names no user is for the request's visitor.
            let anonymous = if request.needs_visitor() {
                incoming.anonymous_id(env, &project).await
            } else {
                None
            };
            let admitted = incoming.admission(&project, KeyKind::Public, anonymous.as_deref());
            let update = vemetric::finish_user(request, &admitted).map_err(IngestError::Invalid)?;
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
