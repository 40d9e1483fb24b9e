"""Sentry Crons check-ins around `statex-bi run`, so that a run that fails or never happens pages someone.

A params file names its monitor (`sentry_monitor: statex-bi-weekly`, or a mapping with `slug` and an
optional `schedule` crontab, `timezone`, `checkin_margin` and `max_runtime` in minutes, which
create or update the monitor in Sentry). With $SENTRY_DSN set the run sends `in_progress` once it
has started (its params, secrets and DSN checked, the warehouse got) and `ok` or `error` (with its
duration) when it ends: error when the exit code is not 0 or the run raised. A run refused before it
started (a malformed DSN, invalid params, a warehouse still locked after --wait) sends nothing: it
says why on the terminal, and a run that never happens is what the monitor's schedule catches.
Without $SENTRY_DSN nothing is sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from statex_bi import __version__
from statex_bi.config import env, secret_env_values
from statex_bi.runner.params import load
from statex_bi.runner.sentry import check_dsn

FLUSH_SECONDS = 10.0


def _checkin(monitor: dict[str, Any], status: str, check_in_id: str | None = None,
             duration: float | None = None) -> str | None:
    import sentry_sdk
    from sentry_sdk.crons import capture_checkin

    # Other parts of the run (failure events, alert notifications) close the SDK's client when they
    # are done: each check-in opens its own and flushes it.
    sentry_sdk.init(dsn=env("SENTRY_DSN"), release=f"statex-bi@{__version__}", default_integrations=False,
                    auto_enabling_integrations=False)
    config = {k: monitor[k] for k in ("checkin_margin", "max_runtime", "timezone") if k in monitor}
    if "schedule" in monitor:
        config["schedule"] = {"type": "crontab", "value": monitor["schedule"]}
    try:
        return capture_checkin(monitor_slug=monitor["slug"], check_in_id=check_in_id, status=status,
                               duration=duration, monitor_config=config or None)
    finally:
        sentry_sdk.get_client().close(timeout=FLUSH_SECONDS)


def monitored(params: str, run: Callable[[Callable[[], None]], int]) -> int:
    """Run `run` (a `statex-bi run`) between check-ins of the params file's monitor.

    Args:
        params: the params file (path or name) whose `sentry_monitor` names the monitor.
        run: the run, called with `started`, which it calls once it has passed its checks and got the
            warehouse (the in_progress check-in); returns its exit code.

    Returns:
        The run's exit code.

    Raises:
        ConfigError: $SENTRY_DSN is malformed (before anything uses it).
    """
    check_dsn(secret_env_values())
    monitor = load(params).sentry_monitor
    if not monitor or not env("SENTRY_DSN"):
        return run(lambda: None)
    check_ins: list[str | None] = []
    started_at = time.monotonic()

    def started() -> None:
        nonlocal started_at
        started_at = time.monotonic()
        check_ins.append(_checkin(monitor, "in_progress"))

    status = "error"
    try:
        code = run(started)
        status = "ok" if code == 0 else "error"
        return code
    finally:
        if check_ins:  # a run refused before it started is no failed run of the monitor
            _checkin(monitor, status, check_ins[0], time.monotonic() - started_at)
