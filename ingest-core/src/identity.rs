//! The identity map: which distinct_ids are one person. It follows
//! Mixpanel's Original ID Merge (docs: "Identifying Users (Original)", the
//! `$identify`, `$create_alias` and `$merge` events), with the choices below
//! where that system is random or says nothing.
//!
//! - Ids are grouped in clusters. Every id is in exactly one cluster; an id
//!   nobody linked is a cluster of its own. Each cluster has one canonical
//!   id, which reports, visitors and exports use for all of its ids.
//! - `$identify` (mixpanel-browser's `identify()`: `distinct_id` the new
//!   id, `$anon_distinct_id` the one before; or Mixpanel's server payload
//!   `$identified_id` and `$anon_id`) joins the anonymous id to the
//!   identified id's cluster, only if the anonymous id was not merged with
//!   anything before. Mixpanel also asks that `$anon_id` be a UUID v4;
//!   mixpanel-browser's ids are `$device:`-prefixed and ours are not v4 at
//!   all, so we take any id.
//! - `$create_alias` (`alias()` in every library: `distinct_id` the
//!   original, `alias` the new id) joins the alias to the original's
//!   cluster, only if the alias was not merged before ("each alias can only
//!   map to one distinct_id").
//! - `$merge` (`$distinct_ids`: exactly two ids, sent to `/import` with the
//!   secret) joins the two clusters, whatever they hold.
//! - No cluster grows past [`MAX_IDENTITY_CLUSTER_IDS`] (Mixpanel's 500): a
//!   link that would pass it is ignored, as Mixpanel ignores it.
//! - The canonical id: Mixpanel picks one at random; here it is the
//!   canonical id of the cluster being joined (the identified id for
//!   `$identify`, the original for `$create_alias`, the first id of
//!   `$merge`), so a person's own user id is what exports show.
//! - Links are never undone (as in Mixpanel), and they apply to every event
//!   of the ids, before and after the link, because events keep the id they
//!   came with and are resolved when read.

use crate::error::FieldError;
use crate::event::Event;
pub use crate::limits::MAX_IDENTITY_CLUSTER_IDS;
use crate::limits::MAX_ID_CHARS;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Which identity event made a link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkKind {
    Identify,
    Alias,
    Merge,
}

/// One identity event, as queued for the consumer: `join`'s cluster is to
/// become part of `keep`'s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityLink {
    pub project: String,
    /// Which event made it (`via`, not `kind`: queue jobs are tagged `kind`).
    pub via: LinkKind,
    /// The id whose cluster stays (and names the result).
    pub keep: String,
    /// The id that joins it.
    pub join: String,
    pub time_ms: i64,
}

/// What the map knows of one id before a link: its cluster's canonical id
/// and how many ids that cluster holds (an unknown id: itself, 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cluster {
    pub canonical: String,
    pub size: u64,
}

impl Cluster {
    /// An id the map has no row for.
    pub fn alone(id: &str) -> Cluster {
        Cluster {
            canonical: id.to_owned(),
            size: 1,
        }
    }
}

/// Why a link changes nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unchanged {
    /// Both ids are already one cluster.
    AlreadyLinked,
    /// `$identify` or `$create_alias` for an id that was merged before.
    JoinerAlreadyMerged,
    /// The result would hold more than [`MAX_IDENTITY_CLUSTER_IDS`] ids.
    ClusterFull,
}

/// What to do with a link: every id of cluster `from` moves to `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Move { from: String, to: String },
    Unchanged(Unchanged),
}

/// The rules of the module doc, given what the map knows of both ids.
pub fn decide(kind: LinkKind, keep: &Cluster, join: &Cluster) -> Decision {
    if keep.canonical == join.canonical {
        return Decision::Unchanged(Unchanged::AlreadyLinked);
    }
    if kind != LinkKind::Merge && join.size > 1 {
        return Decision::Unchanged(Unchanged::JoinerAlreadyMerged);
    }
    if keep.size.saturating_add(join.size) > MAX_IDENTITY_CLUSTER_IDS {
        return Decision::Unchanged(Unchanged::ClusterFull);
    }
    Decision::Move {
        from: join.canonical.clone(),
        to: keep.canonical.clone(),
    }
}

/// The link a stored event makes, if it is an identity event:
/// `$identify` (mixpanel-browser's `distinct_id` + `$anon_distinct_id`, or
/// `$identified_id` + `$anon_id`) and `$create_alias` (`distinct_id` +
/// `alias`). Such events are also stored as events, as Mixpanel shows them.
pub fn link_of(event: &Event) -> Option<IdentityLink> {
    let text = |key: &str| {
        event
            .properties
            .get(key)
            .and_then(id_text)
            .filter(|id| id.chars().count() <= MAX_ID_CHARS)
    };
    let (kind, keep, join) = match event.name.as_str() {
        "$identify" => {
            let keep = text("$identified_id").or_else(|| Some(event.distinct_id.clone()).filter(|d| !d.is_empty()))?;
            let join = text("$anon_distinct_id").or_else(|| text("$anon_id"))?;
            (LinkKind::Identify, keep, join)
        }
        "$create_alias" => {
            let keep = Some(event.distinct_id.clone()).filter(|d| !d.is_empty())?;
            (LinkKind::Alias, keep, text("alias")?)
        }
        _ => return None,
    };
    Some(IdentityLink {
        project: event.project.clone(),
        via: kind,
        keep,
        join,
        time_ms: event.time_ms,
    })
}

/// Reads a `$merge` event's properties (`/import` only): `$distinct_ids`
/// must be exactly two ids. `index` names the event in errors.
pub fn merge_link(
    project: &str,
    properties: &Map<String, Value>,
    time_ms: i64,
    index: usize,
) -> Result<IdentityLink, FieldError> {
    const FIELD: &str = "properties.$distinct_ids";
    let ids = match properties.get("$distinct_ids") {
        Some(Value::Array(ids)) => ids,
        None | Some(Value::Null) => return Err(FieldError::new(index, FIELD, "is required")),
        Some(_) => return Err(FieldError::new(index, FIELD, "must be an array of two ids")),
    };
    let ids: Vec<String> = ids.iter().filter_map(id_text).collect();
    match ids.as_slice() {
        [keep, join] if ids.iter().all(|id| id.chars().count() <= MAX_ID_CHARS) => Ok(IdentityLink {
            project: project.to_owned(),
            via: LinkKind::Merge,
            keep: keep.clone(),
            join: join.clone(),
            time_ms,
        }),
        [_, _] => Err(FieldError::new(
            index,
            FIELD,
            format!("has an id longer than {MAX_ID_CHARS} characters"),
        )),
        _ => Err(FieldError::new(index, FIELD, "must be an array of two ids")),
    }
}

/// A non-empty id: a string, or a number (several SDKs send numeric ids).
fn id_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The map in memory: the reference for the rules above (the worker keeps
/// the same rows in D1's `identities`: one per linked id, naming its
/// cluster's canonical id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdentityMap {
    canonical: BTreeMap<String, String>,
}

impl IdentityMap {
    /// The canonical id of `id` (itself when it was never linked).
    pub fn resolve<'a>(&'a self, id: &'a str) -> &'a str {
        self.canonical.get(id).map_or(id, String::as_str)
    }

    pub fn cluster(&self, id: &str) -> Cluster {
        let canonical = self.resolve(id).to_owned();
        let size = self.canonical.values().filter(|c| **c == canonical).count() as u64;
        Cluster {
            size: size.max(1),
            canonical,
        }
    }

    /// Applies a link by the rules; returns what was decided.
    pub fn apply(&mut self, link: &IdentityLink) -> Decision {
        let decision = decide(link.via, &self.cluster(&link.keep), &self.cluster(&link.join));
        if let Decision::Move { from, to } = &decision {
            for id in [&link.keep, &link.join, to] {
                if !self.canonical.contains_key(id.as_str()) {
                    self.canonical.insert(id.clone(), id.clone());
                }
            }
            for canonical in self.canonical.values_mut() {
                if canonical == from {
                    canonical.clone_from(to);
                }
            }
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Dialect, PageContext};
    use serde_json::json;

    fn link(kind: LinkKind, keep: &str, join: &str) -> IdentityLink {
        IdentityLink {
            project: "p".into(),
            via: kind,
            keep: keep.into(),
            join: join.into(),
            time_ms: 0,
        }
    }

    fn event(name: &str, distinct_id: &str, properties: Value) -> Event {
        Event {
            project: "p".into(),
            name: name.into(),
            distinct_id: distinct_id.into(),
            device_id: None,
            time_ms: 7,
            insert_id: "i".into(),
            page: PageContext::default(),
            properties: properties.as_object().cloned().unwrap_or_default(),
            source: Dialect::MixpanelTrack,
            received_at_ms: 7,
            user_agent: None,
            country: None,
            region: None,
            city: None,
        }
    }

    #[test]
    fn identify_joins_an_anonymous_id_once() {
        let mut map = IdentityMap::default();
        let d1 = "$device:d1";
        assert!(matches!(
            map.apply(&link(LinkKind::Identify, "u1", d1)),
            Decision::Move { .. }
        ));
        assert_eq!((map.resolve(d1), map.resolve("u1")), ("u1", "u1"));
        // A second device of the same person joins too.
        map.apply(&link(LinkKind::Identify, "u1", "$device:d2"));
        assert_eq!(
            map.cluster("$device:d2"),
            Cluster {
                canonical: "u1".into(),
                size: 3
            }
        );
        // The same identify again changes nothing.
        assert_eq!(
            map.apply(&link(LinkKind::Identify, "u1", d1)),
            Decision::Unchanged(Unchanged::AlreadyLinked)
        );
        // d1 was merged with u1: another user cannot take it.
        assert_eq!(
            map.apply(&link(LinkKind::Identify, "u2", d1)),
            Decision::Unchanged(Unchanged::JoinerAlreadyMerged)
        );
        assert_eq!(map.resolve(d1), "u1");
        assert_eq!(map.resolve("u2"), "u2", "an id nobody linked is itself");
    }

    #[test]
    fn alias_maps_a_new_id_to_the_original_and_only_once() {
        let mut map = IdentityMap::default();
        map.apply(&link(LinkKind::Alias, "anon-1", "user@example.com"));
        assert_eq!(
            map.resolve("user@example.com"),
            "anon-1",
            "the original stays canonical"
        );
        // Chained aliases point to the same person.
        map.apply(&link(LinkKind::Alias, "user@example.com", "user-42"));
        assert_eq!(map.resolve("user-42"), "anon-1");
        // An alias already mapped cannot be mapped to another id.
        assert_eq!(
            map.apply(&link(LinkKind::Alias, "someone-else", "user-42")),
            Decision::Unchanged(Unchanged::JoinerAlreadyMerged)
        );
    }

    #[test]
    fn merge_joins_any_two_clusters() {
        let mut map = IdentityMap::default();
        map.apply(&link(LinkKind::Identify, "u1", "d1"));
        map.apply(&link(LinkKind::Identify, "u2", "d2"));
        assert!(matches!(
            map.apply(&link(LinkKind::Merge, "u2", "u1")),
            Decision::Move { .. }
        ));
        for id in ["u1", "d1", "u2", "d2"] {
            assert_eq!(map.resolve(id), "u2", "{id}");
        }
        assert_eq!(map.cluster("d1").size, 4);
    }

    #[test]
    fn a_cluster_holds_at_most_500_ids() {
        let mut map = IdentityMap::default();
        for n in 1..MAX_IDENTITY_CLUSTER_IDS {
            let d = map.apply(&link(LinkKind::Identify, "u", &format!("d{n}")));
            assert!(matches!(d, Decision::Move { .. }), "{n}");
        }
        assert_eq!(map.cluster("u").size, MAX_IDENTITY_CLUSTER_IDS);
        assert_eq!(
            map.apply(&link(LinkKind::Identify, "u", "one-more")),
            Decision::Unchanged(Unchanged::ClusterFull)
        );
        assert_eq!(map.resolve("one-more"), "one-more");
        // Merging two clusters counts both.
        let keep = Cluster {
            canonical: "a".into(),
            size: 250,
        };
        let join = Cluster {
            canonical: "b".into(),
            size: 250,
        };
        assert!(matches!(decide(LinkKind::Merge, &keep, &join), Decision::Move { .. }));
        let join = Cluster {
            canonical: "b".into(),
            size: 251,
        };
        assert_eq!(
            decide(LinkKind::Merge, &keep, &join),
            Decision::Unchanged(Unchanged::ClusterFull)
        );
    }

    #[test]
    fn identity_events_make_links() {
        // mixpanel-browser's identify().
        let e = event(
            "$identify",
            "u-7",
            json!({"$anon_distinct_id": "$device:abc", "$device_id": "abc"}),
        );
        assert_eq!(
            link_of(&e),
            Some(IdentityLink {
                project: "p".into(),
                via: LinkKind::Identify,
                keep: "u-7".into(),
                join: "$device:abc".into(),
                time_ms: 7
            })
        );
        // Mixpanel's server payload.
        let e = event("$identify", "", json!({"$identified_id": "u-8", "$anon_id": "a-1"}));
        assert_eq!(
            link_of(&e).map(|l| (l.keep, l.join)),
            Some(("u-8".into(), "a-1".into()))
        );
        // alias() of the Node and browser libraries.
        let e = event("$create_alias", "orig", json!({"alias": 42}));
        assert_eq!(
            link_of(&e).map(|l| (l.via, l.keep, l.join)),
            Some((LinkKind::Alias, "orig".into(), "42".into()))
        );
        // Incomplete ones make none (they stay plain events).
        assert_eq!(link_of(&event("$create_alias", "orig", json!({}))), None);
        assert_eq!(
            link_of(&event("$identify", "u", json!({"$anon_distinct_id": ""}))),
            None
        );
        assert_eq!(link_of(&event("Signed Up", "u", json!({"alias": "x"}))), None);
    }

    #[test]
    fn merge_needs_exactly_two_ids() {
        let props = |v: Value| json!({ "$distinct_ids": v }).as_object().cloned().unwrap_or_default();
        let ok = merge_link("p", &props(json!(["a", "b"])), 5, 0).expect("two ids");
        assert_eq!(
            (ok.via, ok.keep.as_str(), ok.join.as_str()),
            (LinkKind::Merge, "a", "b")
        );
        for bad in [json!(["a"]), json!(["a", "b", "c"]), json!("a,b"), json!(["a", ""])] {
            let e = merge_link("p", &props(bad.clone()), 5, 3).expect_err("refused");
            assert_eq!((e.index, e.field.as_str()), (3, "properties.$distinct_ids"), "{bad}");
        }
        let e = merge_link("p", &Map::new(), 5, 0).expect_err("missing");
        assert_eq!(e.message, "is required");
        let long = "x".repeat(MAX_ID_CHARS + 1);
        assert!(merge_link("p", &props(json!(["a", "x".repeat(MAX_ID_CHARS)])), 5, 0).is_ok());
        assert!(merge_link("p", &props(json!(["a", long])), 5, 0).is_err());
    }
}
