"""Benchmark: the models rebuilt after an ingest of one source's new day, beside `statex-bi build` (everything).

    .venv/bin/python bench/bench_incremental_build.py [--days 90] [--repeat 3]

It creates a demo warehouse of `--days` days up to two business days before today (`statex-bi demo`),
then times, each `--repeat` times on that warehouse:
- `statex-bi build` in a fresh process: Python start, dbt import, partial parse, every model and data test;
- an ingest of the ECB rates' next business day from the demo's sandbox, in a fresh process, into the
  warehouse as the demo left it (restored before each round), which builds and tests only the models
  downstream of the `fx` source (statex_bi.transform.build: `source:fx+` and
  `state:modified+`). The dbt part of it is read from the ingest's own progress line.
Printed: the medians, the models each built, the incremental build's ratio to the 8 s target and to the
full build, and both beside the figures before builds were incremental (BEFORE). It is a benchmark, not a
test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

TARGET_SECONDS = 8.0
# Before (issue 21, measured on 7d34a7d on a quiet 2-core machine of this kind): `statex-bi build` took 22 s,
# and every ingest, even of one source's one new day, rebuilt and re-tested all 378 nodes as that build did.
BEFORE_COMMIT = "7d34a7d"
BEFORE_NODES = 378
BEFORE_BUILD_SECONDS = 22.0
BIN = Path(sys.executable).parent
# One new day of one source, served by the demo's fx sandbox and loaded through the real connector.
INGEST_ONE_DAY = """
import sys
from datetime import date
from pathlib import Path

from statex_bi import warehouse
from statex_bi.demo.runner import served
from statex_bi.demo.world import World, WorldConfig
from statex_bi.ingest import ingest
from statex_bi.sources.contract import IngestRequest

start, day, db = date.fromisoformat(sys.argv[1]), date.fromisoformat(sys.argv[2]), Path(sys.argv[3])
with served(World(WorldConfig(start, day)), ["fx"], progress=lambda message: None):
    [result] = ingest(["fx"], IngestRequest(day, day, progress=print), db=db, kind=warehouse.DEMO)
sys.exit(0 if result.status == "succeeded" and result.rows else 1)
"""
_BUILT = re.compile(r"^models: (\d+) built and (\d+) tests run by dbt.* in ([\d.]+)s", re.MULTILINE)


def _business_day_before(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def _copy(paths: list[Path], folder: Path) -> None:
    """Copy files and folders into `folder`, replacing what is there, times and all."""
    folder.mkdir(exist_ok=True)
    for path in paths:
        target = folder / path.name
        if target.is_dir():
            shutil.rmtree(target)
        if path.is_dir():
            shutil.copytree(path, target, symlinks=True)
        else:
            shutil.copy2(path, target)


def _run(command: list[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.perf_counter()
    done = subprocess.run(command, env=env, check=True, capture_output=True, text=True)
    return time.perf_counter() - started, done.stdout + done.stderr


def _built(output: str) -> tuple[int, int, float]:
    match = _BUILT.search(output)
    if match is None:
        raise SystemExit(f"no 'models: ... built' line in:\n{output[-2000:]}")
    return int(match[1]), int(match[2]), float(match[3])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=90, help="days of the demo warehouse")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-incremental-") as tmp:
        db = Path(tmp) / "demo.duckdb"
        env = {**os.environ, "STATEX_BI_DB": str(db)}
        end = _business_day_before(_business_day_before(date.today()))
        start = end - timedelta(days=args.days - 1)
        print(f"creating a demo warehouse of {start} to {end} ...", flush=True)
        subprocess.run([str(BIN / "statex-bi"), "demo", "--start", str(start), "--end", str(end)], env=env,
                       check=True, stderr=subprocess.DEVNULL)
        # each round starts from this copy, in place: the new day is new again, dbt's saved parse still fits
        saved = Path(tmp) / "saved"
        state = [db, db.parent / f".{db.stem}.dbt", db.parent / f".{db.stem}.dlt"]
        _copy(state, saved)
        full, full_dbt = [], []
        incremental, incremental_dbt = [], []
        for _ in range(args.repeat):
            seconds, output = _run([str(BIN / "statex-bi"), "build"], env)
            full.append(seconds)
            full_models, _, dbt_seconds = _built(output)
            full_dbt.append(dbt_seconds)
            new_day = _business_day_before(date.today())
            seconds, output = _run([sys.executable, "-c", INGEST_ONE_DAY, str(start), str(new_day), str(db)], env)
            incremental.append(seconds)
            models, _, dbt_seconds = _built(output)
            incremental_dbt.append(dbt_seconds)
            _copy([saved / path.name for path in state], db.parent)
        full_median, incremental_median = statistics.median(full_dbt), statistics.median(incremental_dbt)
        print(f"statex-bi build: {full_models} models; dbt {full_median:.1f} s, whole command "
              f"{statistics.median(full):.1f} s (medians of {args.repeat})")
        print(f"ingest of fx's next day: {models} models rebuilt and tested; dbt {incremental_median:.1f} s, whole "
              f"command {statistics.median(incremental):.1f} s; target {TARGET_SECONDS:.0f} s, ratio to target "
              f"{incremental_median / TARGET_SECONDS:.2f}, to the full build {incremental_median / full_median:.2f}")
        print(f"before ({BEFORE_COMMIT}): that ingest rebuilt all {BEFORE_NODES} nodes as `statex-bi build` did, "
              f"{BEFORE_BUILD_SECONDS:.0f} s; now the incremental build / before = "
              f"{statistics.median(incremental) / BEFORE_BUILD_SECONDS:.2f}, the full build / before = "
              f"{statistics.median(full) / BEFORE_BUILD_SECONDS:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
