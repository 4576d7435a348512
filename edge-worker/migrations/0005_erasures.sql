-- Tombstones of GDPR erasures (issue 13): one row per erased person and per
-- device they were identified on. `subject` is ingest-core's
-- erasure::user_subject / device_subject, a hash of the id ('u:' or 'd:'
-- and 32 hex characters), so the log keeps no identifier. The consumer
-- drops events and profile updates received at or before `erased_at_ms`
-- that reach storage later (queue, outbox, dead-letter replay).
CREATE TABLE erasures (
  project TEXT NOT NULL,
  subject TEXT NOT NULL,
  erased_at_ms INTEGER NOT NULL,
  PRIMARY KEY (project, subject)
) WITHOUT ROWID;
