"""What report notebooks call: open the warehouse read-only, show the header, headline, notes and tables.

Every report uses it: `header`, `toc` (contents), `headline`, `notice`, `kpis` (headline KPI cards),
`table(df, columns={"cost": Column("Cost", "USD")})` (statex_bi.tables: labels, units, CSV download),
`how_computed` (collapsed method notes: files and tables stay out of stakeholder text), `history`.
Every block is plain HTML with classes styled by `STYLE`, which `header()` emits once at the top of
each report (inline: a report never loads an external stylesheet or font).
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from statex_bi import charts, formatting, provenance, reads, warehouse
from statex_bi.config import db_path, load_dotenv_file, lock_wait
from statex_bi.kpis import drivers as split
from statex_bi.kpis.changes import Comparison, Explained
from statex_bi.metrics import registry
from statex_bi.periods import Period, parse_date
from statex_bi.summary_tables import drivers_html, ledger_html, scorecard_html
from statex_bi.tables import CSS, Column, Kpi, kpis_html, table_html

STYLE = """<style>
.statex-header { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1f2328; border-bottom: 2px solid #0072B2; padding-bottom: 0.6em; margin-bottom: 1em; }
.statex-header h1 { font-size: 1.8em; margin: 0 0 0.2em 0; }
.statex-header .statex-meta { color: #57606a; margin: 0 0 0.8em 0; }
.statex-header .statex-grid { display: flex; flex-wrap: wrap; gap: 0.5em 3em; }
.statex-header h2 { font-size: 0.8em; text-transform: uppercase; letter-spacing: 0.06em; color: #57606a;
  margin: 0 0 0.3em 0; }
.statex-badge { display: inline-block; background: #fff4d6; color: #7a4b00; border-radius: 3px;
  padding: 0 0.5em; font-size: 0.85em; margin-left: 0.6em; vertical-align: middle; }
table.statex-kv.statex-kv { border-collapse: collapse; font-size: 0.9em; table-layout: auto; }
table.statex-kv.statex-kv tbody tr { background: transparent; }
table.statex-kv.statex-kv th { text-align: left; font-weight: normal; color: #57606a; padding: 0.1em 1em 0.1em 0; }
table.statex-kv.statex-kv td { text-align: left; padding: 0.1em 0; }
.statex-headline { font-size: 1.3em; font-weight: 600; margin: 0.8em 0; }
.statex-note { color: #57606a; }
.statex-notice { border-left: 4px solid #0072B2; background: #f1f7fb; padding: 0.6em 1em; margin: 0.8em 0; }
.statex-notice.statex-warning { border-left-color: #D55E00; background: #fdf1ea; }
.statex-chart { margin: 0.5em 0 1em 0; }
.statex-toc { border: 1px solid #d0d7de; border-radius: 6px; padding: 0.5em 1.2em; margin: 0.5em 0 1em 0;
  display: inline-block; }
.statex-toc ol { margin: 0.3em 0; padding-left: 1.2em; }
details.statex-how { border-left: 3px solid #d0d7de; padding: 0.2em 0.8em; margin: 0.5em 0 1em 0; color: #57606a; }
details.statex-how summary { cursor: pointer; font-weight: 600; }
.statex-reads { color: #57606a; font-size: 0.8em; margin: 0 0 1.2em 0; }
.statex-reads ul { margin: 0.2em 0; padding-left: 1.4em; }
.statex-reads summary { cursor: pointer; }
""" + CSS + "</style>"

_CODE_SPAN = re.compile(r"`([^`]+)`")
_BOLD = re.compile(r"\*\*([^*]+)\*\*")
# Fills the contents list from the page's section headings where the exporter did not (JupyterLab).
_TOC_SCRIPT = """<script>(function () {
  var nav = document.currentScript && document.currentScript.previousElementSibling;
  var list = nav && nav.querySelector("ol");
  function fill() {
    if (!list || list.children.length) { return; }
    document.querySelectorAll("h2[id]").forEach(function (h) {
      var item = document.createElement("li"), link = document.createElement("a");
      link.href = "#" + h.id; link.textContent = h.textContent.replace(/\\u00b6$/, "");
      item.appendChild(link); list.appendChild(item);
    });
  }
  if (document.readyState === "loading") { document.addEventListener("DOMContentLoaded", fill); } else { fill(); }
})();</script>"""
TOC_MARKER = "data-statex-toc"
# The report's warehouse (`open_warehouse`) and, once a table needs it, what its tables link to.
_REPORT: dict[str, Any] = {}


def open_warehouse(*, missing_ok: bool = False) -> duckdb.DuckDBPyConnection:
    """The warehouse, read-only: notebooks never write. Reads the project's `.env` first (JupyterLab kernels).

    A notebook of `statex-bi run --wait N` waits up to N seconds for a warehouse another process holds
    ($STATEX_BI_WAIT), like the runner's own opens.

    Args:
        missing_ok: when no warehouse file exists yet, show a warning naming the path that was looked
            for and return an empty in-memory database, so the report still renders and says that
            nothing is loaded.

    Returns:
        A DuckDB connection.

    Raises:
        WarehouseError: the file does not exist (and not `missing_ok`) or cannot be opened.
        WarehouseLockedError: another process held the file for longer than $STATEX_BI_WAIT.
    """
    load_dotenv_file()
    path = db_path()
    _REPORT.clear()
    if missing_ok and not path.exists():
        notice(missing_warehouse_text(path), warning=True)
        _REPORT.update(con=duckdb.connect(":memory:"), db=None)
        return _REPORT["con"]
    # The wait is not printed: a notebook's stderr would end up in the report.
    _REPORT.update(con=warehouse.connect(path, read_only=True, wait=lock_wait(), on_wait=lambda message: None),
                   db=path)
    return _REPORT["con"]


def _lineage_context() -> provenance.Context:
    """What the tables of the report link to (nothing before `open_warehouse`: the relations named only)."""
    if "context" not in _REPORT:
        if "con" not in _REPORT:
            return provenance.Context(provenance.NO_DOCS, {})
        _REPORT["context"] = provenance.context(_REPORT["con"], _REPORT["db"])
    return _REPORT["context"]


def reads_html(frame: pd.DataFrame) -> str:
    """Under a table: where its rows come from (statex_bi.provenance.reads_html), or, for a frame not made by a
    `@statex_bi.reads.recorded` KPI function (an analyst's own query in the lab), that this is not recorded.
    A report's tables always say it: tests/notebooks check every one."""
    found = reads.of(frame)
    if found is None:
        return ('<div class="statex-reads statex-unrecorded">Where these rows come from is not recorded (the '
                "function that returns them is not <code>@statex_bi.reads.recorded</code>).</div>")
    return provenance.reads_html(found, _lineage_context())


def table_with_reads_html(frame: pd.DataFrame, columns: Mapping[str, Column | str] | None = None, *,
                          caption: str | None = None, empty: str = "None.") -> str:
    """`table_html` followed by where its rows come from (statex_bi.provenance.reads_html)."""
    markup = table_html(frame, columns, caption=caption, empty=empty)
    return markup if frame.empty else markup + reads_html(frame)


def missing_warehouse_text(path: Path) -> str:
    """What a report says when the warehouse file it looked for does not exist."""
    return (
        f"No warehouse at `{path}`, so this report shows no data. Load one with `statex-bi demo` or "
        "`statex-bi ingest SOURCE`, or point `STATEX_BI_DB` (environment or `.env`) at an existing warehouse file."
    )


def period(period_start: str, period_end: str) -> Period:
    """The report period from the notebook's `period_start`/`period_end` parameters (inclusive)."""
    return Period(parse_date(period_start, "period_start"), parse_date(period_end, "period_end"))


def _display_html(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(markup))


def _inline(text: str) -> str:
    """Escaped text where `backticks` become <code> spans and **stars** bold."""
    return _BOLD.sub(r"<strong>\1</strong>", _CODE_SPAN.sub(r"<code>\1</code>", html.escape(text)))


def _value_text(value: Any) -> str:
    if isinstance(value, (list, tuple, set)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    return str(value) if str(value) != "" else "—"


def _key_values(rows: Iterable[tuple[str, str]]) -> str:
    body = "".join(
        f"<tr><th>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>" for key, value in rows
    )
    return f'<table class="statex-kv">{body}</table>'


def _watermark_text(value: str | None) -> str:
    """A watermark for people: timestamps to the minute, dates as they are."""
    if value is None:
        return "not loaded"
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    return value if len(value) <= len("YYYY-MM-DD") else f"{moment:%Y-%m-%d %H:%M}"


def header_html(
    title: str, report_period: Period, params: dict[str, Any], con: duckdb.DuckDBPyConnection, generated: datetime
) -> str:
    """The header markup (see `header`); separate so it can be checked without a notebook."""
    marks = warehouse.watermarks(con)
    badge = '<span class="statex-badge">simulated demo data</span>' if warehouse.kind(con) == warehouse.DEMO else ""
    shown_params = {k: v for k, v in params.items() if k not in ("period_start", "period_end")}
    params_block = (
        _key_values((str(k), _value_text(v)) for k, v in sorted(shown_params.items()))
        if shown_params
        else '<p class="statex-note">none</p>'
    )
    if any(value is not None for value in marks.values()):
        marks_block = _key_values((name, _watermark_text(value)) for name, value in sorted(marks.items()))
    else:
        marks_block = (
            '<p class="statex-note">No source is loaded yet: run <code>statex-bi demo</code> '
            "or <code>statex-bi ingest SOURCE</code>.</p>"
        )
    return f"""{STYLE}<div class="statex-header">
<h1>{html.escape(title)}{badge}</h1>
<p class="statex-meta"><strong>{report_period.start:%a %d %b %Y} – {report_period.end:%a %d %b %Y}</strong>
({report_period.days} days) &nbsp;·&nbsp; generated {generated:%Y-%m-%d %H:%M} UTC</p>
{failed_loads_html(con, marks)}
<div class="statex-grid">
<div><h2>Newest data per source</h2>{marks_block}</div>
<details class="statex-how"><summary>Run parameters</summary>{params_block}</details>
</div></div>"""


def failed_loads_html(con: duckdb.DuckDBPyConnection, marks: dict[str, str | None]) -> str:
    """A warning box naming each source whose last load failed (ops.source_loads), or '' when none did."""
    failed = warehouse.failed_last_loads(con)
    if not failed:
        return ""
    items = "".join(
        f"<li><strong>{html.escape(source)}</strong>: last load failed {html.escape(finished)} UTC "
        f"({html.escape(error[:300])}); its data ends at {html.escape(_watermark_text(marks.get(source)))}.</li>"
        for source, finished, error in failed
    )
    return (
        '<div class="statex-notice statex-warning statex-failed-loads"><p><strong>Data may be incomplete:</strong> '
        f"the latest load of {len(failed)} source(s) failed, so this report shows their earlier data.</p>"
        f"<ul>{items}</ul></div>"
    )


def header(title: str, report_period: Period, params: dict[str, Any], con: duckdb.DuckDBPyConnection) -> None:
    """Show the report's title, period, generation time, each source's data watermark and the parameters.

    Args:
        title: the report's name.
        report_period: the period the report covers.
        params: the notebook's parameters (period_start/end are shown as the period instead), collapsed.
        con: the warehouse, for the watermarks; an empty one shows "No source is loaded yet".
    """
    _display_html(inline_styles(header_html(title, report_period, params, con, datetime.now(UTC))))


def inline_styles(markup: str) -> str:
    """`markup` with STYLE's rules also written into each element's `style` attribute.

    JupyterLab drops `<style>` elements from the outputs of an untrusted notebook (one opened from
    outputs/ or received by mail) but keeps inline styles; the header then keeps its look. The
    `<style>` block stays too, for the rules no attribute can hold (print media).
    """
    import css_inline

    css = STYLE.removeprefix("<style>").removesuffix("</style>")
    inliner = css_inline.CSSInliner(load_remote_stylesheets=False, keep_style_tags=True, keep_at_rules=True)
    return inliner.inline_fragment(markup, css)


def show(*objects: Any) -> None:
    """Display charts or other objects inside a branch of a cell (a cell's last expression shows itself)."""
    from IPython.display import display

    display(*objects)


def toc_html() -> str:
    """The contents block: a list its script fills with the page's `## ` sections once the page has loaded."""
    return f'<nav class="statex-toc" {TOC_MARKER}><strong>Contents</strong><ol></ol></nav>{_TOC_SCRIPT}'


def toc() -> None:
    """Show a table of contents of the report's sections (its `## ` headings), linking to each."""
    _display_html(toc_html())


def headline(text: str) -> None:
    """One sentence a stakeholder can quote."""
    _display_html(f'<p class="statex-headline">{_inline(text)}</p>')


def note(text: str) -> None:
    """A short grey remark (a caveat); `backticks` render as code."""
    _display_html(f'<p class="statex-note">{_inline(text)}</p>')


def _paragraphs(text: str) -> str:
    """Blank-line separated paragraphs; a paragraph of '- ' lines is a bullet list."""
    parts = []
    for part in (p.strip() for p in text.strip().split("\n\n")):
        lines = part.splitlines()
        if lines and all(line.lstrip().startswith("- ") for line in lines):
            items = "".join(f"<li>{_inline(line.lstrip()[2:])}</li>" for line in lines)
            parts.append(f"<ul>{items}</ul>")
        elif part:
            parts.append(f"<p>{_inline(' '.join(lines))}</p>")
    return "".join(parts)


def notice(text: str, *, warning: bool = False) -> None:
    """A boxed message that must not be missed, e.g. that nothing is loaded yet.

    Args:
        text: the message; blank lines separate paragraphs, `backticks` render as code.
        warning: orange instead of blue.
    """
    kind = " statex-warning" if warning else ""
    _display_html(f'<div class="statex-notice{kind}">{_paragraphs(text)}</div>')


def how_computed_html(text: str, title: str = "How this is computed") -> str:
    """The collapsed method note (see `how_computed`)."""
    return f'<details class="statex-how"><summary>{html.escape(title)}</summary>{_paragraphs(text)}</details>'


def how_computed(text: str, title: str = "How this is computed") -> None:
    """Definitions, sources and file or table names for analysts, collapsed under `title`.

    Args:
        text: paragraphs separated by blank lines; '- ' lines make a list; `code` and **bold** spans.
        title: the summary line shown while collapsed.
    """
    _display_html(how_computed_html(text, title))


def table(
    frame: pd.DataFrame,
    columns: Mapping[str, Column | str] | None = None,
    *,
    caption: str | None = None,
    empty: str = "None.",
) -> None:
    """A report table: labelled columns formatted by unit, fitting the page, with a CSV download.

    Args:
        frame: the rows to show (small: this is a report, not an export), at full precision.
        columns: the columns to show, in order: name -> Column(label, unit) or just a label (unit
            inferred: yes/no for booleans, counts for integers, dates and times to the minute).
            None shows every column under its own name.
        caption: the title above the table; it also names the CSV file.
        empty: the note shown instead of a table without rows.

    Under the table: the models and sources its rows were read from, linked to the dbt docs site, and
    the price rows that priced its costs (or, for a frame no `@statex_bi.reads.recorded` KPI function
    made, that this is not recorded).
    """
    _display_html(table_with_reads_html(frame, columns, caption=caption, empty=empty))


def kpi(label: str, value: Any, unit: str | None, detail: str = "") -> None:
    """Show one headline number as a card, e.g. `kpi("Net revenue", 1234.5, "EUR")`."""
    _display_html(kpis_html([Kpi(label, value, unit, detail)]))


def kpis(published: pd.DataFrame) -> None:
    """Cards for the report's headline KPIs (registry `headline: true`) from `publish.publish(...)`'s result.

    A headline KPI that is undefined for the period shows "n/a" and the reason.
    """
    _display_html(kpis_html(registry.headline_cards(published)))


def lineage(published: pd.DataFrame, con: duckdb.DuckDBPyConnection, compared: Comparison | None = None) -> None:
    """Under the KPI cards: each headline KPI's models (linked to the run's dbt docs site), sources with
    their newest data and freshness, and the price rows that priced a cost (statex_bi.provenance), which
    `compared` (`changes.compare(...)`) recorded."""
    _display_html(provenance.lineage_html(con, published, compared.reads if compared else None))


def history(con: duckdb.DuckDBPyConnection, report: str, report_period: Period, published: pd.DataFrame) -> None:
    """The report's headline KPIs over the last 12 periods of the same kind (read-only query).

    Earlier periods come from monitoring.monitoring_metrics (the latest run of each period); this
    period from `published`, which the runner loads only after the report succeeds.

    Args:
        con: the warehouse (read-only).
        report: the report's notebook stem, as the runner records it.
        report_period: this report's period.
        published: what this run publishes (`publish.publish(...)`).
    """
    frame, columns = registry.history(con, report, report_period, published)
    kind = registry.period_kind(report_period)
    count = f"the last {len(frame)} {kind}s" if len(frame) > 1 else f"this {kind}; no earlier one is published yet"
    _display_html(table_with_reads_html(frame, columns, caption=f"Headline KPIs: {count}",
                                        empty="No earlier period has been published yet."))


def scorecard(card: pd.DataFrame, reports: set[str] | None = None, run_id: str | None = None) -> None:
    """Show the executive summary's scorecard (`scorecard_html`) and what it was read from."""
    _display_html(scorecard_html(card, reports, run_id) + reads_html(card))


def headline_drivers(card: pd.DataFrame, run_id: str | None = None) -> None:
    """Show why the executive summary's headline KPIs moved (`drivers_html`)."""
    _display_html(drivers_html(card, run_id))


def ledger(claims: pd.DataFrame, reports: set[str] | None = None, run_id: str | None = None) -> None:
    """Show the executive summary's claims ledger (`ledger_html`) and what it was read from."""
    _display_html(ledger_html(claims, reports, run_id) + reads_html(claims))


def _drivers_columns(explained: Explained) -> tuple[pd.DataFrame, dict[str, Column]]:
    """One explained change as a table: rates and their changes in percentage points for ratio KPIs."""
    result, unit, dimension = explained.decomposition, explained.unit, explained.dimension
    frame = result.table.copy()
    change_unit = "pt" if unit == "fraction" else unit
    scale = 100.0 if unit == "fraction" else 1.0
    first = {"segment": Column(dimension.capitalize(), "text")}
    if result.kind == split.SHIFT_SHARE:
        for column in ("mix", "rate", "contribution"):
            frame[column] = frame[column] * scale
        return frame, {**first, "weight_before": Column("Share before", "fraction"),
                       "weight_after": Column("Share now", "fraction"),
                       "rate_before": Column("Rate before", unit), "rate_after": Column("Rate now", unit),
                       "mix": Column("Mix", change_unit), "rate": Column("Own rate", change_unit),
                       "contribution": Column("Total", change_unit),
                       "share_of_change": Column("Share of the change", "fraction")}
    if result.kind == split.CONTRIBUTIONS:
        return frame, {**first, "before": Column("Before", unit), "after": Column("Now", unit),
                       "contribution": Column("Change", unit),
                       "share_of_change": Column("Share of the change", "fraction")}
    name = result.quantile
    return frame, {**first, "share_before": Column("Share before", "fraction"),
                   "share_after": Column("Share now", "fraction"), "value_before": Column(f"{name} before", unit),
                   "value_after": Column(f"{name} now", unit),
                   "impact": Column(f"Effect on the {name} (with last period's mix)", unit)}


def drivers(comparison: Comparison) -> None:
    """Under the KPI cards: for each headline KPI that moved and has a main dimension, the change and its
    top driver in words, a table of the segments and a waterfall from the previous value to this one.

    Args:
        comparison: what `statex_bi.kpis.changes.compare(...)` returned.
    """
    if not comparison.explained:
        note(f"No headline KPI changed since the previous period ({comparison.previous}) in a way that splits.")
        return
    for item in comparison.explained:
        result = item.decomposition
        _display_html(f'<h3 class="statex-driver">{html.escape(item.label)}</h3>')
        _display_html(f'<p class="statex-headline">{html.escape(item.sentence)}</p>')
        if not result.exact:
            note("A percentile does not split exactly over its segments: each segment's distribution is taken as "
                 "log-normal (through its median and p95, or its p75 and its share of good page loads), and what "
                 "that leaves unexplained is shown as such.")
        frame, columns = _drivers_columns(item)
        _display_html(table_with_reads_html(frame, columns, caption=f"{item.label}: the change by {item.dimension}"))
        steps = split.waterfall_steps(result, item.unit)
        axis = "%" if item.unit == "fraction" else formatting.unit_label(item.unit) or (item.unit or "")
        show(charts.change_waterfall(steps, title=f"{item.label}: from the previous period to this one",
                                     y_title=axis))
