"""The whole-notebook timeout kills the kernel too; a locked warehouse is named, and --wait waits it out."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys

import psutil
import pytest
from reportkit import write_notebook, write_params

from statex_bi import cli
from statex_bi.runner import staging
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


@pytest.fixture
def small_outputs(tmp_path, monkeypatch):
    """outputs/ on a 2 MB tmpfs (root), or, where nothing can be mounted, a disk that refuses files over 1 MB."""
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    monkeypatch.setenv("STATEX_BI_OUTPUTS", str(outputs))
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(outputs)], capture_output=True, check=False
    ).returncode == 0
    if not mounted:
        real_move = staging._move

        def fills_up(source, target):
            if source.stat().st_size > 1_000_000:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(target))
            real_move(source, target)

        monkeypatch.setattr(staging, "_move", fills_up)
    yield outputs
    if mounted:
        subprocess.run(["umount", str(outputs)], check=True)


def _tree(folder) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_full_disk_leaves_the_previous_outputs_untouched_says_so_in_one_line_and_exits_1(
    db_file, tmp_path, small_outputs, capsys
):
    big = "open(os.path.join(os.environ['STATEX_BI_REPORT_FILES'], 'extract.bin'), 'wb').write(os.urandom(3_000_000))"
    write_notebook(tmp_path / "notebooks", "small", ["print('ok')"])
    write_notebook(tmp_path / "notebooks", "large", ["import os", big])
    first = write_params(tmp_path / "first.yaml", {"small": None})
    assert cli.main(["run", str(first), "--quiet", "--run-id", "kept"]) == 0
    before = _tree(small_outputs)
    assert "kept/small.html" in before and "index.html" in before

    second = write_params(tmp_path / "second.yaml", {"small": None, "large": None})
    for run_id in ([], ["--run-id", "kept"]):  # a new run, and a re-run of the run already published
        capsys.readouterr()
        assert cli.main(["run", str(second), "--quiet", *run_id]) == 1
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1, error
        assert error.startswith(f"statex-bi: error: disk full: could not write {small_outputs}/")
        assert _tree(small_outputs) == before
        assert sorted(p.name for p in small_outputs.iterdir()) == ["index.html", "kept", "metrics.html"]
