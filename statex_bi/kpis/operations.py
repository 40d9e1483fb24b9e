"""Operations: background jobs (BullMQ), database queries (Prisma) and user feedback, from Sentry.

Every function is `(con, period, **params) -> small DataFrame` over the marts `bullmq_queue_jobs`,
`prisma_queries` and `feedback_messages` (statex_bi/models), plus the report's `headline`, `notes` and
`metrics()`.

As in the web and API performance report, the connector loads Sentry's own percentiles for every UTC
day, ISO week and calendar month: a report period that is one of those is exact (`basis = exact`); for
any other period the percentile columns show the highest daily value (`basis = at most`, an upper bound)
and percentile KPIs are not published. Counts, rates and the queue depth add up over days and are exact.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import pandas as pd

from statex_bi import warehouse
from statex_bi.metrics.record import Metric
from statex_bi.periods import Period, exact_grain
from statex_bi.reads import recorded

SOURCE = "sentry"
EXACT, UPPER_BOUND = "exact", "at most"
ALL = "(all)"
WHY_BOUND = "percentiles of a period that is not a day, ISO week or calendar month are only bounded"


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pd.DataFrame:
    return con.execute(sql, params).df()


def _bounds(period: Period) -> list[Any]:
    return [period.start, period.end + timedelta(days=1)]


def _rows_of(period: Period) -> tuple[str, list[Any], str]:
    """(where clause, its parameters, basis) selecting the period's own rows, else its day rows."""
    grain = exact_grain(period)
    if grain:
        return "grain = ? and period_start = ? and period_end = ?", [grain, *_bounds(period)], EXACT
    return "grain = 'day' and period_start >= ? and period_start < ?", _bounds(period), UPPER_BOUND


@recorded
def queue_table(con: duckdb.DuckDBPyConnection, period: Period, **_: Any) -> pd.DataFrame:
    """One row per BullMQ queue, the deepest backlog first.

    Returns:
        queue, published, processed (first attempts), backlog_growth (published - processed), peak_depth
        (deepest end-of-day queue depth), depth_at_end, attempts, retries, failure_rate (failed attempts /
        attempts), p50_ms and p95_ms (processing), wait_p95_ms (time in the queue), basis.
    """
    where, params, basis = _rows_of(period)
    sql = f"""
        with rows as (select * from marts.bullmq_queue_jobs where {where})
        select queue, sum(published) as published, sum(processed) as processed,
               sum(backlog_growth) as backlog_growth, max(peak_depth) as peak_depth,
               arg_max(depth_at_end, period_start) as depth_at_end, sum(attempts) as attempts,
               sum(retries) as retries, sum(failed_attempts) / nullif(sum(attempts), 0) as failure_rate,
               max(p50_ms) as p50_ms, max(p95_ms) as p95_ms, max(wait_p95_ms) as wait_p95_ms
        from rows group by queue
        order by peak_depth desc nulls last, queue"""
    frame = _frame(con, sql, params)
    frame["basis"] = basis
    return frame


@recorded
def queue_trend(con: duckdb.DuckDBPyConnection, period: Period, weeks: int = 8, **_: Any) -> pd.DataFrame:
    """Per queue and day over the `weeks` weeks up to the period's end: published, processed and the
    queue depth at the end of the day."""
    sql = """
        select period_start as day, queue, published, processed, depth_at_end as depth
        from marts.bullmq_queue_jobs
        where grain = 'day' and period_start > ? and period_start <= ?
        order by day, queue"""
    return _frame(con, sql, [period.end - timedelta(weeks=weeks), period.end])


@recorded
def slowest_queries(con: duckdb.DuckDBPyConnection, period: Period, limit: int = 10, **_: Any) -> pd.DataFrame:
    """The `limit` normalised queries with the highest p95 over all routes.

    Returns:
        query, calls, avg_ms, p95_ms, total_ms, slow_calls, slow_share, basis.
    """
    where, params, basis = _rows_of(period)
    sql = f"""
        select query, sum(calls) as calls, sum(total_ms) / nullif(sum(calls), 0) as avg_ms, max(p95_ms) as p95_ms,
               sum(total_ms) as total_ms, sum(slow_calls) as slow_calls,
               sum(slow_calls) / nullif(sum(calls), 0) as slow_share
        from marts.prisma_queries where {where} and route = ?
        group by query_group, query order by p95_ms desc limit ?"""
    frame = _frame(con, sql, [*params, ALL, limit])
    frame["basis"] = basis
    return frame


@recorded
def waiting_routes(con: duckdb.DuckDBPyConnection, period: Period, limit: int = 10, **_: Any) -> pd.DataFrame:
    """The `limit` (route, query) pairs with the most time spent in the query: the routes that wait on
    the database most, and on what.

    Returns:
        route, query, calls, total_ms, avg_ms, slow_calls.
    """
    sql = """
        select route, query, sum(calls) as calls, sum(total_ms) as total_ms,
               sum(total_ms) / nullif(sum(calls), 0) as avg_ms, sum(slow_calls) as slow_calls
        from marts.prisma_queries
        where grain = 'day' and period_start >= ? and period_start < ? and route != ?
        group by route, query_group, query order by total_ms desc limit ?"""
    return _frame(con, sql, [*_bounds(period), ALL, limit])


@recorded
def feedback_by_page(con: duckdb.DuckDBPyConnection, period: Period, **_: Any) -> pd.DataFrame:
    """Feedback messages per page in the period, the most first.

    Returns:
        page, messages, senders (distinct pseudonymised senders; anonymous ones not counted), share.
    """
    sql = """
        select page, count(*) as messages, count(distinct contact) as senders,
               count(*) / sum(count(*)) over () as share
        from marts.feedback_messages where received_at >= ? and received_at < ?
        group by page order by messages desc, page"""
    return _frame(con, sql, _bounds(period))


@recorded
def feedback_daily(con: duckdb.DuckDBPyConnection, period: Period, weeks: int = 8, **_: Any) -> pd.DataFrame:
    """Feedback messages per day over the `weeks` weeks up to the period's end (days without any left out)."""
    sql = """
        select day, count(*) as messages from marts.feedback_messages
        where day > ? and day <= ? group by day order by day"""
    return _frame(con, sql, [period.end - timedelta(weeks=weeks), period.end])


@recorded
def newest_feedback(con: duckdb.DuckDBPyConnection, period: Period, limit: int = 10, **_: Any) -> pd.DataFrame:
    """The period's `limit` newest feedback messages (senders pseudonymised, e-mails in texts too)."""
    sql = """
        select received_at, page, message, contact as sender from marts.feedback_messages
        where received_at >= ? and received_at < ? order by received_at desc limit ?"""
    return _frame(con, sql, [*_bounds(period), limit])


def feedback_total(con: duckdb.DuckDBPyConnection, period: Period) -> int:
    sql = "select count(*) from marts.feedback_messages where received_at >= ? and received_at < ?"
    return int(con.execute(sql, _bounds(period)).fetchall()[0][0])


def loaded_until(con: duckdb.DuckDBPyConnection) -> date | None:
    """The newest day of job data loaded (None when nothing is)."""
    return con.execute("select max(period_start) from marts.bullmq_queue_jobs where grain = 'day'").fetchall()[0][0]


def notes(con: duckdb.DuckDBPyConnection, period: Period, **_: Any) -> list[str]:
    """What the reader must know: data not loaded, data ending early, percentiles that are bounds."""
    if not warehouse.table_exists(con, "raw_sentry", "queue_jobs"):
        return ["Sentry operations data is not loaded (`statex-bi ingest sentry`): every number below is empty."]
    found = []
    if exact_grain(period) is None:
        found.append(f"{period} is not a calendar week or month: percentiles below are the highest daily "
                     "value (an upper bound) and are not published as KPIs.")
    newest = loaded_until(con)
    if newest is None or newest < period.end:
        found.append(f"Sentry job data reaches {newest or 'no day'}; the period ends {period.end}.")
    found.append("Queue depth is published minus processed jobs summed from the first loaded day: it takes each "
                 "queue to be empty when the data starts.")
    return found


def headline(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> str:
    """e.g. "1,207 jobs processed with 1.1% of attempts failing; 412 jobs waited in prototype-generation at its
    deepest; the slowest query took 1,480 ms (p95); 48 feedback messages (6.9 a day).\""""
    queues = queue_table(con, period)
    queries = slowest_queries(con, period, limit=1)
    messages = feedback_total(con, period)
    if queues.empty and queries.empty and not messages:
        return "No background jobs, database queries or feedback were recorded in this period."
    parts = []
    if not queues.empty:
        deepest = queues.iloc[0]
        failed = (queues["failure_rate"].fillna(0) * queues["attempts"]).sum() / max(queues["attempts"].sum(), 1)
        parts.append(f"{int(queues['processed'].sum()):,} jobs processed with {failed:.1%} of attempts failing")
        peak = 0 if pd.isna(deepest["peak_depth"]) else int(deepest["peak_depth"])
        parts.append(f"{peak:,} jobs waited in {deepest['queue']} at its deepest" if peak > 0
                     else "no queue fell behind")
    if not queries.empty:
        bound = "at most " if queries.iloc[0]["basis"] == UPPER_BOUND else ""
        parts.append(f"the slowest query took {bound}{queries.iloc[0]['p95_ms']:,.0f} ms (p95)")
    parts.append(f"{messages:,} feedback message{'s' if messages != 1 else ''} ({messages / period.days:.1f} a day)")
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def metrics(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> list[Metric]:
    """The KPIs the report publishes (docs/metrics.md), for `publish.publish`."""
    records: list[Metric] = []
    exact = exact_grain(period) is not None
    queues = queue_table(con, period)
    if not queues.empty:  # over every queue: what a card and the history show
        attempts = int(queues["attempts"].sum())
        failed = float((queues["failure_rate"].fillna(0) * queues["attempts"]).sum())
        tags = {"queue": "all", "attempts": attempts}
        records += [
            Metric("jobs.processed", float(queues["processed"].sum()), "count", SOURCE, tags, "COUNTER"),
            Metric("jobs.failure_rate", failed / attempts if attempts else None, "fraction", SOURCE, tags,
                   reason="" if attempts else "no attempt in the period"),
            Metric("jobs.retries", float(queues["retries"].sum()), "count", SOURCE, tags, "COUNTER"),
            Metric("jobs.backlog_growth", float(queues["backlog_growth"].sum()), "count", SOURCE,
                   {**tags, "published": int(queues["published"].sum())}),
        ]
    for row in queues.itertuples():
        tags = {"queue": row.queue, "attempts": int(row.attempts)}
        records += [
            Metric("jobs.processed", float(row.processed), "count", SOURCE, tags, "COUNTER"),
            Metric("jobs.failure_rate", None if pd.isna(row.failure_rate) else float(row.failure_rate), "fraction",
                   SOURCE, tags, reason="" if not pd.isna(row.failure_rate) else "no attempt in the period"),
            Metric("jobs.retries", float(row.retries), "count", SOURCE, tags, "COUNTER"),
            Metric("jobs.backlog_growth", float(row.backlog_growth), "count", SOURCE,
                   {**tags, "published": int(row.published)}),
            Metric("jobs.peak_backlog", None if pd.isna(row.peak_depth) else float(row.peak_depth), "count", SOURCE,
                   tags, reason="" if not pd.isna(row.peak_depth) else "no day of the period is loaded"),
            Metric("jobs.p95_ms", float(row.p95_ms) if exact else None, "ms", SOURCE, tags,
                   reason="" if exact else WHY_BOUND),
            Metric("jobs.wait_p95_ms", float(row.wait_p95_ms) if exact else None, "ms", SOURCE, tags,
                   reason="" if exact else WHY_BOUND),
        ]
    queries = slowest_queries(con, period, limit=1000)
    if not queries.empty:
        records.append(Metric("db.slow_calls", float(queries["slow_calls"].sum()), "count", SOURCE,
                              {"query": "all", "calls": int(queries["calls"].sum())}, "COUNTER"))
    for row in queries.itertuples():
        tags = {"query": row.query, "calls": int(row.calls)}
        records += [
            Metric("db.query_p95_ms", float(row.p95_ms) if exact else None, "ms", SOURCE, tags,
                   reason="" if exact else WHY_BOUND),
            Metric("db.slow_calls", float(row.slow_calls), "count", SOURCE, tags, "COUNTER"),
        ]
    messages = feedback_total(con, period)
    records += [
        Metric("feedback.messages", float(messages), "count", SOURCE, {"days": period.days}, "COUNTER"),
        Metric("feedback.per_day", messages / period.days, "number", SOURCE, {"messages": messages}),
    ]
    return records
