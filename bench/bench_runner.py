"""Benchmark: `statex-bi run` against the way a user would run the same reports without it.

    .venv/bin/python bench/bench_runner.py [--notebooks 6] [--rows 3000000] [--repeat 3] [--keep]

Self-sufficient: it generates, in a temporary folder, a DuckDB warehouse (one `bench.events` table)
and N report notebooks that each query it with DuckDB, show a table and draw an Altair chart through
statex_bi.charts, then runs them

1. through `statex-bi run PARAMS` (one Python start, notebook processes forked from a server that
   has papermill imported already, kernels in parallel, HTML exported in-process);
2. the way a user would without it: per notebook, one after the other, the papermill CLI then
   `jupyter nbconvert --to html --no-input`.

The two ways alternate `--repeat` times (so both see the same machine load) and the median wall
times and their ratio are printed. It is a benchmark, not a test: timings depend on the machine.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import nbformat
import yaml
from measure import scratch_folder  # bench/, first on sys.path when a benchmark runs
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

PERIOD = ("2026-03-01", "2026-05-31")
CELLS = [
    "import os\nimport duckdb\nfrom statex_bi import charts, display, publish\nfrom statex_bi.display import Column",
    "con = duckdb.connect(os.environ['STATEX_BI_DB'], read_only=True)\n"
    "daily = con.execute(\n"
    "    'SELECT day, count(*) AS orders, sum(amount) AS revenue, count(DISTINCT customer) AS customers '\n"
    "    'FROM bench.events WHERE segment = ? AND day BETWEEN ? AND ? GROUP BY day ORDER BY day',\n"
    "    [segment, period_start, period_end],\n"
    ").df()\n"
    "con.close()",
    "display.table(daily.tail(7), {'day': Column('Day', 'date'), 'orders': Column('Orders', 'count'),\n"
    "              'revenue': Column('Revenue', 'EUR')})",
    "charts.line(daily, 'day', 'revenue', title='Revenue per day', y_title='EUR')",
    "publish.metric('bench.revenue', float(daily['revenue'].sum()), unit='EUR')",
]


def build_workspace(root: Path, notebooks: int, rows: int) -> Path:
    """The warehouse, the notebooks and a params file under `root`; returns the params file."""
    con = duckdb.connect(str(root / "warehouse.duckdb"))
    try:
        con.execute("CREATE SCHEMA bench")
        con.execute(
            f"""CREATE TABLE bench.events AS
            SELECT i % {notebooks} AS segment, DATE '2026-01-01' + CAST(i % 365 AS INTEGER) AS day,
                   (i * 7919 % 100000) / 100.0 AS amount, i % 50000 AS customer
            FROM range({rows}) AS t(i)"""
        )
    finally:
        con.close()
    folder = root / "notebooks"
    folder.mkdir()
    for n in range(notebooks):
        parameters = f'period_start = "2026-01-01"\nperiod_end = "2026-01-31"\nrun_id = ""\nsegment = {n}'
        nb = new_notebook(
            cells=[
                new_markdown_cell(f"# Segment {n} report\n\nRevenue and orders of one customer segment."),
                new_code_cell(parameters, metadata={"tags": ["parameters"]}),
                *(new_code_cell(source) for source in CELLS),
            ]
        )
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, folder / f"segment_{n}.ipynb")
    params = {
        "title": "Benchmark",
        "start": PERIOD[0],
        "end": PERIOD[1],
        "notebooks_dir": "notebooks",
        "notebooks": {f"segment_{n}": {"segment": n} for n in range(notebooks)},
    }
    path = root / "bench.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


def run_with_statex_bi(params: Path, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "statex_bi.cli", "run", str(params), "--quiet"], env=env, check=True)
    return time.perf_counter() - started


def run_like_a_user(params: Path, out: Path, env: dict[str, str]) -> float:
    """papermill CLI, then nbconvert CLI, per notebook, one after the other."""
    spec = yaml.safe_load(params.read_text())
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    started = time.perf_counter()
    for stem, own in spec["notebooks"].items():
        values = {"period_start": spec["start"], "period_end": spec["end"], "run_id": "user", **own}
        executed = out / f"{stem}.ipynb"
        subprocess.run(
            [sys.executable, "-m", "papermill", str(params.parent / "notebooks" / f"{stem}.ipynb"), str(executed),
             "-y", yaml.safe_dump(values), "--no-progress-bar"],
            env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        subprocess.run(
            [sys.executable, "-m", "nbconvert", "--to", "html", "--no-input", str(executed)],
            env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebooks", type=int, default=6, help="report notebooks to run (default 6)")
    parser.add_argument("--rows", type=int, default=3_000_000, help="rows in the benchmark table (default 3M)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each way; medians are compared (default 3)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()

    with scratch_folder("statex-bi-bench-", args.keep) as root:
        params = build_workspace(root, args.notebooks, args.rows)
        env = {
            **os.environ,
            "STATEX_BI_DB": str(root / "warehouse.duckdb"),
            "STATEX_BI_OUTPUTS": str(root / "outputs"),
            "PYTHONWARNINGS": "ignore",
        }
        env.pop("SENTRY_DSN", None)
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        print(f"{args.notebooks} notebooks (DuckDB over {args.rows:,} rows + an Altair chart each), {cores} cores")
        ours, theirs = [], []
        for attempt in range(1, args.repeat + 1):
            ours.append(run_with_statex_bi(params, env))
            theirs.append(run_like_a_user(params, root / "by-hand", env))
            print(f"  run {attempt}: statex-bi run {ours[-1]:5.1f} s, papermill + nbconvert CLIs {theirs[-1]:5.1f} s")
        mine, user = statistics.median(ours), statistics.median(theirs)
        print(f"statex-bi run (median):                      {mine:6.1f} s")
        print(f"papermill + nbconvert CLIs, serial (median): {user:6.1f} s")
        print(f"ratio: {user / mine:.2f}x faster with statex-bi run")


if __name__ == "__main__":
    main()
