"""Every notification channel against a real loopback receiver, including receivers that fail."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
from datetime import date

import pytest
from receivers import HttpReceiver, SlowDrip, SmtpReceiver

from statex_bi.alerts.lifecycle import OPENED, RESOLVED, Event
from statex_bi.alerts.notify import FAILED, SENT, SKIPPED, notify
from statex_bi.alerts.rules import Routing
from statex_bi.periods import Period

SECRET = "whsec-test-4b7c9d2e1f"
PERIOD = Period(date(2026, 11, 23), date(2026, 11, 29))
ALL = ("slack", "email", "webhook", "sentry")
CHANNEL_VARIABLES = ("STATEX_BI_SLACK_WEBHOOK_URL", "STATEX_BI_SMTP_HOST", "STATEX_BI_SMTP_PORT",
                     "STATEX_BI_SMTP_USERNAME", "STATEX_BI_SMTP_PASSWORD", "STATEX_BI_ALERT_EMAIL_FROM",
                     "STATEX_BI_ALERT_EMAIL_TO", "STATEX_BI_SMTP_CA_FILE", "STATEX_BI_ALERT_WEBHOOK_URL",
                     "STATEX_BI_ALERT_WEBHOOK_SECRET", "SENTRY_DSN")


def _event(kind: str = OPENED, severity: str = "CRITICAL", rule: str = "api_error_rate") -> Event:
    return Event(kind, "0b5e4a52-0000-4000-8000-000000000001", rule, "API error rate above 5%", severity,
                 "route=/api/prototypes", 0.0712, 0.05,
                 "API error rate above 5%: api.error_rate [route=/api/prototypes] = 7.12%, is above the limit 5.00%",
                 "weekly", "20261130T060000Z-weekly", PERIOD, "web_api_performance")


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CHANNEL_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def _routing(*channels: str, retries: int = 2) -> Routing:
    return Routing({"CRITICAL": channels, "HIGH": channels, "LOW": ()}, retries=retries, backoff_s=0.5, timeout_s=5)


def test_slack_receives_block_kit_for_new_and_resolved_alerts(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpReceiver([200]) as slack:
        monkeypatch.setenv("STATEX_BI_SLACK_WEBHOOK_URL", slack.url)
        deliveries = notify([_event(), _event(RESOLVED, "HIGH", "conversion_drop")], _routing("slack"), {})
    assert [(d.channel, d.status, d.events, d.attempts) for d in deliveries] == [("slack", SENT, 2, 1)]
    (request,) = slack.requests
    assert request.path == "/hook/T000/B000" and request.headers["Content-Type"] == "application/json"
    payload = json.loads(request.body)
    assert payload["text"].startswith("statex-bi: 1 new alert, 1 resolved")
    kinds = [block["type"] for block in payload["blocks"]]
    assert kinds == ["header", "section", "section", "context"]
    assert payload["blocks"][0]["text"]["type"] == "plain_text" and len(payload["blocks"][0]["text"]["text"]) <= 150
    assert "CRITICAL · opened" in payload["blocks"][1]["text"]["text"]
    assert "resolved" in payload["blocks"][2]["text"]["text"]
    assert slack.url not in request.body.decode()  # the webhook URL is its own credential


def test_a_failing_receiver_is_retried_with_backoff_then_reported_and_others_still_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    waits: list[float] = []
    with HttpReceiver([500]) as broken, HttpReceiver([503, 200]) as flaky:
        monkeypatch.setenv("STATEX_BI_SLACK_WEBHOOK_URL", broken.url)
        monkeypatch.setenv("STATEX_BI_ALERT_WEBHOOK_URL", flaky.url)
        monkeypatch.setenv("STATEX_BI_ALERT_WEBHOOK_SECRET", SECRET)
        deliveries = notify([_event()], _routing("slack", "webhook", retries=2), {}, sleep=waits.append)
    by_channel = {d.channel: d for d in deliveries}
    assert by_channel["slack"].status == FAILED and by_channel["slack"].attempts == 3
    assert "HTTP 500" in by_channel["slack"].detail
    assert len(broken.requests) == 3
    assert by_channel["webhook"].status == SENT and by_channel["webhook"].attempts == 2
    assert len(flaky.requests) == 2
    assert waits == [0.5, 1.0, 0.5]  # slack: two waits doubling; webhook: one


def test_a_client_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpReceiver([404]) as gone:
        monkeypatch.setenv("STATEX_BI_SLACK_WEBHOOK_URL", gone.url)
        (delivery,) = notify([_event()], _routing("slack", retries=3), {}, sleep=lambda s: None)
    assert delivery.status == FAILED and delivery.attempts == 1 and len(gone.requests) == 1


def test_a_webhook_url_path_quoted_in_an_error_is_redacted(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpReceiver([404], echo_path=True) as gone:
        monkeypatch.setenv("STATEX_BI_SLACK_WEBHOOK_URL", gone.url)
        (delivery,) = notify([_event()], _routing("slack"), {}, sleep=lambda s: None)
    assert delivery.status == FAILED and "HTTP 404 Cannot POST" in delivery.detail
    assert "/hook/T000/B000" not in delivery.detail and "B000" not in delivery.detail
    assert "[redacted $STATEX_BI_SLACK_WEBHOOK_URL]" in delivery.detail


def test_webhook_body_is_signed_with_hmac_sha256(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpReceiver([200]) as hook:
        monkeypatch.setenv("STATEX_BI_ALERT_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("STATEX_BI_ALERT_WEBHOOK_SECRET", SECRET)
        (delivery,) = notify([_event()], _routing("webhook"), {})
    assert delivery.status == SENT
    (request,) = hook.requests
    timestamp = request.headers["X-Statex-Timestamp"]
    expected = hmac.new(SECRET.encode(), f"{timestamp}.".encode() + request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Statex-Signature"] == f"sha256={expected}"
    payload = json.loads(request.body)
    assert payload["events"][0]["rule"] == "api_error_rate" and payload["events"][0]["event"] == "opened"
    assert payload["period"] == {"start": "2026-11-23", "end": "2026-11-29"}
    assert SECRET not in request.body.decode()


def test_a_secret_value_in_an_alert_text_never_leaves(monkeypatch: pytest.MonkeyPatch) -> None:
    leaky = _event()
    leaky = Event(**{**leaky.__dict__, "message": f"upstream said token {SECRET} is invalid"})
    with HttpReceiver([200]) as slack:
        monkeypatch.setenv("STATEX_BI_SLACK_WEBHOOK_URL", slack.url)
        notify([leaky], _routing("slack"), {"STRIPE_API_KEY": SECRET})
    assert SECRET not in slack.requests[0].body.decode()


def test_email_goes_over_starttls_with_login(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpReceiver(tmp_path) as smtp:
        for name, value in {"STATEX_BI_SMTP_HOST": "127.0.0.1", "STATEX_BI_SMTP_PORT": str(smtp.port),
                            "STATEX_BI_SMTP_USERNAME": smtp.user, "STATEX_BI_SMTP_PASSWORD": smtp.password,
                            "STATEX_BI_SMTP_CA_FILE": str(smtp.ca_file),
                            "STATEX_BI_ALERT_EMAIL_FROM": "alerts@statex.example",
                            "STATEX_BI_ALERT_EMAIL_TO": "cfo@statex.example, ops@statex.example"}.items():
            monkeypatch.setenv(name, value)
        (delivery,) = notify([_event(), _event(RESOLVED)], _routing("email"), {"SMTP_PASSWORD": smtp.password})
    assert delivery.status == SENT, delivery.detail
    assert smtp.logins == [(smtp.user, True)]  # credentials only after STARTTLS
    ((sender, recipients, message),) = smtp.messages
    assert sender == "alerts@statex.example"
    assert recipients == ["cfo@statex.example", "ops@statex.example"]
    assert message["Subject"].startswith("statex-bi: 1 new alert, 1 resolved (weekly, 2026-11-23 to 2026-11-29)")
    body = message.get_payload(decode=True).decode()
    assert "[CRITICAL] OPEN API error rate above 5%" in body and "RESOLVED" in body
    assert smtp.password not in body


def test_an_smtp_server_that_defers_is_retried_then_reported(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    with SmtpReceiver(tmp_path, reply="451 4.3.0 Temporary failure, try later") as smtp:
        for name, value in {"STATEX_BI_SMTP_HOST": "127.0.0.1", "STATEX_BI_SMTP_PORT": str(smtp.port),
                            "STATEX_BI_SMTP_USERNAME": smtp.user, "STATEX_BI_SMTP_PASSWORD": smtp.password,
                            "STATEX_BI_SMTP_CA_FILE": str(smtp.ca_file),
                            "STATEX_BI_ALERT_EMAIL_FROM": "alerts@statex.example",
                            "STATEX_BI_ALERT_EMAIL_TO": "cfo@statex.example"}.items():
            monkeypatch.setenv(name, value)
        (delivery,) = notify([_event()], _routing("email", retries=1), {}, sleep=lambda s: None)
    assert delivery.status == FAILED and delivery.attempts == 2 and smtp.data_attempts == 2
    assert "451" in delivery.detail


def test_email_refuses_a_server_whose_certificate_it_cannot_verify(tmp_path, monkeypatch) -> None:
    with SmtpReceiver(tmp_path) as smtp:
        for name, value in {"STATEX_BI_SMTP_HOST": "127.0.0.1", "STATEX_BI_SMTP_PORT": str(smtp.port),
                            "STATEX_BI_SMTP_USERNAME": smtp.user, "STATEX_BI_SMTP_PASSWORD": smtp.password,
                            "STATEX_BI_ALERT_EMAIL_FROM": "alerts@statex.example",
                            "STATEX_BI_ALERT_EMAIL_TO": "cfo@statex.example"}.items():
            monkeypatch.setenv(name, value)
        (delivery,) = notify([_event()], _routing("email"), {}, sleep=lambda s: None)
    assert delivery.status == FAILED and "TLS" in delivery.detail
    assert smtp.logins == [] and smtp.messages == []


def test_sentry_gets_one_message_per_alert_with_level_by_severity(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpReceiver([200], body=b"{}") as sentry:
        monkeypatch.setenv("SENTRY_DSN", sentry.dsn)
        (delivery,) = notify([_event(), _event(severity="HIGH", rule="ai_cost_spike")], _routing("sentry"), {})
    assert delivery.status == SENT
    events = [payload for header, payload in sentry.envelope_items() if header.get("type") == "event"]
    assert sorted((e["level"], e["tags"]["alert.rule"]) for e in events) == [
        ("error", "ai_cost_spike"), ("fatal", "api_error_rate")]
    assert all(e["message"].startswith("API error rate above 5%") or "ai_cost_spike" in e["tags"]["alert.rule"]
               for e in events)


def test_a_routed_channel_without_settings_is_skipped_and_named(monkeypatch: pytest.MonkeyPatch) -> None:
    deliveries = notify([_event()], _routing(*ALL), {})
    assert {d.channel: d.status for d in deliveries} == dict.fromkeys(ALL, SKIPPED)
    webhook = next(d for d in deliveries if d.channel == "webhook")
    assert "STATEX_BI_ALERT_WEBHOOK_URL" in webhook.detail and "STATEX_BI_ALERT_WEBHOOK_SECRET" in webhook.detail


def test_severity_routing_sends_low_alerts_nowhere(monkeypatch: pytest.MonkeyPatch) -> None:
    with HttpReceiver([200]) as slack:
        monkeypatch.setenv("STATEX_BI_SLACK_WEBHOOK_URL", slack.url)
        assert notify([_event(severity="LOW")], _routing("slack"), {}) == []
    assert slack.requests == []


# A valid answer, padded so that dripping it takes about 20 s (400 bytes, one every 0.05 s).
SLOW_HTTP = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Pad: " + b"." * 340 + b"\r\nContent-Length: 2\r\n\r\nok"
SLOW_SMTP = b"220-" + b"." * 380 + b"\r\n220 slow.example ESMTP\r\n"


def test_a_receiver_dripping_its_answer_cannot_hold_a_send_past_its_timeout(monkeypatch) -> None:
    routing = Routing({"CRITICAL": ("slack",)}, retries=1, backoff_s=0.1, timeout_s=0.5)
    with SlowDrip(SLOW_HTTP) as slack:
        monkeypatch.setenv("STATEX_BI_SLACK_WEBHOOK_URL", slack.url)
        started = time.monotonic()
        (delivery,) = notify([_event()], routing, {}, sleep=lambda s: None)
        elapsed = time.monotonic() - started
    assert delivery.status == FAILED and delivery.attempts == 2 and slack.clients == 2
    assert "no answer within 0.5 s" in delivery.detail
    assert elapsed < 5  # two sends of 0.5 s; without a deadline each lasts the whole 20 s drip


def test_an_smtp_banner_dripped_byte_by_byte_times_out_and_the_run_deadline_stops_retries(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    routing = Routing({"CRITICAL": ("email", "webhook")}, retries=3, backoff_s=0.1, timeout_s=0.5, deadline_s=1.0)
    with SlowDrip(SLOW_SMTP, listen_first=False) as smtp, SlowDrip(SLOW_HTTP) as hook:
        for name, value in {"STATEX_BI_SMTP_HOST": "127.0.0.1", "STATEX_BI_SMTP_PORT": str(smtp.port),
                            "STATEX_BI_ALERT_EMAIL_FROM": "alerts@statex.example",
                            "STATEX_BI_ALERT_EMAIL_TO": "cfo@statex.example",
                            "STATEX_BI_ALERT_WEBHOOK_URL": hook.url,
                            "STATEX_BI_ALERT_WEBHOOK_SECRET": SECRET}.items():
            monkeypatch.setenv(name, value)
        started = time.monotonic()
        email, webhook = notify([_event()], routing, {}, sleep=time.sleep)
        elapsed = time.monotonic() - started
    # 0.5 s, a 0.1 s wait, then what is left of the run's second: the deadline ends the retries early
    assert email.status == FAILED and email.attempts == 2 and re.search(r"no answer within 0\.\d+ s", email.detail)
    assert (webhook.status, webhook.attempts) == (FAILED, 0)
    assert webhook.detail == "not sent: notify.deadline_s (1 s for the run) reached"
    assert elapsed < 3  # the old code: 4 attempts of a 20 s banner for e-mail, then the webhook's
