"""Mixpanel's official Python library (PyPI `mixpanel`, pinned in
requirements.txt), pointed at our worker and changed in nothing else."""

import time
import uuid

import mixpanel
import pytest

from conftest import SECRET, TOKEN


def client(worker, token=TOKEN):
    consumer = mixpanel.Consumer(
        events_url=worker.base + "/track",
        people_url=worker.base + "/engage",
        import_url=worker.base + "/import",
    )
    return mixpanel.Mixpanel(token, consumer=consumer)


def test_track_is_stored_with_its_properties(worker):
    user = f"py-{uuid.uuid4().hex[:8]}"
    client(worker).track(user, "Signed Up", {"plan": "pro", "seats": 3})
    events = worker.wait_for(lambda es: any(e["distinct_id"] == user for e in es))
    [event] = [e for e in events if e["distinct_id"] == user]
    assert event["event"] == "Signed Up"
    assert event["properties"]["plan"] == "pro"
    assert event["properties"]["seats"] == 3
    assert event["source"] == "mixpanel_track"
    # The library makes a 32-hex $insert_id and sends time in seconds.
    assert len(event["insert_id"]) == 32
    assert abs(event["timestamp"] - time.time() * 1000) < 60_000
    assert "token" not in event["properties"]


def test_the_same_insert_id_twice_is_one_row(worker):
    user = f"py-{uuid.uuid4().hex[:8]}"
    mp = client(worker)
    for _ in range(2):
        mp.track(user, "Retried", {"$insert_id": "retry-" + user})
    worker.wait_for(lambda es: any(e["distinct_id"] == user for e in es))
    time.sleep(2.5)
    assert len([e for e in worker.events() if e["distinct_id"] == user]) == 1


def test_people_set_and_add_reach_the_profile(worker):
    user = f"py-{uuid.uuid4().hex[:8]}"
    mp = client(worker)
    mp.people_set(user, {"$name": "Ada", "plan": "free"})
    profile = worker.wait_for_profile(user, lambda p: p.get("$name") == "Ada")
    assert profile["plan"] == "free"
    mp.people_increment(user, {"logins": 2})
    mp.people_increment(user, {"logins": 3})
    profile = worker.wait_for_profile(user, lambda p: p.get("logins") == 5)
    assert profile["$name"] == "Ada"


def test_import_with_the_api_secret(worker):
    user = f"py-{uuid.uuid4().hex[:8]}"
    ten_days_ago = int(time.time()) - 10 * 24 * 3600
    client(worker).import_data(
        "unused-api-key", user, "Old Purchase", ten_days_ago, {"amount": 42}, api_secret=SECRET
    )
    events = worker.wait_for(lambda es: any(e["distinct_id"] == user for e in es))
    [event] = [e for e in events if e["distinct_id"] == user]
    assert event["event"] == "Old Purchase"
    assert event["timestamp"] == ten_days_ago * 1000
    assert event["properties"]["amount"] == 42
    assert event["source"] == "mixpanel_import"


def test_import_with_a_wrong_secret_raises(worker):
    with pytest.raises(mixpanel.MixpanelException):
        client(worker).import_data("k", "someone", "Nope", int(time.time()) - 86400, api_secret="wrong")


def test_a_wrong_token_raises_and_stores_nothing(worker):
    user = f"py-{uuid.uuid4().hex[:8]}"
    with pytest.raises(mixpanel.MixpanelException):
        client(worker, token="not-a-token").track(user, "Nope")
    time.sleep(2)
    assert not [e for e in worker.events() if e["distinct_id"] == user]


def test_import_with_service_account_credentials(worker):
    user = f"py-{uuid.uuid4().hex[:8]}"
    credentials = mixpanel.ServiceAccountCredentials(username="svc-account", secret=SECRET, project_id="demo")
    consumer = mixpanel.Consumer(import_url=worker.base + "/import", credentials=credentials)
    week_ago = int(time.time()) - 7 * 24 * 3600
    mixpanel.Mixpanel(TOKEN, consumer=consumer).import_data(None, user, "Service Import", week_ago, {"k": "v"})
    events = worker.wait_for(lambda es: any(e["distinct_id"] == user for e in es))
    assert [e["event"] for e in events if e["distinct_id"] == user] == ["Service Import"]


def test_service_account_for_another_project_is_refused(worker):
    credentials = mixpanel.ServiceAccountCredentials(username="svc", secret=SECRET, project_id="other-project")
    consumer = mixpanel.Consumer(import_url=worker.base + "/import", credentials=credentials)
    with pytest.raises(mixpanel.MixpanelException):
        mixpanel.Mixpanel(TOKEN, consumer=consumer).import_data(None, "u", "X", int(time.time()) - 86400)
