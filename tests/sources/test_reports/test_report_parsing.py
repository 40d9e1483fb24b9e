"""Parsing the reports real Vitest and Jest runs wrote (tests/fixtures/make_reports.sh made them)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from statex_bi.exceptions import RecordError
from statex_bi.sources.test_reports import helpers, read_folder

REPORTS = Path(__file__).resolve().parents[2] / "fixtures" / "test_reports"
FAILING_TEST = "quote rounding keeps full precision"


def _fail(where="run"):
    return helpers.Fail("test-reports", where, where)


def _by_name(rows):
    return {(row["file"], row["full_name"]): row for row in rows}


def test_vitest_counts_describe_blocks_as_suites_and_jest_does_not():
    vitest = read_folder(REPORTS / "vitest-attempt2-passed").run
    jest = read_folder(REPORTS / "jest-attempt2-passed").run
    # Two test files; pricing.test.js has three describe blocks (quote, quote > rounding, tier).
    assert (vitest["suites_reported"], vitest["test_files"]) == (5, 2)
    assert (jest["suites_reported"], jest["test_files"]) == (2, 2)


@pytest.mark.parametrize("folder", ["vitest-attempt1-failed", "jest-attempt1-failed"])
def test_one_row_per_test_with_file_full_name_status_and_duration(folder):
    parsed = read_folder(REPORTS / folder)
    rows = _by_name(parsed.results)
    assert len(parsed.results) == 9
    assert {row["file"] for row in parsed.results} == {"test/pricing.test.js", "test/slug.test.js"}
    assert rows[("test/pricing.test.js", FAILING_TEST)]["status"] == "failed"
    assert rows[("test/slug.test.js", "makes a slug")]["status"] == "passed"
    skipped = rows[("test/pricing.test.js", "quote rounding rounds to cents for display")]
    todo = rows[("test/pricing.test.js", "tier sends medium users to openai")]
    assert (skipped["status"], todo["status"]) == ("skipped", "todo")
    assert skipped["duration_ms"] is None and todo["duration_ms"] is None  # not run: no duration
    # The test that sleeps 30 ms before asserting: durations are milliseconds.
    assert rows[("test/pricing.test.js", "tier sends small users to ollama")]["duration_ms"] >= 30
    run = parsed.run
    assert (run["tests_passed"], run["tests_failed"], run["tests_skipped"], run["tests_todo"]) == (6, 1, 1, 1)
    assert run["exit_code"] == 1 and run["attempt"] == 1


def test_jest_reports_skipped_tests_as_pending():
    rows = _by_name(read_folder(REPORTS / "jest-attempt1-failed").results)
    assert rows[("test/pricing.test.js", "quote rounding rounds to cents for display")]["runner_status"] == "pending"


def test_junit_times_are_seconds_and_agree_with_the_json_milliseconds():
    folder = REPORTS / "vitest-attempt1-failed"
    junit = _by_name(helpers.parse_junit((folder / "junit.xml").read_bytes(), _fail()))
    json_rows = _by_name(read_folder(folder).results)
    assert junit.keys() == json_rows.keys()
    timed = [key for key, row in json_rows.items() if row["duration_ms"] is not None]
    assert len(timed) == 7
    for key in timed:
        assert junit[key]["duration_ms"] == pytest.approx(json_rows[key]["duration_ms"], rel=1e-6, abs=1e-6)
    assert junit[("test/pricing.test.js", FAILING_TEST)]["status"] == "failed"


def test_vitest_writes_no_coverage_when_a_test_fails_and_jest_does():
    assert read_folder(REPORTS / "vitest-attempt1-failed").coverage == []
    assert read_folder(REPORTS / "vitest-attempt1-failed").run["has_coverage"] is False
    assert read_folder(REPORTS / "jest-attempt1-failed").run["has_coverage"] is True


def test_coverage_totals_per_metric():
    coverage = {row["metric"]: row for row in read_folder(REPORTS / "vitest-attempt2-passed").coverage}
    assert set(coverage) == {"lines", "statements", "functions", "branches"}
    assert (coverage["functions"]["covered"], coverage["functions"]["total"]) == (3, 4)  # neverCalled is not
    assert coverage["functions"]["pct"] == 75
    assert coverage["lines"]["pct"] == 83.33


def test_coverage_pct_unknown_is_null():
    summary = json.loads((REPORTS / "vitest-attempt2-passed" / "coverage" / "coverage-summary.json").read_text())
    summary["total"]["branches"] = {"total": 0, "covered": 0, "skipped": 0, "pct": "Unknown"}
    rows = {row["metric"]: row for row in helpers.parse_coverage(json.dumps(summary).encode(), _fail())}
    assert rows["branches"]["pct"] is None
    assert rows["lines"]["pct"] == 83.33


def test_run_json_fields_are_validated_by_name(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    source = REPORTS / "vitest-attempt2-passed"
    (folder / "vitest.json").write_bytes((source / "vitest.json").read_bytes())
    meta = json.loads((source / "run.json").read_text())
    meta["wall_s"] = "2.6s"
    (folder / "run.json").write_text(json.dumps(meta))
    with pytest.raises(RecordError) as error:
        read_folder(folder)
    assert error.value.field == "wall_s" and error.value.endpoint.endswith("run.json")


def test_a_junit_that_disagrees_with_the_json_report_is_refused(tmp_path):
    folder = tmp_path / "run"
    folder.mkdir()
    for name in ("run.json", "vitest.json"):
        (folder / name).write_bytes((REPORTS / "vitest-attempt2-passed" / name).read_bytes())
    (folder / "junit.xml").write_bytes((REPORTS / "vitest-attempt1-failed" / "junit.xml").read_bytes())
    with pytest.raises(RecordError) as error:
        read_folder(folder)
    assert error.value.endpoint.endswith("junit.xml") and "but the JSON report has" in str(error.value)


def test_the_same_run_gets_the_same_key_and_different_attempts_do_not():
    first = read_folder(REPORTS / "vitest-attempt1-failed").run["test_run_id"]
    assert read_folder(REPORTS / "vitest-attempt1-failed").run["test_run_id"] == first
    assert read_folder(REPORTS / "vitest-attempt2-passed").run["test_run_id"] != first
