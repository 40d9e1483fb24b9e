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
    assert columns["value"] == "DOUBLE"
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


PRECISE = [0.013712345678901234, 4e-5, 1e12, -2.5e-9, 123456789.123456789]
ALERT = "INSERT INTO monitoring.monitoring_alerts (alert_name, severity, threshold_value, current_value, run_id)"


def test_an_old_warehouse_is_migrated_to_full_precision_and_keeps_its_rows(db_file, monkeypatch):
    # The warehouse as the DECIMAL(15,4) migrations left it, with rows in it.
    with monkeypatch.context() as old:
        old.setattr(warehouse, "MIGRATIONS", [m for m in warehouse.MIGRATIONS if m[0] <= 2])
        with warehouse.writer(db_file) as con:
            con.execute(
                "INSERT INTO monitoring.monitoring_metrics (metric_name, metric_type, value, run_id, report) "
                "VALUES ('conversion.signup_rate', 'GAUGE', 0.0137, 'r1', 'growth'), "
                "('revenue.net', 'GAUGE', 1234.5678, 'r1', 'growth')"
            )
            con.execute(f"{ALERT} VALUES ('signup drop', 'HIGH', 0.02, 0.0137, 'r1')")
            assert con.execute("SELECT CAST(0.0137123 AS DECIMAL(15,4))::DOUBLE").fetchall() == [(0.0137,)]

    with warehouse.writer(db_file) as con:
        types = dict(
            con.execute(
                "SELECT table_name || '.' || column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'monitoring' AND column_name IN ('value', 'threshold_value', 'current_value')"
            ).fetchall()
        )
        assert types == {
            "monitoring_metrics.value": "DOUBLE",
            "monitoring_alerts.threshold_value": "DOUBLE",
            "monitoring_alerts.current_value": "DOUBLE",
        }
        kept = con.execute("SELECT metric_name, value FROM monitoring.monitoring_metrics ORDER BY metric_name")
        assert kept.fetchall() == [("conversion.signup_rate", 0.0137), ("revenue.net", 1234.5678)]
        alerts = con.execute("SELECT threshold_value, current_value FROM monitoring.monitoring_alerts").fetchall()
        assert alerts == [(0.02, 0.0137)]

        con.executemany(
            "INSERT INTO monitoring.monitoring_metrics (metric_name, metric_type, value, run_id) "
            "VALUES (?, 'GAUGE', ?, 'r2')",
            [[f"m{i}", value] for i, value in enumerate(PRECISE)],
        )
        con.execute(f"{ALERT} VALUES ('tiny', 'LOW', ?, ?, 'r2')", [4e-5, 0.013712345678901234])
        stored = con.execute("SELECT value FROM monitoring.monitoring_metrics WHERE run_id = 'r2' ORDER BY metric_name")
        assert [row[0] for row in stored.fetchall()] == PRECISE, "stored exactly, not rounded to 4 decimals"
        tiny = con.execute(
            "SELECT threshold_value, current_value FROM monitoring.monitoring_alerts WHERE run_id = 'r2'"
        )
        assert tiny.fetchall() == [(4e-5, 0.013712345678901234)]


def test_wait_names_the_holder_once_while_it_waits(db_file, capsys):
    """What `--wait` prints (on stderr) while another process holds the warehouse: one line, not one per retry."""
    import threading

    warehouse.connect(db_file).close()
    holder = _hold_lock(db_file, 120)

    def release() -> None:
        holder.kill()
        holder.wait()

    threading.Timer(3.0, release).start()  # a few retries, every 0.5 s, while the lock is held
    warehouse.connect(db_file, wait=300).close()
    waiting = [line for line in capsys.readouterr().err.splitlines() if line.startswith("waiting")]
    assert len(waiting) == 1, waiting
    assert f"{db_file}: it is locked by PID {holder.pid}" in waiting[0]


def _loads(con, rows):
    con.executemany("INSERT INTO ops.source_loads VALUES (?, ?, ?, ?, 0, NULL, ?)", rows)


def test_failed_last_loads_lists_the_sources_whose_latest_attempt_failed(db_file):
    with warehouse.writer(db_file) as con:
        _loads(con, [
            ("fx", "2026-03-01 06:00", "2026-03-01 06:01", "failed", "HTTPError: 503"),
            ("fx", "2026-03-02 06:00", "2026-03-02 06:01", "succeeded", None),
            ("stripe", "2026-03-01 06:00", "2026-03-01 06:02", "succeeded", None),
            ("stripe", "2026-03-02 06:00", "2026-03-02 06:02", "failed", "ConfigError: $STRIPE_API_KEY is not set"),
        ])
        assert warehouse.failed_last_loads(con) == [
            ("stripe", "2026-03-02 06:02", "ConfigError: $STRIPE_API_KEY is not set")
        ]


def test_a_warehouse_holds_one_kind_of_data(db_file):
    from statex_bi.exceptions import ConfigError

    with warehouse.writer(db_file) as con:
        assert warehouse.kind(con) is None
        warehouse.claim(con, warehouse.DEMO, db_file)
        with pytest.raises(ConfigError, match="is the demo warehouse"):
            warehouse.claim(con, warehouse.REAL, db_file)
        con.execute("DELETE FROM ops.warehouse_info")
        con.execute("CREATE SCHEMA raw_fx")  # loaded before warehouses recorded their kind
        with pytest.raises(ConfigError, match="already holds real data"):
            warehouse.claim(con, warehouse.DEMO, db_file)
        warehouse.claim(con, warehouse.REAL, db_file)
        assert warehouse.kind(con) == warehouse.REAL


def test_load_errors_stored_by_older_versions_lose_the_quoted_row_and_addresses(db_file, monkeypatch):
    # What versions before public_error stored: the library's message whole (a real DuckDB error).
    probe = duckdb.connect()
    probe.execute("CREATE TABLE t (x INTEGER)")
    with pytest.raises(duckdb.ConversionException) as raised:
        probe.execute("INSERT INTO t VALUES (CAST('alice@example.com Alice' AS INTEGER))")
    stored = f"{type(raised.value).__name__}: {raised.value}"
    assert "\nLINE 1:" in stored and "alice@example.com" in stored
    with monkeypatch.context() as old:
        old.setattr(warehouse, "MIGRATIONS", [m for m in warehouse.MIGRATIONS if m[0] <= 6])
        with warehouse.writer(db_file) as con:
            con.execute("INSERT INTO ops.source_loads VALUES ('shop', now(), now(), 'failed', 0, 0, ?)", [stored])

    with warehouse.writer(db_file) as con:
        [(error,)] = con.execute("SELECT error FROM ops.source_loads").fetchall()
        [(shown,)] = [(e,) for _, _, e in warehouse.failed_last_loads(con)]
    assert error == shown
    assert "alice@example.com" not in error and "LINE" not in error and "\n" not in error
    assert error.startswith("ConversionException: Conversion Error: Could not convert string '[address removed]")
