//! The first dashboard's numbers (`GET /api/stats/v1`), computed from raw
//! events in one D1 batch. Kept only until the dashboard reads the stats
//! API v2 (`stats.rs`, rollups); it scans every event of the range.

use ingest_core::export::DateRange;
use serde_json::{json, Map, Value};
use wasm_bindgen::JsValue;
use worker::{D1Database, Result};

/// How many rows each "top" list shows.
const TOP_ROWS: u32 = 10;
/// "Live" means seen in the last five minutes.
const LIVE_WINDOW_MS: i64 = 5 * 60 * 1000;

const VISITOR: &str = "COALESCE(device_id, distinct_id)";

pub async fn stats(db: &D1Database, project: &str, range: &DateRange, now_ms: i64) -> Result<Value> {
    let bucket = if range.is_single_day() {
        "%Y-%m-%dT%H:00"
    } else {
        "%Y-%m-%d"
    };
    let window = "project = ?1 AND time_ms >= ?2 AND time_ms < ?3";
    let queries: Vec<(&str, String)> = vec![
        ("totals", format!(
            "SELECT COUNT(*) AS events, COALESCE(SUM(event = '$pageview'), 0) AS pageviews, \
             COALESCE(SUM(event = '$outbound_link'), 0) AS outbound_clicks, COUNT(DISTINCT {VISITOR}) AS visitors \
             FROM events WHERE {window}")),
        ("series", format!(
            "SELECT strftime('{bucket}', time_ms / 1000, 'unixepoch') AS bucket, COUNT(DISTINCT {VISITOR}) AS visitors, \
             COALESCE(SUM(event = '$pageview'), 0) AS pageviews, COUNT(*) AS events \
             FROM events WHERE {window} GROUP BY bucket ORDER BY bucket")),
        ("pages", format!(
            "SELECT url, COUNT(*) AS pageviews, COUNT(DISTINCT {VISITOR}) AS visitors FROM events \
             WHERE {window} AND event = '$pageview' AND url IS NOT NULL GROUP BY url ORDER BY pageviews DESC, url LIMIT {TOP_ROWS}")),
        ("referrers", format!(
            "SELECT referrer, COUNT(DISTINCT {VISITOR}) AS visitors, COUNT(*) AS pageviews FROM events \
             WHERE {window} AND event = '$pageview' AND referrer IS NOT NULL AND referrer != '' \
             GROUP BY referrer ORDER BY visitors DESC, referrer LIMIT {TOP_ROWS}")),
        ("outbound", format!(
            "SELECT json_extract(properties, '$.href') AS href, COUNT(*) AS clicks, COUNT(DISTINCT {VISITOR}) AS clickers \
             FROM events WHERE {window} AND event = '$outbound_link' GROUP BY href ORDER BY clicks DESC, href LIMIT {TOP_ROWS}")),
        ("countries", format!(
            "SELECT COALESCE(country, '??') AS country, COUNT(DISTINCT {VISITOR}) AS visitors FROM events \
             WHERE {window} GROUP BY 1 ORDER BY visitors DESC, country LIMIT {TOP_ROWS}")),
        ("events", format!(
            "SELECT event, COUNT(*) AS count FROM events WHERE {window} GROUP BY event ORDER BY count DESC, event LIMIT {TOP_ROWS}")),
    ];
    let args = [
        JsValue::from(project),
        JsValue::from_f64(range.start_ms as f64),
        JsValue::from_f64(range.end_ms as f64),
    ];
    let mut statements = Vec::with_capacity(queries.len() + 2);
    for (_, sql) in &queries {
        statements.push(db.prepare(sql.as_str()).bind(&args)?);
    }
    statements.push(
        db.prepare(
            "SELECT reason, SUM(requests) AS requests, SUM(events) AS events FROM bot_drops \
             WHERE project = ?1 AND day >= ?2 AND day <= ?3 GROUP BY reason ORDER BY reason",
        )
        .bind(&[project.into(), range.from.as_str().into(), range.to.as_str().into()])?,
    );
    statements.push(
        db.prepare(format!(
            "SELECT COUNT(DISTINCT {VISITOR}) AS visitors FROM events WHERE project = ?1 AND time_ms >= ?2"
        ))
        .bind(&[project.into(), JsValue::from_f64((now_ms - LIVE_WINDOW_MS) as f64)])?,
    );
    let results = db.batch(statements).await?;
    let mut sections: Vec<Vec<Value>> = Vec::with_capacity(results.len());
    for result in &results {
        sections.push(result.results::<Value>()?);
    }

    let mut out = Map::new();
    out.insert("project".into(), json!(project));
    out.insert("from".into(), json!(range.from));
    out.insert("to".into(), json!(range.to));
    out.insert(
        "granularity".into(),
        json!(if range.is_single_day() { "hour" } else { "day" }),
    );
    for ((name, _), rows) in queries.iter().zip(sections.iter()) {
        let value = if *name == "totals" {
            rows.first().cloned().unwrap_or(Value::Null)
        } else {
            Value::Array(rows.clone())
        };
        out.insert((*name).into(), value);
    }
    out.insert(
        "bots".into(),
        Value::Array(sections.get(queries.len()).cloned().unwrap_or_default()),
    );
    let live = sections
        .get(queries.len() + 1)
        .and_then(|rows| rows.first())
        .and_then(|r| r.get("visitors"))
        .cloned();
    out.insert("live_visitors".into(), live.unwrap_or(json!(0)));
    Ok(Value::Object(out))
}
