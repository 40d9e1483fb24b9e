"""Contract: the Coinbase Commerce sandbox has the shape of Coinbase's own sample payloads.

Coinbase publishes no schema for Commerce; tests/specs/coinbase/fixture_*.json are the sample
responses of coinbase/coinbase-commerce-node's test suite (2021), copied unchanged. The sandbox's
charges and list envelopes must carry every field those samples carry, with the same JSON types and
formats (it may carry more: `pricing` for fixed-price charges, `warnings`), and its pagination must
behave as the samples' `next_uri` / `cursor_range` describe.
"""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from statex_bi.demo.apis import coinbase as coinbase_api
from statex_bi.demo.world import World, WorldConfig
from statex_bi.exceptions import RecordError
from statex_bi.sources.coinbase import helpers, settings
from statex_bi.sources.common import pseudonymise

SPECS = Path(__file__).parents[2] / "specs" / "coinbase"
CONFIG = WorldConfig(date(2025, 1, 6), date(2025, 2, 2), seed=3, scale=3.0)
TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")
FREE_FORM = {"metadata"}  # the shop's own keys: only "an object" is comparable
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def fixture(name: str) -> dict:
    return json.loads((SPECS / f"fixture_{name}.json").read_text())


@pytest.fixture(scope="module")
def world() -> World:
    return World(CONFIG)


@pytest.fixture
def sandbox(world):
    with coinbase_api.build(world) as box:
        yield box


def _get(url: str, params: dict | None = None, key: str = coinbase_api.API_KEY) -> requests.Response:
    return requests.get(url, params=params, timeout=10,
                        headers={"X-CC-Api-Key": key, "X-CC-Version": settings.API_VERSION})


def assert_same_shape(sample, ours, where: str = "") -> None:
    """Every key of `sample` is in `ours` with a value of the same JSON type (nulls match anything)."""
    if sample is None or ours is None:
        return
    if isinstance(sample, dict):
        assert isinstance(ours, dict), where
        missing = set(sample) - set(ours)
        assert not missing, f"{where}: missing {sorted(missing)}"
        for key, value in sample.items():
            if key in FREE_FORM:
                assert isinstance(ours[key], type(value)), f"{where}.{key}"
            else:
                assert_same_shape(value, ours[key], f"{where}.{key}")
    elif isinstance(sample, list):
        assert isinstance(ours, list), where
        for item in ours if sample else []:
            assert_same_shape(sample[0], item, f"{where}[]")
    else:
        assert type(ours) is type(sample), f"{where}: {ours!r} is not like {sample!r}"
        if isinstance(sample, str) and TIME.match(sample):
            assert TIME.match(ours), f"{where}: {ours!r}"


def test_a_list_page_has_the_shape_of_coinbases_samples(sandbox):
    response = _get(f"{sandbox.url}/charges", {"limit": 2})
    assert response.status_code == 200
    page = response.json()
    sample = fixture("firstPageChargeList")
    assert_same_shape({**sample, "data": []}, page, "list")
    assert set(page["pagination"]) == set(sample["pagination"])
    for charge in page["data"]:
        assert_same_shape(sample["data"][0], charge, "charge")
        assert UUID.match(charge["id"]) and re.fullmatch(r"[0-9A-Z]{8}", charge["code"])
        assert charge["hosted_url"] == f"https://commerce.coinbase.com/charges/{charge['code']}"
        assert charge["pricing"]["local"]["amount"] == f"{float(charge['pricing']['local']['amount']):.2f}"
        assert all(set(step) == {"status", "time"} for step in charge["timeline"])
    # next_uri carries the same parameters as Coinbase's, and cursor_range spans the page.
    assert set(parse_qs(urlsplit(page["pagination"]["next_uri"]).query)) == set(
        parse_qs(urlsplit(sample["pagination"]["next_uri"]).query))
    assert page["pagination"]["cursor_range"] == [page["data"][0]["id"], page["data"][-1]["id"]]
    assert page["pagination"]["yielded"] == 2 and page["pagination"]["previous_uri"] is None


def test_one_charge_has_the_shape_of_coinbases_sample(sandbox, world):
    code = world.payments.coinbase_charges[0].code
    response = _get(f"{sandbox.url}/charges/{code}")
    assert response.status_code == 200
    assert_same_shape(fixture("charge"), response.json(), "show")


def test_next_uri_walks_every_charge_once_and_previous_uri_walks_back(sandbox, world):
    seen, url, pages = [], f"{sandbox.url}/charges?limit=3", []
    while url:
        page = _get(url).json()
        pages.append(page)
        seen += [c["id"] for c in page["data"]]
        url = page["pagination"]["next_uri"]
    newest_first = sorted(world.payments.coinbase_charges, key=lambda c: (c.created_at, c.id), reverse=True)
    assert seen == [c.id for c in newest_first]
    assert all(p["pagination"]["total"] == len(seen) for p in pages)
    assert_same_shape({**fixture("secondPageChargeList"), "data": []}, pages[1], "second page")
    back = _get(pages[1]["pagination"]["previous_uri"]).json()
    assert [c["id"] for c in back["data"]] == [c["id"] for c in pages[0]["data"]]


def test_errors_and_a_missing_version_header(sandbox):
    denied = _get(f"{sandbox.url}/charges", key="nope")
    assert denied.status_code == 401 and denied.json() == {"error": {"type": "authorization_error",
                                                                     "message": "No such API key."}}
    unversioned = requests.get(f"{sandbox.url}/charges", headers={"X-CC-Api-Key": coinbase_api.API_KEY}, timeout=10)
    assert unversioned.status_code == 200 and unversioned.json()["warnings"]
    assert _get(f"{sandbox.url}/charges", {"limit": 0}).json()["error"]["type"] == "invalid_request"


def test_the_connector_reads_coinbases_samples_and_quarantines_priceless_charges():
    # The samples are `no_price` charges (pay what you want): no amount to load, so they are quarantined.
    for charge in fixture("firstPageChargeList")["data"]:
        with pytest.raises(RecordError, match="field 'pricing.local'"):
            helpers.charge_row(charge)
    priced = {**fixture("charge")["data"], "pricing": {"local": {"amount": "100.00", "currency": "USD"}}}
    row = helpers.charge_row(priced)
    assert (row["status"], row["amount"], row["currency"], row["completed_at"]) == ("EXPIRED", 10000, "USD", None)
    assert row["customer_id"] == pseudonymise("id_1005")
    assert row["metadata_json"] == "{}"  # customer_id and customer_name are personal: pseudonymised, not kept
