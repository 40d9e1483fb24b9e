"""The test-productivity report's words and published numbers: `notes`, `headline` and `metrics` (statex_bi.publish).

The numbers come from statex_bi.kpis.test_productivity.measures (definitions in its docstring and docs/metrics.md).
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from statex_bi import warehouse
from statex_bi.kpis.test_productivity import measures
from statex_bi.metrics.record import Metric
from statex_bi.periods import Period

SOURCE = "github/test-reports"
COVERAGE_METRICS = {"lines": "tests.coverage.lines_pct", "branches": "tests.coverage.branches_pct",
                    "functions": "tests.coverage.functions_pct"}


def notes(con: duckdb.DuckDBPyConnection, period: Period, primary_runner: str = "vitest",
          **params: Any) -> list[str]:
    """What the reader must know about the data behind the report, most important first."""
    out = []
    loaded = [name for name in ("github", "test_reports") if warehouse.table_exists(con, f"raw_{name}", "test_runs")]
    if not loaded:
        return ["No test runs are loaded: neither GitHub Actions (`statex-bi ingest github`) nor report folders "
                "(`statex-bi ingest test-reports --dir PATH`). Every number below is empty."]
    runners = measures.suite_duration(con, period, **params)
    if runners.empty:
        return [f"No test run started in this period ({period}). Every number below is empty."]
    present = set(runners["runner"])
    if not {"jest", "vitest"} <= present:
        only = ", ".join(sorted(present))
        out.append(f"Only {only} ran in this period: the Vitest against Jest comparison needs runs of both.")
    if primary_runner not in present:
        out.append(f"The primary runner ({primary_runner}) did not run in this period: coverage is empty.")
    elif measures.coverage_latest(con, period, primary_runner=primary_runner).empty:
        out.append(f"No {primary_runner} run of this period wrote a coverage summary (Vitest writes none when a "
                   "test fails): coverage is empty.")
    return out


def _times(value: float) -> str:
    return f"{value:.1f}x"


def headline(con: duckdb.DuckDBPyConnection, period: Period, primary_runner: str = "vitest",
             claimed_speedup: float | None = None, **params: Any) -> str:
    """The report's headline: the primary runner's median suite time, the speedup against Jest, flaky tests.

    Returns:
        e.g. "The Vitest suite took 4.4 s (median of 120 runs); Jest took 1.9x as long (95% CI 1.8x-2.0x),
        against the claimed 10x; 2 flaky tests."
    """
    durations = measures.suite_duration(con, period, **params).set_index("runner")
    if durations.empty:
        return "No test runs in this period."
    runner = primary_runner if primary_runner in durations.index else durations.index[0]
    row = durations.loc[runner]
    text = f"The {runner.capitalize()} suite took {row['median_wall_s']:,.1f} s (median of {int(row['runs']):,} runs)"
    ratio = measures.speedup(con, period, **params).set_index("scope").loc[measures.SAME_COMMITS]
    if pd.notna(ratio["speedup"]):
        interval = (f"95% CI {_times(ratio['ci_low'])}-{_times(ratio['ci_high'])}" if pd.notna(ratio["ci_low"])
                    else "no interval from a single commit")
        text += (f"; on the {int(ratio['jest_n'])} commit(s) both ran green, Jest took {_times(ratio['speedup'])} "
                 f"as long ({interval})")
        if claimed_speedup:
            text += f", against the claimed {claimed_speedup:g}x"
    counts = measures.test_counts(measures.flakiness(con, period, **params))
    count, broken = counts["flaky"], counts["broken"]
    text += f"; {count} flaky test{'s' if count != 1 else ''}"
    if broken:
        text += f" and {broken} broken (failing in every run)"
    return text + "."


def metrics(con: duckdb.DuckDBPyConnection, period: Period, primary_runner: str = "vitest",
            **params: Any) -> list[Metric]:
    """The KPIs the report publishes (docs/metrics.md), for `publish.publish`.

    Undefined values (no run of a runner, no coverage summary) carry a reason instead, never a 0; a
    runner that did not run has no per-runner record at all.
    """
    records: list[Metric] = []

    def emit(name: str, value: Any, unit: str, why: str = "", **tags: Any) -> None:
        defined = value is not None and not pd.isna(value)
        clean = {key: (None if pd.isna(val) else val) if isinstance(val, float) else val for key, val in tags.items()}
        records.append(Metric(name, float(value) if defined else None, unit, SOURCE, clean, "GAUGE",
                              "" if defined else why or "undefined for the period (nothing to divide by)"))

    for row in measures.suite_duration(con, period, **params).itertuples():
        emit("tests.suite_duration_s", row.median_wall_s, "s", runner=row.runner, runs=int(row.runs),
             commits=int(row.commits), trend_s_per_week=float(row.trend_s_per_week),
             trend_low=float(row.trend_low), trend_high=float(row.trend_high), trend_commits=int(row.trend_commits))
    ratio = measures.speedup(con, period, **params).set_index("scope").loc[measures.SAME_COMMITS]
    emit("tests.speedup_vs_jest", ratio["speedup"], "ratio",
         "needs a commit both Jest and Vitest ran green in the period",
         ci_low=float(ratio["ci_low"]), ci_high=float(ratio["ci_high"]), commits=int(ratio["jest_n"]))
    coverage = measures.coverage_latest(con, period, primary_runner=primary_runner).set_index("metric")
    for metric, name in COVERAGE_METRICS.items():
        if metric in coverage.index:
            row = coverage.loc[metric]
            emit(name, row["pct"], "percent", runner=primary_runner, sha=row["sha"],
                 covered=int(row["covered"]), total=int(row["total"]))
        else:
            emit(name, None, "percent", f"no {primary_runner} run of the period wrote a coverage summary",
                 runner=primary_runner)
    flaky = measures.flakiness(con, period, **params)
    if len(flaky):
        counts = measures.test_counts(flaky)
        emit("tests.flaky_tests", counts["flaky"], "count", tests=counts["tests"], broken=counts["broken"])
    else:
        emit("tests.flaky_tests", None, "count", "no test passed or failed in the period")
    for row in measures.runner_summary(con, period, **params).itertuples():
        emit("tests.pass_rate", row.pass_rate, "fraction", runner=row.runner, passed=int(row.passed_tests),
             failed=int(row.failed_tests), ci_low=float(row.pass_rate_ci_low), ci_high=float(row.pass_rate_ci_high))
        emit("tests.reliability", row.reliability, "fraction", runner=row.runner, runs=int(row.runs),
             green_runs=int(row.green_runs), ci_low=float(row.reliability_ci_low),
             ci_high=float(row.reliability_ci_high))
    return records
