//! D1: every statement binds its inputs as parameters. Events go in as one
//! JSON array parameter per statement (D1 allows 100 bound parameters; one
//! JSON parameter carries a whole chunk) with `INSERT OR IGNORE` on the
//! primary key `(project, dedup_key)`, the authoritative dedup
//! ([`ingest_core::dedup::dedup_key`]).

use ingest_core::export::{Cursor, ExportRow, Page, EXPORT_COLUMNS};
use ingest_core::limits::{OUTBOX_MAX_REPLAY_BACKOFF_MS, REALTIME_KEEP_MS, RETENTION_DELETE_ROWS};
// The chunking is pure logic, in the core; named here for the writers.
pub use ingest_core::d1::json_chunks;
use serde::Deserialize;
use serde_json::{Map, Value};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Result};

/// Event rows go in as JSON objects: the canonical event flattened, its
/// enrichment (ingest-core's `readmodel::batch::StoredEvent`) and its
/// dedup key.
pub const INSERT_EVENTS: &str = "INSERT OR IGNORE INTO events \
 (project, dedup_key, insert_id, event, distinct_id, device_id, time_ms, received_at_ms, url, referrer, title, screen, \
 properties, source, country, region, city, path, hostname, referrer_source, channel, utm_source, utm_medium, \
 utm_campaign, utm_term, utm_content, browser, browser_version, os, device, visit_id) \
 SELECT json_extract(value, '$.project'), json_extract(value, '$.dedup_key'), json_extract(value, '$.insert_id'), \
 json_extract(value, '$.name'), json_extract(value, '$.distinct_id'), json_extract(value, '$.device_id'), \
 json_extract(value, '$.time_ms'), json_extract(value, '$.received_at_ms'), json_extract(value, '$.page.url'), \
 json_extract(value, '$.page.referrer'), json_extract(value, '$.page.title'), json_extract(value, '$.page.screen'), \
 json(json_extract(value, '$.properties')), json_extract(value, '$.source'), json_extract(value, '$.country'), \
 json_extract(value, '$.region'), json_extract(value, '$.city'), json_extract(value, '$.path'), \
 json_extract(value, '$.hostname'), json_extract(value, '$.referrer_source'), json_extract(value, '$.channel'), \
 json_extract(value, '$.utm_source'), json_extract(value, '$.utm_medium'), json_extract(value, '$.utm_campaign'), \
 json_extract(value, '$.utm_term'), json_extract(value, '$.utm_content'), json_extract(value, '$.browser'), \
 json_extract(value, '$.browser_version'), json_extract(value, '$.os'), json_extract(value, '$.device'), \
 json_extract(value, '$.visit_id') \
 FROM json_each(?1)";

/// What storing a batch did.
#[derive(Debug, Default)]
pub struct Stored {
    /// `(dedup_key, distinct_id)` of events a tombstone erased on arrival:
    /// not kept, and not for the sinks either.
    pub erased: std::collections::HashSet<(String, String)>,
}

pub async fn add_bot_drop(db: &D1Database, project: &str, day: &str, reason: &str, events: u32) -> Result<()> {
    db.prepare(
        "INSERT INTO bot_drops (project, day, reason, requests, events) VALUES (?1, ?2, ?3, 1, ?4) \
         ON CONFLICT (project, day, reason) DO UPDATE SET requests = requests + 1, events = events + excluded.events",
    )
    .bind(&[project.into(), day.into(), reason.into(), events.into()])?
    .run()
    .await?;
    Ok(())
}

pub async fn write_dead_letter(db: &D1Database, queue: &str, body: &str, error: &str, now_ms: i64) -> Result<()> {
    db.prepare("INSERT INTO dead_letters (queue, body, error, received_at_ms) VALUES (?1, ?2, ?3, ?4)")
        .bind(&[
            queue.into(),
            body.into(),
            error.into(),
            JsValue::from_f64(now_ms as f64),
        ])?
        .run()
        .await?;
    Ok(())
}

#[derive(Debug, Deserialize)]
struct ProfileRow {
    properties: String,
}

pub async fn load_profile(db: &D1Database, project: &str, distinct_id: &str) -> Result<Option<Map<String, Value>>> {
    let row: Option<ProfileRow> = db
        .prepare("SELECT properties FROM profiles WHERE project = ?1 AND distinct_id = ?2")
        .bind(&[project.into(), distinct_id.into()])?
        .first(None)
        .await?;
    Ok(row.and_then(|r| serde_json::from_str(&r.properties).ok()))
}

/// The stored profiles of several users of one project, by distinct_id.
pub async fn load_profiles(
    db: &D1Database,
    project: &str,
    distinct_ids: &[&str],
) -> Result<std::collections::HashMap<String, Map<String, Value>>> {
    #[derive(Debug, Deserialize)]
    struct Row {
        distinct_id: String,
        properties: String,
    }
    let ids = Value::Array(distinct_ids.iter().map(|id| Value::from(*id)).collect()).to_string();
    let rows = db
        .prepare(
            "SELECT distinct_id, properties FROM profiles WHERE project = ?1 \
             AND distinct_id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[project.into(), ids.into()])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(rows
        .into_iter()
        .filter_map(|r| Some((r.distinct_id, serde_json::from_str(&r.properties).ok()?)))
        .collect())
}

/// Writes a profile (or deletes it when `profile` is `None`). An update
/// received at or before an erasure of its person writes nothing: the
/// tombstone check is part of the statement, so no erasure can fall between
/// the check and the write.
pub async fn save_profile(
    db: &D1Database,
    project: &str,
    distinct_id: &str,
    profile: Option<&Map<String, Value>>,
    now_ms: i64,
    received_at_ms: i64,
) -> Result<()> {
    let statement = match profile {
        Some(props) => db
            .prepare(
                "INSERT INTO profiles (project, distinct_id, properties, updated_at_ms) SELECT ?1, ?2, ?3, ?4 \
                 WHERE NOT EXISTS (SELECT 1 FROM erasures WHERE project = ?1 AND subject = ?5 AND erased_at_ms >= ?6) \
                 ON CONFLICT (project, distinct_id) DO UPDATE SET properties = excluded.properties, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(&[
                project.into(),
                distinct_id.into(),
                Value::Object(props.clone()).to_string().into(),
                JsValue::from_f64(now_ms as f64),
                ingest_core::erasure::user_subject(distinct_id).into(),
                JsValue::from_f64(received_at_ms as f64),
            ])?,
        None => db
            .prepare("DELETE FROM profiles WHERE project = ?1 AND distinct_id = ?2")
            .bind(&[project.into(), distinct_id.into()])?,
    };
    statement.run().await?;
    Ok(())
}

/// A Mixpanel group profile's properties (`None`: no such group).
pub async fn load_group(
    db: &D1Database,
    project: &str,
    group_key: &str,
    group_id: &str,
) -> Result<Option<Map<String, Value>>> {
    let row: Option<ProfileRow> = db
        .prepare("SELECT properties FROM group_profiles WHERE project = ?1 AND group_key = ?2 AND group_id = ?3")
        .bind(&[project.into(), group_key.into(), group_id.into()])?
        .first(None)
        .await?;
    Ok(row.and_then(|r| serde_json::from_str(&r.properties).ok()))
}

/// Writes a group profile, or deletes it (`None`).
pub async fn save_group(
    db: &D1Database,
    project: &str,
    group_key: &str,
    group_id: &str,
    properties: Option<&Map<String, Value>>,
    now_ms: i64,
) -> Result<()> {
    let statement = match properties {
        Some(props) => db
            .prepare(
                "INSERT INTO group_profiles (project, group_key, group_id, properties, updated_at_ms)                  VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (project, group_key, group_id)                  DO UPDATE SET properties = excluded.properties, updated_at_ms = excluded.updated_at_ms",
            )
            .bind(&[
                project.into(),
                group_key.into(),
                group_id.into(),
                Value::Object(props.clone()).to_string().into(),
                JsValue::from_f64(now_ms as f64),
            ])?,
        None => db
            .prepare("DELETE FROM group_profiles WHERE project = ?1 AND group_key = ?2 AND group_id = ?3")
            .bind(&[project.into(), group_key.into(), group_id.into()])?,
    };
    statement.run().await?;
    Ok(())
}

/// One stored event as the export APIs show it.
#[derive(Debug, Deserialize)]
pub struct EventRow {
    pub insert_id: String,
    pub event: String,
    pub distinct_id: String,
    pub device_id: Option<String>,
    pub time_ms: f64,
    pub received_at_ms: f64,
    pub url: Option<String>,
    pub referrer: Option<String>,
    pub title: Option<String>,
    pub screen: Option<String>,
    pub properties: String,
    pub source: String,
    pub country: Option<String>,
}

const EVENT_COLUMNS: &str = "insert_id, event, distinct_id, device_id, time_ms, received_at_ms, url, referrer, title, screen, properties, source, country";

pub async fn events_page(db: &D1Database, project: &str, page: Page) -> Result<(Vec<EventRow>, u64)> {
    let rows = db
        .prepare(format!(
            "SELECT {EVENT_COLUMNS} FROM events WHERE project = ?1 ORDER BY time_ms, insert_id, dedup_key LIMIT ?2 OFFSET ?3"
        ))
        .bind(&[
            project.into(),
            page.limit.into(),
            JsValue::from_f64(page.offset() as f64),
        ])?
        .all()
        .await?
        .results::<EventRow>()?;
    #[derive(Deserialize)]
    struct Count {
        n: f64,
    }
    let total: Option<Count> = db
        .prepare("SELECT COUNT(*) AS n FROM events WHERE project = ?1")
        .bind(&[project.into()])?
        .first(None)
        .await?;
    Ok((rows, total.map_or(0, |c| c.n as u64)))
}

/// One page of a range's events for the raw export, ordered by time then
/// dedup key, after `after` when given.
pub async fn export_page(
    db: &D1Database,
    project: &str,
    start_ms: i64,
    end_ms: i64,
    after: Option<&Cursor>,
    limit: u32,
) -> Result<Vec<ExportRow>> {
    // Merged and aliased ids export as their person, as in Mixpanel.
    let resolved = crate::identities::RESOLVED_DISTINCT_ID;
    let (after_time, after_key) = match after {
        Some(c) => (c.time_ms as f64, c.dedup_key.as_str()),
        None => (f64::MIN, ""),
    };
    db.prepare(format!(
        "SELECT {EXPORT_COLUMNS}, {resolved} AS resolved_distinct_id FROM events \
         WHERE project = ?1 AND time_ms >= ?2 AND time_ms < ?3 \
         AND (time_ms, dedup_key) > (?4, ?5) ORDER BY time_ms, dedup_key LIMIT ?6"
    ))
    .bind(&[
        project.into(),
        JsValue::from_f64(start_ms as f64),
        JsValue::from_f64(end_ms as f64),
        JsValue::from_f64(after_time),
        after_key.into(),
        limit.into(),
    ])?
    .all()
    .await?
    .results::<ExportRow>()
}

#[derive(Debug, Deserialize)]
pub struct DeadLetter {
    pub id: f64,
    pub body: String,
}

/// Dead letters of one project, oldest first.
pub async fn dead_letters(db: &D1Database, project: &str, limit: u32) -> Result<Vec<DeadLetter>> {
    db.prepare(
        "SELECT id, body FROM dead_letters WHERE COALESCE(json_extract(body, '$.events[0].project'), \
         json_extract(body, '$.project')) = ?1 ORDER BY id LIMIT ?2",
    )
    .bind(&[project.into(), limit.into()])?
    .all()
    .await?
    .results::<DeadLetter>()
}

pub async fn forget_dead_letters(db: &D1Database, ids: &[f64]) -> Result<usize> {
    let list = Value::Array(ids.iter().map(|id| Value::from(*id as i64)).collect()).to_string();
    let result = db
        .prepare("DELETE FROM dead_letters WHERE id IN (SELECT value FROM json_each(?1))")
        .bind(&[list.into()])?
        .run()
        .await?;
    Ok(result.meta()?.and_then(|m| m.changes).unwrap_or(0))
}

pub fn forget_outbox_statement(db: &D1Database, ids: &[String]) -> Result<D1PreparedStatement> {
    let list = Value::Array(ids.iter().cloned().map(Value::String).collect()).to_string();
    db.prepare("DELETE FROM outbox WHERE id IN (SELECT value FROM json_each(?1))")
        .bind(&[list.into()])
}

pub async fn forget_outbox(db: &D1Database, ids: &[String]) -> Result<()> {
    if !ids.is_empty() {
        forget_outbox_statement(db, ids)?.run().await?;
    }
    Ok(())
}

/// Records queue messages (id, JSON text) before they are sent.
pub async fn record_outbox(db: &D1Database, rows: &[(String, String)], now_ms: i64) -> Result<()> {
    let statements = rows
        .iter()
        .map(|(id, body)| {
            db.prepare("INSERT OR REPLACE INTO outbox (id, body, queued_at_ms) VALUES (?1, ?2, ?3)")
                .bind(&[
                    id.as_str().into(),
                    body.as_str().into(),
                    JsValue::from_f64(now_ms as f64),
                ])
        })
        .collect::<Result<Vec<_>>>()?;
    if !statements.is_empty() {
        db.batch(statements).await?;
    }
    Ok(())
}

#[derive(Debug, Deserialize)]
pub struct OutboxRow {
    pub id: String,
    pub body: String,
}

/// Outbox rows queued before `cutoff_ms`, oldest first. Each is marked so
/// the next sweep leaves it alone for as long as it has waited already
/// (at most [`OUTBOX_MAX_REPLAY_BACKOFF_MS`]): a row still waiting in a
/// long queue behind a slow consumer is not lost, and replaying it every
/// sweep would flood that queue with copies (each one stored nowhere, but
/// each one read), so the replays back off by doubling.
pub async fn take_stale_outbox(db: &D1Database, cutoff_ms: i64, now_ms: i64, limit: u32) -> Result<Vec<OutboxRow>> {
    let rows = db
        .prepare("SELECT id, body FROM outbox WHERE queued_at_ms < ?1 ORDER BY queued_at_ms LIMIT ?2")
        .bind(&[JsValue::from_f64(cutoff_ms as f64), limit.into()])?
        .all()
        .await?
        .results::<OutboxRow>()?;
    if !rows.is_empty() {
        let list = Value::Array(rows.iter().map(|r| Value::String(r.id.clone())).collect()).to_string();
        db.prepare(
            "UPDATE outbox SET queued_at_ms = ?1 + MIN(MAX(?1 - queued_at_ms, 0), ?3) \
             WHERE id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[
            JsValue::from_f64(now_ms as f64),
            list.into(),
            JsValue::from_f64(OUTBOX_MAX_REPLAY_BACKOFF_MS as f64),
        ])?
        .run()
        .await?;
    }
    Ok(rows)
}

/// Deletes raw events and visits older than `cutoff_ms` (at most
/// [`RETENTION_DELETE_ROWS`] of each) and per-minute rows past the
/// realtime window. Rollups stay. Returns the events deleted.
pub async fn prune(db: &D1Database, project: &str, cutoff_ms: i64, now_ms: i64) -> Result<usize> {
    let results = db
        .batch(vec![
            db.prepare(
                "DELETE FROM events WHERE project = ?1 AND dedup_key IN \
                 (SELECT dedup_key FROM events WHERE project = ?1 AND time_ms < ?2 LIMIT ?3)",
            )
            .bind(&[
                project.into(),
                JsValue::from_f64(cutoff_ms as f64),
                RETENTION_DELETE_ROWS.into(),
            ])?,
            // A visit ends within a day of its start in practice; the day's
            // margin keeps visits whose events are still kept.
            db.prepare(
                "DELETE FROM visits WHERE project = ?1 AND visit_id IN \
                 (SELECT visit_id FROM visits WHERE project = ?1 AND start_ms < ?2 AND last_ms < ?3 LIMIT ?4)",
            )
            .bind(&[
                project.into(),
                JsValue::from_f64((cutoff_ms - ingest_core::time::DAY_MS) as f64),
                JsValue::from_f64(cutoff_ms as f64),
                RETENTION_DELETE_ROWS.into(),
            ])?,
            db.prepare("DELETE FROM rollup_minutes WHERE project = ?1 AND minute_ms < ?2")
                .bind(&[project.into(), JsValue::from_f64((now_ms - REALTIME_KEEP_MS) as f64)])?,
        ])
        .await?;
    Ok(results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0))
}
