"""The runner's verdict on one notebook: succeeded, failed, timed_out or kernel_died.

Decided from what the runner saw (the child's result file, its exit, whether the runner killed it for
the notebook timeout, the executed notebook's outputs), not from papermill's metadata, which marks
every cell "completed" after a cell timeout and records nothing after a dead kernel.

A notebook that calls `sys.exit()` stops at that cell, and papermill reports success. We call it
**failed** ("notebook exited early (SystemExit 0) at cell N"): a report missing its later cells is not
a good report, whatever the exit code.

Cell numbers are 1-based positions in the notebook as committed, markdown cells included (the cell
papermill injects is not counted).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SUCCEEDED = "succeeded"
FAILED = "failed"
TIMED_OUT = "timed_out"
KERNEL_DIED = "kernel_died"


@dataclass(frozen=True)
class Outcome:
    """A notebook's status, and for anything but success what went wrong."""

    status: str
    ename: str | None = None
    evalue: str | None = None
    cell: int | None = None
    message: str | None = None

    @property
    def error(self) -> dict[str, Any] | None:
        """The error summary kept in the manifest (None when the notebook succeeded)."""
        if self.status == SUCCEEDED:
            return None
        return {"ename": self.ename, "evalue": self.evalue, "cell": self.cell, "message": self.message}


def _tags(cell: Any) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _injected_position(source: Any) -> int | None:
    """Where papermill puts its cell in the executed notebook (None: it replaced one already there)."""
    cells = source.cells if source is not None else []
    if any("injected-parameters" in _tags(c) for c in cells):
        return None
    for index, cell in enumerate(cells):
        if "parameters" in _tags(cell):
            return index + 1
    return 0


def source_cell(executed_index: int | None, source: Any) -> int | None:
    """The 1-based cell number in the committed notebook of a cell index in the executed notebook."""
    if executed_index is None:
        return None
    injected = _injected_position(source)
    if injected is None:
        return executed_index + 1
    if executed_index == injected:
        return None
    return executed_index + (0 if executed_index < injected else -1) + 1


def _where(cell: int | None) -> str:
    return f"cell {cell}" if cell is not None else "the injected parameters cell"


def _first_error(executed: Any) -> tuple[int, dict] | None:
    """The first error output of a cell not tagged `raises-exception`, with the cell's index."""
    for index, cell in enumerate(executed.cells):
        if cell.cell_type != "code" or "raises-exception" in _tags(cell):
            continue
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                return index, output
    return None


def decide(
    *,
    result: dict[str, Any] | None,
    returncode: int | None,
    killed_after: float | None,
    running_index: int | None,
    executed: Any,
    source: Any,
    cell_timeout: float,
) -> Outcome:
    """Classify one notebook run.

    Args:
        result: what the child wrote (see execute.execute), or None when it wrote nothing.
        returncode: the child's exit code (negative: killed by that signal).
        killed_after: seconds after which the runner killed it for the notebook timeout, else None.
        running_index: index (executed notebook) of the last cell that started, else None.
        executed: the executed notebook as read back, or None when missing or unreadable.
        source: the notebook as committed (to number cells as its author sees them).
        cell_timeout: the per-cell timeout in seconds, for the message.

    Returns:
        The Outcome.
    """
    running = source_cell(running_index, source)
    if killed_after is not None:
        where = f"stopped in {_where(running)}" if running_index is not None else "before the first cell ran"
        return Outcome(
            TIMED_OUT, "NotebookTimeout", f"ran longer than the {killed_after:g} s notebook timeout", running,
            f"the notebook ran longer than the {killed_after:g} s notebook timeout ({where})",
        )
    outcome = (result or {}).get("outcome")
    if outcome == "cell_timeout":
        return Outcome(
            TIMED_OUT, "CellTimeoutError", f"ran longer than the {cell_timeout:g} s cell timeout", running,
            f"{_where(running)} ran longer than the {cell_timeout:g} s cell timeout",
        )
    if outcome == "dead_kernel":
        return Outcome(
            KERNEL_DIED, "DeadKernelError", "the kernel died", running,
            f"the kernel died while running {_where(running)} (out of memory, os._exit or a crash)",
        )
    if outcome == "error":
        cell = source_cell(result.get("cell_index"), source) if result.get("cell_index") is not None else running
        ename, evalue = result.get("ename") or "Error", result.get("evalue") or ""
        return Outcome(FAILED, ename, evalue, cell, f"{ename}: {evalue} ({_where(cell)})")
    if outcome != "completed":
        return Outcome(
            FAILED, "RunnerProcessError", f"exit code {returncode}", running,
            f"the notebook's process ended (exit code {returncode}) without reporting a result",
        )
    if executed is None:
        return Outcome(FAILED, "MissingOutput", "no executed notebook", None, "papermill wrote no executed notebook")
    error = _first_error(executed)
    if error is None:
        return Outcome(SUCCEEDED)
    index, output = error
    cell = source_cell(index, source)
    ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
    if ename == "SystemExit":
        return Outcome(FAILED, ename, evalue, cell, f"notebook exited early (SystemExit {evalue}) at {_where(cell)}")
    return Outcome(FAILED, ename, evalue, cell, f"{ename}: {evalue} ({_where(cell)})")
