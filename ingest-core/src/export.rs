//! Reading events back: paging for `GET /public/events` (Emp-Mix) and date
//! ranges for the raw NDJSON export and stats.

use crate::error::IngestError;
use crate::limits::{EXPORT_DEFAULT_LIMIT, EXPORT_MAX_LIMIT};

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

/// Longest range a stats or export request may cover (days).
pub const MAX_RANGE_DAYS: i64 = 366;
/// Days covered when a request names no range.
pub const DEFAULT_RANGE_DAYS: i64 = 7;
/// Rows one NDJSON export response may carry (Mixpanel's export has a
/// `limit` parameter with the same ceiling).
pub const EXPORT_NDJSON_MAX_ROWS: u32 = 100_000;
const DAY_MS: i64 = 86_400_000;

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
    /// them, the last [`DEFAULT_RANGE_DAYS`] days up to today.
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
        let from = from.unwrap_or(to - (DEFAULT_RANGE_DAYS - 1) * DAY_MS);
        if from > to {
            return Err(IngestError::BadRequest("from must not be after to".into()));
        }
        if (to - from) / DAY_MS + 1 > MAX_RANGE_DAYS {
            return Err(IngestError::BadRequest(format!(
                "a range covers at most {MAX_RANGE_DAYS} days"
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

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_795_424_675_883; // 2026-11-23T08:24:35Z

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
