"""Where a report's headline numbers come from: the dbt models, the sources and, for costs, the prices.

Each report shows, under its KPI cards, one row per headline KPI: the models it reads (registry
`models`), each linked to its node in the dbt docs site the run publishes next to the report
(`lineage/index.html`, statex_bi.runner.lineage); the sources it comes from, each with its newest data
(`ops.source_watermarks`) and dbt's freshness verdict on its raw tables (`ops.dbt_source_freshness`,
the worst table counts); and, for a cost, the price rows that priced it.

Under every other table: the relations its KPI function read (statex_bi.reads), each dbt model or
source linked to its node in the same docs site, the sources upstream of them with their newest data
and freshness, and the price rows that priced its costs (`reads_html`).
"""

from __future__ import annotations

import functools
import html
import json
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import duckdb
import pandas as pd

from statex_bi import warehouse
from statex_bi.config import PROJECT_ROOT
from statex_bi.metrics import registry
from statex_bi.reads import Reads

DOCS_PAGE = "lineage/index.html"  # the run's docs site, relative to its report pages
NODE = "#!/model/model.statex_bi.{}"
# dbt's freshness status in people's words, worst last
STATUS = {"pass": "fresh", "warn": "late", "error": "stale", "runtime error": "not checked"}
# The price catalogs behind each priced KPI (a name prefix) and the report section that lists them all.
PRICED = {"ai.": ("AI prices", "Price-list", "Price list"),
          "infra.": ("infrastructure prices", "Prices-and-pricing-rules", "Prices and pricing rules")}
# Relations a report reads that dbt does not build: what people call them.
RUN_RECORDS = {"ops": "load and build records", "monitoring": "published KPIs and alerts"}


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


def _state_text(name: str, states: dict[str, tuple[str | None, str]]) -> str:
    mark, status = states[name]
    return (f"{html.escape(name)}: data to {html.escape(str(mark)[:16]) if mark else 'nothing'}, "
            f"{html.escape(status)}")


def _sources(kpi: registry.KpiDef, states: dict[str, tuple[str | None, str]]) -> str:
    """The KPI's sources that are loaded, each with its newest data and freshness, then the others named."""
    parts = [_state_text(token, states) for token in (t for t in re.split(r"[,/+]\s*|\s+", kpi.source) if t)
             if token in states]
    return "; ".join(parts) or html.escape(kpi.source)


# A longer list of price rows is collapsed under its count (a click opens it), so the tables stay readable.
SHOWN_PRICE_ROWS = 8


def price_rows_html(rows: list[dict[str, str]], lead: str) -> str:
    """Price rows as a list after `lead`: catalog entry and what it charges, the day it took effect, its source."""
    if not rows:
        return ""
    items = "".join(
        f"<li><code>{html.escape(row['row_id'])}</code> ({html.escape(row['catalog'])}"
        + (f", {html.escape(row['item'])}" if row.get("item") else "") + ")"
        + (f": {html.escape(row['price'])}" if row.get("price") else "")
        + (f"; in effect from {html.escape(row['effective_from'])}" if row.get("effective_from") else "")
        + (f"; source: {html.escape(row['source'])}" if row.get("source") else "") + "</li>"
        for row in rows)
    listed = f'<ul class="statex-price-rows">{items}</ul>'
    if len(rows) <= SHOWN_PRICE_ROWS:
        return f"{html.escape(lead)}:{listed}"
    return f"<details><summary>{html.escape(lead)}: {len(rows)} rows</summary>{listed}</details>"


def _priced_by(kpi: registry.KpiDef) -> tuple[str, str, str] | None:
    """The catalog that prices a KPI, and the report section listing all of it (None: no price in it)."""
    for prefix, entry in PRICED.items():
        if kpi.name.startswith(prefix) and (prefix != "ai." or kpi.unit in ("USD", "currency")):
            return entry
    return None


def lineage_html(con: duckdb.DuckDBPyConnection, published: pd.DataFrame, reads: Reads | None = None) -> str:
    """The table of the headline KPIs among `published` (what `publish.publish` returned) and their lineage;
    `reads`: what computing them read (`statex_bi.kpis.changes.Comparison.reads`), whose price rows of the
    catalogs that price them are listed under the table."""
    names = set(published["metric_name"]) if len(published) else set()
    heads = [k for k in registry.kpis().values() if k.headline and k.name in names]
    if not heads:
        return ""
    states = source_states(con)
    looked_up = reads.price_rows() if reads else []
    cells, listed = {}, []
    for kpi in heads:
        entry = _priced_by(kpi)
        if entry is None:
            cells[kpi.name] = ""
            continue
        catalog, anchor, title = entry
        rows = [row for row in looked_up if row["catalog"].startswith(catalog)]
        listed += [row for row in rows if row not in listed]
        count = f"the {len(rows)} {catalog} rows listed under this table; " if rows else ""
        cells[kpi.name] = f'{count}<a href="#{anchor}">every row: “{html.escape(title)}”</a>'
    rows_html = "".join(
        f"<tr><td>{html.escape(k.label)}</td><td>{model_links(k.models) or 'the raw tables (no model)'}</td>"
        f"<td>{_sources(k, states)}</td><td>{cells[k.name]}</td></tr>" for k in heads)
    prices = (f'<div class="statex-reads">{price_rows_html(listed, "Price rows looked up to price the costs above")}'
              "</div>" if listed else "")
    return ('<table class="statex-table statex-lineage"><caption>Where these numbers come from</caption>'
            "<thead><tr><th>KPI</th><th>Models (dbt docs)</th><th>Sources: newest data, freshness</th>"
            f"<th>Prices</th></tr></thead><tbody>{rows_html}</tbody></table>{prices}")


@dataclass(frozen=True)
class Docs:
    """The dbt project's nodes as the docs site names them, from the manifest of the warehouse's last build.

    Attributes:
        nodes: a relation ("marts.payments_eur", "raw_stripe.charges"; a model also by its bare name) ->
            its node id ("model.statex_bi.payments_eur", "source.statex_bi.stripe.charges").
        upstream: node id -> the dbt sources it is built from (a source: itself), e.g. {"stripe"}.
        relations: node id -> the relation it builds or is ("marts.payments_eur"), as tables name it.
    """

    nodes: dict[str, str]
    upstream: dict[str, frozenset[str]]
    relations: dict[str, str]


NO_DOCS = Docs({}, {}, {})


@functools.lru_cache(maxsize=4)
def _docs(manifest: Path, modified: float) -> Docs:
    """The manifest's nodes (`modified`, its mtime, keys the cache: a newer build is read again)."""
    data = json.loads(manifest.read_text())
    nodes: dict[str, str] = {}
    relations: dict[str, str] = {}
    for unique_id, node in data.get("nodes", {}).items():
        if node.get("resource_type") == "model":
            name = node.get("alias") or node["name"]
            relations[unique_id] = f"{node['schema']}.{name}"
            nodes[relations[unique_id]] = nodes[name] = unique_id
    for unique_id, source in data.get("sources", {}).items():
        relations[unique_id] = f"{source['schema']}.{source.get('identifier') or source['name']}"
        nodes[relations[unique_id]] = unique_id
    parents = data.get("parent_map", {})

    @functools.cache
    def upstream(unique_id: str) -> frozenset[str]:
        if unique_id.startswith("source."):
            return frozenset({data["sources"][unique_id]["source_name"]})
        return frozenset().union(*(upstream(parent) for parent in parents.get(unique_id, [])
                                   if parent.startswith(("model.", "source."))))

    return Docs(nodes, {unique_id: upstream(unique_id) for unique_id in relations}, relations)


def docs_of(db: Path) -> Docs:
    """The nodes of `db`'s last successful build (NO_DOCS when it was never built)."""
    from statex_bi.transform.build import last_build_dir

    manifest = last_build_dir(db) / "manifest.json"
    return _docs(manifest, manifest.stat().st_mtime) if manifest.is_file() else NO_DOCS


@dataclass(frozen=True)
class Context:
    """What a report's tables link to: the docs site's nodes and each loaded source's newest data."""

    docs: Docs
    states: dict[str, tuple[str | None, str]]
    docs_page: str = DOCS_PAGE


def context(con: duckdb.DuckDBPyConnection, db: Path | None) -> Context:
    """The lineage context of the warehouse `con` opened from `db` (None: an empty stand-in)."""
    return Context(docs_of(db) if db else NO_DOCS, source_states(con))


def _shown(file: str) -> str:
    """A file as a report names it: relative to the project when it is in it."""
    path = Path(file)
    return str(path.relative_to(PROJECT_ROOT)) if path.is_relative_to(PROJECT_ROOT) else file


def _key(name: str) -> str:
    return name.replace("-", "_")


def reads_html(reads: Reads, ctx: Context) -> str:
    """Under a table: the relations it was read from, each dbt model or source linked to its docs node, the
    sources upstream with their newest data and freshness, and the price rows that priced it."""
    links, others, sources, linked = [], [], set(), set()
    # schema-qualified first, so that a model named both ways is shown by its relation
    for relation in sorted(reads.relations, key=lambda name: ("." not in name, name)):
        node = ctx.docs.nodes.get(relation)
        schema = relation.split(".")[0] if "." in relation else ""
        if node in linked:
            continue
        if node:
            linked.add(node)
            kind = node.split(".")[0]
            href = f"{ctx.docs_page}#!/{kind}/{quote(node)}"
            shown = ctx.docs.relations.get(node, relation)
            links.append(f'<a class="statex-node" href="{html.escape(href)}">{html.escape(shown)}</a>')
            sources |= ctx.docs.upstream.get(node, frozenset())
        elif schema:
            what = RUN_RECORDS.get(schema, "raw data" if schema.startswith("raw_") else "")
            others.append(f"<code>{html.escape(relation)}</code>" + (f" ({what})" if what else ""))
            if schema.startswith("raw_"):
                sources.add(schema.removeprefix("raw_"))
    others += [f"<code>{html.escape(_shown(file))}</code>" for file in sorted(reads.files)]
    named = {_key(name): name for name in ctx.states}
    states = "; ".join(_state_text(named[_key(name)], ctx.states) if _key(name) in named
                       else f"{html.escape(name)}: not loaded" for name in sorted(sources))
    text = ("Read from " + ", ".join(links + others) + (f". Sources: {states}." if states else ".")
            if links or others else "Read from no warehouse table.")
    prices = reads.price_rows()
    priced = f"<br>{price_rows_html(prices, 'Price rows looked up to price these numbers')}" if prices else ""
    return f'<div class="statex-reads">{text}{priced}</div>'
