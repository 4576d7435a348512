-- Events: (project, insert_id) is the authoritative dedup key.
CREATE TABLE events (
  project TEXT NOT NULL,
  insert_id TEXT NOT NULL,
  event TEXT NOT NULL,
  distinct_id TEXT NOT NULL,
  device_id TEXT,
  time_ms INTEGER NOT NULL,
  received_at_ms INTEGER NOT NULL,
  url TEXT,
  referrer TEXT,
  title TEXT,
  screen TEXT,
  properties TEXT NOT NULL DEFAULT '{}',
  source TEXT NOT NULL,
  user_agent TEXT,
  country TEXT,
  PRIMARY KEY (project, insert_id)
) WITHOUT ROWID;

-- Export pages and time-range stats.
CREATE INDEX events_by_time ON events (project, time_ms);
-- Per-event-name stats (pageviews, outbound clicks) over a range.
CREATE INDEX events_by_name_time ON events (project, event, time_ms);
-- GDPR deletion and per-user reads.
CREATE INDEX events_by_user ON events (project, distinct_id);

CREATE TABLE profiles (
  project TEXT NOT NULL,
  distinct_id TEXT NOT NULL,
  properties TEXT NOT NULL DEFAULT '{}',
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (project, distinct_id)
) WITHOUT ROWID;

-- Bot requests answered but not stored, counted per project, day and reason.
CREATE TABLE bot_drops (
  project TEXT NOT NULL,
  day TEXT NOT NULL,
  reason TEXT NOT NULL,
  requests INTEGER NOT NULL DEFAULT 0,
  events INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (project, day, reason)
) WITHOUT ROWID;

-- Messages the consumer could not store after every retry.
CREATE TABLE dead_letters (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  queue TEXT NOT NULL,
  body TEXT NOT NULL,
  error TEXT NOT NULL,
  received_at_ms INTEGER NOT NULL
);
