"""Shared fixtures: every test gets its own warehouse file and outputs folder."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from datetime import date, timedelta
from pathlib import Path

import pytest
from demo_window import SMALL_DEMO_END, SMALL_DEMO_START, SMALL_DEMO_TODAY
from lab_execution import execute_in_lab
from session_builds import built_once, shared_root
from warehouse_copies import copy_with_state
from xdist.scheduler import LoadFileScheduling

from statex_bi.config import CACHE_DIR_ENV, NOTEBOOKS_DIR
from statex_bi.demo import ops
from statex_bi.demo.apis import sentry as sentry_api
from statex_bi.demo.world import World, WorldConfig
from statex_bi.ingest import load_source
from statex_bi.sources import sentry
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.sentry import operations
from statex_bi.transform import build as project

# Files whose tests share one session build held under a file lock (tests/transform/conftest.py `lake_demo`): one
# worker builds it while the other runs the rest, instead of waiting for it.
SCHEDULED_WITH = {"tests/transform/test_spark.py": "tests/transform/test_lake.py"}
# The files that take longest (20 s and more on one worker of `make test`; `--durations`), longest first: started
# before the others, so that the run does not end with one worker on a long file while the other has nothing to do.
STARTED_FIRST = (
    "tests/transform/test_lake.py",
    "tests/runner/test_report_concurrency.py",
    "tests/kpis/ai_costs/test_ai_costs.py",
    "tests/kpis/growth_revenue/test_growth.py",
    "tests/transform/test_build.py",
    "tests/notebooks/test_notebooks.py",
    "tests/sources/stripe/test_stripe_source.py",
    "tests/kpis/growth_revenue/test_growth_demo.py",
    "tests/sources/sentry/test_sentry_performance.py",
    "tests/kpis/test_operations.py",
    "tests/kpis/test_changes.py",
    "tests/test_docs.py",
    "tests/kpis/test_web_api_performance.py",
    "tests/models/test_ai_models.py",
    "tests/browser/test_offline_lineage.py",
    "tests/sources/ga4/test_ga4_source.py",
    "tests/demo/test_runner.py",
)


class _FileScheduling(LoadFileScheduling):
    """xdist's `--dist loadfile` (Makefile): each file's tests on one worker, so a module-scoped fixture is built
    once. `--dist loadgroup` cannot do it with pytest 9, which derives a test's id from its path: the group xdist
    3.8 writes into the id is lost, and every test is scheduled alone. The longest files go first (STARTED_FIRST)."""

    def _split_scope(self, nodeid: str) -> str:
        file = super()._split_scope(nodeid)
        return SCHEDULED_WITH.get(file, file)

    def _assign_work_unit(self, node) -> None:
        for file in reversed(STARTED_FIRST):  # xdist queues the files by their number of tests
            if file in self.workqueue:
                self.workqueue.move_to_end(file, last=False)
        super()._assign_work_unit(node)


def pytest_xdist_make_scheduler(config, log):
    if config.getvalue("dist") != "loadfile":
        return None
    gone = [file for file in (*STARTED_FIRST, *SCHEDULED_WITH) if not (config.rootpath / file).is_file()]
    if gone:
        raise pytest.UsageError(f"tests/conftest.py schedules files that do not exist: {', '.join(gone)}")
    return _FileScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def cache_folder(tmp_path_factory, worker_id):
    """One cache folder (dbt's parse of the project) for the session's tests and the processes they start, both
    xdist workers included: not the user's, which a test must neither read nor fill."""
    shared = shared_root(tmp_path_factory, worker_id)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_DIR_ENV, str(shared / "cache"))
        yield shared / "cache"


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch):
    """Connectors refuse to load customer identifiers without a pseudonymisation key."""
    monkeypatch.setenv("STATEX_BI_PSEUDONYM_KEY", "test-pseudonym-key")


@pytest.fixture
def db_file(tmp_path, monkeypatch):
    """A fresh warehouse path for this test, also set as $STATEX_BI_DB for code that reads it."""
    path = tmp_path / "warehouse.duckdb"
    monkeypatch.setenv("STATEX_BI_DB", str(path))
    monkeypatch.setenv("STATEX_BI_OUTPUTS", str(tmp_path / "outputs"))
    return path


@pytest.fixture(scope="session")
def small_demo(tmp_path_factory, worker_id):
    """The path of a demo warehouse of tests/demo_window.py's days, loaded once by `statex-bi demo --start --end`
    for every test (and xdist worker) that needs one: read it, never write it (`demo_copy` gives a copy)."""
    with built_once(tmp_path_factory, worker_id, "small-demo") as (folder, first):
        db = folder / "statex.duckdb"
        if first:
            env = {**os.environ, "STATEX_BI_DB": str(db), "STATEX_BI_PSEUDONYM_KEY": "test-pseudonym-key"}
            cli = Path(sys.executable).with_name("statex-bi")
            done = subprocess.run(
                [str(cli), "demo", "--start", SMALL_DEMO_START.isoformat(), "--end", SMALL_DEMO_END.isoformat()],
                env=env, capture_output=True, text=True, timeout=600, check=False,
            )
            assert done.returncode == 0, done.stderr[-3000:]
            (db.parent / "loaded").write_text(done.stderr)
    return db


@pytest.fixture
def demo_copy(small_demo, tmp_path, monkeypatch) -> Path:
    """A writable copy of the small demo with its dlt and dbt state (cursors, the last build's manifest), set as
    $STATEX_BI_DB: for a test that loads, builds or runs on a demo warehouse without simulating one."""
    db = copy_with_state(small_demo, tmp_path / "demo")
    monkeypatch.setenv("STATEX_BI_DB", str(db))
    monkeypatch.setenv("STATEX_BI_OUTPUTS", str(tmp_path / "outputs"))
    return db


@pytest.fixture(scope="session")
def built_empty(tmp_path_factory, worker_id) -> tuple[Path, project.BuildResult]:
    """A warehouse with no source loaded and every model built (empty and typed) and tested, by one whole
    `dbt build` for every test (and xdist worker) that needs one, and that build's result: read it, never write
    it. Its copy (`copy_with_state`) keeps the build's manifest, so an ingest into the copy builds only the models
    downstream of what it loads, as on any warehouse built before: a test of a report loads its sources into a
    copy rather than paying for a whole build of its own."""
    with built_once(tmp_path_factory, worker_id, "built-empty") as (folder, first):
        db, done = folder / "warehouse.duckdb", folder / "build.json"
        if first:
            done.write_text(json.dumps(asdict(project.build(db, progress=lambda _: None))))
    saved = json.loads(done.read_text())
    warnings = [project.TestOutcome(**{**w, "rows": [tuple(r) for r in w["rows"]]}) for w in saved.pop("warnings")]
    return db, project.BuildResult(**saved, warnings=warnings)


@pytest.fixture(scope="session")
def lab_notebooks(small_demo, tmp_path_factory, worker_id):
    """Every notebook of notebooks/ executed as JupyterLab runs it: a kernel whose working directory is
    notebooks/, no injected parameters, over the small demo. Returns the folder of executed copies.

    Two at a time: the other xdist worker usually waits on this fixture's lock as well."""
    with built_once(tmp_path_factory, worker_id, "lab-notebooks") as (folder, first):
        if first:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("STATEX_BI_DB", str(small_demo))
                patch.setenv("STATEX_BI_TODAY", SMALL_DEMO_TODAY.isoformat())
                patch.delenv("STATEX_BI_SIDECAR", raising=False)  # the lab publishes nothing
                # spawned processes read the environment as it is when the pool starts them
                with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool:
                    runs = [pool.submit(execute_in_lab, str(notebook), str(folder / notebook.name),
                                        str(NOTEBOOKS_DIR)) for notebook in sorted(NOTEBOOKS_DIR.glob("*.ipynb"))]
                    for run in runs:
                        run.result()
    return folder


@pytest.fixture(scope="session")
def operations_warehouse(tmp_path_factory):
    """A warehouse holding the simulated app's Sentry data (jobs, queries, feedback included) from the start of
    the month of the planted operations week to yesterday, built up to the operations marts. Read it only."""
    end = date.today() - timedelta(days=1)
    planted = ops.planted_week(end)
    start = min(planted[0] - timedelta(days=7), planted[0].replace(day=1))
    world = World(WorldConfig(start, end, seed=5, scale=0.25))
    db = tmp_path_factory.mktemp("operations") / "warehouse.duckdb"
    with pytest.MonkeyPatch.context() as patch, sentry_api.serve(world.ai, world.perf, world.ops) as box:
        for key, value in {**sentry_api.environment(box.url), "STATEX_BI_DB": str(db),
                           "STATEX_BI_PSEUDONYM_KEY": "test-pseudonym-key"}.items():
            patch.setenv(key, value)
        patch.setattr(sentry, "RESOURCES", operations.RESOURCES)  # what the operations report reads
        result = load_source(sentry.SPEC, IngestRequest(start=start, end=end, progress=lambda m: None), db)
        assert result.status == "succeeded", result.error
        built = project.invoke(["build", "--select", "+bullmq_queue_jobs", "+prisma_queries", "+feedback_messages"], db)
        assert built.success, built.exception
    return db, world, planted
