"""The files a simulated suite run leaves behind, as the runners write them (see tests/fixtures/test_reports/).

`report_files(run, tests)` returns name -> bytes: `vitest.json` or `jest.json` (the JSON reporters'
shape: Vitest counts describe blocks as suites, Jest only files; Jest calls a skipped test `pending`;
durations in ms, none for skipped and todo tests), `coverage/coverage-summary.json` when the run wrote
one, and `run.json` as a CI step writes it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC

from statex_bi.demo.ci import SimTest, SuiteRun

ROOT = "/home/runner/work/statex-app/statex-app"


def _ms(moment) -> int:
    return int(moment.replace(tzinfo=UTC).timestamp() * 1000)


def report_files(run: SuiteRun, tests: list[SimTest]) -> dict[str, bytes]:
    """The artifact's files of one suite run."""
    by_file: dict[str, list] = defaultdict(list)
    for result in run.results:
        by_file[tests[result.test].file].append(result)
    skipped = "skipped" if run.runner == "vitest" else "pending"
    start = _ms(run.started_at)
    clock = start + 300
    suites, describe_blocks = [], 0
    for file in sorted(by_file):
        results = by_file[file]
        describe_blocks += len({tests[r.test].ancestors[:depth] for r in results
                                for depth in range(1, len(tests[r.test].ancestors) + 1)})
        assertions = []
        for result in results:
            test = tests[result.test]
            item = {"ancestorTitles": list(test.ancestors), "fullName": test.full_name,
                    "status": skipped if result.status == "skipped" else result.status, "title": test.title,
                    "failureMessages": ["AssertionError: expected true to be false"] if result.status == "failed"
                    else []}
            if result.duration_ms is not None:
                item["duration"] = result.duration_ms
            if run.runner == "vitest":
                item["meta"] = {}
            assertions.append(item)
        elapsed = sum(r.duration_ms or 0 for r in results)
        suites.append({"assertionResults": assertions, "startTime": clock, "endTime": clock + elapsed,
                       "message": "", "name": f"{ROOT}/{file}",
                       "status": "failed" if any(r.status == "failed" for r in results) else "passed"})
        clock += elapsed / 2
    counts = defaultdict(int)
    for result in run.results:
        counts[result.status] += 1
    failed_files = sum(1 for suite in suites if suite["status"] == "failed")
    report = {
        "numTotalTestSuites": len(suites) + (describe_blocks if run.runner == "vitest" else 0),
        "numPassedTestSuites": len(suites) - failed_files, "numFailedTestSuites": failed_files,
        "numPendingTestSuites": 0, "numTotalTests": len(run.results), "numPassedTests": counts["passed"],
        "numFailedTests": counts["failed"], "numPendingTests": counts["skipped"], "numTodoTests": counts["todo"],
        "startTime": start, "success": not counts["failed"], "testResults": suites,
    }
    files = {f"{run.runner}.json": json.dumps(report).encode()}
    if run.coverage is not None:
        total = {metric: {"total": t, "covered": c, "skipped": 0, "pct": round(c / t * 100, 2) if t else "Unknown"}
                 for metric, (t, c) in run.coverage.items()}
        total["branchesTrue"] = {"total": 0, "covered": 0, "skipped": 0, "pct": "Unknown"}
        files["coverage/coverage-summary.json"] = json.dumps({"total": total}).encode()
    files["run.json"] = json.dumps({
        "runner": run.runner, "sha": run.sha, "branch": run.branch, "attempt": run.attempt,
        "started_at": run.started_at.isoformat(timespec="milliseconds") + "Z", "exit_code": run.exit_code,
        "wall_s": run.wall_s, "root": ROOT}).encode()
    return files
