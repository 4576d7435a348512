//! The HTTP sink (a warehouse such as ClickHouse), kept apart from storage.
//! The consumer hands it each run of events once D1 and the archive hold
//! them: it POSTs them as NDJSON (ingest-core's `sink::ndjson`, lines that
//! `INSERT … FORMAT JSONEachRow` reads), with the `Authorization` header
//! from the `HTTP_SINK_AUTHORIZATION` secret when one is set. A refusal or
//! an unreachable sink never fails the batch, so an outage sends nothing to
//! the dead-letter queue: the run is kept in D1's `sink_pending` and
//! offered again, by the cron and after the next delivery the sink
//! accepts, with waits that double up to ten minutes
//! (`ingest_core::sink::sink_retry_delay_ms`). Delivery is at least once;
//! the warehouse table deduplicates on `(project, dedup_key)`.

use crate::bindings::DB;
use crate::config;
use crate::http::now_ms;
use ingest_core::d1::json_chunks;
use ingest_core::limits::SINK_RETRY_SWEEP_ROWS;
use ingest_core::sink::{ndjson, sink_retry_delay_ms};
use ingest_core::Event;
use serde::Deserialize;
use wasm_bindgen::JsValue;
use worker::{console_error, D1Database, Env, Result};

/// Delivers one stored run. Fails only when a refused run could not be
/// kept for later (D1 is down too): then the batch is retried as before.
pub async fn deliver(env: &Env, db: &D1Database, events: &[&Event]) -> Result<()> {
    let Some(url) = config::http_sink_url(env) else {
        return Ok(());
    };
    if events.is_empty() {
        return Ok(());
    }
    match post_events(env, &url, events.iter().copied()).await {
        Ok(()) => {
            // The sink is up: what it refused earlier may go now.
            if let Err(e) = offer_due(env, db).await {
                console_error!("HTTP sink: offering kept runs failed: {e}");
            }
            Ok(())
        }
        Err(e) => {
            console_error!("HTTP sink refused {} events, kept for a later offer: {e}", events.len());
            keep(db, events, &e.to_string(), now_ms()).await
        }
    }
}

async fn post_events<'a>(env: &Env, url: &str, events: impl IntoIterator<Item = &'a Event>) -> Result<()> {
    let credentials = config::http_sink_authorization(env);
    post(url, "application/x-ndjson", ndjson(events), credentials.as_deref()).await
}

/// POSTs a body, with an `Authorization` header when given; anything but
/// a 2xx is an error.
pub async fn post(url: &str, content_type: &str, body: String, authorization: Option<&str>) -> Result<()> {
    let headers = worker::Headers::new();
    headers.set("Content-Type", content_type)?;
    if let Some(credentials) = authorization {
        headers.set("Authorization", credentials)?;
    }
    let mut init = worker::RequestInit::new();
    init.with_method(worker::Method::Post)
        .with_headers(headers)
        .with_body(Some(body.into()));
    let request = worker::Request::new_with_init(url, &init)?;
    let response = worker::Fetch::Request(request).send().await?;
    match response.status_code() {
        200..=299 => Ok(()),
        status => Err(worker::Error::RustError(format!("HTTP sink answered {status}"))),
    }
}

/// Keeps a refused run in `sink_pending`, in JSON chunks a D1 row holds.
async fn keep(db: &D1Database, events: &[&Event], error: &str, now: i64) -> Result<()> {
    let next = now + sink_retry_delay_ms(0);
    let mut statements = Vec::new();
    for chunk in json_chunks(events.iter().copied()) {
        statements.push(
            db.prepare(
                "INSERT INTO sink_pending (body, events, first_refused_at_ms, next_offer_at_ms, last_error) \
                 VALUES (?1, json_array_length(?1), ?2, ?3, ?4)",
            )
            .bind(&[
                chunk.into(),
                JsValue::from_f64(now as f64),
                JsValue::from_f64(next as f64),
                error.into(),
            ])?,
        );
    }
    if !statements.is_empty() {
        db.batch(statements).await?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct Pending {
    id: f64,
    body: String,
    first_refused_at_ms: f64,
}

/// The cron's share: offers the due kept runs again.
pub async fn retry(env: &Env) -> Result<usize> {
    if config::http_sink_url(env).is_none() {
        return Ok(0);
    }
    let db = env.d1(DB)?;
    offer_due(env, &db).await
}

/// Offers up to [`SINK_RETRY_SWEEP_ROWS`] due runs, oldest due first, and
/// stops at the first refusal (the sink is still down). Rows are claimed
/// first (their next offer moved on by the usual wait), so the cron and a
/// consumer sweeping at the same moment rarely offer the same row; if they
/// do, the warehouse's dedup absorbs it. Events an erasure covers since the
/// run was kept are left out. Returns the events the sink took.
async fn offer_due(env: &Env, db: &D1Database) -> Result<usize> {
    let Some(url) = config::http_sink_url(env) else {
        return Ok(0);
    };
    let now = now_ms();
    let claimed = db
        .prepare(
            "UPDATE sink_pending SET offers = offers + 1, \
             next_offer_at_ms = ?1 + MIN(MAX(?1 - first_refused_at_ms, ?3), ?4) \
             WHERE id IN (SELECT id FROM sink_pending WHERE next_offer_at_ms <= ?1 ORDER BY next_offer_at_ms LIMIT ?2) \
             RETURNING id, body, first_refused_at_ms",
        )
        .bind(&[
            JsValue::from_f64(now as f64),
            SINK_RETRY_SWEEP_ROWS.into(),
            JsValue::from_f64(sink_retry_delay_ms(0) as f64),
            JsValue::from_f64(sink_retry_delay_ms(i64::MAX) as f64),
        ])?
        .all()
        .await?
        .results::<Pending>()?;
    let mut delivered = 0;
    for row in claimed {
        let events: Vec<Event> = serde_json::from_str(&row.body).unwrap_or_default();
        let erased = crate::erasure::erased_already(db, &events).await?;
        let kept: Vec<&Event> = events
            .iter()
            .filter(|e| {
                erased.is_empty()
                    || !erased.contains(&(
                        e.project.clone(),
                        ingest_core::dedup::dedup_key(e),
                        e.distinct_id.clone(),
                    ))
            })
            .collect();
        let result = if kept.is_empty() {
            Ok(())
        } else {
            post_events(env, &url, kept.iter().copied()).await
        };
        let id = JsValue::from_f64(row.id);
        match result {
            Ok(()) => {
                db.prepare("DELETE FROM sink_pending WHERE id = ?1")
                    .bind(&[id])?
                    .run()
                    .await?;
                delivered += kept.len();
            }
            Err(e) => {
                let waited = (now - row.first_refused_at_ms as i64).max(0);
                console_error!("HTTP sink still refuses ({e}); kept runs waited {} s", waited / 1000);
                db.prepare("UPDATE sink_pending SET last_error = ?1 WHERE id = ?2")
                    .bind(&[e.to_string().into(), id])?
                    .run()
                    .await?;
                break;
            }
        }
    }
    Ok(delivered)
}
