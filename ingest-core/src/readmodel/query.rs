//! What a stats request asks: a range of local days (and the period before
//! it, for comparison), filters, breakdowns and paging. Parsed here, once,
//! into typed values; the worker only runs the SQL [`super::sql`] builds.

use super::rollup::Dim;
use crate::error::IngestError;
use crate::limits::{
    DEFAULT_BREAKDOWN_LIMIT, MAX_BREAKDOWN_LIMIT, MAX_DAILY_SERIES_DAYS, MAX_FILTERS, MAX_FILTER_VALUES,
    MAX_FILTER_VALUE_CHARS, STATS_MAX_RANGE_DAYS,
};
use crate::time::DAY_MS;
use crate::zone::Zone;
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Granularity {
    Hour,
    Day,
    Month,
}

impl Granularity {
    pub fn as_str(self) -> &'static str {
        match self {
            Granularity::Hour => "hour",
            Granularity::Day => "day",
            Granularity::Month => "month",
        }
    }
}

/// Whole local days `from..=to` in a project's zone.
#[derive(Debug, Clone, PartialEq)]
pub struct Range {
    pub from: String,
    pub to: String,
    pub start_ms: i64,
    pub end_ms: i64,
    pub days: i64,
}

impl Range {
    pub fn new(zone: &Zone, from: &str, to: &str) -> Result<Range, IngestError> {
        let bad = |e: crate::zone::ZoneError| IngestError::BadRequest(e.to_string());
        let days = Zone::days_between(from, to).map_err(bad)?;
        if days < 1 {
            return Err(IngestError::BadRequest("from must not be after to".into()));
        }
        if days > STATS_MAX_RANGE_DAYS {
            return Err(IngestError::BadRequest(format!(
                "a range covers at most {STATS_MAX_RANGE_DAYS} days"
            )));
        }
        Ok(Range {
            from: from.to_owned(),
            to: to.to_owned(),
            start_ms: zone.day_start(from).map_err(bad)?,
            end_ms: zone.day_end(to).map_err(bad)?,
            days,
        })
    }

    pub fn granularity(&self) -> Granularity {
        match self.days {
            1 => Granularity::Hour,
            d if d <= MAX_DAILY_SERIES_DAYS => Granularity::Day,
            _ => Granularity::Month,
        }
    }

    /// The same number of days just before this range.
    pub fn previous(&self, zone: &Zone) -> Result<Range, IngestError> {
        let bad = |e: crate::zone::ZoneError| IngestError::BadRequest(e.to_string());
        let to = Zone::add_days(&self.from, -1).map_err(bad)?;
        let from = Zone::add_days(&self.from, -self.days).map_err(bad)?;
        Range::new(zone, &from, &to)
    }

    /// Every local day of the range.
    pub fn day_list(&self) -> Vec<String> {
        (0..self.days)
            .filter_map(|i| Zone::add_days(&self.from, i).ok())
            .collect()
    }

    /// The fewest rollup periods that cover the range exactly: whole
    /// months where the range holds them, days elsewhere.
    pub fn cover(&self) -> Vec<String> {
        let days = self.day_list();
        let mut periods = Vec::new();
        let mut i = 0;
        while i < days.len() {
            let month = &days[i][..7];
            let run = days[i..].iter().take_while(|d| d.starts_with(month)).count();
            let starts_month = days[i].ends_with("-01");
            let ends_month = Zone::add_days(&days[i + run - 1], 1).is_ok_and(|next| !next.starts_with(month));
            if starts_month && ends_month {
                periods.push(month.to_owned());
            } else {
                periods.extend(days[i..i + run].iter().cloned());
            }
            i += run;
        }
        periods
    }

    /// The periods a series is read from, each with the bucket it counts in:
    /// days by themselves, or grouped into their months.
    pub fn series_periods(&self) -> Vec<(String, String)> {
        match self.granularity() {
            Granularity::Month => self
                .cover()
                .into_iter()
                .map(|p| (p.clone(), p[..7].to_owned()))
                .collect(),
            _ => self.day_list().into_iter().map(|d| (d.clone(), d)).collect(),
        }
    }
}

/// Resolves `period=` (or `from`/`to`) against today in the project's zone.
/// Periods: `day` (today), `yesterday`, `7d`, `30d`, `month` (this month
/// to date), `last_month`, `12mo`, `custom` (with `from` and `to`). With
/// neither, the last 30 days.
pub fn resolve_range(query: &str, zone: &Zone, now_ms: i64) -> Result<Range, IngestError> {
    let mut period = None;
    let (mut from, mut to) = (None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "period" => period = Some(value.into_owned()),
            "from" | "from_date" => from = Some(value.into_owned()),
            "to" | "to_date" => to = Some(value.into_owned()),
            _ => {}
        }
    }
    let today = zone.day(now_ms);
    let bad = |e: crate::zone::ZoneError| IngestError::BadRequest(e.to_string());
    let back = |n: i64| Zone::add_days(&today, -n).map_err(bad);
    let month_start = format!("{}-01", &today[..7]);
    match period.as_deref() {
        Some("day") => Range::new(zone, &today, &today),
        Some("yesterday") => {
            let y = back(1)?;
            Range::new(zone, &y, &y)
        }
        Some("7d") => Range::new(zone, &back(6)?, &today),
        Some("30d") => Range::new(zone, &back(29)?, &today),
        Some("month") => Range::new(zone, &month_start, &today),
        Some("last_month") => {
            let last_day = Zone::add_days(&month_start, -1).map_err(bad)?;
            Range::new(zone, &format!("{}-01", &last_day[..7]), &last_day)
        }
        Some("12mo") => {
            // Twelve whole months, this one included.
            let mut first = month_start.clone();
            for _ in 0..11 {
                let prev = Zone::add_days(&first, -1).map_err(bad)?;
                first = format!("{}-01", &prev[..7]);
            }
            Range::new(zone, &first, &today)
        }
        Some("custom") | None => match (from, to) {
            (Some(f), Some(t)) => Range::new(zone, &f, &t),
            (Some(_), None) | (None, Some(_)) => Err(IngestError::BadRequest("give both from and to".into())),
            (None, None) if period.is_none() => Range::new(zone, &back(29)?, &today),
            (None, None) => Err(IngestError::BadRequest("period=custom needs from and to".into())),
        },
        Some(other) => Err(IngestError::BadRequest(format!(
            "unknown period {:?}: use day, yesterday, 7d, 30d, month, last_month, 12mo or custom",
            other.chars().take(20).collect::<String>()
        ))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Is,
    IsNot,
    Contains,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub op: Op,
    pub dim: Dim,
    /// `""` stands for "none" (direct traffic, an unknown country).
    pub values: Vec<String>,
}

/// Reads `filters=` as JSON: `[["is", "source", ["Google", "Bing"]],
/// ["contains", "page", "blog"], ["is_not", "country", "DE"]]`.
pub fn parse_filters(text: &str) -> Result<Vec<Filter>, IngestError> {
    let bad = |m: &str| IngestError::BadRequest(format!("filters: {m}"));
    let Value::Array(items) = serde_json::from_str(text).map_err(|_| bad("must be a JSON array"))? else {
        return Err(bad("must be a JSON array"));
    };
    if items.len() > MAX_FILTERS {
        return Err(bad(&format!("at most {MAX_FILTERS} filters")));
    }
    items
        .iter()
        .map(|item| {
            let Some([op, dim, values]) = item.as_array().map(Vec::as_slice) else {
                return Err(bad("each filter is [operator, dimension, value or values]"));
            };
            let op = match op.as_str() {
                Some("is") => Op::Is,
                Some("is_not") => Op::IsNot,
                Some("contains") => Op::Contains,
                _ => return Err(bad("operators are is, is_not and contains")),
            };
            let dim = dim
                .as_str()
                .and_then(Dim::from_name)
                .ok_or_else(|| bad("unknown dimension"))?;
            let values: Vec<String> = match values {
                Value::Array(list) => list.iter().map(value_text).collect::<Option<_>>(),
                one => value_text(one).map(|v| vec![v]),
            }
            .ok_or_else(|| bad("values are strings"))?;
            if values.is_empty() || values.len() > MAX_FILTER_VALUES {
                return Err(bad(&format!("a filter has 1 to {MAX_FILTER_VALUES} values")));
            }
            if values.iter().any(|v| v.chars().count() > MAX_FILTER_VALUE_CHARS) {
                return Err(bad(&format!("a value has at most {MAX_FILTER_VALUE_CHARS} characters")));
            }
            Ok(Filter { op, dim, values })
        })
        .collect()
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => Some(String::new()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A breakdown page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paging {
    pub limit: u32,
    /// 1-based.
    pub page: u32,
}

impl Paging {
    pub fn from_query(query: &str) -> Result<Paging, IngestError> {
        let mut paging = Paging {
            limit: DEFAULT_BREAKDOWN_LIMIT,
            page: 1,
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            let number = || {
                value
                    .trim()
                    .parse::<u32>()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| IngestError::BadRequest(format!("{key} must be a whole number of at least 1")))
            };
            match key.as_ref() {
                "limit" => {
                    paging.limit = number()?;
                    if paging.limit > MAX_BREAKDOWN_LIMIT {
                        return Err(IngestError::BadRequest(format!(
                            "limit must be at most {MAX_BREAKDOWN_LIMIT}"
                        )));
                    }
                }
                "page" => paging.page = number()?,
                _ => {}
            }
        }
        Ok(paging)
    }

    pub fn offset(self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.limit)
    }
}

/// Today's start in the zone, for "is this range still running".
pub fn is_current(range: &Range, now_ms: i64) -> bool {
    range.start_ms <= now_ms && now_ms < range.end_ms + DAY_MS
}

#[cfg(test)]
mod tests {
    use super::*;

    // 2026-03-31T22:30:00Z: already 1 April in Berlin.
    const NOW: i64 = 1_774_996_200_000;

    #[test]
    fn periods_resolve_in_the_project_zone() {
        let berlin = Zone::named("Europe/Berlin").expect("zone");
        let utc = Zone::utc();
        let r = |q: &str, z: &Zone| resolve_range(q, z, NOW).map(|r| (r.from, r.to));
        assert_eq!(r("period=day", &berlin), Ok(("2026-04-01".into(), "2026-04-01".into())));
        assert_eq!(r("period=day", &utc), Ok(("2026-03-31".into(), "2026-03-31".into())));
        assert_eq!(r("period=7d", &utc), Ok(("2026-03-25".into(), "2026-03-31".into())));
        assert_eq!(r("", &utc), Ok(("2026-03-02".into(), "2026-03-31".into())));
        assert_eq!(
            r("period=month", &berlin),
            Ok(("2026-04-01".into(), "2026-04-01".into()))
        );
        assert_eq!(
            r("period=last_month", &utc),
            Ok(("2026-02-01".into(), "2026-02-28".into()))
        );
        assert_eq!(r("period=12mo", &utc), Ok(("2025-04-01".into(), "2026-03-31".into())));
        assert_eq!(
            r("period=yesterday", &utc),
            Ok(("2026-03-30".into(), "2026-03-30".into()))
        );
        assert_eq!(
            r("from=2026-01-05&to=2026-01-06", &utc),
            Ok(("2026-01-05".into(), "2026-01-06".into()))
        );
        assert!(r("period=custom", &utc).is_err());
        assert!(r("from=2026-01-05", &utc).is_err());
        assert!(r("period=forever", &utc).is_err());
        assert!(r("from=2026-01-06&to=2026-01-05", &utc).is_err());
    }

    #[test]
    fn range_length_at_and_past_the_limit() {
        let utc = Zone::utc();
        let last = Zone::add_days("2024-01-01", STATS_MAX_RANGE_DAYS - 1).expect("date");
        assert!(Range::new(&utc, "2024-01-01", &last).is_ok());
        let past = Zone::add_days("2024-01-01", STATS_MAX_RANGE_DAYS).expect("date");
        assert!(Range::new(&utc, "2024-01-01", &past).is_err());
    }

    #[test]
    fn granularity_and_previous_period() {
        let utc = Zone::utc();
        let one = Range::new(&utc, "2026-03-10", "2026-03-10").expect("range");
        assert_eq!(one.granularity(), Granularity::Hour);
        let month = Range::new(&utc, "2026-03-01", "2026-03-31").expect("range");
        assert_eq!(month.granularity(), Granularity::Day);
        let prev = month.previous(&utc).expect("range");
        assert_eq!(
            (prev.from.as_str(), prev.to.as_str(), prev.days),
            ("2026-01-29", "2026-02-28", 31)
        );
        let daily = Zone::add_days("2026-01-01", MAX_DAILY_SERIES_DAYS - 1).expect("date");
        assert_eq!(
            Range::new(&utc, "2026-01-01", &daily).map(|r| r.granularity()),
            Ok(Granularity::Day)
        );
        let monthly = Zone::add_days("2026-01-01", MAX_DAILY_SERIES_DAYS).expect("date");
        assert_eq!(
            Range::new(&utc, "2026-01-01", &monthly).map(|r| r.granularity()),
            Ok(Granularity::Month)
        );
    }

    #[test]
    fn local_days_of_23_and_25_hours() {
        let berlin = Zone::named("Europe/Berlin").expect("zone");
        let spring = Range::new(&berlin, "2026-03-29", "2026-03-29").expect("range");
        assert_eq!(spring.end_ms - spring.start_ms, 23 * 3_600_000);
        let autumn = Range::new(&berlin, "2026-10-25", "2026-10-25").expect("range");
        assert_eq!(autumn.end_ms - autumn.start_ms, 25 * 3_600_000);
    }

    #[test]
    fn covers_use_whole_months_where_they_can() {
        let utc = Zone::utc();
        let r = Range::new(&utc, "2026-01-30", "2026-03-02").expect("range");
        assert_eq!(
            r.cover(),
            vec!["2026-01-30", "2026-01-31", "2026-02", "2026-03-01", "2026-03-02"]
        );
        let whole = Range::new(&utc, "2026-02-01", "2026-02-28").expect("range");
        assert_eq!(whole.cover(), vec!["2026-02"]);
        let series = Range::new(&utc, "2025-04-15", "2026-03-31")
            .expect("range")
            .series_periods();
        assert_eq!(
            series.first().map(|(p, b)| (p.as_str(), b.as_str())),
            Some(("2025-04-15", "2025-04"))
        );
        assert_eq!(
            series.last().map(|(p, b)| (p.as_str(), b.as_str())),
            Some(("2026-03", "2026-03"))
        );
    }

    #[test]
    fn filters_parse_and_refuse() {
        let f = parse_filters(
            r#"[["is","source",["Google","Bing"]],["contains","page","blog"],["is_not","country",null]]"#,
        )
        .expect("valid filters");
        assert_eq!(f.len(), 3);
        assert_eq!(f[0].values, vec!["Google", "Bing"]);
        assert_eq!((f[1].op, &f[1].dim), (Op::Contains, &Dim::Page));
        assert_eq!(f[2].values, vec![String::new()]);
        let prop = parse_filters(r#"[["is","prop:Signup:plan","pro"]]"#).expect("property filter");
        assert!(matches!(prop[0].dim, Dim::Property { .. }));
        for bad in [
            "{}",
            r#"[["equals","source","x"]]"#,
            r#"[["is","nowhere","x"]]"#,
            r#"[["is","source",[]]]"#,
            r#"[["is","source",[{"a":1}]]]"#,
            r#"[["is","source"]]"#,
        ] {
            assert!(parse_filters(bad).is_err(), "{bad}");
        }
        let at = format!("[{}]", [r#"["is","source","x"]"#; MAX_FILTERS].join(","));
        assert!(parse_filters(&at).is_ok());
        let past = format!("[{}]", [r#"["is","source","x"]"#; MAX_FILTERS + 1].join(","));
        assert!(parse_filters(&past).is_err());
        let long = format!(r#"[["is","page","{}"]]"#, "a".repeat(MAX_FILTER_VALUE_CHARS + 1));
        assert!(parse_filters(&long).is_err());
    }

    #[test]
    fn paging_limits() {
        assert_eq!(Paging::from_query(""), Ok(Paging { limit: 10, page: 1 }));
        assert_eq!(Paging::from_query("limit=1000&page=3").map(|p| p.offset()), Ok(2000));
        assert!(Paging::from_query("limit=1001").is_err());
        assert!(Paging::from_query("page=0").is_err());
    }
}
