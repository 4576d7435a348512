-- edgetrack's events in ClickHouse: the table the HTTP sink writes to and the
-- R2 archive loads into (README: "A warehouse: ClickHouse"). Each line the
-- sink posts, and each line of an archive object, is one row as it is:
--   HTTP_SINK_URL = https://HOST:8443/?query=INSERT%20INTO%20edgetrack_events%20FORMAT%20JSONEachRow
-- Delivery is at least once (a retried batch, a resent import and a sink
-- retry all send rows again), so the table keeps one row per event key:
-- `dedup_key` is the key D1 stores the event under (ingest-core's
-- dedup.rs: name, distinct_id, second and insert_id, or the CRM's business
-- id), so a copy replaces its twin when parts merge, and `FINAL` (or
-- `count(DISTINCT dedup_key)`) counts exactly what D1 holds. `insert_id`
-- alone is not the key: two different events may carry the same one and
-- D1 keeps both.
-- Read on ClickHouse 26.9 (chDB, tests/warehouse); `properties` arrives as
-- a JSON object and is kept as its text (input_format_json_read_objects_as_strings,
-- on by default), `page` as a named tuple whose missing fields are NULL.
CREATE TABLE IF NOT EXISTS edgetrack_events
(
    dedup_key FixedString(32),
    project LowCardinality(String),
    name String,
    distinct_id String,
    device_id Nullable(String),
    time_ms Int64,
    insert_id String,
    page Tuple(url Nullable(String), referrer Nullable(String), title Nullable(String), screen Nullable(String)),
    properties String,
    source LowCardinality(String),
    received_at_ms Int64,
    user_agent Nullable(String),
    country LowCardinality(Nullable(String)),
    region Nullable(String),
    city Nullable(String),
    time DateTime64(3, 'UTC') MATERIALIZED fromUnixTimestamp64Milli(time_ms)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(time)
ORDER BY (project, dedup_key);
