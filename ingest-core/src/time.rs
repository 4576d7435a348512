//! Event times: accepted as seconds or milliseconds (or, where an API says
//! milliseconds, only those), stored as milliseconds.

use crate::event::Dialect;
use crate::limits::{MAX_FUTURE_SKEW_MS, MIN_EVENT_TIME_MS, SECONDS_MS_BOUNDARY};
use serde_json::Value;

/// A UTC day, hour and minute in milliseconds (a project's local day may be
/// 23 or 25 hours: [`crate::zone`]).
pub const DAY_MS: i64 = 86_400_000;
pub const HOUR_MS: i64 = 3_600_000;
pub const MINUTE_MS: i64 = 60_000;
/// 10000-01-01T00:00:00Z: where far-future dates saturate.
pub const END_OF_TIME_MS: i64 = 253_402_300_800_000;

/// How an API writes a numeric time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Mixpanel and the others: below [`SECONDS_MS_BOUNDARY`] seconds,
    /// otherwise milliseconds (the two never overlap after 1973).
    SecondsOrMilliseconds,
    /// Emp-Mix: its page says "Epoch timestamp in milliseconds", and a
    /// number is read that way whatever its size, so 1972 stays 1972 and a
    /// time in seconds is refused (it would be January 1970) instead of
    /// being guessed at.
    Milliseconds,
}

impl TimeUnit {
    pub fn of(dialect: Dialect) -> TimeUnit {
        match dialect {
            Dialect::EmpMix => TimeUnit::Milliseconds,
            _ => TimeUnit::SecondsOrMilliseconds,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    NotANumber,
    TooOld,
    InFuture,
}

impl TimeError {
    pub fn message(self) -> &'static str {
        self.message_for(TimeUnit::SecondsOrMilliseconds)
    }

    /// The message in the terms of an API that reads times in `unit`.
    pub fn message_for(self, unit: TimeUnit) -> &'static str {
        match (self, unit) {
            // Seed 001's words for this error, quoted exactly (after the
            // field name that error replies put first). Milliseconds are
            // accepted too, as its own remedy says.
            (TimeError::NotANumber, TimeUnit::SecondsOrMilliseconds) => {
                "is invalid: must be specified as seconds since epoch"
            }
            (TimeError::NotANumber, TimeUnit::Milliseconds) => {
                "is invalid: must be specified as milliseconds since epoch"
            }
            (TimeError::TooOld, TimeUnit::SecondsOrMilliseconds) => "must not be before 1971-01-01",
            (TimeError::TooOld, TimeUnit::Milliseconds) => {
                "must not be before 1971-01-01 (it is read as milliseconds since epoch)"
            }
            (TimeError::InFuture, _) => "must not be more than one hour in the future",
        }
    }
}

/// Reads a JSON number (or numeric string, as several SDKs send) as a time in
/// milliseconds: below 1e11 it is seconds, otherwise milliseconds.
pub fn parse_time_ms(value: &Value) -> Result<i64, TimeError> {
    parse_time(value, TimeUnit::SecondsOrMilliseconds)
}

/// Reads a JSON number (or numeric string) as a time in milliseconds, in
/// the unit its API writes.
pub fn parse_time(value: &Value, unit: TimeUnit) -> Result<i64, TimeError> {
    let raw = match value {
        Value::Number(n) => n.as_f64().ok_or(TimeError::NotANumber)?,
        Value::String(s) => s.trim().parse::<f64>().map_err(|_| TimeError::NotANumber)?,
        _ => return Err(TimeError::NotANumber),
    };
    if !raw.is_finite() || raw < 0.0 {
        return Err(TimeError::NotANumber);
    }
    let ms = match unit {
        TimeUnit::SecondsOrMilliseconds if raw < SECONDS_MS_BOUNDARY => raw * 1000.0,
        _ => raw,
    };
    if ms > i64::MAX as f64 / 2.0 {
        return Err(TimeError::InFuture);
    }
    Ok(ms.round() as i64)
}

/// Checks a time in milliseconds against the accepted window around `now_ms`.
pub fn check_window(time_ms: i64, now_ms: i64) -> Result<i64, TimeError> {
    if time_ms < MIN_EVENT_TIME_MS {
        return Err(TimeError::TooOld);
    }
    if time_ms > now_ms.saturating_add(MAX_FUTURE_SKEW_MS) {
        return Err(TimeError::InFuture);
    }
    Ok(time_ms)
}

/// UTC calendar day (`YYYY-MM-DD`) of a time in milliseconds, without a
/// date library: days since epoch to civil date (Howard Hinnant's method).
pub fn utc_day(time_ms: i64) -> String {
    let days = time_ms.div_euclid(DAY_MS);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// UTC date and time to the second, `YYYY-MM-DDTHH:MM:SS`: the form of
/// Mixpanel's profile dates (`$last_seen`, `$created`).
pub fn utc_datetime(time_ms: i64) -> String {
    let seconds = time_ms.div_euclid(1000).rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}",
        utc_day(time_ms),
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

/// A duration setting given in whole seconds, in milliseconds: a missing,
/// unreadable, zero or negative value takes the default.
pub fn seconds_setting_ms(value: Option<&str>, default_seconds: i64) -> i64 {
    let seconds = value
        .and_then(|v| v.trim().parse::<i64>().ok())
        .filter(|s| *s >= 1)
        .unwrap_or(default_seconds);
    seconds.saturating_mul(1000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn seconds_settings_fall_back_to_their_default() {
        use super::seconds_setting_ms;
        assert_eq!(seconds_setting_ms(Some("3"), 120), 3_000);
        assert_eq!(seconds_setting_ms(Some(" 1 "), 120), 1_000);
        for refused in [None, Some(""), Some("0"), Some("-4"), Some("2.5"), Some("soon")] {
            assert_eq!(seconds_setting_ms(refused, 120), 120_000, "{refused:?}");
        }
        assert_eq!(seconds_setting_ms(Some("9223372036854775807"), 1), i64::MAX);
    }

    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_790_000_000_000;

    #[test]
    fn seconds_and_milliseconds_are_told_apart() {
        assert_eq!(parse_time_ms(&json!(1_700_000_000)), Ok(1_700_000_000_000));
        assert_eq!(parse_time_ms(&json!(1_700_000_000_123_i64)), Ok(1_700_000_000_123));
        assert_eq!(parse_time_ms(&json!(1_700_000_000.5)), Ok(1_700_000_000_500));
        assert_eq!(parse_time_ms(&json!("1700000000")), Ok(1_700_000_000_000));
    }

    #[test]
    fn milliseconds_only_where_the_api_says_so() {
        let ms = TimeUnit::Milliseconds;
        assert_eq!(TimeUnit::of(Dialect::EmpMix), ms);
        assert_eq!(TimeUnit::of(Dialect::MixpanelImport), TimeUnit::SecondsOrMilliseconds);
        // Either side of the boundary where the other rule switches units.
        let below = SECONDS_MS_BOUNDARY as i64 - 1;
        assert_eq!(parse_time(&json!(below), ms), Ok(below));
        assert_eq!(parse_time_ms(&json!(below)), Ok(below * 1000));
        assert_eq!(parse_time(&json!(1_672_531_200_000_i64), ms), Ok(1_672_531_200_000));
        // A time in seconds is January 1970 in milliseconds: too old.
        let seconds = parse_time(&json!(1_672_531_200), ms);
        assert_eq!(seconds, Ok(1_672_531_200));
        assert_eq!(seconds.and_then(|t| check_window(t, NOW)), Err(TimeError::TooOld));
        assert!(TimeError::TooOld.message_for(ms).contains("milliseconds"));
        assert_eq!(parse_time(&json!("x"), ms), Err(TimeError::NotANumber));
        assert_eq!(
            TimeError::NotANumber.message_for(ms),
            "is invalid: must be specified as milliseconds since epoch"
        );
    }

    #[test]
    fn non_numbers_and_negatives_are_refused() {
        for bad in [json!("soon"), json!(null), json!(-5), json!([1]), json!(true)] {
            assert_eq!(parse_time_ms(&bad), Err(TimeError::NotANumber), "{bad}");
        }
        assert_eq!(parse_time_ms(&json!(1e300)), Err(TimeError::InFuture));
    }

    #[test]
    fn window_at_and_past_each_edge() {
        assert_eq!(check_window(MIN_EVENT_TIME_MS, NOW), Ok(MIN_EVENT_TIME_MS));
        assert_eq!(check_window(MIN_EVENT_TIME_MS - 1, NOW), Err(TimeError::TooOld));
        let edge = NOW + MAX_FUTURE_SKEW_MS;
        assert_eq!(check_window(edge, NOW), Ok(edge));
        assert_eq!(check_window(edge + 1, NOW), Err(TimeError::InFuture));
    }

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(utc_day(1_672_531_200_000), "2023-01-01");
        assert_eq!(utc_day(1_672_531_199_999), "2022-12-31");
    }

    #[test]
    fn datetimes_to_the_second() {
        assert_eq!(utc_datetime(0), "1970-01-01T00:00:00");
        assert_eq!(utc_datetime(1_700_000_000_999), "2023-11-14T22:13:20");
        assert_eq!(utc_datetime(951_782_399_000), "2000-02-28T23:59:59");
        assert_eq!(utc_datetime(951_868_800_000), "2000-03-01T00:00:00");
    }
}
