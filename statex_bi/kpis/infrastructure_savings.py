"""Infrastructure savings: actual cost by service, what the same usage would cost elsewhere, the savings.

Every function takes the report's parameters as keyword arguments and ignores the ones it does not
use: `infra_prices` (the catalog file, default params/prices/infra/catalog.yaml).

Definitions (docs/metrics.md repeats them; the catalog's `rules` state the pricing):

- *Window*: the period itself. A month the period covers only in part (a week) is priced as its
  covered days' usage projected to the whole month, billed as a month (free allowances, billing
  increments, tiers, plan fees) and counted for the covered share of the month's days: monthly free
  tiers and minimums are prorated by days, so with constant usage a week's figures do not depend on
  where it falls in the month. FOCUS charges count on their ChargePeriodStart day.
- *Actual cost* of a service line: the signed sum of FOCUS BilledCost (credits, refunds and
  corrections included) in USD at the ECB rate of ChargePeriodStart's day; for Cloudflare R2, which
  exports no bill, its usage priced from the catalog as R2 bills it.
- *Service lines with a comparator*: Cloudflare R2 (storage) -> S3 us-east-1 like for like (R2
  Standard -> S3 Standard, R2 Infrequent Access -> S3 Standard-IA), the bytes served by direct egress
  or through CloudFront; Amazon SES (email) -> the cheapest fitting plan of each named e-mail provider
  (the month's volume, projected for part of a month, chooses the plan).
- *Scenario range*: every priced alternative (`scenarios`): storage by both delivery paths, e-mail at
  every fitting plan tier at both ends of quoted ranges, unverified catalog rows included. Base:
  direct egress, the cheapest checked plan at its base price; low / high: the least and the most the
  counterfactual can be (the catalog's `rules` say how). Unverified rows behind a figure are named.
- *Savings* = sum(counterfactual - actual) / sum(counterfactual), in percent: per service; over the
  lines with a comparator ("comparable", e-mail at its cheapest rival); and overall over every line
  ("all"), the lines without a comparator (compute, Azure AI) at actual cost on both sides.
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from statex_bi import targets, warehouse
from statex_bi.config import PARAMS_DIR, read_yaml
from statex_bi.exceptions import ParamsError
from statex_bi.kpis.infrastructure_usage import (  # the report reads these through this module too
    actual_costs,
    catalog,
    email_months,
    ids_text,
    r2_months,
    services_without_comparator,
    whole_months,
)
from statex_bi.kpis.verdicts import judge
from statex_bi.metrics.record import Metric
from statex_bi.periods import Period
from statex_bi.pricing.infra import BASE, CDN, DIRECT, HIGH, LOW, InfraCatalog, plan_options
from statex_bi.reads import Reads, note, recorded

CLAIMS_FILE = PARAMS_DIR / "claims.yaml"  # the seed's claimed savings live there (the ledger's claims)
S3_COMPARATOR = "S3, matching class"
COMPARABLE = "comparable"  # the subtotal over the services that have a rival
CLASS_MATCHES = {"standard": "R2 Standard at S3 Standard", "infrequentaccess": "R2 Infrequent Access at S3 Standard-IA"}

SCENARIO_COLUMNS = ["month", "service", "comparator", "scenario", "roles", "actual_usd", "counterfactual_usd",
                    "savings_pct", "checked", "price_rows", "unverified", "source", "retrieved_at"]


@recorded
def price_list(**params: Any) -> pd.DataFrame:
    """Every row of the catalog, for the report's price list (read from the catalog file)."""
    prices = catalog(**params)
    note(Reads(files={prices.file}))
    return prices.frame()


def _source(prices: InfraCatalog, ids: Any) -> tuple[str, Any]:
    """The rows' distinct source pages and the earliest day they were read."""
    rows = [r for r in prices.rows if r.row_id in set(ids)]
    pages = list(dict.fromkeys(r.source.split(" (")[0] for r in rows))
    return "; ".join(pages), min((r.retrieved_at for r in rows), default=None)


@recorded
def scenarios(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Every priced alternative of each service with a comparator, by month: the catalog's scenario rows.

    Storage: S3 like for like (each class at its match) by direct egress and by the CloudFront path.
    E-mail: every plan of every named provider that can send the month's e-mails (projected for part of
    a month, its cost counted for the covered share), at its price, or at the base and both ends of a
    quoted overage range.

    Returns:
        SCENARIO_COLUMNS: roles (which of low / base / high the row may set: "base" for direct egress
        and for a range's base price, "low" and "high" for a range's ends, all three for a plan with one
        price), savings_pct (of this row against the month's actual cost), checked (no unverified row
        prices it), price_rows and unverified (catalog row ids), source (pages), retrieved_at
        (earliest).
    """
    prices, rows = catalog(**params), []
    r2 = r2_months(con, period, **params)
    for row in r2[r2["storage_class"] == "all"].itertuples() if not r2.empty else []:
        present = r2[(r2["month"] == row.month) & (r2["storage_class"] != "all")]["storage_class"]
        matches = ", ".join(CLASS_MATCHES.get(klass, klass) for klass in sorted(present))
        for path, usd, flagged, ids in ((DIRECT, row.s3_usd, row.unverified, row.price_rows),
                                        (CDN, row.s3_cdn_usd, row.unverified_cdn, row.price_rows_cdn)):
            roles = (BASE, LOW, HIGH) if path == DIRECT else (LOW, HIGH)
            rows.append({"month": row.month, "service": "storage", "comparator": S3_COMPARATOR,
                         "scenario": f"S3 like for like ({matches}), {path}", "roles": roles,
                         "actual_usd": row.r2_usd, "counterfactual_usd": usd, "unverified": flagged, "price_rows": ids})
    for row in email_months(con, period).itertuples():
        month = pd.Timestamp(row.month).date()
        projected, share = row.emails * row.days_in_month / row.covered_days, row.covered_days / row.days_in_month
        for provider in prices.providers(month):
            if provider == "ses":
                continue
            for plan, end, cost in plan_options(prices, provider, projected, month):
                ranged = plan.quotes_range_for(projected)
                rows.append({"month": month, "service": "email", "comparator": provider.title(),
                             "scenario": plan.plan + (f", overage at {end} ${plan.overage(end):.2f} per 1,000"
                                                      if ranged else ""),
                             "roles": (end,) if ranged else (LOW, BASE, HIGH), "actual_usd": row.actual_usd,
                             "counterfactual_usd": cost * share, "price_rows": plan.row_id,
                             "unverified": ids_text(prices.unverified([plan.row_id]))})
    for row in rows:
        row["source"], row["retrieved_at"] = _source(prices, row["price_rows"].split(", "))
    out = pd.DataFrame(rows, columns=SCENARIO_COLUMNS)
    out["month"] = pd.to_datetime(out["month"])
    out["savings_pct"] = 100 * (out["counterfactual_usd"] - out["actual_usd"]) / out["counterfactual_usd"].where(
        out["counterfactual_usd"] != 0)
    out["checked"] = out["unverified"] == ""
    return out


ROLES = (LOW, BASE, HIGH)


def _pick(options: pd.DataFrame, role: str) -> pd.Series:
    """The option that sets `role` among one comparator's (or one service's) options of a month.

    Storage: base is direct egress, low and high the cheaper and the dearer path. E-mail: the cheapest
    option that may take the role; base and high among the checked ones when one fits (an unverified
    tier may only lower the low end).
    """
    candidates = options[options["roles"].map(lambda roles: role in roles)]
    if (options["service"] == "email").all() and role != LOW and candidates["checked"].any():
        candidates = candidates[candidates["checked"]]
    pick = candidates["counterfactual_usd"].idxmax() if role == HIGH and (
        candidates["service"] == "storage").all() else candidates["counterfactual_usd"].idxmin()
    return candidates.loc[pick]


def _flagged(*rows: pd.Series) -> str:
    return ids_text(i for row in rows for i in str(row["unverified"]).split(", ") if i)


@recorded
def counterfactuals(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Per month, each service line with a comparator against each comparator, with its scenario range.

    Returns:
        month, service, comparator, detail (the base case's scenario), actual_usd, counterfactual_usd
        (base), counterfactual_low_usd, counterfactual_high_usd (`_pick`), unverified (catalog rows not
        checked that price any of the three), savings_usd (base). An e-mail provider with no plan for
        the volume is left out.
    """
    options, rows = scenarios(con, period, **params), []
    for (month, service, comparator), part in options.groupby(["month", "service", "comparator"], sort=True):
        low, base, high = (_pick(part, role) for role in ROLES)
        rows.append({"month": month, "service": service, "comparator": comparator, "detail": base["scenario"],
                     "actual_usd": base["actual_usd"], "counterfactual_usd": base["counterfactual_usd"],
                     "counterfactual_low_usd": low["counterfactual_usd"],
                     "counterfactual_high_usd": high["counterfactual_usd"], "unverified": _flagged(low, base, high)})
    out = pd.DataFrame(rows, columns=["month", "service", "comparator", "detail", "actual_usd", "counterfactual_usd",
                                      "counterfactual_low_usd", "counterfactual_high_usd", "unverified"])
    out["savings_usd"] = out["counterfactual_usd"] - out["actual_usd"]
    return out


@recorded
def scenario_range(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """The low, base and high rows of each service's counterfactual, month by month: which scenario sets
    each (e-mail: the cheapest comparator at that end).

    Returns:
        month, service, role (low | base | high), comparator, scenario, actual_usd, counterfactual_usd,
        savings_pct, unverified, source, retrieved_at.
    """
    options, rows = scenarios(con, period, **params), []
    for (month, service), part in options.groupby(["month", "service"], sort=True):
        for role in ROLES:
            chosen = [_pick(group, role) for _, group in part.groupby("comparator")]
            best = max(chosen, key=lambda r: r["counterfactual_usd"]) if service == "storage" and role == HIGH \
                else min(chosen, key=lambda r: r["counterfactual_usd"])
            rows.append({"month": month, "service": service, "role": role, **{
                key: best[key] for key in ("comparator", "scenario", "actual_usd", "counterfactual_usd", "savings_pct",
                                           "unverified", "source", "retrieved_at")}})
    return pd.DataFrame(rows, columns=["month", "service", "role", "comparator", "scenario", "actual_usd",
                                       "counterfactual_usd", "savings_pct", "unverified", "source", "retrieved_at"])


@recorded
def savings(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Savings per service (storage, e-mail at its cheapest rival each month), over the services that have
    a rival ("comparable"), and overall over every service ("all": those without a rival at actual cost
    on both sides, which is what they would cost anywhere).

    Returns:
        service, comparator, actual_usd, counterfactual_usd, savings_usd, savings_pct (NaN without a
        counterfactual), range_low and range_high (the savings at the low and the high rows of
        `scenario_range`), unverified (catalog rows not checked behind any of them); services without
        data are left out.
    """
    ranges = scenario_range(con, period, **params)
    others = float(services_without_comparator(con, period, **params)["actual_usd"].sum()) if not ranges.empty else 0.0
    rows = []
    for service, comparator, extra in (
            ("storage", S3_COMPARATOR, 0.0), ("email", "cheapest named provider", 0.0),
            (COMPARABLE, "storage and e-mail only (the services with a rival)", 0.0),
            ("all", "every service; those without a rival at actual cost on both sides", others)):
        part = ranges if service in (COMPARABLE, "all") else ranges[ranges["service"] == service]
        if part.empty:
            continue
        by_role = {role: part[part["role"] == role] for role in ROLES}
        actual = float(by_role[BASE]["actual_usd"].sum()) + extra
        usd = {role: float(rows_["counterfactual_usd"].sum()) + extra for role, rows_ in by_role.items()}
        pct = {role: 100 * (value - actual) / value if value else float("nan") for role, value in usd.items()}
        rows.append({"service": service, "comparator": comparator, "actual_usd": actual,
                     "counterfactual_usd": usd[BASE], "savings_usd": usd[BASE] - actual, "savings_pct": pct[BASE],
                     "range_low": pct[LOW], "range_high": pct[HIGH],
                     "unverified": ids_text(i for text in part["unverified"] for i in str(text).split(", ") if i)})
    return pd.DataFrame(rows, columns=["service", "comparator", "actual_usd", "counterfactual_usd", "savings_usd",
                                       "savings_pct", "range_low", "range_high", "unverified"])


def seed_claim_targets() -> dict[str, tuple[str, float]]:
    """The seed's savings claims by service: (claim, percent), from params/claims.yaml (their one home)."""
    entries = (read_yaml(CLAIMS_FILE) or {}).get("claims") or []
    out = {}
    for entry in entries:
        if entry.get("metric") == "infra.savings_pct":
            service = (entry.get("tags") or {}).get("service")
            target = targets.resolve((entry.get("holds_if") or {}).get("at_least"), f"{CLAIMS_FILE}: {service}")
            if service is None or not isinstance(target, int | float):
                raise ParamsError(f"{CLAIMS_FILE}: an infra.savings_pct claim needs tags.service and holds_if.at_least")
            out[service] = (str(entry.get("claim", service)), float(target))
    return out


@recorded
def seed_claims(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """The seed's savings claims beside the measured savings of the period and a three-way verdict over the
    scenario range (holds when the whole range meets the claim, fails when none of it does).

    Returns:
        claim, seed_pct, measured_pct, difference_pts, range_low, range_high, criterion (in percent),
        verdict (holds | fails | inconclusive | not measured), unverified, comparator.
    """
    measured = savings(con, period, **params).set_index("service")
    rows = []
    for service, (claim, target) in seed_claim_targets().items():
        found = service in measured.index and pd.notna(measured.loc[service, "savings_pct"])
        row = measured.loc[service] if found else pd.Series(dtype=object)
        value = float(row["savings_pct"]) if found else float("nan")
        verdict = judge("at_least", target, value, (row["range_low"], row["range_high"], "")) if found else None
        rows.append({"claim": claim, "seed_pct": target, "measured_pct": value, "difference_pts": value - target,
                     "range_low": row.get("range_low", float("nan")), "range_high": row.get("range_high", float("nan")),
                     "criterion": f"≥ {target:.1f}%", "verdict": verdict or "not measured",
                     "unverified": row.get("unverified", ""), "comparator": row.get("comparator")})
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
                       {"start": period.start, "end": period.end}).fetchall()
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
    if not whole_months(period):
        out.append("The period covers part of a month: its usage is projected to the whole month, priced as billed "
                   "(free allowances, billing increments, plan fees) and counted for the days covered, so monthly "
                   "allowances and plan fees are prorated by days.")
    flagged = savings(con, period, **params)
    flagged = sorted({i for text in flagged["unverified"] for i in str(text).split(", ") if i}) if len(flagged) else []
    if flagged:
        out.append(f"Prices not checked against the reference material price these figures: {', '.join(flagged)} "
                   "(see the price catalog's Status column).")
    r2 = r2_months(con, period, **params)
    if not r2.empty and int(r2.loc[r2["storage_class"] == "all", "unlisted_operations"].sum()):
        out.append("Some R2 operations are on no price list (e.g. GetBucketSippyConfiguration): counted, not priced.")
    return out


def window_name(period: Period) -> str:
    """What the figures cover, named everywhere they appear: "calendar months (June 2026)" or "(May to June
    2026)", else the period's days with the proration rule, e.g. "1 June 2026 to 7 June 2026 (monthly
    allowances and plan fees prorated by days)"."""
    start, end = period.start, period.end
    if not whole_months(period):
        return f"{start:%-d %B %Y} to {end:%-d %B %Y} (monthly allowances and plan fees prorated by days)"
    first, last = f"{start:%B %Y}", f"{end:%B %Y}"
    return f"calendar months ({first})" if first == last else f"calendar months ({first} to {last})"


def headline(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> str:
    """e.g. "Calendar months (June 2026): infrastructure cost $71.20 against $242.75 elsewhere: 71%
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
    claimed = f", the seed claimed {claims['all'][1]:.0f}%" if "all" in (claims := seed_claim_targets()) else ""
    return (f"{name[0].upper()}{name[1:]}: infrastructure cost ${total['actual_usd']:,.2f} against "
            f"${total['counterfactual_usd']:,.2f} "
            f"elsewhere: {total['savings_pct']:.0f}% saved overall{claimed}; storage and e-mail alone, "
            f"the services with a rival: {comparable['savings_pct']:.0f}% ({', '.join(parts)}).")


def metrics(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> list[Metric]:
    """The published KPIs (docs/metrics.md): infra.cost.actual, infra.cost.counterfactual, infra.savings_pct.

    Returns:
        Metric records for `publish.publish`; an undefined savings ratio carries its reason.
    """
    records = []
    window = {"window_start": period.start.isoformat(), "window_end": period.end.isoformat(),
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
    claims = seed_claim_targets()
    for row in savings(con, period, **params).itertuples():
        defined = pd.notna(row.savings_pct)
        records.append(Metric("infra.savings_pct", float(row.savings_pct) if defined else None, "percent",
                                      source, {"service": row.service, "comparator": row.comparator,
                                               "seed_claim_pct": claims.get(row.service, (None, None))[1],
                                               "range_low": float(row.range_low) if defined else None,
                                               "range_high": float(row.range_high) if defined else None,
                                               "unverified_prices": row.unverified, **window}, "GAUGE",
                                      "" if defined else "no counterfactual cost in the window"))
    return records
