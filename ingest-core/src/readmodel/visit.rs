//! Visits (sessions): one visitor's web events with gaps under
//! [`VISIT_GAP_MS`]. The consumer keeps one row per visit and updates it
//! as events arrive; this module decides, for a batch of newly stored
//! events, which visit each joins, which visits it creates, and which
//! visits it joins into one (an event that arrives late can close the gap
//! between two). Visits are therefore the same whatever order and batches
//! the events came in: the result equals cutting each visitor's events at
//! every gap of 30 minutes or more.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A pause this long or longer ends a visit (Plausible's and Google
/// Analytics' 30 minutes).
pub const VISIT_GAP_MS: i64 = 30 * 60 * 1000;
/// A one-page visit with at least this much visible time is engaged, not a
/// bounce (Google Analytics 4's 10 seconds).
pub const ENGAGED_VISIT_MS: i64 = 10_000;

/// What a visit is reported by, taken from its first event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitAttributes {
    pub hostname: Option<String>,
    pub source: Option<String>,
    pub channel: Option<String>,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    pub country: Option<String>,
    pub region: Option<String>,
    pub city: Option<String>,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub device: Option<String>,
}

/// One web event as visits see it.
#[derive(Debug, Clone, PartialEq)]
pub struct Hit {
    pub visitor: String,
    pub time_ms: i64,
    /// Orders events of the same millisecond, so ties break the same way
    /// in every batch.
    pub insert_id: String,
    pub pageview: bool,
    /// A custom event or a click: the visitor did something on the page.
    pub interactive: bool,
    /// Visible time reported by an engagement event.
    pub engaged_ms: i64,
    pub path: Option<String>,
    pub attributes: VisitAttributes,
}

/// A stored visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    pub visit_id: String,
    pub visitor: String,
    pub start_ms: i64,
    pub last_ms: i64,
    pub entry: Option<String>,
    /// The first page view (where `entry` came from): time and insert_id,
    /// which orders events of the same millisecond.
    pub entry_at: Option<(i64, String)>,
    pub exit: Option<String>,
    /// The last page view (where `exit` came from).
    pub exit_at: Option<(i64, String)>,
    /// The event the attributes came from.
    pub attributes_at: (i64, String),
    pub pageviews: i64,
    pub events: i64,
    pub interactive: bool,
    pub engaged_ms: i64,
    pub attributes: VisitAttributes,
    /// Its visitor is counted in the visit-level rollup sketches (see
    /// [`crate::readmodel::rollup`]); until then reports add open visits'
    /// visitors themselves.
    #[serde(default)]
    pub finalized: bool,
}

impl Visit {
    /// One page view and nothing else done: no second page, no click or
    /// custom event, and less than [`ENGAGED_VISIT_MS`] of visible time.
    pub fn bounced(&self) -> bool {
        self.pageviews == 1 && !self.interactive && self.engaged_ms < ENGAGED_VISIT_MS
    }

    pub fn duration_ms(&self) -> i64 {
        self.last_ms - self.start_ms
    }

    fn new(hit: &Hit) -> Visit {
        let mut visit = Visit {
            visit_id: visit_id(&hit.visitor, hit.time_ms, &hit.insert_id),
            visitor: hit.visitor.clone(),
            start_ms: hit.time_ms,
            last_ms: hit.time_ms,
            entry: None,
            entry_at: None,
            exit: None,
            exit_at: None,
            attributes_at: (hit.time_ms, hit.insert_id.clone()),
            pageviews: 0,
            events: 0,
            interactive: false,
            engaged_ms: 0,
            attributes: hit.attributes.clone(),
            finalized: false,
        };
        visit.add(hit);
        visit
    }

    /// Takes one more event into the visit.
    fn add(&mut self, hit: &Hit) {
        self.events += 1;
        self.engaged_ms += hit.engaged_ms.max(0);
        self.interactive |= hit.interactive;
        let at = (hit.time_ms, hit.insert_id.clone());
        if at < self.attributes_at {
            self.attributes = hit.attributes.clone();
            self.attributes_at = at.clone();
        }
        self.start_ms = self.start_ms.min(hit.time_ms);
        self.last_ms = self.last_ms.max(hit.time_ms);
        if hit.pageview {
            self.pageviews += 1;
            if let Some(path) = &hit.path {
                if self.entry_at.as_ref().is_none_or(|first| at < *first) {
                    self.entry = Some(path.clone());
                    self.entry_at = Some(at.clone());
                }
                if self.exit_at.as_ref().is_none_or(|last| at > *last) {
                    self.exit = Some(path.clone());
                    self.exit_at = Some(at);
                }
            }
        }
    }

    /// Takes a later-starting visit of the same visitor into this one.
    fn absorb(&mut self, other: &Visit) {
        // A sketch that counted either visit must count the joined one.
        self.finalized |= other.finalized;
        self.events += other.events;
        self.pageviews += other.pageviews;
        self.engaged_ms += other.engaged_ms;
        self.interactive |= other.interactive;
        if other.attributes_at < self.attributes_at {
            self.attributes = other.attributes.clone();
            self.attributes_at = other.attributes_at.clone();
        }
        self.start_ms = self.start_ms.min(other.start_ms);
        self.last_ms = self.last_ms.max(other.last_ms);
        if let Some(theirs) = &other.entry_at {
            if self.entry_at.as_ref().is_none_or(|mine| theirs < mine) {
                self.entry = other.entry.clone();
                self.entry_at = Some(theirs.clone());
            }
        }
        if let Some(theirs) = &other.exit_at {
            if self.exit_at.as_ref().is_none_or(|mine| theirs > mine) {
                self.exit = other.exit.clone();
                self.exit_at = Some(theirs.clone());
            }
        }
    }

    fn reaches(&self, time_ms: i64) -> bool {
        time_ms > self.start_ms - VISIT_GAP_MS && time_ms < self.last_ms + VISIT_GAP_MS
    }
}

/// A visit id: stable for the same first event, so a batch retried after a
/// failed write makes the same ids again.
fn visit_id(visitor: &str, time_ms: i64, insert_id: &str) -> String {
    crate::hash::framed(&[visitor, &time_ms.to_string(), insert_id], 12)
}

/// What a batch did to the visits.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VisitChanges {
    /// Every visit the batch touched, as it was before (`None`: new).
    pub before: BTreeMap<String, Option<Visit>>,
    /// Every visit the batch touched that still exists, as it is now.
    pub after: BTreeMap<String, Visit>,
    /// Visits joined into another: (absorbed id, surviving id).
    pub merged: Vec<(String, String)>,
    /// The visit each hit belongs to, in the order the hits were given.
    pub visit_of_hit: Vec<String>,
}

/// Places new hits into visits. `open` holds the stored visits that any
/// hit could touch (the visitor's visits ending after the earliest hit
/// minus the gap); visits of other visitors may be in it.
pub fn place(open: Vec<Visit>, hits: &[Hit]) -> VisitChanges {
    let mut changes = VisitChanges::default();
    let mut by_visitor: BTreeMap<String, Vec<Visit>> = BTreeMap::new();
    for visit in open {
        by_visitor.entry(visit.visitor.clone()).or_default().push(visit);
    }
    // Hits in time order, remembering their places in the input.
    let mut order: Vec<usize> = (0..hits.len()).collect();
    order.sort_by(|&a, &b| {
        let (x, y) = (&hits[a], &hits[b]);
        (x.time_ms, &x.insert_id).cmp(&(y.time_ms, &y.insert_id))
    });
    let mut placed: Vec<Option<String>> = vec![None; hits.len()];

    for index in order {
        let hit = &hits[index];
        let visits = by_visitor.entry(hit.visitor.clone()).or_default();
        let mut reaching: Vec<usize> = (0..visits.len()).filter(|&i| visits[i].reaches(hit.time_ms)).collect();
        if reaching.is_empty() {
            let visit = Visit::new(hit);
            changes.before.entry(visit.visit_id.clone()).or_insert(None);
            placed[index] = Some(visit.visit_id.clone());
            visits.push(visit);
            continue;
        }
        // The earliest-starting visit survives; any other the hit reaches
        // is joined into it (the hit closes the gap between them).
        reaching.sort_by_key(|&i| (visits[i].start_ms, visits[i].visit_id.clone()));
        let ids: Vec<String> = reaching.iter().map(|&i| visits[i].visit_id.clone()).collect();
        for &i in &reaching {
            let v = &visits[i];
            changes
                .before
                .entry(v.visit_id.clone())
                .or_insert_with(|| Some(v.clone()));
        }
        let target = ids[0].clone();
        for id in &ids[1..] {
            let Some(pos) = visits.iter().position(|v| &v.visit_id == id) else {
                continue;
            };
            let absorbed = visits.remove(pos);
            if let Some(survivor) = visits.iter_mut().find(|v| v.visit_id == target) {
                survivor.absorb(&absorbed);
            }
            changes.merged.push((absorbed.visit_id, target.clone()));
        }
        if let Some(v) = visits.iter_mut().find(|v| v.visit_id == target) {
            v.add(hit);
        }
        placed[index] = Some(target);
    }

    // Merged visits point at their final survivor; hits placed in a visit
    // that was later absorbed follow it.
    let mut resolved = BTreeMap::new();
    for (absorbed, survivor) in &changes.merged {
        resolved.insert(absorbed.clone(), survivor.clone());
    }
    let follow = |id: &str| {
        let mut current = id.to_owned();
        while let Some(next) = resolved.get(&current) {
            current = next.clone();
        }
        current
    };
    // Only visits that were stored need their row pointed at the survivor;
    // one made and absorbed within this batch was never written.
    changes.merged = changes
        .merged
        .iter()
        .filter(|(absorbed, _)| matches!(changes.before.get(absorbed), Some(Some(_))))
        .map(|(absorbed, _)| (absorbed.clone(), follow(absorbed)))
        .collect();
    changes.visit_of_hit = placed.iter().map(|p| follow(p.as_deref().unwrap_or(""))).collect();
    for visits in by_visitor.into_values() {
        for visit in visits {
            if changes.before.contains_key(&visit.visit_id) {
                changes.after.insert(visit.visit_id.clone(), visit);
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: i64 = 1_790_000_000_000;
    const MIN: i64 = 60_000;

    fn hit(visitor: &str, minute: i64, id: &str, path: Option<&str>) -> Hit {
        Hit {
            visitor: visitor.into(),
            time_ms: T0 + minute * MIN,
            insert_id: id.into(),
            pageview: path.is_some(),
            interactive: path.is_none(),
            engaged_ms: 0,
            path: path.map(Into::into),
            attributes: VisitAttributes {
                source: Some(format!("from-{id}")),
                ..VisitAttributes::default()
            },
        }
    }

    /// Applies batches one after another, as the consumer does, and returns
    /// the visits that exist at the end.
    fn run(batches: &[Vec<Hit>]) -> Vec<Visit> {
        let mut stored: BTreeMap<String, Visit> = BTreeMap::new();
        for batch in batches {
            let changes = place(stored.values().cloned().collect(), batch);
            for (absorbed, _) in &changes.merged {
                stored.remove(absorbed);
            }
            for (id, visit) in changes.after {
                stored.insert(id, visit);
            }
        }
        let mut visits: Vec<Visit> = stored.into_values().collect();
        visits.sort_by_key(|v| (v.visitor.clone(), v.start_ms));
        visits
    }

    #[test]
    fn a_gap_of_thirty_minutes_ends_a_visit() {
        let visits = run(&[vec![
            hit("a", 0, "1", Some("/")),
            hit("a", 29, "2", Some("/pricing")),
            hit("a", 59, "3", Some("/")),
            hit("b", 5, "4", Some("/blog")),
        ]]);
        assert_eq!(visits.len(), 3);
        let first = &visits[0];
        assert_eq!((first.pageviews, first.duration_ms()), (2, 29 * MIN));
        assert_eq!(first.entry.as_deref(), Some("/"));
        assert_eq!(first.exit.as_deref(), Some("/pricing"));
        assert!(!first.bounced());
        assert!(
            visits[1].bounced(),
            "59 minutes is 30 after the last: a new one-page visit"
        );
        assert_eq!(visits[2].visitor, "b");
    }

    #[test]
    fn a_late_event_joins_two_visits_and_takes_the_entry() {
        let visits = run(&[
            vec![hit("a", 10, "1", Some("/two")), hit("a", 50, "2", Some("/three"))],
            vec![hit("a", 30, "3", Some("/middle"))],
            vec![hit("a", 0, "4", Some("/one"))],
        ]);
        assert_eq!(visits.len(), 1);
        let v = &visits[0];
        assert_eq!((v.pageviews, v.events), (4, 4));
        assert_eq!(v.entry.as_deref(), Some("/one"));
        assert_eq!(v.exit.as_deref(), Some("/three"));
        assert_eq!(
            v.attributes.source.as_deref(),
            Some("from-4"),
            "attributes of the earliest event"
        );
        assert_eq!(v.duration_ms(), 50 * MIN);
    }

    #[test]
    fn merges_name_stored_visits_only_and_hits_follow_the_survivor() {
        let first = place(
            Vec::new(),
            &[hit("a", 0, "1", Some("/")), hit("a", 40, "2", Some("/b"))],
        );
        assert_eq!(first.after.len(), 2);
        let stored: Vec<Visit> = first.after.values().cloned().collect();
        let second = place(stored, &[hit("a", 20, "3", None)]);
        assert_eq!(second.merged.len(), 1);
        assert_eq!(second.after.len(), 1);
        let survivor = second.after.keys().next().cloned().unwrap_or_default();
        assert_eq!(second.merged[0].1, survivor);
        assert_eq!(second.visit_of_hit, vec![survivor]);
        // Within one batch, a visit made and absorbed is not reported.
        let within = place(
            Vec::new(),
            &[hit("a", 40, "2", None), hit("a", 0, "1", None), hit("a", 20, "3", None)],
        );
        assert!(within.merged.is_empty());
        assert_eq!(within.after.len(), 1);
    }

    #[test]
    fn bounce_needs_one_page_and_nothing_else() {
        let mut engaged = hit("a", 0, "1", Some("/"));
        engaged.engaged_ms = ENGAGED_VISIT_MS;
        assert!(!run(&[vec![engaged.clone()]])[0].bounced());
        engaged.engaged_ms = ENGAGED_VISIT_MS - 1;
        assert!(run(&[vec![engaged]])[0].bounced());
        assert!(!run(&[vec![hit("a", 0, "1", Some("/")), hit("a", 1, "2", None)]])[0].bounced());
    }

    /// Visitor, start, last, page views, entry and exit.
    type Summary = (String, i64, i64, i64, Option<String>, Option<String>);

    /// Whatever the batches and their order, the visits equal those of
    /// cutting each visitor's sorted events at every gap of 30 minutes.
    #[test]
    fn batches_and_order_do_not_change_visits() {
        let mut seed: u64 = 42;
        let mut next = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for round in 0..50 {
            let mut hits = Vec::new();
            for i in 0..60 {
                let visitor = format!("v{}", next(4));
                let minute = next(300) as i64;
                hits.push(hit(
                    &visitor,
                    minute,
                    &format!("{round}-{i}"),
                    Some(&format!("/p{}", next(5))),
                ));
            }
            // Reference: sort and cut.
            let mut sorted = hits.clone();
            sorted.sort_by(|a, b| (&a.visitor, a.time_ms, &a.insert_id).cmp(&(&b.visitor, b.time_ms, &b.insert_id)));
            let mut expected: Vec<Summary> = Vec::new();
            let mut i = 0;
            while i < sorted.len() {
                let mut j = i;
                while j + 1 < sorted.len()
                    && sorted[j + 1].visitor == sorted[i].visitor
                    && sorted[j + 1].time_ms - sorted[j].time_ms < VISIT_GAP_MS
                {
                    j += 1;
                }
                expected.push((
                    sorted[i].visitor.clone(),
                    sorted[i].time_ms,
                    sorted[j].time_ms,
                    (j - i + 1) as i64,
                    sorted[i].path.clone(),
                    sorted[j].path.clone(),
                ));
                i = j + 1;
            }
            // Shuffled into random batches.
            let mut shuffled = hits;
            for k in (1..shuffled.len()).rev() {
                let m = next(k as u64 + 1) as usize;
                shuffled.swap(k, m);
            }
            let mut batches = Vec::new();
            while !shuffled.is_empty() {
                let take = (next(12) as usize + 1).min(shuffled.len());
                batches.push(shuffled.drain(..take).collect::<Vec<_>>());
            }
            let got: Vec<_> = run(&batches)
                .into_iter()
                .map(|v| (v.visitor, v.start_ms, v.last_ms, v.pageviews, v.entry, v.exit))
                .collect();
            assert_eq!(got, expected, "round {round}");
        }
    }
}
