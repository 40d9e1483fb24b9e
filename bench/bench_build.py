"""Benchmark: `statex-bi build` (dbt build, partial parsing) on the demo warehouse, against the 15 s target.

    .venv/bin/python bench/bench_build.py [--db PATH] [--repeat 3] [--old-checkout DIR]

Without --db it first creates a demo warehouse in a temporary folder (`statex-bi demo`, which builds
once, so the timed runs parse partially, as a user's second build does). Each timed run is the
command a user types, `statex-bi build`, in a fresh process: Python start, dbt import, partial parse,
every model and every data test. The median wall time is printed with its ratio to the target.

--old-checkout DIR times the home-made builder that dbt replaced (statex_bi/models/build.py, without
its tests, which it did not run on builds) from a checkout of the commit before the migration, e.g.
`git worktree add --detach /tmp/oldmain <commit>`, on a copy of the same warehouse; its models must
be that checkout's own (schema-qualified SQL), so it runs with that checkout first on sys.path.
It is a benchmark, not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_SECONDS = 15.0
BIN = Path(sys.executable).parent
OLD_BUILD = (
    "import sys, duckdb; sys.path.insert(0, sys.argv[1]); from statex_bi.models.build import build_all; "
    "con = duckdb.connect(sys.argv[2]); status = build_all(con); con.close(); "
    "print(sum(s == 'built' for s in status.values()), 'models built')"
)


def _timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, help="a demo warehouse (default: create one)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--old-checkout", type=Path, help="a checkout holding the old statex_bi/models/build.py")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-build-") as tmp:
        env = {**os.environ}
        db = args.db.resolve() if args.db else Path(tmp) / "demo.duckdb"
        env["STATEX_BI_DB"] = str(db)
        if not args.db:
            print(f"creating the demo warehouse {db} ...", flush=True)
            subprocess.run([str(BIN / "statex-bi"), "demo"], env=env, check=True, stderr=subprocess.DEVNULL)
        times = [_timed([str(BIN / "statex-bi"), "build"], env) for _ in range(args.repeat)]
        dbt = statistics.median(times)
        print(f"statex-bi build (dbt build, partial parse): median {dbt:.1f} s over {args.repeat} runs "
              f"({', '.join(f'{t:.1f}' for t in times)}); target {TARGET_SECONDS:.0f} s, "
              f"ratio to target {dbt / TARGET_SECONDS:.2f}")
        if args.old_checkout:
            copy = Path(tmp) / "old.duckdb"
            shutil.copy(db, copy)
            command = [sys.executable, "-c", OLD_BUILD, str(args.old_checkout.resolve()), str(copy)]
            old_times = [_timed(command, env) for _ in range(args.repeat)]
            old = statistics.median(old_times)
            print(f"old builder (models only, no tests): median {old:.1f} s over {args.repeat} runs "
                  f"({', '.join(f'{t:.1f}' for t in old_times)}); dbt build / old builder = {dbt / old:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
