"""The suite's one Spark build: the small demo loaded into a lake and every model run on Spark from there."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
from demo_window import SMALL_DEMO_END, SMALL_DEMO_START
from session_builds import built_once

from statex_bi.config import RAW_URL_ENV
from statex_bi.transform import spark


@pytest.fixture(scope="session")
def lake_demo(tmp_path_factory, worker_id) -> tuple[Path, spark.SparkBuildResult]:
    """The small demo's window loaded by `statex-bi demo` with $STATEX_BI_RAW_URL set (the raw tables are Parquet
    files in `lake/` beside the warehouse), then `run` on Spark from those files, which makes the warehouse's
    marts views over Spark's Parquet tables. Built once for every xdist worker (one JVM in the suite); returns
    the warehouse and the Spark build's result. Read it, never write it.

    Needs a Java 17+ runtime: without one the tests skip, except in CI, where .ci/run installs it and a skip
    would hide that Spark was never run."""
    if spark.java_runtime() is None:
        if os.environ.get("CI"):
            pytest.fail("no Java runtime in CI: .ci/run installs openjdk-17-jre-headless for this test")
        pytest.skip("no Java runtime (java on PATH or $JAVA_HOME): Spark needs Java 17+")
    with built_once(tmp_path_factory, worker_id, "lake-demo") as (folder, first):
        db, done = folder / "statex.duckdb", folder / "spark-build.json"
        if first:
            lake = {RAW_URL_ENV: str(db.parent / "lake")}
            env = {**os.environ, **lake, "STATEX_BI_DB": str(db), "STATEX_BI_PSEUDONYM_KEY": "test-pseudonym-key"}
            demo = subprocess.run(
                [str(Path(sys.executable).with_name("statex-bi")), "demo",
                 "--start", SMALL_DEMO_START.isoformat(), "--end", SMALL_DEMO_END.isoformat()],
                env=env, capture_output=True, text=True, timeout=600, check=False,
            )
            assert demo.returncode == 0, demo.stderr[-3000:]
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv(RAW_URL_ENV, lake[RAW_URL_ENV])
                # `run`, not `build`: the data tests ran on DuckDB in the demo's ingest, over the same files.
                result = spark.build(db, command="run", progress=lambda message: None)
            done.write_text(json.dumps(asdict(result)))
    return db, spark.SparkBuildResult(**json.loads(done.read_text()))
