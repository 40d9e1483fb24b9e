"""Where a report's headline numbers come from: the dbt models, the sources and, for costs, the prices.

Each report shows, under its KPI cards, one row per headline KPI: the models it reads (registry
`models`), each linked to its node in the dbt docs site the run publishes next to the report
(`lineage/index.html`, statex_bi.runner.lineage); the sources it comes from, each with its newest data
(`ops.source_watermarks`) and dbt's freshness verdict on its raw tables (`ops.dbt_source_freshness`,
the worst table counts); and, for a cost, the report section listing the price rows that priced it.
"""

from __future__ import annotations

import html
import re
from urllib.parse import quote

import duckdb
import pandas as pd

from statex_bi import warehouse
from statex_bi.metrics import registry

DOCS_PAGE = "lineage/index.html"  # the run's docs site, relative to its report pages
NODE = "#!/model/model.statex_bi.{}"
# dbt's freshness status in people's words, worst last
STATUS = {"pass": "fresh", "warn": "late", "error": "stale", "runtime error": "not checked"}
# The report section that lists the price rows behind each cost KPI (its heading's anchor).
PRICE_SECTIONS = {"ai.": ("Price-list", "the price rows in “Price list”"),
                  "infra.cost": ("Prices-and-pricing-rules", "the price rows in “Prices and pricing rules”")}


def model_links(models: tuple[str, ...], docs_page: str = DOCS_PAGE) -> str:
    """Each model linked to its node in the docs site."""
    return ", ".join(f'<a href="{html.escape(docs_page + NODE.format(quote(name)))}">{html.escape(name)}</a>'
                     for name in models)


def source_states(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[str | None, str]]:
    """Per loaded source: its newest data (watermark) and dbt's freshness verdict on its raw tables."""
    marks = warehouse.watermarks(con)
    worst: dict[str, str] = {}
    if warehouse.table_exists(con, "ops", "dbt_source_freshness"):
        ranked = list(STATUS)
        for table, status in con.execute("SELECT \"table\", status FROM ops.dbt_source_freshness").fetchall():
            source = str(table).split(".")[0].removeprefix("raw_")
            status = str(status) if status in STATUS else "runtime error"
            if source not in worst or ranked.index(status) > ranked.index(worst[source]):
                worst[source] = status
    return {name: (mark, STATUS.get(worst.get(name.replace("-", "_"), ""), "not checked"))
            for name, mark in marks.items()}


def _sources(kpi: registry.KpiDef, states: dict[str, tuple[str | None, str]]) -> str:
    """The KPI's sources that are loaded, each with its newest data and freshness, then the others named."""
    parts = []
    for token in (t for t in re.split(r"[,/+]\s*|\s+", kpi.source) if t):
        if token in states:
            mark, status = states[token]
            parts.append(f"{html.escape(token)}: data to {html.escape(str(mark)[:16]) if mark else 'nothing'}, "
                         f"{html.escape(status)}")
    return "; ".join(parts) or html.escape(kpi.source)


def _prices(kpi: registry.KpiDef) -> str:
    for prefix, (anchor, text) in PRICE_SECTIONS.items():
        if kpi.name.startswith(prefix) and kpi.unit in ("USD", "currency"):
            return f'<a href="#{anchor}">{html.escape(text)}</a>'
    return ""


def lineage_html(con: duckdb.DuckDBPyConnection, published: pd.DataFrame) -> str:
    """The table of the headline KPIs among `published` (what `publish.publish` returned) and their lineage."""
    names = set(published["metric_name"]) if len(published) else set()
    heads = [k for k in registry.kpis().values() if k.headline and k.name in names]
    if not heads:
        return ""
    states = source_states(con)
    rows = "".join(
        f"<tr><td>{html.escape(k.label)}</td><td>{model_links(k.models) or 'the raw tables (no model)'}</td>"
        f"<td>{_sources(k, states)}</td><td>{_prices(k)}</td></tr>" for k in heads)
    return ('<table class="statex-table statex-lineage"><caption>Where these numbers come from</caption>'
            "<thead><tr><th>KPI</th><th>Models (dbt docs)</th><th>Sources: newest data, freshness</th>"
            f"<th>Prices</th></tr></thead><tbody>{rows}</tbody></table>")
