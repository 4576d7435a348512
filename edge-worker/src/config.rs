//! Configuration read from the environment on each request (it is small).

use crate::bindings::{
    ARCHIVE_ENABLED_VAR, HTTP_SINK_AUTHORIZATION_VAR, HTTP_SINK_ERASURE_URL_VAR, HTTP_SINK_URL_VAR,
    OUTBOX_REPLAY_AFTER_VAR, OUTBOX_VAR, PROJECTS_VAR,
};
use ingest_core::auth::{ConfigError, Projects};
use ingest_core::limits::{DEFAULT_OUTBOX_REPLAY_AFTER_SECONDS, DEFAULT_VISIT_FINALIZE_AFTER_SECONDS};
use ingest_core::time::seconds_setting_ms;
use ingest_core::IngestError;
use std::cell::RefCell;
use std::rc::Rc;
use worker::{console_error, Env};

/// `PROJECTS` as last read in this isolate, and what checking it gave.
struct Checked {
    text: String,
    projects: Result<Rc<Projects>, ConfigError>,
}

thread_local! {
    /// An isolate checks `PROJECTS` when it first reads it (and again only
    /// if the text changes), so a bad value is logged once, not per request.
    static CHECKED: RefCell<Option<Checked>> = const { RefCell::new(None) };
}

/// The projects, from a plain var in development or a secret in production.
/// An invalid value makes every request a 503; the log names the problem
/// (never a key) once.
pub fn projects(env: &Env) -> Result<Rc<Projects>, IngestError> {
    let text = env
        .secret(PROJECTS_VAR)
        .map(|s| s.to_string())
        .or_else(|_| env.var(PROJECTS_VAR).map(|v| v.to_string()))
        .map_err(|_| {
            console_error!("PROJECTS is not configured");
            IngestError::Unavailable
        })?;
    CHECKED.with(|cell| {
        let mut checked = cell.borrow_mut();
        if checked.as_ref().is_none_or(|c| c.text != text) {
            let projects = Projects::from_json(&text).map(Rc::new);
            if let Err(problem) = &projects {
                console_error!("PROJECTS is refused: {problem}");
            }
            *checked = Some(Checked { text, projects });
        }
        match checked.as_ref().map(|c| &c.projects) {
            Some(Ok(projects)) => Ok(Rc::clone(projects)),
            _ => Err(IngestError::Unavailable),
        }
    })
}

pub fn archive_enabled(env: &Env) -> bool {
    env.var(ARCHIVE_ENABLED_VAR).is_ok_and(|v| v.to_string() == "1")
}

/// A setting that may be a secret (production) or a plain var
/// (development); empty counts as unset.
fn secret_or_var(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|v| !v.trim().is_empty())
}

pub fn http_sink_url(env: &Env) -> Option<String> {
    secret_or_var(env, HTTP_SINK_URL_VAR)
}

/// The `Authorization` header the HTTP sink is sent with, if any.
pub fn http_sink_authorization(env: &Env) -> Option<String> {
    secret_or_var(env, HTTP_SINK_AUTHORIZATION_VAR)
}

pub fn http_sink_erasure_url(env: &Env) -> Option<String> {
    env.var(HTTP_SINK_ERASURE_URL_VAR)
        .ok()
        .map(|v| v.to_string())
        .filter(|u| !u.trim().is_empty())
}

pub fn outbox_enabled(env: &Env) -> bool {
    env.var(OUTBOX_VAR).is_ok_and(|v| v.to_string() == "on")
}

pub fn outbox_replay_after_ms(env: &Env) -> i64 {
    let setting = env.var(OUTBOX_REPLAY_AFTER_VAR).ok().map(|v| v.to_string());
    seconds_setting_ms(setting.as_deref(), DEFAULT_OUTBOX_REPLAY_AFTER_SECONDS)
}

/// A visit is made final once nothing arrived for it this long.
pub fn visit_finalize_after_ms(env: &Env) -> i64 {
    let setting = env
        .var(crate::bindings::VISIT_FINALIZE_AFTER_VAR)
        .ok()
        .map(|v| v.to_string());
    seconds_setting_ms(setting.as_deref(), DEFAULT_VISIT_FINALIZE_AFTER_SECONDS)
}

/// `READ_MODEL = "off"` stores events without visits and rollups: only the
/// benchmark's baseline uses it.
pub fn read_model_enabled(env: &Env) -> bool {
    env.var(crate::bindings::READ_MODEL_VAR)
        .map(|v| v.to_string() != "off")
        .unwrap_or(true)
}

pub fn dedup_marks(env: &Env) -> ingest_core::dedup::MarkMode {
    let setting = env.var(crate::bindings::DEDUP_MARKS_VAR).ok().map(|v| v.to_string());
    ingest_core::dedup::MarkMode::parse(setting.as_deref())
}
