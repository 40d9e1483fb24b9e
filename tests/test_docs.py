"""The scheduling examples (docs/scheduling.md), run as written: a failed load is mailed and fails the systemd unit.

The cron line and the service's ExecStart run in a copy of the project layout (its .venv linked in)
against a fresh warehouse, with a stand-in `mail` on PATH that records what it was given. Every source
fails: the ones with credentials have none, and fx's URL points at a loopback server answering 404.
Only the load part of each command runs (the reports are the runner tests' business).
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from statex_bi.cli import _parser
from statex_bi.config import PROJECT_ROOT

SCHEDULING = (PROJECT_ROOT / "docs" / "scheduling.md").read_text(encoding="utf-8")
INSTALL_DIR = "/srv/statex-bi"
CREDENTIALS = re.compile(r"STRIPE|PAYPAL|COINBASE|SENTRY|OPENAI|GA4|GOOGLE|AZURE|CLOUDFLARE|GITHUB")


def _blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", SCHEDULING, flags=re.DOTALL)


def _cron_lines() -> list[str]:
    return [line for block in _blocks("cron") for line in block.splitlines() if line.strip()]


def _cron_command(schedule: str = "0 6 * * 1") -> str:
    """The command of the scheduling page's cron line with this schedule (the weekly one unless told)."""
    (line,) = [line for line in _cron_lines() if line.split(None, 5)[:5] == schedule.split()]
    return line.split(None, 5)[5]


def _unit(name: str) -> str:
    (block,) = [block for block in _blocks("ini") if block.startswith(f"# /etc/systemd/system/{name}\n")]
    return block


def _setting(unit: str, key: str) -> str:
    (value,) = re.findall(rf"^{key}=(.*)$", unit, flags=re.MULTILINE)
    return value


class _NotFound(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self.send_error(404, "no such file")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def failing_site(tmp_path, monkeypatch):
    """A project folder whose every source fails to load; `mail` records to tmp_path/mail."""
    site = tmp_path / "site"
    (site / "data").mkdir(parents=True)
    (site / ".venv").symlink_to(PROJECT_ROOT / ".venv")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    mail = bin_dir / "mail"
    mail.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" > {tmp_path}/mail.args\ncat > {tmp_path}/mail.body\n')
    mail.chmod(0o755)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    for name in list(os.environ):
        if CREDENTIALS.search(name):
            monkeypatch.delenv(name)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    monkeypatch.setenv("STATEX_BI_DB", str(site / "data" / "statex.duckdb"))
    monkeypatch.setenv("FX_RATES_URL", f"http://127.0.0.1:{server.server_port}/eurofxref-hist.csv")
    yield site
    server.shutdown()
    server.server_close()


def test_the_cron_line_mails_a_failed_load(failing_site, tmp_path):
    command = _cron_command()
    load, report = command.rsplit("; ", 1)
    assert report.startswith(".venv/bin/statex-bi run weekly --quiet")
    done = subprocess.run(["/bin/sh", "-c", load.replace(INSTALL_DIR, str(failing_site))],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr  # the mail went out
    args = (tmp_path / "mail.args").read_text().splitlines()
    assert args == ["-s", "statex-bi: ingest failed", "ops@example.com"]
    body = (tmp_path / "mail.body").read_text()
    assert "fx: failed" in body and "404" in body
    assert "stripe: failed" in body and "STRIPE_API_KEY" in body


def test_the_cron_line_mails_nothing_when_the_load_succeeds(failing_site, tmp_path):
    """The same line, with the load changed to a statex-bi command that cannot fail: no mail."""
    load = _cron_command().rsplit("; ", 1)[0]
    ok = re.sub(r"statex-bi ingest [^>]*", "statex-bi --version ", load)
    done = subprocess.run(["/bin/sh", "-c", ok.replace(INSTALL_DIR, str(failing_site))],
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    assert not (tmp_path / "mail.args").exists()


def test_the_systemd_service_fails_on_a_failed_load_and_its_failure_unit_mails(failing_site):
    service = _unit("statex-bi-weekly.service")
    assert _setting(service, "OnFailure") == "statex-bi-mail@%n.service"
    assert _setting(service, "WorkingDirectory") == INSTALL_DIR
    # systemd turns $$ into $; the shell then runs the load and, whatever happened, the reports.
    shell = re.fullmatch(r"/bin/sh -c '(.*)'", _setting(service, "ExecStart")).group(1).replace("$$", "$")
    load_part = shell.replace(".venv/bin/statex-bi run weekly --quiet --wait 600", "true")
    done = subprocess.run(["/bin/sh", "-c", load_part], cwd=failing_site, capture_output=True, text=True,
                          timeout=600, check=False)
    assert done.returncode == 1, "the unit fails, so OnFailure= runs"
    assert "fx: failed" in done.stderr
    mailer = _setting(_unit("statex-bi-mail@.service"), "ExecStart")
    assert "journalctl --unit %i" in mailer and "| mail -s" in mailer
    assert _setting(_unit("statex-bi-weekly.timer"), "OnCalendar") == "Mon *-*-* 06:00:00"


def test_the_scheduled_commands_parse():
    parser, _ = _parser()
    service = _setting(_unit("statex-bi-weekly.service"), "ExecStart")
    commands = [line.split(None, 5)[5] for line in _cron_lines()] + [service]
    assert len(commands) >= 3, "docs/scheduling.md shows the weekly and monthly cron lines and the weekly service"
    for command in commands:
        for call in re.findall(r"\.venv/bin/statex-bi ([^;&|>']+)", command):
            parser.parse_args(call.split())


README = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
DOCS = sorted((PROJECT_ROOT / "docs").glob("*.md"))


def test_the_readme_is_a_front_door_with_exactly_the_two_quick_start_commands():
    assert len(README.splitlines()) <= 150
    (quick_start,) = re.findall(r"## Quick start\n\n```sh\n(.*?)```", README, flags=re.DOTALL)
    assert [line.split("#")[0].strip() for line in quick_start.splitlines()] == ["make reports", "make test"]
    for source in ("GA4", "Stripe", "PayPal", "Coinbase", "ECB", "Sentry", "OpenAI", "AI-call log", "FOCUS",
                   "Cloudflare R2", "GitHub Actions", "Vitest/Jest"):
        assert source in " ".join(README.split("## Quick start")[0].split()), f"the pitch does not name {source}"


@pytest.mark.parametrize("page", [PROJECT_ROOT / "README.md", *DOCS], ids=lambda path: path.name)
def test_every_relative_link_of_the_readme_and_docs_resolves(page):
    text = page.read_text(encoding="utf-8")
    for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
        assert (page.parent / target).exists(), f"{page.name} links to missing {target}"


def test_every_docs_page_is_linked_from_the_readme():
    linked = set(re.findall(r"\(docs/([^)#]+)", README))
    assert {page.name for page in DOCS} <= linked


def test_every_path_the_where_things_live_table_names_exists():
    (table,) = re.findall(r"## Where things live\n\n(.*?)\n\n", README, flags=re.DOTALL)
    for path in re.findall(r"`((?:statex_bi|params|notebooks)/[^`]*)`", table):
        stem = path.split("<")[0].split("{")[0].rstrip("/")
        assert (PROJECT_ROOT / stem).exists(), path
