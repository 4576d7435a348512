//! What travels through the queue between the fetch handler and the consumer,
//! and how a list of jobs is cut into batches that Cloudflare Queues accept.

use crate::bots::BotReason;
use crate::dialect::mixpanel_groups::GroupUpdate;
use crate::event::Event;
use crate::identity::IdentityLink;
use crate::limits::{
    CONSUMER_TRANSACTION_MAX_EVENTS, QUEUE_BATCH_MAX_BYTES, QUEUE_BATCH_MAX_MESSAGES, QUEUE_MESSAGE_MAX_BYTES,
};
use crate::profile::ProfileUpdate;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Job {
    /// Events packed into one message (see [`pack_events`]): one queue
    /// message per event would make an import of 2000 cost 2000 deliveries.
    Events {
        events: Vec<Event>,
        /// The outbox row that records this message until it is stored.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        outbox: Option<String>,
    },
    Profile(ProfileUpdate),
    /// A Mixpanel group profile update (`/groups`).
    Group(GroupUpdate),
    /// One link of the identity map (`$identify`, `$create_alias`, `$merge`).
    Identity(IdentityLink),
    /// Visits of a project untouched since before `before_ms` become
    /// final (their visitors enter the sketches). Queued by the cron so
    /// the one consumer does it, never beside a batch in flight.
    FinalizeVisits {
        project: String,
        before_ms: i64,
    },
    /// One dropped bot request, counted per project, day and reason.
    BotDrop {
        project: String,
        day: String,
        reason: BotReason,
        events: u32,
    },
}

/// Packs events into `Events` jobs of at most [`QUEUE_MESSAGE_MAX_BYTES`]
/// serialised. Validation caps one event at 64 KiB, so each fits alone.
pub fn pack_events(events: Vec<Event>) -> Vec<Job> {
    let mut jobs = Vec::new();
    let mut current: Vec<Event> = Vec::new();
    let mut bytes = 0usize;
    for event in events {
        let size = serde_json::to_vec(&event).map(|v| v.len()).unwrap_or(0) + 1;
        if !current.is_empty() && bytes + size > QUEUE_MESSAGE_MAX_BYTES {
            jobs.push(Job::Events {
                events: std::mem::take(&mut current),
                outbox: None,
            });
            bytes = 0;
        }
        bytes += size;
        current.push(event);
    }
    if !current.is_empty() {
        jobs.push(Job::Events {
            events: current,
            outbox: None,
        });
    }
    jobs
}

/// Splits jobs into `sendBatch` calls: at most 100 messages and 256 KB each.
/// Every job fits a message on its own, because validation caps an event
/// at 64 KiB.
pub fn batches(jobs: Vec<Job>) -> Vec<Vec<Job>> {
    let mut out: Vec<Vec<Job>> = Vec::new();
    let mut current: Vec<Job> = Vec::new();
    let mut bytes = 0usize;
    for job in jobs {
        // The queue adds per-message overhead; count a little extra for it.
        let size = serde_json::to_vec(&job).map(|v| v.len()).unwrap_or(0) + 100;
        if !current.is_empty() && (current.len() == QUEUE_BATCH_MAX_MESSAGES || bytes + size > QUEUE_BATCH_MAX_BYTES) {
            out.push(std::mem::take(&mut current));
            bytes = 0;
        }
        bytes += size;
        current.push(job);
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Splits a consumer batch's event messages (their event counts, in
/// order) into runs stored one D1 transaction each: consecutive messages
/// with at most [`CONSUMER_TRANSACTION_MAX_EVENTS`] events together; a
/// message with more stands alone.
pub fn transactions(pack_sizes: &[usize]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut events = 0;
    for (i, &size) in pack_sizes.iter().enumerate() {
        if i > start && events + size > CONSUMER_TRANSACTION_MAX_EVENTS {
            out.push(start..i);
            start = i;
            events = 0;
        }
        events += size;
    }
    if start < pack_sizes.len() {
        out.push(start..pack_sizes.len());
    }
    out
}

/// How long a failed message waits before its retry: about as long as it
/// has waited already (so delays double from one attempt to the next; the
/// binding does not expose the attempt count), at least a second and at
/// most [`QUEUE_MAX_RETRY_DELAY_SECONDS`].
///
/// [`QUEUE_MAX_RETRY_DELAY_SECONDS`]: crate::limits::QUEUE_MAX_RETRY_DELAY_SECONDS
pub fn retry_delay_seconds(waited_ms: i64) -> u32 {
    use crate::limits::QUEUE_MAX_RETRY_DELAY_SECONDS as MAX;
    let waited_seconds = (waited_ms / 1000).max(1);
    u32::try_from(waited_seconds).map_or(MAX, |s| s.min(MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn retry_delay_follows_the_wait_up_to_its_cap() {
        use super::retry_delay_seconds;
        // At least a second, even for a message that failed at once.
        assert_eq!(retry_delay_seconds(0), 1);
        assert_eq!(retry_delay_seconds(-5_000), 1);
        assert_eq!(retry_delay_seconds(42_900), 42);
        // The cap (300 s, as the README documents), at it and just past it.
        assert_eq!(retry_delay_seconds(300_000), 300);
        assert_eq!(retry_delay_seconds(301_000), 300);
        assert_eq!(retry_delay_seconds(i64::MAX), 300);
    }

    use super::*;
    use crate::event::{Dialect, PageContext};
    use serde_json::{json, Map};

    fn event(n: usize, pad: usize) -> Job {
        Job::Events {
            events: vec![plain_event(n, pad)],
            outbox: None,
        }
    }

    fn plain_event(n: usize, pad: usize) -> Event {
        let mut properties = Map::new();
        properties.insert("pad".into(), json!("x".repeat(pad)));
        Event {
            project: "p".into(),
            name: "e".into(),
            distinct_id: "u".into(),
            device_id: None,
            time_ms: 1,
            insert_id: format!("id-{n}"),
            page: PageContext::default(),
            properties,
            source: Dialect::Browser,
            received_at_ms: 1,
            user_agent: None,
            country: None,
            region: None,
            city: None,
        }
    }

    #[test]
    fn message_count_at_and_past_limit() {
        let jobs: Vec<Job> = (0..QUEUE_BATCH_MAX_MESSAGES).map(|n| event(n, 0)).collect();
        assert_eq!(batches(jobs).len(), 1);
        let jobs: Vec<Job> = (0..=QUEUE_BATCH_MAX_MESSAGES).map(|n| event(n, 0)).collect();
        let split = batches(jobs);
        assert_eq!(split.iter().map(Vec::len).collect::<Vec<_>>(), [100, 1]);
    }

    #[test]
    fn bytes_split_batches_and_nothing_is_lost() {
        // 60 KB events: four fit in 256 KB, the fifth starts a new batch.
        let jobs: Vec<Job> = (0..9).map(|n| event(n, 60_000)).collect();
        let split = batches(jobs);
        assert_eq!(split.iter().map(Vec::len).collect::<Vec<_>>(), [4, 4, 1]);
        for batch in &split {
            let total: usize = batch
                .iter()
                .map(|j| serde_json::to_vec(j).map(|v| v.len()).unwrap_or(0))
                .sum();
            assert!(total <= QUEUE_BATCH_MAX_BYTES);
        }
    }

    #[test]
    fn packing_respects_the_message_size_and_keeps_order() {
        // 40 KB events: three fit in 120 KB, the fourth starts a new message.
        let events: Vec<Event> = (0..7).map(|n| plain_event(n, 40_000)).collect();
        let jobs = pack_events(events);
        let sizes: Vec<usize> = jobs
            .iter()
            .map(|j| match j {
                Job::Events { events, .. } => events.len(),
                _ => 0,
            })
            .collect();
        assert_eq!(sizes, [2, 2, 2, 1]);
        for job in &jobs {
            assert!(serde_json::to_vec(job).map(|v| v.len()).unwrap_or(usize::MAX) <= QUEUE_MESSAGE_MAX_BYTES + 100);
        }
        let ids: Vec<String> = jobs
            .into_iter()
            .flat_map(|j| match j {
                Job::Events { events, .. } => events,
                _ => Vec::new(),
            })
            .map(|e| e.insert_id)
            .collect();
        assert_eq!(ids, (0..7).map(|n| format!("id-{n}")).collect::<Vec<_>>());
        // Small events share one message.
        assert_eq!(pack_events((0..500).map(|n| plain_event(n, 10)).collect()).len(), 1);
    }

    #[test]
    fn identity_and_group_jobs_round_trip_as_json() {
        let link = crate::identity::IdentityLink {
            project: "p".into(),
            via: crate::identity::LinkKind::Merge,
            keep: "a".into(),
            join: "b".into(),
            time_ms: 5,
        };
        let group = GroupUpdate {
            project: "p".into(),
            group_key: "company".into(),
            group_id: "Acme".into(),
            ops: vec![crate::profile::ProfileOp::Delete],
            time_ms: 5,
        };
        for job in [Job::Identity(link), Job::Group(group)] {
            let text = serde_json::to_string(&job).unwrap_or_default();
            assert_eq!(serde_json::from_str::<Job>(&text).ok(), Some(job), "{text}");
        }
    }

    #[test]
    fn jobs_round_trip_as_json() {
        let job = Job::BotDrop {
            project: "p".into(),
            day: "2026-01-01".into(),
            reason: BotReason::UserAgentPattern,
            events: 2,
        };
        let text = serde_json::to_string(&job).unwrap_or_default();
        assert!(text.contains("\"kind\":\"bot_drop\""));
        assert_eq!(serde_json::from_str::<Job>(&text).ok(), Some(job));
    }

    #[test]
    fn transactions_hold_at_most_the_limit_and_never_split_a_message() {
        assert_eq!(CONSUMER_TRANSACTION_MAX_EVENTS, 2_000);
        assert!(transactions(&[]).is_empty());
        // At the limit: one transaction; one past it: two.
        assert_eq!(transactions(&[1_000, 1_000]), vec![0..2]);
        assert_eq!(transactions(&[1_000, 1_001]), vec![0..1, 1..2]);
        // A message past the limit alone, its neighbours around it.
        assert_eq!(transactions(&[10, 2_500, 10, 10]), vec![0..1, 1..2, 2..4]);
        let sizes = [400; 100];
        let runs = transactions(&sizes);
        assert_eq!(runs.len(), 20);
        assert!(runs.iter().all(|r| sizes[r.clone()].iter().sum::<usize>() <= 2_000));
        assert_eq!(
            runs.iter().map(|r| r.len()).sum::<usize>(),
            100,
            "every message in one run"
        );
    }
}
