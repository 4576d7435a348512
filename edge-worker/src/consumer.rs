//! The queue consumer: stores what the fetch handler accepted. Events of a
//! batch go to D1 in one transaction, then to the optional R2 archive; a
//! failure retries the messages with growing delays, and after the last
//! retry the queue moves them to the dead-letter queue, whose consumer
//! keeps them in the `dead_letters` table. Nothing accepted is dropped
//! silently. The HTTP sink gets each stored run next, apart from storage
//! (`sink.rs`): its outages never retry or dead-letter a stored batch.

use crate::bindings::{ARCHIVE_BUCKET, DB, DEAD_LETTER_QUEUE_NAME};
use crate::config;
use crate::http::now_ms;
use crate::storage;
use ingest_core::dedup::dedup_key;
use ingest_core::profile::ProfileUpdate;
use ingest_core::profile_caps::apply_within_caps;
use ingest_core::queue::{transactions, Job};
use ingest_core::sink::archive_objects;
use ingest_core::Event;
use worker::{console_error, D1Database, Env, Message, MessageBatch, MessageExt, QueueRetryOptionsBuilder};

pub async fn handle(batch: MessageBatch<String>, env: Env) -> worker::Result<()> {
    let messages = batch.messages()?;
    if batch.queue() == DEAD_LETTER_QUEUE_NAME {
        return keep_dead_letters(&env, messages).await;
    }
    let db = match env.d1(DB) {
        Ok(db) => db,
        Err(_) => {
            messages.iter().for_each(retry_later);
            return Ok(());
        }
    };

    // The batch's event messages go to D1 in runs of about
    // CONSUMER_TRANSACTION_MAX_EVENTS events, one transaction each; the
    // messages of a run are acknowledged or retried together.
    let mut event_messages: Vec<(&Message<String>, Vec<Event>, Option<String>)> = Vec::new();
    for message in &messages {
        match serde_json::from_str::<Job>(message.body()) {
            Ok(Job::Events { events: packed, outbox }) => {
                event_messages.push((message, packed, outbox));
            }
            Ok(Job::Profile(update)) => {
                let result = store_profile(&db, &update, &batch.queue(), message.body()).await;
                settle(message, result);
            }
            Ok(Job::Group(update)) => {
                let result = crate::groups::store(&db, &update, &batch.queue(), message.body(), now_ms()).await;
                settle(message, result);
            }
            Ok(Job::Identity(link)) => {
                let queued_at = message.timestamp().as_millis() as i64;
                let result = match crate::erasure::link_erased(&db, &link, queued_at).await {
                    // Queued before an erasure of one of its ids: dropped.
                    Ok(true) => Ok(()),
                    Ok(false) => crate::identities::apply_link(&db, &link, now_ms()).await.map(|_| ()),
                    Err(e) => Err(e),
                };
                settle(message, result);
            }
            Ok(Job::FinalizeVisits { project, before_ms }) => {
                let projects = config::projects(&env).ok();
                let result = crate::readmodel::finalize(&db, projects.as_deref(), &project, before_ms).await;
                settle(message, result);
            }
            Ok(Job::BotDrop {
                project,
                day,
                reason,
                events,
            }) => {
                let result = storage::add_bot_drop(&db, &project, &day, reason.as_str(), events).await;
                settle(message, result);
            }
            // Not a job we know: keep it where a person can look at it.
            Err(e) => {
                let body = message.body().clone();
                let kept =
                    storage::write_dead_letter(&db, &batch.queue(), &body, &format!("undecodable: {e}"), now_ms())
                        .await;
                settle(message, kept);
            }
        }
    }

    let pack_sizes: Vec<usize> = event_messages.iter().map(|(_, events, _)| events.len()).collect();
    let mut all_stored = !event_messages.is_empty();
    for run in transactions(&pack_sizes) {
        let members = &mut event_messages[run.clone()];
        // Moved out, not copied: each message's events are needed once.
        let events: Vec<Event> = members
            .iter_mut()
            .flat_map(|(_, events, _)| std::mem::take(events))
            .collect();
        let outbox_ids: Vec<String> = members.iter().filter_map(|(_, _, outbox)| outbox.clone()).collect();
        let result = store_events(&env, &db, &events, &outbox_ids, &pack_sizes[run]).await;
        if let Err(e) = &result {
            console_error!("storing {} events failed: {e}", events.len());
        }
        all_stored &= result.is_ok();
        for (message, _, _) in members.iter() {
            if result.is_ok() {
                message.ack();
            } else {
                retry_later(message);
            }
        }
    }
    // Local `wrangler dev` runs no crons: sweeping here too heals a
    // crashed development stack as soon as traffic flows again.
    if all_stored && config::outbox_enabled(&env) {
        if let Err(e) = sweep_outbox(&env).await {
            console_error!("outbox sweep failed: {e}");
        }
    }
    Ok(())
}

/// Applies one profile update. One that would take the profile past a cap
/// (it passed the request's check, but another update got there first) is
/// kept as a dead letter, whole, for a person to look at.
async fn store_profile(db: &D1Database, update: &ProfileUpdate, queue: &str, body: &str) -> worker::Result<()> {
    let current = storage::load_profile(db, &update.project, &update.distinct_id).await?;
    match apply_within_caps(current, &update.ops) {
        Ok(next) => {
            storage::save_profile(
                db,
                &update.project,
                &update.distinct_id,
                next.as_ref(),
                update.time_ms,
                update.received_at_ms,
            )
            .await
        }
        Err(refused) => {
            let reason = format!("profile cap: {} {}", refused.op, refused.error);
            storage::write_dead_letter(db, queue, body, &reason, now_ms()).await
        }
    }
}

async fn store_events(
    env: &Env,
    db: &D1Database,
    events: &[Event],
    outbox_ids: &[String],
    pack_sizes: &[usize],
) -> worker::Result<()> {
    let projects = config::projects(env).ok();
    let stored = crate::readmodel::store(
        db,
        projects.as_deref(),
        events,
        outbox_ids,
        now_ms(),
        config::read_model_enabled(env),
    )
    .await?;
    // The sinks run after D1 so a retry (D1 ignores the repeats) re-sends
    // the whole batch to them: they see every event at least once, except
    // those an erasure's tombstone dropped on arrival.
    let kept = |e: &&Event| stored.erased.is_empty() || !stored.erased.contains(&(dedup_key(e), e.distinct_id.clone()));
    if config::archive_enabled(env) {
        archive(env, events, pack_sizes, &kept).await?;
    }
    // Stored: from here on a sink's failure is the sink's (kept and
    // offered again), never the batch's.
    let sinked: Vec<&Event> = events.iter().filter(kept).collect();
    crate::sink::deliver(env, db, &sinked).await
}

/// Writes each message's events to R2. Object names are digests of their
/// contents, and one message's events never change, so a message delivered
/// again (in whatever batch) rewrites its own objects and nothing else.
async fn archive(
    env: &Env,
    events: &[Event],
    pack_sizes: &[usize],
    kept: &impl Fn(&&Event) -> bool,
) -> worker::Result<()> {
    let bucket = env.bucket(ARCHIVE_BUCKET)?;
    let mut rest = events;
    for &size in pack_sizes {
        let (pack, tail) = rest.split_at(size.min(rest.len()));
        rest = tail;
        // Copied only when an erasure took some of the batch.
        let pack: std::borrow::Cow<'_, [Event]> = if pack.iter().all(|e| kept(&e)) {
            pack.into()
        } else {
            pack.iter().filter(kept).cloned().collect::<Vec<_>>().into()
        };
        for (key, body) in archive_objects(&pack) {
            bucket.put(key, body.into_bytes()).execute().await?;
        }
    }
    Ok(())
}

/// POSTs an erasure notice (`HTTP_SINK_ERASURE_URL`); anything but a 2xx
/// is an error.
pub async fn post(url: &str, content_type: &str, body: String) -> worker::Result<()> {
    crate::sink::post(url, content_type, body, None).await
}

async fn keep_dead_letters(env: &Env, messages: Vec<Message<String>>) -> worker::Result<()> {
    let db = env.d1(DB)?;
    for message in &messages {
        let body = message.body().clone();
        let kept = storage::write_dead_letter(&db, DEAD_LETTER_QUEUE_NAME, &body, "retries exhausted", now_ms()).await;
        // Kept as a dead letter now: the outbox must not queue it again.
        if kept.is_ok() {
            if let Ok(Job::Events { outbox: Some(id), .. }) = serde_json::from_str::<Job>(&body) {
                let _ = storage::forget_outbox(&db, &[id]).await;
            }
        }
        settle(message, kept);
    }
    Ok(())
}

fn settle<T>(message: &Message<String>, result: worker::Result<T>) {
    match result {
        Ok(_) => message.ack(),
        Err(e) => {
            console_error!("storing message {} failed: {e}", message.id());
            retry_later(message);
        }
    }
}

/// Retries after about as long as the message has already waited, so the
/// delays double from one attempt to the next (the binding does not expose
/// the attempt count).
fn retry_later(message: &Message<String>) {
    let waited_ms = now_ms() - message.timestamp().as_millis() as i64;
    let delay = ingest_core::queue::retry_delay_seconds(waited_ms);
    message.retry_with_options(&QueueRetryOptionsBuilder::new().with_delay_seconds(delay).build());
}

/// The cron sweep: event messages recorded in the outbox but not stored
/// after the grace period (lost by a crashed local queue, say) are queued
/// again under the same outbox id. Storing twice is harmless: D1 ignores
/// events it already has (same dedup key).
pub async fn sweep_outbox(env: &Env) -> worker::Result<usize> {
    let db = env.d1(DB)?;
    let now = now_ms();
    let rows = storage::take_stale_outbox(
        &db,
        now - config::outbox_replay_after_ms(env),
        now,
        ingest_core::limits::OUTBOX_SWEEP_ROWS,
    )
    .await?;
    let jobs: Vec<Job> = rows
        .iter()
        .filter_map(|row| serde_json::from_str(&row.body).ok())
        .collect();
    let count = jobs.len();
    crate::pipeline::requeue(env, jobs)
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))?;
    Ok(count)
}

/// Deletes raw events older than each project's `raw_retention_days`, a
/// bounded number per run ([`ingest_core::limits::RETENTION_DELETE_ROWS`]).
/// Asks the consumer to make each project's quiet visits final (see
/// `readmodel::finalize`); queued, so it never runs beside a batch.
pub async fn queue_finalization(env: &Env) -> worker::Result<()> {
    let projects = config::projects(env).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let before_ms = now_ms() - config::visit_finalize_after_ms(env);
    let jobs = projects
        .all()
        .iter()
        .map(|p| Job::FinalizeVisits {
            project: p.id.clone(),
            before_ms,
        })
        .collect();
    crate::pipeline::requeue(env, jobs)
        .await
        .map_err(|e| worker::Error::RustError(e.to_string()))
}

pub async fn apply_retention(env: &Env) -> worker::Result<usize> {
    let db = env.d1(DB)?;
    let projects = config::projects(env).map_err(|e| worker::Error::RustError(e.to_string()))?;
    let now = now_ms();
    let mut deleted = 0;
    for project in projects.all() {
        let cutoff = now - i64::from(project.raw_retention_days) * ingest_core::time::DAY_MS;
        deleted += storage::prune(&db, &project.id, cutoff, now).await?;
    }
    Ok(deleted)
}
