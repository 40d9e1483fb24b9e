"""The operations report's KPIs over a warehouse loaded from the simulated app through the Sentry connector and
built by dbt: the planted backlog week, slow query and feedback burst show, and the numbers agree with the
simulation's own jobs, queries and feedback."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb
import numpy as np
import pytest

from statex_bi import warehouse as warehouse_file
from statex_bi.demo import ops
from statex_bi.kpis import operations
from statex_bi.periods import Period
from statex_bi.transform.build import invoke


@pytest.fixture(scope="module")
def warehouse(operations_warehouse):
    db, world, planted = operations_warehouse
    con = duckdb.connect(str(db), read_only=True)
    yield con, world, Period(*planted)
    con.close()


def _epoch(day) -> float:
    return datetime.combine(day, datetime.min.time(), UTC).timestamp()


def test_the_backlog_week_shows_the_queue_falling_behind(warehouse):
    con, world, week = warehouse
    queues = operations.queue_table(con, week).set_index("queue")
    backlog = queues.loc[ops.BACKLOG_QUEUE]
    jobs = world.ops.jobs
    code = jobs.queues.index(ops.BACKLOG_QUEUE)
    first, stop = _epoch(week.start), _epoch(week.end + timedelta(days=1))
    published = int(((jobs.publish_queue == code) & (jobs.publish_start >= first) & (jobs.publish_start < stop)).sum())
    # every job published before the week's end and not yet taken is waiting at its end
    waiting = published - int(((jobs.process_queue == code) & (jobs.retry_count == 0)
                               & (jobs.process_start >= first) & (jobs.process_start < stop)).sum())
    assert backlog["published"] == published and backlog["backlog_growth"] == waiting
    assert backlog["depth_at_end"] == backlog["peak_depth"] == waiting > 0
    assert queues.index[0] == ops.BACKLOG_QUEUE and backlog["basis"] == operations.EXACT
    following = operations.queue_table(con, Period(week.start + timedelta(days=7), week.end + timedelta(days=7)))
    assert following.set_index("queue").loc[ops.BACKLOG_QUEUE, "backlog_growth"] == -waiting


def test_the_slow_query_leads_the_slowest_queries_and_its_route_waits_on_it(warehouse):
    con, world, week = warehouse
    slowest = operations.slowest_queries(con, week)
    assert slowest.iloc[0]["query"] == ops.SLOW_QUERY and slowest.iloc[0]["p95_ms"] > 500
    queries = world.ops.queries
    chosen = ((queries.query == queries.descriptions.index(ops.SLOW_QUERY))
              & (queries.start >= _epoch(week.start)) & (queries.start < _epoch(week.end + timedelta(days=1))))
    assert slowest.iloc[0]["p95_ms"] == pytest.approx(np.percentile(queries.duration_ms[chosen], 95), rel=1e-9)
    routes = operations.waiting_routes(con, week)
    assert (routes.iloc[0]["route"], routes.iloc[0]["query"]) == (ops.SLOW_QUERY_ROUTE, ops.SLOW_QUERY)


def test_a_period_that_is_not_a_week_sums_days_and_bounds_percentiles(warehouse):
    con, _, week = warehouse
    days = Period(week.start, week.start + timedelta(days=2))
    queues = operations.queue_table(con, days).set_index("queue")
    daily = [operations.queue_table(con, Period(d, d)).set_index("queue")
             for d in (days.start + timedelta(days=i) for i in range(3))]
    assert queues.loc[ops.BACKLOG_QUEUE, "published"] == sum(d.loc[ops.BACKLOG_QUEUE, "published"] for d in daily)
    assert queues.loc[ops.BACKLOG_QUEUE, "p95_ms"] == max(d.loc[ops.BACKLOG_QUEUE, "p95_ms"] for d in daily)
    assert set(queues["basis"]) == {operations.UPPER_BOUND}
    published = {(m.name, m.tags.get("queue")): m for m in operations.metrics(con, days)}
    assert published[("jobs.p95_ms", ops.BACKLOG_QUEUE)].value is None
    assert published[("jobs.processed", ops.BACKLOG_QUEUE)].value is not None


def test_the_feedback_burst_and_its_newest_messages_without_personal_data(warehouse):
    con, world, week = warehouse
    pages = operations.feedback_by_page(con, week)
    assert pages.iloc[0]["page"] == ops.BURST_PAGE
    start = datetime.combine(week.start, datetime.min.time())
    expected = [f for f in world.ops.feedback if start <= f.received_at < start + timedelta(days=7)]
    assert pages["messages"].sum() == len(expected)
    newest = operations.newest_feedback(con, week, limit=5)
    assert list(newest["message"]) == [f.message for f in sorted(expected, key=lambda f: f.received_at)[::-1][:5]]
    assert not newest.astype(str).apply(lambda column: column.str.contains("@")).any().any()
    per_day = {m.name: m.value for m in operations.metrics(con, week) if m.name.startswith("feedback.")}
    assert per_day == {"feedback.messages": len(expected), "feedback.per_day": len(expected) / 7}


def test_the_headline_names_the_backlog_the_slow_query_and_the_feedback(warehouse):
    con, _, week = warehouse
    text = operations.headline(con, week)
    assert f"waited in {ops.BACKLOG_QUEUE} at its deepest" in text
    assert "the slowest query took" in text and "feedback messages" in text


def test_nothing_loaded_gives_empty_frames_a_note_and_no_failure(db_file):
    with warehouse_file.writer(db_file):  # a new warehouse: created and migrated, no source loaded
        pass
    built = invoke(["build", "--select", "+bullmq_queue_jobs", "+prisma_queries", "+feedback_messages"], db_file)
    assert built.success, built.exception
    with duckdb.connect(str(db_file), read_only=True) as con:
        period = Period(datetime(2026, 11, 16).date(), datetime(2026, 11, 22).date())
        assert operations.queue_table(con, period).empty and operations.slowest_queries(con, period).empty
        assert operations.headline(con, period).startswith("No background jobs")
        assert "not loaded" in operations.notes(con, period)[0]
        assert [m.value for m in operations.metrics(con, period)] == [0.0, 0.0]
