"""The Stripe connector against the Stripe sandbox: exactly the simulated charges, refunds and fees."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import UTC, date

import duckdb
import pytest

from statex_bi.demo.apis import stripe as stripe_api
from statex_bi.demo.world import World, WorldConfig
from statex_bi.ingest import load_source, pipeline_for
from statex_bi.sources import stripe as stripe_source
from statex_bi.sources.common import pseudonymise
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.stripe import settings

CONFIG = WorldConfig(date(2025, 1, 6), date(2025, 3, 2), seed=3, scale=2.0)  # eight weeks
REQUEST = {"start": CONFIG.start, "end": CONFIG.end}


@pytest.fixture(scope="module")
def world() -> World:
    return World(CONFIG)


@pytest.fixture
def objects(world) -> dict[str, list[dict]]:
    """The sandbox's JSON objects; a test may spoil some before serving them."""
    return stripe_api.render(world.payments, world.growth.customers)


@pytest.fixture
def sandbox(objects, monkeypatch):
    with stripe_api.serve(objects) as served:
        for key, value in stripe_api.environment(served.url).items():
            monkeypatch.setenv(key, value)
        yield served


def load(db, messages: list[str] | None = None):
    log = messages if messages is not None else []
    return load_source(stripe_source.SPEC, IngestRequest(**REQUEST, progress=log.append), db)


def rows(db, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def expected_totals(world) -> dict[str, set[tuple]]:
    """Counts and minor-unit sums per status / type and currency, straight from the simulation."""
    charges, refunds, txns = defaultdict(lambda: [0, 0, 0]), defaultdict(lambda: [0, 0]), defaultdict(lambda: [0, 0, 0])
    for c in world.payments.stripe_charges:
        totals = charges[(c.status, c.currency)]
        totals[0], totals[1], totals[2] = totals[0] + 1, totals[1] + c.amount, totals[2] + c.amount_refunded
    for r in world.payments.stripe_refunds:
        refunds[r.currency][0] += 1
        refunds[r.currency][1] += r.amount
    for t in world.payments.stripe_balance_transactions:
        totals = txns[(t.type, t.currency)]
        totals[0], totals[1], totals[2] = totals[0] + 1, totals[1] + t.fee, totals[2] + t.net
    return {
        "charges": {(*key, *values) for key, values in charges.items()},
        "refunds": {(key, *values) for key, values in refunds.items()},
        "balance_transactions": {(*key, *values) for key, values in txns.items()},
    }


LOADED_TOTALS = {
    "charges": "SELECT status, currency, count(*), sum(amount), sum(amount_refunded) FROM raw_stripe.charges "
    "GROUP BY ALL",
    "refunds": "SELECT currency, count(*), sum(amount) FROM raw_stripe.refunds GROUP BY ALL",
    "balance_transactions": "SELECT type, currency, count(*), sum(fee), sum(net) FROM raw_stripe.balance_transactions "
    "GROUP BY ALL",
}


def loaded_totals(db) -> dict[str, set[tuple]]:
    return {table: set(rows(db, sql)) for table, sql in LOADED_TOTALS.items()}


def test_loads_exactly_the_simulated_charges_refunds_and_fees(world, sandbox, db_file):
    messages: list[str] = []
    result = load(db_file, messages)
    assert result.status == "succeeded", result.error
    expected = expected_totals(world)
    assert {status for status, *_ in expected["charges"]} == {"succeeded", "failed"}
    assert expected["refunds"], "the simulated period should hold refunds"
    assert loaded_totals(db_file) == expected
    assert any(m.startswith("stripe: charges page 1:") for m in messages)

    # Every charge keeps its Stripe fields; the customer is the pseudonymised billing e-mail.
    emails = {c.customer_key: c.email for c in world.growth.customers}
    loaded = {r[0]: r[1:] for r in rows(db_file, "SELECT id, created, failure_code, customer_id, payment_intent, "
                                                  "balance_transaction, metadata_json, paid, refunded "
                                                  "FROM raw_stripe.charges")}
    assert set(loaded) == {c.id for c in world.payments.stripe_charges}
    for charge in world.payments.stripe_charges:
        assert loaded[charge.id] == (
            charge.created, charge.failure_code, pseudonymise(emails[charge.customer_key]), charge.payment_intent,
            charge.balance_transaction, json.dumps(charge.metadata, sort_keys=True), charge.status == "succeeded",
            charge.refunded,
        )
    refunds = set(rows(db_file, "SELECT id, charge, created, status, reason FROM raw_stripe.refunds"))
    assert refunds == {(r.id, r.charge, r.created, r.status, r.reason) for r in world.payments.stripe_refunds}
    assert rows(db_file, "SELECT count(*) FROM raw_stripe.balance_transactions WHERE net <> amount - fee") == [(0,)]

    # No e-mail or name reaches the warehouse, in any text column.
    people = [value for c in world.growth.customers for value in (c.email, c.name)]
    with duckdb.connect(str(db_file), read_only=True) as con:
        columns = con.execute("SELECT table_name, column_name FROM information_schema.columns "
                              "WHERE table_schema = 'raw_stripe' AND data_type = 'VARCHAR' "
                              "AND table_name NOT LIKE '\\_dlt%' ESCAPE '\\'").fetchall()
        texts = {value for table, column in columns
                 for (value,) in con.execute(f'SELECT "{column}" FROM raw_stripe.{table}').fetchall()}
    assert not any(person in text for text in texts if text for person in people)


def test_a_rerun_adds_nothing_and_only_asks_for_the_lookback_window(world, sandbox, db_file):
    assert load(db_file).status == "succeeded"
    before = loaded_totals(db_file)
    served = len(sandbox.requests)
    assert load(db_file).status == "succeeded"
    assert loaded_totals(db_file) == before
    newest = max(c.created for c in world.payments.stripe_charges)
    window = int(newest.replace(tzinfo=UTC).timestamp() - settings.LOOKBACK.total_seconds())
    rerun = [r for r in sandbox.requests[served:] if r.path == "/v1/charges"]
    assert rerun and all(r.arg("created[gte]") == str(window) for r in rerun)


def test_a_charge_refunded_after_the_first_load_is_updated_by_the_next(world, objects, sandbox, db_file):
    assert load(db_file).status == "succeeded"
    newest_kept = max((c for c in objects["charges"] if c["status"] == "succeeded" and not c["refunded"]),
                      key=lambda c: c["created"])
    newest_kept.update(amount_refunded=newest_kept["amount"], refunded=True)
    assert load(db_file).status == "succeeded"
    assert rows(db_file, f"SELECT amount_refunded, refunded FROM raw_stripe.charges WHERE id = '{newest_kept['id']}'") \
        == [(newest_kept["amount"], True)]


def test_pages_through_small_pages(world, sandbox, db_file, monkeypatch):
    monkeypatch.setattr(settings, "PAGE_SIZE", 7)
    assert load(db_file).status == "succeeded"
    assert loaded_totals(db_file) == expected_totals(world)
    pages = [r for r in sandbox.requests if r.path == "/v1/charges"]
    assert len(pages) == math.ceil(len(world.payments.stripe_charges) / 7) > 3
    assert [r.arg("starting_after") for r in pages][1:] == [
        sorted(world.payments.stripe_charges, key=lambda c: (c.created, c.id), reverse=True)[7 * i - 1].id
        for i in range(1, len(pages))
    ]


@pytest.mark.parametrize("faults", [("429", "500", "truncated"), ("429-bare", "503", "slow")])
def test_survives_transient_faults(world, sandbox, db_file, faults):
    for fault, endpoint in zip(faults, settings.ENDPOINTS, strict=True):
        sandbox.inject(fault, times=1, path=f"/v1/{endpoint}", delay=0.3)
    result = load(db_file)
    assert result.status == "succeeded", result.error
    assert loaded_totals(db_file) == expected_totals(world)
    for fault, endpoint in zip(faults, settings.ENDPOINTS, strict=True):
        objects = len(getattr(world.payments, f"stripe_{endpoint}"))
        pages = math.ceil(objects / settings.PAGE_SIZE)
        retried = 0 if fault == "slow" else 1
        assert len([r for r in sandbox.requests if r.path == f"/v1/{endpoint}"]) == pages + retried, fault


def test_a_persistent_fault_fails_clearly_and_keeps_earlier_data_and_cursor(world, sandbox, db_file, monkeypatch):
    assert load(db_file).status == "succeeded"
    monkeypatch.setattr(settings, "SDK_NETWORK_RETRIES", 0)  # the SDK's own retry sleeps add nothing here
    before = loaded_totals(db_file)
    state = pipeline_for(stripe_source.SPEC, db_file).state["sources"]["stripe"]["resources"]
    sandbox.inject("503", times=100, path="/v1/refunds")
    result = load(db_file)
    assert result.status == "failed"
    assert result.error.startswith("stripe: /v1/refunds: APIError: HTTP 503")
    assert loaded_totals(db_file) == before
    assert pipeline_for(stripe_source.SPEC, db_file).state["sources"]["stripe"]["resources"] == state
    assert rows(db_file, "SELECT status, error FROM ops.source_loads ORDER BY started_at DESC LIMIT 1") == [
        ("failed", result.error)]


def test_a_load_that_fails_after_its_first_page_loads_nothing(world, sandbox, db_file, monkeypatch):
    monkeypatch.setattr(settings, "PAGE_SIZE", 10)
    monkeypatch.setattr(settings, "SDK_NETWORK_RETRIES", 0)
    messages: list[str] = []

    def fail_after_first_page(message: str) -> None:
        messages.append(message)
        if message.startswith("stripe: charges page 1:"):
            sandbox.inject("500", times=100, path="/v1/charges")

    result = load_source(stripe_source.SPEC, IngestRequest(**REQUEST, progress=fail_after_first_page), db_file)
    assert result.status == "failed" and "/v1/charges" in result.error
    assert rows(db_file, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw_stripe' "
                         "AND table_name = 'charges'") == [(0,)]
    sandbox.faults.clear()
    assert load(db_file).status == "succeeded"
    assert loaded_totals(db_file) == expected_totals(world)


def test_bad_records_are_quarantined_and_the_rest_loads(world, objects, sandbox, db_file):
    spoiled_charge = next(c for c in objects["charges"] if c["status"] == "succeeded")
    spoiled_charge["amount"] = "49.00"
    spoiled_txn = objects["balance_transactions"][0]
    spoiled_txn["currency"] = "euro"
    messages: list[str] = []
    assert load(db_file, messages).status == "succeeded"
    quarantine = rows(db_file, "SELECT source, endpoint, record_id, field, error FROM raw_stripe.quarantine "
                               "ORDER BY endpoint")
    assert [q[:4] for q in quarantine] == [
        ("stripe", "/v1/balance_transactions", spoiled_txn["id"], "currency"),
        ("stripe", "/v1/charges", spoiled_charge["id"], "amount"),
    ]
    assert quarantine[1][4] == (f"stripe: /v1/charges: record {spoiled_charge['id']}: field 'amount': "
                                "expected an integer amount in minor units, got '49.00'")
    assert any("quarantined" in m and spoiled_charge["id"] in m for m in messages)
    assert rows(db_file, "SELECT count(*) FROM raw_stripe.charges") == [(len(world.payments.stripe_charges) - 1,)]
    # A re-run quarantines them again into the same rows, not twice.
    assert load(db_file).status == "succeeded"
    assert rows(db_file, "SELECT count(*) FROM raw_stripe.quarantine") == [(2,)]


def test_an_endpoint_without_objects_still_gets_its_empty_table(objects, db_file, monkeypatch):
    with stripe_api.serve({**objects, "refunds": []}) as served:
        monkeypatch.setenv("STRIPE_API_BASE", served.url)
        monkeypatch.setenv("STRIPE_API_KEY", stripe_api.API_KEY)
        assert load(db_file).status == "succeeded"
    assert rows(db_file, "SELECT count(*) FROM raw_stripe.refunds") == [(0,)]
    assert [name for name, *_ in rows(db_file, "DESCRIBE raw_stripe.refunds")][:7] == [
        "id", "charge", "created", "amount", "currency", "status", "reason"]


def test_a_refused_key_is_reported_with_the_variable_to_check(sandbox, db_file, monkeypatch):
    monkeypatch.setenv("STRIPE_API_KEY", "sk_test_wrong")
    result = load(db_file)
    assert result.status == "failed"
    assert "the API key was refused (check $STRIPE_API_KEY)" in result.error
    assert "sk_test_wrong" not in result.error


def test_a_charge_dated_2100_is_quarantined_and_does_not_move_the_cursor(world, objects, db_file, monkeypatch):
    """Before: the charge loaded, moved the cursor to 2100 and every later charge was skipped."""
    future = next(c for c in objects["charges"] if c["status"] == "succeeded")
    future["created"] = 4_102_444_800  # 2100-01-01
    request = IngestRequest(start=CONFIG.start, progress=lambda _: None)  # no --end: the cursor decides
    with stripe_api.serve(objects) as served:
        for key, value in stripe_api.environment(served.url).items():
            monkeypatch.setenv(key, value)
        assert load_source(stripe_source.SPEC, request, db_file).status == "succeeded"
    assert rows(db_file, "SELECT record_id, field FROM raw_stripe.quarantine") == [(future["id"], "created")]
    assert "more than a day in the future" in rows(db_file, "SELECT error FROM raw_stripe.quarantine")[0][0]
    assert rows(db_file, f"SELECT count(*) FROM raw_stripe.charges WHERE id = '{future['id']}'") == [(0,)]

    # A charge made after the newest good one is loaded by the next run.
    newest = max((c for c in objects["charges"] if c is not future), key=lambda c: c["created"])
    later = {**newest, "id": "ch_3LaterThanEverything0001", "created": newest["created"] + 3600}
    with stripe_api.serve({**objects, "charges": [*objects["charges"], later]}) as served:
        monkeypatch.setenv("STRIPE_API_BASE", served.url)
        second = load_source(stripe_source.SPEC, request, db_file)
        assert second.status == "succeeded", second.error
    assert rows(db_file, f"SELECT count(*) FROM raw_stripe.charges WHERE id = '{later['id']}'") == [(1,)]
    assert rows(db_file, "SELECT rows_quarantined FROM ops.source_loads ORDER BY started_at") == [(1,), (1,)]


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("created", 915_148_800, "before 2000-01-01"),  # 1999-01-01
    ("amount", 0, "above zero"),
    ("amount", -4900, "above zero"),
    ("amount_refunded", 10**9, "refunded 1000000000 of a charge"),
    ("currency", "xyz", "unknown currency 'XYZ'"),
])
def test_implausible_charges_are_quarantined_with_the_reason(world, objects, sandbox, db_file, field, value, reason):
    spoiled = next(c for c in objects["charges"] if c["status"] == "succeeded")
    spoiled[field] = value
    everything = IngestRequest(progress=lambda _: None)  # no window: the sandbox serves every charge
    assert load_source(stripe_source.SPEC, everything, db_file).status == "succeeded"
    assert [(r, f) for r, f, _ in rows(db_file, "SELECT record_id, field, error FROM raw_stripe.quarantine")] == [
        (spoiled["id"], field)]
    assert reason in rows(db_file, "SELECT error FROM raw_stripe.quarantine")[0][0]
    assert rows(db_file, "SELECT count(*) FROM raw_stripe.charges") == [(len(world.payments.stripe_charges) - 1,)]


def test_a_duplicate_id_with_other_content_is_quarantined(world, objects, db_file, monkeypatch):
    original = objects["balance_transactions"][0]
    objects["balance_transactions"].append({**original, "fee": original["fee"] + 1, "net": original["net"] - 1})
    with stripe_api.serve(objects) as served:
        for key, value in stripe_api.environment(served.url).items():
            monkeypatch.setenv(key, value)
        assert load(db_file).status == "succeeded"
    quarantine = rows(db_file, "SELECT endpoint, record_id, error FROM raw_stripe.quarantine")
    assert [q[:2] for q in quarantine] == [("/v1/balance_transactions", original["id"])]
    assert "came twice in this load with different content" in quarantine[0][2]


def test_a_refund_larger_than_its_charge_is_quarantined(world, objects, sandbox, db_file):
    refund = objects["refunds"][0]
    charge = next(c for c in objects["charges"] if c["id"] == refund["charge"])
    assert load(db_file).status == "succeeded"  # the charge is loaded now
    refund["amount"] = charge["amount"] + 1
    assert load(db_file).status == "succeeded"
    assert rows(db_file, "SELECT record_id, field FROM raw_stripe.quarantine") == [(refund["id"], "amount")]


def test_quarantine_payloads_and_staging_hold_no_personal_data(world, objects, sandbox, db_file):
    spoiled = next(c for c in objects["charges"] if c["status"] == "succeeded")
    spoiled["amount"] = "49.00"
    assert load(db_file).status == "succeeded"
    card = spoiled["payment_method_details"]["card"]
    person = spoiled["billing_details"]
    secrets = [person["email"], person["name"], spoiled["customer"], card["fingerprint"], f'"{card["last4"]}"']
    with duckdb.connect(str(db_file), read_only=True) as con:
        texts = [str(row) for schema in ("raw_stripe", "raw_stripe_staging")
                 for (table,) in con.execute("SELECT table_name FROM information_schema.tables "
                                             f"WHERE table_schema = '{schema}'").fetchall()
                 for row in con.execute(f"SELECT * FROM {schema}.{table}").fetchall()]
        payload = con.execute("SELECT payload FROM raw_stripe.quarantine").fetchall()[0][0]
        staged = con.execute("SELECT count(*) FROM raw_stripe_staging.quarantine").fetchall()
    assert staged == [(1,)] and spoiled["id"] in payload
    assert [s for s in secrets if any(s in text for text in texts)] == []
    assert pseudonymise(person["email"]) in payload  # pseudonymised, so still joinable
