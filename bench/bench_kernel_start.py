"""Benchmark: what a report kernel pays before its first KPI, this checkout against another.

    .venv/bin/python bench/bench_kernel_start.py [--repeat 5] [--old-checkout DIR]

Each timed run is a fresh Python process doing what a report notebook's first cells do: import the
report libraries (display, charts, publish, every KPI module) and show the header, whose "newest data
per source" block reads the load watermarks. The header reads them from ops.source_watermarks, so a
kernel imports no connector; the code before that (e.g. `git worktree add --detach /tmp/oldmain
7d34a7d`) imported all twelve connector packages (dlt, the GA4 and Stripe clients) to ask each source.
Both run against the same empty warehouse with this environment's packages, the checkout first on
sys.path. The median wall time of each is printed, and their ratio. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
KERNEL_CELLS = (
    "import time; started = time.perf_counter()\n"
    "import importlib, pkgutil, datetime, sys\n"
    "from statex_bi import charts, display, publish, warehouse, kpis\n"
    "from statex_bi.periods import Period\n"
    "for module in pkgutil.iter_modules(kpis.__path__): importlib.import_module('statex_bi.kpis.' + module.name)\n"
    "imported = time.perf_counter()\n"
    "con = display.open_warehouse()\n"
    "display.header('Bench', Period(datetime.date(2026, 11, 23), datetime.date(2026, 11, 29)), {}, con)\n"
    "print(imported - started, time.perf_counter() - imported, file=sys.stderr)\n"
)


def _timed(checkout: Path, env: dict[str, str]) -> tuple[float, float, float]:
    """(whole process, the report libraries' imports, the header) in seconds."""
    started = time.perf_counter()
    # cwd: `python -c` puts the working directory first on sys.path, before PYTHONPATH
    done = subprocess.run([sys.executable, "-c", KERNEL_CELLS], env={**env, "PYTHONPATH": str(checkout)}, check=True,
                          cwd=env["STATEX_BI_DB"].rsplit("/", 1)[0], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                          text=True)
    imports, header = (float(part) for part in done.stderr.split()[-2:])
    return time.perf_counter() - started, imports, header


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--old-checkout", type=Path, help="a checkout to compare with (e.g. the commit before)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-kernel-") as tmp:
        db = Path(tmp) / "empty.duckdb"
        env = {**os.environ, "STATEX_BI_DB": str(db)}
        subprocess.run([sys.executable, "-c", "from statex_bi import warehouse; warehouse.connect().close()"],
                       env={**env, "PYTHONPATH": str(HERE)}, check=True)
        sides = [("this checkout", HERE)]
        if args.old_checkout:
            sides.append(("old checkout", args.old_checkout.resolve()))
        medians = {}
        for _ in range(args.repeat):  # interleaved, so a drift in the machine's load hits both alike
            for name, checkout in sides:
                medians.setdefault(name, []).append(_timed(checkout, env))
        for name, runs in medians.items():
            whole, imports, header = (statistics.median(part) for part in zip(*runs, strict=True))
            print(f"report kernel start ({name}), medians over {args.repeat} runs: whole {whole:.2f} s, "
                  f"report libraries' imports {imports:.2f} s, header (watermarks) {header:.2f} s")
        if args.old_checkout:
            for index, part in enumerate(("whole", "imports", "header")):
                mine = statistics.median(run[index] for run in medians["this checkout"])
                old = statistics.median(run[index] for run in medians["old checkout"])
                print(f"this checkout / old checkout, {part}: {mine / old:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
