//! Every limit, in one place: what the ingestion path enforces, what the
//! export and stats APIs accept, what the pipeline (queue, D1, KV) spends
//! and what a project's configuration may ask. Each has a test at the limit
//! and just past it (see `validate`, `payload`, `export`, the read model and
//! the dialects). Error messages name a limit through its constant, never
//! as a number of their own.

/// Largest request body on the wire, 2 MiB, as Mixpanel's `/import` states
/// ("request exceeds max limit of 2097152 bytes"). Its page names gzip as
/// the cure, so a compressed body is held to this before it is inflated,
/// and its inflated size to [`MAX_INFLATED_BODY_BYTES`].
pub const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// After a body passes [`MAX_BODY_BYTES`], the worker reads on (keeping
/// nothing) at most this much more, then stops reading. A client a little
/// over the cap that only reads the answer once it has sent everything then
/// gets its 413; one that is not reading while it sends a larger body would
/// otherwise lose the answer to the connection being closed under it. An
/// upload of any length costs at most the cap plus this.
pub const BODY_DRAIN_BYTES: usize = 2 * 1024 * 1024;

/// Largest body after gzip is undone: 10 MiB, the uncompressed request
/// size Mixpanel documents for `/import` (2000 events with a few dozen
/// properties each are well past 2 MiB before compression). What such a body may cost to parse is held
/// down by [`MAX_JSON_ELEMENTS`] and [`MAX_JSON_CONTAINERS`], not by its size.
pub const MAX_INFLATED_BODY_BYTES: usize = 10 * 1024 * 1024;

/// A gzip body may expand at most this many times. Real JSON batches expand
/// 5-30x; a bomb expands thousands of times and is refused early.
pub const MAX_GZIP_RATIO: usize = 200;

/// Events in one Mixpanel `/import` request.
pub const MAX_IMPORT_EVENTS: usize = 2000;
/// Events in one Emp-Mix `/public/track/bulk` request.
pub const MAX_BULK_EVENTS: usize = 1000;
/// Events in one browser batch (our tracker's `/collect`), and in one Mixpanel
/// `/track` or `/engage` batch, whose clients send at most 50.
pub const MAX_BROWSER_BATCH_EVENTS: usize = 50;

/// Characters in a Mixpanel JSONP `callback` name. Real callbacks are short
/// generated names; the cap keeps the reflected part of a reply tiny.
pub const MAX_CALLBACK_CHARS: usize = 64;
/// Characters in a Mixpanel `redirect` target.
pub const MAX_REDIRECT_URL_CHARS: usize = 2048;
/// Distinct ids in one identity cluster (Mixpanel's Original ID Merge
/// limit); a link that would pass it is ignored.
pub const MAX_IDENTITY_CLUSTER_IDS: u64 = 500;
/// The CRM keeps one email open per user in each aligned window this long.
pub const EMAIL_OPEN_WINDOW_MS: i64 = 20 * 60 * 1000;

/// Properties on one event (Mixpanel's documented ceiling).
pub const MAX_PROPERTIES: usize = 255;
/// Characters in one property key.
pub const MAX_PROPERTY_KEY_CHARS: usize = 255;
/// Characters in any one string value (URLs can be long; more is abuse).
pub const MAX_STRING_CHARS: usize = 8192;
/// Characters in an event name.
pub const MAX_EVENT_NAME_CHARS: usize = 255;
/// Characters in a distinct_id or device id.
pub const MAX_ID_CHARS: usize = 255;
/// Nesting of objects and arrays inside `properties` (the object itself is 1).
pub const MAX_JSON_DEPTH: usize = 8;
/// Objects and arrays in one JSON body, counted before it is parsed. An
/// object costs the parser a ~650-byte node once it has a key, so 2 MiB of
/// `{"a":0},` took ~170 MiB, past a Worker's 128 MB; this many take ~13 MiB.
/// A full `/import` (2000 events and their properties) leaves 16,000 for
/// nested values.
pub const MAX_JSON_CONTAINERS: usize = 20_000;
/// Values inside the objects and arrays of one JSON body (each object member
/// and each array element counts once), counted before it is parsed. Each
/// costs the parser a node (32 bytes natively, 16 in wasm32) however short
/// its text: 10 MiB of `0,` would be 5 million of them, past a Worker's
/// 128 MB. A body of at most [`MAX_BODY_BYTES`] holds fewer than this
/// (`[0,0,…]` of 2 MiB has 2^20 - 1), so only an inflated body can meet it,
/// and inflating never costs the parser more than the largest plain body.
pub const MAX_JSON_ELEMENTS: usize = 1 << 20;
/// Characters in an `$insert_id`; only `[A-Za-z0-9-]` is allowed.
pub const MAX_INSERT_ID_CHARS: usize = 36;
/// One canonical event serialised for the queue. Cloudflare Queues take at
/// most 128 KB a message; this leaves room for the envelope.
pub const MAX_EVENT_BYTES: usize = 64 * 1024;

/// Earliest event time accepted: 1971-01-01T00:00:00Z in milliseconds.
pub const MIN_EVENT_TIME_MS: i64 = 31_536_000_000;
/// How far in the future an event may claim to be: one hour.
pub const MAX_FUTURE_SKEW_MS: i64 = 60 * 60 * 1000;
/// Mixpanel's classic `/track` rejects events older than three hours.
pub const MAX_TRACK_AGE_MS: i64 = 3 * 60 * 60 * 1000;
/// Oldest event a public token may send anywhere else (`/collect`, Vemetric,
/// Emp-Mix `/public/track`): seven days. A page's token is in every
/// visitor's hands, so it may touch last week's numbers at most; a week
/// still takes the tracker's backlog from a visitor who comes back within
/// it (Mixpanel's current `/track` allows five days). Older history goes
/// through the secret key (`/import`, bulk, CRM), which keeps the full range.
pub const MAX_PUBLIC_EVENT_AGE_MS: i64 = 7 * 24 * 60 * 60 * 1000;
/// Below this a numeric time is read as seconds, at or above as milliseconds
/// (1e11 seconds is the year 5138; 1e11 ms is 1973).
pub const SECONDS_MS_BOUNDARY: f64 = 1e11;

/// Export page size: default and ceiling (Emp-Mix `GET /public/events`).
pub const EXPORT_DEFAULT_LIMIT: u32 = 50;
pub const EXPORT_MAX_LIMIT: u32 = 10_000;

/// Bytes of events packed into one queue message (Queues allow 128 KB).
pub const QUEUE_MESSAGE_MAX_BYTES: usize = 120 * 1000;
/// Cloudflare Queues: messages and bytes in one `sendBatch`.
pub const QUEUE_BATCH_MAX_MESSAGES: usize = 100;
/// Events the consumer stores in one D1 transaction at most: a queue batch
/// of 100 full messages holds tens of thousands, and the read model reads
/// and writes visits and sketches for all of a transaction's events at
/// once, so a batch is stored in several transactions of about this size
/// (one message, up to 120 kB of events, is never split).
pub const CONSUMER_TRANSACTION_MAX_EVENTS: usize = 2_000;
pub const QUEUE_BATCH_MAX_BYTES: usize = 256 * 1000;

/// D1 statements bind at most 100 parameters; we insert a whole chunk through
/// one JSON parameter, and cap that parameter's size.
pub const D1_JSON_CHUNK_MAX_BYTES: usize = 900 * 1024;

/// KV look-ups the fast dedup path may spend on one request; larger batches
/// (imports) rely on D1's unique key alone.
pub const KV_DEDUP_MAX_KEYS: usize = 50;
/// How long a KV dedup mark lives: one day (KV needs at least 60 s).
pub const KV_DEDUP_TTL_SECONDS: u64 = 24 * 60 * 60;

/// The rate limiters' period (seconds); Cloudflare allows 10 or 60.
pub const RATE_LIMIT_PERIOD_SECONDS: u32 = 10;
/// Requests one slot of a project's budget admits per period: the `limit`
/// of the `RATE_LIMIT_PROJECT` binding in `wrangler.jsonc` (a test holds the
/// two together). A project's budget is a number of such slots.
pub const RATE_LIMIT_SLOT_REQUESTS: u32 = 100;
/// Default budget of requests per period and Cloudflare location for the
/// public token: browsers and apps of a busy site (about 300 requests a
/// second from the visitors one location serves).
pub const DEFAULT_PUBLIC_RATE_LIMIT: u32 = 3000;
/// Default budget for the secret key: server imports, bulk and the CRM API
/// (100 requests a second, up to 200,000 imported events a second).
pub const DEFAULT_SECRET_RATE_LIMIT: u32 = 1000;
/// Largest budget a project may set: 10,000 slots.
pub const MAX_RATE_LIMIT: u32 = 1_000_000;

/// Properties on one user profile (Mixpanel's documented ceiling).
pub const MAX_PROFILE_PROPERTIES: usize = 2000;
/// Items in one list property of a profile (`$append`, `$union`).
pub const MAX_PROFILE_LIST_ITEMS: usize = 1000;
/// One profile serialised, as it moves through D1 on every update: 256 KiB,
/// Mixpanel's ceiling for one list property, and far below D1's 2 MB row.
pub const MAX_PROFILE_BYTES: usize = 256 * 1024;

/// A revenue amount (`properties.$revenue.amount`) must be below this in
/// absolute value: a trillion in any currency's unit, with room for cents
/// in an f64. The tracker refuses 13 integer digits before sending.
pub const REVENUE_AMOUNT_LIMIT: f64 = 1e12;

// The export and stats APIs.

/// Longest range one export request may cover (days).
pub const EXPORT_MAX_RANGE_DAYS: i64 = 366;
/// Days an export covers when a request names no range.
pub const EXPORT_DEFAULT_RANGE_DAYS: i64 = 7;
/// Rows one export response streams at most; a larger range continues
/// with `after=` the last line's `cursor`.
pub const EXPORT_STREAM_MAX_ROWS: u32 = 100_000;
/// Rows read from D1 per query while streaming: memory stays bounded by
/// this, whatever the range.
pub const EXPORT_PAGE_ROWS: u32 = 1_000;
/// Longest range one stats request covers (days).
pub const STATS_MAX_RANGE_DAYS: i64 = 731;
/// Stats ranges longer than this are shown by month, shorter ones by day.
pub const MAX_DAILY_SERIES_DAYS: i64 = 92;
/// Filters one stats request may combine.
pub const MAX_FILTERS: usize = 10;
/// Values one filter may list (`is` any of them).
pub const MAX_FILTER_VALUES: usize = 20;
/// Rows a breakdown page holds: default and ceiling.
pub const DEFAULT_BREAKDOWN_LIMIT: u32 = 10;
pub const MAX_BREAKDOWN_LIMIT: u32 = 1000;
/// Characters of a filter value.
pub const MAX_FILTER_VALUE_CHARS: usize = 512;

// The read model.

/// Characters of a dimension value kept in a rollup row; longer paths and
/// property values are cut (raw events keep them whole).
pub const MAX_ROLLUP_VALUE_CHARS: usize = 512;
/// Properties of one custom event rolled up for breakdowns (in key order).
pub const MAX_ROLLUP_PROPERTIES: usize = 16;
/// Largest encoded sketch read back (a dense one is about 10 KB): anything
/// bigger in a row is damage, not data.
pub const MAX_ENCODED_SKETCH_BYTES: usize = 64 * 1024;

// The pipeline.

/// How long a daily salt outlives its day in KV, so late events of the day
/// still hash the same (seconds).
pub const SALT_TTL_SECONDS: u64 = 2 * 24 * 60 * 60;

// What the worker does in one call, cron run or retry: bounded steps, so a
// backlog drains over several runs instead of one running out of time.

/// Longest wait before a failed queue message is retried (seconds).
pub const QUEUE_MAX_RETRY_DELAY_SECONDS: u32 = 300;
/// Outbox rows one cron sweep queues again.
pub const OUTBOX_SWEEP_ROWS: u32 = 100;
/// Longest a replayed outbox row waits before it may be replayed again.
pub const OUTBOX_MAX_REPLAY_BACKOFF_MS: i64 = 60 * 1000;
/// Default wait before an unstored outbox row is queued again (seconds),
/// longer than a healthy queue takes to deliver; the
/// `OUTBOX_REPLAY_AFTER_SECONDS` setting overrides it.
pub const DEFAULT_OUTBOX_REPLAY_AFTER_SECONDS: i64 = 120;
/// Default quiet time after which a visit is made final (seconds); the
/// `VISIT_FINALIZE_AFTER_SECONDS` setting overrides it.
pub const DEFAULT_VISIT_FINALIZE_AFTER_SECONDS: i64 = 30 * 60;
/// Visits made final by one job; the next cron run queues another job
/// while more remain.
pub const FINALIZE_VISITS_MAX: u32 = 500;
/// Raw rows deleted per project by one cron run (retention).
pub const RETENTION_DELETE_ROWS: u32 = 5_000;
/// Per-minute rollups kept for the realtime view.
pub const REALTIME_KEEP_MS: i64 = 2 * 60 * 60 * 1000;
/// KV dedup marks removed by one deletion call; marks expire within a day
/// and hold only hashes, so a larger deletion leaves the rest to expire.
pub const DELETE_KV_MARKS_MAX: usize = 500;
/// Dead letters queued again by one replay call.
pub const REPLAY_MAX_LETTERS: u32 = 100;
/// Archive objects one scrub call rewrites (each read, filtered and
/// written back within the request).
pub const ARCHIVE_SCRUB_MAX_OBJECTS: u32 = 50;
/// Compare-and-set attempts for one CRM email open before giving up (each
/// failure means another request claimed the window at that moment).
pub const EMAIL_OPEN_CLAIM_ATTEMPTS: usize = 4;

// A project's configuration.

/// Characters in a project id; ids name R2 partitions and KV keys.
pub const MAX_PROJECT_ID_CHARS: usize = 64;
/// Characters in a token or secret.
pub const MAX_KEY_CHARS: usize = 256;
/// The longest raw-event retention a project may ask for: a century.
pub const MAX_RAW_RETENTION_DAYS: u32 = 36_500;
/// Site domains one project may list (`domains`, for Plausible's `d`), and
/// Umami website ids (`umami_websites`): each list at most this long.
pub const MAX_PROJECT_SITES: usize = 100;
/// Characters in one domain name (DNS allows 253).
pub const MAX_DOMAIN_CHARS: usize = 253;

// The other vendors' browser dialects.

/// Domains one Plausible event may name in `d` (a comma-separated list: the
/// script sends one event to several sites). The first one a project lists
/// takes the event.
pub const MAX_PLAUSIBLE_DOMAINS: usize = 10;
/// Events in one posthog-js request (`/batch/`, `/e/` with an array): a
/// page's queue flushes every few seconds, so real batches hold a handful;
/// the cap is Emp-Mix's bulk size, and the body caps bound the rest.
pub const MAX_POSTHOG_BATCH_EVENTS: usize = 1000;
/// Umami's own caps on a `/api/send` payload's fields (its request
/// schema): an event name and a tag, the screen (`WxH`), the language and
/// the host name, in characters.
pub const MAX_UMAMI_NAME_CHARS: usize = 50;
pub const MAX_UMAMI_SCREEN_CHARS: usize = 11;
pub const MAX_UMAMI_LANGUAGE_CHARS: usize = 35;
pub const MAX_UMAMI_HOSTNAME_CHARS: usize = 100;

// The HTTP sink (a warehouse).

/// Shortest wait before a run the HTTP sink refused is offered again
/// (seconds); each later wait is as long as the run has already waited.
pub const SINK_RETRY_MIN_DELAY_SECONDS: i64 = 1;
/// Longest wait between two offers of a refused run (seconds): a sink back
/// from an outage has everything within ten minutes.
pub const SINK_RETRY_MAX_DELAY_SECONDS: i64 = 600;
/// Refused runs one retry sweep offers the sink again (each at most
/// `D1_JSON_CHUNK_MAX_BYTES` of events).
pub const SINK_RETRY_SWEEP_ROWS: u32 = 20;

#[cfg(test)]
mod tests {
    use super::*;

    /// The worker's per-run bounds pinned with literals (the README quotes
    /// the retry cap and the retention step), so
    /// a changed constant is a decision (and a README edit), not an accident.
    #[test]
    fn worker_bounds_are_the_documented_values() {
        assert_eq!(QUEUE_MAX_RETRY_DELAY_SECONDS, 300);
        assert_eq!(OUTBOX_SWEEP_ROWS, 100);
        assert_eq!(OUTBOX_MAX_REPLAY_BACKOFF_MS, 60_000);
        assert_eq!(DEFAULT_OUTBOX_REPLAY_AFTER_SECONDS, 120);
        assert_eq!(DEFAULT_VISIT_FINALIZE_AFTER_SECONDS, 1_800);
        assert_eq!(FINALIZE_VISITS_MAX, 500);
        assert_eq!(RETENTION_DELETE_ROWS, 5_000);
        assert_eq!(REALTIME_KEEP_MS, 7_200_000);
        assert_eq!(DELETE_KV_MARKS_MAX, 500);
        assert_eq!(REPLAY_MAX_LETTERS, 100);
        assert_eq!(ARCHIVE_SCRUB_MAX_OBJECTS, 50);
        assert_eq!(EMAIL_OPEN_CLAIM_ATTEMPTS, 4);
    }
}
