"""Writable copies of a warehouse built once for many tests, with the state that goes with it."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_with_state(warehouse: Path, folder: Path) -> Path:
    """`warehouse` copied into `folder` under its own name, with its dbt state (the last build's manifest, so a
    build of the copy compares the project with it) and dlt state (cursors), when it has them."""
    folder.mkdir(parents=True, exist_ok=True)
    copy = folder / warehouse.name
    shutil.copyfile(warehouse, copy)
    for state in (f".{warehouse.stem}.dbt", f".{warehouse.stem}.dlt"):
        if (warehouse.parent / state).exists():
            shutil.copytree(warehouse.parent / state, folder / state, symlinks=True)
    return copy
