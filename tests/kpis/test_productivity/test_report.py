"""The test-productivity report end to end on the committed real Vitest and Jest runs.

tests/fixtures/test_reports/ holds four runs of the same commit (tests/fixtures/make_reports.sh): Vitest and
Jest, each failing once on attempt 1 (FIXTURE_FAIL=1 breaks "quote rounding keeps full precision") and
passing on attempt 2. The expected numbers are read off those files by hand.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest
from warehouse_copies import copy_with_state

from statex_bi import warehouse
from statex_bi.cli import main
from statex_bi.kpis import test_productivity as testing_report
from statex_bi.kpis.test_productivity import measures as testing
from statex_bi.periods import Period

ROOT = Path(__file__).resolve().parents[3]
REPORTS = ROOT / "tests" / "fixtures" / "test_reports"
NOTEBOOK = ROOT / "notebooks" / "test_productivity.ipynb"
PERIOD = Period(date(2026, 11, 30), date(2026, 12, 6))  # the fixtures ran on 2026-12-01


@pytest.fixture(scope="module")
def loaded(tmp_path_factory, built_empty):
    root = tmp_path_factory.mktemp("test_productivity")
    runs = root / "runs"
    shutil.copytree(REPORTS, runs)
    db = copy_with_state(built_empty[0], root)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STATEX_BI_DB", str(db))
        assert main(["ingest", "test-reports", "--dir", str(runs)]) == 0
    return db


def _metrics(db):
    with warehouse.connect(db, read_only=True) as con:
        return {(r.name, r.tags.get("runner")): r.value for r in testing_report.metrics(con, PERIOD)}


def test_published_kpis_match_a_hand_reading_of_the_reports(loaded):
    got = _metrics(loaded)
    # run.json wall_s: Vitest 11.231 and 12.72 s, Jest 10.491 and 10.656 s.
    assert got[("tests.suite_duration_s", "vitest")] == pytest.approx((11.231 + 12.72) / 2)
    assert got[("tests.suite_duration_s", "jest")] == pytest.approx((10.491 + 10.656) / 2)
    # On a nine-test suite the start-up dominates: Vitest is slower here (ratio below 1). The one commit both
    # ran green: attempt 2 of each (Jest 10.656 s, Vitest 12.72 s); the failed attempts 1 do not count.
    assert got[("tests.speedup_vs_jest", None)] == pytest.approx(10.656 / 12.72)
    # Coverage: the passing Vitest run (the failing one wrote none).
    assert got[("tests.coverage.lines_pct", "vitest")] == 83.33
    assert got[("tests.coverage.branches_pct", "vitest")] == 83.33
    assert got[("tests.coverage.functions_pct", "vitest")] == 75
    # One test failed on attempt 1 and passed on attempt 2 of the same sha, under both runners: one flaky test.
    assert got[("tests.flaky_tests", None)] == 1
    # Per runner: 6 + 7 passed, 1 failed (the skipped and todo tests do not count); one of two runs exited 0.
    for runner in ("vitest", "jest"):
        assert got[("tests.pass_rate", runner)] == pytest.approx(13 / 14)
        assert got[("tests.reliability", runner)] == 0.5


def test_a_period_without_runs_publishes_nothing_and_says_why(loaded):
    from statex_bi import publish

    with warehouse.connect(loaded, read_only=True) as con:
        records = testing_report.metrics(con, Period(date(2026, 11, 2), date(2026, 11, 8)))
    # Every record is a KPI of the registry; none is a 0 standing for "no data".
    published = publish.publish(records)
    assert not published["published"].any()
    assert set(published["metric_name"]) == {"tests.speedup_vs_jest", "tests.coverage.lines_pct",
                                             "tests.coverage.branches_pct", "tests.coverage.functions_pct",
                                             "tests.flaky_tests"}
    assert all(published["reason"].str.len() > 0)


def test_the_flaky_test_is_the_one_the_fixture_breaks(loaded):
    with warehouse.connect(loaded, read_only=True) as con:
        health = testing.flakiness(con, PERIOD)
    flaky = health[health["flaky"]]
    # The same test under each runner, judged within the runner: attempt 1 failed, attempt 2 passed, 1 flip.
    assert list(zip(flaky["runner"], flaky["file"], flaky["full_name"], strict=True)) == [
        ("jest", "test/pricing.test.js", "quote rounding keeps full precision"),
        ("vitest", "test/pricing.test.js", "quote rounding keeps full precision")]
    assert flaky["flip_rate"].tolist() == [1.0, 1.0]


def test_the_notebook_runs_and_publishes_the_kpis(loaded, tmp_path, monkeypatch):
    import papermill

    from statex_bi.publish import read_sidecar

    sidecar = tmp_path / "metrics.jsonl"
    monkeypatch.setenv("STATEX_BI_DB", str(loaded))
    monkeypatch.setenv("STATEX_BI_SIDECAR", str(sidecar))
    papermill.execute_notebook(
        str(NOTEBOOK), str(tmp_path / "out.ipynb"), kernel_name="python3", progress_bar=False,
        parameters={"period_start": str(PERIOD.start), "period_end": str(PERIOD.end), "run_id": "test"},
    )
    names = {record["metric_name"] for record in read_sidecar(sidecar)}
    assert names == {"tests.suite_duration_s", "tests.speedup_vs_jest", "tests.coverage.lines_pct",
                     "tests.coverage.branches_pct", "tests.coverage.functions_pct", "tests.flaky_tests",
                     "tests.pass_rate", "tests.reliability"}
