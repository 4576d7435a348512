-- Issue 22: every index on events is one more D1 row written per event
-- (D1 bills an index entry as a row). No query leads with (project, event):
-- the export, the raw-row stats and retention all range over time_ms
-- (events_by_time), and erasure looks people up by distinct_id
-- (events_by_user). A filter on the event name is applied within the time
-- range, which the raw plan scans anyway.
DROP INDEX IF EXISTS events_by_name_time;
