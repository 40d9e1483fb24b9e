"""Headless Chromium, offline: the DOM of a page after its scripts ran, and its console lines.

Chromium runs with a proxy that refuses connections and a resolver that resolves nothing, so a page
that needed a CDN would not draw, and the failed request would show up as a console message.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium")
# Chromium prints every console message (log, warning, error, uncaught exception, failed request)
# to stderr as `...:INFO:CONSOLE(line)] "message"` or `...:INFO:CONSOLE:line] "message"`.
CONSOLE = re.compile(r":CONSOLE[(:]")


def chromium_dom(page: Path, profile: Path, fragment: str = "") -> tuple[str, list[str]]:
    """The DOM after scripts ran, and the console lines, of `page` opened offline (at `fragment`, e.g. a
    route of a single-page site: "#!/model/...")."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    command = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        # Any request that would leave the machine fails: no proxy listens on port 9, no name resolves.
        "--proxy-server=127.0.0.1:9",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.as_uri() + fragment,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, [line for line in done.stderr.splitlines() if CONSOLE.search(line)]
