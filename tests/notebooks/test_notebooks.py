"""Every report notebook as an analyst runs it in JupyterLab: a kernel in notebooks/, the parameters
cell's own defaults (the weekly params file's), after `statex-bi demo` loaded a small warehouse."""

from __future__ import annotations

import json
import os
import re

import nbformat
import papermill
import pytest
from demo_window import SMALL_DEMO_TODAY

from statex_bi import charts
from statex_bi.config import NOTEBOOKS_DIR
from statex_bi.runner.params import load

NOTEBOOKS = sorted(path.stem for path in NOTEBOOKS_DIR.glob("*.ipynb"))


def _outputs(nb) -> list[dict]:
    return [output for cell in nb.cells for output in cell.get("outputs", [])]


def _html(nb) -> str:
    return "\n".join(str(o.get("data", {}).get("text/html", "")) for o in _outputs(nb))


def test_every_notebook_is_tested():
    assert NOTEBOOKS == ["ai_costs", "data_health", "executive_summary", "growth_revenue", "infrastructure_savings",
                         "operations", "test_productivity", "web_api_performance"]


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_each_notebook_shows_data_for_the_weekly_period(lab_notebooks, stem):
    nb = nbformat.read(lab_notebooks / f"{stem}.ipynb", as_version=4)
    errors = [f"{o['ename']}: {o['evalue']}" for o in _outputs(nb) if o.get("output_type") == "error"]
    assert errors == []
    html = _html(nb)
    assert "No warehouse at" not in html and "No source is loaded yet" not in html
    # The period and the values are those `statex-bi run weekly` uses: the lab and the report agree.
    weekly = load("weekly")
    period = weekly.period(today=SMALL_DEMO_TODAY)  # the lab's clock (the lab_notebooks fixture)
    assert f"{period.start:%a %d %b %Y} – {period.end:%a %d %b %Y}" in html
    for name, value in weekly.notebooks[stem].items():
        shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        assert re.search(rf"<th[^>]*>{re.escape(name)}</th><td[^>]*>{re.escape(shown)}</td>", html), name
    # Every chart has rows to draw (an empty one would be the "No data" placeholder).
    specs = [o["data"][charts.LAB_MIMETYPE] for o in _outputs(nb) if charts.LAB_MIMETYPE in o.get("data", {})]
    assert specs or stem == "executive_summary", "the notebook drew no chart"  # the summary is tables only
    for spec in specs:
        rows = [row for dataset in spec.get("datasets", {}).values() for row in dataset]
        assert rows and "No data for this period" not in json.dumps(rows), spec.get("title")


def test_tables_show_rows(lab_notebooks):
    html = _html(nbformat.read(lab_notebooks / "data_health.ipynb", as_version=4))
    assert html.count('<table class="statex-table">') >= 2
    assert "raw_stripe" in html and "raw_ga4" in html


def test_the_kernel_reads_dotenv_and_names_a_missing_warehouse(tmp_path, monkeypatch):
    """A kernel started in a folder with a `.env` (as JupyterLab starts one in notebooks/) reads it; the
    warehouse it names does not exist, which the report says in a visible notice naming the path."""
    missing = tmp_path / "nowhere" / "statex.duckdb"
    monkeypatch.delenv("STATEX_BI_DB", raising=False)
    (tmp_path / ".env").write_text(f"STATEX_BI_DB={missing}\n")
    out = tmp_path / "data_health.out.ipynb"
    cwd = os.getcwd()
    try:
        papermill.execute_notebook(str(NOTEBOOKS_DIR / "data_health.ipynb"), str(out), cwd=str(tmp_path),
                                   kernel_name="python3", progress_bar=False)
    finally:
        os.chdir(cwd)
    html = _html(nbformat.read(out, as_version=4))
    assert f"No warehouse at <code>{missing}</code>" in html
    assert not missing.exists(), "a notebook never creates the warehouse"


@pytest.mark.parametrize("stem", NOTEBOOKS)
def test_every_table_says_what_it_was_read_from(lab_notebooks, stem):
    """Each output that draws a report table (the KPI lineage table aside, which is that record) also says
    which models and sources its rows come from (display.table refuses a frame that does not know)."""
    outputs = [str(o.get("data", {}).get("text/html", ""))
               for o in _outputs(nbformat.read(lab_notebooks / f"{stem}.ipynb", as_version=4))]
    tables = [html for html in outputs if '<table class="statex-table">' in html]
    assert tables
    silent = [re.search(r"<caption>(.*?)</caption>", html).group(1) for html in tables
              if 'class="statex-reads"' not in html or "Read from " not in html]
    assert silent == []
