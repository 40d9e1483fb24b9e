"""Test identity in real Vitest 4 and Jest 30 reports (tests/fixtures/make_identity_reports.sh): an it.each
whose two cases share a title, `test("cart total rounds")` beside `describe("cart") > test("total rounds")`,
and a file that fails to load. Expected values come from reading the JSON reports independently."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from statex_bi.ingest import load_source
from statex_bi.sources import test_reports
from statex_bi.sources.contract import IngestRequest

REPORTS = Path(__file__).resolve().parents[2] / "fixtures" / "test_identity"


def _report(runner: str) -> dict:
    return json.loads((REPORTS / runner / f"{runner}.json").read_text())


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("identity") / "w.duckdb"
    assert load_source(test_reports.SPEC, IngestRequest(dir=REPORTS, progress=lambda m: None), path).status \
        == "succeeded"
    return path


def _rows(db, sql, *args):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql, list(args)).fetchall()


@pytest.mark.parametrize("runner", ["vitest", "jest"])
def test_tests_sharing_a_full_name_stay_apart(db, runner):
    report = _report(runner)
    tests = [(suite["name"], tuple(t["ancestorTitles"]), t["title"])
             for suite in report["testResults"] for t in suite["assertionResults"]]
    # The runner's full names collide: 4 tests, 2 names.
    full_names = {(s["name"], t["fullName"]) for s in report["testResults"] for t in s["assertionResults"]}
    assert len(tests) == 4 and len(full_names) == 2
    keys = _rows(db, """SELECT test_key, status FROM raw_test_reports.test_results r
                        JOIN raw_test_reports.test_runs USING (test_run_id)
                        WHERE runner = ? AND runner_status <> 'load_error'""", runner)
    assert len({key for key, _ in keys}) == len(tests)
    statuses = Counter(t["status"] for s in report["testResults"] for t in s["assertionResults"])
    assert Counter(status for _, status in keys) == statuses


@pytest.mark.parametrize(("runner", "says"), [("vitest", "Cannot find module './missing.js'"),
                                                ("jest", "Test suite failed to run")])
def test_a_file_that_fails_to_load_is_recorded_as_a_failure(db, runner, says):
    broken = [s for s in _report(runner)["testResults"] if not s["assertionResults"] and s["status"] == "failed"]
    assert [s["name"] for s in broken] == ["/repo/test/broken.test.js"]
    rows = _rows(db, """SELECT file, status, message FROM raw_test_reports.test_results
                        JOIN raw_test_reports.test_runs USING (test_run_id)
                        WHERE runner = ? AND runner_status = 'load_error'""", runner)
    assert [(file, status) for file, status, _ in rows] == [("test/broken.test.js", "failed")]
    assert says in rows[0][2]
    assert _rows(db, "SELECT files_failed FROM raw_test_reports.test_runs WHERE runner = ?", runner) == [(1,)]
