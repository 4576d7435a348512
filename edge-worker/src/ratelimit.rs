//! Rate limits through the Workers rate-limiting binding: one budget per
//! client IP on every API route, and per project one budget for the public
//! token and one for the secret key, counted on every ingest request the
//! key opens (see `ingest_core::rate`). A missing binding or a limiter error
//! lets the request through: losing analytics to a limiter outage would be
//! worse than a burst.

use crate::bindings::{RATE_LIMITS_VAR, RATE_LIMIT_IP, RATE_LIMIT_PROJECT};
use ingest_core::auth::{KeyKind, Project};
use ingest_core::limits::RATE_LIMIT_PERIOD_SECONDS;
use ingest_core::rate::{choices, slot_key, slots};
use ingest_core::IngestError;
use worker::Env;

/// Seconds a client is told to wait: the limiters' period.
const RETRY_AFTER_SECONDS: u32 = RATE_LIMIT_PERIOD_SECONDS;

fn enabled(env: &Env) -> bool {
    env.var(RATE_LIMITS_VAR).map(|v| v.to_string() != "off").unwrap_or(true)
}

async fn check(env: &Env, binding: &str, key: String) -> Result<(), IngestError> {
    if !enabled(env) {
        return Ok(());
    }
    let Ok(limiter) = env.rate_limiter(binding) else {
        return Ok(());
    };
    match limiter.limit(key).await {
        Ok(outcome) if !outcome.success => Err(IngestError::RateLimited {
            retry_after_seconds: RETRY_AFTER_SECONDS,
        }),
        _ => Ok(()),
    }
}

pub async fn per_ip(env: &Env, ip: Option<&str>) -> Result<(), IngestError> {
    match ip {
        Some(ip) => check(env, RATE_LIMIT_IP, format!("ip:{ip}")).await,
        None => Ok(()),
    }
}

/// Counts one request against the budget of `project` for `kind` of key:
/// a random slot, then a second one when the first is full.
pub async fn per_project(env: &Env, project: &Project, kind: KeyKind) -> Result<(), IngestError> {
    let (first, second) = choices(
        slots(project.rate_limits.for_kind(kind)),
        js_sys::Math::random(),
        js_sys::Math::random(),
    );
    let outcome = check(env, RATE_LIMIT_PROJECT, slot_key(&project.id, kind, first)).await;
    match (outcome, second) {
        (Err(IngestError::RateLimited { .. }), Some(second)) => {
            check(env, RATE_LIMIT_PROJECT, slot_key(&project.id, kind, second)).await
        }
        (outcome, _) => outcome,
    }
}
