//! Rollups: per project, dimension, period and value, the counts reports
//! read instead of raw events. The consumer builds a [`Rollup`] of deltas
//! from the events a batch really added (never from a resend, which D1's
//! key already refused) and from the visits those events changed, then
//! adds it to the stored rows in the same transaction as the events.
//!
//! Each fresh event adds to its own day's and month's rows ("event-level"
//! dimensions: page, event name, link, goal, property). Each visit adds to
//! the rows of the day and month it started in ("visit-level" dimensions:
//! entry and exit page, source, channel, campaign, place, browser, system,
//! device); when a batch changes a visit, its old contribution is taken
//! away and its new one added.
//!
//! Counters can be taken away; a visitor sketch cannot forget anyone. So a
//! visit's visitor enters the visit-level sketches only once the visit is
//! final (no event arrived for [`VISIT_GAP_MS`] and none is due): until
//! then its exit page, and rarely its entry or source, may still change.
//! Reports add the visitors of visits not yet final from the `visits`
//! table, which holds only recent ones. An event that arrives after its
//! visit was made final and changes the visit adds the visitor to the new
//! values; the old values keep it (the one approximation, documented).
//!
//! [`VISIT_GAP_MS`]: super::visit::VISIT_GAP_MS

use super::visit::Visit;
use super::Site;
use crate::enrich::{is_pageview, Enrichment, FILE_DOWNLOAD, OUTBOUND_LINK};
use crate::event::Event;
use crate::limits::{MAX_ROLLUP_PROPERTIES, MAX_ROLLUP_VALUE_CHARS};
use crate::sketch::hash_id;
use crate::zone::Zone;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};

/// Events older than this (against their arrival) add nothing to the
/// per-minute realtime rows: an import of last year is not "now".
pub const REALTIME_WINDOW_MS: i64 = 60 * 60 * 1000;
/// Revenue is summed in millionths of the currency unit, exactly.
pub const REVENUE_SCALE: f64 = 1_000_000.0;

/// The report dimensions. The string codes are what rollup rows store.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dim {
    Total,
    // Event-level.
    Page,
    Event,
    Outbound,
    Download,
    Goal,
    /// A property of one custom event.
    Property {
        event: String,
        key: String,
    },
    // Visit-level.
    Entry,
    Exit,
    Hostname,
    Source,
    Channel,
    UtmSource,
    UtmMedium,
    UtmCampaign,
    UtmTerm,
    UtmContent,
    Country,
    Region,
    City,
    Browser,
    BrowserVersion,
    Os,
    Device,
}

/// Separates the parts of a property dimension's code.
const PROPERTY_SEPARATOR: char = '\u{1f}';

impl Dim {
    /// Every dimension a report can break down by or filter on by name.
    pub const NAMED: [(&'static str, Dim); 23] = [
        ("page", Dim::Page),
        ("event", Dim::Event),
        ("outbound", Dim::Outbound),
        ("download", Dim::Download),
        ("goal", Dim::Goal),
        ("entry", Dim::Entry),
        ("exit", Dim::Exit),
        ("hostname", Dim::Hostname),
        ("source", Dim::Source),
        ("channel", Dim::Channel),
        ("utm_source", Dim::UtmSource),
        ("utm_medium", Dim::UtmMedium),
        ("utm_campaign", Dim::UtmCampaign),
        ("utm_term", Dim::UtmTerm),
        ("utm_content", Dim::UtmContent),
        ("country", Dim::Country),
        ("region", Dim::Region),
        ("city", Dim::City),
        ("browser", Dim::Browser),
        ("browser_version", Dim::BrowserVersion),
        ("os", Dim::Os),
        ("device", Dim::Device),
        ("", Dim::Total),
    ];

    pub fn code(&self) -> String {
        match self {
            Dim::Property { event, key } => format!("p{PROPERTY_SEPARATOR}{event}{PROPERTY_SEPARATOR}{key}"),
            other => Dim::NAMED
                .iter()
                .find(|(_, d)| d == other)
                .map(|(name, _)| (*name).to_owned())
                .unwrap_or_default(),
        }
    }

    /// A dimension by its API name (`source`, `utm_campaign`); a property
    /// is `prop:EVENT:KEY`.
    pub fn from_name(name: &str) -> Option<Dim> {
        if let Some(rest) = name.strip_prefix("prop:") {
            let (event, key) = rest.split_once(':')?;
            if event.is_empty() || key.is_empty() {
                return None;
            }
            return Some(Dim::Property {
                event: event.to_owned(),
                key: key.to_owned(),
            });
        }
        Dim::NAMED
            .iter()
            .find(|(n, d)| *n == name && *d != Dim::Total)
            .map(|(_, d)| d.clone())
    }

    /// Whether the dimension describes visits (so rows carry visits,
    /// bounces and durations) rather than single events.
    pub fn is_visit_level(&self) -> bool {
        !matches!(
            self,
            Dim::Total | Dim::Page | Dim::Event | Dim::Outbound | Dim::Download | Dim::Goal | Dim::Property { .. }
        )
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub visits: i64,
    pub pageviews: i64,
    pub events: i64,
    pub bounces: i64,
    pub duration_ms: i64,
    pub revenue_micros: i64,
}

impl Counters {
    fn add(&mut self, other: &Counters, sign: i64) {
        self.visits += sign * other.visits;
        self.pageviews += sign * other.pageviews;
        self.events += sign * other.events;
        self.bounces += sign * other.bounces;
        self.duration_ms += sign * other.duration_ms;
        self.revenue_micros += sign * other.revenue_micros;
    }
}

/// What one batch adds to one row: counter deltas and visitors to count.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    pub counters: Counters,
    pub visitors: BTreeSet<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RowKey {
    pub project: String,
    pub dim: String,
    /// `YYYY-MM-DD` or `YYYY-MM` in the project's time zone.
    pub period: String,
    pub value: String,
}

/// The deltas of one batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Rollup {
    pub rows: BTreeMap<RowKey, Cell>,
    /// Totals per project and local hour (the instant it starts).
    pub hours: BTreeMap<(String, i64), Cell>,
    /// Totals per project and minute, for the realtime view.
    pub minutes: BTreeMap<(String, i64), Cell>,
}

fn cut(value: &str) -> String {
    match value.char_indices().nth(MAX_ROLLUP_VALUE_CHARS) {
        Some((at, _)) => value[..at].to_owned(),
        None => value.to_owned(),
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `$revenue` (`{"amount": 12.5, "currency": "EUR"}`) in millionths, when
/// it is in the site's currency.
pub fn revenue_micros(event: &Event, currency: &str) -> Option<i64> {
    let Some(Value::Object(revenue)) = event.properties.get("$revenue") else {
        return None;
    };
    let same_currency = revenue
        .get("currency")
        .and_then(Value::as_str)
        .is_some_and(|c| c.eq_ignore_ascii_case(currency));
    let amount = revenue.get("amount").and_then(|a| match a {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    })?;
    (same_currency && amount.is_finite()).then(|| (amount * REVENUE_SCALE).round() as i64)
}

/// The custom-event properties rolled up: scalar values of the keys the
/// project lists, at most [`MAX_ROLLUP_PROPERTIES`] in key order.
fn rolled_properties<'e>(event: &'e Event, keys: &'e [String]) -> impl Iterator<Item = (&'e String, String)> {
    event
        .properties
        .iter()
        .filter(move |(k, _)| keys.iter().any(|wanted| wanted == *k))
        .filter_map(|(k, v)| scalar_text(v).map(|t| (k, t)))
        .take(MAX_ROLLUP_PROPERTIES)
}

/// Whether an event name is one of the clients' own (`$pageview`,
/// `$engagement`, …) rather than a custom event.
fn is_custom(name: &str) -> bool {
    !name.starts_with('$')
}

/// What one event or visit adds to a row: counters (already negated when
/// a visit's old contribution is taken away) and the visitor to count.
struct Part {
    counters: Counters,
    visitor: Option<u64>,
}

impl Rollup {
    fn cell(&mut self, project: &str, dim: &Dim, period: String, value: &str) -> &mut Cell {
        self.rows
            .entry(RowKey {
                project: project.to_owned(),
                dim: dim.code(),
                period,
                value: cut(value),
            })
            .or_default()
    }

    /// Adds a part to the day and month rows of `time_ms`.
    fn both_periods(&mut self, site: &Site<'_>, time_ms: i64, dim: &Dim, value: &str, part: &Part) {
        for period in [site.zone.day(time_ms), site.zone.month(time_ms)] {
            let cell = self.cell(site.project, dim, period, value);
            cell.counters.add(&part.counters, 1);
            cell.visitors.extend(part.visitor);
        }
    }

    /// An event the batch stored: its event-level rows, the hour and the
    /// minute.
    pub fn add_event(&mut self, site: &Site<'_>, event: &Event, enrichment: &Enrichment, visitor: Option<&str>) {
        let who = visitor.map(hash_id);
        let pageview = is_pageview(&event.name);
        let revenue = revenue_micros(event, site.currency).unwrap_or(0);
        let one = Counters {
            events: 1,
            pageviews: i64::from(pageview),
            revenue_micros: revenue,
            ..Counters::default()
        };
        let part = Part {
            counters: one,
            visitor: who,
        };
        let t = event.time_ms;
        self.both_periods(site, t, &Dim::Total, "", &part);
        let hour = self
            .hours
            .entry((site.project.to_owned(), site.zone.hour_start(t)))
            .or_default();
        hour.counters.add(&one, 1);
        hour.visitors.extend(who);
        if event.received_at_ms - t <= REALTIME_WINDOW_MS {
            let cell = self
                .minutes
                .entry((site.project.to_owned(), Zone::minute_start(t)))
                .or_default();
            cell.counters.add(&one, 1);
            cell.visitors.extend(who);
        }
        if pageview {
            if let Some(path) = &enrichment.path {
                self.both_periods(site, t, &Dim::Page, path, &part);
            }
        }
        self.both_periods(site, t, &Dim::Event, &event.name, &part);
        let href = || event.properties.get("href").and_then(scalar_text);
        if event.name == OUTBOUND_LINK {
            if let Some(href) = href() {
                self.both_periods(site, t, &Dim::Outbound, &href, &part);
            }
        }
        if event.name == FILE_DOWNLOAD {
            if let Some(href) = href() {
                self.both_periods(site, t, &Dim::Download, &href, &part);
            }
        }
        for goal in site
            .goals
            .iter()
            .filter(|g| g.matches(&event.name, pageview, enrichment.path.as_deref()))
        {
            self.both_periods(site, t, &Dim::Goal, &goal.name, &part);
        }
        if is_custom(&event.name) {
            for (key, value) in rolled_properties(event, site.properties) {
                let dim = Dim::Property {
                    event: event.name.clone(),
                    key: key.clone(),
                };
                self.both_periods(site, t, &dim, &value, &part);
            }
        }
    }

    /// A visit's contribution, added (`sign` 1) or taken away (-1).
    pub fn add_visit(&mut self, site: &Site<'_>, visit: &Visit, sign: i64) {
        let who = Some(hash_id(&visit.visitor));
        let counts = Counters {
            visits: 1,
            pageviews: visit.pageviews,
            events: visit.events,
            bounces: i64::from(visit.bounced()),
            duration_ms: visit.duration_ms(),
            ..Counters::default()
        };
        let mut signed = Counters::default();
        signed.add(&counts, sign);
        // Only a final visit's visitor is in the sketches (module notes).
        let visitor = who.filter(|_| sign > 0 && visit.finalized);
        // Page views and events already count per event in the totals.
        let totals = Part {
            counters: Counters {
                pageviews: 0,
                events: 0,
                ..signed
            },
            visitor: None,
        };
        let t = visit.start_ms;
        self.both_periods(site, t, &Dim::Total, "", &totals);
        let hour = self
            .hours
            .entry((site.project.to_owned(), site.zone.hour_start(t)))
            .or_default();
        hour.counters.add(&totals.counters, 1);
        let part = Part {
            counters: signed,
            visitor,
        };
        for (dim, value) in visit_dims(visit) {
            self.both_periods(site, t, &dim, &value, &part);
        }
    }

    /// A visit became final: its visitor enters the sketches of its
    /// visit-level rows (its counters are already in).
    pub fn finalize(&mut self, site: &Site<'_>, visit: &Visit) {
        let part = Part {
            counters: Counters::default(),
            visitor: Some(hash_id(&visit.visitor)),
        };
        for (dim, value) in visit_dims(visit) {
            self.both_periods(site, visit.start_ms, &dim, &value, &part);
        }
    }
}

/// The visit-level rows a visit counts in, with their values (`""` where
/// the visit has none, except entry and exit, which a visit without a
/// page view lacks).
pub fn visit_dims(visit: &Visit) -> Vec<(Dim, String)> {
    let a = &visit.attributes;
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let version = match (&a.browser, &a.browser_version) {
        (Some(b), Some(v)) => format!("{b} {v}"),
        (Some(b), None) => b.clone(),
        _ => String::new(),
    };
    let mut dims: Vec<(Dim, String)> = vec![
        (Dim::Hostname, text(&a.hostname)),
        (Dim::Source, text(&a.source)),
        (Dim::Channel, text(&a.channel)),
        (Dim::UtmSource, text(&a.utm_source)),
        (Dim::UtmMedium, text(&a.utm_medium)),
        (Dim::UtmCampaign, text(&a.utm_campaign)),
        (Dim::UtmTerm, text(&a.utm_term)),
        (Dim::UtmContent, text(&a.utm_content)),
        (Dim::Country, text(&a.country)),
        (Dim::Region, text(&a.region)),
        (Dim::City, text(&a.city)),
        (Dim::Browser, text(&a.browser)),
        (Dim::BrowserVersion, version),
        (Dim::Os, text(&a.os)),
        (Dim::Device, text(&a.device)),
    ];
    if let Some(entry) = &visit.entry {
        dims.push((Dim::Entry, entry.clone()));
    }
    if let Some(exit) = &visit.exit {
        dims.push((Dim::Exit, exit.clone()));
    }
    dims.into_iter().map(|(d, v)| (d, cut(&v))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::enrich;
    use crate::event::{Dialect, PageContext};
    use crate::readmodel::visit::{place, Hit, VisitAttributes};
    use crate::readmodel::Goal;
    use serde_json::json;

    const T: i64 = 1_790_000_000_000; // 2026-09-21T14:13:20Z

    fn event(name: &str, url: &str, properties: Value, time_ms: i64) -> Event {
        Event {
            project: "p".into(),
            name: name.into(),
            distinct_id: "u1".into(),
            device_id: Some("d1".into()),
            time_ms,
            insert_id: format!("{name}-{time_ms}"),
            page: PageContext {
                url: Some(url.into()),
                ..PageContext::default()
            },
            properties: properties.as_object().cloned().unwrap_or_default(),
            source: Dialect::Browser,
            received_at_ms: time_ms,
            user_agent: None,
            country: Some("DE".into()),
            region: None,
            city: None,
        }
    }

    fn row<'a>(r: &'a Rollup, dim: &Dim, period: &str, value: &str) -> Option<&'a Cell> {
        r.rows.get(&RowKey {
            project: "p".into(),
            dim: dim.code(),
            period: period.into(),
            value: value.into(),
        })
    }

    #[test]
    fn an_event_counts_in_its_day_month_hour_and_minute() {
        let zone = Zone::named("Europe/Berlin").expect("zone");
        let goals = vec![
            Goal::event("Signup", "Signup"),
            Goal::page("Visit /pricing", "/pricing**"),
        ];
        let properties = vec!["plan".to_owned(), "seats".to_owned(), "nested".to_owned()];
        let site = Site {
            project: "p",
            zone: &zone,
            goals: &goals,
            currency: "EUR",
            properties: &properties,
        };
        let mut r = Rollup::default();
        let pv = event("$pageview", "https://a.test/pricing/team", json!({}), T);
        r.add_event(&site, &pv, &enrich(&pv), Some("d1"));
        let signup = event(
            "Signup",
            "https://a.test/pricing",
            json!({"plan": "pro", "seats": 3, "$revenue": {"amount": 12.5, "currency": "EUR"}, "nested": {"x": 1}}),
            T + 1000,
        );
        r.add_event(&site, &signup, &enrich(&signup), Some("d1"));

        let total = row(&r, &Dim::Total, "2026-09-21", "").expect("total row");
        assert_eq!((total.counters.events, total.counters.pageviews), (2, 1));
        assert_eq!(total.counters.revenue_micros, 12_500_000);
        assert_eq!(total.visitors.len(), 1);
        assert_eq!(row(&r, &Dim::Total, "2026-09", "").map(|c| c.counters.events), Some(2));
        assert_eq!(
            row(&r, &Dim::Page, "2026-09-21", "/pricing/team").map(|c| c.counters.pageviews),
            Some(1)
        );
        assert!(
            row(&r, &Dim::Page, "2026-09-21", "/pricing").is_none(),
            "a custom event is not a page view"
        );
        assert_eq!(
            row(&r, &Dim::Goal, "2026-09-21", "Visit /pricing").map(|c| c.counters.events),
            Some(1)
        );
        assert_eq!(
            row(&r, &Dim::Goal, "2026-09-21", "Signup").map(|c| c.counters.revenue_micros),
            Some(12_500_000)
        );
        let plan = Dim::Property {
            event: "Signup".into(),
            key: "plan".into(),
        };
        assert_eq!(row(&r, &plan, "2026-09-21", "pro").map(|c| c.counters.events), Some(1));
        let seats = Dim::Property {
            event: "Signup".into(),
            key: "seats".into(),
        };
        assert!(row(&r, &seats, "2026-09-21", "3").is_some());
        let nested = Dim::Property {
            event: "Signup".into(),
            key: "nested".into(),
        };
        assert!(
            !r.rows.keys().any(|k| k.dim == nested.code()),
            "objects are not rolled up"
        );
        assert_eq!(r.hours.len(), 1);
        assert_eq!(r.minutes.values().map(|c| c.counters.events).sum::<i64>(), 2);
    }

    #[test]
    fn late_imports_do_not_reach_realtime_and_other_currencies_do_not_sum() {
        let zone = Zone::utc();
        let site = Site::plain("p", &zone);
        let mut old = event(
            "Buy",
            "https://a.test/",
            json!({"$revenue": {"amount": 5, "currency": "EUR"}}),
            T,
        );
        old.received_at_ms = T + REALTIME_WINDOW_MS + 1;
        let mut r = Rollup::default();
        r.add_event(&site, &old, &enrich(&old), Some("d1"));
        assert!(r.minutes.is_empty());
        assert_eq!(
            row(&r, &Dim::Total, "2026-09-21", "").map(|c| c.counters.revenue_micros),
            Some(0)
        );
    }

    #[test]
    fn a_changed_visit_moves_its_counts() {
        let zone = Zone::utc();
        let site = Site::plain("p", &zone);
        let hit = |minute: i64, path: &str, source: &str| Hit {
            visitor: "d1".into(),
            time_ms: T + minute * 60_000,
            insert_id: format!("{minute}"),
            pageview: true,
            interactive: false,
            engaged_ms: 0,
            path: Some(path.into()),
            attributes: VisitAttributes {
                source: Some(source.into()),
                ..VisitAttributes::default()
            },
        };
        // First batch: one page from Bing, a bounce.
        let first = place(Vec::new(), &[hit(10, "/b", "Bing")]);
        let mut r = Rollup::default();
        for v in first.after.values() {
            r.add_visit(&site, v, 1);
        }
        // Second batch: an earlier page from Google joins the visit.
        let second = place(first.after.values().cloned().collect(), &[hit(0, "/a", "Google")]);
        for v in second.before.values().flatten() {
            r.add_visit(&site, v, -1);
        }
        for v in second.after.values() {
            r.add_visit(&site, v, 1);
        }
        let day = "2026-09-21";
        let total = row(&r, &Dim::Total, day, "").expect("total").counters;
        assert_eq!((total.visits, total.bounces, total.duration_ms), (1, 0, 10 * 60_000));
        assert_eq!(row(&r, &Dim::Source, day, "Bing").map(|c| c.counters.visits), Some(0));
        let google = row(&r, &Dim::Source, day, "Google").expect("google").counters;
        assert_eq!((google.visits, google.pageviews), (1, 2));
        assert_eq!(row(&r, &Dim::Entry, day, "/a").map(|c| c.counters.visits), Some(1));
        assert_eq!(row(&r, &Dim::Entry, day, "/b").map(|c| c.counters.visits), Some(0));
        assert_eq!(row(&r, &Dim::Exit, day, "/b").map(|c| c.counters.visits), Some(1));
    }

    #[test]
    fn visit_sketches_wait_for_the_final_visit() {
        let zone = Zone::utc();
        let site = Site::plain("p", &zone);
        let hit = |minute: i64, path: &str| Hit {
            visitor: "d1".into(),
            time_ms: T + minute * 60_000,
            insert_id: format!("{minute}"),
            pageview: true,
            interactive: false,
            engaged_ms: 0,
            path: Some(path.into()),
            attributes: VisitAttributes::default(),
        };
        let first = place(Vec::new(), &[hit(0, "/a")]);
        let mut r = Rollup::default();
        for v in first.after.values() {
            r.add_visit(&site, v, 1);
        }
        // The exit moves from /a to /b: /a must not keep the visitor.
        let second = place(first.after.values().cloned().collect(), &[hit(5, "/b")]);
        for v in second.before.values().flatten() {
            r.add_visit(&site, v, -1);
        }
        let visit = second.after.values().next().cloned().expect("one visit");
        r.add_visit(&site, &visit, 1);
        let day = "2026-09-21";
        assert!(row(&r, &Dim::Exit, day, "/a").is_some_and(|c| c.visitors.is_empty() && c.counters.visits == 0));
        assert!(row(&r, &Dim::Exit, day, "/b").is_some_and(|c| c.visitors.is_empty() && c.counters.visits == 1));
        r.finalize(&site, &visit);
        assert_eq!(row(&r, &Dim::Exit, day, "/b").map(|c| c.visitors.len()), Some(1));
        assert_eq!(row(&r, &Dim::Exit, day, "/a").map(|c| c.visitors.len()), Some(0));
        assert_eq!(
            row(&r, &Dim::Exit, day, "/b").map(|c| c.counters.visits),
            Some(1),
            "counters unchanged"
        );
        // A final visit that changes adds its visitor to the new values.
        let mut late = visit.clone();
        late.finalized = true;
        late.exit = Some("/c".into());
        r.add_visit(&site, &late, 1);
        assert_eq!(row(&r, &Dim::Exit, day, "/c").map(|c| c.visitors.len()), Some(1));
    }

    #[test]
    fn dimension_names_and_codes() {
        assert_eq!(Dim::from_name("utm_campaign"), Some(Dim::UtmCampaign));
        assert_eq!(Dim::from_name(""), None);
        assert_eq!(Dim::from_name("nope"), None);
        let p = Dim::from_name("prop:Signup:plan").expect("property");
        assert_eq!(p.code(), "p\u{1f}Signup\u{1f}plan");
        assert_eq!(Dim::from_name("prop:Signup"), None);
        assert!(Dim::Source.is_visit_level() && !Dim::Page.is_visit_level());
        assert_eq!(
            cut(&"é".repeat(MAX_ROLLUP_VALUE_CHARS + 3)).chars().count(),
            MAX_ROLLUP_VALUE_CHARS
        );
    }
}
