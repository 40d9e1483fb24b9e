"""Fixtures of the report runner tests.

`mixed_run` runs, once per test session, one params file whose notebooks succeed, raise, exit early,
kill their kernel, overrun the cell timeout and print a secret, with a loopback Sentry listening:
several tests check its results. Under pytest-xdist the first worker that needs it runs it while the
others wait on a file lock, then every worker reads the summary it wrote, so its kernels start once.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from reportkit import ORDERS_CELLS, SentrySink, seed_orders, write_notebook, write_params

SECRET = "stx-test-9f8e7d6c5b4a3210"
PERIOD = (date(2026, 3, 2), date(2026, 3, 8))
MIN_AMOUNT = 20
MIXED_NOTEBOOKS = {
    "orders": ORDERS_CELLS,
    "raises": ["import os", "raise ValueError('the API refused token ' + os.environ['STATEX_TEST_TOKEN'])", "1"],
    "exits_early": ["import sys", "sys.exit(0)", "print('never printed')"],
    "kernel_dies": ["import os, signal", "os.kill(os.getpid(), signal.SIGKILL)", "print('never printed')"],
    "sleeps": ["import time", "time.sleep(120)", "print('never printed')"],
    "leaks": ["import os", "print('the token is', os.environ['STATEX_TEST_TOKEN'])"],
}


@dataclass
class MixedRun:
    root: Path
    db: Path
    outputs: Path
    run_id: str
    exit_code: int
    stderr: str
    events: list[dict[str, Any]]
    dsn: str
    orders: list[tuple[int, float, date]]

    @property
    def run_dir(self) -> Path:
        return self.outputs / self.run_id

    @property
    def manifest(self) -> dict[str, Any]:
        return json.loads((self.run_dir / "manifest.json").read_text())


def _run_mixed(root: Path) -> dict[str, Any]:
    from statex_bi.runner.run import run_params

    folder = root / "notebooks"
    for stem, cells in MIXED_NOTEBOOKS.items():
        write_notebook(folder, stem, cells, title="Orders summary" if stem == "orders" else None)
    own = {stem: None for stem in MIXED_NOTEBOOKS} | {"orders": {"min_amount": MIN_AMOUNT}}
    params = write_params(root / "mixed.yaml", own, timeouts={"cell": 5, "notebook": 120}, defaults={"min_amount": 1})
    db, outputs = root / "warehouse.duckdb", root / "outputs"
    orders = seed_orders(db)
    stderr = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, SentrySink() as sink:
        patch.setenv("STATEX_BI_DB", str(db))
        patch.setenv("STATEX_BI_OUTPUTS", str(outputs))
        patch.setenv("STATEX_TEST_TOKEN", SECRET)
        patch.setenv("SENTRY_DSN", sink.dsn)
        with contextlib.redirect_stderr(stderr):
            code = run_params(params, start=PERIOD[0], end=PERIOD[1], jobs=3, run_id="mixed-run")
        events, dsn = sink.events, sink.dsn
    return {
        "root": str(root), "db": str(db), "outputs": str(outputs), "run_id": "mixed-run", "exit_code": code,
        "stderr": stderr.getvalue(), "events": events, "dsn": dsn,
        "orders": [[i, amount, day.isoformat()] for i, amount, day in orders],
    }


@pytest.fixture(scope="session")
def mixed_run(tmp_path_factory, worker_id) -> MixedRun:
    shared = tmp_path_factory.getbasetemp() if worker_id == "master" else tmp_path_factory.getbasetemp().parent
    summary = shared / "reports-mixed-run" / "summary.json"
    with (shared / "reports-mixed-run.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not summary.exists():
            summary.parent.mkdir(exist_ok=True)
            summary.write_text(json.dumps(_run_mixed(summary.parent)))
    data = json.loads(summary.read_text())
    return MixedRun(
        root=Path(data["root"]),
        db=Path(data["db"]),
        outputs=Path(data["outputs"]),
        run_id=data["run_id"],
        exit_code=data["exit_code"],
        stderr=data["stderr"],
        events=data["events"],
        dsn=data["dsn"],
        orders=[(i, amount, date.fromisoformat(day)) for i, amount, day in data["orders"]],
    )
