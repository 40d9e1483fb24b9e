"""A run's private staging folder, and publishing what passed the secret scan into outputs/<run_id>/.

Each notebook runs into a folder of its own inside the run's staging folder (a temporary directory,
mode 0700, outside outputs/): the executed notebook, its HTML page, its published metrics, its log,
and the files the notebook writes itself into $STATEX_BI_REPORT_FILES. Once every notebook has
finished, every file in there is searched for secrets (statex_bi.secrets.scan); a file that
holds one is deleted, and only the others are moved into the run's work folder, outputs/.<run_id>.partial/
(hidden, on the same disk as outputs/), where the lineage page, the PDFs and manifest.json join them.
Only when all of it is written does the work folder take the place of outputs/<run_id> (one rename;
a re-run's work folder starts as hard links to the earlier files, so nothing is copied). A run that
fails to write (a full disk) or is interrupted deletes its work folder and publishes nothing: its
staging folder goes with it. A run killed outright (SIGKILL, a power cut) cannot: its work folder names
its runner (host and pid, `.owner`), and the next run removes the folders whose runner is gone
(`sweep_abandoned`).
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import re
import shutil
import socket
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from statex_bi.secrets import Leak, scan

# In a work folder: "<host> <pid>" of the run writing it; removed before the folder is published.
OWNER = ".owner"
# The folder a notebook may write files into (CSV extracts, images); published as <stem>_files/.
FILES_ENV = "STATEX_BI_REPORT_FILES"


@dataclass(frozen=True)
class Stage:
    """Where one notebook's run writes: `out` is laid out as the run folder will be."""

    stem: str
    root: Path

    @property
    def scratch(self) -> Path:
        """The child's result.json, progress and warnings.json (never published)."""
        return self.root / "runner"

    @property
    def out(self) -> Path:
        return self.root / "out"

    @property
    def ipynb(self) -> Path:
        return self.out / f"{self.stem}.ipynb"

    @property
    def html(self) -> Path:
        return self.out / f"{self.stem}.html"

    @property
    def metrics(self) -> Path:
        return self.out / f"{self.stem}.metrics.jsonl"

    @property
    def log(self) -> Path:
        return self.out / "logs" / f"{self.stem}.log"

    @property
    def files(self) -> Path:
        return self.out / f"{self.stem}_files"

    def create(self) -> None:
        for folder in (self.scratch, self.log.parent, self.files):
            folder.mkdir(parents=True, exist_ok=True)

    def written(self) -> list[Path]:
        """Every file the notebook's run left in `out`, those the notebook wrote itself included."""
        return sorted(path for path in self.out.rglob("*") if path.is_file() or path.is_symlink())

    def relative(self, path: Path) -> str:
        return path.relative_to(self.out).as_posix()


def previous_files(entry: dict[str, Any] | None) -> list[str]:
    """The files an earlier manifest entry says a notebook published (relative to the run folder)."""
    if not entry:
        return []
    named = [entry.get(key) for key in ("html", "ipynb", "metrics", "log")]
    return sorted({name for name in [*named, *entry.get("files", [])] if isinstance(name, str)})


def _unpublish(run_dir: Path, relative: list[str]) -> None:
    """Delete files of the run folder, and the folders they leave empty (never outside it)."""
    root = run_dir.resolve()
    for name in relative:
        target = (run_dir / name).resolve()
        if root not in target.parents:
            continue
        target.unlink(missing_ok=True)
        for folder in target.parents:
            if folder == root:
                break
            try:
                folder.rmdir()
            except OSError:  # not empty
                break


def disk_full(exc: BaseException) -> bool:
    """Whether an error is a write that found no space left (or the quota used up)."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def reserve_run_dir(outputs: Path, name: str, started: datetime, run_id: str | None) -> tuple[Path, bool]:
    """The run folder: `run_id`'s, or a new one named like 20261127T103000Z-weekly, created atomically.

    Two runs started in the same second get different folders (the later one gets a -2 suffix).

    Returns:
        The folder, and whether this call created it.
    """
    outputs.mkdir(parents=True, exist_ok=True)
    if run_id is not None:
        run_dir = outputs / run_id
        created = not run_dir.exists()
        run_dir.mkdir(exist_ok=True)
        return run_dir, created
    base = f"{started:%Y%m%dT%H%M%SZ}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}"
    for n in itertools.count(1):
        run_dir = outputs / (base if n == 1 else f"{base}-{n}")
        try:
            run_dir.mkdir()
        except FileExistsError:
            continue
        return run_dir, True
    raise AssertionError("unreachable")


def work_folder(run_dir: Path) -> Path:
    """The hidden folder a run writes its outputs into before they replace `run_dir` (see swap_in).

    A re-run's work folder starts as hard links to the earlier run's files: what this run replaces is
    renamed over, never written in place, so the earlier folder stays as it was until the swap.
    """
    work = run_dir.with_name(f".{run_dir.name}.partial")
    shutil.rmtree(work, ignore_errors=True)  # left by a run that was killed
    if any(run_dir.iterdir()):
        shutil.copytree(run_dir, work, symlinks=True, copy_function=_link_or_copy)
    else:
        work.mkdir()
    (work / OWNER).write_text(f"{socket.gethostname()} {os.getpid()}")
    return work


def _runner_alive(work: Path) -> bool:
    """Whether the run that owns a work folder may still be writing it (another host's run: assume so)."""
    try:
        host, pid = (work / OWNER).read_text().split()
        owner = int(pid)
    except (OSError, ValueError):
        return False  # no owner file, or a malformed one: nothing is writing it
    if host != socket.gethostname():
        return True
    try:
        os.kill(owner, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


def sweep_abandoned(outputs: Path) -> list[str]:
    """Remove the work folders of runs killed before they could clean up, and the empty run folders
    reserved for them; a re-run's earlier outputs are never touched.

    Returns:
        The names of the work folders removed.
    """
    removed = []
    for work in sorted(outputs.glob(".*.partial")) if outputs.is_dir() else []:
        if not work.is_dir() or _runner_alive(work):
            continue
        shutil.rmtree(work, ignore_errors=True)
        removed.append(work.name)
        with contextlib.suppress(OSError):  # only an empty one: reserved, never published
            (outputs / work.name[1 : -len(".partial")]).rmdir()
    return removed


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError as exc:
        if disk_full(exc):
            raise
        shutil.copy2(source, target)  # a filesystem without hard links


def swap_in(work: Path, run_dir: Path) -> Path | None:
    """Put the finished work folder in the place of `run_dir` (the empty reserved folder, or the earlier run).

    Returns:
        The earlier run's folder, moved aside under a hidden name (None for a new run): `discard` it
        once the index is written, or `swap_back` if that fails.
    """
    (work / OWNER).unlink(missing_ok=True)
    if not any(run_dir.iterdir()):
        os.replace(work, run_dir)  # rename(2) replaces an empty folder
        return None
    earlier = run_dir.with_name(f".{run_dir.name}.earlier")
    shutil.rmtree(earlier, ignore_errors=True)
    os.replace(run_dir, earlier)
    os.replace(work, run_dir)
    return earlier


def swap_back(run_dir: Path, earlier: Path | None) -> None:
    """Undo `swap_in`: the earlier run's folder back in place, or the new run's folder gone."""
    shutil.rmtree(run_dir)
    if earlier is not None:
        os.replace(earlier, run_dir)


def discard(earlier: Path | None) -> None:
    if earlier is not None:
        shutil.rmtree(earlier, ignore_errors=True)


def publish_file(source: Path, target: Path, secrets: dict[str, str]) -> Leak | None:
    """Scan one staged file; delete it if it holds a secret, else move it to `target` (the work folder)."""
    leaks = scan([source], secrets)
    if leaks:
        source.unlink()
        return leaks[0]
    _move(source, target)
    return None


def _move(source: Path, target: Path) -> None:
    """Move a file into place so that it appears whole: rename, or copy under a hidden name and rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, target)
    except OSError:  # another filesystem (staging lives in the temporary directory)
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, partial)
        os.replace(partial, target)


def publish(stage: Stage, run_dir: Path, secrets: dict[str, str], earlier: list[str]) -> tuple[list[str], list[Leak]]:
    """Scan a notebook's staged files; delete those holding a secret; move the others into `run_dir`.

    Args:
        stage: the notebook's staging folder.
        run_dir: outputs/<run_id>.
        secrets: secret environment values to search for.
        earlier: files a previous run of this notebook under the same run id published; they are
            removed, being replaced.

    Returns:
        The published files (relative to `run_dir`), and the leaks (paths relative to `run_dir`).
    """
    written = stage.written()
    leaks = scan(written, secrets)
    leaked = {leak.path for leak in leaks}
    for path in leaked:
        path.unlink()
    _unpublish(run_dir, earlier)
    published = []
    for path in written:
        if path in leaked or path.is_symlink():  # a link could point anywhere: never published
            continue
        relative = stage.relative(path)
        _move(path, run_dir / relative)
        published.append(relative)
    return published, [Leak(Path(stage.relative(leak.path)), leak.variable) for leak in leaks]
