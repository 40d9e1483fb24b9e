"""The executive summary's tables: coloured lights and verdicts, each row linking to the report that
shows the number (statex_bi.display shows them)."""

from __future__ import annotations

import html
from urllib.parse import quote

import pandas as pd

from statex_bi.metrics import registry

_COLOURS = {"green": "#1a7f37", "amber": "#bf8700", "red": "#cf222e", "no data": "#8c959f", "no target": "#d0d7de",
            "holds": "#1a7f37", "fails": "#cf222e", "inconclusive": "#bf8700"}


def _dot(label: str) -> str:
    colour = _COLOURS.get(label, "#8c959f")
    return (f'<span style="display:inline-block;width:0.8em;height:0.8em;border-radius:50%;background:{colour};'
            f'margin-right:0.4em;vertical-align:middle"></span>{html.escape(label)}')


def _link(report: str | None, available: set[str] | None, page_run: str | None = None,
          run_id: str | None = None, table: str = "") -> str:
    """A link to the report's page (to its table `table`, an id), named by the report's title: next to this
    one, or in the folder of the earlier run that published the value (`page_run`) when this run
    (`run_id`) did not."""
    if not isinstance(report, str) or not report:
        return ""
    title = html.escape(next((r.title for r in registry.reports() if r.report == report), report))
    fragment = f"#{table}" if table else ""
    if isinstance(page_run, str) and page_run and run_id and page_run != run_id:
        href = f"../{quote(page_run)}/{quote(report)}.html{fragment}"
        return f'<a href="{html.escape(href)}">{title}</a> (run {html.escape(page_run)})'
    if available is not None and report not in available:
        return f"{title} (not in this run)"
    return f'<a href="{html.escape(f"{report}.html{fragment}")}">{title}</a>'


def _table(headers: list[str], rows: list[list[str]], caption: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return (f'<table class="statex-table"><caption>{html.escape(caption)}</caption>'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def scorecard_html(card: pd.DataFrame, reports: set[str] | None = None, run_id: str | None = None) -> str:
    """The scorecard as an HTML table with coloured traffic lights and links to the reports.

    `run_id` is the run the summary belongs to: a value another run published links to that run's page.
    """
    rows = [[_dot(r.light), html.escape(r.label), html.escape(r.value_text), html.escape(r.target_text),
             html.escape(r.change_text), _link(r.report, reports, getattr(r, "run_id", None), run_id)]
            for r in card.itertuples()]
    return _table(["Status", "KPI", "Value", "Target", "Change since the previous period", "Report"], rows,
                  "Headline KPIs against their targets")


def drivers_html(card: pd.DataFrame, run_id: str | None = None) -> str:
    """Each headline KPI whose change its report split over a dimension: the change and its top driver in
    words, with a link to the report that shows the split (its table and waterfall)."""
    items = [f"<li><strong>{html.escape(r.label)}</strong>: {html.escape(r.driver)} "
             f"{_link(r.report, None, r.run_id, run_id)}</li>"
             for r in card.itertuples() if getattr(r, "driver", "")]
    if not items:
        return '<p class="statex-note">No headline KPI changed in a way its report could split.</p>'
    return f'<ul class="statex-drivers">{"".join(items)}</ul>'


def ledger_html(ledger: pd.DataFrame, reports: set[str] | None = None, run_id: str | None = None) -> str:
    """The claims ledger as an HTML table; each measured claim links to the report that measured it.

    The KPI names (the `metric` column) stay out of the stakeholder table; params/claims.yaml has them.
    """
    rows = [[html.escape(r.claim), html.escape(r.measured_text), html.escape(r.interval_text),
             html.escape(r.criterion), _dot(r.verdict),
             _link(r.report, reports if not r.measured_by_run else None, getattr(r, "run_id", None), run_id,
                   r.anchor if r.measured_by_run else ""),
             html.escape(r.note)] for r in ledger.itertuples()]
    return _table(["Claim", "Measured", "Interval", "Holds if", "Verdict", "Report", "Note"], rows,
                  "The plan's claims against the data: holds when the whole interval meets the criterion, "
                  "fails when none of it does, inconclusive otherwise")
