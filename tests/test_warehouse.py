from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import duckdb
import pytest

from statex_bi import warehouse
from statex_bi.exceptions import WarehouseError, WarehouseLockedError


def test_migrations_create_the_seed_schema_once(db_file):
    with warehouse.writer(db_file) as con:
        assert warehouse.migrate(con) == []  # connect() already migrated; a second pass does nothing
        columns = {
            row[0]: row[1]
            for row in con.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'monitoring' AND table_name = 'monitoring_metrics'"
            ).fetchall()
        }
    seed = {"id", "metric_name", "metric_type", "value", "unit", "tags", "source", "fastify_route",
            "sentry_event_id", "recorded_at"}
    assert seed | {"run_id", "period_start", "period_end"} <= columns.keys()
    assert columns["value"] == "DECIMAL(15,4)"
    with warehouse.writer(db_file) as con:
        with pytest.raises(duckdb.ConversionException):
            con.execute(
                "INSERT INTO monitoring.monitoring_metrics (metric_name, metric_type, value, run_id) "
                "VALUES ('x', 'NOT_A_TYPE', 1, 'r')"
            )
        alerts = con.execute(
            "SELECT enum_range(NULL::monitoring.alert_severity_enum)::VARCHAR[]"
        ).fetchone()[0]
    assert alerts == ["LOW", "MEDIUM", "HIGH", "CRITICAL"]


def test_read_only_open_of_a_missing_warehouse_says_how_to_load(tmp_path):
    with pytest.raises(WarehouseError, match="statex-bi demo"):
        warehouse.connect(tmp_path / "nothing.duckdb", read_only=True)


def _hold_lock(path, seconds: float) -> subprocess.Popen:
    code = textwrap.dedent(f"""
        import time, duckdb
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        time.sleep({seconds})
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_writer_is_told_who_holds_the_lock(db_file):
    warehouse.connect(db_file).close()
    holder = _hold_lock(db_file, 30)
    try:
        with pytest.raises(WarehouseLockedError) as caught:
            warehouse.connect(db_file)
        assert f"PID {holder.pid}" in str(caught.value)
        assert "--wait" in str(caught.value)
    finally:
        holder.kill()
        holder.wait()


def test_wait_retries_until_the_holder_is_gone(db_file):
    warehouse.connect(db_file).close()
    holder = _hold_lock(db_file, 1.5)
    started = time.monotonic()
    con = warehouse.connect(db_file, wait=20)
    con.close()
    holder.wait()
    assert time.monotonic() - started >= 0.5  # it really had to wait


def test_cli_reports_a_locked_warehouse_without_a_traceback(db_file):
    warehouse.connect(db_file).close()
    holder = _hold_lock(db_file, 30)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "statex_bi.cli", "build"], capture_output=True, text=True, timeout=60
        )
    finally:
        holder.kill()
        holder.wait()
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"locked by PID {holder.pid}" in result.stderr
