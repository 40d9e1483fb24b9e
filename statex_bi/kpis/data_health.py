"""Data health: what is loaded, how fresh it is, which loads failed and what was quarantined.

Definitions (docs/metrics.md repeats them):

- *Loaded table*: a table in a `raw_<source>` schema, except dlt's bookkeeping tables (`_dlt_*`),
  the `quarantine` table and dlt's merge staging schemas (`raw_<source>_staging`).
- *Freshness*: dbt's judgement (`dbt source freshness`, run by every `statex-bi ingest` after its
  loads; `ops.dbt_source_freshness` keeps the last result) of each table's `loaded_at_field` against
  the `warn_after` and `error_after` its `staging/_<source>__sources.yml` declares, the one place
  freshness is defined. A rare event table such as Stripe refunds has a long limit of its own. A DATE
  field covers until the end of its newest day (a loaded day is a complete day: GA4 and ECB data
  stop at yesterday). It is judged at the time of the check, whatever the report's period.
- *Date column*: the table's `loaded_at_field`; for a table sources.yml does not declare (dlt's nested
  child tables), its first DATE or TIMESTAMP column, shown but not judged. Timestamps with a time
  zone are taken in UTC; naive timestamps are UTC by the raw-table convention.
- *Hours behind*: the check's time minus the newest load time, in hours, 0 when the data reaches it.
- *Status*: dbt's `pass` is `fresh`, `warn` (past `warn_after`) `late`, `error` (past `error_after`)
  `stale`; `no data` when the table has no dated row, `error` when dbt could not check it (its message
  is shown), `not checked` for a table without limits or before the first check.
- *Stale table*: status `stale` or `no data`.
- *Quarantined records*: all rows of `raw_<source>.quarantine` at report time (whatever their load
  date: each one is a record nobody has fixed yet).
- *Failed load attempt*: a row of `ops.source_loads` with a status other than `succeeded` started on
  or after period_start (later failures count too, so nothing recent is hidden).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from statex_bi import warehouse
from statex_bi.metrics.record import Metric
from statex_bi.periods import Period
from statex_bi.reads import recorded
from statex_bi.transform.build import declared_sources
from statex_bi.transform.freshness import FRESHNESS_TABLE
from statex_bi.warehouse import quote_identifier, sql_literal

NOTHING_LOADED = (
    "The warehouse holds no source data yet, so the other reports are empty too.\n\n"
    "To see every report with the simulated Statex company, run `statex-bi demo` (no credentials "
    "needed). To load real data, set the source's credentials (see docs/configuration.md) and run "
    "`statex-bi ingest SOURCE...`, e.g. `statex-bi ingest stripe ga4`."
)

FRESHNESS_NOT_CHECKED = (
    "Freshness has not been checked yet: `statex-bi ingest` runs `dbt source freshness` after its loads "
    "(a warehouse loaded by an older version has no result until its next ingest)."
)

TABLE_COLUMNS = [
    "source", "table", "rows", "date_column", "first_data", "last_data", "rows_in_period", "hours_behind",
    "warn_after_hours", "error_after_hours", "status", "freshness_message",
]
SOURCE_COLUMNS = [
    "source", "tables", "rows", "last_successful_load", "last_attempt_status", "failed_attempts", "last_error",
    "quarantined",
]


def _source_name(schema: str) -> str:
    """CLI source name of a raw schema: raw_ai_calls -> ai-calls."""
    # Source names use dashes where their datasets use underscores (statex_bi.sources.contract.SourceSpec).
    return schema.removeprefix("raw_").replace("_", "-")


def _utc(expression: str, data_type: str) -> str:
    """SQL turning a DATE/TIMESTAMP expression into a naive UTC TIMESTAMP."""
    if "TIME ZONE" in data_type:
        return f"timezone('UTC', {expression})"
    return f"CAST({expression} AS TIMESTAMP)"


_RAW_TABLES_SQL = r"""
WITH raw_tables AS (
    SELECT table_schema, table_name
    FROM information_schema.tables
    -- views: raw tables outside the warehouse file ($STATEX_BI_RAW_URL) are views over their Parquet files
    WHERE table_catalog = current_database() AND table_type IN ('BASE TABLE', 'VIEW')
      AND table_schema LIKE 'raw\_%' ESCAPE '\' AND table_schema NOT LIKE '%\_staging' ESCAPE '\'
      AND table_name NOT LIKE '\_dlt\_%' ESCAPE '\'
),
date_columns AS (
    SELECT table_schema, table_name,
           list(column_name ORDER BY ordinal_position) AS names,
           list(data_type ORDER BY ordinal_position) AS types
    FROM information_schema.columns
    WHERE table_catalog = current_database()
      AND (data_type = 'DATE' OR data_type LIKE 'TIMESTAMP%')
      AND column_name NOT LIKE '\_dlt%' ESCAPE '\'
    GROUP BY table_schema, table_name
)
SELECT r.table_schema, r.table_name, coalesce(d.names, []), coalesce(d.types, [])
FROM raw_tables r LEFT JOIN date_columns d USING (table_schema, table_name)
ORDER BY r.table_schema, r.table_name
"""


def _loaded_at_fields() -> dict[str, str | None]:
    """`schema.table` -> its `loaded_at_field` in the dbt sources.yml."""
    declared = declared_sources().items()
    return {f"{entry['schema']}.{table}": entry.get("loaded_at_field") for (_, table), entry in declared}


def _raw_tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str | None, str | None]]:
    """(schema, table, date column, its type) of every raw table, quarantine tables included. A declared
    `loaded_at_field` that is not a date column of the table dates nothing here (dbt's check names it)."""
    fields = _loaded_at_fields()
    found = []
    for schema, table, names, types in con.execute(_RAW_TABLES_SQL).fetchall():
        temporal = dict(zip(names, types, strict=True))
        declared = fields.get(f"{schema}.{table}")
        column = declared if declared in temporal else (None if declared else next(iter(temporal), None))
        found.append((schema, table, column, temporal.get(column)))
    return found


_STATUS = "CASE f.status WHEN 'pass' THEN 'fresh' WHEN 'warn' THEN 'late' WHEN 'error' THEN 'stale' ELSE 'error' END"


def freshness_checked_at(con: duckdb.DuckDBPyConnection) -> datetime | None:
    """When dbt last checked the tables' freshness (naive UTC), or None before the first check."""
    if not warehouse.table_exists(con, *FRESHNESS_TABLE.split(".")):
        return None
    return con.execute(f"SELECT max(checked_at) FROM {FRESHNESS_TABLE}").fetchone()[0]


def freshness_note(con: duckdb.DuckDBPyConnection) -> str:
    """One sentence for the reader: when dbt judged the freshness shown, or that it never did."""
    checked_at = freshness_checked_at(con)
    if checked_at is None:
        return FRESHNESS_NOT_CHECKED
    return (f"Judged by dbt (`dbt source freshness`, after the last `statex-bi ingest`) at "
            f"{checked_at:%Y-%m-%d %H:%M} UTC, whatever the report's period.")


@recorded
def tables(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    """One row per loaded table: size, date range and dbt's freshness result (see the module docstring).

    Args:
        con: the warehouse (read-only is enough).
        period: the report period (rows_in_period counts its rows).

    Returns:
        Columns `TABLE_COLUMNS`: source, table (schema.table), rows, date_column, first_data and
        last_data (naive UTC timestamps), rows_in_period, hours_behind, warn_after_hours and
        error_after_hours (NaN: no limit or not checked), status, freshness_message (dbt's error);
        ordered by table.
    """
    selects = []
    for schema, table, column, data_type in _raw_tables(con):
        if table == "quarantine":
            continue
        if column is None:
            value = "NULL::TIMESTAMP"
            in_period = "NULL::BIGINT"
        else:
            value = _utc(quote_identifier(column), data_type)
            after_end = (period.end + timedelta(days=1)).isoformat()
            in_period = (
                f"count(*) FILTER (WHERE {value} >= DATE {sql_literal(period.start.isoformat())} "
                f"AND {value} < DATE {sql_literal(after_end)})"
            )
        selects.append(
            f"SELECT {sql_literal(_source_name(schema))} AS source, {sql_literal(f'{schema}.{table}')} AS \"table\", "
            f"count(*) AS rows, {sql_literal(column) if column else 'NULL'} AS date_column, "
            f"min({value}) AS first_data, max({value}) AS last_data, {in_period} AS rows_in_period "
            f"FROM {quote_identifier(schema)}.{quote_identifier(table)}"
        )
    if not selects:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    checked = warehouse.table_exists(con, *FRESHNESS_TABLE.split("."))
    freshness = (
        f"SELECT \"table\", max_loaded_at, age_hours, warn_after_hours, error_after_hours, status, message "
        f"FROM {FRESHNESS_TABLE}" if checked else
        "SELECT NULL::VARCHAR AS \"table\", NULL::TIMESTAMP AS max_loaded_at, NULL::DOUBLE AS age_hours, "
        "NULL::DOUBLE AS warn_after_hours, NULL::DOUBLE AS error_after_hours, NULL::VARCHAR AS status, "
        "NULL::VARCHAR AS message WHERE false"
    )
    sql = f"""
        WITH stats AS ({" UNION ALL ".join(selects)}), freshness AS ({freshness})
        SELECT s.source, s."table", s.rows, s.date_column, s.first_data, s.last_data, s.rows_in_period,
               CASE WHEN f.age_hours IS NOT NULL THEN greatest(0, f.age_hours) END AS hours_behind,
               f.warn_after_hours, f.error_after_hours,
               CASE WHEN f.status IS NULL THEN 'not checked'
                    WHEN f.status <> 'runtime error' AND f.max_loaded_at IS NULL THEN 'no data'
                    ELSE {_STATUS} END AS status,
               f.message AS freshness_message
        FROM stats s LEFT JOIN freshness f USING ("table") ORDER BY s."table"
    """
    return con.execute(sql).df()


def _quarantine_schemas(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [schema for schema, table, *_ in _raw_tables(con) if table == "quarantine"]


@recorded
def quarantine_errors(con: duckdb.DuckDBPyConnection, period: Period, limit: int = 10) -> pd.DataFrame:
    """The commonest reasons records were quarantined, with an example record for each.

    Args:
        con: the warehouse.
        period: the report period (quarantine counts are all-time; see the module docstring).
        limit: at most this many (source, endpoint, field, error) groups, largest first.

    Returns:
        Columns source, endpoint, field, error, records, example_record.
    """
    schemas = _quarantine_schemas(con)
    columns = ["source", "endpoint", "field", "error", "records", "example_record"]
    if not schemas:
        return pd.DataFrame(columns=columns)
    present = con.execute(
        "SELECT table_schema, list(column_name) FROM information_schema.columns "
        "WHERE table_catalog = current_database() AND table_name = 'quarantine' GROUP BY table_schema"
    ).fetchall()
    columns_of = dict(present)
    # dlt creates no column for a field that was None in every row so far (e.g. record_id).
    selects = []
    for schema in schemas:
        picked = [
            quote_identifier(name) if name in columns_of[schema] else f"NULL::VARCHAR AS {name}"
            for name in ("endpoint", "field", "error", "record_id")
        ]
        selects.append(
            f"SELECT {sql_literal(_source_name(schema))} AS source, {', '.join(picked)} "
            f"FROM {quote_identifier(schema)}.quarantine"
        )
    union = " UNION ALL ".join(selects)
    sql = f"""
        SELECT source, endpoint, field, error, count(*) AS records, min(record_id) AS example_record
        FROM ({union}) GROUP BY ALL ORDER BY records DESC, source, endpoint, field, error LIMIT {int(limit)}
    """
    return con.execute(sql).df()


def _dlt_last_loads(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Newest successful dlt load (`_dlt_loads.status = 0`) per raw schema, naive UTC."""
    query = (
        "SELECT table_schema, data_type FROM information_schema.columns WHERE table_catalog = current_database() "
        "AND table_name = '_dlt_loads' AND column_name = 'inserted_at' "
        r"AND table_schema LIKE 'raw\_%' ESCAPE '\' AND table_schema NOT LIKE '%\_staging' ESCAPE '\'"
    )
    found = con.execute(query).fetchall()
    if not found:
        return pd.DataFrame(columns=["source", "dlt_last_load"])
    union = " UNION ALL ".join(
        f"SELECT {sql_literal(_source_name(schema))} AS source, "
        f"max({_utc('inserted_at', data_type)}) FILTER (WHERE status = 0) AS dlt_last_load "
        f"FROM {quote_identifier(schema)}._dlt_loads"
        for schema, data_type in found
    )
    return con.execute(union).df()


def _attempts(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    columns = ["source", "ops_last_success", "last_attempt_status", "failed_attempts", "last_error"]
    if not warehouse.table_exists(con, "ops", "source_loads"):
        return pd.DataFrame(columns=columns)
    sql = """
        SELECT source,
               max(finished_at) FILTER (WHERE status = 'succeeded') AS ops_last_success,
               arg_max(status, started_at) AS last_attempt_status,
               count(*) FILTER (WHERE status <> 'succeeded' AND started_at >= $start) AS failed_attempts,
               arg_max(error, started_at) FILTER (WHERE status <> 'succeeded') AS last_error
        FROM ops.source_loads GROUP BY source
    """
    return con.execute(sql, {"start": period.start}).df()


@recorded
def sources(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    """One row per source that was loaded or attempted: tables, rows, last success, failures, quarantine.

    Args:
        con: the warehouse.
        period: the report period (failed attempts count from period_start on).

    Returns:
        Columns `SOURCE_COLUMNS`. last_successful_load is the newer of dlt's `_dlt_loads` (status 0)
        and `ops.source_loads` (status succeeded), naive UTC; last_error is the newest failure's
        message, even when a later attempt succeeded.
    """
    listed = tables(con, period)
    per_source = (
        listed.groupby("source", as_index=False).agg(tables=("table", "count"), rows=("rows", "sum"))
        if not listed.empty
        else pd.DataFrame(columns=["source", "tables", "rows"])
    )
    quarantine_schemas = _quarantine_schemas(con)
    quarantined = (
        con.execute(
            " UNION ALL ".join(
                f"SELECT {sql_literal(_source_name(s))} AS source, count(*) AS quarantined "
                f"FROM {quote_identifier(s)}.quarantine"
                for s in quarantine_schemas
            )
        ).df()
        if quarantine_schemas
        else pd.DataFrame(columns=["source", "quarantined"])
    )
    frame = per_source
    for other in (_dlt_last_loads(con), _attempts(con, period), quarantined):
        frame = frame.merge(other, on="source", how="outer")
    if frame.empty:
        return pd.DataFrame(columns=SOURCE_COLUMNS)
    loads = frame[["dlt_last_load", "ops_last_success"]].apply(pd.to_datetime)
    frame["last_successful_load"] = loads.max(axis=1)
    for column in ("tables", "rows", "failed_attempts", "quarantined"):
        frame[column] = frame[column].fillna(0).astype("int64")
    return frame[SOURCE_COLUMNS].sort_values("source").reset_index(drop=True)


@recorded
def failed_loads(con: duckdb.DuckDBPyConnection, period: Period, limit: int = 20) -> pd.DataFrame:
    """Failed load attempts started on or after period_start, newest first.

    Returns:
        Columns source, started_at, finished_at, status, error.
    """
    columns = ["source", "started_at", "finished_at", "status", "error"]
    if not warehouse.table_exists(con, "ops", "source_loads"):
        return pd.DataFrame(columns=columns)
    sql = f"""
        SELECT source, started_at, finished_at, status, error FROM ops.source_loads
        WHERE status <> 'succeeded' AND started_at >= $start ORDER BY started_at DESC LIMIT {int(limit)}
    """
    return con.execute(sql, {"start": period.start}).df()


@recorded
def totals(con: duckdb.DuckDBPyConnection, period: Period) -> pd.DataFrame:
    """The report's headline counts, one row (the KPIs the notebook publishes).

    Returns:
        Columns tables_loaded, stale_tables, late_tables, quarantined_records, failed_load_attempts.
    """
    listed = tables(con, period)
    per_source = sources(con, period)
    return pd.DataFrame(
        [
            {
                "tables_loaded": len(listed),
                "stale_tables": int(listed["status"].isin(["stale", "no data"]).sum()),
                "late_tables": int((listed["status"] == "late").sum()),
                "quarantined_records": int(per_source["quarantined"].sum()),
                "failed_load_attempts": int(per_source["failed_attempts"].sum()),
            }
        ]
    )


def summary(counts: pd.DataFrame) -> str:
    """One sentence from `totals(...)`: what is loaded and what needs attention."""
    row = counts.iloc[0]
    if row["tables_loaded"] == 0:
        return "Nothing is loaded yet."
    parts = [
        f"{row['tables_loaded']} tables loaded",
        f"{row['stale_tables']} stale (past their freshness limit, or empty)",
        f"{row['late_tables']} late (past their warning limit)",
        f"{row['quarantined_records']} quarantined records",
        f"{row['failed_load_attempts']} failed load attempts since the period start",
    ]
    return ", ".join(parts) + "."


@recorded
def test_warnings(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The data tests that warned or failed at the last `dbt build` (a failure of severity error stops it).

    Returns:
        Columns model, test, severity, status, failing_rows, yml, built_at; empty before the first build.
    """
    columns = ["model", "test", "severity", "status", "failing_rows", "yml", "built_at"]
    if not warehouse.table_exists(con, "ops", "dbt_test_results"):
        return pd.DataFrame(columns=columns)
    return con.execute(
        "SELECT model, test, severity, status, failures AS failing_rows, yml, built_at FROM ops.dbt_test_results "
        "WHERE status IN ('warn', 'fail', 'error') ORDER BY model, test"
    ).df()


# The report's shape (statex_bi.publish): headline, notes, metrics.


def headline(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> str:
    """The report's headline sentence: what is loaded and what needs attention."""
    return summary(totals(con, period))


def notes(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> list[str]:
    """What the reader must know first: that nothing is loaded yet (and how to load it), that freshness
    was never checked, and the tables whose freshness dbt could not check."""
    listed = tables(con, period)
    if listed.empty:
        return [NOTHING_LOADED]
    said = [FRESHNESS_NOT_CHECKED] if freshness_checked_at(con) is None else []
    failed = listed[listed["status"] == "error"]
    return said + [f"dbt could not check the freshness of {row.table}: {row.freshness_message}"
                   for row in failed.itertuples()]


def metrics(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> list[Metric]:
    """The KPIs the data-health report publishes (docs/metrics.md)."""
    counts = totals(con, period).iloc[0]
    return [
        Metric("health.tables_loaded", int(counts["tables_loaded"]), "count", "warehouse"),
        Metric("health.stale_tables", int(counts["stale_tables"]), "count", "warehouse"),
        Metric("health.quarantined_records", int(counts["quarantined_records"]), "count", "warehouse"),
        Metric("health.failed_load_attempts", int(counts["failed_load_attempts"]), "count", "warehouse"),
    ]
