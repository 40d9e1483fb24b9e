"""Priced calls against a provider's bill, day by day.

The reconciliation takes any provider's billed daily series, so a second bill plugs in without
changes here: OpenAI's comes from the Costs API (marts.openai_billing_daily); Azure's will come from
a FOCUS billing export, turned into the same two columns (day, billed_usd).

Definitions:
    billing gap (%) = 100 x (billed - priced) / priced
A day without a bill (not published yet, or not loaded) has billed = NaN and stays out of the
period total on both sides, so a bill that lags a day does not read as a -100 % gap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

RECONCILIATION_COLUMNS = [
    "provider", "scope", "day", "priced_calls", "unpriced_calls", "priced_usd", "billed_usd", "gap_usd",
    "billing_gap_pct",
]


def reconcile(provider: str, priced: pd.DataFrame, billed: pd.DataFrame) -> pd.DataFrame:
    """Match a provider's priced calls to its bill.

    Args:
        provider: e.g. "openai"; copied to every row.
        priced: one row per day: day, priced_usd (sum of the priced calls' cost), priced_calls,
            unpriced_calls (calls the catalog could not price: the bill includes them, the sum not).
        billed: one row per billed day: day, billed_usd.

    Returns:
        One row per day in either input (scope "day"), then one row scope "period" over the days that
        have a bill; columns RECONCILIATION_COLUMNS. billing_gap_pct is NaN where priced_usd is 0.
    """
    days = pd.merge(
        priced[["day", "priced_calls", "unpriced_calls", "priced_usd"]].assign(day=lambda f: pd.to_datetime(f["day"])),
        billed[["day", "billed_usd"]].assign(day=lambda f: pd.to_datetime(f["day"])),
        on="day",
        how="outer",
    ).sort_values("day", kind="stable")
    for column in ("priced_calls", "unpriced_calls", "priced_usd"):
        days[column] = days[column].astype("float64").fillna(0.0)
    days["billed_usd"] = days["billed_usd"].astype("float64")
    days["scope"] = "day"
    with_bill = days[days["billed_usd"].notna()]
    total = pd.DataFrame(
        {
            "scope": ["period"],
            "day": [pd.NaT],
            "priced_calls": [with_bill["priced_calls"].sum()],
            "unpriced_calls": [with_bill["unpriced_calls"].sum()],
            "priced_usd": [with_bill["priced_usd"].sum()],
            "billed_usd": [with_bill["billed_usd"].sum() if len(with_bill) else np.nan],
        }
    )
    out = pd.concat([days, total], ignore_index=True) if len(days) else total
    out["provider"] = provider
    out["gap_usd"] = out["billed_usd"] - out["priced_usd"]
    out["billing_gap_pct"] = 100 * out["gap_usd"] / out["priced_usd"].where(out["priced_usd"] > 0)
    out[["priced_calls", "unpriced_calls"]] = out[["priced_calls", "unpriced_calls"]].astype("int64")
    return out[RECONCILIATION_COLUMNS].reset_index(drop=True)
