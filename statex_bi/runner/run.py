"""`statex-bi run PARAMS`: run a params file's report notebooks and publish them under outputs/<run_id>/.

1. Read and validate the params file; refuse secret parameters and a malformed $SENTRY_DSN before
   anything runs; work out the period.
2. Open the warehouse read-write (waiting up to --wait seconds for a lock), read each source's
   watermark and close it again: notebooks open it read-only from other processes, and DuckDB allows
   one writing process or several reading ones. The models are not rebuilt here: every ingest (and
   `statex-bi build`) builds and tests them with dbt, so a run reads models whose tests passed.
3. Reserve the run folder outputs/<run_id> (created atomically: two runs started in the same second
   get different ids); the run writes into its hidden work folder outputs/.<run_id>.partial.
4. Run each notebook under papermill in a process of its own, --jobs at a time, with the params
   file's cell and notebook timeouts (statex_bi.runner.pool), in a private staging folder
   (statex_bi.runner.staging), and export its HTML there as soon as it finishes, while the others run.
5. The steps after the notebooks (RunContext.after_notebooks), each run even if an earlier one failed:
   publish (search every staged file for secret values; a file holding one is deleted and its
   notebook fails; the rest moves into the run folder), metrics (load each report's published
   metrics into monitoring.monitoring_metrics, replacing this run id's rows for it), alerts
   (evaluate the params file's alert rules on them, statex_bi.alerts: opened and resolved alerts go
   to monitoring.monitoring_alerts), notify (send them to the routed channels; a channel that fails
   fails the run), sentry (report failed notebooks to $SENTRY_DSN). Notebooks whose metadata sets
   `statex_bi.runs_after_reports` (the executive summary) run after this as a second batch, with
   its own publish and metrics steps, so they read this run's KPIs and alerts.
6. Always publish the lineage page (built in staging, scanned), write manifest.json, put the work
   folder in the place of outputs/<run_id> and rebuild outputs/index.html and metrics.html.

A full disk stops the run with DiskFullError (one line, exit code 1): the work folder is deleted and
outputs/ is left as it was before the run, earlier pages and index included.

Exit code: 0 only when every notebook run this time succeeded and nothing leaked or failed; 1 otherwise.
Invalid params, secret parameters, a malformed DSN and a locked warehouse raise a StatexError (the
CLI prints it). SIGTERM and Ctrl-C stop the run: every notebook process and kernel is killed, the
staging folder is deleted and nothing of this run is published.

Notebook processes come from multiprocessing (statex_bi.runner.pool): a script that calls
`run_params` must do so under `if __name__ == "__main__":`, as with any multiprocessing code.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import nbformat

from statex_bi import __version__, warehouse
from statex_bi.alerts.hook import record_alerts, send_notifications
from statex_bi.alerts.lifecycle import Event
from statex_bi.config import WAIT_ENV, db_path, outputs_dir, secret_env_values
from statex_bi.exceptions import DiskFullError, ParamsError, SidecarError, StatexError
from statex_bi.periods import Period
from statex_bi.publish import SIDECAR_ENV, read_sidecar
from statex_bi.runner import execute, pdf, pool, staging
from statex_bi.runner import manifest as manifests
from statex_bi.runner.export import export_html, notebook_title, warm_up_exporter
from statex_bi.runner.index import write_index
from statex_bi.runner.lineage import LINEAGE_PAGE
from statex_bi.runner.metrics import replace_metrics
from statex_bi.runner.params import ReportParams, load
from statex_bi.runner.sentry import check_dsn, report_failures
from statex_bi.runner.staging import FILES_ENV, Stage, previous_files
from statex_bi.runner.status import FAILED, SUCCEEDED, Outcome, decide
from statex_bi.secrets import redact, refuse_secret_parameters
from statex_bi.transform import build as project

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


def _read_notebook(path: Path) -> Any | None:
    """A notebook, or None when it is missing or was cut off mid-write (a killed process)."""
    try:
        return nbformat.read(path, as_version=4)
    except (OSError, ValueError):
        return None


@dataclass
class RunContext:
    """One invocation: what is run, where it stages and publishes, and what has finished."""

    params: ReportParams
    period: Period
    run_id: str
    run_dir: Path
    staging: Path
    db: Path
    watermarks: dict[str, str | None]
    console: Console
    progress_tty: str | None
    secrets: dict[str, str]
    wait: float = 0.0
    pdf: bool = False
    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    published: dict[str, list[dict[str, Any]] | None] = field(default_factory=dict)
    leaks: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    alerts: dict[str, Any] = field(default_factory=dict)
    # The notebooks of the batch just run; the first batch evaluates the alert rules, the last reports to Sentry.
    batch: list[str] = field(default_factory=list)
    first_batch: bool = True
    last_batch: bool = True
    alert_events: list[Event] | None = None

    def stage(self, stem: str) -> Stage:
        return Stage(stem, self.staging / stem)

    def task(self, stem: str) -> pool.Task:
        """Prepare one notebook's child process: its staging folder, its job."""
        stage = self.stage(stem)
        stage.create()
        notebook = self.params.notebook_path(stem)
        env = {**os.environ, "STATEX_BI_DB": str(self.db), WAIT_ENV: str(self.wait),
               SIDECAR_ENV: str(stage.metrics), FILES_ENV: str(stage.files)}
        job = execute.Job(
            notebook=str(notebook),
            output=str(stage.ipynb),
            parameters=self.params.parameters(stem, self.period, self.run_id),
            cell_timeout=self.params.cell_timeout,
            cwd=str(notebook.parent),
            env=env,
            log=str(stage.log),
            scratch=str(stage.scratch),
            progress_tty=self.progress_tty,
            runner_pid=os.getpid(),
        )
        return pool.Task(stem, job, self.params.notebook_timeout)

    def started(self, task: pool.Task) -> None:
        self.console.info(f"start   {task.name}")

    def finished(self, done: pool.Finished) -> None:
        """Decide the notebook's status, export its HTML and read its metrics, as soon as it ends.

        Never raises: a failure of the runner's own work fails this notebook, not the run's bookkeeping.
        """
        stem = done.task.name
        try:
            outcome, title, warnings = self._finish(stem, done)
        except Exception as exc:  # noqa: BLE001 - recorded against the notebook, the run goes on
            outcome = Outcome(FAILED, type(exc).__name__, str(exc), None, f"the runner could not finish it: {exc}")
            title, warnings = f"{self.params.title}: {stem}", []
            self.published[stem] = None
        line = f"{stem} {outcome.status} in {done.seconds:.1f} s"
        if outcome.status == SUCCEEDED:
            self.console.info(f"done    {line}")
        else:
            self.console.failure(f"FAILED  {line}: {outcome.message}")
        self.entries[stem] = {
            "status": outcome.status,
            "title": title,
            "html": None,
            "ipynb": None,
            "metrics": None,
            "log": None,
            "files": [],
            "started_at": done.started_at.isoformat(),
            "finished_at": done.finished_at.isoformat(),
            "duration_s": round(done.seconds, 2),
            "parameters": self.params.parameters(stem, self.period, self.run_id),
            "error": outcome.error,
            "warnings": warnings,
            "period": {"start": self.period.start.isoformat(), "end": self.period.end.isoformat()},
            "watermarks": self.watermarks,
        }

    def _finish(self, stem: str, done: pool.Finished) -> tuple[Outcome, str, list[str]]:
        stage = self.stage(stem)
        result_file, warnings_file = stage.scratch / execute.RESULT, stage.scratch / execute.WARNINGS
        progress_file = stage.scratch / execute.PROGRESS
        result = json.loads(result_file.read_text()) if result_file.exists() else None
        warnings = json.loads(warnings_file.read_text()) if warnings_file.exists() else []
        for warning in warnings:
            self.console.info(f"warning {stem}: {warning}")
        progress = progress_file.read_text().strip() if progress_file.exists() else ""
        source = nbformat.read(self.params.notebook_path(stem), as_version=4)
        executed = _read_notebook(stage.ipynb) if stage.ipynb.exists() else None
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
        outcome, records = self._export(outcome, executed or source, title, stage)
        self.published[stem] = records
        return outcome, title, warnings

    def _export(
        self, outcome: Outcome, nb: Any, title: str, stage: Stage
    ) -> tuple[Outcome, list[dict[str, Any]] | None]:
        """Export the HTML and read the sidecar; either failing makes the notebook failed."""
        records = None
        if outcome.status == SUCCEEDED:
            try:
                records = read_sidecar(stage.metrics)
            except SidecarError as exc:
                message = f"its published metrics are invalid: {redact(str(exc), self.secrets)}"
                outcome = Outcome(FAILED, "SidecarError", message, None, message)
        if records is None:
            stage.metrics.unlink(missing_ok=True)  # what a failed report published is not kept
        try:
            export_html(nb, stage.html, f"{title} · {self.period}", outcome.message)
        except Exception as exc:  # a report whose page cannot be built is a failed report, not a crashed run
            stage.html.unlink(missing_ok=True)
            outcome = Outcome(FAILED, type(exc).__name__, str(exc), None, f"HTML export failed: {exc}")
            records = None
        return outcome, records

    # The steps after every notebook has finished, in order. Each runs even when an earlier one
    # failed (its error is recorded in the manifest and fails the run); the manifest and the index
    # are written last, whatever happened.
    def after_notebooks(self) -> list[tuple[str, Callable[[], None]]]:
        alerting = self.first_batch and self.params.alerts is not None
        return [
            ("publish", self.publish),
            *([("pdf", self.write_pdfs)] if self.pdf else []),
            ("metrics", self.load_metrics),
            *([("alerts", self.evaluate_alerts), ("notify", self.notify_alerts)] if alerting else []),
            *([("sentry", self.report_failures)] if self.last_batch else []),
        ]

    def _batch_entries(self) -> dict[str, dict[str, Any]]:
        return {stem: entry for stem, entry in self.entries.items() if stem in self.batch}

    def publish(self) -> None:
        """Scan each notebook's staged files; move those without a secret into the run folder."""
        earlier = (manifests.read(self.run_dir) or {}).get("notebooks", {})
        for stem, entry in self._batch_entries().items():
            stage = self.stage(stem)
            published, leaks = staging.publish(stage, self.run_dir, self.secrets, previous_files(earlier.get(stem)))
            for key in ("html", "ipynb", "metrics", "log"):
                name = stage.relative(getattr(stage, key))
                entry[key] = name if name in published else None
            entry["files"] = [name for name in published if name.startswith(f"{stage.files.name}/")]
            for leak in leaks:
                self._withhold(stem, entry, str(leak.path), leak.variable)

    def _withhold(self, stem: str, entry: dict[str, Any], relative: str, variable: str) -> None:
        message = f"the value of ${variable} appears in {relative}; the file was deleted, not published"
        if entry["status"] == SUCCEEDED:
            entry["status"] = FAILED
            entry["error"] = {"ename": "SecretLeakError", "evalue": message, "cell": None, "message": message}
        self.published[stem] = None
        self.leaks.append({"notebook": stem, "file": relative, "variable": variable, "action": "deleted"})
        self.console.failure(f"SECRET  {stem}: {message}")

    def write_pdfs(self) -> None:
        """Print each published report page to a PDF (only what the secret scan let through)."""
        pdf.write_pdfs(self.run_dir, self._batch_entries(), self.console.info, self.console.failure)

    def load_metrics(self) -> None:
        with warehouse.writer(self.db, wait=self.wait) as con:
            batch = {stem: self.published[stem] for stem in self.batch if stem in self.published}
            loaded = replace_metrics(con, self.run_id, self.period, batch)
        for stem, count in loaded.items():
            self.entries[stem]["metrics_loaded"] = count

    def evaluate_alerts(self) -> None:
        """Evaluate the alert rules on this run's KPIs and record the alerts opened and resolved."""
        self.alerts, self.alert_events = record_alerts(
            self.params.alerts, params=self.params.name, run_id=self.run_id, period=self.period, db=self.db,
            info=self.console.info, wait=self.wait,
        )

    def notify_alerts(self) -> None:
        """Send the opened and resolved alerts to their channels; a failed channel fails the run."""
        if self.alert_events is None:
            return  # the alerts step failed and says so; there is nothing to send
        self.errors += send_notifications(
            self.params.alerts, self.alert_events, self.alerts, self.secrets, self.console.info, self.console.failure
        )

    def report_failures(self) -> None:
        failures = {stem: e for stem, e in self.entries.items() if e["status"] != SUCCEEDED}
        report_failures(self.run_id, self.params.name, failures, self.secrets)


def _watermarks(db: Path, wait: float) -> dict[str, str | None]:
    """Each source's newest data, read with the warehouse opened read-write, then let go of it.

    Notebooks open it read-only from other processes, and DuckDB allows one writing process or
    several reading ones.
    """
    with warehouse.writer(db, wait=wait) as con:
        return warehouse.watermarks(con)


def _runs_late(path: Path) -> bool:
    """Whether a notebook asks to run after the others (metadata statex_bi.runs_after_reports)."""
    return bool(nbformat.read(path, as_version=4).metadata.get("statex_bi", {}).get("runs_after_reports"))


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
    pdf: bool = False,
    started: Callable[[], None] | None = None,
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
        wait: seconds to wait for a locked warehouse, at each open (before and after the notebooks).
        pdf: also print each report page to a PDF with headless Chromium (statex_bi.runner.pdf).
        started: called once the run has passed its checks and read the watermarks, before any
            notebook runs (the Sentry Crons in_progress check-in); a refused run never calls it.

    Returns:
        The exit code: 0 when every notebook succeeded and nothing leaked or failed, else 1.

    Raises:
        ParamsError: the params file, --only or --run-id is invalid.
        SecretParameterError: a parameter looks like a secret.
        ConfigError: $SENTRY_DSN is set but malformed.
        WarehouseLockedError: the warehouse stayed locked for `wait` seconds.
    """
    console = Console(quiet)
    spec = load(params)
    secrets = secret_env_values()
    refuse_secret_parameters(spec.parameter_sections(), secrets)
    check_dsn(secrets)
    stems = spec.select(only)
    spec.check_declared(stems)
    period = spec.period(start, end)
    outputs = outputs_dir()
    if run_id is not None and not _RUN_ID.match(run_id):
        raise ParamsError(f"--run-id {run_id!r}: use letters, digits, '.', '_' and '-' (it names a folder)")
    started_at = datetime.now(UTC)
    with pool.exit_on_sigterm():
        pool.start_server()  # its imports overlap reading the watermarks below
        db = db_path()
        marks = _watermarks(db, wait)
        if started is not None:
            started()
        run_dir, created = staging.reserve_run_dir(outputs, spec.name, started_at, run_id)
        work_dir = None
        try:
            work_dir = staging.work_folder(run_dir)
            with tempfile.TemporaryDirectory(prefix="statex-bi-run-") as staging_dir:
                context = RunContext(
                    spec, period, run_dir.name, work_dir, Path(staging_dir), db, marks, console,
                    _progress_tty(quiet), secrets, wait=wait, pdf=pdf,
                )
                # Notebooks that read this run's KPIs and alerts (the executive summary) run in a second
                # batch, after the first batch's KPIs are loaded and the alert rules evaluated on them.
                late = [stem for stem in stems if _runs_late(spec.notebook_path(stem))]
                batches = [batch for batch in ([s for s in stems if s not in late], late) if batch]
                for number, batch in enumerate(batches):
                    context.batch, context.first_batch = batch, batch is not late
                    context.last_batch = number == len(batches) - 1
                    _run_notebooks(context, batch, jobs)
                    _after_notebooks(context)
                return _record(context, stems, started_at, run_dir)
        except BaseException as exc:
            if work_dir is not None:
                shutil.rmtree(work_dir, ignore_errors=True)
            if created and run_dir.is_dir() and not any(run_dir.iterdir()):
                run_dir.rmdir()  # an interrupted run leaves nothing behind
            if staging.disk_full(exc):
                # A copy names its source first and the file it was writing second.
                written = getattr(exc, "filename2", None) or getattr(exc, "filename", None) or outputs
                raise DiskFullError(str(written)) from None
            raise


def _progress_tty(quiet: bool) -> str | None:
    return os.ttyname(sys.stderr.fileno()) if not quiet and sys.stderr.isatty() else None


def _run_notebooks(context: RunContext, stems: list[str], jobs: int | None) -> None:
    jobs = max(1, min(jobs or _cores(), len(stems)))
    context.console.info(
        f"run {context.run_id}: {context.params.title}, {context.period}: {len(stems)} notebook(s), {jobs} at a time"
    )
    with ThreadPoolExecutor(1) as finisher:
        tasks = [context.task(stem) for stem in stems]
        # Finishing a notebook (status, HTML export, metrics) happens on one worker thread, so the pool
        # keeps starting and timing notebooks meanwhile; it first loads nbconvert, its template and
        # the Vega bundle while kernels start: once per run, not once per notebook.
        finishing = [finisher.submit(warm_up_exporter)]

        def finish(done: pool.Finished) -> None:
            finishing.append(finisher.submit(context.finished, done))

        pool.run_all(tasks, jobs, context.started, finish)
        for future in finishing:
            future.result()


def _after_notebooks(context: RunContext) -> None:
    for name, step in context.after_notebooks():
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - recorded; the next steps and the manifest still run
            if staging.disk_full(exc):
                raise  # nothing more can be written: the run stops and publishes nothing
            message = redact(f"{name}: {exc}", context.secrets)
            context.errors.append(message)
            context.console.failure(f"ERROR   {message}")


def _publish_lineage(context: RunContext) -> str | None:
    """Publish the dbt docs site of the last build under the run (lineage/index.html); its relative path.

    The page is built in the staging folder and scanned for secrets like every report before it moves.
    """
    folder = LINEAGE_PAGE.split("/")[0]
    try:
        page = project.publish_docs(context.db, context.staging / folder, wait=context.wait)
    except StatexError as exc:
        context.errors.append(f"lineage not published: {exc}")
        context.console.failure(f"ERROR   lineage not published: {exc}")
        return None
    if page is None:
        context.console.info("lineage not published: the models were never built (statex-bi build)")
        return None
    leak = staging.publish_file(page, context.run_dir / LINEAGE_PAGE, context.secrets)
    if leak is not None:
        message = f"the value of ${leak.variable} appears in {LINEAGE_PAGE}; the file was deleted, not published"
        context.leaks.append({"notebook": None, "file": LINEAGE_PAGE, "variable": leak.variable, "action": "deleted"})
        context.console.failure(f"SECRET  lineage: {message}")
        return None
    return LINEAGE_PAGE


def _record(context: RunContext, stems: list[str], started_at: datetime, run_dir: Path) -> int:
    """Write manifest.json, put the work folder in the place of `run_dir`, rebuild the index; print the
    summary; return the exit code."""
    lineage = _publish_lineage(context)
    failures = [stem for stem in stems if context.entries[stem]["status"] != SUCCEEDED]
    current = {
        "run_id": context.run_id,
        "title": context.params.title,
        "params_file": str(context.params.path),
        "period": {"start": context.period.start.isoformat(), "end": context.period.end.isoformat()},
        "started_at": started_at.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        "git_sha": manifests.git_sha(),
        "package_version": __version__,
        "watermarks": context.watermarks,
        "lineage": lineage,
        "errors": context.errors,
        "secret_leaks": context.leaks,
        "alerts": context.alerts,
        "notebooks": {stem: context.entries[stem] for stem in stems},
    }
    merged = manifests.merge(manifests.read(context.run_dir), current)
    manifests.write(context.run_dir, merged, context.secrets)
    earlier = staging.swap_in(context.run_dir, run_dir)
    try:
        index = write_index(run_dir.parent, context.secrets, wait=context.wait)
    except OSError:
        staging.swap_back(run_dir, earlier)  # the index still lists what it listed: so does outputs/
        raise
    staging.discard(earlier)

    ok = not failures and not context.leaks and not context.errors
    done = len(stems) - len(failures)
    summary = f"run {context.run_id}: {done} of {len(stems)} notebook(s) succeeded -> {run_dir}"
    if ok:
        context.console.info(f"{summary}; index {index}")
    else:
        context.console.failure(summary)
    return 0 if ok else 1
