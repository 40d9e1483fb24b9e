"""`statex-bi run PARAMS`: run a params file's report notebooks and publish them under outputs/<run_id>/.

1. Read and validate the params file, refuse secret parameters, work out the period and the run id.
2. Open the warehouse read-write (waiting up to --wait seconds for a lock), read each source's
   watermark and close it again: notebooks open it read-only from other processes, and DuckDB allows
   one writing process or several reading ones. The models are not rebuilt here: every ingest (and
   `statex-bi build`) builds and tests them with dbt, so a run reads models whose tests passed.
3. Run each notebook under papermill in a process of its own, --jobs at a time, with the params
   file's cell and notebook timeouts (statex_bi.reports.pool), and export its HTML in this process as
   soon as it finishes, while the others run.
4. Load each report's published metrics into monitoring.monitoring_metrics, replacing the rows this
   run id already had for it.
5. Search every file the run wrote for the values of secret-looking environment variables. A file
   that holds one is deleted (not published) and its notebook counts as failed; the manifest and the
   console name the file and the variable, never the value.
6. Report failed notebooks to Sentry ($SENTRY_DSN), write manifest.json and rebuild outputs/index.html.

Exit code: 0 only when every notebook run this time succeeded and nothing leaked or failed; 1 otherwise.
Invalid params, secret parameters and a locked warehouse raise a StatexError (the CLI prints it).

Notebook processes come from multiprocessing (statex_bi.reports.pool): a script that calls
`run_params` must do so under `if __name__ == "__main__":`, as with any multiprocessing code.
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import nbformat

from statex_bi import __version__, warehouse
from statex_bi.config import db_path, outputs_dir, secret_env_values
from statex_bi.exceptions import ParamsError, WarehouseError
from statex_bi.periods import Period
from statex_bi.publish import SIDECAR_ENV, read_sidecar
from statex_bi.reports import execute, pool
from statex_bi.reports import manifest as manifests
from statex_bi.reports.export import export_html, notebook_title, warm_up_exporter
from statex_bi.reports.index import write_index
from statex_bi.reports.metrics import replace_metrics
from statex_bi.reports.params import ReportParams, load
from statex_bi.reports.secrets import redact, refuse_secret_parameters, scan
from statex_bi.reports.sentry import report_failures
from statex_bi.reports.status import FAILED, SUCCEEDED, Outcome, decide

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


class Console:
    """Progress on stderr: one line per notebook as it starts and ends; only failures when quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def failure(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)


def _new_run_id(name: str, outputs: Path) -> str:
    """A sortable id such as 20261127T103000Z-weekly, unique under `outputs`."""
    base = f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}"
    candidate, n = base, 1
    while (outputs / candidate).exists():
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def _read_notebook(path: Path) -> Any | None:
    """A notebook, or None when it is missing or was cut off mid-write (a killed process)."""
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None


@dataclass
class RunContext:
    """One invocation: what is run, where outputs and scratch files go, and what has finished."""

    params: ReportParams
    period: Period
    run_id: str
    run_dir: Path
    work: Path
    db: Path
    watermarks: dict[str, str | None]
    console: Console
    progress_tty: str | None
    secrets: dict[str, str]
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    published: dict[str, list[dict[str, Any]] | None] = field(default_factory=dict)

    def files(self, stem: str) -> dict[str, Path]:
        scratch = self.work / stem
        return {
            "ipynb": self.run_dir / f"{stem}.ipynb",
            "html": self.run_dir / f"{stem}.html",
            "log": self.run_dir / "logs" / f"{stem}.log",
            "scratch": scratch,
            "result": scratch / execute.RESULT,
            "progress": scratch / execute.PROGRESS,
            "warnings": scratch / execute.WARNINGS,
            "metrics": self.run_dir / f"{stem}.metrics.jsonl",
        }

    def task(self, stem: str) -> pool.Task:
        """Prepare one notebook's child process: clear its earlier outputs, describe its job."""
        files = self.files(stem)
        for key in ("ipynb", "html", "log", "metrics"):
            files[key].unlink(missing_ok=True)
        files["scratch"].mkdir(parents=True)
        notebook = self.params.notebook_path(stem)
        job = execute.Job(
            notebook=str(notebook),
            output=str(files["ipynb"]),
            parameters=self.params.parameters(stem, self.period, self.run_id),
            cell_timeout=self.params.cell_timeout,
            cwd=str(notebook.parent),
            env={**os.environ, "STATEX_BI_DB": str(self.db), SIDECAR_ENV: str(files["metrics"])},
            log=str(files["log"]),
            scratch=str(files["scratch"]),
            progress_tty=self.progress_tty,
        )
        return pool.Task(stem, job, self.params.notebook_timeout)

    def started(self, task: pool.Task) -> None:
        self.console.info(f"start   {task.name}")

    def finished(self, done: pool.Finished) -> None:
        """Decide the notebook's status, export its HTML and read its metrics, as soon as it ends."""
        stem = done.task.name
        files = self.files(stem)
        result = json.loads(files["result"].read_text()) if files["result"].exists() else None
        warnings = json.loads(files["warnings"].read_text()) if files["warnings"].exists() else []
        for warning in warnings:
            self.console.info(f"warning {stem}: {warning}")
        progress = files["progress"].read_text().strip() if files["progress"].exists() else ""
        source = nbformat.read(self.params.notebook_path(stem), as_version=4)
        executed = _read_notebook(files["ipynb"]) if files["ipynb"].exists() else None
        outcome = decide(
            result=result,
            returncode=done.returncode,
            killed_after=done.killed_after,
            running_index=int(progress) if progress.isdigit() else None,
            executed=executed,
            source=source,
            cell_timeout=self.params.cell_timeout,
        )
        if outcome.status != SUCCEEDED:
            # Error texts come from notebook code and could quote a credential: redact before anyone sees them.
            outcome = Outcome(
                outcome.status, outcome.ename, redact(outcome.evalue or "", self.secrets), outcome.cell,
                redact(outcome.message or "", self.secrets),
            )
        title = notebook_title(source, f"{self.params.title}: {stem}")
        outcome, records = self._publish(outcome, executed or source, title, files)
        self.published[stem] = records
        if records is None:
            files["metrics"].unlink(missing_ok=True)  # what a failed report published is not kept
        line = f"{stem} {outcome.status} in {done.seconds:.1f} s"
        if outcome.status == SUCCEEDED:
            self.console.info(f"done    {line}")
        else:
            self.console.failure(f"FAILED  {line}: {outcome.message}")
        self.entries[stem] = {
            "status": outcome.status,
            "title": title,
            "html": files["html"].name if files["html"].exists() else None,
            "ipynb": files["ipynb"].name if files["ipynb"].exists() else None,
            "metrics": files["metrics"].name if files["metrics"].exists() else None,
            "log": f"logs/{files['log'].name}",
            "started_at": done.started_at.isoformat(),
            "finished_at": done.finished_at.isoformat(),
            "duration_s": round(done.seconds, 2),
            "parameters": self.params.parameters(stem, self.period, self.run_id),
            "error": outcome.error,
            "warnings": warnings,
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "watermarks": self.watermarks,
        }

    def _publish(
        self, outcome: Outcome, nb: Any, title: str, files: dict[str, Path]
    ) -> tuple[Outcome, list[dict[str, Any]] | None]:
        """Export the HTML and read the sidecar; either failing makes the notebook failed."""
        records = None
        if outcome.status == SUCCEEDED:
            try:
                records = read_sidecar(files["metrics"])
            except (ValueError, KeyError) as exc:
                message = f"its published metrics are unreadable: {exc}"
                outcome = Outcome(FAILED, "MetricsError", str(exc), None, message)
        try:
            export_html(nb, files["html"], f"{title} · {self.period}", outcome.message)
        except Exception as exc:  # a report whose page cannot be built is a failed report, not a crashed run
            files["html"].unlink(missing_ok=True)
            outcome = Outcome(FAILED, type(exc).__name__, str(exc), None, f"HTML export failed: {exc}")
            records = None
        return outcome, records


def _withhold_leaks(context: RunContext) -> list[dict[str, Any]]:
    """Scan the files the notebooks wrote; delete each leaking one and mark its notebook failed.

    Returns:
        The manifest's leak records (notebook, file, variable, action).
    """
    written = {
        context.run_dir / entry[key]: (stem, key)
        for stem, entry in context.entries.items()
        for key in ("html", "ipynb", "metrics", "log")
        if entry[key]
    }
    records = []
    for leak in scan(list(written), context.secrets):
        stem, key = written[leak.path]
        entry = context.entries[stem]
        relative = entry[key]
        leak.path.unlink(missing_ok=True)
        entry[key] = None
        message = f"the value of ${leak.variable} appears in {relative}; the file was deleted, not published"
        if entry["status"] == SUCCEEDED:
            entry["status"] = FAILED
            entry["error"] = {"ename": "SecretLeakError", "evalue": message, "cell": None, "message": message}
        context.published[stem] = None
        records.append({"notebook": stem, "file": relative, "variable": leak.variable, "action": "deleted"})
        context.console.failure(f"SECRET  {stem}: {message}")
    return records


def run_params(
    params: str | Path,
    *,
    start: date | None = None,
    end: date | None = None,
    only: list[str] | None = None,
    jobs: int | None = None,
    run_id: str | None = None,
    quiet: bool = False,
    wait: float = 0.0,
) -> int:
    """Run a params file's report notebooks and publish them.

    Args:
        params: a YAML path, or a name under params/ such as "weekly".
        start: overrides the period's first day (inclusive).
        end: overrides the period's last day (inclusive).
        only: run only these notebooks (file stems) of the params file.
        jobs: notebooks run at once (default: the number of cores).
        run_id: re-run under this id, replacing its outputs and metrics for the notebooks re-run.
        quiet: print nothing but failures (for cron).
        wait: seconds to wait for a locked warehouse.

    Returns:
        The exit code: 0 when every notebook succeeded and nothing leaked, else 1.

    Raises:
        ParamsError: the params file, --only or --run-id is invalid.
        SecretParameterError: a parameter looks like a secret.
        WarehouseLockedError: the warehouse stayed locked for `wait` seconds.
    """
    console = Console(quiet)
    spec = load(params)
    secrets = secret_env_values()
    refuse_secret_parameters(spec, secrets)
    stems = spec.select(only)
    period = spec.period(start, end)
    outputs = outputs_dir()
    if run_id is not None and not _RUN_ID.match(run_id):
        raise ParamsError(f"--run-id {run_id!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
    run_id = run_id or _new_run_id(spec.name, outputs)
    started_at = datetime.now(UTC)
    pool.start_server()  # its imports overlap reading the watermarks below
    db = db_path()
    with warehouse.writer(db, wait=wait) as con:
        from statex_bi.sources import watermarks

        marks = watermarks(con)

    run_dir = outputs / run_id
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    jobs = max(1, min(jobs or _cores(), len(stems)))
    console.info(f"run {run_id}: {spec.title}, {period}: {len(stems)} notebook(s), {jobs} at a time")
    progress_tty = os.ttyname(sys.stderr.fileno()) if not quiet and sys.stderr.isatty() else None
    with tempfile.TemporaryDirectory(prefix="statex-bi-run-") as work, ThreadPoolExecutor(1) as finisher:
        context = RunContext(spec, period, run_id, run_dir, Path(work), db, marks, console, progress_tty, secrets)
        tasks = [context.task(stem) for stem in stems]
        # Finishing a notebook (status, HTML export, metrics) happens on one worker thread, so the pool
        # keeps starting and timing notebooks meanwhile; it first imports nbconvert while kernels start.
        finishing = [finisher.submit(warm_up_exporter)]

        def finish(done: pool.Finished) -> None:
            finishing.append(finisher.submit(context.finished, done))

        pool.run_all(tasks, jobs, context.started, finish)
        for future in finishing:
            future.result()

    leak_records = _withhold_leaks(context)
    errors = []
    try:
        with warehouse.writer(db, wait=wait) as con:
            loaded = replace_metrics(con, run_id, period, context.published)
        for stem, count in loaded.items():
            context.entries[stem]["metrics_loaded"] = count
    except WarehouseError as exc:
        errors.append(f"metrics not loaded: {exc}")
        console.failure(f"ERROR   metrics not loaded: {exc}")

    failures = {stem: e for stem, e in context.entries.items() if e["status"] != SUCCEEDED}
    report_failures(run_id, spec.name, failures, secrets)

    current = {
        "run_id": run_id,
        "title": spec.title,
        "params_file": str(spec.path),
        "period": {"start": period.start.isoformat(), "end": period.end.isoformat()},
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "git_sha": manifests.git_sha(),
        "package_version": __version__,
        "watermarks": marks,
        "errors": errors,
        "secret_leaks": leak_records,
        "notebooks": {stem: context.entries[stem] for stem in stems},
    }
    merged = manifests.merge(manifests.read(run_dir), current)
    manifests.write(run_dir, merged, secrets)
    index = write_index(outputs, secrets)

    ok = not failures and not leak_records and not errors
    summary = f"run {run_id}: {len(stems) - len(failures)} of {len(stems)} notebook(s) succeeded -> {run_dir}"
    if ok:
        console.info(f"{summary}; index {index}")
    else:
        console.failure(summary)
    return 0 if ok else 1
