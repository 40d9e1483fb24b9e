"""`statex-bi run PARAMS`: run a params file's report notebooks and publish them under outputs/<run_id>/.

1. Read and validate the params file; refuse secret parameters and a malformed $SENTRY_DSN before
   anything runs; work out the period.
2. Open the warehouse read-write (waiting up to --wait seconds for a lock), read each source's
   watermark and close it again: notebooks open it read-only from other processes, and DuckDB allows
   one writing process or several reading ones. The models are not rebuilt here: every ingest (and
   `statex-bi build`) builds and tests them with dbt, so a run reads models whose tests passed.
3. Remove what runs killed outright left behind (staging.sweep_abandoned). Reserve the run folder
   outputs/<run_id> (created atomically: two runs started in the same second get different ids);
   the run writes into its hidden work folder outputs/.<run_id>.partial.
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

import os
import re
import shutil
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import nbformat

from statex_bi import __version__, warehouse
from statex_bi.config import db_path, outputs_dir, secret_env_values
from statex_bi.exceptions import DiskFullError, ParamsError, StatexError
from statex_bi.runner import manifest as manifests
from statex_bi.runner import pool, staging
from statex_bi.runner.context import Console, RunContext
from statex_bi.runner.export import warm_up_exporter
from statex_bi.runner.index import write_index
from statex_bi.runner.lineage import LINEAGE_PAGE
from statex_bi.runner.params import load
from statex_bi.runner.sentry import check_dsn
from statex_bi.runner.status import SUCCEEDED
from statex_bi.secrets import redact, refuse_secret_parameters
from statex_bi.transform import build as project

_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,119}$")


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


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
        staging.sweep_abandoned(outputs)
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
