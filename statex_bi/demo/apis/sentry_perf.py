"""Sentry's performance endpoints over the simulated app (`statex_bi.demo.perf`), on the Sentry sandbox.

What it speaks (docs.sentry.io/api; ../shared api-wire-formats section 1, trimmed into tests/specs/sentry):
- `GET /api/0/organizations/{org}/events/?dataset=spans` with aggregate fields: the selected plain
  fields group the rows (`transaction`, `span.op`, `project`, and the device attribute `device.type`);
  aggregates are `count()`, `p50|p75|p90|p95|p99(<field>)`, `percentile(<field>,<level 0-1>)`,
  `min|max|avg(<field>)`, `failure_rate()`
  (a fraction), `epm()` (per minute of the query window) and `count_if(<field>,<condition>,<value>)`
  with conditions `less`, `lessOrEquals`, `greater`, `greaterOrEquals`, `equals`. Aggregates are over
  `http.server` spans (field `span.duration`), `pageload` spans (`measurements.lcp`, `measurements.cls`)
  and `ui.interaction.click` spans (`measurements.inp`), chosen by the query `span.op:<op>`;
  `transaction:<name>` filters further. Percentiles are numpy's (linear interpolation). Queue and db
  spans (`span.op:queue.publish|queue.process`, `span.category:db`) and `sum(<field>)` are in
  sentry_ops.py's terms.
- `GET /api/0/organizations/{org}/events-timeseries/?dataset=spans`: one `yAxis` aggregate in buckets of
  `interval` seconds over `start`/`end`, per top group (`groupBy` repeatable, `topEvents` 1-10, by
  count); `{"timeSeries":[{"values":[{"timestamp": ms, "value", "incomplete"}], "yAxis", "groupBy":
  [{"key","value"}], "meta"}], "meta"}`; an empty bucket's value is 0.
- `GET /api/0/organizations/{org}/issues/`: an array, Link-paged (`limit` <= 100), `query` empty for
  every status or `is:resolved` / `is:unresolved` (error issues), or `issue.category:feedback` (feedback);
  `start`/`end` keep issues seen in the window;
  `count` is a string, `userCount` an int. `GET .../issues/{id}/` adds `activity[]`.
- `GET /api/0/organizations/{org}/stats_v2/`: `field=sum(quantity)` (attachments in bytes, ATTACHMENT_BYTES
  each) or `sum(times_seen)` (items), `groupBy` category / outcome,
  `interval=1d`, `start`/`end`; `{"start","end","intervals","groups":[{"by","totals","series"}]}`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np

from statex_bi.demo.apis import sentry_ops
from statex_bi.demo.days import days_between, epoch
from statex_bi.demo.ops import OpsData
from statex_bi.demo.perf import DEVICES, PAGES, Issue, PerfData
from statex_bi.demo.sandbox import Request, Response, Sandbox

AGGREGATE = re.compile(r"^(?P<fn>[a-z_0-9]+)\((?P<args>[^)]*)\)$")
CONDITIONS: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "less": np.less, "lessOrEquals": np.less_equal, "greater": np.greater,
    "greaterOrEquals": np.greater_equal, "equals": np.equal,
}
PERCENTILES = {"p50": 50, "p75": 75, "p90": 90, "p95": 95, "p99": 99}
DEVICE_FIELD = "device.type"
MAX_LIMIT = 100
ATTACHMENT_BYTES = 48_000  # the size of each simulated attachment


class BadRequest(Exception):
    pass


def is_aggregate_query(fields: list[str]) -> bool:
    return any(AGGREGATE.match(name) for name in fields)


@dataclass(frozen=True)
class _Spans:
    """The spans of one op as column arrays: group fields as integer codes into `labels`."""

    columns: dict[str, np.ndarray]
    labels: dict[str, tuple[str, ...]]


def _spans(perf: PerfData, ops: OpsData, op: str, first: float, stop: float) -> _Spans:
    """The spans of `op` starting in [first, stop): generated for that window only."""
    if op in ("queue.publish", "queue.process"):
        return _Spans(*sentry_ops.queue_columns(ops, op, first, stop))
    if op == "db":
        return _Spans(*sentry_ops.db_columns(ops, first, stop))
    if op not in ("http.server", "pageload", "ui.interaction.click"):
        raise BadRequest(f"the sandbox aggregates span.op http.server, pageload, ui.interaction.click, "
                         f"queue.publish or queue.process, or span.category:db, not {op!r}")
    if op == "http.server":
        r = perf.window_requests(first, stop)
        return _Spans({"start": r.start, "transaction": r.route, "span.duration": r.duration_ms,
                       "_failed": r.failed, "project": _zeros(len(r.start), np.int8)},
                      {"transaction": perf.routes, "project": ("statex-api",)})
    p = perf.window_page_loads(first, stop)
    columns = {"start": p.start, "transaction": p.page, DEVICE_FIELD: p.device,
               "_failed": _zeros(len(p.start), bool), "project": _zeros(len(p.start), np.int8)}
    labels = {"transaction": PAGES, DEVICE_FIELD: DEVICES, "project": ("statex-web",)}
    if op == "pageload":
        return _Spans({**columns, "measurements.lcp": p.lcp_ms, "measurements.cls": p.cls}, labels)
    return _Spans({**columns, "measurements.inp": p.inp_ms}, labels)


def _zeros(length: int, kind) -> np.ndarray:
    """A column of zeros that takes no memory (a read-only view of one zero)."""
    return np.broadcast_to(np.zeros(1, dtype=kind), (length,))


def _grouped(request: Request, perf: PerfData, ops: OpsData, window: tuple[datetime, datetime], groups: list[str]):
    """(spans, selected span indices, group code per selected span, code -> group labels) of a query."""
    terms = dict(_terms(request.arg("query", "") or ""))
    if terms.get("span.category") == "db" and "span.op" not in terms:
        terms.pop("span.category")
        terms["span.op"] = "db"
    if "span.op" not in terms:
        raise BadRequest("the sandbox needs span.op:<op> or span.category:db in an aggregate query")
    start, end = (moment.timestamp() for moment in window)
    spans = _spans(perf, ops, terms.pop("span.op"), start, end)  # the window's spans only
    if terms.get("has") in spans.labels:  # every sandbox span has its group fields
        terms.pop("has")
    columns = spans.columns
    # Four bytes an index and a code: a month of a 100x company's requests is some 8M spans.
    selected = np.arange(len(columns["start"]), dtype=np.int32 if len(columns["start"]) < 2**31 else np.int64)
    for key, value in terms.items():
        if key not in spans.labels or value not in spans.labels[key]:
            raise BadRequest(f"unsupported filter {key}:{value}")
        selected = selected[columns[key][selected] == spans.labels[key].index(value)]
    for name in groups:
        if name not in spans.labels:
            raise BadRequest(f"Unknown field: {name}")
    codes = np.zeros(len(selected), dtype=np.int32)
    for name in groups:
        codes = codes * len(spans.labels[name]) + columns[name][selected]

    def labels(code: int) -> dict[str, str]:
        key, rest = {}, int(code)
        for name in reversed(groups):
            rest, index = divmod(rest, len(spans.labels[name]))
            key[name] = spans.labels[name][index]
        return {name: key[name] for name in groups}

    return spans, selected, codes, labels


def aggregate(request: Request, perf: PerfData, ops: OpsData, window: tuple[datetime, datetime]) -> list[dict]:
    """The rows of an aggregate events query, sorted as asked (every page of it).

    Day by day: across the window's days only the values its aggregates read are kept (one column, of the
    selected spans), never every column of every span of the window at once (a month of a 100x company's
    requests is some 8M spans: 500 MB, with the indices and codes). A group's values are in the same order
    as over the whole window, so every aggregate is the same to the last bit.
    """
    fields = request.query["field"]
    groups = [name for name in fields if not AGGREGATE.match(name)]
    aggregates = [name for name in fields if AGGREGATE.match(name)]
    counts: dict[int, int] = {}
    kept: dict[int, dict[str, list[np.ndarray]]] = {}
    names: dict[int, dict[str, str]] = {}
    start, stop = (moment.timestamp() for moment in window)
    for first, last in [(max(start, epoch(day)), min(stop, epoch(day + timedelta(days=1))))
                        for day in days_between(start, stop)] or [(start, stop)]:
        bounds = (datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC))
        spans, selected, codes, labels = _grouped(request, perf, ops, bounds, groups)
        for code in np.unique(codes):
            chosen = selected[codes == code]
            names.setdefault(int(code), labels(code))
            counts[int(code)] = counts.get(int(code), 0) + len(chosen)
            for column, values in _read(spans.columns, chosen, aggregates).items():
                kept.setdefault(int(code), {}).setdefault(column, []).append(values)
    minutes = (window[1] - window[0]).total_seconds() / 60.0
    rows = []
    for code in sorted(counts):
        columns = {column: np.concatenate(parts) for column, parts in kept.pop(code, {}).items()}
        rows.append({**names[code], **{name: _aggregate(name, columns, counts[code], minutes) for name in aggregates}})
    for key in reversed(request.query.get("sort", [])):
        name = key.lstrip("-")
        if name not in fields:
            raise BadRequest("Cannot sort by a field that is not selected.")
        rows.sort(key=lambda row, n=name: row[n], reverse=key.startswith("-"))
    return rows


def timeseries(request: Request, perf: PerfData, ops: OpsData, window: tuple[datetime, datetime]) -> dict:
    """An `events-timeseries` body: one series per top group (by count), buckets of `interval` seconds."""
    if request.arg("dataset") != "spans":
        raise BadRequest("dataset: the sandbox serves dataset=spans only")
    axis = request.arg("yAxis", "count()")
    if not AGGREGATE.match(axis):
        raise BadRequest(f"yAxis {axis!r} is not a function")
    interval = int(request.arg("interval", "3600"))
    groups = request.query.get("groupBy", [])
    top = int(request.arg("topEvents", "0") or 0)
    if groups and not 1 <= top <= 10:
        raise BadRequest("topEvents must be between 1 and 10 with groupBy")
    start, end = (moment.timestamp() for moment in window)
    buckets = int(np.ceil((end - start) / interval))
    # Bucket by bucket, so that only one bucket's spans are held, whatever the window.
    values: dict[int, list] = {}
    totals: dict[int, int] = {}
    names: dict[int, dict[str, str]] = {}
    for index in range(buckets):
        moment = start + index * interval
        bounds = tuple(datetime.fromtimestamp(edge, UTC) for edge in (moment, min(moment + interval, end)))
        spans, selected, codes, labels = _grouped(request, perf, ops, bounds, groups)
        for code in np.unique(codes):
            chosen = selected[codes == code]
            code = int(code)
            values.setdefault(code, [0] * buckets)[index] = _aggregate(axis, _read(spans.columns, chosen, [axis]),
                                                                       len(chosen), interval / 60.0)
            totals[code] = totals.get(code, 0) + len(chosen)
            names.setdefault(code, labels(code))
    ranked = sorted(totals)  # ties by code, as np.unique and a stable sort rank them
    chosen_codes = sorted(ranked, key=lambda code: -totals[code])[: top or 1]
    now = datetime.now(UTC).timestamp()
    series = []
    for order, code in enumerate(chosen_codes):
        series.append({
            "values": [{"timestamp": (start + index * interval) * 1000, "value": value,
                        "incomplete": start + index * interval + interval > now}
                       for index, value in enumerate(values[code])],
            "yAxis": axis,
            "groupBy": [{"key": name, "value": value} for name, value in names[code].items()],
            "meta": {"valueType": field_type(axis), "valueUnit": field_unit(axis), "interval": interval,
                     "order": order, "isOther": False},
        })
    return {"timeSeries": series, "meta": {"dataset": "spans", "start": start * 1000, "end": end * 1000}}


def _parsed(name: str) -> tuple[str, list[str]]:
    match = AGGREGATE.match(name)
    return match["fn"], [a.strip() for a in match["args"].split(",")] if match["args"] else []


def _column_read(name: str) -> str | None:
    """The column an aggregate reads (None: it counts spans)."""
    fn, args = _parsed(name)
    if fn in ("count", "epm"):
        return None
    return "_failed" if fn == "failure_rate" else args[0] if args else "span.duration"


def _read(columns: dict[str, np.ndarray], chosen: np.ndarray, aggregates: list[str]) -> dict[str, np.ndarray]:
    """The chosen spans' values of the columns the aggregates read (those the spans have)."""
    read = {_column_read(name) for name in aggregates} & set(columns)
    return {column: columns[column][chosen] for column in sorted(read)}


def _aggregate(name: str, values_of: dict[str, np.ndarray], count: int, minutes: float):
    """An aggregate of `count` spans; `values_of`: the spans' values of the column it reads (`_read`)."""
    fn, args = _parsed(name)
    if fn == "count":
        return count
    if fn == "failure_rate":
        return float(values_of["_failed"].mean())
    if fn == "epm":
        return float(count / minutes)
    column = _column_read(name)
    if column not in values_of:
        raise BadRequest(f"Unknown field: {column}")
    values = values_of[column]
    if fn in PERCENTILES:
        return float(np.percentile(values, PERCENTILES[fn]))
    if fn == "percentile" and len(args) == 2:
        level = float(args[1])
        if not 0 <= level <= 1:
            raise BadRequest(f"{name}: the percentile must be between 0 and 1")
        return float(np.percentile(values, 100 * level))
    if fn in ("min", "max"):
        return float(values.min() if fn == "min" else values.max())
    if fn == "avg":
        return float(values.mean())
    if fn == "sum":
        return float(values.sum())
    if fn == "count_if" and len(args) == 3 and args[1] in CONDITIONS:
        return int(CONDITIONS[args[1]](values, float(args[2])).sum())
    raise BadRequest(f"{name} is not a valid function")


def field_type(name: str) -> str:
    match = AGGREGATE.match(name)
    if not match:
        return "string"
    fn, args = match["fn"], match["args"]
    if fn in ("count", "count_if"):
        return "integer"
    if "messaging.message.retry.count" in args:
        return "number"
    if fn == "failure_rate":
        return "percentage"
    if fn == "epm":
        return "rate"
    return "number" if "cls" in args else "duration"


def field_unit(name: str) -> str | None:
    kind = field_type(name)
    return {"duration": "millisecond", "rate": "1/minute"}.get(kind)


def _terms(query: str) -> list[tuple[str, str]]:
    terms = []
    for token in query.split():
        key, sep, value = token.partition(":")
        if not sep or token.startswith("!"):
            raise BadRequest(f"the sandbox supports key:value terms in aggregate queries, not {token!r}")
        terms.append((key, value.strip('"')))
    return terms


def register(sandbox: Sandbox, perf: PerfData, ops: OpsData, org: str, link_header: Callable, window: Callable,
             error_body: Callable[[int], dict]) -> None:
    """Add the issues (errors and feedback), events-timeseries and stats_v2 routes to the Sentry sandbox."""
    issues = sorted(perf.issues, key=lambda issue: issue.last_seen, reverse=True)
    feedback = sorted(enumerate(ops.feedback), key=lambda item: item[1].received_at, reverse=True)
    by_id = {issue.issue_id: issue for issue in issues}

    @sandbox.route("GET", r"/api/0/organizations/(?P<org>[^/]+)/issues/")
    def list_issues(request: Request) -> Response:
        if request.match["org"] != org:
            return Response(404, error_body(404))
        try:
            start, end = window(request)
            limit = int(request.arg("limit", str(MAX_LIMIT)))
        except (BadRequest, ValueError) as exc:
            return Response(400, {"detail": str(exc)})
        if not 1 <= limit <= MAX_LIMIT:
            return Response(400, {"detail": f"limit must be between 1 and {MAX_LIMIT}"})
        query = (request.arg("query", "is:unresolved") or "").strip()
        naive = (start.replace(tzinfo=None), end.replace(tzinfo=None))
        offset = _offset(request.arg("cursor"))
        if query == "issue.category:feedback":
            chosen = [(n, f) for n, f in feedback if naive[0] <= f.received_at < naive[1]]
            links = link_header(request, offset, limit, len(chosen) > offset + limit)
            return Response(200, [sentry_ops.feedback_issue(f, n) for n, f in chosen[offset: offset + limit]],
                            {"Link": links})
        wanted = {"": None, "is:unresolved": "unresolved", "is:resolved": "resolved"}
        if query not in wanted:
            return Response(400, {"detail": "the sandbox understands an empty query, is:(un)resolved or "
                                            f"issue.category:feedback: {query!r}"})
        selected = [i for i in issues if i.last_seen >= naive[0] and i.first_seen < naive[1]
                    and (wanted[query] is None or i.status == wanted[query])]
        page = selected[offset: offset + limit]
        links = link_header(request, offset, limit, len(selected) > offset + limit)
        return Response(200, [issue_json(issue) for issue in page], {"Link": links})

    @sandbox.route("GET", r"/api/0/organizations/(?P<org>[^/]+)/issues/(?P<issue>\d+)/")
    def issue_detail(request: Request) -> Response:
        issue = by_id.get(request.match["issue"])
        if request.match["org"] != org or issue is None:
            return Response(404, error_body(404))
        return Response(200, issue_detail_json(issue))

    @sandbox.route("GET", r"/api/0/organizations/(?P<org>[^/]+)/events-timeseries/")
    def events_timeseries(request: Request) -> Response:
        if request.match["org"] != org:
            return Response(404, error_body(404))
        try:
            return Response(200, timeseries(request, perf, ops, window(request)))
        except (BadRequest, ValueError) as exc:
            return Response(400, {"detail": str(exc)})

    @sandbox.route("GET", r"/api/0/organizations/(?P<org>[^/]+)/stats_v2/")
    def stats(request: Request) -> Response:
        if request.match["org"] != org:
            return Response(404, error_body(404))
        try:
            return Response(200, stats_body(request, perf, window(request)))
        except BadRequest as exc:
            return Response(400, {"detail": str(exc)})


def _offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    match = re.fullmatch(r"(\d+):(\d+):([01])", cursor)
    if not match:
        raise BadRequest("Invalid cursor parameter.")
    return int(match[2])


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _common(issue: Issue) -> dict:
    """The fields the issue list and the issue details share (every field the spec requires)."""
    return {
        "id": issue.issue_id, "shortId": issue.short_id, "title": issue.title, "culprit": issue.culprit,
        "level": issue.level, "status": issue.status,
        "substatus": None if issue.status == "resolved" else "archived_forever" if issue.status == "ignored"
        else "ongoing",
        "statusDetails": {}, "firstSeen": _iso(issue.first_seen), "lastSeen": _iso(issue.last_seen),
        "count": str(issue.count), "userCount": issue.user_count, "isUnhandled": issue.level in ("error", "fatal"),
        "platform": "node", "issueCategory": "error", "issueType": "error", "type": "error",
        "metadata": {"type": issue.title.split(":")[0], "value": issue.title.partition(": ")[2]},
        "logger": None, "annotations": [], "assignedTo": None, "hasSeen": False, "isBookmarked": False,
        "isPublic": False, "isSubscribed": False, "numComments": 0, "shareId": None, "subscriptionDetails": None,
        "priority": "high" if issue.level in ("error", "fatal") else "medium", "priorityLockedAt": None,
        "seerAutofixLastTriggered": None, "seerExplorerAutofixLastTriggered": None, "seerFixabilityScore": None,
        "permalink": f"https://statex.sentry.io/issues/{issue.issue_id}/",
        "project": {"id": "4508112", "name": "statex-api", "slug": "statex-api", "platform": "node"},
    }


def issue_json(issue: Issue) -> dict:
    """An item of the issue list."""
    first_seen = _iso(issue.first_seen)
    return {
        **_common(issue),
        "derivedData": {"blocker": "", "progress": "", "status": "", "viewCount": 0, "hasOpenFixPr": False,
                        "isAssigned": False, "hasRootCause": False, "lastCompletedAutofixStep": "",
                        "lastProgressedAt": None},
        "filtered": None, "inbox": {"reason": 0, "reason_details": None, "date_added": first_seen},
        "owners": {"type": "ownershipRule", "owner": "team:statex-backend", "date_added": first_seen},
        "integrationIssues": [], "sentryAppIssues": [], "latestEventHasAttachments": False,
        "lifetime": {"count": str(issue.count), "userCount": issue.user_count, "firstSeen": first_seen,
                     "lastSeen": _iso(issue.last_seen)},
        "matchingEventEnvironment": None, "matchingEventId": None, "sessionCount": 0, "stats": {"24h": []},
    }


def issue_detail_json(issue: Issue) -> dict:
    """The issue details, with the activity that tells when it was resolved."""
    return {**_common(issue), "activity": _activity(issue), "participants": [], "seenBy": [],
            "userReportCount": 0}


def _activity(issue: Issue) -> list[dict]:
    entries = [{"id": f"{issue.issue_id}1", "type": "first_seen", "dateCreated": _iso(issue.first_seen),
                "user": None, "data": {}}]
    if issue.resolved_at is not None:
        entries.append({"id": f"{issue.issue_id}2", "type": issue.resolution, "dateCreated": _iso(issue.resolved_at),
                        "user": {"id": "1", "name": "Statex on-call"}, "data": {}})
    return list(reversed(entries))  # newest first, as Sentry lists them


def stats_body(request: Request, perf: PerfData, window: tuple[datetime, datetime]) -> dict:
    field = request.arg("field")
    if field not in ("sum(quantity)", "sum(times_seen)"):
        raise BadRequest("field must be sum(quantity) or sum(times_seen) in the sandbox")
    if request.arg("interval", "1h") != "1d":
        raise BadRequest("the sandbox serves interval=1d only")
    group_by = request.query.get("groupBy", [])
    if not group_by or any(g not in ("category", "outcome") for g in group_by):
        raise BadRequest("groupBy must be category and/or outcome")
    first = window[0].replace(hour=0, minute=0, second=0, microsecond=0)
    intervals = []
    while first < window[1]:
        intervals.append(first)
        first += timedelta(days=1)
    days = {moment.date(): index for index, moment in enumerate(intervals)}
    groups: dict[tuple, list[int]] = {}
    for day, category, outcome, quantity in (row for moment in intervals for row in perf.volumes(moment.date())):
        key = tuple(("category", category) if g == "category" else ("outcome", outcome) for g in group_by)
        series = groups.setdefault(key, [0] * len(intervals))
        # The simulation counts items; Sentry's sum(quantity) of attachments is their bytes.
        bytes_each = ATTACHMENT_BYTES if category == "attachment" and field == "sum(quantity)" else 1
        series[days[day]] += quantity * bytes_each
    return {
        "start": _iso(intervals[0].replace(tzinfo=None)) if intervals else _iso(window[0].replace(tzinfo=None)),
        "end": _iso(window[1].astimezone(UTC).replace(tzinfo=None)),
        "intervals": [moment.strftime("%Y-%m-%dT%H:%M:%SZ") for moment in intervals],
        "groups": [{"by": dict(key), "totals": {field: sum(series)}, "series": {field: series}}
                   for key, series in sorted(groups.items())],
    }
