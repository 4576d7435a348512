-- The identity map (ingest-core/src/identity.rs has the rules): one row per
-- distinct_id that an $identify, $create_alias or $merge linked, naming the
-- canonical id of its cluster. An id without a row is its own cluster.
-- Readers resolve an event's user as
--   COALESCE(identities.canonical_id, events.distinct_id)
-- joined on (project, distinct_id).
CREATE TABLE identities (
  project TEXT NOT NULL,
  distinct_id TEXT NOT NULL,
  canonical_id TEXT NOT NULL,
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (project, distinct_id)
) WITHOUT ROWID;

-- A cluster's members (and its size, for the 500-id limit).
CREATE INDEX identities_by_canonical ON identities (project, canonical_id);

-- Mixpanel group profiles (/groups), keyed by group key and group id.
CREATE TABLE group_profiles (
  project TEXT NOT NULL,
  group_key TEXT NOT NULL,
  group_id TEXT NOT NULL,
  properties TEXT NOT NULL DEFAULT '{}',
  updated_at_ms INTEGER NOT NULL,
  PRIMARY KEY (project, group_key, group_id)
) WITHOUT ROWID;
