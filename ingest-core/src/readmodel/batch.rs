//! One consumer batch through the read model: enrich the events D1 does
//! not hold yet, place the web ones into visits, and sum what they add to
//! the rollups. The consumer reads what this needs (which events are new,
//! the open visits), calls [`process`] once, and writes the result in one
//! transaction.

use super::rollup::Rollup;
use super::visit::{place, Hit, Visit, VisitAttributes};
use super::Site;
use crate::enrich::{enrich, is_pageview, Enrichment, ENGAGEMENT};
use crate::event::Event;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Client events that are not something the visitor did on the page, so
/// they do not stop a visit from bouncing.
pub const NOT_INTERACTIVE: [&str; 5] = [ENGAGEMENT, "$404", "$identify", "$create_alias", "$merge"];
/// Visible time one engagement report may claim: a day. More is a broken
/// or hostile client.
pub const MAX_ENGAGED_MS: i64 = crate::time::DAY_MS;

/// What the identity map says of the batch's server users: (project,
/// distinct_id) -> the canonical id of its cluster. Ids nothing linked are
/// absent (each is its own person).
pub type People = HashMap<(String, String), String>;

/// The visitor an event counts as: its device (cookie or cookieless hash)
/// or, for a server event, its person: the canonical id `people` names for
/// its distinct_id, so an alias or merge makes one visitor of two ids.
/// `None` for an event of nobody (a Mixpanel `/track` event without an id
/// and without `ip=1`): it counts as an event, in no visit and as no
/// visitor.
pub fn visitor_of<'e>(event: &'e Event, people: &'e People) -> Option<&'e str> {
    let visitor = match event.device_id.as_deref() {
        Some(device) => device,
        None => people
            .get(&(event.project.clone(), event.distinct_id.clone()))
            .map_or(event.distinct_id.as_str(), String::as_str),
    };
    Some(visitor).filter(|v| !v.is_empty())
}

/// An event as the `events` table stores it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredEvent<'a> {
    #[serde(flatten)]
    pub event: &'a Event,
    pub path: Option<String>,
    pub hostname: Option<String>,
    pub referrer_source: Option<String>,
    pub channel: &'static str,
    pub utm_source: Option<String>,
    pub utm_medium: Option<String>,
    pub utm_campaign: Option<String>,
    pub utm_term: Option<String>,
    pub utm_content: Option<String>,
    pub browser: Option<String>,
    pub browser_version: Option<String>,
    pub os: Option<String>,
    pub device: Option<&'static str>,
    pub visit_id: Option<String>,
}

impl<'a> StoredEvent<'a> {
    fn new(event: &'a Event, e: Enrichment) -> StoredEvent<'a> {
        StoredEvent {
            event,
            path: e.path,
            hostname: e.hostname,
            referrer_source: e.referrer_source,
            channel: e.channel,
            utm_source: e.utm_source,
            utm_medium: e.utm_medium,
            utm_campaign: e.utm_campaign,
            utm_term: e.utm_term,
            utm_content: e.utm_content,
            browser: e.browser,
            browser_version: e.browser_version,
            os: e.os,
            device: e.device,
            visit_id: None,
        }
    }
}

/// A visit row to write, with its project.
#[derive(Debug, Clone, PartialEq)]
pub struct VisitWrite {
    pub project: String,
    pub visit: Visit,
}

/// A stored visit joined into another by a late event.
#[derive(Debug, Clone, PartialEq)]
pub struct Merge {
    pub project: String,
    pub absorbed: String,
    pub survivor: String,
    /// The absorbed visit's span, where its stored events lie.
    pub start_ms: i64,
    pub last_ms: i64,
}

#[derive(Debug, Default)]
pub struct BatchResult<'a> {
    pub events: Vec<StoredEvent<'a>>,
    /// Visits created or changed.
    pub visits: Vec<VisitWrite>,
    /// Stored visits joined into another.
    pub merged: Vec<Merge>,
    pub rollup: Rollup,
}

fn hit_of(event: &Event, e: &Enrichment, people: &People) -> Option<Hit> {
    let path = e.path.clone()?;
    let visitor = visitor_of(event, people)?.to_owned();
    let pageview = is_pageview(&event.name);
    let engaged_ms = if event.name == ENGAGEMENT {
        match event.properties.get("engaged_ms") {
            Some(Value::Number(n)) => n.as_f64().unwrap_or(0.0).clamp(0.0, MAX_ENGAGED_MS as f64) as i64,
            _ => 0,
        }
    } else {
        0
    };
    Some(Hit {
        visitor,
        time_ms: event.time_ms,
        insert_id: event.insert_id.clone(),
        pageview,
        interactive: !pageview && !NOT_INTERACTIVE.contains(&event.name.as_str()),
        engaged_ms,
        path: Some(path),
        attributes: VisitAttributes {
            hostname: e.hostname.clone(),
            source: e.referrer_source.clone(),
            channel: Some(e.channel.to_owned()),
            utm_source: e.utm_source.clone(),
            utm_medium: e.utm_medium.clone(),
            utm_campaign: e.utm_campaign.clone(),
            utm_term: e.utm_term.clone(),
            utm_content: e.utm_content.clone(),
            country: event.country.clone(),
            region: event.region.clone(),
            city: event.city.clone(),
            browser: e.browser.clone(),
            browser_version: e.browser_version.clone(),
            os: e.os.clone(),
            device: e.device.map(str::to_owned),
        },
    })
}

/// Enrichment alone, for a consumer that keeps no visits or rollups
/// (`READ_MODEL = "off"`, the benchmark's baseline).
pub fn enrich_all(events: &[Event]) -> Vec<StoredEvent<'_>> {
    events.iter().map(|e| StoredEvent::new(e, enrich(e))).collect()
}

/// Runs a batch of events that D1 does not hold yet. `open` holds the
/// stored visits of their visitors that may be reached (see
/// [`place`]); `people` resolves server users to persons (see
/// [`visitor_of`]); `site` gives each project's rules (a project it does
/// not know is rolled up in UTC without goals).
pub fn process<'a, 's>(
    fresh: &'a [Event],
    open: Vec<(String, Visit)>,
    people: &People,
    site: impl Fn(&str) -> Option<Site<'s>>,
) -> BatchResult<'a> {
    let mut result = BatchResult::default();
    let default_zone = crate::zone::Zone::utc();
    let mut open_by_project: BTreeMap<String, Vec<Visit>> = BTreeMap::new();
    for (project, visit) in open {
        open_by_project.entry(project).or_default().push(visit);
    }
    // Hits per project, remembering which stored event each came from.
    let mut hits: BTreeMap<String, (Vec<Hit>, Vec<usize>)> = BTreeMap::new();
    for event in fresh {
        let enrichment = enrich(event);
        if let Some(hit) = hit_of(event, &enrichment, people) {
            let (list, owners) = hits.entry(event.project.clone()).or_default();
            list.push(hit);
            owners.push(result.events.len());
        }
        let rules = site(&event.project).unwrap_or(Site::plain(&event.project, &default_zone));
        result
            .rollup
            .add_event(&rules, event, &enrichment, visitor_of(event, people));
        result.events.push(StoredEvent::new(event, enrichment));
    }
    for (project, (list, owners)) in hits {
        let changes = place(open_by_project.remove(&project).unwrap_or_default(), &list);
        for (owner, visit_id) in owners.iter().zip(&changes.visit_of_hit) {
            if let Some(stored) = result.events.get_mut(*owner) {
                stored.visit_id = Some(visit_id.clone());
            }
        }
        let rules = site(&project).unwrap_or(Site::plain(&project, &default_zone));
        for before in changes.before.values().flatten() {
            result.rollup.add_visit(&rules, before, -1);
        }
        for visit in changes.after.into_values() {
            result.rollup.add_visit(&rules, &visit, 1);
            result.visits.push(VisitWrite {
                project: project.clone(),
                visit,
            });
        }
        for (absorbed, survivor) in changes.merged {
            if let Some(Some(old)) = changes.before.get(&absorbed) {
                result.merged.push(Merge {
                    project: project.clone(),
                    start_ms: old.start_ms,
                    last_ms: old.last_ms,
                    absorbed,
                    survivor,
                });
            }
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Dialect, PageContext};
    use crate::readmodel::rollup::{Dim, RowKey};
    use crate::zone::Zone;
    use serde_json::json;

    const T: i64 = 1_790_000_000_000;

    fn event(name: &str, minute: i64, url: Option<&str>, props: Value) -> Event {
        Event {
            project: "p".into(),
            name: name.into(),
            distinct_id: "user".into(),
            device_id: Some("dev".into()),
            time_ms: T + minute * 60_000,
            insert_id: format!("{name}-{minute}"),
            page: PageContext {
                url: url.map(Into::into),
                referrer: Some("https://news.ycombinator.com/".into()),
                ..PageContext::default()
            },
            properties: props.as_object().cloned().unwrap_or_default(),
            source: Dialect::Browser,
            received_at_ms: T,
            user_agent: None,
            country: Some("NL".into()),
            region: None,
            city: None,
        }
    }

    /// Issue 18: a page view counts as one whatever the client calls it,
    /// each decoded by its own dialect from what the client sends; custom
    /// events keep their names.
    #[test]
    fn every_clients_page_view_counts_as_one() {
        use crate::auth::KeyKind;
        use crate::dialect::{plausible, posthog, umami, vemetric};
        use crate::event::{EventDraft, RequestContext};
        use crate::validate::{finish, Admission};

        let request = RequestContext {
            received_at_ms: T,
            user_agent: Some("Mozilla/5.0".into()),
            request_id: "req".into(),
            ..RequestContext::default()
        };
        let cx = |visitor: &'static str| Admission {
            project: "p",
            key: KeyKind::Public,
            request: &request,
            anonymous_id: Some(visitor),
        };
        let named = |name: &str, visitor: &'static str, dialect: Dialect| {
            let draft = EventDraft {
                name: Some(json!(name)),
                page: PageContext {
                    url: Some("https://a.test/x".into()),
                    ..PageContext::default()
                },
                ..EventDraft::default()
            };
            finish(draft, 0, &cx(visitor).as_dialect(dialect, true)).ok()
        };
        let umami_site = "4fb6a0c2-5b8e-4a62-9e47-3c1d2b0a9f10";
        let mut events: Vec<Event> = Vec::new();
        let mut add = |name: &str, event: Option<Event>| match event {
            Some(e) => events.push(e),
            None => panic!("{name} did not decode"),
        };
        // Our tracker and mixpanel-browser keep their names ($mp_web_page_view
        // is read as a page view).
        add("tracker", named("$pageview", "v1", Dialect::Browser));
        add(
            "mixpanel-browser",
            named("$mp_web_page_view", "v2", Dialect::MixpanelTrack),
        );
        let vemetric_headers = vemetric::Headers {
            token: Some("t"),
            ..vemetric::Headers::default()
        };
        add(
            "vemetric",
            vemetric::decode_event(br#"{"name":"$$pageView","url":"https://a.test/x"}"#, &vemetric_headers)
                .ok()
                .and_then(|r| vemetric::finish_event(r, &cx("v3")).ok())
                .map(|(e, _)| e),
        );
        add(
            "plausible",
            plausible::decode(br#"{"n":"pageview","u":"https://a.test/x","d":"a.test"}"#)
                .ok()
                .and_then(|r| plausible::finish(r, &cx("v4")).ok()),
        );
        let umami_body =
            format!(r#"{{"type":"event","payload":{{"website":"{umami_site}","hostname":"a.test","url":"/x"}}}}"#);
        add(
            "umami",
            umami::decode(umami_body.as_bytes())
                .ok()
                .and_then(|r| umami::finish_event(r, &cx("v5")).ok()),
        );
        add(
            "posthog",
            posthog::decode(br#"{"event":"$pageview","properties":{"distinct_id":"v6","token":"t","$current_url":"https://a.test/x"}}"#)
                .ok()
                .and_then(|c| posthog::finish(c, &cx("v6")).ok())
                .and_then(|(mut e, _)| e.pop()),
        );
        // Custom events, one per new dialect.
        add(
            "plausible custom",
            plausible::decode(br#"{"n":"Signup","u":"https://a.test/x","d":"a.test"}"#)
                .ok()
                .and_then(|r| plausible::finish(r, &cx("v4")).ok()),
        );
        let umami_custom =
            format!(r#"{{"type":"event","payload":{{"website":"{umami_site}","url":"/x","name":"Signup"}}}}"#);
        add(
            "umami custom",
            umami::decode(umami_custom.as_bytes())
                .ok()
                .and_then(|r| umami::finish_event(r, &cx("v5")).ok()),
        );
        add(
            "posthog custom",
            posthog::decode(
                br#"{"event":"Signup","properties":{"distinct_id":"v6","$current_url":"https://a.test/x"}}"#,
            )
            .ok()
            .and_then(|c| posthog::finish(c, &cx("v6")).ok())
            .and_then(|(mut e, _)| e.pop()),
        );

        let zone = Zone::utc();
        let r = process(&events, Vec::new(), &People::new(), |p| {
            (p == "p").then(|| Site::plain("p", &zone))
        });
        let row = |dim: Dim, value: &str| {
            r.rollup
                .rows
                .get(&RowKey {
                    project: "p".into(),
                    dim: dim.code(),
                    period: "2026-09-21".into(),
                    value: value.into(),
                })
                .map(|c| (c.counters.pageviews, c.counters.events))
        };
        assert_eq!(row(Dim::Total, ""), Some((6, 9)), "six page views of nine events");
        assert_eq!(row(Dim::Page, "/x"), Some((6, 6)));
        assert_eq!(row(Dim::Event, "Signup"), Some((0, 3)), "custom events keep their name");
        assert_eq!(r.visits.len(), 6, "one visit per visitor");
        assert!(r.visits.iter().all(|v| v.visit.pageviews == 1));
    }

    #[test]
    fn a_batch_enriches_places_and_rolls_up() {
        let zone = Zone::utc();
        let events = vec![
            event("$pageview", 0, Some("https://a.test/"), json!({})),
            event("$engagement", 1, Some("https://a.test/"), json!({"engaged_ms": 45_000})),
            event("server-side", 2, None, json!({})),
        ];
        let r = process(&events, Vec::new(), &People::new(), |p| {
            (p == "p").then(|| Site::plain("p", &zone))
        });
        assert_eq!(r.events.len(), 3);
        assert_eq!(r.events[0].path.as_deref(), Some("/"));
        assert_eq!(r.events[0].channel, "Social");
        assert!(r.events[0].visit_id.is_some());
        assert_eq!(r.events[0].visit_id, r.events[1].visit_id);
        assert_eq!(r.events[2].visit_id, None, "a server event without a page has no visit");
        assert_eq!(r.visits.len(), 1);
        let v = &r.visits[0].visit;
        assert_eq!((v.pageviews, v.events, v.engaged_ms), (1, 2, 45_000));
        assert!(!v.bounced(), "45 s of visible time is engagement");
        let total = r
            .rollup
            .rows
            .get(&RowKey {
                project: "p".into(),
                dim: Dim::Total.code(),
                period: "2026-09-21".into(),
                value: String::new(),
            })
            .expect("total row");
        assert_eq!(
            (total.counters.events, total.counters.pageviews, total.counters.visits),
            (3, 1, 1)
        );
        assert_eq!(total.counters.bounces, 0);
        assert_eq!(total.counters.duration_ms, 60_000);
        // The stored form flattens the event and adds the columns.
        let row = serde_json::to_value(&r.events[0]).expect("serialises");
        assert_eq!(row["name"], "$pageview");
        assert_eq!(row["referrer_source"], "Hacker News");
    }

    #[test]
    fn an_event_of_nobody_is_an_event_and_no_visitor() {
        let zone = Zone::utc();
        let mut nobody = event("$pageview", 0, Some("https://a.test/"), json!({}));
        nobody.device_id = None;
        nobody.distinct_id = String::new();
        let r = process(std::slice::from_ref(&nobody), Vec::new(), &People::new(), |_| {
            Some(Site::plain("p", &zone))
        });
        assert!(r.visits.is_empty());
        assert_eq!(r.events[0].visit_id, None);
        let total = r
            .rollup
            .rows
            .values()
            .find(|c| c.counters.events == 1)
            .expect("a total row");
        assert!(total.visitors.is_empty());
    }

    #[test]
    fn engagement_claims_are_capped() {
        let e = event("$engagement", 0, Some("https://a.test/"), json!({"engaged_ms": 1e15}));
        let hit = hit_of(&e, &enrich(&e), &People::new()).expect("web event");
        assert_eq!(hit.engaged_ms, MAX_ENGAGED_MS);
        let neg = event("$engagement", 0, Some("https://a.test/"), json!({"engaged_ms": -5}));
        assert_eq!(
            hit_of(&neg, &enrich(&neg), &People::new()).map(|h| h.engaged_ms),
            Some(0)
        );
    }

    #[test]
    fn ids_the_identity_map_joined_are_one_visitor() {
        let zone = Zone::utc();
        let server = |id: &str, minute: i64| {
            let mut e = event("Signed up", minute, None, json!({}));
            e.device_id = None;
            e.distinct_id = id.into();
            e.source = Dialect::MixpanelImport;
            e
        };
        let events = vec![server("anon-7", 0), server("user-7", 1), server("user-8", 2)];
        let visitors_with = |people: &People| {
            let r = process(&events, Vec::new(), people, |_| Some(Site::plain("p", &zone)));
            r.rollup
                .rows
                .iter()
                .find(|(k, _)| k.dim == Dim::Total.code())
                .map(|(_, c)| c.visitors.len())
        };
        assert_eq!(visitors_with(&People::new()), Some(3), "three ids, nothing linked");
        let mut people = People::new();
        people.insert(("p".into(), "anon-7".into()), "user-7".into());
        people.insert(("p".into(), "user-7".into()), "user-7".into());
        assert_eq!(visitors_with(&people), Some(2), "anon-7 and user-7 are one person");
        // A browser event still counts as its device, whatever its user.
        let web = event("$pageview", 3, Some("https://a.test/"), json!({}));
        assert_eq!(visitor_of(&web, &people), Some("dev"));
    }
}
