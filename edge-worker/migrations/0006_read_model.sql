-- The read model (issue 15): enriched events, visits and rollups that the
-- queue consumer keeps in the same transaction as the raw rows.

-- Columns enrichment adds (ingest-core's enrich module). The raw user agent
-- is no longer kept: browser, version, system and device are read from it
-- once, and the agent alone was a third of a row.
ALTER TABLE events ADD COLUMN path TEXT;
ALTER TABLE events ADD COLUMN hostname TEXT;
ALTER TABLE events ADD COLUMN referrer_source TEXT;
ALTER TABLE events ADD COLUMN channel TEXT;
ALTER TABLE events ADD COLUMN utm_source TEXT;
ALTER TABLE events ADD COLUMN utm_medium TEXT;
ALTER TABLE events ADD COLUMN utm_campaign TEXT;
ALTER TABLE events ADD COLUMN utm_term TEXT;
ALTER TABLE events ADD COLUMN utm_content TEXT;
ALTER TABLE events ADD COLUMN browser TEXT;
ALTER TABLE events ADD COLUMN browser_version TEXT;
ALTER TABLE events ADD COLUMN os TEXT;
ALTER TABLE events ADD COLUMN device TEXT;
ALTER TABLE events ADD COLUMN region TEXT;
ALTER TABLE events ADD COLUMN city TEXT;
ALTER TABLE events ADD COLUMN visit_id TEXT;
ALTER TABLE events DROP COLUMN user_agent;

-- One row per visit (a visitor's web events with gaps under 30 minutes).
-- `state` is the whole visit as the consumer reads it back; the columns
-- beside it are what reports filter and group by.
CREATE TABLE visits (
  project TEXT NOT NULL,
  visit_id TEXT NOT NULL,
  visitor TEXT NOT NULL,
  start_ms INTEGER NOT NULL,
  last_ms INTEGER NOT NULL,
  entry TEXT,
  exit TEXT,
  pageviews INTEGER NOT NULL,
  events INTEGER NOT NULL,
  bounced INTEGER NOT NULL,
  hostname TEXT,
  source TEXT,
  channel TEXT,
  utm_source TEXT,
  utm_medium TEXT,
  utm_campaign TEXT,
  utm_term TEXT,
  utm_content TEXT,
  country TEXT,
  region TEXT,
  city TEXT,
  browser TEXT,
  browser_version TEXT,
  os TEXT,
  device TEXT,
  -- 1 once the visit's visitor is in the visit-level rollup sketches.
  finalized INTEGER NOT NULL DEFAULT 0,
  -- When the consumer last wrote the visit (arrival time, not event time).
  touched_ms INTEGER NOT NULL,
  state TEXT NOT NULL,
  PRIMARY KEY (project, visit_id)
) WITHOUT ROWID;
-- The consumer finds a visitor's open visits.
CREATE INDEX visits_by_visitor ON visits (project, visitor, last_ms);
-- Filtered reports read the visits of a range.
CREATE INDEX visits_by_start ON visits (project, start_ms);
-- Visits not final yet: reports add their visitors, the cron finalizes
-- them. Only recent visits are here, so the index stays small.
CREATE INDEX visits_open ON visits (project, start_ms) WHERE finalized = 0;

-- Counts per project, dimension, period (a local day YYYY-MM-DD or month
-- YYYY-MM) and value; `visitors` is a HyperLogLog++ sketch (ingest-core's
-- sketch module). Dimension '' with value '' holds the totals.
CREATE TABLE rollups (
  project TEXT NOT NULL,
  dim TEXT NOT NULL,
  period TEXT NOT NULL,
  value TEXT NOT NULL,
  visitors TEXT,
  visits INTEGER NOT NULL DEFAULT 0,
  pageviews INTEGER NOT NULL DEFAULT 0,
  events INTEGER NOT NULL DEFAULT 0,
  bounces INTEGER NOT NULL DEFAULT 0,
  duration_ms INTEGER NOT NULL DEFAULT 0,
  revenue_micros INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (project, dim, period, value)
) WITHOUT ROWID;

-- Totals per local hour (the instant it starts), for one-day charts.
CREATE TABLE rollup_hours (
  project TEXT NOT NULL,
  hour_ms INTEGER NOT NULL,
  visitors TEXT,
  visits INTEGER NOT NULL DEFAULT 0,
  pageviews INTEGER NOT NULL DEFAULT 0,
  events INTEGER NOT NULL DEFAULT 0,
  bounces INTEGER NOT NULL DEFAULT 0,
  duration_ms INTEGER NOT NULL DEFAULT 0,
  revenue_micros INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (project, hour_ms)
) WITHOUT ROWID;

-- Totals per minute for the realtime view; the cron keeps two hours.
CREATE TABLE rollup_minutes (
  project TEXT NOT NULL,
  minute_ms INTEGER NOT NULL,
  visitors TEXT,
  visits INTEGER NOT NULL DEFAULT 0,
  pageviews INTEGER NOT NULL DEFAULT 0,
  events INTEGER NOT NULL DEFAULT 0,
  bounces INTEGER NOT NULL DEFAULT 0,
  duration_ms INTEGER NOT NULL DEFAULT 0,
  revenue_micros INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (project, minute_ms)
) WITHOUT ROWID;
