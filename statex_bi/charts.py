"""One chart look for every report, and charts that stay interactive in offline HTML.

Importing this module registers and enables:

- the `statex` Altair theme: system font stack (no web fonts), one colour palette, readable sizes;
- the `statex` Altair renderer. Each chart's MIME bundle holds
  * `application/javascript`: a few lines that add a uniquely named `<div>` and call `vegaEmbed(...)`
    with the spec. nbconvert's HTML exporter ranks this type above every other one we emit, so an
    exported report contains one small script per chart and *no* Vega bundle; the report export
    (statex_bi.runner) puts `javascript_bundle()` once in the page's `<head>`.
  * `application/vnd.vegalite.v5+json`: the spec itself, which JupyterLab (4.x) draws with its own
    bundled Vega, offline, ranking it above the JavaScript entry. JupyterLab knows Vega-Lite mimetypes
    up to v5 only; Altair 6 specs draw with its Vega-Lite 5.6 (checked in JupyterLab 4.6: vega-embed
    only logs a version warning).
  * `image/svg+xml`: the chart drawn once by vl-convert, for viewers that run no script.
  * `text/plain`: a placeholder for plain consoles.

Tooltips work in both places (vega-embed's default tooltip handler). A notebook exported from the lab
with plain `jupyter nbconvert --to html` has no Vega bundle: there the script shows the static SVG
it carries instead, so every chart still shows, offline.
"""

from __future__ import annotations

import functools
import json
import uuid
from typing import Any

import altair as alt
import pandas as pd

from statex_bi.periods import Period

THEME_NAME = "statex"
RENDERER_NAME = "statex"
LAB_MIMETYPE = "application/vnd.vegalite.v5+json"
JS_MIMETYPE = "application/javascript"
SVG_MIMETYPE = "image/svg+xml"

# The fonts a reader's machine already has; a report must never fetch a web font.
FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Liberation Sans", sans-serif'
# Okabe-Ito, reordered: distinguishable with the common colour-vision deficiencies and in greyscale print.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#56B4E9", "#CC79A7", "#F0E442", "#000000"]
PRIMARY = PALETTE[0]
# Status colours, the same meaning in every report (e.g. fresh / stale / no data / not judged).
GOOD, WARN, BAD, NEUTRAL = "#009E73", "#E69F00", "#D55E00", "#8c959f"
TEXT = "#1f2328"
MUTED = "#57606a"
GRID = "#e6e8eb"

# vega-embed options for exported reports: SVG (crisp, printable) and no "Open in Vega Editor" link,
# which would post the data to an external site.
EMBED_OPTIONS: dict[str, Any] = {
    "renderer": "svg",
    "actions": {"export": True, "source": False, "compiled": False, "editor": False},
}


@alt.theme.register(THEME_NAME, enable=True)
def statex_theme() -> alt.theme.ThemeConfig:
    """The Altair theme of every statex-bi report."""
    return {
        "config": {
            "font": FONT,
            "background": "white",
            "padding": 8,
            "view": {"continuousWidth": 560, "continuousHeight": 260, "stroke": None},
            "range": {"category": PALETTE},
            "title": {"font": FONT, "fontSize": 15, "fontWeight": 600, "color": TEXT, "anchor": "start", "offset": 10},
            "axis": {
                "labelFont": FONT,
                "titleFont": FONT,
                "labelFontSize": 12,
                "titleFontSize": 12,
                "titleFontWeight": 600,
                "labelColor": MUTED,
                "titleColor": TEXT,
                "gridColor": GRID,
                "domainColor": "#8c959f",
                "tickColor": "#8c959f",
                # Table and channel names are long: show up to ~40 characters before cutting.
                "labelLimit": 280,
            },
            # Fewer, rounder ticks than Vega's default of one per 40 px.
            "axisQuantitative": {"tickCount": 6},
            "legend": {
                "labelFont": FONT,
                "titleFont": FONT,
                "labelFontSize": 12,
                "titleFontSize": 12,
                "labelColor": TEXT,
                "titleColor": TEXT,
                "orient": "bottom",
            },
            "header": {"labelFont": FONT, "titleFont": FONT, "labelFontSize": 12, "titleFontSize": 13},
            "text": {"font": FONT, "fontSize": 12, "color": TEXT},
            "bar": {"color": PRIMARY},
            "line": {"color": PRIMARY, "strokeWidth": 2},
            "point": {"color": PRIMARY, "size": 40},
            "area": {"color": PRIMARY, "opacity": 0.7},
            "rule": {"color": MUTED},
        }
    }


def _script_safe_json(value: Any) -> str:
    """JSON that can sit inside an inline <script>: no '</script>' or '<!--' can end it early."""
    text = json.dumps(value, separators=(",", ":"), sort_keys=True)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


# `element` is the output <div> nbconvert's template defines before the script; `currentScript` is
# the fallback in pages that inline the script some other way. Waiting for DOMContentLoaded covers a
# bundle placed after the charts (or loaded as a module).
_EMBED_JS = """(function () {
  var host = document.currentScript ? document.currentScript.parentNode : element;
  var chart = document.createElement("div");
  chart.id = %(chart_id)s;
  chart.className = "statex-chart";
  host.appendChild(chart);
  function draw() {
    if (typeof window.vegaEmbed !== "function") {
      // A page without the Vega bundle (plain nbconvert): the chart as drawn in the kernel, not interactive.
      chart.innerHTML = %(static_svg)s;
      console.warn("statex-bi: vegaEmbed is not loaded; chart " + chart.id + " shows its static picture");
      return;
    }
    window.vegaEmbed(chart, %(spec)s, %(options)s).catch(function (error) {
      chart.textContent = "Chart could not be drawn: " + error;
      console.error(error);
    });
  }
  if (typeof window.vegaEmbed === "function" || document.readyState !== "loading") { draw(); }
  else { window.addEventListener("DOMContentLoaded", draw); }
})();"""


def embed_script(
    spec: dict[str, Any],
    chart_id: str,
    embed_options: dict[str, Any] | None = None,
    static_svg: str | None = None,
) -> str:
    """The JavaScript that draws one chart into a new `<div id=chart_id>` with vegaEmbed.

    Args:
        spec: the Vega-Lite spec (`chart.to_dict()`).
        chart_id: a page-unique id for the chart's div.
        embed_options: vega-embed options merged over EMBED_OPTIONS.
        static_svg: what the div shows on a page without the Vega bundle (default: a short note).

    Returns:
        The script body (no `<script>` tag; nbconvert wraps it).
    """
    options = {**EMBED_OPTIONS, **(embed_options or {})}
    return _EMBED_JS % {
        "chart_id": json.dumps(chart_id),
        "spec": _script_safe_json(spec),
        "options": _script_safe_json(options),
        "static_svg": _script_safe_json(static_svg if static_svg is not None else _NO_BUNDLE_NOTE),
    }


_NO_BUNDLE_NOTE = '<p class="statex-note">This chart needs the Vega bundle of a statex-bi report page.</p>'


def _vegalite_version() -> str | None:
    """The Vega-Lite version Altair writes, when vl-convert ships it (None: vl-convert's newest)."""
    import vl_convert

    wanted = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
    return wanted if wanted in vl_convert.get_vegalite_versions() else None


def static_svg(spec: dict[str, Any]) -> str:
    """The chart as one SVG document, drawn by vl-convert (no browser, no network)."""
    import vl_convert

    return vl_convert.vegalite_to_svg(spec, vl_version=_vegalite_version())


def statex_renderer(spec: dict[str, Any], **metadata: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Altair renderer: vegaEmbed script for exported HTML, Vega-Lite JSON for JupyterLab, a static SVG.

    Args:
        spec: the chart's Vega-Lite spec.
        metadata: renderer options; `embed_options` (as from `alt.renderers.set_embed_options`).

    Returns:
        (MIME bundle, metadata) for IPython's display machinery.
    """
    embed_options = {**EMBED_OPTIONS, **metadata.get("embed_options", {})}
    chart_id = f"statex-chart-{uuid.uuid4().hex}"
    svg = static_svg(spec)
    bundle = {
        JS_MIMETYPE: embed_script(spec, chart_id, metadata.get("embed_options"), svg),
        LAB_MIMETYPE: spec,
        SVG_MIMETYPE: svg,
        "text/plain": "<statex-bi chart: shown in JupyterLab and in exported reports>",
    }
    return bundle, {LAB_MIMETYPE: {"embed_options": embed_options}}


alt.renderers.register(RENDERER_NAME, statex_renderer)
alt.renderers.enable(RENDERER_NAME)


@functools.cache
def javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script defining `window.vegaEmbed`; put it once per page.

    The Vega-Lite version matches the schema Altair writes when vl-convert ships it (else its newest).

    Returns:
        JavaScript source (about 0.9 MB) with no external reference, safe to inline in `<script>`.
    """
    import vl_convert

    source = vl_convert.javascript_bundle(vl_version=_vegalite_version())
    # An inline script ends at the first '</script'; inside JS strings '<\/' means the same text.
    return source.replace("</script", "<\\/script")


def _tooltip(frame: pd.DataFrame, formats: dict[str, str]) -> list[alt.Tooltip]:
    tips = []
    for column in frame.columns:
        fmt = formats.get(column)
        tips.append(alt.Tooltip(column, format=fmt) if fmt else alt.Tooltip(column))
    return tips


def _axis(values: pd.Series, fmt: str) -> alt.Axis:
    """An axis; small whole-number series (counts) get ticks on whole numbers only, not 0, 0.5, 1, ..."""
    if pd.api.types.is_integer_dtype(values):
        span = max(int(values.max()), 0) - min(int(values.min()), 0)
        if 0 < span <= 10:
            return alt.Axis(format=fmt, tickCount=span)
    return alt.Axis(format=fmt)


def _color(column: str, colors: dict[str, str] | None) -> alt.Color:
    if not colors:
        return alt.Color(f"{column}:N")
    return alt.Color(f"{column}:N", scale=alt.Scale(domain=list(colors), range=list(colors.values())))


def no_data(title: str | None = None, message: str = "No data for this period") -> alt.Chart:
    """A small chart that says there is nothing to draw (what `bar`/`line` return for an empty frame)."""
    chart = (
        alt.Chart(pd.DataFrame({"message": [message]}))
        .mark_text(fontSize=13, color=MUTED, align="left", x=0, y=20)
        .encode(text="message:N")
        .properties(height=40)
    )
    return chart.properties(title=title) if title else chart


def bar(
    frame: pd.DataFrame,
    category: str,
    value: str,
    *,
    title: str | None = None,
    value_title: str | None = None,
    value_format: str = ",.0f",
    color: str | None = None,
    colors: dict[str, str] | None = None,
    empty: str = "No data for this period",
    milliseconds: bool = False,
) -> alt.Chart:
    """Horizontal bars, largest first, with every column of `frame` in the tooltip.

    Args:
        frame: one row per bar.
        category: column naming each bar (drawn on the y axis, so long names stay readable).
        value: numeric column giving each bar's length.
        title: chart title.
        value_title: x axis title (defaults to `value`).
        value_format: d3 format of the value in axis and tooltip.
        color: optional column to colour bars by (legend below the chart).
        colors: optional fixed colour per value of `color`, e.g. {"stale": charts.BAD}.
        empty: what the chart says when `frame` has no rows.
        milliseconds: `value` is a duration in ms: drawn in seconds when the longest bar is 10 s or more.

    Returns:
        An Altair chart (`no_data` when the frame is empty); display it as a cell's last expression.
    """
    if frame.empty or frame[value].isna().all():
        return no_data(title, empty)
    if milliseconds:
        in_seconds = frame[value].max() >= 10_000
        frame = frame.assign(**{value: frame[value] / 1000}) if in_seconds else frame
        value_title, value_format = ("seconds", ",.1f") if in_seconds else ("ms", ",.0f")
    encoding: dict[str, Any] = {
        "y": alt.Y(f"{category}:N", sort="-x", title=None),
        "x": alt.X(f"{value}:Q", title=value_title or value, axis=_axis(frame[value], value_format)),
        "tooltip": _tooltip(frame, {value: value_format}),
    }
    if color:
        encoding["color"] = _color(color, colors)
    height = max(60, 24 * len(frame))
    chart = alt.Chart(frame).mark_bar().encode(**encoding).properties(height=height)
    return chart.properties(title=title) if title else chart


def _every_day(frame: pd.DataFrame, x: str, y: str, color: str | None, period: Period) -> pd.DataFrame:
    """`frame` with a row for every day of `period` (and every series), y = 0 where there was none."""
    days = pd.DataFrame({x: pd.date_range(period.start, period.end, freq="D")})
    keyed = frame.assign(**{x: pd.to_datetime(frame[x])})
    if color:
        days = days.merge(pd.DataFrame({color: keyed[color].drop_duplicates()}), how="cross")
    keys = [x, color] if color else [x]
    full = days.merge(keyed, on=keys, how="left")
    full[y] = full[y].fillna(0)
    return full


def line(
    frame: pd.DataFrame,
    x: str,
    y: str,
    *,
    title: str | None = None,
    y_title: str | None = None,
    y_format: str = ",.0f",
    color: str | None = None,
    colors: dict[str, str] | None = None,
    empty: str = "No data for this period",
    zero_fill: Period | None = None,
    partial: str | None = None,
) -> alt.Chart:
    """A time series line with points, one line per `color` value.

    Args:
        frame: one row per point.
        x: temporal column (dates or timestamps).
        y: numeric column.
        title: chart title.
        y_title: y axis title (defaults to `y`).
        y_format: d3 format of y in axis and tooltip.
        color: optional column splitting the series.
        colors: optional fixed colour per value of `color`.
        empty: what the chart says when `frame` has no rows (or no value).
        zero_fill: for sums per day (costs, counts): the period whose days without a row are drawn
            as 0, instead of a line bridging the gap as if nothing were missing.
        partial: a boolean column marking buckets cut by the period's edges (a week of 3 days): they
            are left out, and the chart says how many, instead of drawing them as a fall.

    Returns:
        An Altair chart (`no_data` when there is nothing to draw).
    """
    dropped = 0
    if partial and not frame.empty:
        dropped = int(frame.drop_duplicates(x)[partial].sum())
        frame = frame[~frame[partial].astype(bool)].drop(columns=[partial])
    if frame.empty or frame[y].isna().all():
        return no_data(title, empty)
    if zero_fill is not None:
        frame = _every_day(frame, x, y, color, zero_fill)
    encoding: dict[str, Any] = {
        "x": alt.X(f"{x}:T", title=None),
        "y": alt.Y(f"{y}:Q", title=y_title or y, axis=_axis(frame[y], y_format)),
        "tooltip": _tooltip(frame, {y: y_format}),
    }
    if color:
        encoding["color"] = _color(color, colors)
    chart = alt.Chart(frame).mark_line(point=True).encode(**encoding)
    if dropped:
        note = f"{dropped} partial bucket{'s' if dropped > 1 else ''} at the period's edges left out"
        chart = chart.properties(title=alt.Title(title or "", subtitle=note, subtitleColor=MUTED))
        return chart
    return chart.properties(title=title) if title else chart


def funnel(frame: pd.DataFrame, *, title: str | None = None, empty: str = "No data for this period") -> alt.Chart:
    """A funnel whose small steps stay readable: counts with each step's conversion beside them.

    Args:
        frame: one row per step in order: label, count, rate (the conversion from the step it is
            measured against; NaN for the first step) and rate_of (that step's name).
        title: chart title.
        empty: what the chart says when there is nothing to draw.

    Returns:
        Bars of counts (each labelled with its count and conversion), next to bars of the
        conversion rates on their own scale, so a step of 0.3% of sessions is not a blank line.
    """
    if frame.empty or frame["count"].isna().all():
        return no_data(title, empty)
    data = frame.assign(
        count=frame["count"].astype("float"),
        conversion=[
            "" if pd.isna(rate) else f"{rate:.2%} of {STEP_NOUNS.get(of, of)}"
            for rate, of in zip(frame["rate"], frame["rate_of"], strict=True)
        ],
    )
    data["text"] = [
        ("no data" if pd.isna(c) else f"{c:,.0f}") + (f" · {conv}" if conv else "")
        for c, conv in zip(data["count"], data["conversion"], strict=True)
    ]
    order = list(data["label"])
    y = alt.Y("label:N", sort=order, title=None)
    counts = alt.Chart(data).encode(y=y)
    # Room right of the longest bar for its label.
    room = alt.Scale(domain=[0, float(data["count"].max()) * 1.8], nice=False)
    bars = counts.mark_bar().encode(x=alt.X("count:Q", title="count", scale=room, axis=alt.Axis(format=",.0f")),
                                    tooltip=[alt.Tooltip("label:N", title="step"),
                                             alt.Tooltip("count:Q", format=",.0f"), alt.Tooltip("conversion:N")])
    labels = counts.mark_text(align="left", dx=4, color=TEXT).encode(x="count:Q", text="text:N")
    rates = (
        alt.Chart(data[data["rate"].notna()])
        .mark_bar(color=PALETTE[1])
        .encode(y=alt.Y("label:N", sort=order, title=None, axis=alt.Axis(labels=False, ticks=False)),
                x=alt.X("rate:Q", title="conversion rate", axis=alt.Axis(format=".1%")),
                tooltip=[alt.Tooltip("label:N", title="step"), alt.Tooltip("conversion:N")])
        .properties(width=200)
    )
    chart = alt.hconcat((bars + labels).properties(width=360), rates).resolve_scale(y="shared")
    return chart.properties(title=title) if title else chart


STEP_NOUNS = {"sessions": "sessions", "sign_up": "sign-ups", "prototype_request": "prototype requests"}


def waterfall(steps: pd.DataFrame, *, title: str | None = None, empty: str = "No revenue in this period") -> alt.Chart:
    """A gross -> net waterfall: totals in blue, decreases in red, increases in green.

    Args:
        steps: one row per step in order: step, amount (signed), start, end (the bar's span), kind
            (total | decrease | increase), currency (statex_bi.kpis.growth_revenue.revenue.waterfall).
        title: chart title.
        empty: what the chart says when every step is 0 or there are no steps.

    Returns:
        An Altair chart.
    """
    if steps.empty or not steps["amount"].abs().sum():
        return no_data(title, empty)
    currency = str(steps["currency"].iloc[0])
    chart = (
        alt.Chart(steps)
        .mark_bar()
        .encode(
            x=alt.X("step:N", sort=None, title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("start:Q", title=currency, axis=alt.Axis(format=",.0f")),
            y2="end:Q",
            color=alt.Color("kind:N", legend=None, scale=alt.Scale(
                domain=["total", "decrease", "increase"], range=[PRIMARY, BAD, GOOD])),
            tooltip=["step", alt.Tooltip("amount:Q", format=",.2f"), "currency"],
        )
        .properties(width=320)
    )
    return chart.properties(title=title) if title else chart


def change_waterfall(steps: pd.DataFrame, *, title: str | None = None, y_title: str = "",
                     y_format: str = ",.2f") -> alt.Chart:
    """A KPI's change from the previous period to this one, bar by driver (statex_bi.kpis.drivers).

    The axis starts near the smaller total rather than at 0, so changes of a few tenths of a point show.

    Args:
        steps: step, amount (signed), start, end, kind (total | increase | decrease), in order
            (`drivers.waterfall_steps`).
        title: chart title.
        y_title: the axis title (the KPI's unit).
        y_format: d3 format of the axis and tooltip.
    """
    spans = pd.concat([steps.loc[steps["kind"] != "total", ["start", "end"]].stack(),
                       steps.loc[steps["kind"] == "total", "end"]])
    low, high = float(spans.min()), float(spans.max())
    floor = low - 0.25 * ((high - low) or abs(high) or 1.0)
    if low >= 0:
        floor = max(floor, 0.0)
    frame = steps.assign(start=steps["start"].where(steps["kind"] != "total", floor))
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("step:N", sort=None, title=None, axis=alt.Axis(labelAngle=0, labelLimit=140)),
            y=alt.Y("start:Q", title=y_title, axis=alt.Axis(format=y_format),
                    scale=alt.Scale(zero=False, domain=[floor, high + 0.05 * ((high - low) or 1.0)])),
            y2="end:Q",
            color=alt.Color("kind:N", legend=None, scale=alt.Scale(
                domain=["total", "decrease", "increase"], range=[PRIMARY, BAD, GOOD])),
            tooltip=["step", alt.Tooltip("amount:Q", format=y_format)],
        )
        .properties(width=max(320, 90 * len(frame)))
    )
    return chart.properties(title=title) if title else chart
