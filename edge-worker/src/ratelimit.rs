//! Rate limits through the Workers rate-limiting binding: one budget per
//! client IP on every API route, one per project on accepted data. A missing
//! binding or a limiter error lets the request through: losing analytics to
//! a limiter outage would be worse than a burst.

use crate::bindings::{RATE_LIMITS_VAR, RATE_LIMIT_IP, RATE_LIMIT_PROJECT};
use ingest_core::IngestError;
use worker::Env;

/// Seconds a client is told to wait: the limiters' period.
const RETRY_AFTER_SECONDS: u32 = 10;

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

pub async fn per_project(env: &Env, project: &str) -> Result<(), IngestError> {
    check(env, RATE_LIMIT_PROJECT, format!("project:{project}")).await
}
