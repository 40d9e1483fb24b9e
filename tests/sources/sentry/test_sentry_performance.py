"""The Sentry performance resources (issues, event volumes, route performance, Web Vitals) against the
loopback Sentry sandbox serving the simulated app. Expected values are recomputed from the simulation's
raw spans with numpy, never read back from what the sandbox answered."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import numpy as np
import pytest

from statex_bi.demo.apis import sentry as sentry_api
from statex_bi.demo.apis import sentry_perf as sentry_perf_api
from statex_bi.demo.perf import DEVICES, PAGES
from statex_bi.demo.sandbox import Response
from statex_bi.demo.world import World, WorldConfig
from statex_bi.ingest import load_source
from statex_bi.sources import sentry
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.sentry import performance, settings

TODAY = datetime.now(UTC).date()
END = TODAY - timedelta(days=1)
START = END - timedelta(days=23)


@pytest.fixture(scope="module")
def world():
    return World(WorldConfig(START, END, seed=11, scale=0.25))


def _small_pages(patch: pytest.MonkeyPatch) -> None:
    patch.setattr(settings, "PER_PAGE", 4)
    patch.setattr(settings, "RETRY_BACKOFF_S", 0.01)


@pytest.fixture(autouse=True)
def small_pages_and_short_backoff(monkeypatch):
    _small_pages(monkeypatch)


@pytest.fixture
def sandbox(world, monkeypatch):
    with sentry_api.serve(world.ai, world.perf) as box:
        for key, value in sentry_api.environment(box.url).items():
            monkeypatch.setenv(key, value)
        yield box


@pytest.fixture(scope="module")
def loaded(world, tmp_path_factory):
    """One warehouse loaded with the whole window, shared by the tests that only read it."""
    db = tmp_path_factory.mktemp("sentry_performance") / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch, sentry_api.serve(world.ai, world.perf) as box:
        _small_pages(patch)
        for key, value in {**sentry_api.environment(box.url), "STATEX_BI_DB": str(db)}.items():
            patch.setenv(key, value)
        result = _load(db, start=START, end=END)
    assert result.status == "succeeded", result.error
    return db


def _load(db, **request):
    return load_source(sentry.SPEC, IngestRequest(progress=lambda message: None, **request), db)


def _rows(db, sql, *params):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, list(params)).fetchall()


def _epoch(day: date) -> float:
    return datetime.combine(day, datetime.min.time(), UTC).timestamp()


def _window(values, starts, first: date, stop: date, mask=None):
    keep = (starts >= _epoch(first)) & (starts < _epoch(stop))
    return values[keep if mask is None else keep & mask]


def test_closing_periods_are_the_weeks_and_months_the_window_completes():
    periods = performance.closing_periods(date(2026, 10, 28), date(2026, 11, 9))
    assert [(p.grain, p.start, p.end) for p in periods] == [
        ("month", date(2026, 10, 1), date(2026, 11, 1)),
        ("week", date(2026, 10, 26), date(2026, 11, 2)),
        ("week", date(2026, 11, 2), date(2026, 11, 9)),
    ]


def test_route_percentiles_of_days_and_weeks_agree_with_numpy_on_the_raw_durations(world, loaded):
    db_file = loaded
    requests = world.perf.requests
    route = "GET /api/prototypes"
    code = world.perf.routes.index(route)
    day = END - timedelta(days=3)
    durations = _window(requests.duration_ms, requests.start, day, day + timedelta(days=1), requests.route == code)
    [(count, p50, p95)] = _rows(db_file, "SELECT requests, p50_ms, p95_ms FROM raw_sentry.route_performance "
                                         "WHERE grain = 'day' AND period_start = ? AND route = ?", day, route)
    assert count == len(durations) > 0
    assert p50 == pytest.approx(np.percentile(durations, 50), rel=1e-9)
    assert p95 == pytest.approx(np.percentile(durations, 95), rel=1e-9)

    # A week's p95 is Sentry's over the whole week, not a mean of the daily p95s.
    [(monday,)] = _rows(db_file, "SELECT max(period_start) FROM raw_sentry.route_performance WHERE grain = 'week'")
    sunday_next = monday + timedelta(days=7)
    week = _window(requests.duration_ms, requests.start, monday, sunday_next)
    failed = _window(requests.failed, requests.start, monday, sunday_next)
    [(count, p95, failure_rate)] = _rows(
        db_file, "SELECT requests, p95_ms, failure_rate FROM raw_sentry.route_performance "
                 "WHERE grain = 'week' AND period_start = ? AND route = '(all)'", monday)
    assert count == len(week)
    assert p95 == pytest.approx(np.percentile(week, 95), rel=1e-9)
    assert failure_rate == pytest.approx(failed.mean(), rel=1e-9)
    [(mean_of_days,)] = _rows(db_file, "SELECT avg(p95_ms) FROM raw_sentry.route_performance WHERE grain = 'day' "
                                       "AND route = '(all)' AND period_start >= ? AND period_start < ?",
                              monday, sunday_next)
    assert mean_of_days != pytest.approx(p95, rel=1e-6)


def test_web_vitals_p75_and_good_share_per_page_and_device_agree_with_numpy(world, loaded):
    db_file = loaded
    loads = world.perf.page_loads
    [(monday,)] = _rows(db_file, "SELECT max(period_start) FROM raw_sentry.web_vitals WHERE grain = 'week'")
    stop = monday + timedelta(days=7)
    mobile = loads.device == DEVICES.index("mobile")
    pricing = loads.page == PAGES.index("/pricing")
    lcp = _window(loads.lcp_ms, loads.start, monday, stop, mobile)
    cls = _window(loads.cls, loads.start, monday, stop, mobile & pricing)
    inp = _window(loads.inp_ms, loads.start, monday, stop)
    got = {(page, device, metric): (p75, samples, good) for page, device, metric, p75, samples, good in _rows(
        db_file, "SELECT page, device, metric, p75, samples, good_samples FROM raw_sentry.web_vitals "
                 "WHERE grain = 'week' AND period_start = ?", monday)}
    assert got[("(all)", "mobile", "lcp")] == pytest.approx((np.percentile(lcp, 75), len(lcp), (lcp <= 2500).sum()))
    assert got[("/pricing", "mobile", "cls")] == pytest.approx((np.percentile(cls, 75), len(cls), (cls <= 0.1).sum()))
    assert got[("(all)", "(all)", "inp")] == pytest.approx((np.percentile(inp, 75), len(inp), (inp <= 200).sum()))
    assert len(got) == (len(PAGES) * len(DEVICES) + len(DEVICES) + 1) * 3


def test_issues_with_count_as_string_and_resolution_times_from_activity(world, loaded):
    db_file = loaded
    got = {row[0]: row[1:] for row in _rows(
        db_file, "SELECT issue_id, status, event_count, first_seen, resolved_at, resolved_by FROM raw_sentry.issues")}
    first, stop = datetime.combine(START, datetime.min.time()), datetime.combine(TODAY, datetime.min.time())
    expected = {i.issue_id: (i.status, i.count, i.first_seen, i.resolved_at, i.resolution)
                for i in world.perf.issues if i.last_seen >= first and i.first_seen < stop}
    assert got == expected
    statuses = [value[0] for value in expected.values()]
    assert "unresolved" in statuses and "resolved" in statuses
    assert any(v[0] == "resolved" and v[3] is None for v in expected.values()), "a resolved issue without activity"
    assert len(expected) > settings.PER_PAGE, "the issue list spans several pages"


def test_event_volumes_by_category_and_outcome_per_day(world, loaded):
    db_file = loaded
    got = sorted(_rows(db_file, "SELECT day, category, outcome, times_seen FROM raw_sentry.event_volumes"))
    expected = sorted((day, category, outcome, items) for day, category, outcome, items
                      in world.perf.event_volumes if START <= day <= END)
    assert got == expected
    # sum(quantity) is the events themselves, but bytes for attachments.
    sizes = _rows(db_file, """SELECT bool_and(quantity = times_seen) FILTER (category <> 'attachment'),
                                     bool_and(quantity = times_seen * ?) FILTER (category = 'attachment')
                              FROM raw_sentry.event_volumes""", sentry_perf_api.ATTACHMENT_BYTES)
    assert sizes == [(True, True)]


def test_rate_limits_are_waited_out_and_a_rerun_adds_nothing(world, sandbox, db_file):
    sandbox.inject("429-bare", path="/api/0/organizations/statex/issues/")
    sandbox.inject("429", path="/api/0/organizations/statex/events-timeseries/")
    sandbox.inject("503", path="/api/0/organizations/statex/stats_v2/")
    assert _load(db_file, start=START, end=END).status == "succeeded"
    counts = "SELECT " + ", ".join(f"(SELECT count(*) FROM raw_sentry.{table})"
                                   for table in ("route_performance", "web_vitals", "issues", "event_volumes"))
    before = _rows(db_file, counts)
    assert all(n > 0 for n in before[0])
    assert _load(db_file, start=START, end=END).status == "succeeded"
    assert _rows(db_file, counts) == before


def test_incremental_runs_read_only_the_days_after_the_last_loaded_one(world, sandbox, db_file):
    assert _load(db_file, end=END - timedelta(days=2)).status == "succeeded"
    served = len(sandbox.requests)
    assert _load(db_file).status == "succeeded"
    timeseries = [r for r in sandbox.requests[served:] if r.path.endswith("/events-timeseries/")]
    assert {r.arg("start") for r in timeseries} == {f"{END - timedelta(days=1)}T00:00:00Z"}
    days = _rows(db_file, "SELECT count(DISTINCT period_start) FROM raw_sentry.route_performance WHERE grain = 'day'")
    assert days == [((END - START).days + 1,)]


def test_an_issue_whose_count_does_not_parse_is_quarantined_and_the_rest_loads(world, sandbox, db_file):
    route = next(r for r in sandbox.routes if r[1].pattern.endswith("/issues/"))
    original = route[2]

    def garbled(request):
        response = original(request)
        if response.status == 200 and response.body:
            response.body[0] = {**response.body[0], "count": "lots"}
        return Response(response.status, response.body, response.headers)

    sandbox.routes[sandbox.routes.index(route)] = (route[0], route[1], garbled, route[3])
    assert _load(db_file, start=START, end=END).status == "succeeded"
    quarantined = _rows(db_file, "SELECT field, error FROM raw_sentry.quarantine WHERE endpoint = 'issues'")
    assert quarantined and all(field == "count" and "'lots'" in error for field, error in quarantined)
    first = datetime.combine(START, datetime.min.time())
    served = sum(1 for i in world.perf.issues if i.last_seen >= first)
    assert _rows(db_file, "SELECT count(*) FROM raw_sentry.issues")[0][0] + len(quarantined) == served


LISTS = ("/events/", "/events-timeseries/", "/issues/", "/stats_v2/")  # an issue's own page takes no project


def test_requests_cover_every_project_unless_sentry_projects_narrows_them(sandbox, db_file, monkeypatch):
    assert _load(db_file, start=END, end=END).status == "succeeded"
    asked = {tuple(r.query.get("project", [])) for r in sandbox.requests if r.path.endswith(LISTS)}
    assert asked == {(settings.ALL_PROJECTS,)}  # -1: all projects the token can see, not "my projects"
    served = len(sandbox.requests)
    chosen = sorted(str(i) for i in sentry_api.PROJECT_IDS.values())[:1]
    monkeypatch.setenv("SENTRY_PROJECTS", ",".join(chosen))
    assert _load(db_file, start=END, end=END).status == "succeeded"
    narrowed = {tuple(r.query.get("project", [])) for r in sandbox.requests[served:] if r.path.endswith(LISTS)}
    assert narrowed == {tuple(chosen)}
    monkeypatch.setenv("SENTRY_PROJECTS", "statex-api")
    result = _load(db_file, start=END, end=END)
    assert result.status == "failed" and "SENTRY_PROJECTS" in result.error
