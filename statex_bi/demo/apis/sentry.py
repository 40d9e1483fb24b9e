"""Sentry's Explore table endpoint over the simulated spans: `GET /api/0/organizations/{org}/events/`.

What it speaks (docs.sentry.io/api/discover and /api/pagination, /api/ratelimits):
- `dataset=spans` (required); `field` repeatable, at most 20; `query` (see below); `sort` (a selected
  field, `-` for descending); `start`/`end` (ISO 8601, naive = UTC; the span's start in [start, end))
  or `statsPeriod` (`24h`, `14d`, ...; overrides start/end; default 14d); `project` (ids or slugs,
  `-1` = all) and `environment`; `per_page` (1-100, default 100) and `cursor` (`0:<offset>:<is_prev>`).
- Fields are span attribute names: the built-in ones (`id`, `trace`, `span.op`, `span.status`,
  `span.duration`, `precise.start_ts`, `timestamp`, `project`, ...), the `gen_ai.*` attributes the
  EAP spans dataset defines (`gen_ai.usage.input_tokens` is an integer attribute there, so it needs no
  type), and any other attribute by its plain name as a string, or typed as `tags[name,number]` /
  `tags[name,string]`. Statex's own attributes are `prototype_id` and `ai_tier` (absent on the `spec` step's spans).
- Query terms, ANDed: `key:value` (`*` wildcards, `[a,b]` lists, `"quoted"`), `key:>n` `>=` `<`
  `<=` on numbers, `has:key`, `!` negation, bare words matching the span description. `OR` and
  parentheses are not supported by the sandbox (400).
- Response `{"data": [...], "meta": {"fields", "units", ...}}`; a `Link` header with `previous` and
  `next` (each with `results` and `cursor`); `X-Sentry-Rate-Limit-*` headers on every response (the
  sandbox counts requests per 1 s window but only refuses when a fault is injected: then 429 with
  Sentry's body). Bearer token auth: 401 `{"detail": ...}` otherwise.
"""

from __future__ import annotations

import fnmatch
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from urllib.parse import urlencode

from statex_bi.demo import ops as ops_simulation
from statex_bi.demo import perf as perf_simulation
from statex_bi.demo.ai import PROTOTYPE_ATTRIBUTE, TIER_ATTRIBUTE, AiData
from statex_bi.demo.apis import sentry_perf
from statex_bi.demo.sandbox import Request, Response, Sandbox

TOKEN = "sntryu_sandbox_statex_token"
ORG = "statex"
PROJECT_IDS = {"statex-api": 4508112, "statex-worker": 4508113}
ENVIRONMENT = "production"
RATE_LIMIT = 40  # requests per window, per caller and endpoint
RATE_WINDOW_S = 1
CONCURRENT_LIMIT = 25
MAX_FIELDS = 20
MAX_PER_PAGE = 100
DEFAULT_PERIOD = "14d"
EVENTS_PATH = r"/api/0/organizations/(?P<org>[^/]+)/events/"

NUMBER_FIELDS = {
    "gen_ai.usage.input_tokens": "integer",
    "gen_ai.usage.input_tokens.cached": "integer",
    "gen_ai.usage.output_tokens": "integer",
    "gen_ai.usage.total_tokens": "integer",
    "precise.start_ts": "number",
    "precise.finish_ts": "number",
    "project.id": "integer",
}
TYPED_TAG = re.compile(r"^tags?\[\s*(?P<name>[^,\]]+?)\s*,\s*(?P<type>number|string)\s*\]$")
TERM = re.compile(r'^(?P<neg>!?)(?P<key>[\w.\[\], ]+?):(?P<value>.*)$')


def build(world) -> Sandbox:
    """The Sentry sandbox serving the world's spans, issues and event volumes (not started)."""
    return serve(world.ai, world.perf, world.ops)


def environment(url: str) -> dict[str, str]:
    """The variables that point the Sentry connector at the sandbox."""
    return {"SENTRY_AUTH_TOKEN": TOKEN, "SENTRY_ORG": ORG, "SENTRY_BASE_URL": url}


def span_rows(ai: AiData, day: date) -> list[dict]:
    """The spans starting on `day` as attribute name -> value, ordered by start time."""
    calls, others = ai.spans_on(day)
    rows = []
    for call in calls:
        row = _base(call.span_id, call.trace_id, call.started_at, call.duration_ms, call.op, call.status,
                    call.project, f"chat {call.request_model}")
        row["parent_span"] = call.parent_span_id
        row.update({
            "gen_ai.system": call.system,
            "gen_ai.operation.name": "chat" if call.op == "gen_ai.chat" else "generate_content",
            "gen_ai.request.model": call.request_model,
            "gen_ai.response.model": call.response_model,
            "gen_ai.usage.input_tokens": call.input_tokens,
            "gen_ai.usage.input_tokens.cached": call.cached_input_tokens,
            "gen_ai.usage.output_tokens": call.output_tokens,
            "gen_ai.usage.total_tokens": None if call.input_tokens is None
            else call.input_tokens + (call.output_tokens or 0),
            PROTOTYPE_ATTRIBUTE: call.prototype_id,
            TIER_ATTRIBUTE: call.tier_attribute,
        })
        rows.append(row)
    for span in others:
        rows.append(_base(span.span_id, span.trace_id, span.started_at, span.duration_ms, span.op, span.status,
                          span.project, span.description))
    rows.sort(key=lambda row: (row["precise.start_ts"], row["id"]))
    return rows


def _base(span_id, trace_id, started_at: datetime, duration_ms: float, op, status, project, description) -> dict:
    start = started_at.replace(tzinfo=UTC)
    return {
        "id": span_id, "span_id": span_id, "trace": trace_id, "span.op": op, "span.status": status,
        "span.duration": duration_ms, "span.description": description, "description": description,
        "precise.start_ts": start.timestamp(), "precise.finish_ts": start.timestamp() + duration_ms / 1000,
        "timestamp": start.isoformat(timespec="seconds"), "project": project, "project.id": PROJECT_IDS[project],
        "environment": ENVIRONMENT, "_start": start,
    }


class _RateCounter:
    """Fixed-window request counter behind the X-Sentry-Rate-Limit-* headers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._window = 0
        self._count = 0

    def headers(self, request: Request, status: int) -> dict[str, str]:
        now = time.time()
        window = int(now // RATE_WINDOW_S)
        with self._lock:
            if window != self._window:
                self._window, self._count = window, 0
            self._count += 1
            remaining = 0 if status == 429 else max(0, RATE_LIMIT - self._count)
        return {
            "X-Sentry-Rate-Limit-Limit": str(RATE_LIMIT),
            "X-Sentry-Rate-Limit-Remaining": str(remaining),
            "X-Sentry-Rate-Limit-Reset": str((window + 1) * RATE_WINDOW_S),
            "X-Sentry-Rate-Limit-ConcurrentLimit": str(CONCURRENT_LIMIT),
            "X-Sentry-Rate-Limit-ConcurrentRemaining": str(CONCURRENT_LIMIT - 1),
        }


def _error_body(status: int) -> dict:
    if status == 429:
        return {"detail": "You are attempting to use this endpoint too frequently. "
                          f"Limit is {RATE_LIMIT} requests in {RATE_WINDOW_S} seconds"}
    if status == 404:
        return {"detail": "The requested resource does not exist"}
    if status == 503:
        return {"detail": "Service Unavailable"}
    return {"detail": "Internal Error", "errorId": "0f3c6a2e9b7d4c1e8a5b2d9f6c3e0a7b"}


def _auth(request: Request) -> Response | None:
    header = request.headers.get("authorization", "")
    if not header:
        return Response(401, {"detail": "Authentication credentials were not provided."})
    if header != f"Bearer {TOKEN}":
        return Response(401, {"detail": "Invalid token"})
    return None


def serve(ai: AiData, perf: perf_simulation.PerfData | None = None,
          ops: ops_simulation.OpsData | None = None) -> Sandbox:
    """A Sentry sandbox over the spans of `ai` (not started).

    Args:
        ai: the simulated AI data; its calls and other spans are the spans dataset.
        perf: the simulated app's requests, page loads, issues and event volumes (statex_bi.demo.perf):
            aggregate span queries, issues and stats_v2 (statex_bi.demo.apis.sentry_perf). None serves
            an organization that has none of them.
        ops: the simulated app's BullMQ jobs, Prisma queries and user feedback (statex_bi.demo.ops), served
            as queue and db spans and feedback issues (statex_bi.demo.apis.sentry_ops). None: none of them.

    Returns:
        The sandbox; start it with `with sandbox:` or `sandbox.start()`.
    """
    perf = perf or perf_simulation.no_performance(date.today())
    ops = ops or ops_simulation.no_operations(date.today())
    sandbox = Sandbox("sentry", auth=_auth, error_body=_error_body, headers=_RateCounter().headers)
    # Paging re-sends the same query with another cursor: count what it selects once per query.
    selections: dict[tuple, _Selection] = {}
    lock = threading.Lock()

    def select(request: Request) -> _Selection | list[dict]:
        key = tuple(sorted((k, tuple(v)) for k, v in request.query.items() if k not in ("cursor", "per_page")))
        if sentry_perf.is_aggregate_query(request.query.get("field", [])):
            if request.arg("dataset") != "spans":
                raise _BadRequest("dataset: the sandbox serves dataset=spans only")
            try:
                return sentry_perf.aggregate(request, perf, ops, _window(request))
            except sentry_perf.BadRequest as exc:
                raise _BadRequest(str(exc)) from None
        if request.arg("statsPeriod") or not request.arg("start"):
            return _Selection(request, ai)  # relative to now: not cacheable
        with lock:
            if key not in selections:
                if len(selections) >= 8:
                    selections.pop(next(iter(selections)))
                selections[key] = _Selection(request, ai)
            return selections[key]

    @sandbox.route("GET", EVENTS_PATH)
    def events(request: Request) -> Response:
        if request.match["org"] != ORG:
            return Response(404, _error_body(404))
        try:
            return _events(request, select)
        except _BadRequest as exc:
            return Response(400, {"detail": str(exc)})

    sentry_perf.register(sandbox, perf, ops, ORG, _link_header, _perf_window, _error_body)
    return sandbox


def _perf_window(request: Request) -> tuple[datetime, datetime]:
    try:
        return _window(request)
    except _BadRequest as exc:
        raise sentry_perf.BadRequest(str(exc)) from None


class _BadRequest(Exception):
    pass


class _Selection:
    """The spans a query selects, in its sort order, without holding them all: each day's spans are generated
    and counted once; a page is cut from the days it covers, generated again. A sort other than by start
    (`precise.start_ts`, which is the spans' own order) sorts the whole selection in memory."""

    def __init__(self, request: Request, ai: AiData) -> None:
        if request.arg("dataset") != "spans":
            raise _BadRequest("dataset: the sandbox serves dataset=spans only")
        fields = request.query.get("field", [])
        if not fields:
            raise _BadRequest("No columns selected")
        if len(fields) > MAX_FIELDS:
            raise _BadRequest("You can view up to 20 fields at a time. Please delete some and try again.")
        sorts = request.query.get("sort", [])
        for key in sorts:
            if key.lstrip("-") not in fields:
                raise _BadRequest("Cannot sort by a field that is not selected.")
        self.ai = ai
        self.window = _window(request)
        self.keep = _matcher(request, self.window)
        start, end = (moment.date() for moment in self.window)
        self.days = [day for day in ai.days() if start <= day <= end]
        self.sorted: list[dict] | None = None
        self._last: tuple[date, list[dict]] | None = None
        if sorts not in ([], ["precise.start_ts"]):
            self.sorted = _sorted([row for day in self.days for row in self._rows(day)], sorts)
        self.counts = [len(self._rows(day)) for day in self.days] if self.sorted is None else []

    def _rows(self, day: date) -> list[dict]:
        last = self._last  # one read: the server's threads may page the same query at once
        if last is None or last[0] != day:
            last = self._last = (day, [row for row in span_rows(self.ai, day) if self.keep(row)])
        return last[1]

    def __len__(self) -> int:
        return len(self.sorted) if self.sorted is not None else sum(self.counts)

    def __getitem__(self, page: slice) -> list[dict]:
        if self.sorted is not None:
            return self.sorted[page]
        rows, first = [], 0
        for day, count in zip(self.days, self.counts, strict=True):
            if first + count > page.start and first < page.stop and count:
                rows += self._rows(day)[max(0, page.start - first): page.stop - first]
            first += count
        return rows


def _matcher(request: Request, window: tuple[datetime, datetime]) -> Callable[[dict], bool]:
    """Whether a span is in the window, the projects and environments, and matches the query."""
    start, end = window
    predicates = _parse_query(request.arg("query", "") or "")
    projects = [p for p in request.query.get("project", []) if p != "-1"]
    environments = request.query.get("environment", [])

    def keep(row: dict) -> bool:
        return (start <= row["_start"] < end
                and (not projects or row["project"] in projects or str(row["project.id"]) in projects)
                and (not environments or row["environment"] in environments)
                and all(predicate(row) for predicate in predicates))

    return keep


def _sorted(selected: list[dict], sorts: list[str]) -> list[dict]:
    for key in reversed(sorts):
        name = key.lstrip("-")
        present = [row for row in selected if _value(row, name) is not None]
        missing = [row for row in selected if _value(row, name) is None]
        present.sort(key=lambda row, n=name: _value(row, n), reverse=key.startswith("-"))
        selected = present + missing
    return selected


def _events(request: Request, select: Callable[[Request], _Selection | list[dict]]) -> Response:
    selected = select(request)
    fields = request.query["field"]
    per_page = _int(request.arg("per_page", str(MAX_PER_PAGE)), "per_page")
    if not 1 <= per_page <= MAX_PER_PAGE:
        raise _BadRequest(f"per_page must be between 1 and {MAX_PER_PAGE}")
    offset = _cursor_offset(request.arg("cursor"))
    page = selected[offset: offset + per_page]
    has_more = len(selected) > offset + per_page
    body = {
        "data": [{name: _value(row, name) for name in fields} for row in page],
        "meta": {
            "fields": {name: _field_type(name) for name in fields},
            "units": {name: sentry_perf.field_unit(name) if sentry_perf.AGGREGATE.match(name)
                      else "millisecond" if _field_type(name) == "duration" else None for name in fields},
            "isMetricsData": False, "isMetricsExtractedData": False, "tips": {},
            "datasetReason": "unchanged", "dataset": "spans", "dataScanned": "full",
        },
    }
    links = _link_header(request, offset, per_page, has_more)
    return Response(200, body, {"Link": links})


def _window(request: Request) -> tuple[datetime, datetime]:
    now = datetime.now(UTC)
    period = request.arg("statsPeriod")
    start, end = request.arg("start"), request.arg("end")
    if period or not (start or end):
        match = re.fullmatch(r"(\d+)([smhdw])", period or DEFAULT_PERIOD)
        if not match:
            raise _BadRequest(f"Invalid statsPeriod: {period!r}")
        unit = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}[match[2]]
        return now - timedelta(**{unit: int(match[1])}), now
    if not (start and end):
        raise _BadRequest("start and end are both required")
    return _iso(start, "start"), _iso(end, "end")


def _iso(value: str, name: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise _BadRequest(f"{name}: {value!r} is not an ISO 8601 date-time") from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _int(value: str, name: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise _BadRequest(f"{name}: {value!r} is not an integer") from exc


def _cursor_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    match = re.fullmatch(r"(\d+):(\d+):([01])", cursor)
    if not match:
        raise _BadRequest("Invalid cursor parameter.")
    return int(match[2])


def _link_header(request: Request, offset: int, per_page: int, has_more: bool) -> str:
    # As sentry.api.base.build_cursor_link: the query without `cursor`, then `&cursor=...` appended.
    query = urlencode([(key, value) for key, values in request.query.items() if key != "cursor" for value in values])
    base = f"http://{request.headers.get('host', '127.0.0.1')}{request.path}?{query}"
    previous = f"0:{max(0, offset - per_page)}:1"
    following = f"0:{offset + per_page}:0"
    return (
        f'<{base}&cursor={previous}>; rel="previous"; results="{"true" if offset > 0 else "false"}"; '
        f'cursor="{previous}", '
        f'<{base}&cursor={following}>; rel="next"; results="{"true" if has_more else "false"}"; cursor="{following}"'
    )


def _field_type(name: str) -> str:
    if sentry_perf.AGGREGATE.match(name):
        return sentry_perf.field_type(name)
    typed = TYPED_TAG.match(name)
    if typed:
        return typed["type"]
    if name == "span.duration":
        return "duration"
    if name == "timestamp":
        return "date"
    return NUMBER_FIELDS.get(name, "string")


def _value(row: dict, name: str):
    typed = TYPED_TAG.match(name)
    if typed:
        value = row.get(typed["name"])
        if typed["type"] == "number":
            # EAP stores numeric attributes as doubles and returns them so when asked by type.
            return float(value) if isinstance(value, int | float) else None
        return value if isinstance(value, str) else None
    return row.get(name) if not name.startswith("_") else None


def _parse_query(query: str) -> list:
    predicates = []
    for token in _tokens(query):
        if token.upper() == "AND":
            continue
        if token.upper() == "OR" or token.startswith("(") or token.endswith(")"):
            raise _BadRequest("the sandbox supports ANDed terms only, no OR or parentheses")
        predicates.append(_predicate(token))
    return predicates


def _tokens(query: str) -> list[str]:
    tokens, current, quoted, bracket = [], "", False, 0
    for char in query:
        if char == '"':
            quoted = not quoted
        elif char == "[" and not quoted:
            bracket += 1
        elif char == "]" and not quoted:
            bracket -= 1
        if char.isspace() and not quoted and bracket == 0:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += char
    if quoted or bracket:
        raise _BadRequest(f"Parse error in query {query!r}")
    return tokens + ([current] if current else [])


def _predicate(token: str):
    match = TERM.match(token)
    if not match:
        return lambda row: token.lower() in (row.get("span.description") or "").lower()
    negate = match["neg"] == "!"
    key, value = match["key"], match["value"]
    if key == "has":
        return lambda row: (_value(row, value) is None) == negate
    comparison = re.fullmatch(r"(>=|<=|>|<)(-?\d+(?:\.\d+)?)", value)
    if comparison:
        operator, number = comparison[1], float(comparison[2])
        test = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__}[operator]
        return lambda row: (isinstance(_value(row, key), int | float)
                            and test(float(_value(row, key)), number)) != negate
    if value.startswith("[") and value.endswith("]"):
        patterns = [item.strip().strip('"') for item in value[1:-1].split(",")]
    else:
        patterns = [value.strip('"')]

    def matches(row: dict) -> bool:
        actual = _value(row, key)
        hit = actual is not None and any(fnmatch.fnmatchcase(_text(actual), pattern) for pattern in patterns)
        return hit != negate

    return matches


def _text(value) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)

