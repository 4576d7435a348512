//! Configuration read from the environment on each request (it is small).

use crate::bindings::{ARCHIVE_ENABLED_VAR, HTTP_SINK_URL_VAR, PROJECTS_VAR};
use ingest_core::auth::Projects;
use ingest_core::IngestError;
use worker::{console_error, Env};

/// The projects, from a plain var in development or a secret in production.
pub fn projects(env: &Env) -> Result<Projects, IngestError> {
    let text = env
        .secret(PROJECTS_VAR)
        .map(|s| s.to_string())
        .or_else(|_| env.var(PROJECTS_VAR).map(|v| v.to_string()))
        .map_err(|_| {
            console_error!("PROJECTS is not configured");
            IngestError::Unavailable
        })?;
    Projects::from_json(&text).map_err(|problem| {
        console_error!("{problem}");
        IngestError::Unavailable
    })
}

pub fn archive_enabled(env: &Env) -> bool {
    env.var(ARCHIVE_ENABLED_VAR).is_ok_and(|v| v.to_string() == "1")
}

pub fn http_sink_url(env: &Env) -> Option<String> {
    env.var(HTTP_SINK_URL_VAR).ok().map(|v| v.to_string()).filter(|u| !u.trim().is_empty())
}
