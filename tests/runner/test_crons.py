"""Sentry Crons check-ins of `statex-bi run` arrive as envelopes at a loopback endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from receivers import HttpReceiver

from statex_bi import cli
from statex_bi.exceptions import StatexError
from statex_bi.runner.crons import monitored


def _params(tmp_path: Path, monitor: object) -> Path:
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "notebooks" / "noop.ipynb").write_text('{"cells": [], "metadata": {}, "nbformat": 4, '
                                                       '"nbformat_minor": 5}')
    path = tmp_path / "nightly.yaml"
    path.write_text(yaml.safe_dump({"title": "Nightly", "period": "yesterday", "notebooks_dir": "notebooks",
                                    "sentry_monitor": monitor, "notebooks": {"noop": {}}}))
    return path


def _checkins(sentry: HttpReceiver) -> list[dict]:
    return [payload for header, payload in sentry.envelope_items() if header.get("type") == "check_in"]


@pytest.mark.parametrize(("code", "status"), [(0, "ok"), (1, "error")])
def test_a_run_sends_in_progress_then_its_outcome(tmp_path, monkeypatch, code: int, status: str) -> None:
    params = _params(tmp_path, {"slug": "statex-bi-nightly", "schedule": "0 6 * * *", "max_runtime": 30})
    with HttpReceiver([200], body=b"{}") as sentry:
        monkeypatch.setenv("SENTRY_DSN", sentry.dsn)
        assert monitored(str(params), lambda: code) == code
    first, last = _checkins(sentry)
    assert (first["monitor_slug"], first["status"]) == ("statex-bi-nightly", "in_progress")
    assert (last["monitor_slug"], last["status"]) == ("statex-bi-nightly", status)
    assert last["check_in_id"] == first["check_in_id"] and last["duration"] >= 0
    assert first["monitor_config"]["schedule"] == {"type": "crontab", "value": "0 6 * * *"}
    assert all(r.path == "/api/42/envelope/" for r in sentry.requests)


def test_a_run_that_raises_reports_error(tmp_path, monkeypatch) -> None:
    params = _params(tmp_path, "statex-bi-nightly")

    def broken() -> int:
        raise StatexError("warehouse locked")

    with HttpReceiver([200], body=b"{}") as sentry:
        monkeypatch.setenv("SENTRY_DSN", sentry.dsn)
        with pytest.raises(StatexError):
            monitored(str(params), broken)
    assert [c["status"] for c in _checkins(sentry)] == ["in_progress", "error"]


def test_the_cli_run_is_monitored(tmp_path, monkeypatch) -> None:
    """`statex-bi run` itself: a run that fails (no warehouse can be created here) reports error."""
    params = _params(tmp_path, "statex-bi-nightly")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the warehouse folder should be")
    monkeypatch.setenv("STATEX_BI_DB", str(blocker / "statex.duckdb"))
    monkeypatch.setenv("STATEX_BI_OUTPUTS", str(tmp_path / "outputs"))
    with HttpReceiver([200], body=b"{}") as sentry:
        monkeypatch.setenv("SENTRY_DSN", sentry.dsn)
        try:
            code = cli.main(["run", str(params), "--quiet"])
        except OSError:
            code = None  # raised through: the check-in was sent on the way out
    assert code != 0
    assert [c["status"] for c in _checkins(sentry)] == ["in_progress", "error"]


def test_without_a_dsn_nothing_is_sent(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    assert monitored(str(_params(tmp_path, "statex-bi-nightly")), lambda: 0) == 0
