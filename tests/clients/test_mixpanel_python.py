"""Mixpanel's official Python library (PyPI `mixpanel`, pinned in
requirements.txt), pointed at our worker and changed in nothing else.

Every public method runs through both of the library's consumers
(`Consumer` sends each call, `BufferedConsumer` sends on `flush()`), and
after each call the test checks the exact stored rows, profile, group or
identity state, and that the library's own verdict (returned, or raised
`MixpanelException`) matches what was stored. `alias` cannot be pointed
anywhere but Mixpanel's own host, which the last tests show."""

import datetime
import json
import re
import time
import urllib.request
import uuid

import mixpanel
import pytest

from conftest import SECRET, TOKEN

KINDS = ["consumer", "buffered"]
LIB_VERSION = mixpanel.__version__


def uid(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def last_seen(seconds):
    """`$last_seen` as the worker writes it for an update at `seconds`."""
    return datetime.datetime.fromtimestamp(round(seconds * 1000) // 1000, datetime.timezone.utc).strftime(
        "%Y-%m-%dT%H:%M:%S"
    )


class Client:
    """One library instance on one consumer kind, pointed at the worker."""

    def __init__(self, worker, kind, token=TOKEN, credentials=None, **urls):
        endpoints = {
            "events_url": worker.base + "/track",
            "people_url": worker.base + "/engage",
            "import_url": worker.base + "/import",
            "groups_url": worker.base + "/groups",
            **urls,
        }
        self.kind = kind
        if kind == "buffered":
            self.consumer = mixpanel.BufferedConsumer(max_size=50, credentials=credentials, **endpoints)
        else:
            self.consumer = mixpanel.Consumer(credentials=credentials, **endpoints)
        self.mp = mixpanel.Mixpanel(token, consumer=self.consumer)

    def call(self, action):
        """Runs action(mp) (then flush() for the buffered consumer) and
        returns what the library reported: None, or its exception."""
        try:
            action(self.mp)
            if self.kind == "buffered":
                self.consumer.flush()
        except mixpanel.MixpanelException as error:
            return error
        return None


def row(event, distinct_id, timestamp, insert_id, source, properties):
    """A stored event as `/public/events` lists it (without arrival time)."""
    return {
        "event": event,
        "distinct_id": distinct_id,
        "timestamp": timestamp,
        "insert_id": insert_id,
        "device_id": None,
        "properties": properties,
        "url": None,
        "referrer": None,
        "title": None,
        "screen": None,
        "source": source,
        "country": None,  # the library sends ip=0
    }


@pytest.mark.parametrize("kind", KINDS)
def test_track_stores_exact_rows(worker, kind):
    user = uid("py-track")
    client = Client(worker, kind)
    at = time.time() - 60.25
    assert client.call(lambda mp: mp.track(user, "Signed Up", {"plan": "pro", "seats": 3, "time": at})) is None
    assert client.call(lambda mp: mp.track(user, "Opened", {"$insert_id": "py-open-1" + user[-4:]})) is None
    rows = worker.wait_until(lambda: len(worker.rows(user)), 2) and worker.rows(user)
    # The library makes a 32-hex $insert_id and sends time in float seconds.
    generated = rows[0]["insert_id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)
    props = {"plan": "pro", "seats": 3, "$lib_version": LIB_VERSION}
    assert rows[0] == row("Signed Up", user, round(at * 1000), generated, "mixpanel_track", props)
    opened = rows[1]
    assert opened == row(
        "Opened", user, opened["timestamp"], "py-open-1" + user[-4:], "mixpanel_track", {"$lib_version": LIB_VERSION}
    )
    assert abs(opened["timestamp"] - time.time() * 1000) < 60_000


@pytest.mark.parametrize("kind", KINDS)
def test_a_resent_event_is_one_row_and_a_repeated_action_two(worker, kind):
    user = uid("py-resend")
    client = Client(worker, kind)
    at = time.time() - 30
    resend = {"$insert_id": "resend-" + user[-10:], "time": at}
    for _ in range(2):
        assert client.call(lambda mp: mp.track(user, "Retried", dict(resend))) is None
    # The same action twice, each with the library's own fresh $insert_id.
    for _ in range(2):
        assert client.call(lambda mp: mp.track(user, "Login", {"time": at})) is None
    worker.wait_until(lambda: sorted(r["event"] for r in worker.rows(user)), ["Login", "Login", "Retried"])
    worker.settled()
    assert sorted(r["event"] for r in worker.rows(user)) == ["Login", "Login", "Retried"]


@pytest.mark.parametrize("kind", KINDS)
def test_import_data_with_the_api_secret(worker, kind):
    user = uid("py-import")
    ten_days_ago = int(time.time()) - 10 * 24 * 3600
    client = Client(worker, kind)
    error = client.call(
        lambda mp: mp.import_data("unused-api-key", user, "Old Purchase", ten_days_ago, {"amount": 42}, api_secret=SECRET)
    )
    assert error is None
    [stored] = worker.wait_until(lambda: len(worker.rows(user)), 1) and worker.rows(user)
    assert re.fullmatch(r"[0-9a-f]{32}", stored["insert_id"])
    props = {"amount": 42, "$lib_version": LIB_VERSION}
    assert stored == row("Old Purchase", user, ten_days_ago * 1000, stored["insert_id"], "mixpanel_import", props)


@pytest.mark.parametrize("kind", KINDS)
def test_import_data_with_service_account_credentials(worker, kind):
    user = uid("py-sa")
    credentials = mixpanel.ServiceAccountCredentials(username="svc-account", secret=SECRET, project_id="demo")
    week_ago = int(time.time()) - 7 * 24 * 3600
    client = Client(worker, kind, credentials=credentials)
    assert client.call(lambda mp: mp.import_data(None, user, "Service Import", week_ago, {"k": "v"})) is None
    [stored] = worker.wait_until(lambda: len(worker.rows(user)), 1) and worker.rows(user)
    assert (stored["event"], stored["timestamp"], stored["properties"]) == (
        "Service Import",
        week_ago * 1000,
        {"k": "v", "$lib_version": LIB_VERSION},
    )


@pytest.mark.parametrize("kind", KINDS)
def test_merge_joins_two_ids_and_exports_show_one_person(worker, kind):
    first, second = uid("py-m1"), uid("py-m2")
    client = Client(worker, kind)
    at = time.time() - 120
    assert client.call(lambda mp: mp.track(second, "Before Merge", {"time": at})) is None
    worker.wait_until(lambda: len(worker.rows(second)), 1)
    assert worker.identity(second) == (second, [second])
    assert client.call(lambda mp: mp.merge(None, first, second, api_secret=SECRET)) is None
    worker.wait_until(lambda: worker.identity(second), (first, sorted([first, second])))
    assert worker.identity(first) == (first, sorted([first, second]))
    # $merge is an identity operation, not an event.
    assert worker.rows(first) == []
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    req = urllib.request.Request(
        f"{worker.base}/api/2.0/export?from_date={day}&to_date={day}", headers={"x-api-key": SECRET}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        lines = [json.loads(line) for line in resp.read().decode().splitlines() if line]
    [exported] = [e for e in lines if e["properties"].get("$distinct_id_before_identity") == second]
    assert (exported["event"], exported["properties"]["distinct_id"]) == ("Before Merge", first)


@pytest.mark.parametrize("kind", KINDS)
def test_people_methods_build_the_exact_profile(worker, kind):
    user = uid("py-people")
    client = Client(worker, kind)
    t = time.time() - 3600.5
    meta = lambda offset: {"$time": t + offset}  # noqa: E731

    def step(action, expected):
        assert client.call(action) is None
        worker.wait_until(lambda: worker.profile(user), expected)

    profile = {"$name": "Ada", "plan": "free", "$last_seen": last_seen(t)}
    step(lambda mp: mp.people_set(user, {"$name": "Ada", "plan": "free"}, meta(0)), profile)
    # $set_once fills what is missing and leaves $last_seen alone.
    profile = {**profile, "first_plan": "free"}
    step(lambda mp: mp.people_set_once(user, {"plan": "pro", "first_plan": "free"}, meta(10)), profile)
    profile = {**profile, "logins": 2, "$last_seen": last_seen(t + 20)}
    step(lambda mp: mp.people_increment(user, {"logins": 2}, meta(20)), profile)
    profile = {**profile, "logins": 5, "$last_seen": last_seen(t + 30)}
    step(lambda mp: mp.people_increment(user, {"logins": 3}, meta(30)), profile)
    profile = {**profile, "pages": ["home"], "$last_seen": last_seen(t + 40)}
    step(lambda mp: mp.people_append(user, {"pages": "home"}, meta(40)), profile)
    profile = {**profile, "tags": ["a", "b"]}
    step(lambda mp: mp.people_union(user, {"tags": ["a", "b", "a"]}, meta(50)), profile)
    profile = {**profile, "tags": ["b"]}
    step(lambda mp: mp.people_remove(user, {"tags": "a"}, meta(60)), profile)
    profile = {k: v for k, v in profile.items() if k != "first_plan"}
    step(lambda mp: mp.people_unset(user, ["first_plan"], meta(70)), profile)
    profile = {**profile, "$transactions": [{"sku": "x-1", "$amount": 9.99}], "$last_seen": last_seen(t + 80)}
    step(lambda mp: mp.people_track_charge(user, 9.99, {"sku": "x-1"}, meta(80)), profile)
    profile = {k: v for k, v in profile.items() if k != "$transactions"}
    step(lambda mp: mp.people_clear_charges(user, meta(90)), profile)
    # $ignore_time keeps $last_seen where it was.
    quiet = {"$distinct_id": user, "$set": {"quiet": True}, "$ignore_time": True}
    profile = {**profile, "quiet": True}
    step(lambda mp: mp.people_update(quiet, meta(100)), profile)
    step(lambda mp: mp.people_delete(user), None)


@pytest.mark.parametrize("kind", KINDS)
def test_last_seen_defaults_to_the_update_time(worker, kind):
    user = uid("py-seen")
    before = time.time()
    assert Client(worker, kind).call(lambda mp: mp.people_set(user, {"a": 1})) is None
    profile = worker.wait_for_profile(user)
    assert set(profile) == {"a", "$last_seen"}, "ip=0: no country either"
    seen = datetime.datetime.strptime(profile["$last_seen"], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=datetime.timezone.utc)
    assert int(before) - 1 <= seen.timestamp() <= time.time() + 1


@pytest.mark.parametrize("kind", KINDS)
def test_group_methods_build_the_exact_group(worker, kind):
    company = uid("Acme")
    client = Client(worker, kind)

    def step(action, expected):
        assert client.call(action) is None
        worker.wait_until(lambda: worker.group("company", company), expected)

    group = {"industry": "widgets", "size": 10}
    step(lambda mp: mp.group_set("company", company, {"industry": "widgets", "size": 10}), group)
    group = {**group, "founded": 1999}
    step(lambda mp: mp.group_set_once("company", company, {"industry": "x", "founded": 1999}), group)
    group = {**group, "products": ["anvil", "rocket"]}
    step(lambda mp: mp.group_union("company", company, {"products": ["anvil", "rocket", "anvil"]}), group)
    group = {**group, "products": ["rocket"]}
    step(lambda mp: mp.group_remove("company", company, {"products": "anvil"}), group)
    group = {k: v for k, v in group.items() if k != "size"}
    step(lambda mp: mp.group_unset("company", company, ["size"]), group)
    update = {"$group_key": "company", "$group_id": company, "$set": {"tier": "gold"}}
    group = {**group, "tier": "gold"}
    step(lambda mp: mp.group_update(update), group)
    step(lambda mp: mp.group_delete("company", company), None)


@pytest.mark.parametrize("kind", KINDS)
def test_failures_are_reported_and_store_nothing(worker, kind):
    user = uid("py-fail")
    # An unknown token.
    error = Client(worker, kind, token="not-a-token").call(lambda mp: mp.track(user, "Nope"))
    assert isinstance(error, mixpanel.MixpanelException)
    # A wrong secret.
    error = Client(worker, kind).call(
        lambda mp: mp.import_data(None, user, "Nope", int(time.time()) - 86400, api_secret="wrong")
    )
    assert isinstance(error, mixpanel.MixpanelException)
    # An import the worker cannot take (no valid time): the whole request is
    # refused, so the valid event sent with it is not stored either.
    client = Client(worker, kind)

    def bad_batch(mp):
        mp.import_data(None, user, "Valid", int(time.time()) - 86400, api_secret=SECRET)
        mp.import_data(None, user, "Invalid", "yesterday", api_secret=SECRET)

    if kind == "buffered":
        error = client.call(bad_batch)
        assert "properties.time" in str(error)
    else:
        # Sent one by one: the first is taken, the second refused.
        error = client.call(lambda mp: mp.import_data(None, user, "Invalid", "yesterday", api_secret=SECRET))
        assert "properties.time" in str(error)
    # A group operation Mixpanel's group API does not have.
    company = uid("NoAdd")
    bad_group = {"$group_key": "company", "$group_id": company, "$add": {"n": 1}}
    assert isinstance(Client(worker, kind).call(lambda mp: mp.group_update(bad_group)), mixpanel.MixpanelException)
    # Past a profile cap (1000 list items), groups as users.
    too_long = {"products": list(range(1001))}
    error = Client(worker, kind).call(lambda mp: mp.group_union("company", company, too_long))
    assert "longer than 1000 items" in str(error)
    # A profile update that names nobody.
    no_user = {"$set": {"a": 1}}
    assert isinstance(Client(worker, kind).call(lambda mp: mp.people_update(no_user)), mixpanel.MixpanelException)

    worker.settled()
    assert worker.rows(user) == []
    assert worker.group("company", company) is None


@pytest.mark.parametrize("kind", KINDS)
def test_an_unknown_endpoint_raises_the_librarys_own_exception(worker, kind):
    """A 404 carries `status`, so the library raises MixpanelException, not
    KeyError (which also stopped BufferedConsumer.flush half-way)."""
    client = Client(worker, kind, groups_url=worker.base + "/no-such-endpoint")
    error = client.call(lambda mp: mp.group_set("company", "Acme", {"a": 1}))
    assert isinstance(error, mixpanel.MixpanelException)


def test_buffered_groups_and_imports_flush_together(worker):
    user, company = uid("py-buf"), uid("BufCo")
    consumer = mixpanel.BufferedConsumer(
        max_size=50,
        events_url=worker.base + "/track",
        people_url=worker.base + "/engage",
        import_url=worker.base + "/import",
        groups_url=worker.base + "/groups",
    )
    mp = mixpanel.Mixpanel(TOKEN, consumer=consumer)
    week_ago = int(time.time()) - 7 * 24 * 3600
    mp.group_set("company", company, {"plan": "team"})
    mp.people_set(user, {"k": 1})
    # The library keeps the secret of its last send() for every buffered
    # import, so the calls that carry it come last.
    mp.import_data(None, user, "Buffered Import", week_ago, api_secret=SECRET)
    mp.import_data(None, user, "Buffered Import 2", week_ago + 1, api_secret=SECRET)
    mp.merge(None, user, user + "-other", api_secret=SECRET)
    consumer.flush()
    worker.wait_until(lambda: [r["event"] for r in worker.rows(user)], ["Buffered Import", "Buffered Import 2"])
    worker.wait_until(lambda: worker.group("company", company), {"plan": "team"})
    worker.wait_until(lambda: worker.identity(user + "-other"), (user, sorted([user, user + "-other"])))
    assert worker.wait_for_profile(user)["k"] == 1


def test_service_account_for_another_project_is_refused(worker):
    user = uid("py-other")
    credentials = mixpanel.ServiceAccountCredentials(username="svc", secret=SECRET, project_id="other-project")
    client = Client(worker, "consumer", credentials=credentials)
    error = client.call(lambda mp: mp.import_data(None, user, "X", int(time.time()) - 86400))
    assert isinstance(error, mixpanel.MixpanelException)
    worker.settled()
    assert worker.rows(user) == []


def test_alias_always_posts_to_mixpanels_own_host(worker):
    """`alias` makes its own `Consumer()` for api.mixpanel.com whatever the
    client was given, so it can never reach this worker (README: not
    supported from Python; the Node and browser libraries' alias works)."""
    original, alias = uid("py-orig"), uid("py-alias")
    with pytest.raises(mixpanel.MixpanelException):
        Client(worker, "consumer").mp.alias(alias, original)
    worker.settled()
    assert worker.rows(original) == []
    assert worker.identity(alias) == (alias, [alias])
