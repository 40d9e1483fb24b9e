"""OpenAI's organization Usage and Costs APIs over the simulated bill.

    GET /v1/organization/usage/completions   start_time (required, unix s, inclusive), end_time
        (exclusive, default now), bucket_width (the sandbox serves `1d`), limit (1d: default 7,
        max 31), group_by (project_id, user_id, api_key_id, model, batch, service_tier), models,
        project_ids, batch, page
    GET /v1/organization/costs   start_time, end_time, bucket_width (`1d` only), limit (1-180,
        default 7), group_by (project_id, line_item, api_key_id), project_ids, page

Both answer `{"object": "page", "data": [buckets], "has_more", "next_page"}`; every day of the range
is a bucket (UTC midnight to midnight; a `start_time` inside a day starts at that day's midnight),
with `results: []` on days without usage. Group keys not asked for are null. Auth is a Bearer admin
key; errors use OpenAI's envelope `{"error": {"message", "type", "param", "code"}}`.
"""

from __future__ import annotations

import base64
import struct
import time
from collections import defaultdict
from datetime import UTC, date, datetime

from statex_bi.demo.ai import AiData, CostLine, UsageBucket
from statex_bi.demo.sandbox import Request, Response, Sandbox

ADMIN_KEY = "sk-admin-sandbox-statex-7Qm2xW9fLk4Rv8Tz"
DAY_S = 86400
USAGE_PATH = "/v1/organization/usage/completions"
COSTS_PATH = "/v1/organization/costs"
USAGE_GROUPS = ("project_id", "user_id", "api_key_id", "model", "batch", "service_tier")
COST_GROUPS = ("project_id", "line_item", "api_key_id")


def build(world) -> Sandbox:
    """The OpenAI sandbox serving the world's usage and costs (not started)."""
    return serve(world.ai)


def environment(url: str) -> dict[str, str]:
    """The variables that point the OpenAI connector at the sandbox."""
    return {"OPENAI_ADMIN_KEY": ADMIN_KEY, "OPENAI_API_BASE": url}


def _error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
           code: str | None = None) -> Response:
    return Response(status, {"error": {"message": message, "type": kind, "param": param, "code": code}})


def _error_body(status: int) -> dict:
    if status == 429:
        return {"error": {"message": "Rate limit reached for requests. Please try again in 1s.",
                          "type": "requests", "param": None, "code": "rate_limit_exceeded"}}
    if status == 404:
        return {"error": {"message": "Invalid URL", "type": "invalid_request_error", "param": None, "code": None}}
    if status == 503:
        return {"error": {"message": "The server is overloaded or not ready yet.", "type": "server_error",
                          "param": None, "code": None}}
    return {"error": {"message": "The server had an error while processing your request. Sorry about that!",
                      "type": "server_error", "param": None, "code": None}}


def _auth(request: Request) -> Response | None:
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        return _error(401, "You didn't provide an API key. You need to provide your API key in an Authorization "
                           "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")
    if header != f"Bearer {ADMIN_KEY}":
        key = header.removeprefix("Bearer ")
        return _error(401, f"Incorrect API key provided: {key[:8]}{'*' * 10}{key[-4:]}. You can find your API key "
                           "at https://platform.openai.com/account/api-keys.", code="invalid_api_key")
    return None


class _BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def serve(ai: AiData) -> Sandbox:
    """An OpenAI sandbox over the usage and costs of `ai` (not started).

    Args:
        ai: the simulated AI data; its `usage` and `costs` are the organization's bill.

    Returns:
        The sandbox; start it with `with sandbox:` or `sandbox.start()`.
    """
    sandbox = Sandbox("openai", auth=_auth, error_body=_error_body)
    usage_by_day: dict[date, list[UsageBucket]] = defaultdict(list)
    for bucket in ai.usage:
        usage_by_day[bucket.day].append(bucket)
    costs_by_day: dict[date, list[CostLine]] = defaultdict(list)
    for line in ai.costs:
        costs_by_day[line.day].append(line)

    @sandbox.route("GET", USAGE_PATH)
    def completions(request: Request) -> Response:
        try:
            groups = _group_by(request, USAGE_GROUPS)
            models = request.query.get("models", [])
            projects = request.query.get("project_ids", [])
            batch = request.arg("batch")

            def results(day: date) -> list[dict]:
                rows = [b for b in usage_by_day.get(day, []) if (not models or b.model in models)
                        and (not projects or b.project_id in projects)
                        and (batch is None or b.batch == (batch.lower() == "true"))]
                return _usage_results(rows, groups)

            return _page(request, results, default_limit=7, max_limit=31, widths=("1d",))
        except _BadRequest as exc:
            return _error(400, str(exc), param=exc.param)

    @sandbox.route("GET", COSTS_PATH)
    def costs(request: Request) -> Response:
        try:
            groups = _group_by(request, COST_GROUPS)
            projects = request.query.get("project_ids", [])

            def results(day: date) -> list[dict]:
                lines = [c for c in costs_by_day.get(day, []) if not projects or c.project_id in projects]
                return _cost_results(lines, groups)

            return _page(request, results, default_limit=7, max_limit=180, widths=("1d",))
        except _BadRequest as exc:
            return _error(400, str(exc), param=exc.param)

    return sandbox


def _group_by(request: Request, allowed: tuple[str, ...]) -> list[str]:
    groups = [g for value in request.query.get("group_by", []) for g in value.split(",") if g]
    for group in groups:
        if group not in allowed:
            raise _BadRequest(f"Invalid value for 'group_by': {group!r}. Supported: {', '.join(allowed)}.",
                              "group_by")
    return groups


def _int_arg(request: Request, name: str, default: int | None = None) -> int | None:
    value = request.arg(name)
    if value is None:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise _BadRequest(f"Invalid value for '{name}': expected an integer.", name) from exc


def _encode_page(start: int) -> str:
    return "page_" + base64.b64encode(struct.pack(">QQ", start, start ^ 0x5A17E5)).decode()


def _decode_page(page: str) -> int:
    try:
        start, check = struct.unpack(">QQ", base64.b64decode(page.removeprefix("page_"), validate=True))
    except (ValueError, struct.error) as exc:
        raise _BadRequest("Invalid value for 'page'.", "page") from exc
    if check != start ^ 0x5A17E5:
        raise _BadRequest("Invalid value for 'page'.", "page")
    return start


def _page(request: Request, results, default_limit: int, max_limit: int, widths: tuple[str, ...]) -> Response:
    start_time = _int_arg(request, "start_time")
    if start_time is None:
        raise _BadRequest("Missing required parameter: 'start_time'.", "start_time")
    end_time = _int_arg(request, "end_time", int(time.time()))
    width = request.arg("bucket_width", "1d")
    if width not in widths:
        raise _BadRequest(f"Invalid value for 'bucket_width': {width!r}; the sandbox serves 1d buckets.",
                          "bucket_width")
    limit = _int_arg(request, "limit", default_limit)
    if not 1 <= limit <= max_limit:
        raise _BadRequest(f"Invalid value for 'limit': must be between 1 and {max_limit}.", "limit")
    first = start_time - start_time % DAY_S
    page = request.arg("page")
    cursor = _decode_page(page) if page else first
    buckets = []
    bucket_start = cursor
    while bucket_start < end_time and len(buckets) < limit:
        day = datetime.fromtimestamp(bucket_start, UTC).date()
        buckets.append({"object": "bucket", "start_time": bucket_start, "end_time": bucket_start + DAY_S,
                        "results": results(day)})
        bucket_start += DAY_S
    has_more = bucket_start < end_time
    return Response(200, {"object": "page", "data": buckets, "has_more": has_more,
                          "next_page": _encode_page(bucket_start) if has_more else None})


def _usage_results(rows: list[UsageBucket], groups: list[str]) -> list[dict]:
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    for row in rows:
        key = tuple(getattr(row, group) if group in groups and hasattr(row, group) else None
                    for group in USAGE_GROUPS)
        total = totals[key]
        total[0] += row.input_tokens
        total[1] += row.input_cached_tokens
        total[2] += row.output_tokens
        total[3] += row.num_model_requests
    return [
        {
            "object": "organization.usage.completions.result",
            "input_tokens": inputs, "input_cached_tokens": cached, "input_uncached_tokens": inputs - cached,
            "output_tokens": outputs, "input_audio_tokens": 0, "output_audio_tokens": 0,
            "num_model_requests": requests,
            **dict(zip(USAGE_GROUPS, key, strict=True)),
        }
        for key, (inputs, cached, outputs, requests) in sorted(totals.items(), key=lambda item: str(item[0]))
    ]


def _cost_results(lines: list[CostLine], groups: list[str]) -> list[dict]:
    totals: dict[tuple, list] = {}
    for line in lines:
        key = (line.project_id if "project_id" in groups else None,
               line.line_item if "line_item" in groups else None, None)
        total = totals.setdefault(key, [0.0, 0.0, line.quantity_unit])
        total[0] += line.amount_usd
        total[1] += line.quantity or 0.0
    results = []
    for (project_id, line_item, api_key_id), (amount, quantity, unit) in sorted(totals.items(), key=str):
        by_item = line_item is not None
        results.append({
            "object": "organization.costs.result",
            "amount": {"value": round(amount, 10), "currency": "usd"},
            "line_item": line_item, "project_id": project_id, "api_key_id": api_key_id,
            "quantity": quantity if by_item and unit is not None else None,
            "quantity_unit": unit if by_item else None,
        })
    return results

