"""A notebook exported from the lab with plain `jupyter nbconvert --to html` (JupyterLab's "Export as
HTML": no statex template, no Vega bundle) shows every chart offline, as the static picture each
chart carries; an untrusted notebook keeps a styled header."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from chromium import chromium_dom

from statex_bi import charts

pytestmark = pytest.mark.browser

JUPYTER = Path(sys.executable).with_name("jupyter")
DRAWN_CHART = re.compile(r"<svg[^>]*\bclass=\"marks\"")


def _nbconvert(notebook: Path, folder: Path, *extra: str) -> Path:
    command = [str(JUPYTER), "nbconvert", "--to", "html", *extra, "--output-dir", str(folder), str(notebook)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return folder / f"{notebook.stem}.html"


def _charts(nb) -> int:
    return sum(charts.LAB_MIMETYPE in o.get("data", {}) for cell in nb.cells for o in cell.get("outputs", []))


@pytest.mark.parametrize("stem", ["ai_costs", "growth_revenue"])
def test_plain_nbconvert_export_shows_every_chart_offline(lab_notebooks, tmp_path, stem):
    notebook = lab_notebooks / f"{stem}.ipynb"
    expected = _charts(nbformat.read(notebook, as_version=4))
    assert expected >= 3
    page = _nbconvert(notebook, tmp_path)
    dom, console = chromium_dom(page, tmp_path / "profile")
    assert len(DRAWN_CHART.findall(dom)) == expected
    assert "This chart needs the Vega bundle" not in dom
    # Only the note that charts are static pictures here; nothing failed to load.
    assert [line for line in console if "shows its static picture" not in line] == []



# Reads the computed style of the header's parts into a body attribute that --dump-dom shows.
STYLE_PROBE = """<script>
window.addEventListener("load", function () {
  function style(selector, property) {
    var element = document.querySelector(selector);
    return element ? getComputedStyle(element)[property] : "missing";
  }
  document.body.setAttribute("data-styles", JSON.stringify({
    header_border: style(".statex-header", "borderBottomStyle"),
    h2_transform: style(".statex-header h2", "textTransform"),
    th_align: style(".statex-kv th", "textAlign"),
    grid_display: style(".statex-grid", "display")
  }));
});
</script>"""


def test_an_untrusted_notebook_keeps_a_styled_header(lab_notebooks, tmp_path):
    """JupyterLab drops every <style> element from an untrusted notebook's HTML outputs and keeps inline
    styles (its sanitizer's rules): the header drawn that way still looks like the header."""
    nb = nbformat.read(lab_notebooks / "ai_costs.ipynb", as_version=4)
    (header,) = [
        o["data"]["text/html"] for c in nb.cells for o in c.get("outputs", [])
        if "statex-header" in str(o.get("data", {}).get("text/html", ""))
    ]
    untrusted = re.sub(r"<style>.*?</style>", "", header, flags=re.DOTALL)
    page = tmp_path / "untrusted.html"
    page.write_text(f"<!DOCTYPE html><html><body>{untrusted}{STYLE_PROBE}</body></html>", encoding="utf-8")
    dom, _ = chromium_dom(page, tmp_path / "profile")
    styles = json.loads(re.search(r'data-styles="([^"]*)"', dom).group(1).replace("&quot;", '"'))
    assert styles == {"header_border": "solid", "h2_transform": "uppercase", "th_align": "left", "grid_display": "flex"}
