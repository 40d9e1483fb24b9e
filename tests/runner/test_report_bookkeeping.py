"""The runner always finishes its bookkeeping: bad metrics fail one notebook, values keep full precision,
a malformed Sentry DSN is refused before anything runs."""

from __future__ import annotations

import json

import pytest
from reportkit import metric_rows, write_notebook, write_params

from statex_bi.exceptions import ConfigError
from statex_bi.runner.run import run_params

PRECISE = {"rate": 0.013712345678901234, "tiny": 4e-5, "huge": 1e12}
SIDECAR_LINE = "import json, os\nopen(os.environ['STATEX_BI_SIDECAR'], 'a').write({line!r} + '\\n')"
NOTEBOOKS = {
    # Through publish.metric, the way reports publish.
    "precise": ["from statex_bi import publish"]
    + [f"publish.metric('precision.{name}', {value!r}, unit='fraction')" for name, value in PRECISE.items()],
    # Notebook code may write its sidecar by hand; the runner checks every line it loads.
    "not_finite": [SIDECAR_LINE.format(line='{"metric_name": "x.nan", "metric_type": "GAUGE", "value": NaN}')],
    "unknown_type": [SIDECAR_LINE.format(line='{"metric_name": "x.rate", "metric_type": "RATE", "value": 0.5}')],
}


@pytest.fixture(scope="module")
def bookkeeping_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bookkeeping")
    for stem, cells in NOTEBOOKS.items():
        write_notebook(root / "notebooks", stem, cells)
    params = write_params(root / "book.yaml", dict.fromkeys(NOTEBOOKS), start="2026-03-02", end="2026-03-08")
    db, outputs = root / "warehouse.duckdb", root / "outputs"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STATEX_BI_DB", str(db))
        patch.setenv("STATEX_BI_OUTPUTS", str(outputs))
        patch.delenv("SENTRY_DSN", raising=False)
        code = run_params(params, jobs=2, run_id="book", quiet=True)
    return code, db, outputs


def test_metrics_keep_full_precision_from_notebook_to_warehouse(bookkeeping_run):
    code, db, _ = bookkeeping_run
    loaded = {name: value for report, name, value, *_ in metric_rows(db, "book") if report == "precise"}
    assert loaded == {f"precision.{name}": value for name, value in PRECISE.items()}, "exact, not approximately"


def test_a_bad_sidecar_line_fails_its_notebook_and_the_rest_is_recorded(bookkeeping_run):
    code, db, outputs = bookkeeping_run
    assert code == 1
    manifest = json.loads((outputs / "book" / "manifest.json").read_text())
    statuses = {stem: entry["status"] for stem, entry in manifest["notebooks"].items()}
    assert statuses == {"precise": "succeeded", "not_finite": "failed", "unknown_type": "failed"}
    assert manifest["errors"] == []
    errors = {stem: manifest["notebooks"][stem]["error"] for stem in ("not_finite", "unknown_type")}
    assert errors["not_finite"]["ename"] == "SidecarError"
    assert errors["not_finite"]["message"] == (
        "its published metrics are invalid: not_finite.metrics.jsonl, line 1: "
        "metric 'x.nan': value nan is not a finite number"
    )
    assert "line 1: metric 'x.rate': metric_type 'RATE' is not one of COUNTER" in errors["unknown_type"]["message"]
    assert {report for report, *_ in metric_rows(db, "book")} == {"precise"}
    assert manifest["notebooks"]["precise"]["metrics_loaded"] == 3
    assert not (outputs / "book" / "not_finite.metrics.jsonl").exists()
    index = (outputs / "index.html").read_text()
    assert 'href="book/precise.html"' in index and "not a finite number" in index


@pytest.mark.parametrize(
    "dsn", ["not a dsn", "https://examplehost/42", "ftp://key@examplehost/42"], ids=["text", "no key", "scheme"]
)
def test_a_malformed_sentry_dsn_is_refused_before_any_notebook_runs(db_file, tmp_path, monkeypatch, dsn):
    write_notebook(tmp_path / "notebooks", "quick", ["print('ran')"])
    params = write_params(tmp_path / "dsn.yaml", {"quick": None})
    monkeypatch.setenv("SENTRY_DSN", dsn)
    with pytest.raises(ConfigError, match=r"^\$SENTRY_DSN is malformed \(.+\); it looks like https://") as raised:
        run_params(params, quiet=True)
    assert dsn not in str(raised.value)
    assert not (db_file.parent / "outputs").exists() and not db_file.exists(), "nothing ran"
