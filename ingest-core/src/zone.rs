//! A project's time zone: which local day, month and hour an event falls
//! in, and where a local day starts and ends. Days are not always 24 hours
//! long: a daylight-saving change makes one 23 and another 25.

use crate::time::{DAY_MS, END_OF_TIME_MS, HOUR_MS, MINUTE_MS};
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use jiff::Timestamp;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ZoneError {
    #[error("unknown time zone {0:?} (use an IANA name such as Europe/Berlin)")]
    Unknown(String),
    #[error("dates are YYYY-MM-DD, not {0:?}")]
    BadDate(String),
    #[error("date out of range")]
    OutOfRange,
}

#[derive(Clone)]
pub struct Zone {
    name: String,
    tz: TimeZone,
}

impl fmt::Debug for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Zone({})", self.name)
    }
}

impl PartialEq for Zone {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for Zone {}

impl Default for Zone {
    fn default() -> Self {
        Zone::utc()
    }
}

impl Zone {
    pub fn utc() -> Zone {
        Zone {
            name: "UTC".into(),
            tz: TimeZone::UTC,
        }
    }

    /// An IANA zone name (`Europe/Berlin`); `UTC` for UTC.
    pub fn named(name: &str) -> Result<Zone, ZoneError> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("utc") {
            return Ok(Zone::utc());
        }
        let tz = TimeZone::get(name).map_err(|_| ZoneError::Unknown(name.chars().take(64).collect()))?;
        Ok(Zone {
            name: name.to_owned(),
            tz,
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn local(&self, time_ms: i64) -> DateTime {
        let ts = Timestamp::from_millisecond(time_ms).unwrap_or(Timestamp::UNIX_EPOCH);
        self.tz.to_datetime(ts)
    }

    /// The local calendar day, `YYYY-MM-DD`.
    pub fn day(&self, time_ms: i64) -> String {
        let d = self.local(time_ms).date();
        format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    }

    /// The local calendar month, `YYYY-MM`.
    pub fn month(&self, time_ms: i64) -> String {
        let d = self.local(time_ms).date();
        format!("{:04}-{:02}", d.year(), d.month())
    }

    /// Local date and time to the minute, `YYYY-MM-DDTHH:MM`.
    pub fn label(&self, time_ms: i64) -> String {
        let t = self.local(time_ms);
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}",
            t.year(),
            t.month(),
            t.day(),
            t.hour(),
            t.minute()
        )
    }

    /// The instant the local hour holding `time_ms` began. In the hour a
    /// clock goes back, the two local 01:00s are two different hours.
    pub fn hour_start(&self, time_ms: i64) -> i64 {
        let local = self.local(time_ms);
        let into_hour = i64::from(local.minute()) * MINUTE_MS
            + i64::from(local.second()) * 1000
            + i64::from(local.subsec_nanosecond()) / 1_000_000;
        time_ms - into_hour
    }

    /// The instant the minute holding `time_ms` began (minutes are the
    /// same everywhere).
    pub fn minute_start(time_ms: i64) -> i64 {
        time_ms.div_euclid(MINUTE_MS) * MINUTE_MS
    }

    /// The first instant of a local day.
    pub fn day_start(&self, day: &str) -> Result<i64, ZoneError> {
        let date = parse_date(day)?;
        self.start_of(date)
    }

    fn start_of(&self, date: Date) -> Result<i64, ZoneError> {
        // A day whose midnight falls in a gap starts when the gap ends.
        match self.tz.to_timestamp(date.to_datetime(jiff::civil::Time::midnight())) {
            Ok(ts) => Ok(ts.as_millisecond()),
            // The last days of year 9999 lie past what an instant can hold
            // in some zones: they begin at the end of time.
            Err(_) if date.year() == 9999 => Ok(END_OF_TIME_MS),
            Err(_) => Err(ZoneError::OutOfRange),
        }
    }

    /// The first instant after a local day.
    pub fn day_end(&self, day: &str) -> Result<i64, ZoneError> {
        let date = parse_date(day)?;
        match date.tomorrow() {
            Ok(next) => self.start_of(next),
            // 9999-12-31 has no tomorrow in the calendar.
            Err(_) => Ok(END_OF_TIME_MS + DAY_MS),
        }
    }

    /// The local day `offset` days after `day` (negative: before).
    pub fn add_days(day: &str, offset: i64) -> Result<String, ZoneError> {
        let date = parse_date(day)?;
        let moved = date
            .checked_add(jiff::Span::new().days(offset))
            .map_err(|_| ZoneError::OutOfRange)?;
        Ok(format_date(moved))
    }

    /// Days from `from` to `to`, both included (1 for the same day).
    pub fn days_between(from: &str, to: &str) -> Result<i64, ZoneError> {
        let (a, b) = (parse_date(from)?, parse_date(to)?);
        let span = a.until(b).map_err(|_| ZoneError::OutOfRange)?;
        Ok(i64::from(span.get_days()) + 1)
    }

    /// The local hours of a day, as the instants they begin: 24 on most
    /// days, 23 or 25 on the days the clocks change.
    pub fn hours_of(&self, day: &str) -> Result<Vec<i64>, ZoneError> {
        let (start, end) = (self.day_start(day)?, self.day_end(day)?);
        let mut hours = Vec::new();
        let mut t = start;
        while t < end {
            hours.push(t);
            // The next local hour boundary: an hour on, then back to :00
            // (zones with half-hour offsets change by 30 minutes).
            t = self.hour_start(t + HOUR_MS);
        }
        Ok(hours)
    }
}

/// Reads a strict `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, ZoneError> {
    let bad = || ZoneError::BadDate(text.chars().take(20).collect());
    let t = text.trim();
    let b = t.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return Err(bad());
    }
    let (year, month, day) = (
        t[0..4].parse::<i16>().map_err(|_| bad())?,
        t[5..7].parse::<i8>().map_err(|_| bad())?,
        t[8..10].parse::<i8>().map_err(|_| bad())?,
    );
    if year < 1971 {
        return Err(bad());
    }
    Date::new(year, month, day).map_err(|_| bad())
}

fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(ts: &str) -> i64 {
        ts.parse::<Timestamp>().expect("RFC 3339").as_millisecond()
    }

    #[test]
    fn utc_is_the_default_and_named_zones_resolve() {
        assert_eq!(Zone::default().name(), "UTC");
        assert!(Zone::named("Europe/Berlin").is_ok());
        assert!(Zone::named("utc").is_ok());
        assert_eq!(
            Zone::named("Mars/Olympus"),
            Err(ZoneError::Unknown("Mars/Olympus".into())).map(|_: ()| Zone::utc())
        );
    }

    #[test]
    fn local_days_and_months() {
        let berlin = Zone::named("Europe/Berlin").expect("zone");
        // 23:30 UTC on 31 Dec is already the new year in Berlin.
        let t = ms("2025-12-31T23:30:00Z");
        assert_eq!(Zone::utc().day(t), "2025-12-31");
        assert_eq!(berlin.day(t), "2026-01-01");
        assert_eq!(berlin.month(t), "2026-01");
        assert_eq!(berlin.label(t), "2026-01-01T00:30");
        let la = Zone::named("America/Los_Angeles").expect("zone");
        assert_eq!(la.day(t), "2025-12-31");
    }

    #[test]
    fn a_23_hour_and_a_25_hour_day() {
        let berlin = Zone::named("Europe/Berlin").expect("zone");
        // Clocks go forward on 2026-03-29 and back on 2026-10-25.
        let spring = berlin.hours_of("2026-03-29").expect("day");
        assert_eq!(spring.len(), 23);
        assert_eq!(
            berlin.day_end("2026-03-29").expect("day") - berlin.day_start("2026-03-29").expect("day"),
            23 * HOUR_MS
        );
        let autumn = berlin.hours_of("2026-10-25").expect("day");
        assert_eq!(autumn.len(), 25);
        // The two local 02:00 hours are different buckets.
        let first = berlin.hour_start(ms("2026-10-25T00:30:00Z")); // 02:30 CEST
        let second = berlin.hour_start(ms("2026-10-25T01:30:00Z")); // 02:30 CET
        assert_eq!(second - first, HOUR_MS);
        assert!(autumn.contains(&first) && autumn.contains(&second));
        assert_eq!(berlin.hours_of("2026-06-01").expect("day").len(), 24);
    }

    #[test]
    fn half_hour_zones_keep_local_hours() {
        let india = Zone::named("Asia/Kolkata").expect("zone");
        let start = india.hour_start(ms("2026-01-01T00:45:00Z")); // 06:15 local
        assert_eq!(start, ms("2026-01-01T00:30:00Z"));
        assert_eq!(india.hours_of("2026-01-01").expect("day").len(), 24);
        assert_eq!(india.day_start("2026-01-01"), Ok(ms("2025-12-31T18:30:00Z")));
    }

    #[test]
    fn dates_are_strict() {
        assert!(parse_date("2026-02-29").is_err());
        assert!(parse_date("2024-02-29").is_ok());
        assert!(parse_date("2026-1-01").is_err());
        assert!(parse_date("1970-12-31").is_err());
        assert_eq!(Zone::add_days("2026-03-01", -1), Ok("2026-02-28".into()));
        assert_eq!(Zone::days_between("2026-01-01", "2026-01-31"), Ok(31));
        assert_eq!(Zone::days_between("2026-01-01", "2026-01-01"), Ok(1));
        let utc = Zone::utc();
        assert_eq!(utc.day_end("9999-12-31"), Ok(END_OF_TIME_MS + DAY_MS));
        assert!(utc.day_start("9999-12-31").is_ok_and(|s| s <= END_OF_TIME_MS));
    }
}
