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


# --- honest charts (issue 8, item 6) ----------------------------------------------------------------

def _layers(spec: dict) -> list[dict]:
    """Every single-view spec inside a (possibly concatenated or layered) chart spec."""
    found = []
    for key in ("hconcat", "vconcat", "layer"):
        for part in spec.get(key, []):
            found += _layers(part)
    return found or [spec]


def test_a_day_without_cost_is_drawn_as_zero_not_bridged():
    from datetime import date

    from statex_bi.periods import Period

    costs = pd.DataFrame({"day": pd.to_datetime(["2026-11-23", "2026-11-26"]), "tier": ["openai", "azure"],
                          "cost_usd": [0.5, 0.25]})
    week = Period(date(2026, 11, 23), date(2026, 11, 29))
    chart = charts.line(costs, "day", "cost_usd", color="tier", zero_fill=week)
    drawn = chart.data
    assert len(drawn) == 7 * 2, "every day of the period, for every tier"
    openai = drawn[drawn["tier"] == "openai"].set_index("day")["cost_usd"]
    assert openai[pd.Timestamp("2026-11-24")] == 0 and openai[pd.Timestamp("2026-11-23")] == 0.5
    assert drawn["cost_usd"].sum() == pytest.approx(0.75)


def test_partial_buckets_at_the_period_edges_are_left_out_and_said_so():
    weeks = pd.DataFrame({
        "bucket_start": pd.to_datetime(["2026-09-28", "2026-10-05", "2026-10-12", "2026-10-26"]),
        "rate": [0.0, 0.031, 0.029, 0.0], "partial": [True, False, False, True],
    })
    spec = charts.line(weeks, "bucket_start", "rate", partial="partial", title="Conversion").to_dict()
    values = spec["datasets"][next(iter(spec["datasets"]))]
    assert [v["rate"] for v in values] == [0.031, 0.029], "no fall to 0% at the edges"
    assert spec["title"]["subtitle"] == "2 partial buckets at the period's edges left out"


def test_the_funnel_labels_each_step_with_its_conversion_and_draws_rates_on_their_own_scale():
    steps = pd.DataFrame({
        "step": ["sessions", "sign_up", "prototype_request", "first_payment"],
        "label": ["Sessions", "Sign-ups", "Prototype requests", "First successful payments"],
        "count": pd.array([4692, 141, 50, 18], dtype="Int64"),
        "rate_of": [None, "sessions", "sessions", "prototype_request"],
        "rate": [float("nan"), 141 / 4692, 50 / 4692, 18 / 50],
    })
    spec = charts.funnel(steps).to_dict()
    values = spec["datasets"][next(iter(spec["datasets"]))]
    assert [v["text"] for v in values] == [
        "4,692", "141 · 3.01% of sessions", "50 · 1.07% of sessions", "18 · 36.00% of prototype requests"]
    layers = _layers(spec)
    assert any(layer.get("mark", {}).get("type") == "text" for layer in layers)
    xs = [layer.get("encoding", {}).get("x", {}) for layer in layers]
    rate_axes = [x for x in xs if x.get("field") == "rate"]
    assert rate_axes and rate_axes[0]["axis"]["format"] == ".1%"


@pytest.mark.parametrize(
    "make",
    [
        lambda: charts.line(pd.DataFrame({"day": [], "n": []}), "day", "n", empty="No AI calls in this period"),
        lambda: charts.line(pd.DataFrame({"day": pd.to_datetime(["2026-10-01"]), "n": [float("nan")]}), "day", "n",
                            empty="No AI calls in this period"),
        lambda: charts.bar(pd.DataFrame({"c": ["a"], "v": [float("nan")]}), "c", "v",
                           empty="No AI calls in this period"),
        lambda: charts.funnel(pd.DataFrame({"label": [], "count": [], "rate": [], "rate_of": []}),
                              empty="No AI calls in this period"),
        lambda: charts.waterfall(pd.DataFrame({"step": ["Gross", "Net"], "amount": [0.0, 0.0], "start": [0.0, 0.0],
                                               "end": [0.0, 0.0], "kind": ["total", "total"], "currency": "EUR"}),
                                 empty="No AI calls in this period"),
    ],
    ids=["line-empty", "line-all-missing", "bar-all-missing", "funnel-empty", "waterfall-zero"],
)
def test_an_empty_period_says_so_in_the_charts_place(make):
    spec = make().to_dict()
    values = spec["datasets"][next(iter(spec["datasets"]))]
    assert values == [{"message": "No AI calls in this period"}]


def test_the_waterfall_goes_from_gross_to_net_in_the_reporting_currency():
    from statex_bi.kpis.growth_revenue import revenue

    money = pd.DataFrame([{"provider": "all", "gross": 1000.0, "refunds": 100.0, "fees": 30.0, "net": 870.0,
                           "currency": "EUR"}])
    spec = charts.waterfall(revenue.waterfall(money), title="From gross to net").to_dict()
    values = spec["datasets"][next(iter(spec["datasets"]))]
    assert [(v["step"], v["start"], v["end"]) for v in values] == [
        ("Gross", 0.0, 1000.0), ("Refunds", 1000.0, 900.0), ("Fees", 900.0, 870.0), ("Net", 0.0, 870.0)]
    assert spec["encoding"]["y"]["title"] == "EUR"


def test_latency_bars_switch_to_seconds_when_long():
    tiers = pd.DataFrame({"tier": ["ollama", "openai"], "latency_p95_ms": [121_500.0, 2_400.0]})
    spec = charts.bar(tiers, "tier", "latency_p95_ms", milliseconds=True).to_dict()
    values = spec["datasets"][next(iter(spec["datasets"]))]
    assert [v["latency_p95_ms"] for v in values] == [121.5, 2.4]
    assert spec["encoding"]["x"]["title"] == "seconds"
    short = charts.bar(tiers.assign(latency_p95_ms=[850.0, 120.0]), "tier", "latency_p95_ms", milliseconds=True)
    assert short.to_dict()["encoding"]["x"]["title"] == "ms"
