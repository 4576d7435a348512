//! What the optional sinks receive: NDJSON of canonical events, and for the
//! R2 archive one object per project and UTC hour of event time.

use crate::event::Event;
use std::collections::BTreeMap;

/// One JSON event per line, each line ending in `\n`.
pub fn ndjson<'a>(events: impl IntoIterator<Item = &'a Event>) -> String {
    let mut out = String::new();
    for event in events {
        if let Ok(line) = serde_json::to_string(event) {
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

/// Groups events into archive objects keyed
/// `events/project=P/dt=YYYY-MM-DD/hour=HH/<first insert_id>.ndjson`, a
/// layout that warehouse loaders read as partitions. Naming an object after
/// its first event makes a retried batch overwrite its own object instead of
/// adding a second copy.
pub fn archive_objects(events: &[Event]) -> Vec<(String, String)> {
    let mut groups: BTreeMap<(String, String, i64), Vec<&Event>> = BTreeMap::new();
    for event in events {
        let day = crate::time::utc_day(event.time_ms);
        let hour = event.time_ms.rem_euclid(86_400_000) / 3_600_000;
        groups
            .entry((event.project.clone(), day, hour))
            .or_default()
            .push(event);
    }
    groups
        .into_iter()
        .map(|((project, day, hour), events)| {
            let first = events.first().map_or("empty", |e| e.insert_id.as_str());
            (
                format!("events/project={project}/dt={day}/hour={hour:02}/{first}.ndjson"),
                ndjson(events),
            )
        })
        .collect()
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
        assert_eq!(
            keys,
            [
                "events/project=a/dt=2023-01-01/hour=10/1.ndjson",
                "events/project=a/dt=2023-01-01/hour=11/3.ndjson",
                "events/project=b/dt=2023-01-01/hour=10/4.ndjson",
            ]
        );
        assert_eq!(objects[0].1.lines().count(), 2);
        let back: Event = serde_json::from_str(objects[1].1.trim_end()).expect("valid JSON line");
        assert_eq!(back.insert_id, "3");
    }
}
