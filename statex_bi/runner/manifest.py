"""outputs/<run_id>/manifest.json: what a run did, written by the runner rather than read from papermill.

Run-level fields: run_id, title, params_file, period {start, end}, started_at, finished_at (UTC ISO),
status ("succeeded" only when every report succeeded, no file leaked a secret and no step failed),
git_sha (None outside a git checkout), package_version, watermarks (source -> newest data), errors,
secret_leaks [{notebook, file, variable, action}].

notebooks: stem -> {status, title, html, pdf (with --pdf), ipynb, metrics (the published KPIs, JSON lines), log (paths
relative to the run folder, None when not published), files (what the notebook wrote itself and
was published, under <stem>_files/), started_at, finished_at, duration_s, parameters,
error {ename, evalue, cell, message} or None, warnings, metrics_loaded, period, watermarks}.

Re-running a run id replaces the entries of the notebooks re-run and keeps the others.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from statex_bi.config import PROJECT_ROOT
from statex_bi.runner.status import SUCCEEDED
from statex_bi.secrets import redact

MANIFEST_NAME = "manifest.json"


def git_sha(root: Path = PROJECT_ROOT) -> str | None:
    """The checked-out commit of the project, or None when it is not a git checkout (or git is missing)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and sha else None


def read(run_dir: Path) -> dict[str, Any] | None:
    """A run's manifest, or None when there is none or it cannot be parsed."""
    path = run_dir / MANIFEST_NAME
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def overall_status(manifest: dict[str, Any]) -> str:
    """'succeeded' when every report succeeded and nothing else went wrong, else 'failed'."""
    reports_ok = all(entry.get("status") == SUCCEEDED for entry in manifest.get("notebooks", {}).values())
    clean = not manifest.get("secret_leaks") and not manifest.get("errors")
    return SUCCEEDED if reports_ok and clean else "failed"


def merge(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """The manifest after a re-run: `current` wins, earlier notebooks not re-run are kept."""
    if not previous:
        merged = dict(current)
    else:
        rerun = set(current["notebooks"])
        merged = {**previous, **current}
        merged["started_at"] = previous.get("started_at", current["started_at"])
        merged["notebooks"] = {**previous.get("notebooks", {}), **current["notebooks"]}
        kept_leaks = [leak for leak in previous.get("secret_leaks", []) if leak.get("notebook") not in rerun]
        merged["secret_leaks"] = kept_leaks + current.get("secret_leaks", [])
    merged["status"] = overall_status(merged)
    return merged


def write(run_dir: Path, manifest: dict[str, Any], secrets: dict[str, str]) -> Path:
    """Write the manifest atomically, with any secret value redacted (error texts come from notebooks)."""
    path = run_dir / MANIFEST_NAME
    text = redact(json.dumps(manifest, indent=2, default=str), secrets)
    partial = path.with_suffix(".json.partial")
    partial.write_text(text + "\n", encoding="utf-8")
    partial.replace(path)
    return path


def read_all(outputs: Path) -> list[dict[str, Any]]:
    """Every run's manifest under `outputs`, newest first (by start time)."""
    # A hidden folder is a run's work in progress (statex_bi.reports.staging), not a published run.
    folders = [p.parent for p in outputs.glob(f"*/{MANIFEST_NAME}") if not p.parent.name.startswith(".")]
    runs = [m for m in map(read, folders) if m and m.get("run_id")]
    return sorted(runs, key=lambda m: (str(m.get("started_at", "")), str(m["run_id"])), reverse=True)
