"""One run's state and the steps after its notebooks: stage, finish (status, HTML, metrics), publish,
PDFs, metrics, alerts, notifications, Sentry (the orchestration is `statex_bi.runner.run`)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat

from statex_bi import warehouse
from statex_bi.alerts.hook import record_alerts, send_notifications
from statex_bi.alerts.lifecycle import Event
from statex_bi.config import WAIT_ENV
from statex_bi.exceptions import SidecarError
from statex_bi.periods import Period
from statex_bi.publish import SIDECAR_ENV, read_sidecar
from statex_bi.runner import execute, pdf, pool, staging
from statex_bi.runner import manifest as manifests
from statex_bi.runner.export import export_html, notebook_title
from statex_bi.runner.metrics import replace_metrics
from statex_bi.runner.params import ReportParams
from statex_bi.runner.sentry import report_failures
from statex_bi.runner.staging import FILES_ENV, Stage, previous_files
from statex_bi.runner.status import FAILED, SUCCEEDED, Outcome, decide
from statex_bi.secrets import redact


class Console:
    """Progress on stderr: one line per notebook as it starts and ends; only failures when quiet."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr, flush=True)

    def failure(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)


def read_notebook(path: Path) -> Any | None:
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
        executed = read_notebook(stage.ipynb) if stage.ipynb.exists() else None
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
