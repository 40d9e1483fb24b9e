"""The whole-notebook timeout kills the kernel too; a locked warehouse is named, and --wait waits it out."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys

import psutil
from reportkit import write_notebook, write_params

from statex_bi import cli
from statex_bi.runner.run import run_params

HOLD_WAREHOUSE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_notebook_timeout_kills_the_process_tree_and_reports_timed_out(db_file, tmp_path):
    pid_file = tmp_path / "kernel.pid"
    cells = [f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))", "time.sleep(120)"]
    write_notebook(tmp_path / "notebooks", "hangs", cells)
    params = write_params(tmp_path / "slow.yaml", {"hangs": None}, timeouts={"cell": 100, "notebook": 8})

    assert run_params(params, quiet=True) == 1

    (run_dir,) = [p for p in (db_file.parent / "outputs").iterdir() if p.is_dir()]
    entry = json.loads((run_dir / "manifest.json").read_text())["notebooks"]["hangs"]
    assert entry["duration_s"] < 60, "the notebook timeout, not the cell timeout, ended the notebook"
    assert entry["status"] == "timed_out"
    assert entry["error"]["message"] == "the notebook ran longer than the 8 s notebook timeout (stopped in cell 4)"
    assert "This report failed:</strong> the notebook ran longer than the 8 s" in (run_dir / "hangs.html").read_text()
    kernel = int(pid_file.read_text())
    with contextlib.suppress(psutil.NoSuchProcess):
        assert psutil.Process(kernel).status() == psutil.STATUS_ZOMBIE, "the kernel must not outlive the timeout"


def _hold(db_file, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_WAREHOUSE, str(db_file), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_locked_warehouse_is_named_and_wait_retries_until_it_is_free(db_file, tmp_path, capsys):
    write_notebook(tmp_path / "notebooks", "quick", ["print('ok')"])
    params = write_params(tmp_path / "locked.yaml", {"quick": None})

    holder = _hold(db_file, 60)
    try:
        assert cli.main(["run", str(params), "--quiet"]) == 2
    finally:
        holder.kill()
        holder.wait()
    error = capsys.readouterr().err
    assert f"is locked by PID {holder.pid}" in error and "--wait" in error
    assert not (db_file.parent / "outputs").exists(), "nothing runs while the warehouse is locked"

    holder = _hold(db_file, 2)
    try:
        assert cli.main(["run", str(params), "--quiet", "--wait", "60"]) == 0
    finally:
        holder.wait()
    assert len(list((db_file.parent / "outputs").glob("*/quick.html"))) == 1


def test_wait_covers_the_notebooks_when_another_process_takes_the_warehouse_mid_run(db_file, tmp_path):
    # Another writer (an ingest, a second run) takes the lock after the runner's own open, while the
    # notebooks run: the notebook opening the warehouse waits for it like the runner does.
    cells = [
        "import subprocess, sys\n"
        f"holder = subprocess.Popen([sys.executable, '-c', {HOLD_WAREHOUSE!r}, os.environ['STATEX_BI_DB'], '2'],\n"
        "                          stdout=subprocess.PIPE, text=True)\n"
        "assert holder.stdout.readline().strip() == 'locked'",
        "from statex_bi import display\ncon = display.open_warehouse()\n"
        "print('opened', con.execute('SELECT 42').fetchone())",
        "holder.wait()",
    ]
    write_notebook(tmp_path / "notebooks", "reads", ["import os"] + cells)
    params = write_params(tmp_path / "waits.yaml", {"reads": None})

    assert cli.main(["run", str(params), "--quiet", "--wait", "60"]) == 0
    (run_dir,) = [p for p in (db_file.parent / "outputs").iterdir() if p.is_dir()]
    assert json.loads((run_dir / "manifest.json").read_text())["notebooks"]["reads"]["status"] == "succeeded"
    assert "opened (42,)" in (run_dir / "reads.html").read_text()
