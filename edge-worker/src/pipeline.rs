//! The shared tail of every ingest route: dedup on KV, then the queue.
//! Returns only after the queue has the events, so a 2xx means "will be
//! stored"; a queue failure is a 503 that the client retries safely.

use crate::bindings::{DEDUP_KV, EVENTS_QUEUE};
use ingest_core::bots::BotReason;
use ingest_core::dedup::{dedup_key, request_marks};
use ingest_core::dialect::mixpanel_groups::GroupUpdate;
use ingest_core::identity::IdentityLink;
use ingest_core::limits::{KV_DEDUP_MAX_KEYS, KV_DEDUP_TTL_SECONDS, SALT_TTL_SECONDS};
use ingest_core::profile::ProfileUpdate;
use ingest_core::queue::{batches, pack_events, Job};
use ingest_core::time::utc_day;
use ingest_core::visitor::{cookieless_id, salt_key};
use ingest_core::{Event, IngestError, RequestContext};
use std::collections::HashSet;
use wasm_bindgen::prelude::wasm_bindgen;
use worker::{BatchMessageBuilder, Env, MessageBuilder, QueueContentType};

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = crypto, js_name = randomUUID)]
    pub(crate) fn random_uuid() -> String;
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub queued: usize,
    pub duplicates: usize,
}

/// Drops events already seen (in this request, or by KV's marks) and
/// queues the rest. Both checks use the same key as D1 ([`dedup_key`]);
/// `DEDUP_MARKS` decides whether KV marks each event, the request as a
/// whole, or nothing.
pub async fn enqueue_events(env: &Env, events: Vec<Event>) -> Result<Outcome, IngestError> {
    let total = events.len();
    let mut seen_here = HashSet::new();
    let (mut fresh, keys): (Vec<Event>, Vec<String>) = events
        .into_iter()
        .map(|e| {
            let key = dedup_key(&e);
            (e, key)
        })
        .filter(|(_, key)| seen_here.insert(key.clone()))
        .unzip();

    let mode = crate::config::dedup_marks(env);
    let project = fresh.first().map(|e| e.project.clone()).unwrap_or_default();
    let mut marks = request_marks(mode, &project, &keys);
    let kv = env
        .kv(DEDUP_KV)
        .ok()
        .filter(|_| !marks.is_empty() && marks.len() <= KV_DEDUP_MAX_KEYS);
    if let Some(kv) = kv.as_ref() {
        // A KV failure only costs the fast path; D1's unique key still holds.
        if let Ok(found) = kv.get_bulk(&marks).text().await {
            let seen = |key: &String| matches!(found.get(key), Some(Some(_)));
            if marks.len() == fresh.len() {
                let (kept, kept_marks): (Vec<Event>, Vec<String>) =
                    fresh.into_iter().zip(marks).filter(|(_, key)| !seen(key)).unzip();
                fresh = kept;
                marks = kept_marks;
            } else if marks.iter().any(seen) {
                // The request's one mark: this exact request was queued before.
                fresh.clear();
                marks.clear();
            }
        }
    }
    let queued = fresh.len();
    send(env, pack_events(fresh)).await?;

    if let Some(kv) = kv {
        let puts = marks
            .iter()
            .filter_map(|key| kv.put(key, "1").ok())
            .map(|b| b.expiration_ttl(KV_DEDUP_TTL_SECONDS).execute());
        let _ = futures_util::future::join_all(puts).await;
    }
    Ok(Outcome {
        queued,
        duplicates: total - queued,
    })
}

pub async fn enqueue_profiles(env: &Env, updates: Vec<ProfileUpdate>) -> Result<(), IngestError> {
    send(env, updates.into_iter().map(Job::Profile).collect()).await
}

pub async fn enqueue_groups(env: &Env, updates: Vec<GroupUpdate>) -> Result<(), IngestError> {
    send(env, updates.into_iter().map(Job::Group).collect()).await
}

pub async fn enqueue_links(env: &Env, links: Vec<IdentityLink>) -> Result<(), IngestError> {
    send(env, links.into_iter().map(Job::Identity).collect()).await
}

/// Counts a dropped bot request (its events are not stored).
pub async fn count_bot(
    env: &Env,
    project: &str,
    reason: BotReason,
    events: usize,
    now_ms: i64,
) -> Result<(), IngestError> {
    let job = Job::BotDrop {
        project: project.to_owned(),
        day: utc_day(now_ms),
        reason,
        events: u32::try_from(events).unwrap_or(u32::MAX),
    };
    send(env, vec![job]).await
}

/// Gives each event message an outbox id and records it in D1 before it is
/// queued. A failure here is logged, not fatal: the queue is still the
/// primary path, and the outbox only guards it.
async fn record_outbox(env: &Env, jobs: &mut [Job]) {
    let mut rows = Vec::new();
    for job in jobs.iter_mut() {
        if let Job::Events { outbox, .. } = job {
            let id = outbox.get_or_insert_with(random_uuid).clone();
            if let Ok(text) = serde_json::to_string(job) {
                rows.push((id, text));
            }
        }
    }
    let recorded = match env.d1(crate::bindings::DB) {
        Ok(db) => crate::storage::record_outbox(&db, &rows, crate::http::now_ms()).await,
        Err(e) => Err(e),
    };
    if let Err(e) = recorded {
        worker::console_error!("outbox not recorded: {e}");
    }
}

/// Queues jobs again as they are (dead-letter replay, outbox sweep).
pub async fn requeue(env: &Env, jobs: Vec<Job>) -> Result<(), IngestError> {
    send(env, jobs).await
}

async fn send(env: &Env, mut jobs: Vec<Job>) -> Result<(), IngestError> {
    if jobs.is_empty() {
        return Ok(());
    }
    if crate::config::outbox_enabled(env) {
        record_outbox(env, &mut jobs).await;
    }
    let queue = env.queue(EVENTS_QUEUE).map_err(|_| IngestError::Unavailable)?;
    for batch in batches(jobs) {
        // JSON text sent as `text`: a structured value would lose the
        // properties (serde-wasm-bindgen makes maps JS `Map`s), and the
        // `json` content type would escape the text again, past 128 KB.
        let messages = batch
            .iter()
            .filter_map(|job| serde_json::to_string(job).ok())
            .map(|text| MessageBuilder::new(text).content_type(QueueContentType::Text).build());
        let batch = BatchMessageBuilder::new().messages(messages).build();
        queue.send_batch(batch).await.map_err(|e| {
            worker::console_error!("queue refused a batch: {e}");
            IngestError::Unavailable
        })?;
    }
    Ok(())
}

/// The cookieless visitor id for this request, making today's salt if none
/// exists yet. `None` when KV or the IP is unavailable.
pub async fn anonymous_id(env: &Env, project: &str, ctx: &RequestContext) -> Option<String> {
    let ip = ctx.ip.as_deref()?;
    let kv = env.kv(DEDUP_KV).ok()?;
    let key = salt_key(&utc_day(ctx.received_at_ms));
    let salt = match kv.get(&key).text().await.ok()? {
        Some(salt) => salt,
        None => {
            let salt = random_uuid();
            kv.put(&key, salt.as_str())
                .ok()?
                .expiration_ttl(SALT_TTL_SECONDS)
                .execute()
                .await
                .ok()?;
            salt
        }
    };
    Some(cookieless_id(
        &salt,
        project,
        ip,
        ctx.user_agent.as_deref().unwrap_or(""),
    ))
}
