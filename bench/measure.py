"""What the benchmarks share: a scratch folder kept on request, and a command's peak resident memory (its whole
process tree summed)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil


@contextmanager
def scratch_folder(prefix: str, keep: bool) -> Iterator[Path]:
    """A temporary folder for a benchmark's warehouses and files: removed afterwards, or kept (`--keep`) and its
    path printed."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield folder
    finally:
        if keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def peak_rss_mb(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run `command`; (peak RSS of it and its children in MB, wall seconds, exit code, stderr)."""
    # stderr goes to a file, read at the end: a pipe nobody reads while the command runs fills up (64 KB of
    # progress lines) and blocks the command for good.
    with tempfile.TemporaryFile("w+") as log:
        started = time.monotonic()
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=log, text=True)
        process = psutil.Process(child.pid)
        peak = 0
        while child.poll() is None:
            try:
                tree = [process, *process.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.05)
        seconds = time.monotonic() - started
        log.seek(0)
        return peak / 1e6, seconds, child.returncode, log.read()
