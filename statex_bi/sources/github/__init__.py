"""GitHub Actions REST API -> raw_github: workflow runs, and the test runs their artifacts hold.

    workflow_runs  `GET /repos/{owner}/{repo}/actions/runs?status=completed&created=A..B` (100 a page,
                   following the Link header's rel="next"; a month of creation dates a query, as GitHub
                   answers at most 1,000 runs to a filtered list); a run retried (`run_attempt` > 1) also gets
                   its earlier attempts from `.../runs/{id}/attempts/{n}`. One row per run and attempt
                   (head_sha, head_branch, run_attempt, conclusion, run_started_at, updated_at), merged
                   on (run_id, run_attempt).
    test_runs, test_results, coverage
                   the same tables as the test-reports source: each artifact whose name matches
                   $GITHUB_TEST_ARTIFACTS (default `test-report*`) is a test run: vitest.json or jest.json,
                   optionally junit.xml, coverage/coverage-summary.json and run.json. Listed by
                   `.../runs/{id}/artifacts`; downloaded from `archive_download_url`, which answers 302
                   to a signed storage URL. An artifact belongs to the attempt that started last before
                   its upload. Merged on (run id, attempt, artifact name).

Incremental on `updated_at`: a run not updated since the last load is skipped without a request for
its attempts or artifacts. GitHub filters runs by creation date only, so each load lists the runs
created since the cursor minus 14 days (a re-run updates an older run). An explicit --start reads the
runs created in [--start, --end] and leaves the cursor alone.

Rate limits: every response's x-ratelimit-remaining is read; at 0 the client waits until
x-ratelimit-reset before the next request, and a 403/429 for an exhausted limit is retried after the
reset (or its Retry-After). 5xx and dropped connections are retried too; a request that still fails
fails the whole load, leaving the tables and cursor as they were. An artifact that does not parse, or
whose run.json disagrees with GitHub, goes to raw_github.quarantine (record = run, attempt and
artifact; field = the file and field at fault); an expired artifact is skipped with a message.

Environment: GITHUB_TOKEN, GITHUB_REPOSITORY (owner/name), GITHUB_API_URL (default
https://api.github.com), GITHUB_TEST_ARTIFACTS.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta

import dlt
from dlt.sources.helpers.rest_client import RESTClient

from statex_bi.exceptions import RecordError
from statex_bi.sources.common import declared_schema, quarantined
from statex_bi.sources.contract import IngestRequest, SourceSpec
from statex_bi.sources.github import helpers, settings
from statex_bi.sources.test_reports import helpers as reports
from statex_bi.sources.test_reports import settings as report_settings


def build(request: IngestRequest, rate_limit: helpers.RateLimit | None = None):
    """The GitHub dlt source for one ingest request.

    Raises:
        ConfigError: $GITHUB_TOKEN or $GITHUB_REPOSITORY is not set.
    """
    config = helpers.read_config()
    session = helpers.make_session(rate_limit or helpers.RateLimit())
    client = helpers.make_client(config, session)

    @dlt.source(schema=declared_schema(settings.SOURCE, settings.COLUMNS), max_table_nesting=0)
    def github():
        return workflow_runs(client, session, config, request)

    return github()


def _window(request: IngestRequest) -> tuple[datetime | None, datetime]:
    now = datetime.now(UTC).replace(tzinfo=None)
    end = now if request.end is None else min(now, datetime.combine(request.end + timedelta(days=1), time()))
    start = None if request.start is None else datetime.combine(request.start, time())
    return start, end


def workflow_runs(client: RESTClient, session, config: helpers.GithubConfig, request: IngestRequest):
    """The `workflow_runs` resource, with the artifacts' test runs routed to their own tables.

    The cursor (the newest `updated_at` loaded) is kept in the resource's dlt state rather than as a dlt
    incremental, whose column hint the routed test tables would inherit; it moves with the load only.
    """
    start, end = _window(request)
    progress: Callable[[str], None] = request.progress

    def runs() -> Iterator:
        for table in settings.COLUMNS:
            yield _to(table, dlt.mark.materialize_table_schema())
        state = dlt.current.resource_state()
        loaded_until = None if start is not None or "updated_at" not in state \
            else datetime.fromisoformat(state["updated_at"])
        since = start or loaded_until or end - timedelta(days=settings.DEFAULT_HISTORY_DAYS)
        created_from = since if start is not None else since - timedelta(days=settings.RERUN_LOOKBACK_DAYS)
        newest = loaded_until
        for window_start, window_end, page in _pages(client, config, created_from, end):
            progress(f"github: workflow runs created {window_start:%Y-%m-%d}..{window_end:%Y-%m-%d}: {len(page)} runs")
            for raw in page:
                for item in _run(raw, since, loaded_until, client, session, config, progress):
                    if isinstance(item, list):  # the validated workflow_runs rows of a run's attempts
                        newest = max([row["updated_at"] for row in item] + ([newest] if newest else []))
                        item = _to(settings.WORKFLOW_RUNS, item)
                    yield item
        if start is None and newest is not None:
            state["updated_at"] = newest.isoformat()

    return dlt.resource(runs, name=settings.WORKFLOW_RUNS, write_disposition="merge")


def _pages(client: RESTClient, config: helpers.GithubConfig, start: datetime,
           end: datetime) -> Iterator[tuple[datetime, datetime, list[dict]]]:
    """Pages of completed runs created in [start, end), a window of WINDOW_DAYS at a time, newest window first.

    GitHub answers at most 1,000 runs to a query filtered by `created`, so a long history is asked for in
    windows (its ranges include both ends, hence the upper bound one second before the next window).
    """
    path = settings.RUNS_PATH.format(repo=config.repository)
    window_end = end
    while window_end > start:
        window_start = max(start, window_end - timedelta(days=settings.WINDOW_DAYS))
        last = window_end - timedelta(seconds=1)
        params = {"status": "completed", "per_page": settings.PER_PAGE,
                  "created": f"{window_start:%Y-%m-%dT%H:%M:%SZ}..{last:%Y-%m-%dT%H:%M:%SZ}"}
        for page in helpers.paginate(client, path, params, "workflow_runs", settings.RUNS_ENDPOINT):
            yield window_start, window_end, page
        window_end = window_start


def _run(raw: dict, since: datetime, loaded_until: datetime | None, client, session, config: helpers.GithubConfig,
         progress: Callable[[str], None]) -> Iterator:
    try:
        latest = helpers.run_row(raw, settings.RUNS_ENDPOINT)
    except RecordError as exc:
        progress(f"github: quarantined: {exc}")
        yield quarantined(settings.SOURCE, exc.endpoint, exc.record_id, exc.field, str(exc), raw)
        return
    if latest["updated_at"] < since or (loaded_until is not None and latest["updated_at"] <= loaded_until):
        return  # loaded already, and not re-run since
    attempts = [latest]
    for number in range(1, latest["run_attempt"]):
        path = settings.ATTEMPT_PATH.format(repo=config.repository, run_id=latest["run_id"], attempt=number)
        attempt = helpers.get_json(client, path, f"actions/runs/{latest['run_id']}/attempts/{number}")
        attempts.append(helpers.run_row(attempt, f"actions/runs/{latest['run_id']}/attempts"))
    yield attempts
    endpoint = settings.ARTIFACTS_ENDPOINT.format(run_id=latest["run_id"])
    path = settings.ARTIFACTS_PATH.format(repo=config.repository, run_id=latest["run_id"])
    for page in helpers.paginate(client, path, {"per_page": settings.PER_PAGE}, "artifacts", endpoint):
        for artifact in page:
            if fnmatch.fnmatchcase(str(artifact.get("name")), config.artifact_pattern):
                yield from _artifact(artifact, attempts, session, config, progress)


def _artifact(artifact: dict, attempts: list[dict], session, config: helpers.GithubConfig,
              progress: Callable[[str], None]) -> Iterator:
    run_id = attempts[0]["run_id"]
    name = artifact.get("name")
    if artifact.get("expired"):
        progress(f"github: run {run_id}: artifact {name} has expired; its test run cannot be loaded")
        return
    endpoint = f"actions/artifacts/{artifact.get('id')}/zip"
    uploaded = helpers.timestamp(artifact.get("created_at"), endpoint, f"artifact {artifact.get('id')}", "created_at")
    run = helpers.attempt_of(uploaded, attempts)
    record = f"run {run_id} attempt {run['run_attempt']} artifact {name}"
    fail = reports.Fail(settings.SOURCE, f"{endpoint} ({name})", record)
    data = helpers.download(session, artifact.get("archive_download_url"), config.token, endpoint)
    try:
        files = helpers.read_zip(data, fail)
        test_run_id = reports.make_id(settings.SOURCE, run_id, run["run_attempt"], name)
        parsed = helpers.artifact_run(files, run, artifact, fail, test_run_id, record)
    except RecordError as exc:
        progress(f"github: quarantined: {exc}")
        payload = {"run_id": run_id, "run_attempt": run["run_attempt"], "artifact": artifact}
        yield quarantined(settings.SOURCE, exc.endpoint, exc.record_id, exc.field, str(exc), payload)
        return
    # One marked batch per table: hints per row would cost dlt a schema update per test.
    yield _to(report_settings.TEST_RUNS, [parsed.run])
    yield _to(report_settings.TEST_RESULTS, parsed.results)
    if parsed.coverage:
        yield _to(report_settings.COVERAGE, parsed.coverage)


def _to(table: str, rows):
    keys = ("run_id", "run_attempt") if table == settings.WORKFLOW_RUNS else report_settings.PRIMARY_KEYS[table]
    hints = dlt.mark.make_hints(table_name=table, write_disposition="merge", primary_key=keys, merge_key=(),
                                file_format=report_settings.FILE_FORMAT)
    return dlt.mark.with_hints(rows, hints, create_table_variant=True)


SPEC = SourceSpec(name="github", build=build, watermark_sql="SELECT max(updated_at) FROM raw_github.workflow_runs")
