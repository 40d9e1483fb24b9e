"""Alert life cycle in monitoring.monitoring_alerts: open, keep, resolve; never a duplicate open alert.

An alert is identified by its rule (`alert_name`), `subject` and `params` (the params file whose runs
evaluate it: a weekly and a monthly review judge different periods, so each keeps its own alerts).

- The condition holds and no alert is open: a row is inserted (an "opened" event).
- It holds and an alert is open: that row's current value, threshold, message and `last_run_id` are
  updated; nothing is inserted and nobody is notified again.
- It no longer holds and an alert is open: `resolved_at`, `resolved_run_id` are set and
  `condition_met` becomes false (a "resolved" event).
- The rule had no data for the subject: nothing changes (no data is not evidence that it cleared).
- The run's period ends before the period the open alert was raised for (a backfill): nothing changes
  for that alert (an older period is no evidence about a newer one).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import duckdb

from statex_bi.alerts.findings import Evaluation, Finding, context_json
from statex_bi.periods import Period

OPENED, RESOLVED = "opened", "resolved"


@dataclass(frozen=True)
class Event:
    """An alert that was opened or resolved by this run: what notifications are about."""

    kind: str
    alert_id: str
    rule: str
    title: str
    severity: str
    subject: str
    current: float | None
    threshold: float | None
    message: str
    params: str
    run_id: str
    period: Period
    report: str | None

    def as_dict(self) -> dict[str, Any]:
        return {
            "event": self.kind, "alert_id": self.alert_id, "rule": self.rule, "title": self.title,
            "severity": self.severity, "subject": self.subject, "current_value": self.current,
            "threshold_value": self.threshold, "message": self.message, "params": self.params,
            "run_id": self.run_id, "period_start": self.period.start.isoformat(),
            "period_end": self.period.end.isoformat(), "report": self.report,
        }


def _event(kind: str, alert_id: str, finding: Finding, params: str, run_id: str, period: Period) -> Event:
    rule = finding.rule
    return Event(kind, alert_id, rule.name, rule.title, rule.severity, finding.subject, finding.current,
                 finding.threshold, finding.message, params, run_id, period, finding.report)


def apply(
    con: duckdb.DuckDBPyConnection, evaluations: list[Evaluation], *, params: str, run_id: str, period: Period
) -> list[Event]:
    """Record the run's findings in monitoring_alerts, in one transaction.

    Args:
        con: a read-write warehouse connection.
        evaluations: what `evaluate.evaluate` found for this run.
        params: the params file's name (e.g. "weekly").
        run_id: the run.
        period: its period.

    Returns:
        The alerts opened and resolved by this run.
    """
    events = []
    now = datetime.now(UTC).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        rows = con.execute(
            "SELECT alert_name, subject, CAST(id AS VARCHAR), period_end FROM monitoring.monitoring_alerts "
            "WHERE resolved_at IS NULL AND params = ?", [params]
        ).fetchall()
        open_ids = {(name, subject): alert_id for name, subject, alert_id, _ in rows}
        newer = {(name, subject) for name, subject, _, end in rows if end is not None and end > period.end}
        for evaluation in evaluations:
            for finding in evaluation.findings:
                key = (finding.rule.name, finding.subject)
                alert_id = open_ids.get(key)
                if key in newer:
                    continue
                if finding.holds and alert_id is None:
                    alert_id = con.execute(
                        """
                        INSERT INTO monitoring.monitoring_alerts
                            (alert_name, severity, condition_met, threshold_value, current_value, alert_message,
                             fastify_context, created_at, run_id, report, period_start, period_end, subject, params,
                             last_run_id)
                        VALUES (?, ?, TRUE, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                        RETURNING CAST(id AS VARCHAR)
                        """,
                        [finding.rule.name, finding.rule.severity, finding.threshold, finding.current,
                         finding.message, context_json(finding), now, run_id, finding.report, period.start,
                         period.end, finding.subject, params, run_id],
                    ).fetchall()[0][0]
                    open_ids[key] = alert_id
                    events.append(_event(OPENED, alert_id, finding, params, run_id, period))
                elif finding.holds:
                    con.execute(
                        "UPDATE monitoring.monitoring_alerts SET current_value = ?, threshold_value = ?, "
                        "alert_message = ?, fastify_context = ?, last_run_id = ? WHERE CAST(id AS VARCHAR) = ?",
                        [finding.current, finding.threshold, finding.message, context_json(finding), run_id,
                         alert_id],
                    )
                elif alert_id is not None:
                    con.execute(
                        "UPDATE monitoring.monitoring_alerts SET resolved_at = ?, condition_met = FALSE, "
                        "resolved_run_id = ?, current_value = ? WHERE CAST(id AS VARCHAR) = ?",
                        [now, run_id, finding.current, alert_id],
                    )
                    del open_ids[key]
                    events.append(_event(RESOLVED, alert_id, finding, params, run_id, period))
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return events


def open_alerts(con: duckdb.DuckDBPyConnection, params: str | None = None) -> list[dict[str, Any]]:
    """The open alerts, most severe first (all params files when `params` is None)."""
    sql = """
        SELECT CAST(id AS VARCHAR) AS id, alert_name, CAST(severity AS VARCHAR) AS severity_name, subject, params,
               CAST(current_value AS DOUBLE) AS current_value, CAST(threshold_value AS DOUBLE) AS threshold_value,
               alert_message, created_at, run_id, last_run_id, report
        FROM monitoring.monitoring_alerts
        WHERE resolved_at IS NULL AND (? IS NULL OR params = ?)
        ORDER BY monitoring_alerts.severity DESC, created_at, alert_name, subject
    """
    cursor = con.execute(sql, [params, params])
    names = ["severity" if d[0] == "severity_name" else d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
