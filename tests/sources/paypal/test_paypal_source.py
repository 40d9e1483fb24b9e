"""The PayPal connector against the PayPal sandbox: exactly the simulated transactions, in 31-day windows."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from datetime import date, datetime, timedelta
from itertools import pairwise

import duckdb
import pytest

from statex_bi.demo.apis import paypal as paypal_api
from statex_bi.demo.world import World, WorldConfig
from statex_bi.ingest import load_source, pipeline_for
from statex_bi.sources import paypal as paypal_source
from statex_bi.sources.common import pseudonymise
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.paypal import helpers, settings

CONFIG = WorldConfig(date(2025, 1, 6), date(2025, 3, 30), seed=3, scale=2.0)  # twelve weeks: three windows
REQUEST = {"start": CONFIG.start, "end": CONFIG.end}
SEARCH = settings.TRANSACTIONS_PATH


@pytest.fixture(scope="module")
def world() -> World:
    return World(CONFIG)


@pytest.fixture
def details(world) -> list[dict]:
    """The sandbox's transaction details; a test may spoil some before serving them."""
    return paypal_api.render(world.payments, world.growth.customers)


@pytest.fixture
def sandbox(world, details, monkeypatch):
    with paypal_api.serve(details, world.payments.now) as served:
        for key, value in paypal_api.environment(served.url).items():
            monkeypatch.setenv(key, value)
        yield served


def load(db, messages: list[str] | None = None):
    log = messages if messages is not None else []
    return load_source(paypal_source.SPEC, IngestRequest(**REQUEST, progress=log.append), db)


def rows(db, sql: str) -> list[tuple]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def expected_totals(world) -> set[tuple]:
    totals = defaultdict(lambda: [0, 0, 0])
    for t in world.payments.paypal_transactions:
        entry = totals[(t.event_code, t.status, t.currency)]
        entry[0], entry[1], entry[2] = entry[0] + 1, entry[1] + t.amount, entry[2] + t.fee
    return {(*key, *values) for key, values in totals.items()}


def loaded_totals(db) -> set[tuple]:
    return set(rows(db, "SELECT event_code, status, currency, count(*), sum(amount), sum(fee) "
                        "FROM raw_paypal.transactions GROUP BY ALL"))


def searches(sandbox) -> list:
    return [r for r in sandbox.requests if r.path == SEARCH]


def test_loads_exactly_the_simulated_transactions_in_31_day_windows(world, sandbox, db_file):
    messages: list[str] = []
    result = load(db_file, messages)
    assert result.status == "succeeded", result.error
    expected = expected_totals(world)
    assert {(code, status) for code, status, *_ in expected} == {("T0006", "S"), ("T0006", "D"), ("T1107", "S")}
    assert loaded_totals(db_file) == expected

    people = {c.customer_key: c for c in world.growth.customers}
    loaded = {r[0]: r[1:] for r in rows(db_file, "SELECT transaction_id, initiation_date, updated_date, customer_id, "
                                                  "invoice_id, reference_id, metadata_json "
                                                  "FROM raw_paypal.transactions")}
    assert loaded == {
        t.transaction_id: (t.initiated_at, t.updated_at, pseudonymise(people[t.customer_key].email), t.invoice_id,
                           t.reference_id, json.dumps(t.custom, sort_keys=True))
        for t in world.payments.paypal_transactions
    }
    texts = {v for row in rows(db_file, "SELECT * FROM raw_paypal.transactions") for v in row if isinstance(v, str)}
    assert not any(p.email in text or p.name in text for text in texts for p in people.values())

    # Windows of at most 31 days that tile the whole period, every one with fields=all.
    windows = [(r.arg("start_date"), r.arg("end_date")) for r in searches(sandbox)]
    bounds = [(helpers.parse_date(a), helpers.parse_date(b)) for a, b in windows]
    assert bounds[0][0] == datetime(2025, 1, 6) and bounds[-1][1] == datetime(2025, 3, 30, 23, 59, 59)
    assert len(bounds) == 3 and all(b - a <= timedelta(days=31) for a, b in bounds)
    assert all(later[0] - earlier[1] == timedelta(seconds=1) for earlier, later in pairwise(bounds))
    assert {r.arg("fields") for r in searches(sandbox)} == {"all"}
    assert len([r for r in sandbox.requests if r.path == settings.TOKEN_PATH]) == 1  # the token is reused
    assert any(m.startswith("paypal: transactions 2025-01-06..2025-02-05 page 1:") for m in messages)


def test_a_rerun_adds_nothing_and_starts_three_days_before_the_newest_transaction(world, sandbox, db_file):
    assert load(db_file).status == "succeeded"
    served = len(sandbox.requests)
    assert load(db_file).status == "succeeded"
    assert loaded_totals(db_file) == expected_totals(world)
    newest = max(t.initiated_at for t in world.payments.paypal_transactions)
    rerun = [r for r in sandbox.requests[served:] if r.path == SEARCH]
    assert [helpers.parse_date(r.arg("start_date")) for r in rerun] == [newest - settings.LOOKBACK]


def test_pages_through_small_pages(world, sandbox, db_file, monkeypatch):
    monkeypatch.setattr(settings, "PAGE_SIZE", 5)
    assert load(db_file).status == "succeeded"
    assert loaded_totals(db_file) == expected_totals(world)
    per_window = defaultdict(list)
    for request in searches(sandbox):
        per_window[request.arg("start_date")].append(int(request.arg("page")))
    assert max(len(pages) for pages in per_window.values()) > 3
    for start, pages in per_window.items():
        in_window = [t for t in world.payments.paypal_transactions
                     if helpers.parse_date(start) <= t.initiated_at < helpers.parse_date(start) + settings.WINDOW]
        assert pages == list(range(1, max(1, math.ceil(len(in_window) / 5)) + 1))


@pytest.mark.parametrize("faults", [("429", "500", "truncated"), ("429-bare", "503", "slow")])
def test_survives_transient_faults_on_the_token_and_the_search(world, sandbox, db_file, faults, monkeypatch):
    monkeypatch.setattr(settings, "RETRY_BACKOFF_SECONDS", 0.05)  # Retry-After still asks for 1 s
    sandbox.inject(faults[1], path=settings.TOKEN_PATH)
    for fault in faults:
        sandbox.inject(fault, path=SEARCH, delay=0.3)
    result = load(db_file)
    assert result.status == "succeeded", result.error
    assert loaded_totals(db_file) == expected_totals(world)
    retried = len([f for f in faults if f != "slow"])
    assert len(searches(sandbox)) == 3 + retried


def test_a_persistent_fault_fails_clearly_and_keeps_earlier_data_and_cursor(world, sandbox, db_file, monkeypatch):
    assert load(db_file).status == "succeeded"
    state = pipeline_for(paypal_source.SPEC, db_file).state["sources"]["paypal"]["resources"]
    monkeypatch.setattr(settings, "RETRY_BACKOFF_SECONDS", 0.01)
    sandbox.inject("503", times=100, path=SEARCH)
    result = load(db_file)
    assert result.status == "failed"
    assert result.error == "paypal: /v1/reporting/transactions: HTTP 503: Service Unavailable."
    assert loaded_totals(db_file) == expected_totals(world)
    assert pipeline_for(paypal_source.SPEC, db_file).state["sources"]["paypal"]["resources"] == state


def test_a_load_that_fails_in_its_second_window_loads_nothing(world, sandbox, db_file, monkeypatch):
    monkeypatch.setattr(settings, "RETRY_BACKOFF_SECONDS", 0.01)

    def fail_after_first_window(message: str) -> None:
        if message.startswith("paypal: transactions 2025-01-06"):
            sandbox.inject("500", times=100, path=SEARCH)

    result = load_source(paypal_source.SPEC, IngestRequest(**REQUEST, progress=fail_after_first_window), db_file)
    assert result.status == "failed" and "HTTP 500" in result.error
    assert rows(db_file, "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'raw_paypal' "
                         "AND table_name = 'transactions'") == [(0,)]
    sandbox.faults.clear()
    assert load(db_file).status == "succeeded"
    assert loaded_totals(db_file) == expected_totals(world)


def test_bad_records_are_quarantined_and_the_rest_loads(world, details, sandbox, db_file):
    too_precise, unknown = details[0]["transaction_info"], details[1]["transaction_info"]
    too_precise["transaction_amount"]["value"] = "490.005"
    unknown["fee_amount"] = {"currency_code": "XBT", "value": "-1.00"}
    assert load(db_file).status == "succeeded"
    quarantine = rows(db_file, "SELECT endpoint, record_id, field, error FROM raw_paypal.quarantine ORDER BY error")
    assert sorted(quarantine) == sorted([
        (SEARCH, too_precise["transaction_id"], "transaction_amount",
         f"paypal: {SEARCH}: record {too_precise['transaction_id']}: field 'transaction_amount': "
         f"490.005 {too_precise['transaction_amount']['currency_code']} has more decimals than "
         f"{too_precise['transaction_amount']['currency_code']} allows"),
        (SEARCH, unknown["transaction_id"], "fee_amount",
         f"paypal: {SEARCH}: record {unknown['transaction_id']}: field 'fee_amount': unknown currency 'XBT'"),
    ])
    assert rows(db_file, "SELECT count(*) FROM raw_paypal.transactions") == [
        (len(world.payments.paypal_transactions) - 2,)]


def test_refused_credentials_are_reported_with_the_variables_to_check(sandbox, db_file, monkeypatch):
    monkeypatch.setenv("PAYPAL_CLIENT_SECRET", "not-the-secret")
    result = load(db_file)
    assert result.status == "failed"
    assert result.error == ("paypal: /v1/oauth2/token: HTTP 401: Client Authentication failed "
                            "(check $PAYPAL_CLIENT_ID and $PAYPAL_CLIENT_SECRET)")


@pytest.mark.parametrize(("money", "expected"), [
    ({"currency_code": "USD", "value": "14.75"}, (1475, "USD")),
    ({"currency_code": "EUR", "value": "-0.73"}, (-73, "EUR")),
    ({"currency_code": "EUR", "value": "990"}, (99000, "EUR")),
    ({"currency_code": "JPY", "value": "1500"}, (1500, "JPY")),
    ({"currency_code": "USD", "value": "12345678901234567.89"}, (1234567890123456789, "USD")),
])
def test_money_becomes_exact_minor_units(money, expected):
    assert helpers.to_minor(money) == expected


@pytest.mark.parametrize("money", [
    {"currency_code": "USD", "value": "0.105"}, {"currency_code": "JPY", "value": "15.5"},
    {"currency_code": "USD", "value": "1e3"}, {"currency_code": "USD", "value": 14.75},
    {"currency_code": "ZZZ", "value": "1.00"}, {"value": "1.00"}, "14.75",
])
def test_money_that_is_not_exact_is_refused(money):
    with pytest.raises(ValueError):
        helpers.to_minor(money)


def test_windows_tile_a_long_period_in_at_most_31_days():
    start, end = datetime(2024, 1, 1), datetime(2024, 12, 31, 23, 59, 59)
    windows = helpers.windows(start, end)
    assert windows[0][0] == start and windows[-1][1] == end and len(windows) == 12
    assert all(b - a <= timedelta(days=31) for a, b in windows)
    assert all(later[0] - earlier[1] == timedelta(seconds=1) for earlier, later in pairwise(windows))


def test_a_refund_larger_than_its_payment_and_a_zero_payment_are_quarantined(world, details, sandbox, db_file):
    refund = next(d["transaction_info"] for d in details if d["transaction_info"]["transaction_event_code"] == "T1107")
    payment = next(d["transaction_info"] for d in details
                   if d["transaction_info"]["transaction_id"] == refund["paypal_reference_id"])
    zero = next(d["transaction_info"] for d in details if d["transaction_info"]["transaction_event_code"] == "T0006"
                and d["transaction_info"] is not payment)
    refund["transaction_amount"]["value"] = f"-{int(float(payment['transaction_amount']['value'])) + 1}.00"
    zero["transaction_amount"]["value"] = "0.00"
    zero.pop("fee_amount", None)
    assert load(db_file).status == "succeeded"
    quarantine = rows(db_file, "SELECT record_id, field, error FROM raw_paypal.quarantine")
    assert sorted(q[:2] for q in quarantine) == sorted([(refund["transaction_id"], "transaction_amount"),
                                                        (zero["transaction_id"], "transaction_amount")])
    assert any("larger than its payment" in q[2] for q in quarantine)


def test_huf_and_twd_have_no_decimals_at_paypal_and_the_row_says_so():
    detail = {"transaction_info": {
        "transaction_id": "5TY05013RG002845M", "transaction_event_code": "T0006",
        "transaction_initiation_date": "2025-02-03T10:00:00+0000", "transaction_status": "S",
        "transaction_amount": {"currency_code": "HUF", "value": "39900"}}}
    row = helpers.transaction_row(detail)
    assert (row["amount"], row["currency"], row["currency_exponent"]) == (39900, "HUF", 0)
