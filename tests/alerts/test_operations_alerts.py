"""The simulated app's planted operations problems raise the seed's alerts, and PagerDuty hears of them: a
trigger when the weekly run of the planted week opens an alert, a resolve with the same key when the next
week's run finds the problem gone. Runs the real chain after a notebook: the KPI module's metrics published
through a sidecar, loaded as the runner loads them, the rules of params/alerts.yaml evaluated and notified."""

from __future__ import annotations

import shutil
from datetime import timedelta

import duckdb
import pytest
from receivers import HttpReceiver, PagerDutyEvents

from statex_bi import publish, warehouse
from statex_bi.alerts import rules
from statex_bi.alerts.hook import record_alerts, send_notifications
from statex_bi.alerts.lifecycle import OPENED, RESOLVED
from statex_bi.config import PARAMS_DIR
from statex_bi.demo import ops
from statex_bi.kpis import operations
from statex_bi.periods import Period, resolve
from statex_bi.runner.metrics import replace_metrics

ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"
OTHER_CHANNELS = ("STATEX_BI_SLACK_WEBHOOK_URL", "STATEX_BI_SMTP_HOST", "STATEX_BI_ALERT_WEBHOOK_URL", "SENTRY_DSN",
                  "TWILIO_ACCOUNT_SID", "STATEX_BI_SMS_TO")
PLANTED_RULES = {"bullmq_backlog", "database_slow", "user_complaints"}


@pytest.fixture
def db(operations_warehouse, tmp_path):
    """A copy of the shared operations warehouse this test may write alerts into."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copy(operations_warehouse[0], copy)
    return copy


@pytest.fixture
def pagerduty(monkeypatch):
    for name in OTHER_CHANNELS:
        monkeypatch.delenv(name, raising=False)
    service = PagerDutyEvents()
    with HttpReceiver(respond=service) as receiver:
        monkeypatch.setenv("STATEX_BI_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        monkeypatch.setenv("STATEX_BI_PAGERDUTY_URL", receiver.url.split("/hook")[0])
        yield service


def _run(db, params: str, period: Period, tmp_path, monkeypatch) -> tuple[list, list[str]]:
    """One run of the operations report for `period`: publish, load, evaluate, notify. Returns (events, errors)."""
    run_id = f"{period.start:%Y%m%d}-{params}"
    sidecar = tmp_path / f"{run_id}.metrics.jsonl"
    monkeypatch.setenv(publish.SIDECAR_ENV, str(sidecar))
    with duckdb.connect(str(db), read_only=True) as con:
        publish.publish(operations.metrics(con, period))
    with warehouse.writer(db) as con:
        replace_metrics(con, run_id, period, {"operations": publish.read_sidecar(sidecar)})
    config = rules.load(PARAMS_DIR / "alerts.yaml")
    record, events = record_alerts(config, params=params, run_id=run_id, period=period, db=db,
                                   info=lambda line: None)
    errors = send_notifications(config, events, record, {}, lambda line: None, lambda line: None)
    return events, errors


def test_the_planted_week_raises_the_three_alerts_and_pagerduty_is_triggered_then_resolved(
    operations_warehouse, db, pagerduty, tmp_path, monkeypatch
):
    planted = Period(*operations_warehouse[2])
    events, errors = _run(db, "weekly", planted, tmp_path, monkeypatch)
    assert errors == []
    opened = {(e.rule, e.subject) for e in events if e.kind == OPENED}
    assert {rule for rule, _ in opened} == PLANTED_RULES
    subjects = dict(opened)
    assert ops.BACKLOG_QUEUE in subjects["bullmq_backlog"] and ops.SLOW_QUERY in subjects["database_slow"]
    triggered = {key for action, key in pagerduty.log if action == "trigger"}
    assert len(triggered) == 2  # the HIGH ones; user_complaints (MEDIUM) is not routed to PagerDuty
    assert all("bullmq_backlog" in key or "database_slow" in key for key in triggered)
    assert {key for _, key in pagerduty.open} == triggered

    following = Period(planted.start + timedelta(days=7), planted.end + timedelta(days=7))
    events, errors = _run(db, "weekly", following, tmp_path, monkeypatch)
    assert errors == []
    assert {e.rule for e in events if e.kind == RESOLVED} == PLANTED_RULES
    assert not [e for e in events if e.kind == OPENED]
    assert {key for action, key in pagerduty.log if action == "resolve"} == triggered
    assert pagerduty.open == set()


def test_the_monthly_review_of_the_planted_month_raises_them_too(operations_warehouse, db, pagerduty, tmp_path,
                                                                 monkeypatch):
    planted = operations_warehouse[2]
    month = resolve("last full month", planted[1].replace(day=28) + timedelta(days=7))
    assert month.start <= planted[0] and planted[1] <= month.end
    events, errors = _run(db, "monthly", month, tmp_path, monkeypatch)
    assert errors == []
    assert {e.rule for e in events if e.kind == OPENED} == PLANTED_RULES
    assert all(key.startswith("statex-bi/monthly/") for _, key in pagerduty.log)
