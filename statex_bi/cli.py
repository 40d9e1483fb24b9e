"""`statex-bi` command line: parses arguments and delegates; no logic lives here."""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from datetime import date
from pathlib import Path
from typing import NoReturn

from statex_bi import __version__
from statex_bi.config import load_dotenv_file
from statex_bi.exceptions import StatexError
from statex_bi.sources import REGISTRY


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line naming the flag (no usage dump, no traceback), exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, except where there is none to show (None, False)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default is None or action.default is False or isinstance(action.default, list):
            return action.help
        return super()._get_help_string(action)


def _day(value: str) -> date:
    """An argparse type: a real calendar day as YYYY-MM-DD."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a date (YYYY-MM-DD)") from None


def _jobs(value: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{number} is below 1; at least one notebook must run at a time")
    return number


def _add_window(parser: argparse.ArgumentParser, start_help: str, end_help: str) -> None:
    parser.add_argument("--start", type=_day, metavar="YYYY-MM-DD", help=start_help + " (needs --end)")
    parser.add_argument("--end", type=_day, metavar="YYYY-MM-DD", help=end_help)


def _add_wait(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--wait", type=float, default=0.0, metavar="SECONDS",
        help="wait this long for a warehouse another process holds (saying which process), then give up",
    )


def _check_window(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """--start needs --end, and may not come after it (for every subcommand and every source)."""
    start, end = getattr(args, "start", None), getattr(args, "end", None)
    if start is not None and end is None:
        parser.error("argument --start: needs --end as well (the last day, inclusive)")
    if start is not None and end is not None and start > end:
        parser.error(f"argument --start: {start} is after --end {end}")


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = _Parser(
        prog="statex-bi",
        description="Statex BI and cost reports: load sources into one DuckDB warehouse, build the SQL models, "
        "run the report notebooks and publish offline HTML pages. See README.md and docs/.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"statex-bi {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        text = "\n\n".join(textwrap.fill(part, 79, break_on_hyphens=False) for part in description.split("\n\n"))
        return sub.add_parser(name, help=summary, description=text, formatter_class=_HelpFormatter)

    run = command(
        "run", "run a parameter set's report notebooks and publish them",
        "Run the report notebooks a params file lists, for its period, and publish their HTML pages, the executed "
        "notebooks and a manifest under outputs/RUN_ID/, with an index at outputs/index.html. Rebuilds the SQL "
        "models first. Exit code 0 when every notebook succeeded, 1 when one failed, 2 on a usage error.",
    )
    run.add_argument("params", help="a YAML file, or a name under params/ such as 'weekly' or 'monthly'")
    _add_window(run, "first day of the period, inclusive; overrides the params file's period",
                "last day of the period, inclusive")
    run.add_argument("--only", action="append", metavar="NAME", help="run only this notebook (file stem); repeatable")
    run.add_argument("--jobs", type=_jobs, default=_cores(), help="notebooks run at once (one per core)")
    run.add_argument("--run-id", help="re-run under this id, replacing its outputs and metrics")
    run.add_argument("--quiet", action="store_true", help="print only failures (for cron)")
    _add_wait(run)
    run.add_argument("--pdf", action="store_true", help="also print each report to PDF (needs Chromium)")

    backfill = command(
        "backfill", "run a parameter set over the periods before its own (KPI history)",
        "Run a parameter set over the N periods before its own (calendar months for a monthly set), oldest first, "
        "so that alert rules and the executive summary have a previous period to compare with.",
    )
    backfill.add_argument("params", help="a YAML file, or a name under params/ such as 'weekly' or 'monthly'")
    backfill.add_argument("--periods", type=int, default=1, help="how many earlier periods")
    backfill.add_argument("--only", action="append", metavar="NAME", help="run only this notebook; repeatable")
    backfill.add_argument("--jobs", type=_jobs, default=_cores(), help="notebooks run at once (one per core)")
    backfill.add_argument("--quiet", action="store_true", help="print only failures (for cron)")
    _add_wait(backfill)

    ingest = command(
        "ingest", "load sources into the warehouse",
        "Load each named source through its connector (incrementally, from its saved cursor), then rebuild the "
        "SQL models (unless every source failed). A source that fails does not stop the others; every attempt is "
        "recorded in ops.source_loads. Exit code 0 when every source loaded, 1 when one failed, 2 on a usage error.\n\n"
        f"Sources: {', '.join(REGISTRY)} (their settings: docs/configuration.md).",
    )
    ingest.add_argument("sources", nargs="+", metavar="SOURCE", choices=list(REGISTRY),
                        help=f"one or more of: {', '.join(REGISTRY)}")
    _add_window(ingest, "first day to load, inclusive (a backfill)", "last day to load, inclusive")
    ingest.add_argument("--full-refresh", action="store_true", help="drop the sources' tables and cursors first")
    ingest.add_argument("--file", type=Path, help="input file, for file sources such as ai-calls")
    ingest.add_argument("--dir", type=Path, help="input folder, for folder sources such as billing and test-reports")
    _add_wait(ingest)

    demo = command(
        "demo", "load the simulated company through the real connectors",
        "Simulate the Statex company, serve it from sandbox APIs on loopback and load it through the real "
        "connectors into a demo warehouse, rebuilt from scratch each time. Refuses a warehouse that holds real "
        "data: point STATEX_BI_DB at another file.",
    )
    _add_window(
        demo, "first simulated day (default: 13 months before --end)", "last simulated day (default: yesterday)"
    )
    demo.add_argument("--seed", type=int, default=7, help="random seed of the simulation")
    demo.add_argument("--scale", type=float, default=1.0, help="traffic multiplier")
    _add_wait(demo)

    build = command(
        "build", "dbt build: build the SQL models and run their data tests on the loaded data",
        "Build the SQL models (staging, core, marts: a dbt project under statex_bi/models/) from what the "
        "sources loaded and run their data tests (dbt build).",
    )
    build.add_argument(
        "--target", choices=["duckdb", "spark"], default="duckdb",
        help="duckdb builds the warehouse's own models; spark exports its raw tables to Parquet (or reads them "
        "in the lake, $STATEX_BI_RAW_URL, and then serves its marts to the reports) and builds the same models on "
        "a local Spark session (needs the spark extra and Java 17+), beside the warehouse",
    )
    build.add_argument(
        "--select", nargs="+", metavar="SELECTOR",
        help="build only these nodes and their tests, in dbt's selector syntax (e.g. +payments_eur for that "
        "mart and everything it reads); the next ingest still rebuilds what they leave out (duckdb target only)",
    )
    _add_wait(build)
    return parser, {"run": run, "backfill": backfill, "ingest": ingest, "demo": demo, "build": build}


def main(argv: list[str] | None = None) -> int:
    parser, commands = _parser()
    args = parser.parse_args(argv)
    _check_window(commands[args.command], args)
    load_dotenv_file()
    # Each command imports its own layer when it runs, so `statex-bi --help` and `ingest stripe` do not
    # pay for papermill, dbt or every connector at start-up.
    try:
        if args.command == "run":
            from statex_bi.runner.crons import monitored
            from statex_bi.runner.run import run_params

            return monitored(args.params, lambda started: run_params(
                args.params, start=args.start, end=args.end, only=args.only, jobs=args.jobs,
                run_id=args.run_id, quiet=args.quiet, wait=args.wait, pdf=args.pdf, started=started,
            ))
        if args.command == "backfill":
            from statex_bi.runner.backfill import backfill

            return backfill(args.params, args.periods, only=args.only, jobs=args.jobs, quiet=args.quiet,
                            wait=args.wait)
        if args.command == "ingest":
            from statex_bi.ingest import ingest
            from statex_bi.sources.contract import IngestRequest

            request = IngestRequest(args.start, args.end, args.full_refresh, args.file, dir=args.dir)
            results = ingest(args.sources, request, wait=args.wait)
            return 0 if all(r.status == "succeeded" for r in results) else 1
        if args.command == "demo":
            from statex_bi.demo.runner import run_demo

            return run_demo(start=args.start, end=args.end, seed=args.seed, scale=args.scale, wait=args.wait)
        if args.command == "build":
            from statex_bi.transform import build as project
            from statex_bi.transform import spark

            if args.target == "spark":
                if args.select:
                    parser.error("build --select: only the duckdb target builds a selection")
                spark.build(wait=args.wait)
            else:
                project.build(wait=args.wait, select=args.select)
            return 0
    except StatexError as exc:
        print(f"statex-bi: error: {exc}", file=sys.stderr)
        return getattr(exc, "exit_code", 2)
    except KeyboardInterrupt:
        return 130
    return 2


if __name__ == "__main__":
    sys.exit(main())
