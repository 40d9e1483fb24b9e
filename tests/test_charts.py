"""The chart theme and the offline renderer: one small script per chart, the bundle once per page."""

from __future__ import annotations

import json
import re

import altair as alt
import nbformat
import pandas as pd
import pytest

from statex_bi import charts

SALES = pd.DataFrame({"channel": ["Direct", "Referral", "Organic"], "orders": [3, 1, 7], "eur": [9.5, 2.25, 30.0]})


def _mimebundle(chart: alt.TopLevelMixin) -> tuple[dict, dict]:
    return chart._repr_mimebundle_()


def test_the_statex_theme_is_registered_and_enabled_with_system_fonts():
    assert alt.theme.active == charts.THEME_NAME
    config = charts.bar(SALES, "channel", "orders").to_dict()["config"]
    assert config["font"] == charts.FONT
    assert config["range"]["category"] == charts.PALETTE
    # No web font: nothing in the theme points anywhere.
    assert not re.search(r"https?:|url\(|@font-face", json.dumps(config))
    assert "sans-serif" in charts.FONT.split(", ")[-1]


def test_each_chart_renders_as_its_own_div_and_vegaembed_call_without_the_bundle():
    assert alt.renderers.active == charts.RENDERER_NAME
    made = [
        charts.bar(SALES, "channel", "eur", title="Revenue"),
        charts.line(pd.DataFrame({"day": pd.date_range("2026-10-01", periods=3), "n": [1, 4, 2]}), "day", "n"),
        alt.Chart(SALES).mark_point().encode(x="orders", y="eur", tooltip=["channel"]),
    ]
    scripts, ids = [], []
    for chart in made:
        bundle, metadata = _mimebundle(chart)
        assert set(bundle) == {charts.JS_MIMETYPE, charts.LAB_MIMETYPE, charts.SVG_MIMETYPE, "text/plain"}
        script = bundle[charts.JS_MIMETYPE]
        assert script.count('document.createElement("div")') == 1
        assert script.count("window.vegaEmbed(chart,") == 1
        ids += re.findall(r'chart\.id = "(statex-chart-[0-9a-f]+)"', script)
        scripts.append(script)
        # JupyterLab gets the spec itself, with the same embed options.
        assert bundle[charts.LAB_MIMETYPE] == chart.to_dict()
        assert metadata[charts.LAB_MIMETYPE]["embed_options"]["renderer"] == "svg"
    assert len(ids) == 3 and len(set(ids)) == 3
    for script in scripts:
        assert "window.vegaEmbed=" not in script  # the bundle's own definition
        assert len(script) < 200_000  # the bundle is about 900 kB; the static SVG fallback is a few kB


def test_the_spec_cannot_end_the_inline_script():
    chart = alt.Chart(pd.DataFrame({"label": ["</script><script>alert(1)</script>", "<!-- x"]})).mark_text().encode(
        text="label"
    )
    script = _mimebundle(chart)[0][charts.JS_MIMETYPE]
    assert "</script" not in script.lower() and "<!--" not in script
    # The escaped JSON still decodes to the original spec.
    start = script.index("window.vegaEmbed(chart, ") + len("window.vegaEmbed(chart, ")
    spec, _ = json.JSONDecoder().raw_decode(script, start)
    assert spec == chart.to_dict()


def test_nbconvert_exports_the_vegaembed_script_not_the_lab_spec():
    from nbconvert import HTMLExporter

    nb = nbformat.v4.new_notebook()
    for chart in (charts.bar(SALES, "channel", "orders"), charts.bar(SALES, "channel", "eur")):
        bundle, metadata = _mimebundle(chart)
        nb.cells.append(
            nbformat.v4.new_code_cell(outputs=[nbformat.v4.new_output("display_data", data=bundle, metadata=metadata)])
        )
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nb)
    assert body.count('data-mime-type="application/javascript"') == 2
    assert len(set(re.findall(r"statex-chart-[0-9a-f]+", body))) == 2
    assert "statex-bi chart: shown in" not in body  # the text/plain fallback was not chosen


def test_javascript_bundle_defines_vegaembed_once_and_is_cached():
    source = charts.javascript_bundle()
    assert source is charts.javascript_bundle()
    assert source.count("window.vegaEmbed=") == 1
    assert "</script" not in source.lower()
    assert not re.search(r"\bimport\s*\(|\bfrom\s*['\"]https?:", source)


def test_small_whole_number_axes_tick_on_whole_numbers():
    axis = charts.bar(SALES, "channel", "orders").to_dict()["encoding"]["x"]["axis"]
    assert axis["tickCount"] == SALES["orders"].max()
    assert "tickCount" not in charts.bar(SALES, "channel", "eur").to_dict()["encoding"]["x"]["axis"]


def test_fixed_colours_follow_their_values():
    frame = SALES.assign(status=["stale", "fresh", "fresh"])
    scale = charts.bar(frame, "channel", "orders", color="status", colors={"fresh": charts.GOOD, "stale": charts.BAD})
    encoded = scale.to_dict()["encoding"]["color"]["scale"]
    assert dict(zip(encoded["domain"], encoded["range"], strict=True)) == {"fresh": charts.GOOD, "stale": charts.BAD}


@pytest.mark.parametrize("make", [lambda f: charts.bar(f, "channel", "orders"), lambda f: charts.line(f, "d", "n")])
def test_an_empty_frame_gives_a_no_data_chart(make):
    spec = make(pd.DataFrame({"channel": [], "orders": [], "d": [], "n": []})).to_dict()
    assert spec["mark"]["type"] == "text"
    assert spec["datasets"][spec["data"]["name"]] == [{"message": "No data for this period"}]
