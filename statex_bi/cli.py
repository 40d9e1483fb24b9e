"""`statex-bi` command line: parses arguments and delegates; no logic lives here."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from statex_bi import __version__
from statex_bi.exceptions import StatexError


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _parser() -> argparse.ArgumentParser:
    from statex_bi.periods import parse_date

    def day(value: str):
        return parse_date(value, "date")

    parser = argparse.ArgumentParser(prog="statex-bi", description="Statex BI and cost reports.")
    parser.add_argument("--version", action="version", version=f"statex-bi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run a parameter set's report notebooks and publish them")
    run.add_argument("params", help="a YAML file, or a name under params/ such as 'weekly'")
    run.add_argument("--start", type=day, help="period start, inclusive (YYYY-MM-DD)")
    run.add_argument("--end", type=day, help="period end, inclusive (YYYY-MM-DD)")
    run.add_argument("--only", action="append", metavar="NAME", help="run only this notebook (file stem); repeatable")
    run.add_argument("--jobs", type=int, default=_cores(), help="notebooks run at once (default: cores)")
    run.add_argument("--run-id", help="re-run under this id, replacing its outputs and metrics")
    run.add_argument("--quiet", action="store_true", help="print only failures (for cron)")
    run.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait for a locked warehouse")

    ingest = sub.add_parser("ingest", help="load sources into the warehouse")
    ingest.add_argument("sources", nargs="+", metavar="SOURCE")
    ingest.add_argument("--start", type=day, help="first day to load, inclusive")
    ingest.add_argument("--end", type=day, help="last day to load, inclusive")
    ingest.add_argument("--full-refresh", action="store_true", help="drop the sources' tables and cursors first")
    ingest.add_argument("--file", type=Path, help="input file, for file sources such as ai-calls")
    ingest.add_argument("--dir", type=Path, help="input folder, for folder sources such as test-reports")
    ingest.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait for a locked warehouse")

    demo = sub.add_parser("demo", help="load the simulated company through the real connectors")
    demo.add_argument("--start", type=day, help="first simulated day (default: 13 months ago)")
    demo.add_argument("--end", type=day, help="last simulated day (default: yesterday)")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the simulation")
    demo.add_argument("--scale", type=float, default=1.0, help="traffic multiplier")
    demo.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait for a locked warehouse")

    build = sub.add_parser("build", help="dbt build: build the SQL models and run their data tests on the loaded data")
    build.add_argument("--wait", type=float, default=0.0, metavar="SECONDS", help="wait for a locked warehouse")
    return parser


def main(argv: list[str] | None = None) -> int:
    from statex_bi.config import load_dotenv_file

    args = _parser().parse_args(argv)
    load_dotenv_file()
    try:
        if args.command == "run":
            from statex_bi.reports.runner import run_params

            return run_params(
                args.params, start=args.start, end=args.end, only=args.only, jobs=args.jobs,
                run_id=args.run_id, quiet=args.quiet, wait=args.wait,
            )
        if args.command == "ingest":
            from statex_bi.ingest import IngestRequest, ingest

            request = IngestRequest(args.start, args.end, args.full_refresh, args.file, args.dir)
            results = ingest(args.sources, request, wait=args.wait)
            return 0 if all(r.status == "succeeded" for r in results) else 1
        if args.command == "demo":
            from statex_bi.demo.runner import run_demo

            return run_demo(start=args.start, end=args.end, seed=args.seed, scale=args.scale, wait=args.wait)
        if args.command == "build":
            from statex_bi.models import project

            project.build(wait=args.wait)
            return 0
    except StatexError as exc:
        print(f"statex-bi: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
