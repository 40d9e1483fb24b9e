"""What the memory benchmarks share: a command's peak resident memory, its whole process tree summed."""

from __future__ import annotations

import subprocess
import time

import psutil


def peak_rss_mb(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Run `command`; (peak RSS of it and its children in MB, wall seconds, exit code, stderr)."""
    started = time.monotonic()
    child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    process = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        try:
            tree = [process, *process.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.NoSuchProcess:
            pass
        time.sleep(0.05)
    stderr = child.stderr.read() if child.stderr else ""
    return peak / 1e6, time.monotonic() - started, child.returncode, stderr
