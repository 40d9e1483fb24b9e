"""The Sentry operations resources (queue jobs, database queries, user feedback) against the loopback Sentry
sandbox serving the simulated app. Expected values are recomputed from the simulation's own jobs, queries and
feedback with numpy, never read back from what the sandbox answered."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import duckdb
import numpy as np
import pytest

from statex_bi import targets
from statex_bi.demo import ops as ops_simulation
from statex_bi.demo.apis import sentry as sentry_api
from statex_bi.demo.sandbox import Response
from statex_bi.demo.world import World, WorldConfig
from statex_bi.ingest import load_source
from statex_bi.sources import sentry
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.sentry import operations, performance, settings

END = datetime.now(UTC).date() - timedelta(days=1)
PLANTED = ops_simulation.planted_week(END)
START = PLANTED[0] - timedelta(days=7)


@pytest.fixture(scope="module")
def world():
    return World(WorldConfig(START, END, seed=11, scale=0.25))


@pytest.fixture(autouse=True)
def operations_resources_only(monkeypatch):
    """Only the resources under test load (the others have their own tests), with short retry waits."""
    monkeypatch.setattr(sentry, "RESOURCES", operations.RESOURCES)
    monkeypatch.setattr(settings, "RETRY_BACKOFF_S", 0.01)


@pytest.fixture
def sandbox(world, monkeypatch):
    with sentry_api.serve(world.ai, world.perf, world.ops) as box:
        for key, value in sentry_api.environment(box.url).items():
            monkeypatch.setenv(key, value)
        yield box


@pytest.fixture(scope="module")
def loaded(world, tmp_path_factory):
    db = tmp_path_factory.mktemp("sentry_operations") / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch, sentry_api.serve(world.ai, world.perf, world.ops) as box:
        patch.setattr(settings, "PER_PAGE", 5)  # several pages per query
        patch.setattr(sentry, "RESOURCES", operations.RESOURCES)
        for key, value in {**sentry_api.environment(box.url), "STATEX_BI_DB": str(db),
                           "STATEX_BI_PSEUDONYM_KEY": "test-pseudonym-key"}.items():
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


def test_queue_jobs_of_the_backlog_week_agree_with_the_simulated_jobs(world, loaded):
    jobs = world.ops.jobs
    queue = jobs.queues.index(ops_simulation.BACKLOG_QUEUE)
    first, stop = _epoch(PLANTED[0]), _epoch(PLANTED[1] + timedelta(days=1))
    published = (jobs.publish_queue == queue) & (jobs.publish_start >= first) & (jobs.publish_start < stop)
    attempts = (jobs.process_queue == queue) & (jobs.process_start >= first) & (jobs.process_start < stop)
    [row] = _rows(loaded, "SELECT published, processed, attempts, retries, failure_rate, p95_ms, wait_p95_ms "
                          "FROM raw_sentry.queue_jobs WHERE grain = 'week' AND period_start = ? AND queue = ?",
                  PLANTED[0], ops_simulation.BACKLOG_QUEUE)
    assert row[0] == published.sum()
    assert row[1] == (attempts & (jobs.retry_count == 0)).sum()
    assert row[2] == attempts.sum() and row[3] == (attempts & (jobs.retry_count > 0)).sum()
    assert row[4] == pytest.approx(jobs.failed[attempts].mean(), rel=1e-9)
    assert row[5] == pytest.approx(np.percentile(jobs.duration_ms[attempts], 95), rel=1e-9)
    assert row[6] == pytest.approx(np.percentile(jobs.receive_latency_ms[attempts], 95), rel=1e-9)
    assert row[0] - row[1] > 0.3 * row[0]  # the planted backlog: far more published than processed
    # the week before it, the queue keeps up
    [(before_published, before_processed)] = _rows(
        loaded, "SELECT published, processed FROM raw_sentry.queue_jobs WHERE grain = 'week' AND period_start = ? "
                "AND queue = ?", PLANTED[0] - timedelta(days=7), ops_simulation.BACKLOG_QUEUE)
    assert abs(before_published - before_processed) <= 3


def test_every_queue_has_a_row_per_day_and_days_add_up_to_the_week(loaded):
    rows = _rows(loaded, """
        SELECT w.queue, w.published, sum(d.published), w.processed, sum(d.processed)
        FROM raw_sentry.queue_jobs w JOIN raw_sentry.queue_jobs d
          ON d.queue = w.queue AND d.grain = 'day'
         AND d.period_start >= w.period_start AND d.period_start < w.period_end
        WHERE w.grain = 'week' AND w.period_start = ? GROUP BY ALL""", PLANTED[0])
    assert sorted(r[0] for r in rows) == sorted(ops_simulation.QUEUES)
    assert all(r[1] == r[2] and r[3] == r[4] for r in rows)


def test_db_queries_per_query_and_route_agree_with_the_simulated_spans(world, loaded):
    queries = world.ops.queries
    code = queries.descriptions.index(ops_simulation.SLOW_QUERY)
    first, stop = _epoch(PLANTED[0]), _epoch(PLANTED[1] + timedelta(days=1))
    chosen = (queries.query == code) & (queries.start >= first) & (queries.start < stop)
    durations = queries.duration_ms[chosen]
    [(group, calls, p95, total, slow)] = _rows(
        loaded, "SELECT query_group, calls, p95_ms, total_ms, slow_calls FROM raw_sentry.db_queries "
                "WHERE grain = 'week' AND period_start = ? AND query = ? AND route = '(all)'",
        PLANTED[0], ops_simulation.SLOW_QUERY)
    assert group == ops_simulation.span_group(ops_simulation.SLOW_QUERY) and len(group) == 16
    assert calls == len(durations) > 0
    assert p95 == pytest.approx(np.percentile(durations, 95), rel=1e-9)
    assert total == pytest.approx(durations.sum(), rel=1e-9)
    assert slow == (durations > targets.values()["slow_query_ms"]).sum() > 0
    # a query run by two routes has a row per route, and they add up to its (all) row
    shared = _rows(loaded, """
        SELECT a.calls, sum(r.calls), count(*) FROM raw_sentry.db_queries a JOIN raw_sentry.db_queries r
          ON r.grain = a.grain AND r.period_start = a.period_start AND r.query_group = a.query_group
         AND r.route != '(all)'
        WHERE a.grain = 'week' AND a.period_start = ? AND a.route = '(all)' GROUP BY a.calls, a.query_group""",
        PLANTED[0])
    assert all(total == routes for total, routes, _ in shared) and max(n for *_, n in shared) == 2


def test_feedback_is_loaded_once_each_with_its_sender_pseudonymised(world, loaded):
    first = datetime.combine(START, datetime.min.time())
    expected = [f for f in world.ops.feedback if f.received_at >= first]
    rows = _rows(loaded, "SELECT feedback_id, page, message, contact FROM raw_sentry.user_feedback ORDER BY 1")
    assert [r[0] for r in rows] == sorted(f.feedback_id for f in expected)
    by_id = {f.feedback_id: f for f in expected}
    assert all(page == by_id[i].page and message == by_id[i].message for i, page, message, _ in rows)
    signed = [contact for i, _, _, contact in rows if by_id[i].email]
    assert signed and all(c.startswith("cus_") for c in signed)
    assert all(contact is None for i, _, _, contact in rows if by_id[i].email is None)
    columns = [c for (c,) in _rows(loaded, "SELECT column_name FROM information_schema.columns "
                                           "WHERE table_schema = 'raw_sentry' AND table_name = 'user_feedback'")]
    assert "name" not in columns and "contact_email" not in columns
    dump = str(_rows(loaded, "SELECT * FROM raw_sentry.user_feedback"))
    assert "@" not in dump and "User " not in dump


def test_a_rerun_adds_nothing(sandbox, db_file):
    counts = ("SELECT (SELECT count(*) FROM raw_sentry.queue_jobs), (SELECT count(*) FROM raw_sentry.db_queries), "
              "(SELECT count(*) FROM raw_sentry.user_feedback)")
    assert _load(db_file, start=START, end=END).status == "succeeded"
    before = _rows(db_file, counts)
    assert all(n > 0 for n in before[0])
    assert _load(db_file, start=START, end=END).status == "succeeded"
    assert _rows(db_file, counts) == before


def test_an_incremental_run_reads_only_the_days_after_the_last_loaded_one(sandbox, db_file):
    assert _load(db_file, end=END - timedelta(days=2)).status == "succeeded"
    served = len(sandbox.requests)
    assert _load(db_file).status == "succeeded"
    queue_days = {r.arg("start") for r in sandbox.requests[served:]
                  if r.path.endswith("/events/") and "queue.p" in (r.arg("query") or "")}
    new_days = [END - timedelta(days=1), END]
    expected = {day for day in new_days} | {p.start for p in performance.closing_periods(*new_days)}
    assert queue_days == {f"{day}T00:00:00Z" for day in expected}
    days = _rows(db_file, "SELECT count(DISTINCT period_start) FROM raw_sentry.queue_jobs WHERE grain = 'day'")
    assert days == [((END - START).days + 1,)]


def test_a_feedback_whose_date_does_not_parse_is_quarantined_and_the_rest_loads(world, sandbox, db_file):
    route = next(r for r in sandbox.routes if r[1].pattern.endswith("/issues/"))
    original = route[2]

    def garbled(request):
        response = original(request)
        if request.arg("query") == settings.FEEDBACK_QUERY and response.status == 200 and response.body:
            response.body[0] = {**response.body[0], "firstSeen": "yesterday"}
        return Response(response.status, response.body, response.headers)

    sandbox.routes[sandbox.routes.index(route)] = (route[0], route[1], garbled, route[3])
    assert _load(db_file, start=START, end=END).status == "succeeded"
    quarantined = _rows(db_file, "SELECT field, error, payload FROM raw_sentry.quarantine "
                                 "WHERE endpoint = ?", settings.FEEDBACK_ENDPOINT)
    assert quarantined and all(field == "firstSeen" and "'yesterday'" in error for field, error, _ in quarantined)
    assert all("@customers.example" not in str(payload) for *_, payload in quarantined)
    first = datetime.combine(START, datetime.min.time())
    served = sum(1 for f in world.ops.feedback if f.received_at >= first)
    assert _rows(db_file, "SELECT count(*) FROM raw_sentry.user_feedback")[0][0] + len(quarantined) == served
