"""The OpenAI usage connector against the loopback OpenAI sandbox serving the simulated bill."""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, time, timedelta

import duckdb
import pytest

from statex_bi.demo.apis import openai as openai_api
from statex_bi.demo.sandbox import Response
from statex_bi.demo.world import World, WorldConfig
from statex_bi.exceptions import ConfigError
from statex_bi.ingest import load_source
from statex_bi.sources import openai as openai_source
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.openai import helpers, settings

START, END = date(2026, 3, 2), date(2026, 3, 31)
USAGE_LIMIT, COSTS_LIMIT = 4, 7
USAGE_SQL = ("SELECT bucket_start, bucket_end, model, project_id, batch, service_tier, input_tokens, "
             "input_cached_tokens, output_tokens, num_model_requests FROM raw_openai.usage_completions ORDER BY ALL")
COSTS_SQL = ("SELECT bucket_start, bucket_end, line_item, project_id, round(amount, 8), currency "
             "FROM raw_openai.costs ORDER BY ALL")


@pytest.fixture(scope="module")
def ai():
    return World(WorldConfig(START, END, seed=5)).ai


@pytest.fixture(autouse=True)
def small_pages_and_short_backoff(monkeypatch):
    monkeypatch.setattr(settings, "USAGE_LIMIT", USAGE_LIMIT)
    monkeypatch.setattr(settings, "COSTS_LIMIT", COSTS_LIMIT)
    monkeypatch.setattr(settings, "RETRY_BACKOFF_S", 0.01)


def _serve(ai, monkeypatch, suffix=""):
    box = openai_api.serve(ai).start()
    for key, value in openai_api.environment(box.url).items():
        monkeypatch.setenv(key, value + (suffix if key == "OPENAI_API_BASE" else ""))
    return box


@pytest.fixture
def sandbox(ai, monkeypatch):
    box = _serve(ai, monkeypatch)
    yield box
    box.stop()


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time())


def _expected_usage(ai, start: date, end: date) -> list[tuple]:
    return sorted(
        (_midnight(b.day), _midnight(b.day + timedelta(days=1)), b.model, b.project_id, b.batch, b.service_tier,
         b.input_tokens, b.input_cached_tokens, b.output_tokens, b.num_model_requests)
        for b in ai.usage if start <= b.day <= end
    )


def _expected_costs(ai, start: date, end: date) -> list[tuple]:
    return sorted(
        (_midnight(c.day), _midnight(c.day + timedelta(days=1)), c.line_item, c.project_id, round(c.amount_usd, 8),
         "USD")
        for c in ai.costs if start <= c.day <= end
    )


def _load(db, **request):
    return load_source(openai_source.SPEC, IngestRequest(progress=lambda message: None, **request), db)


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def _served(box, path):
    return [r for r in box.requests if r.path == path]


def test_loads_exactly_the_usage_and_costs_openai_served_across_pages_and_a_rerun_adds_nothing(
        ai, monkeypatch, db_file):
    box = _serve(ai, monkeypatch, suffix="/v1")  # the OpenAI SDK's base URL convention works too
    try:
        result = _load(db_file, start=START, end=END)
        assert result.status == "succeeded", result.error
        assert _rows(db_file, USAGE_SQL) == _expected_usage(ai, START, END)
        assert _rows(db_file, COSTS_SQL) == _expected_costs(ai, START, END)
        days = (END - START).days + 1
        assert len(_served(box, settings.USAGE_PATH)) == math.ceil(days / USAGE_LIMIT)
        assert len(_served(box, settings.COSTS_PATH)) == math.ceil(days / COSTS_LIMIT)
        first = _served(box, settings.USAGE_PATH)[0]
        assert first.query["group_by"] == list(settings.USAGE_GROUP_BY) and first.arg("bucket_width") == "1d"
        billed = _rows(db_file, "SELECT sum(amount) FROM raw_openai.costs")[0][0]
        assert billed == pytest.approx(sum(c.amount_usd for c in ai.costs if START <= c.day <= END))

        assert _load(db_file, start=START, end=END).status == "succeeded"
    finally:
        box.stop()
    assert _rows(db_file, USAGE_SQL) == _expected_usage(ai, START, END)
    assert _rows(db_file, COSTS_SQL) == _expected_costs(ai, START, END)


def test_incremental_runs_refetch_the_last_days(monkeypatch, db_file):
    today = datetime.now(UTC).date()
    recent = World(WorldConfig(today - timedelta(days=9), today - timedelta(days=2), seed=3)).ai
    box = _serve(recent, monkeypatch)
    try:
        assert _load(db_file).status == "succeeded"
        newest = max(b.day for b in recent.usage)
        served = len(_served(box, settings.USAGE_PATH))
        assert _load(db_file).status == "succeeded"
        again = _served(box, settings.USAGE_PATH)[served:]
    finally:
        box.stop()
    refetch_from = _midnight(newest - timedelta(days=settings.REFETCH_DAYS)).replace(tzinfo=UTC)
    assert int(again[0].arg("start_time")) == int(refetch_from.timestamp())
    assert int(again[0].arg("end_time")) == int(datetime.combine(today + timedelta(days=1), time(),
                                                                 tzinfo=UTC).timestamp())
    assert _rows(db_file, USAGE_SQL) == _expected_usage(recent, today - timedelta(days=90), today)
    assert _rows(db_file, COSTS_SQL) == _expected_costs(recent, today - timedelta(days=90), today)


@pytest.mark.parametrize("faults", [("429", "429-bare"), ("500", "503", "truncated", "slow")],
                         ids=["rate-limits", "server-faults"])
def test_transient_faults_are_retried_and_everything_loads(ai, sandbox, db_file, faults):
    # Injected in a row: the first costs page is refused by each in turn before it is served.
    for kind in faults:
        sandbox.inject(kind, path=settings.COSTS_PATH, delay=0.2)
    sandbox.inject("503", path=settings.USAGE_PATH)
    result = _load(db_file, start=START, end=END)
    assert result.status == "succeeded", result.error
    assert _rows(db_file, USAGE_SQL) == _expected_usage(ai, START, END)
    assert _rows(db_file, COSTS_SQL) == _expected_costs(ai, START, END)
    failed = len([kind for kind in faults if kind != "slow"])
    assert len(_served(sandbox, settings.COSTS_PATH)) == math.ceil(((END - START).days + 1) / COSTS_LIMIT) + failed
    assert not sandbox.faults


def test_a_failing_endpoint_leaves_both_tables_as_they_were(ai, sandbox, db_file):
    first_days = (START, START + timedelta(days=4))
    assert _load(db_file, start=first_days[0], end=first_days[1]).status == "succeeded"
    method, pattern, handler, public = next(r for r in sandbox.routes if r[1].pattern == settings.COSTS_PATH)

    def broken_after_one_page(request):
        if request.arg("page"):
            return Response(503, {"error": {"message": "overloaded", "type": "server_error", "param": None,
                                            "code": None}})
        return handler(request)

    sandbox.routes[sandbox.routes.index((method, pattern, handler, public))] = (method, pattern,
                                                                                 broken_after_one_page, public)
    result = _load(db_file, start=START, end=END)
    assert result.status == "failed"
    assert settings.COSTS_PATH in result.error and "HTTP 503" in result.error and "overloaded" in result.error
    assert _rows(db_file, USAGE_SQL) == _expected_usage(ai, *first_days)
    assert _rows(db_file, COSTS_SQL) == _expected_costs(ai, *first_days)


def test_a_wrong_key_fails_with_openais_message(sandbox, db_file, monkeypatch):
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-not-the-key-0000")
    result = _load(db_file, start=START, end=END)
    assert result.status == "failed"
    assert "HTTP 401" in result.error and "$OPENAI_ADMIN_KEY" in result.error
    assert "Incorrect API key provided" in result.error


def test_a_missing_key_is_named(monkeypatch):
    monkeypatch.delenv("OPENAI_ADMIN_KEY", raising=False)
    with pytest.raises(ConfigError, match=r"\$OPENAI_ADMIN_KEY"):
        openai_source.SPEC.build(IngestRequest())


def test_a_result_that_does_not_parse_is_quarantined_and_the_rest_loads(ai, sandbox, db_file):
    victim = next(b for b in ai.usage if START <= b.day <= END)
    method, pattern, handler, public = next(r for r in sandbox.routes if r[1].pattern == settings.USAGE_PATH)

    def garbled(request):
        response = handler(request)
        for bucket in response.body["data"]:
            for result in bucket["results"]:
                if result["model"] == victim.model and bucket["start_time"] == int(
                        _midnight(victim.day).replace(tzinfo=UTC).timestamp()):
                    result["input_tokens"] = "many"
        return response

    sandbox.routes[sandbox.routes.index((method, pattern, handler, public))] = (method, pattern, garbled, public)
    assert _load(db_file, start=START, end=END).status == "succeeded"
    expected = [row for row in _expected_usage(ai, START, END)
                if not (row[0] == _midnight(victim.day) and row[2] == victim.model)]
    assert _rows(db_file, USAGE_SQL) == expected
    quarantine = _rows(db_file, "SELECT source, endpoint, record_id, field, error FROM raw_openai.quarantine")
    assert [q[:4] for q in quarantine] == [
        ("openai", settings.USAGE_PATH, f"{victim.day:%Y-%m-%d}/{victim.model}/{victim.project_id}", "input_tokens")]
    assert "'many'" in quarantine[0][4]


def test_group_keys_left_null_become_merge_safe_values():
    start, end = datetime(2026, 3, 2), datetime(2026, 3, 3)
    row = helpers.parse_usage(start, end, {"object": "organization.usage.completions.result", "input_tokens": 10,
                                           "output_tokens": 5, "num_model_requests": 1, "model": "gpt-4o-mini",
                                           "project_id": None, "batch": None, "service_tier": None})
    assert (row["project_id"], row["batch"], row["service_tier"], row["input_cached_tokens"]) == ("", False, "", None)
    cost = helpers.parse_cost(start, end, {"amount": {"value": "0.5", "currency": "usd"}, "line_item": None})
    assert (cost["line_item"], cost["amount"], cost["currency"]) == ("", 0.5, "USD")
