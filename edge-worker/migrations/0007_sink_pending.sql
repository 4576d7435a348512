-- Runs of stored events the HTTP sink refused (or could not be reached
-- for), kept until it takes them. Storage never waits on the sink: the
-- consumer acknowledges a batch once D1 (and the archive) hold it, and a
-- sink outage lands here instead of in the dead-letter queue. The cron
-- sweep, and the consumer after each delivery the sink accepts, offer the
-- due rows again; erasures are honoured when a row is offered.
CREATE TABLE sink_pending (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  -- A JSON array of events (at most D1_JSON_CHUNK_MAX_BYTES).
  body TEXT NOT NULL,
  events INTEGER NOT NULL,
  first_refused_at_ms INTEGER NOT NULL,
  offers INTEGER NOT NULL DEFAULT 1,
  next_offer_at_ms INTEGER NOT NULL,
  last_error TEXT NOT NULL
);

CREATE INDEX sink_pending_due ON sink_pending (next_offer_at_ms);
