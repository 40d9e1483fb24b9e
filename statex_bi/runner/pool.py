"""Run notebook child processes N at a time, each under a whole-notebook timeout.

Children come from a multiprocessing *fork server*: a clean process spawned once per runner (not a
fork of the runner, which has DuckDB loaded) that imports papermill and nbclient up front, and what
report notebooks import (pandas, duckdb, altair, statex_bi, ipykernel), then forks one child per
notebook; each child forks its kernel from itself (statex_bi.runner.kernel), so no notebook pays
for those imports. `start_server()` launches the server early, so its imports overlap the model build.

Each child starts a session of its own (execute.child_main); its kernel runs in yet another one
(jupyter_client does that to interrupt the kernel's process group), so on timeout the pool kills the
process group of the child *and* of every descendant, kernel included: killing only the child would
leave the kernel running and holding the warehouse open. On SIGTERM, Ctrl-C or any exception the
pool kills every running child tree the same way. If the runner is killed outright (SIGKILL), each
child notices within half a second and kills itself, and its kernel, which asked Linux for SIGKILL
when its parent dies (kernel.die_with_parent), goes with it; then the fork server, left without
clients, exits.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psutil

from statex_bi.runner.execute import Job, child_main

POLL_SECONDS = 0.05
# What the server imports once per run: papermill for the children, and for their kernels
# (statex_bi.runner.kernel) what report notebooks import.
PRELOAD = [
    *("statex_bi.runner.execute", "statex_bi.runner.kernel", "papermill", "nbclient", "jupyter_client", "nbformat"),
    *("IPython", "ipykernel.kernelapp", "ipykernel.ipkernel", "pandas", "duckdb", "altair"),
    *("statex_bi.charts", "statex_bi.publish", "statex_bi.display", "statex_bi.lab", "statex_bi.kpis"),
]
_CONTEXT = multiprocessing.get_context("forkserver")


def start_server() -> None:
    """Start the fork server (if not running yet) so its imports run while the runner does other work."""
    _CONTEXT.set_forkserver_preload(PRELOAD)
    multiprocessing.forkserver.ensure_running()


@dataclass
class Task:
    """One notebook to run: its name, its job and its whole-notebook timeout in seconds."""

    name: str
    job: Job
    timeout: float


@dataclass
class Finished:
    """How a child process ended."""

    task: Task
    returncode: int | None
    killed_after: float | None
    started_at: datetime
    finished_at: datetime
    seconds: float


@dataclass
class _Running:
    task: Task
    process: multiprocessing.process.BaseProcess
    started: float = field(default_factory=time.monotonic)
    started_at: datetime = field(default_factory=lambda: datetime.now(UTC))


def kill_tree(pid: int) -> None:
    """SIGKILL a process, its descendants and their process groups; wait until they are gone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    own_group = os.getpgrp()
    for proc in procs:
        try:
            group = os.getpgid(proc.pid)
            if group != own_group:
                os.killpg(group, signal.SIGKILL)
            proc.kill()
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    psutil.wait_procs(procs, timeout=5)


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def exit_on_sigterm() -> Iterator[None]:
    """Turn SIGTERM (cron, systemd, timeout(1), kill) into SystemExit, so cleanup code runs as for Ctrl-C.

    Only in the main thread (elsewhere signal handlers cannot be set; nothing changes).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _launch(task: Task) -> _Running:
    process = _CONTEXT.Process(target=child_main, args=(task.job,), name=f"statex-bi {task.name}")
    process.start()
    return _Running(task, process)


def run_all(
    tasks: list[Task],
    jobs: int,
    on_start: Callable[[Task], None],
    on_finish: Callable[[Finished], None],
) -> None:
    """Run every task's child process, at most `jobs` at a time, calling back as each starts and ends.

    A finished child's slot is refilled before `on_finish` runs (the runner may export HTML there), so
    a slow export never leaves a core idle. On any exception, KeyboardInterrupt included, and on
    SIGTERM (cron, systemd, timeout(1)), every running child tree is killed before re-raising: an
    orphaned kernel would keep the warehouse open.
    """
    start_server()
    pending = deque(tasks)
    running: list[_Running] = []
    with exit_on_sigterm():
        _run(pending, running, jobs, on_start, on_finish)


def _run(
    pending: deque[Task],
    running: list[_Running],
    jobs: int,
    on_start: Callable[[Task], None],
    on_finish: Callable[[Finished], None],
) -> None:
    try:
        while pending or running:
            done = []
            for child in list(running):
                killed_after = None
                if child.process.exitcode is None and time.monotonic() - child.started > child.task.timeout:
                    kill_tree(child.process.pid)
                    killed_after = child.task.timeout
                    child.process.join(timeout=10)
                if child.process.exitcode is None:
                    continue
                running.remove(child)
                code, seconds = child.process.exitcode, time.monotonic() - child.started
                done.append(Finished(child.task, code, killed_after, child.started_at, datetime.now(UTC), seconds))
            while pending and len(running) < max(jobs, 1):
                task = pending.popleft()
                on_start(task)
                running.append(_launch(task))
            for finished in done:
                on_finish(finished)
            if not done:
                time.sleep(POLL_SECONDS)
    except BaseException:
        for child in running:
            kill_tree(child.process.pid)
            child.process.join(timeout=10)
        raise
