"""The AI bills (the OpenAI Costs API, Azure AI Services rows of the FOCUS export) and what they meet:
the priced calls reconciled against each bill, and the daily spend the budget forecast runs on (the
OpenAI bill on the days it covers, the priced calls elsewhere)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import duckdb
import pandas as pd

from statex_bi import warehouse
from statex_bi.exceptions import ParamsError
from statex_bi.kpis.ai_costs.measures import calls_sql
from statex_bi.periods import Period
from statex_bi.pricing.reconcile import RECONCILIATION_COLUMNS, reconcile
from statex_bi.reads import recorded


def daily_spend(con: duckdb.DuckDBPyConnection, window: Period, **params: Any) -> dict[date, float]:
    """AI spend per calendar day of `window` (0 on a day without spend): the OpenAI bill on the days the
    bill covers (from its first to its last cost bucket), the priced calls elsewhere (other tiers, and
    OpenAI days the bill does not cover yet)."""
    calls = calls_sql(con, window.start, window.end, params)
    covered = _bill_coverage(con)
    bill_from, bill_to = covered if covered else (date.max, date.min)
    daily = con.execute(f"""
        SELECT day, coalesce(sum(cost_usd), 0) AS cost_usd FROM ({calls}) c
        WHERE provider <> 'openai' OR day NOT BETWEEN $bill_from AND $bill_to GROUP BY day""",
                        {"start": window.start, "end": window.end, "bill_from": bill_from, "bill_to": bill_to}).df()
    by_day = {day: 0.0 for day in (window.start + timedelta(days=i) for i in range(window.days))}
    for day, cost in zip(pd.to_datetime(daily["day"]).dt.date, daily["cost_usd"], strict=True):
        by_day[day] += float(cost)
    for day, billed in zip(*billed_days(con, window), strict=True):
        by_day[day] += billed
    return by_day


def _bill_coverage(con: duckdb.DuckDBPyConnection) -> tuple[date, date] | None:
    """First and last day of the loaded OpenAI bill (None without one): the days it covers."""
    if not warehouse.table_exists(con, "marts", "openai_billing_daily"):
        return None
    first, last = con.execute("SELECT min(day), max(day) FROM marts.openai_billing_daily "
                              "WHERE has_cost_bucket").fetchall()[0]
    return None if first is None else (first, last)


def billed_days(con: duckdb.DuckDBPyConnection, window: Period) -> tuple[list[date], list[float]]:
    """The OpenAI bill per day of `window` within the bill's coverage (0 on a covered day without costs)."""
    covered = _bill_coverage(con)
    if covered is None:
        return [], []
    bill = _openai_bill(con, window)
    amounts = dict(zip(pd.to_datetime(bill["day"]).dt.date, bill["billed_usd"], strict=True))
    first, last = max(covered[0], window.start), min(covered[1], window.end)
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    return days, [float(amounts.get(day, 0.0)) for day in days]


@recorded
def azure_ai_bill(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    """Azure OpenAI's bill per day (FOCUS "Azure AI Services" rows, USD): the input of
    ai.billing_gap_pct [provider: azure].

    Returns:
        day, billed_usd; empty without FOCUS data.
    """
    if not warehouse.loaded(con, "marts.azure_ai_billing_daily"):
        return pd.DataFrame({"day": pd.Series(dtype="datetime64[ns]"), "billed_usd": pd.Series(dtype="float64")})
    return con.execute("""SELECT day, billed_usd FROM marts.azure_ai_billing_daily
                          WHERE day BETWEEN $start AND $end AND billed_usd IS NOT NULL ORDER BY day""",
                       {"start": period.start, "end": period.end}).df()


@recorded
def billing_reconciliation(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    provider: str = "openai",
    billed_daily: pd.DataFrame | None = None,
    **params: Any,
) -> pd.DataFrame:
    """A provider's priced calls against its bill, per day and for the period.

    Args:
        con: the warehouse.
        period: the report period.
        provider: the pricing provider whose calls are reconciled.
        billed_daily: the provider's bill as day, billed_usd; for "openai" it defaults to
            marts.openai_billing_daily (days with a cost bucket), for "azure" to the FOCUS export's
            Azure AI Services rows (marts.azure_ai_billing_daily). Other providers must pass theirs.
        **params: price_overrides.

    Returns:
        statex_bi.pricing.reconcile.RECONCILIATION_COLUMNS; empty when there is no bill to compare.
    """
    if billed_daily is None:
        if provider == "azure":
            billed_daily = azure_ai_bill(con, period)
        elif provider != "openai":
            raise ParamsError(f"billing_reconciliation: pass the billed daily series of {provider!r}")
        else:
            billed_daily = _openai_bill(con, period)
    if billed_daily.empty:
        return pd.DataFrame(columns=RECONCILIATION_COLUMNS)
    calls = calls_sql(con, period.start, period.end, params)
    priced = con.execute(f"""
        SELECT day, count(*) FILTER (WHERE priced) AS priced_calls,
               count(*) FILTER (WHERE NOT priced) AS unpriced_calls, coalesce(sum(cost_usd), 0) AS priced_usd
        FROM ({calls}) c WHERE provider = $provider GROUP BY day""",
        {"start": period.start, "end": period.end, "provider": provider}).df()
    return reconcile(provider, priced, billed_daily)


def _openai_bill(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    if not warehouse.table_exists(con, "marts", "openai_billing_daily"):
        return pd.DataFrame({"day": pd.Series(dtype="datetime64[ns]"), "billed_usd": pd.Series(dtype="float64")})
    return con.execute("""SELECT day, billed_usd FROM marts.openai_billing_daily
                          WHERE has_cost_bucket AND day BETWEEN $start AND $end ORDER BY day""",
                       {"start": period.start, "end": period.end}).df()
