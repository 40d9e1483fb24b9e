"""What every source package offers the pipeline: `SPEC = SourceSpec(...)`, built for an `IngestRequest`.

The contract lives with the sources so that a source never imports the pipeline (`statex_bi.ingest`)
that runs it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any


def _print_progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class IngestRequest:
    """What the user asked for: an optional inclusive date window, a full refresh flag, input file or folder."""

    start: date | None = None
    end: date | None = None
    full_refresh: bool = False
    file: Path | None = None
    dir: Path | None = None  # input folder, for folder sources such as billing
    progress: Callable[[str], None] = field(default=_print_progress)


@dataclass(frozen=True)
class SourceSpec:
    """How to load one source.

    Attributes:
        name: the CLI name, also `raw_<name>` (dashes become underscores) as the dataset.
        build: returns the dlt source or resource for a request.
        watermark_sql: one value: the newest date or timestamp of data this source holds.
        bookkeeping: tables that record the load itself (files read, flags), not data: not counted as rows loaded.
        failures_sql: rows (what, reason) of the load whose id is the one `?` that fail the ingest although
            other data loaded, e.g. a file whose every row was quarantined.
    """

    name: str
    build: Callable[[IngestRequest], Any]
    watermark_sql: str
    bookkeeping: tuple[str, ...] = ()
    failures_sql: str | None = None

    @property
    def dataset(self) -> str:
        return "raw_" + self.name.replace("-", "_")
