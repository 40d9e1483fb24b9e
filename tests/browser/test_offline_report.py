"""A real headless Chromium, with every network request failing, draws every chart of an exported report.

The report is the fixture notebook executed by papermill and exported by the runner's own exporter
(statex_bi.runner.export.export_html): the pipeline stakeholders get. Chromium runs with a proxy
that refuses connections and a resolver that resolves nothing, so a chart that needed a CDN would
not draw, and the failed request would show up as a console message.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest
from chromium import CHROMIUM
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
    from statex_bi.runner.export import export_html

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
    from statex_bi.runner.export import export_html

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


# Appended to the page under test: downloads every table's CSV link the way the browser would
# (fetching its href) and copies the texts into a body attribute that --dump-dom shows.
CSV_PROBE = """<script>
window.addEventListener("load", function () {
  var links = Array.prototype.slice.call(document.querySelectorAll("a.statex-csv-link"));
  Promise.all(links.map(function (a) {
    return fetch(a.href).then(function (r) { return r.text(); }).then(function (text) {
      return {file: a.getAttribute("download"), text: text};
    });
  })).then(function (files) {
    document.body.setAttribute("data-csv", encodeURIComponent(JSON.stringify(files)));
  }, function (error) { document.body.setAttribute("data-csv", "error " + error); });
});
</script>"""
CSV_FILES = re.compile(r'<body[^>]*data-csv="([^"]*)"')
# The fixture's table as the notebook builds it: what a reader downloading it must get back.
SALES = {"Channel": ["Organic Search", "Direct", "Referral", "Paid Search"], "Orders": [120, 80, 35, 12],
         "Revenue (EUR)": [4200.5, 2950.0, 1210.25, 380.0], "Share": [0.4321987654, 0.3, 0.2, 0.0678012346]}


def test_each_tables_csv_link_downloads_the_tables_data_at_full_precision(executed, tmp_path):
    import io
    import json
    from urllib.parse import unquote

    import pandas as pd

    from statex_bi.runner.export import export_html

    nb, _ = executed
    page = export_html(nb, tmp_path / "report.html", "Three charts")
    markup = page.read_text(encoding="utf-8")
    end = markup.rindex("</body>")
    page.write_text(markup[:end] + CSV_PROBE + markup[end:], encoding="utf-8")

    dom, console = _chromium(page, tmp_path / "profile")
    # The contents list every section of the page, linked.
    contents = re.search(r'<nav class="statex-toc"[^>]*>.*?</nav>', dom, re.S).group(0)
    assert re.findall(r'<li><a href="#([^"]+)">', contents) == ["Calls-per-day"]
    found = CSV_FILES.search(dom)
    assert found, "the CSV probe did not run"
    files = json.loads(unquote(found.group(1)))
    assert [f["file"] for f in files] == ["sales-by-channel.csv"]
    downloaded = pd.read_csv(io.StringIO(files[0]["text"]))
    pd.testing.assert_frame_equal(downloaded, pd.DataFrame(SALES), check_exact=True)
    assert console == []


def test_the_print_stylesheet_prints_the_report_without_navigation_or_interactive_parts(executed, tmp_path):
    from pypdf import PdfReader

    from statex_bi.runner.export import export_html
    from statex_bi.runner.pdf import print_pdf

    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian package `chromium`; .ci/run installs it)")
    nb, _ = executed
    page = export_html(nb, tmp_path / "report.html", "Three charts")
    markup = page.read_text(encoding="utf-8")
    # On screen every table offers its CSV and the method note is there, collapsed.
    assert "Download this table as CSV" in markup and "How this is computed" in markup

    pdf = print_pdf(page, tmp_path / "report.pdf", CHROMIUM)
    text = " ".join(p.extract_text() for p in PdfReader(pdf).pages)
    assert "Sales by channel" in text and "4,200.50" in text and "43.2%" in text
    assert "Revenue by channel" in text, "the charts are drawn before printing"
    for hidden in ("Contents", "Download this table as CSV", "How this is computed"):
        assert hidden not in text, f"{hidden!r} is for the screen, not for paper"
