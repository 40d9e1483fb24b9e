"""Constants of the GitHub Actions source: endpoints, paging, rate limits and the raw tables' columns."""

from __future__ import annotations

from statex_bi.sources.test_reports import settings as reports

SOURCE = "github"
DEFAULT_API_URL = "https://api.github.com"
API_VERSION = "2022-11-28"
RUNS_PATH = "/repos/{repo}/actions/runs"
ATTEMPT_PATH = "/repos/{repo}/actions/runs/{run_id}/attempts/{attempt}"
ARTIFACTS_PATH = "/repos/{repo}/actions/runs/{run_id}/artifacts"
RUNS_ENDPOINT = "actions/runs"
ARTIFACTS_ENDPOINT = "actions/runs/{run_id}/artifacts"
PER_PAGE = 100  # the endpoints' maximum
DEFAULT_ARTIFACT_PATTERN = "test-report*"  # $GITHUB_TEST_ARTIFACTS: which artifacts hold test runs
DEFAULT_HISTORY_DAYS = 90  # first load without --start (GitHub keeps artifacts 90 days by default)
WINDOW_DAYS = 31  # runs are listed a month of creation dates at a time: GitHub caps a filtered list at 1,000
RERUN_LOOKBACK_DAYS = 14  # a run created this long before the cursor can still be re-run (a new attempt)

REQUEST_MAX_ATTEMPTS = 6
RETRY_BACKOFF_S = 1.0
MAX_RATE_LIMIT_WAIT_S = 3600.0  # the primary limit resets hourly: waiting until x-ratelimit-reset is at most that
REQUEST_TIMEOUT_S = 60.0

RUN_COLUMNS: dict[str, dict] = {
    "run_id": {"data_type": "bigint"},
    "run_attempt": {"data_type": "bigint"},
    "workflow_id": {"data_type": "bigint"},
    "workflow_name": {"data_type": "text"},
    "event": {"data_type": "text"},
    "head_sha": {"data_type": "text"},
    "head_branch": {"data_type": "text"},
    "status": {"data_type": "text"},
    "conclusion": {"data_type": "text"},
    "run_started_at": {"data_type": "timestamp", "timezone": False},
    "created_at": {"data_type": "timestamp", "timezone": False},
    "updated_at": {"data_type": "timestamp", "timezone": False},
}
GITHUB_RUN_COLUMNS: dict[str, dict] = {
    "run_id": {"data_type": "bigint"},
    "run_attempt": {"data_type": "bigint"},
    "artifact_id": {"data_type": "bigint"},
    "artifact_name": {"data_type": "text"},
}
WORKFLOW_RUNS = "workflow_runs"
COLUMNS: dict[str, dict[str, dict]] = {
    WORKFLOW_RUNS: RUN_COLUMNS,
    reports.TEST_RUNS: {**reports.COLUMNS[reports.TEST_RUNS], **GITHUB_RUN_COLUMNS},
    reports.TEST_RESULTS: reports.COLUMNS[reports.TEST_RESULTS],
    reports.COVERAGE: reports.COLUMNS[reports.COVERAGE],
}
