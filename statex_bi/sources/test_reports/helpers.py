"""Parsing test runs as the runners write them: Vitest / Jest JSON, JUnit XML, coverage summaries.

Shared by the `test-reports` folder source and the `github` artifact source. The formats, as the
tools really write them (tests/fixtures/test_reports/ holds real outputs):

- Vitest and Jest JSON reporters: `testResults[]` per test file (`name` = its absolute path), each
  with `assertionResults[]` per test (`fullName`, `title`, `ancestorTitles`, `status`, `duration`
  in **milliseconds**). Skipped and todo tests carry no duration. `numTotalTestSuites` counts files
  under Jest but files *and describe blocks* under Vitest, so it is kept as `suites_reported` and
  the comparable count is `test_files`.
- A test's identity (`test_key`) is its file, describe path (`ancestorTitles`) and title, never the
  runner's `fullName` (titles joined by spaces: `test("a b")` and `describe("a") > test("b")` read the
  same); tests that still collide (an `it.each` whose cases share a title) take their ordinal in the
  file, in report order. The report's `location` is not used: it is there only with a reporter option,
  and a test must keep its identity whether or not a run set it.
- A test file that fails to load (a missing module, a syntax error) has `status: "failed"`, no
  `assertionResults` and the error in `message`: it becomes one failed row of its own
  (settings.LOAD_FAILURE, runner_status `load_error`, the message kept) and counts in `files_failed`.
- JUnit XML (Vitest's `junit` reporter, jest-junit): `time` in **seconds**; names joined with " > ".
  Optional; when present its counts must agree with the JSON report.
- `coverage/coverage-summary.json` (istanbul json-summary): `total.<metric>.pct` may be the string
  "Unknown" (nothing to cover): stored as NULL. Vitest writes no coverage when a test fails.
"""

from __future__ import annotations

import hashlib
import json
import math
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from statex_bi.exceptions import RecordError
from statex_bi.sources.sentry.helpers import parse_timestamp
from statex_bi.sources.test_reports import settings


@dataclass
class ParsedRun:
    """One run of a suite: the `test_runs` row and its `test_results` and `coverage` rows."""

    run: dict
    results: list[dict] = field(default_factory=list)
    coverage: list[dict] = field(default_factory=list)


class Fail:
    """Builds RecordErrors naming the source, the file, the run and the field."""

    def __init__(self, source: str, where: str, record: str) -> None:
        self.source, self.where, self.record = source, where, record

    def __call__(self, file: str, field_name: str, message: str) -> RecordError:
        return RecordError(self.source, f"{self.where}/{file}", self.record, field_name, message)


def make_id(*parts: Any) -> str:
    """A stable key from natural-key parts (loading the same run twice gives the same rows)."""
    return hashlib.sha256("|".join(str(part) for part in parts).encode()).hexdigest()[:32]


# The range of the BIGINT columns a whole number from a report is stored in.
INT64 = range(-(2 ** 63), 2 ** 63)


def _json(data: bytes, file: str, fail: Fail) -> Any:
    try:
        return json.loads(data)
    except ValueError as exc:  # also invalid UTF-8
        raise fail(file, "(file)", f"invalid JSON: {exc}") from None
    except RecursionError:
        raise fail(file, "(file)", "JSON nested too deeply to read") from None


def _whole(value: Any, low: int = INT64.start) -> bool:
    """`value` is a whole number from `low` up that a BIGINT column holds."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value < INT64.stop


def parse_run_meta(data: bytes, fail: Fail) -> dict:
    """run.json: runner, sha, branch, attempt, started_at, exit_code, wall_s (and an optional root).

    Raises:
        RecordError: naming run.json and the missing or malformed field.
    """
    file = settings.RUN_FILE
    meta = _json(data, file, fail)
    if not isinstance(meta, dict):
        raise fail(file, "(file)", "not a JSON object")
    if meta.get("runner") not in settings.RUNNERS:
        raise fail(file, "runner", f"expected one of {', '.join(settings.RUNNERS)}, got {meta.get('runner')!r}")
    for name in ("sha", "branch"):
        if not isinstance(meta.get(name), str) or not meta[name].strip():
            raise fail(file, name, f"expected a non-empty string, got {meta.get(name)!r}")
    attempt = meta.get("attempt")
    if not _whole(attempt, 1):
        raise fail(file, "attempt", f"expected a whole number >= 1, got {attempt!r}")
    exit_code = meta.get("exit_code")
    if not _whole(exit_code):
        raise fail(file, "exit_code", f"expected a whole number, got {exit_code!r}")
    started = parse_timestamp(meta.get("started_at"))
    if not isinstance(meta.get("started_at"), str) or started is None:
        raise fail(file, "started_at", f"expected an ISO 8601 timestamp, got {meta.get('started_at')!r}")
    wall = meta.get("wall_s")
    if isinstance(wall, bool) or not isinstance(wall, int | float) or not math.isfinite(wall) or wall < 0:
        raise fail(file, "wall_s", f"expected seconds >= 0, got {wall!r}")
    root = meta.get("root")
    if root is not None and not isinstance(root, str):
        raise fail(file, "root", f"expected a path, got {root!r}")
    return {"runner": meta["runner"], "sha": meta["sha"].strip(), "branch": meta["branch"].strip(),
            "attempt": attempt, "started_at": started, "exit_code": exit_code, "wall_s": float(wall),
            "root": root}


def relative(path: str, root: str | None) -> str:
    """A test file's path relative to the project root when the run names one."""
    if root and path.startswith(root.rstrip("/") + "/"):
        return path[len(root.rstrip("/")) + 1:]
    return path


def parse_json_report(data: bytes, runner: str, fail: Fail, root: str | None = None) -> tuple[dict, list[dict]]:
    """A Vitest or Jest JSON report: (run counts, one row per test in report order).

    Raises:
        RecordError: naming the report file and the field (e.g. `testResults[1].assertionResults[0].status`).
    """
    file = settings.REPORT_FILES[runner]
    report = _json(data, file, fail)
    if not isinstance(report, dict) or not isinstance(report.get("testResults"), list):
        raise fail(file, "testResults", "missing: not a Vitest/Jest JSON report")
    rows: list[dict] = []
    for i, suite in enumerate(report["testResults"]):
        where = f"testResults[{i}]"
        if not isinstance(suite, dict) or not isinstance(suite.get("name"), str):
            raise fail(file, f"{where}.name", "missing test file name")
        tests = suite.get("assertionResults")
        if not isinstance(tests, list):
            raise fail(file, f"{where}.assertionResults", "missing")
        if not tests and suite.get("status") == "failed":
            rows.append(_load_failure_row(relative(suite["name"], root), suite.get("message")))
            continue
        for j, test in enumerate(tests):
            rows.append(_test_row(test, relative(suite["name"], root), fail, file, f"{where}.assertionResults[{j}]"))
    _assign_test_keys(rows)
    load_failures = sum(1 for row in rows if row["runner_status"] == settings.LOAD_ERROR)
    counts = Counter(row["status"] for row in rows if row["runner_status"] != settings.LOAD_ERROR)
    for key, status in (("numPassedTests", "passed"), ("numFailedTests", "failed")):
        if report.get(key) is not None and report[key] != counts[status]:
            raise fail(file, key, f"says {report[key]} but the report lists {counts[status]} {status} tests")
    tests_total = len(rows) - load_failures
    if report.get("numTotalTests") is not None and report["numTotalTests"] != tests_total:
        raise fail(file, "numTotalTests", f"says {report['numTotalTests']} but the report lists {tests_total} tests")
    if report.get("numTotalTestSuites") is not None and not _whole(report["numTotalTestSuites"], 0):
        raise fail(file, "numTotalTestSuites", f"expected a whole number >= 0, got {report['numTotalTestSuites']!r}")
    summary = {
        "tests_total": tests_total, "tests_passed": counts["passed"], "tests_failed": counts["failed"],
        "tests_skipped": counts["skipped"], "tests_todo": counts["todo"],
        "test_files": len(report["testResults"]), "files_failed": load_failures,
        "suites_reported": report.get("numTotalTestSuites"),
        "success": report.get("success"),
        "report_wall_s": _report_wall_s(report),
    }
    return summary, rows


def _test_row(test: Any, file_name: str, fail: Fail, file: str, where: str) -> dict:
    if not isinstance(test, dict):
        raise fail(file, where, "not an object")
    status = settings.STATUSES.get(test.get("status")) if isinstance(test.get("status"), str) else None
    if status is None:
        raise fail(file, f"{where}.status", f"unknown test status {test.get('status')!r}")
    title = test.get("title")
    full_name = test.get("fullName")
    if not isinstance(full_name, str) or not full_name:
        ancestors = test.get("ancestorTitles") or []
        if not isinstance(ancestors, list) or not all(isinstance(name, str) for name in ancestors):
            raise fail(file, f"{where}.ancestorTitles", "expected a list of names")
        full_name = " ".join([*ancestors, title]) if isinstance(title, str) else None
    if not full_name:
        raise fail(file, f"{where}.fullName", "missing test name")
    duration = test.get("duration")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, int | float) or not math.isfinite(duration) \
                or duration < 0:
            raise fail(file, f"{where}.duration", f"expected milliseconds >= 0, got {duration!r}")
        duration = float(duration)
    if status in ("skipped", "todo"):
        duration = None  # not run: a 0 here would pull medians down
    ancestors = test.get("ancestorTitles")
    if not isinstance(ancestors, list) or not all(isinstance(a, str) for a in ancestors):
        ancestors = []
    return {"file": file_name, "full_name": full_name, "title": title if isinstance(title, str) else full_name,
            "ancestor_titles": json.dumps(ancestors, ensure_ascii=False), "status": status,
            "runner_status": test["status"], "duration_ms": duration, "message": None}


def _load_failure_row(file_name: str, message: Any) -> dict:
    """A test file that failed to load, as one failed "test" of its own carrying the runner's message."""
    text = message.strip() if isinstance(message, str) and message.strip() else "the runner gave no message"
    return {"file": file_name, "full_name": settings.LOAD_FAILURE, "title": settings.LOAD_FAILURE,
            "ancestor_titles": "[]", "status": "failed", "runner_status": settings.LOAD_ERROR, "duration_ms": None,
            "message": text[:settings.MESSAGE_CHARS]}


def _assign_test_keys(rows: list[dict]) -> None:
    """test_key = [file, *describe path, title] as JSON, with "#n" (the n-th in report order) on the tests
    of one run whose file, describe path and title all coincide."""
    bases = [json.dumps([row["file"], *json.loads(row["ancestor_titles"]), row["title"]], ensure_ascii=False)
             for row in rows]
    repeated, seen = Counter(bases), Counter()
    for row, base in zip(rows, bases, strict=True):
        seen[base] += 1
        row["test_key"] = f"{base}#{seen[base]}" if repeated[base] > 1 else base


def _report_wall_s(report: Mapping[str, Any]) -> float | None:
    """From the report's own clock: the first start to the last file's end, in seconds."""
    ends = [suite.get("endTime") for suite in report["testResults"] if isinstance(suite, dict)]
    ends = [end for end in ends if isinstance(end, int | float) and not isinstance(end, bool)]
    start = report.get("startTime")
    if not ends or not isinstance(start, int | float) or isinstance(start, bool):
        return None
    return max(0.0, (max(ends) - start) / 1000)


def parse_junit(data: bytes, fail: Fail) -> list[dict]:
    """JUnit XML test cases: file (classname), full name (" > " joined), status, duration in ms.

    Raises:
        RecordError: the XML does not parse or a `time` is not seconds.
    """
    file = settings.JUNIT_FILE
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise fail(file, "(file)", f"invalid XML: {exc}") from None
    rows = []
    for i, case in enumerate(root.iter("testcase")):
        try:
            seconds = float(case.get("time", "0"))
        except ValueError:
            raise fail(file, f"testcase[{i}].time", f"expected seconds, got {case.get('time')!r}") from None
        if case.find("failure") is not None or case.find("error") is not None:
            status = "failed"
        elif case.find("skipped") is not None:
            status = "skipped"  # JUnit has no todo: Vitest writes todo tests as skipped
        else:
            status = "passed"
        rows.append({"file": case.get("classname", ""), "full_name": (case.get("name") or "").replace(" > ", " "),
                     "status": status, "duration_ms": None if status == "skipped" else seconds * 1000})
    return rows


def check_junit(junit: list[dict], results: list[dict], fail: Fail) -> None:
    """JUnit and the JSON report describe the same run: the same counts of passed, failed and not run tests
    (a file that failed to load may or may not be a failed test case in JUnit)."""
    tests = [row for row in results if row["runner_status"] != settings.LOAD_ERROR]
    load_failures = len(results) - len(tests)
    expected = Counter("skipped" if row["status"] == "todo" else row["status"] for row in tests)
    found = Counter(row["status"] for row in junit)
    for status in ("passed", "failed", "skipped"):
        extra = found[status] - expected[status]
        if not (0 <= extra <= load_failures if status == "failed" else extra == 0):
            raise fail(settings.JUNIT_FILE, "testcase",
                       f"{found[status]} {status} test cases, but the JSON report has {expected[status]}")


def parse_coverage(data: bytes, fail: Fail) -> list[dict]:
    """The `total` block of a coverage summary: one row per metric; pct "Unknown" becomes None.

    Raises:
        RecordError: naming the coverage file and the metric field.
    """
    file = settings.COVERAGE_FILE
    summary = _json(data, file, fail)
    total = summary.get("total") if isinstance(summary, dict) else None
    if not isinstance(total, dict):
        raise fail(file, "total", "missing: not a json-summary coverage report")
    rows = []
    for metric in settings.COVERAGE_METRICS:
        block = total.get(metric)
        if block is None:
            continue
        if not isinstance(block, dict):
            raise fail(file, f"total.{metric}", "not an object")
        counts = {}
        for key in ("total", "covered", "skipped"):
            value = block.get(key, 0)
            if not _whole(value, 0):
                raise fail(file, f"total.{metric}.{key}", f"expected a whole number >= 0, got {value!r}")
            counts[key] = value
        pct = block.get("pct")
        if pct == "Unknown":
            pct = None
        elif isinstance(pct, bool) or not isinstance(pct, int | float) or not 0 <= pct <= 100:
            raise fail(file, f"total.{metric}.pct", f"expected a percentage 0-100 or \"Unknown\", got {pct!r}")
        rows.append({"metric": metric, **counts, "pct": None if pct is None else float(pct)})
    return rows


def parse_run(files: Mapping[str, bytes], meta: dict, source: str, where: str, record: str,
              test_run_id: str) -> ParsedRun:
    """One run from its files (name -> bytes, e.g. "vitest.json", "coverage/coverage-summary.json").

    Args:
        meta: run.json's fields (parse_run_meta), or the same fields from the CI's API.
        source, where, record: name the source, the folder or artifact, and the run in errors.
        test_run_id: the run's key.

    Raises:
        RecordError: a file is missing, does not parse, or disagrees with another.
    """
    fail = Fail(source, where, record)
    reports = [runner for runner, name in settings.REPORT_FILES.items() if name in files]
    if len(reports) != 1:
        raise fail("", "(files)", "expected exactly one of vitest.json or jest.json, found "
                   + (", ".join(settings.REPORT_FILES[r] for r in reports) or "neither"))
    runner = reports[0]
    if meta["runner"] is not None and meta["runner"] != runner:
        raise fail(settings.RUN_FILE, "runner", f"says {meta['runner']!r} but the report is {runner}.json")
    summary, results = parse_json_report(files[settings.REPORT_FILES[runner]], runner, fail, meta.get("root"))
    has_junit = settings.JUNIT_FILE in files
    if has_junit:
        check_junit(parse_junit(files[settings.JUNIT_FILE], fail), results, fail)
    coverage = parse_coverage(files[settings.COVERAGE_FILE], fail) if settings.COVERAGE_FILE in files else []
    exit_code = meta["exit_code"]
    if exit_code is None:  # no run.json: the report's verdict
        exit_code = 0 if summary["success"] else 1
    wall_s = meta["wall_s"] if meta["wall_s"] is not None else summary["report_wall_s"]
    if wall_s is None:
        raise fail(settings.REPORT_FILES[runner], "startTime", "no wall time: run.json has no wall_s and the "
                   "report no startTime/endTime")
    run = {
        "test_run_id": test_run_id, "runner": runner, "sha": meta["sha"], "branch": meta["branch"],
        "attempt": meta["attempt"], "started_at": meta["started_at"], "exit_code": exit_code, "wall_s": wall_s,
        **{key: summary[key] for key in ("tests_total", "tests_passed", "tests_failed", "tests_skipped",
                                         "tests_todo", "test_files", "files_failed", "suites_reported")},
        "has_junit": has_junit, "has_coverage": bool(coverage), "location": where,
    }
    for position, row in enumerate(results):
        row.update(test_result_id=f"{test_run_id}:{position}", test_run_id=test_run_id,
                   started_at=meta["started_at"], position=position)
    for row in coverage:
        row.update(coverage_id=f"{test_run_id}:{row['metric']}", test_run_id=test_run_id, started_at=meta["started_at"])
    return ParsedRun(run, results, coverage)


def run_key(meta: dict) -> str:
    """The natural key of a run described by run.json: the same run loaded twice gets the same key."""
    started: datetime = meta["started_at"]
    return make_id(meta["runner"], meta["sha"], meta["branch"], meta["attempt"], started.isoformat())
