"""The GitHub connector against the sandbox: Link paging, the artifact redirect, rate limits, increments."""

from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest
import requests

from statex_bi.demo.apis import github as github_api
from statex_bi.demo.world import World, WorldConfig
from statex_bi.ingest import load_source
from statex_bi.sources import github
from statex_bi.sources.contract import IngestRequest
from statex_bi.sources.github import helpers, settings

START, END = date(2026, 9, 14), date(2026, 9, 27)


@pytest.fixture(scope="module")
def ci():
    return World(WorldConfig(START, END, seed=11)).ci


@pytest.fixture
def sandbox(ci, monkeypatch):
    # A small page size and a tight rate limit, so that three weeks of runs cross pages and limits.
    monkeypatch.setattr(settings, "PER_PAGE", 4)
    with github_api.serve(ci, rate_limit=20, rate_window_s=1) as sandbox:
        for key, value in github_api.environment(sandbox.url).items():
            monkeypatch.setenv(key, value)
        yield sandbox


def _load(db, rate_limit=None, **window):
    request = IngestRequest(progress=lambda message: None, **window)
    spec = github.SPEC if rate_limit is None else github.SPEC.__class__(
        "github", lambda r: github.build(r, rate_limit), github.SPEC.watermark_sql)
    return load_source(spec, request, db)


def _rows(db, sql):
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_loads_exactly_what_the_sandbox_served(ci, sandbox, db_file):
    rate_limit = helpers.RateLimit()
    result = _load(db_file, rate_limit, start=START, end=END)
    assert result.status == "succeeded", result.error

    expected_runs = {(run.run_id, a.number, run.sha, a.conclusion) for run in ci.runs for a in run.attempts}
    assert any(number > 1 for _, number, _, _ in expected_runs)  # retries are in the data
    loaded = set(_rows(db_file, "SELECT run_id, run_attempt, head_sha, conclusion FROM raw_github.workflow_runs"))
    assert loaded == expected_runs

    suite_runs = {(run.run_id, a.number, s.runner): s for run in ci.runs for a in run.attempts for s in a.suite_runs}
    test_runs = _rows(db_file, "SELECT run_id, run_attempt, runner, wall_s, exit_code, tests_total, attempt, sha "
                               "FROM raw_github.test_runs")
    assert {(r[0], r[1], r[2]) for r in test_runs} == set(suite_runs)
    for run_id, attempt, runner, wall_s, exit_code, total, run_attempt, sha in test_runs:
        simulated = suite_runs[(run_id, attempt, runner)]
        assert (wall_s, exit_code, total, run_attempt, sha) == (
            simulated.wall_s, simulated.exit_code, len(simulated.results), simulated.attempt, simulated.sha)
    results = _rows(db_file, "SELECT count(*), count(*) FILTER (status = 'failed') FROM raw_github.test_results")[0]
    assert results == (sum(len(s.results) for s in suite_runs.values()),
                       sum(r.status == "failed" for s in suite_runs.values() for r in s.results))

    # Link paging: more than one page of runs was asked for and followed.
    pages = [r for r in sandbox.requests if r.path.endswith("/actions/runs")]
    assert len(pages) == -(-len(ci.runs) // 4) > 1
    # Every artifact came through the 302 to the storage URL.
    downloads = [r for r in sandbox.requests if r.path.startswith("/_storage/")]
    assert len(downloads) == len(suite_runs)
    # The limit was reached and waited out rather than exceeded.
    assert rate_limit.waited_s > 0
    assert sandbox.limiter.refused == 0


def test_an_exhausted_rate_limit_is_retried_after_the_reset(ci, sandbox, db_file):
    headers = {"Authorization": f"Bearer {github_api.TOKEN}"}
    url = f"{sandbox.url}/repos/{github_api.REPOSITORY}/actions/runs?per_page=1"
    for _ in range(200):  # another client spends the quota of the current window
        if requests.get(url, headers=headers, timeout=5).status_code == 403:
            break
    refused_before = sandbox.limiter.refused
    assert refused_before >= 1
    result = _load(db_file, start=START, end=END)
    assert result.status == "succeeded", result.error
    assert _rows(db_file, "SELECT count(DISTINCT run_id) FROM raw_github.workflow_runs")[0][0] == len(ci.runs)


def test_a_second_load_adds_nothing_and_downloads_nothing(ci, sandbox, db_file):
    assert _load(db_file).status == "succeeded"
    counts = "SELECT (SELECT count(*) FROM raw_github.workflow_runs), (SELECT count(*) FROM raw_github.test_results)"
    first = _rows(db_file, counts)
    served = len(sandbox.requests)
    assert _load(db_file).status == "succeeded"
    assert _rows(db_file, counts) == first
    again = sandbox.requests[served:]
    assert again and all(r.path.endswith("/actions/runs") for r in again)


def test_bad_credentials_fail_the_load_naming_the_variables(sandbox, db_file, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_wrong")
    result = _load(db_file, start=START, end=END)
    assert result.status == "failed"
    assert "HTTP 401" in result.error and "$GITHUB_TOKEN" in result.error


def test_artifacts_without_run_json_and_bad_artifacts(ci, sandbox, db_file, monkeypatch):
    real = github_api.report_files
    runs = [s for run in ci.runs for a in run.attempts for s in a.suite_runs]
    spoiled = next(s for s in runs if s.runner == "jest")

    def files(suite_run, tests):
        made = real(suite_run, tests)
        if suite_run is spoiled:  # a coverage summary with a percentage no tool writes
            summary = json.loads(made["coverage/coverage-summary.json"])
            summary["total"]["lines"]["pct"] = "n/a"
            made["coverage/coverage-summary.json"] = json.dumps(summary).encode()
        elif suite_run.runner == "jest":
            del made["run.json"]  # GitHub and the report say the rest
        return made

    monkeypatch.setattr(github_api, "report_files", files)
    assert _load(db_file, start=START, end=END).status == "succeeded"
    (endpoint, record, field), = _rows(db_file, "SELECT endpoint, record_id, field FROM raw_github.quarantine")
    assert "coverage/coverage-summary.json" in endpoint and "test-report-jest-1" in record
    assert field == "total.lines.pct"
    jest = _rows(db_file, "SELECT wall_s, exit_code, tests_failed, started_at FROM raw_github.test_runs "
                          "WHERE runner = 'jest'")
    assert len(jest) == sum(s.runner == "jest" for s in runs) - 1
    # Without run.json the exit code is the report's verdict and the wall time the report's own clock.
    assert all(exit_code == (1 if failed else 0) for _, exit_code, failed, _ in jest)
    assert all(wall_s > 0 for wall_s, _, _, _ in jest)
