"""Under each report's KPI cards: the models (linked to the run's dbt docs site), the sources with their newest
data and freshness, and the price rows behind a cost."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pandas as pd

from statex_bi import provenance, warehouse
from statex_bi.metrics import registry
from statex_bi.transform.freshness import _COLUMNS, FRESHNESS_TABLE


def _warehouse(path) -> duckdb.DuckDBPyConnection:
    with warehouse.writer(path) as con:
        con.execute("INSERT INTO ops.source_watermarks VALUES ('ga4', '2026-11-29', now()), "
                    "('stripe', '2026-11-28 10:00:00', now()), ('sentry', NULL, now())")
        con.execute(f"CREATE OR REPLACE TABLE {FRESHNESS_TABLE} ({_COLUMNS})")
        checked = datetime(2026, 11, 30, 6)
        for table, status in (("raw_ga4.traffic_by_channel", "pass"), ("raw_stripe.charges", "pass"),
                              ("raw_stripe.balance_transactions", "error"), ("raw_stripe.refunds", "warn")):
            con.execute(f"INSERT INTO {FRESHNESS_TABLE} VALUES (?, ?, 'date', ?, 1.0, 72.0, 480.0, ?, NULL)",
                        [checked, table, checked, status])
    return duckdb.connect(str(path), read_only=True)


def test_each_headline_kpi_names_its_models_sources_freshness_and_prices(tmp_path):
    con = _warehouse(tmp_path / "w.duckdb")
    published = pd.DataFrame({"metric_name": ["conversion.prototype_request_rate", "revenue.net",
                                              "ai.cost_per_prototype", "ai.calls"]})
    page = provenance.lineage_html(con, published)
    rows = dict(part.split("</td>", 1) for part in page.split("<tr><td>")[1:])
    conversion = rows["Prototype-request conversion"]
    for model in registry.kpis()["conversion.prototype_request_rate"].models:
        assert f'href="lineage/index.html#!/model/model.statex_bi.{model}"' in conversion
    assert "ga4: data to 2026-11-29, fresh" in conversion
    assert "stripe: data to 2026-11-28 10:00, stale" in rows["Net revenue"]  # the worst of its tables counts
    assert '<a href="#Price-list">' in rows["Cost per prototype"] and "Price list" not in rows["Net revenue"]
    assert "AI calls" not in rows, "only headline KPIs"


def test_a_report_without_headline_kpis_shows_no_table(tmp_path):
    con = _warehouse(tmp_path / "w.duckdb")
    assert provenance.lineage_html(con, pd.DataFrame({"metric_name": ["ai.calls"]})) == ""
