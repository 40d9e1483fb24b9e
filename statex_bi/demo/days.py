"""What the day-by-day simulations share: UTC day arithmetic, and a store of generated days on disk.

A sandbox asks for the same days again and again (one timeseries per aggregate, then each week and month):
regenerating a large day each time costs seconds at `--scale 100`, keeping every day costs the memory the
day-by-day generation saves. `DayStore` writes each day's columns once to a `.npz` file in a temporary
folder (removed with the store) and reads them back.
"""

from __future__ import annotations

import pickle
import shutil
import tempfile
import weakref
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import numpy as np


def epoch(day: date) -> float:
    """Midnight UTC of `day`, in epoch seconds."""
    return datetime.combine(day, time(), UTC).timestamp()


def days_between(first: float, stop: float) -> list[date]:
    """The UTC days that [first, stop) (epoch seconds) touches."""
    if stop <= first:
        return []
    day = datetime.fromtimestamp(first, UTC).date()
    last = datetime.fromtimestamp(stop, UTC).date()
    if epoch(last) == stop:
        last -= timedelta(days=1)
    return [day + timedelta(days=i) for i in range((last - day).days + 1)]


class DayStore:
    """Named numpy columns per (kind, day), on disk once generated."""

    def __init__(self, prefix: str) -> None:
        self._prefix = prefix
        self._folder: Path | None = None

    def _path(self, kind: str, day: date) -> Path:
        if self._folder is None:
            self._folder = Path(tempfile.mkdtemp(prefix=f"statex-demo-{self._prefix}-"))
            weakref.finalize(self, shutil.rmtree, self._folder, True)
        return self._folder / f"{kind}-{day.isoformat()}.pickle"

    def get(self, kind: str, day: date) -> dict[str, np.ndarray] | None:
        path = self._path(kind, day)
        if not path.exists():
            return None
        with path.open("rb") as stored:
            return pickle.load(stored)  # noqa: S301 - written by this process, in its own folder

    def put(self, kind: str, day: date, columns: dict[str, np.ndarray]) -> None:
        path = self._path(kind, day)
        partial = path.with_suffix(".part")
        with partial.open("wb") as out:
            pickle.dump(columns, out, protocol=pickle.HIGHEST_PROTOCOL)
        partial.replace(path)  # whole or absent: the server's threads may read it at once


def concat_days(days: list[date], columns_of: Callable[[date], dict[str, np.ndarray]], first: float,
                stop: float) -> dict[str, np.ndarray]:
    """The days' columns concatenated, keeping the rows whose `start` is in [first, stop) (starts sorted within
    each day, days in order). Each day is asked for twice, sizes then contents, so that only the result and one
    day are held at once, never every day's arrays beside their concatenation."""
    spans: list[tuple[int, int]] = []
    kinds: dict[str, np.dtype] = {}
    for day in days:
        columns = columns_of(day)
        spans.append(tuple(np.searchsorted(columns["start"], [first, stop], side="left")))
        kinds = kinds or {name: values.dtype for name, values in columns.items()}
    total = sum(hi - lo for lo, hi in spans)
    result = {name: np.empty(total, dtype=kind) for name, kind in kinds.items()}
    at = 0
    for day, (lo, hi) in zip(days, spans, strict=True):
        if hi > lo:
            for name, values in columns_of(day).items():
                result[name][at: at + hi - lo] = values[lo:hi]
            at += hi - lo
    return result
