"""The growth and revenue models (GA4, fx, Stripe, PayPal, Coinbase, unified payments) over the fixture
warehouse: their .yml tests hold (dbt build runs them), their .yml describes them, and the build still
unites the payment providers that are loaded when others are not. That they build on Spark too:
test_spark.py."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import growth_warehouse as fx
import pytest
import yaml

from statex_bi import warehouse
from statex_bi.config import MODELS_DIR
from statex_bi.exceptions import DataTestError
from statex_bi.transform import build as project

GROWTH_MODELS = [
    "staging.stg_ga4__traffic_by_channel", "staging.stg_ga4__key_events_by_channel", "staging.stg_ga4__daily_users",
    "staging.stg_fx__eur_reference_rates", "staging.stg_stripe__charges", "staging.stg_stripe__refunds",
    "staging.stg_stripe__balance_transactions", "staging.stg_paypal__transactions", "staging.stg_coinbase__charges",
    "core.currencies", "core.fx_daily_eur_rates", "core.payments", "core.refunds",
    "marts.ga4_daily_traffic", "marts.ga4_daily_key_events", "marts.ga4_daily_users", "marts.payments_eur",
    "marts.refunds_eur",
]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path, result = fx.built(tmp_path_factory)
    con = duckdb.connect(str(path), read_only=True)
    yield con, result, path
    con.close()


def _spec(model: str) -> dict:
    layer, name = model.split(".")
    document = yaml.safe_load((MODELS_DIR / layer / f"{name}.yml").read_text())
    return next(entry for entry in document["models"] if entry["name"] == name)


def test_every_growth_model_builds_from_the_fixture_and_its_tests_pass(built):
    con, result, _ = built
    tables = {row[0] for row in con.execute(
        "select table_schema || '.' || table_name from information_schema.tables").fetchall()}

    assert set(GROWTH_MODELS) <= tables
    assert result.tests > 100  # dbt build raised had one of severity error failed
    assert [w.describe() for w in result.warnings if w.model in GROWTH_MODELS] == []
    assert not {"ga4.daily_users", "stripe.charges", "paypal.transactions"} & set(result.empty_sources)


def test_yml_states_grain_and_exactly_the_models_columns(built):
    con, _, _ = built

    for model in GROWTH_MODELS:
        spec = _spec(model)
        assert "One row per" in spec["description"], model
        schema, name = model.split(".")
        actual = [row[0] for row in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position", [schema, name]).fetchall()]
        assert [c["name"] for c in spec["columns"]] == actual, model


def test_a_broken_row_fails_the_build_naming_model_test_and_rows(tmp_path, tmp_path_factory):
    path = fx.copy_of_built(tmp_path_factory, tmp_path)
    with warehouse.writer(path) as con:
        # a charge loaded twice, and a balance transaction whose net is not amount - fee
        con.execute("INSERT INTO raw_stripe.charges SELECT * FROM raw_stripe.charges WHERE id = 'ch_2'")
        con.execute("UPDATE raw_stripe.balance_transactions SET net = net + 1 WHERE id = 'txn_5'")

    # Built while this process holds the warehouse, as `statex-bi ingest` does (after a Stripe load: the models
    # downstream of it): reading the failing rows must share that open database rather than open it a second,
    # read-only way.
    with warehouse.writer(path), pytest.raises(DataTestError) as failed:
        project.build(path, progress=lambda _: None, select=["source:stripe+"])

    message = str(failed.value)
    assert "test unique_stg_stripe__charges_charge_id on staging.stg_stripe__charges" in message
    assert "unique_field='ch_2'" in message
    assert "on staging.stg_stripe__balance_transactions" in message and "balance_transaction_id='txn_5'" in message
    assert failed.value.skipped > 0  # core.payments and what reads it were not rebuilt on bad data


def test_fx_rates_are_carried_forward_to_every_calendar_day(built):
    con, _, _ = built
    rows = con.execute(
        "select rate_day, currency, rate, rate_date from core.fx_daily_eur_rates where rate_day <= ?",
        [date(2025, 3, 18)],
    ).fetchall()
    got = {(day, currency): (rate, source) for day, currency, rate, source in rows}

    first = min(d for d, _, _ in fx.FX)
    for offset in range((date(2025, 3, 18) - first).days + 1):
        day = first + timedelta(days=offset)
        assert got[(day, "EUR")] == (1.0, day)
        for currency in ("GBP", "JPY", "USD"):
            published = max(d for d, c, _ in fx.FX if c == currency and d <= day)
            rate = next(r for d, c, r in fx.FX if d == published and c == currency)
            assert got[(day, currency)] == (rate, published), (day, currency)
    assert got[(date(2025, 3, 15), "GBP")][1] == date(2025, 3, 14)  # Saturday: Friday's rate
    today = con.execute("select count(*) from core.fx_daily_eur_rates where rate_day = current_date").fetchall()
    assert today[0][0] == 4  # past the last publication, up to today


def test_currency_exponents(built):
    con, _, _ = built
    exponents = dict(con.execute("select currency, exponent from core.currencies").fetchall())

    assert (exponents["JPY"], exponents["EUR"], exponents["GBP"], exponents["KWD"]) == (0, 2, 2, 3)
    yen = con.execute("select amount from marts.payments_eur where payment_id = 'cb-1'").fetchall()[0][0]
    assert yen == next(c[5] for c in fx.COINBASE if c[0] == "cb-1")


def test_fees_are_positive_costs_in_the_settlement_currency(built):
    con, _, _ = built
    fees = {row[0]: row[1:] for row in con.execute(
        "select payment_id, fee_minor, fee_currency, currency from core.payments").fetchall()}

    assert fees["ch_3"] == (115, "EUR", "GBP")  # charged in GBP, settled (and fee'd) in EUR
    assert fees["PP1"] == (136, "USD", "USD")  # PayPal's -1.36 USD
    assert fees["cb-1"] == (None, None, "JPY")  # Coinbase reports none
    assert fees["ch_4"] == (None, None, "USD")  # a failed charge never settled
    refund_fee = con.execute("select fee_minor from core.refunds where refund_id = 'PP4'").fetchall()[0][0]
    assert refund_fee == -20  # PayPal gave 0.20 USD of its fee back


def test_unloaded_providers_become_empty_staging_views_so_payments_still_build(tmp_path_factory):
    path, result = fx.built(tmp_path_factory, ("fx", "paypal"))
    with duckdb.connect(str(path), read_only=True) as con:
        providers = con.execute("select distinct provider from core.payments").fetchall()
        traffic = con.execute("select count(*) from marts.ga4_daily_traffic").fetchall()

    assert {"stripe.charges", "coinbase.charges", "ga4.traffic_by_channel"} <= set(result.empty_sources)
    assert providers == [("paypal",)]
    assert traffic == [(0,)]
