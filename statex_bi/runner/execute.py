"""One notebook under papermill, in a process of its own (the body of each child the pool starts).

The runner starts one process per notebook, so a notebook that hangs or kills its kernel cannot take
the others (or the runner) down with it, and a notebook timeout can kill the whole process tree.
Children are forked from a multiprocessing fork server that has already imported papermill (see
statex_bi.runner.pool), which saves each notebook a Python start and about a second of imports.

A child only records what happened; the runner decides the status (statex_bi.runner.status),
because papermill's own metadata is wrong after timeouts and dead kernels. In the job's scratch
folder the child writes:

- `warnings.json` before running: parameters the notebook's parameters cell does not declare;
- `progress`: the index (in the executed notebook) of the cell being run, rewritten as each starts;
- `result.json` when papermill returns or raises.

Its stdout and stderr (papermill's warnings, kernel noise) go to the notebook's log file; papermill's
cell progress bar goes to the runner's terminal when it has one.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statex_bi.runner import kernel
from statex_bi.runner.kernel import WarmKernelManager

_WATCH_SECONDS = 0.5
RESULT = "result.json"
PROGRESS = "progress"
WARNINGS = "warnings.json"


@dataclass(frozen=True)
class Job:
    """Everything one child needs (pickled to it by multiprocessing, never written to disk).

    Attributes:
        notebook: the notebook as committed.
        output: where papermill writes the executed notebook.
        parameters: what papermill injects.
        cell_timeout: seconds one cell may run.
        cwd: the kernel's working directory (the notebook's folder, as in JupyterLab).
        env: the child's and kernel's whole environment.
        log: file receiving the child's stdout and stderr.
        scratch: folder for result.json, progress and warnings.json.
        progress_tty: terminal for papermill's progress bar, or None for no bar.
        runner_pid: the runner; the child kills itself (and so its kernel) when it is gone.
    """

    notebook: str
    output: str
    parameters: dict[str, Any]
    cell_timeout: float
    cwd: str
    env: dict[str, str]
    log: str
    scratch: str
    progress_tty: str | None = None
    runner_pid: int | None = None


def _write_json(path: Path, value: Any) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps(value), encoding="utf-8")
    partial.replace(path)


def undeclared_parameters(notebook: str, parameters: dict[str, Any]) -> list[str]:
    """Warnings for parameters the notebook's `parameters` cell does not define (papermill's inspection)."""
    from papermill import inspect_notebook

    declared = inspect_notebook(notebook)
    name = Path(notebook).name
    if not declared:
        return [f"{name} has no cell tagged 'parameters'; papermill adds the values in a cell at the top"]
    return [
        f"parameter {key!r} is not in the parameters cell of {name} (papermill sets it anyway)"
        for key in parameters
        if key not in declared
    ]


def execute(job: Job) -> dict[str, Any]:
    """Run the notebook; return what happened as {"outcome": ..., and details}.

    Outcomes: "completed" (papermill returned), "error" (a cell raised, or papermill itself failed),
    "cell_timeout" (nbclient's per-cell timeout), "dead_kernel".
    """
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    progress = Path(job.scratch) / PROGRESS

    def on_cell_start(cell: Any, cell_index: int) -> None:
        progress.write_text(str(cell_index), encoding="utf-8")

    try:
        papermill.execute_notebook(
            job.notebook,
            job.output,
            parameters=job.parameters,
            execution_timeout=job.cell_timeout,
            progress_bar=job.progress_tty is not None,
            on_cell_start=on_cell_start,
            # Kill the kernel once the last cell is done instead of a graceful shutdown (about 2 s).
            shutdown_kernel="immediate",
            # The kernel is this process's waiting copy, imports done (statex_bi.runner.kernel).
            kernel_manager_class=WarmKernelManager,
        )
    except PapermillExecutionError as exc:
        return {"outcome": "error", "ename": exc.ename, "evalue": exc.evalue, "cell_index": exc.cell_index}
    except CellTimeoutError:
        return {"outcome": "cell_timeout"}
    except DeadKernelError:
        return {"outcome": "dead_kernel"}
    except Exception as exc:  # any other failure (no such kernel, kernel startup timeout) is reported, not raised
        logging.getLogger(__name__).exception("papermill failed")
        return {"outcome": "error", "ename": type(exc).__name__, "evalue": str(exc).splitlines()[0] if str(exc) else ""}
    return {"outcome": "completed"}


def _follow_runner(runner_pid: int) -> None:
    """Kill this process once the runner is gone (killed with SIGKILL, say); its kernel follows it.

    The child's parent is the fork server, which stays up as long as any child does, so the child
    watches the runner itself.
    """
    import psutil

    while True:
        time.sleep(_WATCH_SECONDS)
        try:
            gone = psutil.Process(runner_pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            gone = True
        if gone:
            os.kill(os.getpid(), signal.SIGKILL)


def child_main(job: Job) -> None:
    """The child process: detach, redirect output to the log, run the notebook, write the result."""
    # A session of its own: the runner kills this process group (and the kernel's) on timeout, and
    # Ctrl-C in the runner's terminal reaches the runner, which then kills the children itself.
    os.setsid()
    log = os.open(job.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.close(log)
    os.chdir(job.cwd)
    os.environ.clear()
    os.environ.update(job.env)
    logging.basicConfig(
        level=logging.WARNING, stream=sys.__stderr__, format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
    if job.progress_tty:
        sys.stderr = open(job.progress_tty, "w", buffering=1)  # noqa: SIM115 - lives as long as the process
    kernel.prepare()  # fork the kernel-to-be now, before papermill starts any thread
    if job.runner_pid is not None:
        threading.Thread(target=_follow_runner, args=(job.runner_pid,), daemon=True).start()
    scratch = Path(job.scratch)
    try:
        _write_json(scratch / WARNINGS, undeclared_parameters(job.notebook, job.parameters))
        _write_json(scratch / RESULT, execute(job))
    finally:
        kernel.release()
