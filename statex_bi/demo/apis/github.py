"""GitHub Actions REST API over the simulated CI (docs.github.com/rest/actions, API version 2022-11-28).

What it speaks:
- `GET /repos/{owner}/{repo}/actions/runs`: `status` (completed, success, failure, ...), `branch`,
  `head_sha`, `created` (`A..B`, `>=A`, `<=B`, `>A`, `<B` or a day; dates or ISO date-times),
  `per_page` (1-100, default 30), `page`. Newest first. Body `{"total_count", "workflow_runs": [...]}`;
  a `Link` header with `prev`, `next`, `first` and `last` pages. Each run shows its latest attempt.
- `GET /repos/{owner}/{repo}/actions/runs/{id}/attempts/{n}`: the run as of attempt n.
- `GET /repos/{owner}/{repo}/actions/runs/{id}/artifacts`: every attempt's artifacts (paged alike),
  `{"total_count", "artifacts": [...]}`.
- `GET /repos/{owner}/{repo}/actions/artifacts/{id}/zip`: `302 Found` to a signed storage URL on the same
  loopback server (`/_storage/...`, no token needed, as the real blob storage), which serves the zip.
- Auth `Authorization: Bearer TOKEN` (or `token TOKEN`); else 401 `{"message": "Bad credentials"}`.
- Rate limits: `x-ratelimit-limit/-remaining/-used/-reset/-resource` on every API response; a request over
  the limit gets 403 `API rate limit exceeded` until the window resets (`rate_limit`, `rate_window_s`).
  Faults (sandbox.py) are injected as for every sandbox.
"""

from __future__ import annotations

import hashlib
import io
import threading
import time
import zipfile
from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode

from statex_bi.demo.ci import Attempt, CiData, WorkflowRun
from statex_bi.demo.ci_reports import report_files
from statex_bi.demo.sandbox import Request, Response, Sandbox

TOKEN = "ghp_sandboxStatexToken0000000000000000"
REPOSITORY = "statex/statex-app"
WORKFLOW_ID = 161335
WORKFLOW_NAME = "CI"
DOCS = "https://docs.github.com/rest"
REPO_PATH = r"/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/actions"


def build(world, rate_limit: int = 5000, rate_window_s: int = 3600) -> Sandbox:
    """The GitHub sandbox serving the world's CI runs (not started)."""
    return serve(world.ci, rate_limit, rate_window_s)


def environment(url: str) -> dict[str, str]:
    """The variables that point the GitHub connector at the sandbox."""
    return {"GITHUB_TOKEN": TOKEN, "GITHUB_REPOSITORY": REPOSITORY, "GITHUB_API_URL": url}


def _iso(moment: datetime) -> str:
    return moment.replace(microsecond=0).isoformat() + "Z"


class _Limiter:
    """GitHub's primary rate limit: `limit` requests per fixed window; over it, 403 until the reset."""

    def __init__(self, limit: int, window_s: int) -> None:
        self.limit, self.window_s = limit, window_s
        self._lock = threading.Lock()
        self._window = 0
        self._used = 0
        self._seen: dict[int, tuple[int, int]] = {}  # id(request) -> (used, reset)
        self.refused = 0

    def admit(self, request: Request) -> bool:
        window = int(time.time() // self.window_s)
        with self._lock:
            if window != self._window:
                self._window, self._used = window, 0
            allowed = self._used < self.limit
            self._used += allowed
            self.refused += not allowed
            self._seen[id(request)] = (self._used, (window + 1) * self.window_s)
        return allowed

    def headers(self, request: Request, status: int) -> dict[str, str]:
        with self._lock:
            seen = self._seen.pop(id(request), None)
        if seen is None:  # storage downloads and unauthenticated requests
            return {}
        used, reset = seen
        return {"x-ratelimit-limit": str(self.limit), "x-ratelimit-remaining": str(max(0, self.limit - used)),
                "x-ratelimit-used": str(used), "x-ratelimit-reset": str(reset), "x-ratelimit-resource": "core"}


def _error(status: int) -> dict:
    messages = {401: "Bad credentials", 403: "API rate limit exceeded for user ID 1.", 404: "Not Found",
                422: "Validation Failed", 500: "Server Error", 503: "Service Unavailable"}
    return {"message": messages.get(status, "Error"), "documentation_url": DOCS, "status": str(status)}


def serve(ci: CiData, rate_limit: int = 5000, rate_window_s: int = 3600) -> Sandbox:
    """A GitHub sandbox over simulated CI runs (not started)."""
    limiter = _Limiter(rate_limit, rate_window_s)

    def auth(request: Request) -> Response | None:
        header = request.headers.get("authorization", "")
        if header not in (f"Bearer {TOKEN}", f"token {TOKEN}"):
            return Response(401, _error(401))
        if not limiter.admit(request):
            return Response(403, {**_error(403), "documentation_url": f"{DOCS}/overview/rate-limits-for-the-rest-api"})
        return None

    sandbox = Sandbox("github", auth=auth, error_body=_error, headers=limiter.headers)
    sandbox.limiter = limiter
    runs = sorted(ci.runs, key=lambda run: run.created_at, reverse=True)
    by_id = {run.run_id: run for run in ci.runs}
    artifacts: dict[int, tuple[WorkflowRun, Attempt, int]] = {}  # artifact id -> run, attempt, suite run index
    for run in ci.runs:
        for attempt in run.attempts:
            for index in range(len(attempt.suite_runs)):
                artifacts[run.run_id * 10 + (attempt.number - 1) * 2 + index] = (run, attempt, index)
    signatures = {artifact_id: hashlib.sha256(f"{artifact_id}".encode()).hexdigest()[:20] for artifact_id in artifacts}

    def repo_ok(request: Request) -> bool:
        return f"{request.match['owner']}/{request.match['repo']}" == REPOSITORY

    @sandbox.route("GET", REPO_PATH + r"/runs")
    def list_runs(request: Request) -> Response:
        if not repo_ok(request):
            return Response(404, _error(404))
        try:
            selected = [run for run in runs if _matches(run, request)]
        except ValueError as exc:
            return Response(422, {**_error(422), "message": str(exc)})
        return _page(request, selected, "workflow_runs", lambda run: _run_json(request, run, run.attempts[-1]))

    @sandbox.route("GET", REPO_PATH + r"/runs/(?P<run_id>\d+)/attempts/(?P<attempt>\d+)")
    def get_attempt(request: Request) -> Response:
        run = by_id.get(int(request.match["run_id"]))
        number = int(request.match["attempt"])
        if not repo_ok(request) or run is None or not 1 <= number <= len(run.attempts):
            return Response(404, _error(404))
        return Response(200, _run_json(request, run, run.attempts[number - 1]))

    @sandbox.route("GET", REPO_PATH + r"/runs/(?P<run_id>\d+)/artifacts")
    def list_artifacts(request: Request) -> Response:
        run = by_id.get(int(request.match["run_id"]))
        if not repo_ok(request) or run is None:
            return Response(404, _error(404))
        own = sorted((aid for aid, (r, _, _) in artifacts.items() if r is run), reverse=True)
        return _page(request, own, "artifacts", lambda aid: _artifact_json(request, aid, *artifacts[aid]))

    @sandbox.route("GET", REPO_PATH + r"/artifacts/(?P<artifact_id>\d+)/zip")
    def download(request: Request) -> Response:
        artifact_id = int(request.match["artifact_id"])
        if not repo_ok(request) or artifact_id not in artifacts:
            return Response(404, _error(404))
        location = f"{_base(request)}/_storage/artifacts/{artifact_id}.zip?sig={signatures[artifact_id]}"
        return Response(302, b"", {"Location": location}, content_type="text/html")

    @sandbox.route("GET", r"/_storage/artifacts/(?P<artifact_id>\d+)\.zip", public=True)
    def storage(request: Request) -> Response:
        artifact_id = int(request.match["artifact_id"])
        if artifact_id not in artifacts or request.arg("sig") != signatures[artifact_id]:
            return Response(403, b"<Error><Code>AuthenticationFailed</Code></Error>", content_type="application/xml")
        _, attempt, index = artifacts[artifact_id]
        return Response(200, _zip(report_files(attempt.suite_runs[index], ci.tests)), content_type="application/zip")

    return sandbox


def _base(request: Request) -> str:
    return f"http://{request.headers.get('host', '127.0.0.1')}"


def _matches(run: WorkflowRun, request: Request) -> bool:
    status = request.arg("status")
    latest = run.attempts[-1]
    if status and status not in ("completed", latest.conclusion):
        return False
    if request.arg("branch") and request.arg("branch") != run.branch:
        return False
    if request.arg("head_sha") and request.arg("head_sha") != run.sha:
        return False
    created = request.arg("created")
    return not created or _in_range(run.created_at, created)


def _moment(value: str) -> datetime:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _in_range(moment: datetime, spec: str) -> bool:
    """GitHub's date qualifier syntax (`A..B`, `>=A`, ...); a bare day covers that day."""
    try:
        if ".." in spec:
            low, high = spec.split("..", 1)
            return (low in ("", "*") or moment >= _moment(low)) and (high in ("", "*") or moment <= _high(high))
        for operator in (">=", "<=", ">", "<"):
            if spec.startswith(operator):
                bound = _moment(spec[len(operator):])
                return {">=": moment >= bound, "<=": moment <= _high(spec[2:]), ">": moment > bound,
                        "<": moment < bound}[operator]
        return _moment(spec) <= moment <= _high(spec)
    except ValueError as exc:
        raise ValueError(f"created: {spec!r} is not a date range") from exc


def _high(value: str) -> datetime:
    """An upper bound: a bare day includes all of it."""
    return _moment(value) + (timedelta(days=1, microseconds=-1) if len(value) == 10 else timedelta())


def _page(request: Request, items: list, key: str, render) -> Response:
    try:
        per_page = int(request.arg("per_page", "30"))
        page = int(request.arg("page", "1"))
    except ValueError:
        return Response(422, _error(422))
    per_page = min(max(per_page, 1), 100)
    page = max(page, 1)
    chunk = items[(page - 1) * per_page: page * per_page]
    last = max(1, -(-len(items) // per_page))
    links = []
    query = [(k, v) for k, values in request.query.items() if k != "page" for v in values]

    def url(number: int) -> str:
        return f"{_base(request)}{request.path}?{urlencode([*query, ('page', number)])}"

    if page < last:
        links += [f'<{url(page + 1)}>; rel="next"', f'<{url(last)}>; rel="last"']
    if page > 1:
        links += [f'<{url(page - 1)}>; rel="prev"', f'<{url(1)}>; rel="first"']
    headers = {"Link": ", ".join(links)} if links else {}
    return Response(200, {"total_count": len(items), key: [render(item) for item in chunk]}, headers)


def _run_json(request: Request, run: WorkflowRun, attempt: Attempt) -> dict:
    api = f"{_base(request)}/repos/{REPOSITORY}/actions/runs/{run.run_id}"
    return {
        "id": run.run_id, "name": WORKFLOW_NAME, "node_id": f"WFR_{run.run_id}", "head_branch": run.branch,
        "head_sha": run.sha, "path": ".github/workflows/ci.yml", "display_title": f"CI for {run.sha[:7]}",
        "run_number": run.run_number, "event": "push", "status": "completed", "conclusion": attempt.conclusion,
        "workflow_id": WORKFLOW_ID, "url": api, "html_url": f"https://github.com/{REPOSITORY}/actions/runs/{run.run_id}",
        "created_at": _iso(run.created_at), "updated_at": _iso(attempt.updated_at), "run_attempt": attempt.number,
        "run_started_at": _iso(attempt.started_at), "jobs_url": f"{api}/jobs", "logs_url": f"{api}/logs",
        "artifacts_url": f"{api}/artifacts",
        "previous_attempt_url": f"{api}/attempts/{attempt.number - 1}" if attempt.number > 1 else None,
        "head_commit": {"id": run.sha, "tree_id": run.sha[::-1], "message": "Update",
                        "timestamp": _iso(run.created_at)},
    }


def _artifact_json(request: Request, artifact_id: int, run: WorkflowRun, attempt: Attempt, index: int) -> dict:
    suite_run = attempt.suite_runs[index]
    created = suite_run.started_at + timedelta(seconds=suite_run.wall_s + 3)
    api = f"{_base(request)}/repos/{REPOSITORY}/actions/artifacts/{artifact_id}"
    return {
        "id": artifact_id, "node_id": f"MDg6QXJ0aWZhY3Qx{artifact_id}",
        "name": f"test-report-{suite_run.runner}-{attempt.number}",
        "size_in_bytes": 4096 + 300 * len(suite_run.results),
        "url": api, "archive_download_url": f"{api}/zip", "expired": False, "created_at": _iso(created),
        "updated_at": _iso(created), "expires_at": _iso(created + timedelta(days=90)),
        "workflow_run": {"id": run.run_id, "repository_id": 812345, "head_repository_id": 812345,
                         "head_branch": run.branch, "head_sha": run.sha},
    }


def _zip(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return buffer.getvalue()
