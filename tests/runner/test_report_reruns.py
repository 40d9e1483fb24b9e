"""Re-running a run id replaces that run's outputs and metrics; the index lists every run, newest first."""

from __future__ import annotations

import json
import re
from datetime import date

import pytest
from reportkit import ORDERS_CELLS, expected_orders, metric_rows, seed_orders, write_notebook, write_params

from statex_bi.runner.run import run_params

START, END = date(2026, 2, 9), date(2026, 2, 22)
# A second report whose KPI follows from the period alone: its number of days.
DAYS_CELLS = [
    "from datetime import date\nfrom statex_bi import publish",
    "days = (date.fromisoformat(period_end) - date.fromisoformat(period_start)).days + 1\n"
    "publish.metric('period.days', days, unit='days')",
]


def test_rerun_replaces_outputs_and_metrics_and_index_lists_runs_newest_first(db_file, tmp_path):
    orders = seed_orders(db_file, seed=5)
    write_notebook(tmp_path / "notebooks", "orders", ORDERS_CELLS, title="Orders summary")
    write_notebook(tmp_path / "notebooks", "days", DAYS_CELLS, title="Days")
    params = write_params(tmp_path / "twice.yaml", {"orders": {"min_amount": 0}, "days": None}, start=START, end=END)
    outputs = db_file.parent / "outputs"

    assert run_params(params, jobs=2, quiet=True) == 0
    (first,) = [p.name for p in outputs.iterdir() if p.is_dir()]
    assert re.fullmatch(r"\d{8}T\d{6}Z-twice", first), "the default run id is a sortable UTC timestamp"
    before = json.loads((outputs / first / "manifest.json").read_text())

    assert run_params(params, run_id=first, only=["orders"], quiet=True) == 0
    after = json.loads((outputs / first / "manifest.json").read_text())
    assert after["notebooks"]["days"] == before["notebooks"]["days"], "a notebook not re-run keeps its entry"
    assert after["notebooks"]["orders"]["started_at"] > before["notebooks"]["orders"]["started_at"]
    assert after["started_at"] == before["started_at"] and after["status"] == "succeeded"
    assert sorted(p.name for p in (outputs / first).glob("*.html")) == ["days.html", "orders.html"]

    rows = metric_rows(db_file, first)
    expected_rows = [("days", "period.days"), ("orders", "orders.count"), ("orders", "orders.revenue")]
    assert [(r[0], r[1]) for r in rows] == expected_rows, "re-running 'orders' replaced its rows, kept 'days'"
    loaded = {name: value for report, name, value, *_ in rows if report == "orders"}
    assert loaded == pytest.approx(expected_orders(orders, START, END, 0), abs=1e-4)
    assert {name: value for _, name, value, *_ in rows}["period.days"] == (END - START).days + 1

    assert run_params(params, only=["days"], quiet=True) == 0
    second = next(p.name for p in outputs.iterdir() if p.is_dir() and p.name != first)
    index = (outputs / "index.html").read_text()
    assert index.index(f'id="{second}"') < index.index(f'id="{first}"'), "newest run first"
    assert f'href="{first}/orders.html"' in index and f'href="{second}/days.html"' in index
    assert f'href="{second}/orders.html"' not in index, "the second run ran only 'days'"
    assert not re.search(r"<(script|link)\b", index), "the index loads nothing"
