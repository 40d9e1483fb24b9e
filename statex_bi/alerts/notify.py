"""Send the run's new and resolved alerts to the channels their severity is routed to.

Every channel is tried on its own: one that is not configured is reported as skipped (naming the
missing variables), one that fails is retried with exponential backoff (`notify.retries` times,
first wait `notify.backoff_s`) for transient errors and then reported as failed; neither stops the
run or the other channels. Each send has `notify.timeout_s` from connecting to the last byte of the
answer (a receiver dripping its answer byte by byte cannot stretch it), and all sends and waits of a
run together have `notify.deadline_s`: past it, the channels left are reported as failed untried.
Texts are redacted of every secret-looking environment variable's value and of the webhook URLs' paths
before they leave.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from statex_bi.alerts import channels
from statex_bi.alerts.lifecycle import Event
from statex_bi.alerts.rules import CHANNELS, Routing
from statex_bi.config import credential_url_paths
from statex_bi.secrets import redact

SENT, SKIPPED, FAILED = "sent", "skipped", "failed"


@dataclass(frozen=True)
class Delivery:
    """What happened to one channel's message."""

    channel: str
    status: str
    events: int
    attempts: int
    detail: str = ""

    def __str__(self) -> str:
        text = f"{self.channel}: {self.status} ({self.events} alert event(s)"
        text += f", {self.attempts} attempt(s))" if self.attempts else ")"
        return f"{text}: {self.detail}" if self.detail else text


def _redacted(event: Event, secrets: dict[str, str]) -> Event:
    return replace(event, title=redact(event.title, secrets), subject=redact(event.subject, secrets),
                   message=redact(event.message, secrets))


def _within(send: Callable[[float], None], seconds: float) -> None:
    """Call send(seconds) on a worker thread and wait at most `seconds` for it to return.

    Socket timeouts bound each read, not a whole answer; the worker bounds connect, TLS, request and
    response together. A send still hanging is abandoned (a daemon thread) and counts as transient.
    """
    outcome: list[BaseException | None] = []

    def attempt() -> None:
        try:
            send(seconds)
            outcome.append(None)
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            outcome.append(exc)

    worker = threading.Thread(target=attempt, name="statex-bi-notify", daemon=True)
    worker.start()
    worker.join(seconds)
    if not outcome:
        raise channels.Transient(f"Timeout: no answer within {seconds:.3g} s")
    if outcome[0] is not None:
        raise outcome[0]


def _with_retries(
    send: Callable[[float], None], routing: Routing, deadline: float, sleep: Callable[[float], None],
) -> tuple[int, str]:
    """Call `send` until it succeeds, fails for good or the run's deadline (a monotonic time) comes.

    Returns:
        (attempts, error or "").
    """
    attempt = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            reason = f"notify.deadline_s ({routing.deadline_s:g} s for the run) reached"
            return attempt, f"gave up after {attempt} attempts: {reason}" if attempt else f"not sent: {reason}"
        attempt += 1
        try:
            _within(send, min(routing.timeout_s, left))
            return attempt, ""
        except channels.Permanent as exc:
            return attempt, str(exc)
        except channels.Transient as exc:
            wait = routing.backoff_s * 2 ** (attempt - 1)
            if attempt > routing.retries or time.monotonic() + wait >= deadline:
                return attempt, f"gave up after {attempt} attempts: {exc}"
            sleep(wait)
        except Exception as exc:  # a channel's bug must not stop the others
            return attempt, f"{type(exc).__name__}: {exc}"


def notify(
    events: list[Event],
    routing: Routing,
    secrets: dict[str, str],
    sleep: Callable[[float], None] = time.sleep,
) -> list[Delivery]:
    """Send each channel the events routed to it.

    Args:
        events: the alerts this run opened or resolved.
        routing: severity -> channels, retries and backoff (params/alerts.yaml `notify`).
        secrets: values that must never leave (secret-looking environment variables).
        sleep: how to wait between retries (tests pass a recorder).

    Returns:
        One Delivery per channel that had something to send.
    """
    secrets = {**secrets, **credential_url_paths()}  # a webhook URL's path is its credential
    safe = [_redacted(event, secrets) for event in events]
    deadline = time.monotonic() + routing.deadline_s
    deliveries = []
    pagerduty_accepted: set[tuple[str, str]] = set()
    sms_delivered: set[str] = set()
    for channel in CHANNELS:
        mine = [e for e in safe if channel in routing.channels(e.severity)]
        if not mine:
            continue
        missing = channels.missing_settings(channel)
        if missing:
            deliveries.append(Delivery(channel, SKIPPED, len(mine), 0, f"not configured: set {', '.join(missing)}"))
            continue
        senders: dict[str, Callable[[float], None]] = {
            "slack": lambda timeout, m=mine: channels.send_slack(m, timeout),
            "email": lambda timeout, m=mine: channels.send_email(m, timeout),
            "webhook": lambda timeout, m=mine: channels.send_webhook(m, timeout),
            "sentry": lambda timeout, m=mine: channels.send_sentry(m, timeout, secrets),
            "pagerduty": lambda timeout, m=mine: channels.send_pagerduty(m, timeout, pagerduty_accepted),
            "sms": lambda timeout, m=mine: channels.send_sms(m, timeout, sms_delivered),
        }
        attempts, error = _with_retries(senders[channel], routing, deadline, sleep)
        status = FAILED if error else SENT
        deliveries.append(Delivery(channel, status, len(mine), attempts, redact(error, secrets)))
    return deliveries
