-- Dedup on the occurrence, not on $insert_id alone (issue 13): the primary
-- key becomes (project, dedup_key), where dedup_key is the hash that
-- ingest-core's dedup::dedup_key computes from the event name, distinct_id,
-- time to the second and insert_id. insert_id stays a column for export.
--
-- SQLite cannot compute SHA-256, so rows stored before this migration get
-- 'legacy:' || insert_id: unique, since insert_id was the key until now,
-- and never equal to a new key (those are 32 hex characters). A resend of
-- such an old event after the upgrade is stored again once.
CREATE TABLE events_next (
  project TEXT NOT NULL,
  dedup_key TEXT NOT NULL,
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
  PRIMARY KEY (project, dedup_key)
) WITHOUT ROWID;

INSERT INTO events_next (project, dedup_key, insert_id, event, distinct_id, device_id, time_ms,
  received_at_ms, url, referrer, title, screen, properties, source, user_agent, country)
SELECT project, 'legacy:' || insert_id, insert_id, event, distinct_id, device_id, time_ms,
  received_at_ms, url, referrer, title, screen, properties, source, user_agent, country
FROM events;

DROP TABLE events;
ALTER TABLE events_next RENAME TO events;

-- The same indexes as before (they went with the old table).
CREATE INDEX events_by_time ON events (project, time_ms);
CREATE INDEX events_by_name_time ON events (project, event, time_ms);
CREATE INDEX events_by_user ON events (project, distinct_id);
