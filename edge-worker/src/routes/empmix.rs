//! Emp-Mix: `POST /public/track`, `POST /public/track/bulk`,
//! `GET /public/events`.

use super::prelude::Incoming;
use crate::http::{database, header, query};
use crate::{config, pipeline, storage};
use ingest_core::auth::KeyKind;
use ingest_core::dialect::empmix::{self, EmpMixRequest};
use ingest_core::dialect::Reply;
use ingest_core::export::Page;
use ingest_core::IngestError;
use serde_json::{json, Value};
use worker::{Env, Request};

pub async fn track(mut req: Request, env: &Env) -> Reply {
    ingest(&mut req, env, KeyKind::Public, empmix::decode_track)
        .await
        .unwrap_or_else(|e| empmix::error(&e))
}

pub async fn bulk(mut req: Request, env: &Env) -> Reply {
    ingest(&mut req, env, KeyKind::Secret, empmix::decode_bulk)
        .await
        .unwrap_or_else(|e| empmix::error(&e))
}

async fn ingest(
    req: &mut Request,
    env: &Env,
    key_kind: KeyKind,
    decode: fn(&[u8]) -> Result<EmpMixRequest, IngestError>,
) -> Result<Reply, IngestError> {
    let incoming = Incoming::of(req);
    let request = decode(&incoming.body(req).await?)?;
    let project = incoming.admit(env, request.api_key.as_deref(), key_kind).await?;
    let events = empmix::finish(request.drafts, &incoming.admission(&project, key_kind, None))?;
    pipeline::enqueue_events(env, events).await?;
    Ok(empmix::ok())
}

pub async fn events(req: Request, env: &Env) -> Reply {
    export(&req, env).await.unwrap_or_else(|e| empmix::error(&e))
}

async fn export(req: &Request, env: &Env) -> Result<Reply, IngestError> {
    let projects = config::projects(env)?;
    let project = projects.authorize(header(req, "x-api-key").as_deref(), KeyKind::Secret)?;
    let page = Page::from_query(&query(req)?)?;
    let db = database(env)?;
    let (rows, total) = storage::events_page(&db, &project.id, page)
        .await
        .map_err(|_| IngestError::Unavailable)?;
    let events = rows.into_iter().map(row_json).collect();
    Ok(empmix::events_page(events, page.page, page.limit, total))
}

fn row_json(row: storage::EventRow) -> Value {
    json!({
        "event": row.event,
        "distinct_id": row.distinct_id,
        "timestamp": row.time_ms as i64,
        "insert_id": row.insert_id,
        "device_id": row.device_id,
        "properties": serde_json::from_str::<Value>(&row.properties).unwrap_or(Value::Null),
        "url": row.url,
        "referrer": row.referrer,
        "title": row.title,
        "screen": row.screen,
        "source": row.source,
        "country": row.country,
        "received_at": row.received_at_ms as i64,
    })
}

pub fn method_not_allowed() -> Reply {
    empmix::error(&IngestError::MethodNotAllowed)
}
