-- CRM API users (seed 004). Each identifier a user is known by, an email or
-- an `_id`, points at the user's distinct_id (the identifier the user was
-- created with), so one user is reachable by either. Written by `login`
-- before it is answered, so the user exists for the very next request.
CREATE TABLE crm_users (
  project TEXT NOT NULL,
  -- 'email:<lower-cased email>' or 'id:<_id>'
  identifier TEXT NOT NULL,
  distinct_id TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (project, identifier)
) WITHOUT ROWID;

-- A user's other identifiers (is it anonymous, what is its email), and erasure.
CREATE INDEX crm_users_by_user ON crm_users (project, distinct_id);

-- Each CRM user's last counted email open: the next one counts 20 minutes
-- after it. Claimed by compare-and-set on the request path.
CREATE TABLE crm_email_opens (
  project TEXT NOT NULL,
  distinct_id TEXT NOT NULL,
  counted_at_ms INTEGER NOT NULL,
  PRIMARY KEY (project, distinct_id)
) WITHOUT ROWID;
