"""A real headless Chromium, with every network request failing, draws every chart of an exported report.

The report is the fixture notebook executed by papermill and exported by the runner's own exporter
(statex_bi.reports.export.export_html): the pipeline stakeholders get. Chromium runs with a proxy
that refuses connections and a resolver that resolves nothing, so a chart that needed a CDN would
not draw, and the failed request would show up as a console message.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from chromium import chromium_dom as _chromium

pytestmark = pytest.mark.browser

FIXTURE = Path(__file__).parent / "fixtures" / "three_charts.ipynb"
# vega's SVG renderer draws each chart into one <svg class="marks">.
DRAWN_CHART = re.compile(r"<svg[^>]*\bclass=\"marks\"")
CHART_DIV = re.compile(r"<div id=\"(statex-chart-[0-9a-f]+)\"")
# vega-embed wraps each chart it draws (interactive, with tooltips) in a div of this class.
INTERACTIVE = re.compile(r"<div[^>]*\bclass=\"[^\"]*\bvega-embed\b")


# Appended to the page under test: hovers the first bar of the first chart the way a pointer would,
# then copies the tooltip's text into a body attribute that --dump-dom shows.
HOVER_PROBE = """<script>
window.addEventListener("load", function () {
  setTimeout(function () {
    var chart = document.querySelector(".statex-chart");
    var bar = chart && chart.querySelector('svg.marks path[aria-roledescription="bar"]');
    if (!bar) { document.body.setAttribute("data-tooltip", "no bar"); return; }
    var box = bar.getBoundingClientRect();
    var at = {bubbles: true, clientX: box.left + box.width / 2, clientY: box.top + box.height / 2};
    bar.dispatchEvent(new PointerEvent("pointerover", at));
    bar.dispatchEvent(new MouseEvent("mouseover", at));
    bar.dispatchEvent(new PointerEvent("pointermove", at));
    bar.dispatchEvent(new MouseEvent("mousemove", at));
    setTimeout(function () {
      var tip = document.getElementById("vg-tooltip-element");
      document.body.setAttribute("data-tooltip", tip ? tip.textContent : "no tooltip");
    }, 500);
  }, 1000);
});
</script>"""
TOOLTIP = re.compile(r'<body[^>]*data-tooltip="([^"]*)"')


def _charts_in(nb) -> int:
    """Chart outputs the notebook produced (what the browser must draw)."""
    return sum(
        "vegaEmbed" in str(output.get("data", {}).get("application/javascript", ""))
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    import papermill

    folder = tmp_path_factory.mktemp("browser")
    output = folder / "three_charts.executed.ipynb"
    papermill.execute_notebook(
        str(FIXTURE), str(output), kernel_name="python3", progress_bar=False, cwd=str(folder)
    )
    return nbformat.read(output, as_version=4), folder


def test_every_chart_draws_offline_without_console_errors(executed, tmp_path):
    from statex_bi.reports.export import export_html

    nb, _ = executed
    expected = _charts_in(nb)
    assert expected == 3
    page = export_html(nb, tmp_path / "report.html", "Three charts")
    markup = page.read_text(encoding="utf-8")
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"https?://", markup), "the page loads something remote"
    assert markup.count("window.vegaEmbed=") == 1, "the Vega bundle must be inlined exactly once"

    end = markup.rindex("</body>")
    page.write_text(markup[:end] + HOVER_PROBE + markup[end:], encoding="utf-8")

    dom, console = _chromium(page, tmp_path / "profile")
    assert len(DRAWN_CHART.findall(dom)) == expected
    assert len(INTERACTIVE.findall(dom)) == expected, "vega-embed drew each chart, not the static fallback"
    ids = CHART_DIV.findall(dom)
    assert len(ids) == expected and len(set(ids)) == expected
    assert console == []
    # Hovering the largest bar shows its row, formatted as the chart asked.
    tooltip = TOOLTIP.search(dom)
    assert tooltip, "the hover probe did not run"
    assert tooltip.group(1) == "channelOrganic Searchorders120revenue_eur4,200.50"
    # The chart title with markup in it stayed text: the spec cannot break out of its <script>.
    assert "Orders and revenue &lt;/script&gt;&lt;b&gt;escaped&lt;/b&gt;" in dom


def test_the_check_sees_charts_that_do_not_draw(executed, tmp_path):
    """Without the bundle (a report relying on a CDN would be the same) no chart is interactive: each shows
    the static picture it carries, and the console says so."""
    from statex_bi.reports.export import export_html

    nb, _ = executed
    page = export_html(nb, tmp_path / "report.html", "Three charts")
    markup = page.read_text(encoding="utf-8")
    bundle_at = markup.index("window.vegaEmbed=")
    start, end = markup.rindex("<script", 0, bundle_at), markup.index("</script>", bundle_at) + len("</script>")
    page.write_text(markup[:start] + markup[end:], encoding="utf-8")

    dom, console = _chromium(page, tmp_path / "profile")
    assert INTERACTIVE.findall(dom) == []
    assert len(DRAWN_CHART.findall(dom)) == _charts_in(nb)
    assert len([line for line in console if "vegaEmbed is not loaded" in line]) == _charts_in(nb)
