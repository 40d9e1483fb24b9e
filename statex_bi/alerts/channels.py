"""Notification channels: Slack incoming webhook, e-mail over SMTP with STARTTLS, signed JSON webhook, Sentry,
PagerDuty (Events API v2) and SMS (Twilio Messages API).

Each channel is configured by environment variables only (docs/alerts.md) and sends one message per
run holding the events routed to it (Sentry: one event per alert, so each alert is its own issue).
A channel raises `Transient` for what may pass (connection errors, timeouts, HTTP 429 and 5xx, SMTP
4xx) and `Permanent` for what will not; `statex_bi.alerts.notify` retries the former with backoff.

Environment:
    STATEX_BI_SLACK_WEBHOOK_URL       Slack incoming webhook URL (a secret: it is its own credential)
    STATEX_BI_SMTP_HOST, _PORT        SMTP server, e.g. email-smtp.eu-west-1.amazonaws.com and 587
    STATEX_BI_SMTP_USERNAME, _PASSWORD  SMTP credentials (Amazon SES: SMTP credentials, not IAM keys)
    STATEX_BI_ALERT_EMAIL_FROM, _TO   sender, and recipients separated by commas
    STATEX_BI_SMTP_CA_FILE            optional CA bundle to trust besides the system's (a private CA)
    STATEX_BI_ALERT_WEBHOOK_URL       generic webhook
    STATEX_BI_ALERT_WEBHOOK_SECRET    HMAC-SHA256 key of the webhook signature (required with the URL)
    SENTRY_DSN                        Sentry project
    STATEX_BI_PAGERDUTY_ROUTING_KEY   PagerDuty integration key (Events API v2) of the service to page
    STATEX_BI_PAGERDUTY_URL           optional Events API base, default https://events.pagerduty.com
    TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN  Twilio account (HTTP Basic credentials of the Messages API)
    STATEX_BI_SMS_FROM                sending number (E.164) or Messaging Service SID (MG...)
    STATEX_BI_SMS_TO                  recipients' numbers (E.164) separated by commas
    STATEX_BI_TWILIO_URL              optional API base, default https://api.twilio.com
"""

from __future__ import annotations

import hashlib
import hmac
import json
import smtplib
import ssl
import time
from email.message import EmailMessage
from typing import Any

import requests

from statex_bi import __version__
from statex_bi.alerts.lifecycle import OPENED, Event
from statex_bi.config import env
from statex_bi.secrets import scrub

SIGNATURE_HEADER = "X-Statex-Signature"
TIMESTAMP_HEADER = "X-Statex-Timestamp"
SENTRY_LEVELS = {"LOW": "info", "MEDIUM": "warning", "HIGH": "error", "CRITICAL": "fatal"}
ICONS = {"LOW": ":large_blue_circle:", "MEDIUM": ":large_yellow_circle:", "HIGH": ":large_orange_circle:",
         "CRITICAL": ":red_circle:"}
PAGERDUTY_SEVERITIES = {"LOW": "info", "MEDIUM": "warning", "HIGH": "error", "CRITICAL": "critical"}
PAGERDUTY_URL = "https://events.pagerduty.com"
TWILIO_URL = "https://api.twilio.com"
SMS_MAX_CHARS = 1600  # Twilio's limit on a message body


class Transient(Exception):
    """A failure worth retrying."""


class Permanent(Exception):
    """A failure that retrying will not fix."""


def _summary(events: list[Event]) -> str:
    opened = sum(e.kind == OPENED for e in events)
    resolved = len(events) - opened
    parts = [f"{opened} new alert{'s' if opened != 1 else ''}"] if opened else []
    parts += [f"{resolved} resolved"] if resolved else []
    first = events[0]
    return f"statex-bi: {', '.join(parts)} ({first.params}, {first.period})"


def _line(event: Event) -> str:
    state = "OPEN" if event.kind == OPENED else "RESOLVED"
    return f"[{event.severity}] {state} {event.title} [{event.subject}]: {event.message}"


def _response_text(response: requests.Response) -> str:
    """An API's own explanation of an error (PagerDuty: message and errors; Twilio: code and message)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if not isinstance(body, dict):
        return response.text[:200]
    if "code" in body:
        return f"error {body['code']}: {body.get('message', '')}"[:300]
    return f"{body.get('message', '')} {body.get('errors', '')}".strip()[:300]


def _post(what: str, timeout: float, url: str, **kwargs: Any) -> None:
    try:
        response = requests.post(url, timeout=timeout, **kwargs)
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise Transient(f"{what}: {type(exc).__name__}") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise Transient(f"{what}: HTTP {response.status_code}")
    if response.status_code >= 400:
        raise Permanent(f"{what}: HTTP {response.status_code} {_response_text(response)}")


def slack_payload(events: list[Event]) -> dict[str, Any]:
    """A Block Kit message: a header, one section per alert (at most 45), a context line."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _summary(events)[:150]}},
    ]
    for event in events[:45]:
        state = "opened" if event.kind == OPENED else "resolved"
        icon = ICONS[event.severity] if event.kind == OPENED else ":white_check_mark:"
        text = f"{icon} *{event.severity} · {state}: {event.title}* `{event.subject}`\n{event.message}"
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}})
    if len(events) > 45:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"... and {len(events) - 45} more"}})
    first = events[0]
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"run `{first.run_id}` · period {first.period} · statex-bi {__version__}"}]})
    return {"text": _summary(events), "blocks": blocks}


def send_slack(events: list[Event], timeout: float) -> None:
    url = env("STATEX_BI_SLACK_WEBHOOK_URL")
    body = json.dumps(slack_payload(events)).encode()
    _post("Slack webhook", timeout, url, data=body, headers={"Content-Type": "application/json"})


def webhook_payload(events: list[Event]) -> dict[str, Any]:
    first = events[0]
    return {"source": "statex-bi", "version": __version__, "run_id": first.run_id, "params": first.params,
            "period": {"start": first.period.start.isoformat(), "end": first.period.end.isoformat()},
            "events": [e.as_dict() for e in events]}


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def send_webhook(events: list[Event], timeout: float) -> None:
    url, secret = env("STATEX_BI_ALERT_WEBHOOK_URL"), env("STATEX_BI_ALERT_WEBHOOK_SECRET")
    body = json.dumps(webhook_payload(events), sort_keys=True).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: timestamp,
               SIGNATURE_HEADER: sign(secret, timestamp, body), "User-Agent": f"statex-bi/{__version__}"}
    _post("alert webhook", timeout, url, data=body, headers=headers)


def email_message(events: list[Event]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = _summary(events)
    message["From"] = env("STATEX_BI_ALERT_EMAIL_FROM")
    message["To"] = ", ".join(a.strip() for a in (env("STATEX_BI_ALERT_EMAIL_TO") or "").split(",") if a.strip())
    first = events[0]
    lines = [_summary(events), "", *(_line(e) for e in events), "",
             f"Run {first.run_id}, params {first.params}, period {first.period}.",
             "Open alerts are listed in the executive summary of each run."]
    message.set_content("\n".join(lines))
    return message


def send_email(events: list[Event], timeout: float) -> None:
    host, port = env("STATEX_BI_SMTP_HOST"), int(env("STATEX_BI_SMTP_PORT", "587"))
    context = ssl.create_default_context(cafile=env("STATEX_BI_SMTP_CA_FILE"))
    message = email_message(events)
    try:
        with smtplib.SMTP(host, port, timeout=timeout) as smtp:
            smtp.ehlo()
            if not smtp.has_extn("starttls"):
                raise Permanent(f"SMTP {host}:{port} does not offer STARTTLS; refusing to send in clear text")
            smtp.starttls(context=context)
            smtp.ehlo()
            user = env("STATEX_BI_SMTP_USERNAME")
            if user:
                smtp.login(user, env("STATEX_BI_SMTP_PASSWORD") or "")
            smtp.send_message(message)
    except smtplib.SMTPResponseException as exc:
        kind = Transient if 400 <= exc.smtp_code < 500 else Permanent
        raise kind(f"SMTP {host}:{port}: {exc.smtp_code} {exc.smtp_error[:200]!r}") from None
    except (TimeoutError, smtplib.SMTPServerDisconnected, smtplib.SMTPConnectError, ConnectionError) as exc:
        raise Transient(f"SMTP {host}:{port}: {type(exc).__name__}: {exc}") from None
    except ssl.SSLError as exc:
        raise Permanent(f"SMTP {host}:{port}: TLS failed: {exc.reason}") from None
    except smtplib.SMTPException as exc:
        raise Permanent(f"SMTP {host}:{port}: {type(exc).__name__}: {exc}") from None


def send_sentry(events: list[Event], timeout: float, secrets: dict[str, str]) -> None:
    import sentry_sdk

    sentry_sdk.init(dsn=env("SENTRY_DSN"), release=f"statex-bi@{__version__}", default_integrations=False,
                    auto_enabling_integrations=False, before_send=lambda event, hint: scrub(event, secrets))
    try:
        for event in events:
            with sentry_sdk.new_scope() as scope:
                for key in ("rule", "severity", "subject", "params", "run_id"):
                    scope.set_tag(f"alert.{key}" if key != "run_id" else key, getattr(event, key))
                scope.set_context("alert", event.as_dict())
                scope.fingerprint = ["statex-bi-alert", event.rule, event.subject, event.params, event.kind]
                level = SENTRY_LEVELS[event.severity] if event.kind == OPENED else "info"
                prefix = "" if event.kind == OPENED else "resolved: "
                sentry_sdk.capture_message(f"{prefix}{event.title} [{event.subject}]", level=level)
    finally:
        sentry_sdk.get_client().close(timeout=timeout)


def dedup_key(event: Event) -> str:
    """The alert's identity (params file, rule, subject) as PagerDuty's `dedup_key` (at most 255 characters):
    the resolve closes the incident the trigger opened, and a re-opened alert opens a new one."""
    key = f"statex-bi/{event.params}/{event.rule}/{event.subject}"
    if len(key) <= 255:
        return key
    return f"{key[:238]}#{hashlib.sha256(key.encode()).hexdigest()[:16]}"


def pagerduty_event(event: Event, routing_key: str) -> dict[str, Any]:
    """The Events API v2 event: `trigger` for an opened alert, `resolve` (key only) for a resolved one."""
    if event.kind != OPENED:
        return {"routing_key": routing_key, "event_action": "resolve", "dedup_key": dedup_key(event)}
    return {
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": dedup_key(event),
        "payload": {"summary": f"{event.title} [{event.subject}]: {event.message}"[:1024], "source": "statex-bi",
                    "severity": PAGERDUTY_SEVERITIES[event.severity], "component": event.report or "statex-bi",
                    "group": event.params, "class": event.rule, "custom_details": event.as_dict()},
    }


def send_pagerduty(events: list[Event], timeout: float, accepted: set[tuple[str, str]]) -> None:
    """One Events API v2 event per alert event. `accepted` holds the (action, key) pairs PagerDuty took in an
    earlier attempt, so a retry does not send them again; an event it rejects does not stop the others."""
    routing_key = env("STATEX_BI_PAGERDUTY_ROUTING_KEY")
    url = f"{env('STATEX_BI_PAGERDUTY_URL', PAGERDUTY_URL).rstrip('/')}/v2/enqueue"
    rejected = []
    for event in events:
        body = pagerduty_event(event, routing_key)
        sent = (body["event_action"], body["dedup_key"])
        if sent in accepted:
            continue
        try:
            _post(f"PagerDuty {sent[0]} {sent[1]}", timeout, url, json=body)
        except Permanent as exc:
            rejected.append(str(exc))
            continue
        accepted.add(sent)
    if rejected:
        raise Permanent("; ".join(rejected))


def sms_text(events: list[Event]) -> str:
    """One short text for all the run's critical alerts (Twilio takes at most 1600 characters)."""
    lines = [f"{'OPEN' if e.kind == OPENED else 'RESOLVED'} {e.title} [{e.subject}]" for e in events]
    text = f"statex-bi {events[0].params} {events[0].period}: " + "; ".join(lines)
    return text if len(text) <= SMS_MAX_CHARS else text[: SMS_MAX_CHARS - 3] + "..."


def send_sms(events: list[Event], timeout: float, delivered: set[str]) -> None:
    """One SMS per recipient through Twilio's Messages API (form POST, HTTP Basic with the account SID and
    token). `delivered` holds the recipients Twilio accepted in an earlier attempt, so a retry skips them."""
    sid, token = env("TWILIO_ACCOUNT_SID"), env("TWILIO_AUTH_TOKEN")
    url = f"{env('STATEX_BI_TWILIO_URL', TWILIO_URL).rstrip('/')}/2010-04-01/Accounts/{sid}/Messages.json"
    sender = env("STATEX_BI_SMS_FROM")
    origin = {"MessagingServiceSid": sender} if sender.startswith("MG") else {"From": sender}
    text = sms_text(events)
    for number in (n.strip() for n in env("STATEX_BI_SMS_TO").split(",")):
        if number and number not in delivered:
            _post(f"Twilio SMS to {number}", timeout, url, auth=(sid, token),
                      data={"To": number, **origin, "Body": text})
            delivered.add(number)


# channel -> (variables it needs, sender)
REQUIRED = {
    "slack": ("STATEX_BI_SLACK_WEBHOOK_URL",),
    "email": ("STATEX_BI_SMTP_HOST", "STATEX_BI_ALERT_EMAIL_FROM", "STATEX_BI_ALERT_EMAIL_TO"),
    "webhook": ("STATEX_BI_ALERT_WEBHOOK_URL", "STATEX_BI_ALERT_WEBHOOK_SECRET"),
    "sentry": ("SENTRY_DSN",),
    "pagerduty": ("STATEX_BI_PAGERDUTY_ROUTING_KEY",),
    "sms": ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "STATEX_BI_SMS_FROM", "STATEX_BI_SMS_TO"),
}


def missing_settings(channel: str) -> list[str]:
    """The environment variables a channel needs that are not set."""
    return [name for name in REQUIRED[channel] if not env(name)]
