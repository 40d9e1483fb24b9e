"""What the session's tests share across xdist workers: a folder per thing built once, under a file lock."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

BUILT = ".built"


def shared_root(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> Path:
    """The session's folder that every xdist worker sees (the base of their own temporary folders)."""
    base = tmp_path_factory.getbasetemp()
    return base if worker_id == "master" else base.parent


@contextmanager
def built_once(tmp_path_factory: pytest.TempPathFactory, worker_id: str, name: str) -> Iterator[tuple[Path, bool]]:
    """`name`'s shared folder and whether the caller is to build it: the first to ask gets True and builds while
    the others wait on the lock. It counts as built when that block ends without an error; after an error, the
    next to ask builds it again."""
    root = shared_root(tmp_path_factory, worker_id)
    folder = root / name
    with (root / f"{name}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        first = not (folder / BUILT).exists()
        folder.mkdir(exist_ok=True)
        yield folder, first
        if first:
            (folder / BUILT).touch()
