//! Binding and variable names, as declared in `wrangler.jsonc`.

/// Queue every accepted event and profile update goes through.
pub const EVENTS_QUEUE: &str = "EVENTS";
/// Queue name (not binding) of the dead-letter queue, as the consumer sees it.
pub const DEAD_LETTER_QUEUE_NAME: &str = "edgetrack-dead-letters";
/// KV namespace for dedup marks and the cookieless daily salt.
pub const DEDUP_KV: &str = "DEDUP";
/// D1 database with events, profiles, bot counters and dead letters.
pub const DB: &str = "DB";
/// Optional R2 bucket for the NDJSON archive.
pub const ARCHIVE_BUCKET: &str = "ARCHIVE";

/// JSON object of projects and their keys (a secret in production).
pub const PROJECTS_VAR: &str = "PROJECTS";
/// `"1"` turns the R2 archive on.
pub const ARCHIVE_ENABLED_VAR: &str = "ARCHIVE_ENABLED";
/// When set, every stored batch is also POSTed there as NDJSON.
pub const HTTP_SINK_URL_VAR: &str = "HTTP_SINK_URL";
/// Secret (a var in development): the `Authorization` header value the
/// HTTP sink is sent with (ClickHouse: `Basic base64(user:password)`).
pub const HTTP_SINK_AUTHORIZATION_VAR: &str = "HTTP_SINK_AUTHORIZATION";
/// When set, every user deletion is announced there (JSON) before it is done.
pub const HTTP_SINK_ERASURE_URL_VAR: &str = "HTTP_SINK_ERASURE_URL";
/// Rate limiters: per client IP, and per project.
pub const RATE_LIMIT_IP: &str = "RATE_LIMIT_IP";
pub const RATE_LIMIT_PROJECT: &str = "RATE_LIMIT_PROJECT";
/// `"off"` disables both limiters.
pub const RATE_LIMITS_VAR: &str = "RATE_LIMITS";
/// `"on"` records event messages in D1's outbox until they are stored.
pub const OUTBOX_VAR: &str = "OUTBOX";
/// Seconds an outbox row may wait before the sweeper queues it again.
pub const OUTBOX_REPLAY_AFTER_VAR: &str = "OUTBOX_REPLAY_AFTER_SECONDS";
/// Seconds without news before a visit is made final (default 1800).
pub const VISIT_FINALIZE_AFTER_VAR: &str = "VISIT_FINALIZE_AFTER_SECONDS";
/// `"event"` (default), `"request"` or `"off"`: what KV's dedup marks
/// cover (ingest-core's `dedup::MarkMode`).
pub const DEDUP_MARKS_VAR: &str = "DEDUP_MARKS";
/// `"off"` keeps events only (no visits or rollups): a benchmark baseline.
pub const READ_MODEL_VAR: &str = "READ_MODEL";
