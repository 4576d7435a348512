//! The identity map in D1 (`identities`: one row per linked id, naming its
//! cluster's canonical id). The rules are `ingest_core::identity`'s: this
//! reads what the map knows of a link's two ids, asks `decide`, and writes
//! the move in one batch.
//!
//! For readers (stats, visits, exports): an event's person is
//! [`RESOLVED_DISTINCT_ID`], i.e. the canonical id of its distinct_id's
//! cluster, or the distinct_id itself when nothing linked it. Links apply
//! to all of an id's events, before and after the link.

use ingest_core::identity::{decide, Cluster, Decision, IdentityLink};
use serde::Deserialize;
use std::collections::HashMap;
use wasm_bindgen::JsValue;
use worker::{D1Database, Result};

/// SQL for the person an `events` row belongs to, usable in any query over
/// `events` (as `events` or aliased `e`, write it for that alias).
pub const RESOLVED_DISTINCT_ID: &str = "COALESCE((SELECT i.canonical_id FROM identities i \
     WHERE i.project = events.project AND i.distinct_id = events.distinct_id), events.distinct_id)";

#[derive(Deserialize)]
struct Row {
    distinct_id: String,
    canonical_id: String,
    size: f64,
}

/// What the map knows of `ids`: each one's cluster (an id without a row is
/// alone).
pub async fn clusters(db: &D1Database, project: &str, ids: &[&str]) -> Result<HashMap<String, Cluster>> {
    let list = serde_json::Value::from(ids.to_vec()).to_string();
    let rows = db
        .prepare(
            "SELECT i.distinct_id, i.canonical_id, (SELECT COUNT(*) FROM identities c \
             WHERE c.project = i.project AND c.canonical_id = i.canonical_id) AS size \
             FROM identities i WHERE i.project = ?1 AND i.distinct_id IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[project.into(), list.into()])?
        .all()
        .await?
        .results::<Row>()?;
    let mut known: HashMap<String, Cluster> = rows
        .into_iter()
        .map(|r| {
            let cluster = Cluster {
                canonical: r.canonical_id,
                size: r.size as u64,
            };
            (r.distinct_id, cluster)
        })
        .collect();
    for id in ids {
        known.entry((*id).to_owned()).or_insert_with(|| Cluster::alone(id));
    }
    Ok(known)
}

/// Applies one link by the rules, in one D1 batch (a transaction): the
/// rows of both ids exist (each its own canonical at first), then every id
/// of the joining cluster moves to the kept cluster's canonical id. The
/// move only happens while the kept id still has that canonical id, so two
/// links racing for the same ids leave every id in exactly one cluster.
pub async fn apply_link(db: &D1Database, link: &IdentityLink, now_ms: i64) -> Result<Decision> {
    let known = clusters(db, &link.project, &[&link.keep, &link.join]).await?;
    let cluster = |id: &str| known.get(id).cloned().unwrap_or_else(|| Cluster::alone(id));
    let decision = decide(link.via, &cluster(&link.keep), &cluster(&link.join));
    let Decision::Move { from, to } = &decision else {
        return Ok(decision);
    };
    let now = JsValue::from_f64(now_ms as f64);
    let project: JsValue = link.project.as_str().into();
    let insert = |id: &str| {
        db.prepare(
            "INSERT OR IGNORE INTO identities (project, distinct_id, canonical_id, updated_at_ms) VALUES (?1, ?2, ?2, ?3)",
        )
        .bind(&[project.clone(), id.into(), now.clone()])
    };
    let statements = vec![
        insert(&link.keep)?,
        insert(&link.join)?,
        db.prepare(
            "UPDATE identities SET canonical_id = ?2, updated_at_ms = ?4 WHERE project = ?1 AND canonical_id = ?3 \
             AND (SELECT canonical_id FROM identities WHERE project = ?1 AND distinct_id = ?5) = ?2",
        )
        .bind(&[
            project.clone(),
            to.as_str().into(),
            from.as_str().into(),
            now.clone(),
            link.keep.as_str().into(),
        ])?,
    ];
    for result in db.batch(statements).await? {
        if let Some(error) = result.error() {
            return Err(worker::Error::RustError(error));
        }
    }
    Ok(decision)
}

/// The cluster `distinct_id` belongs to: its canonical id and every id in
/// it, sorted (just the id itself when nothing linked it).
pub async fn cluster_of(db: &D1Database, project: &str, distinct_id: &str) -> Result<(String, Vec<String>)> {
    #[derive(Deserialize)]
    struct Member {
        distinct_id: String,
    }
    let known = clusters(db, project, &[distinct_id]).await?;
    let canonical = known
        .get(distinct_id)
        .map_or_else(|| distinct_id.to_owned(), |c| c.canonical.clone());
    let mut ids: Vec<String> = db
        .prepare("SELECT distinct_id FROM identities WHERE project = ?1 AND canonical_id = ?2 ORDER BY distinct_id")
        .bind(&[project.into(), canonical.as_str().into()])?
        .all()
        .await?
        .results::<Member>()?
        .into_iter()
        .map(|m| m.distinct_id)
        .collect();
    if ids.is_empty() {
        ids.push(distinct_id.to_owned());
    }
    Ok((canonical, ids))
}
