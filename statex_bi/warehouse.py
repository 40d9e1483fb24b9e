"""The DuckDB warehouse: one file, idempotent migrations, clear lock errors.

Notebooks call `connect(read_only=True)`. Only ingestion and the report runner open it for writing;
DuckDB allows one writing process *or* several reading ones at a time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from statex_bi.config import db_path
from statex_bi.exceptions import WarehouseError, WarehouseLockedError

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


def connect(
    path: Path | str | None = None, *, read_only: bool = False, wait: float = 0.0
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse; create and migrate it when opened for writing.

    Args:
        path: the DuckDB file; defaults to $STATEX_BI_DB or data/statex.duckdb.
        read_only: what notebooks use; several readers may share the file.
        wait: seconds to keep retrying while another process holds the lock.

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
    while True:
        try:
            con = duckdb.connect(str(target), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not any(marker in str(exc) for marker in _LOCK_MARKERS):
                raise WarehouseError(f"cannot open {target}: {exc}") from None
            if time.monotonic() >= deadline:
                raise WarehouseLockedError(str(target), _lock_holder(str(exc))) from None
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


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    query = "SELECT count(*) FROM information_schema.tables WHERE table_schema = ? AND table_name = ?"
    # fetchall drains the result: an undrained one blocks the next relation query (DuckDB 2).
    return con.execute(query, [schema, table]).fetchall()[0][0] > 0
