"""Sentry resources for operations: background jobs (BullMQ queue spans), database queries (db spans) and
user feedback.

    queue_jobs     `GET /events/?dataset=spans` over `span.op:queue.process` and `span.op:queue.publish`
                   per `messaging.destination.name`: published, processed (first attempts, retry count 0),
                   attempts, retries, failure rate, p50/p95 processing time and p95 time waiting in the
                   queue (`messaging.message.receive.latency`).
    db_queries     the same endpoint over `span.category:db has:sentry.normalized_description` per
                   normalised query (`span.group`, `sentry.normalized_description`) and route
                   (`transaction`), and per query over all routes (`(all)`): calls, p95 and total time,
                   calls over the slow-query target (params/targets.yaml `slow_query_ms`, the seed's 500 ms).
    user_feedback  `GET /issues/?query=issue.category:feedback`: one issue per feedback submission; the
                   message (e-mail addresses in it pseudonymised), the page (the issue's culprit, its path
                   only) and the sender's e-mail pseudonymised (`contact`); names are not loaded.

Job and query rows are loaded for each UTC day and for each ISO week and calendar month the window
completes, each queried over that whole period (a p95 is never formed from daily ones), from the events
endpoint (no top-10 limit as on events-timeseries: every queue, query and route); merged on (grain,
period_start, queue | query_group and route). Incremental like the route and Web Vitals resources:
complete days up to yesterday after the last loaded one; --start reads exactly [--start, --end].
Feedback is incremental on `received_at` (the issue's firstSeen) with an hour of lag, merged on
feedback_id. A record that does not parse goes to raw_sentry.quarantine naming endpoint, record and field.

Every query asks for `project=-1` (all projects the token can read: the API, the workers and the web app
report to different projects). Counts and percentiles are Sentry's extrapolated ones (its default: each
sampled span weighs 1/sample rate), so with sampled traces they estimate all jobs and calls; published
minus processed stays unbiased when both sides are sampled alike.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from urllib.parse import urlparse

import dlt
from dlt.sources.helpers.rest_client import RESTClient

from statex_bi import targets
from statex_bi.exceptions import RecordError
from statex_bi.sources.common import RecordGuard, pseudonymise, screened, scrub
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.sentry import helpers, settings
from statex_bi.sources.sentry.performance import Period, closing_periods, day_window, number, quarantine, retained


def _periods(first, last) -> list[Period]:
    days = [Period("day", first + timedelta(days=i), first + timedelta(days=i + 1))
            for i in range((last - first).days + 1)]
    return days + closing_periods(first, last)


def _rows(client: RESTClient, config: helpers.SentryConfig, period: Period, query: str, groups: list[str],
          aggregates: dict[str, str], endpoint: str) -> Iterator[dict[str, Any]]:
    """Every row of one aggregate query over `period`, across pages."""
    params = {"dataset": "spans", "field": [*groups, *aggregates.values()], "query": query,
              "per_page": settings.PER_PAGE, "project": list(config.projects), **period.window()}
    for page in helpers.paginate(client, settings.EVENTS_PATH.format(org=config.org), params, endpoint):
        yield from page


def _label(raw: dict, field: str, endpoint: str, record: str) -> str:
    value = raw.get(field)
    if not isinstance(value, str) or not value.strip():
        raise RecordError(settings.SOURCE, endpoint, record, field, f"missing or not text: {value!r}")
    return value


def queue_jobs(client: RESTClient, config: helpers.SentryConfig, request: IngestRequest):
    """The `queue_jobs` resource: per BullMQ queue and period, jobs published and processed, retries,
    failure rate and processing and waiting times."""
    cursor, last = day_window(request, "period_end")
    endpoint, field = settings.JOBS_ENDPOINT, settings.QUEUE_FIELD

    def rows(cursor=cursor) -> Iterator[dict]:
        first = retained(cursor.start_value, request.progress, "queue_jobs")
        for period in _periods(first, last):
            queues: dict[str, dict[str, Any]] = {}
            sides = (("queue.process", settings.PROCESS_AGGREGATES), ("queue.publish", settings.PUBLISH_AGGREGATES))
            for op, aggregates in sides:
                for raw in _rows(client, config, period, f"span.op:{op}", [field], aggregates, endpoint):
                    record = f"{period.grain} {period.start} {op} {raw.get(field)}"
                    try:
                        queue = _label(raw, field, endpoint, record)
                        values = {column: number(raw, name, endpoint, record,
                                                 whole=column in ("published", "processed", "attempts", "retries"))
                                  for column, name in aggregates.items()}
                    except RecordError as exc:
                        yield quarantine(endpoint, exc, raw, request.progress)
                        continue
                    queues.setdefault(queue, {}).update(values)
            for queue, values in sorted(queues.items()):
                counts = {c: values.get(c) or 0 for c in ("published", "processed", "attempts", "retries")}
                yield {"grain": period.grain, "period_start": period.start, "period_end": period.end, "queue": queue,
                       **{c: values.get(c) for c in settings.PROCESS_AGGREGATES}, **counts}
        request.progress(f"sentry: queue_jobs loaded up to {last}")

    return dlt.resource(rows, name="queue_jobs", write_disposition="merge",
                        primary_key=("grain", "period_start", "queue"), columns=settings.JOB_COLUMNS)


def db_queries(client: RESTClient, config: helpers.SentryConfig, request: IngestRequest):
    """The `db_queries` resource: per normalised query and route (and over all routes) and period, calls,
    p95 and total time and calls over the slow-query target."""
    cursor, last = day_window(request, "period_end")
    endpoint = settings.QUERIES_ENDPOINT
    keys = ["span.group", "sentry.normalized_description"]
    slow_ms = targets.values()[settings.SLOW_QUERY_TARGET]
    aggregates = {**settings.QUERY_AGGREGATES, "slow_calls": f"count_if(span.duration,greater,{slow_ms:g})"}

    def rows(cursor=cursor) -> Iterator[dict]:
        first = retained(cursor.start_value, request.progress, "db_queries")
        for period in _periods(first, last):
            for groups in ([*keys, "transaction"], keys):
                for raw in _rows(client, config, period, settings.DB_QUERY, groups, aggregates, endpoint):
                    record = f"{period.grain} {period.start} {raw.get('span.group')} {raw.get('transaction', '')}"
                    try:
                        row = {"grain": period.grain, "period_start": period.start, "period_end": period.end,
                               "query_group": _label(raw, "span.group", endpoint, record),
                               "query": _label(raw, "sentry.normalized_description", endpoint, record),
                               "route": _label(raw, "transaction", endpoint, record) if "transaction" in groups
                               else settings.ALL,
                               **{column: number(raw, name, endpoint, record, whole=column in ("calls", "slow_calls"))
                                  for column, name in aggregates.items()}}
                    except RecordError as exc:
                        yield quarantine(endpoint, exc, raw, request.progress)
                        continue
                    yield row
        request.progress(f"sentry: db_queries loaded up to {last}")

    return dlt.resource(rows, name="db_queries", write_disposition="merge",
                        primary_key=("grain", "period_start", "query_group", "route"), columns=settings.QUERY_COLUMNS)


def _feedback_row(raw: dict) -> dict:
    feedback_id = raw.get("id")
    record = str(feedback_id) if feedback_id else "?"
    endpoint = settings.FEEDBACK_ENDPOINT

    def fail(field: str, message: str) -> RecordError:
        return RecordError(settings.SOURCE, endpoint, record, field, message)

    if not isinstance(feedback_id, str) or not feedback_id:
        raise fail("id", "missing issue id")
    received = helpers.parse_timestamp(raw.get("firstSeen"))
    if received is None:
        raise fail("firstSeen", f"not a timestamp: {raw.get('firstSeen')!r}")
    metadata = raw.get("metadata")
    if not isinstance(metadata, dict):
        raise fail("metadata", "missing feedback metadata")
    message = metadata.get("message", metadata.get("value"))
    if not isinstance(message, str):
        raise fail("metadata.message", f"not text: {message!r}")
    culprit = raw.get("culprit")
    page = (urlparse(culprit).path or "/") if isinstance(culprit, str) and "://" in culprit else culprit
    return {"feedback_id": feedback_id, "received_at": received, "page": page or None, "message": scrub(message),
            "contact": pseudonymise(metadata.get("contact_email")), "project": (raw.get("project") or {}).get("slug"),
            "status": raw.get("status")}


def user_feedback(client: RESTClient, config: helpers.SentryConfig, request: IngestRequest):
    """The `user_feedback` resource: each feedback submission, incremental on when it was received."""
    now = datetime.now(UTC).replace(tzinfo=None)
    end = min(now, datetime.combine(request.end + timedelta(days=1), time())) if request.end else now
    if request.start is not None:
        cursor = dlt.sources.incremental("received_at", initial_value=datetime.combine(request.start, time()),
                                         end_value=end, range_end="open", on_cursor_value_missing="include")
    else:
        first_load = end - timedelta(days=settings.DEFAULT_HISTORY_DAYS)
        cursor = dlt.sources.incremental("received_at", initial_value=first_load, lag=settings.LATE_SPAN_LAG_S,
                                         on_cursor_value_missing="include")
    endpoint = settings.FEEDBACK_ENDPOINT

    def rows(cursor=cursor) -> Iterator[dict]:
        first = cursor.start_value
        if first >= end:
            return
        guard = RecordGuard(settings.SOURCE, endpoint, ("feedback_id",), timestamps=("received_at",))
        params = {"query": settings.FEEDBACK_QUERY, "limit": settings.PER_PAGE, "sort": "date",
                  "project": list(config.projects),
                  "start": first.isoformat() + "Z", "end": end.isoformat() + "Z"}
        path = settings.ISSUES_PATH.format(org=config.org)
        for page in helpers.paginate(client, path, params, endpoint, data_selector="$"):
            for raw in page:
                try:
                    yield guard.check(_feedback_row(raw))
                except RecordError as exc:
                    yield quarantine(endpoint, exc, raw, request.progress)

    def screened_rows(cursor=cursor) -> Iterator[dict]:
        yield from screened(rows(cursor))

    return dlt.resource(screened_rows, name="user_feedback", write_disposition="merge", primary_key="feedback_id",
                        columns=settings.FEEDBACK_COLUMNS)


RESOURCES = (queue_jobs, db_queries, user_feedback)
