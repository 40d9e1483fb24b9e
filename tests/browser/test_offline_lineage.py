"""The dbt docs site a run publishes (lineage/index.html) works offline: nothing is loaded from another
host, and a headless Chromium with every network request failing renders the overview and the models."""

from __future__ import annotations

import re
from urllib.parse import unquote

import growth_warehouse as fx
import nbformat
import pandas as pd
import pytest
from chromium import chromium_dom
from test_offline_report import _chromium

from statex_bi import provenance
from statex_bi.metrics import registry
from statex_bi.runner import kpi_page
from statex_bi.transform import build as project

pytestmark = pytest.mark.browser

REMOTE = re.compile(r"""(?:src|href)\s*=\s*["'](?:https?:)?//""")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The docs site a run publishes, from the built growth fixture: every node of the project, whatever the
    warehouse holds."""
    db, _ = fx.built(tmp_path_factory)
    return project.publish_docs(db, tmp_path_factory.mktemp("run") / "lineage")


def test_published_docs_site_is_offline_and_lists_every_model(site, tmp_path):
    page = site
    text = page.read_text()
    assert REMOTE.findall(text) == []
    dom, console = _chromium(page, tmp_path / "profile")
    assert "Statex BI models" in dom
    for model in ("payments_eur", "stg_stripe__charges", "fx_daily_eur_rates"):
        assert model in dom, model
    # Angular's hash routes on a file:// page log "Unsafe attempt to load URL file://..."; a request that
    # tried to leave the machine would log net::ERR_... or name an http(s) URL.
    remote = [line for line in console if "net::ERR" in line or "http://" in line or "https://" in line]
    assert remote == [], remote


def test_the_published_docs_site_names_no_folder_of_the_machine_that_built_it(site, tmp_path_factory):
    """dbt writes each model's compiled_path into the manifest the page embeds, absolute when the target path is
    (statex-bi keeps it beside the warehouse): a stakeholder reading the page's source would see the server's
    folders. The page keeps dbt's own relative form, target/compiled/..."""
    db, _ = fx.built(tmp_path_factory)
    text = site.read_text()
    assert str(db.parent.resolve()) not in text and str(db.parent) not in text
    assert '"compiled_path": "target/compiled/statex_bi/marts/' in text


def test_nothing_is_published_for_a_warehouse_never_built(tmp_path):
    assert project.publish_docs(tmp_path / "never.duckdb", tmp_path / "lineage") is None


def test_every_model_link_of_the_metrics_page_names_a_node_of_the_published_docs_site(site):
    text = site.read_text()
    page = kpi_page.render(pd.DataFrame(columns=["metric_name"]), {}, lineage="run/lineage/index.html")
    nodes = set(re.findall(r'href="run/lineage/index\.html#!/model/(model\.statex_bi\.\w+)"', page))
    assert len(nodes) >= 15
    missing = sorted(node for node in nodes if f'"{node}"' not in text)
    assert missing == [], f"the docs site has no node {missing}"


def _model_title(dom: str) -> str:
    """The heading of the docs site's model page (empty when the route names no node)."""
    heading = re.search(r"<h1[^>]*>(.*?)</h1>", re.sub(r"<script.*?</script>", "", dom, flags=re.S), re.S)
    return " ".join(re.sub(r"<[^>]+>", " ", heading.group(1)).split()) if heading else ""


def test_a_model_link_opens_that_models_page_in_the_docs_site(site, tmp_path):
    """The links' route (every node id is checked above) opens the model's page in a browser; a node that
    does not exist opens an empty one, so the check can fail."""
    model = registry.kpis()["conversion.prototype_request_rate"].models[0]
    link = provenance.model_links((model,), "index.html")
    fragment = re.search(r'href="index\.html(#[^"]+)"', link).group(1)
    dom, _ = chromium_dom(site, tmp_path / "profile", fragment)
    assert _model_title(dom).startswith(model)
    dom, _ = chromium_dom(site, tmp_path / "profile", fragment.replace(model, "no_such_model"))
    assert _model_title(dom) == ""


# A lineage link under a report table: the docs site next to the report page, at a model's or a source's node.
TABLE_NODE_LINK = re.compile(r'href="lineage/index\.html#!/(model|source)/([^"]+)"')


def _table_links(notebooks) -> dict[str, set[str]]:
    """Node id -> the reports whose tables link to it (from the lineage block under each table)."""
    links: dict[str, set[str]] = {}
    for path in sorted(notebooks.glob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            for output in cell.get("outputs", []):
                markup = str(output.get("data", {}).get("text/html", ""))
                for block in re.findall(r'<div class="statex-reads">.*?</div>', markup, re.S):
                    for _, node in TABLE_NODE_LINK.findall(block):
                        links.setdefault(unquote(node), set()).add(path.stem)
    return links


def test_every_lineage_link_under_a_report_table_opens_a_node_of_the_published_docs_site(
        lab_notebooks, site, tmp_path):
    """Every report, as the lab runs it on the small demo: each link under each table names a node of the docs
    site (the project's nodes, whichever warehouse it was published from); a model's and a source's route open
    that node's page."""
    links = _table_links(lab_notebooks)
    kinds = {node.split(".")[0] for node in links}
    assert kinds == {"model", "source"}, kinds
    assert len(links) >= 20
    text = site.read_text()
    missing = sorted(f"{node} ({', '.join(sorted(reports))})" for node, reports in links.items()
                     if f'"{node}"' not in text)
    assert missing == [], f"the docs site has no node {missing}"
    for kind in ("source", "model"):
        node = min(n for n in links if n.startswith(kind + "."))
        dom, _ = chromium_dom(site, tmp_path / "profile", f"#!/{kind}/{node}")
        name = ".".join(node.split(".")[2:])  # "ai_calls"; a source's "billing.charges"
        assert _model_title(dom).startswith(name), (node, _model_title(dom))
