"""What a KPI function read (statex_bi.reads) and how a report table says it (display.table).

Warehouses are real DuckDB files; prices come from the shipped catalogs (params/prices).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from datetime import date

import duckdb
import pandas as pd
import pytest
from demo_window import SMALL_DEMO_TODAY

import statex_bi.kpis
from statex_bi import display, provenance, publish, reads
from statex_bi.kpis import ai_costs, changes
from statex_bi.kpis.ai_costs import measures
from statex_bi.metrics import registry
from statex_bi.periods import Period
from statex_bi.pricing import ACTUAL, load_catalog
from statex_bi.pricing.infra import StorageMonth, load_infra_catalog, r2_cost, s3_cost
from statex_bi.pricing.table import CALL_COLUMNS
from statex_bi.runner.params import load


@pytest.fixture
def con(tmp_path):
    with duckdb.connect(str(tmp_path / "warehouse.duckdb")) as connection:
        connection.execute("CREATE SCHEMA marts; CREATE SCHEMA core; CREATE SCHEMA ops")
        connection.execute("CREATE TABLE marts.orders AS SELECT 1 AS id, 10.0 AS amount")
        connection.execute("CREATE TABLE core.customers AS SELECT 1 AS id, 'a' AS name")
        connection.execute("CREATE TABLE ops.source_loads AS SELECT 'stripe' AS source")
        yield connection


@reads.recorded
def _orders(con, minimum: float = 0.0) -> pd.DataFrame:
    return con.execute("""
        WITH big AS (SELECT * FROM marts.orders WHERE amount >= $minimum)
        SELECT big.id, name, amount FROM big JOIN core.customers USING (id)
        WHERE EXISTS (SELECT 1 FROM information_schema.tables)""", {"minimum": minimum}).df()


@reads.recorded
def _with_loads(con) -> pd.DataFrame:
    loads = con.execute("SELECT count(*) AS loads FROM ops.source_loads").df()
    return _orders(con).assign(loads=int(loads["loads"].iloc[0]))


@reads.recorded
def _doubled(orders: pd.DataFrame) -> pd.DataFrame:
    return orders.assign(amount=orders["amount"] * 2)


def test_a_recorded_function_names_the_relations_its_sql_read_not_its_ctes_or_the_catalog(con):
    frame = _orders(con, minimum=5.0)

    assert len(frame) == 1
    assert reads.of(frame).relations == {"marts.orders", "core.customers"}
    assert reads.of(con.execute("SELECT * FROM marts.orders").df()) is None


def test_reads_of_nested_calls_and_of_frames_passed_in_add_up(con):
    assert reads.of(_with_loads(con)).relations == {"marts.orders", "core.customers", "ops.source_loads"}
    assert reads.of(_doubled(_orders(con))).relations == {"marts.orders", "core.customers"}
    # pandas keeps the record through what a notebook does to a frame before showing it
    filtered = _orders(con)
    assert reads.of(filtered[filtered["amount"] > 0][["id", "amount"]].rename(columns={"id": "order"})) is not None


DAY = date(2026, 11, 20)
CALLS = (("s1", "openai", "openai", "gpt-4o"), ("s2", "azure", "azure", "gpt-4o-mini"),
         ("s3", "openai", "openai", "gpt-4o"))


@pytest.fixture
def ai_con(con):
    """The warehouse with three AI calls on DAY (two models of two providers) in core.ai_calls."""
    columns = ", ".join(f"{name} {kind}" for name, kind in CALL_COLUMNS.items())
    con.execute(f"CREATE TABLE core.ai_calls ({columns})")
    for span, tier, provider, model in CALLS:
        con.execute("""INSERT INTO core.ai_calls (span_id, prototype_id, tier, usage_reported, provider, model,
                           status, is_success, duration_ms, input_tokens, cached_input_tokens, uncached_input_tokens,
                           output_tokens, total_tokens, day)
                       VALUES (?, 'p1', ?, true, ?, ?, 'ok', true, 900, 1000, 0, 1000, 200, 1200, ?)""",
                    [span, tier, provider, model, DAY])
    return con


def _priced_by() -> set[str]:
    """The catalog rows that price the calls of CALLS, as the catalog itself answers."""
    catalog = load_catalog()
    return {catalog.price(provider, model, DAY, ACTUAL).row_id for _, _, provider, model in CALLS}


def test_the_ai_price_rows_recorded_are_the_rows_that_priced_the_calls(ai_con):
    frame = measures.usage_by_model(ai_con, Period(DAY, DAY))

    rows = reads.of(frame).price_rows()
    assert {row["row_id"] for row in rows} == _priced_by()
    assert {row["catalog"] for row in rows} == {"AI prices (actual)"}
    assert all(row["source"] and row["price"] for row in rows)
    assert "core.ai_calls" in reads.of(frame).relations


def test_the_cards_lineage_lists_the_price_rows_of_the_cost_kpis(ai_con):
    compared = changes.compare(ai_costs.metrics, ai_con, Period(DAY, DAY))

    page = provenance.lineage_html(ai_con, publish.publish(compared.metrics), compared.reads)
    table, under = page.split("</table>")
    rows = dict(part.split("</td>", 1) for part in table.split("<tr><td>")[1:])
    assert set(re.findall(r"<li><code>([^<]+)</code>", under)) == _priced_by()
    assert f"the {len(_priced_by())} AI prices rows listed under this table" in rows["Cost per prototype"]
    assert "rows listed" not in rows["Generation success rate"]


def test_the_infrastructure_rows_recorded_are_those_the_pricing_looked_up():
    catalog = load_infra_catalog()
    month = StorageMonth(date(2026, 11, 1), "infrequentaccess", 40 * 10**9 * 30, 30, 2_000_000, 9_000_000, 5 * 10**9)

    with reads.tracing() as seen:
        r2 = r2_cost(month, reads.recorded_catalog(catalog))
        s3 = s3_cost(month, reads.recorded_catalog(catalog))

    noted = {row_id for _, row_id in seen.prices}
    s3_rows = {row.row_id for item in s3["item"] for row in catalog.effective(item, month.month)}
    assert noted == set(r2["row_id"]) | s3_rows
    shown = {row["row_id"]: row for row in seen.price_rows()}
    assert shown["r2-ia-storage"]["source"].startswith("https://developers.cloudflare.com/r2/pricing/")
    assert shown["r2-ia-storage"]["effective_from"] == "2024-09-25"
    # more rows than a table can list in place: collapsed under their count, each row still there
    listed = provenance.price_rows_html(seen.price_rows(), "Price rows")
    assert listed.startswith(f"<details><summary>Price rows: {len(noted)} rows</summary>")
    assert listed.count("<li>") == len(noted)


def test_every_kpi_function_that_returns_a_frame_records_what_it_read():
    missing = []
    for module_info in pkgutil.walk_packages(statex_bi.kpis.__path__, "statex_bi.kpis."):
        module = importlib.import_module(module_info.name)
        for name, func in vars(module).items():
            if not inspect.isfunction(func) or name.startswith("_") or func.__module__ != module.__name__:
                continue
            signature = inspect.signature(func)
            returns_frame = "con" in signature.parameters and "DataFrame" in str(signature.return_annotation)
            if returns_frame and not reads.is_recorded(func):
                missing.append(f"{module.__name__}.{name}")
    assert missing == []


def test_a_table_says_what_it_was_read_from_or_that_it_is_not_recorded(con):
    markup = display.table_with_reads_html(_orders(con), caption="Orders")

    tail = markup.split("Download this table as CSV")[1]
    assert 'class="statex-reads"' in tail
    assert "marts.orders" in tail and "core.customers" in tail
    # an analyst's own frame in the lab is shown, saying its origin is not recorded (a report's never is:
    # tests/notebooks/test_notebooks.py checks each table says "Read from")
    unknown = display.table_with_reads_html(pd.DataFrame({"id": [1]}), caption="Orders")
    assert "statex-unrecorded" in unknown and "Read from" not in unknown


def test_every_model_a_reports_kpis_read_is_one_the_registry_names(small_demo):
    """The cards' lineage, outputs/metrics.html and the index link the registry's `models` of each KPI: every
    model a report's KPI function reads on the small demo must be among those of its KPIs."""
    docs = provenance.docs_of(small_demo)
    weekly = load("weekly")
    period = weekly.period(today=SMALL_DEMO_TODAY)
    unnamed, read_any = {}, set()
    with duckdb.connect(str(small_demo), read_only=True) as con:
        for report in registry.reports():
            module = importlib.import_module(f"statex_bi.kpis.{report.report}")
            params = dict(weekly.notebooks.get(report.report) or {})
            with reads.tracing() as seen:
                module.metrics(reads.RecordingConnection(con), period, **params)
            read = {docs.relations[docs.nodes[name]].split(".", 1)[1] for name in seen.relations
                    if docs.nodes.get(name, "").startswith("model.")}
            read_any |= read
            if missing := read - {model for kpi in report.kpis for model in kpi.models}:
                unnamed[report.report] = sorted(missing)
    assert len(read_any) >= 15
    assert unnamed == {}
