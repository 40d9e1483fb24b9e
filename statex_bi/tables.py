"""The markup of report tables and KPI cards (statex_bi.display shows them): labels, units, CSV downloads.

A table shows the columns it is given under people's labels, each value formatted by its unit
(statex_bi.formatting), numbers right-aligned; it fits the page (the wrapper scrolls on screen, the
print stylesheet shrinks it on paper) and carries its data at full precision as a CSV file embedded
in a `data:` link.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pandas as pd

from statex_bi import formatting

# Styles of the blocks below; statex_bi.display puts them in each report's <style>.
CSS = """.statex-table-wrap { max-width: 100%; overflow-x: auto; margin: 0.5em 0 0.2em 0; }
table.statex-table.statex-table { border-collapse: collapse; font-size: 0.88em; table-layout: auto; margin: 0; }
table.statex-table.statex-table th, table.statex-table.statex-table td { text-align: left; padding: 0.3em 0.7em;
  vertical-align: top; }
table.statex-table.statex-table th { border-bottom: 2px solid #8c959f; white-space: normal; min-width: 4em; }
table.statex-table.statex-table td { border-bottom: 1px solid #e6e8eb; overflow-wrap: break-word; }
table.statex-table.statex-table .num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap;
  overflow-wrap: normal; }
table.statex-table caption { caption-side: top; text-align: left; font-weight: 600; padding-bottom: 0.3em; }
.statex-csv { font-size: 0.8em; margin: 0 0 1em 0; }
.statex-csv a { color: #0072B2; }
.statex-kpis { display: flex; flex-wrap: wrap; gap: 0.8em; margin: 0.8em 0 1em 0; }
.statex-kpi { border: 1px solid #d0d7de; border-radius: 6px; padding: 0.5em 1em; min-width: 9em; }
.statex-kpi .statex-kpi-label { color: #57606a; font-size: 0.85em; }
.statex-kpi .statex-kpi-value { font-size: 1.5em; font-weight: 600; font-variant-numeric: tabular-nums; }
.statex-kpi .statex-kpi-detail { color: #57606a; font-size: 0.8em; }
"""

@dataclass(frozen=True)
class Column:
    """How a table shows one column: a label for people and the unit that formats its values.

    Attributes:
        label: the column header, e.g. "Cost per prototype".
        unit: a statex_bi.formatting unit ("USD", "count", "fraction", "ms", "bool", ...); None infers
            it from the data type. A currency is named in the header: "Cost (USD)".
        decimals: fixed digits after the point, instead of the unit's default.
        unit_from: a column holding each row's unit, for a column of mixed units (published KPIs).
    """

    label: str
    unit: str | None = None
    decimals: int | None = None
    unit_from: str | None = None

    def header(self) -> str:
        suffix = formatting.unit_label(self.unit)
        return f"{self.label} ({suffix})" if suffix else self.label


def _unit_of(series: pd.Series, column: Column) -> str | None:
    if column.unit:
        return column.unit
    if pd.api.types.is_bool_dtype(series):
        return "bool"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    if pd.api.types.is_integer_dtype(series):
        return "count"
    return None


def _columns(frame: pd.DataFrame, columns: Mapping[str, Column | str] | None) -> dict[str, Column]:
    if columns is None:
        return {str(name): Column(str(name)) for name in frame.columns}
    missing = [name for name in columns if name not in frame.columns]
    if missing:
        raise KeyError(f"display.table: no column {', '.join(map(repr, missing))} in {list(frame.columns)}")
    return {name: spec if isinstance(spec, Column) else Column(spec) for name, spec in columns.items()}


# A spreadsheet runs a cell starting with one of these as a formula (OWASP, CSV Injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n")


def _is_text(series: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(series) or pd.api.types.is_object_dtype(series)


def _is_formula(value: Any) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def _neutralised(value: Any) -> Any:
    """A text cell a spreadsheet would run as a formula, prefixed with a quote so it shows as text."""
    return "'" + value if _is_formula(value) else value


def _formula_cells(frame: pd.DataFrame) -> int:
    return sum(int(frame[name].map(_is_formula).sum()) for name in frame.columns if _is_text(frame[name]))


def csv_text(frame: pd.DataFrame, columns: Mapping[str, Column | str] | None = None) -> str:
    """The table's data as CSV: the shown columns under their headers, values at full precision.

    A text cell starting with =, +, -, @, tab, CR or LF gets a leading quote (OWASP's rule against CSV
    injection), so a spreadsheet opening the download shows it rather than runs it; numbers are left as
    they are (a negative number is no formula).
    """
    specs = _columns(frame, columns)
    data = frame[list(specs)].rename(columns={name: spec.header() for name, spec in specs.items()})
    data = data.apply(lambda column: column.map(_neutralised) if _is_text(column) else column)
    return data.to_csv(index=False, lineterminator="\n")


def anchor(caption: str) -> str:
    """The id a captioned table carries on its page (and its CSV file's name): e.g. "savings-by-service",
    so that other pages (the claims ledger) can link to the very table that measured a number."""
    return re.sub(r"[^a-z0-9]+", "-", caption.lower()).strip("-")[:60] or "table"


def table_html(
    frame: pd.DataFrame,
    columns: Mapping[str, Column | str] | None = None,
    *,
    caption: str | None = None,
    empty: str = "None.",
) -> str:
    """The markup of `table` (see there)."""
    if frame.empty:
        prefix = f"<strong>{html.escape(caption)}</strong>: " if caption else ""
        return f'<p class="statex-note">{prefix}{html.escape(empty)}</p>'
    specs = _columns(frame, columns)
    units = {name: _unit_of(frame[name], spec) for name, spec in specs.items()}
    text_units = ("text", "bool", "date", "datetime")
    numeric = {
        name for name in specs
        if units[name] not in text_units and pd.api.types.is_numeric_dtype(frame[name])
        and not pd.api.types.is_bool_dtype(frame[name])
    }

    def cell(name: str, row: dict[str, Any]) -> str:
        css = ' class="num"' if name in numeric else ""
        spec = specs[name]
        unit = row[spec.unit_from] if spec.unit_from else units[name]
        return f"<td{css}>{html.escape(formatting.value(row[name], unit, spec.decimals))}</td>"

    head = "".join(
        f'<th{" class=num" if name in numeric else ""}>{html.escape(spec.header())}</th>'
        for name, spec in specs.items()
    )
    body = "".join(
        "<tr>" + "".join(cell(name, row) for name in specs) + "</tr>"
        for row in frame.to_dict("records")
    )
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    name = f"{anchor(caption or 'table')}.csv"
    identity = f' id="{html.escape(anchor(caption))}"' if caption else ""
    href = "data:text/csv;charset=utf-8," + quote(csv_text(frame, specs), safe="")
    formulas = _formula_cells(frame[list(specs)])
    guard = (
        f" ({formulas} text cell{'s' if formulas != 1 else ''} starting with =, +, -, @, tab or a line break "
        "begin with ' in the file, so a spreadsheet shows them as text instead of running them as formulas)"
        if formulas else ""
    )
    return (
        f'<div class="statex-table-wrap"{identity}><table class="statex-table">{title}<thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
        f'<p class="statex-csv"><a class="statex-csv-link" download="{html.escape(name)}" href="{href}">'
        f"Download this table as CSV</a>{html.escape(guard)}</p>"
    )


@dataclass(frozen=True)
class Kpi:
    """One headline number: label, value at full precision, unit, and an optional line under it."""

    label: str
    value: Any
    unit: str | None
    detail: str = ""


def kpis_html(cards: Iterable[Kpi]) -> str:
    """The markup of `kpi`/`kpis`."""
    items = "".join(
        f'<div class="statex-kpi"><div class="statex-kpi-label">{html.escape(card.label)}</div>'
        f'<div class="statex-kpi-value">{html.escape(formatting.value(card.value, card.unit) or "n/a")}</div>'
        + (f'<div class="statex-kpi-detail">{html.escape(card.detail)}</div>' if card.detail else "")
        + "</div>"
        for card in cards
    )
    return f'<div class="statex-kpis">{items}</div>'
