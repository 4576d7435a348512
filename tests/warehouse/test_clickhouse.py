"""The warehouse path, proven with ClickHouse's own engine (chDB, in
process): a real `wrangler dev` with the R2 archive on and its HTTP sink
pointed at a capture server on 127.0.0.1 whose URL is ClickHouse's HTTP
interface's (`/?query=INSERT … FORMAT JSONEachRow`). Each body the sink
delivered is run as that query against the documented table
(edge-worker/warehouse/clickhouse.sql), and so is every line the archive
holds; after FINAL both hold exactly D1's events (count and dedup keys),
although the sink and the archive received copies (a resent import, a
retried run). A sink outage stores everything in D1, dead-letters nothing,
and the cron delivers the kept runs once the sink is back."""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.parse
import urllib.request
import uuid
from base64 import b64encode
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from chdb import session as chdb_session

ROOT = Path(__file__).resolve().parents[2]
WORKER_DIR = ROOT / "edge-worker"
WRANGLER = str(ROOT / "node_modules" / ".bin" / "wrangler")
TABLE_SQL = (WORKER_DIR / "warehouse" / "clickhouse.sql").read_text()
SECRET = "demo-secret"
TOKEN = "demo-token"
# What the worker sends as the sink's Authorization header (a secret in
# production; a var here).
SINK_AUTHORIZATION = "Basic " + b64encode(b"edgetrack:sink-password").decode()
INSERT = "INSERT INTO edgetrack_events FORMAT JSONEachRow"
UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36"
ENV = {**os.environ, "CI": "true", "WRANGLER_SEND_METRICS": "false"}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Sink:
    """A stand-in for ClickHouse's HTTP interface: records every POST
    (query, Authorization, body) and answers 200, or 503 while `down`."""

    def __init__(self):
        self.down = False
        self.accepted = []
        self.refused = []
        self.lock = threading.Lock()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query).get("query", [""])[0]
                record = {"query": query, "authorization": self.headers.get("authorization"),
                          "type": self.headers.get("content-type"), "body": body}
                with sink.lock:
                    (sink.refused if sink.down else sink.accepted).append(record)
                self.send_response(503 if sink.down else 200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/?query={urllib.parse.quote(INSERT)}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def lines(self, records=None):
        records = self.accepted if records is None else records
        with self.lock:
            return [json.loads(line) for r in list(records) for line in r["body"].splitlines() if line]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Worker:
    def __init__(self, base, state):
        self.base = base
        self.state = state

    def request(self, path, body=None, headers=None, method=None):
        req = urllib.request.Request(self.base + path, data=body, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                return resp.status, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, err.read()

    def d1(self, sql):
        for attempt in range(1, 6):
            out = subprocess.run(
                [WRANGLER, "d1", "execute", "DB", "--json", "--command", sql, "--local", "--persist-to", self.state],
                cwd=WORKER_DIR, env=ENV, capture_output=True, text=True,
            )
            if out.returncode == 0:
                return json.loads(out.stdout[out.stdout.index("["):])[0]["results"]
            if attempt == 5 or "SQLITE_BUSY" not in out.stderr + out.stdout:
                raise RuntimeError(out.stderr + out.stdout)
            time.sleep(0.5 * attempt)

    def collect(self, events):
        status, body = self.request("/collect", json.dumps({"t": TOKEN, "e": events}).encode(),
                                    {"content-type": "text/plain", "user-agent": UA})
        assert status == 202, body

    def import_events(self, events):
        auth = "Basic " + b64encode(f"{SECRET}:".encode()).decode()
        status, body = self.request("/import", json.dumps(events).encode(),
                                    {"authorization": auth, "content-type": "application/json"})
        assert status == 200, body

    def stored_keys(self):
        return {r["dedup_key"] for r in self.d1("SELECT dedup_key FROM events WHERE project = 'demo'")}

    def run_cron(self):
        status, body = self.request("/__scheduled?cron=*+*+*+*+*")
        assert status == 200, body


def wait(predicate, what, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def sink():
    s = Sink()
    yield s
    s.close()


@pytest.fixture(scope="module")
def worker(sink):
    state = tempfile.mkdtemp(prefix="edgetrack-warehouse-")
    subprocess.run([WRANGLER, "d1", "migrations", "apply", "DB", "--local", "--persist-to", state],
                   cwd=WORKER_DIR, env=ENV, check=True, capture_output=True)
    port = free_port()
    variables = {"ARCHIVE_ENABLED": "1", "HTTP_SINK_URL": sink.url, "HTTP_SINK_AUTHORIZATION": SINK_AUTHORIZATION,
                 "RATE_LIMITS": "off"}
    args = [WRANGLER, "dev", "--ip", "127.0.0.1", "--port", str(port), "--persist-to", state,
            "--show-interactive-dev-session=false", "--inspector-port", str(free_port()), "--test-scheduled"]
    for key, value in variables.items():
        args += ["--var", f"{key}:{value}"]
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(args, cwd=WORKER_DIR, env=ENV, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 90
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                log.seek(0)
                raise RuntimeError("wrangler dev did not start:\n" + log.read().decode(errors="replace"))
            time.sleep(0.25)
        yield Worker(base, state)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
        log.close()
        shutil.rmtree(state, ignore_errors=True)


def archive_lines(state):
    """Every line of the R2 archive, read from the worker's local R2 by the
    e2e harness's reader (Miniflare: wrangler's command line cannot list)."""
    out = subprocess.run(["node", str(Path(__file__).with_name("archive.mjs")), state, "events/project=demo/"],
                         cwd=ROOT, env=ENV, capture_output=True, text=True, check=True, timeout=120)
    return [json.loads(line) for text in json.loads(out.stdout) for line in text.splitlines() if line]


def clickhouse():
    s = chdb_session.Session()
    s.query(TABLE_SQL)
    return s


def insert(s, query, data):
    """Runs an INSERT with its data inline, as ClickHouse's HTTP interface
    runs the URL's query with the POST body (chDB would read stdin for an
    INSERT without data, so none is run)."""
    assert data.strip(), "an insert without data"
    s.query(query + "\n" + data)


def count(s, sql):
    return int(str(s.query(sql, "CSV")).strip())


def test_sink_and_archive_load_into_clickhouse_and_equal_d1_through_an_outage(worker, sink):
    run = uuid.uuid4().hex[:8]
    now = int(time.time() * 1000)
    # Browser events (the tracker's shape: page, properties, device).
    worker.collect([{"n": "$pageview", "i": f"{run}-pv-{i}", "d": f"dev-{run}", "ts": now - i * 1000,
                     "u": f"https://shop.example/p/{i}?utm_source=news", "r": "https://www.google.com/",
                     "h": "A product", "s": "1920x1080", "p": {"plan": "pro", "n": i, "nested": {"a": [1, 2]}}}
                    for i in range(10)])
    # An import past the KV fast path (50 keys), sent twice: D1 keeps one
    # copy, the sink and the archive get both.
    imported = [{"event": "order", "properties": {"time": now - i, "distinct_id": f"user-{i % 7}",
                                                  "$insert_id": f"{run}-imp-{i}", "amount": i}} for i in range(60)]
    worker.import_events(imported)
    worker.import_events(imported)
    expected = 70
    wait(lambda: len(worker.stored_keys()) == expected, "70 events in D1")
    # Both copies of the import reached the sink (the second is posted in
    # full although D1 ignored it): at least 130 lines.
    wait(lambda: len(sink.lines()) >= 130, "the sink to receive both imports")
    assert all(r["authorization"] == SINK_AUTHORIZATION for r in sink.accepted), "every post carries the secret"
    assert all(r["type"] == "application/x-ndjson" for r in sink.accepted)

    # The sink goes down: an import is stored, the sink refuses it once,
    # and nothing is retried or dead-lettered.
    sink.down = True
    outage = [{"event": "during-outage", "properties": {"time": now, "distinct_id": "user-out",
                                                       "$insert_id": f"{run}-out-{i}"}} for i in range(30)]
    worker.import_events(outage)
    expected += 30
    wait(lambda: len(worker.stored_keys()) == expected, "the outage's events in D1")
    wait(lambda: worker.d1("SELECT COALESCE(SUM(events), 0) AS n FROM sink_pending")[0]["n"] == 30,
         "the refused run kept in sink_pending")
    # A queue retry would have come within seconds (1 s, 2 s, 4 s, then the
    # dead-letter queue): give it that long, and more.
    time.sleep(12)
    assert len(sink.refused) == 1, f"the sink was offered the run once, not retried by the queue: {len(sink.refused)}"
    assert len(sink.lines(sink.refused)) == 30
    assert worker.d1("SELECT COUNT(*) AS n FROM dead_letters")[0]["n"] == 0, "a sink outage dead-letters nothing"
    assert not any(line["insert_id"].startswith(f"{run}-out-") for line in sink.lines())

    # Back up: the cron offers the kept run again, and it is delivered.
    sink.down = False
    worker.run_cron()
    wait(lambda: sum(line["insert_id"].startswith(f"{run}-out-") for line in sink.lines()) == 30,
         "the kept run delivered after the outage")
    assert worker.d1("SELECT COUNT(*) AS n FROM sink_pending")[0]["n"] == 0
    assert worker.d1("SELECT COUNT(*) AS n FROM dead_letters")[0]["n"] == 0

    d1_keys = worker.stored_keys()
    assert len(d1_keys) == expected

    # What the sink delivered, run as ClickHouse's HTTP interface runs it:
    # the URL's query with the body as its data.
    ch = clickhouse()
    for record in sink.accepted:
        assert record["query"] == INSERT
        insert(ch, record["query"], record["body"])
    # Copies were delivered (at least once): the resent import's 60 rows.
    assert len(sink.lines()) == expected + 60
    # (Without FINAL the count depends on how far background merges got.)
    assert count(ch, "SELECT count() FROM edgetrack_events FINAL") == expected
    ch_keys = {row.strip().strip('"') for row in str(ch.query(
        "SELECT dedup_key FROM edgetrack_events FINAL", "CSV")).splitlines() if row.strip()}
    assert ch_keys == d1_keys
    # The columns hold what was sent.
    row = json.loads(str(ch.query(
        f"SELECT page.url AS url, JSONExtractString(properties, 'plan') AS plan, source, device_id, "
        f"toUnixTimestamp64Milli(time) AS t FROM edgetrack_events FINAL WHERE insert_id = '{run}-pv-3'",
        "JSONEachRow")).strip())
    assert row["url"] == "https://shop.example/p/3?utm_source=news"
    assert row["plan"] == "pro"
    assert row["source"] == "browser"
    assert row["device_id"] == f"dev-{run}"
    assert int(row["t"]) == now - 3000

    # What the R2 archive holds, loaded into a fresh table the same way.
    lines = archive_lines(worker.state)
    assert len(lines) == expected + 60, "the resent import left a second archive object"
    archive = clickhouse()
    insert(archive, INSERT, "\n".join(json.dumps(line) for line in lines))
    assert count(archive, "SELECT count() FROM edgetrack_events FINAL") == expected
    archive_keys = {row.strip().strip('"') for row in str(archive.query(
        "SELECT dedup_key FROM edgetrack_events FINAL", "CSV")).splitlines() if row.strip()}
    assert archive_keys == d1_keys
