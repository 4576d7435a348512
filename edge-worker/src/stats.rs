//! The stats API's reads: ingest-core plans the SQL (rollups without
//! filters, raw rows with them) and assembles the numbers; this module runs
//! the statements in as few D1 round trips as the plan allows (one batch
//! for the ranked rows, one for their sketches).

use crate::readmodel::prepare;
use ingest_core::auth::Project;
use ingest_core::readmodel::query::{parse_filters, resolve_range, Filter, Granularity, Paging, Range};
use ingest_core::readmodel::report::{self, object, Metrics, OpenVisitors};
use ingest_core::readmodel::rollup::Dim;
use ingest_core::readmodel::sql::{self, Statement};
use ingest_core::readmodel::visit::Visit;
use ingest_core::readmodel::Site;
use ingest_core::time::MINUTE_MS;
use ingest_core::zone::Zone;
use ingest_core::IngestError;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use worker::D1Database;

/// The panels a dashboard load shows, each its top rows.
pub const OVERVIEW_BREAKDOWNS: [&str; 18] = [
    "page",
    "entry",
    "exit",
    "source",
    "channel",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "country",
    "region",
    "city",
    "browser",
    "os",
    "device",
    "event",
    "outbound",
    "download",
    "goal",
];
/// Realtime: visitors of the last five minutes, page views per minute of
/// the last thirty.
pub const REALTIME_VISITOR_MINUTES: i64 = 5;
pub const REALTIME_SERIES_MINUTES: i64 = 30;

fn unavailable(e: worker::Error) -> IngestError {
    worker::console_error!("stats query failed: {e}");
    IngestError::Unavailable
}

/// What a request cost D1, as D1 reports it (`meta.rows_read`), so a
/// dashboard load's cost can be read off its answer.
#[derive(Default)]
struct Cost {
    rows_read: usize,
    statements: usize,
    round_trips: usize,
}

impl Cost {
    fn json(&self) -> Value {
        json!({"rows_read": self.rows_read, "statements": self.statements, "round_trips": self.round_trips})
    }
}

async fn run(db: &D1Database, statements: &[Statement], cost: &mut Cost) -> Result<Vec<Vec<Value>>, IngestError> {
    if statements.is_empty() {
        return Ok(Vec::new());
    }
    let prepared = statements
        .iter()
        .map(|s| prepare(db, &s.sql, &s.params))
        .collect::<worker::Result<Vec<_>>>()
        .map_err(unavailable)?;
    let results = db.batch(prepared).await.map_err(unavailable)?;
    cost.round_trips += 1;
    cost.statements += results.len();
    for r in &results {
        cost.rows_read += r.meta().ok().flatten().and_then(|m| m.rows_read).unwrap_or(0);
    }
    results
        .iter()
        .map(|r| r.results::<Value>().map_err(unavailable))
        .collect()
}

fn param(query: &str, name: &str) -> Option<String> {
    ingest_core::payload::form_field(query.as_bytes(), name)
}

fn filters_of(query: &str) -> Result<Vec<Filter>, IngestError> {
    match param(query, "filters").filter(|f| !f.trim().is_empty()) {
        Some(text) => parse_filters(&text),
        None => Ok(Vec::new()),
    }
}

fn dims_of(query: &str) -> Result<Vec<(String, Dim)>, IngestError> {
    let names: Vec<String> = match param(query, "breakdowns") {
        Some(list) => list
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
        None => OVERVIEW_BREAKDOWNS.iter().map(|s| (*s).to_owned()).collect(),
    };
    names
        .into_iter()
        .map(|n| match Dim::from_name(&n) {
            Some(d) => Ok((n, d)),
            None => Err(IngestError::BadRequest(format!(
                "unknown breakdown {:?}",
                n.chars().take(40).collect::<String>()
            ))),
        })
        .collect()
}

/// Series buckets: (period a row may carry, bucket it counts in), the
/// bucket labels in order, and for the raw plan each bucket's span.
struct Buckets {
    periods: Vec<(String, String)>,
    labels: Vec<String>,
    spans: Vec<(String, i64, i64)>,
}

fn buckets(range: &Range, zone: &Zone) -> Buckets {
    match range.granularity() {
        Granularity::Hour => {
            let hours = zone.hours_of(&range.from).unwrap_or_default();
            let labels: Vec<String> = hours.iter().map(|h| h.to_string()).collect();
            let spans = hours
                .iter()
                .enumerate()
                .map(|(i, h)| (h.to_string(), *h, hours.get(i + 1).copied().unwrap_or(range.end_ms)))
                .collect();
            Buckets {
                periods: labels.iter().map(|l| (l.clone(), l.clone())).collect(),
                labels,
                spans,
            }
        }
        _ => {
            let periods = range.series_periods();
            let mut labels: Vec<String> = Vec::new();
            for (_, bucket) in &periods {
                if labels.last() != Some(bucket) {
                    labels.push(bucket.clone());
                }
            }
            let spans = labels
                .iter()
                .map(|label| {
                    let days: Vec<String> = range
                        .day_list()
                        .into_iter()
                        .filter(|d| d.starts_with(label.as_str()))
                        .collect();
                    let start = days
                        .first()
                        .and_then(|d| zone.day_start(d).ok())
                        .unwrap_or(range.start_ms);
                    let end = days.last().and_then(|d| zone.day_end(d).ok()).unwrap_or(range.end_ms);
                    (label.clone(), start, end)
                })
                .collect();
            Buckets { periods, labels, spans }
        }
    }
}

/// Names hourly buckets by local time; days and months name themselves.
fn label_points(points: &mut [Value], range: &Range, zone: &Zone) {
    if range.granularity() != Granularity::Hour {
        return;
    }
    for point in points {
        if let Value::Object(map) = point {
            let start: i64 = map
                .get("bucket")
                .and_then(Value::as_str)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            map.insert("bucket".into(), json!(zone.label(start)));
            map.insert("start_ms".into(), json!(start));
        }
    }
}

/// Totals and series of a range: their statements (rollups or raw).
fn period_statements(site: &Site<'_>, range: &Range, b: &Buckets, filters: &[Filter]) -> Vec<Statement> {
    if filters.is_empty() {
        vec![sql::series(
            site.project,
            range,
            &b.periods,
            range.granularity() == Granularity::Hour,
        )]
    } else {
        vec![
            sql::raw_totals(site, range, filters),
            sql::raw_series(site, range, filters, &b.spans),
        ]
    }
}

/// (totals, series) from a period's result sets.
fn period_numbers(sets: &[Vec<Value>], b: &Buckets, range: &Range, zone: &Zone, raw: bool) -> (Value, Vec<Value>) {
    let series_rows = sets.get(usize::from(raw)).cloned().unwrap_or_default();
    let mut totals: Metrics = if raw {
        report::totals(sets.first().map(Vec::as_slice).unwrap_or_default())
    } else {
        report::totals(&series_rows)
    };
    let mut points = report::series(&series_rows, &b.periods, &b.labels);
    label_points(&mut points, range, zone);
    (totals.to_json(), points)
}

/// `GET /api/stats`: totals with the previous period, the series, and the
/// top rows of each breakdown.
pub async fn overview(db: &D1Database, project: &Project, query: &str, now_ms: i64) -> Result<Value, IngestError> {
    let site = Site::of(project);
    let zone = &project.zone;
    let range = resolve_range(query, zone, now_ms)?;
    let previous = range.previous(zone)?;
    let filters = filters_of(query)?;
    let dims = dims_of(query)?;
    let paging = Paging::from_query(query)?;
    let raw = !filters.is_empty();
    let (b, pb) = (buckets(&range, zone), buckets(&previous, zone));

    let mut statements = period_statements(&site, &range, &b, &filters);
    let per_period = statements.len();
    statements.extend(period_statements(&site, &previous, &pb, &filters));
    let cover = range.cover();
    // A breakdown rollups cannot answer (a property not rolled up) reads
    // raw rows too.
    let raw_dim = |dim: &Dim| raw || !site.rolls_up(dim);
    for (_, dim) in &dims {
        statements.push(if raw_dim(dim) {
            sql::raw_breakdown(&site, &range, &filters, dim, paging.limit, paging.offset())
        } else {
            sql::breakdown_rank(&project.id, dim, &cover, paging.limit, paging.offset())
        });
    }
    statements.push(open_visits(&project.id, &range));
    statements.push(Statement {
        sql: "SELECT reason, SUM(requests) AS requests, SUM(events) AS events FROM bot_drops \
              WHERE project = ?1 AND day >= ?2 AND day <= ?3 GROUP BY reason ORDER BY reason"
            .into(),
        params: vec![json!(project.id), json!(range.from), json!(range.to)],
    });
    let mut cost = Cost::default();
    let sets = run(db, &statements, &mut cost).await?;

    let (totals, series) = period_numbers(&sets[..per_period.min(sets.len())], &b, &range, zone, raw);
    let (previous_totals, previous_series) = period_numbers(
        sets.get(per_period..2 * per_period).unwrap_or_default(),
        &pb,
        &previous,
        zone,
        raw,
    );
    let ranked: Vec<&Vec<Value>> = sets.iter().skip(2 * per_period).take(dims.len()).collect();
    let sketches = if raw {
        Vec::new()
    } else {
        // Raw breakdowns carry their own visitors: an empty list of values
        // keeps their place in the batch.
        let plans: Vec<Statement> = dims
            .iter()
            .zip(&ranked)
            .map(|((_, dim), rows)| {
                let values: Vec<String> = if raw_dim(dim) {
                    Vec::new()
                } else {
                    rows.iter()
                        .take(paging.limit as usize)
                        .map(|r| report::text(r, "value"))
                        .collect()
                };
                sql::breakdown_sketches(&project.id, dim, &cover, &values)
            })
            .collect();
        run(db, &plans, &mut cost).await?
    };
    let all_visitors = totals.get("visitors").and_then(Value::as_u64).unwrap_or(0);
    let open_rows = sets.get(sets.len().saturating_sub(2));
    let open_count = open_rows.map_or(0, Vec::len);
    let open = open_by_dim(open_rows, raw);
    let mut breakdowns = serde_json::Map::new();
    for (i, (name, dim)) in dims.iter().enumerate() {
        let rows = ranked.get(i).map(|r| r.as_slice()).unwrap_or_default();
        let own = sketches.get(i).map(|r| r.as_slice()).unwrap_or_default();
        let (mut rows, more) = report::breakdown(rows, own, open.get(dim), paging.limit as usize);
        if *dim == Dim::Goal {
            report::with_conversion_rates(&mut rows, all_visitors);
        }
        breakdowns.insert(name.clone(), json!({"rows": rows, "more": more}));
    }
    Ok(object(vec![
        ("project", json!(project.id)),
        ("timezone", json!(zone.name())),
        // What the dashboard shows around the numbers: the tag to paste
        // (the public token is meant for pages), the goals and the
        // property keys rolled up for breakdowns.
        ("token", json!(project.token)),
        (
            "goals",
            json!(project.goals.iter().map(|g| g.name.clone()).collect::<Vec<_>>()),
        ),
        ("properties", json!(project.properties)),
        ("from", json!(range.from)),
        ("to", json!(range.to)),
        ("granularity", json!(range.granularity().as_str())),
        ("plan", json!(if raw { "raw" } else { "rollups" })),
        ("totals", totals),
        ("series", json!(series)),
        (
            "previous",
            json!({"from": previous.from, "to": previous.to, "totals": previous_totals, "series": previous_series}),
        ),
        ("breakdowns", Value::Object(breakdowns)),
        ("bots", json!(sets.last().cloned().unwrap_or_default())),
        ("open_visits", json!(open_count)),
        ("d1", cost.json()),
    ]))
}

/// Visits of the range not final yet (their visitors are not in the
/// visit-level sketches); a partial index keeps only these.
fn open_visits(project: &str, range: &Range) -> Statement {
    Statement {
        sql: "SELECT state FROM visits WHERE project = ?1 AND finalized = 0 AND start_ms >= ?2 AND start_ms < ?3"
            .into(),
        params: vec![json!(project), json!(range.start_ms), json!(range.end_ms)],
    }
}

fn open_by_dim(rows: Option<&Vec<Value>>, raw: bool) -> BTreeMap<Dim, OpenVisitors> {
    if raw {
        return BTreeMap::new();
    }
    let visits: Vec<Visit> = rows
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("state").and_then(Value::as_str))
        .filter_map(|state| serde_json::from_str(state).ok())
        .collect();
    report::open_visitors(&visits)
}

/// `GET /api/stats/breakdown?dim=…`: one breakdown, a page at a time.
pub async fn breakdown(db: &D1Database, project: &Project, query: &str, now_ms: i64) -> Result<Value, IngestError> {
    let site = Site::of(project);
    let range = resolve_range(query, &project.zone, now_ms)?;
    let filters = filters_of(query)?;
    let paging = Paging::from_query(query)?;
    let name = param(query, "dim").ok_or_else(|| IngestError::BadRequest("dim is required".into()))?;
    let dim = Dim::from_name(&name).ok_or_else(|| IngestError::BadRequest("unknown dim".into()))?;
    let cover = range.cover();
    let mut cost = Cost::default();
    let (rows, own, all_visitors, open) = if filters.is_empty() && site.rolls_up(&dim) {
        let sets = run(
            db,
            &[
                sql::breakdown_rank(&project.id, &dim, &cover, paging.limit, paging.offset()),
                sql::series(
                    &project.id,
                    &range,
                    &buckets(&range, &project.zone).periods,
                    range.granularity() == Granularity::Hour,
                ),
                open_visits(&project.id, &range),
            ],
            &mut cost,
        )
        .await?;
        let ranked = sets.first().cloned().unwrap_or_default();
        let values: Vec<String> = ranked
            .iter()
            .take(paging.limit as usize)
            .map(|r| report::text(r, "value"))
            .collect();
        let own = run(
            db,
            &[sql::breakdown_sketches(&project.id, &dim, &cover, &values)],
            &mut cost,
        )
        .await?;
        let all = report::totals(sets.get(1).map(Vec::as_slice).unwrap_or_default()).visitors();
        let open = open_by_dim(sets.get(2), false);
        (
            ranked,
            own.into_iter().next().unwrap_or_default(),
            all,
            open.get(&dim).cloned(),
        )
    } else {
        let sets = run(
            db,
            &[
                sql::raw_breakdown(&site, &range, &filters, &dim, paging.limit, paging.offset()),
                sql::raw_totals(&site, &range, &filters),
            ],
            &mut cost,
        )
        .await?;
        let all = report::totals(sets.get(1).map(Vec::as_slice).unwrap_or_default()).visitors();
        (sets.first().cloned().unwrap_or_default(), Vec::new(), all, None)
    };
    let (mut rows, more) = report::breakdown(&rows, &own, open.as_ref(), paging.limit as usize);
    if dim == Dim::Goal {
        report::with_conversion_rates(&mut rows, all_visitors);
    }
    Ok(
        json!({"dim": name, "from": range.from, "to": range.to, "page": paging.page, "limit": paging.limit,
              "rows": rows, "more": more, "d1": cost.json()}),
    )
}

/// `GET /api/stats/realtime`: read from the per-minute rows only.
pub async fn realtime(db: &D1Database, project: &Project, now_ms: i64) -> Result<Value, IngestError> {
    let since = Zone::minute_start(now_ms) - (REALTIME_SERIES_MINUTES - 1) * MINUTE_MS;
    let mut cost = Cost::default();
    let sets = run(
        db,
        &[Statement {
            sql:
                "SELECT minute_ms AS period, visitors, visits, pageviews, events, bounces, duration_ms, revenue_micros \
                  FROM rollup_minutes WHERE project = ?1 AND minute_ms >= ?2 ORDER BY minute_ms"
                    .into(),
            params: vec![json!(project.id), json!(since)],
        }],
        &mut cost,
    )
    .await?;
    let rows = sets.into_iter().next().unwrap_or_default();
    let recent = Zone::minute_start(now_ms) - (REALTIME_VISITOR_MINUTES - 1) * MINUTE_MS;
    let mut visitors = Metrics::default();
    for row in &rows {
        if report::text(row, "period").parse::<i64>().is_ok_and(|m| m >= recent) {
            visitors.add(row);
        }
    }
    let minutes: Vec<Value> = (0..REALTIME_SERIES_MINUTES)
        .map(|i| {
            let minute = since + i * MINUTE_MS;
            let pageviews = rows
                .iter()
                .find(|r| report::text(r, "period") == minute.to_string())
                .and_then(|r| r.get("pageviews").and_then(Value::as_i64))
                .unwrap_or(0);
            json!({"minute_ms": minute, "label": project.zone.label(minute), "pageviews": pageviews})
        })
        .collect();
    Ok(json!({"visitors": visitors.visitors(), "pageviews_per_minute": minutes, "d1": cost.json()}))
}
