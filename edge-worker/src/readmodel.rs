//! Storing a batch with its read model: which events D1 lacks, the open
//! visits of their visitors and the sketches of the rollup rows they touch
//! are read first; ingest-core decides everything (enrichment, visits,
//! rollup deltas); then one D1 batch (one transaction) writes the events,
//! visits and rollups together. The events queue has one consumer at a
//! time (`max_concurrency = 1`), so nothing else writes between the reads
//! and that transaction, and a retried batch finds its events stored and
//! adds nothing twice.

use crate::storage::{forget_outbox_statement, json_chunks, Stored, INSERT_EVENTS};
use ingest_core::auth::Projects;
use ingest_core::dedup::dedup_key;
use ingest_core::readmodel::batch::{process, visitor_of, People, StoredEvent};
use ingest_core::readmodel::rollup::{Cell, Rollup, RowKey};
use ingest_core::readmodel::visit::{Visit, VISIT_GAP_MS};
use ingest_core::readmodel::Site;
use ingest_core::sketch::Sketch;
use ingest_core::Event;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Result};

/// A JSON parameter as D1 binds it: numbers and strings as themselves,
/// lists and objects as their JSON text (read back with `json_each`).
pub fn js(value: &Value) -> JsValue {
    match value {
        Value::Null => JsValue::NULL,
        Value::Bool(b) => JsValue::from_bool(*b),
        Value::Number(n) => JsValue::from_f64(n.as_f64().unwrap_or(0.0)),
        Value::String(s) => JsValue::from(s.as_str()),
        other => JsValue::from(other.to_string()),
    }
}

pub fn prepare(db: &D1Database, sql: &str, params: &[Value]) -> Result<D1PreparedStatement> {
    let bound: Vec<JsValue> = params.iter().map(js).collect();
    db.prepare(sql).bind(&bound)
}

fn site_of<'p>(projects: Option<&'p Projects>, project: &str) -> Option<Site<'p>> {
    projects.and_then(|p| p.by_id(project)).map(Site::of)
}

#[derive(Deserialize)]
struct KeyRow {
    project: String,
    dedup_key: String,
}

/// The events D1 does not hold yet, each once (the first of a batch's
/// repeats), with their dedup keys.
async fn fresh<'e>(db: &D1Database, events: &'e [Event]) -> Result<Vec<(&'e Event, String)>> {
    let keyed: Vec<(&Event, String)> = events.iter().map(|e| (e, dedup_key(e))).collect();
    let mut stored: HashSet<(String, String)> = HashSet::new();
    let pairs: Vec<Value> = keyed.iter().map(|(e, k)| json!([e.project, k])).collect();
    for chunk in json_chunks(pairs) {
        let rows = db
            .prepare(
                "SELECT project, dedup_key FROM events WHERE (project, dedup_key) IN \
                 (SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(?1))",
            )
            .bind(&[JsValue::from(chunk)])?
            .all()
            .await?
            .results::<KeyRow>()?;
        stored.extend(rows.into_iter().map(|r| (r.project, r.dedup_key)));
    }
    Ok(keyed
        .into_iter()
        .filter(|(e, k)| stored.insert((e.project.clone(), k.clone())))
        .collect())
}

#[derive(Deserialize)]
struct StateRow {
    project: String,
    state: String,
}

/// The persons of the batch's server users (events without a device), by
/// the identity map, in one query per project. A link counts for events
/// stored after it: the rollups cannot take a visitor back out.
async fn people(db: &D1Database, fresh: &[Event]) -> Result<People> {
    let mut by_project: BTreeMap<&str, HashSet<&str>> = BTreeMap::new();
    for e in fresh
        .iter()
        .filter(|e| e.device_id.is_none() && !e.distinct_id.is_empty())
    {
        by_project.entry(&e.project).or_default().insert(&e.distinct_id);
    }
    let mut people = People::new();
    for (project, ids) in by_project {
        let ids: Vec<&str> = ids.into_iter().collect();
        // The same look-up that applying a link makes; an id alone in its
        // cluster is its own person and needs no entry.
        for (id, cluster) in crate::identities::clusters(db, project, &ids).await? {
            if cluster.canonical != id {
                people.insert((project.to_owned(), id), cluster.canonical);
            }
        }
    }
    Ok(people)
}

/// Stored visits the fresh web events could reach: same visitor, ending
/// no earlier than a gap before the earliest event. SQLite would rather
/// scan `visits_by_start` (every visit of the project before the batch's
/// end); the visitor index makes it a search per visitor of the batch.
async fn open_visits(db: &D1Database, fresh: &[Event], people: &People) -> Result<Vec<(String, Visit)>> {
    let mut by_project: BTreeMap<&str, (HashSet<&str>, i64, i64)> = BTreeMap::new();
    for e in fresh.iter().filter(|e| e.page.url.is_some()) {
        let Some(visitor) = visitor_of(e, people) else {
            continue;
        };
        let entry = by_project
            .entry(&e.project)
            .or_insert((HashSet::new(), i64::MAX, i64::MIN));
        entry.0.insert(visitor);
        entry.1 = entry.1.min(e.time_ms);
        entry.2 = entry.2.max(e.time_ms);
    }
    let mut open = Vec::new();
    for (project, (visitors, first, last)) in by_project {
        let list = Value::Array(visitors.into_iter().map(|v| json!(v)).collect()).to_string();
        let rows = db
            .prepare(
                "SELECT project, state FROM visits INDEXED BY visits_by_visitor \
                 WHERE project = ?1 AND visitor IN (SELECT value FROM json_each(?2)) \
                 AND last_ms > ?3 AND start_ms < ?4",
            )
            .bind(&[
                project.into(),
                list.into(),
                JsValue::from_f64((first - VISIT_GAP_MS) as f64),
                JsValue::from_f64((last + VISIT_GAP_MS) as f64),
            ])?
            .all()
            .await?
            .results::<StateRow>()?;
        for row in rows {
            if let Ok(visit) = serde_json::from_str::<Visit>(&row.state) {
                open.push((row.project, visit));
            }
        }
    }
    Ok(open)
}

#[derive(Deserialize)]
struct SketchRow {
    key: String,
    visitors: Option<String>,
}

/// The stored sketches of rollup rows, keyed by their JSON key text.
async fn stored_sketches(
    db: &D1Database,
    table: &str,
    keys: Vec<Value>,
    key_sql: &str,
) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for chunk in json_chunks(keys) {
        let rows = db
            .prepare(format!(
                "SELECT k.value AS key, t.visitors AS visitors FROM json_each(?1) k JOIN {table} t ON {key_sql}"
            ))
            .bind(&[JsValue::from(chunk)])?
            .all()
            .await?
            .results::<SketchRow>()?;
        for row in rows {
            if let Some(sketch) = row.visitors {
                out.insert(row.key, sketch);
            }
        }
    }
    Ok(out)
}

/// The new sketch of a row: the stored one with the batch's visitors in.
fn merged_sketch(stored: Option<&String>, cell: &Cell) -> Option<String> {
    if cell.visitors.is_empty() {
        return None;
    }
    let mut sketch = stored.and_then(|s| Sketch::decode(s).ok()).unwrap_or_default();
    for hash in &cell.visitors {
        sketch.insert_hash(*hash);
    }
    Some(sketch.encode())
}

fn counters_json(cell: &Cell) -> [i64; 6] {
    let c = &cell.counters;
    [
        c.visits,
        c.pageviews,
        c.events,
        c.bounces,
        c.duration_ms,
        c.revenue_micros,
    ]
}

const UPSERT_COUNTERS: &str = "visitors = COALESCE(excluded.visitors, visitors), visits = visits + excluded.visits, \
 pageviews = pageviews + excluded.pageviews, events = events + excluded.events, bounces = bounces + excluded.bounces, \
 duration_ms = duration_ms + excluded.duration_ms, revenue_micros = revenue_micros + excluded.revenue_micros";

const COUNTER_VALUES: &str = "json_extract(value, '$[1]'), json_extract(value, '$[2][0]'), json_extract(value, '$[2][1]'), \
 json_extract(value, '$[2][2]'), json_extract(value, '$[2][3]'), json_extract(value, '$[2][4]'), json_extract(value, '$[2][5]')";

/// Statements that add a batch's rollup deltas.
async fn rollup_statements(db: &D1Database, rollup: &Rollup) -> Result<Vec<D1PreparedStatement>> {
    let key = |k: &RowKey| json!([k.project, k.dim, k.period, k.value]);
    let wanted: Vec<Value> = rollup
        .rows
        .iter()
        .filter(|(_, c)| !c.visitors.is_empty())
        .map(|(k, _)| key(k))
        .collect();
    let stored = stored_sketches(
        db,
        "rollups",
        wanted,
        "t.project = json_extract(k.value, '$[0]') AND t.dim = json_extract(k.value, '$[1]') \
         AND t.period = json_extract(k.value, '$[2]') AND t.value = json_extract(k.value, '$[3]')",
    )
    .await?;
    let rows = rollup.rows.iter().map(|(k, cell)| {
        let id = key(k);
        json!([
            id,
            merged_sketch(stored.get(&id.to_string()), cell),
            counters_json(cell)
        ])
    });
    let mut statements = Vec::new();
    for chunk in json_chunks(rows) {
        statements.push(db.prepare(format!(
            "INSERT INTO rollups (project, dim, period, value, visitors, visits, pageviews, events, bounces, duration_ms, revenue_micros) \
             SELECT json_extract(value, '$[0][0]'), json_extract(value, '$[0][1]'), json_extract(value, '$[0][2]'), \
             json_extract(value, '$[0][3]'), {COUNTER_VALUES} FROM json_each(?1) WHERE true \
             ON CONFLICT (project, dim, period, value) DO UPDATE SET {UPSERT_COUNTERS}"
        )).bind(&[JsValue::from(chunk)])?);
    }
    for (table, column, cells) in [
        ("rollup_hours", "hour_ms", &rollup.hours),
        ("rollup_minutes", "minute_ms", &rollup.minutes),
    ] {
        let wanted: Vec<Value> = cells
            .iter()
            .filter(|(_, c)| !c.visitors.is_empty())
            .map(|((p, t), _)| json!([p, t]))
            .collect();
        let stored = stored_sketches(
            db,
            table,
            wanted,
            &format!("t.project = json_extract(k.value, '$[0]') AND t.{column} = json_extract(k.value, '$[1]')"),
        )
        .await?;
        let rows = cells.iter().map(|((p, t), cell)| {
            let id = json!([p, t]);
            json!([
                id,
                merged_sketch(stored.get(&id.to_string()), cell),
                counters_json(cell)
            ])
        });
        for chunk in json_chunks(rows) {
            statements.push(db.prepare(format!(
                "INSERT INTO {table} (project, {column}, visitors, visits, pageviews, events, bounces, duration_ms, revenue_micros) \
                 SELECT json_extract(value, '$[0][0]'), json_extract(value, '$[0][1]'), {COUNTER_VALUES} \
                 FROM json_each(?1) WHERE true ON CONFLICT (project, {column}) DO UPDATE SET {UPSERT_COUNTERS}"
            )).bind(&[JsValue::from(chunk)])?);
        }
    }
    Ok(statements)
}

/// Visits whose indexed columns stay as they were (visitor, start, not
/// final yet or final still): only the row and `visits_by_visitor` (its
/// `last_ms`) change. D1 bills a row per index entry written, and a
/// `REPLACE` rewrites all three indexes (issue 22).
const UPDATE_KEPT_VISITS: &str = "UPDATE visits SET last_ms = j.last_ms, entry = j.entry, exit = j.exit, \
 pageviews = j.pageviews, events = j.events, bounced = j.bounced, hostname = j.hostname, source = j.source, \
 channel = j.channel, utm_source = j.utm_source, utm_medium = j.utm_medium, utm_campaign = j.utm_campaign, \
 utm_term = j.utm_term, utm_content = j.utm_content, country = j.country, region = j.region, city = j.city, \
 browser = j.browser, browser_version = j.browser_version, os = j.os, device = j.device, touched_ms = ?2, \
 state = j.state \
 FROM (SELECT json_extract(value, '$.project') AS project, json_extract(value, '$.v.visit_id') AS visit_id, \
 json_extract(value, '$.v.visitor') AS visitor, json_extract(value, '$.v.start_ms') AS start_ms, \
 json_extract(value, '$.v.finalized') AS finalized, json_extract(value, '$.v.last_ms') AS last_ms, \
 json_extract(value, '$.v.entry') AS entry, json_extract(value, '$.v.exit') AS exit, \
 json_extract(value, '$.v.pageviews') AS pageviews, json_extract(value, '$.v.events') AS events, \
 json_extract(value, '$.bounced') AS bounced, json_extract(value, '$.v.attributes.hostname') AS hostname, \
 json_extract(value, '$.v.attributes.source') AS source, json_extract(value, '$.v.attributes.channel') AS channel, \
 json_extract(value, '$.v.attributes.utm_source') AS utm_source, \
 json_extract(value, '$.v.attributes.utm_medium') AS utm_medium, \
 json_extract(value, '$.v.attributes.utm_campaign') AS utm_campaign, \
 json_extract(value, '$.v.attributes.utm_term') AS utm_term, \
 json_extract(value, '$.v.attributes.utm_content') AS utm_content, \
 json_extract(value, '$.v.attributes.country') AS country, json_extract(value, '$.v.attributes.region') AS region, \
 json_extract(value, '$.v.attributes.city') AS city, json_extract(value, '$.v.attributes.browser') AS browser, \
 json_extract(value, '$.v.attributes.browser_version') AS browser_version, \
 json_extract(value, '$.v.attributes.os') AS os, json_extract(value, '$.v.attributes.device') AS device, \
 json(json_extract(value, '$.v')) AS state FROM json_each(?1)) AS j \
 WHERE visits.project = j.project AND visits.visit_id = j.visit_id AND visits.visitor = j.visitor \
 AND visits.start_ms = j.start_ms AND visits.finalized = j.finalized";

/// New visits, and those whose indexed columns changed: the rows
/// [`UPDATE_KEPT_VISITS`] (run first) already wrote match and are skipped.
const UPSERT_VISITS: &str = "INSERT OR REPLACE INTO visits (project, visit_id, visitor, start_ms, last_ms, entry, exit, \
 pageviews, events, bounced, hostname, source, channel, utm_source, utm_medium, utm_campaign, utm_term, utm_content, \
 country, region, city, browser, browser_version, os, device, finalized, touched_ms, state) \
 SELECT json_extract(value, '$.project'), json_extract(value, '$.v.visit_id'), json_extract(value, '$.v.visitor'), \
 json_extract(value, '$.v.start_ms'), json_extract(value, '$.v.last_ms'), json_extract(value, '$.v.entry'), \
 json_extract(value, '$.v.exit'), json_extract(value, '$.v.pageviews'), json_extract(value, '$.v.events'), \
 json_extract(value, '$.bounced'), json_extract(value, '$.v.attributes.hostname'), json_extract(value, '$.v.attributes.source'), \
 json_extract(value, '$.v.attributes.channel'), json_extract(value, '$.v.attributes.utm_source'), \
 json_extract(value, '$.v.attributes.utm_medium'), json_extract(value, '$.v.attributes.utm_campaign'), \
 json_extract(value, '$.v.attributes.utm_term'), json_extract(value, '$.v.attributes.utm_content'), \
 json_extract(value, '$.v.attributes.country'), json_extract(value, '$.v.attributes.region'), \
 json_extract(value, '$.v.attributes.city'), json_extract(value, '$.v.attributes.browser'), \
 json_extract(value, '$.v.attributes.browser_version'), json_extract(value, '$.v.attributes.os'), \
 json_extract(value, '$.v.attributes.device'), json_extract(value, '$.v.finalized'), ?2, \
 json(json_extract(value, '$.v')) FROM json_each(?1) \
 WHERE NOT EXISTS (SELECT 1 FROM visits AS k WHERE k.project = json_extract(value, '$.project') \
 AND k.visit_id = json_extract(value, '$.v.visit_id') AND k.visitor = json_extract(value, '$.v.visitor') \
 AND k.start_ms = json_extract(value, '$.v.start_ms') AND k.finalized = json_extract(value, '$.v.finalized'))";

/// Stores a batch of events with its visits and rollups, in one
/// transaction with the outbox rows of the messages that carried them.
/// Returns the events D1 did not hold before.
pub async fn store(
    db: &D1Database,
    projects: Option<&Projects>,
    events: &[Event],
    outbox_ids: &[String],
    now_ms: i64,
    read_model: bool,
) -> Result<Stored> {
    if !read_model {
        return store_plain(db, events, outbox_ids).await;
    }
    // Events of an erased person are neither stored nor counted. The same
    // check runs again after the insert, in the transaction, for an
    // erasure that lands in between (then only the raw rows go; a rollup
    // holds no person).
    let erased = crate::erasure::erased_already(db, events).await?;
    let keyed: Vec<(&Event, String)> = fresh(db, events)
        .await?
        .into_iter()
        .filter(|(e, k)| !erased.contains(&(e.project.clone(), k.clone(), e.distinct_id.clone())))
        .collect();
    let fresh_events: Vec<Event> = keyed.iter().map(|(e, _)| (*e).clone()).collect();
    let keys: Vec<String> = keyed.into_iter().map(|(_, k)| k).collect();
    let people = people(db, &fresh_events).await?;
    let open = open_visits(db, &fresh_events, &people).await?;
    let result = process(&fresh_events, open, &people, |project| site_of(projects, project));

    #[derive(serde::Serialize)]
    struct Row<'a, 'e> {
        #[serde(flatten)]
        stored: &'a StoredEvent<'e>,
        dedup_key: &'a str,
    }
    let mut statements: Vec<D1PreparedStatement> = Vec::new();
    let rows = result
        .events
        .iter()
        .zip(&keys)
        .map(|(stored, key)| Row { stored, dedup_key: key });
    for chunk in json_chunks(rows) {
        statements.push(db.prepare(INSERT_EVENTS).bind(&[JsValue::from(chunk)])?);
    }
    let visits = result
        .visits
        .iter()
        .map(|w| json!({"project": w.project, "bounced": i64::from(w.visit.bounced()), "v": w.visit}));
    for chunk in json_chunks(visits) {
        let chunk = JsValue::from(chunk);
        for sql in [UPDATE_KEPT_VISITS, UPSERT_VISITS] {
            statements.push(
                db.prepare(sql)
                    .bind(&[chunk.clone(), JsValue::from_f64(now_ms as f64)])?,
            );
        }
    }
    for merge in &result.merged {
        statements.push(
            db.prepare("DELETE FROM visits WHERE project = ?1 AND visit_id = ?2")
                .bind(&[merge.project.as_str().into(), merge.absorbed.as_str().into()])?,
        );
        // Events stored earlier follow their visit into the one it joined.
        statements.push(
            db.prepare(
                "UPDATE events SET visit_id = ?1 WHERE project = ?2 AND time_ms >= ?3 AND time_ms <= ?4 AND visit_id = ?5",
            )
            .bind(&[
                merge.survivor.as_str().into(),
                merge.project.as_str().into(),
                JsValue::from_f64(merge.start_ms as f64),
                JsValue::from_f64(merge.last_ms as f64),
                merge.absorbed.as_str().into(),
            ])?,
        );
    }
    let inserts = statements.len();
    let erasures = crate::erasure::on_arrival(db, &fresh_events)?;
    let erasure_count = erasures.len();
    statements.extend(erasures);
    statements.extend(rollup_statements(db, &result.rollup).await?);
    if !outbox_ids.is_empty() {
        statements.push(forget_outbox_statement(db, outbox_ids)?);
    }
    let mut stored = Stored {
        erased: erased.into_iter().map(|(_, key, id)| (key, id)).collect(),
    };
    if statements.is_empty() {
        return Ok(stored);
    }
    let results = db.batch(statements).await?;
    for r in &results {
        if let Some(error) = r.error() {
            return Err(worker::Error::RustError(error));
        }
    }
    let late = results.get(inserts..inserts + erasure_count).unwrap_or_default();
    stored.erased.extend(crate::erasure::erased_on_arrival(late)?);
    Ok(stored)
}

/// Events alone, enriched, without visits or rollups: the baseline the
/// benchmark measures the read model against.
async fn store_plain(db: &D1Database, events: &[Event], outbox_ids: &[String]) -> Result<Stored> {
    #[derive(serde::Serialize)]
    struct Row<'a, 'e> {
        #[serde(flatten)]
        stored: &'a StoredEvent<'e>,
        dedup_key: String,
    }
    let stored = ingest_core::readmodel::batch::enrich_all(events);
    let rows = stored.iter().map(|s| Row {
        stored: s,
        dedup_key: dedup_key(s.event),
    });
    let mut statements = Vec::new();
    for chunk in json_chunks(rows) {
        statements.push(db.prepare(INSERT_EVENTS).bind(&[JsValue::from(chunk)])?);
    }
    let inserts = statements.len();
    let erasures = crate::erasure::on_arrival(db, events)?;
    let erasure_count = erasures.len();
    statements.extend(erasures);
    if !outbox_ids.is_empty() {
        statements.push(forget_outbox_statement(db, outbox_ids)?);
    }
    let mut result = Stored::default();
    if !statements.is_empty() {
        let results = db.batch(statements).await?;
        let late = results.get(inserts..inserts + erasure_count).unwrap_or_default();
        result.erased = crate::erasure::erased_on_arrival(late)?;
    }
    Ok(result)
}

/// Makes a project's visits untouched since `before_ms` (by arrival and by
/// event time) final: their visitors enter the visit-level sketches, in one
/// transaction with the flag. Runs in the consumer, so no batch writes the
/// same sketches meanwhile.
pub async fn finalize(db: &D1Database, projects: Option<&Projects>, project: &str, before_ms: i64) -> Result<usize> {
    let rows = db
        .prepare(
            "SELECT project, state FROM visits WHERE project = ?1 AND finalized = 0 AND touched_ms < ?2 \
             AND last_ms < ?2 LIMIT ?3",
        )
        .bind(&[
            project.into(),
            JsValue::from_f64(before_ms as f64),
            ingest_core::limits::FINALIZE_VISITS_MAX.into(),
        ])?
        .all()
        .await?
        .results::<StateRow>()?;
    let default_zone = ingest_core::zone::Zone::utc();
    let site = site_of(projects, project).unwrap_or(Site::plain(project, &default_zone));
    let mut rollup = Rollup::default();
    let mut done = Vec::new();
    for row in &rows {
        if let Ok(mut visit) = serde_json::from_str::<Visit>(&row.state) {
            rollup.finalize(&site, &visit);
            visit.finalized = true;
            done.push(json!({"id": visit.visit_id, "state": visit}));
        }
    }
    if done.is_empty() {
        return Ok(0);
    }
    let mut statements = rollup_statements(db, &rollup).await?;
    for chunk in json_chunks(&done) {
        statements.push(
            db.prepare(
                "UPDATE visits SET finalized = 1, state = (SELECT json(json_extract(d.value, '$.state')) \
                 FROM json_each(?1) d WHERE json_extract(d.value, '$.id') = visits.visit_id) \
                 WHERE project = ?2 AND visit_id IN (SELECT json_extract(value, '$.id') FROM json_each(?1))",
            )
            .bind(&[JsValue::from(chunk), project.into()])?,
        );
    }
    db.batch(statements).await?;
    Ok(done.len())
}
