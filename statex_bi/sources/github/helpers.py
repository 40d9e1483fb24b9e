"""GitHub plumbing: configuration, the REST client (Link paging, x-ratelimit waits), artifacts as test runs."""

from __future__ import annotations

import io
import math
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dlt.sources.helpers.requests import HTTPError, RequestException, Response, Session
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import HeaderLinkPaginator

from statex_bi.config import env
from statex_bi.exceptions import ConfigError, RecordError, SourceError
from statex_bi.sources.common import retrying_session
from statex_bi.sources.github import settings
from statex_bi.sources.sentry.helpers import parse_timestamp
from statex_bi.sources.test_reports import helpers as reports
from statex_bi.sources.test_reports import settings as report_settings


@dataclass(frozen=True)
class GithubConfig:
    token: str
    repository: str  # owner/name
    api_url: str
    artifact_pattern: str


def read_config() -> GithubConfig:
    """The GitHub settings from the environment.

    Returns:
        $GITHUB_TOKEN (actions:read), $GITHUB_REPOSITORY (owner/name), $GITHUB_API_URL (default
        https://api.github.com; GitHub Enterprise: https://HOST/api/v3) and $GITHUB_TEST_ARTIFACTS
        (a glob of the artifact names that hold test runs, default test-report*).

    Raises:
        ConfigError: naming every required variable that is missing or malformed.
    """
    missing = [name for name in ("GITHUB_TOKEN", "GITHUB_REPOSITORY") if env(name) is None]
    if missing:
        raise ConfigError(f"{' and '.join('$' + name for name in missing)} not set; the github source needs a "
                          "token with actions:read and the repository as owner/name (see docs/configuration.md)")
    repository = env("GITHUB_REPOSITORY").strip().strip("/")
    if repository.count("/") != 1:
        raise ConfigError(f"$GITHUB_REPOSITORY must be owner/name, got {repository!r}")
    return GithubConfig(env("GITHUB_TOKEN"), repository, env("GITHUB_API_URL", settings.DEFAULT_API_URL).rstrip("/"),
                        env("GITHUB_TEST_ARTIFACTS", settings.DEFAULT_ARTIFACT_PATTERN))


class RateLimit:
    """Honours GitHub's x-ratelimit-* headers.

    A response saying `x-ratelimit-remaining: 0` makes the client wait until `x-ratelimit-reset`
    (epoch seconds) before it returns, so the next request does not exceed the limit. A 403 or 429 for an
    exhausted limit gets a Retry-After computed from the reset, which the retrying session honours;
    secondary limits send their own Retry-After.
    """

    def __init__(self, sleep: Callable[[float], None] = time.sleep) -> None:
        self.sleep = sleep
        self.waited_s = 0.0

    def _until_reset(self, response: Response) -> float:
        try:
            wait = float(response.headers["x-ratelimit-reset"]) - time.time()
        except (KeyError, ValueError):
            wait = 60.0  # GitHub's advice without a reset: wait at least a minute
        return min(max(wait, 1.0), settings.MAX_RATE_LIMIT_WAIT_S)

    def hook(self, response: Response, *args: Any, **kwargs: Any) -> None:
        if response.headers.get("x-ratelimit-remaining") != "0":
            return
        if response.status_code in (403, 429):
            if not response.headers.get("Retry-After"):
                response.headers["Retry-After"] = str(math.ceil(self._until_reset(response)))
            return
        wait = self._until_reset(response)
        self.waited_s += wait
        self.sleep(wait)


def exhausted(response: Response | None, exception: BaseException | None) -> bool:
    """A retry condition: 403 for an exhausted rate limit is retried (429 and 5xx always are)."""
    return response is not None and response.status_code == 403 and (
        response.headers.get("x-ratelimit-remaining") == "0" or bool(response.headers.get("Retry-After")))


def make_session(rate_limit: RateLimit) -> Session:
    """A requests session that retries 429 / 5xx / rate-limit 403s / dropped connections."""
    session = retrying_session(settings.REQUEST_TIMEOUT_S, settings.REQUEST_MAX_ATTEMPTS, settings.RETRY_BACKOFF_S,
                               settings.MAX_RATE_LIMIT_WAIT_S, retry_condition=exhausted)
    session.hooks["response"].append(rate_limit.hook)
    return session


def make_client(config: GithubConfig, session: Session) -> RESTClient:
    """A REST client that authenticates and pages by the Link header's rel="next"."""
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": settings.API_VERSION}
    return RESTClient(base_url=config.api_url, headers=headers, auth=BearerTokenAuth(config.token), session=session,
                      paginator=HeaderLinkPaginator())


def _raise_for_status(response: Response, *args: Any, **kwargs: Any) -> None:
    response.raise_for_status()


def _source_error(endpoint: str, exc: Exception) -> SourceError:
    if isinstance(exc, HTTPError):
        status = exc.response.status_code
        hint = " (check $GITHUB_TOKEN and $GITHUB_REPOSITORY)" if status in (401, 403, 404) else ""
        return SourceError(settings.SOURCE, endpoint, f"HTTP {status}{hint}: {exc.response.text[:300]}")
    return SourceError(settings.SOURCE, endpoint, f"{type(exc).__name__}: {exc}")


def paginate(client: RESTClient, path: str, params: Mapping[str, Any], selector: str,
             endpoint: str) -> Iterator[list[dict]]:
    """Every page of a list endpoint, following Link rel="next".

    Raises:
        SourceError: a request failed for good (after retries), naming the endpoint and the status.
    """
    try:
        # Hooks given to a request replace the session's: keep the rate-limit hook.
        hooks = {"response": [*client.session.hooks["response"], _raise_for_status]}
        yield from client.paginate(path, params=dict(params), data_selector=selector, hooks=hooks)
    except (HTTPError, RequestException, ValueError) as exc:
        raise _source_error(endpoint, exc) from exc


def get_json(client: RESTClient, path: str, endpoint: str) -> dict:
    """One object (e.g. a run attempt)."""
    try:
        response = client.get(path)
        response.raise_for_status()
        return response.json()
    except (HTTPError, RequestException, ValueError) as exc:
        raise _source_error(endpoint, exc) from exc


def download(session: Session, url: str, token: str, endpoint: str) -> bytes:
    """An artifact's zip: the API answers 302 to a short-lived storage URL, which is followed.

    The token goes to the API only: requests drops the Authorization header when a redirect leaves the
    API's host, as the storage URL is signed.
    """
    try:
        response = session.get(url, headers={"Authorization": f"Bearer {token}"}, allow_redirects=True)
        response.raise_for_status()
    except (HTTPError, RequestException) as exc:
        raise _source_error(endpoint, exc) from exc
    return response.content


def timestamp(value: Any, endpoint: str, record: str, field: str) -> datetime:
    moment = parse_timestamp(value) if isinstance(value, str) else None
    if moment is None:
        raise RecordError(settings.SOURCE, endpoint, record, field, f"not a timestamp: {value!r}")
    return moment


def run_row(run: Mapping[str, Any], endpoint: str) -> dict:
    """A workflow run (one attempt) as a raw_github.workflow_runs row.

    Raises:
        RecordError: a field the models need is missing or malformed.
    """
    record = f"run {run.get('id')} attempt {run.get('run_attempt')}"
    for name in ("id", "run_attempt"):
        if isinstance(run.get(name), bool) or not isinstance(run.get(name), int):
            raise RecordError(settings.SOURCE, endpoint, record, name,
                              f"expected a whole number, got {run.get(name)!r}")
    if not isinstance(run.get("head_sha"), str) or not run["head_sha"]:
        raise RecordError(settings.SOURCE, endpoint, record, "head_sha", "missing")
    return {
        "run_id": run["id"], "run_attempt": run["run_attempt"], "workflow_id": run.get("workflow_id"),
        "workflow_name": run.get("name"), "event": run.get("event"), "head_sha": run["head_sha"],
        "head_branch": run.get("head_branch"), "status": run.get("status"), "conclusion": run.get("conclusion"),
        "run_started_at": timestamp(run.get("run_started_at"), endpoint, record, "run_started_at"),
        "created_at": timestamp(run.get("created_at"), endpoint, record, "created_at"),
        "updated_at": timestamp(run.get("updated_at"), endpoint, record, "updated_at"),
    }


def attempt_of(artifact_created: datetime, attempts: list[dict]) -> dict:
    """The attempt an artifact was uploaded by: the last one started at or before the upload.

    The artifacts endpoint lists every attempt's artifacts without saying which attempt made them.
    """
    started = [row for row in attempts if row["run_started_at"] <= artifact_created]
    if not started:  # uploaded before any attempt started: clocks disagree; the first attempt
        return min(attempts, key=lambda row: row["run_attempt"])
    return max(started, key=lambda row: row["run_started_at"])


def read_zip(data: bytes, fail: reports.Fail) -> dict[str, bytes]:
    """The test-run files in an artifact zip (at its top level or under one folder)."""
    wanted = {report_settings.RUN_FILE, *report_settings.REPORT_FILES.values(), report_settings.JUNIT_FILE,
              report_settings.COVERAGE_FILE}
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise fail("", "(zip)", f"not a zip archive: {exc}") from None
    files = {}
    with archive:
        for name in archive.namelist():
            for candidate in wanted:
                if name == candidate or name.endswith("/" + candidate) and name.count("/") == candidate.count("/") + 1:
                    # zipfile stops at the size a member declares (a CRC error past it), so checking the
                    # declared size bounds what a zip bomb can expand to in memory.
                    size = archive.getinfo(name).file_size
                    if size > report_settings.MAX_FILE_BYTES:
                        raise fail(candidate, "(file)", f"{size / 1e6:,.0f} MB, over the "
                                   f"{report_settings.MAX_FILE_BYTES / 1e6:,.0f} MB a test report file may hold; "
                                   "it was not read")
                    try:
                        files[candidate] = archive.read(name)
                    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError) as exc:
                        raise fail(candidate, "(zip)", f"cannot be extracted: {exc}") from None
    return files


def artifact_run(files: dict[str, bytes], run: dict, artifact: Mapping[str, Any], fail: reports.Fail,
                 test_run_id: str, record: str) -> reports.ParsedRun:
    """The test run an artifact holds, under the workflow run attempt that uploaded it.

    run.json in the artifact is optional: without it the runner comes from the report file, the exit code
    from the report's verdict, the wall time from the report's own clock and the start from the attempt.
    With it, its sha and attempt must agree with the API's.
    """
    meta = {"runner": None, "sha": run["head_sha"], "branch": run["head_branch"] or "", "attempt": run["run_attempt"],
            "started_at": run["run_started_at"], "exit_code": None, "wall_s": None, "root": None}
    if report_settings.RUN_FILE in files:
        given = reports.parse_run_meta(files.pop(report_settings.RUN_FILE), fail)
        for name, api_value in (("sha", run["head_sha"]), ("attempt", run["run_attempt"])):
            if given[name] != api_value:
                raise fail(report_settings.RUN_FILE, name, f"says {given[name]!r} but GitHub says {api_value!r}")
        meta.update({key: given[key] for key in ("runner", "started_at", "exit_code", "wall_s", "root")})
    parsed = reports.parse_run(files, meta, settings.SOURCE, fail.where, record, test_run_id)
    parsed.run.update(run_id=run["run_id"], run_attempt=run["run_attempt"], artifact_id=artifact.get("id"),
                      artifact_name=artifact.get("name"))
    return parsed
