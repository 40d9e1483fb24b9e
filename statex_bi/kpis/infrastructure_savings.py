"""Infrastructure savings: actual cost by service, what the same usage would cost elsewhere, the savings.

Every function takes the report's parameters as keyword arguments and ignores the ones it does not
use: `infra_prices` (the catalog file, default params/prices/infra/catalog.yaml).

Definitions (docs/metrics.md repeats them; the catalog's `rules` state the pricing):

- *Window*: the calendar months the period touches, from the 1st of period_start's month to
  period_end. A month cut by period_end is month-to-date: what its bill holds so far.
- *Actual cost* of a service line: the signed sum of FOCUS BilledCost (credits, refunds and
  corrections included) in USD at the ECB rate of ChargePeriodStart's day; for Cloudflare R2, which
  exports no bill, its usage priced from the catalog as R2 bills it.
- *Service lines with a comparator*: Cloudflare R2 (storage) -> S3 us-east-1 like for like (R2
  Standard -> S3 Standard, R2 Infrequent Access -> S3 Standard-IA); Amazon SES
  (email) -> the cheapest fitting plan of each named e-mail provider. For a month-to-date month the
  e-mail volume is projected to the whole month to choose the plan and the plan's cost is counted
  for the elapsed share of the month.
- *Savings* = sum(counterfactual - actual) / sum(counterfactual), in percent: per service; over the
  lines with a comparator ("comparable", e-mail at its cheapest rival); and overall over every line
  ("all"), the lines without a comparator (compute, Azure AI) at actual cost on both sides.
"""

from __future__ import annotations

import calendar
from datetime import date
from typing import Any

import duckdb
import pandas as pd

from statex_bi import warehouse
from statex_bi.metrics.record import Metric
from statex_bi.periods import Period
from statex_bi.pricing.infra import (
    InfraCatalog,
    StorageMonth,
    cheapest_plan,
    load_infra_catalog,
    r2_cost,
    s3_cost,
    s3_like_for_like,
)

SEED_CLAIMS = {"storage": 66.0, "email": 90.0, "all": 57.0}  # the seed's claimed savings, percent
R2_LINE = ("storage", "Cloudflare", "Cloudflare R2")
S3_COMPARATOR = "S3, matching class"
COMPARABLE = "comparable"  # the subtotal over the services that have a rival
SES_LINE = ("email", "AWS", "Amazon Simple Email Service")
EGRESS_SHARES = (0.0, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)  # monthly egress / stored data
EMAIL_VOLUMES = (1_000, 3_000, 10_000, 30_000, 50_000, 100_000, 300_000, 1_000_000)
_FOCUS_MART = "marts.infra_costs_daily"
_R2_MART = "marts.r2_usage_daily"


def catalog(**params: Any) -> InfraCatalog:
    return load_infra_catalog(params.get("infra_prices"))


def _window(period: Period) -> tuple[date, date]:
    return period.start.replace(day=1), period.end


def _month_days(month: date) -> int:
    return calendar.monthrange(month.year, month.month)[1]


def _elapsed(month: date, end: date) -> int:
    """Days of `month` up to `end` (all of them when the month ended before `end`)."""
    last = month.replace(day=_month_days(month))
    return (min(last, end) - month).days + 1


def r2_months(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """R2 usage per month and storage class in the window, priced at R2 and at the matching S3 class.

    Returns:
        month, storage_class, gb_months (decimal GB), class_a, class_b, free_operations,
        unlisted_operations, auth_failures, egress_gb (decimal GB, estimate), r2_usd, s3_usd (the class
        at its matching S3 class, without transfer out); one extra row per month with storage_class "all"
        whose s3_usd is every class like for like plus the transfer out of all of them (S3's free
        transfer is per account), and s3_without_egress_usd the same without that transfer.
    """
    if not warehouse.loaded(con, _R2_MART):
        return pd.DataFrame()
    start, end = _window(period)
    usage = con.execute("""
        SELECT CAST(date_trunc('month', day) AS DATE) AS month, lower(storage_class) AS storage_class,
               CAST(sum(peak_bytes) AS BIGINT) AS byte_days, CAST(sum(class_a) AS BIGINT) AS class_a,
               CAST(sum(class_b) AS BIGINT) AS class_b, CAST(sum(free_operations) AS BIGINT) AS free_operations,
               CAST(sum(unlisted_operations) AS BIGINT) AS unlisted_operations,
               CAST(sum(auth_failures) AS BIGINT) AS auth_failures, CAST(sum(egress_bytes) AS BIGINT) AS egress_bytes
        FROM marts.r2_usage_daily WHERE day BETWEEN $start AND $end GROUP BY ALL ORDER BY ALL""",
                        {"start": start, "end": end}).df()
    prices, rows = catalog(**params), []
    for month, part in usage.groupby("month", sort=True):
        month = pd.Timestamp(month).date()
        days = _month_days(month)
        for row in part.itertuples():
            usage_month = StorageMonth(month, row.storage_class, int(row.byte_days), days, int(row.class_a),
                                       int(row.class_b), int(row.egress_bytes))
            rows.append({**row._asdict(), "month": month, "gb_months": float(usage_month.gb_months(10**9)),
                         "egress_gb": row.egress_bytes / 1e9, "r2_usd": r2_cost(usage_month, prices)["usd"].sum(),
                         "s3_usd": float("nan")})
        classes = [StorageMonth(month, row.storage_class, int(row.byte_days), days, int(row.class_a),
                                int(row.class_b), int(row.egress_bytes)) for row in part.itertuples()]
        for entry, usage_month in zip(rows[-len(classes):], classes, strict=True):
            entry["s3_usd"] = float(s3_cost(usage_month, prices, transfer=False)["usd"].sum())
        total = StorageMonth(month, "all", int(part["byte_days"].sum()), days, int(part["class_a"].sum()),
                             int(part["class_b"].sum()), int(part["egress_bytes"].sum()))
        rows.append({"month": month, "storage_class": "all", "gb_months": float(total.gb_months(10**9)),
                     "class_a": total.class_a, "class_b": total.class_b,
                     "free_operations": int(part["free_operations"].sum()),
                     "unlisted_operations": int(part["unlisted_operations"].sum()),
                     "auth_failures": int(part["auth_failures"].sum()), "egress_gb": total.egress_bytes / 1e9,
                     "r2_usd": sum(r["r2_usd"] for r in rows if r["month"] == month),
                     "s3_usd": s3_like_for_like(classes, prices),
                     "s3_without_egress_usd": sum(r["s3_usd"] for r in rows[-len(classes):])})
    columns = ["month", "storage_class", "gb_months", "class_a", "class_b", "free_operations", "unlisted_operations",
               "auth_failures", "egress_gb", "r2_usd", "s3_usd", "s3_without_egress_usd"]
    return pd.DataFrame(rows, columns=columns)


def actual_costs(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Actual cost per month and service line in the window: the FOCUS bills, and R2 priced from usage.

    Returns:
        month, service, provider, service_name, cost_usd, credits_usd, corrections_usd,
        unconverted_rows (FOCUS rows without an ECB rate: left out of cost_usd), origin.
    """
    start, end = _window(period)
    frames = []
    if warehouse.loaded(con, _FOCUS_MART):
        frames.append(con.execute("""
            SELECT CAST(date_trunc('month', day) AS DATE) AS month, service, provider, service_name,
                   coalesce(sum(billed_usd), 0) AS cost_usd, coalesce(sum(credits_usd), 0) AS credits_usd,
                   coalesce(sum(corrections_usd), 0) AS corrections_usd,
                   CAST(sum(unconverted_rows) AS BIGINT) AS unconverted_rows, 'FOCUS BilledCost' AS origin
            FROM marts.infra_costs_daily WHERE day BETWEEN $start AND $end GROUP BY ALL ORDER BY ALL""",
                                  {"start": start, "end": end}).df())
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


def email_months(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    """SES e-mails (recipients) and actual SES cost per month in the window.

    Returns:
        month, emails, actual_usd, days_elapsed, days_in_month.
    """
    if not warehouse.loaded(con, _FOCUS_MART):
        return pd.DataFrame(columns=["month", "emails", "actual_usd", "days_elapsed", "days_in_month"])
    start, end = _window(period)
    frame = con.execute("""
        SELECT CAST(date_trunc('month', day) AS DATE) AS month, coalesce(sum(emails), 0)::DOUBLE AS emails,
               coalesce(sum(billed_usd), 0) AS actual_usd
        FROM marts.infra_costs_daily WHERE day BETWEEN $start AND $end AND service = 'email'
        GROUP BY ALL ORDER BY ALL""", {"start": start, "end": end}).df()
    frame["days_elapsed"] = [_elapsed(pd.Timestamp(m).date(), end) for m in frame["month"]]
    frame["days_in_month"] = [_month_days(pd.Timestamp(m).date()) for m in frame["month"]]
    return frame


def email_counterfactual(prices: InfraCatalog, provider: str, month: date, emails: float, elapsed: int,
                         days: int) -> tuple[float, str] | None:
    """The provider's cheapest fitting plan for the month's e-mails (projected for a partial month) and
    its cost for the elapsed share of the month; None when no plan of the provider can send them."""
    projected = emails * days / elapsed
    best = cheapest_plan(prices, provider, projected, month)
    if best is None:
        return None
    plan, cost = best
    return cost * elapsed / days, plan.plan or plan.row_id


def counterfactuals(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Per month, each service line with a comparator against each comparator.

    Returns:
        month, service, comparator, detail (the plan or price list used), actual_usd,
        counterfactual_usd, counterfactual_low_usd (the low scenario: storage without S3's internet
        egress, as if a CDN served the bytes, its own price not counted; e-mail as is), savings_usd. An
        e-mail provider with no plan for the volume is left out.
    """
    prices, rows = catalog(**params), []
    r2 = r2_months(con, period, **params)
    for row in r2[r2["storage_class"] == "all"].itertuples() if not r2.empty else []:
        rows.append({"month": row.month, "service": "storage", "comparator": S3_COMPARATOR,
                     "detail": "S3 us-east-1, same usage, each R2 class at its match (Standard, Standard-IA)",
                     "actual_usd": row.r2_usd, "counterfactual_usd": row.s3_usd,
                     "counterfactual_low_usd": row.s3_without_egress_usd})
    for row in email_months(con, period).itertuples():
        month = pd.Timestamp(row.month).date()
        for provider in prices.providers(month):
            if provider == "ses":
                continue
            priced = email_counterfactual(prices, provider, month, row.emails, row.days_elapsed, row.days_in_month)
            if priced is not None:
                rows.append({"month": month, "service": "email", "comparator": provider.title(),
                             "detail": priced[1], "actual_usd": row.actual_usd, "counterfactual_usd": priced[0],
                             "counterfactual_low_usd": priced[0]})
    out = pd.DataFrame(rows, columns=["month", "service", "comparator", "detail", "actual_usd", "counterfactual_usd",
                                      "counterfactual_low_usd"])
    out["month"] = pd.to_datetime(out["month"])
    out["savings_usd"] = out["counterfactual_usd"] - out["actual_usd"]
    return out


def savings(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Savings per service (storage, e-mail at its cheapest rival each month), over the services that have
    a rival ("comparable"), and overall over every service ("all": those without a rival at actual cost
    on both sides, which is what they would cost anywhere).

    Returns:
        service, comparator, actual_usd, counterfactual_usd, savings_usd, savings_pct (NaN without a
        counterfactual), range_low and range_high (the scenario range: the base case, and storage served
        without S3's internet egress, an upper bound of what a CDN path would charge being unknown here);
        services without data are left out.
    """
    lines = counterfactuals(con, period, **params)
    chosen = lines.loc[lines.groupby(["month", "service"])["counterfactual_usd"].idxmin()] if not lines.empty else lines
    others = float(services_without_comparator(con, period, **params)["actual_usd"].sum()) if not lines.empty else 0.0
    rows = []
    for service, comparator, extra in (
            ("storage", S3_COMPARATOR, 0.0), ("email", "cheapest named provider", 0.0),
            (COMPARABLE, "storage and e-mail only (the services with a rival)", 0.0),
            ("all", "every service; those without a rival at actual cost on both sides", others)):
        part = chosen if service in (COMPARABLE, "all") else chosen[chosen["service"] == service]
        if part.empty:
            continue
        actual = float(part["actual_usd"].sum()) + extra
        counterfactual = float(part["counterfactual_usd"].sum()) + extra
        low = float(part["counterfactual_low_usd"].sum()) + extra
        pct = 100 * (counterfactual - actual) / counterfactual if counterfactual else float("nan")
        pct_low = 100 * (low - actual) / low if low else float("nan")
        rows.append({"service": service, "comparator": comparator, "actual_usd": actual,
                     "counterfactual_usd": counterfactual, "savings_usd": counterfactual - actual, "savings_pct": pct,
                     "range_low": min(pct, pct_low), "range_high": max(pct, pct_low)})
    return pd.DataFrame(rows, columns=["service", "comparator", "actual_usd", "counterfactual_usd", "savings_usd",
                                       "savings_pct", "range_low", "range_high"])


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


def sensitivity_egress(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Storage savings of the window's last month as its egress varies (storage and operations kept).

    Returns:
        egress_share (monthly egress / stored data), label, egress_gb, r2_usd, s3_usd, savings_pct,
        measured (the row closest to the month's actual share).
    """
    r2 = r2_months(con, period, **params)
    if r2.empty:
        return pd.DataFrame()
    prices, month = catalog(**params), r2["month"].max()
    part = r2[(r2["month"] == month) & (r2["storage_class"] != "all")]
    days, rows = _month_days(month), []
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
        s3_usd = s3_like_for_like(classes, prices)
        measured = share == round(actual_share, 3)
        rows.append({"egress_share": share, "egress_gb": egress / 1e9,
                     "label": f"egress {share:.0%} of stored data" + (" (measured)" if measured else ""),
                     "r2_usd": r2_usd, "s3_usd": s3_usd,
                     "savings_pct": 100 * (s3_usd - r2_usd) / s3_usd if s3_usd else float("nan"),
                     "measured": measured})
    return pd.DataFrame(rows)


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
        actual_volume = round(float(last["emails"]) * int(last["days_in_month"]) / int(last["days_elapsed"]))
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


def seed_claims(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """The seed's three claims beside the measured savings of the window.

    Returns:
        claim, seed_pct, measured_pct, difference_pts, comparator.
    """
    measured = savings(con, period, **params).set_index("service")
    names = {"storage": "R2 is 66% cheaper than S3", "email": "SES is 90% cheaper than the alternatives",
             "all": "57% infrastructure savings overall"}
    rows = []
    for service, claim in SEED_CLAIMS.items():
        value = float(measured.loc[service, "savings_pct"]) if service in measured.index else float("nan")
        rows.append({"claim": names[service], "seed_pct": claim, "measured_pct": value,
                     "difference_pts": value - claim,
                     "comparator": measured.loc[service, "comparator"] if service in measured.index else None})
    return pd.DataFrame(rows)


def cost_by_service(actual: pd.DataFrame) -> pd.DataFrame:
    """`actual_costs` summed per service over the window (service, cost_usd), for the chart."""
    return actual.groupby("service", as_index=False)["cost_usd"].sum()


def counterfactual_by_comparator(lines: pd.DataFrame) -> pd.DataFrame:
    """`counterfactuals` summed per service and comparator (service, comparator, counterfactual_usd)."""
    return lines.groupby(["service", "comparator"], as_index=False)["counterfactual_usd"].sum()


def claims_side_by_side(claims: pd.DataFrame) -> pd.DataFrame:
    """`seed_claims` as one bar per claim and figure (bar, figure, savings_pct); unmeasured claims left out."""
    figures = claims.melt(id_vars="claim", value_vars=["seed_pct", "measured_pct"], var_name="figure",
                          value_name="savings_pct").dropna()
    figures["figure"] = figures["figure"].map({"seed_pct": "seed's claim", "measured_pct": "measured"})
    return figures.assign(bar=figures["claim"] + ": " + figures["figure"])


def closed_period_corrections(con: duckdb.DuckDBPyConnection, period: Period) -> list[str]:
    """One sentence per closed billing period in the window that a later delivery changed (the costs
    shown are the newer delivery's)."""
    if not warehouse.loaded(con, "staging.stg_billing__corrections"):
        return []
    rows = con.execute("""SELECT billing_period_start, delivery_slot, billing_currency, previous_billed_cost,
                                 billed_cost, delivered_at
                          FROM staging.stg_billing__corrections
                          WHERE billing_period_start <= $end AND billing_period_end > $start
                          ORDER BY billing_period_start, delivery_slot, delivered_at""",
                       {"start": _window(period)[0], "end": period.end}).fetchall()
    return [f"The closed billing period {start:%B %Y} of {slot} was re-delivered on {delivered:%Y-%m-%d}: billed "
            f"{previous:,.2f} then {billed:,.2f} {currency}; the costs shown are the later delivery's."
            for start, slot, currency, previous, billed, delivered in rows]


def notes(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> list[str]:
    """What the reader must know about the data: missing sources, unconverted rows, partial months."""
    out = []
    if not warehouse.loaded(con, "raw_billing.charges"):
        out.append("No FOCUS billing export is loaded (`statex-bi ingest billing --dir PATH`): AWS and Azure costs "
                   "and the e-mail comparison are empty.")
    if not warehouse.loaded(con, "raw_cloudflare.r2_storage"):
        out.append("Cloudflare R2 usage is not loaded (`statex-bi ingest cloudflare`): the storage comparison is "
                   "empty.")
    out.extend(closed_period_corrections(con, period))
    actual = actual_costs(con, period, **params)
    missing = int(actual["unconverted_rows"].sum()) if not actual.empty else 0
    if missing:
        out.append(f"{missing:,} FOCUS rows have no ECB rate for their day (load `statex-bi ingest fx`): they are "
                   "left out of every cost, so costs are lower bounds.")
    if period.end < period.end.replace(day=_month_days(period.end)):
        out.append(f"{period.end:%B %Y} is month-to-date (to {period.end:%d %B}): R2 and S3 free allowances apply to "
                   "the month so far; e-mail plans are chosen for the projected month and counted pro rata.")
    r2 = r2_months(con, period, **params)
    if not r2.empty and int(r2.loc[r2["storage_class"] == "all", "unlisted_operations"].sum()):
        out.append("Some R2 operations are on no price list (e.g. GetBucketSippyConfiguration): counted, not priced.")
    return out


def window_name(period: Period) -> str:
    """What the figures cover, named everywhere they appear: "month to date (1-7 June 2026)" when the
    window ends inside a month (monthly bills and free allowances are not prorated: the figures move
    with the day of the month), else "calendar months (June 2026)" or "(May to June 2026)"."""
    start, end = _window(period)
    if end.day != _month_days(end):
        return f"month to date ({start:%-d %B %Y} to {end:%-d %B %Y})"
    first, last = f"{start:%B %Y}", f"{end:%B %Y}"
    return f"calendar months ({first})" if first == last else f"calendar months ({first} to {last})"


def headline(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> str:
    """e.g. "Month to date (1 June 2026 to 7 June 2026): infrastructure cost $71.20 against $242.75 elsewhere: 71%
    saved overall, the seed claimed 57%; storage and e-mail alone, the services with a rival: 81% (storage
    84%, e-mail 62%)."."""
    table = savings(con, period, **params).set_index("service")
    if "all" not in table.index:
        return "No storage or e-mail usage to compare in this window."
    total, comparable = table.loc["all"], table.loc[COMPARABLE]
    parts = [f"{name} {table.loc[key, 'savings_pct']:.0f}%" for key, name in (("storage", "storage"),
                                                                             ("email", "e-mail"))
             if key in table.index]
    name = window_name(period)
    return (f"{name[0].upper()}{name[1:]}: infrastructure cost ${total['actual_usd']:,.2f} against "
            f"${total['counterfactual_usd']:,.2f} "
            f"elsewhere: {total['savings_pct']:.0f}% saved overall, the seed claimed 57%; storage and e-mail alone, "
            f"the services with a rival: {comparable['savings_pct']:.0f}% ({', '.join(parts)}).")


def metrics(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> list[Metric]:
    """The published KPIs (docs/metrics.md): infra.cost.actual, infra.cost.counterfactual, infra.savings_pct.

    Returns:
        Metric records for `publish.publish`; an undefined savings ratio carries its reason.
    """
    records = []
    window = {"window_start": _window(period)[0].isoformat(), "window_end": period.end.isoformat(),
              "window": window_name(period)}
    source = "billing/cloudflare"
    actual = actual_costs(con, period, **params)
    if not actual.empty:
        for service, cost in [("all", actual["cost_usd"].sum()), *actual.groupby("service")["cost_usd"].sum().items()]:
            records.append(Metric("infra.cost.actual", float(cost), "USD", source,
                                          {"service": service, **window}, "GAUGE", ""))
    lines = counterfactuals(con, period, **params)
    for (service, comparator), part in lines.groupby(["service", "comparator"]):
        records.append(Metric("infra.cost.counterfactual", float(part["counterfactual_usd"].sum()), "USD",
                                      source, {"service": service, "comparator": comparator, **window}, "GAUGE", ""))
    for row in savings(con, period, **params).itertuples():
        defined = pd.notna(row.savings_pct)
        records.append(Metric("infra.savings_pct", float(row.savings_pct) if defined else None, "percent",
                                      source, {"service": row.service, "comparator": row.comparator,
                                               "seed_claim_pct": SEED_CLAIMS.get(row.service),
                                               "range_low": float(row.range_low) if defined else None,
                                               "range_high": float(row.range_high) if defined else None,
                                               **window}, "GAUGE",
                                      "" if defined else "no counterfactual cost in the window"))
    return records
