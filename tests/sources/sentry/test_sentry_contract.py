"""The Sentry sandbox speaks the documented wire format: the official spec of the events operation
(tests/specs/sentry/organization-events.json, a trimmed copy), Link paging and rate-limit headers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from statex_bi.demo.apis import sentry as sentry_api
from statex_bi.demo.world import World, WorldConfig
from statex_bi.sources.sentry import settings

SPEC = Path(__file__).parents[2] / "specs" / "sentry" / "organization-events.json"
RATE_HEADERS = ("X-Sentry-Rate-Limit-Limit", "X-Sentry-Rate-Limit-Remaining", "X-Sentry-Rate-Limit-Reset",
                "X-Sentry-Rate-Limit-ConcurrentLimit", "X-Sentry-Rate-Limit-ConcurrentRemaining")


@pytest.fixture(scope="module")
def ai():
    return World(WorldConfig(date(2026, 3, 2), date(2026, 3, 6), seed=5)).ai


@pytest.fixture
def sandbox(ai):
    with sentry_api.serve(ai) as box:
        yield box


def _openapi(url: str) -> OpenAPI:
    spec = json.loads(SPEC.read_text())
    spec["servers"] = [{"url": url}]
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


def _connector_params(**extra) -> list[tuple[str, str]]:
    """The query the connector sends (settings), as a list of pairs."""
    return [("dataset", "spans"), *[("field", f) for f in settings.SPAN_FIELDS.values()],
            ("query", settings.GEN_AI_QUERY), ("sort", settings.SORT_FIELD),
            ("start", "2026-03-02T00:00:00Z"), ("end", "2026-03-07T00:00:00Z"), *extra.items()]


def _get(box, params, token=sentry_api.TOKEN, org=sentry_api.ORG):
    return requests.get(f"{box.url}/api/0/organizations/{org}/events/", params=params,
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)


def test_the_connector_request_and_the_sandbox_response_follow_the_spec(sandbox):
    api = _openapi(sandbox.url)
    response = _get(sandbox, _connector_params(per_page="10"))
    assert response.status_code == 200
    request = RequestsOpenAPIRequest(response.request)
    api.validate_request(request)
    api.validate_response(request, RequestsOpenAPIResponse(response))
    body = response.json()
    assert len(body["data"]) == 10
    assert set(body["data"][0]) == set(settings.SPAN_FIELDS.values())
    assert body["meta"]["fields"]["span.duration"] == "duration"
    assert body["meta"]["units"]["span.duration"] == "millisecond"
    assert body["meta"]["fields"]["gen_ai.usage.input_tokens"] == "integer"


def test_a_response_breaking_the_spec_is_caught(sandbox):
    api = _openapi(sandbox.url)
    response = _get(sandbox, _connector_params(per_page="1"))
    response._content = json.dumps({"data": {"not": "a list"}, "meta": {}}).encode()
    with pytest.raises(Exception, match="InvalidData|data"):
        api.validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))


def test_link_header_pages_until_results_false(ai, sandbox):
    expected = [c.span_id for c in ai.calls if date(2026, 3, 2) <= c.started_at.date() <= date(2026, 3, 6)]
    seen, cursors, url, params = [], [], None, _connector_params(per_page="40")
    while True:
        response = requests.get(url, headers={"Authorization": f"Bearer {sentry_api.TOKEN}"}, timeout=10) if url \
            else _get(sandbox, params)
        seen += [row["id"] for row in response.json()["data"]]
        links = response.links
        assert set(links) == {"previous", "next"}
        cursors.append((links["previous"]["cursor"], links["previous"]["results"],
                        links["next"]["cursor"], links["next"]["results"]))
        if links["next"]["results"] != "true":
            break
        url = links["next"]["url"]
    assert seen == expected, "every gen_ai span once, in start order, no other spans"
    assert cursors[0] == ("0:0:1", "false", "0:40:0", "true")
    assert cursors[1][:2] == ("0:0:1", "true")
    assert cursors[-1][3] == "false"


def test_every_response_carries_rate_limit_headers_and_a_429_has_sentrys_body(sandbox):
    ok = _get(sandbox, _connector_params(per_page="1"))
    denied = _get(sandbox, _connector_params(), token="wrong")
    sandbox.inject("429-bare")
    limited = _get(sandbox, _connector_params())
    for response in (ok, denied, limited):
        assert all(name in response.headers for name in RATE_HEADERS)
    assert denied.status_code == 401 and denied.json() == {"detail": "Invalid token"}
    assert limited.status_code == 429 and "Retry-After" not in limited.headers
    assert limited.headers["X-Sentry-Rate-Limit-Remaining"] == "0"
    limit = limited.headers["X-Sentry-Rate-Limit-Limit"]
    assert limited.json() == {"detail": "You are attempting to use this endpoint too frequently. "
                                        f"Limit is {limit} requests in 1 seconds"}
    assert int(limited.headers["X-Sentry-Rate-Limit-Reset"]) >= int(ok.headers["X-Sentry-Rate-Limit-Reset"])


def test_query_filters_fields_and_errors(ai, sandbox):
    fields = [("field", "id"), ("field", "tags[gen_ai.usage.output_tokens,number]"), ("field", "span.op")]
    window = [("dataset", "spans"), ("start", "2026-03-02T00:00:00Z"), ("end", "2026-03-07T00:00:00Z")]
    azure = _get(sandbox, [*window, *fields, ("query", "span.op:gen_ai.* ai_tier:azure has:gen_ai.usage."
                                                       "input_tokens gen_ai.usage.output_tokens:>1000")]).json()
    expected = {c.span_id: c.output_tokens for c in ai.calls if c.started_at.date() <= date(2026, 3, 6)
                and c.tier_attribute == "azure" and c.input_tokens is not None and c.output_tokens > 1000}
    assert {row["id"]: row["tags[gen_ai.usage.output_tokens,number]"] for row in azure["data"]} == expected
    assert azure["meta"]["fields"]["tags[gen_ai.usage.output_tokens,number]"] == "number"
    others = _get(sandbox, [*window, ("field", "span.op"), ("query", "!span.op:gen_ai.*"), ("project", "statex-api")])
    assert {row["span.op"] for row in others.json()["data"]} == {"http.server"}
    assert _get(sandbox, [*window, *[("field", f"f{i}") for i in range(21)]]).status_code == 400
    assert _get(sandbox, [*window, *fields, ("per_page", "101")]).status_code == 400
    assert _get(sandbox, [*window, *fields, ("sort", "span.duration")]).status_code == 400
    assert _get(sandbox, [*window, *fields], org="someone-else").status_code == 404
    missing_dataset = _get(sandbox, [*fields])
    assert missing_dataset.status_code == 400 and "dataset" in missing_dataset.json()["detail"]
