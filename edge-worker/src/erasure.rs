//! GDPR erasure in D1 and R2 (the rules are `ingest_core::erasure`'s):
//! deleting a person with their tombstones, the tombstone check the
//! consumer runs in the transaction that stores events, and scrubbing the
//! R2 archive.

use ingest_core::d1::json_chunks;
use ingest_core::erasure::{arrivals, job_events, scrub_job, scrub_ndjson, user_subject, Scope, Scrubbed, Tombstones};
use ingest_core::identity::IdentityLink;
use ingest_core::sink::{archive_key, archive_prefix};
use ingest_core::Event;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashSet};
use wasm_bindgen::JsValue;
use worker::{Bucket, D1Database, D1PreparedStatement, D1Result, Result};

/// Deletes, among the rows just inserted, those a tombstone erases: events
/// received at or before an erasure of their person or (anonymous) device.
/// It runs in the same D1 batch as the insert, after it, so no erasure can
/// fall between the check and the write. Returns `(dedup_key, distinct_id)`
/// of what it deleted, so the sinks skip those too.
const ERASE_ON_ARRIVAL: &str = "DELETE FROM events WHERE (project, dedup_key, distinct_id) IN \
 (SELECT json_extract(j.value, '$.project'), json_extract(j.value, '$.dedup_key'), json_extract(j.value, '$.distinct_id') \
  FROM json_each(?1) AS j JOIN erasures AS t ON t.project = json_extract(j.value, '$.project') \
  AND t.subject = json_extract(j.value, '$.subject') AND t.erased_at_ms >= json_extract(j.value, '$.received_at_ms')) \
 RETURNING dedup_key, distinct_id";

/// Events of a batch that a tombstone already erases, found before the
/// read model counts them (the same rule as [`ERASE_ON_ARRIVAL`], read
/// instead of deleted): `(project, dedup_key, distinct_id)`.
pub async fn erased_already(db: &D1Database, events: &[Event]) -> Result<HashSet<(String, String, String)>> {
    #[derive(Deserialize)]
    struct Row {
        project: String,
        dedup_key: String,
        distinct_id: String,
    }
    let mut found = HashSet::new();
    for chunk in json_chunks(arrivals(events)) {
        let rows = db
            .prepare(
                "SELECT json_extract(j.value, '$.project') AS project, json_extract(j.value, '$.dedup_key') AS dedup_key, \
                 json_extract(j.value, '$.distinct_id') AS distinct_id FROM json_each(?1) AS j JOIN erasures AS t \
                 ON t.project = json_extract(j.value, '$.project') AND t.subject = json_extract(j.value, '$.subject') \
                 AND t.erased_at_ms >= json_extract(j.value, '$.received_at_ms')",
            )
            .bind(&[JsValue::from(chunk)])?
            .all()
            .await?
            .results::<Row>()?;
        found.extend(rows.into_iter().map(|r| (r.project, r.dedup_key, r.distinct_id)));
    }
    Ok(found)
}

/// The statements that honour tombstones for `events` (see
/// [`ERASE_ON_ARRIVAL`]), one per JSON chunk of their arrivals.
pub fn on_arrival(db: &D1Database, events: &[Event]) -> Result<Vec<D1PreparedStatement>> {
    json_chunks(arrivals(events))
        .into_iter()
        .map(|chunk| db.prepare(ERASE_ON_ARRIVAL).bind(&[JsValue::from(chunk)]))
        .collect()
}

/// What the [`on_arrival`] statements deleted: `(dedup_key, distinct_id)`.
pub fn erased_on_arrival(results: &[D1Result]) -> Result<HashSet<(String, String)>> {
    #[derive(Deserialize)]
    struct Row {
        dedup_key: String,
        distinct_id: String,
    }
    let mut erased = HashSet::new();
    for result in results {
        if let Some(error) = result.error() {
            return Err(worker::Error::RustError(error));
        }
        erased.extend(
            result
                .results::<Row>()?
                .into_iter()
                .map(|r| (r.dedup_key, r.distinct_id)),
        );
    }
    Ok(erased)
}

/// Stored events of a person (see `Scope::covers`): ?1 project, ?2 JSON
/// array of their ids, ?3 JSON array of their devices.
const SCOPE: &str = "project = ?1 AND (distinct_id IN (SELECT value FROM json_each(?2)) \
 OR ((distinct_id = device_id OR distinct_id = '$device:' || device_id) AND device_id IN (SELECT value FROM json_each(?3))))";

/// An erasure looked up but not yet done: who, which dead letters change,
/// which stored events go.
pub struct Plan {
    pub scope: Scope,
    letters: Vec<(f64, Scrubbed)>,
    /// Dedup keys of the events that go, whose KV marks the caller drops.
    pub dedup_keys: Vec<String>,
    /// Archive partitions that hold those events.
    pub archive_prefixes: BTreeSet<String>,
}

/// What an erasure did.
#[derive(Debug, Default)]
pub struct Erased {
    pub events: usize,
    pub profiles: usize,
    /// Rows of the identity map (the person's linked ids).
    pub identities: usize,
    /// Dead letters rewritten without the person's events, or removed.
    pub dead_letters: usize,
    pub tombstones: usize,
}

#[derive(Debug, Deserialize)]
struct Letter {
    id: f64,
    body: String,
}

/// Dead letters that contain any of `needles` (JSON-quoted ids) as text;
/// which of them really hold the person's data is decided by parsing.
async fn letters_mentioning(db: &D1Database, needles: &[String]) -> Result<Vec<Letter>> {
    let list = Value::Array(needles.iter().cloned().map(Value::String).collect()).to_string();
    db.prepare(
        "SELECT id, body FROM dead_letters WHERE EXISTS \
         (SELECT 1 FROM json_each(?1) WHERE instr(dead_letters.body, value) > 0) ORDER BY id",
    )
    .bind(&[list.into()])?
    .all()
    .await?
    .results::<Letter>()
}

fn quoted(id: &str) -> String {
    Value::String(id.to_owned()).to_string()
}

fn json_list<'a>(items: impl IntoIterator<Item = &'a String>) -> String {
    Value::Array(items.into_iter().cloned().map(Value::String).collect()).to_string()
}

/// Looks up what erasing one person of one project takes: the devices they
/// were identified on (in D1 and in dead letters), their events (and the
/// anonymous ones of those devices), and their part of every dead letter.
pub async fn plan(db: &D1Database, project: &str, distinct_id: &str) -> Result<Plan> {
    #[derive(Deserialize)]
    struct Device {
        device_id: String,
    }
    #[derive(Deserialize)]
    struct Key {
        dedup_key: String,
        time_ms: f64,
    }
    #[derive(Deserialize)]
    struct Id {
        distinct_id: String,
    }
    let mut scope = Scope::new(project, distinct_id);
    // Every id the identity map links with the one named.
    let linked = db
        .prepare(
            "SELECT distinct_id FROM identities WHERE project = ?1 AND canonical_id = \
             (SELECT canonical_id FROM identities WHERE project = ?1 AND distinct_id = ?2)",
        )
        .bind(&[project.into(), distinct_id.into()])?
        .all()
        .await?
        .results::<Id>()?;
    scope.ids.extend(linked.into_iter().map(|i| i.distinct_id));
    let devices = db
        .prepare(
            "SELECT DISTINCT device_id FROM events WHERE project = ?1 \
             AND distinct_id IN (SELECT value FROM json_each(?2)) AND device_id IS NOT NULL",
        )
        .bind(&[project.into(), json_list(&scope.ids).into()])?
        .all()
        .await?
        .results::<Device>()?;
    scope.devices.extend(devices.into_iter().map(|d| d.device_id));

    // Dead letters: the person's identified events there may name devices
    // D1 never saw; a second look finds those devices' anonymous events.
    let needles =
        |scope: &Scope| -> Vec<String> { scope.ids.iter().chain(&scope.devices).map(|id| quoted(id)).collect() };
    let mut letters = letters_mentioning(db, &needles(&scope)).await?;
    let known = scope.devices.len();
    for letter in &letters {
        scope.learn_devices(&job_events(&letter.body));
    }
    if scope.devices.len() > known {
        letters = letters_mentioning(db, &needles(&scope)).await?;
    }
    let letters = letters
        .into_iter()
        .map(|l| (l.id, scrub_job(&l.body, &scope)))
        .filter(|(_, s)| *s != Scrubbed::Untouched)
        .collect();

    let keys = db
        .prepare(format!("SELECT dedup_key, time_ms FROM events WHERE {SCOPE}"))
        .bind(&[
            project.into(),
            json_list(&scope.ids).into(),
            json_list(&scope.devices).into(),
        ])?
        .all()
        .await?
        .results::<Key>()?;
    Ok(Plan {
        archive_prefixes: keys.iter().map(|k| archive_prefix(project, k.time_ms as i64)).collect(),
        dedup_keys: keys.into_iter().map(|k| k.dedup_key).collect(),
        letters,
        scope,
    })
}

/// Does a planned erasure in one D1 batch: tombstones for the person's ids
/// and devices, their events, profiles and identity-map rows deleted, their
/// dead letters rewritten or removed. Events stored since the plan fall under the same
/// rule in the same statement.
pub async fn apply(db: &D1Database, plan: &Plan, now_ms: i64) -> Result<Erased> {
    let scope = &plan.scope;
    let project = scope.project.as_str();
    let ids = json_list(&scope.ids);
    let subjects = scope.subjects();
    let mut statements =
        vec![
        db.prepare(
            "INSERT INTO erasures (project, subject, erased_at_ms) SELECT ?1, value, ?2 FROM json_each(?3) WHERE true \
             ON CONFLICT (project, subject) DO UPDATE SET erased_at_ms = max(erased_at_ms, excluded.erased_at_ms)",
        )
        .bind(&[project.into(), JsValue::from_f64(now_ms as f64), json_list(&subjects).into()])?,
        db.prepare(format!("DELETE FROM events WHERE {SCOPE}"))
            .bind(&[project.into(), ids.as_str().into(), json_list(&scope.devices).into()])?,
        db.prepare("DELETE FROM profiles WHERE project = ?1 AND distinct_id IN (SELECT value FROM json_each(?2))")
            .bind(&[project.into(), ids.as_str().into()])?,
        db.prepare("DELETE FROM identities WHERE project = ?1 AND distinct_id IN (SELECT value FROM json_each(?2))")
            .bind(&[project.into(), ids.as_str().into()])?,
    ];
    for (id, scrubbed) in &plan.letters {
        let id = JsValue::from_f64(*id);
        statements.push(match scrubbed {
            Scrubbed::Rewritten { text, .. } => db
                .prepare("UPDATE dead_letters SET body = ?1 WHERE id = ?2")
                .bind(&[text.as_str().into(), id])?,
            _ => db.prepare("DELETE FROM dead_letters WHERE id = ?1").bind(&[id])?,
        });
    }
    let results = db.batch(statements).await?;
    let changes = |i: usize| {
        results
            .get(i)
            .and_then(|r| r.meta().ok().flatten())
            .and_then(|m| m.changes)
            .unwrap_or(0)
    };
    Ok(Erased {
        events: changes(1),
        profiles: changes(2),
        identities: changes(3),
        dead_letters: plan.letters.len(),
        tombstones: subjects.len(),
    })
}

/// Whether an identity link queued at `queued_at_ms` names an id erased at
/// or after that time: applying it would bring the erased id back into the
/// map. (A link carries no time of its own acceptance, so the queue's is
/// used; this check and the link's own writes are two steps, unlike the
/// events' and profiles' checks.)
pub async fn link_erased(db: &D1Database, link: &IdentityLink, queued_at_ms: i64) -> Result<bool> {
    #[derive(Deserialize)]
    struct Count {
        n: f64,
    }
    let subjects = json_list(&[user_subject(&link.keep), user_subject(&link.join)]);
    let found: Option<Count> = db
        .prepare(
            "SELECT COUNT(*) AS n FROM erasures WHERE project = ?1 \
             AND subject IN (SELECT value FROM json_each(?2)) AND erased_at_ms >= ?3",
        )
        .bind(&[
            link.project.as_str().into(),
            subjects.into(),
            JsValue::from_f64(queued_at_ms as f64),
        ])?
        .first(None)
        .await?;
    Ok(found.is_some_and(|c| c.n > 0.0))
}

/// The tombstones of `project` among the subjects of `events`.
async fn tombstones_for(db: &D1Database, project: &str, events: &[Event]) -> Result<Tombstones> {
    #[derive(Deserialize)]
    struct Row {
        subject: String,
        erased_at_ms: f64,
    }
    let subjects: BTreeSet<String> = arrivals(events).into_iter().map(|a| a.subject).collect();
    if subjects.is_empty() {
        return Ok(Tombstones::default());
    }
    let list = Value::Array(subjects.into_iter().map(Value::String).collect()).to_string();
    let rows = db
        .prepare(
            "SELECT subject, erased_at_ms FROM erasures WHERE project = ?1 \
             AND subject IN (SELECT value FROM json_each(?2))",
        )
        .bind(&[project.into(), list.into()])?
        .all()
        .await?
        .results::<Row>()?;
    Ok(Tombstones {
        erased_at: rows.into_iter().map(|r| (r.subject, r.erased_at_ms as i64)).collect(),
    })
}

/// What one call of [`scrub_archive`] did.
#[derive(Debug, Default, serde::Serialize)]
pub struct ArchiveScrub {
    pub objects: usize,
    pub rewritten: usize,
    pub removed: usize,
    pub events_removed: usize,
    /// Where the next call goes on, when the partition has more objects.
    pub cursor: Option<String>,
}

/// Rewrites up to `limit` archive objects under `prefix` (inside one
/// project's folder) without the events that the project's tombstones erase. A
/// rewritten object gets the name of its new contents (as every archive
/// object has) and the old one is deleted; an object left empty is deleted.
pub async fn scrub_archive(
    db: &D1Database,
    bucket: &Bucket,
    project: &str,
    prefix: &str,
    cursor: Option<String>,
    limit: u32,
) -> Result<ArchiveScrub> {
    let mut list = bucket.list().prefix(prefix).limit(limit);
    if let Some(cursor) = cursor {
        list = list.cursor(cursor);
    }
    let page = list.execute().await?;
    let mut done = ArchiveScrub {
        cursor: page.truncated().then(|| page.cursor()).flatten(),
        ..ArchiveScrub::default()
    };
    for object in page.objects() {
        let key = object.key();
        done.objects += 1;
        let Some(found) = bucket.get(key.clone()).execute().await? else {
            continue;
        };
        let Some(body) = found.body() else { continue };
        let text = body.text().await?;
        let events = ingest_core::erasure::ndjson_events(&text);
        let tombstones = tombstones_for(db, project, &events).await?;
        match scrub_ndjson(&text, |e| e.project == project && tombstones.erase(e)) {
            Scrubbed::Untouched => {}
            Scrubbed::Rewritten { text, removed } => {
                let partition = &key[..key.rfind('/').map_or(0, |i| i + 1)];
                let renamed = archive_key(partition, &text);
                bucket.put(renamed.clone(), text.into_bytes()).execute().await?;
                if renamed != key {
                    bucket.delete(key).await?;
                }
                done.rewritten += 1;
                done.events_removed += removed;
            }
            Scrubbed::Emptied { removed } => {
                bucket.delete(key).await?;
                done.removed += 1;
                done.events_removed += removed;
            }
        }
    }
    Ok(done)
}
