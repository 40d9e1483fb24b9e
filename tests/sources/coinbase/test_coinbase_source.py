"""The Coinbase Commerce connector against its sandbox: exactly the simulated charges and statuses."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import date

import duckdb
import pytest

from statex_bi.demo.apis import coinbase as coinbase_api
from statex_bi.demo.world import World, WorldConfig
from statex_bi.ingest import load_source, pipeline_for
from statex_bi.sources import coinbase as coinbase_source
from statex_bi.sources.coinbase import helpers, settings
from statex_bi.sources.common import pseudonymise
from statex_bi.sources.contract import IngestRequest

CONFIG = WorldConfig(date(2025, 1, 6), date(2025, 3, 2), seed=3, scale=3.0)  # eight weeks
REQUEST = {"start": CONFIG.start, "end": CONFIG.end}
CHARGES = settings.CHARGES_PATH


@pytest.fixture(scope="module")
def world() -> World:
    return World(CONFIG)


@pytest.fixture
def charges(world) -> list[dict]:
    """The sandbox's charges; a test may spoil or change some before or while serving them."""
    return coinbase_api.render(world.payments)


@pytest.fixture
def sandbox(charges, monkeypatch):
    with coinbase_api.serve(charges) as served:
        for key, value in coinbase_api.environment(served.url).items():
            monkeypatch.setenv(key, value)
        yield served


def load(db, messages: list[str] | None = None):
    log = messages if messages is not None else []
    return load_source(coinbase_source.SPEC, IngestRequest(**REQUEST, progress=log.append), db)


def rows(db, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def expected_totals(world) -> set[tuple]:
    totals = defaultdict(lambda: [0, 0])
    for c in world.payments.coinbase_charges:
        totals[(c.status, c.currency)][0] += 1
        totals[(c.status, c.currency)][1] += c.amount
    return {(*key, *values) for key, values in totals.items()}


def loaded_totals(db) -> set[tuple]:
    return set(rows(db, "SELECT status, currency, count(*), sum(amount) FROM raw_coinbase.charges GROUP BY ALL"))


def listings(sandbox) -> list:
    return [r for r in sandbox.requests if r.path == CHARGES]


def test_loads_exactly_the_simulated_charges(world, sandbox, db_file):
    messages: list[str] = []
    result = load(db_file, messages)
    assert result.status == "succeeded", result.error
    expected = expected_totals(world)
    assert {status for status, *_ in expected} == {"COMPLETED", "EXPIRED"}
    assert loaded_totals(db_file) == expected

    people = {c.customer_key: c for c in world.growth.customers}
    loaded = {r[0]: r[1:] for r in rows(db_file, "SELECT id, code, created_at, completed_at, customer_id, "
                                                  "metadata_json FROM raw_coinbase.charges")}
    assert loaded == {
        c.id: (c.code, c.created_at, dict(c.timeline).get("COMPLETED"), pseudonymise(people[c.customer_key].email),
               json.dumps({k: c.metadata[k] for k in ("channel", "order_id", "prototype_id")}, sort_keys=True))
        for c in world.payments.coinbase_charges
    }
    texts = {v for row in rows(db_file, "SELECT * FROM raw_coinbase.charges") for v in row if isinstance(v, str)}
    assert not any(p.email in text or p.name in text for text in texts for p in people.values())
    assert all(r.headers["x-cc-version"] == settings.API_VERSION for r in listings(sandbox))
    assert any(m.startswith("coinbase: charges page 1:") for m in messages)


def test_follows_next_uri_through_small_pages(world, sandbox, db_file, monkeypatch):
    monkeypatch.setattr(settings, "PAGE_SIZE", 4)
    assert load(db_file).status == "succeeded"
    assert loaded_totals(db_file) == expected_totals(world)
    newest_first = sorted(world.payments.coinbase_charges, key=lambda c: (c.created_at, c.id), reverse=True)
    pages = listings(sandbox)
    assert len(pages) == math.ceil(len(newest_first) / 4) > 3
    cursors = [newest_first[4 * i - 1].id for i in range(1, len(pages))]
    assert [r.arg("starting_after") for r in pages] == [None, *cursors]


def test_a_rerun_adds_nothing_and_stops_paging_past_the_lookback(world, sandbox, db_file, monkeypatch):
    monkeypatch.setattr(settings, "PAGE_SIZE", 4)
    assert load(db_file).status == "succeeded"
    first_run = len(listings(sandbox))
    assert load(db_file).status == "succeeded"
    assert loaded_totals(db_file) == expected_totals(world)
    newest = max(c.created_at for c in world.payments.coinbase_charges)
    in_lookback = [c for c in world.payments.coinbase_charges if c.created_at >= newest - settings.LOOKBACK]
    # Pages up to the first charge older than the lookback window, and no further.
    assert len(listings(sandbox)) - first_run == len(in_lookback) // 4 + 1 < first_run


def test_a_charge_that_expires_after_the_first_load_is_updated_by_the_next(charges, sandbox, db_file):
    newest = max(charges, key=lambda c: c["created_at"])
    newest["timeline"] = newest["timeline"][:1]
    assert load(db_file).status == "succeeded"
    assert rows(db_file, f"SELECT status FROM raw_coinbase.charges WHERE id = '{newest['id']}'") == [("NEW",)]
    newest["timeline"].append({"status": "EXPIRED", "time": newest["expires_at"]})
    assert load(db_file).status == "succeeded"
    assert rows(db_file, f"SELECT status FROM raw_coinbase.charges WHERE id = '{newest['id']}'") == [("EXPIRED",)]


@pytest.mark.parametrize("faults", [("429", "500", "truncated"), ("429-bare", "503", "slow")])
def test_survives_transient_faults(world, sandbox, db_file, faults, monkeypatch):
    monkeypatch.setattr(settings, "RETRY_BACKOFF_SECONDS", 0.05)  # Retry-After still asks for 1 s
    for fault in faults:
        sandbox.inject(fault, path=CHARGES, delay=0.3)
    result = load(db_file)
    assert result.status == "succeeded", result.error
    assert loaded_totals(db_file) == expected_totals(world)
    assert len(listings(sandbox)) == 1 + len([f for f in faults if f != "slow"])


def test_a_persistent_fault_fails_clearly_and_keeps_earlier_data_and_cursor(world, sandbox, db_file, monkeypatch):
    assert load(db_file).status == "succeeded"
    state = pipeline_for(coinbase_source.SPEC, db_file).state["sources"]["coinbase"]["resources"]
    monkeypatch.setattr(settings, "RETRY_BACKOFF_SECONDS", 0.01)
    sandbox.inject("500", times=100, path=CHARGES)
    result = load(db_file)
    assert result.status == "failed"
    assert result.error == "coinbase: /charges: HTTP 500: Internal server error"
    assert loaded_totals(db_file) == expected_totals(world)
    assert pipeline_for(coinbase_source.SPEC, db_file).state["sources"]["coinbase"]["resources"] == state


def test_a_load_that_fails_after_its_first_page_loads_nothing(world, sandbox, db_file, monkeypatch):
    monkeypatch.setattr(settings, "PAGE_SIZE", 5)
    monkeypatch.setattr(settings, "RETRY_BACKOFF_SECONDS", 0.01)

    def fail_after_first_page(message: str) -> None:
        if message.startswith("coinbase: charges page 1:"):
            sandbox.inject("503", times=100, path=CHARGES)

    result = load_source(coinbase_source.SPEC, IngestRequest(**REQUEST, progress=fail_after_first_page), db_file)
    assert result.status == "failed" and "HTTP 503" in result.error
    assert rows(db_file, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw_coinbase' "
                         "AND table_name = 'charges'") == [(0,)]


def test_bad_records_are_quarantined_and_the_rest_loads(world, charges, sandbox, db_file):
    charges[0]["pricing"]["local"]["amount"] = "ninety"
    del charges[1]["id"]
    assert load(db_file).status == "succeeded"
    quarantine = rows(db_file, "SELECT endpoint, record_id, field, error FROM raw_coinbase.quarantine ORDER BY field")
    assert quarantine == [
        (CHARGES, None, "id", "coinbase: /charges: record (no id): field 'id': missing or not a string: None"),
        (CHARGES, charges[0]["id"], "pricing.local", f"coinbase: /charges: record {charges[0]['id']}: "
                                                     "field 'pricing.local': expected a decimal string, got 'ninety'"),
    ]
    assert rows(db_file, "SELECT count(*) FROM raw_coinbase.charges") == [(len(world.payments.coinbase_charges) - 2,)]


def test_a_refused_key_is_reported_with_the_variable_to_check(sandbox, db_file, monkeypatch):
    monkeypatch.setenv("COINBASE_COMMERCE_API_KEY", "not-a-key")
    result = load(db_file)
    assert result.error == "coinbase: /charges: HTTP 401: No such API key. (check $COINBASE_COMMERCE_API_KEY)"


@pytest.mark.parametrize(("price", "expected"), [
    ({"amount": "990.00", "currency": "EUR"}, (99000, "EUR")),
    ({"amount": "0.5", "currency": "USD"}, (50, "USD")),
    ({"amount": "1500", "currency": "JPY"}, (1500, "JPY")),
])
def test_prices_become_exact_minor_units(price, expected):
    assert helpers.to_minor(price) == expected


@pytest.mark.parametrize("price", [{"amount": "9.999", "currency": "EUR"}, {"amount": "1.5", "currency": "JPY"},
                                   {"amount": 9.99, "currency": "EUR"}, {"amount": "1.00", "currency": "BTC"}])
def test_prices_that_are_not_exact_are_refused(price):
    with pytest.raises(ValueError):
        helpers.to_minor(price)
