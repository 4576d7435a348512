//! What the optional sinks receive: NDJSON of canonical events, and for the
//! R2 archive one object per project and UTC hour of event time.
//!
//! A line is the event's JSON led by its `dedup_key`, the key D1 stores it
//! under (the same occurrence always has the same key). The lines load
//! unchanged into ClickHouse with `INSERT INTO … FORMAT JSONEachRow`
//! (`edge-worker/warehouse/clickhouse.sql`, a table deduplicated on
//! `(project, dedup_key)`), and parse back as [`Event`] (unknown fields are
//! ignored).

use crate::dedup::dedup_key;
use crate::event::Event;
use crate::limits::{SINK_RETRY_MAX_DELAY_SECONDS, SINK_RETRY_MIN_DELAY_SECONDS};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

#[derive(Serialize)]
struct Line<'a> {
    dedup_key: String,
    #[serde(flatten)]
    event: &'a Event,
}

/// One JSON event per line (with its `dedup_key`), each line ending in `\n`.
pub fn ndjson<'a>(events: impl IntoIterator<Item = &'a Event>) -> String {
    let mut out = String::new();
    for event in events {
        let line = Line {
            dedup_key: dedup_key(event),
            event,
        };
        if let Ok(line) = serde_json::to_string(&line) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// How long a run the HTTP sink refused waits before it is offered again,
/// given how long ago it was first refused: as long again (so the waits
/// double), within [`SINK_RETRY_MIN_DELAY_SECONDS`] and
/// [`SINK_RETRY_MAX_DELAY_SECONDS`]. Milliseconds.
pub fn sink_retry_delay_ms(waited_ms: i64) -> i64 {
    waited_ms.clamp(SINK_RETRY_MIN_DELAY_SECONDS * 1000, SINK_RETRY_MAX_DELAY_SECONDS * 1000)
}

/// Groups events into archive objects keyed
/// `events/project=P/dt=YYYY-MM-DD/hour=HH/<digest>.ndjson`, a layout that
/// warehouse loaders read as partitions. The name is a digest of the
/// object's own bytes: a retried message (the same events, serialised the
/// same way) rewrites its own object instead of adding a copy, and no other
/// batch can ever replace it, whatever insert_ids the two share. Call it once
/// per queue message: a message's events are fixed, while the queue may group
/// messages differently when it delivers them again.
pub fn archive_objects(events: &[Event]) -> Vec<(String, String)> {
    let mut groups: BTreeMap<(String, String, i64), Vec<&Event>> = BTreeMap::new();
    for event in events {
        let day = crate::time::utc_day(event.time_ms);
        let hour = event.time_ms.rem_euclid(crate::time::DAY_MS) / crate::time::HOUR_MS;
        groups
            .entry((event.project.clone(), day, hour))
            .or_default()
            .push(event);
    }
    groups
        .into_iter()
        .map(|((project, day, hour), events)| {
            let body = ndjson(events);
            (
                archive_key(&format!("events/project={project}/dt={day}/hour={hour:02}/"), &body),
                body,
            )
        })
        .collect()
}

/// The archive partition (a key prefix) of an event of `project` at
/// `time_ms`.
pub fn archive_prefix(project: &str, time_ms: i64) -> String {
    let day = crate::time::utc_day(time_ms);
    let hour = time_ms.rem_euclid(crate::time::DAY_MS) / crate::time::HOUR_MS;
    format!("events/project={project}/dt={day}/hour={hour:02}/")
}

/// The name of an archive object: its partition and a digest of its body.
pub fn archive_key(prefix: &str, body: &str) -> String {
    let digest = crate::hash::hex(&Sha256::digest(body.as_bytes())[..16]);
    format!("{prefix}{digest}.ndjson")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Dialect, PageContext};

    fn event(project: &str, time_ms: i64, id: &str) -> Event {
        Event {
            project: project.into(),
            name: "e".into(),
            distinct_id: "u".into(),
            device_id: None,
            time_ms,
            insert_id: id.into(),
            page: PageContext::default(),
            properties: Default::default(),
            source: Dialect::Browser,
            received_at_ms: time_ms,
            user_agent: None,
            country: None,
            region: None,
            city: None,
        }
    }

    #[test]
    fn partitions_by_project_and_hour() {
        let h10 = 1_672_567_200_000; // 2023-01-01T10:00:00Z
        let events = vec![
            event("a", h10, "1"),
            event("a", h10 + 3_599_999, "2"),
            event("a", h10 + 3_600_000, "3"),
            event("b", h10, "4"),
        ];
        let objects = archive_objects(&events);
        let keys: Vec<&str> = objects.iter().map(|(k, _)| k.as_str()).collect();
        let prefixes: Vec<&str> = keys.iter().map(|k| &k[..k.rfind('/').unwrap_or(0) + 1]).collect();
        assert_eq!(
            prefixes,
            [
                "events/project=a/dt=2023-01-01/hour=10/",
                "events/project=a/dt=2023-01-01/hour=11/",
                "events/project=b/dt=2023-01-01/hour=10/",
            ]
        );
        for key in &keys {
            let name = &key[key.rfind('/').unwrap_or(0) + 1..];
            assert_eq!(name.len(), 32 + ".ndjson".len(), "{name}");
        }
        assert_eq!(objects[0].1.lines().count(), 2);
        assert_eq!(archive_prefix("a", h10 + 3_599_999), prefixes[0]);
        assert_eq!(objects[0].0, archive_key(prefixes[0], &objects[0].1));
        let back: Event = serde_json::from_str(objects[1].1.trim_end()).expect("valid JSON line");
        assert_eq!(back.insert_id, "3");
    }

    #[test]
    fn a_line_is_the_event_led_by_its_dedup_key() {
        let e = event("a", 1_672_567_200_000, "x-1");
        let text = ndjson([&e]);
        assert!(text.ends_with('\n') && text.lines().count() == 1);
        let key = dedup_key(&e);
        assert!(
            text.starts_with(&format!("{{\"dedup_key\":\"{key}\",\"project\":\"a\"")),
            "{text}"
        );
        let back: Event = serde_json::from_str(text.trim_end()).expect("the line parses as an event");
        assert_eq!(back, e);
    }

    #[test]
    fn sink_retries_wait_as_long_again_within_their_bounds() {
        let min = SINK_RETRY_MIN_DELAY_SECONDS * 1000;
        let max = SINK_RETRY_MAX_DELAY_SECONDS * 1000;
        assert_eq!(sink_retry_delay_ms(0), min);
        assert_eq!(sink_retry_delay_ms(min - 1), min);
        assert_eq!(sink_retry_delay_ms(min), min);
        assert_eq!(sink_retry_delay_ms(min + 1), min + 1);
        assert_eq!(sink_retry_delay_ms(7_000), 7_000);
        assert_eq!(sink_retry_delay_ms(max), max);
        assert_eq!(sink_retry_delay_ms(max + 1), max);
        assert_eq!(sink_retry_delay_ms(-5), min, "a clock that went back still waits");
    }

    #[test]
    fn only_the_same_events_share_an_object_name() {
        let h10 = 1_672_567_200_000;
        let first = vec![event("a", h10, "x-1"), event("a", h10, "a-2")];
        let second = vec![event("a", h10, "x-1"), event("a", h10, "b-2")];
        let name = |events: &[Event]| archive_objects(events)[0].0.clone();
        // Two batches that start with the same insert_id: two objects.
        assert_ne!(name(&first), name(&second));
        // A retried batch: the same object, so one copy.
        assert_eq!(name(&first), name(&first.clone()));
        // The same insert_ids with other content (a different event that
        // reuses an id) do not replace the first batch either.
        let mut other = first.clone();
        other[1].name = "other".into();
        assert_ne!(name(&first), name(&other));
    }
}
