"""The growth and revenue report (notebooks/growth_revenue.ipynb): its headline, notes and KPIs.

`growth` measures traffic and the first-payment cohort from GA4 and the payments, `conversion` the funnel
and its rates against the previous period, `revenue` the revenue, fees, refunds and payment failures in the
reporting currency.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from statex_bi.kpis.growth_revenue import conversion, growth, revenue
from statex_bi.kpis.growth_revenue.conversion import RATES, conversion_comparison, headline_text
from statex_bi.kpis.growth_revenue.growth import (
    KEY_EVENTS,
    PAYMENT_WINDOW_DAYS,
    availability,
    first_payment_cohort,
    ga4_warnings,
    new_paying_customers,
    traffic_summary,
)
from statex_bi.metrics.record import Metric
from statex_bi.periods import Period

__all__ = ["conversion", "growth", "headline", "metrics", "notes", "revenue"]


def _finite(value: object) -> bool:
    return value is not None and not pd.isna(value) and math.isfinite(float(value))


def _rate_tags(row: pd.Series) -> dict[str, object]:
    return {
        "ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"]),
        "numerator": int(row["numerator"]), "denominator": int(row["denominator"]),
        "p_value_vs_previous": float(row["p_value"]) if _finite(row["p_value"]) else None,
        # the previous period's counts are added by `changes.compare`, for every rate KPI alike
        "dispersion": float(row["dispersion"]),
    }


def headline(con: duckdb.DuckDBPyConnection, period: Period, *, key_events: Sequence[str] = KEY_EVENTS,
             payment_window_days: int = PAYMENT_WINDOW_DAYS, **params: Any) -> str:
    """The report's headline sentence: the prototype-request conversion against the previous period."""
    if not availability(con).ga4:
        return "Conversion cannot be measured: GA4 traffic and key events are not loaded."
    comparison = conversion_comparison(con, period, key_events=key_events, payment_window_days=payment_window_days)
    return headline_text(comparison)


def notes(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> list[str]:
    """What the reader must know about the data: missing sources first, then caveats about loaded ones."""
    available = availability(con)
    warnings = ga4_warnings(con, period)["notes"] if available.ga4 else []
    return [*available.notes, *available.caveats, *warnings]


def metrics(
    con: duckdb.DuckDBPyConnection,
    period: Period,
    *,
    reporting_currency: str = "EUR",
    key_events: Sequence[str] = KEY_EVENTS,
    payment_window_days: int = PAYMENT_WINDOW_DAYS,
    **params: Any,
) -> list[Metric]:
    """The growth report's KPIs (docs/metrics.md), for `publish.publish`.

    Parts whose source is not loaded, and values that are undefined for the period (a rate without a
    denominator, an AOV without payments), carry the reason instead of a value.
    """
    available = availability(con)
    records: list[Metric] = []

    def emit(name: str, value: object, unit: str, source: str, tags: dict | None = None, why: str = "") -> None:
        if _finite(value) and not why:
            records.append(Metric(name, float(value), unit, source, tags or {}))
        else:
            reason = why or "undefined for the period (nothing to divide by)"
            records.append(Metric(name, None, unit, source, tags or {}, reason=reason))

    if available.ga4:
        summary = traffic_summary(con, period).iloc[0]
        warned = ga4_warnings(con, period)
        flags = {key: warned[key] for key in ("thresholded_days", "other_row_days", "other_sessions")}
        # No GA4 day in the period (before the first load, or past what GA4 keeps): nothing, never a 0.
        no_data = "" if int(summary["days_with_users"]) else "GA4 holds no data for the period"
        emit("ga4.sessions", summary["sessions"], "count", "ga4", flags, no_data)
        emit("ga4.daily_active_users", summary["daily_active_users"], "count", "ga4",
             {"days": int(summary["days_with_users"]), **flags}, no_data)
        comparison = conversion_comparison(con, period, key_events=key_events,
                                           payment_window_days=payment_window_days)
        for _, row in comparison.iterrows():
            needs_payments = row["metric"] == "conversion.first_payment_rate"
            why = "no payment provider loaded" if needs_payments and not available.payments else ""
            tags = _rate_tags(row) if _finite(row["rate"]) else {}
            if needs_payments:
                cohort = first_payment_cohort(con, period, payment_window_days=payment_window_days).iloc[0]
                if pd.isna(cohort["prototypes"]) and not why:
                    why = "AI calls (the prototypes) are not loaded"
                tags |= {"payment_window_days": int(cohort["payment_window_days"]),
                         "window_closed": bool(cohort["window_closed"])}
            emit(row["metric"], row["rate"], "fraction", "ai-calls+payments" if needs_payments else "ga4", tags,
                 why or no_data)
        emit("ga4.avg_session_duration_s", summary["avg_session_duration_s"], "s", "ga4", why=no_data)
    else:
        units = {"ga4.sessions": "count", "ga4.daily_active_users": "count", "ga4.avg_session_duration_s": "s"}
        for name in ("ga4.sessions", "ga4.daily_active_users", *(r[0] for r in RATES), "ga4.avg_session_duration_s"):
            emit(name, None, units.get(name, "fraction"), "ga4", why="GA4 not loaded")
    # A period outside the payments loaded (before the first, after the newest) is not a period without sales.
    outside = revenue.outside_payments(con, period) if available.payments else ""
    if available.revenue and outside:
        for name in ("revenue.gross", "revenue.refunds", "revenue.fees", "revenue.net", "revenue.aov"):
            emit(name, None, reporting_currency, "payments", {"provider": "all"}, why=outside)
    elif available.revenue:
        money = revenue.revenue(con, period, reporting_currency=reporting_currency)
        for _, row in money.iterrows():
            tags = {"provider": row["provider"], "fees_reported": bool(row["fees_reported"])}
            for kpi in ("gross", "refunds", "fees", "net"):
                emit(f"revenue.{kpi}", row[kpi], row["currency"], "payments", dict(tags))
        total = money[money["provider"] == "all"].iloc[0]
        emit("revenue.aov", total["aov"], total["currency"], "payments",
             {"provider": "all", "successful_payments": int(total["successful_payments"])})
    else:
        for name in ("revenue.gross", "revenue.refunds", "revenue.fees", "revenue.net", "revenue.aov"):
            emit(name, None, reporting_currency, "payments", {"provider": "all"}, why="payments or fx not loaded")
    new_paying = new_paying_customers(con, period) if available.payments and not outside else None
    emit("customers.new_paying", new_paying, "count", "payments",
         why=outside or ("" if available.payments else "no payment provider loaded"))
    if available.payments and outside:
        emit("payments.failure_rate", None, "fraction", "payments", {"provider": "all"}, why=outside)
    elif available.payments:
        for _, row in revenue.payment_failures(con, period).iterrows():
            tags = {"provider": row["provider"], "attempts": int(row["attempts"]), "failed": int(row["failed"])}
            if _finite(row["failure_rate"]):
                tags |= {"ci_low": float(row["ci_low"]), "ci_high": float(row["ci_high"])}
            emit("payments.failure_rate", row["failure_rate"], "fraction", "payments", tags)
    else:
        emit("payments.failure_rate", None, "fraction", "payments", {"provider": "all"},
             why="no payment provider loaded")
    return records
