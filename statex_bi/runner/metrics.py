"""Load what notebooks published (statex_bi.publish sidecars) into monitoring.monitoring_metrics.

Rows are keyed by (run_id, report): re-running a report under the same run id replaces its rows, so
a run's metrics are never duplicated. A report that was re-run and failed loses its earlier rows:
they described outputs that the re-run has just replaced.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from statex_bi.periods import Period

_INSERT = """
INSERT INTO monitoring.monitoring_metrics
    (metric_name, metric_type, value, unit, tags, source, run_id, report, period_start, period_end)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
"""


def replace_metrics(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    period: Period,
    published: dict[str, list[dict[str, Any]] | None],
) -> dict[str, int]:
    """Replace the metric rows of each re-run report, in one transaction.

    Args:
        con: a read-write warehouse connection.
        run_id: the run.
        period: the period the reports covered.
        published: report (notebook stem) -> its sidecar records, or None when the report did not
            succeed (its rows for this run are removed and none are loaded).

    Returns:
        report -> number of rows loaded.
    """
    loaded = {}
    con.execute("BEGIN TRANSACTION")
    try:
        for report, records in published.items():
            con.execute("DELETE FROM monitoring.monitoring_metrics WHERE run_id = ? AND report = ?", [run_id, report])
            rows = [
                [
                    r["metric_name"], r["metric_type"], r["value"], r.get("unit"), json.dumps(r.get("tags") or {}),
                    r.get("source"), run_id, report, period.start, period.end,
                ]
                for r in records or []
            ]
            if rows:
                con.executemany(_INSERT, rows)
            loaded[report] = len(rows)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return loaded
