"""One real run with notebooks that succeed, raise, exit early, kill their kernel, time out, leak a secret.

The run itself happens once (conftest.mixed_run); each test checks one promise of the runner.
Cell numbers count the committed notebook's cells from 1: the '# title' cell, the parameters cell,
then the code cells, so the second code cell of every test notebook is cell 4.
"""

from __future__ import annotations

import json
import re

import pytest
from conftest import MIN_AMOUNT, MIXED_NOTEBOOKS, PERIOD, SECRET
from reportkit import expected_orders, metric_rows, printed_records

from statex_bi import __version__

EXPECTED_STATUS = {
    "orders": "succeeded",
    "raises": "failed",
    "exits_early": "failed",
    "kernel_dies": "kernel_died",
    "sleeps": "timed_out",
    "leaks": "failed",
}


def test_every_notebook_ran_and_got_the_runners_own_status(mixed_run):
    statuses = {stem: entry["status"] for stem, entry in mixed_run.manifest["notebooks"].items()}
    assert statuses == EXPECTED_STATUS
    assert mixed_run.exit_code == 1
    assert mixed_run.manifest["status"] == "failed"


@pytest.mark.parametrize(
    ("stem", "ename", "message"),
    [
        ("exits_early", "SystemExit", "notebook exited early (SystemExit 0) at cell 4"),
        ("kernel_dies", "DeadKernelError", "the kernel died while running cell 4 (out of memory, os._exit or a crash)"),
        ("sleeps", "CellTimeoutError", "cell 4 ran longer than the 5 s cell timeout"),
    ],
    ids=["sys.exit(0)", "kernel killed", "cell timeout"],
)
def test_failures_papermill_misreports_are_named_with_their_cell(mixed_run, stem, ename, message):
    error = mixed_run.manifest["notebooks"][stem]["error"]
    assert (error["ename"], error["cell"], error["message"]) == (ename, 4, message)


def test_a_raising_notebook_is_summarised_without_the_secret_it_quoted(mixed_run):
    error = mixed_run.manifest["notebooks"]["raises"]["error"]
    assert error["ename"] == "ValueError" and error["cell"] == 4
    assert error["evalue"] == "the API refused token [redacted $STATEX_TEST_TOKEN]"
    assert SECRET not in json.dumps(mixed_run.manifest)


def test_parameters_reach_the_notebook_own_values_over_defaults(mixed_run):
    entry = mixed_run.manifest["notebooks"]["orders"]
    assert entry["parameters"] == {
        "min_amount": MIN_AMOUNT,
        "period_start": PERIOD[0].isoformat(),
        "period_end": PERIOD[1].isoformat(),
        "run_id": "mixed-run",
    }
    assert entry["warnings"] == []
    executed = (mixed_run.run_dir / "orders.ipynb").read_text()
    assert 'period_start = \\"2026-03-02\\"' in executed


def test_metrics_equal_an_independent_computation_and_what_the_notebook_published(mixed_run):
    rows = metric_rows(mixed_run.db, mixed_run.run_id)
    assert {r[0] for r in rows} == {"orders"}, "only the succeeded notebook's metrics are loaded"
    loaded = {name: value for _, name, value, _, _, _ in rows}
    expected = expected_orders(mixed_run.orders, *PERIOD, MIN_AMOUNT)
    assert loaded == pytest.approx(expected, abs=1e-4)
    published = {r["metric_name"]: r["value"] for r in printed_records(mixed_run.run_dir / "orders.ipynb")}
    assert loaded == pytest.approx(published, abs=1e-4)
    assert {(r[4], r[5]) for r in rows} == {PERIOD}
    assert mixed_run.manifest["notebooks"]["orders"]["metrics_loaded"] == 2
    kept = (mixed_run.run_dir / "orders.metrics.jsonl").read_text().splitlines()
    assert {r["metric_name"]: r["value"] for r in map(json.loads, kept)} == published
    assert sorted(p.name for p in mixed_run.run_dir.glob("*.metrics.jsonl")) == ["orders.metrics.jsonl"]


def test_manifest_records_run_and_notebooks(mixed_run):
    manifest = mixed_run.manifest
    assert manifest["run_id"] == "mixed-run"
    assert manifest["params_file"].endswith("mixed.yaml")
    assert manifest["period"] == {"start": "2026-03-02", "end": "2026-03-08"}
    assert manifest["started_at"] < manifest["finished_at"]
    assert manifest["package_version"] == __version__
    assert manifest["git_sha"] is None or re.fullmatch(r"[0-9a-f]{40}", manifest["git_sha"])
    assert isinstance(manifest["watermarks"], dict)
    for stem, entry in manifest["notebooks"].items():
        assert entry["duration_s"] > 0, stem
        assert entry["started_at"] <= entry["finished_at"], stem
        assert (entry["error"] is None) == (entry["status"] == "succeeded"), stem


def test_a_secret_printed_by_a_notebook_fails_the_run_and_its_files_are_withheld(mixed_run):
    leaks = {(leak["notebook"], leak["file"], leak["variable"]) for leak in mixed_run.manifest["secret_leaks"]}
    assert leaks == {
        ("leaks", "leaks.html", "STATEX_TEST_TOKEN"),
        ("leaks", "leaks.ipynb", "STATEX_TEST_TOKEN"),
        ("raises", "raises.ipynb", "STATEX_TEST_TOKEN"),  # the traceback quotes the token
    }
    entry = mixed_run.manifest["notebooks"]["leaks"]
    assert entry["error"]["ename"] == "SecretLeakError" and entry["html"] is None and entry["ipynb"] is None
    written = [p for p in mixed_run.outputs.rglob("*") if p.is_file()]
    assert written and not [p for p in written if SECRET.encode() in p.read_bytes()]
    assert "the value of $STATEX_TEST_TOKEN appears in leaks.html" in mixed_run.stderr
    assert SECRET not in mixed_run.stderr
    index = (mixed_run.outputs / "index.html").read_text()
    assert "$STATEX_TEST_TOKEN" in index and "leaks.html" in index


def test_html_is_self_contained_without_code_banners_or_parameters(mixed_run):
    pages = sorted(mixed_run.run_dir.glob("*.html"))
    assert {p.stem for p in pages} == set(MIXED_NOTEBOOKS) - {"leaks"}
    for page in pages:
        markup = page.read_text()
        assert not re.search(r"<script[^>]*\bsrc=", markup), page.name
        assert not re.search(r"<link[^>]*\bhref=[\"']?https?:", markup), page.name
        assert not re.search(r"@import|url\([\"']?https?:", markup), page.name
        for code in ("import os", "publish.metric(", "os.kill(", "time.sleep(", "sys.exit(", "run_id = "):
            assert code not in markup, (page.name, code)
        assert "An Exception was encountered" not in markup and "papermill-error-cell" not in markup
    orders = (mixed_run.run_dir / "orders.html").read_text()
    assert "<title>Orders summary · 2026-03-02 to 2026-03-08</title>" in orders
    assert "orders</p>" in orders and 'class="statex-failure"' not in orders


def test_a_failed_report_opens_with_a_failure_box(mixed_run):
    raises = (mixed_run.run_dir / "raises.html").read_text()
    assert (
        "<strong>This report failed:</strong> ValueError: the API refused token [redacted $STATEX_TEST_TOKEN] "
        "(cell 4); the sections below may be incomplete." in raises
    )
    timed_out = (mixed_run.run_dir / "sleeps.html").read_text()
    assert "This report failed:</strong> cell 4 ran longer than the 5 s cell timeout" in timed_out


def test_progress_shows_each_start_and_end(mixed_run):
    lines = mixed_run.stderr.splitlines()
    for stem in MIXED_NOTEBOOKS:
        assert f"start   {stem}" in lines
    assert any(line.startswith("done    orders succeeded in ") for line in lines)
    assert any(line.startswith("FAILED  kernel_dies kernel_died in ") for line in lines)


def test_failed_notebooks_reach_sentry_tagged_and_scrubbed(mixed_run):
    failed = {stem for stem, status in EXPECTED_STATUS.items() if status != "succeeded"}
    tags = {event["tags"]["notebook"]: event["tags"] for event in mixed_run.events}
    assert set(tags) == failed and len(mixed_run.events) == len(failed)
    for stem, event_tags in tags.items():
        assert event_tags["run_id"] == "mixed-run"
        assert event_tags["status"] == EXPECTED_STATUS[stem]
    payload = json.dumps(mixed_run.events)
    assert SECRET not in payload and mixed_run.dsn not in payload
    raises = next(e for e in mixed_run.events if e["tags"]["notebook"] == "raises")
    assert "the API refused token [redacted $STATEX_TEST_TOKEN]" in json.dumps(raises)
