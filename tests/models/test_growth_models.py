"""The growth and revenue models (GA4, fx, Stripe, PayPal, Coinbase, unified payments) over the fixture
warehouse: their .yml tests hold, their .yml describes them, they transpile to Spark, and the build
still unites the payment providers that are loaded when others are not."""

from __future__ import annotations

from datetime import date, timedelta

import duckdb
import growth_warehouse as fx
import pytest
import sqlglot
import yaml
from sqlglot import ErrorLevel

from statex_bi import warehouse
from statex_bi.config import MODELS_DIR
from statex_bi.exceptions import ModelError
from statex_bi.models.build import build_all, discover
from statex_bi.models.checks import declared_checks, model_specs, run_checks

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
    path = tmp_path_factory.mktemp("growth_models") / "warehouse.duckdb"
    status = fx.build(path)
    con = duckdb.connect(str(path), read_only=True)
    yield con, status
    con.close()


def test_every_growth_model_builds_from_the_fixture(built):
    _, status = built

    assert {model: status[model] for model in GROWTH_MODELS} == dict.fromkeys(GROWTH_MODELS, "built")


def test_declared_yml_tests_pass(built):
    con, _ = built

    results = run_checks(con, only=GROWTH_MODELS)

    assert {r.model for r in results} == set(GROWTH_MODELS)
    assert sum(1 for r in results if r.test.startswith(("unique", "not_null"))) > 40
    assert [f"{r.model}: {r.test} ({r.failures} rows)" for r in results if not r.passed] == []


def test_yml_states_grain_and_exactly_the_models_columns(built):
    con, _ = built
    specs = model_specs()

    for model in GROWTH_MODELS:
        spec = specs[model]
        assert "One row per" in spec["description"], model
        schema, name = model.split(".")
        actual = [row[0] for row in con.execute(
            "select column_name from information_schema.columns where table_schema = ? and table_name = ? "
            "order by ordinal_position", [schema, name]).fetchall()]
        assert [c["name"] for c in spec["columns"]] == actual, model


def test_checks_catch_broken_rows(tmp_path):
    path = tmp_path / "broken.duckdb"
    with warehouse.writer(path) as con:
        fx.create_raw_tables(con)
        # a charge loaded twice, and a balance transaction whose net is not amount - fee
        con.execute("INSERT INTO raw_stripe.charges SELECT * FROM raw_stripe.charges WHERE id = 'ch_2'")
        con.execute("UPDATE raw_stripe.balance_transactions SET net = net + 1 WHERE id = 'txn_5'")
        build_all(con)
        failed = {(r.model, r.test): r.failures for r in run_checks(con, only=GROWTH_MODELS) if not r.passed}

    assert failed[("staging.stg_stripe__charges", "unique(charge_id)")] == 1
    net_identity = "expression_is_true(net_minor = amount_minor - fee_minor)"
    assert failed[("staging.stg_stripe__balance_transactions", net_identity)] == 1
    assert failed[("core.payments", "unique_combination_of_columns(provider, payment_id)")] == 1


def test_unknown_yml_test_is_an_error_not_a_silent_pass():
    with pytest.raises(ModelError, match="unknown column test 'positive'"):
        declared_checks("core.x", {"columns": [{"name": "a", "data_tests": ["positive"]}]})


def test_fx_rates_are_carried_forward_to_every_calendar_day(built):
    con, _ = built
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
    con, _ = built
    exponents = dict(con.execute("select currency, exponent from core.currencies").fetchall())

    assert (exponents["JPY"], exponents["EUR"], exponents["GBP"], exponents["KWD"]) == (0, 2, 2, 3)
    yen = con.execute("select amount from marts.payments_eur where payment_id = 'cb-1'").fetchall()[0][0]
    assert yen == next(c[5] for c in fx.COINBASE if c[0] == "cb-1")


def test_fees_are_positive_costs_in_the_settlement_currency(built):
    con, _ = built
    fees = {row[0]: row[1:] for row in con.execute(
        "select payment_id, fee_minor, fee_currency, currency from core.payments").fetchall()}

    assert fees["ch_3"] == (115, "EUR", "GBP")  # charged in GBP, settled (and fee'd) in EUR
    assert fees["PP1"] == (136, "USD", "USD")  # PayPal's -1.36 USD
    assert fees["cb-1"] == (None, None, "JPY")  # Coinbase reports none
    assert fees["ch_4"] == (None, None, "USD")  # a failed charge never settled
    refund_fee = con.execute("select fee_minor from core.refunds where refund_id = 'PP4'").fetchall()[0][0]
    assert refund_fee == -20  # PayPal gave 0.20 USD of its fee back


def test_unloaded_providers_become_empty_staging_views_so_payments_still_build(tmp_path):
    path = tmp_path / "paypal_only.duckdb"
    with warehouse.writer(path) as con:
        fx.create_raw_tables(con, ("fx", "paypal"))
        status = build_all(con)
        providers = con.execute("select distinct provider from core.payments").fetchall()

    assert status["staging.stg_stripe__charges"] == "empty: raw_stripe.charges not available"
    assert status["staging.stg_coinbase__charges"].startswith("empty:")
    assert status["core.payments"] == status["marts.payments_eur"] == "built"
    assert status["marts.ga4_daily_traffic"].startswith("skipped:")
    assert providers == [("paypal",)]


def test_an_empty_placeholder_needs_column_types(tmp_path, db_file):
    root = tmp_path / "models"
    (root / "staging").mkdir(parents=True)
    (root / "staging" / "stg_shop__orders.sql").write_text("select id from raw_shop.orders")
    spec = {"models": [{"name": "stg_shop__orders", "config": {"when_source_missing": "empty"},
                        "columns": [{"name": "id"}]}]}
    (root / "staging" / "stg_shop__orders.yml").write_text(yaml.safe_dump(spec))

    with warehouse.writer(db_file) as con, pytest.raises(ModelError, match="data_type"):
        build_all(con, root)


@pytest.mark.parametrize("model", GROWTH_MODELS)
def test_models_transpile_to_spark(model):
    sql = discover(MODELS_DIR)[model].sql

    spark = sqlglot.transpile(sql, read="duckdb", write="spark", unsupported_level=ErrorLevel.RAISE)[0]

    assert "SELECT" in spark
