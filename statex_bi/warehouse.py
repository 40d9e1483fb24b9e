"""The DuckDB warehouse: one file, idempotent migrations, clear lock errors.

Notebooks call `connect(read_only=True)`. Only ingestion and the report runner open it for writing;
DuckDB allows one writing process *or* several reading ones at a time.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from statex_bi.config import db_path
from statex_bi.exceptions import ConfigError, WarehouseError, WarehouseLockedError

# Each migration runs once, in order; its number is recorded in ops.schema_migrations.
MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE SCHEMA IF NOT EXISTS monitoring;
        CREATE TYPE monitoring.metric_type_enum AS ENUM ('COUNTER', 'GAUGE', 'HISTOGRAM', 'SUMMARY');
        CREATE TYPE monitoring.alert_severity_enum AS ENUM ('LOW', 'MEDIUM', 'HIGH', 'CRITICAL');
        CREATE TABLE monitoring.monitoring_metrics (
            id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            metric_name VARCHAR(255) NOT NULL,
            metric_type monitoring.metric_type_enum NOT NULL,
            value DECIMAL(15,4) NOT NULL,
            unit VARCHAR(50),
            tags JSON,
            source VARCHAR(255),
            fastify_route VARCHAR(255),
            sentry_event_id VARCHAR(255),
            recorded_at TIMESTAMP DEFAULT current_localtimestamp(),
            run_id VARCHAR NOT NULL,
            report VARCHAR,
            period_start DATE,
            period_end DATE
        );
        CREATE TABLE monitoring.monitoring_alerts (
            id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
            alert_name VARCHAR(255) NOT NULL,
            severity monitoring.alert_severity_enum NOT NULL,
            condition_met BOOLEAN DEFAULT TRUE,
            threshold_value DECIMAL(15,4),
            current_value DECIMAL(15,4),
            alert_message TEXT,
            sentry_issue_id VARCHAR(255),
            fastify_context JSON,
            resolved_at TIMESTAMP,
            created_at TIMESTAMP DEFAULT current_localtimestamp(),
            run_id VARCHAR NOT NULL,
            report VARCHAR,
            period_start DATE,
            period_end DATE
        );
        CREATE SCHEMA IF NOT EXISTS ops;
        -- One row per ingestion attempt, failed ones included (dlt's own _dlt_loads keeps only successes).
        CREATE TABLE ops.source_loads (
            source VARCHAR NOT NULL,
            started_at TIMESTAMP NOT NULL,
            finished_at TIMESTAMP NOT NULL,
            status VARCHAR NOT NULL,
            rows_loaded BIGINT,
            rows_quarantined BIGINT,
            error VARCHAR
        );
        """,
    ),
    (
        2,
        """
        -- Facts about the warehouse itself, e.g. kind = demo for the simulated company's warehouse.
        CREATE TABLE ops.warehouse_info (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
        """,
    ),
    (
        4,
        """
        -- Full precision: DECIMAL(15,4) stored a 1.37% rate as 0.0137, anything below 0.00005 as 0 and
        -- refused 1e12. Values already stored keep their (rounded) value; new ones are exact doubles.
        ALTER TABLE monitoring.monitoring_metrics ALTER COLUMN value SET DATA TYPE DOUBLE;
        ALTER TABLE monitoring.monitoring_alerts ALTER COLUMN threshold_value SET DATA TYPE DOUBLE;
        ALTER TABLE monitoring.monitoring_alerts ALTER COLUMN current_value SET DATA TYPE DOUBLE;
        """,
    ),
    (
        5,
        """
        -- Alert life cycle (statex_bi.alerts): an alert is identified by rule (alert_name), subject and
        -- params file; last_run_id is the newest run that found it holding, resolved_run_id the one that
        -- found it cleared.
        ALTER TABLE monitoring.monitoring_alerts ADD COLUMN subject VARCHAR;
        ALTER TABLE monitoring.monitoring_alerts ADD COLUMN params VARCHAR;
        ALTER TABLE monitoring.monitoring_alerts ADD COLUMN last_run_id VARCHAR;
        ALTER TABLE monitoring.monitoring_alerts ADD COLUMN resolved_run_id VARCHAR;
        """,
    ),
    (
        6,
        """
        -- The newest data each source holds, written by every ingest (statex_bi.ingest), so that a report
        -- reads it from here instead of importing every connector into its kernel.
        CREATE TABLE ops.source_watermarks (
            source VARCHAR PRIMARY KEY,
            watermark VARCHAR,
            checked_at TIMESTAMP NOT NULL
        );
        """,
    ),
    (
        7,
        r"""
        -- Load errors stored before statex_bi.sources.common.public_error could quote the failing row (DuckDB
        -- prints it on the lines after the first) and e-mail addresses, and every report header shows the
        -- newest: keep the first line, mask addresses, cut to 1,000 characters, as new errors are stored.
        UPDATE ops.source_loads
        SET error = left(regexp_replace(split_part(error, chr(10), 1),
                                        '[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+', '[address removed]', 'g'),
                         1000)
        WHERE error IS NOT NULL;
        """,
    ),
]

_PID = re.compile(r"\(PID (\d+)\)")
_LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


def _lock_holder(message: str) -> str:
    """Describe the process named in DuckDB's lock error: 'PID 123 (statex-bi ingest ...)'."""
    match = _PID.search(message)
    if not match:
        return "another process"
    pid = match.group(1)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        cmdline = ""
    return f"PID {pid} ({cmdline[:160]})" if cmdline else f"PID {pid}"


def _print_wait(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def connect(
    path: Path | str | None = None,
    *,
    read_only: bool = False,
    wait: float = 0.0,
    on_wait: Callable[[str], None] = _print_wait,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; create and migrate it when opened for writing.

    Args:
        path: the DuckDB file; defaults to $STATEX_BI_DB or data/statex.duckdb.
        read_only: what notebooks use; several readers may share the file.
        wait: seconds to keep retrying while another process holds the lock.
        on_wait: told, once per lock holder, who holds the lock while this waits (default: stderr).

    Raises:
        WarehouseLockedError: the file stayed locked for `wait` seconds.
        WarehouseError: a read-only open of a warehouse that does not exist yet.
    """
    target = Path(path) if path else db_path()
    if read_only and not target.exists():
        raise WarehouseError(
            f"no warehouse at {target} yet; load data first with `statex-bi demo` or `statex-bi ingest`"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + max(wait, 0.0)
    announced = None
    while True:
        try:
            con = duckdb.connect(str(target), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not any(marker in str(exc) for marker in _LOCK_MARKERS):
                raise WarehouseError(f"cannot open {target}: {exc}") from None
            holder = _lock_holder(str(exc))
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(str(target), holder) from None
            if holder != announced:  # one line per holder, not one per retry
                seconds = max(deadline - time.monotonic(), 0.0)
                on_wait(f"waiting up to {seconds:.0f} s for {target}: it is locked by {holder}")
                announced = holder
            time.sleep(0.5)
    if not read_only:
        migrate(con)
    return con


@contextmanager
def writer(path: Path | str | None = None, *, wait: float = 0.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection that is always closed, releasing the file lock."""
    con = connect(path, wait=wait)
    try:
        yield con
    finally:
        con.close()


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the migrations this file has not seen yet; returns the numbers applied."""
    con.execute("CREATE SCHEMA IF NOT EXISTS ops")
    con.execute(
        "CREATE TABLE IF NOT EXISTS ops.schema_migrations "
        "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP DEFAULT current_localtimestamp())"
    )
    done = {row[0] for row in con.execute("SELECT version FROM ops.schema_migrations").fetchall()}
    applied = []
    for version, sql in MIGRATIONS:
        if version in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO ops.schema_migrations (version) VALUES (?)", [version])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(version)
    return applied


def quote_identifier(name: str) -> str:
    """`name` as a DuckDB identifier in SQL built from the catalogue's names ("a""b" for a"b)."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    """`text` as a DuckDB string literal ('it''s')."""
    return "'" + text.replace("'", "''") + "'"


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    query = "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
    # fetchall drains the result: an undrained one blocks the next relation query (DuckDB 2).
    return con.execute(query, [schema, table]).fetchall()[0][0] > 0


def loaded(con: duckdb.DuckDBPyConnection, *tables: str) -> bool:
    """Whether every table named `schema.table` exists: a `raw_<source>` table once its source has loaded
    (dbt builds the models over an unloaded source empty), a model once it is built."""
    return all(table_exists(con, *table.split(".", 1)) for table in tables)


def failed_last_loads(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str]]:
    """The sources whose most recent load attempt (ops.source_loads) failed.

    Returns:
        (source, finished_at as 'YYYY-MM-DD HH:MM' UTC, error) per source, by source name.
    """
    if not table_exists(con, "ops", "source_loads"):
        return []
    rows = con.execute(
        """
        SELECT source, strftime(finished_at, '%Y-%m-%d %H:%M'), coalesce(error, 'no error message recorded')
        FROM ops.source_loads
        QUALIFY row_number() OVER (PARTITION BY source ORDER BY finished_at DESC, started_at DESC) = 1
            AND status = 'failed'
        ORDER BY source
        """
    ).fetchall()
    return [(source, finished, error) for source, finished, error in rows]


def watermarks(con: duckdb.DuckDBPyConnection) -> dict[str, str | None]:
    """The newest data each ingested source holds (None when it holds nothing yet), by source name."""
    if not table_exists(con, "ops", "source_watermarks"):
        return {}
    rows = con.execute("SELECT source, watermark FROM ops.source_watermarks ORDER BY source").fetchall()
    return dict(rows)


DEMO, REAL = "demo", "real"


def kind(con: duckdb.DuckDBPyConnection) -> str | None:
    """What the warehouse holds: 'demo' (the simulated company), 'real', or None while it is unclaimed."""
    if not table_exists(con, "ops", "warehouse_info"):
        return None
    rows = con.execute("SELECT value FROM ops.warehouse_info WHERE key = 'kind'").fetchall()
    return rows[0][0] if rows else None


def holds_raw_data(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether any source has loaded into this warehouse (a raw_<source> schema exists)."""
    query = "SELECT count(*) FROM information_schema.schemata WHERE schema_name LIKE 'raw\\_%' ESCAPE '\\'"
    return con.execute(query).fetchall()[0][0] > 0


def claim(con: duckdb.DuckDBPyConnection, wanted: str, path: Path | str) -> None:
    """Mark the warehouse as `wanted` (demo or real), refusing one that holds the other kind of data.

    Raises:
        ConfigError: simulated data would mix with real data, or the other way round.
    """
    current = kind(con)
    if current is None and holds_raw_data(con):
        current = REAL  # loaded before warehouses recorded their kind: only real loads did that
    if current not in (None, wanted):
        if wanted == REAL:
            raise ConfigError(
                f"{path} is the demo warehouse (simulated data); real sources do not load into it. "
                "Point STATEX_BI_DB at another file, or delete this one to start over with real data"
            )
        raise ConfigError(
            f"{path} already holds real data; the demo does not touch it. Run the demo in its own warehouse, "
            "e.g. STATEX_BI_DB=data/demo.duckdb statex-bi demo"
        )
    con.execute("INSERT OR REPLACE INTO ops.warehouse_info VALUES ('kind', ?)", [wanted])
