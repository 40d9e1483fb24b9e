"""Sensitivity of the infrastructure savings: storage as its egress varies, e-mail as its volume varies.

Same parameters and pricing as `statex_bi.kpis.infrastructure_savings` (whose report shows them).
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from statex_bi.kpis.infrastructure_usage import catalog, email_months, month_days, r2_months
from statex_bi.periods import Period
from statex_bi.pricing.infra import CDN, DIRECT, StorageMonth, cheapest_plan, r2_cost, s3_paths
from statex_bi.reads import recorded

EGRESS_SHARES = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # monthly egress / stored data
EMAIL_VOLUMES = (1_000, 3_000, 10_000, 30_000, 50_000, 100_000, 300_000, 1_000_000)


def _saved(elsewhere: float, actual: float) -> float:
    return 100 * (elsewhere - actual) / elsewhere if elsewhere else float("nan")


@recorded
def sensitivity_egress(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Storage savings of the period's last month as its egress varies (storage and operations kept), a
    month covered in part projected to the whole month.

    Returns:
        egress_share (monthly egress / stored data), label, egress_gb, r2_usd, s3_usd (direct egress),
        savings_pct, s3_cdn_usd and savings_cdn_pct (through CloudFront), measured (the row closest to the
        month's actual share).
    """
    r2 = r2_months(con, period, **params)
    if r2.empty:
        return pd.DataFrame()
    prices, month = catalog(**params), r2["month"].max()
    part = r2[(r2["month"] == month) & (r2["storage_class"] != "all")]
    days, rows = month_days(month), []
    scale = days / int(part["covered_days"].iloc[0])  # to the whole month
    part = part.assign(gb_months=part["gb_months"] * scale, class_a=part["class_a"] * scale,
                       class_b=part["class_b"] * scale, egress_gb=part["egress_gb"] * scale)
    stored_bytes = float(part["gb_months"].sum()) * 1e9
    actual_share = float(part["egress_gb"].sum()) * 1e9 / stored_bytes if stored_bytes else 0.0
    for share in sorted({*EGRESS_SHARES, round(actual_share, 3)}):
        r2_usd = 0.0
        egress = int(stored_bytes * share)
        classes = []
        for row in part.itertuples():
            weight = row.gb_months / part["gb_months"].sum() if part["gb_months"].sum() else 0.0
            usage = StorageMonth(month, row.storage_class, int(row.gb_months * 1e9 * days), days, int(row.class_a),
                                 int(row.class_b), int(egress * weight))
            r2_usd += r2_cost(usage, prices)["usd"].sum()
            classes.append(usage)
        paths = s3_paths(classes, prices).set_index("path")["usd"]
        measured = share == round(actual_share, 3)
        rows.append({"egress_share": share, "egress_gb": egress / 1e9,
                     "label": f"egress {share:.0%} of stored data" + (" (measured)" if measured else ""),
                     "r2_usd": r2_usd, "s3_usd": paths[DIRECT], "savings_pct": _saved(paths[DIRECT], r2_usd),
                     "s3_cdn_usd": paths[CDN], "savings_cdn_pct": _saved(paths[CDN], r2_usd), "measured": measured})
    return pd.DataFrame(rows)


@recorded
def sensitivity_email(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """SES against each rival's cheapest fitting plan as the monthly e-mail volume varies.

    Returns:
        One row per volume: emails, label, ses_payg_usd (pay-as-you-go), ses_plan_usd (cheapest 2026
        plan), `<provider>_usd` per rival (NaN when no plan fits), cheapest_rival, savings_pct (SES
        pay-as-you-go against the cheapest rival), measured (period_end's month, projected to the month).
    """
    prices = catalog(**params)
    month = period.end.replace(day=1)
    measured = email_months(con, period)
    actual_volume = None
    if not measured.empty:
        last = measured.iloc[-1]
        actual_volume = round(float(last["emails"]) * int(last["days_in_month"]) / int(last["covered_days"]))
    ses_plans = prices.plans("ses", month)
    rivals = [p for p in prices.providers(month) if p != "ses"]
    rows = []
    for volume in sorted({*EMAIL_VOLUMES, *([actual_volume] if actual_volume else [])}):
        payg = cheapest_plan(prices, "ses", volume, month, only=[p for p in ses_plans if p.plan == "pay-as-you-go"])
        plan = cheapest_plan(prices, "ses", volume, month, only=[p for p in ses_plans if p.plan != "pay-as-you-go"])
        row: dict[str, Any] = {"emails": volume, "label": f"{volume:,} e-mails" + (" (measured)" if volume ==
                                                                                 actual_volume else ""),
                               "ses_payg_usd": payg[1] if payg else float("nan"),
                               "ses_plan_usd": plan[1] if plan else float("nan")}
        best = None
        for provider in rivals:
            fit = cheapest_plan(prices, provider, volume, month)
            row[f"{provider}_usd"] = fit[1] if fit else float("nan")
            if fit and (best is None or fit[1] < best[1]):
                best = (f"{provider.title()} {fit[0].plan}", fit[1])
        row["cheapest_rival"] = best[0] if best else None
        row["savings_pct"] = 100 * (best[1] - row["ses_payg_usd"]) / best[1] if best and best[1] else float("nan")
        row["measured"] = volume == actual_volume
        rows.append(row)
    return pd.DataFrame(rows)
