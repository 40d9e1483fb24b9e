"""The Sentry sandbox's performance endpoints speak the documented wire format: requests as the
connector sends them and the sandbox's responses validate against the official operations
(tests/specs/sentry/performance.json, a trimmed copy of Sentry's OpenAPI description)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from statex_bi.demo.apis import sentry as sentry_api
from statex_bi.demo.world import World, WorldConfig

SPEC = Path(__file__).parents[2] / "specs" / "sentry" / "performance.json"
END = datetime.now(UTC).date() - timedelta(days=1)
START = END - timedelta(days=9)
WINDOW = {"start": f"{START}T00:00:00Z", "end": f"{END + timedelta(days=1)}T00:00:00Z"}


@pytest.fixture(scope="module")
def sandbox():
    world = World(WorldConfig(START, END, seed=3, scale=0.2))
    with sentry_api.serve(world.ai, world.perf) as box:
        yield box


@pytest.fixture(scope="module")
def api(sandbox):
    spec = json.loads(SPEC.read_text())
    spec["servers"] = [{"url": sandbox.url}]
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


def _get(box, path, params, token=sentry_api.TOKEN):
    return requests.get(f"{box.url}/api/0/organizations/{sentry_api.ORG}/{path}", params=params,
                        headers={"Authorization": f"Bearer {token}"}, timeout=30)


def _validate(api, response):
    assert response.status_code == 200, response.text
    request = RequestsOpenAPIRequest(response.request)
    api.validate_request(request)
    api.validate_response(request, RequestsOpenAPIResponse(response))
    return response.json()


def test_daily_timeseries_per_top_route(api, sandbox):
    body = _validate(api, _get(sandbox, "events-timeseries/", {
        "dataset": "spans", "yAxis": "p95(span.duration)", "interval": 86400, "query": "span.op:http.server",
        "groupBy": "transaction", "topEvents": 10, "sort": "-count()", "excludeOther": 1, **WINDOW}))
    assert len(body["timeSeries"]) == 8, "every simulated route is among the top 10"
    series = body["timeSeries"][0]
    assert series["yAxis"] == "p95(span.duration)" and series["meta"]["valueUnit"] == "millisecond"
    assert len(series["values"]) == 10 and series["values"][0]["timestamp"] == \
        datetime.fromisoformat(WINDOW["start"]).timestamp() * 1000
    assert series["groupBy"][0]["key"] == "transaction"


def test_issue_list_and_details(api, sandbox):
    issues = _validate(api, _get(sandbox, "issues/", {"query": "", "limit": 5, "sort": "date", **WINDOW}))
    assert issues and isinstance(issues[0]["count"], str) and isinstance(issues[0]["userCount"], int)
    resolved = next(i for i in _get(sandbox, "issues/", {"query": "is:resolved", **WINDOW}).json())
    detail = _validate(api, _get(sandbox, f"issues/{resolved['id']}/", {}))
    assert detail["status"] == "resolved" and isinstance(detail["activity"], list)


def test_event_volume_stats(api, sandbox):
    body = _validate(api, _get(sandbox, "stats_v2/", {
        "field": "sum(quantity)", "groupBy": ["category", "outcome"], "interval": "1d",
        "start": WINDOW["start"], "end": f"{END}T23:59:59Z"}))
    assert len(body["intervals"]) == 10
    assert all(len(group["series"]["sum(quantity)"]) == 10 for group in body["groups"])
    assert {"category": "error", "outcome": "accepted"} in [group["by"] for group in body["groups"]]


def test_a_response_breaking_the_spec_is_caught(api, sandbox):
    response = _get(sandbox, "issues/", {"query": "", **WINDOW})
    response._content = json.dumps([{"id": 5}]).encode()
    with pytest.raises(Exception, match="InvalidData|id"):
        api.validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))


def test_unsupported_queries_are_refused_like_sentry(sandbox):
    bad = _get(sandbox, "events-timeseries/", {"dataset": "spans", "yAxis": "count()", "groupBy": "transaction",
                                               "query": "span.op:http.server", **WINDOW})
    assert bad.status_code == 400 and "topEvents" in bad.json()["detail"]
    assert _get(sandbox, "stats_v2/", {"field": "sum(quantity)", **WINDOW}).status_code == 400
    assert _get(sandbox, "issues/", {"query": ""}, token="wrong").status_code == 401
