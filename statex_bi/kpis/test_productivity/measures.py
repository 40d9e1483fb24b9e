"""Test productivity KPIs: suite wall time, Vitest against Jest, coverage, flaky and broken tests.

Every number is over the test runs whose `started_at` falls in the period (UTC days), from
`core.test_runs`, `core.test_results` and `core.test_coverage` (GitHub Actions artifacts and
`test-reports` folders alike). Definitions (docs/metrics.md repeats the published ones):

- *Suite duration* [runner]: the median of `wall_s` over all attempts. Per commit: the median of the
  commit's attempts; its trend is the least-squares slope of those per-commit medians over time.
- *Speedup vs Jest*: median Jest `wall_s` / median Vitest `wall_s` (above 1: Vitest is faster), with
  a seeded percentile bootstrap 95 % interval that resamples each runner's runs. The same ratio on
  the commits both runners ran ("same commits") resamples commits instead, keeping each pair.
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

from datetime import timedelta
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from statex_bi import warehouse
from statex_bi.kpis.stats import wilson_interval
from statex_bi.periods import Period

RUNNERS = ("vitest", "jest")
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 20261127
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


def suite_duration(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Per runner: runs, commits, median / p90 wall time over all attempts, and the per-commit trend.

    Returns:
        runner, runs, commits, median_wall_s, p90_wall_s, trend_s_per_week (slope of the per-commit
        medians against time; NaN with fewer than 3 commits).
    """
    return con.execute(_sql(con, """
        WITH runs AS (SELECT * FROM {runs} WHERE started_at >= ? AND started_at < ?),
        commits AS (
            SELECT runner, sha, min(started_at) AS first_started_at, median(wall_s) AS wall_s
            FROM runs GROUP BY runner, sha
        ),
        trend AS (
            SELECT runner, count(*) AS commits,
                   CASE WHEN count(*) >= 3 THEN regr_slope(wall_s, epoch(first_started_at) / 604800.0) END
                       AS trend_s_per_week
            FROM commits GROUP BY runner
        )
        SELECT runs.runner, count(*) AS runs, any_value(trend.commits) AS commits,
               median(wall_s) AS median_wall_s, quantile_cont(wall_s, 0.9) AS p90_wall_s,
               any_value(trend.trend_s_per_week) AS trend_s_per_week
        FROM runs JOIN trend USING (runner)
        GROUP BY runs.runner ORDER BY runs.runner DESC
    """), _window(period)).df()


def commit_durations(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Per runner and commit first run in the period: attempts and the median wall time of the attempts."""
    return con.execute(_sql(con, """
        SELECT runner, sha, first_started_at, attempts, last_attempt, median_wall_s
        FROM {commits} WHERE first_started_at >= ? AND first_started_at < ?
        ORDER BY first_started_at, runner
    """), _window(period)).df()


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


def _bootstrap_ratio(jest: np.ndarray, vitest: np.ndarray, rng: np.random.Generator,
                     samples: int) -> tuple[float, float]:
    """Percentile 95 % interval of median(jest) / median(vitest), resampling each group independently."""
    jest_medians = np.median(rng.choice(jest, size=(samples, len(jest))), axis=1)
    vitest_medians = np.median(rng.choice(vitest, size=(samples, len(vitest))), axis=1)
    low, high = np.percentile(jest_medians / vitest_medians, [2.5, 97.5])
    return float(low), float(high)


def _paired_ratio(pairs: pd.DataFrame, rng: np.random.Generator, samples: int) -> tuple[float, float]:
    """Percentile 95 % interval of the ratio of medians, resampling commits (each keeps its pair)."""
    index = rng.integers(0, len(pairs), size=(samples, len(pairs)))
    jest = np.median(pairs["jest"].to_numpy()[index], axis=1)
    vitest = np.median(pairs["vitest"].to_numpy()[index], axis=1)
    low, high = np.percentile(jest / vitest, [2.5, 97.5])
    return float(low), float(high)


def speedup(con: duckdb.DuckDBPyConnection, period: Period, bootstrap_seed: int = BOOTSTRAP_SEED,
            bootstrap_samples: int = BOOTSTRAP_SAMPLES, **params: Any) -> pd.DataFrame:
    """Vitest against Jest: median Jest wall time / median Vitest wall time, with bootstrap 95 % intervals.

    Returns:
        Two rows, scope `all runs` (the published KPI) and `same commits` (per-commit medians of the
        commits both runners ran): jest_runs (or commits), vitest_runs, jest_median_s, vitest_median_s,
        speedup, ci_low, ci_high. NaN where a runner has no run.
    """
    runs = con.execute(_sql(con, """
        SELECT runner, sha, wall_s FROM {runs}
        WHERE started_at >= ? AND started_at < ? AND runner IN ('jest', 'vitest')
    """), _window(period)).df()
    rng = np.random.default_rng(bootstrap_seed)
    rows = []
    jest = runs.loc[runs["runner"] == "jest", "wall_s"].to_numpy(dtype=float)
    vitest = runs.loc[runs["runner"] == "vitest", "wall_s"].to_numpy(dtype=float)
    row = {"scope": "all runs", "jest_n": len(jest), "vitest_n": len(vitest), "jest_median_s": np.nan,
           "vitest_median_s": np.nan, "speedup": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if len(jest) and len(vitest):
        row.update(jest_median_s=float(np.median(jest)), vitest_median_s=float(np.median(vitest)))
        row["speedup"] = row["jest_median_s"] / row["vitest_median_s"]
        row["ci_low"], row["ci_high"] = _bootstrap_ratio(jest, vitest, rng, bootstrap_samples)
    rows.append(row)
    pairs = runs.groupby(["sha", "runner"])["wall_s"].median().unstack()
    pairs = pairs.dropna() if {"jest", "vitest"} <= set(pairs.columns) else pd.DataFrame(columns=["jest", "vitest"])
    paired = {"scope": "same commits", "jest_n": len(pairs), "vitest_n": len(pairs), "jest_median_s": np.nan,
              "vitest_median_s": np.nan, "speedup": np.nan, "ci_low": np.nan, "ci_high": np.nan}
    if len(pairs):
        paired.update(jest_median_s=float(pairs["jest"].median()), vitest_median_s=float(pairs["vitest"].median()))
        paired["speedup"] = paired["jest_median_s"] / paired["vitest_median_s"]
        paired["ci_low"], paired["ci_high"] = _paired_ratio(pairs, rng, bootstrap_samples)
    rows.append(paired)
    return pd.DataFrame(rows)


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


def runner_summary(con: duckdb.DuckDBPyConnection, period: Period, **params: Any) -> pd.DataFrame:
    """Per runner: runs, green runs, reliability, passed and failed tests, pass rate, runs without a flaky failure.

    A run has a flaky failure when a test it failed is flaky in the period (passed and failed on one sha).
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
