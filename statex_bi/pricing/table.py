"""The catalog as a small table that SQL joins, on the notebooks' read-only connection.

Models cannot take parameters and notebooks cannot write, so the catalog is never materialised in
the warehouse. Instead a KPI function resolves it in Python for the distinct (provider, model, day)
combinations of the calls in its window (a few hundred at most), registers the result on its own
connection (`con.register` works on read-only connections and is visible to that connection only),
and joins it in SQL: `priced_calls_sql()` gives the calls of the window with their cost and the
catalog row that priced each one.
"""

from __future__ import annotations

import dataclasses
from datetime import date

import duckdb
import pandas as pd
import pyarrow as pa

from statex_bi import warehouse
from statex_bi.pricing.catalog import ACTUAL, Catalog, Price, Unpriced

PRICE_SCHEMA = pa.schema(
    [
        ("provider", pa.string()),
        ("model", pa.string()),
        ("day", pa.date32()),
        ("priced", pa.bool_()),
        ("unpriced_reason", pa.string()),
        ("row_id", pa.string()),
        ("row_source", pa.string()),
        ("effective_from", pa.date32()),
        ("effective_to", pa.date32()),
        ("input_usd_per_mtok", pa.float64()),
        ("cached_input_usd_per_mtok", pa.float64()),
        ("output_usd_per_mtok", pa.float64()),
        ("hardware_usd_per_hour", pa.float64()),
        ("long_context_above_tokens", pa.int64()),
        ("long_context_input_usd_per_mtok", pa.float64()),
        ("long_context_cached_input_usd_per_mtok", pa.float64()),
        ("long_context_output_usd_per_mtok", pa.float64()),
    ]
)

# core.ai_calls' columns, for an empty stand-in when the models have not been built yet.
CALL_COLUMNS = {
    "span_id": "VARCHAR", "trace_id": "VARCHAR", "prototype_id": "VARCHAR", "project": "VARCHAR",
    "tier": "VARCHAR", "tier_inferred": "BOOLEAN", "usage_reported": "BOOLEAN", "provider": "VARCHAR",
    "gen_ai_system": "VARCHAR", "model": "VARCHAR", "op": "VARCHAR",
    "status": "VARCHAR", "is_success": "BOOLEAN", "duration_ms": "DOUBLE", "input_tokens": "BIGINT",
    "cached_input_tokens": "BIGINT", "uncached_input_tokens": "BIGINT", "output_tokens": "BIGINT",
    "total_tokens": "BIGINT", "started_at": "TIMESTAMP", "day": "DATE", "record_source": "VARCHAR",
    "seen_in": "VARCHAR",
}


def price_table(catalog: Catalog, keys: pd.DataFrame, scenario: str = ACTUAL) -> pa.Table:
    """One price row per (provider, model, day) of `keys`.

    Args:
        catalog: the loaded catalog.
        keys: columns provider, model, day (distinct).
        scenario: which prices.

    Returns:
        An Arrow table with PRICE_SCHEMA; unpriced keys have priced = false and a reason. Keys
        without a provider or model get no row (the calls SQL reports them as unpriced).
    """
    records = []
    for provider, model, day in keys[["provider", "model", "day"]].itertuples(index=False):
        if pd.isna(provider) or pd.isna(model):
            continue
        record = {"provider": provider, "model": model, "day": pd.Timestamp(day).date()}
        resolved = catalog.price(provider, model, record["day"], scenario)
        if isinstance(resolved, Unpriced):
            record.update(priced=False, unpriced_reason=resolved.reason)
        else:
            record.update(priced=True, unpriced_reason=None, **_price_fields(resolved))
        records.append(record)
    return pa.Table.from_pylist(records, schema=PRICE_SCHEMA)


def _price_fields(price: Price) -> dict[str, object]:
    """A Price as PRICE_SCHEMA columns (its source becomes row_source)."""
    values = dataclasses.asdict(price)
    values["row_source"] = values.pop("source")
    return values


def relation_name(scenario: str) -> str:
    """The name a scenario's price table is registered under."""
    return f"ai_prices__{scenario}"


def calls_relation(con: duckdb.DuckDBPyConnection) -> str:
    """`marts.ai_call_facts` (core.ai_calls as a table: a period's calls without re-deriving every loaded call),
    `core.ai_calls` where only it exists, or an empty relation of the same shape before the models are built."""
    if warehouse.table_exists(con, "marts", "ai_call_facts"):
        return "marts.ai_call_facts"
    if warehouse.table_exists(con, "core", "ai_calls"):
        return "core.ai_calls"
    columns = ", ".join(f"CAST(NULL AS {kind}) AS {name}" for name, kind in CALL_COLUMNS.items())
    return f"(SELECT {columns} WHERE 1 = 0)"


def register_prices(
    con: duckdb.DuckDBPyConnection, catalog: Catalog, start: date, end: date, scenario: str = ACTUAL
) -> pa.Table:
    """Resolve the prices of the calls in [start, end] and register them as `relation_name(scenario)`.

    Args:
        con: a connection to a warehouse with core.ai_calls.
        catalog: the loaded catalog.
        start: first day (inclusive).
        end: last day (inclusive).
        scenario: which prices.

    Returns:
        The registered table (also useful to list the catalog rows used).
    """
    keys = con.execute(
        f"SELECT DISTINCT provider, model, day FROM {calls_relation(con)} WHERE day BETWEEN ? AND ?", [start, end]
    ).df()
    table = price_table(catalog, keys, scenario)
    con.register(relation_name(scenario), table)
    return table


def priced_calls_sql(scenario: str = ACTUAL, calls: str = "core.ai_calls") -> str:
    """A SELECT of the calls between $start and $end with their prices and costs.

    Costs are NULL for unpriced calls (never 0). Cached input tokens are a subset of input tokens:
    uncached input pays the input rate, cached input the cached rate. Above the long-context
    threshold every token of the call pays the long-context rate (genai-prices' cliff tiers).
    Hardware cost = call duration in hours x hardware_usd_per_hour (self-hosted tiers).
    cost_usd = token_cost_usd + hardware_cost_usd.

    Args:
        scenario: whose registered price table to join (call `register_prices` first).
        calls: the calls relation (`calls_relation(con)`).

    Returns:
        SQL text with the named parameters $start and $end.
    """
    return f"""
        WITH joined AS (
            SELECT c.*, coalesce(p.priced, false) AS priced,
                   CASE WHEN p.priced IS NULL THEN 'the call names no provider or model'
                        ELSE p.unpriced_reason END AS unpriced_reason,
                   p.row_id AS price_row_id, p.row_source AS price_source,
                   p.effective_from AS price_effective_from, p.hardware_usd_per_hour,
                   coalesce(c.input_tokens > p.long_context_above_tokens, false) AS long_context,
                   p.input_usd_per_mtok, p.cached_input_usd_per_mtok, p.output_usd_per_mtok,
                   p.long_context_input_usd_per_mtok, p.long_context_cached_input_usd_per_mtok,
                   p.long_context_output_usd_per_mtok
            FROM {calls} c
            LEFT JOIN {relation_name(scenario)} p ON p.provider = c.provider AND p.model = c.model AND p.day = c.day
            WHERE c.day BETWEEN $start AND $end
        ),
        rated AS (
            SELECT *,
                   CASE WHEN long_context THEN long_context_input_usd_per_mtok
                        ELSE input_usd_per_mtok END AS input_rate,
                   CASE WHEN long_context THEN long_context_cached_input_usd_per_mtok
                        ELSE cached_input_usd_per_mtok END AS cached_input_rate,
                   CASE WHEN long_context THEN long_context_output_usd_per_mtok
                        ELSE output_usd_per_mtok END AS output_rate
            FROM joined
        ),
        costed AS (
            SELECT *,
                   CASE WHEN priced THEN ((input_tokens - cached_input_tokens) * input_rate
                                          + cached_input_tokens * cached_input_rate
                                          + output_tokens * output_rate) / 1e6 END AS token_cost_usd,
                   CASE WHEN priced THEN coalesce(duration_ms, 0) / 3600000.0 * hardware_usd_per_hour
                   END AS hardware_cost_usd
            FROM rated
        )
        SELECT *, token_cost_usd + hardware_cost_usd AS cost_usd FROM costed
    """
