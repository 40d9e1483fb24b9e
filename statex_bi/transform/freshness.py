"""`dbt source freshness` after every ingest, its result kept in the warehouse for the data-health report.

Each raw table's `loaded_at_field`, `warn_after` and `error_after` are declared once, in the dbt
project's `staging/_<source>__sources.yml`; dbt judges them (a DATE field covers until the end of its
newest day: macros/freshness.sql). `check` runs it in-process on the tables that are loaded (a declared
table that is not loaded yet has nothing to judge) and replaces `ops.dbt_source_freshness` with one row
per table: when it was checked, the newest load time, its age, the limits and dbt's status.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from statex_bi import warehouse
from statex_bi.exceptions import ModelError
from statex_bi.transform import build as project

FRESHNESS_TABLE = "ops.dbt_source_freshness"
_SECONDS_PER = {"minute": 60, "hour": 3600, "day": 86400}
_COLUMNS = """checked_at TIMESTAMP, "table" VARCHAR, loaded_at_field VARCHAR, max_loaded_at TIMESTAMP,
    age_hours DOUBLE, warn_after_hours DOUBLE, error_after_hours DOUBLE, status VARCHAR, message VARCHAR"""


def _hours(limit: object) -> float | None:
    """A dbt `Time` (count, period) in hours; None when the limit is not set."""
    count, period = getattr(limit, "count", None), getattr(limit, "period", None)
    if count is None or period is None:
        return None
    return count * _SECONDS_PER[str(getattr(period, "value", period))] / 3600


def _naive_utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _row(result, checked_at: datetime) -> tuple:
    node = result.node
    criteria = getattr(result, "criteria", None) or getattr(node, "freshness", None)
    age = getattr(result, "age", None)
    newest = _naive_utc(getattr(result, "max_loaded_at", None))
    if newest is not None and newest.year == 1:  # dbt's stand-in for a table without a dated row
        newest = age = None
    status = str(getattr(result.status, "value", result.status))
    return (
        checked_at, f"{node.schema}.{node.identifier}", node.loaded_at_field,
        newest, None if age is None else age / 3600,
        _hours(getattr(criteria, "warn_after", None)), _hours(getattr(criteria, "error_after", None)),
        status, " ".join((getattr(result, "message", None) or "").split()) or None,
    )


def check(db: Path, progress: Callable[[str], None] = print) -> list[tuple]:
    """`dbt source freshness` on every loaded raw table of `db`; the rows are stored in FRESHNESS_TABLE.

    The caller holds the warehouse (ingest does); dbt's open shares it.

    Raises:
        ModelError: dbt could not run the command (the project does not parse, the warehouse is missing).
    """
    with warehouse.writer(db) as con:
        missing = project.missing_sources(con)
    exclude = [arg for name in missing for arg in ("--exclude", f"source:{name}")]
    outcome = project.invoke(["source", "freshness", *exclude], db)
    if outcome.exception is not None:
        raise ModelError(str(project.PROJECT_DIR), f"dbt source freshness could not run: {outcome.exception}")
    checked_at = datetime.now(UTC).replace(tzinfo=None)
    rows = sorted(_row(result, checked_at) for result in outcome.result.results)
    with warehouse.writer(db) as con:
        con.execute(f"CREATE OR REPLACE TABLE {FRESHNESS_TABLE} ({_COLUMNS})")
        if rows:
            con.executemany(f"INSERT INTO {FRESHNESS_TABLE} VALUES ({', '.join('?' * 9)})", rows)
    late = [row[1] for row in rows if row[7] != "pass"]
    progress(f"freshness: {len(rows)} tables checked by dbt"
             + (f"; past their limit: {', '.join(late)}" if late else "; all within their limits"))
    return rows
