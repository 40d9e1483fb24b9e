"""Report failed notebooks to Sentry, from the runner process (never from kernels).

Inside a kernel IPython swallows cell errors before sentry-sdk could see them, so the runner sends one
event per failed notebook, after the run, when $SENTRY_DSN is set. Events carry the tags notebook,
run_id, status and report, and the error summary; `before_send` redacts the value of every
secret-looking environment variable from the whole event, and no default PII is collected.
"""

from __future__ import annotations

from typing import Any

from statex_bi import __version__
from statex_bi.config import env
from statex_bi.exceptions import ConfigError
from statex_bi.secrets import redact, scrub

FLUSH_SECONDS = 10.0


def check_dsn(secrets: dict[str, str]) -> None:
    """Refuse a malformed $SENTRY_DSN before any notebook runs (unset or empty: Sentry is off).

    Raises:
        ConfigError: naming the variable and what is wrong, never its value.
    """
    dsn = env("SENTRY_DSN")
    if dsn is None:
        return
    from sentry_sdk.utils import BadDsn, Dsn

    try:
        Dsn(dsn)
    except (BadDsn, ValueError) as exc:
        raise ConfigError(
            f"$SENTRY_DSN is malformed ({redact(str(exc), secrets)}); it looks like "
            "https://<public key>@<host>/<project id>: fix it, or unset it to run without Sentry"
        ) from None


def report_failures(
    run_id: str, report: str, failures: dict[str, dict[str, Any]], secrets: dict[str, str]
) -> int:
    """Send one Sentry event per failed notebook and flush; a no-op without $SENTRY_DSN.

    Args:
        run_id: the run.
        report: the params file's name, e.g. "weekly".
        failures: notebook stem -> its manifest entry (status, error, period, ...).
        secrets: values to redact from every event.

    Returns:
        The number of events captured.
    """
    dsn = env("SENTRY_DSN")
    if not dsn or not failures:
        return 0
    import sentry_sdk

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        return scrub(event, secrets)

    sentry_sdk.init(
        dsn=dsn,
        release=f"statex-bi@{__version__}",
        # No default PII: with neither send_default_pii (deprecated in sentry-sdk 2.75, it only warns
        # now) nor data_collection set, the SDK behaves as send_default_pii=False.
        default_integrations=False,
        auto_enabling_integrations=False,
        before_send=before_send,
    )
    try:
        for stem, entry in failures.items():
            error = entry.get("error") or {}
            with sentry_sdk.new_scope() as scope:
                scope.set_tag("notebook", stem)
                scope.set_tag("run_id", run_id)
                scope.set_tag("status", entry.get("status"))
                scope.set_tag("report", report)
                scope.set_context("report_error", {**error, "period": entry.get("period")})
                # One Sentry issue per notebook and kind of failure, not one per run.
                scope.fingerprint = ["statex-bi-report", stem, str(entry.get("status")), str(error.get("ename"))]
                sentry_sdk.capture_message(
                    f"report notebook {stem} {entry.get('status')}: {error.get('message')}", level="error"
                )
    finally:
        sentry_sdk.get_client().close(timeout=FLUSH_SECONDS)
    return len(failures)
