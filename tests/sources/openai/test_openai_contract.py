"""The OpenAI sandbox speaks the official wire format: usage completions and costs operations of the
OpenAI spec (tests/specs/openai/usage-costs.json, a trimmed copy), paging and error envelopes."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.configurations import Config
from openapi_core.contrib.requests import RequestsOpenAPIRequest, RequestsOpenAPIResponse

from statex_bi.demo.apis import openai as openai_api
from statex_bi.demo.world import World, WorldConfig
from statex_bi.sources.openai import settings

SPEC = Path(__file__).parents[2] / "specs" / "openai" / "usage-costs.json"
START = int(datetime(2026, 3, 2, tzinfo=UTC).timestamp())
END = int(datetime(2026, 3, 12, tzinfo=UTC).timestamp())


@pytest.fixture(scope="module")
def ai():
    return World(WorldConfig(date(2026, 3, 2), date(2026, 3, 11), seed=5)).ai


@pytest.fixture
def sandbox(ai):
    with openai_api.serve(ai) as box:
        yield box


def _without_discriminators(node):
    # The spec's discriminators have no mapping; openapi-core then rejects valid results (specs README).
    if isinstance(node, dict):
        node.pop("discriminator", None)
        for value in node.values():
            _without_discriminators(value)
    elif isinstance(node, list):
        for value in node:
            _without_discriminators(value)
    return node


def _openapi(url: str) -> OpenAPI:
    spec = _without_discriminators(json.loads(SPEC.read_text()))
    spec["servers"] = [{"url": url + "/v1"}]
    return OpenAPI.from_dict(spec, config=Config(spec_validator_cls=None))


def _get(box, path, params, key=openai_api.ADMIN_KEY):
    return requests.get(box.url + path, params=params, headers={"Authorization": f"Bearer {key}"}, timeout=10)


def _validate(api, response):
    request = RequestsOpenAPIRequest(response.request)
    api.validate_request(request)
    api.validate_response(request, RequestsOpenAPIResponse(response))


@pytest.mark.parametrize(("path", "group_by", "limit"), [
    (settings.USAGE_PATH, settings.USAGE_GROUP_BY, 4),
    (settings.COSTS_PATH, settings.COSTS_GROUP_BY, 4),
    (settings.COSTS_PATH, (), 30),
], ids=["usage", "costs", "costs-ungrouped"])
def test_connector_requests_and_sandbox_pages_follow_the_spec(sandbox, path, group_by, limit):
    api = _openapi(sandbox.url)
    params = {"start_time": START, "end_time": END, "bucket_width": "1d", "group_by": list(group_by),
              "limit": limit}
    pages = [_get(sandbox, path, params)]
    while pages[-1].json()["has_more"]:
        pages.append(_get(sandbox, path, {**params, "page": pages[-1].json()["next_page"]}))
    for page in pages:
        assert page.status_code == 200
        _validate(api, page)
    buckets = [bucket for page in pages for bucket in page.json()["data"]]
    assert [b["start_time"] for b in buckets] == list(range(START, END, 86400)), "every day, empty ones too"
    assert pages[-1].json()["next_page"] is None


def test_a_result_breaking_the_spec_is_caught(sandbox):
    api = _openapi(sandbox.url)
    response = _get(sandbox, settings.USAGE_PATH, {"start_time": START, "group_by": ["model"]})
    body = response.json()
    next(b for b in body["data"] if b["results"])["results"][0]["output_tokens"] = "12"
    response._content = json.dumps(body).encode()
    with pytest.raises(Exception, match="InvalidData|data"):
        api.validate_response(RequestsOpenAPIRequest(response.request), RequestsOpenAPIResponse(response))


def test_errors_use_openais_envelope(sandbox):
    api = _openapi(sandbox.url)
    sandbox.inject("429")
    limited = _get(sandbox, settings.COSTS_PATH, {"start_time": START})
    assert limited.status_code == 429 and limited.headers["Retry-After"] == "1"
    _validate(api, limited)
    wrong = _get(sandbox, settings.COSTS_PATH, {"start_time": START}, key="sk-admin-wrong-000000")
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_api_key" and set(wrong.json()["error"]) == {
        "message", "type", "param", "code"}
    assert "wrong-000000" not in wrong.text, "the key is masked in the message"
    missing = _get(sandbox, settings.USAGE_PATH, {"bucket_width": "1d"})
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "start_time"
    too_many = _get(sandbox, settings.USAGE_PATH, {"start_time": START, "limit": 32})
    assert too_many.status_code == 400 and too_many.json()["error"]["param"] == "limit"
    assert _get(sandbox, settings.COSTS_PATH, {"start_time": START, "limit": 180}).status_code == 200
    assert _get(sandbox, settings.COSTS_PATH, {"start_time": START, "limit": 181}).status_code == 400


def test_ungrouped_keys_are_null_and_grouped_results_add_up(ai, sandbox):
    by_model = _get(sandbox, settings.USAGE_PATH, {"start_time": START, "end_time": END, "limit": 31,
                                                   "group_by": ["model"]}).json()
    total = _get(sandbox, settings.USAGE_PATH, {"start_time": START, "end_time": END, "limit": 31}).json()
    results = [r for b in by_model["data"] for r in b["results"]]
    assert all(r["project_id"] is None and r["batch"] is None and r["model"] for r in results)
    assert all(r["model"] is None for b in total["data"] for r in b["results"])
    expected = sum(b.output_tokens for b in ai.usage if START <= datetime.combine(
        b.day, datetime.min.time(), tzinfo=UTC).timestamp() < END)
    assert sum(r["output_tokens"] for r in results) == expected
    assert sum(r["output_tokens"] for b in total["data"] for r in b["results"]) == expected
