-- Event messages accepted but not yet stored. Written before the queue send
-- and deleted in the same transaction that stores the events, so anything
-- left here after a crash is re-queued by the sweeper (OUTBOX = "on").
CREATE TABLE outbox (
  id TEXT PRIMARY KEY,
  body TEXT NOT NULL,
  queued_at_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE INDEX outbox_by_age ON outbox (queued_at_ms);
