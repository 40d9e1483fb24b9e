"""Test productivity KPIs: suite wall time, Vitest against Jest, coverage, flaky and broken tests.

Every number is over the test runs whose `started_at` falls in the period (UTC days), from
`core.test_runs`, `core.test_results` and `core.test_coverage` (GitHub Actions artifacts and
`test-reports` folders alike). Definitions (docs/metrics.md repeats the published ones):

- *Suite duration* [runner]: the median of `wall_s` over all attempts. Its *trend*: the Theil-Sen
  slope (with its 95 % interval, `scipy.stats.theilslopes`) of the per-commit medians of green runs
  (exit code 0) against time, over the `TREND_WEEKS` weeks up to period_end (3 commits needed).
- *Speedup vs Jest*: over the commits both runners ran green in the period, each commit's Jest
  median green wall time / its Vitest one (above 1: Vitest is faster); the speedup is their geometric
  mean, with a BCa bootstrap 95 % interval over commits (`scipy.stats.bootstrap`, commits in sha
  order, fixed seed: the same data give the same interval; 2 commits needed). Re-runs happen only
  after failures, so failed attempts are left out, and commits only one runner ran are not compared.
  The unpaired ratio of the runners' green medians ("all green runs") is shown beside it.
- *Coverage*: the newest run of the primary runner (param `primary_runner`, default vitest) that
  wrote a coverage summary: its `total` percentages (0-100). Vitest writes none when a test fails.
- *Test*: its `test_key`, file + describe path + title (with its ordinal where those collide), under one
  runner: the runner's full name joins titles with spaces, so it can name two tests.
- *Flaky test*: a test that passed in one run and failed in another run of the same runner on the same
  sha (one run alone never makes a test flaky). A test file that failed to load counts as one failed test.
- *Failure rate* of a test: failed / (passed + failed) runs, with a Wilson 95 % interval; *flip rate*:
  status changes between consecutive runs of its runner (by start time, passed/failed only) / (runs - 1);
  *broken*:
  failed in every one of at least `broken_min_runs` runs (default 3).
- *Pass rate* [runner]: passed tests / (passed + failed) over all runs. *Reliability* [runner]: the
  share of runs with exit code 0. The report also shows the share of runs with no flaky failure.
"""

from __future__ import annotations

import warnings
from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd
from scipy import stats

from statex_bi import warehouse
from statex_bi.kpis.stats import wilson_interval
from statex_bi.periods import Period
from statex_bi.reads import recorded

RUNNERS = ("vitest", "jest")
BOOTSTRAP_SAMPLES = 4999
BOOTSTRAP_SEED = 20261127
TREND_WEEKS = 12
SAME_COMMITS, ALL_GREEN_RUNS = "same commits", "all green runs"
# The models read, with their columns' types: a warehouse without them (nothing loaded or built yet)
# reads as empty relations of the same shape, so every function returns an empty frame, not an error.
MODELS: dict[str, dict[str, str]] = {
    "core.test_runs": {"test_run_id": "VARCHAR", "runner": "VARCHAR", "sha": "VARCHAR", "attempt": "BIGINT",
                       "started_at": "TIMESTAMP", "exit_code": "BIGINT", "wall_s": "DOUBLE"},
    "core.test_results": {"test_run_id": "VARCHAR", "runner": "VARCHAR", "sha": "VARCHAR", "started_at": "TIMESTAMP",
                          "file": "VARCHAR", "full_name": "VARCHAR", "test_key": "VARCHAR", "status": "VARCHAR",
                          "duration_ms": "DOUBLE"},
    "core.test_coverage": {"test_run_id": "VARCHAR", "runner": "VARCHAR", "sha": "VARCHAR",
                           "started_at": "TIMESTAMP", "metric": "VARCHAR", "total": "BIGINT", "covered": "BIGINT",
                           "pct": "DOUBLE"},
    "marts.test_commit_durations": {"runner": "VARCHAR", "sha": "VARCHAR", "first_started_at": "TIMESTAMP",
                                    "attempts": "BIGINT", "last_attempt": "BIGINT", "median_wall_s": "DOUBLE"},
}


def _relations(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Model name -> what to select from: the model, or an empty relation of its shape when it is missing."""
    relations = {}
    for name, columns in MODELS.items():
        schema, table = name.split(".")
        if warehouse.table_exists(con, schema, table):
            relations[name] = name
        else:
            typed = ", ".join(f"NULL::{kind} AS {column}" for column, kind in columns.items())
            relations[name] = f"(SELECT {typed} WHERE false)"
    return relations


def _sql(con: duckdb.DuckDBPyConnection, query: str) -> str:
    relations = _relations(con)
    return query.format(runs=relations["core.test_runs"], results=relations["core.test_results"],
                        coverage=relations["core.test_coverage"], commits=relations["marts.test_commit_durations"])


def _window(period: Period) -> list:
    return [period.start, period.end + timedelta(days=1)]


@recorded
def suite_duration(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Per runner: runs, commits, median / p90 wall time over all attempts, and the trend.

    Returns:
        runner, runs, commits, median_wall_s, p90_wall_s, trend_s_per_week, trend_low, trend_high (the
        Theil-Sen slope of the green per-commit medians over the TREND_WEEKS weeks to period_end, and its
        95 % interval; NaN with fewer than 3 commits), trend_commits.
    """
    table = con.execute(_sql(con, """
        WITH runs AS (SELECT * FROM {runs} WHERE started_at >= ? AND started_at < ?)
        SELECT runner, count(*) AS runs, count(DISTINCT sha) AS commits,
               median(wall_s) AS median_wall_s, quantile_cont(wall_s, 0.9) AS p90_wall_s
        FROM runs GROUP BY runner ORDER BY runner DESC
    """), _window(period)).df()
    trailing = Period(period.end - timedelta(weeks=TREND_WEEKS) + timedelta(days=1), period.end)
    commits = con.execute(_sql(con, """
        SELECT runner, sha, epoch(min(started_at)) / 604800.0 AS week, median(wall_s) AS wall_s
        FROM {runs} WHERE exit_code = 0 AND started_at >= ? AND started_at < ?
        GROUP BY runner, sha ORDER BY runner, week, sha
    """), _window(trailing)).df()
    trends = []
    for runner in table["runner"]:
        points = commits[commits["runner"] == runner]
        slope = low = high = np.nan
        if len(points) >= 3 and points["week"].nunique() > 1:
            fit = stats.theilslopes(points["wall_s"].to_numpy(float), points["week"].to_numpy(float), alpha=0.95)
            slope, low, high = float(fit.slope), float(fit.low_slope), float(fit.high_slope)
        trends.append({"runner": runner, "trend_s_per_week": slope, "trend_low": low, "trend_high": high,
                       "trend_commits": len(points)})
    return table.merge(pd.DataFrame(trends, columns=["runner", "trend_s_per_week", "trend_low", "trend_high",
                                                     "trend_commits"]), on="runner", how="left")


@recorded
def commit_durations(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Per runner and commit first run in the period: attempts and the median wall time of the attempts."""
    return con.execute(_sql(con, """
        SELECT runner, sha, first_started_at, attempts, last_attempt, median_wall_s
        FROM {commits} WHERE first_started_at >= ? AND first_started_at < ?
        ORDER BY first_started_at, runner
    """), _window(period)).df()


@recorded
def slowest_tests(con: duckdb.DuckDBPyConnection, period: Period, limit: int = 10,
                  primary_runner: str = "vitest", **params: Any) -> pd.DataFrame:
    """The tests with the longest median duration under the primary runner (tests that ran).

    Returns:
        file, full_name, runs, median_ms, p95_ms, max_ms, previous_median_ms (the previous period's,
        NaN when the test did not run then).
    """
    previous = period.previous()
    return con.execute(_sql(con, """
        WITH timed AS (
            SELECT file, full_name, test_key, duration_ms, started_at >= ? AS current
            FROM {results}
            WHERE runner = ? AND duration_ms IS NOT NULL AND started_at >= ? AND started_at < ?
        ),
        stats AS (
            SELECT file, any_value(full_name) AS full_name, test_key,
                   count(*) FILTER (current) AS runs,
                   median(duration_ms) FILTER (current) AS median_ms,
                   quantile_cont(duration_ms, 0.95) FILTER (current) AS p95_ms,
                   max(duration_ms) FILTER (current) AS max_ms,
                   median(duration_ms) FILTER (NOT current) AS previous_median_ms
            FROM timed GROUP BY file, test_key
        )
        SELECT * EXCLUDE (test_key) FROM stats WHERE runs > 0 ORDER BY median_ms DESC, file, test_key LIMIT ?
    """), [period.start, primary_runner, previous.start, period.end + timedelta(days=1), int(limit)]).df()


def _empty_speedup(scope: str, jest_n: int = 0, vitest_n: int = 0) -> dict[str, Any]:
    return {"scope": scope, "jest_n": jest_n, "vitest_n": vitest_n, "jest_median_s": np.nan, "vitest_median_s": np.nan,
            "speedup": np.nan, "ci_low": np.nan, "ci_high": np.nan}


def _paired(pairs: pd.DataFrame, seed: int, samples: int) -> dict[str, Any]:
    """The geometric mean of the per-commit ratios, with a BCa bootstrap interval over commits."""
    row = _empty_speedup(SAME_COMMITS, len(pairs), len(pairs))
    if pairs.empty:
        return row
    logs = np.log(pairs["jest"].to_numpy(float) / pairs["vitest"].to_numpy(float))
    row.update(jest_median_s=float(pairs["jest"].median()), vitest_median_s=float(pairs["vitest"].median()),
               speedup=float(np.exp(logs.mean())))
    if len(logs) >= 2 and np.ptp(logs) > 0:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # BCa on few commits warns about its own accuracy
            ci = stats.bootstrap((logs,), np.mean, n_resamples=samples, method="BCa",
                                 rng=np.random.default_rng(seed)).confidence_interval
        row.update(ci_low=float(np.exp(ci.low)), ci_high=float(np.exp(ci.high)))
    return row


def _unpaired(jest: np.ndarray, vitest: np.ndarray, seed: int, samples: int) -> dict[str, Any]:
    """The ratio of the runners' median green wall times, with a percentile bootstrap interval."""
    row = _empty_speedup(ALL_GREEN_RUNS, len(jest), len(vitest))
    if not (len(jest) and len(vitest)):
        return row
    row.update(jest_median_s=float(np.median(jest)), vitest_median_s=float(np.median(vitest)))
    row["speedup"] = row["jest_median_s"] / row["vitest_median_s"]
    if len(jest) >= 2 and len(vitest) >= 2:
        ci = stats.bootstrap((jest, vitest), lambda j, v, axis=-1: np.median(j, axis=axis) / np.median(v, axis=axis),
                             n_resamples=samples, method="percentile",
                             rng=np.random.default_rng(seed)).confidence_interval
        row.update(ci_low=float(ci.low), ci_high=float(ci.high))
    return row


@recorded
def speedup(con: duckdb.DuckDBPyConnection, period: Period, bootstrap_seed: int = BOOTSTRAP_SEED,
            bootstrap_samples: int = BOOTSTRAP_SAMPLES, **params: Any) -> pd.DataFrame:
    """Vitest against Jest on green runs: the per-commit paired ratio (the KPI) and the unpaired one.

    Returns:
        Two rows, scope `same commits` (geometric mean of the commits' Jest / Vitest median green wall
        times, BCa interval; jest_n = vitest_n = commits) and `all green runs` (median Jest / median
        Vitest green wall time, percentile interval): jest_n, vitest_n, jest_median_s, vitest_median_s,
        speedup, ci_low, ci_high. NaN where undefined.
    """
    # sorted before any resampling: the same data always give the same interval
    runs = con.execute(_sql(con, """
        SELECT runner, sha, wall_s FROM {runs}
        WHERE started_at >= ? AND started_at < ? AND runner IN ('jest', 'vitest') AND exit_code = 0
        ORDER BY runner, sha, started_at, test_run_id
    """), _window(period)).df()
    jest = runs.loc[runs["runner"] == "jest", "wall_s"].to_numpy(dtype=float)
    vitest = runs.loc[runs["runner"] == "vitest", "wall_s"].to_numpy(dtype=float)
    pairs = runs.groupby(["sha", "runner"])["wall_s"].median().unstack()
    pairs = (pairs.dropna().sort_index() if {"jest", "vitest"} <= set(pairs.columns)
             else pd.DataFrame(columns=["jest", "vitest"]))
    return pd.DataFrame([_paired(pairs, bootstrap_seed, bootstrap_samples),
                         _unpaired(jest, vitest, bootstrap_seed, bootstrap_samples)])


@recorded
def coverage_latest(con: duckdb.DuckDBPyConnection, period: Period, primary_runner: str = "vitest",
                    **params: Any) -> pd.DataFrame:
    """The coverage totals of the primary runner's newest run in the period that wrote a summary.

    Returns:
        metric, pct (0-100, NaN for "Unknown"), covered, total, sha, started_at; empty when no run wrote one.
    """
    return con.execute(_sql(con, """
        WITH newest AS (
            SELECT test_run_id FROM {coverage}
            WHERE runner = ? AND started_at >= ? AND started_at < ?
            ORDER BY started_at DESC, test_run_id LIMIT 1
        )
        SELECT metric, pct, covered, total, sha, started_at
        FROM {coverage} JOIN newest USING (test_run_id) ORDER BY metric
    """), [primary_runner, *_window(period)]).df()


@recorded
def coverage_trend(con: duckdb.DuckDBPyConnection, period: Period, primary_runner: str = "vitest",
                   **params: Any) -> pd.DataFrame:
    """Per UTC day and metric: the coverage of the primary runner's newest run of the day with a summary."""
    return con.execute(_sql(con, """
        SELECT CAST(started_at AS DATE) AS day, metric,
               arg_max(pct, started_at) AS pct
        FROM {coverage}
        WHERE runner = ? AND started_at >= ? AND started_at < ?
        GROUP BY day, metric ORDER BY day, metric
    """), [primary_runner, *_window(period)]).df()


@recorded
def flakiness(con: duckdb.DuckDBPyConnection, period: Period, broken_min_runs: int = 3,
                **params: Any) -> pd.DataFrame:
    """Per test (runner + test_key) that ran in the period: runs, failures, failure and flip rates, flags.

    Returns:
        runner, file, full_name (with "#n" when the test shares its name with others in its file), test_key, runs,
        failed,
        failure_rate, ci_low, ci_high (Wilson 95 %), flips, flip_rate, flaky_shas (commits where it passed in
        one run and failed in another), flaky, broken; flaky and broken first.
    """
    table = con.execute(_sql(con, """
        WITH ran AS (
            SELECT runner, file, full_name, test_key, sha, status, started_at, test_run_id
            FROM {results}
            WHERE status IN ('passed', 'failed') AND started_at >= ? AND started_at < ?
        ),
        ordered AS (
            SELECT *, lag(status) OVER (PARTITION BY runner, test_key ORDER BY started_at, test_run_id) AS before
            FROM ran
        ),
        per_sha AS (
            -- passed in one run and failed in another: one run alone is never flaky
            SELECT runner, test_key, bool_or(status = 'passed') AND bool_or(status = 'failed')
                   AND count(DISTINCT test_run_id) > 1 AS mixed
            FROM ran GROUP BY runner, test_key, sha
        )
        SELECT o.runner, any_value(o.file) AS file, any_value(o.full_name) AS full_name, o.test_key,
               count(*) AS runs, count(*) FILTER (status = 'failed') AS failed,
               count(*) FILTER (before IS NOT NULL AND before <> status) AS flips,
               any_value(s.flaky_shas) AS flaky_shas
        FROM ordered o
        JOIN (SELECT runner, test_key, count(*) FILTER (mixed) AS flaky_shas FROM per_sha GROUP BY runner, test_key) s
            USING (runner, test_key)
        GROUP BY o.runner, o.test_key
    """), _window(period)).df()
    ordinal = table["test_key"].str.extract(r"\]#(\d+)$", expand=False)
    table["full_name"] = table["full_name"].where(ordinal.isna(), table["full_name"] + " #" + ordinal.fillna(""))
    table["failure_rate"] = table["failed"] / table["runs"]
    intervals = [wilson_interval(int(f), int(n)) for f, n in zip(table["failed"], table["runs"], strict=True)]
    table["ci_low"] = [low for low, _ in intervals]
    table["ci_high"] = [high for _, high in intervals]
    table["flip_rate"] = np.where(table["runs"] > 1, table["flips"] / (table["runs"] - 1).clip(lower=1), np.nan)
    table["flaky"] = table["flaky_shas"] > 0
    table["broken"] = (table["failed"] == table["runs"]) & (table["runs"] >= broken_min_runs)
    table = table.sort_values(["broken", "flaky", "failure_rate", "runner", "file", "test_key"],
                              ascending=[False, False, False, True, True, True]).reset_index(drop=True)
    return table[["runner", "file", "full_name", "test_key", "runs", "failed", "failure_rate", "ci_low", "ci_high",
                  "flips", "flip_rate", "flaky_shas", "flaky", "broken"]]


def test_counts(table: pd.DataFrame) -> dict[str, int]:
    """From `flakiness`: distinct tests that ran, are flaky or broken under some runner (a test flaky under
    both runners is one flaky test)."""
    return {"tests": table["test_key"].nunique(), "flaky": table.loc[table["flaky"], "test_key"].nunique(),
            "broken": table.loc[table["broken"], "test_key"].nunique()}


@recorded
def runner_summary(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Per runner: runs, green runs, reliability, passed and failed tests, pass rate, runs without a flaky failure.

    A run has a flaky failure when a test it failed is flaky under its runner in the period (passed and
    failed on one sha).
    """
    table = con.execute(_sql(con, """
        WITH results AS (
            SELECT * FROM {results} WHERE status IN ('passed', 'failed') AND started_at >= ? AND started_at < ?
        ),
        flaky AS (
            SELECT runner, test_key FROM results GROUP BY runner, test_key, sha
            HAVING bool_or(status = 'passed') AND bool_or(status = 'failed') AND count(DISTINCT test_run_id) > 1
        ),
        flaky_runs AS (
            SELECT DISTINCT r.test_run_id FROM results r SEMI JOIN flaky f USING (runner, test_key)
            WHERE r.status = 'failed'
        ),
        tests AS (
            SELECT test_run_id, count(*) FILTER (status = 'passed') AS passed,
                   count(*) FILTER (status = 'failed') AS failed
            FROM results GROUP BY test_run_id
        )
        SELECT runs.runner, count(*) AS runs, count(*) FILTER (exit_code = 0) AS green_runs,
               coalesce(sum(tests.passed), 0) AS passed_tests, coalesce(sum(tests.failed), 0) AS failed_tests,
               count(*) FILTER (runs.test_run_id NOT IN (SELECT test_run_id FROM flaky_runs)) AS runs_without_flaky
        FROM {runs} runs LEFT JOIN tests USING (test_run_id)
        WHERE runs.started_at >= ? AND runs.started_at < ?
        GROUP BY runs.runner ORDER BY runs.runner DESC
    """), [*_window(period), *_window(period)]).df()
    table["reliability"] = table["green_runs"] / table["runs"]
    tested = table["passed_tests"] + table["failed_tests"]
    table["pass_rate"] = np.where(tested > 0, table["passed_tests"] / tested.clip(lower=1), np.nan)
    table["no_flaky_share"] = table["runs_without_flaky"] / table["runs"]
    for column, (count, trials) in {"reliability": ("green_runs", "runs"),
                                    "pass_rate": ("passed_tests", None)}.items():
        bounds = [wilson_interval(int(k), int(n if trials else k + f))
                  for k, n, f in zip(table[count], table["runs"], table["failed_tests"], strict=True)]
        table[f"{column}_ci_low"] = [low for low, _ in bounds]
        table[f"{column}_ci_high"] = [high for _, high in bounds]
    return table


@recorded
def speedup_vs_claim(con: duckdb.DuckDBPyConnection, period: Period, claimed_speedup: float | None = None,
                     **params: Any) -> pd.DataFrame:
    """The measured speedups beside the claimed one, for a chart: label, speedup, ci_low, ci_high, kind.

    Args:
        claimed_speedup: the claim to check (the seed says Vitest makes tests "10x faster"); None leaves it out.
    """
    measured = speedup(con, period, **params)
    rows = [{"label": f"measured, {row.scope}", "speedup": row.speedup, "ci_low": row.ci_low, "ci_high": row.ci_high,
             "kind": "measured"} for row in measured.itertuples() if pd.notna(row.speedup)]
    if rows and claimed_speedup:
        rows.append({"label": "claimed", "speedup": float(claimed_speedup), "ci_low": np.nan, "ci_high": np.nan,
                     "kind": "claim"})
    return pd.DataFrame(rows, columns=["label", "speedup", "ci_low", "ci_high", "kind"])
