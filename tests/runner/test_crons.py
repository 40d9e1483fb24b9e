"""Sentry Crons check-ins of `statex-bi run` arrive as envelopes at a loopback endpoint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from receivers import HttpReceiver
from reportkit import write_notebook

from statex_bi import cli
from statex_bi.exceptions import StatexError
from statex_bi.runner.crons import monitored

# Another writer (an ingest) holding the warehouse for a minute.
HOLD_WAREHOUSE = (
    "import sys, time, duckdb\ncon = duckdb.connect(sys.argv[1])\nprint('locked', flush=True)\ntime.sleep(60)"
)


def _params(tmp_path: Path, monitor: object) -> Path:
    write_notebook(tmp_path / "notebooks", "noop", ["print('ok')"])
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
        assert monitored(str(params), lambda started: (started(), code)[1]) == code
    first, last = _checkins(sentry)
    assert (first["monitor_slug"], first["status"]) == ("statex-bi-nightly", "in_progress")
    assert (last["monitor_slug"], last["status"]) == ("statex-bi-nightly", status)
    assert last["check_in_id"] == first["check_in_id"] and last["duration"] >= 0
    assert first["monitor_config"]["schedule"] == {"type": "crontab", "value": "0 6 * * *"}
    assert all(r.path == "/api/42/envelope/" for r in sentry.requests)


def test_a_run_that_raises_reports_error(tmp_path, monkeypatch) -> None:
    params = _params(tmp_path, "statex-bi-nightly")

    def broken(started) -> int:
        started()
        raise StatexError("the runner broke")

    with HttpReceiver([200], body=b"{}") as sentry:
        monkeypatch.setenv("SENTRY_DSN", sentry.dsn)
        with pytest.raises(StatexError):
            monitored(str(params), broken)
    assert [c["status"] for c in _checkins(sentry)] == ["in_progress", "error"]


def test_the_cli_run_is_monitored(db_file, tmp_path, monkeypatch) -> None:
    """`statex-bi run` itself: a run whose report fails reports error."""
    params = _params(tmp_path, "statex-bi-nightly")
    write_notebook(tmp_path / "notebooks", "noop", ["raise RuntimeError('the report broke')"])
    with HttpReceiver([200], body=b"{}") as sentry:
        monkeypatch.setenv("SENTRY_DSN", sentry.dsn)
        assert cli.main(["run", str(params), "--quiet"]) == 1
    assert [c["status"] for c in _checkins(sentry)] == ["in_progress", "error"]


def test_a_malformed_dsn_is_refused_in_one_line_before_any_check_in(tmp_path, monkeypatch, capsys) -> None:
    params = _params(tmp_path, "statex-bi-nightly")
    monkeypatch.setenv("SENTRY_DSN", "https://publickey@sentry.example.com/not-a-project-id")
    assert cli.main(["run", str(params), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.startswith("statex-bi: error: $SENTRY_DSN is malformed") and len(error.splitlines()) == 1, error


def test_a_run_refused_for_a_locked_warehouse_sends_no_check_in(db_file, tmp_path, monkeypatch, capsys) -> None:
    params = _params(tmp_path, "statex-bi-nightly")
    holder = subprocess.Popen([sys.executable, "-c", HOLD_WAREHOUSE, str(db_file)], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with HttpReceiver([200], body=b"{}") as sentry:
            monkeypatch.setenv("SENTRY_DSN", sentry.dsn)
            assert cli.main(["run", str(params), "--quiet"]) == 2
    finally:
        holder.kill()
        holder.wait()
    assert f"is locked by PID {holder.pid}" in capsys.readouterr().err
    assert _checkins(sentry) == []  # refused, not failed: nobody is paged for a run that never started


def test_without_a_dsn_nothing_is_sent(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    assert monitored(str(_params(tmp_path, "statex-bi-nightly")), lambda started: (started(), 0)[1]) == 0
