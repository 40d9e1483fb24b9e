"""Contract: the GA4 sandbox and the official client agree with Google's published runReport schemas.

tests/specs/ga4/analyticsdata.v1beta.runReport.json is a trimmed copy of the Data API discovery
document (the runReport method and every schema RunReportRequest / RunReportResponse reference).
Discovery schemas are converted to JSON Schema here, strictly: no properties beyond the published
ones, int64 as a decimal string, enums as names or (enum-encoding=int) numbers. The request bodies
the real client sends and the sandbox's answers to them must both validate, so neither side can
drift from Google's format.
"""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path

import jsonschema
import pytest
import requests

from statex_bi.demo.apis import ga4 as ga4_api
from statex_bi.demo.growth import simulate_growth
from statex_bi.demo.world import WorldConfig
from statex_bi.ingest import load_source
from statex_bi.sources import ga4
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.ga4 import settings

SPEC = json.loads((Path(__file__).parents[2] / "specs" / "ga4" / "analyticsdata.v1beta.runReport.json").read_text())
END = date.today() - timedelta(days=5)
CONFIG = WorldConfig(END - timedelta(days=13), END, seed=2, scale=0.2)


def json_schema(root: str) -> dict:
    """The discovery schema `root` (and everything it references) as a strict JSON Schema."""
    return {"$defs": {name: _convert(node) for name, node in SPEC["schemas"].items()}, "$ref": f"#/$defs/{root}"}


def _convert(node: dict) -> dict:
    if "$ref" in node:
        return {"$ref": f"#/$defs/{node['$ref']}"}
    if "enum" in node:
        # The REST client asks for `enum-encoding=int`: either side may use the enum's number.
        return {"anyOf": [{"enum": node["enum"]}, {"type": "integer", "minimum": 0}]}
    kind = node.get("type")
    if kind == "object":
        schema = {"type": "object", "properties": {k: _convert(v) for k, v in node.get("properties", {}).items()}}
        extra = node.get("additionalProperties")
        schema["additionalProperties"] = _convert(extra) if extra else False
        return schema
    if kind == "array":
        return {"type": "array", "items": _convert(node["items"])}
    if kind == "string" and node.get("format") in ("int64", "uint64"):
        return {"type": "string", "pattern": r"^-?\d+$"}
    if kind in ("string", "integer", "number", "boolean"):
        return {"type": kind}
    raise AssertionError(f"unexpected discovery node {node}")


REQUEST_SCHEMA = jsonschema.Draft202012Validator(json_schema("RunReportRequest"))
RESPONSE_SCHEMA = jsonschema.Draft202012Validator(json_schema("RunReportResponse"))


@pytest.fixture(scope="module")
def sandbox():
    with ga4_api.serve(simulate_growth(CONFIG)) as served:
        yield served


@pytest.fixture(scope="module")
def client_requests(sandbox, tmp_path_factory):
    """The requests the real client sent during a connector run (paged: a small page size)."""
    mp = pytest.MonkeyPatch()
    for key, value in ga4_api.environment(sandbox.url).items():
        mp.setenv(key, value)
    mp.delenv("GOOGLE_APPLICATION_CREDENTIALS", raising=False)
    mp.setattr(settings, "PAGE_SIZE", 25)
    try:
        db = tmp_path_factory.mktemp("ga4-contract") / "warehouse.duckdb"
        result = load_source(ga4.SPEC, IngestRequest(progress=lambda _: None), db)
        assert result.status == "succeeded", result.error
    finally:
        mp.undo()
    return list(sandbox.requests)


def post(sandbox, body: dict, query: str = "?$alt=json;enum-encoding=int", property_id: str = ga4_api.PROPERTY_ID):
    return requests.post(f"{sandbox.url}/v1beta/properties/{property_id}:runReport{query}", json=body, timeout=10)


def test_the_client_sends_what_google_publishes(client_requests):
    method = SPEC["methods"]["runReport"]
    assert method["httpMethod"] == "POST"
    path = "/" + method["flatPath"].replace("{propertiesId}", r"(\d+)")
    assert len(client_requests) > 3  # several pages
    for request in client_requests:
        assert request.method == method["httpMethod"]
        assert re.fullmatch(re.escape(path).replace(re.escape(r"(\d+)"), r"(\d+)"), request.path)
        REQUEST_SCHEMA.validate(request.json())
    dimension_sets = {tuple(d["name"] for d in r.json()["dimensions"]) for r in client_requests}
    assert dimension_sets == {("date", "sessionDefaultChannelGroup"), ("date", "sessionDefaultChannelGroup",
                                                                        "eventName"), ("date",)}


def test_the_sandbox_answers_what_google_publishes(sandbox, client_requests):
    for request in client_requests:
        answer = post(sandbox, request.json())
        assert answer.status_code == 200
        body = answer.json()
        RESPONSE_SCHEMA.validate(body)
        assert ("rows" in body) == ("rowCount" in body)
        for row in body.get("rows", []):
            date_value = row["dimensionValues"][0]["value"]
            assert re.fullmatch(r"20\d{6}", date_value)
            assert all(isinstance(v["value"], str) for v in row["metricValues"])
        assert {h["type"] for h in body["metricHeaders"]} <= {1, 2, 4}  # enum numbers, as asked
        assert body["propertyQuota"]["tokensPerDay"]["remaining"] < 200_000


def test_paging_counts_all_rows_and_an_empty_report_omits_rows(sandbox, client_requests):
    body = client_requests[0].json()
    first = post(sandbox, {**body, "limit": "10"}).json()
    rest = post(sandbox, {**body, "limit": "1000", "offset": "10"}).json()
    RESPONSE_SCHEMA.validate(first)
    assert len(first["rows"]) == 10 and first["rowCount"] == rest["rowCount"] == 10 + len(rest["rows"])
    empty = post(sandbox, {**body, "dateRanges": [{"startDate": "2019-01-01", "endDate": "2019-01-31"}]}).json()
    RESPONSE_SCHEMA.validate(empty)
    assert "rows" not in empty and "rowCount" not in empty and empty["metricHeaders"]


def test_enum_names_without_int_encoding_and_relative_dates(sandbox):
    body = {"dimensions": [{"name": "date"}], "metrics": [{"name": "activeUsers"}, {"name": "sessions"}],
            "dateRanges": [{"startDate": "30daysAgo", "endDate": "yesterday"}]}
    answer = post(sandbox, body, query="").json()
    RESPONSE_SCHEMA.validate(answer)
    assert [h["type"] for h in answer["metricHeaders"]] == ["TYPE_INTEGER", "TYPE_INTEGER"]
    days = [r["dimensionValues"][0]["value"] for r in answer["rows"]]
    assert days[0] == f"{CONFIG.start:%Y%m%d}" and days[-1] == f"{CONFIG.end:%Y%m%d}"
    assert "propertyQuota" not in answer


@pytest.mark.parametrize("status, setup", [
    (403, lambda sandbox: post(sandbox, {"metrics": [{"name": "sessions"}]}, property_id="1")),
    (400, lambda sandbox: post(sandbox, {"dimensions": [{"name": "date"}], "metrics": [{"name": "bounceRatio"}]})),
    (429, lambda sandbox: sandbox.inject("429") or post(sandbox, {"metrics": [{"name": "sessions"}]})),
    (503, lambda sandbox: sandbox.inject("503") or post(sandbox, {"metrics": [{"name": "sessions"}]})),
])
def test_errors_have_googles_shape(sandbox, status, setup):
    answer = setup(sandbox)
    assert answer.status_code == status
    error = answer.json()["error"]
    names = {400: "INVALID_ARGUMENT", 403: "PERMISSION_DENIED", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE"}
    assert set(error) == {"code", "message", "status"}
    assert (error["code"], error["status"]) == (status, names[status]) and error["message"]


def test_a_bearer_token_is_checked(sandbox):
    from google.analytics.data_v1beta import BetaAnalyticsDataClient
    from google.analytics.data_v1beta.types import DateRange, Dimension, Metric, RunReportRequest
    from google.oauth2.credentials import Credentials

    def client(token):
        return BetaAnalyticsDataClient(credentials=Credentials(token), transport="rest",
                                       client_options={"api_endpoint": sandbox.url})

    request = RunReportRequest(property=f"properties/{ga4_api.PROPERTY_ID}", dimensions=[Dimension(name="date")],
                               metrics=[Metric(name="sessions")],
                               date_ranges=[DateRange(start_date=f"{CONFIG.start}", end_date=f"{CONFIG.end}")])
    assert client(ga4_api.TOKEN).run_report(request).row_count == 14
    assert sandbox.requests[-1].headers["authorization"] == f"Bearer {ga4_api.TOKEN}"
    from google.auth.exceptions import RefreshError

    with pytest.raises(RefreshError):  # 401, then the client tries to refresh a token it cannot refresh
        client("ya29.someone-else").run_report(request)


def test_the_converted_schema_catches_drift(sandbox, client_requests):
    body = post(sandbox, client_requests[0].json()).json()
    drifted = [
        {**body, "row_count": body["rowCount"]},  # snake_case
        {**body, "rows": [{**body["rows"][0], "metricValues": [{"value": 12}]}]},  # a number, not a string
        {**body, "rowCount": str(body["rowCount"])},  # int32 is a JSON number
    ]
    for answer in drifted:
        assert not RESPONSE_SCHEMA.is_valid(answer)
    assert not REQUEST_SCHEMA.is_valid({**client_requests[0].json(), "limit": 10})  # int64 travels as a string
