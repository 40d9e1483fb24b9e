"""Infrastructure usage and actual cost by month, as the savings report reads them from the warehouse.

Every function takes the report's parameters as keyword arguments and ignores the ones it does not
use: `infra_prices` (the catalog file, default params/prices/infra/catalog.yaml). Definitions:
`statex_bi.kpis.infrastructure_savings`.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from statex_bi import warehouse
from statex_bi.periods import Period
from statex_bi.pricing.infra import (
    CDN,
    DIRECT,
    InfraCatalog,
    StorageMonth,
    load_infra_catalog,
    r2_cost,
    s3_cost,
    s3_paths,
)
from statex_bi.reads import recorded, recorded_catalog

R2_LINE = ("storage", "Cloudflare", "Cloudflare R2")
SES_LINE = ("email", "AWS", "Amazon Simple Email Service")
_FOCUS_MART = "marts.infra_costs_daily"
_R2_MART = "marts.r2_usage_daily"


def catalog(**params: Any) -> InfraCatalog:
    """The catalog (`infra_prices`); a recorded KPI function's frames list the rows its lookups returned."""
    return recorded_catalog(load_infra_catalog(params.get("infra_prices")))


def month_days(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def _covered(month: date, period: Period) -> int:
    """Days of `month` inside the period."""
    last = month.replace(day=month_days(month))
    return (min(last, period.end) - max(month, period.start)).days + 1


def whole_months(period: Period) -> bool:
    """The period is whole calendar months (nothing prorated)."""
    return period.start.day == 1 and period.end.day == month_days(period.end)


def ids_text(ids: Any) -> str:
    return ", ".join(sorted(set(ids)))


@recorded
def r2_months(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """R2 usage per month and storage class in the period, priced at R2 and at the matching S3 class.

    Returns:
        month, covered_days (of the month, in the period), storage_class, gb_months (decimal GB; the
        covered days' part of the month's), class_a, class_b, free_operations, unlisted_operations,
        auth_failures, egress_gb (decimal GB, estimate), r2_usd, s3_usd (the class at its matching S3
        class, without transfer out), unverified (catalog rows not checked that price s3_usd); one extra
        row per month with storage_class "all": every class like for like plus the delivery of all of
        their bytes (free allowances are per account), s3_usd by direct egress and s3_cdn_usd through
        CloudFront, unverified and unverified_cdn, price_rows and price_rows_cdn (catalog row ids) for each.
    """
    if not warehouse.loaded(con, _R2_MART):
        return pd.DataFrame()
    usage = con.execute("""
        SELECT CAST(date_trunc('month', day) AS DATE) AS month, lower(storage_class) AS storage_class,
               CAST(sum(peak_bytes) AS BIGINT) AS byte_days, CAST(sum(class_a) AS BIGINT) AS class_a,
               CAST(sum(class_b) AS BIGINT) AS class_b, CAST(sum(free_operations) AS BIGINT) AS free_operations,
               CAST(sum(unlisted_operations) AS BIGINT) AS unlisted_operations,
               CAST(sum(auth_failures) AS BIGINT) AS auth_failures, CAST(sum(egress_bytes) AS BIGINT) AS egress_bytes
        FROM marts.r2_usage_daily WHERE day BETWEEN $start AND $end GROUP BY ALL ORDER BY ALL""",
                        {"start": period.start, "end": period.end}).df()
    prices, rows = catalog(**params), []
    for month, part in usage.groupby("month", sort=True):
        month = pd.Timestamp(month).date()
        days, covered = month_days(month), _covered(month, period)
        classes = [StorageMonth(month, row.storage_class, int(row.byte_days), days, int(row.class_a),
                                int(row.class_b), int(row.egress_bytes), covered) for row in part.itertuples()]
        for row, usage_month in zip(part.itertuples(), classes, strict=True):
            s3 = s3_cost(usage_month, prices, transfer=False)
            rows.append({**row._asdict(), "month": month, "covered_days": covered,
                         "gb_months": float(usage_month.gb_months(10**9)), "egress_gb": row.egress_bytes / 1e9,
                         "r2_usd": r2_cost(usage_month, prices)["usd"].sum(), "s3_usd": float(s3["usd"].sum()),
                         "unverified": ids_text(prices.unverified([i for ids in s3["row_ids"] for i in ids]))})
        total = StorageMonth(month, "all", int(part["byte_days"].sum()), days, int(part["class_a"].sum()),
                             int(part["class_b"].sum()), int(part["egress_bytes"].sum()), covered)
        paths = s3_paths(classes, prices).set_index("path")
        rows.append({"month": month, "covered_days": covered, "storage_class": "all",
                     "gb_months": float(total.gb_months(10**9)), "class_a": total.class_a, "class_b": total.class_b,
                     "free_operations": int(part["free_operations"].sum()),
                     "unlisted_operations": int(part["unlisted_operations"].sum()),
                     "auth_failures": int(part["auth_failures"].sum()), "egress_gb": total.egress_bytes / 1e9,
                     "r2_usd": sum(r["r2_usd"] for r in rows[-len(classes):]),
                     "s3_usd": paths.loc[DIRECT, "usd"], "s3_cdn_usd": paths.loc[CDN, "usd"],
                     "unverified": ids_text(prices.unverified(paths.loc[DIRECT, "row_ids"])),
                     "unverified_cdn": ids_text(prices.unverified(paths.loc[CDN, "row_ids"])),
                     "price_rows": ids_text(paths.loc[DIRECT, "row_ids"]),
                     "price_rows_cdn": ids_text(paths.loc[CDN, "row_ids"])})
    columns = ["month", "covered_days", "storage_class", "gb_months", "class_a", "class_b", "free_operations",
               "unlisted_operations", "auth_failures", "egress_gb", "r2_usd", "s3_usd", "s3_cdn_usd", "unverified",
               "unverified_cdn", "price_rows", "price_rows_cdn"]
    return pd.DataFrame(rows, columns=columns)


@recorded
def actual_costs(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Actual cost per month and service line in the window: the FOCUS bills, and R2 priced from usage.

    Returns:
        month, service, provider, service_name, cost_usd, credits_usd, corrections_usd,
        unconverted_rows (FOCUS rows without an ECB rate: left out of cost_usd), origin.
    """
    frames = []
    if warehouse.loaded(con, _FOCUS_MART):
        frames.append(con.execute("""
            SELECT CAST(date_trunc('month', day) AS DATE) AS month, service, provider, service_name,
                   coalesce(sum(billed_usd), 0) AS cost_usd, coalesce(sum(credits_usd), 0) AS credits_usd,
                   coalesce(sum(corrections_usd), 0) AS corrections_usd,
                   CAST(sum(unconverted_rows) AS BIGINT) AS unconverted_rows, 'FOCUS BilledCost' AS origin
            FROM marts.infra_costs_daily WHERE day BETWEEN $start AND $end GROUP BY ALL ORDER BY ALL""",
                                  {"start": period.start, "end": period.end}).df())
    r2 = r2_months(con, period, **params)
    if not r2.empty:
        total = r2[r2["storage_class"] == "all"]
        frames.append(pd.DataFrame({
            "month": total["month"], "service": R2_LINE[0], "provider": R2_LINE[1], "service_name": R2_LINE[2],
            "cost_usd": total["r2_usd"], "credits_usd": 0.0, "corrections_usd": 0.0, "unconverted_rows": 0,
            "origin": "R2 usage x price catalog"}))
    if not frames:
        return pd.DataFrame(columns=["month", "service", "provider", "service_name", "cost_usd", "credits_usd",
                                     "corrections_usd", "unconverted_rows", "origin"])
    out = pd.concat(frames, ignore_index=True)
    out["month"] = pd.to_datetime(out["month"])
    return out.sort_values(["month", "service", "service_name"], ignore_index=True)


@recorded
def email_months(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    """SES e-mails (recipients) and actual SES cost per month in the period.

    Returns:
        month, emails, actual_usd, covered_days (of the month, in the period), days_in_month.
    """
    if not warehouse.loaded(con, _FOCUS_MART):
        return pd.DataFrame(columns=["month", "emails", "actual_usd", "covered_days", "days_in_month"])
    frame = con.execute("""
        SELECT CAST(date_trunc('month', day) AS DATE) AS month, coalesce(sum(emails), 0)::DOUBLE AS emails,
               coalesce(sum(billed_usd), 0) AS actual_usd
        FROM marts.infra_costs_daily WHERE day BETWEEN $start AND $end AND service = 'email'
        GROUP BY ALL ORDER BY ALL""", {"start": period.start, "end": period.end}).df()
    frame["covered_days"] = [_covered(pd.Timestamp(m).date(), period) for m in frame["month"]]
    frame["days_in_month"] = [month_days(pd.Timestamp(m).date()) for m in frame["month"]]
    return frame


@recorded
def services_without_comparator(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Service lines with no comparator, at actual cost on both sides.

    Returns:
        service, provider, service_name, actual_usd, counterfactual_usd (= actual).
    """
    actual = actual_costs(con, period, **params)
    keyed = actual.set_index(["service", "provider", "service_name"]).index
    others = actual[~keyed.isin([R2_LINE]) & ~(actual["service_name"] == SES_LINE[2])]
    out = others.groupby(["service", "provider", "service_name"], as_index=False)["cost_usd"].sum()
    return out.rename(columns={"cost_usd": "actual_usd"}).assign(counterfactual_usd=lambda f: f["actual_usd"])
