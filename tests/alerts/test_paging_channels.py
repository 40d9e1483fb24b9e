"""PagerDuty (Events API v2) and SMS (Twilio Messages API) against loopback services that validate requests as
the real ones document, and against ones that fail or hang."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from receivers import HangingReceiver, HttpReceiver, PagerDutyEvents, TwilioMessages

from statex_bi.alerts import rules
from statex_bi.alerts.channels import dedup_key
from statex_bi.alerts.lifecycle import OPENED, RESOLVED, Event
from statex_bi.alerts.notify import FAILED, SENT, SKIPPED, notify
from statex_bi.alerts.rules import Routing
from statex_bi.exceptions import ParamsError
from statex_bi.periods import Period

PERIOD = Period(date(2026, 11, 23), date(2026, 11, 29))
ROUTING_KEY = "R0UT1NGKEY0123456789abcdef012345"
SID, TOKEN = "AC" + "0" * 30 + "a1", "twilio-auth-token-5f3e"
VARIABLES = ("STATEX_BI_PAGERDUTY_ROUTING_KEY", "STATEX_BI_PAGERDUTY_URL", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
             "STATEX_BI_SMS_FROM", "STATEX_BI_SMS_TO", "STATEX_BI_TWILIO_URL")


def _event(kind: str = OPENED, severity: str = "CRITICAL", rule: str = "bullmq_backlog",
           subject: str = "queue=prototype-generation") -> Event:
    return Event(kind, "0b5e4a52-0000-4000-8000-000000000002", rule, "BullMQ backlog above 200 jobs", severity,
                 subject, 412.0, 200.0, "BullMQ backlog: jobs.backlog [queue=prototype-generation] = 412",
                 "weekly", "20261130T060000Z-weekly", PERIOD, "operations")


def _routing(channel: str, retries: int = 1, timeout_s: float = 5) -> Routing:
    return Routing({"CRITICAL": (channel,), "HIGH": (channel,)}, retries=retries, backoff_s=0.1, timeout_s=timeout_s)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def pagerduty(monkeypatch: pytest.MonkeyPatch):
    service = PagerDutyEvents()
    with HttpReceiver(respond=service) as receiver:
        monkeypatch.setenv("STATEX_BI_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        monkeypatch.setenv("STATEX_BI_PAGERDUTY_URL", receiver.url.split("/hook")[0])
        yield service, receiver


@pytest.fixture
def twilio(monkeypatch: pytest.MonkeyPatch):
    service = TwilioMessages(SID, TOKEN)
    with HttpReceiver(respond=service) as receiver:
        for name, value in {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "STATEX_BI_SMS_FROM": "+15005550006",
                            "STATEX_BI_SMS_TO": "+447700900123, +447700900456",
                            "STATEX_BI_TWILIO_URL": receiver.url.split("/hook")[0]}.items():
            monkeypatch.setenv(name, value)
        yield service, receiver


def test_pagerduty_triggers_on_open_and_resolves_the_same_key(pagerduty) -> None:
    service, receiver = pagerduty
    (opened,) = notify([_event()], _routing("pagerduty"), {})
    assert opened.status == SENT, opened.detail
    key = dedup_key(_event())
    assert service.open == {(ROUTING_KEY, key)}
    (resolved,) = notify([_event(RESOLVED)], _routing("pagerduty"), {})
    assert resolved.status == SENT, resolved.detail
    assert service.log == [("trigger", key), ("resolve", key)] and service.open == set()
    assert key == "statex-bi/weekly/bullmq_backlog/queue=prototype-generation"


def test_pagerduty_severity_is_mapped_and_details_carried(pagerduty) -> None:
    service, receiver = pagerduty
    notify([_event(), _event(severity="HIGH", rule="database_slow", subject="query=SELECT ...")],
           _routing("pagerduty"), {})
    bodies = [json.loads(r.body) for r in receiver.requests]
    assert [(b["payload"]["severity"], b["payload"]["class"]) for b in bodies] == [
        ("critical", "bullmq_backlog"), ("error", "database_slow")]
    assert bodies[0]["payload"]["custom_details"]["current_value"] == 412.0
    assert bodies[0]["payload"]["component"] == "operations"


def test_a_long_subject_still_gives_a_valid_distinct_dedup_key(pagerduty) -> None:
    service, _ = pagerduty
    long_a, long_b = "query=" + "a" * 300, "query=" + "a" * 299 + "b"
    (delivery,) = notify([_event(subject=long_a), _event(subject=long_b)], _routing("pagerduty"), {})
    assert delivery.status == SENT, delivery.detail
    assert len(service.open) == 2 and all(len(key) <= 255 for _, key in service.open)


def test_pagerduty_rejecting_an_event_is_not_retried_and_says_why(pagerduty, monkeypatch) -> None:
    service, receiver = pagerduty
    monkeypatch.setenv("STATEX_BI_PAGERDUTY_ROUTING_KEY", "too-short")
    (delivery,) = notify([_event()], _routing("pagerduty", retries=3), {}, sleep=lambda s: None)
    assert delivery.status == FAILED and delivery.attempts == 1 and len(receiver.requests) == 1
    assert "HTTP 400" in delivery.detail and "routing_key" in delivery.detail


def test_pagerduty_throttling_is_retried_without_resending_what_was_accepted(monkeypatch) -> None:
    service = PagerDutyEvents()
    waits: list[float] = []
    # the first event is accepted, the second throttled once, then accepted
    with HttpReceiver([0, 429, 0], respond=service) as receiver:
        monkeypatch.setenv("STATEX_BI_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        monkeypatch.setenv("STATEX_BI_PAGERDUTY_URL", receiver.url.split("/hook")[0])
        (delivery,) = notify([_event(), _event(rule="database_slow")], _routing("pagerduty"), {}, sleep=waits.append)
    assert delivery.status == SENT and delivery.attempts == 2 and waits == [0.1]
    assert [action for action, _ in service.log] == ["trigger", "trigger"] and len(receiver.requests) == 3


def test_a_failing_pagerduty_is_retried_then_reported(monkeypatch) -> None:
    with HttpReceiver([502]) as broken:
        monkeypatch.setenv("STATEX_BI_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        monkeypatch.setenv("STATEX_BI_PAGERDUTY_URL", broken.url)
        (delivery,) = notify([_event()], _routing("pagerduty", retries=2), {}, sleep=lambda s: None)
    assert delivery.status == FAILED and delivery.attempts == 3 and "HTTP 502" in delivery.detail
    assert ROUTING_KEY not in delivery.detail


def test_a_hanging_pagerduty_times_out_and_is_reported(monkeypatch) -> None:
    with HangingReceiver() as hanging:
        monkeypatch.setenv("STATEX_BI_PAGERDUTY_ROUTING_KEY", ROUTING_KEY)
        monkeypatch.setenv("STATEX_BI_PAGERDUTY_URL", hanging.url)
        (delivery,) = notify([_event()], _routing("pagerduty", retries=1, timeout_s=0.3), {}, sleep=lambda s: None)
    assert delivery.status == FAILED and delivery.attempts == 2 and "Timeout" in delivery.detail


def test_sms_goes_to_each_recipient_as_a_twilio_form_post(twilio) -> None:
    service, receiver = twilio
    (delivery,) = notify([_event(), _event(RESOLVED, rule="database_slow")], _routing("sms"), {})
    assert delivery.status == SENT, delivery.detail
    assert [m["To"] for m in service.sent] == ["+447700900123", "+447700900456"]
    assert all(m["From"] == "+15005550006" for m in service.sent)
    text = service.sent[0]["Body"]
    assert "OPEN BullMQ backlog above 200 jobs [queue=prototype-generation]" in text and "RESOLVED" in text
    assert TOKEN not in receiver.requests[0].body.decode()


def test_sms_from_a_messaging_service_and_a_long_text_is_cut_to_twilios_limit(twilio, monkeypatch) -> None:
    service, _ = twilio
    monkeypatch.setenv("STATEX_BI_SMS_FROM", "MG" + "1" * 32)
    many = [_event(subject=f"queue=q{i:03d}") for i in range(60)]
    (delivery,) = notify(many, _routing("sms"), {})
    assert delivery.status == SENT, delivery.detail
    assert service.sent[0]["MessagingServiceSid"] == "MG" + "1" * 32 and "From" not in service.sent[0]
    assert len(service.sent[0]["Body"]) == 1600


def test_twilio_refusing_a_number_reports_its_error_code(twilio, monkeypatch) -> None:
    service, receiver = twilio
    monkeypatch.setenv("STATEX_BI_SMS_TO", "07700900123")
    (delivery,) = notify([_event()], _routing("sms", retries=3), {}, sleep=lambda s: None)
    assert delivery.status == FAILED and delivery.attempts == 1
    assert "HTTP 400 error 21211" in delivery.detail


def test_wrong_twilio_credentials_are_refused(twilio, monkeypatch) -> None:
    monkeypatch.setenv("TWILIO_AUTH_TOKEN", "not-the-token-1234")
    (delivery,) = notify([_event()], _routing("sms"), {}, sleep=lambda s: None)
    assert delivery.status == FAILED and "HTTP 401 error 20003" in delivery.detail
    assert "not-the-token-1234" not in delivery.detail


def test_a_retried_sms_is_not_sent_twice_to_a_recipient_who_got_it(monkeypatch) -> None:
    service = TwilioMessages(SID, TOKEN)
    with HttpReceiver([0, 503, 0], respond=service) as receiver:
        for name, value in {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "STATEX_BI_SMS_FROM": "+15005550006",
                            "STATEX_BI_SMS_TO": "+447700900123,+447700900456",
                            "STATEX_BI_TWILIO_URL": receiver.url.split("/hook")[0]}.items():
            monkeypatch.setenv(name, value)
        (delivery,) = notify([_event()], _routing("sms"), {}, sleep=lambda s: None)
    assert delivery.status == SENT and delivery.attempts == 2
    assert [m["To"] for m in service.sent] == ["+447700900123", "+447700900456"]


def test_a_hanging_twilio_times_out_and_is_reported(monkeypatch) -> None:
    with HangingReceiver() as hanging:
        for name, value in {"TWILIO_ACCOUNT_SID": SID, "TWILIO_AUTH_TOKEN": TOKEN, "STATEX_BI_SMS_FROM": "+15005550006",
                            "STATEX_BI_SMS_TO": "+447700900123", "STATEX_BI_TWILIO_URL": hanging.url}.items():
            monkeypatch.setenv(name, value)
        (delivery,) = notify([_event()], _routing("sms", retries=0, timeout_s=0.3), {})
    assert delivery.status == FAILED and "Timeout" in delivery.detail


def test_unconfigured_pagerduty_and_sms_are_skipped_naming_what_is_missing() -> None:
    deliveries = {d.channel: d for d in notify([_event()], Routing({"CRITICAL": ("pagerduty", "sms")}), {})}
    assert {name: d.status for name, d in deliveries.items()} == {"pagerduty": SKIPPED, "sms": SKIPPED}
    assert "STATEX_BI_PAGERDUTY_ROUTING_KEY" in deliveries["pagerduty"].detail
    assert all(name in deliveries["sms"].detail for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN",
                                                               "STATEX_BI_SMS_FROM", "STATEX_BI_SMS_TO"))


def test_sms_may_be_routed_for_critical_alerts_only(tmp_path: Path) -> None:
    path = tmp_path / "alerts.yaml"
    path.write_text("rules: []\nnotify:\n  routes: {CRITICAL: [sms, pagerduty], HIGH: [pagerduty, sms]}\n")
    with pytest.raises(ParamsError, match=r"routes.HIGH: 'sms' is for CRITICAL alerts only"):
        rules.load(path)


def test_the_shipped_rules_page_and_text_for_critical_alerts() -> None:
    routing = rules.load(Path(__file__).parents[2] / "params" / "alerts.yaml").routing
    assert {"pagerduty", "sms"} <= set(routing.channels("CRITICAL"))
    assert "pagerduty" in routing.channels("HIGH") and "sms" not in routing.channels("HIGH")
