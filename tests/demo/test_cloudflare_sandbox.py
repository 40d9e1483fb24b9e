"""The Cloudflare GraphQL sandbox answers the documented R2 query in the documented shape, and its
errors come as GraphQL errors (HTTP 200, data null, an errors array)."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import pytest
import requests

from statex_bi.demo.apis import cloudflare as api
from statex_bi.demo.infra import InfraData

EXAMPLE = json.loads((Path(__file__).parents[1] / "specs" / "cloudflare" / "r2_example.json").read_text())
DAY = date(2026, 9, 27)


def _shape(value):
    """The keys and types of a JSON value, lists reduced to their first element."""
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(value[0])] if value else []
    return type(value).__name__


@pytest.fixture(scope="module")
def server():
    usage = InfraData({}, {}, {
        (DAY, "lib", "GetObject", "success", 200, "Standard"): [426, 3758375321, 3758375321],
        (DAY, "lib", "GetObject", "success", 304, "Standard"): [4, 0, 0],
    }, [(datetime(2026, 9, 27, 6, 50), "lib", "Standard", 162880512114, 1839241, 26139, 0),
        (datetime(2026, 9, 27, 1, 10), "lib", "Standard", 162880000000, 1839000, 26130, 0)])
    with api.serve(usage, DAY) as sandbox:
        yield sandbox


def _post(server, query, variables, token=api.API_TOKEN):
    response = requests.post(server.url + api.PATH, json={"query": query, "variables": variables},
                             headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert response.status_code == 200
    return response.json()


def test_the_documented_query_gets_the_documented_shape(server):
    body = _post(server, EXAMPLE["query"], {"a": api.R2_ACCOUNT, "s": "2026-09-27T00:00:00Z",
                                            "e": "2026-09-27T23:59:59Z"})
    assert _shape(body) == _shape(EXAMPLE["response"])
    account = body["data"]["viewer"]["accounts"][0]
    # Grouped by the dimensions asked for: the 304s fold into the same (date, bucket, action) group...
    assert [g["sum"]["requests"] for g in account["ops"]] == [430]
    # ...and storage samples newest first, as orderBy asks.
    assert [g["dimensions"]["datetime"] for g in account["st"]] == ["2026-09-27T06:50:00Z", "2026-09-27T01:10:00Z"]


def test_errors_are_graphql_errors(server):
    query = EXAMPLE["query"]
    denied = _post(server, query, {"a": api.R2_ACCOUNT, "s": "2026-09-27T00:00:00Z"}, token="nope")
    assert denied["data"] is None and "authentication error" in denied["errors"][0]["message"]
    other = _post(server, query, {"a": "0" * 32, "s": "2026-09-27T00:00:00Z", "e": "2026-09-28T00:00:00Z"})
    assert other["errors"][0]["message"] == "not authorized for that account"
    assert other["errors"][0]["path"] == ["viewer", "accounts", "0"]
    account = f'accounts(filter:{{accountTag:"{api.R2_ACCOUNT}"}})'
    unknown = _post(server, "{viewer{" + account + "{r2OperationsAdaptiveGroups(limit:5){sum{bytes}}}}}", {})
    assert "unknown field" in unknown["errors"][0]["message"]
    over = _post(server, "{viewer{" + account + "{r2StorageAdaptiveGroups(limit:20000){max{payloadSize}}}}}", {})
    assert "limit must be less than or equal to 10000" in over["errors"][0]["message"]
    assert set(over["errors"][0]) == {"message", "path", "extensions"}
