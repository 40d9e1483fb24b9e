"""Per-call pricing in SQL (token split, hardware, long-context cliff, unpriced) and the bill reconciliation."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pytest

from statex_bi.pricing import load_catalog, priced_calls_sql, register_prices
from statex_bi.pricing.reconcile import reconcile
from statex_bi.pricing.table import CALL_COLUMNS

PRICES = """
no_bundled_prices: [azure]
rows:
  - {id: box, provider: ollama, model: "*", input_usd_per_mtok: 0, cached_input_usd_per_mtok: 0,
     output_usd_per_mtok: 0, hardware_usd_per_hour: 1.8, source: test, effective_from: 2026-01-01}
  - {id: eu, provider: azure, model: gpt-4o, input_usd_per_mtok: 2.75, cached_input_usd_per_mtok: 1.375,
     output_usd_per_mtok: 11, source: test, effective_from: 2026-01-01}
"""
# span, provider, model, duration_ms, input, cached, output
CALLS = [
    ("a", "azure", "gpt-4o", 1000, 10_000, 4_000, 2_000),
    ("b", "ollama", "llama3.1:8b", 90_000, 3_000, 0, 1_000),
    ("c", "openai", "gpt-5.4", 5000, 300_000, 100_000, 10_000),  # above genai-prices' 272K tier
    ("d", "openai", "gpt-5.4", 5000, 200_000, 100_000, 10_000),  # below it
    ("e", "azure", "gpt-4.1", 1000, 1_000, 0, 100),  # no EU row: unpriced
    ("f", "openai", None, 1000, 1_000, 0, 100),  # the span named no model
]


@pytest.fixture
def con(tmp_path):
    (tmp_path / "prices.yaml").write_text(PRICES)
    connection = duckdb.connect()
    columns = ", ".join(f"{name} {kind}" for name, kind in CALL_COLUMNS.items())
    connection.execute(f"CREATE SCHEMA core; CREATE TABLE core.ai_calls ({columns})")
    for span, provider, model, ms, inp, cached, out in CALLS:
        connection.execute(
            "INSERT INTO core.ai_calls (span_id, provider, tier, model, duration_ms, input_tokens, cached_input_tokens,"
            " output_tokens, day) VALUES (?, ?, ?, ?, ?, ?, ?, ?, DATE '2026-05-04')",
            [span, provider, provider, model, ms, inp, cached, out],
        )
    register_prices(connection, load_catalog(tmp_path), date(2026, 5, 4), date(2026, 5, 4))
    yield connection
    connection.close()


def test_each_call_is_priced_by_token_kind_hardware_and_tier(con):
    rows = con.execute(f"SELECT span_id, cost_usd, price_row_id, priced, unpriced_reason FROM ({priced_calls_sql()}) c",
                       {"start": date(2026, 5, 4), "end": date(2026, 5, 4)}).df().set_index("span_id")
    assert rows.loc["a", "cost_usd"] == pytest.approx((6_000 * 2.75 + 4_000 * 1.375 + 2_000 * 11) / 1e6)
    assert rows.loc["b", "cost_usd"] == pytest.approx(90 / 3600 * 1.8)
    # gpt-5.4 in genai-prices: 2.5 / 0.25 / 15 per 1M, and 5 / 0.5 / 22.5 for every token of a call over 272K input.
    assert rows.loc["c", "cost_usd"] == pytest.approx((200_000 * 5 + 100_000 * 0.5 + 10_000 * 22.5) / 1e6)
    assert rows.loc["d", "cost_usd"] == pytest.approx((100_000 * 2.5 + 100_000 * 0.25 + 10_000 * 15) / 1e6)
    assert not rows.loc["e", "priced"] and pd.isna(rows.loc["e", "cost_usd"])
    assert not rows.loc["f", "priced"] and "no provider or model" in rows.loc["f", "unpriced_reason"]
    assert pd.isna(rows.loc["a", "unpriced_reason"])
    assert rows.loc["a", "price_row_id"] == "eu"


def test_reconciliation_leaves_days_without_a_bill_out_of_the_period():
    priced = pd.DataFrame({"day": pd.to_datetime(["2026-05-01", "2026-05-02", "2026-05-03"]),
                           "priced_calls": [10, 12, 9], "unpriced_calls": [0, 1, 0], "priced_usd": [2.0, 4.0, 3.0]})
    billed = pd.DataFrame({"day": pd.to_datetime(["2026-05-01", "2026-05-02", "2026-05-04"]),
                           "billed_usd": [2.1, 3.9, 0.5]})
    out = reconcile("azure", priced, billed)
    days = out[out["scope"] == "day"].set_index("day")
    assert days.loc["2026-05-01", "billing_gap_pct"] == pytest.approx(100 * 0.1 / 2.0)
    assert np.isnan(days.loc["2026-05-03", "billed_usd"])  # the bill is not in yet
    assert np.isnan(days.loc["2026-05-04", "billing_gap_pct"])  # billed, nothing priced
    total = out[out["scope"] == "period"].iloc[0]
    assert total["provider"] == "azure"
    assert total["priced_usd"] == pytest.approx(6.0) and total["billed_usd"] == pytest.approx(6.5)
    assert total["billing_gap_pct"] == pytest.approx(100 * 0.5 / 6.0)
    assert total["unpriced_calls"] == 1
