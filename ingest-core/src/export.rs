//! Reading events back: paging for `GET /public/events` (Emp-Mix) and date
//! ranges for the raw NDJSON export and stats.

use crate::error::IngestError;
use crate::limits::{EXPORT_DEFAULT_LIMIT, EXPORT_DEFAULT_RANGE_DAYS, EXPORT_MAX_LIMIT, EXPORT_MAX_RANGE_DAYS};
// Named here too: the export route reads them beside the cursor.
pub use crate::limits::{EXPORT_PAGE_ROWS, EXPORT_STREAM_MAX_ROWS};
use crate::time::DAY_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u32,
    /// 1-based.
    pub page: u32,
}

impl Page {
    pub fn offset(self) -> u64 {
        u64::from(self.page - 1) * u64::from(self.limit)
    }

    /// Reads `limit` and `page` from a query string. A limit past the maximum
    /// is an error, not silently cut, so a client never believes it has
    /// everything when it does not.
    pub fn from_query(query: &str) -> Result<Page, IngestError> {
        let mut page = Page {
            limit: EXPORT_DEFAULT_LIMIT,
            page: 1,
        };
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "limit" => {
                    page.limit = positive(&value, "limit")?;
                    if page.limit > EXPORT_MAX_LIMIT {
                        return Err(IngestError::BadRequest(format!(
                            "limit must be at most {EXPORT_MAX_LIMIT}"
                        )));
                    }
                }
                "page" => page.page = positive(&value, "page")?,
                _ => {}
            }
        }
        Ok(page)
    }
}

fn positive(value: &str, name: &str) -> Result<u32, IngestError> {
    match value.trim().parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(IngestError::BadRequest(format!(
            "{name} must be a whole number of at least 1"
        ))),
    }
}

/// A range of whole UTC days, `from` and `to` inclusive, as Mixpanel's
/// `from_date`/`to_date` and our stats API take them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DateRange {
    pub from: String,
    pub to: String,
    /// First millisecond of `from`.
    pub start_ms: i64,
    /// First millisecond after `to`.
    pub end_ms: i64,
}

impl DateRange {
    /// Reads `from`/`to` (or `from_date`/`to_date`) as `YYYY-MM-DD`. Without
    /// them, the last [`EXPORT_DEFAULT_RANGE_DAYS`] days up to today.
    pub fn from_query(query: &str, now_ms: i64) -> Result<DateRange, IngestError> {
        let mut from = None;
        let mut to = None;
        for (key, value) in form_urlencoded::parse(query.as_bytes()) {
            match key.as_ref() {
                "from" | "from_date" => from = Some(day_start(&value)?),
                "to" | "to_date" => to = Some(day_start(&value)?),
                _ => {}
            }
        }
        let today = now_ms.div_euclid(DAY_MS) * DAY_MS;
        let to = to.unwrap_or(today);
        let from = from.unwrap_or(to - (EXPORT_DEFAULT_RANGE_DAYS - 1) * DAY_MS);
        if from > to {
            return Err(IngestError::BadRequest("from must not be after to".into()));
        }
        if (to - from) / DAY_MS + 1 > EXPORT_MAX_RANGE_DAYS {
            return Err(IngestError::BadRequest(format!(
                "a range covers at most {EXPORT_MAX_RANGE_DAYS} days"
            )));
        }
        Ok(DateRange {
            from: crate::time::utc_day(from),
            to: crate::time::utc_day(to),
            start_ms: from,
            end_ms: to + DAY_MS,
        })
    }

    /// One day: stats are shown by hour instead of by day.
    pub fn is_single_day(&self) -> bool {
        self.end_ms - self.start_ms == DAY_MS
    }
}

/// Milliseconds at the start of a `YYYY-MM-DD` UTC day.
fn day_start(text: &str) -> Result<i64, IngestError> {
    let bad = || {
        IngestError::BadRequest(format!(
            "dates are YYYY-MM-DD, not {:?}",
            text.chars().take(20).collect::<String>()
        ))
    };
    let parts: Vec<&str> = text.trim().split('-').collect();
    let [y, m, d] = parts.as_slice() else { return Err(bad()) };
    if y.len() != 4 || m.len() != 2 || d.len() != 2 {
        return Err(bad());
    }
    let (year, month, day): (i64, i64, i64) = (
        y.parse().map_err(|_| bad())?,
        m.parse().map_err(|_| bad())?,
        d.parse().map_err(|_| bad())?,
    );
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1971 {
        return Err(bad());
    }
    // Civil date to days since epoch (the inverse of time::utc_day).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let ms = days * DAY_MS;
    // 2023-02-31 and friends do not survive the round trip.
    if crate::time::utc_day(ms) != text.trim() {
        return Err(bad());
    }
    Ok(ms)
}

/// One stored event as the raw export reads it.
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ExportRow {
    pub dedup_key: String,
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
    pub region: Option<String>,
    pub city: Option<String>,
    pub path: Option<String>,
    pub hostname: Option<String>,
    pub referrer_source: Option<String>,
    pub channel: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub device: Option<String>,
    pub visit_id: Option<String>,
    /// The person the event's distinct_id belongs to (the identity map's
    /// canonical id), when the query resolved it.
    #[serde(default)]
    pub resolved_distinct_id: Option<String>,
}

/// The columns [`ExportRow`] reads, in SQL.
pub const EXPORT_COLUMNS: &str = "dedup_key, insert_id, event, distinct_id, device_id, time_ms, received_at_ms, url, \
 referrer, title, screen, properties, source, country, region, city, path, hostname, referrer_source, channel, \
 utm_source, utm_medium, utm_campaign, utm_term, utm_content, browser, browser_version, os, device, visit_id";

/// Where an export continues: after this row (rows are ordered by time,
/// then dedup key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub time_ms: i64,
    pub dedup_key: String,
}

impl Cursor {
    pub fn of(row: &ExportRow) -> Cursor {
        Cursor {
            time_ms: row.time_ms as i64,
            dedup_key: row.dedup_key.clone(),
        }
    }

    pub fn parse(text: &str) -> Result<Cursor, IngestError> {
        let bad = || IngestError::BadRequest("after must be a cursor from an earlier export line".into());
        let (time, key) = text.trim().split_once(':').ok_or_else(bad)?;
        let time_ms = time.parse::<i64>().map_err(|_| bad())?;
        if key.is_empty() || key.len() > 200 {
            return Err(bad());
        }
        Ok(Cursor {
            time_ms,
            dedup_key: key.to_owned(),
        })
    }

    pub fn text(&self) -> String {
        format!("{}:{}", self.time_ms, self.dedup_key)
    }
}

/// One export line in Mixpanel's raw-export shape (`{"event",
/// "properties": {time (s), distinct_id, $insert_id, …}}`), with what
/// enrichment worked out under Mixpanel's names where it has them
/// (`$browser`, `$os`, `$city`, `$region`, `mp_country_code`, `utm_*`) and
/// ours elsewhere (`$path`, `$host`, `$source`, `$channel`, `$device_type`,
/// `$visit_id`), and the `cursor` to continue after it.
pub fn export_line(row: &ExportRow) -> String {
    use serde_json::{json, Value};
    let mut properties = match serde_json::from_str::<Value>(&row.properties) {
        Ok(Value::Object(map)) => map,
        _ => Default::default(),
    };
    properties.insert("time".into(), json!((row.time_ms as i64) / 1000));
    // Merged and aliased ids export as their person, as in Mixpanel; the
    // id the event came with stays beside it.
    match row
        .resolved_distinct_id
        .as_ref()
        .filter(|person| **person != row.distinct_id)
    {
        Some(person) => {
            properties.insert("distinct_id".into(), json!(person));
            properties.insert("$distinct_id_before_identity".into(), json!(row.distinct_id));
        }
        None => {
            properties.insert("distinct_id".into(), json!(row.distinct_id));
        }
    }
    properties.insert("$insert_id".into(), json!(row.insert_id));
    properties.insert("mp_processing_time_ms".into(), json!(row.received_at_ms as i64));
    let fields = [
        ("$device_id", &row.device_id),
        ("$current_url", &row.url),
        ("$referrer", &row.referrer),
        ("title", &row.title),
        ("$screen", &row.screen),
        ("mp_country_code", &row.country),
        ("$region", &row.region),
        ("$city", &row.city),
        ("$path", &row.path),
        ("$host", &row.hostname),
        ("$source", &row.referrer_source),
        ("$channel", &row.channel),
        ("utm_source", &row.utm_source),
        ("utm_medium", &row.utm_medium),
        ("utm_campaign", &row.utm_campaign),
        ("utm_term", &row.utm_term),
        ("utm_content", &row.utm_content),
        ("$browser", &row.browser),
        ("$browser_version", &row.browser_version),
        ("$os", &row.os),
        ("$device_type", &row.device),
        ("$visit_id", &row.visit_id),
    ];
    for (key, value) in fields {
        if let Some(value) = value {
            // What the client sent under the same name wins.
            properties.entry(key).or_insert_with(|| json!(value));
        }
    }
    let mut line = json!({"event": row.event, "properties": properties, "cursor": Cursor::of(row).text()}).to_string();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_424_675_883; // 2026-11-23T08:24:35Z

    #[test]
    fn export_lines_and_cursors() {
        let row = ExportRow {
            dedup_key: "abc".into(),
            insert_id: "i-1".into(),
            event: "$pageview".into(),
            distinct_id: "u".into(),
            time_ms: 1_700_000_000_999.0,
            properties: r#"{"utm_source":"client"}"#.into(),
            utm_source: Some("enriched".into()),
            browser: Some("Firefox".into()),
            channel: Some("Direct".into()),
            ..ExportRow::default()
        };
        let line = export_line(&row);
        assert!(line.ends_with('\n'));
        let v: serde_json::Value = serde_json::from_str(line.trim_end()).expect("one JSON line");
        assert_eq!(v["properties"]["time"], 1_700_000_000);
        assert_eq!(v["properties"]["utm_source"], "client");
        assert_eq!(v["properties"]["$browser"], "Firefox");
        assert_eq!(v["properties"]["$channel"], "Direct");
        assert!(v["properties"].get("$city").is_none());
        assert_eq!(v["cursor"], "1700000000999:abc");
        assert_eq!(Cursor::parse("1700000000999:abc"), Ok(Cursor::of(&row)));
        assert!(Cursor::parse("abc").is_err());
        assert!(Cursor::parse("x:abc").is_err());
        assert!(Cursor::parse("1:").is_err());
    }

    #[test]
    fn ranges_default_to_the_last_week() {
        let r = DateRange::from_query("", NOW).expect("valid");
        assert_eq!((r.from.as_str(), r.to.as_str()), ("2026-11-17", "2026-11-23"));
        assert_eq!(r.end_ms - r.start_ms, 7 * DAY_MS);
        assert!(r.start_ms <= NOW && NOW < r.end_ms);
    }

    #[test]
    fn ranges_parse_both_spellings_and_single_days() {
        let r = DateRange::from_query("from_date=2024-02-28&to_date=2024-03-01", NOW).expect("valid");
        assert_eq!(r.end_ms - r.start_ms, 3 * DAY_MS, "2024 is a leap year");
        let one = DateRange::from_query("from=2026-11-23&to=2026-11-23", NOW).expect("valid");
        assert!(one.is_single_day());
        assert_eq!(crate::time::utc_day(one.start_ms), "2026-11-23");
    }

    #[test]
    fn range_length_at_and_past_limit() {
        assert!(
            DateRange::from_query("from=2025-01-01&to=2026-01-01", NOW).is_ok(),
            "366 days"
        );
        assert!(
            DateRange::from_query("from=2025-01-01&to=2026-01-02", NOW).is_err(),
            "367 days"
        );
    }

    #[test]
    fn bad_dates_are_refused() {
        for q in [
            "from=2023-02-31",
            "from=23-01-01",
            "from=2023-1-1",
            "from=x",
            "from=2026-11-20&to=2026-11-19",
            "to=1970-01-01",
        ] {
            assert!(DateRange::from_query(q, NOW).is_err(), "{q}");
        }
    }

    #[test]
    fn defaults_and_offsets() {
        assert_eq!(Page::from_query(""), Ok(Page { limit: 50, page: 1 }));
        let p = Page::from_query("limit=10&page=3").expect("valid");
        assert_eq!((p.limit, p.page, p.offset()), (10, 3, 20));
    }

    #[test]
    fn limit_at_and_past_maximum() {
        assert_eq!(Page::from_query("limit=10000").map(|p| p.limit), Ok(EXPORT_MAX_LIMIT));
        assert!(Page::from_query("limit=10001").is_err());
        for bad in ["limit=0", "limit=-1", "limit=x", "page=0", "page=1.5"] {
            assert!(Page::from_query(bad).is_err(), "{bad}");
        }
    }
}
