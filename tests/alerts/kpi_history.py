"""Helpers for alert tests: a rules file, KPI rows published as a run would, and the run's alert step."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import yaml

from statex_bi import warehouse
from statex_bi.alerts import rules
from statex_bi.alerts.hook import after_run
from statex_bi.periods import Period
from statex_bi.runner.metrics import replace_metrics

WEEKS = [Period(date(2026, 11, 2) + timedelta(days=7 * i), date(2026, 11, 8) + timedelta(days=7 * i)) for i in range(4)]


def rules_file(tmp_path: Path, *entries: dict) -> rules.AlertConfig:
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"rules": list(entries), "notify": {"routes": {}}}))
    return rules.load(path)


def publish(db: Path, run_id: str, period: Period, report: str, records: list[dict]) -> None:
    full = [{"metric_type": "GAUGE", "unit": None, "source": "test", **r} for r in records]
    with warehouse.writer(db) as con:
        replace_metrics(con, run_id, period, {report: full})


def evaluate(db: Path, config: rules.AlertConfig, run_id: str, period: Period) -> dict:
    record, errors = after_run(config, params="weekly", run_id=run_id, period=period, db=db, secrets={},
                               info=lambda line: None, failure=lambda line: None)
    assert errors == []
    return record


def alerts(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT CAST(id AS VARCHAR), alert_name, subject, CAST(current_value AS DOUBLE), resolved_at IS NULL, "
            "condition_met, run_id, last_run_id, resolved_run_id FROM monitoring.monitoring_alerts ORDER BY created_at"
        ).fetchall()
    finally:
        con.close()
