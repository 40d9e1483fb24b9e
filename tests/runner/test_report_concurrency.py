"""Runs next to other processes: killed runners leave nothing behind, ids never collide, loads are waited for."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import dlt
import psutil
import pytest
from reportkit import metric_rows, write_notebook, write_params
from warehouse_copies import copy_with_state

from statex_bi import ingest as ingest_module
from statex_bi import sources
from statex_bi.runner import staging

SECRET = "stx-interrupt-5e4d3c2b1a09"
SLEEPER = [
    "import os, pathlib, time\nprint('the token is', os.environ['STATEX_TEST_TOKEN'])",
    "pathlib.Path(os.environ['STATEX_TEST_PIDS'], str(os.getpid())).write_text('kernel')",
    "time.sleep(300)",
]


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "statex_bi.cli", *args]


# The CLI with Ctrl-C raising KeyboardInterrupt, as in a terminal. A process started with SIGINT ignored (what
# `make test &` or nohup gives pytest) passes that on to its children, and Python then leaves it ignored: the
# runner would sleep through the signal with its notebooks.
_INTERRUPTIBLE_CLI = (
    "import signal, sys\n"
    "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
    "from statex_bi.cli import main\n"
    "sys.exit(main(sys.argv[1:]))"
)


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    _, alive = psutil.wait_procs(procs, timeout=60)
    living = []
    for proc in alive:
        try:
            if proc.status() != psutil.STATUS_ZOMBIE:
                living.append(proc)
        except psutil.NoSuchProcess:
            continue
    return living


@pytest.mark.parametrize(
    ("signum", "exit_code"),
    [(signal.SIGTERM, 128 + signal.SIGTERM), (signal.SIGINT, 130), (signal.SIGKILL, -signal.SIGKILL)],
    ids=["SIGTERM", "SIGINT", "SIGKILL"],
)
def test_killing_the_runner_kills_notebook_processes_and_kernels_and_publishes_nothing(
    db_file, tmp_path, signum, exit_code
):
    pids = tmp_path / "pids"
    pids.mkdir()
    for stem in ("first", "second"):
        write_notebook(tmp_path / "notebooks", stem, SLEEPER)
    params = write_params(tmp_path / "sleepy.yaml", {"first": None, "second": None})
    env = {**os.environ, "STATEX_TEST_PIDS": str(pids), "STATEX_TEST_TOKEN": SECRET}
    command = [sys.executable, "-c", _INTERRUPTIBLE_CLI, "run", str(params), "--jobs", "2", "--quiet"]
    runner = subprocess.Popen(command, env=env)
    try:
        deadline = time.monotonic() + 300
        while len(list(pids.iterdir())) < 2:
            assert runner.poll() is None and time.monotonic() < deadline, "both kernels should be running"
            time.sleep(0.1)
        tree = psutil.Process(runner.pid).children(recursive=True)
        kernels = {int(path.name) for path in pids.iterdir()}
        assert kernels <= {proc.pid for proc in tree}, "the kernels are the runner's descendants"

        runner.send_signal(signum)
        # Killing two process trees takes seconds, even on a loaded machine; the notebooks would run 300 s.
        assert runner.wait(timeout=90) == exit_code
    finally:
        if runner.poll() is None:
            runner.kill()
    assert _alive(tree) == [], "every notebook process and kernel is gone"
    outputs = db_file.parent / "outputs"
    assert [p for p in outputs.rglob("*") if p.is_file() and p.name != staging.OWNER] == [], (
        "an interrupted run publishes nothing"
    )
    # A killed runner cannot clean up after itself: the next run removes its work folder and the empty
    # run folder reserved for it (what it does first).
    staging.sweep_abandoned(outputs)
    assert list(outputs.iterdir()) == [], "nothing of the interrupted run is left for the next one"


# Both runners believe it is 09:00:00 UTC; each must still get a run id of its own.
SAME_SECOND = """
import sys
from datetime import UTC, datetime

from statex_bi.runner import run as runner


class Frozen(datetime):
    @classmethod
    def now(cls, tz=None):
        return datetime(2026, 12, 1, 9, 0, 0, tzinfo=UTC)


runner.datetime = Frozen
if __name__ == "__main__":
    from statex_bi.cli import main

    sys.exit(main(sys.argv[1:]))
"""
HOLD = "import sys, time, duckdb\ncon = duckdb.connect(sys.argv[1])\nprint('locked', flush=True)\ntime.sleep(120)"


def test_two_runs_started_in_the_same_second_get_different_run_ids(db_file, tmp_path):
    write_notebook(tmp_path / "notebooks", "quick", ["print('ok')"])
    params = write_params(tmp_path / "same.yaml", {"quick": None})
    script = tmp_path / "same_second.py"
    script.write_text(SAME_SECOND)
    # The warehouse is busy: both runs start, then wait for it together.
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(db_file)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    runs = [
        subprocess.Popen([sys.executable, str(script), "run", str(params), "--quiet", "--wait", "120"])
        for _ in range(2)
    ]
    try:
        deadline = time.monotonic() + 300
        while not all(psutil.Process(run.pid).children() for run in runs):  # each started its fork server
            assert time.monotonic() < deadline and all(run.poll() is None for run in runs), "both runs wait"
            time.sleep(0.1)
        time.sleep(1.5)
    finally:
        holder.kill()
        holder.wait()
    assert [run.wait(timeout=600) for run in runs] == [0, 0]
    manifests = sorted((db_file.parent / "outputs").glob("*/manifest.json"))
    run_ids = [json.loads(path.read_text())["run_id"] for path in manifests]
    assert run_ids == ["20261201T090000Z-same", "20261201T090000Z-same-2"]
    assert all(json.loads(path.read_text())["notebooks"]["quick"]["status"] == "succeeded" for path in manifests)


COUNT_LOADS = [
    "import duckdb, os\nfrom statex_bi import publish",
    "con = duckdb.connect(os.environ['STATEX_BI_DB'], read_only=True)\n"
    "loads = con.execute(\"SELECT count(*) FROM ops.source_loads WHERE status = 'succeeded'\").fetchall()[0][0]\n"
    "con.close()\n"
    "publish.metric('test.loads', loads, unit='count')",
]


def test_a_run_started_while_ingest_is_loading_waits_for_the_whole_ingest(db_file, tmp_path, monkeypatch,
                                                                          built_empty):
    copy_with_state(built_empty[0], db_file.parent)  # built before: the ingest builds what its loads changed
    write_notebook(tmp_path / "notebooks", "loads", COUNT_LOADS)
    params = write_params(tmp_path / "during.yaml", {"loads": None})
    competitor: list[subprocess.Popen] = []

    def slow_source(request):
        @dlt.resource(name="items", primary_key="id", write_disposition="merge")
        def items():
            # Mid-ingest (the first source is still extracting): a `run --wait` starts and wants the
            # warehouse; it must wait until every source has loaded and the models are rebuilt.
            run = subprocess.Popen(_cli("run", str(params), "--quiet", "--wait", "120"))
            competitor.append(run)
            deadline = time.monotonic() + 300
            while not psutil.Process(run.pid).children():  # it reached the warehouse
                assert time.monotonic() < deadline
                time.sleep(0.1)
            time.sleep(1.5)
            yield [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]

        return items()

    def quick_source(request):
        return dlt.resource([{"id": 1}], name="things", primary_key="id", write_disposition="merge")

    specs = {
        "slow": ingest_module.SourceSpec("slow", slow_source, "SELECT 1"),
        "quick": ingest_module.SourceSpec("quick", quick_source, "SELECT 1"),
    }
    monkeypatch.setattr(sources, "spec", specs.__getitem__)
    request = ingest_module.IngestRequest(progress=lambda message: None)
    try:
        results = ingest_module.ingest(["slow", "quick"], request, db=db_file)
        assert [(r.source, r.status, r.error) for r in results] == [
            ("slow", "succeeded", None),
            ("quick", "succeeded", None),
        ], "no source failed on the lock"
        assert competitor[0].wait(timeout=600) == 0
    finally:
        for run in competitor:
            if run.poll() is None:
                run.kill()
    (run_dir,) = [p for p in (db_file.parent / "outputs").iterdir() if p.is_dir()]
    rows = metric_rows(db_file, run_dir.name)
    assert [(name, value) for _, name, value, *_ in rows] == [("test.loads", 2.0)], "the run saw the whole ingest"
