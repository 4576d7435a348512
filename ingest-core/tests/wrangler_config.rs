//! The worker's rate limiter and the core's slot arithmetic must agree: a
//! project's budget is counted in slots of the `RATE_LIMIT_PROJECT`
//! binding, so its `limit` and `period` in `wrangler.toml` (development
//! and production) must be the constants in `limits.rs`.

use ingest_core::limits::{RATE_LIMIT_PERIOD_SECONDS, RATE_LIMIT_SLOT_REQUESTS};

#[test]
fn the_project_limiter_binding_is_one_slot_in_every_environment() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../edge-worker/wrangler.toml");
    let text = std::fs::read_to_string(path).expect("wrangler.toml is readable");
    let simple = format!("simple = {{ limit = {RATE_LIMIT_SLOT_REQUESTS}, period = {RATE_LIMIT_PERIOD_SECONDS} }}");
    let development = format!("name = \"RATE_LIMIT_PROJECT\"\nnamespace_id = \"1002\"\n{simple}");
    let production = format!("{{ name = \"RATE_LIMIT_PROJECT\", namespace_id = \"1002\", {simple} }}");
    assert!(text.contains(&development), "development binding: {development}");
    assert!(text.contains(&production), "production binding: {production}");
    assert_eq!(
        text.matches("\"RATE_LIMIT_PROJECT\"").count(),
        2,
        "one binding per environment"
    );
}
