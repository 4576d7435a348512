//! Reading data back: `GET /api/stats*` with the secret or the viewer key,
//! everything else with the secret key only. `GET /api/stats` for the
//! dashboard and `GET /api/2.0/export` (Mixpanel's raw export shape: NDJSON
//! of `{"event", "properties": {time (s), distinct_id, $insert_id, …}}`).

use crate::http::{database, header, now_ms, query};
use crate::{config, erasure, stats, storage};
use ingest_core::auth::{self, KeyKind, Offered, Project};
use ingest_core::dialect::Reply;
use ingest_core::export::{export_line, Cursor, DateRange, EXPORT_PAGE_ROWS, EXPORT_STREAM_MAX_ROWS};
use ingest_core::limits::{ARCHIVE_SCRUB_MAX_OBJECTS, DELETE_KV_MARKS_MAX, REPLAY_MAX_LETTERS};
use ingest_core::readmodel::query::Range;
use ingest_core::IngestError;
use serde_json::{json, Value};
use worker::{Env, Request};

/// The project whose secret key the request carries, taking the first key
/// offered ([`auth::offered_keys`]: `x-api-key`, then `Authorization`):
/// `x-api-key`, Bearer, or Basic auth as Mixpanel's export takes it (the API
/// secret as user name, or a service account's `user:secret` with
/// `project_id`, as the Go library sends them).
fn secret_project(req: &Request, env: &Env) -> Result<Project, IngestError> {
    let projects = config::projects(env)?;
    let offered = auth::offered_keys(
        header(req, "authorization").as_deref(),
        header(req, "x-api-key").as_deref(),
    );
    match offered.into_iter().next() {
        Some(Offered::ApiKey(key) | Offered::Bearer(key)) => {
            Ok(projects.authorize(Some(&key), KeyKind::Secret)?.clone())
        }
        Some(Offered::Basic(basic)) => {
            let query = query(req)?;
            let project_id = ingest_core::payload::form_field(query.as_bytes(), "project_id");
            Ok(auth::authorize_import(&projects, Some(&basic), project_id.as_deref())?.clone())
        }
        None => Err(IngestError::Unauthorized),
    }
}

/// The project whose secret or viewer key the request carries, in
/// `x-api-key` or `Authorization: Bearer`: the stats API's check. Basic auth
/// stays the secret's (Mixpanel's export shape), so a viewer key there is
/// refused.
fn reader_project(req: &Request, env: &Env) -> Result<(Project, KeyKind), IngestError> {
    let projects = config::projects(env)?;
    match auth::api_key(
        header(req, "authorization").as_deref(),
        header(req, "x-api-key").as_deref(),
    ) {
        Some(key) => projects
            .authorize_reader(Some(&key))
            .map(|(project, kind)| (project.clone(), kind)),
        None => Ok((secret_project(req, env)?, KeyKind::Secret)),
    }
}

pub fn error(err: &IngestError) -> Reply {
    Reply::json(err.status(), &json!({"error": err.message()})).retry_after_for(err)
}

/// Which stats read a request asks for.
#[derive(Clone, Copy)]
pub enum StatsView {
    Overview,
    Breakdown,
    Realtime,
}

pub async fn stats_view(req: Request, env: &Env, view: StatsView) -> Reply {
    stats_view_reply(&req, env, view).await.unwrap_or_else(|e| error(&e))
}

async fn stats_view_reply(req: &Request, env: &Env, view: StatsView) -> Result<Reply, IngestError> {
    let (project, kind) = reader_project(req, env)?;
    let query = query(req)?;
    let db = database(env)?;
    let now = now_ms();
    let mut body = match view {
        StatsView::Overview => stats::overview(&db, &project, &query, now).await?,
        StatsView::Breakdown => stats::breakdown(&db, &project, &query, now).await?,
        StatsView::Realtime => stats::realtime(&db, &project, now).await?,
    };
    // Which key read it, so the dashboard can say when it was the secret
    // (a link to share should carry the viewer key, never the secret).
    if let Value::Object(map) = &mut body {
        map.insert(
            "access".into(),
            json!(if kind == KeyKind::Viewer { "viewer" } else { "secret" }),
        );
    }
    Ok(Reply::json(200, &body))
}

/// What an export request asks for, read before the first byte is sent
/// (so every refusal is a JSON error with its status).
struct ExportPlan {
    db: worker::D1Database,
    project: String,
    start_ms: i64,
    end_ms: i64,
    after: Option<Cursor>,
    limit: u32,
}

fn export_plan(req: &Request, env: &Env) -> Result<ExportPlan, IngestError> {
    let project = secret_project(req, env)?;
    let query = query(req)?;
    let days = DateRange::from_query(&query, now_ms())?;
    let range = Range::new(&project.zone, &days.from, &days.to)?;
    let limit = match ingest_core::payload::form_field(query.as_bytes(), "limit") {
        None => EXPORT_STREAM_MAX_ROWS,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=EXPORT_STREAM_MAX_ROWS).contains(&n) => n,
            _ => {
                return Err(IngestError::BadRequest(format!(
                    "limit must be 1 to {EXPORT_STREAM_MAX_ROWS}"
                )))
            }
        },
    };
    let after = ingest_core::payload::form_field(query.as_bytes(), "after")
        .map(|text| Cursor::parse(&text))
        .transpose()?;
    Ok(ExportPlan {
        db: database(env)?,
        project: project.id,
        start_ms: range.start_ms,
        end_ms: range.end_ms,
        after,
        limit,
    })
}

/// `GET /api/2.0/export`: NDJSON streamed a page of rows at a time, so
/// memory stays bounded whatever the range; at most `limit` rows a
/// response, and `after=` the last line's `cursor` continues.
pub async fn export(req: Request, env: &Env, origin: Option<&str>) -> worker::Result<worker::Response> {
    let plan = match export_plan(&req, env) {
        Ok(plan) => plan,
        Err(e) => return crate::http::to_response(error(&e), crate::http::Audience::Server, origin),
    };
    let remaining = plan.limit;
    let pages = futures_util::stream::unfold((plan, remaining, false), |(mut plan, remaining, done)| async move {
        if done || remaining == 0 {
            return None;
        }
        let want = remaining.min(EXPORT_PAGE_ROWS);
        let page = storage::export_page(
            &plan.db,
            &plan.project,
            plan.start_ms,
            plan.end_ms,
            plan.after.as_ref(),
            want,
        )
        .await;
        match page {
            Ok(rows) if rows.is_empty() => None,
            Ok(rows) => {
                let last_page = (rows.len() as u32) < want;
                plan.after = rows.last().map(Cursor::of);
                let body: String = rows.iter().map(export_line).collect();
                let left = remaining - rows.len() as u32;
                Some((Ok::<Vec<u8>, worker::Error>(body.into_bytes()), (plan, left, last_page)))
            }
            // The status is already sent: the stream ends here, and the
            // client resumes from the last whole line's cursor.
            Err(e) => Some((Err(e), (plan, 0, true))),
        }
    });
    crate::http::stream_response(pages, "application/x-ndjson")
}

/// `GET /api/profile?distinct_id=…`: one user's profile properties.
pub async fn profile(req: Request, env: &Env) -> Reply {
    profile_reply(&req, env).await.unwrap_or_else(|e| error(&e))
}

async fn profile_reply(req: &Request, env: &Env) -> Result<Reply, IngestError> {
    let project = secret_project(req, env)?;
    let query = query(req)?;
    let distinct_id = ingest_core::payload::form_field(query.as_bytes(), "distinct_id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| IngestError::BadRequest("distinct_id is required".into()))?;
    let db = database(env)?;
    match storage::load_profile(&db, &project.id, &distinct_id)
        .await
        .map_err(|_| IngestError::Unavailable)?
    {
        Some(properties) => Ok(Reply::json(
            200,
            &json!({"distinct_id": distinct_id, "properties": properties}),
        )),
        None => Ok(Reply::json(404, &json!({"error": "no such profile"}))),
    }
}

/// `GET /api/group?group_key=…&group_id=…`: one group profile's properties.
pub async fn group(req: Request, env: &Env) -> Reply {
    group_reply(&req, env).await.unwrap_or_else(|e| error(&e))
}

async fn group_reply(req: &Request, env: &Env) -> Result<Reply, IngestError> {
    let project = secret_project(req, env)?;
    let query = query(req)?;
    let param = |name: &str| {
        ingest_core::payload::form_field(query.as_bytes(), name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| IngestError::BadRequest(format!("{name} is required")))
    };
    let (group_key, group_id) = (param("group_key")?, param("group_id")?);
    let db = database(env)?;
    match storage::load_group(&db, &project.id, &group_key, &group_id)
        .await
        .map_err(|_| IngestError::Unavailable)?
    {
        Some(properties) => Ok(Reply::json(
            200,
            &json!({"group_key": group_key, "group_id": group_id, "properties": properties}),
        )),
        None => Ok(Reply::json(404, &json!({"error": "no such group"}))),
    }
}

/// `GET /api/identity?distinct_id=…`: the person an id belongs to in the
/// identity map: its canonical id and every id linked with it.
pub async fn identity(req: Request, env: &Env) -> Reply {
    identity_reply(&req, env).await.unwrap_or_else(|e| error(&e))
}

async fn identity_reply(req: &Request, env: &Env) -> Result<Reply, IngestError> {
    let project = secret_project(req, env)?;
    let query = query(req)?;
    let distinct_id = ingest_core::payload::form_field(query.as_bytes(), "distinct_id")
        .filter(|id| !id.is_empty())
        .ok_or_else(|| IngestError::BadRequest("distinct_id is required".into()))?;
    let db = database(env)?;
    let (canonical, ids) = crate::identities::cluster_of(&db, &project.id, &distinct_id)
        .await
        .map_err(|_| IngestError::Unavailable)?;
    Ok(Reply::json(
        200,
        &json!({"distinct_id": distinct_id, "canonical_id": canonical, "distinct_ids": ids}),
    ))
}

/// `POST /api/users/delete` with `{"distinct_id": "…"}`: GDPR erasure of one
/// person (see `ingest_core::erasure` for whose events): events, profile,
/// their part of every dead letter, dedup marks, and tombstones that keep
/// their data still in the queue or outbox out. With `HTTP_SINK_ERASURE_URL`
/// set, the erasure is announced there first; if that fails, nothing is
/// deleted and the answer is a 503 to retry. When the archive is on, the
/// answer lists the partitions to scrub (`POST /api/archive/scrub`).
pub async fn delete_user(mut req: Request, env: &Env) -> Reply {
    delete_reply(&mut req, env).await.unwrap_or_else(|e| error(&e))
}

async fn delete_reply(req: &mut Request, env: &Env) -> Result<Reply, IngestError> {
    let project = secret_project(req, env)?;
    let body = crate::http::read_body(req).await?;
    let distinct_id = match ingest_core::payload::parse_json(&body)? {
        Value::Object(map) => match map.get("distinct_id") {
            Some(Value::String(id)) if !id.is_empty() => id.clone(),
            _ => return Err(IngestError::BadRequest("distinct_id must be a non-empty string".into())),
        },
        _ => return Err(IngestError::BadRequest("body must be a JSON object".into())),
    };
    let db = database(env)?;
    let plan = erasure::plan(&db, &project.id, &distinct_id)
        .await
        .map_err(|_| IngestError::Unavailable)?;
    let now = now_ms();
    let sink_notified = match config::http_sink_erasure_url(env) {
        Some(url) => {
            let notice = json!({"type": "erasure", "project": project.id, "distinct_id": distinct_id,
                "devices": plan.scope.devices, "erased_at_ms": now});
            if let Err(e) = crate::consumer::post(&url, "application/json", notice.to_string()).await {
                worker::console_error!("erasure notice refused, nothing deleted: {e}");
                return Err(IngestError::Unavailable);
            }
            true
        }
        None => false,
    };
    let erased = erasure::apply(&db, &plan, now)
        .await
        .map_err(|_| IngestError::Unavailable)?;
    // The CRM API's links hold the person's email and ids.
    let identities = crate::crm_store::forget_user(&db, &project.id, &distinct_id)
        .await
        .map_err(|_| IngestError::Unavailable)?;
    let mut marks = 0;
    if let Ok(kv) = env.kv(crate::bindings::DEDUP_KV) {
        for key in plan.dedup_keys.iter().take(DELETE_KV_MARKS_MAX) {
            if kv.delete(&ingest_core::dedup::kv_key(&project.id, key)).await.is_ok() {
                marks += 1;
            }
        }
    }
    let mut answer = json!({"distinct_id": distinct_id,
        "deleted": {"events": erased.events, "profiles": erased.profiles,
            "dead_letters": erased.dead_letters, "identities": erased.identities, "dedup_marks": marks,
            "crm_identities": identities},
        "devices": plan.scope.devices.len(), "tombstones": erased.tombstones,
        "http_sink_notified": sink_notified});
    if config::archive_enabled(env) {
        answer["archive_prefixes"] = json!(plan.archive_prefixes);
    }
    Ok(Reply::json(200, &answer))
}

/// `POST /api/archive/scrub` with `{"prefix": "events/project=P/…", "cursor"}`:
/// rewrites up to 50 R2 archive objects under the prefix without the events
/// that the project's erasures cover; the answer's `cursor`, when not null,
/// continues. Only the calling project's folder can be named.
pub async fn scrub_archive(mut req: Request, env: &Env) -> Reply {
    scrub_reply(&mut req, env).await.unwrap_or_else(|e| error(&e))
}

async fn scrub_reply(req: &mut Request, env: &Env) -> Result<Reply, IngestError> {
    let project = secret_project(req, env)?;
    let body = crate::http::read_body(req).await?;
    let Value::Object(map) = ingest_core::payload::parse_json(&body)? else {
        return Err(IngestError::BadRequest("body must be a JSON object".into()));
    };
    let folder = format!("events/project={}/", project.id);
    let prefix = match map.get("prefix") {
        Some(Value::String(p)) if p.starts_with(&folder) => p.clone(),
        _ => return Err(IngestError::BadRequest(format!("prefix must start with {folder}"))),
    };
    let cursor = match map.get("cursor") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(c.clone()),
        _ => return Err(IngestError::BadRequest("cursor must be a string".into())),
    };
    if !config::archive_enabled(env) {
        return Err(IngestError::BadRequest("the archive is not enabled".into()));
    }
    let db = database(env)?;
    let bucket = env
        .bucket(crate::bindings::ARCHIVE_BUCKET)
        .map_err(|_| IngestError::Unavailable)?;
    let done = erasure::scrub_archive(&db, &bucket, &project.id, &prefix, cursor, ARCHIVE_SCRUB_MAX_OBJECTS)
        .await
        .map_err(|e| {
            worker::console_error!("archive scrub failed: {e}");
            IngestError::Unavailable
        })?;
    Ok(Reply::json(200, &json!(done)))
}

/// `POST /api/dead-letters/replay`: puts a project's dead letters back on
/// the queue (after storage recovered) and forgets them. D1's unique key
/// makes a replay of something already stored harmless.
pub async fn replay_dead_letters(req: Request, env: &Env) -> Reply {
    replay_reply(&req, env).await.unwrap_or_else(|e| error(&e))
}

async fn replay_reply(req: &Request, env: &Env) -> Result<Reply, IngestError> {
    let project = secret_project(req, env)?;
    let db = database(env)?;
    let letters = storage::dead_letters(&db, &project.id, REPLAY_MAX_LETTERS)
        .await
        .map_err(|_| IngestError::Unavailable)?;
    let mut jobs = Vec::new();
    let mut ids = Vec::new();
    for letter in &letters {
        if let Ok(job) = serde_json::from_str::<ingest_core::queue::Job>(&letter.body) {
            jobs.push(job);
            ids.push(letter.id);
        }
    }
    crate::pipeline::requeue(env, jobs).await?;
    let replayed = storage::forget_dead_letters(&db, &ids)
        .await
        .map_err(|_| IngestError::Unavailable)?;
    let remaining = storage::dead_letters(&db, &project.id, 1)
        .await
        .map(|l| !l.is_empty())
        .unwrap_or(false);
    Ok(Reply::json(200, &json!({"replayed": replayed, "more": remaining})))
}
