"""Everything a request could have written, read straight from a local
worker's state folder: every row of the D1 tables that hold data (all
projects but the one named in argv[2], which the tests use for their marker
events) and every KV key with its expiry. Prints one JSON object,
{"tables": {table: [row as JSON text, ...]}, "kv": [[key, expiry], ...]},
so that two snapshots can be compared row by row.

Reads the SQLite files that `wrangler dev` (Miniflare) keeps, opened read
only; the worker may be writing at the same moment (WAL mode lets both).
"""
import glob
import json
import os
import sqlite3
import sys

# The D1 tables a request or its queue job may write. The outbox is left
# out: it is the queue's own bookkeeping and is empty once a job is done.
TABLES = [
    "events", "profiles", "bot_drops", "dead_letters", "identities", "group_profiles", "crm_users",
    "crm_email_opens", "erasures", "visits", "rollups", "rollup_hours", "rollup_minutes", "sink_pending",
]


def database(folder):
    """The one SQLite file of a Miniflare object namespace (not its metadata);
    None before anything was written to it (KV makes its file then)."""
    files = [f for f in glob.glob(os.path.join(folder, "*.sqlite")) if not f.endswith("metadata.sqlite")]
    if not files:
        return None
    if len(files) != 1:
        raise SystemExit(f"expected one database in {folder}, found {files}")
    db = sqlite3.connect(f"file:{files[0]}?mode=ro", uri=True, timeout=10)
    return db


def main():
    persist, skip_project = sys.argv[1], sys.argv[2]
    d1 = database(os.path.join(persist, "v3", "d1", "miniflare-D1DatabaseObject"))
    if d1 is None:
        raise SystemExit(f"no D1 database under {persist}")
    tables = {}
    for table in TABLES:
        columns = [r[1] for r in d1.execute(f"PRAGMA table_info({table})")]
        where, params = ("WHERE project != ?", [skip_project]) if "project" in columns else ("", [])
        rows = d1.execute(f"SELECT * FROM {table} {where}", params).fetchall()
        tables[table] = sorted(json.dumps(dict(zip(columns, row)), sort_keys=True) for row in rows)
    kv = database(os.path.join(persist, "v3", "kv", "miniflare-KVNamespaceObject"))
    keys = []
    if kv is not None:
        query = "SELECT key, expiration FROM _mf_entries WHERE key NOT LIKE ?"
        keys = sorted(kv.execute(query, [f"seen:{skip_project}:%"]).fetchall())
    print(json.dumps({"tables": tables, "kv": keys}))


if __name__ == "__main__":
    main()
