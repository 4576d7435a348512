//! GDPR erasure: which events belong to a person, the tombstones that keep
//! later arrivals of their data out, and scrubbing queued jobs and archived
//! NDJSON of them.
//!
//! **Whose events.** A person's events are those under any of their ids
//! (the distinct_id named, and every id the identity map links with it),
//! and the anonymous events of every device they were identified on (the
//! visits before they signed in). An event is anonymous when its
//! distinct_id is its device id (our tracker, Vemetric, Emp-Mix) or
//! `$device:` and the device id (mixpanel-browser). On a shared device, the
//! events another person was identified in are never theirs: only the
//! anonymous ones go, since nothing tells whose they were.
//!
//! **Tombstones.** An erasure leaves one tombstone per subject (the person,
//! and each of those devices): a hash of the id, never the id itself, and
//! the time of the erasure. Events and profile updates that were accepted
//! before that time but reach storage later (from the queue, the outbox or
//! a dead-letter replay) are dropped on arrival; what arrives from activity
//! after the erasure is stored as usual.

use crate::event::Event;
use crate::hash::hex;
use crate::queue::Job;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashMap};

/// mixpanel-browser's anonymous distinct_id is this and the device id.
pub const DEVICE_ID_PREFIX: &str = "$device:";

/// Whether an event was sent before anyone was identified on its device.
pub fn is_anonymous(event: &Event) -> bool {
    event.device_id.as_deref().is_some_and(|device| {
        event.distinct_id == device || event.distinct_id.strip_prefix(DEVICE_ID_PREFIX) == Some(device)
    })
}

/// The tombstone subject of a person (`u:`) or a device (`d:`): 32 hex
/// characters of SHA-256 over a tag and the id, so the erasure log keeps no
/// identifier.
pub fn user_subject(distinct_id: &str) -> String {
    subject("u", distinct_id)
}

pub fn device_subject(device_id: &str) -> String {
    subject("d", device_id)
}

fn subject(tag: &str, id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(tag.as_bytes());
    hasher.update([0u8]);
    hasher.update(id.as_bytes());
    format!("{tag}:{}", hex(&hasher.finalize()[..16]))
}

/// One person of one project, as an erasure sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub project: String,
    /// The distinct_id the erasure names.
    pub distinct_id: String,
    /// Every id of the person: the one named and those linked with it.
    pub ids: BTreeSet<String>,
    /// Devices the person was identified on.
    pub devices: BTreeSet<String>,
}

impl Scope {
    pub fn new(project: &str, distinct_id: &str) -> Scope {
        Scope {
            project: project.to_owned(),
            distinct_id: distinct_id.to_owned(),
            ids: BTreeSet::from([distinct_id.to_owned()]),
            devices: BTreeSet::new(),
        }
    }

    /// Whether the event is the person's (see the module's rule).
    pub fn covers(&self, event: &Event) -> bool {
        event.project == self.project
            && (self.ids.contains(&event.distinct_id)
                || (is_anonymous(event) && event.device_id.as_ref().is_some_and(|d| self.devices.contains(d))))
    }

    /// Learns the devices the person was identified on in these events.
    pub fn learn_devices<'a>(&mut self, events: impl IntoIterator<Item = &'a Event>) {
        for event in events {
            if event.project == self.project && self.ids.contains(&event.distinct_id) {
                if let Some(device) = &event.device_id {
                    self.devices.insert(device.clone());
                }
            }
        }
    }

    /// The tombstone subjects this erasure leaves: each id, each device.
    pub fn subjects(&self) -> Vec<String> {
        self.ids
            .iter()
            .map(|id| user_subject(id))
            .chain(self.devices.iter().map(|d| device_subject(d)))
            .collect()
    }
}

/// One way an arriving event can be erased: by a tombstone of `subject`
/// made at or after the event was received. The consumer checks these in
/// the transaction that stores the events.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Arrival<'a> {
    pub project: &'a str,
    pub distinct_id: &'a str,
    pub dedup_key: String,
    pub subject: String,
    pub received_at_ms: i64,
}

/// Every (event, subject) pair by which a tombstone could erase one of
/// `events`: the event's person; for an anonymous event, its device, and
/// every person this same batch shows identified on that device (a link the
/// erasure could not know, since it was still in the queue).
pub fn arrivals(events: &[Event]) -> Vec<Arrival<'_>> {
    let mut people_on: HashMap<(&str, &str), BTreeSet<&str>> = HashMap::new();
    for event in events.iter().filter(|e| !is_anonymous(e)) {
        if let Some(device) = &event.device_id {
            people_on
                .entry((event.project.as_str(), device.as_str()))
                .or_default()
                .insert(event.distinct_id.as_str());
        }
    }
    let mut out = Vec::new();
    for event in events {
        let key = crate::dedup::dedup_key(event);
        let mut subjects = vec![user_subject(&event.distinct_id)];
        if let (true, Some(device)) = (is_anonymous(event), &event.device_id) {
            subjects.push(device_subject(device));
            if let Some(people) = people_on.get(&(event.project.as_str(), device.as_str())) {
                subjects.extend(people.iter().map(|p| user_subject(p)));
            }
        }
        for subject in subjects {
            out.push(Arrival {
                project: &event.project,
                distinct_id: &event.distinct_id,
                dedup_key: key.clone(),
                subject,
                received_at_ms: event.received_at_ms,
            });
        }
    }
    out
}

/// The tombstones of one project that matter for some events: subject to
/// the time of the erasure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    pub erased_at: HashMap<String, i64>,
}

impl Tombstones {
    /// Whether a tombstone erases the event: one of its subjects was erased
    /// at or after the event was received.
    pub fn erase(&self, event: &Event) -> bool {
        let at = |subject: String| self.erased_at.get(&subject).is_some_and(|t| *t >= event.received_at_ms);
        at(user_subject(&event.distinct_id))
            || (is_anonymous(event) && event.device_id.as_deref().is_some_and(|d| at(device_subject(d))))
    }
}

/// What scrubbing did to one text (a dead letter, an archive object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scrubbed {
    /// Nothing of the person was in it.
    Untouched,
    /// Some of it was theirs: this is the rest.
    Rewritten { text: String, removed: usize },
    /// All of it was theirs.
    Emptied { removed: usize },
}

/// Scrubs a dead letter's body (a queued job): the person's events come out
/// of an events job, a profile update or identity link of theirs goes
/// whole. Other people's
/// events stay, other projects' are never touched, and a body that is not a
/// job we know is left as it is (nothing in it can be told apart).
pub fn scrub_job(body: &str, scope: &Scope) -> Scrubbed {
    match serde_json::from_str::<Job>(body) {
        Ok(Job::Events { events, outbox }) => {
            let before = events.len();
            let kept: Vec<Event> = events.into_iter().filter(|e| !scope.covers(e)).collect();
            let removed = before - kept.len();
            if removed == 0 {
                Scrubbed::Untouched
            } else if kept.is_empty() {
                Scrubbed::Emptied { removed }
            } else {
                match serde_json::to_string(&Job::Events { events: kept, outbox }) {
                    Ok(text) => Scrubbed::Rewritten { text, removed },
                    // Cannot happen for values that were just parsed; keeping
                    // the letter whole is the safe failure.
                    Err(_) => Scrubbed::Untouched,
                }
            }
        }
        Ok(Job::Profile(update)) if update.project == scope.project && scope.ids.contains(&update.distinct_id) => {
            Scrubbed::Emptied { removed: 1 }
        }
        Ok(Job::Identity(link))
            if link.project == scope.project && (scope.ids.contains(&link.keep) || scope.ids.contains(&link.join)) =>
        {
            Scrubbed::Emptied { removed: 1 }
        }
        _ => Scrubbed::Untouched,
    }
}

/// The events of a dead letter's body, when it holds some.
pub fn job_events(body: &str) -> Vec<Event> {
    match serde_json::from_str::<Job>(body) {
        Ok(Job::Events { events, .. }) => events,
        _ => Vec::new(),
    }
}

/// Scrubs an NDJSON archive object: every line whose event `erase` says
/// goes is dropped, the rest kept byte for byte. A line that is not an
/// event stays.
pub fn scrub_ndjson(text: &str, erase: impl Fn(&Event) -> bool) -> Scrubbed {
    let mut kept = String::with_capacity(text.len());
    let mut removed = 0;
    for line in text.split_inclusive('\n') {
        match serde_json::from_str::<Event>(line.trim_end()) {
            Ok(event) if erase(&event) => removed += 1,
            _ => kept.push_str(line),
        }
    }
    match (removed, kept.trim().is_empty()) {
        (0, _) => Scrubbed::Untouched,
        (_, true) => Scrubbed::Emptied { removed },
        _ => Scrubbed::Rewritten { text: kept, removed },
    }
}

/// The events of an NDJSON text that parse as events.
pub fn ndjson_events(text: &str) -> Vec<Event> {
    text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Dialect, PageContext};
    use crate::profile::{ProfileOp, ProfileUpdate};

    fn event(project: &str, id: &str, distinct: &str, device: Option<&str>, received: i64) -> Event {
        Event {
            project: project.into(),
            name: "e".into(),
            distinct_id: distinct.into(),
            device_id: device.map(str::to_owned),
            time_ms: 1_700_000_000_000,
            insert_id: id.into(),
            page: PageContext::default(),
            properties: Default::default(),
            source: Dialect::Browser,
            received_at_ms: received,
            user_agent: None,
            country: None,
            region: None,
            city: None,
        }
    }

    /// Alice and Bob share a laptop; Alice also has a phone.
    fn shared_device() -> Vec<Event> {
        vec![
            event("demo", "anon-laptop", "laptop", Some("laptop"), 1),
            event("demo", "alice-laptop", "alice", Some("laptop"), 1),
            event("demo", "bob-laptop", "bob", Some("laptop"), 1),
            event("demo", "alice-phone", "alice", Some("phone"), 1),
            event("demo", "anon-phone-mp", "$device:phone", Some("phone"), 1),
            event("demo", "anon-tablet", "tablet", Some("tablet"), 1),
            event("other", "alice-elsewhere", "alice", Some("laptop"), 1),
        ]
    }

    #[test]
    fn a_person_is_their_events_and_the_anonymous_ones_of_their_devices() {
        let events = shared_device();
        let mut alice = Scope::new("demo", "alice");
        alice.learn_devices(&events);
        assert_eq!(alice.devices.iter().collect::<Vec<_>>(), ["laptop", "phone"]);
        let gone: Vec<&str> = events
            .iter()
            .filter(|e| alice.covers(e))
            .map(|e| e.insert_id.as_str())
            .collect();
        // Bob's identified event on the shared laptop stays, so does the
        // tablet nobody identified on, and Alice of another project.
        assert_eq!(gone, ["anon-laptop", "alice-laptop", "alice-phone", "anon-phone-mp"]);
    }

    #[test]
    fn every_linked_id_is_the_person() {
        let mut alice = Scope::new("demo", "alice");
        alice.ids.insert("alice@old".into());
        alice.learn_devices(&[event("demo", "x", "alice@old", Some("desk"), 1)]);
        assert_eq!(alice.devices.iter().collect::<Vec<_>>(), ["desk"]);
        assert!(alice.covers(&event("demo", "y", "alice@old", None, 1)));
        assert!(alice.covers(&event("demo", "z", "desk", Some("desk"), 1)));
        assert_eq!(alice.subjects().len(), 3);
    }

    #[test]
    fn subjects_are_hashes_apart_by_kind() {
        let user = user_subject("laptop");
        let device = device_subject("laptop");
        assert_ne!(user, device);
        assert!(user.starts_with("u:") && device.starts_with("d:"));
        assert!(!user.contains("laptop"));
        assert_eq!(user.len(), 2 + 32);
        let mut scope = Scope::new("demo", "alice");
        scope.devices.insert("phone".into());
        assert_eq!(scope.subjects(), [user_subject("alice"), device_subject("phone")]);
    }

    #[test]
    fn tombstones_erase_what_was_received_before_them_only() {
        let mut tombstones = Tombstones::default();
        tombstones.erased_at.insert(user_subject("alice"), 100);
        tombstones.erased_at.insert(device_subject("laptop"), 100);
        let at = |distinct: &str, device: Option<&str>, received: i64| {
            tombstones.erase(&event("demo", "x", distinct, device, received))
        };
        assert!(at("alice", None, 100));
        assert!(!at("alice", None, 101), "activity after the erasure is stored");
        assert!(at("laptop", Some("laptop"), 50), "anonymous on her device");
        assert!(at("$device:laptop", Some("laptop"), 50));
        assert!(!at("bob", Some("laptop"), 50), "Bob on the shared device");
    }

    #[test]
    fn arrivals_link_anonymous_events_to_people_in_the_same_batch() {
        let events = vec![
            event("demo", "anon-new", "newdev", Some("newdev"), 1),
            event("demo", "alice-new", "alice", Some("newdev"), 1),
        ];
        let subjects: Vec<(&str, String)> = arrivals(&events)
            .into_iter()
            .map(|a| (a.distinct_id, a.subject))
            .collect();
        assert_eq!(
            subjects,
            [
                ("newdev", user_subject("newdev")),
                ("newdev", device_subject("newdev")),
                ("newdev", user_subject("alice")),
                ("alice", user_subject("alice")),
            ]
        );
    }

    #[test]
    fn dead_letters_lose_only_the_persons_events() {
        let mut alice = Scope::new("demo", "alice");
        alice.devices.insert("laptop".into());
        let job = |events: Vec<Event>| {
            serde_json::to_string(&Job::Events {
                events,
                outbox: Some("o-1".into()),
            })
            .unwrap_or_default()
        };
        let mixed = job(shared_device());
        let Scrubbed::Rewritten { text, removed } = scrub_job(&mixed, &alice) else {
            panic!("a letter with others' events is rewritten");
        };
        assert_eq!(removed, 3);
        let left: Vec<String> = job_events(&text).into_iter().map(|e| e.insert_id).collect();
        assert_eq!(left, ["bob-laptop", "anon-phone-mp", "anon-tablet", "alice-elsewhere"]);
        assert!(text.contains("\"outbox\":\"o-1\""));

        let hers = job(vec![event("demo", "a", "alice", None, 1)]);
        assert_eq!(scrub_job(&hers, &alice), Scrubbed::Emptied { removed: 1 });
        // A substring is not a match: "alice2" and a property that says
        // "alice" are someone else's.
        let mut other = event("demo", "b", "alice2", None, 1);
        other.properties.insert("friend".into(), serde_json::json!("alice"));
        assert_eq!(scrub_job(&job(vec![other]), &alice), Scrubbed::Untouched);
        // Another project's Alice is never touched.
        let elsewhere = job(vec![event("other", "c", "alice", None, 1)]);
        assert_eq!(scrub_job(&elsewhere, &alice), Scrubbed::Untouched);

        let profile = |project: &str| {
            serde_json::to_string(&Job::Profile(ProfileUpdate {
                project: project.into(),
                distinct_id: "alice".into(),
                ops: vec![ProfileOp::Delete],
                time_ms: 1,
                received_at_ms: 1,
            }))
            .unwrap_or_default()
        };
        assert_eq!(scrub_job(&profile("demo"), &alice), Scrubbed::Emptied { removed: 1 });
        assert_eq!(scrub_job(&profile("other"), &alice), Scrubbed::Untouched);
        assert_eq!(scrub_job("not a job: \"alice\"", &alice), Scrubbed::Untouched);

        let link = |keep: &str, join: &str| {
            serde_json::to_string(&Job::Identity(crate::identity::IdentityLink {
                project: "demo".into(),
                via: crate::identity::LinkKind::Identify,
                keep: keep.into(),
                join: join.into(),
                time_ms: 1,
            }))
            .unwrap_or_default()
        };
        assert_eq!(
            scrub_job(&link("alice", "anon-9"), &alice),
            Scrubbed::Emptied { removed: 1 }
        );
        assert_eq!(scrub_job(&link("bob", "anon-9"), &alice), Scrubbed::Untouched);
    }

    #[test]
    fn archive_objects_lose_only_the_erased_lines() {
        let text = crate::sink::ndjson(&shared_device()[..3]);
        let lines: Vec<&str> = text.lines().collect();
        let scrubbed = scrub_ndjson(&text, |e| e.distinct_id == "alice");
        assert_eq!(
            scrubbed,
            Scrubbed::Rewritten {
                text: format!("{}\n{}\n", lines[0], lines[2]),
                removed: 1
            }
        );
        assert_eq!(scrub_ndjson(&text, |_| false), Scrubbed::Untouched);
        assert_eq!(scrub_ndjson(&text, |_| true), Scrubbed::Emptied { removed: 3 });
    }
}
