"""The stakeholder page and the secret scan, on notebooks built in memory (no kernel)."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from statex_bi import charts
from statex_bi.config import CACHE_DIR_ENV
from statex_bi.runner import export
from statex_bi.runner.export import export_html
from statex_bi.runner.status import source_cell
from statex_bi.secrets import redact, scan

SECRET = {"STATEX_TEST_TOKEN": 'tok<"&>-123456'}
BANNER = "papermill-error-cell-tag"


def _executed(*outputs) -> nbformat.NotebookNode:
    return new_notebook(
        cells=[
            new_markdown_cell("An Exception was encountered at 'In [3]'.", metadata={"tags": [BANNER]}),
            new_markdown_cell("# Revenue\n\nThe week in numbers."),
            new_code_cell('period_start = "2026-01-01"', metadata={"tags": ["parameters"]}),
            new_code_cell('# Parameters\nperiod_start = "2026-03-02"', metadata={"tags": ["injected-parameters"]}),
            new_code_cell("show_chart()", outputs=list(outputs)),
        ]
    )


def test_page_hides_code_parameters_and_banners_and_names_the_failure(tmp_path):
    error = new_output("error", ename="KeyError", evalue="'eur'", traceback=["Traceback", "show_chart()"])
    title, failure = "Revenue · 2026-03-02 to 2026-03-08", "KeyError: '<eur>' (cell 3)"
    page = export_html(_executed(error), tmp_path / "r.html", title, failure)
    markup = page.read_text()
    assert "<title>Revenue · 2026-03-02 to 2026-03-08</title>" in markup
    assert "The week in numbers." in markup
    for hidden in ("An Exception was encountered", "# Parameters", "2026-01-01", "show_chart()", "Traceback"):
        assert hidden not in markup, hidden
    box = "This report failed:</strong> KeyError: '&lt;eur&gt;' (cell 3); the sections below may be incomplete."
    assert box in markup
    assert "This section stopped with an error (KeyError)" in markup
    assert "<script" not in markup, "a page without charts carries no script at all"


def test_page_leaves_out_stderr_such_as_a_librarys_warning_naming_a_file(tmp_path):
    """The demo's web/API page showed scipy's RuntimeWarning with /work/main/statex_bi/...py:200 and a line of code."""
    warning = new_output("stream", name="stderr", text=(
        "/home/analyst/statex_bi/kpis/web_api_performance.py:285: RuntimeWarning: The confidence interval is "
        'undefined at some observations.\n  band = survival.confidence_interval(0.95, method="log-log")\n'))
    printed = new_output("stream", name="stdout", text="3 routes measured\n")
    executed = _executed(warning, printed)
    markup = export_html(executed, tmp_path / "w.html", "Web").read_text()

    assert "RuntimeWarning" not in markup and "/home/analyst" not in markup and "confidence_interval" not in markup
    assert "3 routes measured" in markup
    assert executed.cells[-1].outputs[0] == warning, "the executed notebook keeps it"


def test_vega_bundle_is_inlined_once_in_head_only_when_a_chart_needs_it(tmp_path):
    chart = new_output("display_data", data={"application/javascript": "window.vegaEmbed(el, {}, {});"})
    markup = export_html(_executed(chart, chart), tmp_path / "c.html", "Charts").read_text()
    bundle = charts.javascript_bundle()
    assert markup.count(bundle) == 1
    assert markup.index(bundle) < markup.index("</head>")
    assert "<script src" not in markup


@pytest.fixture
def bundle_cache(tmp_path, monkeypatch):
    """An empty cache folder of statex-bi ($STATEX_BI_CACHE_DIR) and no Vega bundle read in this process yet."""
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "cache"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    export.vega_bundle.cache_clear()
    yield tmp_path
    export.vega_bundle.cache_clear()


def test_the_vega_bundle_is_kept_in_the_cache_folder_and_read_from_it_by_the_next_process(bundle_cache,
                                                                                          monkeypatch):
    """In $STATEX_BI_CACHE_DIR, beside dbt's parse: not in another folder that the setting does not move."""
    built = export.vega_bundle()

    (kept,) = (bundle_cache / "cache").glob("vega-bundle-*.js")
    assert kept.read_text(encoding="utf-8") == built
    assert not (bundle_cache / "xdg").exists()
    export.vega_bundle.cache_clear()  # as in a new process

    def build_again():
        raise AssertionError("built again although the cache folder holds it")

    monkeypatch.setattr(charts, "javascript_bundle", build_again)
    assert export.vega_bundle() == built


def test_scan_finds_values_raw_html_and_json_escaped_and_redact_removes_them(tmp_path):
    value = SECRET["STATEX_TEST_TOKEN"]
    raw, page, notebook, clean = (tmp_path / n for n in ("a.log", "b.html", "c.ipynb", "d.html"))
    raw.write_text(f"token={value}")
    page.write_text("<p>tok&lt;&quot;&amp;&gt;-123456</p>")
    notebook.write_text(json.dumps({"text": value}))
    clean.write_text("<p>nothing here</p>")
    found = {(leak.path.name, leak.variable) for leak in scan([raw, page, notebook, clean, tmp_path / "gone"], SECRET)}
    assert found == {(name, "STATEX_TEST_TOKEN") for name in ("a.log", "b.html", "c.ipynb")}
    assert redact(f"x {value} y", SECRET) == "x [redacted $STATEX_TEST_TOKEN] y"


def test_cell_numbers_count_the_committed_notebook_not_the_injected_cell():
    parameters = new_code_cell("a = 1", metadata={"tags": ["parameters"]})
    committed = new_notebook(cells=[new_markdown_cell("# T"), parameters, new_code_cell("b")])
    # executed: 0 title, 1 parameters, 2 injected, 3 "b"
    assert [source_cell(i, committed) for i in (0, 1, 2, 3)] == [1, 2, None, 3]
    untagged = new_notebook(cells=[new_code_cell("b")])
    assert [source_cell(i, untagged) for i in (0, 1)] == [None, 1]
