"""AI cost per prototype: KPIs of the AI cost report (Ollama free tier, OpenAI, Azure OpenAI EU).

Every function takes the report's parameters as keyword arguments and ignores the ones it does not
use: `price_overrides` (override files, default params/prices), `monthly_budget_usd`,
`cost_currency` (USD only: AI prices and bills are in USD) and the notebook's own.

Definitions (docs/metrics.md repeats them):

- *Call*: one row of core.ai_calls (Sentry spans and the JSONL import, de-duplicated on span_id).
  A call belongs to the period of its UTC day.
- *Cost of a call*: its tokens at the catalog price in effect on its day (statex_bi.pricing):
  uncached input x input rate + cached input x cached rate + output x output rate, plus, for
  self-hosted tiers, duration x hardware_usd_per_hour. Azure is priced at EU Data Zone rates.
  A call nothing prices is *unpriced*: it is listed, its cost is unknown (not 0), and every cost
  total is then a lower bound (each frame carries `unpriced_calls`). So is a paid-tier call that
  reported no token usage and was not refused (a timeout): "usage unknown", never $0.
- *Tier*: the span's tier attribute, or, without one, the tier its gen_ai.system means
  (`tier_inference` counts those).
- *Prototype in the period*: a prototype with at least one call in the period. *Successful*: one of
  those calls succeeded (status ok).
- *Cost per prototype* = cost of all the period's calls / prototypes in the period.
  *Cost per successful prototype* = the same cost (failed calls included) / successful prototypes.
  *Generation success rate* = successful prototypes / prototypes; per tier: prototypes with a
  successful call on the tier / prototypes with a call on the tier.
- *Prototype cost distribution*: over prototypes whose calls are all priced.
- *Latency*: duration of all calls (failed ones included: the user waited for them), p50/p95 with
  linear interpolation.
- *Tier that served a prototype*: the tier of its last successful call in the period ("none": no
  call succeeded).
- *Value of the free tier*: Ollama's calls priced as if the paid tier had made them, at the model
  that tier used most in the period (the fallback's model), minus what Ollama cost.
- *Month to date*: from the 1st of period_end's month to period_end, whatever the period's start.
  Its OpenAI spend is the bill on the days the bill covers (its first to its last cost bucket),
  the priced calls on other days. The month-end *forecast* and its prediction interval: budget.py.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import duckdb
import pandas as pd

from statex_bi import formatting
from statex_bi.exceptions import ParamsError
from statex_bi.periods import Period
from statex_bi.pricing import ACTUAL, SEED, Catalog, load_catalog, price_table, priced_calls_sql, register_prices
from statex_bi.pricing.table import calls_relation
from statex_bi.reads import recorded

TIERS = ("ollama", "openai", "azure")
PAID_TIERS = ("openai", "azure")
# Statuses of calls the provider refused before doing any work (not billed): no usage is expected.
REFUSED_STATUSES = ("resource_exhausted", "unauthenticated", "permission_denied", "invalid_argument")
USAGE_UNKNOWN = "usage unknown: a paid call that reported no token usage (e.g. a timeout) may still be billed"
SUPPORTED_CURRENCIES = ("USD",)
# DuckDB sums BIGINT into HUGEINT, which pandas would turn into float.
_TOKEN_SUMS = ", ".join(
    f"CAST(sum({column}) AS BIGINT) AS {column}" for column in ("input_tokens", "cached_input_tokens", "output_tokens")
)


def _catalog(params: dict[str, Any]) -> Catalog:
    currency = str(params.get("cost_currency") or "USD").upper()
    if currency not in SUPPORTED_CURRENCIES:
        raise ParamsError(f"cost_currency {currency!r} is not supported: AI costs are reported in USD only")
    return load_catalog(params.get("price_overrides"))


def calls_sql(con: duckdb.DuckDBPyConnection, start: date, end: date, params: dict, scenario: str = ACTUAL) -> str:
    """Register the window's prices; the SQL of its priced calls (parameters $start, $end).

    A paid-tier call that reported no token usage and was not refused (a timeout: the provider may
    still bill it) is unpriced with the reason "usage unknown": its cost is unknown, never $0.
    """
    register_prices(con, _catalog(params), start, end, scenario)
    priced = priced_calls_sql(scenario, calls_relation(con))
    paid = ", ".join(f"'{tier}'" for tier in PAID_TIERS)
    refused = ", ".join(f"'{status}'" for status in REFUSED_STATUSES)
    return f"""
        SELECT * REPLACE (
            priced AND NOT usage_unknown AS priced,
            CASE WHEN usage_unknown THEN '{USAGE_UNKNOWN}' ELSE unpriced_reason END AS unpriced_reason,
            CASE WHEN usage_unknown THEN NULL ELSE token_cost_usd END AS token_cost_usd,
            CASE WHEN usage_unknown THEN NULL ELSE cost_usd END AS cost_usd)
        FROM (
            SELECT *, tier IN ({paid}) AND NOT usage_reported AND coalesce(status, '') NOT IN ({refused})
                AS usage_unknown
            FROM ({priced}) priced_calls
        ) flagged"""


def _query(con: duckdb.DuckDBPyConnection, sql: str, start: date, end: date) -> pd.DataFrame:
    return con.execute(sql, {"start": start, "end": end}).df()


@recorded
def usage_by_day(con: duckdb.DuckDBPyConnection, period: Period, by: str = "tier", **params: Any) -> pd.DataFrame:
    """Calls, tokens and cost per day and tier (or tier and model) over the period.

    Args:
        con: the warehouse.
        period: the report period.
        by: "tier" or "model" (tier and model).
        **params: price_overrides.

    Returns:
        day, tier[, model], calls, input_tokens, cached_input_tokens, output_tokens, cost_usd, unpriced_calls.
    """
    keys = {"tier": "tier", "model": "tier, model"}
    if by not in keys:
        raise ParamsError(f"usage_by_day: by must be 'tier' or 'model', not {by!r}")
    calls = calls_sql(con, period.start, period.end, params)
    return _query(con, f"""
        SELECT day, {keys[by]}, count(*) AS calls, {_TOKEN_SUMS}, sum(cost_usd) AS cost_usd,
               count(*) FILTER (WHERE NOT priced) AS unpriced_calls
        FROM ({calls}) c GROUP BY ALL ORDER BY ALL""", period.start, period.end)


@recorded
def usage_by_model(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """The period's calls, tokens and cost per tier and model, with the catalog row(s) that priced them.

    Returns:
        tier, model, calls, successful_calls, input_tokens, cached_input_tokens, output_tokens,
        cost_usd, unpriced_calls, price_rows.
    """
    calls = calls_sql(con, period.start, period.end, params)
    return _query(con, f"""
        SELECT tier, model, count(*) AS calls, count(*) FILTER (WHERE is_success) AS successful_calls,
               {_TOKEN_SUMS}, sum(cost_usd) AS cost_usd,
               count(*) FILTER (WHERE NOT priced) AS unpriced_calls,
               string_agg(DISTINCT price_row_id, ', ' ORDER BY price_row_id) AS price_rows
        FROM ({calls}) c GROUP BY tier, model ORDER BY cost_usd DESC, tier, model""", period.start, period.end)


# A tier's price per 1K tokens is measurable when more than this share of its calls is priced.
MEASURABLE_PRICED_SHARE = 0.5


@recorded
def price_per_1k_tokens(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Each paid tier's effective price per 1,000 tokens over its priced calls, with the unpriced share.

    Returns:
        tier, calls, priced_calls, unpriced_share (of calls), priced_tokens (input, cached input
        included, + output of the priced calls), cost_usd, usd_per_1k_tokens (NaN without priced
        tokens), measurable (more than MEASURABLE_PRICED_SHARE of the calls priced).
    """
    calls = calls_sql(con, period.start, period.end, params)
    frame = _query(con, f"""
        SELECT tier, count(*) AS calls, count(*) FILTER (WHERE priced) AS priced_calls,
               CAST(coalesce(sum(input_tokens + output_tokens) FILTER (WHERE priced), 0) AS BIGINT) AS priced_tokens,
               coalesce(sum(cost_usd) FILTER (WHERE priced), 0) AS cost_usd
        FROM ({calls}) c WHERE tier IN ({", ".join(f"'{t}'" for t in PAID_TIERS)}) GROUP BY tier ORDER BY tier""",
                   period.start, period.end)
    frame["unpriced_share"] = 1 - frame["priced_calls"] / frame["calls"]
    frame["usd_per_1k_tokens"] = (1000 * frame["cost_usd"] / frame["priced_tokens"]).where(frame["priced_tokens"] > 0)
    frame["measurable"] = frame["priced_calls"] > MEASURABLE_PRICED_SHARE * frame["calls"]
    return frame[["tier", "calls", "priced_calls", "unpriced_share", "priced_tokens", "cost_usd",
                  "usd_per_1k_tokens", "measurable"]]


_SUMMARY_SQL = """
    WITH calls AS ({calls}),
    prototypes AS (
        SELECT prototype_id, sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE NOT priced) AS unpriced_calls,
               bool_or(is_success) AS has_success
        FROM calls WHERE prototype_id IS NOT NULL GROUP BY prototype_id
    ),
    complete AS (SELECT cost_usd FROM prototypes WHERE unpriced_calls = 0)
    SELECT
        (SELECT count(*) FROM calls) AS calls,
        (SELECT count(*) FROM prototypes) AS prototypes,
        (SELECT count(*) FROM prototypes WHERE has_success) AS successful_prototypes,
        (SELECT CAST(coalesce(sum(input_tokens), 0) AS BIGINT) FROM calls) AS input_tokens,
        (SELECT CAST(coalesce(sum(cached_input_tokens), 0) AS BIGINT) FROM calls) AS cached_input_tokens,
        (SELECT CAST(coalesce(sum(output_tokens), 0) AS BIGINT) FROM calls) AS output_tokens,
        (SELECT coalesce(sum(cost_usd), CASE WHEN count(*) = 0 THEN 0 END) FROM calls) AS cost_usd,
        (SELECT count(*) FROM calls WHERE NOT priced) AS unpriced_calls,
        (SELECT quantile_cont(cost_usd, 0.5) FROM complete) AS prototype_cost_p50,
        (SELECT quantile_cont(cost_usd, 0.9) FROM complete) AS prototype_cost_p90
"""


@recorded
def summary(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """The headline numbers of the period and of the period before it.

    Returns:
        Two rows (period "current", "previous") with period_start, period_end, calls, prototypes,
        successful_prototypes, success_rate, token sums, cost_usd, unpriced_calls, cost_per_prototype,
        cost_per_successful_prototype, prototype_cost_p50, prototype_cost_p90; ratios are NaN
        without prototypes.
    """
    rows = []
    for label, window in (("current", period), ("previous", period.previous())):
        calls = calls_sql(con, window.start, window.end, params)
        row = _query(con, _SUMMARY_SQL.format(calls=calls), window.start, window.end)
        row.insert(0, "period_end", window.end)
        row.insert(0, "period_start", window.start)
        row.insert(0, "period", label)
        rows.append(row)
    out = pd.concat(rows, ignore_index=True)
    prototypes = out["prototypes"].astype("float64").where(out["prototypes"] > 0)
    successful = out["successful_prototypes"].astype("float64").where(out["successful_prototypes"] > 0)
    out["success_rate"] = out["successful_prototypes"] / prototypes
    out["cost_per_prototype"] = out["cost_usd"] / prototypes
    out["cost_per_successful_prototype"] = out["cost_usd"] / successful
    return out


@recorded
def prototype_cost_distribution(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Quantiles of the cost of one prototype (prototypes whose calls are all priced).

    Returns:
        statistic (p10, p25, median, p75, p90, p95, max, mean), cost_usd, prototypes (how many
        prototypes the statistic is over); no rows without priced prototypes.
    """
    calls = calls_sql(con, period.start, period.end, params)
    quantiles = {"p10": 0.1, "p25": 0.25, "median": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95}
    selects = ", ".join(f"quantile_cont(cost_usd, {q}) AS {name}" for name, q in quantiles.items())
    wide = _query(con, f"""
        WITH per_prototype AS (
            SELECT prototype_id, sum(cost_usd) AS cost_usd FROM ({calls}) c
            WHERE prototype_id IS NOT NULL GROUP BY prototype_id HAVING bool_and(priced)
        )
        SELECT count(*) AS prototypes, {selects}, max(cost_usd) AS max, avg(cost_usd) AS mean
        FROM per_prototype""", period.start, period.end)
    count = int(wide.loc[0, "prototypes"])
    if count == 0:
        return pd.DataFrame({"statistic": [], "cost_usd": [], "prototypes": []})
    names = [*quantiles, "max", "mean"]
    return pd.DataFrame({"statistic": names, "cost_usd": [float(wide.loc[0, n]) for n in names], "prototypes": count})


@recorded
def prototype_cost_histogram(
    con: duckdb.DuckDBPyConnection, period: Period, bins: int = 10, **params: Any
) -> pd.DataFrame:
    """How many prototypes fall in each cost band (equal-width bands from 0 to the maximum).

    Returns:
        band (e.g. "$0.0000 - $0.0100"), band_start_usd, band_end_usd, prototypes; bands in order.
    """
    calls = calls_sql(con, period.start, period.end, params)
    costs = _query(con, f"""
        SELECT sum(cost_usd) AS cost_usd FROM ({calls}) c
        WHERE prototype_id IS NOT NULL GROUP BY prototype_id HAVING bool_and(priced)""", period.start, period.end)
    if costs.empty:
        return pd.DataFrame({"band": [], "band_start_usd": [], "band_end_usd": [], "prototypes": []})
    top = float(costs["cost_usd"].max()) or 1.0
    width = top / bins
    index = (costs["cost_usd"] / width).astype(int).clip(upper=bins - 1)
    counts = index.value_counts().reindex(range(bins), fill_value=0)
    starts = [i * width for i in range(bins)]
    return pd.DataFrame({
        "band": [f"{formatting.money(s, 'USD')} - {formatting.money(s + width, 'USD')}" for s in starts],
        "band_start_usd": starts,
        "band_end_usd": [s + width for s in starts],
        "prototypes": counts.to_numpy(),
    })


@recorded
def tier_performance(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Per tier and for all tiers: calls, success, latency, cost, and the prototypes each tier served.

    Returns:
        tier (ollama, openai, azure, all; tiers without calls left out), calls, successful_calls,
        call_success_rate, prototypes, successful_prototypes, generation_success_rate,
        latency_p50_ms, latency_p95_ms, cost_usd, unpriced_calls, prototypes_served, served_share
        (of all the period's prototypes).
    """
    calls = calls_sql(con, period.start, period.end, params)
    frame = _query(con, f"""
        WITH calls AS ({calls}),
        per_prototype_tier AS (
            SELECT tier, prototype_id, bool_or(is_success) AS has_success
            FROM calls WHERE prototype_id IS NOT NULL GROUP BY tier, prototype_id
        ),
        last_success AS (
            SELECT prototype_id, tier, row_number() OVER (
                PARTITION BY prototype_id ORDER BY started_at DESC, span_id DESC) AS success_rank
            FROM calls WHERE is_success AND prototype_id IS NOT NULL
        ),
        served AS (
            SELECT coalesce(tier, 'all') AS tier, count(*) AS prototypes_served FROM last_success
            WHERE success_rank = 1 GROUP BY GROUPING SETS ((tier), ())
        ),
        call_stats AS (
            SELECT coalesce(tier, 'all') AS tier, count(*) AS calls,
                   count(*) FILTER (WHERE is_success) AS successful_calls,
                   quantile_cont(duration_ms, 0.5) AS latency_p50_ms,
                   quantile_cont(duration_ms, 0.95) AS latency_p95_ms,
                   sum(cost_usd) AS cost_usd, count(*) FILTER (WHERE NOT priced) AS unpriced_calls
            FROM calls GROUP BY GROUPING SETS ((tier), ())
        ),
        prototype_stats AS (
            SELECT coalesce(tier, 'all') AS tier, count(DISTINCT prototype_id) AS prototypes,
                   count(DISTINCT prototype_id) FILTER (WHERE has_success) AS successful_prototypes
            FROM per_prototype_tier GROUP BY GROUPING SETS ((tier), ())
        )
        SELECT c.tier, c.calls, c.successful_calls, coalesce(p.prototypes, 0) AS prototypes,
               coalesce(p.successful_prototypes, 0) AS successful_prototypes, c.latency_p50_ms, c.latency_p95_ms,
               c.cost_usd, c.unpriced_calls, coalesce(s.prototypes_served, 0) AS prototypes_served,
               (SELECT prototypes FROM prototype_stats WHERE tier = 'all') AS all_prototypes
        FROM call_stats c
        LEFT JOIN prototype_stats p ON p.tier = c.tier
        LEFT JOIN served s ON s.tier = c.tier
        WHERE c.calls > 0""", period.start, period.end)
    frame["call_success_rate"] = frame["successful_calls"] / frame["calls"]
    prototypes = frame["prototypes"].astype("float64")
    frame["generation_success_rate"] = frame["successful_prototypes"] / prototypes.where(prototypes > 0)
    all_prototypes = frame["all_prototypes"].astype("float64")
    frame["served_share"] = frame["prototypes_served"] / all_prototypes.where(all_prototypes > 0)
    order = {tier: n for n, tier in enumerate((*TIERS, "all"))}
    frame = frame.sort_values("tier", key=lambda s: s.map(lambda t: order.get(t, len(order) - 0.5)))
    columns = ["tier", "calls", "successful_calls", "call_success_rate", "prototypes", "successful_prototypes",
               "generation_success_rate", "latency_p50_ms", "latency_p95_ms", "cost_usd", "unpriced_calls",
               "prototypes_served", "served_share"]
    return frame[columns].reset_index(drop=True)


@recorded
def tier_share(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Which tier served the period's prototypes (the tier of each one's last successful call).

    Returns:
        served_by (ollama, openai, azure, none), prototypes, share (sums to 1); no rows without prototypes.
    """
    perf = tier_performance(con, period, **params)
    if perf.empty:
        return pd.DataFrame({"served_by": [], "prototypes": [], "share": []})
    total = int(perf.loc[perf["tier"] == "all", "prototypes"].iloc[0])
    tiers = perf[perf["tier"] != "all"]
    served = dict(zip(tiers["tier"], tiers["prototypes_served"], strict=True))
    rows = [(tier, int(served.get(tier, 0))) for tier in TIERS]
    rows.append(("none", total - sum(count for _, count in rows)))
    out = pd.DataFrame(rows, columns=["served_by", "prototypes"])
    out["share"] = out["prototypes"] / total if total else float("nan")
    return out


@recorded
def free_tier_value(
    con: duckdb.DuckDBPyConnection, period: Period, counterfactual_models: dict[str, str] | None = None, **params: Any
) -> pd.DataFrame:
    """What Ollama's calls would have cost on each paid tier.

    Args:
        con: the warehouse.
        period: the report period.
        counterfactual_models: paid tier -> model to price Ollama's tokens at; by default the model
            the tier used most in the period (else in all loaded data).
        **params: price_overrides.

    Returns:
        One row per paid tier with a model: priced_as_tier, priced_as_model, ollama_calls,
        ollama_input_tokens, ollama_output_tokens, ollama_cost_usd (what Ollama cost: hardware),
        counterfactual_cost_usd, value_usd (counterfactual - actual), unpriced_calls (Ollama calls on
        days the paid model has no price). Costs are NaN when nothing could be priced. Prices apply
        per day to the day's tokens (base rates: long-context tiers are not applied here).
    """
    catalog = _catalog(params)
    relation = calls_relation(con)
    calls = calls_sql(con, period.start, period.end, params)
    ollama = _query(con, f"""
        SELECT day, count(*) AS calls, CAST(sum(uncached_input_tokens) AS BIGINT) AS uncached_input_tokens,
               {_TOKEN_SUMS}, sum(cost_usd) AS cost_usd
        FROM ({calls}) c WHERE tier = 'ollama' GROUP BY day""", period.start, period.end)
    actual = ollama["cost_usd"].sum(min_count=1)  # NaN when no Ollama call is priced
    rows = []
    for tier in PAID_TIERS:
        model = (counterfactual_models or {}).get(tier) or _most_used_model(con, relation, tier, period)
        if model is None or ollama.empty:
            continue
        keys = pd.DataFrame({"provider": tier, "model": model, "day": ollama["day"]})
        prices = price_table(catalog, keys, ACTUAL).to_pandas().assign(day=lambda f: pd.to_datetime(f["day"]))
        day_rates = ollama.merge(prices, on="day")
        priced = day_rates[day_rates["priced"]]
        counterfactual = (
            priced["uncached_input_tokens"] * priced["input_usd_per_mtok"]
            + priced["cached_input_tokens"] * priced["cached_input_usd_per_mtok"]
            + priced["output_tokens"] * priced["output_usd_per_mtok"]
        ).sum(min_count=1) / 1e6
        rows.append({
            "priced_as_tier": tier, "priced_as_model": model, "ollama_calls": int(ollama["calls"].sum()),
            "ollama_input_tokens": int(ollama["input_tokens"].sum()),
            "ollama_output_tokens": int(ollama["output_tokens"].sum()),
            "ollama_cost_usd": float(actual), "counterfactual_cost_usd": float(counterfactual),
            "value_usd": float(counterfactual - actual),
            "unpriced_calls": int(day_rates.loc[~day_rates["priced"], "calls"].sum()),
        })
    columns = ["priced_as_tier", "priced_as_model", "ollama_calls", "ollama_input_tokens", "ollama_output_tokens",
               "ollama_cost_usd", "counterfactual_cost_usd", "value_usd", "unpriced_calls"]
    return pd.DataFrame(rows, columns=columns)


def _most_used_model(con: duckdb.DuckDBPyConnection, relation: str, tier: str, period: Period) -> str | None:
    """The tier's most-called model in the period, else in all loaded data (ties: alphabetical)."""
    for where, args in (("AND day BETWEEN ? AND ?", [period.start, period.end]), ("", [])):
        rows = con.execute(
            f"SELECT model FROM {relation} WHERE tier = ? {where} GROUP BY model ORDER BY count(*) DESC, model LIMIT 1",
            [tier, *args],
        ).fetchall()
        if rows:
            return rows[0][0]
    return None


@recorded
def seed_vs_actual(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """The period's calls priced at the seed's planning prices and at the actual prices, per tier.

    Only calls both scenarios price are compared, so the two totals cover the same tokens.

    Returns:
        tier (and "all"), scenario ("seed", "actual"), label, calls, tokens, cost_usd, usd_per_1k_tokens
        (cost / tokens x 1000).
    """
    frames = {}
    for scenario in (SEED, ACTUAL):
        sql = calls_sql(con, period.start, period.end, params, scenario)
        frames[scenario] = _query(con, f"SELECT span_id, tier, total_tokens, cost_usd FROM ({sql}) c WHERE priced",
                                  period.start, period.end)
    both = frames[SEED].merge(frames[ACTUAL][["span_id", "cost_usd"]], on="span_id", suffixes=("_seed", "_actual"))
    rows = []
    for tier in (*[t for t in TIERS if (both["tier"] == t).any()], "all"):
        part = both if tier == "all" else both[both["tier"] == tier]
        tokens = int(part["total_tokens"].sum())
        for scenario in (SEED, ACTUAL):
            cost = float(part[f"cost_usd_{scenario}"].sum())
            rows.append({"tier": tier, "scenario": scenario, "label": f"{tier}: {scenario} prices",
                         "calls": len(part), "tokens": tokens, "cost_usd": cost,
                         "usd_per_1k_tokens": cost / tokens * 1000 if tokens else float("nan")})
    if both.empty:
        rows = []
    return pd.DataFrame(rows, columns=["tier", "scenario", "label", "calls", "tokens", "cost_usd", "usd_per_1k_tokens"])


@recorded
def tier_inference(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """How many of the period's calls carried no tier, per tier they were given from gen_ai.system.

    Returns:
        tier, calls (whose tier was inferred), all_calls (of that tier); only tiers with inferred calls.
    """
    return _query(con, f"""
        SELECT tier, count(*) FILTER (WHERE tier_inferred) AS calls, count(*) AS all_calls
        FROM {calls_relation(con)} WHERE day BETWEEN $start AND $end
        GROUP BY tier HAVING count(*) FILTER (WHERE tier_inferred) > 0 ORDER BY tier""", period.start, period.end)


@recorded
def unpriced_calls(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Calls nothing in the catalog prices, by provider and model, with their tokens and the reason.

    Returns:
        provider, model, first_day, last_day, calls, input_tokens, cached_input_tokens, output_tokens, reason.
    """
    calls = calls_sql(con, period.start, period.end, params)
    return _query(con, f"""
        SELECT provider, model, min(day) AS first_day, max(day) AS last_day, count(*) AS calls,
               {_TOKEN_SUMS}, min(unpriced_reason) AS reason
        FROM ({calls}) c WHERE NOT priced GROUP BY provider, model ORDER BY calls DESC, provider, model""",
                  period.start, period.end)


@recorded
def catalog_rows_used(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """The catalog rows that priced the period's calls, in both scenarios.

    Returns:
        scenario, row_id, source, effective_from, input/cached_input/output_usd_per_mtok,
        hardware_usd_per_hour, calls, cost_usd.
    """
    frames = []
    for scenario in (ACTUAL, SEED):
        sql = calls_sql(con, period.start, period.end, params, scenario)
        frame = _query(con, f"""
            SELECT price_row_id AS row_id, any_value(price_source) AS source,
                   any_value(price_effective_from) AS effective_from,
                   any_value(input_usd_per_mtok) AS input_usd_per_mtok,
                   any_value(cached_input_usd_per_mtok) AS cached_input_usd_per_mtok,
                   any_value(output_usd_per_mtok) AS output_usd_per_mtok,
                   any_value(hardware_usd_per_hour) AS hardware_usd_per_hour,
                   count(*) AS calls, sum(cost_usd) AS cost_usd
            FROM ({sql}) c WHERE priced GROUP BY price_row_id ORDER BY cost_usd DESC, row_id""",
                       period.start, period.end)
        frame.insert(0, "scenario", scenario)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)

