"""Constants of the test-report sources: file names, statuses and the raw tables' columns.

`test-reports` (folders) and `github` (workflow artifacts) load the same three tables, so that the
models union them: `test_runs` (one row per run of a suite), `test_results` (one row per test per
run) and `coverage` (one row per coverage metric per run, from `coverage/coverage-summary.json`).
The last two repeat their run's `started_at`, so that each table states its own freshness.
"""

from __future__ import annotations

SOURCE = "test-reports"
RUN_FILE = "run.json"
REPORT_FILES = {"vitest": "vitest.json", "jest": "jest.json"}  # runner -> the JSON reporter's file
JUNIT_FILE = "junit.xml"
COVERAGE_FILE = "coverage/coverage-summary.json"
RUNNERS = tuple(REPORT_FILES)
# The largest report file read (whole: JSON and XML are parsed in memory, several times their size).
# A Vitest JSON report of 20,000 tests is about 10 MB.
MAX_FILE_BYTES = 64_000_000

# The runners' test statuses -> ours. Vitest: passed/failed/skipped/pending/todo/disabled; Jest:
# passed/failed/pending (= skipped)/todo/disabled/focused. "focused" is a passed `it.only` sibling.
STATUSES = {
    "passed": "passed",
    "failed": "failed",
    "skipped": "skipped",
    "pending": "skipped",
    "disabled": "skipped",
    "focused": "skipped",
    "todo": "todo",
}
COVERAGE_METRICS = ("lines", "statements", "functions", "branches")
# A test file that failed to load becomes one failed row with this name and runner_status.
LOAD_FAILURE = "(test file failed to load)"
LOAD_ERROR = "load_error"
MESSAGE_CHARS = 2000  # of a load failure's message

TEST_RUNS = "test_runs"
TEST_RESULTS = "test_results"
COVERAGE = "coverage"

COLUMNS: dict[str, dict[str, dict]] = {
    TEST_RUNS: {
        "test_run_id": {"data_type": "text"},
        "runner": {"data_type": "text"},
        "sha": {"data_type": "text"},
        "branch": {"data_type": "text"},
        "attempt": {"data_type": "bigint"},
        "started_at": {"data_type": "timestamp", "timezone": False},
        "exit_code": {"data_type": "bigint"},
        "wall_s": {"data_type": "double"},
        "tests_total": {"data_type": "bigint"},
        "tests_passed": {"data_type": "bigint"},
        "tests_failed": {"data_type": "bigint"},
        "tests_skipped": {"data_type": "bigint"},
        "tests_todo": {"data_type": "bigint"},
        "test_files": {"data_type": "bigint"},
        "files_failed": {"data_type": "bigint"},
        "suites_reported": {"data_type": "bigint"},
        "has_junit": {"data_type": "bool"},
        "has_coverage": {"data_type": "bool"},
        "location": {"data_type": "text"},
    },
    TEST_RESULTS: {
        "test_result_id": {"data_type": "text"},
        "test_run_id": {"data_type": "text"},
        "started_at": {"data_type": "timestamp", "timezone": False},
        "position": {"data_type": "bigint"},
        "file": {"data_type": "text"},
        "full_name": {"data_type": "text"},
        "title": {"data_type": "text"},
        "ancestor_titles": {"data_type": "text"},
        "test_key": {"data_type": "text"},
        "status": {"data_type": "text"},
        "runner_status": {"data_type": "text"},
        "duration_ms": {"data_type": "double"},
        "message": {"data_type": "text"},
    },
    COVERAGE: {
        "coverage_id": {"data_type": "text"},
        "test_run_id": {"data_type": "text"},
        "started_at": {"data_type": "timestamp", "timezone": False},
        "metric": {"data_type": "text"},
        "total": {"data_type": "bigint"},
        "covered": {"data_type": "bigint"},
        "skipped": {"data_type": "bigint"},
        "pct": {"data_type": "double"},
    },
}
# Parquet, not dlt's default INSERT statements: a year of CI is ~100k test rows, which INSERT VALUES
# loads into DuckDB many times slower and with gigabytes of memory.
FILE_FORMAT = "parquet"
PRIMARY_KEYS = {TEST_RUNS: "test_run_id", TEST_RESULTS: "test_result_id", COVERAGE: "coverage_id"}
