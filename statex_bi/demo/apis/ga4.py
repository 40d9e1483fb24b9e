"""GA4 Data API v1beta `runReport` for the simulated company, in Google's wire format.

`POST /v1beta/properties/{id}:runReport` (the client appends `?$alt=json;enum-encoding=int`; routes
match the path alone). The body and the answer are camelCase JSON; every dimension and metric value
is a string, `date` is YYYYMMDD; `limit` and `offset` arrive as strings (int64); `rowCount` counts
all matching rows whatever the limit, and an empty result omits both `rows` and `rowCount`. With
`enum-encoding=int` the metric types come back as numbers, as Google sends them to this client.

The sandbox models the cubes the GA4 connector asks for (any dimension order, any subset of the
metrics, `dimensionFilter` with `filter` (inListFilter, stringFilter), `andGroup`, `orGroup`,
`notExpression`, dimension and metric `orderBys`, one date range):

    date, sessionDefaultChannelGroup            sessions, activeUsers, screenPageViews,
                                                averageSessionDuration, engagedSessions
    date, sessionDefaultChannelGroup, eventName eventCount, keyEvents, sessions (with the event)
    date                                        activeUsers (de-duplicated across channels), sessions

Authentication: the production client sends `Authorization: Bearer <OAuth token>`; a request with a
Bearer header must carry the sandbox's token. The official client with `AnonymousCredentials` (what
the connector uses against an http:// loopback endpoint) sends no header at all: such requests are
accepted while `allow_anonymous` is true (the default), and refused with 401 otherwise.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from statex_bi.demo.growth import GrowthData
from statex_bi.demo.sandbox import Request, Response, Sandbox

PROPERTY_ID = "412345678"
TOKEN = "ya29.sandbox-ga4-token"
TIME_ZONE = "Europe/Berlin"
CURRENCY = "EUR"
DEFAULT_LIMIT = 10_000
MAX_LIMIT = 250_000
DAILY_TOKENS, HOURLY_TOKENS, PROJECT_HOURLY_TOKENS = 200_000, 40_000, 14_000  # a standard property
TOKENS_PER_REQUEST = 10

STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                429: "RESOURCE_EXHAUSTED", 500: "INTERNAL", 503: "UNAVAILABLE"}
# MetricType names and their protobuf numbers (sent when the client asks for enum-encoding=int).
METRIC_TYPES = {"TYPE_INTEGER": 1, "TYPE_FLOAT": 2, "TYPE_SECONDS": 4}
# StringFilter.MatchType numbers, for filters the client sent with enum-encoding=int.
MATCH_TYPES = {0: "MATCH_TYPE_UNSPECIFIED", 1: "EXACT", 2: "BEGINS_WITH", 3: "ENDS_WITH", 4: "CONTAINS",
               5: "FULL_REGEXP", 6: "PARTIAL_REGEXP"}
DIMENSION_COLUMNS = {"date": "date", "sessionDefaultChannelGroup": "channel", "eventName": "event_name"}


@dataclass(frozen=True)
class Cube:
    """Rows of the simulation that answer reports over exactly these dimensions."""

    dimensions: frozenset[str]
    metrics: dict[str, tuple[str, str]]  # GA4 metric -> (row column, metric type)
    rows: list[dict]


class BadRequest(Exception):
    """The request is invalid: answered with 400 INVALID_ARGUMENT."""


def error(status: int, message: str) -> dict:
    """Google's JSON error body."""
    return {"error": {"code": status, "message": message, "status": STATUS_NAMES.get(status, "UNKNOWN")}}


def build(world) -> Sandbox:
    """The GA4 sandbox serving the world's growth data (not started)."""
    return serve(world.growth)


def environment(url: str) -> dict[str, str]:
    """The variables that point the GA4 connector at the sandbox."""
    return {"GA4_API_ENDPOINT": url, "GA4_PROPERTY_ID": PROPERTY_ID}


def serve(
    growth: GrowthData, property_id: str = PROPERTY_ID, token: str = TOKEN, allow_anonymous: bool = True,
    today: date | None = None,
) -> Sandbox:
    """A GA4 sandbox over `growth` (not started).

    Args:
        growth: the simulated traffic, key events and daily users.
        property_id: the only property the sandbox's credentials may read.
        token: the OAuth access token accepted in `Authorization: Bearer`.
        allow_anonymous: accept requests without an Authorization header (the client's AnonymousCredentials).
        today: the property's today, for "today", "yesterday" and "NdaysAgo" (default: the real today).

    Returns:
        The sandbox; start it with `with sandbox:` or `sandbox.start()`.
    """

    def auth(request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if header is None and allow_anonymous:
            return None
        if header is None:
            return Response(401, error(401, "Request is missing required authentication credential. Expected OAuth 2 "
                                            "access token, login cookie or other valid authentication credential."))
        if header != f"Bearer {token}":
            return Response(401, error(401, "Request had invalid authentication credentials. Expected OAuth 2 access "
                                            "token, login cookie or other valid authentication credential."))
        return None

    sandbox = Sandbox("ga4", auth=auth, error_body=lambda status: error(status, _fault_message(status)))
    cubes = _cubes(growth)
    consumed = {"requests": 0}

    @sandbox.route("POST", r"/v1beta/properties/(?P<property>[^/:]+):runReport")
    def run_report(request: Request) -> Response:
        if request.match["property"] != property_id:
            return Response(403, error(403, "User does not have sufficient permissions for this property. To learn "
                                            "more about Property ID, see https://developers.google.com/analytics/"
                                            "devguides/reporting/data/v1/property-id."))
        try:
            body = request.json()
            report = _report(body, cubes, today or date.today(), _enums_as_int(request))
        except (BadRequest, ValueError, TypeError, KeyError) as exc:
            return Response(400, error(400, str(exc)))
        consumed["requests"] += 1
        if body.get("returnPropertyQuota"):
            report["propertyQuota"] = _quota(TOKENS_PER_REQUEST, consumed["requests"] * TOKENS_PER_REQUEST)
        return Response(200, report)

    return sandbox


def _fault_message(status: int) -> str:
    return {
        429: "Exhausted property tokens per hour for a project per property. These quota tokens will return in under "
             "an hour. To learn more, see https://developers.google.com/analytics/devguides/reporting/data/v1/quotas",
        500: "Internal error encountered.",
        503: "The service is currently unavailable.",
        404: "Requested entity was not found.",
    }.get(status, "sandbox fault")


def _enums_as_int(request: Request) -> bool:
    return "enum-encoding=int" in (request.arg("$alt") or "")


def _cubes(growth: GrowthData) -> list[Cube]:
    integer, seconds = "TYPE_INTEGER", "TYPE_SECONDS"
    return [
        Cube(frozenset({"date", "sessionDefaultChannelGroup"}), {
            "sessions": ("sessions", integer), "activeUsers": ("active_users", integer),
            "screenPageViews": ("screen_page_views", integer),
            "averageSessionDuration": ("average_session_duration", seconds),
            "engagedSessions": ("engaged_sessions", integer),
        }, growth.traffic),
        Cube(frozenset({"date", "sessionDefaultChannelGroup", "eventName"}), {
            "eventCount": ("event_count", integer), "keyEvents": ("key_events", integer),
            "sessions": ("sessions", integer),
        }, _with_event_sessions(growth)),
        Cube(frozenset({"date"}), {"activeUsers": ("active_users", integer), "sessions": ("sessions", integer)},
             growth.daily_users),
    ]


def _with_event_sessions(growth: GrowthData) -> list[dict]:
    """Key event rows with `sessions`: with eventName as a dimension, GA4's sessions metric counts the
    sessions in which the event happened."""
    sessions = {(r["date"], r["channel"], r["event_name"]): r["sessions"] for r in growth.event_sessions}
    return [{**row, "sessions": sessions.get((row["date"], row["channel"], row["event_name"]), 0)}
            for row in growth.key_events]


def _report(body: dict, cubes: list[Cube], today: date, enums_as_int: bool) -> dict:
    dimensions = [d["name"] for d in body.get("dimensions", [])]
    metrics = [m["name"] for m in body.get("metrics", [])]
    if not metrics:
        raise BadRequest("At least one metric is required.")
    cube = _cube(cubes, dimensions, metrics)
    ranges = body.get("dateRanges") or [{"startDate": "28daysAgo", "endDate": "yesterday"}]
    if len(ranges) != 1:
        raise BadRequest("The sandbox models one date range per request.")
    start, end = _day(ranges[0]["startDate"], today), _day(ranges[0]["endDate"], today)
    if start > end:
        raise BadRequest(f"Invalid date range: startDate {start} is after endDate {end}.")
    limit = int(body.get("limit", DEFAULT_LIMIT))
    offset = int(body.get("offset", 0))
    if limit <= 0 or offset < 0:
        raise BadRequest(f"limit must be positive and offset not negative, got limit {limit}, offset {offset}.")
    limit = min(limit, MAX_LIMIT)

    selected = [row for row in cube.rows if start <= row["date"] <= end]
    if "dimensionFilter" in body:
        selected = [row for row in selected if _matches(body["dimensionFilter"], row)]
    selected = _ordered(selected, body.get("orderBys", []), cube)

    metric_headers = []
    for name in metrics:
        kind = cube.metrics[name][1]
        metric_headers.append({"name": name, "type": METRIC_TYPES[kind] if enums_as_int else kind})
    report: dict = {
        "dimensionHeaders": [{"name": name} for name in dimensions],
        "metricHeaders": metric_headers,
    }
    page = selected[offset:offset + limit]
    if page:
        report["rows"] = [
            {
                "dimensionValues": [{"value": _dimension_value(row, name)} for name in dimensions],
                "metricValues": [{"value": _metric_value(row[cube.metrics[name][0]])} for name in metrics],
            }
            for row in page
        ]
    if selected:
        report["rowCount"] = len(selected)
    report["metadata"] = {"currencyCode": CURRENCY, "timeZone": TIME_ZONE}
    report["kind"] = "analyticsData#runReport"
    return report


def _cube(cubes: list[Cube], dimensions: list[str], metrics: list[str]) -> Cube:
    for cube in cubes:
        if cube.dimensions == frozenset(dimensions) and len(dimensions) == len(cube.dimensions):
            unknown = [m for m in metrics if m not in cube.metrics]
            if unknown:
                raise BadRequest(f"Field {unknown[0]} is not a valid metric for dimensions {', '.join(dimensions)}. "
                                 "For a list of valid dimensions and metrics, see "
                                 "https://developers.google.com/analytics/devguides/reporting/data/v1/api-schema")
            return cube
    raise BadRequest(f"The sandbox does not model the dimensions {', '.join(dimensions) or '(none)'}; "
                     "it models date[, sessionDefaultChannelGroup[, eventName]].")


def _day(text: str, today: date) -> date:
    """A GA4 date: YYYY-MM-DD, "today", "yesterday" or "NdaysAgo"."""
    if text == "today":
        return today
    if text == "yesterday":
        return today - timedelta(days=1)
    ago = re.fullmatch(r"(\d+)daysAgo", text)
    if ago:
        return today - timedelta(days=int(ago.group(1)))
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        raise BadRequest(f"Invalid date: {text!r}. Use YYYY-MM-DD, today, yesterday or NdaysAgo.")
    return datetime.strptime(text, "%Y-%m-%d").date()


def _dimension_value(row: dict, name: str) -> str:
    value = row[DIMENSION_COLUMNS[name]]
    return value.strftime("%Y%m%d") if isinstance(value, date) else str(value)


def _metric_value(value: object) -> str:
    # GA4 prints floats in full ("93.53333333333333") and integers without a decimal point; anything else
    # (a test's corrupted value) is sent as it is.
    return repr(value) if isinstance(value, float) else str(value)


def _matches(expression: dict, row: dict) -> bool:
    if "andGroup" in expression:
        return all(_matches(e, row) for e in expression["andGroup"].get("expressions", []))
    if "orGroup" in expression:
        return any(_matches(e, row) for e in expression["orGroup"].get("expressions", []))
    if "notExpression" in expression:
        return not _matches(expression["notExpression"], row)
    if "filter" not in expression:
        raise BadRequest("A FilterExpression needs one of andGroup, orGroup, notExpression or filter.")
    spec = expression["filter"]
    name = spec.get("fieldName")
    if name not in DIMENSION_COLUMNS or DIMENSION_COLUMNS[name] not in row:
        raise BadRequest(f"Field {name} is not a dimension of this report; dimension filters need report dimensions.")
    value = _dimension_value(row, name)
    if "inListFilter" in spec:
        in_list = spec["inListFilter"]
        values = in_list.get("values", [])
        if in_list.get("caseSensitive"):
            return value in values
        return value.lower() in {v.lower() for v in values}
    if "stringFilter" in spec:
        return _string_matches(spec["stringFilter"], value)
    raise BadRequest("The sandbox models inListFilter and stringFilter dimension filters.")


def _string_matches(spec: dict, value: str) -> bool:
    match_type = spec.get("matchType", "EXACT")
    match_type = MATCH_TYPES.get(match_type, "MATCH_TYPE_UNSPECIFIED") if isinstance(match_type, int) else match_type
    wanted = spec.get("value", "")
    if not spec.get("caseSensitive"):
        value, wanted = value.lower(), wanted.lower()
    tests = {
        "MATCH_TYPE_UNSPECIFIED": lambda: value == wanted,
        "EXACT": lambda: value == wanted,
        "BEGINS_WITH": lambda: value.startswith(wanted),
        "ENDS_WITH": lambda: value.endswith(wanted),
        "CONTAINS": lambda: wanted in value,
        "FULL_REGEXP": lambda: re.fullmatch(wanted, value) is not None,
        "PARTIAL_REGEXP": lambda: re.search(wanted, value) is not None,
    }
    if match_type not in tests:
        raise BadRequest(f"Unknown matchType {match_type!r}.")
    return tests[match_type]()


def _ordered(rows: list[dict], order_bys: list[dict], cube: Cube) -> list[dict]:
    # Stable sorts applied from the last key to the first give the lexicographic order asked for.
    for order in reversed(order_bys):
        if "dimension" in order:
            name = order["dimension"]["dimensionName"]
            if name not in cube.dimensions:
                raise BadRequest(f"orderBys dimension {name} is not a dimension of this report.")
            key = lambda row, name=name: _dimension_value(row, name)  # noqa: E731
        elif "metric" in order:
            name = order["metric"]["metricName"]
            if name not in cube.metrics:
                raise BadRequest(f"orderBys metric {name} is not a metric of this report.")
            key = lambda row, column=cube.metrics[name][0]: row[column]  # noqa: E731
        else:
            raise BadRequest("The sandbox orders by dimension or metric.")
        rows = sorted(rows, key=key, reverse=bool(order.get("desc")))
    return rows


def _quota(request_tokens: int, total_tokens: int) -> dict:
    """What this request consumed and what remains of each quota after all requests so far."""

    def status(consumed: int, used: int, limit: int) -> dict:
        return {"consumed": consumed, "remaining": max(0, limit - used)}

    return {
        "tokensPerDay": status(request_tokens, total_tokens, DAILY_TOKENS),
        "tokensPerHour": status(request_tokens, total_tokens, HOURLY_TOKENS),
        "concurrentRequests": status(0, 0, 10),
        "serverErrorsPerProjectPerHour": status(0, 0, 10),
        "potentiallyThresholdedRequestsPerHour": status(0, 0, 120),
        "tokensPerProjectPerHour": status(request_tokens, total_tokens, PROJECT_HOURLY_TOKENS),
    }
