"""`statex-bi run --pdf`: a PDF beside each report page, printed by headless Chromium with the print stylesheet.

Chromium is found as $STATEX_BI_CHROMIUM, else `chromium`, `chromium-browser` or `google-chrome` on
PATH. It runs offline-safe (no network, no first-run work, a throw-away profile) and lets the charts'
scripts run before it prints (--virtual-time-budget).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM_ENV = "STATEX_BI_CHROMIUM"
CANDIDATES = ("chromium", "chromium-browser", "google-chrome")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    # A report never needs the network: any request would fail rather than wait.
    "--proxy-server=127.0.0.1:9", "--host-resolver-rules=MAP * ~NOTFOUND",
)
MISSING = (
    "PDF not written: Chromium is not installed (Debian: `apt-get install chromium`), "
    f"or set ${CHROMIUM_ENV} to its path"
)


def find_chromium() -> str | None:
    """The Chromium executable to print with, or None when there is none."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        return configured if Path(configured).exists() else shutil.which(configured)
    return next((found for name in CANDIDATES if (found := shutil.which(name))), None)


def print_pdf(page: Path, target: Path, chromium: str, timeout: float = 120.0) -> Path:
    """Print an HTML page to a PDF with headless Chromium.

    Args:
        page: the report's .html file.
        target: the .pdf file to write.
        chromium: the executable (`find_chromium()`).
        timeout: seconds before Chromium is stopped.

    Returns:
        `target`.

    Raises:
        RuntimeError: Chromium failed or wrote no PDF (its last output lines are in the message).
    """
    target.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="statex-bi-chromium-") as profile:
        command = [
            chromium, *FLAGS, f"--user-data-dir={profile}", "--virtual-time-budget=5000",
            "--no-pdf-header-footer", f"--print-to-pdf={target}", page.resolve().as_uri(),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise RuntimeError(f"Chromium did not finish printing {page.name} within {timeout:.0f} s") from exc
    if done.returncode != 0 or not target.exists() or target.stat().st_size == 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise RuntimeError(f"Chromium could not print {page.name} (exit {done.returncode}): {tail}")
    return target


def write_pdfs(
    run_dir: Path, entries: dict[str, dict[str, Any]], info: Callable[[str], None], failure: Callable[[str], None]
) -> None:
    """Print each report page of a run to <stem>.pdf beside it and record it as the entry's `pdf`.

    Args:
        run_dir: the run's folder.
        entries: notebook stem -> manifest entry (its `html` names the page; `pdf` is set here).
        info: prints a progress line.
        failure: prints a problem (no Chromium, or a page that failed to print); the run goes on.
    """
    chromium = find_chromium()
    pages = {stem: entry for stem, entry in entries.items() if entry.get("html")}
    if chromium is None:
        if pages:
            failure(MISSING)
        return
    for stem, entry in pages.items():
        try:
            written = print_pdf(run_dir / entry["html"], run_dir / f"{stem}.pdf", chromium)
        except RuntimeError as exc:
            failure(f"PDF     {stem}: {exc}")
            entry["pdf"] = None
            continue
        entry["pdf"] = written.name
        info(f"pdf     {stem} -> {written.name}")
