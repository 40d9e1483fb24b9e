"""The runner's post-run steps: evaluate the rules and record the alerts' life cycle, then notify."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from statex_bi import warehouse
from statex_bi.alerts.evaluate import evaluate
from statex_bi.alerts.lifecycle import OPENED, Event, apply, open_alerts
from statex_bi.alerts.notify import FAILED, notify
from statex_bi.alerts.rules import AlertConfig
from statex_bi.periods import Period


def after_run(
    config: AlertConfig | None,
    *,
    params: str,
    run_id: str,
    period: Period,
    db: Path,
    secrets: dict[str, str],
    info: Callable[[str], None],
    failure: Callable[[str], None],
    wait: float = 0.0,
) -> tuple[dict[str, Any], list[str]]:
    """Evaluate the rules on the run, record opened and resolved alerts, notify.

    Args:
        config: the params file's alert rules (None: the params file names none, nothing is done).
        params: the params file's name (alerts are kept per params file).
        run_id: the run.
        period: its period.
        db: the warehouse.
        secrets: values that must never appear in a notification.
        info: prints a progress line.
        failure: prints a failure line (shown even with --quiet).
        wait: seconds to wait for a locked warehouse.

    Returns:
        The manifest's `alerts` record, and error lines (failed notification channels) that make
        the run fail.
    """
    if config is None:
        return {}, []
    record, events = record_alerts(config, params=params, run_id=run_id, period=period, db=db, info=info, wait=wait)
    return record, send_notifications(config, events, record, secrets, info, failure)


def record_alerts(
    config: AlertConfig,
    *,
    params: str,
    run_id: str,
    period: Period,
    db: Path,
    info: Callable[[str], None],
    wait: float = 0.0,
) -> tuple[dict[str, Any], list[Event]]:
    """Evaluate the rules on the run's KPIs and record opened and resolved alerts (the runner's "alerts" step).

    Returns:
        The manifest's `alerts` record (without notifications yet) and the events to notify.
    """
    with warehouse.writer(db, wait=wait) as con:
        evaluations = evaluate(con, config.rules, run_id, period)
        events = apply(con, evaluations, params=params, run_id=run_id, period=period)
        still_open = open_alerts(con, params)
    no_data = {e.rule.name: e.no_data for e in evaluations if e.no_data}
    for name, reason in no_data.items():
        info(f"alert   {name}: no data: {reason}")
    for event in events:
        info(f"ALERT   {event.kind} {event.severity} {event.rule} [{event.subject}]: {event.message}")
    opened = sum(e.kind == OPENED for e in events)
    info(f"alerts: {opened} opened, {len(events) - opened} resolved, {len(still_open)} open for {params}")
    record = {
        "rules_file": str(config.path),
        "evaluated": len(evaluations),
        "no_data": no_data,
        "opened": [e.as_dict() for e in events if e.kind == OPENED],
        "resolved": [e.as_dict() for e in events if e.kind != OPENED],
        "open": len(still_open),
        "notifications": [],
    }
    return record, events


def send_notifications(
    config: AlertConfig,
    events: list[Event],
    record: dict[str, Any],
    secrets: dict[str, str],
    info: Callable[[str], None],
    failure: Callable[[str], None],
) -> list[str]:
    """Notify the events on the routed channels (the runner's "notify" step); fills record["notifications"].

    Returns:
        Error lines, one per failed channel (they make the run fail).
    """
    deliveries = notify(events, config.routing, secrets)
    errors = []
    for delivery in deliveries:
        if delivery.status == FAILED:
            errors.append(f"alert notification {delivery}")
            failure(f"ERROR   alert notification {delivery}")
        else:
            info(f"notify  {delivery}")
    record["notifications"] = [
        {"channel": d.channel, "status": d.status, "events": d.events, "attempts": d.attempts, "detail": d.detail}
        for d in deliveries
    ]
    return errors
