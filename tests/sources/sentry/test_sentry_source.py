"""The Sentry connector against the loopback Sentry sandbox serving the simulated spans."""

from __future__ import annotations

import math
import time
from datetime import UTC, date, datetime, timedelta

import duckdb
import pytest
import requests

from statex_bi.demo.apis import sentry as sentry_api
from statex_bi.demo.sandbox import Response
from statex_bi.demo.world import World, WorldConfig
from statex_bi.exceptions import ConfigError
from statex_bi.ingest import load_source
from statex_bi.sources import sentry
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.sentry import helpers, settings

START, END = date(2026, 3, 2), date(2026, 3, 11)
PER_PAGE = 25
COLUMNS = ("span_id, trace_id, started_at, duration_ms, op, status, system, request_model, input_tokens, "
           "cached_input_tokens, output_tokens, prototype_id, ai_tier, project")


@pytest.fixture(scope="module")
def ai():
    return World(WorldConfig(START, END, seed=5)).ai


@pytest.fixture(autouse=True)
def small_pages_and_short_backoff(monkeypatch):
    monkeypatch.setattr(settings, "PER_PAGE", PER_PAGE)
    monkeypatch.setattr(settings, "RETRY_BACKOFF_S", 0.01)


def _serve(ai, monkeypatch):
    box = sentry_api.serve(ai).start()
    for key, value in sentry_api.environment(box.url).items():
        monkeypatch.setenv(key, value)
    return box


@pytest.fixture
def sandbox(ai, monkeypatch):
    box = _serve(ai, monkeypatch)
    yield box
    box.stop()


def _expected(calls, start: date, end: date) -> list[tuple]:
    first, stop = datetime.combine(start, datetime.min.time()), datetime.combine(end + timedelta(days=1),
                                                                                  datetime.min.time())
    return sorted(
        (c.span_id, c.trace_id, c.started_at, c.duration_ms, c.op, c.status, c.system, c.request_model,
         c.input_tokens, c.cached_input_tokens, c.output_tokens, c.prototype_id, c.ai_tier, c.project)
        for c in calls if first <= c.started_at < stop
    )


def _load(db, **request):
    return load_source(sentry.SPEC, IngestRequest(progress=lambda message: None, **request), db)


def _rows(db, sql="SELECT " + COLUMNS + " FROM raw_sentry.gen_ai_spans ORDER BY span_id"):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _event_requests(box):
    """The requests for gen_ai spans (the performance resources query the same endpoint for aggregates)."""
    return [r for r in box.requests if r.path.endswith("/events/") and r.arg("query") == settings.GEN_AI_QUERY]


def test_loads_exactly_the_gen_ai_spans_of_the_window_across_pages_and_a_rerun_adds_nothing(ai, sandbox, db_file):
    result = _load(db_file, start=START, end=END)
    assert result.status == "succeeded", result.error
    expected = _expected(ai.calls, START, END)
    assert len(expected) > 3 * PER_PAGE
    assert _rows(db_file) == expected
    served = _event_requests(sandbox)
    # Non-AI spans are filtered by the query, the last page says results="false" and paging stops.
    assert len(served) == math.ceil(len(expected) / PER_PAGE)
    assert served[0].arg("query") == "span.op:gen_ai.*" and served[0].arg("dataset") == "spans"
    assert result.rows == len(expected)

    assert _load(db_file, start=START, end=END).status == "succeeded"
    assert _rows(db_file) == expected


def test_incremental_runs_continue_from_the_newest_span_minus_the_lag(monkeypatch, db_file):
    today = datetime.now(UTC).date()
    recent = World(WorldConfig(today - timedelta(days=8), today - timedelta(days=2), seed=3)).ai
    box = _serve(recent, monkeypatch)
    try:
        assert _load(db_file).status == "succeeded"
        expected = _expected(recent.calls, today - timedelta(days=90), today)
        assert _rows(db_file) == expected
        newest = max(row[2] for row in expected)
        served = len(_event_requests(box))
        assert _load(db_file).status == "succeeded"
        again = _event_requests(box)[served:]
        assert len(again) == 1
        start = datetime.fromisoformat(again[0].arg("start").removesuffix("Z"))
        assert start == newest - timedelta(seconds=settings.LATE_SPAN_LAG_S)
        assert _rows(db_file) == expected
    finally:
        box.stop()


@pytest.mark.parametrize("faults", [("429", "429-bare"), ("500", "503", "truncated", "slow")],
                         ids=["rate-limits", "server-faults"])
def test_transient_faults_are_retried_and_everything_loads(ai, sandbox, db_file, faults):
    # Injected in a row: the first page is refused by each in turn before it is served.
    for kind in faults:
        sandbox.inject(kind, path="/api/0/organizations/", delay=0.2)
    result = _load(db_file, start=START, end=END)
    assert result.status == "succeeded", result.error
    assert _rows(db_file) == _expected(ai.calls, START, END)
    pages = math.ceil(len(_expected(ai.calls, START, END)) / PER_PAGE)
    assert len(_event_requests(sandbox)) == pages + len([kind for kind in faults if kind != "slow"])
    assert not sandbox.faults


def test_a_429_without_retry_after_waits_until_the_rate_limit_resets():
    response = requests.models.Response()
    response.status_code = 429
    response.headers["X-Sentry-Rate-Limit-Reset"] = str(int(time.time()) + 5)
    helpers.wait_for_rate_limit_reset(response)
    assert response.headers["Retry-After"] in ("5", "6")

    far = requests.models.Response()
    far.status_code = 429
    far.headers["X-Sentry-Rate-Limit-Reset"] = str(int(time.time()) + 3600)
    helpers.wait_for_rate_limit_reset(far)
    assert far.headers["Retry-After"] == str(int(settings.MAX_RATE_LIMIT_WAIT_S))

    given = requests.models.Response()
    given.status_code = 429
    given.headers.update({"Retry-After": "2", "X-Sentry-Rate-Limit-Reset": str(int(time.time()) + 30)})
    helpers.wait_for_rate_limit_reset(given)
    assert given.headers["Retry-After"] == "2"


def test_a_page_that_keeps_failing_loads_nothing_of_the_run(ai, sandbox, db_file):
    first_days = (START, START + timedelta(days=2))
    assert _load(db_file, start=first_days[0], end=first_days[1]).status == "succeeded"
    before = _rows(db_file)
    method, pattern, handler, public = sandbox.routes[0]

    def broken_after_two_pages(request):
        if int((request.arg("cursor") or "0:0:0").split(":")[1]) >= 2 * PER_PAGE:
            return Response(500, {"detail": "Internal Error"})
        return handler(request)

    sandbox.routes[0] = (method, pattern, broken_after_two_pages, public)
    result = _load(db_file, start=START, end=END)
    assert result.status == "failed"
    assert "events?dataset=spans" in result.error and "HTTP 500" in result.error
    assert _rows(db_file) == before == _expected(ai.calls, *first_days)


def test_a_wrong_token_fails_with_a_hint(sandbox, db_file, monkeypatch):
    monkeypatch.setenv("SENTRY_AUTH_TOKEN", "not-the-token")
    result = _load(db_file, start=START, end=END)
    assert result.status == "failed"
    assert "HTTP 401" in result.error and "$SENTRY_AUTH_TOKEN" in result.error


def test_missing_settings_are_named(monkeypatch):
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    monkeypatch.delenv("SENTRY_ORG", raising=False)
    with pytest.raises(ConfigError, match=r"\$SENTRY_AUTH_TOKEN and \$SENTRY_ORG"):
        sentry.SPEC.build(IngestRequest())


def test_a_span_that_does_not_parse_is_quarantined_and_the_rest_loads(ai, sandbox, db_file):
    victim = next(c for c in ai.calls if c.status == "ok" and START <= c.started_at.date() <= END)
    method, pattern, handler, public = sandbox.routes[0]

    def garbled(request):
        response = handler(request)
        for row in response.body["data"]:
            if row["id"] == victim.span_id:
                row["gen_ai.usage.input_tokens"] = "lots"
        return response

    sandbox.routes[0] = (method, pattern, garbled, public)
    assert _load(db_file, start=START, end=END).status == "succeeded"
    expected = [row for row in _expected(ai.calls, START, END) if row[0] != victim.span_id]
    assert _rows(db_file) == expected
    quarantine = _rows(db_file, "SELECT source, endpoint, record_id, field, error FROM raw_sentry.quarantine")
    assert len(quarantine) == 1
    source, endpoint, record_id, field, error = quarantine[0]
    assert (source, endpoint, record_id, field) == ("sentry", "events?dataset=spans", victim.span_id,
                                                    "gen_ai.usage.input_tokens")
    assert "'lots'" in error and victim.span_id in error


def test_spans_without_a_tier_get_the_one_their_system_means_and_say_so(ai, sandbox, db_file):
    assert _load(db_file, start=START, end=END).status == "succeeded"
    calls = {c.span_id: c for c in ai.calls if START <= c.started_at.date() <= END}
    untiered = {span for span, c in calls.items() if c.tier_attribute is None}
    assert untiered and untiered != set(calls)  # the simulated `spec` step sets no tier attribute
    loaded = {span: (tier, inferred) for span, tier, inferred in
              _rows(db_file, "SELECT span_id, ai_tier, ai_tier_inferred FROM raw_sentry.gen_ai_spans")}
    assert loaded == {span: (c.ai_tier, span in untiered) for span, c in calls.items()}
    requested = _event_requests(sandbox)[0].query["field"]
    assert "prototype_id" in requested and "ai_tier" in requested  # the default attribute names
