"""Test-productivity KPIs on a hand-made warehouse: flaky, broken, flip and pass rates by hand."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import numpy as np
import pytest

from statex_bi.kpis.test_productivity import measures as testing
from statex_bi.periods import Period

PERIOD = Period(date(2026, 11, 23), date(2026, 11, 29))
# (run id, runner, sha, attempt, started, exit code, wall_s)
RUNS = [
    ("r1", "vitest", "A", 1, datetime(2026, 11, 23, 9), 1, 4.0),
    ("r2", "vitest", "A", 2, datetime(2026, 11, 23, 10), 1, 6.0),
    ("r3", "vitest", "B", 1, datetime(2026, 11, 24, 9), 1, 5.0),
    ("r4", "jest", "B", 1, datetime(2026, 11, 24, 9, 5), 1, 12.0),
    ("r5", "jest", "A", 1, datetime(2026, 11, 23, 9, 5), 1, 9.0),
    ("r0", "vitest", "Z", 1, datetime(2026, 11, 20, 9), 0, 50.0),  # before the period
]
# (run id, file, full name, status, duration)
RESULTS = [
    ("r1", "a.test.ts", "t1", "failed", 10.0), ("r1", "a.test.ts", "t2", "passed", 20.0),
    ("r1", "b.test.ts", "t3", "failed", 30.0), ("r1", "b.test.ts", "t4", "skipped", None),
    ("r2", "a.test.ts", "t1", "passed", 11.0), ("r2", "a.test.ts", "t2", "passed", 21.0),
    ("r2", "b.test.ts", "t3", "failed", 31.0),
    ("r3", "a.test.ts", "t1", "passed", 12.0), ("r3", "a.test.ts", "t2", "failed", 22.0),
    ("r3", "b.test.ts", "t3", "failed", 32.0),
    ("r4", "a.test.ts", "t2", "passed", 40.0), ("r4", "b.test.ts", "t3", "failed", 60.0),
    ("r5", "a.test.ts", "t1", "passed", 15.0), ("r5", "b.test.ts", "t3", "failed", 61.0),
    ("r0", "a.test.ts", "t1", "failed", 1.0), ("r0", "a.test.ts", "t1", "passed", 1.0),
]


@pytest.fixture
def con(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE SCHEMA core")
    con.execute("CREATE TABLE core.test_runs (test_run_id TEXT, runner TEXT, sha TEXT, attempt BIGINT, "
                "started_at TIMESTAMP, exit_code BIGINT, wall_s DOUBLE)")
    con.executemany("INSERT INTO core.test_runs VALUES (?, ?, ?, ?, ?, ?, ?)", RUNS)
    con.execute("CREATE TABLE core.test_results (test_run_id TEXT, file TEXT, full_name TEXT, status TEXT, "
                "duration_ms DOUBLE)")
    con.executemany("INSERT INTO core.test_results VALUES (?, ?, ?, ?, ?)", RESULTS)
    con.execute("""CREATE TABLE core.test_results_wide AS SELECT r.*, runs.runner, runs.sha, runs.started_at,
                   runs.attempt, to_json([r.file, r.full_name])::TEXT AS test_key
                   FROM core.test_results r JOIN core.test_runs runs USING (test_run_id)""")
    con.execute("DROP TABLE core.test_results")
    con.execute("ALTER TABLE core.test_results_wide RENAME TO test_results")
    con.execute("CREATE TABLE core.test_coverage (test_run_id TEXT, runner TEXT, sha TEXT, started_at TIMESTAMP, "
                "metric TEXT, total BIGINT, covered BIGINT, pct DOUBLE)")
    yield con
    con.close()


def test_flaky_broken_and_flip_rates_match_a_hand_count(con):
    table = testing.flakiness(con, PERIOD).set_index(["runner", "full_name"])
    # Within each runner. Vitest: t1 failed in r1 and passed in r2 on A (flaky); t2 passed on A and failed on
    # B (not flaky: no commit saw both); t3 failed in all three runs (broken). Jest ran each test at most
    # twice: nothing flaky or broken. A failure under Vitest and a pass under Jest on one commit (t2 on B) is
    # not flakiness. r0 is before the period and does not count.
    assert table["flaky"][table["flaky"]].index.tolist() == [("vitest", "t1")]
    assert table["broken"][table["broken"]].index.tolist() == [("vitest", "t3")]
    assert table.loc[("vitest", "t1"), "flaky_shas"] == 1 and table.loc[("vitest", "t2"), "flaky_shas"] == 0
    # By start time: Vitest t1 = F(r1) P(r2) P(r3): 1 flip in 2 steps; t2 = P P F: 1 in 2.
    assert table.loc[("vitest", "t1"), "flip_rate"] == pytest.approx(1 / 2)
    assert table.loc[("vitest", "t2"), "flip_rate"] == pytest.approx(1 / 2)
    assert table.loc[("vitest", "t3"), "flip_rate"] == 0
    assert (table.loc[("vitest", "t1"), "runs"], table.loc[("vitest", "t1"), "failed"]) == (3, 1)
    assert (table.loc[("jest", "t3"), "runs"], table.loc[("jest", "t3"), "failed"]) == (2, 2)
    low, high = table.loc[("vitest", "t1"), ["ci_low", "ci_high"]]
    assert low < 1 / 3 < high


def test_one_run_alone_never_makes_a_test_flaky(con):
    # The same test passed and failed inside one run (a report listing it twice): not flaky.
    con.execute("""INSERT INTO core.test_runs VALUES ('r6', 'vitest', 'C', 1, '2026-11-25 09:00', 1, 5.0)""")
    con.execute("""INSERT INTO core.test_results SELECT 'r6', file, full_name, status, 1.0, 'vitest', 'C',
                   TIMESTAMP '2026-11-25 09:00', 1, to_json([file, full_name])::TEXT
                   FROM (VALUES ('c.test.ts', 't5', 'passed'), ('c.test.ts', 't5', 'failed')) AS t(file, full_name,
                   status)""")
    table = testing.flakiness(con, PERIOD).set_index(["runner", "full_name"])
    assert not table.loc[("vitest", "t5"), "flaky"]


def test_pass_rate_reliability_and_runs_without_flaky_failures(con):
    summary = testing.runner_summary(con, PERIOD).set_index("runner")
    # Vitest tests: r1 1 passed 2 failed, r2 2/1, r3 1/2 -> 4 passed of 9; Jest: r4 1/1, r5 1/1 -> 2 of 4.
    assert summary.loc["vitest", "pass_rate"] == pytest.approx(4 / 9)
    assert summary.loc["jest", "pass_rate"] == pytest.approx(2 / 4)
    assert summary.loc["vitest", "reliability"] == 0  # every run in the period exited 1
    # Flaky failures: r1 (t1) only; r2 and r3 failed only t3 (broken) and t2 (not flaky).
    assert summary.loc["vitest", "runs_without_flaky"] == 2
    assert summary.loc["jest", "runs_without_flaky"] == 2


def test_suite_duration_is_the_median_over_all_attempts(con):
    table = testing.suite_duration(con, PERIOD).set_index("runner")
    assert table.loc["vitest", "median_wall_s"] == 5.0  # 4, 6, 5 (r0 is outside the period)
    assert table.loc["jest", "median_wall_s"] == 10.5


def _runs_db(path, runs: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(str(path))
    con.execute("CREATE SCHEMA core")
    con.execute("CREATE TABLE core.test_runs (test_run_id TEXT, runner TEXT, sha TEXT, attempt BIGINT, "
                "started_at TIMESTAMP, exit_code BIGINT, wall_s DOUBLE)")
    con.executemany("INSERT INTO core.test_runs VALUES (?, ?, ?, ?, ?, ?, ?)", runs)
    return con


# Six commits both runners ran green, Jest 1.8-2.2x as long; failed first attempts (slow, aborted or not) and a
# commit only Jest ran, which the old pooled ratio of medians mixed in.
RATIOS = {"c1": 2.0, "c2": 2.2, "c3": 1.8, "c4": 2.1, "c5": 1.9, "c6": 2.0}
SPEED_RUNS = [run for i, (sha, ratio) in enumerate(RATIOS.items()) for run in (
    (f"v-{sha}", "vitest", sha, 1, datetime(2026, 11, 23 + i % 6, 9), 0, 4.0 + i),
    (f"j-{sha}", "jest", sha, 2, datetime(2026, 11, 23 + i % 6, 10), 0, (4.0 + i) * ratio),
    (f"jf-{sha}", "jest", sha, 1, datetime(2026, 11, 23 + i % 6, 9, 30), 1, 1.0),
)] + [("j-only", "jest", "c7", 1, datetime(2026, 11, 29, 9), 0, 80.0)]


def test_speedup_is_the_per_commit_paired_ratio_on_green_runs_with_a_deterministic_bca_interval(tmp_path):
    con = _runs_db(tmp_path / "a.duckdb", SPEED_RUNS)
    table = testing.speedup(con, PERIOD).set_index("scope")
    con.close()
    paired = table.loc[testing.SAME_COMMITS]
    geometric = float(np.exp(np.mean(np.log(list(RATIOS.values())))))
    assert paired["speedup"] == pytest.approx(geometric) and paired["jest_n"] == 6
    assert paired["ci_low"] < geometric < paired["ci_high"] and paired["ci_high"] < 2.2
    # the same runs stored in another order give the same interval (the old one resampled by position)
    shuffled = _runs_db(tmp_path / "b.duckdb", list(reversed(SPEED_RUNS)))
    again = testing.speedup(shuffled, PERIOD).set_index("scope").loc[testing.SAME_COMMITS]
    shuffled.close()
    assert (again["ci_low"], again["ci_high"]) == (paired["ci_low"], paired["ci_high"])
    unpaired = table.loc[testing.ALL_GREEN_RUNS]
    assert unpaired["jest_n"] == 7 and unpaired["ci_low"] <= unpaired["speedup"] <= unpaired["ci_high"]


def test_the_suite_trend_is_a_theil_sen_slope_over_the_trailing_twelve_weeks(tmp_path):
    from scipy.stats import theilslopes

    start = datetime(2026, 9, 7, 9)  # 12 weeks before the period ends, Monday
    steady = [(f"r{i}", "vitest", f"s{i}", 1, start + timedelta(days=7 * i), 0, 10.0 + 0.1 * i) for i in range(12)]
    outlier = [("fast", "vitest", "s12", 1, datetime(2026, 11, 29, 9), 0, 2.0)]  # one odd commit at the end
    old = [(f"o{i}", "vitest", f"o{i}", 1, datetime(2026, 6, 1 + i, 9), 0, 90.0) for i in range(5)]  # too old
    failed = [("f", "vitest", "s11", 2, datetime(2026, 11, 23, 10), 1, 400.0)]  # a failed attempt: not green
    con = _runs_db(tmp_path / "t.duckdb", steady + outlier + old + failed)
    row = testing.suite_duration(con, PERIOD).set_index("runner").loc["vitest"]
    con.close()
    points = steady + outlier
    weeks = [(run[4] - datetime(1970, 1, 1)).total_seconds() / 604800 for run in points]
    fit = theilslopes([run[6] for run in points], weeks)
    assert row["trend_s_per_week"] == pytest.approx(fit.slope) and row["trend_s_per_week"] > 0
    assert row["trend_low"] <= row["trend_s_per_week"] <= row["trend_high"]
    assert row["trend_commits"] == 13
    assert np.polyfit(weeks, [run[6] for run in points], 1)[0] < 0  # least squares: the outlier wins
