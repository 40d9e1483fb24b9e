"""A run's private staging folder, and publishing what passed the secret scan into outputs/<run_id>/.

Each notebook runs into a folder of its own inside the run's staging folder (a temporary directory,
mode 0700, outside outputs/): the executed notebook, its HTML page, its published metrics, its log,
and the files the notebook writes itself into $STATEX_BI_REPORT_FILES. Once every notebook has
finished, every file in there is searched for secrets (statex_bi.secrets.scan); a file that
holds one is deleted, and only the others are moved into outputs/<run_id>/, each appearing whole
(written under a hidden name, then renamed). An interrupted run publishes nothing: its staging folder
goes with it.
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from statex_bi.secrets import Leak, scan

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
