"""AI cost KPIs on a small hand-made warehouse, against hand computations with explicit prices.

The fixture catalog switches genai-prices off for every provider, so every expected value below
follows from the prices written in PRICES_YAML and the calls in CALLS, with plain arithmetic.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from warehouse_copies import copy_with_state

from statex_bi import publish, warehouse
from statex_bi.exceptions import ParamsError
from statex_bi.kpis import ai_costs as ai_costs_report
from statex_bi.kpis.ai_costs import bills, budget
from statex_bi.kpis.ai_costs import measures as ai_costs
from statex_bi.periods import Period
from statex_bi.transform import build as project

PERIOD = Period(date(2026, 3, 9), date(2026, 3, 15))  # ends mid-month: the forecast has days to cover
PRICES_YAML = """
scenario: actual
no_bundled_prices: [openai, azure, ollama]
rows:
  - {id: mini-old, provider: openai, model: "gpt-4o-mini*", input_usd_per_mtok: 0.15,
     cached_input_usd_per_mtok: 0.075, output_usd_per_mtok: 0.60, source: fixture,
     effective_from: 2026-01-01, effective_to: 2026-03-11}
  - {id: mini-new, provider: openai, model: "gpt-4o-mini*", input_usd_per_mtok: 0.30,
     cached_input_usd_per_mtok: 0.15, output_usd_per_mtok: 1.20, source: fixture, effective_from: 2026-03-12}
  - {id: azure-eu-mini, provider: azure, model: gpt-4o-mini, input_usd_per_mtok: 0.165,
     cached_input_usd_per_mtok: 0.083, output_usd_per_mtok: 0.66, source: fixture, effective_from: 2026-01-01}
  - {id: ollama-box, provider: ollama, model: "*", input_usd_per_mtok: 0, cached_input_usd_per_mtok: 0,
     output_usd_per_mtok: 0, hardware_usd_per_hour: 0.36, source: fixture, effective_from: 2026-01-01}
"""
SEED_YAML = """
scenario: seed
rows:
  - {id: seed-openai, provider: openai, model: "*", input_usd_per_mtok: 30, cached_input_usd_per_mtok: 30,
     output_usd_per_mtok: 30, source: seed, effective_from: 2023-01-01}
  - {id: seed-azure, provider: azure, model: "*", input_usd_per_mtok: 60, cached_input_usd_per_mtok: 60,
     output_usd_per_mtok: 60, source: seed, effective_from: 2023-01-01}
  - {id: seed-ollama, provider: ollama, model: "*", input_usd_per_mtok: 0, cached_input_usd_per_mtok: 0,
     output_usd_per_mtok: 0, source: seed, effective_from: 2023-01-01}
"""
# Explicit per-1M prices of the fixture catalog, for the hand computations.
MINI_OLD = (0.15, 0.075, 0.60)
MINI_NEW = (0.30, 0.15, 1.20)
AZURE_MINI = (0.165, 0.083, 0.66)
OLLAMA_USD_PER_HOUR = 0.36

# span, when, tier, model, status, duration_ms, input, cached, output, prototype, in sentry, in jsonl
CALLS = [
    ("s-feb", "2026-02-27 10:00", "openai", "gpt-4o-mini", "ok", 800, 1000, 0, 500, "P9", True, False),
    ("s0", "2026-03-05 09:00", "openai", "gpt-4o-mini", "ok", 1000, 2000, 0, 1000, "P0", True, False),
    ("s1", "2026-03-10 08:00", "ollama", "llama3.1:8b", "internal_error", 2000, 500, 0, 0, "P1", True, True),
    ("s2", "2026-03-10 08:01", "openai", "gpt-4o-mini", "ok", 1500, 1000, 200, 500, "P1", True, True),
    ("s3", "2026-03-12 12:00", "openai", "gpt-4o-mini-2024-07-18", "ok", 1200, 1000, 0, 1000, "P2", True, False),
    ("s4", "2026-03-13 13:00", "ollama", "llama3.1:8b", "ok", 3000, 800, 0, 400, "P3", False, True),
    ("s5", "2026-03-14 14:00", "openai", "gpt-4o-mini", "resource_exhausted", 100, 1000, 0, 0, "P4", True, False),
    ("s6", "2026-03-14 14:01", "azure", "gpt-4o-mini", "deadline_exceeded", 5000, 2000, 1000, 100, "P4", True, False),
    ("s7", "2026-03-15 15:00", "openai", "mystery-model", "ok", 900, 300, 0, 300, "P5", True, False),
]
# The OpenAI bill (Costs API), USD per day.
BILL = {"2026-03-10": 0.00045, "2026-03-12": 0.0015, "2026-03-14": 0.00031, "2026-03-15": 0.0002}

SPAN_COLUMNS = """span_id VARCHAR, trace_id VARCHAR, started_at TIMESTAMP, duration_ms DOUBLE, op VARCHAR,
    status VARCHAR, system VARCHAR, request_model VARCHAR, input_tokens BIGINT, cached_input_tokens BIGINT,
    output_tokens BIGINT, prototype_id VARCHAR, ai_tier VARCHAR, project VARCHAR"""
SYSTEMS = {"ollama": "ollama", "openai": "openai", "azure": "azure.ai.openai"}


def create_raw_tables(con: duckdb.DuckDBPyConnection, calls=CALLS, bill=BILL) -> None:
    """The raw tables of docs/raw_tables.md (raw_sentry, raw_ai_calls, raw_openai) with the fixture rows."""
    con.execute("CREATE SCHEMA raw_sentry; CREATE SCHEMA raw_ai_calls; CREATE SCHEMA raw_openai")
    con.execute(f"CREATE TABLE raw_sentry.gen_ai_spans ({SPAN_COLUMNS})")
    con.execute(f"CREATE TABLE raw_ai_calls.calls ({SPAN_COLUMNS}, source_file VARCHAR, source_line BIGINT)")
    for line, (span, when, tier, model, status, ms, inp, cached, out, proto, in_sentry, in_jsonl) in enumerate(calls):
        values = [span, "t-" + proto, when, ms, "gen_ai.chat", status, SYSTEMS[tier], model, inp, cached, out,
                  proto, tier, "statex-worker"]
        if in_sentry:
            con.execute(f"INSERT INTO raw_sentry.gen_ai_spans VALUES ({', '.join('?' * 14)})", values)
        if in_jsonl:
            con.execute(f"INSERT INTO raw_ai_calls.calls VALUES ({', '.join('?' * 16)})",
                        [*values, "calls.jsonl", line + 1])
    # a column the connector added later: NULL in rows loaded before it, as dlt leaves them
    con.execute("ALTER TABLE raw_sentry.gen_ai_spans ADD COLUMN ai_tier_inferred BOOLEAN; "
                "ALTER TABLE raw_ai_calls.calls ADD COLUMN ai_tier_inferred BOOLEAN")
    con.execute("""CREATE TABLE raw_openai.usage_completions (bucket_start TIMESTAMP, bucket_end TIMESTAMP,
        model VARCHAR, project_id VARCHAR, batch BOOLEAN, service_tier VARCHAR, input_tokens BIGINT,
        input_cached_tokens BIGINT, output_tokens BIGINT, num_model_requests BIGINT)""")
    con.execute("""CREATE TABLE raw_openai.costs (bucket_start TIMESTAMP, bucket_end TIMESTAMP, line_item VARCHAR,
        project_id VARCHAR, amount DOUBLE, currency VARCHAR)""")
    for day, amount in bill.items():
        con.execute("INSERT INTO raw_openai.costs VALUES (?, CAST(? AS TIMESTAMP) + INTERVAL 1 DAY, "
                    "'gpt-4o-mini-2024-07-18, input', 'proj_1', ?, 'usd')", [day, day, amount])
        con.execute("INSERT INTO raw_openai.usage_completions VALUES (?, CAST(? AS TIMESTAMP) + INTERVAL 1 DAY, "
                    "'gpt-4o-mini-2024-07-18', 'proj_1', false, 'default', 1000, 0, 500, 1)", [day, day])


# What the report reads, with everything upstream: the fixture builds only these (a whole build is 5 times as long).
REPORT_MODELS = ("+ai_call_facts", "+openai_billing_daily", "+azure_ai_billing_daily")


def write_prices(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "fixture.yaml").write_text(PRICES_YAML)
    (folder / "seed.yaml").write_text(SEED_YAML)
    return folder


@pytest.fixture(scope="module")
def fixture_db(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("ai_costs")
    db = root / "warehouse.duckdb"
    with warehouse.writer(db) as con:
        create_raw_tables(con)
    project.build(db, progress=lambda _: None, select=REPORT_MODELS)
    return db, write_prices(root / "prices")


@pytest.fixture
def variant(fixture_db, tmp_path) -> Callable[[str], Path]:
    """`variant(change)`: the module's built warehouse copied with its dbt state, `change` run on its raw tables,
    then the report's models rebuilt."""
    base, _ = fixture_db

    def rebuilt(change: str) -> Path:
        db = copy_with_state(base, tmp_path)
        with warehouse.writer(db) as writer:
            writer.execute(change)
        project.build(db, progress=lambda _: None, select=REPORT_MODELS)
        return db

    return rebuilt


@pytest.fixture
def con(fixture_db):
    db, _ = fixture_db
    connection = warehouse.connect(db, read_only=True)
    yield connection
    connection.close()


@pytest.fixture
def params(fixture_db) -> dict:
    return {"price_overrides": str(fixture_db[1]), "monthly_budget_usd": 0.01, "cost_currency": "USD"}


def test_the_price_per_1k_tokens_is_over_every_priced_call_with_the_unpriced_share_beside_it(variant, params):
    """The audit: the price was measured over models with no unpriced call only (in November gpt-4o-mini, 5.4 %
    of the tier's tokens); one unpriced call took its whole model out."""
    db = variant("UPDATE raw_sentry.gen_ai_spans SET request_model = 'gpt-4o-mini', input_tokens = NULL, "
                 "cached_input_tokens = NULL, output_tokens = NULL WHERE span_id = 's7'")
    with warehouse.connect(db, read_only=True) as con:
        frame = ai_costs.price_per_1k_tokens(con, PERIOD, **params).set_index("tier")
        published = {r.tags["tier"]: r for r in ai_costs_report.metrics(con, PERIOD, **params)
                     if r.name == "ai.usd_per_1k_tokens"}
    openai = [c for c in CALLS if _in(PERIOD, c) and c[2] == "openai" and c[0] != "s7"]  # s2, s3, s5: priced
    tokens = sum(c[6] + c[8] for c in openai)
    assert frame.loc["openai", "usd_per_1k_tokens"] == pytest.approx(1000 * sum(_cost(c) for c in openai) / tokens)
    assert (frame.loc["openai", "calls"], frame.loc["openai", "priced_calls"]) == (4, 3)
    assert frame.loc["openai", "unpriced_share"] == pytest.approx(0.25)
    assert published["openai"].value == pytest.approx(frame.loc["openai", "usd_per_1k_tokens"])
    assert published["openai"].tags["unpriced_share"] == pytest.approx(0.25)
    # a census of the priced calls, not a sample: no interval, and the verdict says what it rests on
    assert "ci_low" not in published["openai"].tags
    assert published["openai"].tags["interval_basis"] == (
        "no interval: a census of the period's 3 priced calls at the catalog's prices, not a sample; "
        "1 unpriced call (25.0%) left out")
    assert published["azure"].value is not None  # its one call is priced


def test_a_tier_with_mostly_unpriced_calls_has_no_price_per_1k_tokens(variant, params):
    db = variant("UPDATE raw_sentry.gen_ai_spans SET input_tokens = NULL, cached_input_tokens = NULL, "
                 "output_tokens = NULL WHERE span_id = 's6'")
    with warehouse.connect(db, read_only=True) as con:
        (azure,) = [r for r in ai_costs_report.metrics(con, PERIOD, **params)
                    if r.name == "ai.usd_per_1k_tokens" and r.tags["tier"] == "azure"]
    assert azure.value is None and azure.reason == "only 0 of 1 calls are priced"


# --- hand computation -----------------------------------------------------------------------------------

def _cost(call) -> float | None:
    """The call's cost from the fixture's explicit prices (None: unpriced)."""
    _, when, tier, model, _, ms, inp, cached, out, *_ = call
    day = datetime.fromisoformat(when).date()
    if tier == "ollama":
        return ms / 3_600_000 * OLLAMA_USD_PER_HOUR
    if tier == "azure" and model == "gpt-4o-mini":
        rates = AZURE_MINI
    elif tier == "openai" and model.startswith("gpt-4o-mini"):
        rates = MINI_OLD if day <= date(2026, 3, 11) else MINI_NEW
    else:
        return None
    return ((inp - cached) * rates[0] + cached * rates[1] + out * rates[2]) / 1e6


def _in(window: Period, call) -> bool:
    return window.start <= datetime.fromisoformat(call[1]).date() <= window.end


def _percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _expected_summary(window: Period) -> dict:
    calls = [c for c in CALLS if _in(window, c)]
    prototypes = {c[9] for c in calls}
    successful = {c[9] for c in calls if c[4] == "ok"}
    cost = sum(_cost(c) for c in calls if _cost(c) is not None)
    return {"calls": len(calls), "prototypes": len(prototypes), "successful": len(successful), "cost": cost,
            "unpriced": sum(1 for c in calls if _cost(c) is None)}


# --- tests ------------------------------------------------------------------------------------------------

def test_a_call_in_both_sources_counts_once(con):
    rows = con.execute("SELECT span_id, seen_in, record_source FROM core.ai_calls ORDER BY span_id").fetchall()
    assert [r[0] for r in rows] == sorted(c[0] for c in CALLS)
    seen = {r[0]: r[1] for r in rows}
    assert seen["s1"] == seen["s2"] == "both" and seen["s4"] == "jsonl" and seen["s3"] == "sentry"
    assert dict((r[0], r[2]) for r in rows)["s2"] == "sentry"


def test_cost_per_prototype_matches_hand_computation(con, params):
    got = ai_costs.summary(con, PERIOD, **params).set_index("period")
    for label, window in (("current", PERIOD), ("previous", PERIOD.previous())):
        want = _expected_summary(window)
        row = got.loc[label]
        assert row["calls"] == want["calls"]
        assert row["prototypes"] == want["prototypes"]
        assert row["successful_prototypes"] == want["successful"]
        assert row["unpriced_calls"] == want["unpriced"]
        assert row["cost_usd"] == pytest.approx(want["cost"])
        assert row["cost_per_prototype"] == pytest.approx(want["cost"] / want["prototypes"])
        assert row["cost_per_successful_prototype"] == pytest.approx(want["cost"] / want["successful"])
        assert row["success_rate"] == pytest.approx(want["successful"] / want["prototypes"])
    # P1..P5 in the period; P5's only call is unpriced, P4 never succeeded.
    assert got.loc["current", "prototypes"] == 5 and got.loc["current", "successful_prototypes"] == 4


def test_price_change_mid_period_prices_calls_before_and_after_differently(con, params):
    # gpt-4o-mini: row mini-old up to 2026-03-11, row mini-new from 2026-03-12 (s2 before, s5 after).
    frame = ai_costs.usage_by_day(con, PERIOD, by="model", **params)
    mini = frame[(frame["tier"] == "openai") & (frame["model"] == "gpt-4o-mini")].set_index("day")["cost_usd"]
    before, after = mini[pd.Timestamp("2026-03-10")], mini[pd.Timestamp("2026-03-14")]
    assert before == pytest.approx((800 * 0.15 + 200 * 0.075 + 500 * 0.60) / 1e6)
    assert after == pytest.approx((1000 * 0.30) / 1e6)
    assert before == pytest.approx(_cost(next(c for c in CALLS if c[0] == "s2")))
    assert after == pytest.approx(_cost(next(c for c in CALLS if c[0] == "s5")))
    rows = ai_costs.catalog_rows_used(con, PERIOD, **params)
    used = rows[rows["scenario"] == "actual"].set_index("row_id")
    assert set(used.index) == {"mini-old", "mini-new", "azure-eu-mini", "ollama-box"}
    assert used.loc["mini-old", "calls"] == 1 and used.loc["mini-new", "calls"] == 2  # s3 is a dated snapshot


def test_unpriced_model_is_reported_not_priced_at_zero(con, params):
    missing = ai_costs.unpriced_calls(con, PERIOD, **params)
    assert missing[["provider", "model", "calls", "input_tokens", "output_tokens"]].values.tolist() == [
        ["openai", "mystery-model", 1, 300, 300]
    ]
    by_model = ai_costs.usage_by_model(con, PERIOD, **params).set_index("model")
    assert by_model.loc["mystery-model", "unpriced_calls"] == 1
    assert pd.isna(by_model.loc["mystery-model", "cost_usd"])  # unknown, not $0
    notes = ai_costs_report.notes(con, PERIOD, **params)
    assert any("mystery-model" in note for note in notes)
    assert "unpriced" in ai_costs_report.headline(con, PERIOD, **params)


def test_a_paid_call_without_usage_is_unpriced_usage_unknown_and_a_missing_tier_is_inferred(variant, params):
    """Before: the timed-out call's NULL tokens became 0 and it cost $0; its tier was inferred silently."""
    db = variant("UPDATE raw_sentry.gen_ai_spans SET input_tokens = NULL, cached_input_tokens = NULL, "
                 "output_tokens = NULL, ai_tier = NULL WHERE span_id = 's6'")
    with warehouse.connect(db, read_only=True) as con:
        missing = ai_costs.unpriced_calls(con, PERIOD, **params).set_index("model")
        assert missing.loc["gpt-4o-mini", ["provider", "calls", "reason"]].tolist() == [
            "azure", 1, ai_costs.USAGE_UNKNOWN]
        perf = ai_costs.tier_performance(con, PERIOD, **params).set_index("tier")
        assert perf.loc["azure", "unpriced_calls"] == 1 and pd.isna(perf.loc["azure", "cost_usd"])
        # the refused (rate-limited) call s5 reports no output either, but is not billed: still priced
        assert ai_costs.summary(con, PERIOD, **params).loc[0, "unpriced_calls"] == 2  # s6 and mystery-model
        assert ai_costs.tier_inference(con, PERIOD, **params).to_dict("records") == [
            {"tier": "azure", "calls": 1, "all_calls": 1}]
        notes = " ".join(ai_costs_report.notes(con, PERIOD, **params))
        assert "usage unknown" in notes and "inferred from gen_ai.system (1 azure)" in notes


def test_tier_success_rate_latency_and_share(con, params):
    perf = ai_costs.tier_performance(con, PERIOD, **params).set_index("tier")
    period_calls = [c for c in CALLS if _in(PERIOD, c)]
    for tier in ("ollama", "openai", "azure", "all"):
        calls = [c for c in period_calls if tier == "all" or c[2] == tier]
        prototypes = {c[9] for c in calls}
        successful = {c[9] for c in calls if c[4] == "ok"}
        assert perf.loc[tier, "generation_success_rate"] == pytest.approx(len(successful) / len(prototypes))
        assert perf.loc[tier, "latency_p95_ms"] == pytest.approx(_percentile([c[5] for c in calls], 0.95))
        assert perf.loc[tier, "latency_p50_ms"] == pytest.approx(_percentile([c[5] for c in calls], 0.5))
    share = ai_costs.tier_share(con, PERIOD, **params).set_index("served_by")["prototypes"].to_dict()
    # last successful call: P1 openai (s2), P2 openai, P3 ollama, P4 none, P5 openai
    assert share == {"ollama": 1, "openai": 3, "azure": 0, "none": 1}


def test_azure_is_priced_at_the_fixture_eu_rate(con, params):
    perf = ai_costs.tier_performance(con, PERIOD, **params).set_index("tier")
    s6 = next(c for c in CALLS if c[0] == "s6")
    assert perf.loc["azure", "cost_usd"] == pytest.approx((1000 * 0.165 + 1000 * 0.083 + 100 * 0.66) / 1e6)
    assert perf.loc["azure", "cost_usd"] == pytest.approx(_cost(s6))


def test_billing_gap_per_day_and_period(con, params):
    gap = bills.billing_reconciliation(con, PERIOD, **params)
    days = gap[gap["scope"] == "day"].set_index("day")
    priced_by_day: dict[str, float] = {}
    for call in CALLS:
        if _in(PERIOD, call) and call[2] == "openai" and _cost(call) is not None:
            priced_by_day[call[1][:10]] = priced_by_day.get(call[1][:10], 0.0) + _cost(call)
    for day, billed in BILL.items():
        priced = priced_by_day.get(day, 0.0)
        row = days.loc[pd.Timestamp(day)]
        assert row["billed_usd"] == pytest.approx(billed)
        assert row["priced_usd"] == pytest.approx(priced)
        if priced:
            assert row["billing_gap_pct"] == pytest.approx(100 * (billed - priced) / priced)
        else:
            assert pd.isna(row["billing_gap_pct"])  # 2026-03-15: only the unpriced call
    total = gap[gap["scope"] == "period"].iloc[0]
    billed, priced = sum(BILL.values()), sum(priced_by_day.values())
    assert total["billing_gap_pct"] == pytest.approx(100 * (billed - priced) / priced)
    assert total["unpriced_calls"] == 1


def test_free_tier_value_prices_ollama_tokens_at_the_paid_tiers_model(con, params):
    value = ai_costs.free_tier_value(con, PERIOD, **params).set_index("priced_as_tier")
    ollama = [c for c in CALLS if _in(PERIOD, c) and c[2] == "ollama"]
    as_openai = sum(
        (c[6] * (MINI_OLD if c[1] < "2026-03-12" else MINI_NEW)[0] + c[8] * (MINI_OLD if c[1] < "2026-03-12"
                                                                            else MINI_NEW)[2]) / 1e6
        for c in ollama
    )
    as_azure = sum((c[6] * AZURE_MINI[0] + c[8] * AZURE_MINI[2]) / 1e6 for c in ollama)
    actual = sum(_cost(c) for c in ollama)
    assert value.loc["openai", "priced_as_model"] == "gpt-4o-mini"
    assert value.loc["openai", "counterfactual_cost_usd"] == pytest.approx(as_openai)
    assert value.loc["azure", "counterfactual_cost_usd"] == pytest.approx(as_azure)
    assert value.loc["openai", "value_usd"] == pytest.approx(as_openai - actual)


def _daily_spend_by_hand(window: Period, covered: Period) -> dict[date, float]:
    """Spend per calendar day: the OpenAI bill on the covered days, priced calls elsewhere (0 without any)."""
    days = {window.start + timedelta(days=i): 0.0 for i in range(window.days)}
    for c in CALLS:
        day = date.fromisoformat(c[1][:10])
        if day in days and _cost(c) is not None and not (c[2] == "openai" and _in(covered, c)):
            days[day] += _cost(c)
    for day, amount in BILL.items():
        days[date.fromisoformat(day)] += amount
    return days


def test_month_to_date_and_forecast(con, params):
    """OpenAI's spend is its bill on the days the bill covers (10-15 March), priced calls elsewhere.
    The days left cost what their weekday cost in the 28 days before (not the month's run rate)."""
    status = budget.budget_status(con, PERIOD, **params).iloc[0]
    month = Period(date(2026, 3, 1), PERIOD.end)
    covered = Period(date(2026, 3, 10), date(2026, 3, 15))
    spend = _daily_spend_by_hand(Period(PERIOD.end - timedelta(days=27), PERIOD.end), covered)
    mtd = sum(v for d, v in spend.items() if d >= month.start)
    assert mtd != pytest.approx(sum(_cost(c) for c in CALLS if _in(month, c) and _cost(c) is not None))
    assert status["mtd_cost_usd"] == pytest.approx(mtd)
    assert status["billed_days"] == 6
    assert status["days_elapsed"] == 15 and status["days_in_month"] == 31
    rest = [date(2026, 3, 16) + timedelta(days=i) for i in range(16)]
    expected = mtd + sum(sum(v for d, v in spend.items() if d.weekday() == day.weekday()) / 4 for day in rest)
    assert status["forecast_usd"] == pytest.approx(expected)
    assert status["forecast_usd"] != pytest.approx(mtd + mtd / 15 * 16)  # the run rate it replaces
    assert status["forecast_low_usd"] <= status["forecast_usd"] <= status["forecast_high_usd"]
    assert status["forecast_low_usd"] >= mtd
    assert status["exceed_probability"] == (1.0 if mtd > 0.01 else status["exceed_probability"])
    burn = budget.budget_burn(con, PERIOD, **params)
    forecast = burn[burn["series"] == "forecast"]
    assert forecast["day"].max() == pd.Timestamp("2026-03-31")
    assert forecast["cumulative_usd"].iloc[-1] == pytest.approx(expected)


def test_the_forecast_follows_the_weekdays_from_the_first_day_of_the_month():
    """The audit: a run-rate forecast was +38 % on day 1 and -31 % on day 7 of the same month."""
    costs = {0: 0.30, 1: 0.30, 2: 0.24, 3: 0.17, 4: 0.17, 5: 0.12, 6: 0.12}
    june = [date(2026, 6, 1) + timedelta(days=i) for i in range(30)]
    may = [date(2026, 5, 4) + timedelta(days=i) for i in range(28)]
    truth = sum(costs[d.weekday()] for d in june)
    errors, run_rate_errors = [], []
    for elapsed in range(1, 30):
        spent = sum(costs[d.weekday()] for d in june[:elapsed])
        history = {d: costs[d.weekday()] for d in (may + june[:elapsed])[-28:]}
        result = budget.outlook(history, spent, june[elapsed:], budget=truth * 1.1)
        errors.append(result["forecast_usd"] / truth - 1)
        run_rate_errors.append(spent / elapsed * 30 / truth - 1)
        assert result["exceed_probability"] == 0.0
    assert max(map(abs, errors)) < 1e-9
    assert max(run_rate_errors) > 0.4  # Monday the 1st, extrapolated


def test_the_prediction_interval_and_the_chance_of_going_over_come_from_the_days_spread():
    rng = np.random.default_rng(1)
    history = {date(2026, 5, 4) + timedelta(days=i): float(rng.gamma(4.0, 0.05)) for i in range(28)}
    rest = [date(2026, 6, 11) + timedelta(days=i) for i in range(20)]
    middle = budget.outlook(history, 2.0, rest, budget=float("nan"))["forecast_usd"]
    result = budget.outlook(history, 2.0, rest, budget=middle)
    assert result["forecast_low_usd"] < middle < result["forecast_high_usd"]
    assert 0.3 < result["exceed_probability"] < 0.7
    assert budget.outlook(history, 2.0, rest, budget=result["forecast_high_usd"])["exceed_probability"] == \
        pytest.approx(0.05, abs=0.01)
    assert math.isnan(budget.outlook(history, 2.0, rest, budget=float("nan"))["exceed_probability"])
    again = budget.outlook(history, 2.0, rest, budget=middle)  # deterministic
    assert (again["forecast_low_usd"], again["exceed_probability"]) == (result["forecast_low_usd"],
                                                                       result["exceed_probability"])


def test_seed_prices_against_actual_prices(con, params):
    frame = ai_costs.seed_vs_actual(con, PERIOD, **params).set_index(["tier", "scenario"])
    both = [c for c in CALLS if _in(PERIOD, c) and _cost(c) is not None]  # the seed prices mystery-model too
    openai = [c for c in both if c[2] == "openai"]
    tokens = sum(c[6] + c[8] for c in openai)
    assert frame.loc[("openai", "seed"), "cost_usd"] == pytest.approx(tokens * 30 / 1e6)
    assert frame.loc[("openai", "actual"), "cost_usd"] == pytest.approx(sum(_cost(c) for c in openai))
    assert frame.loc[("azure", "seed"), "usd_per_1k_tokens"] == pytest.approx(0.06)
    assert frame.loc[("all", "actual"), "calls"] == len(both)


def test_empty_period_gives_empty_frames_and_no_undefined_metrics(con, params, tmp_path, monkeypatch):
    empty = Period(date(2025, 1, 6), date(2025, 1, 12))
    sidecar = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("STATEX_BI_SIDECAR", str(sidecar))
    assert ai_costs_report.headline(con, empty, **params) == "No AI calls in this period."
    assert ai_costs.tier_performance(con, empty, **params).empty
    assert ai_costs.prototype_cost_distribution(con, empty, **params).empty
    assert ai_costs.seed_vs_actual(con, empty, **params).empty
    published = publish.publish(ai_costs_report.metrics(con, empty, **params))
    published = published[published["published"]]
    names = set(published["metric_name"])
    assert {"ai.calls", "ai.cost"} <= names
    assert "ai.cost_per_prototype" not in names  # undefined without prototypes: not published as 0
    assert [json.loads(line)["metric_name"] for line in sidecar.read_text().splitlines()] == list(
        published["metric_name"])
    # Period totals are GAUGEs, as docs/metrics.md says (before: calls, tokens and costs were COUNTERs).
    assert {json.loads(line)["metric_type"] for line in sidecar.read_text().splitlines()} == {"GAUGE"}


NOTEBOOK = Path(__file__).resolve().parents[3] / "notebooks" / "ai_costs.ipynb"
PUBLISHED = {
    "ai.calls", "ai.tokens.input", "ai.tokens.output", "ai.cost", "ai.cost_per_prototype",
    "ai.cost_per_successful_prototype", "ai.generation_success_rate", "ai.latency_p95_ms", "ai.billing_gap_pct",
    "ai.cost.daily", "ai.budget.forecast_usd", "ai.usd_per_1k_tokens",
}


def _run_notebook(tmp_path: Path, monkeypatch, db: Path, prices: Path, period: Period) -> list[dict]:
    import papermill

    from statex_bi.publish import read_sidecar

    sidecar = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("STATEX_BI_DB", str(db))
    monkeypatch.setenv("STATEX_BI_SIDECAR", str(sidecar))
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "ai_costs.out.ipynb"), kernel_name="python3", progress_bar=False,
        parameters={"period_start": str(period.start), "period_end": str(period.end), "run_id": "test",
                    "monthly_budget_usd": 0.01, "price_overrides": str(prices)},
    )
    return read_sidecar(sidecar)


def test_notebook_runs_on_the_fixture_and_publishes_every_kpi(fixture_db, tmp_path, monkeypatch):
    db, prices = fixture_db
    records = _run_notebook(tmp_path, monkeypatch, db, prices, PERIOD)
    assert {r["metric_name"] for r in records} == PUBLISHED
    tiers = {r["tags"]["tier"] for r in records if r["metric_name"] == "ai.cost"}
    assert tiers == {"all", "ollama", "openai", "azure"}
    cost = next(r["value"] for r in records if r["metric_name"] == "ai.cost_per_prototype")
    want = _expected_summary(PERIOD)
    assert cost == pytest.approx(want["cost"] / want["prototypes"])
    # the daily series (the ai_cost_spike alert's history) adds up to the period's cost over its days
    daily = {r["tags"]["day"]: r["value"] for r in records if r["metric_name"] == "ai.cost.daily"}
    in_period = sum(v for day, v in daily.items() if PERIOD.start.isoformat() <= day <= PERIOD.end.isoformat())
    assert in_period == pytest.approx(want["cost"], abs=1e-4 * len(daily))
    forecast = next(r for r in records if r["metric_name"] == "ai.budget.forecast_usd")
    assert forecast["tags"]["budget_usd"] == 0.01


def test_notebook_runs_with_nothing_loaded(tmp_path, monkeypatch, fixture_db):
    records = _run_notebook(tmp_path, monkeypatch, tmp_path / "missing.duckdb", fixture_db[1], PERIOD)
    assert {r["metric_name"] for r in records} == {"ai.calls", "ai.tokens.input", "ai.tokens.output", "ai.cost"}
    assert all(r["value"] == 0 for r in records)


def test_missing_sources_give_notes_and_empty_reconciliation(variant, params):
    db = variant("DROP SCHEMA raw_ai_calls CASCADE; DROP SCHEMA raw_openai CASCADE")
    with warehouse.connect(db, read_only=True) as con:
        notes = " ".join(ai_costs_report.notes(con, PERIOD, **params))
        assert "OpenAI bill is not loaded" in notes
        assert bills.billing_reconciliation(con, PERIOD, **params).empty
        sentry_only = [c for c in CALLS if _in(PERIOD, c) and c[10]]
        assert ai_costs.summary(con, PERIOD, **params).loc[0, "calls"] == len(sentry_only)
        assert "bill" not in ai_costs_report.headline(con, PERIOD, **params)


def test_only_usd_costs_are_supported(con, params):
    with pytest.raises(ParamsError, match="USD"):
        ai_costs.summary(con, PERIOD, **{**params, "cost_currency": "EUR"})
