"""What report notebooks call: open the warehouse read-only, show the header, headline and tables."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from typing import Any

import duckdb
import pandas as pd

from statex_bi import warehouse
from statex_bi.periods import Period, parse_date


def open_warehouse() -> duckdb.DuckDBPyConnection:
    """The warehouse, read-only: notebooks never write."""
    return warehouse.connect(read_only=True)


def period(period_start: str, period_end: str) -> Period:
    return Period(parse_date(period_start, "period_start"), parse_date(period_end, "period_end"))


def _display_html(markup: str) -> None:
    from IPython.display import HTML, display

    display(HTML(markup))


def header(title: str, report_period: Period, params: dict[str, Any], con: duckdb.DuckDBPyConnection) -> None:
    """Title, period, generation time, parameters and each source's data watermark."""
    from statex_bi.sources import watermarks

    marks = watermarks(con)
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    param_items = "".join(
        f"<li><code>{html.escape(str(k))}</code> = {html.escape(str(v))}</li>" for k, v in sorted(params.items())
    )
    mark_items = "".join(
        f"<li>{html.escape(name)}: {html.escape(value or 'not loaded')}</li>" for name, value in marks.items()
    )
    _display_html(
        f"""<div class="statex-header"><h1>{html.escape(title)}</h1>
<p><strong>Period:</strong> {report_period.start:%d %b %Y} to {report_period.end:%d %b %Y}
&nbsp;·&nbsp; <strong>Generated:</strong> {generated}</p>
<details><summary>Parameters and data freshness</summary>
<p>Parameters</p><ul>{param_items}</ul><p>Newest data per source</p><ul>{mark_items}</ul></details></div>"""
    )


def headline(text: str) -> None:
    """One sentence a stakeholder can quote."""
    _display_html(f'<p class="statex-headline" style="font-size:1.3em"><strong>{html.escape(text)}</strong></p>')


def note(text: str) -> None:
    _display_html(f'<p class="statex-note">{html.escape(text)}</p>')


def table(frame: pd.DataFrame, formats: dict[str, str] | None = None) -> None:
    """A plain HTML table, columns formatted with str.format patterns such as '{:,.2f}'."""
    shown = frame.copy()
    for column, pattern in (formats or {}).items():
        shown[column] = shown[column].map(lambda v, p=pattern: "" if pd.isna(v) else p.format(v))
    _display_html(shown.to_html(index=False, border=0, classes="statex-table", na_rep=""))
