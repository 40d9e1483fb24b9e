"""Sentry resources for web and API performance: issues, event volumes, route performance, Web Vitals.

    issues             `GET /issues/?query=` (every status) for the issues seen in the window, Link-paged;
                       each resolved issue's `activity` (`GET /issues/{id}/`) gives its resolution time
                       (the last `set_resolved*` entry). Merged on issue_id: issues change status.
    event_volumes      `GET /stats_v2/` `sum(quantity)` (bytes for attachments) and `sum(times_seen)`
                       (items) by category and outcome, daily. Merged on (day, category, outcome).
    route_performance  `GET /events/?dataset=spans&query=span.op:http.server` per route: `count()`,
                       `p50`/`p95`/`avg(span.duration)`, `failure_rate()`, and the p95's 95 % interval
                       (`quantile_interval`); and the same over all routes.
    web_vitals         `pageload` spans (LCP, CLS) and `ui.interaction.click` spans (INP): `p75`, its
                       95 % interval (`quantile_interval`) and `count_if(<measurement>,lessOrEquals,
                       <good threshold>)` per page and device class, per device class, and overall
                       (one query per metric: a query takes at most 20 fields).

Route and vitals rows are loaded for each UTC day, and for each ISO week (Monday-Sunday) and calendar
month that the window completes, each queried from Sentry over that whole period: a percentile of a
period is never formed from daily percentiles. Merged on (grain, period_start, route | page, device,
metric); `(all)` stands for "over all of them".

Incremental: the date resources load complete days up to yesterday (UTC), from the day after the
last loaded one (cursor: `period_end` / `day`); an explicit --start reads exactly [--start, --end]
and leaves the cursor alone. Windows are clamped to Sentry's retention (`settings.RETENTION_DAYS`).
A record that does not parse goes to raw_sentry.quarantine naming the endpoint, record and field.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import dlt
from dlt.sources.helpers.rest_client import RESTClient

from statex_bi.config import env
from statex_bi.exceptions import RecordError
from statex_bi.order_statistics import bracketing_levels
from statex_bi.periods import TODAY_VARIABLE, reference_day
from statex_bi.sources.common import quarantined
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.sentry import helpers, settings


@dataclass(frozen=True)
class Period:
    grain: str  # day | week | month
    start: date
    end: date  # exclusive

    def window(self) -> dict[str, str]:
        return {"start": f"{self.start.isoformat()}T00:00:00Z", "end": f"{self.end.isoformat()}T00:00:00Z"}


def closing_periods(first: date, last: date) -> list[Period]:
    """Each ISO week and calendar month whose last day falls in [first, last]."""
    result = []
    day = first
    while day <= last:
        following = day + timedelta(days=1)
        if day.weekday() == 6:
            result.append(Period("week", day - timedelta(days=6), following))
        if following.day == 1:
            result.append(Period("month", day.replace(day=1), following))
        day = following
    return result


@dataclass(frozen=True)
class Query:
    """One aggregate query: a span op, the fields that group it, and column -> aggregate."""

    op: str
    groups: tuple[str, ...]
    aggregates: dict[str, str]


def _today() -> date:
    """Today, or $STATEX_BI_TODAY: the demo's sandboxes set it to the day after the simulated window, so that a
    past window is read whole, as on its own next day, rather than clamped to the retention counted from now."""
    return reference_day() if os.environ.get(TODAY_VARIABLE) else datetime.now(UTC).date()


def day_window(request: IngestRequest, cursor_field: str):
    """(incremental, last day): complete days up to yesterday, stateless when --start is given."""
    yesterday = _today() - timedelta(days=1)
    last = min(yesterday, request.end) if request.end else yesterday
    if request.start is not None:
        cursor = dlt.sources.incremental(cursor_field, initial_value=request.start,
                                         end_value=last + timedelta(days=1), range_end="closed",
                                         on_cursor_value_missing="include")
    else:
        first_load = _today() - timedelta(days=settings.DEFAULT_HISTORY_DAYS)
        cursor = dlt.sources.incremental(cursor_field, initial_value=first_load, on_cursor_value_missing="include")
    return cursor, last


def retained(first: date, progress: Callable[[str], None], resource: str) -> date:
    oldest = _today() - timedelta(days=settings.RETENTION_DAYS)
    if first < oldest:
        progress(f"sentry: {resource}: Sentry keeps {settings.RETENTION_DAYS} days; reading from {oldest}")
        return oldest
    return first


def quarantine(endpoint: str, exc: RecordError, raw: Any, progress: Callable[[str], None]):
    progress(f"sentry: quarantined: {exc}")
    return quarantined(settings.SOURCE, endpoint, exc.record_id, exc.field, str(exc), raw)


def number(raw: dict, name: str, endpoint: str, record: str, whole: bool = False) -> float | int | None:
    """`raw[name]` as a non-negative number (a whole one for a count); None when absent.

    Raises:
        RecordError: naming the endpoint, record and field, when it is anything else.
    """
    value = raw.get(name)
    if value is None:
        return None
    try:
        parsed = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        parsed = float("nan")
    if not (parsed >= 0 and parsed != float("inf")) or (whole and not parsed.is_integer()):
        raise RecordError(settings.SOURCE, endpoint, record, name, f"not a {'count' if whole else 'number'}: {value!r}")
    return int(parsed) if whole else parsed


def _daily(client: RESTClient, config: helpers.SentryConfig, query: Query, first: date,
           last: date) -> Iterator[tuple[date, dict[str, Any], dict[str, Any]]]:
    """(day, group labels, aggregate -> value) of each day with spans, from `events-timeseries`.

    One request per aggregate over the whole window, daily buckets; with groups, the top groups by
    count (settings.TOP_GROUPS). Days with no span (count 0) and incomplete buckets are left out.
    """
    path = settings.TIMESERIES_PATH.format(org=config.org)
    window = {"start": f"{first.isoformat()}T00:00:00Z", "end": f"{(last + timedelta(days=1)).isoformat()}T00:00:00Z"}
    cells: dict[tuple, dict[str, Any]] = {}
    for aggregate in dict.fromkeys(["count()", *query.aggregates.values()]):
        params: dict[str, Any] = {"dataset": "spans", "yAxis": aggregate, "interval": 86400,
                                  "query": f"span.op:{query.op}", "project": list(config.projects), **window}
        if query.groups:
            params.update(groupBy=list(query.groups), topEvents=settings.TOP_GROUPS, sort="-count()",
                          excludeOther=1)
        body = helpers.get_json(client, path, params, settings.DAILY_ENDPOINT)
        for series in body.get("timeSeries", []):
            labels = {entry.get("key"): entry.get("value") for entry in series.get("groupBy") or []}
            group = tuple(labels.get(name) for name in query.groups)
            for point in series.get("values", []):
                if point.get("incomplete"):
                    continue
                moment = helpers.parse_timestamp(point.get("timestamp", 0) / 1000)
                cells.setdefault((moment.date() if moment else None, group), {})[aggregate] = point.get("value")
    for (day, group), values in sorted(cells.items(), key=lambda item: (str(item[0][0]), str(item[0][1]))):
        if values.get("count()"):
            yield day, dict(zip(query.groups, group, strict=True)), values


def _aggregated(client: RESTClient, config: helpers.SentryConfig, query: Query, first: date, last: date,
                endpoint: str) -> Iterator[tuple[Period, dict[str, Any], dict[str, Any]]]:
    """(period, group labels, aggregate -> value): every day (events-timeseries), then each week and
    month the window completes, each queried over the whole period (the events endpoint)."""
    for day, labels, values in _daily(client, config, query, first, last):
        yield Period("day", day, day + timedelta(days=1)), labels, values
    path = settings.EVENTS_PATH.format(org=config.org)
    aggregates = list(dict.fromkeys(["count()", *query.aggregates.values()]))
    for period in closing_periods(first, last):
        params = {"dataset": "spans", "field": [*query.groups, *aggregates], "query": f"span.op:{query.op}",
                  "per_page": settings.PER_PAGE, "project": list(config.projects), **period.window()}
        for page in helpers.paginate(client, path, params, endpoint):
            for raw in page:
                yield period, {name: raw.get(name) for name in query.groups}, raw


def quantile_interval(values: dict[str, Any], quantile: float, rungs: dict[float, str], endpoint: str,
                      record: str) -> tuple[float | None, float | None]:
    """A 95 % confidence interval of the `quantile` (0.95: a route's p95; 0.75: a vital's p75) of a row's
    spans, from Sentry's quantiles at the fixed levels of `rungs` (settings.ladder).

    The distribution-free interval from n spans is [x_(l), x_(u)], l and u the binomial(n, q) ranks
    (statex_bi.order_statistics.quantile_ranks); x_(k) is the quantile at level (k - 1) / (n - 1). Those levels differ
    from row to row, and n is only known from the same query: asking Sentry for them exactly would take a
    second request per route (or page and device) and period, and one per group and day, the daily
    series taking one aggregate per request for all groups. So each query also asks for quantiles at
    fixed levels, and the interval is the rung at or below x_(l)'s level to the rung at or above x_(u)'s:
    quantiles grow with their level, so it contains [x_(l), x_(u)] and covers the quantile at least as
    often (95 %), only wider. None for a side no order statistic bounds (e.g. fewer than 72 spans bound a
    p95 from above; rung 0, the smallest value, stands in when x_(l)'s level is below every other rung).

    n is Sentry's `count()` of the row's spans: when the app samples traces it is the extrapolated count
    (the spans measured weighted by 1 / their sample rate), larger than the spans measured, and the
    interval is then too narrow (the report states the sample rate); for a vital it counts the op's spans,
    those without the measurement too. The quantiles are Sentry's own estimates (approximate on large
    data), whose error the bounds inherit.
    """
    n = number(values, "count()", endpoint, record, whole=True) or 0
    low, high = bracketing_levels(int(n), quantile, list(rungs))
    return tuple(None if level is None else number(values, rungs[level], endpoint, record) for level in (low, high))


def route_performance(client: RESTClient, config: helpers.SentryConfig, request: IngestRequest):
    """The `route_performance` resource: requests, p50/p95/average duration, the p95's interval and failure
    rate per route and period."""
    cursor, last = day_window(request, "period_end")
    endpoint = settings.ROUTES_ENDPOINT
    aggregates = {**settings.ROUTE_AGGREGATES, **{f"q{level:g}": name for level, name in settings.P95_LADDER.items()}}
    queries = (Query("http.server", (settings.ROUTE_FIELD,), aggregates), Query("http.server", (), aggregates))

    def rows(cursor=cursor) -> Iterator[dict]:
        first = retained(cursor.start_value, request.progress, "route_performance")
        for query in queries:
            for period, labels, values in _aggregated(client, config, query, first, last, endpoint):
                route = labels.get(settings.ROUTE_FIELD, settings.ALL)
                record = f"{period.grain} {period.start} {route}"
                try:
                    if not isinstance(route, str) or not route:
                        raise RecordError(settings.SOURCE, endpoint, record, settings.ROUTE_FIELD, "missing route")
                    low, high = quantile_interval(values, 0.95, settings.P95_LADDER, endpoint, record)
                    yield {"grain": period.grain, "period_start": period.start, "period_end": period.end,
                           "route": route, "p95_low_ms": low, "p95_high_ms": high,
                           **{column: number(values, name, endpoint, record, whole=column == "requests")
                              for column, name in settings.ROUTE_AGGREGATES.items()}}
                except RecordError as exc:
                    yield quarantine(endpoint, exc, values, request.progress)
        request.progress(f"sentry: route_performance loaded up to {last}")

    return dlt.resource(rows, name="route_performance", write_disposition="merge",
                        primary_key=("grain", "period_start", "route"), columns=settings.ROUTE_COLUMNS)


def _vitals_queries(device_field: str) -> list[tuple[Query, str, dict[float, str]]]:
    """Per metric and level (page and device, device, all): the query, the metric and its p75's rungs."""
    queries = []
    for metric, (op, measurement, good) in settings.VITALS.items():
        rungs = settings.ladder(measurement, 0.75, "p75", settings.P75_LEVELS)
        aggregates = {f"{metric}.good": f"count_if({measurement},lessOrEquals,{good})",
                      **{f"q{level:g}": name for level, name in rungs.items()}}
        for groups in ((settings.ROUTE_FIELD, device_field), (device_field,), ()):
            queries.append((Query(op, groups, aggregates), metric, rungs))
    return queries


def web_vitals(client: RESTClient, config: helpers.SentryConfig, request: IngestRequest):
    """The `web_vitals` resource: p75 (with its 95 % interval) and good samples of LCP, CLS, INP per page,
    device and period."""
    cursor, last = day_window(request, "period_end")
    endpoint = settings.VITALS_ENDPOINT
    device_field = env("SENTRY_DEVICE_ATTRIBUTE", settings.DEFAULT_DEVICE_ATTRIBUTE)

    def rows(cursor=cursor) -> Iterator[dict]:
        first = retained(cursor.start_value, request.progress, "web_vitals")
        for query, metric, rungs in _vitals_queries(device_field):
            for period, labels, values in _aggregated(client, config, query, first, last, endpoint):
                page = labels.get(settings.ROUTE_FIELD, settings.ALL)
                device = labels.get(device_field, settings.ALL)
                record = f"{period.grain} {period.start} {page} {device}"
                try:
                    for field, value in ((settings.ROUTE_FIELD, page), (device_field, device)):
                        if not isinstance(value, str) or not value:
                            raise RecordError(settings.SOURCE, endpoint, record, field, "missing value")
                    low, high = quantile_interval(values, 0.75, rungs, endpoint, record)
                    parsed = {
                        "grain": period.grain, "period_start": period.start, "period_end": period.end,
                        "page": page, "device": device, "metric": metric,
                        "samples": number(values, "count()", endpoint, record, whole=True),
                        "p75": number(values, rungs[0.75], endpoint, record), "p75_low": low, "p75_high": high,
                        "good_samples": number(values, query.aggregates[f"{metric}.good"], endpoint, record,
                                                whole=True),
                    }
                except RecordError as exc:
                    yield quarantine(endpoint, exc, values, request.progress)
                    continue
                yield parsed
        request.progress(f"sentry: web_vitals loaded up to {last}")

    return dlt.resource(rows, name="web_vitals", write_disposition="merge",
                        primary_key=("grain", "period_start", "page", "device", "metric"),
                        columns=settings.VITALS_COLUMNS)


def event_volumes(client: RESTClient, config: helpers.SentryConfig, request: IngestRequest):
    """The `event_volumes` resource: events per day, category and outcome (what the quota is spent on)."""
    cursor, last = day_window(request, "day")
    path = settings.STATS_PATH.format(org=config.org)
    endpoint = settings.STATS_ENDPOINT

    def rows(cursor=cursor) -> Iterator[dict]:
        first = cursor.start_value
        if first > last:
            return
        values: dict[tuple, dict[str, Any]] = {}
        for field in settings.STATS_FIELDS:  # one field per request: the API documents `field` as one value
            params = {"field": field, "groupBy": ["category", "outcome"], "interval": "1d",
                      "project": list(config.projects),
                      "start": f"{first.isoformat()}T00:00:00Z", "end": f"{last.isoformat()}T23:59:59Z"}
            body = helpers.get_json(client, path, params, endpoint)
            days = [helpers.parse_timestamp(moment) for moment in body.get("intervals", [])]
            for group in body.get("groups", []):
                by = group.get("by", {})
                series = (group.get("series") or {}).get(field, [])
                record = f"{by.get('category')}/{by.get('outcome')}"
                try:
                    if len(series) != len(days) or None in days:
                        raise RecordError(settings.SOURCE, endpoint, record, "series", "series and intervals differ")
                    for moment, value in zip(days, series, strict=True):
                        if first <= moment.date() <= last:
                            values.setdefault((moment.date(), by.get("category"), by.get("outcome")), {})[field] = \
                                number({"q": value}, "q", endpoint, record, whole=True)
                except RecordError as exc:
                    yield quarantine(endpoint, exc, group, request.progress)
        for (day, category, outcome), numbers in values.items():
            yield {"day": day, "category": category, "outcome": outcome, "quantity": numbers.get("sum(quantity)"),
                   "times_seen": numbers.get("sum(times_seen)")}

    return dlt.resource(rows, name="event_volumes", write_disposition="merge",
                        primary_key=("day", "category", "outcome"), columns=settings.EVENT_VOLUME_COLUMNS)


def issues(client: RESTClient, config: helpers.SentryConfig, request: IngestRequest):
    """The `issues` resource: every issue seen in the window, with the resolution time of resolved ones.

    Issues change status without new events, so each run re-reads the whole window (the last
    DEFAULT_HISTORY_DAYS, or --start/--end). A resolved issue's activity is fetched once per
    (issue, lastSeen): the resource state remembers what was found.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    start = (datetime.combine(request.start, time()) if request.start
             else now - timedelta(days=settings.DEFAULT_HISTORY_DAYS))
    end = min(now, datetime.combine(request.end + timedelta(days=1), time())) if request.end else now
    path = settings.ISSUES_PATH.format(org=config.org)

    def rows() -> Iterator[dict]:
        known: dict[str, list] = dlt.current.resource_state().setdefault("resolutions", {})
        params = {"query": "", "limit": settings.PER_PAGE, "sort": "date", "project": list(config.projects),
                  "start": start.isoformat() + "Z", "end": end.isoformat() + "Z"}
        for page in helpers.paginate(client, path, params, settings.ISSUES_ENDPOINT, data_selector="$"):
            for raw in page:
                try:
                    row = _issue_row(raw)
                    if row["status"] == "resolved":
                        row["resolved_at"], row["resolved_by"] = _resolution(client, config, raw, row, known)
                except RecordError as exc:
                    yield quarantine(settings.ISSUES_ENDPOINT, exc, raw, request.progress)
                    continue
                yield row

    return dlt.resource(rows, name="issues", write_disposition="merge", primary_key="issue_id",
                        columns=settings.ISSUE_COLUMNS)


def _issue_row(raw: dict) -> dict:
    issue_id = raw.get("id")
    record = str(issue_id) if issue_id else "?"
    endpoint = settings.ISSUES_ENDPOINT

    def fail(field: str, message: str) -> RecordError:
        return RecordError(settings.SOURCE, endpoint, record, field, message)

    if not isinstance(issue_id, str) or not issue_id:
        raise fail("id", "missing issue id")
    seen = {}
    for field in ("firstSeen", "lastSeen"):
        seen[field] = helpers.parse_timestamp(raw.get(field))
        if seen[field] is None:
            raise fail(field, f"not a timestamp: {raw.get(field)!r}")
    count = raw.get("count")  # a string on the wire
    if not (isinstance(count, str) and count.isdigit()) and not (isinstance(count, int) and count >= 0):
        raise fail("count", f"not a count: {count!r}")
    if raw.get("status") not in ("resolved", "unresolved", "ignored", "pending_deletion", "pending_merge",
                                 "reprocessing"):
        raise fail("status", f"unknown status {raw.get('status')!r}")
    return {
        "issue_id": issue_id, "short_id": raw.get("shortId"), "title": raw.get("title"), "level": raw.get("level"),
        "status": raw["status"], "first_seen": seen["firstSeen"], "last_seen": seen["lastSeen"],
        "event_count": int(count), "user_count": number(raw, "userCount", endpoint, record, whole=True),
        "project": (raw.get("project") or {}).get("slug"), "resolved_at": None, "resolved_by": None,
    }


def _resolution(client: RESTClient, config: helpers.SentryConfig, raw: dict, row: dict,
                known: dict[str, list]) -> tuple[datetime | None, str | None]:
    """(when, activity type) of the last resolution in the issue's activity; (None, None) if none is kept."""
    cached = known.get(row["issue_id"])
    if cached and cached[0] == raw.get("lastSeen"):
        return (datetime.fromisoformat(cached[1]) if cached[1] else None), cached[2]
    endpoint = settings.ISSUE_ENDPOINT.format(id=row["issue_id"])
    detail = helpers.get_json(client, settings.ISSUE_PATH.format(org=config.org, issue_id=row["issue_id"]), {},
                              endpoint)
    resolved = [(helpers.parse_timestamp(entry.get("dateCreated")), entry.get("type"))
                for entry in detail.get("activity") or [] if entry.get("type") in settings.RESOLVE_ACTIVITIES]
    if any(moment is None for moment, _ in resolved):
        raise RecordError(settings.SOURCE, endpoint, row["issue_id"], "activity.dateCreated", "not a timestamp")
    moment, kind = max(resolved, key=lambda item: item[0]) if resolved else (None, None)
    known[row["issue_id"]] = [raw.get("lastSeen"), moment.isoformat() if moment else None, kind]
    return moment, kind


RESOURCES = (issues, event_volumes, route_performance, web_vitals)
