"""A real `wrangler dev` for the client-library tests: its own loopback port
and state folder, stopped by PID (the whole process group) afterwards."""

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER_DIR = ROOT / "edge-worker"
WRANGLER = str(ROOT / "node_modules" / ".bin" / "wrangler")
SECRET = "demo-secret"
TOKEN = "demo-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Worker:
    def __init__(self, base, persist_dir):
        self.base = base
        self.persist_dir = persist_dir

    def get_json(self, path):
        req = urllib.request.Request(self.base + path, headers={"x-api-key": SECRET})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                return resp.status, json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"null")

    def events(self):
        status, body = self.get_json("/public/events?limit=10000")
        assert status == 200, body
        return body["events"]

    def wait_for(self, predicate, timeout=20.0):
        """Polls the export until predicate(events) is true."""
        deadline = time.time() + timeout
        events = []
        while time.time() < deadline:
            events = self.events()
            if predicate(events):
                return events
            time.sleep(0.25)
        raise AssertionError(f"events never matched: {events[:20]}")

    def rows(self, distinct_id):
        """The stored events of one distinct_id, oldest first, without the
        arrival time (the only field a client cannot know)."""
        rows = [dict(e) for e in self.events() if e["distinct_id"] == distinct_id]
        for row in rows:
            row.pop("received_at")
        return sorted(rows, key=lambda r: (r["timestamp"], r["event"], r["insert_id"]))

    def profile(self, distinct_id):
        """A user profile's properties, or None when there is none."""
        status, body = self.get_json(f"/api/profile?distinct_id={quote(distinct_id)}")
        assert status in (200, 404), body
        return body["properties"] if status == 200 else None

    def group(self, group_key, group_id):
        status, body = self.get_json(f"/api/group?group_key={quote(group_key)}&group_id={quote(group_id)}")
        assert status in (200, 404), body
        return body["properties"] if status == 200 else None

    def identity(self, distinct_id):
        """(canonical id, every id of its cluster) in the identity map."""
        status, body = self.get_json(f"/api/identity?distinct_id={quote(distinct_id)}")
        assert status == 200, body
        return body["canonical_id"], body["distinct_ids"]

    def wait_until(self, read, expected, timeout=20.0):
        """Polls read() until it equals expected (the queue consumer applies
        updates a moment after the reply), and fails with the last value."""
        deadline = time.time() + timeout
        value = read()
        while value != expected and time.time() < deadline:
            time.sleep(0.25)
            value = read()
        assert value == expected
        return value

    def settled(self):
        """Sends a marker event after the calls under test and waits until it
        is stored: what they queued has had its turn (the signal to assert
        absence after)."""
        marker = f"marker-{uuid.uuid4().hex}"
        data = json.dumps({"event": "marker", "properties": {"token": TOKEN, "distinct_id": marker}})
        body = urllib.parse.urlencode({"data": data, "verbose": 1}).encode()
        with urllib.request.urlopen(self.base + "/track", data=body, timeout=10) as resp:
            assert json.loads(resp.read())["status"] == 1
        self.wait_for(lambda es: any(e["distinct_id"] == marker for e in es))

    def wait_for_profile(self, distinct_id, predicate=lambda p: True, timeout=20.0):
        deadline = time.time() + timeout
        last = None
        while time.time() < deadline:
            status, body = self.get_json(f"/api/profile?distinct_id={distinct_id}")
            if status == 200 and predicate(body["properties"]):
                return body["properties"]
            last = (status, body)
            time.sleep(0.25)
        raise AssertionError(f"profile never matched: {last}")


@pytest.fixture(scope="session")
def worker():
    env = {**os.environ, "CI": "true", "WRANGLER_SEND_METRICS": "false"}
    state = tempfile.mkdtemp(prefix="edgetrack-clients-")
    subprocess.run(
        [WRANGLER, "d1", "migrations", "apply", "DB", "--local", "--persist-to", state],
        cwd=WORKER_DIR, env=env, check=True, capture_output=True,
    )
    port = free_port()
    proc = subprocess.Popen(
        [WRANGLER, "dev", "--ip", "127.0.0.1", "--port", str(port), "--persist-to", state,
         "--show-interactive-dev-session=false", "--inspector-port", str(free_port())],
        cwd=WORKER_DIR, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("wrangler dev did not start")
            time.sleep(0.25)
        yield Worker(base, state)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
