//! D1 for the CRM API's own rules (migration 0005): which user each email
//! or `_id` names, and each user's last counted email open. Both are read
//! and written on the request path, so a login is visible to the very next
//! request and an email open is judged once, however the queue runs. The
//! decisions are `ingest_core::dialect::crm`'s; this module only stores.

use ingest_core::dialect::crm::{self, Found, KnownUser, Resolved, UserKeys};
use serde::Deserialize;
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement, Result};

#[derive(Debug, Deserialize)]
struct IdentityRow {
    identifier: String,
    distinct_id: String,
    /// The user's email identifier, if it has one (`email:<email>`).
    email: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ProfileRow {
    distinct_id: String,
    email: Option<String>,
}

/// What storage knows of a request's identifiers: their links, and for
/// users from before the links existed (or made by `/engage`), a profile
/// stored under the email or `_id` itself.
pub async fn find(db: &D1Database, project: &str, keys: &UserKeys) -> Result<Found> {
    let identifiers = Value::from(keys.keys()).to_string();
    let names: Vec<&str> = [keys.email.as_deref(), keys.id.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let results = db
        .batch(vec![
            db.prepare(
                "SELECT u.identifier, u.distinct_id, \
                 (SELECT e.identifier FROM crm_users e WHERE e.project = u.project AND e.distinct_id = u.distinct_id \
                  AND e.identifier >= 'email:' AND e.identifier < 'email;' LIMIT 1) AS email \
                 FROM crm_users u WHERE u.project = ?1 AND u.identifier IN (SELECT value FROM json_each(?2))",
            )
            .bind(&[project.into(), identifiers.into()])?,
            db.prepare(
                "SELECT distinct_id, json_extract(properties, '$.\"$email\"') AS email FROM profiles \
                 WHERE project = ?1 AND distinct_id IN (SELECT value FROM json_each(?2))",
            )
            .bind(&[project.into(), Value::from(names).to_string().into()])?,
        ])
        .await?;
    let mut rows = results.into_iter();
    let linked: Vec<IdentityRow> = match rows.next() {
        Some(result) => result.results()?,
        None => Vec::new(),
    };
    let profiles: Vec<ProfileRow> = match rows.next() {
        Some(result) => result.results()?,
        None => Vec::new(),
    };
    let by_link = |key: String| {
        linked.iter().find(|row| row.identifier == key).map(|row| KnownUser {
            distinct_id: row.distinct_id.clone(),
            email: row
                .email
                .as_deref()
                .and_then(|e| e.strip_prefix("email:"))
                .map(str::to_owned),
        })
    };
    let by_profile = |name: &str| {
        profiles
            .iter()
            .find(|row| row.distinct_id == name)
            .map(|row| KnownUser {
                distinct_id: row.distinct_id.clone(),
                email: row.email.clone().map(|e| e.trim().to_lowercase()),
            })
    };
    Ok(Found {
        by_email: keys
            .email
            .as_deref()
            .and_then(|e| by_link(crm::email_key(e)).or_else(|| by_profile(e))),
        by_id: keys
            .id
            .as_deref()
            .and_then(|i| by_link(crm::id_key(i)).or_else(|| by_profile(i))),
    })
}

/// Writes what a login resolved, in one transaction: new links (a link
/// that exists already is kept, so the first of two racing logins wins) and
/// an anonymous `_id` moving to the named user (only if it still points
/// where it did).
pub async fn link(db: &D1Database, project: &str, resolved: &Resolved, now_ms: i64) -> Result<()> {
    let mut statements: Vec<D1PreparedStatement> = Vec::new();
    if let Some((key, from)) = &resolved.moved {
        statements.push(
            db.prepare(
                "UPDATE crm_users SET distinct_id = ?3 WHERE project = ?1 AND identifier = ?2 AND distinct_id = ?4",
            )
            .bind(&[
                project.into(),
                key.as_str().into(),
                resolved.distinct_id.as_str().into(),
                from.as_str().into(),
            ])?,
        );
    }
    for key in &resolved.link {
        statements.push(
            db.prepare(
                "INSERT INTO crm_users (project, identifier, distinct_id, created_at_ms) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (project, identifier) DO NOTHING",
            )
            .bind(&[
                project.into(),
                key.as_str().into(),
                resolved.distinct_id.as_str().into(),
                JsValue::from_f64(now_ms as f64),
            ])?,
        );
    }
    if !statements.is_empty() {
        db.batch(statements).await?;
    }
    Ok(())
}

/// The outcome of an email open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Open {
    /// Counted at its time; `previous` is the open it replaced as the last
    /// counted one, for [`release_open`].
    Counted { previous: Option<i64> },
    /// Within 20 minutes of the last counted open: discarded.
    Discarded,
}

#[derive(Debug, Deserialize)]
struct LastOpen {
    counted_at_ms: f64,
}

/// Claims an email open of `distinct_id` at `now_ms`: reads the last counted
/// open, lets [`crm::email_open_counts`] judge, and writes by compare-and-set
/// so that of two opens at the same moment exactly one counts.
pub async fn claim_open(db: &D1Database, project: &str, distinct_id: &str, now_ms: i64) -> Result<Open> {
    let now = JsValue::from_f64(now_ms as f64);
    for _ in 0..ingest_core::limits::EMAIL_OPEN_CLAIM_ATTEMPTS {
        let last: Option<LastOpen> = db
            .prepare("SELECT counted_at_ms FROM crm_email_opens WHERE project = ?1 AND distinct_id = ?2")
            .bind(&[project.into(), distinct_id.into()])?
            .first(None)
            .await?;
        let last = last.map(|row| row.counted_at_ms as i64);
        if !crm::email_open_counts(last, now_ms) {
            return Ok(Open::Discarded);
        }
        let statement = match last {
            None => db
                .prepare(
                    "INSERT INTO crm_email_opens (project, distinct_id, counted_at_ms) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (project, distinct_id) DO NOTHING",
                )
                .bind(&[project.into(), distinct_id.into(), now.clone()])?,
            Some(previous) => db
                .prepare(
                    "UPDATE crm_email_opens SET counted_at_ms = ?3 \
                     WHERE project = ?1 AND distinct_id = ?2 AND counted_at_ms = ?4",
                )
                .bind(&[
                    project.into(),
                    distinct_id.into(),
                    now.clone(),
                    JsValue::from_f64(previous as f64),
                ])?,
        };
        let changed = statement.run().await?.meta()?.and_then(|m| m.changes).unwrap_or(0);
        if changed == 1 {
            return Ok(Open::Counted { previous: last });
        }
    }
    Err(worker::Error::RustError(
        "email open contended past its attempts".into(),
    ))
}

/// Gives a counted open back when its event could not be queued, so the
/// client's retry counts instead of being discarded as a repeat of an open
/// that was never stored. Only if no later open has counted since.
pub async fn release_open(
    db: &D1Database,
    project: &str,
    distinct_id: &str,
    now_ms: i64,
    previous: Option<i64>,
) -> Result<()> {
    let now = JsValue::from_f64(now_ms as f64);
    let statement = match previous {
        None => db
            .prepare("DELETE FROM crm_email_opens WHERE project = ?1 AND distinct_id = ?2 AND counted_at_ms = ?3")
            .bind(&[project.into(), distinct_id.into(), now])?,
        Some(previous) => db
            .prepare(
                "UPDATE crm_email_opens SET counted_at_ms = ?4 \
                 WHERE project = ?1 AND distinct_id = ?2 AND counted_at_ms = ?3",
            )
            .bind(&[
                project.into(),
                distinct_id.into(),
                now,
                JsValue::from_f64(previous as f64),
            ])?,
    };
    statement.run().await?;
    Ok(())
}

/// Erasure: forgets every identifier of the user stored as `distinct_id`
/// (their email among them), any link of that name itself, and their
/// email-open window. Returns how many identifiers went.
pub async fn forget_user(db: &D1Database, project: &str, distinct_id: &str) -> Result<usize> {
    let results = db
        .batch(vec![
            db.prepare("DELETE FROM crm_users WHERE project = ?1 AND (distinct_id = ?2 OR identifier IN (?3, ?4))")
                .bind(&[
                    project.into(),
                    distinct_id.into(),
                    crm::email_key(distinct_id).into(),
                    crm::id_key(distinct_id).into(),
                ])?,
            db.prepare("DELETE FROM crm_email_opens WHERE project = ?1 AND distinct_id = ?2")
                .bind(&[project.into(), distinct_id.into()])?,
        ])
        .await?;
    Ok(results
        .first()
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes)
        .unwrap_or(0))
}
