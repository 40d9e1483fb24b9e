"""The simulated CI: a changing suite, retries, the migration overlap, and reports the real parser reads."""

from __future__ import annotations

from collections import defaultdict
from datetime import date

import pytest

from statex_bi.demo.ci_reports import report_files
from statex_bi.demo.world import World, WorldConfig
from statex_bi.sources.test_reports import helpers

CONFIG = WorldConfig(date(2026, 1, 5), date(2026, 6, 28), seed=4)


@pytest.fixture(scope="module")
def ci():
    return World(CONFIG).ci


def _suite_runs(ci):
    return [s for run in ci.runs for attempt in run.attempts for s in attempt.suite_runs]


def test_the_same_seed_gives_the_same_ci():
    again = World(CONFIG).ci
    first = World(CONFIG).ci
    assert [(r.run_id, r.sha, len(r.attempts)) for r in again.runs] == [(r.run_id, r.sha, len(r.attempts))
                                                                         for r in first.runs]


def test_the_suite_grows_and_jest_runs_alone_before_the_migration(ci):
    runs = _suite_runs(ci)
    sizes = [len(s.results) for s in runs if s.runner == "jest"]
    assert sizes[-1] > sizes[0]
    runners = [{s.runner for s in run.attempts[0].suite_runs} for run in ci.runs]
    first_vitest = runners.index({"jest", "vitest"})
    assert first_vitest > 0 and all(found == {"jest"} for found in runners[:first_vitest])
    assert all(found == {"jest", "vitest"} for found in runners[first_vitest:])


def test_failed_jobs_are_retried_on_the_same_commit_and_flaky_tests_flip(ci):
    retried = [run for run in ci.runs if len(run.attempts) > 1]
    assert retried
    for run in retried:
        assert all(s.sha == run.sha for a in run.attempts for s in a.suite_runs)
        assert run.attempts[0].conclusion == "failure"
    statuses = defaultdict(set)
    for s in _suite_runs(ci):
        for result in s.results:
            statuses[(result.test, s.sha)].add(result.status)
    assert any({"passed", "failed"} <= found for found in statuses.values())


def test_vitest_writes_no_coverage_when_a_test_fails(ci):
    runs = _suite_runs(ci)
    assert all(s.coverage is None for s in runs if s.runner == "vitest" and s.exit_code)
    assert all(s.coverage is not None for s in runs if s.runner == "jest")


def test_the_reports_parse_with_the_real_parser_and_agree_with_the_simulation(ci):
    runs = _suite_runs(ci)
    for suite_run in [runs[0], runs[-1], *[s for s in runs if s.exit_code][:3]]:
        files = report_files(suite_run, ci.tests)
        fail = helpers.Fail("test", "artifact", "run")
        meta = helpers.parse_run_meta(files.pop("run.json"), fail)
        parsed = helpers.parse_run(files, meta, "test", "artifact", "run", "id")
        assert parsed.run["wall_s"] == suite_run.wall_s and parsed.run["exit_code"] == suite_run.exit_code
        simulated = {(ci.tests[r.test].file, ci.tests[r.test].full_name): r.status
                     for r in suite_run.results}
        assert {(r["file"], r["full_name"]): r["status"] for r in parsed.results} == simulated
        assert parsed.run["tests_failed"] == sum(r.status == "failed" for r in suite_run.results)
        if suite_run.runner == "vitest":
            assert parsed.run["suites_reported"] > parsed.run["test_files"]  # describe blocks count
        else:
            assert parsed.run["suites_reported"] == parsed.run["test_files"]
