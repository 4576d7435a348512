//! The SQL a stats request runs, built from typed values: every input is a
//! bound parameter (lists travel as one JSON parameter, so D1's 100
//! parameters never bind). Two plans:
//!
//! - **Rollups** (no filter): day, month and hour rows; bounded by the
//!   number of periods and distinct values, never by the number of events.
//! - **Raw** (any filter): the `visits` and `events` tables of the range.
//!   Exact, and as costly as the range is busy; the README says so.

use super::query::{Filter, Op, Range};
use super::rollup::Dim;
use super::{GoalKind, Site};
use crate::enrich::{FILE_DOWNLOAD, OUTBOUND_LINK, PAGEVIEW_NAMES};
use serde_json::{json, Value};

/// One statement and its parameters, in order (`?1`, `?2`, …).
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<Value>,
}

struct Builder {
    params: Vec<Value>,
}

impl Builder {
    fn new() -> Builder {
        Builder { params: Vec::new() }
    }
    /// Binds a value and returns its placeholder.
    fn bind(&mut self, value: Value) -> String {
        self.params.push(value);
        format!("?{}", self.params.len())
    }
    fn finish(self, sql: String) -> Statement {
        Statement {
            sql,
            params: self.params,
        }
    }
}

/// Counter columns every rollup query returns, in this order.
pub const COUNTERS: &str = "visits, pageviews, events, bounces, duration_ms, revenue_micros";

/// SQL list of the page view names, for the raw plan (constants, no input).
fn pageview_list() -> String {
    PAGEVIEW_NAMES
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Totals rows of the range's series: hours for one day, else days (and
/// whole months for long ranges). Each row: `period`, `visitors`, counters.
pub fn series(project: &str, range: &Range, periods: &[(String, String)], hourly: bool) -> Statement {
    let mut b = Builder::new();
    let p = b.bind(json!(project));
    if hourly {
        let (s, e) = (b.bind(json!(range.start_ms)), b.bind(json!(range.end_ms)));
        return b.finish(format!(
            "SELECT hour_ms AS period, visitors, {COUNTERS} FROM rollup_hours \
             WHERE project = {p} AND hour_ms >= {s} AND hour_ms < {e} ORDER BY hour_ms"
        ));
    }
    let list = b.bind(json!(periods.iter().map(|(p, _)| p).collect::<Vec<_>>()));
    b.finish(format!(
        "SELECT period, visitors, {COUNTERS} FROM rollups WHERE project = {p} AND dim = '' AND value = '' \
         AND period IN (SELECT value FROM json_each({list})) ORDER BY period"
    ))
}

/// The metric a breakdown of `dim` is ranked by.
pub fn sort_column(dim: &Dim) -> &'static str {
    match dim {
        Dim::Page => "pageviews",
        d if d.is_visit_level() => "visits",
        _ => "events",
    }
}

/// A page of a breakdown from rollups: values ranked, with summed counters
/// (one row more than the page, to tell whether more follow).
pub fn breakdown_rank(project: &str, dim: &Dim, periods: &[String], limit: u32, offset: u64) -> Statement {
    let mut b = Builder::new();
    let p = b.bind(json!(project));
    let d = b.bind(json!(dim.code()));
    let list = b.bind(json!(periods));
    let (l, o) = (b.bind(json!(limit + 1)), b.bind(json!(offset)));
    let sort = sort_column(dim);
    b.finish(format!(
        "SELECT value, SUM(visits) AS visits, SUM(pageviews) AS pageviews, SUM(events) AS events, \
         SUM(bounces) AS bounces, SUM(duration_ms) AS duration_ms, SUM(revenue_micros) AS revenue_micros \
         FROM rollups WHERE project = {p} AND dim = {d} AND period IN (SELECT value FROM json_each({list})) \
         GROUP BY value HAVING SUM({sort}) > 0 ORDER BY SUM({sort}) DESC, value LIMIT {l} OFFSET {o}"
    ))
}

/// The visitor sketches of the ranked values, to merge per value.
pub fn breakdown_sketches(project: &str, dim: &Dim, periods: &[String], values: &[String]) -> Statement {
    let mut b = Builder::new();
    let p = b.bind(json!(project));
    let d = b.bind(json!(dim.code()));
    let list = b.bind(json!(periods));
    let vals = b.bind(json!(values));
    b.finish(format!(
        "SELECT value, visitors FROM rollups WHERE project = {p} AND dim = {d} \
         AND period IN (SELECT value FROM json_each({list})) AND value IN (SELECT value FROM json_each({vals}))"
    ))
}

/// Column of the `visits` table (alias `v`) a visit-level dimension reads.
fn visit_column(dim: &Dim) -> Option<String> {
    let column = match dim {
        Dim::Entry => "v.entry",
        Dim::Exit => "v.exit",
        Dim::Hostname => "v.hostname",
        Dim::Source => "v.source",
        Dim::Channel => "v.channel",
        Dim::UtmSource => "v.utm_source",
        Dim::UtmMedium => "v.utm_medium",
        Dim::UtmCampaign => "v.utm_campaign",
        Dim::UtmTerm => "v.utm_term",
        Dim::UtmContent => "v.utm_content",
        Dim::Country => "v.country",
        Dim::Region => "v.region",
        Dim::City => "v.city",
        Dim::Browser => "v.browser",
        Dim::Os => "v.os",
        Dim::Device => "v.device",
        Dim::BrowserVersion => {
            return Some(
                "(CASE WHEN v.browser IS NULL THEN '' WHEN v.browser_version IS NULL THEN v.browser \
                 ELSE v.browser || ' ' || v.browser_version END)"
                    .into(),
            )
        }
        _ => return None,
    };
    Some(format!("COALESCE({column}, '')"))
}

/// Expression over the `events` table (alias `e`) an event-level
/// dimension reads; NULL where the event has no such value.
fn event_expr(dim: &Dim, b: &mut Builder) -> Option<String> {
    Some(match dim {
        Dim::Page => format!("(CASE WHEN e.event IN ({}) THEN e.path END)", pageview_list()),
        Dim::Event => "e.event".into(),
        Dim::Outbound => {
            format!("(CASE WHEN e.event = '{OUTBOUND_LINK}' THEN json_extract(e.properties, '$.href') END)")
        }
        Dim::Download => {
            format!("(CASE WHEN e.event = '{FILE_DOWNLOAD}' THEN json_extract(e.properties, '$.href') END)")
        }
        Dim::Property { event, key } => {
            let ev = b.bind(json!(event));
            let path = b.bind(json!(format!("$.\"{}\"", key.replace('"', "\\\""))));
            format!(
                "(CASE WHEN e.event = {ev} THEN (CASE json_type(e.properties, {path}) \
                 WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' \
                 WHEN 'text' THEN json_extract(e.properties, {path}) \
                 WHEN 'integer' THEN CAST(json_extract(e.properties, {path}) AS TEXT) \
                 WHEN 'real' THEN CAST(json_extract(e.properties, {path}) AS TEXT) END) END)"
            )
        }
        _ => return None,
    })
}

/// The condition for one goal over `e`: its event, or a page view whose
/// path matches. `*` stays within a path segment: GLOB's `*` crosses `/`,
/// so the path must also have as many `/` as the pattern (exact for
/// patterns without `**`, which GLOB matches as any run).
fn goal_condition(kind: &GoalKind, b: &mut Builder) -> String {
    match kind {
        GoalKind::Event(name) => format!("e.event = {}", b.bind(json!(name))),
        GoalKind::Page(pattern) => {
            let escaped: String = pattern
                .chars()
                .map(|c| match c {
                    '[' => "[[]".to_owned(),
                    '?' => "[?]".to_owned(),
                    other => other.to_string(),
                })
                .collect();
            let glob = b.bind(json!(escaped.replace("**", "*")));
            let mut cond = format!("e.event IN ({}) AND e.path GLOB {glob}", pageview_list());
            if !pattern.contains("**") {
                let slashes = pattern.matches('/').count();
                cond.push_str(&format!(
                    " AND length(e.path) - length(replace(e.path, '/', '')) = {slashes}"
                ));
            }
            cond
        }
    }
}

fn condition(expr: &str, filter: &Filter, b: &mut Builder) -> String {
    let values = b.bind(json!(filter.values));
    let any = format!("COALESCE({expr}, '') IN (SELECT value FROM json_each({values}))");
    match filter.op {
        Op::Is => any,
        Op::IsNot => format!("NOT ({any})"),
        Op::Contains => format!(
            "EXISTS (SELECT 1 FROM json_each({values}) f WHERE instr(lower(COALESCE({expr}, '')), lower(f.value)) > 0)"
        ),
    }
}

/// The filters split by the table they read.
struct Conditions {
    visit: Vec<String>,
    event: Vec<String>,
}

fn conditions(filters: &[Filter], site: &Site<'_>, b: &mut Builder) -> Conditions {
    let mut c = Conditions {
        visit: Vec::new(),
        event: Vec::new(),
    };
    for f in filters {
        if let Some(column) = visit_column(&f.dim) {
            c.visit.push(condition(&column, f, b));
        } else if f.dim == Dim::Goal {
            let mut any = Vec::new();
            for goal in site.goals.iter().filter(|g| f.values.iter().any(|v| v == &g.name)) {
                any.push(format!("({})", goal_condition(&goal.kind, b)));
            }
            let matched = if any.is_empty() { "0".into() } else { any.join(" OR ") };
            c.event.push(match f.op {
                Op::IsNot => format!("NOT ({matched})"),
                _ => format!("({matched})"),
            });
        } else if let Some(expr) = event_expr(&f.dim, b) {
            c.event.push(condition(&expr, f, b));
        }
    }
    c
}

/// Visits kept by `c`: started in the range, matching the visit filters,
/// and holding an event that matches the event filters.
fn filtered_visits(c: &Conditions, project: &str, range: &Range, b: &mut Builder) -> String {
    let p = b.bind(json!(project));
    let (s, e) = (b.bind(json!(range.start_ms)), b.bind(json!(range.end_ms)));
    let mut sql = format!("SELECT v.* FROM visits v WHERE v.project = {p} AND v.start_ms >= {s} AND v.start_ms < {e}");
    for cond in &c.visit {
        sql.push_str(&format!(" AND {cond}"));
    }
    if !c.event.is_empty() {
        // Events of these visits lie within a day of the range.
        let (ls, le) = (
            b.bind(json!(range.start_ms - crate::time::DAY_MS)),
            b.bind(json!(range.end_ms + crate::time::DAY_MS)),
        );
        sql.push_str(&format!(
            " AND v.visit_id IN (SELECT e.visit_id FROM events e WHERE e.project = {p} AND e.time_ms >= {ls} \
             AND e.time_ms < {le} AND {})",
            c.event.join(" AND ")
        ));
    }
    sql
}

/// Events kept by `c`: in the range, matching the event filters, and in a
/// visit that matches the visit filters.
fn filtered_events(c: &Conditions, project: &str, range: &Range, b: &mut Builder) -> String {
    let p = b.bind(json!(project));
    let (s, e) = (b.bind(json!(range.start_ms)), b.bind(json!(range.end_ms)));
    let mut sql = format!(
        "SELECT e.*, NULLIF(COALESCE(e.device_id, (SELECT i.canonical_id FROM identities i \
         WHERE i.project = e.project AND i.distinct_id = e.distinct_id), e.distinct_id), '') AS visitor FROM events e \
         WHERE e.project = {p} AND e.time_ms >= {s} AND e.time_ms < {e}"
    );
    for cond in &c.event {
        sql.push_str(&format!(" AND {cond}"));
    }
    if !c.visit.is_empty() {
        sql.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM visits v WHERE v.project = e.project AND v.visit_id = e.visit_id AND {})",
            c.visit.join(" AND ")
        ));
    }
    sql
}

fn revenue_expr(site: &Site<'_>, b: &mut Builder) -> String {
    let currency = b.bind(json!(site.currency.to_ascii_uppercase()));
    format!(
        "COALESCE(SUM(CASE WHEN upper(json_extract(properties, '$.\"$revenue\".currency')) = {currency} \
         THEN CAST(round(json_extract(properties, '$.\"$revenue\".amount') * 1000000) AS INTEGER) END), 0)"
    )
}

/// Totals from raw rows under filters: one row of `visitors`, counters.
pub fn raw_totals(site: &Site<'_>, range: &Range, filters: &[Filter]) -> Statement {
    let mut b = Builder::new();
    let c = conditions(filters, site, &mut b);
    let fv = filtered_visits(&c, site.project, range, &mut b);
    let fe = filtered_events(&c, site.project, range, &mut b);
    let revenue = revenue_expr(site, &mut b);
    b.finish(format!(
        "WITH fv AS ({fv}), fe AS ({fe}) SELECT \
         (SELECT COUNT(DISTINCT visitor) FROM fe) AS visitors, \
         (SELECT COUNT(*) FROM fv) AS visits, \
         (SELECT COUNT(*) FROM fe WHERE event IN ({pv})) AS pageviews, \
         (SELECT COUNT(*) FROM fe) AS events, \
         (SELECT COALESCE(SUM(bounced), 0) FROM fv) AS bounces, \
         (SELECT COALESCE(SUM(last_ms - start_ms), 0) FROM fv) AS duration_ms, \
         (SELECT {revenue} FROM fe) AS revenue_micros",
        pv = pageview_list()
    ))
}

/// A series from raw rows under filters: `buckets` are (label, start,
/// end) instants; one row per bucket with data.
pub fn raw_series(site: &Site<'_>, range: &Range, filters: &[Filter], buckets: &[(String, i64, i64)]) -> Statement {
    let mut b = Builder::new();
    let c = conditions(filters, site, &mut b);
    let fv = filtered_visits(&c, site.project, range, &mut b);
    let fe = filtered_events(&c, site.project, range, &mut b);
    let list = b.bind(Value::Array(
        buckets.iter().map(|(label, s, e)| json!([label, s, e])).collect(),
    ));
    let bucket = |t: &str| {
        format!(
            "JOIN json_each({list}) bk ON {t} >= json_extract(bk.value, '$[1]') AND {t} < json_extract(bk.value, '$[2]')"
        )
    };
    b.finish(format!(
        "WITH fv AS ({fv}), fe AS ({fe}), \
         ev AS (SELECT json_extract(bk.value, '$[0]') AS period, COUNT(DISTINCT visitor) AS visitors, \
           SUM(event IN ({pv})) AS pageviews, COUNT(*) AS events FROM fe {be} GROUP BY 1), \
         vi AS (SELECT json_extract(bk.value, '$[0]') AS period, COUNT(*) AS visits, SUM(bounced) AS bounces, \
           SUM(last_ms - start_ms) AS duration_ms FROM fv {bv} GROUP BY 1) \
         SELECT p.period AS period, COALESCE(ev.visitors, 0) AS visitors, COALESCE(vi.visits, 0) AS visits, \
           COALESCE(ev.pageviews, 0) AS pageviews, COALESCE(ev.events, 0) AS events, COALESCE(vi.bounces, 0) AS bounces, \
           COALESCE(vi.duration_ms, 0) AS duration_ms, 0 AS revenue_micros \
         FROM (SELECT period FROM ev UNION SELECT period FROM vi) p LEFT JOIN ev ON ev.period = p.period \
         LEFT JOIN vi ON vi.period = p.period ORDER BY p.period",
        pv = pageview_list(),
        be = bucket("fe.time_ms"),
        bv = bucket("fv.start_ms"),
    ))
}

/// A breakdown page from raw rows under filters, ranked as the rollup
/// plan ranks, with exact visitors.
pub fn raw_breakdown(
    site: &Site<'_>,
    range: &Range,
    filters: &[Filter],
    dim: &Dim,
    limit: u32,
    offset: u64,
) -> Statement {
    let mut b = Builder::new();
    let c = conditions(filters, site, &mut b);
    let fv = filtered_visits(&c, site.project, range, &mut b);
    let fe = filtered_events(&c, site.project, range, &mut b);
    let sort = sort_column(dim);
    let grouped = if let Some(column) = visit_column(dim) {
        format!(
            "SELECT {column} AS value, COUNT(DISTINCT v.visitor) AS visitors, COUNT(*) AS visits, \
             SUM(v.pageviews) AS pageviews, SUM(v.events) AS events, SUM(v.bounced) AS bounces, \
             SUM(v.last_ms - v.start_ms) AS duration_ms, 0 AS revenue_micros FROM fv v GROUP BY 1"
        )
    } else if *dim == Dim::Goal {
        let revenue = revenue_expr(site, &mut b);
        let mut parts = Vec::new();
        for goal in site.goals {
            let name = b.bind(json!(goal.name));
            let cond = goal_condition(&goal.kind, &mut b);
            parts.push(format!(
                "SELECT {name} AS value, COUNT(DISTINCT visitor) AS visitors, 0 AS visits, \
                 SUM(event IN ({pv})) AS pageviews, COUNT(*) AS events, 0 AS bounces, 0 AS duration_ms, \
                 {revenue} AS revenue_micros FROM fe e WHERE {cond}",
                pv = pageview_list()
            ));
        }
        if parts.is_empty() {
            "SELECT NULL AS value, 0 AS visitors, 0 AS visits, 0 AS pageviews, 0 AS events, 0 AS bounces, \
             0 AS duration_ms, 0 AS revenue_micros WHERE 0"
                .into()
        } else {
            parts.join(" UNION ALL ")
        }
    } else {
        let expr = event_expr(dim, &mut b).unwrap_or_else(|| "NULL".into());
        let revenue = revenue_expr(site, &mut b);
        format!(
            "SELECT {expr} AS value, COUNT(DISTINCT visitor) AS visitors, 0 AS visits, \
             SUM(e.event IN ({pv})) AS pageviews, COUNT(*) AS events, 0 AS bounces, 0 AS duration_ms, \
             {revenue} AS revenue_micros FROM fe e WHERE {expr} IS NOT NULL GROUP BY 1",
            pv = pageview_list()
        )
    };
    let (l, o) = (b.bind(json!(limit + 1)), b.bind(json!(offset)));
    b.finish(format!(
        "WITH fv AS ({fv}), fe AS ({fe}) SELECT * FROM ({grouped}) WHERE {sort} > 0 \
         ORDER BY {sort} DESC, value LIMIT {l} OFFSET {o}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::readmodel::query::parse_filters;
    use crate::readmodel::Goal;
    use crate::zone::Zone;

    #[test]
    fn every_input_is_a_parameter() {
        let zone = Zone::utc();
        let goals = vec![Goal::page("G", "/a'; DROP TABLE events; --*")];
        let site = Site {
            project: "p'--",
            zone: &zone,
            goals: &goals,
            currency: "EUR",
            properties: &[],
        };
        let range = Range::new(&zone, "2026-01-01", "2026-01-31").expect("range");
        let filters = parse_filters(
            r#"[["is","source","x' OR 1=1 --"],["contains","page","%_"],["is","goal","G"],["is","prop:e'v:k\"ey","1"]]"#,
        )
        .expect("filters");
        for st in [
            raw_totals(&site, &range, &filters),
            raw_breakdown(&site, &range, &filters, &Dim::Page, 10, 0),
            raw_breakdown(&site, &range, &filters, &Dim::Goal, 10, 0),
            breakdown_rank(site.project, &Dim::Source, &range.cover(), 10, 0),
        ] {
            for needle in ["DROP", "OR 1=1", "p'--", "e'v"] {
                assert!(!st.sql.contains(needle), "{needle} leaked into {}", st.sql);
            }
            assert!(st.params.len() < 100, "D1 binds at most 100 parameters");
            let highest = (1..=st.params.len()).rev().find(|n| st.sql.contains(&format!("?{n}")));
            assert_eq!(highest, Some(st.params.len()), "every parameter is used");
        }
    }

    #[test]
    fn filters_split_by_table() {
        let zone = Zone::utc();
        let site = Site::plain("p", &zone);
        let mut b = Builder::new();
        let f =
            parse_filters(r#"[["is","country","DE"],["is_not","page","/x"],["contains","browser_version","Chrome"]]"#)
                .expect("filters");
        let c = conditions(&f, &site, &mut b);
        assert_eq!((c.visit.len(), c.event.len()), (2, 1));
        assert!(c.event[0].starts_with("NOT ("));
        assert!(c.visit[1].contains("instr(lower("));
    }
}
