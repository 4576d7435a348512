//! Turns the rows a stats plan returns into the API's numbers: counters
//! summed, visitor sketches merged, and the derived metrics (views per
//! visit, bounce rate, visit duration) computed in one place.

use super::rollup::{visit_dims, Dim, REVENUE_SCALE};
use super::visit::Visit;
use crate::sketch::{hash_id, Sketch};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;

/// Summed counters and merged visitors of some rows.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    sketch: Sketch,
    /// Exact visitors, when the rows came from the raw plan.
    exact_visitors: Option<u64>,
    pub visits: i64,
    pub pageviews: i64,
    pub events: i64,
    pub bounces: i64,
    pub duration_ms: i64,
    pub revenue_micros: i64,
}

fn int(row: &Value, key: &str) -> i64 {
    match row.get(key) {
        Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)).unwrap_or(0),
        Some(Value::String(s)) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// A row's bucket or value as text (hour rows carry a number).
pub fn text(row: &Value, key: &str) -> String {
    match row.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.as_i64().map_or_else(|| n.to_string(), |i| i.to_string()),
        _ => String::new(),
    }
}

impl Metrics {
    /// Adds a row: `visitors` is a sketch (rollups) or a count (raw).
    pub fn add(&mut self, row: &Value) {
        match row.get("visitors") {
            Some(Value::String(encoded)) => {
                // A damaged sketch costs its visitors, not the report.
                if let Ok(s) = Sketch::decode(encoded) {
                    self.sketch.merge(&s);
                }
            }
            Some(Value::Number(_)) => {
                *self.exact_visitors.get_or_insert(0) += int(row, "visitors") as u64;
            }
            _ => {}
        }
        self.visits += int(row, "visits");
        self.pageviews += int(row, "pageviews");
        self.events += int(row, "events");
        self.bounces += int(row, "bounces");
        self.duration_ms += int(row, "duration_ms");
        self.revenue_micros += int(row, "revenue_micros");
    }

    pub fn merge_sketch(&mut self, encoded: &str) {
        if let Ok(s) = Sketch::decode(encoded) {
            self.sketch.merge(&s);
        }
    }

    pub fn visitors(&mut self) -> u64 {
        match self.exact_visitors {
            Some(n) => n,
            None => self.sketch.estimate(),
        }
    }

    /// The API's numbers. Rates are rounded here and nowhere else:
    /// views per visit to two decimals, bounce rate to a whole percent,
    /// visit duration to whole seconds (means over visits).
    pub fn to_json(&mut self) -> Value {
        let visits = self.visits.max(0);
        let per_visit = |n: i64| if visits == 0 { 0.0 } else { n as f64 / visits as f64 };
        // A hundredfold share in one division, so an exact half (87 views
        // over 40 visits: 217.5) rounds up; dividing first gives
        // 2.17499… and rounds down.
        let percent = |n: i64| per_visit(n.saturating_mul(100));
        json!({
            "visitors": self.visitors(),
            "visits": visits,
            "pageviews": self.pageviews,
            "events": self.events,
            "bounces": self.bounces,
            "duration_ms": self.duration_ms,
            "views_per_visit": percent(self.pageviews).round() / 100.0,
            "bounce_rate": percent(self.bounces).round() as i64,
            "visit_duration": (per_visit(self.duration_ms) / 1000.0).round() as i64,
            "revenue": self.revenue_micros as f64 / REVENUE_SCALE,
        })
    }
}

/// Sums rows into one set of metrics.
pub fn totals(rows: &[Value]) -> Metrics {
    let mut m = Metrics::default();
    for row in rows {
        m.add(row);
    }
    m
}

/// A series: one point per bucket, in order, zero where no row fell.
/// `buckets` pairs each period a row may carry with the bucket it counts
/// in, and `labels` lists the buckets in order.
pub fn series(rows: &[Value], buckets: &[(String, String)], labels: &[String]) -> Vec<Value> {
    let bucket_of: BTreeMap<&str, &str> = buckets.iter().map(|(p, b)| (p.as_str(), b.as_str())).collect();
    let mut points: BTreeMap<String, Metrics> = labels.iter().map(|l| (l.clone(), Metrics::default())).collect();
    for row in rows {
        let period = text(row, "period");
        let bucket = bucket_of
            .get(period.as_str())
            .copied()
            .unwrap_or(period.as_str())
            .to_owned();
        if let Some(m) = points.get_mut(&bucket) {
            m.add(row);
        }
    }
    labels
        .iter()
        .map(|label| {
            let mut point = points.remove(label).unwrap_or_default().to_json();
            if let Value::Object(map) = &mut point {
                map.insert("bucket".into(), json!(label));
            }
            point
        })
        .collect()
}

/// Visitors of visits not final yet, per value (see [`open_visitors`]).
pub type OpenVisitors = BTreeMap<String, Vec<u64>>;

/// Breakdown rows: ranked rows (counters) with each value's visitors from
/// its sketches and the open visits (rollups) or its own count (raw). `""`
/// is shown as null.
pub fn breakdown(
    ranked: &[Value],
    sketches: &[Value],
    open: Option<&OpenVisitors>,
    limit: usize,
) -> (Vec<Value>, bool) {
    let mut merged: BTreeMap<String, Metrics> = BTreeMap::new();
    for row in sketches {
        if let Some(Value::String(encoded)) = row.get("visitors") {
            merged.entry(text(row, "value")).or_default().merge_sketch(encoded);
        }
    }
    for (value, hashes) in open.into_iter().flatten() {
        let m = merged.entry(value.clone()).or_default();
        for hash in hashes {
            m.sketch.insert_hash(*hash);
        }
    }
    let more = ranked.len() > limit;
    let rows = ranked
        .iter()
        .take(limit)
        .map(|row| {
            let value = text(row, "value");
            let mut m = merged.remove(&value).unwrap_or_default();
            let mut counts = row.clone();
            if let Value::Object(map) = &mut counts {
                // Visitors come from the sketches, not the ranked row.
                if !matches!(map.get("visitors"), Some(Value::Number(_))) {
                    map.remove("visitors");
                }
            }
            m.add(&counts);
            let mut out = m.to_json();
            if let Value::Object(map) = &mut out {
                map.insert(
                    "value".into(),
                    if value.is_empty() { Value::Null } else { json!(value) },
                );
            }
            out
        })
        .collect();
    (rows, more)
}

/// The visitors of visits not final yet, per visit-level dimension and
/// value: reports add them to the sketches, which hold final visits only.
pub fn open_visitors(visits: &[Visit]) -> BTreeMap<Dim, OpenVisitors> {
    let mut out: BTreeMap<Dim, OpenVisitors> = BTreeMap::new();
    for visit in visits.iter().filter(|v| !v.finalized) {
        let who = hash_id(&visit.visitor);
        for (dim, value) in visit_dims(visit) {
            out.entry(dim).or_default().entry(value).or_default().push(who);
        }
    }
    out
}

/// Adds conversion rates (converting visitors over all visitors, in whole
/// percent to one decimal) to goal rows.
pub fn with_conversion_rates(rows: &mut [Value], all_visitors: u64) {
    for row in rows {
        let converted = row.get("visitors").and_then(Value::as_u64).unwrap_or(0);
        let rate = if all_visitors == 0 {
            0.0
        } else {
            (converted as f64 * 1000.0 / all_visitors as f64).round() / 10.0
        };
        if let Value::Object(map) = row {
            map.insert("conversion_rate".into(), json!(rate));
        }
    }
}

/// An object of named values.
pub fn object(entries: Vec<(&str, Value)>) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect::<Map<_, _>>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sketch_of(ids: &[&str]) -> String {
        let mut s = Sketch::new();
        for id in ids {
            s.insert(id);
        }
        s.encode()
    }

    #[test]
    fn rollup_rows_merge_visitors_and_derive_rates() {
        let rows = vec![
            json!({"period": "2026-01-01", "visitors": sketch_of(&["a", "b"]), "visits": 3, "pageviews": 7,
                   "events": 9, "bounces": 1, "duration_ms": 90_000, "revenue_micros": 1_500_000}),
            json!({"period": "2026-01-02", "visitors": sketch_of(&["b", "c"]), "visits": 1, "pageviews": 1,
                   "events": 1, "bounces": 1, "duration_ms": 0, "revenue_micros": 0}),
        ];
        let out = totals(&rows).to_json();
        assert_eq!(out["visitors"], 3);
        assert_eq!(out["visits"], 4);
        assert_eq!(out["views_per_visit"], 2.0);
        assert_eq!(out["bounce_rate"], 50);
        assert_eq!(out["visit_duration"], 23, "90 s over 4 visits, rounded");
        assert_eq!(out["revenue"], 1.5);
        let none = totals(&[]).to_json();
        assert_eq!(
            (none["views_per_visit"].clone(), none["bounce_rate"].clone()),
            (json!(0.0), json!(0))
        );
    }

    #[test]
    fn rates_round_exact_halves_up() {
        // 87 / 40 = 2.175 and 23 / 40 = 57.5 %: dividing before scaling
        // gives 2.17499… and 57.49999… and rounds them down.
        let row = json!({"period": "2026-01-01", "visitors": sketch_of(&["a"]), "visits": 40, "pageviews": 87,
                         "events": 87, "bounces": 23, "duration_ms": 0, "revenue_micros": 0});
        let out = totals(&[row]).to_json();
        assert_eq!(out["views_per_visit"], 2.18);
        assert_eq!(out["bounce_rate"], 58);
    }

    #[test]
    fn series_fill_gaps_and_group_days_into_months() {
        let rows = vec![
            json!({"period": "2026-01-30", "visitors": sketch_of(&["a"]), "visits": 1}),
            json!({"period": "2026-02", "visitors": sketch_of(&["a", "b"]), "visits": 2}),
        ];
        let buckets = vec![
            ("2026-01-30".to_owned(), "2026-01".to_owned()),
            ("2026-02".to_owned(), "2026-02".to_owned()),
            ("2026-03-01".to_owned(), "2026-03".to_owned()),
        ];
        let labels = vec!["2026-01".to_owned(), "2026-02".to_owned(), "2026-03".to_owned()];
        let s = series(&rows, &buckets, &labels);
        assert_eq!(s.len(), 3);
        assert_eq!(
            (s[0]["bucket"].clone(), s[0]["visits"].clone()),
            (json!("2026-01"), json!(1))
        );
        assert_eq!(s[1]["visitors"], 2);
        assert_eq!(s[2]["visits"], 0);
    }

    #[test]
    fn breakdowns_take_visitors_from_sketches_and_say_when_more_follow() {
        let ranked = vec![
            json!({"value": "/a", "pageviews": 5, "visits": 0}),
            json!({"value": "", "pageviews": 3}),
            json!({"value": "/c", "pageviews": 1}),
        ];
        let sketches = vec![
            json!({"value": "/a", "visitors": sketch_of(&["x", "y"])}),
            json!({"value": "/a", "visitors": sketch_of(&["y", "z"])}),
        ];
        let (rows, more) = breakdown(&ranked, &sketches, None, 2);
        assert!(more);
        assert_eq!(rows.len(), 2);
        assert_eq!(
            (rows[0]["value"].clone(), rows[0]["visitors"].clone()),
            (json!("/a"), json!(3))
        );
        assert_eq!(rows[1]["value"], Value::Null);
        let raw = vec![json!({"value": "DE", "visitors": 4, "visits": 5})];
        let (rows, more) = breakdown(&raw, &[], None, 10);
        assert!(!more);
        assert_eq!(rows[0]["visitors"], 4);
        let mut goals = vec![json!({"visitors": 1}), json!({"visitors": 2})];
        with_conversion_rates(&mut goals, 3);
        assert_eq!(goals[0]["conversion_rate"], 33.3);
        assert_eq!(goals[1]["conversion_rate"], 66.7);
    }
}
