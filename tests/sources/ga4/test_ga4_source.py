"""The GA4 connector against the loopback GA4 sandbox: it loads exactly what the simulation generated."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import date, timedelta

import duckdb
import pytest

from statex_bi.demo.apis import ga4 as ga4_api
from statex_bi.demo.growth import simulate_growth
from statex_bi.demo.world import WorldConfig
from statex_bi.exceptions import ConfigError
from statex_bi.ingest import load_source, pipeline_for
from statex_bi.sources import ga4
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.ga4 import helpers, settings

# Six weeks ending well before yesterday, the connector's last day.
END = date.today() - timedelta(days=10)
CONFIG = WorldConfig(END - timedelta(days=41), END, seed=21, scale=0.3)
TABLES = ("traffic_by_channel", "key_events_by_channel", "daily_users")


@pytest.fixture(scope="module")
def growth():
    return simulate_growth(CONFIG)


@pytest.fixture
def messages():
    return []


@pytest.fixture
def fast_retries(monkeypatch):
    monkeypatch.setattr(settings, "RETRY_INITIAL", 0.05)
    monkeypatch.setattr(settings, "RETRY_MAXIMUM", 0.2)
    monkeypatch.setattr(settings, "RETRY_TIMEOUT", 20.0)


@pytest.fixture
def connect_to(monkeypatch, db_file, fast_retries):
    """Point the connector at a sandbox (started here) and return it."""
    started = []

    def connect(sandbox):
        started.append(sandbox.start())
        for key, value in ga4_api.environment(sandbox.url).items():
            monkeypatch.setenv(key, value)
        monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
        monkeypatch.delenv("GA4_KEY_EVENTS", raising=False)
        return sandbox

    yield connect
    for sandbox in started:
        sandbox.stop()


@pytest.fixture
def sandbox(connect_to, growth):
    return connect_to(ga4_api.serve(growth))


def load(db, messages, **window):
    return load_source(ga4.SPEC, IngestRequest(progress=messages.append, **window), db)


def query(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def loaded(db) -> dict:
    """Counts and sums per raw_ga4 table, computed by SQL over what was loaded."""
    return {
        "traffic_by_channel": query(db, """
            SELECT count(*), count(DISTINCT (date, channel)), sum(sessions), sum(active_users),
                   sum(screen_page_views), round(sum(average_session_duration * sessions)), sum(engaged_sessions),
                   min(date), max(date)
            FROM raw_ga4.traffic_by_channel""")[0],
        "key_events_by_channel": query(db, """
            SELECT event_name, count(*), sum(event_count), sum(key_events) FROM raw_ga4.key_events_by_channel
            GROUP BY ALL ORDER BY event_name"""),
        "daily_users": query(db, "SELECT count(*), sum(active_users), sum(sessions), min(date), max(date) "
                                 "FROM raw_ga4.daily_users")[0],
    }


def expected(growth, start: date = CONFIG.start, end: date = CONFIG.end) -> dict:
    """The same figures from the simulation."""
    traffic = [r for r in growth.traffic if start <= r["date"] <= end]
    events = [r for r in growth.key_events if start <= r["date"] <= end]
    users = [r for r in growth.daily_users if start <= r["date"] <= end]
    by_event = {}
    for name in sorted({r["event_name"] for r in events}):
        rows = [r for r in events if r["event_name"] == name]
        by_event[name] = (name, len(rows), sum(r["event_count"] for r in rows), sum(r["key_events"] for r in rows))
    return {
        "traffic_by_channel": (
            len(traffic), len(traffic), sum(r["sessions"] for r in traffic), sum(r["active_users"] for r in traffic),
            sum(r["screen_page_views"] for r in traffic),
            round(sum(r["average_session_duration"] * r["sessions"] for r in traffic)),
            sum(r["engaged_sessions"] for r in traffic), min(r["date"] for r in traffic),
            max(r["date"] for r in traffic)),
        "key_events_by_channel": list(by_event.values()),
        "daily_users": (len(users), sum(r["active_users"] for r in users), sum(r["sessions"] for r in users),
                        min(r["date"] for r in users), max(r["date"] for r in users)),
    }


def cursors(db) -> dict:
    state = pipeline_for(ga4.SPEC, db).state
    resources = state.get("sources", {}).get("ga4", {}).get("resources", {})
    return {name: resources.get(name, {}).get("incremental", {}).get("date", {}).get("last_value") for name in TABLES}


def report_requests(sandbox, table):
    """Bodies of the runReport calls for one report, recognised by its metrics."""
    first_metric = {"traffic_by_channel": "screenPageViews", "key_events_by_channel": "keyEvents",
                    "daily_users": None}[table]
    bodies = [r.json() for r in sandbox.requests]
    if first_metric is None:
        return [b for b in bodies if [d["name"] for d in b["dimensions"]] == ["date"]]
    return [b for b in bodies if first_metric in [m["name"] for m in b["metrics"]]]


def test_loads_exactly_what_the_simulation_generated(sandbox, db_file, growth, messages):
    result = load(db_file, messages)
    assert result.status == "succeeded", result.error
    assert loaded(db_file) == expected(growth)
    assert query(db_file, ga4.SPEC.watermark_sql) == [(CONFIG.end,)]
    # Per-row values survive the strings on the wire, floats included.
    day, channel = growth.traffic[7]["date"], growth.traffic[7]["channel"]
    row = query(db_file, "SELECT average_session_duration, active_users FROM raw_ga4.traffic_by_channel "
                         f"WHERE date = DATE '{day}' AND channel = '{channel}'")
    assert row == [(growth.traffic[7]["average_session_duration"], growth.traffic[7]["active_users"])]
    assert any("traffic_by_channel" in m and "page 1" in m for m in messages)
    assert not query(db_file, "SELECT * FROM information_schema.tables WHERE table_name = 'quarantine'")


def test_loads_the_sessions_with_each_key_event_and_the_property_time_zone(sandbox, db_file, growth, messages):
    """Sessions in which the event happened (GA4 `sessions` filtered on eventName), not key events: GA4
    counts a key event once per event, so a session with two form submissions counts twice there."""
    assert load(db_file, messages).status == "succeeded"
    assert sorted(query(db_file, "SELECT date, channel, event_name, sessions "
                                 "FROM raw_ga4.key_event_sessions_by_channel")) == sorted(
        (r["date"], r["channel"], r["event_name"], r["sessions"]) for r in growth.event_sessions)
    sessions = query(db_file, "SELECT sum(sessions) FROM raw_ga4.key_event_sessions_by_channel "
                              "WHERE event_name = 'prototype_request'")[0][0]
    key_events = query(db_file, "SELECT sum(key_events) FROM raw_ga4.key_events_by_channel "
                                "WHERE event_name = 'prototype_request'")[0][0]
    assert 0 < sessions < key_events
    bodies = [r.json() for r in sandbox.requests if [m["name"] for m in r.json()["metrics"]] == ["sessions"]
              and len(r.json()["dimensions"]) == 3]
    assert bodies and all(b["dimensionFilter"]["filter"]["fieldName"] == "eventName" for b in bodies)
    assert query(db_file, "SELECT property_id, time_zone, currency_code FROM raw_ga4.property") == [
        (ga4_api.PROPERTY_ID, ga4_api.TIME_ZONE, ga4_api.CURRENCY)]


def test_rerun_rereads_only_the_lookback_days_and_adds_nothing(sandbox, db_file, growth, messages):
    assert load(db_file, messages).status == "succeeded"
    before = loaded(db_file)
    sandbox.requests.clear()
    result = load(db_file, messages)
    assert result.status == "succeeded", result.error
    assert loaded(db_file) == before == expected(growth)
    first_reread = CONFIG.end - timedelta(days=settings.LOOKBACK_DAYS - 1)
    for table in TABLES:
        (body,) = report_requests(sandbox, table)
        assert body["dateRanges"] == [{"startDate": first_reread.isoformat(),
                                       "endDate": (date.today() - timedelta(days=1)).isoformat()}]


def test_revised_recent_days_replace_the_loaded_ones(connect_to, db_file, growth, messages):
    with ga4_api.serve(growth) as first:
        connect_to(first)
        assert load(db_file, messages).status == "succeeded"
    # GA4 revises the last day (late hits); the next run picks the revision up and merges it.
    revised = [dict(r, sessions=r["sessions"] + 100) if r["date"] == CONFIG.end else r for r in growth.traffic]
    connect_to(ga4_api.serve(dataclasses.replace(growth, traffic=revised)))
    assert load(db_file, messages).status == "succeeded"
    sessions = query(db_file, "SELECT count(*), sum(sessions) FROM raw_ga4.traffic_by_channel")[0]
    assert sessions == (len(revised), sum(r["sessions"] for r in revised))


def test_pages_follow_offset_until_row_count(sandbox, db_file, growth, messages, monkeypatch):
    monkeypatch.setattr(settings, "PAGE_SIZE", 40)
    assert load(db_file, messages).status == "succeeded"
    assert loaded(db_file) == expected(growth)
    bodies = report_requests(sandbox, "traffic_by_channel")
    assert [int(b.get("offset", 0)) for b in bodies] == list(range(0, len(growth.traffic), 40))
    assert {b["limit"] for b in bodies} == {"40"}  # int64 travels as a string


def test_explicit_window_loads_exactly_that_window(sandbox, db_file, growth, messages):
    start, end = CONFIG.start + timedelta(days=10), CONFIG.start + timedelta(days=20)
    assert load(db_file, messages, start=start, end=end).status == "succeeded"
    assert loaded(db_file) == expected(growth, start, end)
    assert cursors(db_file) == dict.fromkeys(TABLES)  # a backfill leaves the cursor alone
    assert load(db_file, messages).status == "succeeded"
    assert loaded(db_file) == expected(growth)


def test_key_events_come_from_the_environment(sandbox, db_file, growth, messages, monkeypatch):
    monkeypatch.setenv("GA4_KEY_EVENTS", " sign_up ")
    assert load(db_file, messages).status == "succeeded"
    assert loaded(db_file)["key_events_by_channel"] == [expected(growth)["key_events_by_channel"][1]]
    (body, *_) = report_requests(sandbox, "key_events_by_channel")
    assert body["dimensionFilter"] == {"filter": {"fieldName": "eventName", "inListFilter": {"values": ["sign_up"]}}}


def test_transient_faults_are_retried(sandbox, db_file, growth, messages):
    kinds = ("429", "429-bare", "500", "503", "truncated")
    for kind in kinds:  # one after the other: each request meets the next fault
        sandbox.inject(kind)
    result = load(db_file, messages)
    assert result.status == "succeeded", result.error
    assert loaded(db_file) == expected(growth)
    assert len(sandbox.requests) == len(settings.REPORTS) + len(kinds)
    retries = [m for m in messages if "retrying" in m]
    assert len(retries) == len(kinds)
    assert "HTTP 429 TooManyRequests" in retries[0] and "after 1s (Retry-After)" in retries[0]
    assert "HTTP 429 TooManyRequests" in retries[1] and "Retry-After" not in retries[1]
    assert "HTTP 500 InternalServerError" in retries[2] and "HTTP 503 ServiceUnavailable" in retries[3]
    assert "ChunkedEncodingError" in retries[4] or "ConnectionError" in retries[4]


def test_slow_answer_times_out_and_is_retried(sandbox, db_file, growth, messages, monkeypatch):
    monkeypatch.setattr(settings, "REQUEST_TIMEOUT", 0.5)
    sandbox.inject("slow", times=1, delay=1.5)
    assert load(db_file, messages).status == "succeeded"
    assert loaded(db_file) == expected(growth)
    assert any("Timeout" in m and "retrying" in m for m in messages)


def test_failure_midway_keeps_earlier_data_and_cursor(connect_to, db_file, growth, messages, monkeypatch):
    with ga4_api.serve(growth) as first:
        connect_to(first)
        assert load(db_file, messages).status == "succeeded"
    before, cursor = loaded(db_file), cursors(db_file)
    assert cursor == dict.fromkeys(TABLES, CONFIG.end)

    # The next run would change the recent days, but GA4 goes down after the first report.
    changed = [dict(r, sessions=r["sessions"] + 1000) for r in growth.traffic]
    down = connect_to(ga4_api.serve(dataclasses.replace(growth, traffic=changed)))
    monkeypatch.setattr(settings, "RETRY_TIMEOUT", 1.0)

    def progress(message):
        messages.append(message)
        if "traffic_by_channel" in message and "page 1" in message:
            down.inject("503", times=1000)

    result = load_source(ga4.SPEC, IngestRequest(progress=progress), db_file)
    assert result.status == "failed"
    assert "ga4: runReport:key_events_by_channel: gave up after" in result.error
    assert "HTTP 503 ServiceUnavailable" in result.error
    assert loaded(db_file) == before
    assert cursors(db_file) == cursor


def test_failure_on_the_first_run_loads_nothing(sandbox, db_file, messages, monkeypatch):
    monkeypatch.setattr(settings, "PAGE_SIZE", 40)
    monkeypatch.setattr(settings, "RETRY_TIMEOUT", 1.0)

    def progress(message):
        messages.append(message)
        if "page 2" in message:
            sandbox.inject("500", times=1000)

    result = load_source(ga4.SPEC, IngestRequest(progress=progress), db_file)
    assert result.status == "failed" and "HTTP 500 InternalServerError" in result.error
    assert not query(db_file, "SELECT * FROM information_schema.tables WHERE table_schema = 'raw_ga4' "
                              "AND table_name IN ('traffic_by_channel', 'key_events_by_channel', 'daily_users')")


def test_unparsable_value_goes_to_quarantine(connect_to, db_file, growth, messages):
    bad = growth.traffic[5]
    traffic = [dict(r, sessions="1O4") if r is bad else r for r in growth.traffic]
    connect_to(ga4_api.serve(dataclasses.replace(growth, traffic=traffic)))
    assert load(db_file, messages).status == "succeeded"
    good = [r for r in growth.traffic if r is not bad]
    assert query(db_file, "SELECT count(*), sum(sessions) FROM raw_ga4.traffic_by_channel") == [
        (len(good), sum(r["sessions"] for r in good))]
    record = f"{bad['date']:%Y%m%d}/{bad['channel']}"
    rows = query(db_file, "SELECT source, endpoint, record_id, field, error, payload FROM raw_ga4.quarantine")
    assert len(rows) == 1
    source, endpoint, record_id, field, error, payload = rows[0]
    assert (source, endpoint, record_id, field) == ("ga4", "runReport:traffic_by_channel", record, "sessions")
    assert error == (f"ga4: runReport:traffic_by_channel: record {record}: field 'sessions': "
                     "expected an integer, got '1O4'")
    assert '"sessions": "1O4"' in payload
    # The other reports of that day are complete.
    assert loaded(db_file)["daily_users"] == expected(growth)["daily_users"]


def test_wrong_property_is_reported_clearly(sandbox, db_file, messages, monkeypatch):
    monkeypatch.setenv("GA4_PROPERTY_ID", "999999")
    result = load(db_file, messages)
    assert result.status == "failed"
    assert "HTTP 403 Forbidden" in result.error and "Check $GA4_PROPERTY_ID (properties/999999)" in result.error
    assert len(sandbox.requests) == 1  # a permission error is not retried


def test_sandbox_requiring_a_token_refuses_the_anonymous_client(connect_to, growth, db_file, messages):
    connect_to(ga4_api.serve(growth, allow_anonymous=False))
    result = load(db_file, messages)
    assert result.status == "failed"
    assert "ga4: runReport:traffic_by_channel: the server refused the credentials" in result.error
    assert "GOOGLE_APPLICATION_CREDENTIALS" in result.error


@pytest.mark.parametrize("value, words", [
    ("G-4XK2Q7RZ9B", "Measurement ID"),
    ("12345x", "must be numeric"),
])
def test_property_id_must_be_numeric(monkeypatch, value, words):
    monkeypatch.setenv("GA4_PROPERTY_ID", value)
    with pytest.raises(ConfigError, match=words) as error:
        helpers.read_config()
    assert repr(value) in str(error.value)


def test_plain_http_only_to_loopback(monkeypatch):
    monkeypatch.setenv("GA4_PROPERTY_ID", "properties/123")
    monkeypatch.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    monkeypatch.setenv("GA4_API_ENDPOINT", "http://analytics.example.com")
    with pytest.raises(ConfigError, match="non-loopback"):
        helpers.read_config()
    monkeypatch.setenv("GA4_API_ENDPOINT", "http://localhost:8123")
    config = helpers.read_config()
    assert (config.property, config.anonymous) == ("properties/123", True)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", "/etc/statex/ga4.json")
    assert helpers.read_config().anonymous is False


def test_key_event_counts_match_the_simulated_customers(sandbox, db_file, growth, messages):
    assert load(db_file, messages).status == "succeeded"
    loaded_sign_ups = dict(((d, c), n) for d, c, n in query(
        db_file, "SELECT date, channel, key_events FROM raw_ga4.key_events_by_channel WHERE event_name = 'sign_up'"))
    assert Counter(loaded_sign_ups) == Counter((c.signed_up_at.date(), c.channel) for c in growth.customers)


def test_start_after_yesterday_is_refused(sandbox, db_file, messages):
    result = load(db_file, messages, start=date.today())
    assert result.status == "failed"
    assert result.error.startswith(f"ga4: --start {date.today()} is after the last day to load")
    assert not sandbox.requests
