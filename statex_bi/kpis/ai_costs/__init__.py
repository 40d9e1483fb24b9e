"""The AI cost report's words and published numbers: `notes`, `headline` and `metrics` (statex_bi.publish).

The numbers come from statex_bi.kpis.ai_costs.measures (definitions in its docstring and docs/metrics.md).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import pandas as pd

from statex_bi import formatting, warehouse
from statex_bi.kpis.ai_costs.bills import billing_reconciliation
from statex_bi.kpis.ai_costs.budget import budget_status
from statex_bi.kpis.ai_costs.measures import (
    TIERS,
    USAGE_UNKNOWN,
    price_per_1k_tokens,
    summary,
    tier_inference,
    tier_performance,
    unpriced_calls,
    usage_by_day,
)
from statex_bi.metrics.record import Metric
from statex_bi.periods import Period

DAILY_HISTORY_DAYS = 28


def notes(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> list[str]:
    """What the reader must know about the data behind the report: missing sources, unpriced calls.

    Returns:
        Sentences for `display.notice`, most important first; empty when there is nothing to say.
    """
    notes = []
    sources = {name: warehouse.table_exists(con, f"raw_{name}", table) for name, table in
               (("sentry", "gen_ai_spans"), ("ai_calls", "calls"), ("openai", "costs"))}
    if not sources["sentry"] and not sources["ai_calls"]:
        notes.append("No AI calls are loaded: neither the Sentry spans (`statex-bi ingest sentry`) nor a JSONL "
                     "import (`statex-bi ingest ai-calls --file PATH`). Every number below is empty.")
    elif not sources["sentry"]:
        notes.append("Sentry spans are not loaded: AI calls come from the JSONL import only.")
    if not sources["openai"]:
        notes.append("The OpenAI bill is not loaded (`statex-bi ingest openai`): the billing reconciliation is empty.")
    if not warehouse.table_exists(con, "raw_billing", "charges"):
        notes.append("Azure's bill is not loaded (`statex-bi ingest billing --dir PATH` with its FOCUS export): the "
                     "Azure reconciliation is empty.")
    missing = unpriced_calls(con, period, **params)
    unknown = missing[missing["reason"] == USAGE_UNKNOWN]
    missing = missing[missing["reason"] != USAGE_UNKNOWN]
    if not missing.empty:
        models = ", ".join(f"{r.provider}/{r.model}" for r in missing.itertuples())
        count = int(missing["calls"].sum())
        notes.append(f"{count:,} call{'s' if count != 1 else ''} could not be priced ({models}): listed below and "
                     "left out of every cost, so costs are lower bounds. Add a row to the price overrides.")
    if not unknown.empty:
        count = int(unknown["calls"].sum())
        notes.append(f"{count:,} paid call{'s' if count != 1 else ''} reported no token usage (timeouts): usage "
                     "unknown, counted as unpriced and left out of the costs (never $0), which are lower bounds.")
    inferred = tier_inference(con, period, **params)
    if not inferred.empty:
        count = int(inferred["calls"].sum())
        tiers = ", ".join(f"{int(r.calls):,} {r.tier}" for r in inferred.itertuples())
        notes.append(f"{count:,} call{'s' if count != 1 else ''} carried no tier attribute; the tier was inferred "
                     f"from gen_ai.system ({tiers}).")
    return notes


def headline(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> str:
    """The report's headline sentence: cost per prototype, its median, the change, the bill's gap.

    Returns:
        e.g. "A prototype cost $0.42 in AI calls (median $0.31), 18% less than the previous period;
        the OpenAI bill is 1.8% above list price."
    """
    numbers = summary(con, period, **params)
    current, previous = numbers.iloc[0], numbers.iloc[1]
    if current["calls"] == 0:
        return "No AI calls in this period."
    if current["prototypes"] == 0:
        text = f"{int(current['calls']):,} AI calls, none linked to a prototype"
        if pd.notna(current["cost_usd"]):
            text += f", cost {formatting.money(current['cost_usd'], 'USD')}"
    elif pd.isna(current["cost_usd"]):
        text = f"{int(current['prototypes']):,} prototypes made AI calls that no catalog row prices"
    else:
        text = f"A prototype cost {formatting.money(current['cost_per_prototype'], 'USD')} in AI calls"
        if pd.notna(current["prototype_cost_p50"]):
            text += f" (median {formatting.money(current['prototype_cost_p50'], 'USD')})"
        before = previous["cost_per_prototype"]
        if pd.notna(before) and before > 0:
            change = 100 * (current["cost_per_prototype"] - before) / before
            text += f", {abs(change):.0f}% {'less' if change < 0 else 'more'} than the previous period"
    gap = billing_reconciliation(con, period, **params)
    period_gap = gap.loc[gap["scope"] == "period", "billing_gap_pct"]
    if len(period_gap) and pd.notna(period_gap.iloc[0]):
        value = float(period_gap.iloc[0])
        text += f"; the OpenAI bill is {abs(value):.1f}% {'above' if value >= 0 else 'below'} list price"
    if current["unpriced_calls"]:
        count = int(current["unpriced_calls"])
        text += f" ({count:,} call{'s' if count != 1 else ''} unpriced: costs are lower bounds)"
    return text + "."


def metrics(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> list[Metric]:
    """The KPIs the report publishes (docs/metrics.md), for `publish.publish`.

    Undefined values (a ratio without prototypes, a gap without a bill) carry a reason instead.
    """
    records: list[Metric] = []

    def emit(name: str, value: float, unit: str, metric_type: str = "GAUGE", source: str = "sentry/ai-calls",
             why: str = "undefined for the period (nothing to divide by)", **tags: Any) -> None:
        defined = value is not None and not pd.isna(value)
        # An undefined tag (NaN) is published as null.
        clean = {k: (None if pd.isna(v) else v) if isinstance(v, float) else v for k, v in tags.items()}
        records.append(Metric(name, float(value) if defined else None, unit, source, clean, metric_type,
                              "" if defined else why))

    numbers = summary(con, period, **params).iloc[0]
    unpriced = int(numbers["unpriced_calls"])
    emit("ai.calls", numbers["calls"], "count")
    emit("ai.tokens.input", numbers["input_tokens"], "tokens", cached=int(numbers["cached_input_tokens"]))
    emit("ai.tokens.output", numbers["output_tokens"], "tokens")
    perf = tier_performance(con, period, **params).set_index("tier")
    emit("ai.cost", numbers["cost_usd"], "USD", tier="all", unpriced_calls=unpriced)
    for tier in TIERS:
        cost = perf.loc[tier, "cost_usd"] if tier in perf.index else 0.0
        tier_unpriced = int(perf.loc[tier, "unpriced_calls"]) if tier in perf.index else 0
        emit("ai.cost", cost, "USD", tier=tier, unpriced_calls=tier_unpriced)
    emit("ai.cost_per_prototype", numbers["cost_per_prototype"], "USD", prototypes=int(numbers["prototypes"]),
         median=numbers["prototype_cost_p50"], p90=numbers["prototype_cost_p90"], unpriced_calls=unpriced)
    emit("ai.cost_per_successful_prototype", numbers["cost_per_successful_prototype"], "USD",
         successful_prototypes=int(numbers["successful_prototypes"]), unpriced_calls=unpriced)
    for tier, row in perf.iterrows():
        emit("ai.generation_success_rate", row["generation_success_rate"], "fraction", tier=tier,
             prototypes=int(row["prototypes"]))
        emit("ai.latency_p95_ms", row["latency_p95_ms"], "ms", tier=tier, calls=int(row["calls"]))
    # Effective price per 1K tokens of each paid tier over its priced calls, the unpriced share beside it:
    # what the seed's $0.03 / $0.06 per 1K tokens claims compare with.
    # No sampling interval: the price is every priced call of the period at the catalog's (dated, sourced)
    # prices, a census, not a sample; the verdict rests on that and says so (interval_basis).
    for row in price_per_1k_tokens(con, period, **params).itertuples():
        why = (f"only {row.priced_calls} of {row.calls} calls are priced" if not row.measurable
               else "undefined for the period (nothing to divide by)")
        unpriced = int(row.calls) - int(row.priced_calls)
        basis = (f"no interval: a census of the period's {int(row.priced_calls):,} priced calls at the catalog's "
                 f"prices, not a sample; {unpriced:,} unpriced call{'s' if unpriced != 1 else ''} "
                 f"({row.unpriced_share:.1%}) left out")
        emit("ai.usd_per_1k_tokens", row.usd_per_1k_tokens if row.measurable else None, "USD", why=why,
             tier=row.tier, tokens=int(row.priced_tokens), priced_calls=int(row.priced_calls), calls=int(row.calls),
             unpriced_share=float(row.unpriced_share), interval_basis=basis)
    # Daily cost over the period and the DAILY_HISTORY_DAYS before it: the trailing history the
    # ai_cost_spike alert rule (params/alerts.yaml) compares each day of the period against.
    window = Period(period.start - timedelta(days=DAILY_HISTORY_DAYS), period.end)
    daily = usage_by_day(con, window, by="tier", **params).groupby("day", as_index=False)[["cost_usd"]].sum()
    for row in daily.itertuples():
        emit("ai.cost.daily", row.cost_usd, "USD", "COUNTER", tier="all", day=f"{pd.Timestamp(row.day):%Y-%m-%d}")
    if params.get("monthly_budget_usd") and numbers["calls"] > 0:  # no forecast from no data
        budget = budget_status(con, period, **params).iloc[0]
        emit("ai.budget.forecast_usd", budget["forecast_usd"], "USD", budget_usd=float(budget["budget_usd"]),
             mtd_cost_usd=float(budget["mtd_cost_usd"]), month_start=f"{budget['month_start']:%Y-%m-%d}",
             forecast_low_usd=float(budget["forecast_low_usd"]), forecast_high_usd=float(budget["forecast_high_usd"]),
             exceed_probability=float(budget["exceed_probability"]))
    # OpenAI's bill from its Costs API; Azure's from the FOCUS export (`billing`), in USD at the ECB rate.
    for provider, source, name in (("openai", "openai", "OpenAI"), ("azure", "billing", "Azure")):
        gap = billing_reconciliation(con, period, provider=provider, **params)
        total = gap[gap["scope"] == "period"]
        if len(total):
            row = total.iloc[0]
            emit("ai.billing_gap_pct", row["billing_gap_pct"], "percent", source=source, provider=provider,
                 billed_usd=row["billed_usd"], priced_usd=row["priced_usd"], unpriced_calls=int(row["unpriced_calls"]))
        else:
            emit("ai.billing_gap_pct", None, "percent", source=source, why=f"no {name} bill is loaded for the period",
                 provider=provider)
    return records
